/*
 * snapshot.c - the machine's state as canonical snapshot words, and back.
 *
 * The format is specified in pyalloc/model/snapshot.py (the model's twin of
 * this file); both backends write and read exactly the same words, so a
 * machine saved on one continues on the other.  Nothing backend-specific goes
 * out: slab ids become head pfns, the partial lists become pfn lists in list
 * order, a page's priv and pg_index become the rmap records, cache seq
 * numbers become the creation order.  Loading hands out fresh slab ids in pfn
 * order and rebuilds the links from those lists.
 *
 * Memory travels apart (pa_snapshot_pages): only pages that hold a non-zero
 * byte.  Finding them must not cost the whole arena: mincore() on the
 * MAP_NORESERVE mappings tells which host pages were ever faulted in, so a
 * 64 GiB machine with 1 GiB touched looks at about 1 GiB (the descriptor array
 * is walked the same way).  mincore() also calls a page the host swapped
 * out "not resident", so on a host with swap the caller asks for an
 * exhaustive walk (PA_SNAP_EXHAUSTIVE): every page is looked at, slower but
 * never blind (pyalloc/snapshot.py decides from /proc/swaps).
 *
 * Loading validates every word before it is used (pfns inside memory, slots
 * inside their slab, ids inside their tables) and refuses with PA_EINVAL; it
 * only takes a freshly created machine (no cache, no slab, no mm), which the
 * caller throws away on failure.
 *
 * Each section of the layout has its save_NAME() and load_NAME(), called in
 * layout order by save_core() and load_core(); the model's functions carry
 * the same names.  What a section needs from an earlier one (the rmap's mm
 * ids, the caches' partial lists as pfns, the swap slots the mms name) rides
 * in struct snap_in.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define U64_NIL UINT64_MAX

/* an mm entry naming a swap slot (reclaim.c's ENT_SWAP state, slot << 3) */
static inline uint64_t ent_is_swap(uint64_t e)
{
    return (e & 3u) == 2u;
}
#define NR_KMALLOC_INDEX 14

/* -- writing ------------------------------------------------------------------------ */

struct snap_out {
    uint8_t *buf;
    uint64_t cap, len;
};

static void put(struct snap_out *o, uint64_t v)
{
    if (o->len + 8 <= o->cap)
        for (int i = 0; i < 8; i++)
            o->buf[o->len + (uint64_t)i] = (uint8_t)(v >> (8 * i));
    o->len += 8;
}

static void put_nil32(struct snap_out *o, uint32_t v)
{
    put(o, v == PA_NIL ? U64_NIL : v);
}

static void put_blob(struct snap_out *o, const void *data, uint64_t n)
{
    put(o, n);
    uint64_t padded = (n + 7) & ~7ull;
    if (o->len + padded <= o->cap) {
        memcpy(o->buf + o->len, data, n);
        memset(o->buf + o->len + n, 0, padded - n);
    }
    o->len += padded;
}

/* Calls fn(ctx, lo, hi) for every run [lo, hi) of host pages of [p, p+len)
 * that were ever faulted in (offsets from p), in ascending order, until fn
 * answers nonzero.  p must be host-page aligned. */
typedef int (*resident_fn)(void *ctx, uint64_t lo, uint64_t hi);

static void for_each_resident(const void *p, uint64_t len, bool exhaustive, void *ctx, resident_fn fn)
{
    if (exhaustive) {
        for (uint64_t off = 0; off < len; off += 1ull << 24)        /* 16 MiB at a time */
            if (fn(ctx, off, len - off < (1ull << 24) ? len : off + (1ull << 24)))
                return;
        return;
    }
    long hp = sysconf(_SC_PAGESIZE);
    uint64_t host = hp > 0 ? (uint64_t)hp : 4096;
    enum { CHUNK = 1 << 16 };
    unsigned char vec[CHUNK];
    uint64_t nr = (len + host - 1) / host;
    for (uint64_t base = 0; base < nr; base += CHUNK) {
        uint64_t n = nr - base < CHUNK ? nr - base : CHUNK;
        uint64_t off = base * host, bytes = n * host;
        if (off + bytes > len)
            bytes = len - off;
        if (mincore((void *)((uintptr_t)p + off), bytes, vec) != 0) {
            if (fn(ctx, off, off + bytes))             /* cannot tell: treat as touched */
                return;
            continue;
        }
        uint64_t i = 0;
        while (i < n) {
            if (!(vec[i] & 1)) {
                i++;
                continue;
            }
            uint64_t j = i;
            while (j < n && (vec[j] & 1))
                j++;
            uint64_t lo = off + i * host, hi = off + j * host;
            if (fn(ctx, lo, hi > len ? len : hi))
                return;
            i = j;
        }
    }
}

struct page_walk {
    pa_machine *m;
    struct snap_out *o;
    uint64_t count;
};

static bool page_touched(const struct pa_page *p)
{
    static const struct pa_page zero;
    return memcmp(p, &zero, sizeof(zero)) != 0;
}

/* a host page holds whole descriptors (16 bytes), so no descriptor is seen twice */
static int emit_pages(void *ctx, uint64_t lo, uint64_t hi)
{
    struct page_walk *w = ctx;
    uint64_t first = lo / sizeof(struct pa_page), last = hi / sizeof(struct pa_page);
    for (uint64_t pfn = first; pfn < last && pfn < w->m->nr_pages; pfn++) {
        const struct pa_page *p = &w->m->pages[pfn];
        if (!page_touched(p))
            continue;
        if (w->o) {
            /* a pcp page's links are the PCP section's lists, not descriptor state */
            bool pcp = p->kind == PA_KIND_PCP && !(p->flags & PA_PG_ALLOC);
            put(w->o, pfn);
            put_nil32(w->o, pcp ? PA_NIL : p->next);
            put_nil32(w->o, pcp ? PA_NIL : p->prev);
            put(w->o, (uint64_t)p->flags | (uint64_t)p->order << 8 | (uint64_t)p->kind << 16
                | (uint64_t)p->refcount << 24);
        }
        w->count++;
    }
    return 0;
}

static bool is_mm_page(const struct pa_page *p)
{
    return (p->flags & PA_PG_ALLOC) && (p->kind == PA_KIND_ANON || p->kind == PA_KIND_FILE);
}

static int emit_rmap(void *ctx, uint64_t lo, uint64_t hi)
{
    struct page_walk *w = ctx;
    uint64_t first = lo / sizeof(struct pa_page), last = hi / sizeof(struct pa_page);
    for (uint64_t pfn = first; pfn < last && pfn < w->m->nr_pages; pfn++) {
        const struct pa_page *p = &w->m->pages[pfn];
        if (!is_mm_page(p))
            continue;
        if (w->o) {
            put(w->o, pfn);
            put(w->o, p->priv);
            put(w->o, w->m->pg_index[pfn]);
        }
        w->count++;
    }
    return 0;
}

/* the descriptors, once to count and once to write (the walk is deterministic) */
static void walk_pages(pa_machine *m, struct snap_out *o, resident_fn fn, bool exhaustive)
{
    struct page_walk w = {m, NULL, 0};
    for_each_resident(m->pages, m->nr_pages * sizeof(struct pa_page), exhaustive, &w, fn);
    put(o, w.count);
    w.o = o;
    w.count = 0;
    for_each_resident(m->pages, m->nr_pages * sizeof(struct pa_page), exhaustive, &w, fn);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The machine section's scalars, in layout order: one list for the struct, the
 * writer and the reader, so the three cannot drift apart. */
#define SNAP_MACHINE_SCALARS(X)                                                              \
    X(nr_pages) X(cpus) X(min_free_kbytes) X(pgfree) X(ticks) X(slowpath_entries) X(cpu)   \
    X(slab_merge) X(nr_slab_reclaimable) X(nr_slab_unreclaimable) X(gfp_fixups)            \
    X(last_cache) X(slab_fallback_gfp) X(nr_page_table_pages) X(nr_pgtable_pages_all)      \
    X(vmalloc_pages) X(swap_pages) X(swap_next) X(alloc_seq) X(kswapd_wanted)              \
    X(kswapd_order) X(kswapd_highest) X(oom_mode) X(seed) X(kconfig) X(rand_state)

/* the machine section as read, one word a field (last_cache as its two's complement) */
struct snap_machine {
#define SNAP_FIELD(f) uint64_t f;
    SNAP_MACHINE_SCALARS(SNAP_FIELD)
#undef SNAP_FIELD
};

static void save_machine(const pa_machine *m, struct snap_out *o)
{
#define SNAP_PUT(f) put(o, (uint64_t)m->f);
    SNAP_MACHINE_SCALARS(SNAP_PUT)
#undef SNAP_PUT
}

static void save_pgd(const pa_machine *m, struct snap_out *o)
{
    for (int i = 0; i < 512; i++)
        put(o, m->pgd[i]);
}

static void save_pageblocks(const pa_machine *m, struct snap_out *o)
{
    put_blob(o, m->pageblock_mt, m->nr_pageblocks);
}

static void save_zone(const struct pa_zone *z, struct snap_out *o)
{
    put(o, z->start_pfn);
    put(o, z->end_pfn);
    put(o, z->managed);
    put(o, z->pristine_next);
    put(o, z->pristine_end);
    for (int k = 0; k < PA_NR_PAGE_ORDERS; k++)
        for (int t = 0; t < PA_MIGRATE_TYPES; t++)
            put_nil32(o, z->head[k][t]);
    for (int k = 0; k < PA_NR_PAGE_ORDERS; k++)
        for (int t = 0; t < PA_MIGRATE_TYPES; t++)
            put_nil32(o, z->tail[k][t]);
    for (int k = 0; k < PA_NR_PAGE_ORDERS; k++)
        for (int t = 0; t < PA_MIGRATE_TYPES; t++)
            put(o, z->nr_free[k][t]);
    for (int t = 0; t < PA_MIGRATE_TYPES; t++)
        put(o, z->nr_free_mt_pages[t]);
    put(o, z->nr_free_pages);
    put(o, z->nr_free_blocks_pages);
    put(o, z->nr_reserved_highatomic);
    for (int i = 0; i < 4; i++)
        put(o, z->wmark[i]);
    for (int i = 0; i < PA_MAX_NR_ZONES; i++)
        put(o, z->lowmem_reserve[i]);
    for (int t = 0; t < PA_MIGRATE_TYPES; t++)
        put(o, z->pageblocks[t]);
    put(o, z->pgalloc);
    put(o, z->numa_hit);
    for (int i = 0; i < 4; i++)
        put(o, z->nr_lru[i]);
    put(o, z->nr_dirty);
}

static void save_zones(const pa_machine *m, struct snap_out *o)
{
    for (int zi = 0; zi < PA_MAX_NR_ZONES; zi++)
        save_zone(&m->zones[zi], o);
}

/* reclaim's counters, the costs of the last allocating call, the LRU heads */
static void save_reclaim(const pa_machine *m, struct snap_out *o)
{
    put(o, PA_NR_CTRS);                 /* counted, so a table that grows still reads old files */
    for (int i = 0; i < PA_NR_CTRS; i++)
        put(o, m->ctr[i]);
    put(o, PA_NR_COSTS);
    for (int i = 0; i < PA_NR_COSTS; i++)
        put(o, m->cost[i]);
    for (int i = 0; i < NR_LRU_LISTS; i++) {
        put_nil32(o, m->lru[i].head);
        put_nil32(o, m->lru[i].tail);
    }
}

static void save_descriptors(pa_machine *m, struct snap_out *o, bool exhaustive)
{
    walk_pages(m, o, emit_pages, exhaustive);
}

static void save_rmap(pa_machine *m, struct snap_out *o, bool exhaustive)
{
    if (m->pg_index)
        walk_pages(m, o, emit_rmap, exhaustive);
    else
        put(o, 0);
}

static void save_cache(const pa_machine *m, const struct pa_cache *s, struct snap_out *o)
{
    put(o, s->flags);
    put(o, s->object_size);
    put(o, s->size);
    put(o, s->align);
    put(o, s->inuse);
    put(o, s->offset);
    put(o, s->red_left_pad);
    put(o, s->order);
    put(o, s->objects);
    put(o, s->min_order);
    put(o, s->min_objects);
    put(o, s->min_partial);
    put(o, s->refcount);
    put(o, s->allocflags);
    put(o, s->nr_slabs);
    put(o, s->total_objects);
    put(o, s->live);
    put(o, s->nr_partial);
    for (uint32_t sid = s->partial_head; sid != PA_NIL; sid = m->slabs[sid].next)
        put(o, m->slabs[sid].pfn);
    for (uint32_t c = 0; c < m->cpus; c++) {
        uint32_t sid = s->cpu[c].slab;
        put(o, sid == PA_NIL ? U64_NIL : m->slabs[sid].pfn);
        put(o, s->cpu[c].freelist == SLOT_NIL ? U64_NIL : s->cpu[c].freelist);
    }
}

static void save_caches(const pa_machine *m, struct snap_out *o)
{
    put(o, m->nr_caches);
    for (uint32_t id = 0; id < m->nr_caches; id++) {
        put(o, m->caches[id].alive);
        if (m->caches[id].alive)
            save_cache(m, &m->caches[id], o);
    }
}

/* creation order: seq ascending (a selection sort: caches are few) */
static void save_cache_order(const pa_machine *m, struct snap_out *o)
{
    uint32_t alive = 0;
    for (uint32_t id = 0; id < m->nr_caches; id++)
        alive += m->caches[id].alive != 0;
    put(o, alive);
    uint64_t last = 0;
    for (uint32_t n = 0; n < alive; n++) {
        uint32_t best = PA_NIL;
        for (uint32_t id = 0; id < m->nr_caches; id++)
            if (m->caches[id].alive && m->caches[id].seq > last
                && (best == PA_NIL || m->caches[id].seq < m->caches[best].seq))
                best = id;
        put(o, best);
        last = m->caches[best].seq;
    }
}

static void save_kmalloc(const pa_machine *m, struct snap_out *o)
{
    for (int t = 0; t < PA_NR_KMALLOC_TYPES; t++)
        for (int i = 0; i < NR_KMALLOC_INDEX; i++)
            put(o, (uint64_t)(int64_t)m->kmalloc_caches[t][i]);
}

static void save_slab(const struct pa_slab *sl, struct snap_out *o)
{
    put(o, sl->pfn);
    put(o, sl->cache);
    put(o, sl->order);
    put(o, sl->objects);
    put(o, sl->inuse);
    put(o, sl->freelist == SLOT_NIL ? U64_NIL : sl->freelist);
    put(o, sl->frozen);
    put(o, sl->on_partial);
    uint8_t *chain = malloc(2u * sl->objects + 1);
    if (chain) {
        for (uint32_t k = 0; k < sl->objects; k++) {
            chain[2 * k] = (uint8_t)sl->chain[k];
            chain[2 * k + 1] = (uint8_t)(sl->chain[k] >> 8);
        }
    } else {
        o->cap = 0;     /* no room to stage it: the caller sees a failed save */
    }
    put_blob(o, chain, 2u * sl->objects);
    free(chain);
    put_blob(o, sl->state, sl->objects);
}

/* slabs by head pfn */
static void save_slabs(const pa_machine *m, struct snap_out *o)
{
    uint64_t nslabs = 0;
    for (uint32_t id = 0; id < m->nr_slab_ids; id++)
        nslabs += m->slabs[id].used;
    put(o, nslabs);
    uint64_t *order = malloc((nslabs ? nslabs : 1) * sizeof(*order));
    if (!order) {
        o->cap = 0;
        return;
    }
    uint64_t n = 0;
    for (uint32_t id = 0; id < m->nr_slab_ids; id++)
        if (m->slabs[id].used)
            order[n++] = (uint64_t)m->slabs[id].pfn << 32 | id;
    qsort(order, n, sizeof(*order), cmp_u64);
    for (uint64_t i = 0; i < n; i++)
        save_slab(&m->slabs[(uint32_t)order[i]], o);
    free(order);
}

static void save_mm(const struct pa_mm *mm, struct snap_out *o)
{
    put(o, mm->alive);
    put(o, mm->is_file);
    put(o, mm->nr_pages);
    put(o, mm->size);
    put(o, mm->rss);
    put(o, mm->swapents);
    put(o, mm->nr_dirty);
    /* every entry of the mapping, holes included (munmap, MADV_DONTNEED and truncate
     * leave zeros below nr_pages); none past it */
    uint64_t n = mm->nr_pages;
    put(o, n);
    for (uint64_t i = 0; i < n; i++)
        put(o, mm->ent[i]);
    uint64_t nd = 0;
    if (mm->disk)
        for (uint64_t i = 0; i < mm->cap; i++)
            nd += mm->disk[i] != NULL;
    put(o, nd);
    if (mm->disk)
        for (uint64_t i = 0; i < mm->cap; i++)
            if (mm->disk[i]) {
                put(o, i);
                put_blob(o, mm->disk[i], PA_PAGE_SIZE);
            }
}

static void save_mms(const pa_machine *m, struct snap_out *o)
{
    put(o, m->nr_mms);
    for (uint32_t id = 0; id < m->nr_mms; id++)
        save_mm(&m->mms[id], o);
}

/* swap: the free stack, then the slots in use (named by the mms' entries) */
static void save_swap(const pa_machine *m, struct snap_out *o)
{
    put(o, m->nr_swap_free_stack);
    for (uint64_t i = 0; i < m->nr_swap_free_stack; i++)
        put(o, m->swap_free[i]);
    uint64_t used = 0;
    for (uint32_t id = 0; id < m->nr_mms; id++)
        for (uint64_t i = 0; i < m->mms[id].cap; i++)
            used += ent_is_swap(m->mms[id].ent[i]);
    uint64_t *slots = malloc((used ? used : 1) * sizeof(*slots));
    if (!slots) {
        o->cap = 0;
        put(o, 0);
        return;
    }
    uint64_t n = 0;
    for (uint32_t id = 0; id < m->nr_mms; id++)
        for (uint64_t i = 0; i < m->mms[id].cap; i++)
            if (ent_is_swap(m->mms[id].ent[i]))
                slots[n++] = m->mms[id].ent[i] >> 3;
    qsort(slots, n, sizeof(*slots), cmp_u64);
    put(o, n);
    for (uint64_t i = 0; i < n; i++) {
        put(o, slots[i]);
        put_blob(o, m->swap + (slots[i] << PA_PAGE_SHIFT), PA_PAGE_SIZE);
    }
    free(slots);
}

/* ZONE_BELOW_HIGH as a zone mask, then each pcp not in its boot state: zid cpu
 * high free_count flags alloc_factor, NR_PCP_LISTS x (n, n pfns head first) */
static bool pcp_is_boot(const struct pa_pcp *pcp)
{
    return !pcp->count && !pcp->high && !pcp->free_count && !pcp->flags && !pcp->alloc_factor;
}

/* compaction.c: each zone's deferral, then kcompactd's pending work */
static void save_compaction(const pa_machine *m, struct snap_out *o)
{
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++)
        for (int k = 0; k < 3; k++)
            put(o, m->compact_defer[zid][k]);
    put(o, m->kcompactd_wanted);
    put(o, m->kcompactd_max_order);
    put(o, m->kcompactd_highest);
}

static void save_pcp(const pa_machine *m, struct snap_out *o)
{
    uint64_t mask = 0, n = 0;
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        mask |= (uint64_t)m->zones[zid].below_high << zid;
        for (uint32_t c = 0; c < m->cpus; c++)
            n += !pcp_is_boot(&m->pcp[zid][c]);
    }
    put(o, mask);
    put(o, n);
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++)
        for (uint32_t c = 0; c < m->cpus; c++) {
            const struct pa_pcp *pcp = &m->pcp[zid][c];
            if (pcp_is_boot(pcp))
                continue;
            put(o, (uint64_t)zid);
            put(o, c);
            put(o, (uint64_t)pcp->high);
            put(o, (uint64_t)pcp->free_count);
            put(o, pcp->flags);
            put(o, pcp->alloc_factor);
            for (int i = 0; i < PA_NR_PCP_LISTS; i++) {
                uint64_t len = 0;
                for (uint32_t pfn = pcp->head[i]; pfn != PA_NIL; pfn = m->pages[pfn].next)
                    len++;
                put(o, len);
                for (uint32_t pfn = pcp->head[i]; pfn != PA_NIL; pfn = m->pages[pfn].next)
                    put(o, pfn);
            }
        }
}

/* the vm sysctls (vm_sysctl[], in the order of _abi.VM_SYSCTLS) and drop_caches' silence */
static void save_sysctl(const pa_machine *m, struct snap_out *o)
{
    for (int i = 0; i < PA_NR_VM_SYSCTLS; i++)
        put(o, m->vm_sysctl[i]);
    put(o, m->drop_caches_stfu);
}

/* the unevictable LRU (mlock.c): head, tail, then each zone's nr_unevictable */
static void save_mlock(const pa_machine *m, struct snap_out *o)
{
    put_nil32(o, m->lru[LRU_UNEVICTABLE].head);
    put_nil32(o, m->lru[LRU_UNEVICTABLE].tail);
    for (int zi = 0; zi < PA_MAX_NR_ZONES; zi++)
        put(o, m->zones[zi].nr_unevictable);
}

/* the sections in the order of the layout (pyalloc/model/snapshot.py) */
/* with HARDENED or RANDOM every live cache has random state; without, none */
static bool caches_have_random(const pa_machine *m)
{
    return m->kconfig & (PA_KCONFIG_SLAB_FREELIST_HARDENED | PA_KCONFIG_SLAB_FREELIST_RANDOM);
}

/* random_kmalloc_seed, the kmalloc-rnd rows of the kmalloc table, then n caches
 * (all live ones, or none: caches_have_random) as (id, s->random, n + n sequence indices) */
static void save_slab_random(const pa_machine *m, struct snap_out *o)
{
    put(o, m->random_kmalloc_seed);
    for (int t = PA_NR_KMALLOC_TYPES; t < PA_NR_KMALLOC_TABLE; t++)
        for (int i = 0; i < NR_KMALLOC_INDEX; i++)
            put(o, (uint64_t)(int64_t)m->kmalloc_caches[t][i]);
    uint64_t n = 0;
    for (uint32_t id = 0; id < m->nr_caches && caches_have_random(m); id++)
        n += m->caches[id].alive != 0;
    put(o, n);
    for (uint32_t id = 0; id < m->nr_caches && n; id++) {
        const struct pa_cache *s = &m->caches[id];
        if (!s->alive)
            continue;
        put(o, id);
        put(o, s->random);
        put(o, s->random_seq ? s->objects : 0);
        for (uint32_t k = 0; s->random_seq && k < s->objects; k++)
            put(o, s->random_seq[k]);
    }
}

static void save_sheaf(const pa_machine *m, const struct pa_cache *s, const struct pa_sheaf *sheaf,
                       struct snap_out *o)
{
    put(o, sheaf->size);
    for (uint32_t i = 0; i < sheaf->size; i++) {
        const struct pa_slab *slab = &m->slabs[sheaf->objects[i] >> 16];
        put(o, ((uint64_t)slab->pfn << PA_PAGE_SHIFT) + s->red_left_pad + (sheaf->objects[i] & 0xffff) * s->size);
    }
}

static bool percpu_listed(const pa_machine *m, const struct pa_cache *s)
{
    if (!s->alive)
        return false;
    bool any = s->sheaf_capacity != 0;
    for (uint32_t c = 0; c < m->cpus; c++)
        any |= s->cpu[c].partial != PA_NIL;
    return any;
}

/* the cpu partial chains, sheaves and barns (slab.c, sheaf.c) */
static void save_percpu(const pa_machine *m, struct snap_out *o)
{
    uint64_t n = 0;
    for (uint32_t id = 0; id < m->nr_caches; id++)
        n += percpu_listed(m, &m->caches[id]);
    put(o, n);
    for (uint32_t id = 0; id < m->nr_caches; id++) {
        const struct pa_cache *s = &m->caches[id];
        if (!percpu_listed(m, s))
            continue;
        put(o, id);
        put(o, s->sheaf_capacity);
        for (uint32_t c = 0; c < m->cpus; c++) {
            uint64_t len = 0;
            for (uint32_t sid = s->cpu[c].partial; sid != PA_NIL; sid = m->slabs[sid].next)
                len++;
            put(o, len);
            for (uint32_t sid = s->cpu[c].partial; sid != PA_NIL; sid = m->slabs[sid].next)
                put(o, m->slabs[sid].pfn);
        }
        if (!s->pcs)
            continue;
        for (uint32_t c = 0; c < m->cpus; c++) {
            save_sheaf(m, s, s->pcs[c].main, o);
            if (s->pcs[c].spare)
                save_sheaf(m, s, s->pcs[c].spare, o);
            else
                put(o, U64_NIL);
        }
        put(o, s->barn.nr_full);
        for (const struct pa_sheaf *sh = s->barn.full; sh; sh = sh->next)
            save_sheaf(m, s, sh, o);
        put(o, s->barn.nr_empty);
    }
}

/* the kernel threads on the clock (kthread.c), in the order of _abi.KTHREAD_INFO */
static void save_kthreads(pa_machine *m, struct snap_out *o)
{
    const struct pa_kswapd *k = &m->kt.kswapd;
    put(o, k->clock);
    put(o, k->nap_until);
    for (int i = 0; i < NR_LRU_LISTS; i++)
        put(o, k->nr[i]);
    put(o, k->round_reclaimed);
    put(o, k->run_reclaimed);
    put(o, k->priority);
    put(o, k->in_round);
    for (int i = 0; i < 6; i++)
        put(o, m->kt.psi_some[i]);
    put(o, m->kt.psi_some_until);
}

/* the flusher (page_writeback.c), then the files whose dirtied_when or
 * writeback_index is not 0: (id, dirtied_when, wb_index), by id */
static void save_writeback(const pa_machine *m, struct snap_out *o)
{
    put(o, m->wb.clock);
    put(o, m->wb.last_old_flush);
    put(o, m->wb.cutoff);
    put(o, m->wb.start_all);
    put(o, m->wb.kupdate);
    uint64_t n = 0;
    for (uint32_t id = 0; id < m->nr_mms; id++)
        n += m->mms[id].dirtied_when || m->mms[id].wb_index;
    put(o, n);
    for (uint32_t id = 0; id < m->nr_mms; id++)
        if (m->mms[id].dirtied_when || m->mms[id].wb_index) {
            put(o, id);
            put(o, m->mms[id].dirtied_when);
            put(o, m->mms[id].wb_index);
        }
}

/* workingset: n + n x (pfn, PGX_* bits) of the LRU pages with bits, ascending pfn; n + n x
 * (slot, shadow) of the swap slots with a shadow, ascending slot.  A file's shadows ride in its
 * mm entries; the clock and the costs are counters. */
static void save_workingset(const pa_machine *m, struct snap_out *o)
{
    uint64_t n = 0;
    for (uint64_t pfn = 0; m->lru_ext && pfn < m->nr_pages; pfn++)
        n += m->lru_ext[pfn] != 0;
    put(o, n);
    for (uint64_t pfn = 0; n && pfn < m->nr_pages; pfn++)
        if (m->lru_ext[pfn]) {
            put(o, pfn);
            put(o, m->lru_ext[pfn]);
        }
    n = 0;
    for (uint64_t slot = 0; m->swap_shadow && slot < m->swap_pages; slot++)
        n += m->swap_shadow[slot] != 0;
    put(o, n);
    for (uint64_t slot = 0; n && slot < m->swap_pages; slot++)
        if (m->swap_shadow[slot]) {
            put(o, slot);
            put(o, m->swap_shadow[slot]);
        }
}

static void save_core(pa_machine *m, struct snap_out *o, bool exhaustive)
{
    save_machine(m, o);
    save_pgd(m, o);
    save_pageblocks(m, o);
    save_zones(m, o);
    save_reclaim(m, o);
    save_descriptors(m, o, exhaustive);
    save_rmap(m, o, exhaustive);
    save_caches(m, o);
    save_cache_order(m, o);
    save_kmalloc(m, o);
    save_slabs(m, o);
    save_mms(m, o);
    save_swap(m, o);
    save_slab_random(m, o);
    save_percpu(m, o);
    save_pcp(m, o);
    save_kthreads(m, o);
    save_writeback(m, o);
    save_compaction(m, o);
    save_sysctl(m, o);
    save_workingset(m, o);
    save_mlock(m, o);
}

/* The canonical core section into buf (cap bytes); the answer is its size in
 * bytes, whether or not it fitted (call with cap 0 to size the buffer). */
PA_ENTRY(int64_t, pa_snapshot_save, (pa_machine *m, uint8_t *buf, int64_t cap, int64_t flags), (m, buf, cap, flags))
{
    if (cap < 0 || (cap && !buf) || (flags & ~(int64_t)PA_SNAP_EXHAUSTIVE))
        return PA_EINVAL;
    if (m->nr_events)
        return PA_EBUSY;
    struct snap_out o = {buf, (uint64_t)cap, 0};
    save_core(m, &o, flags & PA_SNAP_EXHAUSTIVE);
    if (cap && o.cap == 0)
        return PA_ENOMEM;
    return (int64_t)o.len;
}

/* The canonical core section in one call: sized and written under one hold of
 * the machine lock, so no other thread's call can land between the two walks.
 * *out gets a malloc'd buffer for pa_snapshot_release(); the answer is its length. */
PA_ENTRY(int64_t, pa_snapshot_take, (pa_machine *m, uint8_t **out, int64_t flags), (m, out, flags))
{
    if (!out || (flags & ~(int64_t)PA_SNAP_EXHAUSTIVE))
        return PA_EINVAL;
    *out = NULL;
    int64_t need = pa_snapshot_save_locked(m, NULL, 0, flags);
    if (need < 0)
        return need;
    uint8_t *buf = malloc(need ? (size_t)need : 1);
    if (!buf)
        return PA_ENOMEM;
    int64_t got = pa_snapshot_save_locked(m, buf, need, flags);
    if (got != need) {
        free(buf);
        return got < 0 ? got : PA_EBUSY;
    }
    *out = buf;
    return got;
}

void pa_snapshot_release(uint8_t *buf)
{
    free(buf);
}

/* -- memory ---------------------------------------------------------------------------- */

struct mem_walk {
    pa_machine *m;
    uint64_t base;              /* byte offset of the scanned range in the arena */
    uint64_t next;              /* the scan resumes at this pfn */
    int64_t *pfns;
    uint8_t *buf;
    int64_t max, n;
};

static bool page_nonzero(const unsigned char *p)
{
    uint64_t acc = 0;
    for (unsigned i = 0; i < PA_PAGE_SIZE; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        acc |= v;
    }
    return acc != 0;
}

static int collect_mem(void *ctx, uint64_t lo, uint64_t hi)
{
    struct mem_walk *w = ctx;
    uint64_t first = (w->base + lo) >> PA_PAGE_SHIFT, last = (w->base + hi + PA_PAGE_SIZE - 1) >> PA_PAGE_SHIFT;
    if (first < w->next)
        first = w->next;
    for (uint64_t pfn = first; pfn < last && pfn < w->m->nr_pages; pfn++) {
        if (w->n >= w->max)
            return 1;
        const unsigned char *src = w->m->mem + (pfn << PA_PAGE_SHIFT);
        w->next = pfn + 1;
        if (!page_nonzero(src))
            continue;
        w->pfns[w->n] = (int64_t)pfn;
        memcpy(w->buf + (uint64_t)w->n * PA_PAGE_SIZE, src, PA_PAGE_SIZE);
        w->n++;
    }
    return 0;
}

/* Up to max pages that hold a non-zero byte, from start_pfn on: their pfns and
 * bytes (max * 4096 of buf).  *next is where the next call starts (nr_pages
 * once the walk is over).  The answer is how many pages were copied. */
PA_ENTRY(int64_t, pa_snapshot_pages, (pa_machine *m, int64_t start_pfn, int64_t *pfns, uint8_t *buf,
                                      int64_t max, int64_t *next, int64_t flags),
         (m, start_pfn, pfns, buf, max, next, flags))
{
    if (start_pfn < 0 || max <= 0 || !pfns || !buf || !next || (flags & ~(int64_t)PA_SNAP_EXHAUSTIVE))
        return PA_EINVAL;
    struct mem_walk w = {m, 0, (uint64_t)start_pfn, pfns, buf, max, 0};
    if ((uint64_t)start_pfn < m->nr_pages) {
        long hp = sysconf(_SC_PAGESIZE);
        uint64_t host = hp > 0 ? (uint64_t)hp : 4096;
        uint64_t off = (uint64_t)start_pfn << PA_PAGE_SHIFT;
        off -= off % host;
        w.base = off;
        for_each_resident(m->mem + off, (m->nr_pages << PA_PAGE_SHIFT) - off, flags & PA_SNAP_EXHAUSTIVE,
                          &w, collect_mem);
    }
    *next = (int64_t)(w.n >= max ? w.next : m->nr_pages);
    return w.n;
}

/* Write n saved pages back: pfns[i] gets the 4096 bytes at buf + i * 4096. */
PA_ENTRY(int, pa_snapshot_put_pages, (pa_machine *m, const int64_t *pfns, const uint8_t *buf, int64_t n),
         (m, pfns, buf, n))
{
    if (n < 0 || (n && (!pfns || !buf)))
        return PA_EINVAL;
    for (int64_t i = 0; i < n; i++)
        if (pfns[i] < 0 || (uint64_t)pfns[i] >= m->nr_pages)
            return PA_EINVAL;
    for (int64_t i = 0; i < n; i++) {
        arena_touch(m, (uint64_t)pfns[i], 1);
        memcpy(m->mem + ((uint64_t)pfns[i] << PA_PAGE_SHIFT), buf + (uint64_t)i * PA_PAGE_SIZE, PA_PAGE_SIZE);
    }
    return PA_OK;
}

/* -- loading ------------------------------------------------------------------------------ */

struct snap_in {
    const uint8_t *buf;
    uint64_t len, pos;
    int bad;                    /* set by the first short read or bad value; every later read gives 0 */
    /* what one section leaves for a later one to check or resolve */
    uint64_t nrmap, max_rmap_mm;    /* rmap records, and the highest mm they name (mms) */
    uint32_t **partial;         /* per cache id: its partial list as pfns (link_cache_slabs) */
    uint8_t *swap_used;         /* a byte per swap slot: 1 named by an entry, 2 on the free stack */
};

static uint64_t get(struct snap_in *in)
{
    if (in->bad || in->len - in->pos < 8) {
        in->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)in->buf[in->pos + (uint64_t)i] << (8 * i);
    in->pos += 8;
    return v;
}

/* the next word without taking it (0 past the end) */
static uint64_t get_u64_at(const struct snap_in *in)
{
    uint64_t v = 0;
    if (in->bad || in->len - in->pos < 8)
        return 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)in->buf[in->pos + (uint64_t)i] << (8 * i);
    return v;
}

static uint64_t get_max(struct snap_in *in, uint64_t limit)
{
    uint64_t v = get(in);
    if (v > limit) {
        in->bad = 1;
        return 0;
    }
    return v;
}

/* a pfn inside memory, or PA_NIL for the NIL word */
static uint32_t get_pfn(struct snap_in *in, const pa_machine *m)
{
    uint64_t v = get(in);
    if (v == U64_NIL)
        return PA_NIL;
    if (v >= m->nr_pages) {
        in->bad = 1;
        return PA_NIL;
    }
    return (uint32_t)v;
}

/* a blob of exactly n bytes: a pointer into the buffer, or NULL */
static const uint8_t *get_blob(struct snap_in *in, uint64_t n)
{
    uint64_t got = get(in);
    uint64_t padded = (n + 7) & ~7ull;
    if (in->bad || got != n || in->len - in->pos < padded) {
        in->bad = 1;
        return NULL;
    }
    const uint8_t *p = in->buf + in->pos;
    in->pos += padded;
    return p;
}

/* a counted block of counters: the first `known`; those an older writer did not have read as 0 */
static void get_counters(struct snap_in *in, uint64_t *out, int known)
{
    uint64_t n = get_max(in, (in->len - in->pos) / 8);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t v = get(in);
        if (i < (uint64_t)known)
            out[i] = v;
    }
    for (uint64_t i = n; i < (uint64_t)known; i++)
        out[i] = 0;
}

#define BAD() do { return PA_EINVAL; } while (0)
#define CHECK() do { if (in->bad) BAD(); } while (0)

static int clear_pages(void *ctx, uint64_t lo, uint64_t hi)
{
    pa_machine *m = ctx;
    memset((uint8_t *)m->pages + lo, 0, hi - lo);
    return 0;
}

static uint32_t slab_by_pfn(const pa_machine *m, uint32_t pfn)
{
    if (pfn == PA_NIL || pfn >= m->nr_pages)
        return PA_NIL;
    const struct pa_page *p = &m->pages[pfn];
    if (p->kind != PA_KIND_SLAB || p->priv >= m->nr_slab_ids || m->slabs[p->priv].pfn != pfn
        || !m->slabs[p->priv].used)
        return PA_NIL;
    return p->priv;
}

static int load_machine(pa_machine *m, struct snap_in *in)
{
    struct snap_machine s;
#define SNAP_GET(f) s.f = get(in);
    SNAP_MACHINE_SCALARS(SNAP_GET)
#undef SNAP_GET
    CHECK();
    /* the machine being loaded was made with the saved size, cpus and swap */
    if (s.nr_pages != m->nr_pages || s.cpus != m->cpus || s.cpu >= m->cpus || s.swap_pages != m->swap_pages
        || s.swap_next > m->swap_pages || s.slab_merge > 1 || s.slab_fallback_gfp > UINT32_MAX
        || s.kswapd_wanted > 1 || s.kswapd_order > PA_MAX_PAGE_ORDER || s.kswapd_highest >= PA_MAX_NR_ZONES
        || s.oom_mode > 1 || s.seed > INT64_MAX || (s.kconfig & ~(uint64_t)PA_KCONFIG_MASK))
        BAD();
    /* last_cache names a cache: checked with the kmalloc table, once the caches are known */
#define SNAP_SET(f) m->f = (__typeof__(m->f))s.f;
    SNAP_MACHINE_SCALARS(SNAP_SET)
#undef SNAP_SET
    return PA_OK;
}

static int load_pgd(pa_machine *m, struct snap_in *in)
{
    for (int i = 0; i < 512; i++)
        m->pgd[i] = get(in);
    return PA_OK;
}

static int load_pageblocks(pa_machine *m, struct snap_in *in)
{
    const uint8_t *mt = get_blob(in, m->nr_pageblocks);
    CHECK();
    for (uint64_t i = 0; i < m->nr_pageblocks; i++)
        if (mt[i] >= PA_MIGRATE_TYPES)
            BAD();
    memcpy(m->pageblock_mt, mt, m->nr_pageblocks);
    return PA_OK;
}

static int load_zone(pa_machine *m, struct pa_zone *z, struct snap_in *in)
{
    if (get(in) != z->start_pfn || get(in) != z->end_pfn || get(in) != z->managed)
        BAD();
    z->pristine_next = get_max(in, m->nr_pages);
    z->pristine_end = get_max(in, m->nr_pages);
    if (z->pristine_next > z->pristine_end || ((z->pristine_next | z->pristine_end) & ((1u << PA_MAX_PAGE_ORDER) - 1))
        || (z->pristine_end > z->pristine_next
            && (z->pristine_next < z->start_pfn || z->pristine_end > z->end_pfn)))
        BAD();
    for (int k = 0; k < PA_NR_PAGE_ORDERS; k++)
        for (int t = 0; t < PA_MIGRATE_TYPES; t++)
            z->head[k][t] = get_pfn(in, m);
    for (int k = 0; k < PA_NR_PAGE_ORDERS; k++)
        for (int t = 0; t < PA_MIGRATE_TYPES; t++)
            z->tail[k][t] = get_pfn(in, m);
    for (int k = 0; k < PA_NR_PAGE_ORDERS; k++)
        for (int t = 0; t < PA_MIGRATE_TYPES; t++)
            z->nr_free[k][t] = get(in);
    for (int t = 0; t < PA_MIGRATE_TYPES; t++)
        z->nr_free_mt_pages[t] = get(in);
    z->nr_free_pages = get(in);
    z->nr_free_blocks_pages = get(in);
    z->nr_reserved_highatomic = get(in);
    for (int i = 0; i < 4; i++)
        z->wmark[i] = get(in);
    for (int i = 0; i < PA_MAX_NR_ZONES; i++)
        z->lowmem_reserve[i] = get(in);
    for (int t = 0; t < PA_MIGRATE_TYPES; t++)
        z->pageblocks[t] = get(in);
    z->pgalloc = get(in);
    z->numa_hit = get(in);
    for (int i = 0; i < 4; i++)
        z->nr_lru[i] = get(in);
    z->nr_dirty = get(in);
    CHECK();
    return PA_OK;
}

static int load_zones(pa_machine *m, struct snap_in *in)
{
    for (int zi = 0; zi < PA_MAX_NR_ZONES; zi++) {
        int rc = load_zone(m, &m->zones[zi], in);
        if (rc)
            return rc;
    }
    return PA_OK;
}

static int load_reclaim(pa_machine *m, struct snap_in *in)
{
    get_counters(in, m->ctr, PA_NR_CTRS);
    get_counters(in, m->cost, PA_NR_COSTS);
    for (int i = 0; i < NR_LRU_LISTS; i++) {
        m->lru[i].head = get_pfn(in, m);
        m->lru[i].tail = get_pfn(in, m);
    }
    return PA_OK;
}

/* the touched descriptors, ascending pfn; none inside a pristine block */
static int load_descriptors(pa_machine *m, struct snap_in *in)
{
    uint64_t npages = get_max(in, m->nr_pages);
    CHECK();
    uint64_t last_pfn = U64_NIL;
    for (uint64_t i = 0; i < npages; i++) {
        uint32_t pfn = get_pfn(in, m);
        uint32_t next = get_pfn(in, m), prev = get_pfn(in, m);
        uint64_t packed = get(in);
        CHECK();
        uint8_t flags = (uint8_t)packed, order = (uint8_t)(packed >> 8), kind = (uint8_t)(packed >> 16),
                refcount = (uint8_t)(packed >> 24);
        if (pfn == PA_NIL || packed >> 32 || (last_pfn != U64_NIL && pfn <= last_pfn) || order > PA_MAX_PAGE_ORDER
            || kind > PA_KIND_PCP || refcount > 1 || ((flags & PA_PG_ALLOC) && pfn + (1ull << order) > m->nr_pages))
            BAD();
        last_pfn = pfn;
        for (int zi = 0; zi < PA_MAX_NR_ZONES; zi++)
            if (pfn >= m->zones[zi].pristine_next && pfn < m->zones[zi].pristine_end)
                BAD();
        struct pa_page *p = &m->pages[pfn];
        p->next = next;
        p->prev = prev;
        p->priv = 0;
        p->flags = flags;
        p->order = order;
        p->kind = kind;
        p->refcount = refcount;
    }
    return PA_OK;
}

/* which mm, and where in it, each LRU page belongs to */
static int load_rmap(pa_machine *m, struct snap_in *in)
{
    in->nrmap = get_max(in, m->nr_pages);
    CHECK();
    if (in->nrmap && !m->pg_index) {
        m->pg_index = calloc(m->nr_pages, sizeof(*m->pg_index));
        if (!m->pg_index)
            return PA_ENOMEM;
    }
    uint64_t last_pfn = U64_NIL;
    for (uint64_t i = 0; i < in->nrmap; i++) {
        uint32_t pfn = get_pfn(in, m);
        uint64_t mm = get_max(in, (1u << 24) - 1), index = get_max(in, (1u << 30) - 1);
        CHECK();
        if (pfn == PA_NIL || (last_pfn != U64_NIL && pfn <= last_pfn) || !is_mm_page(&m->pages[pfn]))
            BAD();
        last_pfn = pfn;
        if (mm > in->max_rmap_mm)
            in->max_rmap_mm = mm;
        m->pages[pfn].priv = (uint32_t)mm;
        m->pg_index[pfn] = (uint32_t)index;
    }
    return PA_OK;
}

/* One live cache.  Its partial list and cpu slabs name slabs by pfn, and the
 * slabs come later: the partial pfns wait in in->partial[id], the cpu slabs'
 * pfns in cpu[].slab, until link_cache_slabs() turns them into slab ids. */
static int load_cache(pa_machine *m, uint32_t id, struct snap_in *in)
{
    struct pa_cache *s = &m->caches[id];
    struct pa_cpu_slab *cpu = malloc(m->cpus * sizeof(*cpu));
    if (!cpu)
        return PA_ENOMEM;
    memset(s, 0, sizeof(*s));
    s->cpu = cpu;
    s->alive = 1;
    s->flags = (uint32_t)get_max(in, UINT32_MAX);
    s->object_size = (uint32_t)get_max(in, 4u << 20);
    s->size = (uint32_t)get_max(in, 8u << 20);
    s->align = (uint32_t)get_max(in, 4u << 20);
    s->inuse = (uint32_t)get_max(in, 8u << 20);
    s->offset = (uint32_t)get_max(in, 8u << 20);
    s->red_left_pad = (uint32_t)get_max(in, 4u << 20);
    s->order = (uint32_t)get_max(in, PA_MAX_PAGE_ORDER);
    s->objects = (uint32_t)get_max(in, 32767);
    s->min_order = (uint32_t)get_max(in, PA_MAX_PAGE_ORDER);
    s->min_objects = (uint32_t)get_max(in, 32767);
    s->min_partial = (uint32_t)get_max(in, UINT32_MAX);
    s->refcount = (uint32_t)get_max(in, UINT32_MAX);
    s->allocflags = (uint32_t)get_max(in, UINT32_MAX);
    s->nr_slabs = get(in);
    s->total_objects = get(in);
    s->live = get(in);
    s->nr_partial = get_max(in, m->nr_pages);
    CHECK();
    if (!slab_cache_geometry_ok(s, m->cpus))
        BAD();
    s->partial_head = s->partial_tail = PA_NIL;
    uint32_t *partial = malloc((s->nr_partial ? s->nr_partial : 1) * sizeof(*partial));
    if (!partial)
        return PA_ENOMEM;
    for (uint64_t k = 0; k < s->nr_partial; k++)
        partial[k] = get_pfn(in, m);
    for (uint32_t c = 0; c < m->cpus; c++) {
        cpu[c].slab = get_pfn(in, m);
        cpu[c].partial = PA_NIL;
        uint64_t fl = get(in);
        cpu[c].freelist = fl == U64_NIL ? SLOT_NIL : (uint32_t)(fl > 32767 ? (in->bad = 1, 0) : fl);
        if (cpu[c].slab == PA_NIL && cpu[c].freelist != SLOT_NIL)
            in->bad = 1;
    }
    in->partial[id] = partial;
    CHECK();
    return PA_OK;
}

static int load_caches(pa_machine *m, struct snap_in *in)
{
    uint64_t nr_ids = get_max(in, PA_MAX_CACHES);
    CHECK();
    for (uint32_t id = 0; id < nr_ids; id++) {
        uint64_t alive = get_max(in, 1);
        CHECK();
        m->nr_caches = id + 1;          /* from here the machine's free path releases it */
        if (!alive)
            continue;
        int rc = load_cache(m, id, in);
        if (rc)
            return rc;
    }
    m->nr_caches = (uint32_t)nr_ids;
    return PA_OK;
}

/* every live cache once, oldest first: its position is its seq */
static int load_cache_order(pa_machine *m, struct snap_in *in)
{
    uint64_t nr_ids = m->nr_caches;
    uint64_t norder = get_max(in, nr_ids);
    CHECK();
    uint64_t alive = 0;
    for (uint32_t id = 0; id < nr_ids; id++)
        alive += m->caches[id].alive;
    if (norder != alive)
        BAD();
    for (uint64_t k = 0; k < norder; k++) {
        uint64_t id = get_max(in, nr_ids ? nr_ids - 1 : 0);
        if (in->bad || !m->caches[id].alive || m->caches[id].seq)
            BAD();
        m->caches[id].seq = k + 1;
    }
    m->cache_seq = norder;
    return PA_OK;
}

/* the kmalloc table, and the machine section's last_cache, name live caches */
static int load_kmalloc(pa_machine *m, struct snap_in *in)
{
    int64_t nr_ids = m->nr_caches;
    for (int t = 0; t < PA_NR_KMALLOC_TYPES; t++)
        for (int i = 0; i < NR_KMALLOC_INDEX; i++) {
            int64_t cid = (int64_t)get(in);
            if (cid < -1 || cid >= nr_ids || (cid >= 0 && (!m->caches[cid].alive || i == 0)))
                in->bad = 1;
            m->kmalloc_caches[t][i] = (int32_t)cid;
        }
    if (m->last_cache < -1 || m->last_cache >= nr_ids)
        in->bad = 1;
    CHECK();
    return PA_OK;
}

/* One slab record, as slab id i.  On failure nr_slab_ids covers exactly the
 * slabs whose arrays the machine's free path must release. */
static int load_slab(pa_machine *m, uint64_t i, uint64_t *last_pfn, struct snap_in *in)
{
    uint64_t nr_ids = m->nr_caches;
    struct pa_slab *sl = &m->slabs[i];
    uint32_t pfn = get_pfn(in, m);
    uint64_t cache = get_max(in, nr_ids ? nr_ids - 1 : 0);
    uint64_t order = get_max(in, PA_MAX_PAGE_ORDER), objects = get_max(in, 32767);
    uint64_t inuse = get_max(in, objects), freelist = get(in);
    uint64_t frozen = get_max(in, 1), on_partial = get_max(in, 1);
    const uint8_t *chain = get_blob(in, 2 * objects);
    const uint8_t *state = get_blob(in, objects);
    const struct pa_cache *sc = &m->caches[cache];
    const struct pa_page *head = in->bad || pfn == PA_NIL ? NULL : &m->pages[pfn];
    bool fits = !in->bad && sc->alive
                && ((order == sc->order && objects == sc->objects) || (order == sc->min_order && objects == sc->min_objects));
    if (in->bad || !head || !fits || (freelist != U64_NIL && freelist >= objects) || head->kind != PA_KIND_SLAB
        || (head->flags & (PA_PG_ALLOC | PA_PG_BUDDY)) != PA_PG_ALLOC || head->order != order
        || (*last_pfn != U64_NIL && pfn <= *last_pfn)) {
        m->nr_slab_ids = (uint32_t)i;
        BAD();
    }
    sl->pfn = pfn;
    sl->cache = (uint32_t)cache;
    sl->order = (uint8_t)order;
    sl->objects = (uint16_t)objects;
    sl->inuse = (uint16_t)inuse;
    sl->freelist = freelist == U64_NIL ? SLOT_NIL : (uint16_t)freelist;
    sl->frozen = (uint8_t)frozen;
    sl->on_partial = (uint8_t)on_partial;
    sl->prev = sl->next = PA_NIL;
    sl->chain = malloc(2 * objects + 2);
    sl->state = malloc(objects + 1);
    sl->used = 1;
    m->nr_slab_ids = (uint32_t)i + 1;
    if (!sl->chain || !sl->state)
        return PA_ENOMEM;
    for (uint64_t k = 0; k < objects; k++) {
        uint16_t nx = (uint16_t)(chain[2 * k] | chain[2 * k + 1] << 8);
        if (nx != SLOT_NIL && nx >= objects)
            in->bad = 1;
        sl->chain[k] = nx;
    }
    for (uint64_t k = 0; k < objects; k++)
        if (state[k] != 0 && state[k] != 1 && state[k] != 2 && state[k] != OBJ_SHEAF && state[k] != 5)
            in->bad = 1;
    *last_pfn = pfn;
    memcpy(sl->state, state, objects);
    m->pages[pfn].priv = (uint32_t)i;
    CHECK();
    return PA_OK;
}

/* slabs, ascending pfn: ids handed out in that order */
static int load_slabs(pa_machine *m, struct snap_in *in)
{
    uint64_t nslabs = get_max(in, m->nr_pages);
    CHECK();
    if (nslabs > (in->len - in->pos) / 80)      /* a slab record is at least ten words */
        BAD();
    if (nslabs) {
        m->slabs = calloc(nslabs, sizeof(*m->slabs));
        m->free_slab_ids = calloc(nslabs, sizeof(*m->free_slab_ids));
        if (!m->slabs || !m->free_slab_ids)
            return PA_ENOMEM;
        m->cap_slab_ids = (uint32_t)nslabs;
    }
    uint64_t last_pfn = U64_NIL;
    for (uint64_t i = 0; i < nslabs; i++) {
        int rc = load_slab(m, i, &last_pfn, in);
        if (rc)
            return rc;
    }
    return PA_OK;
}

/* Not a section: the caches' partial lists and cpu slabs, read as pfns, become
 * slab ids now that the slabs are read. */
static int link_cache_slabs(pa_machine *m, struct snap_in *in)
{
    for (uint32_t id = 0; id < m->nr_caches; id++) {
        struct pa_cache *s = &m->caches[id];
        if (!s->alive)
            continue;
        const uint32_t *partial = in->partial[id];
        for (uint64_t k = 0; k < s->nr_partial; k++) {
            uint32_t sid = slab_by_pfn(m, partial[k]);
            if (sid == PA_NIL || m->slabs[sid].cache != id || m->slabs[sid].prev != PA_NIL
                || s->partial_head == sid)
                BAD();
            struct pa_slab *sl = &m->slabs[sid];
            sl->prev = s->partial_tail;
            sl->next = PA_NIL;
            if (s->partial_tail == PA_NIL)
                s->partial_head = sid;
            else
                m->slabs[s->partial_tail].next = sid;
            s->partial_tail = sid;
        }
        for (uint32_t c = 0; c < m->cpus; c++) {
            if (s->cpu[c].slab == PA_NIL)
                continue;
            uint32_t sid = slab_by_pfn(m, s->cpu[c].slab);
            if (sid == PA_NIL || m->slabs[sid].cache != id
                || (s->cpu[c].freelist != SLOT_NIL && s->cpu[c].freelist >= m->slabs[sid].objects))
                BAD();
            s->cpu[c].slab = sid;
        }
    }
    return PA_OK;
}

/* One mm: its scalars, its entries (each swap slot named once, noted in
 * in->swap_used for the swap section), and a file's pages on disk. */
static int load_mm(pa_machine *m, struct pa_mm *mm, struct snap_in *in)
{
    mm->alive = (uint8_t)get_max(in, 1);
    mm->is_file = (uint8_t)get_max(in, 1);
    mm->nr_pages = get_max(in, 1ull << 30);
    mm->size = get(in);
    mm->rss = get(in);
    mm->swapents = get(in);
    mm->nr_dirty = get(in);
    uint64_t nent = get_max(in, 1ull << 30);
    CHECK();
    /* the last entry a fault made is never empty again, so the entries end at nr_pages */
    if (in->len - in->pos < nent * 8 || nent != mm->nr_pages || (!mm->alive && nent)
        || mm->rss > nent || mm->swapents > nent || mm->nr_dirty > nent || mm->size > (1ull << 42))
        BAD();
    uint64_t cap = 16;
    while (cap < nent)
        cap *= 2;
    mm->ent = calloc(cap, sizeof(*mm->ent));
    mm->disk = mm->is_file ? calloc(cap, sizeof(*mm->disk)) : NULL;
    if (!mm->ent || (mm->is_file && !mm->disk))
        return PA_ENOMEM;
    mm->cap = cap;
    for (uint64_t i = 0; i < nent; i++) {
        uint64_t e = get(in);
        unsigned st = (unsigned)(e & 3u);
        uint64_t val = e >> 3;
        bool dirty = (e & 4u) != 0;
        /* bit 2 is a file page's dirty bit and an anonymous page's mlock (ENT_MLOCKED) */
        if (st == 0u ? e != 0 && (mm->is_file || e != ENT_MLOCKED)
            : st == 1u ? val >= m->nr_pages
            : st == 2u ? mm->is_file || val >= m->swap_next || in->swap_used[val]
            : !mm->is_file || (e != 3u && (dirty || !workingset_shadow_valid(val))))
            BAD();
        if (st == 2u)
            in->swap_used[val] = 1;
        mm->ent[i] = e;
    }
    uint64_t ndisk = get_max(in, mm->is_file ? nent : 0);
    CHECK();
    uint64_t last_idx = U64_NIL;
    for (uint64_t k = 0; k < ndisk; k++) {
        uint64_t idx = get_max(in, nent ? nent - 1 : 0);
        const uint8_t *data = get_blob(in, PA_PAGE_SIZE);
        CHECK();
        if (mm->disk[idx] || (last_idx != U64_NIL && idx <= last_idx))
            BAD();
        last_idx = idx;
        mm->disk[idx] = malloc(PA_PAGE_SIZE);
        if (!mm->disk[idx])
            return PA_ENOMEM;
        memcpy(mm->disk[idx], data, PA_PAGE_SIZE);
    }
    return PA_OK;
}

static int load_mms(pa_machine *m, struct snap_in *in)
{
    uint64_t nmms = get_max(in, 1u << 24);
    CHECK();
    if ((in->nrmap && in->max_rmap_mm >= nmms) || nmms > (in->len - in->pos) / 72)     /* an mm is at least nine words */
        BAD();
    in->swap_used = calloc(m->swap_pages ? m->swap_pages : 1, 1);
    if (!in->swap_used)
        return PA_ENOMEM;
    if (nmms) {
        m->mms = calloc(nmms, sizeof(*m->mms));
        if (!m->mms)
            return PA_ENOMEM;
        m->cap_mms = (uint32_t)nmms;
        if (!m->pg_index) {         /* pa_mm_new makes it with the first mm */
            m->pg_index = calloc(m->nr_pages, sizeof(*m->pg_index));
            if (!m->pg_index)
                return PA_ENOMEM;
        }
    }
    for (uint64_t id = 0; id < nmms; id++) {
        m->nr_mms = (uint32_t)id + 1;
        int rc = load_mm(m, &m->mms[id], in);
        if (rc)
            return rc;
    }
    return PA_OK;
}

/* the free stack, then the bytes of the slots the mms' entries name */
static int load_swap(pa_machine *m, struct snap_in *in)
{
    uint64_t nfree = get_max(in, m->swap_pages);
    CHECK();
    uint64_t in_use = 0;
    for (uint64_t i = 0; i < m->swap_next; i++)
        in_use += in->swap_used[i];
    if (nfree + in_use != m->swap_next)
        BAD();
    for (uint64_t i = 0; i < nfree; i++) {
        uint64_t slot = get(in);
        CHECK();
        if (slot >= m->swap_next || in->swap_used[slot])
            BAD();
        in->swap_used[slot] = 2;
        m->swap_free[i] = (uint32_t)slot;
    }
    m->nr_swap_free_stack = nfree;
    uint64_t nused = get_max(in, m->swap_pages);
    CHECK();
    uint64_t last_slot = U64_NIL;
    for (uint64_t i = 0; i < nused; i++) {
        uint64_t slot = get_max(in, m->swap_pages ? m->swap_pages - 1 : 0);
        const uint8_t *data = get_blob(in, PA_PAGE_SIZE);
        CHECK();
        if (in->swap_used[slot] != 1 || (last_slot != U64_NIL && slot <= last_slot))
            BAD();
        last_slot = slot;
        memcpy(m->swap + (slot << PA_PAGE_SHIFT), data, PA_PAGE_SIZE);
    }
    return PA_OK;
}

/* What a machine of this kconfig draws: a random with HARDENED, a sequence of the
 * cache's objects with RANDOM (two or more), a seed and the copies' rows with
 * RANDOM_KMALLOC_CACHES; nothing else. */
static int load_slab_random(pa_machine *m, struct snap_in *in)
{
    m->random_kmalloc_seed = get(in);
    bool rnd_kmalloc = m->kconfig & PA_KCONFIG_RANDOM_KMALLOC_CACHES;
    if (!rnd_kmalloc && m->random_kmalloc_seed)
        in->bad = 1;
    int64_t nr_ids = m->nr_caches;
    for (int t = PA_NR_KMALLOC_TYPES; t < PA_NR_KMALLOC_TABLE; t++)
        for (int i = 0; i < NR_KMALLOC_INDEX; i++) {
            int64_t cid = (int64_t)get(in);
            if (cid < -1 || cid >= nr_ids || (cid >= 0 && (!m->caches[cid].alive || i == 0 || !rnd_kmalloc)))
                in->bad = 1;
            m->kmalloc_caches[t][i] = in->bad ? -1 : (int32_t)cid;
        }
    uint64_t ncaches = get(in);
    CHECK();
    uint64_t alive = 0;
    for (uint32_t id = 0; id < m->nr_caches; id++)
        alive += m->caches[id].alive != 0;
    if (ncaches != (caches_have_random(m) ? alive : 0))
        BAD();
    for (uint32_t id = 0; id < m->nr_caches && ncaches; id++) {
        struct pa_cache *s = &m->caches[id];
        if (!s->alive)
            continue;
        if (get(in) != id)
            BAD();
        s->random = get(in);
        uint64_t n = get(in);
        CHECK();
        if ((s->random && !(m->kconfig & PA_KCONFIG_SLAB_FREELIST_HARDENED))
            || n != (cache_random_seq_wanted(m, s) ? s->objects : 0) || in->len - in->pos < n * 8)
            BAD();
        if (!n)
            continue;
        uint32_t *seq = malloc(n * sizeof(*seq));
        if (!seq)
            return PA_ENOMEM;
        for (uint64_t k = 0; k < n; k++)
            seq[k] = (uint32_t)get_max(in, n - 1);
        s->random_seq = seq;            /* the machine's free path releases it from here */
        if (in->bad || !slab_random_seq_ok(seq, (uint32_t)n))
            BAD();
    }
    return PA_OK;
}

/* one sheaf's objects, phys addresses each a held object (OBJ_SHEAF) of the cache */
static int load_sheaf(pa_machine *m, struct pa_cache *s, struct pa_sheaf *sheaf, struct snap_in *in)
{
    uint64_t n = get_max(in, s->sheaf_capacity);
    CHECK();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t phys = get(in);
        CHECK();
        uint32_t sid = PA_NIL;
        for (int k = 0; k < 2 && sid == PA_NIL; k++) {
            uint32_t order = k ? s->min_order : s->order;
            uint64_t head = (phys >> PA_PAGE_SHIFT) & ~((1ull << order) - 1);
            uint32_t cand = head < m->nr_pages ? slab_by_pfn(m, (uint32_t)head) : PA_NIL;
            if (cand != PA_NIL && m->slabs[cand].order == order && &m->caches[m->slabs[cand].cache] == s)
                sid = cand;
        }
        if (sid == PA_NIL)
            BAD();
        const struct pa_slab *slab = &m->slabs[sid];
        uint64_t off = phys - ((uint64_t)slab->pfn << PA_PAGE_SHIFT);
        if (off < s->red_left_pad || (off - s->red_left_pad) % s->size
            || (off - s->red_left_pad) / s->size >= slab->objects)
            BAD();
        sheaf->objects[i] = SHEAF_OBJ(sid, (off - s->red_left_pad) / s->size);
    }
    sheaf->size = (uint32_t)n;
    return PA_OK;
}

static int load_percpu(pa_machine *m, struct snap_in *in)
{
    for (uint32_t id = 0; id < m->nr_caches; id++)
        if (m->caches[id].alive)
            slab_set_cpu_partial(m, &m->caches[id]);
    uint64_t n = get_max(in, m->nr_caches);
    CHECK();
    for (uint64_t r = 0; r < n; r++) {
        uint64_t id = get_max(in, m->nr_caches ? m->nr_caches - 1 : 0);
        uint64_t capacity = get_max(in, PA_SHEAF_CAPACITY_MAX);
        CHECK();
        struct pa_cache *s = &m->caches[id];
        if (!s->alive || s->pcs)
            BAD();
        for (uint32_t c = 0; c < m->cpus; c++) {
            uint64_t len = get_max(in, m->nr_slab_ids);
            CHECK();
            uint32_t tail = PA_NIL;
            for (uint64_t k = 0; k < len; k++) {
                uint32_t sid = slab_by_pfn(m, get_pfn(in, m));
                CHECK();
                if (sid == PA_NIL || m->slabs[sid].cache != id || m->slabs[sid].slabs || m->slabs[sid].frozen
                    || m->slabs[sid].on_partial)
                    BAD();
                m->slabs[sid].slabs = (uint32_t)(len - k);
                m->slabs[sid].next = PA_NIL;
                if (tail == PA_NIL)
                    s->cpu[c].partial = sid;
                else
                    m->slabs[tail].next = sid;
                tail = sid;
            }
        }
        if (!capacity)
            continue;
        int rc = pcs_init(m, s, (uint32_t)capacity);
        if (rc)
            return rc;
        for (uint32_t c = 0; c < m->cpus; c++) {
            rc = load_sheaf(m, s, s->pcs[c].main, in);
            if (rc)
                return rc;
            if (in->pos + 8 <= in->len && get_u64_at(in) == U64_NIL) {
                get(in);
                continue;
            }
            s->pcs[c].spare = sheaf_new(s);
            if (!s->pcs[c].spare)
                return PA_ENOMEM;
            rc = load_sheaf(m, s, s->pcs[c].spare, in);
            if (rc)
                return rc;
        }
        uint64_t nfull = get_max(in, 1u << 20);
        CHECK();
        struct pa_sheaf **link = &s->barn.full;
        for (uint64_t k = 0; k < nfull; k++) {
            struct pa_sheaf *sh = sheaf_new(s);
            if (!sh)
                return PA_ENOMEM;
            *link = sh;
            link = &sh->next;
            s->barn.nr_full++;
            rc = load_sheaf(m, s, sh, in);
            if (rc)
                return rc;
        }
        uint64_t nempty = get_max(in, 1u << 20);
        CHECK();
        for (uint64_t k = 0; k < nempty; k++) {
            struct pa_sheaf *sh = sheaf_new(s);
            if (!sh)
                return PA_ENOMEM;
            sh->next = s->barn.empty;
            s->barn.empty = sh;
            s->barn.nr_empty++;
        }
    }
    return PA_OK;
}

/* the pcp lists relinked from their pfns; the validator has checked every rule,
 * these checks only keep the links sane */
static int load_pcp(pa_machine *m, struct snap_in *in)
{
    uint64_t mask = get_max(in, (1u << PA_MAX_NR_ZONES) - 1);
    uint64_t n = get_max(in, (uint64_t)PA_MAX_NR_ZONES * m->cpus);
    CHECK();
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        m->zones[zid].below_high = (uint8_t)(mask >> zid & 1);
        if (m->zones[zid].managed)
            zone_set_pageset_high_and_batch(m, zid);
    }
    for (uint64_t r = 0; r < n; r++) {
        uint64_t zid = get_max(in, PA_MAX_NR_ZONES - 1), cpu = get_max(in, m->cpus - 1);
        uint64_t high = get_max(in, INT32_MAX), free_count = get_max(in, INT32_MAX);
        uint64_t flags = get_max(in, PA_PCPF_PREV_FREE_HIGH_ORDER | PA_PCPF_FREE_HIGH_BATCH);
        uint64_t alloc_factor = get_max(in, PA_PCP_BATCH_SCALE_MAX);
        CHECK();
        struct pa_zone *z = &m->zones[zid];
        struct pa_pcp *pcp = &m->pcp[zid][cpu];
        if (!z->managed || !pcp_is_boot(pcp))
            BAD();
        pcp->high = (int32_t)high;
        pcp->free_count = (int32_t)free_count;
        pcp->flags = (uint8_t)flags;
        pcp->alloc_factor = (uint8_t)alloc_factor;
        for (int i = 0; i < PA_NR_PCP_LISTS; i++) {
            uint64_t len = get_max(in, z->managed);
            unsigned order = i >= PA_NR_LOWORDER_PCP_LISTS ? PA_PCP_THP_ORDER : (unsigned)i / MIGRATE_PCPTYPES;
            uint32_t prev = PA_NIL;
            for (uint64_t k = 0; k < len; k++) {
                uint32_t pfn = get_pfn(in, m);
                CHECK();
                struct pa_page *p = &m->pages[pfn];
                if (pfn == PA_NIL || pfn < z->start_pfn || pfn >= z->end_pfn || p->kind != PA_KIND_PCP
                    || p->order != order || (p->flags & (PA_PG_BUDDY | PA_PG_ALLOC)) || p->priv)
                    BAD();
                p->priv = 1;    /* linked: a second mention is refused */
                p->prev = prev;
                p->next = PA_NIL;
                if (prev == PA_NIL)
                    pcp->head[i] = pfn;
                else
                    m->pages[prev].next = pfn;
                prev = pfn;
                pcp->count += 1 << order;
            }
            pcp->tail[i] = prev;
        }
    }
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++)
        for (uint32_t c = 0; c < m->cpus; c++)
            for (int i = 0; i < PA_NR_PCP_LISTS; i++)
                for (uint32_t pfn = m->pcp[zid][c].head[i]; pfn != PA_NIL; pfn = m->pages[pfn].next)
                    m->pages[pfn].priv = 0;
    return PA_OK;
}

/* kswapd's place in balance_pgdat() and PSI "some"; a file without them
 * (format 4: all zero) had "some" equal to "full" */
static int load_kthreads(pa_machine *m, struct snap_in *in)
{
    struct pa_kswapd *k = &m->kt.kswapd;
    k->clock = get(in);
    k->nap_until = get(in);
    for (int i = 0; i < NR_LRU_LISTS; i++)
        k->nr[i] = get_max(in, m->nr_pages);
    k->round_reclaimed = get(in);
    k->run_reclaimed = get(in);
    k->priority = get_max(in, 12);
    k->in_round = get_max(in, 1);
    for (int i = 0; i < 6; i++)
        m->kt.psi_some[i] = get(in);
    m->kt.psi_some_until = get(in);
    CHECK();
    if ((k->in_round && !k->priority) || (k->nap_until && (k->priority || !m->kswapd_wanted))
        || (k->priority && !m->kswapd_wanted))
        BAD();
    bool empty = true;
    for (int i = 0; i < 6; i++)
        empty &= !m->kt.psi_some[i];
    if (empty)
        memcpy(m->kt.psi_some, &m->ctr[PA_CTR_PSI_TOTAL_US], sizeof(m->kt.psi_some));
    return PA_OK;
}

/* the flusher's state; the validator has checked every rule, these checks keep the
 * words inside what the core indexes with */
static int load_writeback(pa_machine *m, struct snap_in *in)
{
    m->wb.clock = get_max(in, m->ticks);
    m->wb.last_old_flush = get_max(in, m->wb.clock);
    m->wb.cutoff = get_max(in, m->wb.clock);
    m->wb.start_all = get_max(in, m->nr_pages);
    m->wb.kupdate = (uint32_t)get_max(in, 1);
    uint64_t n = get_max(in, m->nr_mms);
    CHECK();
    int64_t last = -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id = get_max(in, m->nr_mms - 1), when = get_max(in, m->ticks), index = get_max(in, 1ull << 30);
        CHECK();
        if ((int64_t)id <= last || !m->mms[id].alive || !m->mms[id].is_file)
            BAD();
        last = (int64_t)id;
        m->mms[id].dirtied_when = when;
        m->mms[id].wb_index = index;
    }
    return PA_OK;
}

static int load_compaction(pa_machine *m, struct snap_in *in)
{
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        m->compact_defer[zid][0] = (uint32_t)get_max(in, 1ull << 6);    /* considered */
        m->compact_defer[zid][1] = (uint32_t)get_max(in, 6);            /* COMPACT_MAX_DEFER_SHIFT */
        m->compact_defer[zid][2] = (uint32_t)get_max(in, PA_NR_PAGE_ORDERS);
    }
    m->kcompactd_wanted = (uint32_t)get_max(in, 1);
    m->kcompactd_max_order = (uint32_t)get_max(in, PA_MAX_PAGE_ORDER);
    m->kcompactd_highest = (uint32_t)get_max(in, PA_MAX_NR_ZONES - 1);
    CHECK();
    return PA_OK;
}

/* each knob within the kernel's range (the watermarks were loaded with the zones) */
static int load_sysctl(pa_machine *m, struct snap_in *in)
{
    for (int i = 0; i < PA_NR_VM_SYSCTLS; i++) {
        uint64_t v = get_max(in, (uint64_t)pa_vm_sysctl_max[i]);
        CHECK();
        if (v < (uint64_t)pa_vm_sysctl_min[i])
            BAD();
        m->vm_sysctl[i] = v;
    }
    m->drop_caches_stfu = (uint32_t)get_max(in, 1);
    CHECK();
    return PA_OK;
}

/* the bits go on LRU pages only (those the rmap named), the shadows on slots an mm entry names */
static int load_workingset(pa_machine *m, struct snap_in *in)
{
    if (m->pg_index && !m->lru_ext && !(m->lru_ext = calloc(m->nr_pages, sizeof(*m->lru_ext))))
        return PA_ENOMEM;
    uint64_t n = get_max(in, m->nr_pages), last = U64_NIL;
    CHECK();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t pfn = get_max(in, m->nr_pages - 1), bits = get(in);
        CHECK();
        const struct pa_page *p = &m->pages[pfn];
        if (!m->lru_ext || (p->flags & (PA_PG_LRU | PA_PG_ALLOC)) != (PA_PG_LRU | PA_PG_ALLOC)
            || (p->kind != PA_KIND_ANON && p->kind != PA_KIND_FILE) || !bits
            || (bits & ~(uint64_t)(PA_PGX_YOUNG | PA_PGX_WORKINGSET)) || (last != U64_NIL && pfn <= last))
            BAD();
        m->lru_ext[pfn] = (uint8_t)bits;
        last = pfn;
    }
    n = get_max(in, m->swap_pages);
    last = U64_NIL;
    CHECK();
    if (n && !(m->swap_shadow = calloc(m->swap_pages, sizeof(*m->swap_shadow))))
        return PA_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t slot = get_max(in, m->swap_pages - 1), shadow = get(in);
        CHECK();
        if (!in->swap_used || in->swap_used[slot] != 1 || !workingset_shadow_valid(shadow)
            || (last != U64_NIL && slot <= last))
            BAD();
        m->swap_shadow[slot] = shadow;
        last = slot;
    }
    return PA_OK;
}

/* the unevictable LRU; reclaim_check() then walks it against the zones' counts */
static int load_mlock(pa_machine *m, struct snap_in *in)
{
    m->lru[LRU_UNEVICTABLE].head = get_pfn(in, m);
    m->lru[LRU_UNEVICTABLE].tail = get_pfn(in, m);
    for (int zi = 0; zi < PA_MAX_NR_ZONES; zi++)
        m->zones[zi].nr_unevictable = get_max(in, m->zones[zi].managed);
    CHECK();
    if ((m->lru[LRU_UNEVICTABLE].head == PA_NIL) != (m->lru[LRU_UNEVICTABLE].tail == PA_NIL))
        BAD();
    return PA_OK;
}

typedef int (*section_loader)(pa_machine *m, struct snap_in *in);

/* the sections in the order of the layout (pyalloc/model/snapshot.py), each
 * checked before the next is read */
static const section_loader load_sections[] = {
    load_machine, load_pgd, load_pageblocks, load_zones, load_reclaim, load_descriptors, load_rmap,
    load_caches, load_cache_order, load_kmalloc, load_slabs, link_cache_slabs, load_mms, load_swap,
    load_slab_random, load_percpu, load_pcp, load_kthreads, load_writeback, load_compaction, load_sysctl,
    load_workingset,
    load_mlock,
};

static int load_core(pa_machine *m, struct snap_in *in)
{
    /* the boot touched the descriptors of the zones' unaligned tails (the rest of a fresh
     * machine is pristine): none of them survives.  This reads pristine_end before the
     * zones section replaces it. */
    for (int zi = 0; zi < PA_MAX_NR_ZONES; zi++)
        clear_pages(m, m->zones[zi].pristine_end * sizeof(struct pa_page),
                    m->zones[zi].end_pfn * sizeof(struct pa_page));
    for (size_t i = 0; i < sizeof(load_sections) / sizeof(load_sections[0]); i++) {
        int rc = load_sections[i](m, in);
        if (rc)
            return rc;
    }
    if (in->pos != in->len)
        BAD();
    return PA_OK;
}

/* Make a freshly created machine (same size, cpus and swap; no cache, slab or
 * mm yet) the one the canonical core section describes.  On failure the
 * machine is half-made: close it. */
PA_ENTRY(int, pa_snapshot_load, (pa_machine *m, const uint8_t *buf, int64_t len), (m, buf, len))
{
    if (!buf || len < 0 || len % 8)
        return PA_EINVAL;
    if (m->nr_caches || m->nr_slab_ids || m->nr_mms)
        return PA_EBUSY;
    struct snap_in in = {.buf = buf, .len = (uint64_t)len};
    in.partial = calloc(PA_MAX_CACHES, sizeof(*in.partial));
    if (!in.partial)
        return PA_ENOMEM;
    int rc = load_core(m, &in);
    free(in.swap_used);
    for (uint32_t id = 0; id < PA_MAX_CACHES; id++)
        free(in.partial[id]);
    free(in.partial);
    return rc;
}

/* check() without the page tables, for a machine just loaded: the tables live in
 * simulated memory, where a program may scribble on them through the direct map,
 * so what pgt_check finds there is data the machine carries, not a broken file */
PA_ENTRY(int, pa_snapshot_check, (pa_machine *m, char *msg, int64_t msglen), (m, msg, msglen))
{
    if (!msg || msglen < 1)
        return PA_EINVAL;
    msg[0] = 0;
    int rc = buddy_check(m, msg, (size_t)msglen);
    if (!rc)
        rc = reclaim_check(m, msg, (size_t)msglen);
    return rc ? rc : slab_check(m, msg, (size_t)msglen);
}
