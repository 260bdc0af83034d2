"""Processes, the page cache, swap, the LRU lists and reclaim: the model's twin of csrc/reclaim.c.

Read the essay at the top of csrc/reclaim.c: this is the same algorithm,
function for function.  Differences of representation only: an mm's entries
are a list of ints with the same encoding, the disk is a dict of page index to
bytes, the swap device a dict of slot to bytes, and the reverse map is
``a.rmap[pfn] = (mm id, index)`` instead of priv and pg_index[].
"""

from __future__ import annotations

from ..machine import psi
from . import page_writeback
from . import kthread
from .._abi import (
    SWAP_CLUSTER_MAX, DEF_PRIORITY,
    KSWAPD_NAP_US,
    RECLAIM_PAGE_US,
    SCAN_PAGE_US,
    CTR,
    COST,
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    LRU_UNEVICTABLE,
    READ_PAGE_US,
    SWAP_IN_US,
    SWAP_OUT_US,
    WRITEBACK_US,
)
from .arena import NIL, Arena
from . import compaction, mlock
from .._abi import (
    EFAULT, EINVAL, ENOMEM, FAULT_WRITE, GFP_DIRECT_RECLAIM, GFP_FS, GFP_IO, GFP_KSWAPD_RECLAIM, GFP_WRITE, KIND_ANON,
    KIND_FILE, OK, PAGE_SHIFT, PAGE_SIZE, PG_ACTIVE, PG_ALLOC, PG_LRU, PG_REFERENCED, PGX_WORKINGSET, PGX_YOUNG,
    MAX_NR_ZONES, VM_SYSCTL,
)
from . import workingset
from .workingset import WORKINGSET_REFAULT_ACTIVATE, WORKINGSET_REFAULT_RESTORE

from .._abi import ENT_NONE, ENT_PRESENT, ENT_SWAP, ENT_DISK, ENT_DIRTY, ENT_MLOCKED  # noqa: F401 (shared)
SWAP_CLUSTER_MAX_SKIPPED = SWAP_CLUSTER_MAX << 10
MAX_SWAPPINESS = 200
FAULT_RW_WRITE = 0x100          # _mm_fault() for mm_rw's write: dirtied later, never by the fault
FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, FOLIOREF_KEEP, FOLIOREF_ACTIVATE = range(4)
DEACTIVATE_ANON, DEACTIVATE_FILE = 1, 2
MAX_MM_PAGES = 1 << 30
UINT32_MAX = (1 << 32) - 1

_NR_INACTIVE_ANON = CTR["nr_inactive_anon"]
_KSWAPD_FAILURES = CTR["kswapd_failures"]
_NR_DIRTY = CTR["nr_dirty"]
_ANON_COST = CTR["anon_cost"]
_FILE_COST = CTR["file_cost"]
MAX_RECLAIM_RETRIES = 16
_LRU_NAMES = ("inactive_anon", "active_anon", "inactive_file", "active_file", "unevictable")
_NR_UNEVICTABLE = CTR["nr_unevictable"]


def mk_ent(val: int, state: int) -> int:
    return (val << 3) | state


class Mm:
    """One process's anonymous memory or one file's page cache."""

    __slots__ = ("alive", "is_file", "nr_pages", "size", "ent", "disk", "rss", "swapents", "nr_dirty",
                 "dirtied_when", "wb_index")

    def __init__(self, is_file: bool) -> None:
        self.alive = True
        self.is_file = is_file
        self.nr_pages = 0
        self.size = 0
        self.ent: list[int] = []
        self.disk: dict[int, bytes] = {}
        self.rss = self.swapents = self.nr_dirty = 0
        self.dirtied_when = self.wb_index = 0   # inode->dirtied_when, mapping->writeback_index


class ScanControl:
    __slots__ = ("gfp", "is_kswapd", "may_writepage", "may_swap", "nr_to_reclaim", "nr_scanned",
                 "nr_reclaimed", "written", "swapped", "work_us", "reclaim_idx", "may_deactivate")

    def __init__(self, a: Arena, gfp: int, kswapd: bool) -> None:
        self.gfp = gfp
        self.is_kswapd = kswapd
        self.reclaim_idx = MAX_NR_ZONES - 1
        self.may_deactivate = 0
        self.may_writepage = kswapd or bool(gfp & GFP_IO and gfp & GFP_FS)
        self.may_swap = (kswapd or bool(gfp & GFP_IO)) and a.ctr[CTR["nr_swap_free"]] > 0
        self.nr_to_reclaim = self.nr_scanned = self.nr_reclaimed = 0
        self.written = self.swapped = self.work_us = 0


def init(a: Arena) -> None:
    """The reclaim part of the machine state (called by Arena users at boot)."""
    a.lru = [[NIL, NIL] for _ in range(5)]     # head, tail; LRU_UNEVICTABLE last
    a.mms = []
    a.rmap = {}
    a.swap = {}
    a.swap_pages = a.swap_next = 0
    a.swap_free = []
    a.ctr = [0] * len(CTR)
    a.cost = [0] * len(COST)
    a.alloc_seq = 0
    a.kswapd_wanted = a.kswapd_order = a.kswapd_highest = 0
    a.oom_mode = 0
    kthread.init(a)
    a.rw_pin = None         # (mm id, first, last, offset, end) while mm_rw faults its pages in
    page_writeback.init(a)
    a.compact_defer = [[0, 0, 0] for _ in a.zones]   # compaction.py: considered, defer_shift, order_failed
    a.kcompactd_wanted = a.kcompactd_max_order = a.kcompactd_highest = 0
    a.lru_ext = {}          # pfn -> PGX_* bits (workingset.py)
    a.swap_shadow = {}      # swap slot -> the shadow its page left


# -- PSI ---------------------------------------------------------------------------

def reclaim_stall(a: Arena, us: int) -> None:
    """The calling task stalls: PSI "full" (the counters' block) and "some"."""
    psi.account(a.ctr, a.ticks, a.ticks + us)
    kthread.psi_memstall_some(a, a.ticks, a.ticks + us)
    a.ticks += us
    a.cost[COST["stall_us"]] += us


# -- mms -----------------------------------------------------------------------------

def mm_get(a: Arena, mid):
    if type(mid) is not int or not 0 <= mid < len(a.mms) or not a.mms[mid].alive:
        return None
    return a.mms[mid]


def mm_new(a: Arena, is_file: int) -> int:
    if is_file not in (0, 1) or type(is_file) is not int:
        return EINVAL
    if len(a.mms) >= 1 << 24:
        return ENOMEM
    a.mms.append(Mm(bool(is_file)))
    return len(a.mms) - 1


def mm_reserve(mm: Mm, nr: int) -> None:
    if nr > len(mm.ent):
        mm.ent.extend([0] * (nr - len(mm.ent)))


def mm_truncate(a: Arena, mm: Mm, nr_pages: int) -> None:
    """A failed write gives back what it added past the file's old end (mm_truncate())."""
    for idx in range(nr_pages, mm.nr_pages):
        e = mm.ent[idx]
        if e & 3 == ENT_PRESENT:
            if e & ENT_DIRTY:
                mm.nr_dirty -= 1
                a.ctr[CTR["nr_dirty"]] -= 1
                a.zone_of(e >> 3).nr_dirty -= 1
            mm.rss -= 1
            release_page(a, e >> 3)
        mm.ent[idx] = 0
        mm.disk.pop(idx, None)
    mm.nr_pages = nr_pages


# -- LRU lists -------------------------------------------------------------------------

def page_mlocked(a: Arena, pfn: int) -> bool:
    """PageMlocked(): an anonymous page of a VM_LOCKED range, on LRU_UNEVICTABLE."""
    if a.pages[pfn].kind != KIND_ANON:
        return False
    mid, idx = a.rmap[pfn]
    return bool(a.mms[mid].ent[idx] & ENT_MLOCKED)


def page_lru(a: Arena, pfn: int) -> int:
    p = a.pages[pfn]
    if page_mlocked(a, pfn):
        return LRU_UNEVICTABLE
    return (LRU_INACTIVE_FILE if p.kind == KIND_FILE else LRU_INACTIVE_ANON) + (1 if p.flags & PG_ACTIVE else 0)


def lru_account(a: Arena, pfn: int, lru: int, delta: int) -> None:
    if lru == LRU_UNEVICTABLE:
        a.ctr[_NR_UNEVICTABLE] += delta
        a.zone_of(pfn).nr_unevictable += delta
        return
    a.ctr[_NR_INACTIVE_ANON + lru] += delta
    a.zone_of(pfn).nr_lru[lru] += delta


def lru_add(a: Arena, pfn: int, lru: int) -> None:
    p = a.pages[pfn]
    head = a.lru[lru]
    p.flags |= PG_LRU
    if lru & 1:
        p.flags |= PG_ACTIVE
    else:
        p.flags &= ~PG_ACTIVE
    p.prev = NIL
    p.next = head[0]
    if head[0] == NIL:
        head[1] = pfn
    else:
        a.pages[head[0]].prev = pfn
    head[0] = pfn
    lru_account(a, pfn, lru, 1)


def lru_del(a: Arena, pfn: int) -> None:
    p = a.pages[pfn]
    lru = page_lru(a, pfn)
    head = a.lru[lru]
    if p.prev == NIL:
        head[0] = p.next
    else:
        a.pages[p.prev].next = p.next
    if p.next == NIL:
        head[1] = p.prev
    else:
        a.pages[p.next].prev = p.prev
    p.next = p.prev = NIL
    p.flags &= ~(PG_LRU | PG_ACTIVE)
    lru_account(a, pfn, lru, -1)


def lru_move(a: Arena, pfn: int, lru: int) -> None:
    referenced = a.pages[pfn].flags & PG_REFERENCED
    lru_del(a, pfn)
    lru_add(a, pfn, lru)
    a.pages[pfn].flags |= referenced


def lru_replace_page(a: Arena, old: int, new: int) -> None:
    """Compaction moved a page: the new one takes the old one's place everywhere."""
    o, n = a.pages[old], a.pages[new]
    lru = page_lru(a, old)
    head = a.lru[lru]
    n.prev, n.next = o.prev, o.next
    if o.prev == NIL:
        head[0] = new
    else:
        a.pages[o.prev].next = new
    if o.next == NIL:
        head[1] = new
    else:
        a.pages[o.next].prev = new
    n.flags = o.flags
    n.kind = o.kind
    mid, idx = a.rmap.pop(old)
    a.rmap[new] = (mid, idx)
    ext = a.lru_ext.pop(old, 0)
    if ext:
        a.lru_ext[new] = ext
    mm = a.mms[mid]
    e = mm.ent[idx]
    mm.ent[idx] = mk_ent(new, e & 7)
    if mm.is_file and e & ENT_DIRTY:
        a.zone_of(old).nr_dirty -= 1
        a.zone_of(new).nr_dirty += 1
    lru_account(a, old, lru, -1)
    lru_account(a, new, lru, 1)
    o.next = o.prev = NIL
    o.flags &= ~(PG_LRU | PG_ACTIVE | PG_REFERENCED)


# -- swap and the disk ---------------------------------------------------------------------

def set_swap(a: Arena, nr_pages: int) -> int:
    if type(nr_pages) is not int or not 0 <= nr_pages <= UINT32_MAX or a.swap_pages:
        return EINVAL
    a.swap_pages = nr_pages
    a.ctr[CTR["nr_swap_pages"]] = a.ctr[CTR["nr_swap_free"]] = nr_pages
    return OK


def swap_slot_alloc(a: Arena) -> int:
    if a.swap_free:
        return a.swap_free.pop()
    if a.swap_next < a.swap_pages:
        a.swap_next += 1
        return a.swap_next - 1
    return NIL


def swap_slot_free(a: Arena, slot: int) -> None:
    a.swap_free.append(slot)
    a.swap_shadow.pop(slot, None)
    a.swap.pop(slot, None)
    a.ctr[CTR["nr_swap_free"]] += 1


def page_bytes(a: Arena, pfn: int) -> bytes:
    return a.read(pfn << PAGE_SHIFT, PAGE_SIZE)


# -- pages in and out -------------------------------------------------------------------------

def set_dirty(a: Arena, mm: Mm, idx: int) -> None:
    e = mm.ent[idx]
    if e & ENT_DIRTY:
        return
    page_writeback.flusher_catch_up(a)
    if not mm.nr_dirty:
        mm.dirtied_when = a.ticks       # __mark_inode_dirty(): the inode goes dirty now
    mm.ent[idx] = e | ENT_DIRTY
    mm.nr_dirty += 1
    a.ctr[CTR["nr_dirty"]] += 1
    a.ctr[CTR["nr_dirtied"]] += 1
    a.zone_of(e >> 3).nr_dirty += 1
    page_writeback.balance_dirty_pages(a)


def mm_page_dirty(mm: Mm, idx: int) -> bool:
    e = mm.ent[idx]
    return e & 3 == ENT_PRESENT and bool(e & ENT_DIRTY)


def writeback_page(a: Arena, mm: Mm, idx: int) -> int:
    e = mm.ent[idx]
    pfn = e >> 3
    mm.disk[idx] = page_bytes(a, pfn)
    mm.ent[idx] = e & ~ENT_DIRTY
    mm.nr_dirty -= 1
    a.ctr[CTR["nr_dirty"]] -= 1
    a.zone_of(pfn).nr_dirty -= 1
    a.ctr[CTR["nr_written"]] += 1
    a.ctr[CTR["pgpgout"]] += PAGE_SIZE // 1024
    return OK


def release_page(a: Arena, pfn: int) -> None:
    from . import buddy
    p = a.pages[pfn]
    kind = p.kind
    lru_del(a, pfn)
    p.flags &= ~PG_REFERENCED
    a.lru_ext.pop(pfn, None)
    a.rmap.pop(pfn, None)
    buddy.free_pages(a, pfn, 0, kind)


def fault_reads_page(a: Arena, mm, mid: int, idx: int, gfp: int) -> bool:
    """Whether bringing in page idx of a file reads it from disk (submit_bio
    counts PGPGIN).  A read does.  A write (__GFP_WRITE, which 6.18's
    write_begin asks for through FGP_WRITEBEGIN) reads only what it keeps: a
    page inside the file's old size that the byte write covers in part, as
    block_write_begin() reads the blocks a write leaves partly as they were
    and neither the ones it overwrites whole nor the ones past the end."""
    lo = idx << PAGE_SHIFT
    if not gfp & GFP_WRITE:
        return True
    pin = a.rw_pin
    if lo >= mm.size or pin is None or pin[0] != mid or not pin[1] <= idx <= pin[2]:
        return False
    return pin[3] > lo or pin[4] < lo + PAGE_SIZE


def lru_note_cost(a: Arena, file: bool, nr_io: int, nr_rotated: int) -> None:
    """lru_note_cost(): reclaim's IO and rotations on one type, a floating average."""
    cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated
    if not cost:
        return
    c = a.ctr
    c[_FILE_COST if file else _ANON_COST] += cost
    lrusize = c[_NR_INACTIVE_ANON] + c[_NR_INACTIVE_ANON + 1] + c[_NR_INACTIVE_ANON + 2] + c[_NR_INACTIVE_ANON + 3]
    if c[_FILE_COST] + c[_ANON_COST] > lrusize // 4:
        c[_FILE_COST] //= 2
        c[_ANON_COST] //= 2


def refault_wait(a: Arena, ws: int, us: int) -> None:
    """Only a refault of the workingset is a memory stall (refault_wait())."""
    if ws & WORKINGSET_REFAULT_RESTORE:
        reclaim_stall(a, us)
    else:
        a.ticks += us


def folio_mark_accessed(a: Arena, pfn: int) -> None:
    p = a.pages[pfn]
    if not p.flags & PG_REFERENCED:
        p.flags |= PG_REFERENCED
    elif not p.flags & PG_ACTIVE:
        lru_move(a, pfn, page_lru(a, pfn) + 1)
        a.ctr[CTR["pgactivate"]] += 1
        p.flags &= ~PG_REFERENCED
        workingset.workingset_age_nonresident(a, 1)


def mark_accessed(a: Arena, mm: Mm, pfn: int, flags: int) -> None:
    """An access to a present page (mark_accessed() in csrc/reclaim.c)."""
    if not mm.is_file:
        a.lru_ext[pfn] = a.lru_ext.get(pfn, 0) | PGX_YOUNG
    elif not flags & (FAULT_WRITE | FAULT_RW_WRITE):
        folio_mark_accessed(a, pfn)


def fault_in(a: Arena, mid: int, idx: int, gfp: int) -> int:
    from . import buddy
    mm = a.mms[mid]
    e = mm.ent[idx]
    pfn = buddy.alloc(a, gfp, 0)
    if pfn < 0:
        return pfn
    p = a.pages[pfn]
    p.kind = KIND_FILE if mm.is_file else KIND_ANON
    a.rmap[pfn] = (mid, idx)
    state = e & 3
    ctr = a.ctr
    ws = 0
    if state == ENT_SWAP:
        slot = e >> 3
        shadow = workingset.swap_shadow_take(a, slot)
        a.write(pfn << PAGE_SHIFT, a.swap[slot])
        swap_slot_free(a, slot)
        mm.swapents -= 1
        ctr[CTR["pswpin"]] += 1
        ctr[CTR["pgfault"]] += 1          # handle_mm_fault() counts every fault
        ctr[CTR["pgmajfault"]] += 1
        ctr[CTR["pgpgin"]] += PAGE_SIZE // 1024
        ws = workingset.workingset_refault(a, shadow, False) if shadow else 0
        refault_wait(a, ws, SWAP_IN_US)
    else:
        if state == ENT_DISK and e >> 3:
            ws = workingset.workingset_refault(a, e >> 3, True)
        if mm.is_file:
            data = mm.disk.get(idx)
            a.write(pfn << PAGE_SHIFT, data if data is not None else bytes(PAGE_SIZE))
            if fault_reads_page(a, mm, mid, idx, gfp):
                ctr[CTR["pgpgin"]] += PAGE_SIZE // 1024
                refault_wait(a, ws, READ_PAGE_US)
        else:
            a.memset(pfn << PAGE_SHIFT, 0, PAGE_SIZE)
            ctr[CTR["pgfault"]] += 1
    mm.ent[idx] = mk_ent(pfn, ENT_PRESENT) | (0 if mm.is_file else e & ENT_MLOCKED)
    mm.rss += 1
    if mm.ent[idx] & ENT_MLOCKED and not mm.is_file:
        mlock.mlock_new_page(a, pfn)
    else:
        lru_add(a, pfn, (LRU_INACTIVE_FILE if mm.is_file else LRU_INACTIVE_ANON) + (1 if ws & WORKINGSET_REFAULT_ACTIVATE else 0))
    if ws & WORKINGSET_REFAULT_RESTORE:
        a.lru_ext[pfn] = a.lru_ext.get(pfn, 0) | PGX_WORKINGSET
        lru_note_cost(a, mm.is_file, 1, 0)
    return OK


def _range_ok(start, nr) -> bool:
    return (type(start) is int and type(nr) is int and start >= 0 and nr >= 0
            and start <= MAX_MM_PAGES and nr <= MAX_MM_PAGES - start)


def _mm_fault(a: Arena, mid: int, start: int, nr: int, gfp: int, flags: int, done: list) -> int:
    mm = a.mms[mid]
    done[0] = 0
    ent = mm.ent
    for idx in range(start, start + nr):
        if idx >= len(ent):
            mm_reserve(mm, idx + 1)     # grows only as pages are backed, as in C
        if ent[idx] & 3 != ENT_PRESENT:
            rc = fault_in(a, mid, idx, gfp)
            if rc:
                return rc
        mark_accessed(a, mm, ent[idx] >> 3, flags)
        if idx >= mm.nr_pages:
            mm.nr_pages = idx + 1
        if mm.is_file and flags & FAULT_WRITE:
            set_dirty(a, mm, idx)
        done[0] += 1
    return OK


def call_end(a: Arena, r: int) -> int:
    """pa_call_end(): ENOMEM becomes EOOM when the slow path asked for the OOM killer, ELOOP when
    6.18 would retry for ever; kswapd (and kcompactd) run."""
    from .._abi import ELOOP, ENOMEM as _ENOMEM, EOOM
    if r == _ENOMEM and a.cost[COST["oom_needed"]] and a.cost[COST["seq"]] == a.alloc_seq:
        r = EOOM
    if r == _ENOMEM and a.cost[COST["would_loop"]] and a.cost[COST["seq"]] == a.alloc_seq:
        r = ELOOP
    kthread.call_done(a)
    return r


def mm_fault(a: Arena, mid, start, nr, gfp, flags, done: list) -> int:
    done[0] = 0
    mm = mm_get(a, mid)
    if (mm is None or not _range_ok(start, nr) or type(gfp) is not int or not 0 <= gfp <= UINT32_MAX
            or type(flags) is not int or flags & ~FAULT_WRITE):
        return EINVAL
    a.alloc_seq += 1
    a.ticks += 1
    rc = _mm_fault(a, mid, start, nr, gfp, flags, done)
    if rc == OK and mm.is_file and (start + nr) << PAGE_SHIFT > mm.size:
        mm.size = (start + nr) << PAGE_SHIFT
    return call_end(a, rc)


def mm_rw(a: Arena, mid, offset, n, buf, write, gfp) -> int:
    """Read into (write from) buf, a bytearray (bytes) of n bytes."""
    mm = mm_get(a, mid)
    if write not in (0, 1):
        return EINVAL
    if (mm is None or type(offset) is not int or type(n) is not int or offset < 0 or n < 0
            or type(gfp) is not int or not 0 <= gfp <= UINT32_MAX
            or offset > MAX_MM_PAGES << PAGE_SHIFT or n > (MAX_MM_PAGES << PAGE_SHIFT) - offset):
        return EINVAL
    end = offset + n
    if mm.is_file:
        limit = MAX_MM_PAGES << PAGE_SHIFT if write else mm.size
    else:
        limit = mm.nr_pages << PAGE_SHIFT
    if end > limit:
        return EFAULT
    a.alloc_seq += 1
    a.ticks += 1
    if not n:
        return OK
    first, last = offset >> PAGE_SHIFT, (end - 1) >> PAGE_SHIFT
    old_nr_pages = mm.nr_pages
    done = [0]
    a.rw_pin = (mid, first, last, offset, end)
    try:
        rc = _mm_fault(a, mid, first, last - first + 1, gfp, FAULT_RW_WRITE if write else 0, done)
    finally:
        a.rw_pin = None
    if rc:
        if write and mm.is_file:
            mm_truncate(a, mm, old_nr_pages)
        return call_end(a, rc)
    pos = offset
    while pos < end:
        idx, off = pos >> PAGE_SHIFT, pos & (PAGE_SIZE - 1)
        chunk = min(PAGE_SIZE - off, end - pos)
        phys = ((mm.ent[idx] >> 3) << PAGE_SHIFT) + off
        if write:
            a.write(phys, bytes(buf[pos - offset:pos - offset + chunk]))
            if mm.is_file:
                set_dirty(a, mm, idx)
        else:
            buf[pos - offset:pos - offset + chunk] = a.read(phys, chunk)
        pos += chunk
    if write and mm.is_file and end > mm.size:
        mm.size = end
    return call_end(a, OK)


def _mm_free_pages(a: Arena, mm: Mm) -> None:
    for idx in range(mm.nr_pages):
        e = mm.ent[idx]
        if e & 3 == ENT_PRESENT:
            if e & ENT_DIRTY:
                a.ctr[CTR["nr_dirty"]] -= 1
                a.zone_of(e >> 3).nr_dirty -= 1
            release_page(a, e >> 3)
        elif e & 3 == ENT_SWAP:
            swap_slot_free(a, e >> 3)
    mm.ent = []
    mm.disk = {}
    mm.nr_pages = 0
    mm.rss = mm.swapents = mm.nr_dirty = 0
    mm.dirtied_when = mm.wb_index = 0   # the inode is gone from the flusher's lists
    mm.alive = False


def mm_release(a: Arena, mid) -> int:
    mm = mm_get(a, mid)
    if mm is None:
        return EINVAL
    a.ticks += 1
    mlock.munlock_mm(a, mm)
    _mm_free_pages(a, mm)
    while a.mms and not a.mms[-1].alive:
        a.mms.pop()
    return OK


def mm_info(a: Arena, mid):
    if type(mid) is not int or not 0 <= mid < len(a.mms):
        return None
    mm = a.mms[mid]
    pgtables = 0
    if not mm.is_file and mm.nr_pages:
        ptes = (mm.nr_pages + 511) // 512
        pmds = (ptes + 511) // 512
        pgtables = (ptes + pmds + 1) * PAGE_SIZE
    return {"alive": int(mm.alive), "is_file": int(mm.is_file), "nr_pages": mm.nr_pages, "size": mm.size,
            "rss": mm.rss, "swapents": mm.swapents, "nr_dirty": mm.nr_dirty, "pgtables_bytes": pgtables}


def sync(a: Arena) -> int:
    a.ticks += 1
    for mm in a.mms:
        if not mm.alive or not mm.is_file:
            continue
        for idx in range(mm.nr_pages):
            if not mm.nr_dirty:
                break
            e = mm.ent[idx]
            if e & 3 == ENT_PRESENT and e & ENT_DIRTY:
                writeback_page(a, mm, idx)
                a.ticks += WRITEBACK_US
    return OK


def drop_caches(a: Arena) -> int:
    a.ticks += 1
    a.ctr[CTR["drop_pagecache"]] += 1
    dropped = 0
    for mm in a.mms:
        if not mm.alive or not mm.is_file:
            continue
        for idx in range(mm.nr_pages):
            e = mm.ent[idx]
            if e & 3 != ENT_PRESENT or e & ENT_DIRTY:
                continue
            mm.ent[idx] = mk_ent(0, ENT_DISK)
            mm.rss -= 1
            release_page(a, e >> 3)
            dropped += 1
    return dropped


# -- shrinking the LRU lists -------------------------------------------------------------------

def lru_size(a: Arena, lru: int) -> int:
    return a.ctr[_NR_UNEVICTABLE if lru == LRU_UNEVICTABLE else _NR_INACTIVE_ANON + lru]


def zone_lru_size(z, lru: int) -> int:
    return z.nr_unevictable if lru == LRU_UNEVICTABLE else z.nr_lru[lru]


def inactive_is_low(a: Arena, inactive_lru: int) -> bool:
    inactive, active = lru_size(a, inactive_lru), lru_size(a, inactive_lru + 1)
    gb = (inactive + active) >> (30 - PAGE_SHIFT)
    ratio = 1
    if gb:
        x, r = 10 * gb, 0
        while (r + 1) * (r + 1) <= x:
            r += 1
        ratio = r
    return inactive * ratio < active


def lru_skip(a: Arena, sc: ScanControl, skipped: list, pfn: int) -> bool:
    """isolate_lru_folios() passes over a page of a zone above sc.reclaim_idx (lru_skip())."""
    zid = a.zone_of(pfn).zid
    if zid <= sc.reclaim_idx or len(skipped) >= SWAP_CLUSTER_MAX_SKIPPED:
        return False
    lru_del(a, pfn)
    skipped.append(pfn)
    a.ctr[CTR["pgskip_dma"] + zid] += 1
    return True


def lru_skipped_putback(a: Arena, skipped: list, lru: int) -> None:
    for pfn in skipped:
        lru_add(a, pfn, lru)


def folio_referenced(a: Arena, pfn: int) -> bool:
    ext = a.lru_ext.get(pfn, 0)
    if not ext & PGX_YOUNG:
        return False
    ext &= ~PGX_YOUNG
    if ext:
        a.lru_ext[pfn] = ext
    else:
        del a.lru_ext[pfn]
    return True


def shrink_active_list(a: Arena, sc: ScanControl, nr: int, active_lru: int) -> None:
    pfn = a.lru[active_lru][1]
    skipped: list = []
    i = 0
    while i < nr and pfn != NIL:
        prev = a.pages[pfn].prev
        a.ctr[CTR["pgrefill"]] += 1
        if not lru_skip(a, sc, skipped, pfn):
            folio_referenced(a, pfn)
            a.lru_ext[pfn] = a.lru_ext.get(pfn, 0) | PGX_WORKINGSET
            lru_move(a, pfn, active_lru - 1)
            a.ctr[CTR["pgdeactivate"]] += 1
            i += 1
        pfn = prev
    lru_skipped_putback(a, skipped, active_lru)


def folio_check_references(a: Arena, pfn: int, file: bool) -> int:
    p = a.pages[pfn]
    referenced_ptes = folio_referenced(a, pfn)
    referenced_folio = bool(p.flags & PG_REFERENCED)
    p.flags &= ~PG_REFERENCED
    if referenced_ptes:
        p.flags |= PG_REFERENCED
        return FOLIOREF_ACTIVATE if referenced_folio else FOLIOREF_KEEP
    return FOLIOREF_RECLAIM_CLEAN if referenced_folio and file else FOLIOREF_RECLAIM


def shrink_folio(a: Arena, sc: ScanControl, pfn: int, lru: int) -> bool:
    file = lru == LRU_INACTIVE_FILE
    mid, idx = a.rmap[pfn]
    mm = a.mms[mid]
    e = mm.ent[idx]
    pin = a.rw_pin
    if pin is not None and pin[0] == mid and pin[1] <= idx <= pin[2]:
        lru_move(a, pfn, lru)           # in use by the read or write: keep
        return False
    ref = folio_check_references(a, pfn, file)
    if ref == FOLIOREF_ACTIVATE:
        lru_move(a, pfn, lru + 1)
        a.ctr[CTR["pgactivate"]] += 1
        return False
    if ref == FOLIOREF_KEEP:
        lru_move(a, pfn, lru)
        return False
    if not file:
        slot = swap_slot_alloc(a) if sc.may_swap else NIL
        if slot == NIL:
            lru_move(a, pfn, lru)
            return False
        a.swap[slot] = page_bytes(a, pfn)
        a.ctr[CTR["nr_swap_free"]] -= 1
        mm.ent[idx] = mk_ent(slot, ENT_SWAP)
        workingset.swap_shadow_set(a, slot, workingset.workingset_eviction(a, pfn))
        mm.rss -= 1
        mm.swapents += 1
        a.ctr[CTR["pswpout"]] += 1
        a.ctr[CTR["pgpgout"]] += PAGE_SIZE // 1024
        a.ctr[CTR["nr_vmscan_write"]] += 1
        sc.swapped += 1
        sc.work_us += SWAP_OUT_US
    else:
        if e & ENT_DIRTY:
            # the flushers write it, reclaim activates it (pageout() returns PAGE_ACTIVATE)
            a.ctr[CTR["nr_vmscan_immediate_reclaim"]] += 1
            lru_move(a, pfn, lru + 1)
            a.ctr[CTR["pgactivate"]] += 1
            return False
        mm.ent[idx] = mk_ent(workingset.workingset_eviction(a, pfn), ENT_DISK)
        mm.rss -= 1
    release_page(a, pfn)
    a.ctr[CTR["pgsteal_file" if file else "pgsteal_anon"]] += 1
    a.ctr[CTR["pgsteal_kswapd" if sc.is_kswapd else "pgsteal_direct"]] += 1
    return True


def shrink_inactive_list(a: Arena, sc: ScanControl, nr: int, lru: int) -> None:
    pfn = a.lru[lru][1]
    i = 0
    scan_kind = CTR["pgscan_file" if lru == LRU_INACTIVE_FILE else "pgscan_anon"]
    scan_who = CTR["pgscan_kswapd" if sc.is_kswapd else "pgscan_direct"]
    skipped: list = []
    scanned = reclaimed = taken = unqueued_dirty = 0
    io = sc.written + sc.swapped
    while i < nr and pfn != NIL:
        prev = a.pages[pfn].prev
        sc.nr_scanned += 1
        scanned += 1
        a.ctr[scan_kind] += 1
        a.ctr[scan_who] += 1
        sc.work_us += SCAN_PAGE_US
        if not lru_skip(a, sc, skipped, pfn):
            i += 1
            taken += 1
            if lru == LRU_INACTIVE_FILE:    # folio_check_dirty_writeback(): file folios, before references
                mid, idx = a.rmap[pfn]
                unqueued_dirty += mm_page_dirty(a.mms[mid], idx)
            if shrink_folio(a, sc, pfn, lru):
                sc.nr_reclaimed += 1
                reclaimed += 1
                sc.work_us += RECLAIM_PAGE_US
        pfn = prev
    lru_skipped_putback(a, skipped, lru)
    lru_note_cost(a, lru == LRU_INACTIVE_FILE, sc.written + sc.swapped - io, scanned - reclaimed)
    if taken and unqueued_dirty == taken:   # "the flushers are not doing their job": nudge them
        page_writeback.wakeup_flusher_threads(a)
        if not sc.is_kswapd:
            page_writeback.reclaim_throttle_writeback(a)


def lruvec_lru_size(a: Arena, lru: int, zone_idx: int) -> int:
    return sum(z.nr_lru[lru] for z in a.zones[:zone_idx + 1])


def file_is_tiny(a: Arena, sc: ScanControl, priority: int) -> bool:
    free = sum(z.nr_free_pages for z in a.zones)
    total_high_wmark = sum(z.wmark[2] for z in a.zones if z.managed)
    file = lru_size(a, LRU_ACTIVE_FILE) + lru_size(a, LRU_INACTIVE_FILE)
    return (file + free <= total_high_wmark and not sc.may_deactivate & DEACTIVATE_ANON
            and bool(lru_size(a, LRU_INACTIVE_ANON) >> priority))


def prepare_scan_control(a: Arena, sc: ScanControl) -> None:
    """may_deactivate (prepare_scan_control() in csrc/reclaim.c)."""
    c = a.ctr
    sc.may_deactivate = 0
    if c[CTR["workingset_activate_anon"]] != c[CTR["refaults_anon"]] or inactive_is_low(a, LRU_INACTIVE_ANON):
        sc.may_deactivate |= DEACTIVATE_ANON
    if c[CTR["workingset_activate_file"]] != c[CTR["refaults_file"]] or inactive_is_low(a, LRU_INACTIVE_FILE):
        sc.may_deactivate |= DEACTIVATE_FILE


def snapshot_refaults(a: Arena) -> None:
    c = a.ctr
    c[CTR["refaults_anon"]] = c[CTR["workingset_activate_anon"]]
    c[CTR["refaults_file"]] = c[CTR["workingset_activate_file"]]


def get_scan_count(a: Arena, sc: ScanControl, priority: int) -> list:
    swappiness = a.vm_sysctl[VM_SYSCTL["swappiness"]]
    if not sc.may_swap:
        balance = "file"
    elif not priority and swappiness:
        balance = "equal"
    elif file_is_tiny(a, sc, priority):
        balance = "anon"
    elif lru_size(a, LRU_INACTIVE_FILE) >> priority and not sc.may_deactivate & DEACTIVATE_FILE:
        balance = "file"
    else:
        balance = "fract"
    fraction, denominator = (0, 0), 1
    if balance == "fract":
        total_cost = a.ctr[_ANON_COST] + a.ctr[_FILE_COST]
        anon_cost = total_cost + a.ctr[_ANON_COST]
        file_cost = total_cost + a.ctr[_FILE_COST]
        total_cost = anon_cost + file_cost
        fraction = (swappiness * (total_cost + 1) // (anon_cost + 1),
                    (MAX_SWAPPINESS - swappiness) * (total_cost + 1) // (file_cost + 1))
        denominator = fraction[0] + fraction[1]
    nr = []
    for lru in range(4):
        is_file = lru >= LRU_INACTIVE_FILE
        scan = lruvec_lru_size(a, lru, sc.reclaim_idx) >> priority
        if balance == "file":
            scan = scan if is_file else 0
        elif balance == "anon":
            scan = 0 if is_file else scan
        elif balance == "fract":
            scan = scan * fraction[is_file] // denominator
        nr.append(scan)
    return nr


def scan_left(nr: list) -> bool:
    return bool(nr[LRU_INACTIVE_ANON] or nr[LRU_ACTIVE_FILE] or nr[LRU_INACTIVE_FILE])


def shrink_lruvec_batch(a: Arena, sc: ScanControl, nr: list) -> None:
    """One pass of shrink_lruvec()'s loop: up to SWAP_CLUSTER_MAX pages of each list."""
    for lru in range(4):
        if not nr[lru]:
            continue
        batch = min(nr[lru], SWAP_CLUSTER_MAX)
        nr[lru] -= batch
        if lru & 1:
            if sc.may_deactivate & (DEACTIVATE_FILE if lru >= LRU_INACTIVE_FILE else DEACTIVATE_ANON):
                shrink_active_list(a, sc, batch, lru)
        else:
            shrink_inactive_list(a, sc, batch, lru)


def shrink_node_done(a: Arena, sc: ScanControl, progress: bool) -> None:
    if sc.may_swap and inactive_is_low(a, LRU_INACTIVE_ANON):
        shrink_active_list(a, sc, SWAP_CLUSTER_MAX, LRU_ACTIVE_ANON)
    if progress:
        a.ctr[_KSWAPD_FAILURES] = 0


def shrink_node(a: Arena, sc: ScanControl, priority: int) -> None:
    prepare_scan_control(a, sc)
    nr = get_scan_count(a, sc, priority)
    reclaimed = sc.nr_reclaimed
    while scan_left(nr):
        shrink_lruvec_batch(a, sc, nr)
        if sc.nr_reclaimed >= sc.nr_to_reclaim:
            break
    shrink_node_done(a, sc, sc.nr_reclaimed > reclaimed)


def try_to_free_pages(a: Arena, gfp: int, order: int, highest: int) -> int:
    sc = ScanControl(a, gfp, False)
    sc.nr_to_reclaim = SWAP_CLUSTER_MAX
    sc.reclaim_idx = highest
    a.ctr[CTR["allocstall_dma"] + highest] += 1
    a.cost[COST["slept"]] = 1
    for priority in range(DEF_PRIORITY, -1, -1):
        sc.may_swap = bool(gfp & GFP_IO) and a.ctr[CTR["nr_swap_free"]] > 0
        shrink_node(a, sc, priority)
        if sc.nr_reclaimed >= sc.nr_to_reclaim:
            break
    cost = a.cost
    cost[COST["scanned"]] += sc.nr_scanned
    cost[COST["reclaimed"]] += sc.nr_reclaimed
    cost[COST["written_back"]] += sc.written
    cost[COST["swapped_out"]] += sc.swapped
    snapshot_refaults(a)
    reclaim_stall(a, 1 + sc.work_us)
    return sc.nr_reclaimed


# -- kswapd ---------------------------------------------------------------------------------------

def pgdat_balanced(a: Arena, order: int, highest: int) -> bool:
    from .buddy import zone_watermark_ok
    found = False
    for zid in range(min(highest, len(a.zones) - 1) + 1):
        z = a.zones[zid]
        if not z.managed:
            continue
        found = True
        if zone_watermark_ok(z, order, z.wmark[2], highest, 0):
            return True
    return not found


def wakeup_kswapd(a: Arena, order: int, highest: int) -> None:
    if a.ctr[_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES or pgdat_balanced(a, order, highest):
        return
    kt = a.kt
    asleep = not a.kswapd_wanted or bool(kt.nap_until)
    if asleep or order > a.kswapd_order:
        a.kswapd_order = order
    if asleep or highest > a.kswapd_highest:
        a.kswapd_highest = highest
    if kt.nap_until:
        a.ctr[CTR["kswapd_low_wmark_hit_quickly"]] += 1
        kt.nap_until = 0
    kt.clock = max(kt.clock, a.ticks)
    a.kswapd_wanted = 1
    a.cost[COST["kswapd_woken"]] = 1


def prepare_kswapd_sleep(a: Arena) -> bool:
    return a.ctr[_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES or pgdat_balanced(a, 0, a.kswapd_highest)


def balance_pgdat_done(a: Arena) -> None:
    """balance_pgdat() is over: kswapd_try_to_sleep() naps on a balanced node, else works on."""
    kt = a.kt
    if not kt.run_reclaimed and not pgdat_balanced(a, 0, a.kswapd_highest):
        a.ctr[_KSWAPD_FAILURES] += 1
    snapshot_refaults(a)
    kt.priority = 0
    if prepare_kswapd_sleep(a):
        # kswapd_try_to_sleep(): a balanced node hands the order to kcompactd first
        compaction.wakeup_kcompactd(a, a.kswapd_order, a.kswapd_highest)
        kt.nap_until = kt.clock + KSWAPD_NAP_US
    else:
        a.ctr[CTR["kswapd_high_wmark_hit_quickly"]] += 1


def kswapd_nap_done(a: Arena) -> None:
    a.kt.nap_until = 0
    if prepare_kswapd_sleep(a):
        a.kswapd_wanted = 0
    else:
        a.ctr[CTR["kswapd_high_wmark_hit_quickly"]] += 1


def balance_pgdat_batch(a: Arena) -> int:
    """balance_pgdat() one SWAP_CLUSTER_MAX batch at a time (csrc/reclaim.c): the time it took."""
    kt = a.kt
    highest = a.kswapd_highest
    if not kt.priority:
        a.ctr[CTR["pageoutrun"]] += 1
        kt.priority = DEF_PRIORITY
        kt.run_reclaimed = 0
        kt.in_round = 0
    sc = ScanControl(a, GFP_IO | GFP_FS | GFP_DIRECT_RECLAIM | GFP_KSWAPD_RECLAIM, True)
    sc.reclaim_idx = highest
    prepare_scan_control(a, sc)         # per batch: the kernel's is per round
    for zid in range(min(highest, len(a.zones) - 1) + 1):
        z = a.zones[zid]
        if z.managed:
            sc.nr_to_reclaim += max(z.wmark[2], SWAP_CLUSTER_MAX)
    while True:
        if not kt.in_round:
            if kt.priority < 1 or pgdat_balanced(a, 0, highest):
                balance_pgdat_done(a)
                return 0
            kt.nr = get_scan_count(a, sc, kt.priority)
            kt.round_reclaimed = 0
            kt.in_round = 1
        batch = scan_left(kt.nr)
        sc.nr_reclaimed = kt.round_reclaimed
        if batch:
            shrink_lruvec_batch(a, sc, kt.nr)
        kt.run_reclaimed += sc.nr_reclaimed - kt.round_reclaimed
        kt.round_reclaimed = sc.nr_reclaimed
        if not scan_left(kt.nr) or sc.nr_reclaimed >= sc.nr_to_reclaim:
            shrink_node_done(a, sc, kt.round_reclaimed > 0)
            kt.in_round = 0
            kt.priority -= 1
        if batch:
            return sc.work_us or 1


# -- counters -------------------------------------------------------------------------------------

def last_cost(a: Arena) -> list:
    out = list(a.cost)
    out[COST["seq"]] = int(a.cost[COST["seq"]] == a.alloc_seq)
    return out


def set_oom_mode(a: Arena, mode) -> int:
    if type(mode) is not int or not 0 <= mode <= 2:
        return EINVAL
    if mode == 2:
        a.ctr[CTR["oom_kill"]] += 1
    else:
        a.oom_mode = mode
    return OK


def check(a: Arena):
    """None, or a message naming the first broken invariant (reclaim_check())."""
    zone_lru = [[0] * 5 for _ in a.zones]
    for lru in range(LRU_UNEVICTABLE + 1):
        n, prev = 0, NIL
        pfn = a.lru[lru][0]
        while pfn != NIL:
            p = a.pages.get(pfn)
            n += 1
            if p is None or n > a.nr_pages:
                return f"LRU {_LRU_NAMES[lru]} is corrupt"
            if p.prev != prev:
                return f"LRU {_LRU_NAMES[lru]}: pfn {pfn:#x} has a bad prev link"
            if not p.flags & PG_LRU or not p.flags & PG_ALLOC or page_lru(a, pfn) != lru:
                return f"LRU {_LRU_NAMES[lru]}: pfn {pfn:#x} is not a page of this list"
            owner = a.rmap.get(pfn)
            if owner is None or not a.mms[owner[0]].alive:
                return f"LRU {_LRU_NAMES[lru]}: pfn {pfn:#x} belongs to no live process or file"
            mm, idx = a.mms[owner[0]], owner[1]
            if idx >= mm.nr_pages or mm.ent[idx] & 3 != ENT_PRESENT or mm.ent[idx] >> 3 != pfn:
                return f"LRU {_LRU_NAMES[lru]}: pfn {pfn:#x} is not mapped where its rmap says"
            zone_lru[a.zone_of(pfn).zid][lru] += 1
            prev = pfn
            pfn = p.next
        if prev != a.lru[lru][1]:
            return f"LRU {_LRU_NAMES[lru]}: the tail is wrong"
        if n != lru_size(a, lru):
            return f"LRU {_LRU_NAMES[lru]} holds {n} pages but counts {lru_size(a, lru)}"
    for z in a.zones:
        for lru in range(LRU_UNEVICTABLE + 1):
            if zone_lru[z.zid][lru] != zone_lru_size(z, lru):
                return (f"zone {z.zid} counts {zone_lru_size(z, lru)} {_LRU_NAMES[lru]} pages, "
                        f"the list holds {zone_lru[z.zid][lru]}")
    swapents = dirty = 0
    for mid, mm in enumerate(a.mms):
        if not mm.alive:
            continue
        rss = swp = drt = 0
        for idx in range(mm.nr_pages):
            e = mm.ent[idx]
            state = e & 3
            if state == ENT_PRESENT:
                rss += 1
                drt += 1 if mm.is_file and e & ENT_DIRTY else 0
                pfn = e >> 3
                p = a.pages.get(pfn)
                if a.rmap.get(pfn) != (mid, idx) or p is None or not p.flags & PG_LRU:
                    return f"mm {mid} page {idx}: pfn {pfn:#x} does not point back"
            elif state == ENT_SWAP:
                swp += 1
                if e >> 3 >= a.swap_next:
                    return f"mm {mid} page {idx}: swap slot out of range"
            elif not mm.is_file and state != ENT_NONE:
                return f"mm {mid} page {idx}: bad entry"
        if (rss, swp, drt) != (mm.rss, mm.swapents, mm.nr_dirty):
            return (f"mm {mid}: counts rss {mm.rss} swap {mm.swapents} dirty {mm.nr_dirty}, "
                    f"holds {rss} {swp} {drt}")
        swapents += swp
        dirty += drt
    if swapents != a.swap_next - len(a.swap_free) or a.ctr[CTR["nr_swap_free"]] != a.swap_pages - swapents:
        return f"swap: {swapents} entries in use but {a.swap_next - len(a.swap_free)} slots taken"
    if dirty != a.ctr[CTR["nr_dirty"]]:
        return f"{a.ctr[CTR['nr_dirty']]} dirty pages counted, {dirty} found"
    return None


