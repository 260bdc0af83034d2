"""The buddy allocator: alloc_pages + free_pages through pyalloc.Machine, C core vs model.

Targets (DESIGN.md "Performance design"):
  * C pair >= 10x faster than the model pair (groups pair-order0-1G, pair-order3-1G);
  * C order-0 pair <= 3x two bare cffi calls (compare pair-order0-1G[c] with
    reference-two-cffi-calls);
  * a 64 GiB machine's pair within 1.3x of a 256 MiB machine's (group pair-order0-by-size);
  * booting a 64 GiB machine < 0.5 s (group boot-64G; RSS: bench/rss_boot.py).
"""

from __future__ import annotations

import pytest

import pyalloc
from conftest import bench_two_cffi_calls

GFP = "GFP_KERNEL"      # the common user spelling: a string, parsed from the cache
# Warm the interpreter and caches before timing: without it the first benchmark of a
# session calibrates to 1 iteration per round and reads up to 2x high.
WARM = {"warmup": True, "warmup_iterations": 20000}


def counters(m: pyalloc.Machine) -> dict:
    snap = m.snapshot()
    return {
        "pgalloc": sum(z["pgalloc"] for z in snap["zones"]),
        "pgfree": snap["vm"]["pgfree"],
        "nr_free": sum(z["nr_free_pages"] for z in snap["zones"]),
        "slowpath": m._core.vm_info()["slowpath_entries"],
    }


def calls_timed(benchmark) -> int:
    """How many times the benchmarked function ran inside the timed rounds (a lower bound)."""
    meta = benchmark.stats
    return meta.stats.rounds * meta.iterations


def assert_fast_pairs(benchmark, before: dict, after: dict, order: int) -> None:
    """Each call was one successful fast-path alloc of 2**order pages plus its free."""
    pages = after["pgalloc"] - before["pgalloc"]
    assert pages >= calls_timed(benchmark) << order, (before, after)
    assert after["pgfree"] - before["pgfree"] == pages, (before, after)
    assert after["nr_free"] == before["nr_free"], (before, after)
    assert after["slowpath"] == before["slowpath"], "the pair entered the allocator slow path"


def _pair_benchmark(benchmark, m: pyalloc.Machine, order: int) -> None:
    alloc = m.alloc_pages
    free = m.free_pages

    def pair():
        pfn = alloc(GFP, order)
        free(pfn, order)
        return pfn

    before = counters(m)
    pfn = benchmark(pair)
    after = counters(m)
    assert isinstance(pfn, int)
    assert_fast_pairs(benchmark, before, after, order)


@pytest.mark.benchmark(group="pair-order0-1G", **WARM)
def test_pair_order0(benchmark, backend, make_machine):
    _pair_benchmark(benchmark, make_machine("1G", backend), 0)


@pytest.mark.benchmark(group="pair-order3-1G", **WARM)
def test_pair_order3(benchmark, backend, make_machine):
    _pair_benchmark(benchmark, make_machine("1G", backend), 3)


@pytest.mark.benchmark(group="pair-order0-by-size", **WARM)
@pytest.mark.parametrize("mem", ["256M", "64G"])
def test_pair_order0_by_size(benchmark, backend, mem, make_machine):
    _pair_benchmark(benchmark, make_machine(mem, backend), 0)


@pytest.mark.benchmark(group="pair-order0-1G", **WARM)
def test_pair_order0_method_lookup(benchmark, backend, make_machine):
    """As test_pair_order0, but spelled m.alloc_pages(...) each time (attribute lookup included)."""
    m = make_machine("1G", backend)

    def pair():
        pfn = m.alloc_pages(GFP, 0)
        m.free_pages(pfn, 0)
        return pfn

    before = counters(m)
    pfn = benchmark(pair)
    assert isinstance(pfn, int)
    assert_fast_pairs(benchmark, before, counters(m), 0)


# -- references: what the pair costs without the Machine layer ---------------------------

@pytest.mark.benchmark(group="pair-order0-1G", **WARM)
def test_reference_two_cffi_calls(benchmark):
    bench_two_cffi_calls(benchmark)


@pytest.mark.benchmark(**WARM)
@pytest.mark.parametrize("order", [0, 3])
def test_reference_bare_c_pair(benchmark, make_machine, order):
    """lib.pa_alloc_pages + lib.pa_free_pages on the machine's handle: the C work plus cffi."""
    pytest.importorskip("pyalloc._cbackend")
    from pyalloc._core import lib
    benchmark.group = f"pair-order{order}-1G"
    m = make_machine("1G", "c")
    h = m._core.handle
    alloc, free = lib.pa_alloc_pages, lib.pa_free_pages
    flags = pyalloc.gfp.parse(GFP)

    def pair():
        pfn = alloc(h, flags, order)
        free(h, pfn, order)
        return pfn

    before = counters(m)
    pfn = benchmark(pair)
    assert isinstance(pfn, int) and pfn >= 0
    assert_fast_pairs(benchmark, before, counters(m), order)


# -- machine start -------------------------------------------------------------------------

@pytest.mark.benchmark(group="boot-64G")
def test_boot_64g(benchmark, backend):
    def boot():
        m = pyalloc.Machine(mem="64G", backend=backend)
        nr = m.nr_pages
        m.close()
        return nr

    pyalloc.Machine(mem="1M", backend=backend).close()      # imports done outside the timing
    nr = benchmark.pedantic(boot, rounds=10, iterations=1, warmup_rounds=1)
    assert nr == (64 << 30) >> 12
