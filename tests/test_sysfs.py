"""/sys/kernel/slab/<cache>/ attributes, checked against the same machine's /proc/slabinfo
and against what each cache was created with, on both backends."""

import pytest

import pyalloc
from pyalloc import helpers
from pyalloc.text import sysfs
from pyalloc.tools import workload
from procview import slabinfo

SLABINFO_TOOL_READS = ("aliases", "align", "cache_dma", "cpu_slabs", "destroy_by_rcu", "hwcache_align",
                       "object_size", "objects", "objects_partial", "objs_per_slab", "order", "partial",
                       "poison", "reclaim_account", "red_zone", "sanity_checks", "slab_size", "slabs",
                       "store_user", "total_objects", "trace")


def node_count(text: str) -> int:
    """"<total> N0=<total>\\n" (or "0\\n"), as show_slab_objects() prints on a one-node machine."""
    assert text.endswith("\n")
    parts = text.split()
    total = int(parts[0])
    assert parts[1:] == ([f"N0={total}"] if total else [])
    return total


def test_every_cache_agrees_with_slabinfo(backend):
    with pyalloc.Machine(mem="256M", backend=backend) as m:
        workload.run_slab(m)
        rows = {r["name"]: r for r in slabinfo(m)}
        for cache in helpers.for_each_slab_cache(m):
            attrs = m.slab_sysfs(cache)
            assert set(SLABINFO_TOOL_READS) <= set(attrs)
            row = rows[cache.name]
            assert node_count(attrs["objects"]) == row["active"]
            assert node_count(attrs["total_objects"]) == row["num"]
            assert node_count(attrs["slabs"]) == row["num_slabs"]
            assert int(attrs["slab_size"]) == row["objsize"]
            assert int(attrs["objs_per_slab"]) == row["per_slab"]
            assert 1 << int(attrs["order"]) == row["pages"]
            assert int(attrs["object_size"]) == cache.object_size
            # partial and cpu slabs are among all slabs; objects in partial slabs among all objects
            assert node_count(attrs["partial"]) + node_count(attrs["cpu_slabs"]) <= row["num_slabs"]
            assert node_count(attrs["objects_partial"]) <= row["active"]
            # one attribute read alone is the same text
            assert m.sysfs(f"kernel/slab/{cache.name}/objects") == attrs["objects"]
        m.check()


@pytest.mark.parametrize("cpu_partial", [False, True])
def test_partial_and_cpu_slabs_follow_the_slab_lists(backend, cpu_partial):
    with pyalloc.Machine(mem="64M", backend=backend, cpus=2, kconfig={"SLUB_CPU_PARTIAL": cpu_partial}) as m:
        c = m.kmem_cache_create("probe", 512)            # 8 per order-0 slab... whatever the order gives
        per = helpers.slab_cache_objects_per_slab(m, c)
        objs = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(3 * per)]
        a = m.slab_sysfs(c)
        assert node_count(a["slabs"]) == 3 and node_count(a["cpu_slabs"]) == 1
        assert node_count(a["partial"]) == 0 and node_count(a["objects"]) == 3 * per
        # free one object in each of the two full, non-cpu slabs: both go to this CPU's partial
        # list (put_cpu_partial), or without cpu partial lists to the node partial list
        infos = [helpers.slab_object_info(m, o) for o in objs]
        full = sorted({i.slab.pfn for i in infos if not i.slab.frozen})
        for pfn in full:
            victim = next(o for o, i in zip(objs, infos) if i.slab.pfn == pfn)
            m.kmem_cache_free(c, victim)
        a = m.slab_sysfs(c)
        if cpu_partial:
            assert node_count(a["partial"]) == 0 and node_count(a["cpu_slabs"]) == 3
            assert a["slabs_cpu_partial"] == f"{per}(2) C0={per}(2)\n"
            assert node_count(a["objects"]) == 3 * per      # cpu partial slabs count as in use
        else:
            assert node_count(a["partial"]) == 2 and node_count(a["cpu_slabs"]) == 1
            assert node_count(a["objects_partial"]) == 2 * (per - 1)
            assert node_count(a["objects"]) == 3 * per - 2
        assert len(c) == 3 * per - 2


def test_flags_and_aliases(make_machine):
    m = make_machine(mem="64M", slub_debug="FZPU,dentry", slab_merge=True)
    d = m.kmem_cache_create("dentry", 192, 0, "SLAB_RECLAIM_ACCOUNT|SLAB_HWCACHE_ALIGN")
    a = m.slab_sysfs(d)
    assert (a["sanity_checks"], a["red_zone"], a["poison"], a["store_user"]) == ("1\n",) * 4
    assert (a["reclaim_account"], a["hwcache_align"], a["cache_dma"], a["trace"]) == ("1\n", "1\n", "0\n", "0\n")
    x = m.kmem_cache_create("mine", 100)
    m.kmem_cache_create("mine_again", 100)             # merges into "mine"
    assert m.slab_sysfs(x)["aliases"] == "1\n"
    assert m.sysfs("kernel/slab/kmalloc-64/aliases") == "0\n"
    assert m.sysfs("/sys/kernel/slab/kmalloc-64/red_zone") == "0\n"
    assert m.sysfs("kernel/slab/mine/min_partial") == "%d\n" % sysfs._min_partial(int(m.slab_sysfs(x)["slab_size"]))


@pytest.mark.parametrize("path", ["kernel/slab/nope/objects", "kernel/slab/kmalloc-64/nope", "kernel/mm/x",
                                  "", "kernel/slab/kmalloc-64"])
def test_bad_paths(machine, path):
    before = machine.proc("slabinfo")
    with pytest.raises(pyalloc.InvalidArgument):
        machine.sysfs(path)
    assert machine.proc("slabinfo") == before
    with pytest.raises(pyalloc.InvalidArgument):
        machine.sysfs(42)
