"""Replaying a capture: m.run against the per-call path on a capture-like stream (issue 17).

Targets, each measured within one run (group replay-nofail-cold):
  * m.run >= 10 M events/s on the C core, and >= 10x the per-call path replaying the same
    operations, on a stream with __GFP_NOFAIL ops and cold memory: every round boots a new
    machine, and the live set grows through the whole capture, so most pages the replay
    hands out were never touched on the host;
  * the host's peak RSS of ``pyalloc replay`` on that capture (a subprocess: ru_maxrss).

``synthesize`` repeats the 301-event 6.18 excerpt (tests/fixtures/ftrace-kmem.txt) with
its pointers and pfns shifted per copy, so every copy allocates anew; one slab allocation
in four of GFP_KERNEL becomes GFP_NOFS|__GFP_NOFAIL (alloc_buffer_head's mask, the real
captures' NOFAIL ops) and the user page faults carry __GFP_ZERO as do_anonymous_page()'s.
``pytest bench/bench_replay.py --benchmark-only -s`` prints the numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pyalloc

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ftrace-kmem.txt"
COPIES = 1000
MEM = "8G"
_PTR = re.compile(r"ptr=([0-9a-f]{16})")
_PFN = re.compile(r"pfn=(0x[0-9a-f]+)")


def synthesize(copies: int = COPIES) -> str:
    """The excerpt *copies* times, pointers and pfns shifted per copy (see the module docstring)."""
    lines = FIXTURE.read_text().splitlines()
    head = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if not ln.startswith("#")]
    slab_allocs = 0
    edited = []
    for ln in body:
        if ("kmalloc:" in ln or "kmem_cache_alloc:" in ln) and "gfp_flags=GFP_KERNEL " in ln:
            slab_allocs += 1
            if slab_allocs % 4 == 0:
                ln = ln.replace("gfp_flags=GFP_KERNEL ", "gfp_flags=GFP_NOFS|__GFP_NOFAIL ")
        if "mm_page_alloc:" in ln and "GFP_HIGHUSER_MOVABLE|__GFP_COMP" in ln:
            ln = ln.replace("GFP_HIGHUSER_MOVABLE|__GFP_COMP", "GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP")
        edited.append(ln)
    out = list(head)
    for c in range(copies):
        def ptr(mo, c=c):
            v = int(mo.group(1), 16)
            return f"ptr={(v + (c << 32)) & ((1 << 64) - 1):016x}" if v else mo.group(0)
        def pfn(mo, c=c):
            return f"pfn={int(mo.group(1), 16) + (c << 24):#x}"
        for ln in edited:
            out.append(_PFN.sub(pfn, _PTR.sub(ptr, ln)))
    return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "kmem-nofail.txt"
    path.write_text(synthesize())
    return path, pyalloc.read_trace(path)


def per_call(m, stream):
    """The stream's ops as per-call closures' arguments (built outside the timing); the
    caches are made when m.run makes a trace's: first, or right before their first op."""
    first = {f: stream.caches[c] for c, f in stream.cache_first_op.items()}
    ops = [("create", spec, None, None, None, None, None) for c, spec in enumerate(stream.caches)
           if c not in stream.cache_first_op]
    for i in range(len(stream)):
        op = stream.op(i)
        if i in first:
            ops.append(("create", first[i], None, None, None, None, None))
        ops.append((op["kind"], op["arg"], op["gfp"], op["cpu"], op["caller"], op["cache"], op["handle"]))
    return ops


def replay_per_call(m, ops) -> list:
    out: list = []
    append = out.append
    kmalloc, kfree, calloc, cfree = m.kmalloc, m.kfree, m.kmem_cache_alloc, m.kmem_cache_free
    alloc_pages, free_pages = m.alloc_pages, m.free_pages
    caches: dict = {}
    for kind, arg, gfp, cpu, caller, cache, h in ops:
        if kind == "create":
            caches[arg[0]] = m._stream_cache(*arg)
            continue
        if cache is not None:
            cache = caches[cache]
        if kind == "kmalloc":
            append(kmalloc(arg, gfp, cpu, caller))
        elif kind == "kmem_cache_alloc":
            append(calloc(cache, gfp, cpu, caller))
        elif kind == "kfree":
            kfree(None if h is None else out[h], cpu, caller)
            append(None)
        elif kind == "kmem_cache_free":
            cfree(cache, None if h is None else out[h], cpu, caller)
            append(None)
        elif kind == "alloc_pages":
            append(alloc_pages(gfp, arg, cpu))
        else:
            free_pages(out[h], arg, cpu)
            append(None)
    return out


@pytest.mark.benchmark(group="replay-nofail-cold")
def test_replay_stream_vs_per_call_c(benchmark, capture):
    pytest.importorskip("pyalloc._cbackend")
    _path, stream = capture
    events = stream.trace_stats["events"]
    nofail = sum(1 for i in range(len(stream)) if stream.op(i)["gfp"] & pyalloc.gfp.GFP_NOFAIL)
    machines = []

    def setup():
        m = pyalloc.Machine(mem=MEM, cpus=stream.trace_stats["cpus"], backend="c")
        machines.append(m)
        return (m,), {}

    result = benchmark.pedantic(lambda m: m.run(stream), setup=setup, rounds=5, iterations=1)
    assert result.errors == []
    best = benchmark.stats.stats.min
    # one run, both paths, cold machines of one shape: the ratio the issue asks for
    a = pyalloc.Machine(mem=MEM, cpus=stream.trace_stats["cpus"], backend="c")
    b = pyalloc.Machine(mem=MEM, cpus=stream.trace_stats["cpus"], backend="c")
    ops = per_call(a, stream)
    t0 = time.perf_counter()
    expected = replay_per_call(a, ops)
    t_call = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = b.run(stream)
    t_stream = time.perf_counter() - t0
    assert [got[i] for i in range(len(stream))] == [x if isinstance(x, int) else None for x in expected]
    ratio = t_call / t_stream
    benchmark.extra_info.update(ops=len(stream), events=events, nofail_ops=nofail, events_per_s=events / best,
                                stream_speedup=ratio)
    print(f"\nreplay (C, cold, {nofail} NOFAIL ops of {len(stream)}): m.run {events / best / 1e6:.1f} M events/s "
          f"(best of 5; target >= 10); in one run: stream {t_stream * 1e3:.1f} ms vs per-call "
          f"{t_call * 1e3:.1f} ms = {ratio:.1f}x (target >= 10x)")
    for m in machines + [a, b]:
        m.close()


_HWM = "def _hwm():\n    return int(next(ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')).split()[1])\n"
_RSS = _HWM + """
import sys
from pyalloc.cli import main
sys.stdout = open("/dev/null", "w")
main(["replay", sys.argv[1], "--mem", sys.argv[2]])
print(_hwm(), file=sys.stderr)
"""
_BASE = _HWM + "import sys, pyalloc\nprint(_hwm(), file=sys.stderr)"


@pytest.mark.benchmark(group="replay-rss")
def test_replay_host_rss(benchmark, capture):
    pytest.importorskip("pyalloc._cbackend")
    path, _stream = capture

    def rss(code, *args) -> int:
        out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
        return int(out.stderr.strip().splitlines()[-1])

    peak = benchmark.pedantic(lambda: rss(_RSS, str(path), MEM), rounds=1, iterations=1)
    base = rss(_BASE)
    benchmark.extra_info.update(peak_kib=peak, import_kib=base)
    print(f"\npyalloc replay of {path.name}: host peak RSS {peak / 1024:.1f} MiB "
          f"({(peak - base) / 1024:.1f} MiB above the import's {base / 1024:.1f} MiB)")
