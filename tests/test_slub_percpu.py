"""SLUB's per-cpu slabs, per-cpu partial lists and node partial lists (mm/slub.c, 6.18):
put_cpu_partial() and __put_partials() at cpu_partial_slabs, min_partial discards,
remote frees, LIFO reuse on one CPU, and the /sys/kernel/slab counts against the real
6.18 machine's excerpt (tests/fixtures/sys-kernel-slab-6.18.txt, 2 CPUs)."""

from pathlib import Path

import pyalloc
from pyalloc import helpers as h
from pyalloc.data import slab_cache_args, slab_caches
from pyalloc.text import sysfs

FIXTURE = Path(__file__).parent / "fixtures" / "sys-kernel-slab-6.18.txt"
PO = pyalloc.PAGE_OFFSET


def real_attrs() -> dict:
    """cache -> {attribute: value} of the real machine."""
    out: dict = {}
    for line in FIXTURE.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, value = line.split(": ", 1)
        cache, attr = key.split("/")
        out.setdefault(cache, {})[attr] = value
    return out


def machine(backend, **kw):
    return pyalloc.Machine(mem="256M", cpus=2, backend=backend, **kw)


def cpu_info(m, cache, cpu):
    return m._core.cpu_slab_info(cache._id, cpu)


def full_slabs(m, cache, n, cpu=0):
    """Objects of n full slabs allocated on one CPU, slab by slab (the last is the cpu slab's)."""
    per = cache.objects
    objs = [m.kmem_cache_alloc(cache, "GFP_KERNEL", cpu=cpu) for _ in range(per * n)]
    return [objs[i * per:(i + 1) * per] for i in range(n)]


# -- the real machine's numbers ------------------------------------------------------------

# caches whose kernel layout pyalloc reproduces byte for byte: no ctor and no RCU free pointer
# outside the object (anon_vma, inode_cache, radix_tree_node have one: their slab_size is 8 more)
EXACT_LAYOUT = {"maple_node", "vm_area_struct", "task_struct"}


def test_sysfs_equals_the_real_excerpt(backend):
    real = real_attrs()
    m = machine(backend)
    for name, args in slab_caches().items():
        if name in real:
            size, align, flags, cap = slab_cache_args(name)
            m.kmem_cache_create(name, size, align, flags, sheaf_capacity=cap)
    names = {c.name for c in sysfs.slab_caches(m)}
    checked = 0
    for cache, attrs in real.items():
        assert cache in names, cache
        exact = cache.startswith(("kmalloc", "dma-kmalloc")) or cache in EXACT_LAYOUT
        for attr, value in attrs.items():
            if attr in ("slab_size", "objs_per_slab", "order", "destroy_by_rcu") and not exact:
                continue
            if attr == "destroy_by_rcu":
                continue                        # SLAB_TYPESAFE_BY_RCU is not modelled
            got = sysfs.render(m, f"kernel/slab/{cache}/{attr}").strip()
            assert got == value, (cache, attr, got, value)
            checked += 1
    assert checked > 200


def test_cpu_partial_follows_set_cpu_partial(backend):
    m = machine(backend)
    for size, want in ((8, 120), (248, 120), (256, 52), (1016, 52), (1024, 24), (4088, 24), (4096, 6)):
        c = m.kmem_cache_create(f"c{size}", size)
        info = m._core.cache_info(c._id)
        assert info["cpu_partial"] == want
        assert info["cpu_partial_slabs"] == -(-want * 2 // info["objects"])


def test_without_cpu_partial_lists(backend):
    m = machine(backend, kconfig={"SLUB_CPU_PARTIAL": False})
    c = m.kmem_cache_create("nocp", 256)
    assert sysfs.render(m, "kernel/slab/nocp/cpu_partial") == "0\n"
    slabs = full_slabs(m, c, 3)
    m.kmem_cache_free(c, slabs[0][0], cpu=0)        # a full slab's first free: the node list
    assert cpu_info(m, c, 0)["partial"] == []
    assert sysfs.render(m, "kernel/slab/nocp/partial") == "1 N0=1\n"
    assert sysfs.render(m, "kernel/slab/nocp/slabs_cpu_partial") == "0(0)\n"
    m.check()


# -- put_cpu_partial, __put_partials, get_partial_node ------------------------------------

def test_full_slab_first_free_goes_to_the_cpu_partial_list(backend):
    m = machine(backend)
    c = m.kmem_cache_create("p256", 256)        # 16 objects, cpu_partial 52: 7 slabs
    limit = m._core.cache_info(c._id)["cpu_partial_slabs"]
    assert limit == 7
    slabs = full_slabs(m, c, limit + 2)
    for k in range(limit):
        m.kmem_cache_free(c, slabs[k][0], cpu=0)
    chain = cpu_info(m, c, 0)["partial"]
    assert chain == [(slabs[k][0] - PO) & ~0xfff for k in reversed(range(limit))]     # newest first
    assert sysfs.render(m, "kernel/slab/p256/slabs_cpu_partial") == "56(7) C0=56(7)\n"
    assert sysfs.render(m, "kernel/slab/p256/cpu_slabs") == "8 N0=8\n"          # 1 cpu slab + 7
    assert sysfs.render(m, "kernel/slab/p256/partial") == "0\n"
    # the next one overflows: the chain moves to the node list (in chain order), a new chain starts
    m.kmem_cache_free(c, slabs[limit][0], cpu=0)
    assert cpu_info(m, c, 0)["partial"] == [(slabs[limit][0] - PO) & ~0xfff]
    assert sysfs.render(m, "kernel/slab/p256/partial") == f"{limit} N0={limit}\n"
    assert sysfs.render(m, "kernel/slab/p256/objects_partial") == f"{limit * 15} N0={limit * 15}\n"
    m.check()


def test_min_partial_discards_empty_slabs_past_it(backend):
    m = machine(backend)
    c = m.kmem_cache_create("d256", 256)
    before = m.proc("slabinfo")
    slabs = full_slabs(m, c, 9)
    nr = m._core.cache_info(c._id)["nr_slabs"]
    for k in range(8):                          # empty slabs 0..7, the cpu slab (8) stays
        for obj in slabs[k]:
            m.kmem_cache_free(c, obj, cpu=0)
    # slabs 0..6 emptied on the chain (they stay there); slab 7's first free drained the chain
    # newest first: 6..2 went to the node list (min_partial is 5), 1 and 0 back to the page allocator
    info = m._core.cache_info(c._id)
    assert info["nr_slabs"] == nr - 2
    assert sysfs.render(m, "kernel/slab/d256/min_partial") == "5\n"
    assert sysfs.render(m, "kernel/slab/d256/partial") == "5 N0=5\n"
    for k in (0, 1):
        assert m._core.slab_info((slabs[k][0] - PO) & ~0xfff) is None
    m.kmem_cache_shrink(c)
    assert cpu_info(m, c, 0)["partial"] == [] and cpu_info(m, c, 0)["slab"] is None
    assert m._core.cache_info(c._id)["nr_slabs"] == 1      # slab 8, full
    for obj in slabs[8]:
        m.kmem_cache_free(c, obj, cpu=1)
    m.kmem_cache_shrink(c)
    assert m.proc("slabinfo") == before
    m.check()


def test_get_partial_node_fills_the_cpu_partial_list(backend):
    m = machine(backend)
    c = m.kmem_cache_create("g256", 256)
    slabs = full_slabs(m, c, 12)
    for k in range(11):                         # chain of 7, then 7 to the node list, chain of 4
        m.kmem_cache_free(c, slabs[k][0], cpu=0)
    assert len(cpu_info(m, c, 1)["partial"]) == 0
    # CPU 1 has no slab: get_partial_node takes the first node slab for it and moves
    # cpu_partial_slabs / 2 + 1 = 4 more onto its chain
    m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=1)
    assert len(cpu_info(m, c, 1)["partial"]) == 4
    assert sysfs.render(m, "kernel/slab/g256/partial") == "2 N0=2\n"
    m.check()


# -- remote frees and LIFO reuse ----------------------------------------------------------

def test_lifo_reuse_on_one_cpu(backend):
    m = machine(backend)
    for _ in range(3):
        a = m.kmalloc(100, "GFP_KERNEL", cpu=0)
        m.kfree(a, cpu=0)
        assert m.kmalloc(100, "GFP_KERNEL", cpu=0) == a
        m.kfree(a, cpu=0)


def test_remote_free_goes_to_the_slab_freelist(backend):
    m = machine(backend)
    c = m.kmem_cache_create("r64", 64)
    a, b, d = (m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0) for _ in range(3))
    m.kmem_cache_free(c, b, cpu=1)
    info0 = cpu_info(m, c, 0)
    assert b - PO not in info0["freelist"]
    assert cpu_info(m, c, 1) == {"slab": None, "freelist": [], "partial": [], "main": None, "spare": None}
    slab = info0["slab"]
    assert m._core.slab_info(slab)[3] == b          # the slab's own freelist head
    # CPU 0 uses up its freelist, then takes the remote free back (get_freelist)
    rest = [m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0) for _ in range(len(info0["freelist"]))]
    assert b not in rest
    assert m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=0) == b
    m.check()


def test_remote_free_of_a_full_slab_lands_on_the_freeing_cpu(backend):
    m = machine(backend)
    c = m.kmem_cache_create("rf", 512)
    slabs = full_slabs(m, c, 2, cpu=0)
    m.kmem_cache_free(c, slabs[0][3], cpu=1)
    head = h.slab_object_info(m, slabs[0][0]).slab.pfn << 12     # objects are shuffled: ask for the slab
    assert cpu_info(m, c, 1)["partial"] == [head]
    assert cpu_info(m, c, 0)["partial"] == []
    assert m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=1) == slabs[0][3]
    m.check()


# -- snapshots ----------------------------------------------------------------------------

def test_snapshot_keeps_cpu_partial_chains(backend, tmp_path):
    m = machine(backend)
    c = m.kmem_cache_create("s256", 256)
    slabs = full_slabs(m, c, 10)
    for k in range(9):
        m.kmem_cache_free(c, slabs[k][k % 16], cpu=k % 2)
    m.save(tmp_path / "p.snap")
    for other in (backend, {"c": "model", "model": "c"}[backend]):
        m2 = pyalloc.Machine.load(tmp_path / "p.snap", backend=other)
        c2 = [x for x in m2._caches.values() if x.name == "s256"][0]
        for cpu in (0, 1):
            assert cpu_info(m2, c2, cpu) == cpu_info(m, c, cpu)
        assert sysfs.render(m2, "kernel/slab/s256/slabs_cpu_partial") == \
            sysfs.render(m, "kernel/slab/s256/slabs_cpu_partial")
        m2.check()
        nxt = [[m2.kmem_cache_alloc(c2, "GFP_KERNEL", cpu=cpu) for _ in range(40)] for cpu in (0, 1)]
        if other == backend:
            want = nxt
        else:
            assert nxt == want
        m2.close()
    mine = [[m.kmem_cache_alloc(c, "GFP_KERNEL", cpu=cpu) for _ in range(40)] for cpu in (0, 1)]
    assert mine == want
