"""Naming the CPU (and the caller) on every call: the per-call pairs plain, with cpu=,
with caller=, with both, and the on_cpu() block the arguments replace.

Target: on the C core, cpu= and caller= cost at most 1.10x the plain pair (compare
within a group: oncpu-kmalloc64, oncpu-pages-order0).  The CPU goes into the core
call (csrc/oncpu.c), so the pair stays one cffi call per operation.

Every pair must stay on its fast path, as in bench_slab.py and bench_buddy.py: the
counters afterwards show no new slab and no allocator slow path.
"""

from __future__ import annotations

import pytest

from bench_buddy import assert_fast_pairs as assert_fast_page_pairs, counters as page_counters
from bench_slab import GFP, WARM, assert_fast_pairs, counters, kmalloc_cache, warm_slabs

CALLER = "bench_oncpu.c:42"
CPU = 1


def _kmalloc_pairs(m):
    """The pair as each variant writes it (keyword arguments as users spell them)."""
    kmalloc, kfree = m.kmalloc, m.kfree

    def plain():
        addr = kmalloc(64, GFP)
        kfree(addr)
        return addr

    def cpu():
        addr = kmalloc(64, GFP, cpu=CPU)
        kfree(addr, cpu=CPU)
        return addr

    def caller():
        addr = kmalloc(64, GFP, caller=CALLER)
        kfree(addr, caller=CALLER)
        return addr

    def cpu_caller():
        addr = kmalloc(64, GFP, cpu=CPU, caller=CALLER)
        kfree(addr, cpu=CPU, caller=CALLER)
        return addr

    def on_cpu_block():
        with m.on_cpu(CPU):
            addr = kmalloc(64, GFP)
            kfree(addr)
        return addr

    return {"plain": plain, "cpu": cpu, "caller": caller, "cpu+caller": cpu_caller, "on_cpu-block": on_cpu_block}


@pytest.mark.benchmark(group="oncpu-kmalloc64", **WARM)
@pytest.mark.parametrize("variant", ["plain", "cpu", "caller", "cpu+caller", "on_cpu-block"])
def test_kmalloc_pair(benchmark, backend, make_machine, variant):
    m = make_machine("1G", backend)
    warm_slabs(m)
    cache = kmalloc_cache(m, 64)
    pair = _kmalloc_pairs(m)[variant]
    pair()                              # this CPU's cpu slab exists, the caller string is known
    before = counters(m, cache)
    addr = benchmark(pair)
    after = counters(m, cache)
    assert pair() == addr               # LIFO on that CPU's freelist: the same object again
    assert_fast_pairs(benchmark, before, after)
    assert m._core.vm_info()["cpu"] == 0


@pytest.mark.benchmark(group="oncpu-pages-order0", **WARM)
@pytest.mark.parametrize("variant", ["plain", "cpu", "on_cpu-block"])
def test_pages_pair(benchmark, backend, make_machine, variant):
    m = make_machine("1G", backend)
    alloc, free = m.alloc_pages, m.free_pages
    if variant == "plain":
        def pair():
            pfn = alloc(GFP, 0)
            free(pfn, 0)
            return pfn
    elif variant == "cpu":
        def pair():
            pfn = alloc(GFP, 0, cpu=CPU)
            free(pfn, 0, cpu=CPU)
            return pfn
    else:
        def pair():
            with m.on_cpu(CPU):
                pfn = alloc(GFP, 0)
                free(pfn, 0)
            return pfn

    pair()
    before = page_counters(m)
    pfn = benchmark(pair)
    assert isinstance(pfn, int)
    assert_fast_page_pairs(benchmark, before, page_counters(m), 0)
    assert m._core.vm_info()["cpu"] == 0
