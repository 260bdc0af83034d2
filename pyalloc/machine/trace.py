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
import queue
import re
import sys
import threading
import zlib
from array import array

from .. import _abi, gfp as gfpmod
from ..model import trace_parse as _tparse
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
# "# entries-in-buffer/entries-written: 225346/225346   #P:2": the CPUs of the traced machine
_HEADER_CPUS = re.compile(r"#P:(\d{1,5})\b")
BAD_EXAMPLES = 10                   # bad lines a caller is shown (the rest are counted)
# a key starts where a run of word characters starts: without the look-behind a long run
# with no "=" after it would be tried again from each of its characters (quadratic)
# %p of NULL printed "(null)" right-aligned in the pointer's width before 4.x ("ptr=  (null)"
# on 32-bit, ten spaces on 64-bit): the spaces go, the value is "(null)".  Each run of
# spaces is looked at once, from the "=" before it, so a line still costs linear time.
_FIELD = re.compile(r"(?<!\w)(\w+)=(?: +(?=\(null\)))?(\S*)")
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
    """The bytes of an .xz stream (one stream or several), decoded within XZ_MEMLIMIT
    (lzma.open cannot be given a limit), read from the binary file object *raw*."""

    def __init__(self, raw) -> None:
        super().__init__()
        self._f = raw
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


class _Rejoined(io.RawIOBase):
    """A binary stream whose first bytes were read already (to sniff the format), put back
    in front of the rest: a pipe cannot be reopened or seeked."""

    def __init__(self, head: bytes, raw, own: bool = False) -> None:
        super().__init__()
        self._head, self._f, self._own = head, raw, own
        self.read_bytes = len(head)         # of the file, for a progress bar by bytes

    def close_source(self) -> None:
        """Close the file if read_trace opened it (a caller's file or standard input stays open)."""
        if self._own:
            self._f.close()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._f.read(len(b))
        if not data:
            return 0
        b[:len(data)] = data
        self.read_bytes += len(data)
        return len(data)


def _read_magic(raw, n: int = 6) -> bytes:
    """The first n bytes of raw (fewer only at its end): a pipe's read may return less."""
    head = b""
    while len(head) < n:
        more = raw.read(n - len(head))
        if not more:
            break
        head += more
    return head


def _binary_source(path):
    """(binary file object, whether this call opened it) for a path, "-", or a file object."""
    if isinstance(path, (str, os.PathLike)):
        if os.fspath(path) == "-":
            return sys.stdin.buffer, False
        return open(path, "rb"), True
    if isinstance(path, io.TextIOBase):
        return None, False
    try:
        probe = path.read(0)
    except (AttributeError, TypeError, OSError) as exc:
        raise InvalidArgument(f"trace must be a path, '-' or a readable file, not {path!r}") from exc
    if isinstance(probe, str):
        return None, False
    return path, False


def open_binary(path):
    """(decompressed binary stream, its source) of a trace: a path, "-" (standard input), or a
    binary file object; the source counts the bytes read from the file and closes it if this
    call opened it (``close_source()``).

    Plain, .gz and .xz are told apart by their magic bytes, which are read from the stream
    itself and put back in front of it, so a pipe (``xz -dc t.xz | pyalloc replay -``) loses
    nothing; everything after is read in chunks.  A text file object is encoded back.
    """
    if isinstance(path, io.TextIOBase) or (not isinstance(path, (str, os.PathLike)) and _is_text(path)):
        chained = _Rejoined(b"", _TextAsBytes(path))
        return io.BufferedReader(chained), chained
    raw, own = _binary_source(path)
    try:
        start = raw.tell() if _seekable(raw) else None
        magic = _read_magic(raw)
        chained = _Rejoined(magic, raw, own)
        if magic[:2] == b"\x1f\x8b":
            binary = gzip.GzipFile(fileobj=io.BufferedReader(chained), mode="rb")
        elif magic == b"\xfd7zXZ\x00":
            binary = io.BufferedReader(_XZReader(chained))
        elif start is not None:
            # plain text from a file: read straight from it, without a copy through Python
            raw.seek(start)
            return raw, _Positioned(raw, start, own)
        else:
            binary = io.BufferedReader(chained)
    except BaseException:
        if own:
            raw.close()
        raise
    return binary, chained


def _seekable(raw) -> bool:
    try:
        return bool(raw.seekable())
    except (AttributeError, OSError, ValueError):
        return False


class _Positioned:
    """The source of a plain file read directly: its bytes read are how far it is."""

    def __init__(self, raw, start: int, own: bool) -> None:
        self._f, self._start, self._own = raw, start, own

    @property
    def read_bytes(self) -> int:
        return self._f.tell() - self._start

    def close_source(self) -> None:
        if self._own:
            self._f.close()


def _is_text(f) -> bool:
    try:
        return isinstance(f.read(0), str)
    except (AttributeError, TypeError, OSError) as exc:
        raise InvalidArgument(f"trace must be a path, '-' or a readable file, not {f!r}") from exc


class _TextAsBytes:
    """A text file object read as UTF-8 bytes."""

    def __init__(self, f) -> None:
        self._f = f

    def read(self, n: int) -> bytes:
        return self._f.read(max(1, n // 4)).encode("utf-8", "surrogateescape")


def open_text(path):
    """A text file of a trace: a path, "-" (standard input), or a binary or text file object
    (see :func:`open_binary`).  A text file object is read as it is."""
    raw, own = _binary_source(path)
    if raw is None:
        return path
    try:
        magic = _read_magic(raw)
        chained = _Rejoined(magic, raw)
        if magic[:2] == b"\x1f\x8b":
            binary = gzip.GzipFile(fileobj=io.BufferedReader(chained), mode="rb")
        elif magic == b"\xfd7zXZ\x00":
            binary = io.BufferedReader(_XZReader(chained))
        else:
            binary = io.BufferedReader(chained)
        text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")
    except BaseException:
        if own:
            raw.close()
        raise
    return _OwnedText(text, raw if own else None)


class _OwnedText:
    """The text view of a trace; closing it closes the file only if read_trace opened it
    (a caller's file object or standard input stays open)."""

    __slots__ = ("readline", "_raw")

    def __init__(self, text, raw) -> None:
        self.readline, self._raw = text.readline, raw

    def close(self) -> None:
        if self._raw is not None:
            self._raw.close()


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


def parse_events(path, skip_bad: bool = False, stats: dict | None = None, progress=None,
                 bad: list | None = None):
    """Yield (lineno, event, cpu, timestamp_text, fields) for each event line of a trace.

    A line longer than MAX_LINE characters, one that is not an event line, and one whose
    CPU field has more than MAX_DIGITS digits raise :class:`TraceFormatError`, or with
    skip_bad are skipped and counted in stats["bad_lines"].  A damaged .gz or .xz file (or
    an .xz one that needs more than XZ_MEMLIMIT bytes to decode) raises it always.
    progress, if given, is called with a count of lines every PROGRESS_LINES lines; bad, if
    given, gets (line number, problem) of the first BAD_EXAMPLES lines skipped.  The header's
    CPU count (``#P:2``, the CPUs of the machine that captured it) goes to stats["header_cpus"].
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
            elif "\0" in line:
                problem = "holds NUL bytes (binary data, not trace text)"
            elif line.startswith("#"):
                if "#P:" in line:
                    cpus = _HEADER_CPUS.search(line)
                    if cpus is not None:
                        stats["header_cpus"] = int(cpus.group(1))
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
                if bad is not None and len(bad) < BAD_EXAMPLES:
                    bad.append((lineno, problem))
                continue
            stats["lines"] = lineno
            raise TraceFormatError(f"line {lineno}: {problem}")
    finally:
        stats["lines"] = lineno
        if f is not path:
            f.close()


_GFP_CACHE: dict[str, int] = {}

# Names older kernels printed that 6.18 has not, by what the flag asks for today.  3.x printed
# the bits without "__" (include/trace/events/gfpflags.h show_gfp_flags(): "GFP_WAIT",
# "GFP_COLD", "GFP_NOTRACK", ...); 4.x with it (include/trace/events/mmflags.h
# __def_gfpflag_names: "__GFP_COLD", "__GFP_REPEAT", "__GFP_NOTRACK", "__GFP_OTHER_NODE",
# "__GFP_ATOMIC" until 6.3).  __GFP_WAIT (until 4.3) was the direct reclaim that also woke
# kswapd; __GFP_REPEAT became __GFP_RETRY_MAYFAIL in 4.13; GFP_TEMPORARY (until 4.14) was
# GFP_KERNEL | __GFP_RECLAIMABLE; __GFP_KMEMCG (3.8-3.14) became __GFP_ACCOUNT.  Hints that
# steer nothing pyalloc models (cold pages, kmemcheck, NUMA statistics) are no bits.
OLD_GFP_NAMES = {
    "__GFP_WAIT": gfpmod.GFP_RECLAIM, "__GFP_REPEAT": gfpmod.GFP_RETRY_MAYFAIL,
    "GFP_TEMPORARY": gfpmod.GFP_KERNEL | gfpmod.GFP_RECLAIMABLE, "__GFP_KMEMCG": gfpmod.GFP_ACCOUNT,
    "GFP_IOFS": gfpmod.GFP_IO | gfpmod.GFP_FS, "__GFP_COLD": 0, "__GFP_NOTRACK": 0, "__GFP_OTHER_NODE": 0,
    "__GFP_NO_KSWAPD": 0, "__GFP_ATOMIC": 0, "__GFP_NOACCOUNT": 0,
}


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
                if name in OLD_GFP_NAMES:
                    value |= OLD_GFP_NAMES[name]
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


# The bits mm/slub.c new_slab() lets through to the page allocator (flags & (GFP_RECLAIM_MASK |
# GFP_CONSTRAINT_MASK)) and the ones allocate_slab() adds (s->allocflags: __GFP_COMP, the
# cache's zone, __GFP_RECLAIMABLE; __GFP_NOWARN | __GFP_NORETRY | __GFP_NOMEMALLOC for the
# first, higher-order attempt).  A page event with any other bit (__GFP_ZERO, __GFP_ACCOUNT,
# __GFP_MOVABLE, __GFP_HIGHMEM: faults, readahead, page tables) is not a new slab.
SLAB_PAGE_MASK = (gfpmod.GFP_RECLAIM_MASK | gfpmod.GFP_CONSTRAINT_MASK | gfpmod.GFP_COMP | gfpmod.GFP_DMA
                  | gfpmod.GFP_DMA32 | gfpmod.GFP_RECLAIMABLE)
USER_PAGE_BITS = gfpmod.GFP_MOVABLE | gfpmod.GFP_HIGHMEM
SLUB_MAX_ORDER = 3                  # slub_max_order's default, PAGE_ALLOC_COSTLY_ORDER (mm/slub.c)
KMALLOC_MAX_CACHE_SIZE = 8192       # larger kmallocs are kmalloc_large: pages of their own
# why a page allocation right before a slab allocation was not the slab allocator's own
NOT_SLAB_REASONS = {
    "not_slab_user": "__GFP_MOVABLE or __GFP_HIGHMEM (user, page-cache or readahead memory)",
    "not_slab_flags": "a flag new_slab() never passes (__GFP_ZERO, __GFP_ACCOUNT, ...)",
    "not_slab_order": "an order the slab or kmalloc_large allocation cannot have",
}

TRACE_STAT_KEYS = ("events", "ignored_events", "unmatched_frees", "slab_pages", "implied_frees",
                   "implied_page_frees", "bad_lines") + tuple(NOT_SLAB_REASONS)


def _get_order(size: int) -> int:
    return max(0, (size - 1) >> 12).bit_length()


def _not_slab_page(order: int, gfp: int, slab_event: tuple) -> str | None:
    """Why the page allocation (order, gfp) cannot be the slab allocator's own page for the
    allocation event slab_event (is_kmalloc, bytes_alloc, gfp), or None when it can be."""
    is_kmalloc, bytes_alloc, _obj_gfp = slab_event
    if gfp & USER_PAGE_BITS:
        return "not_slab_user"
    if is_kmalloc and bytes_alloc > KMALLOC_MAX_CACHE_SIZE:
        # mm/slub.c ___kmalloc_large_node(): the caller's flags | __GFP_COMP, get_order(size)
        return None if order == _get_order(bytes_alloc) else "not_slab_order"
    if gfp & ~SLAB_PAGE_MASK:
        return "not_slab_flags"
    if order > max(SLUB_MAX_ORDER, _get_order(bytes_alloc)):
        return "not_slab_order"
    return None


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


_WORDS = _abi.TPARSE_WORDS
_RAW, _CPUS = _abi.TPARSE_RAW, _abi.TPARSE_CPUS
_F_PAGE, _F_ACCOUNTED, _F_NULL, _F_ALLOC = (_abi.TPARSE_F_PAGE, _abi.TPARSE_F_ACCOUNTED, _abi.TPARSE_F_NULL,
                                      _abi.TPARSE_F_ALLOC)
_F_SITE, _F_GFP, _F_NAME = _abi.TPARSE_F_SITE, _abi.TPARSE_F_GFP, _abi.TPARSE_F_NAME
CHUNK = 1 << 19                     # bytes read (after decompression) per step
# A capture's caches existed before it began, so the caches a trace uses in its first
# CACHES_UPFRONT operations are created before its first op runs; a cache first used later
# is created right before that op (cache_first_op): a chunked replay cannot know it sooner,
# and one m.run of the whole trace does the same, so the two end alike.
CACHES_UPFRONT = 1 << 20
PREFETCH = 2                        # chunks decompressed ahead of the parser
_BAD_PROBLEMS = {
    _abi.TPARSE_BAD_LONG: f"longer than {MAX_LINE} characters",
    _abi.TPARSE_BAD_NUL: "holds NUL bytes (binary data, not trace text)",
    _abi.TPARSE_BAD_CPU: f"the CPU field has more than {MAX_DIGITS} digits",
}


def _line_parser():
    """The C core's line parser (csrc/trace_parse.c) when it is built, else its Python twin:
    they give the same records."""
    try:
        from .._cbackend import LineParser
    except ImportError:
        from ..model.trace_parse import LineParser      # type: ignore[assignment]
    return LineParser()


def _records(path, parser, progress):
    """(records, text) of each chunk of the capture at *path*; progress gets the bytes read
    from the file (compressed, as they are on disk)."""
    binary, source = open_binary(path)
    reported = 0
    chunks = _read_chunks(binary) if isinstance(source, _Positioned) else _prefetched(binary)
    try:
        for data in chunks:
            yield parser.feed(data, final=not data)
            if progress is not None and source.read_bytes > reported:
                progress(source.read_bytes - reported)
                reported = source.read_bytes
            if not data:
                return
    except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        raise TraceFormatError(f"line {parser.lineno + 1}: the compressed file is damaged ({exc})") from None
    finally:
        chunks.close()
        if binary is not getattr(source, "_f", None):
            binary.close()
        source.close_source()


def _read_chunks(binary):
    while True:
        data = binary.read(CHUNK)
        yield data
        if not data:
            return


def _prefetched(binary):
    """_read_chunks(binary) with the reading (decompression) on a thread of its own, which
    liblzma and zlib run without the GIL, as the parser does: the two overlap.  At most
    PREFETCH chunks wait; an exception of the reader comes out where its chunk would."""
    q: queue.Queue = queue.Queue(PREFETCH)
    stop = threading.Event()

    def put(item) -> bool:
        # a caller that stopped reading takes nothing more: give up rather than wait
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def reader() -> None:
        try:
            for data in _read_chunks(binary):
                if not put((data, None)) or not data:
                    return
        except BaseException as exc:            # handed over to the caller's thread
            put((None, exc))

    thread = threading.Thread(target=reader, name="read_trace", daemon=True)
    thread.start()
    try:
        while True:
            data, exc = q.get()
            if exc is not None:
                raise exc
            yield data
            if not data:
                return
    finally:
        stop.set()
        thread.join()


def _bad_problem(why: int, keep: bytes) -> str:
    if why == _abi.TPARSE_BAD_LINE:
        return f"not an ftrace event line: {keep.decode('utf-8', 'replace').rstrip()[:120]!r}"
    return _BAD_PROBLEMS[why]


def _raw_head(line: bytes) -> tuple[int, str, dict]:
    """(cpu, event, fields) of an event line the fast path left to Python."""
    m = _tparse.HEAD.search(line, 1)
    assert m is not None            # the parser matched it
    fields = {k.decode(): v.decode("utf-8", "replace") for k, v in _tparse.FIELD.findall(line, m.end())}
    return int(m.group(1)), m.group(3).decode(), fields


def _raw_fields(kind: int, f: dict) -> tuple:
    """(ptr, a, b, flags, site, gfp, name) of an event from its fields, with the errors of a
    field missing (KeyError) or malformed (ValueError) in the order the fields are used."""
    site = f.get("call_site")
    b = flags = 0
    gfp = name = None
    if kind == MM_PAGE_ALLOC:
        pfn = _int(f["pfn"])
        page = f.get("page", "")
        ok = page not in _NULLS and not (pfn == 0 and page in ("", "(null)"))
        return (pfn if ok else None), _int(f["order"]), 0, 0, site, parse_gfp(f.get("gfp_flags", "none")), None
    if kind == MM_PAGE_FREE:
        return _int(f["pfn"]), f.get("order", "0"), 0, 0, site, None, None
    ptr = parse_ptr(f["ptr"])
    a = 0
    if kind <= KMEM_CACHE_ALLOC:
        gfp = parse_gfp(f.get("gfp_flags", "none"))
        a = _int(f["bytes_req"])
        b = _int(f.get("bytes_alloc", "0"))
        name = f.get("name")
        # bytes_alloc is needed only for a new cache: a missing one is a KeyError there
        flags = (_F_ACCOUNTED if f.get("accounted") == "true" else 0) | (_F_ALLOC if "bytes_alloc" in f else 0)
    return ptr, a, b, flags, site, gfp, name


def read_trace(path, skip_bad: bool = False, progress=None) -> Stream:
    """Parse a kmem ftrace capture into a Stream (see the module's docstring).

    *path* is a file name, ``"-"`` for standard input, or a binary or text file object; a
    pipe is read once, in chunks.  The stream's ``trace_stats`` dict counts lines, events,
    other (ignored) events, frees of objects allocated before the capture
    (``unmatched_frees``), the slab allocator's own page events (``slab_pages``), page
    allocations right before a slab allocation kept as the caller's because their mask or
    order rules the slab out (``not_slab_*``, see NOT_SLAB_REASONS), allocations that
    returned a pointer the trace still held (``implied_frees``; ``implied_page_frees`` for
    pfns), skipped bad lines, and the CPUs (the header's ``#P:`` or the highest CPU seen).
    ``trace_expect`` holds what the trace implies is live at its end (objects per cache key,
    page blocks per order; see :mod:`pyalloc.tools.replay_verify`) and ``trace_bad`` the
    first bad lines skipped.  A malformed line raises :class:`TraceFormatError` naming its
    number, unless ``skip_bad``.  ``progress`` is called with line counts as parsing goes on.
    """
    for s in trace_chunks(path, skip_bad, progress, chunk=None):
        return s
    raise AssertionError("trace_chunks yields a last stream")      # pragma: no cover


def trace_chunks(path, skip_bad: bool = False, progress=None, chunk: int | None = 1 << 20):
    """read_trace() a piece at a time, for :func:`pyalloc.machine.stream_chunks.run_chunks`,
    so a capture of any length replays in memory bounded by its live objects, not its length.

    Yields a stream every *chunk* operations, each after the first beginning with
    ``len(stream.carried)`` copies of the records of the allocations the previous one left
    live (``stream.carried`` holds their handles there; the trace's frees name the copies,
    and run_chunks() gives them the previous run's results without running them); the
    first holds at least the trace's first CACHES_UPFRONT operations, whose caches ``m.run``
    creates before any op.  A cache first used later is noted with that op
    (``cache_first_op``), and ``m.run`` creates it there: the replay's results depend
    neither on *chunk* nor on where a run starts, and equal read_trace()'s in one
    ``m.run``, which follows the same rule.  The last stream carries
    ``trace_stats``, ``trace_expect`` and ``trace_bad`` as read_trace()'s does; every
    stream shares the ``trace_stats`` dict as it fills (``header_cpus``: the header's
    ``#P:``, and ``cpus`` once the trace ends).  ``chunk=None``: one stream, read_trace()'s.
    """
    s = Stream()
    s.carried = array("q")
    s.trace_stats = stats = dict.fromkeys(TRACE_STAT_KEYS, 0)
    s.cache_first_op = {}
    done = 0                                      # operations in the streams before s
    stats["cpus"] = 1
    bad: list = []
    # trace pointer -> (handle, stream cache or -1, bytes_alloc, gfp)
    objects: dict[int, tuple[int, int, int, int]] = {}
    pages: dict[int, tuple[int, int]] = {}        # pfn -> (handle, order)
    internal: set[int] = set()                    # pfns the slab allocator took for itself
    pending: list[tuple] = []                     # page allocations not yet known to be the slab's
    max_cpu = 0

    def flush_pages(slab_ptr, slab_cpu=-1, slab_event=(False, 0, 0)) -> None:
        # The page allocation right before a slab allocation (with the failed attempts
        # just before it) was the slab allocator's own: a new slab, or kmalloc_large.
        # It ran on the same CPU, its mask and order are ones the slab allocator passes,
        # and with unhashed pointers the object lies inside the block.
        if not pending:
            return
        first = len(pending)
        last = pending[-1]
        if slab_ptr is not None and last[0] == slab_cpu:
            if slab_ptr < PAGE_OFFSET or (last[1] is not None and
                                          last[1] <= (slab_ptr - PAGE_OFFSET) >> 12 < last[1] + (1 << last[2])):
                reason = _not_slab_page(last[2], last[3], slab_event)
                if reason is None:
                    first = len(pending) - 1
                    while (first > 0 and pending[first - 1][1] is None
                           and _not_slab_page(pending[first - 1][2], pending[first - 1][3], slab_event) is None):
                        first -= 1
                else:
                    stats[reason] += 1
        for k, (cpu, pfn, order, gfp) in enumerate(pending):
            if k >= first:
                stats["slab_pages"] += 1
                if pfn is not None:
                    internal.add(pfn)
            else:
                if pfn is not None:
                    _implied_page_free(pfn, cpu)
                h = s.alloc_pages(gfp, order, cpu=cpu)
                if pfn is not None:
                    pages[pfn] = (h, order)
        pending.clear()

    def _implied_page_free(pfn, cpu) -> None:
        # a pfn handed out again while the replay holds it (or the slab does) was freed
        # without an event the capture kept
        internal.discard(pfn)
        held = pages.pop(pfn, None)
        if held is not None:
            s.free_pages(held[0], held[1], cpu=cpu)
            stats["implied_page_frees"] += 1

    def _free_object(found, cpu, site, event="kmem_cache_free") -> None:
        h, cache = found[:2]
        if event == "kfree" or cache < 0:
            s.kfree(h, cpu=cpu, caller=site)
        else:
            s.kmem_cache_free(s.caches[cache][0], h, cpu=cpu, caller=site)

    def cut() -> Stream:
        # a new stream carries the live allocations over (see the docstring); the old is done
        nonlocal s, done
        done += len(s) - len(s.carried)
        old, s = s, Stream()
        s.callers, s._caller_index, s.caches, s._cache_index = old.callers, old._caller_index, old.caches, \
            old._cache_index
        s.trace_stats, s.carried, s.cache_first_op = stats, array("q"), {}
        for ptr, found in objects.items():
            s.carried.append(found[0])
            objects[ptr] = (s._carry(old._rec, found[0]),) + found[1:]
        for pfn, (h, order) in pages.items():
            s.carried.append(h)
            pages[pfn] = (s._carry(old._rec, h), order)
        return old

    def bad_line(lineno: int, problem: str) -> None:
        if not skip_bad:
            raise TraceFormatError(f"line {lineno}: {problem}")
        stats["bad_lines"] += 1
        if len(bad) < BAD_EXAMPLES:
            bad.append((lineno, problem))

    strings: dict[bytes, str] = {}          # call sites and cache names: a trace has few
    gfps: dict[bytes, int] = {}
    parser = _line_parser()
    for recs, text in _records(path, parser, progress):
        for k in range(0, len(recs), _WORDS):
            if chunk is not None and len(s) - len(s.carried) >= chunk and \
                    done + len(s) - len(s.carried) >= CACHES_UPFRONT:
                yield cut()
            kind, lineno, cpu, ptr, a, b, flags = recs[k:k + 7]
            if kind > MM_PAGE_FREE:
                off = recs[k + 7]
                if kind == _CPUS:
                    stats["header_cpus"] = cpu
                    continue
                if kind != _RAW:
                    bad_line(lineno, _bad_problem(cpu, text[off:off + recs[k + 8]]))
                    continue
                kind, (cpu, event, f) = cpu, _raw_head(text[off:off + recs[k + 8]])
                stats["events"] += 1
                try:
                    if cpu >= OP_CPU_CURRENT:
                        raise ValueError(f"CPU {cpu} is past the last CPU a stream can name")
                    max_cpu = max(max_cpu, cpu)
                    if kind in (KFREE, KMEM_CACHE_FREE, MM_PAGE_FREE):
                        flush_pages(None)
                    ptr, a, b, flags, site, gfp, name = _raw_fields(kind, f)
                except (KeyError, ValueError) as exc:
                    what = f"no valid {exc} field" if isinstance(exc, KeyError) else str(exc)
                    bad_line(lineno, f"{event}: {what}")
                    continue
            else:
                stats["events"] += 1
                event = EVENT_NAMES[kind] if not b or kind != MM_PAGE_FREE else "mm_page_free_batched"
                site = gfp = name = None
                if flags & _F_SITE:
                    raw = text[recs[k + 7]:recs[k + 7] + recs[k + 8]]
                    site = strings.get(raw)
                    if site is None:
                        site = strings[raw] = raw.decode("utf-8", "replace")
                if kind == MM_PAGE_ALLOC or kind <= KMEM_CACHE_ALLOC:
                    raw = text[recs[k + 9]:recs[k + 9] + recs[k + 10]] if flags & _F_GFP else b"none"
                    gfp = gfps.get(raw)
                    if gfp is None:
                        gfp = gfps[raw] = parse_gfp(raw.decode("utf-8", "replace"))
                if flags & _F_NAME:
                    raw = text[recs[k + 11]:recs[k + 11] + recs[k + 12]]
                    name = strings.get(raw)
                    if name is None:
                        name = strings[raw] = raw.decode("utf-8", "replace")
                if flags & _F_NULL or (kind == MM_PAGE_ALLOC and not flags & _F_PAGE):
                    ptr = None
            try:
                if max_cpu < cpu:
                    max_cpu = cpu
                if kind == MM_PAGE_ALLOC:
                    pending.append((cpu, ptr, a, gfp))
                    continue
                if kind <= KMEM_CACHE_ALLOC:
                    flush_pages(ptr if ptr is not None else 0, cpu, (kind == KMALLOC, b, gfp))
                    old = objects.pop(ptr, None) if ptr is not None else None
                    if old is not None:
                        # 6.18 frees through sheaves and bulk paths that emit no kmem_cache_free:
                        # the pointer coming back is the only sign that the old object went
                        _free_object(old, cpu, None)
                        stats["implied_frees"] += 1
                    if kind == KMALLOC:
                        h, cache = s.kmalloc(a, gfp, cpu=cpu, caller=site), -1
                    else:
                        name = name or f"trace-{a}"
                        cache = s._cache_index.get(name, -1)
                        if cache < 0:
                            if not flags & _F_ALLOC:
                                raise KeyError("bytes_alloc")
                            if done + len(s) - len(s.carried) >= CACHES_UPFRONT:
                                s.cache_first_op[len(s.caches)] = len(s)      # m.run makes it there
                            cache = _trace_cache(s, name, a, b, gfp, bool(flags & _F_ACCOUNTED))
                        h = s.kmem_cache_alloc(name, gfp, cpu=cpu, caller=site)
                    if ptr is not None:
                        objects[ptr] = (h, cache, b, gfp)
                    continue
                flush_pages(None)
                if kind != MM_PAGE_FREE:
                    if ptr is None:
                        if kind == KFREE:
                            s.kfree(None, cpu=cpu, caller=site)     # kfree(NULL): traced, a no-op
                        continue
                    found = objects.pop(ptr, None)
                    if found is None:
                        stats["unmatched_frees"] += 1
                        continue
                    _free_object(found, cpu, site, event)
                else:
                    freed = pages.pop(ptr, None)
                    if freed is not None:
                        s.free_pages(freed[0], a if a.__class__ is int else _int(a), cpu=cpu)
                    elif ptr in internal:
                        internal.discard(ptr)
                    else:
                        stats["unmatched_frees"] += 1
            except (KeyError, ValueError) as exc:
                what = f"no valid {exc} field" if isinstance(exc, KeyError) else str(exc)
                bad_line(lineno, f"{event}: {what}")
    stats["lines"] = parser.lineno
    stats["ignored_events"] = parser.ignored
    flush_pages(None)
    stats["cpus"] = max(max_cpu + 1, min(stats.pop("header_cpus", 0), OP_CPU_CURRENT))
    s.trace_expect = _expected(objects, pages, s.caches)
    s.trace_bad = bad
    yield s


def _expected(objects: dict, pages: dict, caches: list) -> dict:
    """What a trace implies at its end: the objects allocated in it and not freed, per
    (cache name or "kmalloc", bytes_alloc, gfp for kmalloc), and page blocks per order."""
    out: dict = {}
    for _h, cache, alloc, gfp in objects.values():
        key = ("kmalloc", alloc, gfp) if cache < 0 else (caches[cache][0], alloc, 0)
        out[key] = out.get(key, 0) + 1
    per_order: dict = {}
    for _h, order in pages.values():
        per_order[order] = per_order.get(order, 0) + 1
    return {"objects": out, "pages": per_order}
