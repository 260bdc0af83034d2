"""x86-64 4-level page tables of init_mm: the model's twin of csrc/pgtable.c.

PGD (bits 47-39) -> PUD -> PMD -> PTE, 512 8-byte entries a level, P4D
folded.  The PGD (swapper_pg_dir) belongs to the kernel image and lives in
the machine; lower tables are buddy pages (GFP_KERNEL|__GFP_ZERO) taken when
first needed and kept after unmapping, as the kernel keeps them.  Entries are
read and written in the simulated memory itself.  PUD and PMD pages count in
NR_PAGETABLE; kernel PTE pages do not (6.12).
"""

from __future__ import annotations

from . import buddy, reclaim
from .arena import Arena, INT64_MAX, INT64_MIN, c_ints
from .._abi import (
    EBUSY, EFAULT, EINVAL, EINVALFREE, ENOMEM, GFP_ZERO, KIND_PGTABLE, KIND_VMALLOC, OK, PAGE_SHIFT, PG_ALLOC,
    KERNPG_TABLE, PTE_PRESENT,
)

PAGE_KERNEL = 0x8000000000000163
PTE_PFN_MASK = 0x000ffffffffff000
GFP_PGTABLE_KERNEL = 0xcc0 | GFP_ZERO
U64 = (1 << 64) - 1


def canonical_kernel(va: int) -> bool:
    return (va & U64) >> 47 == 0x1ffff


def _get(a: Arena, phys: int) -> int:
    return int.from_bytes(a.read(phys, 8), "little")


def _set(a: Arena, phys: int, value: int) -> None:
    a.write(phys, value.to_bytes(8, "little"))


class Slot:
    """Where an entry lives: the machine's PGD, or a table page in memory."""

    __slots__ = ("a", "index", "phys")

    def __init__(self, a: Arena, index: int = -1, phys: int = -1) -> None:
        self.a, self.index, self.phys = a, index, phys

    def get(self) -> int:
        return self.a.pgd[self.index] if self.phys < 0 else _get(self.a, self.phys)

    def set(self, value: int) -> None:
        if self.phys < 0:
            self.a.pgd[self.index] = value
        else:
            _set(self.a, self.phys, value)


def table_of(a: Arena, entry: int) -> int | None:
    """The phys address of the table an entry points at, or None when it points at
    anything but a live table page: the tables sit in simulated memory, where a
    program writing through the direct map can scribble on them."""
    pfn = (entry & PTE_PFN_MASK) >> PAGE_SHIFT
    p = a.pages.get(pfn) if pfn < a.nr_pages else None
    if p is None or not p.flags & PG_ALLOC or p.kind != KIND_PGTABLE:
        return None
    return entry & PTE_PFN_MASK


def next_table(a: Arena, e: Slot, counted: bool) -> int | None:
    """The phys address of the next level's table, allocating it if empty
    (None on ENOMEM or when the entry is damaged)."""
    v = e.get()
    if v & PTE_PRESENT:
        return table_of(a, v)
    pfn = buddy.alloc(a, GFP_PGTABLE_KERNEL, 0)
    if pfn < 0:
        return None
    a.pages[pfn].kind = KIND_PGTABLE
    a.nr_pgtable_pages_all += 1
    if counted:
        a.nr_page_table_pages += 1
    v = (pfn << PAGE_SHIFT) | KERNPG_TABLE
    e.set(v)
    return v & PTE_PFN_MASK


def pte_slot(a: Arena, va: int, alloc: bool) -> Slot | None:
    e = Slot(a, index=(va >> 39) & 511)
    for shift, counted in ((30, True), (21, True), (12, False)):
        if not alloc and not e.get() & PTE_PRESENT:
            return None
        t = next_table(a, e, counted)
        if t is None:
            return None
        e = Slot(a, phys=t + ((va >> shift) & 511) * 8)
    return e


def range_ok(vaddr: int, nr: int) -> bool:
    va = vaddr & U64
    return (0 <= nr <= 1 << 33 and not va & 0xfff and canonical_kernel(va)
            and canonical_kernel(va + (nr << PAGE_SHIFT) - (1 if nr else 0)))


def map_pages(a: Arena, va: int, nr: int, pfns) -> int:
    for i in range(nr):
        pte = pte_slot(a, va + (i << PAGE_SHIFT), True)
        if pte is None or pte.get() & PTE_PRESENT:
            for j in range(i):
                pte_slot(a, va + (j << PAGE_SHIFT), False).set(0)  # type: ignore[union-attr]  # mapped above
            return EBUSY if pte is not None else ENOMEM
        pte.set((pfns[i] << PAGE_SHIFT) | PAGE_KERNEL)
    return OK


def vmalloc_pages(a: Arena, vaddr: int, nr: int, gfp: int, pfns: list) -> int:
    """Take nr order-0 pages and map them at vaddr; pfns receives them."""
    if type(vaddr) is not int or type(nr) is not int or type(gfp) is not int \
            or not INT64_MIN <= vaddr <= INT64_MAX or not INT64_MIN <= nr <= INT64_MAX:
        vaddr, nr, gfp = c_ints(vaddr, nr, gfp)
    if not range_ok(vaddr, nr) or not 0 <= gfp < 1 << 32:
        return EINVAL
    a.alloc_seq += 1
    return reclaim.call_end(a, _vmalloc_pages(a, vaddr, nr, gfp, pfns))


def _vmalloc_pages(a: Arena, vaddr: int, nr: int, gfp: int, pfns: list) -> int:
    got = []
    for _ in range(nr):
        pfn = buddy.alloc(a, gfp, 0)
        if pfn < 0:
            break
        a.pages[pfn].kind = KIND_VMALLOC
        got.append(pfn)
    rc = ENOMEM if len(got) < nr else map_pages(a, vaddr & U64, nr, got)
    if rc:
        for pfn in got:
            buddy.free_pages(a, pfn, 0, KIND_VMALLOC)
        if pfns:
            pfns[0] = len(got)      # how far it got, for the warning
        return ENOMEM if len(got) < nr else EBUSY
    pfns[:nr] = got
    a.vmalloc_pages += nr
    return OK


def vmap_pages(a: Arena, vaddr: int, nr: int, pfns) -> int:
    if not range_ok(vaddr, nr) or len(pfns) < nr:
        return EINVAL
    if any(not 0 <= p < a.nr_pages for p in pfns[:nr]):
        return EINVAL
    return map_pages(a, vaddr & U64, nr, pfns)


def vunmap_pages(a: Arena, vaddr: int, nr: int) -> int:
    """Clear the PTEs of a range; the pages are their owner's business."""
    if not range_ok(vaddr, nr):
        return EINVAL
    va = vaddr & U64
    for i in range(nr):
        pte = pte_slot(a, va + (i << PAGE_SHIFT), False)
        if pte is not None:
            pte.set(0)
    return OK


def free_vmalloc_pages(a: Arena, pfns) -> int:
    """Give back the pages vmalloc took (all of them, or none on a bad pfn)."""
    for pfn in pfns:
        p = a.pages.get(pfn) if 0 <= pfn < a.nr_pages else None
        if p is None or not p.flags & PG_ALLOC or p.kind != KIND_VMALLOC or p.order:
            return EINVALFREE
    for pfn in pfns:
        buddy.free_pages(a, pfn, 0, KIND_VMALLOC)
        a.vmalloc_pages -= 1
    return OK


def walk(a: Arena, vaddr: int) -> int:
    if not canonical_kernel(vaddr):
        return EFAULT
    pte = pte_slot(a, vaddr & U64, False)
    if pte is None or not pte.get() & PTE_PRESENT or (pte.get() & PTE_PFN_MASK) >> PAGE_SHIFT >= a.nr_pages:
        return EFAULT
    return (pte.get() & PTE_PFN_MASK) >> PAGE_SHIFT


def pte_value(a: Arena, vaddr: int) -> int:
    if not canonical_kernel(vaddr):
        return 0
    pte = pte_slot(a, vaddr & U64, False)
    v = pte.get() if pte is not None else 0
    return v - (1 << 64) if v >> 63 else v        # as the C core's int64 answer


def _entries(a: Arena, table_phys: int):
    raw = a.read(table_phys, 4096)
    for k in range(512):
        v = int.from_bytes(raw[k * 8:k * 8 + 8], "little")
        if v & PTE_PRESENT:
            yield k, v


def check(a: Arena):
    """The same walk as pgt_check in C: the same order, the same words."""
    tables = counted = 0
    for i, e1 in enumerate(a.pgd):
        if not e1 & PTE_PRESENT:
            continue
        pud = table_of(a, e1)
        if pud is None:
            return f"page table entry {i} points at pfn {(e1 & PTE_PFN_MASK) >> PAGE_SHIFT:#x}, not a table page"
        tables += 1
        counted += 1
        for j, e2 in _entries(a, pud):
            pmd = table_of(a, e2)
            if pmd is None:
                return (f"page table entry {i}/{j} points at pfn {(e2 & PTE_PFN_MASK) >> PAGE_SHIFT:#x}, "
                        "not a table page")
            tables += 1
            counted += 1
            for k, e3 in _entries(a, pmd):
                if table_of(a, e3) is None:
                    return (f"page table entry {i}/{j}/{k} points at pfn {(e3 & PTE_PFN_MASK) >> PAGE_SHIFT:#x}, "
                            "not a table page")
                tables += 1
    if (tables, counted) != (a.nr_pgtable_pages_all, a.nr_page_table_pages):
        return (f"{tables} table pages ({counted} counted) found, counters say "
                f"{a.nr_pgtable_pages_all} ({a.nr_page_table_pages})")
    return None
