"""6.18 writeback (csrc/page_writeback.c <-> pyalloc/model/page_writeback.py): the flusher on the
simulated clock, dirty throttling in balance_dirty_pages(), reclaim that writes no file page."""

from __future__ import annotations

import pyalloc
import pytest
from pyalloc._abi import COUNTER_TABLE, NODE_STAT

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

WRITEBACK_US = 100


def vmstat(m) -> dict:
    return {k: int(v) for k, v in (line.split() for line in m.proc("vmstat").splitlines())}


def limits(m) -> tuple[int, int]:
    v = vmstat(m)
    return v["nr_dirty_threshold"], v["nr_dirty_background_threshold"]


def test_counters_print_at_their_vmstat_positions():
    real = [line.split()[0] for line in (FIXTURES / "vmstat.txt").read_text().splitlines()]
    names = [n for n in ("nr_vmscan_write", "nr_vmscan_immediate_reclaim", "nr_dirtied", "nr_written",
                         "nr_throttled_written")]
    assert all((n, NODE_STAT) in COUNTER_TABLE for n in names)
    with pyalloc.Machine(mem="64M") as m:
        ours = [line.split()[0] for line in m.proc("vmstat").splitlines()]
    assert [n for n in ours if n in names] == [n for n in real if n in names]


def test_writer_is_throttled_at_the_dirty_limit(backend):
    """The issue's scenario: 20,000 pages rewritten in one call on a 128 MiB machine, whose
    dirty limit is 6,421 pages. 6.18 pauses the writer in balance_dirty_pages(), so the count
    never gets much past the limit, and the writer sleeps while the flusher writes the rest."""
    with pyalloc.Machine(mem="128M", backend=backend) as m:
        thresh, bg = limits(m)
        assert (thresh, bg) == (6421, 3206)
        m.read_file("/f", 20000)                # cached and clean: the rewrite dirties at memory speed
        m.write_file("/f", 20000)
        c = m.reclaim_counters()
        cost = m.last_alloc
        assert c["nr_dirtied"] == 20000
        assert c["nr_dirty"] <= thresh + 1
        assert c["nr_written"] == 20000 - c["nr_dirty"]
        assert cost.slept and cost.stall_us == c["nr_written"] * WRITEBACK_US
        assert c["nr_vmscan_write"] == 0 and c["pgsteal_direct"] == c["pgsteal_kswapd"] == 0
        m.check()


def test_flusher_starts_at_the_background_threshold(backend):
    with pyalloc.Machine(mem="128M", backend=backend) as m:
        _, bg = limits(m)
        m.read_file("/f", bg + 400)             # cached and clean: the limits stay where they are
        m.write_file("/f", bg - 20)             # under the threshold: the flusher sleeps
        m.idle(1_000_000)
        assert m.reclaim_counters()["nr_written"] == 0
        m.write_file("/f", bg + 400)            # 420 more: 400 over
        m.idle(50 * WRITEBACK_US)              # 5 ms: 50 pages written, oldest inode first
        c = m.reclaim_counters()
        assert c["nr_written"] == 50
        m.idle(1_000_000)                      # then it stops at the threshold
        c = m.reclaim_counters()
        _, bg = limits(m)
        assert c["nr_dirty"] == bg and c["nr_written"] == c["nr_dirtied"] - bg
        m.check()


def test_expired_pages_are_written_by_kupdate(backend):
    """Below the background threshold nothing is written until the data is older than
    dirty_expire_centisecs (30 s); the next dirty_writeback_centisecs (5 s) wake writes it,
    at WRITEBACK_US a page."""
    with pyalloc.Machine(mem="128M", backend=backend) as m:
        m.write_file("/small", 100)
        m.idle(29_000_000)
        assert m.reclaim_counters()["nr_dirty"] == 100
        # 35 s: expired, a 5 s wake has passed, and the 100 pages' writing time (writes read nothing
        # from disk, so the call itself took next to no time)
        m.idle(6_000_000 + 100 * WRITEBACK_US)
        c = m.reclaim_counters()
        assert c["nr_dirty"] == 0 and c["nr_written"] == 100
        m.write_file("/later", 10)              # a new inode: its own 30 s
        m.idle(20_000_000)
        assert m.reclaim_counters()["nr_dirty"] == 10
        m.check()


def test_kupdate_writes_only_what_fits_in_the_time(backend):
    with pyalloc.Machine(mem="128M", backend=backend) as m:
        m.write_file("/small", 100)
        m.idle(35_000_000 + 100 * WRITEBACK_US)
        before = m.reclaim_counters()["nr_written"]
        assert before == 100
        m.write_file("/b", 100)
        m.idle(30_000_000 + 5_000_000 + 10 * WRITEBACK_US)     # expired at most ~10 pages' time ago
        assert 0 < m.reclaim_counters()["nr_written"] - before <= 100


def test_sleep_refuses_bad_input(backend):
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        for bad in (-1, 1 << 41, 1.5, "1", True):
            with pytest.raises((pyalloc.InvalidArgument, TypeError)):
                m.idle(bad)
        m.check()


def test_reclaim_writes_no_file_page(backend):
    """6.18's pageout() writes no filesystem folio: under pressure from a file-only workload
    every page written went through the flusher; nr_vmscan_write stays 0."""
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        for i in range(6):
            m.write_file(f"/w{i}", 8000)        # more than memory, all of it dirtied
        c = m.reclaim_counters()
        assert c["nr_vmscan_write"] == 0
        assert c["pgsteal_file"] > 0
        assert c["nr_written"] + c["nr_dirty"] == c["nr_dirtied"]
        m.check()


def test_reclaim_throttles_on_an_all_dirty_batch(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        thresh, _ = limits(m)
        m.write_file("/d", thresh)              # dirty, at the inactive tail
        # pressure faster than kswapd (on the clock) can answer: anonymous faults cost no IO time,
        # so direct reclaim runs and meets the dirty pages first
        m.touch(m.spawn("hog"), 13000)
        c = m.reclaim_counters()
        assert c["nr_vmscan_immediate_reclaim"] > 0
        assert c["nr_throttled_written"] > 0    # written while a reclaimer slept on them
        assert c["nr_vmscan_write"] == 0
        m.check()


def test_anon_swap_out_counts_in_nr_vmscan_write(backend):
    with pyalloc.Machine(mem="64M", swap="64M", backend=backend) as m:
        pid = m.spawn("hog")
        m.touch(pid, 20000)
        c = m.reclaim_counters()
        assert c["pswpout"] > 0 and c["nr_vmscan_write"] == c["pswpout"]


def test_written_data_survives_writeback_and_reclaim(backend):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        blobs = {i: bytes([i % 251 + 1]) * 4096 * 50 + b"end%d" % i for i in range(40)}
        for i, data in blobs.items():
            m.file_write(f"/f{i}", 0, data)     # 40 x 50 pages: more than memory
        m.idle(40_000_000)
        m.read_file("/filler", 20000)
        for i, data in blobs.items():
            assert m.file_read(f"/f{i}", 0, len(data)) == data
        m.check()


def test_a_saved_machine_continues_the_flusher(backend, tmp_path):
    with pyalloc.Machine(mem="128M", backend=backend) as m:
        m.write_file("/a", 100)
        m.idle(12_000_000)
        m.write_file("/b", 100)
        m.save(tmp_path / "wb.snap")
        other = {"c": "model", "model": "c"}[backend]
        with pyalloc.Machine.load(tmp_path / "wb.snap", backend=other) as m2:
            for x in (m, m2):
                x.idle(25_000_000)
            assert m.reclaim_counters() == m2.reclaim_counters()
            assert m.reclaim_counters()["nr_written"] == 100       # /a expired, /b not yet
            for x in (m, m2):
                x.idle(10_000_000)
            assert m.reclaim_counters() == m2.reclaim_counters()
            assert m.reclaim_counters()["nr_dirty"] == 0


def test_sync_writes_everything_at_once(backend):
    with pyalloc.Machine(mem="128M", backend=backend) as m:
        m.write_file("/a", 500)
        m.sync()
        c = m.reclaim_counters()
        assert c["nr_dirty"] == 0 and c["nr_written"] == 500


def test_a_flusher_clock_ahead_of_the_machine_is_refused(backend, tmp_path):
    from pyalloc.machine import snapshot
    from pyalloc.model.snapshot import EMPTY_COMPACTION, EMPTY_MLOCK, EMPTY_SYSCTL, EMPTY_WORKINGSET, EMPTY_WRITEBACK
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        data = snapshot.to_bytes(m)
    core = bytes(snapshot._read_sections(data, "test")[b"CORE"][0])
    after = EMPTY_COMPACTION + EMPTY_SYSCTL + EMPTY_WORKINGSET + EMPTY_MLOCK   # format 5's sections after writeback's
    assert core.endswith(EMPTY_WRITEBACK + after)
    at = len(core) - len(after) - len(EMPTY_WRITEBACK)
    bad = core[:at] + (1 << 50).to_bytes(8, "little") + EMPTY_WRITEBACK[8:] + after
    sections = snapshot._read_sections(data, "test")
    import io
    f = io.BytesIO()
    f.write(snapshot._HEADER.pack(snapshot.MAGIC, snapshot.VERSION, 0))
    for tag in (b"INFO", b"CORE", b"MEM ", b"PYST", b"END "):
        for payload in ([bad] if tag == b"CORE" else [b""] if tag == b"END " else sections.get(tag, [])):
            snapshot._section(f, tag, payload)
    (tmp_path / "bad.snap").write_bytes(f.getvalue())
    with pytest.raises(pyalloc.SnapshotError, match="writeback"):
        pyalloc.Machine.load(tmp_path / "bad.snap", backend=backend)


def test_an_unlinked_dirty_file_leaves_no_writeback_state(backend, tmp_path):
    """unlink of a file with dirty pages: its inode leaves the flusher's lists, and a snapshot of
    the machine loads (a dead file's dirty time was saved and refused)."""
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        m.file_write("/var/log/syslog", 14298, b"dirty")
        m.file_write("/tmp/x", 4790, b"dirty too")      # a later file keeps the first one's slot
        m.unlink("/var/log/syslog")
        m.save(str(tmp_path / "m.snap"))
        again = pyalloc.Machine.load(str(tmp_path / "m.snap"), backend=backend)
        again.check()
        assert again.proc("meminfo") == m.proc("meminfo")
        again.close()
