"""Operation streams: build a sequence of allocator calls once, run it in one core call.

    >>> import pyalloc
    >>> s = pyalloc.Stream()
    >>> a = s.kmalloc(100, "GFP_KERNEL")
    >>> b = s.alloc_pages("GFP_KERNEL", order=2)
    >>> s.kfree(a); s.free_pages(b, order=2)
    >>> len(s)
    4
    >>> with pyalloc.Machine(mem="64M", backend="model") as m:
    ...     r = m.run(s)
    ...     hex(r[a]), r[b]
    ('0xffff888000838000', 2052)

A stream is a flat buffer of fixed-size records (struct pa_op in csrc/pyalloc.h,
four 64-bit words here), so the C core walks it with no Python per operation.
An operation that frees names the operation that allocated its object by its
index (the handle a builder method returns), never by address: one stream runs
on any machine, and a free of what a failed allocation returned is the kernel's
kfree(NULL).

The core loop stops at anything but a plain success and hands the op back
(csrc/stream.c explains when); :meth:`StreamAPI.run` then does here what the
per-call API does -- the same warnings in dmesg, the same exceptions -- and
resumes at the next op.  Operations whose state lives in Python (vmalloc,
vfree) and masks whose per-call path may warn first (the slab bug mask,
__GFP_NOFAIL above order 1) always take that route; other __GFP_NOFAIL ops
stay in the core loop.
"""

from __future__ import annotations

from array import array
from typing import Any

from .. import errors
from .. import gfp as gfpmod
from ..errors import EOOM as _EOOM, InvalidArgument, PyallocError
from ..model import stream as ops_
from .._abi import PAGE_OFFSET, VMALLOC_START, ZERO_SIZE_PTR, ZERO_SIZE_STATUS
from . import oom
from .state import MachineState

MASK64 = (1 << 64) - 1
INT63 = 1 << 63

KIND_NAMES = {
    ops_.OP_KMALLOC: "kmalloc", ops_.OP_KFREE: "kfree", ops_.OP_KREALLOC: "krealloc",
    ops_.OP_KMEM_CACHE_ALLOC: "kmem_cache_alloc", ops_.OP_KMEM_CACHE_FREE: "kmem_cache_free",
    ops_.OP_ALLOC_PAGES: "alloc_pages", ops_.OP_FREE_PAGES: "free_pages",
    ops_.OP_VMALLOC: "vmalloc", ops_.OP_VFREE: "vfree",
    ops_.OP_SPAWN: "spawn", ops_.OP_TOUCH: "touch", ops_.OP_EXIT: "exit", ops_.OP_READ_FILE: "read_file",
    ops_.OP_WRITE_FILE: "write_file", ops_.OP_SYNC: "sync", ops_.OP_DROP_CACHES: "drop_caches",
}
# ops whose result is a count (pages, a pid) rather than an address
_COUNTS = frozenset({ops_.OP_SPAWN, ops_.OP_TOUCH, ops_.OP_READ_FILE, ops_.OP_WRITE_FILE, ops_.OP_DROP_CACHES})
_SLAB_OBJECT = frozenset({ops_.OP_KMALLOC, ops_.OP_KREALLOC, ops_.OP_KMEM_CACHE_ALLOC})
_ALLOCATES = _SLAB_OBJECT | {ops_.OP_ALLOC_PAGES, ops_.OP_VMALLOC}
_PROCESS_OPS = frozenset({ops_.OP_SPAWN, ops_.OP_TOUCH, ops_.OP_EXIT, ops_.OP_READ_FILE, ops_.OP_WRITE_FILE,
                          ops_.OP_SYNC, ops_.OP_DROP_CACHES})
# what a handle may name, per op kind that takes one, and whether -1 (NULL) is allowed
_HANDLE_RULES = {
    ops_.OP_KFREE: (_SLAB_OBJECT, True), ops_.OP_KREALLOC: (_SLAB_OBJECT, True),
    ops_.OP_KMEM_CACHE_FREE: (_SLAB_OBJECT, True), ops_.OP_VFREE: (frozenset({ops_.OP_VMALLOC}), True),
    ops_.OP_FREE_PAGES: (frozenset({ops_.OP_ALLOC_PAGES}), False),
    ops_.OP_TOUCH: (frozenset({ops_.OP_SPAWN}), False), ops_.OP_EXIT: (frozenset({ops_.OP_SPAWN}), False),
}
_CACHE_KINDS = frozenset({ops_.OP_KMEM_CACHE_ALLOC, ops_.OP_KMEM_CACHE_FREE})
_NAME_KINDS = frozenset({ops_.OP_SPAWN, ops_.OP_READ_FILE, ops_.OP_WRITE_FILE})
_NO_INDEX = 0xffffffff                  # -1 in the 32-bit cache field
_STATUS_OF = {cls: code for code, cls in errors.EXCEPTIONS.items()}
_STATUS_OF[errors.OutOfMemory] = errors.ENOMEM
# how many trace records may wait in the core before the loop pauses for a drain
TRACE_LIMIT = 1 << 18


class Stream:
    """A sequence of allocator operations, built op by op, run by :meth:`Machine.run`.

    Every allocating method returns a handle (the op's index); the freeing
    methods take one, or None for NULL.  ``cpu=`` runs one op as that simulated
    CPU, ``caller=`` names its call site (a string, as for the per-call API).
    Caches are named: ``s.kmem_cache_alloc("task_struct", gfp, size=4248)``
    declares the cache the first time (a run creates it on the machine unless
    one of that name exists); a :class:`pyalloc.Cache` works as well.
    """

    trace_stats: dict[str, int]     # a stream read_trace() made: what it kept and skipped (trace.py)
    trace_expect: dict              # ... and what the trace implies is live at its end
    trace_bad: list                 # ... and the first bad lines it skipped: (line number, problem)
    carried: array                  # trace_chunks(): the handles in the previous stream of its first ops
    cache_first_op: dict            # a trace's: cache index -> its first op here (run() makes it there)

    def __init__(self) -> None:
        self._rec = array("Q")
        # run() checks every record once: records below _checked passed against tables of
        # _checked_sizes (callers, caches, names); _checked_cpu is their highest CPU and its op
        self._checked = 0
        self._checked_sizes = (0, 0, 0)
        self._checked_cpu = (-1, -1)
        self.callers: list = [None]             # index 0: no caller
        self._caller_index: dict[str, int] = {}
        self.caches: list[tuple] = []      # (name, size, align, flags, sheaf_capacity)
        self._cache_index: dict[str, int] = {}
        self.names: list[str] = []              # process names and file paths
        self._name_index: dict[str, int] = {}
        self.max_cpu = -1

    def __len__(self) -> int:
        return len(self._rec) >> 2

    def __repr__(self) -> str:
        return f"<pyalloc.Stream of {len(self)} operations>"

    # -- building ------------------------------------------------------------------

    def _add(self, kind: int, gfp: int, handle: int, arg: int, cache: int, cpu, caller) -> int:
        if cpu is None:
            cpu_v = ops_.OP_CPU_CURRENT
        elif isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu < ops_.OP_CPU_CURRENT:
            raise InvalidArgument(f"cpu must be an int from 0 to {ops_.OP_CPU_CURRENT - 1}, not {cpu!r}")
        else:
            cpu_v = cpu
            if cpu > self.max_cpu:
                self.max_cpu = cpu
        who = 0
        if caller is not None:
            who = self._caller_index.get(caller, -1)
            if who < 0:
                if not isinstance(caller, str):
                    raise InvalidArgument(f"caller must be a string, not {caller!r}")
                who = self._caller_index[caller] = len(self.callers)
                self.callers.append(caller)
        index = len(self._rec) >> 2
        self._rec.extend((kind | cpu_v << 16 | gfp << 32, who | (cache & 0xffffffff) << 32,
                          handle & MASK64, arg))
        if self._checked == index:
            # the builder's own checks are run()'s (check_records): a record made here
            # after a checked prefix extends it, so a built stream is never walked again
            self._checked = index + 1
            self._checked_sizes = (len(self.callers), len(self.caches), len(self.names))
            if cpu_v != ops_.OP_CPU_CURRENT and cpu_v > self._checked_cpu[0]:
                self._checked_cpu = (cpu_v, index)
        return index

    def _carry(self, rec: array, h: int) -> int:
        """A copy of record h of *rec*, a stream with this one's tables (trace_chunks: an
        allocation an earlier stream left live); its handle."""
        index = len(self._rec) >> 2
        words = rec[4 * h:4 * h + 4]
        self._rec.extend(words)
        cpu = (words[0] >> 16) & 0xffff
        if cpu != ops_.OP_CPU_CURRENT and cpu > self.max_cpu:
            self.max_cpu = cpu
        if self._checked == index:      # a checked record of the same tables stays checked
            self._checked = index + 1
            self._checked_sizes = (len(self.callers), len(self.caches), len(self.names))
            if cpu != ops_.OP_CPU_CURRENT and cpu > self._checked_cpu[0]:
                self._checked_cpu = (cpu, index)
        return index

    def _handle(self, h, kinds, what: str) -> int:
        if h is None:
            return -1
        if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h < len(self):
            raise InvalidArgument(f"{what}: {h!r} is not the handle of an earlier operation of this stream")
        if self.kind(h) not in kinds:
            raise InvalidArgument(f"{what}: handle {h} is a {KIND_NAMES.get(self.kind(h), '?')}, "
                                  "which allocated nothing this function frees")
        return h

    @staticmethod
    def _size(value, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{what} must be an int, not {type(value).__name__}")
        if not 0 <= value < INT63:
            raise InvalidArgument(f"{what} {value} is negative" if value < 0 else f"{what} {value} is too large")
        return value

    def kmalloc(self, size, gfp, cpu=None, caller=None) -> int:
        return self._add(ops_.OP_KMALLOC, gfpmod.parse(gfp), -1, self._size(size, "kmalloc: size"), -1, cpu, caller)

    def kzalloc(self, size, gfp, cpu=None, caller=None) -> int:
        return self.kmalloc(size, gfpmod.parse(gfp) | gfpmod.GFP_ZERO, cpu, caller)

    def kfree(self, h, cpu=None, caller=None) -> int:
        return self._add(ops_.OP_KFREE, 0, self._handle(h, _SLAB_OBJECT, "kfree"), 0, -1, cpu, caller)

    def krealloc(self, h, size, gfp, cpu=None, caller=None) -> int:
        return self._add(ops_.OP_KREALLOC, gfpmod.parse(gfp), self._handle(h, _SLAB_OBJECT, "krealloc"),
                         self._size(size, "krealloc: size"), -1, cpu, caller)

    def cache(self, name, size: int | None = None, align: int = 0, flags: int = 0, *,
              sheaf_capacity: int = 0) -> int:
        """The stream's index of cache *name* (declared here the first time with its object size and,
        as kmem_cache_create() takes them, align, flags and sheaf_capacity)."""
        if hasattr(name, "_id") and hasattr(name, "object_size"):       # a pyalloc.Cache
            name, size, align, flags = name.name, name.object_size, name.align, 0
        if not isinstance(name, str) or not name:
            raise InvalidArgument(f"a cache is named by a non-empty string or a Cache, not {name!r}")
        index = self._cache_index.get(name)
        if index is None:
            if size is None:
                raise InvalidArgument(f"cache {name!r} is new to this stream: give its object size")
            self._size(size, f"cache {name!r}: size")
            if isinstance(sheaf_capacity, bool) or not isinstance(sheaf_capacity, int):
                raise InvalidArgument(f"cache {name!r}: sheaf_capacity must be an int, not {sheaf_capacity!r}")
            index = self._cache_index[name] = len(self.caches)
            self.caches.append((name, size, align, flags, sheaf_capacity))
        return index

    def kmem_cache_alloc(self, cache, gfp, cpu=None, caller=None, size: int | None = None) -> int:
        return self._add(ops_.OP_KMEM_CACHE_ALLOC, gfpmod.parse(gfp), -1, 0, self.cache(cache, size), cpu, caller)

    def kmem_cache_zalloc(self, cache, gfp, cpu=None, caller=None, size: int | None = None) -> int:
        return self.kmem_cache_alloc(cache, gfpmod.parse(gfp) | gfpmod.GFP_ZERO, cpu, caller, size)

    def kmem_cache_free(self, cache, h, cpu=None, caller=None) -> int:
        return self._add(ops_.OP_KMEM_CACHE_FREE, 0, self._handle(h, _SLAB_OBJECT, "kmem_cache_free"), 0,
                         self.cache(cache), cpu, caller)

    def alloc_pages(self, gfp, order: int = 0, cpu=None) -> int:
        return self._add(ops_.OP_ALLOC_PAGES, gfpmod.parse(gfp), -1, self._size(order, "alloc_pages: order"), -1,
                         cpu, None)

    def free_pages(self, h, order: int = 0, cpu=None) -> int:
        if h is None:
            raise InvalidArgument("free_pages: a handle is required (there is no free_pages(NULL))")
        return self._add(ops_.OP_FREE_PAGES, 0, self._handle(h, {ops_.OP_ALLOC_PAGES}, "free_pages"),
                         self._size(order, "free_pages: order"), -1, cpu, None)

    def vmalloc(self, size, gfp="GFP_KERNEL", cpu=None, caller=None) -> int:
        return self._add(ops_.OP_VMALLOC, gfpmod.parse(gfp), -1, self._size(size, "vmalloc: size"), -1, cpu, caller)

    def vzalloc(self, size, gfp="GFP_KERNEL", cpu=None, caller=None) -> int:
        return self.vmalloc(size, gfpmod.parse(gfp) | gfpmod.GFP_ZERO, cpu, caller)

    def vfree(self, h, cpu=None, caller=None) -> int:
        return self._add(ops_.OP_VFREE, 0, self._handle(h, {ops_.OP_VMALLOC}, "vfree"), 0, -1, cpu, caller)

    # -- processes and files: run through the per-call API (see csrc/stream.c) -------

    def _name(self, name, what: str) -> int:
        from .reclaim import check_name
        check_name(name, what)
        index = self._name_index.get(name)
        if index is None:
            index = self._name_index[name] = len(self.names)
            self.names.append(name)
        return index

    def spawn(self, name: str) -> int:
        """A new process; the handle stands for its pid in touch() and exit()."""
        return self._add(ops_.OP_SPAWN, 0, -1, 0, self._name(name, "process name"), None, None)

    def _process(self, h, what: str) -> int:
        if h is None:
            raise InvalidArgument(f"{what}: a spawn's handle is required")
        return self._handle(h, {ops_.OP_SPAWN}, what)

    def touch(self, h, pages: int) -> int:
        return self._add(ops_.OP_TOUCH, 0, self._process(h, "touch"),
                         self._size(pages, "touch: pages"), -1, None, None)

    def exit(self, h) -> int:
        return self._add(ops_.OP_EXIT, 0, self._process(h, "exit"), 0, -1, None, None)

    def read_file(self, path: str, pages: int) -> int:
        return self._add(ops_.OP_READ_FILE, 0, -1, self._size(pages, "read_file: pages"),
                         self._name(path, "path"), None, None)

    def write_file(self, path: str, pages: int) -> int:
        return self._add(ops_.OP_WRITE_FILE, 0, -1, self._size(pages, "write_file: pages"),
                         self._name(path, "path"), None, None)

    def sync(self) -> int:
        return self._add(ops_.OP_SYNC, 0, -1, 0, -1, None, None)

    def drop_caches(self) -> int:
        return self._add(ops_.OP_DROP_CACHES, 0, -1, 0, -1, None, None)

    # -- reading ---------------------------------------------------------------------

    def kind(self, i: int) -> int:
        return self._rec[4 * i] & 0xffff

    def op(self, i: int) -> dict:
        """Op i as a dict: kind, cpu (None: current), gfp, caller, cache name, handle, arg."""
        kind, cpu, gfp, caller, cache, handle, arg = ops_.decode(self._rec, i)
        return {"kind": KIND_NAMES.get(kind, kind), "cpu": None if cpu == ops_.OP_CPU_CURRENT else cpu,
                "gfp": gfp, "caller": self.callers[caller] if caller < len(self.callers) else caller,
                "cache": self.caches[cache][0] if 0 <= cache < len(self.caches) else None,
                "handle": None if handle == -1 else handle, "arg": arg}

    @property
    def buffer(self) -> memoryview:
        """The raw records (struct pa_op), for tools that write streams themselves.

        Taking the buffer makes the next run() check every record again; records
        written through a buffer taken before a run are checked by the core as it
        goes (a documented error at that op, never a crash), not in advance.
        """
        self._checked = 0
        return memoryview(self._rec).cast("B")

    @property
    def _ops(self) -> array:
        # the records themselves, for tests and tools that edit them: as for buffer
        self._checked = 0
        return self._rec


def _bad_record(i: int, kind_name, what: str) -> InvalidArgument:
    exc = InvalidArgument(f"stream op {i} ({kind_name}): {what}" if kind_name else f"stream op {i}: {what}")
    exc.index = i
    return exc


def check_records(rec, lo: int, hi: int, n_callers: int, n_caches: int, n_names: int) -> tuple[int, int]:
    """Check records lo..hi-1 of a stream's buffer: every index a record holds must name
    something that exists (a handle an earlier op of the right kind, a cache, name or
    caller an entry of the stream's tables) and every field an op does not use must be
    empty (-1, caller 0 allowed).  Raises InvalidArgument naming the op and the field;
    returns the highest CPU the records name and its op ((-1, -1): none).

    Argument values (sizes, orders, masks) are not indices and stay the core's to judge.
    """
    top, top_i = -1, -1
    names, rules = KIND_NAMES, _HANDLE_RULES
    current = ops_.OP_CPU_CURRENT
    for i in range(lo, hi):
        w0, w1, h = rec[4 * i], rec[4 * i + 1], rec[4 * i + 2]
        kind = w0 & 0xffff
        name = names.get(kind)
        if name is None:
            raise _bad_record(i, None, f"kind {kind} is not an operation")
        cpu = (w0 >> 16) & 0xffff
        if cpu != current and cpu > top:
            top, top_i = cpu, i
        caller = w1 & 0xffffffff
        if caller >= n_callers:
            raise _bad_record(i, name, f"caller index {caller} is past the stream's {n_callers} callers")
        index = w1 >> 32
        if kind in _CACHE_KINDS:
            if index >= n_caches:
                raise _bad_record(i, name, f"cache index {index - (index >> 31 << 32)} is not one of "
                                           f"the stream's {n_caches} caches")
        elif kind in _NAME_KINDS:
            if index >= n_names:
                raise _bad_record(i, name, f"name index {index - (index >> 31 << 32)} is not one of "
                                           f"the stream's {n_names} names")
        elif index != _NO_INDEX:
            raise _bad_record(i, name, f"cache field {index - (index >> 31 << 32)} must be -1 (the op uses none)")
        rule = rules.get(kind)
        if h == MASK64:
            if rule is not None and not rule[1]:
                raise _bad_record(i, name, "handle -1: the op needs the handle of an earlier operation")
        elif rule is None:
            raise _bad_record(i, name, f"handle {h - (h >> 63 << 64)} must be -1 (the op frees nothing)")
        elif h >= i:
            raise _bad_record(i, name, f"handle {h - (h >> 63 << 64)} is not an earlier operation of this stream")
        elif rec[4 * h] & 0xffff not in rule[0]:
            raise _bad_record(i, name, f"handle {h} is a {names.get(rec[4 * h] & 0xffff)}, "
                                       "which allocated nothing this op frees")
    return top, top_i


class StreamResult:
    """What :meth:`Machine.run` recorded: per op an address (or pfn), or a status."""

    def __init__(self, stream: Stream) -> None:
        n = len(stream)
        self.stream = stream
        self.raw = array("q", bytes(8 * n))     # the core's results (struct pa_run.results)
        self.state = bytearray(n)               # PA_OBJ_* per op
        self.errors: list[tuple[int, PyallocError]] = []   # errors="record": (index, exception)
        self.pos = 0                            # the next op to run

    def __len__(self) -> int:
        return len(self.raw)

    def status(self, i: int) -> int:
        """0 for an op that did what it was asked, else its negative status."""
        v = self.raw[i]
        return 0 if v >= 0 or v == ZERO_SIZE_STATUS else v

    def __getitem__(self, i: int):
        """The address (pfn for alloc_pages) op i returned, the pid of a spawn, the pages a touch,
        read_file or write_file got or drop_caches dropped; None for NULL or an op that returns nothing."""
        v = self.raw[i]
        kind = self.stream.kind(i)
        if kind in _COUNTS:
            return v if v >= 0 else None         # a pid or a page count
        if kind not in _ALLOCATES:
            return None
        if v == ZERO_SIZE_STATUS:
            return ZERO_SIZE_PTR
        if v < 0:
            return None
        if kind == ops_.OP_ALLOC_PAGES:
            return v
        if kind == ops_.OP_VMALLOC:
            return VMALLOC_START + v
        return PAGE_OFFSET + v

    def addresses(self) -> list:
        return [self[i] for i in range(len(self.raw))]


class StreamAPI(MachineState):
    """Machine.run (mixed into Machine)."""

    def run(self, stream: Stream, errors: str = "raise", *, start: int = 0, end: int | None = None,
            result: StreamResult | None = None) -> StreamResult:
        """Execute *stream* in the core in one call; returns a :class:`StreamResult`.

        ``errors="raise"`` stops at the first bad op with the exception the
        per-call API raises (its ``index`` attribute names the op; the machine
        is as after the op before it); ``errors="record"`` notes it in
        ``result.errors`` and goes on.  ``start=``, ``end=`` and ``result=`` run a slice or resume,
        for instance after the caller dealt with an exception.

        Before the first op runs, and whatever *errors* says, InvalidArgument
        refuses: a result whose ``raw`` is not an ``array('q')`` or whose ``state``
        is not a ``bytearray`` of one entry per op; stream tables of the wrong
        types; and any record below *end* holding an index that names nothing (a
        handle that is not an earlier op of a kind the op can free, a cache,
        name or caller index past the stream's tables, a CPU past the machine's,
        an unknown kind, or a handle or cache in an op that takes none).  The
        message begins ``stream op N (kind):`` and names the field.  Records are
        checked once per stream; taking ``buffer`` makes the next run check again.
        """
        self._live()
        if not isinstance(stream, Stream):
            raise InvalidArgument(f"run() takes a pyalloc.Stream, not {type(stream).__name__}")
        if errors not in ("raise", "record"):
            raise InvalidArgument(f"errors must be 'raise' or 'record', not {errors!r}")
        n = self._stream_check_buffers(stream, result)
        if result is None:
            result = StreamResult(stream)
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= n:
            raise InvalidArgument(f"start must be an int from 0 to {n}, not {start!r}")
        if end is None:
            end = n
        elif isinstance(end, bool) or not isinstance(end, int) or not start <= end <= n:
            raise InvalidArgument(f"end must be an int from start ({start}) to {n}, not {end!r}")
        if stream.max_cpu >= self.cpus:
            raise InvalidArgument(f"the stream runs ops on CPU {stream.max_cpu}, this machine has {self.cpus}")
        self._stream_check_records(stream, end)
        # nothing has changed yet; from here on the machine learns the stream's names
        callers = array("q", [0] + [self._caller_id(name, None) for name in stream.callers[1:]])
        caches = self._stream_caches(stream, start)
        # a trace's caches are made right before their first ops (cache_first_op), so
        # where a run starts and stops changes nothing: the loop stops there to make one
        first_op = getattr(stream, "cache_first_op", None) or {}
        later = sorted(f for c, f in first_op.items() if type(c) is int and len(caches) <= c < len(stream.caches)
                       and type(f) is int and f < end)
        final: int = end
        stop = min([final] + later[:1])
        tracer = getattr(self, "_tracer", None)
        limit = TRACE_LIMIT if tracer is not None else 0
        core = self._core
        pos = start

        def run_on() -> int:
            nonlocal pos
            status, pos = core.stream_run(stream._rec, result.raw, result.state, callers, caches, pos, stop, limit)
            if tracer is not None:
                self._trace_drain()
            return status

        def run_op() -> int:
            # nobody to kill: op pos alone fails (or NOFAIL takes the reserves)
            nonlocal pos
            status, after = core.stream_run(stream._rec, result.raw, result.state, callers, caches,
                                            pos, pos + 1, 0)
            if status == 0:
                pos = after
                if tracer is not None:
                    self._trace_drain()
            return status

        while True:
            # the OOM killer's turn, as in the per-call path: kill, then run op pos again
            status, _ = oom.retry(self, run_on, lambda s: s == _EOOM, self._comm, self._pid, False, last=run_op)
            if status == 0:
                if pos >= stop:
                    if stop == final:
                        break
                    later.pop(0)
                    caches.append(self._stream_cache(*stream.caches[len(caches)])._id)
                    stop = min([final] + later[:1])
                continue            # paused so the trace could be drained, or past a helpless op
            result.pos = pos
            pos = self._stream_stop(stream, result, pos, status, errors)
        result.pos = final
        return result

    # -- checks before the first op ----------------------------------------------------

    @staticmethod
    def _stream_check_buffers(stream: Stream, result) -> int:
        """The stream's record buffer and tables and the result's arrays have the types and
        lengths the core reads (it checks the lengths again itself); returns the op count."""
        rec = stream._rec
        if type(rec) is not array or rec.typecode != "Q" or len(rec) % 4:
            raise InvalidArgument("run(): the stream's records are not an array('Q') of whole 4-word records")
        n = len(rec) >> 2
        callers, caches, names = stream.callers, stream.caches, stream.names
        if (type(callers) is not list or not callers or callers[0] is not None
                or not all(type(c) is str for c in callers[1:])):
            raise InvalidArgument("run(): the stream's caller table must be a list of None then strings")
        if type(caches) is not list or not all(
                type(c) is tuple and len(c) in (4, 5) and type(c[0]) is str
                and all(type(v) is int for v in c[1:]) for c in caches):
            raise InvalidArgument("run(): the stream's cache table must be a list of "
                                  "(name, size, align, flags[, sheaf_capacity])")
        if type(names) is not list or not all(type(v) is str for v in names):
            raise InvalidArgument("run(): the stream's name table must be a list of strings")
        if result is not None:
            if not isinstance(result, StreamResult) or result.stream is not stream:
                raise InvalidArgument("result= belongs to another stream")
            raw, state = result.raw, result.state
            if type(raw) is not array or raw.typecode != "q" or len(raw) != n:
                raise InvalidArgument(f"result.raw must be an array('q') of {n} entries, one per op")
            if type(state) is not bytearray or len(state) != n:
                raise InvalidArgument(f"result.state must be a bytearray of {n} entries, one per op")
            if type(result.errors) is not list:
                raise InvalidArgument("result.errors must be a list")
        return n

    def _stream_check_records(self, stream: Stream, end: int) -> None:
        """Every record below end is checked (see check_records), once per stream: the
        stream remembers how far its records passed, for tables of what size."""
        sizes = (len(stream.callers), len(stream.caches), len(stream.names))
        done, was = stream._checked, stream._checked_sizes
        if done > len(stream) or any(a < b for a, b in zip(sizes, was)):
            done = 0                    # the tables shrank (or the records did): start over
        top, top_i = stream._checked_cpu if done else (-1, -1)
        if end > done:
            more, more_i = check_records(stream._rec, done, end, *sizes)
            if more > top:
                top, top_i = more, more_i
            stream._checked, stream._checked_sizes, stream._checked_cpu = end, sizes, (top, top_i)
        if top >= self.cpus:
            raise _bad_record(top_i, KIND_NAMES[stream.kind(top_i)],
                              f"cpu {top} is not a CPU of this machine ({self.cpus} CPUs)")

    def _stream_caches(self, stream: Stream, start: int = 0) -> array:
        """The core ids of the stream's caches, created here when new; if one cannot be
        created, the ones this call created are destroyed again.  A cache whose first op
        (``stream.cache_first_op``, a trace's) is at or after *start* is left for run()
        to make there, and so are all after it."""
        made: list = []
        ids = array("q")
        first_op = getattr(stream, "cache_first_op", None) or {}
        try:
            for index, spec in enumerate(stream.caches):
                if first_op.get(index, -1) >= start:
                    break
                cache = self._stream_cache(*spec, made=made)
                ids.append(cache._id)
        except BaseException:
            for cache in reversed(made):
                self.kmem_cache_destroy(cache)
            raise
        return ids

    # -- slow paths ----------------------------------------------------------------------

    def _stream_cache(self, name, size, align, flags, sheaf_capacity=0, *, made: list | None = None):
        for cache in self._caches.values():
            if cache.name == name:
                return cache
        cache = self.kmem_cache_create(name, size, align, flags, sheaf_capacity=sheaf_capacity)
        if made is not None:
            made.append(cache)
        return cache

    def _stream_stop(self, stream: Stream, result: StreamResult, i: int, status: int, mode: str) -> int:
        """Op i stopped the core loop: act as the per-call API would, then record or raise.

        Returns where the loop resumes: the next op.  A status that asks Python to act and
        then retry the same op (the OOM killer's, once reclaim exists) returns i instead.
        """
        # a record edited behind run()'s back since it was checked is judged here
        check_records(stream._rec, i, i + 1, len(stream.callers), len(stream.caches), len(stream.names))
        try:
            if status == ops_.EDEFER:
                self._stream_per_call(stream, result, i)
            else:
                self._stream_failed(stream, result, i, status)
        except PyallocError as exc:
            if result.raw[i] == ops_.EDEFER:     # failed on the per-call path: note its status
                result.raw[i] = _STATUS_OF.get(type(exc), errors.EINVAL)
            if mode == "record":
                result.errors.append((i, exc))
                return i + 1
            new = type(exc)(f"stream op {i} ({stream.op(i)['kind']}): {exc}")
            new.index, new.result = i, result
            raise new from exc
        return i + 1

    def _stream_handle_error(self, stream: Stream, result: StreamResult, i: int, h: int, kinds,
                             null_ok: bool = True) -> None:
        what = KIND_NAMES.get(stream.kind(i), "op")
        if h == -1 and null_ok:
            return
        if not 0 <= h < i or stream.kind(h) not in kinds:
            raise InvalidArgument(f"{what}: handle {h} does not name an earlier allocation it can free")
        if result.state[h] == ops_.OBJ_FREED:
            raise errors.DoubleFree(f"{what}: the object of handle {h} was already freed")

    def _stream_failed(self, stream: Stream, result: StreamResult, i: int, status: int) -> None:
        kind, cpu, gfp, caller, cache, h, arg = ops_.decode(stream._rec, i)
        if caller >= len(stream.callers) or (cpu != ops_.OP_CPU_CURRENT and cpu >= self.cpus):
            raise InvalidArgument(f"op {i}: bad caller index or CPU")
        if kind in (ops_.OP_KFREE, ops_.OP_KREALLOC, ops_.OP_KMEM_CACHE_FREE):
            self._stream_handle_error(stream, result, i, h, _SLAB_OBJECT)
        elif kind == ops_.OP_FREE_PAGES:
            self._stream_handle_error(stream, result, i, h, {ops_.OP_ALLOC_PAGES}, null_ok=False)
            if result.raw[h] < 0:
                raise InvalidArgument(f"free_pages: the allocation of handle {h} failed: there is nothing to free")
        cache_obj = self._stream_cache(*stream.caches[cache]) if 0 <= cache < len(stream.caches) else None
        if kind in (ops_.OP_KMEM_CACHE_ALLOC, ops_.OP_KMEM_CACHE_FREE) and cache_obj is None:
            raise InvalidArgument(f"op {i}: cache index {cache} is not in the stream's cache table")
        addr = result[h] if h >= 0 else None
        if kind == ops_.OP_KMALLOC or (kind == ops_.OP_KREALLOC and status in (errors.ENOMEM, errors.E2BIG)):
            self._kmalloc_failed(status, arg, gfp)
        elif kind == ops_.OP_KMEM_CACHE_ALLOC:
            assert cache_obj is not None    # refused above
            self._cache_alloc_failed(status, cache_obj, gfp)
        elif kind == ops_.OP_KREALLOC and status == errors.EINVAL:
            raise InvalidArgument(f"krealloc: size {arg} is negative" if arg < 0 else
                                  f"krealloc: handle {h} does not hold a slab object")
        elif kind in (ops_.OP_KFREE, ops_.OP_KREALLOC):
            self._free_failed(status, addr, None)
        elif kind == ops_.OP_KMEM_CACHE_FREE:
            self._free_failed(status, addr, cache_obj)
        elif kind == ops_.OP_ALLOC_PAGES and gfp & gfpmod.GFP_NOFAIL:
            self._alloc_nofail_failed(status, gfp, arg)
        elif kind == ops_.OP_ALLOC_PAGES:
            self._alloc_failed_slow(status, gfp, arg)
        elif kind == ops_.OP_FREE_PAGES:
            self._free_failed_slow(status, result.raw[h], arg)
        else:
            errors.raise_for(status, f"op {i}")
        # a NULL allocation is no error: it stays recorded as its status

    def _stream_per_call(self, stream: Stream, result: StreamResult, i: int) -> None:
        """Do op i through the per-call API (vmalloc, warned-about masks, future op kinds)."""
        kind, cpu, gfp, caller, cache, h, arg = ops_.decode(stream._rec, i)
        cpu = None if cpu == ops_.OP_CPU_CURRENT else cpu
        name = stream.callers[caller] if caller < len(stream.callers) else None
        raw, state = result.raw, result.state
        raw[i] = ops_.EDEFER
        if kind in (ops_.OP_KMALLOC, ops_.OP_KREALLOC, ops_.OP_KMEM_CACHE_ALLOC):
            if kind == ops_.OP_KMALLOC:
                addr = self.kmalloc(arg, gfp, cpu, name)
            elif kind == ops_.OP_KMEM_CACHE_ALLOC:
                addr = self.kmem_cache_alloc(self._stream_cache(*stream.caches[cache]), gfp, cpu, name)
            else:
                # NULL or ZERO_SIZE_PTR (a failed or empty allocation) is krealloc's own case
                self._stream_handle_error(stream, result, i, h, _SLAB_OBJECT)
                addr = self.krealloc(result[h] if h >= 0 else None, arg, gfp, cpu, name)
                if addr is not None and h >= 0 and state[h] == ops_.OBJ_LIVE:
                    state[h] = ops_.OBJ_FREED
            if addr is None:
                raw[i] = errors.ENOMEM
            elif addr == ZERO_SIZE_PTR:
                raw[i] = ZERO_SIZE_STATUS
            else:
                raw[i], state[i] = addr - PAGE_OFFSET, ops_.OBJ_LIVE
        elif kind == ops_.OP_ALLOC_PAGES:
            with self._as_cpu(cpu):
                pfn = self.alloc_pages(gfp, arg)
            raw[i] = errors.ENOMEM if pfn is None else pfn
            if pfn is not None:
                state[i] = ops_.OBJ_LIVE
        elif kind == ops_.OP_VMALLOC:
            with self._as_cpu(cpu):
                addr = self.vmalloc(arg, gfp, caller=name)
            raw[i] = errors.ENOMEM if addr is None else addr - VMALLOC_START
            if addr is not None:
                state[i] = ops_.OBJ_LIVE
        elif kind == ops_.OP_VFREE:
            self._stream_handle_error(stream, result, i, h, {ops_.OP_VMALLOC})
            if h >= 0 and state[h] == ops_.OBJ_LIVE:
                with self._as_cpu(cpu):
                    self.vfree(VMALLOC_START + raw[h])
                state[h] = ops_.OBJ_FREED
            raw[i] = 0
        elif kind in _PROCESS_OPS:
            raw[i] = self._stream_process_op(stream, result, i, kind, h, arg, cache)
        else:
            raise InvalidArgument(f"op {i}: unknown operation kind {kind}")

    def _stream_process_op(self, stream: Stream, result: StreamResult, i: int, kind: int, h: int, arg: int,
                           name: int) -> int:
        state = result.state
        if kind == ops_.OP_SPAWN:
            pid = self.spawn(stream.names[name])
            state[i] = ops_.OBJ_LIVE
            return pid
        if kind in (ops_.OP_TOUCH, ops_.OP_EXIT):
            self._stream_handle_error(stream, result, i, h, {ops_.OP_SPAWN}, null_ok=False)
            pid = result.raw[h]
            if state[h] != ops_.OBJ_LIVE or pid not in self._procs:
                state[h] = ops_.OBJ_FREED           # the OOM killer took it
                raise InvalidArgument(f"{KIND_NAMES[kind]}: the process of op {h} is gone")
            if kind == ops_.OP_EXIT:
                self.exit(pid)
                state[h] = ops_.OBJ_FREED
                return 0
            return self.touch(pid, arg)
        if kind == ops_.OP_READ_FILE:
            return self.read_file(stream.names[name], arg)
        if kind == ops_.OP_WRITE_FILE:
            return self.write_file(stream.names[name], arg)
        if kind == ops_.OP_SYNC:
            self.sync()
            return 0
        return self.drop_caches()

