/*
 * oncpu.c - the per-call entries that name the simulated CPU with the call.
 *
 * In the kernel every allocation runs on some CPU, and the per-cpu state it
 * touches (the cpu slab, the trace record's CPU column, the SLUB track's cpu)
 * is that CPU's: this_cpu_ptr(s->cpu_slab) in mm/slub.c slab_alloc_node(),
 * smp_processor_id() in set_track_update().  A caller that pins each call
 * to a CPU (Machine's cpu=, a trace replay's CPU column) would otherwise pay
 * three entries per call (set_cpu, the operation, set_cpu back); here the
 * lock is taken once and the CPU switch happens under it.
 *
 * Each pa_X_on() is pa_X() run as `cpu`: it refuses a cpu outside
 * 0..cpus-1 with PA_EINVAL before anything changes (no tick, no event), sets
 * m->cpu, runs pa_X_locked() -- the very body pa_X() runs, so results, trace
 * events, tracks and counters are the same -- and puts the previous CPU back,
 * as Machine.on_cpu() does around a block.
 */
#include "internal.h"

/* ON_CPU(call): lock, refuse a closed machine or a bad cpu, run call as cpu, unlock */
#define ON_CPU(type, call)                                              \
    do {                                                                \
        if (pa_unlikely(!m))                                            \
            return PA_EINVAL;                                           \
        pa_lock(m);                                                     \
        type ret_;                                                      \
        if (pa_unlikely(m->closed))                                     \
            ret_ = PA_ECLOSED;                                          \
        else if (pa_unlikely(cpu < 0 || cpu >= (int64_t)m->cpus))       \
            ret_ = PA_EINVAL;                                           \
        else {                                                          \
            uint32_t home_ = m->cpu;                                    \
            m->cpu = (uint32_t)cpu;                                     \
            ret_ = call;                                                \
            m->cpu = home_;                                             \
        }                                                               \
        pa_unlock(m);                                                   \
        return ret_;                                                    \
    } while (0)

int64_t pa_kmalloc_on(pa_machine *m, int64_t size, int64_t gfp, int64_t caller, int64_t cpu)
{
    ON_CPU(int64_t, pa_kmalloc_locked(m, size, gfp, caller));
}

int pa_kfree_on(pa_machine *m, int64_t phys, int64_t caller, int64_t cpu)
{
    ON_CPU(int, pa_kfree_locked(m, phys, caller));
}

int64_t pa_kmem_cache_alloc_on(pa_machine *m, int64_t cache, int64_t gfp, int64_t caller, int64_t cpu)
{
    ON_CPU(int64_t, pa_kmem_cache_alloc_locked(m, cache, gfp, caller));
}

int pa_kmem_cache_free_on(pa_machine *m, int64_t cache, int64_t phys, int64_t caller, int64_t cpu)
{
    ON_CPU(int, pa_kmem_cache_free_locked(m, cache, phys, caller));
}

int64_t pa_alloc_pages_on(pa_machine *m, int64_t gfp, int64_t order, int64_t cpu)
{
    ON_CPU(int64_t, pa_alloc_pages_locked(m, gfp, order));
}

int pa_free_pages_on(pa_machine *m, int64_t pfn, int64_t order, int64_t cpu)
{
    ON_CPU(int, pa_free_pages_locked(m, pfn, order));
}
