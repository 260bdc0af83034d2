"""The backend fixture: every behaviour test runs on the C core and on the model.

Set PYALLOC_REQUIRE_C=1 (CI does) to make a missing C build an error instead of
a skip, so a broken build can never pass as "model only".
"""

import os

import pytest

from pyalloc._testing import c_core_available, require_backend  # noqa: F401

import pyalloc

BACKENDS = ["c", "model"]

# Under .ci/run's sanitizer build the C core needs libasan loaded first.  The test
# process had it preloaded; a child `python -m pyalloc ...` a test starts gets it
# through this wrapper (sys.executable is what those tests start).
_CHILD_PRELOAD = os.environ.get("PYALLOC_CHILD_PRELOAD")
if _CHILD_PRELOAD:
    import sys
    import tempfile

    _dir = tempfile.mkdtemp(prefix="pyalloc-sanitized-")
    # the child drops the preload as soon as it starts (sitecustomize), so the tools it
    # runs in turn (free, node_exporter) do not get it: they hang with it
    with open(os.path.join(_dir, "sitecustomize.py"), "w") as f:
        f.write('import os\nos.environ.pop("LD_PRELOAD", None)\n')
    _wrapper = os.path.join(_dir, "python")
    with open(_wrapper, "w") as f:
        f.write(f'#!/bin/sh\nLD_PRELOAD="{_CHILD_PRELOAD}" PYTHONPATH="{_dir}${{PYTHONPATH:+:$PYTHONPATH}}" '
                f'exec "{sys.executable}" "$@"\n')
    os.chmod(_wrapper, 0o755)
    sys.executable = _wrapper


@pytest.fixture(params=BACKENDS)
def backend(request):
    return require_backend(pytest, request.param)


@pytest.fixture
def machine(backend):
    """A 1 GiB, 2-CPU machine: zones DMA and DMA32, the usual test bench."""
    with pyalloc.Machine(mem="1G", cpus=2, backend=backend) as m:
        yield m
        if not m._closed:
            m.check()


@pytest.fixture
def make_machine(backend):
    """Build machines of other shapes on the current backend; all are closed after the test."""
    made = []

    def make(**kwargs):
        kwargs.setdefault("backend", backend)
        m = pyalloc.Machine(**kwargs)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()
