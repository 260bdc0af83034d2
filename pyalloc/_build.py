"""cffi builder for the C core (API mode, out of line), run by setuptools.

setuptools execs this file on its own, so it must not import pyalloc: every
path is found relative to this file, and pyalloc/_abi.py is loaded from its
file.  Every build first writes csrc/pa_abi_gen.h from _abi.py; the cdef is
the generated enums followed by the region of csrc/pyalloc.h between the
PA_CDEF markers.  Set PYALLOC_DEBUG=1 to build
with -O0 -g and PA_DEBUG defined.
"""

import importlib.util
import os
from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
GENERATED = CSRC / "pa_abi_gen.h"


def load_abi():
    """pyalloc/_abi.py as a module of its own, without importing the package."""
    spec = importlib.util.spec_from_file_location("_pyalloc_abi", Path(__file__).resolve().parent / "_abi.py")
    abi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(abi)
    return abi


def write_header(abi) -> None:
    """csrc/pa_abi_gen.h; left alone when it already says the same, so make-style rebuilds stay quiet."""
    text = abi.render_header()
    if not GENERATED.exists() or GENERATED.read_text() != text:
        GENERATED.write_text(text)


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

abi = load_abi()
write_header(abi)
ffibuilder = FFI()
ffibuilder.cdef(abi.render_cdef() + read_cdef())
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
