"""pyalloc.machine.vmap_area: the busy/free range bookkeeping under vmalloc (kernel-facts.md §5.3).

Pure Python, shared by both backends, so no backend fixture.  The known-answer
tests work out each address by hand from "lowest address that fits"; the property
test compares every call with a sorted list scanned linearly.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from pyalloc.machine.vmap_area import PAGE_SIZE, VmapAreas, _inorder

P = PAGE_SIZE
B = 0xffffc90000000000          # VMALLOC_START, 4-level: aligned far beyond any align used here


def make(pages: int = 64) -> VmapAreas:
    va = VmapAreas(B, B + pages * P)
    va.check()
    return va


def alloc(va: VmapAreas, *args, **kwargs):
    got = va.alloc(*args, **kwargs)
    va.check()
    return got


def free(va: VmapAreas, start: int) -> int:
    got = va.free(start)
    va.check()
    return got


# --- known answers ----------------------------------------------------------------

def test_fresh_range_is_one_free_range():
    va = make()
    assert len(va) == 0
    assert list(va.busy()) == []
    assert list(va.free_ranges()) == [(B, B + 64 * P)]


def test_first_area_at_start_next_after_it():
    va = make()
    assert alloc(va, 2 * P) == B
    assert alloc(va, P) == B + 2 * P
    assert alloc(va, 3 * P) == B + 3 * P
    assert len(va) == 3
    assert list(va.busy()) == [(B, 2 * P), (B + 2 * P, P), (B + 3 * P, 3 * P)]
    assert list(va.free_ranges()) == [(B + 6 * P, B + 64 * P)]


def test_holes_reused_lowest_first():
    va = make()
    a, b, c, d, e = (alloc(va, 2 * P) for _ in range(5))
    assert (a, b, c, d, e) == tuple(B + i * 2 * P for i in range(5))
    assert free(va, d) == 2 * P
    assert free(va, b) == 2 * P
    assert list(va.free_ranges()) == [(b, b + 2 * P), (d, d + 2 * P), (B + 10 * P, B + 64 * P)]
    assert alloc(va, P) == b                    # the lowest hole, even though d's is as good
    assert alloc(va, 2 * P) == d                # b's rest (one page) is too short
    assert alloc(va, P) == b + P                # b's rest
    assert alloc(va, 3 * P) == B + 10 * P       # no hole left: the tail
    assert list(va.free_ranges()) == [(B + 13 * P, B + 64 * P)]


def test_first_fit_skips_short_holes():
    va = make()
    starts = [alloc(va, P) for _ in range(20)]
    for s in starts[::2]:                       # 10 one-page holes
        free(va, s)
    assert alloc(va, 2 * P) == B + 20 * P       # none of the holes holds two pages
    assert alloc(va, P) == B                    # the lowest hole


def test_free_merges_with_both_neighbours():
    va = make()
    a, b, c = alloc(va, P), alloc(va, 2 * P), alloc(va, 3 * P)
    free(va, a)
    free(va, c)                                 # merges with the tail
    assert list(va.free_ranges()) == [(B, B + P), (B + 3 * P, B + 64 * P)]
    assert free(va, b) == 2 * P                 # merges left and right
    assert list(va.free_ranges()) == [(B, B + 64 * P)]
    assert len(va) == 0


def test_free_merges_left_only_and_right_only():
    va = make()
    a, b, c, d = (alloc(va, P) for _ in range(4))
    free(va, a)
    free(va, b)                                 # left neighbour a is free, c is busy
    assert list(va.free_ranges()) == [(B, B + 2 * P), (B + 4 * P, B + 64 * P)]
    free(va, d)                                 # right neighbour is the tail
    assert list(va.free_ranges()) == [(B, B + 2 * P), (B + 3 * P, B + 64 * P)]
    free(va, c)
    assert list(va.free_ranges()) == [(B, B + 64 * P)]


def test_touching_busy_areas_stay_separate():
    va = make()
    a, b = alloc(va, P), alloc(va, P)
    assert list(va.busy()) == [(a, P), (b, P)]
    free(va, a)
    assert va.find(b) == (b, P)


def test_alignment():
    va = make()
    assert alloc(va, P) == B
    assert alloc(va, P, 16 * P) == B + 16 * P   # middle split of [B+P, end)
    assert list(va.free_ranges()) == [(B + P, B + 16 * P), (B + 17 * P, B + 64 * P)]
    assert alloc(va, P) == B + P                # the hole below the aligned area
    assert alloc(va, 4 * P, 8 * P) == B + 8 * P
    assert alloc(va, 2 * P, 32 * P) == B + 32 * P
    assert alloc(va, P, 2 * P) == B + 2 * P     # align 2 pages: B+2P is aligned
    assert alloc(va, P, 2 * P) == B + 4 * P     # B+3P is free but odd
    assert alloc(va, P, 1) == B + 3 * P
    # align 1 and align PAGE_SIZE mean the same: page granularity
    va2 = make()
    assert [alloc(va2, P, 1), alloc(va2, P, P)] == [B, B + P]


def test_alignment_short_aligned_hole_is_the_lowest_fit():
    # The kernel's quick test wants size + align - 1 bytes; a hole of exactly size
    # bytes at an aligned start fits too, and it is the lowest address that fits.
    va = make()
    areas = [alloc(va, 2 * P) for _ in range(12)]
    free(va, areas[8])                          # hole [B+16P, B+18P): 16-page aligned
    free(va, areas[3])                          # hole [B+6P, B+8P): not 16-page aligned
    assert alloc(va, 2 * P, 16 * P) == B + 16 * P
    assert alloc(va, 2 * P, 16 * P) == B + 32 * P   # the tail, from B+24P, aligned up


def test_alignment_larger_than_the_range():
    va = make()
    assert alloc(va, P, 1 << 40) == B           # B is 2**40-aligned
    assert alloc(va, P, 1 << 40) is None


def test_vstart_vend_limits():
    va = make()
    assert alloc(va, P, vstart=B + 10 * P) == B + 10 * P
    assert alloc(va, P, vstart=B + 10 * P) == B + 11 * P
    assert alloc(va, 2 * P, vstart=B + 4 * P, vend=B + 10 * P) == B + 4 * P
    assert alloc(va, 5 * P, vstart=B + 4 * P, vend=B + 10 * P) is None    # 4 pages left below 10
    assert alloc(va, 4 * P, vstart=B + 4 * P, vend=B + 10 * P) == B + 6 * P  # exact fit to vend
    assert alloc(va, P, vend=B + 4 * P) == B
    assert alloc(va, 3 * P, vend=B + 4 * P) == B + P
    assert alloc(va, P, vend=B + 4 * P) is None
    assert alloc(va, P, vstart=B + 2 * P, vend=B + 2 * P) is None         # empty window
    assert alloc(va, P, vstart=B + 60 * P, vend=B + 90 * P) == B + 60 * P  # vend past the end
    assert alloc(va, P, vstart=B - 8 * P, vend=B + 13 * P) == B + 12 * P   # vstart below start
    assert alloc(va, P, 8 * P, vstart=B + 13 * P) == B + 16 * P


def test_vstart_inside_a_free_range_with_alignment():
    va = make()
    assert alloc(va, 2 * P, 4 * P, vstart=B + 5 * P) == B + 8 * P
    assert list(va.free_ranges()) == [(B, B + 8 * P), (B + 10 * P, B + 64 * P)]
    assert alloc(va, 2 * P, 4 * P, vstart=B + P) == B + 4 * P
    assert alloc(va, 2 * P, 4 * P, vstart=B + P) == B + 12 * P


def test_full_range_returns_none():
    va = make()
    assert alloc(va, 65 * P) is None
    assert alloc(va, 64 * P) == B
    assert list(va.free_ranges()) == []
    assert alloc(va, P) is None
    assert len(va) == 1
    assert free(va, B) == 64 * P
    assert list(va.free_ranges()) == [(B, B + 64 * P)]


def test_fill_exactly_then_none():
    va = make(8)
    assert [alloc(va, P) for _ in range(8)] == [B + i * P for i in range(8)]
    assert alloc(va, P) is None
    free(va, B + 5 * P)
    assert alloc(va, 2 * P) is None
    assert alloc(va, P) == B + 5 * P


@pytest.mark.parametrize("size", [0, -P, 1, 100, P - 1, P + 1, 3 * P + 2048])
def test_size_not_page_aligned_or_not_positive(size):
    va = make()
    with pytest.raises(ValueError):
        va.alloc(size)
    va.check()
    assert len(va) == 0


@pytest.mark.parametrize("align", [0, -1, 3, P + 1, 3 * P])
def test_align_not_a_power_of_two(align):
    with pytest.raises(ValueError):
        make().alloc(P, align)


@pytest.mark.parametrize("kwargs", [{"vstart": B + 1}, {"vend": B + 64 * P - 1}])
def test_limits_not_page_aligned(kwargs):
    with pytest.raises(ValueError):
        make().alloc(P, **kwargs)


@pytest.mark.parametrize("args", [(B, B), (B + P, B), (B + 1, B + P), (B, B + P + 1), (-P, P)])
def test_bad_construction(args):
    with pytest.raises(ValueError):
        VmapAreas(*args)


def test_non_int_arguments():
    va = make()
    with pytest.raises(TypeError):
        va.alloc(4096.0)
    with pytest.raises(TypeError):
        va.alloc(True)
    assert va.find("x") is None
    with pytest.raises(KeyError):
        va.free(None)


def test_free_unknown_raises_keyerror():
    va = make()
    with pytest.raises(KeyError):
        va.free(B)                              # nothing busy
    a = alloc(va, 2 * P)
    with pytest.raises(KeyError):
        va.free(a + P)                          # interior, not a start
    with pytest.raises(KeyError):
        va.free(a + 1)
    with pytest.raises(KeyError):
        va.free(B + 10 * P)                     # free space
    assert free(va, a) == 2 * P
    with pytest.raises(KeyError):
        va.free(a)                              # double free
    va.check()


def test_find_interior_and_guard_addresses():
    va = make()
    # The vmalloc layer reserves size + one guard page, as get_vm_area does.
    a = alloc(va, 3 * P + P)
    b = alloc(va, P + P)
    assert va.find(a) == (a, 4 * P)
    assert va.find(a + 1) == (a, 4 * P)
    assert va.find(a + 2 * P + 123) == (a, 4 * P)
    assert va.find(a + 3 * P) == (a, 4 * P)             # the guard page
    assert va.find(a + 4 * P - 1) == (a, 4 * P)         # last byte of the guard
    assert va.find(a + 4 * P) == (b, 2 * P)             # first byte of the next area
    assert va.find(b + 2 * P) is None                   # free space
    assert va.find(B - 1) is None                       # below the range
    assert va.find(B + 64 * P) is None                  # past the range
    free(va, a)
    assert va.find(a + P) is None
    assert va.find(b + P) == (b, 2 * P)


# --- check() catches corruption -------------------------------------------------------

def test_check_names_a_wrong_subtree_max():
    va = make()
    for _ in range(8):
        alloc(va, P)
    free(va, B + 2 * P)
    va._free_root.max += P
    with pytest.raises(AssertionError, match="subtree max"):
        va.check()


def test_check_names_unmerged_free_neighbours():
    va = make()
    a = alloc(va, P)
    # Undo the busy entry behind the class's back: [B, B+P) is then in no tree.
    va._busy_root = None
    va._nr_busy = 0
    with pytest.raises(AssertionError, match="gap"):
        va.check()
    from pyalloc.machine.vmap_area import _Node, _insert
    va._free_root = _insert(va._free_root, _Node(a, a + P))
    with pytest.raises(AssertionError, match="not merged"):
        va.check()


def test_check_names_overlap_and_count():
    va = make()
    alloc(va, 2 * P)
    from pyalloc.machine.vmap_area import _Node, _insert
    va._busy_root = _insert(va._busy_root, _Node(B + P, B + 3 * P))
    with pytest.raises(AssertionError, match="busy count"):
        va.check()
    va._nr_busy += 1
    with pytest.raises(AssertionError, match="overlaps"):
        va.check()


# --- shape: deterministic and balanced ------------------------------------------------

def shape(node):
    if node is None:
        return None
    return (node.start, node.end, node.max, shape(node.left), shape(node.right))


def depth(node) -> int:
    return 0 if node is None else 1 + max(depth(node.left), depth(node.right))


def workload(va: VmapAreas, n: int) -> None:
    starts = [va.alloc(P * (1 + i % 3)) for i in range(n)]
    for s in starts[::2]:
        va.free(s)


def test_same_calls_build_the_same_trees():
    one, two = VmapAreas(B, B + (1 << 30)), VmapAreas(B, B + (1 << 30))
    workload(one, 3000)
    workload(two, 3000)
    assert shape(one._free_root) == shape(two._free_root)
    assert shape(one._busy_root) == shape(two._busy_root)


def test_trees_stay_shallow_under_sequential_addresses():
    va = VmapAreas(B, B + (1 << 32))
    n = 20000
    workload(va, n)
    va.check()
    nfree = sum(1 for _ in _inorder(va._free_root))
    assert len(va) == n // 2 and nfree == n // 2 + 1
    for root, count in ((va._free_root, nfree), (va._busy_root, len(va))):
        assert depth(root) <= 4 * math.log2(count) + 8


# --- property test against a linear reference -----------------------------------------

class Reference:
    """Trivially correct: a sorted list of busy (start, size), free ranges as the gaps."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.areas: list[tuple[int, int]] = []

    def free_ranges(self) -> list[tuple[int, int]]:
        out, at = [], self.start
        for s, size in self.areas:
            if s > at:
                out.append((at, s))
            at = s + size
        if at < self.end:
            out.append((at, self.end))
        return out

    def alloc(self, size, align=1, vstart=None, vend=None):
        vstart = self.start if vstart is None else vstart
        vend = self.end if vend is None else vend
        fits = []
        for s, e in self.free_ranges():
            a = max(s, vstart)
            a = -(-a // align) * align
            if a + size <= e and a + size <= vend:
                fits.append(a)
        if not fits:
            return None
        a = min(fits)
        self.areas.append((a, size))
        self.areas.sort()
        return a

    def free(self, start):
        for i, (s, size) in enumerate(self.areas):
            if s == start:
                del self.areas[i]
                return size
        raise KeyError(start)

    def find(self, addr):
        for s, size in self.areas:
            if s <= addr < s + size:
                return (s, size)
        return None


NPAGES = 48
ALIGNS = [1, P, 2 * P, 4 * P, 8 * P, 16 * P, 64 * P]
limit = st.one_of(st.none(), st.integers(-2, NPAGES + 2).map(lambda p: B + p * P))
op = st.one_of(
    st.tuples(st.just("alloc"), st.integers(1, 12), st.sampled_from(ALIGNS), limit, limit),
    st.tuples(st.just("alloc"), st.integers(1, 4), st.just(1), st.none(), st.none()),
    st.tuples(st.just("free"), st.integers(0, 63)),
    st.tuples(st.just("free_any"), st.integers(0, NPAGES * 2 - 1)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(op, max_size=80))
def test_matches_linear_reference(ops):
    va, ref = VmapAreas(B, B + NPAGES * P), Reference(B, B + NPAGES * P)
    for o in ops:
        if o[0] == "alloc":
            _, pages, align, vstart, vend = o
            assert va.alloc(pages * P, align, vstart, vend) == ref.alloc(pages * P, align, vstart, vend), o
        elif o[0] == "free":
            if ref.areas:
                start = ref.areas[o[1] % len(ref.areas)][0]
                assert va.free(start) == ref.free(start)
        else:                                   # any half-page address: mostly not a start
            addr = B + o[1] * (P // 2)
            try:
                want = ref.free(addr)
            except KeyError:
                with pytest.raises(KeyError):
                    va.free(addr)
            else:
                assert va.free(addr) == want
        va.check()
        assert list(va.busy()) == ref.areas
        assert list(va.free_ranges()) == ref.free_ranges()
        assert len(va) == len(ref.areas)
    for addr in range(B - P, B + (NPAGES + 1) * P, P // 2):
        assert va.find(addr) == ref.find(addr), hex(addr)
        assert va.find(addr + P // 2 - 1) == ref.find(addr + P // 2 - 1)
