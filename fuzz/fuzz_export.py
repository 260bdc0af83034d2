"""Fuzz the export: hostile trees under the root, hostile cache names, and Exporter.update.

One input is a byte string, read as a program: which backend, which caches to
create (names from a pool of troublemakers -- ".", "..", "/", "../..", "café",
NUL, surrogates, 64 four-byte characters -- and random text), then rounds of
"plant things under the root, export".  Plants are directories, files, fifos,
hard links and symlinks (to a sentinel directory outside the root, to files
and subdirectories in it, relative ones climbing out with "..", dangling ones,
loops), at the paths the export uses, at temporary-file names an exporter
might pick, and at random names; some rounds first remove parts of the tree
the last export wrote.  A finding is:

* escape       -- anything outside the root changed: the sentinel directory
                  (and the root's parent) is fingerprinted -- every entry's
                  name, type, inode, mtime and contents -- before and after;
* undocumented -- export raised anything (with a fresh root that stays a
                  directory the export must always succeed), or
                  kmem_cache_create raised something but InvalidArgument;
* leftover     -- a temporary file of the exporter's is left under the root;
* tree         -- after an export a file is missing, holds other text, or a
                  path to it passes through a symlink.

Two ways to run it:

    python fuzz/fuzz_export.py --plain --seconds 120 --seed 1     # random inputs (CI)
    python fuzz/fuzz_export.py -max_total_time=3600 fuzz/corpus-export  # with atheris

It prints the inputs run and the findings by kind, and exits 1 if there was any.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
import traceback
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                        # the shared driver beside this file
sys.path.insert(0, os.path.dirname(HERE))       # run from a checkout without installing

import _driver  # noqa: E402
import pyalloc  # noqa: E402
from pyalloc.tools import export
from pyalloc.errors import InvalidArgument  # noqa: E402

NAMES = (".", "..", "/", "../..", "./.", "a/../..", "café", "naïve/ünï", "\x00", "", " ", "x" * 65,
         "\U0001d538" * 64, "\U0001d538" * 63, "é" * 64, "\udc80", "proc", "sys", "!", "..!..", ".meminfo",
         "objects", "dentry", "kmalloc-64", "tmp.tmp", ".a.0123456789abcdef.tmp", "a\nb", "\u202e")
ALPHABET = "ab./!é\U0001d538-_.\x00 \udc80"
TMP_RE = re.compile(r"^\..*\.[0-9a-f]{16}\.tmp$")


class Finding(Exception):
    def __init__(self, kind: str, text: str) -> None:
        super().__init__(f"{kind}: {text}")
        self.kind = kind


class Bytes:
    """The input, read a little at a time; zeros when it runs out."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1] if self.pos <= len(self.data) else 0

    def pick(self, seq):
        return seq[self.byte() % len(seq)]

    def more(self) -> bool:
        return self.pos < len(self.data)


def fingerprint(top: str, skip: str | None = None) -> dict:
    """Every entry under top, by relative path: mode, inode, mtime, contents or link text."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if skip is not None:
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) != skip]
        for name in dirnames + filenames + [""]:
            path = os.path.join(dirpath, name)
            if path == skip:
                continue
            st = os.lstat(path)
            body: str | bytes | None = None
            if stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    body = f.read()
            mtime = st.st_mtime_ns if not (path == top and skip) else None   # the root's parent: root's entry may come and go
            out[os.path.relpath(path, top)] = (st.st_mode, st.st_ino, mtime, body)
    return out


def make_sentinel(outside: str) -> None:
    for d in ("proc", "sys/kernel/slab/dentry", "keep/deeper", "kernel"):
        os.makedirs(os.path.join(outside, d), exist_ok=True)
    for f, text in (("meminfo", "precious\n"), ("proc/meminfo", "outside\n"), ("keep/file", "keep\n"),
                    ("keep/deeper/file", "deeper\n"), ("sys/kernel/slab/dentry/objects", "7\n")):
        with open(os.path.join(outside, f), "w") as fh:
            fh.write(text)
    os.symlink("keep", os.path.join(outside, "link-in-sentinel"))


def candidate_paths(m, rng: Bytes) -> list:
    """Relative paths under the root worth planting at: the export's own and some random ones."""
    files = list(export.render_tree(m))
    dirs = sorted({"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)})
    out = dirs + files
    for rel in files[:: max(1, len(files) // 8)]:
        d, _, name = rel.rpartition("/")
        out.append(f"{d}/.{name}.{os.getpid()}.tmp")
        out.append(f"{d}/.{name}.{'%016x' % rng.byte()}.tmp")
    out += ["sys/kernel/slab/stale", "sys/kernel/slab/..!..", "proc/zzz", "x"]
    return out


def plant(root: str, outside: str, rel: str, how: int) -> None:
    """Put one hostile thing at root/rel (parents made as directories when missing)."""
    path = os.path.join(root, rel)
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError:
        return                  # a parent is already something else: that plant stands
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    depth = rel.count("/") + 1
    targets = [outside, os.path.join(outside, "meminfo"), os.path.join(outside, "keep"),
               os.path.join(outside, "proc"), os.path.join(outside, "sys/kernel/slab"),
               os.path.join(outside, "sys/kernel/slab/dentry"), os.path.join(outside, "nonexistent"),
               "../" * depth + "outside", "../" * depth + "outside/keep/file", path, "."]
    kind = how % 6
    if kind == 0:
        os.symlink(targets[(how // 6) % len(targets)], path)
    elif kind == 1:
        os.mkdir(path)
        os.symlink(outside, os.path.join(path, "sub"))
        with open(os.path.join(path, "f"), "w") as f:
            f.write("planted")
    elif kind == 2:
        with open(path, "w") as f:
            f.write("planted file\n")
    elif kind == 3:
        os.mkfifo(path)
    elif kind == 4:
        os.link(os.path.join(outside, "meminfo"), path)
    else:
        os.symlink(targets[(how // 6) % len(targets)], path)


def check_tree(m, root: str) -> None:
    files = export.render_tree(m)
    for rel, text in files.items():
        path = os.path.join(root, rel)
        parts = rel.split("/")
        for i in range(1, len(parts) + 1):
            if os.path.islink(os.path.join(root, *parts[:i])):
                raise Finding("tree", f"{'/'.join(parts[:i])} is a symlink after the export")
        try:
            with open(path, "rb") as f:
                body = f.read()
        except OSError as exc:
            raise Finding("tree", f"{rel} cannot be read after the export: {exc}") from None
        if body != text.encode("utf-8", "surrogateescape"):
            raise Finding("tree", f"{rel} does not hold the machine's text")


def leftovers(root: str, planted: set) -> list:
    """The exporter's temporary files: named as it names them, not planted, not a cache's directory."""
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
            if TMP_RE.match(f) and os.path.relpath(os.path.join(d, f), root) not in planted]


def test_one_input(data: bytes, stats: Counter | None = None) -> None:
    stats = Counter() if stats is None else stats
    stats["inputs"] += 1
    rng = Bytes(data)
    backend = "c" if rng.byte() & 1 and pyalloc_c_available() else "model"
    base = tempfile.mkdtemp(prefix="pyalloc-fuzz-export-")
    try:
        root = os.path.join(base, "root")
        outside = os.path.join(base, "outside")
        os.mkdir(root)
        make_sentinel(outside)
        with pyalloc.Machine(mem="16M", backend=backend) as m:
            for _ in range(rng.byte() % 6):
                if rng.byte() & 1:
                    name = rng.pick(NAMES)
                else:
                    name = "".join(rng.pick(ALPHABET) for _ in range(rng.byte() % 8))
                try:
                    m.kmem_cache_create(name, 8 + rng.byte(), 0, 0)
                    stats["caches made"] += 1
                except InvalidArgument:
                    stats["names refused"] += 1
                except Exception as exc:        # noqa: BLE001 - anything else is the finding
                    raise Finding("undocumented", f"kmem_cache_create({name!r}): "
                                  f"{type(exc).__name__}: {exc}") from None
            ex = export.Exporter(root)
            planted: set = set()
            for rnd in range(1 + rng.byte() % 3):
                paths = candidate_paths(m, rng)
                if rnd and rng.byte() % 3 == 0:        # part of the last export went away
                    victim = os.path.join(root, rng.pick(paths))
                    if os.path.isdir(victim) and not os.path.islink(victim):
                        shutil.rmtree(victim)
                    elif os.path.lexists(victim):
                        os.unlink(victim)
                for _ in range(rng.byte() % 12):
                    rel = rng.pick(paths)
                    plant(root, outside, rel, rng.byte())
                    planted.add(rel)
                    stats["plants"] += 1
                if rnd and rng.byte() & 1:
                    m.kmalloc(64, "GFP_KERNEL")
                before = fingerprint(outside)
                around = fingerprint(base, skip=root)
                try:
                    ex.update(m)
                    stats["exports"] += 1
                except Exception as exc:        # noqa: BLE001
                    raise Finding("undocumented", f"Exporter.update: {type(exc).__name__}: {exc}\n"
                                  + traceback.format_exc(limit=4)) from None
                if fingerprint(outside) != before or fingerprint(base, skip=root) != around:
                    raise Finding("escape", f"the export changed something outside the root ({backend})")
                left = leftovers(root, planted)
                if left:
                    raise Finding("leftover", f"temporary files left: {left[:3]}")
                check_tree(m, root)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def pyalloc_c_available() -> bool:
    from pyalloc._testing import c_core_available
    return c_core_available()


def plain(seconds: float, seed: int, max_len: int = 200) -> int:
    """The driver without atheris: random inputs until the time is up."""
    return _driver.plain("fuzz_export", test_one_input, Finding, seconds, seed, max_len)


def main(argv=None) -> int:
    return _driver.main("fuzz_export", __doc__ or "", test_one_input, Finding, 200, argv)


if __name__ == "__main__":
    sys.exit(main())
