"""memory.c's twin: processes and files giving memory back -- munmap(),
madvise() (MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT) and truncate() of a
file's page cache, function for function (csrc/memory.c has the essay:
mm/memory.c zap_pte_range(), mm/madvise.c madvise_cold_or_pageout_pte_range(),
mm/vmscan.c reclaim_pages(), mm/truncate.c truncate_inode_pages_range()).
"""

from __future__ import annotations

from .._abi import (
    CTR, EINVAL, LRU_ACTIVE_ANON, LRU_INACTIVE_ANON, MADV_COLD, MADV_DONTNEED, MADV_PAGEOUT, OK, PAGE_SHIFT,
    PAGE_SIZE, PG_ACTIVE, PG_REFERENCED, SWAP_OUT_US,
)
from .arena import NIL, Arena
from .mlock import mm_range_mlocked, munlock_page
from .reclaim import (
    ENT_MLOCKED, ENT_PRESENT, ENT_SWAP, Mm, _range_ok, lru_move, mk_ent, mm_get, mm_reserve, mm_truncate, page_bytes,
    release_page, swap_slot_alloc, swap_slot_free,
)


def _anon_range(a: Arena, mid, start, nr) -> Mm | None:
    mm = mm_get(a, mid)
    if mm is None or mm.is_file or not _range_ok(start, nr) or start + nr > mm.nr_pages:
        return None
    return mm


def zap_page_range(a: Arena, mm: Mm, start: int, nr: int) -> None:
    """zap_pte_range(): every page of [start, start+nr) leaves the process."""
    for idx in range(start, start + nr):
        e = mm.ent[idx]
        if e & ENT_MLOCKED:
            munlock_page(a, mm, idx)        # __folio_remove_rmap() -> munlock_vma_folio()
            e = mm.ent[idx]
        if e & 3 == ENT_PRESENT:
            mm.rss -= 1
            release_page(a, e >> 3)
        elif e & 3 == ENT_SWAP:
            mm.swapents -= 1
            swap_slot_free(a, e >> 3)
        mm.ent[idx] = 0


def munmap(a: Arena, mid, start, nr) -> int:
    mm = _anon_range(a, mid, start, nr)
    if mm is None:
        return EINVAL
    a.ticks += 1
    zap_page_range(a, mm, start, nr)
    if start + nr == mm.nr_pages:
        mm.nr_pages = start
    return OK


def deactivate_page(a: Arena, pfn: int) -> None:
    """lru_deactivate(): an active page goes to the head of its inactive list."""
    p = a.pages[pfn]
    p.flags &= ~PG_REFERENCED
    if not p.flags & PG_ACTIVE:
        return
    lru_move(a, pfn, LRU_INACTIVE_ANON)
    a.ctr[CTR["pgdeactivate"]] += 1


def pageout_page(a: Arena, mm: Mm, idx: int) -> None:
    """shrink_folio_list(ignore_references) for one isolated anonymous page."""
    pfn = mm.ent[idx] >> 3
    a.pages[pfn].flags &= ~PG_REFERENCED
    slot = swap_slot_alloc(a)
    if slot == NIL:
        lru_move(a, pfn, LRU_ACTIVE_ANON)
        a.ctr[CTR["pgactivate"]] += 1
        return
    a.swap[slot] = page_bytes(a, pfn)
    a.ctr[CTR["nr_swap_free"]] -= 1
    mm.ent[idx] = mk_ent(slot, ENT_SWAP)
    mm.rss -= 1
    mm.swapents += 1
    a.ctr[CTR["pswpout"]] += 1
    a.ctr[CTR["pgpgout"]] += PAGE_SIZE // 1024
    a.ctr[CTR["nr_vmscan_write"]] += 1
    release_page(a, pfn)
    a.ticks += SWAP_OUT_US


def madvise(a: Arena, mid, start, nr, advice) -> int:
    mm = _anon_range(a, mid, start, nr)
    if mm is None or advice not in (MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT) or type(advice) is not int:
        return EINVAL
    if mm_range_mlocked(mm, start, nr):     # madvise_dontneed_free_valid_vma(), can_madv_lru_vma()
        return EINVAL
    a.ticks += 1
    if advice == MADV_DONTNEED:
        zap_page_range(a, mm, start, nr)
        return OK
    for idx in range(start, start + nr):
        e = mm.ent[idx]
        if e & 3 != ENT_PRESENT:
            continue
        if advice == MADV_COLD:
            deactivate_page(a, e >> 3)
        else:
            pageout_page(a, mm, idx)
    return OK


def mm_truncate_file(a: Arena, mid, nr_pages) -> int:
    """pa_mm_truncate(): the file becomes nr_pages long."""
    mm = mm_get(a, mid)
    if mm is None or not mm.is_file or not _range_ok(0, nr_pages):
        return EINVAL
    if nr_pages > mm.nr_pages:
        mm_reserve(mm, nr_pages)
    a.ticks += 1
    if nr_pages < mm.nr_pages:
        mm_truncate(a, mm, nr_pages)
    mm.nr_pages = nr_pages
    mm.size = nr_pages << PAGE_SHIFT
    return OK
