"""SLUB: kmem_cache, slabs, per-cpu slabs, partial lists, kmalloc, slub_debug.

The model's twin of csrc/slab.c, function for function, following mm/slub.c:

* A cache has a per-cpu active slab (``cpu[c].slab`` with its lockless
  freelist ``cpu[c].freelist``) and a node partial list.  Allocation pops the
  cpu freelist (fast path); when it is empty ``slab_alloc_slow`` takes the
  slab's remote frees, else the first slab of the cpu partial list
  (CONFIG_SLUB_CPU_PARTIAL), else the first of the node partial list
  (get_partial_node(), which also moves up to cpu_partial_slabs / 2 + 1 more
  to the cpu partial list), else a new slab from the buddy allocator (cache
  order with __GFP_NOWARN|__GFP_NORETRY first, then the minimum order).
* Freeing to this cpu's active slab pushes onto the cpu freelist; any other
  free (a remote one too) goes to the slab's own freelist.  A slab that was
  full goes to this cpu's partial list (put_cpu_partial(); a chain already
  cpu_partial_slabs long moves to the node list first, __put_partials()),
  or without cpu partial lists to the node partial tail; one that becomes
  empty while the node already holds min_partial partial slabs goes back to
  the buddy allocator.  Cpu partial slabs are not frozen (6.8+).
* Caches with sheaves put sheaf.py in front of all this.
* A new slab's freelist is in address order, or in the cache's random order
  under SLAB_FREELIST_RANDOM (slab_random.py); frees push at the head, so the
  last object freed is the next one handed out.
* Debug caches (any of POISON, RED_ZONE, STORE_USER, CONSISTENCY_CHECKS) take
  the kernel's debug path: no cpu slab, one object at a time from the first
  partial slab or a new slab, checks on alloc and free (with F), poison and
  red zones written as init_object() does.

Where pyalloc departs from the kernel, on purpose:
* The freelist chain is kept beside the slab (``Slab.next``), not read back
  from the simulated bytes: the free pointer is still *written* into each
  free object at ``s.offset`` (so the bytes look as in the kernel), but a
  program scribbling on freed memory cannot derail the allocator.  slub_debug
  compares the stored pointer with the real chain ("Freepointer corrupt").
* Double frees and frees of anything that is not a live object's start are
  always caught (a per-slot state), also without slub_debug.
* When a debug check fails on allocation, the damaged bytes are restored
  (the kernel's "FIX ... Restoring") and the call fails with SlabCorruption;
  the kernel would instead mark the whole slab used and go on.
"""

from __future__ import annotations

from . import buddy, reclaim, sheaf
from .slab_random import freelist_ptr_encode, init_cache_random, random_kmalloc_type, shuffle_freelist
from .arena import INT64_MAX, INT64_MIN, NIL, Arena, c_ints
from .._abi import (
    E2BIG, EBUSY, ECORRUPT, EDOUBLEFREE, EINVAL, EINVALFREE, ENOMEM, GFP_COMP, GFP_DIRECT_RECLAIM,
    GFP_KSWAPD_RECLAIM, GFP_NOFAIL, GFP_NOMEMALLOC, GFP_ZERO, KIND_LARGE_KMALLOC, KIND_SLAB,
    KCONFIG_RANDOM_KMALLOC_CACHES, KCONFIG_SLUB_CPU_PARTIAL, KMALLOC_MAX_CACHE_SIZE, MAX_CACHES, MAX_PAGE_ORDER,
    MAX_SLAB_EVENTS, NR_KMALLOC_TABLE, NR_KMALLOC_TYPES, OBJ_FREED, OBJ_SHEAF, SHEAF_CAPACITY_MAX,
    OBJ_LIVE, OBJ_NEVER, OBJ_PINNED, OBJECT_POISON, OK, PAGE_SHIFT, PAGE_SIZE, PG_ALLOC, PG_FREED, POISON_END, POISON_FREE,
    POISON_INUSE, SLAB_ACCOUNT, SLAB_CACHE_DMA, SLAB_CACHE_DMA32, SLAB_CONSISTENCY_CHECKS,
    SLAB_DEBUG_FLAGS, SLAB_ERR_ALIGN_PADDING, SLAB_ERR_ALREADY_FREE, SLAB_ERR_END_POISON,
    SLAB_ERR_FREEPOINTER, SLAB_ERR_INVALID_POINTER, SLAB_ERR_KMALLOC_REDZONE, SLAB_ERR_LEFT_REDZONE,
    SLAB_ERR_NEVER_ALLOCATED, SLAB_ERR_NOT_SLAB, SLAB_ERR_PINNED, SLAB_ERR_OBJECT_PADDING, SLAB_ERR_OBJECTS_REMAINING,
    SLAB_ERR_POISON, SLAB_ERR_RIGHT_REDZONE, SLAB_ERR_SLAB_PADDING, SLAB_ERR_WRONG_CACHE,
    SLAB_HWCACHE_ALIGN, SLAB_KMALLOC, SLAB_MERGE_SAME, SLAB_NEVER_MERGE, SLAB_POISON,
    SLAB_RECLAIM_ACCOUNT, SLAB_RED_ZONE, SLAB_STORE_USER, SLUB_RED_ACTIVE, SLUB_RED_INACTIVE,
    TRACK_SIZE, ZERO_SIZE_STATUS, PAGE_OFFSET,
)

GFP_RECLAIM_MASK = 0xc00 | 0x20 | 0x40 | 0x80 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000 | 0x80000
GFP_CONSTRAINT_MASK = 0x100000 | 0x200000
GFP_SLAB_BUG_MASK = 0x4 | 0x2 | (0xffffffff & ~0x1ffffff)     # DMA32 | HIGHMEM | ~__GFP_BITS_MASK
GFP_DMA, GFP_DMA32, GFP_RECLAIMABLE, GFP_ACCOUNT = 0x1, 0x4, 0x10, 0x400000
GFP_NOWARN, GFP_NORETRY = 0x2000, 0x10000
MAX_OBJS_PER_PAGE = 32767
MIN_PARTIAL, MAX_PARTIAL = 5, 10
SLUB_MAX_ORDER = 3
CACHE_LINE_SIZE = 64

# kmalloc_size_index[] for sizes 1..192, by (size - 1) // 8
SIZE_INDEX = (3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2)
KMALLOC_SIZES = {1: 96, 2: 192, **{i: 1 << i for i in range(3, 14)}}


def fls(x: int) -> int:
    return x.bit_length()


def get_order(size: int) -> int:
    return max(0, (size - 1) >> PAGE_SHIFT).bit_length()


def kmalloc_index(size: int) -> int:
    if size <= 192:
        return SIZE_INDEX[(size - 1) // 8]
    return fls(size - 1)


def kmalloc_type(a: Arena, gfp: int, caller: int) -> int:
    """0 normal, 1 reclaim, 2 dma, 3 cgroup: DMA beats RECLAIMABLE beats ACCOUNT; a normal request
    goes to a kmalloc-rnd-NN copy by its caller under RANDOM_KMALLOC_CACHES."""
    if not gfp & (GFP_DMA | GFP_RECLAIMABLE | GFP_ACCOUNT):
        return random_kmalloc_type(a, caller) if a.kconfig & KCONFIG_RANDOM_KMALLOC_CACHES else 0
    if gfp & GFP_DMA:
        return 2
    if gfp & GFP_RECLAIMABLE:
        return 1
    return 3


class CpuSlab:
    __slots__ = ("slab", "freelist", "partial")

    def __init__(self) -> None:
        self.slab = NIL         # head pfn of the active slab
        self.freelist = NIL     # first free slot of the lockless freelist
        self.partial: list[int] = []    # the cpu partial chain, head pfn first (slub_percpu_partial)


class Slab:
    __slots__ = ("pfn", "cache", "order", "objects", "inuse", "freelist", "frozen",
                 "on_partial", "next", "state", "slabs")

    def __init__(self, pfn: int, cache: int, order: int, objects: int) -> None:
        self.pfn = pfn
        self.cache = cache
        self.order = order
        self.objects = objects
        self.inuse = 0
        self.freelist = NIL            # first free slot of the slab's own freelist
        self.frozen = False            # some cpu's active slab
        self.on_partial = False
        self.next = [NIL] * objects    # the freelist chain, beside the slab
        self.state = bytearray(objects)  # OBJ_NEVER / OBJ_LIVE / OBJ_FREED per slot
        self.slabs = 0                 # on a cpu partial chain: its length from here (slab->slabs)


class Cache:
    __slots__ = ("id", "flags", "object_size", "size", "align", "inuse", "offset", "red_left_pad",
                 "order", "objects", "min_order", "min_objects", "min_partial", "refcount",
                 "allocflags", "partial", "nr_slabs", "total_objects", "cpu", "alive", "live", "random",
                 "random_seq", "cpu_partial", "cpu_partial_slabs", "sheaf_capacity", "pcs", "barn_full",
                 "barn_empty")
    # the fields of struct pa_cache (csrc/internal.h), set by kmem_cache_create()
    id: int
    flags: int
    object_size: int
    size: int
    align: int
    inuse: int
    offset: int
    red_left_pad: int
    order: int
    objects: int
    min_order: int
    min_objects: int
    min_partial: int
    refcount: int
    allocflags: int
    partial: list[int]                  # head pfns of the partial slabs
    nr_slabs: int
    total_objects: int
    cpu: list[CpuSlab]
    alive: bool
    live: int
    random: int                         # SLAB_FREELIST_HARDENED: s->random (slab_random.py)
    random_seq: list[int] | None        # SLAB_FREELIST_RANDOM: a permutation of range(objects)
    cpu_partial: int                    # set_cpu_partial(): objects a cpu partial list keeps
    cpu_partial_slabs: int              # slub_set_cpu_partial(): the same in slabs
    sheaf_capacity: int                 # 0: no sheaves (sheaf.py)
    pcs: list | None                    # per cpu [main, spare]: sheaves are lists of objects, spare may be None
    barn_full: list                     # full sheaves, the list head first
    barn_empty: int                     # empty sheaves (all alike)


# -- creation ----------------------------------------------------------------------

def calculate_alignment(flags: int, align: int, size: int) -> int:
    if flags & SLAB_HWCACHE_ALIGN:
        ralign = CACHE_LINE_SIZE
        while size <= ralign // 2:
            ralign //= 2
        align = max(align, ralign)
    align = max(align, 8)
    return (align + 7) & ~7


def order_objects(order: int, size: int) -> int:
    return (PAGE_SIZE << order) // size


def calc_slab_order(size: int, min_order: int, max_order: int, fract_leftover: int) -> int:
    order = min_order
    while order <= max_order:
        slab_size = PAGE_SIZE << order
        if slab_size % size <= slab_size // fract_leftover:
            break
        order += 1
    return order


def calculate_order(size: int, cpus: int) -> int:
    nr_cpus = cpus
    min_objects = 4 * (fls(nr_cpus) + 1)
    max_objects = max(order_objects(SLUB_MAX_ORDER, size), 1)
    min_objects = min(min_objects, max_objects)
    min_order = get_order(min_objects * size)
    if order_objects(min_order, size) > MAX_OBJS_PER_PAGE:
        return get_order(size * MAX_OBJS_PER_PAGE) - 1
    fraction = 16
    while fraction > 1:
        order = calc_slab_order(size, min_order, SLUB_MAX_ORDER, fraction)
        if order <= SLUB_MAX_ORDER:
            return order
        fraction //= 2
    return get_order(size)


def debug_orig_size(s: Cache) -> bool:
    return bool(s.flags & SLAB_STORE_USER and s.flags & SLAB_KMALLOC)


def calculate_sizes(s: Cache, cpus: int) -> None:
    flags = s.flags
    size = (s.object_size + 7) & ~7
    if flags & SLAB_POISON:
        s.flags |= OBJECT_POISON
    if flags & SLAB_RED_ZONE and size == s.object_size:
        size += 8
    s.inuse = size
    if flags & SLAB_POISON or (flags & SLAB_RED_ZONE and (s.object_size < 8 or debug_orig_size(s))):
        s.offset = size         # free pointer after the object
        size += 8
    else:
        s.offset = (s.object_size // 2) & ~7
    if flags & SLAB_STORE_USER:
        size += 2 * TRACK_SIZE
        if flags & SLAB_KMALLOC:
            size += 4
    s.red_left_pad = 0
    if flags & SLAB_RED_ZONE:
        size += 8
        s.red_left_pad = (8 + s.align - 1) & ~(s.align - 1)
        size += s.red_left_pad
    size = (size + s.align - 1) & ~(s.align - 1)
    s.size = size
    s.order = calculate_order(size, cpus)
    s.objects = order_objects(s.order, size)
    s.min_order = get_order(size)
    s.min_objects = order_objects(s.min_order, size)
    s.allocflags = GFP_COMP
    if flags & SLAB_CACHE_DMA:
        s.allocflags |= GFP_DMA
    if flags & SLAB_CACHE_DMA32:
        s.allocflags |= GFP_DMA32
    if flags & SLAB_RECLAIM_ACCOUNT:
        s.allocflags |= GFP_RECLAIMABLE
    s.min_partial = max(MIN_PARTIAL, min(MAX_PARTIAL, (size.bit_length() - 1) // 2))


def find_mergeable(a: Arena, size: int, align: int, flags: int) -> int:
    if not a.slab_merge or flags & SLAB_NEVER_MERGE:
        return -1
    size = (size + 7) & ~7
    align = calculate_alignment(flags, align, size)
    size = (size + align - 1) & ~(align - 1)
    for cid in a.cache_order:       # oldest first, as list_for_each_entry_reverse walks
        s = a.caches[cid]
        # kmalloc caches carry a usercopy region (HARDENED_USERCOPY): never a target
        if s.flags & (SLAB_NEVER_MERGE | SLAB_KMALLOC) or size > s.size or s.pcs is not None:
            continue
        if flags & SLAB_MERGE_SAME != s.flags & SLAB_MERGE_SAME:
            continue
        if s.size & ~(align - 1) != s.size or s.size - size >= 8:
            continue
        return cid
    return -1


def set_cpu_partial(a: Arena, s: Cache) -> None:
    """set_cpu_partial(), slub_set_cpu_partial(): how much a cpu partial list keeps."""
    s.cpu_partial = s.cpu_partial_slabs = 0
    if not a.kconfig & KCONFIG_SLUB_CPU_PARTIAL:
        return
    nr_objects = 0
    if not is_debug(s):         # kmem_cache_has_cpu_partial()
        nr_objects = 6 if s.size >= PAGE_SIZE else 24 if s.size >= 1024 else 52 if s.size >= 256 else 120
    s.cpu_partial = nr_objects
    # the limit in slabs assumes them half full
    s.cpu_partial_slabs = (nr_objects * 2 + s.objects - 1) // s.objects


def kmem_cache_create(a: Arena, size: int, align: int, flags: int, sheaf_capacity: int = 0) -> int:
    """A new cache id (or an existing one it merged into), or EINVAL."""
    if not 1 <= size <= 4 << 20 or align < 0 or align > 4 << 20 or align & (align - 1):
        return EINVAL
    if not 0 <= sheaf_capacity <= SHEAF_CAPACITY_MAX:
        return EINVAL
    if flags & ~0x3fff or flags & (SLAB_CACHE_DMA | SLAB_CACHE_DMA32) == SLAB_CACHE_DMA | SLAB_CACHE_DMA32:
        return EINVAL
    if len(a.caches) >= MAX_CACHES and None not in a.caches:
        return ENOMEM
    a.ticks += 1
    # a cache with sheaves is never an alias (__kmem_cache_create_args)
    cid = -1 if sheaf_capacity else find_mergeable(a, size, align, flags)
    if cid >= 0:
        s = a.caches[cid]
        s.refcount += 1
        s.object_size = max(s.object_size, size)
        s.inuse = max(s.inuse, (size + 7) & ~7)
        return cid
    s = Cache()
    s.flags = flags
    s.object_size = size
    s.align = calculate_alignment(flags, align if align else 8, size)
    calculate_sizes(s, a.cpus)
    if s.min_order > MAX_PAGE_ORDER:
        return EINVAL           # calculate_sizes() fails: no slab order can hold one object
    s.refcount = 1
    s.live = 0
    s.partial = []
    s.nr_slabs = s.total_objects = 0
    s.cpu = [CpuSlab() for _ in range(a.cpus)]
    s.alive = True
    s.sheaf_capacity, s.pcs, s.barn_full, s.barn_empty = 0, None, [], 0
    if sheaf_capacity and not is_debug(s):      # do_kmem_cache_create: no sheaves for a debug cache
        sheaf.pcs_init(a, s, sheaf_capacity)
    set_cpu_partial(a, s)
    if None in a.caches:
        cid = a.caches.index(None)
        a.caches[cid] = s
    else:
        cid = len(a.caches)
        a.caches.append(s)
    s.id = cid
    a.cache_order.append(cid)
    init_cache_random(a, s)
    return cid


def kmalloc_register(a: Arena, ktype: int, index: int, cid: int) -> int:
    if not (0 <= ktype < NR_KMALLOC_TABLE and 1 <= index <= 13 and valid_cache(a, cid)):
        return EINVAL
    a.kmalloc_caches[ktype][index] = cid
    return OK


def valid_cache(a: Arena, cid: int) -> bool:
    return 0 <= cid < len(a.caches) and a.caches[cid] is not None


# -- object helpers ---------------------------------------------------------------------

def slab_base(slab: Slab) -> int:
    return slab.pfn << PAGE_SHIFT


def obj_phys(s: Cache, slab: Slab, slot: int) -> int:
    return (slab.pfn << PAGE_SHIFT) + slot * s.size + s.red_left_pad


def virt(phys: int) -> int:
    return PAGE_OFFSET + phys


def set_freepointer(a: Arena, s: Cache, slab: Slab, slot: int, nxt: int) -> None:
    """Link slot -> nxt in the chain, and write the pointer where SLUB keeps it."""
    ptr_addr = obj_phys(s, slab, slot) + s.offset
    slab.next[slot] = nxt
    value = freelist_ptr_encode(a, s, 0 if nxt == NIL else virt(obj_phys(s, slab, nxt)), virt(ptr_addr))
    a.write(ptr_addr, value.to_bytes(8, "little"))


def get_info_end(s: Cache) -> int:
    return s.offset + 8 if s.offset >= s.inuse else s.inuse


def event(a: Arena, reason: int, s: Cache | None, slab: Slab | None, obj: int,
          start: int = 0, end: int = 0, expected: int = 0, found: int = 0) -> None:
    if len(a.slab_events) < MAX_SLAB_EVENTS:
        a.slab_events.append((reason, s.id if s is not None else -1,
                              slab_base(slab) if slab is not None else -1, obj, start, end, expected, found))


def check_bytes_and_report(a: Arena, s: Cache, slab: Slab, obj: int, reason: int,
                           start: int, value: int, n: int) -> bool:
    if n <= 0:
        return True
    data = a.read(start, n)
    i = 0
    while i < n and data[i] == value:
        i += 1
    if i == n:
        return True
    end = n
    while end > i and data[end - 1] == value:
        end -= 1
    event(a, reason, s, slab, obj, start + i, start + end, value, data[i])
    a.memset(start + i, value, end - i)       # FIX: restoring
    return False


def init_object(a: Arena, s: Cache, obj: int, val: int, orig_size: int) -> None:
    poison_size = s.object_size
    if s.flags & SLAB_RED_ZONE:
        a.memset(obj - s.red_left_pad, val, s.red_left_pad)
        if debug_orig_size(s) and val == SLUB_RED_ACTIVE:
            poison_size = orig_size
    if s.flags & OBJECT_POISON:
        a.memset(obj, POISON_FREE, poison_size - 1)
        a.memset(obj + poison_size - 1, POISON_END, 1)
    if s.flags & SLAB_RED_ZONE:
        a.memset(obj + poison_size, val, s.inuse - poison_size)


def orig_size_at(a: Arena, s: Cache, obj: int) -> int:
    if not debug_orig_size(s):
        return s.object_size
    return int.from_bytes(a.read(obj + get_info_end(s) + 2 * TRACK_SIZE, 4), "little")


def set_orig_size(a: Arena, s: Cache, obj: int, orig_size: int) -> None:
    if debug_orig_size(s):
        a.write(obj + get_info_end(s) + 2 * TRACK_SIZE, orig_size.to_bytes(4, "little"))


def set_track(a: Arena, s: Cache, obj: int, which: int, caller: int) -> None:
    if not s.flags & SLAB_STORE_USER:
        return
    # struct track {addr, handle, cpu, pid, when}: the caller is an id the shared layer interns
    rec = (caller.to_bytes(8, "little") + bytes(4) + a.cpu.to_bytes(4, "little") + (1).to_bytes(4, "little")
           + bytes(4) + a.ticks.to_bytes(8, "little"))
    a.write(obj + get_info_end(s) + which * TRACK_SIZE, rec)


def check_pad_bytes(a: Arena, s: Cache, slab: Slab, obj: int) -> bool:
    off = get_info_end(s)
    if s.flags & SLAB_STORE_USER:
        off += 2 * TRACK_SIZE + (4 if s.flags & SLAB_KMALLOC else 0)
    size_from_object = s.size - s.red_left_pad
    if size_from_object == off:
        return True
    return check_bytes_and_report(a, s, slab, obj, SLAB_ERR_OBJECT_PADDING, obj + off, POISON_INUSE,
                                  size_from_object - off)


def check_object(a: Arena, s: Cache, slab: Slab, slot: int, val: int) -> bool:
    obj = obj_phys(s, slab, slot)
    ok = True
    if s.flags & SLAB_RED_ZONE:
        ok &= check_bytes_and_report(a, s, slab, obj, SLAB_ERR_LEFT_REDZONE, obj - s.red_left_pad, val,
                                     s.red_left_pad)
        ok &= check_bytes_and_report(a, s, slab, obj, SLAB_ERR_RIGHT_REDZONE, obj + s.object_size, val,
                                     s.inuse - s.object_size)
        if debug_orig_size(s) and val == SLUB_RED_ACTIVE:
            orig = orig_size_at(a, s, obj)
            if s.object_size > orig:
                ok &= check_bytes_and_report(a, s, slab, obj, SLAB_ERR_KMALLOC_REDZONE, obj + orig, val,
                                             s.object_size - orig)
    elif s.flags & SLAB_POISON and s.object_size < s.inuse:
        ok &= check_bytes_and_report(a, s, slab, obj, SLAB_ERR_ALIGN_PADDING, obj + s.object_size,
                                     POISON_INUSE, s.inuse - s.object_size)
    if s.flags & SLAB_POISON:
        if val != SLUB_RED_ACTIVE and s.flags & OBJECT_POISON:
            ok &= check_bytes_and_report(a, s, slab, obj, SLAB_ERR_POISON, obj, POISON_FREE, s.object_size - 1)
            ok &= check_bytes_and_report(a, s, slab, obj, SLAB_ERR_END_POISON, obj + s.object_size - 1,
                                         POISON_END, 1)
        ok &= check_pad_bytes(a, s, slab, obj)
    if s.offset >= s.inuse or val != SLUB_RED_ACTIVE:
        # the stored free pointer must be the chain's: a free object holds its
        # successor, a live one what it held when handed out (not checked then)
        if not slab.state[slot] & OBJ_LIVE:
            nxt = slab.next[slot]
            want = freelist_ptr_encode(a, s, 0 if nxt == NIL else virt(obj_phys(s, slab, nxt)),
                                       virt(obj + s.offset))
            stored = int.from_bytes(a.read(obj + s.offset, 8), "little")
            if stored != want:
                event(a, SLAB_ERR_FREEPOINTER, s, slab, obj, obj + s.offset, obj + s.offset + 8, 0, 0)
                a.write(obj + s.offset, want.to_bytes(8, "little"))
                ok = False
    return bool(ok)


def is_debug(s: Cache) -> bool:
    return bool(s.flags & SLAB_DEBUG_FLAGS)


# -- slabs from and to the buddy allocator ---------------------------------------------------

def account_slab(a: Arena, s: Cache, order: int, sign: int) -> None:
    pages = sign << order
    if s.flags & SLAB_RECLAIM_ACCOUNT:
        a.nr_slab_reclaimable += pages
    else:
        a.nr_slab_unreclaimable += pages


def allocate_slab(a: Arena, s: Cache, gfp: int):
    flags = (gfp & (GFP_RECLAIM_MASK | GFP_CONSTRAINT_MASK)) | s.allocflags
    order, objects = s.order, s.objects
    first = (flags | GFP_NOWARN | GFP_NORETRY) & ~GFP_NOFAIL
    if first & GFP_DIRECT_RECLAIM and s.order > s.min_order:
        first = (first | GFP_NOMEMALLOC) & ~(GFP_DIRECT_RECLAIM | GFP_KSWAPD_RECLAIM)
    pfn = buddy.alloc(a, first, order)
    if pfn < 0:
        order, objects = s.min_order, s.min_objects
        a.slab_fallback_gfp = flags
        pfn = buddy.alloc(a, flags, order)
        if pfn < 0:
            return None
    page = a.pages[pfn]
    page.kind = KIND_SLAB
    slab = Slab(pfn, s.id, order, objects)
    a.slabs[pfn] = slab
    if s.flags & SLAB_POISON:
        a.memset(pfn << PAGE_SHIFT, POISON_INUSE, PAGE_SIZE << order)
    for slot in range(objects):
        obj = obj_phys(s, slab, slot)
        if s.flags & (SLAB_STORE_USER | SLAB_RED_ZONE | OBJECT_POISON):
            init_object(a, s, obj, SLUB_RED_INACTIVE, s.object_size)
            if s.flags & SLAB_STORE_USER:
                a.write(obj + get_info_end(s), bytes(2 * TRACK_SIZE))
    # the freelist runs in the cache's random order (shuffle_freelist), else in address order
    if not shuffle_freelist(a, s, slab, set_freepointer):
        for slot in range(objects):
            set_freepointer(a, s, slab, slot, slot + 1 if slot + 1 < objects else NIL)
        slab.freelist = 0
    s.nr_slabs += 1
    s.total_objects += objects
    account_slab(a, s, order, 1)
    return slab


def new_slab(a: Arena, s: Cache, gfp: int):
    if gfp & GFP_SLAB_BUG_MASK:
        a.gfp_fixups += 1
        gfp &= ~GFP_SLAB_BUG_MASK
    return allocate_slab(a, s, gfp)


def discard_slab(a: Arena, s: Cache, slab: Slab) -> None:
    s.nr_slabs -= 1
    s.total_objects -= slab.objects
    account_slab(a, s, slab.order, -1)
    del a.slabs[slab.pfn]
    buddy.free_pages(a, slab.pfn, slab.order, KIND_SLAB)


def add_partial(s: Cache, slab: Slab, tail: bool) -> None:
    slab.on_partial = True
    if tail:
        s.partial.append(slab.pfn)
    else:
        s.partial.insert(0, slab.pfn)


def remove_partial(s: Cache, slab: Slab) -> None:
    slab.on_partial = False
    s.partial.remove(slab.pfn)


def put_partials(a: Arena, s: Cache, chain: list[int]) -> None:
    """__put_partials(): a cpu partial chain to the node list, in chain order; empty
    slabs beyond min_partial are discarded after, the last one seen first."""
    discard: list[Slab] = []
    for pfn in chain:
        slab = a.slabs[pfn]
        slab.slabs = 0
        if slab.inuse == 0 and len(s.partial) >= s.min_partial:
            discard.insert(0, slab)
        else:
            add_partial(s, slab, tail=True)
    for slab in discard:
        discard_slab(a, s, slab)


def put_cpu_partial(a: Arena, s: Cache, slab: Slab, drain: bool) -> None:
    """put_cpu_partial(): push on this cpu's chain; with drain, a chain already
    cpu_partial_slabs long goes to the node list and a new chain starts."""
    c = s.cpu[a.cpu]
    slabs, to_put = 0, None
    if c.partial:
        if drain and a.slabs[c.partial[0]].slabs >= s.cpu_partial_slabs:
            to_put, c.partial = c.partial, []
        else:
            slabs = a.slabs[c.partial[0]].slabs
    slab.slabs = slabs + 1
    c.partial.insert(0, slab.pfn)
    if to_put is not None:
        put_partials(a, s, to_put)


def put_partials_cpu(a: Arena, s: Cache, c: CpuSlab) -> None:
    chain, c.partial = c.partial, []
    put_partials(a, s, chain)


def get_partial_node(a: Arena, s: Cache) -> Slab:
    """get_partial_node(): the first node partial slab for the cpu, and while cpu
    partial lists are on, more of them onto this cpu's chain."""
    partial = None
    partial_slabs = 0
    for pfn in list(s.partial):
        slab = a.slabs[pfn]
        remove_partial(s, slab)
        if partial is None:
            partial = slab
            if s.cpu_partial == 0:
                break
        else:
            put_cpu_partial(a, s, slab, False)
            partial_slabs += 1
            if partial_slabs > s.cpu_partial_slabs // 2:
                break
    assert partial is not None
    return partial


# -- allocation -----------------------------------------------------------------------------

def take_object(a: Arena, s: Cache, slab: Slab, slot: int, gfp: int, orig_size: int, caller: int) -> int:
    """Hand out a slot: state, debug initialisation, zeroing. Returns its phys address."""
    slab.state[slot] = OBJ_LIVE
    s.live += 1
    obj = obj_phys(s, slab, slot)
    if is_debug(s):
        set_track(a, s, obj, 0, caller)
        set_orig_size(a, s, obj, orig_size)
        init_object(a, s, obj, SLUB_RED_ACTIVE, orig_size)
    if gfp & GFP_ZERO:
        # a debug kmalloc object keeps its kmalloc red zone past the requested size
        zero = orig_size if s.flags & (SLAB_STORE_USER | SLAB_RED_ZONE) and s.flags & SLAB_KMALLOC else s.object_size
        a.memset(obj, 0, zero)
    return obj


def alloc_debug_checks(a: Arena, s: Cache, slab: Slab, slot: int) -> bool:
    if s.flags & SLAB_CONSISTENCY_CHECKS:
        return check_object(a, s, slab, slot, SLUB_RED_INACTIVE)
    return True


def alloc_single(a: Arena, s: Cache, slab: Slab) -> int:
    """Pop one slot from a slab's own freelist (the debug path)."""
    slot = slab.freelist
    slab.freelist = slab.next[slot]
    slab.inuse += 1
    return slot


def unpop(slab: Slab, slot: int) -> None:
    slab.freelist = slot
    slab.inuse -= 1


def slab_alloc_debug(a: Arena, s: Cache, gfp: int, orig_size: int, caller: int) -> int:
    for pfn in list(s.partial):
        slab = a.slabs[pfn]
        slot = alloc_single(a, s, slab)
        if not alloc_debug_checks(a, s, slab, slot):
            unpop(slab, slot)
            return ECORRUPT
        if slab.inuse == slab.objects:
            remove_partial(s, slab)
        return take_object(a, s, slab, slot, gfp, orig_size, caller)
    slab = new_slab(a, s, gfp)
    if slab is None:
        return ENOMEM
    slot = alloc_single(a, s, slab)
    if not alloc_debug_checks(a, s, slab, slot):
        unpop(slab, slot)
        add_partial(s, slab, tail=False)
        return ECORRUPT
    if slab.inuse < slab.objects:
        add_partial(s, slab, tail=False)
    return take_object(a, s, slab, slot, gfp, orig_size, caller)


def deactivate_slab(a: Arena, s: Cache, slab: Slab, freelist: int) -> None:
    """Unfreeze a cpu slab: splice the cpu freelist in front of the slab's own."""
    tail = slab.freelist != NIL        # remote frees arrived: to the partial tail
    if freelist != NIL:
        last, count = freelist, 1
        while slab.next[last] != NIL:
            last = slab.next[last]
            count += 1
        set_freepointer(a, s, slab, last, slab.freelist)
        slab.freelist = freelist
        slab.inuse -= count
    slab.frozen = False
    if slab.inuse == 0 and len(s.partial) >= s.min_partial:
        discard_slab(a, s, slab)
    elif slab.freelist != NIL:
        add_partial(s, slab, tail)


def freeze_slab(slab: Slab) -> int:
    freelist = slab.freelist
    slab.freelist = NIL
    slab.inuse = slab.objects
    slab.frozen = True
    return freelist


def slab_alloc_slow(a: Arena, s: Cache, c: CpuSlab, gfp: int) -> int:
    if c.slab != NIL:
        slab = a.slabs[c.slab]
        freelist = slab.freelist            # get_freelist: the remote frees
        slab.freelist = NIL
        slab.inuse = slab.objects
        if freelist != NIL:
            c.freelist = slab.next[freelist]
            return freelist
        slab.frozen = False                 # full: no list holds it now
        c.slab = NIL
    if c.partial:                           # slub_percpu_partial
        slab = a.slabs[c.partial.pop(0)]
        slab.slabs = 0
    elif s.partial:
        slab = get_partial_node(a, s)
    else:
        slab = new_slab(a, s, gfp)
        if slab is None:
            return ENOMEM
    freelist = freeze_slab(slab)
    c.slab = slab.pfn
    c.freelist = slab.next[freelist]
    return freelist


def slab_alloc(a: Arena, s: Cache, gfp: int, orig_size: int, caller: int) -> int:
    """The phys address of a new object, or ENOMEM / ECORRUPT."""
    a.last_cache = s.id
    if is_debug(s):
        return slab_alloc_debug(a, s, gfp, orig_size, caller)
    c = s.cpu[a.cpu]
    slot = c.freelist
    obj = sheaf.alloc_from_pcs(a, s, gfp) if s.pcs is not None else -1
    if obj >= 0:
        slab = a.slabs[obj >> 16]
        slot = obj & 0xffff
    elif c.slab != NIL and slot != NIL:
        slab = a.slabs[c.slab]
        c.freelist = slab.next[slot]
    else:
        slot = slab_alloc_slow(a, s, c, gfp)
        if slot < 0:
            return slot
        slab = a.slabs[c.slab]
    return take_object(a, s, slab, slot, gfp, orig_size, caller)


def slab_get_object(a: Arena, s: Cache, gfp: int) -> int:
    """One object for a sheaf (__kmem_cache_alloc_bulk): the cpu freelist, else
    ___slab_alloc.  Returns it as SHEAF_OBJ(slab pfn, slot), or a status."""
    c = s.cpu[a.cpu]
    slot = c.freelist
    if c.slab != NIL and slot != NIL:
        c.freelist = a.slabs[c.slab].next[slot]
    else:
        slot = slab_alloc_slow(a, s, c, gfp)
        if slot < 0:
            return slot
    a.slabs[c.slab].state[slot] = OBJ_SHEAF
    return c.slab << 16 | slot


def kmem_cache_alloc(a: Arena, cid: int, gfp: int, caller: int) -> int:
    """pa_kmem_cache_alloc(): an allocating call (kswapd runs at its end, EOOM asks for the OOM killer)."""
    if type(cid) is not int or type(gfp) is not int or type(caller) is not int or not INT64_MIN <= cid <= INT64_MAX or not INT64_MIN <= gfp <= INT64_MAX or not INT64_MIN <= caller <= INT64_MAX:
        cid, gfp, caller = c_ints(cid, gfp, caller)
    a.alloc_seq += 1
    return reclaim.call_end(a, slab_cache_alloc(a, cid, gfp, caller))


def slab_cache_alloc(a: Arena, cid: int, gfp: int, caller: int) -> int:
    """kmem_cache_alloc for the core's own callers (the stream loop)."""
    a.ticks += 1
    if not valid_cache(a, cid) or not 0 <= gfp < 1 << 32:
        return EINVAL
    s = a.caches[cid]
    r = slab_alloc(a, s, gfp & 0xffffffff, s.object_size, caller)
    if a.trace is not None:
        a.trace.kmem_cache_alloc(a, caller, r, cid, s.object_size, s.size, gfp,
                                 bool(gfp & GFP_ACCOUNT or s.flags & SLAB_ACCOUNT))
    return r


def kmalloc_large(a: Arena, size: int, gfp: int) -> int:
    if gfp & GFP_SLAB_BUG_MASK:
        a.gfp_fixups += 1
        gfp &= ~GFP_SLAB_BUG_MASK
    order = get_order(size)
    if order > MAX_PAGE_ORDER:
        return E2BIG
    pfn = buddy.alloc(a, gfp | GFP_COMP, order)
    if pfn < 0:
        return pfn
    a.pages[pfn].kind = KIND_LARGE_KMALLOC
    a.nr_slab_unreclaimable += 1 << order
    return pfn << PAGE_SHIFT


def kmalloc(a: Arena, size: int, gfp: int, caller: int) -> int:
    """pa_kmalloc(): an allocating call (kswapd runs at its end, EOOM asks for the OOM killer)."""
    if type(size) is not int or type(gfp) is not int or type(caller) is not int or not INT64_MIN <= size <= INT64_MAX or not INT64_MIN <= gfp <= INT64_MAX or not INT64_MIN <= caller <= INT64_MAX:
        size, gfp, caller = c_ints(size, gfp, caller)
    a.alloc_seq += 1
    return reclaim.call_end(a, slab_kmalloc(a, size, gfp, caller))


def slab_kmalloc(a: Arena, size: int, gfp: int, caller: int) -> int:
    """kmalloc for the core's own callers (the stream loop, krealloc)."""
    a.ticks += 1
    if size < 0 or not 0 <= gfp < 1 << 32:
        return EINVAL
    if size == 0:
        return ZERO_SIZE_STATUS
    if size > KMALLOC_MAX_CACHE_SIZE:
        a.last_cache = -1
        r = kmalloc_large(a, size, gfp)
        if r != E2BIG and a.trace is not None:
            a.trace.kmalloc(a, caller, r, size, PAGE_SIZE << get_order(size), gfp)
        return r
    cid = a.kmalloc_caches[kmalloc_type(a, gfp, caller)][kmalloc_index(size)]
    if cid < 0:
        return EINVAL
    r = slab_alloc(a, a.caches[cid], gfp, size, caller)
    if a.trace is not None:
        a.trace.kmalloc(a, caller, r, size, a.caches[cid].size, gfp)
    return r


# -- freeing ------------------------------------------------------------------------------------

def lookup_object(a: Arena, phys: int):
    """(slab, slot) of a live-or-free object start, or a negative status and an event."""
    if not 0 <= phys < a.nr_pages << PAGE_SHIFT:
        event(a, SLAB_ERR_NOT_SLAB, None, None, phys)
        return EINVALFREE, None
    found = buddy.block_containing(a, phys >> PAGE_SHIFT, PG_ALLOC)
    if found is None or a.pages[found[0]].kind != KIND_SLAB:
        event(a, SLAB_ERR_NOT_SLAB, None, None, phys)
        return EINVALFREE, None
    slab = a.slabs[found[0]]
    s = a.caches[slab.cache]
    off = phys - slab_base(slab) - s.red_left_pad
    slot = off // s.size if off >= 0 else -1
    if off < 0 or off % s.size or slot >= slab.objects:
        event(a, SLAB_ERR_INVALID_POINTER, s, slab, phys)
        return EINVALFREE, None
    st = slab.state[slot]
    if st == OBJ_FREED or st == OBJ_SHEAF:
        event(a, SLAB_ERR_ALREADY_FREE, s, slab, phys)
        return EDOUBLEFREE, None
    if st == OBJ_NEVER:
        event(a, SLAB_ERR_NEVER_ALLOCATED, s, slab, phys)
        return EINVALFREE, None
    if st == OBJ_PINNED:
        event(a, SLAB_ERR_PINNED, s, slab, phys)
        return EINVALFREE, None
    return slab, slot


def slab_free_debug(a: Arena, s: Cache, slab: Slab, slot: int, caller: int) -> int:
    obj = obj_phys(s, slab, slot)
    if s.flags & SLAB_CONSISTENCY_CHECKS and not check_object(a, s, slab, slot, SLUB_RED_ACTIVE):
        return ECORRUPT         # "Object at 0x... not freed"
    set_track(a, s, obj, 1, caller)
    init_object(a, s, obj, SLUB_RED_INACTIVE, s.object_size)
    slab.state[slot] = OBJ_FREED
    s.live -= 1
    prior = slab.freelist
    slab.inuse -= 1
    set_freepointer(a, s, slab, slot, prior)
    slab.freelist = slot
    empty = slab.inuse == 0 and len(s.partial) >= s.min_partial
    if prior == NIL:
        if not empty:
            add_partial(s, slab, tail=True)
    elif empty:
        remove_partial(s, slab)
    if empty:
        discard_slab(a, s, slab)
    return OK


def slab_free_slow(a: Arena, s: Cache, slab: Slab, head: int, tail: int, cnt: int) -> None:
    """__slab_free(): cnt objects head..tail (linked) to a slab that is not this cpu's."""
    prior = slab.freelist
    set_freepointer(a, s, slab, tail, prior)
    slab.freelist = head
    slab.inuse -= cnt
    if slab.frozen:
        return
    if prior == NIL and a.kconfig & KCONFIG_SLUB_CPU_PARTIAL:
        put_cpu_partial(a, s, slab, True)       # it was full
        return
    # on a cpu partial chain (prior set, not on the node list) it stays, even empty
    if (slab.inuse != 0 and prior != NIL) or (prior != NIL and not slab.on_partial):
        return
    if slab.inuse == 0 and len(s.partial) >= s.min_partial:
        if prior != NIL:
            remove_partial(s, slab)
        discard_slab(a, s, slab)
    elif prior == NIL:
        add_partial(s, slab, tail=True)


def do_slab_free(a: Arena, s: Cache, slab: Slab, head: int, tail: int, cnt: int) -> None:
    """do_slab_free(): onto the cpu freelist when the slab is this cpu's."""
    c = s.cpu[a.cpu]
    if c.slab == slab.pfn:
        set_freepointer(a, s, slab, tail, c.freelist)
        c.freelist = head
        return
    slab_free_slow(a, s, slab, head, tail, cnt)


def slab_free_bulk(a: Arena, s: Cache, p: list[int]) -> None:
    """__kmem_cache_free_bulk() of sheaf objects: build_detached_freelist() takes the
    last object and links the others of its slab in front of it, looking past at
    most two objects of other slabs, and moves what it took out of the way."""
    size = len(p)
    while size:
        size -= 1
        obj = p[size]
        pfn = obj >> 16
        slab = a.slabs[pfn]
        head = tail = obj & 0xffff
        cnt, lookahead = 1, 3
        slab.state[head] = OBJ_FREED
        set_freepointer(a, s, slab, head, NIL)
        same = size
        while size:
            size -= 1
            obj = p[size]
            if obj >> 16 == pfn:
                slot = obj & 0xffff
                slab.state[slot] = OBJ_FREED
                set_freepointer(a, s, slab, slot, head)
                head = slot
                cnt += 1
                same -= 1
                if size != same:
                    p[size], p[same] = p[same], obj
                continue
            lookahead -= 1
            if not lookahead:
                break
        size = same
        do_slab_free(a, s, slab, head, tail, cnt)


def slab_free(a: Arena, s: Cache, slab: Slab, slot: int, caller: int) -> int:
    if is_debug(s):
        return slab_free_debug(a, s, slab, slot, caller)
    s.live -= 1
    if s.pcs is not None:
        slab.state[slot] = OBJ_SHEAF
        sheaf.free_to_pcs(a, s, slab.pfn << 16 | slot)
        return OK
    slab.state[slot] = OBJ_FREED
    c = s.cpu[a.cpu]
    if c.slab == slab.pfn:
        set_freepointer(a, s, slab, slot, c.freelist)
        c.freelist = slot
        return OK
    slab_free_slow(a, s, slab, slot, slot, 1)
    return OK


def kmem_cache_free(a: Arena, cid: int, phys: int, caller: int) -> int:
    if type(cid) is not int or type(phys) is not int or type(caller) is not int or not INT64_MIN <= cid <= INT64_MAX or not INT64_MIN <= phys <= INT64_MAX or not INT64_MIN <= caller <= INT64_MAX:
        cid, phys, caller = c_ints(cid, phys, caller)
    a.ticks += 1
    if not valid_cache(a, cid):
        return EINVAL
    if a.trace is not None:
        a.trace.kmem_cache_free(a, caller, phys, cid)
    slab, slot = lookup_object(a, phys)
    if slot is None:
        return slab
    s = a.caches[cid]
    if slab.cache != cid:
        event(a, SLAB_ERR_WRONG_CACHE, s, slab, phys, 0, 0, 0, slab.cache)
        return EINVALFREE
    return slab_free(a, s, slab, slot, caller)


def kfree(a: Arena, phys: int, caller: int) -> int:
    if type(phys) is not int or type(caller) is not int or not INT64_MIN <= phys <= INT64_MAX or not INT64_MIN <= caller <= INT64_MAX:
        phys, caller = c_ints(phys, caller)
    a.ticks += 1
    if a.trace is not None:
        a.trace.kfree(a, caller, phys)
    if 0 <= phys < a.nr_pages << PAGE_SHIFT:
        pfn = phys >> PAGE_SHIFT
        p = a.pages.get(pfn)
        if p is not None and p.flags & PG_ALLOC and p.kind == KIND_LARGE_KMALLOC and not phys & (PAGE_SIZE - 1):
            order = p.order
            a.nr_slab_unreclaimable -= 1 << order
            buddy.free_pages(a, pfn, order, KIND_LARGE_KMALLOC)
            return OK
        if p is not None and not p.flags & PG_ALLOC and p.flags & PG_FREED and not phys & (PAGE_SIZE - 1) \
                and buddy.page_is_free(a, pfn) is not None:
            # a block freed and not handed out since: kfree'd twice (or freed as pages before)
            event(a, SLAB_ERR_ALREADY_FREE, None, None, phys)
            return EDOUBLEFREE
    slab, slot = lookup_object(a, phys)
    if slot is None:
        return slab
    return slab_free(a, a.caches[slab.cache], slab, slot, caller)


def ksize(a: Arena, phys: int) -> int:
    if not 0 <= phys < a.nr_pages << PAGE_SHIFT:
        return EINVAL
    found = buddy.block_containing(a, phys >> PAGE_SHIFT, PG_ALLOC)
    if found is None:
        return EINVAL
    p = a.pages[found[0]]
    if p.kind == KIND_LARGE_KMALLOC:
        return PAGE_SIZE << p.order
    if p.kind != KIND_SLAB:
        return EINVAL
    s = a.caches[a.slabs[found[0]].cache]
    if s.flags & (SLAB_RED_ZONE | SLAB_POISON):
        return s.object_size
    if s.flags & SLAB_STORE_USER:
        return s.inuse
    return s.size


# -- shrink, destroy -------------------------------------------------------------------------

def flush_cpu_slabs(a: Arena, s: Cache) -> None:
    """flush_all(): each cpu in turn, as its flush_cpu_slab work does it - the sheaves
    (frees to the cpu slab still on the fast path), the cpu slab, then its partial chain."""
    home = a.cpu
    for cpu, c in enumerate(s.cpu):
        a.cpu = cpu
        if s.pcs is not None:
            sheaf.pcs_flush_all(a, s)
        if c.slab != NIL:
            slab, freelist = a.slabs[c.slab], c.freelist
            c.slab = c.freelist = NIL
            deactivate_slab(a, s, slab, freelist)
        put_partials_cpu(a, s, c)
    a.cpu = home


SHRINK_PROMOTE_MAX = 32


def kmem_cache_shrink(a: Arena, cid: int) -> int:
    a.ticks += 1
    if not valid_cache(a, cid):
        return EINVAL
    s = a.caches[cid]
    flush_cpu_slabs(a, s)
    if s.pcs is not None:
        sheaf.barn_shrink(a, s)
    discard: list[int] = []
    promote: list[list[int]] = [[] for _ in range(SHRINK_PROMOTE_MAX)]
    moved = set()
    for pfn in list(s.partial):
        slab = a.slabs[pfn]
        free = slab.objects - slab.inuse
        if free == slab.objects:
            discard.insert(0, pfn)           # list_move: to the head
            moved.add(pfn)
        elif free <= SHRINK_PROMOTE_MAX:
            promote[free - 1].insert(0, pfn)
            moved.add(pfn)
    rest = [pfn for pfn in s.partial if pfn not in moved]
    s.partial = [pfn for bucket in promote for pfn in bucket] + rest
    for pfn in discard:
        slab = a.slabs[pfn]
        slab.on_partial = False
        discard_slab(a, s, slab)
    return OK


def live_objects(a: Arena, s: Cache) -> list[int]:
    """Phys addresses of the cache's live objects, by address."""
    out = []
    for pfn in sorted(a.slabs):
        slab = a.slabs[pfn]
        if slab.cache == s.id:
            out += [obj_phys(s, slab, i) for i in range(slab.objects) if slab.state[i] & OBJ_LIVE]
    return out


def kmem_cache_destroy(a: Arena, cid: int) -> int:
    a.ticks += 1
    if not valid_cache(a, cid):
        return EINVAL
    s = a.caches[cid]
    if s.refcount > 1:                  # an alias goes, the cache stays
        s.refcount -= 1
        return OK
    if s.live:
        for obj in live_objects(a, s):
            head = buddy.block_containing(a, obj >> PAGE_SHIFT, PG_ALLOC)[0]
            event(a, SLAB_ERR_OBJECTS_REMAINING, s, a.slabs[head], obj)
        return EBUSY
    flush_cpu_slabs(a, s)
    if s.pcs is not None:
        sheaf.barn_shrink(a, s)
    for pfn in list(s.partial):
        slab = a.slabs[pfn]
        remove_partial(s, slab)
        discard_slab(a, s, slab)
    a.caches[cid] = None
    a.cache_order.remove(cid)
    for row in a.kmalloc_caches:
        for i, k in enumerate(row):
            if k == cid:
                row[i] = -1
    return OK


def cache_info(a: Arena, cid: int):
    """(flags, object_size, size, align, order, objects, offset, inuse, red_left_pad,
    min_order, nr_slabs, total_objects, active_objects, refcount, allocflags, live)."""
    if not valid_cache(a, cid):
        return None
    s = a.caches[cid]
    free_on_partial = sum(a.slabs[p].objects - a.slabs[p].inuse for p in s.partial)
    return (s.flags, s.object_size, s.size, s.align, s.order, s.objects, s.offset, s.inuse,
            s.red_left_pad, s.min_order, s.nr_slabs, s.total_objects, s.total_objects - free_on_partial,
            s.refcount, s.allocflags, s.live, s.cpu_partial, s.cpu_partial_slabs, s.sheaf_capacity)


def slab_info(a: Arena, slab_phys: int):
    """(order, objects, inuse, freelist head as a virtual address or 0) of a slab, or None."""
    slab = a.slabs.get(slab_phys >> PAGE_SHIFT) if slab_phys >= 0 else None
    if slab is None:
        return None
    s = a.caches[slab.cache]
    fp = 0 if slab.freelist == NIL else virt(obj_phys(s, slab, slab.freelist))
    return slab.order, slab.objects, slab.inuse, fp


def slab_pin(a: Arena, phys: int, op: int) -> int:
    """Pin (1), unpin (0) or ask (-1) about the live object at phys: 1 pinned, 0 not (see pa_slab_pin)."""
    if not 0 <= phys < a.nr_pages << PAGE_SHIFT or op not in (-1, 0, 1):
        return EINVAL
    found = buddy.block_containing(a, phys >> PAGE_SHIFT, PG_ALLOC)
    if found is None or a.pages[found[0]].kind != KIND_SLAB:
        return EINVAL
    slab = a.slabs[found[0]]
    s = a.caches[slab.cache]
    off = phys - slab_base(slab) - s.red_left_pad
    if off < 0 or off % s.size or off // s.size >= slab.objects:
        return EINVAL
    slot = off // s.size
    if not slab.state[slot] & OBJ_LIVE:
        return EINVAL
    if op >= 0:
        slab.state[slot] = OBJ_PINNED if op else OBJ_LIVE
    return int(slab.state[slot] == OBJ_PINNED)


def take_events(a: Arena) -> list:
    ev, a.slab_events = a.slab_events, []
    return ev


# -- invariants and validation -------------------------------------------------------------------

def check_slabs(a: Arena):
    """None, a message for a broken invariant, or ECORRUPT after validate found damage."""
    pages_rec = pages_unrec = 0
    corrupt = False
    per_cache: dict[int, list[int]] = {}   # cache id -> [slabs, objects, live, held by sheaves]
    for pfn in sorted(a.slabs):
        slab = a.slabs[pfn]
        p = a.pages.get(pfn)
        if p is None or not p.flags & PG_ALLOC or p.kind != KIND_SLAB or p.order != slab.order:
            return f"slab at pfn {pfn:#x} is not a live slab page"
        if not valid_cache(a, slab.cache):
            return f"slab at pfn {pfn:#x} belongs to no cache"
        s = a.caches[slab.cache]
        cnt = per_cache.setdefault(s.id, [0, 0, 0, 0])
        cnt[0] += 1
        cnt[1] += slab.objects
        if s.flags & SLAB_RECLAIM_ACCOUNT:
            pages_rec += 1 << slab.order
        else:
            pages_unrec += 1 << slab.order
        chains = [slab.freelist]
        owner = [c for c in s.cpu if c.slab == pfn]
        if len(owner) > 1 or bool(owner) != slab.frozen:
            return f"slab at pfn {pfn:#x}: frozen={slab.frozen} but {len(owner)} cpus hold it"
        if owner:
            chains.append(owner[0].freelist)
        seen = bytearray(slab.objects)
        nfree_own = 0
        for ci, head in enumerate(chains):
            slot, n = head, 0
            while slot != NIL:
                if not 0 <= slot < slab.objects or seen[slot]:
                    return f"slab at pfn {pfn:#x}: freelist loops or leaves the slab"
                if slab.state[slot] & OBJ_LIVE:
                    return f"slab at pfn {pfn:#x}: live object in slot {slot} is on a freelist"
                seen[slot] = 1
                n += 1
                slot = slab.next[slot]
            if ci == 0:
                nfree_own = n
        live = sum(1 for st in slab.state if st & OBJ_LIVE)
        held = slab.state.count(OBJ_SHEAF)
        cnt[2] += live
        cnt[3] += held
        if sum(seen) + live + held != slab.objects:
            return f"slab at pfn {pfn:#x}: {slab.objects - sum(seen) - live - held} free objects are on no freelist"
        if slab.slabs and (slab.frozen or slab.on_partial or not any(pfn in c.partial for c in s.cpu)):
            return f"slab at pfn {pfn:#x}: cpu partial membership is wrong"
        # a frozen slab counts its cpu freelist as in use; remote frees lower inuse
        expect_inuse = slab.objects - nfree_own
        if slab.inuse != expect_inuse:
            return f"slab at pfn {pfn:#x}: inuse {slab.inuse}, expected {expect_inuse}"
        if slab.on_partial != (pfn in s.partial):
            return f"slab at pfn {pfn:#x}: partial-list membership is wrong"
        if not slab.frozen and not slab.on_partial and not slab.slabs and nfree_own and not is_debug(s):
            return f"slab at pfn {pfn:#x} has free objects but is on no list"
        if is_debug(s):
            for slot in range(slab.objects):
                val = SLUB_RED_ACTIVE if slab.state[slot] & OBJ_LIVE else SLUB_RED_INACTIVE
                if not check_object(a, s, slab, slot, val):
                    corrupt = True
            if s.flags & SLAB_POISON:
                used = slab.objects * s.size
                if not check_bytes_and_report(a, s, slab, 0, SLAB_ERR_SLAB_PADDING, slab_base(slab) + used,
                                              POISON_INUSE, (PAGE_SIZE << slab.order) - used):
                    corrupt = True
    for cid, s in enumerate(a.caches):
        if s is None:
            continue
        nr, total, live, held = per_cache.get(cid, [0, 0, 0, 0])
        if (nr, total, live) != (s.nr_slabs, s.total_objects, s.live):
            return f"cache {cid}: counters {s.nr_slabs}/{s.total_objects}/{s.live} but slabs say {nr}/{total}/{live}"
        for pfn in s.partial:
            if pfn not in a.slabs or a.slabs[pfn].cache != cid:
                return f"cache {cid}: partial list holds pfn {pfn:#x}, not one of its slabs"
        for cpu, c in enumerate(s.cpu):
            for k, pfn in enumerate(c.partial):
                if pfn not in a.slabs or a.slabs[pfn].cache != cid or c.partial.count(pfn) != 1:
                    return f"cache {cid}: cpu {cpu}'s partial chain holds a slab that is not its own"
                if a.slabs[pfn].slabs != len(c.partial) - k:
                    return f"cache {cid}: cpu {cpu}'s partial chain counts its slabs wrong"
        why, in_sheaves = sheaf.sheaves_check(a, s)
        if why:
            return f"cache {cid}: {why}"
        if in_sheaves != held:
            return f"cache {cid}: sheaves hold {in_sheaves} objects but {held} are marked held"
    large = sum(1 << p.order for p in a.pages.values() if p.flags & PG_ALLOC and p.kind == KIND_LARGE_KMALLOC)
    if (pages_rec, pages_unrec + large) != (a.nr_slab_reclaimable, a.nr_slab_unreclaimable):
        return (f"slab pages {a.nr_slab_reclaimable}/{a.nr_slab_unreclaimable} counted but "
                f"{pages_rec}/{pages_unrec + large} found")
    return ECORRUPT if corrupt else None
