"""vmalloc through pyalloc.Machine, C core vs model.

Targets of the vmalloc issue:
  * vmalloc(64 KiB) + vfree per call, C against the model (group vmalloc-64k);
  * vmalloc cost with 100 000 live areas against 100 (groups vmalloc-live-*):
    the bookkeeping must not grow linearly with the number of areas.

The areas kept live are one page each (two with the guard), on a machine large
enough that the pages never run out; after each timed pair the machine must
hold exactly the areas it held before.
"""

from __future__ import annotations

import pytest

import pyalloc

WARM = {"warmup": True, "warmup_iterations": 200}


def live_machine(backend: str, live: int) -> pyalloc.Machine:
    m = pyalloc.Machine(mem="2G", backend=backend)
    # every second area is freed again: live areas with holes between them, so the
    # first-fit search has real work to do before it reaches free space
    keep = [m.vmalloc(4096, caller="bench+0x0/0x1") for _ in range(2 * live)]
    for addr in keep[1::2]:
        m.vfree(addr)
    return m


@pytest.mark.benchmark(group="vmalloc-64k", **WARM)
def test_vmalloc_64k_pair(benchmark, backend):
    m = live_machine(backend, 100)
    before = len(m._vm_areas)

    def pair():
        addr = m.vmalloc(64 << 10, caller="bench+0x0/0x1")
        m.vfree(addr)
        return addr

    addr = benchmark(pair)
    assert m.is_vmalloc_addr(addr)
    assert len(m._vm_areas) == before
    m.close()


@pytest.mark.parametrize("live", [100, 20_000, 100_000])
def test_vmalloc_with_many_live_areas(benchmark, backend, live):
    if backend == "model" and live == 100_000:
        pytest.skip("the model builds 100 000 areas too slowly for a bench run; it is measured at 20 000")
    benchmark.group = f"vmalloc-live-{backend}"
    m = live_machine(backend, live)
    before = len(m._vm_areas)

    def pair():
        addr = m.vmalloc(64 << 10, caller="bench+0x0/0x1")
        m.vfree(addr)
        return addr

    addr = benchmark.pedantic(pair, rounds=200, iterations=5, warmup_rounds=20)
    assert m.is_vmalloc_addr(addr) and len(m._vm_areas) == before
    m.close()
