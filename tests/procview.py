"""Small parsers of /proc text the tests share."""

from pyalloc import PAGE_OFFSET


def meminfo(m) -> dict:
    return {line.split(":")[0]: int(line.split()[1]) for line in m.proc("meminfo").splitlines()}


def vmstat(m) -> dict:
    return {k: int(v) for k, v in (line.split() for line in m.proc("vmstat").splitlines())}


def phys(addr: int) -> int:
    return addr - PAGE_OFFSET
