"""The ``pyalloc`` command (also ``python -m pyalloc``)."""

from __future__ import annotations

import argparse
import sys

from . import cli_views
from .errors import PyallocError
from .machine import Machine

VIEWS = ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat", "slabinfo", "vmallocinfo")


def _machine(args) -> Machine:
    m = Machine(mem=args.mem, cpus=args.cpus, backend=args.backend, slub_debug=args.slub_debug)
    cli_views.report_boot_complaints(m)
    return m


def cmd_demo(args) -> int:
    with _machine(args) as m:
        done, slab, vm = cli_views.run_demo_workload(m, args.seed)
        print(f"# pyalloc demo: {args.mem} machine, backend {m.backend}: "
              f"{done['allocated']} page blocks allocated, {done['freed']} freed, {done['kept']} kept; "
              f"{slab['objects']} slab objects in {slab['caches']} caches and kmalloc, {slab['freed']} freed; "
              f"{vm['areas']} vmalloc/vmap areas, {vm['freed']} freed")
        for view in ("buddyinfo", "pagetypeinfo", "meminfo", "slabinfo", "vmallocinfo"):
            print(f"\n$ cat /proc/{view}")
            print(m.proc(view), end="")
        if args.plot:
            from . import plot
            plot.plot(m, args.plot)
        m.check()
    return 0


def cmd_proc(args) -> int:
    with _machine(args) as m:
        if args.workload:
            cli_views.run_demo_workload(m, args.seed)
        print(m.proc(args.name), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyalloc", description="Linux 6.18 memory allocators, simulated.")
    sub = p.add_subparsers(dest="command", required=True)

    def machine_args(sp):
        sp.add_argument("--mem", default="1G", help="simulated RAM, e.g. 512M, 4G (default 1G)")
        sp.add_argument("--cpus", type=int, default=2, help="simulated CPUs (default 2)")
        sp.add_argument("--backend", choices=("c", "model"), default=None,
                        help="c (compiled core, default) or model (pure Python)")
        sp.add_argument("--seed", type=int, default=2026, help="seed of the built-in workload")
        sp.add_argument("--slub-debug", default="", help="slub_debug letters, e.g. FZPU (default off)")

    d = sub.add_parser("demo", help="run the built-in workloads and print buddyinfo, pagetypeinfo, meminfo, slabinfo, vmallocinfo")
    machine_args(d)
    d.add_argument("--plot", metavar="FILE", help="also draw the machine to FILE (.png or .svg; needs pyalloc[plot])")
    d.set_defaults(func=cmd_demo)
    pr = sub.add_parser("proc", help="print one /proc file of a machine")
    pr.add_argument("name", choices=VIEWS)
    pr.add_argument("--workload", action="store_true", help="run the built-in workload first")
    machine_args(pr)
    pr.set_defaults(func=cmd_proc)
    cli_views.add_commands(sub, machine_args, _machine)
    cli_views.finish(p, sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return cli_views.quiet_broken_pipe(lambda: _run(args))


def _run(args) -> int:
    try:
        return args.func(args)
    except PyallocError as exc:
        print(f"pyalloc: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"pyalloc: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
