"""Processes and files give memory back: the Machine methods munmap,
madvise, mlock, munlock, truncate and unlink, shared by both backends (the
core work is csrc/memory.c <-> pyalloc/model/memory.py and csrc/mlock.c <->
pyalloc/model/mlock.py).

Every call checks all its arguments before the core sees them and raises
InvalidArgument (a ValueError) for a bad one -- an unknown pid or path, a
negative or too long range, a range past the end of the process's mapping,
unknown advice -- or TypeError for a value of the wrong type; the machine is
then unchanged.  A process's anonymous memory is one mapping [0, total_vm)
that grows as it is touched (``touch(pid, pages, start)``): munmap() of its
tail shrinks it, munmap() or MADV_DONTNEED inside it leaves a hole that the
next touch faults in as zero pages.
"""

from __future__ import annotations

from .. import errors
from .._abi import MADV_ADVICE
from .reclaim import GFP_ANON_FAULT
from ..errors import InvalidArgument, show
from .reclaim import _check_int
from .state import MachineState


class MemoryAPI(MachineState):
    """Mixin of :class:`pyalloc.Machine`: munmap, madvise, mlock, munlock, truncate, unlink."""

    def _anon_range(self, pid, start, pages, what: str) -> int:
        """The process's mm, after checking [start, start+pages) lies inside its mapping."""
        proc = self._proc(pid, what)
        _check_int(start, "start")
        _check_int(pages, "pages")
        total = self._core.mm_info(proc.mm)["nr_pages"]
        if start < 0 or pages < 0 or start + pages > total:
            raise InvalidArgument(f"{what}: start {show(start)} and pages {show(pages)} are not a range inside "
                                  f"process {pid}'s mapping [0, {total})")
        return proc.mm

    def munmap(self, pid: int, start: int, pages: int) -> None:
        """munmap(): pages [start, start+pages) of the process's anonymous memory
        are unmapped: present pages freed, swap entries freed (mm/memory.c
        zap_pte_range()).  Unmapping the tail shrinks the mapping (total_vm)."""
        mid = self._anon_range(pid, start, pages, "munmap")
        r = self._core.munmap(mid, start, pages)
        if r:
            errors.raise_for(r, "munmap")

    def madvise(self, pid: int, start: int, pages: int, advice: str) -> None:
        """madvise() of pages [start, start+pages) of the process's anonymous memory.

        ``"MADV_DONTNEED"``: the pages are dropped (swap entries too); the next
        touch faults in zero pages.  ``"MADV_COLD"``: present pages lose their
        referenced bit and active ones move to the inactive list (pgdeactivate).
        ``"MADV_PAGEOUT"``: present pages are reclaimed now (mm/madvise.c
        madvise_cold_or_pageout_pte_range() -> reclaim_pages()): written to swap
        (pswpout, pgpgout, nr_vmscan_write) and freed, or, when swap has no free
        slot, activated (pgactivate)."""
        if not isinstance(advice, str):
            raise TypeError(f"madvise: advice must be a str, not {type(advice).__name__}")
        code = MADV_ADVICE.get(advice)
        if code is None:
            raise InvalidArgument(f"madvise: unknown advice {show(advice)} (one of {', '.join(MADV_ADVICE)})")
        mid = self._anon_range(pid, start, pages, "madvise")
        r = self._core.madvise(mid, start, pages, code)
        if r:
            errors.raise_for(r, "madvise")

    def mlock(self, pid: int, start: int, pages: int) -> int:
        """mlock(): pages [start, start+pages) of the process's anonymous memory
        are locked in memory (mm/mlock.c).  Present pages move to the
        unevictable LRU (unevictable_pgs_mlocked, unevictable_pgs_culled), then
        the range is populated as __mm_populate() does -- swapped-out pages come
        back, holes are faulted in as zero pages, each mlocked as it arrives --
        and so is any page of the range faulted in later.  Reclaim never takes
        a locked page; MADV_DONTNEED, MADV_COLD and MADV_PAGEOUT on a range
        holding one raise InvalidArgument (EINVAL, as 6.18 answers for a
        VM_LOCKED vma).  Locking a locked page again changes nothing.  Returns
        how many pages of the range are in memory afterwards: fewer if memory
        ran out (the range stays locked, as VM_LOCKED is set before 6.18
        populates; they are mlocked when touched) or 0 if the OOM killer chose
        this very process."""
        mid = self._anon_range(pid, start, pages, "mlock")
        r = self._core.mlock(mid, start, pages)
        if r:
            errors.raise_for(r, "mlock")
        proc = self._procs[pid]
        return self._fault_range(mid, start, pages, GFP_ANON_FAULT, 0, proc.name, pid, True)

    def munlock(self, pid: int, start: int, pages: int) -> None:
        """munlock(): pages [start, start+pages) are unlocked; each locked page
        goes back to the head of the inactive anon list
        (unevictable_pgs_munlocked, unevictable_pgs_rescued).  munmap() and
        exit() munlock the locked pages they take away the same way."""
        mid = self._anon_range(pid, start, pages, "munlock")
        r = self._core.munlock(mid, start, pages)
        if r:
            errors.raise_for(r, "munlock")

    def truncate(self, path: str, pages: int) -> None:
        """truncate(): the file becomes ``pages`` pages long.  Page cache and data
        past the new end are gone (dirty pages are cancelled, not written); a
        longer size is a hole that reads as zeros (mm/truncate.c)."""
        self._live()
        self._check_file_pages(pages, "truncate")
        mid = self._file(path, "truncate", False)
        r = self._core.mm_truncate(mid, pages)
        if r:
            errors.raise_for(r, "truncate")

    def unlink(self, path: str) -> None:
        """unlink(): the file is gone, its page cache freed (dirty pages are
        cancelled) and its data on the simulated disk dropped."""
        mid = self._file(path, "unlink", False)
        r = self._core.mm_release(mid)
        if r:
            errors.raise_for(r, "unlink")
        del self._files[path]

