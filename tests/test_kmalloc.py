"""kmalloc and its family, on both backends, written from the specification
(DESIGN.md "Errors", kernel-facts.md §2 kmalloc, §3 SLUB, issue 3) before the
implementation existed.

Every expected number is worked out by hand from the kernel's rules; the comment
beside it names the section of kernel-facts.md it comes from.  Where the
specification leaves room, the kernel's behaviour is chosen and the comment says so.
"""

from __future__ import annotations

import re

import pytest

import pyalloc
from pyalloc import (
    PAGE_OFFSET, PAGE_SIZE, ZERO_SIZE_PTR, DoubleFree, InvalidArgument, InvalidFree, PageFault,
    SlabCorruption,
)
from procview import log, meminfo, phys, slabinfo, vmstat
from slab_layout import fresh_slab, kmalloc_cache

MEM = "64M"
MiB = 1 << 20
KMALLOC_MAX_SIZE = 4 * MiB              # §2.1: KMALLOC_SHIFT_MAX 22
KMALLOC_MAX_CACHE_SIZE = 8192           # §2.1: KMALLOC_SHIFT_HIGH 13
DMA_LIMIT = 16 * MiB                    # §4.1: ZONE_DMA below 16 MiB
SIZES = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192]   # §2.2 suffixes
STEMS = ["kmalloc-", "kmalloc-rcl-", "dma-kmalloc-", "kmalloc-cg-"]       # §2.2 creation order of the types

# §3.2 table: size -> (objects per slab, pages per slab) by CPU count (min_objects 8 / 12 / 20)
GEOMETRY = {
    1: {256: (16, 1), 512: (8, 1), 1024: (8, 2), 2048: (8, 4), 4096: (8, 8), 8192: (4, 8)},
    2: {256: (16, 1), 512: (16, 2), 1024: (16, 4), 2048: (16, 8), 4096: (8, 8), 8192: (4, 8)},
    8: {256: (32, 2), 512: (32, 4), 1024: (32, 8), 2048: (16, 8), 4096: (8, 8), 8192: (4, 8)},
}
for _g in GEOMETRY.values():            # sizes up to 192 fit one page on every row: 4096 // size objects
    _g.update({s: (4096 // s, 1) for s in SIZES if s <= 192})


def size_class(n: int) -> int:
    """§2.2: kmalloc_size_index for n <= 192 (with the 96 and 192 caches), fls(n-1) above."""
    for s in (8, 16, 32, 64, 96, 128, 192):
        if n <= s:
            return s
    return 1 << (n - 1).bit_length()


def cache_align(size: int) -> int:
    """§2.2: max(8, largest power of two dividing the size)."""
    return max(8, size & -size)


def get_order(n: int) -> int:
    order = 0
    while PAGE_SIZE << order < n:
        order += 1
    return order


def suffix(size: int) -> str:
    return str(size) if size < 1024 else f"{size // 1024}k"


def row(m, name: str) -> dict:
    found = [r for r in slabinfo(m) if r["name"] == name]
    assert len(found) == 1, (name, found)
    return found[0]




@pytest.fixture
def m(make_machine):
    """A small 2-CPU machine (zones DMA and DMA32); check() must pass at the end of every test."""
    mach = make_machine(mem=MEM)
    yield mach
    mach.check()


# -- size classes and alignment ------------------------------------------------------------------

@pytest.mark.parametrize("size,expected", [
    (1, 8), (8, 8), (9, 16), (16, 16), (17, 32), (33, 64), (64, 64), (65, 96), (96, 96), (97, 128),
    (129, 192), (192, 192), (193, 256), (257, 512), (513, 1024), (1025, 2048), (2049, 4096),
    (4096, 4096), (4097, 8192), (8192, 8192)])
def test_size_class_examples(m, size, expected):
    p = m.kmalloc(size, "GFP_KERNEL")
    assert m.ksize(p) == expected                    # §2.2 table; without debug ksize = s->size (§2.3)
    m.kfree(p)


def test_every_size_from_1_to_8192(m):
    for n in range(1, KMALLOC_MAX_CACHE_SIZE + 1):
        p = m.kmalloc(n, "GFP_KERNEL")
        assert p is not None and p >= PAGE_OFFSET and p % 8 == 0, n
        assert m.ksize(p) == size_class(n), n
        assert p % cache_align(size_class(n)) == 0, n
        m.kfree(p)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("random", [True, False])
def test_objects_of_a_new_slab_are_aligned_and_in_freelist_order(make_machine, size, random):
    m = make_machine(mem=MEM, kconfig={"SLAB_FREELIST_RANDOM": random})
    ps = [m.kmalloc(size, "GFP_KERNEL") for _ in range(4)]
    for p in ps:
        assert p % 8 == 0 and p % cache_align(size) == 0     # §2.2: kmalloc-96 32-, kmalloc-192 64-aligned
    pages = GEOMETRY[2][size][1]
    assert len({phys(p) // (PAGE_SIZE * pages) for p in ps}) == 1                  # all in one slab
    cache = kmalloc_cache(m, "kmalloc-" + (f"{size >> 10}k" if size >= 1024 else str(size)))
    # mm/slub.c shuffle_freelist(): the cache's random sequence from a random start; without
    # SLAB_FREELIST_RANDOM (§2.3) address order from the slab's start.  s->size = nominal size (§2.2)
    assert ps == fresh_slab(m, cache, ps[0])[:4]
    if not random:
        assert [b - a for a, b in zip(ps, ps[1:])] == [size] * 3
        assert phys(ps[0]) % (PAGE_SIZE * pages) == 0        # first object at the start of the slab
    for p in ps:
        m.kfree(p)
    m.check()


def test_power_of_two_sizes_naturally_aligned_with_odd_requests(m):
    assert m.kmalloc(64, "GFP_KERNEL") % 64 == 0
    assert m.kmalloc(100, "GFP_KERNEL") % 128 == 0
    assert m.kmalloc(65, "GFP_KERNEL") % 32 == 0             # kmalloc-96
    assert m.kmalloc(150, "GFP_KERNEL") % 64 == 0            # kmalloc-192
    assert m.kmalloc(3000, "GFP_KERNEL") % 4096 == 0


# -- ZERO_SIZE_PTR, NULL ------------------------------------------------------------------------

def test_zero_size(m):
    assert ZERO_SIZE_PTR == 0x10                              # §2.1
    n = len(m.dmesg())
    assert m.kmalloc(0, "GFP_KERNEL") == ZERO_SIZE_PTR
    assert m.kzalloc(0, "GFP_KERNEL") == ZERO_SIZE_PTR
    assert m.kmalloc_array(0, 64, "GFP_KERNEL") == ZERO_SIZE_PTR
    assert m.kcalloc(7, 0, "GFP_KERNEL") == ZERO_SIZE_PTR
    assert m.ksize(ZERO_SIZE_PTR) == 0 and m.ksize(None) == 0  # §2.3 ksize
    m.kfree(None)
    m.kfree(ZERO_SIZE_PTR)                                     # §2.3: returns if ZERO_OR_NULL_PTR
    assert not [line for line in log(m, n) if "WARNING" in line or "BUG" in line]
    for addr in (ZERO_SIZE_PTR, ZERO_SIZE_PTR + 8):
        with pytest.raises(PageFault):
            m.read(addr, 1)
        with pytest.raises(PageFault):
            m.write(addr, b"x")


# -- kmalloc_large -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [8193, 12288, 16385, 100_000, KMALLOC_MAX_SIZE])
def test_kmalloc_large(m, size):
    order = get_order(size)                                   # §2.3: alloc_pages(|__GFP_COMP, get_order(size))
    m.drain_pages()             # MemFree counts no page waiting on a pcp list (NR_FREE_PAGES)
    before, vm0 = meminfo(m), vmstat(m)
    p = m.kmalloc(size, "GFP_KERNEL")
    assert p is not None and p >= PAGE_OFFSET
    assert p % PAGE_SIZE == 0 and phys(p) % (PAGE_SIZE << order) == 0   # a naturally aligned buddy block
    assert m.ksize(p) == PAGE_SIZE << order                   # §2.3: ksize of a large kmalloc = folio size
    m.drain_pages()             # the rest of the pcp refill back to the buddy
    mid, vm1 = meminfo(m), vmstat(m)
    kb = 4 << order
    assert mid["SUnreclaim"] - before["SUnreclaim"] == kb     # §2.3 / §7: charged to NR_SLAB_UNRECLAIMABLE_B
    assert mid["Slab"] - before["Slab"] == kb
    assert mid["SReclaimable"] == before["SReclaimable"]
    assert before["MemFree"] - mid["MemFree"] == kb
    assert vm1["nr_slab_unreclaimable"] - vm0["nr_slab_unreclaimable"] == 1 << order
    m.write(p + size - 1, b"\x77")
    assert m.read(p + size - 1, 1) == b"\x77"
    m.kfree(p)
    m.drain_pages()
    after = meminfo(m)
    assert (after["SUnreclaim"], after["MemFree"]) == (before["SUnreclaim"], before["MemFree"])


def test_kzalloc_large_is_zeroed(m):
    p = m.kmalloc(20000, "GFP_KERNEL")
    m.memset(p, 0xff, 20000)
    m.kfree(p)
    q = m.kzalloc(20000, "GFP_KERNEL")
    assert m.read(q, 20000) == bytes(20000)
    m.kfree(q)


def test_too_big_is_null_with_one_warning_unless_nowarn(m):
    n = len(m.dmesg())
    assert m.kmalloc(KMALLOC_MAX_SIZE + 1, "GFP_KERNEL|__GFP_NOWARN") is None
    assert m.kmalloc(64 * MiB, "GFP_KERNEL|__GFP_NOWARN") is None
    assert m.dmesg()[n:] == []                                # NOWARN: nothing at all
    assert m.kmalloc(KMALLOC_MAX_SIZE + 1, "GFP_KERNEL") is None
    # §2.1/§1.6: get_order(4 MiB + 1) = 11 > MAX_PAGE_ORDER: WARN_ON_ONCE_GFP in the page allocator
    warnings = [line for line in log(m, n) if line.startswith("WARNING:")]
    assert len(warnings) == 1
    assert "WARNING: CPU: 0 PID: 1 at mm/page_alloc.c" in warnings[0]
    assert m.kmalloc(KMALLOC_MAX_SIZE + 1, "GFP_KERNEL") is None        # WARN_ON_ONCE: no second one
    assert len([line for line in log(m, n) if line.startswith("WARNING:")]) == 1


def test_kmalloc_large_highmem_is_fixed_up(m):
    # DESIGN "Errors" / §1.6: slab GFP with __GFP_HIGHMEM is stripped with the kernel's line, when a
    # new slab is allocated.  The kernel prints the invalid bits first, then the fixed mask
    # (kmalloc_fix_flags: invalid_mask, then flags) - our reading of mm/slub.c.
    n = len(m.dmesg())
    p = m.kmalloc(100, "GFP_KERNEL|__GFP_HIGHMEM")
    assert p is not None and m.ksize(p) == 128
    text = "\n".join(log(m, n))
    assert "Unexpected gfp: 0x2 (__GFP_HIGHMEM). Fixing up to gfp: 0xcc0 (GFP_KERNEL). Fix your code!" in text
    k = len(m.dmesg())
    q = m.kmalloc(100, "GFP_KERNEL|__GFP_HIGHMEM")           # same CPU slab: no new slab, no message
    assert q == fresh_slab(m, kmalloc_cache(m, "kmalloc-128"), p)[1]
    assert not any("Unexpected gfp" in line for line in log(m, k))


# -- kmalloc_array, kcalloc, kzalloc -------------------------------------------------------------

@pytest.mark.parametrize("fn,n,size", [
    ("kmalloc_array", 2 ** 32, 2 ** 32), ("kmalloc_array", 2 ** 62, 4), ("kcalloc", 2 ** 63, 2),
    ("kcalloc", 3, 2 ** 63 - 1), ("kmalloc_array", 2 ** 64 - 1, 2)])
def test_array_overflow_is_null_without_warning(m, fn, n, size):
    assert n * size > 2 ** 64 - 1
    k = len(m.dmesg())
    assert getattr(m, fn)(n, size, "GFP_KERNEL") is None      # §2.3: NULL without a warning
    assert m.dmesg()[k:] == []


def test_array_sizes(m):
    p = m.kmalloc_array(3, 40, "GFP_KERNEL")                  # 120 bytes -> kmalloc-128
    assert m.ksize(p) == 128
    q = m.kcalloc(1024, 8, "GFP_KERNEL")                      # 8192 -> kmalloc-8k
    assert m.ksize(q) == 8192
    r = m.kmalloc_array(3, 4096, "GFP_KERNEL")                # 12288 -> kmalloc_large, order 2
    assert m.ksize(r) == 16384 and r % PAGE_SIZE == 0
    k = len(m.dmesg())
    assert m.kmalloc_array(1024, 8192, "GFP_KERNEL|__GFP_NOWARN") is None   # 8 MiB, no overflow
    assert m.dmesg()[k:] == []
    for x in (p, q, r):
        m.kfree(x)


@pytest.mark.parametrize("how", ["kzalloc", "kcalloc", "gfp_zero"])
def test_zeroing_variants(m, how):
    p = m.kmalloc(120, "GFP_KERNEL")
    m.memset(p, 0xee, 128)
    m.kfree(p)
    if how == "kzalloc":
        q = m.kzalloc(120, "GFP_KERNEL")
    elif how == "kcalloc":
        q = m.kcalloc(3, 40, "GFP_KERNEL")
    else:
        q = m.kmalloc(120, "GFP_KERNEL|__GFP_ZERO")
    assert q == p                                             # §2.3 LIFO
    assert m.read(q, 128) == bytes(128)                       # the whole object_size is cleared
    m.kfree(q)


@pytest.mark.parametrize("size", [8, 16, 96, 128, 192, 1024, 8192])
def test_kmalloc_does_not_clear_except_the_free_pointer(m, size):
    p = m.kmalloc(size, "GFP_KERNEL")
    pattern = bytes((i % 251) + 1 for i in range(size))      # no zero byte anywhere
    m.write(p, pattern)
    m.kfree(p)
    q = m.kmalloc(size, "GFP_KERNEL")
    assert q == p                                             # §2.3: LIFO on the same CPU
    off = (size // 2) // 8 * 8                                # §3.3 step 3: ALIGN_DOWN(object_size/2, 8)
    got = m.read(q, size)
    assert got[:off] == pattern[:off]
    assert got[off + 8:] == pattern[off + 8:]
    assert got[off:off + 8] != pattern[off:off + 8]           # SLUB wrote its free pointer there
    m.kfree(q)


# -- krealloc ------------------------------------------------------------------------------------

def test_krealloc_in_place_while_it_fits(m):
    p = m.kmalloc(100, "GFP_KERNEL")                          # kmalloc-128
    data = bytes(range(1, 101))
    m.write(p, data)
    assert m.krealloc(p, 128, "GFP_KERNEL") == p              # §2.3: ksize(p) >= n -> p unchanged
    assert m.krealloc(p, 10, "GFP_KERNEL") == p               # never moves to shrink
    assert m.read(p, 100) == data
    assert m.ksize(p) == 128
    m.kfree(p)


def test_krealloc_with_zero_clears_the_tail(m):
    p = m.kmalloc(100, "GFP_KERNEL")
    m.memset(p, 0xaa, 128)
    assert m.krealloc(p, 50, "GFP_KERNEL|__GFP_ZERO") == p
    assert m.read(p, 128) == b"\xaa" * 50 + bytes(78)         # §2.3: [n, ksize) zeroed
    m.kfree(p)


def test_krealloc_grows_by_moving_and_copying(m):
    p = m.kmalloc(64, "GFP_KERNEL")
    data = bytes(range(7, 71))
    m.write(p, data)
    q = m.krealloc(p, 65, "GFP_KERNEL")
    assert q != p and m.ksize(q) == 96                       # new object from kmalloc-96
    assert m.read(q, 64) == data                              # ksize(p) bytes copied
    with pytest.raises(DoubleFree):                           # p was freed by krealloc
        m.kfree(p)
    r = m.krealloc(q, 20000, "GFP_KERNEL")                    # to kmalloc_large
    assert r % PAGE_SIZE == 0 and m.read(r, 64) == data
    assert m.krealloc(r, 100, "GFP_KERNEL") == r              # 16 KiB folio still fits 100 bytes
    m.kfree(r)


def test_krealloc_zero_null_and_zero_size_ptr(m):
    p = m.kmalloc(64, "GFP_KERNEL")
    assert m.krealloc(p, 0, "GFP_KERNEL") == ZERO_SIZE_PTR    # §2.3: frees p
    with pytest.raises(DoubleFree):
        m.kfree(p)
    q = m.krealloc(None, 50, "GFP_KERNEL")                    # = kmalloc(50)
    assert m.ksize(q) == 64
    # kernel: ZERO_OR_NULL_PTR(p) gives ks = 0, so krealloc(ZERO_SIZE_PTR, n) is kmalloc(n) too
    r = m.krealloc(ZERO_SIZE_PTR, 200, "GFP_KERNEL")
    assert r not in (None, ZERO_SIZE_PTR) and m.ksize(r) == 256
    assert m.krealloc(ZERO_SIZE_PTR, 0, "GFP_KERNEL") == ZERO_SIZE_PTR
    assert m.krealloc(None, 0, "GFP_KERNEL") == ZERO_SIZE_PTR
    m.kfree(q)
    m.kfree(r)


def test_failed_krealloc_leaves_p_intact(m):
    p = m.kmalloc(100, "GFP_KERNEL")
    m.write(p, b"keep me")
    k = len(m.dmesg())
    assert m.krealloc(p, KMALLOC_MAX_SIZE + 1, "GFP_KERNEL|__GFP_NOWARN") is None
    assert m.dmesg()[k:] == []
    assert m.read(p, 7) == b"keep me" and m.ksize(p) == 128
    m.kfree(p)                                                # still live: no error
    with pytest.raises(DoubleFree):
        m.kfree(p)


# -- cache families, slabinfo rows, accounting ---------------------------------------------------

@pytest.mark.parametrize("gfp,cache", [
    ("GFP_KERNEL", "kmalloc-128"),
    ("GFP_ATOMIC", "kmalloc-128"),
    ("GFP_KERNEL|__GFP_ZERO", "kmalloc-128"),
    ("GFP_KERNEL_ACCOUNT", "kmalloc-cg-128"),
    ("GFP_KERNEL|__GFP_RECLAIMABLE", "kmalloc-rcl-128"),
    ("GFP_KERNEL|__GFP_DMA", "dma-kmalloc-128"),
    ("GFP_DMA", "dma-kmalloc-128"),
    ("GFP_KERNEL|__GFP_RECLAIMABLE|__GFP_ACCOUNT", "kmalloc-rcl-128"),   # §2.2 priority DMA > rcl > cg
    ("GFP_KERNEL|__GFP_DMA|__GFP_RECLAIMABLE|__GFP_ACCOUNT", "dma-kmalloc-128"),
])
def test_gfp_picks_the_cache_family(m, gfp, cache):
    # Assumes a fresh simulated machine has allocated nothing from the kmalloc caches (the spec
    # asks for no boot-time objects), so the first object makes one new slab in exactly one row.
    before = {r["name"]: r for r in slabinfo(m)}
    p = m.kmalloc(100, gfp)
    assert m.ksize(p) == 128
    after = {r["name"]: r for r in slabinfo(m)}
    changed = [name for name in after if after[name] != before.get(name)]
    assert changed == [cache]
    assert (after[cache]["active"], after[cache]["num"], after[cache]["num_slabs"]) == (32, 32, 1)
    if cache.startswith("dma-"):
        assert phys(p) < DMA_LIMIT                            # slab pages from ZONE_DMA
    m.kfree(p)


def test_slab_pages_are_accounted_by_family(m):
    mi0, vm0 = meminfo(m), vmstat(m)
    a = m.kmalloc(100, "GFP_KERNEL|__GFP_RECLAIMABLE")        # kmalloc-rcl-128: order 0
    mi1, vm1 = meminfo(m), vmstat(m)
    assert mi1["SReclaimable"] - mi0["SReclaimable"] == 4     # §7: slab pages by SLAB_RECLAIM_ACCOUNT
    assert mi1["KReclaimable"] - mi0["KReclaimable"] == 4
    assert mi1["SUnreclaim"] == mi0["SUnreclaim"]
    assert vm1["nr_slab_reclaimable"] - vm0["nr_slab_reclaimable"] == 1
    b = m.kmalloc(300, "GFP_KERNEL_ACCOUNT")                  # kmalloc-cg-512: order 1 on 2 CPUs (§3.2)
    mi2, vm2 = meminfo(m), vmstat(m)
    assert mi2["SUnreclaim"] - mi1["SUnreclaim"] == 8
    assert vm2["nr_slab_unreclaimable"] - vm1["nr_slab_unreclaimable"] == 2
    assert mi2["SReclaimable"] == mi1["SReclaimable"]
    for mi in (mi0, mi1, mi2):
        assert mi["Slab"] == mi["SReclaimable"] + mi["SUnreclaim"]
    m.kfree(a)
    m.kfree(b)


def test_all_kmalloc_rows_exist_from_boot_newest_first(m):
    names = [r["name"] for r in slabinfo(m)]
    expected = {stem + suffix(s) for stem in STEMS for s in SIZES}
    assert len(expected) == 52
    kmalloc_rows = [n for n in names if n in expected]
    assert len(kmalloc_rows) == 52 == len(set(kmalloc_rows))
    # §2.2: created by type (normal, rcl, dma, cg), within a type 96, 192, 8 ... 8k; newest first
    created = [stem + suffix(s) for stem in STEMS for s in [96, 192] + [x for x in SIZES if x not in (96, 192)]]
    assert kmalloc_rows == created[::-1]
    assert kmalloc_rows[:3] == ["kmalloc-cg-8k", "kmalloc-cg-4k", "kmalloc-cg-2k"]
    assert kmalloc_rows[-3:] == ["kmalloc-8", "kmalloc-192", "kmalloc-96"]


@pytest.mark.parametrize("cpus", [1, 2, 8])
def test_kmalloc_row_geometry(make_machine, cpus):
    mach = make_machine(mem=MEM, cpus=cpus)
    rows = {r["name"]: r for r in slabinfo(mach)}
    for stem in STEMS:
        for size in SIZES:
            r = rows[stem + suffix(size)]
            # §3.2 table; objsize is s->size, the nominal size without debug (§2.2)
            assert (r["objsize"], r["per_slab"], r["pages"]) == (size, *GEOMETRY[cpus][size]), r
    assert (rows["kmalloc-8k"]["per_slab"], rows["kmalloc-512"]["pages"]) == (4, {1: 1, 2: 2, 8: 4}[cpus])
    mach.check()


# -- CPUs ----------------------------------------------------------------------------------------

def test_lifo_is_per_cpu(m):
    a = m.kmalloc(64, "GFP_KERNEL", cpu=0)
    b = m.kmalloc(64, "GFP_KERNEL", cpu=1)
    assert a // PAGE_SIZE != b // PAGE_SIZE                   # each CPU has its own active slab
    cache = kmalloc_cache(m, "kmalloc-64")
    slab_a, slab_b = fresh_slab(m, cache, a), fresh_slab(m, cache, b)
    m.kfree(a, cpu=0)
    c = m.kmalloc(64, "GFP_KERNEL", cpu=1)
    assert c == slab_b[1]                                     # CPU 1 continues its own slab
    assert m.kmalloc(64, "GFP_KERNEL", cpu=0) == a            # CPU 0 gets its freed object back
    with m.on_cpu(1):
        assert m.kmalloc(64, "GFP_KERNEL") == slab_b[2]
    assert m.kmalloc(64, "GFP_KERNEL") == slab_a[1]           # back on CPU 0 after the block


@pytest.mark.parametrize("cpu", [2, -1, 100])
def test_cpu_out_of_range(m, cpu):
    with pytest.raises(InvalidArgument):
        m.kmalloc(64, "GFP_KERNEL", cpu=cpu)
    p = m.kmalloc(64, "GFP_KERNEL")
    with pytest.raises(InvalidArgument):
        m.kfree(p, cpu=cpu)
    with pytest.raises(InvalidArgument):
        with m.on_cpu(cpu):
            pass
    m.kfree(p)


# -- bad frees (always detected) -----------------------------------------------------------------

def refused(m, exc, fn, *args, **kw):
    """Call fn, expect exc, the machine unchanged, a report in dmesg and check() passing."""
    before = (m.proc("slabinfo"), m.proc("meminfo"), len(m.dmesg()))
    with pytest.raises(exc):
        fn(*args, **kw)
    assert (m.proc("slabinfo"), m.proc("meminfo")) == before[:2]
    m.check()
    new = log(m, before[2])
    assert new                                                # DESIGN: each kernel bug writes a report
    return new


def test_double_kfree(m):
    p = m.kmalloc(64, "GFP_KERNEL")
    q = m.kmalloc(64, "GFP_KERNEL")
    m.kfree(p)
    refused(m, DoubleFree, m.kfree, p)
    m.kfree(q)
    refused(m, DoubleFree, m.kfree, p)                        # free, but no longer the list head
    refused(m, DoubleFree, m.kfree, q)
    assert m.kmalloc(64, "GFP_KERNEL") == q                   # still LIFO afterwards


def test_double_kfree_of_large(m):
    p = m.kmalloc(20000, "GFP_KERNEL")
    m.kfree(p)
    refused(m, DoubleFree, m.kfree, p)


def test_invalid_kfrees(m):
    p = m.kmalloc(64, "GFP_KERNEL")
    refused(m, InvalidFree, m.kfree, p + 8)                   # interior
    refused(m, InvalidFree, m.kfree, p + 1)
    refused(m, InvalidFree, m.kfree, p + 64)                  # the next slot: never handed out
    big = m.kmalloc(20000, "GFP_KERNEL")
    refused(m, InvalidFree, m.kfree, big + PAGE_SIZE)         # a tail page of kmalloc_large
    refused(m, InvalidFree, m.kfree, big + 16)
    page = m.get_free_pages("GFP_KERNEL", 0)                  # page allocator memory is not kmalloc's
    refused(m, InvalidFree, m.kfree, page)
    block = m.get_free_pages("GFP_KERNEL", 2)
    refused(m, InvalidFree, m.kfree, block)
    refused(m, InvalidFree, m.kfree, PAGE_OFFSET + 60 * MiB + 0x123c)   # not a slot start anywhere
    m.free_pages_addr(page, 0)
    m.free_pages_addr(block, 2)
    m.kfree(big)
    m.kfree(p)


def test_kmem_cache_free_of_a_kmalloc_pointer(m):
    c = m.kmem_cache_create("not_kmalloc", 64)
    p = m.kmalloc(64, "GFP_KERNEL")
    new = refused(m, InvalidFree, m.kmem_cache_free, c, p)
    # §3.4 wrong cache: the kernel's cache_from_obj WARN
    assert any("Wrong slab cache. not_kmalloc but object is from kmalloc-64" in line for line in new)
    m.kfree(p)


# -- slub_debug on the kmalloc caches ------------------------------------------------------------

@pytest.fixture
def dbg(make_machine):
    mach = make_machine(mem=MEM, slub_debug="FZPU")
    yield mach
    mach.check()


def test_full_debug_kmalloc_64_layout(dbg):
    # §3.3: kmalloc-64 (align 64) with F,Z,P,U: 64+8 RZ, +8 free pointer, +64 tracks, +4 orig_size,
    # +8 RZ pad, +64 left pad (ALIGN(8, 64)) = 220 -> ALIGN(220, 64) = 256; 16 per order-0 slab (§3.2)
    r = row(dbg, "kmalloc-64")
    assert (r["objsize"], r["per_slab"], r["pages"]) == (256, 16, 1)
    p = dbg.kmalloc(64, "GFP_KERNEL")
    q = dbg.kmalloc(64, "GFP_KERNEL")
    assert q == fresh_slab(dbg, kmalloc_cache(dbg, "kmalloc-64"), p)[1]
    assert (q - p) % 256 == 0 and p % 64 == 0
    assert dbg.ksize(p) == 64                                 # §2.3: object_size under RED_ZONE/POISON
    dbg.kfree(p)
    dbg.kfree(q)


def test_debug_kmalloc_object_bytes(dbg):
    p = dbg.kmalloc(50, "GFP_KERNEL")
    # §3.3: poisoned on allocation up to orig_size (last byte 0xa5), [orig_size, object_size) 0xcc,
    # right red zone 0xcc while allocated
    assert dbg.read(p, 64) == b"\x6b" * 49 + b"\xa5" + b"\xcc" * 14
    assert dbg.read(p + 64, 8) == b"\xcc" * 8
    dbg.kfree(p)
    assert dbg.read(p, 64) == b"\x6b" * 63 + b"\xa5"          # freed: poison over the whole object
    assert dbg.read(p + 64, 8) == b"\xbb" * 8                 # inactive red zone
    z = dbg.kzalloc(64, "GFP_KERNEL")
    assert dbg.read(z, 64) == bytes(64)
    dbg.kfree(z)


def test_kmalloc_redzone_overwrite_found_at_kfree(dbg):
    # slub_kunit test_kmalloc_redzone_access: 18 bytes from kmalloc-32, write p[18] and p[19]
    p = dbg.kmalloc(18, "GFP_KERNEL")
    dbg.write(p + 18, b"\x78\x78")
    n = len(dbg.dmesg())
    with pytest.raises(SlabCorruption):
        dbg.kfree(p)
    new = log(dbg, n)
    bugs = [line for line in new if line.startswith("BUG kmalloc-32 (")]
    # kernel-facts §3.4 format, or 6.15+: "[kmalloc Redzone overwritten] 0x..." then "...: Object corrupt"
    assert re.fullmatch(r"BUG kmalloc-32 \(.*\): kmalloc Redzone overwritten", bugs[0]) or (
        bugs[0].endswith("): Object corrupt")
        and any(line.startswith("[kmalloc Redzone overwritten] 0x%016x-" % (p + 18)) for line in new))
    assert new[new.index(bugs[0]) - 1] == "=" * 77
    dbg.check()
    assert dbg.kmalloc(32, "GFP_KERNEL") is not None


def test_debug_double_and_invalid_kfree_reports(dbg):
    p = dbg.kmalloc(100, "GFP_KERNEL")
    q = dbg.kmalloc(100, "GFP_KERNEL")
    new = refused(dbg, InvalidFree, dbg.kfree, p + 8)
    assert any(line.startswith("BUG kmalloc-128 (") and "Invalid object pointer 0x%016x" % (p + 8) in line
               for line in new)                               # §3.4 bad pointer (F)
    dbg.kfree(p)
    new = refused(dbg, DoubleFree, dbg.kfree, p)
    assert any(re.fullmatch(r"BUG kmalloc-128 \(.*\): Object already free", line) for line in new)
    dbg.kfree(q)


def test_kzalloc_keeps_the_kmalloc_redzone_under_debug(make_machine):
    # slab_post_alloc_hook zeroes only the requested size of a debug kmalloc object:
    # [orig_size, object_size) stays the 0xcc kmalloc red zone, and validation passes
    m = make_machine(mem="64M", slub_debug="FZPU")
    p = m.kzalloc(24, "GFP_KERNEL")
    assert m.read(p, 24) == bytes(24)
    assert m.read(p + 24, 8) == b"\xcc" * 8
    m.check()
