"""How often a kernel (or pyalloc) hands out again, on the same CPU, what was freed last there.

    python bench/reuse_figures.py TRACE [TRACE ...]

For each capture: (1) the real kernel's figures, read from the capture itself; (2) pyalloc's, from the
trace a replay of that capture writes (``Machine(trace=...)``), on the capture's CPU count.

* pages: after an order-0 page is freed on a CPU, the next order-0 allocation of the same migratetype
  on that CPU returns that very page (per-cpu page lists);
* objects: after an object of a cache is freed on a CPU, the next allocation from that cache on that
  CPU returns it (vm_area_struct and maple_node: 6.18's sheaves; all caches together).

Real captures hash pointers (%p), but each hash is stable within a boot, so equality still holds.
"""

from __future__ import annotations

import io
import sys
from collections import defaultdict

import pyalloc
from pyalloc.machine.trace import parse_events, read_trace

SHEAF_CACHES = ("vm_area_struct", "maple_node")


def reuse(path) -> dict:
    """{kind: (hits, chances)} over one trace."""
    last_page: dict = {}                 # (cpu, mt) -> pfn freed last, still waiting
    last_obj: dict = {}                  # (cpu, cache) -> ptr freed last
    owner: dict = {}                     # ptr -> cache (from its allocation)
    got = defaultdict(lambda: [0, 0])
    for _lineno, event, cpu, _ts, f in parse_events(path, skip_bad=True):
        if event == "mm_page_free" and f.get("order") == "0":
            last_page[(cpu, "any")] = f.get("pfn")
        elif event == "mm_page_alloc" and f.get("order") == "0":
            key = (cpu, "any")
            if key in last_page:
                got["pages"][1] += 1
                got["pages"][0] += f.get("pfn") == last_page.pop(key)
        elif event in ("kmem_cache_alloc", "kmalloc"):
            name = f.get("name", "kmalloc")
            owner[f.get("ptr")] = name
            key = (cpu, name)
            if key in last_obj:
                hit = f.get("ptr") == last_obj.pop(key)
                for kind in ("objects",) + ((name,) if name in SHEAF_CACHES else ()):
                    got[kind][1] += 1
                    got[kind][0] += hit
        elif event in ("kmem_cache_free", "kfree"):
            name = f.get("name") or owner.get(f.get("ptr"))
            if name is not None:
                last_obj[(cpu, name)] = f.get("ptr")
    return {k: tuple(v) for k, v in got.items()}


def replayed(path) -> io.StringIO:
    stream = read_trace(path, skip_bad=True)
    out = io.StringIO()
    cpus = max(2, stream.trace_stats.get("cpus", 2))
    with pyalloc.Machine(mem="4G", cpus=cpus, trace=out) as m:
        m.run(stream, errors="record")
    out.seek(0)                     # closing the machine flushed its trace
    return out


def show(label: str, figures: dict) -> None:
    parts = [f"{k} {h}/{n} ({h / n:.0%})" if n else f"{k} -" for k, (h, n) in sorted(figures.items())]
    print(f"  {label:8} " + ", ".join(parts))


if __name__ == "__main__":
    for path in sys.argv[1:] or ["tests/fixtures/ftrace-kmem.txt"]:
        print(path)
        show("kernel", reuse(path))
        show("pyalloc", reuse(replayed(path)))
