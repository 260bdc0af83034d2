"""Host RSS and time to boot a big machine, per backend.  Plain script: prints numbers.

    python bench/rss_boot.py [MEM]        # default 64G

Each backend is measured in a fresh subprocess, so one backend's freed-but-kept heap
cannot hide the other's cost.  Reported: VmRSS before booting (imports done), the RSS
added by Machine(mem=MEM) construction, the RSS added after 1000 order-0
alloc_pages/free_pages pairs, the peak (VmHWM) added, and the boot time.
Targets (DESIGN.md): a 64 GiB boot adds < 64 MiB of RSS and takes < 0.5 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

# run from a checkout: import the pyalloc next to bench/, not whatever is installed
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def measure(backend: str, mem: str) -> dict:
    import pyalloc
    pyalloc.Machine(mem="1M", backend=backend).close()     # imports and one-time setup
    rss0 = _status_kb("VmRSS")
    hwm0 = _status_kb("VmHWM")
    t0 = time.perf_counter()
    m = pyalloc.Machine(mem=mem, backend=backend)
    boot_s = time.perf_counter() - t0
    rss_boot = _status_kb("VmRSS")
    t0 = time.perf_counter()
    for _ in range(1000):
        pfn = m.alloc_pages("GFP_KERNEL", 0)
        assert isinstance(pfn, int)
        m.free_pages(pfn, 0)
    pairs_s = time.perf_counter() - t0
    rss_pairs = _status_kb("VmRSS")
    hwm = _status_kb("VmHWM")
    t0 = time.perf_counter()
    m.close()
    close_s = time.perf_counter() - t0
    return {"backend": backend, "mem": mem, "rss_before_kb": rss0,
            "boot_added_kb": rss_boot - rss0, "after_pairs_added_kb": rss_pairs - rss0,
            "peak_added_kb": max(0, hwm - max(hwm0, rss0)), "boot_s": boot_s,
            "pair_us": pairs_s / 1000 * 1e6, "close_s": close_s}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
        return
    mem = sys.argv[1] if len(sys.argv) > 1 else "64G"
    print(f"{'backend':8} {'mem':>5} {'RSS before':>11} {'+boot':>10} {'+1000 pairs':>12} "
          f"{'+peak':>10} {'boot time':>10} {'pair':>9}")
    for backend in ("c", "model"):
        out = subprocess.run([sys.executable, __file__, "--child", backend, mem],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{backend:8} {mem:>5} {r['rss_before_kb'] / 1024:>8.1f} MiB "
              f"{r['boot_added_kb'] / 1024:>6.2f} MiB {r['after_pairs_added_kb'] / 1024:>8.2f} MiB "
              f"{r['peak_added_kb'] / 1024:>6.2f} MiB {r['boot_s'] * 1e3:>7.3f} ms "
              f"{r['pair_us']:>6.2f} us")


if __name__ == "__main__":
    main()
