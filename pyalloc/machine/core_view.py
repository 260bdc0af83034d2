"""CoreView: what pyalloc's own tools may read of a machine's core.

helpers.py (the drgn-style helpers), plot.py, text/sysfs.py and the vmalloc
ownership check read struct pages, slabs, caches and zones that no public
method returns.  They read them here and nowhere else, so a core's interface
to its tools is this list: each method is one read of the core, changes
nothing, and has the same answer on both backends (both cores implement the
calls it makes).  Mixed into :class:`pyalloc.Machine`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .slab import Cache


class CoreView:
    """Read-only views of the core, for pyalloc's tools."""

    if TYPE_CHECKING:                   # provided by Machine
        _core: Any
        _caches: dict
        _cache_order: list

    def _view_page_state(self, pfn: int) -> tuple:
        """struct page of pfn: (state, head pfn, order, kind, flags, refcount)."""
        return self._core.page_state(pfn)

    def _view_pageblock_mt(self) -> list:
        """The migrate type of every pageblock (get_pageblock_migratetype()), by index."""
        return self._core.pageblock_mt()

    def _view_zone(self, zid: int):
        """One zone's record (struct zone): spans, managed, watermarks, free pages."""
        return self._core.zone_info(zid)

    def _view_walk(self, vaddr: int) -> int:
        """The pfn the kernel page tables map at vaddr, or a negative status."""
        return self._core.walk(vaddr)

    def _view_caches(self) -> list[Cache]:
        """Every live Cache, oldest first (the kernel's slab_caches list runs newest first)."""
        return [self._caches[cid] for cid in self._cache_order]

    def _view_cache(self, cid: int) -> Cache:
        """The Cache with this core id."""
        return self._caches[cid]

    def _view_cache_info(self, cid: int) -> dict:
        """struct kmem_cache of a cache id: sizes, order, flags, object and slab counts."""
        return self._core.cache_info(cid)

    def _view_cpu_slab(self, cid: int, cpu: int) -> dict:
        """A CPU's slab layers of a cache: slab (phys or None), freelist (object physes in
        order), partial (the cpu partial chain's slab physes in order), main and spare (sheaf
        objects' physes, top first, or None)."""
        return self._core.cpu_slab_info(cid, cpu)

    def _view_barn(self, cid: int) -> dict:
        """The cache's barn: how many full and empty sheaves it holds."""
        return self._core.barn_info(cid)

    def _view_slab_pfns(self, cid: int):
        """The head pfn of every slab of a cache, or a negative status."""
        return self._core.slab_pfns(cid)

    def _view_slab(self, pfn: int):
        """The slab headed at pfn: ((cache id, order, objects, inuse, frozen, on_partial, cpu),
        per-object states), or a negative status when pfn heads no slab."""
        return self._core.slab_view(pfn)

    def _view_object_pinned(self, phys: int) -> int:
        """Whether the live slab object at phys is pinned (1) or not (0); a negative status otherwise."""
        return self._core.slab_pin(phys, -1)

    def _view_pcp(self, zid: int, cpu: int) -> dict:
        """A zone's per_cpu_pages on one CPU: count, high, batch, high_min, high_max, free_count,
        lists [(order, migratetype, [pfn, ...])]."""
        return self._core.pcp_info(zid, cpu)
