"""The slab allocator: kmalloc + kfree and kmem_cache_alloc + kmem_cache_free through
pyalloc.Machine, C core vs model.

Targets (as for the buddy pairs, bench_buddy.py):
  * C pair >= 10x faster than the model pair (groups slab-kmalloc64, slab-kmalloc3000,
    slab-cache128);
  * C kmalloc-64 pair <= 3x two bare cffi calls (compare slab-kmalloc64[c] with
    reference-two-cffi-calls in the same group);
  * the C pair against the bare lib.pa_kmalloc + lib.pa_kfree pair on the machine's
    handle (reference-bare-kmalloc-pair): what the Machine layer adds.

Every pair must stay on the per-cpu fast path: the machine is warmed so the cpu slab of
the cache exists before the timing, and afterwards the counters must show no new slab,
no page allocated or freed, no allocator slow path, and no object left behind.
"""

from __future__ import annotations

import pytest

import pyalloc
from pyalloc._abi import PAGE_OFFSET
from conftest import bench_two_cffi_calls

GFP = "GFP_KERNEL"      # the common user spelling: a string, parsed from the cache
GFP_KERNEL = 0xcc0      # its value, for the bare cffi reference
# Warm the interpreter and caches before timing: without it the first benchmark of a
# session calibrates to 1 iteration per round and reads up to 2x high.
WARM = {"warmup": True, "warmup_iterations": 20000}

# The slab warm-up: objects of these kmalloc sizes stay live (and every third is freed),
# so the kmalloc caches hold partial slabs and a cpu slab when the timing starts.
SLAB_WARM_SIZES = (8, 64, 96, 128, 192, 512, 1000, 3000)
SLAB_WARM_ALLOCS = 240


def slabinfo_rows(m: pyalloc.Machine) -> dict[str, tuple[int, ...]]:
    """name -> (active_objs, num_objs, objsize, objperslab, pagesperslab, active_slabs, num_slabs)."""
    rows = {}
    for line in m.proc("slabinfo").splitlines()[2:]:
        f = line.split()
        rows[f[0]] = tuple(map(int, f[1:6] + f[13:15]))
    return rows


def counters(m: pyalloc.Machine, cache) -> dict:
    vm = m._core.vm_info()
    snap = m.snapshot()
    row = slabinfo_rows(m)[cache.name]
    return {
        "pgalloc": sum(z["pgalloc"] for z in snap["zones"]),
        "pgfree": vm["pgfree"],
        "slowpath": vm["slowpath_entries"],
        "slab_pages": vm["nr_slab_reclaimable"] + vm["nr_slab_unreclaimable"],
        "num_objs": row[1],
        "num_slabs": row[6],
        "live": m._core.cache_info(cache._id)["live"],
    }


def calls_timed(benchmark) -> int:
    """How many times the benchmarked function ran inside the timed rounds (a lower bound)."""
    meta = benchmark.stats
    return meta.stats.rounds * meta.iterations


def assert_fast_pairs(benchmark, before: dict, after: dict) -> None:
    """Each call was an alloc + free served from the cpu slab: nothing else moved."""
    assert calls_timed(benchmark) > 0
    assert after == before, ("the pair left the slab fast path", before, after)


def warm_slabs(m: pyalloc.Machine) -> list[int]:
    """Leave SLAB_WARM_ALLOCS kmalloc objects of mixed size live, minus every third one."""
    live = [m.kmalloc(SLAB_WARM_SIZES[i % len(SLAB_WARM_SIZES)], GFP) for i in range(SLAB_WARM_ALLOCS)]
    assert all(isinstance(a, int) for a in live), "warm-up kmalloc failed"
    kept = []
    for i, addr in enumerate(live):
        if i % 3 == 2:
            m.kfree(addr)
        else:
            kept.append(addr)
    return kept


@pytest.fixture
def slab_machine(make_machine):
    """slab_machine(backend): a warm 1 GiB machine (buddy and slab), closed after the test."""
    def make(backend: str) -> pyalloc.Machine:
        m = make_machine("1G", backend)
        warm_slabs(m)
        return m
    return make


def kmalloc_cache(m: pyalloc.Machine, size: int):
    """The kmalloc cache that serves size (kmalloc-64, kmalloc-4k, ...)."""
    name = "kmalloc-" + (f"{size >> 10}k" if size >= 1024 else str(size))
    return next(c for c in m._caches.values() if c.name == name)


def _kmalloc_benchmark(benchmark, m: pyalloc.Machine, size: int, cache_size: int) -> None:
    kmalloc = m.kmalloc
    kfree = m.kfree
    cache = kmalloc_cache(m, cache_size)

    def pair():
        addr = kmalloc(size, GFP)
        kfree(addr)
        return addr

    pair()                              # the cpu slab of this cache exists before counting
    before = counters(m, cache)
    addr = benchmark(pair)
    after = counters(m, cache)
    assert isinstance(addr, int) and addr >= PAGE_OFFSET
    again = kmalloc(size, GFP)          # the cpu freelist is LIFO: the same object again
    assert again == addr and m.ksize(again) == cache_size
    kfree(again)
    assert_fast_pairs(benchmark, before, after)


@pytest.mark.benchmark(group="slab-kmalloc64", **WARM)
def test_kmalloc_pair_64(benchmark, backend, slab_machine):
    _kmalloc_benchmark(benchmark, slab_machine(backend), 64, 64)


@pytest.mark.benchmark(group="slab-kmalloc3000", **WARM)
def test_kmalloc_pair_3000(benchmark, backend, slab_machine):
    _kmalloc_benchmark(benchmark, slab_machine(backend), 3000, 4096)


@pytest.mark.benchmark(group="slab-cache128", **WARM)
def test_kmem_cache_pair_128(benchmark, backend, slab_machine):
    m = slab_machine(backend)
    cache = m.kmem_cache_create("bench_obj_128", 128)
    held = [m.kmem_cache_alloc(cache, GFP) for _ in range(40)]    # more than one slab
    for addr in held[::2]:
        m.kmem_cache_free(cache, addr)
    alloc = m.kmem_cache_alloc
    free = m.kmem_cache_free

    def pair():
        addr = alloc(cache, GFP)
        free(cache, addr)
        return addr

    pair()
    before = counters(m, cache)
    addr = benchmark(pair)
    after = counters(m, cache)
    assert isinstance(addr, int) and addr >= PAGE_OFFSET
    again = alloc(cache, GFP)           # the cpu freelist is LIFO: the same object again
    assert again == addr
    free(cache, again)
    assert before["live"] == len(held) - len(held[::2])
    assert_fast_pairs(benchmark, before, after)
    for addr in held[1::2]:
        m.kmem_cache_free(cache, addr)
    m.kmem_cache_destroy(cache)


# -- references: what the pair costs without the Machine layer ---------------------------

@pytest.mark.benchmark(group="slab-kmalloc64", **WARM)
def test_reference_two_cffi_calls(benchmark):
    bench_two_cffi_calls(benchmark)


@pytest.mark.benchmark(group="slab-kmalloc64", **WARM)
def test_reference_bare_kmalloc_pair(benchmark, slab_machine):
    """lib.pa_kmalloc + lib.pa_kfree on the machine's handle: the C work plus cffi."""
    pytest.importorskip("pyalloc._cbackend")
    from pyalloc._core import lib
    assert pyalloc.gfp.parse(GFP) == GFP_KERNEL
    m = slab_machine("c")
    h = m._core.handle
    kmalloc, kfree = lib.pa_kmalloc, lib.pa_kfree
    cache = kmalloc_cache(m, 64)

    def pair():
        phys = kmalloc(h, 64, GFP_KERNEL, 0)
        kfree(h, phys, 0)
        return phys

    pair()
    before = counters(m, cache)
    phys = benchmark(pair)
    after = counters(m, cache)
    assert isinstance(phys, int) and phys >= 0
    again = kmalloc(h, 64, GFP_KERNEL, 0)
    assert again == phys and m.ksize(again + PAGE_OFFSET) == 64
    kfree(h, again, 0)
    assert_fast_pairs(benchmark, before, after)
