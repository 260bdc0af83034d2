"""pyalloc.helpers, drgn's names, each checked against the machine's own /proc text
(as drgn's tests check its helpers against a live kernel's files)."""

from collections import Counter

import pytest

import pyalloc
from pyalloc import PAGE_OFFSET, helpers as h
from pyalloc.tools import workload
from pyalloc._abi import KIND_LARGE_KMALLOC
from procview import meminfo, slabinfo


@pytest.fixture
def worked(backend):
    with pyalloc.Machine(mem="128M", backend=backend, cpus=2) as m:
        workload.run_pages(m, fraction=0.15)
        workload.run_slab(m, objects=3000)
        workload.run_vmalloc(m)
        yield m
        m.check()


def zoneinfo_fields(m):
    zones, cur = {}, None
    for line in m.proc("zoneinfo").splitlines():
        f = line.split()
        if line.startswith("Node "):
            cur = zones.setdefault(f[3], {})
        elif cur is not None and len(f) == 2 and f[0] in ("min", "low", "high", "managed", "present", "spanned"):
            cur.setdefault(f[0], int(f[1]))
        elif cur is not None and line.strip().startswith("pages free"):
            cur["free"] = int(f[2])
    return zones


def test_slab_cache_walks_match_slabinfo(worked):
    m = worked
    rows = {r["name"]: r for r in slabinfo(m)}
    assert [c.name for c in h.for_each_slab_cache(m)] == [r["name"] for r in slabinfo(m)]
    for cache in h.for_each_slab_cache(m):
        row = rows[cache.name]
        assert h.find_slab_cache(m, cache.name) is cache
        assert h.slab_cache_objects_per_slab(m, cache) == row["per_slab"]
        assert h.slab_cache_pages_per_slab(m, cache) == row["pages"]
        assert 1 << h.slab_cache_order(m, cache) == row["pages"]
        objs = list(h.slab_cache_for_each_allocated_object(m, cache))
        assert len(objs) == len(cache) <= row["active"]
        assert len(set(objs)) == len(objs)
        for addr in objs[:50]:
            info = h.slab_object_info(m, addr)
            assert info.slab_cache is cache and info.address == addr and info.allocated
            assert info.slab.slab_cache is cache and info.slab.objects == row["per_slab"]
            assert h.find_containing_slab_cache(m, addr + cache.object_size - 1) is cache
    assert h.find_slab_cache(m, "no_such_cache") is None


def test_allocated_objects_are_exactly_the_live_ones(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        c = m.kmem_cache_create("things", 200)
        objs = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(50)]
        for a in objs[::2]:
            m.kmem_cache_free(c, a)
        assert list(h.slab_cache_for_each_allocated_object(m, c)) == sorted(objs[1::2])
        freed = h.slab_object_info(m, objs[0] + 7)
        assert freed.address == objs[0] and not freed.allocated
        assert "allocated=False" in repr(freed) and "things" in repr(freed)
        assert h.slab_object_info(m, m.get_free_pages("GFP_KERNEL")) is None     # a plain page
        assert h.slab_object_info(m, 0x1234) is None                             # not even memory
        k = m.kmalloc(100, "GFP_KERNEL")
        assert h.find_containing_slab_cache(m, k).name == "kmalloc-128"


def test_pages_match_buddyinfo_and_meminfo(worked):
    m = worked
    per_order = Counter()
    slab_pages = large_kmalloc_pages = 0
    for page in h.for_each_page(m):
        st = m._core.page_state(page.pfn)
        if h.PageBuddy(page):
            per_order[st[2]] += 1
        elif h.PageSlab(page):
            slab_pages += 1
        elif st[3] == KIND_LARGE_KMALLOC:      # counted as slab in meminfo, but not PageSlab
            large_kmalloc_pages += 1
    buddy = Counter()
    for line in m.proc("buddyinfo").splitlines():
        for order, n in enumerate(line.split()[4:]):
            buddy[order] += int(n)
    assert +per_order == +buddy
    mi = meminfo(m)
    assert slab_pages > 0 and large_kmalloc_pages > 0
    assert (slab_pages + large_kmalloc_pages) * 4 == mi["Slab"]
    assert h.nr_free_pages(m) * 4 == mi["MemFree"]
    assert h.totalram_pages(m) * 4 == mi["MemTotal"]


def test_compound_pages_and_address_conversions(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        pfn = m.alloc_pages("GFP_KERNEL|__GFP_COMP", 2)
        plain = m.alloc_pages("GFP_KERNEL", 2)
        head, tail = h.pfn_to_page(m, pfn), h.pfn_to_page(m, pfn + 3)
        assert h.PageHead(head) and h.PageCompound(head) and not h.PageTail(head)
        assert h.PageTail(tail) and h.PageCompound(tail) and not h.PageHead(tail)
        assert h.compound_order(head) == 2 and h.compound_order(tail) == 0
        assert h.decode_page_flags(head) == "PG_head" and h.decode_page_flags(tail) == ""
        assert not h.PageCompound(h.pfn_to_page(m, plain)) and h.compound_order(h.pfn_to_page(m, plain)) == 0
        assert not h.PageBuddy(head) and not h.PageSlab(head)
        assert h.page_to_pfn(head) == pfn
        assert h.page_to_virt(head) == m.page_address(pfn) == PAGE_OFFSET + pfn * 4096
        assert h.virt_to_page(m, h.page_to_virt(tail) + 5) == tail
        assert "heads an order-2 allocation" in repr(head)
        with pytest.raises(pyalloc.InvalidArgument):
            h.pfn_to_page(m, m.nr_pages)
        with pytest.raises(TypeError, match="pfn"):
            h.pfn_to_page(m, "1")


def test_vmap_areas_match_vmallocinfo(worked):
    m = worked
    areas = list(h.for_each_vmap_area(m))
    lines = m.proc("vmallocinfo").splitlines()
    assert len(areas) == len(lines)
    for va, line in zip(areas, lines):
        span, size = line.split()[0], int(line.split()[1])
        assert span == f"0x{va.va_start:016x}-0x{va.va_end:016x}"
        assert size == va.va_end - va.va_start
        assert va.caller in line
        assert (f"pages={va.nr_pages} " in line) == (va.nr_pages > 0)
    va = areas[0]
    assert h.find_vmap_area(m, va.va_start + 1) == va
    assert h.find_vmap_area(m, va.va_end + 10 ** 9) is None
    page = h.vmalloc_to_page(m, va.va_start)
    assert page is not None and page.pfn == m.vmalloc_to_page(va.va_start)
    assert h.vmalloc_to_page(m, va.va_end - 1) is None                   # the guard page


def test_zones_and_watermarks_match_zoneinfo(worked):
    m = worked
    info = zoneinfo_fields(m)
    zones = list(h.for_each_zone(m))
    assert [z.name for z in zones] == [n for n in info if info[n].get("present")]
    for z in zones:
        zi = info[z.name]
        assert (h.min_wmark_pages(z), h.low_wmark_pages(z), h.high_wmark_pages(z)) == \
            (zi["min"], zi["low"], zi["high"])
        assert z.managed_pages == zi["managed"] and z.nr_free_pages == zi["free"]
        assert z.name in repr(z)


def test_helpers_change_nothing(worked):
    m = worked
    views = ("buddyinfo", "zoneinfo", "vmstat", "slabinfo", "vmallocinfo")
    before = {v: m.proc(v) for v in views}, m.dmesg()
    for cache in h.for_each_slab_cache(m):
        for addr in h.slab_cache_for_each_allocated_object(m, cache):
            h.slab_object_info(m, addr)
    sum(h.PageBuddy(p) for p in h.for_each_page(m))
    list(h.for_each_vmap_area(m))
    assert ({v: m.proc(v) for v in views}, m.dmesg()) == before
