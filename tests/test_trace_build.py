"""The C stream builder (csrc/trace_build.c) against the Python record loop of trace_chunks():
the same streams (ops, callers, caches, carried ops, first ops of caches), trace_stats,
trace_expect and trace_bad, on the fixture and on synthetic and fuzzed captures."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from pyalloc.machine import trace as T

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "ftrace-kmem.txt"
pytest.importorskip("pyalloc._core")


def _dump(path, chunk, fast: bool, monkeypatch):
    monkeypatch.setattr(T, "FAST_BUILD", fast)
    out = []
    for s in T.trace_chunks(path, True, None, chunk):
        out.append((bytes(s._rec), list(s.callers), dict(s._caller_index), list(s.caches), s.max_cpu, s._checked,
                    s._checked_sizes, s._checked_cpu, list(s.carried), dict(s.cache_first_op),
                    dict(s.trace_stats)))
    return out, s.trace_expect, s.trace_bad


def _synthetic(tmp_path: Path, lines: int) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from bench_trace_parse import synthesize
    finally:
        sys.path.pop(0)
    path = tmp_path / "syn.txt"
    synthesize(path, lines)
    return path


def _fuzzed(src: Path, dst: Path, seed: int) -> Path:
    rng = random.Random(seed)
    ls = src.read_text().splitlines(True)
    for _ in range(150):
        i = rng.randrange(len(ls))
        op = rng.randrange(6)
        if op == 0:
            ls[i] = ls[i].replace("kmalloc", "kmalloc_node")        # a raw line: the Python loop goes on
        elif op == 1:
            ls[i] = ls[i][:rng.randrange(len(ls[i]))] + "\n"
        elif op == 2:
            ls[i] = ls[i].replace("gfp_flags=", "gfp_flags=0x1ffffffff|")
        elif op == 3:
            ls.insert(i, ls[rng.randrange(len(ls))])
        elif op == 4:
            ls[i] = ls[i].replace("name=", "name=\xff")
        else:
            ls[i] = ls[i].replace("call_site=", "call_site=\xfe")
    dst.write_text("".join(ls))
    return dst


@pytest.mark.parametrize("chunk", [None, 1000, 97])
def test_fixture_and_synthetic(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(T, "CACHES_UPFRONT", 300)
    for path in (FIXTURE, _synthetic(tmp_path, 12000)):
        assert _dump(path, chunk, True, monkeypatch) == _dump(path, chunk, False, monkeypatch)


@pytest.mark.parametrize("seed", range(4))
def test_fuzzed(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(T, "CACHES_UPFRONT", 300)
    path = _fuzzed(_synthetic(tmp_path, 6000), tmp_path / "fz.txt", seed)
    for chunk in (None, 211):
        assert _dump(path, chunk, True, monkeypatch) == _dump(path, chunk, False, monkeypatch)


def test_fuzzed_fast_lines_only(tmp_path, monkeypatch):
    # no raw lines: the C builder reads all of it (bad lines skipped, odd masks and names)
    monkeypatch.setattr(T, "CACHES_UPFRONT", 300)
    src = _synthetic(tmp_path, 6000)
    rng = random.Random(9)
    ls = src.read_text().splitlines(True)
    for _ in range(100):
        i = rng.randrange(len(ls))
        ls[i] = rng.choice([ls[i][:rng.randrange(len(ls[i]))] + "\n", ls[i].replace("name=", "name=\xff"),
                            ls[i].replace("call_site=", "call_site=x"), "garbage\n", ls[rng.randrange(len(ls))]])
    path = tmp_path / "fast.txt"
    path.write_text("".join(ls))
    for chunk in (None, 150):
        assert _dump(path, chunk, True, monkeypatch) == _dump(path, chunk, False, monkeypatch)


def test_bad_line_raises_alike(tmp_path, monkeypatch):
    path = tmp_path / "bad.txt"
    path.write_text(FIXTURE.read_text() + "not a trace line\n")
    msgs = []
    for fast in (True, False):
        monkeypatch.setattr(T, "FAST_BUILD", fast)
        with pytest.raises(T.TraceFormatError) as exc:
            T.read_trace(path)
        msgs.append(str(exc.value))
    assert msgs[0] == msgs[1]


_RAW_EDITS = [
    ("kmalloc:", "kmalloc_node:"), ("kmem_cache_alloc:", "kmem_cache_alloc_node:"),
    ("mm_page_free:", "mm_page_free_direct:"), ("mm_page_free:", "mm_pagevec_free:"),
    (" node=-1", ""), (" accounted=false", ""), (" accounted=true", ""), (" bytes_alloc=", " bytes_alloc=-"),
    ("bytes_req=", "bytes_req=0x"), ("order=", "order=x"), ("order=0", "order=99"), ("order=", "order=-"),
    ("ptr=", "ptr=  (null) old="), ("ptr=", "ptr=-"), ("ptr=", "ptr=0000000000000000"), ("pfn=0x", "pfn=-0x"),
    ("pfn=0x", "pfn=0x123456789abcdef0123"), ("gfp_flags=", "gfp_flags=GFP_TEMPORARY|"),
    ("gfp_flags=", "gfp_flags=0x1ffffffff|"), ("gfp_flags=", "gfp_flags=__GFP_HIGHMEM|__GFP_DMA|"),
    (" name=", " name= "), (" name=", " "), ("call_site=", "call_site=0xffffffff"), ("call_site=", "x="),
    (" bytes_alloc=", " "), ("] ", "] 99999 "), ("[000]", "[70000]"),
]


@pytest.mark.parametrize("seed", range(5))
def test_raw_lines(tmp_path, monkeypatch, seed):
    # the spellings of old kernels and broken fields: built in C where the Python loop cannot
    # fail on them, else handed to it, with the same result either way
    monkeypatch.setattr(T, "CACHES_UPFRONT", 300)
    rng = random.Random(seed)
    ls = _synthetic(tmp_path, 5000).read_text().splitlines(True)
    for _ in range(300):
        i = rng.randrange(len(ls))
        old, new = rng.choice(_RAW_EDITS[:4] if rng.random() < 0.7 else _RAW_EDITS)
        ls[i] = ls[i].replace(old, new, 1)
    path = tmp_path / "raw.txt"
    path.write_text("".join(ls))
    for chunk in (None, 173):
        assert _dump(path, chunk, True, monkeypatch) == _dump(path, chunk, False, monkeypatch)


@pytest.mark.parametrize("where", [0.1, 0.6, 0.97])
def test_handover_late(tmp_path, monkeypatch, where):
    # a line only the Python loop may read, chunks into the capture: the maps go over to it
    monkeypatch.setattr(T, "CACHES_UPFRONT", 300)
    ls = _synthetic(tmp_path, 30000).read_text().splitlines(True)
    i = int(len(ls) * where)
    while "mm_page_free:" not in ls[i]:
        i += 1
    ls[i] = ls[i].replace("order=", "order=x")
    path = tmp_path / "late.txt"
    path.write_text("".join(ls))
    for chunk in (None, 2000):
        assert _dump(path, chunk, True, monkeypatch) == _dump(path, chunk, False, monkeypatch)


def test_damaged_gz_alike(tmp_path, monkeypatch):
    import gzip
    data = gzip.compress(_synthetic(tmp_path, 20000).read_bytes())
    path = tmp_path / "cut.gz"
    path.write_bytes(data[:len(data) * 2 // 3])
    seen = []
    for fast in (True, False):
        monkeypatch.setattr(T, "FAST_BUILD", fast)
        monkeypatch.setattr(T, "CACHES_UPFRONT", 300)
        got = []
        with pytest.raises(T.TraceFormatError) as exc:
            for s in T.trace_chunks(path, True, None, 500):
                got.append(bytes(s._rec))
        seen.append((got, str(exc.value)))
    assert seen[0] == seen[1]


def test_stopped_early(tmp_path, monkeypatch):
    # a caller that stops after the first stream: the parsing thread ends, the file is closed
    import threading
    monkeypatch.setattr(T, "CACHES_UPFRONT", 300)
    path = _synthetic(tmp_path, 30000)
    before = threading.active_count()
    with open(path, "rb") as f:
        chunks = T.trace_chunks(f, True, None, 500)
        first = next(chunks)
        chunks.close()
        assert not f.closed             # the caller's file stays open
    assert len(first) >= 500 and threading.active_count() == before
