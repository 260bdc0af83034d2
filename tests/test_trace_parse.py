"""The capture line parser: csrc/trace_parse.c against its twin pyalloc/model/trace_parse.py."""

import io
import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import pyalloc
from pyalloc import _abi
from pyalloc.machine import trace as trace_mod
from pyalloc.model.trace_parse import LineParser as PyParser

C = pytest.importorskip("pyalloc._cbackend")
FIXTURE = Path(__file__).parent / "fixtures" / "ftrace-kmem.txt"
W = _abi.TPARSE_WORDS


def records(cls, data: bytes, step: int | None = None) -> tuple[list, int, int]:
    """Every record of data fed in pieces of step bytes, with its text fields resolved."""
    p = cls()
    out = []
    step = step or max(1, len(data))
    pieces = [data[i:i + step] for i in range(0, len(data), step)] + [b""]
    for k, piece in enumerate(pieces):
        recs, text = p.feed(piece, final=k == len(pieces) - 1)
        for i in range(0, len(recs), W):
            r = recs[i:i + W]
            out.append((tuple(r[:7]), tuple(text[r[w]:r[w] + r[w + 1]] for w in (7, 9, 11))))
    return out, p.lineno, p.ignored


def same(data: bytes, step: int | None = None):
    want = records(PyParser, data, step)
    got = records(C.LineParser, data, step)
    assert got == want
    return want


SPELLINGS = [
    b"            bash-4029    [001] .....   362.366907: kfree: call_site=vm_area_free+0x1c/0x80 ptr=0000000000000000",
    b"  kworker/0:1-32    [000] ....  12.000001: kfree: call_site=ffffffff8112ab3c ptr=          (null)",
    b"  a-1 ( 1) [00] d..1 3.4: kmalloc: call_site=ffffffff811d4f3d ptr=ffff88007c1d6a00 bytes_req=56 "
    b"bytes_alloc=64 gfp_flags=GFP_KERNEL|GFP_ZERO",
    b"  a b-c-7  [003] 1.000001: kmem_cache_alloc: call_site=x+0x1/0x2 ptr=ffff8880 bytes_req=200 "
    b"bytes_alloc=256 gfp_flags=GFP_KERNEL node=-1 accounted=true",
    b"  a-7  [003] ..... 1.000001: kmem_cache_alloc_node: call_site=x ptr=ffff8880 bytes_req=2 bytes_alloc=8 "
    b"gfp_flags=GFP_ATOMIC|__GFP_NOWARN name=dentry",
    b"  a-7  [002] ..... 1.000001: mm_page_alloc: page=0000000000000000 pfn=0x0 order=10 migratetype=0 "
    b"gfp_flags=GFP_KERNEL|__GFP_NOWARN",
    b"  a-7  [002] ..... 1.000001: mm_page_free_batched: page=000000009ea7cfcb pfn=0x1130a9 order=0",
    b"  a-7  [002] ..... 1.000001: mm_page_free_direct: page=ffffea0001 pfn=4660 order=1",
    b"  a-7  [002] ..... 1.000001: mm_page_free: pfn=99999999999999999999999 order=0",
    b"  a-7  [999999999999] ..... 1.000001: kfree: call_site=x ptr=1",
    b"  a-7  [0000000000000000000000000000000000000000000001] ..... 1.000001: kfree: ptr=1",
    b"  a-7  [001] ..... 1.000001: sched_switch: prev_comm=a",
    b"# entries-in-buffer/entries-written: 225346/225346   #P:2",
    b"garbage that is no event",
    b"  a-7  [001] ..... 1.000001: kfree: call_site=x ptr=0x12 ptr=zz",
    b"",
    b"   \t ",
    b"\x00\x01 binary",
]


def test_fixture_gives_the_same_records_and_reads_all_of_it():
    data = FIXTURE.read_bytes()
    recs, lines, ignored = same(data)
    assert lines == data.count(b"\n")
    assert sum(r[0][0] <= _abi.TRACE_MM_PAGE_FREE for r in recs) == 301


def test_every_spelling_and_line_end():
    for end in (b"\n", b"\r\n", b"\r"):
        same(end.join(SPELLINGS) + end)
        same(end.join(SPELLINGS))


def test_chunk_boundaries_at_every_byte():
    data = b"\r\n".join(SPELLINGS[:8]) + b"\n" + FIXTURE.read_bytes()[:3000] + b"\r"
    whole = same(data)
    for step in range(1, 200):
        assert records(C.LineParser, data, step) == whole, step
    for step in (1, 3, 17, 64):
        assert records(PyParser, data, step) == whole, step


def test_long_lines_are_counted_not_held():
    line = SPELLINGS[0]
    long = b"x" * (_abi.TPARSE_MAX_LINE + 1)
    edge = b"y" * _abi.TPARSE_MAX_LINE
    data = line + b"\n" + long + b"\n" + edge + b"\n" + b"z" * (10 << 20) + b"\n" + line
    recs, lines, _ = same(data, 1 << 16)
    assert lines == 5
    assert [r[0][2] for r in recs if r[0][0] == _abi.TPARSE_BAD] == [
        _abi.TPARSE_BAD_LONG, _abi.TPARSE_BAD_LINE, _abi.TPARSE_BAD_LONG]


def _mutate(rng: random.Random, line: bytes) -> bytes:
    b = bytearray(line)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[min(i, len(b) - 1)]
        elif op == 1:
            b[i:i] = rng.choice([b" ", b"=", b"-", b"[", b"]", b":", b"\0", b"\r", b"\n", b"(null)", b"0x",
                                 b"\xff", b"#P:", b"9" * rng.randrange(1, 45)])
        elif op == 2:
            b = b[:i]
        elif op == 3 and b:
            b[min(i, len(b) - 1)] = rng.randrange(256)
        else:
            b[i:i] = b[rng.randrange(len(b) + 1):][:20]
    return bytes(b)


def test_mutated_lines_give_the_same_records():
    rng = random.Random(17)
    base = SPELLINGS + [line for line in FIXTURE.read_bytes().splitlines() if not line.startswith(b"#")][:80]
    for _ in range(400):
        lines = [_mutate(rng, rng.choice(base)) for _ in range(rng.randrange(1, 12))]
        data = rng.choice([b"\n", b"\r\n", b"\r"]).join(lines)
        same(data, rng.choice([None, 1, 7, 64]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(SPELLINGS), st.binary(max_size=80)), max_size=8),
       st.sampled_from([b"\n", b"\r\n", b"\r", b" \n"]), st.integers(1, 50))
def test_random_lines_give_the_same_records(lines, end, step):
    data = end.join(lines)
    assert records(C.LineParser, data, step) == records(PyParser, data)


def test_read_trace_is_the_same_with_either_parser(monkeypatch, tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"\n".join(SPELLINGS) + b"\n" + FIXTURE.read_bytes())
    a = pyalloc.read_trace(path, skip_bad=True)
    monkeypatch.setattr(trace_mod, "_line_parser", PyParser)
    b = pyalloc.read_trace(path, skip_bad=True)
    assert bytes(a.buffer) == bytes(b.buffer) and a.trace_stats == b.trace_stats
    assert a.trace_bad == b.trace_bad and a.callers == b.callers and a.caches == b.caches


def test_read_trace_reads_in_chunks_with_progress_by_bytes(monkeypatch, tmp_path):
    monkeypatch.setattr(trace_mod, "CHUNK", 4096)
    data = FIXTURE.read_bytes()
    seen = []
    chunks = []
    real = trace_mod._records

    def counting(*args):
        for item in real(*args):
            chunks.append(item)
            yield item
    monkeypatch.setattr(trace_mod, "_records", counting)
    s = pyalloc.read_trace(io.BytesIO(data), progress=seen.append)
    assert sum(seen) == len(data) and 1 < len(seen) < len(chunks)
    assert len(chunks) == -(-len(data) // 4096) + 1          # the last, empty read ends it
    assert s.trace_stats["events"] == 301


def test_fuzz_target_finds_nothing_on_fixed_inputs():
    import importlib.util
    from collections import Counter
    harness = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_trace.py"
    spec = importlib.util.spec_from_file_location("fuzz_trace", harness)
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    rng = random.Random(5)
    stats: Counter = Counter()
    for _ in range(40):
        fuzz.test_one_input(rng.randbytes(rng.randrange(8, 400)), stats)
    assert stats["inputs"] == 40 and stats["records"] > 40


def test_a_reader_stopped_early_ends_its_thread(tmp_path):
    import lzma
    import threading
    path = tmp_path / "t.xz"
    path.write_bytes(lzma.compress(b"garbage\n" + FIXTURE.read_bytes() * 40))
    before = threading.active_count()
    with pytest.raises(trace_mod.TraceFormatError, match="line 1: not an ftrace event line"):
        pyalloc.read_trace(path)
    assert threading.active_count() == before
