/*
 * workingset.c - shadow entries and refault distances, as mm/workingset.c
 * (6.18, CONFIG_LRU_GEN off).  pyalloc/model/workingset.py is its twin.
 *
 * The node (one lruvec: no memcg hierarchy is simulated) keeps a clock,
 * nonresident_age (ctr[PA_CTR_NONRESIDENT_AGE]), that ticks once per page
 * evicted and once per page activated (workingset_age_nonresident()).  A page
 * reclaim evicts leaves a shadow: the clock at its eviction and whether it was
 * part of the workingset (PG_workingset).  For a file page the shadow lives
 * where the page was, in its page cache slot (the mm entry, ENT_DISK state),
 * as the kernel keeps it in the mapping's xarray; for an anonymous page it
 * lives beside its swap slot (swap_shadow[]), as 6.18's swap table keeps it.
 *
 * When the page faults back in, the distance between the clock now and the
 * shadow's is how much memory it would have needed to stay resident
 * (workingset_test_recent()).  If that fits in the workingset (the active
 * lists, plus the other type where it competes) the page is activated at
 * once; if it was part of the workingset when evicted, the refault is
 * thrashing: PG_workingset comes back, and the IO is a memory stall for PSI.
 *
 * Shadow word: bit 0 set (xa_mk_value: 0 means "no shadow"), bit 1 the
 * workingset bit, bits 2.. the eviction clock >> bucket_order, EVICTION_BITS
 * wide (pack_shadow()).
 */
#include <stdlib.h>

#include "internal.h"

/* BITS_PER_LONG - (1 xa value bit + WORKINGSET_SHIFT 1 + NODES_SHIFT 10 + MEM_CGROUP_ID_SHIFT 16),
 * with the captured 6.18 config (CONFIG_NODES_SHIFT=10, CONFIG_MEMCG=y) */
#define EVICTION_BITS ((unsigned)PA_EVICTION_BITS)
#define EVICTION_MASK ((1ull << EVICTION_BITS) - 1)

static unsigned fls64_(uint64_t x)
{
    unsigned n = 0;
    while (x) {
        n++;
        x >>= 1;
    }
    return n;
}

/* workingset_init(): the clock is coarsened only when memory has more pages than it has bits */
static unsigned bucket_order(const pa_machine *m)
{
    uint64_t totalram = 0;
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++)
        totalram += m->zones[zid].managed;
    unsigned bits = fls64_(totalram ? totalram - 1 : 0);
    return bits > EVICTION_BITS ? bits - EVICTION_BITS : 0;
}

void workingset_age_nonresident(pa_machine *m, uint64_t nr_pages)
{
    m->ctr[PA_CTR_NONRESIDENT_AGE] += nr_pages;
}

static uint64_t pack_shadow(uint64_t eviction, bool workingset)
{
    return ((eviction & EVICTION_MASK) << 2) | ((uint64_t)workingset << 1) | 1u;
}

bool workingset_shadow_valid(uint64_t shadow)
{
    return (shadow & 1u) && !(shadow >> (EVICTION_BITS + 2));
}

/* workingset_eviction(): the shadow page pfn leaves as reclaim frees it */
uint64_t workingset_eviction(pa_machine *m, uint64_t pfn)
{
    uint64_t eviction = m->ctr[PA_CTR_NONRESIDENT_AGE] >> bucket_order(m);
    workingset_age_nonresident(m, 1);
    return pack_shadow(eviction, m->lru_ext && (m->lru_ext[pfn] & PA_PGX_WORKINGSET));
}

/* workingset_test_recent(): would the page have stayed resident with the
 * workingset's memory?  Anon competes with the file cache; file competes with
 * anon only while there is swap to move anon to. */
static bool workingset_test_recent(const pa_machine *m, uint64_t shadow, bool file)
{
    const uint64_t *c = m->ctr;
    uint64_t eviction = (shadow >> 2) << bucket_order(m);
    uint64_t refault = c[PA_CTR_NONRESIDENT_AGE];
    uint64_t distance = (refault - eviction) & EVICTION_MASK;
    uint64_t workingset_size = c[PA_CTR_NR_ACTIVE_FILE];
    if (!file)
        workingset_size += c[PA_CTR_NR_INACTIVE_FILE];
    if (c[PA_CTR_NR_SWAP_FREE] > 0) {
        workingset_size += c[PA_CTR_NR_ACTIVE_ANON];
        if (file)
            workingset_size += c[PA_CTR_NR_INACTIVE_ANON];
    }
    return distance <= workingset_size;
}

/* workingset_refault(): a page with a shadow comes back; the answer says where
 * it goes (WORKINGSET_REFAULT_*).  The caller notes the refault's IO cost
 * (lru_note_cost_refault()) for a restore. */
unsigned workingset_refault(pa_machine *m, uint64_t shadow, bool file)
{
    m->ctr[file ? PA_CTR_WORKINGSET_REFAULT_FILE : PA_CTR_WORKINGSET_REFAULT_ANON]++;
    if (!workingset_test_recent(m, shadow, file))
        return 0;
    workingset_age_nonresident(m, 1);
    m->ctr[file ? PA_CTR_WORKINGSET_ACTIVATE_FILE : PA_CTR_WORKINGSET_ACTIVATE_ANON]++;
    if (!(shadow & 2u))
        return WORKINGSET_REFAULT_ACTIVATE;
    m->ctr[file ? PA_CTR_WORKINGSET_RESTORE_FILE : PA_CTR_WORKINGSET_RESTORE_ANON]++;
    return WORKINGSET_REFAULT_ACTIVATE | WORKINGSET_REFAULT_RESTORE;
}

/* the swap cache keeps the shadow of the page that left through slot; without
 * room for the table the page simply has no shadow (a refault is then a first fault) */
void workingset_swap_shadow_set(pa_machine *m, uint64_t slot, uint64_t shadow)
{
    if (!m->swap_shadow) {
        m->swap_shadow = calloc(m->swap_pages, sizeof(*m->swap_shadow));
        if (!m->swap_shadow)
            return;
    }
    m->swap_shadow[slot] = shadow;
}

uint64_t workingset_swap_shadow_take(pa_machine *m, uint64_t slot)
{
    if (!m->swap_shadow)
        return 0;
    uint64_t shadow = m->swap_shadow[slot];
    m->swap_shadow[slot] = 0;
    return shadow;
}
