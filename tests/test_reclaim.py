"""What the GFP flags do under memory pressure, on both backends: reclaim of
clean and dirty page cache, swap, kswapd, compaction, the OOM killer, PSI.

Each scenario builds the same machine state twice with one builder function and
shows the difference one flag makes on it.
"""

import re

import pytest

import pyalloc
from pyalloc import InvalidArgument, OutOfMemory

DRAIN = "__GFP_NOWARN"          # no reclaim, no kswapd: takes pages down to the min watermark


def drain(m, gfp=DRAIN, order=0):
    """Allocate until the allocator says no and no page waits on a per-cpu list (a pcp refill
    takes its batch past the watermark, and only direct reclaim would drain it); returns the pfns."""
    got = []
    while True:
        pfn = m.alloc_pages(gfp, order)
        if pfn is None:
            if not any(p["count"] for z in m.snapshot()["zones"] for p in z.get("pagesets", ())):
                return got
            m.drain_pages()
            continue
        got.append(pfn)


def free_pages(m):
    return sum(int(line.split()[1]) for line in m.proc("vmstat").splitlines() if line.startswith("nr_free_pages "))


def counters(m):
    return m.reclaim_counters()


def clean_cache_machine(make_machine):
    m = make_machine(mem="64M")
    assert m.read_file("/var/cache/big", 20000) == 20000
    drain(m)
    return m


def dirty_cache_machine(make_machine):
    m = make_machine(mem="64M")
    assert m.write_file("/var/lib/db", 20000) == 20000
    drain(m)
    return m


def anon_machine(make_machine, swap=0):
    m = make_machine(mem="64M", swap=swap)
    small, big = m.spawn("small"), m.spawn("big")
    assert m.touch(small, 1000) == 1000
    assert m.touch(big, 9000) == 9000
    drain(m)
    return m, small, big


# -- the flags on the same state -------------------------------------------------------------

def test_clean_cache_gfp_kernel_reclaims_where_nowait_fails(make_machine):
    m = clean_cache_machine(make_machine)
    before = counters(m)
    assert m.alloc_pages("GFP_NOWAIT") is None
    assert not m.last_alloc.slept and m.last_alloc.kswapd_woken
    # kswapd works on the clock (6.18: beside the caller, not inside its call): let time pass,
    # and the cache gives pages back until the high watermark
    m.idle(100_000)
    after = counters(m)
    assert after["pgsteal_kswapd"] > before["pgsteal_kswapd"]
    assert after["pgsteal_direct"] == before["pgsteal_direct"]
    assert m.alloc_pages("GFP_NOWAIT") is not None
    m.check()

    m = clean_cache_machine(make_machine)
    assert m.alloc_pages("GFP_KERNEL") is not None
    cost = m.last_alloc
    assert cost.slept and cost.reclaimed >= 32 and cost.written_back == 0 and cost.swapped_out == 0
    assert counters(m)["allocstall_normal"] == 1
    m.check()


@pytest.mark.parametrize("gfp", ["GFP_NOIO", "GFP_NOFS", "GFP_KERNEL"])
def test_dirty_cache_is_written_by_the_flushers_not_reclaim(make_machine, gfp):
    """6.18: the writer is throttled at the dirty limit (balance_dirty_pages) while the flusher
    writes the cache behind it, so even a GFP_NOIO caller finds clean cache to drop; reclaim
    itself writes no file page (pageout() writes no filesystem folio)."""
    m = dirty_cache_machine(make_machine)
    thresh = int(next(line.split()[1] for line in m.proc("vmstat").splitlines()
                      if line.startswith("nr_dirty_threshold ")))
    before = counters(m)
    assert 0 < before["nr_dirty"] <= thresh + 1 and before["nr_written"] > 0
    assert m.alloc_pages(gfp) is not None
    assert m.last_alloc.written_back == 0
    assert counters(m)["nr_vmscan_write"] == 0
    m.check()


def test_atomic_dips_into_reserves_where_noretry_fails(make_machine):
    m = make_machine(mem="64M")
    drain(m)
    assert m.alloc_pages("GFP_KERNEL|__GFP_NORETRY") is None
    assert m.last_alloc.slept
    pfn = m.alloc_pages("GFP_ATOMIC")
    assert pfn is not None and m.last_alloc.reserves and not m.last_alloc.slept
    # with nothing to reclaim and nobody to kill, GFP_KERNEL fails where the kernel panics
    assert m.alloc_pages("GFP_KERNEL") is None
    log = "\n".join(m.dmesg())
    assert "Out of memory and no killable processes..." in log
    assert "pyalloc invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0" in log
    # out_of_memory() panics: its lines end dmesg (no page allocation failure report after them)
    text = [line.split("] ", 1)[1] for line in m.dmesg()]
    at = text.index("Kernel panic - not syncing: System is deadlocked on memory")
    assert text[at - 1] == "Out of memory and no killable processes..."
    assert text[at + 1].startswith("CPU: 0 UID: 0 PID: ") and " vpanic+0x" in "".join(text[at:])
    assert text[-2:] == ["Kernel Offset: disabled",
                         "---[ end Kernel panic - not syncing: System is deadlocked on memory ]---"]
    m.check()


def test_oom_killer_takes_the_largest_process_but_not_for_retry_mayfail(make_machine):
    m, small, big = anon_machine(make_machine)
    assert m.alloc_pages("GFP_KERNEL|__GFP_RETRY_MAYFAIL") is None
    assert {p["pid"] for p in m.processes()} == {small, big}
    assert not any("oom-killer" in line for line in m.dmesg())

    m, small, big = anon_machine(make_machine)
    assert m.alloc_pages("GFP_KERNEL") is not None
    assert m.last_alloc.oom_victim == big
    assert [p["pid"] for p in m.processes()] == [small]
    text = [line.split("] ", 1)[1] for line in m.dmesg()]
    assert "pyalloc invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0" in text
    assert "Tasks state (memory values in pages):" in text
    header = text.index("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes"
                        " swapents oom_score_adj name")
    rows = text[header + 1:header + 3]
    assert re.fullmatch(r"\[ +%d\] +0 +%d +1000 +1000 +1000 +0 +0 +\d+ +0 +0 small" % (small, small), rows[0])
    assert re.fullmatch(r"\[ +%d\] +0 +%d +9000 +9000 +9000 +0 +0 +\d+ +0 +0 big" % (big, big), rows[1])
    assert ("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
            "task_memcg=/,task=big,pid=%d,uid=0" % big) in text
    kill = [t for t in text if t.startswith("Out of memory: Killed process")]
    assert kill == ["Out of memory: Killed process %d (big) total-vm:36000kB, anon-rss:36000kB, file-rss:0kB, "
                    "shmem-rss:0kB, UID:0 pgtables:80kB oom_score_adj:0" % big]
    assert counters(m)["oom_kill"] == 1
    m.check()


def test_oom_score_adj_protects_and_exposes(make_machine):
    m = make_machine(mem="64M")
    keep = m.spawn("sshd", oom_score_adj=-1000)
    victim = m.spawn("batch", oom_score_adj=500)
    m.touch(keep, 9000)
    m.touch(victim, 100)
    drain(m)
    assert m.alloc_pages("GFP_KERNEL") is not None
    assert m.last_alloc.oom_victim == victim
    assert [p["pid"] for p in m.processes()] == [keep]


def test_with_swap_memory_is_swapped_not_killed_and_comes_back(make_machine):
    m = make_machine(mem="64M", swap="64M")
    a = m.spawn("a")
    m.touch(a, 8000)
    pattern = bytes(range(256)) * 16
    for page in range(0, 8000, 97):
        m.user_write(a, page * 4096, pattern[page % 200:] + pattern[:page % 200])
    b = m.spawn("b")
    assert m.touch(b, 12000) == 12000
    assert counters(m)["pswpout"] > 0 and counters(m)["oom_kill"] == 0
    assert m.processes()[0]["swapents"] > 0
    whole = m.user_read(a, 0, 8000 * 4096)
    for page in range(8000):
        expect = pattern[page % 200:] + pattern[:page % 200] if page % 97 == 0 else bytes(4096)
        assert whole[page * 4096:(page + 1) * 4096] == expect, page
    assert counters(m)["pswpin"] > 0 and counters(m)["pgmajfault"] > 0
    m.check()


@pytest.mark.parametrize("gfp,ok", [("GFP_KERNEL", True), ("GFP_NOFS", True), ("GFP_NOIO", False)])
def test_swapping_needs_io(make_machine, gfp, ok):
    m, small, big = anon_machine(make_machine, swap="64M")
    if ok:
        assert m.alloc_pages(gfp) is not None
    else:
        # no swap-out without __GFP_IO, and no OOM kill without __GFP_FS: 6.18 retries for ever
        with pytest.raises(pyalloc.AllocationWouldLoop):
            m.alloc_pages(gfp)
    assert (m.last_alloc.swapped_out > 0) == ok
    assert m.last_alloc.oom_victim is None
    m.check()


def test_nofail(make_machine):
    m = make_machine(mem="64M")
    drain(m, "__GFP_MEMALLOC|__GFP_NOWARN")
    with pytest.raises(OutOfMemory):
        m.alloc_pages("GFP_KERNEL|__GFP_NOFAIL")
    m.check()
    m, small, big = anon_machine(make_machine)
    assert m.alloc_pages("GFP_KERNEL|__GFP_NOFAIL") is not None
    assert m.last_alloc.oom_victim == big


def test_costly_order_does_not_kill(make_machine):
    m, small, big = anon_machine(make_machine)
    assert m.alloc_pages("GFP_KERNEL", order=4) is None
    assert len(m.processes()) == 2


def test_compaction_makes_an_order4_block(make_machine, backend):
    m = make_machine(mem="64M")
    a, b = m.spawn("a"), m.spawn("b")
    for i in range(1, 4001):        # a and b get alternate pages
        m.touch(a, i)
        m.touch(b, i)
    for page in range(0, 4000, 50):
        m.user_write(a, page * 4096, b"page %d" % page)
    drain(m, "__GFP_MEMALLOC|__GFP_NOWARN", order=4)
    m.exit(b)                       # 4000 free pages, none with a free buddy
    m.drain_pages()                 # all of them in the buddy's lists
    assert "0      0      0      0      0" in m.proc("buddyinfo").splitlines()[-1][-60:]
    pfn = m.alloc_pages("GFP_KERNEL", order=4)
    assert pfn is not None
    assert m.last_alloc.compacted > 0 and m.last_alloc.slept
    c = counters(m)
    # 6.18: the first try is async, which only empties Unmovable blocks for an Unmovable request
    # and finds none; the sync-light try after reclaim makes the block
    assert c["compact_stall"] == 2 and c["compact_fail"] == 1 and c["compact_success"] == 1
    assert c["pgmigrate_success"] > 0
    for page in range(0, 4000, 50):
        assert m.user_read(a, page * 4096, len(b"page %d" % page)) == b"page %d" % page
    m.check()


def test_lru_second_chance(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/hot", 3000)
    m.read_file("/hot", 3000)       # referenced: activated when reclaim meets it
    m.read_file("/cold", 3000)
    p = m.spawn("filler")
    m.touch(p, 10500)
    hot, cold = m.file_info("/hot"), m.file_info("/cold")
    assert hot["cached"] == 3000 and cold["cached"] < 3000
    assert counters(m)["pgactivate"] > 0
    m.check()


# -- nothing lost --------------------------------------------------------------------------------

def test_file_bytes_survive_writeback_and_reclaim(make_machine):
    m = make_machine(mem="32M")
    data = bytes(range(256)) * 40
    m.file_write("/etc/config", 4000, data)
    assert m.file_size("/etc/config") == 4000 + len(data)
    assert m.drop_caches() == 0                     # dirty pages stay
    m.sync()
    assert m.file_info("/etc/config")["dirty"] == 0
    assert m.drop_caches() == 4
    assert m.file_info("/etc/config")["cached"] == 0
    assert m.file_read("/etc/config", 4000, len(data)) == data
    assert m.file_read("/etc/config", 0, 10) == bytes(10)
    # pushed out by pressure instead
    m.file_write("/etc/config", 0, b"again")
    hog = m.spawn("hog")
    m.touch(hog, 7800)
    assert m.file_read("/etc/config", 0, 5) == b"again"
    m.check()


def test_kswapd_restores_the_high_watermark(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/cache", 15000)
    before = counters(m)["pageoutrun"]
    m.read_file("/other", 3000)
    c = counters(m)
    assert c["pageoutrun"] > before and c["pgsteal_kswapd"] > 0
    zones = m.snapshot()["zones"]
    assert any(z["managed"] and z["nr_free_pages"] > z["wmark"][2] for z in zones)


# -- the views --------------------------------------------------------------------------------

def test_meminfo_vmstat_and_psi(make_machine):
    m = make_machine(mem="64M", swap="32M")
    p = m.spawn("worker")
    m.touch(p, 6000)
    m.write_file("/log", 2000)
    m.read_file("/lib", 3000)
    # MemAvailable counts the part of the cache above the low watermarks
    info = dict(re.findall(r"^([\w()]+):\s+(\d+)", m.proc("meminfo"), re.M))
    assert int(info["MemAvailable"]) > int(info["MemFree"])
    q = m.spawn("other")
    # more than the use-once cache can give: 6.18 reclaims it before the young anon pages, then swaps
    m.touch(q, 11000)
    info = dict(re.findall(r"^([\w()]+):\s+(\d+)", m.proc("meminfo"), re.M))
    vm = dict(line.split() for line in m.proc("vmstat").splitlines())
    c = counters(m)
    anon = c["nr_inactive_anon"] + c["nr_active_anon"]
    file = c["nr_inactive_file"] + c["nr_active_file"]
    assert int(info["AnonPages"]) == anon * 4 and int(info["Cached"]) == file * 4
    assert int(info["Active(anon)"]) + int(info["Inactive(anon)"]) == anon * 4
    assert int(info["SwapTotal"]) == 32 << 10 and int(info["SwapFree"]) == c["nr_swap_free"] * 4
    assert int(info["Dirty"]) == c["nr_dirty"] * 4
    assert int(vm["nr_anon_pages"]) == anon and int(vm["nr_file_pages"]) == file
    assert int(vm["pswpout"]) == c["pswpout"] > 0
    assert int(vm["pgpgout"]) >= 4 * int(vm["pswpout"])
    assert int(vm["allocstall_movable"]) > 0 and int(vm["pgscan_direct"]) >= int(vm["pgsteal_direct"])
    zoneinfo = m.proc("zoneinfo")
    per_zone = sum(int(v) for v in re.findall(r"nr_zone_inactive_anon (\d+)", zoneinfo))
    assert per_zone == c["nr_inactive_anon"]
    psi = m.proc("pressure/memory")
    assert re.fullmatch(r"some avg10=\d+\.\d\d avg60=\d+\.\d\d avg300=\d+\.\d\d total=(\d+)\n"
                        r"full avg10=\d+\.\d\d avg60=\d+\.\d\d avg300=\d+\.\d\d total=(\d+)\n", psi)
    # full: the caller's own stalls; some adds kswapd's reclaim beside it (kernel/sched/psi.c)
    some, full = map(int, re.findall(r"total=(\d+)", psi))
    assert full == c["psi_total_us"] > 0 and some >= full


def test_psi_averages_follow_the_stalls(make_machine):
    m = make_machine(mem="32M", swap="256M")
    p = m.spawn("thrash")
    m.touch(p, 30000)               # swaps more than two seconds' worth of pages
    m.idle(1_000_000)               # kswapd swapped part of it on its own time: let the 2 s period close
    avg10 = float(re.search(r"some avg10=(\d+\.\d\d)", m.proc("pressure/memory")).group(1))
    assert avg10 > 1.0
    log = m.dmesg()
    assert log == m.dmesg()


# -- bad input -----------------------------------------------------------------------------------

def test_bad_input_changes_nothing(machine):
    m = machine
    pid = m.spawn("p")
    m.touch(pid, 10)
    m.read_file("/f", 3)
    views = [m.proc(v) for v in ("meminfo", "vmstat", "buddyinfo")]
    bad = [
        (TypeError, m.spawn, 5), (InvalidArgument, m.spawn, ""), (InvalidArgument, m.spawn, "x", 1001),
        (InvalidArgument, m.touch, 999, 1), (TypeError, m.touch, "1", 1), (InvalidArgument, m.touch, pid, -1),
        (TypeError, m.touch, pid, 1.5), (InvalidArgument, m.touch, pid, 1 << 40), (InvalidArgument, m.touch, 10**30, 1),
        (InvalidArgument, m.exit, 12345), (InvalidArgument, m.user_write, pid, 10 * 4096, b"x"),
        (InvalidArgument, m.user_write, pid, -1, b"x"), (TypeError, m.user_write, pid, 0, "str"),
        (InvalidArgument, m.user_read, pid, 4096 * 10 - 1, 2), (InvalidArgument, m.user_read, pid, 0, -1),
        (TypeError, m.user_read, pid, None, 1),
        (TypeError, m.read_file, b"/f", 1), (TypeError, m.read_file, None, 1), (InvalidArgument, m.read_file, "", 1),
        (InvalidArgument, m.read_file, "/f", -2), (InvalidArgument, m.file_read, "/nope", 0, 1),
        (InvalidArgument, m.file_read, "/f", 3 * 4096, 1), (InvalidArgument, m.file_write, "/f", 1 << 60, b"x"),
        (TypeError, m.file_write, "/f", 0, 12), (TypeError, m.write_file, 3, 3),
        # found by the fuzzer: building the message must not choke on a 5000-digit int
        (InvalidArgument, m.read_file, "/f", 10 ** 5000), (InvalidArgument, m.file_write, "/f", -10 ** 5000, b"x"),
        (InvalidArgument, m.touch, 10 ** 5000, 1), (InvalidArgument, m.spawn, "x", 10 ** 5000),
        (InvalidArgument, m.user_read, pid, 10 ** 5000, 1),
    ]
    for exc, fn, *args in bad:
        with pytest.raises(exc):
            fn(*args)
        m.check()
    assert [m.proc(v) for v in ("meminfo", "vmstat", "buddyinfo")] == views
    m.exit(pid)
    with pytest.raises(InvalidArgument):
        m.exit(pid)
    with pytest.raises(InvalidArgument):
        m.touch(pid, 1)


def test_kswapd_gives_up_on_a_hopeless_node_until_reclaim_progresses(make_machine):
    m = make_machine(mem="64M")
    drained = drain(m)
    for _ in range(20):
        assert m.alloc_pages("GFP_NOWAIT") is None
    c = counters(m)
    assert c["kswapd_failures"] == 16 and c["pageoutrun"] == 16       # woken 16 times, then left alone
    assert "node_unreclaimable:  1" in m.proc("zoneinfo")
    assert m.alloc_pages("__GFP_KSWAPD_RECLAIM") is None       # warns, with show_mem()
    assert "all_unreclaimable? yes" in "\n".join(m.dmesg())
    for pfn in drained:
        m.free_pages(pfn)
    m.read_file("/cache", 12000)
    drain(m)
    assert m.alloc_pages("GFP_KERNEL") is not None and m.last_alloc.reclaimed > 0
    assert counters(m)["kswapd_failures"] == 0
    assert "node_unreclaimable:  1" not in m.proc("zoneinfo")


def test_stalls_move_the_clock_that_dmesg_and_psi_read(make_machine):
    # 6.18's direct reclaim writes no file page: its IO is swap-out
    m, _, _ = anon_machine(make_machine, swap="64M")
    before_us = m._clock_ns() // 1000
    psi_before = counters(m)["psi_total_us"]
    assert m.alloc_pages("GFP_KERNEL") is not None
    cost = m.last_alloc
    assert cost.stall_us >= 100 * cost.swapped_out > 0          # 100 us a page swapped out
    assert m._clock_ns() // 1000 - before_us >= cost.stall_us
    assert counters(m)["psi_total_us"] - psi_before == cost.stall_us
    assert m.alloc_pages("GFP_KERNEL|__GFP_DMA", order=10) is None  # a warning stamped after the stall
    stamp = re.match(r"\[ *(\d+)\.(\d{6})\]", m.dmesg()[-1])
    assert int(stamp.group(1)) * 1_000_000 + int(stamp.group(2)) >= before_us + cost.stall_us
