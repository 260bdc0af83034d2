"""SLAB_FREELIST_RANDOM, SLAB_FREELIST_HARDENED and RANDOM_KMALLOC_CACHES on both backends.

The expected layouts are computed here from the machine's stream (``_abi.prandom_next``) with
mm/slab_common.c freelist_randomize(), mm/slub.c shuffle_freelist() and drivers/char/random.c
__get_random_u32_below(), independently of either core.
"""

from __future__ import annotations

import pytest

import pyalloc
from pyalloc import _abi
from pyalloc._abi import PAGE_OFFSET
from pyalloc.model.snapshot import MACHINE_SCALARS

OFF = {"SLAB_FREELIST_RANDOM": False, "SLAB_FREELIST_HARDENED": False}


class Stream:
    """The machine's random stream, replayed."""

    def __init__(self, seed: int) -> None:
        self.state = seed

    def u64(self) -> int:
        self.state, x = _abi.prandom_next(self.state)
        return x

    def u32_below(self, ceil: int) -> int:
        mult = ceil * (self.u64() & 0xFFFFFFFF)
        if mult & 0xFFFFFFFF < ceil:
            bound = (1 << 32) % ceil
            while mult & 0xFFFFFFFF < bound:
                mult = ceil * (self.u64() & 0xFFFFFFFF)
        return mult >> 32


def boot_draws(stream: Stream, m) -> None:
    """Replay the draws the boot made: a random and a sequence per kmalloc cache, in creation order."""
    rows = {r["name"]: r for r in m.slab_snapshot()}
    for cid in m._cache_order:
        objects = rows[m._caches[cid].name]["objperslab"]
        stream.u64()                                    # s->random
        if objects >= 2:
            for i in range(objects - 1, 0, -1):
                stream.u32_below(i + 1)


def expected_cache(stream: Stream, objects: int):
    random = stream.u64()
    seq = list(range(objects))
    for i in range(objects - 1, 0, -1):
        r = stream.u32_below(i + 1)
        seq[i], seq[r] = seq[r], seq[i]
    return random, seq


def swab64(x: int) -> int:
    return int.from_bytes(x.to_bytes(8, "little"), "big")


@pytest.mark.parametrize("seed", [0, 7, 123456789])
def test_new_slab_order_is_the_kernels(backend, seed):
    with pyalloc.Machine(mem="64M", backend=backend, seed=seed) as m:
        stream = Stream(seed)
        boot_draws(stream, m)
        c = m.kmem_cache_create("rand_t", 64)
        random, seq = expected_cache(stream, c.objects)
        assert c.random == random and list(c.random_seq) == seq
        pos = stream.u32_below(c.objects)
        want = seq[pos:] + seq[:pos]
        got = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(c.objects)]
        base = got[0] - (got[0] - PAGE_OFFSET) % (4096 << c.order)
        assert [(a - base) // c.size for a in got] == want
        m.check()


def test_fallback_slab_skips_what_it_does_not_hold():
    """A slab of the fallback order holds fewer objects: next_freelist_entry skips the rest."""
    from pyalloc.model import slab_random
    from pyalloc.model.arena import NIL

    class S:
        random_seq = [5, 0, 7, 2, 6, 1, 4, 3]
        objects = 8

    class Slab:
        objects = 4
        freelist = NIL

    class A:
        rand_state = 99
        kconfig = _abi.KCONFIG_SLAB_FREELIST_RANDOM

    links = {}
    slab = Slab()
    assert slab_random.shuffle_freelist(A(), S(), slab, lambda a, s, sl, cur, nxt: links.__setitem__(cur, nxt))
    pos = Stream(99).u32_below(8)
    order = [i for i in (S.random_seq[pos:] + S.random_seq[:pos]) if i < 4]
    assert slab.freelist == order[0]
    assert [links[k] for k in order] == order[1:] + [NIL]


def test_same_seed_same_layout_other_seed_other(backend):
    def layout(seed, kconfig=None):
        with pyalloc.Machine(mem="64M", backend=backend, seed=seed, kconfig=kconfig) as m:
            c = m.kmem_cache_create("t", 128)
            objs = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(40)]
            return objs + [m.kmalloc(96, "GFP_KERNEL") for _ in range(40)]

    assert layout(5) == layout(5)
    assert layout(5) != layout(6)
    assert layout(5, OFF) == layout(6, OFF)


def test_kconfig_off_is_sequential(backend):
    with pyalloc.Machine(mem="64M", backend=backend, kconfig=OFF) as m:
        c = m.kmem_cache_create("t", 64)
        assert c.random == 0 and c.random_seq == ()
        got = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(c.objects)]
        assert got == [got[0] + i * c.size for i in range(c.objects)]


def test_one_object_per_slab_has_no_sequence(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        c = m.kmem_cache_create("big", 3 << 20)
        assert c.objects == 1 and c.random_seq == () and c.random != 0


@pytest.mark.parametrize("hardened", [True, False])
def test_free_pointers_in_memory(backend, hardened):
    with pyalloc.Machine(mem="64M", backend=backend, seed=3,
                         kconfig={"SLAB_FREELIST_HARDENED": hardened}) as m:
        c = m.kmem_cache_create("t", 64)
        offset = m._core.cache_info(c._id)["offset"]
        a, b, d = (m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(3))
        m.kmem_cache_free(c, a)
        m.kmem_cache_free(c, b)         # b's free pointer names a
        random = c.random
        assert (random != 0) == hardened
        for obj, nxt in ((b, a),):
            stored = int.from_bytes(m.read(obj + offset, 8), "little")
            want = nxt ^ random ^ swab64(obj + offset) if hardened else nxt
            assert stored == want
        # the last object of the freelist holds an encoded NULL
        m.kmem_cache_free(c, d)
        objs = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(c.objects)]
        m.kmem_cache_free(c, objs[-1])
        stored = int.from_bytes(m.read(objs[-1] + offset, 8), "little")
        assert stored == ((random ^ swab64(objs[-1] + offset)) if hardened else 0)
        m.check()


@pytest.mark.parametrize("hardened", [True, False])
def test_scribbled_free_pointer_is_found(backend, hardened):
    kconfig = {"SLAB_FREELIST_HARDENED": hardened}
    with pyalloc.Machine(mem="64M", backend=backend, seed=9, slub_debug="F", kconfig=kconfig) as m:
        c = m.kmem_cache_create("t", 64)
        a, b = m.kmem_cache_alloc(c, "GFP_KERNEL"), m.kmem_cache_alloc(c, "GFP_KERNEL")
        m.kmem_cache_free(c, a)
        m.kmem_cache_free(c, b)
        offset = m._core.cache_info(c._id)["offset"]
        good = m.read(b + offset, 8)
        m.write(b + offset, (PAGE_OFFSET + 0x1234).to_bytes(8, "little"))
        with pytest.raises(pyalloc.SlabCorruption):
            m.check()
        text = "\n".join(m.dmesg())
        assert "Freepointer corrupt" in text
        # the report's fp= is the decoded pointer (the FIX restored it): b's successor
        assert f"fp=0x{a:016x}" in text
        assert m.read(b + offset, 8) == good
        m.check()
        # and on allocation
        m.write(b + offset, bytes(8))
        with pytest.raises(pyalloc.SlabCorruption):
            m.kmem_cache_alloc(c, "GFP_KERNEL")
        m.check()


def test_random_kmalloc_caches(backend):
    kconfig = {"RANDOM_KMALLOC_CACHES": True}
    with pyalloc.Machine(mem="128M", backend=backend, seed=11, kconfig=kconfig) as m:
        names = {r["name"] for r in m.slab_snapshot()}
        for n in range(1, 16):
            for size in ("8", "96", "192", "1k", "8k"):
                assert f"kmalloc-rnd-{n:02d}-{size}" in names
        assert "kmalloc-rnd-16-8" not in names and "kmalloc-rnd-00-8" not in names
        assert "kmalloc-rnd-01-64" in m.proc("slabinfo")

        def cache_of(addr):
            pfn = (addr - PAGE_OFFSET) >> 12
            for cid, cache in m._caches.items():
                if any(p <= pfn < p + (1 << cache.order) for p in m._core.slab_pfns(cid)):
                    return cache.name
            raise AssertionError(addr)

        homes = {}
        for i in range(64):
            site = f"drivers/foo.c:{i}"
            first = cache_of(m.kmalloc(64, "GFP_KERNEL", caller=site))
            assert all(cache_of(m.kmalloc(64, "GFP_KERNEL", caller=site)) == first for _ in range(3))
            homes[site] = first
        assert len(set(homes.values())) >= 8           # 64 callers over 16 caches
        assert all(h == "kmalloc-64" or h.startswith("kmalloc-rnd-") and h.endswith("-64") for h in homes.values())
        # only KMALLOC_NORMAL requests are spread
        assert cache_of(m.kmalloc(64, "GFP_KERNEL|__GFP_RECLAIMABLE", caller="x.c:1")) == "kmalloc-rcl-64"
        m.check()


def test_random_kmalloc_hash_is_hash_64(backend):
    """kmalloc_type(): hash_64(caller ^ random_kmalloc_seed, 4), 0 the plain cache."""
    seed = 4242
    with pyalloc.Machine(mem="128M", backend=backend, seed=seed, kconfig={"RANDOM_KMALLOC_CACHES": True}) as m:
        stream = Stream(seed)
        boot_draws(stream, m)
        rks = stream.u64()
        for site in ("a.c:1", "b.c:2", "c.c:3", "d.c:4"):
            addr = m.kmalloc(32, "GFP_KERNEL", caller=site)
            h = (((m._callers[site] ^ rks) * 0x61C8864680B583EB) & (2 ** 64 - 1)) >> 60
            want = "kmalloc-32" if h == 0 else f"kmalloc-rnd-{h:02d}-32"
            pfn = (addr - PAGE_OFFSET) >> 12
            cid = next(cid for cid in m._caches if pfn in m._core.slab_pfns(cid))
            assert m._caches[cid].name == want


def test_random_kmalloc_off_has_no_copies(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        assert not any(r["name"].startswith("kmalloc-rnd-") for r in m.slab_snapshot())
        assert m.kconfig["RANDOM_KMALLOC_CACHES"] is False


@pytest.mark.parametrize("kconfig", [None, OFF, {"RANDOM_KMALLOC_CACHES": True}])
def test_snapshot_round_trip(backend, kconfig, tmp_path):
    path = tmp_path / "m.snap"
    with pyalloc.Machine(mem="64M", backend=backend, seed=77, kconfig=kconfig) as m:
        c = m.kmem_cache_create("t", 200)
        keep = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(30)]
        for a in keep[::3]:
            m.kmem_cache_free(c, a)
        for i in range(20):
            m.kmalloc(500, "GFP_KERNEL", caller=f"s.c:{i}")
        m.save(path)
        loaded = [pyalloc.Machine.load(path, backend=b) for b in ("c", "model")]
        try:
            def go(n):
                cn = n._caches[c._id]
                return ((cn.random, cn.random_seq), n.kconfig, n.seed,
                        [n.kmem_cache_alloc(cn, "GFP_KERNEL") for _ in range(60)],
                        [n.kmalloc(500, "GFP_KERNEL", caller=f"s.c:{i}") for i in range(40)])
            want = go(m)
            for n in loaded:
                assert go(n) == want
                n.check()
        finally:
            for n in loaded:
                n.close()


def _after_slab_random(a) -> int:
    """Bytes of CORE after the slab_random section: every section written after it, as written now."""
    from pyalloc.model.snapshot import SAVE_SECTIONS, Writer, save_slab_random
    w = Writer()
    for section in SAVE_SECTIONS[SAVE_SECTIONS.index(save_slab_random) + 1:]:
        section(a, w)
    return len(w.w) * 8


def _core_words(kconfig=None):
    from pyalloc.model.snapshot import save
    m = pyalloc.Machine(mem="32M", backend="model", seed=1, kconfig=kconfig)
    c = m.kmem_cache_create("t", 512)
    return m, c, bytearray(save(m._core._a))


def _c_loads(m, words) -> int:
    """pa_snapshot_load() alone, with no validator before it."""
    pytest.importorskip("pyalloc._core")
    from pyalloc._core import ffi, lib
    out = ffi.new("pa_machine **")
    assert lib.pa_machine_new(m._core._a.nr_pages, m.cpus, m._core._a.min_free_kbytes, 0, 0, out) == 0
    try:
        return lib.pa_snapshot_load(out[0], ffi.from_buffer(bytes(words)), len(words))
    finally:
        lib.pa_machine_close(out[0])


def test_the_c_loader_refuses_a_bad_slab_random_section():
    m, c, words = _core_words()
    assert _c_loads(m, words) == 0
    n = len(c.random_seq)
    tail = _after_slab_random(m._core._a)
    first = len(words) - tail - 8 * n
    dup = bytearray(words)
    dup[first + 8:first + 16] = dup[first:first + 8]                 # not a permutation
    short = words[:len(words) - tail - 8]                             # the section cut short
    no_random = bytearray(words)
    no_random[first - 16:first - 8] = bytes(8)                        # fine: random may be 0 ...
    for bad in (dup, short):
        assert _c_loads(m, bad) == pyalloc.errors.EINVAL
    assert _c_loads(m, no_random) == 0
    m.close()
    # ... but not without SLAB_FREELIST_HARDENED, and no sequence without SLAB_FREELIST_RANDOM
    m, c, words = _core_words({"SLAB_FREELIST_RANDOM": False, "SLAB_FREELIST_HARDENED": True})
    plain = bytearray(words)
    kconfig_at = MACHINE_SCALARS.index("kconfig") * 8
    plain[kconfig_at:kconfig_at + 8] = bytes(8)                       # claim every option off
    assert _c_loads(m, words) == 0 and _c_loads(m, plain) == pyalloc.errors.EINVAL
    m.close()


def test_snapshot_rejects_a_bad_sequence():
    from pyalloc.model.snapshot_check import Corrupt, validate
    from pyalloc.model.snapshot import save
    with pyalloc.Machine(mem="32M", backend="model", seed=1) as m:
        c = m.kmem_cache_create("t", 512)
        words = save(m._core._a)
        validate(words, m._core._a.nr_pages, m.cpus, 0)
        seq = c.random_seq
        # the last cache's sequence ends the slab_random section: make its first two entries equal
        n = len(seq)
        bad = bytearray(words)
        first = len(bad) - _after_slab_random(m._core._a) - 8 * n
        assert int.from_bytes(bad[first:first + 8], "little") == seq[0]
        bad[first + 8:first + 16] = bad[first:first + 8]
        with pytest.raises(Corrupt):
            validate(bytes(bad), m._core._a.nr_pages, m.cpus, 0)
