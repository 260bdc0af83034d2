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

import signal
import sys
import threading
import time
from typing import Callable, Dict, Iterator, Optional

from . import workload as demo_workload
from .workload import CYCLE_TICKS, TICK_OPS, churn, demo  # noqa: F401 - their old home
from ..errors import PyallocError
from .export import Exporter



class ReplayUnavailable(PyallocError):
    """--replay was asked for but this pyalloc has no trace replayer."""


WORKLOADS: Dict[str, Callable[..., Iterator[int]]] = demo_workload.named("ticks")


def replay_steps(m, path: str) -> Iterator[int]:
    """The hook for ``--replay``: a trace's events, a batch per tick.

    The replayer is its own module (``pyalloc.tools.replay.replay_steps(machine,
    path)``), a generator that applies the trace's events to the machine and yields
    after each batch; a build without it says so and serve exits with status 2.
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
          ticks: Optional[int] = None, log=sys.stderr, in_place: bool = False) -> int:
    """Run steps (default: the demo workload) on m, exporting under root after each tick,
    until SIGTERM/SIGINT or ``ticks`` ticks.  Returns the number of ticks run.  *in_place*
    rewrites each file in its own inode, for single-file bind mounts (export.write_in_place)."""
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum, frame):
            stop.set()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    done = 0
    try:
        exporter = Exporter(root, in_place)
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
