"""The fuzz harness (fuzz/fuzz_pyalloc.py) runs, finds nothing on fixed inputs, and finds a planted bug."""

from __future__ import annotations

import importlib.util
import random
from collections import Counter
from pathlib import Path

import pytest

from pyalloc._testing import c_core_available

HARNESS = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_pyalloc.py"


@pytest.fixture(scope="module")
def fuzz():
    if not c_core_available():
        pytest.skip("the harness drives both backends: the C core is not built")
    spec = importlib.util.spec_from_file_location("fuzz_pyalloc", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixed_inputs_find_nothing(fuzz):
    rng = random.Random(8)
    stats = Counter()
    for _ in range(12):
        fuzz.test_one_input(rng.randbytes(rng.randrange(16, 300)), stats)
    assert stats["api calls"] > 100 and stats["raw C calls"] > 50


def test_a_planted_undocumented_exception_is_a_finding(fuzz, monkeypatch):
    import pyalloc

    def broken(self, addr, n):
        raise KeyError("planted")
    monkeypatch.setattr(pyalloc.Machine, "read", broken)
    rng = random.Random(3)
    kinds = set()
    for _ in range(40):
        try:
            fuzz.test_one_input(rng.randbytes(200), Counter())
        except fuzz.Findings as f:
            kinds.add(f.kind)
            if f.kind == "undocumented":
                break
    assert "undocumented" in kinds


def test_a_failed_call_that_changes_state_is_a_finding(fuzz, monkeypatch):
    import pyalloc
    real = pyalloc.Machine.ksize

    def leaky(self, addr):
        self.kmalloc(64, "GFP_KERNEL")      # takes an object, then fails
        return real(self, addr) if addr is not None and addr > 0x10 else real(self, -1)
    monkeypatch.setattr(pyalloc.Machine, "ksize", leaky)
    rng = random.Random(4)
    kinds = set()
    for _ in range(60):
        try:
            fuzz.test_one_input(rng.randbytes(300), Counter())
        except fuzz.Findings as f:
            kinds.add(f.kind)
            if f.kind == "state":
                break
    assert "state" in kinds


def test_atheris_drives_the_harness(fuzz):
    atheris = pytest.importorskip("atheris", reason="the [fuzz] extra (atheris) is not installed")
    data = atheris.FuzzedDataProvider(b"\x01" * 64).ConsumeBytes(64)
    fuzz.test_one_input(data, Counter())
