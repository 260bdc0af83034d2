"""Processes and files giving memory back (touch ranges, munmap, madvise,
truncate, unlink) and the vm sysctls (Machine.sysctl, /proc/sys/vm), on both
backends.  Bad input raises the documented exception with the machine
unchanged."""

import pytest

import pyalloc
from pyalloc import InvalidArgument
from pyalloc._abi import MAX_PAGES, VM_SYSCTLS


def counters(m):
    return m.reclaim_counters()


def state(m):
    """Everything a failed call must leave alone."""
    return (m.processes(), counters(m), m.proc("meminfo"), m.proc("zoneinfo"), m.proc("vmstat"), m.dmesg(),
            {p: m.file_info(p) for p in ("/f",) if p in m._files}, m.sysctls())


@pytest.fixture
def m(backend):
    with pyalloc.Machine(mem="64M", backend=backend, swap="16M") as mach:
        yield mach


def test_touch_range_grows_without_retouching(m):
    pid = m.spawn("grow")
    for k in range(0, 400, 100):
        assert m.touch(pid, 100, start=k) == 100
    assert m.processes()[0]["total_vm"] == 400
    assert counters(m)["pgfault"] == 400
    # touch(pid, pages) keeps its meaning: [0, pages)
    assert m.touch(pid, 50) == 50
    assert counters(m)["pgfault"] == 400
    m.check()


def test_munmap_frees_pages_and_swap(m):
    pid = m.spawn("a")
    m.touch(pid, 200)
    m.madvise(pid, 0, 50, "MADV_PAGEOUT")
    assert m.processes()[0]["swapents"] == 50
    free_swap = counters(m)["nr_swap_free"]
    m.munmap(pid, 0, 100)               # 50 swap entries, 50 pages: a hole at the start
    p = m.processes()[0]
    assert (p["total_vm"], p["rss"], p["swapents"]) == (200, 100, 0)
    assert counters(m)["nr_swap_free"] == free_swap + 50
    m.munmap(pid, 150, 50)              # the tail: the mapping shrinks
    assert m.processes()[0]["total_vm"] == 150
    # the hole faults in zero pages again
    faults = counters(m)["pgfault"]
    assert m.touch(pid, 10) == 10
    assert counters(m)["pgfault"] == faults + 10
    assert m.user_read(pid, 0, 8) == bytes(8)
    m.check()


def test_madvise_dontneed_drops_data(m):
    pid = m.spawn("a")
    m.touch(pid, 4)
    m.user_write(pid, 0, b"hello")
    m.madvise(pid, 0, 1, "MADV_DONTNEED")
    assert m.processes()[0]["rss"] == 3 and m.processes()[0]["total_vm"] == 4
    assert m.user_read(pid, 0, 5) == bytes(5)


def test_madvise_pageout_swaps_and_counts_as_618(m):
    pid = m.spawn("a")
    m.touch(pid, 64)
    m.user_write(pid, 4096, b"kept")
    before = counters(m)
    m.madvise(pid, 0, 64, "MADV_PAGEOUT")
    after = counters(m)
    delta = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    assert delta["pswpout"] == 64 and delta["nr_vmscan_write"] == 64 and delta["pgpgout"] == 256
    assert "pgscan_direct" not in delta and "pgsteal_direct" not in delta     # not shrink_inactive_list
    assert after["nr_inactive_anon"] == 0
    assert m.user_read(pid, 4096, 4) == b"kept"     # swapped back in
    assert counters(m)["pswpin"] == 1
    m.check()


def test_madvise_pageout_without_swap_activates(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        pid = m.spawn("a")
        m.touch(pid, 10)
        m.madvise(pid, 0, 10, "MADV_PAGEOUT")
        c = counters(m)
        assert (c["pgactivate"], c["nr_active_anon"], c["nr_inactive_anon"], c["pswpout"]) == (10, 10, 0, 0)
        m.madvise(pid, 0, 4, "MADV_COLD")
        c = counters(m)
        assert (c["pgdeactivate"], c["nr_active_anon"], c["nr_inactive_anon"]) == (4, 6, 4)
        m.madvise(pid, 0, 4, "MADV_COLD")       # already inactive: nothing moves
        assert counters(m)["pgdeactivate"] == 4
        m.check()


def test_truncate_and_unlink(m):
    m.file_write("/f", 0, b"x" * (10 * 4096))
    assert m.file_info("/f")["dirty"] == 10
    m.truncate("/f", 4)
    assert m.file_info("/f") == {"size": 4 * 4096, "cached": 4, "dirty": 4}
    assert counters(m)["nr_dirty"] == 4
    m.truncate("/f", 6)                 # a hole past the old end reads as zeros
    assert m.file_size("/f") == 6 * 4096
    assert m.file_read("/f", 4 * 4096, 4096) == bytes(4096)
    assert m.file_read("/f", 0, 1) == b"x"
    m.unlink("/f")
    assert counters(m)["nr_dirty"] == 0 and counters(m)["nr_inactive_file"] == 0
    assert "Cached:                0 kB" in m.proc("meminfo")
    with pytest.raises(InvalidArgument):
        m.file_size("/f")
    m.check()


@pytest.mark.parametrize("call", [
    lambda m, pid: m.munmap(pid, 90, 20),             # past the end
    lambda m, pid: m.munmap(pid, -1, 2),
    lambda m, pid: m.munmap(pid, 0, -1),
    lambda m, pid: m.munmap(999, 0, 1),               # no such pid
    lambda m, pid: m.madvise(pid, 0, 101, "MADV_DONTNEED"),
    lambda m, pid: m.madvise(pid, 0, 10, "MADV_FREE"),    # advice pyalloc does not model
    lambda m, pid: m.madvise(pid, 0, 10, "madv_cold"),
    lambda m, pid: m.touch(pid, 1, start=-1),
    lambda m, pid: m.touch(pid, MAX_PAGES, start=1),
    lambda m, pid: m.truncate("/f", -1),
    lambda m, pid: m.truncate("/nope", 1),
    lambda m, pid: m.unlink("/nope"),
    lambda m, pid: m.sysctl("vm.swappiness", 201),
    lambda m, pid: m.sysctl("vm.swappiness", -1),
    lambda m, pid: m.sysctl("vm.watermark_scale_factor", 0),
    lambda m, pid: m.sysctl("vm.watermark_scale_factor", 3001),
    lambda m, pid: m.sysctl("vm.dirty_ratio", 101),
    lambda m, pid: m.sysctl("vm.extfrag_threshold", 1001),
    lambda m, pid: m.sysctl("vm.min_free_kbytes", -5),
    lambda m, pid: m.sysctl("vm.min_free_kbytes", 1 << 31),
    lambda m, pid: m.sysctl("vm.compact_memory", 2),
    lambda m, pid: m.sysctl("vm.compact_memory"),    # write-only: EACCES
    lambda m, pid: m.sysctl("vm.drop_caches"),
    lambda m, pid: m.sysctl("vm.drop_caches", 0),
    lambda m, pid: m.sysctl("vm.drop_caches", 5),
    lambda m, pid: m.sysctl("vm.nope"),
    lambda m, pid: m.sysctl("kernel.swappiness"),
    lambda m, pid: m.sysctl("swappiness"),
])
def test_bad_input_changes_nothing(m, call):
    pid = m.spawn("a")
    m.touch(pid, 100)
    m.file_write("/f", 0, b"y" * 8192)
    before = state(m)
    with pytest.raises(InvalidArgument):
        call(m, pid)
    assert state(m) == before
    m.check()


@pytest.mark.parametrize("call", [
    lambda m, pid: m.munmap(pid, 0.0, 1),
    lambda m, pid: m.madvise(pid, 0, 1, 4),
    lambda m, pid: m.touch(pid, 1, start="0"),
    lambda m, pid: m.sysctl("vm.swappiness", 1.5),
    lambda m, pid: m.sysctl("vm.swappiness", True),
    lambda m, pid: m.sysctl(b"vm.swappiness"),
    lambda m, pid: m.mlock(pid, "0", 5),
    lambda m, pid: m.mlock(pid, 0, 1.5),
    lambda m, pid: m.munlock("1", 0, 1),
])
def test_wrong_types(m, call):
    pid = m.spawn("a")
    m.touch(pid, 10)
    before = state(m)
    with pytest.raises(TypeError):
        call(m, pid)
    assert state(m) == before


def test_sysctl_read_write_and_names(m):
    for name, default, _, _ in VM_SYSCTLS:
        assert m.sysctl("vm." + name) == default
        assert m.proc("sys/vm/" + name) == f"{default}\n"
    m.sysctl("vm/swappiness", 0)
    assert m.sysctl("vm.swappiness") == 0 and m.proc("sys/vm/swappiness") == "0\n"
    m.sysctl("vm.swappiness", 200)
    assert m.sysctls()["swappiness"] == 200
    assert m.sysctl("vm.min_free_kbytes") == m.snapshot()["min_free_kbytes"]


def test_sysctl_moves_the_watermarks(m):
    def wmarks():
        return [z["wmark"] for z in m.snapshot()["zones"] if z["managed"]]
    base = wmarks()
    m.sysctl("vm.min_free_kbytes", 2 * m.sysctl("vm.min_free_kbytes"))
    doubled = wmarks()
    assert all(d[0] in (2 * b[0], 2 * b[0] + 1) for d, b in zip(doubled, base))
    m.sysctl("vm.watermark_scale_factor", 1000)     # 10% of each zone between min, low and high
    for z in m.snapshot()["zones"]:
        if z["managed"]:
            step = z["wmark"][1] - z["wmark"][0]
            assert step == max(z["wmark"][0] // 4, z["managed"] * 1000 // 10000)
            assert z["wmark"][2] - z["wmark"][1] == step
    # the zoneinfo text follows
    assert f"        low      {m.snapshot()['zones'][1]['wmark'][1]}" in m.proc("zoneinfo")
    m.check()


def test_sysctl_dirty_ratio_moves_the_threshold(m):
    t0 = int(m.proc("vmstat").split("nr_dirty_threshold ")[1].split()[0])
    m.sysctl("vm.dirty_ratio", 40)
    t1 = int(m.proc("vmstat").split("nr_dirty_threshold ")[1].split()[0])
    assert t1 in (2 * t0, 2 * t0 + 1)


def test_drop_caches_and_compact_memory(m):
    m.read_file("/f", 100)
    m.write_file("/g", 10)
    m.sysctl("vm.drop_caches", 1)
    c = counters(m)
    assert c["drop_pagecache"] == 1 and c["drop_slab"] == 0
    assert c["nr_inactive_file"] == 10              # dirty pages stay
    assert m.dmesg()[-1].endswith("pyalloc (1): drop_caches: 1")
    m.sysctl("vm.drop_caches", 4)                   # silences the line for good
    n = len(m.dmesg())
    m.sysctl("vm.drop_caches", 3)
    assert len(m.dmesg()) == n and counters(m)["drop_slab"] == 1 and counters(m)["drop_pagecache"] == 2
    pid = m.spawn("a")
    m.touch(pid, 2000)
    m.munmap(pid, 0, 1000)
    m.sysctl("vm.compact_memory", 1)
    c = counters(m)
    assert c["compact_migrate_scanned"] > 0 and c["compact_stall"] == 0
    m.check()


def test_sysctl_survives_a_snapshot(m, backend, tmp_path):
    m.sysctl("vm.swappiness", 7)
    m.sysctl("vm.watermark_scale_factor", 200)
    m.sysctl("vm.drop_caches", 4)
    m.save(tmp_path / "m.snap")
    for b in ("c", "model"):
        m2 = pyalloc.Machine.load(tmp_path / "m.snap", backend=b)
        assert m2.sysctls() == m.sysctls()
        assert m2.snapshot()["zones"] == m.snapshot()["zones"]
        n = len(m2.dmesg())
        m2.sysctl("vm.drop_caches", 1)              # still silenced
        assert len(m2.dmesg()) == n
        m2.sysctl("vm.min_free_kbytes", m2.sysctl("vm.min_free_kbytes"))    # recomputed from the loaded factor
        assert m2.snapshot()["zones"] == m.snapshot()["zones"]
        m2.close()


def test_holes_survive_a_snapshot(m, tmp_path):
    """munmap, MADV_DONTNEED of the tail and a longer truncate leave empty entries below the
    mapping's end: a snapshot keeps them, on both backends."""
    pid = m.spawn("a")
    m.touch(pid, 30)
    m.madvise(pid, 20, 10, "MADV_DONTNEED")
    m.munmap(pid, 0, 5)
    m.read_file("/f", 1)
    m.truncate("/f", 3)
    m.save(tmp_path / "m.snap")
    for b in ("c", "model"):
        m2 = pyalloc.Machine.load(tmp_path / "m.snap", backend=b)
        m2.check()
        assert m2.processes() == m.processes() and m2.file_info("/f") == m.file_info("/f")
        assert m2.touch(pid, 30) == 30
        m2.close()
