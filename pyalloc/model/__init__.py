"""The pure-Python reference model: the same algorithms as the C core, file for file.

:class:`ModelCore` offers exactly the attributes of :class:`pyalloc._cbackend.CCore`.
"""

from __future__ import annotations

from . import buddy
from .arena import Arena, c_int as _as_c_int
from .status import EINVAL, MAX_PAGES, MIN_PAGES



class ModelCore:
    name = "model"

    def __init__(self, nr_pages: int, cpus: int, min_free_kbytes: int) -> None:
        if not (MIN_PAGES <= nr_pages <= MAX_PAGES and 1 <= cpus <= 4096 and -1 <= min_free_kbytes <= 1 << 40):
            from ..errors import raise_for
            raise_for(EINVAL, f"bad machine parameters: pages={nr_pages} cpus={cpus}")
        self._a = a = Arena(nr_pages, cpus, min_free_kbytes)
        buddy.free_boot_tail(a)
        self.handle = a
        self.hot_alloc_pages = buddy.alloc_pages
        self.hot_free_pages = buddy.free_pages

    def alloc_pages_wide(self, gfp: int, order: int) -> int:
        return buddy.alloc_pages(self._a, _as_c_int(gfp), _as_c_int(order))

    def free_pages_wide(self, pfn: int, order: int) -> int:
        return buddy.free_pages(self._a, _as_c_int(pfn), _as_c_int(order))

    def page_state(self, pfn: int):
        return buddy.page_state(self._a, pfn)

    def read(self, phys: int, n: int):
        if not isinstance(n, int) or n < 0:
            return EINVAL
        return self._a.read(phys, n)

    def write(self, phys: int, data) -> int:
        return self._a.write(phys, data)

    def memset(self, phys: int, byte: int, n: int) -> int:
        return self._a.memset(phys, byte, n)

    def zone_info(self, zid: int):
        """The zone itself: its fields carry the names of struct pa_zone_info."""
        return self._a.zones[zid]

    def vm_info(self) -> dict:
        a = self._a
        return {"nr_pages": a.nr_pages, "min_free_kbytes": a.min_free_kbytes, "pgfree": a.pgfree,
                "ticks": a.ticks, "slowpath_entries": a.slowpath_entries}

    def check(self):
        return buddy.check(self._a)

    def close(self) -> None:
        self._a = self.handle = None
