"""The command line's views: ``serve``, ``plot``, and the demo's workload.

cli/__init__.py builds the parser and calls :func:`add_commands`; keeping
these here leaves its own subcommands where they are (the manners are in
manners.py).
"""

from __future__ import annotations

import sys
from typing import Callable

from ..tools import workload
from . import manners


def run_demo_workload(m, seed: int) -> tuple:
    """The demo's three workloads, with a progress bar over them."""
    bar = manners.progress(len(workload.DEMO_PHASES), "phase", "pyalloc: workload")
    out = []
    for _name, fn in workload.DEMO_PHASES:
        out.append(fn(m, seed=seed))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return tuple(out)


def report_boot_complaints(m) -> None:
    """Print to stderr what the kernel's console shows at boot about bad options
    (an unknown slub_debug letter: "slab_debug option 'x' unknown. skipped")."""
    for line in m.dmesg():
        text = line.split("] ", 1)[-1]
        if text.startswith("slab_debug option "):
            print(text, file=sys.stderr)


# -- serve ---------------------------------------------------------------------------------

def cmd_serve(args, make_machine: Callable) -> int:
    from ..tools import serve
    try:
        interval = serve.parse_interval(args.interval)
    except ValueError as exc:
        print(f"pyalloc serve: {exc}", file=sys.stderr)
        return 2
    with make_machine(args) as m:
        serve.serve(m, args.root, interval=interval, steps=_steps(m, args), ticks=args.ticks,
                    in_place=args.in_place)
        m.check()
    return 0


def _steps(m, args):
    """The ticks serve and plot run: a trace replay (--replay) or a built-in workload."""
    from ..tools import serve
    if args.replay:
        return serve.replay_steps(m, args.replay)
    return workload.named("ticks")[args.workload](m, seed=args.seed)


def cmd_plot(args, make_machine: Callable) -> int:
    from .. import plot
    with make_machine(args) as m:        # make_machine reports boot complaints (cli._machine)
        bar = manners.progress(args.ticks, "tick", "pyalloc: workload")
        samples = plot.record(m, manners.ticking(_steps(m, args), bar), args.ticks)
        if bar is not None:
            bar.close()
        out = plot.plot(m, args.output, samples)
        print(f"pyalloc plot: wrote {out}", file=sys.stderr)
    return 0


def add_commands(sub, machine_args: Callable, make_machine: Callable) -> None:
    ticks = sorted(workload.named("ticks"))
    s = sub.add_parser("serve", help="run a workload and keep proc/, sys/kernel/slab/ and "
                       "sys/kernel/debug/ current under a directory, for real monitoring tools")
    s.add_argument("--root", required=True, help="directory to export into (made if missing)")
    s.add_argument("--interval", default="1s", help="time between exports, e.g. 1s, 250ms (default 1s)")
    s.add_argument("--in-place", action="store_true",
                   help="rewrite each file in its own inode instead of renaming a new one over it, so a "
                        "single-file bind mount (mount --bind ROOT/proc/meminfo /proc/meminfo) sees it change")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--workload", default="demo", choices=ticks,
                       help=workload.describe("ticks", "demo"))
    which.add_argument("--replay", metavar="TRACE", help="replay an ftrace kmem capture, a batch per tick")
    s.add_argument("--ticks", type=int, default=None, help="stop after this many ticks (default: run until stopped)")
    machine_args(s)
    s.set_defaults(func=lambda a: cmd_serve(a, make_machine))

    p = sub.add_parser("plot", help="draw buddyinfo, the pageblock map, slab usage and time series "
                       "over a workload (needs pyalloc[plot])")
    p.add_argument("-o", "--output", required=True, help="picture to write: .png or .svg")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--workload", default="demo", choices=ticks, help="workload to run (default demo)")
    which.add_argument("--replay", metavar="TRACE", help="replay an ftrace kmem capture instead, a batch per tick")
    p.add_argument("--ticks", type=int, default=30, help="ticks of the workload to record (default 30)")
    machine_args(p)
    p.set_defaults(func=lambda a: cmd_plot(a, make_machine))
