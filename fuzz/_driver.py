"""The command line every pyalloc fuzz target shares: atheris when it is installed, else a plain
random driver over the same input decoder (CI runs the plain one, bounded)."""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from typing import Callable, Optional


def plain(name: str, one: Callable, finding: type, seconds: float, seed: int, max_len: int) -> int:
    """Random inputs until the time is up; prints each new finding once and exits 1 if there was any."""
    rng = random.Random(seed)
    stats: Counter = Counter()
    findings: Counter = Counter()
    shown: set = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data = rng.randbytes(rng.randrange(8, max_len))
        try:
            one(data, stats)
        except finding as f:
            findings[f.kind] += 1           # type: ignore[attr-defined]
            key = str(f).split("\n")[0][:160]
            if key not in shown:
                shown.add(key)
                print(f"FINDING {f}\n  input: {data.hex()}", flush=True)
    print(f"{name}: " + ", ".join(f"{v} {k}" for k, v in sorted(stats.items()))
          + f" in {seconds:.0f} s (seed {seed})")
    print("findings: " + (", ".join(f"{v} {k}" for k, v in sorted(findings.items())) or "none"))
    return 1 if findings else 0


def main(name: str, doc: str, one: Callable, finding: type, max_len: int,
         argv: Optional[list] = None) -> int:
    argv = sys.argv if argv is None else argv
    ap = argparse.ArgumentParser(description=doc.split("\n")[0], add_help=False)
    ap.add_argument("--plain", action="store_true", help="random inputs, no atheris")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--repro", help="run one input given in hex (as a FINDING prints it)")
    opts, rest = ap.parse_known_args(argv[1:])
    for arg in rest:        # libFuzzer's time limit also bounds the fallback driver
        if arg.startswith("-max_total_time="):
            opts.seconds = float(arg.split("=", 1)[1])
    if opts.repro:
        one(bytes.fromhex(opts.repro))
        print("no finding")
        return 0
    if not opts.plain:
        try:
            import atheris  # type: ignore[import-untyped]
        except ImportError:
            print("atheris is not installed (pip install -e '.[fuzz]'); falling back to --plain", file=sys.stderr)
        else:
            atheris.instrument_all()        # pyalloc is imported by now: instrument its bytecode
            atheris.Setup([argv[0]] + rest, lambda data: one(data))
            atheris.Fuzz()
            return 0
    return plain(name, one, finding, opts.seconds, opts.seed, max_len)
