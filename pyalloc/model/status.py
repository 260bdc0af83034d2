"""The model's copy of the C core's constants (csrc/pyalloc.h).

A test compares every value here with the compiled ``lib`` so the two cannot
drift apart.  Status codes themselves live in :mod:`pyalloc.errors`.
"""

from ..errors import (  # noqa: F401  (re-exported for the model's modules)
    OK, E2BIG, ENOMEM, EFAULT, EBUSY, EINVAL, EDOUBLEFREE, EINVALFREE, ECORRUPT, EOOM,
)

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
MAX_PAGE_ORDER = 10
NR_PAGE_ORDERS = MAX_PAGE_ORDER + 1
PAGEBLOCK_ORDER = 9
PAGEBLOCK_NR_PAGES = 1 << PAGEBLOCK_ORDER
PAGE_ALLOC_COSTLY_ORDER = 3

# migrate types, in the kernel's enum order
MIGRATE_UNMOVABLE = 0
MIGRATE_MOVABLE = 1
MIGRATE_RECLAIMABLE = 2
MIGRATE_HIGHATOMIC = 3
MIGRATE_ISOLATE = 4
MIGRATE_TYPES = 5
MIGRATE_PCPTYPES = 3

# zones, in the kernel's enum order on x86-64
ZONE_DMA = 0
ZONE_DMA32 = 1
ZONE_NORMAL = 2
ZONE_MOVABLE = 3
ZONE_DEVICE = 4
MAX_NR_ZONES = 5
DMA_END_PFN = 1 << 12     # 16 MiB
DMA32_END_PFN = 1 << 20   # 4 GiB

# smallest and largest machine (in pages)
MIN_PAGES = 256           # 1 MiB
MAX_PAGES = 1 << 30       # 4 TiB

# alloc_flags of mm/internal.h
ALLOC_WMARK_MIN = 0
ALLOC_WMARK_LOW = 1
ALLOC_WMARK_HIGH = 2
ALLOC_NO_WATERMARKS = 0x04
ALLOC_WMARK_MASK = ALLOC_NO_WATERMARKS - 1
ALLOC_OOM = 0x08
ALLOC_NON_BLOCK = 0x10
ALLOC_MIN_RESERVE = 0x20
ALLOC_CPUSET = 0x40
ALLOC_HIGHATOMIC = 0x200
ALLOC_KSWAPD = 0x800
ALLOC_RESERVES = ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM

# page descriptor flags (pyalloc's own; named after the kernel's page flags)
PG_BUDDY = 0x01      # head of a free block on a free list (PageBuddy)
PG_ALLOC = 0x02      # head of a live allocation
PG_HEAD = 0x04       # the live allocation is a compound page (__GFP_COMP, order > 0)
PG_FREED = 0x08      # head of a block that was freed and not handed out since
PG_MOVABLE = 0x10    # allocated with a movable migratetype (counts as movable for fallback)
PG_LRU = 0x20        # on an LRU list (reclaim.py)
PG_ACTIVE = 0x40     # on the active list of its type
PG_REFERENCED = 0x80  # accessed since reclaim last looked

# what a live allocation belongs to: which free function may release it
KIND_PAGES = 1
KIND_SLAB = 2
KIND_LARGE_KMALLOC = 3
KIND_VMALLOC = 4
KIND_PGTABLE = 5
KIND_ANON = 6
KIND_FILE = 7
PTE_PRESENT = 0x1
KERNPG_TABLE = 0x63

# slab cache flags (pyalloc's own values; the kernel's names)
SLAB_HWCACHE_ALIGN = 0x1
SLAB_POISON = 0x2
SLAB_RED_ZONE = 0x4
SLAB_STORE_USER = 0x8
SLAB_RECLAIM_ACCOUNT = 0x10
SLAB_ACCOUNT = 0x20
SLAB_CACHE_DMA = 0x40
SLAB_CACHE_DMA32 = 0x80
SLAB_PANIC = 0x100
SLAB_CONSISTENCY_CHECKS = 0x200
SLAB_TRACE = 0x400
SLAB_KMALLOC = 0x800          # internal: a kmalloc cache
SLAB_NO_MERGE = 0x1000        # internal: never merge (the normal kmalloc caches under MEMCG)
OBJECT_POISON = 0x2000        # internal: poison the object itself (POISON without RCU or ctor)
SLAB_FLAGS_USER = 0x7ff       # what kmem_cache_create accepts
SLAB_DEBUG_FLAGS = SLAB_POISON | SLAB_RED_ZONE | SLAB_STORE_USER | SLAB_CONSISTENCY_CHECKS | SLAB_TRACE
SLAB_NEVER_MERGE = SLAB_RED_ZONE | SLAB_POISON | SLAB_STORE_USER | SLAB_TRACE | SLAB_NO_MERGE
SLAB_MERGE_SAME = SLAB_RECLAIM_ACCOUNT | SLAB_CACHE_DMA | SLAB_CACHE_DMA32 | SLAB_ACCOUNT

KMALLOC_MAX_CACHE_SIZE = 8192
KMALLOC_MAX_SIZE = 4 << 20
KMALLOC_SHIFT_HIGH = 13
NR_KMALLOC_TYPES = 4          # normal, reclaim, dma, cgroup
MAX_CACHES = 4096
MAX_CPUS = 4096

# byte values of include/linux/poison.h
POISON_INUSE = 0x5a
POISON_FREE = 0x6b
POISON_END = 0xa5
SLUB_RED_INACTIVE = 0xbb
SLUB_RED_ACTIVE = 0xcc
TRACK_SIZE = 32               # struct track with STACKDEPOT

# slab object states (2 bits per 8-byte granule of memory)
OBJ_NEVER = 0
OBJ_LIVE = 1
OBJ_FREED = 2
OBJ_PINNED = 5              # live (bit 0) but owned by a vmalloc area: no free may release it

# slab debug events (why a report is printed)
SLAB_ERR_LEFT_REDZONE = 1
SLAB_ERR_RIGHT_REDZONE = 2
SLAB_ERR_KMALLOC_REDZONE = 3
SLAB_ERR_POISON = 4
SLAB_ERR_END_POISON = 5
SLAB_ERR_OBJECT_PADDING = 6
SLAB_ERR_ALIGN_PADDING = 7
SLAB_ERR_SLAB_PADDING = 8
SLAB_ERR_FREEPOINTER = 9
SLAB_ERR_ALREADY_FREE = 10
SLAB_ERR_INVALID_POINTER = 11
SLAB_ERR_WRONG_CACHE = 12
SLAB_ERR_NOT_SLAB = 13
SLAB_ERR_OBJECTS_REMAINING = 14
SLAB_ERR_NEVER_ALLOCATED = 15
SLAB_ERR_PINNED = 16
MAX_SLAB_EVENTS = 16

ZERO_SIZE_STATUS = -2000      # kmalloc(0): the caller answers ZERO_SIZE_PTR
EINVARIANT = -1004            # check(): an invariant is broken

# page_state() answers, for error messages
PAGE_STATE_ALLOCATED = 1    # head of a live allocation (order, kind)
PAGE_STATE_INTERIOR = 2     # inside a live allocation that starts at head
PAGE_STATE_FREE = 3         # inside a free block that starts at head
PAGE_STATE_OUT_OF_RANGE = 4

# bit names of gfp the core reads (values from include/linux/gfp_types.h)
GFP_HIGH = 0x20
GFP_IO = 0x40
GFP_FS = 0x80
GFP_ZERO = 0x100
GFP_DIRECT_RECLAIM = 0x400
GFP_KSWAPD_RECLAIM = 0x800
GFP_RETRY_MAYFAIL = 0x4000
GFP_NOFAIL = 0x8000
GFP_NORETRY = 0x10000
GFP_MEMALLOC = 0x20000
GFP_COMP = 0x40000
GFP_NOMEMALLOC = 0x80000
GFP_THISNODE = 0x200000
GFP_BITS_MASK = 0x1ffffff

# the fields of a cache's counters, in struct pa_cache_info order
CACHE_INFO_FIELDS = ("flags", "object_size", "size", "align", "order", "objects", "offset", "inuse",
                     "red_left_pad", "min_order", "nr_slabs", "total_objects", "active_objects",
                     "refcount", "allocflags", "live")

# operation streams (csrc/stream.c, model/stream.py, pyalloc/stream.py)
OP_KMALLOC = 1
OP_KFREE = 2
OP_KREALLOC = 3
OP_KMEM_CACHE_ALLOC = 4
OP_KMEM_CACHE_FREE = 5
OP_ALLOC_PAGES = 6
OP_FREE_PAGES = 7
OP_VMALLOC = 8
OP_VFREE = 9
OP_SPAWN, OP_TOUCH, OP_EXIT, OP_READ_FILE, OP_WRITE_FILE, OP_SYNC, OP_DROP_CACHES = range(32, 39)
OP_CPU_CURRENT = 0xffff
OBJ_NONE, OBJ_LIVE, OBJ_FREED = 0, 1, 2
EDEFER = -1100        # the stream loop leaves this op to Python
# snapshot walks (csrc/snapshot.c): look at every page, not only those mincore() calls resident
SNAP_EXHAUSTIVE = 1
