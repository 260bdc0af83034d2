/*
 * introspect.c - read-only walks over the core's structures, for the views a
 * kernel developer uses on a live machine (drgn's slab helpers, sysfs
 * /sys/kernel/slab/<cache>/).  pyalloc/model/introspect.py is the same, function
 * for function.
 *
 * Nothing here changes the machine: not the clock, not a counter, not a page
 * descriptor, so a monitoring tool may read as often as it likes without the
 * simulated work it watches changing.  Slabs are listed in pfn order (the
 * order a walk over the page array meets them, as drgn's for_each_page does),
 * so both backends list them alike whatever their slab ids.
 */
#include <stdlib.h>

#include "internal.h"

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* the head pfns of the slabs of one cache (every cache when cache < 0), in pfn
 * order.  Returns how many there are; fills out[] with the first max of them. */
PA_ENTRY(int64_t, pa_slab_pfns, (pa_machine *m, int64_t cache, int64_t *out, int64_t max), (m, cache, out, max))
{
    if (!m || max < 0 || (max && !out) || cache >= (int64_t)m->nr_caches)
        return PA_EINVAL;
    if (cache >= 0 && !m->caches[cache].alive)
        return PA_EINVAL;
    int64_t n = 0;
    for (uint32_t id = 0; id < m->nr_slab_ids; id++) {
        const struct pa_slab *slab = &m->slabs[id];
        if (!slab->used || (cache >= 0 && slab->cache != (uint32_t)cache))
            continue;
        n++;
    }
    if (n > max)
        return n;           /* the caller asks again with room for all */
    int64_t i = 0;
    for (uint32_t id = 0; id < m->nr_slab_ids; id++) {
        const struct pa_slab *slab = &m->slabs[id];
        if (slab->used && (cache < 0 || slab->cache == (uint32_t)cache))
            out[i++] = slab->pfn;
    }
    if (n)      /* out may be NULL when there is nothing to sort, and qsort's array never is */
        qsort(out, (size_t)n, sizeof(*out), cmp_i64);
    return n;
}

/* one slab as struct slab describes it, and the state of each object
 * (slab.c's OBJ_NEVER 0, OBJ_LIVE 1, OBJ_FREED 2) in states[0 .. min(objects, max)) */
PA_ENTRY(int, pa_slab_view, (pa_machine *m, int64_t pfn, struct pa_slab_view *out, uint8_t *states, int64_t max), (m, pfn, out, states, max))
{
    if (!m || !out || pfn < 0 || (uint64_t)pfn >= m->nr_pages || max < 0 || (max && !states))
        return PA_EINVAL;
    const struct pa_page *p = &m->pages[pfn];
    if (!(p->flags & PA_PG_ALLOC) || p->kind != PA_KIND_SLAB || p->priv >= m->nr_slab_ids)
        return PA_EINVAL;
    const struct pa_slab *slab = &m->slabs[p->priv];
    if (!slab->used || slab->pfn != (uint64_t)pfn)
        return PA_EINVAL;
    const struct pa_cache *s = &m->caches[slab->cache];
    out->cache = slab->cache;
    out->order = slab->order;
    out->objects = slab->objects;
    out->inuse = slab->inuse;
    out->frozen = slab->frozen;
    out->on_partial = slab->on_partial;
    out->cpu = -1;
    if (slab->frozen && s->cpu)
        for (uint32_t c = 0; c < m->cpus; c++)
            if (s->cpu[c].slab == p->priv) {
                out->cpu = (int32_t)c;
                break;
            }
    for (int64_t i = 0; i < max && i < slab->objects; i++)
        states[i] = slab->state[i];
    return PA_OK;
}

/* the migratetype of pageblocks [first, first + nr), one byte each (MIGRATE_*) */
PA_ENTRY(int, pa_pageblock_mt, (pa_machine *m, int64_t first, int64_t nr, uint8_t *out), (m, first, nr, out))
{
    if (!m || first < 0 || nr < 0 || (nr && !out) || (uint64_t)first > m->nr_pageblocks
        || (uint64_t)nr > m->nr_pageblocks - (uint64_t)first)
        return PA_EINVAL;
    for (int64_t i = 0; i < nr; i++)
        out[i] = m->pageblock_mt[first + i];
    return PA_OK;
}
