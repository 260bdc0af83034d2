/*
 * pyalloc.h - the whole C API of the pyalloc core, as cffi sees it.
 *
 * Every constant shared with Python (status codes, layout, flags, op kinds,
 * trace events, the PA_CTR_* counters ...) is defined once, in
 * pyalloc/_abi.py, and reaches C through pa_abi_gen.h, which
 * pyalloc/_build.py generates on every build and also feeds to cdef().
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

#include "pa_abi_gen.h"

/* PA_CDEF_BEGIN */
typedef struct pa_machine pa_machine;

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
    uint32_t cpu_partial, cpu_partial_slabs, sheaf_capacity;
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
    uint64_t nr_unevictable;            /* pages on the unevictable LRU, all mlocked (nr_zone_unevictable, nr_mlock) */
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
    uint64_t seed;                      /* the machine's seed */
    uint64_t kconfig;                   /* PA_KCONFIG_* bits in force */
};

int pa_abi_version(void);
int pa_machine_new(int64_t nr_pages, int64_t cpus, int64_t min_free_kbytes, int64_t seed, int64_t kconfig,
                   pa_machine **out);
int pa_machine_close(pa_machine *m);
void pa_machine_free(pa_machine *m);

int64_t pa_alloc_pages(pa_machine *m, int64_t gfp, int64_t order);
int pa_free_pages(pa_machine *m, int64_t pfn, int64_t order);
int pa_page_state(pa_machine *m, int64_t pfn, struct pa_page_state *out);
int pa_drain_pages(pa_machine *m, int64_t cpu);
int64_t pa_pcp_info(pa_machine *m, int64_t zid, int64_t cpu, int64_t *out8, int64_t *buf, int64_t cap);

int pa_read(pa_machine *m, int64_t phys, int64_t n, unsigned char *out);
int pa_write(pa_machine *m, int64_t phys, const unsigned char *data, int64_t n);
int pa_memset(pa_machine *m, int64_t phys, int64_t byte, int64_t n);

int pa_set_cpu(pa_machine *m, int64_t cpu);
int pa_set_slab_merge(pa_machine *m, int64_t on);

int64_t pa_kmem_cache_create(pa_machine *m, int64_t size, int64_t align, int64_t flags, int64_t sheaf_capacity);
int pa_kmalloc_register(pa_machine *m, int64_t type, int64_t index, int64_t cache);
int pa_random_kmalloc_init(pa_machine *m);
int64_t pa_cache_random(pa_machine *m, int64_t cache, uint64_t *random, int64_t *seq, int64_t cap);
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
/* oncpu.c: pa_X() run as simulated CPU `cpu` (0..cpus-1, else PA_EINVAL with nothing changed) */
int64_t pa_kmalloc_on(pa_machine *m, int64_t size, int64_t gfp, int64_t caller, int64_t cpu);
int pa_kfree_on(pa_machine *m, int64_t phys, int64_t caller, int64_t cpu);
int64_t pa_kmem_cache_alloc_on(pa_machine *m, int64_t cache, int64_t gfp, int64_t caller, int64_t cpu);
int pa_kmem_cache_free_on(pa_machine *m, int64_t cache, int64_t phys, int64_t caller, int64_t cpu);
int64_t pa_alloc_pages_on(pa_machine *m, int64_t gfp, int64_t order, int64_t cpu);
int pa_free_pages_on(pa_machine *m, int64_t pfn, int64_t order, int64_t cpu);
/* sheaf.c: a cpu's slab layers as words (see pa_cpu_slab_info there), a barn's sheaf counts */
int64_t pa_cpu_slab_info(pa_machine *m, int64_t cache, int64_t cpu, int64_t *out, int64_t cap);
int pa_barn_info(pa_machine *m, int64_t cache, int64_t *out2);

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
/* page_writeback.c: the calling task sleeps us microseconds; the flusher runs meanwhile */
int pa_counters(pa_machine *m, uint64_t *out, int64_t n);
int pa_last_cost(pa_machine *m, uint64_t *out, int64_t n);
int pa_set_oom_mode(pa_machine *m, int64_t mode);
/* kthread.c: kernel threads on the simulated clock */
int pa_kthread_info(pa_machine *m, uint64_t *out, int64_t n);
int pa_idle(pa_machine *m, int64_t us);
/* memory.c: processes and files give memory back */
int pa_munmap(pa_machine *m, int64_t id, int64_t start, int64_t nr);
int pa_madvise(pa_machine *m, int64_t id, int64_t start, int64_t nr, int64_t advice);
int pa_mlock(pa_machine *m, int64_t id, int64_t start, int64_t nr);
int pa_munlock(pa_machine *m, int64_t id, int64_t start, int64_t nr);
int pa_mm_truncate(pa_machine *m, int64_t id, int64_t nr_pages);
/* sysctl.c: read (value = PA_VM_SYSCTL_READ) or write one vm sysctl */
int64_t pa_sysctl(pa_machine *m, int64_t index, int64_t value);
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
/* operation streams (stream.c): op kinds PA_OP_* */
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
int64_t pa_snapshot_save(pa_machine *m, uint8_t *buf, int64_t cap, int64_t flags);
int pa_snapshot_load(pa_machine *m, const uint8_t *buf, int64_t len);
int64_t pa_snapshot_take(pa_machine *m, uint8_t **out, int64_t flags);
void pa_snapshot_release(uint8_t *buf);
int pa_snapshot_check(pa_machine *m, char *msg, int64_t msglen);
int64_t pa_snapshot_pages(pa_machine *m, int64_t start_pfn, int64_t *pfns, uint8_t *buf, int64_t max,
                          int64_t *next, int64_t flags);
int pa_snapshot_put_pages(pa_machine *m, const int64_t *pfns, const uint8_t *buf, int64_t n);
/* trace_parse.c: a kmem capture's lines as records (layout: pyalloc/model/trace_parse.py).
 * pa_tparse_feed() reads data until rec (rec_cap records of PA_TPARSE_WORDS words) or text
 * (text_cap >= PA_TPARSE_MAX_LINE bytes) is full and returns the bytes it read (-1: bad
 * capacities); with final, the last line without an end is taken too, or by the next call
 * while pa_tparse_pending() */
typedef struct pa_tparse pa_tparse;
pa_tparse *pa_tparse_new(void);
void pa_tparse_free(pa_tparse *p);
int64_t pa_tparse_feed(pa_tparse *p, const uint8_t *data, int64_t n, int final, uint64_t *rec, int64_t rec_cap,
                       uint8_t *text, int64_t text_cap, int64_t *nrec, int64_t *ntext);
uint64_t pa_tparse_lineno(const pa_tparse *p);
uint64_t pa_tparse_ignored(const pa_tparse *p);
int pa_tparse_pending(const pa_tparse *p);
/* trace_build.c: those records into stream ops (the rules: pyalloc/machine/trace.py trace_chunks) */
typedef struct pa_tbuild pa_tbuild;
pa_tbuild *pa_tbuild_new(uint64_t slab_mask, uint64_t user_bits);
void pa_tbuild_free(pa_tbuild *b);
int pa_tbuild_set(pa_tbuild *b, int table, const uint8_t *s, int64_t n, int64_t v, int first);
int64_t pa_tbuild_run(pa_tbuild *b, const uint64_t *recs, int64_t nrec, const uint8_t *text, int64_t start,
                      int64_t cut_at, int64_t *why);
int64_t pa_tbuild_out(pa_tbuild *b, uint64_t **out);
void pa_tbuild_taken(pa_tbuild *b);
void pa_tbuild_state(pa_tbuild *b, int64_t *st, int64_t **notes, int64_t **firsts);
int64_t pa_tbuild_export(pa_tbuild *b, int which, int64_t *out, int64_t cap);
void pa_tbuild_recarry(pa_tbuild *b);
int pa_tbuild_finish(pa_tbuild *b);
int64_t pa_tbuild_expect(pa_tbuild *b, int which, int64_t *out, int64_t cap);
/* PA_CDEF_END */

_Static_assert(sizeof(struct pa_op) == 8 * PA_OP_RECORD_WORDS, "struct pa_op is OP_RECORD_WORDS words");

#endif
