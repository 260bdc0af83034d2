/*
 * reclaim.c - the users of memory and how the kernel takes memory back from
 * them: processes' anonymous pages, the page cache of files, a swap device,
 * the LRU lists, direct reclaim, kswapd, and the facts the OOM killer needs.
 * pyalloc/model/reclaim.py is the same algorithm, function for function.
 *
 * An mm is one process's anonymous memory or one file's page cache: an array
 * with an entry per page.  Entry encoding: the low two bits say where the page
 * is (ENT_NONE never touched, ENT_PRESENT in memory, ENT_SWAP on swap,
 * ENT_DISK only on the simulated disk), bit 2 marks a dirty cache page, and
 * the rest is the pfn or the swap slot.  A page in memory carries PG_LRU, its
 * mm id in priv and its index in pg_index[], so reclaim can find the entry to
 * change (the kernel's rmap).
 *
 * LRU lists (one node): new pages enter at the head of the inactive list of
 * their type (or of the active one, for a refault of the workingset:
 * workingset.c); reclaim takes pages from the tail.  References, as 6.18
 * without MGLRU: a page cache read marks the folio accessed
 * (folio_mark_accessed: PG_referenced first, the active list at the second
 * read); a process's access sets its pte's accessed bit (lru_ext[] PGX_YOUNG;
 * set by every touch, user_read and user_write, and by the fault that maps
 * the page).  folio_check_references() gives a page with a referenced pte
 * one more trip around the inactive list and activates it when it is
 * referenced again; a cache page read once is reclaimed.  Active pages age
 * back to the inactive list when it is low (inactive_is_low), becoming
 * PG_workingset.  Reclaim for a request limited to lower zones skips the
 * pages of higher zones (pgskip_<zone>).
 *
 * What reclaim may do (sc->may_*): clean file pages are always dropped; a
 * dirty file page is never written here (6.18's pageout() writes no
 * filesystem folio): it is activated, counted in nr_vmscan_immediate_reclaim,
 * and a batch of nothing but dirty pages wakes the flushers and throttles a
 * direct reclaimer until they wrote some (page_writeback.c); anonymous pages
 * go to swap, which needs __GFP_IO and a free slot (nr_vmscan_write).  The
 * flushers write at WRITEBACK_US a page (pyalloc/_abi.py has all costs).
 *
 * Swap slots: freed slots are reused last-freed first, else the next unused
 * one (the kernel allocates in clusters; only determinism matters here).  A
 * swapped-in page leaves swap at once: there is no swap cache.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "internal.h"

/* the mm entry encoding (ENT_*) is in internal.h: memory.c reads it too */

#define SWAP_CLUSTER_MAX_SKIPPED (SWAP_CLUSTER_MAX << 10)
#define MAX_SWAPPINESS 200u
#define DEACTIVATE_ANON 1u
#define DEACTIVATE_FILE 2u
#define FAULT_RW_WRITE 0x100            /* mm_fault() for pa_mm_rw's write: dirtied later, never by the fault */
#define MAX_MM_PAGES (1ull << 30)       /* 4 TiB per process or file */
#define MAX_RECLAIM_RETRIES 16

#define PSI_PERIOD_US ((uint64_t)PA_PSI_PERIOD_US)

struct scan_control {
    uint32_t gfp;
    bool is_kswapd, may_writepage, may_swap;
    unsigned reclaim_idx;               /* the highest zone whose pages may be reclaimed */
    unsigned may_deactivate;            /* DEACTIVATE_ANON, DEACTIVATE_FILE: for this shrink_node() */
    uint64_t nr_to_reclaim, nr_scanned, nr_reclaimed;
    uint64_t written, swapped, work_us;
};

/* The pages a read or write is working on (pa_mm_rw): it needs all of them
 * in memory at once, so reclaim run by its own later faults must leave the
 * earlier ones alone, as the kernel's reclaim skips a locked folio.  It lives
 * for one call, in the calling thread (the call holds the machine lock). */
static _Thread_local struct {
    const pa_machine *m;
    int64_t id;
    uint64_t first, last;
    uint64_t offset, end;       /* the bytes it reads or writes */
} rw_pin;

static bool rw_pinned(const pa_machine *m, int64_t id, uint64_t idx)
{
    return rw_pin.m == m && rw_pin.id == id && idx >= rw_pin.first && idx <= rw_pin.last;
}

/* -- PSI (kernel/sched/psi.c): 2 s periods folded into decaying averages ------ */

#define FSHIFT 11
#define FIXED_1 (1ull << FSHIFT)
static const uint64_t psi_exp[3] = {1677, 1981, 2034};      /* EXP_10s, EXP_60s, EXP_300s */

static uint64_t calc_load(uint64_t load, uint64_t exp, uint64_t active)
{
    uint64_t newload = load * exp + active * (FIXED_1 - exp);
    if (active >= load)
        newload += FIXED_1 - 1;
    return newload / FIXED_1;
}

static uint64_t fixed_power_int(uint64_t x, unsigned frac_bits, uint64_t n)
{
    uint64_t result = 1ull << frac_bits;
    while (n) {
        if (n & 1) {
            result = (result * x + (1ull << (frac_bits - 1))) >> frac_bits;
        }
        n >>= 1;
        if (!n)
            break;
        x = (x * x + (1ull << (frac_bits - 1))) >> frac_bits;
    }
    return result;
}

/* A PSI state is six words: total, open period, its stall, avg10/60/300 (the
 * order of the psi_* counters). */
#define PSI_TOTAL (PA_CTR_PSI_TOTAL_US - PA_CTR_PSI_TOTAL_US)
#define PSI_PERIOD (PA_CTR_PSI_PERIOD - PA_CTR_PSI_TOTAL_US)
#define PSI_STALL (PA_CTR_PSI_PERIOD_STALL_US - PA_CTR_PSI_TOTAL_US)
#define PSI_AVG (PA_CTR_PSI_AVG10 - PA_CTR_PSI_TOTAL_US)

/* close every whole period before now: sample the open one, decay the empty ones */
static void psi_fold(uint64_t *psi, uint64_t now)
{
    uint64_t cur = now / PSI_PERIOD_US;
    if (cur <= psi[PSI_PERIOD])
        return;
    uint64_t pct = psi[PSI_STALL] * 100 / PSI_PERIOD_US * FIXED_1;
    uint64_t missed = cur - psi[PSI_PERIOD] - 1;
    for (int i = 0; i < 3; i++) {
        uint64_t *avg = &psi[PSI_AVG + i];
        *avg = calc_load(*avg, psi_exp[i], pct);
        if (missed)
            *avg = calc_load(*avg, fixed_power_int(psi_exp[i], FSHIFT, missed), 0);
    }
    psi[PSI_PERIOD] = cur;
    psi[PSI_STALL] = 0;
}

/* a PSI state stalled from start to end */
void psi_account(uint64_t *psi, uint64_t start, uint64_t end)
{
    while (start < end) {
        psi_fold(psi, start);
        uint64_t period_end = (psi[PSI_PERIOD] + 1) * PSI_PERIOD_US;
        uint64_t chunk = (end < period_end ? end : period_end) - start;
        psi[PSI_STALL] += chunk;
        psi[PSI_TOTAL] += chunk;
        start += chunk;
    }
}

/* The calling task stalls on memory for us microseconds: the clock moves on;
 * every running task is stalled, so the time is PSI "full" (the counters'
 * psi_* block) and "some". */
void reclaim_stall(pa_machine *m, uint64_t us)
{
    uint64_t start = m->ticks, end = m->ticks + us;
    psi_account(&m->ctr[PA_CTR_PSI_TOTAL_US], start, end);
    psi_memstall_some(m, start, end);
    m->ticks = end;
    m->cost[PA_COST_STALL_US] += us;
}

/* -- mms ---------------------------------------------------------------------------- */

struct pa_mm *mm_get(pa_machine *m, int64_t id)
{
    if (id < 0 || (uint64_t)id >= m->nr_mms || !m->mms[id].alive)
        return NULL;
    return &m->mms[id];
}

int mm_reserve(struct pa_mm *mm, uint64_t nr)
{
    if (nr <= mm->cap)
        return PA_OK;
    uint64_t cap = mm->cap ? mm->cap : 16;
    while (cap < nr)
        cap *= 2;
    uint64_t *ent = realloc(mm->ent, cap * sizeof(*ent));
    if (!ent)
        return PA_ENOMEM;
    memset(ent + mm->cap, 0, (cap - mm->cap) * sizeof(*ent));
    mm->ent = ent;
    if (mm->is_file) {
        uint8_t **disk = realloc(mm->disk, cap * sizeof(*disk));
        if (!disk)
            return PA_ENOMEM;
        memset(disk + mm->cap, 0, (cap - mm->cap) * sizeof(*disk));
        mm->disk = disk;
    }
    mm->cap = cap;
    return PA_OK;
}

PA_ENTRY(int64_t, pa_mm_new, (pa_machine *m, int64_t is_file), (m, is_file))
{
    if (!m || (is_file != 0 && is_file != 1))
        return PA_EINVAL;
    if (m->nr_mms == m->cap_mms) {
        uint32_t cap = m->cap_mms ? m->cap_mms * 2 : 64;
        if (cap > (1u << 24))
            return PA_ENOMEM;
        struct pa_mm *mms = realloc(m->mms, cap * sizeof(*mms));
        if (!mms)
            return PA_ENOMEM;
        m->mms = mms;
        m->cap_mms = cap;
    }
    if (!m->pg_index) {
        m->pg_index = calloc(m->nr_pages, sizeof(*m->pg_index));
        if (!m->pg_index)
            return PA_ENOMEM;
    }
    if (!m->lru_ext && !(m->lru_ext = calloc(m->nr_pages, sizeof(*m->lru_ext))))
        return PA_ENOMEM;
    struct pa_mm *mm = &m->mms[m->nr_mms];
    memset(mm, 0, sizeof(*mm));
    mm->alive = 1;
    mm->is_file = (uint8_t)is_file;
    return m->nr_mms++;
}

/* -- LRU lists ------------------------------------------------------------------------ */

static inline unsigned page_lru(const pa_machine *m, uint64_t pfn)
{
    const struct pa_page *p = &m->pages[pfn];
    if (page_mlocked(m, pfn))
        return LRU_UNEVICTABLE;
    return (p->kind == PA_KIND_FILE ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON) + !!(p->flags & PA_PG_ACTIVE);
}

static void lru_account(pa_machine *m, uint64_t pfn, unsigned lru, int64_t delta)
{
    if (lru == LRU_UNEVICTABLE) {
        m->ctr[PA_CTR_NR_UNEVICTABLE] += (uint64_t)delta;
        pa_zone_of(m, pfn)->nr_unevictable += (uint64_t)delta;
        return;
    }
    m->ctr[PA_CTR_NR_INACTIVE_ANON + lru] += (uint64_t)delta;
    pa_zone_of(m, pfn)->nr_lru[lru] += (uint64_t)delta;
}

void lru_add(pa_machine *m, uint64_t pfn, unsigned lru)
{
    struct pa_page *p = &m->pages[pfn];
    struct pa_lru *l = &m->lru[lru];
    p->flags |= PA_PG_LRU;
    if (lru & 1)
        p->flags |= PA_PG_ACTIVE;
    else
        p->flags &= (uint8_t)~PA_PG_ACTIVE;
    p->prev = PA_NIL;
    p->next = l->head;
    if (l->head == PA_NIL)
        l->tail = (uint32_t)pfn;
    else
        m->pages[l->head].prev = (uint32_t)pfn;
    l->head = (uint32_t)pfn;
    lru_account(m, pfn, lru, 1);
}

void lru_del(pa_machine *m, uint64_t pfn)
{
    struct pa_page *p = &m->pages[pfn];
    unsigned lru = page_lru(m, pfn);
    struct pa_lru *l = &m->lru[lru];
    if (p->prev == PA_NIL)
        l->head = p->next;
    else
        m->pages[p->prev].next = p->next;
    if (p->next == PA_NIL)
        l->tail = p->prev;
    else
        m->pages[p->next].prev = p->prev;
    p->next = p->prev = PA_NIL;
    p->flags &= (uint8_t)~(PA_PG_LRU | PA_PG_ACTIVE);
    lru_account(m, pfn, lru, -1);
}

void lru_move(pa_machine *m, uint64_t pfn, unsigned lru)
{
    uint8_t referenced = m->pages[pfn].flags & PA_PG_REFERENCED;
    lru_del(m, pfn);
    lru_add(m, pfn, lru);
    m->pages[pfn].flags |= referenced;
}

/* compaction moved a page: the new one takes the old one's place everywhere */
void lru_replace_page(pa_machine *m, uint64_t old_pfn, uint64_t new_pfn)
{
    struct pa_page *o = &m->pages[old_pfn], *n = &m->pages[new_pfn];
    unsigned lru = page_lru(m, old_pfn);
    struct pa_lru *l = &m->lru[lru];
    n->prev = o->prev;
    n->next = o->next;
    if (o->prev == PA_NIL)
        l->head = (uint32_t)new_pfn;
    else
        m->pages[o->prev].next = (uint32_t)new_pfn;
    if (o->next == PA_NIL)
        l->tail = (uint32_t)new_pfn;
    else
        m->pages[o->next].prev = (uint32_t)new_pfn;
    n->flags = o->flags;
    n->kind = o->kind;
    n->priv = o->priv;
    m->pg_index[new_pfn] = m->pg_index[old_pfn];
    m->lru_ext[new_pfn] = m->lru_ext[old_pfn];
    m->lru_ext[old_pfn] = 0;
    struct pa_mm *mm = &m->mms[o->priv];
    uint64_t *e = &mm->ent[m->pg_index[old_pfn]];
    *e = MK_ENT(new_pfn, (*e & 7u));
    if (mm->is_file && (*e & ENT_DIRTY)) {
        pa_zone_of(m, old_pfn)->nr_dirty--;
        pa_zone_of(m, new_pfn)->nr_dirty++;
    }
    lru_account(m, old_pfn, lru, -1);
    lru_account(m, new_pfn, lru, 1);
    o->next = o->prev = PA_NIL;
    o->flags &= (uint8_t)~(PA_PG_LRU | PA_PG_ACTIVE | PA_PG_REFERENCED);
    o->kind = PA_KIND_PAGES;
}

/* -- swap and the disk --------------------------------------------------------------- */

PA_ENTRY(int, pa_set_swap, (pa_machine *m, int64_t nr_pages), (m, nr_pages))
{
    if (!m || nr_pages < 0 || nr_pages > (int64_t)UINT32_MAX || m->swap_pages)
        return PA_EINVAL;
    if (!nr_pages)
        return PA_OK;
    m->swap_free = malloc((size_t)nr_pages * sizeof(*m->swap_free));
    m->swap = pa_map_noreserve((size_t)nr_pages << PA_PAGE_SHIFT);
    if (!m->swap_free || !m->swap) {
        free(m->swap_free);
        m->swap_free = NULL;
        if (m->swap)
            pa_unmap(m->swap, (size_t)nr_pages << PA_PAGE_SHIFT);
        m->swap = NULL;
        return PA_ENOMEM;
    }
    m->swap_pages = (uint64_t)nr_pages;
    m->ctr[PA_CTR_NR_SWAP_PAGES] = m->ctr[PA_CTR_NR_SWAP_FREE] = (uint64_t)nr_pages;
    return PA_OK;
}

uint64_t swap_slot_alloc(pa_machine *m)
{
    if (m->nr_swap_free_stack)
        return m->swap_free[--m->nr_swap_free_stack];
    return m->swap_next < m->swap_pages ? m->swap_next++ : PA_NIL;
}

void swap_slot_free(pa_machine *m, uint64_t slot)
{
    m->swap_free[m->nr_swap_free_stack++] = (uint32_t)slot;
    if (m->swap_shadow)
        m->swap_shadow[slot] = 0;
    m->ctr[PA_CTR_NR_SWAP_FREE]++;
}

unsigned char *page_mem(pa_machine *m, uint64_t pfn)
{
    return m->mem + (pfn << PA_PAGE_SHIFT);
}

/* -- pages in and out ------------------------------------------------------------------ */

static void set_dirty(pa_machine *m, struct pa_mm *mm, uint64_t idx)
{
    uint64_t *e = &mm->ent[idx];
    if (*e & ENT_DIRTY)
        return;
    flusher_catch_up(m);
    if (!mm->nr_dirty)
        mm->dirtied_when = m->ticks;    /* __mark_inode_dirty(): the inode goes dirty now */
    *e |= ENT_DIRTY;
    mm->nr_dirty++;
    m->ctr[PA_CTR_NR_DIRTY]++;
    m->ctr[PA_CTR_NR_DIRTIED]++;
    pa_zone_of(m, ENT_VAL(*e))->nr_dirty++;
    balance_dirty_pages(m);
}

bool mm_page_dirty(const struct pa_mm *mm, uint64_t idx)
{
    return ENT_STATE(mm->ent[idx]) == ENT_PRESENT && (mm->ent[idx] & ENT_DIRTY);
}

/* write a dirty cache page to the disk; it stays in memory, clean */
int writeback_page(pa_machine *m, struct pa_mm *mm, uint64_t idx)
{
    uint64_t *e = &mm->ent[idx];
    uint64_t pfn = ENT_VAL(*e);
    if (!mm->disk[idx]) {
        mm->disk[idx] = malloc(PA_PAGE_SIZE);
        if (!mm->disk[idx])
            return PA_ENOMEM;
    }
    memcpy(mm->disk[idx], page_mem(m, pfn), PA_PAGE_SIZE);
    *e &= ~(uint64_t)ENT_DIRTY;
    mm->nr_dirty--;
    m->ctr[PA_CTR_NR_DIRTY]--;
    pa_zone_of(m, pfn)->nr_dirty--;
    m->ctr[PA_CTR_NR_WRITTEN]++;
    m->ctr[PA_CTR_PGPGOUT] += PA_PAGE_SIZE / 1024;
    return PA_OK;
}

/* a page leaves memory; its entry already says where it went */
void release_page(pa_machine *m, uint64_t pfn)
{
    struct pa_page *p = &m->pages[pfn];
    unsigned kind = p->kind;
    lru_del(m, pfn);
    p->flags &= (uint8_t)~PA_PG_REFERENCED;
    m->lru_ext[pfn] = 0;
    buddy_free_pages(m, (int64_t)pfn, 0, kind);
}

/* Whether bringing in page idx of a file reads it from disk (submit_bio
 * counts PGPGIN).  A read does.  A write (__GFP_WRITE, which 6.18's
 * write_begin asks for through FGP_WRITEBEGIN) reads only what it keeps: a
 * page inside the file's old size that the byte write covers in part, as
 * block_write_begin() reads the blocks a write leaves partly as they were
 * and neither the ones it overwrites whole nor the ones past the end. */
static bool fault_reads_page(const pa_machine *m, const struct pa_mm *mm, int64_t id, uint64_t idx, uint32_t gfp)
{
    uint64_t lo = idx << PA_PAGE_SHIFT;
    if (!(gfp & GFP_WRITE_BIT))
        return true;
    if (lo >= mm->size || !rw_pinned(m, id, idx))
        return false;
    return rw_pin.offset > lo || rw_pin.end < lo + PA_PAGE_SIZE;
}

/* lru_note_cost(): reclaim's IO (nr_io pages written) and CPU (nr_rotated
 * pages kept) on one type, decayed as a floating average against the LRU size */
static void lru_note_cost(pa_machine *m, bool file, uint64_t nr_io, uint64_t nr_rotated)
{
    uint64_t cost = nr_io * SWAP_CLUSTER_MAX + nr_rotated, *c = m->ctr;
    if (!cost)
        return;
    c[file ? PA_CTR_FILE_COST : PA_CTR_ANON_COST] += cost;
    uint64_t lrusize = c[PA_CTR_NR_INACTIVE_ANON] + c[PA_CTR_NR_ACTIVE_ANON] + c[PA_CTR_NR_INACTIVE_FILE]
                       + c[PA_CTR_NR_ACTIVE_FILE];
    if (c[PA_CTR_FILE_COST] + c[PA_CTR_ANON_COST] > lrusize / 4) {
        c[PA_CTR_FILE_COST] /= 2;
        c[PA_CTR_ANON_COST] /= 2;
    }
}

/* The task waits for a page's IO.  Only a refault of the workingset (a folio
 * with PG_workingset: swap_read_folio(), filemap_read_folio()) is a memory
 * stall for PSI; any other read is plain IO time. */
static void refault_wait(pa_machine *m, unsigned ws, uint64_t us)
{
    if (ws & WORKINGSET_REFAULT_RESTORE)
        reclaim_stall(m, us);
    else
        m->ticks += us;
}

/* folio_mark_accessed() (mm/swap.c) for a page cache read: the first access
 * sets PG_referenced, the second activates an inactive folio */
static void folio_mark_accessed(pa_machine *m, uint64_t pfn)
{
    struct pa_page *p = &m->pages[pfn];
    if (!(p->flags & PA_PG_REFERENCED)) {
        p->flags |= PA_PG_REFERENCED;
    } else if (!(p->flags & PA_PG_ACTIVE)) {
        lru_move(m, pfn, page_lru(m, pfn) + 1);      /* folio_activate() */
        m->ctr[PA_CTR_PGACTIVATE]++;
        p->flags &= (uint8_t)~PA_PG_REFERENCED;
        workingset_age_nonresident(m, 1);       /* workingset_activation() */
    }
}

/* An access to page pfn of mm, present now.  A process's page is mapped: the
 * access sets its pte's accessed bit (no hardware here sets it: every touch,
 * user_read and user_write does), which folio_referenced() reads and clears.
 * A file is read and written through the page cache (read(), write(), no
 * mmap): filemap_read() marks the folio accessed, a write does not
 * (FGP_WRITEBEGIN has no FGP_ACCESSED). */
static void mark_accessed(pa_machine *m, const struct pa_mm *mm, uint64_t pfn, int64_t flags)
{
    if (!mm->is_file)
        m->lru_ext[pfn] |= PA_PGX_YOUNG;
    else if (!(flags & (PA_FAULT_WRITE | FAULT_RW_WRITE)))
        folio_mark_accessed(m, pfn);
}

/* bring page idx of mm into memory: a new zeroed page, a page read from
 * swap or from the disk; PA_ENOMEM (or the like) when no page can be had */
static int fault_in(pa_machine *m, int64_t id, uint64_t idx, uint32_t gfp)
{
    struct pa_mm *mm = &m->mms[id];
    uint64_t e = mm->ent[idx];
    int64_t pfn = buddy_alloc_pages(m, gfp, 0);
    if (pfn < 0)
        return (int)pfn;
    struct pa_page *p = &m->pages[pfn];
    p->kind = mm->is_file ? PA_KIND_FILE : PA_KIND_ANON;
    p->priv = (uint32_t)id;
    m->pg_index[pfn] = (uint32_t)idx;
    unsigned char *dst = page_mem(m, (uint64_t)pfn);
    unsigned ws = 0;
    switch (ENT_STATE(e)) {
    case ENT_SWAP: {
        uint64_t slot = ENT_VAL(e), shadow = workingset_swap_shadow_take(m, slot);
        memcpy(dst, m->swap + (slot << PA_PAGE_SHIFT), PA_PAGE_SIZE);
        swap_slot_free(m, slot);
        mm->swapents--;
        m->ctr[PA_CTR_PSWPIN]++;
        m->ctr[PA_CTR_PGFAULT]++;           /* handle_mm_fault() counts every fault */
        m->ctr[PA_CTR_PGMAJFAULT]++;
        m->ctr[PA_CTR_PGPGIN] += PA_PAGE_SIZE / 1024;
        ws = shadow ? workingset_refault(m, shadow, false) : 0;
        refault_wait(m, ws, SWAP_IN_US);
        break;
    }
    case ENT_DISK:
        /* a cache page that reclaim evicted comes back: its shadow says how recently */
        if (ENT_VAL(e))
            ws = workingset_refault(m, ENT_VAL(e), true);
        /* fall through */
    default:
        if (mm->is_file) {
            if (mm->disk[idx])
                memcpy(dst, mm->disk[idx], PA_PAGE_SIZE);
            else
                memset(dst, 0, PA_PAGE_SIZE);
            if (!fault_reads_page(m, mm, id, idx, gfp))
                break;
            m->ctr[PA_CTR_PGPGIN] += PA_PAGE_SIZE / 1024;
            refault_wait(m, ws, READ_PAGE_US);
        } else {
            if (!(gfp & GFP_ZERO_BIT))      /* else prep_new_page() zeroed it (if it had to) */
                memset(dst, 0, PA_PAGE_SIZE);
            m->ctr[PA_CTR_PGFAULT]++;
        }
        break;
    }
    mm->ent[idx] = MK_ENT(pfn, ENT_PRESENT) | (mm->is_file ? 0 : e & ENT_MLOCKED);
    mm->rss++;
    if (mm->ent[idx] & ENT_MLOCKED && !mm->is_file)
        mlock_new_page(m, (uint64_t)pfn);
    else
        lru_add(m, (uint64_t)pfn, (mm->is_file ? LRU_INACTIVE_FILE : LRU_INACTIVE_ANON) + !!(ws & WORKINGSET_REFAULT_ACTIVATE));
    if (ws & WORKINGSET_REFAULT_RESTORE) {
        m->lru_ext[pfn] |= PA_PGX_WORKINGSET;
        lru_note_cost(m, mm->is_file, 1, 0);    /* lru_note_cost_refault() */
    }
    return PA_OK;
}

/* a failed write gives back what it added past the file's old end: the
 * pages it faulted in (or that reclaim dropped again) return to "never
 * touched", so the file is as it was */
void mm_truncate(pa_machine *m, struct pa_mm *mm, uint64_t nr_pages)
{
    for (uint64_t idx = nr_pages; idx < mm->nr_pages; idx++) {
        uint64_t e = mm->ent[idx];
        if (ENT_STATE(e) == ENT_PRESENT) {
            if (e & ENT_DIRTY) {
                mm->nr_dirty--;
                m->ctr[PA_CTR_NR_DIRTY]--;
                pa_zone_of(m, ENT_VAL(e))->nr_dirty--;
            }
            mm->rss--;
            release_page(m, ENT_VAL(e));
        }
        mm->ent[idx] = 0;
        free(mm->disk[idx]);
        mm->disk[idx] = NULL;
    }
    mm->nr_pages = nr_pages;
}

int mm_range_ok(int64_t start, int64_t nr)
{
    return start >= 0 && nr >= 0 && (uint64_t)start <= MAX_MM_PAGES && (uint64_t)nr <= MAX_MM_PAGES - (uint64_t)start;
}

/* touch pages [start, start+nr): present pages are marked referenced (and
 * dirtied by a write to a file), the others faulted in.  *done counts the
 * pages handled before a failure. */
static int mm_fault(pa_machine *m, int64_t id, uint64_t start, uint64_t nr, uint32_t gfp, int64_t flags,
                    int64_t *done)
{
    struct pa_mm *mm = &m->mms[id];
    int rc;
    *done = 0;
    for (uint64_t idx = start; idx < start + nr; idx++) {
        /* the entry array grows only as pages are really backed, so a huge
         * request costs the host what the machine could hold before it fails */
        if (idx >= mm->cap && (rc = mm_reserve(mm, idx + 1)))
            return rc;
        uint64_t e = mm->ent[idx];
        if (ENT_STATE(e) != ENT_PRESENT && (rc = fault_in(m, id, idx, gfp)))
            return rc;
        mark_accessed(m, mm, ENT_VAL(mm->ent[idx]), flags);
        if (idx >= mm->nr_pages)
            mm->nr_pages = idx + 1;
        if (mm->is_file && (flags & PA_FAULT_WRITE))
            set_dirty(m, mm, idx);
        (*done)++;
    }
    return PA_OK;
}

PA_ENTRY(int, pa_mm_fault, (pa_machine *m, int64_t id, int64_t start, int64_t nr, int64_t gfp, int64_t flags, int64_t *done), (m, id, start, nr, gfp, flags, done))
{
    if (!m || !done)
        return PA_EINVAL;
    *done = 0;
    struct pa_mm *mm = mm_get(m, id);
    if (!mm || !mm_range_ok(start, nr) || gfp < 0 || gfp > (int64_t)UINT32_MAX || (flags & ~PA_FAULT_WRITE))
        return PA_EINVAL;
    m->alloc_seq++;
    m->ticks++;
    int rc = mm_fault(m, id, (uint64_t)start, (uint64_t)nr, (uint32_t)gfp, flags, done);
    if (rc == PA_OK) {
        mm = &m->mms[id];
        if (mm->is_file && (uint64_t)(start + nr) << PA_PAGE_SHIFT > mm->size)
            mm->size = (uint64_t)(start + nr) << PA_PAGE_SHIFT;
    }
    return (int)pa_call_end(m, rc);
}

/* read or write bytes of an mm: anonymous memory only within what was
 * touched, a file only within its size for reads; a write may grow a file */
PA_ENTRY(int, pa_mm_rw, (pa_machine *m, int64_t id, int64_t offset, int64_t n, unsigned char *buf, int64_t write, int64_t gfp), (m, id, offset, n, buf, write, gfp))
{
    if (!m || (!buf && n) || (write != 0 && write != 1))
        return PA_EINVAL;
    struct pa_mm *mm = mm_get(m, id);
    if (!mm || offset < 0 || n < 0 || gfp < 0 || gfp > (int64_t)UINT32_MAX
        || (uint64_t)offset > (MAX_MM_PAGES << PA_PAGE_SHIFT)
        || (uint64_t)n > (MAX_MM_PAGES << PA_PAGE_SHIFT) - (uint64_t)offset)
        return PA_EINVAL;
    uint64_t end = (uint64_t)offset + (uint64_t)n;
    uint64_t limit = mm->is_file ? (write ? MAX_MM_PAGES << PA_PAGE_SHIFT : mm->size)
                                 : mm->nr_pages << PA_PAGE_SHIFT;
    if (end > limit)
        return PA_EFAULT;
    m->alloc_seq++;
    m->ticks++;
    if (!n)
        return PA_OK;
    uint64_t first = (uint64_t)offset >> PA_PAGE_SHIFT, last = (end - 1) >> PA_PAGE_SHIFT;
    uint64_t old_nr_pages = mm->nr_pages;
    int64_t done;
    /* pages are dirtied only once all of them are in: a write that fails
     * leaves no dirty page behind, and none past the file's old end */
    rw_pin.m = m;
    rw_pin.id = id;
    rw_pin.first = first;
    rw_pin.last = last;
    rw_pin.offset = (uint64_t)offset;
    rw_pin.end = end;
    int rc = mm_fault(m, id, first, last - first + 1, (uint32_t)gfp, write ? FAULT_RW_WRITE : 0, &done);
    rw_pin.m = NULL;
    if (rc) {
        if (write && mm->is_file)
            mm_truncate(m, &m->mms[id], old_nr_pages);
        return (int)pa_call_end(m, rc);
    }
    mm = &m->mms[id];
    /* reclaim skipped the pinned pages, so every page is still here */
    uint64_t pos = (uint64_t)offset;
    while (pos < end) {
        uint64_t idx = pos >> PA_PAGE_SHIFT, off = pos & (PA_PAGE_SIZE - 1);
        uint64_t chunk = PA_PAGE_SIZE - off;
        if (chunk > end - pos)
            chunk = end - pos;
        unsigned char *mem = page_mem(m, ENT_VAL(mm->ent[idx])) + off;
        if (write) {
            memcpy(mem, buf + (pos - (uint64_t)offset), chunk);
            if (mm->is_file)
                set_dirty(m, mm, idx);
        } else {
            memcpy(buf + (pos - (uint64_t)offset), mem, chunk);
        }
        pos += chunk;
    }
    if (write && mm->is_file && end > mm->size)
        mm->size = end;
    return (int)pa_call_end(m, PA_OK);
}

static void mm_free_pages(pa_machine *m, struct pa_mm *mm)
{
    for (uint64_t idx = 0; idx < mm->nr_pages; idx++) {
        uint64_t e = mm->ent[idx];
        if (ENT_STATE(e) == ENT_PRESENT) {
            if (e & ENT_DIRTY) {
                m->ctr[PA_CTR_NR_DIRTY]--;
                pa_zone_of(m, ENT_VAL(e))->nr_dirty--;
            }
            release_page(m, ENT_VAL(e));
        } else if (ENT_STATE(e) == ENT_SWAP) {
            swap_slot_free(m, ENT_VAL(e));
        }
        mm->ent[idx] = 0;
    }
    if (mm->disk)
        for (uint64_t idx = 0; idx < mm->cap; idx++)
            free(mm->disk[idx]);
    free(mm->ent);
    free(mm->disk);
    mm->ent = NULL;
    mm->disk = NULL;
    mm->cap = mm->nr_pages = 0;
    mm->rss = mm->swapents = mm->nr_dirty = 0;
    mm->dirtied_when = mm->wb_index = 0;    /* the inode is gone from the flusher's lists */
    mm->alive = 0;
}

PA_ENTRY(int, pa_mm_release, (pa_machine *m, int64_t id), (m, id))
{
    if (!m)
        return PA_EINVAL;
    struct pa_mm *mm = mm_get(m, id);
    if (!mm)
        return PA_EINVAL;
    m->ticks++;
    munlock_mm(m, mm);
    mm_free_pages(m, mm);
    /* the newest slots are given back, so creating an mm and releasing it
     * again (a failed call undoing itself) leaves nothing behind */
    while (m->nr_mms && !m->mms[m->nr_mms - 1].alive)
        m->nr_mms--;
    return PA_OK;
}

PA_ENTRY(int, pa_mm_info, (pa_machine *m, int64_t id, struct pa_mm_info *out), (m, id, out))
{
    if (!m || !out || id < 0 || (uint64_t)id >= m->nr_mms)
        return PA_EINVAL;
    const struct pa_mm *mm = &m->mms[id];
    memset(out, 0, sizeof(*out));
    out->alive = mm->alive;
    out->is_file = mm->is_file;
    out->nr_pages = mm->nr_pages;
    out->size = mm->size;
    out->rss = mm->rss;
    out->swapents = mm->swapents;
    out->nr_dirty = mm->nr_dirty;
    if (!mm->is_file && mm->nr_pages) {
        /* one PTE page per 2 MiB, one PMD page per 1 GiB, one PUD page */
        uint64_t ptes = (mm->nr_pages + 511) / 512, pmds = (ptes + 511) / 512;
        out->pgtables_bytes = (ptes + pmds + 1) * PA_PAGE_SIZE;
    }
    return PA_OK;
}

PA_ENTRY(int, pa_sync, (pa_machine *m), (m))
{
    if (!m)
        return PA_EINVAL;
    m->ticks++;
    for (uint32_t id = 0; id < m->nr_mms; id++) {
        struct pa_mm *mm = &m->mms[id];
        if (!mm->alive || !mm->is_file)
            continue;
        for (uint64_t idx = 0; idx < mm->nr_pages && mm->nr_dirty; idx++)
            if (ENT_STATE(mm->ent[idx]) == ENT_PRESENT && (mm->ent[idx] & ENT_DIRTY)) {
                int rc = writeback_page(m, mm, idx);
                if (rc)
                    return rc;
                m->ticks += WRITEBACK_US;
            }
    }
    return PA_OK;
}

/* echo 1 > /proc/sys/vm/drop_caches: every clean cache page goes */
PA_ENTRY(int64_t, pa_drop_caches, (pa_machine *m), (m))
{
    if (!m)
        return PA_EINVAL;
    m->ticks++;
    m->ctr[PA_CTR_DROP_PAGECACHE]++;
    int64_t dropped = 0;
    for (uint32_t id = 0; id < m->nr_mms; id++) {
        struct pa_mm *mm = &m->mms[id];
        if (!mm->alive || !mm->is_file)
            continue;
        for (uint64_t idx = 0; idx < mm->nr_pages; idx++) {
            uint64_t e = mm->ent[idx];
            if (ENT_STATE(e) != ENT_PRESENT || (e & ENT_DIRTY))
                continue;
            mm->ent[idx] = MK_ENT(0, ENT_DISK);
            mm->rss--;
            release_page(m, ENT_VAL(e));
            dropped++;
        }
    }
    return dropped;
}

/* -- shrinking the LRU lists (mm/vmscan.c) ------------------------------------------------ */

static uint64_t lru_size(const pa_machine *m, unsigned lru)
{
    return m->ctr[lru == LRU_UNEVICTABLE ? PA_CTR_NR_UNEVICTABLE : PA_CTR_NR_INACTIVE_ANON + lru];
}

static uint64_t zone_lru_size(const struct pa_zone *z, unsigned lru)
{
    return lru == LRU_UNEVICTABLE ? z->nr_unevictable : z->nr_lru[lru];
}

/* inactive_is_low(): the inactive list should hold at least 1/ratio of the type */
static bool inactive_is_low(const pa_machine *m, unsigned inactive_lru)
{
    uint64_t inactive = lru_size(m, inactive_lru), active = lru_size(m, inactive_lru + 1);
    uint64_t gb = (inactive + active) >> (30 - PA_PAGE_SHIFT);
    uint64_t ratio = 1;
    if (gb) {
        uint64_t x = 10 * gb, r = 0;
        while ((r + 1) * (r + 1) <= x)
            r++;
        ratio = r;
    }
    return inactive * ratio < active;
}

/* Pages of zones above sc->reclaim_idx that isolate_lru_folios() passes over:
 * off the list while the scan goes on, back at its head afterwards (as the
 * kernel splices folios_skipped), counted in pgskip_<zone>. */
struct lru_skipped {
    uint64_t head, tail, nr;
};

static bool lru_skip(pa_machine *m, const struct scan_control *sc, struct lru_skipped *sk, uint64_t pfn)
{
    unsigned zid = (unsigned)(pa_zone_of(m, pfn) - m->zones);
    if (zid <= sc->reclaim_idx || sk->nr >= SWAP_CLUSTER_MAX_SKIPPED)
        return false;
    lru_del(m, pfn);
    m->pages[pfn].next = PA_NIL;
    if (sk->tail == PA_NIL)
        sk->head = pfn;
    else
        m->pages[sk->tail].next = (uint32_t)pfn;
    sk->tail = pfn;
    sk->nr++;
    m->ctr[PA_CTR_PGSKIP_DMA + zid]++;
    return true;
}

static void lru_skipped_putback(pa_machine *m, struct lru_skipped *sk, unsigned lru)
{
    for (uint64_t pfn = sk->head, next; pfn != PA_NIL; pfn = next) {
        next = m->pages[pfn].next;
        lru_add(m, pfn, lru);
    }
}

/* folio_referenced() of a page mapped at most once: test and clear its pte's accessed bit */
static bool folio_referenced(pa_machine *m, uint64_t pfn)
{
    bool young = m->lru_ext[pfn] & PA_PGX_YOUNG;
    m->lru_ext[pfn] &= (uint8_t)~PA_PGX_YOUNG;
    return young;
}

/* shrink_active_list(): age nr pages from the active tail to the inactive
 * head.  Their pte references are cleared (no VM_EXEC file pages to rotate),
 * PG_referenced stays, and they become PG_workingset: a refault after their
 * eviction is thrashing. */
static void shrink_active_list(pa_machine *m, const struct scan_control *sc, uint64_t nr, unsigned active_lru)
{
    struct lru_skipped sk = {PA_NIL, PA_NIL, 0};
    uint64_t pfn = m->lru[active_lru].tail;
    for (uint64_t i = 0; i < nr && pfn != PA_NIL;) {
        uint64_t prev = m->pages[pfn].prev;
        m->ctr[PA_CTR_PGREFILL]++;
        if (!lru_skip(m, sc, &sk, pfn)) {
            folio_referenced(m, pfn);
            m->lru_ext[pfn] |= PA_PGX_WORKINGSET;
            lru_move(m, pfn, active_lru - 1);
            m->ctr[PA_CTR_PGDEACTIVATE]++;
            i++;
        }
        pfn = prev;
    }
    lru_skipped_putback(m, &sk, active_lru);
}

enum folio_references { FOLIOREF_RECLAIM, FOLIOREF_RECLAIM_CLEAN, FOLIOREF_KEEP, FOLIOREF_ACTIVATE };

/* folio_check_references(): a mapped page referenced since the last scan gets
 * another trip around the inactive list (it starts out referenced by the
 * fault that mapped it), and is activated if it is referenced again; a page
 * cache page marked accessed once is still reclaimed */
static enum folio_references folio_check_references(pa_machine *m, uint64_t pfn, bool file)
{
    struct pa_page *p = &m->pages[pfn];
    bool referenced_ptes = folio_referenced(m, pfn);
    bool referenced_folio = p->flags & PA_PG_REFERENCED;
    p->flags &= (uint8_t)~PA_PG_REFERENCED;
    if (referenced_ptes) {
        p->flags |= PA_PG_REFERENCED;
        return referenced_folio ? FOLIOREF_ACTIVATE : FOLIOREF_KEEP;
    }
    return referenced_folio && file ? FOLIOREF_RECLAIM_CLEAN : FOLIOREF_RECLAIM;
}

/* shrink_folio_list() for one page taken from an inactive tail: true if it
 * was reclaimed */
static bool shrink_folio(pa_machine *m, struct scan_control *sc, uint64_t pfn, unsigned lru)
{
    struct pa_page *p = &m->pages[pfn];
    bool file = lru == LRU_INACTIVE_FILE;
    struct pa_mm *mm = &m->mms[p->priv];
    uint64_t idx = m->pg_index[pfn];
    uint64_t *e = &mm->ent[idx];
    if (rw_pinned(m, p->priv, idx)) {
        lru_move(m, pfn, lru);              /* in use by the read or write: keep */
        return false;
    }
    enum folio_references ref = folio_check_references(m, pfn, file);
    if (ref == FOLIOREF_ACTIVATE) {
        lru_move(m, pfn, lru + 1);
        m->ctr[PA_CTR_PGACTIVATE]++;
        return false;
    }
    if (ref == FOLIOREF_KEEP) {
        lru_move(m, pfn, lru);
        return false;
    }
    if (!file) {
        uint64_t slot = sc->may_swap ? swap_slot_alloc(m) : PA_NIL;
        if (slot == PA_NIL) {
            lru_move(m, pfn, lru);          /* keep: back to the head */
            return false;
        }
        memcpy(m->swap + (slot << PA_PAGE_SHIFT), page_mem(m, pfn), PA_PAGE_SIZE);
        m->ctr[PA_CTR_NR_SWAP_FREE]--;
        *e = MK_ENT(slot, ENT_SWAP);
        workingset_swap_shadow_set(m, slot, workingset_eviction(m, pfn));
        mm->rss--;
        mm->swapents++;
        m->ctr[PA_CTR_PSWPOUT]++;
        m->ctr[PA_CTR_PGPGOUT] += PA_PAGE_SIZE / 1024;
        m->ctr[PA_CTR_NR_VMSCAN_WRITE]++;
        sc->swapped++;
        sc->work_us += SWAP_OUT_US;
    } else {
        if (*e & ENT_DIRTY) {
            /* "Immediately reclaim when written back": the flushers write it, reclaim
             * activates it (shrink_folio_list(), pageout() returns PAGE_ACTIVATE) */
            m->ctr[PA_CTR_NR_VMSCAN_IMMEDIATE_RECLAIM]++;
            lru_move(m, pfn, lru + 1);
            m->ctr[PA_CTR_PGACTIVATE]++;
            return false;
        }
        *e = MK_ENT(workingset_eviction(m, pfn), ENT_DISK);   /* the shadow takes the page's slot */
        mm->rss--;
    }
    release_page(m, pfn);
    m->ctr[file ? PA_CTR_PGSTEAL_FILE : PA_CTR_PGSTEAL_ANON]++;
    m->ctr[sc->is_kswapd ? PA_CTR_PGSTEAL_KSWAPD : PA_CTR_PGSTEAL_DIRECT]++;
    return true;
}

/* shrink_inactive_list(): skipped pages count as scanned (isolate_lru_folios'
 * total_scan); the pages written and the pages kept are the list's cost */
static void shrink_inactive_list(pa_machine *m, struct scan_control *sc, uint64_t nr, unsigned lru)
{
    struct lru_skipped sk = {PA_NIL, PA_NIL, 0};
    uint64_t pfn = m->lru[lru].tail, scanned = 0, reclaimed = 0, io = sc->written + sc->swapped;
    uint64_t taken = 0, unqueued_dirty = 0;
    for (uint64_t i = 0; i < nr && pfn != PA_NIL;) {
        uint64_t prev = m->pages[pfn].prev;
        sc->nr_scanned++;
        scanned++;
        m->ctr[lru == LRU_INACTIVE_FILE ? PA_CTR_PGSCAN_FILE : PA_CTR_PGSCAN_ANON]++;
        m->ctr[sc->is_kswapd ? PA_CTR_PGSCAN_KSWAPD : PA_CTR_PGSCAN_DIRECT]++;
        sc->work_us += PA_SCAN_PAGE_US;
        if (!lru_skip(m, sc, &sk, pfn)) {
            i++;
            taken++;
            /* folio_check_dirty_writeback(): only file folios count, before their references */
            unqueued_dirty += lru == LRU_INACTIVE_FILE
                              && mm_page_dirty(&m->mms[m->pages[pfn].priv], m->pg_index[pfn]);
            if (shrink_folio(m, sc, pfn, lru)) {
                sc->nr_reclaimed++;
                reclaimed++;
                sc->work_us += PA_RECLAIM_PAGE_US;
            }
        }
        pfn = prev;
    }
    lru_skipped_putback(m, &sk, lru);
    lru_note_cost(m, lru == LRU_INACTIVE_FILE, sc->written + sc->swapped - io, scanned - reclaimed);
    /* "the flushers are not doing their job": nudge them (shrink_inactive_list()) */
    if (taken && unqueued_dirty == taken) {
        wakeup_flusher_threads(m);
        if (!sc->is_kswapd)
            reclaim_throttle_writeback(m);
    }
}

/* lruvec_lru_size(): the pages of a list in the zones up to zone_idx */
static uint64_t lruvec_lru_size(const pa_machine *m, unsigned lru, unsigned zone_idx)
{
    uint64_t size = 0;
    for (unsigned zid = 0; zid <= zone_idx && zid < PA_MAX_NR_ZONES; zid++)
        size += m->zones[zid].nr_lru[lru];
    return size;
}

/* prepare_scan_control()'s file_is_tiny: the cache and free memory together
 * are below the high watermarks, and anon has enough inactive pages to take
 * the pressure instead (the cache trap: a tiny thrashing file LRU would
 * otherwise draw all the scanning) */
static bool file_is_tiny(const pa_machine *m, const struct scan_control *sc, int priority)
{
    uint64_t free = 0, total_high_wmark = 0;
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        free += m->zones[zid].nr_free_pages;
        if (m->zones[zid].managed)
            total_high_wmark += m->zones[zid].wmark[2];
    }
    uint64_t file = lru_size(m, LRU_ACTIVE_FILE) + lru_size(m, LRU_INACTIVE_FILE);
    return file + free <= total_high_wmark && !(sc->may_deactivate & DEACTIVATE_ANON)
           && (lru_size(m, LRU_INACTIVE_ANON) >> priority);
}

/* prepare_scan_control()'s may_deactivate: age a type's active list when its
 * inactive list is low, or when refaults activated pages since the last
 * reclaim run (a new workingset is forming: the old active pages are stale) */
static void prepare_scan_control(const pa_machine *m, struct scan_control *sc)
{
    const uint64_t *c = m->ctr;
    sc->may_deactivate = 0;
    if (c[PA_CTR_WORKINGSET_ACTIVATE_ANON] != c[PA_CTR_REFAULTS_ANON] || inactive_is_low(m, LRU_INACTIVE_ANON))
        sc->may_deactivate |= DEACTIVATE_ANON;
    if (c[PA_CTR_WORKINGSET_ACTIVATE_FILE] != c[PA_CTR_REFAULTS_FILE] || inactive_is_low(m, LRU_INACTIVE_FILE))
        sc->may_deactivate |= DEACTIVATE_FILE;
}

/* snapshot_refaults(): a reclaim run ended */
static void snapshot_refaults(pa_machine *m)
{
    m->ctr[PA_CTR_REFAULTS_ANON] = m->ctr[PA_CTR_WORKINGSET_ACTIVATE_ANON];
    m->ctr[PA_CTR_REFAULTS_FILE] = m->ctr[PA_CTR_WORKINGSET_ACTIVATE_FILE];
}

/* get_scan_count(): how many pages of each list to look at this round.  No
 * swap: file only; priority 0 (close to OOM): both by size; a tiny file LRU:
 * anon only; plenty of inactive cache (cache_trim_mode): file only; else in
 * proportion to swappiness and inversely to each type's recent cost
 * (lru_note_cost), a third of the pressure at least. */
static void get_scan_count(pa_machine *m, struct scan_control *sc, int priority, uint64_t nr[NR_LRU_LISTS])
{
    enum { SCAN_EQUAL, SCAN_FRACT, SCAN_ANON, SCAN_FILE } balance = SCAN_FRACT;
    uint64_t swappiness = m->vm_sysctl[PA_SYSCTL_SWAPPINESS], fraction[2] = {0, 0}, denominator = 1;
    if (!sc->may_swap)
        balance = SCAN_FILE;
    else if (!priority && swappiness)
        balance = SCAN_EQUAL;
    else if (file_is_tiny(m, sc, priority))
        balance = SCAN_ANON;
    else if ((lru_size(m, LRU_INACTIVE_FILE) >> priority) && !(sc->may_deactivate & DEACTIVATE_FILE))
        balance = SCAN_FILE;        /* cache_trim_mode: plenty of inactive cache to trim */
    if (balance == SCAN_FRACT) {
        uint64_t total_cost = m->ctr[PA_CTR_ANON_COST] + m->ctr[PA_CTR_FILE_COST];
        uint64_t anon_cost = total_cost + m->ctr[PA_CTR_ANON_COST];
        uint64_t file_cost = total_cost + m->ctr[PA_CTR_FILE_COST];
        total_cost = anon_cost + file_cost;
        fraction[0] = swappiness * (total_cost + 1) / (anon_cost + 1);
        fraction[1] = (MAX_SWAPPINESS - swappiness) * (total_cost + 1) / (file_cost + 1);
        denominator = fraction[0] + fraction[1];
    }
    for (unsigned lru = 0; lru < NR_LRU_LISTS; lru++) {
        bool is_file = lru >= LRU_INACTIVE_FILE;
        uint64_t scan = lruvec_lru_size(m, lru, sc->reclaim_idx) >> priority;
        switch (balance) {
        case SCAN_FILE:
            scan = is_file ? scan : 0;
            break;
        case SCAN_ANON:
            scan = is_file ? 0 : scan;
            break;
        case SCAN_FRACT:
            scan = scan * fraction[is_file] / denominator;
            break;
        default:
            break;
        }
        nr[lru] = scan;
    }
}

static bool scan_left(const uint64_t nr[NR_LRU_LISTS])
{
    return nr[LRU_INACTIVE_ANON] || nr[LRU_ACTIVE_FILE] || nr[LRU_INACTIVE_FILE];
}

/* one pass of shrink_lruvec()'s loop: up to SWAP_CLUSTER_MAX pages of each list */
static void shrink_lruvec_batch(pa_machine *m, struct scan_control *sc, uint64_t nr[NR_LRU_LISTS])
{
    for (unsigned lru = 0; lru < NR_LRU_LISTS; lru++) {
        if (!nr[lru])
            continue;
        uint64_t batch = nr[lru] < SWAP_CLUSTER_MAX ? nr[lru] : SWAP_CLUSTER_MAX;
        nr[lru] -= batch;
        if (lru & 1) {
            if (sc->may_deactivate & (lru >= LRU_INACTIVE_FILE ? DEACTIVATE_FILE : DEACTIVATE_ANON))
                shrink_active_list(m, sc, batch, lru);
        } else {
            shrink_inactive_list(m, sc, batch, lru);
        }
    }
}

/* the end of shrink_node() at one priority */
static void shrink_node_done(pa_machine *m, struct scan_control *sc, bool progress)
{
    /* keep aging anonymous pages even when only the cache was scanned */
    if (sc->may_swap && inactive_is_low(m, LRU_INACTIVE_ANON))
        shrink_active_list(m, sc, SWAP_CLUSTER_MAX, LRU_ACTIVE_ANON);
    /* any progress makes the node worth kswapd's time again */
    if (progress)
        m->ctr[PA_CTR_KSWAPD_FAILURES] = 0;
}

/* shrink_lruvec(): work through the lists in batches until the target is met */
static void shrink_node(pa_machine *m, struct scan_control *sc, int priority)
{
    uint64_t nr[NR_LRU_LISTS], reclaimed = sc->nr_reclaimed;
    prepare_scan_control(m, sc);
    get_scan_count(m, sc, priority, nr);
    while (scan_left(nr)) {
        shrink_lruvec_batch(m, sc, nr);
        if (sc->nr_reclaimed >= sc->nr_to_reclaim)
            break;
    }
    shrink_node_done(m, sc, sc->nr_reclaimed > reclaimed);
}

static void scan_control_init(pa_machine *m, struct scan_control *sc, uint32_t gfp, bool kswapd)
{
    memset(sc, 0, sizeof(*sc));
    sc->gfp = gfp;
    sc->is_kswapd = kswapd;
    sc->reclaim_idx = PA_MAX_NR_ZONES - 1;
    sc->may_writepage = kswapd || ((gfp & GFP_IO_BIT) && (gfp & GFP_FS_BIT));
    sc->may_swap = (kswapd || (gfp & GFP_IO_BIT)) && m->ctr[PA_CTR_NR_SWAP_FREE] > 0;
}

/* try_to_free_pages(): direct reclaim on behalf of an allocation that may
 * sleep; the caller stalls for the time the work takes */
uint64_t try_to_free_pages(pa_machine *m, uint32_t gfp, unsigned order, unsigned highest)
{
    struct scan_control sc;
    scan_control_init(m, &sc, gfp, false);
    sc.nr_to_reclaim = SWAP_CLUSTER_MAX;
    sc.reclaim_idx = highest;               /* gfp_zone(): the request's zones only */
    m->ctr[PA_CTR_ALLOCSTALL_DMA + highest]++;
    m->cost[PA_COST_SLEPT] = 1;
    for (int priority = DEF_PRIORITY; priority >= 0; priority--) {
        /* may_swap changes as swap fills up */
        sc.may_swap = (gfp & GFP_IO_BIT) && m->ctr[PA_CTR_NR_SWAP_FREE] > 0;
        shrink_node(m, &sc, priority);
        if (sc.nr_reclaimed >= sc.nr_to_reclaim)
            break;
    }
    m->cost[PA_COST_SCANNED] += sc.nr_scanned;
    m->cost[PA_COST_RECLAIMED] += sc.nr_reclaimed;
    m->cost[PA_COST_WRITTEN_BACK] += sc.written;
    m->cost[PA_COST_SWAPPED_OUT] += sc.swapped;
    snapshot_refaults(m);
    reclaim_stall(m, 1 + sc.work_us);
    (void)order;
    return sc.nr_reclaimed;
}

/* -- kswapd ---------------------------------------------------------------------------------- */

/* pgdat_balanced(): one eligible zone at its high watermark is enough */
static bool pgdat_balanced(pa_machine *m, unsigned order, unsigned highest)
{
    bool any = false;
    for (unsigned zid = 0; zid <= highest && zid < PA_MAX_NR_ZONES; zid++) {
        const struct pa_zone *z = &m->zones[zid];
        if (!z->managed)
            continue;
        any = true;
        if (buddy_zone_watermark_ok(z, order, (int64_t)z->wmark[2], highest, 0))
            return true;
    }
    return !any;
}

void wakeup_kswapd(pa_machine *m, unsigned order, unsigned highest)
{
    /* a node kswapd failed on MAX_RECLAIM_RETRIES times in a row is left alone */
    if (m->ctr[PA_CTR_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES || pgdat_balanced(m, order, highest))
        return;
    struct pa_kswapd *k = &m->kt.kswapd;
    bool asleep = !m->kswapd_wanted || k->nap_until;
    if (asleep || order > m->kswapd_order)
        m->kswapd_order = order;
    if (asleep || highest > m->kswapd_highest)
        m->kswapd_highest = highest;
    if (k->nap_until) {
        /* kswapd_try_to_sleep(): woken before its nap was over */
        m->ctr[PA_CTR_KSWAPD_LOW_WMARK_HIT_QUICKLY]++;
        k->nap_until = 0;
    }
    /* a sleeping kswapd starts now; a busy one is already ahead */
    if (k->clock < m->ticks)
        k->clock = m->ticks;
    m->kswapd_wanted = 1;
    m->cost[PA_COST_KSWAPD_WOKEN] = 1;
}

/* prepare_kswapd_sleep(): kswapd may sleep on a balanced node, or a hopeless one */
static bool prepare_kswapd_sleep(pa_machine *m)
{
    return m->ctr[PA_CTR_KSWAPD_FAILURES] >= MAX_RECLAIM_RETRIES || pgdat_balanced(m, 0, m->kswapd_highest);
}

/* balance_pgdat() is over: kswapd_try_to_sleep() naps HZ/10 on a balanced
 * node, else kswapd goes straight back to work */
static void balance_pgdat_done(pa_machine *m)
{
    struct pa_kswapd *k = &m->kt.kswapd;
    if (!k->run_reclaimed && !pgdat_balanced(m, 0, m->kswapd_highest))
        m->ctr[PA_CTR_KSWAPD_FAILURES]++;
    snapshot_refaults(m);
    k->priority = 0;
    if (prepare_kswapd_sleep(m)) {
        /* kswapd_try_to_sleep(): a balanced node hands the order to kcompactd first */
        wakeup_kcompactd(m, m->kswapd_order, m->kswapd_highest);
        k->nap_until = k->clock + PA_KSWAPD_NAP_US;
    } else {
        m->ctr[PA_CTR_KSWAPD_HIGH_WMARK_HIT_QUICKLY]++;
    }
}

/* the nap ended with nobody waking kswapd: sleep until woken if the node is
 * still balanced, else the high watermark was lost quickly: back to work */
void kswapd_nap_done(pa_machine *m)
{
    m->kt.kswapd.nap_until = 0;
    if (prepare_kswapd_sleep(m))
        m->kswapd_wanted = 0;
    else
        m->ctr[PA_CTR_KSWAPD_HIGH_WMARK_HIT_QUICKLY]++;
}

/* balance_pgdat() one SWAP_CLUSTER_MAX batch at a time (kthread.c calls it
 * while kswapd has time): the priority loop of kswapd_shrink_node(), from
 * DEF_PRIORITY down to 1, stopping when a zone is balanced.  It balances at
 * order 0: higher orders are left to compaction (the kernel's kswapd also
 * drops to order 0 once it reclaimed the compaction gap).  Answers the time
 * the batch took; 0 when the run ended without one. */
uint64_t balance_pgdat_batch(pa_machine *m)
{
    struct pa_kswapd *k = &m->kt.kswapd;
    unsigned highest = m->kswapd_highest;
    if (!k->priority) {
        m->ctr[PA_CTR_PAGEOUTRUN]++;
        k->priority = DEF_PRIORITY;
        k->run_reclaimed = 0;
        k->in_round = 0;
    }
    struct scan_control sc;
    scan_control_init(m, &sc, GFP_IO_BIT | GFP_FS_BIT | GFP_DIRECT_RECLAIM_BIT | GFP_KSWAPD_RECLAIM_BIT, true);
    sc.reclaim_idx = highest;
    prepare_scan_control(m, &sc);       /* per batch: the kernel's is per round */
    for (unsigned zid = 0; zid <= highest && zid < PA_MAX_NR_ZONES; zid++) {
        const struct pa_zone *z = &m->zones[zid];
        if (z->managed)
            sc.nr_to_reclaim += z->wmark[2] > SWAP_CLUSTER_MAX ? z->wmark[2] : SWAP_CLUSTER_MAX;
    }
    for (;;) {
        if (!k->in_round) {
            if (k->priority < 1 || pgdat_balanced(m, 0, highest)) {
                balance_pgdat_done(m);
                return 0;
            }
            get_scan_count(m, &sc, (int)k->priority, k->nr);
            k->round_reclaimed = 0;
            k->in_round = 1;
        }
        bool batch = scan_left(k->nr);
        sc.nr_reclaimed = k->round_reclaimed;
        if (batch)
            shrink_lruvec_batch(m, &sc, k->nr);
        k->run_reclaimed += sc.nr_reclaimed - k->round_reclaimed;
        k->round_reclaimed = sc.nr_reclaimed;
        if (!scan_left(k->nr) || sc.nr_reclaimed >= sc.nr_to_reclaim) {
            shrink_node_done(m, &sc, k->round_reclaimed > 0);
            k->in_round = 0;
            k->priority--;
        }
        if (batch)
            return sc.work_us ? sc.work_us : 1;
    }
}

/* -- OOM facts and counters -------------------------------------------------------------------- */

PA_ENTRY(int, pa_counters, (pa_machine *m, uint64_t *out, int64_t n), (m, out, n))
{
    if (!m || !out || n != PA_NR_CTRS)
        return PA_EINVAL;
    memcpy(out, m->ctr, sizeof(m->ctr));
    return PA_OK;
}

PA_ENTRY(int, pa_last_cost, (pa_machine *m, uint64_t *out, int64_t n), (m, out, n))
{
    if (!m || !out || n != PA_NR_COSTS)
        return PA_EINVAL;
    memcpy(out, m->cost, sizeof(m->cost));
    out[PA_COST_SEQ] = m->cost[PA_COST_SEQ] == m->alloc_seq;
    return PA_OK;
}

/* mode 1: the OOM killer found no victim, act as out_of_memory() failing;
 * mode 2: count a kill (the caller released the victim) */
PA_ENTRY(int, pa_set_oom_mode, (pa_machine *m, int64_t mode), (m, mode))
{
    if (!m || mode < 0 || mode > 2)
        return PA_EINVAL;
    if (mode == 2)
        m->ctr[PA_CTR_OOM_KILL]++;
    else
        m->oom_mode = (uint32_t)mode;
    return PA_OK;
}

void reclaim_machine_free(pa_machine *m)
{
    for (uint32_t id = 0; id < m->nr_mms; id++) {
        struct pa_mm *mm = &m->mms[id];
        if (mm->disk)
            for (uint64_t idx = 0; idx < mm->cap; idx++)
                free(mm->disk[idx]);
        free(mm->disk);
        free(mm->ent);
    }
    free(m->mms);
    free(m->pg_index);
    free(m->lru_ext);
    free(m->swap_shadow);
    free(m->swap_free);
    if (m->swap)
        pa_unmap(m->swap, m->swap_pages << PA_PAGE_SHIFT);
    m->mms = NULL;
    m->nr_mms = m->cap_mms = 0;
    m->pg_index = NULL;
    m->lru_ext = NULL;
    m->swap_shadow = NULL;
    m->swap_free = NULL;
    m->swap = NULL;
    m->swap_pages = 0;
}

#define FAIL(...) do { snprintf(msg, msglen, __VA_ARGS__); return PA_EINVARIANT; } while (0)

int reclaim_check(pa_machine *m, char *msg, size_t msglen)
{
    static const char *const names[NR_LRU_LISTS + 1] = {"inactive_anon", "active_anon", "inactive_file",
                                                         "active_file", "unevictable"};
    uint64_t zone_lru[PA_MAX_NR_ZONES][NR_LRU_LISTS + 1] = {{0}};
    for (unsigned lru = 0; lru <= LRU_UNEVICTABLE; lru++) {
        uint64_t n = 0, prev = PA_NIL;
        for (uint64_t pfn = m->lru[lru].head; pfn != PA_NIL; pfn = m->pages[pfn].next) {
            if (pfn >= m->nr_pages || ++n > m->nr_pages)
                FAIL("LRU %s is corrupt", names[lru]);
            const struct pa_page *p = &m->pages[pfn];
            if (p->prev != prev)
                FAIL("LRU %s: pfn 0x%llx has a bad prev link", names[lru], (unsigned long long)pfn);
            if (!(p->flags & PA_PG_LRU) || !(p->flags & PA_PG_ALLOC) || page_lru(m, pfn) != lru)
                FAIL("LRU %s: pfn 0x%llx is not a page of this list", names[lru], (unsigned long long)pfn);
            if (p->priv >= m->nr_mms || !m->mms[p->priv].alive || !m->pg_index)
                FAIL("LRU %s: pfn 0x%llx belongs to no live process or file", names[lru], (unsigned long long)pfn);
            const struct pa_mm *mm = &m->mms[p->priv];
            uint64_t idx = m->pg_index[pfn];
            if (idx >= mm->nr_pages || ENT_STATE(mm->ent[idx]) != ENT_PRESENT || ENT_VAL(mm->ent[idx]) != pfn)
                FAIL("LRU %s: pfn 0x%llx is not mapped where its rmap says", names[lru], (unsigned long long)pfn);
            zone_lru[pa_zone_of(m, pfn) - m->zones][lru]++;
            prev = pfn;
        }
        if (prev != m->lru[lru].tail)
            FAIL("LRU %s: the tail is wrong", names[lru]);
        if (n != lru_size(m, lru))
            FAIL("LRU %s holds %llu pages but counts %llu", names[lru], (unsigned long long)n,
                 (unsigned long long)lru_size(m, lru));
    }
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++)
        for (unsigned lru = 0; lru <= LRU_UNEVICTABLE; lru++)
            if (zone_lru[zid][lru] != zone_lru_size(&m->zones[zid], lru))
                FAIL("zone %d counts %llu %s pages, the list holds %llu", zid,
                     (unsigned long long)zone_lru_size(&m->zones[zid], lru), names[lru],
                     (unsigned long long)zone_lru[zid][lru]);
    uint64_t swapents = 0, dirty = 0;
    for (uint32_t id = 0; id < m->nr_mms; id++) {
        const struct pa_mm *mm = &m->mms[id];
        if (!mm->alive)
            continue;
        uint64_t rss = 0, swp = 0, drt = 0;
        if (mm->nr_pages > mm->cap)
            FAIL("mm %u: %llu pages but room for %llu", id, (unsigned long long)mm->nr_pages,
                 (unsigned long long)mm->cap);
        for (uint64_t idx = 0; idx < mm->nr_pages; idx++) {
            uint64_t e = mm->ent[idx];
            if (ENT_STATE(e) == ENT_PRESENT) {
                rss++;
                drt += mm->is_file && (e & ENT_DIRTY);
                uint64_t pfn = ENT_VAL(e);
                if (pfn >= m->nr_pages || !m->pg_index || m->pages[pfn].priv != id || m->pg_index[pfn] != idx
                    || !(m->pages[pfn].flags & PA_PG_LRU))
                    FAIL("mm %u page %llu: pfn 0x%llx does not point back", id, (unsigned long long)idx,
                         (unsigned long long)pfn);
            } else if (ENT_STATE(e) == ENT_SWAP) {
                swp++;
                if (ENT_VAL(e) >= m->swap_next)
                    FAIL("mm %u page %llu: swap slot out of range", id, (unsigned long long)idx);
            } else if (!mm->is_file && ENT_STATE(e) != ENT_NONE) {
                FAIL("mm %u page %llu: bad entry", id, (unsigned long long)idx);
            }
        }
        if (rss != mm->rss || swp != mm->swapents || drt != mm->nr_dirty)
            FAIL("mm %u: counts rss %llu swap %llu dirty %llu, holds %llu %llu %llu", id,
                 (unsigned long long)mm->rss, (unsigned long long)mm->swapents, (unsigned long long)mm->nr_dirty,
                 (unsigned long long)rss, (unsigned long long)swp, (unsigned long long)drt);
        swapents += swp;
        dirty += drt;
    }
    if (swapents != m->swap_next - m->nr_swap_free_stack
        || m->ctr[PA_CTR_NR_SWAP_FREE] != m->swap_pages - swapents)
        FAIL("swap: %llu entries in use but %llu slots taken", (unsigned long long)swapents,
             (unsigned long long)(m->swap_next - m->nr_swap_free_stack));
    if (dirty != m->ctr[PA_CTR_NR_DIRTY])
        FAIL("%llu dirty pages counted, %llu found", (unsigned long long)m->ctr[PA_CTR_NR_DIRTY],
             (unsigned long long)dirty);
    return PA_OK;
}
