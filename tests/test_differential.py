"""Differential test: the C core and the model driven by one random operation
stream must agree on every answer, every exception (type and text), every
/proc file and every dmesg line, and pass check() after every step.

Known divergences would be listed in ALLOWED_DIFFERENCES with a reason; the
list is empty and should stay so.
"""

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

import pyalloc
from conftest import c_core_available

pytestmark = pytest.mark.skipif(not c_core_available(), reason="the C core is not built")

ALLOWED_DIFFERENCES: dict = {}

GFPS = [
    "GFP_KERNEL", "GFP_KERNEL|__GFP_ZERO", "GFP_KERNEL|__GFP_COMP", "GFP_HIGHUSER_MOVABLE",
    "GFP_KERNEL|__GFP_RECLAIMABLE", "GFP_ATOMIC", "GFP_NOWAIT", "GFP_KERNEL|__GFP_NOWARN",
    "GFP_DMA", "GFP_KERNEL|GFP_DMA32", "GFP_KERNEL|__GFP_MEMALLOC", "GFP_ATOMIC|__GFP_NOMEMALLOC",
    "GFP_KERNEL|__GFP_HIGH", "GFP_KERNEL|__GFP_NOFAIL", "GFP_ATOMIC|__GFP_NOFAIL",
    "GFP_KERNEL|__GFP_RETRY_MAYFAIL", "GFP_KERNEL_ACCOUNT", "GFP_TRANSHUGE",
]
VIEWS = ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat")
MEM = (16 << 20) + (8 << 20) + 3 * 4096       # DMA full, a small DMA32 with an unaligned end


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:       # compare what each backend raised, type and text
        return ("raise", type(exc).__name__, str(exc))


class TwoBackends(RuleBasedStateMachine):
    blocks = Bundle("blocks")
    freed = Bundle("freed")

    def __init__(self):
        super().__init__()
        self.c = pyalloc.Machine(mem=MEM, backend="c")
        self.py = pyalloc.Machine(mem=MEM, backend="model")

    def both(self, name, *args):
        a = outcome(getattr(self.c, name), *args)
        b = outcome(getattr(self.py, name), *args)
        assert a == b or ALLOWED_DIFFERENCES.get(name), f"{name}{args}: c={a!r} model={b!r}"
        return a

    @rule(target=blocks, gfp=st.sampled_from(GFPS), order=st.sampled_from([0] * 6 + [1, 2, 3, 4, 5, 9, 10, 11]))
    def alloc(self, gfp, order):
        r = self.both("alloc_pages", gfp, order)
        if r[0] == "ok" and r[1] is not None:
            return (r[1], order)
        return (None, order)

    @rule(target=freed, block=consumes(blocks))
    def free(self, block):
        pfn, order = block
        if pfn is not None:
            self.both("free_pages", pfn, order)   # may have been freed already through a stale copy
        return block

    @rule(block=freed)
    def free_again(self, block):
        # a double free, or a valid free when the block was handed out again
        pfn, order = block
        if pfn is not None:
            self.both("free_pages", pfn, order)

    @rule(pfn=st.integers(-2, MEM // 4096 + 2), order=st.integers(-1, 11))
    def free_anything(self, pfn, order):
        # mostly invalid frees; an exact hit on a live block would free it on both alike
        self.both("free_pages", pfn, order)

    @rule(block=blocks, delta=st.integers(1, 7), order=st.integers(0, 3))
    def free_interior_or_wrong_order(self, block, delta, order):
        pfn, border = block
        if pfn is not None and (delta < 1 << border or order != border):
            target = pfn + (delta % (1 << border)) if border else pfn
            if target == pfn and order == border:
                return
            self.both("free_pages", target, order)

    @rule(block=blocks, offset=st.integers(0, 8191), data=st.binary(min_size=0, max_size=64))
    def write_read(self, block, offset, data):
        pfn, order = block
        if pfn is None:
            return
        addr = pyalloc.PAGE_OFFSET + pfn * 4096 + offset % (4096 << order)
        self.both("write", addr, data)
        self.both("read", addr, len(data) + 3)

    @rule(addr=st.integers(pyalloc.PAGE_OFFSET + MEM - 64, pyalloc.PAGE_OFFSET + MEM + 64), n=st.integers(-1, 128))
    def access_near_the_end(self, addr, n):
        self.both("read", addr, n)
        self.both("memset", addr, 0x5a, n)

    @invariant()
    def same_state(self):
        for view in VIEWS:
            assert self.c.proc(view) == self.py.proc(view), view
        assert self.c.dmesg() == self.py.dmesg()
        self.c.check()
        self.py.check()

    def teardown(self):
        self.c.close()
        self.py.close()


TwoBackends.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_two_backends_agree = TwoBackends.TestCase


def test_long_mixed_workload_agrees():
    """A longer deterministic stream than hypothesis runs, to reach exhaustion and merges."""
    import random
    rnd = random.Random(1234)
    with pyalloc.Machine(mem="24M", backend="c") as c, pyalloc.Machine(mem="24M", backend="model") as py:
        live = []
        for step in range(6000):
            if live and rnd.random() < 0.45:
                pfn, order = live.pop(rnd.randrange(len(live)))
                assert c.free_pages(pfn, order) is None
                py.free_pages(pfn, order)
            else:
                gfp, order = rnd.choice(GFPS[:13]), rnd.choice([0, 0, 0, 1, 2, 3, 5])
                a, b = outcome(c.alloc_pages, gfp, order), outcome(py.alloc_pages, gfp, order)
                assert a == b, (step, gfp, order, a, b)
                if a[0] == "ok" and a[1] is not None:
                    live.append((a[1], order))
            if step % 500 == 0:
                for view in VIEWS:
                    assert c.proc(view) == py.proc(view)
                c.check()
                py.check()
        assert c.dmesg() == py.dmesg()
