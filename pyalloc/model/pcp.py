"""The per-cpu page lists (struct per_cpu_pages): the model's twin of csrc/pcp.c.

Linux 6.18 mm/page_alloc.c, function for function.  Per zone and CPU one list
per (order, migratetype) for orders 0..PAGE_ALLOC_COSTLY_ORDER and two for the
THP order (``order_to_pindex``).  A page on a pcp list is free but not
PageBuddy: ``kind`` KIND_PCP, no PG_BUDDY, in no free count.  A list is a deque
whose left end is the list head.

* allocation pops the list **head** (LIFO: the page freed last);
* an empty list is refilled by ``rmqueue_bulk`` with ``nr_pcp_alloc`` blocks
  appended at the **tail**;
* a free pushes at the **head**; past ``high``, ``free_pcppages_bulk`` returns
  ``nr_pcp_free`` pages to the buddy from the list **tails**, round robin from
  the list just freed to;
* a drain goes in chunks of ``batch << PCP_BATCH_SCALE_MAX``, each restarting at
  list 0 (``drain_pages_zone``).

Left out: ``decay_pcp_high`` (vmstat's periodic work), ZONE_RECLAIM_ACTIVE and
PCPF_FREE_HIGH_BATCH (it depends on the CPU's cache size; always clear).
"""

from __future__ import annotations

from collections import deque

from .._abi import (
    KIND_PCP, MIGRATE_ISOLATE, MIGRATE_MOVABLE, MIGRATE_PCPTYPES, MIN_PERCPU_PAGELIST_HIGH_FRACTION,
    NR_LOWORDER_PCP_LISTS, NR_PCP_LISTS, PAGE_ALLOC_COSTLY_ORDER, PAGE_SIZE, PCP_BATCH_SCALE_MAX,
    PCP_THP_ORDER, PCPF_FREE_HIGH_BATCH, PCPF_PREV_FREE_HIGH_ORDER, PG_ALLOC, PG_BUDDY,
)

BOOT_PAGESET_HIGH = 0
BOOT_PAGESET_BATCH = 1


class Pcp:
    __slots__ = ("count", "high", "batch", "high_min", "high_max", "free_count", "flags", "alloc_factor",
                 "lists")

    def __init__(self) -> None:
        self.count = 0
        self.high = BOOT_PAGESET_HIGH
        self.batch = BOOT_PAGESET_BATCH
        self.high_min = self.high_max = 0
        self.free_count = 0
        self.flags = 0
        self.alloc_factor = 0
        self.lists: list[deque] = [deque() for _ in range(NR_PCP_LISTS)]

    def is_boot(self) -> bool:
        return not (self.count or self.high or self.free_count or self.flags or self.alloc_factor)



def clamp(x: int, lo: int, hi: int) -> int:
    """include/linux/minmax.h __clamp(): hi is tested first (csrc/pcp.c clamp32())."""
    return hi if x >= hi else lo if x <= lo else x

def pcp_allowed_order(order: int) -> bool:
    return order <= PAGE_ALLOC_COSTLY_ORDER or order == PCP_THP_ORDER


def order_to_pindex(mt: int, order: int) -> int:
    if order > PAGE_ALLOC_COSTLY_ORDER:
        return NR_LOWORDER_PCP_LISTS + (mt == MIGRATE_MOVABLE)
    return MIGRATE_PCPTYPES * order + mt


def pindex_to_order(pindex: int) -> int:
    return PCP_THP_ORDER if pindex >= NR_LOWORDER_PCP_LISTS else pindex // MIGRATE_PCPTYPES


def pindex_to_mt(pindex: int) -> int:
    return pindex - NR_LOWORDER_PCP_LISTS if pindex >= NR_LOWORDER_PCP_LISTS else pindex % MIGRATE_PCPTYPES


# -- sizes -----------------------------------------------------------------------------

def zone_batchsize(managed: int) -> int:
    """mm/page_alloc.c zone_batchsize(): ~0.1% of the zone or 1 MiB, /4, clamped to 2^n - 1."""
    batch = max(min(managed >> 10, (1 << 20) // PAGE_SIZE) // 4, 1)
    return (1 << ((batch + batch // 2).bit_length() - 1)) - 1


def zone_highsize(z, cpus: int, batch: int, fraction: int) -> int:
    """mm/page_alloc.c zone_highsize(): the low watermark (or managed/fraction) split over the
    node's CPUs (every simulated CPU is online on node 0), at least batch*4."""
    total = z.managed // fraction if fraction else z.wmark[1]
    return max(total // cpus, batch << 2)


def zone_set_pageset_high_and_batch(a, zid: int) -> None:
    """zone_set_pageset_high_and_batch(zone, 0), as setup_per_zone_wmarks() calls it."""
    z = a.zones[zid]
    batch = max(1, zone_batchsize(z.managed))
    high_min = zone_highsize(z, a.cpus, batch, 0)
    high_max = zone_highsize(z, a.cpus, batch, MIN_PERCPU_PAGELIST_HIGH_FRACTION)
    for pcp in a.pcp[zid]:
        pcp.batch, pcp.high_min, pcp.high_max = batch, high_min, high_max


def init(a) -> None:
    """per_cpu_pages_init() and setup_zone_pageset() for every zone."""
    a.pcp = [[Pcp() for _ in range(a.cpus)] for _ in a.zones]
    for zid, z in enumerate(a.zones):
        z.below_high = 0
        if z.managed:
            zone_set_pageset_high_and_batch(a, zid)


# -- allocation --------------------------------------------------------------------------

def nr_pcp_alloc(pcp: Pcp, z, order: int) -> int:
    base_batch, high_min, high_max = pcp.batch, pcp.high_min, pcp.high_max
    high = pcp.high = clamp(pcp.high, high_min, high_max)
    if high < base_batch:
        return 1
    batch = base_batch if order else base_batch << pcp.alloc_factor
    # a larger high would have spared this refill
    if high_min != high_max and not z.below_high:
        high = pcp.high = min(high + batch, high_max)
    if not order:
        max_nr_alloc = max(high - pcp.count - base_batch, base_batch)
        # each refill without a free in between doubles the next one
        if batch <= max_nr_alloc and pcp.alloc_factor < PCP_BATCH_SCALE_MAX:
            pcp.alloc_factor += 1
        batch = min(batch, max_nr_alloc)
    if batch > 1:
        batch = max(batch >> order, 2)
    return batch


def rmqueue_bulk(a, z, order: int, count: int, lst: deque, mt: int) -> int:
    from .buddy import rmqueue_mode
    mode = [0]
    pages = a.pages
    for i in range(count):
        pfn = rmqueue_mode(a, z, order, mt, mode)
        if pfn < 0:
            return i
        p = pages[pfn]
        p.order = order
        p.kind = KIND_PCP
        lst.append(pfn)
    return count


def rmqueue_pcplist(a, z, order: int, mt: int) -> int:
    """rmqueue_pcplist(): the head of this CPU's list, refilled when empty; -1 if none."""
    pcp = a.pcp[z.zid][a.cpu]
    pcp.free_count >>= 1
    lst = pcp.lists[order_to_pindex(mt, order)]
    if not lst:
        got = rmqueue_bulk(a, z, order, nr_pcp_alloc(pcp, z, order), lst, mt)
        pcp.count += got << order
        if not lst:
            return -1
    pcp.count -= 1 << order
    return lst.popleft()


# -- freeing ---------------------------------------------------------------------------------

def free_pcppages_bulk(a, z, pcp: Pcp, count: int, pindex: int) -> None:
    from .buddy import free_one_page, get_pageblock_mt
    count = min(pcp.count, count)
    i = pindex - 1
    lists = pcp.lists
    pages = a.pages
    while count > 0:
        while True:
            i += 1
            if i > NR_PCP_LISTS - 1:
                i = 0
            if lists[i]:
                break
        lst = lists[i]
        order = pindex_to_order(i)
        nr_pages = 1 << order
        while True:
            pfn = lst.pop()
            pages[pfn].kind = 0
            count -= nr_pages
            pcp.count -= nr_pages
            free_one_page(a, z, pfn, order, get_pageblock_mt(a, pfn), False)
            if count <= 0 or not lst:
                break


def nr_pcp_free(pcp: Pcp, batch: int, high: int, free_high: bool) -> int:
    if free_high:
        return min(pcp.count, batch << PCP_BATCH_SCALE_MAX)
    if high < batch:
        return 1
    # as many as were freed in a row, leaving at least batch
    return clamp(pcp.free_count, batch, high - batch)


def nr_pcp_high(pcp: Pcp, z, batch: int, free_high: bool) -> int:
    high_min, high_max = pcp.high_min, pcp.high_max
    high = pcp.high = clamp(pcp.high, high_min, high_max)
    if not high:
        return 0
    if free_high:
        pcp.high = max(high - (batch << PCP_BATCH_SCALE_MAX), high_min)
        return 0
    if high_min == high_max:
        return high
    if z.below_high:
        pcp.high = max(high - max(pcp.free_count, batch), high_min)
        high = max(pcp.count, high_min)
    elif pcp.count >= high:
        need_high = pcp.free_count + batch
        # room for the pages freed in a row
        if pcp.high < need_high:
            pcp.high = clamp(need_high, high_min, high_max)
    return high


def free_frozen_page_commit(a, z, pfn: int, order: int) -> None:
    """free_frozen_page_commit(): the block goes to the head of this CPU's list."""
    from .buddy import free_one_page, zone_watermark_ok, get_pageblock_mt
    mt = get_pageblock_mt(a, pfn)
    if mt >= MIGRATE_PCPTYPES:
        if mt == MIGRATE_ISOLATE:
            free_one_page(a, z, pfn, order, mt, False)
            return
        mt = MIGRATE_MOVABLE        # HighAtomic blocks go back through the movable list
    pcp = a.pcp[z.zid][a.cpu]
    pcp.alloc_factor >>= 1
    pindex = order_to_pindex(mt, order)
    p = a.pages[pfn]
    p.order = order
    p.kind = KIND_PCP
    pcp.lists[pindex].appendleft(pfn)
    pcp.count += 1 << order
    batch = pcp.batch
    free_high = False
    # many high-order frees without allocations fragment: free them soon
    if order and order <= PAGE_ALLOC_COSTLY_ORDER:
        free_high = (pcp.free_count >= batch + pcp.high_min // 2 and bool(pcp.flags & PCPF_PREV_FREE_HIGH_ORDER)
                     and (not pcp.flags & PCPF_FREE_HIGH_BATCH or pcp.count >= batch))
        pcp.flags |= PCPF_PREV_FREE_HIGH_ORDER
    elif pcp.flags & PCPF_PREV_FREE_HIGH_ORDER:
        pcp.flags &= ~PCPF_PREV_FREE_HIGH_ORDER
    if pcp.free_count < batch << PCP_BATCH_SCALE_MAX:
        pcp.free_count += 1 << order
    high = nr_pcp_high(pcp, z, batch, free_high)
    if pcp.count >= high:
        free_pcppages_bulk(a, z, pcp, nr_pcp_free(pcp, batch, high, free_high), pindex)
        if z.below_high and zone_watermark_ok(z, 0, z.wmark[2], 3, 0):
            z.below_high = 0


# -- draining -----------------------------------------------------------------------------------

def drain_pages_zone(a, z, cpu: int) -> None:
    pcp = a.pcp[z.zid][cpu]
    while pcp.count > 0:
        free_pcppages_bulk(a, z, pcp, min(pcp.batch << PCP_BATCH_SCALE_MAX, pcp.count), 0)


def drain_pages(a, cpu: int) -> None:
    for z in a.zones:
        if z.managed:
            drain_pages_zone(a, z, cpu)


def drain_local_pages(a, z) -> None:
    if z is not None:
        drain_pages_zone(a, z, a.cpu)
    else:
        drain_pages(a, a.cpu)


def drain_all_pages(a, z) -> None:
    for cpu in range(a.cpus):
        if z is not None:
            drain_pages_zone(a, z, cpu)
        else:
            drain_pages(a, cpu)


# -- introspection ------------------------------------------------------------------------------

def page_block(a, pfn: int):
    """(head, order) of the pcp block holding pfn, or None."""
    pages = a.pages
    for o in range(11):
        head = pfn & ~((1 << o) - 1)
        p = pages.get(head)
        if p is not None and p.kind == KIND_PCP and not p.flags & PG_ALLOC and p.order >= o:
            return head, p.order
    return None


def free_pages(a, zid: int) -> int:
    return sum(pcp.count for pcp in a.pcp[zid])


def info(a, zid: int, cpu: int) -> dict:
    pcp = a.pcp[zid][cpu]
    d = {k: getattr(pcp, k) for k in ("count", "high", "batch", "high_min", "high_max", "free_count", "flags",
                                      "alloc_factor")}
    d["lists"] = [(pindex_to_order(i), pindex_to_mt(i), list(lst)) for i, lst in enumerate(pcp.lists) if lst]
    return d


def check(a):
    """None, or the first broken pcp invariant; also the pcp pages listed, per zone."""
    for zid, z in enumerate(a.zones):
        for cpu, pcp in enumerate(a.pcp[zid]):
            pages = 0
            for i, lst in enumerate(pcp.lists):
                order = pindex_to_order(i)
                for pfn in lst:
                    if not z.start_pfn <= pfn < z.end_pfn:
                        return f"cpu {cpu} zone {zid}: pcp list {i} links to pfn {pfn:#x} outside the zone"
                    p = a.pages.get(pfn)
                    if p is None or p.kind != KIND_PCP or p.flags & (PG_BUDDY | PG_ALLOC) or p.order != order:
                        return f"cpu {cpu} zone {zid}: pfn {pfn:#x} on pcp list {i} is not a free pcp block of order {order}"
                    if pfn & ((1 << order) - 1):
                        return f"cpu {cpu} zone {zid}: misaligned pcp block at pfn {pfn:#x}"
                    pages += 1 << order
            if pages != pcp.count:
                return f"cpu {cpu} zone {zid}: pcp count is {pcp.count} but the lists hold {pages}"
    return None
