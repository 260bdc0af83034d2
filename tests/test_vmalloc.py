"""vmalloc, vmap and kvmalloc over the 4-level page tables, on both backends."""

import pytest

import pyalloc
from pyalloc import DoubleFree, InvalidArgument, InvalidFree, PageFault, PAGE_OFFSET, VMALLOC_START
from procview import meminfo, vmstat

PAGE = 4096
PAGE_KERNEL = 0x8000000000000163


@pytest.fixture
def m(make_machine):
    return make_machine(mem="64M")


def vinfo(m):
    return m.proc("vmallocinfo").splitlines()


def test_first_areas_are_lowest_first_with_guard_pages(m):
    a = m.vmalloc(4 * PAGE, caller="drv_init+0x10/0x20")
    b = m.vmalloc(1, caller="drv_init+0x10/0x20")
    assert a == VMALLOC_START
    assert b == VMALLOC_START + 5 * PAGE            # 4 pages + the guard page
    assert vinfo(m) == [
        "0xffffc90000000000-0xffffc90000005000   20480 drv_init+0x10/0x20 pages=4 vmalloc N0=4",
        "0xffffc90000005000-0xffffc90000007000    8192 drv_init+0x10/0x20 pages=1 vmalloc N0=1",
    ]
    m.vfree(a)
    # no lazy purge in pyalloc: the hole is reused at once, lowest first
    assert m.vmalloc(2 * PAGE) == VMALLOC_START
    assert m.vmalloc(3 * PAGE) == VMALLOC_START + 7 * PAGE
    m.check()


def warm_page_array_slab(m, nr_pages):
    # __vmalloc_area_node kmallocs the page array (8 bytes a page) before taking
    # the pages: make its kmalloc slab exist first, so the next pages are vmalloc's
    m.kfree(m.kmalloc(8 * nr_pages, "GFP_KERNEL"))


def test_pages_come_one_by_one_from_the_buddy_allocator(m):
    warm_page_array_slab(m, 3)
    free0 = meminfo(m)["MemFree"]
    expect = [m.alloc_pages("GFP_KERNEL") for _ in range(3)]
    for p in expect:
        m.free_pages(p)
    # vmalloc pages: GFP_KERNEL|__GFP_HIGHMEM|__GFP_NOWARN order-0, the same head-of-list order
    # (the per-cpu list is LIFO: the page freed last comes first)
    a = m.vmalloc(3 * PAGE)
    assert [m.vmalloc_to_page(a + i * PAGE) for i in range(3)] == expect[::-1]
    assert m.vmalloc_to_page(a + 3 * PAGE) is None                      # the guard page
    mi = meminfo(m)
    assert mi["VmallocUsed"] == 12
    # 3 data pages and PUD + PMD + PTE table pages (the page array's slab existed already)
    assert mi["PageTables"] == 8                                        # PUD and PMD count; kernel PTE pages do not
    assert vmstat(m)["nr_page_table_pages"] == 2
    assert free0 - mi["MemFree"] == (3 + 3) * 4
    m.vfree(a)
    assert meminfo(m)["VmallocUsed"] == 0
    assert meminfo(m)["PageTables"] == 8                                # the tables stay, as in the kernel
    m.check()


def test_ptes_carry_page_kernel(m, backend):
    a = m.vmalloc(PAGE)
    pte = m._core.pte(a) & (2 ** 64 - 1)
    assert pte == (m.vmalloc_to_page(a) << 12) | PAGE_KERNEL


def test_access_through_the_page_tables(m):
    a = m.vmalloc(3 * PAGE)
    m.write(a + PAGE - 3, b"abcdefgh")                                  # across a page boundary
    assert m.read(a + PAGE - 3, 8) == b"abcdefgh"
    pfn = m.vmalloc_to_page(a + PAGE)
    assert m.read(PAGE_OFFSET + pfn * PAGE, 5) == b"defgh"              # the same bytes through the direct map
    m.memset(a, 0x11, 3 * PAGE)
    assert m.read(a + 2 * PAGE, 4) == b"\x11" * 4
    before = m.read(a + 3 * PAGE - 2, 2)
    with pytest.raises(PageFault):
        m.write(a + 3 * PAGE - 2, b"wxyz")                              # runs into the guard page
    assert m.read(a + 3 * PAGE - 2, 2) == before                        # nothing written
    with pytest.raises(PageFault):
        m.read(a + 3 * PAGE, 1)
    assert any("BUG: unable to handle page fault for address: ffffc90000003000" in l for l in m.dmesg())
    m.vfree(a)
    with pytest.raises(PageFault):
        m.read(a, 1)
    m.check()


def test_vmalloc_does_not_clear_vzalloc_does(m):
    warm_page_array_slab(m, 1)
    p = m.get_free_pages("GFP_KERNEL")
    m.memset(p, 0x5a, PAGE)
    m.free_pages_addr(p)
    a = m.vmalloc(PAGE)
    assert m.read(a, PAGE) == b"\x5a" * PAGE
    m.memset(a, 0x77, PAGE)
    m.vfree(a)
    z = m.vzalloc(PAGE)
    assert m.read(z, PAGE) == bytes(PAGE)


def test_large_area_gets_a_vmalloced_page_array(m):
    a = m.vmalloc(600 * PAGE, caller="big+0x1/0x2")                     # 600 pointers: 4800 bytes > a page
    lines = vinfo(m)
    assert lines[0].startswith(f"0x{a:016x}-0x{a + 601 * PAGE:016x} 2461696 big+0x1/0x2 pages=600 vmalloc vpages N0=600")
    assert lines[1].endswith("big+0x1/0x2 pages=2 vmalloc N0=2")        # the nested area holding the array
    m.vfree(a)
    assert vinfo(m) == []
    m.check()


def test_zero_and_oversized_requests(m):
    assert m.vmalloc(0) is None
    assert sum("WARNING" in l for l in m.dmesg()) == 1
    assert m.vmalloc(65 << 20) is None                                  # more pages than the machine has
    assert any("vmalloc error: size 68157440, exceeds total pages" in l for l in m.dmesg())
    n = len(m.dmesg())
    assert m.vmalloc(65 << 20, "GFP_KERNEL|__GFP_NOWARN") is None
    assert len(m.dmesg()) == n
    with pytest.raises(InvalidArgument):
        m.vmalloc(-1)
    with pytest.raises(TypeError):
        m.vmalloc(1.5)


def test_page_shortage_gives_everything_back(m):
    before = (m.proc("buddyinfo"), meminfo(m)["MemFree"])
    assert m.vmalloc(63 << 20) is None                                  # fits the machine, not the free memory
    # the page allocator found nothing to reclaim and nobody to kill: 6.18 panics there (dmesg ends
    # with it, so no "vmalloc error" report follows); pyalloc goes on and gives the pages back
    assert m.dmesg()[-1].endswith("---[ end Kernel panic - not syncing: System is deadlocked on memory ]---")
    assert not any("vmalloc error: size" in l for l in m.dmesg())
    # the page array came from kmalloc (a vmalloc'ed one here) and went back too
    assert vinfo(m) == []
    assert meminfo(m)["VmallocUsed"] == 0
    m.check()
    assert meminfo(m)["MemFree"] <= before[1]                           # only table pages and slabs may stay


def test_bad_frees(m):
    a = m.vmalloc(2 * PAGE)
    with pytest.raises(InvalidFree):
        m.vfree(a + PAGE)                                               # the middle of an area
    with pytest.raises(InvalidFree):
        m.vfree(VMALLOC_START + (1 << 30))                              # nothing there
    with pytest.raises(InvalidFree):
        m.vfree(PAGE_OFFSET)                                            # not a vmalloc address
    with pytest.raises(InvalidFree):
        m.vunmap(a)                                                     # made by vmalloc
    with pytest.raises(InvalidFree):
        m.free_pages(m.vmalloc_to_page(a))                              # a vmalloc page, the wrong free function
    m.vfree(a)
    with pytest.raises(DoubleFree):
        m.vfree(a)
    assert any("Trying to vfree() nonexistent vm area (ffffc90000000000)" in l for l in m.dmesg())
    m.vfree(None)
    with pytest.raises(TypeError):
        m.vfree("0x1")
    m.check()


def test_vmap_maps_existing_pages(m):
    pfns = [m.alloc_pages("GFP_KERNEL") for _ in range(3)]
    v = m.vmap(pfns[::-1], caller="mapper+0x0/0x10")
    assert [m.vmalloc_to_page(v + i * PAGE) for i in range(3)] == pfns[::-1]
    m.write(v + PAGE, b"via vmap")
    assert m.read(m.page_address(pfns[1]), 8) == b"via vmap"
    assert vinfo(m) == [f"0x{v:016x}-0x{v + 4 * PAGE:016x}   16384 mapper+0x0/0x10 vmap"]
    with pytest.raises(InvalidFree):
        m.vfree(v)                                                      # made by vmap
    m.vunmap(v)
    assert m.read(m.page_address(pfns[1]), 8) == b"via vmap"            # the pages stay with their owner
    with pytest.raises(DoubleFree):
        m.vunmap(v)
    for p in pfns:
        m.free_pages(p)
    assert m.vmap([]) is None
    with pytest.raises(InvalidArgument):
        m.vmap([m.nr_pages])
    m.check()


def test_kvmalloc_prefers_kmalloc(m):
    small = m.kvmalloc(100)
    assert not m.is_vmalloc_addr(small) and m.ksize(small) == 128
    large = m.kvmalloc(100000)                                          # kmalloc_large still works here
    assert not m.is_vmalloc_addr(large)
    huge = m.kvmalloc(5 << 20)                                          # beyond KMALLOC_MAX_SIZE: vmalloc
    assert m.is_vmalloc_addr(huge)
    assert not any("WARNING" in l for l in m.dmesg())                   # kmalloc was asked with __GFP_NOWARN
    assert m.kvmalloc(5 << 20, "GFP_ATOMIC") is None                    # may not block: no vmalloc fallback
    z = m.kvzalloc(5 << 20)
    assert m.read(z + (5 << 20) - 8, 8) == bytes(8)
    for p in (small, large, huge, z):
        m.kvfree(p)
    m.kvfree(None)
    assert vinfo(m) == []
    m.check()


def test_is_vmalloc_addr_bounds(m):
    assert m.is_vmalloc_addr(VMALLOC_START)
    assert m.is_vmalloc_addr(pyalloc.VMALLOC_END - 1)
    assert not m.is_vmalloc_addr(pyalloc.VMALLOC_END)
    assert not m.is_vmalloc_addr(VMALLOC_START - 1)
    assert not m.is_vmalloc_addr(None)


def test_vmalloc_to_page_of_unmapped_addresses(m):
    assert m.vmalloc_to_page(VMALLOC_START) is None
    assert m.vmalloc_to_page(PAGE_OFFSET) is None                        # the direct map is not in these tables
    assert m.vmalloc_to_page(0) is None
    with pytest.raises(InvalidArgument):
        m.vmalloc_to_page(-1)
