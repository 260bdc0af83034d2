"""Threads: what sharing costs, and that two machines do not wait for each other.

Groups (read the ratios inside one run; nothing here asserts a time):
  * threads-pairs: 2 x N alloc_pages+free_pages pairs done three ways on the C core --
    one thread on one machine; two threads on two machines (no lock shared: the C
    parts, run with the GIL dropped, overlap); two threads sharing one machine
    (the per-machine lock serializes the core);
  * the uncontended per-call cost of the lock itself shows in bench_buddy.py and
    bench_slab.py (pair-order0-1G, slab-kmalloc64), measured before and after it
    went in (issue 8).
"""

from __future__ import annotations

import threading

import pytest

import pyalloc

N = 20000
WARM = {"warmup": False}


def pairs(m: pyalloc.Machine, n: int) -> None:
    alloc, free = m.alloc_pages, m.free_pages
    for _ in range(n):
        free(alloc("GFP_KERNEL", 0), 0)


def in_threads(jobs) -> None:
    threads = [threading.Thread(target=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture
def machines():
    pytest.importorskip("pyalloc._cbackend")
    ms = [pyalloc.Machine(mem="256M", backend="c") for _ in range(2)]
    yield ms
    for m in ms:
        m.check()
        m.close()


def counted(m: pyalloc.Machine) -> int:
    return sum(z["pgalloc"] for z in m.snapshot()["zones"])


@pytest.mark.benchmark(group="threads-pairs", **WARM)
def test_one_thread_one_machine(benchmark, machines):
    m = machines[0]
    before = counted(m)
    benchmark.pedantic(lambda: pairs(m, 2 * N), rounds=5)
    assert counted(m) - before == 5 * 2 * N


@pytest.mark.benchmark(group="threads-pairs", **WARM)
def test_two_threads_two_machines(benchmark, machines):
    before = [counted(m) for m in machines]
    benchmark.pedantic(lambda: in_threads([lambda m=m: pairs(m, N) for m in machines]), rounds=5)
    assert [counted(m) - b for m, b in zip(machines, before)] == [5 * N, 5 * N]


@pytest.mark.benchmark(group="threads-pairs", **WARM)
def test_two_threads_one_machine(benchmark, machines):
    m = machines[0]
    before = counted(m)
    benchmark.pedantic(lambda: in_threads([lambda: pairs(m, N)] * 2), rounds=5)
    assert counted(m) - before == 5 * 2 * N
