"""Per-cpu sheaves and the barn (mm/slub.c, new in 6.18): kmem_cache_create(...,
sheaf_capacity=N), alloc_from_pcs / free_to_pcs, the exchanges with the barn, flushing,
snapshots, and the catalogue replay uses for the caches 6.18 gives sheaves."""

from pathlib import Path

import pytest

import pyalloc
from pyalloc import _abi
from pyalloc.data import slab_cache_args, slab_caches
from pyalloc.errors import DoubleFree, InvalidArgument
from pyalloc.text import sysfs

PO = pyalloc.PAGE_OFFSET
FIXTURES = Path(__file__).parent / "fixtures"


def machine(backend, **kw):
    return pyalloc.Machine(mem="256M", cpus=2, backend=backend, **kw)


def sheaf_cache(m, name="sheafy", size=256, cap=32):
    return m.kmem_cache_create(name, size, 0, 0, sheaf_capacity=cap)


def pcs(m, c, cpu=0):
    return m._core.cpu_slab_info(c._id, cpu)


def barn(m, c):
    return m._core.barn_info(c._id)


@pytest.mark.parametrize("cap", [-1, _abi.SHEAF_CAPACITY_MAX + 1, 2 ** 70, "32", 3.0, True, None])
def test_bad_sheaf_capacity(backend, cap):
    m = machine(backend)
    before = (m.proc("slabinfo"), sorted(c.name for c in sysfs.slab_caches(m)))
    with pytest.raises(InvalidArgument):
        m.kmem_cache_create("bad", 64, sheaf_capacity=cap)
    assert (m.proc("slabinfo"), sorted(c.name for c in sysfs.slab_caches(m))) == before
    m.check()


def test_the_core_refuses_a_bad_capacity_itself(backend):
    m = machine(backend)
    assert m._core.kmem_cache_create(64, 0, 0, -1) == _abi.EINVAL
    assert m._core.kmem_cache_create(64, 0, 0, _abi.SHEAF_CAPACITY_MAX + 1) == _abi.EINVAL
    assert m._core.kmem_cache_create(64, 0, 0, _abi.SHEAF_CAPACITY_MAX) >= 0


def test_a_debug_cache_gets_no_sheaves_and_sheaf_caches_never_merge(backend):
    m = machine(backend, slab_merge=True)
    d = m.kmem_cache_create("dbg", 64, 0, "SLAB_POISON", sheaf_capacity=8)
    assert sysfs.render(m, "kernel/slab/dbg/sheaf_capacity") == "0\n"
    assert pcs(m, d)["main"] is None
    a = m.kmem_cache_create("plain", 64)
    s = m.kmem_cache_create("withsheaves", 64, sheaf_capacity=4)
    t = m.kmem_cache_create("again", 64)
    assert s._id != a._id and t._id == a._id and s._id != t._id


def test_refill_hands_objects_back_in_reverse(backend):
    m = machine(backend, kconfig={"SLAB_FREELIST_RANDOM": False})     # new slabs in address order
    c = sheaf_cache(m)                      # 256 bytes: 16 objects a slab
    first = m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0)
    info = pcs(m, c)
    # refill_sheaf took 32 objects: two slabs' worth; the sheaf gives the last one first
    assert len(info["main"]) == 31 and info["spare"] is None
    nxt = [m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0) for _ in range(31)]
    assert nxt == [o + PO for o in info["main"]]       # top first
    assert sorted([first] + nxt, reverse=True) == [first] + nxt
    # slabinfo counts sheaf objects as in use
    assert m._core.cache_info(c._id)["active_objects"] == 32
    m.check()


def test_lifo_reuse_on_one_cpu_and_not_across(backend):
    m = machine(backend)
    c = sheaf_cache(m)
    x = m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0)
    m.kmem_cache_free(c, x, cpu=0)
    assert m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0) == x
    m.kmem_cache_free(c, x, cpu=0)
    assert m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=1) != x
    assert pcs(m, c, 0)["main"][0] == x - PO


def test_an_object_in_a_sheaf_is_free_to_the_user(backend):
    m = machine(backend)
    c = sheaf_cache(m)
    x = m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0)
    m.kmem_cache_free(c, x, cpu=0)
    with pytest.raises(DoubleFree):
        m.kmem_cache_free(c, x, cpu=1)
    m.check()


def test_sheaf_exchange_with_the_barn(backend):
    m = machine(backend)
    c = sheaf_cache(m, cap=4)
    objs = [m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=1) for _ in range(40)]
    for x in objs[:4]:
        m.kmem_cache_free(c, x, cpu=0)
    assert len(pcs(m, c)["main"]) == 4 and pcs(m, c)["spare"] is None
    m.kmem_cache_free(c, objs[4], cpu=0)        # full main becomes the spare, a new main
    assert (len(pcs(m, c)["main"]), len(pcs(m, c)["spare"])) == (1, 4)
    for x in objs[5:8]:
        m.kmem_cache_free(c, x, cpu=0)
    m.kmem_cache_free(c, objs[8], cpu=0)        # main and spare full: main goes to the barn
    assert barn(m, c) == {"full": 1, "empty": 0}
    assert (len(pcs(m, c)["main"]), len(pcs(m, c)["spare"])) == (1, 4)
    got = [m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0) for _ in range(9)]
    # main, then the spare (swapped in), then the barn's full sheaf (for the empty main)
    assert got == objs[8:9] + objs[3::-1] + objs[7:3:-1]
    assert barn(m, c) == {"full": 0, "empty": 1}
    m.check()


def test_the_barn_takes_at_most_ten_full_sheaves(backend):
    m = machine(backend)
    c = sheaf_cache(m, cap=2)
    objs = [m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=1) for _ in range(60)]
    live = m._core.cache_info(c._id)["active_objects"]
    for x in objs[:2 + 2 + 10 * 2]:             # main, spare, then ten sheaves to the barn
        m.kmem_cache_free(c, x, cpu=0)
    assert barn(m, c)["full"] == 10
    m.kmem_cache_free(c, objs[24], cpu=0)       # E2BIG: the full spare goes back to the slabs
    assert barn(m, c)["full"] == 10
    assert m._core.cache_info(c._id)["active_objects"] == live
    assert pcs(m, c)["spare"] == [o - PO for o in objs[23:21:-1]]     # the old main
    assert pcs(m, c)["main"] == [objs[24] - PO]                         # the flushed spare
    m.check()


def test_atomic_allocations_take_the_slab_path_when_sheaves_are_empty(backend):
    m = machine(backend)
    c = sheaf_cache(m)
    x = m.kmem_cache_alloc(c, "GFP_ATOMIC", cpu=0)
    assert pcs(m, c)["main"] == [] and pcs(m, c)["slab"] == (x - PO) & ~0xfff
    m.check()


def test_shrink_and_destroy_flush_sheaves_and_barn(backend):
    m = machine(backend)
    c = sheaf_cache(m, cap=3)
    objs = [m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=k % 2) for k in range(50)]
    for k, x in enumerate(objs):
        m.kmem_cache_free(c, x, cpu=k % 2)
    m.kmem_cache_shrink(c)
    assert barn(m, c) == {"full": 0, "empty": 0}
    for cpu in (0, 1):
        assert pcs(m, c, cpu)["main"] == [] and pcs(m, c, cpu)["spare"] is None
    assert m._core.cache_info(c._id)["nr_slabs"] == 0
    x = m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0)
    m.kmem_cache_free(c, x, cpu=0)
    m.kmem_cache_destroy(c)
    m.check()


def test_sysfs_sheaf_capacity(backend):
    m = machine(backend)
    sheaf_cache(m, "cap7", cap=7)
    assert sysfs.render(m, "kernel/slab/cap7/sheaf_capacity") == "7\n"
    assert sysfs.render(m, "kernel/slab/kmalloc-64/sheaf_capacity") == "0\n"


def test_snapshot_round_trip(backend, tmp_path):
    m = machine(backend)
    c = sheaf_cache(m, cap=5)
    objs = [m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=k % 2) for k in range(90)]
    for k, x in enumerate(objs[:70]):
        m.kmem_cache_free(c, x, cpu=(k // 3) % 2)
    m.save(tmp_path / "s.snap")
    want = None
    for other in (backend, {"c": "model", "model": "c"}[backend]):
        m2 = pyalloc.Machine.load(tmp_path / "s.snap", backend=other)
        c2 = [x for x in m2._caches.values() if x.name == "sheafy"][0]
        assert [pcs(m2, c2, cpu) for cpu in (0, 1)] == [pcs(m, c, cpu) for cpu in (0, 1)]
        assert barn(m2, c2) == barn(m, c)
        m2.check()
        got = [m2.kmem_cache_alloc(c2, "GFP_KERNEL", cpu=k % 2) for k in range(60)]
        want = want or got
        assert got == want
        m2.close()
    assert [m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=k % 2) for k in range(60)] == want


def test_the_catalogue_cites_its_sources_and_the_excerpt():
    real = {}
    for line in (FIXTURES / "sys-kernel-slab-6.18.txt").read_text().splitlines():
        if ": " in line and not line.startswith("#"):
            key, value = line.split(": ", 1)
            real[key] = value
    for name, entry in slab_caches().items():
        assert entry["source"].split()[0].count("/") >= 1 and entry["source"].endswith("()")
        if entry["size_from"] == "sysfs":
            assert real[f"{name}/object_size"] == str(entry["size"])
            assert real[f"{name}/sheaf_capacity"] == str(entry["sheaf_capacity"])
    assert slab_cache_args("maple_node")[3] == slab_cache_args("vm_area_struct")[3] == 32


def test_replay_creates_caches_as_6_18_does(backend):
    from pyalloc.machine.trace import read_trace
    m = machine(backend)
    m.run(read_trace(FIXTURES / "ftrace-kmem.txt", skip_bad=True), errors="record")
    for name in ("maple_node", "vm_area_struct"):
        assert sysfs.render(m, f"kernel/slab/{name}/sheaf_capacity") == "32\n"
    assert sysfs.render(m, "kernel/slab/maple_node/align") == "256\n"
    m.check()
