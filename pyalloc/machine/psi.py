"""Pressure stall information for memory (kernel/sched/psi.c), on the simulated clock.

Stall time is cut into 2-second periods; when a period closes, its share of
stalled time (in percent, FIXED_1 = 2048 fixed point) is folded into three
exponentially decaying averages with the kernel's factors EXP_10s, EXP_60s and
EXP_300s, and periods with no activity decay them with ``fixed_power_int``, as
``calc_avgs()`` does.  The state is six numbers in the reclaim counters (see
:mod:`pyalloc._abi`); the model calls :func:`account` when a task stalls,
the C core does the same in csrc/reclaim.c, and /proc/pressure/memory folds a
copy up to the current time.  pyalloc runs one task, so ``full`` equals ``some``.
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


def fold(ctr: list, now: int) -> None:
    """Close every whole period before ``now`` (microseconds)."""
    cur = now // PSI_PERIOD_US
    if cur <= ctr[_PERIOD]:
        return
    pct = wrap64(wrap64(ctr[_STALL] * 100) // PSI_PERIOD_US * FIXED_1)
    missed = cur - ctr[_PERIOD] - 1
    for i in range(3):
        avg = calc_load(ctr[_AVG + i], EXP[i], pct)
        if missed:
            avg = calc_load(avg, fixed_power_int(EXP[i], FSHIFT, missed), 0)
        ctr[_AVG + i] = avg
    ctr[_PERIOD] = cur
    ctr[_STALL] = 0


def account(ctr: list, start: int, end: int) -> None:
    """The task stalled on memory from ``start`` to ``end`` (microseconds)."""
    while start < end:
        fold(ctr, start)
        period_end = wrap64((ctr[_PERIOD] + 1) * PSI_PERIOD_US)
        chunk = wrap64(min(end, period_end) - start)
        ctr[_STALL] = wrap64(ctr[_STALL] + chunk)
        ctr[_TOTAL] = wrap64(ctr[_TOTAL] + chunk)
        start = wrap64(start + chunk)


def render(ctr, now: int) -> str:
    """/proc/pressure/memory at time ``now`` (psi_show(): some, then full)."""
    state = list(ctr)
    fold(state, now)
    avgs = []
    for i in range(3):
        a = state[_AVG + i]
        avgs.append("%d.%02d" % (a >> FSHIFT, ((a & (FIXED_1 - 1)) * 100) >> FSHIFT))
    total = state[_TOTAL]
    line = "avg10=%s avg60=%s avg300=%s total=%d\n" % (avgs[0], avgs[1], avgs[2], total)
    return "some " + line + "full " + line
