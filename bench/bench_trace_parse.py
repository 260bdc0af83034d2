"""Reading a kmem capture at disk speed: read_trace against ``xz -dc`` and a bare line loop.

Targets, each measured within one run on a capture of about a million lines (the 301 event
lines of tests/fixtures/ftrace-kmem.txt repeated with other pointers and pfns each round):
  * read_trace of the .xz at most 2x the time ``xz -dc`` takes to decompress it;
  * plain text at least 2 M lines/s, within 10x a bare Python ``for line in f: pass`` loop.
Both are given for the line parser alone (csrc/trace_parse.c: the records read_trace
builds its stream from) and for read_trace as a whole (records to Stream, in Python).

``pytest bench/bench_trace_parse.py --benchmark-only -s`` prints the numbers; they are kept
in the benchmark's extra_info too.  BENCH_TRACE_LINES sets the size.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import pyalloc
from pyalloc.machine import trace as trace_mod

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ftrace-kmem.txt"
LINES = int(os.environ.get("BENCH_TRACE_LINES", 1_000_000))
_HEX = re.compile(r"(ptr=|pfn=0x)([0-9a-f]+)")
_results: dict[str, float] = {}


def synthesize(path: Path, n_lines: int) -> int:
    """A capture of about n_lines: the excerpt's event lines round after round, each round's
    pointers and pfns moved by a random amount (real captures hash pointers: they compress
    as badly as random ones, and xz -dc of a repeated text would be unrealistically fast)."""
    rng = random.Random(17)
    text = FIXTURE.read_text()
    head = [line for line in text.splitlines(True) if line.startswith("#")]
    body = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
    parts = _HEX.split(body)        # text, key, value, text, key, value, ...
    rounds = max(1, n_lines // body.count("\n"))
    with open(path, "w") as f:
        f.writelines(head)
        for r in range(rounds):
            out = [parts[0]]
            for i in range(1, len(parts), 3):
                value = int(parts[i + 1], 16)
                moved = (value ^ rng.getrandbits(28) << 4) if value else 0
                out.append(f"{parts[i]}{moved:0{len(parts[i + 1])}x}{parts[i + 2]}")
            f.write("".join(out))
    return len(head) + rounds * body.count("\n")


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    if shutil.which("xz") is None:
        pytest.skip("xz is not installed")
    d = tmp_path_factory.mktemp("capture")
    plain = d / "capture.txt"
    lines = synthesize(plain, LINES)
    subprocess.run(["xz", "-k", "-T2", "-6", str(plain)], check=True)
    return plain, Path(str(plain) + ".xz"), lines


def best(fn, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def parse_only(path: Path) -> int:
    """The records of a capture through the parser read_trace uses, and nothing else."""
    parser = trace_mod._line_parser()
    n = 0
    for recs, _text in trace_mod._records(path, parser, None):
        n += len(recs)
    return parser.lineno


def report(benchmark, name: str, value: float, unit: str) -> None:
    _results[name] = value
    benchmark.extra_info[name] = value
    print(f"  {name}: {value:,.2f} {unit}")


def measure(benchmark, path: Path, lines: int, baseline) -> tuple[float, float, float]:
    """Best-of-3 seconds of baseline() and of the parser alone, and read_trace's (timed once)."""
    t_base = best(baseline)
    t_parse = best(lambda: parse_only(path))
    s = benchmark.pedantic(pyalloc.read_trace, args=(path,), rounds=1, iterations=1)
    assert s.trace_stats["lines"] == lines
    size = path.stat().st_size >> 20
    print(f"\n{lines:,} lines, {size} MiB of {'.xz' if path.suffix == '.xz' else 'text'}:")
    return t_base, t_parse, benchmark.stats.stats.min


def test_xz_against_xz_dc(benchmark, capture):
    _plain, xz, lines = capture
    t_xz, t_parse, t_read = measure(benchmark, xz, lines, lambda: subprocess.run(
        ["xz", "-dc", str(xz)], stdout=subprocess.DEVNULL, check=True))
    report(benchmark, "xz -dc s", t_xz, "s")
    report(benchmark, "parse alone .xz / xz -dc", t_parse / t_xz, "x")
    report(benchmark, "read_trace .xz / xz -dc (goal <= 2)", t_read / t_xz, "x")


def test_plain_lines_per_second(benchmark, capture):
    plain, _xz, lines = capture

    def loop():
        with open(plain) as f:
            for _line in f:
                pass
    t_loop, t_parse, t_read = measure(benchmark, plain, lines, loop)
    report(benchmark, "bare Python line loop M lines/s", lines / t_loop / 1e6, "")
    report(benchmark, "parse alone (records copied out) M lines/s", lines / t_parse / 1e6, "")
    report(benchmark, "read_trace M lines/s (goal >= 2)", lines / t_read / 1e6, "")
    report(benchmark, "read_trace / line loop (goal <= 10)", t_read / t_loop, "x")
