"""The random parts of SLUB: the model's twin of csrc/slab_random.c.

CONFIG_SLAB_FREELIST_RANDOM (mm/slab_common.c cache_random_seq_create, mm/slub.c
init_cache_random_seq, shuffle_freelist, next_freelist_entry),
CONFIG_SLAB_FREELIST_HARDENED (mm/slub.c freelist_ptr_encode, kmem_cache_open's
``s->random = get_random_long()``) and CONFIG_RANDOM_KMALLOC_CACHES
(include/linux/slab.h kmalloc_type, mm/slab_common.c create_kmalloc_caches), each on when
its bit is in ``a.kconfig``.  The draws, in the order csrc/slab_random.c lists them, come
from the machine's stream (``_abi.prandom_next``); get_random_u32() is the low half of one
64-bit draw and get_random_u32_below() reduces it as drivers/char/random.c does.
"""

from __future__ import annotations

from .arena import NIL
from .._abi import (
    KCONFIG_RANDOM_KMALLOC_CACHES, KCONFIG_SLAB_FREELIST_HARDENED, KCONFIG_SLAB_FREELIST_RANDOM, NR_KMALLOC_TYPES,
    prandom_next,
)

MASK64 = (1 << 64) - 1
GOLDEN_RATIO_64 = 0x61C8864680B583EB


def get_random_u64(a) -> int:
    a.rand_state, x = prandom_next(a.rand_state)
    return x


def get_random_u32_below(a, ceil: int) -> int:
    """drivers/char/random.c __get_random_u32_below()."""
    mult = ceil * (get_random_u64(a) & 0xFFFFFFFF)
    if mult & 0xFFFFFFFF < ceil:
        bound = ((1 << 32) - ceil) % ceil
        while mult & 0xFFFFFFFF < bound:
            mult = ceil * (get_random_u64(a) & 0xFFFFFFFF)
    return mult >> 32


def swab64(x: int) -> int:
    return int.from_bytes(x.to_bytes(8, "little"), "big")


def freelist_ptr_encode(a, s, ptr: int, ptr_addr: int) -> int:
    """The free pointer *ptr* as stored at the virtual address *ptr_addr*."""
    if not a.kconfig & KCONFIG_SLAB_FREELIST_HARDENED:
        return ptr
    return ptr ^ s.random ^ swab64(ptr_addr)


def cache_random_seq_wanted(a, s) -> bool:
    return bool(a.kconfig & KCONFIG_SLAB_FREELIST_RANDOM) and s.objects >= 2


def init_cache_random(a, s) -> None:
    """kmem_cache_open()'s draws for a new cache: s.random, then the Fisher-Yates sequence."""
    s.random = get_random_u64(a) if a.kconfig & KCONFIG_SLAB_FREELIST_HARDENED else 0
    s.random_seq = None
    if not cache_random_seq_wanted(a, s):
        return
    seq = list(range(s.objects))
    for i in range(s.objects - 1, 0, -1):
        r = get_random_u32_below(a, i + 1)
        seq[i], seq[r] = seq[r], seq[i]
    s.random_seq = seq


def slab_random_seq_ok(seq, count: int) -> bool:
    return sorted(seq) == list(range(count))


def shuffle_freelist(a, s, slab, set_freepointer) -> bool:
    """Link a new slab's free objects in the cache's random order from a random start."""
    seq = s.random_seq
    if slab.objects < 2 or seq is None:
        return False
    freelist_count = s.objects
    pos = get_random_u32_below(a, freelist_count)
    limit = slab.objects
    order: list[int] = []
    while len(order) < limit:          # next_freelist_entry: skip what the slab does not hold
        idx = seq[pos]
        pos = pos + 1 if pos + 1 < freelist_count else 0
        if idx < limit:
            order.append(idx)
    slab.freelist = order[0]
    for cur, nxt in zip(order, order[1:]):
        set_freepointer(a, s, slab, cur, nxt)
    set_freepointer(a, s, slab, order[-1], NIL)
    return True


def random_kmalloc_type(a, caller: int) -> int:
    """hash_64(caller ^ random_kmalloc_seed, 4): 0 the plain cache, n the copy kmalloc-rnd-0n."""
    h = (((caller ^ a.random_kmalloc_seed) & MASK64) * GOLDEN_RATIO_64 & MASK64) >> 60
    return NR_KMALLOC_TYPES + h - 1 if h else 0


def random_kmalloc_init(a) -> int:
    if a.kconfig & KCONFIG_RANDOM_KMALLOC_CACHES:
        a.random_kmalloc_seed = get_random_u64(a)
    return 0


def cache_random(a, cid: int):
    """(s.random, the random sequence or ()) of a live cache, or None."""
    if not (0 <= cid < len(a.caches) and a.caches[cid] is not None):
        return None
    s = a.caches[cid]
    return s.random, tuple(s.random_seq or ())
