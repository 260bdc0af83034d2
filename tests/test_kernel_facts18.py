"""Small facts a kernel developer reads first (issue 18, item 6), on both backends:
the OOM header's oom_score_adj, NR_PAGETABLE against the task list, pgfree with the
boot frees, swap-in faults in pgfault, no pgpgin for fresh writes, __GFP_WRITE on
page-cache writes, Committed_AS, and warn_alloc's rate limit (lib/ratelimit.c).
"""
import copy
import io
import re

from pyalloc.machine.ratelimit import HZ, RatelimitState

from procview import meminfo, vmstat

HUGE = 1 << 40                  # a vmalloc this large fails at once ("exceeds total pages")


def text(m):
    return [line.split("] ", 1)[1] for line in m.dmesg()]


def free_total(m):
    """Free pages: the buddy lists and the per-cpu lists (both count as freed for PGFREE)."""
    snap = m.snapshot()
    pcp = sum(p["count"] for z in snap["zones"] for p in z.get("pagesets", ()))
    return vmstat(m)["nr_free_pages"] + pcp


def pgalloc_total(m):
    return sum(v for k, v in vmstat(m).items() if k.startswith("pgalloc_"))


# -- 1. the OOM header is the current task's ---------------------------------------------------

def test_oom_header_prints_the_allocating_tasks_oom_score_adj(make_machine):
    m = make_machine(mem="64M")
    hog = m.spawn("hog", oom_score_adj=300)
    assert m.touch(hog, 1 << 20) < 1 << 20            # the OOM killer chose the faulting task
    lines = text(m)
    assert ("hog invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP), "
            "order=0, oom_score_adj=300") in lines
    # the simulated kernel's own task (pid 1) keeps 0
    keep = m.spawn("keep", oom_score_adj=-1000)
    m.touch(keep, 100)
    while m.alloc_pages("GFP_KERNEL|__GFP_NOWARN") is not None:
        pass
    assert any(re.fullmatch(r"pyalloc invoked oom-killer: .*, oom_score_adj=0", t) for t in text(m))
    m.check()


# -- 2. NR_PAGETABLE holds the processes' page tables ------------------------------------------

def test_pagetables_agree_with_the_task_list(make_machine):
    m = make_machine(mem="128M")
    kernel = vmstat(m)["nr_page_table_pages"]
    a, b = m.spawn("a"), m.spawn("b")
    m.touch(a, 9000)                                  # 18 PTE pages, a PMD and a PUD page: 80 kB
    m.touch(b, 1)
    procs = {p["pid"]: p["pgtables_bytes"] for p in m.processes()}
    assert procs == {a: 80 * 1024, b: 3 * 4096}
    pages = sum(procs.values()) // 4096
    assert vmstat(m)["nr_page_table_pages"] == kernel + pages == kernel + 23
    assert meminfo(m)["PageTables"] == 4 * (kernel + pages)
    zoneinfo = m.proc("zoneinfo")
    assert "\n      nr_page_table_pages %d\n" % (kernel + pages) in zoneinfo
    m.exit(a)
    assert vmstat(m)["nr_page_table_pages"] == kernel + 3
    m.exit(b)
    assert vmstat(m)["nr_page_table_pages"] == kernel


def test_show_mem_pagetables_in_the_oom_report(make_machine):
    m = make_machine(mem="64M")
    small, big = m.spawn("small"), m.spawn("big")
    m.touch(small, 1000)
    m.touch(big, 9000)
    while m.alloc_pages("GFP_KERNEL") is not None and m.last_alloc.oom_victim is None:
        pass
    assert m.last_alloc.oom_victim == big
    lines = text(m)
    rows = [t for t in lines if re.match(r"\[ +\d+\] ", t)]
    table = sum(int(r.split("]", 1)[1].split()[7]) for r in rows) // 4096
    assert table == 4 + 20                            # small: 2 PTE + PMD + PUD; big: 80 kB
    pagetables = [int(re.search(r" pagetables:(\d+)$", t)[1]) for t in lines if " pagetables:" in t
                  and t.startswith(" mapped:")]
    node = [int(re.search(r" pagetables:(\d+)kB", t)[1]) for t in lines if t.startswith("Node 0 active_anon:")]
    assert pagetables == [table] and node == [4 * table]   # no kernel tables yet: no vmalloc
    m.check()


# -- 3. pgfree counts the frees at boot --------------------------------------------------------

def test_pgfree_counts_the_boot_frees(make_machine):
    m = make_machine(mem="256M")
    v = vmstat(m)
    assert v["pgfree"] == 65536 and v["pgfree"] - pgalloc_total(m) == free_total(m)
    pfns = [m.alloc_pages("GFP_KERNEL", order) for order in (0, 3, 10, 0)]
    objs = [m.kmalloc(n, "GFP_KERNEL") for n in (8, 700, 5000, 70000)]
    area = m.vmalloc(1 << 20)
    m.free_pages(pfns[1], 3)
    m.kfree(objs[3])
    assert vmstat(m)["pgfree"] - pgalloc_total(m) == free_total(m)
    m.vfree(area)
    for o in objs[:3]:
        m.kfree(o)
    for pfn, order in zip(pfns, (0, 3, 10, 0)):
        if order != 3:
            m.free_pages(pfn, order)
    assert vmstat(m)["pgfree"] - pgalloc_total(m) == free_total(m)
    m.check()


# -- 4. swap-in faults are faults --------------------------------------------------------------

def test_swap_in_counts_in_pgfault_and_pgmajfault(make_machine):
    m = make_machine(mem="64M", swap="64M")
    a = m.spawn("a")
    m.touch(a, 8000)
    b = m.spawn("b")
    m.touch(b, 12000)
    before = m.reclaim_counters()
    assert m.processes()[0]["swapents"] > 0
    m.touch(a, 8000)
    after = m.reclaim_counters()
    swapped_in = after["pswpin"] - before["pswpin"]
    assert swapped_in > 0
    assert after["pgmajfault"] - before["pgmajfault"] == swapped_in
    assert after["pgfault"] - before["pgfault"] == swapped_in      # no new page: every fault was a swap-in
    m.check()


# -- 5. fresh writes read nothing --------------------------------------------------------------

def test_fresh_file_writes_do_not_count_in_pgpgin(make_machine):
    m = make_machine(mem="128M")
    assert m.write_file("/new", 100) == 100
    assert m.reclaim_counters()["pgpgin"] == 0
    m.file_write("/new", 100 * 4096 + 10, b"tail")     # past the end: nothing to read
    assert m.reclaim_counters()["pgpgin"] == 0
    assert m.read_file("/old", 100) == 100              # reads come from the disk
    assert m.reclaim_counters()["pgpgin"] == 400
    m.sync()
    m.drop_caches()
    m.file_write("/new", 4096, b"y" * 4096)             # a whole page: overwritten unread
    assert m.reclaim_counters()["pgpgin"] == 400
    m.file_write("/new", 2 * 4096 + 100, b"x" * 10)     # part of a page on disk: read first
    assert m.reclaim_counters()["pgpgin"] == 404
    m.write_file("/new", 50)                            # whole pages again
    assert m.reclaim_counters()["pgpgin"] == 404
    assert m.file_read("/new", 2 * 4096 + 98, 14) == bytes(2) + b"x" * 10 + bytes(2)
    m.check()


def test_fresh_writes_cost_no_read_time(make_machine):
    w, r = make_machine(mem="128M"), make_machine(mem="128M")
    w.write_file("/f", 1000)
    r.read_file("/f", 1000)
    # READ_PAGE_US per page read; a write only does its own work
    assert r.snapshot()["vm"]["clock_ns"] - w.snapshot()["vm"]["clock_ns"] == 1000 * 100 * 1000


# -- 6. __GFP_WRITE in the trace ---------------------------------------------------------------

def test_page_cache_writes_allocate_with_gfp_write(make_machine):
    out = io.StringIO()
    m = make_machine(mem="128M", trace=out)
    m.read_file("/r", 3)
    m.trace_flush()
    reads = [line for line in out.getvalue().splitlines() if "mm_page_alloc:" in line]
    m.write_file("/w", 3)
    m.file_write("/b", 0, b"abc")
    m.trace_flush()
    writes = [line for line in out.getvalue().splitlines() if "mm_page_alloc:" in line][len(reads):]
    assert len(reads) >= 3 and len(writes) >= 4
    assert not any("__GFP_WRITE" in line for line in reads)
    page_cache = [line for line in writes if "GFP_HIGHUSER_MOVABLE" in line]
    assert len(page_cache) == 4
    assert all("gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_COMP" in line for line in page_cache)


# -- 7. Committed_AS ---------------------------------------------------------------------------

def test_committed_as_is_the_processes_private_memory(make_machine):
    m = make_machine(mem="64M", swap="64M")
    assert meminfo(m)["Committed_AS"] == 0
    a, b = m.spawn("a"), m.spawn("b")
    m.touch(a, 8000)
    m.touch(b, 12000)                                   # pushes some of a out to swap: still committed
    m.read_file("/cache", 100)                          # the page cache commits nothing
    assert meminfo(m)["Committed_AS"] == 4 * 20000
    m.exit(a)
    assert meminfo(m)["Committed_AS"] == 4 * 12000


# -- 8. warn_alloc's rate limit ----------------------------------------------------------------

def test_ratelimit_state_follows_lib_ratelimit():
    rs = RatelimitState()
    assert rs.ratelimit(1000) == (True, 0)              # the first call opens the window
    assert rs.ratelimit(1001) == (False, 0)
    assert rs.ratelimit(1000 + 10 * HZ) == (False, 0)   # time_is_before_jiffies: strictly after
    assert (rs.begin, rs.missed) == (1000, 2)
    assert rs.ratelimit(1001 + 10 * HZ) == (True, 2)    # a new window reports the misses first
    assert rs.ratelimit(5000 + 10 * HZ) == (True, 0)    # a quiet window reports nothing
    assert RatelimitState.load(rs.dump()).dump() == rs.dump()


def advance(m, seconds):
    """Move the simulated clock by reading a file from disk again and again (READ_PAGE_US a page)."""
    pages = 25000
    for _ in range(round(seconds * 10_000) // pages + 1):
        m.drop_caches()
        m.read_file("/clock", pages)


def test_warn_alloc_is_rate_limited(make_machine):
    m = make_machine(mem="128M")
    for _ in range(3):
        assert m.vmalloc(HUGE) is None
    assert m.vmalloc(HUGE, "GFP_KERNEL|__GFP_NOWARN") is None  # never reaches the limiter
    failures = [t for t in text(m) if "vmalloc error: size" in t]
    assert len(failures) == 1 and not any("suppressed" in t for t in text(m))
    assert m.alloc_pages("GFP_KERNEL", 11) is None       # a WARN, not warn_alloc
    m2 = copy.deepcopy(m)                                # the limiter travels in snapshots
    for machine in (m, m2):
        advance(machine, 10)
        assert machine.vmalloc(HUGE) is None
        lines = text(machine)
        i = lines.index("warn_alloc: 2 callbacks suppressed")
        assert re.match(r"pyalloc: vmalloc error: size \d+, exceeds total pages", lines[i + 1])
        assert sum("vmalloc error: size" in t for t in lines) == 2
        assert machine.vmalloc(HUGE) is None             # the burst of the new window is spent
        assert sum("vmalloc error: size" in t for t in text(machine)) == 2
    assert m.dmesg() == m2.dmesg()


def test_readme_example_runs(backend, monkeypatch):
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "oom_score_adj=300" in b)
    monkeypatch.setenv("PYALLOC_BACKEND", backend)
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)
    m = ns["m"]
    assert any(line.endswith("order=0, oom_score_adj=300") for line in m.dmesg())
    assert m.reclaim_counters()["pgpgin"] == 0
    m.close()
