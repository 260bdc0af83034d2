/*
 * page_writeback.c - dirty page cache and who writes it, as 6.18 does it:
 * the flusher thread (fs/fs-writeback.c wb_workfn), the dirty limits
 * (mm/page-writeback.c domain_dirty_limits) and the writers' throttle
 * (balance_dirty_pages).  pyalloc/model/page_writeback.py is the same
 * algorithm, function for function.
 *
 * Reclaim writes no file page (reclaim.c): one flusher does, on the simulated
 * clock, WRITEBACK_US a page.  It runs as a catch-up: flusher_catch_up() does
 * the work that fits between the flusher's own clock (m->wb.clock) and now,
 * deciding at each free moment, in wb_do_writeback()'s order:
 *   1. a running kupdate work writes inodes dirtied at or before its cutoff;
 *   2. every dirty_writeback_centisecs a kupdate work starts
 *      (wb_check_old_data_flush), cutoff = now - dirty_expire_centisecs;
 *   3. a wakeup_flusher_threads() work (WB_start_all) writes as many pages as
 *      were dirty when reclaim asked;
 *   4. background writeback while dirty pages exceed the background threshold
 *      (wb_check_background_flush, wb_over_bg_thresh);
 *   5. else it sleeps until its next timer, or until the next catch-up.
 * It is called where pages are dirtied (before the first dirtying, so an idle
 * flusher never earns time it did not have) and at the end of every call.
 *
 * Inodes are written oldest first (b_dirty, by dirtied_when; ties by file
 * id), each from its writeback_index onwards (range_cyclic); an inode whose
 * sweep reaches its end still dirty is redirtied now (redirty_tail).  A page
 * written stays in the cache, clean.
 *
 * Simplifications (README "Where pyalloc simplifies"): one bdi, writeback
 * completes within its WRITEBACK_US (no PG_writeback state, so no
 * PG_reclaim rotation to the inactive tail); balance_dirty_pages() sleeps
 * only above the dirty limit (not from the freerun ceiling), for as long as
 * the flusher needs to bring the count under it, at most MAX_PAUSE a sleep,
 * and checks after every page dirtied (ratelimit 1).
 */
#include <string.h>

#include "internal.h"


/* global_dirtyable_memory() + domain_dirty_limits() with the ratios, no *_bytes */
void domain_dirty_limits(const pa_machine *m, uint64_t *thresh, uint64_t *bg_thresh)
{
    uint64_t free = 0, reserve = 0;
    for (int zid = 0; zid < PA_MAX_NR_ZONES; zid++) {
        const struct pa_zone *z = &m->zones[zid];
        uint64_t max = 0;
        for (int j = zid; j < PA_MAX_NR_ZONES; j++)
            if (z->lowmem_reserve[j] > max)
                max = z->lowmem_reserve[j];
        max += z->wmark[2];
        reserve += max < z->managed ? max : z->managed;    /* calculate_totalreserve_pages() */
        free += z->nr_free_pages;
    }
    uint64_t avail = free - (free < reserve ? free : reserve)
                     + m->ctr[PA_CTR_NR_INACTIVE_FILE] + m->ctr[PA_CTR_NR_ACTIVE_FILE] + 1;
    uint64_t ratio = m->vm_sysctl[PA_SYSCTL_DIRTY_RATIO] * PA_PAGE_SIZE / 100;
    uint64_t bg_ratio = m->vm_sysctl[PA_SYSCTL_DIRTY_BACKGROUND_RATIO] * PA_PAGE_SIZE / 100;
    *thresh = ratio * avail / PA_PAGE_SIZE;
    *bg_thresh = bg_ratio * avail / PA_PAGE_SIZE;
    if (*bg_thresh >= *thresh)
        *bg_thresh = *thresh / 2;
}

static bool wb_over_bg_thresh(const pa_machine *m)
{
    uint64_t thresh, bg;
    domain_dirty_limits(m, &thresh, &bg);
    return m->ctr[PA_CTR_NR_DIRTY] > bg;
}

/* the oldest dirty inode (b_dirty's tail), dirtied at or before `before`; -1 if none */
static int64_t wb_oldest_inode(const pa_machine *m, uint64_t before)
{
    int64_t best = -1;
    for (uint32_t id = 0; id < m->nr_mms; id++) {
        const struct pa_mm *mm = &m->mms[id];
        if (!mm->alive || !mm->is_file || !mm->nr_dirty || mm->dirtied_when > before)
            continue;
        if (best < 0 || mm->dirtied_when < m->mms[best].dirtied_when)
            best = id;
    }
    return best;
}

/* writeback_sb_inodes() for one page of inode id, at the flusher's clock; false if the
 * page could not be written (no memory for its disk copy) */
static bool wb_write_one(pa_machine *m, int64_t id)
{
    struct pa_mm *mm = &m->mms[id];
    uint64_t idx = mm->wb_index < mm->nr_pages ? mm->wb_index : 0;
    while (!mm_page_dirty(mm, idx))
        idx = idx + 1 < mm->nr_pages ? idx + 1 : 0;     /* nr_dirty > 0: one is found */
    if (writeback_page(m, mm, idx))
        return false;
    m->wb.clock += WRITEBACK_US;
    if (m->wb.throttled)
        m->ctr[PA_CTR_NR_THROTTLED_WRITTEN]++;          /* acct_reclaim_writeback() */
    mm->wb_index = idx + 1;
    if (mm->wb_index >= mm->nr_pages) {
        mm->wb_index = 0;
        if (mm->nr_dirty)
            mm->dirtied_when = m->wb.clock;             /* redirty_tail() */
    }
    return true;
}

/* the flusher is free at wb.clock with no work: sleep until the next kupdate that has
 * something to write, or until now */
static bool wb_sleep(pa_machine *m, uint64_t now)
{
    uint64_t interval = m->vm_sysctl[PA_SYSCTL_DIRTY_WRITEBACK_CENTISECS] * CENTISEC_US;
    int64_t oldest = wb_oldest_inode(m, UINT64_MAX);
    if (!interval || oldest < 0) {
        m->wb.clock = now;
        return false;
    }
    /* wakes at last_old_flush + k * interval; skip the ones with nothing expired */
    uint64_t expire = m->vm_sysctl[PA_SYSCTL_DIRTY_EXPIRE_CENTISECS] * CENTISEC_US;
    uint64_t due = m->mms[oldest].dirtied_when + expire, last = m->wb.last_old_flush;
    uint64_t k = due > last + interval ? (due - last + interval - 1) / interval : 1;
    uint64_t wake = last + k * interval;
    if (wake < m->wb.clock)
        wake = m->wb.clock;
    if (wake > now) {
        if (now >= last + interval)
            m->wb.last_old_flush = last + (now - last) / interval * interval;
        m->wb.clock = now;
        return false;
    }
    m->wb.clock = wake;
    m->wb.last_old_flush = wake - interval;
    return true;
}

/* wb_workfn() from the flusher's clock up to now: the writeback that fits */
void flusher_catch_up(pa_machine *m)
{
    uint64_t now = m->ticks;
    while (m->wb.clock < now) {
        uint64_t t = m->wb.clock;
        if (m->wb.kupdate) {
            int64_t id = wb_oldest_inode(m, m->wb.cutoff);
            if (id < 0) {
                m->wb.kupdate = 0;
                continue;
            }
            if (t + WRITEBACK_US > now || !wb_write_one(m, id))
                break;
            continue;
        }
        uint64_t interval = m->vm_sysctl[PA_SYSCTL_DIRTY_WRITEBACK_CENTISECS] * CENTISEC_US;
        uint64_t expire = m->vm_sysctl[PA_SYSCTL_DIRTY_EXPIRE_CENTISECS] * CENTISEC_US;
        if (interval && m->ctr[PA_CTR_NR_DIRTY] && t >= m->wb.last_old_flush + interval) {
            /* wb_check_old_data_flush() */
            m->wb.last_old_flush = t;
            if (t >= expire) {
                m->wb.kupdate = 1;
                m->wb.cutoff = t - expire;
            }
            continue;
        }
        if (m->wb.start_all || wb_over_bg_thresh(m)) {
            int64_t id = wb_oldest_inode(m, UINT64_MAX);
            if (id < 0) {
                m->wb.start_all = 0;
                continue;
            }
            if (t + WRITEBACK_US > now || !wb_write_one(m, id))
                break;
            if (m->wb.start_all)
                m->wb.start_all--;
            continue;
        }
        if (!wb_sleep(m, now))
            break;
    }
}

/* wakeup_flusher_threads(WB_REASON_VMSCAN): a work for every page dirty now */
void wakeup_flusher_threads(pa_machine *m)
{
    flusher_catch_up(m);
    if (!m->wb.start_all)
        m->wb.start_all = m->ctr[PA_CTR_NR_DIRTY];
}

/* reclaim_throttle(pgdat, VMSCAN_THROTTLE_WRITEBACK): the reclaimer sleeps until the
 * flushers completed more than SWAP_CLUSTER_MAX pages, at most HZ / 10; a memory stall */
void reclaim_throttle_writeback(pa_machine *m)
{
    uint64_t start = m->ctr[PA_CTR_NR_THROTTLED_WRITTEN], deadline = m->ticks + THROTTLE_WRITEBACK_US;
    m->wb.throttled = 1;
    while (m->ctr[PA_CTR_NR_THROTTLED_WRITTEN] - start <= SWAP_CLUSTER_MAX && m->ticks < deadline
           && m->ctr[PA_CTR_NR_DIRTY]) {
        uint64_t left = SWAP_CLUSTER_MAX + 1 - (m->ctr[PA_CTR_NR_THROTTLED_WRITTEN] - start);
        uint64_t wake = m->wb.clock + left * WRITEBACK_US;
        if (wake <= m->ticks)
            wake = m->ticks + WRITEBACK_US;
        if (wake > deadline)
            wake = deadline;
        reclaim_stall(m, wake - m->ticks);
        flusher_catch_up(m);
    }
    m->wb.throttled = 0;
}

/* balance_dirty_pages(): a writer that took the dirty count over the limit sleeps
 * (io_schedule_timeout: the clock moves, no memory stall) while the flusher writes */
void balance_dirty_pages(pa_machine *m)
{
    for (;;) {
        uint64_t thresh, bg;
        domain_dirty_limits(m, &thresh, &bg);
        uint64_t nr = m->ctr[PA_CTR_NR_DIRTY];
        if (nr <= thresh)
            return;
        uint64_t pause = (nr - thresh) * WRITEBACK_US;
        if (pause > MAX_PAUSE_US)
            pause = MAX_PAUSE_US;
        if (m->cost[PA_COST_SEQ] != m->alloc_seq) {
            memset(m->cost, 0, sizeof(m->cost));
            m->cost[PA_COST_SEQ] = m->alloc_seq;
        }
        m->cost[PA_COST_SLEPT] = 1;
        m->cost[PA_COST_STALL_US] += pause;
        m->ticks += pause;
        uint64_t written = m->ctr[PA_CTR_NR_WRITTEN];
        flusher_catch_up(m);
        if (m->ctr[PA_CTR_NR_WRITTEN] == written)
            return;                 /* the flusher cannot write: do not sleep for ever */
    }
}

