"""The buddy page allocator: the model's twin of csrc/buddy.c.

Each zone has ``free_area[order].free_list[migratetype]``: doubly linked lists
of free blocks threaded through the page descriptors (pfn links), plus
counters.  Every choice that decides an address follows Linux 6.18:

* allocation takes the **head** of the smallest order that has a block of the
  wanted migratetype (``rmqueue_smallest``);
* ``expand`` keeps the **low** half and puts each upper half at the **head** of
  the list one order down, so order 0 from an order-3 block at P returns P and
  frees P+4 (o2), P+2 (o1), P+1 (o0);
* a freed block merges with its buddy while the buddy is free with the same
  order (``pfn ^ (1 << order)``); the result goes to the list **head**, or to
  the **tail** when the next-higher merge looks likely (``buddy_merge_likely``,
  orders below 9); boot frees go to the tail in ascending pfn order;
* when the wanted migratetype is empty, ``rmqueue_claim`` searches from order
  10 down for the largest block of a fallback type and claims its pageblock(s)
  where the kernel would, then ``rmqueue_steal`` takes the smallest fallback
  block without claiming (the 6.15+ claim/steal split);
* zones are tried from the highest the mask allows downwards, first at the low
  watermark (fast path), then at the min watermark with the reserves the mask
  earns (slow path), then without watermarks for __GFP_MEMALLOC.

Orders 0..3 and the THP order go through this CPU's per-cpu page lists first
(pcp.py): freed blocks wait there, LIFO, out of the free counts.

Left out, and said so in the README: watermark boosting,
ALLOC_NOFRAGMENT, reclaim, compaction and the OOM killer (a request that fails
the watermarks fails).
"""

from __future__ import annotations

from .arena import INT64_MAX, INT64_MIN, NIL, Arena, Zone, c_ints
from .._abi import (
    ALLOC_CPUSET, ALLOC_HIGHATOMIC, ALLOC_KSWAPD, ALLOC_MIN_RESERVE,
    ALLOC_NO_WATERMARKS, ALLOC_NON_BLOCK, ALLOC_OOM, ALLOC_RESERVES,
    ALLOC_WMARK_LOW, ALLOC_WMARK_MASK, ALLOC_WMARK_MIN, E2BIG, EDOUBLEFREE,
    EINVAL, EINVALFREE, ENOMEM, GFP_BITS_MASK, GFP_COMP, GFP_DIRECT_RECLAIM,
    GFP_HIGH, GFP_KSWAPD_RECLAIM, GFP_MEMALLOC, GFP_NOFAIL, GFP_NOMEMALLOC,
    GFP_RETRY_MAYFAIL, GFP_THISNODE, GFP_ZERO, KIND_PAGES, KIND_PCP, MAX_NR_ZONES,
    MAX_PAGE_ORDER, MIGRATE_HIGHATOMIC, MIGRATE_MOVABLE, MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE, MIGRATE_TYPES, MIGRATE_UNMOVABLE, NR_PAGE_ORDERS, OK,
    PAGE_ALLOC_COSTLY_ORDER, PAGE_SHIFT, PAGE_STATE_ALLOCATED,
    PAGE_STATE_FREE, PAGE_STATE_INTERIOR, PAGE_STATE_OUT_OF_RANGE,
    PAGEBLOCK_NR_PAGES, PAGEBLOCK_ORDER, PG_ALLOC, PG_BUDDY, PG_FREED, PG_HEAD,
    PG_MOVABLE, ZONE_NORMAL, ALLOC_WMARK_HIGH, GFP_FS, GFP_IO, GFP_NORETRY, KIND_ANON, KIND_FILE,
)
from .._abi import COST, CTR
from . import compaction, kthread, pcp, reclaim

# gfp_zone(): the low four gfp bits -> zone; -1 marks GFP_ZONE_BAD combinations
GFP_ZONE_TABLE = (2, 0, 2, -1, 1, -1, -1, -1, 2, 0, 3, -1, 1, -1, -1, -1)

# fallbacks[] of mm/page_alloc.c: where each type looks when its lists are empty
FALLBACKS = (
    (MIGRATE_RECLAIMABLE, MIGRATE_MOVABLE),      # Unmovable
    (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE),    # Movable
    (MIGRATE_UNMOVABLE, MIGRATE_MOVABLE),        # Reclaimable
)


# -- pageblock migratetypes --------------------------------------------------

def get_pageblock_mt(a: Arena, pfn: int) -> int:
    return a.pageblock_mt[pfn >> PAGEBLOCK_ORDER]


def set_pageblock_mt(a: Arena, z: Zone, pfn: int, mt: int) -> None:
    i = pfn >> PAGEBLOCK_ORDER
    old = a.pageblock_mt[i]
    if old != mt:
        z.pageblocks[old] -= 1
        z.pageblocks[mt] += 1
        a.pageblock_mt[i] = mt


def change_pageblock_range(a: Arena, z: Zone, pfn: int, order: int, mt: int) -> None:
    for blk in range(pfn, pfn + (1 << order), PAGEBLOCK_NR_PAGES):
        set_pageblock_mt(a, z, blk, mt)


# -- free lists -----------------------------------------------------------------

def account_freepages(z: Zone, order: int, mt: int, delta_blocks: int) -> None:
    pages = delta_blocks << order
    z.nr_free[order][mt] += delta_blocks
    z.nr_free_mt_pages[mt] += pages
    z.nr_free_pages += pages
    if order >= PAGEBLOCK_ORDER:
        z.nr_free_blocks_pages += pages


def add_to_free_list(a: Arena, z: Zone, pfn: int, order: int, mt: int, tail: bool) -> None:
    p = a.page(pfn)
    p.flags |= PG_BUDDY
    p.order = order
    if tail:
        old = z.tail[order][mt]
        p.prev, p.next = old, NIL
        if old == NIL:
            z.head[order][mt] = pfn
        else:
            a.pages[old].next = pfn
        z.tail[order][mt] = pfn
    else:
        old = z.head[order][mt]
        p.prev, p.next = NIL, old
        if old == NIL:
            z.tail[order][mt] = pfn
        else:
            a.pages[old].prev = pfn
        z.head[order][mt] = pfn
    account_freepages(z, order, mt, 1)


def del_from_free_list(a: Arena, z: Zone, pfn: int, order: int, mt: int) -> None:
    p = a.pages[pfn]
    if p.prev == NIL:
        z.head[order][mt] = p.next
    else:
        a.pages[p.prev].next = p.next
    if p.next == NIL:
        z.tail[order][mt] = p.prev
    else:
        a.pages[p.next].prev = p.prev
    p.next = p.prev = NIL
    p.flags &= ~PG_BUDDY
    account_freepages(z, order, mt, -1)


def move_to_free_list(a: Arena, z: Zone, pfn: int, order: int, old_mt: int, new_mt: int) -> None:
    # list_move_tail in the kernel: a moved block goes to the tail of its new list
    del_from_free_list(a, z, pfn, order, old_mt)
    add_to_free_list(a, z, pfn, order, new_mt, tail=True)


def free_area_empty(z: Zone, order: int, mt: int) -> bool:
    return z.nr_free[order][mt] == 0


def get_page_from_free_area(a: Arena, z: Zone, order: int, mt: int) -> int:
    """The head block of a free list, materialising a pristine block if needed."""
    pfn = z.head[order][mt]
    if pfn != NIL:
        return pfn
    if order == MAX_PAGE_ORDER and mt == MIGRATE_MOVABLE and z.pristine_next < z.pristine_end:
        # Pristine blocks are the virtual tail of this list; the real list is
        # empty, so the first of them is its head.  Link it for real: counters
        # already include it, so undo the accounting add_to_free_list does.
        pfn = z.pristine_next
        z.pristine_next += 1 << MAX_PAGE_ORDER
        add_to_free_list(a, z, pfn, MAX_PAGE_ORDER, MIGRATE_MOVABLE, tail=True)
        account_freepages(z, MAX_PAGE_ORDER, MIGRATE_MOVABLE, -1)
        return pfn
    return NIL


def expand(a: Arena, z: Zone, pfn: int, low: int, high: int, mt: int) -> None:
    """Split a block of order *high* down to *low*, keeping the low half."""
    size = 1 << high
    while high > low:
        high -= 1
        size >>= 1
        add_to_free_list(a, z, pfn + size, high, mt, tail=False)


def page_del_and_expand(a: Arena, z: Zone, pfn: int, order: int, high: int, mt: int) -> None:
    del_from_free_list(a, z, pfn, high, mt)
    expand(a, z, pfn, order, high, mt)


def rmqueue_smallest(a: Arena, z: Zone, order: int, mt: int) -> int:
    for cur in range(order, NR_PAGE_ORDERS):
        if free_area_empty(z, cur, mt):
            continue
        pfn = get_page_from_free_area(a, z, cur, mt)
        page_del_and_expand(a, z, pfn, order, cur, mt)
        return pfn
    return NIL


def should_try_claim_block(order: int, start_mt: int) -> bool:
    if order >= PAGEBLOCK_ORDER // 2:
        return True
    return start_mt in (MIGRATE_RECLAIMABLE, MIGRATE_UNMOVABLE)


def find_suitable_fallback(z: Zone, order: int, mt: int, claimable: bool) -> int:
    if claimable and not should_try_claim_block(order, mt):
        return -2
    for fmt in FALLBACKS[mt]:
        if not free_area_empty(z, order, fmt):
            return fmt
    return -1


def pageblock_scan(a: Arena, z: Zone, start: int):
    """Free and movable pages of the pageblock at *start* (prep_move_freepages_block)."""
    end = min(start + PAGEBLOCK_NR_PAGES, z.end_pfn)
    free = movable = 0
    pfn = start
    pages = a.pages
    while pfn < end:
        p = pages.get(pfn)
        if p is not None and p.flags & PG_BUDDY:
            free += 1 << p.order
            pfn += 1 << p.order
            continue
        if p is not None and p.flags & PG_ALLOC and p.flags & PG_MOVABLE:
            movable += 1
        pfn += 1
    return free, movable


def move_freepages_block(a: Arena, z: Zone, start: int, old_mt: int, new_mt: int) -> None:
    """Move every free block of the pageblock to the new type's lists, and retag it."""
    end = min(start + PAGEBLOCK_NR_PAGES, z.end_pfn)
    pfn = start
    pages = a.pages
    while pfn < end:
        p = pages.get(pfn)
        if p is not None and p.flags & PG_BUDDY:
            order = p.order
            move_to_free_list(a, z, pfn, order, old_mt, new_mt)
            pfn += 1 << order
        else:
            pfn += 1
    set_pageblock_mt(a, z, start, new_mt)


def pageblock_in_zone(z: Zone, start: int) -> bool:
    return z.start_pfn <= start and start + PAGEBLOCK_NR_PAGES <= z.end_pfn


def try_to_claim_block(a: Arena, z: Zone, pfn: int, cur: int, order: int,
                       start_mt: int, block_mt: int) -> int:
    if cur >= PAGEBLOCK_ORDER:
        # a whole pageblock (or more) is free: take ownership of all of it
        del_from_free_list(a, z, pfn, cur, block_mt)
        change_pageblock_range(a, z, pfn, cur, start_mt)
        expand(a, z, pfn, order, cur, start_mt)
        return pfn
    start = pfn & ~(PAGEBLOCK_NR_PAGES - 1)
    if not pageblock_in_zone(z, start):
        return NIL
    free, movable = pageblock_scan(a, z, start)
    if start_mt == MIGRATE_MOVABLE:
        alike = movable
    elif block_mt == MIGRATE_MOVABLE:
        alike = PAGEBLOCK_NR_PAGES - (free + movable)
    else:
        alike = 0
    if free + alike >= 1 << (PAGEBLOCK_ORDER - 1):
        move_freepages_block(a, z, start, block_mt, start_mt)
        return rmqueue_smallest(a, z, order, start_mt)
    return NIL


def rmqueue_claim(a: Arena, z: Zone, order: int, start_mt: int) -> int:
    # the largest block of a fallback type approximates the emptiest pageblock
    for cur in range(MAX_PAGE_ORDER, order - 1, -1):
        fmt = find_suitable_fallback(z, cur, start_mt, True)
        if fmt == -1:
            continue
        if fmt == -2:
            break
        pfn = get_page_from_free_area(a, z, cur, fmt)
        pfn = try_to_claim_block(a, z, pfn, cur, order, start_mt, fmt)
        if pfn != NIL:
            return pfn
    return NIL


def rmqueue_steal(a: Arena, z: Zone, order: int, start_mt: int) -> int:
    for cur in range(order, NR_PAGE_ORDERS):
        fmt = find_suitable_fallback(z, cur, start_mt, False)
        if fmt == -1:
            continue
        pfn = get_page_from_free_area(a, z, cur, fmt)
        page_del_and_expand(a, z, pfn, order, cur, fmt)
        return pfn
    return NIL


def rmqueue_mode(a: Arena, z: Zone, order: int, mt: int, mode: list) -> int:
    """__rmqueue() for rmqueue_bulk(): mode[0] (0 normal, 1 claim, 2 steal) skips the steps
    that failed for the previous block of the same refill."""
    if mode[0] == 0:
        pfn = rmqueue_smallest(a, z, order, mt)
        if pfn != NIL:
            return pfn
    if mode[0] <= 1:
        pfn = rmqueue_claim(a, z, order, mt)
        if pfn != NIL:
            mode[0] = 0
            return pfn
    pfn = rmqueue_steal(a, z, order, mt)
    if pfn != NIL:
        mode[0] = 2
    return pfn


def rmqueue(a: Arena, z: Zone, order: int, mt: int, alloc_flags: int) -> int:
    if order <= PAGE_ALLOC_COSTLY_ORDER or order == PAGEBLOCK_ORDER:
        pfn = pcp.rmqueue_pcplist(a, z, order, mt)
        if pfn >= 0:
            return pfn
    pfn = NIL
    if alloc_flags & ALLOC_HIGHATOMIC:
        pfn = rmqueue_smallest(a, z, order, MIGRATE_HIGHATOMIC)
    if pfn == NIL:
        pfn = rmqueue_smallest(a, z, order, mt)
        if pfn == NIL:
            pfn = rmqueue_claim(a, z, order, mt)
        if pfn == NIL:
            pfn = rmqueue_steal(a, z, order, mt)
        # failing now is worse than failing a future high-order atomic request
        if pfn == NIL and alloc_flags & (ALLOC_OOM | ALLOC_NON_BLOCK):
            pfn = rmqueue_smallest(a, z, order, MIGRATE_HIGHATOMIC)
    return pfn


def reserve_highatomic_pageblock(a: Arena, z: Zone, pfn: int, order: int) -> None:
    # at most about 1% of the zone, in whole pageblocks; none if that is under one
    if z.managed // 100 < PAGEBLOCK_NR_PAGES:
        return
    max_managed = -(-(z.managed // 100) // PAGEBLOCK_NR_PAGES) * PAGEBLOCK_NR_PAGES
    if z.nr_reserved_highatomic >= max_managed:
        return
    mt = get_pageblock_mt(a, pfn)
    if mt >= MIGRATE_PCPTYPES:      # only normal pageblocks
        return
    if order < PAGEBLOCK_ORDER:
        start = pfn & ~(PAGEBLOCK_NR_PAGES - 1)
        if not pageblock_in_zone(z, start):
            return
        move_freepages_block(a, z, start, mt, MIGRATE_HIGHATOMIC)
        z.nr_reserved_highatomic += PAGEBLOCK_NR_PAGES
    else:
        change_pageblock_range(a, z, pfn, order, MIGRATE_HIGHATOMIC)
        z.nr_reserved_highatomic += 1 << order


# -- watermarks --------------------------------------------------------------------

def zone_watermark_ok(z: Zone, order: int, mark: int, highest: int, alloc_flags: int) -> bool:
    return zone_watermark_ok_free(z, order, mark, highest, alloc_flags, z.nr_free_pages)


def zone_watermark_ok_free(z: Zone, order: int, mark: int, highest: int, alloc_flags: int,
                           free_pages: int) -> bool:
    """__zone_watermark_ok() with the caller's count of free pages."""
    free = free_pages - ((1 << order) - 1)
    if not alloc_flags & ALLOC_RESERVES:
        free -= z.nr_free_mt_pages[MIGRATE_HIGHATOMIC]
    wmin = mark
    if alloc_flags & ALLOC_RESERVES:
        if alloc_flags & ALLOC_MIN_RESERVE:
            wmin -= wmin // 2
            if alloc_flags & ALLOC_NON_BLOCK:
                wmin -= wmin // 4
        if alloc_flags & ALLOC_OOM:
            wmin -= wmin // 2
    if free <= wmin + z.lowmem_reserve[highest]:
        return False
    if order == 0:
        return True
    for o in range(order, NR_PAGE_ORDERS):
        nr = z.nr_free[o]
        if nr[0] or nr[1] or nr[2]:
            return True
        if alloc_flags & (ALLOC_HIGHATOMIC | ALLOC_OOM) and nr[MIGRATE_HIGHATOMIC]:
            return True
    return False


def get_page_from_freelist(a: Arena, order: int, alloc_flags: int, highest: int, mt: int) -> int:
    for zid in range(highest, -1, -1):
        z = a.zones[zid]
        if not z.managed:
            continue
        # ZONE_BELOW_HIGH, noted here to keep the free path fast: while it is set,
        # frees shrink pcp->high (nr_pcp_high)
        if z.below_high or not zone_watermark_ok(z, order, z.wmark[2], highest, alloc_flags):
            z.below_high = 1
            if not alloc_flags & ALLOC_NO_WATERMARKS:
                mark = z.wmark[alloc_flags & ALLOC_WMARK_MASK]
                if not zone_watermark_ok(z, order, mark, highest, alloc_flags):
                    continue
        pfn = rmqueue(a, z, order, mt, alloc_flags)
        if pfn != NIL:
            if alloc_flags & ALLOC_HIGHATOMIC:
                reserve_highatomic_pageblock(a, z, pfn, order)
            z.pgalloc += 1 << order
            z.numa_hit += 1
            return pfn
    return NIL


def gfp_to_alloc_flags(gfp: int, order: int) -> int:
    alloc_flags = ALLOC_WMARK_MIN | ALLOC_CPUSET
    if gfp & GFP_HIGH:
        alloc_flags |= ALLOC_MIN_RESERVE
    if gfp & GFP_KSWAPD_RECLAIM:
        alloc_flags |= ALLOC_KSWAPD
    if not gfp & GFP_DIRECT_RECLAIM:
        if not gfp & GFP_NOMEMALLOC:
            alloc_flags |= ALLOC_NON_BLOCK
            if order > 0:
                alloc_flags |= ALLOC_HIGHATOMIC
        if alloc_flags & ALLOC_MIN_RESERVE:
            alloc_flags &= ~ALLOC_CPUSET
    return alloc_flags


# -- the slow path -----------------------------------------------------------------

MAX_RECLAIM_RETRIES = 16
MAX_COMPACT_RETRIES = 16
_COST_SEQ, _COST_OOM, _COST_RESERVES = COST["seq"], COST["oom_needed"], COST["reserves"]


def cost_begin(a: Arena) -> None:
    if a.cost[_COST_SEQ] != a.alloc_seq:
        a.cost[:] = [0] * len(a.cost)
        a.cost[_COST_SEQ] = a.alloc_seq


def alloc_pages_direct_compact(a: Arena, gfp: int, order: int, alloc_flags: int, highest: int, mt: int,
                               prio: int):
    """(pfn or NIL, compact_result): see alloc_pages_direct_compact() in csrc/buddy.c."""
    if not order:
        return NIL, compaction.COMPACT_SKIPPED
    result = compaction.try_to_compact_pages(a, gfp, order, alloc_flags, highest, prio)
    if result == compaction.COMPACT_SKIPPED:
        return NIL, result
    a.ctr[CTR["compact_stall"]] += 1
    a.cost[COST["slept"]] = 1
    pfn = get_page_from_freelist(a, order, alloc_flags, highest, mt)
    if pfn != NIL:
        compaction.compaction_defer_reset(a, a.zone_of(pfn), order, True)
        a.ctr[CTR["compact_success"]] += 1
    else:
        a.ctr[CTR["compact_fail"]] += 1
    return pfn, result


def unreserve_highatomic_pageblock(a: Arena, highest: int, mt: int, force: bool) -> bool:
    """unreserve_highatomic_pageblock(): see csrc/buddy.c."""
    for zid in range(highest, -1, -1):
        z = a.zones[zid]
        if not z.managed or (not force and z.nr_reserved_highatomic <= PAGEBLOCK_NR_PAGES):
            continue
        for order in range(NR_PAGE_ORDERS):
            pfn = get_page_from_free_area(a, z, order, MIGRATE_HIGHATOMIC)
            if pfn == NIL:
                continue
            size = PAGEBLOCK_NR_PAGES if order < PAGEBLOCK_ORDER else 1 << order
            z.nr_reserved_highatomic -= min(size, z.nr_reserved_highatomic)
            if order < PAGEBLOCK_ORDER:
                move_freepages_block(a, z, pfn & ~(PAGEBLOCK_NR_PAGES - 1), MIGRATE_HIGHATOMIC, mt)
            else:
                move_to_free_list(a, z, pfn, order, MIGRATE_HIGHATOMIC, mt)
                change_pageblock_range(a, z, pfn, order, mt)
            return True
    return False


def should_reclaim_retry(a: Arena, gfp: int, order: int, alloc_flags: int, highest: int, mt: int,
                         progress: bool, loops: list) -> bool:
    """should_reclaim_retry(): see csrc/buddy.c."""
    if progress and order <= PAGE_ALLOC_COSTLY_ORDER:
        loops[0] = 0
    else:
        loops[0] += 1
    if loops[0] <= MAX_RECLAIM_RETRIES:
        for zid in range(highest, -1, -1):
            z = a.zones[zid]
            if not z.managed:
                continue
            available = compaction.zone_reclaimable_pages(a, z) + z.nr_free_pages
            if zone_watermark_ok_free(z, order, z.wmark[0], highest, alloc_flags, available):
                return True
    return unreserve_highatomic_pageblock(a, highest, mt, True)


def should_compact_retry(a: Arena, order: int, highest: int, result: int, state: list) -> bool:
    """should_compact_retry(): state[2] is the priority, state[3] the retries; see csrc/buddy.c."""
    if not order:
        return False
    if result == compaction.COMPACT_SKIPPED:
        return compaction.compaction_zonelist_suitable(a, order, highest)
    if result == compaction.COMPACT_SUCCESS:
        max_retries = MAX_COMPACT_RETRIES // 4 if order > PAGE_ALLOC_COSTLY_ORDER else MAX_COMPACT_RETRIES
        state[3] += 1
        if state[3] <= max_retries:
            return True
    min_priority = (compaction.COMPACT_PRIO_SYNC_LIGHT if order > PAGE_ALLOC_COSTLY_ORDER
                    else compaction.COMPACT_PRIO_SYNC_FULL)
    if state[2] > min_priority:
        state[2] -= 1
        state[3] = 0
        return True
    return False


def oom_allowed(gfp: int, order: int, highest: int) -> bool:
    return (order <= PAGE_ALLOC_COSTLY_ORDER and not gfp & (GFP_RETRY_MAYFAIL | GFP_THISNODE)
            and highest >= ZONE_NORMAL)


def alloc_pages_slowpath(a: Arena, gfp: int, order: int, highest: int, mt: int) -> int:
    """__alloc_pages_slowpath(): see alloc_pages_slowpath() in csrc/buddy.c."""
    a.slowpath_entries += 1
    cost_begin(a)
    can_direct_reclaim = bool(gfp & GFP_DIRECT_RECLAIM)
    costly = order > PAGE_ALLOC_COSTLY_ORDER
    pfmemalloc = bool(gfp & GFP_MEMALLOC) and not gfp & GFP_NOMEMALLOC
    alloc_flags = gfp_to_alloc_flags(gfp, order)
    # rounds without reclaim progress, drained, compact priority, compaction retries
    loops = [0, 0, compaction.COMPACT_PRIO_SYNC_LIGHT, 0]
    pfn = _slowpath_attempts(a, gfp, order, highest, mt, can_direct_reclaim, costly, pfmemalloc,
                             alloc_flags, loops)
    if pfn == _OOM:
        return NIL
    if pfn == NIL and gfp & GFP_NOFAIL and can_direct_reclaim:
        if oom_allowed(gfp, order, highest):
            pfn = get_page_from_freelist(a, order, ALLOC_NO_WATERMARKS, highest, mt)
        if pfn == NIL:
            pfn = get_page_from_freelist(a, order, ALLOC_MIN_RESERVE, highest, mt)
    if pfn != NIL:
        z = a.zone_of(pfn)
        if z.nr_free_pages < z.wmark[0]:
            a.cost[_COST_RESERVES] = 1
    return pfn


_OOM = -2


def _slowpath_attempts(a, gfp, order, highest, mt, can_direct_reclaim, costly, pfmemalloc, alloc_flags, loops):
    can_compact = bool(gfp & GFP_IO)        # gfp_compaction_allowed()
    if alloc_flags & ALLOC_KSWAPD:
        reclaim.wakeup_kswapd(a, order, highest)
        # wakeup_kswapd(): a node kswapd leaves alone may still be too fragmented
        if not can_direct_reclaim and not a.kswapd_wanted:
            compaction.wakeup_kcompactd(a, order, highest)
    pfn = get_page_from_freelist(a, order, alloc_flags, highest, mt)
    if pfn != NIL:
        return pfn
    result = compaction.COMPACT_SKIPPED
    if can_direct_reclaim and can_compact and (costly or (order > 0 and mt != MIGRATE_MOVABLE)) \
            and not pfmemalloc:
        pfn, result = alloc_pages_direct_compact(a, gfp, order, alloc_flags, highest, mt,
                                                 compaction.COMPACT_PRIO_ASYNC)
        if pfn != NIL:
            return pfn
        if costly and gfp & GFP_NORETRY:
            if result in (compaction.COMPACT_SKIPPED, compaction.COMPACT_DEFERRED):
                return NIL
            loops[2] = compaction.COMPACT_PRIO_ASYNC
    while True:
        flags = ALLOC_NO_WATERMARKS | (alloc_flags & ALLOC_KSWAPD) if pfmemalloc else alloc_flags
        pfn = get_page_from_freelist(a, order, flags, highest, mt)
        if pfn != NIL:
            return pfn
        if not can_direct_reclaim:
            return NIL
        progress = reclaim.try_to_free_pages(a, gfp, order, highest)
        pfn = get_page_from_freelist(a, order, alloc_flags, highest, mt)
        # __alloc_pages_direct_reclaim(): pages may sit on the pcp lists or in a high-atomic
        # block: release those and retry once
        if pfn == NIL and not loops[1]:
            unreserve_highatomic_pageblock(a, highest, mt, False)
            pcp.drain_all_pages(a, None)
            loops[1] = 1
            pfn = get_page_from_freelist(a, order, alloc_flags, highest, mt)
        if pfn != NIL:
            return pfn
        pfn, result = alloc_pages_direct_compact(a, gfp, order, alloc_flags, highest, mt, loops[2])
        if pfn != NIL:
            return pfn
        if gfp & GFP_NORETRY:
            return NIL
        if costly and (not can_compact or not gfp & GFP_RETRY_MAYFAIL):
            return NIL
        if should_reclaim_retry(a, gfp, order, alloc_flags, highest, mt, bool(progress), loops):
            continue
        if progress and can_compact and should_compact_retry(a, order, highest, result, loops):
            continue
        break
    pfn = get_page_from_freelist(a, order, ALLOC_WMARK_HIGH | ALLOC_CPUSET, highest, mt)
    if pfn != NIL:
        return pfn
    if oom_allowed(gfp, order, highest):
        if not gfp & GFP_FS:
            if not gfp & GFP_NOFAIL:
                a.cost[COST["would_loop"]] = 1
                return _OOM
        elif not a.oom_mode:
            a.cost[_COST_OOM] = 1
            a.cost[COST["oom_gfp"]] = gfp
            a.cost[COST["oom_order"]] = order
            return _OOM
    return NIL


def prep_new_page(a: Arena, pfn: int, order: int, gfp: int, mt: int) -> None:
    p = a.page(pfn)
    flags = PG_ALLOC
    if gfp & GFP_COMP and order:
        flags |= PG_HEAD
    if mt == MIGRATE_MOVABLE:
        flags |= PG_MOVABLE
    p.flags = flags
    p.order = order
    p.kind = KIND_PAGES
    p.refcount = 1
    # the block is handed out again: no page in it is "freed" any more
    pages = a.pages
    for q in range(pfn + 1, pfn + (1 << order)):
        d = pages.get(q)
        if d is not None:
            d.flags &= ~PG_FREED
    if gfp & GFP_ZERO:
        a.memset(pfn << PAGE_SHIFT, 0, (1 << order) << PAGE_SHIFT)


def alloc_pages(a: Arena, gfp: int, order: int) -> int:
    """pfn of a new block, or a negative status (ENOMEM, E2BIG, EINVAL, EOOM)."""
    a.alloc_seq += 1
    return reclaim.call_end(a, alloc(a, gfp, order))


def alloc(a: Arena, gfp: int, order: int) -> int:
    """alloc_pages() for the core's own callers: no kswapd run at the end (buddy_alloc)."""
    if type(order) is not int or type(gfp) is not int or not INT64_MIN <= order <= INT64_MAX or not INT64_MIN <= gfp <= INT64_MAX:
        order, gfp = c_ints(order, gfp)
    a.ticks += 1
    if not 0 <= order <= MAX_PAGE_ORDER:
        return EINVAL if order < 0 else E2BIG
    if not 0 <= gfp < 1 << 32:
        return EINVAL
    traced_gfp = gfp
    gfp &= GFP_BITS_MASK
    highest = GFP_ZONE_TABLE[gfp & 0xf]
    if highest < 0:
        return EINVAL
    mt = (gfp >> 3) & 3
    if mt >= MIGRATE_PCPTYPES:
        return EINVAL           # both mobility bits: no FALLBACKS row (gfp.py refuses it)
    if a.kswapd_wanted:
        kthread.kthreads_catch_up(a)    # kswapd works between the pages of a call, by the clock
    pfn = get_page_from_freelist(a, order, ALLOC_WMARK_LOW, highest, mt)
    if pfn == NIL:
        pfn = alloc_pages_slowpath(a, gfp, order, highest, mt)
        if pfn == NIL:
            if a.trace is not None:
                a.trace.mm_page_alloc(a, NIL, order, traced_gfp, mt)
            return ENOMEM
    prep_new_page(a, pfn, order, gfp, mt)
    if a.trace is not None:
        a.trace.mm_page_alloc(a, pfn, order, traced_gfp, mt)
    return pfn


def take_free_page(a: Arena, z: Zone, pfn: int) -> int:
    """buddy_take_free_page(): split the free block holding pfn around it; pfn is now allocated."""
    found = block_containing(a, pfn, PG_BUDDY)
    if found is None:
        return NIL
    head, order = found
    mt = get_pageblock_mt(a, head)
    del_from_free_list(a, z, head, order, mt)
    while order > 0:
        order -= 1
        half = 1 << order
        if pfn >= head + half:
            add_to_free_list(a, z, head, order, mt, False)
            head += half
        else:
            add_to_free_list(a, z, head + half, order, mt, False)
    p = a.page(pfn)
    p.flags = PG_ALLOC | (PG_MOVABLE if mt == MIGRATE_MOVABLE else 0)
    p.order = 0
    p.kind = KIND_PAGES
    p.refcount = 1
    z.pgalloc += 1
    return pfn


# -- freeing -------------------------------------------------------------------------

def page_is_buddy(a: Arena, z: Zone, buddy: int, order: int) -> bool:
    if not z.start_pfn <= buddy < z.end_pfn:
        return False
    p = a.pages.get(buddy)
    return p is not None and bool(p.flags & PG_BUDDY) and p.order == order


def buddy_merge_likely(a: Arena, z: Zone, pfn: int, order: int) -> bool:
    if order >= MAX_PAGE_ORDER - 1:
        return False
    higher = pfn & ~(1 << order)
    return page_is_buddy(a, z, higher ^ (1 << (order + 1)), order + 1)


def free_one_page(a: Arena, z: Zone, pfn: int, order: int, mt: int, to_tail: bool) -> None:
    while order < MAX_PAGE_ORDER:
        buddy = pfn ^ (1 << order)
        if not page_is_buddy(a, z, buddy, order):
            break
        buddy_mt = mt
        if order >= PAGEBLOCK_ORDER:
            # no merging across a pageblock whose type does not mix (HighAtomic, Isolate)
            buddy_mt = get_pageblock_mt(a, buddy)
            if buddy_mt != mt and (mt >= MIGRATE_PCPTYPES or buddy_mt >= MIGRATE_PCPTYPES):
                break
        del_from_free_list(a, z, buddy, order, buddy_mt)
        if buddy_mt != mt:
            set_pageblock_mt(a, z, buddy, mt)
        pfn &= buddy
        order += 1
    if not to_tail:
        to_tail = buddy_merge_likely(a, z, pfn, order)
    add_to_free_list(a, z, pfn, order, mt, to_tail)


def block_containing(a: Arena, pfn: int, flag: int):
    """(head, order) of the block whose head carries *flag* (PG_BUDDY: free,
    PG_ALLOC: live) and that holds pfn, or None.  A block of order o is
    2^o-aligned, so its head is pfn with the low o bits cleared."""
    pages = a.pages
    for o in range(NR_PAGE_ORDERS):
        head = pfn & ~((1 << o) - 1)
        p = pages.get(head)
        if p is not None and p.flags & flag and p.order >= o:
            return head, p.order
    return None


def page_is_free(a: Arena, pfn: int):
    """(head, order) of the free block that holds pfn, pristine blocks included, or None."""
    z = a.zone_of(pfn)
    if z.pristine_next <= pfn < z.pristine_end:
        return pfn & ~((1 << MAX_PAGE_ORDER) - 1), MAX_PAGE_ORDER
    found = block_containing(a, pfn, PG_BUDDY)
    return found if found is not None else pcp.page_block(a, pfn)


def free_pages(a: Arena, pfn: int, order: int, kind: int = KIND_PAGES) -> int:
    """__free_pages(): 0, or EINVAL / EINVALFREE / EDOUBLEFREE with nothing changed."""
    if type(order) is not int or type(pfn) is not int or not INT64_MIN <= order <= INT64_MAX or not INT64_MIN <= pfn <= INT64_MAX:
        order, pfn = c_ints(order, pfn)
    a.ticks += 1
    if not 0 <= order <= MAX_PAGE_ORDER:
        return EINVAL
    if not 0 <= pfn < a.nr_pages:
        return EINVALFREE
    p = a.pages.get(pfn)
    if p is None or not p.flags & PG_ALLOC:
        if p is not None and p.flags & PG_FREED and page_is_free(a, pfn) is not None:
            return EDOUBLEFREE
        return EINVALFREE
    if p.order != order or p.kind != kind:
        return EINVALFREE
    if a.trace is not None:
        a.trace.mm_page_free(a, pfn, order)
    p.flags = PG_FREED
    p.kind = 0
    p.refcount = 0
    a.pgfree += 1 << order
    z = a.zone_of(pfn)
    if order <= PAGE_ALLOC_COSTLY_ORDER or order == PAGEBLOCK_ORDER:
        pcp.free_frozen_page_commit(a, z, pfn, order)
    else:
        free_one_page(a, z, pfn, order, get_pageblock_mt(a, pfn), to_tail=False)
    return OK


def page_state(a: Arena, pfn: int):
    """(state, head, order, kind, flags, refcount) of a pfn, for error messages."""
    if not 0 <= pfn < a.nr_pages:
        return PAGE_STATE_OUT_OF_RANGE, -1, 0, 0, 0, 0
    found = block_containing(a, pfn, PG_ALLOC)
    if found is not None:
        head, order = found
        hp = a.pages[head]
        st = PAGE_STATE_ALLOCATED if head == pfn else PAGE_STATE_INTERIOR
        return st, head, order, hp.kind, hp.flags, hp.refcount
    head, order = page_is_free(a, pfn)
    p = a.pages.get(pfn)
    head_page = a.pages.get(head) if head is not None and head >= 0 else None
    # a block on a per-cpu page list says so: free, but not PageBuddy
    kind = KIND_PCP if head_page is not None and head_page.kind == KIND_PCP else 0
    return PAGE_STATE_FREE, head, order, kind, p.flags if p is not None else 0, 0


# -- boot ------------------------------------------------------------------------------

def free_boot_tail(a: Arena) -> None:
    """Free the memory past the last whole order-10 block of each zone.

    The whole blocks stay pristine; the rest is freed as memblock does, in the
    largest aligned chunks, ascending, to the tail of the lists.
    """
    for z in a.zones:
        start, end = z.pristine_end, z.end_pfn
        while z.managed and start < end:
            order = min(MAX_PAGE_ORDER, (start & -start).bit_length() - 1) if start else MAX_PAGE_ORDER
            while start + (1 << order) > end:
                order -= 1
            free_one_page(a, z, start, order, get_pageblock_mt(a, start), to_tail=True)
            start += 1 << order


# -- invariants --------------------------------------------------------------------------

def check(a: Arena):
    """None if every invariant holds, else a message naming the first broken one."""
    nr_buddy_heads = 0
    for z in a.zones:
        if not z.managed:
            continue
        free_pages = 0
        mt_pages = [0] * MIGRATE_TYPES
        blocks_pages = 0
        for o in range(NR_PAGE_ORDERS):
            for mt in range(MIGRATE_TYPES):
                n = 0
                prev = NIL
                pfn = z.head[o][mt]
                while pfn != NIL:
                    p = a.pages.get(pfn)
                    if p is None or not p.flags & PG_BUDDY or p.order != o:
                        return f"zone {z.name}: pfn {pfn:#x} on free_list[{o}][{mt}] is not a free block of order {o}"
                    if p.prev != prev:
                        return f"zone {z.name}: free_list[{o}][{mt}] back link broken at pfn {pfn:#x}"
                    if pfn & ((1 << o) - 1) or not z.start_pfn <= pfn < z.end_pfn:
                        return f"zone {z.name}: misplaced free block at pfn {pfn:#x} order {o}"
                    if get_pageblock_mt(a, pfn) != mt:
                        return f"zone {z.name}: free block at pfn {pfn:#x} on list {mt} sits in a pageblock of type {get_pageblock_mt(a, pfn)}"
                    n += 1
                    prev = pfn
                    pfn = p.next
                    if n > z.managed:
                        return f"zone {z.name}: free_list[{o}][{mt}] loops"
                if prev != z.tail[o][mt]:
                    return f"zone {z.name}: free_list[{o}][{mt}] tail is wrong"
                nr_buddy_heads += n
                if o == MAX_PAGE_ORDER and mt == MIGRATE_MOVABLE:
                    n += (z.pristine_end - z.pristine_next) >> MAX_PAGE_ORDER
                if n != z.nr_free[o][mt]:
                    return f"zone {z.name}: nr_free[{o}][{mt}] is {z.nr_free[o][mt]} but the list holds {n}"
                free_pages += n << o
                mt_pages[mt] += n << o
                if o >= PAGEBLOCK_ORDER:
                    blocks_pages += n << o
        if free_pages != z.nr_free_pages:
            return f"zone {z.name}: nr_free_pages is {z.nr_free_pages} but the lists hold {free_pages}"
        if mt_pages != z.nr_free_mt_pages:
            return f"zone {z.name}: free pages per migratetype {z.nr_free_mt_pages} but the lists hold {mt_pages}"
        if blocks_pages != z.nr_free_blocks_pages:
            return f"zone {z.name}: nr_free_pages_blocks is {z.nr_free_blocks_pages} but the lists hold {blocks_pages}"
        counts = [0] * MIGRATE_TYPES
        for i in range(z.start_pfn >> PAGEBLOCK_ORDER, (z.end_pfn + PAGEBLOCK_NR_PAGES - 1) >> PAGEBLOCK_ORDER):
            counts[a.pageblock_mt[i]] += 1
        if counts != z.pageblocks:
            return f"zone {z.name}: pageblock counts {z.pageblocks} but the pageblocks say {counts}"
        for blk in range(z.pristine_next, z.pristine_end, PAGEBLOCK_NR_PAGES):
            if a.pageblock_mt[blk >> PAGEBLOCK_ORDER] != MIGRATE_MOVABLE:
                return f"zone {z.name}: pristine pageblock at pfn {blk:#x} is not Movable"
    # every page below the pristine range is in exactly one free block or allocation
    msg = pcp.check(a)
    if msg is not None:
        return msg
    heads = sorted(pfn for pfn, p in a.pages.items()
                   if p.flags & (PG_BUDDY | PG_ALLOC) or p.kind == KIND_PCP)
    pcp_pages = 0
    if sum(1 for pfn in heads if a.pages[pfn].flags & PG_BUDDY) != nr_buddy_heads:
        return "a page marked free is on no free list"
    allocated = 0
    it = iter(heads)
    nxt = next(it, None)
    for z in a.zones:
        if not z.managed:
            continue
        for lo, hi in ((z.start_pfn, z.pristine_next), (z.pristine_end, z.end_pfn)):
            pfn = lo
            while pfn < hi:
                if nxt is None or nxt > pfn:
                    return f"zone {z.name}: pfn {pfn:#x} is neither free nor allocated (lost page)"
                if nxt < pfn:
                    return f"pfn {nxt:#x} is owned twice"
                p = a.pages[pfn]
                if p.flags & PG_BUDDY and p.flags & PG_ALLOC:
                    return f"pfn {pfn:#x} is both free and allocated"
                if p.refcount != (1 if p.flags & PG_ALLOC else 0):
                    return f"pfn {pfn:#x} has refcount {p.refcount}"
                if pfn & ((1 << p.order) - 1) or pfn + (1 << p.order) > hi:
                    return f"block at pfn {pfn:#x} order {p.order} is misaligned or crosses its range"
                if p.flags & PG_ALLOC:
                    allocated += 1 << p.order
                elif not p.flags & PG_BUDDY:
                    pcp_pages += 1 << p.order
                pfn += 1 << p.order
                nxt = next(it, None)
    if nxt is not None:
        return f"pfn {nxt:#x} is owned twice"
    total_free = sum(z.nr_free_pages for z in a.zones)
    pcp_listed = sum(pcp.free_pages(a, zid) for zid in range(len(a.zones)))
    if pcp_pages != pcp_listed:
        return f"{pcp_pages} pages are marked as on a pcp list but the lists hold {pcp_listed}"
    if total_free + pcp_pages + allocated != a.nr_pages:
        return f"{total_free} free + {pcp_pages} pcp + {allocated} allocated pages != {a.nr_pages} pages"
    return None
