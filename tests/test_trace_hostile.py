"""Reading hostile traces: long lines are refused while reading (never held whole, .gz and .xz
too), every line parses in linear time, and every malformed number is the documented
TraceFormatError, or a counted skip under skip_bad -- through every entry point."""

import gzip
import io
import re
import lzma
import time
import tracemalloc

import pytest

import pyalloc
from pyalloc import cli
from pyalloc.machine import trace
from pyalloc.tools.replay import replay_steps
from pyalloc.machine.trace import MAX_LINE, TraceFormatError, parse_events

HEAD = "# tracer: nop\n#\n"
GOOD = ("            bash-1234    [001] .....   100.000100: kmalloc: call_site=do_sys+0x1/0x2 "
        "ptr=ffff888001234000 bytes_req=64 bytes_alloc=64 gfp_flags=GFP_KERNEL node=-1 accounted=false\n")
GOOD_FREE = "            bash-1234    [001] .....   100.000200: kfree: call_site=do_sys+0x1/0x2 ptr=ffff888001234000\n"


def good_with(**fields):
    line = GOOD
    for key, value in fields.items():
        old = line.split(f" {key}=")[1].split()[0]
        line = line.replace(f" {key}={old}", f" {key}={value}")
    return line


def write(tmp_path, name, text, opener=open):
    path = tmp_path / name
    with opener(path, "wt") as f:
        f.write(text)
    return path


def peak_while(fn):
    tracemalloc.start()
    try:
        try:
            result = fn()
        except TraceFormatError as exc:
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- long lines ---------------------------------------------------------------------------------

@pytest.mark.parametrize("opener,name", [(open, "long.txt"), (gzip.open, "long.txt.gz"), (lzma.open, "long.xz")],
                         ids=["plain", "gz", "xz"])
def test_a_long_line_is_refused_before_it_is_held_whole(tmp_path, opener, name):
    n = 32 << 20                                    # one 32 MiB line: a bomb when compressed
    path = write(tmp_path, name, HEAD + GOOD + "x" * n + "\n" + GOOD_FREE, opener)
    exc, peak = peak_while(lambda: pyalloc.read_trace(path))
    assert isinstance(exc, TraceFormatError)
    assert str(exc) == f"line 4: longer than {MAX_LINE} characters"
    # a few chunks, never the line (xz adds its dictionary: 8 MiB at the default preset)
    limit = (4 << 20) + (9 << 20 if name.endswith(".xz") else 0)
    assert peak < limit, peak
    s, peak = peak_while(lambda: pyalloc.read_trace(path, skip_bad=True))
    assert peak < limit, peak
    assert len(s) == 2 and s.trace_stats["bad_lines"] == 1 and s.trace_stats["lines"] == 5


def test_line_length_limit_is_exact(tmp_path):
    fits = GOOD.rstrip("\n") + " pad=" + "y" * (MAX_LINE - len(GOOD) - 5) + "\n"
    assert len(fits) == MAX_LINE
    too_long = fits[:-1] + "yy\n"
    assert len(too_long) == MAX_LINE + 2
    s = pyalloc.read_trace(write(tmp_path, "fits.txt", HEAD + fits + fits[:-1]))     # no final newline
    # both read; the second returns the first's pointer, so the replay frees the first
    assert s.trace_stats["events"] == 2 and s.trace_stats["implied_frees"] == 1 and len(s) == 3
    with pytest.raises(TraceFormatError, match=f"line 3: longer than {MAX_LINE}"):
        pyalloc.read_trace(write(tmp_path, "long.txt", HEAD + too_long))
    with pytest.raises(TraceFormatError, match=f"line 4: longer than {MAX_LINE}"):
        pyalloc.read_trace(write(tmp_path, "tail.txt", HEAD + GOOD + too_long[:-1]))
    # a long comment line is a long line too
    with pytest.raises(TraceFormatError, match=f"line 1: longer than {MAX_LINE}"):
        pyalloc.read_trace(io.StringIO("#" * (MAX_LINE + 1) + "\n"))


# -- linear time -----------------------------------------------------------------------------------

HOSTILE_LINES = {
    "32000 spaces": " " * 32000,
    "64 KiB of spaces": " " * (MAX_LINE - 1),
    "64 KiB of one word": "a" * (MAX_LINE - 1),
    "64 KiB of digits": "7" * (MAX_LINE - 1),
    "64 KiB of '-1 '": "-1 " * ((MAX_LINE - 1) // 3),
    "64 KiB of '-1 ['": "-1 [" * ((MAX_LINE - 1) // 4),
    "a head, then a 64 KiB word": GOOD[:60] + ": kmalloc: " + "b" * (MAX_LINE - 100),
    "a head, then 64 KiB of 'k='": GOOD[:60] + ": kmalloc: " + "k=" * ((MAX_LINE - 100) // 2),
    "a head with a paren run": "t-1 (" + "-1" * ((MAX_LINE - 100) // 2) + " [000] 1.1: kfree:",
}


@pytest.mark.parametrize("name", list(HOSTILE_LINES))
def test_every_line_parses_in_linear_time(name):
    text = HEAD + HOSTILE_LINES[name] + "\n" + GOOD
    t0 = time.perf_counter()
    stats = {}
    events = list(parse_events(io.StringIO(text), skip_bad=True, stats=stats))
    took = time.perf_counter() - t0
    assert events[-1][1] == "kmalloc" and stats["lines"] == 4
    assert took < 0.25, f"{name}: {took:.3f} s"        # milliseconds in practice


def test_fields_still_parse_as_before():
    events = list(parse_events(io.StringIO(HEAD + GOOD + "  a b-c-1 (  -9) [003] d..1 5.5: kfree: x.y=1 ==2 z=\n")))
    assert events[0][4]["gfp_flags"] == "GFP_KERNEL" and events[0][2] == 1
    assert events[1][1:4] == ("kfree", 3, "5.5") and events[1][4] == {"y": "1", "z": ""}


# -- numbers --------------------------------------------------------------------------------------

BAD_NUMBERS = {
    "cpu": GOOD.replace("[001]", "[" + "9" * 5000 + "]"),
    "cpu past a stream's": GOOD.replace("[001]", "[70000]"),
    "bytes_req": good_with(bytes_req="1" * 5000),
    "bytes_alloc": good_with(bytes_alloc="1" * 5000).replace("kmalloc:", "kmem_cache_alloc:").replace(
        " node=", " name=fresh_cache node="),
    "ptr": good_with(ptr="f" * 5000),
    "page pfn": "  bash-1 [000] ..... 1.1: mm_page_alloc: page=0xffffea0000001000 pfn=0x" + "1" * 5000
                + " order=0 migratetype=0 gfp_flags=GFP_KERNEL\n",
    "page order": "  bash-1 [000] ..... 1.1: mm_page_alloc: page=0xffffea0000001000 pfn=0x40 order="
                  + "2" * 5000 + " migratetype=0 gfp_flags=GFP_KERNEL\n",
    "free order": "  bash-1 [000] ..... 1.1: mm_page_alloc: page=0xffffea0000001000 pfn=0x40 order=0 "
                  "migratetype=0 gfp_flags=GFP_KERNEL\n  bash-1 [000] ..... 1.2: mm_page_free: "
                  "page=0xffffea0000001000 pfn=0x40 order=" + "3" * 5000 + "\n",
}


@pytest.mark.parametrize("field", list(BAD_NUMBERS))
def test_a_malformed_number_is_a_trace_error_and_skip_bad_skips_it(tmp_path, field):
    path = write(tmp_path, "num.txt", HEAD + GOOD_FREE + BAD_NUMBERS[field] + GOOD)
    with pytest.raises(TraceFormatError, match=r"^line \d+: ") as info:
        pyalloc.read_trace(path)
    assert len(str(info.value)) < 300
    s = pyalloc.read_trace(path, skip_bad=True)
    assert s.trace_stats["bad_lines"] == 1 and s.kind(len(s) - 1) == 1      # the good kmalloc after it
    assert s.trace_stats["cpus"] == 2                                       # the bad line's CPU is not counted


def test_a_long_hex_gfp_part_counts_as_no_bits():
    assert trace.parse_gfp("GFP_KERNEL|0x" + "f" * 5000) == trace.parse_gfp("GFP_KERNEL")


def test_gfp_spellings_do_not_grow_without_bound():
    for i in range(6000):
        trace.parse_gfp(f"GFP_KERNEL|0x{i:x}" + "|__GFP_ZERO" * 60)
    assert len(trace._GFP_CACHE) <= 4096


# -- the entry points ------------------------------------------------------------------------------

def hostile_trace(tmp_path):
    text = (HEAD + GOOD + "z" * (4 * MAX_LINE) + "\n" + " " * 32000 + "\n" + BAD_NUMBERS["cpu"]
            + GOOD_FREE)
    return write(tmp_path, "hostile.txt.gz", text, gzip.open)


def test_replay_steps_skip_hostile_lines(tmp_path, backend):
    path = hostile_trace(tmp_path)
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        assert list(replay_steps(m, str(path))) == [2]
        m.check()


def test_cli_replay_and_report_refuse_or_skip_hostile_lines(tmp_path, backend, capsys):
    path = str(hostile_trace(tmp_path))
    rc = cli.main(["replay", path, "--mem", "32M", "--backend", backend])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"pyalloc: line 4: longer than {MAX_LINE} characters\n"
    rc = cli.main(["replay", path, "--mem", "32M", "--backend", backend, "--skip-bad"])
    out = capsys.readouterr().out
    assert rc == 0 and "(0 other events, 2 bad lines skipped)" in out     # the blank line is no error
    rc = cli.main(["report", "--slab", path])
    assert rc == 2 and "longer than" in capsys.readouterr().err
    rc = cli.main(["report", "--page", path, "--skip-bad"])
    assert rc == 0 and capsys.readouterr().out


def test_sweep_replay_workload_skips_hostile_lines(tmp_path, backend):
    from pyalloc.tools.sweep import TraceWorkload
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        assert TraceWorkload(str(hostile_trace(tmp_path)))(m, 0) == {"operations": 2, "failed": 0, "errors": 0}
        m.check()


# -- compressed files ------------------------------------------------------------------------------

def xz_asking_for(dict_code: int, text: str) -> bytes:
    """An .xz file of text whose block header asks for the dictionary size of dict_code
    (40: 4 GiB - 1), its header CRC made right again."""
    import struct
    import zlib
    data = bytearray(lzma.compress(text.encode(), format=lzma.FORMAT_XZ))
    size = (data[12] + 1) * 4
    assert data[13] == 0 and data[14] == 0x21 and data[15] == 1      # one LZMA2 filter, no sizes
    data[16] = dict_code
    data[12 + size - 4:12 + size] = struct.pack("<I", zlib.crc32(bytes(data[12:12 + size - 4])))
    return bytes(data)


def test_an_xz_file_may_not_ask_for_a_huge_dictionary(tmp_path):
    path = tmp_path / "dict.xz"
    path.write_bytes(xz_asking_for(40, HEAD + GOOD))
    with pytest.raises(TraceFormatError, match="line 1: the compressed file is damaged"):
        pyalloc.read_trace(path)
    with pytest.raises(TraceFormatError, match="damaged"):
        pyalloc.read_trace(path, skip_bad=True)            # nothing after it can be read
    path.write_bytes(xz_asking_for(22, HEAD + GOOD))       # 8 MiB, xz's default: fine
    assert len(pyalloc.read_trace(path)) == 1


def test_multi_stream_xz_and_damaged_gz(tmp_path):
    xz = tmp_path / "two.xz"
    xz.write_bytes(lzma.compress((HEAD + GOOD).encode()) + lzma.compress(GOOD_FREE.encode()))
    assert len(pyalloc.read_trace(xz)) == 2
    gz = tmp_path / "cut.gz"
    gz.write_bytes(gzip.compress((HEAD + GOOD * 2000).encode())[:-200])
    with pytest.raises(TraceFormatError, match="the compressed file is damaged"):
        pyalloc.read_trace(gz, skip_bad=True)
    rc = cli.main(["replay", str(gz), "--mem", "16M", "--backend", "model"])
    assert rc == 2


@pytest.mark.parametrize("field,value", [("bytes_req", "9" * 5000), ("bytes_alloc", "x12"), ("order", "1" * 30),
                                         ("order", "-1"), ("pfn", "0x" + "f" * 5000)])
def test_perf_kmem_report_refuses_or_skips_bad_numbers(tmp_path, field, value):
    """perf-kmem tables over a trace with a hostile number: TraceFormatError naming the line, or skipped."""
    from pyalloc.tools import perf_kmem as report
    good = {"kmalloc": "kmalloc: call_site=foo+0x1/0x2 ptr=0xffff888000001000 bytes_req=100 bytes_alloc=128 "
                       "gfp_flags=GFP_KERNEL node=-1 accounted=false",
            "page": "mm_page_alloc: page=0xffffea0000000040 pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL"}
    event = good["kmalloc"] if field.startswith("bytes") else good["page"]
    bad = re.sub(rf"\b{field}=\S+", f"{field}={value}", event)
    path = tmp_path / "t.txt"
    path.write_text("".join(f"          python-1     [000] .....    1.{i:06d}: {e}\n"
                            for i, e in enumerate([event, bad, event])))
    stats = report.slab_stats if field.startswith("bytes") else report.page_stats
    with pytest.raises(TraceFormatError, match="line 2"):
        stats(path)
    got = stats(path, skip_bad=True)
    summary = got["summary"]
    assert summary.get("allocs", summary.get("alloc_requests")) == 2
