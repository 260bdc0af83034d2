"""The flusher, the dirty limits and dirty throttling: the model's twin of csrc/page_writeback.c.

Read the essay at the top of csrc/page_writeback.c (fs/fs-writeback.c wb_workfn,
mm/page-writeback.c domain_dirty_limits and balance_dirty_pages): this is the
same algorithm, function for function, with the flusher's state in ``a.wb``.
"""

from __future__ import annotations

from .._abi import (CENTISEC_US, COST, CTR, MAX_NR_ZONES, MAX_PAUSE_US, PAGE_SIZE, SWAP_CLUSTER_MAX,
                    THROTTLE_WRITEBACK_US, VM_SYSCTL, WRITEBACK_US)
from .arena import Arena

_UINT64_MAX = (1 << 64) - 1

_NR_DIRTY = CTR["nr_dirty"]
_NR_WRITTEN = CTR["nr_written"]
_NR_THROTTLED_WRITTEN = CTR["nr_throttled_written"]
_DIRTY_RATIO = VM_SYSCTL["dirty_ratio"]
_DIRTY_BACKGROUND_RATIO = VM_SYSCTL["dirty_background_ratio"]
_EXPIRE = VM_SYSCTL["dirty_expire_centisecs"]
_INTERVAL = VM_SYSCTL["dirty_writeback_centisecs"]


class Wb:
    """struct pa_wb: the flusher thread of the one bdi_writeback."""

    __slots__ = ("clock", "last_old_flush", "cutoff", "start_all", "kupdate", "throttled")

    def __init__(self) -> None:
        self.clock = 0              # the flusher's own time: its work before this is done
        self.last_old_flush = 0     # wb->last_old_flush: the last kupdate run
        self.cutoff = 0             # the running kupdate work writes inodes dirtied up to here
        self.start_all = 0          # pages left of a wakeup_flusher_threads() work
        self.kupdate = 0            # a kupdate work is running
        self.throttled = 0          # a reclaimer sleeps in reclaim_throttle(): not saved

    FIELDS = ("clock", "last_old_flush", "cutoff", "start_all", "kupdate")


def init(a: Arena) -> None:
    a.wb = Wb()


def domain_dirty_limits(a: Arena) -> tuple[int, int]:
    """global_dirtyable_memory() + domain_dirty_limits(): (thresh, bg_thresh) in pages."""
    free = reserve = 0
    for zid, z in enumerate(a.zones):
        top = max(z.lowmem_reserve[zid:MAX_NR_ZONES], default=0) + z.wmark[2]
        reserve += min(top, z.managed)
        free += z.nr_free_pages
    ctr = a.ctr
    avail = free - min(free, reserve) + ctr[CTR["nr_inactive_file"]] + ctr[CTR["nr_active_file"]] + 1
    ratio = a.vm_sysctl[_DIRTY_RATIO] * PAGE_SIZE // 100
    bg_ratio = a.vm_sysctl[_DIRTY_BACKGROUND_RATIO] * PAGE_SIZE // 100
    thresh = ratio * avail // PAGE_SIZE
    bg = bg_ratio * avail // PAGE_SIZE
    if bg >= thresh:
        bg = thresh // 2
    return thresh, bg


def wb_over_bg_thresh(a: Arena) -> bool:
    return a.ctr[_NR_DIRTY] > domain_dirty_limits(a)[1]


def wb_oldest_inode(a: Arena, before: int) -> int:
    best = -1
    for mid, mm in enumerate(a.mms):
        if not mm.alive or not mm.is_file or not mm.nr_dirty or mm.dirtied_when > before:
            continue
        if best < 0 or mm.dirtied_when < a.mms[best].dirtied_when:
            best = mid
    return best


def wb_write_one(a: Arena, mid: int) -> bool:
    from .reclaim import mm_page_dirty, writeback_page
    mm = a.mms[mid]
    idx = mm.wb_index if mm.wb_index < mm.nr_pages else 0
    while not mm_page_dirty(mm, idx):
        idx = idx + 1 if idx + 1 < mm.nr_pages else 0
    writeback_page(a, mm, idx)
    wb = a.wb
    wb.clock += WRITEBACK_US
    if wb.throttled:
        a.ctr[_NR_THROTTLED_WRITTEN] += 1
    mm.wb_index = idx + 1
    if mm.wb_index >= mm.nr_pages:
        mm.wb_index = 0
        if mm.nr_dirty:
            mm.dirtied_when = wb.clock          # redirty_tail()
    return True


def wb_sleep(a: Arena, now: int) -> bool:
    wb = a.wb
    interval = a.vm_sysctl[_INTERVAL] * CENTISEC_US
    oldest = wb_oldest_inode(a, _UINT64_MAX)
    if not interval or oldest < 0:
        wb.clock = now
        return False
    expire = a.vm_sysctl[_EXPIRE] * CENTISEC_US
    due, last = a.mms[oldest].dirtied_when + expire, wb.last_old_flush
    k = (due - last + interval - 1) // interval if due > last + interval else 1
    wake = max(last + k * interval, wb.clock)
    if wake > now:
        if now >= last + interval:
            wb.last_old_flush = last + (now - last) // interval * interval
        wb.clock = now
        return False
    wb.clock = wake
    wb.last_old_flush = wake - interval
    return True


def flusher_catch_up(a: Arena) -> None:
    """wb_workfn() from the flusher's clock up to now: the writeback that fits."""
    wb = a.wb
    now = a.ticks
    while wb.clock < now:
        t = wb.clock
        if wb.kupdate:
            mid = wb_oldest_inode(a, wb.cutoff)
            if mid < 0:
                wb.kupdate = 0
                continue
            if t + WRITEBACK_US > now or not wb_write_one(a, mid):
                break
            continue
        interval = a.vm_sysctl[_INTERVAL] * CENTISEC_US
        expire = a.vm_sysctl[_EXPIRE] * CENTISEC_US
        if interval and a.ctr[_NR_DIRTY] and t >= wb.last_old_flush + interval:
            wb.last_old_flush = t                   # wb_check_old_data_flush()
            if t >= expire:
                wb.kupdate = 1
                wb.cutoff = t - expire
            continue
        if wb.start_all or wb_over_bg_thresh(a):
            mid = wb_oldest_inode(a, _UINT64_MAX)
            if mid < 0:
                wb.start_all = 0
                continue
            if t + WRITEBACK_US > now or not wb_write_one(a, mid):
                break
            if wb.start_all:
                wb.start_all -= 1
            continue
        if not wb_sleep(a, now):
            break


def wakeup_flusher_threads(a: Arena) -> None:
    """wakeup_flusher_threads(WB_REASON_VMSCAN): a work for every page dirty now."""
    flusher_catch_up(a)
    if not a.wb.start_all:
        a.wb.start_all = a.ctr[_NR_DIRTY]


def reclaim_throttle_writeback(a: Arena) -> None:
    """reclaim_throttle(pgdat, VMSCAN_THROTTLE_WRITEBACK): sleep until the flushers completed
    more than SWAP_CLUSTER_MAX pages, at most HZ / 10; a memory stall."""
    from .reclaim import reclaim_stall
    ctr, wb = a.ctr, a.wb
    start, deadline = ctr[_NR_THROTTLED_WRITTEN], a.ticks + THROTTLE_WRITEBACK_US
    wb.throttled = 1
    while ctr[_NR_THROTTLED_WRITTEN] - start <= SWAP_CLUSTER_MAX and a.ticks < deadline and ctr[_NR_DIRTY]:
        left = SWAP_CLUSTER_MAX + 1 - (ctr[_NR_THROTTLED_WRITTEN] - start)
        wake = wb.clock + left * WRITEBACK_US
        if wake <= a.ticks:
            wake = a.ticks + WRITEBACK_US
        wake = min(wake, deadline)
        reclaim_stall(a, wake - a.ticks)
        flusher_catch_up(a)
    wb.throttled = 0


def balance_dirty_pages(a: Arena) -> None:
    """A writer over the dirty limit sleeps (no memory stall) while the flusher writes."""
    cost = a.cost
    while True:
        thresh, _ = domain_dirty_limits(a)
        nr = a.ctr[_NR_DIRTY]
        if nr <= thresh:
            return
        pause = min((nr - thresh) * WRITEBACK_US, MAX_PAUSE_US)
        if cost[COST["seq"]] != a.alloc_seq:
            cost[:] = [0] * len(cost)
            cost[COST["seq"]] = a.alloc_seq
        cost[COST["slept"]] = 1
        cost[COST["stall_us"]] += pause
        a.ticks += pause
        written = a.ctr[_NR_WRITTEN]
        flusher_catch_up(a)
        if a.ctr[_NR_WRITTEN] == written:
            return


