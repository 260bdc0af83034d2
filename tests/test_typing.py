"""The package ships py.typed: its own code type-checks, and so does a user's script.

Both tests run mypy in a subprocess and skip (saying why) when mypy is not
installed: it is in the ``test`` extra, but the rest of the suite does not need it.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pyalloc

REPO = Path(__file__).resolve().parent.parent

needs_mypy = pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                                reason="mypy is not installed (pip install -e '.[test]')")

# Everything a user reaches for first, written the way a typed script would
USER_SCRIPT = '''
from __future__ import annotations

from pathlib import Path
from typing import Optional, assert_type

import pyalloc
from pyalloc import helpers


def main(tmp: Path) -> None:
    m = pyalloc.Machine(mem="64M", cpus=2, backend="model", swap="8M")
    pfn: Optional[int] = m.alloc_pages("GFP_KERNEL", order=1)
    if pfn is not None:
        m.free_pages(pfn, order=1)
    addr: Optional[int] = m.kmalloc(128, pyalloc.GFP.KERNEL)
    if addr is not None:
        m.write(addr, b"hello")
        data: bytes = m.read(addr, 5)
        assert data == b"hello"
    m.kfree(addr)
    cache: pyalloc.Cache = m.kmem_cache_create("typed_cache", 96, align=8, flags=pyalloc.SLAB.HWCACHE_ALIGN)
    obj = m.kmem_cache_alloc(cache, "GFP_KERNEL")
    if obj is not None:
        m.kmem_cache_free(cache, obj)
    m.kmem_cache_destroy(cache)
    v: Optional[int] = m.vmalloc(3 * pyalloc.PAGE_SIZE)
    m.vfree(v)
    text: str = m.proc("meminfo")
    lines: list[str] = m.dmesg()
    pid: int = m.spawn("worker")
    touched: int = m.touch(pid, 16)
    m.exit(pid)

    s = pyalloc.Stream()
    h: int = s.kmalloc(64, "GFP_KERNEL")
    s.kfree(h)
    p = s.alloc_pages("GFP_KERNEL", order=0)
    s.free_pages(p, order=0)
    result: pyalloc.StreamResult = m.run(s)
    status: int = result.status(h)

    info: dict[str, object] = m.save(tmp / "m.pyst")
    m2: pyalloc.Machine = pyalloc.Machine.load(tmp / "m.pyst", backend="model")
    found: Optional[pyalloc.Cache] = helpers.find_slab_cache(m2, "kmalloc-64")
    for c in helpers.for_each_slab_cache(m2):
        per_slab: int = helpers.slab_cache_objects_per_slab(m2, c)
    for zone in helpers.for_each_zone(m2):
        low: int = helpers.low_wmark_pages(zone)
    page = helpers.pfn_to_page(m2, 0)
    flags: str = helpers.decode_page_flags(page)
    try:
        m2.kfree(12345)
    except pyalloc.InvalidFree as e:
        assert_type(e.reason, Optional[str])          # not Any: a typo in a use would go unseen
        assert_type(e.addr, Optional[int])
        print(e.reason, e.addr)
    with m2.on_cpu(1) as on1:
        on1.kfree(on1.kmalloc(8, "GFP_KERNEL", caller="probe+0x1/0x2"))
    m2.drain_pages(0)
    seeded = pyalloc.Machine(mem="16M", backend="model", seed=3, kconfig={"SLUB_CPU_PARTIAL": False})
    options: dict[str, bool] = seeded.kconfig
    small = seeded.kmem_cache_create("small", 32, sheaf_capacity=8)
    order: int = helpers.slab_cache_order(small)
    cpu_slab: helpers.CpuSlab = helpers.slab_cache_cpu_slab(seeded, small, 0)
    size: int = seeded.ksize(seeded.kmalloc(40, "GFP_KERNEL"))
    root: Path = seeded.export(tmp / "exp", in_place=True)
    seeded.close()
    m2.check()
    m2.close()
    m.close()
    print(text[:10], lines[:1], touched, status, info, found, flags, options, order, cpu_slab, size, root)
'''


def _mypy(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MYPY_FORCE_COLOR="0")
    env.pop("MYPYPATH", None)
    return subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull, *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@needs_mypy
def test_user_script_passes_mypy_strict(tmp_path):
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(USER_SCRIPT))
    # the pyalloc under test (an editable install's import hook is invisible to mypy), read as an
    # installed package is: its own code is the other test's business, only the script is judged
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {Path(pyalloc.__file__).parent.parent}\n\n"
                      "[mypy-pyalloc.*]\nfollow_imports = silent\n")
    r = _mypy("--strict", "--config-file", str(config), str(script), cwd=tmp_path)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr


@needs_mypy
def test_package_passes_mypy():
    r = _mypy("pyalloc", "--ignore-missing-imports", cwd=REPO)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr


def test_machine_state_declares_every_attribute():
    """MachineState (pyalloc/machine/state.py) names all a busy machine holds, and all a snapshot saves."""
    import io

    from pyalloc._testing import c_core_available
    from pyalloc.machine.snapshot_state import SAVED
    from pyalloc.machine.state import MachineState

    declared = set(MachineState.__annotations__)
    assert set(SAVED) <= declared
    for backend in ("c", "model"):
        if backend == "c" and not c_core_available():
            continue
        with pyalloc.Machine(mem="64M", backend=backend, swap="8M", slub_debug="FZPU", trace=io.StringIO()) as m:
            m.kmalloc(64, "GFP_KERNEL")
            m.vmalloc(3 * pyalloc.PAGE_SIZE)
            m.touch(m.spawn("worker"), 4)
            assert set(vars(m)) <= declared, sorted(set(vars(m)) - declared)
