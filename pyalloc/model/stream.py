"""Run an operation stream (the model's copy of csrc/stream.c, same rules, same stops).

``run`` walks the records of a :class:`pyalloc.machine.stream.Stream` (four 64-bit
words each, laid out as struct pa_op) and calls the model's core functions as
the per-call path does.  It stops at any status it does not handle itself and
returns it with ``r.pos`` at that op; see csrc/stream.c for why.
"""

from __future__ import annotations

from . import buddy, slab, reclaim
from .._abi import (  # noqa: F401  (the op kinds are re-exported for pyalloc.machine.stream)
    EDEFER, EDOUBLEFREE, EINVAL, OBJ_FREED, OBJ_LIVE, OBJ_NONE, OK, OP_ALLOC_PAGES, OP_CPU_CURRENT,
    OP_FREE_PAGES, OP_KFREE, OP_KMALLOC, OP_KMEM_CACHE_ALLOC, OP_KMEM_CACHE_FREE, OP_KREALLOC, OP_VFREE,
    OP_VMALLOC, PAGE_SHIFT, ZERO_SIZE_STATUS, OP_SPAWN, OP_TOUCH, OP_EXIT, OP_READ_FILE, OP_WRITE_FILE,
    OP_SYNC, OP_DROP_CACHES, GFP_NOFAIL, GFP_ZERO, PAGE_OFFSET,
)

ALLOCATES = frozenset({OP_KMALLOC, OP_KREALLOC, OP_KMEM_CACHE_ALLOC, OP_ALLOC_PAGES})
SLAB_BUG_MASK = 0x4 | 0x2 | (0xffffffff & ~0x1ffffff)


class Run:
    """The model's struct pa_run."""

    __slots__ = ("ops", "results", "state", "callers", "caches", "pos", "end", "trace_limit")

    def __init__(self, ops, results, state, callers, caches, pos=0, end=None, trace_limit=0) -> None:
        self.ops, self.results, self.state = ops, results, state
        self.callers, self.caches = callers, caches
        self.pos, self.trace_limit = pos, trace_limit
        self.end = len(ops) // 4 if end is None else max(0, min(end, len(ops) // 4))


def _signed(v: int, bits: int) -> int:
    return v - (1 << bits) if v >> (bits - 1) else v


def decode(ops, i: int):
    """(kind, cpu, gfp, caller, cache, handle, arg) of op i."""
    w0, w1, w2, w3 = ops[4 * i:4 * i + 4]
    return (w0 & 0xffff, (w0 >> 16) & 0xffff, w0 >> 32, w1 & 0xffffffff, _signed(w1 >> 32, 32),
            _signed(w2, 64), _signed(w3, 64))


def _handle_phys(r: Run, i: int, h: int) -> int:
    if not 0 <= h < i or decode(r.ops, h)[0] not in ALLOCATES:
        return EINVAL
    if r.state[h] == OBJ_FREED:
        return EDOUBLEFREE
    if r.state[h] != OBJ_LIVE:
        return EINVAL
    v = r.results[h]
    if decode(r.ops, h)[0] == OP_ALLOC_PAGES:
        # results is the caller's memory: a pfn past int64 when shifted is refused, as in C
        return v << PAGE_SHIFT if 0 <= v <= (1 << 63) - 1 >> PAGE_SHIFT else EINVAL
    return v


def _null_handle(r: Run, i: int, h: int) -> bool:
    """h names an earlier allocation that gave NULL or ZERO_SIZE_PTR."""
    return 0 <= h < i and r.results[h] < 0 and decode(r.ops, h)[0] in ALLOCATES


def _freed(r: Run, h: int, rc: int) -> int:
    if rc == OK:
        r.state[h] = OBJ_FREED
    return rc


def _trace_kfree(a, caller: int, ptr: int) -> None:
    if a.trace is not None:
        a.trace.kfree(a, caller, ptr - PAGE_OFFSET)


def _krealloc(a, r: Run, i, h, size, gfp, caller) -> int:
    old = -1
    if size < 0:
        return EINVAL
    if h != -1 and not _null_handle(r, i, h):
        old = _handle_phys(r, i, h)
        if old < 0:
            return old
    if size == 0:
        if old >= 0:
            rc = slab.kfree(a, old, caller)
            if rc:
                return rc
            r.state[h] = OBJ_FREED
        return ZERO_SIZE_STATUS
    ks = 0
    if old >= 0:
        ks = slab.ksize(a, old)
        if ks < 0:
            return ks
    if ks >= size:
        if gfp & GFP_ZERO:
            a.memset(old + size, 0, ks - size)
        r.state[h] = OBJ_FREED
        return old
    new = slab.slab_kmalloc(a, size, gfp, caller)
    if new < 0:
        return new
    if ks:
        a.write(new, a.read(old, ks))
        rc = slab.kfree(a, old, caller)
        if rc:
            return rc
        r.state[h] = OBJ_FREED
    return new


def run_op(a, r: Run, i: int, kind, gfp, cache, h, arg, caller) -> int:
    if kind == OP_KMALLOC:
        if gfp & SLAB_BUG_MASK:
            return EDEFER
        return slab.slab_kmalloc(a, arg, gfp, caller)
    if kind == OP_KFREE:
        if h == -1:
            _trace_kfree(a, caller, 0)
            return OK
        if _null_handle(r, i, h):
            _trace_kfree(a, caller, 0x10 if r.results[h] == ZERO_SIZE_STATUS else 0)
            return OK
        phys = _handle_phys(r, i, h)
        if phys < 0:
            return phys
        return _freed(r, h, slab.kfree(a, phys, caller))
    if kind == OP_KREALLOC:
        if gfp & SLAB_BUG_MASK:
            return EDEFER
        return _krealloc(a, r, i, h, arg, gfp, caller)
    if kind == OP_KMEM_CACHE_ALLOC:
        # the cache first: the per-call path that a deferral takes must get a real one
        if not 0 <= cache < len(r.caches):
            return EINVAL
        if gfp & SLAB_BUG_MASK:
            return EDEFER
        return slab.slab_cache_alloc(a, r.caches[cache], gfp, caller)
    if kind == OP_KMEM_CACHE_FREE:
        if not 0 <= cache < len(r.caches):
            return EINVAL
        if h == -1 or _null_handle(r, i, h):
            return OK
        phys = _handle_phys(r, i, h)
        if phys < 0:
            return phys
        return _freed(r, h, slab.kmem_cache_free(a, r.caches[cache], phys, caller))
    if kind == OP_ALLOC_PAGES:
        if gfp & GFP_NOFAIL and not 0 <= arg <= 1:
            return EDEFER           # __alloc_pages_slowpath() may warn (csrc/stream.c)
        return buddy.alloc(a, gfp, arg)
    if kind == OP_FREE_PAGES:
        phys = _handle_phys(r, i, h)
        if phys < 0:
            return phys
        return _freed(r, h, buddy.free_pages(a, phys >> PAGE_SHIFT, arg))
    return EDEFER


def stream_run(a, r: Run) -> int:
    """Run ops from r.pos; OK when done (or paused for the trace), else the stopping status."""
    n = r.end
    # the lengths csrc/stream.c checks: results and state hold every op that may run
    if not 0 <= r.pos <= n or len(r.results) < n or len(r.state) < n:
        return EINVAL
    home = a.cpu
    ops, results, state, callers = r.ops, r.results, r.state, r.callers
    for i in range(r.pos, n):
        kind, cpu, gfp, caller, cache, h, arg = decode(ops, i)
        if caller >= len(callers) or (cpu != OP_CPU_CURRENT and cpu >= a.cpus):
            res = EINVAL
        else:
            if cpu != OP_CPU_CURRENT:
                a.cpu = cpu
            if kind in ALLOCATES:
                a.alloc_seq += 1        # each op is an allocating call of its own
            try:
                res = run_op(a, r, i, kind, gfp, cache, h, arg, callers[caller])
            finally:
                a.cpu = home
            res = reclaim.call_end(a, res)
        results[i] = res
        if res >= 0:
            if kind in ALLOCATES:
                state[i] = OBJ_LIVE
        elif res != ZERO_SIZE_STATUS:
            r.pos = i
            return res
        if a.trace is not None and r.trace_limit > 0 and len(a.trace.records) >= r.trace_limit:
            r.pos = i + 1
            return OK
    r.pos = n
    return OK
