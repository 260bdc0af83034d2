"""The retry tail of 6.18's __alloc_pages_slowpath() and compaction as mm/compaction.c does it
(priorities, compaction_suitable, fragmentation index, deferral, kcompactd), on both backends.

Each scenario fails on the slow path of before: order-blind should_reclaim_retry, a NOIO
request looping or reporting, one synchronous compaction pass counting one side.
"""

import pytest

import pyalloc
from pyalloc import AllocationWouldLoop

from test_reclaim import counters, drain


def anon_full_machine(make_machine):
    """Memory full of one process's anonymous pages and no swap: reclaim frees nothing, only
    the OOM killer could help."""
    m = make_machine(mem="64M")
    m.touch(m.spawn("hog"), 12000)
    drain(m)
    return m


def fragmented_cache_machine(make_machine):
    """Page cache interleaved page by page with held Unmovable pages: reclaiming it frees
    order-0 holes only."""
    m = make_machine(mem="64M")
    got = sorted(drain(m))
    for pfn in got[::2]:
        m.free_pages(pfn)
    m.drain_pages()
    m.read_file("/var/cache/big", 20000)
    drain(m)
    return m


def holes_machine(make_machine, order):
    """Free memory in blocks of *order* whose buddies are held: nothing reclaimable or movable."""
    m = make_machine(mem="64M")
    got = set(drain(m, "__GFP_MEMALLOC|__GFP_NOWARN", order=order))
    for pfn in sorted(got):
        if not pfn & (1 << order) and pfn | (1 << order) in got:
            m.free_pages(pfn, order)
    m.drain_pages()
    return m


def stalls(before, after):
    return sum(after[k] - before[k] for k in after if k.startswith("allocstall"))


# -- the retry tail ------------------------------------------------------------------------

def test_noio_retry_mayfail_order2_gives_up_after_one_round(make_machine):
    # should_reclaim_retry() asks __zone_watermark_ok at order 2: reclaim makes order-0 holes
    # only, so no zone could pass and 6.18 gives up (it was 41 rounds and 26% of the cache)
    m = fragmented_cache_machine(make_machine)
    cached = m.file_info("/var/cache/big")["cached"]
    c0 = counters(m)
    assert m.alloc_pages("GFP_NOIO|__GFP_RETRY_MAYFAIL", 2) is None
    c = counters(m)
    assert stalls(c0, c) == 1
    assert m.file_info("/var/cache/big")["cached"] > cached * 9 // 10
    assert c["compact_stall"] == c0["compact_stall"]        # NOIO may not compact
    assert any("page allocation failure: order:2" in line for line in m.dmesg())
    m.check()


def test_costly_noio_retry_mayfail_gives_up_at_once(make_machine):
    # "prevent infinite loop for costly GFP_NOIO | __GFP_RETRY_MAYFAIL allocations"
    m = fragmented_cache_machine(make_machine)
    c0 = counters(m)
    assert m.alloc_pages("GFP_NOIO|__GFP_RETRY_MAYFAIL", 4) is None
    c = counters(m)
    assert stalls(c0, c) == 1 and c["compact_stall"] == c0["compact_stall"]
    m.check()


@pytest.mark.parametrize("gfp", ["GFP_NOFS", "GFP_NOIO"])
def test_nofs_that_only_the_oom_killer_could_satisfy_would_loop(make_machine, gfp):
    m = anon_full_machine(make_machine)
    before = len(m.dmesg())
    with pytest.raises(AllocationWouldLoop) as e:
        m.alloc_pages(gfp)
    assert isinstance(e.value, pyalloc.OutOfMemory)
    assert len(m.dmesg()) == before                         # 6.18 prints nothing: it loops
    m.check()


def test_nofs_nofail_still_takes_the_reserves(make_machine):
    m = anon_full_machine(make_machine)
    assert m.alloc_pages("GFP_NOFS|__GFP_NOFAIL") is not None
    assert m.last_alloc.reserves


# -- compaction --------------------------------------------------------------------------------

def order4_machine(make_machine):
    m = make_machine(mem="64M")
    a, b = m.spawn("a"), m.spawn("b")
    for i in range(1, 4001):        # a and b get alternate pages
        m.touch(a, i)
        m.touch(b, i)
    drain(m, "__GFP_MEMALLOC|__GFP_NOWARN", order=4)
    m.exit(b)                       # 4000 free pages, none with a free buddy
    m.drain_pages()
    return m


def test_async_first_takes_only_blocks_of_the_requests_type(make_machine):
    m = order4_machine(make_machine)
    c0 = counters(m)
    assert m.alloc_pages("GFP_KERNEL", order=4) is not None          # Unmovable: async finds no block
    c = counters(m)
    assert (c["compact_stall"] - c0["compact_stall"], c["compact_fail"] - c0["compact_fail"],
            c["compact_success"] - c0["compact_success"]) == (2, 1, 1)
    m = order4_machine(make_machine)
    c0 = counters(m)
    assert m.alloc_pages("GFP_HIGHUSER_MOVABLE", order=4) is not None  # Movable: async makes it
    c = counters(m)
    assert (c["compact_stall"] - c0["compact_stall"], c["compact_success"] - c0["compact_success"]) == (1, 1)
    m.check()


def test_compact_isolated_counts_both_scanners(make_machine):
    m = order4_machine(make_machine)
    c0 = counters(m)
    assert m.alloc_pages("GFP_HIGHUSER_MOVABLE", order=4) is not None
    c = counters(m)
    migrated = c["pgmigrate_success"] - c0["pgmigrate_success"]
    isolated = c["compact_isolated"] - c0["compact_isolated"]
    assert migrated > 0 and 2 * migrated <= isolated <= 2 * migrated + 1
    assert c["compact_migrate_scanned"] > c0["compact_migrate_scanned"]
    assert c["compact_free_scanned"] > c0["compact_free_scanned"]


def test_fragmentation_index_below_extfrag_threshold_skips_costly_compaction(make_machine):
    # free memory all in order-3 blocks: an order-4 failure is a lack of memory, index < 500
    m = holes_machine(make_machine, 3)
    c0 = counters(m)
    assert m.alloc_pages("GFP_KERNEL|__GFP_NOWARN", order=4) is None
    c = counters(m)
    assert c["compact_stall"] == c0["compact_stall"] and c["compact_migrate_scanned"] == c0["compact_migrate_scanned"]
    m.check()


def test_failed_sync_compaction_defers_the_zone(make_machine):
    m = holes_machine(make_machine, 2)
    c0 = counters(m)
    # non-costly: the index does not apply; compaction runs, finds nothing to move, defers
    assert m.alloc_pages("GFP_KERNEL|__GFP_NOWARN|__GFP_RETRY_MAYFAIL", order=3) is None
    c1 = counters(m)
    scanned1 = c1["compact_migrate_scanned"] - c0["compact_migrate_scanned"]
    assert scanned1 > 0 and c1["compact_fail"] > c0["compact_fail"]
    # defer_compaction() after each failed sync run: the zone skips 1, then 3 of the next
    # attempts (compact_considered against 1 << compact_defer_shift)
    assert m.alloc_pages("GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY", order=3) is None
    c2 = counters(m)
    scanned2 = c2["compact_migrate_scanned"] - c1["compact_migrate_scanned"]
    assert m.alloc_pages("GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY", order=3) is None
    c3 = counters(m)
    # deferred zones: the stall is counted (COMPACT_DEFERRED is not SKIPPED), fewer pages scanned
    assert c3["compact_stall"] > c2["compact_stall"]
    assert c3["compact_migrate_scanned"] - c2["compact_migrate_scanned"] < scanned2 <= scanned1
    m.check()


def test_kcompactd_compacts_for_a_request_that_cannot_reclaim(make_machine):
    m = order4_machine(make_machine)
    c0 = counters(m)
    psi0 = c0["psi_total_us"]
    m.alloc_pages("GFP_ATOMIC|__GFP_NOWARN", order=2)
    # the node is not balanced at order 2, so kswapd is woken; it balances at order 0, finds
    # nothing to do and hands the order to kcompactd as it goes to sleep (kswapd_try_to_sleep)
    m.idle(1_000)
    c = counters(m)
    assert c["compact_daemon_wake"] == c0["compact_daemon_wake"] + 1
    assert c["compact_daemon_migrate_scanned"] > 0 and c["compact_daemon_free_scanned"] > 0
    # kcompactd's scans count in the totals too, and its time is memory pressure (not the caller's)
    assert c["compact_migrate_scanned"] - c0["compact_migrate_scanned"] >= c["compact_daemon_migrate_scanned"]
    assert c["psi_total_us"] - psi0 > m.last_alloc.stall_us
    assert c["compact_stall"] == c0["compact_stall"]         # no direct compaction
    assert m.alloc_pages("GFP_ATOMIC", order=2) is not None   # the block kcompactd made
    vm = m.proc("vmstat")
    assert "compact_daemon_wake 1\n" in vm
    m.check()


def test_deferral_survives_a_snapshot(make_machine, backend, tmp_path):
    m = holes_machine(make_machine, 2)
    assert m.alloc_pages("GFP_KERNEL|__GFP_NOWARN|__GFP_RETRY_MAYFAIL", order=3) is None  # defers
    path = tmp_path / "m.snap"
    m.save(str(path))
    n = pyalloc.Machine.load(str(path), backend=backend)
    for mm in (m, n):
        mm.alloc_pages("GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY", order=3)
    assert counters(m) == counters(n)
    n.close()
