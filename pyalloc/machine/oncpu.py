"""The per-call paths that name the simulated CPU: ``cpu=`` (and ``caller=``) on
alloc_pages, free_pages, kmalloc, kfree, kmem_cache_alloc and kmem_cache_free.

In the kernel every call runs on some CPU, and the per-cpu state it uses is
that CPU's (mm/slub.c slab_alloc_node() takes this_cpu_ptr(s->cpu_slab);
set_track_update() records smp_processor_id()).  The hot closures
(buddy.py ``_hot_paths``, slab.py ``_slab_hot_paths``) hand the CPU to the
core with the call (``hot_*_on``, csrc/oncpu.c <-> model/oncpu.py), which
runs the operation as that CPU under one lock.  Only a failure comes here,
and is reported as ``with m.on_cpu(cpu): ...`` would report it: as that CPU.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Optional

from .. import errors
from .._abi import PAGE_OFFSET
from .state import MachineState


class OnCpuAPI(MachineState):
    """The failure paths of the per-call entries that took ``cpu=`` (mixed into Machine)."""

    @contextmanager
    def _on_cpu_failure(self, r: int, cpu: Optional[int]) -> Iterator[None]:
        # the core refuses a bad cpu with EINVAL before it changes anything
        self._live()
        if r == errors.EINVAL and cpu is not None:
            self._check_cpu(cpu)
        with self._as_cpu(cpu):
            yield

    def _kmalloc_on_failed(self, r: int, size, flags: int, cpu: Optional[int], who: int):
        with self._on_cpu_failure(r, cpu):
            if r == errors.EOOM:
                r = self._with_oom(lambda: self._core.hot_kmalloc(self._core.handle, size, flags, who))
                if r >= 0:
                    return r + PAGE_OFFSET
            return self._kmalloc_failed(r, size, flags)

    def _cache_alloc_on_failed(self, r: int, cache, flags: int, cpu: Optional[int], who: int):
        with self._on_cpu_failure(r, cpu):
            if r == errors.EOOM:
                r = self._with_oom(lambda: self._core.hot_kmem_cache_alloc(self._core.handle, cache._id, flags, who))
                if r >= 0:
                    return r + PAGE_OFFSET
            return self._cache_alloc_failed(r, cache, flags)

    def _free_on_failed(self, r: int, addr, cache, cpu: Optional[int]) -> None:
        with self._on_cpu_failure(r, cpu):
            self._free_failed(r, addr, cache)

    def _alloc_pages_on_failed(self, r: int, flags: int, order, cpu: int):
        with self._on_cpu_failure(r, cpu):
            return self._alloc_failed_slow(r, flags, order)

    def _free_pages_on_failed(self, r: int, pfn, order, cpu: int) -> None:
        with self._on_cpu_failure(r, cpu):
            self._free_failed_slow(r, pfn, order)

    def _alloc_pages_on_slow(self, flags: int, order, cpu):
        """alloc_pages(cpu=) the core cannot take as it is (__GFP_NOFAIL, a cpu or order that is not a plain int)."""
        self._live()
        self._check_cpu(cpu)
        with self._as_cpu(cpu):
            return self.__dict__["alloc_pages"](flags, order)

    def _free_pages_on_slow(self, pfn, order, cpu) -> None:
        self._live()
        self._check_cpu(cpu)
        with self._as_cpu(cpu):
            self.__dict__["free_pages"](pfn, order)
