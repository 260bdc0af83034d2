"""Fuzz the trace reader: the C line parser (csrc/trace_parse.c) against its Python twin.

One input is a byte string, read as a program: pieces of kmem trace lines in every spelling
the kernel has printed (6.18, 4.x, 3.x, failed page allocations, headers) and raw bytes,
joined with \\n, \\r\\n or \\r, then fed to both parsers in chunks of a size the input picks.
A finding is:

* differ       -- the two parsers gave other records, line counts or ignored counts;
* read_trace   -- read_trace(skip_bad=True) raised, or gave another stream with the Python
                  parser and record loop than with the C ones (csrc/trace_parse.c and the
                  stream builder csrc/trace_build.c, which runs with the C parser).

Two ways to run it:

    python fuzz/fuzz_trace.py --plain --seconds 30 --seed 1     # random inputs (CI)
    python fuzz/fuzz_trace.py -max_total_time=3600 fuzz/corpus-trace  # with atheris

It prints the inputs run and the findings by kind, and exits 1 if there was any.
"""

from __future__ import annotations

import io
import os
import sys
import traceback
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                        # the shared driver beside this file
sys.path.insert(0, os.path.dirname(HERE))       # run from a checkout without installing

import _driver  # noqa: E402
from pyalloc import _abi  # noqa: E402
from pyalloc._cbackend import LineParser as CParser  # noqa: E402
from pyalloc.machine import trace as trace_mod  # noqa: E402
from pyalloc.model.trace_parse import LineParser as PyParser  # noqa: E402

PIECES = (
    b"            bash-4029    [001] ...2.   362.366521: ", b"  kworker/0:1-32 (  32) [000] d..1  12.000001: ",
    b"a-1 [0] 1.2: ", b"-7 [00000000000000000000000000000000000000000001] ..... 1.1: ",
    b"kfree: ", b"kmalloc: ", b"kmem_cache_alloc: ", b"kmem_cache_free: ", b"mm_page_alloc: ",
    b"mm_page_free: ", b"mm_page_free_batched: ", b"mm_pagevec_free: ", b"kmalloc_node: ", b"sched_switch: ",
    b"call_site=vm_area_free+0x1c/0x80 ", b"call_site=ffffffff8112ab3c ", b"ptr=ffff888004a1b2c0 ",
    b"ptr=          (null) ", b"ptr=(null) ", b"ptr=0 ", b"ptr=0x12 ", b"ptr=fffffffffffffffff ",
    b"bytes_req=56 ", b"bytes_alloc=64 ", b"bytes_req=0x40 ", b"bytes_alloc=9999999999999999999 ",
    b"gfp_flags=GFP_KERNEL|__GFP_ZERO ", b"gfp_flags=GFP_KERNEL|GFP_ZERO|GFP_NOTRACK ", b"gfp_flags=0x4000 ",
    b"gfp_flags=none ", b"name=dentry ", b"name= ", b"node=-1 ", b"accounted=true ", b"accounted=false ",
    b"page=0000000000000000 ", b"page=00000000fee3bb29 ", b"page= ", b"pfn=0x0 ", b"pfn=0x115bcc ",
    b"pfn=4660 ", b"order=0 ", b"order=10 ", b"order=x ", b"migratetype=1 ",
    b"# entries-in-buffer/entries-written: 1/1   #P:2", b"#P:123456", b"\x00", b"\xff\xfe", b"=", b"-", b" ",
)
ENDS = (b"\n", b"\r\n", b"\r")


class Finding(Exception):
    def __init__(self, kind: str, text: str) -> None:
        super().__init__(f"{kind}: {text}")
        self.kind = kind


def decode(data: bytes) -> tuple[bytes, int]:
    """(capture text, chunk size) an input describes."""
    out = bytearray()
    i = 1
    while i < len(data):
        b = data[i]
        i += 1
        if b < 160:
            out += PIECES[b % len(PIECES)]
        elif b < 200:
            out += ENDS[b % len(ENDS)]
        else:                           # raw bytes: the next (b - 199) of the input
            out += data[i:i + b - 199]
            i += b - 199
    step = (data[0] if data else 0) * 7 + 1
    return bytes(out), step


def records(cls, data: bytes, step: int) -> tuple:
    p = cls()
    out = []
    pieces = [data[k:k + step] for k in range(0, len(data), step)] + [b""]
    for n, piece in enumerate(pieces):
        recs, text = p.feed(piece, final=n == len(pieces) - 1)
        for k in range(0, len(recs), _abi.TPARSE_WORDS):
            r = recs[k:k + _abi.TPARSE_WORDS]
            out.append((tuple(r[:7]), tuple(text[r[w]:r[w] + r[w + 1]] for w in (7, 9, 11))))
    return out, p.lineno, p.ignored


def read(data: bytes, parser) -> tuple:
    trace_mod._line_parser = parser
    try:
        s = trace_mod.read_trace(io.BytesIO(data), skip_bad=True)
    except trace_mod.TraceFormatError as exc:
        # documented: an input that starts with a compressor's magic bytes is read as that
        # format, and a damaged one says so (both parsers must say the same)
        if "the compressed file is damaged" not in str(exc):
            raise Finding("read_trace", traceback.format_exc(limit=4)) from None
        return ("damaged", str(exc))
    except Exception:
        raise Finding("read_trace", traceback.format_exc(limit=4)) from None
    finally:
        trace_mod._line_parser = _REAL
    return bytes(s.buffer), s.trace_stats, s.trace_bad, s.callers, s.caches, s.trace_expect


_REAL = trace_mod._line_parser


def test_one_input(data: bytes, stats: Counter | None = None) -> None:
    text, step = decode(data)
    want = records(PyParser, text, len(text) + 1)
    got = records(CParser, text, step)
    if got != want:
        raise Finding("differ", f"C {got[1:]} {got[0][:4]} vs Python {want[1:]} {want[0][:4]}")
    if read(text, CParser) != read(text, PyParser):
        raise Finding("read_trace", "another stream with the Python parser")
    if stats is not None:
        stats["inputs"] += 1
        stats["records"] += len(want[0])


def main(argv=None) -> int:
    return _driver.main("fuzz_trace", __doc__ or "", test_one_input, Finding, 400, argv)


if __name__ == "__main__":
    sys.exit(main())
