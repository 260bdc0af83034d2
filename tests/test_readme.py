"""The README's tour runs as written, on both backends."""

import re
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
