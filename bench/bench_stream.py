"""Operation streams: m.run() against the per-call path, against glibc, and what tracing costs.

Targets (issue 9), each measured within one run:
  * m.run on a 154k-event 6.18 kmem capture, parsed once: >= 5 M events/s on the C core
    and >= 10x the per-call path replaying the same operations (group capture-154k);
  * the kmalloc size mix of a real machine (about 50k live objects): C stream ns/op
    against glibc malloc/free running the same records in C (group kmalloc-mix), aim 1.5x;
  * trace parsing rate (lines/s) and the cost of tracing on (overhead ratio).

The real 154k-event capture is not in the repository: ../shared/fixtures has a 301-event
excerpt of it (tests/fixtures/ftrace-kmem.txt).  ``synthesize_capture`` writes a
154k-event trace in the same 6.18 text from the excerpt's own call sites, caches,
sizes, masks and event mix, with frees of live objects (hashed-looking pointers as
the kernel prints them), so the bench parses and runs a capture of the stated size.

Each ratio is printed and kept in the benchmark's extra_info; ``pytest bench/bench_stream.py
--benchmark-only -s`` shows them.
"""

from __future__ import annotations

import io
import random
import time
from array import array
from pathlib import Path

import pytest

import pyalloc
from pyalloc.machine.trace import parse_events

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ftrace-kmem.txt"
CAPTURE_EVENTS = 154_000
# the kmalloc size mix of the issue (size: allocations in the real capture)
SIZE_MIX = {8: 21800, 16: 13700, 32: 6700, 64: 8400, 96: 3800, 128: 8900, 192: 25200, 256: 2900,
            512: 9700, 1024: 2400, 2048: 186, 4096: 764, 8192: 1}
MIX_LIVE = 50_000
MIX_STEADY_OPS = 400_000
_results: dict[str, float] = {}


# -- the synthetic capture ---------------------------------------------------------------

def synthesize_capture(n_events: int = CAPTURE_EVENTS, seed: int = 154) -> str:
    """A 6.18 kmem trace of n_events lines modelled on the excerpt (see the module docstring)."""
    allocs, pages, kfree_sites, cache_free_sites = [], [], [], {}
    counts = {"alloc": 0, "page": 0, "kfree_null": 0, "free": 0, "page_free": 0}
    for _n, event, _cpu, _ts, f in parse_events(FIXTURE):
        if event in ("kmalloc", "kmem_cache_alloc"):
            allocs.append((event, f))
            counts["alloc"] += 1
        elif event == "mm_page_alloc":
            pages.append(f)
            counts["page"] += 1
        elif event == "kfree":
            kfree_sites.append(f["call_site"])
            counts["kfree_null" if f["ptr"] == "0000000000000000" else "free"] += 1
        elif event == "kmem_cache_free":
            cache_free_sites.setdefault(f["name"], []).append(f["call_site"])
            counts["free"] += 1
        else:
            counts["page_free"] += 1
    rnd = random.Random(seed)
    live: list = []
    live_pages: list = []
    used_ptrs: set = set()
    used_pfns: set = set()
    lines = ["# tracer: nop", "#", f"# entries-in-buffer/entries-written: {n_events}/{n_events}   #P:2", "#"]
    target = 3000
    ticks = 362_366_521
    null_share = counts["kfree_null"] / (counts["alloc"] + counts["free"] + counts["kfree_null"])
    page_share = counts["page"] / (counts["page"] + counts["alloc"])

    def new_ptr():
        while True:
            p = rnd.getrandbits(32)
            if p not in used_ptrs:
                used_ptrs.add(p)
                return p

    for _ in range(n_events):
        ticks += rnd.randrange(1, 4)
        prefix = f"            bash-4029    [{rnd.choice((0, 1)):03d}] ..... {ticks // 1000000:5d}.{ticks % 1000000:06d}: "
        r = rnd.random()
        grow = 0.5 + (target - len(live) - len(live_pages)) / (2 * target)
        if r < null_share:
            lines.append(prefix + f"kfree: call_site={rnd.choice(kfree_sites)} ptr=0000000000000000")
        elif rnd.random() < grow:
            if rnd.random() < page_share:
                f = rnd.choice(pages)
                while True:
                    pfn = rnd.randrange(0x100000, 0x600000)
                    if pfn not in used_pfns:
                        break
                used_pfns.add(pfn)
                live_pages.append(pfn)
                lines.append(prefix + f"mm_page_alloc: page={rnd.getrandbits(32):016x} pfn={pfn:#x} order=0 "
                             f"migratetype={f['migratetype']} gfp_flags={f['gfp_flags']}")
            else:
                event, f = rnd.choice(allocs)
                p = new_ptr()
                live.append((p, event, f.get("name")))
                name = f" name={f['name']}" if event == "kmem_cache_alloc" else ""
                lines.append(prefix + f"{event}: call_site={f['call_site']} ptr={p:016x}{name} "
                             f"bytes_req={f['bytes_req']} bytes_alloc={f['bytes_alloc']} "
                             f"gfp_flags={f['gfp_flags']} node=-1 accounted={f['accounted']}")
        elif live_pages and rnd.random() < page_share:
            pfn = live_pages.pop(rnd.randrange(len(live_pages)))
            used_pfns.discard(pfn)
            lines.append(prefix + f"mm_page_free: page={rnd.getrandbits(32):016x} pfn={pfn:#x} order=0")
        elif live:
            i = rnd.randrange(len(live))
            live[i], live[-1] = live[-1], live[i]
            p, event, name = live.pop()
            used_ptrs.discard(p)
            if event == "kmem_cache_alloc" and name in cache_free_sites:
                lines.append(prefix + f"kmem_cache_free: call_site={rnd.choice(cache_free_sites[name])} "
                             f"ptr={p:016x} name={name}")
            else:
                lines.append(prefix + f"kfree: call_site={rnd.choice(kfree_sites)} ptr={p:016x}")
        else:
            lines.append(prefix + f"kfree: call_site={rnd.choice(kfree_sites)} ptr=0000000000000000")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    path = tmp_path_factory.mktemp("capture") / "kmem-154k.txt"
    path.write_text(synthesize_capture())
    t0 = time.perf_counter()
    stream = pyalloc.read_trace(path)
    parse_s = time.perf_counter() - t0
    lines = stream.trace_stats["lines"]
    _results["parse_lines_per_s"] = lines / parse_s
    print(f"\ntrace parsing: {lines} lines in {parse_s:.3f} s = {lines / parse_s / 1e3:.0f} k lines/s; "
          f"{len(stream)} operations, {stream.trace_stats['events']} kmem events")
    return path, stream


def per_call_ops(m: pyalloc.Machine, stream: pyalloc.Stream):
    """The stream as a list of bound per-call functions and their arguments (built outside the timing)."""
    caches = {name: m.kmem_cache_create(name, size, align, flags, sheaf_capacity=cap)
              for name, size, align, flags, cap in stream.caches}
    ops = []
    for i in range(len(stream)):
        op = stream.op(i)
        kind, h = op["kind"], op["handle"]
        if kind == "kmalloc":
            ops.append((0, op["arg"], op["gfp"], op["cpu"], op["caller"]))
        elif kind == "kmem_cache_alloc":
            ops.append((1, caches[op["cache"]], op["gfp"], op["cpu"], op["caller"]))
        elif kind == "kfree":
            ops.append((2, h, op["cpu"], op["caller"]))
        elif kind == "kmem_cache_free":
            ops.append((3, caches[op["cache"]], h, op["cpu"], op["caller"]))
        elif kind == "alloc_pages":
            ops.append((4, op["gfp"], op["arg"]))
        elif kind == "free_pages":
            ops.append((5, h, op["arg"]))
        else:
            raise AssertionError(kind)
    return ops


def replay_per_call(m: pyalloc.Machine, ops) -> list:
    out = []
    append = out.append
    kmalloc, kfree, calloc, cfree = m.kmalloc, m.kfree, m.kmem_cache_alloc, m.kmem_cache_free
    alloc_pages, free_pages = m.alloc_pages, m.free_pages
    for op in ops:
        k = op[0]
        if k == 0:
            append(kmalloc(op[1], op[2], op[3], op[4]))
        elif k == 1:
            append(calloc(op[1], op[2], op[3], op[4]))
        elif k == 2:
            kfree(None if op[1] is None else out[op[1]], op[2], op[3])
            append(None)
        elif k == 3:
            cfree(op[1], None if op[2] is None else out[op[2]], op[3], op[4])
            append(None)
        elif k == 4:
            append(alloc_pages(op[1], op[2]))
        else:
            free_pages(out[op[1]], op[2])
            append(None)
    return out


MEM = "4G"


@pytest.mark.benchmark(group="capture-154k")
def test_capture_stream_c(benchmark, capture):
    pytest.importorskip("pyalloc._cbackend")
    _path, stream = capture
    machines = []

    def setup():
        m = pyalloc.Machine(mem=MEM, cpus=2, backend="c")
        m.run(pyalloc.Stream())         # nothing: but warms the caches' creation path
        machines.append(m)
        return (m,), {}

    def run(m):
        return m.run(stream)

    result = benchmark.pedantic(run, setup=setup, rounds=7, iterations=1)
    assert result.errors == [] and result.pos == len(stream)
    best = benchmark.stats.stats.min
    events = stream.trace_stats["events"]
    _results["stream_s"] = best
    benchmark.extra_info.update(ops=len(stream), events=events, events_per_s=events / best,
                                ops_per_s=len(stream) / best)
    print(f"\nm.run (C): {len(stream)} ops ({events} trace events) in {best * 1e3:.2f} ms = "
          f"{events / best / 1e6:.1f} M events/s, {len(stream) / best / 1e6:.1f} M ops/s")
    for m in machines:
        m.check()
        m.close()


@pytest.mark.benchmark(group="capture-154k")
def test_capture_per_call_c(benchmark, capture):
    pytest.importorskip("pyalloc._cbackend")
    _path, stream = capture
    machines = []

    def setup():
        m = pyalloc.Machine(mem=MEM, cpus=2, backend="c")
        machines.append(m)
        return (m, per_call_ops(m, stream)), {}

    benchmark.pedantic(replay_per_call, setup=setup, rounds=3, iterations=1)
    best = benchmark.stats.stats.min
    events = stream.trace_stats["events"]
    benchmark.extra_info.update(ops_per_s=len(stream) / best, events_per_s=events / best)
    print(f"\nper-call (C): {len(stream)} ops in {best * 1e3:.1f} ms = {events / best / 1e6:.2f} M events/s")
    # one run, both paths, same machine shape: the ratio the issue asks for
    a = pyalloc.Machine(mem=MEM, cpus=2, backend="c")
    b = pyalloc.Machine(mem=MEM, cpus=2, backend="c")
    ops = per_call_ops(a, stream)
    t0 = time.perf_counter()
    expected = replay_per_call(a, ops)
    t_call = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = b.run(stream)
    t_stream = time.perf_counter() - t0
    assert [result[i] for i in range(len(stream))] == [x if isinstance(x, int) else None for x in expected]
    assert a.proc("slabinfo") == b.proc("slabinfo") and a.proc("buddyinfo") == b.proc("buddyinfo")
    ratio = t_call / t_stream
    benchmark.extra_info["stream_speedup"] = ratio
    print(f"stream vs per-call in one run: {t_stream * 1e3:.2f} ms vs {t_call * 1e3:.1f} ms = {ratio:.1f}x "
          f"(target >= 10x); stream {events / t_stream / 1e6:.1f} M events/s (target >= 5)")
    assert ratio >= 10, f"m.run is only {ratio:.1f}x the per-call path"
    for m in machines + [a, b]:
        m.close()


# -- the kmalloc size mix against glibc ----------------------------------------------------

def size_mix_stream(seed: int = 50) -> pyalloc.Stream:
    """MIX_LIVE objects drawn from SIZE_MIX, then MIX_STEADY_OPS free+alloc steps, then free all."""
    rnd = random.Random(seed)
    sizes = list(SIZE_MIX)
    weights = [SIZE_MIX[s] for s in sizes]
    s = pyalloc.Stream()
    live = [s.kmalloc(size, "GFP_KERNEL") for size in rnd.choices(sizes, weights, k=MIX_LIVE)]
    draws = rnd.choices(sizes, weights, k=MIX_STEADY_OPS // 2)
    for size in draws:
        i = rnd.randrange(len(live))
        s.kfree(live[i])
        live[i] = s.kmalloc(size, "GFP_KERNEL")
    for h in live:
        s.kfree(h)
    return s


GLIBC_REF = r"""
#include <stdint.h>
#include <stdlib.h>
struct op { uint16_t kind; uint16_t cpu; uint32_t gfp; uint32_t caller; int32_t cache; int64_t handle; int64_t arg; };
/* the same records as pa_stream_run reads: kind 1 = kmalloc(arg), kind 2 = kfree(handle) */
int64_t run_glibc(const struct op *ops, int64_t n, void **slot)
{
    int64_t failed = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ops[i].kind == 1) {
            slot[i] = malloc((size_t)ops[i].arg);
            failed += slot[i] == NULL;
        } else {
            free(slot[ops[i].handle]);
        }
    }
    return failed;
}
"""


@pytest.fixture(scope="module")
def glibc(tmp_path_factory):
    cffi = pytest.importorskip("cffi")
    ffi = cffi.FFI()
    ffi.cdef("struct op { uint16_t kind; uint16_t cpu; uint32_t gfp; uint32_t caller; int32_t cache;"
             " int64_t handle; int64_t arg; };"
             "int64_t run_glibc(const struct op *ops, int64_t n, void **slot);")
    ffi.set_source("_pyalloc_bench_glibc", GLIBC_REF, extra_compile_args=["-O2"])
    tmp = tmp_path_factory.mktemp("glibc")
    so = ffi.compile(tmpdir=str(tmp), verbose=False)
    import importlib.util
    spec = importlib.util.spec_from_file_location("_pyalloc_bench_glibc", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ffi, mod.lib


@pytest.fixture(scope="module")
def mix():
    return size_mix_stream()


@pytest.mark.benchmark(group="kmalloc-mix")
def test_size_mix_stream_c(benchmark, mix):
    """On a warm machine: the stream ran once before, so its slab memory is mapped, as glibc's heap
    is after its first round (a fresh arena would add one host page fault per new page)."""
    pytest.importorskip("pyalloc._cbackend")
    m = pyalloc.Machine(mem="1G", cpus=2, backend="c")
    m.run(mix)
    result = benchmark.pedantic(lambda: m.run(mix), rounds=7, iterations=1)
    assert result.errors == [] and None not in result.addresses()[:MIX_LIVE]
    ns = benchmark.stats.stats.min / len(mix) * 1e9
    _results["mix_stream_ns"] = ns
    benchmark.extra_info["ns_per_op"] = ns
    print(f"\nkmalloc size mix, C stream (warm machine): {len(mix)} ops, {ns:.1f} ns/op")
    m.check()
    m.close()


@pytest.mark.benchmark(group="kmalloc-mix")
def test_size_mix_glibc_reference(benchmark, mix, glibc):
    ffi, lib = glibc
    ops = ffi.from_buffer("struct op[]", mix._ops)
    n = len(mix)
    slots = ffi.new("void *[]", n)
    failed = benchmark.pedantic(lib.run_glibc, args=(ops, n, slots), rounds=7, iterations=1)
    assert failed == 0
    ns = benchmark.stats.stats.min / n * 1e9
    benchmark.extra_info["ns_per_op"] = ns
    # one run, both warm (each ran the stream once before), best of three: the ratio
    m = pyalloc.Machine(mem="1G", cpus=2, backend="c")
    m.run(mix)
    t_stream = t_glibc = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        m.run(mix)
        t_stream = min(t_stream, time.perf_counter() - t0)
        t0 = time.perf_counter()
        lib.run_glibc(ops, n, slots)
        t_glibc = min(t_glibc, time.perf_counter() - t0)
    m.close()
    benchmark.extra_info["stream_over_glibc"] = t_stream / t_glibc
    print(f"\nkmalloc size mix, glibc malloc/free in C: {ns:.1f} ns/op; in one run: stream "
          f"{t_stream / n * 1e9:.1f} ns/op vs glibc {t_glibc / n * 1e9:.1f} ns/op = {t_stream / t_glibc:.2f}x "
          "(aim <= 1.5x)")


# -- tracing ---------------------------------------------------------------------------------

@pytest.mark.benchmark(group="trace-overhead")
def test_tracing_overhead(benchmark, capture):
    pytest.importorskip("pyalloc._cbackend")
    _path, stream = capture
    sinks = []

    def setup():
        sink = io.StringIO()
        sinks.append(sink)
        m = pyalloc.Machine(mem=MEM, cpus=2, backend="c", trace=sink)
        return (m,), {}

    def run(m):
        m.run(stream)
        m.close()       # drains the rest of the buffer into the sink

    benchmark.pedantic(run, setup=setup, rounds=5, iterations=1)
    traced = benchmark.stats.stats.min
    lines = sinks[-1].getvalue().count("\n")
    plain = _results.get("stream_s")
    if plain is None:
        m = pyalloc.Machine(mem=MEM, cpus=2, backend="c")
        t0 = time.perf_counter()
        m.run(stream)
        plain = time.perf_counter() - t0
        m.close()
    benchmark.extra_info.update(overhead=traced / plain, lines=lines)
    print(f"\ntracing on: {traced * 1e3:.1f} ms for {lines} trace lines (written as text) vs "
          f"{plain * 1e3:.2f} ms untraced = {traced / plain:.1f}x")


def test_parse_rate(capture):
    """Reported by the capture fixture; here only checked to have been measured."""
    assert _results["parse_lines_per_s"] > 0
    ops = array("q")
    assert ops.itemsize == 8
