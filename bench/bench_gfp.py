"""GFP parsing: the per-call cost of turning a user's mask into an int (pure Python, no backend)."""

from __future__ import annotations

import pytest

from pyalloc import gfp


@pytest.mark.benchmark(group="gfp-parse", warmup=True, warmup_iterations=20000)
def test_parse_cached_string(benchmark):
    gfp.parse("GFP_KERNEL")                         # fill the cache outside the timing
    assert "GFP_KERNEL" in gfp._STR_CACHE
    assert benchmark(gfp.parse, "GFP_KERNEL") == gfp.GFP_KERNEL


@pytest.mark.benchmark(group="gfp-parse", warmup=True, warmup_iterations=20000)
def test_parse_cached_composite_string(benchmark):
    text = "GFP_KERNEL | __GFP_ZERO"
    gfp.parse(text)
    assert benchmark(gfp.parse, text) == gfp.GFP_KERNEL | gfp.GFP_ZERO


@pytest.mark.benchmark(group="gfp-parse", warmup=True, warmup_iterations=20000)
def test_parse_int(benchmark):
    assert benchmark(gfp.parse, gfp.GFP_KERNEL) == gfp.GFP_KERNEL


@pytest.mark.benchmark(group="gfp-parse", warmup=True, warmup_iterations=20000)
def test_parse_enum_member(benchmark):
    assert benchmark(gfp.parse, gfp.GFP.KERNEL) == gfp.GFP_KERNEL


@pytest.mark.benchmark(group="gfp-parse", warmup=True, warmup_iterations=20000)
def test_reference_identity_call(benchmark):
    """A Python function that returns its argument: the floor for any parse."""
    def identity(x):
        return x

    assert benchmark(identity, gfp.GFP_KERNEL) == gfp.GFP_KERNEL
