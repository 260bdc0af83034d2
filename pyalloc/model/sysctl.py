"""sysctl.c's twin: read or write one vm sysctl (see csrc/sysctl.c for the
rules: _abi.VM_SYSCTLS ranges as proc_dointvec_minmax() checks them,
min_free_kbytes and watermark_scale_factor redo setup_per_zone_wmarks(),
compact_memory and drop_caches are write-only)."""

from __future__ import annotations

from .._abi import (
    CTR, EINVAL, INT_MAX, NR_VM_SYSCTLS, OK, VM_SYSCTL, VM_SYSCTL_COMPACT_MEMORY,
    VM_SYSCTL_DROP_CACHES, VM_SYSCTL_MIN_FREE_KBYTES, VM_SYSCTL_READ, VM_SYSCTLS,
)
from .arena import Arena

_WATERMARK_SCALE_FACTOR = VM_SYSCTL["watermark_scale_factor"]


def setup_per_zone_wmarks(a: Arena) -> None:
    """setup_per_zone_wmarks() and its zone_pcp_update() of every zone."""
    from . import pcp
    a.setup_per_zone_wmarks()
    a.setup_per_zone_lowmem_reserve()
    for zid, z in enumerate(a.zones):
        if z.managed:
            pcp.zone_set_pageset_high_and_batch(a, zid)


def drop_caches(a: Arena, value: int) -> int:
    """drop_caches_sysctl_handler(): 1 if the pr_info line is due."""
    from .reclaim import drop_caches as drop_pagecache
    if value & 1:
        drop_pagecache(a)
    if value & 2:
        a.ctr[CTR["drop_slab"]] += 1
    show = int(not a.drop_caches_stfu)
    if value & 4:
        a.drop_caches_stfu = 1
    return show


def sysctl(a: Arena, index, value) -> int:
    if type(index) is not int or type(value) is not int:
        return EINVAL
    read = value == VM_SYSCTL_READ
    if not 0 <= index <= VM_SYSCTL_DROP_CACHES or (not read and value < 0):
        return EINVAL
    if index < NR_VM_SYSCTLS:
        if read:
            return a.vm_sysctl[index]
        _, _, lo, hi = VM_SYSCTLS[index]
        if not lo <= value <= hi:
            return EINVAL
        a.ticks += 1
        a.vm_sysctl[index] = value
        if index == _WATERMARK_SCALE_FACTOR:
            setup_per_zone_wmarks(a)
        return OK
    if index == VM_SYSCTL_MIN_FREE_KBYTES:
        if read:
            return a.min_free_kbytes
        if value > INT_MAX:
            return EINVAL
        a.ticks += 1
        a.min_free_kbytes = value
        setup_per_zone_wmarks(a)
        return OK
    if index == VM_SYSCTL_COMPACT_MEMORY:
        if read or value != 1:
            return EINVAL
        a.ticks += 1
        from .compaction import compact_node
        compact_node(a)
        return OK
    if read or not 1 <= value <= 4:
        return EINVAL
    a.ticks += 1
    return drop_caches(a, value)
