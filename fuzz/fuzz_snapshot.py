"""Fuzz the snapshot loader's CORE section on both backends.

A few small machines (slabs with and without slub_debug, processes, swap,
files) are saved once; each input then mutates words of the CORE section (a
word set to a boundary or random value, a bit flipped, two words swapped, a
word inserted or deleted), re-seals the section's CRC so only the core's own
rules can refuse it, and loads the file on the C and the model backend.  A
finding is:

* crash/hang   -- the process dies or stalls (faulthandler ends a stalled run with exit 1);
* undocumented -- the loader raised anything but SnapshotError;
* diverge      -- one backend refused and the other loaded, or both refused with different
                  messages, or the loaded machines then answered a few operations, their /proc
                  text or check() differently;
* check        -- a machine that loaded fails check() with anything but a page-table finding.

    python fuzz/fuzz_snapshot.py --plain --seconds 120 --seed 1     # random mutants (CI)
    python fuzz/fuzz_snapshot.py -max_total_time=600 CORPUS         # atheris, coverage-guided

Exit status 1 if there was any finding.
"""

from __future__ import annotations

import argparse
import faulthandler
import io
import json
import random
import struct
import sys
import time
import traceback
import zlib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyalloc                                   # noqa: E402
from pyalloc import _abi                        # noqa: E402
from pyalloc.tools import workload  # noqa: E402
from pyalloc.errors import SnapshotError         # noqa: E402

HEADER = 16
SECTION = struct.Struct("<4sQI")
MASK = (1 << 64) - 1
HANG_SECONDS = 60
BOUNDARY = (0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 63, 64, 255, 256, 4095, 4096, 32767, 32768, 65535, 65536,
            (1 << 20), 8 << 20, (1 << 24), (1 << 30), (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32,
            (1 << 62), (1 << 63) - 1, 1 << 63, MASK - 1, MASK)
VIEWS = ("buddyinfo", "meminfo", "slabinfo", "vmstat")


def sections(blob: bytes):
    """[(tag, payload)] of a snapshot file after its header."""
    out, pos = [], HEADER
    while pos < len(blob):
        tag, n, _ = SECTION.unpack_from(blob, pos)
        pos += SECTION.size
        out.append((tag, blob[pos:pos + n]))
        pos += n
    return out


def seal(head: bytes, secs) -> bytes:
    f = io.BytesIO()
    f.write(head)
    for tag, payload in secs:
        f.write(SECTION.pack(tag, len(payload), zlib.crc32(payload)))
        f.write(payload)
    return f.getvalue()


def with_core(blob: bytes, core: bytes) -> bytes:
    return seal(blob[:HEADER], [(t, core if t == b"CORE" else p) for t, p in sections(blob)])


def core_of(blob: bytes) -> bytes:
    return next(p for t, p in sections(blob) if t == b"CORE")


def build_machines():
    """Saved files (C backend's bytes) of a few small, busy machines."""
    out = []
    m = pyalloc.Machine(mem="16M", cpus=2, swap="4M", backend="c")
    workload.run_slab(m, objects=300, seed=1)
    p = m.spawn("a")
    m.touch(p, 700)
    m.write_file("/f", 60)
    m.file_write("/g", 10, b"bytes on disk")
    m.sync()
    q = m.spawn("b")
    m.touch(q, 3200)                    # pushes a into swap
    out.append(pyalloc.machine.snapshot.to_bytes(m))
    m.close()
    m = pyalloc.Machine(mem="8M", cpus=3, backend="c", slub_debug="FZPU,dbg")
    c = m.kmem_cache_create("dbg", 100, 0, "SLAB_HWCACHE_ALIGN")
    objs = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(40)]
    for o in objs[::3]:
        m.kmem_cache_free(c, o)
    with m.on_cpu(1):
        [m.kmalloc(200, "GFP_KERNEL") for _ in range(20)]
    m.vmalloc(20000, "GFP_KERNEL", "f+0x1/0x2")
    out.append(pyalloc.machine.snapshot.to_bytes(m))
    m.close()
    return out


def mutate(core: bytes, rnd: random.Random) -> bytes:
    w = list(struct.unpack(f"<{len(core) // 8}Q", core))
    for _ in range(rnd.choice((1, 1, 1, 2, 3))):
        # most of the front is counters and page-table words: aim at the lists half the time
        i = rnd.randrange(len(w)) if rnd.random() < 0.5 else rnd.randrange(max(0, len(w) - 4000), len(w))
        op = rnd.randrange(10)
        if op <= 3:
            w[i] = rnd.choice(BOUNDARY)
        elif op == 4:
            w[i] = (w[i] + rnd.choice((-2, -1, 1, 2))) & MASK
        elif op == 5:
            w[i] = rnd.getrandbits(64)
        elif op == 6:
            w[i] ^= 1 << rnd.randrange(64)
        elif op == 7:
            j = rnd.randrange(len(w))
            w[i], w[j] = w[j], w[i]
        elif op == 8:
            w.insert(i, rnd.choice(BOUNDARY))
        elif len(w) > 1:
            del w[i]
    return struct.pack(f"<{len(w)}Q", *w)


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except pyalloc.PyallocError as exc:
        return ("raise", type(exc).__name__, str(exc))


def exercise(m) -> list:
    """A few deterministic operations that walk what a load rebuilt, and what they left."""
    out = []
    pfns = []
    for order in (0, 3, 10):
        r = outcome(m.alloc_pages, "GFP_KERNEL", order)
        out.append(r)
        if r[0] == "ok" and r[1] is not None:
            pfns.append((r[1], order))
    for size in (8, 96, 200, 1000):
        r = outcome(m.kmalloc, size, "GFP_KERNEL")
        out.append(r)
        if r[0] == "ok" and r[1] is not None:
            out.append(outcome(m.kfree, r[1]))
    for pid in sorted(p["pid"] for p in m.processes())[:3]:
        out.append(outcome(m.touch, pid, 20))
    out.append(outcome(m.sync))
    for pid in sorted(p["pid"] for p in m.processes())[:1]:
        out.append(outcome(m.exit, pid))
    for pfn, order in pfns:
        out.append(outcome(m.free_pages, pfn, order))
    out.append({v: m.proc(v) for v in VIEWS})
    out.append(outcome(m.check))
    return out


class Fuzzer:
    def __init__(self) -> None:
        self.files = build_machines()
        self.findings = Counter()
        self.verdicts = Counter()
        self.runs = 0

    def finding(self, kind: str, detail: str, blob: bytes) -> None:
        self.findings[kind] += 1
        if self.findings[kind] <= 3:
            print(f"FINDING {kind}: {detail}", file=sys.stderr)
            path = Path(f"snapshot-finding-{kind}-{self.findings[kind]}.bin")
            path.write_bytes(blob)
            print(f"  input kept in {path}", file=sys.stderr)

    def load(self, blob: bytes, backend: str):
        try:
            return ("ok", pyalloc.machine.snapshot.read(blob, backend))
        except SnapshotError as exc:
            return ("refused", str(exc))
        except Exception as exc:                  # noqa: BLE001 - any other exception is the finding
            return ("undocumented", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")

    def raw_c(self, blob: bytes) -> None:
        """The words straight into the C core, no Python check first: it must refuse or load
        without a memory error (the sanitizer build aborts on one), and check what it loaded."""
        try:
            from pyalloc._core import ffi, lib
        except ImportError:
            return
        info = json.loads(sections(blob)[0][1])
        core = core_of(blob)
        out = ffi.new("pa_machine **")
        if lib.pa_machine_new(info["mem"] >> 12, info["cpus"], info["min_free_kbytes"], 0, _abi.KCONFIG_DEFAULT, out):
            return
        m = out[0]
        try:
            if info["swap"] and lib.pa_set_swap(m, info["swap"] >> 12):
                return
            if lib.pa_snapshot_load(m, ffi.from_buffer(core), len(core)) == 0:
                msg = ffi.new("char[]", 512)
                lib.pa_snapshot_check(m, msg, 512)
                lib.pa_check(m, msg, 512)
        finally:
            lib.pa_machine_close(m)

    def one(self, blob: bytes) -> None:
        self.runs += 1
        self.raw_c(blob)
        got = {b: self.load(blob, b) for b in ("c", "model")}
        try:
            for b, r in got.items():
                if r[0] == "undocumented":
                    self.finding("undocumented", f"{b}: {r[1]}", blob)
            kinds = (got["c"][0], got["model"][0])
            self.verdicts[kinds] += 1
            if "undocumented" in kinds:
                return
            if kinds[0] != kinds[1] or (kinds[0] == "refused" and got["c"][1] != got["model"][1]):
                self.finding("diverge", f"load: c {got['c'][:2]!r} / model {got['model'][:2]!r}"[:2000], blob)
                return
            if kinds[0] == "ok":
                mc, mm = got["c"][1], got["model"][1]
                for b, m in (("c", mc), ("model", mm)):
                    found = m._core.snapshot_check()
                    if found not in (None, pyalloc.errors.ECORRUPT):
                        self.finding("check", f"{b}: {found}", blob)
                try:
                    ec, em = exercise(mc), exercise(mm)
                except Exception as exc:          # noqa: BLE001
                    self.finding("undocumented", f"after load: {type(exc).__name__}: {exc}\n"
                                 f"{traceback.format_exc()}", blob)
                    return
                if ec != em:
                    diff = next(i for i, (a, b) in enumerate(zip(ec, em)) if a != b) if len(ec) == len(em) else -1
                    self.finding("diverge", f"after load, step {diff}: c {ec[diff]!r:.600} / model {em[diff]!r:.600}",
                                 blob)
        finally:
            for r in got.values():
                if r[0] == "ok":
                    r[1].close()

    def from_bytes(self, data: bytes) -> None:
        """An atheris input: which machine, then a seed for the mutations."""
        if len(data) < 2:
            return
        blob = self.files[data[0] % len(self.files)]
        rnd = random.Random(data[1:])
        before = sum(self.findings.values())
        self.one(with_core(blob, mutate(core_of(blob), rnd)))
        if sum(self.findings.values()) != before:
            raise RuntimeError("snapshot finding (see above)")       # atheris keeps the input

    def report(self, seconds: float) -> None:
        print(f"fuzz_snapshot: {self.runs} mutants in {seconds:.0f} s; verdicts (c, model): "
              f"{dict(self.verdicts)}; findings: {dict(self.findings) or 'none'}")


def main(argv=None) -> int:
    argv = list(sys.argv if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=False)
    ap.add_argument("--plain", action="store_true", help="random mutants, no atheris")
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--seed", type=int, default=1)
    args, rest = ap.parse_known_args(argv[1:])
    fz = Fuzzer()
    if not args.plain:
        try:
            import atheris
        except ImportError:
            print("atheris is not installed; falling back to --plain", file=sys.stderr)
        else:
            atheris.instrument_all()
            atheris.Setup([argv[0]] + rest, fz.from_bytes)
            atheris.Fuzz()
    rnd = random.Random(args.seed)
    start = time.monotonic()
    while time.monotonic() - start < args.seconds:
        faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
        blob = fz.files[rnd.randrange(len(fz.files))]
        fz.one(with_core(blob, mutate(core_of(blob), rnd)))
    faulthandler.cancel_dump_traceback_later()
    fz.report(time.monotonic() - start)
    return 1 if fz.findings else 0


if __name__ == "__main__":
    sys.exit(main())
