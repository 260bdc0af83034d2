"""m.export(dir): the tree a monitoring tool reads, each file replaced atomically."""

import os
import threading

import pyalloc
from pyalloc.tools import export, workload
from pyalloc.text import procfs


def test_tree_layout_and_contents(backend, tmp_path):
    with pyalloc.Machine(mem="128M", backend=backend) as m:
        workload.run_slab(m)
        root = m.export(tmp_path)
        assert root == tmp_path
        for name in procfs.RENDERERS:
            assert (tmp_path / "proc" / name).read_text() == m.proc(name)
        assert (tmp_path / "sys/kernel/debug/extfrag/unusable_index").read_text() == \
            m.debugfs("extfrag/unusable_index")
        assert (tmp_path / "sys/kernel/debug/extfrag/extfrag_index").read_text() == \
            m.debugfs("extfrag/extfrag_index")
        names = sorted(p.name for p in (tmp_path / "sys/kernel/slab").iterdir())
        assert names == sorted(r.split()[0] for r in m.proc("slabinfo").splitlines()[2:])
        assert (tmp_path / "sys/kernel/slab/dentry/objects").read_text() == m.sysfs("kernel/slab/dentry/objects")
        assert not [p for p in tmp_path.rglob(".*.tmp")]              # no temporary left behind


def test_destroyed_cache_directory_goes(machine, tmp_path):
    c = machine.kmem_cache_create("short_lived", 64)
    ex = export.Exporter(tmp_path)
    ex.update(machine)
    assert (tmp_path / "sys/kernel/slab/short_lived/objects").read_text() == "0\n"
    machine.kmem_cache_destroy(c)
    ex.update(machine)
    assert not (tmp_path / "sys/kernel/slab/short_lived").exists()


def test_only_changed_files_are_rewritten(machine, tmp_path):
    ex = export.Exporter(tmp_path)
    first = ex.update(machine)
    assert first == len(export.render_tree(machine))
    assert ex.update(machine) == 0                    # nothing moved, nothing written
    machine.kmalloc(100, "GFP_KERNEL")
    changed = ex.update(machine)
    assert 0 < changed < first
    assert (tmp_path / "proc/slabinfo").read_text() == machine.proc("slabinfo")


def test_a_reader_never_sees_half_a_file(machine, tmp_path):
    """A reader racing the exporter gets one whole version of slabinfo each time."""
    ex = export.Exporter(tmp_path)
    ex.update(machine)
    path = tmp_path / "proc/slabinfo"
    versions = {path.read_text()}
    stop = threading.Event()
    seen = []

    def reader():
        while not stop.is_set():
            seen.append(path.read_text())

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(60):
            machine.kmalloc(8 << (i % 10), "GFP_KERNEL")
            ex.update(machine)
            versions.add(machine.proc("slabinfo"))
    finally:
        stop.set()
        t.join()
    assert seen and set(seen) <= versions
    assert all(s.endswith("\n") and s.startswith("slabinfo - version: 2.1\n") for s in seen)


def test_write_atomic_replaces_by_rename(tmp_path, monkeypatch):
    target = tmp_path / "f"
    target.write_text("old")
    calls = []
    real = os.replace

    def spy(src, dst, **kw):
        calls.append((src, dst, sorted(kw)))
        return real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", spy)
    export.write_atomic(target, "new")
    export.write_atomic(target, "newer")
    assert target.read_text() == "newer"
    assert [c[1:] for c in calls] == [("f", ["dst_dir_fd", "src_dir_fd"])] * 2
    # temporary names cannot be predicted (not the pid), so a planted link cannot be waiting for one
    assert all(c[0].startswith(".f.") and c[0].endswith(".tmp") for c in calls)
    assert calls[0][0] != calls[1][0] and str(os.getpid()) not in calls[0][0]
    assert os.listdir(tmp_path) == ["f"]
