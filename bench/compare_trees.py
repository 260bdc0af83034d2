"""Two pyalloc trees timed in one run, interleaved: per-call pairs and m.run on a kmalloc size mix.

    python bench/compare_trees.py OLD_TREE NEW_TREE [ROUNDS]

Each tree must have its C core built (python pyalloc/_build.py inside it).  Prints ns per call pair
(per op for m.run), the best of ROUNDS interleaved runs per tree, and NEW/OLD.  ``cpu=`` and
``caller=`` name the CPU and call site on each call (a tree without the cpu= fast path pays its old
slow path there).
"""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r'''
import sys, timeit, json
sys.path.insert(0, ".")
import pyalloc
out = {}
m = pyalloc.Machine(mem="256M", backend="c")
n = 20000
ap, fp, km, kf = m.alloc_pages, m.free_pages, m.kmalloc, m.kfree
def pages(): fp(ap("GFP_KERNEL", 0), 0)
def kmalloc(): kf(km(128, "GFP_KERNEL"))
def kmalloc_cpu(): kf(km(128, "GFP_KERNEL", cpu=1), cpu=1)
def kmalloc_caller(): kf(km(128, "GFP_KERNEL", caller="drv_probe+0x1c/0x80"), caller="drv_release+0x10/0x40")
for name, fn in (("pages", pages), ("kmalloc", kmalloc), ("kmalloc cpu=", kmalloc_cpu),
                 ("kmalloc caller=", kmalloc_caller)):
    fn()
    out[name] = min(timeit.repeat(fn, number=n, repeat=7)) / n * 1e9
s = pyalloc.Stream()
sizes = (8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096)
hs = [s.kmalloc(sizes[(i * 7) % len(sizes)], "GFP_KERNEL") for i in range(4000)]
for h in hs[::2]:
    s.kfree(h)
for h in hs[1::2]:
    s.kfree(h)
m.run(s)
out["m.run kmalloc mix, per op"] = min(timeit.repeat(lambda: m.run(s), number=20, repeat=5)) / 20 / len(s) * 1e9
print(json.dumps(out))
'''


def main(old: str, new: str, rounds: int = 3) -> None:
    best: dict = {old: {}, new: {}}
    for _ in range(rounds):
        for tree in (old, new):
            got = json.loads(subprocess.run([sys.executable, "-c", PROBE], cwd=tree, check=True,
                                            capture_output=True, text=True).stdout)
            for k, v in got.items():
                best[tree][k] = min(v, best[tree].get(k, v))
    print(f"{'ns':28} {'old':>9} {'new':>9} {'new/old':>8}")
    for k in best[old]:
        print(f"{k:28} {best[old][k]:9.1f} {best[new][k]:9.1f} {best[new][k] / best[old][k]:8.2f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3)
