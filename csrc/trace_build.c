/* trace_build.c - a kmem capture's parsed records (trace_parse.c) into stream ops.
 *
 * The C twin of the record loop of pyalloc/machine/trace.py trace_chunks(), which documents
 * the rules (implied frees, slab-page inference by GFP mask and order, unmatched frees):
 * the same ops, handles and counts, with the trace's pointer -> object and pfn -> page maps
 * kept in insertion order as Python's dicts keep them (carried ops and trace_expect follow
 * that order).  pa_tbuild_run() stops at what it cannot decide alone (a call site, mask or
 * cache name it has not been told, a chunk boundary, a line for Python's general parser)
 * and the caller resumes it at the record it names.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "pyalloc.h"

enum { ST_EVENTS, ST_UNMATCHED, ST_SLAB_PAGES, ST_IMPLIED, ST_IMPLIED_PAGES, ST_USER, ST_FLAGS, ST_ORDER, ST_N };

struct ent { uint64_t key; int64_t h, cache; uint64_t b, gfp; int alive; };
struct omap { struct ent *e; size_t n, cap, live; int32_t *idx; size_t mask; };   /* insertion-ordered */
struct sent { uint8_t *s; size_t n; int64_t v; };
struct smap { struct sent *e; size_t n, cap; int32_t *idx; size_t mask; };
struct pend { uint64_t cpu, pfn, order, gfp; int has_pfn; };

struct pa_tbuild {
    struct omap objects, pages, internal;
    struct smap sites, gfps, caches;
    int64_t *caller_of;     /* sid -> caller index, -1 none yet */
    size_t n_sids;
    int64_t n_callers;
    struct pend *pending;
    size_t npend, pend_cap;
    uint64_t *out;
    size_t nout, out_cap;
    int64_t base;           /* ops of the stream before out */
    int64_t stats[ST_N];
    int64_t max_cpu, top_cpu, top_op;
    uint64_t slab_mask, user_bits;
    int64_t *notes;         /* new callers (sids), then new caches' first ops (pairs) */
    size_t nnotes, notes_cap;
    int64_t *firsts;
    size_t nfirsts, firsts_cap;
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
    return x;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int omap_rehash(struct omap *m)
{
    /* drop the dead entries (order kept) and index the rest in a table at most half full */
    size_t j = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->e[i].alive)
            m->e[j++] = m->e[i];
    m->n = j;
    size_t size = 64;
    while (size < 2 * (j + 1) || size < m->cap * 2)
        size *= 2;
    free(m->idx);
    m->idx = malloc(size * sizeof(int32_t));
    if (!m->idx)
        return -1;
    memset(m->idx, 0xff, size * sizeof(int32_t));
    m->mask = size - 1;
    for (size_t i = 0; i < j; i++) {
        size_t s = mix(m->e[i].key) & m->mask;
        while (m->idx[s] >= 0)
            s = (s + 1) & m->mask;
        m->idx[s] = (int32_t)i;
    }
    return 0;
}

/* the slot holding key's live entry, or -1 */
static int64_t omap_find(const struct omap *m, uint64_t key)
{
    if (!m->idx)
        return -1;
    size_t s = mix(key) & m->mask;
    for (;;) {
        int32_t i = m->idx[s];
        if (i == -1)
            return -1;
        if (i >= 0 && m->e[i].alive && m->e[i].key == key)
            return (int64_t)s;
        s = (s + 1) & m->mask;
    }
}

static struct ent *omap_pop(struct omap *m, uint64_t key, struct ent *out)
{
    int64_t s = omap_find(m, key);
    if (s < 0)
        return NULL;
    struct ent *e = &m->e[m->idx[s]];
    *out = *e;
    e->alive = 0;
    m->idx[s] = -2;
    m->live--;
    return out;
}

/* a new key at the end (the caller popped it first) */
static int omap_add(struct omap *m, const struct ent *v)
{
    if (grow((void **)&m->e, &m->cap, m->n + 1, sizeof(struct ent)))
        return -1;
    if (!m->idx || 2 * (m->n + 1) > m->mask + 1) {
        if (omap_rehash(m))
            return -1;
        if (grow((void **)&m->e, &m->cap, m->n + 1, sizeof(struct ent)))
            return -1;
    }
    size_t s = mix(v->key) & m->mask;
    while (m->idx[s] >= 0)
        s = (s + 1) & m->mask;
    m->e[m->n] = *v;
    m->e[m->n].alive = 1;
    m->idx[s] = (int32_t)m->n++;
    m->live++;
    return 0;
}

static uint64_t hash_bytes(const uint8_t *s, size_t n)
{
    /* eight bytes a step: a call site or mask is looked up for every line */
    uint64_t h = 1469598103934665603ull ^ n, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s + i, n - i);
    return mix(h ^ w);
}

static int smap_get(const struct smap *m, const uint8_t *s, size_t n, int64_t *v)
{
    if (!m->idx)
        return 0;
    size_t k = hash_bytes(s, n) & m->mask;
    for (;;) {
        int32_t i = m->idx[k];
        if (i < 0)
            return 0;
        if (m->e[i].n == n && !memcmp(m->e[i].s, s, n)) {
            *v = m->e[i].v;
            return 1;
        }
        k = (k + 1) & m->mask;
    }
}

static int smap_set(struct smap *m, const uint8_t *s, size_t n, int64_t v)
{
    if (grow((void **)&m->e, &m->cap, m->n + 1, sizeof(struct sent)))
        return -1;
    if (!m->idx || 2 * (m->n + 1) > m->mask + 1) {
        size_t size = m->idx ? 2 * (m->mask + 1) : 64;
        int32_t *idx = malloc(size * sizeof(int32_t));
        if (!idx)
            return -1;
        memset(idx, 0xff, size * sizeof(int32_t));
        free(m->idx);
        m->idx = idx;
        m->mask = size - 1;
        for (size_t i = 0; i < m->n; i++) {
            size_t k = hash_bytes(m->e[i].s, m->e[i].n) & m->mask;
            while (m->idx[k] >= 0)
                k = (k + 1) & m->mask;
            m->idx[k] = (int32_t)i;
        }
    }
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy)
        return -1;
    memcpy(copy, s, n);
    size_t k = hash_bytes(s, n) & m->mask;
    while (m->idx[k] >= 0)
        k = (k + 1) & m->mask;
    m->e[m->n] = (struct sent){copy, n, v};
    m->idx[k] = (int32_t)m->n++;
    return 0;
}

static void smap_free(struct smap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->e[i].s);
    free(m->e);
    free(m->idx);
}

pa_tbuild *pa_tbuild_new(uint64_t slab_mask, uint64_t user_bits)
{
    pa_tbuild *b = calloc(1, sizeof(*b));
    if (b) {
        b->slab_mask = slab_mask;
        b->user_bits = user_bits;
        b->top_cpu = b->top_op = -1;
    }
    return b;
}

void pa_tbuild_free(pa_tbuild *b)
{
    if (!b)
        return;
    free(b->objects.e); free(b->objects.idx); free(b->pages.e); free(b->pages.idx);
    free(b->internal.e); free(b->internal.idx);
    smap_free(&b->sites); smap_free(&b->gfps); smap_free(&b->caches);
    free(b->caller_of); free(b->pending); free(b->out); free(b->notes); free(b->firsts);
    free(b);
}

/* tables: 0 call sites and cache names (-> string id), 1 masks (-> value), 2 cache keys (-> index;
 * first: its first kmem_cache_alloc is noted) */
int pa_tbuild_set(pa_tbuild *b, int table, const uint8_t *s, int64_t n, int64_t v, int first)
{
    struct smap *m = table == 0 ? &b->sites : table == 1 ? &b->gfps : &b->caches;
    if (table == 0 && (size_t)v >= b->n_sids) {
        size_t cap = b->n_sids;
        if (grow((void **)&b->caller_of, &cap, (size_t)v + 1, sizeof(int64_t)))
            return -1;
        for (size_t i = b->n_sids; i <= (size_t)v; i++)
            b->caller_of[i] = -1;
        b->n_sids = cap;
        for (size_t i = (size_t)v + 1; i < cap; i++)
            b->caller_of[i] = -1;
    }
    if (table == 2 && first)
        v |= INT64_C(1) << 40;
    return smap_set(m, s, (size_t)n, v);
}

static int emit(pa_tbuild *b, uint64_t kind, uint64_t cpu, uint64_t gfp, int64_t sid, int64_t cache, int64_t h,
                uint64_t arg)
{
    int64_t who = 0;
    if (sid >= 0) {
        who = b->caller_of[sid];
        if (who < 0) {
            who = b->caller_of[sid] = ++b->n_callers;
            if (grow((void **)&b->notes, &b->notes_cap, b->nnotes + 1, sizeof(int64_t)))
                return -1;
            b->notes[b->nnotes++] = sid;
        }
    }
    if (grow((void **)&b->out, &b->out_cap, b->nout + 4, sizeof(uint64_t)))
        return -1;
    int64_t index = b->base + (int64_t)(b->nout >> 2);
    uint64_t *w = b->out + b->nout;
    w[0] = kind | cpu << 16 | gfp << 32;
    w[1] = (uint64_t)who | ((uint64_t)cache & 0xffffffffull) << 32;
    w[2] = (uint64_t)h;
    w[3] = arg;
    b->nout += 4;
    if ((int64_t)cpu > b->top_cpu) {
        b->top_cpu = (int64_t)cpu;
        b->top_op = index;
    }
    return 0;
}

static int64_t get_order(uint64_t size)
{
    uint64_t x = size ? (size - 1) >> 12 : 0;
    int64_t n = 0;
    while (x) {
        n++;
        x >>= 1;
    }
    return n;
}

/* trace.py _not_slab_page(): -1 when the page can be the slab allocator's own, else ST_* */
static int not_slab(const pa_tbuild *b, uint64_t order, uint64_t gfp, int is_kmalloc, uint64_t bytes)
{
    if (gfp & b->user_bits)
        return ST_USER;
    if (is_kmalloc && bytes > 8192)
        return order == (uint64_t)get_order(bytes) ? -1 : ST_ORDER;
    if (gfp & ~b->slab_mask)
        return ST_FLAGS;
    int64_t top = get_order(bytes) > 3 ? get_order(bytes) : 3;
    return order > (uint64_t)top ? ST_ORDER : -1;
}

static int free_object(pa_tbuild *b, const struct ent *o, uint64_t cpu, int64_t sid, int as_kfree)
{
    if (as_kfree || o->cache < 0)
        return emit(b, PA_OP_KFREE, cpu, 0, sid, -1, o->h, 0);
    return emit(b, PA_OP_KMEM_CACHE_FREE, cpu, 0, sid, o->cache, o->h, 0);
}

static int implied_page_free(pa_tbuild *b, uint64_t pfn, uint64_t cpu)
{
    struct ent held;
    omap_pop(&b->internal, pfn, &held);
    if (omap_pop(&b->pages, pfn, &held)) {
        if (emit(b, PA_OP_FREE_PAGES, cpu, 0, -1, -1, held.h, held.b))
            return -1;
        b->stats[ST_IMPLIED_PAGES]++;
    }
    return 0;
}

/* trace.py flush_pages(); has_slab 0 is flush_pages(None) */
static int flush_pages(pa_tbuild *b, int has_slab, uint64_t slab_ptr, uint64_t slab_cpu, int is_kmalloc,
                       uint64_t bytes)
{
    size_t n = b->npend, first = n;
    if (!n)
        return 0;
    const struct pend *last = &b->pending[n - 1];
    if (has_slab && last->cpu == slab_cpu) {
        int inside = slab_ptr < PA_PAGE_OFFSET;
        if (!inside && last->has_pfn) {
            unsigned __int128 at = (slab_ptr - PA_PAGE_OFFSET) >> 12;
            unsigned __int128 end = (unsigned __int128)last->pfn + ((unsigned __int128)1 << last->order);
            inside = last->pfn <= at && at < end;
        }
        if (inside) {
            int why = not_slab(b, last->order, last->gfp, is_kmalloc, bytes);
            if (why < 0) {
                first = n - 1;
                while (first > 0 && !b->pending[first - 1].has_pfn &&
                       not_slab(b, b->pending[first - 1].order, b->pending[first - 1].gfp, is_kmalloc, bytes) < 0)
                    first--;
            } else {
                b->stats[why]++;
            }
        }
    }
    for (size_t k = 0; k < n; k++) {
        const struct pend *p = &b->pending[k];
        if (k >= first) {
            b->stats[ST_SLAB_PAGES]++;
            if (p->has_pfn && omap_find(&b->internal, p->pfn) < 0) {
                struct ent e = {p->pfn, 0, 0, 0, 0, 1};
                if (omap_add(&b->internal, &e))
                    return -1;
            }
            continue;
        }
        if (p->has_pfn && implied_page_free(b, p->pfn, p->cpu))
            return -1;
        int64_t h = b->base + (int64_t)(b->nout >> 2);
        if (emit(b, PA_OP_ALLOC_PAGES, p->cpu, p->gfp, -1, -1, -1, p->order))
            return -1;
        if (p->has_pfn) {
            struct ent e = {p->pfn, h, 0, p->order, 0, 1};
            if (omap_add(&b->pages, &e))
                return -1;
        }
    }
    b->npend = 0;
    return 0;
}

/* Runs records [start, nrec) of a pa_tparse_feed() call; returns the record it stopped at
 * (nrec: all done) and sets *why: PA_TBUILD_* below.  cut_at: stop before a record once the
 * stream holds that many ops (-1: never). */
enum { TB_DONE, TB_SITE, TB_GFP, TB_CACHE, TB_SLOW, TB_CUT, TB_NOMEM };

int64_t pa_tbuild_run(pa_tbuild *b, const uint64_t *recs, int64_t nrec, const uint8_t *text, int64_t start,
                      int64_t cut_at, int64_t *why)
{
    static const uint8_t none[] = "none";
    char key[32];
    for (int64_t k = start; k < nrec; k++) {
        const uint64_t *r = recs + k * PA_TPARSE_WORDS;
        if (cut_at >= 0 && b->base + (int64_t)(b->nout >> 2) >= cut_at) {
            *why = TB_CUT;
            return k;
        }
        uint64_t kind = r[0], cpu = r[2], ptr = r[3], a = r[4], bytes = r[5], flags = r[6];
        if (kind > PA_TRACE_MM_PAGE_FREE) {
            *why = TB_SLOW;
            return k;
        }
        int64_t sid = -1, gfp = 0, cache = -1;
        if ((flags & PA_TPARSE_F_SITE)) {
            if (!smap_get(&b->sites, text + r[7], r[8], &sid)) {
                *why = TB_SITE;
                return k;
            }
        }
        if (kind == PA_TRACE_MM_PAGE_ALLOC || kind <= PA_TRACE_KMEM_CACHE_ALLOC) {
            int got = (flags & PA_TPARSE_F_GFP) ? smap_get(&b->gfps, text + r[9], r[10], &gfp)
                                                : smap_get(&b->gfps, none, 4, &gfp);
            if (!got) {
                *why = TB_GFP;
                return k;
            }
            if ((uint64_t)gfp >> 32 || (kind == PA_TRACE_MM_PAGE_ALLOC && a >= 64)) {
                *why = TB_SLOW;     /* a mask or order Python's stream builder refuses: its errors */
                return k;
            }
        }
        if (kind == PA_TRACE_KMEM_CACHE_ALLOC) {
            int got;
            if ((flags & PA_TPARSE_F_NAME) && r[12]) {
                got = smap_get(&b->caches, text + r[11], r[12], &cache);
            } else {
                int len = snprintf(key, sizeof(key), "trace-%llu", (unsigned long long)a);
                got = smap_get(&b->caches, (const uint8_t *)key, (size_t)len, &cache);
            }
            if (!got) {
                *why = TB_CACHE;
                return k;
            }
        }
        int is_null = (flags & PA_TPARSE_F_NULL) || (kind == PA_TRACE_MM_PAGE_ALLOC && !(flags & PA_TPARSE_F_PAGE));
        b->stats[ST_EVENTS]++;
        if (b->max_cpu < (int64_t)cpu)
            b->max_cpu = (int64_t)cpu;
        if (kind == PA_TRACE_MM_PAGE_ALLOC) {
            if (grow((void **)&b->pending, &b->pend_cap, b->npend + 1, sizeof(struct pend)))
                goto nomem;
            b->pending[b->npend++] = (struct pend){cpu, is_null ? 0 : ptr, a, (uint64_t)gfp, !is_null};
            continue;
        }
        struct ent old;
        if (kind <= PA_TRACE_KMEM_CACHE_ALLOC) {
            if (flush_pages(b, 1, is_null ? 0 : ptr, cpu, kind == PA_TRACE_KMALLOC, bytes))
                goto nomem;
            if (!is_null && omap_pop(&b->objects, ptr, &old)) {
                if (free_object(b, &old, cpu, -1, 0))
                    goto nomem;
                b->stats[ST_IMPLIED]++;
            }
            int64_t h = b->base + (int64_t)(b->nout >> 2);
            if (kind == PA_TRACE_KMALLOC) {
                if (emit(b, PA_OP_KMALLOC, cpu, (uint64_t)gfp, sid, -1, -1, a))
                    goto nomem;
            } else {
                if (cache >> 40) {
                    /* a cache new to the stream: its first op is noted (trace.py cache_first_op) */
                    cache &= (INT64_C(1) << 40) - 1;
                    if (grow((void **)&b->firsts, &b->firsts_cap, b->nfirsts + 2, sizeof(int64_t)))
                        goto nomem;
                    b->firsts[b->nfirsts++] = cache;
                    b->firsts[b->nfirsts++] = h;
                    int len = (flags & PA_TPARSE_F_NAME) && r[12] ? (int)r[12]
                              : snprintf(key, sizeof(key), "trace-%llu", (unsigned long long)a);
                    const uint8_t *name = (flags & PA_TPARSE_F_NAME) && r[12] ? text + r[11] : (const uint8_t *)key;
                    /* noted once: later uses find it without the mark */
                    for (size_t i = 0; i < b->caches.n; i++)
                        if (b->caches.e[i].n == (size_t)len && !memcmp(b->caches.e[i].s, name, (size_t)len))
                            b->caches.e[i].v = cache;
                }
                if (emit(b, PA_OP_KMEM_CACHE_ALLOC, cpu, (uint64_t)gfp, sid, cache, -1, 0))
                    goto nomem;
            }
            if (!is_null) {
                struct ent e = {ptr, h, cache, bytes, (uint64_t)gfp, 1};
                if (omap_add(&b->objects, &e))
                    goto nomem;
            }
            continue;
        }
        if (flush_pages(b, 0, 0, 0, 0, 0))
            goto nomem;
        if (kind != PA_TRACE_MM_PAGE_FREE) {
            if (is_null) {
                if (kind == PA_TRACE_KFREE && emit(b, PA_OP_KFREE, cpu, 0, sid, -1, -1, 0))
                    goto nomem;
                continue;
            }
            if (!omap_pop(&b->objects, ptr, &old)) {
                b->stats[ST_UNMATCHED]++;
                continue;
            }
            if (free_object(b, &old, cpu, sid, kind == PA_TRACE_KFREE))
                goto nomem;
        } else if (is_null) {
            b->stats[ST_UNMATCHED]++;
        } else if (omap_pop(&b->pages, ptr, &old)) {
            if (emit(b, PA_OP_FREE_PAGES, cpu, 0, -1, -1, old.h, a))
                goto nomem;
        } else if (omap_pop(&b->internal, ptr, &old)) {
            ;
        } else {
            b->stats[ST_UNMATCHED]++;
        }
    }
    *why = TB_DONE;
    return nrec;
nomem:
    *why = TB_NOMEM;
    return -1;
}

int64_t pa_tbuild_out(pa_tbuild *b, uint64_t **out)
{
    *out = b->out;
    return (int64_t)(b->nout >> 2);
}

/* the ops taken (the stream's length grows by them); the top CPU is the taken ops' */
void pa_tbuild_taken(pa_tbuild *b)
{
    b->base += (int64_t)(b->nout >> 2);
    b->nout = 0;
    b->nnotes = b->nfirsts = 0;
    b->top_cpu = b->top_op = -1;
}

/* stats (ST_* order), max CPU, top CPU of the ops not taken and its op, counts of new
 * callers' string ids and first-op pairs */
void pa_tbuild_state(pa_tbuild *b, int64_t *st, int64_t **notes, int64_t **firsts)
{
    memcpy(st, b->stats, sizeof(b->stats));
    st[ST_N] = b->max_cpu;
    st[ST_N + 1] = b->top_cpu;
    st[ST_N + 2] = b->top_op;
    st[ST_N + 3] = (int64_t)b->nnotes;
    st[ST_N + 4] = (int64_t)b->nfirsts;
    *notes = b->notes;
    *firsts = b->firsts;
}

/* live entries of 0 objects (key h cache bytes gfp), 1 pages (key h - order -), 2 internal,
 * 3 pending (cpu pfn order gfp has_pfn), five words each, in their order; returns the count */
int64_t pa_tbuild_export(pa_tbuild *b, int which, int64_t *out, int64_t cap)
{
    int64_t n = 0;
    if (which == 3) {
        for (size_t i = 0; i < b->npend; i++, n++)
            if (n < cap) {
                const struct pend *p = &b->pending[i];
                int64_t *w = out + 5 * n;
                w[0] = (int64_t)p->cpu; w[1] = (int64_t)p->pfn; w[2] = (int64_t)p->order;
                w[3] = (int64_t)p->gfp; w[4] = p->has_pfn;
            }
        return n;
    }
    const struct omap *m = which == 0 ? &b->objects : which == 1 ? &b->pages : &b->internal;
    for (size_t i = 0; i < m->n; i++) {
        const struct ent *e = &m->e[i];
        if (!e->alive)
            continue;
        if (n < cap) {
            int64_t *w = out + 5 * n;
            w[0] = (int64_t)e->key; w[1] = e->h; w[2] = e->cache; w[3] = (int64_t)e->b; w[4] = (int64_t)e->gfp;
        }
        n++;
    }
    return n;
}

/* a new stream begins with copies of the live objects' ops, then the live pages': renumber */
void pa_tbuild_recarry(pa_tbuild *b)
{
    int64_t h = 0;
    struct omap *maps[2] = {&b->objects, &b->pages};
    for (int j = 0; j < 2; j++)
        for (size_t i = 0; i < maps[j]->n; i++)
            if (maps[j]->e[i].alive)
                maps[j]->e[i].h = h++;
    b->base = h;
    b->nout = 0;
    b->top_cpu = b->top_op = -1;
}

/* the capture's end: the page allocations still waiting are the callers' (flush_pages(None)) */
int pa_tbuild_finish(pa_tbuild *b)
{
    return flush_pages(b, 0, 0, 0, 0, 0);
}

/* trace.py _expected(): the live objects per (cache or -1, bytes_alloc, gfp for kmalloc) and
 * the live pages per order (which 1), in the order each group first occurs; four words per
 * group (cache, bytes, gfp, count), returns the groups; cap: at least the live entries */
int64_t pa_tbuild_expect(pa_tbuild *b, int which, int64_t *out, int64_t cap)
{
    const struct omap *m = which ? &b->pages : &b->objects;
    size_t size = 64;
    while (size < 2 * (m->live + 1))
        size *= 2;
    int32_t *idx = malloc(size * sizeof(int32_t));
    if (!idx)
        return -1;
    memset(idx, 0xff, size * sizeof(int32_t));
    int64_t n = 0;
    for (size_t i = 0; i < m->n; i++) {
        const struct ent *e = &m->e[i];
        if (!e->alive)
            continue;
        int64_t c = which ? 0 : e->cache, by = (int64_t)e->b, g = which || e->cache >= 0 ? 0 : (int64_t)e->gfp;
        size_t s = mix((uint64_t)c * 0x9e3779b97f4a7c15ull ^ mix((uint64_t)by) ^ ((uint64_t)g << 1)) & (size - 1);
        for (;;) {
            int32_t j = idx[s];
            if (j < 0) {
                idx[s] = (int32_t)n;
                if (n < cap) {
                    int64_t *w = out + 4 * n;
                    w[0] = c; w[1] = by; w[2] = g; w[3] = 1;
                }
                n++;
                break;
            }
            int64_t *w = out + 4 * j;
            if (j < cap && w[0] == c && w[1] == by && w[2] == g) {
                w[3]++;
                break;
            }
            s = (s + 1) & (size - 1);
        }
    }
    free(idx);
    return n;
}
