"""perf-kmem-style reports (pyalloc report) and the replay command, on real and simulated traces."""

import csv
import io
import json
from pathlib import Path

import pytest

import pyalloc
from pyalloc import cli
from pyalloc.tools import perf_kmem as report

FIXTURE = Path(__file__).parent / "fixtures" / "ftrace-kmem.txt"


def run_cli(argv, capsys):
    rc = cli.main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def simulated_trace(make_machine, path):
    m = make_machine(mem="64M", cpus=2, trace=path)
    cache = m.kmem_cache_create("report_cache", 100)
    a = [m.kmalloc(100, "GFP_KERNEL", caller="alpha+0x1/0x10") for _ in range(10)]     # kmalloc-128
    b = [m.kmalloc(700, "GFP_KERNEL", caller="beta+0x2/0x20") for _ in range(4)]       # kmalloc-1k
    c = [m.kmem_cache_alloc(cache, "GFP_KERNEL", caller="gamma+0x3/0x30") for _ in range(3)]
    for x in a[:6]:
        m.kfree(x, caller="alpha_free+0x0/0x1")
    for x in b:
        m.kfree(x, cpu=1, caller="beta_free+0x0/0x1")           # frees on another CPU: ping-pong
    m.kmem_cache_free(cache, c[0])
    pfn = m.alloc_pages("GFP_KERNEL", 2)
    m.free_pages(pfn, 2)
    m.alloc_pages("GFP_HIGHUSER_MOVABLE", 0)
    m.close()


def test_slab_report_of_a_simulated_trace(make_machine, tmp_path):
    path = tmp_path / "t.txt"
    simulated_trace(make_machine, path)
    stats = report.slab_stats(path)
    t = stats["summary"]
    # requested: 10 x 100 + 4 x 700 + 3 x 100; allocated: 10 x 128 + 4 x 1024 + 3 x s->size (104)
    assert t["requested"] == 1000 + 2800 + 300
    assert t["allocated"] == 1280 + 4096 + 3 * 104
    assert t["freed"] == 6 * 128 + 4 * 1024 + 104
    assert t["cross_cpu_frees"] == 4
    sites = {r["callsite"]: r for r in stats["callsites"]}
    assert sites["beta+0x2/0x20"] == {"callsite": "beta+0x2/0x20", "total_alloc": 4096, "per_alloc": 1024,
                                      "total_req": 2800, "per_req": 700, "hit": 4, "pingpong": 4,
                                      "frag": round(100 - 100 * 2800 / 4096, 3)}
    caches = {r["cache"]: r for r in stats["caches"]}
    assert caches["kmalloc-128"]["hit"] == 10 and caches["report_cache"]["hit"] == 3
    text = report.render_slab(stats)
    lines = text.splitlines()
    assert lines[0] == "-" * 105
    assert lines[1] == " Callsite                           | Total_alloc/Per | Total_req/Per   | Hit      | Ping-pong | Frag"
    assert " beta+0x2/0x20                      |      4096/1024  |      2800/700   |        4 |         4 | 31.641%" \
        in lines
    i = lines.index("SUMMARY (SLUB allocator)")
    assert lines[i + 1:i + 8] == ["========================", "Total bytes requested: 4,100",
                                  "Total bytes allocated: 5,688", "Total bytes freed:     4,968",
                                  "Net total bytes allocated: 720",
                                  "Total bytes wasted on internal fragmentation: 1,588",
                                  f"Internal fragmentation: {100 - 100 * 4100 / 5688:f}%"]


def test_page_report_of_the_real_capture():
    stats = report.page_stats(FIXTURE)
    s = stats["summary"]
    # the capture has 36 mm_page_alloc and 26 mm_page_free lines, all order 0; two frees match
    assert (s["alloc_requests"], s["free_requests"], s["nomatch"], s["failures"]) == (36, 26, 24, 0)
    assert s["order_migratetype"][0][:2] == [11, 25]
    text = report.render_page(stats)
    assert "Total allocation requests     :               36   [              144 KB ]" in text
    assert "# 00140cca:     HUM|C: GFP_HIGHUSER_MOVABLE|__GFP_COMP" in text
    assert "               96 |        24 |     0 |  MOVABLE | HUM|C    " in text


def test_sort_lines_and_formats(tmp_path, make_machine, capsys):
    path = tmp_path / "t.txt"
    simulated_trace(make_machine, path)
    rc, out, _ = run_cli(["report", "--slab", str(path), "--sort", "hit", "--lines", "1"], capsys)
    assert rc == 0
    lines = out.splitlines()
    assert lines[3].startswith(" alpha+0x1/0x10 ")          # 10 hits: the most
    assert lines[4].startswith(" ...  ")
    rc, out, _ = run_cli(["report", "--slab", str(path), "--format", "json"], capsys)
    data = json.loads(out)
    assert data["summary"]["allocs"] == 17
    rc, out, _ = run_cli(["report", "--page", str(path), "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {(r["order"], r["migtype"]) for r in rows} >= {("2", "UNMOVABL"), ("0", "MOVABLE")}
    rc, out, err = run_cli(["report", "--slab", str(path), "--sort", "nope"], capsys)
    assert rc == 2 and "unknown sort key 'nope'" in err


def test_replay_command(capsys, tmp_path):
    rc, out, err = run_cli(["replay", str(FIXTURE), "--mem", "128M", "--backend", "model", "--proc", "slabinfo"],
                           capsys)
    assert rc == 0
    assert "301 kmem events" in out and "errors: 0" in out
    assert "vm_area_struct" in out
    bad = tmp_path / "bad.txt"
    bad.write_text(FIXTURE.read_text() + "garbage line\n")
    rc, out, err = run_cli(["replay", str(bad), "--mem", "128M"], capsys)
    assert rc == 2 and "line 313" in err
    rc, out, err = run_cli(["replay", str(bad), "--mem", "128M", "--skip-bad", "--progress"], capsys)
    assert rc == 0 and "1 bad lines skipped" in out
    rc, out, err = run_cli(["replay", str(tmp_path / "missing.txt")], capsys)
    assert rc == 2


def test_report_of_missing_file(capsys, tmp_path):
    rc, _, err = run_cli(["report", "--page", str(tmp_path / "nope.txt")], capsys)
    assert rc == 2 and "nope.txt" in err


def test_run_result_of_a_replayed_capture_is_usable(make_machine):
    s = pyalloc.read_trace(FIXTURE)
    m = make_machine(mem="128M")
    r = m.run(s)
    live = [r[i] for i in range(len(s)) if r.state[i] == 1]
    assert live and all(isinstance(a, int) for a in live)
    with pytest.raises(pyalloc.InvalidArgument):
        m.run(s, result=pyalloc.StreamResult(pyalloc.Stream()))
