"""Memory compaction: the model's twin of csrc/compaction.c (read its essay)."""

from __future__ import annotations

from .._abi import (
    COMPACT_MAX_DEFER_SHIFT, COST, CTR, GFP_IO, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_TYPES, MIGRATE_US,
    NR_PAGE_ORDERS, PAGE_SHIFT, PAGE_SIZE, PAGEBLOCK_NR_PAGES, PG_LRU, VM_SYSCTL,
)
from .arena import NIL, Arena, Zone
from . import pcp

# include/linux/compaction.h, in the kernel's order
(COMPACT_NOT_SUITABLE_ZONE, COMPACT_SKIPPED, COMPACT_DEFERRED, COMPACT_NO_SUITABLE_PAGE, COMPACT_CONTINUE,
 COMPACT_COMPLETE, COMPACT_PARTIAL_SKIPPED, COMPACT_CONTENDED, COMPACT_SUCCESS) = range(9)
COMPACT_PRIO_SYNC_FULL, COMPACT_PRIO_SYNC_LIGHT, COMPACT_PRIO_ASYNC = range(3)
PAGE_ALLOC_COSTLY_ORDER = 3
ALLOC_WMARK_MIN = 0
ALLOC_WMARK_MASK = 3
MIGRATE_UNMOVABLE = 0
_EXTFRAG = VM_SYSCTL["extfrag_threshold"]


class CompactControl:
    __slots__ = ("zone", "order", "highest", "alloc_flags", "migratetype", "async_", "direct",
                 "free_block", "free_pfn", "migrated", "migrate_scanned", "free_scanned")

    def __init__(self, z: Zone, order: int, highest: int, alloc_flags: int, migratetype: int, async_: bool,
                 direct: bool) -> None:
        self.zone = z
        self.order = order
        self.highest = highest
        self.alloc_flags = alloc_flags
        self.migratetype = migratetype
        self.async_ = async_
        self.direct = direct
        self.migrated = self.migrate_scanned = self.free_scanned = 0
        self.free_block = max((z.end_pfn - 1) & ~(PAGEBLOCK_NR_PAGES - 1), z.start_pfn)
        self.free_pfn = self.free_block


# -- deferral -----------------------------------------------------------------------------

def defer_compaction(a: Arena, z: Zone, order: int) -> None:
    d = a.compact_defer[z.zid]
    d[0] = 0
    if d[1] < COMPACT_MAX_DEFER_SHIFT:
        d[1] += 1
    if order < d[2]:
        d[2] = order


def compaction_deferred(a: Arena, z: Zone, order: int) -> bool:
    d = a.compact_defer[z.zid]
    limit = 1 << d[1]
    if order < d[2]:
        return False
    d[0] += 1
    if d[0] >= limit:
        d[0] = limit
        return False
    return True


def compaction_defer_reset(a: Arena, z: Zone, order: int, alloc_success: bool) -> None:
    d = a.compact_defer[z.zid]
    if alloc_success:
        d[0] = d[1] = 0
    if order >= d[2]:
        d[2] = order + 1


# -- suitability ----------------------------------------------------------------------------

def zone_reclaimable_pages(a: Arena, z: Zone) -> int:
    nr = z.nr_lru[2] + z.nr_lru[3]
    if a.ctr[CTR["nr_swap_free"]] > 0:
        nr += z.nr_lru[0] + z.nr_lru[1]
    return nr if nr else z.nr_free_pages


def compaction_suitable_free(z: Zone, order: int, watermark: int, highest: int, free_pages: int) -> bool:
    from .buddy import zone_watermark_ok_free
    watermark += 2 << order
    if order > PAGE_ALLOC_COSTLY_ORDER:
        watermark += z.wmark[1] - z.wmark[0]
    return zone_watermark_ok_free(z, 0, watermark, highest, 0, free_pages)


def fragmentation_index(z: Zone, order: int) -> int:
    blocks_total = pages = suitable = 0
    for o in range(NR_PAGE_ORDERS):
        blocks = sum(z.nr_free[o][mt] for mt in range(MIGRATE_TYPES))
        blocks_total += blocks
        pages += blocks << o
        if o >= order:
            suitable += blocks << (o - order)
    if not blocks_total:
        return 0
    if suitable:
        return -1000
    return 1000 - (1000 + pages * 1000 // (1 << order)) // blocks_total


def compaction_suitable(a: Arena, z: Zone, order: int, watermark: int, highest: int) -> bool:
    if not compaction_suitable_free(z, order, watermark, highest, z.nr_free_pages):
        return False
    if order > PAGE_ALLOC_COSTLY_ORDER:
        fragindex = fragmentation_index(z, order)
        if 0 <= fragindex <= a.vm_sysctl[_EXTFRAG]:
            return False
    return True


def compaction_suit_allocation_order(a: Arena, z: Zone, order: int, highest: int, alloc_flags: int) -> int:
    from .buddy import zone_watermark_ok
    watermark = z.wmark[alloc_flags & ALLOC_WMARK_MASK]
    if zone_watermark_ok(z, order, watermark, highest, alloc_flags):
        return COMPACT_SUCCESS
    if not compaction_suitable(a, z, order, watermark, highest):
        return COMPACT_SKIPPED
    return COMPACT_CONTINUE


def compaction_zonelist_suitable(a: Arena, order: int, highest: int) -> bool:
    for zid in range(highest, -1, -1):
        z = a.zones[zid]
        if not z.managed:
            continue
        available = zone_reclaimable_pages(a, z) // order + z.nr_free_pages
        if compaction_suitable_free(z, order, z.wmark[0], highest, available):
            return True
    return False


# -- the scanners -----------------------------------------------------------------------------

def compact_finished(z: Zone, order: int) -> bool:
    return any(z.nr_free[o][mt] for o in range(order, NR_PAGE_ORDERS) for mt in range(MIGRATE_PCPTYPES))


def isolate_freepage(a: Arena, cc: CompactControl, migrate_block: int) -> int:
    from . import buddy
    z = cc.zone
    while cc.free_block > migrate_block:
        end = min(cc.free_block + PAGEBLOCK_NR_PAGES, z.end_pfn)
        suitable = buddy.get_pageblock_mt(a, cc.free_block) == MIGRATE_MOVABLE
        while suitable and cc.free_pfn < end:
            pfn = cc.free_pfn
            cc.free_scanned += 1
            found = buddy.block_containing(a, pfn, buddy.PG_BUDDY)
            if found is None:
                cc.free_pfn += 1
                continue
            head, order = found
            if order >= cc.order:
                cc.free_pfn = head + (1 << order)
                continue
            cc.free_pfn += 1
            a.ctr[CTR["compact_isolated"]] += 1
            return buddy.take_free_page(a, z, pfn)
        if cc.free_block < z.start_pfn + PAGEBLOCK_NR_PAGES:
            break
        cc.free_block -= PAGEBLOCK_NR_PAGES
        cc.free_pfn = cc.free_block
    return NIL


def migrate_page(a: Arena, cc: CompactControl, pfn: int, migrate_block: int) -> bool:
    from . import buddy, reclaim
    target = isolate_freepage(a, cc, migrate_block)
    if target == NIL:
        return False
    a.write(target << PAGE_SHIFT, a.read(pfn << PAGE_SHIFT, PAGE_SIZE))
    kind = a.pages[pfn].kind
    reclaim.lru_replace_page(a, pfn, target)
    a.pages[pfn].kind = kind
    buddy.free_pages(a, pfn, 0, kind)
    a.ctr[CTR["pgmigrate_success"]] += 1
    cc.migrated += 1
    return True


def suitable_migration_source(a: Arena, cc: CompactControl, block: int) -> bool:
    from .buddy import get_pageblock_mt
    if not cc.async_ or not cc.direct:
        return True
    return get_pageblock_mt(a, block) == cc.migratetype


def compact_zone_scan(a: Arena, cc: CompactControl) -> int:
    z = cc.zone
    block = z.start_pfn & ~(PAGEBLOCK_NR_PAGES - 1)
    pages = a.pages
    isolated = CTR["compact_isolated"]
    while block < cc.free_block:
        if not suitable_migration_source(a, cc, block):
            block += PAGEBLOCK_NR_PAGES
            continue
        for pfn in range(max(block, z.start_pfn), min(block + PAGEBLOCK_NR_PAGES, z.end_pfn)):
            cc.migrate_scanned += 1
            p = pages.get(pfn)
            if p is None or not p.flags & PG_LRU:
                continue
            a.ctr[isolated] += 1
            if not migrate_page(a, cc, pfn, block):
                return COMPACT_COMPLETE
        # the migrate scanner left the block: free what it freed to the buddy so it can
        # merge (compact_zone()'s lru_add_drain_cpu_zone -> drain_local_pages)
        if cc.migrated:
            pcp.drain_local_pages(a, z)
        if compact_finished(z, cc.order):
            return COMPACT_SUCCESS
        block += PAGEBLOCK_NR_PAGES
    return COMPACT_COMPLETE


def compact_zone(a: Arena, cc: CompactControl) -> int:
    ret = compaction_suit_allocation_order(a, cc.zone, cc.order, cc.highest, cc.alloc_flags)
    if ret != COMPACT_CONTINUE:
        return ret
    ret = compact_zone_scan(a, cc)
    a.ctr[CTR["compact_migrate_scanned"]] += cc.migrate_scanned
    a.ctr[CTR["compact_free_scanned"]] += cc.free_scanned
    return ret


def compact_node(a: Arena) -> None:
    """compact_node() for a write to /proc/sys/vm/compact_memory (csrc/compaction.c)."""
    for zid, z in enumerate(a.zones):
        if not z.managed:
            continue
        cc = CompactControl(z, NR_PAGE_ORDERS, zid, 0, 0, False, False)
        compact_zone_scan(a, cc)
        a.ctr[CTR["compact_migrate_scanned"]] += cc.migrate_scanned
        a.ctr[CTR["compact_free_scanned"]] += cc.free_scanned


def try_to_compact_pages(a: Arena, gfp: int, order: int, alloc_flags: int, highest: int, prio: int) -> int:
    """The best compact_result over the zones, highest first."""
    from .reclaim import reclaim_stall
    if not gfp & GFP_IO:
        return COMPACT_SKIPPED
    rc = COMPACT_SKIPPED
    migrated = 0
    for zid in range(highest, -1, -1):
        z = a.zones[zid]
        if not z.managed:
            continue
        if prio > COMPACT_PRIO_SYNC_FULL and compaction_deferred(a, z, order):
            rc = max(rc, COMPACT_DEFERRED)
            continue
        cc = CompactControl(z, order, highest, alloc_flags, (gfp >> 3) & 3, prio == COMPACT_PRIO_ASYNC, True)
        status = compact_zone(a, cc)
        migrated += cc.migrated
        rc = max(rc, status)
        if status == COMPACT_SUCCESS:
            compaction_defer_reset(a, z, order, False)
            break
        if prio != COMPACT_PRIO_ASYNC and status in (COMPACT_COMPLETE, COMPACT_PARTIAL_SKIPPED):
            defer_compaction(a, z, order)
    if rc > COMPACT_SKIPPED:
        a.cost[COST["compacted"]] += migrated
        reclaim_stall(a, 1 + migrated * MIGRATE_US)
    return rc


# -- kcompactd ----------------------------------------------------------------------------------

def kcompactd_node_suitable(a: Arena) -> bool:
    highest = a.kcompactd_highest
    for zid in range(min(highest, len(a.zones) - 1) + 1):
        z = a.zones[zid]
        if z.managed and compaction_suit_allocation_order(a, z, a.kcompactd_max_order, highest,
                                                          ALLOC_WMARK_MIN) == COMPACT_CONTINUE:
            return True
    return False


def wakeup_kcompactd(a: Arena, order: int, highest: int) -> None:
    if not order:
        return
    if not a.kcompactd_max_order or highest < a.kcompactd_highest:
        a.kcompactd_highest = highest
    if a.kcompactd_max_order < order:
        a.kcompactd_max_order = order
    if kcompactd_node_suitable(a):
        a.kcompactd_wanted = 1


def kcompactd_run(a: Arena) -> None:
    """kcompactd_do_work(): see kcompactd_run() in csrc/compaction.c."""
    from .reclaim import reclaim_stall
    order, highest = a.kcompactd_max_order, a.kcompactd_highest
    a.kcompactd_wanted = 0
    a.kcompactd_max_order = 0
    a.ctr[CTR["compact_daemon_wake"]] += 1
    migrated = 0
    for zid in range(min(highest, len(a.zones) - 1) + 1):
        z = a.zones[zid]
        if not z.managed or compaction_deferred(a, z, order):
            continue
        if compaction_suit_allocation_order(a, z, order, zid, ALLOC_WMARK_MIN) != COMPACT_CONTINUE:
            continue
        cc = CompactControl(z, order, zid, ALLOC_WMARK_MIN, MIGRATE_UNMOVABLE, False, False)
        status = compact_zone(a, cc)
        migrated += cc.migrated
        if status == COMPACT_SUCCESS:
            compaction_defer_reset(a, z, order, False)
        elif status in (COMPACT_PARTIAL_SKIPPED, COMPACT_COMPLETE):
            pcp.drain_all_pages(a, z)
            defer_compaction(a, z, order)
        a.ctr[CTR["compact_daemon_migrate_scanned"]] += cc.migrate_scanned
        a.ctr[CTR["compact_daemon_free_scanned"]] += cc.free_scanned
    stall = a.cost[COST["stall_us"]]
    reclaim_stall(a, 1 + migrated * MIGRATE_US)
    a.cost[COST["stall_us"]] = stall
