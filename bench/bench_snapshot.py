"""Snapshots: save and load cost what the machine touched, not its size (C core).

* snapshot-64g: a 64 GiB machine with 1 GiB of memory written (512 order-9
  blocks, each filled with its own byte) is saved and loaded again; the file
  size, the save and load times and the pages saved go to extra_info.
* the same 1 GiB on a 4 GiB machine, in the same run: extra_info["time_ratio_64g_vs_4g"]
  near 1 says the cost follows what was touched (the arena itself is never walked:
  mincore() on its MAP_NORESERVE mappings finds the touched pages).
"""

from __future__ import annotations

import os
import time

import pytest

import pyalloc

TOUCHED_BLOCKS = 512            # order-9 blocks: 1 GiB


def _touched(mem: str) -> pyalloc.Machine:
    m = pyalloc.Machine(mem=mem, backend="c")
    for i in range(TOUCHED_BLOCKS):
        pfn = m.alloc_pages("GFP_KERNEL", 9)
        m.memset(m.page_address(pfn), i % 255 + 1, 2 << 20)
    return m


def _save_load(mem: str, path) -> dict:
    m = _touched(mem)
    t0 = time.perf_counter()
    info = m.save(path)
    t_save = time.perf_counter() - t0
    size = os.path.getsize(path)
    t0 = time.perf_counter()
    loaded = pyalloc.Machine.load(path)
    t_load = time.perf_counter() - t0
    assert loaded.proc("buddyinfo") == m.proc("buddyinfo")
    assert info["pages"] == TOUCHED_BLOCKS << 9
    loaded.close()
    m.close()
    os.unlink(path)
    return {"save_s": round(t_save, 3), "load_s": round(t_load, 3), "file_mib": round(size / 2**20, 1),
            "pages_saved": info["pages"], "core_kib": info["core_bytes"] >> 10}


def test_snapshot_64g_1g_touched(benchmark, tmp_path):
    pytest.importorskip("pyalloc._core", reason="the C core is not built")
    benchmark.group = "snapshot-64g"
    _save_load("4G", tmp_path / "warm.snap")      # the first file written pays for the host's page cache
    result = {}

    def run():
        result.update(_save_load("64G", tmp_path / "64g.snap"))

    benchmark.pedantic(run, rounds=1, iterations=1)
    big = result
    small = _save_load("4G", tmp_path / "4g.snap")
    benchmark.extra_info.update({f"64g_{k}": v for k, v in big.items()})
    benchmark.extra_info.update({f"4g_{k}": v for k, v in small.items()})
    benchmark.extra_info["time_ratio_64g_vs_4g"] = round((big["save_s"] + big["load_s"])
                                                         / (small["save_s"] + small["load_s"]), 2)
    assert big["file_mib"] < 1100          # 1 GiB of pages plus a few MiB of core state
    print("\nsnapshot:", benchmark.extra_info)
