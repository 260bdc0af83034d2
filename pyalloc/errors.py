"""Exceptions, and the one table that turns a core status code into one.

Both backends answer with the same integer status codes (defined once, in
``pyalloc/_abi.py``, from which the C core's enum is generated; a test compares
every value with the compiled core).  The shared layer calls :func:`raise_for`
with the code and a message it built from the call's own arguments, so the
exception type *and* text are identical on both backends.
"""

from __future__ import annotations

# Status codes: defined once, in pyalloc/_abi.py (the C core's enum pa_status is generated from it)
from ._abi import (  # noqa: F401  (errors.X is how the package names them)
    OK, E2BIG, ENOMEM, EFAULT, EBUSY, EINVAL, EDOUBLEFREE, EINVALFREE, ECORRUPT, EOOM, ECLOSED, STATUS_NAMES,
)


class PyallocError(Exception):
    """Base of every pyalloc error; never raised directly.

    Beside the message, an error carries what it is about, where that applies
    (None otherwise): ``addr`` the address or pfn concerned, ``cache`` the
    kmem_cache (a :class:`pyalloc.Cache`), ``reason`` a short phrase naming
    the finding ("double free", "Left Redzone overwritten", ...).
    """

    addr = None
    cache = None
    reason = None

    def __init__(self, *args, addr=None, cache=None, reason=None) -> None:
        super().__init__(*args)
        self.addr, self.cache, self.reason = addr, cache, reason


class KernelBug(PyallocError):
    """The simulated kernel code did something a real kernel reports as a bug.

    Raising one also writes the kernel-style report to ``Machine.dmesg()``.
    """


class OutOfMemory(PyallocError, MemoryError):
    """A __GFP_NOFAIL request that nothing can satisfy (the kernel would loop forever)."""


class GFPError(PyallocError, ValueError):
    """A GFP mask the kernel cannot interpret."""


class InvalidArgument(PyallocError, ValueError):
    """A bad size, order, alignment, pfn range, cache or name."""


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
}


def raise_for(status: int, message: str, **about) -> None:
    """Raise the exception that *status* stands for, with *message* (and addr=, cache=, reason=)."""
    cls = EXCEPTIONS.get(status)
    if cls is None:
        raise PyallocError(f"unexpected status {status} ({STATUS_NAMES.get(status, '?')}): {message}", **about)
    raise cls(message, **about)
