"""LRU aging as 6.18 does it (CONFIG_LRU_GEN off), on both backends: folio_mark_accessed()
activation, folio_check_references() for mapped anonymous pages, working-set shadow entries
(mm/workingset.c) and their counters, PSI only for working-set refaults, get_scan_count()
with costs and swappiness, and zone-limited isolation with pgskip_<zone>.

The numbers in the scenarios were measured on this code, identically on both backends; what
each test asserts is the rule, not the number.
"""

import copy

import pyalloc
from pyalloc._abi import CTR, PGX_WORKINGSET, READ_PAGE_US, VM_SYSCTL
from pyalloc.model import reclaim as mreclaim


def counters(m):
    return m.reclaim_counters()


def test_second_read_activates_page_cache(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/lib", 100)          # first read: PG_referenced, still inactive
    c = counters(m)
    assert (c["pgactivate"], c["nr_inactive_file"], c["nr_active_file"]) == (0, 100, 0)
    m.read_file("/lib", 100)          # second read: folio_activate()
    c = counters(m)
    assert (c["pgactivate"], c["nr_inactive_file"], c["nr_active_file"]) == (100, 0, 100)
    # workingset_activation() ages the nonresident clock by the pages activated
    assert c["nonresident_age"] == 100
    m.read_file("/lib", 100)          # already active: nothing more
    assert counters(m)["pgactivate"] == 100
    # a write does not mark the folio accessed (FGP_WRITEBEGIN has no FGP_ACCESSED)
    m.write_file("/log", 50)
    m.write_file("/log", 50)
    c = counters(m)
    assert (c["pgactivate"], c["nr_active_file"], c["nr_inactive_file"]) == (100, 100, 50)
    m.check()


def test_use_once_cache_is_reclaimed_not_activated(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/stream", 20000)     # more than memory, each page read once
    c = counters(m)
    assert c["pgsteal_file"] > 3000
    # referenced once and unmapped: FOLIOREF_RECLAIM_CLEAN, never a second trip
    assert c["pgactivate"] == 0 and c["nr_active_file"] == 0
    m.check()


def test_mapped_anon_gets_a_second_look(make_machine):
    m = make_machine(mem="32M", swap="64M")
    p = m.spawn("grow")
    m.touch(p, 10000)
    c = counters(m)
    # the fault that mapped each page left its pte young: the first scan keeps it
    # (FOLIOREF_KEEP, PG_referenced set), only the second reclaims it
    assert c["pgscan_anon"] > 2 * c["pgsteal_anon"] > 0
    assert c["pswpout"] == c["pgsteal_anon"]
    assert c["anon_cost"] > 0         # rotations and swap IO noted by lru_note_cost()
    assert c["pgactivate"] == 0


def test_mapped_anon_used_again_is_activated(make_machine):
    m = make_machine(mem="32M", swap="64M")
    hot = m.spawn("hot")
    m.touch(hot, 2000)
    q = m.spawn("q")
    m.touch(q, 6000)                  # one look at every page (kept), the oldest of hot's swapped
    assert counters(m)["pgactivate"] == 0
    resident = m.processes()[0]["rss"]
    assert 1000 < resident < 2000     # how many depends on kswapd's and the caller's timing
    swapped = 2000 - resident
    m.user_read(hot, swapped * 4096, resident * 4096)     # the resident part used again: ptes young
    r = m.spawn("r")
    m.touch(r, 3000)
    c = counters(m)
    # referenced pte and PG_referenced from the last look: FOLIOREF_ACTIVATE
    assert c["pgactivate"] == c["nr_active_anon"] == resident
    assert m.processes()[0]["rss"] == resident     # the used pages stayed, the others went
    m.check()


def test_streaming_refaults_are_not_working_set(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/big", 20000)
    before = counters(m)
    m.read_file("/big", 20000)
    c = counters(m)
    refaults = c["workingset_refault_file"] - before["workingset_refault_file"]
    assert refaults > 10000
    # the refault distance is beyond any workingset: no activation, no restore
    assert c["workingset_activate_file"] == c["workingset_restore_file"] == 0
    # and no memory stall for them (only direct reclaim's own 1 us entries)
    assert c["psi_total_us"] - before["psi_total_us"] < refaults * READ_PAGE_US // 20
    m.check()


def test_thrashing_refaults_are_activated_restored_and_stall(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/a", 7000)
    m.read_file("/a", 7000)           # /a is the active workingset
    for _ in range(3):
        m.read_file("/b", 10000)      # /b pushes it out: deactivated (PG_workingset), evicted
    before = counters(m)
    assert before["workingset_restore_file"] == 0 and before["pgdeactivate"] > 0
    m.read_file("/a", 7000)
    c = counters(m)
    refaults = c["workingset_refault_file"] - before["workingset_refault_file"]
    restores = c["workingset_restore_file"] - before["workingset_restore_file"]
    assert refaults == 7000 and restores == 7000
    assert c["workingset_activate_file"] - before["workingset_activate_file"] == 7000
    # each working-set refault's read is a memory stall (filemap_read_folio: PG_workingset)
    assert c["psi_total_us"] - before["psi_total_us"] >= restores * READ_PAGE_US
    m.check()


def test_invalidation_leaves_no_shadow(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/f", 100)
    assert m.drop_caches() == 100
    m.read_file("/f", 100)            # remove_mapping() stored no shadow: a first fault again
    assert counters(m)["workingset_refault_file"] == 0
    m.check()


def test_swapped_anon_leaves_a_shadow_and_refaults(make_machine):
    m = make_machine(mem="32M", swap="64M")
    p = m.spawn("a")
    m.touch(p, 5000)
    q = m.spawn("b")
    m.touch(q, 5000)
    m.touch(p, 5000)
    c = counters(m)
    assert c["pswpin"] > 0 and c["workingset_refault_anon"] == c["pswpin"]
    # the anon workingset (active anon and the file cache) is empty here: nothing is activated
    assert c["workingset_activate_anon"] == 0
    m.exit(q)                         # freed swap slots take their shadows along
    m.check()


def test_shadows_and_bits_survive_a_snapshot(make_machine, backend, tmp_path):
    m = make_machine(mem="64M", swap="32M")
    m.read_file("/a", 7000)
    m.read_file("/a", 7000)
    m.read_file("/b", 10000)
    m.read_file("/b", 10000)
    p = m.spawn("p")
    m.touch(p, 6000)
    twin = copy.deepcopy(m)
    m.save(tmp_path / "m.snap")       # and on the other backend: the same words
    other = pyalloc.Machine.load(tmp_path / "m.snap", backend="model" if backend == "c" else "c")
    for x in (m, twin, other):
        x.read_file("/a", 7000)
        x.touch(p, 6000)
    assert counters(m) == counters(twin) == counters(other)
    assert counters(m)["workingset_refault_file"] > 0
    other.close()


def test_no_swap_scans_file_only(make_machine):
    m = make_machine(mem="32M")
    p = m.spawn("a")
    m.touch(p, 3000)
    m.read_file("/f", 12000)
    c = counters(m)
    assert c["pgscan_file"] > 0 and c["pgscan_anon"] == 0   # SCAN_FILE
    m.check()


def test_zone_limited_reclaim_skips_higher_zones(make_machine):
    m = make_machine(mem="64M")       # DMA below 16 MiB, DMA32 above
    m.read_file("/f", 16000)
    got = [m.alloc_pages("GFP_KERNEL|GFP_DMA|__GFP_NOWARN") for _ in range(400)]
    assert None not in got and max(got) < 4096
    c = counters(m)
    # isolate_lru_folios() passes over the DMA32 cache for a ZONE_DMA request
    assert c["allocstall_dma"] > 0 and c["pgskip_dma32"] > 0
    assert c["pgskip_dma"] == c["pgskip_normal"] == 0
    assert c["pgscan_kswapd"] + c["pgscan_direct"] >= c["pgskip_dma32"]
    vmstat = dict(line.split() for line in m.proc("vmstat").splitlines())
    assert int(vmstat["pgskip_dma32"]) == c["pgskip_dma32"]
    m.check()


def test_vmstat_prints_workingset_counters_in_kernel_order(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/big", 20000)
    m.read_file("/big", 20000)
    names = [line.split()[0] for line in m.proc("vmstat").splitlines()]
    real = [line.split()[0] for line in open("tests/fixtures/vmstat.txt")]
    ours = [n for n in names if n.startswith(("workingset_", "pgskip_"))]
    assert ours == [n for n in real if n.startswith(("workingset_", "pgskip_"))]
    vm = dict(line.split() for line in m.proc("vmstat").splitlines())
    assert int(vm["workingset_refault_file"]) == counters(m)["workingset_refault_file"] > 0


# -- get_scan_count() balance, read off the model's function (the C twin runs the same
# scenarios in the tests above and in the differential test)

def _model_arena(**kw):
    m = pyalloc.Machine(backend="model", **kw)
    return m, m._core._a


def test_get_scan_count_modes():
    m, a = _model_arena(mem="64M", swap="64M")
    p = m.spawn("a")
    m.touch(p, 6000)
    m.read_file("/f", 6000)
    sc = mreclaim.ScanControl(a, 0xcc0, False)
    mreclaim.prepare_scan_control(a, sc)
    assert sc.may_swap
    # priority 0 with swappiness: SCAN_EQUAL, every list by size
    sizes = [mreclaim.lru_size(a, lru) for lru in range(4)]
    assert mreclaim.get_scan_count(a, sc, 0) == sizes
    # ... but not with swappiness 0
    a.vm_sysctl[VM_SYSCTL["swappiness"]] = 0
    assert mreclaim.get_scan_count(a, sc, 0) != sizes
    a.vm_sysctl[VM_SYSCTL["swappiness"]] = 60
    # plenty of inactive cache: cache_trim_mode scans file only
    nr = mreclaim.get_scan_count(a, sc, 4)
    assert nr[0] == nr[1] == 0 and nr[2] > 0
    # no swap: SCAN_FILE
    sc.may_swap = False
    assert mreclaim.get_scan_count(a, sc, 4)[0] == 0
    m.close()


def test_get_scan_count_fract_follows_costs_and_swappiness():
    m, a = _model_arena(mem="64M", swap="64M")
    p = m.spawn("a")
    m.touch(p, 6000)
    m.read_file("/f", 3000)
    m.read_file("/f", 3000)           # the cache is active: no cache_trim_mode
    sc = mreclaim.ScanControl(a, 0xcc0, False)
    mreclaim.prepare_scan_control(a, sc)
    prio = 6
    assert not mreclaim.file_is_tiny(a, sc, prio)
    equal = mreclaim.get_scan_count(a, sc, prio)
    a.ctr[CTR["anon_cost"]] = 1000    # anon reclaim has been costly: scan it less
    costly = mreclaim.get_scan_count(a, sc, prio)
    assert costly[0] < equal[0] and costly[3] >= equal[3]
    a.ctr[CTR["anon_cost"]] = 0
    a.vm_sysctl[VM_SYSCTL["swappiness"]] = 200
    assert mreclaim.get_scan_count(a, sc, prio)[3] == 0    # swappiness 200: anon only
    m.close()


def test_file_is_tiny_scans_anon():
    m, a = _model_arena(mem="64M", swap="64M")
    p = m.spawn("a")
    m.touch(p, 14000)
    m.read_file("/f", 50)
    while m.alloc_pages("__GFP_NOWARN") is not None:     # down to the min watermark, no reclaim
        pass
    sc = mreclaim.ScanControl(a, 0xcc0, False)
    mreclaim.prepare_scan_control(a, sc)
    assert mreclaim.file_is_tiny(a, sc, 4)
    nr = mreclaim.get_scan_count(a, sc, 4)
    assert nr[2] == nr[3] == 0 and nr[0] > 0            # SCAN_ANON
    m.close()


def test_refaults_since_the_last_run_deactivate():
    m, a = _model_arena(mem="64M")
    m.read_file("/f", 3000)
    m.read_file("/f", 3000)           # all active, the inactive list empty: low
    sc = mreclaim.ScanControl(a, 0xcc0, False)
    mreclaim.prepare_scan_control(a, sc)
    assert sc.may_deactivate & mreclaim.DEACTIVATE_FILE
    m.read_file("/g", 9000)           # a big inactive list: not low
    mreclaim.snapshot_refaults(a)
    mreclaim.prepare_scan_control(a, sc)
    assert not sc.may_deactivate & mreclaim.DEACTIVATE_FILE
    a.ctr[CTR["workingset_activate_file"]] += 1     # a refault activated a page since: a new workingset
    mreclaim.prepare_scan_control(a, sc)
    assert sc.may_deactivate & mreclaim.DEACTIVATE_FILE
    m.close()


def test_deactivated_pages_become_workingset(make_machine):
    m = make_machine(mem="64M")
    m.read_file("/a", 7000)
    m.read_file("/a", 7000)
    m.read_file("/b", 10000)
    m.read_file("/b", 10000)
    assert counters(m)["pgdeactivate"] > 0
    if m.backend == "model":
        a = m._core._a
        assert any(bits & PGX_WORKINGSET for bits in a.lru_ext.values())
    m.check()
