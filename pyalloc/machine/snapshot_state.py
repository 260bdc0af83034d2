"""The shared layer's state in a snapshot: plain data with a schema, never code.

The PYST section of a snapshot holds what the Python side of a Machine keeps
beside its core (cache names, vmalloc areas and the vmap ranges, the kernel
log, processes and files, callers, the warned-once set).  It is one JSON
object whose keys and types are fixed by :data:`SCHEMA_VERSION` 1:

    caches        [[id, name], ...]  the cache each core id was first created as, oldest first
    callers       [name, ...]        caller ids 1..n as slub_debug tracks and traces name them
    track_callers bool               callers are being tracked
    slab_tainted  bool               a slab BUG report tainted the kernel
    comm, pid     str, int           the task the machine's own calls run as
    warned_once   [key, ...]         WARN_ON_ONCE sites already fired
    nopage_rs     [begin or null, n_left, missed]  warn_alloc()'s rate limit (machine/ratelimit.py);
                                     optional: a file without it reads as never limited
    log           [[level, line], ...]  the printk buffer, oldest first
    procs         [[pid, name, mm, oom_score_adj], ...]
    next_pid      int
    oom_victim    int or null
    files         [[path, mm], ...]
    vm_areas      [[start, size, flags, [pfn, ...], mapped, caller, pages_array or null, nested], ...]
    vfreed        [[start, how], ...]  freed vmalloc starts, oldest first (double-free reports)
    array_owner   [[array address, area start], ...]
    vmap_busy     [[start, end], ...]  the busy ranges of the vmalloc space, ascending
                                       (the free ranges are the gaps between them)

Reading takes nothing on trust: every value is type- and range-checked and
checked against the loaded core (cache ids are live caches, mms are live and
owned once, area pages are the core's vmalloc pages, areas are exactly the
busy ranges) before the machine sees it, and any fault is a SnapshotError.
No class is looked up by name and nothing is executed.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from typing import Any

from ..errors import SnapshotError
from .. import _abi as st
from ..text.printk import LOG_BUF_LEN
from .ratelimit import RatelimitState
from .reclaim import FIRST_PID, Process
from .slab import Cache
from .vmalloc import FORGET_AFTER, VMALLOC_END, VMALLOC_START, VmArea
from .vmap_area import VmapAreas
from .vmalloc_owner import check_areas

SCHEMA_VERSION = 1
PID_MAX = 1 << 22               # PID_MAX_LIMIT on 64-bit
NAME_MAX = 4096                 # longest name, path, caller or log line taken from a file
U64 = (1 << 64) - 1

# the Machine attributes this schema rebuilds (the rest come from INFO or are made anew)
SAVED = ("_caches", "_cache_order", "_callers", "_caller_names", "_track_callers", "_slab_tainted", "_comm", "_pid",
         "_warned_once", "_nopage_rs", "_log", "_procs", "_next_pid", "_oom_victim", "_files", "_vm_areas", "_vfreed",
         "_vm_array_owner", "_vmap")


def dump(m) -> bytes:
    """The PYST payload of machine *m* (called with its lock held)."""
    state = {
        "schema": SCHEMA_VERSION,
        "caches": [[cid, m._caches[cid].name] for cid in m._cache_order],
        "callers": list(m._caller_names),
        "track_callers": bool(m._track_callers),
        "slab_tainted": bool(m._slab_tainted),
        "comm": m._comm,
        "pid": m._pid,
        "warned_once": sorted(m._warned_once),
        "nopage_rs": m._nopage_rs.dump(),
        "log": [list(r) for r in m._log.records()],
        "procs": [[p.pid, p.name, p.mm, p.oom_score_adj] for p in m._procs.values()],
        "next_pid": m._next_pid,
        "oom_victim": m._oom_victim,
        "files": [[path, mm] for path, mm in m._files.items()],
        "vm_areas": [[a.start, a.size, a.flags, list(a.pfns), a.mapped, a.caller, a.pages_array, a.nested]
                     for a in m._vm_areas.values()],
        "vfreed": [[start, how] for start, how in m._vfreed.items()],
        "array_owner": [[array, start] for array, start in m._vm_array_owner.items()],
        "vmap_busy": [[s, s + size] for s, size in m._vmap.busy()],
    }
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()


# -- reading -------------------------------------------------------------------------------------

class _Bad(Exception):
    """One fault in the state; the loader turns it into a SnapshotError naming the file."""


def _int(v: Any, lo: int, hi: int, what: str) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise _Bad(f"{what} must be an int from {lo} to {hi}")
    return v


def _bool(v: Any, what: str) -> bool:
    if type(v) is not bool:
        raise _Bad(f"{what} must be true or false")
    return v


def _str(v: Any, what: str, empty: bool = False) -> str:
    if type(v) is not str or len(v) > NAME_MAX or (not v and not empty) or "\0" in v:
        raise _Bad(f"{what} must be a string of 1 to {NAME_MAX} characters without NUL")
    return v


def _list(v: Any, what: str, width: int | None = None) -> list:
    if type(v) is not list:
        raise _Bad(f"{what} must be a list")
    if width is not None:
        for row in v:
            if type(row) is not list or len(row) != width:
                raise _Bad(f"{what} must hold lists of {width} values")
    return v


def _unique(keys: list, what: str) -> None:
    if len(set(keys)) != len(keys):
        raise _Bad(f"{what} repeats an entry")


def _parse(payload: bytes) -> dict:
    try:
        state = json.loads(bytes(payload).decode("utf-8"))
    except (ValueError, RecursionError) as exc:     # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _Bad(f"not JSON ({type(exc).__name__})") from None
    if type(state) is not dict:
        raise _Bad("not a JSON object")
    if state.get("schema") != SCHEMA_VERSION:
        raise _Bad(f"schema {str(state.get('schema'))[:20]} is not {SCHEMA_VERSION}")
    want = {"schema", "caches", "callers", "track_callers", "slab_tainted", "comm", "pid", "warned_once", "log",
            "procs", "next_pid", "oom_victim", "files", "vm_areas", "vfreed", "array_owner", "vmap_busy"}
    if set(state) - {"nopage_rs"} != want:
        extra, missing = sorted(set(state) - want), sorted(want - set(state))
        raise _Bad(f"keys differ from the schema (unknown {extra[:3]}, missing {missing[:3]})")
    return state


def _slab_state(m, s: dict) -> None:
    core = m._core
    caches: dict[int, Cache] = {}
    order: list[int] = []
    for cid, name in _list(s["caches"], "caches", 2):
        _int(cid, 0, st.MAX_CACHES - 1, "a cache id")
        info = core.cache_info(cid)
        if info is None:
            raise _Bad(f"cache id {cid} is not a live cache of the core")
        if cid in caches:
            raise _Bad(f"cache id {cid} is listed twice")
        caches[cid] = Cache(m, _str(name, "a cache name"), cid, info)
        order.append(cid)
    live = [cid for cid in range(st.MAX_CACHES) if core.cache_info(cid) is not None]
    if sorted(order) != live:
        raise _Bad("the caches listed are not the core's live caches")
    m._caches, m._cache_order = caches, order
    names = [_str(n, "a caller name") for n in _list(s["callers"], "callers")]
    _unique(names, "callers")
    m._caller_names = names
    m._callers = {n: i + 1 for i, n in enumerate(names)}
    m._track_callers = _bool(s["track_callers"], "track_callers")
    m._slab_tainted = _bool(s["slab_tainted"], "slab_tainted")


def _log_state(m, s: dict) -> None:
    from ..text.printk import KernelLog
    m._comm = _str(s["comm"], "comm")
    m._pid = _int(s["pid"], 0, PID_MAX, "pid")
    warned = [_str(k, "a warned-once key") for k in _list(s["warned_once"], "warned_once")]
    m._warned_once = set(warned)
    try:
        m._nopage_rs = RatelimitState.load(s["nopage_rs"]) if "nopage_rs" in s else RatelimitState()
    except ValueError as exc:
        raise _Bad(str(exc)) from None
    log = KernelLog()
    size = 0
    for level, line in _list(s["log"], "log", 2):
        _str(level, "a log level", empty=True)
        _str(line, "a log line", empty=True)
        size += len(line) + 1
        log._lines.append((level, line))
    if size > LOG_BUF_LEN:
        raise _Bad(f"the log holds {size} bytes, more than its {LOG_BUF_LEN}")
    log._size = size
    m._log = log


def _reclaim_state(m, s: dict) -> None:
    core = m._core
    owners: dict[int, str] = {}

    def own(mid: Any, is_file: bool, who: str) -> int:
        _int(mid, 0, U64, f"the mm of {who}")
        info = core.mm_info(mid)
        if info is None or not info["alive"] or bool(info["is_file"]) != is_file:
            raise _Bad(f"{who} names mm {mid}, which is not a live {'file' if is_file else 'process'} mm")
        if mid in owners:
            raise _Bad(f"{who} and {owners[mid]} share mm {mid}")
        owners[mid] = who
        return mid

    m._next_pid = _int(s["next_pid"], FIRST_PID, PID_MAX, "next_pid")
    procs: dict[int, Process] = {}
    for pid, name, mid, adj in _list(s["procs"], "procs", 4):
        _int(pid, FIRST_PID, m._next_pid - 1, "a pid")
        if pid in procs:
            raise _Bad(f"pid {pid} is listed twice")
        procs[pid] = Process(pid, _str(name, "a process name"), own(mid, False, f"pid {pid}"),
                             _int(adj, -1000, 1000, "oom_score_adj"))
    victim = s["oom_victim"]
    m._oom_victim = None if victim is None else _int(victim, 0, PID_MAX, "oom_victim")
    m._oom_panicked = False
    files: dict[str, int] = {}
    for path, mid in _list(s["files"], "files", 2):
        _str(path, "a file path")
        if path in files:
            raise _Bad(f"file {path[:60]!r} is listed twice")
        files[path] = own(mid, True, f"file {path[:60]!r}")
    mid = 0
    while True:                 # every live mm belongs to someone (ids are handed out densely)
        info = core.mm_info(mid)
        if info is None:
            break
        if info["alive"] and mid not in owners:
            raise _Bad(f"live mm {mid} belongs to no process or file")
        mid += 1
    m._procs, m._files = procs, files


def _vmalloc_state(m, s: dict) -> None:
    vmap = VmapAreas(VMALLOC_START, VMALLOC_END)
    busy = _list(s["vmap_busy"], "vmap_busy", 2)
    at = VMALLOC_START
    for start, end in busy:
        _int(start, at, VMALLOC_END, "a busy range start")
        _int(end, start + 1, VMALLOC_END, "a busy range end")
        if start % st.PAGE_SIZE or end % st.PAGE_SIZE:
            raise _Bad(f"busy range [{start:#x}, {end:#x}) is not page-aligned")
        at = end
    for start, end in busy:     # first fit from the bottom reserves exactly these ranges
        if vmap.alloc(end - start, 1, start, end) != start:
            raise _Bad(f"busy range [{start:#x}, {end:#x}) cannot be reserved")
    vmap.check()
    ranges = dict((start, end) for start, end in busy)
    areas: dict[int, VmArea] = {}
    for start, size, flags, pfns, mapped, caller, array, nested in _list(s["vm_areas"], "vm_areas", 8):
        _int(start, VMALLOC_START, VMALLOC_END, "an area start")
        if start in areas:
            raise _Bad(f"vmalloc area {start:#x} is listed twice")
        if ranges.get(start) is None or ranges[start] - start != _int(size, 1, U64, "an area size"):
            raise _Bad(f"vmalloc area {start:#x} is not a busy range of its size")
        a = VmArea(start, size, _int(flags, 0, 0xffff, "area flags"), _str(caller, "a caller"))
        a.pfns = [_int(p, 0, m.nr_pages - 1, "an area pfn") for p in _list(pfns, "area pfns")]
        a.mapped = _int(mapped, 0, size // st.PAGE_SIZE, "mapped pages")
        if len(a.pfns) > a.mapped:
            raise _Bad(f"vmalloc area {start:#x} owns more pages than it maps")
        a.pages_array = None if array is None else _int(array, 0, U64, "a page array address")
        a.nested = _bool(nested, "nested")
        areas[start] = a
    if len(areas) != len(ranges):
        raise _Bad("the vmalloc areas are not the busy ranges")
    _unique([p for a in areas.values() for p in a.pfns], "the pages of vmalloc areas")
    vfreed: OrderedDict[int, str] = OrderedDict()
    for start, how in _list(s["vfreed"], "vfreed", 2):
        _int(start, VMALLOC_START, VMALLOC_END, "a freed area start")
        vfreed[start] = _str(how, "how an area was freed")
    if len(vfreed) > FORGET_AFTER:
        raise _Bad(f"more than {FORGET_AFTER} freed areas remembered")
    owner: dict[int, int] = {}
    for array, start in _list(s["array_owner"], "array_owner", 2):
        owner[_int(array, 0, U64, "a page array address")] = _int(start, 0, U64, "an area start")
    m._vmap, m._vm_areas, m._vfreed, m._vm_array_owner = vmap, areas, vfreed, owner
    problem = check_areas(m, walk=False)
    if problem is not None:
        raise _Bad(problem)


def restore(m, payload: bytes, where: str) -> None:
    """Set machine *m*'s shared-layer state from a PYST payload, checking every value against *m*'s core."""
    try:
        s = _parse(payload)
        _slab_state(m, s)
        _log_state(m, s)
        _reclaim_state(m, s)
        _vmalloc_state(m, s)
    except _Bad as exc:
        raise SnapshotError(f"{where}: bad Python-side state: {exc}") from None
    except (ValueError, AssertionError, RecursionError) as exc:     # the vmap ranges' own checks
        raise SnapshotError(f"{where}: bad Python-side state: {type(exc).__name__}: {str(exc)[:200]}") from None
