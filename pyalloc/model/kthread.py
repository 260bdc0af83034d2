"""Kernel threads on the simulated clock: the model's twin of csrc/kthread.c.

Read the essay at the top of csrc/kthread.c: the caller's clock is ``a.ticks``;
each kernel thread keeps its own position on it and, whenever the caller's clock
has moved past it, does the work that fits in the time that passed (kswapd: one
SWAP_CLUSTER_MAX batch of balance_pgdat() at a time, possibly overrunning the
caller by one batch).  :func:`kthreads_catch_up` is called between the page
allocations of every call (buddy.alloc) and at the end of every public call
(reclaim.call_end).  A new thread adds its state to :class:`KThreads`, the
snapshot's kthreads section and one line to :func:`kthreads_catch_up`.
"""

from __future__ import annotations

from ..machine import psi
from .._abi import CTR, EINVAL, MAX_IDLE_US, OK, NR_KTHREAD_INFO
from . import compaction, page_writeback

_SOME = 0       # KThreads.words: PSI "some" at this index, six words


class KThreads:
    """kswapd's place on the clock and in balance_pgdat() (struct pa_kswapd), PSI "some"."""

    __slots__ = ("clock", "nap_until", "nr", "round_reclaimed", "run_reclaimed", "priority", "in_round",
                 "psi_some", "psi_some_until")

    def __init__(self) -> None:
        self.clock = self.nap_until = 0
        self.nr = [0, 0, 0, 0]
        self.round_reclaimed = self.run_reclaimed = self.priority = self.in_round = 0
        self.psi_some = [0] * 6
        self.psi_some_until = 0

    def words(self) -> list:
        """The state in the order of _abi.KTHREAD_INFO."""
        return ([self.clock, self.nap_until, *self.nr, self.round_reclaimed, self.run_reclaimed, self.priority,
                 self.in_round, *self.psi_some, self.psi_some_until])

    def set_words(self, w: list) -> None:
        assert len(w) == NR_KTHREAD_INFO
        self.clock, self.nap_until = w[0], w[1]
        self.nr = list(w[2:6])
        self.round_reclaimed, self.run_reclaimed, self.priority, self.in_round = w[6:10]
        self.psi_some = list(w[10:16])
        self.psi_some_until = w[16]


def init(a) -> None:
    a.kt = KThreads()


def psi_memstall_some(a, start: int, end: int) -> None:
    """PSI "some" from start to end, overlaps counted once (csrc/kthread.c psi_memstall_some())."""
    kt = a.kt
    start = max(start, kt.psi_some_until)
    if start >= end:
        return
    psi.account(kt.psi_some, start, end, _SOME)
    kt.psi_some_until = end


def kswapd_catch_up(a) -> None:
    """kswapd(): balance_pgdat() batches while the caller's clock is ahead; the HZ/10 nap.
    Its reclaim time is PSI "some", not "full" (kernel/sched/psi.c test_state())."""
    from . import reclaim
    kt = a.kt
    while a.kswapd_wanted:
        if kt.nap_until:
            if kt.nap_until > a.ticks:
                return
            kt.clock = max(kt.clock, kt.nap_until)
            reclaim.kswapd_nap_done(a)
            continue
        if kt.clock >= a.ticks:
            return
        now = a.ticks
        us = reclaim.balance_pgdat_batch(a)
        a.ticks = now           # the frees inside tick the caller's clock: kswapd's time is its own
        psi_memstall_some(a, kt.clock, kt.clock + us)
        kt.clock += us


_NR_DIRTY = CTR["nr_dirty"]


def kthreads_catch_up(a) -> None:
    kswapd_catch_up(a)
    if a.kcompactd_wanted:
        compaction.kcompactd_run(a)


def kthreads_run(a) -> None:
    """The kernel threads take their turn (csrc/internal.h kthreads_run())."""
    if a.kswapd_wanted or a.kcompactd_wanted:
        kthreads_catch_up(a)


def call_done(a) -> None:
    """pa_call_done(): the kernel threads catch up at the end of a call, the flusher too."""
    kthreads_run(a)
    if a.ctr[_NR_DIRTY]:
        page_writeback.flusher_catch_up(a)


def kthread_info(a) -> list:
    return a.kt.words()


def idle(a, us) -> int:
    """pa_idle(): the caller sleeps for us microseconds while the kernel threads work."""
    if type(us) is not int or not 0 <= us <= MAX_IDLE_US:
        return EINVAL
    a.ticks += us
    call_done(a)
    return OK
