"""The pure-Python reference model: the same algorithms as the C core, file for file.

:class:`ModelCore` offers exactly the attributes of :class:`pyalloc._cbackend.CCore`.
"""

from __future__ import annotations

import threading

from . import buddy, introspect, kthread, memory, mlock, oncpu, pcp, pgtable, reclaim, sheaf, slab, slab_random, snapshot, stream, sysctl, trace
from ..threads import locked_entry, retarget, serialize
from .arena import Arena, clamp64
from ..errors import ECLOSED
from .._abi import CACHE_INFO_FIELDS, EBUSY, EINVAL, KCONFIG_DEFAULT, KCONFIG_MASK, MAX_PAGES, MAX_SEED, MIN_PAGES



def _signed(va: int) -> int:
    """A kernel virtual address as the int64 the C core receives."""
    va &= (1 << 64) - 1
    return va - (1 << 64) if va >> 63 else va


def _closed_entry(*args) -> int:
    return ECLOSED


class ModelCore:
    name = "model"

    def __init__(self, nr_pages: int, cpus: int, min_free_kbytes: int, seed: int = 0,
                 kconfig: int = KCONFIG_DEFAULT) -> None:
        if not (MIN_PAGES <= nr_pages <= MAX_PAGES and 1 <= cpus <= 4096 and -1 <= min_free_kbytes <= 1 << 40
                and 0 <= seed <= MAX_SEED and 0 <= kconfig and not kconfig & ~KCONFIG_MASK):
            from ..errors import raise_for
            raise_for(EINVAL, f"bad machine parameters: pages={nr_pages} cpus={cpus}")
        self._a = a = Arena(nr_pages, cpus, min_free_kbytes)
        a.seed = a.rand_state = seed
        a.kconfig = kconfig
        reclaim.init(a)
        buddy.free_boot_tail(a)
        # memblock_free_all() frees every page through __free_pages_core(), which counts PGFREE per page
        a.pgfree += sum(z.managed for z in a.zones)
        self.handle = a
        # the C core locks inside each entry; the model locks around each (threads.py),
        # with a plain lock: no model entry calls another
        self._lock = lock = threading.Lock()
        self.hot_alloc_pages = locked_entry(buddy.alloc_pages, lock)
        self.hot_free_pages = locked_entry(buddy.free_pages, lock)
        self.hot_kmalloc = locked_entry(slab.kmalloc, lock)
        self.hot_kfree = locked_entry(slab.kfree, lock)
        self.hot_kmem_cache_alloc = locked_entry(slab.kmem_cache_alloc, lock)
        self.hot_kmem_cache_free = locked_entry(slab.kmem_cache_free, lock)
        self.hot_kmalloc_on = locked_entry(oncpu.kmalloc_on, lock)
        self.hot_kfree_on = locked_entry(oncpu.kfree_on, lock)
        self.hot_kmem_cache_alloc_on = locked_entry(oncpu.kmem_cache_alloc_on, lock)
        self.hot_kmem_cache_free_on = locked_entry(oncpu.kmem_cache_free_on, lock)
        self.hot_alloc_pages_on = locked_entry(oncpu.alloc_pages_on, lock)
        self.hot_free_pages_on = locked_entry(oncpu.free_pages_on, lock)

    def alloc_pages_wide(self, gfp: int, order: int) -> int:
        return buddy.alloc_pages(self._a, clamp64(gfp), clamp64(order))

    def free_pages_wide(self, pfn: int, order: int) -> int:
        return buddy.free_pages(self._a, clamp64(pfn), clamp64(order))

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

    def drain_pages(self, cpu: int) -> int:
        """drain_local_pages() of one CPU, or drain_all_pages() for cpu -1."""
        a = self._a
        cpu = clamp64(cpu)
        if not -1 <= cpu < a.cpus:
            return EINVAL
        if cpu == -1:
            pcp.drain_all_pages(a, None)
        else:
            pcp.drain_pages(a, cpu)
        return 0

    def pcp_info(self, zid: int, cpu: int):
        """One CPU's per_cpu_pages of a zone, or EINVAL."""
        zid, cpu = clamp64(zid), clamp64(cpu)
        if not 0 <= zid < len(self._a.zones) or not 0 <= cpu < self._a.cpus:
            return EINVAL
        return pcp.info(self._a, zid, cpu)

    def zone_info(self, zid: int):
        """The zone itself: its fields carry the names of struct pa_zone_info."""
        return self._a.zones[zid]

    def vm_info(self) -> dict:
        a = self._a
        return {"nr_pages": a.nr_pages, "min_free_kbytes": a.min_free_kbytes, "pgfree": a.pgfree,
                "ticks": a.ticks, "slowpath_entries": a.slowpath_entries,
                "nr_slab_reclaimable": a.nr_slab_reclaimable, "nr_slab_unreclaimable": a.nr_slab_unreclaimable,
                "gfp_fixups": a.gfp_fixups, "last_cache": a.last_cache,
                "slab_fallback_gfp": a.slab_fallback_gfp, "cpu": a.cpu,
                "nr_page_table_pages": a.nr_page_table_pages, "nr_pgtable_pages_all": a.nr_pgtable_pages_all,
                "vmalloc_pages": a.vmalloc_pages, "seed": a.seed, "kconfig": a.kconfig}

    def check(self):
        """None, a message naming a broken invariant, or ECORRUPT (damage reported as events)."""
        return (buddy.check(self._a) or pgtable.check(self._a) or reclaim.check(self._a)
                or slab.check_slabs(self._a))

    # -- slab ---------------------------------------------------------------------

    def set_cpu(self, cpu: int) -> int:
        if not 0 <= cpu < self._a.cpus:
            return EINVAL
        self._a.cpu = cpu
        return 0

    def set_slab_merge(self, on: bool) -> int:
        self._a.slab_merge = bool(on)
        return 0

    def kmem_cache_create(self, size: int, align: int, flags: int, sheaf_capacity: int = 0) -> int:
        return slab.kmem_cache_create(self._a, size, align, flags, sheaf_capacity)

    def kmalloc_register(self, ktype: int, index: int, cid: int) -> int:
        return slab.kmalloc_register(self._a, ktype, index, cid)

    def random_kmalloc_init(self) -> int:
        return slab_random.random_kmalloc_init(self._a)

    def cache_random(self, cid: int):
        return slab_random.cache_random(self._a, cid)

    def kmem_cache_shrink(self, cid: int) -> int:
        return slab.kmem_cache_shrink(self._a, cid)

    def kmem_cache_destroy(self, cid: int) -> int:
        return slab.kmem_cache_destroy(self._a, cid)

    def cache_info(self, cid: int):
        info = slab.cache_info(self._a, cid)
        return None if info is None else dict(zip(CACHE_INFO_FIELDS, info))

    def cpu_slab_info(self, cid: int, cpu: int):
        return sheaf.cpu_slab_info(self._a, cid, cpu)

    def barn_info(self, cid: int):
        return sheaf.barn_info(self._a, cid)

    def ksize(self, phys: int) -> int:
        return slab.ksize(self._a, phys)

    def take_events(self) -> list:
        return slab.take_events(self._a)

    def slab_info(self, slab_phys: int):
        return slab.slab_info(self._a, slab_phys)

    # -- read-only walks (introspect.py) ------------------------------------------------

    def slab_pfns(self, cache: int):
        return introspect.slab_pfns(self._a, cache)

    def pageblock_mt(self) -> bytes:
        return introspect.pageblock_mt(self._a)

    def slab_view(self, pfn: int):
        return introspect.slab_view(self._a, pfn)
    def slab_pin(self, phys: int, op: int) -> int:
        return slab.slab_pin(self._a, phys, op)

    # -- page tables ------------------------------------------------------------------

    def vmalloc_pages(self, vaddr: int, nr: int, gfp: int):
        """(status, pfns), or (status, pages obtained before the failure)."""
        pfns = [0] * max(nr, 1)
        rc = pgtable.vmalloc_pages(self._a, _signed(vaddr), nr, gfp, pfns)
        return rc, (pfns[:nr] if rc == 0 else pfns[0])

    def vmap_pages(self, vaddr: int, pfns) -> int:
        return pgtable.vmap_pages(self._a, _signed(vaddr), len(pfns), list(pfns))

    def vunmap_pages(self, vaddr: int, nr: int) -> int:
        return pgtable.vunmap_pages(self._a, _signed(vaddr), nr)

    def free_vmalloc_pages(self, pfns) -> int:
        return pgtable.free_vmalloc_pages(self._a, list(pfns))

    def walk(self, vaddr: int) -> int:
        return pgtable.walk(self._a, _signed(vaddr))

    def pte(self, vaddr: int) -> int:
        return pgtable.pte_value(self._a, _signed(vaddr))

    # -- reclaim ------------------------------------------------------------------------

    def set_swap(self, nr_pages: int) -> int:
        return reclaim.set_swap(self._a, nr_pages)

    def mm_new(self, is_file: int) -> int:
        return reclaim.mm_new(self._a, is_file)

    def mm_release(self, mid: int) -> int:
        return reclaim.mm_release(self._a, mid)

    def mm_fault(self, mid: int, start: int, nr: int, gfp: int, flags: int):
        """(status, pages done)"""
        done = [0]
        rc = reclaim.mm_fault(self._a, mid, start, nr, gfp, flags, done)
        return rc, done[0]

    def mm_read(self, mid: int, offset: int, n: int, gfp: int):
        """bytes, or a negative status"""
        if type(n) is not int or not 0 <= n <= 1 << 40:
            return EINVAL
        buf = bytearray(n)
        rc = reclaim.mm_rw(self._a, mid, offset, n, buf, 0, gfp)
        return rc if rc else bytes(buf)

    def mm_write(self, mid: int, offset: int, data, gfp: int) -> int:
        return reclaim.mm_rw(self._a, mid, offset, len(data), bytes(data), 1, gfp)

    def mm_info(self, mid: int):
        return reclaim.mm_info(self._a, mid)

    def sync(self) -> int:
        return reclaim.sync(self._a)

    def drop_caches(self) -> int:
        return reclaim.drop_caches(self._a)

    # -- memory.py, sysctl.py ----------------------------------------------------------

    def munmap(self, mid: int, start: int, nr: int) -> int:
        return memory.munmap(self._a, mid, start, nr)

    def madvise(self, mid: int, start: int, nr: int, advice: int) -> int:
        return memory.madvise(self._a, mid, start, nr, advice)

    def mlock(self, mid: int, start: int, nr: int) -> int:
        return mlock.mlock(self._a, mid, start, nr)

    def munlock(self, mid: int, start: int, nr: int) -> int:
        return mlock.munlock(self._a, mid, start, nr)

    def mm_truncate(self, mid: int, nr_pages: int) -> int:
        return memory.mm_truncate_file(self._a, mid, nr_pages)

    def sysctl(self, index: int, value: int) -> int:
        return sysctl.sysctl(self._a, index, value)

    def counters(self) -> list:
        return list(self._a.ctr)

    def last_cost(self) -> list:
        return reclaim.last_cost(self._a)

    def set_oom_mode(self, mode: int) -> int:
        return reclaim.set_oom_mode(self._a, mode)

    def kthread_info(self) -> list:
        return kthread.kthread_info(self._a)

    def idle(self, us: int) -> int:
        return kthread.idle(self._a, us)
    # -- streams and tracing (stream.py, trace.py) -----------------------------------------

    def stream_run(self, ops, results, state, callers, caches, pos: int, end: int, trace_limit: int):
        """(status, pos): run ops from pos until the end or a stop (see csrc/stream.c)."""
        r = stream.Run(ops, results, state, callers, caches, pos, end, trace_limit)
        rc = stream.stream_run(self._a, r)
        return rc, r.pos

    def trace_start(self, comm: str, pid: int, gfp_table) -> int:
        if self._a.trace is not None:
            return EBUSY
        self._a.trace = trace.TraceBuffer()
        # comm, pid, the gfp print table, then the names of callers and caches by id
        self._trace_meta: tuple = (comm, pid, tuple(gfp_table), {}, {})
        return 0

    def trace_stop(self) -> None:
        self._a.trace = None

    def trace_name(self, what: int, ident: int, name: str) -> int:
        if self._a.trace is None or what not in (0, 1):
            return EINVAL
        self._trace_meta[3 + what][ident] = name
        return 0

    def trace_kfree(self, vaddr: int, caller: int) -> None:
        if self._a.trace is not None:
            self._a.trace.kfree(self._a, caller, vaddr - trace.PAGE_OFFSET)

    def trace_pending(self) -> int:
        return 0 if self._a.trace is None else len(self._a.trace.records)

    def trace_take(self) -> list:
        from ..machine.trace import format_records
        if self._a.trace is None:
            return []
        records, self._a.trace.records = self._a.trace.records, []
        comm, pid, table, callers, caches = self._trace_meta
        return [format_records(records, comm, pid, table, callers, caches)]

    # -- snapshots (snapshot.py) ------------------------------------------------------

    def snapshot_save(self, exhaustive: bool = False):
        try:
            return snapshot.save(self._a)
        except snapshot.Corrupt:
            return EBUSY

    def snapshot_load(self, data: bytes) -> int:
        a = self._a
        if a.caches or a.slabs or a.mms:
            return EBUSY
        try:
            snapshot.load(a, data)
        except snapshot.Corrupt:
            return EINVAL
        return 0

    def snapshot_check(self):
        """check() without the page tables, as a freshly loaded machine is judged."""
        return buddy.check(self._a) or reclaim.check(self._a) or slab.check_slabs(self._a)

    def snapshot_pages(self, batch: int = 4096, exhaustive: bool = False):
        chunk_pfns, chunk = [], []
        for pfn, data in snapshot.touched_pages(self._a):
            chunk_pfns.append(pfn)
            chunk.append(data)
            if len(chunk) == batch:
                yield chunk_pfns, b"".join(chunk)
                chunk_pfns, chunk = [], []
        if chunk:
            yield chunk_pfns, b"".join(chunk)

    def snapshot_put_pages(self, pfns, data: bytes | memoryview) -> int:
        a = self._a
        if any(not 0 <= p < a.nr_pages for p in pfns) or len(data) != len(pfns) << 12:
            return EINVAL
        view = memoryview(data)
        snapshot.load_pages(a, ((p, view[i << 12:(i + 1) << 12]) for i, p in enumerate(pfns)))
        return 0

    def close(self) -> None:
        # a closed core is never called again: its hot entries are retargeted below and
        # the Machine swaps it for _ClosedCore, so no entry reaches the missing arena
        self._a = self.handle = None  # type: ignore[assignment]
        for entry in (self.hot_alloc_pages, self.hot_free_pages, self.hot_kmalloc, self.hot_kfree,
                      self.hot_kmem_cache_alloc, self.hot_kmem_cache_free, self.hot_kmalloc_on,
                      self.hot_kfree_on, self.hot_kmem_cache_alloc_on, self.hot_kmem_cache_free_on,
                      self.hot_alloc_pages_on, self.hot_free_pages_on):
            retarget(entry, _closed_entry)


serialize(ModelCore)    # every entry under the machine's model lock, as every pa_* entry in C
