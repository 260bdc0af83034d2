"""The C core's machine lock under ThreadSanitizer (tests/c/lock_stress.c).

Python threads cannot hold the lock or race in C on purpose, so this drives the
core from C: four threads on one machine, a nested entry, entries after close.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.c_only


def test_machine_lock_is_race_free_under_tsan(tmp_path):
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        pytest.skip("no C compiler")
    exe = tmp_path / "lock_stress"
    build = subprocess.run(
        [cc, "-std=c11", "-D_DEFAULT_SOURCE", "-O1", "-g", "-fsanitize=thread", f"-I{ROOT / 'csrc'}",
         str(ROOT / "tests" / "c" / "lock_stress.c"), *map(str, sorted((ROOT / "csrc").glob("*.c"))),
         "-o", str(exe), "-lpthread"], capture_output=True, text=True)
    if build.returncode:
        if "sanitize" in build.stderr or "tsan" in build.stderr:
            pytest.skip(f"ThreadSanitizer is not available: {build.stderr.strip()[:200]}")
        pytest.fail(build.stderr)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                         env={"TSAN_OPTIONS": "halt_on_error=1"})
    if "FATAL: ThreadSanitizer: unexpected memory mapping" in run.stderr:
        pytest.skip("ThreadSanitizer cannot run on this kernel's address layout")
    assert "ThreadSanitizer" not in run.stderr, run.stderr
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:3] == ["nested 1 0", "threads 1 check 0", "closed -1006"]
