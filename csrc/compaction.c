/*
 * compaction.c - direct compaction (mm/compaction.c), the synchronous kind.
 * pyalloc/model/compaction.py is the same algorithm.
 *
 * Within each zone the allocation may use, highest first, a migrate scanner
 * walks pageblocks up from the zone's start and moves every movable page it
 * finds (pages on the LRU lists: processes' memory and the page cache) into
 * free pages that a free scanner takes from pageblocks walking down from the
 * zone's end, until the scanners meet or a free block of the wanted order
 * exists.  The free scanner takes pages only from Movable pageblocks and
 * never from a free block of the wanted order or larger (breaking one up
 * would undo the work).  Each page moved costs MIGRATE_US.
 *
 * Not modelled: async/sync-light modes, deferral, the pageblock skip hints,
 * kcompactd, and isolating pages in batches (one page is moved at a time).
 */
#include <string.h>

#include "internal.h"

#define MIGRATE_US 2

struct compact_control {
    struct pa_zone *zone;
    unsigned order;
    uint64_t free_block;        /* the free scanner's pageblock */
    uint64_t free_pfn;          /* next page it looks at inside that block */
    uint64_t migrated;
};

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
            m->ctr[PA_CTR_COMPACT_FREE_SCANNED]++;
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

/* migrate_pages() for one LRU page: copy it, move every reference, free the old one */
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

static uint64_t compact_zone(pa_machine *m, struct pa_zone *z, unsigned order)
{
    struct compact_control cc = {.zone = z, .order = order};
    uint64_t last = z->end_pfn - 1;
    cc.free_block = last & ~(uint64_t)(PAGEBLOCK_NR_PAGES - 1);
    if (cc.free_block < z->start_pfn)
        cc.free_block = z->start_pfn;
    cc.free_pfn = cc.free_block;
    for (uint64_t block = z->start_pfn & ~(uint64_t)(PAGEBLOCK_NR_PAGES - 1); block < cc.free_block;
         block += PAGEBLOCK_NR_PAGES) {
        uint64_t start = block < z->start_pfn ? z->start_pfn : block;
        for (uint64_t pfn = start; pfn < block + PAGEBLOCK_NR_PAGES && pfn < z->end_pfn; pfn++) {
            m->ctr[PA_CTR_COMPACT_MIGRATE_SCANNED]++;
            const struct pa_page *p = &m->pages[pfn];
            if (!(p->flags & PA_PG_LRU))
                continue;
            if (!migrate_page(m, &cc, pfn, block))
                return cc.migrated;
        }
        /* the migrate scanner left the block: free what it freed to the buddy so it
         * can merge (compact_zone()'s lru_add_drain_cpu_zone -> drain_local_pages) */
        if (cc.migrated)
            drain_local_pages(m, z);
        if (compact_finished(z, order))
            break;
    }
    return cc.migrated;
}

/* try_to_compact_pages(): true when compaction ran in some zone (it was not
 * skipped); *progress when it moved pages */
uint64_t try_to_compact_pages(pa_machine *m, uint32_t gfp, unsigned order, unsigned highest, bool *progress)
{
    *progress = false;
    if (!order || !(gfp & GFP_IO_BIT))
        return 0;
    bool ran = false;
    uint64_t migrated = 0;
    for (int zid = (int)highest; zid >= 0; zid--) {
        struct pa_zone *z = &m->zones[zid];
        if (!z->managed || compact_finished(z, order))
            continue;
        /* compaction_suitable(): enough free pages above low to migrate into */
        if (z->nr_free_pages < z->wmark[1] + (2ull << order))
            continue;
        if (!ran) {
            m->ctr[PA_CTR_COMPACT_STALL]++;
            m->cost[PA_COST_SLEPT] = 1;
        }
        ran = true;
        migrated += compact_zone(m, z, order);
    }
    if (ran) {
        m->cost[PA_COST_COMPACTED] += migrated;
        reclaim_stall(m, 1 + migrated * MIGRATE_US);
    }
    *progress = migrated > 0;
    return ran;
}
