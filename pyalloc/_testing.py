"""Backend selection for pyalloc's own test and benchmark suites."""

import os


def c_core_available() -> bool:
    try:
        import pyalloc._cbackend  # noqa: F401
    except ImportError:
        return False
    return True


def require_backend(pytest, name: str) -> str:
    """Skip a test on an unbuilt C core; fail it instead when PYALLOC_REQUIRE_C is set (CI)."""
    if name == "c" and not c_core_available():
        if os.environ.get("PYALLOC_REQUIRE_C"):
            pytest.fail("PYALLOC_REQUIRE_C is set but pyalloc._core is not built")
        pytest.skip("the C core is not built")
    return name
