"""Real /proc readers parse pyalloc's text, as they would on a real machine.

* procps ``free`` and ``vmstat -s`` read fixed paths (/proc/meminfo,
  /proc/vmstat): the test bind-mounts our text over them inside a private mount
  namespace (``unshare --mount --propagation private``, which needs root).
* Prometheus node_exporter reads a whole procfs tree from ``--path.procfs``: the
  test lays our files out in a temporary directory, scrapes /metrics once and
  compares the numbers.

``.ci/install-tools.sh`` installs the tools; a test skips, naming the reason,
only where a tool is missing or the sandbox forbids the mount.
The text comes from ``procfs.render`` on synthetic snapshots (test_procfs's
``example_snapshot``) and on the snapshots of real Machines, on both backends,
after the built-in workload has fragmented them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import pyalloc
from pyalloc.text import procfs

try:                                    # tests/ on sys.path (pytest's default rootdir import)
    from test_procfs import example_snapshot
except ImportError:                     # tests/ as a package
    from tests.test_procfs import example_snapshot

def machine_snapshot(backend: str, mem: str, cpus: int) -> dict:
    import pyalloc
    from pyalloc.tools import workload
    if backend == "c":
        pytest.importorskip("pyalloc._core")
    with pyalloc.Machine(mem=mem, cpus=cpus, backend=backend) as m:
        workload.run_pages(m, fraction=0.1)
        return m.snapshot()


def pressure_snapshot(backend: str) -> dict:
    """A machine after reclaim, swap and an OOM kill: page cache, dirty pages, used swap."""
    import pyalloc
    from pyalloc.tools import workload
    if backend == "c":
        pytest.importorskip("pyalloc._core")
    with pyalloc.Machine(mem="64M", swap="32M", backend=backend) as m:
        workload.run_pressure(m)
        m.read_file("/var/cache/after", 2000)
        m.write_file("/var/log/after", 500)
        return m.snapshot()


SNAPSHOTS = {
    "pressure-c-64M": lambda: pressure_snapshot("c"),
    "pressure-model-64M": lambda: pressure_snapshot("model"),
    "1G-2cpu": lambda: example_snapshot(),
    "8G-4cpu": lambda: example_snapshot(1 << 21, 4, reserved=300, boost=64, highatomic=3),
    "machine-c-6G": lambda: machine_snapshot("c", "6G", 2),
    "machine-model-512M": lambda: machine_snapshot("model", "512M", 4),
}


@pytest.fixture(params=sorted(SNAPSHOTS))
def snap(request):
    return SNAPSHOTS[request.param]()


def _meminfo_kb(snap) -> dict[str, int]:
    return procfs.meminfo_values(snap)


# --------------------------------------------------------------------------
# procps, through a bind mount in a private mount namespace

def _require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (run .ci/install-tools.sh)")
    return path


_unshare_ok: tuple[bool, str] | None = None


def _require_unshare() -> None:
    """Skip unless this process may create a mount namespace and bind-mount there."""
    global _unshare_ok
    if _unshare_ok is None:
        if shutil.which("unshare") is None or shutil.which("mount") is None:
            _unshare_ok = (False, "unshare or mount (util-linux) is not installed")
        else:
            probe = subprocess.run(
                ["unshare", "--mount", "--propagation", "private",
                 "sh", "-c", "mount --bind /proc/meminfo /proc/meminfo"],
                capture_output=True, text=True, timeout=30)
            if probe.returncode == 0:
                _unshare_ok = (True, "")
            else:
                _unshare_ok = (False, "cannot bind-mount over /proc in a private mount namespace "
                               f"(needs root or CAP_SYS_ADMIN): {probe.stderr.strip()}")
    if not _unshare_ok[0]:
        pytest.skip(_unshare_ok[1])


def _run_with_proc_files(files: dict[str, str], argv: list[str], tmp_path: Path) -> str:
    """Run argv with our text bind-mounted over /proc/<name> for each name in files."""
    mounts = []
    for name, text in files.items():
        path = tmp_path / name
        path.write_text(text)
        mounts.append(f"mount --bind {path} /proc/{name}")
    script = " && ".join(mounts + ['exec "$@"'])
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv],
        capture_output=True, text=True, timeout=60, env={**os.environ, "LC_ALL": "C"})
    assert result.returncode == 0, f"{argv} failed: {result.stderr}"
    return result.stdout


def test_free_reads_our_meminfo(snap, tmp_path):
    free = _require_tool("free")
    _require_unshare()
    out = _run_with_proc_files({"meminfo": procfs.render("meminfo", snap)}, [free, "-k", "-w"],
                               tmp_path)
    header, mem, swap = out.splitlines()[:3]
    assert header.split() == ["total", "used", "free", "shared", "buffers", "cache", "available"]
    fields = mem.split()
    assert fields[0] == "Mem:"
    total, used, free_kb, shared, buffers, cache, available = map(int, fields[1:])
    m = _meminfo_kb(snap)
    assert total == m["MemTotal"]
    assert free_kb == m["MemFree"]
    assert available == m["MemAvailable"]
    # procps counts reclaimable slab as cache.  "used" is total - available
    # since procps-ng 4.0.1, total - free - buffers - cache before.
    assert cache == m["Cached"] + m["SReclaimable"]
    assert used in (total - available, total - free_kb - buffers - cache)
    assert swap.split() == ["Swap:", str(m["SwapTotal"]), str(m["SwapTotal"] - m["SwapFree"]),
                            str(m["SwapFree"])]


def test_vmstat_s_reads_our_files(snap, tmp_path):
    vmstat = _require_tool("vmstat")
    _require_unshare()
    files = {"meminfo": procfs.render("meminfo", snap), "vmstat": procfs.render("vmstat", snap)}
    out = _run_with_proc_files(files, [vmstat, "-s", "-S", "K"], tmp_path)
    stats = {}
    for line in out.splitlines():
        m = re.fullmatch(r"\s*(\d+)\s+(.*)", line)
        assert m, line
        stats[m[2]] = int(m[1])
    mem = _meminfo_kb(snap)
    assert stats["K total memory"] == mem["MemTotal"]
    assert stats["K free memory"] == mem["MemFree"]
    assert stats["K total swap"] == mem["SwapTotal"]
    assert stats["K free swap"] == mem["SwapFree"]
    # From our /proc/vmstat, not the host's: pgpgin/pgpgout (1 KiB units, printed as
    # "K paged in"; older procps says "pages"), pswpin/pswpout in pages.
    vm = dict(line.split() for line in files["vmstat"].splitlines())
    paging = {re.sub(r"^(K|pages) ", "", k): v for k, v in stats.items()
              if re.fullmatch(r"(K|pages) (paged|swapped) (in|out)", k)}
    assert paging == {"paged in": int(vm["pgpgin"]), "paged out": int(vm["pgpgout"]),
                      "swapped in": int(vm["pswpin"]), "swapped out": int(vm["pswpout"])}, paging


def test_bind_mount_really_replaces_the_file(tmp_path):
    """The procps tests only mean something if the mount hides the host's file."""
    _require_unshare()
    cat = _require_tool("cat")
    out = _run_with_proc_files({"meminfo": "MemTotal:             4 kB\n"}, [cat, "/proc/meminfo"],
                               tmp_path)
    assert out == "MemTotal:             4 kB\n"


# --------------------------------------------------------------------------
# Prometheus node_exporter over a procfs tree in a temporary directory

NODE_EXPORTER = "prometheus-node-exporter"
COLLECTORS = ("buddyinfo", "zoneinfo", "meminfo", "vmstat")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _parse_metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def _scrape_node_exporter(procdir: Path, tmp_path: Path, collectors=COLLECTORS) -> dict[str, float]:
    binary = shutil.which(NODE_EXPORTER) or (
        "/usr/bin/" + NODE_EXPORTER if os.access("/usr/bin/" + NODE_EXPORTER, os.X_OK) else None)
    if binary is None:
        pytest.skip(f"{NODE_EXPORTER} is not installed (Debian package prometheus-node-exporter; "
                    "run .ci/install-tools.sh)")
    last_error = None
    for _attempt in range(3):                      # a new port if another process took ours
        port = _free_port()
        log = open(tmp_path / f"node_exporter.{port}.log", "w")
        proc = subprocess.Popen(
            [binary, f"--path.procfs={procdir}", f"--path.sysfs={tmp_path / 'sys'}",
             "--collector.disable-defaults",
             *(f"--collector.{c}" for c in collectors),
             # Export the vmstat counters pyalloc fills in, not only the default subset.
             "--collector.vmstat.fields=^(nr_free_pages|pgfree|pgalloc_.*|numa_hit|oom_kill|pswp.*|pgpg.*)$",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                        return _parse_metrics(r.read().decode())
                except (urllib.error.URLError, ConnectionError, OSError) as e:
                    last_error = e
                    time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        last_error = (tmp_path / f"node_exporter.{port}.log").read_text()[-2000:] or last_error
    pytest.fail(f"node_exporter did not serve /metrics: {last_error}")


def test_node_exporter_parses_our_procfs(snap, tmp_path):
    procdir = tmp_path / "proc"
    procdir.mkdir()
    for name in COLLECTORS:
        (procdir / name).write_text(procfs.render(name, snap))
    metrics = _scrape_node_exporter(procdir, tmp_path)

    for collector in COLLECTORS:
        assert metrics.get(f'node_scrape_collector_success{{collector="{collector}"}}') == 1, collector

    mem = procfs.meminfo_values(snap)
    assert metrics["node_memory_MemTotal_bytes"] == mem["MemTotal"] * 1024
    assert metrics["node_memory_MemFree_bytes"] == mem["MemFree"] * 1024
    assert metrics["node_memory_MemAvailable_bytes"] == mem["MemAvailable"] * 1024
    assert metrics["node_memory_Slab_bytes"] == mem["Slab"] * 1024
    assert metrics["node_memory_HugePages_Total"] == 0

    populated = [z for z in snap["zones"] if z["present"]]
    for zone in populated:
        for order in (0, 10):
            key = f'node_buddyinfo_blocks{{node="0",size="{order}",zone="{zone["name"]}"}}'
            assert metrics[key] == sum(zone["free_area"][order]), key
        labels = f'{{node="0",zone="{zone["name"]}"}}'
        assert metrics["node_zoneinfo_nr_free_pages" + labels] == zone["nr_free_pages"]
        assert metrics["node_zoneinfo_managed_pages" + labels] == zone["managed"]
        assert metrics["node_zoneinfo_min_pages" + labels] == zone["wmark"][0] + zone["boost"]
        assert metrics["node_zoneinfo_high_pages" + labels] == zone["wmark"][2] + zone["boost"]
        assert metrics["node_zoneinfo_numa_hit_total" + labels] == zone["numa_hit"]
        for i, reserve in enumerate(zone["lowmem_reserve"]):
            assert metrics[f"node_zoneinfo_protection_{i}" + labels] == reserve
    # Buddyinfo has no line for an empty zone.
    assert not any(k.startswith("node_buddyinfo_blocks") and 'zone="Movable"' in k for k in metrics)

    vm = procfs.vmstat_values(snap)
    assert metrics["node_vmstat_pgfree"] == vm["pgfree"]
    assert metrics["node_vmstat_nr_free_pages"] == vm["nr_free_pages"]
    assert metrics["node_vmstat_pgalloc_dma32"] == vm["pgalloc_dma32"]
    assert metrics["node_vmstat_oom_kill"] == vm["oom_kill"]
    assert metrics["node_vmstat_pswpout"] == vm["pswpout"]
    assert metrics["node_vmstat_pgpgout"] == vm["pgpgout"]
    assert metrics["node_memory_Cached_bytes"] == mem["Cached"] * 1024
    assert metrics["node_memory_SwapFree_bytes"] == mem["SwapFree"] * 1024
    assert metrics["node_memory_Dirty_bytes"] == mem["Dirty"] * 1024


# --------------------------------------------------------------------------
# procps slabtop over our /proc/slabinfo

# kmalloc caches of a 2-CPU 6.18 boot: (size, objects per slab, pages per slab).
KMALLOC_GEOMETRY = ((8, 512, 1), (16, 256, 1), (32, 128, 1), (64, 64, 1), (96, 42, 1),
                    (128, 32, 1), (192, 21, 1), (256, 16, 1), (512, 16, 2), (1024, 16, 4),
                    (2048, 16, 8), (4096, 8, 8), (8192, 4, 8))


def _kmalloc_name(prefix: str, size: int) -> str:
    return f"{prefix}{size // 1024}k" if size >= 1024 else f"{prefix}{size}"


def slab_snapshot() -> dict:
    """example_snapshot() plus slab_caches: a few named caches and the 39 kmalloc
    rows (normal, reclaimable, cgroup; 13 sizes each), newest first."""
    caches = []
    n = 0
    for prefix in ("kmalloc-", "kmalloc-rcl-", "kmalloc-cg-"):       # creation order
        for size, per_slab, pages in KMALLOC_GEOMETRY:
            n += 1
            slabs = (n * 7) % 23 + (1 if prefix == "kmalloc-" else 0)
            total = slabs * per_slab
            active = total - (n % per_slab if slabs else 0)
            caches.append({"name": _kmalloc_name(prefix, size), "active_objs": active,
                           "num_objs": total, "objsize": size, "objperslab": per_slab,
                           "pagesperslab": pages, "active_slabs": slabs, "num_slabs": slabs})
    caches += [
        {"name": "task_struct", "active_objs": 310, "num_objs": 336, "objsize": 9984,
         "objperslab": 3, "pagesperslab": 8, "active_slabs": 112, "num_slabs": 112},
        {"name": "pyalloc_test_cache_long_name", "active_objs": 1000, "num_objs": 1024,
         "objsize": 200, "objperslab": 20, "pagesperslab": 1, "active_slabs": 52, "num_slabs": 52},
        {"name": "empty_cache", "active_objs": 0, "num_objs": 0, "objsize": 4096,
         "objperslab": 8, "pagesperslab": 8, "active_slabs": 0, "num_slabs": 0},
    ]
    snap = example_snapshot()
    snap["slab_caches"] = caches[::-1]
    return snap


SLABINFO_FIELDS = ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab")


def parse_slabinfo(text: str) -> list[dict]:
    """The rows of a /proc/slabinfo text (version 2.1), in file order."""
    lines = text.splitlines()
    assert lines[0] == "slabinfo - version: 2.1", lines[0]
    assert lines[1].startswith("# name "), lines[1]
    rows = []
    for line in lines[2:]:
        f = line.split()
        assert len(f) == 16 and f[6] == ":" and f[7] == "tunables" and f[11:13] == [":", "slabdata"], line
        row = {"name": f[0], **dict(zip(SLABINFO_FIELDS, map(int, f[1:6])))}
        row["active_slabs"], row["num_slabs"] = int(f[13]), int(f[14])
        rows.append(row)
    return rows


def test_slabtop_reads_our_slabinfo(tmp_path):
    slabtop = _require_tool("slabtop")
    _require_unshare()
    snap = slab_snapshot()
    caches = {c["name"]: c for c in snap["slab_caches"]}
    assert len([n for n in caches if "kmalloc" in n]) == 39
    text = procfs.render("slabinfo", snap)
    assert parse_slabinfo(text) == snap["slab_caches"]
    _check_slabtop(slabtop, text, caches, tmp_path)


# A small slab workload: (cache name, object size) created, then kmalloc sizes that
# land in several size classes (96 and 192 included, 3000 in kmalloc-4k, 5000 in 8k).
WORKLOAD_CACHES = (("pyalloc_test_inode", 600), ("pyalloc_test_dentry", 192), ("pyalloc_tiny", 24))
WORKLOAD_KMALLOC_SIZES = (8, 20, 64, 72, 100, 128, 150, 256, 500, 1000, 2048, 3000, 5000)


def machine_slabinfo(backend: str) -> tuple[str, dict, list]:
    """/proc/slabinfo of a 1 GiB machine after the workload, its caches' live counts and
    the machine's own slabinfo rows (Machine.slab_snapshot)."""
    import pyalloc
    with pyalloc.Machine(mem="1G", cpus=2, backend=backend) as m:
        caches = [m.kmem_cache_create(name, size) for name, size in WORKLOAD_CACHES]
        objs = []
        for i in range(300):                                   # kmalloc, several sizes
            objs.append((None, m.kmalloc(WORKLOAD_KMALLOC_SIZES[i % len(WORKLOAD_KMALLOC_SIZES)],
                                         "GFP_KERNEL")))
        for i in range(150):                                   # the named caches
            cache = caches[i % len(caches)]
            objs.append((cache, m.kmem_cache_alloc(cache, "GFP_KERNEL")))
        with m.on_cpu(1):                                      # the other cpu's slabs too
            for i in range(40):
                objs.append((None, m.kmalloc(WORKLOAD_KMALLOC_SIZES[i % 5], "GFP_KERNEL")))
        assert all(isinstance(addr, int) for _, addr in objs)
        for i, (cache, addr) in enumerate(objs):
            if i % 4 == 1 or i % 7 == 0:            # every cache keeps some
                if cache is None:
                    m.kfree(addr)
                else:
                    m.kmem_cache_free(cache, addr)
        m.check()
        live = {c.name: m._core.cache_info(c._id)["live"] for c in caches}
        return m.proc("slabinfo"), live, m.slab_snapshot()


def test_slabtop_reads_machine_slabinfo(backend, tmp_path):
    """slabtop over the slabinfo of a real Machine after a small workload, on each backend."""
    slabtop = _require_tool("slabtop")
    _require_unshare()
    text, live, snapshot_rows = machine_slabinfo(backend)
    rows = parse_slabinfo(text)
    assert rows == snapshot_rows                                        # the text is the machine's
    caches = {c["name"]: c for c in rows}
    assert len(caches) == len(rows), "a cache name twice in slabinfo"
    assert len([n for n in caches if "kmalloc-" in n]) == 52           # 4 families x 13 sizes
    for name, size in WORKLOAD_CACHES:                                  # the workload is visible
        c = caches[name]
        assert 0 < live[name] <= c["active_objs"] <= c["num_objs"], c
        assert c["num_slabs"] > 0 and c["num_objs"] == c["num_slabs"] * c["objperslab"], c
    for size in (8, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192):
        c = caches[_kmalloc_name("kmalloc-", size)]
        assert c["num_slabs"] > 0 and c["active_objs"] > 0, c
    assert caches["kmalloc-cg-64"]["num_objs"] == 0                    # untouched families
    _check_slabtop(slabtop, text, caches, tmp_path)


def _check_slabtop(slabtop: str, text: str, caches: dict, tmp_path) -> None:
    """Run slabtop --once over text and compare its summary and rows with caches."""
    out = _run_with_proc_files({"slabinfo": text}, [slabtop, "--once", "--sort=n"], tmp_path)
    lines = out.splitlines()

    summary = {}
    for line in lines:
        m = re.fullmatch(r"\s*(.+?)\s*:\s*(.+)", line)
        if m and "/" in m[1]:
            summary[m[1]] = m[2]
    objs = sum(c["num_objs"] for c in caches.values())
    active = sum(c["active_objs"] for c in caches.values())
    assert summary["Active / Total Objects (% used)"].startswith(f"{active} / {objs} (")
    slabs = sum(c["num_slabs"] for c in caches.values())
    assert summary["Active / Total Slabs (% used)"].startswith(
        f"{sum(c['active_slabs'] for c in caches.values())} / {slabs} (")
    active_caches = sum(1 for c in caches.values() if c["active_objs"])
    assert summary["Active / Total Caches (% used)"].startswith(f"{active_caches} / {len(caches)} (")
    size = sum(c["num_objs"] * c["objsize"] for c in caches.values()) / 1024
    active_size = sum(c["active_objs"] * c["objsize"] for c in caches.values()) / 1024
    assert summary["Active / Total Size (% used)"].startswith(f"{active_size:.2f}K / {size:.2f}K (")

    header = next(i for i, l in enumerate(lines) if l.split()[:2] == ["OBJS", "ACTIVE"])
    assert lines[header].split() == ["OBJS", "ACTIVE", "USE", "OBJ", "SIZE", "SLABS", "OBJ/SLAB",
                                     "CACHE", "SIZE", "NAME"]
    rows = {}
    for line in lines[header + 1:]:
        if not line.strip():
            continue
        f = line.split()
        assert len(f) == 8, line
        rows[f[7]] = f
    assert set(rows) == set(caches)                           # every cache, nothing else
    assert list(rows) == sorted(rows)                         # --sort=n: by name
    for name, c in caches.items():
        f = rows[name]
        assert int(f[0]) == c["num_objs"], f
        assert int(f[1]) == c["active_objs"], f
        use = c["active_objs"] * 100 // c["num_objs"] if c["num_objs"] else 0
        assert f[2] == f"{use}%", f
        assert f[3] == "%.2fK" % (c["objsize"] / 1024), f
        assert int(f[4]) == c["num_slabs"], f
        assert int(f[5]) == c["objperslab"], f
        assert f[6] == "%dK" % (c["num_slabs"] * c["pagesperslab"] * 4), f


def test_node_exporter_pressure_collector(backend, tmp_path):
    """node_exporter's pressure collector reads cpu, io and memory; it fails when one is missing."""
    with pyalloc.Machine(mem="64M", backend=backend, swap="16M") as m:
        pid = m.spawn("hog")
        m.touch(pid, 20000)                 # more than memory: reclaim stalls, memory pressure
        texts = {name: m.proc(f"pressure/{name}") for name in ("cpu", "io", "memory")}
    (tmp_path / "proc" / "pressure").mkdir(parents=True)
    for name, text in texts.items():
        (tmp_path / "proc" / "pressure" / name).write_text(text)
    metrics = _scrape_node_exporter(tmp_path / "proc", tmp_path, collectors=("pressure",))
    assert metrics.get('node_scrape_collector_success{collector="pressure"}') == 1
    some_total = int(texts["memory"].split("total=")[1].split()[0])
    full_total = int(texts["memory"].split("total=")[2].split()[0])
    assert some_total > 0
    assert metrics["node_pressure_memory_waiting_seconds_total"] == pytest.approx(some_total / 1e6)
    assert metrics["node_pressure_memory_stalled_seconds_total"] == pytest.approx(full_total / 1e6)
    assert metrics["node_pressure_cpu_waiting_seconds_total"] == 0
    assert metrics["node_pressure_io_stalled_seconds_total"] == 0
