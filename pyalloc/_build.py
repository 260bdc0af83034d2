"""cffi builder for the C core (API mode, out of line), run by setuptools.

setuptools execs this file on its own, so it must not import pyalloc: every
path is found relative to this file.  The cdef is the region of
csrc/pyalloc.h between the PA_CDEF markers.  Set PYALLOC_DEBUG=1 to build
with -O0 -g and PA_DEBUG defined.
"""

import os
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"


def read_cdef() -> str:
    text = (CSRC / "pyalloc.h").read_text()
    start = text.index("/* PA_CDEF_BEGIN */") + len("/* PA_CDEF_BEGIN */")
    end = text.index("/* PA_CDEF_END */")
    return text[start:end]


debug = os.environ.get("PYALLOC_DEBUG", "") not in ("", "0")
sanitize = os.environ.get("PYALLOC_SANITIZE", "")   # e.g. "address,undefined"
cflags = ["-std=c11", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Wconversion", "-Wno-sign-conversion"]
cflags += ["-O0", "-g", "-DPA_DEBUG=1"] if debug else ["-O2"]
ldflags = []
if sanitize:
    # -fno-sanitize-recover: a UBSan report aborts the process, so no test run can pass over one
    # Python's own CFLAGS carry -fwrapv, which makes signed overflow defined and hides it from
    # UBSan: take it back, and name the check, so an overflow in the core is reported
    if "undefined" in sanitize.split(","):
        sanitize += ",signed-integer-overflow"
    cflags += [f"-fsanitize={sanitize}", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-fno-wrapv"]
    ldflags += [f"-fsanitize={sanitize}"]

ffibuilder = FFI()
ffibuilder.cdef(read_cdef())
ffibuilder.set_source(
    "pyalloc._core",
    '#include "pyalloc.h"',
    # setuptools runs from the project root and wants relative source paths
    sources=sorted(str(p.relative_to(ROOT)) for p in CSRC.glob("*.c")),
    include_dirs=["csrc"],
    extra_compile_args=cflags,
    extra_link_args=ldflags,
)

if __name__ == "__main__":
    os.chdir(ROOT)
    ffibuilder.compile(tmpdir=".", verbose=True)
