"""The per-call entries that name the simulated CPU with the call (csrc/oncpu.c).

Each ``X_on`` is the entry ``X`` run as ``cpu``: a cpu outside 0..cpus-1 is
refused with EINVAL before anything changes, the previous CPU is put back
after, as Machine.on_cpu() does around a block.  The arguments are converted
first, all of them, as cffi converts them before the C entry runs.
"""

from __future__ import annotations

from typing import Callable

from .._abi import EINVAL
from . import buddy, slab
from .arena import Arena, c_ints


def _as_cpu(a: Arena, cpu: int, fn: Callable[..., int], *args) -> int:
    if not 0 <= cpu < a.cpus:
        return EINVAL
    home, a.cpu = a.cpu, cpu
    try:
        return fn(a, *args)
    finally:
        a.cpu = home


def kmalloc_on(a: Arena, size: int, gfp: int, caller: int, cpu: int) -> int:
    size, gfp, caller, cpu = c_ints(size, gfp, caller, cpu)
    return _as_cpu(a, cpu, slab.kmalloc, size, gfp, caller)


def kfree_on(a: Arena, phys: int, caller: int, cpu: int) -> int:
    phys, caller, cpu = c_ints(phys, caller, cpu)
    return _as_cpu(a, cpu, slab.kfree, phys, caller)


def kmem_cache_alloc_on(a: Arena, cid: int, gfp: int, caller: int, cpu: int) -> int:
    cid, gfp, caller, cpu = c_ints(cid, gfp, caller, cpu)
    return _as_cpu(a, cpu, slab.kmem_cache_alloc, cid, gfp, caller)


def kmem_cache_free_on(a: Arena, cid: int, phys: int, caller: int, cpu: int) -> int:
    cid, phys, caller, cpu = c_ints(cid, phys, caller, cpu)
    return _as_cpu(a, cpu, slab.kmem_cache_free, cid, phys, caller)


def alloc_pages_on(a: Arena, gfp: int, order: int, cpu: int) -> int:
    gfp, order, cpu = c_ints(gfp, order, cpu)
    return _as_cpu(a, cpu, buddy.alloc_pages, gfp, order)


def free_pages_on(a: Arena, pfn: int, order: int, cpu: int) -> int:
    pfn, order, cpu = c_ints(pfn, order, cpu)
    return _as_cpu(a, cpu, buddy.free_pages, pfn, order)
