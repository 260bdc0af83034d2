"""pyalloc serve: a workload that keeps the export current until SIGTERM or Ctrl-C."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pyalloc
from pyalloc.tools import serve


def test_serve_ticks_and_exports(backend, tmp_path):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        log = []
        done = serve.serve(m, tmp_path, interval=0.001, steps=serve.churn(m, ops=200), ticks=3,
                           log=type("L", (), {"write": lambda s, t: log.append(t), "flush": lambda s: None})())
        assert done == 3
        assert (tmp_path / "proc/meminfo").read_text() == m.proc("meminfo")
        assert (tmp_path / "sys/kernel/slab/churn_dentry/objects").read_text() == \
            m.sysfs("kernel/slab/churn_dentry/objects")
        assert "stopped after 3 ticks" in "".join(log)
        m.check()


def test_churn_moves_both_ways(backend):
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        steps = serve.churn(m, ops=400)
        free = []
        for _ in range(serve.CYCLE_TICKS + 2):
            next(steps)
            free.append(m.snapshot()["zones"][1]["nr_free_pages"])
        rises = sum(b > a for a, b in zip(free, free[1:]))
        falls = sum(b < a for a, b in zip(free, free[1:]))
        assert rises >= 3 and falls >= 3, free
        m.check()


def test_interval_parsing():
    assert serve.parse_interval("1s") == 1.0
    assert serve.parse_interval("250ms") == 0.25
    assert serve.parse_interval("2m") == 120.0
    assert serve.parse_interval("0.5") == 0.5
    for bad in ("", "fast", "0s", "-1s"):
        with pytest.raises(ValueError):
            serve.parse_interval(bad)


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_command_stops_cleanly_on_signal(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-m", "pyalloc", "serve", "--root", str(tmp_path),
                             "--interval", "50ms", "--mem", "64M", "--backend", "model"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(tmp_path / "proc" / "meminfo")
        time.sleep(0.5)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped after" in err
    assert (tmp_path / "proc/slabinfo").read_text().startswith("slabinfo - version: 2.1\n")
    assert not list(tmp_path.rglob(".*.tmp"))


def test_serve_and_plot_replay_a_trace(tmp_path):
    """--replay runs a kmem trace a slice per tick (pyalloc.tools.replay.replay_steps)."""
    fixture = Path(__file__).parent / "fixtures" / "ftrace-kmem.txt"
    root = tmp_path / "x"
    r = subprocess.run([sys.executable, "-m", "pyalloc", "serve", "--root", str(root), "--replay", str(fixture),
                        "--ticks", "3", "--interval", "10ms", "--mem", "64M", "--backend", "model"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert (root / "proc/slabinfo").read_text().startswith("slabinfo - version: 2.1\n")
    r = subprocess.run([sys.executable, "-m", "pyalloc", "plot", "-o", str(tmp_path / "p.svg"), "--replay",
                        str(fixture), "--ticks", "2", "--mem", "64M", "--backend", "model"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode and "matplotlib" in r.stderr:
        pytest.skip("matplotlib is not installed (pyalloc[plot])")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "p.svg").read_text().startswith("<?xml")


def test_replay_steps_runs_the_whole_trace():
    import pyalloc
    from pyalloc.tools.replay import replay_steps
    fixture = Path(__file__).parent / "fixtures" / "ftrace-kmem.txt"
    with pyalloc.Machine(mem="64M", backend="model") as a, pyalloc.Machine(mem="64M", backend="model") as b:
        steps = list(replay_steps(a, str(fixture), chunk=7))
        n = len(pyalloc.read_trace(str(fixture), skip_bad=True))
        assert steps[-1] == n and len(steps) == -(-n // 7)
        b.run(pyalloc.read_trace(str(fixture), skip_bad=True), errors="record")
        assert a.proc("slabinfo") == b.proc("slabinfo") and a.proc("buddyinfo") == b.proc("buddyinfo")


def test_bad_interval_is_an_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pyalloc", "serve", "--root", str(tmp_path), "--interval", "soon",
                        "--mem", "16M", "--backend", "model"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "bad interval 'soon'" in r.stderr
