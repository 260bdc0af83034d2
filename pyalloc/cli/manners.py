"""The command line's manners: ``--version``, an example at the end of every
``--help``, the one progress bar, and a quiet end when the reader closes the pipe.

cli/__init__.py builds the parser and calls :func:`finish`, then runs the
command through :func:`quiet_broken_pipe`; every progress bar any subcommand
shows comes from :func:`progress`.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Dict, Iterator

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
             "  python -c 'import psutil; psutil.PROCFS_PATH = \"/tmp/pyalloc/proc\"; "
             "print(psutil.virtual_memory())'",
    "plot": "  pyalloc plot -o machine.png --mem 2G --ticks 40\n"
            "  pyalloc plot -o machine.svg --workload churn",
    "replay": "  pyalloc replay kmem-trace.txt.gz --progress --proc slabinfo\n"
              "  trace-cmd report | pyalloc replay - --skip-bad --verify",
    "report": "  pyalloc report --slab kmem-trace.txt --sort frag,hit --lines 20\n"
              "  pyalloc report --page kmem-trace.txt --format csv > pages.csv",
}


def version_text() -> str:
    from .. import __version__
    return f"pyalloc {__version__} (simulating the Linux {'.'.join(KERNEL_RELEASE.split('.')[:2])} allocators on x86-64)"


def progress(total=None, unit: str = "it", desc=None, force: bool = False, **kw):
    """A tqdm bar on stderr when *force* (--progress) or when stderr is a terminal;
    None elsewhere (pipes, CI logs) and when tqdm is missing (a core dependency,
    but a bare checkout may lack it).  The caller updates and closes it."""
    if not (force or sys.stderr.isatty()):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, leave=False, **kw)


def ticking(steps: Iterator[int], bar) -> Iterator[int]:
    """steps, moving bar on by one after each step's work (bar may be None)."""
    for tick in steps:
        if bar is not None:
            bar.update()
        yield tick


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
