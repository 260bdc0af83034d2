"""Every fact the C core and the Python model share, written once.

What lives here: the address layout (PAGE_OFFSET, the vmalloc range ...),
the sizes and limits of the allocators, the page and slab flag bits, the
status codes, the op kinds and record layout of streams, the trace event
numbers, the reclaim counter and cost tables, and ``__version__``.  The model
and the shared layer import these names; the C core gets them from
csrc/pa_abi_gen.h, which pyalloc/_build.py generates from this file on every
build (:func:`render_header`), and pyalloc._cbackend refuses a core built from
another version of this file (:func:`abi_hash`).

To add a reclaim counter: add one line at the END of :data:`COUNTER_TABLE`
(the snapshot's counter block is positional; an older snapshot then reads
the new counter as 0), then rebuild with ``python pyalloc/_build.py``.

This module imports nothing from pyalloc: _build.py loads it by path, before
the package (and its C core) exists.
"""

from __future__ import annotations

import hashlib

__version__ = "0.1.0"
ABI_VERSION = 5

# -- address layout: x86-64, 4-level paging (Documentation/arch/x86/x86_64/mm.rst) --------------

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_OFFSET = 0xffff888000000000          # the direct map
DIRECT_MAP_SIZE = 64 << 40                # 64 TiB of direct map on 4-level paging
VMALLOC_START = 0xffffc90000000000
VMALLOC_SIZE = 32 << 40
VMALLOC_END = VMALLOC_START + VMALLOC_SIZE
VMEMMAP_START = 0xffffea0000000000        # the struct page array
ZERO_SIZE_PTR = 0x10                      # kmalloc(0) (include/linux/slab.h)

# -- status codes: errno values where Linux has one -------------------------------------------

OK = 0
E2BIG = -7          # request larger than the allocator can ever serve: NULL + WARN
ENOMEM = -12        # request cannot be met now: NULL (+ warn_alloc)
EFAULT = -14        # access to an address that is not mapped
EBUSY = -16         # object still in use (cache with live objects)
EINVAL = -22        # bad argument
EDOUBLEFREE = -1001  # free of something that is free right now
EINVALFREE = -1002   # free of something that is not the start of a live allocation
ECORRUPT = -1003     # slub_debug found a damaged red zone, poison or free pointer
EOOM = -1005         # allocation failed and the OOM killer should run (Machine does it)
ECLOSED = -1006      # the machine was closed (by another thread, mid-call)
ELOOP = -1007        # a !__GFP_FS request only the OOM killer could satisfy: 6.18 retries for ever
STATUS_CODES = ("OK", "E2BIG", "ENOMEM", "EFAULT", "EBUSY", "EINVAL", "EDOUBLEFREE", "EINVALFREE",
                "ECORRUPT", "EOOM", "ECLOSED", "ELOOP")
STATUS_NAMES = {globals()[name]: "PA_" + name for name in STATUS_CODES}

# -- the allocators' sizes, limits, flags and private codes ------------------------------------

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
# more per-page LRU state, one byte per page beside the descriptors (csrc/reclaim.c lru_ext[])
PGX_YOUNG = 0x01      # a pte maps it with the accessed bit set (no hardware: set by every access)
PGX_WORKINGSET = 0x02  # PG_workingset: deactivated from the active list, or restored by a refault

# what a live allocation belongs to: which free function may release it
KIND_PAGES = 1
KIND_SLAB = 2
KIND_LARGE_KMALLOC = 3
KIND_VMALLOC = 4
KIND_PGTABLE = 5
KIND_ANON = 6
KIND_FILE = 7
KIND_PCP = 8         # not live: a free page on a per-cpu page list (free but not PageBuddy)
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
# alloc_empty_sheaf() kzallocs struct_size(sheaf, objects, capacity) (a 32-byte header and a
# pointer per object): past KMALLOC_MAX_SIZE that fails and so does kmem_cache_create()
SHEAF_CAPACITY_MAX = (KMALLOC_MAX_SIZE - 32) // 8
KMALLOC_SHIFT_HIGH = 13
NR_KMALLOC_TYPES = 4          # normal, reclaim, dma, cgroup
# include/linux/slab.h RANDOM_KMALLOC_CACHES_NR: kmalloc-rnd-01-* .. kmalloc-rnd-15-*, kmalloc
# types NR_KMALLOC_TYPES .. NR_KMALLOC_TABLE - 1 here (after the four the snapshot's table holds)
RANDOM_KMALLOC_CACHES_NR = 15
NR_KMALLOC_TABLE = NR_KMALLOC_TYPES + RANDOM_KMALLOC_CACHES_NR
MAX_CACHES = 4096
MAX_CPUS = 4096
# per-cpu page lists (include/linux/mmzone.h, mm/page_alloc.c, 6.18 with THP)
PCP_THP_ORDER = 9                     # HPAGE_PMD_ORDER: the one order above costly on a pcp list
NR_LOWORDER_PCP_LISTS = 3 * 4         # MIGRATE_PCPTYPES * (PAGE_ALLOC_COSTLY_ORDER + 1)
NR_PCP_LISTS = NR_LOWORDER_PCP_LISTS + 2   # + NR_PCP_THP: one THP list for movable, one for the rest
PCP_BATCH_SCALE_MAX = 5               # CONFIG_PCP_BATCH_SCALE_MAX default
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8
PCPF_PREV_FREE_HIGH_ORDER = 0x01
PCPF_FREE_HIGH_BATCH = 0x02

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
OBJ_SHEAF = 4               # allocated from its slab but held by a sheaf: free to the user

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
GFP_WRITE = 0x1000
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
                     "refcount", "allocflags", "live", "cpu_partial", "cpu_partial_slabs", "sheaf_capacity")

# -- operation streams (csrc/stream.c, model/stream.py, pyalloc/machine/stream.py) ------------

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
OBJ_NONE = 0          # per op: what it allocated is gone or never was (OBJ_LIVE, OBJ_FREED above)
EDEFER = -1100        # the stream loop leaves this op to Python
# snapshot walks (csrc/snapshot.c): look at every page, not only those mincore() calls resident
SNAP_EXHAUSTIVE = 1
OP_RECORD_WORDS = 4   # a stream op is struct pa_op: four 64-bit words (kind cpu gfp | caller cache | handle | arg)

# pa_mm_fault() flags: the access dirties the page (file pages become dirty)
FAULT_WRITE = 1

# kmem trace events (csrc/trace.h, model/trace.py, machine/trace.py)
TRACE_KMALLOC = 1
TRACE_KMEM_CACHE_ALLOC = 2
TRACE_KFREE = 3
TRACE_KMEM_CACHE_FREE = 4
TRACE_MM_PAGE_ALLOC = 5
TRACE_MM_PAGE_FREE = 6
TRACE_EVENT_NAMES = ("", "kmalloc", "kmem_cache_alloc", "kfree", "kmem_cache_free", "mm_page_alloc", "mm_page_free")
TRACE_NIL = 0xffffffff      # PA_NIL: the pfn in the record of a failed page allocation
# Every name the kernel has printed these events under, the most frequent first: (name, TRACE_*
# kind, spelling) with spelling 0 for 6.18's own name, 1 for mm_page_free_batched (word 5 of its
# record), -1 for an older name (3.x page frees, the _node events until 6.2) whose lines the
# readers leave raw.  csrc/trace_parse.c gets this table generated; model/trace_parse.py reads it.
TRACE_EVENT_SPELLINGS = (
    ("kmalloc", TRACE_KMALLOC, 0), ("kmalloc_node", TRACE_KMALLOC, -1),
    ("kmem_cache_alloc", TRACE_KMEM_CACHE_ALLOC, 0), ("kmem_cache_alloc_node", TRACE_KMEM_CACHE_ALLOC, -1),
    ("kfree", TRACE_KFREE, 0), ("kmem_cache_free", TRACE_KMEM_CACHE_FREE, 0),
    ("mm_page_alloc", TRACE_MM_PAGE_ALLOC, 0), ("mm_page_free", TRACE_MM_PAGE_FREE, 0),
    ("mm_page_free_batched", TRACE_MM_PAGE_FREE, 1), ("mm_page_free_direct", TRACE_MM_PAGE_FREE, -1),
    ("mm_pagevec_free", TRACE_MM_PAGE_FREE, -1),
)

# reading a capture (csrc/trace_parse.c <-> model/trace_parse.py): one record of
# TPARSE_WORDS 64-bit words per line that matters; word 0 is a TRACE_* event above or one of
# these, word 1 the line number (the layout: model/trace_parse.py)
TPARSE_WORDS = 13
TPARSE_RAW = 16             # a known event whose fields the fast path leaves to Python: the line
TPARSE_BAD = 17             # a line that is no event line (word 2: one of TPARSE_BAD_*)
TPARSE_CPUS = 18            # the header's "#P:<cpus>" (word 2)
TPARSE_BAD_LONG = 1         # longer than TPARSE_MAX_LINE bytes
TPARSE_BAD_NUL = 2          # holds NUL bytes
TPARSE_BAD_LINE = 3         # not an ftrace event line (the line, right-stripped, is kept)
TPARSE_BAD_CPU = 4          # the CPU field has more than TPARSE_MAX_DIGITS digits
TPARSE_F_PAGE = 1           # word 6 flags: mm_page_alloc printed a page (not a failed allocation)
TPARSE_F_ACCOUNTED = 2      # accounted=true
TPARSE_F_ALLOC = 4          # bytes_alloc= present
TPARSE_F_NULL = 8           # ptr= is NULL
TPARSE_F_SITE = 16          # call_site= present (words 7, 8: its bytes in the text)
TPARSE_F_GFP = 32           # gfp_flags= present (words 9, 10)
TPARSE_F_NAME = 64          # name= present (words 11, 12)
TPARSE_MAX_LINE = 1 << 16   # the longest line read; a longer one is never held whole
TPARSE_MAX_DIGITS = 40      # the most digits a CPU field may have
TPARSE_KEEP = 480           # bytes of a bad line kept for its message (120 characters)

INT64_MAX = (1 << 63) - 1


def clamp64(x):
    """An int64 the core judges exactly as it would judge *x*: every range
    check in the cores is far inside int64, so clamping changes no answer."""
    if not isinstance(x, int):
        return x            # the call will raise its TypeError
    return -1 if x < 0 else min(x, INT64_MAX)


# -- reclaim counters and per-call costs -------------------------------------------------------
#
# The C core keeps ``uint64_t ctr[PA_NR_CTRS]`` in the order of this table; the
# model keeps a list in the same order.  Most names are the /proc/vmstat names
# of 6.18.  The second column says where /proc shows the counter under its own
# name: VM_EVENT, a vm event printed as it is in /proc/vmstat; NODE_STAT, a node
# counter (/proc/vmstat's node section, /proc/meminfo and /proc/zoneinfo take it
# from there); None, kept for the simulation (read by name where it is used).
# Gauges (LRU sizes, dirty pages, free swap) are kept up to date by the cores
# rather than recomputed.  New counters go at the END: the snapshot's counter
# block is positional.

VM_EVENT = "vmstat"
NODE_STAT = "node"

COUNTER_TABLE = (
    ("pgpgin", VM_EVENT), ("pgpgout", VM_EVENT), ("pswpin", VM_EVENT), ("pswpout", VM_EVENT),
    ("pgfault", VM_EVENT), ("pgmajfault", VM_EVENT),
    ("pgactivate", VM_EVENT), ("pgdeactivate", VM_EVENT), ("pgrefill", VM_EVENT), ("pgrotated", VM_EVENT),
    ("pgsteal_kswapd", VM_EVENT), ("pgsteal_direct", VM_EVENT),
    ("pgscan_kswapd", VM_EVENT), ("pgscan_direct", VM_EVENT),
    ("pgscan_anon", VM_EVENT), ("pgscan_file", VM_EVENT), ("pgsteal_anon", VM_EVENT), ("pgsteal_file", VM_EVENT),
    ("allocstall_dma", VM_EVENT), ("allocstall_dma32", VM_EVENT), ("allocstall_normal", VM_EVENT),
    ("allocstall_movable", VM_EVENT), ("allocstall_device", VM_EVENT),
    ("pageoutrun", VM_EVENT), ("kswapd_low_wmark_hit_quickly", VM_EVENT),
    ("kswapd_high_wmark_hit_quickly", VM_EVENT),
    ("nr_written", NODE_STAT), ("nr_dirtied", NODE_STAT), ("nr_vmscan_write", NODE_STAT),
    ("drop_pagecache", VM_EVENT),
    ("compact_migrate_scanned", VM_EVENT), ("compact_free_scanned", VM_EVENT), ("compact_isolated", VM_EVENT),
    ("compact_stall", VM_EVENT), ("compact_fail", VM_EVENT), ("compact_success", VM_EVENT),
    ("pgmigrate_success", VM_EVENT),
    ("oom_kill", VM_EVENT), ("workingset_refault_anon", NODE_STAT), ("workingset_refault_file", NODE_STAT),
    # gauges
    ("nr_inactive_anon", NODE_STAT), ("nr_active_anon", NODE_STAT),
    ("nr_inactive_file", NODE_STAT), ("nr_active_file", NODE_STAT),
    ("nr_dirty", NODE_STAT), ("nr_swap_pages", None), ("nr_swap_free", None),
    # kswapd runs in a row that reclaimed nothing (pgdat->kswapd_failures)
    ("kswapd_failures", None),
    # PSI (kernel/sched/psi.c): total stall in us, the open 2 s period and its
    # stall, and the three averages in FIXED_1 = 2048 fixed point
    ("psi_total_us", None), ("psi_period", None), ("psi_period_stall_us", None),
    ("psi_avg10", None), ("psi_avg60", None), ("psi_avg300", None),
    # writeback (mm/vmscan.c, mm/page-writeback.c); /proc/vmstat prints them in vmstat_text[] order
    ("nr_vmscan_immediate_reclaim", NODE_STAT), ("nr_throttled_written", NODE_STAT),
    # kcompactd (mm/compaction.c kcompactd_do_work); /proc/vmstat prints them after compact_success
    ("compact_daemon_wake", VM_EVENT), ("compact_daemon_migrate_scanned", VM_EVENT),
    ("compact_daemon_free_scanned", VM_EVENT),
    # echo 2 (or 3) > /proc/sys/vm/drop_caches (fs/drop_caches.c)
    ("drop_slab", VM_EVENT),
    # LRU aging (mm/workingset.c, mm/vmscan.c): the working-set counters, pgskip_<zone>
    # (isolate_lru_folios), and the lruvec's nonresident_age and anon/file costs (lru_note_cost)
    ("workingset_nodes", NODE_STAT), ("workingset_activate_anon", NODE_STAT),
    ("workingset_activate_file", NODE_STAT), ("workingset_restore_anon", NODE_STAT),
    ("workingset_restore_file", NODE_STAT), ("workingset_nodereclaim", NODE_STAT),
    ("pgskip_dma", VM_EVENT), ("pgskip_dma32", VM_EVENT), ("pgskip_normal", VM_EVENT),
    ("pgskip_movable", VM_EVENT), ("pgskip_device", VM_EVENT),
    ("nonresident_age", None), ("anon_cost", None), ("file_cost", None),
    # lruvec->refaults[]: workingset_activate_anon/_file when the last reclaim run ended (snapshot_refaults)
    ("refaults_anon", None), ("refaults_file", None),
    # mlock (mm/mlock.c): the unevictable LRU's size (a gauge; NR_MLOCK equals it here), then the
    # events; /proc/vmstat prints them in vmstat_text[] order
    ("nr_unevictable", NODE_STAT),
    ("unevictable_pgs_culled", VM_EVENT), ("unevictable_pgs_scanned", VM_EVENT),
    ("unevictable_pgs_rescued", VM_EVENT), ("unevictable_pgs_mlocked", VM_EVENT),
    ("unevictable_pgs_munlocked", VM_EVENT), ("unevictable_pgs_cleared", VM_EVENT),
    ("unevictable_pgs_stranded", VM_EVENT),
)
COUNTERS = tuple(name for name, _ in COUNTER_TABLE)
CTR = {name: i for i, name in enumerate(COUNTERS)}
NR_CTRS = len(COUNTERS)
VM_EVENT_COUNTERS = tuple(name for name, shown in COUNTER_TABLE if shown == VM_EVENT)
NODE_STAT_COUNTERS = tuple(name for name, shown in COUNTER_TABLE if shown == NODE_STAT)

# What the most recent allocating call cost (Machine.last_alloc); "seq" says
# which call the rest belongs to.  New costs go at the end, as counters do.
COSTS = ("seq", "slept", "scanned", "reclaimed", "written_back", "swapped_out",
         "compacted", "reserves", "kswapd_woken", "stall_us", "oom_needed", "oom_gfp", "oom_order",
         "would_loop")
COST = {name: i for i, name in enumerate(COSTS)}
NR_COSTS = len(COSTS)

# LRU list numbers, as enum lru_list
LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE = range(4)
LRU_UNEVICTABLE = 4     # mlock.c; reclaim scans only the four above (for_each_evictable_lru)

# Simulated cost of the slow work, in microseconds of the machine's clock (one
# core operation is 1 us).  A 4 KiB page at ~40 MB/s of disk is ~100 us.
WRITEBACK_US = 100      # a dirty file page written back
SWAP_OUT_US = 100       # an anonymous page written to swap
SWAP_IN_US = 100        # read back from swap (a major fault)
READ_PAGE_US = 100      # a file page read from disk into the cache
MIGRATE_US = 2          # compaction copies a page
# Reclaim's own work (mm/vmscan.c shrink_folio_list()), charged to whoever reclaims: direct
# reclaim stalls the caller for it, kswapd spends its own time on it (pyalloc/model/kthread.py).
# At these costs kswapd frees clean page cache at 2 us a page while a task faults new pages in
# at 1 us each: a fast allocator outruns kswapd, as on real machines, and direct reclaim or a
# failed atomic burst follows.
SCAN_PAGE_US = 1        # an inactive LRU page looked at (isolated, references checked)
RECLAIM_PAGE_US = 1     # a page unmapped and freed
KSWAPD_NAP_US = 100_000 # kswapd_try_to_sleep(): the HZ/10 nap before kswapd sleeps for good

PSI_PERIOD_US = 2_000_000   # psi_avgs_work runs every 2 s

# A process's or file's page entry (struct pa_mm): value << ENT_SHIFT | state, the state in the
# low two bits; bit 2 is a file page's dirty bit, and an anonymous page's mlocked bit (VM_LOCKED).
ENT_NONE, ENT_PRESENT, ENT_SWAP, ENT_DISK = 0, 1, 2, 3
ENT_DIRTY = 4
ENT_MLOCKED = 4
ENT_SHIFT = 3

# mm/vmscan.c: reclaim's batch, its priority scale, and reclaim_throttle()'s HZ / 10
SWAP_CLUSTER_MAX = 32
DEF_PRIORITY = 12
THROTTLE_WRITEBACK_US = 100_000
MAX_PAUSE_US = 200_000      # mm/page-writeback.c MAX_PAUSE: HZ / 5, a writer's longest sleep
CENTISEC_US = 10_000        # the unit of vm.dirty_*_centisecs
EVICTION_BITS = 36          # mm/workingset.c: a shadow's timestamp bits (NODES_SHIFT 10, MEMCG=y)
COMPACT_MAX_DEFER_SHIFT = 6 # mm/compaction.c: a zone skips at most 1 << 6 attempts

# The kernel threads' state on the simulated clock (kthread.c / model/kthread.py), in the
# order pa_kthread_info() returns it and the snapshot's kthreads section stores it.  The
# counter block's psi_* words are PSI memory "full" (the caller's own stalls); kswapd's time
# in balance_pgdat() is "some" only, kept here (kernel/sched/psi.c test_state()).
KTHREAD_INFO = ("kswapd_clock", "kswapd_nap_until", "kswapd_nr_inactive_anon", "kswapd_nr_active_anon",
                "kswapd_nr_inactive_file", "kswapd_nr_active_file", "kswapd_round_reclaimed",
                "kswapd_run_reclaimed", "kswapd_priority", "kswapd_in_round",
                "psi_some_total_us", "psi_some_period", "psi_some_period_stall_us", "psi_some_avg10",
                "psi_some_avg60", "psi_some_avg300", "psi_some_until")
KTHREAD = {name: i for i, name in enumerate(KTHREAD_INFO)}
NR_KTHREAD_INFO = len(KTHREAD_INFO)
MAX_IDLE_US = 1 << 40       # Machine.idle(): at most ~12.7 days in one call

# The vm sysctls the simulation obeys: (name, default, min, max), as mm/'s vm_table entries
# declare them (proc_dointvec_minmax bounds).  The core keeps one word per entry in this
# order (vm_sysctl[]); min_free_kbytes has its own field since it also sizes the machine.
INT_MAX = (1 << 31) - 1
VM_SYSCTLS = (
    ("swappiness", 60, 0, 200),                     # mm/vmscan.c vm_swappiness, extra2 = 200
    ("dirty_ratio", 20, 0, 100),                    # mm/page-writeback.c vm_dirty_ratio
    ("dirty_background_ratio", 10, 0, 100),         # dirty_background_ratio
    ("dirty_expire_centisecs", 3000, 0, INT_MAX),   # dirty_expire_interval / 10 ms
    ("dirty_writeback_centisecs", 500, 0, INT_MAX), # dirty_writeback_interval / 10 ms
    ("watermark_scale_factor", 10, 1, 3000),        # mm/page_alloc.c
    ("extfrag_threshold", 500, 0, 1000),            # mm/compaction.c sysctl_extfrag_threshold
)
VM_SYSCTL = {name: i for i, (name, _, _, _) in enumerate(VM_SYSCTLS)}
globals().update({"SYSCTL_" + name.upper(): i for name, i in VM_SYSCTL.items()})
NR_VM_SYSCTLS = len(VM_SYSCTLS)
# pa_sysctl()'s indexes past the table: min_free_kbytes (m->min_free_kbytes; 0..INT_MAX as
# mm/page_alloc.c's extra1 = SYSCTL_ZERO), and the write-only compact_memory (must be 1,
# mm/compaction.c sysctl_compaction_handler) and drop_caches (1..4, fs/drop_caches.c)
VM_SYSCTL_MIN_FREE_KBYTES = NR_VM_SYSCTLS
VM_SYSCTL_COMPACT_MEMORY = NR_VM_SYSCTLS + 1
VM_SYSCTL_DROP_CACHES = NR_VM_SYSCTLS + 2
VM_SYSCTL_READ = -1         # pa_sysctl(m, index, VM_SYSCTL_READ) reads

# madvise() advice the core takes (include/uapi/asm-generic/mman-common.h values)
MADV_DONTNEED = 4
MADV_COLD = 20
MADV_PAGEOUT = 21
MADV_ADVICE = {"MADV_DONTNEED": MADV_DONTNEED, "MADV_COLD": MADV_COLD, "MADV_PAGEOUT": MADV_PAGEOUT}


# -- what the C core gets ----------------------------------------------------------------------
#
# Each group becomes one C enum of PA_<name> = value (tag: the enum's tag or
# None); values past int go to #defines instead, since an enum constant is an
# int in C11.

# -- kernel configuration and seeding -------------------------------------------------
# The kernel options pyalloc models, with the value of the real 6.18 machine whose
# .config excerpt ships in tests/fixtures/kconfig-6.18.txt.  Bit i of the core's kconfig
# word is KCONFIG_OPTIONS[i]; append new options at the end (snapshots store the word).
KCONFIG_OPTIONS = (
    ("SLUB_CPU_PARTIAL", True),         # per-cpu partial slab lists (mm/slub.c put_cpu_partial)
    ("SLAB_FREELIST_RANDOM", True),     # shuffle_freelist() on every new slab
    ("SLAB_FREELIST_HARDENED", True),   # free pointers stored as freelist_ptr_encode() writes them
    ("RANDOM_KMALLOC_CACHES", False),   # kmalloc-rnd-NN-* copies chosen by the caller's address
)
KCONFIG_BIT = {name: 1 << i for i, (name, _) in enumerate(KCONFIG_OPTIONS)}
KCONFIG_DEFAULT = sum(KCONFIG_BIT[name] for name, on in KCONFIG_OPTIONS if on)
KCONFIG_MASK = (1 << len(KCONFIG_OPTIONS)) - 1
KCONFIG_SLUB_CPU_PARTIAL = KCONFIG_BIT["SLUB_CPU_PARTIAL"]
KCONFIG_SLAB_FREELIST_RANDOM = KCONFIG_BIT["SLAB_FREELIST_RANDOM"]
KCONFIG_SLAB_FREELIST_HARDENED = KCONFIG_BIT["SLAB_FREELIST_HARDENED"]
KCONFIG_RANDOM_KMALLOC_CACHES = KCONFIG_BIT["RANDOM_KMALLOC_CACHES"]
MAX_SEED = (1 << 63) - 1


def prandom_next(state: int) -> tuple[int, int]:
    """One step of the core's seeded generator (SplitMix64): (new state, 64-bit output).

    Every random choice of a machine (freelist orders, hardened-pointer randoms, the random
    kmalloc seed) is drawn from this stream, started from ``seed``; csrc/prandom.h is its twin.
    """
    state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return state, z ^ (z >> 31)


C_ENUMS = (
    (None, None, ("ABI_VERSION",)),
    ("status codes: errno values where Linux has one", "pa_status", STATUS_CODES),
    ("address layout and sizes", None,
     ("PAGE_SHIFT", "PAGE_SIZE", "MAX_PAGE_ORDER", "NR_PAGE_ORDERS", "PAGEBLOCK_ORDER", "MIGRATE_TYPES",
      "MAX_NR_ZONES", "MIN_PAGES", "MAX_PAGES")),
    ("page_state() answers", None,
     ("PAGE_STATE_ALLOCATED", "PAGE_STATE_INTERIOR", "PAGE_STATE_FREE", "PAGE_STATE_OUT_OF_RANGE")),
    ("page descriptor flags", None,
     ("PG_BUDDY", "PG_ALLOC", "PG_HEAD", "PG_FREED", "PG_MOVABLE", "PG_LRU", "PG_ACTIVE", "PG_REFERENCED")),
    ("per-page LRU state beside the descriptors (lru_ext[])", None, ("PGX_YOUNG", "PGX_WORKINGSET")),
    ("what a live allocation belongs to", None,
     ("KIND_PAGES", "KIND_SLAB", "KIND_LARGE_KMALLOC", "KIND_VMALLOC", "KIND_PGTABLE", "KIND_ANON", "KIND_FILE", "KIND_PCP")),
    ("x86-64 page table entry bits and the protections vmalloc uses", None, ("PTE_PRESENT", "KERNPG_TABLE")),
    ("slab cache flags: pyalloc's own values, the kernel's names", None,
     ("SLAB_HWCACHE_ALIGN", "SLAB_POISON", "SLAB_RED_ZONE", "SLAB_STORE_USER", "SLAB_RECLAIM_ACCOUNT",
      "SLAB_ACCOUNT", "SLAB_CACHE_DMA", "SLAB_CACHE_DMA32", "SLAB_PANIC", "SLAB_CONSISTENCY_CHECKS",
      "SLAB_TRACE", "SLAB_KMALLOC", "SLAB_NO_MERGE", "OBJECT_POISON")),
    ("slab limits and private statuses", None,
     ("KMALLOC_MAX_CACHE_SIZE", "KMALLOC_MAX_SIZE", "SHEAF_CAPACITY_MAX", "NR_KMALLOC_TYPES", "RANDOM_KMALLOC_CACHES_NR",
      "NR_KMALLOC_TABLE", "MAX_CACHES", "MAX_CPUS", "TRACK_SIZE",
      "PCP_THP_ORDER", "NR_LOWORDER_PCP_LISTS", "NR_PCP_LISTS", "PCP_BATCH_SCALE_MAX",
      "MIN_PERCPU_PAGELIST_HIGH_FRACTION", "PCPF_PREV_FREE_HIGH_ORDER", "PCPF_FREE_HIGH_BATCH",
      "MAX_SLAB_EVENTS", "ZERO_SIZE_STATUS", "EINVARIANT")),
    ("why a slab report is printed", None,
     tuple(n for n in globals() if n.startswith("SLAB_ERR_"))),
    ("pa_mm_fault() flags", None, ("FAULT_WRITE",)),
    ("a page entry of struct pa_mm: its states and bits", None,
     ("ENT_NONE", "ENT_PRESENT", "ENT_SWAP", "ENT_DISK", "ENT_DIRTY", "ENT_MLOCKED", "ENT_SHIFT")),
    ("reclaim's batch, priority scale and writeback throttle", None,
     ("SWAP_CLUSTER_MAX", "DEF_PRIORITY", "THROTTLE_WRITEBACK_US", "MAX_PAUSE_US", "CENTISEC_US")),
    ("the simulated cost of IO and migration, in us of the clock", None,
     ("WRITEBACK_US", "SWAP_OUT_US", "SWAP_IN_US", "READ_PAGE_US", "MIGRATE_US", "PSI_PERIOD_US")),
    ("working-set shadows and compaction deferral", None, ("EVICTION_BITS", "COMPACT_MAX_DEFER_SHIFT")),
    ("vm sysctls past the table, and madvise() advice (memory.c, sysctl.c)", None,
     ("VM_SYSCTL_MIN_FREE_KBYTES", "VM_SYSCTL_COMPACT_MEMORY", "VM_SYSCTL_DROP_CACHES", "VM_SYSCTL_READ",
      "MADV_DONTNEED", "MADV_COLD", "MADV_PAGEOUT")),
    ("operation streams: op kinds, object states, the record size", None,
     ("OP_KMALLOC", "OP_KFREE", "OP_KREALLOC", "OP_KMEM_CACHE_ALLOC", "OP_KMEM_CACHE_FREE", "OP_ALLOC_PAGES",
      "OP_FREE_PAGES", "OP_VMALLOC", "OP_VFREE", "OP_SPAWN", "OP_TOUCH", "OP_EXIT", "OP_READ_FILE",
      "OP_WRITE_FILE", "OP_SYNC", "OP_DROP_CACHES", "OP_CPU_CURRENT", "OBJ_NONE", "OBJ_LIVE", "OBJ_FREED",
      "EDEFER", "OP_RECORD_WORDS")),
    ("kmem trace events", None,
     ("TRACE_KMALLOC", "TRACE_KMEM_CACHE_ALLOC", "TRACE_KFREE", "TRACE_KMEM_CACHE_FREE", "TRACE_MM_PAGE_ALLOC",
      "TRACE_MM_PAGE_FREE")),
    ("reading a capture: record kinds, flags, limits", None,
     tuple(n for n in globals() if n.startswith("TPARSE_"))),
    ("snapshot walks", None, ("SNAP_EXHAUSTIVE",)),
    ("kernel threads on the simulated clock: reclaim costs, the kthread state words", None,
     ("SCAN_PAGE_US", "RECLAIM_PAGE_US", "KSWAPD_NAP_US", "NR_KTHREAD_INFO")),
    ("kernel options (bits of the kconfig word)", None,
     ("KCONFIG_SLUB_CPU_PARTIAL", "KCONFIG_SLAB_FREELIST_RANDOM", "KCONFIG_SLAB_FREELIST_HARDENED",
      "KCONFIG_RANDOM_KMALLOC_CACHES", "KCONFIG_MASK")),
)
C_DEFINES = ("MAX_IDLE_US", "PAGE_OFFSET", "DIRECT_MAP_SIZE", "VMALLOC_START", "VMALLOC_SIZE", "VMALLOC_END", "VMEMMAP_START",
             "ZERO_SIZE_PTR")
GENERATED_MARK = "generated from pyalloc/_abi.py by pyalloc/_build.py — do not edit"


def _enum(comment, tag, items) -> str:
    head = (f"/* {comment} */\n" if comment else "") + (f"enum {tag} {{\n" if tag else "enum {\n")
    return head + ",\n".join(f"    PA_{name} = {value}" for name, value in items) + "\n};\n"


def _c_body(cdef: bool) -> str:
    """The enums and defines; with *cdef*, the defines as cffi's ``#define X ...``."""
    g = globals()
    parts = [_enum(comment, tag, [(n, g[n]) for n in names]) for comment, tag, names in C_ENUMS]
    parts.append(_enum("reclaim counters and gauges, in the order of COUNTER_TABLE", None,
                       [("CTR_" + n.upper(), i) for i, n in enumerate(COUNTERS)] + [("NR_CTRS", NR_CTRS)]))
    parts.append(_enum("what the last allocating call cost, in the order of COSTS", None,
                       [("COST_" + n.upper(), i) for i, n in enumerate(COSTS)] + [("NR_COSTS", NR_COSTS)]))
    parts.append(_enum("vm sysctls: indexes of vm_sysctl[], in the order of VM_SYSCTLS", None,
                       [("SYSCTL_" + n.upper(), i) for i, (n, _, _, _) in enumerate(VM_SYSCTLS)]
                       + [("NR_VM_SYSCTLS", NR_VM_SYSCTLS)]))
    if not cdef:
        parts.append("/* the kmem events by every name the kernel printed them under (TRACE_EVENT_SPELLINGS) */\n"
                     "static const struct { const char *name; int kind, spelling; } pa_trace_event_spellings[] = {\n"
                     + "".join(f'    {{"{n}", {k}, {sp}}},\n' for n, k, sp in TRACE_EVENT_SPELLINGS) + "};\n")
        parts.append("/* vm sysctl defaults and bounds, in the order of VM_SYSCTLS */\n"
                     + "".join(f"static const int64_t pa_vm_sysctl_{col}[] = {{"
                               + ", ".join(str(row[k]) for row in VM_SYSCTLS) + "};\n"
                               for k, col in ((1, "default"), (2, "min"), (3, "max"))))
    parts.append("/* address layout: 64-bit, so not enums */\n" + "".join(
        f"#define PA_{n} ...\n" if cdef else f"#define PA_{n} {g[n]:#x}ull\n" for n in C_DEFINES))
    parts.append("const char *pa_build_version(void);\nconst char *pa_build_abi_hash(void);\n" if cdef else "")
    return "\n".join(parts)


def abi_hash() -> str:
    """A hash of everything the C core takes from this file."""
    return hashlib.sha256(_c_body(False).encode()).hexdigest()[:16]


def render_cdef() -> str:
    """The generated declarations as cffi's cdef takes them."""
    return _c_body(True)


def render_header() -> str:
    """csrc/pa_abi_gen.h."""
    return (f"/* pa_abi_gen.h - {GENERATED_MARK}. */\n"
            "#ifndef PA_ABI_GEN_H\n#define PA_ABI_GEN_H\n\n"
            + _c_body(False)
            + "\n/* what pyalloc._cbackend compares at import: a core built from another _abi.py is stale */\n"
            f'static inline const char *pa_build_version(void) {{ return "{__version__}"; }}\n'
            f'static inline const char *pa_build_abi_hash(void) {{ return "{abi_hash()}"; }}\n'
            "\n#endif\n")
