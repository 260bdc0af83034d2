"""Real monitoring tools read the tree ``pyalloc serve`` and ``m.export`` keep current.

* node_exporter (``--path.procfs DIR/proc``) scraped twice while ``pyalloc serve``
  runs: every collector succeeds, and the values move between the scrapes;
* psutil with ``PROCFS_PATH``: virtual_memory() and swap_memory() equal the exported meminfo;
* PCP's Linux PMDA with ``LINUX_STATSPATH`` (pminfo in a local context, no pmcd needed);
* procps ``free`` and ``slabtop`` with the exported files bind-mounted over /proc.

Each test skips, naming the reason, only where its tool is missing or cannot run here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pyalloc
from pyalloc.tools import workload
from pyalloc._testing import c_core_available

try:
    from test_clients import (NODE_EXPORTER, _check_slabtop, _require_tool, _require_unshare,
                              _scrape_node_exporter, parse_slabinfo)
except ImportError:
    from tests.test_clients import (NODE_EXPORTER, _check_slabtop, _require_tool, _require_unshare,
                                    _scrape_node_exporter, parse_slabinfo)


def meminfo_kb(path: Path) -> dict:
    return {line.split(":")[0]: int(line.split()[1]) for line in path.read_text().splitlines()}


@pytest.fixture
def served(tmp_path):
    """A running `pyalloc serve` exporting under tmp_path/root; stopped with SIGTERM afterwards."""
    root = tmp_path / "root"
    backend = "c" if c_core_available() else "model"
    proc = subprocess.Popen([sys.executable, "-m", "pyalloc", "serve", "--root", str(root), "--interval", "100ms",
                             "--mem", "256M", "--workload", "churn", "--backend", backend],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (root / "proc" / "zoneinfo").exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "serve never exported"
            time.sleep(0.05)
        yield root
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert proc.returncode == 0, err


@pytest.fixture
def exported(backend, tmp_path):
    """A still export of a machine that ran the demo workload."""
    with pyalloc.Machine(mem="512M", backend=backend, swap="64M") as m:
        workload.run_pages(m)
        workload.run_slab(m)
        return m.export(tmp_path / "still")


def test_node_exporter_sees_the_values_move(served, tmp_path):
    if not (shutil.which(NODE_EXPORTER) or os.access("/usr/bin/" + NODE_EXPORTER, os.X_OK)):
        pytest.skip(f"{NODE_EXPORTER} is not installed (run .ci/install-tools.sh)")
    moving = ["node_memory_MemFree_bytes", "node_vmstat_pgfree",
              'node_zoneinfo_nr_free_pages{node="0",zone="DMA32"}']
    first = _scrape_node_exporter(served / "proc", tmp_path)
    deadline = time.monotonic() + 60          # a loaded host may run few ticks a second
    while True:
        time.sleep(1.0)
        second = _scrape_node_exporter(served / "proc", tmp_path)
        if all(first[k] != second[k] for k in moving) or time.monotonic() > deadline:
            break
    for scrape in (first, second):
        for collector in ("buddyinfo", "zoneinfo", "meminfo", "vmstat"):
            assert scrape.get(f'node_scrape_collector_success{{collector="{collector}"}}') == 1, collector
        assert scrape["node_memory_MemTotal_bytes"] == 256 << 20
    assert first["node_memory_MemTotal_bytes"] == second["node_memory_MemTotal_bytes"]
    assert all(first[k] != second[k] for k in moving), {k: (first[k], second[k]) for k in moving}
    assert second["node_vmstat_pgfree"] > first["node_vmstat_pgfree"]        # a counter only grows
    blocks = [k for k in first if k.startswith("node_buddyinfo_blocks")]
    assert blocks and any(first[k] != second[k] for k in blocks)


def test_psutil_reads_the_export(exported):
    psutil = pytest.importorskip("psutil", reason="psutil is not installed (pip install psutil)")
    if not sys.platform.startswith("linux"):
        pytest.skip("psutil reads PROCFS_PATH on Linux only")
    mem = meminfo_kb(exported / "proc" / "meminfo")
    old = psutil.PROCFS_PATH
    psutil.PROCFS_PATH = str(exported / "proc")
    try:
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
    finally:
        psutil.PROCFS_PATH = old
    assert vm.total == mem["MemTotal"] * 1024
    assert vm.free == mem["MemFree"] * 1024
    assert vm.available == mem["MemAvailable"] * 1024
    assert vm.slab == mem["Slab"] * 1024
    assert sw.total == mem["SwapTotal"] * 1024 == 64 << 20
    assert sw.free == mem["SwapFree"] * 1024
    assert sw.sin == sw.sout == 0                         # from our /proc/vmstat, not the host's


PMNS_LINUX = Path("/var/lib/pcp/pmns/root_linux")


def test_pcp_linux_pmda_reads_the_export(exported):
    pminfo = shutil.which("pminfo")
    if pminfo is None:
        pytest.skip("PCP is not installed (Debian package pcp)")
    if not PMNS_LINUX.exists():
        pytest.skip(f"PCP's Linux PMNS {PMNS_LINUX} is missing")
    metrics = ("mem.physmem", "mem.util.free", "mem.util.slab", "mem.util.available", "mem.util.swapTotal")
    r = subprocess.run([pminfo, "-L", "-n", str(PMNS_LINUX), "-f", *metrics], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "LINUX_STATSPATH": str(exported)})
    if r.returncode != 0 or "value" not in r.stdout:
        pytest.skip(f"pmdalinux cannot run in a local context here: {r.stderr.strip()[:300]}")
    values, name = {}, None
    for line in r.stdout.splitlines():
        if line and not line.startswith(" "):
            name = line.strip()
        elif line.strip().startswith("value"):
            values[name] = int(line.split()[1])
    mem = meminfo_kb(exported / "proc" / "meminfo")
    assert values["mem.physmem"] == mem["MemTotal"] == 512 << 10
    assert values["mem.util.free"] == mem["MemFree"]
    assert values["mem.util.slab"] == mem["Slab"]
    assert values["mem.util.available"] == mem["MemAvailable"]
    assert values["mem.util.swapTotal"] == mem["SwapTotal"]


def test_free_and_slabtop_through_a_bind_mount(served, tmp_path):
    free = _require_tool("free")
    slabtop = _require_tool("slabtop")
    _require_unshare()
    # one version of each file, as a reader opening it at this moment gets it
    still = tmp_path / "still"
    still.mkdir()
    for name in ("meminfo", "slabinfo"):
        shutil.copyfile(served / "proc" / name, still / name)
    script = (f"mount --bind {still / 'meminfo'} /proc/meminfo && "
              f"exec {free} -k")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "LC_ALL": "C"})
    assert r.returncode == 0, r.stderr
    mem = meminfo_kb(still / "meminfo")
    fields = r.stdout.splitlines()[1].split()
    assert fields[0] == "Mem:" and int(fields[1]) == mem["MemTotal"] and int(fields[3]) == mem["MemFree"]
    text = (still / "slabinfo").read_text()
    _check_slabtop(slabtop, text, {c["name"]: c for c in parse_slabinfo(text)}, tmp_path)


def _readme_line(starts: str) -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith(starts)]
    assert len(lines) == 1, f"the README should show one recipe starting {starts!r}"
    return lines[0]


def test_psutil_recipe_as_the_readme_writes_it(exported):
    pytest.importorskip("psutil", reason="psutil is not installed (pip install psutil)")
    if not sys.platform.startswith("linux"):
        pytest.skip("psutil reads PROCFS_PATH on Linux only")
    recipe = _readme_line("python -c 'import psutil")
    # the README's recipe reads the export under /tmp/pyalloc; this one is under tmp_path
    command = recipe.replace("/tmp/pyalloc", str(exported)).replace("python ", f"{sys.executable} ", 1)
    out = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    mem = meminfo_kb(exported / "proc" / "meminfo")
    assert f"total={mem['MemTotal'] * 1024}," in out.stdout, out.stdout
    assert f"free={mem['MemFree'] * 1024}," in out.stdout, out.stdout


def _free_twice_under_bind_mount(root: Path, tmp_path: Path, change) -> tuple[str, str]:
    """`free` in a mount namespace where /proc/meminfo is bound to root's, before and after
    change() runs outside it."""
    go, first, second = tmp_path / "go", tmp_path / "first", tmp_path / "second"
    script = (f"mount --bind {root}/proc/meminfo /proc/meminfo && free > {first} && "
              f"while [ ! -e {go} ]; do sleep 0.05; done; free > {second}")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not first.exists() or not first.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, "free did not run"
            time.sleep(0.05)
        change()
        go.touch()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    return first.read_text(), second.read_text()


@pytest.mark.parametrize("in_place", [False, True])
def test_single_file_bind_mount_sees_values_move_in_place(backend, tmp_path, in_place):
    _require_unshare()
    _require_tool("free")
    from pyalloc.tools.export import Exporter
    with pyalloc.Machine(mem="256M", backend=backend) as m:
        exporter = Exporter(tmp_path / "root", in_place=in_place)
        exporter.update(m)

        def change():
            for _ in range(4000):
                m.alloc_pages("GFP_KERNEL", 0)
            exporter.update(m)
        before, after = _free_twice_under_bind_mount(tmp_path / "root", tmp_path, change)
    # renaming a new file over the bound one leaves the mount on the old inode: frozen
    assert (before != after) is in_place, (before, after)
