"""pyalloc.sweep and `pyalloc sweep`: grids, built-in workloads, failed runs, serial == Dask."""

import importlib
import subprocess
import sys

import pytest

import pyalloc
sw = importlib.import_module("pyalloc.tools.sweep")   # the module (pyalloc.sweep is also the function)
from pyalloc.cli.sweep import parse_param, parse_seeds

def _no_workers_under_sanitizers():
    import os
    if os.environ.get("PYALLOC_CHILD_PRELOAD"):
        pytest.skip("Dask's worker processes cannot load the ASan-built core (CI's sanitizer pass); "
                    "the ordinary pass runs this test")


pd = pytest.importorskip("pandas", reason="pyalloc[sweep] (pandas) is not installed")


def test_grid_expands_in_key_order():
    runs = sw.expand({"cpus": [2, 8], "seed": range(3)})
    assert runs == [{"cpus": c, "seed": s} for c in (2, 8) for s in range(3)]


@pytest.mark.parametrize("grid", [{}, {"bogus": [1]}, {"cpus": []}, {"cpus": 2}, {"mem": "1G"}, [("cpus", [2])]])
def test_bad_grid_is_refused(grid):
    with pytest.raises(pyalloc.InvalidArgument):
        sw.sweep(grid, "kmalloc-mix", engine="serial", progress=False)


def test_bad_workload_and_engine_are_refused():
    with pytest.raises(pyalloc.InvalidArgument, match="unknown workload"):
        sw.sweep({"seed": [0]}, "no-such", engine="serial")
    with pytest.raises(pyalloc.InvalidArgument, match="engine"):
        sw.sweep({"seed": [0]}, "kmalloc-mix", engine="threads")


@pytest.mark.parametrize("name", sorted(sw.WORKLOADS))
def test_builtin_workloads_give_full_rows(backend, name):
    mem = "64M" if backend == "c" else "16M"
    table = sw.sweep({"mem": [mem], "backend": [backend], "swap": ["16M"], "seed": [3]}, name,
                     engine="serial", progress=False)
    row = table.iloc[0]
    assert row["error"] is None, row["error"]
    for col in ("unusable_o3", "extfrag_o3", "slab_waste_kb", "pgscan_direct", "oom_kill", "stall_us", "wall_s"):
        assert col in table.columns
    assert 0 <= row["unusable_o3"] <= 1 and row["slab_kb"] > 0 and row["wall_s"] > 0
    if name == "kmalloc-mix":
        assert row["tries_atomic"] > 0 and row["fail_atomic"] == sum(row[f"fail_atomic_o{o}"] for o in range(4))
    if name == "pressure":
        assert row["oom_kill"] >= 1 and row["pgscan_direct"] + row["pgscan_kswapd"] > 0 and row["db_intact"]


def test_same_row_on_both_backends():
    """A run is a pure function of its parameters: the backend changes no metric."""
    t = sw.sweep({"mem": ["16M"], "backend": ["c", "model"], "seed": [5]}, "kmalloc-mix", engine="serial",
                 progress=False)
    pytest.importorskip("pyalloc._core", reason="the C core is not built")
    metrics = t.drop(columns=["backend", "wall_s"])
    assert t["error"].isna().all()
    assert metrics.iloc[0].to_dict() == metrics.iloc[1].to_dict()


def _custom(m, seed):
    if seed == 1:
        raise RuntimeError("this run breaks")
    return {"first_pfn": m.alloc_pages("GFP_KERNEL", seed % 3)}


def test_failed_run_keeps_its_row_and_parameters():
    t = sw.sweep({"mem": ["16M"], "backend": ["model"], "seed": [0, 1, 2]}, _custom, engine="serial",
                 progress=False)
    assert list(t["seed"]) == [0, 1, 2]
    assert t.loc[1, "error"] == "RuntimeError: this run breaks"
    assert pd.isna(t.loc[1, "first_pfn"]) and pd.isna(t.loc[0, "error"]) and t.loc[2, "first_pfn"] >= 0
    bad = sw.sweep({"mem": ["1K"], "seed": [0]}, _custom, engine="serial", progress=False)
    assert bad.loc[0, "error"].startswith("InvalidArgument: mem must be")


def test_dask_gives_the_serial_table():
    pytest.importorskip("distributed", reason="pyalloc[sweep] (dask[distributed]) is not installed")
    _no_workers_under_sanitizers()
    grid = {"mem": ["16M"], "backend": ["model"], "cpus": [1, 4], "seed": [0, 1, 2]}
    serial = sw.sweep(grid, "kmalloc-mix", engine="serial", progress=False)
    dask = sw.sweep(grid, "kmalloc-mix", engine="dask", workers=2, progress=False)
    pd.testing.assert_frame_equal(serial.drop(columns="wall_s"), dask.drop(columns="wall_s"))
    custom = sw.sweep({"mem": ["16M"], "backend": ["model"], "seed": [0, 1]}, _custom, engine="dask", workers=1,
                      progress=False)
    assert custom["error"].isna().tolist() == [True, False]
    assert custom["error"][1] == "RuntimeError: this run breaks"


def test_cli_params_and_seeds():
    assert parse_param("mem=256M,1G") == ("mem", ["256M", "1G"])
    assert parse_param("cpus=2,8") == ("cpus", [2, 8])
    assert parse_seeds("0-3,10") == [0, 1, 2, 3, 10]
    for bad in ("cpus", "cpus=", "cpus=2,x", "=1"):
        with pytest.raises(pyalloc.InvalidArgument):
            parse_param(bad)
    for bad in ("3-1", "a", "1-"):
        with pytest.raises(pyalloc.InvalidArgument):
            parse_seeds(bad)


def test_cli_writes_the_table(tmp_path):
    out = tmp_path / "results.csv"
    r = subprocess.run([sys.executable, "-m", "pyalloc", "sweep", "--param", "mem=16M", "--param", "cpus=1,2",
                        "--param", "backend=model", "--seeds", "0-1", "--workload", "kmalloc-mix",
                        "--engine", "serial", "-q", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "4 runs, 0 failed" in r.stderr
    t = pd.read_csv(out)
    assert list(t[["cpus", "seed"]].itertuples(index=False, name=None)) == [(1, 0), (1, 1), (2, 0), (2, 1)]
    bad = subprocess.run([sys.executable, "-m", "pyalloc", "sweep", "--param", "cpus=x"], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "not an integer" in bad.stderr and "Traceback" not in bad.stderr


def test_readme_sweep_example_runs(tmp_path, monkeypatch, capsys):
    pytest.importorskip("distributed", reason="pyalloc[sweep] (dask[distributed]) is not installed")
    _no_workers_under_sanitizers()
    pytest.importorskip("pyalloc._core", reason="the C core is not built")
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "atomic.csv" in b)
    shown = readme[readme.index(block):].split("```\n", 2)[2].split("```")[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    assert out.split() == shown.split()         # the table the README shows is the one it prints
    assert len(pd.read_csv(tmp_path / "atomic.csv")) == 48
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    assert (tmp_path / "atomic.png").stat().st_size > 1000


def _rss(m, seed):
    from pyalloc import helpers
    return {"processes": len(m.processes()), "free_pages": helpers.nr_free_pages(m)}


def test_runs_start_from_a_snapshot(tmp_path, backend):
    """grid["snapshot"]: every run loads the saved machine (here on the backend of the grid)."""
    with pyalloc.Machine(mem="16M", backend="model") as m:
        pid = m.spawn("warm")
        m.touch(pid, 1000)
        m.save(tmp_path / "warm.snap")

    t = sw.sweep({"snapshot": [tmp_path / "warm.snap"], "backend": [backend], "seed": [0, 1]}, _rss,
                 engine="serial", progress=False)
    assert t["error"].isna().all() and list(t["processes"]) == [1, 1]
    assert t["snapshot"][0].endswith("warm.snap") and t["free_pages"][0] == t["free_pages"][1]


def test_a_scheduler_address_is_used():
    """scheduler="tcp://...": the runs go to that cluster, which the sweep leaves running."""
    distributed = pytest.importorskip("distributed", reason="pyalloc[sweep] (dask[distributed]) is not installed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=40) as cluster:
        grid = {"mem": ["16M"], "backend": ["model"], "seed": [0, 1]}
        t = sw.sweep(grid, "kmalloc-mix", scheduler=cluster.scheduler_address, progress=False)
        assert t["error"].isna().all() and len(t) == 2
        with distributed.Client(cluster) as client:
            assert len(client.scheduler_info()["workers"]) == 1


def test_streams_and_trace_replays_are_workloads(tmp_path):
    """A run can execute an operation stream or replay a kernel capture (serial: no extra needed
    beyond pandas for the table)."""
    pytest.importorskip("pandas", reason="pandas is not installed (pip install 'pyalloc[sweep]')")
    import pyalloc
    from pathlib import Path
    s = pyalloc.Stream()
    handles = [s.kmalloc(size, "GFP_KERNEL") for size in (64, 128, 4096, 100000)]
    for h in handles[::2]:
        s.kfree(h)
    df = pyalloc.sweep({"mem": ["64M"], "backend": ["c", "model"]}, s, engine="serial")
    assert list(df["operations"]) == [6, 6] and list(df["errors"]) == [0, 0] and df["error"].isna().all()
    trace = Path(__file__).parent / "fixtures" / "ftrace-kmem.txt"
    df = pyalloc.sweep({"mem": ["64M", "256M"]}, f"replay:{trace}", engine="serial")
    n = len(pyalloc.read_trace(str(trace), skip_bad=True))
    assert list(df["operations"]) == [n, n] and df["error"].isna().all()
    assert "unusable_index_o3" in df.columns or any(c.startswith("slab") for c in df.columns)


def test_progress_bar_only_on_a_terminal_unless_asked(capsys, monkeypatch):
    grid = {"mem": ["16M"], "seed": [0, 1]}
    sw.sweep(grid, "kmalloc-mix", engine="serial")          # stderr is captured: not a terminal
    assert "sweep" not in capsys.readouterr().err
    sw.sweep(grid, "kmalloc-mix", engine="serial", progress=True)
    assert "sweep" in capsys.readouterr().err
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    sw.sweep(grid, "kmalloc-mix", engine="serial")
    assert "sweep" in capsys.readouterr().err
    sw.sweep(grid, "kmalloc-mix", engine="serial", progress=False)
    assert "sweep" not in capsys.readouterr().err


def test_dask_runs_go_in_chunks_that_keep_their_order():
    runs = [{"seed": i} for i in range(10)]
    for slots in (1, 2, 3, 100):
        chunks = sw._chunks(runs, slots)
        assert [r for c in chunks for r in c] == runs
        assert len(chunks) <= max(1, slots * sw.CHUNKS_PER_SLOT) and all(chunks)
    assert len(sw._chunks(runs, 2)) == 5            # 2 slots x 4 chunks, 10 runs: chunks of 2
