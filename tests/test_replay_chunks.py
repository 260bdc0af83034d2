"""Replaying real captures fast and in bounded memory (issue 17): __GFP_NOFAIL ops in the
core loop, pages never handed out left unzeroed on the host, and captures run chunk by
chunk with the results of one run."""

from __future__ import annotations

import re
import resource
import tracemalloc

import pytest

import pyalloc
from pyalloc import errors
from pyalloc.gfp import GFP_NOFAIL
from pyalloc.machine.stream_chunks import run_chunks
from pyalloc.machine import trace as trace_mod
from pyalloc.machine.trace import read_trace, trace_chunks
from pyalloc.tools.replay import replay_chunked

NOFS_NOFAIL = "GFP_NOFS|__GFP_NOFAIL"           # alloc_buffer_head()
HEADER = "# tracer: nop\n#\n# entries-in-buffer/entries-written: 0/0   #P:2\n#\n"


def line(cpu: int, ts: int, event: str, fields: str) -> str:
    return f"            bash-4029    [{cpu:03d}] .....   {ts // 1000000:5d}.{ts % 1000000:06d}: {event}: {fields}\n"


def synthetic_trace(n: int, window: int = 64, header: bool = True) -> str:
    """n rounds of allocate-then-free with at most *window* objects and pages live: a trace
    whose live set is bounded however long it is; caches, kmalloc, NOFAIL and user pages."""
    out = [HEADER if header else ""]
    ts = 1_000_000
    live: list = []
    for i in range(n):
        ts += 3
        cpu = i & 1
        slot = i % window
        ptr = 0xffff888010000000 + (slot << 12) + ((i // window) % 2) * 0x800000
        kind = i % 5
        if kind == 0:
            out.append(line(cpu, ts, "kmem_cache_alloc", f"call_site=alloc_buffer_head+0x21/0x80 ptr={ptr:016x} "
                            f"name=buffer_head bytes_req=104 bytes_alloc=104 gfp_flags={NOFS_NOFAIL} node=-1 "
                            "accounted=false"))
            live.append(("cache", ptr))
        elif kind == 1:
            out.append(line(cpu, ts, "kmalloc", f"call_site=seq_open+0x2b/0x90 ptr={ptr:016x} bytes_req=200 "
                            "bytes_alloc=256 gfp_flags=GFP_KERNEL|__GFP_ZERO node=-1 accounted=false"))
            live.append(("kmalloc", ptr))
        elif kind == 2:
            pfn = 0x100000 + slot
            out.append(line(cpu, ts, "mm_page_alloc", f"page={pfn:016x} pfn={pfn:#x} order=0 migratetype=1 "
                            "gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP"))
            live.append(("page", pfn))
        elif kind == 3 and i % 7 == 0:
            out.append(line(cpu, ts, "kmem_cache_alloc", f"call_site=d_alloc+0x2e/0xa0 ptr={ptr + 0x400:016x} "
                            f"name=dentry-{i // 700 % 5} bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL "
                            "node=-1 accounted=false"))
            live.append(("cache", ptr + 0x400))
        while len(live) > window // 2:
            what, v = live.pop(0)
            ts += 1
            if what == "page":
                out.append(line(cpu, ts, "mm_page_free", f"page={v:016x} pfn={v:#x} order=0"))
            elif what == "kmalloc":
                out.append(line(cpu, ts, "kfree", f"call_site=seq_release+0x1f/0x30 ptr={v:016x}"))
            else:
                out.append(line(cpu, ts, "kmem_cache_free", f"call_site=free_buffer_head+0x20/0x50 ptr={v:016x}"))
    return "".join(out)


def end_state(m, stream, result) -> tuple:
    live = sorted(result[i] for i in range(len(stream)) if result.state[i] == 1)
    return live, {v: m.proc(v) for v in ("slabinfo", "buddyinfo", "meminfo", "vmstat", "pagetypeinfo")}


# -- __GFP_NOFAIL in the core loop -----------------------------------------------------------

def test_nofail_ops_stay_in_the_core_loop(make_machine, monkeypatch):
    s = pyalloc.Stream()
    a = s.kmalloc(100, NOFS_NOFAIL)
    b = s.kmem_cache_alloc("buffer_head", NOFS_NOFAIL, size=104)
    c = s.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", order=1)
    d = s.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", order=2)       # may warn: the per-call path
    s.kfree(a); s.kmem_cache_free("buffer_head", b); s.free_pages(c, order=1); s.free_pages(d, order=2)
    m, ref = make_machine(mem="64M"), make_machine(mem="64M")
    deferred: list = []
    per_call = m._stream_per_call
    monkeypatch.setattr(m, "_stream_per_call", lambda stream, result, i: (deferred.append(i),
                                                                         per_call(stream, result, i)))
    r = m.run(s)
    assert deferred == [d]
    cache = ref._stream_cache("buffer_head", 104, 0, 0)
    got = [ref.kmalloc(100, NOFS_NOFAIL), ref.kmem_cache_alloc(cache, NOFS_NOFAIL),
           ref.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", 1), ref.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", 2)]
    assert [r[i] for i in (a, b, c, d)] == got
    ref.kfree(got[0]); ref.kmem_cache_free(cache, got[1]); ref.free_pages(got[2], 1); ref.free_pages(got[3], 2)
    assert m.proc("vmstat") == ref.proc("vmstat") and m.dmesg() == ref.dmesg()


def _exhaust(target, n: int, stream: pyalloc.Stream | None):
    for _ in range(n):
        if stream is None:
            target.alloc_pages("GFP_KERNEL|__GFP_NOWARN", 1)
        else:
            stream.alloc_pages("GFP_KERNEL|__GFP_NOWARN", 1)


@pytest.mark.parametrize("gfp", ["GFP_KERNEL|__GFP_NOFAIL", "GFP_ATOMIC|__GFP_NOFAIL", "GFP_NOFS|__GFP_NOFAIL"])
def test_a_nofail_op_that_fails_in_the_loop_reports_as_the_per_call_path(make_machine, gfp):
    """Memory gone and nobody to kill: the reserves, then the per-call path's report."""
    n = 16 << 20 >> 13
    s = pyalloc.Stream()
    _exhaust(None, n, s)
    tail = [s.alloc_pages(gfp, 0) for _ in range(40)] + [s.kmalloc(64, gfp) for _ in range(40)]
    m, ref = make_machine(mem="16M"), make_machine(mem="16M")
    r = m.run(s, errors="record")
    _exhaust(ref, n, None)
    want, want_exc = [], []
    for i, op in enumerate(tail):
        try:
            want.append(ref.alloc_pages(gfp, 0) if i < 40 else ref.kmalloc(64, gfp))
        except errors.PyallocError as exc:
            want.append(None)
            want_exc.append((type(exc), str(exc)))
    assert [r[h] for h in tail] == want
    assert [(type(e), str(e).split(": ", 1)[1]) for _i, e in r.errors] == want_exc
    # the same reports; the per-call path's kmalloc retries its EOOM once more than any
    # stream op (NOFAIL or not) before the OOM killer's turn: one direct reclaim more, and
    # so its clock and allocstall differ (as they did before NOFAIL ops ran in the loop)
    assert untimed(m.dmesg()) == untimed(ref.dmesg())
    assert [ln for ln in m.proc("vmstat").splitlines() if not ln.startswith("allocstall")] == \
        [ln for ln in ref.proc("vmstat").splitlines() if not ln.startswith("allocstall")]


def untimed(lines: list) -> list:
    return [re.sub(r"^\[ *[0-9.]+\] ", "", ln) for ln in lines]


def test_nofail_with_bad_slab_bits_or_above_order_1_still_warns(make_machine):
    s = pyalloc.Stream()
    s.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", order=3)
    s.kmalloc(64, "GFP_KERNEL|__GFP_NOFAIL|__GFP_HIGHMEM")
    m, ref = make_machine(mem="64M"), make_machine(mem="64M")
    m.run(s)
    ref.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", 3)
    ref.kmalloc(64, "GFP_KERNEL|__GFP_NOFAIL|__GFP_HIGHMEM")
    assert m.dmesg() == ref.dmesg()


# -- first touch --------------------------------------------------------------------------

def test_zeroed_allocations_are_zero_whatever_touched_the_page(make_machine):
    first = make_machine(mem="64M")
    pfn = first.alloc_pages("GFP_KERNEL", 0)
    m = make_machine(mem="64M")
    # the page the next allocation gets, written before anyone was handed it
    m.write(m.page_address(pfn) + 100, b"\xaa" * 200)
    assert m.alloc_pages("GFP_KERNEL|__GFP_ZERO", 0) == pfn
    assert m.read(m.page_address(pfn), 4096) == bytes(4096)
    # handed out, dirtied, freed, handed out again zeroed
    m.memset(m.page_address(pfn), 0x5a, 4096)
    m.free_pages(pfn, 0)
    assert m.alloc_pages("GFP_KERNEL|__GFP_ZERO", 0) == pfn
    assert m.read(m.page_address(pfn), 4096) == bytes(4096)
    # a kzalloc object over a slab page's earlier life
    a = m.kmalloc(4096, "GFP_KERNEL")
    m.memset(a, 0x77, 4096)
    m.kfree(a)
    b = m.kzalloc(4096, "GFP_KERNEL")
    assert m.read(b, 4096) == bytes(4096)


def test_zeroed_pages_and_anon_faults_cost_the_host_nothing_new():
    pytest.importorskip("pyalloc._cbackend")
    with pyalloc.Machine(mem="64G", cpus=2, backend="c") as m:     # the lazy start, kept
        def rss_kib() -> int:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * resource.getpagesize() // 1024
        before = rss_kib()
        for _ in range(64):
            m.alloc_pages("GFP_HIGHUSER_MOVABLE|__GFP_ZERO", 10)       # 256 MiB of zeroed memory
        pid = m.spawn("cat")
        m.touch(pid, 16384)                                          # 64 MiB of anonymous faults
        grown = rss_kib() - before
    assert grown < 32 << 10, f"the host faulted in {grown} KiB for pages that still hold zeros"


# -- chunk by chunk ------------------------------------------------------------------------

@pytest.fixture
def trace_file(tmp_path, monkeypatch):
    """A trace whose later caches are made at their first op (a small CACHES_UPFRONT)."""
    monkeypatch.setattr(trace_mod, "CACHES_UPFRONT", 300)
    path = tmp_path / "t.txt"
    path.write_text(synthetic_trace(1500))
    s = read_trace(path)
    assert s.cache_first_op and min(s.cache_first_op.values()) >= 300
    return path


def test_a_short_traces_caches_are_made_before_its_first_op(tmp_path, make_machine):
    path = tmp_path / "t.txt"
    path.write_text(synthetic_trace(600))
    s = read_trace(path)
    assert s.cache_first_op == {} and len(s.caches) == 2
    m, first = make_machine(mem="64M"), make_machine(mem="64M")
    for spec in s.caches:
        first._stream_cache(*spec)
    assert end_state(m, s, m.run(s)) == end_state(first, s, first.run(s))


def test_chunked_replay_ends_as_one_run(trace_file, backend):
    one = pyalloc.Machine(mem="64M", cpus=2, backend=backend)
    s1 = read_trace(trace_file)
    want = end_state(one, s1, one.run(s1))
    one.close()
    for chunk in (100_000, 777, 64):
        with pyalloc.Machine(mem="64M", cpus=2, backend=backend) as m:
            runs = list(run_chunks(m, trace_chunks(trace_file, chunk=chunk)))
            stream, result = runs[-1]
            assert len(runs) == 1 if chunk > len(s1) else len(runs) > 2
            assert end_state(m, stream, result) == want, chunk
            assert stream.trace_stats == s1.trace_stats and stream.trace_expect == s1.trace_expect
            m.check()


def test_a_run_split_anywhere_ends_as_one_run(trace_file, backend):
    s = read_trace(trace_file)
    with pyalloc.Machine(mem="64M", cpus=2, backend=backend) as one:
        want = end_state(one, s, one.run(s))
    for cut in (1, 5, len(s) // 3):
        with pyalloc.Machine(mem="64M", cpus=2, backend=backend) as m:
            r = m.run(s, end=cut)
            r = m.run(s, start=cut, result=r)
            assert end_state(m, s, r) == want


def test_replay_chunked_verifies_and_counts_as_one_run(trace_file, backend):
    rep = replay_chunked(lambda cpus: pyalloc.Machine(mem="64M", cpus=cpus, backend=backend), trace_file, chunk=300)
    with rep.machine as m:
        from pyalloc.tools import replay_verify
        assert replay_verify.differences(m, rep.stream, rep.result) == []
        s = read_trace(trace_file)
        assert rep.ops == len(s) and rep.failed == 0 and rep.nr_errors == 0 and m.cpus == 2


def test_cli_replay_is_chunked_and_agrees(trace_file, capsys):
    from pyalloc import cli
    assert cli.main(["replay", str(trace_file), "--mem", "64M", "--backend", "model", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "the replay agrees" in out and "with 2 CPUs" in out


def test_a_cpu_past_the_first_chunks_machine_is_a_documented_error(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_mod, "CACHES_UPFRONT", 50)
    text = synthetic_trace(300, header=False).replace("[001]", "[000]")
    text += line(5, 9_000_000, "kmalloc", "call_site=x+0x1/0x2 ptr=ffff888077000000 bytes_req=8 bytes_alloc=8 "
                 "gfp_flags=GFP_KERNEL node=-1 accounted=false")
    path = tmp_path / "late.txt"
    path.write_text(text)
    with pytest.raises(errors.InvalidArgument, match="CPU 5"):
        replay_chunked(lambda cpus: pyalloc.Machine(mem="64M", cpus=cpus, backend="model"), path, chunk=50)
    rep = replay_chunked(lambda cpus: pyalloc.Machine(mem="64M", cpus=max(cpus, 6), backend="model"), path, chunk=50)
    rep.machine.close()
    rep = replay_chunked(lambda cpus: pyalloc.Machine(mem="64M", cpus=cpus, backend="model"), path)
    assert rep.machine.cpus == 6
    rep.machine.close()


def test_memory_stays_bounded_however_long_the_capture(tmp_path, monkeypatch):
    monkeypatch.setattr(trace_mod, "CACHES_UPFRONT", 500)
    backend = "c" if pyalloc._testing.c_core_available() else "model"
    # both traces span several of the reader's chunks (trace.CHUNK bytes), whose buffers set the peak
    peaks = []
    for n in (12000, 36000):
        path = tmp_path / f"t{n}.txt"
        path.write_text(synthetic_trace(n))
        with pyalloc.Machine(mem="64M", cpus=2, backend=backend) as m:
            tracemalloc.start()
            for _stream, _result in run_chunks(m, trace_chunks(path, chunk=500)):
                pass
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.1, f"peak {peaks[0]} B for 12k rounds, {peaks[1]} B for 36k"


def test_run_chunks_refuses_streams_that_carry_nothing_it_ran(trace_file, make_machine):
    m = make_machine(mem="64M")
    chunks = list(trace_chunks(trace_file, chunk=200))
    assert len(chunks[1].carried) > 0
    with pytest.raises(errors.InvalidArgument, match="carries ops from no earlier one"):
        list(run_chunks(m, chunks[1:2]))
    chunks[1].carried[0] = len(chunks[0]) + 5
    with pytest.raises(errors.InvalidArgument, match="no copy"):
        list(run_chunks(m, chunks[:2]))


def test_nofail_counts_in_the_synthetic_trace(trace_file):
    s = read_trace(trace_file)
    assert sum(1 for i in range(len(s)) if s.op(i)["gfp"] & GFP_NOFAIL) > 100
