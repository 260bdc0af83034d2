/*
 * compaction.c - memory compaction (mm/compaction.c): direct compaction in
 * priorities and kcompactd.  pyalloc/model/compaction.py is the same algorithm.
 *
 * Within each zone the allocation may use, highest first, a migrate scanner
 * walks pageblocks up from the zone's start and moves every movable page it
 * finds (pages on the LRU lists: processes' memory and the page cache) into
 * free pages that a free scanner takes from pageblocks walking down from the
 * zone's end, until the scanners meet or a free block of the wanted order
 * exists.  The free scanner takes pages only from Movable pageblocks and
 * never from a free block of the wanted order or larger (breaking one up
 * would undo the work, suitable_migration_target).  Each page moved costs
 * MIGRATE_US.
 *
 * As 6.18: the slow path compacts first at COMPACT_PRIO_ASYNC, whose migrate
 * scanner only takes pageblocks of the request's migratetype
 * (suitable_migration_source), then at sync-light, which takes every block;
 * should_compact_retry() raises the priority.  A zone is compacted only when
 * compaction_suitable() holds: order-0 free pages above the allocation's own
 * watermark plus compact_gap() (plus low - min for costly orders) and the
 * lowmem reserve, and, for costly orders, a fragmentation index above
 * vm.extfrag_threshold.  A sync run that fails defers the zone
 * (defer_compaction: skip 1, 2, 4 ... 64 later attempts at that order or
 * above).  kcompactd, woken for requests that cannot reclaim, compacts at
 * sync-light when the call that woke it ends (kcompactd_run), its time a
 * memory stall as kcompactd's psi_memstall_enter makes it.
 *
 * Not modelled: the cached scanner positions and pageblock skip hints (every
 * run scans the whole zone), capture_control (the freed block is found by
 * the next freelist attempt), fast_isolate_freepages, isolating pages in
 * batches (one page is moved at a time), proactive compaction.
 */
#include <string.h>

#include "internal.h"

#define COMPACT_MAX_DEFER_SHIFT PA_COMPACT_MAX_DEFER_SHIFT
#define DEF_CONSIDERED 0
#define DEF_SHIFT 1
#define DEF_ORDER_FAILED 2

struct compact_control {
    struct pa_zone *zone;
    unsigned order, highest, alloc_flags, migratetype;
    bool async, direct;
    uint64_t free_block;        /* the free scanner's pageblock */
    uint64_t free_pfn;          /* next page it looks at inside that block */
    uint64_t migrated, migrate_scanned, free_scanned;
};

/* -- deferral ------------------------------------------------------------------------ */

static uint32_t *defer_of(pa_machine *m, const struct pa_zone *z)
{
    return m->compact_defer[z - m->zones];
}

/* defer_compaction(): the next 1 << compact_defer_shift attempts at this order or above skip the zone */
static void defer_compaction(pa_machine *m, const struct pa_zone *z, unsigned order)
{
    uint32_t *d = defer_of(m, z);
    d[DEF_CONSIDERED] = 0;
    if (d[DEF_SHIFT] < COMPACT_MAX_DEFER_SHIFT)
        d[DEF_SHIFT]++;
    if (order < d[DEF_ORDER_FAILED])
        d[DEF_ORDER_FAILED] = order;
}

/* compaction_deferred(): true when this attempt should skip the zone */
static bool compaction_deferred(pa_machine *m, const struct pa_zone *z, unsigned order)
{
    uint32_t *d = defer_of(m, z);
    uint32_t limit = 1u << d[DEF_SHIFT];
    if (order < d[DEF_ORDER_FAILED])
        return false;
    if (++d[DEF_CONSIDERED] >= limit) {
        d[DEF_CONSIDERED] = limit;
        return false;
    }
    return true;
}

void compaction_defer_reset(pa_machine *m, const struct pa_zone *z, unsigned order, bool alloc_success)
{
    uint32_t *d = defer_of(m, z);
    if (alloc_success) {
        d[DEF_CONSIDERED] = 0;
        d[DEF_SHIFT] = 0;
    }
    if (order >= d[DEF_ORDER_FAILED])
        d[DEF_ORDER_FAILED] = order + 1;
}

/* -- suitability ---------------------------------------------------------------------- */

/* zone_reclaimable_pages() (mm/vmscan.c): the file LRU, the anon LRU while
 * swap has room, or the free pages when there is nothing on either */
uint64_t zone_reclaimable_pages(const pa_machine *m, const struct pa_zone *z)
{
    uint64_t nr = z->nr_lru[LRU_INACTIVE_FILE] + z->nr_lru[LRU_ACTIVE_FILE];
    if (m->ctr[PA_CTR_NR_SWAP_FREE] > 0)
        nr += z->nr_lru[LRU_INACTIVE_ANON] + z->nr_lru[LRU_ACTIVE_ANON];
    return nr ? nr : z->nr_free_pages;
}

/* __compaction_suitable(): enough order-0 pages above the watermark to migrate into */
static bool compaction_suitable_free(const struct pa_zone *z, unsigned order, uint64_t watermark,
                                     unsigned highest, uint64_t free_pages)
{
    watermark += 2ull << order;                 /* compact_gap() */
    if (order > PAGE_ALLOC_COSTLY_ORDER)
        watermark += z->wmark[1] - z->wmark[0];
    return buddy_zone_watermark_ok_free(z, 0, (int64_t)watermark, highest, 0, (int64_t)free_pages);
}

/* fragmentation_index() (__fragmentation_index): -1000 when a block of the
 * order is free; towards 0 a failure for lack of memory, towards 1000 for
 * fragmentation */
static int fragmentation_index(const struct pa_zone *z, unsigned order)
{
    uint64_t blocks_total = 0, pages = 0, suitable = 0;
    for (unsigned o = 0; o < PA_NR_PAGE_ORDERS; o++) {
        uint64_t blocks = 0;
        for (unsigned mt = 0; mt < PA_MIGRATE_TYPES; mt++)
            blocks += z->nr_free[o][mt];
        blocks_total += blocks;
        pages += blocks << o;
        if (o >= order)
            suitable += blocks << (o - order);
    }
    if (!blocks_total)
        return 0;
    if (suitable)
        return -1000;
    return 1000 - (int)((1000 + pages * 1000 / (1ull << order)) / blocks_total);
}

/* compaction_suitable(): order-0 room, and for costly orders a failure that
 * fragmentation, not a lack of memory, explains */
static bool compaction_suitable(pa_machine *m, const struct pa_zone *z, unsigned order, uint64_t watermark,
                                unsigned highest)
{
    if (!compaction_suitable_free(z, order, watermark, highest, z->nr_free_pages))
        return false;
    if (order > PAGE_ALLOC_COSTLY_ORDER) {
        int fragindex = fragmentation_index(z, order);
        if (fragindex >= 0 && fragindex <= (int)m->vm_sysctl[PA_SYSCTL_EXTFRAG_THRESHOLD])
            return false;
    }
    return true;
}

/* compaction_suit_allocation_order(): SUCCESS when the allocation would
 * already pass its watermark, SKIPPED when compaction cannot help */
static int compaction_suit_allocation_order(pa_machine *m, const struct pa_zone *z, unsigned order,
                                            unsigned highest, unsigned alloc_flags)
{
    uint64_t watermark = z->wmark[alloc_flags & ALLOC_WMARK_MASK];
    if (buddy_zone_watermark_ok(z, order, (int64_t)watermark, highest, alloc_flags))
        return COMPACT_SUCCESS;
    if (!compaction_suitable(m, z, order, watermark, highest))
        return COMPACT_SKIPPED;
    return COMPACT_CONTINUE;
}

/* compaction_zonelist_suitable(): would reclaiming make some zone suitable? */
bool compaction_zonelist_suitable(pa_machine *m, unsigned order, unsigned highest)
{
    for (int zid = (int)highest; zid >= 0; zid--) {
        const struct pa_zone *z = &m->zones[zid];
        if (!z->managed)
            continue;
        uint64_t available = zone_reclaimable_pages(m, z) / order + z->nr_free_pages;
        if (compaction_suitable_free(z, order, z->wmark[0], highest, available))
            return true;
    }
    return false;
}

/* -- the scanners ---------------------------------------------------------------------- */

/* a free block of the wanted order exists (__compact_finished) */
static bool compact_finished(const struct pa_zone *z, unsigned order)
{
    for (unsigned o = order; o < PA_NR_PAGE_ORDERS; o++)
        for (unsigned mt = 0; mt < MIGRATE_PCPTYPES; mt++)
            if (z->nr_free[o][mt])
                return true;
    return false;
}

/* isolate_freepages(): the next free page, scanning pageblocks downwards
 * from the zone's end; PA_NIL when it meets the migrate scanner */
static uint64_t isolate_freepage(pa_machine *m, struct compact_control *cc, uint64_t migrate_block)
{
    struct pa_zone *z = cc->zone;
    while (cc->free_block > migrate_block) {
        uint64_t end = cc->free_block + PAGEBLOCK_NR_PAGES;
        if (end > z->end_pfn)
            end = z->end_pfn;
        bool suitable = get_pageblock_mt(m, cc->free_block) == MIGRATE_MOVABLE;
        while (suitable && cc->free_pfn < end) {
            uint64_t pfn = cc->free_pfn;
            unsigned order;
            cc->free_scanned++;
            uint64_t head = buddy_block_containing(m, pfn, PA_PG_BUDDY, &order);
            if (head == PA_NIL) {
                cc->free_pfn++;
                continue;
            }
            if (order >= cc->order) {
                cc->free_pfn = head + (1ull << order);
                continue;
            }
            cc->free_pfn++;
            m->ctr[PA_CTR_COMPACT_ISOLATED]++;
            return buddy_take_free_page(m, z, pfn);
        }
        if (cc->free_block < z->start_pfn + PAGEBLOCK_NR_PAGES)
            break;
        cc->free_block -= PAGEBLOCK_NR_PAGES;
        cc->free_pfn = cc->free_block;
    }
    return PA_NIL;
}

/* migrate_pages() for one isolated LRU page: copy it, move every reference, free the old one */
static bool migrate_page(pa_machine *m, struct compact_control *cc, uint64_t pfn, uint64_t migrate_block)
{
    uint64_t target = isolate_freepage(m, cc, migrate_block);
    if (target == PA_NIL)
        return false;
    arena_touch(m, target, 1);
    memcpy(m->mem + (target << PA_PAGE_SHIFT), m->mem + (pfn << PA_PAGE_SHIFT), PA_PAGE_SIZE);
    unsigned kind = m->pages[pfn].kind;
    lru_replace_page(m, pfn, target);
    m->pages[pfn].kind = (uint8_t)kind;
    buddy_free_pages(m, (int64_t)pfn, 0, kind);
    m->ctr[PA_CTR_PGMIGRATE_SUCCESS]++;
    cc->migrated++;
    return true;
}

/* suitable_migration_source(): async direct compaction only empties blocks
 * of the request's own migratetype (any movable one for a movable request) */
static bool suitable_migration_source(const pa_machine *m, const struct compact_control *cc, uint64_t block)
{
    if (!cc->async || !cc->direct)
        return true;
    return get_pageblock_mt(m, block) == cc->migratetype;
}

static int compact_zone_scan(pa_machine *m, struct compact_control *cc)
{
    struct pa_zone *z = cc->zone;
    uint64_t last = z->end_pfn - 1;
    cc->free_block = last & ~(uint64_t)(PAGEBLOCK_NR_PAGES - 1);
    if (cc->free_block < z->start_pfn)
        cc->free_block = z->start_pfn;
    cc->free_pfn = cc->free_block;
    for (uint64_t block = z->start_pfn & ~(uint64_t)(PAGEBLOCK_NR_PAGES - 1); block < cc->free_block;
         block += PAGEBLOCK_NR_PAGES) {
        if (!suitable_migration_source(m, cc, block))
            continue;
        uint64_t start = block < z->start_pfn ? z->start_pfn : block;
        for (uint64_t pfn = start; pfn < block + PAGEBLOCK_NR_PAGES && pfn < z->end_pfn; pfn++) {
            cc->migrate_scanned++;
            const struct pa_page *p = &m->pages[pfn];
            if (!(p->flags & PA_PG_LRU))
                continue;
            m->ctr[PA_CTR_COMPACT_ISOLATED]++;      /* isolate_migratepages_block() */
            if (!migrate_page(m, cc, pfn, block))
                return COMPACT_COMPLETE;            /* the free scanner met the migrate scanner */
        }
        /* the migrate scanner left the block: free what it freed to the buddy so it
         * can merge (compact_zone()'s lru_add_drain_cpu_zone -> drain_local_pages) */
        if (cc->migrated)
            drain_local_pages(m, z);
        if (compact_finished(z, cc->order))
            return COMPACT_SUCCESS;
    }
    return COMPACT_COMPLETE;
}

/* compact_zone(): the scanners' counts go to vmstat as compact_zone() adds them */
static int compact_zone(pa_machine *m, struct compact_control *cc)
{
    int ret = compaction_suit_allocation_order(m, cc->zone, cc->order, cc->highest, cc->alloc_flags);
    if (ret != COMPACT_CONTINUE)
        return ret;
    ret = compact_zone_scan(m, cc);
    m->ctr[PA_CTR_COMPACT_MIGRATE_SCANNED] += cc->migrate_scanned;
    m->ctr[PA_CTR_COMPACT_FREE_SCANNED] += cc->free_scanned;
    return ret;
}

/* compact_node() for a write to /proc/sys/vm/compact_memory: order -1 (no
 * free block ends a zone early), sync, every zone whole; the scanners are
 * counted, no stall (the writer is not an allocation) */
void compact_node(pa_machine *m)
{
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        struct pa_zone *z = &m->zones[zid];
        if (!z->managed)
            continue;
        struct compact_control cc = {.zone = z, .order = PA_NR_PAGE_ORDERS, .highest = (unsigned)zid};
        compact_zone_scan(m, &cc);
        m->ctr[PA_CTR_COMPACT_MIGRATE_SCANNED] += cc.migrate_scanned;
        m->ctr[PA_CTR_COMPACT_FREE_SCANNED] += cc.free_scanned;
    }
}

/* try_to_compact_pages(): the best result over the zones, highest first */
int try_to_compact_pages(pa_machine *m, uint32_t gfp, unsigned order, unsigned alloc_flags, unsigned highest,
                         int prio)
{
    if (!(gfp & GFP_IO_BIT))                    /* gfp_compaction_allowed() */
        return COMPACT_SKIPPED;
    int rc = COMPACT_SKIPPED;
    uint64_t migrated = 0;
    for (int zid = (int)highest; zid >= 0; zid--) {
        struct pa_zone *z = &m->zones[zid];
        if (!z->managed)
            continue;
        if (prio > COMPACT_PRIO_SYNC_FULL && compaction_deferred(m, z, order)) {
            if (rc < COMPACT_DEFERRED)
                rc = COMPACT_DEFERRED;
            continue;
        }
        struct compact_control cc = {.zone = z, .order = order, .highest = highest, .alloc_flags = alloc_flags,
                                     .migratetype = (gfp >> 3) & 3, .async = prio == COMPACT_PRIO_ASYNC,
                                     .direct = true};
        int status = compact_zone(m, &cc);
        migrated += cc.migrated;
        if (status > rc)
            rc = status;
        if (status == COMPACT_SUCCESS) {
            compaction_defer_reset(m, z, order, false);
            break;
        }
        if (prio != COMPACT_PRIO_ASYNC && (status == COMPACT_COMPLETE || status == COMPACT_PARTIAL_SKIPPED))
            defer_compaction(m, z, order);
    }
    if (rc > COMPACT_SKIPPED) {
        m->cost[PA_COST_COMPACTED] += migrated;
        reclaim_stall(m, 1 + migrated * MIGRATE_US);
    }
    return rc;
}

/* -- kcompactd ------------------------------------------------------------------------- */

/* kcompactd_node_suitable(): some zone where compaction could make the block */
static bool kcompactd_node_suitable(pa_machine *m)
{
    for (unsigned zid = 0; zid <= m->kcompactd_highest && zid < PA_MAX_NR_ZONES; zid++) {
        const struct pa_zone *z = &m->zones[zid];
        if (z->managed && compaction_suit_allocation_order(m, z, m->kcompactd_max_order, m->kcompactd_highest,
                                                           ALLOC_WMARK_MIN) == COMPACT_CONTINUE)
            return true;
    }
    return false;
}

/* wakeup_kcompactd(): remember the largest order and the tightest zone asked
 * for; wake the thread when a zone is suitable */
void wakeup_kcompactd(pa_machine *m, unsigned order, unsigned highest)
{
    if (!order)
        return;
    if (!m->kcompactd_max_order || highest < m->kcompactd_highest)
        m->kcompactd_highest = highest;
    if (m->kcompactd_max_order < order)
        m->kcompactd_max_order = order;
    if (kcompactd_node_suitable(m))
        m->kcompactd_wanted = 1;
}

/* kcompactd_do_work(): sync-light over the zones, lowest first; a zone that
 * cannot be compacted is deferred as by sync direct compaction.  kcompactd's
 * time is a memory stall (kcompactd() wraps it in psi_memstall_enter), but
 * not the calling task's cost. */
void kcompactd_run(pa_machine *m)
{
    unsigned order = m->kcompactd_max_order, highest = m->kcompactd_highest;
    m->kcompactd_wanted = 0;
    m->kcompactd_max_order = 0;
    m->ctr[PA_CTR_COMPACT_DAEMON_WAKE]++;
    uint64_t migrated = 0;
    for (unsigned zid = 0; zid <= highest && zid < PA_MAX_NR_ZONES; zid++) {
        struct pa_zone *z = &m->zones[zid];
        if (!z->managed || compaction_deferred(m, z, order))
            continue;
        if (compaction_suit_allocation_order(m, z, order, zid, ALLOC_WMARK_MIN) != COMPACT_CONTINUE)
            continue;
        struct compact_control cc = {.zone = z, .order = order, .highest = zid, .alloc_flags = ALLOC_WMARK_MIN,
                                     .migratetype = MIGRATE_UNMOVABLE, .async = false, .direct = false};
        int status = compact_zone(m, &cc);
        migrated += cc.migrated;
        if (status == COMPACT_SUCCESS) {
            compaction_defer_reset(m, z, order, false);
        } else if (status == COMPACT_PARTIAL_SKIPPED || status == COMPACT_COMPLETE) {
            drain_all_pages(m, z);
            defer_compaction(m, z, order);
        }
        m->ctr[PA_CTR_COMPACT_DAEMON_MIGRATE_SCANNED] += cc.migrate_scanned;
        m->ctr[PA_CTR_COMPACT_DAEMON_FREE_SCANNED] += cc.free_scanned;
    }
    uint64_t stall = m->cost[PA_COST_STALL_US];
    reclaim_stall(m, 1 + migrated * MIGRATE_US);
    m->cost[PA_COST_STALL_US] = stall;
}
