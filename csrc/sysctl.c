/*
 * sysctl.c - the vm sysctls (/proc/sys/vm/): one entry, pa_sysctl(), that
 * reads or writes one knob.  pyalloc/model/sysctl.py is its twin.
 *
 * The table knobs (_abi.VM_SYSCTLS: swappiness, the dirty ratios and
 * intervals, watermark_scale_factor, extfrag_threshold) live in
 * m->vm_sysctl[]; a write outside the table's [min, max] answers PA_EINVAL
 * and changes nothing, as proc_dointvec_minmax() does.  Past the table:
 * min_free_kbytes (m->min_free_kbytes, >= 0), and the write-only
 * compact_memory (only 1: mm/compaction.c sysctl_compaction_handler()) and
 * drop_caches (1..4: fs/drop_caches.c drop_caches_sysctl_handler()).
 * Writing min_free_kbytes or watermark_scale_factor recomputes the
 * watermarks and the pcp batch and high limits, as setup_per_zone_wmarks()
 * does.  Reading a write-only knob answers PA_EINVAL (the kernel refuses the
 * open with EACCES, mode 0200, even for root).
 */
#include "internal.h"

/* setup_per_zone_wmarks() and its zone_pcp_update() of every zone */
static void setup_per_zone_wmarks(pa_machine *m)
{
    arena_setup_watermarks(m);
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++)
        if (m->zones[zid].managed)
            zone_set_pageset_high_and_batch(m, zid);
}

/* drop_caches_sysctl_handler(): 1 page cache, 2 slab (the shrinkers: pyalloc
 * has none, so only the event counts), 4 silences the pr_info line for good.
 * Answers 1 when the kernel would print "comm (pid): drop_caches: N". */
static int64_t drop_caches(pa_machine *m, int64_t value)
{
    if (value & 1)
        pa_drop_caches_locked(m);
    if (value & 2)
        m->ctr[PA_CTR_DROP_SLAB]++;
    int64_t print = !m->drop_caches_stfu;
    if (value & 4)
        m->drop_caches_stfu = 1;
    return print;
}

PA_ENTRY(int64_t, pa_sysctl, (pa_machine *m, int64_t index, int64_t value), (m, index, value))
{
    bool read = value == PA_VM_SYSCTL_READ;
    if (index < 0 || index > PA_VM_SYSCTL_DROP_CACHES || (!read && value < 0))
        return PA_EINVAL;
    if (index < PA_NR_VM_SYSCTLS) {
        if (read)
            return (int64_t)m->vm_sysctl[index];
        if (value < pa_vm_sysctl_min[index] || value > pa_vm_sysctl_max[index])
            return PA_EINVAL;
        m->ticks++;
        m->vm_sysctl[index] = (uint64_t)value;
        if (index == PA_SYSCTL_WATERMARK_SCALE_FACTOR)
            setup_per_zone_wmarks(m);
        return PA_OK;
    }
    switch (index) {
    case PA_VM_SYSCTL_MIN_FREE_KBYTES:
        if (read)
            return (int64_t)m->min_free_kbytes;
        if (value > INT32_MAX)
            return PA_EINVAL;
        m->ticks++;
        m->min_free_kbytes = (uint64_t)value;
        setup_per_zone_wmarks(m);
        return PA_OK;
    case PA_VM_SYSCTL_COMPACT_MEMORY:
        if (read || value != 1)
            return PA_EINVAL;
        m->ticks++;
        compact_node(m);
        return PA_OK;
    default:
        if (read || value < 1 || value > 4)
            return PA_EINVAL;
        m->ticks++;
        return drop_caches(m, value);
    }
}
