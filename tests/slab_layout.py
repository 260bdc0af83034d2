"""Where SLUB puts the objects of a fresh slab, for tests that name exact addresses.

mm/slub.c shuffle_freelist() links a new slab's objects in the cache's random sequence
(``Cache.random_seq``) from a random start, so the first object handed out fixes the rest;
without a sequence (SLAB_FREELIST_RANDOM off, or one object per slab) they run in address order.
"""

from pyalloc import PAGE_OFFSET, PAGE_SIZE


def kmalloc_cache(m, name: str):
    """The Cache of a kmalloc cache by its slabinfo name."""
    return next(c for c in m._caches.values() if c.name == name)


def fresh_slab(m, cache, first: int) -> list[int]:
    """Every object of the fresh slab whose first object handed out is *first*, in the order its
    freelist hands them out."""
    info = m._core.cache_info(cache._id)
    span = PAGE_SIZE << info["order"]
    base = first - (first - PAGE_OFFSET) % span
    slot = (first - base - info["red_left_pad"]) // info["size"]
    seq = list(cache.random_seq) or list(range(info["objects"]))
    i = seq.index(slot)
    return [base + info["red_left_pad"] + k * info["size"] for k in seq[i:] + seq[:i]]


def slab_offset(m, cache, obj: int) -> int:
    """@offset= of obj in the slab reports: its distance from the slab's start."""
    return (obj - PAGE_OFFSET) % (PAGE_SIZE << m._core.cache_info(cache._id)["order"])
