/*
 * slab_random.c - the random parts of SLUB: CONFIG_SLAB_FREELIST_RANDOM,
 * CONFIG_SLAB_FREELIST_HARDENED and CONFIG_RANDOM_KMALLOC_CACHES, each on
 * when its bit is in m->kconfig.  pyalloc/model/slab_random.py is the twin.
 *
 * Every draw comes from the machine's stream (prandom.h), in this order:
 *  - kmem_cache_create() of a new cache (never a merge): s->random with
 *    get_random_long() (HARDENED), then its random sequence (RANDOM, and only
 *    if a slab holds at least two objects): Fisher-Yates over 0..objects-1,
 *    i from objects-1 down to 1, swapping i with get_random_u32_below(i + 1)
 *    (mm/slab_common.c freelist_randomize).  The kernel makes the sequences
 *    of the boot caches only once slab_state reaches UP; pyalloc draws every
 *    cache's at its creation.  The sequence keeps its length for the cache's
 *    life: kmem_cache_shrink() leaves it alone.
 *  - every new slab with at least two objects, when the cache has a
 *    sequence: one start position get_random_u32_below(objects) (the cache's
 *    oo objects, mm/slub.c shuffle_freelist), then the freelist follows the
 *    sequence from there, wrapping, skipping indices beyond the slab's own
 *    objects (a slab of the fallback order holds fewer; next_freelist_entry).
 *  - the end of the kmalloc caches' creation: random_kmalloc_seed with
 *    get_random_u64() (mm/slab_common.c create_kmalloc_caches).
 *
 * get_random_u32() is the low half of one 64-bit draw; get_random_u32_below()
 * reduces it as drivers/char/random.c __get_random_u32_below() does (multiply, keep the
 * high half, reject the few low halves that would bias it).
 *
 * Hardened free pointers (freelist_ptr_encode, internal.h) need no state but
 * s->random: the chain beside the slab stays the truth, the bytes in memory
 * are what the kernel would have written there.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define GOLDEN_RATIO_64 0x61C8864680B583EBull

static uint32_t get_random_u32(pa_machine *m)
{
    return (uint32_t)pa_prandom_next(&m->rand_state);
}

/* drivers/char/random.c __get_random_u32_below() */
static uint32_t get_random_u32_below(pa_machine *m, uint32_t ceil)
{
    uint64_t mult = (uint64_t)ceil * get_random_u32(m);
    if (pa_unlikely((uint32_t)mult < ceil)) {
        uint32_t bound = (uint32_t)(-ceil) % ceil;
        while ((uint32_t)mult < bound)
            mult = (uint64_t)ceil * get_random_u32(m);
    }
    return (uint32_t)(mult >> 32);
}

/* whether kmem_cache_create() of s makes a random sequence (cache_random_seq_create: count >= 2) */
bool cache_random_seq_wanted(const pa_machine *m, const struct pa_cache *s)
{
    return (m->kconfig & PA_KCONFIG_SLAB_FREELIST_RANDOM) && s->objects >= 2;
}

/* kmem_cache_open()'s draws for a new cache; seq is objects words when
 * cache_random_seq_wanted(), else NULL */
void init_cache_random(pa_machine *m, struct pa_cache *s, uint32_t *seq)
{
    if (m->kconfig & PA_KCONFIG_SLAB_FREELIST_HARDENED)
        s->random = pa_prandom_next(&m->rand_state);
    s->random_seq = seq;
    if (!seq)
        return;
    for (uint32_t i = 0; i < s->objects; i++)
        seq[i] = i;
    for (uint32_t i = s->objects - 1; i > 0; i--) {
        uint32_t r = get_random_u32_below(m, i + 1);
        uint32_t t = seq[i];
        seq[i] = seq[r];
        seq[r] = t;
    }
}

void cache_random_seq_destroy(struct pa_cache *s)
{
    free(s->random_seq);
    s->random_seq = NULL;
}

/* a snapshot's sequence: a permutation of 0..count-1 */
bool slab_random_seq_ok(const uint32_t *seq, uint32_t count)
{
    uint8_t *seen = calloc(count ? count : 1, 1);
    if (!seen)
        return false;
    bool ok = true;
    for (uint32_t i = 0; i < count && ok; i++) {
        ok = seq[i] < count && !seen[seq[i]];
        if (ok)
            seen[seq[i]] = 1;
    }
    free(seen);
    return ok;
}

static unsigned next_freelist_entry(const struct pa_cache *s, uint32_t *pos, unsigned page_limit,
                                    uint32_t freelist_count)
{
    unsigned idx;
    do {
        idx = s->random_seq[*pos];
        if (++*pos >= freelist_count)
            *pos = 0;
    } while (pa_unlikely(idx >= page_limit));
    return idx;
}

/* mm/slub.c shuffle_freelist(): link a new slab's free objects in the cache's
 * random order from a random start; false leaves the slab to the caller */
bool shuffle_freelist(pa_machine *m, struct pa_cache *s, struct pa_slab *slab)
{
    if (slab->objects < 2 || !s->random_seq)
        return false;
    uint32_t freelist_count = s->objects;
    uint32_t pos = get_random_u32_below(m, freelist_count);
    unsigned cur = next_freelist_entry(s, &pos, slab->objects, freelist_count);
    slab->freelist = (uint16_t)cur;
    for (unsigned idx = 1; idx < slab->objects; idx++) {
        unsigned next = next_freelist_entry(s, &pos, slab->objects, freelist_count);
        slab_set_freepointer(m, s, slab, cur, next);
        cur = next;
    }
    slab_set_freepointer(m, s, slab, cur, SLOT_NIL);
    return true;
}

/* include/linux/slab.h kmalloc_type() of a KMALLOC_NORMAL request with
 * RANDOM_KMALLOC_CACHES: hash_64(caller ^ random_kmalloc_seed, ilog2(16));
 * 0 is the plain cache, n the copy kmalloc-rnd-0n (table row NR_KMALLOC_TYPES + n - 1) */
unsigned random_kmalloc_type(const pa_machine *m, uint64_t caller)
{
    unsigned h = (unsigned)(((caller ^ m->random_kmalloc_seed) * GOLDEN_RATIO_64) >> 60);
    return h ? PA_NR_KMALLOC_TYPES + h - 1 : 0;
}

/* create_kmalloc_caches()' last draw: called once the boot made the kmalloc caches */
PA_ENTRY(int, pa_random_kmalloc_init, (pa_machine *m), (m))
{
    if (m->kconfig & PA_KCONFIG_RANDOM_KMALLOC_CACHES)
        m->random_kmalloc_seed = pa_prandom_next(&m->rand_state);
    return PA_OK;
}

/* s->random of a cache, and its random sequence into seq[0..cap): the sequence's
 * length (0 without one), or PA_EINVAL */
PA_ENTRY(int64_t, pa_cache_random, (pa_machine *m, int64_t cache, uint64_t *random, int64_t *seq, int64_t cap),
         (m, cache, random, seq, cap))
{
    if (!random || cap < 0 || (cap && !seq) || cache < 0 || cache >= (int64_t)m->nr_caches
        || !m->caches[cache].alive)
        return PA_EINVAL;
    const struct pa_cache *s = &m->caches[cache];
    *random = s->random;
    if (!s->random_seq)
        return 0;
    for (int64_t i = 0; i < cap && i < (int64_t)s->objects; i++)
        seq[i] = s->random_seq[i];
    return s->objects;
}
