"""vmalloc, vmap and kvmalloc, shared by both backends.

The shared layer keeps the bookkeeping mm/vmalloc.c keeps: which virtual
ranges are busy (pyalloc.machine.vmap_area.VmapAreas, lowest-address first fit, one
guard page after every area), and a vm_struct per area (caller, pages, flags).
The cores hold what is physical: the pages, taken one order-0 page at a time
from the buddy allocator, and the 4-level page tables that map them.

As __vmalloc_node_range does: the area is reserved first, the page array is
kmalloc'ed (or vmalloc'ed, above one page: "vpages"), the pages are taken and
then mapped; any failure gives everything back and prints the kernel's
"vmalloc error: ..." warning (unless __GFP_NOWARN).

Left out, and said so in the README: lazy freeing (vfree returns the range at
once, as if every free were followed by a purge, so vmallocinfo never shows
"unpurged vm_area"), huge mappings, per-node vmap pools (one node: the area
list is sorted by address), and the kmalloc'ed vm_struct / vmap_area records.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Iterable, Optional

from .. import errors, gfp as gfpmod
from ..errors import DoubleFree, InvalidArgument, InvalidFree
from .slab import check_size, frame_caller
from .vmap_area import VmapAreas
from .vmalloc_owner import refuse_page_array_free
from ..errors import show, show_hex
from ..gfp import GfpLike
from .state import MachineState
from .._abi import PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, VMALLOC_END, VMALLOC_SIZE, VMALLOC_START

INT_MAX = (1 << 31) - 1
FORGET_AFTER = 1 << 16      # how many freed area starts are remembered to tell double frees

VM_IOREMAP, VM_ALLOC, VM_MAP, VM_USERMAP = 0x1, 0x2, 0x4, 0x8
VM_NO_GUARD, VM_ALLOW_HUGE_VMAP = 0x40, 0x400

GFP_RECLAIM_MASK = 0xc00 | 0x20 | 0x40 | 0x80 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000 | 0x80000


class VmArea:
    """struct vm_struct, the part vmallocinfo and vfree need."""

    __slots__ = ("start", "size", "flags", "pfns", "mapped", "caller", "pages_array", "nested")

    def __init__(self, start: int, size: int, flags: int, caller: str) -> None:
        self.start = start          # first byte
        self.size = size            # bytes, the guard page included
        self.flags = flags          # VM_*
        self.pfns: list[int] = []   # the pages vmalloc owns, in order (vmap: none, nr_pages 0)
        self.mapped = 0             # pages mapped in the area
        self.caller = caller
        self.pages_array: int | None = None     # address of the page array (kmalloc'ed, or vmalloc'ed when nested)
        self.nested = False         # page array itself vmalloc'ed: "vpages"


def check_caller(caller, fn: str) -> str:
    """A caller= that was given must be a string, checked before anything is taken.
    The answer is a plain str copy: a str subclass that cannot be hashed or
    compared would otherwise fail later, half way through an allocation."""
    if not isinstance(caller, str):
        raise InvalidArgument(f"{fn}: caller must be a string, not {show(caller)}")
    return str.__str__(caller)


def is_vmalloc_addr(addr) -> bool:
    return isinstance(addr, int) and VMALLOC_START <= addr < VMALLOC_END


class VmallocAPI(MachineState):
    """The vmalloc half of Machine (mixed into it)."""

    def _vmalloc_boot(self) -> None:
        self._vmap = VmapAreas(VMALLOC_START, VMALLOC_END)
        self._vm_areas: dict[int, VmArea] = {}
        self._vfreed: OrderedDict[int, str] = OrderedDict()    # freed starts -> how, newest last
        self._vm_array_owner: dict[int, int] = {}   # page array address -> start of the area it serves

    # -- vmalloc ------------------------------------------------------------------

    def vmalloc(self, size: int, gfp: GfpLike = "GFP_KERNEL", caller: str | None = None, node: int = -1) -> int | None:
        """vmalloc(): virtually contiguous memory of order-0 pages, or None."""
        return self._vmalloc_node_range(size, 1, gfpmod.parse(gfp), caller or self._where_always(1), node)

    def vzalloc(self, size: int, gfp: GfpLike = "GFP_KERNEL", caller: str | None = None, node: int = -1) -> int | None:
        """vzalloc(): vmalloc with __GFP_ZERO."""
        return self._vmalloc_node_range(size, 1, gfpmod.parse(gfp) | gfpmod.GFP_ZERO,
                                        caller or self._where_always(1), node)

    def vmalloc_node(self, size: int, node: int = 0, gfp: GfpLike = "GFP_KERNEL",
                     caller: str | None = None) -> int | None:
        """vmalloc_node(): vmalloc on a NUMA node (the machine has one, node 0)."""
        return self._vmalloc_node_range(size, 1, gfpmod.parse(gfp), caller or self._where_always(1), node)

    def _vmalloc_node_range(self, size, align, flags, caller, node, vm_flags=0):
        self._live()
        check_size(size, "vmalloc")
        caller = check_caller(caller, "vmalloc")
        if isinstance(node, bool) or not isinstance(node, int) or node not in (-1, 0):
            raise InvalidArgument(f"vmalloc: node {show(node)} does not exist (the machine has node 0)")
        if size == 0:
            self._warn_once("vmalloc-zero", 0, "mm/vmalloc.c:3802", "__vmalloc_node_range_noprof")
            return None
        real_size = size
        size = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if size >> PAGE_SHIFT > self.nr_pages:
            self._warn_alloc(flags, f"vmalloc error: size {show(real_size)}, exceeds total pages")
            return None
        area = self._get_vm_area(size, align, VM_ALLOC | vm_flags, flags, caller)
        if area is None:
            self._warn_alloc(flags, f"vmalloc error: size {show(real_size)}, vm_struct allocation failed")
            return None
        return self._vmalloc_area_node(area, flags, node)

    def _get_vm_area(self, size: int, align: int, vm_flags: int, flags: int, caller: str):
        full = size if vm_flags & VM_NO_GUARD else size + PAGE_SIZE
        start = self._vmap.alloc(full, align)
        self._trace_vmap_alloc(start, full, align)
        if start is None:
            if not flags & gfpmod.GFP_NOWARN:
                self._log.emit(self._clock_ns(), (
                    f"vmalloc_node_range for size {full} failed: Address range restricted to "
                    f"{VMALLOC_START:#x} - {VMALLOC_END:#x}"))
            return None
        self._vfreed.pop(start, None)
        area = VmArea(start, full, vm_flags, caller)
        self._vm_areas[start] = area
        return area

    def _vmalloc_area_node(self, area: VmArea, flags: int, node: int):
        nr = (area.size - (0 if area.flags & VM_NO_GUARD else PAGE_SIZE)) >> PAGE_SHIFT
        array_size = nr * 8
        nested_gfp = (flags & GFP_RECLAIM_MASK) | gfpmod.GFP_ZERO
        page_gfp = flags
        if not flags & (gfpmod.GFP_DMA | gfpmod.GFP_DMA32):
            page_gfp |= gfpmod.GFP_HIGHMEM
        # the page array: kmalloc'ed up to a page, vmalloc'ed above ("vpages")
        try:
            if array_size > PAGE_SIZE:
                pages_array = self._vmalloc_node_range(array_size, 1, nested_gfp, area.caller, node)
                area.nested = True
            else:
                pages_array = self.kmalloc(array_size, nested_gfp, caller=area.caller)
        except BaseException:
            self._release_range(area)       # a failed vmalloc leaves no area behind
            raise
        if pages_array is None:
            self._warn_alloc(page_gfp, f"vmalloc error: size {nr * PAGE_SIZE}, failed to allocated page array "
                                       f"size {array_size}")
            self._release_range(area)
            return None
        area.pages_array = pages_array
        # the array belongs to the area: no free function may release it (vmalloc_owner.py)
        self._vm_array_owner[pages_array] = area.start
        if not area.nested:
            self._core.slab_pin(pages_array - PAGE_OFFSET, 1)
        rc, pfns = self._with_oom(lambda: self._core.vmalloc_pages(area.start, nr, page_gfp | gfpmod.GFP_NOWARN))
        if rc:
            self._free_pages_array(area)
            self._release_range(area)
            if rc == errors.ENOMEM and flags & gfpmod.GFP_NOFAIL and flags & gfpmod.GFP_DIRECT_RECLAIM:
                raise errors.OutOfMemory(f"vmalloc({nr * PAGE_SIZE}): __GFP_NOFAIL request that nothing can "
                                         "satisfy (the kernel would loop forever)")
            what = "failed to allocate pages" if rc == errors.ENOMEM else "failed to map pages"
            self._warn_alloc(page_gfp, f"vmalloc error: size {pfns * PAGE_SIZE if rc == errors.ENOMEM else nr * PAGE_SIZE}"
                                       f", {what}")
            return None
        area.pfns = pfns
        area.mapped = nr
        # the page array really holds the struct page pointers (vmemmap addresses)
        self.write(pages_array, b"".join((0xffffea0000000000 + p * 64).to_bytes(8, "little") for p in pfns))
        return area.start

    def _free_pages_array(self, area: VmArea) -> None:
        if area.pages_array is None:
            return
        del self._vm_array_owner[area.pages_array]
        if area.nested:
            self._vfree_area(self._vm_areas[area.pages_array], "vfree")
        else:
            self._core.slab_pin(area.pages_array - PAGE_OFFSET, 0)
            self.kfree(area.pages_array, caller=area.caller)
        area.pages_array = None

    def _release_range(self, area: VmArea) -> None:
        self._trace_vmap_free(area.start, area.size)
        del self._vm_areas[area.start]
        self._vmap.free(area.start)

    # -- freeing ----------------------------------------------------------------------

    def vfree(self, addr: int | None) -> None:
        """vfree(): unmap and free a vmalloc area; vfree(None) does nothing."""
        self._live()
        if addr is None:
            return
        area = self._vm_area_for_free(addr, "vfree", VM_ALLOC)
        self._vfree_area(area, "vfree")

    def _vfree_area(self, area: VmArea, how: str) -> None:
        # every step that can fail comes before the first change: the page array must
        # still be the area's, and the page list is freed all or nothing
        array = area.pages_array
        if array is not None and not area.nested and self._core.slab_pin(array - PAGE_OFFSET, -1) != 1:
            raise errors.InvariantBroken(f"{how}({area.start:#x}): the area's page array {array:#x} "
                                         "was freed behind its back")
        if area.mapped:
            # free the area's own page list (area->pages), never whatever the PTEs may
            # say now (page tables live in writable memory), then clear the PTEs
            rc = self._core.free_vmalloc_pages(area.pfns)
            if rc:
                errors.raise_for(rc, f"vfree({area.start:#x}): the area's pages were freed behind its back")
            self._core.vunmap_pages(area.start, area.mapped)
        self._free_pages_array(area)
        self._release_range(area)
        self._remember_freed(area.start, how)

    def _remember_freed(self, start: int, how: str) -> None:
        self._vfreed[start] = how
        if len(self._vfreed) > FORGET_AFTER:
            self._vfreed.popitem(last=False)

    def _vm_area_for_free(self, addr, fn: str, want_flag: int) -> VmArea:
        if isinstance(addr, bool) or not isinstance(addr, int):
            raise TypeError(f"{fn}: an address must be an int, not {type(addr).__name__}")
        area = self._vm_areas.get(addr)
        if area is not None and area.flags & want_flag:
            if addr in self._vm_array_owner:
                refuse_page_array_free(self, addr, fn)
            return area
        if area is None and addr in self._vfreed:
            self._log.emit(self._clock_ns(), f"Trying to {fn}() nonexistent vm area ({addr:016x})")
            raise DoubleFree(f"{fn}({show_hex(addr)}): the area was freed by {self._vfreed[addr]}() and is free now",
                             addr=addr, reason="double free")
        self._log.emit(self._clock_ns(), f"Trying to {fn}() nonexistent vm area ({addr:016x})"
                       if area is None else f"{fn}({addr:016x}): area was not made by "
                       f"{'vmalloc' if fn == 'vfree' else 'vmap'}")
        if area is not None:
            raise InvalidFree(f"{fn}({show_hex(addr)}): the area was made by {'vmap' if area.flags & VM_MAP else 'vmalloc'}"
                              f", free it with {'vunmap' if area.flags & VM_MAP else 'vfree'}",
                              addr=addr, reason="wrong free function")
        if not is_vmalloc_addr(addr):
            raise InvalidFree(f"{fn}({show_hex(addr)}): not a vmalloc address", addr=addr, reason="not a vmalloc address")
        inside = self._vmap.find(addr)
        if inside is not None:
            raise InvalidFree(f"{fn}({show_hex(addr)}): inside the area at {inside[0]:#x}, not its start",
                              addr=addr, reason="inside an area")
        raise InvalidFree(f"{fn}({show_hex(addr)}): no vm area starts there", addr=addr, reason="never allocated")

    # -- vmap ----------------------------------------------------------------------------

    def vmap(self, pfns: Iterable[int], caller: str | None = None) -> int | None:
        """vmap(): map existing pages (pfns) into one virtually contiguous area, or None."""
        self._live()
        try:
            pfns = list(pfns)
        except TypeError:
            raise TypeError(f"vmap: pfns must be a sequence of ints, not {type(pfns).__name__}") from None
        for p in pfns:
            if isinstance(p, bool) or not isinstance(p, int):
                raise TypeError(f"vmap: a pfn must be an int, not {type(p).__name__}")
            if not 0 <= p < self.nr_pages:
                raise InvalidArgument(f"vmap: pfn {p:#x} is outside memory")
        caller = check_caller(caller or self._where_always(1), "vmap")
        if not pfns or len(pfns) > self.nr_pages:
            return None
        area = self._get_vm_area(len(pfns) << PAGE_SHIFT, 1, VM_MAP, 0, caller)
        if area is None:
            return None
        rc = self._core.vmap_pages(area.start, pfns)
        if rc:
            self._release_range(area)
            return None
        area.mapped = len(pfns)     # vmap does not own the pages: nr_pages stays 0, as in the kernel
        return area.start

    def vunmap(self, addr: int) -> None:
        """vunmap(): remove a vmap area's mapping; the pages stay with their owner."""
        self._live()
        if addr is None:
            return
        area = self._vm_area_for_free(addr, "vunmap", VM_MAP)
        self._core.vunmap_pages(area.start, area.mapped)
        self._release_range(area)
        self._remember_freed(area.start, "vunmap")

    def vmalloc_to_page(self, addr: int) -> int | None:
        """vmalloc_to_page(): the pfn mapped at addr, or None where nothing is mapped."""
        self._live()
        if isinstance(addr, bool) or not isinstance(addr, int):
            raise TypeError(f"vmalloc_to_page: an address must be an int, not {type(addr).__name__}")
        if not 0 <= addr < 1 << 64:
            raise InvalidArgument(f"vmalloc_to_page({show_hex(addr)}): not a 64-bit address")
        r = self._core.walk(addr)
        return None if r < 0 else r

    def is_vmalloc_addr(self, addr: int) -> bool:
        """is_vmalloc_addr(): VMALLOC_START <= addr < VMALLOC_END."""
        self._live()
        return is_vmalloc_addr(addr)

    # -- kvmalloc --------------------------------------------------------------------------

    def kvmalloc(self, size: int, gfp: GfpLike = "GFP_KERNEL", caller: str | None = None, node: int = -1) -> int | None:
        """kvmalloc(): kmalloc, falling back to vmalloc above a page for blocking requests."""
        self._live()
        flags = gfpmod.parse(gfp)
        caller = caller or self._where_always(1)
        check_size(size, "kvmalloc")
        caller = check_caller(caller, "kvmalloc")
        kflags = flags
        if size > PAGE_SIZE:
            kflags |= gfpmod.GFP_NOWARN
            if not flags & gfpmod.GFP_RETRY_MAYFAIL:
                kflags |= gfpmod.GFP_NORETRY
            kflags &= ~gfpmod.GFP_NOFAIL
        ret = self.kmalloc(size, kflags, caller=caller)
        if ret is not None or size <= PAGE_SIZE:
            return ret
        if not flags & gfpmod.GFP_DIRECT_RECLAIM:
            return None
        if size > INT_MAX:
            if not flags & gfpmod.GFP_NOWARN:
                self._warn_once("kvmalloc-intmax", flags, "mm/util.c:650", "__kvmalloc_node_noprof")
            return None
        return self._vmalloc_node_range(size, 1, flags, caller, node, VM_ALLOW_HUGE_VMAP)

    def kvzalloc(self, size: int, gfp: GfpLike = "GFP_KERNEL", caller: str | None = None, node: int = -1) -> int | None:
        """kvzalloc(): kvmalloc with __GFP_ZERO."""
        return self.kvmalloc(size, gfpmod.parse(gfp) | gfpmod.GFP_ZERO, caller or self._where_always(1), node)

    def kvfree(self, addr: Optional[int]) -> None:
        """kvfree(): vfree for vmalloc addresses, kfree for the rest."""
        self._live()
        if is_vmalloc_addr(addr):
            self.vfree(addr)
        else:
            self.kfree(addr)

    # -- access and views ----------------------------------------------------------------------

    def _vmalloc_chunks(self, addr: int, n: int, write: bool):
        """(phys, length) pieces of [addr, addr+n) through the page tables, or a PageFault."""
        out = []
        pos, end = addr, addr + n
        while pos < end:
            pfn = self._core.walk(pos)
            if pfn < 0:
                self._fault(pos, write, f"{pos:#x} is not mapped (vmalloc range)")
            chunk = min(end - pos, PAGE_SIZE - (pos & (PAGE_SIZE - 1)))
            out.append(((pfn << PAGE_SHIFT) | (pos & (PAGE_SIZE - 1)), chunk))
            pos += chunk
        return out

    def _where_always(self, depth: int) -> str:
        return frame_caller(sys._getframe(depth + 1))

    def vmalloc_snapshot(self) -> dict:
        areas = []
        for start, size in self._vmap.busy():
            a = self._vm_areas[start]
            flags: tuple[str, ...] = ("vmalloc",) if a.flags & VM_ALLOC else ("vmap",) if a.flags & VM_MAP else ()
            if a.nested:
                flags += ("vpages",)
            nr = len(a.pfns)
            areas.append({"start": start, "size": size, "caller": a.caller, "nr_pages": nr, "phys_addr": 0,
                          "flags": flags, "nodes": {0: nr} if nr else {}})
        vm = self._core.vm_info()
        return {"areas": areas, "unpurged": [], "used_pages": vm["vmalloc_pages"]}
