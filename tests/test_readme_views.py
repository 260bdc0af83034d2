"""The README's section on the views beside /proc runs as written, on both backends."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_views_section_runs(backend, monkeypatch, capsys, tmp_path):
    text = README.read_text()
    section = text.split("## Views beside /proc")[1].split("\n## ")[0]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    block = block.replace('"/tmp/pyalloc-tree"', repr(str(tmp_path / "tree")))
    monkeypatch.setenv("PYALLOC_BACKEND", backend)
    ns: dict = {}
    exec(compile(block, str(README), "exec"), ns)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Node 0, zone      DMA 0.000 ")
    assert "64 N0=64" in out          # two slabs of 32: one full, one the CPU's, counted whole
    assert re.fullmatch(r"kmalloc-128 0xffff888[0-9a-f]+ True", next(l for l in out if l.startswith("kmalloc-128 ")))
    assert any(l.startswith("40 <kmem_cache 'kmalloc-128'") and ": 40 live" in l for l in out)
    assert "3" in out
    assert (tmp_path / "tree/proc/slabinfo").exists()
    ns["m"].close()
