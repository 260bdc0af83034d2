"""The README's tour runs as written, on both backends."""

import re

import pytest
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_tour_runs(backend, monkeypatch, capsys):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.setenv("PYALLOC_BACKEND", backend)
    ns: dict = {}
    exec(compile(block, str(README), "exec"), ns)
    assert ns["m"].backend == backend
    out = capsys.readouterr().out
    assert "Node 0, zone    DMA32" in out and "Linux version 6.18.0" in out


def test_readme_pressure_example_runs(backend, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    block = next(b for b in blocks if "m.spawn(" in b)
    monkeypatch.setenv("PYALLOC_BACKEND", backend)
    ns: dict = {}
    exec(compile(block, str(README), "exec"), ns)
    out = capsys.readouterr().out
    assert "AllocCost(slept=True" in out and "some avg10=" in out
    assert "['postgres', 'java']\n1\n" in out
    ns["m"].check()


def _block(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return next(b for b in blocks if marker in b)


def test_readme_percpu_example_runs(backend, monkeypatch, capsys):
    monkeypatch.setenv("PYALLOC_BACKEND", backend)
    ns: dict = {}
    exec(compile(_block("sheaf_capacity=32"), str(README), "exec"), ns)
    out = capsys.readouterr().out.splitlines()
    # the values the README's comments show
    assert out[1:] == ["62", "52", "['0x80', '0xc80', '0xb00', '0xf00']", "28"], out
    ns["m"].check()


def test_readme_grooming_recipe_prints_what_the_readme_shows(capsys):
    pytest.importorskip("pandas", reason="pyalloc[sweep] is not installed")
    from pyalloc._testing import c_core_available
    if not c_core_available():
        pytest.skip("2000 runs want the C core")
    text = README.read_text()
    block = _block('"cross-cache-no-overflow"')
    exec(compile(block, str(README), "exec"), {})
    after = text[text.index(block) + len(block):]
    shown = re.search(r"```\n\n```\n(.*?)```", after, re.S).group(1)   # the output block after the code
    assert capsys.readouterr().out == shown
