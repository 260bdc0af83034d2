"""``pyalloc serve``: a machine that keeps working, and an exported /proc that keeps up.

It runs a workload one tick at a time and after each tick rewrites the export
(export.py: proc/, sys/kernel/slab/, sys/kernel/debug/ under --root, each file
replaced atomically), so node_exporter, psutil, PCP or a bind-mounted
``free`` see numbers that move, as on a live machine.  SIGTERM or Ctrl-C ends
it after the current tick, with the export complete and the machine closed.
Each tick also puts back whatever of the tree went away -- a file, a cache's
directory, the whole root -- and never follows a link planted below the root
(export.py says what it guarantees).

Workloads are generators over a machine that yield after each tick:

* ``demo``: the ``pyalloc demo`` workload once, then ``churn`` forever;
* ``churn``: pages, kmalloc, cache objects and vmalloc areas allocated and
  freed around a live-set target that rises and falls over a cycle of ticks,
  so free memory, slab counts and fragmentation swing both ways;
* ``--replay TRACE``: the events of an ftrace kmem capture, a batch per tick,
  through the trace replayer (see :func:`replay_steps`).
"""

from __future__ import annotations

import math
import random
import signal
import sys
import threading
import time
from typing import Callable, Dict, Iterator, Optional

from . import workload as demo_workload
from ..errors import PyallocError
from .export import Exporter

TICK_OPS = 1500          # operations per churn tick
CYCLE_TICKS = 24         # ticks per rise and fall of the live-set target


class ReplayUnavailable(PyallocError):
    """--replay was asked for but this pyalloc has no trace replayer."""


def churn(m, seed: int = 2026, ops: int = TICK_OPS) -> Iterator[int]:
    """Allocate and free around a target that follows a slow wave: tick after tick."""
    rnd = random.Random(seed)
    gfps = [g for g, w in demo_workload.MIX for _ in range(w)]
    caches = [m.kmem_cache_create(f"churn_{name}", size, 0, flags)
              for name, size, flags in demo_workload.CACHES]
    pages: list = []
    objects: list = []      # (cache or None, addr)
    areas: list = []
    budget = max(64, m.nr_pages // 5)        # live pages at the crest of the wave
    tick = 0
    while True:
        target = int(budget * (0.55 + 0.45 * math.sin(2 * math.pi * tick / CYCLE_TICKS)))
        live = sum(1 << order for _, order in pages)
        for _ in range(ops):
            roll = rnd.random()
            grow = live < target
            if roll < 0.5:                                   # pages
                if grow or not pages:
                    order = rnd.choice(demo_workload.ORDERS)
                    pfn = m.alloc_pages(rnd.choice(gfps) + "|__GFP_NOWARN", order)
                    if pfn is not None:
                        pages.append((pfn, order))
                        live += 1 << order
                else:
                    pfn, order = pages.pop(rnd.randrange(len(pages)))
                    m.free_pages(pfn, order)
                    live -= 1 << order
            elif roll < 0.98:                                # slab objects
                if (grow or not objects) and len(objects) < budget * 4:
                    if rnd.random() < 0.4:
                        cache = rnd.choice(caches)
                        addr = m.kmem_cache_alloc(cache, "GFP_KERNEL|__GFP_NOWARN")
                    else:
                        cache = None
                        addr = m.kmalloc(rnd.choice(demo_workload.KMALLOC_SIZES), "GFP_KERNEL|__GFP_NOWARN")
                    if addr is not None:
                        objects.append((cache, addr))
                elif objects:
                    cache, addr = objects.pop(rnd.randrange(len(objects)))
                    if cache is None:
                        m.kfree(addr)
                    else:
                        m.kmem_cache_free(cache, addr)
            else:                                            # vmalloc areas
                if (grow or not areas) and len(areas) < 64:
                    addr = m.vmalloc(rnd.choice((4096, 16 << 10, 64 << 10)), "GFP_KERNEL|__GFP_NOWARN",
                                     caller=rnd.choice(demo_workload.CALLERS))
                    if addr is not None:
                        areas.append(addr)
                elif areas:
                    m.vfree(areas.pop(rnd.randrange(len(areas))))
        tick += 1
        yield tick


def demo(m, seed: int = 2026) -> Iterator[int]:
    """The demo's workload once (the first tick), then churn."""
    demo_workload.run_pages(m, seed=seed)
    demo_workload.run_slab(m, seed=seed)
    demo_workload.run_vmalloc(m, seed=seed)
    yield 1
    for tick in churn(m, seed=seed):
        yield tick + 1


WORKLOADS: Dict[str, Callable[..., Iterator[int]]] = {"demo": demo, "churn": churn}


def replay_steps(m, path: str) -> Iterator[int]:
    """The hook for ``--replay``: a trace's events, a batch per tick.

    The replayer is its own module (``pyalloc replay``).  This hook expects it
    as ``pyalloc.tools.replay.replay_steps(machine, path)``, a generator that applies
    the trace's events to the machine and yields after each batch; until that
    exists, --replay says so and serve exits with status 2.
    """
    try:
        from . import replay as replay_mod  # type: ignore[attr-defined]
    except ImportError:
        replay_mod = None  # type: ignore[assignment]  # an optional module
    steps = getattr(replay_mod, "replay_steps", None)
    if steps is None:
        raise ReplayUnavailable(f"--replay {path}: trace replay is not available yet in this pyalloc "
                                "(it lands with `pyalloc replay`); use --workload demo or churn")
    return steps(m, path)


def parse_interval(text: str) -> float:
    """Seconds from "1s", "250ms", "2m" or a bare number of seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    t = str(text).strip().lower()
    for suffix in ("ms", "s", "m"):
        if t.endswith(suffix):
            t, scale = t[:-len(suffix)], units[suffix]
            break
    else:
        scale = 1.0
    try:
        value = float(t) * scale
    except ValueError:
        raise ValueError(f"bad interval {text!r} (use e.g. 1s, 500ms)") from None
    if not 0 < value <= 86400:
        raise ValueError(f"interval {text!r} must be above 0 and at most a day")
    return value


def serve(m, root, interval: float = 1.0, steps: Optional[Iterator[int]] = None,
          ticks: Optional[int] = None, log=sys.stderr) -> int:
    """Run steps (default: the demo workload) on m, exporting under root after each tick,
    until SIGTERM/SIGINT or ``ticks`` ticks.  Returns the number of ticks run."""
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, frame):
            stop.set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    done = 0
    try:
        exporter = Exporter(root)
        exporter.update(m)          # the tree exists before the first tick; a signal now still ends cleanly
        steps = steps if steps is not None else demo(m)
        print(f"pyalloc serve: exporting to {exporter.root} every {interval:g}s "
              "(SIGTERM or Ctrl-C to stop)", file=log, flush=True)
        while not stop.is_set() and (ticks is None or done < ticks):
            started = time.monotonic()
            try:
                next(steps)
            except StopIteration:
                exporter.update(m)
                break
            exporter.update(m)
            done += 1
            stop.wait(max(0.0, interval - (time.monotonic() - started)))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(f"pyalloc serve: stopped after {done} ticks; {exporter.root} holds the last state",
          file=log, flush=True)
    return done
