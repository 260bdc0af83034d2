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
