"""drgn's memory-management helpers, on a simulated machine.

Someone who debugs a live kernel with drgn (``drgn.helpers.linux.slab``,
``.mm``, ``.vmalloc``) finds the same names here, each taking the
:class:`~pyalloc.Machine` first where drgn's take the program, and answering
with small objects that carry what drgn's answer carries::

    >>> from pyalloc import helpers as h
    >>> info = h.slab_object_info(m, addr)          # drgn: slab_object_info(prog, addr)
    >>> info.slab_cache.name, info.address, info.allocated
    ('kmalloc-128', 18446612682702749696, True)

Pages are :class:`Page` objects (a machine and a pfn), as drgn's are
``struct page *``; caches are the :class:`pyalloc.Cache` objects
kmem_cache_create() returns.  Every helper only reads: none changes the
machine, its clock or its counters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple, Optional

from .errors import InvalidArgument
from .gfp import ZONE_NAMES
from . import _abi as st
from ._abi import DIRECT_MAP_SIZE, PAGE_OFFSET, PAGE_SHIFT
from .machine.slab import Cache

_ALLOCATED, _INTERIOR, _FREE = st.PAGE_STATE_ALLOCATED, st.PAGE_STATE_INTERIOR, st.PAGE_STATE_FREE

__all__ = [
    "for_each_slab_cache", "find_slab_cache", "slab_cache_for_each_allocated_object", "slab_object_info",
    "find_containing_slab_cache", "slab_cache_objects_per_slab", "slab_cache_pages_per_slab",
    "slab_cache_order", "for_each_page", "PageSlab", "PageBuddy", "PageCompound", "PageHead", "PageTail",
    "compound_order", "decode_page_flags", "page_to_pfn", "pfn_to_page", "page_to_virt", "virt_to_page",
    "vmalloc_to_page", "for_each_vmap_area", "find_vmap_area", "for_each_zone", "min_wmark_pages",
    "low_wmark_pages", "high_wmark_pages", "nr_free_pages", "totalram_pages",
    "slab_cache_is_merged", "slab_cache_cpu_slab", "zone_pcp_lists",
    "Page", "Slab", "SlabObjectInfo", "VmapArea", "Zone", "CpuSlab", "PerCpuPages",
]


# -- slab ------------------------------------------------------------------------------------

class Slab(NamedTuple):
    """One slab, as struct slab describes it."""
    slab_cache: Cache
    pfn: int
    address: int            # virtual address of its first page
    order: int
    objects: int
    inuse: int              # a cpu's active slab counts its whole freelist as in use
    frozen: bool            # some cpu's active slab
    on_partial: bool
    cpu: int                # that cpu, or -1

    def __repr__(self) -> str:
        where = f"cpu {self.cpu}'s active slab" if self.frozen else "partial" if self.on_partial else "full"
        return (f"<slab of {self.slab_cache.name!r} at {self.address:#x} (pfn {self.pfn:#x}): "
                f"order {self.order}, {self.inuse}/{self.objects} in use, {where}>")


class SlabObjectInfo(NamedTuple):
    """drgn's SlabObjectInfo: the cache, the slab, the object's start, and whether it is allocated."""
    slab_cache: Cache
    slab: Slab
    address: int
    allocated: bool

    def __repr__(self) -> str:
        return (f"SlabObjectInfo(slab_cache={self.slab_cache.name!r}, slab=pfn {self.slab.pfn:#x}, "
                f"address={self.address:#x}, allocated={self.allocated})")


def for_each_slab_cache(m) -> Iterator[Cache]:
    """Every slab cache, newest first (the order of the kernel's slab_caches list and /proc/slabinfo)."""
    m._live()
    return iter(m._view_caches()[::-1])


def find_slab_cache(m, name: str) -> Optional[Cache]:
    """The cache with this name, or None."""
    if not isinstance(name, str):
        raise TypeError(f"find_slab_cache: name must be a str, not {type(name).__name__}")
    for cache in for_each_slab_cache(m):
        if cache.name == name:
            return cache
    return None


def _cache_of(m, cid: int) -> Cache:
    return m._view_cache(cid)


def _slab(m, pfn: int):
    """(Slab, object states) of the slab headed at pfn, or None."""
    view = m._view_slab(pfn)
    if isinstance(view, int):
        return None
    (cid, order, objects, inuse, frozen, on_partial, cpu), states = view
    return Slab(_cache_of(m, cid), pfn, PAGE_OFFSET + (pfn << PAGE_SHIFT), order, objects, inuse,
                bool(frozen), bool(on_partial), cpu), states


def _first_object(m, cache: Cache, slab_pfn: int) -> tuple[int, int]:
    info = m._view_cache_info(cache._id)
    return (slab_pfn << PAGE_SHIFT) + info["red_left_pad"], info["size"]


def _machine_cache(m_or_cache, cache: Optional[Cache], what: str):
    """(machine, cache) from drgn's form (cache) or pyalloc's older one (machine, cache)."""
    if cache is None:
        if not isinstance(m_or_cache, Cache):
            raise InvalidArgument(f"{what}: expected a kmem_cache, not {type(m_or_cache).__name__}")
        return m_or_cache._machine, m_or_cache
    return m_or_cache, cache


def slab_cache_for_each_allocated_object(m_or_cache, cache: Optional[Cache] = None) -> Iterator[int]:
    """The address of every allocated object of the cache, slab by slab in pfn order.
    drgn's form takes the cache alone; ``(machine, cache)`` works too."""
    m, cache = _machine_cache(m_or_cache, cache, "slab_cache_for_each_allocated_object")
    cid = m._cache_id(cache, "slab_cache_for_each_allocated_object")
    found: list = []
    for pfn in m._view_slab_pfns(cid):
        got = _slab(m, pfn)
        if got is None:
            continue
        _, states = got
        base, size = _first_object(m, cache, pfn)
        found.extend(PAGE_OFFSET + base + i * size for i, s in enumerate(states) if s & st.OBJ_LIVE)
    return iter(found)


def slab_object_info(m, addr: int) -> Optional[SlabObjectInfo]:
    """What the slab allocator knows of addr: None when it is not in a slab page.

    ``address`` is the start of the object that contains addr, ``allocated``
    whether it is live (objects on a cpu freelist are free, as in drgn).
    An address in a slab's trailing space, past the last object, gives None.
    """
    m._live()
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise TypeError(f"slab_object_info: addr must be an int, not {type(addr).__name__}")
    phys = addr - PAGE_OFFSET
    if not 0 <= phys < m.nr_pages << PAGE_SHIFT:
        return None
    state, head, _order, kind, _flags, _ref = m._view_page_state(phys >> PAGE_SHIFT)
    if state not in (_ALLOCATED, _INTERIOR) or kind != st.KIND_SLAB:
        return None
    got = _slab(m, head)
    if got is None:
        return None
    slab, states = got
    base, size = _first_object(m, slab.slab_cache, head)
    slot = (phys - base) // size if phys >= base else -1
    if not 0 <= slot < slab.objects:
        return None
    return SlabObjectInfo(slab.slab_cache, slab, PAGE_OFFSET + base + slot * size, bool(states[slot] & st.OBJ_LIVE))


def find_containing_slab_cache(m, addr: int) -> Optional[Cache]:
    """The cache whose slab holds addr, or None."""
    info = slab_object_info(m, addr)
    return None if info is None else info.slab_cache


def slab_cache_objects_per_slab(m_or_cache, cache: Optional[Cache] = None) -> int:
    """Objects in one slab of the cache's default order (oo_objects(s->oo)); takes the cache
    alone as drgn's does, or ``(machine, cache)``."""
    m, cache = _machine_cache(m_or_cache, cache, "slab_cache_objects_per_slab")
    return m._view_cache_info(m._cache_id(cache, "slab_cache_objects_per_slab"))["objects"]


def slab_cache_order(m_or_cache, cache: Optional[Cache] = None) -> int:
    """The cache's default slab order (oo_order(s->oo)); ``(cache)`` or ``(machine, cache)``."""
    m, cache = _machine_cache(m_or_cache, cache, "slab_cache_order")
    return m._view_cache_info(m._cache_id(cache, "slab_cache_order"))["order"]


def slab_cache_pages_per_slab(m_or_cache, cache: Optional[Cache] = None) -> int:
    """Pages in one slab of the cache's default order; ``(cache)`` or ``(machine, cache)``."""
    return 1 << slab_cache_order(m_or_cache, cache)


# -- pages -------------------------------------------------------------------------------------

class Page:
    """A struct page: the machine it belongs to and its pfn.  Its state is read when asked."""

    __slots__ = ("machine", "pfn")

    def __init__(self, machine, pfn: int) -> None:
        self.machine = machine
        self.pfn = pfn

    def _state(self):
        return self.machine._view_page_state(self.pfn)

    def __eq__(self, other) -> bool:
        return isinstance(other, Page) and other.machine is self.machine and other.pfn == self.pfn

    def __hash__(self) -> int:
        return hash((id(self.machine), self.pfn))

    @property
    def flags(self) -> int:
        """page->flags' main area in 6.18's bit numbers (include/linux/page-flags.h enum pageflags:
        PG_referenced 2, PG_lru 5, PG_head 6, PG_active 8); the node and zone fields are left out."""
        state, _head, _order, _kind, flags, _ref = self._state()
        if state == _FREE:
            return 0
        return sum(1 << bit for mine, bit in _PAGEFLAG_BITS if flags & mine
                   and (mine != st.PG_HEAD or state == _ALLOCATED))

    @property
    def compound_head(self) -> "Page":
        """The head page of the compound page this page belongs to; the page itself otherwise."""
        state, head, _order, _kind, flags, _ref = self._state()
        return Page(self.machine, head) if state == _INTERIOR and flags & st.PG_HEAD else self

    @property
    def slab_cache(self) -> Optional[Cache]:
        """The cache of a slab page (slab->slab_cache), None for any other page."""
        state, head, _order, kind, _flags, _ref = self._state()
        if state not in (_ALLOCATED, _INTERIOR) or kind != st.KIND_SLAB:
            return None
        got = _slab(self.machine, head)
        return None if got is None else got[0].slab_cache

    @property
    def private(self) -> int:
        """page->private: the order of a free buddy block on its head page (buddy_order()), else 0."""
        return self._state()[2] if PageBuddy(self) else 0

    def __repr__(self) -> str:
        state, head, order, kind, flags, _ref = self._state()
        if state == _FREE:
            what = f"free, in an order-{order} block at pfn {head:#x}" if head != self.pfn \
                else f"free, heads an order-{order} buddy block"
        else:
            owner = {st.KIND_PAGES: "pages", st.KIND_SLAB: "slab", st.KIND_LARGE_KMALLOC: "kmalloc_large",
                     st.KIND_VMALLOC: "vmalloc", st.KIND_PGTABLE: "page table"}.get(kind, "?")
            what = (f"{owner}, heads an order-{order} allocation" if state == _ALLOCATED
                    else f"{owner}, in an order-{order} allocation at pfn {head:#x}")
        return f"<page pfn {self.pfn:#x} ({what})>"


def _page(m, pfn: int) -> Page:
    if isinstance(pfn, bool) or not isinstance(pfn, int):
        raise TypeError(f"pfn must be an int, not {type(pfn).__name__}")
    if not 0 <= pfn < m.nr_pages:
        raise InvalidArgument(f"pfn {pfn:#x} is outside memory (0..{m.nr_pages - 1:#x})")
    return Page(m, pfn)


def for_each_page(m) -> Iterator[Page]:
    """Every page of memory, in pfn order (drgn walks the vmemmap the same way)."""
    m._live()
    return (Page(m, pfn) for pfn in range(m.nr_pages))


def pfn_to_page(m, pfn: int) -> Page:
    m._live()
    return _page(m, pfn)


def page_to_pfn(page: Page) -> int:
    return page.pfn


def page_to_virt(page: Page) -> int:
    """The page's direct-map address."""
    return PAGE_OFFSET + (page.pfn << PAGE_SHIFT)


def virt_to_page(m, addr: int) -> Page:
    """The page of a direct-map address."""
    return _page(m, m.virt_to_page(addr))


def vmalloc_to_page(m, addr: int) -> Optional[Page]:
    """The page mapped at a vmalloc address, or None where nothing is mapped."""
    pfn = m.vmalloc_to_page(addr)
    return None if pfn is None else Page(m, pfn)


def PageBuddy(page: Page) -> bool:
    """The page heads a free block on a buddy free list."""
    state, head, _order, kind, _flags, _ref = page._state()
    # a page on a per-cpu page list is free too, but not PageBuddy (mm/page_alloc.c keeps it off
    # the buddy lists until free_pcppages_bulk() hands it back)
    return state == _FREE and head == page.pfn and kind != st.KIND_PCP


def PageSlab(page: Page) -> bool:
    """The page belongs to a slab (any page of it, as folio_test_slab answers)."""
    state, _head, _order, kind, *_ = page._state()
    return state in (_ALLOCATED, _INTERIOR) and kind == st.KIND_SLAB


def PageHead(page: Page) -> bool:
    """The page heads a compound page (an order > 0 allocation made with __GFP_COMP)."""
    state, _head, _order, _kind, flags, _ref = page._state()
    return state == _ALLOCATED and bool(flags & st.PG_HEAD)


def PageTail(page: Page) -> bool:
    """The page is a tail page of a compound page."""
    state, _head, _order, _kind, flags, _ref = page._state()
    return state == _INTERIOR and bool(flags & st.PG_HEAD)


def PageCompound(page: Page) -> bool:
    """A head or tail page of a compound page."""
    return PageHead(page) or PageTail(page)


def compound_order(page: Page) -> int:
    """The order of the compound page this page heads; 0 for any other page."""
    state, _head, order, _kind, flags, _ref = page._state()
    return order if state == _ALLOCATED and flags & st.PG_HEAD else 0


_PAGEFLAG_BITS = ((st.PG_REFERENCED, 2), (st.PG_LRU, 5), (st.PG_HEAD, 6), (st.PG_ACTIVE, 8))
_PAGE_FLAG_NAMES = ((st.PG_REFERENCED, "PG_referenced"), (st.PG_LRU, "PG_lru"), (st.PG_HEAD, "PG_head"),
                    (st.PG_ACTIVE, "PG_active"))
# 6.18 keeps buddy, slab and page-table pages as page *types* (include/linux/page-flags.h enum
# pagetype), not flags; dump_page() prints them as "page_type: f5(slab)"
_PAGE_TYPE_NAMES = {st.KIND_SLAB: "PGTY_slab", st.KIND_PGTABLE: "PGTY_table"}


def decode_page_flags(page: Page) -> str:
    """The page's flags in the kernel's names, joined by ``|`` (drgn's format), in
    include/linux/page-flags.h order, then its page type where it has one: ``PGTY_buddy`` on the
    head of a free buddy block, ``PGTY_slab`` on every page of a slab, ``PGTY_table`` on a page
    table.  pyalloc keeps no lock, dirty or writeback bits.
    """
    state, _head, _order, kind, flags, _ref = page._state()
    names = [name for bit, name in _PAGE_FLAG_NAMES if flags & bit and state != _FREE
             and (bit != st.PG_HEAD or state == _ALLOCATED)]
    if PageBuddy(page):
        names.append("PGTY_buddy")
    elif state in (_ALLOCATED, _INTERIOR) and kind in _PAGE_TYPE_NAMES:
        names.append(_PAGE_TYPE_NAMES[kind])
    return "|".join(names)


# -- per-CPU state ------------------------------------------------------------------------------

class CpuSlab(NamedTuple):
    """A cache's per-CPU state on one CPU (struct kmem_cache_cpu, struct slub_percpu_sheaves)."""
    slab: Optional[int]             # address of the CPU's active slab, or None
    freelist: list                  # objects of the lockless freelist, next allocation first
    partial: list                   # slab addresses on the CPU's partial list, first tried first
    main: Optional[list]            # objects in the main sheaf (next allocation first), None without sheaves
    spare: Optional[list]           # objects in the spare sheaf, None without one


@dataclass(frozen=True)
class PerCpuPages:
    """One zone's struct per_cpu_pages on one CPU."""
    count: int
    high: int
    batch: int
    high_min: int
    high_max: int
    lists: dict                     # (order, migratetype name) -> pfns, next allocation first


def _cpu_arg(m, cpu: int) -> int:
    if isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu < m.cpus:
        raise InvalidArgument(f"cpu must be an int from 0 to {m.cpus - 1}, not {cpu!r}")
    return cpu


def slab_cache_is_merged(m_or_cache, cache: Optional[Cache] = None) -> bool:
    """Whether other kmem_cache_create() calls were merged into this cache (drgn: the cache has
    aliases; the kernel: refcount above 1); ``(cache)`` as drgn's, or ``(machine, cache)``."""
    m, cache = _machine_cache(m_or_cache, cache, "slab_cache_is_merged")
    m._live()
    info = m._view_cache_info(cache._id) if cache._id >= 0 else None
    return bool(info and info["refcount"] > 1)


def slab_cache_cpu_slab(m, cache: Cache, cpu: int) -> CpuSlab:
    """What the next allocations from *cache* on *cpu* come from, in the order SLUB tries them
    (mm/slub.c ___slab_alloc(); alloc_from_pcs() first for a cache with sheaves): the main
    sheaf, the cpu freelist, the cpu partial slabs.  pwndbg's ``slab info -v`` shows the same."""
    m._live()
    info = m._view_cpu_slab(cache._id, _cpu_arg(m, cpu))
    def virt(physes: list) -> list:
        return [PAGE_OFFSET + p for p in physes]

    return CpuSlab(None if info["slab"] is None else PAGE_OFFSET + info["slab"], virt(info["freelist"]),
                   virt(info["partial"]), None if info["main"] is None else virt(info["main"]),
                   None if info["spare"] is None else virt(info["spare"]))


_MT_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")


def zone_pcp_lists(m, zone: str, cpu: int) -> PerCpuPages:
    """A zone's per-cpu page lists on one CPU (mm/page_alloc.c struct per_cpu_pages): the pages
    the next order-0..3 allocations of each migratetype on that CPU get, without touching the
    buddy lists.  *zone* is a name from /proc/zoneinfo ("DMA", "DMA32", "Normal")."""
    m._live()
    if zone not in ZONE_NAMES:
        raise InvalidArgument(f"zone must be one of {', '.join(ZONE_NAMES)}, not {zone!r}")
    info = m._view_pcp(ZONE_NAMES.index(zone), _cpu_arg(m, cpu))
    return PerCpuPages(info["count"], info["high"], info["batch"], info["high_min"], info["high_max"],
                       {(order, _MT_NAMES[mt]): list(pfns) for order, mt, pfns in info["lists"]})


# -- vmalloc -----------------------------------------------------------------------------------

class VmapArea(NamedTuple):
    """A busy vmap_area with its vm_struct: [va_start, va_end), guard page included."""
    va_start: int
    va_end: int
    caller: str
    nr_pages: int
    flags: tuple

    def __repr__(self) -> str:
        kind = " ".join(self.flags) or "reserved"
        return (f"<vmap_area {self.va_start:#x}-{self.va_end:#x} {self.va_end - self.va_start} bytes, "
                f"{self.nr_pages} pages, {kind}, {self.caller}>")


def for_each_vmap_area(m) -> Iterator[VmapArea]:
    """Every busy vmap area, by address (the order of /proc/vmallocinfo)."""
    m._live()
    return iter([VmapArea(a["start"], a["start"] + a["size"], a["caller"], a["nr_pages"], a["flags"])
                 for a in m.vmalloc_snapshot()["areas"]])


def find_vmap_area(m, addr: int) -> Optional[VmapArea]:
    """The busy vmap area that contains addr, or None."""
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise TypeError(f"find_vmap_area: addr must be an int, not {type(addr).__name__}")
    for va in for_each_vmap_area(m):
        if va.va_start <= addr < va.va_end:
            return va
    return None


# -- zones and totals --------------------------------------------------------------------------

class Zone(NamedTuple):
    """A struct zone's counters."""
    name: str
    zone_start_pfn: int
    spanned_pages: int
    present_pages: int
    managed_pages: int
    watermark: tuple        # _watermark[WMARK_MIN, WMARK_LOW, WMARK_HIGH, WMARK_PROMO]
    watermark_boost: int
    nr_free_pages: int

    def __repr__(self) -> str:
        return (f"<zone {self.name}: {self.managed_pages} pages managed, {self.nr_free_pages} free, "
                f"watermarks min {self.watermark[0]} low {self.watermark[1]} high {self.watermark[2]}>")


def for_each_zone(m) -> Iterator[Zone]:
    """Every populated zone of node 0, lowest first."""
    m._live()
    out = []
    for zid, name in enumerate(ZONE_NAMES):
        z = m._view_zone(zid)
        if z.present:
            out.append(Zone(name, z.start_pfn, z.spanned, z.present, z.managed, tuple(z.wmark), 0,
                            z.nr_free_pages))
    return iter(out)


def min_wmark_pages(zone: Zone) -> int:
    return zone.watermark[0] + zone.watermark_boost


def low_wmark_pages(zone: Zone) -> int:
    return zone.watermark[1] + zone.watermark_boost


def high_wmark_pages(zone: Zone) -> int:
    return zone.watermark[2] + zone.watermark_boost


def nr_free_pages(m) -> int:
    """global_zone_page_state(NR_FREE_PAGES): free pages of every zone."""
    return sum(z.nr_free_pages for z in for_each_zone(m))


def totalram_pages(m) -> int:
    """Pages the buddy allocator manages (MemTotal in pages)."""
    return sum(z.managed_pages for z in for_each_zone(m))
