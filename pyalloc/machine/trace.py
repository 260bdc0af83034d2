"""The kmem tracepoints in ftrace text: written by a machine, read back as a stream.

A new event: its number in pyalloc/_abi.py, the hook where it happens in csrc/trace.c <->
model/trace.py, and its text in :func:`format_records` below (then the reader, if replays need it).

Out: ``Machine(trace=path_or_file)`` writes kmalloc, kmem_cache_alloc, kfree,
kmem_cache_free, mm_page_alloc and mm_page_free exactly as Linux 6.18's
tracefs prints them (include/trace/events/kmem.h), with
unhashed pointers and the simulated clock.  The cores record binary events
(csrc/trace.c, model/trace.py) and format them in bulk when the buffer is
drained: after each ``run()``, on ``trace_flush()`` and on ``close()``.

In: :func:`read_trace` parses a capture (6.18, and the 3.x/4.x spellings:
``GFP_KERNEL|GFP_ZERO``, hex call sites, ``ptr=(null)``, no ``name=``; plain,
``.gz`` or ``.xz``) into a :class:`pyalloc.Stream`: real pointers become handles,
named caches are declared as 6.18 creates them when the catalogue
(pyalloc/data/slab_caches.json) knows the name (object size, align, flags,
sheaf_capacity), else with the object size the trace shows, and frees of
objects allocated before the capture began are counted, not run.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import re
import zlib

from .. import gfp as gfpmod
from ..errors import GFPError, InvalidArgument
from ..data import slab_cache_args
from .slab import SLAB
from .._abi import (
    OP_CPU_CURRENT, PAGE_OFFSET, VMALLOC_END, VMALLOC_START, VMEMMAP_START, TRACE_NIL as NIL,
    TRACE_EVENT_NAMES as EVENT_NAMES, TRACE_KMALLOC as KMALLOC, TRACE_KMEM_CACHE_ALLOC as KMEM_CACHE_ALLOC,
    TRACE_KFREE as KFREE, TRACE_KMEM_CACHE_FREE as KMEM_CACHE_FREE, TRACE_MM_PAGE_ALLOC as MM_PAGE_ALLOC,
    TRACE_MM_PAGE_FREE as MM_PAGE_FREE,
)
from .stream import Stream
from .state import MachineState

VMALLOC_END_INCL = VMALLOC_END - 1      # the kernel's VMALLOC_END is the last byte

HEADER = """# tracer: nop
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


# -- writing --------------------------------------------------------------------------

def _gfp_text(flags: int, table) -> str:
    return gfpmod.format_table(flags, table) if flags else "none"


def format_records(records, comm: str, pid: int, table, callers: dict, caches: dict) -> str:
    """The ftrace lines of trace records (the model's twin of trace.c's pa_trace_take)."""
    out = []
    prefix_cache: dict = {}
    for kind, cpu, gfp, ticks, ptr, a, b, caller, extra in records:
        prefix = prefix_cache.get(cpu)
        if prefix is None:
            prefix = prefix_cache[cpu] = f"{comm:>16}-{pid:<7} [{cpu:03d}] ..... "
        head = f"{prefix}{ticks // 1000000:5d}.{ticks % 1000000:06d}: {EVENT_NAMES[kind]}: "
        if kind <= KMEM_CACHE_FREE:
            site = callers.get(caller) or f"0x{caller:x}"
            text = f"call_site={site} ptr={ptr:016x}"
            if kind in (KMEM_CACHE_ALLOC, KMEM_CACHE_FREE):
                text += f" name={caches.get(extra & 0x7fffffff, '(unknown)')}"
            if kind in (KMALLOC, KMEM_CACHE_ALLOC):
                accounted = gfp & gfpmod.GFP_ACCOUNT if kind == KMALLOC else extra & 0x80000000
                text += (f" bytes_req={a} bytes_alloc={b} gfp_flags={_gfp_text(gfp, table)} node=-1 "
                         f"accounted={'true' if accounted else 'false'}")
        else:
            none = ptr == NIL
            text = f"page={0 if none else VMEMMAP_START + ptr * 64:016x} pfn=0x{0 if none else ptr:x} order={a}"
            if kind == MM_PAGE_ALLOC:
                text += f" migratetype={b} gfp_flags={_gfp_text(gfp, table)}"
        out.append(head + text + "\n")
    return "".join(out)


class _Tracer:
    __slots__ = ("file", "own", "callers_synced", "caches_synced", "lines")

    def __init__(self, file, own: bool) -> None:
        self.file, self.own = file, own
        self.callers_synced = 0
        self.caches_synced: set = set()
        self.lines = 0


class TraceAPI(MachineState):
    """Machine(trace=...) and the trace buffer (mixed into Machine)."""

    _tracer = None

    def _trace_open(self, trace) -> None:
        if isinstance(trace, (str, os.PathLike)):
            file, own = open(trace, "w", encoding="utf-8"), True
        elif hasattr(trace, "write"):
            file, own = trace, False
        else:
            raise InvalidArgument(f"trace must be a path or a writable text file, not {trace!r}")
        rc = self._core.trace_start(self._comm, self._pid, gfpmod.PRINT_TABLE)
        if rc:
            if own:
                file.close()
            raise InvalidArgument("trace: this machine is already tracing")
        self._tracer = _Tracer(file, own)
        self._track_callers = True          # call_site needs the Python caller of each call
        file.write(HEADER)

    def trace_flush(self) -> None:
        """Write every pending trace event to the trace file."""
        self._live()
        if self._tracer is not None:
            self._trace_drain()
            self._tracer.file.flush()

    def _trace_drain(self) -> None:
        t, core = self._tracer, self._core
        assert t is not None        # called only while tracing
        names = self._caller_names
        for ident in range(t.callers_synced, len(names)):
            core.trace_name(0, ident + 1, names[ident])
        t.callers_synced = len(names)
        for cid, cache in self._caches.items():
            if cid not in t.caches_synced:
                core.trace_name(1, cid, cache.name)
                t.caches_synced.add(cid)
        write = t.file.write
        for text in core.trace_take():
            write(text)

    def _trace_null_free(self, addr, caller_id: int) -> None:
        """kfree(NULL) and kfree(ZERO_SIZE_PTR) never reach the core, but the kernel traces them."""
        self._core.trace_kfree(0 if addr is None else addr, caller_id)

    def _trace_emit(self, event: str, fields: str) -> None:
        """One event the Python layer fires itself (vmalloc), in order after the core's pending ones."""
        self._trace_drain()
        vm = self._core.vm_info()
        ticks = vm["ticks"]
        assert self._tracer is not None     # called only while tracing
        self._tracer.file.write(f"{self._comm:>16}-{self._pid:<7} [{vm['cpu']:03d}] ..... "
                                f"{ticks // 1000000:5d}.{ticks % 1000000:06d}: {event}: {fields}\n")

    def _trace_vmap_alloc(self, start, size: int, align: int) -> None:
        """alloc_vmap_area; a failure prints the error value (-ENOENT) as the kernel's unsigned long."""
        if self._tracer is not None:
            va = (1 << 64) - 2 if start is None else start
            self._trace_emit("alloc_vmap_area", f"va_start: {va} size={size} align={align} "
                             f"vstart={VMALLOC_START:#x} vend={VMALLOC_END_INCL:#x} failed={int(start is None)}")

    def _trace_vmap_free(self, start: int, size: int) -> None:
        """free_vmap_area_noflush, then the purge that pyalloc's vfree always does at once."""
        if self._tracer is not None:
            nr = size >> 12
            self._trace_emit("free_vmap_area_noflush",
                             f"va_start={start:#x} nr_lazy={nr} nr_lazy_max={self.cpus.bit_length() * 8192}")
            self._trace_emit("purge_vmap_area_lazy", f"start={start:#x} end={start + size:#x} num_purged=1")

    def _trace_close(self) -> None:
        t = self._tracer
        if t is None:
            return
        try:
            self._trace_drain()
        finally:
            self._tracer = None
            self._core.trace_stop()
            if t.own:
                t.file.close()
            else:
                t.file.flush()


# -- reading --------------------------------------------------------------------------

# "  <task>-<pid> [(<tgid>)] [<cpu>] [<flags>] <secs>.<usecs>: <event>: <fields>"
# The task name may hold spaces, dashes and digits, so a line is recognised by what
# follows it: the leftmost "-<pid> ... <event>:" after at least one character.  Found
# with search() rather than a lazy ".+?" in front, each character is looked at a bounded
# number of times, so a line costs linear time whatever it holds.
_HEAD = re.compile(r"-\d+\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:\S{4,5}\s+)?(\d+\.\d+):\s+(\w+):")
PROGRESS_LINES = 1 << 16
# a key starts where a run of word characters starts: without the look-behind a long run
# with no "=" after it would be tried again from each of its characters (quadratic)
_FIELD = re.compile(r"(?<!\w)(\w+)=(\S*)")
# The longest line read, in characters.  The kernel's kmem lines are a few hundred; the
# limit holds while reading, so a longer line (a one-line .gz bomb) is never held whole.
MAX_LINE = 1 << 16
# The most digits a number field may have (a 128-bit value has 39 in decimal): int() of a
# longer one is slow, and over 4300 digits it raises a ValueError of its own.
MAX_DIGITS = 40
_NULLS = frozenset({"0000000000000000", "(null)", "0", "00000000", "0x0"})
# the page-free events of 3.x were mm_page_free_direct and mm_pagevec_free
PAGE_FREE_EVENTS = frozenset({"mm_page_free", "mm_page_free_batched", "mm_page_free_direct", "mm_pagevec_free"})
_KNOWN = frozenset({"kmalloc", "kmalloc_node", "kmem_cache_alloc", "kmem_cache_alloc_node", "kfree",
                    "kmem_cache_free", "mm_page_alloc"}) | PAGE_FREE_EVENTS


class TraceFormatError(InvalidArgument):
    """A line of a trace file that is not an ftrace event line."""


# The most memory an .xz decoder may take.  xz -9 needs 65 MiB; a file can ask for a 1.5 GiB
# dictionary, which the decoder fills as it goes however little is read at a time.
XZ_MEMLIMIT = 128 << 20


class _XZReader(io.RawIOBase):
    """The bytes of an .xz file (one stream or several), decoded within XZ_MEMLIMIT
    (lzma.open cannot be given a limit)."""

    def __init__(self, path) -> None:
        super().__init__()
        self._f = open(path, "rb")
        self._d = lzma.LZMADecompressor(memlimit=XZ_MEMLIMIT)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = len(b)
        while True:
            d = self._d
            if d.eof:
                raw = d.unused_data or self._f.read(1 << 16)
                if not raw:
                    return 0
                self._d = lzma.LZMADecompressor(memlimit=XZ_MEMLIMIT)
                try:
                    data = self._d.decompress(raw, n)
                except lzma.LZMAError:
                    return 0            # padding or other trailing bytes after the last stream
            elif d.needs_input:
                raw = self._f.read(1 << 16)
                if not raw:
                    raise EOFError("the .xz file ends in the middle of a stream")
                data = d.decompress(raw, n)
            else:
                data = d.decompress(b"", n)
            if data:
                b[:len(data)] = data
                return len(data)

    def close(self) -> None:
        self._f.close()
        super().close()


def open_text(path):
    """A text file from a path, reading .gz and .xz (by name or by magic) transparently."""
    if hasattr(path, "read"):
        return path
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic[:2] == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    if magic == b"\xfd7zXZ\x00":
        return io.TextIOWrapper(io.BufferedReader(_XZReader(path)), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _lines(f):
    """The lines of text file f, each None if longer than MAX_LINE characters.  A line is
    read at most MAX_LINE + 1 characters at a time, so a long one is never held whole."""
    readline = f.readline
    while True:
        line = readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE and line[-1] != "\n":
            yield None              # first: a caller that stops here reads no further
            while True:             # the rest of it, piece by piece
                more = readline(MAX_LINE)
                if not more or more[-1] == "\n":
                    break
            continue
        yield line


def _read_lines(f):
    """_lines(f), with a damaged .gz or .xz file as a TraceFormatError (it cannot be skipped)."""
    lineno = 0
    try:
        for lineno, line in enumerate(_lines(f), 1):
            yield line
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise TraceFormatError(f"line {lineno + 1}: the compressed file is damaged ({exc})") from None


def parse_events(path, skip_bad: bool = False, stats: dict | None = None, progress=None):
    """Yield (lineno, event, cpu, timestamp_text, fields) for each event line of a trace.

    A line longer than MAX_LINE characters, one that is not an event line, and one whose
    CPU field has more than MAX_DIGITS digits raise :class:`TraceFormatError`, or with
    skip_bad are skipped and counted in stats["bad_lines"].  A damaged .gz or .xz file (or
    an .xz one that needs more than XZ_MEMLIMIT bytes to decode) raises it always.
    progress, if given, is called with a count of lines every PROGRESS_LINES lines.
    """
    if stats is None:
        stats = {}
    stats.setdefault("lines", 0)
    stats.setdefault("bad_lines", 0)
    f = open_text(path)
    search, findall = _HEAD.search, _FIELD.findall
    lineno = 0
    try:
        for lineno, line in enumerate(_read_lines(f), 1):
            if progress is not None and not lineno % PROGRESS_LINES:
                progress(PROGRESS_LINES)
            if line is None:
                problem = f"longer than {MAX_LINE} characters"
            elif line.startswith("#"):
                continue
            else:
                m = search(line, 1)
                if m is not None and len(m.group(1)) <= MAX_DIGITS:
                    cpu, ts, event = m.groups()
                    yield lineno, event, int(cpu), ts, dict(findall(line, m.end()))
                    continue
                if not line.strip():
                    continue
                if m is None:
                    problem = f"not an ftrace event line: {line.rstrip()[:120]!r}"
                else:
                    problem = f"the CPU field has more than {MAX_DIGITS} digits"
            if skip_bad:
                stats["bad_lines"] += 1
                continue
            stats["lines"] = lineno
            raise TraceFormatError(f"line {lineno}: {problem}")
    finally:
        stats["lines"] = lineno
        if f is not path:
            f.close()


_GFP_CACHE: dict[str, int] = {}


def parse_gfp(text: str) -> int:
    """A gfp_flags= value, in any kernel's spelling; unknown names count as no bits."""
    value = _GFP_CACHE.get(text)
    if value is not None:
        return value
    try:
        value = gfpmod.parse(text)
    except GFPError:
        value = 0
        for part in text.split("|"):
            part = part.strip()
            for name in (part, "__" + part):
                if name in gfpmod.NAMES:
                    value |= gfpmod.NAMES[name]
                    break
            else:
                try:
                    value |= _int(part) if part.lower().startswith("0x") else 0
                except ValueError:
                    pass
        if value & 0xf and not gfpmod._ZONE_OK[value & 0xf]:
            value &= ~0xf & 0xffffffff
    # one trace has a handful of spellings; a hostile one may have a new one per line
    if len(_GFP_CACHE) < 4096 and len(text) <= 512:
        _GFP_CACHE[text] = value
    return value


def _digits(text: str) -> str:
    if len(text) > MAX_DIGITS:
        raise ValueError(f"a number of more than {MAX_DIGITS} digits ({text[:20]}...)")
    return text


def _int(text: str) -> int:
    """A decimal or 0x-prefixed hex field."""
    return int(_digits(text), 16) if text[:2].lower() == "0x" else int(_digits(text))


def parse_ptr(text: str):
    """A pointer field: None for NULL, else an int key (hashed or not)."""
    if text in _NULLS:
        return None
    return int(_digits(text), 16)


def _cache_shape(req: int, alloc: int, gfp: int, accounted: bool) -> tuple[int, int]:
    """(align, flags) for a cache the trace shows: the smallest alignment that rounds the
    object size up to the size the trace allocates, and SLAB_ACCOUNT when the allocation was
    accounted without __GFP_ACCOUNT (the cache's own flag)."""
    align = 0
    for a in (16, 32, 64, 128, 256, 512, 1024, 2048, 4096):
        if -(-req // 8) * 8 == alloc:
            break
        if -(-req // a) * a == alloc:
            align = a
            break
    flags = SLAB.ACCOUNT if accounted and not gfp & gfpmod.GFP_ACCOUNT else 0
    return align, int(flags)


def _trace_cache(s: Stream, name: str, req: int, alloc: int, gfp: int, accounted: bool) -> int:
    """Declare a cache the trace names: with the align, flags and sheaf_capacity 6.18 creates it
    with when the catalogue (pyalloc/data/slab_caches.json) knows the name, else shaped from the
    event.  The object size is the one the capture shows: the captured kernel's own (task_struct's
    depends on the CPU's FPU state size)."""
    known = slab_cache_args(name)
    if known is not None:
        size, align, flags, sheaf_capacity = known
        return s.cache(name, req if req > 0 else size, align, flags, sheaf_capacity=sheaf_capacity)
    return s.cache(name, max(req, 1), *_cache_shape(req, alloc, gfp, accounted))


def read_trace(path, skip_bad: bool = False, progress=None) -> Stream:
    """Parse a kmem ftrace capture into a Stream (see the module's docstring).

    The stream's ``trace_stats`` dict counts lines, events, ignored events,
    frees of objects allocated before the capture (``unmatched_frees``), the
    slab allocator's own page events (``slab_pages``), and skipped bad lines.
    A malformed line raises :class:`TraceFormatError` naming its number, unless
    ``skip_bad``.  ``progress`` is called with line counts as parsing goes on.
    """
    s = Stream()
    stats = {"events": 0, "ignored_events": 0, "unmatched_frees": 0, "slab_pages": 0, "cpus": 1}
    objects: dict[int, tuple[int, int]] = {}      # trace pointer -> (handle, stream cache or -1)
    pages: dict[int, int] = {}                    # pfn -> handle
    internal: set[int] = set()                    # pfns the slab allocator took for itself
    pending: list[tuple] = []                     # page allocations not yet known to be the slab's
    max_cpu = 0

    def flush_pages(slab_ptr, slab_cpu=-1) -> None:
        # The page allocation right before a slab allocation (with the failed attempts
        # just before it) was the slab allocator's own: a new slab, or kmalloc_large.
        # It ran on the same CPU, and with unhashed pointers the object lies inside the block.
        if not pending:
            return
        first = len(pending)
        last = pending[-1]
        if slab_ptr is not None and last[0] == slab_cpu:
            if slab_ptr < PAGE_OFFSET or (last[1] is not None and
                                          last[1] <= (slab_ptr - PAGE_OFFSET) >> 12 < last[1] + (1 << last[2])):
                first = len(pending) - 1
                while first > 0 and pending[first - 1][1] is None:
                    first -= 1
        for k, (cpu, pfn, order, gfp) in enumerate(pending):
            if k >= first:
                stats["slab_pages"] += 1
                if pfn is not None:
                    internal.add(pfn)
            else:
                h = s.alloc_pages(gfp, order, cpu=cpu)
                if pfn is not None:
                    pages[pfn] = h
        pending.clear()

    for lineno, event, cpu, _ts, f in parse_events(path, skip_bad, stats, progress):
        if event not in _KNOWN:
            stats["ignored_events"] += 1
            continue
        stats["events"] += 1
        try:
            if cpu >= OP_CPU_CURRENT:
                raise ValueError(f"CPU {cpu} is past the last CPU a stream can name")
            max_cpu = max(max_cpu, cpu)
            if event == "mm_page_alloc":
                pfn = _int(f["pfn"])
                page = f.get("page", "")
                ok = page not in _NULLS and not (pfn == 0 and page in ("", "(null)"))
                pending.append((cpu, pfn if ok else None, _int(f["order"]), parse_gfp(f.get("gfp_flags", "none"))))
                continue
            site = f.get("call_site")
            if event.startswith(("kmalloc", "kmem_cache_alloc")):
                ptr = parse_ptr(f["ptr"])
                flush_pages(ptr if ptr is not None else 0, cpu)
                gfp = parse_gfp(f.get("gfp_flags", "none"))
                req = _int(f["bytes_req"])
                if event.startswith("kmalloc"):
                    h, cache = s.kmalloc(req, gfp, cpu=cpu, caller=site), -1
                else:
                    name = f.get("name") or f"trace-{req}"
                    cache = s._cache_index.get(name, -1)
                    if cache < 0:
                        cache = _trace_cache(s, name, req, _int(f["bytes_alloc"]), gfp, f.get("accounted") == "true")
                    h = s.kmem_cache_alloc(name, gfp, cpu=cpu, caller=site)
                if ptr is not None:
                    objects[ptr] = (h, cache)
                continue
            flush_pages(None)
            if event in ("kfree", "kmem_cache_free"):
                ptr = parse_ptr(f["ptr"])
                if ptr is None:
                    if event == "kfree":
                        s.kfree(None, cpu=cpu, caller=site)
                    continue
                found = objects.pop(ptr, None)
                if found is None:
                    stats["unmatched_frees"] += 1
                    continue
                h, cache = found
                if event == "kfree" or cache < 0:
                    s.kfree(h, cpu=cpu, caller=site)
                else:
                    s.kmem_cache_free(s.caches[cache][0], h, cpu=cpu, caller=site)
            else:       # PAGE_FREE_EVENTS
                pfn = _int(f["pfn"])
                freed = pages.pop(pfn, None)
                if freed is not None:
                    s.free_pages(freed, _int(f.get("order", "0")), cpu=cpu)
                elif pfn in internal:
                    internal.discard(pfn)
                else:
                    stats["unmatched_frees"] += 1
        except (KeyError, ValueError) as exc:
            if skip_bad:
                stats["bad_lines"] += 1
                continue
            what = f"no valid {exc} field" if isinstance(exc, KeyError) else str(exc)
            raise TraceFormatError(f"line {lineno}: {event}: {what}") from None
    flush_pages(None)
    stats["cpus"] = max_cpu + 1
    s.trace_stats = stats
    return s
