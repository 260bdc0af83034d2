"""The helpers for 6.18's per-CPU state and page types (pyalloc.helpers)."""

import pytest

import pyalloc
from pyalloc import helpers as h


def test_decode_page_flags_names_page_types(backend):
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        obj = m.kmalloc(64, "GFP_KERNEL")
        slab_page = h.virt_to_page(m, obj)
        assert h.PageSlab(slab_page)
        assert h.decode_page_flags(slab_page).split("|")[-1] == "PGTY_slab"
        big = m.kmalloc(4 * 4096 * 2, "GFP_KERNEL")            # kmalloc_large: a compound page, no type
        assert h.decode_page_flags(h.virt_to_page(m, big)) == "PG_head"
        pfn = m.alloc_pages("GFP_KERNEL", order=4)
        m.free_pages(pfn, order=4)
        buddies = [p for p in h.for_each_page(m) if h.PageBuddy(p)]
        assert buddies and all(h.decode_page_flags(p) == "PGTY_buddy" for p in buddies[:50])
        plain = h.pfn_to_page(m, m.alloc_pages("GFP_KERNEL", order=0))
        assert h.decode_page_flags(plain) == ""


def test_slab_cache_is_merged(backend):
    with pyalloc.Machine(mem="32M", backend=backend, slab_merge=True) as m:
        a = m.kmem_cache_create("helper_a", 200)
        assert not h.slab_cache_is_merged(m, a)
        m.kmem_cache_create("helper_b", 200)
        assert h.slab_cache_is_merged(m, a)
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        a = m.kmem_cache_create("helper_a", 200)
        m.kmem_cache_create("helper_b", 200)
        assert not h.slab_cache_is_merged(m, a)


def test_percpu_helpers_refuse_bad_cpus(backend):
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        cache = m.kmem_cache_create("helper_c", 100)
        for bad in (-1, 2, "0", True):
            with pytest.raises(pyalloc.InvalidArgument):
                h.slab_cache_cpu_slab(m, cache, bad)
            with pytest.raises(pyalloc.InvalidArgument):
                h.zone_pcp_lists(m, "Normal", bad)
        with pytest.raises(pyalloc.InvalidArgument):
            h.zone_pcp_lists(m, "HighMem", 0)


def test_drgn_forms_take_the_cache_alone(backend):
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        cache = m.kmem_cache_create("drgn_form", 700)
        objs = [m.kmem_cache_alloc(cache, "GFP_KERNEL") for _ in range(3)]
        assert h.slab_cache_objects_per_slab(cache) == h.slab_cache_objects_per_slab(m, cache) == cache.objects
        assert h.slab_cache_order(cache) == h.slab_cache_order(m, cache) == cache.order
        assert h.slab_cache_pages_per_slab(cache) == 1 << cache.order
        assert sorted(h.slab_cache_for_each_allocated_object(cache)) == sorted(objs)
        assert list(h.slab_cache_for_each_allocated_object(m, cache)) == list(
            h.slab_cache_for_each_allocated_object(cache))
        assert h.slab_cache_is_merged(cache) is False
        with pytest.raises(pyalloc.InvalidArgument, match="expected a kmem_cache"):
            h.slab_cache_order(m)


def test_page_fields_drgn_users_read(backend):
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        cache = m.kmem_cache_create("page_fields", 3000)           # order-3 slabs: compound
        obj = m.kmem_cache_alloc(cache, "GFP_KERNEL")
        head = h.virt_to_page(m, obj).compound_head
        tail = h.pfn_to_page(m, head.pfn + 1)
        assert head.slab_cache is cache and tail.slab_cache is cache
        assert tail.compound_head == head and head.compound_head == head
        assert head.flags == 1 << 6 and tail.flags == 0             # PG_head is bit 6 in 6.18
        pfn = m.alloc_pages("GFP_KERNEL", order=5)
        m.free_pages(pfn, order=5)
        buddy = next(p for p in h.for_each_page(m) if h.PageBuddy(p) and p.private >= 5)
        assert buddy.slab_cache is None and buddy.flags == 0
        assert h.pfn_to_page(m, buddy.pfn + 1).private == 0
