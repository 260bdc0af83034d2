"""Snapshots: m.save(path) / Machine.load(path), pickle and deepcopy, across backends; bad files."""

import copy
import pickle
import random
import struct
import zlib

import pytest

import pyalloc
from pyalloc.machine import snapshot
from pyalloc.tools import workload
from conftest import c_core_available

VIEWS = ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat", "slabinfo", "vmallocinfo",
         "pressure/memory")
BACKENDS = ["c", "model"]


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("raise", type(exc).__name__, str(exc))


def busy_machine(backend):
    """Pages, slab (with a debug cache), vmalloc, processes, dirty files, swap, OOM kill, dmesg."""
    m = pyalloc.Machine(mem="48M", cpus=3, swap="16M", backend=backend, slub_debug="FZPU,debugged")
    workload.run_pages(m, fraction=0.2, seed=5)
    workload.run_slab(m, objects=1500, seed=5)
    workload.run_vmalloc(m, seed=5)
    dbg = m.kmem_cache_create("debugged", 200, 0, "SLAB_HWCACHE_ALIGN")
    objs = [m.kmem_cache_alloc(dbg, "GFP_KERNEL") for _ in range(30)]
    for o in objs[::3]:
        m.kmem_cache_free(dbg, o)
    with m.on_cpu(2):
        kept = [m.kmalloc(96, "GFP_KERNEL") for _ in range(10)]
    db = m.spawn("postgres")
    m.touch(db, 6000)
    m.user_write(db, 12345, b"the database's bytes")
    m.write_file("/var/log/journal", 2000)
    m.file_write("/etc/motd", 100, b"hello from the disk")
    hog = m.spawn("hog")
    m.touch(hog, 14000)                 # into swap, and likely the OOM killer
    with pytest.raises(pyalloc.InvalidFree):
        m.kfree(pyalloc.PAGE_OFFSET + 5)    # a refused free: dmesg has its report
    return m, {"dbg": dbg, "objs": objs, "kept": kept, "db": db}


def continue_ops(m, state, seed):
    """The same deterministic stream after the save: every answer, then every view."""
    rnd = random.Random(seed)
    state = dict(state, objs=list(state["objs"]))
    dbg = m._caches[state["dbg"]._id]
    out = []
    for step in range(300):
        op = rnd.randrange(8)
        if op == 0:
            out.append(outcome(m.alloc_pages, "GFP_KERNEL", rnd.choice([0, 1, 3])))
        elif op == 1:
            out.append(outcome(m.kmalloc, rnd.choice([8, 100, 1000, 5000]), "GFP_KERNEL"))
        elif op == 2:
            out.append(outcome(m.kmem_cache_alloc, dbg, "GFP_KERNEL"))
        elif op == 3 and state["objs"]:
            out.append(outcome(m.kmem_cache_free, dbg, state["objs"].pop()))
        elif op == 4:
            out.append(outcome(m.touch, state["db"], rnd.choice([10, 500, 3000])))
            out.append(m.last_alloc)
        elif op == 5:
            out.append(outcome(m.user_read, state["db"], 12345, 20))
            out.append(outcome(m.file_read, "/etc/motd", 100, 19))
        elif op == 6:
            out.append(outcome(m.vmalloc, rnd.choice([4096, 20000]), "GFP_KERNEL", "t+0x1/0x2"))
        else:
            out.append(outcome(m.read_file, "/data/%d" % rnd.randrange(3), rnd.choice([10, 800])))
    out.append({v: m.proc(v) for v in VIEWS})
    out.append(m.dmesg())
    out.append(m.reclaim_counters())
    out.append(m.processes())
    m.check()
    return out


@pytest.mark.parametrize("to", BACKENDS)
def test_save_load_continue_on_either_backend(backend, to, tmp_path):
    if "c" in (backend, to) and not c_core_available():
        pytest.skip("the C core is not built")
    m, state = busy_machine(backend)
    path = tmp_path / "m.snap"
    info = m.save(path)
    assert info["pages"] > 0 and path.stat().st_size < 48 << 20
    loaded = pyalloc.Machine.load(path, backend=to)
    try:
        assert loaded.backend == to and (loaded.mem, loaded.cpus, loaded.swap) == (m.mem, m.cpus, m.swap)
        for v in VIEWS:
            assert loaded.proc(v) == m.proc(v), v
        assert loaded.dmesg() == m.dmesg()
        for x in (loaded, m):           # a read may swap the page in: both alike
            assert x.user_read(state["db"], 12345, 20) == b"the database's bytes"
        assert continue_ops(loaded, state, 9) == continue_ops(m, state, 9)
    finally:
        loaded.close()
        m.close()


def test_pickle_and_deepcopy_clone(backend):
    m, state = busy_machine(backend)
    try:
        for twin in (pickle.loads(pickle.dumps(m)), copy.deepcopy(m)):
            assert twin.backend == backend and twin._core is not m._core
            assert continue_ops(twin, state, 4) == continue_ops(copy.deepcopy(m), state, 4)
            twin.close()
        with pytest.raises(TypeError, match="cannot be copied"):
            copy.copy(m)
    finally:
        m.close()


def test_a_cache_object_finds_its_machine_again(backend, tmp_path):
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        c = m.kmem_cache_create("widget", 72)
        m.kmem_cache_alloc(c, "GFP_KERNEL")
        m.save(tmp_path / "w.snap")
    with pyalloc.Machine.load(tmp_path / "w.snap") as m2:
        from pyalloc import helpers
        c2 = helpers.find_slab_cache(m2, "widget")
        assert len(c2) == 1 and c2._machine is m2
        assert m2.kmem_cache_alloc(c2, "GFP_KERNEL") is not None


# -- bad files ---------------------------------------------------------------------------------

@pytest.fixture
def saved(backend, tmp_path):
    m, _ = busy_machine(backend)
    path = tmp_path / "good.snap"
    m.save(path)
    m.close()
    return path, path.read_bytes()


def _sections(data):
    """[(offset of the section header, tag, payload offset, length)]"""
    pos, out = 16, []
    while pos < len(data):
        tag, length, _ = struct.unpack_from("<4sQI", data, pos)
        out.append((pos, tag, pos + 16, length))
        pos += 16 + length
    return out


def test_truncated_files_are_refused(saved, tmp_path):
    path, data = saved
    cuts = sorted({0, 5, 15, 16, 20, 31, 32, len(data) // 3, len(data) // 2, len(data) - 17, len(data) - 1}
                  | {off for off, *_ in _sections(data)})
    for cut in cuts:
        bad = tmp_path / "cut.snap"
        bad.write_bytes(data[:cut])
        with pytest.raises(pyalloc.SnapshotError, match="short|cut|END"):
            pyalloc.Machine.load(bad)


def test_corrupted_files_are_refused(saved, tmp_path):
    path, data = saved
    rnd = random.Random(3)
    for off, tag, start, length in _sections(data):
        for _ in range(3):
            if not length:
                continue
            b = bytearray(data)
            b[start + rnd.randrange(length)] ^= 1 << rnd.randrange(8)
            bad = tmp_path / "flip.snap"
            bad.write_bytes(bytes(b))
            with pytest.raises(pyalloc.SnapshotError, match="damaged"):
                pyalloc.Machine.load(bad)
    for bad_bytes, msg in ((b"NOTASNAP" + data[8:], "not a pyalloc snapshot"),
                           (data[:8] + struct.pack("<I", snapshot.VERSION + 1) + data[12:],
                            f"version {snapshot.VERSION + 1} is newer"),
                           (data[:8] + struct.pack("<I", 1) + data[12:], "version 1 is no longer read.*pickle"),
                           (data + b"\0", "after the END")):
        bad = tmp_path / "bad.snap"
        bad.write_bytes(bad_bytes)
        with pytest.raises(pyalloc.SnapshotError, match=msg):
            pyalloc.Machine.load(bad)


def test_crafted_core_words_never_crash(saved, tmp_path, backend):
    """A core section with good checksums but hostile words: refused with SnapshotError, or
    (a harmless word such as a counter) loaded as a machine that passes check()."""
    path, data = saved
    off, tag, start, length = next(s for s in _sections(data) if s[1] == b"CORE")
    rnd = random.Random(11)
    refused = 0
    for trial in range(150):
        b = bytearray(data)
        word = rnd.randrange(min(length // 8, 8000))       # the structure: scalars, zones, lists, descriptors
        value = rnd.choice([0, 1, 2 ** 64 - 1, 2 ** 32, 2 ** 63, rnd.randrange(2 ** 64), rnd.randrange(5000)])
        struct.pack_into("<Q", b, start + 8 * word, value)
        struct.pack_into("<I", b, off + 12, zlib.crc32(bytes(b[start:start + length])))
        try:
            m = snapshot.read(bytes(b), backend)
        except pyalloc.SnapshotError:
            refused += 1
            continue
        for _ in range(200):            # and it runs: answers or exceptions, never a crash
            outcome(m.alloc_pages, "GFP_KERNEL", rnd.randrange(4))
            outcome(m.kmalloc, rnd.choice([64, 700]), "GFP_KERNEL")
        outcome(m.check)
        m.close()
    assert refused > 30


def test_a_failed_save_keeps_the_old_file(machine, tmp_path):
    path = tmp_path / "keep.snap"
    machine.save(path)
    before = path.read_bytes()
    machine.vmalloc(8192)
    core = machine._core

    def disk_full(*args):                       # the device fills up after the first chunk of memory
        yield next(iter(type(core).snapshot_pages(core, *args)))
        raise OSError(28, "No space left on device")

    core.snapshot_pages = disk_full
    try:
        with pytest.raises(OSError, match="No space"):
            machine.save(path)
    finally:
        del core.snapshot_pages
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.snap"]


def test_load_refuses_bad_arguments(saved, tmp_path):
    path, _ = saved
    with pytest.raises(pyalloc.InvalidArgument):
        pyalloc.Machine.load(path, backend="fortran")
    with pytest.raises(FileNotFoundError):
        pyalloc.Machine.load(tmp_path / "missing.snap")
    m = pyalloc.Machine(mem="16M", backend="model")
    m.close()
    with pytest.raises(pyalloc.MachineClosed):
        m.save(tmp_path / "closed.snap")


def test_a_process_with_no_pages_yet_survives_a_load(backend, tmp_path):
    """Regression (differential test): the C core's reverse map must exist for an mm that
    has no page at save time."""
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        pid = m.spawn("idle")
        m.save(tmp_path / "idle.snap")
    for to in BACKENDS:
        if to == "c" and not c_core_available():
            continue
        with pyalloc.Machine.load(tmp_path / "idle.snap", backend=to) as m2:
            assert m2.touch(pid, 100) == 100
            m2.check()


def test_a_machine_damaged_through_the_direct_map_loads_as_damaged(backend, tmp_path):
    """Scribbling on a page table through the direct map breaks check(); the snapshot keeps it so."""
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        addr = m.vmalloc(4096)
        pfn = m.vmalloc_to_page(addr)
        for pt in range(m.nr_pages):       # smash every page-table page (PA_KIND_PGTABLE)
            if m._core.page_state(pt)[3] == 5:
                m.memset(pyalloc.PAGE_OFFSET + pt * 4096, 0x22, 4096)
        before = outcome(m.check)
        assert before[0] == "raise" and before[1] == "InvariantBroken" and pfn is not None
        m.save(tmp_path / "bad.snap")
        with pyalloc.Machine.load(tmp_path / "bad.snap") as m2:
            assert outcome(m2.check) == before


def test_readme_snapshot_example_runs(tmp_path, monkeypatch, capsys):
    if not c_core_available():
        pytest.skip("the C core is not built")
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "m.save(" in b)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(block, "README.md", "exec"), ns)
    assert capsys.readouterr().out == "True True\nb'row 1'\n"
    assert ns["m"].reclaim_counters()["oom_kill"] >= 1
    ns["m"].close()
    ns["twin"].close()


def test_the_exhaustive_walk_finds_what_mincore_finds(backend):
    """On a host with swap the C core looks at every page instead of asking mincore(): same file."""
    import io
    m, _ = busy_machine(backend)
    try:
        fast, full = io.BytesIO(), io.BytesIO()
        snapshot.write(m, fast, exhaustive=False)
        snapshot.write(m, full, exhaustive=True)
        assert fast.getvalue() == full.getvalue()
    finally:
        m.close()
