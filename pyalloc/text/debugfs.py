"""/sys/kernel/debug: the fragmentation views of mm/vmstat.c (debugfs "extfrag").

Both files print, per populated zone, one value per order, computed from the
zone's free-block counts with the kernel's integer maths (×1000, shown as
``%d.%03d``), so the text matches a real kernel's to the digit:

* ``extfrag/unusable_index``: the share of free memory that sits in blocks too
  small for an allocation of the order (0 = all usable, 1 = none is).
* ``extfrag/extfrag_index``: for an order no free block can serve, whether the
  failure is for lack of memory (towards 0) or because memory is fragmented
  (towards 1); -1.000 where a block of the order is free (the request would
  succeed).

The definitions (mm/vmstat.c: fill_contig_page_info, unusable_free_index,
__fragmentation_index): F = free pages, B = free blocks, S = free blocks of at
least the order, counted in units of that order.
"""

from __future__ import annotations

from typing import Callable, Sequence

from .._abi import NR_PAGE_ORDERS


def contig_page_info(nr_free: Sequence[int], order: int) -> tuple[int, int, int]:
    """(free_pages, free_blocks_total, free_blocks_suitable) of one zone for an order
    (fill_contig_page_info); nr_free[k] is the number of free blocks of order k."""
    free_pages = blocks_total = suitable = 0
    for k, blocks in enumerate(nr_free):
        blocks_total += blocks
        free_pages += blocks << k
        if k >= order:
            suitable += blocks << (k - order)
    return free_pages, blocks_total, suitable


def unusable_free_index(nr_free: Sequence[int], order: int) -> int:
    """unusable_free_index() ×1000: 1000 when nothing is free."""
    free_pages, _, suitable = contig_page_info(nr_free, order)
    if free_pages == 0:
        return 1000
    return (free_pages - (suitable << order)) * 1000 // free_pages


def fragmentation_index(nr_free: Sequence[int], order: int) -> int:
    """__fragmentation_index() ×1000: 0 with no free block, -1000 when a block of the order is free."""
    free_pages, blocks_total, suitable = contig_page_info(nr_free, order)
    if blocks_total == 0:
        return 0
    if suitable:
        return -1000
    return 1000 - (1000 + free_pages * 1000 // (1 << order)) // blocks_total


def _c_div(value: int) -> tuple[int, int]:
    """value / 1000 and value % 1000 with C's truncation toward zero (-1000 -> -1, 0)."""
    q = abs(value) // 1000
    r = abs(value) % 1000
    return (-q, -r) if value < 0 else (q, r)


def _zone_nr_free(zone: dict) -> list[int]:
    return [sum(per_type) for per_type in zone["free_area"]]


def _render(snap: dict, index: Callable[[Sequence[int], int], int], fmt: str) -> str:
    out = []
    for zone in snap["zones"]:
        if zone["present"] <= 0:                # populated_zone()
            continue
        nr_free = _zone_nr_free(zone)
        values = "".join(fmt % _c_div(index(nr_free, order)) for order in range(NR_PAGE_ORDERS))
        out.append("Node 0, zone %8s %s\n" % (zone["name"], values))
    return "".join(out)


def render_unusable_index(snap: dict) -> str:
    """extfrag/unusable_index: "Node %d, zone %8s " then "%d.%03d " per order."""
    return _render(snap, unusable_free_index, "%d.%03d ")


def render_extfrag_index(snap: dict) -> str:
    """extfrag/extfrag_index: "Node %d, zone %8s " then "%2d.%03d " per order."""
    return _render(snap, fragmentation_index, "%2d.%03d ")


RENDERERS: dict[str, Callable[[dict], str]] = {
    "extfrag/unusable_index": render_unusable_index,
    "extfrag/extfrag_index": render_extfrag_index,
}


def render(name: str, snap: dict) -> str:
    """The text of /sys/kernel/debug/<name> for this snapshot."""
    try:
        renderer = RENDERERS[name]
    except (KeyError, TypeError):
        from ..errors import InvalidArgument
        raise InvalidArgument(
            f"unknown debugfs file {name!r}; known: {', '.join(sorted(RENDERERS))}") from None
    return renderer(snap)
