/*
 * machine.c - owns a machine's life: made, closed, freed, and checked whole.
 *
 * A machine is one simulated computer: its physical memory and descriptors
 * (arena.c), the buddy allocator's zones over them (buddy.c), the slab caches
 * (slab.c), the processes, files and swap (reclaim.c), init_mm's page tables
 * (pgtable.c) and an optional trace (trace.c), all in one pa_machine record.
 * Nothing is shared between two machines, so they run in parallel.
 *
 * Set-up order: the record (zeroed, so every table starts empty and the lock
 * free), then the arena with its zones, then min_free_kbytes (its default
 * depends on the zones' sizes), the empty tables of slab and reclaim, the
 * watermarks (they depend on min_free_kbytes), and last the boot's free of
 * each zone's unaligned tail, the first buddy operation.  A failure on the
 * way frees what was made through the ordinary close path, which copes with
 * a half-made machine.
 *
 * Tear-down is two steps.  pa_machine_close() releases everything the
 * machine owns, users first (slab, reclaim, trace), the arena last, and marks
 * the record closed; it holds the machine lock while doing so, so an entry
 * already running on another thread finishes first and any entry after it
 * answers PA_ECLOSED instead of touching freed memory.  pa_machine_free()
 * closes if needed and then frees the record itself, which no other thread
 * may still hold.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trace.h"

int pa_machine_new(int64_t nr_pages, int64_t cpus, int64_t min_free_kbytes, int64_t seed, int64_t kconfig,
                   pa_machine **out)
{
    if (!out)
        return PA_EINVAL;
    *out = NULL;
    if (nr_pages < PA_MIN_PAGES || nr_pages > PA_MAX_PAGES || cpus < 1 || cpus > 4096
        || min_free_kbytes < -1 || min_free_kbytes > (int64_t)1 << 40 || seed < 0
        || kconfig < 0 || (kconfig & ~(int64_t)PA_KCONFIG_MASK))
        return PA_EINVAL;

    pa_machine *m = calloc(1, sizeof(*m));
    if (!m)
        return PA_ENOMEM;
    m->nr_pages = (uint64_t)nr_pages;
    m->cpus = (uint32_t)cpus;
    m->seed = m->rand_state = (uint64_t)seed;
    m->kconfig = (uint64_t)kconfig;
    if (arena_init(m) != PA_OK) {
        pa_machine_free(m);
        return PA_ENOMEM;
    }
    m->min_free_kbytes = min_free_kbytes < 0 ? arena_default_min_free_kbytes(m) : (uint64_t)min_free_kbytes;
    for (unsigned i = 0; i < PA_NR_VM_SYSCTLS; i++)
        m->vm_sysctl[i] = (uint64_t)pa_vm_sysctl_default[i];
    m->last_cache = -1;
    memset(m->lru, 0xff, sizeof(m->lru));
    memset(m->kmalloc_caches, 0xff, sizeof(m->kmalloc_caches));
    m->caches = calloc(PA_MAX_CACHES, sizeof(*m->caches));
    if (!m->caches) {
        pa_machine_free(m);
        return PA_ENOMEM;
    }
    arena_setup_watermarks(m);
    if (pcp_init(m) != PA_OK) {
        pa_machine_free(m);
        return PA_ENOMEM;
    }
    buddy_free_boot_tail(m);
    /* memblock_free_all() frees every page through __free_pages_core(), which counts PGFREE per page */
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++)
        m->pgfree += m->zones[zid].managed;
    *out = m;
    return PA_OK;
}

/* Release the arena but keep the machine record, so that a thread still
 * holding the handle gets PA_ECLOSED from any entry instead of touching freed
 * memory; the record itself goes with pa_machine_free().  The lock makes an
 * entry already running on another thread finish first. */
int pa_machine_close(pa_machine *m)
{
    if (!m)
        return PA_EINVAL;
    pa_lock(m);
    if (!m->closed) {
        slab_machine_free(m);
        reclaim_machine_free(m);
        trace_machine_free(m);
        pcp_machine_free(m);
        m->slabs = NULL;
        m->free_slab_ids = NULL;
        m->caches = NULL;
        m->nr_slab_ids = m->nr_caches = 0;
        arena_free(m);
        m->closed = 1;
    }
    pa_unlock(m);
    return PA_OK;
}

void pa_machine_free(pa_machine *m)
{
    if (!m)
        return;
    pa_machine_close(m);
    free(m);
}

/* every part's invariants, part by part: the first broken one is reported */
PA_ENTRY(int, pa_check, (pa_machine *m, char *msg, int64_t msglen), (m, msg, msglen))
{
    if (!m || !msg || msglen < 1)
        return PA_EINVAL;
    msg[0] = 0;
    int rc = buddy_check(m, msg, (size_t)msglen);
    if (!rc)
        rc = pgt_check(m, msg, (size_t)msglen);
    if (!rc)
        rc = reclaim_check(m, msg, (size_t)msglen);
    return rc ? rc : slab_check(m, msg, (size_t)msglen);
}
