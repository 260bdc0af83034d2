"""lib/ratelimit.c on the simulated clock: the limit warn_alloc() puts on its reports.

mm/page_alloc.c warn_alloc() returns early unless ``__ratelimit(&nopage_rs)``
lets it print, with ``DEFINE_RATELIMIT_STATE(nopage_rs, 10*HZ, 1)``: one
report per 10 seconds.  6.18's ___ratelimit() (the rs_n_left version):

- the first call starts the window (``begin = jiffies``, burst calls left);
- a call once ``jiffies`` is past ``begin + interval`` (time_is_before_jiffies)
  starts a new window and, when calls were suppressed in the old one, prints
  ``"%s: %d callbacks suppressed"`` with ``__func__`` of the caller
  (``warn_alloc``) before the caller's own report;
- a call with none of the burst left is suppressed and counted (missed).

The clock is the machine's simulated one (microseconds), read in jiffies of
CONFIG_HZ=250 (the Kconfig default; the captured config does not say), so a
window is exactly what 6.18 would see.  __GFP_NOWARN requests never reach the
limiter, as warn_alloc() tests that flag first.
"""

from __future__ import annotations

from typing import Any, Optional

HZ = 250
NOPAGE_INTERVAL = 10 * HZ       # DEFINE_RATELIMIT_STATE(nopage_rs, 10*HZ, 1)
NOPAGE_BURST = 1
US_PER_SEC = 1_000_000


def jiffies(clock_us: int) -> int:
    """The simulated clock in jiffies."""
    return clock_us * HZ // US_PER_SEC


class RatelimitState:
    """struct ratelimit_state: begin (jiffies) is None until the first call
    (RATELIMIT_INITIALIZED clear), n_left (rs_n_left) and missed."""

    def __init__(self, interval: int = NOPAGE_INTERVAL, burst: int = NOPAGE_BURST) -> None:
        self.interval = interval
        self.burst = burst
        self.begin: Optional[int] = None
        self.n_left = burst
        self.missed = 0

    def ratelimit(self, now: int) -> tuple[bool, int]:
        """___ratelimit() at jiffies *now*: (go ahead, callbacks suppressed to
        report first, 0 for none)."""
        suppressed = 0
        if self.begin is None:
            self.begin, self.n_left = now, self.burst
        if now > self.begin + self.interval:
            self.begin, self.n_left = now, self.burst
            suppressed, self.missed = self.missed, 0
        if self.n_left > 0:
            self.n_left -= 1
            return True, suppressed
        self.missed += 1
        return False, suppressed

    # -- the PYST section of a snapshot (machine/snapshot_state.py) ----------------------

    def dump(self) -> list:
        return [self.begin, self.n_left, self.missed]

    @classmethod
    def load(cls, row: Any) -> "RatelimitState":
        """Rebuild from :meth:`dump`'s row; ValueError names what is wrong."""
        if type(row) is not list or len(row) != 3:
            raise ValueError("nopage_rs must be [begin or null, n_left, missed]")
        begin, n_left, missed = row
        rs = cls()
        if begin is not None and (type(begin) is not int or not 0 <= begin < 1 << 62):
            raise ValueError("nopage_rs begin must be null or an int of jiffies")
        if type(n_left) is not int or not 0 <= n_left <= rs.burst:
            raise ValueError(f"nopage_rs n_left must be an int from 0 to {rs.burst}")
        if type(missed) is not int or not 0 <= missed < 1 << 31:
            raise ValueError("nopage_rs missed must be an int from 0 to 2**31-1")
        rs.begin, rs.n_left, rs.missed = begin, n_left, missed
        return rs
