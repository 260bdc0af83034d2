"""Reclaim under pressure, C core vs model (issue: GFP under memory pressure).

* direct-reclaim-32: one GFP_KERNEL order-0 allocation on a machine at its min
  watermark whose memory is clean page cache: direct reclaim frees 32 pages,
  then the allocation succeeds.  The state is rebuilt (untimed) before each
  round.  The same on a 64 MiB and a 1 GiB machine shows the work follows the
  pages scanned, not the size of memory.
* touch-swap-100k: a process touches 100k pages (400 MiB) on a 256 MiB machine
  with 512 MiB of swap: about 40% of it goes to swap on the way.
"""

from __future__ import annotations

import pytest

import pyalloc

DRAIN = "__GFP_NOWARN"


def _at_min_with_cache(m, pages):
    m.read_file("/var/cache/big", pages)
    while m.alloc_pages(DRAIN) is not None:
        pass


@pytest.mark.parametrize("mem", ["64M", "1G"])
def test_direct_reclaim_32(benchmark, backend, mem):
    if backend == "model" and mem == "1G":
        pytest.skip("the model fills 1 GiB of cache too slowly for a benchmark round")
    m = pyalloc.Machine(mem=mem, backend=backend)
    pages = m.nr_pages + m.nr_pages // 4
    benchmark.group = "direct-reclaim-32"
    benchmark.extra_info["mem"] = mem
    costs = []

    def setup():
        _at_min_with_cache(m, pages)

    def target():
        assert m.alloc_pages("GFP_KERNEL") is not None
        costs.append(m.last_alloc)

    benchmark.pedantic(target, setup=setup, rounds=30 if backend == "c" else 10, iterations=1)
    assert all(c.slept and c.reclaimed >= 32 and c.oom_victim is None for c in costs), costs[:3]
    m.check()
    m.close()


def test_touch_swap_100k(benchmark, backend):
    benchmark.group = "touch-swap-100k"
    machines = []

    def setup():
        m = pyalloc.Machine(mem="256M", swap="512M", backend=backend)
        machines.append(m)
        return (m, m.spawn("big")), {}

    def target(m, pid):
        assert m.touch(pid, 100_000) == 100_000

    benchmark.pedantic(target, setup=setup, rounds=3 if backend == "c" else 1, iterations=1)
    m = machines[-1]
    c = m.reclaim_counters()
    assert c["pswpout"] > 30_000 and c["oom_kill"] == 0
    benchmark.extra_info["pswpout"] = c["pswpout"]
    m.check()
    for m in machines:
        m.close()


@pytest.mark.parametrize("mem", ["64M", "1G"])
def test_kswapd_catch_up(benchmark, backend, mem):
    """kswapd-catch-up: a GFP_ATOMIC burst leaves kswapd behind; one m.idle() lets it balance the
    node.  The work follows the pages kswapd scanned (extra_info), not the size of memory: kswapd
    works in SWAP_CLUSTER_MAX batches and stops at the high watermark."""
    if backend == "model" and mem == "1G":
        pytest.skip("the model fills 1 GiB of cache too slowly for a benchmark round")
    m = pyalloc.Machine(mem=mem, backend=backend)
    m.read_file("/var/cache/big", m.nr_pages + m.nr_pages // 4)
    benchmark.group = "kswapd-catch-up"
    benchmark.extra_info["mem"] = mem
    scanned = []

    def setup():
        while m.alloc_pages("GFP_ATOMIC|__GFP_NOWARN") is not None:
            pass
        scanned.append(m.reclaim_counters()["pgscan_kswapd"])

    def target():
        m.idle(1_000_000)

    benchmark.pedantic(target, setup=setup, rounds=10 if backend == "c" else 3, iterations=1)
    benchmark.extra_info["pgscan_kswapd"] = m.reclaim_counters()["pgscan_kswapd"] - scanned[0]
    m.check()
    m.close()
