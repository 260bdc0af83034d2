"""Kernel traces out (Machine(trace=)) and in (read_trace), against a real 6.18 capture."""

import gzip
import io
import lzma
import re
from pathlib import Path

import pytest

import pyalloc
from pyalloc.machine.trace import TraceFormatError, parse_events, parse_gfp

FIXTURE = Path(__file__).parent / "fixtures" / "ftrace-kmem.txt"
VIEWS = ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat", "slabinfo", "vmallocinfo")
# the prefix up to the event name, as tracefs prints it: "%16s-%-7d [%03d] %5s %5lu.%06lu: "
PREFIX = re.compile(r"^( {0,15}\S+-\d+ *) \[(\d{3})\] (\S{5}) +(\d+)\.(\d{6}): (\w+): (.*)$")


def fixture_layouts():
    """event -> (column where the event name starts, field names in order), from the real capture."""
    out = {}
    for line in FIXTURE.read_text().splitlines():
        m = PREFIX.match(line)
        if m:
            out.setdefault(m.group(6), (m.start(6), [kv.split("=")[0] for kv in m.group(7).split()]))
    return out


def traced_workload(m):
    cache = m.kmem_cache_create("trace_test", 200)
    objs = [m.kmalloc(size, "GFP_KERNEL", caller=f"site_{size}+0x10/0x40") for size in (8, 96, 5000, 40000)]
    objs.append(m.kmalloc(64, "GFP_KERNEL_ACCOUNT|__GFP_ZERO"))
    c = m.kmem_cache_alloc(cache, "GFP_KERNEL")
    pfn = m.alloc_pages("GFP_HIGHUSER_MOVABLE", 0)
    m.alloc_pages("GFP_KERNEL|__GFP_NOWARN", 11)          # refused before the tracepoint, as in the kernel
    for addr in objs:
        m.kfree(addr)
    m.kfree(None)
    m.kmem_cache_free(cache, c)
    m.free_pages(pfn, 0)
    return cache


def test_trace_lines_match_the_real_capture_field_by_field(make_machine, tmp_path):
    m = make_machine(mem="64M", trace=tmp_path / "t.txt")
    traced_workload(m)
    m.close()
    layouts = fixture_layouts()
    seen = set()
    for line in (tmp_path / "t.txt").read_text().splitlines():
        if line.startswith("#"):
            continue
        match = PREFIX.match(line)
        assert match, line
        event = match.group(6)
        column, keys = layouts[event]
        assert match.start(6) == column, line
        fields = [kv.split("=", 1) for kv in match.group(7).split()]
        assert [k for k, _ in fields] == keys, line
        values = dict(fields)
        for key in ("ptr", "page"):
            if key in values:
                assert re.fullmatch(r"[0-9a-f]{16}", values[key]), line
        if "gfp_flags" in values:
            pyalloc.gfp.parse(values["gfp_flags"])
        seen.add(event)
    assert seen == {"kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free", "mm_page_alloc", "mm_page_free"}


def test_trace_text_of_known_events(make_machine):
    out = io.StringIO()
    m = make_machine(mem="64M", trace=out)
    a = m.kmalloc(100, "GFP_KERNEL", caller="probe+0x1/0x2")
    m.kfree(a, caller="probe+0x1/0x2")
    m.trace_flush()
    lines = [line for line in out.getvalue().splitlines() if not line.startswith("#")]
    assert lines[-2].endswith(f"kmalloc: call_site=probe+0x1/0x2 ptr={a:016x} bytes_req=100 bytes_alloc=128 "
                              "gfp_flags=GFP_KERNEL node=-1 accounted=false")
    assert lines[-1].endswith(f"kfree: call_site=probe+0x1/0x2 ptr={a:016x}")
    assert lines[-1].startswith("         pyalloc-1       [000] ..... ")
    slab_page = [line for line in lines if "mm_page_alloc" in line][-1]
    pfn = (a - pyalloc.PAGE_OFFSET) >> 12
    assert f"page={0xffffea0000000000 + pfn * 64:016x} pfn={pfn:#x} order=0 migratetype=0" in slab_page


def test_both_backends_write_the_same_trace(tmp_path):
    pytest.importorskip("pyalloc._core")
    texts = []
    for backend in ("c", "model"):
        with pyalloc.Machine(mem="64M", backend=backend, trace=tmp_path / f"{backend}.txt") as m:
            traced_workload(m)
            m.vfree(m.vmalloc(20000))
        texts.append((tmp_path / f"{backend}.txt").read_text())
    assert texts[0] == texts[1]


def test_round_trip_replays_to_the_same_addresses_and_proc(make_machine, tmp_path):
    import random
    rnd = random.Random(7)
    m = make_machine(mem="32M", trace=tmp_path / "rt.txt")
    cache = m.kmem_cache_create("rt_cache", 72)
    live = []
    for _ in range(3000):
        r = rnd.random()
        if live and r < 0.45:
            kind, v = live.pop(rnd.randrange(len(live)))
            if kind == "k":
                m.kfree(v)
            elif kind == "c":
                m.kmem_cache_free(cache, v)
            else:
                m.free_pages(*v)
        elif r < 0.8:
            live.append(("k", m.kmalloc(rnd.choice([8, 64, 100, 700, 3000, 9000, 70000]), "GFP_KERNEL")))
        elif r < 0.9:
            live.append(("c", m.kmem_cache_alloc(cache, "GFP_KERNEL")))
        else:
            order = rnd.choice([0, 1, 3])
            live.append(("p", (m.alloc_pages("GFP_KERNEL", order), order)))
    m.trace_flush()
    s = pyalloc.read_trace(tmp_path / "rt.txt")
    assert s.trace_stats["unmatched_frees"] == 0
    replay = make_machine(mem="32M")
    result = replay.run(s)
    # every allocation event's pointer is what the replay returned
    ptrs = [int(line.split("ptr=")[1].split()[0], 16) for line in (tmp_path / "rt.txt").read_text().splitlines()
            if ": kmalloc:" in line or ": kmem_cache_alloc:" in line]
    allocs = [result[i] for i in range(len(s)) if s.op(i)["kind"] in ("kmalloc", "kmem_cache_alloc")]
    assert allocs == ptrs
    for view in VIEWS:
        assert replay.proc(view) == m.proc(view), view
    replay.check()


def test_read_the_real_capture(make_machine):
    s = pyalloc.read_trace(FIXTURE)
    st = s.trace_stats
    assert st["events"] == 301 and st["bad_lines"] == 0
    assert st["unmatched_frees"] > 0           # the capture starts mid-run
    names = {c[0]: c[1] for c in s.caches}
    assert names["vm_area_struct"] == 192 and names["anon_vma_chain"] == 64
    m = make_machine(mem="256M", cpus=st["cpus"])
    r = m.run(s, errors="record")
    assert r.errors == []
    assert "vm_area_struct" in m.proc("slabinfo")
    # the caches take the shape the capture shows: task_struct 4248 bytes in 4288 (64-aligned), accounted
    task = next(c for c in m._caches.values() if c.name == "task_struct")
    assert (task.object_size, task.size, task.align, task.flags & pyalloc.SLAB.ACCOUNT) == \
        (4248, 4288, 64, pyalloc.SLAB.ACCOUNT)
    m.check()


OLD_FORMAT = """\
# tracer: nop
          <idle>-0     [000] d.s.   100.000001: mm_page_alloc: page=ffffea0000d6c9c0 pfn=3515175 order=0 migratetype=0 gfp_flags=GFP_ATOMIC|GFP_NOTRACK
            bash-1234  [001] ....   100.000002: kmalloc: call_site=ffffffff8112a3b4 ptr=ffff88003a1b2c00 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL|GFP_ZERO
            bash-1234  [001] ....   100.000003: kmem_cache_alloc: call_site=ffffffff81099999 ptr=ffff88003a1b3000 bytes_req=208 bytes_alloc=256 gfp_flags=GFP_KERNEL
            bash-1234  [001] ....   100.000004: kmalloc: call_site=ffffffff8112a3b4 ptr=(null) bytes_req=9000000 bytes_alloc=16777216 gfp_flags=GFP_KERNEL|GFP_NOWARN
            bash-1234  [001] ....   100.000005: kfree: call_site=ffffffff8112a400 ptr=ffff88003a1b2c00
            bash-1234  [001] ....   100.000006: kmem_cache_free: call_site=ffffffff81099aaa ptr=ffff88003a1b3000
            bash-1234  [001] ....   100.000007: kfree: call_site=ffffffff8112a400 ptr=(null)
            bash-1234  [001] ....   100.000008: mm_page_free_direct: page=ffffea0000d6c9c0 pfn=3515175 order=0
            bash-1234  [001] ....   100.000009: sched_switch: prev_comm=bash
"""


@pytest.mark.parametrize("compress", [None, "gz", "xz"])
def test_older_spellings_and_compression(make_machine, tmp_path, compress):
    path = tmp_path / "old.txt"
    data = OLD_FORMAT.encode()
    if compress == "gz":
        path, data = tmp_path / "old.txt.gz", gzip.compress(data)
    elif compress == "xz":
        path, data = tmp_path / "old.txt.xz", lzma.compress(data)
    path.write_bytes(data)
    s = pyalloc.read_trace(path)
    kinds = [s.op(i)["kind"] for i in range(len(s))]
    assert kinds == ["alloc_pages", "kmalloc", "kmem_cache_alloc", "kmalloc", "kfree", "kmem_cache_free", "kfree",
                     "free_pages"]
    assert s.op(1)["gfp"] == 0xcc0 | 0x100 and s.op(1)["caller"] == "ffffffff8112a3b4"
    assert s.caches == [("trace-208", 208, 64, 0, 0)]   # 64-aligned: 208 bytes in 256; no sheaves
    assert s.trace_stats["ignored_events"] == 1 and s.trace_stats["unmatched_frees"] == 0
    m = make_machine(mem="64M")
    r = m.run(s, errors="record")
    assert r.errors == [] and r[3] is None          # 9 MB is beyond kmalloc's reach
    m.check()


def test_gfp_spellings():
    assert parse_gfp("GFP_KERNEL|GFP_ZERO") == 0xdc0
    assert parse_gfp("GFP_ATOMIC|GFP_NOTRACK") == 0x820
    assert parse_gfp("none") == 0
    assert parse_gfp("GFP_KERNEL|0x4000000") == 0xcc0 | 0x4000000


def test_malformed_lines_name_their_number(tmp_path):
    path = tmp_path / "bad.txt"
    lines = OLD_FORMAT.splitlines()
    lines.insert(3, "this is not a trace line")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError, match="line 4: not an ftrace event line"):
        pyalloc.read_trace(path)
    lines[3] = "            bash-1234  [001] ....   100.000004: kmalloc: call_site=x ptr=ffff88003a1b2c00"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TraceFormatError, match="line 4: kmalloc: no valid 'bytes_req' field"):
        pyalloc.read_trace(path)
    lines.insert(3, "garbage")
    path.write_text("\n".join(lines) + "\n")
    s = pyalloc.read_trace(path, skip_bad=True)
    assert s.trace_stats["bad_lines"] == 2 and s.trace_stats["events"] == 9
    assert isinstance(TraceFormatError("x"), pyalloc.InvalidArgument)


def test_parse_events_yields_fields():
    events = list(parse_events(FIXTURE))
    lineno, event, cpu, ts, fields = events[0]
    assert (lineno, event, cpu, ts) == (12, "mm_page_free", 1, "362.366521")
    assert fields == {"page": "00000000fee3bb29", "pfn": "0x115bcc", "order": "0"}


def test_trace_argument_is_checked(make_machine):
    with pytest.raises(pyalloc.InvalidArgument):
        make_machine(mem="16M", trace=42)


def test_vmalloc_events(make_machine):
    out = io.StringIO()
    m = make_machine(mem="64M", cpus=2, trace=out)
    addr = m.vmalloc(20000, caller="probe+0x0/0x1")
    m.vfree(addr)
    m.trace_flush()
    lines = [line.split(": ", 2)[1:] for line in out.getvalue().splitlines() if "vmap" in line]
    # include/trace/events/vmalloc.h: va_start is printed as a decimal unsigned long
    assert lines == [
        ["alloc_vmap_area", (f"va_start: {addr} size={20480 + 4096} align=1 vstart=0xffffc90000000000 "
                            "vend=0xffffe8ffffffffff failed=0")],
        ["free_vmap_area_noflush", f"va_start={addr:#x} nr_lazy=6 nr_lazy_max=16384"],
        ["purge_vmap_area_lazy", f"start={addr:#x} end={addr + 24576:#x} num_purged=1"],
    ]


def test_progress_callback_counts_bytes(tmp_path):
    line = "            bash-4029    [001] .....   362.366907: kfree: call_site=vm_area_free+0x1c/0x80 ptr=0000000000000000\n"
    path = tmp_path / "many.txt"
    path.write_text(line * 70000)
    seen = []
    s = pyalloc.read_trace(path, progress=seen.append)
    # by the file's bytes, a step per chunk read: a bar can show the file's size
    assert sum(seen) == path.stat().st_size and len(seen) > 1 and len(s) == 70000


def test_failed_page_allocation_prints_null(make_machine):
    out = io.StringIO()
    m = make_machine(mem="16M", trace=out)
    while m.alloc_pages("GFP_KERNEL|__GFP_NOWARN", 10) is not None:
        pass
    m.trace_flush()
    last = [line for line in out.getvalue().splitlines() if "mm_page_alloc" in line][-1]
    assert last.endswith("mm_page_alloc: page=0000000000000000 pfn=0x0 order=10 migratetype=0 "
                         "gfp_flags=GFP_KERNEL|__GFP_NOWARN")
