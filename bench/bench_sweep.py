"""Sweeps on Dask against serial, in one run (pyalloc.sweep, extra [sweep]).

* sweep-64: the same 64-run kmalloc-mix sweep (C core, 64 MiB machines, cpus
  2/8 x 32 seeds) serially and on a LocalCluster of 2 single-threaded worker
  processes started beforehand (cluster start-up is reported apart: it is paid
  once per sweep, not per run).  extra_info["speedup"] is serial time / Dask
  time; the aim is 1.7x on 2 free cores.  The tables must agree (wall_s aside).
* per-run overhead: 64 runs of a workload that does nothing on a 1 MiB
  machine, Dask minus serial, per run.
* host probe: two busy loops in two processes against one, printed beside the
  speedup: on a quiet 2-core host it is about 1.0; a larger figure means the host
  is busy and no sweep can reach 1.7x there.
"""

from __future__ import annotations

import importlib
import time

import pytest

pd = pytest.importorskip("pandas", reason="pyalloc[sweep] is not installed")
distributed = pytest.importorskip("distributed", reason="pyalloc[sweep] is not installed")

sw = importlib.import_module("pyalloc.tools.sweep")   # the module; pyalloc.sweep is the function

GRID = {"mem": ["64M"], "backend": ["c"], "cpus": [2, 8], "seed": list(range(32))}


def _nothing(m, seed):
    return {"seed_seen": seed}


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x ^= i
    return x


def host_probe(n: int = 3_000_000) -> float:
    """Time of two CPU-bound loops in two processes over the time of one: the host's free cores."""
    import multiprocessing
    t0 = time.perf_counter()
    _spin(n)
    one = time.perf_counter() - t0
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [1000, 1000])                   # start-up before the clock
        t0 = time.perf_counter()
        pool.map(_spin, [n, n])
        two = time.perf_counter() - t0
    return two / one


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def test_sweep_64_dask_vs_serial(benchmark):
    pytest.importorskip("pyalloc._core", reason="the C core is not built")
    benchmark.group = "sweep-64"
    t0 = time.perf_counter()
    cluster = sw.local_cluster(2)
    client = distributed.Client(cluster)
    startup = time.perf_counter() - t0
    try:
        client.run(lambda: __import__("pyalloc._core"))        # workers import the core before the clock starts
        serial, t_serial = _timed(lambda: sw.sweep(GRID, "kmalloc-mix", engine="serial", progress=False))
        result = {}

        def on_dask():
            result["table"] = sw.sweep(GRID, "kmalloc-mix", engine="dask", scheduler=client, progress=False)

        benchmark.pedantic(on_dask, rounds=1, iterations=1)
        t_dask = benchmark.stats.stats.mean
        pd.testing.assert_frame_equal(serial.drop(columns="wall_s"), result["table"].drop(columns="wall_s"))
        assert serial["error"].isna().all()

        tiny = {"mem": ["1M"], "backend": ["c"], "seed": list(range(64))}
        _, t_tiny_serial = _timed(lambda: sw.sweep(tiny, _nothing, engine="serial", progress=False))
        _, t_tiny_dask = _timed(lambda: sw.sweep(tiny, _nothing, engine="dask", scheduler=client, progress=False))
    finally:
        client.close()
        cluster.close()
    benchmark.extra_info.update({
        "host_probe_2_over_1": round(host_probe(), 2),
        "runs": len(serial), "serial_s": round(t_serial, 3), "dask_s": round(t_dask, 3),
        "speedup": round(t_serial / t_dask, 2), "cluster_startup_s": round(startup, 2),
        "mean_run_s": round(float(serial["wall_s"].mean()), 4),
        "overhead_per_run_ms": round((t_tiny_dask - t_tiny_serial) / 64 * 1000, 2),
    })
    print("\nsweep-64:", benchmark.extra_info)
