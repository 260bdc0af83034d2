"""Users of memory and what pressure does to them: the Machine methods for
processes, files, swap, kswapd and the OOM killer, shared by both backends.

Processes and files are *mms* in the core (csrc/reclaim.c, model/reclaim.py);
this layer names them (pids, paths), validates every argument before the core
sees it, runs the OOM killer when a core call answers EOOM, and describes what
the last allocation cost (:attr:`ReclaimAPI.last_alloc`).

Choices, all deterministic:
- kswapd runs on its own position of the simulated clock (csrc/kthread.c),
  between the page allocations of every call, doing the balance_pgdat() work
  that fits in the time the caller spent, until a zone the request could use
  is at its high watermark; it stalls nobody (PSI "some", not "full");
- simulated costs (pyalloc/_abi.py): writeback, swap-out, swap-in and a
  page read from disk cost 100 us each, a page moved by compaction 2 us, any
  core operation 1 us; direct reclaim, direct compaction and refaults stall the
  calling task for that long, which /proc/pressure/memory reports;
- the OOM killer kills the task with the highest badness and the allocation is
  tried again; pid 1 (the simulated kernel's own task) is never a victim.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from .. import errors, gfp as gfpmod
from . import oom, psi
from ..errors import InvalidArgument, OutOfMemory
from ..errors import show
from .._abi import COST, COUNTERS, FAULT_WRITE, KTHREAD, MAX_IDLE_US, MAX_PAGES, PAGE_SHIFT
from .state import MachineState

TASK_COMM_LEN = 16
FIRST_PID = 100
MAX_SWAP_PAGES = (1 << 32) - 1   # swap slots are 32-bit in the core
FILE_SIZE_FACTOR = 4             # a file holds at most this many times the machine's memory

# do_anonymous_page(): vma_alloc_folio(GFP_HIGHUSER_MOVABLE | __GFP_ZERO) of an order-0 folio
GFP_ANON_FAULT = gfpmod.parse("GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO")
# filemap_alloc_folio() with the mapping's gfp (GFP_HIGHUSER_MOVABLE)
GFP_PAGECACHE = gfpmod.parse("GFP_HIGHUSER_MOVABLE|__GFP_COMP")
# a write's write_begin: __filemap_get_folio(FGP_WRITEBEGIN) adds __GFP_WRITE for FGP_WRITE
GFP_PAGECACHE_WRITE = GFP_PAGECACHE | gfpmod.GFP_WRITE


def _is_eoom(r) -> bool:
    """A core call answered EOOM: a bare status, or a tuple that starts with one."""
    return r == errors.EOOM or (isinstance(r, tuple) and r[0] == errors.EOOM)


@dataclasses.dataclass(frozen=True)
class AllocCost:
    """What the last allocating call cost (``Machine.last_alloc``)."""
    slept: bool = False              # entered direct reclaim or direct compaction
    scanned: int = 0                 # LRU pages direct reclaim looked at
    reclaimed: int = 0               # pages it freed
    written_back: int = 0            # dirty file pages it waited for
    swapped_out: int = 0             # anonymous pages it wrote to swap
    compacted: int = 0               # pages direct compaction moved
    reserves: bool = False           # the page came from below the min watermark
    kswapd_woken: bool = False
    stall_us: int = 0                # simulated time the caller stalled
    oom_victim: int | None = None    # pid the OOM killer killed on the way


@dataclasses.dataclass
class Process:
    pid: int
    name: str
    mm: int
    oom_score_adj: int = 0


def check_name(value, what: str) -> str:
    """A process name or a file path: a non-empty str without NUL (TypeError, InvalidArgument)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value or "\0" in value:
        raise InvalidArgument(f"bad {what} {value[:60]!r}")
    return value


def _check_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


class ReclaimAPI(MachineState):
    """Mixin of :class:`pyalloc.Machine`: processes, files, swap, reclaim, OOM."""

    def _reclaim_boot(self, swap_bytes: int) -> None:
        self._procs: dict[int, Process] = {}
        self._files: dict[str, int] = {}
        self._next_pid = FIRST_PID
        self._oom_victim = None
        self._oom_panicked = False          # oom.retry: out_of_memory() found no victim and panicked
        if swap_bytes >> PAGE_SHIFT > MAX_SWAP_PAGES:
            raise InvalidArgument(f"swap must be less than 16 TiB ({MAX_SWAP_PAGES} pages at most), "
                                  f"not {show(swap_bytes)} bytes")
        if swap_bytes:
            r = self._core.set_swap(swap_bytes >> PAGE_SHIFT)
            if r == errors.ENOMEM:
                raise OutOfMemory(f"swap={swap_bytes}: the host cannot back a swap device of "
                                  f"{swap_bytes >> PAGE_SHIFT} pages")
            if r:
                errors.raise_for(r, f"swap={swap_bytes}")

    @property
    def max_file_size(self) -> int:
        """The largest file the machine holds, in bytes: FILE_SIZE_FACTOR times its memory.
        Each page of a file costs the host an entry even when it is a hole, so a
        write far past the end must not cost what its offset says."""
        return min(FILE_SIZE_FACTOR * self.nr_pages, MAX_PAGES) << PAGE_SHIFT

    def _check_file_pages(self, pages, what: str) -> int:
        _check_int(pages, "pages")
        limit = self.max_file_size >> PAGE_SHIFT
        if not 0 <= pages <= limit:
            raise InvalidArgument(f"{what}: pages must be in 0..{limit} ({FILE_SIZE_FACTOR} times the memory: "
                                  f"the largest file), not {show(pages)}")
        return pages

    def _check_backable(self, offset: int, n: int, what: str) -> None:
        """A read or write holds all its pages in memory at once: one spanning
        more pages than this kind of allocation may ever hold (every zone's
        managed pages above its min watermark) cannot succeed, and fails
        before it allocates, reclaims or kills anything."""
        if not n:
            return
        span = ((offset + n - 1) >> PAGE_SHIFT) - (offset >> PAGE_SHIFT) + 1
        limit = 0
        for zid in range(len(gfpmod.ZONE_NAMES)):
            z = self._core.zone_info(zid)
            limit += max(0, z.managed - z.wmark[0])
        if span > limit:
            raise OutOfMemory(f"{what}: [{show(offset)}, {show(offset + n)}) spans {span} pages, more than "
                              f"the machine's memory can hold at once ({limit})")

    # -- processes ---------------------------------------------------------------

    def spawn(self, name: str, oom_score_adj: int = 0) -> int:
        """A new process with no memory yet; returns its pid."""
        self._live()
        if not isinstance(name, str):
            raise TypeError(f"spawn: name must be a str, not {type(name).__name__}")
        if not name or "\n" in name or "\0" in name:
            raise InvalidArgument(f"spawn: bad process name {name[:40]!r}")
        _check_int(oom_score_adj, "oom_score_adj")
        if not -1000 <= oom_score_adj <= 1000:
            raise InvalidArgument(f"spawn: oom_score_adj must be in -1000..1000, not {show(oom_score_adj)}")
        mid = self._core.mm_new(0)
        if mid < 0:
            errors.raise_for(mid, "spawn")
        pid = self._next_pid
        self._next_pid += 1
        self._procs[pid] = Process(pid, name[:TASK_COMM_LEN - 1], mid, oom_score_adj)
        return pid

    def _proc(self, pid, what: str) -> Process:
        self._live()
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise TypeError(f"{what}: pid must be an int, not {type(pid).__name__}")
        proc = self._procs.get(pid)
        if proc is None:
            raise InvalidArgument(f"{what}: no process with pid {show(pid)}")
        return proc

    def touch(self, pid: int, pages: int, start: int = 0) -> int:
        """Access pages [start, start+pages) of the process's anonymous memory:
        present pages are marked referenced, swapped-out ones come back, new
        ones (past the end, or in a hole munmap/MADV_DONTNEED left) are faulted
        in as zero pages (GFP_HIGHUSER_MOVABLE); the mapping grows to cover the
        range.  Growing a process by k pages is touch(pid, k, start=old_size).
        Returns how many it got; fewer if memory ran out or the OOM killer
        chose this very process."""
        proc = self._proc(pid, "touch")
        _check_int(pages, "pages")
        _check_int(start, "start")
        if not 0 <= start <= MAX_PAGES or not 0 <= pages <= MAX_PAGES - start:
            raise InvalidArgument(f"touch: start and pages must be >= 0 with start + pages <= {MAX_PAGES}, "
                                  f"not {show(start)} and {show(pages)}")
        return self._fault_range(proc.mm, start, pages, GFP_ANON_FAULT, 0, proc.name, pid, True)

    def exit(self, pid: int) -> None:
        """The process exits: its pages and swap slots are freed."""
        proc = self._proc(pid, "exit")
        r = self._core.mm_release(proc.mm)
        if r:
            errors.raise_for(r, f"exit({pid})")
        del self._procs[pid]

    def processes(self) -> list[dict]:
        """Live processes, by pid: name, rss and swap in pages, size touched."""
        self._live()
        return [dict(t) for t in self._tasks()]

    def _tasks(self) -> list[dict]:
        out = []
        for pid in sorted(self._procs):
            proc = self._procs[pid]
            info = self._core.mm_info(proc.mm)
            out.append({"pid": pid, "name": proc.name, "oom_score_adj": proc.oom_score_adj,
                        "total_vm": info["nr_pages"], "rss": info["rss"], "swapents": info["swapents"],
                        "pgtables_bytes": info["pgtables_bytes"]})
        return out

    def user_write(self, pid: int, offset: int, data: bytes) -> None:
        """Write bytes into the process's anonymous memory (within what it touched)."""
        proc = self._proc(pid, "user_write")
        view = self._bytes_arg(data, "user_write")
        self._check_span(offset, len(view), "user_write", self._core.mm_info(proc.mm)["nr_pages"] << PAGE_SHIFT)
        self._check_backable(offset, len(view), "user_write")
        self._rw(proc.mm, offset, view, None, proc.name, pid, "user_write", GFP_ANON_FAULT)

    def user_read(self, pid: int, offset: int, n: int) -> bytes:
        """Read n bytes of the process's anonymous memory; swapped-out pages come back."""
        proc = self._proc(pid, "user_read")
        self._check_span(offset, n, "user_read", self._core.mm_info(proc.mm)["nr_pages"] << PAGE_SHIFT)
        self._check_backable(offset, n, "user_read")
        return self._rw(proc.mm, offset, None, n, proc.name, pid, "user_read", GFP_ANON_FAULT)

    # -- files -----------------------------------------------------------------------

    def _file(self, path, what: str, create: bool):
        self._live()
        check_name(path, f"{what}: path")
        mid = self._files.get(path)
        if mid is None:
            if not create:
                raise InvalidArgument(f"{what}: no such file {path[:60]!r}")
            mid = self._core.mm_new(1)
            if mid < 0:
                errors.raise_for(mid, what)
            self._files[path] = mid
        return mid

    def _forget_file(self, path: str) -> None:
        """Undo the creation of a file whose first call failed: it never existed."""
        mid = self._files.pop(path)
        r = self._core.mm_release(mid)
        if r:
            errors.raise_for(r, f"releasing {path[:60]!r}")

    def read_file(self, path: str, pages: int) -> int:
        """Read pages [0, pages) of a file through the page cache (clean pages);
        the file is created, empty of data, if it does not exist.  Returns the
        pages it got into the cache."""
        self._live()
        self._check_file_pages(pages, "read_file")
        mid = self._file(path, "read_file", True)
        return self._fault_range(mid, 0, pages, GFP_PAGECACHE, 0, self._comm, self._pid, False)

    def write_file(self, path: str, pages: int) -> int:
        """Write pages [0, pages) of a file: dirty page cache until writeback."""
        self._live()
        self._check_file_pages(pages, "write_file")
        mid = self._file(path, "write_file", True)
        return self._fault_range(mid, 0, pages, GFP_PAGECACHE_WRITE, FAULT_WRITE, self._comm, self._pid, False)

    def file_write(self, path: str, offset: int, data: bytes) -> None:
        """pwrite(): bytes into the file through the page cache (the file grows as needed)."""
        self._live()
        view = self._bytes_arg(data, "file_write")
        self._check_span(offset, len(view), "file_write", MAX_PAGES << PAGE_SHIFT)
        if offset + len(view) > self.max_file_size:
            raise InvalidArgument(f"file_write: [{show(offset)}, {show(offset + len(view))}) runs past the largest "
                                  f"file ({self.max_file_size} bytes, {FILE_SIZE_FACTOR} times the memory)")
        check_name(path, "file_write: path")
        self._check_backable(offset, len(view), "file_write")
        created = path not in self._files
        mid = self._file(path, "file_write", True)
        try:
            self._rw(mid, offset, view, None, self._comm, None, "file_write", GFP_PAGECACHE_WRITE)
        except BaseException:
            if created and path in self._files:
                self._forget_file(path)
            raise

    def file_read(self, path: str, offset: int, n: int) -> bytes:
        """pread() of n bytes, all within the file; dropped pages are read back from disk."""
        self._live()
        self._check_span(offset, n, "file_read", MAX_PAGES << PAGE_SHIFT)
        mid = self._file(path, "file_read", False)
        self._check_span(offset, n, "file_read", self._core.mm_info(mid)["size"])
        self._check_backable(offset, n, "file_read")
        return self._rw(mid, offset, None, n, self._comm, None, "file_read", GFP_PAGECACHE)

    def file_size(self, path: str) -> int:
        """The file's size in bytes."""
        mid = self._file(path, "file_size", False)
        return self._core.mm_info(mid)["size"]

    def file_info(self, path: str) -> dict:
        """size (bytes), cached and dirty (pages in the page cache) of a file."""
        info = self._core.mm_info(self._file(path, "file_info", False))
        return {"size": info["size"], "cached": info["rss"], "dirty": info["nr_dirty"]}

    def sync(self) -> None:
        """Write every dirty page cache page back to the simulated disk."""
        self._live()
        r = self._core.sync()
        if r:
            errors.raise_for(r, "sync")

    def drop_caches(self) -> int:
        """echo 1 > /proc/sys/vm/drop_caches: drop every clean page cache page; returns how many."""
        self._live()
        return self._core.drop_caches()

    # -- what it cost ------------------------------------------------------------------

    @property
    def last_alloc(self) -> AllocCost:
        """What the last allocating call cost: reclaim, compaction, reserves, OOM."""
        self._live()
        c = self._core.last_cost()
        victim = self._oom_victim
        if not c[COST["seq"]]:
            return AllocCost(oom_victim=victim)
        return AllocCost(slept=bool(c[COST["slept"]]), scanned=c[COST["scanned"]],
                         reclaimed=c[COST["reclaimed"]], written_back=c[COST["written_back"]],
                         swapped_out=c[COST["swapped_out"]], compacted=c[COST["compacted"]],
                         reserves=bool(c[COST["reserves"]]), kswapd_woken=bool(c[COST["kswapd_woken"]]),
                         stall_us=c[COST["stall_us"]], oom_victim=victim)

    def idle(self, us: int) -> None:
        """Let us microseconds of simulated time pass with the caller asleep: the kernel
        threads (kswapd) work meanwhile, as they do between the pages of a call."""
        self._live()
        _check_int(us, "us")
        if not 0 <= us <= MAX_IDLE_US:
            raise InvalidArgument(f"idle: us must be in 0..{MAX_IDLE_US}, not {show(us)}")
        r = self._core.idle(us)
        if r:
            errors.raise_for(r, "idle")

    def reclaim_counters(self) -> dict:
        """Every reclaim counter and gauge of the core, by name (see pyalloc._abi)."""
        self._live()
        return dict(zip(COUNTERS, self._core.counters()))

    def _reclaim_snapshot(self) -> dict:
        ctr = self._core.counters()
        out = dict(zip(COUNTERS, ctr))
        base = KTHREAD["psi_some_total_us"]
        some = self._core.kthread_info()[base:base + 6]
        out["pressure_memory"] = psi.render(ctr, self._core.vm_info()["ticks"], some)
        return out

    # -- the OOM killer ------------------------------------------------------------------

    def _out_of_memory(self, comm: str, pid: int, user_fault: bool):
        """out_of_memory(): kill the worst task and return its pid, or None."""
        c = self._core.last_cost()
        gfp, order = c[COST["oom_gfp"]], c[COST["oom_order"]]
        snap = self.snapshot()
        snap["reclaimable_caches"] = self._reclaimable_cache_names()
        tasks = self._tasks()
        totalpages = sum(z["managed"] for z in snap["zones"]) + (self.swap >> PAGE_SHIFT)
        victim = oom.select_bad_process(tasks, totalpages)
        clock = self._clock_ns()
        current = self._procs.get(pid)
        adj = current.oom_score_adj if current is not None else 0
        if victim is None:
            self._log.emit(clock, oom.no_victim_report(snap, tasks, gfp, order, comm, pid, adj))
            return None
        self._log.emit(clock, oom.kill_report(snap, tasks, victim, gfp, order, comm, pid, user_fault, adj))
        proc = self._procs.pop(victim["pid"])
        self._core.mm_release(proc.mm)
        self._core.set_oom_mode(2)          # count the kill
        return victim["pid"]

    def _with_oom(self, call: Callable[[], Any], comm: Optional[str] = None, pid: Optional[int] = None,
                  user_fault: bool = False) -> Any:
        """Run a core call through the OOM killer's turn (oom.retry)."""
        self._oom_victim = None
        return oom.retry(self, call, _is_eoom, comm or self._comm, pid or self._pid, user_fault, stop=pid)[0]

    # -- helpers ---------------------------------------------------------------------------

    def _fault_range(self, mid: int, start: int, nr: int, gfp: int, flags: int, comm: str, pid: int,
                     user_fault: bool) -> int:
        done_total = 0

        def fault():
            nonlocal done_total
            r, done = self._core.mm_fault(mid, start + done_total, nr - done_total, gfp, flags)
            done_total += done
            return r
        self._oom_victim = None
        r, victim = oom.retry(self, fault, lambda r: r == errors.EOOM, comm, pid, user_fault, stop=pid)
        if r and r not in (errors.ENOMEM, errors.EOOM):
            errors.raise_for(r, "fault")
        if r == errors.ENOMEM and victim is None:
            self._warn_alloc(gfp, "page allocation failure: order:0")
        return done_total

    def _rw(self, mid: int, offset: int, data, n, comm: str, pid, what: str, gfp: int):
        """One read or write through the core; pid is the process whose memory
        it is (None for a file: the simulated kernel task does the IO)."""
        if data is not None:
            call = lambda: self._core.mm_write(mid, offset, data, gfp)
        else:
            call = lambda: self._core.mm_read(mid, offset, n, gfp)
        r = self._with_oom(call, comm, pid if pid is not None else self._pid, pid is not None)
        if pid is not None and self._oom_victim == pid:
            raise OutOfMemory(f"{what}: process {pid} was killed by the OOM killer")
        if isinstance(r, int):
            if r == errors.EFAULT:
                raise InvalidArgument(f"{what}: [{show(offset)}, {show(offset + (len(data) if data is not None else n))}) "
                                      "runs past the end")
            if r == errors.ENOMEM:
                raise OutOfMemory(f"{what}: no memory for the pages")
            if r:
                errors.raise_for(r, what)
            return None
        return r

    @staticmethod
    def _bytes_arg(data, what: str):
        try:
            return memoryview(data).cast("B")
        except TypeError:
            raise TypeError(f"{what}: data must be bytes-like, not {type(data).__name__}") from None

    @staticmethod
    def _check_span(offset, n, what: str, end: int) -> None:
        """[offset, offset+n) must lie within [0, end): checked before anything is
        allocated for it, host buffers included."""
        _check_int(offset, "offset")
        _check_int(n, "size")
        if offset < 0 or n < 0:
            raise InvalidArgument(f"{what}: offset and size must not be negative")
        if offset + n > end:
            raise InvalidArgument(f"{what}: [{show(offset)}, {show(offset + n)}) runs past the end")
