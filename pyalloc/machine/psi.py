"""Pressure stall information for memory (kernel/sched/psi.c), on the simulated clock.

Stall time is cut into 2-second periods; when a period closes, its share of
stalled time (in percent, FIXED_1 = 2048 fixed point) is folded into three
exponentially decaying averages with the kernel's factors EXP_10s, EXP_60s and
EXP_300s, and periods with no activity decay them with ``fixed_power_int``, as
``calc_avgs()`` does.  The state is six numbers in the reclaim counters (see
:mod:`pyalloc._abi`); the model calls :func:`account` when a task stalls,
the C core does the same in csrc/reclaim.c, and /proc/pressure/memory folds a
copy up to the current time.  The counters' block is ``full`` (the calling task
stalled: every running task is); ``some`` adds kswapd's time in balance_pgdat(),
which stalls nobody else (kernel/sched/psi.c test_state()), and is kept by the
kernel threads (pyalloc/model/kthread.py) in a block of the same six words.
"""

from __future__ import annotations

from .._abi import CTR, PSI_PERIOD_US

FSHIFT = 11
FIXED_1 = 1 << FSHIFT
EXP = (1677, 1981, 2034)        # EXP_10s, EXP_60s, EXP_300s

_TOTAL, _PERIOD, _STALL = CTR["psi_total_us"], CTR["psi_period"], CTR["psi_period_stall_us"]
_AVG = CTR["psi_avg10"]


U64 = (1 << 64) - 1


def wrap64(x: int) -> int:
    """x as a C uint64_t holds it.  The one home of the model's u64 wrap-around:
    the core's PSI arithmetic overflows for counters a snapshot may legally hold
    (below 2**62: stall time times 100, an average times its decay factor), and
    the model must get the same numbers."""
    return x & U64


def calc_load(load: int, exp: int, active: int) -> int:
    newload = wrap64(load * exp + active * (FIXED_1 - exp))
    if active >= load:
        newload = wrap64(newload + FIXED_1 - 1)
    return newload // FIXED_1


def fixed_power_int(x: int, frac_bits: int, n: int) -> int:
    result = 1 << frac_bits
    while n:
        if n & 1:
            result = wrap64(result * x + (1 << (frac_bits - 1))) >> frac_bits
        n >>= 1
        if not n:
            break
        x = wrap64(x * x + (1 << (frac_bits - 1))) >> frac_bits
    return result


def fold(ctr: list, now: int, base: int = _TOTAL) -> None:
    """Close every whole period before ``now`` (microseconds) of the six-word state at ``base``."""
    period, stall, avg0 = base + _PERIOD - _TOTAL, base + _STALL - _TOTAL, base + _AVG - _TOTAL
    cur = now // PSI_PERIOD_US
    if cur <= ctr[period]:
        return
    pct = wrap64(wrap64(ctr[stall] * 100) // PSI_PERIOD_US * FIXED_1)
    missed = cur - ctr[period] - 1
    for i in range(3):
        avg = calc_load(ctr[avg0 + i], EXP[i], pct)
        if missed:
            avg = calc_load(avg, fixed_power_int(EXP[i], FSHIFT, missed), 0)
        ctr[avg0 + i] = avg
    ctr[period] = cur
    ctr[stall] = 0


def account(ctr: list, start: int, end: int, base: int = _TOTAL) -> None:
    """Stalled on memory from ``start`` to ``end`` (microseconds): the six-word state at ``base``."""
    period, stall = base + _PERIOD - _TOTAL, base + _STALL - _TOTAL
    while start < end:
        fold(ctr, start, base)
        period_end = wrap64((ctr[period] + 1) * PSI_PERIOD_US)
        chunk = wrap64(min(end, period_end) - start)
        ctr[stall] = wrap64(ctr[stall] + chunk)
        ctr[base] = wrap64(ctr[base] + chunk)
        start = wrap64(start + chunk)


def _line(state: list, now: int) -> str:
    fold(state, now, 0)
    avgs = []
    for i in range(3):
        a = state[_AVG - _TOTAL + i]
        avgs.append("%d.%02d" % (a >> FSHIFT, ((a & (FIXED_1 - 1)) * 100) >> FSHIFT))
    return "avg10=%s avg60=%s avg300=%s total=%d\n" % (avgs[0], avgs[1], avgs[2], state[0])


def render(ctr, now: int, some=None) -> str:
    """/proc/pressure/memory at time ``now`` (psi_show(): some, then full); ``some`` is the
    kernel threads' six-word state (None: the same as full)."""
    full = list(ctr[_TOTAL:_TOTAL + 6])
    return "some " + _line(list(some) if some is not None else list(full), now) + "full " + _line(full, now)
