"""Per-cpu page lists (mm/page_alloc.c, Linux 6.18), on both backends."""

import pickle

import pytest

import pyalloc
from pyalloc.errors import InvalidArgument
from pyalloc.model.pcp import zone_batchsize

DMA32 = 1


def _real_pagesets(path="tests/fixtures/zoneinfo.txt"):
    out = {}
    zone = None
    for line in open(path):
        if line.startswith("Node"):
            zone = line.split()[-1]
        elif line.strip().startswith(("batch:", "high_min:", "high_max:")) and zone not in out.get("_done", ()):
            k, v = line.split()
            out.setdefault(zone, {})[k.rstrip(":")] = int(v)
    return out


def test_batch_formula_matches_real_zoneinfo():
    # managed pages of the real 6.18 machine's zones and the batch it printed
    assert zone_batchsize(3840) == 0 and max(1, zone_batchsize(3840)) == 1
    assert zone_batchsize(772808) == 63
    assert zone_batchsize(131072) == 31
    real = _real_pagesets()
    assert real["DMA32"]["batch"] == 63 and real["Normal"]["batch"] == 31 and real["DMA"]["batch"] == 1


@pytest.mark.parametrize("mem,cpus", [("1G", 2), ("4G", 4), ("256M", 1)])
def test_high_and_batch(backend, mem, cpus):
    m = pyalloc.Machine(mem=mem, cpus=cpus, backend=backend)
    for zid in range(3):
        z = m._core.zone_info(zid)
        if not z.managed:
            continue
        info = m._core.pcp_info(zid, cpus - 1)
        batch = max(1, zone_batchsize(z.managed))
        assert info["batch"] == batch
        assert info["high_min"] == max(z.wmark[1] // cpus, batch * 4)
        assert info["high_max"] == max(z.managed // 8 // cpus, batch * 4)
        assert info["high"] == 0 and info["count"] == 0


def test_refill_by_batch_and_lifo(backend):
    m = pyalloc.Machine(mem="1G", cpus=2, backend=backend)
    p = m.alloc_pages("GFP_KERNEL")
    info = m._core.pcp_info(DMA32, 0)
    # nr_pcp_alloc: high grows by batch from high_min, then batch pages come from the buddy
    assert info["count"] == info["batch"] - 1
    assert info["high"] == info["high_min"] + info["batch"]
    m.free_pages(p)
    assert m._core.pcp_info(DMA32, 0)["lists"][0][2][0] == p
    assert m.alloc_pages("GFP_KERNEL") == p
    m.check()


def test_pcp_is_per_cpu(backend):
    m = pyalloc.Machine(mem="1G", cpus=2, backend=backend)
    p = m.alloc_pages("GFP_KERNEL")
    m.free_pages(p)
    m._core.set_cpu(1)
    q = m.alloc_pages("GFP_KERNEL")
    assert q != p
    assert p in m._core.pcp_info(DMA32, 0)["lists"][0][2]
    m.check()


def test_free_past_high_drains_to_buddy(backend):
    m = pyalloc.Machine(mem="1G", cpus=2, backend=backend)
    pfns = [m.alloc_pages("GFP_KERNEL") for _ in range(3000)]
    for p in pfns:
        m.free_pages(p)
        info = m._core.pcp_info(DMA32, 0)
        assert info["count"] < max(info["high"], info["high_min"]) + info["batch"]
    m.check()


def test_drain_pages_and_accounting(backend):
    m = pyalloc.Machine(mem="1G", cpus=2, backend=backend)
    free0 = m._core.zone_info(DMA32).nr_free_pages
    p = m.alloc_pages("GFP_KERNEL")
    m.free_pages(p)
    count = m._core.pcp_info(DMA32, 0)["count"]
    assert count > 0
    assert m._core.zone_info(DMA32).nr_free_pages == free0 - count
    zi = m.proc("zoneinfo")
    assert "count:    %d" % count in zi
    assert "free_pcp:%d" % count in "\n".join(m.show_mem()) if hasattr(m, "show_mem") else True
    m.drain_pages(1)
    assert m._core.pcp_info(DMA32, 0)["count"] == count
    m.drain_pages(0)
    assert m._core.pcp_info(DMA32, 0)["count"] == 0
    assert m._core.zone_info(DMA32).nr_free_pages == free0
    m.check()


@pytest.mark.parametrize("bad", [-1, 2, 99, "0", 1.0, True])
def test_drain_bad_cpu(backend, bad):
    m = pyalloc.Machine(mem="1G", cpus=2, backend=backend)
    m.free_pages(m.alloc_pages("GFP_KERNEL"))
    before = m._core.pcp_info(DMA32, 0)
    with pytest.raises(InvalidArgument):
        m.drain_pages(bad)
    assert m._core.pcp_info(DMA32, 0) == before


def test_double_free_of_pcp_page(backend):
    m = pyalloc.Machine(mem="1G", cpus=2, backend=backend)
    p = m.alloc_pages("GFP_KERNEL")
    m.free_pages(p)
    with pytest.raises(pyalloc.DoubleFree):
        m.free_pages(p)
    m.check()


def test_snapshot_round_trip_continues(backend):
    m = pyalloc.Machine(mem="1G", cpus=2, backend=backend)
    pfns = [m.alloc_pages("GFP_KERNEL", o) for o in (0, 1, 3, 9) for _ in range(20)]
    for p, o in zip(pfns[::2], [o for o in (0, 1, 3, 9) for _ in range(20)][::2]):
        m.free_pages(p, o)
    m2 = pickle.loads(pickle.dumps(m))
    m2.check()
    for zid in range(3):
        for cpu in range(2):
            assert m2._core.pcp_info(zid, cpu) == m._core.pcp_info(zid, cpu)
    for o in (0, 1, 3, 9, 0, 0):
        assert m.alloc_pages("GFP_KERNEL", o) == m2.alloc_pages("GFP_KERNEL", o)


def test_high_min_above_high_max_clamps_as_the_kernel():
    """A large vm.min_free_kbytes raises a small zone's low watermark, so zone_highsize() gives a
    high_min above high_max; clamp() (include/linux/minmax.h __clamp) then answers high_max for a
    value at or above it, on both backends alike."""
    states = []
    for backend in ("c", "model"):
        with pyalloc.Machine(mem=(16 << 20) + (8 << 20) + 3 * 4096, cpus=2, backend=backend) as m:
            m.sysctl("vm.min_free_kbytes", 3001)
            p = [m._core.pcp_info(z, 0) for z in range(2)]
            assert any(i["high_min"] > i["high_max"] for i in p)
            got = [m.alloc_pages("GFP_DMA32", 0) for _ in range(6)]
            for pfn in got:
                m.free_pages(pfn, 0)
            info = m._core.pcp_info(1, 0)
            assert info["high"] == info["high_max"] < info["high_min"]
            states.append([m._core.pcp_info(z, c) for z in range(2) for c in range(2)])
    assert states[0] == states[1]
