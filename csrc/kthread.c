/*
 * kthread.c - kernel threads on the simulated clock.
 * pyalloc/model/kthread.py is the same algorithm, function for function.
 *
 * The caller's clock is m->ticks.  Each kernel thread keeps its own position
 * on that clock; whenever the caller's clock has moved past it, the thread
 * does the work that fits in the time that passed, one unit at a time (for
 * kswapd a SWAP_CLUSTER_MAX batch of balance_pgdat()), and may overrun the
 * caller by one unit.  kthreads_catch_up() is called between the page
 * allocations of every call (buddy_alloc_pages()) and at the end of every
 * public call (pa_call_done()), so the work a thread gets done depends on the
 * time that passed, not on how the caller split its calls.  The threads work
 * on their own CPU: they stall nobody, and the caller sees their work only
 * through the memory they free.
 *
 * Adding a thread: its state in struct pa_kthreads (internal.h) and the
 * snapshot's kthreads section, its catch-up below (one line in
 * kthreads_catch_up()), and its wake flag in kthreads_run().
 */
#include "internal.h"

/* PSI "some" (kernel/sched/psi.c test_state(): NR_MEMSTALL > 0) from start to
 * end.  "some" is the union of every task's stalls: the caller's stall that
 * overlaps kswapd's reclaim counts once.  Intervals come in order of their
 * start (kswapd catches up before the caller allocates, and so before the
 * caller can stall), so clipping at the end of the last one is the union. */
void psi_memstall_some(pa_machine *m, uint64_t start, uint64_t end)
{
    uint64_t *until = &m->kt.psi_some_until;
    if (start < *until)
        start = *until;
    if (start >= end)
        return;
    psi_account(m->kt.psi_some, start, end);
    *until = end;
}

/* kswapd(): balance_pgdat() batches while the caller's clock is ahead, the
 * HZ/10 nap of kswapd_try_to_sleep() on the clock.  Its time in
 * balance_pgdat() is a memory stall (psi_memstall_enter() there) but the
 * caller runs productively beside it: "some", not "full" (test_state()'s
 * PSI_MEM_FULL needs every running task in a memstall). */
static void kswapd_catch_up(pa_machine *m)
{
    struct pa_kswapd *k = &m->kt.kswapd;
    while (m->kswapd_wanted) {
        if (k->nap_until) {
            if (k->nap_until > m->ticks)
                return;
            if (k->clock < k->nap_until)
                k->clock = k->nap_until;
            kswapd_nap_done(m);
            continue;
        }
        if (k->clock >= m->ticks)
            return;
        /* the frees inside tick the caller's clock: kswapd's time is its own */
        uint64_t now = m->ticks, us = balance_pgdat_batch(m);
        m->ticks = now;
        psi_memstall_some(m, k->clock, k->clock + us);
        k->clock += us;
    }
}

void kthreads_catch_up(pa_machine *m)
{
    kswapd_catch_up(m);
    if (m->kcompactd_wanted)
        kcompactd_run(m);
}

PA_ENTRY(int, pa_kthread_info, (pa_machine *m, uint64_t *out, int64_t n), (m, out, n))
{
    if (!m || !out || n != PA_NR_KTHREAD_INFO)
        return PA_EINVAL;
    const struct pa_kswapd *k = &m->kt.kswapd;
    uint64_t words[PA_NR_KTHREAD_INFO] = {
        k->clock, k->nap_until, k->nr[0], k->nr[1], k->nr[2], k->nr[3], k->round_reclaimed,
        k->run_reclaimed, k->priority, k->in_round, m->kt.psi_some[0], m->kt.psi_some[1],
        m->kt.psi_some[2], m->kt.psi_some[3], m->kt.psi_some[4], m->kt.psi_some[5], m->kt.psi_some_until,
    };
    for (int i = 0; i < PA_NR_KTHREAD_INFO; i++)
        out[i] = words[i];
    return PA_OK;
}

/* The caller sleeps for us microseconds (a program waiting, a test letting
 * time pass): the clock moves on and the kernel threads work meanwhile. */
PA_ENTRY(int, pa_idle, (pa_machine *m, int64_t us), (m, us))
{
    if (!m || us < 0 || (uint64_t)us > PA_MAX_IDLE_US)
        return PA_EINVAL;
    m->ticks += (uint64_t)us;
    pa_call_done(m);
    return PA_OK;
}
