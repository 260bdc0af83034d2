/*
 * stream.c - run a whole operation stream in one call (pyalloc.Stream).
 *
 * A stream is an array of fixed-size records (struct pa_op).  An operation
 * that frees names the operation that allocated its object by index (a
 * handle), never by address, so one stream replays on any machine.  The loop
 * calls the same internal functions as the per-call entry points
 * (buddy_alloc_pages, slab_kmalloc, ...), so the two paths cannot drift.
 *
 * The loop handles the ordinary case only: a success, or kmalloc(0).  At
 * anything else it stops and returns the status with run->pos at the op:
 *  - a failed operation (NULL, a bad free, damage found by slub_debug): the
 *    core has already answered, and Python writes the report the per-call
 *    path would write, raises or records it, and resumes at pos + 1;
 *  - PA_EDEFER: an operation this loop does not do itself (vmalloc and vfree,
 *    whose address space lives in Python; any kind added later; masks whose
 *    per-call path may print what the loop cannot: the slab bug mask, and
 *    __GFP_NOFAIL above order 1, which __alloc_pages_slowpath() warns about).
 *    Python performs it through the per-call API and resumes.  Any other
 *    __GFP_NOFAIL op runs here: the core already has its semantics (the
 *    reserves once the OOM killer is helpless, buddy.c), and its failure
 *    stops the loop like any other, for Python's report;
 *  - any status a newer core returns (PA_EOOM from reclaim, say) is passed up
 *    the same way, untouched.
 * It also pauses with PA_OK when the trace buffer holds run->trace_limit
 * records, so Python can drain it.  Nothing is half-done at a stop: the op
 * at pos either completed or failed as the per-call path would.
 *
 * Handles are checked here too (Python checks every record before a run, but
 * a stream is a buffer anyone can fill, and this entry point can be called
 * directly): a handle must name an earlier allocating op; freeing what was
 * already freed is PA_EDOUBLEFREE without touching the core, because the
 * address may since belong to a newer object.  Every index into ops, results,
 * state, callers and caches is checked against the counts in struct pa_run,
 * and the counts against each other; a result the caller filled in is only
 * trusted as far as the core's own checks of an address go.
 */
#include <string.h>

#include "internal.h"
#include "trace.h"

#define OP_SLAB_BUG_MASK (0x4u | 0x2u | ~GFP_BITS_MASK)

static inline bool allocates(unsigned kind)
{
    return kind == PA_OP_KMALLOC || kind == PA_OP_KREALLOC || kind == PA_OP_KMEM_CACHE_ALLOC
        || kind == PA_OP_ALLOC_PAGES;
}

/* the phys address of a live object named by handle h, or a status */
static int64_t handle_phys(const struct pa_run *r, int64_t i, int64_t h)
{
    if (h < 0 || h >= i || !allocates(r->ops[h].kind))
        return PA_EINVAL;
    if (r->state[h] == PA_OBJ_FREED)
        return PA_EDOUBLEFREE;
    if (r->state[h] != PA_OBJ_LIVE)
        return PA_EINVAL;
    int64_t v = r->results[h];
    /* results[] is the caller's memory: a pfn too large to shift would be undefined */
    if (r->ops[h].kind == PA_OP_ALLOC_PAGES && (v < 0 || v > (INT64_MAX >> PA_PAGE_SHIFT)))
        return PA_EINVAL;
    return r->ops[h].kind == PA_OP_ALLOC_PAGES ? v << PA_PAGE_SHIFT : v;
}

/* h names an earlier allocation that gave NULL or ZERO_SIZE_PTR */
static inline bool null_handle(const struct pa_run *r, int64_t i, int64_t h)
{
    return h >= 0 && h < i && r->results[h] < 0 && allocates(r->ops[h].kind);
}

static inline int freed(struct pa_run *r, int64_t h, int rc)
{
    if (rc == PA_OK)
        r->state[h] = PA_OBJ_FREED;
    return rc;
}

/* krealloc(): in place while ksize allows, else allocate, copy and free */
static int64_t stream_krealloc(pa_machine *m, struct pa_run *r, int64_t i, const struct pa_op *op, int64_t caller)
{
    int64_t old = -1;
    if (op->arg < 0)
        return PA_EINVAL;
    if (op->handle != -1 && !null_handle(r, i, op->handle)) {
        old = handle_phys(r, i, op->handle);
        if (old < 0)
            return old;
    }
    if (op->arg == 0) {
        if (old >= 0) {
            int rc = slab_kfree(m, old, caller);
            if (rc)
                return rc;
            r->state[op->handle] = PA_OBJ_FREED;
        }
        return PA_ZERO_SIZE_STATUS;
    }
    int64_t ks = 0;
    if (old >= 0) {
        ks = slab_ksize(m, old);
        if (ks < 0)
            return ks;
    }
    if (ks >= op->arg) {
        if (op->gfp & GFP_ZERO_BIT)
            memset(m->mem + old + op->arg, 0, (size_t)(ks - op->arg));
        r->state[op->handle] = PA_OBJ_FREED;      /* the new handle owns the object now */
        return old;
    }
    int64_t new = slab_kmalloc(m, op->arg, op->gfp, caller);
    if (new < 0)
        return new;
    if (ks) {
        memcpy(m->mem + new, m->mem + old, (size_t)ks);
        int rc = slab_kfree(m, old, caller);
        if (rc)
            return rc;
        r->state[op->handle] = PA_OBJ_FREED;
    }
    return new;
}

static int64_t run_op(pa_machine *m, struct pa_run *r, int64_t i, const struct pa_op *op, int64_t caller)
{
    int64_t phys;
    switch (op->kind) {
    case PA_OP_KMALLOC:
        if (pa_unlikely(op->gfp & OP_SLAB_BUG_MASK))
            return PA_EDEFER;
        return slab_kmalloc(m, op->arg, op->gfp, caller);
    case PA_OP_KFREE:
        if (op->handle == -1) {
            trace_kfree(m, (uint64_t)caller, -(int64_t)TRACE_PAGE_OFFSET);   /* ptr=0000000000000000 */
            return PA_OK;
        }
        if (null_handle(r, i, op->handle)) {
            /* the allocation gave NULL or ZERO_SIZE_PTR: kfree ignores both */
            int64_t ptr = r->results[op->handle] == PA_ZERO_SIZE_STATUS ? 0x10 : 0;
            trace_kfree(m, (uint64_t)caller, ptr - (int64_t)TRACE_PAGE_OFFSET);
            return PA_OK;
        }
        phys = handle_phys(r, i, op->handle);
        if (phys < 0)
            return phys;
        return freed(r, op->handle, slab_kfree(m, phys, caller));
    case PA_OP_KREALLOC:
        if (pa_unlikely(op->gfp & OP_SLAB_BUG_MASK))
            return PA_EDEFER;
        return stream_krealloc(m, r, i, op, caller);
    case PA_OP_KMEM_CACHE_ALLOC:
        /* the cache first: the per-call path that a deferral takes must get a real one */
        if (op->cache < 0 || op->cache >= r->nr_caches)
            return PA_EINVAL;
        if (pa_unlikely(op->gfp & OP_SLAB_BUG_MASK))
            return PA_EDEFER;
        return slab_cache_alloc(m, r->caches[op->cache], op->gfp, caller);
    case PA_OP_KMEM_CACHE_FREE:
        if (op->cache < 0 || op->cache >= r->nr_caches)
            return PA_EINVAL;
        if (op->handle == -1 || null_handle(r, i, op->handle))
            return PA_OK;           /* kmem_cache_free(s, NULL) */
        phys = handle_phys(r, i, op->handle);
        if (phys < 0)
            return phys;
        return freed(r, op->handle, slab_cache_free(m, r->caches[op->cache], phys, caller));
    case PA_OP_ALLOC_PAGES:
        if (pa_unlikely((op->gfp & GFP_NOFAIL_BIT) && (uint64_t)op->arg > 1))
            return PA_EDEFER;
        return buddy_alloc_pages(m, op->gfp, op->arg);
    case PA_OP_FREE_PAGES:
        phys = handle_phys(r, i, op->handle);
        if (phys < 0)
            return phys;
        return freed(r, op->handle, buddy_free_pages(m, phys >> PA_PAGE_SHIFT, op->arg, PA_KIND_PAGES));
    default:
        return PA_EDEFER;
    }
}

/* A free touches three records of the op it names, its object's page
 * descriptor and the object itself: with tens of thousands of live objects
 * these are cache misses, and they dominate a stream's cost.  Their addresses
 * are known ops ahead, so fetch them early: the handle's records FAR ops
 * ahead, then (the handle's result being cached by now) the object NEAR ops
 * ahead.  A prefetch never faults and changes nothing; a guess that is wrong
 * (a handle that has not run yet) only wastes the fetch.  always_inline: GCC
 * deems a static function of prefetches pure and drops the call otherwise. */
enum { PREFETCH_FAR = 16, PREFETCH_NEAR = 6 };

__attribute__((always_inline)) static inline void prefetch_ahead(const pa_machine *m, const struct pa_run *r, int64_t i)
{
    if (i + PREFETCH_FAR < r->nr_ops) {
        int64_t h = r->ops[i + PREFETCH_FAR].handle;
        if ((uint64_t)h < (uint64_t)r->nr_ops) {
            __builtin_prefetch(&r->results[h]);
            __builtin_prefetch(&r->state[h]);
            __builtin_prefetch(&r->ops[h]);
        }
    }
    if (i + PREFETCH_NEAR < r->nr_ops) {
        int64_t h = r->ops[i + PREFETCH_NEAR].handle;
        if ((uint64_t)h < (uint64_t)i) {
            uint64_t phys = (uint64_t)r->results[h];
            if (phys < m->nr_pages << PA_PAGE_SHIFT) {
                __builtin_prefetch(&m->pages[phys >> PA_PAGE_SHIFT]);
                __builtin_prefetch(m->mem + phys, 1);
            }
        }
    }
}

PA_ENTRY(int, pa_stream_run, (pa_machine *m, struct pa_run *r), (m, r))
{
    /* Every length comes from the caller: the loop indexes ops, results and state
     * below nr_ops only, so each buffer must be that long; callers and caches are
     * indexed below their own counts (checked per op). */
    if (!m || !r || !r->ops || !r->results || !r->state || (!r->callers && r->nr_callers)
        || (!r->caches && r->nr_caches) || r->nr_callers < 0 || r->nr_caches < 0
        || r->nr_ops < 0 || r->nr_results < r->nr_ops || r->nr_state < r->nr_ops
        || r->pos < 0 || r->pos > r->nr_ops)
        return PA_EINVAL;
    const uint32_t home = m->cpu;
    for (int64_t i = r->pos; i < r->nr_ops; i++) {
        const struct pa_op *op = &r->ops[i];
        int64_t res;
        prefetch_ahead(m, r, i);
        if (pa_unlikely(op->caller >= r->nr_callers || (op->cpu != PA_OP_CPU_CURRENT && op->cpu >= m->cpus))) {
            res = PA_EINVAL;
        } else {
            if (op->cpu != PA_OP_CPU_CURRENT)
                m->cpu = op->cpu;
            if (allocates(op->kind))
                m->alloc_seq++;         /* each op is an allocating call of its own */
            res = run_op(m, r, i, op, r->callers[op->caller]);
            m->cpu = home;
            res = pa_call_end(m, res);  /* kswapd's turn; EOOM when the OOM killer must run */
        }
        r->results[i] = res;
        if (pa_likely(res >= 0)) {
            if (allocates(op->kind))
                r->state[i] = PA_OBJ_LIVE;
        } else if (res != PA_ZERO_SIZE_STATUS) {
            r->pos = i;
            return (int)res;
        }
        if (pa_unlikely(m->trace != NULL && r->trace_limit > 0 && (int64_t)trace_pending(m) >= r->trace_limit)) {
            r->pos = i + 1;
            return PA_OK;
        }
    }
    r->pos = r->nr_ops;
    return PA_OK;
}
