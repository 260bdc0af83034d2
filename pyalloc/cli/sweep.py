"""``pyalloc sweep``: a parameter sweep from the command line (pyalloc.sweep, extra [sweep])."""

from __future__ import annotations

import argparse
import sys

from ..errors import InvalidArgument
from ..errors import show
from ..tools import workload
from . import manners

EXAMPLE = ("  pyalloc sweep --param mem=256M,1G --param cpus=2,8 --seeds 0-99 --workload kmalloc-mix "
           "--out results.csv")
INT_PARAMS = ("cpus", "min_free_kbytes")


def _workload_name(text: str) -> str:
    names = workload.named("sweep")
    if text in names or (text.startswith("replay:") and len(text) > len("replay:")):
        return text
    raise argparse.ArgumentTypeError(f"unknown workload {text!r}: one of {', '.join(sorted(names))} "
                                     "or replay:TRACE")


def parse_param(text: str) -> tuple[str, list]:
    """"cpus=2,8" -> ("cpus", [2, 8]); sizes stay strings ("256M"), as Machine reads them."""
    name, sep, values = text.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise InvalidArgument(f"--param: expected NAME=V1,V2,... not {show(text)}")
    out: list = []
    for v in values.split(","):
        v = v.strip()
        if not v:
            raise InvalidArgument(f"--param {name}: empty value in {show(values)}")
        if name in INT_PARAMS or name == "seed":
            try:
                out.append(int(v, 0))
            except ValueError:
                raise InvalidArgument(f"--param {name}: {show(v)} is not an integer") from None
        elif name == "slab_merge":
            out.append(v.lower() in ("1", "true", "yes", "on"))
        else:
            out.append(v)
    return name.replace("-", "_"), out


def parse_seeds(text: str) -> list[int]:
    """"0-99" or "1,5,9" or "0-3,10" -> a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            if dash:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(lo))
        except ValueError:
            raise InvalidArgument(f"--seeds: cannot read {show(part)} (use e.g. 0-99 or 1,5,9)") from None
    return seeds


def _bar(total: int):
    return manners.progress(total, "run", "sweep", force=True)


def cmd_sweep(args) -> int:
    from ..tools.sweep import sweep
    grid: dict = {}
    for text in args.param or ():
        name, values = parse_param(text)
        grid[name] = values
    if args.snapshot:
        grid["snapshot"] = args.snapshot
    grid["seed"] = parse_seeds(args.seeds)
    table = sweep(grid, args.workload, engine=args.engine, scheduler=args.scheduler,
                           workers=args.workers, progress=False if args.quiet else _bar)
    failed = int(table["error"].notna().sum())
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"pyalloc sweep: {len(table)} runs, {failed} failed; table written to {args.out}", file=sys.stderr)
    else:
        table.to_csv(sys.stdout, index=False)
    return 1 if failed and args.strict else 0


def add_command(sub) -> None:
    names = workload.named("sweep")
    s = sub.add_parser("sweep", help="run a workload over a grid of machine parameters and seeds "
                       "(on Dask; needs pyalloc[sweep]); one CSV row per run")
    s.add_argument("--param", action="append", metavar="NAME=V1,V2",
                   help="a Machine parameter and its values: mem, cpus, swap, min_free_kbytes, slub_debug, "
                        "slab_merge, backend (repeat for more; the runs are their product)")
    s.add_argument("--seeds", default="0", help="workload seeds, e.g. 0-99 or 1,5,9 (default 0)")
    s.add_argument("--snapshot", action="append", metavar="FILE",
                   help="start each run from this saved machine (Machine.save) instead of a new one")
    s.add_argument("--workload", default="kmalloc-mix", type=_workload_name,
                   help=f"built-in workload ({', '.join(sorted(names))}; default kmalloc-mix) "
                        "or replay:TRACE, a kernel kmem capture replayed in every run")
    s.add_argument("--engine", default="dask", choices=("dask", "serial"),
                   help="dask (default: a local cluster, or --scheduler) or serial")
    s.add_argument("--scheduler", default=None, metavar="ADDR", help="a Dask scheduler, e.g. tcp://10.0.0.1:8786")
    s.add_argument("--workers", type=int, default=None, help="local cluster size (default: one per core)")
    s.add_argument("--out", default=None, metavar="FILE", help="CSV file to write (default: standard output)")
    s.add_argument("--strict", action="store_true", help="exit with status 1 if any run failed")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.epilog = "example:\n" + EXAMPLE
    s.formatter_class = argparse.RawDescriptionHelpFormatter
    s.set_defaults(func=cmd_sweep)
