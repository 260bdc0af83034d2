"""The buddy allocator's behaviour, on both backends.

Expected addresses are worked out by hand from the kernel's rules (see the
comments beside each), not read off pyalloc: head-of-list allocation, expand()
keeping the low half, buddy_merge_likely tail placement, pageblock claiming.
"""

import pytest

import pyalloc
from pyalloc import DoubleFree, GFPError, InvalidArgument, InvalidFree, OutOfMemory


def buddyinfo(m):
    out = {}
    for line in m.proc("buddyinfo").splitlines():
        head, counts = line[:22], line[22:]
        out[head.split()[-1]] = [int(x) for x in counts.split()]
    return out


def zone(m, name):
    return next(z for z in m.snapshot()["zones"] if z["name"] == name)


def pageblocks(m, name):
    return dict(zip(("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate"), zone(m, name)["pageblocks"]))


# -- boot ------------------------------------------------------------------------

def test_boot_1g_zones_and_free_lists(machine):
    zs = machine.snapshot()["zones"]
    assert [(z["name"], z["start_pfn"], z["spanned"]) for z in zs[:2]] == [("DMA", 0, 4096), ("DMA32", 4096, 258048)]
    assert zs[2]["managed"] == 0
    assert buddyinfo(machine) == {"DMA": [0] * 10 + [4], "DMA32": [0] * 10 + [252]}
    assert [z["wmark"][:3] for z in zs[:2]] == [(16, 20, 24), (1008, 1266, 1524)]   # kernel-facts 4.2 example
    assert zs[0]["lowmem_reserve"] == [0, 1008, 1008, 1008, 1008]
    assert zs[3]["wmark"] == (32, 32, 32, 32)      # empty Movable zone, as the 6.18 capture shows


@pytest.mark.parametrize("mem,expected", [("16M", 512), ("1G", 4096), ("4G", 8192), ("16G", 16384)])
def test_min_free_kbytes_formula(make_machine, mem, expected):
    assert make_machine(mem=mem).snapshot()["min_free_kbytes"] == expected


def test_min_free_kbytes_override(make_machine):
    m = make_machine(mem="1G", min_free_kbytes=65536)
    assert m.snapshot()["min_free_kbytes"] == 65536
    assert zone(m, "DMA32")["wmark"][0] == 16384 * 258048 // 262144


def test_boot_unaligned_end_is_freed_in_aligned_chunks(make_machine):
    # 64 MiB + 3 pages: DMA32 holds 12 whole order-10 blocks, then an order-1
    # block at 16384 and an order-0 page at 16386
    m = make_machine(mem=(64 << 20) + 3 * 4096)
    assert buddyinfo(m)["DMA32"] == [1, 1] + [0] * 8 + [12]
    m.check()


def test_boot_8g_has_normal_zone(make_machine):
    m = make_machine(mem="8G")
    assert zone(m, "Normal")["start_pfn"] == 1 << 20
    assert buddyinfo(m)["Normal"][10] == 1024


def test_boot_64g_is_lazy_and_usable(make_machine):
    m = make_machine(mem="64G")
    assert buddyinfo(m)["Normal"][10] == 15360
    assert m.alloc_pages("GFP_KERNEL") == 1 << 20
    m.check()


# -- split and merge -------------------------------------------------------------------

def test_split_returns_low_half_and_queues_upper_halves(machine):
    # the first unmovable request claims the first order-10 block of DMA32 (pfn
    # 4096) and splits it: 4096 out, 4097 (o0), 4098 (o1), 4100 (o2), 4104 (o3) ...
    got = [machine.alloc_pages("GFP_KERNEL", o) for o in (4, 5, 4)]
    assert got == [4096, 4128, 4112]
    # orders 0..3 go through the per-cpu lists: the first order-0 request refills them
    # with batch (63) pages, split by split: 4160..4222; then order 3 takes batch >> 3 = 7
    # blocks from 4224 on, order 1 batch >> 1 = 31 blocks from 4280 on (nr_pcp_alloc,
    # rmqueue_bulk; 4223 is left as an order-0 block)
    got = [machine.alloc_pages("GFP_KERNEL", o) for o in (0, 0, 3, 1, 0)]
    assert got == [4160, 4161, 4224, 4280, 4162]


def test_free_goes_to_tail_when_a_higher_merge_is_likely(machine):
    # order 4: above PAGE_ALLOC_COSTLY_ORDER, so straight to and from the buddy lists
    a, b, c, d, e, f = (machine.alloc_pages("GFP_KERNEL", 4) for _ in range(6))
    assert (a, b, c, d, e, f) == (4096, 4112, 4128, 4144, 4160, 4176)
    machine.free_pages(c, 4)   # buddy 4144 busy; its order-5 buddy 4160 busy: head
    machine.free_pages(e, 4)   # buddy 4176 busy; but 4192 is a free order-5 block: tail
    assert machine.alloc_pages("GFP_KERNEL", 4) == 4128
    assert machine.alloc_pages("GFP_KERNEL", 4) == 4160


def test_freeing_everything_merges_back(machine):
    boot = buddyinfo(machine)
    pfns = [(machine.alloc_pages("GFP_KERNEL", o), o) for o in [0, 1, 2, 3, 0, 5, 0, 9, 10, 4] * 5]
    for pfn, o in pfns[::2] + pfns[1::2]:
        machine.free_pages(pfn, o)
    assert buddyinfo(machine) != boot       # small blocks wait on the pcp lists
    machine.drain_pages()
    assert buddyinfo(machine) == boot
    machine.check()


def test_lifo_reuse_of_a_freed_page(machine):
    machine.alloc_pages("GFP_KERNEL")
    p = machine.alloc_pages("GFP_KERNEL")
    machine.free_pages(p)
    assert machine.alloc_pages("GFP_KERNEL") == p


# -- migrate types -------------------------------------------------------------------------

def test_unmovable_claims_whole_pageblocks_movable_does_not(machine):
    assert machine.alloc_pages("GFP_HIGHUSER_MOVABLE") == 4096
    assert pageblocks(machine, "DMA32")["Unmovable"] == 0
    # no Unmovable block anywhere: claim the largest Movable block, the next order-10 one
    assert machine.alloc_pages("GFP_KERNEL") == 5120
    assert pageblocks(machine, "DMA32")["Unmovable"] == 2
    assert machine.alloc_pages("GFP_KERNEL|__GFP_RECLAIMABLE") == 6144
    assert pageblocks(machine, "DMA32")["Reclaimable"] == 2
    pti = machine.proc("pagetypeinfo")
    assert "Node 0, zone    DMA32            2          500            2            0            0" in pti


def test_movable_request_claims_a_mostly_free_pageblock_back(make_machine):
    # 2 MiB machine: one pageblock.  The unmovable request claims it; a movable
    # request then finds a large free block of the other type (order 8 >= 4)
    # and, the pageblock being mostly free, claims it back (try_to_claim_block)
    m = make_machine(mem="2M", min_free_kbytes=0)
    assert m.alloc_pages("GFP_KERNEL") == 0
    assert pageblocks(m, "DMA")["Unmovable"] == 1
    assert m.alloc_pages("GFP_HIGHUSER_MOVABLE") == 1
    assert pageblocks(m, "DMA")["Movable"] == 1
    m.check()


def test_small_movable_request_steals_without_claiming(make_machine):
    # the pageblock is mostly allocated: only blocks of order < 4 are left, so
    # no claim is tried and the smallest fallback block is stolen as it is
    m = make_machine(mem="2M", min_free_kbytes=0)
    assert [m.alloc_pages("GFP_KERNEL") for _ in range(500)] == list(range(500))
    assert m.alloc_pages("GFP_HIGHUSER_MOVABLE") == 500   # the order-2 block at 500
    assert pageblocks(m, "DMA")["Unmovable"] == 1
    # the refill (batch 1 << alloc_factor 5 after 500 refills without a free) stole the
    # rest block by block: 500..503 (o2), 504..511 (o3), each split to order 0
    assert buddyinfo(m)["DMA"][:4] == [0, 0, 0, 0]
    assert m._core.pcp_info(0, 0)["lists"] == [(0, 1, list(range(501, 512)))]
    m.check()


# -- zones -------------------------------------------------------------------------------------

def test_zone_modifiers_pick_zones(make_machine):
    m = make_machine(mem="8G")
    assert m.alloc_pages("GFP_KERNEL|GFP_DMA") == 0
    assert m.alloc_pages("GFP_KERNEL|GFP_DMA32") == 4096
    assert m.alloc_pages("GFP_KERNEL") == 1 << 20
    assert m.alloc_pages("GFP_HIGHUSER_MOVABLE") == (1 << 20) + 1024    # Movable zone is empty: Normal
    assert m.get_free_pages("GFP_KERNEL") == pyalloc.PAGE_OFFSET + (((1 << 20) + 1) << 12)


def test_zonelist_falls_back_below_the_low_watermark(make_machine):
    m = make_machine(mem=(4 << 30) + (16 << 20))       # Normal: 4096 pages
    low = zone(m, "Normal")["wmark"][1]
    n = 0
    while m.alloc_pages("GFP_KERNEL") >= 1 << 20:
        n += 1
    # the fast path leaves Normal once its free pages reach the low watermark; the last
    # refill (rmqueue_bulk checks no watermark) took 32 pages and left 31 on the pcp list
    free = zone(m, "Normal")["nr_free_pages"]
    assert free <= low and (n, free) == (4064, 1)
    assert m._core.pcp_info(2, 0)["count"] == 31


# -- watermarks and reserves --------------------------------------------------------------------

def test_reserves_by_gfp(make_machine):
    # 16 MiB: DMA only. min_free_kbytes 512 -> min 128, low 160.
    m = make_machine(mem="16M")
    assert zone(m, "DMA")["wmark"][:2] == (128, 160)

    def drain(gfp):
        n = 0
        while m.alloc_pages(gfp) is not None:
            n += 1
        return n

    assert drain("GFP_KERNEL") == 4096 - 128            # slow path stops at min
    assert drain("GFP_NOWAIT") == 0                     # no extra reserve
    assert drain("GFP_KERNEL|__GFP_HIGH") == 128 - 64   # blocking __GFP_HIGH: half of min
    # atomic: 37.5% of min, checked before the pcp refill, which (batch 1 << alloc_factor 5)
    # takes 32 pages at once: one is handed out, 31 wait on the pcp list below the floor
    assert drain("GFP_ATOMIC") == 1
    assert drain("GFP_ATOMIC|__GFP_MEMALLOC|__GFP_NOMEMALLOC") == 0
    assert drain("GFP_KERNEL|__GFP_MEMALLOC") == 31 + 32   # no watermarks: the pcp list, then the rest
    assert zone(m, "DMA")["nr_free_pages"] == 0
    m.check()


def test_failure_is_reported_unless_nowarn(make_machine):
    m = make_machine(mem="16M")
    while m.alloc_pages("GFP_KERNEL|__GFP_NOWARN") is not None:
        pass
    assert not any("allocation failure" in line for line in m.dmesg())
    # RETRY_MAYFAIL: no OOM killer (plain GFP_KERNEL would find nobody to kill and panic, 6.18 prints no
    # report after that)
    assert m.alloc_pages("GFP_KERNEL|__GFP_COMP|__GFP_RETRY_MAYFAIL", 1) is None
    lines = m.dmesg()
    first = [line for line in lines if "allocation failure" in line]
    assert len(first) == 1
    assert first[0].endswith("pyalloc: page allocation failure: order:1, "
                             "mode:0x44cc0(GFP_KERNEL|__GFP_RETRY_MAYFAIL|__GFP_COMP), "
                             "nodemask=(null),cpuset=/,mems_allowed=0")
    assert any(line.endswith("Mem-Info:") for line in lines)


def test_highatomic_reserve_is_taken_by_atomic_high_order_slowpath(machine):
    m = machine
    low32 = zone(m, "DMA32")["wmark"][1]
    while zone(m, "DMA32")["nr_free_pages"] > low32 + 2000:
        assert m.alloc_pages("GFP_KERNEL", 9) is not None
    while zone(m, "DMA32")["nr_free_pages"] > low32:
        assert m.alloc_pages("GFP_KERNEL") >= 4096
    dma = zone(m, "DMA")
    dma_floor = dma["wmark"][1] + dma["lowmem_reserve"][2]
    while zone(m, "DMA")["nr_free_pages"] > dma_floor:
        assert m.alloc_pages("GFP_KERNEL") < 4096      # DMA32 is below low: DMA serves
    assert pageblocks(m, "DMA32")["HighAtomic"] == 0
    assert m.alloc_pages("GFP_ATOMIC", 1) >= 4096      # slow path, ALLOC_HIGHATOMIC
    assert pageblocks(m, "DMA32")["HighAtomic"] == 1
    assert zone(m, "DMA32")["nr_reserved_highatomic"] == 512


# -- __GFP_NOFAIL ----------------------------------------------------------------------------------

def test_nofail_uses_reserves_then_raises(make_machine):
    m = make_machine(mem="16M")
    while m.alloc_pages("GFP_KERNEL") is not None:
        pass
    n = 0
    with pytest.raises(OutOfMemory):
        while True:
            assert m.alloc_pages("GFP_KERNEL|__GFP_NOFAIL") is not None
            n += 1
    assert n == 128             # the OOM path's last resort: no watermarks
    assert any("__GFP_NOFAIL" in line for line in m.dmesg())
    m.check()


def test_nofail_without_direct_reclaim_warns_and_fails(make_machine):
    m = make_machine(mem="16M")
    while m.alloc_pages("GFP_ATOMIC|__GFP_NOWARN") is not None:
        pass
    assert m.alloc_pages("GFP_NOWAIT|__GFP_NOFAIL") is None    # 6.18's GFP_NOWAIT has __GFP_NOWARN
    assert not any("WARNING" in line for line in m.dmesg())
    assert m.alloc_pages("GFP_ATOMIC|__GFP_NOFAIL") is None
    assert sum("WARNING: CPU: 0 PID: 1" in line for line in m.dmesg()) == 1
    assert sum("page allocation failure: order:0, mode:0x8820(GFP_ATOMIC|__GFP_NOFAIL)" in line
               for line in m.dmesg()) == 1


def test_nofail_high_order_warns_once_in_slowpath(make_machine):
    m = make_machine(mem="16M")
    while m.alloc_pages("GFP_KERNEL|__GFP_NOWARN", 2) is not None:
        pass
    before = sum("WARNING" in line for line in m.dmesg())
    m.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", 2)
    m.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", 2)
    assert sum("WARNING" in line for line in m.dmesg()) == before + 1


# -- orders ------------------------------------------------------------------------------------------

def test_order_above_max_is_null_with_one_warning(machine):
    assert machine.alloc_pages("GFP_KERNEL|__GFP_NOWARN", 11) is None
    assert not any("WARNING" in line for line in machine.dmesg())
    assert machine.alloc_pages("GFP_KERNEL", 11) is None
    assert machine.alloc_pages("GFP_KERNEL", 12) is None
    assert sum("WARNING: CPU: 0 PID: 1 at mm/page_alloc.c" in line for line in machine.dmesg()) == 1


@pytest.mark.parametrize("order", [-1, -(2 ** 70)])
def test_negative_order_is_invalid(machine, order):
    with pytest.raises(InvalidArgument):
        machine.alloc_pages("GFP_KERNEL", order)
    machine.check()


@pytest.mark.parametrize("order", [1.0, "1", None, [0]])
def test_non_int_order_is_a_type_error(machine, order):
    with pytest.raises(TypeError):
        machine.alloc_pages("GFP_KERNEL", order)
    with pytest.raises(TypeError):
        machine.free_pages(4096, order)
    machine.check()


def test_huge_order_is_null(machine):
    assert machine.alloc_pages("GFP_KERNEL|__GFP_NOWARN", 2 ** 70) is None


@pytest.mark.parametrize("gfp", ["GFP_KERNLE", "", "GFP_KERNEL|", "__GFP_DMA|__GFP_DMA32", 1.5, -1, 2 ** 32, None])
def test_bad_gfp_is_gfperror(machine, gfp):
    with pytest.raises(GFPError):
        machine.alloc_pages(gfp)
    machine.check()


def test_gfp_spellings_are_equivalent(make_machine):
    results = []
    for g in ["GFP_KERNEL | __GFP_ZERO", 0xdc0, pyalloc.GFP.KERNEL | pyalloc.GFP.ZERO]:
        m = make_machine(mem="16M")
        results.append(m.alloc_pages(g))
    assert results == [0, 0, 0]


# -- bad frees ----------------------------------------------------------------------------------------

def assert_refused(m, exc, pfn, order=0, match=None):
    before = (m.proc("buddyinfo"), m.proc("pagetypeinfo"), len(m.dmesg()))
    with pytest.raises(exc, match=match):
        m.free_pages(pfn, order)
    assert (m.proc("buddyinfo"), m.proc("pagetypeinfo")) == before[:2]
    m.check()
    return m.dmesg()[before[2]:]


def test_double_free(machine):
    p = machine.alloc_pages("GFP_KERNEL")
    machine.alloc_pages("GFP_KERNEL")
    machine.free_pages(p)
    new = assert_refused(machine, DoubleFree, p, match="double free")
    assert any("VM_BUG_ON_PAGE(page_ref_count(page) == 0)" in line for line in new)


def test_double_free_after_merge(machine):
    a, b = machine.alloc_pages("GFP_KERNEL"), machine.alloc_pages("GFP_KERNEL")
    machine.free_pages(b)
    machine.free_pages(a)        # merges b into a large free block
    assert_refused(machine, DoubleFree, b)


def test_free_of_a_page_reused_inside_a_bigger_block_is_invalid_not_double(machine):
    a, b = machine.alloc_pages("GFP_KERNEL"), machine.alloc_pages("GFP_KERNEL")
    machine.free_pages(b)
    machine.free_pages(a)
    machine.drain_pages()                               # back to the buddy, where they merge
    assert machine.alloc_pages("GFP_KERNEL", 1) == a     # covers b as its second page
    assert_refused(machine, InvalidFree, b, match="inside the block")


def test_free_of_never_allocated_page(machine):
    new = assert_refused(machine, InvalidFree, 5000, match="never allocated")
    assert any("BUG: Bad page state in process pyalloc  pfn:01388" in line for line in new)


def test_free_of_interior_and_tail_pages(machine):
    p = machine.alloc_pages("GFP_KERNEL", 2)
    assert_refused(machine, InvalidFree, p + 1, match="inside the block")
    c = machine.alloc_pages("GFP_KERNEL|__GFP_COMP", 2)
    assert_refused(machine, InvalidFree, c + 3, match="tail page")
    machine.free_pages(p, 2)
    machine.free_pages(c, 2)


def test_free_with_wrong_order(machine):
    p = machine.alloc_pages("GFP_KERNEL", 2)
    assert_refused(machine, InvalidFree, p, 1, match="wrong order")
    assert_refused(machine, InvalidFree, p, 3, match="wrong order")
    machine.free_pages(p, 2)


@pytest.mark.parametrize("pfn", [-1, 262144, 2 ** 40, 2 ** 80, -(2 ** 80)])
def test_free_out_of_range(machine, pfn):
    assert_refused(machine, InvalidFree, pfn)


@pytest.mark.parametrize("order", [11, -1, 2 ** 70])
def test_free_with_impossible_order(machine, order):
    p = machine.alloc_pages("GFP_KERNEL")
    with pytest.raises(InvalidArgument):
        machine.free_pages(p, order)
    machine.free_pages(p, 0)


def test_free_pages_addr(machine):
    addr = machine.get_free_pages("GFP_KERNEL", 1)
    with pytest.raises(InvalidFree):
        machine.free_pages_addr(addr + 8, 1)
    machine.free_pages_addr(None)
    machine.free_pages_addr(0)
    machine.free_pages_addr(addr, 1)
    with pytest.raises(DoubleFree):
        machine.free_pages_addr(addr, 1)
    with pytest.raises(InvalidArgument):
        machine.free_pages_addr(0x1234, 0)
    machine.check()


# -- contents -------------------------------------------------------------------------------------------

def test_old_bytes_survive_free_and_reallocation(machine):
    addr = machine.get_free_pages("GFP_KERNEL")
    machine.write(addr, b"\xaa" * 4096)
    machine.free_pages_addr(addr)
    assert machine.get_free_pages("GFP_KERNEL") == addr
    assert machine.read(addr, 4096) == b"\xaa" * 4096


def test_gfp_zero_and_get_zeroed_page(machine):
    addr = machine.get_free_pages("GFP_KERNEL", 1)
    machine.memset(addr, 0x5a, 8192)
    machine.free_pages_addr(addr, 1)
    assert machine.get_free_pages("GFP_KERNEL|__GFP_ZERO", 1) == addr
    assert machine.read(addr, 8192) == bytes(8192)
    machine.memset(addr, 0x77, 4096)
    machine.free_pages_addr(addr, 1)
    machine.drain_pages()       # an order-1 block on a pcp list serves no order-0 request
    z = machine.get_zeroed_page("GFP_KERNEL")
    assert z == addr and machine.read(z, 4096) == bytes(4096)
