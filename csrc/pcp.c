/*
 * pcp.c - the per-cpu page lists (struct per_cpu_pages) in front of the buddy.
 *
 * Linux 6.18 mm/page_alloc.c, function for function (pyalloc/model/pcp.py is
 * the same algorithm).  Per zone and CPU: one list per (order, migratetype)
 * for orders 0..PAGE_ALLOC_COSTLY_ORDER and two for the THP order (movable and
 * the rest), order_to_pindex(); count, high, batch, high_min, high_max,
 * free_count, flags, alloc_factor.
 *
 * Invariants: a page on a pcp list is free but not PageBuddy (PA_PG_BUDDY
 * clear, kind PA_KIND_PCP, order = the list's order); it is in no NR_FREE_PAGES
 * count, no free_area, and on exactly one list; count = sum of pages listed.
 *
 * Choices that decide an address, as the kernel makes them:
 *  - an allocation takes the list HEAD (the page freed last: LIFO);
 *  - an empty list is refilled by rmqueue_bulk() with nr_pcp_alloc() blocks,
 *    each from __rmqueue(), appended at the TAIL (so in split order);
 *  - a free puts the block at the list HEAD; past high, free_pcppages_bulk()
 *    returns nr_pcp_free() pages to the buddy taking list TAILS, round robin
 *    over the lists starting with the list just freed to;
 *  - a drain empties in chunks of batch << PCP_BATCH_SCALE_MAX, each chunk
 *    starting its round robin at list 0 (drain_pages_zone()).
 *
 * Left out: decay_pcp_high() (vmstat's periodic work: high stays where the
 * free path put it), ZONE_RECLAIM_ACTIVE, PCPF_FREE_HIGH_BATCH (set from the
 * CPU's cache size, which a simulated CPU lacks: always clear).
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define BOOT_PAGESET_HIGH 0
#define BOOT_PAGESET_BATCH 1

static inline unsigned order_to_pindex(unsigned mt, unsigned order)
{
    if (order > PAGE_ALLOC_COSTLY_ORDER)
        return PA_NR_LOWORDER_PCP_LISTS + (mt == MIGRATE_MOVABLE);
    return MIGRATE_PCPTYPES * order + mt;
}

static inline unsigned pindex_to_order(unsigned pindex)
{
    return pindex >= PA_NR_LOWORDER_PCP_LISTS ? PA_PCP_THP_ORDER : pindex / MIGRATE_PCPTYPES;
}

static inline struct pa_pcp *this_pcp(pa_machine *m, const struct pa_zone *z)
{
    return &m->pcp[z - m->zones][m->cpu];
}

/* -- sizes: zone_batchsize(), zone_highsize() ------------------------------------ */

static int64_t rounddown_pow_of_two(int64_t x)
{
    return (int64_t)1 << (63 - __builtin_clzll((unsigned long long)x));
}

static int64_t zone_batchsize(const struct pa_zone *z)
{
    int64_t batch = (int64_t)(z->managed >> 10);
    if (batch > (1 << 20) / PA_PAGE_SIZE)
        batch = (1 << 20) / PA_PAGE_SIZE;
    batch /= 4;
    if (batch < 1)
        batch = 1;
    return rounddown_pow_of_two(batch + batch / 2) - 1;
}

/* every simulated CPU is online and on node 0: the split is over all of them */
static int64_t zone_highsize(const pa_machine *m, const struct pa_zone *z, int64_t batch, int64_t fraction)
{
    int64_t total = fraction ? (int64_t)(z->managed / (uint64_t)fraction) : (int64_t)z->wmark[1];
    int64_t high = total / (int64_t)m->cpus;
    return high > batch << 2 ? high : batch << 2;
}

/* zone_set_pageset_high_and_batch(zone, 0): what setup_per_zone_wmarks()
 * redoes whenever the watermarks change; pcp->high itself is left alone */
void zone_set_pageset_high_and_batch(pa_machine *m, int zid)
{
    const struct pa_zone *z = &m->zones[zid];
    int64_t batch = zone_batchsize(z);
    if (batch < 1)
        batch = 1;
    int32_t high_min = (int32_t)zone_highsize(m, z, batch, 0);
    int32_t high_max = (int32_t)zone_highsize(m, z, batch, PA_MIN_PERCPU_PAGELIST_HIGH_FRACTION);
    for (uint32_t c = 0; c < m->cpus; c++) {
        struct pa_pcp *pcp = &m->pcp[zid][c];
        pcp->batch = (int32_t)batch;
        pcp->high_min = high_min;
        pcp->high_max = high_max;
    }
}

/* per_cpu_pages_init() then setup_zone_pageset() for each populated zone */
int pcp_init(pa_machine *m)
{
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        m->pcp[zid] = calloc(m->cpus, sizeof(struct pa_pcp));
        if (!m->pcp[zid])
            return PA_ENOMEM;
        for (uint32_t c = 0; c < m->cpus; c++) {
            struct pa_pcp *pcp = &m->pcp[zid][c];
            for (int i = 0; i < PA_NR_PCP_LISTS; i++)
                pcp->head[i] = pcp->tail[i] = PA_NIL;
            pcp->high = BOOT_PAGESET_HIGH;
            pcp->batch = BOOT_PAGESET_BATCH;
        }
        if (m->zones[zid].managed)
            zone_set_pageset_high_and_batch(m, zid);
    }
    return PA_OK;
}

void pcp_machine_free(pa_machine *m)
{
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        free(m->pcp[zid]);
        m->pcp[zid] = NULL;
    }
}

/* -- the lists ------------------------------------------------------------------ */

static void pcp_list_add(pa_machine *m, struct pa_pcp *pcp, unsigned pindex, uint64_t pfn, bool tail)
{
    struct pa_page *p = &m->pages[pfn];
    if (tail) {
        uint32_t old = pcp->tail[pindex];
        p->prev = old;
        p->next = PA_NIL;
        if (old == PA_NIL)
            pcp->head[pindex] = (uint32_t)pfn;
        else
            m->pages[old].next = (uint32_t)pfn;
        pcp->tail[pindex] = (uint32_t)pfn;
    } else {
        uint32_t old = pcp->head[pindex];
        p->prev = PA_NIL;
        p->next = old;
        if (old == PA_NIL)
            pcp->tail[pindex] = (uint32_t)pfn;
        else
            m->pages[old].prev = (uint32_t)pfn;
        pcp->head[pindex] = (uint32_t)pfn;
    }
}

static void pcp_list_del(pa_machine *m, struct pa_pcp *pcp, unsigned pindex, uint64_t pfn)
{
    struct pa_page *p = &m->pages[pfn];
    if (p->prev == PA_NIL)
        pcp->head[pindex] = p->next;
    else
        m->pages[p->prev].next = p->next;
    if (p->next == PA_NIL)
        pcp->tail[pindex] = p->prev;
    else
        m->pages[p->next].prev = p->prev;
    p->next = p->prev = PA_NIL;
}

/* -- allocation ---------------------------------------------------------------- */

/* include/linux/minmax.h __clamp(): hi is tested first, which decides the
 * answer when lo > hi (a pcp's high_min passes its high_max once a large
 * min_free_kbytes raises the low watermark of a small zone) */
static inline int32_t clamp32(int32_t x, int32_t lo, int32_t hi)
{
    return x >= hi ? hi : x <= lo ? lo : x;
}

static int32_t nr_pcp_alloc(struct pa_pcp *pcp, const struct pa_zone *z, unsigned order)
{
    int32_t base_batch = pcp->batch, high_min = pcp->high_min, high_max = pcp->high_max, batch;
    int32_t high = pcp->high = clamp32(pcp->high, high_min, high_max);

    if (pa_unlikely(high < base_batch))
        return 1;
    batch = order ? base_batch : base_batch << pcp->alloc_factor;
    /* a larger high would have spared this refill */
    if (high_min != high_max && !z->below_high) {
        high = high + batch < high_max ? high + batch : high_max;
        pcp->high = high;
    }
    if (!order) {
        int32_t max_nr_alloc = high - pcp->count - base_batch;
        if (max_nr_alloc < base_batch)
            max_nr_alloc = base_batch;
        /* each refill without a free in between doubles the next one */
        if (batch <= max_nr_alloc && pcp->alloc_factor < PA_PCP_BATCH_SCALE_MAX)
            pcp->alloc_factor++;
        if (batch > max_nr_alloc)
            batch = max_nr_alloc;
    }
    if (batch > 1) {
        batch >>= order;
        if (batch < 2)
            batch = 2;
    }
    return batch;
}

/* rmqueue_bulk(): count blocks from __rmqueue(), each to the list tail */
static int32_t rmqueue_bulk(pa_machine *m, struct pa_zone *z, struct pa_pcp *pcp, unsigned order,
                            int32_t count, unsigned pindex, unsigned mt)
{
    int mode = 0;
    int32_t i;
    for (i = 0; i < count; i++) {
        uint64_t pfn = buddy_rmqueue_mode(m, z, order, mt, &mode);
        if (pfn == PA_NIL)
            break;
        struct pa_page *p = &m->pages[pfn];
        p->order = (uint8_t)order;
        p->kind = PA_KIND_PCP;
        pcp_list_add(m, pcp, pindex, pfn, true);
    }
    return i;
}

/* rmqueue_pcplist() and __rmqueue_pcplist(): the head of this CPU's list */
uint64_t rmqueue_pcplist(pa_machine *m, struct pa_zone *z, unsigned order, unsigned mt, unsigned alloc_flags)
{
    (void)alloc_flags;
    struct pa_pcp *pcp = this_pcp(m, z);
    unsigned pindex = order_to_pindex(mt, order);
    /* an allocation shrinks the next bulk free (nr_pcp_free) */
    pcp->free_count >>= 1;
    uint32_t pfn = pcp->head[pindex];
    if (pfn == PA_NIL) {
        int32_t got = rmqueue_bulk(m, z, pcp, order, nr_pcp_alloc(pcp, z, order), pindex, mt);
        pcp->count += got << order;
        pfn = pcp->head[pindex];
        if (pfn == PA_NIL)
            return PA_NIL;
    }
    pcp_list_del(m, pcp, pindex, pfn);
    pcp->count -= 1 << order;
    return pfn;
}

/* -- freeing ----------------------------------------------------------------------- */

/* free_pcppages_bulk(): count pages back to the buddy, oldest first, round
 * robin over the lists starting at pindex */
static void free_pcppages_bulk(pa_machine *m, struct pa_zone *z, struct pa_pcp *pcp, int32_t count,
                               unsigned pindex)
{
    if (count > pcp->count)
        count = pcp->count;
    int i = (int)pindex - 1;
    while (count > 0) {
        do {
            if (++i > PA_NR_PCP_LISTS - 1)
                i = 0;
        } while (pcp->head[i] == PA_NIL);
        unsigned order = pindex_to_order((unsigned)i);
        int32_t nr_pages = 1 << order;
        do {
            uint64_t pfn = pcp->tail[i];
            pcp_list_del(m, pcp, (unsigned)i, pfn);
            m->pages[pfn].kind = 0;
            count -= nr_pages;
            pcp->count -= nr_pages;
            buddy_free_one_page(m, z, pfn, order, get_pageblock_mt(m, pfn));
        } while (count > 0 && pcp->head[i] != PA_NIL);
    }
}

static int32_t nr_pcp_free(const struct pa_pcp *pcp, int32_t batch, int32_t high, bool free_high)
{
    if (pa_unlikely(free_high)) {
        int32_t n = batch << PA_PCP_BATCH_SCALE_MAX;
        return pcp->count < n ? pcp->count : n;
    }
    if (pa_unlikely(high < batch))
        return 1;
    /* free as many as were freed in a row, leaving at least batch */
    return clamp32(pcp->free_count, batch, high - batch);
}

static int32_t nr_pcp_high(struct pa_pcp *pcp, const struct pa_zone *z, int32_t batch, bool free_high)
{
    int32_t high_min = pcp->high_min, high_max = pcp->high_max;
    int32_t high = pcp->high = clamp32(pcp->high, high_min, high_max);

    if (pa_unlikely(!high))
        return 0;
    if (pa_unlikely(free_high)) {
        int32_t h = high - (batch << PA_PCP_BATCH_SCALE_MAX);
        pcp->high = h > high_min ? h : high_min;
        return 0;
    }
    if (high_min == high_max)
        return high;
    if (z->below_high) {
        int32_t free_count = pcp->free_count > batch ? pcp->free_count : batch;
        int32_t h = high - free_count;
        pcp->high = h > high_min ? h : high_min;
        high = pcp->count > high_min ? pcp->count : high_min;
    } else if (pcp->count >= high) {
        int32_t need_high = pcp->free_count + batch;
        /* room for the pages freed in a row */
        if (pcp->high < need_high)
            pcp->high = clamp32(need_high, high_min, high_max);
    }
    return high;
}

/* free_frozen_page_commit(): the block goes to the head of this CPU's list */
void free_frozen_page_commit(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned order)
{
    struct pa_pcp *pcp = this_pcp(m, z);
    unsigned mt = get_pageblock_mt(m, pfn);
    if (pa_unlikely(mt >= MIGRATE_PCPTYPES)) {
        if (mt == MIGRATE_ISOLATE) {
            buddy_free_one_page(m, z, pfn, order, mt);
            return;
        }
        mt = MIGRATE_MOVABLE;   /* HighAtomic blocks go back through the movable list */
    }
    /* a free shrinks the next refill (nr_pcp_alloc) */
    pcp->alloc_factor >>= 1;
    unsigned pindex = order_to_pindex(mt, order);
    struct pa_page *p = &m->pages[pfn];
    p->order = (uint8_t)order;
    p->kind = PA_KIND_PCP;
    pcp_list_add(m, pcp, pindex, pfn, false);
    pcp->count += 1 << order;

    int32_t batch = pcp->batch;
    bool free_high = false;
    /* many high-order frees without allocations fragment: free them soon */
    if (order && order <= PAGE_ALLOC_COSTLY_ORDER) {
        free_high = pcp->free_count >= batch + pcp->high_min / 2 && (pcp->flags & PA_PCPF_PREV_FREE_HIGH_ORDER)
                    && (!(pcp->flags & PA_PCPF_FREE_HIGH_BATCH) || pcp->count >= batch);
        pcp->flags |= PA_PCPF_PREV_FREE_HIGH_ORDER;
    } else if (pcp->flags & PA_PCPF_PREV_FREE_HIGH_ORDER) {
        pcp->flags &= (uint8_t)~PA_PCPF_PREV_FREE_HIGH_ORDER;
    }
    if (pcp->free_count < batch << PA_PCP_BATCH_SCALE_MAX)
        pcp->free_count += 1 << order;
    int32_t high = nr_pcp_high(pcp, z, batch, free_high);
    if (pcp->count >= high) {
        free_pcppages_bulk(m, z, pcp, nr_pcp_free(pcp, batch, high, free_high), pindex);
        if (z->below_high && buddy_zone_watermark_ok(z, 0, (int64_t)z->wmark[2], ZONE_MOVABLE, 0))
            z->below_high = 0;
    }
}

/* -- draining ------------------------------------------------------------------------ */

/* drain_pages_zone(): everything, in chunks that each restart at list 0 */
static void drain_pages_zone(pa_machine *m, struct pa_zone *z, uint32_t cpu)
{
    struct pa_pcp *pcp = &m->pcp[z - m->zones][cpu];
    while (pcp->count > 0) {
        int32_t n = pcp->batch << PA_PCP_BATCH_SCALE_MAX;
        free_pcppages_bulk(m, z, pcp, n < pcp->count ? n : pcp->count, 0);
    }
}

/* drain_pages(): every populated zone of one CPU */
static void drain_pages(pa_machine *m, uint32_t cpu)
{
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++)
        if (m->zones[zid].managed)
            drain_pages_zone(m, &m->zones[zid], cpu);
}

/* drain_local_pages(zone): the current CPU's lists of one zone, or all zones for NULL */
void drain_local_pages(pa_machine *m, struct pa_zone *z)
{
    if (z)
        drain_pages_zone(m, z, m->cpu);
    else
        drain_pages(m, m->cpu);
}

/* drain_all_pages(zone): every CPU in turn */
void drain_all_pages(pa_machine *m, struct pa_zone *z)
{
    for (uint32_t c = 0; c < m->cpus; c++) {
        if (z)
            drain_pages_zone(m, z, c);
        else
            drain_pages(m, c);
    }
}

PA_ENTRY(int, pa_drain_pages, (pa_machine *m, int64_t cpu), (m, cpu))
{
    if (cpu < -1 || cpu >= (int64_t)m->cpus)
        return PA_EINVAL;
    if (cpu == -1)
        drain_all_pages(m, NULL);
    else
        drain_pages(m, (uint32_t)cpu);
    return PA_OK;
}

/* -- introspection ---------------------------------------------------------------------- */

/* the pcp block holding pfn: its head and order, or PA_NIL */
uint64_t pcp_page_block(const pa_machine *m, uint64_t pfn, unsigned *order)
{
    for (unsigned o = 0; o < PA_NR_PAGE_ORDERS; o++) {
        uint64_t head = pfn & ~((1ull << o) - 1);
        const struct pa_page *p = &m->pages[head];
        if (p->kind == PA_KIND_PCP && !(p->flags & PA_PG_ALLOC) && p->order >= o) {
            *order = p->order;
            return head;
        }
    }
    return PA_NIL;
}

/* pages on every CPU's lists of one zone (show_mem's free_pcp) */
uint64_t pcp_free_pages(const pa_machine *m, int zid)
{
    uint64_t n = 0;
    for (uint32_t c = 0; c < m->cpus; c++)
        n += (uint64_t)m->pcp[zid][c].count;
    return n;
}

/* out8: count, high, batch, high_min, high_max, free_count, flags, alloc_factor;
 * buf: for each non-empty list, order, migratetype, n, then n pfns head first.
 * The answer is the words buf needs (call with cap 0 to size it). */
PA_ENTRY(int64_t, pa_pcp_info, (pa_machine *m, int64_t zid, int64_t cpu, int64_t *out8, int64_t *buf,
                                int64_t cap), (m, zid, cpu, out8, buf, cap))
{
    if (zid < 0 || zid >= PA_MAX_NR_ZONES || cpu < 0 || cpu >= (int64_t)m->cpus || !out8 || cap < 0
        || (cap && !buf))
        return PA_EINVAL;
    const struct pa_pcp *pcp = &m->pcp[zid][cpu];
    int64_t vals[8] = {pcp->count, pcp->high, pcp->batch, pcp->high_min, pcp->high_max,
                       pcp->free_count, pcp->flags, pcp->alloc_factor};
    for (int i = 0; i < 8; i++)
        out8[i] = vals[i];
    int64_t len = 0;
    for (unsigned i = 0; i < PA_NR_PCP_LISTS; i++) {
        if (pcp->head[i] == PA_NIL)
            continue;
        int64_t at_n = len + 2;
        if (len < cap)
            buf[len] = pindex_to_order(i);
        if (len + 1 < cap)
            buf[len + 1] = i >= PA_NR_LOWORDER_PCP_LISTS ? i - PA_NR_LOWORDER_PCP_LISTS : i % MIGRATE_PCPTYPES;
        len += 3;
        int64_t n = 0;
        for (uint32_t pfn = pcp->head[i]; pfn != PA_NIL; pfn = m->pages[pfn].next, n++, len++)
            if (len < cap)
                buf[len] = pfn;
        if (at_n < cap)
            buf[at_n] = n;
    }
    return len;
}

/* -- invariants -------------------------------------------------------------------------- */

#define FAIL(...) do { snprintf(msg, msglen, __VA_ARGS__); return PA_EINVARIANT; } while (0)

int pcp_check(pa_machine *m, char *msg, size_t msglen)
{
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        const struct pa_zone *z = &m->zones[zid];
        for (uint32_t c = 0; c < m->cpus; c++) {
            const struct pa_pcp *pcp = &m->pcp[zid][c];
            int64_t pages = 0;
            for (unsigned i = 0; i < PA_NR_PCP_LISTS; i++) {
                unsigned order = pindex_to_order(i);
                uint32_t prev = PA_NIL;
                uint64_t n = 0;
                for (uint32_t pfn = pcp->head[i]; pfn != PA_NIL; pfn = m->pages[pfn].next) {
                    if (pfn >= m->nr_pages || pfn < z->start_pfn || pfn >= z->end_pfn)
                        FAIL("cpu %u zone %d: pcp list %u links to pfn 0x%x outside the zone", c, zid, i, pfn);
                    const struct pa_page *p = &m->pages[pfn];
                    if (p->kind != PA_KIND_PCP || (p->flags & (PA_PG_BUDDY | PA_PG_ALLOC)) || p->order != order)
                        FAIL("cpu %u zone %d: pfn 0x%x on pcp list %u is not a free pcp block of order %u", c, zid,
                             pfn, i, order);
                    if (p->prev != prev)
                        FAIL("cpu %u zone %d: pcp list %u back link broken at pfn 0x%x", c, zid, i, pfn);
                    if (pfn & ((1u << order) - 1))
                        FAIL("cpu %u zone %d: misaligned pcp block at pfn 0x%x", c, zid, pfn);
                    if (++n > z->managed)
                        FAIL("cpu %u zone %d: pcp list %u loops", c, zid, i);
                    pages += 1 << order;
                    prev = pfn;
                }
                if (prev != pcp->tail[i])
                    FAIL("cpu %u zone %d: pcp list %u tail is wrong", c, zid, i);
            }
            if (pages != pcp->count)
                FAIL("cpu %u zone %d: pcp count is %d but the lists hold %lld", c, zid, pcp->count,
                     (long long)pages);
        }
    }
    return PA_OK;
}
