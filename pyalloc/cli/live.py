"""The command line's views and manners: ``serve``, ``plot``, examples in every
``--help``, ``--version``, progress bars, a quiet closed pipe.

cli.py builds the parser and calls :func:`add_commands` and :func:`finish`;
keeping these here leaves cli.py's own subcommands where they are.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict

from ..tools import workload
from ..text.printk import KERNEL_RELEASE

# One example per subcommand, shown at the end of its --help
EXAMPLES: Dict[str, str] = {
    "demo": "  pyalloc demo --mem 512M | less\n"
            "  pyalloc demo --pressure --mem 128M --swap 64M\n"
            "  pyalloc demo --slub-debug FZPU --plot demo.png",
    "proc": "  pyalloc proc buddyinfo --workload --mem 4G\n"
            "  pyalloc proc slabinfo --backend model",
    "serve": "  pyalloc serve --root /tmp/pyalloc --interval 1s &\n"
             "  prometheus-node-exporter --path.procfs /tmp/pyalloc/proc --collector.buddyinfo\n"
             "  PROCFS_PATH=/tmp/pyalloc/proc python -c 'import psutil; print(psutil.virtual_memory())'",
    "plot": "  pyalloc plot -o machine.png --mem 2G --ticks 40\n"
            "  pyalloc plot -o machine.svg --workload churn",
    "replay": "  pyalloc replay kmem-trace.txt.gz --progress --proc slabinfo\n"
              "  trace-cmd report | pyalloc replay /dev/stdin --skip-bad",
    "report": "  pyalloc report --slab kmem-trace.txt --sort frag,hit --lines 20\n"
              "  pyalloc report --page kmem-trace.txt --format csv > pages.csv",
}


def version_text() -> str:
    from .. import __version__
    return f"pyalloc {__version__} (simulating the Linux {'.'.join(KERNEL_RELEASE.split('.')[:2])} allocators on x86-64)"


def progress(iterable, desc: str, **kw):
    """tqdm over iterable on a terminal's stderr; the iterable itself elsewhere (pipes, CI logs)."""
    try:
        from tqdm import tqdm
    except ImportError:               # tqdm is a core dependency, but a bare checkout may lack it
        return iterable
    return tqdm(iterable, desc=desc, disable=None, leave=False, file=sys.stderr, **kw)


def run_demo_workload(m, seed: int) -> tuple:
    """The demo's three workloads, with a progress bar over them."""
    phases = (("pages", workload.run_pages), ("slab", workload.run_slab), ("vmalloc", workload.run_vmalloc))
    out = []
    for _name, fn in progress(phases, "pyalloc: workload", unit="phase"):
        out.append(fn(m, seed=seed))
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
        serve.serve(m, args.root, interval=interval, steps=_steps(m, args), ticks=args.ticks)
        m.check()
    return 0


def _steps(m, args):
    """The ticks serve and plot run: a trace replay (--replay) or a built-in workload."""
    from ..tools import serve
    if args.replay:
        return serve.replay_steps(m, args.replay)
    return serve.WORKLOADS[args.workload](m, seed=args.seed)


def cmd_plot(args, make_machine: Callable) -> int:
    from .. import plot
    with make_machine(args) as m:        # make_machine reports boot complaints (cli._machine)
        samples = plot.record(m, _steps(m, args), args.ticks, progress=True)
        out = plot.plot(m, args.output, samples)
        print(f"pyalloc plot: wrote {out}", file=sys.stderr)
    return 0


def add_commands(sub, machine_args: Callable, make_machine: Callable) -> None:
    from ..tools.serve import WORKLOADS
    s = sub.add_parser("serve", help="run a workload and keep proc/, sys/kernel/slab/ and "
                       "sys/kernel/debug/ current under a directory, for real monitoring tools")
    s.add_argument("--root", required=True, help="directory to export into (made if missing)")
    s.add_argument("--interval", default="1s", help="time between exports, e.g. 1s, 250ms (default 1s)")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--workload", default="demo", choices=sorted(WORKLOADS),
                       help="demo: the demo's workload then churn (default); churn: allocate and free in waves")
    which.add_argument("--replay", metavar="TRACE", help="replay an ftrace kmem capture, a batch per tick")
    s.add_argument("--ticks", type=int, default=None, help="stop after this many ticks (default: run until stopped)")
    machine_args(s)
    s.set_defaults(func=lambda a: cmd_serve(a, make_machine))

    p = sub.add_parser("plot", help="draw buddyinfo, the pageblock map, slab usage and time series "
                       "over a workload (needs pyalloc[plot])")
    p.add_argument("-o", "--output", required=True, help="picture to write: .png or .svg")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--workload", default="demo", choices=sorted(WORKLOADS), help="workload to run (default demo)")
    which.add_argument("--replay", metavar="TRACE", help="replay an ftrace kmem capture instead, a batch per tick")
    p.add_argument("--ticks", type=int, default=30, help="ticks of the workload to record (default 30)")
    machine_args(p)
    p.set_defaults(func=lambda a: cmd_plot(a, make_machine))


def finish(parser: argparse.ArgumentParser, sub) -> None:
    """--version, and an example at the end of each subcommand's --help."""
    parser.add_argument("--version", action="version", version=version_text())
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "examples:\n  pyalloc demo | head\n  pyalloc <command> --help"
    for name, sp in sub.choices.items():
        if name in EXAMPLES and not sp.epilog:
            sp.epilog = "example:\n" + EXAMPLES[name]
            sp.formatter_class = argparse.RawDescriptionHelpFormatter


def quiet_broken_pipe(run: Callable[[], int]) -> int:
    """Run the command; a reader that closed the pipe (``pyalloc demo | head``) ends it quietly,
    with the status a shell gives a command killed by SIGPIPE."""
    try:
        rc = run()
        sys.stdout.flush()
        return rc
    except KeyboardInterrupt:
        # Ctrl-C before a command installs its own handling (serve does): no traceback
        print("pyalloc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # stdout is gone: point it at /dev/null so the interpreter's final flush is quiet too
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
