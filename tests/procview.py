"""Small parsers of /proc text the tests share."""

import re

from pyalloc import PAGE_OFFSET

_STAMP = re.compile(r"^\[[ \d.]+\] ?")


def log(m, since: int = 0) -> list[str]:
    """dmesg lines without the "[    0.000000] " timestamps."""
    return [_STAMP.sub("", line) for line in m.dmesg()[since:]]


def slabinfo(m) -> list[dict]:
    """The slabinfo rows, each checked to have the 16 fields of the 2.1 format."""
    rows = []
    for line in m.proc("slabinfo").splitlines()[2:]:
        f = line.split()
        assert len(f) == 16, line
        rows.append({"name": f[0], "active": int(f[1]), "num": int(f[2]), "objsize": int(f[3]),
                     "per_slab": int(f[4]), "pages": int(f[5]), "active_slabs": int(f[13]),
                     "num_slabs": int(f[14]), "line": line})
    return rows


def meminfo(m) -> dict:
    return {line.split(":")[0]: int(line.split()[1]) for line in m.proc("meminfo").splitlines()}


def vmstat(m) -> dict:
    return {k: int(v) for k, v in (line.split() for line in m.proc("vmstat").splitlines())}


def phys(addr: int) -> int:
    return addr - PAGE_OFFSET
