"""Virtual-area bookkeeping for the vmalloc layer: busy and free ranges of one range.

mm/vmalloc.c keeps the kernel's vmalloc space as two sets of ``vmap_area``s
(mm/vmalloc.c, struct vmap_node and alloc_vmap_area()):

* the **free** ranges, in an rbtree sorted by address and *augmented*: every node
  holds ``subtree_max_size``, the longest free range in its subtree, so a
  first-fit search can skip a whole subtree that cannot hold the request;
* the **busy** ranges, in a second rbtree sorted by address, for ``find_vmap_area``
  (which area holds this address?) and for freeing.

This module keeps the same two trees, in pure Python, shared by both backends.
Each is a *treap*: a binary search tree by start address that is also a max-heap
on a per-node priority.  The priority is a fixed hash (splitmix64's finaliser) of
the node's start address when the node was made, never ``random``, so the same
sequence of calls always builds the same trees, and the expected depth is
O(log n) like a random treap's.  A node whose start later moves (a free range
clipped from the left, or grown to the left by a merge) keeps its priority: the
heap order does not depend on the key, and the move never changes the key order.

Invariants (``VmapAreas.check`` asserts each one):

1. Every range is non-empty and page-aligned, and lies inside ``[start, end)``.
2. Free and busy ranges, taken together in address order, tile ``[start, end)``
   with no gap and no overlap.
3. No two free ranges touch: freeing merges a range with its free neighbours
   (``merge_or_add_vmap_area``).  Busy ranges may touch.
4. Each tree is in key order and in heap order, and every node's ``max`` is the
   longest range in its subtree (``augment_tree_propagate_check``).
5. The busy count matches the busy tree.

**First fit** (``find_vmap_lowest_match``).  The answer is the *lowest* address
``a`` such that, for some free range ``[s, e)``, ``a = ALIGN(max(s, vstart), align)``
and ``a + size <= e`` and ``a + size <= vend``.  Because the free ranges are
disjoint and sorted, ``a`` grows with the range, so the answer comes from the first
free range, in address order, that fits; and ``vend`` never needs a further search:
if the first fit ends past ``vend``, every later one does too.  The search walks
the tree in address order, skipping every subtree whose ``max`` is below ``size``
and every range that ends at or below ``vstart``, and tests each range it reaches
exactly.

With ``align`` at most a page (what vmalloc passes), every range of length >=
``size`` that lies past ``vstart`` fits, so the walk visits one root-to-leaf path
for ``vstart`` and one for the answer: O(log n).  With a larger alignment the
kernel prunes with ``length = size + align - 1`` instead, a length that fits
whatever the range's start; that is quicker but can miss a shorter range whose
start happens to be aligned, and then the kernel's answer depends on its
rbtree's shape.  Here the answer is always the lowest address that fits, so the
walk prunes by ``size`` and tests the alignment at each range: a range whose
length lies in ``[size, size + align - 1)`` and fails once aligned costs one more
step of the walk.

**Clipping** the chosen free range ``[s, e)`` for ``[a, a + size)`` is the
kernel's ``adjust_va_to_fit_type``: FL_FIT_TYPE removes the node, LE_FIT_TYPE moves
its start up, RE_FIT_TYPE moves its end down, NE_FIT_TYPE moves its end down and
inserts a new node for the right-hand rest.

Sizes, addresses and alignments are bytes.  Every operation is O(log n) in the
number of ranges, expected.
"""

from __future__ import annotations

from typing import Iterator, Optional

from .._abi import PAGE_SHIFT, PAGE_SIZE

PAGE_MASK = PAGE_SIZE - 1

_MASK64 = (1 << 64) - 1


def _priority(key: int) -> int:
    """A fixed 64-bit hash of a start address (splitmix64's finaliser on the page number)."""
    z = ((key >> PAGE_SHIFT) + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


class _Node:
    """One range [start, end) in a treap; ``max`` is the longest range in its subtree."""

    __slots__ = ("start", "end", "prio", "left", "right", "max")

    def __init__(self, start: int, end: int) -> None:
        self.start = start                  # first byte, the search key
        self.end = end                      # one past the last byte
        self.prio = _priority(start)        # heap priority, fixed at creation
        self.left: Optional[_Node] = None   # ranges below start
        self.right: Optional[_Node] = None  # ranges at or above end
        self.max = end - start              # subtree_max_size


def _pull(t: _Node) -> None:
    """Recompute t.max from t and its children (compute_subtree_max_size)."""
    m = t.end - t.start
    left, right = t.left, t.right
    if left is not None and left.max > m:
        m = left.max
    if right is not None and right.max > m:
        m = right.max
    t.max = m


def _insert(t: Optional[_Node], node: _Node) -> _Node:
    if t is None:
        return node
    if node.start < t.start:
        t.left = _insert(t.left, node)
        if t.left.prio > t.prio:            # rotate right
            top = t.left
            t.left = top.right
            top.right = t
            _pull(t)
            _pull(top)
            return top
    else:
        t.right = _insert(t.right, node)
        if t.right.prio > t.prio:           # rotate left
            top = t.right
            t.right = top.left
            top.left = t
            _pull(t)
            _pull(top)
            return top
    _pull(t)
    return t


def _join(a: Optional[_Node], b: Optional[_Node]) -> Optional[_Node]:
    """Join two treaps, every key of a below every key of b."""
    if a is None:
        return b
    if b is None:
        return a
    if a.prio >= b.prio:
        a.right = _join(a.right, b)
        _pull(a)
        return a
    b.left = _join(a, b.left)
    _pull(b)
    return b


def _delete(t: Optional[_Node], key: int) -> Optional[_Node]:
    """Remove the node whose start is key (it must exist)."""
    if t is None:
        raise KeyError(key)
    if key < t.start:
        t.left = _delete(t.left, key)
    elif key > t.start:
        t.right = _delete(t.right, key)
    else:
        return _join(t.left, t.right)
    _pull(t)
    return t


def _repull(t: Optional[_Node], key: int) -> None:
    """Recompute max on the path to the node whose start is key (after it changed in place)."""
    path = []
    while t is not None:
        path.append(t)
        if key < t.start:
            t = t.left
        elif key > t.start:
            t = t.right
        else:
            break
    for n in reversed(path):
        _pull(n)


def _floor(t: Optional[_Node], key: int) -> Optional[_Node]:
    """The node with the greatest start <= key, or None."""
    best = None
    while t is not None:
        if key < t.start:
            t = t.left
        else:
            best = t
            if key == t.start:
                break
            t = t.right
    return best


def _lookup(t: Optional[_Node], key: int) -> Optional[_Node]:
    """The node whose start is exactly key, or None."""
    while t is not None:
        if key < t.start:
            t = t.left
        elif key > t.start:
            t = t.right
        else:
            return t
    return None


def _first_fit(t: Optional[_Node], size: int, align: int, vstart: int) -> Optional[_Node]:
    """The first free range in address order, ending past vstart, that holds size at align."""
    if t is None or t.max < size:
        return None
    if t.start > vstart:                    # the left subtree may still end past vstart
        found = _first_fit(t.left, size, align, vstart)
        if found is not None:
            return found
    if t.end > vstart:
        s = t.start if t.start > vstart else vstart
        s = (s + align - 1) & -align
        if s + size <= t.end:
            return t
    return _first_fit(t.right, size, align, vstart)


def _inorder(t: Optional[_Node]) -> Iterator[_Node]:
    stack: list[_Node] = []
    while stack or t is not None:
        while t is not None:
            stack.append(t)
            t = t.left
        t = stack.pop()
        yield t
        t = t.right


def _check_tree(root: Optional[_Node], what: str) -> list:
    """Key order, heap order and max of one treap; returns its nodes in address order."""
    nodes = []

    def walk(t: Optional[_Node], lo: Optional[int], hi: Optional[int]) -> None:
        # Recursion depth is the tree depth, O(log n) expected.
        if t is None:
            return
        if (lo is not None and t.start < lo) or (hi is not None and t.start >= hi):
            raise AssertionError(f"{what} tree: node {t.start:#x} out of key order")
        for child in (t.left, t.right):
            if child is not None and child.prio > t.prio:
                raise AssertionError(f"{what} tree: node {child.start:#x} breaks heap order "
                                     f"under {t.start:#x}")
        walk(t.left, lo, t.start)
        nodes.append(t)
        walk(t.right, t.start + 1, hi)
        want = t.end - t.start
        for child in (t.left, t.right):
            if child is not None and child.max > want:
                want = child.max
        if t.max != want:
            raise AssertionError(f"{what} tree: node {t.start:#x} has subtree max {t.max:#x}, "
                                 f"should be {want:#x}")

    walk(root, None, None)
    return nodes


def _check_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return value


class VmapAreas:
    """Busy and free ranges of one kernel virtual range, as mm/vmalloc.c keeps them."""

    def __init__(self, start: int, end: int) -> None:
        _check_int("start", start)
        _check_int("end", end)
        if start & PAGE_MASK or end & PAGE_MASK:
            raise ValueError(f"range [{start:#x}, {end:#x}) is not page-aligned")
        if not 0 <= start < end:
            raise ValueError(f"range [{start:#x}, {end:#x}) is empty or negative")
        self.start = start
        self.end = end
        self._free_root: Optional[_Node] = _Node(start, end)   # free_vmap_area_root
        self._busy_root: Optional[_Node] = None                 # vmap_area_root
        self._nr_busy = 0

    def __repr__(self) -> str:
        return f"<VmapAreas [{self.start:#x}, {self.end:#x}) busy={self._nr_busy}>"

    # --- allocation -----------------------------------------------------------

    def alloc(self, size: int, align: int = 1, vstart: Optional[int] = None,
              vend: Optional[int] = None) -> Optional[int]:
        """Reserve the lowest [a, a+size) that fits (see the module docstring); None if none does.

        size must be page-aligned and > 0, align a power of two, vstart and vend
        page-aligned (they default to the whole range), else ValueError.
        """
        _check_int("size", size)
        _check_int("align", align)
        if size <= 0 or size & PAGE_MASK:
            raise ValueError(f"size {size:#x} is not a positive multiple of the page size")
        if align <= 0 or align & (align - 1):
            raise ValueError(f"align {align:#x} is not a power of two")
        vstart = self.start if vstart is None else _check_int("vstart", vstart)
        vend = self.end if vend is None else _check_int("vend", vend)
        if vstart & PAGE_MASK or vend & PAGE_MASK:
            raise ValueError(f"limits [{vstart:#x}, {vend:#x}) are not page-aligned")
        if vstart + size > vend:
            return None

        node = _first_fit(self._free_root, size, align, vstart)
        if node is None:
            return None
        a = node.start if node.start > vstart else vstart
        a = (a + align - 1) & -align
        if a + size > vend:
            return None                     # every later range starts later still

        s, e, a_end = node.start, node.end, a + size
        if a == s:
            if a_end == e:                  # FL_FIT_TYPE: the whole range
                self._free_root = _delete(self._free_root, s)
            else:                           # LE_FIT_TYPE: keep the right part
                node.start = a_end
                _repull(self._free_root, a_end)
        else:
            node.end = a                    # RE_FIT_TYPE: keep the left part
            _repull(self._free_root, s)
            if a_end != e:                  # NE_FIT_TYPE: and a new right part
                self._free_root = _insert(self._free_root, _Node(a_end, e))

        self._busy_root = _insert(self._busy_root, _Node(a, a_end))
        self._nr_busy += 1
        return a

    def free(self, start: int) -> int:
        """Free the busy area starting at start, merging it with free neighbours; returns its size."""
        node = _lookup(self._busy_root, start) if isinstance(start, int) else None
        if node is None:
            raise KeyError(start)
        end = node.end
        self._busy_root = _delete(self._busy_root, start)
        self._nr_busy -= 1

        # merge_or_add_vmap_area: a free range ending at start, one beginning at end.
        prev = _floor(self._free_root, start)
        if prev is not None and prev.end != start:
            prev = None
        nxt = _lookup(self._free_root, end)
        if prev is not None:
            if nxt is not None:
                prev.end = nxt.end
                self._free_root = _delete(self._free_root, end)
            else:
                prev.end = end
            _repull(self._free_root, prev.start)
        elif nxt is not None:
            nxt.start = start               # still between the same neighbours
            _repull(self._free_root, start)
        else:
            self._free_root = _insert(self._free_root, _Node(start, end))
        return end - start

    # --- queries --------------------------------------------------------------

    def find(self, addr: int) -> Optional[tuple[int, int]]:
        """(start, size) of the busy area holding addr, or None (find_vmap_area)."""
        if isinstance(addr, bool) or not isinstance(addr, int):
            return None
        node = _floor(self._busy_root, addr)
        if node is None or addr >= node.end:
            return None
        return node.start, node.end - node.start

    def __len__(self) -> int:
        return self._nr_busy

    def busy(self) -> Iterator[tuple[int, int]]:
        """(start, size) of every busy area, ascending.  Do not alloc or free while iterating."""
        for n in _inorder(self._busy_root):
            yield n.start, n.end - n.start

    def free_ranges(self) -> Iterator[tuple[int, int]]:
        """(start, end) of every free range, ascending.  Do not alloc or free while iterating."""
        for n in _inorder(self._free_root):
            yield n.start, n.end

    # --- invariants -----------------------------------------------------------

    def check(self) -> None:
        """Assert every invariant of the module docstring; AssertionError names the first broken."""
        free = _check_tree(self._free_root, "free")
        busy = _check_tree(self._busy_root, "busy")
        if len(busy) != self._nr_busy:
            raise AssertionError(f"busy count {self._nr_busy} but the busy tree holds {len(busy)}")
        for kind, nodes in (("free", free), ("busy", busy)):
            for n in nodes:
                if n.start >= n.end:
                    raise AssertionError(f"{kind} range [{n.start:#x}, {n.end:#x}) is empty")
                if n.start & PAGE_MASK or n.end & PAGE_MASK:
                    raise AssertionError(f"{kind} range [{n.start:#x}, {n.end:#x}) "
                                         "is not page-aligned")
        ranges = sorted([(n.start, n.end, "free") for n in free] +
                        [(n.start, n.end, "busy") for n in busy])
        at, last = self.start, None
        for s, e, kind in ranges:
            if s > at:
                raise AssertionError(f"gap [{at:#x}, {s:#x}) is neither free nor busy")
            if s < at:
                if last is None:
                    raise AssertionError(f"{kind} range [{s:#x}, {e:#x}) starts before the "
                                         f"range start {self.start:#x}")
                raise AssertionError(f"{kind} range [{s:#x}, {e:#x}) overlaps the range "
                                     f"before it, which ends at {at:#x}")
            if kind == "free" and last == "free":
                raise AssertionError(f"free range [{s:#x}, {e:#x}) touches the free range "
                                     "before it: not merged")
            at, last = e, kind
        if at != self.end:
            raise AssertionError(f"ranges end at {at:#x}, not at the range end {self.end:#x}")
