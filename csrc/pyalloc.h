/*
 * pyalloc.h - the whole C API of the pyalloc core, as cffi sees it.
 *
 * The region between the PA_CDEF markers is fed to cffi's cdef() verbatim,
 * so it holds only plain declarations: no #if, no macros with expressions.
 * Constants are enums so the compiler, not cffi, supplies every number.
 *
 * Conventions: every function takes the machine first and answers with a
 * status (PA_OK or a negative code) or, for allocators, a non-negative result
 * or a negative status.  Every argument is validated here: the caller is
 * never trusted, and nothing here prints, aborts or calls back.
 *
 * Glossary: pfn = page frame number (physical address >> 12); order = log2 of
 * a block's size in pages; mt = migratetype; zid = zone index;
 * wmark = watermark; gfp = the kernel's allocation flags (a 32-bit mask).
 */
#ifndef PYALLOC_H
#define PYALLOC_H

#include <stddef.h>
#include <stdint.h>

/* PA_CDEF_BEGIN */
typedef struct pa_machine pa_machine;

enum {
    PA_ABI_VERSION = 4
};

/* status codes: errno values where Linux has one */
enum pa_status {
    PA_OK = 0,
    PA_E2BIG = -7,          /* larger than the allocator can ever serve */
    PA_ENOMEM = -12,        /* cannot be met now */
    PA_EFAULT = -14,        /* access outside mapped memory */
    PA_EBUSY = -16,         /* still in use */
    PA_EINVAL = -22,        /* bad argument */
    PA_EDOUBLEFREE = -1001, /* freeing something that is free right now */
    PA_EINVALFREE = -1002,  /* freeing something that is not a live allocation's start */
    PA_ECORRUPT = -1003,    /* debug checks found damage */
    PA_EOOM = -1005,        /* failed, and the OOM killer should run (the caller's job) */
    PA_ECLOSED = -1006      /* the machine was closed (pa_machine_close) */
};

enum {
    PA_PAGE_SHIFT = 12,
    PA_PAGE_SIZE = 4096,
    PA_MAX_PAGE_ORDER = 10,
    PA_NR_PAGE_ORDERS = 11,
    PA_PAGEBLOCK_ORDER = 9,
    PA_MIGRATE_TYPES = 5,
    PA_MAX_NR_ZONES = 5,
    PA_MIN_PAGES = 256,
    PA_MAX_PAGES = 1073741824
};

/* page_state() answers */
enum {
    PA_PAGE_STATE_ALLOCATED = 1,
    PA_PAGE_STATE_INTERIOR = 2,
    PA_PAGE_STATE_FREE = 3,
    PA_PAGE_STATE_OUT_OF_RANGE = 4
};

/* page descriptor flags */
enum {
    PA_PG_BUDDY = 0x01,
    PA_PG_ALLOC = 0x02,
    PA_PG_HEAD = 0x04,
    PA_PG_FREED = 0x08,
    PA_PG_MOVABLE = 0x10,
    PA_PG_LRU = 0x20,
    PA_PG_ACTIVE = 0x40,
    PA_PG_REFERENCED = 0x80
};

enum {
    PA_KIND_PAGES = 1,
    PA_KIND_SLAB = 2,
    PA_KIND_LARGE_KMALLOC = 3,
    PA_KIND_VMALLOC = 4,
    PA_KIND_PGTABLE = 5,
    PA_KIND_ANON = 6,       /* a process's anonymous page, on an LRU list */
    PA_KIND_FILE = 7        /* a page cache page, on an LRU list */
};

/* x86-64 page table entry bits and the protections vmalloc uses */
enum {
    PA_PTE_PRESENT = 0x1,
    PA_KERNPG_TABLE = 0x63
};

/* slab cache flags: pyalloc's own values, the kernel's names */
enum {
    PA_SLAB_HWCACHE_ALIGN = 0x1,
    PA_SLAB_POISON = 0x2,
    PA_SLAB_RED_ZONE = 0x4,
    PA_SLAB_STORE_USER = 0x8,
    PA_SLAB_RECLAIM_ACCOUNT = 0x10,
    PA_SLAB_ACCOUNT = 0x20,
    PA_SLAB_CACHE_DMA = 0x40,
    PA_SLAB_CACHE_DMA32 = 0x80,
    PA_SLAB_PANIC = 0x100,
    PA_SLAB_CONSISTENCY_CHECKS = 0x200,
    PA_SLAB_TRACE = 0x400,
    PA_SLAB_KMALLOC = 0x800,
    PA_SLAB_NO_MERGE = 0x1000,
    PA_OBJECT_POISON = 0x2000
};

enum {
    PA_KMALLOC_MAX_CACHE_SIZE = 8192,
    PA_KMALLOC_MAX_SIZE = 4194304,
    PA_NR_KMALLOC_TYPES = 4,
    PA_MAX_CACHES = 4096,
    PA_MAX_CPUS = 4096,
    PA_TRACK_SIZE = 32,
    PA_MAX_SLAB_EVENTS = 16,
    PA_ZERO_SIZE_STATUS = -2000,
    PA_EINVARIANT = -1004
};

/* why a slab report is printed */
enum {
    PA_SLAB_ERR_LEFT_REDZONE = 1,
    PA_SLAB_ERR_RIGHT_REDZONE = 2,
    PA_SLAB_ERR_KMALLOC_REDZONE = 3,
    PA_SLAB_ERR_POISON = 4,
    PA_SLAB_ERR_END_POISON = 5,
    PA_SLAB_ERR_OBJECT_PADDING = 6,
    PA_SLAB_ERR_ALIGN_PADDING = 7,
    PA_SLAB_ERR_SLAB_PADDING = 8,
    PA_SLAB_ERR_FREEPOINTER = 9,
    PA_SLAB_ERR_ALREADY_FREE = 10,
    PA_SLAB_ERR_INVALID_POINTER = 11,
    PA_SLAB_ERR_WRONG_CACHE = 12,
    PA_SLAB_ERR_NOT_SLAB = 13,
    PA_SLAB_ERR_OBJECTS_REMAINING = 14,
    PA_SLAB_ERR_NEVER_ALLOCATED = 15,
    PA_SLAB_ERR_PINNED = 16             /* the object belongs to a vmalloc area (its page array) */
};

/* reclaim counters and gauges, in the order of pyalloc/vmevents.py COUNTERS */
enum {
    PA_CTR_PGPGIN = 0,
    PA_CTR_PGPGOUT,
    PA_CTR_PSWPIN,
    PA_CTR_PSWPOUT,
    PA_CTR_PGFAULT,
    PA_CTR_PGMAJFAULT,
    PA_CTR_PGACTIVATE,
    PA_CTR_PGDEACTIVATE,
    PA_CTR_PGREFILL,
    PA_CTR_PGROTATED,
    PA_CTR_PGSTEAL_KSWAPD,
    PA_CTR_PGSTEAL_DIRECT,
    PA_CTR_PGSCAN_KSWAPD,
    PA_CTR_PGSCAN_DIRECT,
    PA_CTR_PGSCAN_ANON,
    PA_CTR_PGSCAN_FILE,
    PA_CTR_PGSTEAL_ANON,
    PA_CTR_PGSTEAL_FILE,
    PA_CTR_ALLOCSTALL_DMA,
    PA_CTR_ALLOCSTALL_DMA32,
    PA_CTR_ALLOCSTALL_NORMAL,
    PA_CTR_ALLOCSTALL_MOVABLE,
    PA_CTR_ALLOCSTALL_DEVICE,
    PA_CTR_PAGEOUTRUN,
    PA_CTR_KSWAPD_LOW_WMARK_HIT_QUICKLY,
    PA_CTR_KSWAPD_HIGH_WMARK_HIT_QUICKLY,
    PA_CTR_NR_WRITTEN,
    PA_CTR_NR_DIRTIED,
    PA_CTR_NR_VMSCAN_WRITE,
    PA_CTR_DROP_PAGECACHE,
    PA_CTR_COMPACT_MIGRATE_SCANNED,
    PA_CTR_COMPACT_FREE_SCANNED,
    PA_CTR_COMPACT_ISOLATED,
    PA_CTR_COMPACT_STALL,
    PA_CTR_COMPACT_FAIL,
    PA_CTR_COMPACT_SUCCESS,
    PA_CTR_PGMIGRATE_SUCCESS,
    PA_CTR_OOM_KILL,
    PA_CTR_WORKINGSET_REFAULT_ANON,
    PA_CTR_WORKINGSET_REFAULT_FILE,
    PA_CTR_NR_INACTIVE_ANON,
    PA_CTR_NR_ACTIVE_ANON,
    PA_CTR_NR_INACTIVE_FILE,
    PA_CTR_NR_ACTIVE_FILE,
    PA_CTR_NR_DIRTY,
    PA_CTR_NR_SWAP_PAGES,
    PA_CTR_NR_SWAP_FREE,
    PA_CTR_KSWAPD_FAILURES,
    PA_CTR_PSI_TOTAL_US,
    PA_CTR_PSI_PERIOD,
    PA_CTR_PSI_PERIOD_STALL_US,
    PA_CTR_PSI_AVG10,
    PA_CTR_PSI_AVG60,
    PA_CTR_PSI_AVG300,
    PA_NR_CTRS
};

/* what the last allocating call cost, in the order of pyalloc/vmevents.py COSTS */
enum {
    PA_COST_SEQ = 0,
    PA_COST_SLEPT,
    PA_COST_SCANNED,
    PA_COST_RECLAIMED,
    PA_COST_WRITTEN_BACK,
    PA_COST_SWAPPED_OUT,
    PA_COST_COMPACTED,
    PA_COST_RESERVES,
    PA_COST_KSWAPD_WOKEN,
    PA_COST_STALL_US,
    PA_COST_OOM_NEEDED,
    PA_COST_OOM_GFP,
    PA_COST_OOM_ORDER,
    PA_NR_COSTS
};

/* struct pa_mm_info: one process's or file's memory */
struct pa_mm_info {
    int32_t alive, is_file;
    uint64_t nr_pages;      /* process: pages touched; file: size in pages */
    uint64_t size;          /* file: size in bytes */
    uint64_t rss;           /* pages in memory */
    uint64_t swapents;      /* pages on swap (processes) */
    uint64_t nr_dirty;      /* dirty pages in the cache (files) */
    uint64_t pgtables_bytes;
};

/* pa_mm_fault() flags */
enum {
    PA_FAULT_WRITE = 1      /* the access dirties the page (file pages become dirty) */
};

struct pa_slab_event {
    int32_t reason;     /* PA_SLAB_ERR_* */
    int32_t cache;      /* cache id, or -1 */
    int64_t slab;       /* phys address of the slab, -1 if none */
    int64_t object;     /* phys address of the object or pointer concerned */
    int64_t start, end; /* damaged bytes [start, end), phys */
    int32_t expected, found;
};

struct pa_cache_info {
    uint32_t flags, object_size, size, align, order, objects, offset, inuse, red_left_pad, min_order;
    uint64_t nr_slabs, total_objects, active_objects;
    uint32_t refcount, allocflags;
    uint64_t live;
};

struct pa_page_state {
    int32_t state;      /* PA_PAGE_STATE_* */
    int64_t head;       /* first pfn of the block that holds the page */
    int32_t order;      /* that block's order */
    int32_t kind;       /* PA_KIND_* of a live allocation */
    int32_t flags;      /* PA_PG_* of the page itself (FREE) or of the head */
    int32_t refcount;   /* the head's reference count */
};

/* one zone's counters, copied out for /proc */
struct pa_zone_info {
    uint64_t start_pfn, spanned, present, managed;
    uint64_t wmark[4];                  /* min, low, high, promo */
    uint64_t lowmem_reserve[5];
    uint64_t nr_free_pages;
    uint64_t nr_free_blocks_pages;      /* free pages in blocks >= pageblock order */
    uint64_t nr_reserved_highatomic;
    uint64_t nr_free[11][5];            /* free blocks per order and migratetype */
    uint64_t pageblocks[5];             /* pageblocks per migratetype */
    uint64_t pgalloc;                   /* pages handed out from this zone */
    uint64_t numa_hit;                  /* allocations served by this zone */
    uint64_t nr_lru[4];                 /* LRU pages of this zone, by enum lru_list */
    uint64_t nr_dirty;                  /* dirty file pages of this zone (write_pending) */
};

/* machine-wide counters */
struct pa_vm_info {
    uint64_t nr_pages;
    uint64_t min_free_kbytes;
    uint64_t pgfree;                    /* pages freed */
    uint64_t ticks;                     /* operations done: the simulated clock */
    uint64_t slowpath_entries;          /* allocations that missed the fast path */
    uint64_t nr_slab_reclaimable;       /* pages */
    uint64_t nr_slab_unreclaimable;     /* pages, kmalloc_large included */
    uint64_t gfp_fixups;                /* slab requests whose gfp had to be fixed up */
    int64_t last_cache;                 /* cache of the last slab allocation (-1: kmalloc_large) */
    uint64_t slab_fallback_gfp;         /* gfp of the last min-order slab page attempt */
    int64_t cpu;                        /* the simulated current CPU */
    uint64_t nr_page_table_pages;       /* PUD and PMD pages (kernel PTE pages are not counted) */
    uint64_t nr_pgtable_pages_all;      /* every table page taken from the buddy allocator */
    uint64_t vmalloc_pages;             /* pages mapped by vmalloc */
};

int pa_abi_version(void);
int pa_machine_new(int64_t nr_pages, int64_t cpus, int64_t min_free_kbytes, pa_machine **out);
int pa_machine_close(pa_machine *m);
void pa_machine_free(pa_machine *m);

int64_t pa_alloc_pages(pa_machine *m, int64_t gfp, int64_t order);
int pa_free_pages(pa_machine *m, int64_t pfn, int64_t order);
int pa_page_state(pa_machine *m, int64_t pfn, struct pa_page_state *out);

int pa_read(pa_machine *m, int64_t phys, int64_t n, unsigned char *out);
int pa_write(pa_machine *m, int64_t phys, const unsigned char *data, int64_t n);
int pa_memset(pa_machine *m, int64_t phys, int64_t byte, int64_t n);

int pa_set_cpu(pa_machine *m, int64_t cpu);
int pa_set_slab_merge(pa_machine *m, int64_t on);

int64_t pa_kmem_cache_create(pa_machine *m, int64_t size, int64_t align, int64_t flags);
int pa_kmalloc_register(pa_machine *m, int64_t type, int64_t index, int64_t cache);
int64_t pa_kmem_cache_alloc(pa_machine *m, int64_t cache, int64_t gfp, int64_t caller);
int pa_kmem_cache_free(pa_machine *m, int64_t cache, int64_t phys, int64_t caller);
int pa_kmem_cache_shrink(pa_machine *m, int64_t cache);
int pa_kmem_cache_destroy(pa_machine *m, int64_t cache);
int pa_cache_info(pa_machine *m, int64_t cache, struct pa_cache_info *out);
int64_t pa_kmalloc(pa_machine *m, int64_t size, int64_t gfp, int64_t caller);
int pa_kfree(pa_machine *m, int64_t phys, int64_t caller);
int64_t pa_ksize(pa_machine *m, int64_t phys);
int pa_take_events(pa_machine *m, struct pa_slab_event *out, int64_t max);
int pa_slab_info(pa_machine *m, int64_t slab_phys, int64_t *out4);
int pa_slab_pin(pa_machine *m, int64_t phys, int64_t op);

/* 4-level page tables of init_mm (pgtable.c); vaddr is a kernel virtual
 * address given as its two's-complement int64 */
int pa_vmalloc_pages(pa_machine *m, int64_t vaddr, int64_t nr_pages, int64_t gfp, int64_t *pfns);
int pa_vmap_pages(pa_machine *m, int64_t vaddr, int64_t nr_pages, const int64_t *pfns);
int pa_vunmap_pages(pa_machine *m, int64_t vaddr, int64_t nr_pages);
int pa_free_vmalloc_pages(pa_machine *m, const int64_t *pfns, int64_t nr_pages);
int64_t pa_walk(pa_machine *m, int64_t vaddr);
int64_t pa_pte(pa_machine *m, int64_t vaddr);

/* reclaim.c: processes, files, swap, LRU, kswapd, the OOM killer's victims */
int pa_set_swap(pa_machine *m, int64_t nr_pages);
int64_t pa_mm_new(pa_machine *m, int64_t is_file);
int pa_mm_release(pa_machine *m, int64_t id);
int pa_mm_fault(pa_machine *m, int64_t id, int64_t start, int64_t nr, int64_t gfp, int64_t flags, int64_t *done);
int pa_mm_rw(pa_machine *m, int64_t id, int64_t offset, int64_t n, unsigned char *buf, int64_t write, int64_t gfp);
int pa_mm_info(pa_machine *m, int64_t id, struct pa_mm_info *out);
int pa_sync(pa_machine *m);
int64_t pa_drop_caches(pa_machine *m);
int pa_counters(pa_machine *m, uint64_t *out, int64_t n);
int pa_last_cost(pa_machine *m, uint64_t *out, int64_t n);
int pa_set_oom_mode(pa_machine *m, int64_t mode);
/* read-only walks (introspect.c), for drgn-style helpers and /sys/kernel/slab */
struct pa_slab_view {
    int64_t cache;                      /* cache id */
    int32_t order, objects, inuse;
    int32_t frozen, on_partial;         /* some cpu's active slab; on the node partial list */
    int32_t cpu;                        /* the cpu whose active slab it is, or -1 */
};
int64_t pa_slab_pfns(pa_machine *m, int64_t cache, int64_t *out, int64_t max);
int pa_slab_view(pa_machine *m, int64_t pfn, struct pa_slab_view *out, uint8_t *states, int64_t max);
int pa_pageblock_mt(pa_machine *m, int64_t first, int64_t nr, uint8_t *out);
/* operation streams (stream.c) */
enum {
    PA_OP_KMALLOC = 1,          /* arg = size */
    PA_OP_KFREE = 2,            /* handle */
    PA_OP_KREALLOC = 3,         /* handle (-1: NULL), arg = new size */
    PA_OP_KMEM_CACHE_ALLOC = 4, /* cache */
    PA_OP_KMEM_CACHE_FREE = 5,  /* cache, handle */
    PA_OP_ALLOC_PAGES = 6,      /* arg = order */
    PA_OP_FREE_PAGES = 7,       /* handle, arg = order */
    PA_OP_VMALLOC = 8,          /* arg = size; done by Python (PA_EDEFER) */
    PA_OP_VFREE = 9,            /* handle; done by Python */
    /* processes and files: done by Python through the per-call API (PA_EDEFER) */
    PA_OP_SPAWN = 32,           /* name index in cache; result: pid */
    PA_OP_TOUCH = 33,           /* handle: the spawn; arg = pages; result: pages got */
    PA_OP_EXIT = 34,            /* handle: the spawn */
    PA_OP_READ_FILE = 35,       /* path index in cache; arg = pages; result: pages got */
    PA_OP_WRITE_FILE = 36,
    PA_OP_SYNC = 37,
    PA_OP_DROP_CACHES = 38,     /* result: pages dropped */
    PA_OP_CPU_CURRENT = 65535,
    PA_OBJ_NONE = 0,
    PA_OBJ_LIVE = 1,
    PA_OBJ_FREED = 2,
    PA_EDEFER = -1100           /* the stream loop leaves this op to Python */
};

struct pa_op {
    uint16_t kind;      /* PA_OP_* */
    uint16_t cpu;       /* simulated CPU, or PA_OP_CPU_CURRENT */
    uint32_t gfp;
    uint32_t caller;    /* index into pa_run.callers (0: no caller) */
    int32_t cache;      /* index into pa_run.caches, or -1 */
    int64_t handle;     /* index of the op that allocated what this op frees; -1: NULL */
    int64_t arg;        /* size in bytes, or order */
};

struct pa_run {
    const struct pa_op *ops;
    int64_t *results;       /* per op: phys address or pfn (>= 0), or a status */
    uint8_t *state;         /* per op: PA_OBJ_* of the object it allocated */
    const int64_t *callers; /* stream caller index -> the machine's caller id */
    const int64_t *caches;  /* stream cache index -> core cache id */
    int64_t nr_ops, nr_callers, nr_caches;
    int64_t pos;            /* in: the first op to run; out: where the loop stopped */
    int64_t trace_limit;    /* pause with PA_OK once this many trace records wait (0: never) */
    int64_t nr_results;     /* entries in results and in state: each must hold nr_ops, */
    int64_t nr_state;       /* or the loop refuses the run (PA_EINVAL) before the first op */
};

int pa_stream_run(pa_machine *m, struct pa_run *run);

/* kmem tracepoints (trace.c) */
int pa_trace_start(pa_machine *m, const char *comm, int64_t pid);
int pa_trace_stop(pa_machine *m);
int pa_trace_gfp_name(pa_machine *m, int64_t mask, const char *name);
int pa_trace_name(pa_machine *m, int64_t what, int64_t id, const char *name);
int pa_trace_kfree(pa_machine *m, int64_t vaddr, int64_t caller);
int64_t pa_trace_pending(pa_machine *m);
int64_t pa_trace_lost(pa_machine *m);
int64_t pa_trace_take(pa_machine *m, char *out, int64_t max);

int pa_zone_info(pa_machine *m, int64_t zid, struct pa_zone_info *out);
int pa_vm_info(pa_machine *m, struct pa_vm_info *out);
int pa_check(pa_machine *m, char *msg, int64_t msglen);
/* snapshot.c: the canonical core section (format: pyalloc/model/snapshot.py) and touched memory;
 * flags PA_SNAP_EXHAUSTIVE: look at every page, not only those mincore() calls resident */
enum { PA_SNAP_EXHAUSTIVE = 1 };
int64_t pa_snapshot_save(pa_machine *m, uint8_t *buf, int64_t cap, int64_t flags);
int pa_snapshot_load(pa_machine *m, const uint8_t *buf, int64_t len);
int64_t pa_snapshot_take(pa_machine *m, uint8_t **out, int64_t flags);
void pa_snapshot_release(uint8_t *buf);
int pa_snapshot_check(pa_machine *m, char *msg, int64_t msglen);
int64_t pa_snapshot_pages(pa_machine *m, int64_t start_pfn, int64_t *pfns, uint8_t *buf, int64_t max,
                          int64_t *next, int64_t flags);
int pa_snapshot_put_pages(pa_machine *m, const int64_t *pfns, const uint8_t *buf, int64_t n);
/* PA_CDEF_END */

#endif
