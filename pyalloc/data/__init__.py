"""Data pyalloc ships: slab_caches.json, the creation arguments of well-known 6.18 caches."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def slab_caches() -> dict:
    """name -> {size, align, flags (kernel SLAB_* names), sheaf_capacity, source, ...}."""
    text = resources.files(__package__).joinpath("slab_caches.json").read_text(encoding="utf-8")
    return json.loads(text)["caches"]


def slab_cache_args(name: str):
    """(size, align, pyalloc SLAB_* bits, sheaf_capacity) a 6.18 kernel creates cache *name*
    with, or None for a name the catalogue does not know."""
    from ..machine.slab import SLAB_NAMES
    entry = slab_caches().get(name)
    if entry is None:
        return None
    flags = 0
    for flag in entry["flags"]:
        flags |= int(SLAB_NAMES.get(flag, 0))     # flags pyalloc does not model are left out
    return entry["size"], entry["align"], flags & ~int(SLAB_NAMES["SLAB_PANIC"]), entry["sheaf_capacity"]
