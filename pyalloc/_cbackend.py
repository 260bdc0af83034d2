"""The C core behind the common backend interface: the only module that touches ffi/lib.

The hot paths are exposed as ``hot_*`` (a cffi function) plus ``handle`` (the
machine pointer it takes first), so the shared layer makes one C call with no
Python frame in between; the cold paths are small methods.  :class:`pyalloc.model.ModelCore` has the same attributes with the
same meaning, so the shared layer cannot tell them apart.
"""

from __future__ import annotations

from . import _abi, errors
from ._abi import CACHE_INFO_FIELDS, KCONFIG_DEFAULT, VM_SYSCTL_READ, clamp64
from .model.sheaf import cpu_slab_dict

MM_INFO_FIELDS = ("alive", "is_file", "nr_pages", "size", "rss", "swapents", "nr_dirty", "pgtables_bytes")

try:
    from ._core import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only without a build
    raise ImportError(
        "pyalloc's C core is not built: install the package (python -m pip install -e '.[test]') "
        "or build in place with `python pyalloc/_build.py`; or use Machine(backend='model')"
    ) from exc


def check_build(lib, ffi, abi) -> None:
    """Refuse a core built from another pyalloc version or another pyalloc/_abi.py: its
    numbers (status codes, counters, flags) would silently mean other things."""
    built = (ffi.string(lib.pa_build_version()).decode(), ffi.string(lib.pa_build_abi_hash()).decode(),
             lib.pa_abi_version())
    want = (abi.__version__, abi.abi_hash(), abi.ABI_VERSION)
    if built != want:
        raise ImportError(f"stale build: pyalloc._core was built for version {built[0]} (ABI {built[1]}, "
                          f"{built[2]}), this is pyalloc {want[0]} (ABI {want[1]}, {want[2]}): rebuild with "
                          "python pyalloc/_build.py")


check_build(lib, ffi, _abi)


def _signed(va: int) -> int:
    """A kernel virtual address as the int64 the C core takes."""
    va &= (1 << 64) - 1
    return va - (1 << 64) if va >> 63 else va


class CCore:
    name = "c"

    def __init__(self, nr_pages: int, cpus: int, min_free_kbytes: int, seed: int = 0,
                 kconfig: int = KCONFIG_DEFAULT) -> None:
        out = ffi.new("pa_machine **")
        rc = lib.pa_machine_new(nr_pages, cpus, min_free_kbytes, seed, kconfig, out)
        if rc:
            if rc == errors.ENOMEM:
                raise MemoryError(f"cannot map {nr_pages} pages of simulated memory")
            errors.raise_for(rc, f"bad machine parameters: pages={nr_pages} cpus={cpus}")
        self._m = ffi.gc(out[0], lib.pa_machine_free)
        m = self._m
        # hot paths: the shared layer calls these with the handle as first argument
        self.handle = m
        self.hot_alloc_pages = lib.pa_alloc_pages
        self.hot_free_pages = lib.pa_free_pages
        self.hot_kmalloc = lib.pa_kmalloc
        self.hot_kfree = lib.pa_kfree
        self.hot_kmem_cache_alloc = lib.pa_kmem_cache_alloc
        self.hot_kmem_cache_free = lib.pa_kmem_cache_free
        self.hot_kmalloc_on = lib.pa_kmalloc_on
        self.hot_kfree_on = lib.pa_kfree_on
        self.hot_kmem_cache_alloc_on = lib.pa_kmem_cache_alloc_on
        self.hot_kmem_cache_free_on = lib.pa_kmem_cache_free_on
        self.hot_alloc_pages_on = lib.pa_alloc_pages_on
        self.hot_free_pages_on = lib.pa_free_pages_on
        self._state = ffi.new("struct pa_page_state *")
        self._vm = ffi.new("struct pa_vm_info *")
        self._done = ffi.new("int64_t *")
        self._ctr = ffi.new("uint64_t[]", lib.PA_NR_CTRS)

    # -- cold paths -----------------------------------------------------------

    def alloc_pages_wide(self, gfp: int, order: int) -> int:
        return lib.pa_alloc_pages(self._m, clamp64(gfp), clamp64(order))

    def free_pages_wide(self, pfn: int, order: int) -> int:
        return lib.pa_free_pages(self._m, clamp64(pfn), clamp64(order))

    def page_state(self, pfn: int):
        st = self._state
        lib.pa_page_state(self._m, clamp64(pfn), st)
        return st.state, st.head, st.order, st.kind, st.flags, st.refcount

    def drain_pages(self, cpu: int) -> int:
        return lib.pa_drain_pages(self._m, clamp64(cpu))

    def pcp_info(self, zid: int, cpu: int):
        """One CPU's per_cpu_pages of a zone (pa_pcp_info), or a negative status."""
        out = ffi.new("int64_t[8]")
        n = lib.pa_pcp_info(self._m, clamp64(zid), clamp64(cpu), out, ffi.NULL, 0)
        if n < 0:
            return n
        buf = ffi.new("int64_t[]", max(n, 1))
        lib.pa_pcp_info(self._m, zid, cpu, out, buf, n)
        return _pcp_dict(list(out), list(buf)[:n])

    def read(self, phys: int, n: int):
        if not isinstance(n, int) or n < 0:
            return errors.EINVAL
        if n > 1 << 40:
            return errors.EFAULT
        buf = bytearray(n)
        rc = lib.pa_read(self._m, clamp64(phys), n, ffi.from_buffer(buf))
        return rc if rc else bytes(buf)

    def write(self, phys: int, data) -> int:
        return lib.pa_write(self._m, clamp64(phys), ffi.from_buffer(data), len(data))

    def memset(self, phys: int, byte: int, n: int) -> int:
        return lib.pa_memset(self._m, clamp64(phys), clamp64(byte), clamp64(n))

    def zone_info(self, zid: int):
        """The zone's counters (struct pa_zone_info; the same field names as the model's Zone)."""
        z = ffi.new("struct pa_zone_info *")
        lib.pa_zone_info(self._m, zid, z)
        return z

    def vm_info(self) -> dict:
        v = self._vm
        lib.pa_vm_info(self._m, v)
        return {"nr_pages": v.nr_pages, "min_free_kbytes": v.min_free_kbytes, "pgfree": v.pgfree,
                "ticks": v.ticks, "slowpath_entries": v.slowpath_entries,
                "nr_slab_reclaimable": v.nr_slab_reclaimable, "nr_slab_unreclaimable": v.nr_slab_unreclaimable,
                "gfp_fixups": v.gfp_fixups, "last_cache": v.last_cache,
                "slab_fallback_gfp": v.slab_fallback_gfp, "cpu": v.cpu,
                "nr_page_table_pages": v.nr_page_table_pages, "nr_pgtable_pages_all": v.nr_pgtable_pages_all,
                "vmalloc_pages": v.vmalloc_pages, "seed": v.seed, "kconfig": v.kconfig}

    def check(self):
        """None, a message naming a broken invariant, or ECORRUPT (damage reported as events)."""
        msg = ffi.new("char[]", 512)
        rc = lib.pa_check(self._m, msg, 512)
        if rc == lib.PA_EINVARIANT:
            return ffi.string(msg).decode()
        if rc == lib.PA_ENOMEM:
            raise MemoryError("check(): out of host memory")
        return rc or None

    # -- slab ---------------------------------------------------------------------

    def set_cpu(self, cpu: int) -> int:
        return lib.pa_set_cpu(self._m, clamp64(cpu))

    def set_slab_merge(self, on: bool) -> int:
        return lib.pa_set_slab_merge(self._m, 1 if on else 0)

    def kmem_cache_create(self, size: int, align: int, flags: int, sheaf_capacity: int = 0) -> int:
        return lib.pa_kmem_cache_create(self._m, clamp64(size), clamp64(align), clamp64(flags),
                                        clamp64(sheaf_capacity))

    def kmalloc_register(self, ktype: int, index: int, cid: int) -> int:
        return lib.pa_kmalloc_register(self._m, ktype, index, cid)

    def random_kmalloc_init(self) -> int:
        return lib.pa_random_kmalloc_init(self._m)

    def cache_random(self, cid: int):
        random = ffi.new("uint64_t *")
        n = lib.pa_cache_random(self._m, clamp64(cid), random, ffi.NULL, 0)
        if n < 0:
            return None
        seq = ffi.new("int64_t[]", max(n, 1))
        lib.pa_cache_random(self._m, clamp64(cid), random, seq, n)
        return random[0], tuple(seq[0:n])

    def kmem_cache_shrink(self, cid: int) -> int:
        return lib.pa_kmem_cache_shrink(self._m, clamp64(cid))

    def kmem_cache_destroy(self, cid: int) -> int:
        return lib.pa_kmem_cache_destroy(self._m, clamp64(cid))

    def cache_info(self, cid: int):
        c = ffi.new("struct pa_cache_info *")
        if lib.pa_cache_info(self._m, clamp64(cid), c):
            return None
        return {name: getattr(c, name) for name in CACHE_INFO_FIELDS}

    def ksize(self, phys: int) -> int:
        return lib.pa_ksize(self._m, clamp64(phys))

    def slab_info(self, slab_phys: int):
        out = ffi.new("int64_t[4]")
        if lib.pa_slab_info(self._m, clamp64(slab_phys), out):
            return None
        return out[0], out[1], out[2], out[3] & 0xffffffffffffffff   # a virtual address, unsigned

    # -- read-only walks (introspect.c) -------------------------------------------------

    def slab_pfns(self, cache: int):
        """Head pfns of the slabs of a cache (all when cache < 0), in pfn order; EINVAL for a bad cache."""
        n = lib.pa_slab_pfns(self._m, clamp64(cache), ffi.NULL, 0)
        while n > 0:
            out = ffi.new("int64_t[]", n)
            got = lib.pa_slab_pfns(self._m, clamp64(cache), out, n)
            if got <= n:
                return list(out[0:got])
            n = got
        return [] if n == 0 else n

    def pageblock_mt(self) -> bytes:
        """The migratetype of every pageblock, one byte each."""
        n = (self.vm_info()["nr_pages"] + (1 << 9) - 1) >> 9
        out = ffi.new("uint8_t[]", max(n, 1))
        lib.pa_pageblock_mt(self._m, 0, n, out)
        return bytes(ffi.buffer(out, n))

    def slab_view(self, pfn: int):
        """((cache, order, objects, inuse, frozen, on_partial, cpu), object states) or EINVAL."""
        v = ffi.new("struct pa_slab_view *")
        states = ffi.new("uint8_t[]", 32768)
        rc = lib.pa_slab_view(self._m, clamp64(pfn), v, states, 32768)
        if rc:
            return rc
        return ((v.cache, v.order, v.objects, v.inuse, v.frozen, v.on_partial, v.cpu),
                bytes(ffi.buffer(states, v.objects)))
    def cpu_slab_info(self, cid: int, cpu: int):
        """A cpu's slab layers of a cache (see pyalloc.model.sheaf.cpu_slab_info), or None."""
        n = lib.pa_cpu_slab_info(self._m, clamp64(cid), clamp64(cpu), ffi.NULL, 0)
        if n < 0:
            return None
        out = ffi.new("int64_t[]", n)
        lib.pa_cpu_slab_info(self._m, clamp64(cid), clamp64(cpu), out, n)
        return cpu_slab_dict(list(out[0:n]))

    def barn_info(self, cid: int):
        out = ffi.new("int64_t[2]")
        if lib.pa_barn_info(self._m, clamp64(cid), out):
            return None
        return {"full": out[0], "empty": out[1]}

    def slab_pin(self, phys: int, op: int) -> int:
        return lib.pa_slab_pin(self._m, clamp64(phys), op)

    # -- page tables ------------------------------------------------------------------

    def vmalloc_pages(self, vaddr: int, nr: int, gfp: int):
        """(status, pfns), or (status, pages obtained before the failure)."""
        out = ffi.new("int64_t[]", max(nr, 1))
        rc = lib.pa_vmalloc_pages(self._m, _signed(vaddr), nr, gfp, out)
        return rc, (list(out[0:nr]) if rc == 0 else out[0])

    def vmap_pages(self, vaddr: int, pfns) -> int:
        arr = ffi.new("int64_t[]", [clamp64(p) for p in pfns] or [0])
        return lib.pa_vmap_pages(self._m, _signed(vaddr), len(pfns), arr)

    def vunmap_pages(self, vaddr: int, nr: int) -> int:
        return lib.pa_vunmap_pages(self._m, _signed(vaddr), nr)

    def free_vmalloc_pages(self, pfns) -> int:
        arr = ffi.new("int64_t[]", [clamp64(p) for p in pfns] or [0])
        return lib.pa_free_vmalloc_pages(self._m, arr, len(pfns))

    def walk(self, vaddr: int) -> int:
        return lib.pa_walk(self._m, _signed(vaddr))

    def pte(self, vaddr: int) -> int:
        return lib.pa_pte(self._m, _signed(vaddr))

    def take_events(self) -> list:
        ev = ffi.new("struct pa_slab_event[]", lib.PA_MAX_SLAB_EVENTS)
        n = lib.pa_take_events(self._m, ev, lib.PA_MAX_SLAB_EVENTS)
        return [(e.reason, e.cache, e.slab, e.object, e.start, e.end, e.expected, e.found) for e in ev[0:n]]

    # -- reclaim ----------------------------------------------------------------------

    def set_swap(self, nr_pages: int) -> int:
        return lib.pa_set_swap(self._m, clamp64(nr_pages))

    def mm_new(self, is_file: int) -> int:
        return lib.pa_mm_new(self._m, is_file)

    def mm_release(self, mid: int) -> int:
        return lib.pa_mm_release(self._m, clamp64(mid))

    def mm_fault(self, mid: int, start: int, nr: int, gfp: int, flags: int):
        """(status, pages done)"""
        done = self._done
        rc = lib.pa_mm_fault(self._m, clamp64(mid), clamp64(start), clamp64(nr), clamp64(gfp), clamp64(flags), done)
        return rc, done[0]

    def mm_read(self, mid: int, offset: int, n: int, gfp: int):
        """bytes, or a negative status"""
        if not isinstance(n, int) or not 0 <= n <= 1 << 40:
            return errors.EINVAL
        buf = bytearray(n)
        rc = lib.pa_mm_rw(self._m, clamp64(mid), clamp64(offset), n, ffi.from_buffer(buf), 0, clamp64(gfp))
        return rc if rc else bytes(buf)

    def mm_write(self, mid: int, offset: int, data, gfp: int) -> int:
        return lib.pa_mm_rw(self._m, clamp64(mid), clamp64(offset), len(data), ffi.from_buffer(data), 1,
                            clamp64(gfp))

    def mm_info(self, mid: int):
        info = ffi.new("struct pa_mm_info *")
        if lib.pa_mm_info(self._m, clamp64(mid), info):
            return None
        return {name: getattr(info, name) for name in MM_INFO_FIELDS}

    def sync(self) -> int:
        return lib.pa_sync(self._m)

    def drop_caches(self) -> int:
        return lib.pa_drop_caches(self._m)

    # -- memory.c, sysctl.c ------------------------------------------------------------

    def munmap(self, mid: int, start: int, nr: int) -> int:
        return lib.pa_munmap(self._m, clamp64(mid), clamp64(start), clamp64(nr))

    def madvise(self, mid: int, start: int, nr: int, advice: int) -> int:
        return lib.pa_madvise(self._m, clamp64(mid), clamp64(start), clamp64(nr), clamp64(advice))

    def mlock(self, mid: int, start: int, nr: int) -> int:
        return lib.pa_mlock(self._m, clamp64(mid), clamp64(start), clamp64(nr))

    def munlock(self, mid: int, start: int, nr: int) -> int:
        return lib.pa_munlock(self._m, clamp64(mid), clamp64(start), clamp64(nr))

    def mm_truncate(self, mid: int, nr_pages: int) -> int:
        return lib.pa_mm_truncate(self._m, clamp64(mid), clamp64(nr_pages))

    def sysctl(self, index: int, value: int) -> int:
        # a negative write stays a bad write: it must not become VM_SYSCTL_READ
        v = value if not isinstance(value, int) or value >= VM_SYSCTL_READ else VM_SYSCTL_READ - 1
        return lib.pa_sysctl(self._m, clamp64(index), clamp64(v) if v >= 0 else v)

    def counters(self) -> list:
        out = self._ctr
        lib.pa_counters(self._m, out, lib.PA_NR_CTRS)
        return list(out)

    def last_cost(self) -> list:
        out = ffi.new("uint64_t[]", lib.PA_NR_COSTS)
        lib.pa_last_cost(self._m, out, lib.PA_NR_COSTS)
        return list(out)

    def set_oom_mode(self, mode: int) -> int:
        return lib.pa_set_oom_mode(self._m, mode)

    def kthread_info(self) -> list:
        out = ffi.new("uint64_t[]", lib.PA_NR_KTHREAD_INFO)
        lib.pa_kthread_info(self._m, out, lib.PA_NR_KTHREAD_INFO)
        return list(out)

    def idle(self, us: int) -> int:
        return lib.pa_idle(self._m, us)
    # -- streams and tracing (stream.c, trace.c) ---------------------------------------

    def stream_run(self, ops, results, state, callers, caches, pos: int, end: int, trace_limit: int):
        """(status, pos): run ops from pos until the end or a stop (see csrc/stream.c)."""
        r = ffi.new("struct pa_run *")      # one per call: two threads may run streams at once
        # Every count is the buffer's own size in C elements (not len() of the Python object,
        # whose items may be narrower): the core checks them against each other.
        keep = (ffi.from_buffer("struct pa_op[]", ops), ffi.from_buffer("int64_t[]", results),
                ffi.from_buffer("uint8_t[]", state), ffi.from_buffer("int64_t[]", callers),
                ffi.from_buffer("int64_t[]", caches))
        r.ops, r.results, r.state, r.callers = keep[:4]
        r.caches = keep[4] if len(keep[4]) else ffi.NULL
        r.nr_ops = max(0, min(end, len(keep[0])))
        r.nr_results, r.nr_state = len(keep[1]), len(keep[2])
        r.nr_callers, r.nr_caches = len(keep[3]), len(keep[4])
        r.pos, r.trace_limit = pos, trace_limit
        rc = lib.pa_stream_run(self._m, r)
        return rc, r.pos

    def trace_start(self, comm: str, pid: int, gfp_table) -> int:
        rc = lib.pa_trace_start(self._m, comm.encode(), pid)
        for mask, name in gfp_table:
            rc = rc or lib.pa_trace_gfp_name(self._m, mask, name.encode())
        return rc

    def trace_stop(self) -> None:
        lib.pa_trace_stop(self._m)

    def trace_name(self, what: int, ident: int, name: str) -> int:
        return lib.pa_trace_name(self._m, what, ident, name.encode("utf-8", "replace"))

    def trace_kfree(self, vaddr: int, caller: int) -> None:
        lib.pa_trace_kfree(self._m, _signed(vaddr), caller)

    def trace_pending(self) -> int:
        return lib.pa_trace_pending(self._m)

    def trace_take(self) -> list:
        """Every pending trace record as ftrace text, in chunks (and the buffer emptied)."""
        size = 1 << 20
        buf = ffi.new("char[]", size)
        chunks = []
        while lib.pa_trace_pending(self._m):
            n = lib.pa_trace_take(self._m, buf, size)
            if n == 0:          # one line longer than the buffer: grow it
                size *= 4
                buf = ffi.new("char[]", size)
                continue
            chunks.append(str(ffi.buffer(buf, n), "utf-8", "replace"))   # decoded in place, no copy
        return chunks

    # -- snapshots (csrc/snapshot.c) ----------------------------------------------------

    def snapshot_save(self, exhaustive: bool = False):
        """The canonical core section (bytes), or a negative status."""
        flags = lib.PA_SNAP_EXHAUSTIVE if exhaustive else 0
        out = ffi.new("uint8_t **")
        # sized and written in one call under the machine lock: a thread mutating the
        # machine meanwhile cannot make the two walks disagree
        n = lib.pa_snapshot_take(self._m, out, flags)
        if n < 0:
            return n
        try:
            return ffi.unpack(ffi.cast("char *", out[0]), n)
        finally:
            lib.pa_snapshot_release(out[0])

    def snapshot_check(self):
        """check() without the page tables (see csrc/snapshot.c): None, a message, or ECORRUPT."""
        msg = ffi.new("char[]", 512)
        rc = lib.pa_snapshot_check(self._m, msg, 512)
        if rc == lib.PA_EINVARIANT:
            return ffi.string(msg).decode()
        if rc == lib.PA_ENOMEM:
            return "out of host memory while checking"
        return rc or None

    def snapshot_load(self, data: bytes) -> int:
        return lib.pa_snapshot_load(self._m, ffi.from_buffer(data), len(data))

    def snapshot_pages(self, batch: int = 4096, exhaustive: bool = False):
        """Chunks (pfns, bytes) of the pages that hold a non-zero byte, ascending pfn.  The bytes
        are a view of one reused buffer: use each chunk before asking for the next."""
        pfns = ffi.new("int64_t[]", batch)
        buf = bytearray(batch << 12)
        nxt = ffi.new("int64_t *")
        start = 0
        while True:
            n = lib.pa_snapshot_pages(self._m, start, pfns, ffi.from_buffer(buf), batch, nxt,
                                      lib.PA_SNAP_EXHAUSTIVE if exhaustive else 0)
            if n < 0:
                errors.raise_for(n, "snapshot of memory")
            if n:
                yield ffi.unpack(pfns, n), memoryview(buf)[:n << 12]
            if n < batch:
                return
            start = nxt[0]

    def snapshot_put_pages(self, pfns, data: bytes | memoryview) -> int:
        if len(data) != len(pfns) << 12:
            return errors.EINVAL
        return lib.pa_snapshot_put_pages(self._m, ffi.new("int64_t[]", list(pfns)), ffi.from_buffer(data),
                                         len(pfns))

    def close(self) -> None:
        m, self._m = self._m, None
        self.handle = None
        if m is not None:
            # the arena goes now; the small machine record stays until the last
            # handle dies (ffi.gc), so a thread still calling in gets PA_ECLOSED
            lib.pa_machine_close(m)


def _pcp_dict(vals: list, words: list) -> dict:
    keys = ("count", "high", "batch", "high_min", "high_max", "free_count", "flags", "alloc_factor")
    info: dict = dict(zip(keys, vals))
    lists = []
    i = 0
    while i < len(words):
        order, mt, n = words[i:i + 3]
        lists.append((order, mt, words[i + 3:i + 3 + n]))
        i += 3 + n
    info["lists"] = lists
    return info


class LineParser:
    """csrc/trace_parse.c behind the interface of pyalloc.model.trace_parse.LineParser."""

    REC_CAP = 1 << 14
    TEXT_CAP = 4 << 20

    def __init__(self) -> None:
        self._p = ffi.gc(lib.pa_tparse_new(), lib.pa_tparse_free)
        if self._p == ffi.NULL:
            raise MemoryError("pa_tparse_new")
        self._rec = ffi.new("uint64_t[]", self.REC_CAP * _abi.TPARSE_WORDS)
        self._text = ffi.new("uint8_t[]", self.TEXT_CAP)
        self._counts = ffi.new("int64_t[2]")
        self._rec_view = memoryview(ffi.buffer(self._rec)).cast("B").cast("Q")
        self._text_view = ffi.buffer(self._text)

    @property
    def lineno(self) -> int:
        return int(lib.pa_tparse_lineno(self._p))

    @property
    def ignored(self) -> int:
        return int(lib.pa_tparse_ignored(self._p))

    def feed(self, data: bytes, final: bool = False) -> tuple[list[int], bytes]:
        """The records of the lines *data* completes (all of them when *final*), and their text."""
        recs: list[int] = []
        text = b""
        counts, words = self._counts, _abi.TPARSE_WORDS
        src = ffi.from_buffer(data)
        pos, n = 0, len(data)
        while True:
            used = lib.pa_tparse_feed(self._p, src + pos, n - pos, int(final), self._rec, self.REC_CAP,
                                      self._text, self.TEXT_CAP, counts, counts + 1)
            if used < 0:
                raise AssertionError("pa_tparse_feed: capacities")     # pragma: no cover
            nrec, ntext = counts[0], counts[1]
            if nrec:
                chunk = self._rec_view[:nrec * words].tolist()
                if text:
                    base = len(text)
                    for k in range(7, len(chunk), words):
                        chunk[k] += base
                        chunk[k + 2] += base
                        chunk[k + 4] += base
                recs += chunk
                text += self._text_view[:ntext]
            pos += used
            if pos >= n and not (final and lib.pa_tparse_pending(self._p)):
                return recs, text
