"""pyalloc.Machine: one simulated machine, the public API over either backend.

The per-call path is kept short: a cached GFP lookup, one call into the core
(a bound cffi function for the C core), a sign test.  Everything that only
happens on failure -- error messages, kernel reports, warnings -- lives in the
``_slow`` helpers below, shared by both backends, so the two cannot differ in
what they say.
"""

from __future__ import annotations

import os
import re

from collections.abc import Mapping

from .. import errors, gfp as gfpmod
from ..kconfig import names as kconfig_names, parse as kconfig_parse
from ..text import procfs
from ..errors import InvalidArgument, MachineClosed, OutOfMemory, PageFault, DoubleFree, InvalidFree
from ..text.printk import KERNEL_RELEASE, KernelLog, warn_alloc_text, warn_text
from ..text import bad_page as reports
from .slab import SlabAPI
from ..errors import show, show_hex
from ..threads import new_lock, serialize
from .vmalloc_owner import check_areas
from .stream import StreamAPI
from .trace import TraceAPI
from .vmalloc import VmallocAPI, is_vmalloc_addr
from .reclaim import ReclaimAPI
from .memory import MemoryAPI
from .sysctl import SysctlAPI
from .views import ViewsAPI
from .buddy import GfpLike, HotPathAPI, _hot_paths
from .snapshot import SnapshotAPI
from .oncpu import OnCpuAPI
from .ratelimit import RatelimitState, jiffies
from .accounting import process_totals
from .core_view import CoreView
from .state import Core
from .._abi import (  # noqa: F401  (the layout names are Machine's module attributes)
    DIRECT_MAP_SIZE, MAX_PAGE_ORDER, MAX_SEED, PAGE_OFFSET, PAGE_SHIFT, PAGE_SIZE, VMALLOC_END, VMALLOC_SIZE,
    VMALLOC_START, ZERO_SIZE_PTR,
    PAGE_STATE_ALLOCATED as _ALLOCATED, PAGE_STATE_INTERIOR as _INTERIOR, PAGE_STATE_FREE as _FREE,
    PAGE_STATE_OUT_OF_RANGE as _OUT_OF_RANGE, PG_BUDDY as _PG_BUDDY, PG_HEAD as _PG_HEAD,
)

_NOWARN = gfpmod.GFP_NOWARN
_NOFAIL = gfpmod.GFP_NOFAIL
_DIRECT_RECLAIM = gfpmod.GFP_DIRECT_RECLAIM
_parse_gfp = gfpmod.parse

COMM = "pyalloc"        # the simulated current task
PID = 1
NS_PER_TICK = 1000      # the simulated clock: one microsecond per core operation

_SIZE_RE = re.compile(r"\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*\Z", re.IGNORECASE)
_SIZE_SHIFT = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}


def parse_size(value, what: str = "mem") -> int:
    """Bytes from an int or a string such as "512M", "4G", "1GiB"."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidArgument(f"{what}: expected bytes as an int or a string like '1G', got {show(value)}")
    if isinstance(value, int):
        return value
    m = _SIZE_RE.match(value)
    if not m:
        raise InvalidArgument(f"{what}: cannot read size {show(value)} (use e.g. '512M', '4G')")
    return int(m.group(1)) << _SIZE_SHIFT[m.group(2).lower()]


def _load_core(backend: str) -> type[Core]:
    if backend == "c":
        from .._cbackend import CCore
        return CCore
    if backend == "model":
        from ..model import ModelCore
        return ModelCore
    raise InvalidArgument(f"backend must be 'c' or 'model', not {show(backend)}")


def _closed(*args, **kwargs):
    raise MachineClosed("this Machine has been closed")


class _ClosedCore:
    def __getattr__(self, name):
        raise MachineClosed("this Machine has been closed")


def _zone_dict(z, name: str) -> dict:
    """One zone of the snapshot, from either core's zone record (same field names)."""
    return {
        "name": name, "start_pfn": z.start_pfn, "spanned": z.spanned, "present": z.present,
        "managed": z.managed, "wmark": tuple(z.wmark), "boost": 0,
        "lowmem_reserve": list(z.lowmem_reserve),
        "nr_free_pages": z.nr_free_pages, "nr_free_pages_blocks": z.nr_free_blocks_pages,
        "nr_reserved_highatomic": z.nr_reserved_highatomic,
        "free_area": [list(row) for row in z.nr_free],
        "pageblocks": list(z.pageblocks), "pgalloc": z.pgalloc, "numa_hit": z.numa_hit,
        "nr_lru": tuple(z.nr_lru), "nr_dirty": z.nr_dirty,
        "nr_unevictable": z.nr_unevictable,
    }


def _pageset(info: dict) -> dict:
    """What /proc/zoneinfo and show_mem read of one CPU's per_cpu_pages."""
    return {k: info[k] for k in ("count", "high", "batch", "high_min", "high_max")}


def _bad_free_reason(status, state, horder, order, pflags) -> str:
    """The short phrase an InvalidFree or DoubleFree of pages carries as .reason."""
    if status == errors.EDOUBLEFREE:
        return "double free"
    if state == _OUT_OF_RANGE:
        return "outside memory"
    if state == _ALLOCATED:
        return "wrong order" if horder != order else "wrong free function"
    if state == _INTERIOR:
        return "tail page" if pflags & _PG_HEAD else "inside a block"
    return "never allocated"


class Machine(SlabAPI, VmallocAPI, ReclaimAPI, StreamAPI, TraceAPI, ViewsAPI, HotPathAPI, SnapshotAPI, CoreView,
              OnCpuAPI, MemoryAPI, SysctlAPI):
    """A simulated x86-64 machine running Linux 6.18's allocators.

    ``alloc_pages(gfp, order=0)`` and ``free_pages(pfn, order=0)`` are set per
    instance (see :func:`_hot_paths`); every other operation is a method below.

    >>> import pyalloc
    >>> with pyalloc.Machine(mem="64M", backend="model") as m:
    ...     pfn = m.alloc_pages("GFP_KERNEL", order=2)
    ...     m.free_pages(pfn, order=2)
    """

    def __init__(self, mem="1G", cpus: int = 2, backend: str | None = None,
                 min_free_kbytes: int | None = None, slub_debug: str = "", swap=0,
                 slab_merge: bool = False, trace=None, seed: int = 0,
                 kconfig: Mapping[str, bool] | None = None) -> None:
        self._closed = True
        self._lock = new_lock()     # the shared layer's state (threads.py)
        if backend is None:
            backend = os.environ.get("PYALLOC_BACKEND", "c")
        size = parse_size(mem, "mem")
        if size <= 0 or size % PAGE_SIZE:
            raise InvalidArgument(f"mem must be a positive multiple of {PAGE_SIZE} bytes, not {show(size)}")
        nr_pages = size >> PAGE_SHIFT
        if not 256 <= nr_pages <= 1 << 30:
            raise InvalidArgument(f"mem must be between 1M and 4T, not {show(mem)}")
        if isinstance(cpus, bool) or not isinstance(cpus, int) or not 1 <= cpus <= 4096:
            raise InvalidArgument(f"cpus must be an int from 1 to 4096, not {show(cpus)}")
        if min_free_kbytes is None:
            min_free_kbytes = -1
        elif isinstance(min_free_kbytes, bool) or not isinstance(min_free_kbytes, int) \
                or not 0 <= min_free_kbytes <= 1 << 40:
            raise InvalidArgument(f"min_free_kbytes must be a non-negative int, not {show(min_free_kbytes)}")
        swap_bytes = parse_size(swap, "swap")
        if swap_bytes < 0:
            raise InvalidArgument(f"swap must not be negative, not {show(swap)}")
        if not isinstance(slub_debug, str):
            raise InvalidArgument(f"slub_debug must be a string like 'FZPU', not {show(slub_debug)}")
        kconfig_word = kconfig_parse(kconfig)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise InvalidArgument(f"seed must be an int from 0 to 2**63-1, not {show(seed)}")

        self.backend = backend
        self.mem = size
        self.nr_pages = nr_pages
        self.cpus = cpus
        self.swap = swap_bytes
        self.slub_debug = slub_debug
        self.slab_merge = bool(slab_merge)
        self._core = _load_core(backend)(nr_pages, cpus, min_free_kbytes, seed, kconfig_word)
        # instance closures shadow the documented methods (buddy.py); mypy forbids that by default
        self.alloc_pages, self.free_pages = _hot_paths(self, self._core)  # type: ignore[method-assign]
        self._log = KernelLog()
        self._warned_once: set[str] = set()
        self._nopage_rs = RatelimitState()
        self._comm, self._pid = COMM, PID
        self._slab_tainted = False
        self._closed = False
        self._boot_messages()
        self._reclaim_boot(swap_bytes)
        self._slab_boot(slub_debug, bool(slab_merge))
        self._vmalloc_boot()
        if trace is not None:
            self._trace_open(trace)

    @property
    def seed(self) -> int:
        """The seed every random choice of this machine starts from."""
        return int(self._core.vm_info()["seed"])

    @property
    def kconfig(self) -> dict[str, bool]:
        """The kernel options in force, by their Kconfig names (``Machine(kconfig=...)``)."""
        return kconfig_names(self._core.vm_info()["kconfig"])

    # -- life cycle ------------------------------------------------------------

    def close(self) -> None:
        """Release the arena.  Every later call raises MachineClosed."""
        if self._closed:
            return
        try:
            self._trace_close()
        finally:
            self._closed = True
        core, self._core = self._core, _ClosedCore()
        # instance closures shadow the documented methods (buddy.py); mypy forbids that by default
        self.alloc_pages = self.free_pages = _closed  # type: ignore[method-assign]
        self.kmalloc = self.kfree = self.kmem_cache_alloc = self.kmem_cache_free = _closed  # type: ignore[method-assign]
        core.close()

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            state = "closed"
        else:
            free = sum(self._core.zone_info(zid).nr_free_pages for zid in range(len(gfpmod.ZONE_NAMES)))
            state = (f"{self.mem >> 20} MiB, {self.cpus} CPUs, {free << PAGE_SHIFT >> 10} kB free, "
                     f"{len(self._cache_order)} slab caches")
        return f"<pyalloc.Machine backend={self.backend!r} {state}>"

    def __copy__(self):
        raise TypeError("a pyalloc.Machine cannot be copied: a copy would share the original's core "
                        "(copy.deepcopy(m) clones it through a snapshot)")

    def __deepcopy__(self, memo):
        from .snapshot import clone
        return clone(self)

    def __reduce_ex__(self, protocol):
        from .snapshot import reduce
        return reduce(self)

    def _live(self) -> None:
        if self._closed:
            raise MachineClosed("this Machine has been closed")

    # -- pages -----------------------------------------------------------------

    def get_free_pages(self, gfp: GfpLike, order: int = 0) -> int | None:
        """__get_free_pages(): the direct-map address of a new block, or None."""
        pfn = self.alloc_pages(_parse_gfp(gfp) & ~gfpmod.GFP_HIGHMEM, order)
        return None if pfn is None else PAGE_OFFSET + (pfn << PAGE_SHIFT)

    def get_zeroed_page(self, gfp: GfpLike) -> int | None:
        """get_zeroed_page(): one zeroed page's address, or None."""
        return self.get_free_pages(_parse_gfp(gfp) | gfpmod.GFP_ZERO, 0)

    def free_pages_addr(self, addr: int, order: int = 0) -> None:
        """free_pages(): free by address; 0 or None does nothing, as in the kernel."""
        self._live()
        if addr is None or addr == 0:
            return
        phys = self._direct_map_phys(addr, "free_pages")
        if phys & (PAGE_SIZE - 1):
            self._report_bad_free(phys >> PAGE_SHIFT, order, "free_pages",
                                  f"free_pages({show_hex(addr)}): address is not page aligned", None)
        self.free_pages(phys >> PAGE_SHIFT, order)

    # -- address arithmetic ----------------------------------------------------

    def page_address(self, pfn: int) -> int:
        self._live()
        if isinstance(pfn, bool) or not isinstance(pfn, int) or not 0 <= pfn < DIRECT_MAP_SIZE >> PAGE_SHIFT:
            raise InvalidArgument(f"page_address: pfn {show(pfn)} is outside the direct map")
        return PAGE_OFFSET + (pfn << PAGE_SHIFT)

    def virt_to_phys(self, addr: int) -> int:
        self._live()
        return self._direct_map_phys(addr, "virt_to_phys")

    def virt_to_page(self, addr: int) -> int:
        self._live()
        return self._direct_map_phys(addr, "virt_to_page") >> PAGE_SHIFT

    def phys_to_virt(self, phys: int) -> int:
        self._live()
        if isinstance(phys, bool) or not isinstance(phys, int) or not 0 <= phys < DIRECT_MAP_SIZE:
            raise InvalidArgument(f"phys_to_virt: {show(phys)} is not a physical address the direct map covers")
        return PAGE_OFFSET + phys

    def _direct_map_phys(self, addr, what: str) -> int:
        if isinstance(addr, bool) or not isinstance(addr, int):
            raise TypeError(f"{what}: an address must be an int, not {type(addr).__name__}")
        phys = addr - PAGE_OFFSET
        if not 0 <= phys < DIRECT_MAP_SIZE:
            raise InvalidArgument(f"{what}: {show_hex(addr)} is not a direct-map address")
        return phys

    # -- memory access ---------------------------------------------------------

    def read(self, addr: int, n: int) -> bytes:
        """Read n bytes at a kernel virtual address (direct map or vmalloc range)."""
        chunks = self._access_chunks(addr, n, False)
        if len(chunks) == 1:
            r = self._core.read(chunks[0][0], n)
            if type(r) is int:
                self._access_failed_slow(r, addr, n, False)
            return r
        out = []
        for phys, length in chunks:
            r = self._core.read(phys, length)
            if type(r) is int:
                self._access_failed_slow(r, addr, n, False)
            out.append(r)
        return b"".join(out)

    def write(self, addr: int, data: bytes) -> None:
        """Write bytes at a kernel virtual address (all of it, or nothing on a fault)."""
        try:
            view = memoryview(data).cast("B")
        except TypeError:
            raise TypeError(f"write: data must be bytes-like, not {type(data).__name__}") from None
        chunks = self._access_chunks(addr, view.nbytes, True)
        pos = 0
        for phys, length in chunks:
            r = self._core.write(phys, view[pos:pos + length])
            if r:
                self._access_failed_slow(r, addr, view.nbytes, True)
            pos += length

    def memset(self, addr: int, byte: int, n: int) -> None:
        """Fill n bytes at a kernel virtual address with one byte value."""
        if isinstance(byte, bool) or not isinstance(byte, int) or not 0 <= byte <= 255:
            raise InvalidArgument(f"memset: byte must be an int from 0 to 255, not {show(byte)}")
        for phys, length in self._access_chunks(addr, n, True):
            r = self._core.memset(phys, byte, length)
            if r:
                self._access_failed_slow(r, addr, n, True)

    def _access_chunks(self, addr, n, write: bool):
        """[(phys, length)] covering [addr, addr+n), or a PageFault before anything is touched."""
        self._live()
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"size must be an int, not {type(n).__name__}")
        if n < 0:
            raise InvalidArgument(f"size {show(n)} is negative")
        if addr is None:
            addr = 0
        if isinstance(addr, bool) or not isinstance(addr, int):
            raise TypeError(f"an address must be an int, not {type(addr).__name__}")
        phys = addr - PAGE_OFFSET
        if 0 <= phys < DIRECT_MAP_SIZE:
            limit = self.nr_pages << PAGE_SHIFT
            if phys + n > limit or phys >= limit:
                self._fault(max(addr, PAGE_OFFSET + limit) if phys < limit else addr, write,
                            f"{show(n)} bytes at {show_hex(addr)} run past the end of memory")
            return [(phys, n)]
        if is_vmalloc_addr(addr) and n <= 1 << 40:
            return self._vmalloc_chunks(addr, n, write) or [(0, 0)]
        if 0 <= addr <= ZERO_SIZE_PTR:
            self._fault(addr, write, "NULL or ZERO_SIZE_PTR dereference")
        self._fault(addr, write, f"{show_hex(addr)} is not mapped")

    def _access_failed_slow(self, r: int, addr, n, write: bool):
        if r == errors.EFAULT:
            self._fault(addr, write, f"{show(n)} bytes at {show_hex(addr)} are not mapped")
        errors.raise_for(r, f"{'write' if write else 'read'} of {show(n)} bytes at {show_hex(addr)}")

    def _fault(self, addr: int, write: bool, why: str):
        addr &= (1 << 64) - 1
        self._log.emit(self._clock_ns(), reports.page_fault_text(COMM, PID, 0, addr, write, why))
        raise PageFault(f"page fault at {show_hex(addr)} ({'write' if write else 'read'}): {why}", addr=addr, reason=why)

    # -- views -----------------------------------------------------------------

    def snapshot(self) -> dict:
        """Every counter the /proc views print, as one dict (identical on both backends)."""
        core = self._core
        vm = core.vm_info()
        reclaim = self._reclaim_snapshot()
        pgtables, committed = process_totals(self)
        zones = []
        for zid, name in enumerate(gfpmod.ZONE_NAMES):
            zone = _zone_dict(core.zone_info(zid), name)
            if zone["managed"]:
                zone["pagesets"] = [_pageset(core.pcp_info(zid, cpu)) for cpu in range(self.cpus)]
            zones.append(zone)
        return {
            "nr_cpus": self.cpus,
            "total_pages": vm["nr_pages"],
            "min_free_kbytes": vm["min_free_kbytes"],
            "zones": zones,
            "slab_caches": self.slab_snapshot(),
            "vmalloc": self.vmalloc_snapshot(),
            "reclaim": reclaim,
            "sysctl": self.sysctls(),
            "vm": {
                "pgfree": vm["pgfree"],
                "nr_slab_reclaimable": vm["nr_slab_reclaimable"],
                "nr_slab_unreclaimable": vm["nr_slab_unreclaimable"],
                "nr_page_table_pages": vm["nr_page_table_pages"] + pgtables, "nr_kernel_stack_kb": 0,
                "committed_as_pages": committed,
                "vmalloc_pages": vm["vmalloc_pages"],
                "swap_total_pages": reclaim["nr_swap_pages"],
                "swap_free_pages": reclaim["nr_swap_free"],
                "clock_ns": vm["ticks"] * NS_PER_TICK,
            },
        }

    def proc(self, name: str) -> str:
        """The text of /proc/<name>, in the kernel's exact format."""
        self._live()
        if not isinstance(name, str):
            raise InvalidArgument(f"proc: name must be a string, not {show(name)}")
        return procfs.render(name, self.snapshot())

    def dmesg(self) -> list[str]:
        """The kernel log lines this machine has printed."""
        self._live()
        return self._log.lines()

    def check(self) -> None:
        """Walk every structure; raise InvariantBroken if any invariant is broken."""
        self._live()
        msg = self._core.check()
        if msg == errors.ECORRUPT:
            from .slab import corruption_finding
            events = self._core.take_events()
            finding, reason, obj, cache = corruption_finding(events, self._caches)
            self._report_events(events, "validate_slab_cache", caller=None)
            raise errors.SlabCorruption("check(): slub_debug validation found damaged objects: "
                                        f"{finding} (see dmesg)", addr=obj, cache=cache, reason=reason)
        if msg is not None:
            raise errors.InvariantBroken(f"check(): {msg}")
        msg = check_areas(self)
        if msg is not None:
            raise errors.InvariantBroken(f"check(): {msg}")

    # -- slow paths ----------------------------------------------------------------

    def _clock_ns(self) -> int:
        return self._core.vm_info()["ticks"] * NS_PER_TICK

    def _warn_once(self, key: str, flags: int, location: str, function: str) -> None:
        """WARN_ON_ONCE_GFP: once per machine, and never under __GFP_NOWARN."""
        if flags & _NOWARN or key in self._warned_once:
            return
        self._warned_once.add(key)
        self._log.emit(self._clock_ns(), warn_text(0, PID, COMM, location, function))

    def _warn_alloc(self, flags: int, what: str) -> None:
        if self._oom_panicked:
            self._oom_panicked = False      # the call's dmesg ended with the panic (oom.retry)
            return
        if flags & _NOWARN:
            return
        go, suppressed = self._nopage_rs.ratelimit(jiffies(self._core.vm_info()["ticks"]))
        if suppressed:
            self._log.emit(self._clock_ns(), "warn_alloc: %d callbacks suppressed" % suppressed)
        if not go:
            return
        text = warn_alloc_text(COMM, PID, 0, what, flags, gfpmod.format_pGg(flags), self.snapshot())
        self._log.emit(self._clock_ns(), text)

    def _alloc_failed_slow(self, r: int, flags: int, order):
        if r == errors.EOOM:
            r = self._with_oom(lambda: self._core.alloc_pages_wide(flags, order))
            if r >= 0:
                return r
        if r == errors.ENOMEM:
            if flags & _NOFAIL and not flags & _DIRECT_RECLAIM:
                # the kernel warns that NOFAIL cannot be honoured without reclaim, then fails
                self._warn_once("nofail-noreclaim", flags, "mm/page_alloc.c:4631",
                                "__alloc_pages_slowpath.constprop.0")
            self._warn_alloc(flags, f"page allocation failure: order:{show(order)}")
            return None
        if r == errors.E2BIG:
            self._warn_once("order", flags, "mm/page_alloc.c:5017", "__alloc_pages_noprof")
            return None
        if r == errors.EINVAL:
            if not isinstance(order, int):
                raise TypeError(f"order must be an int, not {type(order).__name__}")
            raise InvalidArgument(f"alloc_pages: order {show(order)} is negative" if order < 0
                                  else f"alloc_pages: bad gfp mask {flags:#x}")
        errors.raise_for(r, f"alloc_pages(order={show(order)})")

    def _alloc_pages_nofail(self, flags: int, order):
        before = self._core.vm_info()["slowpath_entries"] if isinstance(order, int) else 0
        r = self._with_oom(lambda: self._core.alloc_pages_wide(flags, order))
        if isinstance(order, int) and 1 < order <= MAX_PAGE_ORDER \
                and self._core.vm_info()["slowpath_entries"] != before:
            # __alloc_pages_slowpath: NOFAIL is only promised up to order 1
            self._warn_once("nofail-order", 0, "mm/page_alloc.c:4616",
                            "__alloc_pages_slowpath.constprop.0")
        if r >= 0:
            return r
        return self._alloc_nofail_failed(r, flags, order)

    def _alloc_nofail_failed(self, r: int, flags: int, order):
        """A __GFP_NOFAIL alloc_pages() failed (also a stream's, which ran in the core loop)."""
        if r == errors.ENOMEM and flags & _DIRECT_RECLAIM:
            self._log.emit(self._clock_ns(), (
                f"{COMM}: __GFP_NOFAIL allocation of order:{show(order)}, mode:{flags:#x}"
                f"({gfpmod.format_pGg(flags)}) cannot be satisfied: the kernel would retry forever"))
            raise OutOfMemory(f"alloc_pages(order={show(order)}, {gfpmod.format_pGg(flags)}): "
                              "__GFP_NOFAIL request that nothing can satisfy (the kernel would loop forever)")
        return self._alloc_failed_slow(r, flags, order)

    def _free_failed_slow(self, r: int, pfn, order, fn: str = "__free_pages"):
        pfn = int(pfn)
        if r == errors.EINVAL:
            if not isinstance(order, int):
                raise TypeError(f"order must be an int, not {type(order).__name__}")
            raise InvalidArgument(f"{fn}: order {show(order)} is outside 0..{MAX_PAGE_ORDER}")
        if r in (errors.EINVALFREE, errors.EDOUBLEFREE):
            self._report_bad_free(pfn, order, fn, None, r)
        errors.raise_for(r, f"{fn}(pfn={show_hex(pfn)}, order={show(order)})")

    def _report_bad_free(self, pfn: int, order: int, fn: str, message, status) -> None:
        """Describe a refused free in dmesg and raise DoubleFree or InvalidFree."""
        state, head, horder, kind, pflags, refcount = self._core.page_state(pfn)
        zone = 0 if pfn < 1 << 12 else 1 if pfn < 1 << 20 else 2
        flags_text = f"0x{zone << 62:x}(node=0|zone={zone})"
        if pflags & _PG_HEAD:
            flags_text = f"0x{(zone << 62) | 0x40:x}(head|node=0|zone={zone})"
        call = f"{fn}(pfn={show_hex(pfn)}, order={show(order)})"
        frames = [fn]
        if message is None:
            if status == errors.EDOUBLEFREE:
                message = f"{call}: double free: the block at pfn {show_hex(pfn)} was freed and is free now"
            elif state == _OUT_OF_RANGE:
                message = f"{call}: pfn {show_hex(pfn)} is outside memory (0..{self.nr_pages - 1:#x})"
            elif state == _ALLOCATED and horder != order:
                message = f"{call}: wrong order: the block at pfn {show_hex(pfn)} was allocated with order {horder}"
            elif state == _ALLOCATED:
                message = f"{call}: pfn {show_hex(pfn)} was not allocated by alloc_pages (wrong free function)"
            elif state == _INTERIOR:
                what = "a tail page of the compound page" if pflags & _PG_HEAD else "inside the block"
                message = f"{call}: pfn {show_hex(pfn)} is {what} allocated at pfn {head:#x} (order {horder})"
            else:
                message = f"{call}: pfn {show_hex(pfn)} was never allocated (it is free, in the block at pfn {head:#x})"
        if state != _OUT_OF_RANGE:
            clock = self._clock_ns()
            if status == errors.EDOUBLEFREE:
                text = reports.vm_bug_on_page_text(
                    COMM, PID, 0, pfn, flags_text, "f0000000(buddy)" if pflags & _PG_BUDDY else "",
                    "page_ref_count(page) == 0", "include/linux/mm.h:1150", frames)
            else:
                reason = ("nonzero _refcount" if state == _INTERIOR
                          else "PAGE_FLAGS_CHECK_AT_FREE flag(s) set")
                text = reports.bad_page_text(COMM, PID, 0, pfn, refcount if state == _ALLOCATED else 0,
                                             flags_text, "", reason, frames)
            self._log.emit(clock, text)
        raise (DoubleFree if status == errors.EDOUBLEFREE else InvalidFree)(
            message, addr=PAGE_OFFSET + (pfn << PAGE_SHIFT) if pfn >= 0 else None,
            reason=_bad_free_reason(status, state, horder, order, pflags))

    def _boot_messages(self) -> None:
        snap = {"zones": [_zone_dict(self._core.zone_info(zid), name) for zid, name in enumerate(gfpmod.ZONE_NAMES)],
                "min_free_kbytes": self._core.vm_info()["min_free_kbytes"]}
        lines = [f"Linux version {KERNEL_RELEASE} (pyalloc) #1 SMP PREEMPT_DYNAMIC",
                 "Zone ranges:"]
        for z in snap["zones"][:3]:
            if z["managed"]:
                lo = z["start_pfn"] << PAGE_SHIFT
                hi = ((z["start_pfn"] + z["spanned"]) << PAGE_SHIFT) - 1
                lines.append(f"  {z['name']:<8} [mem {lo:#018x}-{hi:#018x}]")
            else:
                lines.append(f"  {z['name']:<8} empty")
        lines.append("  Device   empty")
        lines.append(f"Built 1 zonelists, mobility grouping on.  Total pages: {self.nr_pages}")
        kb = self.nr_pages << (PAGE_SHIFT - 10)
        lines.append(f"Memory: {kb}K/{kb}K available")
        lines.append(f"min_free_kbytes: {snap['min_free_kbytes']}")
        self._log.emit(0, "\n".join(lines))


# one thread at a time in the shared layer (threads.py); these touch only the core
serialize(Machine, exclude=("read", "write", "memset", "page_address", "virt_to_phys", "virt_to_page",
                            "phys_to_virt", "is_vmalloc_addr", "on_cpu"),
          also=("_alloc_failed_slow", "_alloc_pages_nofail", "_alloc_nofail_failed", "_free_failed_slow", "_kmalloc_slow",
                "_kmalloc_failed", "_cache_alloc_slow", "_cache_alloc_failed", "_free_slow", "_free_failed",
                "_fault", "_kmalloc_on_failed", "_cache_alloc_on_failed", "_free_on_failed",
                "_alloc_pages_on_failed", "_free_pages_on_failed", "_alloc_pages_on_slow", "_free_pages_on_slow"))
