"""The kmem capture's line parser: the pure-Python twin of csrc/trace_parse.c.

Both read the bytes of an ftrace text capture in chunks of any size and turn each line that
matters into a record of TPARSE_WORDS unsigned 64-bit words, with the text fields the record
names copied into a text buffer of the same call.  They must give the same records for any
input (tests/test_trace_parse.py, fuzz/fuzz_trace.py); pyalloc/machine/trace.py turns them
into a Stream.

A line ends at ``\\n``, ``\\r\\n`` or ``\\r`` (as Python's universal newlines read it).  It is
recognised by what follows the task name: the leftmost ``-<pid> [(<tgid>)] [<cpu>] [<flags>]
<secs>.<usecs>: <event>:`` after its first byte (include/trace/trace_output.c
trace_print_context()), and its fields are the ``key=value`` words after that (the last of a
key wins), where ``%p`` of NULL before 4.x printed ``(null)`` right-aligned in the pointer's
width (lib/vsprintf.c).  Character classes are ASCII (bytes regular expressions).

Record words: 0 kind (a TRACE_* event, TPARSE_RAW, TPARSE_BAD or TPARSE_CPUS), 1 line number,
2 CPU (TPARSE_BAD: why; TPARSE_CPUS: the header's count), 3 ptr or pfn, 4 bytes_req or order,
5 bytes_alloc, 6 TPARSE_F_* flags, 7-8 call_site (offset, length in the text; TPARSE_RAW and
TPARSE_BAD: the line), 9-10 gfp_flags, 11-12 name.  A known event whose fields the fast path
cannot give exactly (a field missing, a number past 18 decimal or 16 hex digits or spelt
another way, a CPU past OP_CPU_CURRENT, a kmem_cache_alloc without bytes_alloc, an
event of another name than 6.18's) is a TPARSE_RAW record: the caller parses its line
itself, with the general rules and messages.
"""

from __future__ import annotations

import re

from .._abi import (
    OP_CPU_CURRENT, TPARSE_BAD, TPARSE_BAD_CPU, TPARSE_BAD_LINE, TPARSE_BAD_LONG, TPARSE_BAD_NUL, TPARSE_CPUS,
    TPARSE_F_ACCOUNTED, TPARSE_F_ALLOC, TPARSE_F_GFP, TPARSE_F_NAME, TPARSE_F_NULL, TPARSE_F_PAGE,
    TPARSE_F_SITE, TPARSE_KEEP, TPARSE_MAX_DIGITS, TPARSE_MAX_LINE, TPARSE_RAW, TRACE_KMALLOC,
    TRACE_KMEM_CACHE_ALLOC, TRACE_MM_PAGE_ALLOC, TRACE_MM_PAGE_FREE, TRACE_EVENT_SPELLINGS,
)

HEAD = re.compile(rb"-\d+\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:\S{4,5}\s+)?(\d+\.\d+):\s+(\w+):")
FIELD = re.compile(rb"(?<!\w)(\w+)=(?: +(?=\(null\)))?(\S*)")
HEADER_CPUS = re.compile(rb"#P:(\d{1,5})\b")
NULLS = frozenset({b"0000000000000000", b"(null)", b"0", b"00000000", b"0x0"})
# the page-free events of 3.x were mm_page_free_direct and mm_pagevec_free; the _node events
# went in 6.2.  Lines of these are raw (their own name goes into messages), but for
# mm_page_free_batched, which 6.18 prints: word 5 of its record is 1.
FAST = tuple(name.encode() for name, _kind, spelling in TRACE_EVENT_SPELLINGS if spelling >= 0)
EVENTS = {name.encode(): kind for name, kind, _spelling in TRACE_EVENT_SPELLINGS}
_DEC = re.compile(rb"[0-9]{1,18}")
_HEX = re.compile(rb"0[xX][0-9a-fA-F]{1,15}")
_PTR = re.compile(rb"[0-9a-fA-F]{1,16}")
_LINE_END = re.compile(rb"[\r\n]")


class _Raw(Exception):
    """The line is left to the caller's general parser."""


def _num(v: bytes | None) -> int:
    """A decimal or 0x-prefixed hex field the fast path can give exactly."""
    if v is None:
        raise _Raw
    if _DEC.fullmatch(v):
        return int(v)
    if _HEX.fullmatch(v):
        return int(v[2:], 16)
    raise _Raw


def _ptr(v: bytes | None) -> tuple[int, int]:
    """(value, TPARSE_F_NULL or 0) of a ptr= field."""
    if v is None:
        raise _Raw
    if v in NULLS:
        return 0, TPARSE_F_NULL
    if _PTR.fullmatch(v):
        return int(v, 16), 0
    raise _Raw


class LineParser:
    """A capture's lines, fed in chunks: ``feed(data)`` for each, then ``feed(b"", final=True)``."""

    def __init__(self) -> None:
        self.lineno = 0
        self.ignored = 0            # event lines of other events
        self._carry = b""           # the start of a line the last chunk did not end
        self._long = False          # ... which is longer than TPARSE_MAX_LINE: dropped as it comes
        self._after_cr = False      # the last chunk ended at a \r: a \n next ends no line

    def feed(self, data: bytes, final: bool = False) -> tuple[list[int], bytes]:
        """The records of the lines *data* completes (all of them when *final*), and their text."""
        recs: list[int] = []
        text = bytearray()
        pos, n = 0, len(data)
        if self._after_cr and n:
            self._after_cr = False
            if data[:1] == b"\n":
                pos = 1
        while pos < n:
            m = _LINE_END.search(data, pos)
            if m is None:
                self._keep(data[pos:])
                break
            end = m.start()
            if data[end] == 13:
                if end + 1 < n:
                    nxt = end + 2 if data[end + 1] == 10 else end + 1
                else:
                    nxt = n
                    self._after_cr = True
            else:
                nxt = end + 1
            self._keep(data[pos:end])
            self._line(recs, text)
            pos = nxt
        if final and (self._carry or self._long):
            self._line(recs, text)
        return recs, bytes(text)

    def _keep(self, piece: bytes) -> None:
        if self._long:
            return
        if len(self._carry) + len(piece) > TPARSE_MAX_LINE:
            self._carry, self._long = b"", True
        else:
            self._carry += piece

    def _line(self, recs: list, text: bytearray) -> None:
        line, long = self._carry, self._long
        self._carry, self._long = b"", False
        self.lineno += 1
        if long:
            self._bad(recs, text, TPARSE_BAD_LONG, b"")
        elif b"\0" in line:
            self._bad(recs, text, TPARSE_BAD_NUL, b"")
        elif line[:1] == b"#":
            m = HEADER_CPUS.search(line)
            if m is not None:
                recs += (TPARSE_CPUS, self.lineno, int(m.group(1))) + (0,) * 10
        else:
            m = HEAD.search(line, 1)
            if m is None:
                if line.strip():
                    self._bad(recs, text, TPARSE_BAD_LINE, line.rstrip()[:TPARSE_KEEP])
            elif len(m.group(1)) > TPARSE_MAX_DIGITS:
                self._bad(recs, text, TPARSE_BAD_CPU, b"")
            else:
                kind = EVENTS.get(m.group(3))
                if kind is None:
                    self.ignored += 1
                    return
                try:
                    rec = self._event(kind, m, line, text)
                except _Raw:
                    rec = [TPARSE_RAW, self.lineno, kind, 0, 0, 0, 0, len(text), len(line), 0, 0, 0, 0]
                    text += line
                recs += rec

    def _bad(self, recs: list, text: bytearray, why: int, keep: bytes) -> None:
        recs += (TPARSE_BAD, self.lineno, why, 0, 0, 0, 0, len(text), len(keep), 0, 0, 0, 0)
        text += keep

    def _event(self, kind: int, m, line: bytes, text: bytearray) -> list[int]:
        cpu_text = m.group(1)
        event = m.group(3)
        if len(cpu_text) > 18 or int(cpu_text) >= OP_CPU_CURRENT or event not in FAST:
            raise _Raw
        f = dict(FIELD.findall(line, m.end()))
        get = f.get
        a = b = flags = 0
        if kind == TRACE_MM_PAGE_ALLOC:
            ptr = _num(get(b"pfn"))
            a = _num(get(b"order"))
            page = get(b"page", b"")
            if page not in NULLS and not (ptr == 0 and page == b""):
                flags = TPARSE_F_PAGE
        elif kind == TRACE_MM_PAGE_FREE:
            ptr = _num(get(b"pfn"))
            order = get(b"order")
            a = 0 if order is None else _num(order)
            b = int(event == b"mm_page_free_batched")
        else:
            ptr, flags = _ptr(get(b"ptr"))
            if kind in (TRACE_KMALLOC, TRACE_KMEM_CACHE_ALLOC):
                a = _num(get(b"bytes_req"))
                alloc = get(b"bytes_alloc")
                if alloc is not None:
                    b = _num(alloc)
                    flags |= TPARSE_F_ALLOC
                elif kind == TRACE_KMEM_CACHE_ALLOC:
                    raise _Raw          # a cache the trace names but does not size
                if get(b"accounted") == b"true":
                    flags |= TPARSE_F_ACCOUNTED
        rec = [kind, self.lineno, int(cpu_text), ptr, a, b, flags, 0, 0, 0, 0, 0, 0]
        for word, key, bit in ((7, b"call_site", TPARSE_F_SITE), (9, b"gfp_flags", TPARSE_F_GFP),
                               (11, b"name", TPARSE_F_NAME)):
            v = get(key)
            if v is not None:
                rec[6] |= bit
                rec[word], rec[word + 1] = len(text), len(v)
                text += v
        return rec
