"""The Machine and its parts: machine.py is the face (it alone chooses the backend); state.py
declares the state the parts share; each part (buddy, slab, vmalloc, reclaim, oom, stream, trace,
snapshot, views) is one module."""

from .machine import (  # noqa: F401  (the public face)
    Machine, PAGE_SIZE, PAGE_SHIFT, PAGE_OFFSET, VMALLOC_START, VMALLOC_END, ZERO_SIZE_PTR, MAX_PAGE_ORDER,
)
