"""The export fuzz target (fuzz/fuzz_export.py) finds nothing on fixed inputs and finds a planted escape."""

from __future__ import annotations

import importlib.util
import os
import random
from collections import Counter
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_export.py"


@pytest.fixture(scope="module")
def fuzz():
    spec = importlib.util.spec_from_file_location("fuzz_export", HARNESS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fixed_inputs_find_nothing(fuzz):
    rng = random.Random(3)
    stats = Counter()
    for _ in range(4):
        fuzz.test_one_input(rng.randbytes(rng.randrange(40, 200)), stats)
    assert stats["exports"] >= 4 and stats["plants"] > 5


def test_an_export_that_follows_links_is_caught(fuzz, monkeypatch):
    from pyalloc.tools import export
    # opening directories without O_NOFOLLOW walks into a planted link
    monkeypatch.setattr(export, "_DIR_FLAGS", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    rng = random.Random(5)
    found = None
    for _ in range(60):
        try:
            fuzz.test_one_input(rng.randbytes(rng.randrange(40, 200)))
        except fuzz.Finding as f:
            found = f.kind
            break
    assert found in ("escape", "tree")
