/*
 * internal.h - types and cross-file functions of the pyalloc core.
 *
 * Glossary (see also pyalloc.h): NIL = no pfn (end of a list); pristine =
 * whole order-10 blocks never touched since boot, free but not linked (see
 * arena.c); kind = which free function may release a live allocation.
 */
#ifndef PYALLOC_INTERNAL_H
#define PYALLOC_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "prandom.h"
#include "pyalloc.h"

#define PA_NIL UINT32_MAX
#define PAGEBLOCK_NR_PAGES (1u << PA_PAGEBLOCK_ORDER)
#define PAGE_ALLOC_COSTLY_ORDER 3

#define pa_likely(x) __builtin_expect(!!(x), 1)
#define pa_unlikely(x) __builtin_expect(!!(x), 0)

enum { MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_HIGHATOMIC, MIGRATE_ISOLATE };
#define MIGRATE_PCPTYPES 3
enum { ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE };
#define DMA_END_PFN (1u << 12)
#define DMA32_END_PFN (1u << 20)

/* alloc_flags, as mm/internal.h numbers them */
#define ALLOC_WMARK_MIN 0x00
#define ALLOC_WMARK_LOW 0x01
#define ALLOC_WMARK_HIGH 0x02
#define ALLOC_NO_WATERMARKS 0x04
#define ALLOC_WMARK_MASK (ALLOC_NO_WATERMARKS - 1)
#define ALLOC_OOM 0x08
#define ALLOC_NON_BLOCK 0x10
#define ALLOC_MIN_RESERVE 0x20
#define ALLOC_CPUSET 0x40
#define ALLOC_HIGHATOMIC 0x200
#define ALLOC_KSWAPD 0x800
#define ALLOC_RESERVES (ALLOC_NON_BLOCK | ALLOC_MIN_RESERVE | ALLOC_HIGHATOMIC | ALLOC_OOM)

/* the gfp bits the core reads (include/linux/gfp_types.h) */
#define GFP_HIGH_BIT 0x20u
#define GFP_IO_BIT 0x40u
#define GFP_FS_BIT 0x80u
#define GFP_ZERO_BIT 0x100u
#define GFP_DIRECT_RECLAIM_BIT 0x400u
#define GFP_KSWAPD_RECLAIM_BIT 0x800u
#define GFP_WRITE_BIT 0x1000u
#define GFP_RETRY_MAYFAIL_BIT 0x4000u
#define GFP_NOFAIL_BIT 0x8000u
#define GFP_NORETRY_BIT 0x10000u
#define GFP_MEMALLOC_BIT 0x20000u
#define GFP_COMP_BIT 0x40000u
#define GFP_NOMEMALLOC_BIT 0x80000u
#define GFP_THISNODE_BIT 0x200000u
#define GFP_BITS_MASK 0x1ffffffu

/* One page descriptor: 16 bytes; all zero means "never touched".  The zone
 * is not stored: as the kernel's page_zonenum(), it follows from the pfn. */
struct pa_page {
    uint32_t next;      /* free-list links, as pfns (PA_NIL ends a list) */
    uint32_t prev;
    uint32_t priv;      /* owner-specific word (slab, vmalloc) */
    uint8_t flags;      /* PA_PG_* */
    uint8_t order;      /* order of the free block or live allocation it heads */
    uint8_t kind;       /* PA_KIND_* of a live allocation */
    uint8_t refcount;   /* 1 on the head of a live allocation, else 0 (no get_page yet) */
};

struct pa_zone {
    uint64_t start_pfn, end_pfn;        /* [start, end); both 0 when empty */
    uint64_t managed;
    uint64_t pristine_next, pristine_end;   /* untouched whole order-10 blocks */
    uint32_t head[PA_NR_PAGE_ORDERS][PA_MIGRATE_TYPES];   /* free_area[o].free_list[mt] */
    uint32_t tail[PA_NR_PAGE_ORDERS][PA_MIGRATE_TYPES];
    uint64_t nr_free[PA_NR_PAGE_ORDERS][PA_MIGRATE_TYPES]; /* blocks, pristine included */
    uint64_t nr_free_mt_pages[PA_MIGRATE_TYPES];
    uint64_t nr_free_pages;
    uint64_t nr_free_blocks_pages;      /* pages in free blocks >= pageblock order */
    uint64_t nr_reserved_highatomic;
    uint64_t wmark[4];                  /* min, low, high, promo */
    uint64_t lowmem_reserve[PA_MAX_NR_ZONES];
    uint64_t pageblocks[PA_MIGRATE_TYPES];
    uint64_t pgalloc, numa_hit;
    uint64_t nr_lru[4];                 /* LRU pages in this zone, by enum lru_list */
    uint64_t nr_unevictable;            /* pages on LRU_UNEVICTABLE (mlock.c) */
    uint64_t nr_dirty;
    uint8_t below_high;                 /* ZONE_BELOW_HIGH: free pages fell under the high mark */
};

/* struct per_cpu_pages of one zone on one CPU (pcp.c); the lists are threaded
 * through the page descriptors' next/prev like the buddy's free lists */
struct pa_pcp {
    int32_t count;                      /* pages on all lists */
    int32_t high, batch, high_min, high_max;
    int32_t free_count;                 /* pages freed in a row, shrunk by allocations */
    uint8_t flags;                      /* PCPF_* */
    uint8_t alloc_factor;               /* batch scale for refills (order 0) */
    uint32_t head[PA_NR_PCP_LISTS], tail[PA_NR_PCP_LISTS];
};

#define SLOT_NIL 0xffffu

struct pa_cpu_slab {
    uint32_t slab;                      /* slab id of the active slab, or PA_NIL */
    uint32_t freelist;                  /* first slot of the lockless freelist, or SLOT_NIL */
    uint32_t partial;                   /* first slab of the cpu partial chain (slub_percpu_partial), or PA_NIL */
};

/* sheaf.c: a sheaf holds objects as (slab id << 16 | slot), the top at objects[size - 1] */
struct pa_sheaf {
    struct pa_sheaf *next;              /* barn list link */
    uint32_t size;
    uint64_t objects[];                 /* sheaf_capacity of them */
};

struct pa_pcs {                         /* struct slub_percpu_sheaves */
    struct pa_sheaf *main;              /* never NULL */
    struct pa_sheaf *spare;             /* NULL, empty or full */
};

struct pa_barn {                        /* struct node_barn: both lists LIFO (list_add, list_first_entry) */
    struct pa_sheaf *full, *empty;
    uint32_t nr_full, nr_empty;
};

/* one slab: the kernel keeps this in the head page's struct slab */
struct pa_slab {
    uint32_t pfn;                       /* head page */
    uint32_t cache;
    uint16_t objects, inuse;
    uint16_t freelist;                  /* first slot of the slab's own freelist */
    uint8_t order, frozen, on_partial, used;
    uint32_t prev, next;                /* partial list links (slab ids) */
    uint16_t *chain;                    /* next free slot of each free slot */
    uint8_t *state;                     /* OBJ_* per slot */
    uint32_t slabs;                     /* on a cpu partial chain: its length from here (slab->slabs); else 0 */
};

struct pa_cache {
    uint32_t alive;
    uint32_t flags;
    uint32_t object_size, size, align, inuse, offset, red_left_pad;
    uint32_t order, objects, min_order, min_objects, min_partial;
    uint32_t refcount, allocflags;
    uint64_t seq;                       /* creation order: merging prefers the oldest */
    uint32_t partial_head, partial_tail;    /* node partial list (slab ids) */
    uint64_t nr_partial;
    uint64_t nr_slabs, total_objects, live;
    struct pa_cpu_slab *cpu;            /* one per simulated CPU */
    /* slab_random.c */
    uint64_t random;                    /* SLAB_FREELIST_HARDENED: s->random, 0 without it */
    uint32_t *random_seq;               /* SLAB_FREELIST_RANDOM: a permutation of 0..objects-1, or NULL */
    uint32_t cpu_partial;               /* set_cpu_partial(): objects kept on a cpu partial list */
    uint32_t cpu_partial_slabs;         /* slub_set_cpu_partial(): the same in slabs */
    uint32_t sheaf_capacity;            /* 0: no sheaves (sheaf.c) */
    struct pa_pcs *pcs;                 /* one per simulated CPU, NULL without sheaves */
    struct pa_barn barn;                /* the node's barn (one node) */
};

enum lru_list { LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE, NR_LRU_LISTS };
/* The kernel's fifth list (mlock.c).  NR_LRU_LISTS above counts the evictable
 * lists only (the kernel's for_each_evictable_lru()), so every loop over it is
 * one reclaim may scan and the snapshot's reclaim section keeps its layout. */
#define LRU_UNEVICTABLE NR_LRU_LISTS

/* an LRU list, threaded through the page descriptors' next/prev: new pages
 * go to the head, reclaim takes from the tail (the oldest) */
struct pa_lru {
    uint32_t head, tail;
};

/* One process's anonymous memory, or one file's page cache: an array of
 * entries, one per page (see reclaim.c for their encoding). */
struct pa_mm {
    uint8_t alive, is_file;
    uint64_t nr_pages;                  /* process: pages touched; file: size in pages */
    uint64_t size;                      /* file: bytes */
    uint64_t cap;
    uint64_t *ent;
    uint8_t **disk;                     /* file: contents on the simulated disk, NULL = zeros */
    uint64_t rss, swapents, nr_dirty;
    uint64_t dirtied_when;              /* file: inode->dirtied_when, the clock when it last went dirty */
    uint64_t wb_index;                  /* file: mapping->writeback_index, where the flusher resumes */
};

/* The flusher thread of the one bdi_writeback (page_writeback.c), on the simulated clock */
struct pa_wb {
    uint64_t clock;                     /* the flusher's own time: its work before this is done */
    uint64_t last_old_flush;            /* wb->last_old_flush: the last kupdate run */
    uint64_t cutoff;                    /* the running kupdate work writes inodes dirtied up to here */
    uint64_t start_all;                 /* pages left of a wakeup_flusher_threads() work (WB_start_all) */
    uint32_t kupdate;                   /* a kupdate (for_kupdate) work is running */
    uint32_t throttled;                 /* a reclaimer sleeps in reclaim_throttle(): not saved, one call */
};

/* the machine lock (lock.c): a test-and-set spin lock that remembers its owner */
struct pa_lock {
    atomic_uint word;                   /* 1 while held */
    atomic_uintptr_t owner;             /* pthread_self() of the holder, 0 when free */
    uint32_t depth;                     /* nested entries by the holder (written by it alone) */
};

/* kthread.c: the kernel threads that run on the simulated clock beside the
 * caller.  kswapd is in the middle of balance_pgdat() while priority is set;
 * its loop state lives here so it can stop between two SWAP_CLUSTER_MAX
 * batches when it has used up the time the caller gave it.  The words are in
 * the order of _abi.KTHREAD_INFO. */
struct pa_kswapd {
    uint64_t clock;                     /* kswapd has worked up to here */
    uint64_t nap_until;                 /* kswapd_try_to_sleep()'s HZ/10 nap ends here; 0: no nap */
    uint64_t nr[NR_LRU_LISTS];          /* shrink_node()'s scan counts left at this priority */
    uint64_t round_reclaimed;           /* reclaimed at this priority (against nr_to_reclaim) */
    uint64_t run_reclaimed;             /* reclaimed in this balance_pgdat() run */
    uint64_t priority;                  /* balance_pgdat()'s; 0: no run under way */
    uint64_t in_round;                  /* nr[] holds the counts of the round at priority */
};

struct pa_kthreads {
    struct pa_kswapd kswapd;
    uint64_t psi_some[6];               /* PSI memory "some": total, period, its stall, avg10/60/300 */
    uint64_t psi_some_until;            /* "some" is accounted up to here: overlaps count once */
};

struct pa_machine {
    struct pa_lock lock;                /* taken by every pa_* entry (PA_ENTRY below) */
    uint32_t closed;                    /* pa_machine_close() ran: entries answer PA_ECLOSED */
    uint64_t nr_pages;
    uint32_t cpus;
    uint64_t min_free_kbytes;
    uint64_t vm_sysctl[PA_NR_VM_SYSCTLS]; /* vm sysctls, in the order of _abi.VM_SYSCTLS */
    uint32_t drop_caches_stfu;          /* a write of 4 to drop_caches silenced its pr_info (sysctl.c) */
    unsigned char *mem;                 /* the simulated bytes, phys 0 at mem[0] */
    struct pa_page *pages;              /* one descriptor per pfn, lazily touched */
    uint64_t *touched;                  /* a bit per pfn: the page may hold non-zero bytes (arena.c) */
    uint8_t *pageblock_mt;              /* migratetype per pageblock */
    uint64_t nr_pageblocks;
    struct pa_zone zones[PA_MAX_NR_ZONES];
    struct pa_pcp *pcp[PA_MAX_NR_ZONES];    /* cpus entries each (pcp.c) */
    uint64_t pgfree;
    uint64_t ticks;
    uint64_t slowpath_entries;
    uint32_t cpu;                       /* the simulated current CPU */
    uint64_t seed;                      /* every random choice starts here (prandom.h) */
    uint64_t kconfig;                   /* PA_KCONFIG_* bits: the kernel options in force */
    uint64_t rand_state;                /* the random stream's position */
    /* slab.c */
    uint32_t slab_merge;
    struct pa_cache *caches;            /* by id */
    uint32_t nr_caches;                 /* ids handed out so far */
    uint64_t cache_seq;
    int32_t kmalloc_caches[PA_NR_KMALLOC_TABLE][14]; /* the kmalloc-rnd-NN copies after the four types */
    struct pa_slab *slabs;              /* by slab id */
    uint32_t nr_slab_ids, cap_slab_ids;
    uint32_t *free_slab_ids;
    uint32_t nr_free_slab_ids;
    struct pa_slab_event events[PA_MAX_SLAB_EVENTS];
    uint32_t nr_events;
    uint64_t nr_slab_reclaimable, nr_slab_unreclaimable;
    uint64_t gfp_fixups;
    int64_t last_cache;
    uint64_t slab_fallback_gfp;
    /* pgtable.c: init_mm's PGD lives here (swapper_pg_dir is not a buddy page) */
    uint64_t pgd[512];
    uint64_t nr_page_table_pages, nr_pgtable_pages_all, vmalloc_pages;
    /* reclaim.c */
    struct pa_lru lru[NR_LRU_LISTS + 1];        /* LRU_UNEVICTABLE last */
    uint32_t *pg_index;                 /* per pfn: page index inside its mm (LRU pages) */
    struct pa_mm *mms;                  /* by id; a page's priv names its mm */
    uint32_t nr_mms, cap_mms;
    unsigned char *swap;                /* the swap device's bytes */
    uint64_t swap_pages, swap_next;     /* slots handed out so far never reach swap_next */
    uint32_t *swap_free;                /* freed slots, a stack */
    uint64_t nr_swap_free_stack;
    uint64_t ctr[PA_NR_CTRS];
    uint64_t cost[PA_NR_COSTS];
    uint64_t alloc_seq;                 /* allocating calls so far: cost[] belongs to one */
    uint32_t kswapd_wanted, kswapd_order, kswapd_highest;
    uint32_t oom_mode;                  /* 1: the OOM killer has no victim, do not ask again */
    struct pa_wb wb;                    /* page_writeback.c */
    /* compaction.c: deferral per zone (zone->compact_considered, compact_defer_shift,
     * compact_order_failed) and kcompactd's pending work (pgdat->kcompactd_*) */
    uint32_t compact_defer[PA_MAX_NR_ZONES][3];
    uint32_t kcompactd_wanted, kcompactd_max_order, kcompactd_highest;
    /* workingset.c */
    uint8_t *lru_ext;                   /* per pfn: PA_PGX_* (allocated with pg_index) */
    uint64_t *swap_shadow;              /* per swap slot: the shadow its page left (0: none) */
    /* trace.c: NULL while tracing is off */
    struct pa_trace *trace;
    /* slab_random.c */
    uint64_t random_kmalloc_seed;       /* RANDOM_KMALLOC_CACHES: drawn once the kmalloc caches exist */
    /* kthread.c */
    struct pa_kthreads kt;
};

static inline struct pa_zone *pa_zone_of(pa_machine *m, uint64_t pfn)
{
    if (pfn < DMA_END_PFN)
        return &m->zones[ZONE_DMA];
    if (pfn < DMA32_END_PFN)
        return &m->zones[ZONE_DMA32];
    return &m->zones[ZONE_NORMAL];
}

static inline unsigned get_pageblock_mt(const pa_machine *m, uint64_t pfn)
{
    return m->pageblock_mt[pfn >> PA_PAGEBLOCK_ORDER];
}

/* -- the machine lock ------------------------------------------------------------
 *
 * cffi drops the GIL around every call into the core, so Python threads sharing
 * one Machine run the core concurrently.  Every public entry point therefore
 * takes its machine's lock for the whole call; two machines never share one, so
 * they run in parallel.  Uncontended, the lock is one atomic exchange, one
 * pthread_self() and two plain stores: a few ns, below the noise of the per-call
 * benchmarks (bench_buddy.py, bench_slab.py);
 * a waiter spins briefly, then yields the CPU (a holder may be descheduled).
 *
 * How to write an entry point: define it with PA_ENTRY instead of a plain
 * signature.  The body becomes NAME_locked(), which expects the lock held; the
 * macro also emits the public NAME() that locks, refuses a closed machine with
 * PA_ECLOSED, calls NAME_locked() and unlocks.  The machine parameter must be
 * called `m`, and the result type must hold a status (int or int64_t):
 *
 *     PA_ENTRY(int, pa_spawn, (pa_machine *m, int64_t pid), (m, pid))
 *     {
 *         ... body, as before; every return path is covered ...
 *     }
 *
 * Declare `int pa_spawn(pa_machine *m, int64_t pid);` in pyalloc.h as usual, and
 * its twin `int pa_spawn_locked(...)` below if other core files call it.
 * Inside the core (another entry's body, a C loop over a whole stream) call the
 * _locked functions: a stream takes the lock once, with pa_lock()/pa_unlock(),
 * and runs every operation under it.  Calling a public entry with the lock held
 * is not a deadlock (the holder re-enters, counted in depth) but costs a little
 * more, so it is a fallback, not the way.
 */
#define PA_ENTRY(type, name, params, args)                              \
    type name##_locked params;                                          \
    type name params                                                    \
    {                                                                   \
        if (pa_unlikely(!m))                                            \
            return PA_EINVAL;                                           \
        pa_lock(m);                                                     \
        type ret_ = pa_likely(!m->closed) ? name##_locked args : PA_ECLOSED; \
        pa_unlock(m);                                                   \
        return ret_;                                                    \
    }                                                                   \
    type name##_locked params

/* "lock.c" */
void pa_lock_slow(pa_machine *m);

static inline uintptr_t pa_lock_self(void)
{
    return (uintptr_t)pthread_self();
}

static inline void pa_lock(pa_machine *m)
{
    if (pa_unlikely(atomic_exchange_explicit(&m->lock.word, 1u, memory_order_acquire)))
        pa_lock_slow(m);        /* held: by another thread (wait) or by this one (re-enter) */
    else
        atomic_store_explicit(&m->lock.owner, pa_lock_self(), memory_order_relaxed);
}

static inline void pa_unlock(pa_machine *m)
{
    if (pa_unlikely(m->lock.depth)) {
        m->lock.depth--;
        return;
    }
    atomic_store_explicit(&m->lock.owner, 0, memory_order_relaxed);
    atomic_store_explicit(&m->lock.word, 0u, memory_order_release);
}

/* the _locked twins of the entry points other core code calls (lock held) */
int64_t pa_alloc_pages_locked(pa_machine *m, int64_t gfp, int64_t order);
int pa_free_pages_locked(pa_machine *m, int64_t pfn, int64_t order);
int64_t pa_kmalloc_locked(pa_machine *m, int64_t size, int64_t gfp, int64_t caller);
int pa_kfree_locked(pa_machine *m, int64_t phys, int64_t caller);
int64_t pa_kmem_cache_alloc_locked(pa_machine *m, int64_t cache, int64_t gfp, int64_t caller);
int pa_kmem_cache_free_locked(pa_machine *m, int64_t cache, int64_t phys, int64_t caller);

/* "arena.c" */
void *pa_map_noreserve(size_t len);
void pa_unmap(void *p, size_t len);
int arena_init(pa_machine *m);
uint64_t arena_default_min_free_kbytes(const pa_machine *m);
void arena_free(pa_machine *m);
void arena_setup_watermarks(pa_machine *m);

/* "machine.c": its entries (pa_machine_new/close/free, pa_check) are public,
 * declared in pyalloc.h; the core itself calls none of them */

/* "buddy.c" */
int64_t buddy_alloc_pages(pa_machine *m, int64_t gfp, int64_t order);
void buddy_free_boot_tail(pa_machine *m);
int buddy_check(pa_machine *m, char *msg, size_t msglen);
int buddy_free_pages(pa_machine *m, int64_t pfn, int64_t order, unsigned kind);
uint64_t buddy_block_containing(const pa_machine *m, uint64_t pfn, uint8_t flag, unsigned *order);
uint64_t buddy_page_is_free(const pa_machine *m, uint64_t pfn, unsigned *order);

bool buddy_zone_watermark_ok(const struct pa_zone *z, unsigned order, int64_t mark, unsigned highest,
                             unsigned alloc_flags);
bool buddy_zone_watermark_ok_free(const struct pa_zone *z, unsigned order, int64_t mark, unsigned highest,
                                  unsigned alloc_flags, int64_t free_pages);
uint64_t buddy_take_free_page(pa_machine *m, struct pa_zone *z, uint64_t pfn);

/* first touch (arena.c): a page never handed out nor written since boot still holds
 * the mapping's zeros, so zeroing it would only make the host fault it in */
void arena_touch(pa_machine *m, uint64_t pfn, uint64_t nr);
void arena_hand_out(pa_machine *m, uint64_t pfn, uint64_t nr, bool zero);
uint64_t buddy_rmqueue_mode(pa_machine *m, struct pa_zone *z, unsigned order, unsigned mt, int *mode);
void buddy_free_one_page(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned order, unsigned mt);

/* "pcp.c" */
int pcp_init(pa_machine *m);
void pcp_machine_free(pa_machine *m);
void zone_set_pageset_high_and_batch(pa_machine *m, int zid);
uint64_t rmqueue_pcplist(pa_machine *m, struct pa_zone *z, unsigned order, unsigned mt, unsigned alloc_flags);
void free_frozen_page_commit(pa_machine *m, struct pa_zone *z, uint64_t pfn, unsigned order);
void drain_local_pages(pa_machine *m, struct pa_zone *z);
void drain_all_pages(pa_machine *m, struct pa_zone *z);
uint64_t pcp_page_block(const pa_machine *m, uint64_t pfn, unsigned *order);
uint64_t pcp_free_pages(const pa_machine *m, int zid);
int pcp_check(pa_machine *m, char *msg, size_t msglen);

static inline bool pcp_allowed_order(unsigned order)
{
    return order <= PAGE_ALLOC_COSTLY_ORDER || order == PA_PCP_THP_ORDER;
}

/* reclaim's batch, its priority scale, reclaim_throttle()'s HZ / 10 (_abi.py) */
#define SWAP_CLUSTER_MAX ((unsigned)PA_SWAP_CLUSTER_MAX)
#define DEF_PRIORITY PA_DEF_PRIORITY
#define THROTTLE_WRITEBACK_US ((uint64_t)PA_THROTTLE_WRITEBACK_US)
#define MAX_PAUSE_US ((uint64_t)PA_MAX_PAUSE_US)
#define CENTISEC_US ((uint64_t)PA_CENTISEC_US)
/* the simulated cost of IO and migration (_abi.py) */
#define WRITEBACK_US ((uint64_t)PA_WRITEBACK_US)
#define SWAP_OUT_US ((uint64_t)PA_SWAP_OUT_US)
#define SWAP_IN_US ((uint64_t)PA_SWAP_IN_US)
#define READ_PAGE_US ((uint64_t)PA_READ_PAGE_US)
#define MIGRATE_US ((uint64_t)PA_MIGRATE_US)

/* "reclaim.c" */
void reclaim_machine_free(pa_machine *m);
int reclaim_check(pa_machine *m, char *msg, size_t msglen);
uint64_t try_to_free_pages(pa_machine *m, uint32_t gfp, unsigned order, unsigned highest);
void wakeup_kswapd(pa_machine *m, unsigned order, unsigned highest);
uint64_t balance_pgdat_batch(pa_machine *m);
void kswapd_nap_done(pa_machine *m);
void kcompactd_run(pa_machine *m);
bool reclaim_can_make_progress(pa_machine *m, uint32_t gfp);
void reclaim_stall(pa_machine *m, uint64_t us);
void psi_account(uint64_t *psi, uint64_t start, uint64_t end);
void lru_replace_page(pa_machine *m, uint64_t old_pfn, uint64_t new_pfn);
int writeback_page(pa_machine *m, struct pa_mm *mm, uint64_t idx);
bool mm_page_dirty(const struct pa_mm *mm, uint64_t idx);
/* the mm entry encoding (an entry: value << 3 | state) and the LRU/mm
 * helpers of reclaim.c that memory.c shares */
#define ENT_NONE ((unsigned)PA_ENT_NONE)
#define ENT_PRESENT ((unsigned)PA_ENT_PRESENT)
#define ENT_SWAP ((unsigned)PA_ENT_SWAP)
#define ENT_DISK ((unsigned)PA_ENT_DISK)
#define ENT_DIRTY ((unsigned)PA_ENT_DIRTY)
#define ENT_STATE(e) ((unsigned)((e) & 3u))
#define ENT_VAL(e) ((e) >> PA_ENT_SHIFT)
#define MK_ENT(v, st) (((uint64_t)(v) << PA_ENT_SHIFT) | (st))
/* bit 2 of an anonymous entry (ENT_DIRTY is a file's): the page lies in an
 * mlocked range (VM_LOCKED), whatever its state (mlock.c) */
#define ENT_MLOCKED ((unsigned)PA_ENT_MLOCKED)
struct pa_mm *mm_get(pa_machine *m, int64_t id);
int mm_reserve(struct pa_mm *mm, uint64_t nr);
int mm_range_ok(int64_t start, int64_t nr);
void mm_truncate(pa_machine *m, struct pa_mm *mm, uint64_t nr_pages);
void lru_add(pa_machine *m, uint64_t pfn, unsigned lru);
void lru_del(pa_machine *m, uint64_t pfn);
void lru_move(pa_machine *m, uint64_t pfn, unsigned lru);
uint64_t swap_slot_alloc(pa_machine *m);
void swap_slot_free(pa_machine *m, uint64_t slot);
unsigned char *page_mem(pa_machine *m, uint64_t pfn);
void release_page(pa_machine *m, uint64_t pfn);
int64_t pa_drop_caches_locked(pa_machine *m);

/* "workingset.c" */
#define WORKINGSET_REFAULT_ACTIVATE 1u  /* workingset_refault(): the folio goes to the active list */
#define WORKINGSET_REFAULT_RESTORE 2u   /* ... and was active when evicted: PG_workingset, a stall */
void workingset_age_nonresident(pa_machine *m, uint64_t nr_pages);
uint64_t workingset_eviction(pa_machine *m, uint64_t pfn);
unsigned workingset_refault(pa_machine *m, uint64_t shadow, bool file);
bool workingset_shadow_valid(uint64_t shadow);
void workingset_swap_shadow_set(pa_machine *m, uint64_t slot, uint64_t shadow);
uint64_t workingset_swap_shadow_take(pa_machine *m, uint64_t slot);

/* "mlock.c": VM_LOCKED ranges and the unevictable LRU */
static inline bool page_mlocked(const pa_machine *m, uint64_t pfn)
{
    const struct pa_page *p = &m->pages[pfn];
    return p->kind == PA_KIND_ANON && (m->mms[p->priv].ent[m->pg_index[pfn]] & ENT_MLOCKED);
}
void mlock_new_page(pa_machine *m, uint64_t pfn);
void munlock_page(pa_machine *m, struct pa_mm *mm, uint64_t idx);
void munlock_mm(pa_machine *m, struct pa_mm *mm);
bool mm_range_mlocked(const struct pa_mm *mm, uint64_t start, uint64_t nr);

/* "page_writeback.c": the flushers, dirty limits and dirty throttling */
void flusher_catch_up(pa_machine *m);
void balance_dirty_pages(pa_machine *m);
void wakeup_flusher_threads(pa_machine *m);
void reclaim_throttle_writeback(pa_machine *m);
void domain_dirty_limits(const pa_machine *m, uint64_t *thresh, uint64_t *bg_thresh);

/* "kthread.c" */
void kthreads_catch_up(pa_machine *m);
void psi_memstall_some(pa_machine *m, uint64_t start, uint64_t end);

/* The kernel threads take their turn: called between the page allocations of
 * a call and at its end.  An awake thread is one line here and one in
 * kthreads_catch_up(). */
static inline void kthreads_run(pa_machine *m)
{
    if (pa_unlikely(m->kswapd_wanted || m->kcompactd_wanted))
        kthreads_catch_up(m);
}

/* end of a public call: the kernel threads catch up with its clock; the
 * flusher also catches up where pages are dirtied (page_writeback.c) */
static inline void pa_call_done(pa_machine *m)
{
    kthreads_run(m);
    if (pa_unlikely(m->ctr[PA_CTR_NR_DIRTY] != 0))
        flusher_catch_up(m);
}

/* the answer of a public allocating call: ENOMEM becomes EOOM when the slow
 * path wants the OOM killer, ELOOP when 6.18 would retry for ever, and kswapd
 * gets its turn */
static inline int64_t pa_call_end(pa_machine *m, int64_t r)
{
    if (pa_unlikely(r < 0) && r == PA_ENOMEM && m->cost[PA_COST_OOM_NEEDED]
        && m->cost[PA_COST_SEQ] == m->alloc_seq)
        r = PA_EOOM;
    if (pa_unlikely(r == PA_ENOMEM) && m->cost[PA_COST_WOULD_LOOP] && m->cost[PA_COST_SEQ] == m->alloc_seq)
        r = PA_ELOOP;
    pa_call_done(m);
    return r;
}

/* "compaction.c" (include/linux/compaction.h's enums, in the kernel's order) */
enum { COMPACT_NOT_SUITABLE_ZONE, COMPACT_SKIPPED, COMPACT_DEFERRED, COMPACT_NO_SUITABLE_PAGE, COMPACT_CONTINUE,
       COMPACT_COMPLETE, COMPACT_PARTIAL_SKIPPED, COMPACT_CONTENDED, COMPACT_SUCCESS };
enum { COMPACT_PRIO_SYNC_FULL, COMPACT_PRIO_SYNC_LIGHT, COMPACT_PRIO_ASYNC };
int try_to_compact_pages(pa_machine *m, uint32_t gfp, unsigned order, unsigned alloc_flags, unsigned highest,
                         int prio);
void compaction_defer_reset(pa_machine *m, const struct pa_zone *z, unsigned order, bool alloc_success);
bool compaction_zonelist_suitable(pa_machine *m, unsigned order, unsigned highest);
uint64_t zone_reclaimable_pages(const pa_machine *m, const struct pa_zone *z);
void wakeup_kcompactd(pa_machine *m, unsigned order, unsigned highest);
void compact_node(pa_machine *m);

/* "pgtable.c" */
int pgt_check(pa_machine *m, char *msg, size_t msglen);

/* "slab.c": the pa_ entry points without their public wrapper (stream.c calls these) */
int64_t slab_kmalloc(pa_machine *m, int64_t size, int64_t gfp, int64_t caller);
int slab_kfree(pa_machine *m, int64_t phys, int64_t caller);
int64_t slab_cache_alloc(pa_machine *m, int64_t cache, int64_t gfp, int64_t caller);
int slab_cache_free(pa_machine *m, int64_t cache, int64_t phys, int64_t caller);
int64_t slab_ksize(pa_machine *m, int64_t phys);
void slab_machine_free(pa_machine *m);
int slab_check(pa_machine *m, char *msg, size_t msglen);
bool slab_cache_geometry_ok(const struct pa_cache *s, uint32_t cpus);
void slab_set_freepointer(pa_machine *m, const struct pa_cache *s, struct pa_slab *slab, unsigned slot,
                          unsigned next);

/* "slab_random.c": freelist randomization, hardened free pointers, random kmalloc caches */
bool cache_random_seq_wanted(const pa_machine *m, const struct pa_cache *s);
void init_cache_random(pa_machine *m, struct pa_cache *s, uint32_t *seq);
void cache_random_seq_destroy(struct pa_cache *s);
bool shuffle_freelist(pa_machine *m, struct pa_cache *s, struct pa_slab *slab);
bool slab_random_seq_ok(const uint32_t *seq, uint32_t count);
unsigned random_kmalloc_type(const pa_machine *m, uint64_t caller);

/* include/linux/swab.h __swab64 */
static inline uint64_t pa_swab64(uint64_t x)
{
    return __builtin_bswap64(x);
}

/* mm/slub.c freelist_ptr_encode(): the free pointer as stored at ptr_addr (virtual); without
 * SLAB_FREELIST_HARDENED s->random is 0 and the pointer is stored plain */
static inline uint64_t freelist_ptr_encode(const pa_machine *m, const struct pa_cache *s, uint64_t ptr,
                                           uint64_t ptr_addr)
{
    if (!(m->kconfig & PA_KCONFIG_SLAB_FREELIST_HARDENED))
        return ptr;
    return ptr ^ s->random ^ pa_swab64(ptr_addr);
}
/* what sheaf.c takes from the slabs and gives back (objects as slab id << 16 | slot) */
#define OBJ_SHEAF 4u                    /* allocated from its slab, held by a sheaf: free to the user */
int slab_get_object(pa_machine *m, struct pa_cache *s, uint32_t gfp, uint64_t *out);
void slab_free_bulk(pa_machine *m, struct pa_cache *s, uint64_t *p, uint32_t size);
void slab_set_cpu_partial(const pa_machine *m, struct pa_cache *s);

/* "sheaf.c": per-cpu sheaves and the barn (mm/slub.c, 6.18) */
#define SHEAF_OBJ(slab_id, slot) ((uint64_t)(slab_id) << 16 | (slot))
int pcs_init(pa_machine *m, struct pa_cache *s, uint32_t capacity);
void pcs_destroy(pa_machine *m, struct pa_cache *s);
bool alloc_from_pcs(pa_machine *m, struct pa_cache *s, uint32_t gfp, uint64_t *obj);
void free_to_pcs(pa_machine *m, struct pa_cache *s, uint64_t obj);
void pcs_flush_all(pa_machine *m, struct pa_cache *s);
void barn_shrink(pa_machine *m, struct pa_cache *s);
struct pa_sheaf *sheaf_new(const struct pa_cache *s);

#endif
