"""The ``pyalloc`` command (also ``python -m pyalloc``)."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

from . import sweep as cli_sweep, live as cli_views, manners
from ..tools import workload
from ..errors import PyallocError, PyallocWarning
from ..machine.machine import Machine

VIEWS = ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat", "slabinfo", "vmallocinfo",
         "pressure/memory", "pressure/cpu", "pressure/io")
RECLAIM_COUNTERS = ("pgscan_kswapd", "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pswpin", "pswpout",
                    "pgpgin", "pgpgout", "allocstall_movable", "allocstall_normal", "pageoutrun",
                    "compact_stall", "compact_success", "compact_fail", "oom_kill")


def _machine(args, mem=None, swap=None) -> Machine:
    with warnings.catch_warnings():         # the command line prints the kernel's own line instead
        warnings.simplefilter("ignore", PyallocWarning)
        m = Machine(mem=args.mem or mem or "1G", cpus=args.cpus, backend=args.backend,
                    slub_debug=args.slub_debug, swap=args.swap or swap or 0, seed=args.seed)
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
            from .. import plot
            out = plot.plot(m, args.plot)
            print(f"pyalloc demo: wrote {out}", file=sys.stderr)
        m.check()
    return 0


def cmd_proc(args) -> int:
    with _machine(args) as m:
        if args.workload:
            cli_views.run_demo_workload(m, args.seed)
        print(m.proc(args.name), end="")
    return 0


def cmd_replay(args) -> int:
    from ..tools.replay import replay_chunked
    t0 = time.perf_counter()
    try:
        size = None if args.trace == "-" else os.path.getsize(args.trace)
    except OSError:
        size = None
    bar = manners.progress(size, "B", force=args.progress, unit_scale=True, unit_divisor=1024)

    def machine(cpus: int) -> Machine:
        cpus = cpus if args.cpus is None else max(args.cpus, cpus)
        return Machine(mem=args.mem or "1G", cpus=cpus, backend=args.backend, slub_debug=args.slub_debug,
                       swap=args.swap or 0, seed=args.seed)

    # the capture is read and run a chunk at a time: memory follows its live objects, not its length
    rep = replay_chunked(machine, args.trace, skip_bad=args.skip_bad, progress=None if bar is None else bar.update)
    if bar is not None:
        bar.close()
    m, stream, result, st, n = rep.machine, rep.stream, rep.result, rep.stream.trace_stats, rep.ops
    with m:
        parse_s, run_s = time.perf_counter() - t0 - rep.run_s, rep.run_s
        print(f"# {args.trace}: {st['lines']} lines, {st['events']} kmem events "
              f"({st['ignored_events']} other events, {st['bad_lines']} bad lines skipped) "
              f"parsed in {parse_s:.3f} s")
        print(f"# {n} operations on a {m.mem >> 20} MiB machine with {m.cpus} CPUs, backend {m.backend}: "
              f"{run_s:.3f} s ({n / run_s / 1e6 if run_s else 0:.2f} M ops/s)")
        print(f"# frees of objects allocated before the capture: {st['unmatched_frees']}; "
              f"the slab allocator's own page events: {st['slab_pages']}; "
              f"allocations that failed here: {rep.failed}; errors: {rep.nr_errors}")
        _replay_inference(st, stream.trace_bad)
        for i, exc in rep.errors:
            print(f"#   op {i}: {type(exc).__name__}: {exc}")
        if args.verify:
            from ..tools import replay_verify
            print("\n".join(replay_verify.report(m, stream, result)))
        for view in args.proc or ():
            print(f"\n$ cat /proc/{view}")
            print(m.proc(view), end="")
        m.check()
    return 0


def _replay_inference(st: dict, bad: list) -> None:
    """What the replay summary says it inferred: implied frees, pages kept as the caller's."""
    from ..machine.trace import NOT_SLAB_REASONS
    kept = sum(st[key] for key in NOT_SLAB_REASONS)
    print(f"# implied frees (an allocation returned a pointer still live): {st['implied_frees']} objects, "
          f"{st['implied_page_frees']} page blocks; page allocations right before a slab allocation "
          f"replayed as the caller's: {kept}")
    for key, why in NOT_SLAB_REASONS.items():
        if st[key]:
            print(f"#   {st[key]}: {why}")
    for lineno, problem in bad:
        print(f"# skipped line {lineno}: {problem}")


def cmd_report(args) -> int:
    from ..tools import perf_kmem as report
    if args.page:
        stats = report.page_stats(args.trace, skip_bad=args.skip_bad)
        text = report.render_page(stats, args.sort or report.DEFAULT_PAGE_SORT, args.lines) \
            if args.format == "text" else None
    else:
        stats = report.slab_stats(args.trace, skip_bad=args.skip_bad, alloc_ptr=args.alloc_ptr)
        text = report.render_slab(stats, args.sort or report.DEFAULT_SLAB_SORT, args.lines) \
            if args.format == "text" else None
    if args.format == "json":
        text = report.to_json(stats)
    elif args.format == "csv":
        text = report.to_csv(stats)
    assert text is not None     # --format is one of text, csv, json
    sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyalloc", description="Linux 6.18 memory allocators, simulated.")
    sub = p.add_subparsers(dest="command", required=True)

    def machine_args(sp, pressure: bool = False, workload: bool = True):
        """The machine's options; only demo has --pressure, and replay runs no built-in workload."""
        also = "; 128M with --pressure" if pressure else ""
        sp.add_argument("--mem", default=None, help=f"simulated RAM, e.g. 512M, 4G (default 1G{also})")
        sp.add_argument("--swap", default=None, help="swap device size, e.g. 256M (default none"
                        + ("; 64M with --pressure)" if pressure else ")"))
        sp.add_argument("--cpus", type=int, default=2, help="simulated CPUs (default 2)")
        sp.add_argument("--backend", choices=("c", "model"), default=None,
                        help="c (compiled core, default) or model (pure Python)")
        sp.add_argument("--seed", type=int, default=2026 if workload else 0,
                        help="seed of the machine's random choices (freelist order ...)"
                             + (" and of the built-in workload (default 2026)" if workload else " (default 0)"))
        sp.add_argument("--slub-debug", default="", help="slub_debug letters, e.g. FZPU (default off)")

    d = sub.add_parser("demo", help="run the built-in workloads and print buddyinfo, pagetypeinfo, meminfo, slabinfo, vmallocinfo")
    machine_args(d, pressure=True)
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

    rp = sub.add_parser("replay", help="run a kernel ftrace kmem capture (6.18 or older text, .gz, .xz) on a machine")
    rp.add_argument("trace", help="the trace file (plain, .gz or .xz), or - for standard input")
    rp.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is not a terminal")
    rp.add_argument("--skip-bad", action="store_true", help="count malformed lines instead of stopping at the first")
    rp.add_argument("--proc", action="append", choices=VIEWS, help="print this /proc file afterwards (repeatable)")
    rp.add_argument("--verify", action="store_true",
                    help="compare the live objects per cache and live pages at the end with what the trace implies")
    machine_args(rp, workload=False)
    rp.set_defaults(cpus=None)      # the trace's CPUs (its #P: header, or the highest CPU seen)
    rp.set_defaults(func=cmd_replay)

    rep = sub.add_parser("report", help="perf-kmem-style statistics of a kmem trace")
    which = rep.add_mutually_exclusive_group(required=True)
    which.add_argument("--slab", action="store_true", help="per call site and per cache (perf kmem stat --slab)")
    which.add_argument("--page", action="store_true", help="by order, migrate type and GFP flags (--page)")
    rep.add_argument("trace", help="the trace file (plain, .gz or .xz), or - for standard input")
    rep.add_argument("--sort", help="comma-separated keys, each largest first as perf sorts them "
                                    "(slab: frag,hit,bytes,req,pingpong,callsite,cache,ptr; "
                                    "page: bytes,hit,order,migtype,gfp)")
    rep.add_argument("--alloc-ptr", action="store_true",
                     help="also the per-pointer table (Alloc Ptr, perf kmem stat --alloc) with --slab")
    rep.add_argument("--lines", type=int, default=None, help="print only the first N rows of each table")
    rep.add_argument("--format", choices=("text", "csv", "json"), default="text")
    rep.add_argument("--skip-bad", action="store_true", help="skip malformed lines")
    rep.set_defaults(func=cmd_report)

    cli_views.add_commands(sub, machine_args, _machine)
    cli_sweep.add_command(sub)
    manners.finish(p, sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return manners.quiet_broken_pipe(lambda: _run(args))


def _run(args) -> int:
    try:
        return args.func(args)
    except PyallocError as exc:
        print(f"pyalloc: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"pyalloc: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        raise                           # quiet_broken_pipe's business
    except OSError as exc:
        print(f"pyalloc: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
