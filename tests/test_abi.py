"""pyalloc/_abi.py is the one home of what the C core and the model share.

These tests hold the generated header, the compiled core, the stale-build
check, /proc and the snapshot's counter blocks to that one table.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyalloc
from pyalloc import _abi
from pyalloc.machine import snapshot
from pyalloc.model.snapshot import EMPTY_COMPACTION, EMPTY_MLOCK, EMPTY_SLAB_RANDOM, EMPTY_SYSCTL, EMPTY_WRITEBACK, MACHINE_SCALARS, V2_NR_COSTS, V2_NR_CTRS, V3_MACHINE_WORDS, _ZONE_WORDS
from pyalloc.text import procfs
from conftest import c_core_available

ROOT = Path(__file__).resolve().parent.parent
needs_c = pytest.mark.skipif(not c_core_available(), reason="the C core is not built")
BACKENDS = ["model", pytest.param("c", marks=needs_c)]


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


# -- C and Python cannot drift -----------------------------------------------------------------

@needs_c
def test_every_shared_constant_is_the_compiled_cores():
    from pyalloc._core import lib
    names = [n for _, _, group in _abi.C_ENUMS for n in group] + list(_abi.C_DEFINES)
    assert len(names) > 100
    for name in names:
        assert getattr(lib, "PA_" + name) == getattr(_abi, name), name
    for i, name in enumerate(_abi.COUNTERS):
        assert getattr(lib, "PA_CTR_" + name.upper()) == i, name
    for i, name in enumerate(_abi.COSTS):
        assert getattr(lib, "PA_COST_" + name.upper()) == i, name
    assert (lib.PA_NR_CTRS, lib.PA_NR_COSTS) == (_abi.NR_CTRS, _abi.NR_COSTS)


@needs_c
def test_the_header_on_disk_is_the_one_abi_makes():
    text = (ROOT / "csrc" / "pa_abi_gen.h").read_text()
    assert text == _abi.render_header()
    assert "generated from pyalloc/_abi.py by pyalloc/_build.py — do not edit" in text.splitlines()[0]


def test_the_builder_reads_abi_without_importing_pyalloc():
    # setuptools runs _build.py before the package exists: neither it nor _abi.py may import pyalloc
    pytest.importorskip("cffi")
    r = _run("import runpy, sys\n"
             "g = runpy.run_path('pyalloc/_build.py')\n"
             "assert not [m for m in sys.modules if m.split('.')[0] == 'pyalloc'], sorted(sys.modules)\n"
             "print(len(g['abi'].COUNTERS))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(_abi.NR_CTRS)]


def test_procfs_names_no_counter_of_its_own():
    # every counter the table says /proc shows is one /proc/vmstat prints, and in its section
    assert set(_abi.VM_EVENT_COUNTERS) <= set(procfs.VM_EVENT_ITEMS)
    assert set(_abi.NODE_STAT_COUNTERS) <= set(procfs.NODE_STAT_ITEMS)
    m = pyalloc.Machine(mem="16M", backend="model")
    values = procfs.vmstat_values(m.snapshot())
    assert values.keys() == set(procfs.VMSTAT_ITEMS)


# -- the stale-build check ---------------------------------------------------------------------

@needs_c
def test_a_core_built_from_another_abi_is_refused(monkeypatch):
    from pyalloc import _cbackend
    from pyalloc._core import ffi, lib
    _cbackend.check_build(lib, ffi, _abi)
    changes = (("__version__", _abi.__version__ + ".post1"), ("ABI_VERSION", _abi.ABI_VERSION + 1),
               ("COUNTERS", _abi.COUNTERS + ("a_new_counter",)))     # a counter added, no rebuild
    for attr, value in changes:
        with monkeypatch.context() as mp:
            mp.setattr(_abi, attr, value)
            with pytest.raises(ImportError, match=r"^stale build: .*rebuild with python pyalloc/_build\.py$"):
                _cbackend.check_build(lib, ffi, _abi)


@needs_c
def test_importing_the_c_backend_with_another_abi_fails():
    r = _run("import pyalloc._abi as a\n"
             "a.COUNTERS += ('a_new_counter',)\n"
             "import pyalloc._cbackend\n")
    assert r.returncode != 0
    assert "ImportError: stale build" in r.stderr and "rebuild with python pyalloc/_build.py" in r.stderr


# -- the snapshot's counter blocks ---------------------------------------------------------------

def _busy(backend: str, kconfig=None):
    m = pyalloc.Machine(mem="32M", backend=backend, swap="8M", kconfig=kconfig)
    pid = m.spawn("x")
    m.touch(pid, 9000)
    m.read_file("/f", 2000)
    return m


def _pcp_section_words(m) -> int:
    """The words of the PCP section a machine with drained pcp lists writes (model/snapshot.py)."""
    boot = {"count": 0, "high": 0, "free_count": 0, "flags": 0, "alloc_factor": 0}
    records = sum(1 for zid in range(_abi.MAX_NR_ZONES) for cpu in range(m.cpus)
                  if any(m._core.pcp_info(zid, cpu)[k] != v for k, v in boot.items()))
    return 2 + records * (6 + _abi.NR_PCP_LISTS)


def _workingset_section_words(m) -> int:
    """The words of the workingset section (format 5) the machine writes, read off a model twin."""
    a = snapshot.read(snapshot.to_bytes(m), "model")._core._a
    return 2 + 2 * len(a.lru_ext) + 2 * len(a.swap_shadow)


def _as_v3(core: bytes, m) -> bytes:
    """Today's CORE section of a machine with every kconfig option off and drained pcp lists, in
    format 3's layout: without the machine scalars and the sections format 4 added (slab_random
    and the per-cpu section, both empty here, then PCP) and those format 5 added."""
    assert core.endswith(EMPTY_MLOCK)
    core = core[:len(core) - len(EMPTY_MLOCK)]
    core = core[:len(core) - 8 * _workingset_section_words(m)]
    for empty in (EMPTY_SYSCTL, EMPTY_COMPACTION, EMPTY_WRITEBACK):     # format 5's sections, empty here
        assert core.endswith(empty)
        core = core[:len(core) - len(empty)]
    core = core[:len(core) - 8 * (_abi.NR_KTHREAD_INFO + _pcp_section_words(m))]    # kswapd's words, the pcp
    tail = EMPTY_SLAB_RANDOM + bytes(8)
    assert core.endswith(tail)
    return core[:V3_MACHINE_WORDS * 8] + core[len(MACHINE_SCALARS) * 8:len(core) - len(tail)]


def _counter_block(core: bytes, nr_scalars: int = len(MACHINE_SCALARS)) -> int:
    """Byte offset of the counter block's count in a CORE section (model/snapshot.py's layout)."""
    i = nr_scalars + 512
    blob = int.from_bytes(core[i * 8:i * 8 + 8], "little")
    return 8 * (i + 1 + (blob + 7) // 8 + 5 * _ZONE_WORDS)


def _with_core(data: bytes, core: bytes, version: int = snapshot.VERSION) -> bytes:
    """*data* (a whole snapshot file) with its CORE section replaced and the header's version set."""
    sections = snapshot._read_sections(data, "test")
    f = io.BytesIO()
    f.write(snapshot._HEADER.pack(snapshot.MAGIC, version, 0))
    for tag in (b"INFO", b"CORE", b"MEM ", b"PYST", b"END "):
        for payload in ([core] if tag == b"CORE" else [b""] if tag == b"END " else sections.get(tag, [])):
            snapshot._section(f, tag, payload)
    return f.getvalue()


def _word(n: int) -> bytes:
    return n.to_bytes(8, "little")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_counter_the_writer_did_not_have_reads_as_zero(backend):
    m = _busy(backend)
    data = snapshot.to_bytes(m)
    want = m.reclaim_counters()
    core = bytes(snapshot._read_sections(data, "test")[b"CORE"][0])
    at = _counter_block(core)
    assert core[at:at + 8] == _word(_abi.NR_CTRS)
    # as an older pyalloc, one counter short, wrote it
    last = _abi.COUNTERS[-1]
    older = core[:at] + _word(_abi.NR_CTRS - 1) + core[at + 8:at + 8 * _abi.NR_CTRS] + core[at + 8 + 8 * _abi.NR_CTRS:]
    got = snapshot.read(_with_core(data, older), backend).reclaim_counters()
    assert got == {**want, last: 0}
    # as a newer one, with a counter this one does not know, wrote it
    newer = core[:at] + _word(_abi.NR_CTRS + 1) + core[at + 8:at + 8 + 8 * _abi.NR_CTRS] + _word(7) \
        + core[at + 8 + 8 * _abi.NR_CTRS:]
    again = snapshot.read(_with_core(data, newer), backend)
    assert again.reclaim_counters() == want
    again.check()


@pytest.mark.parametrize("backend", BACKENDS)
def test_format_2_files_still_load(backend):
    # format 2 (the current main's) wrote the counter and cost blocks without their counts
    assert (V2_NR_CTRS, V2_NR_COSTS) <= (_abi.NR_CTRS, _abi.NR_COSTS)
    m = _busy(backend, kconfig={name: False for name in _abi.KCONFIG_BIT})
    m.drain_pages()         # format 2 had no pcp lists: only their (boot-like) limits are left out
    data = snapshot.to_bytes(m)
    core = bytes(snapshot._read_sections(data, "test")[b"CORE"][0])
    core = _as_v3(core, m)
    at = _counter_block(core, V3_MACHINE_WORDS)
    if (V2_NR_CTRS, V2_NR_COSTS) != (_abi.NR_CTRS, _abi.NR_COSTS):
        pytest.skip("counters were added since format 2: the v2 layout cannot be made from today's")
    costs = at + 8 + 8 * V2_NR_CTRS
    v2 = core[:at] + core[at + 8:costs] + core[costs + 8:]
    for load_on in ("model", backend):
        old = snapshot.read(_with_core(data, v2, version=2), load_on)
        old.check()
        assert old.reclaim_counters() == m.reclaim_counters()
        assert old.proc("vmstat") == m.proc("vmstat") and old.proc("meminfo") == m.proc("meminfo")
    # a format-2 core cut short before its counters is a SnapshotError, not a crash
    with pytest.raises(pyalloc.SnapshotError, match="does not describe a valid machine"):
        snapshot.read(_with_core(data, v2[:at + 16], version=2), backend)
