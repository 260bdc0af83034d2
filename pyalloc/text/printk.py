"""The simulated machine's kernel log, and the reports the kernel prints into it.

:class:`KernelLog` is the printk ring buffer behind ``Machine.dmesg()``.
:func:`warn_alloc_text` and :func:`warn_text` build the text of 6.18's
``warn_alloc()`` report and of a ``WARN_ON()`` splat.  Every function here is a
pure function of its arguments: no host time, no host addresses, no hashing that
changes between runs (frame offsets come from ``zlib.crc32`` of the symbol name).
"""

from __future__ import annotations

import zlib
from collections import deque
from typing import Iterable, Sequence

from . import procfs

# CONFIG_LOG_BUF_SHIFT=17: the default log buffer holds 128 KiB.
LOG_BUF_LEN = 1 << 17

KERNEL_RELEASE = "6.18.0-pyalloc"
KERNEL_VERSION = "#1 SMP PREEMPT_DYNAMIC"   # utsname()->version; dump_stack prints up to the first space
PREEMPT_MODEL = "PREEMPT(voluntary)"        # preempt_model_str() of a distro PREEMPT_DYNAMIC kernel
HARDWARE_NAME = "pyalloc simulated machine"

# Frames of the call traces (innermost first).  Which allocation API led to the
# failure is not known to the report, so these are the usual 6.18 paths.
PAGE_ALLOC_FRAMES = (
    "dump_stack_lvl", "warn_alloc", "__alloc_pages_slowpath.constprop.0",
    "__alloc_frozen_pages_noprof", "alloc_pages_mpol", "alloc_pages_noprof",
)
VMALLOC_FRAMES = (
    "dump_stack_lvl", "warn_alloc", "__vmalloc_node_range_noprof",
    "__vmalloc_node_noprof", "vmalloc_noprof",
)
WARN_FRAMES = ("alloc_pages_mpol", "alloc_pages_noprof")


class KernelLog:
    """The printk ring buffer: timestamped lines, the oldest dropped past 128 KiB.

    A line is stored as ``"[%5lu.%06lu] %s"`` of the simulated clock, as dmesg
    shows it.  The size counted against the 128 KiB is the stored text of each
    line plus its newline (the kernel's records also carry a small header; this
    is close enough to keep a similar number of lines).
    """

    def __init__(self, capacity: int = LOG_BUF_LEN) -> None:
        self.capacity = capacity
        self._lines: deque[tuple[str, str]] = deque()     # (level, formatted line)
        self._size = 0

    def emit(self, clock_ns: int, text: str, level: str = "") -> None:
        """Log ``text`` (one or more lines) at simulated time ``clock_ns``."""
        secs, rem = divmod(int(clock_ns), 1_000_000_000)
        stamp = "[%5d.%06d] " % (secs, rem // 1000)
        if text.endswith("\n"):
            text = text[:-1]
        for line in text.split("\n"):
            record = stamp + line
            self._lines.append((level, record))
            self._size += len(record) + 1
        while self._size > self.capacity and self._lines:
            _, dropped = self._lines.popleft()
            self._size -= len(dropped) + 1

    def lines(self) -> list[str]:
        """A copy of the lines still in the buffer, oldest first."""
        return [line for _, line in self._lines]

    def records(self) -> list[tuple[str, str]]:
        """(level, line) pairs, oldest first."""
        return list(self._lines)

    @property
    def size(self) -> int:
        """Bytes of text the buffer holds now (lines and their newlines)."""
        return self._size

    def clear(self) -> None:
        self._lines.clear()
        self._size = 0


def symbol_offset(function: str) -> str:
    """``function+0xOFF/0xSIZE`` as %pS prints it, with a made-up but stable
    offset and size: the same symbol always gets the same numbers."""
    base = function.split("+", 1)[0]
    crc = zlib.crc32(base.encode())
    size = 0x40 + (crc % 0x7c0)
    size = (size + 0xf) & ~0xf
    offset = 0x10 + ((crc >> 12) % (size - 0x10))
    return "%s+0x%x/0x%x" % (base, offset, size)


def cpu_line(cpu: int, pid: int, comm: str, tainted: bool | str = False) -> str:
    """dump_stack_print_info(), 6.18: the preemption model follows the version and
    a space precedes the (empty, no STACKTRACE_BUILD_ID) build id.

    ``tainted`` is False, True (a WARN taint) or the taint column text itself."""
    if isinstance(tainted, str):
        taint = "Tainted: " + tainted
    else:
        taint = "Tainted: G        W          " if tainted else "Not tainted"
    return "CPU: %d UID: 0 PID: %d Comm: %.20s %s %s %s %s " % (
        cpu, pid, comm, taint, KERNEL_RELEASE, KERNEL_VERSION.split(" ", 1)[0], PREEMPT_MODEL)


def dump_stack_lines(cpu: int, pid: int, comm: str, frames: Iterable[str],
                      tainted: bool | str = False) -> list[str]:
    lines = [cpu_line(cpu, pid, comm, tainted)]
    if tainted:
        lines.append("Tainted: [W]=WARN")
    lines.append("Hardware name: " + HARDWARE_NAME)
    lines.append("Call Trace:")
    lines.append(" <TASK>")
    lines.extend(" " + symbol_offset(f) for f in frames)
    lines.append(" </TASK>")
    return lines


def warn_alloc_text(comm: str, pid: int, cpu: int, what: str, gfp_mask: int, gfp_text: str,
                    snap: dict, frames: Sequence[str] | None = None, tainted: bool = False) -> str:
    """The report of mm/page_alloc.c warn_alloc(), newline-terminated lines.

    ``what`` is the message, e.g. ``"page allocation failure: order:5"`` or
    ``"vmalloc error: size 4096, failed to allocate pages"``; ``gfp_text`` is what
    ``%pGg`` prints for ``gfp_mask`` (empty for 0).  The nodemask is NULL and the
    task sits in the root cpuset of node 0.  Then a stack dump and show_mem(),
    limited to the zones gfp_zone(gfp_mask) allows, as the kernel does.
    """
    if frames is None:
        frames = VMALLOC_FRAMES if what.startswith("vmalloc") else PAGE_ALLOC_FRAMES
    lines = ["%s: %s, mode:%#x(%s), nodemask=(null),cpuset=/,mems_allowed=0"
             % (comm, what, gfp_mask, gfp_text)]
    lines += dump_stack_lines(cpu, pid, comm, frames, tainted)
    lines += procfs.show_mem(snap, procfs.gfp_zone(gfp_mask))
    return "\n".join(lines) + "\n"


def warn_text(cpu: int, pid: int, comm: str, location: str, function: str,
              frames: Sequence[str] = WARN_FRAMES, tainted: bool = False) -> str:
    """A WARN_ON() splat as __warn() prints it after report_bug() trapped it.

    ``location`` is ``"file:line"``, ``function`` the function that warned.  The
    register dump and the ``Code:`` bytes that follow the RIP line on a real
    machine are left out (pyalloc has no registers); the RIP line stays.
    ``frames`` are the callers of ``function``, innermost first.  ``tainted``
    reports an earlier warning (TAINT_WARN), which a real kernel sets after the
    first one.
    """
    fn = symbol_offset(function)
    lines = ["------------[ cut here ]------------",
             "WARNING: CPU: %d PID: %d at %s %s" % (cpu, pid, location, fn),
             "Modules linked in:"]
    head = dump_stack_lines(cpu, pid, comm, frames, tainted)
    call_trace = head.index("Call Trace:")
    lines += head[:call_trace]
    lines.append("RIP: 0010:" + fn)
    lines += head[call_trace:]
    lines.append("---[ end trace 0000000000000000 ]---")
    return "\n".join(lines) + "\n"
