"""mlock.c's twin: mlock() and munlock() of a process's anonymous memory and
the unevictable LRU (mm/mlock.c mlock_folio(), mlock_new_folio(),
munlock_folio(); csrc/mlock.c has the essay).  A locked range is bit 2 of
each of its anonymous entries (ENT_MLOCKED); a present page with the bit is
on LRU_UNEVICTABLE, where reclaim never looks.
"""

from __future__ import annotations

from .._abi import CTR, EINVAL, LRU_INACTIVE_ANON, LRU_UNEVICTABLE, OK, PG_REFERENCED
from .arena import Arena
from . import reclaim

_MLOCKED = CTR["unevictable_pgs_mlocked"]
_CULLED = CTR["unevictable_pgs_culled"]
_MUNLOCKED = CTR["unevictable_pgs_munlocked"]
_RESCUED = CTR["unevictable_pgs_rescued"]


def _mlock_range(a: Arena, mid, start, nr):
    mm = reclaim.mm_get(a, mid)
    if mm is None or mm.is_file or not reclaim._range_ok(start, nr) or start + nr > mm.nr_pages:
        return None
    return mm


def mlock_new_page(a: Arena, pfn: int) -> None:
    """mlock_new_folio() + __mlock_new_folio(): a page faulted into a locked range."""
    a.ctr[_MLOCKED] += 1
    a.ctr[_CULLED] += 1
    reclaim.lru_add(a, pfn, LRU_UNEVICTABLE)


def mlock_page(a: Arena, mm, idx: int) -> None:
    """mlock_folio() + __mlock_folio(): a present page leaves its evictable list."""
    pfn = mm.ent[idx] >> 3
    referenced = a.pages[pfn].flags & PG_REFERENCED
    reclaim.lru_del(a, pfn)
    mm.ent[idx] |= reclaim.ENT_MLOCKED
    mlock_new_page(a, pfn)
    a.pages[pfn].flags |= referenced


def munlock_page(a: Arena, mm, idx: int) -> None:
    """munlock_folio() + __munlock_folio(): back to the head of the inactive anon list."""
    e = mm.ent[idx]
    if e & 3 != reclaim.ENT_PRESENT:
        mm.ent[idx] = e & ~reclaim.ENT_MLOCKED
        return
    pfn = e >> 3
    referenced = a.pages[pfn].flags & PG_REFERENCED
    reclaim.lru_del(a, pfn)
    mm.ent[idx] = e & ~reclaim.ENT_MLOCKED
    reclaim.lru_add(a, pfn, LRU_INACTIVE_ANON)
    a.pages[pfn].flags |= referenced
    a.ctr[_MUNLOCKED] += 1
    a.ctr[_RESCUED] += 1


def munlock_mm(a: Arena, mm) -> None:
    """exit(): zapping the whole mapping munlocks every locked page first."""
    if mm.is_file:
        return
    for idx in range(mm.nr_pages):
        if mm.ent[idx] & reclaim.ENT_MLOCKED:
            munlock_page(a, mm, idx)


def mm_range_mlocked(mm, start: int, nr: int) -> bool:
    """Whether any page of [start, start+nr) lies in a locked range (a VM_LOCKED vma)."""
    return any(mm.ent[idx] & reclaim.ENT_MLOCKED for idx in range(start, start + nr))


def mlock(a: Arena, mid, start, nr) -> int:
    """pa_mlock(): mlock_fixup() -> mlock_vma_pages_range() for [start, start+nr)."""
    mm = _mlock_range(a, mid, start, nr)
    if mm is None:
        return EINVAL
    a.ticks += 1
    for idx in range(start, start + nr):
        e = mm.ent[idx]
        if e & reclaim.ENT_MLOCKED:
            continue
        if e & 3 == reclaim.ENT_PRESENT:
            mlock_page(a, mm, idx)
        else:
            mm.ent[idx] = e | reclaim.ENT_MLOCKED
    return OK


def munlock(a: Arena, mid, start, nr) -> int:
    """pa_munlock(): the range loses VM_LOCKED and its pages go back to reclaim."""
    mm = _mlock_range(a, mid, start, nr)
    if mm is None:
        return EINVAL
    a.ticks += 1
    for idx in range(start, start + nr):
        if mm.ent[idx] & reclaim.ENT_MLOCKED:
            munlock_page(a, mm, idx)
    return OK
