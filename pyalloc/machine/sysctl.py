"""The vm sysctls: ``Machine.sysctl(name, value=None)``, shared by both
backends (the core work is csrc/sysctl.c <-> pyalloc/model/sysctl.py).

Names are sysctl(8)'s: ``"vm.swappiness"`` or ``"vm/swappiness"`` (the path
under /proc/sys); nothing else.  Readable and writable: the knobs of
_abi.VM_SYSCTLS and ``vm.min_free_kbytes``; write-only (mode 0200):
``vm.compact_memory`` and ``vm.drop_caches``.

Errors, all raised before anything changes: an unknown name is
InvalidArgument (the kernel: ENOENT); a value outside the kernel's range is
InvalidArgument (EINVAL, as proc_dointvec_minmax() answers); reading a
write-only knob is InvalidArgument (the kernel refuses the open with EACCES,
even for root: a 0200 file); a value that is not an int is TypeError.
"""

from __future__ import annotations

from typing import Optional

from .. import errors
from .._abi import (
    INT_MAX, NR_VM_SYSCTLS, VM_SYSCTL, VM_SYSCTL_COMPACT_MEMORY, VM_SYSCTL_DROP_CACHES, VM_SYSCTL_MIN_FREE_KBYTES,
    VM_SYSCTL_READ, VM_SYSCTLS,
)
from ..errors import InvalidArgument, show
from .state import MachineState

# name -> (index, min, max, readable), the table knobs in their order, then the others
SYSCTLS: dict[str, tuple[int, int, int, bool]] = {
    **{name: (VM_SYSCTL[name], lo, hi, True) for name, _, lo, hi in VM_SYSCTLS},
    "min_free_kbytes": (VM_SYSCTL_MIN_FREE_KBYTES, 0, INT_MAX, True),
    "compact_memory": (VM_SYSCTL_COMPACT_MEMORY, 1, 1, False),
    "drop_caches": (VM_SYSCTL_DROP_CACHES, 1, 4, False),
}
assert len(SYSCTLS) == NR_VM_SYSCTLS + 3


def sysctl_key(name) -> str:
    """"vm.swappiness" or "vm/swappiness" -> "swappiness" (InvalidArgument if unknown)."""
    if not isinstance(name, str):
        raise TypeError(f"sysctl: name must be a str, not {type(name).__name__}")
    for prefix in ("vm.", "vm/"):
        if name.startswith(prefix) and name[3:] in SYSCTLS:
            return name[3:]
    raise InvalidArgument(f"sysctl: unknown name {show(name)} (ENOENT; one of "
                          f"{', '.join('vm.' + k for k in SYSCTLS)})")


class SysctlAPI(MachineState):
    """Mixin of :class:`pyalloc.Machine`: /proc/sys/vm."""

    def sysctl(self, name: str, value: Optional[int] = None) -> Optional[int]:
        """Read (``value=None``: returns the int) or write one vm sysctl.

        Writing ``vm.min_free_kbytes`` or ``vm.watermark_scale_factor`` recomputes
        every zone's watermarks and pcp limits (mm/page_alloc.c
        setup_per_zone_wmarks()); ``vm.compact_memory`` = 1 compacts every zone
        whole; ``vm.drop_caches`` = 1 drops clean page cache, 2 counts drop_slab
        (pyalloc has no shrinkers), 3 both, and 4 silences the
        "comm (pid): drop_caches: N" line it logs, as fs/drop_caches.c does."""
        self._live()
        key = sysctl_key(name)
        index, lo, hi, readable = SYSCTLS[key]
        if value is None:
            if not readable:
                raise InvalidArgument(f"sysctl: vm.{key} is write-only (EACCES: /proc/sys/vm/{key} is mode 0200)")
            r = self._core.sysctl(index, VM_SYSCTL_READ)
            if r < 0:
                errors.raise_for(r, f"sysctl vm.{key}")
            return r
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"sysctl: value must be an int, not {type(value).__name__}")
        if not lo <= value <= hi:
            raise InvalidArgument(f"sysctl: vm.{key} must be in {lo}..{hi}, not {show(value)} (EINVAL)")
        r = self._core.sysctl(index, value)
        if r < 0:
            errors.raise_for(r, f"sysctl vm.{key}={value}")
        if index == VM_SYSCTL_DROP_CACHES and r == 1:
            self._log.emit(self._clock_ns(), f"{self._comm} ({self._pid}): drop_caches: {value}")
        return None

    def sysctls(self) -> dict[str, int]:
        """Every readable vm sysctl, by its /proc/sys/vm name."""
        self._live()
        return {key: self._core.sysctl(index, VM_SYSCTL_READ)
                for key, (index, _, _, readable) in SYSCTLS.items() if readable}
