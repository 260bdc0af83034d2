/*
 * memory.c - processes and files giving memory back: munmap(), madvise()
 * (MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT) and truncate() of a file's page
 * cache.  pyalloc/model/memory.py is the same algorithm, function for
 * function.  The mm entries, LRU lists and swap slots are reclaim.c's (see
 * its essay for the entry encoding); this file only takes pages away.
 *
 * A process's anonymous memory is one mapping [0, nr_pages) that grows as
 * it is touched.  Unmapping or dropping a page returns its entry to "never
 * touched": the page goes back to the buddy allocator, a swap entry frees its
 * slot (mm/memory.c zap_pte_range(), free_swap_and_cache()).  munmap() of
 * the tail shrinks the mapping; an unmapped page inside it is a hole that
 * the next touch faults in as a zero page, as after MADV_DONTNEED (pyalloc
 * keeps one mapping per process, so it has no SIGSEGV to give).
 *
 * MADV_COLD and MADV_PAGEOUT follow mm/madvise.c
 * madvise_cold_or_pageout_pte_range(): every present page of the range loses
 * its referenced bit; COLD moves active pages to the head of the inactive
 * list (mm/swap.c lru_deactivate(), pgdeactivate); PAGEOUT isolates them and
 * hands them to reclaim_pages() -> shrink_folio_list(ignore_references): an
 * anonymous page is written to a free swap slot (pswpout, pgpgout and
 * nr_vmscan_write, as pageout() counts it) and freed, or, with no slot left,
 * activated (pgactivate) and put back at the head of the active list.  No
 * pgscan/pgsteal: those are counted by shrink_inactive_list(), which madvise
 * does not run.  Pages are handled in address order (the folio list is built
 * with list_add and walked from its tail).  Swap IO completes at once (no
 * swap cache); the clock moves SWAP_OUT_US a page without stalling anybody,
 * as the caller does not wait for the write.
 *
 * Every entry validates everything before it changes anything: a range past
 * the end of the mapping (or the file) answers PA_EINVAL, machine unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"


/* an anonymous mm and a range inside its mapping, or NULL */
static struct pa_mm *anon_range(pa_machine *m, int64_t id, int64_t start, int64_t nr)
{
    struct pa_mm *mm = mm_get(m, id);
    if (!mm || mm->is_file || !mm_range_ok(start, nr) || (uint64_t)(start + nr) > mm->nr_pages)
        return NULL;
    return mm;
}

/* zap_pte_range(): every page of [start, start+nr) leaves the process */
static void zap_page_range(pa_machine *m, struct pa_mm *mm, uint64_t start, uint64_t nr)
{
    for (uint64_t idx = start; idx < start + nr; idx++) {
        uint64_t e = mm->ent[idx];
        if (e & ENT_MLOCKED) {
            /* __folio_remove_rmap() -> munlock_vma_folio() */
            munlock_page(m, mm, idx);
            e = mm->ent[idx];
        }
        if (ENT_STATE(e) == ENT_PRESENT) {
            mm->rss--;
            release_page(m, ENT_VAL(e));
        } else if (ENT_STATE(e) == ENT_SWAP) {
            mm->swapents--;
            swap_slot_free(m, ENT_VAL(e));
        }
        mm->ent[idx] = 0;
    }
}

PA_ENTRY(int, pa_munmap, (pa_machine *m, int64_t id, int64_t start, int64_t nr), (m, id, start, nr))
{
    struct pa_mm *mm = anon_range(m, id, start, nr);
    if (!mm)
        return PA_EINVAL;
    m->ticks++;
    zap_page_range(m, mm, (uint64_t)start, (uint64_t)nr);
    if ((uint64_t)(start + nr) == mm->nr_pages)
        mm->nr_pages = (uint64_t)start;
    return PA_OK;
}

/* lru_deactivate(): an active page goes to the head of its inactive list */
static void deactivate_page(pa_machine *m, uint64_t pfn)
{
    struct pa_page *p = &m->pages[pfn];
    p->flags &= (uint8_t)~PA_PG_REFERENCED;
    if (!(p->flags & PA_PG_ACTIVE))
        return;
    lru_move(m, pfn, LRU_INACTIVE_ANON);
    m->ctr[PA_CTR_PGDEACTIVATE]++;
}

/* shrink_folio_list(ignore_references) for one isolated anonymous page:
 * to swap if a slot is free, else activated */
static void pageout_page(pa_machine *m, struct pa_mm *mm, uint64_t idx)
{
    uint64_t pfn = ENT_VAL(mm->ent[idx]);
    m->pages[pfn].flags &= (uint8_t)~PA_PG_REFERENCED;
    uint64_t slot = swap_slot_alloc(m);
    if (slot == PA_NIL) {
        lru_move(m, pfn, LRU_ACTIVE_ANON);
        m->ctr[PA_CTR_PGACTIVATE]++;
        return;
    }
    memcpy(m->swap + (slot << PA_PAGE_SHIFT), page_mem(m, pfn), PA_PAGE_SIZE);
    m->ctr[PA_CTR_NR_SWAP_FREE]--;
    mm->ent[idx] = MK_ENT(slot, ENT_SWAP);
    mm->rss--;
    mm->swapents++;
    m->ctr[PA_CTR_PSWPOUT]++;
    m->ctr[PA_CTR_PGPGOUT] += PA_PAGE_SIZE / 1024;
    m->ctr[PA_CTR_NR_VMSCAN_WRITE]++;
    release_page(m, pfn);
    m->ticks += SWAP_OUT_US;
}

PA_ENTRY(int, pa_madvise, (pa_machine *m, int64_t id, int64_t start, int64_t nr, int64_t advice),
         (m, id, start, nr, advice))
{
    struct pa_mm *mm = anon_range(m, id, start, nr);
    if (!mm || (advice != PA_MADV_DONTNEED && advice != PA_MADV_COLD && advice != PA_MADV_PAGEOUT))
        return PA_EINVAL;
    /* madvise_dontneed_free_valid_vma(), can_madv_lru_vma(): not on VM_LOCKED */
    if (mm_range_mlocked(mm, (uint64_t)start, (uint64_t)nr))
        return PA_EINVAL;
    m->ticks++;
    if (advice == PA_MADV_DONTNEED) {
        zap_page_range(m, mm, (uint64_t)start, (uint64_t)nr);
        return PA_OK;
    }
    for (uint64_t idx = (uint64_t)start; idx < (uint64_t)(start + nr); idx++) {
        if (ENT_STATE(mm->ent[idx]) != ENT_PRESENT)
            continue;
        if (advice == PA_MADV_COLD)
            deactivate_page(m, ENT_VAL(mm->ent[idx]));
        else
            pageout_page(m, mm, idx);
    }
    return PA_OK;
}

/* truncate(): the file becomes nr_pages long; the page cache and the data
 * past the new end are gone (mm/truncate.c truncate_inode_pages_range(),
 * dirty pages cancelled), a longer size is a hole that reads as zeros */
PA_ENTRY(int, pa_mm_truncate, (pa_machine *m, int64_t id, int64_t nr_pages), (m, id, nr_pages))
{
    struct pa_mm *mm = mm_get(m, id);
    if (!mm || !mm->is_file || !mm_range_ok(0, nr_pages))
        return PA_EINVAL;
    if ((uint64_t)nr_pages > mm->nr_pages) {
        int rc = mm_reserve(mm, (uint64_t)nr_pages);
        if (rc)
            return rc;
    }
    m->ticks++;
    if ((uint64_t)nr_pages < mm->nr_pages)
        mm_truncate(m, mm, (uint64_t)nr_pages);
    mm->nr_pages = (uint64_t)nr_pages;
    mm->size = (uint64_t)nr_pages << PA_PAGE_SHIFT;
    return PA_OK;
}
