"""Who owns a vmalloc area's memory, and the refusals that follow from it.

A vmalloc area owns its pages (taken one by one from the buddy allocator, page
kind "vmalloc") and its page array (kmalloc'ed up to a page, or vmalloc'ed
above: "vpages").  In the kernel nothing stops a stray kfree() of that array
or free_pages() of one of those pages; the area then names freed memory and
the damage surfaces much later, as "BUG: Bad page state" when vfree() frees
the pages again.  pyalloc stops at the cause instead: the free is refused with
InvalidFree and a kernel-style report, and nothing changes.

* pages: the cores already refuse free_pages() of a page of another kind;
* a kmalloc'ed page array is pinned in the core (pa_slab_pin): every free
  function refuses it with the event PA_SLAB_ERR_PINNED;
* a vmalloc'ed page array is refused here, by vfree()/kvfree().

:func:`check_areas` is the matching invariant walk, run by Machine.check().
"""

from __future__ import annotations

from ..text import slub_report
from ..errors import InvalidFree
from ..errors import show
from .._abi import (
    KIND_VMALLOC as _KIND_VMALLOC, PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, PAGE_STATE_ALLOCATED as _ALLOCATED,
)


def _owner_text(m, array: int) -> str:
    area = m._vm_areas.get(m._vm_array_owner.get(array, -1))
    if area is None:
        return "a vmalloc area"
    end = area.start + area.size - PAGE_SIZE
    return f"the vmalloc area 0x{area.start:016x}-0x{end:016x} ({area.caller})"


def refuse_page_array_free(m, addr: int, fn: str) -> None:
    """vfree() of an area that is another area's page array: report and raise InvalidFree."""
    why = f"{fn}({addr:#x}): the area is the page array (vm_struct.pages) of {_owner_text(m, addr)}"
    m._log.emit(m._clock_ns(), f"Trying to {fn}() the page array of {_owner_text(m, addr)} ({addr:016x})")
    raise InvalidFree(why)


def pinned_free_report(m, fn: str, cache: str, slab: dict, obj_phys: int, common: dict) -> str:
    """slab_err() text for a free of a pinned object (a vmalloc area's kmalloc'ed page array)."""
    addr = PAGE_OFFSET + obj_phys
    return slub_report.slab_err_report(
        cache, f"{fn}: object 0x{addr:016x} is the page array of {_owner_text(m, addr)}; not freed",
        tainted=m._slab_tainted, **slab, **common)


def check_areas(m, walk: bool = True) -> str | None:
    """None, or what is wrong with the first vmalloc area whose memory it does not own.

    walk=False leaves out the page-table walk: page tables live in memory a user may
    scribble on, so a snapshot loader checks ownership alone (check() still walks)."""
    for start, area in m._vm_areas.items():
        if not area.pfns:
            continue            # vmap areas map pages they do not own
        for i, pfn in enumerate(area.pfns):
            state, head, order, kind, _, _ = m._view_page_state(pfn)
            if (state, head, order, kind) != (_ALLOCATED, pfn, 0, _KIND_VMALLOC):
                return f"vmalloc area {start:#x}: page {i} (pfn {pfn:#x}) is not a live vmalloc page"
            if walk and m._view_walk(start + (i << PAGE_SHIFT)) != pfn:
                return f"vmalloc area {start:#x}: page {i} (pfn {pfn:#x}) is not mapped where it belongs"
        array = area.pages_array
        if array is None or m._vm_array_owner.get(array) != start:
            return f"vmalloc area {start:#x}: its page array {show(array)} is not recorded as its own"
        if area.nested:
            inner = m._vm_areas.get(array)
            if inner is None or len(inner.pfns) << PAGE_SHIFT < len(area.pfns) * 8:
                return f"vmalloc area {start:#x}: its vmalloc'ed page array {array:#x} is gone"
        elif m._view_object_pinned(array - PAGE_OFFSET) != 1:
            return f"vmalloc area {start:#x}: its page array {array:#x} is not a live object pinned to it"
    for array, start in m._vm_array_owner.items():
        if m._vm_areas.get(start) is None or m._vm_areas[start].pages_array != array:
            return f"page array {array:#x} is recorded for vmalloc area {start:#x}, which does not use it"
    return None
