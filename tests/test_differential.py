"""Differential test: the C core and the model driven by one random operation
stream must agree on every answer, every exception (type and text), every
/proc file and every dmesg line, and pass check() after every step.

Known divergences would be listed in ALLOWED_DIFFERENCES with a reason; the
list is empty and should stay so.
"""

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

import pyalloc
from conftest import c_core_available

pytestmark = pytest.mark.skipif(not c_core_available(), reason="the C core is not built")

ALLOWED_DIFFERENCES: dict = {}

GFPS = [
    "GFP_KERNEL", "GFP_KERNEL|__GFP_ZERO", "GFP_KERNEL|__GFP_COMP", "GFP_HIGHUSER_MOVABLE",
    "GFP_KERNEL|__GFP_RECLAIMABLE", "GFP_ATOMIC", "GFP_NOWAIT", "GFP_KERNEL|__GFP_NOWARN",
    "GFP_DMA", "GFP_KERNEL|GFP_DMA32", "GFP_KERNEL|__GFP_MEMALLOC", "GFP_ATOMIC|__GFP_NOMEMALLOC",
    "GFP_KERNEL|__GFP_HIGH", "GFP_KERNEL|__GFP_NOFAIL", "GFP_ATOMIC|__GFP_NOFAIL",
    "GFP_KERNEL|__GFP_RETRY_MAYFAIL", "GFP_KERNEL_ACCOUNT", "GFP_TRANSHUGE",
]
VIEWS = ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat", "slabinfo", "vmallocinfo",
         "pressure/memory", "sys/vm/min_free_kbytes", "sys/vm/watermark_scale_factor")
PATHS = ["/var/log/syslog", "/data/db", "/tmp/x"]
VSIZES = [0, 1, 4096, 4097, 3 * 4096, 64 << 10, 600 * 4096, 30 << 20]
KGFPS = ["GFP_KERNEL", "GFP_KERNEL|__GFP_ZERO", "GFP_KERNEL_ACCOUNT", "GFP_KERNEL|__GFP_RECLAIMABLE",
         "GFP_KERNEL|GFP_DMA", "GFP_ATOMIC", "GFP_KERNEL|__GFP_NOWARN", "GFP_KERNEL|GFP_DMA32",
         "GFP_NOWAIT", "GFP_KERNEL|__GFP_NOFAIL"]
KSIZES = [0, 1, 8, 24, 64, 96, 100, 192, 200, 1000, 3000, 4096, 8192, 9000, 70000, 5 << 20]
CACHE_FLAGS = ["0", "SLAB_HWCACHE_ALIGN", "SLAB_RED_ZONE", "SLAB_POISON", "SLAB_RED_ZONE|SLAB_POISON",
               "SLAB_CONSISTENCY_CHECKS|SLAB_RED_ZONE|SLAB_POISON|SLAB_STORE_USER", "SLAB_RECLAIM_ACCOUNT"]
MEM = (16 << 20) + (8 << 20) + 3 * 4096       # DMA full, a small DMA32 with an unaligned end


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:       # compare what each backend raised, type and text
        return ("raise", type(exc).__name__, str(exc))


def build_stream(steps):
    """A stream from hypothesis' integers: allocations, frees (some twice, some of NULL), krealloc, vmalloc."""
    s = pyalloc.Stream()
    live = []          # (kind, handle, order)
    for op, a, b in steps:
        if op <= 2:
            live.append(("k", s.kmalloc(KSIZES[a], KGFPS[b], cpu=b % 2 or None, caller=f"site{a % 3}"), 0))
        elif op == 3 and live:
            kind, h, order = live[a % len(live)]
            if b == 0:
                s.kfree(None)
            elif kind in "kc":
                s.kfree(h, caller="free")
                if b > 2:
                    live.remove((kind, h, order))
            elif kind == "p":
                s.free_pages(h, order if b != 1 else order + 1)
                if b > 2:
                    live.remove((kind, h, order))
            elif kind == "v":
                s.vfree(h)
        elif op == 4 and live and live[a % len(live)][0] == "k":
            kind, h, order = live.pop(a % len(live))
            live.append(("k", s.krealloc(h, KSIZES[b], KGFPS[b % 3]), 0))
        elif op in (5, 6):
            order = [0, 0, 1, 2, 3, 9, 10, 11][a % 8]
            live.append(("p", s.alloc_pages(GFPS[a + b % 3], order), order))
        elif op == 7:
            live.append(("c", s.kmem_cache_alloc("streamcache", KGFPS[b % 3], size=40 + a), 0))
        elif op == 8 and live and live[a % len(live)][0] == "c":
            kind, h, order = live.pop(a % len(live))
            s.kmem_cache_free("streamcache", h)
        elif op == 9:
            live.append(("v", s.vmalloc(VSIZES[a % 7], "GFP_KERNEL"), 0))
        elif op == 10:
            procs = [h for kind, h, _ in live if kind == "s"]
            if procs and b % 3:
                h = procs[a % len(procs)]
                if b % 3 == 1:
                    s.touch(h, [1, 300, 3000, 7000][a % 4])
                else:
                    s.exit(h)
            else:
                live.append(("s", s.spawn(f"proc{a}"), 0))
        elif op == 11:
            [s.read_file, s.write_file][b % 2](PATHS[a % 3], [10, 500, 4000][b % 3])
    return s, live


def _on_cpu(m, cpu, fn, *args):
    with m.on_cpu(cpu):
        return fn(*args)


class TwoBackends(RuleBasedStateMachine):
    blocks = Bundle("blocks")
    freed = Bundle("freed")
    objects = Bundle("objects")
    caches = Bundle("caches")
    vobjects = Bundle("vobjects")
    SLUB_DEBUG = ""
    SEED = 0
    KCONFIG: dict | None = None     # the real 6.18 machine's: freelists random and hardened

    def __init__(self):
        super().__init__()
        kw = dict(mem=MEM, cpus=2, slub_debug=self.SLUB_DEBUG, swap="2M", seed=self.SEED, kconfig=self.KCONFIG)
        self.c = pyalloc.Machine(backend="c", **kw)
        self.py = pyalloc.Machine(backend="model", **kw)
        self.bound: dict = {}

    def here(self, m, cache):
        """The cache as the machine *m* knows it: after a snapshot swap the machines are new."""
        if cache is None:
            return None
        key = (id(cache), m.backend)
        cur = self.bound.get(key, cache)
        if cur._machine is not m:
            clone = pyalloc.Cache.__new__(pyalloc.Cache)
            for slot in pyalloc.Cache.__slots__:
                setattr(clone, slot, getattr(cur, slot))
            clone._machine = m
            self.bound[key] = cur = clone
        return cur

    def both_with(self, name, pair, *args, **kw):
        """Call a method whose first argument differs per machine (a Cache)."""
        a, b = (outcome(lambda: getattr(m, name)(self.here(m, cache), *args, **kw))
                for m, cache in zip((self.c, self.py), pair))
        assert a == b, f"{name}{args}: c={a!r} model={b!r}"
        return a

    # -- slab ------------------------------------------------------------------

    @rule(target=objects, size=st.sampled_from(KSIZES), gfp=st.sampled_from(KGFPS), cpu=st.sampled_from([None, 0, 1, 2]),
          caller=st.sampled_from([None, None, "a.c:1", "b.c:2"]))
    def kmalloc(self, size, gfp, cpu, caller):
        r = self.both("kmalloc", size, gfp, cpu, caller)
        return (None, r[1] if r[0] == "ok" else None)

    @rule(target=objects, pair=caches, gfp=st.sampled_from(KGFPS[:3] + ["GFP_ATOMIC"]),
          cpu=st.sampled_from([None, 0, 1]))
    def cache_alloc(self, pair, gfp, cpu):
        r = self.both_with("kmem_cache_alloc", pair, gfp, cpu=cpu)
        return (pair, r[1] if r[0] == "ok" else None)

    @rule(obj=objects, cpu=st.sampled_from([None, 0, 1]), twice=st.booleans())
    def free_object(self, obj, cpu, twice):
        pair, addr = obj
        for _ in range(2 if twice else 1):
            if pair is None:
                self.both("kfree", addr, cpu)
            else:
                self.both_with("kmem_cache_free", pair, addr, cpu=cpu)

    @rule(obj=objects, pair=caches)
    def free_to_wrong_cache(self, obj, pair):
        self.both_with("kmem_cache_free", pair, obj[1])

    @rule(obj=objects, delta=st.integers(-16, 16))
    def kfree_near(self, obj, delta):
        if obj[1] is not None:
            self.both("kfree", obj[1] + delta)

    @rule(target=objects, obj=objects, size=st.sampled_from(KSIZES[:12]), gfp=st.sampled_from(KGFPS[:3]))
    def krealloc(self, obj, size, gfp):
        if obj[0] is not None:
            return obj
        r = self.both("krealloc", obj[1], size, gfp)
        return (None, r[1] if r[0] == "ok" else None)

    @rule(obj=objects, offset=st.integers(-16, 300), data=st.binary(min_size=1, max_size=24))
    def scribble(self, obj, offset, data):
        # writes into, around and past objects: red zones, poison, free pointers
        if obj[1] is not None and obj[1] > pyalloc.ZERO_SIZE_PTR:
            self.both("write", obj[1] + offset, data)
            self.both("read", obj[1] + offset, len(data))

    @rule(target=caches, size=st.integers(1, 600), align=st.sampled_from([0, 8, 64]),
          flags=st.sampled_from(CACHE_FLAGS), name=st.sampled_from(["a", "b", "dup", "x" * 20]))
    def create_cache(self, size, align, flags, name):
        a = outcome(self.c.kmem_cache_create, name, size, align, flags)
        b = outcome(self.py.kmem_cache_create, name, size, align, flags)
        assert (a[0], a[0] == "ok" or a[1:]) == (b[0], b[0] == "ok" or b[1:])
        if a[0] == "ok":
            ca, cb = a[1], b[1]
            assert (ca.size, ca.objects, ca.order, ca.align) == (cb.size, cb.objects, cb.order, cb.align)
            return (ca, cb)
        return (None, None)

    @rule(target=caches, size=st.integers(1, 600), flags=st.sampled_from(CACHE_FLAGS[:3]),
          cap=st.sampled_from([0, 1, 2, 5, 32, -1, pyalloc._abi.SHEAF_CAPACITY_MAX + 1, "32"]),
          name=st.sampled_from(["sa", "sb"]))
    def create_sheaf_cache(self, size, flags, cap, name):
        # one call site for both, so a report's stack (the caller's line) is the same text
        a, b = (outcome(lambda m=m: m.kmem_cache_create(name, size, 0, flags, sheaf_capacity=cap))
                for m in (self.c, self.py))
        assert (a[0], a[0] == "ok" or a[1:]) == (b[0], b[0] == "ok" or b[1:])
        return (a[1], b[1]) if a[0] == "ok" else (None, None)

    @rule(pair=caches, n=st.integers(1, 80), cpu=st.sampled_from([0, 1]), free_cpu=st.sampled_from([0, 1]))
    def per_cpu_churn(self, pair, n, cpu, free_cpu):
        """n objects allocated on one CPU and freed (newest first) on one CPU: cpu partial
        chains, remote frees and sheaf exchanges with the barn on both backends alike."""
        if pair[0] is None:
            return
        got = [self.both_with("kmem_cache_alloc", pair, "GFP_KERNEL", cpu=cpu) for _ in range(n)]
        for r in reversed(got[::2]):
            if r[0] == "ok" and r[1] is not None:
                self.both_with("kmem_cache_free", pair, r[1], cpu=free_cpu)

    @rule(pair=caches)
    def per_cpu_state_agrees(self, pair):
        if pair[0] is None or pair[0]._id < 0:
            return
        a = [self.c._core.cpu_slab_info(self.here(self.c, pair[0])._id, cpu) for cpu in range(2)]
        b = [self.py._core.cpu_slab_info(self.here(self.py, pair[1])._id, cpu) for cpu in range(2)]
        assert a == b
        assert self.c._core.barn_info(self.here(self.c, pair[0])._id) == \
            self.py._core.barn_info(self.here(self.py, pair[1])._id)

    @rule(pair=caches)
    def shrink(self, pair):
        if pair[0] is not None:
            self.both_with("kmem_cache_shrink", pair)

    @rule(pair=caches)
    def destroy(self, pair):
        if pair[0] is not None:
            self.both_with("kmem_cache_destroy", pair)

    # -- vmalloc -----------------------------------------------------------------

    @rule(target=vobjects, size=st.sampled_from(VSIZES), zero=st.booleans(),
          gfp=st.sampled_from(["GFP_KERNEL", "GFP_KERNEL|__GFP_NOWARN", "GFP_ATOMIC"]))
    def vmalloc(self, size, zero, gfp):
        r = self.both("vzalloc" if zero else "vmalloc", size, gfp, "differential+0x0/0x1")
        return ("v", r[1] if r[0] == "ok" else None)

    @rule(target=vobjects, size=st.sampled_from(VSIZES[:7] + [5 << 20]))
    def kvmalloc(self, size):
        r = self.both("kvmalloc", size, "GFP_KERNEL", "differential+0x0/0x1")
        return ("kv", r[1] if r[0] == "ok" else None)

    @rule(obj=vobjects, twice=st.booleans())
    def vfree_like(self, obj, twice):
        kind, addr = obj
        fn = "kvfree" if kind == "kv" else "vfree"
        for _ in range(2 if twice else 1):
            self.both(fn, addr)

    @rule(target=vobjects, blocks=st.lists(blocks, min_size=1, max_size=4))
    def vmap(self, blocks):
        pfns = [pfn for pfn, order in blocks if pfn is not None]
        r = self.both("vmap", pfns, "differential+0x0/0x1")
        return ("vmap", r[1] if r[0] == "ok" else None)

    @rule(obj=vobjects)
    def vunmap(self, obj):
        self.both("vunmap", obj[1])

    @rule(obj=vobjects, offset=st.integers(-8, 70 << 10), n=st.integers(0, 9000))
    def vaccess(self, obj, offset, n):
        # reads and writes across page boundaries, past the end, into guard pages
        if obj[1] is None or obj[1] <= pyalloc.ZERO_SIZE_PTR:
            return
        addr = obj[1] + offset
        self.both("read", addr, n)
        self.both("memset", addr, (offset & 0xff), n)
        self.both("vmalloc_to_page", addr)

    # -- processes, files, reclaim ------------------------------------------------

    pids = Bundle("pids")

    @rule(target=pids, name=st.sampled_from(["bash", "postgres", "a-very-long-process-name"]),
          adj=st.sampled_from([0, 0, 500, -1000]))
    def spawn(self, name, adj):
        r = self.both("spawn", name, adj)
        return r[1] if r[0] == "ok" else -1

    @rule(pid=pids, pages=st.sampled_from([0, 1, 17, 300, 1500, 4000, 7000]))
    def touch(self, pid, pages):
        self.both("touch", pid, pages)
        assert self.c.last_alloc == self.py.last_alloc
        assert self.c.processes() == self.py.processes()

    @rule(pid=pids, start=st.sampled_from([0, 5, 300, 1500, 4000]), pages=st.sampled_from([0, 1, 64, 700]))
    def touch_range(self, pid, start, pages):
        self.both("touch", pid, pages, start)
        assert self.c.processes() == self.py.processes()

    @rule(pid=pids, start=st.integers(-1, 5000), pages=st.sampled_from([-1, 0, 1, 33, 500, 7000]),
          how=st.sampled_from(["munmap", "MADV_DONTNEED", "MADV_COLD", "MADV_PAGEOUT", "MADV_FREE"]))
    def give_back(self, pid, start, pages, how):
        """munmap and madvise, good and bad ranges and advice (memory.c / model/memory.py)."""
        if how == "munmap":
            self.both("munmap", pid, start, pages)
        else:
            self.both("madvise", pid, start, pages, how)
        assert self.c.processes() == self.py.processes()
        assert self.c.reclaim_counters() == self.py.reclaim_counters()

    @rule(pid=pids, start=st.integers(-1, 5000), pages=st.sampled_from([-1, 0, 1, 33, 500, 7000]),
          lock=st.booleans())
    def lock_or_unlock(self, pid, start, pages, lock):
        """mlock and munlock, good and bad ranges (mlock.c / model/mlock.py)."""
        self.both("mlock" if lock else "munlock", pid, start, pages)
        assert self.c.processes() == self.py.processes()
        assert self.c.reclaim_counters() == self.py.reclaim_counters()

    @rule(path=st.sampled_from(PATHS + ["/nope"]), pages=st.sampled_from([-1, 0, 3, 100, 2000]), unlink=st.booleans())
    def truncate_or_unlink(self, path, pages, unlink):
        if unlink:
            self.both("unlink", path)
        else:
            self.both("truncate", path, pages)
            if path in self.c._files:
                assert self.c.file_info(path) == self.py.file_info(path)

    @rule(name=st.sampled_from(["vm.swappiness", "vm/min_free_kbytes", "vm.watermark_scale_factor",
                                "vm.dirty_ratio", "vm.extfrag_threshold", "vm.compact_memory", "vm.drop_caches",
                                "vm.nope", "kernel.swappiness"]),
          value=st.sampled_from([None, -1, 0, 1, 2, 3, 4, 5, 100, 200, 201, 1000, 3001, 60000]))
    def sysctl(self, name, value):
        self.both("sysctl", name, value)
        assert self.c.sysctls() == self.py.sysctls()
        assert self.c.snapshot()["zones"] == self.py.snapshot()["zones"]

    @rule(pid=pids)
    def exit_process(self, pid):
        self.both("exit", pid)

    @rule(pid=pids, offset=st.integers(-1, 300 * 4096), data=st.binary(min_size=0, max_size=5000))
    def user_rw(self, pid, offset, data):
        self.both("user_write", pid, offset, data)
        self.both("user_read", pid, offset, len(data) + 1)

    @rule(path=st.sampled_from(PATHS), pages=st.sampled_from([0, 1, 50, 900, 3000]), dirty=st.booleans())
    def file_pages(self, path, pages, dirty):
        self.both("write_file" if dirty else "read_file", path, pages)
        assert self.c.last_alloc == self.py.last_alloc

    @rule(path=st.sampled_from(PATHS), offset=st.integers(-1, 2000 * 4096), data=st.binary(min_size=0, max_size=9000))
    def file_rw(self, path, offset, data):
        self.both("file_write", path, offset, data)
        self.both("file_read", path, offset, len(data))
        self.both("file_read", path, offset, len(data) + 4096)

    @rule(which=st.sampled_from(["sync", "drop_caches"]))
    def writeback(self, which):
        self.both(which)

    @rule(us=st.sampled_from([-1, 0, 100, 5_000, 5_000_000, 31_000_000]))
    def idle(self, us):
        """Simulated time passes: kswapd, the flusher's background and kupdate writeback."""
        self.both("idle", us)
        assert self.c.reclaim_counters() == self.py.reclaim_counters()

    @rule(obj=objects, delta=st.integers(-8, 300))
    def views_agree(self, obj, delta):
        """The read-only walks (introspect.c / model/introspect.py) and every view built on them."""
        from pyalloc.tools import export
        from pyalloc import helpers, plot
        assert export.render_tree(self.c) == export.render_tree(self.py)
        assert self.c._core.slab_pfns(-1) == self.py._core.slab_pfns(-1)
        for pfn in self.c._core.slab_pfns(-1):
            assert self.c._core.slab_view(pfn) == self.py._core.slab_view(pfn)
        assert plot.pageblock_map(self.c) == plot.pageblock_map(self.py)
        if obj[1] is not None and obj[1] > pyalloc.ZERO_SIZE_PTR:
            a, b = (outcome(lambda m=m: repr(helpers.slab_object_info(m, obj[1] + delta))) for m in (self.c, self.py))
            assert a == b

    # -- streams ---------------------------------------------------------------------

    @rule(steps=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 15), st.integers(0, 9)), max_size=30),
          mode=st.sampled_from(["record", "raise"]))
    def run_stream(self, steps, mode):
        s, live = build_stream(steps)
        ra, rb = (outcome(m.run, s, mode) for m in (self.c, self.py))
        if ra[0] == "ok":
            assert rb[0] == "ok", rb
            a, b = ra[1], rb[1]
            assert list(a.raw) == list(b.raw) and a.state == b.state
            assert [(i, type(e).__name__, str(e)) for i, e in a.errors] == \
                   [(i, type(e).__name__, str(e)) for i, e in b.errors]
        else:
            assert ra == rb

    @rule(cross=st.booleans())
    def snapshot_and_continue(self, cross):
        """Save both mid-stream: the two files hold the same canonical bytes; load each on
        a backend (crosswise or not) and go on with the loaded machines."""
        from pyalloc.machine import snapshot
        blob_c, blob_py = snapshot.to_bytes(self.c), snapshot.to_bytes(self.py)
        sec_c, sec_py = (snapshot._read_sections(b, "t") for b in (blob_c, blob_py))
        for tag in (b"CORE", b"MEM ", b"PYST"):
            assert [bytes(x) for x in sec_c.get(tag, [])] == [bytes(x) for x in sec_py.get(tag, [])], tag
        before = {v: self.c.proc(v) for v in VIEWS}
        new_c = snapshot.read(blob_py if cross else blob_c, "c")
        new_py = snapshot.read(blob_c if cross else blob_py, "model")
        for m in (new_c, new_py):
            assert {v: m.proc(v) for v in VIEWS} == before
        self.c.close()
        self.py.close()
        self.c, self.py = new_c, new_py

    @rule()
    def check_both(self):
        a, b = outcome(self.c.check), outcome(self.py.check)
        assert a == b

    def both(self, name, *args):
        # one call site for both machines: with caller tracking on, the caller is this line
        a, b = (outcome(getattr(m, name), *args) for m in (self.c, self.py))
        assert a == b or ALLOWED_DIFFERENCES.get(name), f"{name}{args}: c={a!r} model={b!r}"
        return a

    @rule(target=blocks, gfp=st.sampled_from(GFPS), order=st.sampled_from([0] * 6 + [1, 2, 3, 4, 5, 9, 10, 11]),
          cpu=st.sampled_from([None, None, 0, 1, 2]))
    def alloc(self, gfp, order, cpu):
        r = self.both("alloc_pages", gfp, order, cpu)
        if r[0] == "ok" and r[1] is not None:
            return (r[1], order)
        return (None, order)

    @rule(target=blocks, gfp=st.sampled_from(GFPS), order=st.sampled_from([0, 0, 0, 1, 3, 9]), cpu=st.sampled_from([0, 1]))
    def alloc_on_cpu(self, gfp, order, cpu):
        # per-cpu page lists: the CPU decides which list a page comes from
        a, b = (outcome(lambda m=m: _on_cpu(m, cpu, m.alloc_pages, gfp, order)) for m in (self.c, self.py))
        assert a == b, f"alloc_pages on cpu {cpu}: c={a!r} model={b!r}"
        return (a[1] if a[0] == "ok" else None, order)

    @rule(target=freed, block=consumes(blocks), cpu=st.sampled_from([0, 1]))
    def free_on_cpu(self, block, cpu):
        pfn, order = block
        if pfn is not None:
            a, b = (outcome(lambda m=m: _on_cpu(m, cpu, m.free_pages, pfn, order)) for m in (self.c, self.py))
            assert a == b, f"free_pages on cpu {cpu}: c={a!r} model={b!r}"
        return block

    @rule(cpu=st.sampled_from([None, 0, 1, 2, -1]))
    def drain_pages(self, cpu):
        self.both("drain_pages", cpu)
        for zid in range(3):
            for c in range(2):
                assert self.c._core.pcp_info(zid, c) == self.py._core.pcp_info(zid, c)

    @rule(target=freed, block=consumes(blocks), cpu=st.sampled_from([None, None, 0, 1]))
    def free(self, block, cpu):
        pfn, order = block
        if pfn is not None:
            self.both("free_pages", pfn, order, cpu)   # may have been freed already through a stale copy
        return block

    @rule(block=freed)
    def free_again(self, block):
        # a double free, or a valid free when the block was handed out again
        pfn, order = block
        if pfn is not None:
            self.both("free_pages", pfn, order)

    @rule(pfn=st.integers(-2, MEM // 4096 + 2), order=st.integers(-1, 11), cpu=st.sampled_from([None, 1, -1, 9]))
    def free_anything(self, pfn, order, cpu):
        # mostly invalid frees; an exact hit on a live block would free it on both alike
        self.both("free_pages", pfn, order, cpu)

    @rule(block=blocks, delta=st.integers(1, 7), order=st.integers(0, 3))
    def free_interior_or_wrong_order(self, block, delta, order):
        pfn, border = block
        if pfn is not None and (delta < 1 << border or order != border):
            target = pfn + (delta % (1 << border)) if border else pfn
            if target == pfn and order == border:
                return
            self.both("free_pages", target, order)

    @rule(block=blocks, offset=st.integers(0, 8191), data=st.binary(min_size=0, max_size=64))
    def write_read(self, block, offset, data):
        pfn, order = block
        if pfn is None:
            return
        addr = pyalloc.PAGE_OFFSET + pfn * 4096 + offset % (4096 << order)
        self.both("write", addr, data)
        self.both("read", addr, len(data) + 3)

    @rule(addr=st.integers(pyalloc.PAGE_OFFSET + MEM - 64, pyalloc.PAGE_OFFSET + MEM + 64), n=st.integers(-1, 128))
    def access_near_the_end(self, addr, n):
        self.both("read", addr, n)
        self.both("memset", addr, 0x5a, n)

    @invariant()
    def same_state(self):
        for view in VIEWS:
            assert self.c.proc(view) == self.py.proc(view), view
        assert self.c.dmesg() == self.py.dmesg()
        a, b = outcome(self.c.check), outcome(self.py.check)
        assert a == b
        la, lb = self.c.dmesg(), self.py.dmesg()
        diff = next(((x, y) for x, y in zip(la, lb) if x != y), (len(la), len(lb)))
        assert la == lb, f"dmesg differs: c={diff[0]!r} model={diff[1]!r}"

    def teardown(self):
        self.c.close()
        self.py.close()


TwoBackends.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_two_backends_agree = TwoBackends.TestCase


class TwoBackendsDebug(TwoBackends):
    SLUB_DEBUG = "FZPU"


TwoBackendsDebug.TestCase.settings = TwoBackends.TestCase.settings
test_two_backends_agree_slub_debug = TwoBackendsDebug.TestCase


class TwoBackendsRandomKmalloc(TwoBackends):
    """Another seed, and the kmalloc-rnd-NN copies chosen by each call's caller."""
    SEED = 20251206
    KCONFIG = {"RANDOM_KMALLOC_CACHES": True}


TwoBackendsRandomKmalloc.TestCase.settings = TwoBackends.TestCase.settings
test_two_backends_agree_random_kmalloc = TwoBackendsRandomKmalloc.TestCase


class TwoBackendsTraced(TwoBackends):
    """Both machines write kmem traces; the texts must match byte for byte after every step."""

    def __init__(self):
        RuleBasedStateMachine.__init__(self)
        import io
        self.ctrace, self.pytrace = io.StringIO(), io.StringIO()
        self.c = pyalloc.Machine(mem=MEM, backend="c", cpus=2, trace=self.ctrace)
        self.py = pyalloc.Machine(mem=MEM, backend="model", cpus=2, trace=self.pytrace)
        self.bound = {}

    @invariant()
    def same_trace(self):
        self.c.trace_flush()
        self.py.trace_flush()
        assert self.ctrace.getvalue() == self.pytrace.getvalue()


TwoBackendsTraced.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_two_backends_trace_alike = TwoBackendsTraced.TestCase


def test_long_mixed_workload_agrees():
    """A longer deterministic stream than hypothesis runs, to reach exhaustion and merges."""
    import random
    rnd = random.Random(1234)
    with pyalloc.Machine(mem="24M", backend="c") as c, pyalloc.Machine(mem="24M", backend="model") as py:
        live = []
        for step in range(6000):
            if live and rnd.random() < 0.45:
                pfn, order = live.pop(rnd.randrange(len(live)))
                assert c.free_pages(pfn, order) is None
                py.free_pages(pfn, order)
            else:
                gfp, order = rnd.choice(GFPS[:13]), rnd.choice([0, 0, 0, 1, 2, 3, 5])
                a, b = outcome(c.alloc_pages, gfp, order), outcome(py.alloc_pages, gfp, order)
                assert a == b, (step, gfp, order, a, b)
                if a[0] == "ok" and a[1] is not None:
                    live.append((a[1], order))
            if step % 500 == 0:
                for view in VIEWS:
                    assert c.proc(view) == py.proc(view)
                c.check()
                py.check()
        assert c.dmesg() == py.dmesg()


def test_pressure_workload_agrees():
    """Processes, dirty and clean page cache, swap, kswapd, compaction and the OOM
    killer on a small machine: both backends must tell the same story."""
    import random
    rnd = random.Random(7)
    kw = dict(mem="32M", swap="8M", cpus=2)
    with pyalloc.Machine(backend="c", **kw) as c, pyalloc.Machine(backend="model", **kw) as py:
        pids = []
        for step in range(400):
            op = rnd.random()
            if op < 0.15 or not pids:
                a, b = outcome(c.spawn, f"task{step}"), outcome(py.spawn, f"task{step}")
                assert a == b
                pids.append(a[1])
            elif op < 0.45:
                pid, n = rnd.choice(pids), rnd.choice([10, 200, 1000, 3000])
                a, b = outcome(c.touch, pid, n), outcome(py.touch, pid, n)
                assert a == b, (step, a, b)
                assert c.last_alloc == py.last_alloc
            elif op < 0.6:
                path, n = rnd.choice(["/a", "/b", "/c"]), rnd.choice([100, 800, 2500])
                fn = rnd.choice(["read_file", "write_file"])
                a, b = outcome(getattr(c, fn), path, n), outcome(getattr(py, fn), path, n)
                assert a == b, (step, fn, a, b)
            elif op < 0.7:
                gfp, order = rnd.choice(GFPS[:13]), rnd.choice([0, 0, 1, 3, 4])
                a, b = outcome(c.alloc_pages, gfp, order), outcome(py.alloc_pages, gfp, order)
                assert a == b, (step, gfp, order, a, b)
            elif op < 0.8:
                pid, off = rnd.choice(pids), rnd.randrange(0, 3000 * 4096)
                data = bytes([step & 0xff]) * rnd.randrange(1, 9000)
                a, b = outcome(c.user_write, pid, off, data), outcome(py.user_write, pid, off, data)
                assert a == b, (step, a, b)
                a, b = outcome(c.user_read, pid, off, len(data)), outcome(py.user_read, pid, off, len(data))
                assert a == b
                if a[0] == "ok":
                    assert a[1] == data
            elif op < 0.85:
                pid = pids.pop(rnd.randrange(len(pids)))
                assert outcome(c.exit, pid) == outcome(py.exit, pid)
            else:
                fn = rnd.choice(["sync", "drop_caches"])
                assert outcome(getattr(c, fn)) == outcome(getattr(py, fn))
            if step % 50 == 0:
                for view in VIEWS:
                    assert c.proc(view) == py.proc(view), (step, view)
                c.check()
                py.check()
        assert c.dmesg() == py.dmesg()
        assert c.reclaim_counters() == py.reclaim_counters()
        assert c.reclaim_counters()["pswpout"] > 0 and c.reclaim_counters()["oom_kill"] > 0
