/*
 * trace.h - the kmem tracepoint hooks (trace.c records, pa_trace_take formats).
 *
 * Each hook is one line at its event in buddy.c or slab.c.  The test is
 * inline, so an untraced machine pays one predictable branch per event.
 */
#ifndef PYALLOC_TRACE_H
#define PYALLOC_TRACE_H

#include "internal.h"

void trace_machine_free(pa_machine *m);
uint64_t trace_pending(const pa_machine *m);    /* records not yet drained */
void trace_event(pa_machine *m, unsigned type, uint64_t ptr, uint64_t a, uint64_t b, uint32_t gfp,
                 uint32_t caller, uint32_t extra);
enum { TRACE_KMALLOC = PA_TRACE_KMALLOC, TRACE_KMEM_CACHE_ALLOC = PA_TRACE_KMEM_CACHE_ALLOC,
       TRACE_KFREE = PA_TRACE_KFREE, TRACE_KMEM_CACHE_FREE = PA_TRACE_KMEM_CACHE_FREE,
       TRACE_MM_PAGE_ALLOC = PA_TRACE_MM_PAGE_ALLOC, TRACE_MM_PAGE_FREE = PA_TRACE_MM_PAGE_FREE };
#define TRACE_PAGE_OFFSET PA_PAGE_OFFSET

/* ptr: the object's phys address, or a negative status (NULL) */
static inline void trace_kmalloc(pa_machine *m, uint64_t caller, int64_t r, uint64_t req, uint64_t alloc, uint32_t gfp)
{
    if (pa_unlikely(m->trace != NULL))
        trace_event(m, TRACE_KMALLOC, r >= 0 ? TRACE_PAGE_OFFSET + (uint64_t)r : 0, req, alloc, gfp,
                    (uint32_t)caller, 0);
}

static inline void trace_kmem_cache_alloc(pa_machine *m, uint64_t caller, int64_t r, uint32_t cache,
                                          uint64_t req, uint64_t alloc, uint32_t gfp, bool accounted)
{
    if (pa_unlikely(m->trace != NULL))
        trace_event(m, TRACE_KMEM_CACHE_ALLOC, r >= 0 ? TRACE_PAGE_OFFSET + (uint64_t)r : 0, req, alloc, gfp,
                    (uint32_t)caller, cache | (accounted ? 0x80000000u : 0));
}

static inline void trace_kfree(pa_machine *m, uint64_t caller, int64_t phys)
{
    if (pa_unlikely(m->trace != NULL))
        trace_event(m, TRACE_KFREE, TRACE_PAGE_OFFSET + (uint64_t)phys, 0, 0, 0, (uint32_t)caller, 0);
}

static inline void trace_kmem_cache_free(pa_machine *m, uint64_t caller, int64_t phys, uint32_t cache)
{
    if (pa_unlikely(m->trace != NULL))
        trace_event(m, TRACE_KMEM_CACHE_FREE, TRACE_PAGE_OFFSET + (uint64_t)phys, 0, 0, 0, (uint32_t)caller, cache);
}

/* pfn PA_NIL: the allocation failed */
static inline void trace_mm_page_alloc(pa_machine *m, uint64_t pfn, unsigned order, uint32_t gfp, unsigned mt)
{
    if (pa_unlikely(m->trace != NULL))
        trace_event(m, TRACE_MM_PAGE_ALLOC, pfn, order, mt, gfp, 0, 0);
}

static inline void trace_mm_page_free(pa_machine *m, uint64_t pfn, unsigned order)
{
    if (pa_unlikely(m->trace != NULL))
        trace_event(m, TRACE_MM_PAGE_FREE, pfn, order, 0, 0, 0, 0);
}

#endif
