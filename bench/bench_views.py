"""The views beside /proc: what a scrape of the exported tree costs, C core vs model.

* export-update: one Exporter.update after a tick of the churn workload (what
  `pyalloc serve` does each interval): every proc/, sys/kernel/slab/ and debugfs file
  rendered, the changed ones rewritten atomically;
* slab-walk: slab_cache_for_each_allocated_object over every cache (the drgn helper
  walk), which goes through the read-only introspect calls;
* pageblock-map: the plot's walk over physical memory, one page_state call per block.

Target: export-update of a 256 MiB machine stays far under the default 1 s serve interval.
Rendering is Python on both backends, so the two are close; export-update is dominated
by writing files (measured 50-110 ms on a shared 2-core host, render_tree alone ~2.5 ms).
"""

from __future__ import annotations

import pytest

import pyalloc
from pyalloc.tools import export, serve
from pyalloc import helpers, plot


@pytest.fixture
def churned(backend):
    with pyalloc.Machine(mem="256M", backend=backend) as m:
        steps = serve.demo(m)
        next(steps)
        next(steps)
        yield m, steps


@pytest.mark.benchmark(group="export-update")
def test_export_update(benchmark, churned, tmp_path):
    m, steps = churned
    ex = export.Exporter(tmp_path)
    ex.update(m)

    def tick():
        next(steps)
        return ex.update(m)

    changed = benchmark.pedantic(tick, rounds=5, iterations=1)
    assert changed > 0
    assert benchmark.stats.stats.max < 1.0


@pytest.mark.benchmark(group="slab-walk")
def test_slab_walk(benchmark, churned):
    m, _ = churned

    def walk():
        return sum(1 for c in helpers.for_each_slab_cache(m)
                   for _ in helpers.slab_cache_for_each_allocated_object(m, c))

    live = benchmark.pedantic(walk, rounds=5, iterations=1)
    assert live == sum(len(c) for c in helpers.for_each_slab_cache(m))


@pytest.mark.benchmark(group="pageblock-map")
def test_pageblock_map(benchmark, churned):
    m, _ = churned
    mts, free = benchmark.pedantic(plot.pageblock_map, args=(m,), rounds=5, iterations=1)
    assert sum(free) == sum(z["nr_free_pages"] for z in m.snapshot()["zones"])
