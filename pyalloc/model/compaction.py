"""Direct compaction: the model's twin of csrc/compaction.c (read its essay)."""

from __future__ import annotations

from .._abi import (
    COST, CTR, GFP_IO, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIGRATE_US, NR_PAGE_ORDERS, PAGE_SHIFT, PAGE_SIZE,
    PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, PG_LRU,
)
from .arena import NIL, Arena, Zone
from . import pcp



class CompactControl:
    __slots__ = ("zone", "order", "free_block", "free_pfn", "migrated")

    def __init__(self, z: Zone, order: int) -> None:
        self.zone = z
        self.order = order
        self.migrated = 0
        self.free_block = max((z.end_pfn - 1) & ~(PAGEBLOCK_NR_PAGES - 1), z.start_pfn)
        self.free_pfn = self.free_block


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
            a.ctr[CTR["compact_free_scanned"]] += 1
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


def compact_zone(a: Arena, z: Zone, order: int) -> int:
    cc = CompactControl(z, order)
    block = z.start_pfn & ~(PAGEBLOCK_NR_PAGES - 1)
    pages = a.pages
    while block < cc.free_block:
        for pfn in range(max(block, z.start_pfn), min(block + PAGEBLOCK_NR_PAGES, z.end_pfn)):
            a.ctr[CTR["compact_migrate_scanned"]] += 1
            p = pages.get(pfn)
            if p is None or not p.flags & PG_LRU:
                continue
            if not migrate_page(a, cc, pfn, block):
                return cc.migrated
        # the migrate scanner left the block: free what it freed to the buddy so it can
        # merge (compact_zone()'s lru_add_drain_cpu_zone -> drain_local_pages)
        if cc.migrated:
            pcp.drain_local_pages(a, z)
        if compact_finished(z, order):
            break
        block += PAGEBLOCK_NR_PAGES
    return cc.migrated


def try_to_compact_pages(a: Arena, gfp: int, order: int, highest: int):
    """(ran, progress): compaction ran in some zone; it moved pages."""
    from .reclaim import reclaim_stall
    if not order or not gfp & GFP_IO:
        return False, False
    ran = False
    migrated = 0
    for zid in range(highest, -1, -1):
        z = a.zones[zid]
        if not z.managed or compact_finished(z, order):
            continue
        if z.nr_free_pages < z.wmark[1] + (2 << order):
            continue
        if not ran:
            a.ctr[CTR["compact_stall"]] += 1
            a.cost[COST["slept"]] = 1
        ran = True
        migrated += compact_zone(a, z, order)
    if ran:
        a.cost[COST["compacted"]] += migrated
        reclaim_stall(a, 1 + migrated * MIGRATE_US)
    return ran, migrated > 0
