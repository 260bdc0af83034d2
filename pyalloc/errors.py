"""Exceptions, and the one table that turns a core status code into one.

Both backends answer with the same integer status codes (defined once, in
``pyalloc/_abi.py``, from which the C core's enum is generated; a test compares
every value with the compiled core).  The shared layer calls :func:`raise_for`
with the code and a message it built from the call's own arguments, so the
exception type *and* text are identical on both backends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .machine.slab import Cache

# Status codes: defined once, in pyalloc/_abi.py (the C core's enum pa_status is generated from it)
from ._abi import (  # noqa: F401  (errors.X is how the package names them)
    OK, E2BIG, ENOMEM, EFAULT, EBUSY, EINVAL, EDOUBLEFREE, EINVALFREE, ECORRUPT, EOOM, ECLOSED, ELOOP, STATUS_NAMES,
)


class PyallocError(Exception):
    """Base of every pyalloc error; never raised directly.

    Beside the message, an error carries what it is about, where that applies
    (None otherwise): ``addr`` the address or pfn concerned, ``cache`` the
    kmem_cache (a :class:`pyalloc.Cache`), ``reason`` a short phrase naming
    the finding ("double free", "Left Redzone overwritten", ...).
    """

    addr: Optional[int] = None
    cache: Optional["Cache"] = None
    reason: Optional[str] = None
    # an error a Stream run raises also carries the op's index and the StreamResult so far (stream.py)
    index: int
    result: Any

    def __init__(self, *args: object, addr: Optional[int] = None, cache: Optional["Cache"] = None,
                 reason: Optional[str] = None) -> None:
        super().__init__(*args)
        self.addr, self.cache, self.reason = addr, cache, reason


class KernelBug(PyallocError):
    """The simulated kernel code did something a real kernel reports as a bug.

    Raising one also writes the kernel-style report to ``Machine.dmesg()``.
    """


class OutOfMemory(PyallocError, MemoryError):
    """Memory that cannot be had: a __GFP_NOFAIL request that nothing can satisfy (the
    kernel would loop forever); a read or write of a process's memory or a file whose
    pages do not fit (at once) in the machine's memory; or, at Machine(swap=...), a
    swap device the host cannot back."""


class AllocationWouldLoop(OutOfMemory):
    """A request without __GFP_FS (GFP_NOFS, GFP_NOIO) that only the OOM killer could satisfy.

    6.18's out_of_memory() kills nothing for such a request and returns true ("the OOM killer
    does not compensate for IO-less reclaim"), so __alloc_pages_slowpath() counts that as
    progress and retries for ever: no "page allocation failure" report, no OOM report, no NULL.
    pyalloc cannot loop for ever, and returning None would claim a failure the kernel never
    reports, so the call raises this instead, after the retry rounds it ran (their reclaim,
    compaction and counters stay done).  dmesg gets nothing, as on the real machine.
    """


class GFPError(PyallocError, ValueError):
    """A GFP mask the kernel cannot interpret."""


class InvalidArgument(PyallocError, ValueError):
    """A bad size, order, alignment, pfn range, cache or name."""


class CacheExists(InvalidArgument):
    """kmem_cache_create() of a name whose /sys/kernel/slab directory exists: both caches are
    unmergeable (slub_debug, SLAB_NO_MERGE, or slab_merge=False as slab_nomerge), so 6.18 fails
    the creation with -EEXIST, logs why, and returns NULL."""


class PageFault(PyallocError):
    """Access to an address that is not mapped (or to ZERO_SIZE_PTR, or a guard page)."""


class InvariantBroken(PyallocError, AssertionError):
    """Machine.check() found a broken invariant: a bug in pyalloc itself."""


class MachineClosed(PyallocError, RuntimeError):
    """Any call on a machine after close()."""


class DoubleFree(KernelBug):
    """Free of an allocation that is free right now."""


class InvalidFree(KernelBug):
    """Free of an address that is not the start of a live allocation."""


class SlabCorruption(KernelBug):
    """slub_debug found an overwritten red zone, poison or free pointer."""


class CacheInUse(KernelBug):
    """kmem_cache_destroy of a cache that still has objects."""


class SnapshotError(PyallocError, ValueError):
    """A snapshot that cannot be read (Machine.load, unpickling): not a snapshot, cut short,
    damaged (a checksum or an invariant fails), or written by a newer pyalloc."""


class PyallocWarning(UserWarning):
    """Something the kernel would also only log: an unknown slub_debug option it skipped ..."""


# status code -> exception class.  ENOMEM and E2BIG are not errors: the caller
# turns them into None (NULL), as the kernel does.
EXCEPTIONS = {
    EFAULT: PageFault,
    EBUSY: CacheInUse,
    EINVAL: InvalidArgument,
    EDOUBLEFREE: DoubleFree,
    EINVALFREE: InvalidFree,
    ECORRUPT: SlabCorruption,
    EOOM: OutOfMemory,      # only if a caller forgot to run the OOM killer
    ECLOSED: MachineClosed,
    ELOOP: AllocationWouldLoop,
}


def raise_for(status: int, message: str, **about) -> None:
    """Raise the exception that *status* stands for, with *message* (and addr=, cache=, reason=)."""
    cls = EXCEPTIONS.get(status)
    if cls is None:
        raise PyallocError(f"unexpected status {status} ({STATUS_NAMES.get(status, '?')}): {message}", **about)
    raise cls(message, **about)


# -- show(): any value, printed safely inside an error message ------------------------
#
# Messages name the caller's bad argument, and the argument may be hostile: an
# int of 5000 digits (str() raises ValueError past sys.get_int_max_str_digits()
# and is quadratic below it), an object whose __repr__ raises or never ends, a
# string of a million characters.  Every message builder formats a value it did
# not make with show(), so building the message cannot raise.

LIMIT = 80                  # characters of a repr kept
INT_DIGITS = 40             # an int longer than this is shown by its size


def show(value) -> str:
    """A short, always-computable repr of value."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > INT_DIGITS * 3:        # 3 bits a digit, roughly; hex has no limit
            return f"<int of {value.bit_length()} bits, {'-' if value < 0 else ''}0x{abs(value) & 0xffff:04x} at the low end>"
        return repr(int(value))
    try:
        text = repr(value)
    except Exception:       # noqa: BLE001 - a hostile __repr__
        return f"<{type(value).__name__} object>"
    if not isinstance(text, str):
        return f"<{type(value).__name__} object>"
    return text if len(text) <= LIMIT else text[:LIMIT - 3] + "..."


def show_hex(value: int) -> str:
    """f"{value:#x}" for an address-sized int; show() for a longer one."""
    if isinstance(value, int) and value.bit_length() <= 72:
        return f"{value:#x}"
    return show(value)
