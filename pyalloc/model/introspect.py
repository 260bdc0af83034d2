"""Read-only walks over the model's structures: the twin of csrc/introspect.c.

Nothing here changes the machine (not the clock, not a counter), so a view may
be read any number of times.  Slabs are listed in pfn order, as a walk over the
page array meets them, so both backends list them alike.
"""

from __future__ import annotations

from .arena import Arena
from .._abi import EINVAL, KIND_SLAB, PG_ALLOC
from .slab import valid_cache


def slab_pfns(a: Arena, cache: int) -> list[int] | int:
    """Head pfns of the slabs of one cache (all caches when cache < 0), in pfn order."""
    if cache >= 0 and not valid_cache(a, cache):
        return EINVAL
    return sorted(pfn for pfn, slab in a.slabs.items() if cache < 0 or slab.cache == cache)


def slab_view(a: Arena, pfn: int):
    """((cache, order, objects, inuse, frozen, on_partial, cpu), per-object states) or EINVAL."""
    if not 0 <= pfn < a.nr_pages:
        return EINVAL
    p = a.pages.get(pfn)
    slab = a.slabs.get(pfn)
    if p is None or slab is None or not p.flags & PG_ALLOC or p.kind != KIND_SLAB:
        return EINVAL
    cpu = -1
    if slab.frozen:
        for c, cs in enumerate(a.caches[slab.cache].cpu):
            if cs.slab == pfn:
                cpu = c
                break
    return ((slab.cache, slab.order, slab.objects, slab.inuse, int(slab.frozen), int(slab.on_partial), cpu),
            bytes(slab.state))



def pageblock_mt(a: Arena) -> bytes:
    """The migratetype of every pageblock, one byte each."""
    return bytes(a.pageblock_mt)
