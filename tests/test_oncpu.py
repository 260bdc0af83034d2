"""cpu= and caller= on the per-call paths: the CPU goes into the core call
(pa_*_on, csrc/oncpu.c <-> model/oncpu.py) and must change nothing but the cost.

Every test runs the same operations twice on two fresh machines: once with
``cpu=`` on each call, once inside ``with m.on_cpu(cpu):`` (the form the
per-call argument replaces), and compares results, exceptions, dmesg, the
trace text and the snapshot.
"""

from __future__ import annotations

import contextlib
import io
import threading

import pytest

import pyalloc
from pyalloc import _abi
from pyalloc.errors import DoubleFree, InvalidArgument, InvalidFree

CPUS = 4


def _machine(backend, **kw):
    return pyalloc.Machine(mem="64M", cpus=CPUS, backend=backend, **kw)


def _call(m, form, fn, *args, cpu, caller=None):
    """fn(*args) as `cpu`, either with cpu= (and caller=) or inside on_cpu(); (result, error)."""
    kw = {} if caller is None else {"caller": caller}
    if form == "arg":
        kw["cpu"] = cpu
    try:
        # one line for both forms: a traced call names this line as its call site
        with (m.on_cpu(cpu) if form == "block" else contextlib.nullcontext()):
            return getattr(m, fn)(*args, **kw), None
    except pyalloc.PyallocError as exc:
        return None, (type(exc).__name__, str(exc))


def _workload(m, form, callers=(None,)):
    """kmalloc/kfree, kmem_cache_alloc/free and alloc_pages/free_pages spread over the CPUs,
    with remote frees and each kind of refused free; every answer, in order."""
    out = []
    cache = m.kmem_cache_create("oncpu_test", 200)
    objs, pages = [], []
    for i in range(60):
        cpu, caller = i % CPUS, callers[i % len(callers)]
        r = _call(m, form, "kmalloc", 8 + 37 * i % 3000, "GFP_KERNEL", cpu=cpu, caller=caller)
        objs.append(("k", r[0]))
        r2 = _call(m, form, "kmem_cache_alloc", cache, "GFP_KERNEL", cpu=cpu, caller=caller)
        objs.append(("c", r2[0]))
        r3 = _call(m, form, "alloc_pages", "GFP_KERNEL", i % 3, cpu=cpu)
        pages.append((r3[0], i % 3))
        out += [r, r2, r3]
    for j, (kind, addr) in enumerate(objs[::2] + objs[1::2]):       # freed on another CPU than allocated
        cpu, caller = (j * 3 + 1) % CPUS, callers[j % len(callers)]
        if kind == "k":
            out.append(_call(m, form, "kfree", addr, cpu=cpu, caller=caller))
        else:
            out.append(_call(m, form, "kmem_cache_free", cache, addr, cpu=cpu, caller=caller))
    for j, (pfn, order) in enumerate(pages):
        out.append(_call(m, form, "free_pages", pfn, order, cpu=(j + 2) % CPUS))
    # refused frees: double kfree, double free_pages, a wrong order, kfree of a page
    a = m.kmalloc(64, "GFP_KERNEL")
    m.kfree(a)
    out.append(_call(m, form, "kfree", a, cpu=3, caller=callers[0]))
    out.append(_call(m, form, "free_pages", pages[0][0], 0, cpu=2))
    p = m.alloc_pages("GFP_KERNEL", 1)
    out.append(_call(m, form, "free_pages", p, 0, cpu=1))
    out.append(_call(m, form, "kmem_cache_free", cache, a, cpu=1))
    # failures that only report: an impossible order, a too-large kmalloc, zero size
    out.append(_call(m, form, "alloc_pages", "GFP_KERNEL", 11, cpu=2))
    out.append(_call(m, form, "kmalloc", 1 << 30, "GFP_KERNEL", cpu=3))
    out.append(_call(m, form, "kmalloc", 0, "GFP_KERNEL", cpu=1))
    out.append(_call(m, form, "kfree", None, cpu=1))
    out.append(_call(m, form, "kfree", _abi.ZERO_SIZE_PTR, cpu=2, caller=callers[-1]))
    # unusual masks take the slow paths, still as that CPU
    out.append(_call(m, form, "kmalloc", 64, "GFP_KERNEL|__GFP_HIGHMEM", cpu=2))
    out.append(_call(m, form, "alloc_pages", "GFP_KERNEL|__GFP_NOFAIL", 0, cpu=3))
    out.append(m._core.vm_info()["cpu"])
    return out


def _state(m, trace=None):
    m.check()
    if trace is not None:
        m.trace_flush()
    return (m.snapshot(), m.dmesg(), m.proc("slabinfo"), m.proc("zoneinfo"),
            None if trace is None else trace.getvalue())


@pytest.mark.parametrize("debug", ["", "FZPU"])
def test_cpu_arg_equals_on_cpu_block(backend, debug):
    """Results, errors, dmesg (reports name the CPU), /proc and the snapshot are those of on_cpu()."""
    got = []
    for form in ("arg", "block"):
        with _machine(backend, slub_debug=debug) as m:
            got.append((_workload(m, form, callers=("a.c:1", "b.c:2") if debug else (None,)), _state(m)))
    assert got[0] == got[1]
    assert any(err and err[0] == "DoubleFree" for err in (r[1] for r in got[0][0][:-1] if isinstance(r, tuple)))


@pytest.mark.parametrize("callers", [(None,), ("site.c:10", "site.c:20", "site.c:30")])
def test_trace_events_name_the_cpu(backend, callers):
    """The trace's CPU column and call sites are those of on_cpu() with the same caller=."""
    got = []
    for form in ("arg", "block"):
        buf = io.StringIO()
        with _machine(backend, trace=buf) as m:
            got.append((_workload(m, form, callers), _state(m, buf)))
    assert got[0] == got[1]
    trace = got[0][1][-1]
    cpus = {line.split("[")[1][:3] for line in trace.splitlines() if "kmalloc:" in line}
    assert cpus == {"000", "001", "002", "003"}
    if callers[0] is not None:
        assert "site.c:20" in trace


def test_tracks_record_caller_and_cpu(backend):
    """slub_debug U: the alloc and free tracks a double-free report prints carry caller= and cpu=."""
    texts = []
    for form in ("arg", "block"):
        with _machine(backend, slub_debug="FZPU") as m:
            a, _ = _call(m, form, "kmalloc", 100, "GFP_KERNEL", cpu=2, caller="alloc_site.c:7")
            _call(m, form, "kfree", a, cpu=3, caller="free_site.c:9")
            r = _call(m, form, "kfree", a, cpu=1, caller="free_site.c:9")
            assert r[1][0] == "DoubleFree"
            texts.append(m.dmesg())
    assert texts[0] == texts[1]
    report = "\n".join(texts[0])
    assert "alloc_site.c:7" in report and "free_site.c:9" in report
    assert "cpu=2" in report and "cpu=3" in report and "CPU: 1 " in report


BAD_CPUS = [-1, CPUS, 1 << 40, 1 << 70, True, False, "1", 1.0, None.__class__]


@pytest.mark.parametrize("cpu", BAD_CPUS, ids=repr)
def test_bad_cpu_changes_nothing(backend, cpu):
    with _machine(backend) as m:
        cache = m.kmem_cache_create("bad_cpu", 64)
        live = m.kmalloc(64, "GFP_KERNEL")
        obj = m.kmem_cache_alloc(cache, "GFP_KERNEL")
        pfn = m.alloc_pages("GFP_KERNEL", 0)
        m.kmalloc(64, "GFP_KERNEL", caller="known.c:1")
        before = _state(m)
        calls = [
            lambda: m.kmalloc(64, "GFP_KERNEL", cpu=cpu),
            lambda: m.kmalloc(64, "GFP_KERNEL", cpu=cpu, caller="known.c:1"),
            lambda: m.kfree(live, cpu=cpu),
            lambda: m.kmem_cache_alloc(cache, "GFP_KERNEL", cpu=cpu),
            lambda: m.kmem_cache_free(cache, obj, cpu=cpu),
            lambda: m.alloc_pages("GFP_KERNEL", 0, cpu=cpu),
            lambda: m.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", 0, cpu=cpu),
            lambda: m.free_pages(pfn, 0, cpu=cpu),
        ]
        for call in calls:
            with pytest.raises(InvalidArgument, match="cpu must be an int"):
                call()
        assert _state(m) == before
        m.kfree(live, cpu=CPUS - 1)
        m.kmem_cache_free(cache, obj, cpu=0)
        m.free_pages(pfn, 0, cpu=1)
        m.check()


def test_core_entries_refuse_bad_cpu(backend):
    """pa_*_on: a cpu outside 0..cpus-1 is EINVAL before the operation (no tick, no event)."""
    with _machine(backend) as m:
        core, h = m._core, m._core.handle
        ticks = core.vm_info()["ticks"]
        cid = m.kmem_cache_create("core_on", 32)._id
        ticks = core.vm_info()["ticks"]
        for cpu in (-1, CPUS, 1 << 62):
            assert core.hot_kmalloc_on(h, 64, 0xcc0, 0, cpu) == _abi.EINVAL
            assert core.hot_kfree_on(h, 0, 0, cpu) == _abi.EINVAL
            assert core.hot_kmem_cache_alloc_on(h, cid, 0xcc0, 0, cpu) == _abi.EINVAL
            assert core.hot_kmem_cache_free_on(h, cid, 0, 0, cpu) == _abi.EINVAL
            assert core.hot_alloc_pages_on(h, 0xcc0, 0, cpu) == _abi.EINVAL
            assert core.hot_free_pages_on(h, 0, 0, cpu) == _abi.EINVAL
        with pytest.raises(TypeError):
            core.hot_kmalloc_on(h, 64, 0xcc0, 0, "1")
        with pytest.raises(OverflowError):
            core.hot_alloc_pages_on(h, 0xcc0, 0, 1 << 64)
        assert core.vm_info()["ticks"] == ticks
        assert core.vm_info()["cpu"] == 0
        phys = core.hot_kmalloc_on(h, 64, 0xcc0, 0, 3)
        assert phys >= 0 and core.vm_info()["cpu"] == 0
        assert core.hot_kfree_on(h, phys, 0, 2) == 0
        pfn = core.hot_alloc_pages_on(h, 0xcc0, 2, 1)
        assert core.hot_free_pages_on(h, pfn, 2, 3) == 0
        assert core.hot_free_pages_on(h, pfn, 2, 3) == _abi.EDOUBLEFREE
        m.check()


def test_closed_machine(backend):
    m = _machine(backend)
    kmalloc, alloc_pages = m.kmalloc, m.alloc_pages
    m.close()
    for call in (lambda: kmalloc(8, "GFP_KERNEL", cpu=1), lambda: alloc_pages("GFP_KERNEL", 0, cpu=1),
                 lambda: m.kfree(0x1000, cpu=1), lambda: m.free_pages(1, 0, cpu=1)):
        with pytest.raises(pyalloc.MachineClosed):
            call()


def test_new_caller_strings_and_bad_callers(backend):
    """caller= strings become caller ids once (cached); a non-string is InvalidArgument."""
    with _machine(backend, slub_debug="U") as m:
        addrs = [m.kmalloc(32, "GFP_KERNEL", cpu=i % CPUS, caller=f"c{i % 3}.c:1") for i in range(12)]
        assert m._caller_names[-3:] == ["c0.c:1", "c1.c:1", "c2.c:1"]
        before = _state(m)
        for bad in (5, b"x.c:1", ["x"]):
            with pytest.raises(InvalidArgument, match="caller must be a string"):
                m.kmalloc(32, "GFP_KERNEL", cpu=1, caller=bad)
        assert _state(m) == before
        for a in addrs:
            m.kfree(a, cpu=2, caller="c1.c:1")
        m.check()


def test_threads_pinned_to_cpus(backend):
    """Threads each naming their own CPU on every call: no object lost or doubled, the machine's
    own CPU untouched, and each CPU's frees land where on_cpu() would put them."""
    n = 400 if backend == "c" else 60
    with _machine(backend) as m:
        cache = m.kmem_cache_create("threads_on", 96)
        errors = []

        def work(cpu):
            try:
                for i in range(n):
                    a = m.kmalloc(64 + i % 200, "GFP_KERNEL", cpu=cpu)
                    o = m.kmem_cache_alloc(cache, "GFP_KERNEL", cpu=cpu, caller="t.c:1")
                    p = m.alloc_pages("GFP_KERNEL", i % 2, cpu=cpu)
                    m.free_pages(p, i % 2, cpu=cpu)
                    m.kmem_cache_free(cache, o, cpu=(cpu + 1) % CPUS)
                    m.kfree(a, cpu=cpu)
            except Exception as exc:        # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c,)) for c in range(CPUS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert m._core.vm_info()["cpu"] == 0
        assert len(cache) == 0
        m.check()


def test_free_errors_raise_the_same(backend):
    with _machine(backend) as m:
        a = m.kmalloc(64, "GFP_KERNEL", cpu=1)
        m.kfree(a, cpu=2)
        with pytest.raises(DoubleFree):
            m.kfree(a, cpu=3)
        p = m.alloc_pages("GFP_KERNEL", 1, cpu=1)
        with pytest.raises(InvalidFree):
            m.free_pages(p, 0, cpu=2)
        m.free_pages(p, 1, cpu=2)
        with pytest.raises(InvalidArgument):
            m.free_pages(p, 11, cpu=2)
        with pytest.raises(InvalidArgument):
            m.alloc_pages("GFP_KERNEL", -1, cpu=2)
        with pytest.raises(TypeError):
            m.alloc_pages("GFP_KERNEL", "1", cpu=2)
        assert m._core.vm_info()["cpu"] == 0
        m.check()
