/*
 * buddy.c - the buddy page allocator.
 *
 * Watermark rules live here (zone_watermark_ok, and the slow path that obeys
 * the GFP flags: __alloc_pages_slowpath, should_reclaim_retry); the marks are
 * computed in arena.c (arena_setup_watermarks, the kernel's
 * setup_per_zone_wmarks).
 *
 * Each zone keeps free_area[order].free_list[migratetype] as doubly linked
 * lists threaded through the page descriptors by pfn.  Every choice that
 * decides an address follows Linux 6.18 (pyalloc/model/buddy.py is the same
 * algorithm, function for function):
 *
 *  - allocation takes the HEAD block of the smallest order that has one of
 *    the wanted migratetype (rmqueue_smallest);
 *  - expand() keeps the LOW half and puts each upper half at the HEAD of the
 *    list one order down: order 0 from an order-3 block at P returns P and
 *    frees P+4 (o2), P+2 (o1), P+1 (o0);
 *  - a freed block merges while its buddy (pfn ^ 1 << order) is free with the
 *    same order; the result goes to the list HEAD, or to the TAIL when the
 *    next merge looks likely (buddy_merge_likely, orders below 9); boot frees
 *    go to the tail in ascending pfn order;
 *  - an empty migratetype falls back: rmqueue_claim looks from order 10 down
 *    for the largest block of a fallback type and claims its pageblock where
 *    the kernel would; rmqueue_steal then takes the smallest fallback block
 *    without claiming (6.15+);
 *  - zones are tried from the highest the mask allows downwards: first at
 *    the low watermark (fast path), then at min with the reserves the mask
 *    earns (slow path), then without watermarks for __GFP_MEMALLOC.
 *
 *  - orders 0..3 and the THP order go through this CPU's per-cpu page lists
 *    first (pcp.c): freed blocks wait there, LIFO, out of the free counts.
 *
 * Left out: watermark boosting, ALLOC_NOFRAGMENT.
 * Reclaim is reclaim.c, compaction compaction.c; the OOM killer is chosen
 * and run by the Python layer when the slow path asks for it (PA_EOOM).
 *
 * Who may free what: the head of a live allocation carries PG_ALLOC, its
 * order and its kind; a free block's head carries PG_BUDDY and its order.
 * A freed head is marked PG_FREED until an allocation covers it again, which
 * tells a double free (the page is free and was freed) from an invalid free.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "trace.h"

/* gfp_zone(): low four gfp bits -> zone; -1 marks GFP_ZONE_BAD combinations */
static const int8_t gfp_zone_table[16] = {2, 0, 2, -1, 1, -1, -1, -1, 2, 0, 3, -1, 1, -1, -1, -1};

/* where each migratetype looks when its own lists are empty */
static const uint8_t fallbacks[MIGRATE_PCPTYPES][2] = {
    [MIGRATE_UNMOVABLE] = {MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE},
    [MIGRATE_MOVABLE] = {MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE},
    [MIGRATE_RECLAIMABLE] = {MIGRATE_UNMOVABLE, MIGRATE_MOVABLE},
};

/* -- pageblock migratetypes --------------------------------------------------- */

static void set_pageblock_mt(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned mt)
{
    uint64_t i = pfn >> PA_PAGEBLOCK_ORDER;
    unsigned old = m->pageblock_mt[i];
    if (old != mt) {
        z->pageblocks[old]--;
        z->pageblocks[mt]++;
        m->pageblock_mt[i] = (uint8_t)mt;
    }
}

static void change_pageblock_range(pa_machine *m, struct pa_zone *z, uint64_t pfn,
                                   unsigned order, unsigned mt)
{
    for (uint64_t b = pfn; b < pfn + (1ull << order); b += PAGEBLOCK_NR_PAGES)
        set_pageblock_mt(m, z, b, mt);
}

/* -- free lists ------------------------------------------------------------------ */

static inline void account_freepages(struct pa_zone *z, unsigned order, unsigned mt, int64_t delta)
{
    int64_t pages = delta * ((int64_t)1 << order);
    z->nr_free[order][mt] += (uint64_t)delta;
    z->nr_free_mt_pages[mt] += (uint64_t)pages;
    z->nr_free_pages += (uint64_t)pages;
    if (order >= PA_PAGEBLOCK_ORDER)
        z->nr_free_blocks_pages += (uint64_t)pages;
}

static void add_to_free_list(pa_machine *m, struct pa_zone *z, uint64_t pfn,
                             unsigned order, unsigned mt, bool tail)
{
    struct pa_page *p = &m->pages[pfn];
    p->flags |= PA_PG_BUDDY;
    p->order = (uint8_t)order;
    if (tail) {
        uint32_t old = z->tail[order][mt];
        p->prev = old;
        p->next = PA_NIL;
        if (old == PA_NIL)
            z->head[order][mt] = (uint32_t)pfn;
        else
            m->pages[old].next = (uint32_t)pfn;
        z->tail[order][mt] = (uint32_t)pfn;
    } else {
        uint32_t old = z->head[order][mt];
        p->prev = PA_NIL;
        p->next = old;
        if (old == PA_NIL)
            z->tail[order][mt] = (uint32_t)pfn;
        else
            m->pages[old].prev = (uint32_t)pfn;
        z->head[order][mt] = (uint32_t)pfn;
    }
    account_freepages(z, order, mt, 1);
}

static void del_from_free_list(pa_machine *m, struct pa_zone *z, uint64_t pfn,
                               unsigned order, unsigned mt)
{
    struct pa_page *p = &m->pages[pfn];
    if (p->prev == PA_NIL)
        z->head[order][mt] = p->next;
    else
        m->pages[p->prev].next = p->next;
    if (p->next == PA_NIL)
        z->tail[order][mt] = p->prev;
    else
        m->pages[p->next].prev = p->prev;
    p->next = p->prev = PA_NIL;
    p->flags &= (uint8_t)~PA_PG_BUDDY;
    account_freepages(z, order, mt, -1);
}

/* list_move_tail in the kernel: a moved block goes to its new list's tail */
static void move_to_free_list(pa_machine *m, struct pa_zone *z, uint64_t pfn,
                              unsigned order, unsigned old_mt, unsigned new_mt)
{
    del_from_free_list(m, z, pfn, order, old_mt);
    add_to_free_list(m, z, pfn, order, new_mt, true);
}

static inline bool free_area_empty(const struct pa_zone *z, unsigned order, unsigned mt)
{
    return z->nr_free[order][mt] == 0;
}

/* The head block of a free list, materialising a pristine block if needed. */
static uint64_t get_page_from_free_area(pa_machine *m, struct pa_zone *z, unsigned order, unsigned mt)
{
    uint32_t pfn = z->head[order][mt];
    if (pfn != PA_NIL)
        return pfn;
    if (order == PA_MAX_PAGE_ORDER && mt == MIGRATE_MOVABLE && z->pristine_next < z->pristine_end) {
        /* pristine blocks are the list's virtual tail and the real part is
         * empty: link the first of them (the counters already include it) */
        uint64_t p = z->pristine_next;
        z->pristine_next += 1u << PA_MAX_PAGE_ORDER;
        add_to_free_list(m, z, p, PA_MAX_PAGE_ORDER, MIGRATE_MOVABLE, true);
        account_freepages(z, PA_MAX_PAGE_ORDER, MIGRATE_MOVABLE, -1);
        return p;
    }
    return PA_NIL;
}

static void expand(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned low,
                   unsigned high, unsigned mt)
{
    uint64_t size = 1ull << high;
    while (high > low) {
        high--;
        size >>= 1;
        add_to_free_list(m, z, pfn + size, high, mt, false);
    }
}

static void page_del_and_expand(pa_machine *m, struct pa_zone *z, uint64_t pfn,
                                unsigned order, unsigned high, unsigned mt)
{
    del_from_free_list(m, z, pfn, high, mt);
    expand(m, z, pfn, order, high, mt);
}

static uint64_t rmqueue_smallest(pa_machine *m, struct pa_zone *z, unsigned order, unsigned mt)
{
    for (unsigned cur = order; cur < PA_NR_PAGE_ORDERS; cur++) {
        if (free_area_empty(z, cur, mt))
            continue;
        uint64_t pfn = get_page_from_free_area(m, z, cur, mt);
        page_del_and_expand(m, z, pfn, order, cur, mt);
        return pfn;
    }
    return PA_NIL;
}

/* -- migratetype fallback (slow path) ---------------------------------------------- */

static bool should_try_claim_block(unsigned order, unsigned start_mt)
{
    if (order >= PA_PAGEBLOCK_ORDER / 2)
        return true;
    return start_mt == MIGRATE_RECLAIMABLE || start_mt == MIGRATE_UNMOVABLE;
}

static int find_suitable_fallback(const struct pa_zone *z, unsigned order, unsigned mt, bool claimable)
{
    if (claimable && !should_try_claim_block(order, mt))
        return -2;
    for (int i = 0; i < 2; i++)
        if (!free_area_empty(z, order, fallbacks[mt][i]))
            return fallbacks[mt][i];
    return -1;
}

static bool pageblock_in_zone(const struct pa_zone *z, uint64_t start)
{
    return z->start_pfn <= start && start + PAGEBLOCK_NR_PAGES <= z->end_pfn;
}

/* free and movable pages of a pageblock (prep_move_freepages_block) */
static void pageblock_scan(const pa_machine *m, const struct pa_zone *z, uint64_t start,
                           uint64_t *nfree, uint64_t *nmovable)
{
    uint64_t end = start + PAGEBLOCK_NR_PAGES < z->end_pfn ? start + PAGEBLOCK_NR_PAGES : z->end_pfn;
    *nfree = *nmovable = 0;
    for (uint64_t pfn = start; pfn < end;) {
        const struct pa_page *p = &m->pages[pfn];
        if (p->flags & PA_PG_BUDDY) {
            *nfree += 1ull << p->order;
            pfn += 1ull << p->order;
            continue;
        }
        if ((p->flags & PA_PG_ALLOC) && (p->flags & PA_PG_MOVABLE))
            (*nmovable)++;
        pfn++;
    }
}

static void move_freepages_block(pa_machine *m, struct pa_zone *z, uint64_t start,
                                 unsigned old_mt, unsigned new_mt)
{
    uint64_t end = start + PAGEBLOCK_NR_PAGES < z->end_pfn ? start + PAGEBLOCK_NR_PAGES : z->end_pfn;
    for (uint64_t pfn = start; pfn < end;) {
        const struct pa_page *p = &m->pages[pfn];
        if (p->flags & PA_PG_BUDDY) {
            unsigned order = p->order;
            move_to_free_list(m, z, pfn, order, old_mt, new_mt);
            pfn += 1ull << order;
        } else {
            pfn++;
        }
    }
    set_pageblock_mt(m, z, start, new_mt);
}

static uint64_t try_to_claim_block(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned cur,
                                   unsigned order, unsigned start_mt, unsigned block_mt)
{
    if (cur >= PA_PAGEBLOCK_ORDER) {
        /* a whole pageblock (or more) is free: take all of it */
        del_from_free_list(m, z, pfn, cur, block_mt);
        change_pageblock_range(m, z, pfn, cur, start_mt);
        expand(m, z, pfn, order, cur, start_mt);
        return pfn;
    }
    uint64_t start = pfn & ~(uint64_t)(PAGEBLOCK_NR_PAGES - 1);
    if (!pageblock_in_zone(z, start))
        return PA_NIL;
    uint64_t nfree, nmovable, alike;
    pageblock_scan(m, z, start, &nfree, &nmovable);
    if (start_mt == MIGRATE_MOVABLE)
        alike = nmovable;
    else if (block_mt == MIGRATE_MOVABLE)
        alike = PAGEBLOCK_NR_PAGES - (nfree + nmovable);
    else
        alike = 0;
    if (nfree + alike >= 1u << (PA_PAGEBLOCK_ORDER - 1)) {
        move_freepages_block(m, z, start, block_mt, start_mt);
        return rmqueue_smallest(m, z, order, start_mt);
    }
    return PA_NIL;
}

static uint64_t rmqueue_claim(pa_machine *m, struct pa_zone *z, unsigned order, unsigned start_mt)
{
    /* the largest block of a fallback type approximates the emptiest pageblock */
    for (int cur = PA_MAX_PAGE_ORDER; cur >= (int)order; cur--) {
        int fmt = find_suitable_fallback(z, (unsigned)cur, start_mt, true);
        if (fmt == -1)
            continue;
        if (fmt == -2)
            break;
        uint64_t pfn = get_page_from_free_area(m, z, (unsigned)cur, (unsigned)fmt);
        pfn = try_to_claim_block(m, z, pfn, (unsigned)cur, order, start_mt, (unsigned)fmt);
        if (pfn != PA_NIL)
            return pfn;
    }
    return PA_NIL;
}

static uint64_t rmqueue_steal(pa_machine *m, struct pa_zone *z, unsigned order, unsigned start_mt)
{
    for (unsigned cur = order; cur < PA_NR_PAGE_ORDERS; cur++) {
        int fmt = find_suitable_fallback(z, cur, start_mt, false);
        if (fmt == -1)
            continue;
        uint64_t pfn = get_page_from_free_area(m, z, cur, (unsigned)fmt);
        page_del_and_expand(m, z, pfn, order, cur, (unsigned)fmt);
        return pfn;
    }
    return PA_NIL;
}

static uint64_t rmqueue_fallback(pa_machine *m, struct pa_zone *z, unsigned order,
                                 unsigned mt, unsigned alloc_flags)
{
    uint64_t pfn = rmqueue_claim(m, z, order, mt);
    if (pfn == PA_NIL)
        pfn = rmqueue_steal(m, z, order, mt);
    /* failing now is worse than failing a future high-order atomic request */
    if (pfn == PA_NIL && (alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK)))
        pfn = rmqueue_smallest(m, z, order, MIGRATE_HIGHATOMIC);
    return pfn;
}

/* __rmqueue() for rmqueue_bulk(): *mode (0 normal, 1 claim, 2 steal) skips
 * the steps that failed for the previous block of the same refill */
uint64_t buddy_rmqueue_mode(pa_machine *m, struct pa_zone *z, unsigned order, unsigned mt, int *mode)
{
    uint64_t pfn;
    if (*mode == 0) {
        pfn = rmqueue_smallest(m, z, order, mt);
        if (pfn != PA_NIL)
            return pfn;
    }
    if (*mode <= 1) {
        pfn = rmqueue_claim(m, z, order, mt);
        if (pfn != PA_NIL) {
            *mode = 0;
            return pfn;
        }
    }
    pfn = rmqueue_steal(m, z, order, mt);
    if (pfn != PA_NIL)
        *mode = 2;
    return pfn;
}

static inline uint64_t rmqueue(pa_machine *m, struct pa_zone *z, unsigned order,
                               unsigned mt, unsigned alloc_flags)
{
    uint64_t pfn;
    if (pa_likely(pcp_allowed_order(order))) {
        pfn = rmqueue_pcplist(m, z, order, mt, alloc_flags);
        if (pa_likely(pfn != PA_NIL))
            return pfn;
    }
    pfn = PA_NIL;
    if (pa_unlikely(alloc_flags & ALLOC_HIGHATOMIC))
        pfn = rmqueue_smallest(m, z, order, MIGRATE_HIGHATOMIC);
    if (pfn == PA_NIL) {
        pfn = rmqueue_smallest(m, z, order, mt);
        if (pa_unlikely(pfn == PA_NIL))
            pfn = rmqueue_fallback(m, z, order, mt, alloc_flags);
    }
    return pfn;
}

static void reserve_highatomic_pageblock(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned order)
{
    /* at most about 1% of the zone, in whole pageblocks; none if under one */
    if (z->managed / 100 < PAGEBLOCK_NR_PAGES)
        return;
    uint64_t max_managed = (z->managed / 100 + PAGEBLOCK_NR_PAGES - 1) / PAGEBLOCK_NR_PAGES * PAGEBLOCK_NR_PAGES;
    if (z->nr_reserved_highatomic >= max_managed)
        return;
    unsigned mt = get_pageblock_mt(m, pfn);
    if (mt >= MIGRATE_PCPTYPES)
        return;
    if (order < PA_PAGEBLOCK_ORDER) {
        uint64_t start = pfn & ~(uint64_t)(PAGEBLOCK_NR_PAGES - 1);
        if (!pageblock_in_zone(z, start))
            return;
        move_freepages_block(m, z, start, mt, MIGRATE_HIGHATOMIC);
        z->nr_reserved_highatomic += PAGEBLOCK_NR_PAGES;
    } else {
        change_pageblock_range(m, z, pfn, order, MIGRATE_HIGHATOMIC);
        z->nr_reserved_highatomic += 1ull << order;
    }
}

/* -- watermarks and the zonelist ------------------------------------------------------ */

/* __zone_watermark_ok() with the caller's count of free pages */
static bool zone_watermark_ok_free(const struct pa_zone *z, unsigned order, int64_t mark,
                                   unsigned highest, unsigned alloc_flags, int64_t free_pages)
{
    int64_t free = free_pages - (((int64_t)1 << order) - 1);
    int64_t wmin = mark;

    if (!(alloc_flags & ALLOC_RESERVES))
        free -= (int64_t)z->nr_free_mt_pages[MIGRATE_HIGHATOMIC];
    else {
        if (alloc_flags & ALLOC_MIN_RESERVE) {
            wmin -= wmin / 2;
            if (alloc_flags & ALLOC_NON_BLOCK)
                wmin -= wmin / 4;
        }
        if (alloc_flags & ALLOC_OOM)
            wmin -= wmin / 2;
    }
    if (free <= wmin + (int64_t)z->lowmem_reserve[highest])
        return false;
    if (!order)
        return true;
    for (unsigned o = order; o < PA_NR_PAGE_ORDERS; o++) {
        const uint64_t *nr = z->nr_free[o];
        if (nr[0] || nr[1] || nr[2])
            return true;
        if ((alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM)) && nr[MIGRATE_HIGHATOMIC])
            return true;
    }
    return false;
}

static inline bool zone_watermark_ok(const struct pa_zone *z, unsigned order, int64_t mark,
                                     unsigned highest, unsigned alloc_flags)
{
    return zone_watermark_ok_free(z, order, mark, highest, alloc_flags, (int64_t)z->nr_free_pages);
}

static uint64_t get_page_from_freelist(pa_machine *m, unsigned order, unsigned alloc_flags,
                                       unsigned highest, unsigned mt)
{
    for (int zid = (int)highest; zid >= 0; zid--) {
        struct pa_zone *z = &m->zones[zid];
        if (!z->managed)
            continue;
        /* ZONE_BELOW_HIGH, noted here to keep the free path fast: while it is
         * set, frees shrink pcp->high (nr_pcp_high) */
        if (z->below_high || !zone_watermark_ok(z, order, (int64_t)z->wmark[2], highest, alloc_flags)) {
            z->below_high = 1;
            if (!(alloc_flags & ALLOC_NO_WATERMARKS)
                && !zone_watermark_ok(z, order, (int64_t)z->wmark[alloc_flags & ALLOC_WMARK_MASK],
                                      highest, alloc_flags))
                continue;
        }
        uint64_t pfn = rmqueue(m, z, order, mt, alloc_flags);
        if (pfn != PA_NIL) {
            if (pa_unlikely(alloc_flags & ALLOC_HIGHATOMIC))
                reserve_highatomic_pageblock(m, z, pfn, order);
            z->pgalloc += 1ull << order;
            z->numa_hit++;
            return pfn;
        }
    }
    return PA_NIL;
}

static unsigned gfp_to_alloc_flags(uint32_t gfp, unsigned order)
{
    unsigned alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET;
    if (gfp & GFP_HIGH_BIT)
        alloc_flags |= ALLOC_MIN_RESERVE;
    if (gfp & GFP_KSWAPD_RECLAIM_BIT)
        alloc_flags |= ALLOC_KSWAPD;
    if (!(gfp & GFP_DIRECT_RECLAIM_BIT)) {
        if (!(gfp & GFP_NOMEMALLOC_BIT)) {
            alloc_flags |= ALLOC_NON_BLOCK;
            if (order > 0)
                alloc_flags |= ALLOC_HIGHATOMIC;
        }
        if (alloc_flags & ALLOC_MIN_RESERVE)
            alloc_flags &= ~(unsigned)ALLOC_CPUSET;
    }
    return alloc_flags;
}

/* -- the slow path ------------------------------------------------------------------------ */

#define MAX_RECLAIM_RETRIES 16
#define MAX_COMPACT_RETRIES 16

/* cost[] describes the current allocating call: reset it on first use */
static void cost_begin(pa_machine *m)
{
    if (m->cost[PA_COST_SEQ] != m->alloc_seq) {
        memset(m->cost, 0, sizeof(m->cost));
        m->cost[PA_COST_SEQ] = m->alloc_seq;
    }
}

/* __alloc_pages_direct_compact(): *result is try_to_compact_pages()'s; a run
 * that was not skipped counts a stall, then a success or a failure */
static uint64_t alloc_pages_direct_compact(pa_machine *m, uint32_t gfp, unsigned order, unsigned alloc_flags,
                                           unsigned highest, unsigned mt, int prio, int *result)
{
    *result = COMPACT_SKIPPED;
    if (!order)
        return PA_NIL;
    *result = try_to_compact_pages(m, gfp, order, alloc_flags, highest, prio);
    if (*result == COMPACT_SKIPPED)
        return PA_NIL;
    m->ctr[PA_CTR_COMPACT_STALL]++;
    m->cost[PA_COST_SLEPT] = 1;
    uint64_t pfn = get_page_from_freelist(m, order, alloc_flags, highest, mt);
    if (pfn != PA_NIL) {
        compaction_defer_reset(m, pa_zone_of(m, pfn), order, true);
        m->ctr[PA_CTR_COMPACT_SUCCESS]++;
        return pfn;
    }
    m->ctr[PA_CTR_COMPACT_FAIL]++;
    return PA_NIL;
}

/* unreserve_highatomic_pageblock(): give one high-atomic pageblock back to the
 * request's migratetype; with !force a zone keeps its last one */
static bool unreserve_highatomic_pageblock(pa_machine *m, unsigned highest, unsigned mt, bool force)
{
    for (int zid = (int)highest; zid >= 0; zid--) {
        struct pa_zone *z = &m->zones[zid];
        if (!z->managed || (!force && z->nr_reserved_highatomic <= PAGEBLOCK_NR_PAGES))
            continue;
        for (unsigned order = 0; order < PA_NR_PAGE_ORDERS; order++) {
            uint64_t pfn = get_page_from_free_area(m, z, order, MIGRATE_HIGHATOMIC);
            if (pfn == PA_NIL)
                continue;
            uint64_t size = order < PA_PAGEBLOCK_ORDER ? PAGEBLOCK_NR_PAGES : 1ull << order;
            if (size > z->nr_reserved_highatomic)
                size = z->nr_reserved_highatomic;
            z->nr_reserved_highatomic -= size;
            if (order < PA_PAGEBLOCK_ORDER) {
                move_freepages_block(m, z, pfn & ~(uint64_t)(PAGEBLOCK_NR_PAGES - 1), MIGRATE_HIGHATOMIC, mt);
            } else {
                move_to_free_list(m, z, pfn, order, MIGRATE_HIGHATOMIC, mt);
                change_pageblock_range(m, z, pfn, order, mt);
            }
            return true;
        }
    }
    return false;
}

/* should_reclaim_retry(): after MAX_RECLAIM_RETRIES rounds without progress
 * (a costly order never counts as progress) give up; else go on while some
 * zone would pass the min watermark at the request's order with all its
 * reclaimable pages free.  Before giving up, release a high-atomic block. */
static bool should_reclaim_retry(pa_machine *m, uint32_t gfp, unsigned order, unsigned alloc_flags,
                                 unsigned highest, unsigned mt, uint64_t progress, unsigned *no_progress_loops)
{
    if (progress && order <= PAGE_ALLOC_COSTLY_ORDER)
        *no_progress_loops = 0;
    else
        (*no_progress_loops)++;
    if (*no_progress_loops <= MAX_RECLAIM_RETRIES) {
        for (int zid = (int)highest; zid >= 0; zid--) {
            const struct pa_zone *z = &m->zones[zid];
            if (!z->managed)
                continue;
            int64_t available = (int64_t)(zone_reclaimable_pages(m, z) + z->nr_free_pages);
            if (zone_watermark_ok_free(z, order, (int64_t)z->wmark[0], highest, alloc_flags, available))
                return true;
        }
    }
    (void)gfp;
    return unreserve_highatomic_pageblock(m, highest, mt, true);
}

/* should_compact_retry(): after a skipped run, go on while reclaim could make
 * some zone suitable; after a success, a few more tries; after a failure,
 * raise the priority (sync-light at most for costly orders) */
static bool should_compact_retry(pa_machine *m, unsigned order, unsigned highest, int result, int *prio,
                                 unsigned *compaction_retries)
{
    if (!order)
        return false;
    if (result == COMPACT_SKIPPED)
        return compaction_zonelist_suitable(m, order, highest);
    if (result == COMPACT_SUCCESS) {
        unsigned max_retries = order > PAGE_ALLOC_COSTLY_ORDER ? MAX_COMPACT_RETRIES / 4 : MAX_COMPACT_RETRIES;
        if (++(*compaction_retries) <= max_retries)
            return true;
    }
    int min_priority = order > PAGE_ALLOC_COSTLY_ORDER ? COMPACT_PRIO_SYNC_LIGHT : COMPACT_PRIO_SYNC_FULL;
    if (*prio > min_priority) {
        (*prio)--;
        *compaction_retries = 0;
        return true;
    }
    return false;
}

/* __alloc_pages_may_oom()'s gate: would the kernel call out_of_memory()? */
static bool oom_allowed(uint32_t gfp, unsigned order, unsigned highest)
{
    return order <= PAGE_ALLOC_COSTLY_ORDER && !(gfp & (GFP_RETRY_MAYFAIL_BIT | GFP_THISNODE_BIT))
           && highest >= ZONE_NORMAL;
}

/*
 * __alloc_pages_slowpath(), as 6.18 orders it: wake kswapd (and kcompactd for
 * a request that cannot reclaim); try at min with the reserves the mask earns;
 * costly or unmovable high orders compact first (async); then, if the caller
 * may sleep, rounds of direct reclaim and direct compaction (sync-light, or
 * async after a costly NORETRY first try), each followed by another attempt,
 * until should_reclaim_retry and should_compact_retry give up; then
 * __alloc_pages_may_oom.  The killer itself is the caller's: when it should
 * run, this returns PA_NIL with cost[OOM_NEEDED] set, the public entry answers
 * PA_EOOM, the Python layer picks and kills a victim (or finds none: the
 * kernel panics) and repeats the call.  A request without __GFP_FS that only
 * the killer could satisfy loops for ever in 6.18 (out_of_memory() returns
 * true without killing): it returns PA_NIL with cost[WOULD_LOOP] set.
 */
static uint64_t alloc_pages_slowpath(pa_machine *m, uint32_t gfp, unsigned order,
                                     unsigned highest, unsigned mt)
{
    m->slowpath_entries++;
    cost_begin(m);
    const bool can_direct_reclaim = gfp & GFP_DIRECT_RECLAIM_BIT;
    const bool can_compact = gfp & GFP_IO_BIT;        /* gfp_compaction_allowed() */
    const bool costly = order > PAGE_ALLOC_COSTLY_ORDER;
    const bool pfmemalloc = (gfp & GFP_MEMALLOC_BIT) && !(gfp & GFP_NOMEMALLOC_BIT);
    unsigned alloc_flags = gfp_to_alloc_flags(gfp, order);
    unsigned no_progress_loops = 0, compaction_retries = 0;
    int compact_result = COMPACT_SKIPPED, compact_priority = COMPACT_PRIO_SYNC_LIGHT;
    bool drained = false;
    uint64_t pfn;

    if (alloc_flags & ALLOC_KSWAPD) {
        wakeup_kswapd(m, order, highest);
        /* wakeup_kswapd(): a node kswapd leaves alone may still be too fragmented */
        if (!can_direct_reclaim && !m->kswapd_wanted)
            wakeup_kcompactd(m, order, highest);
    }
    pfn = get_page_from_freelist(m, order, alloc_flags, highest, mt);
    if (pfn != PA_NIL)
        goto got_pg;

    if (can_direct_reclaim && can_compact && (costly || (order > 0 && mt != MIGRATE_MOVABLE)) && !pfmemalloc) {
        pfn = alloc_pages_direct_compact(m, gfp, order, alloc_flags, highest, mt, COMPACT_PRIO_ASYNC,
                                         &compact_result);
        if (pfn != PA_NIL)
            goto got_pg;
        if (costly && (gfp & GFP_NORETRY_BIT)) {
            /* compaction skipped or deferred: reclaim is unlikely to make whole blocks */
            if (compact_result == COMPACT_SKIPPED || compact_result == COMPACT_DEFERRED)
                goto nopage;
            compact_priority = COMPACT_PRIO_ASYNC;
        }
    }

    for (;;) {
        /* __gfp_pfmemalloc_flags: MEMALLOC ignores the watermarks, NOMEMALLOC wins */
        unsigned flags = pfmemalloc ? ALLOC_NO_WATERMARKS | (alloc_flags & ALLOC_KSWAPD) : alloc_flags;
        pfn = get_page_from_freelist(m, order, flags, highest, mt);
        if (pfn != PA_NIL)
            goto got_pg;
        if (!can_direct_reclaim)
            goto nopage;

        uint64_t progress = try_to_free_pages(m, gfp, order, highest);
        pfn = get_page_from_freelist(m, order, alloc_flags, highest, mt);
        /* __alloc_pages_direct_reclaim(): pages may sit on the pcp lists or in a
         * high-atomic block: release those and retry once */
        if (pfn == PA_NIL && !drained) {
            unreserve_highatomic_pageblock(m, highest, mt, false);
            drain_all_pages(m, NULL);
            drained = true;
            pfn = get_page_from_freelist(m, order, alloc_flags, highest, mt);
        }
        if (pfn != PA_NIL)
            goto got_pg;
        pfn = alloc_pages_direct_compact(m, gfp, order, alloc_flags, highest, mt, compact_priority,
                                         &compact_result);
        if (pfn != PA_NIL)
            goto got_pg;

        if (gfp & GFP_NORETRY_BIT)
            goto nopage;
        /* "prevent infinite loop for costly GFP_NOIO | __GFP_RETRY_MAYFAIL allocations" */
        if (costly && (!can_compact || !(gfp & GFP_RETRY_MAYFAIL_BIT)))
            goto nopage;
        if (should_reclaim_retry(m, gfp, order, alloc_flags, highest, mt, progress, &no_progress_loops))
            continue;
        if (progress && can_compact
            && should_compact_retry(m, order, highest, compact_result, &compact_priority, &compaction_retries))
            continue;
        break;
    }

    /* __alloc_pages_may_oom(): one last try at the high watermark, in case somebody freed memory */
    pfn = get_page_from_freelist(m, order, ALLOC_WMARK_HIGH | ALLOC_CPUSET, highest, mt);
    if (pfn != PA_NIL)
        goto got_pg;
    if (oom_allowed(gfp, order, highest)) {
        if (!(gfp & GFP_FS_BIT)) {
            /* out_of_memory() kills nothing for !__GFP_FS and reports progress:
             * NOFAIL takes the reserves, anything else retries for ever */
            if (!(gfp & GFP_NOFAIL_BIT)) {
                m->cost[PA_COST_WOULD_LOOP] = 1;
                return PA_NIL;
            }
        } else if (!m->oom_mode) {
            m->cost[PA_COST_OOM_NEEDED] = 1;
            m->cost[PA_COST_OOM_GFP] = gfp;
            m->cost[PA_COST_OOM_ORDER] = order;
            return PA_NIL;
        }
    }
nopage:
    if ((gfp & GFP_NOFAIL_BIT) && can_direct_reclaim) {
        /* The retry loop cannot free more.  What it would still try: the OOM
         * path hands a non-costly NOFAIL request the whole reserve, then the
         * nopage loop half the min reserve. */
        if (oom_allowed(gfp, order, highest)) {
            pfn = get_page_from_freelist(m, order, ALLOC_NO_WATERMARKS, highest, mt);
            if (pfn != PA_NIL)
                goto got_pg;
        }
        pfn = get_page_from_freelist(m, order, ALLOC_MIN_RESERVE, highest, mt);
        if (pfn != PA_NIL)
            goto got_pg;
    }
    return PA_NIL;
got_pg:
    if (pa_zone_of(m, pfn)->nr_free_pages < pa_zone_of(m, pfn)->wmark[0])
        m->cost[PA_COST_RESERVES] = 1;
    return pfn;
}

static void prep_new_page(pa_machine *m, uint64_t pfn, unsigned order, uint32_t gfp, unsigned mt)
{
    struct pa_page *p = &m->pages[pfn];
    uint8_t flags = PA_PG_ALLOC;
    if ((gfp & GFP_COMP_BIT) && order)
        flags |= PA_PG_HEAD;
    if (mt == MIGRATE_MOVABLE)
        flags |= PA_PG_MOVABLE;
    p->flags = flags;
    p->order = (uint8_t)order;
    p->kind = PA_KIND_PAGES;
    p->refcount = 1;
    /* the block is handed out again: none of its pages counts as freed now */
    for (uint64_t q = pfn + 1; q < pfn + (1ull << order); q++)
        m->pages[q].flags &= (uint8_t)~PA_PG_FREED;
    arena_hand_out(m, pfn, 1ull << order, gfp & GFP_ZERO_BIT);
}

int64_t buddy_alloc_pages(pa_machine *m, int64_t gfp, int64_t order)
{
    m->ticks++;
    if (pa_unlikely((uint64_t)order > PA_MAX_PAGE_ORDER))
        return order < 0 ? PA_EINVAL : PA_E2BIG;
    if (pa_unlikely(gfp < 0 || gfp > (int64_t)UINT32_MAX))
        return PA_EINVAL;
    uint32_t mask = (uint32_t)gfp & GFP_BITS_MASK;
    int highest = gfp_zone_table[mask & 0xf];
    if (pa_unlikely(highest < 0))
        return PA_EINVAL;
    unsigned mt = (mask >> 3) & 3;
    if (pa_unlikely(mt >= MIGRATE_PCPTYPES))
        return PA_EINVAL;       /* both mobility bits: no fallbacks[] row (gfp.py refuses it) */
    kthreads_run(m);            /* kswapd works between the pages of a call, by the clock */
    uint64_t pfn = get_page_from_freelist(m, (unsigned)order, ALLOC_WMARK_LOW, (unsigned)highest, mt);
    if (pa_unlikely(pfn == PA_NIL)) {
        pfn = alloc_pages_slowpath(m, mask, (unsigned)order, (unsigned)highest, mt);
        if (pfn == PA_NIL) {
            trace_mm_page_alloc(m, PA_NIL, (unsigned)order, (uint32_t)gfp, mt);
            return PA_ENOMEM;
        }
    }
    prep_new_page(m, pfn, (unsigned)order, mask, mt);
    trace_mm_page_alloc(m, pfn, (unsigned)order, (uint32_t)gfp, mt);
    return (int64_t)pfn;
}

PA_ENTRY(int64_t, pa_alloc_pages, (pa_machine *m, int64_t gfp, int64_t order), (m, gfp, order))
{
    m->alloc_seq++;
    int64_t r = buddy_alloc_pages(m, gfp, order);
    return pa_call_end(m, r);
}

bool buddy_zone_watermark_ok(const struct pa_zone *z, unsigned order, int64_t mark, unsigned highest,
                             unsigned alloc_flags)
{
    return zone_watermark_ok(z, order, mark, highest, alloc_flags);
}

bool buddy_zone_watermark_ok_free(const struct pa_zone *z, unsigned order, int64_t mark, unsigned highest,
                                  unsigned alloc_flags, int64_t free_pages)
{
    return zone_watermark_ok_free(z, order, mark, highest, alloc_flags, free_pages);
}

/* Take one free page out of the free block that holds it, splitting the
 * block (what compaction's free scanner does); the caller makes sure pfn is
 * free and not pristine. */
uint64_t buddy_take_free_page(pa_machine *m, struct pa_zone *z, uint64_t pfn)
{
    unsigned order;
    uint64_t head = buddy_block_containing(m, pfn, PA_PG_BUDDY, &order);
    if (head == PA_NIL)
        return PA_NIL;
    unsigned mt = get_pageblock_mt(m, head);
    del_from_free_list(m, z, head, order, mt);
    /* free every part of the block but pfn, largest first */
    while (order > 0) {
        order--;
        uint64_t half = 1ull << order;
        if (pfn >= head + half) {
            add_to_free_list(m, z, head, order, mt, false);
            head += half;
        } else {
            add_to_free_list(m, z, head + half, order, mt, false);
        }
    }
    struct pa_page *p = &m->pages[pfn];
    p->flags = (uint8_t)(PA_PG_ALLOC | (mt == MIGRATE_MOVABLE ? PA_PG_MOVABLE : 0));
    p->order = 0;
    p->kind = PA_KIND_PAGES;
    p->refcount = 1;
    z->pgalloc++;
    return pfn;
}

/* -- freeing ------------------------------------------------------------------------------ */

static inline bool page_is_buddy(const pa_machine *m, const struct pa_zone *z, uint64_t buddy, unsigned order)
{
    if (buddy < z->start_pfn || buddy >= z->end_pfn)
        return false;
    const struct pa_page *p = &m->pages[buddy];
    return (p->flags & PA_PG_BUDDY) && p->order == order;
}

static bool buddy_merge_likely(const pa_machine *m, const struct pa_zone *z, uint64_t pfn, unsigned order)
{
    if (order >= PA_MAX_PAGE_ORDER - 1)
        return false;
    uint64_t higher = pfn & ~(1ull << order);
    return page_is_buddy(m, z, higher ^ (1ull << (order + 1)), order + 1);
}

static void free_one_page(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned order,
                          unsigned mt, bool to_tail);

void buddy_free_one_page(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned order, unsigned mt)
{
    free_one_page(m, z, pfn, order, mt, false);
}

static void free_one_page(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned order,
                          unsigned mt, bool to_tail)
{
    while (order < PA_MAX_PAGE_ORDER) {
        uint64_t buddy = pfn ^ (1ull << order);
        if (!page_is_buddy(m, z, buddy, order))
            break;
        unsigned buddy_mt = mt;
        if (pa_unlikely(order >= PA_PAGEBLOCK_ORDER)) {
            /* no merging with a pageblock whose type does not mix */
            buddy_mt = get_pageblock_mt(m, buddy);
            if (buddy_mt != mt && (mt >= MIGRATE_PCPTYPES || buddy_mt >= MIGRATE_PCPTYPES))
                break;
        }
        del_from_free_list(m, z, buddy, order, buddy_mt);
        if (buddy_mt != mt)
            set_pageblock_mt(m, z, buddy, mt);
        pfn &= buddy;
        order++;
    }
    if (!to_tail)
        to_tail = buddy_merge_likely(m, z, pfn, order);
    add_to_free_list(m, z, pfn, order, mt, to_tail);
}

/* The head of the block whose head page carries flag (PA_PG_BUDDY: a free
 * block, PA_PG_ALLOC: a live allocation) and that holds pfn, or PA_NIL.  A
 * block of order o is 2^o-aligned, so its head is pfn with the low o bits
 * cleared: eleven candidates at most. */
uint64_t buddy_block_containing(const pa_machine *m, uint64_t pfn, uint8_t flag, unsigned *order)
{
    for (unsigned o = 0; o < PA_NR_PAGE_ORDERS; o++) {
        uint64_t head = pfn & ~((1ull << o) - 1);
        const struct pa_page *p = &m->pages[head];
        if ((p->flags & flag) && p->order >= o) {
            *order = p->order;
            return head;
        }
    }
    return PA_NIL;
}

/* the free block that holds pfn, pristine blocks included */
uint64_t buddy_page_is_free(const pa_machine *m, uint64_t pfn, unsigned *order)
{
    const struct pa_zone *z = pa_zone_of((pa_machine *)m, pfn);
    if (pfn >= z->pristine_next && pfn < z->pristine_end) {
        *order = PA_MAX_PAGE_ORDER;
        return pfn & ~((1ull << PA_MAX_PAGE_ORDER) - 1);
    }
    uint64_t head = buddy_block_containing(m, pfn, PA_PG_BUDDY, order);
    return head != PA_NIL ? head : pcp_page_block(m, pfn, order);
}

int buddy_free_pages(pa_machine *m, int64_t pfn, int64_t order, unsigned kind)
{
    if (pa_unlikely(!m))
        return PA_EINVAL;
    m->ticks++;
    if (pa_unlikely((uint64_t)order > PA_MAX_PAGE_ORDER))
        return PA_EINVAL;
    if (pa_unlikely(pfn < 0 || (uint64_t)pfn >= m->nr_pages))
        return PA_EINVALFREE;
    struct pa_page *p = &m->pages[pfn];
    if (pa_unlikely(!(p->flags & PA_PG_ALLOC))) {
        unsigned o;
        if ((p->flags & PA_PG_FREED) && buddy_page_is_free(m, (uint64_t)pfn, &o) != PA_NIL)
            return PA_EDOUBLEFREE;
        return PA_EINVALFREE;
    }
    if (pa_unlikely(p->order != order || p->kind != kind))
        return PA_EINVALFREE;
    trace_mm_page_free(m, (uint64_t)pfn, (unsigned)order);
    p->flags = PA_PG_FREED;
    p->kind = 0;
    p->refcount = 0;
    m->pgfree += 1ull << order;
    struct pa_zone *z = pa_zone_of(m, (uint64_t)pfn);
    if (pa_likely(pcp_allowed_order((unsigned)order)))
        free_frozen_page_commit(m, z, (uint64_t)pfn, (unsigned)order);
    else
        free_one_page(m, z, (uint64_t)pfn, (unsigned)order, get_pageblock_mt(m, (uint64_t)pfn), false);
    return PA_OK;
}

PA_ENTRY(int, pa_free_pages, (pa_machine *m, int64_t pfn, int64_t order), (m, pfn, order))
{
    return buddy_free_pages(m, pfn, order, PA_KIND_PAGES);
}

PA_ENTRY(int, pa_page_state, (pa_machine *m, int64_t pfn, struct pa_page_state *out), (m, pfn, out))
{
    if (!m || !out)
        return PA_EINVAL;
    memset(out, 0, sizeof(*out));
    if (pfn < 0 || (uint64_t)pfn >= m->nr_pages) {
        out->state = PA_PAGE_STATE_OUT_OF_RANGE;
        out->head = -1;
        return PA_OK;
    }
    unsigned order = 0;
    uint64_t head = buddy_block_containing(m, (uint64_t)pfn, PA_PG_ALLOC, &order);
    if (head != PA_NIL) {
        const struct pa_page *hp = &m->pages[head];
        out->state = head == (uint64_t)pfn ? PA_PAGE_STATE_ALLOCATED : PA_PAGE_STATE_INTERIOR;
        out->head = (int64_t)head;
        out->order = (int32_t)order;
        out->kind = hp->kind;
        out->flags = hp->flags;
        out->refcount = hp->refcount;
        return PA_OK;
    }
    head = buddy_page_is_free(m, (uint64_t)pfn, &order);
    out->state = PA_PAGE_STATE_FREE;
    out->head = (int64_t)head;
    out->order = (int32_t)order;
    out->flags = m->pages[pfn].flags;
    /* a block on a per-cpu page list says so: free, but not PageBuddy */
    if (head != PA_NIL && m->pages[head].kind == PA_KIND_PCP)
        out->kind = PA_KIND_PCP;
    return PA_OK;
}

/* -- boot ---------------------------------------------------------------------------------- */

/* Free what lies past each zone's last whole order-10 block, as memblock
 * does: largest aligned chunks, ascending, to the list tails. */
void buddy_free_boot_tail(pa_machine *m)
{
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        struct pa_zone *z = &m->zones[zid];
        uint64_t start = z->pristine_end, end = z->end_pfn;
        while (z->managed && start < end) {
            unsigned order = start ? (unsigned)__builtin_ctzll(start) : PA_MAX_PAGE_ORDER;
            if (order > PA_MAX_PAGE_ORDER)
                order = PA_MAX_PAGE_ORDER;
            while (start + (1ull << order) > end)
                order--;
            free_one_page(m, z, start, order, get_pageblock_mt(m, start), true);
            start += 1ull << order;
        }
    }
}

/* -- invariants ------------------------------------------------------------------------------ */

#define FAIL(...) do { snprintf(msg, msglen, __VA_ARGS__); return PA_EINVARIANT; } while (0)

static const char *const zone_names[PA_MAX_NR_ZONES] = {"DMA", "DMA32", "Normal", "Movable", "Device"};

int buddy_check(pa_machine *m, char *msg, size_t msglen)
{
    uint64_t nr_buddy_lists = 0, nr_buddy_heads = 0, allocated = 0, total_free = 0, pcp_pages = 0, pcp_listed = 0;

    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        const struct pa_zone *z = &m->zones[zid];
        const char *zn = zone_names[zid];
        if (!z->managed)
            continue;
        uint64_t free_pages = 0, blocks_pages = 0, mt_pages[PA_MIGRATE_TYPES] = {0};
        for (unsigned o = 0; o < PA_NR_PAGE_ORDERS; o++) {
            for (unsigned mt = 0; mt < PA_MIGRATE_TYPES; mt++) {
                uint64_t n = 0;
                uint32_t prev = PA_NIL, pfn = z->head[o][mt];
                while (pfn != PA_NIL) {
                    if (pfn >= m->nr_pages)
                        FAIL("zone %s: free_list[%u][%u] links to pfn 0x%x outside memory", zn, o, mt, pfn);
                    const struct pa_page *p = &m->pages[pfn];
                    if (!(p->flags & PA_PG_BUDDY) || p->order != o)
                        FAIL("zone %s: pfn 0x%x on free_list[%u][%u] is not a free block of order %u", zn, pfn, o, mt, o);
                    if (p->prev != prev)
                        FAIL("zone %s: free_list[%u][%u] back link broken at pfn 0x%x", zn, o, mt, pfn);
                    if ((pfn & ((1u << o) - 1)) || pfn < z->start_pfn || pfn >= z->end_pfn)
                        FAIL("zone %s: misplaced free block at pfn 0x%x order %u", zn, pfn, o);
                    if (get_pageblock_mt(m, pfn) != mt)
                        FAIL("zone %s: free block at pfn 0x%x on list %u sits in a pageblock of type %u",
                             zn, pfn, mt, get_pageblock_mt(m, pfn));
                    n++;
                    prev = pfn;
                    pfn = p->next;
                    if (n > z->managed)
                        FAIL("zone %s: free_list[%u][%u] loops", zn, o, mt);
                }
                if (prev != z->tail[o][mt])
                    FAIL("zone %s: free_list[%u][%u] tail is wrong", zn, o, mt);
                nr_buddy_lists += n;
                if (o == PA_MAX_PAGE_ORDER && mt == MIGRATE_MOVABLE)
                    n += (z->pristine_end - z->pristine_next) >> PA_MAX_PAGE_ORDER;
                if (n != z->nr_free[o][mt])
                    FAIL("zone %s: nr_free[%u][%u] is %llu but the list holds %llu", zn, o, mt,
                         (unsigned long long)z->nr_free[o][mt], (unsigned long long)n);
                free_pages += n << o;
                mt_pages[mt] += n << o;
                if (o >= PA_PAGEBLOCK_ORDER)
                    blocks_pages += n << o;
            }
        }
        if (free_pages != z->nr_free_pages)
            FAIL("zone %s: nr_free_pages is %llu but the lists hold %llu", zn,
                 (unsigned long long)z->nr_free_pages, (unsigned long long)free_pages);
        for (unsigned mt = 0; mt < PA_MIGRATE_TYPES; mt++)
            if (mt_pages[mt] != z->nr_free_mt_pages[mt])
                FAIL("zone %s: free pages of migratetype %u are %llu but the lists hold %llu", zn, mt,
                     (unsigned long long)z->nr_free_mt_pages[mt], (unsigned long long)mt_pages[mt]);
        if (blocks_pages != z->nr_free_blocks_pages)
            FAIL("zone %s: nr_free_pages_blocks is %llu but the lists hold %llu", zn,
                 (unsigned long long)z->nr_free_blocks_pages, (unsigned long long)blocks_pages);
        uint64_t counts[PA_MIGRATE_TYPES] = {0};
        for (uint64_t i = z->start_pfn >> PA_PAGEBLOCK_ORDER;
             i < (z->end_pfn + PAGEBLOCK_NR_PAGES - 1) >> PA_PAGEBLOCK_ORDER; i++) {
            if (m->pageblock_mt[i] >= PA_MIGRATE_TYPES)
                FAIL("pageblock %llu has type %u", (unsigned long long)i, m->pageblock_mt[i]);
            counts[m->pageblock_mt[i]]++;
        }
        for (unsigned mt = 0; mt < PA_MIGRATE_TYPES; mt++)
            if (counts[mt] != z->pageblocks[mt])
                FAIL("zone %s: %llu pageblocks of type %u counted but the map has %llu", zn,
                     (unsigned long long)z->pageblocks[mt], mt, (unsigned long long)counts[mt]);
        for (uint64_t b = z->pristine_next; b < z->pristine_end; b += PAGEBLOCK_NR_PAGES)
            if (get_pageblock_mt(m, b) != MIGRATE_MOVABLE)
                FAIL("zone %s: pristine pageblock at pfn 0x%llx is not Movable", zn, (unsigned long long)b);

        /* every page outside the pristine range is in exactly one block */
        uint64_t ranges[2][2] = {{z->start_pfn, z->pristine_next}, {z->pristine_end, z->end_pfn}};
        for (int r = 0; r < 2; r++) {
            uint64_t pfn = ranges[r][0], hi = ranges[r][1];
            while (pfn < hi) {
                const struct pa_page *p = &m->pages[pfn];
                bool on_pcp = p->kind == PA_KIND_PCP && !(p->flags & (PA_PG_BUDDY | PA_PG_ALLOC));
                if (!(p->flags & (PA_PG_BUDDY | PA_PG_ALLOC)) && !on_pcp)
                    FAIL("zone %s: pfn 0x%llx is neither free nor allocated (lost page)", zn, (unsigned long long)pfn);
                if ((p->flags & PA_PG_BUDDY) && (p->flags & PA_PG_ALLOC))
                    FAIL("pfn 0x%llx is both free and allocated", (unsigned long long)pfn);
                if (p->refcount != ((p->flags & PA_PG_ALLOC) ? 1 : 0))
                    FAIL("pfn 0x%llx has refcount %u", (unsigned long long)pfn, p->refcount);
                if (p->order > PA_MAX_PAGE_ORDER)
                    FAIL("block at pfn 0x%llx has order %u", (unsigned long long)pfn, p->order);
                uint64_t size = 1ull << p->order;
                if ((pfn & (size - 1)) || pfn + size > hi)
                    FAIL("block at pfn 0x%llx order %u is misaligned or crosses its range",
                         (unsigned long long)pfn, p->order);
                for (uint64_t q = pfn + 1; q < pfn + size; q++)
                    if ((m->pages[q].flags & (PA_PG_BUDDY | PA_PG_ALLOC)) || m->pages[q].kind == PA_KIND_PCP)
                        FAIL("pfn 0x%llx is owned twice", (unsigned long long)q);
                if (on_pcp)
                    pcp_pages += size;
                else if (p->flags & PA_PG_BUDDY)
                    nr_buddy_heads++;
                else
                    allocated += size;
                pfn += size;
            }
        }
        total_free += z->nr_free_pages;
        pcp_listed += pcp_free_pages(m, zid);
    }
    if (nr_buddy_heads != nr_buddy_lists)
        FAIL("a page marked free is on no free list");
    int rc = pcp_check(m, msg, msglen);
    if (rc)
        return rc;
    if (pcp_pages != pcp_listed)
        FAIL("%llu pages are marked as on a pcp list but the lists hold %llu", (unsigned long long)pcp_pages,
             (unsigned long long)pcp_listed);
    if (total_free + pcp_pages + allocated != m->nr_pages)
        FAIL("%llu free + %llu pcp + %llu allocated pages != %llu pages", (unsigned long long)total_free,
             (unsigned long long)pcp_pages, (unsigned long long)allocated, (unsigned long long)m->nr_pages);
    return PA_OK;
}
