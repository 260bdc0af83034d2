/*
 * sheaf.c - per-cpu sheaves and the node barn (mm/slub.c, new in 6.18).
 * pyalloc/model/sheaf.py is the same algorithm, function for function.
 *
 * A cache created with sheaf_capacity N > 0 (and no debug flag) has, per CPU,
 * a main sheaf and maybe a spare, each an array of up to N object pointers
 * used LIFO at the top, and one barn per node holding full and empty sheaves
 * (both lists LIFO: list_add puts at the head, list_first_entry takes it).
 * Objects in a sheaf are allocated as far as their slab knows (slabinfo
 * counts them active); to the user they are free (OBJ_SHEAF, so freeing one
 * again is a double free).
 *
 *  - alloc_from_pcs pops main's top.  An empty main swaps with a non-empty
 *    spare, else trades itself for a full sheaf of the barn
 *    (barn_replace_empty_sheaf), else - only if the gfp may block - refills
 *    the spare, an empty barn sheaf or a new one from the slabs
 *    (refill_sheaf: objects[0] is the first one the slabs hand out, so the
 *    sheaf gives them back in reverse) and puts the old main in the barn.
 *    Otherwise the allocation takes the ordinary slab path.
 *  - free_to_pcs pushes on main.  A full main moves to the spare slot when
 *    there is none (taking an empty barn sheaf or a new one), swaps with a
 *    spare that has room, else trades itself for an empty barn sheaf while
 *    the barn holds fewer than MAX_FULL_SHEAVES full ones; past that the
 *    full spare is flushed to the slabs and becomes main.
 *  - flushing (kmem_cache_shrink, destroy) empties each CPU's sheaves to the
 *    slabs through __kmem_cache_free_bulk (slab.c slab_free_bulk), the main
 *    sheaf in batches of PCS_BATCH_MAX from the top, and frees the spare;
 *    barn_shrink flushes and frees every barn sheaf.
 *
 * Departure: a sheaf's own memory (a kzalloc in the kernel) is host memory
 * here, so making one never fails and never touches the kmalloc caches.
 */
#include <stdlib.h>

#include "internal.h"

#define MAX_FULL_SHEAVES 10u
#define PCS_BATCH_MAX 32u

struct pa_sheaf *sheaf_new(const struct pa_cache *s)
{
    struct pa_sheaf *sheaf = malloc(sizeof(*sheaf) + (size_t)s->sheaf_capacity * sizeof(uint64_t));
    if (sheaf) {
        sheaf->next = NULL;
        sheaf->size = 0;
    }
    return sheaf;
}

static void free_empty_sheaf(struct pa_sheaf *sheaf)
{
    free(sheaf);
}

static struct pa_sheaf *barn_pop(struct pa_sheaf **list, uint32_t *nr)
{
    struct pa_sheaf *sheaf = *list;
    *list = sheaf->next;
    sheaf->next = NULL;
    (*nr)--;
    return sheaf;
}

static void barn_push(struct pa_sheaf **list, uint32_t *nr, struct pa_sheaf *sheaf)
{
    sheaf->next = *list;
    *list = sheaf;
    (*nr)++;
}

static struct pa_sheaf *barn_get_empty_sheaf(struct pa_barn *barn)
{
    return barn->nr_empty ? barn_pop(&barn->empty, &barn->nr_empty) : NULL;
}

/* a full sheaf for the empty one, ignoring the limit: the number of sheaves stays */
static struct pa_sheaf *barn_replace_empty_sheaf(struct pa_barn *barn, struct pa_sheaf *empty)
{
    if (!barn->nr_full)
        return NULL;
    struct pa_sheaf *full = barn_pop(&barn->full, &barn->nr_full);
    barn_push(&barn->empty, &barn->nr_empty, empty);
    return full;
}

/* an empty sheaf for the full one, refused (E2BIG) when the barn has enough full ones */
static int barn_replace_full_sheaf(struct pa_barn *barn, struct pa_sheaf *full, struct pa_sheaf **empty)
{
    if (barn->nr_full >= MAX_FULL_SHEAVES)
        return PA_E2BIG;
    if (!barn->nr_empty)
        return PA_ENOMEM;
    *empty = barn_pop(&barn->empty, &barn->nr_empty);
    barn_push(&barn->full, &barn->nr_full, full);
    return PA_OK;
}

/* __kmem_cache_alloc_bulk: all or nothing */
static int refill_sheaf(pa_machine *m, struct pa_cache *s, struct pa_sheaf *sheaf, uint32_t gfp)
{
    uint32_t to_fill = s->sheaf_capacity - sheaf->size;
    for (uint32_t i = 0; i < to_fill; i++)
        if (slab_get_object(m, s, gfp, &sheaf->objects[sheaf->size + i]) < 0) {
            slab_free_bulk(m, s, &sheaf->objects[sheaf->size], i);
            return PA_ENOMEM;
        }
    sheaf->size = s->sheaf_capacity;
    return PA_OK;
}

static struct pa_sheaf *alloc_full_sheaf(pa_machine *m, struct pa_cache *s, uint32_t gfp)
{
    struct pa_sheaf *sheaf = sheaf_new(s);
    if (!sheaf)
        return NULL;
    if (refill_sheaf(m, s, sheaf, gfp | GFP_NOMEMALLOC_BIT)) {
        free_empty_sheaf(sheaf);
        return NULL;
    }
    return sheaf;
}

/* every object of main to the slabs, PCS_BATCH_MAX at a time from the top */
static void sheaf_flush_main(pa_machine *m, struct pa_cache *s, struct pa_sheaf *sheaf)
{
    while (sheaf->size) {
        uint32_t batch = sheaf->size < PCS_BATCH_MAX ? sheaf->size : PCS_BATCH_MAX;
        sheaf->size -= batch;
        slab_free_bulk(m, s, &sheaf->objects[sheaf->size], batch);
    }
}

static void sheaf_flush_unused(pa_machine *m, struct pa_cache *s, struct pa_sheaf *sheaf)
{
    if (!sheaf->size)
        return;
    slab_free_bulk(m, s, sheaf->objects, sheaf->size);
    sheaf->size = 0;
}

static bool pcs_replace_empty_main(pa_machine *m, struct pa_cache *s, struct pa_pcs *pcs, uint32_t gfp)
{
    if (pcs->spare && pcs->spare->size > 0) {
        struct pa_sheaf *t = pcs->main;
        pcs->main = pcs->spare;
        pcs->spare = t;
        return true;
    }
    struct pa_sheaf *full = barn_replace_empty_sheaf(&s->barn, pcs->main);
    if (full) {
        pcs->main = full;
        return true;
    }
    if (!(gfp & GFP_DIRECT_RECLAIM_BIT))
        return false;
    struct pa_sheaf *empty;
    if (pcs->spare) {
        empty = pcs->spare;
        pcs->spare = NULL;
    } else {
        empty = barn_get_empty_sheaf(&s->barn);
    }
    if (empty) {
        if (!refill_sheaf(m, s, empty, gfp))
            full = empty;
        else
            free_empty_sheaf(empty);        /* very low on memory: not worth the barn */
    } else {
        full = alloc_full_sheaf(m, s, gfp);
    }
    if (!full)
        return false;
    barn_push(&s->barn.empty, &s->barn.nr_empty, pcs->main);
    pcs->main = full;
    return true;
}

bool alloc_from_pcs(pa_machine *m, struct pa_cache *s, uint32_t gfp, uint64_t *obj)
{
    struct pa_pcs *pcs = &s->pcs[m->cpu];
    if (pa_unlikely(pcs->main->size == 0) && !pcs_replace_empty_main(m, s, pcs, gfp))
        return false;
    *obj = pcs->main->objects[--pcs->main->size];
    return true;
}

/* __pcs_install_empty_sheaf: main is full */
static void pcs_install_empty_sheaf(struct pa_cache *s, struct pa_pcs *pcs, struct pa_sheaf *empty)
{
    if (!pcs->spare) {
        pcs->spare = pcs->main;
        pcs->main = empty;
        return;
    }
    barn_push(&s->barn.full, &s->barn.nr_full, pcs->main);
    pcs->main = empty;
}

/* __pcs_replace_full_main: leaves room on main */
static void pcs_replace_full_main(pa_machine *m, struct pa_cache *s, struct pa_pcs *pcs)
{
    struct pa_sheaf *empty = NULL;
    if (!pcs->spare) {
        empty = barn_get_empty_sheaf(&s->barn);
        if (empty) {
            pcs->spare = pcs->main;
            pcs->main = empty;
            return;
        }
    } else if (pcs->spare->size < s->sheaf_capacity) {
        struct pa_sheaf *t = pcs->main;
        pcs->main = pcs->spare;
        pcs->spare = t;
        return;
    } else {
        int rc = barn_replace_full_sheaf(&s->barn, pcs->main, &empty);
        if (rc == PA_OK) {
            pcs->main = empty;
            return;
        }
        if (rc == PA_E2BIG) {
            empty = pcs->spare;             /* full: flushed, it becomes main */
            pcs->spare = NULL;
            sheaf_flush_unused(m, s, empty);
            pcs_install_empty_sheaf(s, pcs, empty);
            return;
        }
    }
    empty = sheaf_new(s);
    if (!empty) {
        sheaf_flush_main(m, s, pcs->main);
        return;
    }
    pcs_install_empty_sheaf(s, pcs, empty);
}

void free_to_pcs(pa_machine *m, struct pa_cache *s, uint64_t obj)
{
    struct pa_pcs *pcs = &s->pcs[m->cpu];
    if (pa_unlikely(pcs->main->size == s->sheaf_capacity))
        pcs_replace_full_main(m, s, pcs);
    pcs->main->objects[pcs->main->size++] = obj;
}

/* this CPU's sheaves to the slabs: the spare goes, main stays (empty) */
void pcs_flush_all(pa_machine *m, struct pa_cache *s)
{
    struct pa_pcs *pcs = &s->pcs[m->cpu];
    struct pa_sheaf *spare = pcs->spare;
    pcs->spare = NULL;
    if (spare) {
        sheaf_flush_unused(m, s, spare);
        free_empty_sheaf(spare);
    }
    sheaf_flush_main(m, s, pcs->main);
}

void barn_shrink(pa_machine *m, struct pa_cache *s)
{
    struct pa_barn *barn = &s->barn;
    while (barn->nr_full) {
        struct pa_sheaf *sheaf = barn_pop(&barn->full, &barn->nr_full);
        sheaf_flush_unused(m, s, sheaf);
        free_empty_sheaf(sheaf);
    }
    while (barn->nr_empty)
        free_empty_sheaf(barn_pop(&barn->empty, &barn->nr_empty));
}

int pcs_init(pa_machine *m, struct pa_cache *s, uint32_t capacity)
{
    s->sheaf_capacity = capacity;
    s->pcs = calloc(m->cpus, sizeof(*s->pcs));
    if (!s->pcs)
        return PA_ENOMEM;
    for (uint32_t c = 0; c < m->cpus; c++) {
        s->pcs[c].main = sheaf_new(s);
        if (!s->pcs[c].main) {
            pcs_destroy(m, s);
            return PA_ENOMEM;
        }
    }
    return PA_OK;
}

/* the host memory of every sheaf; the objects must be flushed already */
void pcs_destroy(pa_machine *m, struct pa_cache *s)
{
    if (s->pcs)
        for (uint32_t c = 0; c < m->cpus; c++) {
            free(s->pcs[c].main);
            free(s->pcs[c].spare);
        }
    free(s->pcs);
    s->pcs = NULL;
    for (struct pa_sheaf **list = &s->barn.full; list; list = list == &s->barn.full ? &s->barn.empty : NULL)
        while (*list) {
            struct pa_sheaf *next = (*list)->next;
            free(*list);
            *list = next;
        }
    s->barn.nr_full = s->barn.nr_empty = 0;
}

/* -- introspection ------------------------------------------------------------------ */

static inline int64_t sheaf_obj_phys(const pa_machine *m, const struct pa_cache *s, uint64_t obj)
{
    const struct pa_slab *slab = &m->slabs[obj >> 16];
    return (int64_t)(((uint64_t)slab->pfn << PA_PAGE_SHIFT) + s->red_left_pad + (obj & 0xffff) * s->size);
}

static void put_word(int64_t *out, int64_t cap, int64_t *n, int64_t v)
{
    if (*n < cap)
        out[*n] = v;
    (*n)++;
}

static void put_sheaf(const pa_machine *m, const struct pa_cache *s, const struct pa_sheaf *sheaf, int64_t *out,
                      int64_t cap, int64_t *n)
{
    if (!sheaf) {
        put_word(out, cap, n, -1);
        return;
    }
    put_word(out, cap, n, sheaf->size);
    for (uint32_t i = sheaf->size; i-- > 0;)
        put_word(out, cap, n, sheaf_obj_phys(m, s, sheaf->objects[i]));
}

/* A cpu's layers of a cache as words: the cpu slab's phys (-1 for none); the
 * count and objects of the cpu freelist in order; the count and slab physes
 * of the cpu partial chain in order; main's and the spare's count (-1 for no
 * sheaf) and objects, top first.  Returns how many words that is (out gets
 * the first cap of them), or a status. */
PA_ENTRY(int64_t, pa_cpu_slab_info, (pa_machine *m, int64_t cache, int64_t cpu, int64_t *out, int64_t cap),
         (m, cache, cpu, out, cap))
{
    if (cache < 0 || cache >= m->nr_caches || !m->caches[cache].alive || cpu < 0 || cpu >= m->cpus || cap < 0
        || (cap && !out))
        return PA_EINVAL;
    const struct pa_cache *s = &m->caches[cache];
    const struct pa_cpu_slab *c = &s->cpu[cpu];
    int64_t n = 0;
    put_word(out, cap, &n, c->slab == PA_NIL ? -1 : (int64_t)((uint64_t)m->slabs[c->slab].pfn << PA_PAGE_SHIFT));
    int64_t at = n, count = 0;
    put_word(out, cap, &n, 0);
    if (c->slab != PA_NIL)
        for (uint32_t slot = c->freelist; slot != SLOT_NIL; slot = m->slabs[c->slab].chain[slot], count++)
            put_word(out, cap, &n, sheaf_obj_phys(m, s, SHEAF_OBJ(c->slab, slot)));
    if (at < cap)
        out[at] = count;
    at = n;
    count = 0;
    put_word(out, cap, &n, 0);
    for (uint32_t id = c->partial; id != PA_NIL; id = m->slabs[id].next, count++)
        put_word(out, cap, &n, (int64_t)((uint64_t)m->slabs[id].pfn << PA_PAGE_SHIFT));
    if (at < cap)
        out[at] = count;
    put_sheaf(m, s, s->pcs ? s->pcs[cpu].main : NULL, out, cap, &n);
    put_sheaf(m, s, s->pcs ? s->pcs[cpu].spare : NULL, out, cap, &n);
    return n;
}

PA_ENTRY(int, pa_barn_info, (pa_machine *m, int64_t cache, int64_t *out2), (m, cache, out2))
{
    if (!out2 || cache < 0 || cache >= m->nr_caches || !m->caches[cache].alive)
        return PA_EINVAL;
    out2[0] = m->caches[cache].barn.nr_full;
    out2[1] = m->caches[cache].barn.nr_empty;
    return PA_OK;
}
