"""perf-kmem-style reports of a kmem trace: ``pyalloc report --slab|--page TRACE``.

The tables follow ``perf kmem stat --slab`` and ``--page`` (tools/perf/builtin-kmem.c):
the same columns, widths and summary block, so a kernel developer reads them
without a legend.  Names are padded to perf's 34 columns and never cut (its
``" %-34s |"``); ``--sort`` puts the largest first for every key, as perf's
sort_slab_insert() does, ties in ascending call site (or pointer) order; with
``alloc_ptr`` the per-pointer table of ``perf kmem stat --alloc`` ("Alloc Ptr")
follows the call sites.  Departures: the last slab table is per cache (the
cache's name, or kmalloc-<size> with its type prefix for kmalloc); "Ping-pong"
counts frees on another CPU than the allocation's (perf's own definition); the
page table is grouped by order, migrate type and GFP flags, because
mm_page_alloc carries no call site; migrate types are named in 6.18's order
(Unmovable, Movable, Reclaimable, HighAtomic, Isolate: mm/page_alloc.c
migratetype_names with CONFIG_CMA off) where perf still has its older table.
Both work on a real capture and on a trace a simulated machine wrote.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from ..errors import InvalidArgument
from ..machine.trace import PAGE_FREE_EVENTS, TraceFormatError, _int, parse_events, parse_gfp
from ..machine.trace import parse_ptr as _ptr
from .._abi import PAGE_SIZE

DOTS = "-" * 105
MIGRATE_SHORT = ("UNMOVABL", "MOVABLE", "RECLAIM", "HIGHATOM", "ISOLATE", "UNKNOWN")
MIGRATE_LONG = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
SLAB_SORT_KEYS = ("frag", "hit", "bytes", "req", "pingpong", "callsite", "cache", "ptr")
PAGE_SORT_KEYS = ("bytes", "hit", "order", "migtype", "gfp")
DEFAULT_SLAB_SORT = "frag,hit,bytes"
DEFAULT_PAGE_SORT = "bytes,hit"

# perf's short names for GFP flag names (include/trace/events/mmflags.h order)
GFP_COMPACT = {
    "GFP_TRANSHUGE": "THP", "GFP_TRANSHUGE_LIGHT": "THL", "GFP_HIGHUSER_MOVABLE": "HUM", "GFP_HIGHUSER": "HU",
    "GFP_USER": "U", "GFP_KERNEL_ACCOUNT": "KAC", "GFP_KERNEL": "K", "GFP_NOFS": "NF", "GFP_ATOMIC": "A",
    "GFP_NOIO": "NI", "GFP_NOWAIT": "NW", "GFP_DMA": "D", "__GFP_HIGHMEM": "HM", "GFP_DMA32": "D32",
    "__GFP_HIGH": "H", "__GFP_IO": "I", "__GFP_FS": "F", "__GFP_NOWARN": "NWR", "__GFP_RETRY_MAYFAIL": "R",
    "__GFP_NOFAIL": "NF", "__GFP_NORETRY": "NR", "__GFP_COMP": "C", "__GFP_ZERO": "Z", "__GFP_NOMEMALLOC": "NMA",
    "__GFP_MEMALLOC": "MA", "__GFP_HARDWALL": "HW", "__GFP_THISNODE": "TN", "__GFP_RECLAIMABLE": "RC",
    "__GFP_MOVABLE": "M", "__GFP_ACCOUNT": "AC", "__GFP_WRITE": "WR", "__GFP_RECLAIM": "R",
    "__GFP_DIRECT_RECLAIM": "DR", "__GFP_KSWAPD_RECLAIM": "KR",
}


def compact_gfp(text: str) -> str:
    return "|".join(GFP_COMPACT[p] for p in text.split("|") if p in GFP_COMPACT)


def fragmentation(req: int, alloc: int) -> float:
    return 0.0 if alloc == 0 else 100.0 - 100.0 * req / alloc


def _kmalloc_cache(bytes_alloc: int, gfp: int) -> str:
    if bytes_alloc > 8192:
        return "kmalloc_large"
    suffix = f"{bytes_alloc >> 10}k" if bytes_alloc >= 1024 else str(bytes_alloc)
    if gfp & 0x1:
        return "dma-kmalloc-" + suffix
    if gfp & 0x10:
        return "kmalloc-rcl-" + suffix
    if gfp & 0x400000:
        return "kmalloc-cg-" + suffix
    return "kmalloc-" + suffix


def _pointer(f: dict, lineno: int, skip_bad: bool):
    """(ok, pointer or None for NULL) of an event's ptr= field; (False, None) for a malformed
    one under skip_bad, else TraceFormatError naming the line."""
    text = f.get("ptr", "0")
    try:
        return True, _ptr(text)
    except ValueError:
        if skip_bad:
            return False, None
        raise TraceFormatError(f"line {lineno}: bad ptr field {str(text)[:40]!r}") from None


class _Row:
    __slots__ = ("key", "hit", "req", "alloc", "pingpong")

    def __init__(self, key: str) -> None:
        self.key, self.hit, self.req, self.alloc, self.pingpong = key, 0, 0, 0, 0

    def as_dict(self, name: str) -> dict:
        return {name: self.key, "total_alloc": self.alloc, "per_alloc": self.alloc // self.hit if self.hit else 0,
                "total_req": self.req, "per_req": self.req // self.hit if self.hit else 0, "hit": self.hit,
                "pingpong": self.pingpong, "frag": round(fragmentation(self.req, self.alloc), 3)}


def _fields(f: dict, lineno: int, skip_bad: bool, *spec):
    """The numeric fields *spec* ((name, default, upper bound) ...) of one event as ints; None when
    the line is malformed and skip_bad says to pass over it, else TraceFormatError naming the line."""
    out = []
    for name, default, hi in spec:
        text = f.get(name)
        try:
            v = default if text is None else _int(text)
        except ValueError:
            v = -1
        if not 0 <= v <= hi:
            if skip_bad:
                return None
            raise TraceFormatError(f"line {lineno}: bad {name} field {str(text)[:40]!r}")
        out.append(v)
    return out


def slab_stats(path, skip_bad: bool = False, alloc_ptr: bool = False) -> dict:
    """Per call site and per cache rows, and the summary, of a trace's slab events; with
    alloc_ptr also per pointer (perf kmem's --alloc table, ``ptrs``).  An allocation that
    returns a pointer still live frees the old object first (6.18 frees through sheaves
    and bulk paths without an event): counted in the summary's ``implied_frees``."""
    sites: dict[str, _Row] = {}
    caches: dict[str, _Row] = {}
    ptrs: dict[int, _Row] = {}
    live: dict[int, tuple] = {}
    total: dict[str, Any] = {"requested": 0, "allocated": 0, "freed": 0, "allocs": 0, "frees": 0, "cross_cpu_frees": 0,
             "unmatched_frees": 0, "implied_frees": 0, "bad_lines": 0}
    stats: dict = {}
    for lineno, event, cpu, _ts, f in parse_events(path, skip_bad, stats):
        if event.startswith(("kmalloc", "kmem_cache_alloc")):
            ok, ptr = _pointer(f, lineno, skip_bad)
            if ptr is None:
                total["bad_lines"] += not ok
                continue
            sizes = _fields(f, lineno, skip_bad, ("bytes_req", 0, 1 << 62), ("bytes_alloc", 0, 1 << 62))
            if sizes is None:
                continue
            req, alloc = sizes
            site = f.get("call_site", "?")
            if event.startswith("kmalloc"):
                cache = _kmalloc_cache(alloc, parse_gfp(f.get("gfp_flags", "none")))
            else:
                cache = f.get("name") or f"objects-{alloc}"
            tables: tuple = ((sites, site), (caches, cache), (ptrs, ptr)) if alloc_ptr else ((sites, site), (caches, cache))
            for table, key in tables:
                row = table.get(key)
                if row is None:
                    row = table[key] = _Row(key)
                row.hit += 1
                row.req += req
                row.alloc += alloc
            total["implied_frees"] += ptr in live
            live[ptr] = (site, cache, cpu, alloc)
            total["requested"] += req
            total["allocated"] += alloc
            total["allocs"] += 1
        elif event in ("kfree", "kmem_cache_free"):
            ok, ptr = _pointer(f, lineno, skip_bad)
            if ptr is None:
                total["bad_lines"] += not ok
                continue
            found = live.pop(ptr, None)
            if found is None:
                total["unmatched_frees"] += 1
                continue
            site, cache, acpu, alloc = found
            total["freed"] += alloc
            total["frees"] += 1
            if acpu != cpu:
                total["cross_cpu_frees"] += 1
                sites[site].pingpong += 1
                caches[cache].pingpong += 1
                if alloc_ptr:
                    ptrs[ptr].pingpong += 1
    total["bad_lines"] += stats["bad_lines"]
    total["net"] = total["allocated"] - total["freed"]
    total["wasted"] = total["allocated"] - total["requested"]
    total["fragmentation"] = fragmentation(total["requested"], total["allocated"])
    out = {"callsites": [r.as_dict("callsite") for r in sites.values()],
           "caches": [r.as_dict("cache") for r in caches.values()], "summary": total}
    if alloc_ptr:
        out["ptrs"] = [r.as_dict("ptr") for r in ptrs.values()]
    return out


def page_stats(path, skip_bad: bool = False) -> dict:
    """Rows by (order, migrate type, GFP flags), the order x migratetype table and the summary."""
    groups: dict[tuple, dict] = {}
    live: dict[int, tuple] = {}
    orders = [[0] * 5 for _ in range(11)]
    s: dict[str, Any] = {"alloc_requests": 0, "alloc_bytes": 0, "free_requests": 0, "free_bytes": 0, "nomatch": 0,
         "nomatch_bytes": 0, "failures": 0, "failure_bytes": 0}
    for lineno, event, _cpu, _ts, f in parse_events(path, skip_bad):
        if event == "mm_page_alloc":
            got = _fields(f, lineno, skip_bad, ("order", 0, 63), ("migratetype", 0, 1 << 31))
            if got is None:
                continue
            order, mt = got
            pfn_text, page = f.get("pfn", "0"), f.get("page", "")
            failed = page in ("0000000000000000", "(null)") or (pfn_text in ("0x0", "0") and not page.strip("0"))
            pfn_field = [0] if failed else _fields(f, lineno, skip_bad, ("pfn", 0, 1 << 62))
            if pfn_field is None:
                continue
            pfn = pfn_field[0]
            nbytes = PAGE_SIZE << order
            s["alloc_requests"] += 1
            s["alloc_bytes"] += nbytes
            if failed:
                s["failures"] += 1
                s["failure_bytes"] += nbytes
                continue
            gfp = f.get("gfp_flags", "none")
            key = (order, mt, gfp)
            row = groups.get(key)
            if row is None:
                row = groups[key] = {"order": order, "migtype": MIGRATE_SHORT[min(mt, 5)], "gfp": gfp,
                                     "gfp_mask": parse_gfp(gfp), "hit": 0, "bytes": 0}
            row["hit"] += 1
            row["bytes"] += nbytes
            if 0 <= order <= 10 and 0 <= mt < 5:
                orders[order][mt] += 1
            live[pfn] = key
        elif event in PAGE_FREE_EVENTS:
            got = _fields(f, lineno, skip_bad, ("order", 0, 63), ("pfn", 0, 1 << 62))
            if got is None:
                continue
            order, pfn = got
            nbytes = PAGE_SIZE << order
            s["free_requests"] += 1
            s["free_bytes"] += nbytes
            if live.pop(pfn, None) is None:
                s["nomatch"] += 1
                s["nomatch_bytes"] += nbytes
    s["order_migratetype"] = orders
    return {"pages": list(groups.values()), "summary": s}


def _sorted(rows: list, sort: str, keys, alias: dict, name: str | None = None) -> list:
    """rows by the comma-separated keys, each largest first as in perf's sort_slab_insert() and
    sort_page_insert(); ties keep the order of the row's name (perf's input tree), ascending."""
    fields = [k.strip() for k in sort.split(",") if k.strip()]
    for k in fields:
        if k not in keys:
            raise InvalidArgument(f"unknown sort key {k!r}: use {', '.join(keys)}")
    columns = [alias.get(k, k) for k in fields]

    def key(row):
        return tuple(row[c] for c in columns)
    if name is not None:
        rows = sorted(rows, key=lambda row: row[name])
    return sorted(rows, key=key, reverse=True)


def _slab_table(rows, title: str, name_key: str, lines) -> list[str]:
    out = [DOTS, f" {title:<34} | Total_alloc/Per | Total_req/Per   | Hit      | Ping-pong | Frag", DOTS]
    shown = rows if lines is None else rows[:lines]
    for r in shown:
        name = f"{r[name_key]:#x}" if name_key == "ptr" else r[name_key]
        out.append(f" {name:<34} | {r['total_alloc']:9d}/{r['per_alloc']:<5d} | "
                   f"{r['total_req']:9d}/{r['per_req']:<5d} | {r['hit']:8d} | {r['pingpong']:9d} | "
                   f"{fragmentation(r['total_req'], r['total_alloc']):6.3f}%")
    if lines is not None and len(rows) > lines:
        out.append(" ...                                | ...             | ...             | ...      | ...       | ...   ")
    out.append(DOTS)
    return out


def render_slab(stats: dict, sort: str = DEFAULT_SLAB_SORT, lines: int | None = None) -> str:
    """perf kmem stat --slab's text; the Alloc Ptr table when stats has ``ptrs``."""
    t = stats["summary"]
    alias = {"bytes": "total_alloc", "req": "total_req"}
    out = _slab_table(_sorted(stats["callsites"], sort, SLAB_SORT_KEYS, dict(alias, cache="callsite", ptr="callsite"),
                              "callsite"), "Callsite", "callsite", lines)
    if "ptrs" in stats:
        out += _slab_table(_sorted(stats["ptrs"], sort, SLAB_SORT_KEYS, dict(alias, cache="ptr", callsite="ptr"),
                                   "ptr"), "Alloc Ptr", "ptr", lines)
    out += _slab_table(_sorted(stats["caches"], sort, SLAB_SORT_KEYS, dict(alias, callsite="cache", ptr="cache"),
                               "cache"), "Cache", "cache", lines)
    out += ["", "SUMMARY (SLUB allocator)", "========================",
            f"Total bytes requested: {t['requested']:,}",
            f"Total bytes allocated: {t['allocated']:,}",
            f"Total bytes freed:     {t['freed']:,}"]
    if t["allocated"] > t["freed"]:
        out.append(f"Net total bytes allocated: {t['net']:,}")
    out += [f"Total bytes wasted on internal fragmentation: {t['wasted']:,}",
            f"Internal fragmentation: {t['fragmentation']:f}%",
            f"Cross CPU allocations: 0/{t['allocs']:,}",
            f"Cross CPU frees: {t['cross_cpu_frees']:,}/{t['frees']:,}",
            f"Frees of objects allocated before the trace: {t['unmatched_frees']:,}"]
    if t.get("implied_frees"):
        out.append(f"Implied frees (a pointer allocated again while live): {t['implied_frees']:,}")
    return "\n".join(out) + "\n"


def render_page(stats: dict, sort: str = DEFAULT_PAGE_SORT, lines: int | None = None) -> str:
    rows = _sorted([dict(r, mt=_migrate_index(r["migtype"])) for r in stats["pages"]], sort, PAGE_SORT_KEYS,
                   {"migtype": "mt", "gfp": "gfp_mask"})
    gfp_len = max([len("GFP flags")] + [len(compact_gfp(r["gfp"])) for r in rows])
    out = ["#", "# GFP flags", "# ---------"]
    seen: dict[int, str] = {}
    for r in rows:
        seen.setdefault(r["gfp_mask"], r["gfp"])
    for mask in sorted(seen):
        out.append(f"# {mask:08x}: {compact_gfp(seen[mask]):>{gfp_len}}: {seen[mask]}")
    out += ["", DOTS, f" Total alloc (KB) | Hits      | Order | Mig.type | {'GFP flags':<{gfp_len}}", DOTS]
    shown = rows if lines is None else rows[:lines]
    for r in shown:
        out.append(f" {r['bytes'] // 1024:16,d} | {r['hit']:9,d} | {r['order']:5d} | {r['migtype']:>8} | "
                   f"{compact_gfp(r['gfp']):<{gfp_len}}")
    if lines is not None and len(rows) > lines:
        out.append(f" ...              | ...       | ...   | ...      | {'...':<{gfp_len}}")
    out.append(DOTS)
    s = stats["summary"]
    freed = s["free_requests"] - s["nomatch"]
    freed_bytes = s["free_bytes"] - s["nomatch_bytes"]

    def line(label, n, nbytes):
        return f"{label:<30}: {n:16,d}   [ {nbytes // 1024:16,d} KB ]"
    out += ["", "SUMMARY (page allocator)", "========================",
            line("Total allocation requests", s["alloc_requests"], s["alloc_bytes"]),
            line("Total free requests", s["free_requests"], s["free_bytes"]), "",
            line("Total alloc+freed requests", freed, freed_bytes),
            line("Total alloc-only requests", s["alloc_requests"] - freed, s["alloc_bytes"] - freed_bytes),
            line("Total free-only requests", s["nomatch"], s["nomatch_bytes"]), "",
            line("Total allocation failures", s["failures"], s["failure_bytes"]), "",
            f"{'Order':>5}" + "".join(f"  {name:>12}" for name in MIGRATE_LONG),
            "-----" + "  ------------" * len(MIGRATE_LONG)]
    for order, row in enumerate(s["order_migratetype"]):
        out.append(f"{order:5d}" + "".join(f"  {n:12,d}" if n else f"  {'.':>12}" for n in row))
    return "\n".join(out) + "\n"


def _migrate_index(label: str) -> int:
    return MIGRATE_SHORT.index(label) if label in MIGRATE_SHORT else len(MIGRATE_SHORT)


def to_json(stats: dict) -> str:
    return json.dumps(stats, indent=1, sort_keys=True) + "\n"


def to_csv(stats: dict) -> str:
    """One CSV table; a ``table`` column tells call-site rows from cache rows (slab)."""
    buf = io.StringIO()
    if "pages" in stats:
        rows = [dict(r, table="pages") for r in stats["pages"]]
    else:
        rows = [dict(r, table="callsite", name=r.pop("callsite")) for r in map(dict, stats["callsites"])]
        rows += [dict(r, table="ptr", name=f"{r.pop('ptr'):#x}") for r in map(dict, stats.get("ptrs", ()))]
        rows += [dict(r, table="cache", name=r.pop("cache")) for r in map(dict, stats["caches"])]
    if not rows:
        return ""
    w = csv.DictWriter(buf, fieldnames=list(rows[0].keys()), lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()
