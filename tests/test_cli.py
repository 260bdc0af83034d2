"""The pyalloc command line, on both backends."""

import subprocess
import sys

import pytest

from pyalloc import cli


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_demo_prints_three_views(backend, capsys):
    rc, out, _ = run(capsys, "demo", "--mem", "64M", "--backend", backend)
    assert rc == 0
    assert "$ cat /proc/buddyinfo\nNode 0, zone      DMA " in out
    assert "$ cat /proc/pagetypeinfo\nPage block order: 9\n" in out
    assert "\n$ cat /proc/meminfo\nMemTotal:          65536 kB\n" in out
    slab = out.split("$ cat /proc/slabinfo\n")[1].split("\n\n$ cat")[0]
    assert slab.startswith("slabinfo - version: 2.1\n")
    rows = {line.split()[0]: line.split() for line in slab.splitlines()[2:]}
    assert int(rows["task_struct"][2]) > 0 and int(rows["dentry"][1]) > 0
    vmi = out.split("$ cat /proc/vmallocinfo\n")[1].splitlines()
    assert vmi[0].startswith("0xffffc90000000000-0xffffc90000002000    8192 ")
    assert any(line.endswith(" vmap") for line in vmi) and any(" vpages " in line for line in vmi)
    # the workload fragments memory: low orders are populated after it
    buddy = out.split("$ cat /proc/buddyinfo\n")[1].split("\n")[1]
    assert sum(int(x) for x in buddy.split()[4:8]) > 0


def test_demo_is_the_same_on_both_backends(capsys):
    pytest.importorskip("pyalloc._core")
    outs = [run(capsys, "demo", "--mem", "32M", "--backend", b)[1].split("\n", 1)[1] for b in ("c", "model")]
    assert outs[0] == outs[1]


def test_proc_command(backend, capsys):
    rc, out, _ = run(capsys, "proc", "zoneinfo", "--mem", "16M", "--backend", backend, "--workload")
    assert rc == 0 and out.startswith("Node 0, zone      DMA\n  per-node stats\n")


def test_bad_size_is_a_clean_error(backend, capsys):
    rc, _, err = run(capsys, "demo", "--mem", "1.5G", "--backend", backend)
    assert rc == 2 and "cannot read size" in err


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "pyalloc", "proc", "buddyinfo", "--mem", "16M", "--backend", "model"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert r.stdout == "Node 0, zone      DMA      0      0      0      0      0      0      0      0      0      0      4 \n"


def test_demo_pressure(backend, capsys):
    rc, out, _ = run(capsys, "demo", "--pressure", "--mem", "64M", "--swap", "32M", "--backend", backend)
    assert rc == 0
    head = out.splitlines()[0]
    assert "1 OOM kill(s)" in head and "database bytes intact: True" in head
    assert "\n$ cat /proc/meminfo\nMemTotal:          65536 kB\n" in out
    assert "SwapTotal:         32768 kB" in out
    counters = dict(line.split() for line in out.split("/proc/vmstat\n")[1].split("\n\n")[0].splitlines())
    assert int(counters["pswpout"]) > 0 and int(counters["oom_kill"]) == 1 and int(counters["pgsteal_direct"]) > 0
    psi = out.split("$ cat /proc/pressure/memory\n")[1].splitlines()
    assert psi[0].startswith("some avg10=") and psi[1].startswith("full avg10=")
    assert "leaky invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP), order=0" in out
    assert "Out of memory: Killed process 102 (leaky)" in out


def test_demo_pressure_is_the_same_on_both_backends(capsys):
    pytest.importorskip("pyalloc._core")
    outs = [run(capsys, "demo", "--pressure", "--mem", "32M", "--backend", b)[1].split("\n", 1)[1]
            for b in ("c", "model")]
    assert outs[0] == outs[1]


def test_proc_pressure_memory(capsys):
    rc, out, _ = run(capsys, "proc", "pressure/memory", "--mem", "16M")
    assert rc == 0 and out == ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n")
