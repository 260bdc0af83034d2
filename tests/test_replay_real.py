"""Replaying real captures: from pipes, in every spelling since 3.x, with slab pages told from the
caller's by their GFP mask, implied frees, and an end state checked against the trace (--verify)."""

import gzip
import io
import lzma
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pyalloc
from pyalloc import cli
from pyalloc.machine.trace import TraceFormatError
from pyalloc.tools import perf_kmem as report
from pyalloc.tools import replay_verify

FIXTURE = Path(__file__).parent / "fixtures" / "ftrace-kmem.txt"
ROOT = Path(__file__).parent.parent
HEAD = "# tracer: nop\n#\n"

# 3.x lines, written from v3.10's TP_printk formats: include/trace/events/kmem.h
#   kmalloc / kmem_cache_alloc: "call_site=%lx ptr=%p bytes_req=%zu bytes_alloc=%zu gfp_flags=%s"
#   kmalloc_node: the same and " node=%d";  kfree / kmem_cache_free: "call_site=%lx ptr=%p"
#   mm_page_alloc: "page=%p pfn=%lu order=%d migratetype=%d gfp_flags=%s"
#   mm_page_free: "page=%p pfn=%lu order=%d";  mm_page_free_batched: "page=%p pfn=%lu order=0 cold=%d"
# with %p of NULL printed "(null)" right-aligned in the pointer's width (lib/vsprintf.c pointer():
# two spaces on 32-bit, ten on 64-bit), and the flag names of include/trace/events/gfpflags.h.
OLD_3X = """\
# tracer: nop
#
# entries-in-buffer/entries-written: 12/12   #P:4
          <idle>-0     [000] d.s.   100.000001: mm_page_alloc: page=ffffea0000d6c9c0 pfn=3515175 order=0 migratetype=0 gfp_flags=GFP_ATOMIC|GFP_NOTRACK
            bash-1234  [001] ....   100.000002: kmalloc: call_site=ffffffff8112a3b4 ptr=ffff88003a1b2c00 bytes_req=100 bytes_alloc=128 gfp_flags=GFP_KERNEL|GFP_ZERO
            bash-1234  [001] ....   100.000003: kmalloc_node: call_site=ffffffff8112a3b4 ptr=ffff88003a1b4000 bytes_req=60 bytes_alloc=64 gfp_flags=GFP_TEMPORARY|GFP_REPEAT node=-1
            bash-1234  [001] ....   100.000004: kmem_cache_alloc: call_site=ffffffff81099999 ptr=ffff88003a1b3000 bytes_req=208 bytes_alloc=256 gfp_flags=GFP_WAIT|GFP_IO|GFP_FS|GFP_COLD
            bash-1234  [001] ....   100.000005: kmalloc: call_site=ffffffff8112a3b4 ptr=  (null) bytes_req=9000000 bytes_alloc=16777216 gfp_flags=GFP_KERNEL|GFP_NOWARN
            bash-1234  [001] ....   100.000006: kfree: call_site=ffffffff8112a400 ptr=ffff88003a1b2c00
            bash-1234  [001] ....   100.000007: kfree: call_site=ffffffff8112a400 ptr=  (null)
            bash-1234  [001] ....   100.000008: kfree: call_site=ffffffff8112a400 ptr=          (null)
            bash-1234  [001] ....   100.000009: kmem_cache_free: call_site=ffffffff81099aaa ptr=ffff88003a1b3000
            bash-1234  [001] ....   100.000010: mm_page_free_batched: page=ffffea0000d6c9c0 pfn=3515175 order=0 cold=0
            bash-1234  [001] ....   100.000011: sched_switch: prev_comm=bash
"""


def write(tmp_path, name, text, opener=open):
    path = tmp_path / name
    with opener(path, "wt") as f:
        f.write(text)
    return path


def summary(out: str) -> list[str]:
    """The replay's output without its timings and the file's name."""
    return [re.sub(r"[\d.]+ s\b.*|^# \S+:", "", line) for line in out.splitlines()]


def run_replay(argv, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "pyalloc", "replay", *argv], input=stdin, capture_output=True,
                          env=env, cwd=ROOT, check=False)


# -- pipes -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("tool,suffix,opener", [("xz", ".xz", lzma.open), ("gzip", ".gz", gzip.open)])
def test_a_pipe_replays_as_the_file_does(tmp_path, backend, tool, suffix, opener):
    packed = write(tmp_path, "t.txt" + suffix, FIXTURE.read_text(), opener)
    args = ["--mem", "128M", "--backend", backend, "--verify"]
    want = run_replay([str(FIXTURE), *args])
    assert want.returncode == 0, want.stderr
    for name in ("-", "/dev/stdin"):
        # a real pipe: the decompressor's stdout is the replay's stdin
        with subprocess.Popen([tool, "-dc", str(packed)], stdout=subprocess.PIPE) as producer:
            got = subprocess.run([sys.executable, "-m", "pyalloc", "replay", name, *args], stdin=producer.stdout,
                                 capture_output=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
            producer.stdout.close()
        assert got.returncode == 0, got.stderr
        assert summary(got.stdout.decode()) == summary(want.stdout.decode())
    # the compressed bytes themselves through the pipe: told apart by their magic, nothing lost
    got = run_replay(["-", *args], stdin=packed.read_bytes())
    assert summary(got.stdout.decode()) == summary(want.stdout.decode())


def test_binary_file_objects_are_read_once_in_chunks():
    data = lzma.compress(FIXTURE.read_bytes())
    s = pyalloc.read_trace(io.BytesIO(data))
    assert s.trace_stats["events"] == 301 and len(s) == len(pyalloc.read_trace(FIXTURE))
    f = io.BytesIO(FIXTURE.read_bytes())
    pyalloc.read_trace(f)
    assert not f.closed                             # a caller's file stays the caller's
    with pytest.raises(pyalloc.InvalidArgument, match="readable file"):
        pyalloc.read_trace(42)


# -- spellings since 3.x ---------------------------------------------------------------------------

def test_3x_lines_replay(tmp_path, make_machine):
    s = pyalloc.read_trace(write(tmp_path, "old.txt", OLD_3X))
    st = s.trace_stats
    kinds = [s.op(i)["kind"] for i in range(len(s))]
    assert kinds == ["alloc_pages", "kmalloc", "kmalloc", "kmem_cache_alloc", "kmalloc", "kfree", "kfree", "kfree",
                     "kmem_cache_free", "free_pages"]
    assert s.op(1)["caller"] == "ffffffff8112a3b4" and s.op(1)["gfp"] == 0xdc0
    assert s.op(2)["gfp"] == 0xcd0 | 0x4000             # GFP_TEMPORARY | __GFP_RETRY_MAYFAIL
    assert s.op(3)["gfp"] == 0xcc0                      # GFP_WAIT|GFP_IO|GFP_FS, __GFP_COLD steers nothing
    assert s.op(6)["handle"] is None and s.op(7)["handle"] is None      # kfree((null)): no-ops
    assert (st["ignored_events"], st["unmatched_frees"], st["bad_lines"], st["cpus"]) == (1, 0, 0, 4)
    m = make_machine(mem="64M", cpus=st["cpus"])
    r = m.run(s, errors="record")
    assert r.errors == [] and r[4] is None
    assert replay_verify.differences(m, s, r) == []
    m.check()


def test_report_survives_null_pointers_and_bad_ones(tmp_path, capsys):
    path = write(tmp_path, "old.txt", OLD_3X + OLD_3X.splitlines()[4].replace("ptr=ffff88003a1b2c00", "ptr=zz")
                 + "\n")
    stats = report.slab_stats(path, skip_bad=True)
    assert stats["summary"]["allocs"] == 3 and stats["summary"]["bad_lines"] == 1
    with pytest.raises(TraceFormatError, match="line 15: bad ptr field 'zz'"):
        report.slab_stats(path)
    assert cli.main(["report", "--slab", str(path), "--skip-bad"]) == 0
    assert "Callsite" in capsys.readouterr().out


def test_unknown_events_and_bad_lines_are_counted_and_shown(tmp_path, capsys):
    text = OLD_3X + "garbage\n" + "  bash-1 [000] .... 1.0: kmalloc: call_site=x ptr=ffff88003a1b2000\n"
    path = write(tmp_path, "bad.txt", text)
    assert cli.main(["replay", str(path), "--mem", "32M", "--backend", "model"]) == 2
    assert "line 15: not an ftrace event line" in capsys.readouterr().err
    assert cli.main(["replay", str(path), "--mem", "32M", "--backend", "model", "--skip-bad"]) == 0
    out = capsys.readouterr().out
    assert "(1 other events, 2 bad lines skipped)" in out
    assert "# skipped line 15: not an ftrace event line: 'garbage'" in out
    assert "# skipped line 16: kmalloc: no valid 'bytes_req' field" in out


# -- hostile input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress], ids=["gz", "xz"])
def test_a_truncated_compressed_trace_is_a_documented_error(tmp_path, compress):
    data = compress((HEAD + FIXTURE.read_text() * 20).encode())
    path = tmp_path / "cut"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(TraceFormatError, match="the compressed file is damaged"):
        pyalloc.read_trace(path, skip_bad=True)
    got = run_replay(["-", "--mem", "32M"], stdin=data[:len(data) // 2])
    assert got.returncode == 2 and b"damaged" in got.stderr and b"Traceback" not in got.stderr


def test_binary_garbage_nul_bytes_and_a_10_mb_line_are_bad_lines(tmp_path):
    good = OLD_3X.splitlines()[4] + "\n"
    garbage = bytes(range(256)) * 64
    path = tmp_path / "junk.txt"
    path.write_bytes(HEAD.encode() + b"x" * (10 << 20) + b"\n" + good.replace("bash", "ba\0sh").encode()
                     + good.encode() + garbage + b"\n" + good.encode())
    with pytest.raises(TraceFormatError, match=r"^line 3: "):
        pyalloc.read_trace(path)
    s = pyalloc.read_trace(path, skip_bad=True)
    assert s.trace_stats["events"] == 2 and s.trace_stats["bad_lines"] >= 3
    assert any("NUL bytes" in problem for _, problem in s.trace_bad)
    assert any("longer than" in problem for _, problem in s.trace_bad)


# -- slab pages and implied frees -------------------------------------------------------------------

LINE = "            bash-1234    [001] .....   100.{:06d}: {}\n"


def trace_of(*events):
    return HEAD + "".join(LINE.format(i, e) for i, e in enumerate(events))


def test_a_user_page_before_a_slab_allocation_stays_the_users(tmp_path, backend):
    alloc = ("kmem_cache_alloc: call_site=vm_area_dup+0x1e/0x190 ptr=00000000a5a5a5a5 name=vm_area_struct "
             "bytes_req=192 bytes_alloc=192 gfp_flags=GFP_KERNEL node=-1 accounted=false")
    path = write(tmp_path, "t.txt", trace_of(
        "mm_page_alloc: page=00000000aaaaaaaa pfn=0x1000 order=0 migratetype=1 "
        "gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP", alloc,
        "mm_page_alloc: page=00000000bbbbbbbb pfn=0x2000 order=1 migratetype=0 gfp_flags=GFP_KERNEL|__GFP_COMP",
        alloc.replace("a5a5a5a5", "b6b6b6b6"),
        "mm_page_alloc: page=00000000cccccccc pfn=0x3000 order=0 migratetype=0 "
        "gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP", alloc.replace("a5a5a5a5", "c7c7c7c7")))
    s = pyalloc.read_trace(path)
    st = s.trace_stats
    assert [s.op(i)["kind"] for i in range(len(s))] == ["alloc_pages", "kmem_cache_alloc", "kmem_cache_alloc",
                                                      "alloc_pages", "kmem_cache_alloc"]
    assert s.op(0)["gfp"] == 0x140cca | 0x100
    assert (st["slab_pages"], st["not_slab_user"], st["not_slab_flags"]) == (1, 1, 1)
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        r = m.run(s)
        assert replay_verify.differences(m, s, r) == []


def test_implied_frees_are_counted_and_the_live_objects_end_right(tmp_path, backend, capsys):
    alloc = ("kmem_cache_alloc: call_site=mas_alloc_nodes+0x1/0x2 ptr=00000000{:08x} name=maple_node "
             "bytes_req=256 bytes_alloc=256 gfp_flags=GFP_KERNEL node=-1 accounted=false")
    events = [alloc.format(p) for p in (1, 2, 3)] * 5          # every pointer comes back 4 times
    events.append("kmem_cache_free: call_site=mas_free+0x1/0x2 ptr=0000000000000002 name=maple_node")
    path = write(tmp_path, "t.txt", trace_of(*events))
    s = pyalloc.read_trace(path)
    assert s.trace_stats["implied_frees"] == 12
    assert s.trace_expect["objects"] == {("maple_node", 256, 0): 2}
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        r = m.run(s)
        assert replay_verify.replayed_live(m, s, r) == ({"maple_node": 2}, {})
        cache = next(c for c in m._caches.values() if c.name == "maple_node")
        assert len(cache) == 2
    assert cli.main(["replay", str(path), "--mem", "64M", "--backend", backend, "--verify"]) == 0
    out = capsys.readouterr().out
    assert "# implied frees (an allocation returned a pointer still live): 12 objects" in out
    assert "# verify: the trace implies 2 live objects in 1 caches and 0 live page blocks at its end; " \
           "the replay agrees" in out


def test_verify_prints_the_differences(tmp_path, backend, capsys):
    # a 3.x kmalloc_large the capture got and this 32 MiB machine cannot give
    big = ("kmalloc: call_site=ffffffff8112a3b4 ptr=ffff88003a000000 bytes_req=4194304 bytes_alloc=4194304 "
           "gfp_flags=GFP_KERNEL|GFP_NOWARN")
    path = write(tmp_path, "t.txt", trace_of(big, big.replace("3a000000", "3b000000")))
    assert cli.main(["replay", str(path), "--mem", "4M", "--backend", backend, "--verify"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith(("# verify:", "#   kmalloc"))]
    assert lines[0].endswith("1 differences:") and "implies 2 live objects" in lines[0]
    assert re.fullmatch(r"#   kmalloc_large: [01] live objects after the replay, the trace implies 2", lines[1])


def test_replay_uses_the_traces_cpus(tmp_path, capsys):
    path = write(tmp_path, "old.txt", OLD_3X)
    assert cli.main(["replay", str(path), "--mem", "32M", "--backend", "model"]) == 0
    assert "with 4 CPUs" in capsys.readouterr().out
    assert cli.main(["replay", str(path), "--mem", "32M", "--backend", "model", "--cpus", "8"]) == 0
    assert "with 8 CPUs" in capsys.readouterr().out


# -- report ---------------------------------------------------------------------------------------

def test_report_pads_names_sorts_largest_first_and_has_the_pointer_table(tmp_path, capsys):
    site = "a_rather_long_function_name_in_a_driver+0x1c/0x80"
    events = [f"kmalloc: call_site={site} ptr=00000000000000{i:02x} bytes_req=100 bytes_alloc=128 "
              "gfp_flags=GFP_KERNEL node=-1 accounted=false" for i in (1, 2)]
    events.append("kmalloc: call_site=b+0x1/0x2 ptr=0000000000000003 bytes_req=8 bytes_alloc=8 "
                  "gfp_flags=GFP_KERNEL node=-1 accounted=false")
    path = write(tmp_path, "t.txt", trace_of(*events))
    assert cli.main(["report", "--slab", str(path), "--sort", "callsite", "--alloc-ptr"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[3].startswith(" b+0x1/0x2 ")                     # callsite: largest first, as perf
    assert lines[4].startswith(f" {site} |       256/128   |")        # longer than 34 columns: not cut
    i = lines.index(" Alloc Ptr                          | Total_alloc/Per | Total_req/Per   | Hit      | "
                    "Ping-pong | Frag")
    assert [line.split()[0] for line in lines[i + 2:i + 5]] == ["0x3", "0x2", "0x1"]     # "callsite": the pointer
    stats = report.slab_stats(path, alloc_ptr=True)
    assert sorted(r["ptr"] for r in stats["ptrs"]) == [1, 2, 3]
    assert [r["cache"] for r in report._sorted(stats["caches"], "hit", report.SLAB_SORT_KEYS, {}, "cache")] == \
        ["kmalloc-128", "kmalloc-8"]
