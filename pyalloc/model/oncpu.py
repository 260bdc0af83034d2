"""The per-call entries that name the simulated CPU with the call (csrc/oncpu.c).

Each ``X_on`` is the entry ``X`` run as ``cpu``: a cpu outside 0..cpus-1 is
refused with EINVAL before anything changes, the previous CPU is put back
after, as Machine.on_cpu() does around a block.  As cffi converts every
argument before the C entry runs, a cpu that is not a plain int converts all
of them first (TypeError, OverflowError) before its range is checked.
"""

from __future__ import annotations

from typing import Callable

from .._abi import EINVAL
from . import buddy, slab
from .arena import Arena, c_ints


def _odd_cpu(a: Arena, fn: Callable[..., int], args: tuple, cpu) -> int:
    """A cpu that is not a plain int in 0..cpus-1: convert as cffi would, then refuse or run."""
    *ints, cpu = c_ints(*args, cpu)
    if not 0 <= cpu < a.cpus:
        return EINVAL
    home, a.cpu = a.cpu, cpu
    try:
        return fn(a, *ints)
    finally:
        a.cpu = home


def kmalloc_on(a: Arena, size: int, gfp: int, caller: int, cpu: int) -> int:
    if type(cpu) is not int or not 0 <= cpu < a.cpus:
        return _odd_cpu(a, slab.kmalloc, (size, gfp, caller), cpu)
    home, a.cpu = a.cpu, cpu
    try:
        return slab.kmalloc(a, size, gfp, caller)
    finally:
        a.cpu = home


def kfree_on(a: Arena, phys: int, caller: int, cpu: int) -> int:
    if type(cpu) is not int or not 0 <= cpu < a.cpus:
        return _odd_cpu(a, slab.kfree, (phys, caller), cpu)
    home, a.cpu = a.cpu, cpu
    try:
        return slab.kfree(a, phys, caller)
    finally:
        a.cpu = home


def kmem_cache_alloc_on(a: Arena, cid: int, gfp: int, caller: int, cpu: int) -> int:
    if type(cpu) is not int or not 0 <= cpu < a.cpus:
        return _odd_cpu(a, slab.kmem_cache_alloc, (cid, gfp, caller), cpu)
    home, a.cpu = a.cpu, cpu
    try:
        return slab.kmem_cache_alloc(a, cid, gfp, caller)
    finally:
        a.cpu = home


def kmem_cache_free_on(a: Arena, cid: int, phys: int, caller: int, cpu: int) -> int:
    if type(cpu) is not int or not 0 <= cpu < a.cpus:
        return _odd_cpu(a, slab.kmem_cache_free, (cid, phys, caller), cpu)
    home, a.cpu = a.cpu, cpu
    try:
        return slab.kmem_cache_free(a, cid, phys, caller)
    finally:
        a.cpu = home


def alloc_pages_on(a: Arena, gfp: int, order: int, cpu: int) -> int:
    if type(cpu) is not int or not 0 <= cpu < a.cpus:
        return _odd_cpu(a, buddy.alloc_pages, (gfp, order), cpu)
    home, a.cpu = a.cpu, cpu
    try:
        return buddy.alloc_pages(a, gfp, order)
    finally:
        a.cpu = home


def free_pages_on(a: Arena, pfn: int, order: int, cpu: int) -> int:
    if type(cpu) is not int or not 0 <= cpu < a.cpus:
        return _odd_cpu(a, buddy.free_pages, (pfn, order), cpu)
    home, a.cpu = a.cpu, cpu
    try:
        return buddy.free_pages(a, pfn, order)
    finally:
        a.cpu = home
