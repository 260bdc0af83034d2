"""pyalloc: the Linux 6.18 kernel's memory allocators, simulated in user space.

    >>> import pyalloc
    >>> m = pyalloc.Machine(mem="1G", backend="model")
    >>> pfn = m.alloc_pages("GFP_KERNEL", order=0)

Two interchangeable backends: ``backend="c"`` (the compiled core, default) and
``backend="model"`` (the pure-Python reference).  ``PYALLOC_BACKEND`` sets the
default for a whole run.
"""

from .errors import (
    PyallocError, KernelBug, OutOfMemory, AllocationWouldLoop, GFPError, InvalidArgument, PageFault,
    MachineClosed, DoubleFree, InvalidFree, SlabCorruption, CacheInUse, CacheExists, InvariantBroken, SnapshotError,
    PyallocWarning,
)
from .gfp import GFP
from .machine.slab import SLAB, Cache
from .machine.stream import Stream, StreamResult
from .machine.trace import read_trace
from .tools.sweep import sweep
from .machine.machine import (
    Machine,
    PAGE_SIZE,
    PAGE_SHIFT,
    PAGE_OFFSET,
    VMALLOC_START,
    VMALLOC_END,
    ZERO_SIZE_PTR,
    MAX_PAGE_ORDER,
)

from ._abi import __version__

__all__ = [
    "Machine", "GFP", "SLAB", "Cache", "Stream", "StreamResult", "read_trace", "sweep",
    "PyallocError", "KernelBug", "OutOfMemory", "AllocationWouldLoop", "GFPError", "InvalidArgument", "PageFault",
    "MachineClosed", "DoubleFree", "InvalidFree", "SlabCorruption", "CacheInUse", "CacheExists", "InvariantBroken",
    "SnapshotError", "PyallocWarning",
    "PAGE_SIZE", "PAGE_SHIFT", "PAGE_OFFSET", "VMALLOC_START", "VMALLOC_END", "ZERO_SIZE_PTR",
    "MAX_PAGE_ORDER",
]
