"""mlock() and munlock() with the unevictable LRU (csrc/mlock.c <-> pyalloc/model/mlock.py), on
both backends, as 6.18's mm/mlock.c: locked pages leave the evictable lists, reclaim and
MADV_COLD/PAGEOUT/DONTNEED leave them alone, munlock/munmap/exit give them back, the counters
and /proc text follow, bad input changes nothing, and a saved machine continues identically."""

import pytest

import pyalloc
from pyalloc import InvalidArgument


def counters(m):
    return m.reclaim_counters()


def delta(before, after):
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def state(m):
    """Everything a failed call must leave alone."""
    return (m.processes(), counters(m), m.proc("meminfo"), m.proc("zoneinfo"), m.proc("vmstat"), m.dmesg())


def vmstat(m):
    return dict((k, int(v)) for k, v in (line.split() for line in m.proc("vmstat").splitlines()))


def meminfo(m, label):
    line = next(x for x in m.proc("meminfo").splitlines() if x.startswith(label + ":"))
    return int(line.split()[1])


@pytest.fixture
def m(backend):
    with pyalloc.Machine(mem="64M", backend=backend, swap="16M") as mach:
        yield mach


def test_mlock_culls_present_pages_and_counts_as_618(m):
    pid = m.spawn("a")
    m.touch(pid, 100)
    before = counters(m)
    assert m.mlock(pid, 10, 40) == 40
    d = delta(before, counters(m))
    # mlock_folio(): mlocked; __mlock_folio(): culled to LRU_UNEVICTABLE; populate faults nothing
    assert d == {"unevictable_pgs_mlocked": 40, "unevictable_pgs_culled": 40, "nr_unevictable": 40,
                 "nr_inactive_anon": -40}
    v = vmstat(m)
    assert (v["nr_zone_unevictable"], v["nr_mlock"], v["nr_unevictable"]) == (40, 40, 40)
    assert v["nr_anon_pages"] == 100
    assert meminfo(m, "Unevictable") == meminfo(m, "Mlocked") == 160
    assert meminfo(m, "AnonPages") == 400
    assert m.processes()[0]["rss"] == 100
    # locking a locked range again changes nothing (mlock_fixup() with unchanged flags)
    before = counters(m)
    m.mlock(pid, 10, 40)
    assert delta(before, counters(m)) == {}
    m.check()


def test_mlock_populates_holes_and_swap(m):
    pid = m.spawn("a")
    m.touch(pid, 64)
    m.madvise(pid, 0, 16, "MADV_PAGEOUT")           # 16 on swap
    m.madvise(pid, 16, 16, "MADV_DONTNEED")         # 16 holes
    before = counters(m)
    assert m.mlock(pid, 0, 64) == 64
    d = delta(before, counters(m))
    assert d["pswpin"] == 16 and d["pgmajfault"] == 16 and d["pgfault"] == 32
    assert d["unevictable_pgs_mlocked"] == d["unevictable_pgs_culled"] == 64
    c = counters(m)
    assert (c["nr_unevictable"], c["nr_inactive_anon"], c["nr_active_anon"]) == (64, 0, 0)
    assert m.processes()[0]["swapents"] == 0
    m.check()


def test_page_faulted_into_a_locked_range_is_mlocked(m):
    """A range stays VM_LOCKED when populating it fails; a later fault mlocks the new page
    (folio_add_lru_vma() -> mlock_new_folio()).  The core call alone leaves such pages."""
    pid = m.spawn("a")
    m.touch(pid, 20)
    m.madvise(pid, 0, 10, "MADV_DONTNEED")
    assert m._core.mlock(m._procs[pid].mm, 0, 20) == 0      # VM_LOCKED, no populate
    c = counters(m)
    assert (c["nr_unevictable"], c["unevictable_pgs_mlocked"]) == (10, 10)
    m.check()
    m.touch(pid, 5)
    c = counters(m)
    assert (c["nr_unevictable"], c["unevictable_pgs_mlocked"], c["unevictable_pgs_culled"]) == (15, 15, 15)
    assert c["nr_inactive_anon"] == 0
    m.check()


def test_reclaim_leaves_locked_pages(m):
    locked = m.spawn("locked")
    m.touch(locked, 4000)
    m.mlock(locked, 0, 4000)
    hog = m.spawn("hog")
    m.touch(hog, 12000)                 # more than is left: kswapd and direct reclaim swap the hog
    m.read_file("/cache", 3000)
    c = counters(m)
    assert c["pswpout"] > 0
    p = {t["name"]: t for t in m.processes()}
    assert (p["locked"]["rss"], p["locked"]["swapents"]) == (4000, 0)
    assert c["nr_unevictable"] == 4000 and c["unevictable_pgs_scanned"] == 0
    m.sysctl("vm.compact_memory", 1)     # compaction may move a locked page; it stays locked
    assert counters(m)["nr_unevictable"] == 4000
    m.check()


def test_madvise_on_a_locked_range_is_einval(m):
    pid = m.spawn("a")
    m.touch(pid, 50)
    m.mlock(pid, 20, 10)
    before = state(m)
    for advice in ("MADV_DONTNEED", "MADV_COLD", "MADV_PAGEOUT"):
        with pytest.raises(InvalidArgument):
            m.madvise(pid, 0, 25, advice)       # overlaps the locked pages
        assert state(m) == before
    m.madvise(pid, 0, 20, "MADV_PAGEOUT")       # beside them: fine
    assert m.processes()[0]["swapents"] == 20
    m.check()


def test_munlock_rescues_to_the_inactive_list(m):
    pid = m.spawn("a")
    m.touch(pid, 30)
    m.mlock(pid, 0, 30)
    before = counters(m)
    m.munlock(pid, 5, 10)
    d = delta(before, counters(m))
    assert d == {"unevictable_pgs_munlocked": 10, "unevictable_pgs_rescued": 10, "nr_unevictable": -10,
                 "nr_inactive_anon": 10}
    before = counters(m)
    m.munlock(pid, 5, 10)                       # not locked any more: nothing
    assert delta(before, counters(m)) == {}
    m.madvise(pid, 5, 10, "MADV_PAGEOUT")       # evictable again
    assert m.processes()[0]["swapents"] == 10
    m.check()


def test_munmap_and_exit_munlock(m):
    pid = m.spawn("a")
    m.touch(pid, 40)
    m.mlock(pid, 0, 40)
    m.munmap(pid, 30, 10)
    c = counters(m)
    assert (c["unevictable_pgs_munlocked"], c["unevictable_pgs_rescued"], c["nr_unevictable"]) == (10, 10, 30)
    assert c["unevictable_pgs_cleared"] == 0
    m.touch(pid, 10, start=30)                  # the mapping grew back: not locked
    assert counters(m)["nr_inactive_anon"] == 10
    m.exit(pid)
    c = counters(m)
    assert (c["unevictable_pgs_munlocked"], c["nr_unevictable"], c["nr_inactive_anon"]) == (40, 0, 0)
    assert meminfo(m, "Mlocked") == 0
    m.check()


def test_oom_report_shows_the_locked_memory(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        locked = m.spawn("locked")
        m.touch(locked, 6000)
        m.mlock(locked, 0, 6000)
        hog = m.spawn("hog")
        m.touch(hog, 12000)
        text = "\n".join(m.dmesg())
        assert counters(m)["oom_kill"] == 1
        assert " unevictable:6000 " in text and "mlocked:24000kB" in text
        assert "locked" not in [t["name"] for t in m.processes()] or counters(m)["nr_unevictable"] == 6000
        # MemAvailable counts no locked page (si_mem_available(): file LRU and slab only)
        assert meminfo(m, "MemAvailable") <= meminfo(m, "MemFree") + meminfo(m, "Cached") + 4096
        m.check()


@pytest.mark.parametrize("call", [
    lambda m, pid: m.mlock(pid, 90, 20),            # past the end
    lambda m, pid: m.mlock(pid, -1, 5),
    lambda m, pid: m.mlock(pid, 0, -1),
    lambda m, pid: m.mlock(999, 0, 1),              # no such process
    lambda m, pid: m.munlock(pid, 100, 1),
    lambda m, pid: m.munlock(pid, 0, 1 << 62),
    lambda m, pid: m.munlock(999, 0, 1),
])
def test_bad_input_changes_nothing(m, call):
    pid = m.spawn("a")
    m.touch(pid, 100)
    m.mlock(pid, 0, 10)
    before = state(m)
    with pytest.raises(InvalidArgument):
        call(m, pid)
    assert state(m) == before
    m.check()


def test_core_validates_what_crosses(m):
    pid = m.spawn("a")
    m.touch(pid, 10)
    mid = m._procs[pid].mm
    for args in ((mid, 5, 6), (mid, -1, 1), (mid, 0, -1), (mid + 7, 0, 1), (-1, 0, 1), (mid, 1 << 62, 1 << 62)):
        assert m._core.mlock(*args) == pyalloc.errors.EINVAL
        assert m._core.munlock(*args) == pyalloc.errors.EINVAL
    m.check()


@pytest.mark.parametrize("other", ["c", "model"])
def test_save_load_continues_identically(backend, other, tmp_path):
    from pyalloc._testing import require_backend
    require_backend(pytest, other)

    def workload(mach, pids, start):
        a, b = pids
        if start:
            mach.munlock(a, 100, 50)
            mach.touch(b, 6000, start=3000)
            mach.munmap(a, 0, 80)
            mach.exit(a)
        else:
            mach.touch(a, 1000)
            mach.mlock(a, 50, 500)
            mach.touch(b, 3000)

    with pyalloc.Machine(mem="48M", backend=backend, swap="16M") as m1:
        pids = (m1.spawn("a"), m1.spawn("b"))
        workload(m1, pids, False)
        path = tmp_path / "m.snap"
        m1.save(path)
        workload(m1, pids, True)
        with pyalloc.Machine.load(path, backend=other) as m2:
            m2.check()
            assert counters(m2)["nr_unevictable"] == 500
            workload(m2, pids, True)
            assert state(m2) == state(m1)
            m2.check()


def test_readme_mlock_example_runs(backend, monkeypatch):
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "m.mlock(db" in b)
    block = block.replace('pyalloc.Machine(mem="64M", swap="16M")',
                          f'pyalloc.Machine(mem="64M", swap="16M", backend={backend!r})')
    ns: dict = {"pyalloc": pyalloc}
    exec(compile(block.replace("m.exit(db)", "m.check()\nm.exit(db)"), "README.md", "exec"), ns)
    m = ns["m"]
    c = counters(m)
    assert (c["unevictable_pgs_munlocked"], c["unevictable_pgs_rescued"], c["nr_unevictable"]) == (3000, 3000, 0)
    assert c["unevictable_pgs_mlocked"] == 3000 and c["pswpin"] >= 1000
    m.check()
