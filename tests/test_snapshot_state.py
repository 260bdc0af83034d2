"""The Python-side state in a snapshot is data: no pickle, a fixed schema, every value checked.

A hostile PYST section (or an old version-1 file, whose state was a pickle) is refused with
the same SnapshotError on both backends and never runs anything; a good one comes back whole.
"""

import copy
import io
import json
import os
import pickle
import struct
import threading
import zlib

import pytest

import pyalloc
from pyalloc.machine import snapshot, snapshot_state
from conftest import c_core_available

BACKENDS = ["c", "model"]


def small_machine(backend):
    m = pyalloc.Machine(mem="16M", swap="4M", backend=backend, slub_debug="U")
    c = m.kmem_cache_create("widget", 72)
    m.kmem_cache_alloc(c, "GFP_KERNEL")
    m.kfree(m.kmalloc(100, "GFP_KERNEL"))
    area = m.vmalloc(3 * 4096, caller="probe_fn")
    m.vfree(m.vmalloc(4096))
    m.vmap([m.alloc_pages("GFP_KERNEL")])
    pid = m.spawn("db", oom_score_adj=-100)
    m.touch(pid, 40)
    m.file_write("/etc/motd", 0, b"hello")
    with pytest.raises(pyalloc.InvalidFree):
        m.kfree(pyalloc.PAGE_OFFSET + 5)
    return m, area


def with_pyst(data: bytes, pyst: bytes) -> bytes:
    """The snapshot *data* with its PYST payload replaced (checksum made good)."""
    out, pos = bytearray(data[:16]), 16
    while pos < len(data):
        tag, length, crc = snapshot._SECTION.unpack_from(data, pos)
        payload = data[pos + 16:pos + 16 + length]
        if tag == b"PYST":
            payload = pyst
        out += snapshot._SECTION.pack(tag, len(payload), zlib.crc32(payload)) + payload
        pos += 16 + length
    return bytes(out)


def verdict(data: bytes, backend: str):
    try:
        m = snapshot.read(data, backend)
    except pyalloc.SnapshotError as exc:
        return ("refused", str(exc))
    m.check()
    m.close()
    return ("loaded",)


@pytest.fixture(scope="module")
def saved():
    m, _ = small_machine("model")
    data = snapshot.to_bytes(m)
    m.close()
    return data


def test_state_comes_back_whole(backend):
    """Every attribute the shared layer keeps is either in the schema or rebuilt from INFO."""
    m, area = small_machine(backend)
    try:
        twin = snapshot.read(snapshot.to_bytes(m), backend)
        assert set(vars(twin)) == set(vars(m))
        assert snapshot_state.dump(twin) == snapshot_state.dump(m)
        assert twin.dmesg() == m.dmesg() and twin.proc("vmallocinfo") == m.proc("vmallocinfo")
        assert twin._debug_flags == m._debug_flags and twin._debug_names == m._debug_names
        assert list(twin._vmap.free_ranges()) == list(m._vmap.free_ranges())
        twin.vfree(area)                                 # the area and its pages are really its own
        with pytest.raises(pyalloc.DoubleFree):
            twin.vfree(area)
        twin.check()
        twin.close()
    finally:
        m.close()


def test_every_saved_attribute_is_in_the_schema():
    m, _ = small_machine("model")
    try:
        rebuilt = {"_core", "_lock", "_closed", "backend", "alloc_pages", "free_pages", "kmalloc", "kfree",
                   "kmem_cache_alloc", "kmem_cache_free", "mem", "nr_pages", "cpus", "swap", "slub_debug",
                   "slab_merge", "_debug_flags", "_debug_names",
                   "_oom_panicked"}     # lives within one call (the panic ended its dmesg): False on load
        assert set(vars(m)) == rebuilt | set(snapshot_state.SAVED)
    finally:
        m.close()


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch " + _Boom.target,))


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_a_pickle_in_a_snapshot_never_runs(saved, tmp_path, backend_name):
    if backend_name == "c" and not c_core_available():
        pytest.skip("the C core is not built")
    _Boom.target = str(tmp_path / "pwned")
    exploit = pickle.dumps({"x": _Boom()})
    for data in (with_pyst(saved, exploit),                                   # version 2 with a pickle
                 with_pyst(saved[:8] + struct.pack("<I", 1) + saved[12:], exploit)):   # an old version-1 file
        v = verdict(data, backend_name)
        assert v[0] == "refused"
        assert "not JSON" in v[1] or "version 1 is no longer read" in v[1]
    with pytest.raises(pyalloc.SnapshotError):        # the path pickle.loads(pickle.dumps(m)) takes
        snapshot._unpickle(with_pyst(saved, exploit), backend_name)
    assert not os.path.exists(_Boom.target)


def _mutants(saved):
    """(name, PYST bytes) of hostile states built from the good one."""
    good = json.loads(snapshot._read_sections(saved, "t")[b"PYST"][0])
    out = []

    def mut(name, fn):
        s = copy.deepcopy(good)
        fn(s)
        out.append((name, json.dumps(s).encode()))

    mut("unknown key", lambda s: s.update(__class__="os.system"))
    mut("missing key", lambda s: s.pop("procs"))
    mut("schema", lambda s: s.update(schema=99))
    mut("cache id not live", lambda s: s["caches"].append([4000, "ghost"]))
    mut("cache id huge", lambda s: s["caches"].__setitem__(0, [2 ** 70, "x"]))
    mut("cache dropped", lambda s: s["caches"].pop())
    mut("cache name type", lambda s: s["caches"][0].__setitem__(1, {"a": 1}))
    mut("caller repeated", lambda s: s.update(callers=["a", "a"]))
    mut("log too big", lambda s: s["log"].extend([["", "x" * 4000]] * 40))
    mut("bool as int", lambda s: s.update(track_callers=1))
    mut("pid range", lambda s: s["procs"][0].__setitem__(0, -5))
    mut("pid past next_pid", lambda s: s.update(next_pid=100))
    mut("mm shared", lambda s: s["files"][0].__setitem__(1, s["procs"][0][2]))
    mut("mm not live", lambda s: s["procs"][0].__setitem__(2, 77))
    mut("mm of a file as a process", lambda s: s["procs"][0].__setitem__(2, s["files"][0][1]))
    mut("proc dropped", lambda s: s.update(procs=[]))
    mut("oom_score_adj", lambda s: s["procs"][0].__setitem__(3, 5000))
    mut("area not busy", lambda s: s["vm_areas"][0].__setitem__(0, s["vm_areas"][0][0] + 4096))
    mut("area pfn outside", lambda s: s["vm_areas"][0][3].__setitem__(0, 1 << 40))
    mut("area pfn not vmalloc", lambda s: s["vm_areas"][0][3].__setitem__(0, 0))
    mut("area pfn twice", lambda s: s["vm_areas"][0][3].__setitem__(1, s["vm_areas"][0][3][0]))
    mut("area float size", lambda s: s["vm_areas"][0].__setitem__(1, 4096.0))
    mut("busy overlap", lambda s: s["vmap_busy"].append(list(s["vmap_busy"][0])))
    mut("busy unaligned", lambda s: s["vmap_busy"][0].__setitem__(1, s["vmap_busy"][0][1] + 1))
    mut("array owner", lambda s: s.update(array_owner=[]))
    mut("vfreed flood", lambda s: s.update(vfreed=[[0xffffc90000000000 + 4096 * i, "vfree"] for i in range(70000)]))
    out.append(("deep nesting", b'{"schema":1,"caches":' + b"[" * 100000 + b"]" * 100000 + b"}"))
    out.append(("huge int", b'{"schema":1,"caches":[[' + b"9" * 5000 + b',"x"]]}'))
    out.append(("not utf-8", b'{"schema":1,"comm":"\xff"}'))
    out.append(("not an object", b"[1,2,3]"))
    return out


def test_hostile_state_is_refused_alike_on_both_backends(saved):
    if not c_core_available():
        pytest.skip("the C core is not built")
    for name, pyst in _mutants(saved):
        verdicts = [verdict(with_pyst(saved, pyst), b) for b in BACKENDS]
        assert verdicts[0] == verdicts[1], name
        assert verdicts[0][0] == "refused" and "bad Python-side state" in verdicts[0][1], (name, verdicts[0])


def test_the_good_state_still_loads(saved, backend):
    assert verdict(saved, backend) == ("loaded",)


def test_a_section_longer_than_the_file_allocates_nothing(saved, backend):
    """A 32-byte file announcing a 4 GiB section is refused before anything is allocated."""
    import tracemalloc
    head = saved[:16] + snapshot._SECTION.pack(b"INFO", 1 << 32, 0)
    tracemalloc.start()
    try:
        with pytest.raises(pyalloc.SnapshotError, match="announces|cut short"):
            snapshot.read(head, backend)
        for tag in (b"CORE", b"PYST"):                      # and behind a good INFO, from a pipe
            info_len = snapshot._SECTION.unpack_from(saved, 16)[1]
            lie = saved[:32 + info_len] + snapshot._SECTION.pack(tag, 1 << 32, 0) + b"x" * 100
            r, w = os.pipe()
            os.write(w, lie)
            os.close(w)
            with os.fdopen(r, "rb", buffering=0) as f, pytest.raises(pyalloc.SnapshotError, match="cut short|where"):
                snapshot.read_file(f, backend)
        assert tracemalloc.get_traced_memory()[1] < 80 << 20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "save"])
def test_copies_taken_while_other_threads_allocate_load(backend, how, tmp_path):
    m = pyalloc.Machine(mem="32M", backend=backend)
    stop = threading.Event()
    errors = []

    def churn(seed):
        cache = m.kmem_cache_create(f"churn{seed}", 64 + seed)
        held = []
        try:
            while not stop.is_set():
                held.append(m.kmem_cache_alloc(cache, "GFP_KERNEL"))
                held.append(m.kmalloc(200, "GFP_KERNEL"))
                m.vfree(m.vmalloc(8192))
                if len(held) > 200:
                    m.kfree(held.pop(1))
                    m.kmem_cache_free(cache, held.pop(0))
        except Exception as exc:            # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(6):
            if how == "pickle":
                twin = pickle.loads(pickle.dumps(m))
            elif how == "deepcopy":
                twin = copy.deepcopy(m)
            else:
                m.save(tmp_path / "t.snap")
                twin = pyalloc.Machine.load(tmp_path / "t.snap")
            twin.check()
            twin.close()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    m.check()
    m.close()
