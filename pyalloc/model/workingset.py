"""Shadow entries and refault distances (mm/workingset.c): the model's twin of csrc/workingset.c.

Read the essay at the top of csrc/workingset.c: the node's clock is
``a.ctr[CTR["nonresident_age"]]``; a file page's shadow lives in its mm entry
(ENT_DISK state), an anonymous page's in ``a.swap_shadow[slot]``; the per-page
LRU bits (PGX_YOUNG, PGX_WORKINGSET) in ``a.lru_ext[pfn]`` (absent = 0).
"""

from __future__ import annotations

from .._abi import CTR, EVICTION_BITS, PGX_WORKINGSET
from .arena import Arena

EVICTION_MASK = (1 << EVICTION_BITS) - 1
WORKINGSET_REFAULT_ACTIVATE = 1
WORKINGSET_REFAULT_RESTORE = 2

_AGE = CTR["nonresident_age"]


def bucket_order(a: Arena) -> int:
    totalram = sum(z.managed for z in a.zones)
    bits = (totalram - 1).bit_length() if totalram else 0
    return max(0, bits - EVICTION_BITS)


def workingset_age_nonresident(a: Arena, nr_pages: int) -> None:
    a.ctr[_AGE] += nr_pages


def pack_shadow(eviction: int, workingset: bool) -> int:
    return ((eviction & EVICTION_MASK) << 2) | (int(workingset) << 1) | 1


def shadow_valid(shadow: int) -> bool:
    return bool(shadow & 1) and not shadow >> (EVICTION_BITS + 2)


def workingset_eviction(a: Arena, pfn: int) -> int:
    eviction = a.ctr[_AGE] >> bucket_order(a)
    workingset_age_nonresident(a, 1)
    return pack_shadow(eviction, bool(a.lru_ext.get(pfn, 0) & PGX_WORKINGSET))


def workingset_test_recent(a: Arena, shadow: int, file: bool) -> bool:
    c = a.ctr
    order = bucket_order(a)
    eviction = (shadow >> 2) << order
    distance = (c[_AGE] - eviction) & EVICTION_MASK
    size = c[CTR["nr_active_file"]]
    if not file:
        size += c[CTR["nr_inactive_file"]]
    if c[CTR["nr_swap_free"]] > 0:
        size += c[CTR["nr_active_anon"]]
        if file:
            size += c[CTR["nr_inactive_anon"]]
    return distance <= size


def workingset_refault(a: Arena, shadow: int, file: bool) -> int:
    kind = "file" if file else "anon"
    a.ctr[CTR["workingset_refault_" + kind]] += 1
    if not workingset_test_recent(a, shadow, file):
        return 0
    workingset_age_nonresident(a, 1)
    a.ctr[CTR["workingset_activate_" + kind]] += 1
    if not shadow & 2:
        return WORKINGSET_REFAULT_ACTIVATE
    a.ctr[CTR["workingset_restore_" + kind]] += 1
    return WORKINGSET_REFAULT_ACTIVATE | WORKINGSET_REFAULT_RESTORE


def swap_shadow_set(a: Arena, slot: int, shadow: int) -> None:
    a.swap_shadow[slot] = shadow


def swap_shadow_take(a: Arena, slot: int) -> int:
    return a.swap_shadow.pop(slot, 0)
