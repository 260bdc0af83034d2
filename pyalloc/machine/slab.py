"""The slab allocator's public face, shared by both backends: kmem_cache_*,
the kmalloc family, slub_debug options, and the kernel's reports.

The cores (csrc/slab.c, pyalloc/model/slab.py) do the allocating; this layer
names caches, creates the kmalloc caches at boot in the kernel's order, turns
status codes and debug events into exceptions and dmesg reports, and composes
what the kernel composes itself (krealloc, kcalloc, kvmalloc later).
"""

from __future__ import annotations

import enum
import sys
import warnings
from typing import TYPE_CHECKING, Any, Iterator, Optional
from contextlib import contextmanager

from .. import errors, gfp as gfpmod
from ..text import bad_page as reports, slub_report
from ..errors import InvalidArgument
from .. import _abi as st
from .._abi import DIRECT_MAP_SIZE, PAGE_OFFSET, PAGE_SIZE, ZERO_SIZE_PTR
from ..errors import show, show_hex
from ..threads import WRAPPER_CODE
from .vmalloc_owner import pinned_free_report
from ..gfp import GfpLike
from .state import MachineState

if TYPE_CHECKING:
    from .machine import Machine

SIZE_MAX = (1 << 64) - 1


class SLAB(enum.IntFlag):
    """kmem_cache_create() flags (pyalloc's own values, the kernel's names)."""
    HWCACHE_ALIGN = st.SLAB_HWCACHE_ALIGN
    POISON = st.SLAB_POISON
    RED_ZONE = st.SLAB_RED_ZONE
    STORE_USER = st.SLAB_STORE_USER
    RECLAIM_ACCOUNT = st.SLAB_RECLAIM_ACCOUNT
    ACCOUNT = st.SLAB_ACCOUNT
    CACHE_DMA = st.SLAB_CACHE_DMA
    CACHE_DMA32 = st.SLAB_CACHE_DMA32
    PANIC = st.SLAB_PANIC
    CONSISTENCY_CHECKS = st.SLAB_CONSISTENCY_CHECKS
    TRACE = st.SLAB_TRACE


SLAB_NAMES = {f"SLAB_{m.name}": int(m) for m in SLAB}
SLAB_NAMES["SLAB_NONE"] = 0

# slub_debug letters (mm/slub.c parse_slub_debug_flags)
DEBUG_LETTERS = {"f": st.SLAB_CONSISTENCY_CHECKS, "z": st.SLAB_RED_ZONE, "p": st.SLAB_POISON,
                 "u": st.SLAB_STORE_USER, "t": st.SLAB_TRACE, "a": 0, "o": 0}
DEBUG_ALL = st.SLAB_CONSISTENCY_CHECKS | st.SLAB_RED_ZONE | st.SLAB_POISON | st.SLAB_STORE_USER

# kmalloc cache families, in the kernel's creation order, with their flags and name stems
KMALLOC_TYPES = ((0, "kmalloc-", st.SLAB_NO_MERGE), (1, "kmalloc-rcl-", st.SLAB_RECLAIM_ACCOUNT),
                 (2, "dma-kmalloc-", st.SLAB_CACHE_DMA), (3, "kmalloc-cg-", st.SLAB_ACCOUNT))
KMALLOC_INDICES = (1, 2) + tuple(range(3, 14))     # 96 and 192 first, then 8 .. 8k
# RANDOM_KMALLOC_CACHES (mm/slab_common.c kmalloc_info, new_kmalloc_cache): kmalloc-rnd-NN-<size>,
# made right after the normal caches, as the kernel's type numbers follow KMALLOC_NORMAL
KMALLOC_RANDOM_TYPES = tuple((st.NR_KMALLOC_TYPES + n - 1, f"kmalloc-rnd-{n:02d}-", st.SLAB_NO_MERGE)
                             for n in range(1, st.RANDOM_KMALLOC_CACHES_NR + 1))


def check_size(value, fn: str, what: str = "size") -> int:
    """A byte count or element count from the caller: an int (not a bool), not negative."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{fn}: {what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise InvalidArgument(f"{fn}: {what} {show(value)} is negative")
    return value


def frame_caller(frame) -> str:
    """The caller pyalloc records for an allocation: the Python file:line it came from."""
    while frame.f_code is WRAPPER_CODE and frame.f_back is not None:
        frame = frame.f_back        # the thread-safety wrapper (threads.py) is not the caller
    return f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}"


def kmalloc_suffix(index: int) -> str:
    size = {1: 96, 2: 192}.get(index, 1 << index)
    return f"{size >> 10}k" if size >= 1024 else str(size)


def parse_slab_flags(flags) -> int:
    """SLAB_* flags from an int, a SLAB member or the kernel's spelling ("SLAB_POISON|SLAB_RED_ZONE")."""
    if isinstance(flags, bool):
        raise InvalidArgument(f"slab flags cannot be a bool: {show(flags)}")
    if isinstance(flags, int):
        if flags & ~st.SLAB_FLAGS_USER or flags < 0:
            raise InvalidArgument(f"unknown slab flag bits {flags:#x}")
        return int(flags)
    if not isinstance(flags, str):
        raise InvalidArgument(f"slab flags must be an int or a string, not {show(flags)}")
    value = 0
    for part in flags.split("|"):
        name = part.strip()
        if name not in SLAB_NAMES:
            raise InvalidArgument(f"unknown slab flag {show(name)} in {show(flags)}")
        value |= SLAB_NAMES[name]
    return value


def parse_slub_debug(option: str):
    """(flags, cache names or None for all, unknown letters) of a slub_debug= option."""
    if not option:
        return 0, None, ""
    letters, _, names = option.partition(",")
    flags, unknown = 0, ""
    if letters == "" or letters == "-":
        flags = 0 if letters == "-" else DEBUG_ALL
    for ch in letters:
        if ch == "-":
            continue
        bit = DEBUG_LETTERS.get(ch.lower())
        if bit is None:
            unknown += ch
        else:
            flags |= bit
    cache_names = tuple(n for n in names.split(",") if n) if names else None
    return flags, cache_names, unknown


class Cache:
    """A kmem_cache as kmem_cache_create() returns it."""

    __slots__ = ("name", "_id", "_machine", "object_size", "size", "align", "order", "objects", "flags")

    def __init__(self, machine, name: str, cid: int, info: dict) -> None:
        self.name = name
        self._id = cid
        self._machine = machine
        self.object_size = info["object_size"]
        self.size = info["size"]
        self.align = info["align"]
        self.order = info["order"]
        self.objects = info["objects"]
        self.flags = info["flags"]

    def _info(self):
        m = self._machine
        if self._id < 0 or m._closed:
            return None
        return m._core.cache_info(self._id)

    def __len__(self) -> int:
        """Live objects: allocated and not freed (0 once destroyed or its machine closed)."""
        info = self._info()
        return 0 if info is None else info["live"]

    def __bool__(self) -> bool:
        return True         # a cache is a cache, empty or not (len() alone would make it falsy)

    @property
    def random(self) -> int:
        """``s->random``: what SLAB_FREELIST_HARDENED xors into every stored free pointer (0 without it)."""
        return self._random_state()[0]

    @property
    def random_seq(self) -> tuple[int, ...]:
        """``s->random_seq`` as object indices: the order SLAB_FREELIST_RANDOM links a new slab's
        objects in, from a random start (empty without it, or with one object per slab)."""
        return self._random_state()[1]

    def _random_state(self):
        m = self._machine
        m._live()
        state = m._core.cache_random(self._id) if self._id >= 0 else None
        if state is None:
            raise InvalidArgument(f"kmem_cache {self.name!r} has been destroyed")
        return state

    def __repr__(self) -> str:
        info = self._info()
        if info is None:
            return f"<kmem_cache {self.name!r} {'destroyed' if self._id < 0 else 'of a closed machine'}>"
        return (f"<kmem_cache {self.name!r} object_size={self.object_size} size={self.size}: "
                f"{info['live']} live, {info['total_objects'] - info['live']} free objects "
                f"in {info['nr_slabs']} slabs>")


EVENT_WHAT = {
    st.SLAB_ERR_LEFT_REDZONE: "Left Redzone", st.SLAB_ERR_RIGHT_REDZONE: "Right Redzone",
    st.SLAB_ERR_KMALLOC_REDZONE: "kmalloc Redzone", st.SLAB_ERR_POISON: "Poison",
    st.SLAB_ERR_END_POISON: "End Poison", st.SLAB_ERR_OBJECT_PADDING: "Object padding",
    st.SLAB_ERR_ALIGN_PADDING: "Alignment padding", st.SLAB_ERR_SLAB_PADDING: "Padding",
}


def corruption_finding(events, caches) -> tuple:
    """(one-line finding, reason, object address, Cache) of the first damage slub_debug
    recorded, in the words of the report's first lines; ("", None, None, None) if none."""
    for reason, cid, slab_phys, obj, start, end, expected, found in events:
        cache = caches.get(cid)
        if reason in EVENT_WHAT:
            what = f"{EVENT_WHAT[reason]} overwritten"
            return (f"{what}: 0x{PAGE_OFFSET + start:016x}-0x{PAGE_OFFSET + end - 1:016x} "
                    f"@offset={start - slab_phys}. First byte {found:#x} instead of {expected:#x}",
                    what, PAGE_OFFSET + obj, cache)
        if reason == st.SLAB_ERR_FREEPOINTER:
            return (f"Freepointer corrupt in the object at 0x{PAGE_OFFSET + obj:016x}",
                    "Freepointer corrupt", PAGE_OFFSET + obj, cache)
    return "", None, None, None


def _slab_hot_paths(machine, core):
    """kmalloc, kfree, kmem_cache_alloc and kmem_cache_free as closures over one core.

    The common call (no cpu=/caller=, no caller tracking, an ordinary mask)
    is a GFP lookup, one core call and a sign test.  With cpu= the CPU goes
    into the core call (``hot_*_on``, oncpu.py), and caller= is one lookup of
    the string's caller id; failures, a first-seen caller string and odd
    arguments take SlabAPI's slow paths.
    """
    kmalloc_c, kfree_c = core.hot_kmalloc, core.hot_kfree
    alloc_c, free_c, handle = core.hot_kmem_cache_alloc, core.hot_kmem_cache_free, core.handle
    kmalloc_on, kfree_on = core.hot_kmalloc_on, core.hot_kfree_on
    alloc_on, free_on = core.hot_kmem_cache_alloc_on, core.hot_kmem_cache_free_on
    parse, slow_mask, offset = gfpmod.parse, gfpmod.GFP_NOFAIL | _SLAB_BUG_MASK, PAGE_OFFSET
    m = machine
    getframe, int_ = sys._getframe, int

    def kmalloc(size, gfp, cpu=None, caller=None):
        """kmalloc(): a new object's address, ZERO_SIZE_PTR for size 0, or None."""
        flags = parse(gfp)
        if flags & slow_mask or m._track_callers and caller is None:
            return m._kmalloc_slow(size, flags, cpu, caller, getframe(1))
        if caller is None:
            who = 0
        else:
            try:
                who = m._callers[caller]        # a string seen before; a new one registers on the slow path
            except (KeyError, TypeError):
                return m._kmalloc_slow(size, flags, cpu, caller, getframe(1))
        try:
            if cpu is None:
                r = kmalloc_c(handle, size, flags, who)
            elif cpu.__class__ is int_:
                r = kmalloc_on(handle, size, flags, who, cpu)
            else:
                return m._kmalloc_slow(size, flags, cpu, caller, getframe(1))
        except OverflowError:
            if cpu is not None or who:
                return m._kmalloc_slow(size, flags, cpu, caller, getframe(1))
            r = errors.E2BIG if isinstance(size, int) and size > 0 else errors.EINVAL
        except TypeError:
            if cpu is not None or who:
                return m._kmalloc_slow(size, flags, cpu, caller, getframe(1))
            check_size(size, "kmalloc")       # names the argument
            raise
        if r >= 0:
            return r + offset
        if cpu is None and not who:
            return m._kmalloc_failed(r, size, flags)
        return m._kmalloc_on_failed(r, size, flags, cpu, who)

    def kfree(addr, cpu=None, caller=None):
        """kfree(): free a kmalloc object; None and ZERO_SIZE_PTR do nothing."""
        if caller is not None:
            try:
                who = m._callers[caller]
            except (KeyError, TypeError):
                return m._free_slow(addr, None, cpu, caller, getframe(1))
        elif m._track_callers:
            return m._free_slow(addr, None, cpu, caller, getframe(1))
        else:
            who = 0
        try:
            if cpu is None:
                r = kfree_c(handle, addr - offset, who)
            elif cpu.__class__ is int_:
                r = kfree_on(handle, addr - offset, who, cpu)
            else:
                return m._free_slow(addr, None, cpu, caller, getframe(1))
        except (TypeError, OverflowError):
            return m._free_slow(addr, None, cpu, caller, getframe(1))
        if r:
            if cpu is None:
                m._free_failed(r, addr, None)
            else:
                m._free_on_failed(r, addr, None, cpu)

    def kmem_cache_alloc(cache, gfp, cpu=None, caller=None):
        """kmem_cache_alloc(): a new object of the cache, or None."""
        flags = parse(gfp)
        try:
            cid = cache._id
            mine = cache._machine is m
        except AttributeError:
            raise InvalidArgument(f"not a kmem_cache: {show(cache)}") from None
        if flags & slow_mask or cid < 0 or not mine or m._track_callers and caller is None:
            return m._cache_alloc_slow(cache, flags, cpu, caller, getframe(1))
        if caller is None:
            who = 0
        else:
            try:
                who = m._callers[caller]
            except (KeyError, TypeError):
                return m._cache_alloc_slow(cache, flags, cpu, caller, getframe(1))
        try:
            if cpu is None:
                r = alloc_c(handle, cid, flags, who)
            elif cpu.__class__ is int_:
                r = alloc_on(handle, cid, flags, who, cpu)
            else:
                return m._cache_alloc_slow(cache, flags, cpu, caller, getframe(1))
        except OverflowError:
            return m._cache_alloc_slow(cache, flags, cpu, caller, getframe(1))
        if r >= 0:
            return r + offset
        if cpu is None and not who:
            return m._cache_alloc_failed(r, cache, flags)
        return m._cache_alloc_on_failed(r, cache, flags, cpu, who)

    def kmem_cache_free(cache, addr, cpu=None, caller=None):
        """kmem_cache_free(): give an object back to its cache."""
        try:
            cid = cache._id
            mine = cache._machine is m
        except AttributeError:
            raise InvalidArgument(f"not a kmem_cache: {show(cache)}") from None
        if cid < 0 or not mine or m._track_callers and caller is None:
            return m._free_slow(addr, cache, cpu, caller, getframe(1))
        if caller is None:
            who = 0
        else:
            try:
                who = m._callers[caller]
            except (KeyError, TypeError):
                return m._free_slow(addr, cache, cpu, caller, getframe(1))
        try:
            if cpu is None:
                r = free_c(handle, cid, addr - offset, who)
            elif cpu.__class__ is int_:
                r = free_on(handle, cid, addr - offset, who, cpu)
            else:
                return m._free_slow(addr, cache, cpu, caller, getframe(1))
        except (TypeError, OverflowError):
            return m._free_slow(addr, cache, cpu, caller, getframe(1))
        if r:
            if cpu is None:
                m._free_failed(r, addr, cache)
            else:
                m._free_on_failed(r, addr, cache, cpu)

    from .buddy import as_method
    return as_method(kmalloc), as_method(kfree), as_method(kmem_cache_alloc), as_method(kmem_cache_free)


# the short phrase an exception's .reason gives for each refused free
_FREE_REASONS = {
    st.SLAB_ERR_NOT_SLAB: "not a slab object", st.SLAB_ERR_INVALID_POINTER: "invalid pointer",
    st.SLAB_ERR_ALREADY_FREE: "double free", st.SLAB_ERR_NEVER_ALLOCATED: "never allocated",
    st.SLAB_ERR_WRONG_CACHE: "wrong cache",
}

_SLAB_BUG_MASK = gfpmod.GFP_DMA32 | gfpmod.GFP_HIGHMEM | (0xffffffff & ~gfpmod.GFP_BITS_MASK)


class SlabAPI(MachineState):
    """The slab half of Machine (mixed into it)."""

    # -- boot --------------------------------------------------------------------

    def _slab_boot(self, slub_debug: str, slab_merge: bool) -> None:
        if not isinstance(slub_debug, str):
            raise InvalidArgument(f"slub_debug must be a string like 'FZPU', not {show(slub_debug)}")
        self._debug_flags, self._debug_names, unknown = parse_slub_debug(slub_debug)
        for ch in unknown:
            self._log.emit(0, f"slab_debug option '{ch}' unknown. skipped")
        if unknown:
            warnings.warn(f"slub_debug={slub_debug!r}: unknown option(s) {', '.join(map(repr, unknown))} "
                          "skipped, as the kernel skips them (see dmesg)", errors.PyallocWarning, stacklevel=3)
        self._caches: dict[int, Cache] = {}       # id -> the cache's own (first) name
        self._cache_order: list[int] = []         # ids, oldest first
        self._callers: dict[str, int] = {}
        self._caller_names: list[str] = []
        # RANDOM_KMALLOC_CACHES picks a kmalloc cache by its caller, so every call names one
        self._track_callers = bool(self._core.vm_info()["kconfig"] & st.KCONFIG_RANDOM_KMALLOC_CACHES)
        self.kmalloc, self.kfree, self.kmem_cache_alloc, self.kmem_cache_free = _slab_hot_paths(self, self._core)
        families = KMALLOC_TYPES[:1] + KMALLOC_RANDOM_TYPES + KMALLOC_TYPES[1:] if self._track_callers \
            else KMALLOC_TYPES
        for ktype, stem, tflags in families:
            for index in KMALLOC_INDICES:
                name = stem + kmalloc_suffix(index)
                size = {1: 96, 2: 192}.get(index, 1 << index)
                # create_boot_cache: kmalloc caches align to the largest power of two dividing the size
                cache = self._create(name, size, size & -size, tflags | st.SLAB_KMALLOC)
                self._core.kmalloc_register(ktype, index, cache._id)
        self._core.random_kmalloc_init()
        self._core.set_slab_merge(slab_merge)

    def _create(self, name: str, size: int, align: int, flags: int, sheaf_capacity: int = 0) -> Cache:
        if self._debug_names is None or name in self._debug_names:
            flags |= self._debug_flags
        cid = self._core.kmem_cache_create(size, align, flags, sheaf_capacity)
        if cid < 0:
            errors.raise_for(cid if cid != errors.ENOMEM else errors.EINVAL,
                             f"kmem_cache_create({show(name)}, {show(size)}, align={show(align)}): the object cannot be laid "
                             "out in a slab of order 10 or less" if cid == errors.EINVAL else
                             f"kmem_cache_create({show(name)}): too many caches")
        info = self._core.cache_info(cid)
        cache = Cache(self, name, cid, info)
        if cid not in self._caches:
            self._caches[cid] = cache
            self._cache_order.append(cid)
        if info["flags"] & st.SLAB_STORE_USER:
            self._track_callers = True
        return cache

    # -- caches ------------------------------------------------------------------

    def kmem_cache_create(self, name: str, size: int, align: int = 0, flags: int | str | SLAB = 0, *,
                          sheaf_capacity: int = 0) -> Cache:
        """kmem_cache_create(): a new cache (or, with slab_merge, an alias of a compatible one).

        sheaf_capacity (struct kmem_cache_args.sheaf_capacity, 6.18) gives the cache per-cpu
        sheaves of that many objects (none for a debug cache); such a cache is never merged."""
        self._live()
        # The name becomes /sys/kernel/slab/<name>/ ('/' shown as '!', as kobject names do):
        # "." and ".." could name no directory there, and a directory name holds at most 255 bytes.
        if (not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.isprintable() or " " in name
                or name in (".", "..") or len(name.encode("utf-8")) > 255):
            raise InvalidArgument(f"kmem_cache_create: bad name {show(name)} (1 to 64 printable characters, "
                                  "at most 255 bytes of UTF-8, no spaces, not . or ..)")
        for what, v in (("size", size), ("align", align), ("sheaf_capacity", sheaf_capacity)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidArgument(f"kmem_cache_create({show(name)}): {what} must be an int, not {show(v)}")
        bits = parse_slab_flags(flags)
        if not 1 <= size <= st.KMALLOC_MAX_SIZE:
            self._log.emit(self._clock_ns(), f"kmem_cache_create({name}) integrity check failed")
            raise InvalidArgument(f"kmem_cache_create({show(name)}): size {show(size)} is outside 1..{st.KMALLOC_MAX_SIZE}")
        if align < 0 or align > st.KMALLOC_MAX_SIZE or align & (align - 1):
            raise InvalidArgument(f"kmem_cache_create({show(name)}): align {show(align)} is not 0 or a power of two")
        if bits & st.SLAB_CACHE_DMA and bits & st.SLAB_CACHE_DMA32:
            raise InvalidArgument(f"kmem_cache_create({show(name)}): SLAB_CACHE_DMA and SLAB_CACHE_DMA32 together")
        if not 0 <= sheaf_capacity <= st.SHEAF_CAPACITY_MAX:
            raise InvalidArgument(f"kmem_cache_create({show(name)}): sheaf_capacity {show(sheaf_capacity)} is outside "
                                  f"0..{st.SHEAF_CAPACITY_MAX} (a sheaf larger than KMALLOC_MAX_SIZE cannot be allocated)")
        if self._sysfs_name_taken(name, bits, sheaf_capacity):
            self._log.emit(self._clock_ns(), "\n".join(slub_report.duplicate_cache_lines(
                name, frame_caller(sys._getframe(1)), self._comm, self._pid, self._cpu(), tainted=self._slab_tainted)))
            raise errors.CacheExists(f"kmem_cache_create({show(name)}): /sys/kernel/slab/{name} exists and "
                                     "neither cache can be merged, so 6.18 fails with -EEXIST (see dmesg)")
        return self._create(name, size, align, bits & ~st.SLAB_PANIC, sheaf_capacity)

    def _unmergeable(self, flags: int, sheaf_capacity: int) -> bool:
        """mm/slab_common.c slab_unmergeable(): such a cache's sysfs directory is its own name
        (mm/slub.c sysfs_slab_add()); a mergeable one's is a unique id with the name a link."""
        return not self.slab_merge or bool(flags & st.SLAB_NEVER_MERGE) or sheaf_capacity > 0

    def _sysfs_name_taken(self, name: str, flags: int, sheaf_capacity: int) -> bool:
        if self._debug_names is None or name in self._debug_names:
            flags |= self._debug_flags
        if not self._unmergeable(flags, sheaf_capacity):
            return False
        for cache in self._caches.values():
            if cache.name == name and cache._id >= 0:
                info = self._core.cache_info(cache._id)
                if info is not None and self._unmergeable(info["flags"], info["sheaf_capacity"]):
                    return True
        return False

    def _cache_id(self, cache, what: str) -> int:
        self._live()
        if not isinstance(cache, Cache) or cache._machine is not self:
            raise InvalidArgument(f"{what}: not a kmem_cache of this machine: {show(cache)}")
        cid = cache._id
        if cid < 0:
            raise InvalidArgument(f"{what}: kmem_cache {show(cache.name)} has been destroyed")
        return cid

    def kmem_cache_shrink(self, cache: Cache) -> None:
        """kmem_cache_shrink(): flush the cpu slabs and give empty slabs back."""
        r = self._core.kmem_cache_shrink(self._cache_id(cache, "kmem_cache_shrink"))
        if r:
            errors.raise_for(r, f"kmem_cache_shrink({cache.name})")

    def kmem_cache_destroy(self, cache: Optional[Cache]) -> None:
        """kmem_cache_destroy(): CacheInUse (and the kernel's report) while objects are live."""
        if cache is None:
            return
        cid = self._cache_id(cache, "kmem_cache_destroy")
        r = self._core.kmem_cache_destroy(cid)
        if r == errors.EBUSY:
            self._report_events(self._core.take_events(), "kmem_cache_destroy", caller=None)
            self._log.emit(self._clock_ns(), slub_report.destroy_warning(
                self._caches[cid].name, "kmem_cache_destroy", self._comm, self._pid, self._cpu()))
            raise errors.CacheInUse(f"kmem_cache_destroy({cache.name}): slab cache still has objects",
                                    cache=cache, reason="objects remaining")
        if r:
            errors.raise_for(r, f"kmem_cache_destroy({cache.name})")
        if self._core.cache_info(cid) is None:      # really gone, not just an alias
            del self._caches[cid]
            self._cache_order.remove(cid)
        cache._id = -1

    def kmem_cache_zalloc(self, cache: Cache, gfp: GfpLike, cpu: int | None = None,
                          caller: str | None = None) -> int | None:
        """kmem_cache_zalloc(): kmem_cache_alloc with __GFP_ZERO."""
        return self.kmem_cache_alloc(cache, gfpmod.parse(gfp) | gfpmod.GFP_ZERO, cpu, caller or self._where(1))

    # -- the kmalloc family ----------------------------------------------------------

    def kzalloc(self, size: int, gfp: GfpLike, cpu: int | None = None,
                caller: str | None = None) -> int | None:
        """kzalloc(): kmalloc with __GFP_ZERO."""
        return self.kmalloc(size, gfpmod.parse(gfp) | gfpmod.GFP_ZERO, cpu, caller or self._where(1))

    def kmalloc_array(self, n: int, size: int, gfp: GfpLike, cpu: int | None = None,
                      caller: str | None = None) -> int | None:
        """kmalloc_array(): NULL without a warning when n * size overflows."""
        check_size(n, "kmalloc_array", "n")
        check_size(size, "kmalloc_array")
        flags = gfpmod.parse(gfp)
        self._live()
        if n * size > SIZE_MAX:
            return None
        return self.kmalloc(n * size, flags, cpu, caller or self._where(1))

    def kcalloc(self, n: int, size: int, gfp: GfpLike, cpu: int | None = None,
                caller: str | None = None) -> int | None:
        """kcalloc(): kmalloc_array with __GFP_ZERO."""
        return self.kmalloc_array(n, size, gfpmod.parse(gfp) | gfpmod.GFP_ZERO, cpu, caller or self._where(1))

    def ksize(self, addr: Optional[int]) -> int:
        """ksize(): how many bytes the object at addr really has (0 for NULL/ZERO_SIZE_PTR)."""
        self._live()
        if addr is None or (isinstance(addr, int) and 0 <= addr <= ZERO_SIZE_PTR):
            return 0
        if isinstance(addr, bool) or not isinstance(addr, int):
            raise TypeError(f"ksize: an address must be an int, not {type(addr).__name__}")
        phys = addr - PAGE_OFFSET
        r = self._core.ksize(phys) if 0 <= phys < DIRECT_MAP_SIZE else errors.EINVAL
        if r < 0:
            raise InvalidArgument(f"ksize({show_hex(addr)}): not a slab object or kmalloc allocation")
        return r

    def krealloc(self, addr: int | None, size: int, gfp: GfpLike, cpu: int | None = None,
                 caller: str | None = None) -> int | None:
        """krealloc(): resize in place while it fits ksize, else allocate, copy and free."""
        flags = gfpmod.parse(gfp)
        caller = caller or self._where(1)
        check_size(size, "krealloc")
        if size == 0:
            self.kfree(addr, cpu, caller)
            return ZERO_SIZE_PTR
        self._krealloc_check(addr, cpu, caller)
        ks = self.ksize(addr)
        if ks >= size:
            if flags & gfpmod.GFP_ZERO:
                assert addr is not None     # ksize(None) is 0
                self.memset(addr + size, 0, ks - size)
            return addr
        new = self.kmalloc(size, flags, cpu, caller)
        if new is not None and ks:
            self.write(new, self.read(addr, ks))
            try:
                self.kfree(addr, cpu, caller)
            except errors.PyallocError:
                self.kfree(new, cpu, caller)    # slub_debug refused the old object: take nothing
                raise
        return new

    def _krealloc_check(self, addr, cpu, caller) -> None:
        """Before krealloc takes anything: addr is NULL, ZERO_SIZE_PTR or a live kmalloc'able object."""
        if addr is None or (isinstance(addr, int) and not isinstance(addr, bool) and 0 <= addr <= ZERO_SIZE_PTR):
            return
        if isinstance(addr, int) and not isinstance(addr, bool) and 0 <= addr - PAGE_OFFSET < self.mem:
            phys = addr - PAGE_OFFSET
            if self._core.slab_pin(phys, -1) == 0:
                return
            state, head, _, kind, _, _ = self._core.page_state(phys >> 12)
            if not phys & (PAGE_SIZE - 1) and (state, head, kind) == (1, phys >> 12, st.KIND_LARGE_KMALLOC):
                return
        self.kfree(addr, cpu, caller)       # refused: the kernel's report and exception, nothing changed
        raise errors.InvariantBroken(f"krealloc({show(addr)}): kfree took an address krealloc refused")

    @contextmanager
    def on_cpu(self, cpu: int) -> "Iterator[Machine]":
        """Run the block as simulated CPU `cpu` (per-cpu slabs follow it)."""
        self._live()
        self._check_cpu(cpu)
        with self._as_cpu(cpu):
            yield self  # type: ignore[misc]   # SlabAPI is a part of Machine, which is what runs this

    # -- slow paths ---------------------------------------------------------------------

    def _cpu(self) -> int:
        return self._core.vm_info()["cpu"]

    def _check_cpu(self, cpu) -> None:
        if isinstance(cpu, bool) or not isinstance(cpu, int) or not 0 <= cpu < self.cpus:
            raise InvalidArgument(f"cpu must be an int from 0 to {self.cpus - 1}, not {show(cpu)}")

    def _set_cpu(self, cpu) -> None:
        self._check_cpu(cpu)
        self._core.set_cpu(cpu)

    def _where(self, depth: int) -> str | None:
        if not self._track_callers:
            return None
        return frame_caller(sys._getframe(depth + 1))

    def _caller_id(self, caller, frame) -> int:
        if caller is None:
            if not self._track_callers or frame is None:
                return 0
            caller = frame_caller(frame)
        if not isinstance(caller, str):
            raise InvalidArgument(f"caller must be a string, not {show(caller)}")
        cid = self._callers.get(caller)
        if cid is None:
            self._caller_names.append(caller)
            cid = self._callers[caller] = len(self._caller_names)
        return cid

    @contextmanager
    def _as_cpu(self, cpu):
        if cpu is None:
            yield
            return
        old = self._cpu()
        self._set_cpu(cpu)
        try:
            yield
        finally:
            if not self._closed:        # the block may have closed the machine
                self._core.set_cpu(old)

    def _gfp_fixup(self, flags: int, before: int) -> None:
        if self._core.vm_info()["gfp_fixups"] != before:
            bad, fixed = flags & _SLAB_BUG_MASK, flags & ~_SLAB_BUG_MASK
            self._log.emit(self._clock_ns(), (
                f"Unexpected gfp: {bad:#x} ({gfpmod.format_pGg(bad)}). Fixing up to gfp: "
                f"{fixed:#x} ({gfpmod.format_pGg(fixed)}). Fix your code!"))

    def _kmalloc_slow(self, size, flags, cpu, caller, frame):
        self._live()
        cid = self._caller_id(caller, frame)
        before = self._core.vm_info()["gfp_fixups"]
        with self._as_cpu(cpu):
            try:
                r = self._core.hot_kmalloc(self._core.handle, size, flags, cid)
            except OverflowError:
                r = errors.E2BIG if isinstance(size, int) and size > 0 else errors.EINVAL
            if r == errors.EOOM:
                r = self._with_oom(lambda: self._core.hot_kmalloc(self._core.handle, size, flags, cid))
            self._gfp_fixup(flags, before)
            if r >= 0:
                return r + PAGE_OFFSET
            return self._kmalloc_failed(r, size, flags)      # reported as that CPU, as on_cpu() would

    def _cache_alloc_slow(self, cache, flags, cpu, caller, frame):
        cid = self._cache_id(cache, "kmem_cache_alloc")
        who = self._caller_id(caller, frame)
        before = self._core.vm_info()["gfp_fixups"]
        with self._as_cpu(cpu):
            r = self._core.hot_kmem_cache_alloc(self._core.handle, cid, flags, who)
            if r == errors.EOOM:
                r = self._with_oom(lambda: self._core.hot_kmem_cache_alloc(self._core.handle, cid, flags, who))
            self._gfp_fixup(flags, before)
            if r >= 0:
                return r + PAGE_OFFSET
            return self._cache_alloc_failed(r, cache, flags)

    def _free_slow(self, addr, cache, cpu, caller, frame):
        self._live()
        if cpu is not None:
            self._check_cpu(cpu)        # first, as on_cpu() around the call would
        if cache is not None:
            cid = self._cache_id(cache, "kmem_cache_free")
        if addr is None or (cache is None and isinstance(addr, int) and 0 <= addr <= ZERO_SIZE_PTR):
            if cache is None and self._tracer is not None:
                with self._as_cpu(cpu):
                    self._trace_null_free(addr, self._caller_id(caller, frame))
            return None        # kfree(NULL), kfree(ZERO_SIZE_PTR)
        if isinstance(addr, bool) or not isinstance(addr, int):
            raise TypeError(f"an address must be an int, not {type(addr).__name__}")
        who = self._caller_id(caller, frame)
        phys = addr - PAGE_OFFSET
        if not 0 <= phys < 1 << 62:
            phys = -1
        with self._as_cpu(cpu):
            if cache is None:
                r = self._core.hot_kfree(self._core.handle, phys, who)
            else:
                r = self._core.hot_kmem_cache_free(self._core.handle, cid, phys, who)
            if r:
                self._free_failed(r, addr, cache)

    def _reclaimable_cache_names(self) -> set:
        """Caches created with SLAB_RECLAIM_ACCOUNT (their slabs count as SReclaimable)."""
        out = set()
        for cid in list(self._caches):
            info = self._core.cache_info(cid)
            if info is not None and info["flags"] & st.SLAB_RECLAIM_ACCOUNT:
                out.add(self._caches[cid].name)
        return out

    def _kmalloc_failed(self, r, size, flags):
        if r == errors.EOOM:
            r = self._with_oom(lambda: self._core.hot_kmalloc(self._core.handle, size, flags, 0))
            if r >= 0:
                return r + PAGE_OFFSET
        if r == st.ZERO_SIZE_STATUS:
            return ZERO_SIZE_PTR
        if r == errors.E2BIG:
            # kmalloc_large: get_order(size) > MAX_PAGE_ORDER, which alloc_pages warns about
            self._warn_once("order", flags, "mm/page_alloc.c:5017", "__alloc_pages_noprof")
            return None
        if r == errors.EINVAL:
            if isinstance(size, int) and size < 0:
                raise InvalidArgument(f"kmalloc: size {show(size)} is negative")
            raise InvalidArgument(f"kmalloc({show(size)}): bad arguments")
        return self._slab_alloc_failed(r, flags, f"kmalloc({show(size)})", size)

    def _cache_alloc_failed(self, r, cache, flags):
        if r == errors.EOOM:
            r = self._with_oom(lambda: self._core.hot_kmem_cache_alloc(self._core.handle, cache._id, flags, 0))
            if r >= 0:
                return r + PAGE_OFFSET
        if r == errors.EINVAL:
            self._cache_id(cache, "kmem_cache_alloc")
            raise InvalidArgument(f"kmem_cache_alloc({cache.name}): bad arguments")
        return self._slab_alloc_failed(r, flags, f"kmem_cache_alloc({cache.name})")

    def _slab_alloc_failed(self, r, flags, what, size=0):
        if r == errors.ECORRUPT:
            events = self._core.take_events()
            finding, reason, obj, cache = corruption_finding(events, self._caches)
            self._report_events(events, what, caller=None)
            raise errors.SlabCorruption(f"{what}: slub_debug found a damaged free object: {finding} (see dmesg)",
                                        addr=obj, cache=cache, reason=reason)
        if r != errors.ENOMEM:
            errors.raise_for(r, what)
        if flags & gfpmod.GFP_NOFAIL and flags & gfpmod.GFP_DIRECT_RECLAIM:
            self._log.emit(self._clock_ns(), f"{self._comm}: __GFP_NOFAIL {what} cannot be satisfied: "
                                             "the kernel would retry forever")
            raise errors.OutOfMemory(f"{what}: __GFP_NOFAIL request that nothing can satisfy")
        vm = self._core.vm_info()
        cid = vm["last_cache"]
        if cid < 0:      # kmalloc_large: the page allocator's own failure report
            order = max(0, (size - 1) >> 12).bit_length()
            return self._alloc_failed_slow(r, (flags & ~_SLAB_BUG_MASK) | gfpmod.GFP_COMP, order)
        info = self._core.cache_info(cid)
        page_gfp = vm["slab_fallback_gfp"]
        self._warn_alloc(page_gfp, f"page allocation failure: order:{info['min_order']}")
        if not flags & gfpmod.GFP_NOWARN:
            name = self._caches[cid].name
            self._log.emit(self._clock_ns(), "\n".join([
                f"SLUB: Unable to allocate memory on node -1, gfp={flags:#x}({gfpmod.format_pGg(flags)})",
                f"  cache: {name}, object size: {info['object_size']}, buffer size: {info['size']}, "
                f"default order: {info['order']}, min order: {info['min_order']}",
                f"  node 0: slabs: {info['nr_slabs']}, objs: {info['total_objects']}, "
                f"free: {info['total_objects'] - info['live']}"]))
        return None

    def _free_failed(self, r, addr, cache):
        events = self._core.take_events()
        fn = "kfree" if cache is None else f"kmem_cache_free({cache.name})"
        if r == errors.EINVAL:
            if cache is not None:
                self._cache_id(cache, "kmem_cache_free")
            raise InvalidArgument(f"{fn}: bad arguments")
        self._report_events(events, fn, caller=fn)
        reason = events[0][0] if events else 0
        text = {
            st.SLAB_ERR_NOT_SLAB: "is not a slab object or kmalloc allocation",
            st.SLAB_ERR_INVALID_POINTER: "is not the start of an object",
            st.SLAB_ERR_ALREADY_FREE: "was freed and is free now (double free)",
            st.SLAB_ERR_NEVER_ALLOCATED: "is an object that was never allocated",
            st.SLAB_ERR_WRONG_CACHE: "belongs to another cache",
            st.SLAB_ERR_PINNED: "is the page array of a vmalloc area (freed with it by vfree)",
        }.get(reason, "failed the debug checks; the object was not freed")
        msg = f"{fn}({show_hex(addr)}): {text}"
        if cache is None and events:
            cache = self._caches.get(events[0][1])
        about = dict(addr=addr, cache=cache, reason=_FREE_REASONS.get(reason, "debug check failed"))
        if r == errors.ECORRUPT:
            finding, why, _obj, _cache = corruption_finding(events, self._caches)
            if finding:
                msg, about["reason"] = f"{msg}: {finding}", why
            raise errors.SlabCorruption(msg, **about)
        errors.raise_for(r, msg, **about)

    # -- reports --------------------------------------------------------------------------

    def _slab_dict(self, slab_phys: int) -> dict | None:
        info = self._core.slab_info(slab_phys)
        if info is None:
            return None
        order, objects, inuse, fp = info
        return {"slab_addr": slub_report.slab_struct_addr(slab_phys >> 12), "objects": objects,
                "inuse": inuse, "slab_fp": fp, "order": order, "zone": self._zone_of(slab_phys >> 12)}

    @staticmethod
    def _zone_of(pfn: int) -> int:
        return 0 if pfn < 1 << 12 else 1 if pfn < 1 << 20 else 2

    def _tracks(self, info: dict, obj: int):
        if not info["flags"] & st.SLAB_STORE_USER:
            return None, None
        base = obj + (info["offset"] + 8 if info["offset"] >= info["inuse"] else info["inuse"])
        now = self._core.vm_info()["ticks"]
        out: list[tuple[str, int, int, int] | None] = []    # (caller, age, cpu, pid) or no record
        for which in (0, 1):
            raw = self._core.read(base + which * st.TRACK_SIZE, st.TRACK_SIZE)
            caller = int.from_bytes(raw[0:8], "little")
            if caller == 0 and raw[24:32] == bytes(8):
                out.append(None)
                continue
            name = self._caller_names[caller - 1] if 1 <= caller <= len(self._caller_names) else f"{caller:#x}"
            when = int.from_bytes(raw[24:32], "little")
            out.append((name, max(0, now - when), int.from_bytes(raw[12:16], "little"),
                        int.from_bytes(raw[16:20], "little")))
        return out[0], out[1]

    def _sections(self, info: dict, obj: int, slab_phys: int):
        rd = self._core.read
        secs = []
        rlp, osz, inuse = info["red_left_pad"], info["object_size"], info["inuse"]
        if info["flags"] & st.SLAB_RED_ZONE:
            secs.append((slub_report.LABEL_REDZONE, PAGE_OFFSET + obj - rlp, rd(obj - rlp, rlp)))
        elif obj - slab_phys >= 16:
            secs.append((slub_report.LABEL_BYTES_B4, PAGE_OFFSET + obj - 16, rd(obj - 16, 16)))
        secs.append((slub_report.LABEL_OBJECT, PAGE_OFFSET + obj, rd(obj, min(osz, PAGE_SIZE))))
        if info["flags"] & st.SLAB_RED_ZONE:
            secs.append((slub_report.LABEL_REDZONE, PAGE_OFFSET + obj + osz, rd(obj + osz, inuse - osz)))
        off = info["offset"] + 8 if info["offset"] >= inuse else inuse
        if info["flags"] & st.SLAB_STORE_USER:
            off += 2 * st.TRACK_SIZE + (4 if info["flags"] & st.SLAB_KMALLOC else 0)
        size_from_object = info["size"] - rlp
        if off != size_from_object:
            secs.append((slub_report.LABEL_PADDING, PAGE_OFFSET + obj + off, rd(obj + off, size_from_object - off)))
        return secs

    def _report_events(self, events, fn: str, caller) -> None:
        """Print the kernel's report for each event a core recorded."""
        tainted = self._slab_tainted
        shutdown: dict = {}
        for reason, cid, slab_phys, obj, start, end, expected, found in events:
            cache = self._caches[cid].name if cid in self._caches else "<unknown>"
            info = self._core.cache_info(cid) if cid >= 0 else None
            if info is not None:
                info["random"] = self._core.cache_random(cid)[0]     # _stored_fp decodes with it
            slab = self._slab_dict(slab_phys) if slab_phys >= 0 else None
            clock = self._clock_ns()
            common: dict[str, Any] = dict(comm=self._comm, pid=self._pid, cpu=self._cpu())
            if reason == st.SLAB_ERR_OBJECTS_REMAINING:
                shutdown.setdefault(slab_phys, (cache, slab, []))[2].append(PAGE_OFFSET + obj)
                continue
            if reason in EVENT_WHAT and info is not None and slab is not None:
                what = EVENT_WHAT[reason]
                offset = start - slab_phys
                first = slub_report.overwrite_line(what, PAGE_OFFSET + start, PAGE_OFFSET + end - 1, offset,
                                                   found, expected)
                if reason == st.SLAB_ERR_SLAB_PADDING:
                    text = slub_report.slab_err_report(
                        cache, f"Padding overwritten. 0x{PAGE_OFFSET + start:016x}-0x{PAGE_OFFSET + end - 1:016x} "
                        f"@offset={offset}", tainted=tainted, **slab, **common)
                else:
                    alloc_t, free_t = self._tracks(info, obj)
                    text = slub_report.object_report(
                        cache, "Object corrupt", tainted=tainted, obj_addr=PAGE_OFFSET + obj,
                        obj_offset=obj - slab_phys, obj_fp=self._stored_fp(info, obj),
                        sections=self._sections(info, obj, slab_phys), alloc_track=alloc_t, free_track=free_t,
                        first_line=first, **slab, **common)
                text += "\n" + slub_report.restore_line(cache, what, PAGE_OFFSET + start, PAGE_OFFSET + end - 1,
                                                        expected)
            elif reason == st.SLAB_ERR_FREEPOINTER and info is not None and slab is not None:
                alloc_t, free_t = self._tracks(info, obj)
                text = slub_report.object_report(
                    cache, "Freepointer corrupt", tainted=tainted, obj_addr=PAGE_OFFSET + obj,
                    obj_offset=obj - slab_phys, obj_fp=self._stored_fp(info, obj),
                    sections=self._sections(info, obj, slab_phys), alloc_track=alloc_t, free_track=free_t,
                    first_line=None, **slab, **common)
                text += "\n" + slub_report.fix_line(cache, "Isolate corrupted freechain")
            elif reason == st.SLAB_ERR_PINNED and slab is not None:
                text = pinned_free_report(self, fn.split("(")[0], cache, slab, obj, common)
            elif reason == st.SLAB_ERR_NOT_SLAB and not 0 <= obj < self.mem:
                # virt_to_folio() of an address outside memory: the kernel faults
                text = reports.page_fault_text(self._comm, self._pid, common["cpu"],
                                               (PAGE_OFFSET + obj) & (2 ** 64 - 1), False,
                                               f"{fn} of an address outside memory")
            else:
                text = self._free_error_text(reason, cache, info, slab, slab_phys, obj, found, caller or fn, common)
            self._log.emit(clock, text)
            tainted = True
        for slab_phys, (cache, slab, live) in shutdown.items():
            self._log.emit(self._clock_ns(), slub_report.shutdown_report(
                cache, tainted=tainted, slab_base=PAGE_OFFSET + slab_phys, live=live,
                **{k: v for k, v in slab.items()}, comm=self._comm, pid=self._pid, cpu=self._cpu()))
            tainted = True
        self._slab_tainted = tainted

    def _stored_fp(self, info: dict, obj: int) -> int:
        """get_freepointer(): the free pointer at obj, decoded as freelist_ptr_decode() does."""
        ptr_addr = obj + info["offset"]
        stored = int.from_bytes(self._core.read(ptr_addr, 8), "little")
        if not self._core.vm_info()["kconfig"] & st.KCONFIG_SLAB_FREELIST_HARDENED:
            return stored
        return stored ^ info["random"] ^ int.from_bytes((PAGE_OFFSET + ptr_addr).to_bytes(8, "little"), "big")

    def _free_error_text(self, reason, cache, info, slab, slab_phys, obj, found, caller, common) -> str:
        debug_f = info is not None and info["flags"] & st.SLAB_CONSISTENCY_CHECKS
        kinds = {
            st.SLAB_ERR_ALREADY_FREE: slub_report.FREE_ALREADY_FREE if debug_f else slub_report.FREE_DOUBLE,
            st.SLAB_ERR_NEVER_ALLOCATED: slub_report.FREE_ALREADY_FREE,
            st.SLAB_ERR_INVALID_POINTER: slub_report.FREE_INVALID_POINTER,
            st.SLAB_ERR_WRONG_CACHE: slub_report.FREE_WRONG_CACHE,
            st.SLAB_ERR_NOT_SLAB: slub_report.FREE_NOT_KMALLOC if caller == "kfree" else slub_report.FREE_NOT_SLAB,
        }
        kind = kinds.get(reason, slub_report.FREE_INVALID_POINTER)
        extra = {}
        other = None
        if reason == st.SLAB_ERR_WRONG_CACHE:
            other = self._caches[found].name if found in self._caches else None
        if slab is not None and info is not None and reason != st.SLAB_ERR_INVALID_POINTER:
            alloc_t, free_t = self._tracks(info, obj)
            extra = dict(alloc_track=alloc_t, free_track=free_t, sections=self._sections(info, obj, slab_phys),
                         obj_offset=obj - slab_phys, obj_fp=self._stored_fp(info, obj))
        return slub_report.free_error(cache, kind, PAGE_OFFSET + obj, tainted=self._slab_tainted,
                                      caller=caller.split("(")[0], other_cache=other, slab=slab,
                                      pfn=obj >> 12 if reason == st.SLAB_ERR_NOT_SLAB and obj >= 0 else None,
                                      **extra, **common)

    def slab_snapshot(self) -> list[dict]:
        """slabinfo rows, newest cache first."""
        rows = []
        for cid in reversed(self._cache_order):
            info = self._core.cache_info(cid)
            rows.append({"name": self._caches[cid].name, "active_objs": info["active_objects"],
                         "num_objs": info["total_objects"], "objsize": info["size"],
                         "objperslab": info["objects"], "pagesperslab": 1 << info["order"],
                         "active_slabs": info["nr_slabs"], "num_slabs": info["nr_slabs"]})
        return rows
