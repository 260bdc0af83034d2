"""Shared fixtures for the pytest-benchmark suite (``pytest bench/ --benchmark-only``).

Collection: the files are named ``bench_<area>.py`` (STYLE.md, Lessons 14), which
pytest's default ``python_files`` does not match, and the project's pyproject.toml
config (``testpaths = ["tests"]``) is the one in force when pytest runs from the
repository root.  The ``pytest_collect_file`` hook below collects ``bench_*.py``,
and since this conftest is only loaded when pytest walks ``bench/``, a plain
``python -m pytest`` (testpaths = tests) never runs a benchmark.
"""

from __future__ import annotations

import os

import pytest

from pyalloc._testing import c_core_available, require_backend  # noqa: F401

import pyalloc

BACKENDS = ["c", "model"]

# A warmed-up machine: this many live blocks of mixed order, with some of them freed
# again so the free lists hold split, non-boot-state blocks when the timing starts.
WARM_ALLOCS = 400
WARM_ORDERS = (0, 0, 1, 0, 2, 0, 3, 0)


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".py" and file_path.name.startswith("bench_"):
        if parent.session.isinitpath(file_path):
            return None     # named on the command line: the python plugin collects it
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(params=BACKENDS)
def backend(request):
    return require_backend(pytest, request.param)


def warm_up(m: pyalloc.Machine) -> list[tuple[int, int]]:
    """Leave WARM_ALLOCS blocks allocated, minus every third one, which is freed."""
    live = []
    for i in range(WARM_ALLOCS):
        order = WARM_ORDERS[i % len(WARM_ORDERS)]
        pfn = m.alloc_pages("GFP_KERNEL", order)
        assert isinstance(pfn, int), "warm-up allocation failed"
        live.append((pfn, order))
    kept = []
    for i, (pfn, order) in enumerate(live):
        if i % 3 == 2:
            m.free_pages(pfn, order)
        else:
            kept.append((pfn, order))
    return kept


@pytest.fixture
def make_machine():
    """make_machine(mem, backend, warm=True): a machine, closed after the test."""
    machines = []

    def make(mem: str, backend: str, warm: bool = True) -> pyalloc.Machine:
        m = pyalloc.Machine(mem=mem, backend=backend)
        machines.append(m)
        if warm:
            warm_up(m)
        return m

    yield make
    for m in machines:
        if not m._closed:
            m.check()
            m.close()


def bench_two_cffi_calls(benchmark) -> None:
    """Two bare cffi calls that do nothing: the floor a C pair is measured against."""
    pytest.importorskip("pyalloc._cbackend")
    from pyalloc._core import lib
    abi = lib.pa_abi_version

    def two_calls():
        abi()
        return abi()

    assert benchmark(two_calls) == lib.PA_ABI_VERSION
