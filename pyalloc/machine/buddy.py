"""Machine's per-call page methods, and the documented face of every hot path.

``alloc_pages``, ``free_pages``, ``kmalloc``, ``kfree``, ``kmem_cache_alloc``
and ``kmem_cache_free`` run as closures set on each instance
(:func:`_hot_paths` below, slab.py ``_slab_hot_paths``): every name they use
is a local, so a call costs one core call and a sign test.  An instance
attribute shadows a method of the same name, so the methods below are never on
that path; they exist so that ``help(pyalloc.Machine.kmalloc)``, ``help(m)``,
IDEs and type checkers see each call with its signature, its return value and
its exceptions.  Called through the class (``Machine.kmalloc(m, ...)``) they
hand over to the instance's closure.
"""

from __future__ import annotations

import functools
import inspect

from typing import TYPE_CHECKING, Optional

from .. import gfp as gfpmod
from ..gfp import GfpLike  # noqa: F401  (GfpLike: its old home)
from .state import MachineState
from .slab import Cache

if TYPE_CHECKING:
    from .machine import Machine


_NOFAIL = gfpmod.GFP_NOFAIL
_parse_gfp = gfpmod.parse


def _hot_paths(machine: "Machine", core):
    """alloc_pages and free_pages as closures over one machine's core.

    They are the per-call path, so everything they need is a local: a cached
    GFP lookup, one core call (a cffi function for the C core), a sign test.
    All else (failures, warnings, __GFP_NOFAIL) is in Machine's slow helpers.
    """
    alloc, free, handle = core.hot_alloc_pages, core.hot_free_pages, core.handle
    alloc_on, free_on, int_ = core.hot_alloc_pages_on, core.hot_free_pages_on, int
    parse, alloc_failed, free_failed = _parse_gfp, machine._alloc_failed_slow, machine._free_failed_slow
    alloc_nofail, nofail = machine._alloc_pages_nofail, _NOFAIL
    m = machine

    def alloc_pages(gfp, order=0, cpu=None):
        """alloc_pages(): the pfn of a new 2**order block, or None (NULL)."""
        flags = parse(gfp)
        if flags & nofail:
            return alloc_nofail(flags, order) if cpu is None else m._alloc_pages_on_slow(flags, order, cpu)
        if cpu is not None:
            if cpu.__class__ is not int_:
                return m._alloc_pages_on_slow(flags, order, cpu)
            try:
                r = alloc_on(handle, flags, order, cpu)
            except (TypeError, OverflowError):
                return m._alloc_pages_on_slow(flags, order, cpu)
            if r >= 0:
                return r
            return m._alloc_pages_on_failed(r, flags, order, cpu)
        try:
            r = alloc(handle, flags, order)
        except OverflowError:
            r = core.alloc_pages_wide(flags, order)
        except TypeError:
            raise TypeError(f"alloc_pages: order must be an int, not {type(order).__name__}") from None
        if r >= 0:
            return r
        return alloc_failed(r, flags, order)

    def free_pages(pfn, order=0, cpu=None):
        """__free_pages(): give back a block from alloc_pages (same pfn, same order)."""
        if cpu is not None:
            if cpu.__class__ is not int_:
                return m._free_pages_on_slow(pfn, order, cpu)
            try:
                r = free_on(handle, pfn, order, cpu)
            except (TypeError, OverflowError):
                return m._free_pages_on_slow(pfn, order, cpu)
            if r:
                m._free_pages_on_failed(r, pfn, order, cpu)
            return None
        try:
            r = free(handle, pfn, order)
        except OverflowError:
            r = core.free_pages_wide(pfn, order)
        except TypeError:
            bad, what = (pfn, "pfn") if isinstance(order, int) else (order, "order")
            raise TypeError(f"free_pages: {what} must be an int, not {type(bad).__name__}") from None
        if r:
            free_failed(r, pfn, order)

    return as_method(alloc_pages), as_method(free_pages)


def as_method(fn):
    """A per-call closure dressed as the documented method it shadows: its name in TypeErrors
    ("Machine.kmalloc() missing ..."), its help() text and its signature are the method's."""
    method = getattr(HotPathAPI, fn.__name__)
    fn.__qualname__ = f"Machine.{fn.__name__}"
    fn.__doc__ = method.__doc__
    fn.__module__ = "pyalloc"
    fn.__signature__ = _bound_signature(fn.__name__)    # inspect and help() show the documented parameters
    return fn


@functools.lru_cache(maxsize=None)
def _bound_signature(name: str) -> inspect.Signature:
    sig = inspect.signature(getattr(HotPathAPI, name))
    return sig.replace(parameters=list(sig.parameters.values())[1:])


class HotPathAPI(MachineState):
    """alloc_pages, free_pages, kmalloc, kfree, kmem_cache_alloc, kmem_cache_free."""

    def alloc_pages(self, gfp: GfpLike, order: int = 0, cpu: Optional[int] = None) -> Optional[int]:
        """alloc_pages(): allocate a block of 2**order pages.

        Returns the pfn of the block's first page, or None (NULL) when the
        request cannot be met (with the kernel's warn_alloc report in dmesg()
        unless __GFP_NOWARN) or the order is above MAX_PAGE_ORDER.  ``cpu``
        runs the call as that simulated CPU (InvalidArgument outside 0..cpus-1).

        Raises GFPError for a mask the kernel cannot interpret, InvalidArgument
        for a negative order, TypeError for an order that is not an int,
        OutOfMemory for a __GFP_NOFAIL request that nothing can satisfy.
        """
        return self.__dict__["alloc_pages"](gfp, order, cpu)

    def free_pages(self, pfn: int, order: int = 0, cpu: Optional[int] = None) -> None:
        """__free_pages(): give back a block from alloc_pages (same pfn, same order), as
        simulated CPU ``cpu`` if given.

        Returns None.  Raises DoubleFree for a block that is free already,
        InvalidFree for any other pfn or order that is not a live block's
        (both also print the kernel's "Bad page state" / VM_BUG_ON report),
        InvalidArgument for an order outside 0..10.
        """
        return self.__dict__["free_pages"](pfn, order, cpu)

    def kmalloc(self, size: int, gfp: GfpLike, cpu: Optional[int] = None,
                caller: Optional[str] = None) -> Optional[int]:
        """kmalloc(): allocate size bytes from the kmalloc cache that fits (or pages past 8 KiB).

        Returns the object's direct-map address, ZERO_SIZE_PTR (0x10) for
        size 0, or None (NULL) when memory cannot be found or size is past
        KMALLOC_MAX_SIZE.  ``cpu`` runs the call as that simulated CPU;
        ``caller`` names the call site recorded with SLAB_STORE_USER.

        Raises GFPError for a bad mask, InvalidArgument for a negative size,
        TypeError for a size that is not an int, SlabCorruption when slub_debug
        finds a damaged free object, OutOfMemory for an impossible __GFP_NOFAIL.
        """
        return self.__dict__["kmalloc"](size, gfp, cpu, caller)

    def kfree(self, addr: Optional[int], cpu: Optional[int] = None, caller: Optional[str] = None) -> None:
        """kfree(): free an object from kmalloc; None and ZERO_SIZE_PTR do nothing.

        Returns None.  Raises DoubleFree for an object that is free already,
        InvalidFree for an address that is not a live kmalloc object's start,
        SlabCorruption when slub_debug finds the object damaged (each with the
        kernel's report in dmesg()), TypeError for an address that is not an int.
        """
        return self.__dict__["kfree"](addr, cpu, caller)

    def kmem_cache_alloc(self, cache: "Cache", gfp: GfpLike, cpu: Optional[int] = None,
                         caller: Optional[str] = None) -> Optional[int]:
        """kmem_cache_alloc(): allocate one object of a cache from kmem_cache_create().

        Returns the object's direct-map address, or None (NULL) when no slab
        can be found.  Raises InvalidArgument for something that is not a live
        cache of this machine, GFPError for a bad mask, SlabCorruption when
        slub_debug finds a damaged free object.
        """
        return self.__dict__["kmem_cache_alloc"](cache, gfp, cpu, caller)

    def kmem_cache_free(self, cache: "Cache", addr: int, cpu: Optional[int] = None,
                        caller: Optional[str] = None) -> None:
        """kmem_cache_free(): give an object back to its cache.

        Returns None.  Raises DoubleFree, InvalidFree (not an object of this
        cache: another cache's, interior, never allocated) or SlabCorruption,
        each with the kernel's report in dmesg(); InvalidArgument for a cache
        that is not a live cache of this machine.
        """
        return self.__dict__["kmem_cache_free"](cache, addr, cpu, caller)

    def drain_pages(self, cpu: Optional[int] = None) -> None:
        """drain_local_pages() on one CPU, or drain_all_pages() for None: every page waiting on
        that CPU's per-cpu page lists (mm/page_alloc.c drain_pages()) goes back to the buddy
        allocator, where it can merge and counts as free again.

        Raises InvalidArgument for a cpu that is not one of this machine's (or not an int),
        with the machine unchanged.
        """
        from ..errors import InvalidArgument
        if cpu is not None and (type(cpu) is not int or not 0 <= cpu < self.cpus):
            raise InvalidArgument(f"drain_pages: cpu {cpu!r} is not one of this machine's {self.cpus} CPUs")
        rc = self._core.drain_pages(-1 if cpu is None else cpu)
        if rc:
            from ..errors import raise_for
            raise_for(rc, "drain_pages")
