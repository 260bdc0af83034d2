"""pyalloc.machine.vmap_area: alloc + free of a 64 KiB area, 100 vs 100 000 live areas.

Target (the issue: "a sorted structure or an augmented tree, not a scan"): the
pair's time grows with the tree depth, O(log n), so 1000x more live areas costs a
small factor, not 1000x.

The module fixture holds N live 16 KiB areas separated by N 16 KiB holes:
no hole holds 64 KiB, so the first fit must skip all N holes, which only the
subtree maxima make cheap, and lands at the tail.  The free merges the area back
into the tail, so every round starts from the same state.  Pure Python, shared by
both backends: there is no backend parameter.
"""

from __future__ import annotations

import pytest

from pyalloc.machine.vmap_area import VmapAreas
from pyalloc._abi import VMALLOC_END, VMALLOC_START

SIZE = 64 << 10
HOLE = 16 << 10
ROUNDS, ITERATIONS, WARMUP = 400, 25, 40     # 10 000 timed pairs per size
LIVE = [100, 100_000]

_medians: dict[int, float] = {}
_mins: dict[int, float] = {}


def fragmented(n: int) -> VmapAreas:
    """n live HOLE-sized areas, each followed by a free HOLE-sized hole."""
    va = VmapAreas(VMALLOC_START, VMALLOC_END)
    starts = [va.alloc(HOLE) for _ in range(2 * n)]
    for s in starts[1::2]:
        va.free(s)
    assert len(va) == n
    return va


@pytest.fixture(scope="module", params=LIVE, ids=lambda n: f"live{n}")
def areas(request):
    va = fragmented(request.param)
    va.check()
    yield request.param, va
    va.check()


@pytest.mark.benchmark(group="vmap_area-alloc-free-64K")
def test_alloc_free_64k(benchmark, areas, request):
    n, va = areas
    tail = VMALLOC_START + (2 * n - 1) * HOLE      # the last hole merged into the tail

    def pair():
        start = va.alloc(SIZE)
        va.free(start)
        return start

    got = benchmark.pedantic(pair, rounds=ROUNDS, iterations=ITERATIONS, warmup_rounds=WARMUP)
    assert got == tail, "the first fit should skip every 16 KiB hole and take the tail"
    assert len(va) == n and next(iter(va.free_ranges())) == (VMALLOC_START + HOLE,
                                                             VMALLOC_START + 2 * HOLE)

    if benchmark.stats is None:                     # --benchmark-disable: ran once, untimed
        return
    stats = benchmark.stats.stats
    _medians[n], _mins[n] = stats.median, stats.min
    benchmark.extra_info["live_areas"] = n
    if n == LIVE[-1] and LIVE[0] in _medians:
        ratio_median = _medians[n] / _medians[LIVE[0]]
        ratio_min = _mins[n] / _mins[LIVE[0]]
        benchmark.extra_info["ratio_median_vs_live100"] = round(ratio_median, 2)
        benchmark.extra_info["ratio_min_vs_live100"] = round(ratio_min, 2)
        line = (f"vmap_area alloc+free 64K: live {LIVE[0]}: median {_medians[LIVE[0]] * 1e6:.2f} us, "
                f"live {n}: median {_medians[n] * 1e6:.2f} us; ratio {ratio_median:.2f}x median, "
                f"{ratio_min:.2f}x min (a scan would be ~{n // LIVE[0]}x)")
        plugins = request.config.pluginmanager
        reporter, capture = plugins.getplugin("terminalreporter"), plugins.getplugin("capturemanager")
        if reporter is not None and capture is not None:
            with capture.global_and_fixture_disabled():     # print past the output capture
                reporter.write_line("")
                reporter.write_line(line)
        # Flat, not linear: log2(100000)/log2(100) is 2.5; allow for cache effects.
        assert ratio_median < 8, f"alloc+free grew {ratio_median:.1f}x for 1000x more areas"
