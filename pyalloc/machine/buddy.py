"""The documented face of Machine's per-call methods.

``alloc_pages``, ``free_pages``, ``kmalloc``, ``kfree``, ``kmem_cache_alloc``
and ``kmem_cache_free`` run as closures set on each instance
(machine.py ``_hot_paths``, slab.py ``_slab_hot_paths``): every name they use
is a local, so a call costs one core call and a sign test.  An instance
attribute shadows a method of the same name, so the methods below are never on
that path; they exist so that ``help(pyalloc.Machine.kmalloc)``, ``help(m)``,
IDEs and type checkers see each call with its signature, its return value and
its exceptions.  Called through the class (``Machine.kmalloc(m, ...)``) they
hand over to the instance's closure.
"""

from __future__ import annotations

from typing import Optional, Union

from ..gfp import GFP
from .state import MachineState

GfpLike = Union[int, str, GFP]


class HotPathAPI(MachineState):
    """alloc_pages, free_pages, kmalloc, kfree, kmem_cache_alloc, kmem_cache_free."""

    def alloc_pages(self, gfp: GfpLike, order: int = 0) -> Optional[int]:
        """alloc_pages(): allocate a block of 2**order pages.

        Returns the pfn of the block's first page, or None (NULL) when the
        request cannot be met (with the kernel's warn_alloc report in dmesg()
        unless __GFP_NOWARN) or the order is above MAX_PAGE_ORDER.

        Raises GFPError for a mask the kernel cannot interpret, InvalidArgument
        for a negative order, TypeError for an order that is not an int,
        OutOfMemory for a __GFP_NOFAIL request that nothing can satisfy.
        """
        return self.__dict__["alloc_pages"](gfp, order)

    def free_pages(self, pfn: int, order: int = 0) -> None:
        """__free_pages(): give back a block from alloc_pages (same pfn, same order).

        Returns None.  Raises DoubleFree for a block that is free already,
        InvalidFree for any other pfn or order that is not a live block's
        (both also print the kernel's "Bad page state" / VM_BUG_ON report),
        InvalidArgument for an order outside 0..10.
        """
        return self.__dict__["free_pages"](pfn, order)

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

    def kmem_cache_alloc(self, cache, gfp: GfpLike, cpu: Optional[int] = None,
                         caller: Optional[str] = None) -> Optional[int]:
        """kmem_cache_alloc(): allocate one object of a cache from kmem_cache_create().

        Returns the object's direct-map address, or None (NULL) when no slab
        can be found.  Raises InvalidArgument for something that is not a live
        cache of this machine, GFPError for a bad mask, SlabCorruption when
        slub_debug finds a damaged free object.
        """
        return self.__dict__["kmem_cache_alloc"](cache, gfp, cpu, caller)

    def kmem_cache_free(self, cache, addr: int, cpu: Optional[int] = None,
                        caller: Optional[str] = None) -> None:
        """kmem_cache_free(): give an object back to its cache.

        Returns None.  Raises DoubleFree, InvalidFree (not an object of this
        cache: another cache's, interior, never allocated) or SlabCorruption,
        each with the kernel's report in dmesg(); InvalidArgument for a cache
        that is not a live cache of this machine.
        """
        return self.__dict__["kmem_cache_free"](cache, addr, cpu, caller)
