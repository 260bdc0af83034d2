"""The kmem tracepoint records of the model (csrc/trace.c records the same).

Each hook appends one record; :func:`pyalloc.machine.trace.format_records` turns
records into the ftrace text when the buffer is drained, as trace.c's
pa_trace_take() does for the C core.
"""

from __future__ import annotations

from .arena import NIL
from .._abi import (
    PAGE_OFFSET, TRACE_KFREE, TRACE_KMALLOC, TRACE_KMEM_CACHE_ALLOC, TRACE_KMEM_CACHE_FREE,
    TRACE_MM_PAGE_ALLOC, TRACE_MM_PAGE_FREE, TRACE_NIL as C_NIL,
)

ACCOUNTED = 0x80000000
MASK64 = (1 << 64) - 1


class TraceBuffer:
    """Records (type, cpu, gfp, ticks, ptr, a, b, caller, extra), as struct trace_rec."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: list[tuple] = []

    def event(self, arena, kind: int, ptr: int, a: int, b: int, gfp: int, caller: int, extra: int) -> None:
        self.records.append((kind, arena.cpu, gfp & 0xffffffff, arena.ticks, ptr & MASK64, a, b,
                             caller & 0xffffffff, extra))

    def kmalloc(self, arena, caller, r, req, alloc, gfp) -> None:
        self.event(arena, TRACE_KMALLOC, PAGE_OFFSET + r if r >= 0 else 0, req, alloc, gfp, caller, 0)

    def kmem_cache_alloc(self, arena, caller, r, cid, req, alloc, gfp, accounted) -> None:
        self.event(arena, TRACE_KMEM_CACHE_ALLOC, PAGE_OFFSET + r if r >= 0 else 0, req, alloc, gfp, caller,
                   cid | (ACCOUNTED if accounted else 0))

    def kfree(self, arena, caller, phys) -> None:
        self.event(arena, TRACE_KFREE, PAGE_OFFSET + phys, 0, 0, 0, caller, 0)

    def kmem_cache_free(self, arena, caller, phys, cid) -> None:
        self.event(arena, TRACE_KMEM_CACHE_FREE, PAGE_OFFSET + phys, 0, 0, 0, caller, cid)

    def mm_page_alloc(self, arena, pfn, order, gfp, mt) -> None:
        # a failed allocation is the C core's PA_NIL in the record, whatever the model's NIL is
        self.event(arena, TRACE_MM_PAGE_ALLOC, C_NIL if pfn == NIL else pfn, order, mt, gfp, 0, 0)

    def mm_page_free(self, arena, pfn, order) -> None:
        self.event(arena, TRACE_MM_PAGE_FREE, pfn, order, 0, 0, 0, 0)


__all__ = ["TraceBuffer", "NIL"]
