/*
 * mlock.c - mlock() and munlock() of a process's anonymous memory, and the
 * unevictable LRU they fill (mm/mlock.c, 6.18).  pyalloc/model/mlock.py is
 * the same algorithm, function for function.
 *
 * VM_LOCKED: pyalloc keeps one mapping per process, so a locked range is
 * remembered per page, in bit 2 of the page's mm entry (ENT_MLOCKED; a file
 * entry uses that bit for dirty).  The bit stays whatever the entry's state,
 * so a page of a locked range that is not present (a populate that ran out
 * of memory) is mlocked when it is faulted in, as do_anonymous_page() ->
 * folio_add_lru_vma() -> mlock_new_folio() and do_swap_page() ->
 * mlock_vma_folio() do.
 *
 * PG_mlocked and PG_unevictable: a present page whose entry has the bit is
 * on LRU_UNEVICTABLE (page_lru()); nothing else is (no SHM_LOCK, ramfs or
 * secretmem here), so NR_MLOCK equals the unevictable LRU page for page and
 * the zone's nr_unevictable serves both nr_zone_unevictable and nr_mlock.
 * Reclaim only walks the evictable lists, so it never meets these pages, and
 * they count in neither zone_reclaimable_pages() nor MemAvailable.
 *
 * Counters, as mm/mlock.c keeps them for order-0 folios that are on the LRU
 * (nothing is ever left isolated between calls here):
 *   mlock_folio() + __mlock_folio(), mlock_new_folio() + __mlock_new_folio():
 *     unevictable_pgs_mlocked and unevictable_pgs_culled, one each a page;
 *   munlock_folio() -> __munlock_folio() (munlock(), and munmap()/exit()
 *     through __folio_remove_rmap() -> munlock_vma_folio()):
 *     unevictable_pgs_munlocked and unevictable_pgs_rescued, and the page goes
 *     to the head of the inactive anon list (its active bit was cleared when
 *     it was culled);
 *   unevictable_pgs_stranded (munlock of an isolated folio),
 *   unevictable_pgs_cleared (mm/swap.c __page_cache_release() finding
 *     PG_mlocked still set) and unevictable_pgs_scanned
 *     (check_move_unevictable_folios(), SHM_UNLOCK) stay 0: their races and
 *     callers do not exist here.
 * A second mlock() of a locked page changes nothing (mlock_fixup() returns
 * early when the flags are unchanged); so does munlock() of an unlocked one.
 */
#include "internal.h"

/* an anonymous mm and a range inside its mapping, or NULL */
static struct pa_mm *mlock_range(pa_machine *m, int64_t id, int64_t start, int64_t nr)
{
    struct pa_mm *mm = mm_get(m, id);
    if (!mm || mm->is_file || !mm_range_ok(start, nr) || (uint64_t)(start + nr) > mm->nr_pages)
        return NULL;
    return mm;
}

/* mlock_new_folio() + __mlock_new_folio(): a page faulted into a locked range */
void mlock_new_page(pa_machine *m, uint64_t pfn)
{
    m->ctr[PA_CTR_UNEVICTABLE_PGS_MLOCKED]++;
    m->ctr[PA_CTR_UNEVICTABLE_PGS_CULLED]++;
    lru_add(m, pfn, LRU_UNEVICTABLE);
}

/* mlock_folio() + __mlock_folio(): a present page of a range being locked
 * leaves its evictable list for the unevictable one */
static void mlock_page(pa_machine *m, struct pa_mm *mm, uint64_t idx)
{
    uint64_t pfn = ENT_VAL(mm->ent[idx]);
    uint8_t referenced = m->pages[pfn].flags & PA_PG_REFERENCED;
    lru_del(m, pfn);
    mm->ent[idx] |= ENT_MLOCKED;
    mlock_new_page(m, pfn);
    m->pages[pfn].flags |= referenced;
}

/* munlock_folio() + __munlock_folio(): the page returns to the head of the
 * inactive anon list; an entry that is not present just loses VM_LOCKED */
void munlock_page(pa_machine *m, struct pa_mm *mm, uint64_t idx)
{
    uint64_t e = mm->ent[idx];
    if (ENT_STATE(e) != ENT_PRESENT) {
        mm->ent[idx] = e & ~(uint64_t)ENT_MLOCKED;
        return;
    }
    uint64_t pfn = ENT_VAL(e);
    uint8_t referenced = m->pages[pfn].flags & PA_PG_REFERENCED;
    lru_del(m, pfn);
    mm->ent[idx] = e & ~(uint64_t)ENT_MLOCKED;
    lru_add(m, pfn, LRU_INACTIVE_ANON);
    m->pages[pfn].flags |= referenced;
    m->ctr[PA_CTR_UNEVICTABLE_PGS_MUNLOCKED]++;
    m->ctr[PA_CTR_UNEVICTABLE_PGS_RESCUED]++;
}

/* exit(): zapping the whole mapping munlocks every locked page first */
void munlock_mm(pa_machine *m, struct pa_mm *mm)
{
    if (mm->is_file)
        return;
    for (uint64_t idx = 0; idx < mm->nr_pages; idx++)
        if (mm->ent[idx] & ENT_MLOCKED)
            munlock_page(m, mm, idx);
}

/* whether any page of [start, start+nr) lies in a locked range (a VM_LOCKED vma) */
bool mm_range_mlocked(const struct pa_mm *mm, uint64_t start, uint64_t nr)
{
    for (uint64_t idx = start; idx < start + nr; idx++)
        if (mm->ent[idx] & ENT_MLOCKED)
            return true;
    return false;
}

/* mlock_fixup() -> mlock_vma_pages_range(): the range becomes VM_LOCKED and
 * its present pages are mlocked.  The caller then populates the range
 * (__mm_populate()) with an ordinary fault of every page. */
PA_ENTRY(int, pa_mlock, (pa_machine *m, int64_t id, int64_t start, int64_t nr), (m, id, start, nr))
{
    struct pa_mm *mm = mlock_range(m, id, start, nr);
    if (!mm)
        return PA_EINVAL;
    m->ticks++;
    for (uint64_t idx = (uint64_t)start; idx < (uint64_t)(start + nr); idx++) {
        uint64_t e = mm->ent[idx];
        if (e & ENT_MLOCKED)
            continue;
        if (ENT_STATE(e) == ENT_PRESENT)
            mlock_page(m, mm, idx);
        else
            mm->ent[idx] = e | ENT_MLOCKED;
    }
    return PA_OK;
}

/* munlock(): the range loses VM_LOCKED and its pages go back to reclaim */
PA_ENTRY(int, pa_munlock, (pa_machine *m, int64_t id, int64_t start, int64_t nr), (m, id, start, nr))
{
    struct pa_mm *mm = mlock_range(m, id, start, nr);
    if (!mm)
        return PA_EINVAL;
    m->ticks++;
    for (uint64_t idx = (uint64_t)start; idx < (uint64_t)(start + nr); idx++)
        if (mm->ent[idx] & ENT_MLOCKED)
            munlock_page(m, mm, idx);
    return PA_OK;
}
