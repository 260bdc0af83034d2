"""The ``pyalloc`` command (also ``python -m pyalloc``)."""

from __future__ import annotations

import argparse
import sys

from . import cli_sweep, cli_views, workload
from .errors import PyallocError
from .machine import Machine

VIEWS = ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat", "slabinfo", "vmallocinfo",
         "pressure/memory")
RECLAIM_COUNTERS = ("pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pswpin", "pswpout",
                    "pgpgin", "pgpgout", "allocstall_movable", "allocstall_normal", "pageoutrun",
                    "compact_stall", "compact_success", "compact_fail", "oom_kill")


def _machine(args, mem=None, swap=None) -> Machine:
    m = Machine(mem=args.mem or mem or "1G", cpus=args.cpus, backend=args.backend,
                slub_debug=args.slub_debug, swap=args.swap or swap or 0)
    cli_views.report_boot_complaints(m)
    return m


def cmd_demo_pressure(args) -> int:
    with _machine(args, mem="128M", swap="64M") as m:
        booted = len(m.dmesg())
        r = workload.run_pressure(m, seed=args.seed)
        print(f"# pyalloc demo --pressure: {m.mem >> 20} MiB machine, {m.swap >> 20} MiB swap, backend "
              f"{m.backend}: {r['oom_kills']} OOM kill(s), the leak got {r['leak_pages']} pages, "
              f"{r['processes']} processes left, database bytes intact: {r['db_intact']}")
        print("\n$ cat /proc/meminfo")
        print(m.proc("meminfo"), end="")
        vmstat = dict(line.split() for line in m.proc("vmstat").splitlines())
        print("\n$ grep -E 'pgscan|pgsteal|pswp|pgpg|allocstall|pageoutrun|compact_(stall|success|fail)|oom_kill' "
              "/proc/vmstat")
        for name in RECLAIM_COUNTERS:
            print(name, vmstat[name])
        print("\n$ cat /proc/pressure/memory")
        print(m.proc("pressure/memory"), end="")
        print("\n$ dmesg")
        print("\n".join(m.dmesg()[booted:]))
        m.check()
    return 0


def cmd_demo(args) -> int:
    if args.pressure:
        return cmd_demo_pressure(args)
    with _machine(args) as m:
        done, slab, vm = cli_views.run_demo_workload(m, args.seed)
        print(f"# pyalloc demo: {args.mem or '1G'} machine, backend {m.backend}: "
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
        sp.add_argument("--mem", default=None, help="simulated RAM, e.g. 512M, 4G (default 1G; 128M with --pressure)")
        sp.add_argument("--swap", default=None, help="swap device size, e.g. 256M (default none; 64M with --pressure)")
        sp.add_argument("--cpus", type=int, default=2, help="simulated CPUs (default 2)")
        sp.add_argument("--backend", choices=("c", "model"), default=None,
                        help="c (compiled core, default) or model (pure Python)")
        sp.add_argument("--seed", type=int, default=2026, help="seed of the built-in workload")
        sp.add_argument("--slub-debug", default="", help="slub_debug letters, e.g. FZPU (default off)")

    d = sub.add_parser("demo", help="run the built-in workloads and print buddyinfo, pagetypeinfo, meminfo, slabinfo, vmallocinfo")
    machine_args(d)
    d.add_argument("--pressure", action="store_true",
                   help="push a small machine into reclaim, swap and the OOM killer; print meminfo, the "
                        "reclaim counters, PSI and dmesg")
    d.add_argument("--plot", metavar="FILE", help="also draw the machine to FILE (.png or .svg; needs pyalloc[plot])")
    d.set_defaults(func=cmd_demo)
    pr = sub.add_parser("proc", help="print one /proc file of a machine")
    pr.add_argument("name", choices=VIEWS)
    pr.add_argument("--workload", action="store_true", help="run the built-in workload first")
    machine_args(pr)
    pr.set_defaults(func=cmd_proc)
    cli_views.add_commands(sub, machine_args, _machine)
    cli_sweep.add_command(sub)
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
