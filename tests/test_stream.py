"""Operation streams: m.run(stream) against the per-call API, which stays the reference."""

import random

import pytest

import pyalloc
from pyalloc import DoubleFree, InvalidArgument, InvalidFree, OutOfMemory

VIEWS = ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat", "slabinfo", "vmallocinfo")
SIZES = [0, 8, 16, 32, 64, 96, 100, 128, 192, 256, 512, 1024, 2048, 4096, 5000, 8192, 9000, 40000]
GFPS = ["GFP_KERNEL", "GFP_KERNEL|__GFP_ZERO", "GFP_KERNEL_ACCOUNT", "GFP_ATOMIC", "GFP_NOWAIT",
        "GFP_KERNEL|__GFP_RECLAIMABLE", "GFP_KERNEL|__GFP_NOWARN"]


def workload(seed, n, caches=("stream_a", "stream_b"), python_ops=True):
    """Abstract ops (name, args...) over indices of earlier ops, for both paths to apply."""
    rnd = random.Random(seed)
    ops, live = [], []
    for i in range(n):
        r = rnd.random()
        if live and r < 0.42:
            j = live.pop(rnd.randrange(len(live)))
            kind = ops[j][0]
            if kind in ("kmalloc", "krealloc"):
                ops.append(("kfree", j))
            elif kind == "cache_alloc":
                ops.append(("cache_free", ops[j][1], j))
            elif kind == "alloc_pages":
                ops.append(("free_pages", j, ops[j][2]))
            else:
                ops.append(("vfree", j))
        elif python_ops and live and r < 0.47 and ops[live[-1]][0] in ("kmalloc", "krealloc"):
            j = live.pop()
            ops.append(("krealloc", j, rnd.choice(SIZES[1:12]), rnd.choice(GFPS[:2])))
            live.append(len(ops) - 1)
        elif r < 0.50:
            ops.append(("kfree_null",))
        elif r < 0.75:
            ops.append(("kmalloc", rnd.choice(SIZES), rnd.choice(GFPS), rnd.choice([None, 0, 1]),
                        f"site{rnd.randrange(4)}"))
            live.append(len(ops) - 1)
        elif r < 0.85:
            ops.append(("cache_alloc", rnd.choice(caches), rnd.choice(GFPS[:3])))
            live.append(len(ops) - 1)
        elif r < 0.97:
            ops.append(("alloc_pages", rnd.choice(GFPS[:5] + ["GFP_HIGHUSER_MOVABLE"]), rnd.choice([0, 0, 1, 3])))
            live.append(len(ops) - 1)
        elif python_ops:
            ops.append(("vmalloc", rnd.choice([100, 5000, 40000])))
            live.append(len(ops) - 1)
    return ops


CACHE_SIZES = {"stream_a": 40, "stream_b": 700}


def as_stream(ops):
    s = pyalloc.Stream()
    for name in CACHE_SIZES:
        s.cache(name, CACHE_SIZES[name])
    for op in ops:
        kind = op[0]
        if kind == "kmalloc":
            s.kmalloc(op[1], op[2], cpu=op[3], caller=op[4])
        elif kind == "kfree":
            s.kfree(op[1], caller="free_site")
        elif kind == "kfree_null":
            s.kfree(None, caller="free_site")
        elif kind == "krealloc":
            s.krealloc(op[1], op[2], op[3])
        elif kind == "cache_alloc":
            s.kmem_cache_alloc(op[1], op[2], caller="cache_site")
        elif kind == "cache_free":
            s.kmem_cache_free(op[1], op[2], caller="cache_site")
        elif kind == "alloc_pages":
            s.alloc_pages(op[1], op[2])
        elif kind == "free_pages":
            s.free_pages(op[1], op[2])
        elif kind == "vmalloc":
            s.vmalloc(op[1], caller="stream_test+0x0/0x1")
        else:
            s.vfree(op[1])
    return s


def per_call(m, ops):
    caches = {name: m.kmem_cache_create(name, size) for name, size in CACHE_SIZES.items()}
    out = []
    for op in ops:
        kind = op[0]
        r = None
        if kind == "kmalloc":
            r = m.kmalloc(op[1], op[2], cpu=op[3], caller=op[4])
        elif kind == "kfree":
            m.kfree(out[op[1]], caller="free_site")
        elif kind == "kfree_null":
            m.kfree(None, caller="free_site")
        elif kind == "krealloc":
            r = m.krealloc(out[op[1]], op[2], op[3])
        elif kind == "cache_alloc":
            r = m.kmem_cache_alloc(caches[op[1]], op[2], caller="cache_site")
        elif kind == "cache_free":
            m.kmem_cache_free(caches[op[1]], out[op[2]], caller="cache_site")
        elif kind == "alloc_pages":
            r = m.alloc_pages(op[1], op[2])
        elif kind == "free_pages":
            m.free_pages(out[op[1]], op[2])
        elif kind == "vmalloc":
            r = m.vmalloc(op[1], caller="stream_test+0x0/0x1")
        else:
            m.vfree(out[op[1]])
        out.append(r)
    return out


def same_machines(a, b):
    for view in VIEWS:
        assert a.proc(view) == b.proc(view), view
    assert a.dmesg() == b.dmesg()
    a.check()
    b.check()


@pytest.mark.parametrize("mem,seed,n", [("64M", 1, 3000), ("8M", 2, 2500)])
def test_stream_matches_the_per_call_path(make_machine, mem, seed, n):
    """Addresses, /proc text and dmesg (allocation failures included, on the 8M machine) agree."""
    ops = workload(seed, n)
    a, b = make_machine(mem=mem), make_machine(mem=mem)
    expected = per_call(a, ops)
    result = b.run(as_stream(ops))
    assert result.addresses() == expected
    assert None in expected or mem == "64M"
    same_machines(a, b)


def test_stream_traces_like_the_per_call_path(make_machine, tmp_path):
    """With tracing on, both paths write the same text, timestamps and call sites included."""
    ops = workload(5, 1500, python_ops=False)
    a = make_machine(mem="64M", trace=tmp_path / "a.txt")
    b = make_machine(mem="64M", trace=tmp_path / "b.txt")
    per_call(a, ops)
    b.run(as_stream(ops))
    a.close()
    b.close()
    text = (tmp_path / "a.txt").read_text()
    assert text == (tmp_path / "b.txt").read_text()
    assert text.count("\n") > len(ops)
    assert "kfree: call_site=free_site ptr=0000000000000000" in text


def test_stream_builder_api():
    s = pyalloc.Stream()
    h = s.kmalloc(64, "GFP_KERNEL")
    assert h == 0 and len(s) == 1
    z = s.kzalloc(10, pyalloc.GFP.KERNEL)
    assert s.op(z)["gfp"] == 0xcc0 | 0x100
    s.kfree(h)
    with pytest.raises(InvalidArgument):
        s.kfree(99)                 # not an earlier op
    with pytest.raises(InvalidArgument):
        s.kfree(2)                  # a kfree allocated nothing
    p = s.alloc_pages("GFP_KERNEL", 1)
    with pytest.raises(InvalidArgument):
        s.kfree(p)                  # pages are freed with free_pages
    with pytest.raises(InvalidArgument):
        s.free_pages(None)
    with pytest.raises(InvalidArgument):
        s.kmem_cache_alloc("nosuch", "GFP_KERNEL")     # size needed the first time
    with pytest.raises(TypeError):
        s.kmalloc("8", "GFP_KERNEL")
    with pytest.raises(InvalidArgument):
        s.kmalloc(-1, "GFP_KERNEL")
    with pytest.raises(pyalloc.GFPError):
        s.kmalloc(8, "GFP_BOGUS")
    with pytest.raises(InvalidArgument):
        s.kmalloc(8, "GFP_KERNEL", cpu=-1)
    assert len(s) == 4
    assert s.op(0) == {"kind": "kmalloc", "cpu": None, "gfp": 0xcc0, "caller": None, "cache": None,
                       "handle": None, "arg": 64}


def test_double_free_raises_with_its_index(make_machine):
    s = pyalloc.Stream()
    a = s.kmalloc(64, "GFP_KERNEL")
    b = s.kmalloc(64, "GFP_KERNEL")
    s.kfree(a)
    s.kfree(a)
    s.kfree(b)
    m, ref = make_machine(mem="16M"), make_machine(mem="16M")
    with pytest.raises(DoubleFree) as info:
        m.run(s)
    assert info.value.index == 3
    assert "stream op 3 (kfree)" in str(info.value)
    result = info.value.result
    assert result.state[b] == 1 and result.pos == 3
    # the machine is as after op 2, as the per-call path leaves it
    x = ref.kmalloc(64, "GFP_KERNEL")
    ref.kmalloc(64, "GFP_KERNEL")
    ref.kfree(x)
    for view in VIEWS:
        assert m.proc(view) == ref.proc(view)
    m.check()
    m.run(s, start=4, result=result)        # resume after the bad op
    assert result.state[b] == 2
    m.check()


def test_record_mode_goes_on(machine):
    s = pyalloc.Stream()
    p = s.alloc_pages("GFP_KERNEL", 2)
    s.free_pages(p, 1)              # wrong order: InvalidFree
    s.free_pages(p, 2)
    s.free_pages(p, 2)              # the handle was freed: DoubleFree
    big = s.alloc_pages("GFP_KERNEL", 11)   # beyond MAX_PAGE_ORDER: NULL and a warning
    r = machine.run(s, errors="record")
    assert [(i, type(e)) for i, e in r.errors] == [(1, InvalidFree), (3, DoubleFree)]
    assert r.status(1) == pyalloc.errors.EINVALFREE and r.status(2) == 0
    assert r[big] is None
    assert any("__alloc_pages" in line for line in machine.dmesg())
    machine.check()


def test_bad_input_never_changes_the_machine(machine):
    s = pyalloc.Stream()
    s.kmalloc(100, "GFP_KERNEL", cpu=5)
    with pytest.raises(InvalidArgument):
        machine.run(s)              # the machine has 2 CPUs: refused before anything runs
    s = pyalloc.Stream()
    s.kmalloc(100, "GFP_KERNEL")
    with pytest.raises(InvalidArgument):
        machine.run(s, errors="ignore")
    with pytest.raises(InvalidArgument):
        machine.run(s, start=5)
    with pytest.raises(InvalidArgument):
        machine.run([1, 2])
    # a hand-made buffer with a bad handle, cache index and kind: documented errors, no crash
    s._ops[2] = 7                   # op 0 (a kmalloc) now "frees" handle 7
    s._ops[0] = (s._ops[0] & ~0xffff) | 2
    for kind, word1, handle, exc in ((2, 0, 7, InvalidArgument), (5, 9 << 32, 0, InvalidArgument),
                                     (77, 0, 0, InvalidArgument), (1, 5, 0, InvalidArgument)):
        s._ops[0] = (s._ops[0] & ~0xffff) | kind
        s._ops[1] = word1
        s._ops[2] = handle
        before = [machine.proc(v) for v in VIEWS]
        with pytest.raises(exc):
            machine.run(s)
        assert [machine.proc(v) for v in VIEWS] == before
        machine.check()


def test_slices_resume_and_krealloc_copies(machine):
    s = pyalloc.Stream()
    a = s.kmalloc(24, "GFP_KERNEL")
    b = s.krealloc(a, 20, "GFP_KERNEL")          # fits: same object
    c = s.krealloc(b, 3000, "GFP_KERNEL")        # moves, copies ksize bytes
    s.kfree(c)
    r = machine.run(s, end=1)
    assert r.pos == 1
    machine.write(r[a], b"0123456789abcdefghijklmn")
    machine.run(s, start=1, end=3, result=r)
    assert r[b] == r[a] and r[c] != r[a]
    assert machine.read(r[c], 24) == b"0123456789abcdefghijklmn"
    machine.run(s, start=3, result=r)
    assert r.state[c] == 2
    machine.check()


def test_deferred_ops_take_the_per_call_path(make_machine):
    """vmalloc, __GFP_NOFAIL and masks the slab fixes up run through Python, with the same dmesg."""
    ops = [("kmalloc", 64, "GFP_KERNEL|__GFP_HIGHMEM", None, "x"), ("vmalloc", 10000),
           ("alloc_pages", "GFP_KERNEL|__GFP_NOFAIL", 0), ("vfree", 1), ("kfree", 0), ("free_pages", 2, 0)]
    a, b = make_machine(mem="16M"), make_machine(mem="16M")
    assert b.run(as_stream(ops)).addresses() == per_call(a, ops)
    assert any("Fix your code!" in line for line in b.dmesg())
    same_machines(a, b)


def test_nofail_that_cannot_be_met_raises_out_of_memory(make_machine):
    m = make_machine(mem="4M")
    s = pyalloc.Stream()
    for _ in range(2000):
        s.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", 0)
    with pytest.raises(OutOfMemory) as info:
        m.run(s)
    assert info.value.index > 0
    m.check()


def test_closed_machine(make_machine):
    m = make_machine(mem="16M")
    m.close()
    with pytest.raises(pyalloc.MachineClosed):
        m.run(pyalloc.Stream())


def test_readme_stream_example_runs(backend, monkeypatch, capsys):
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Operation streams"):]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setenv("PYALLOC_BACKEND", backend)
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("0xffff888") and "[(4, 'DoubleFree')]" in out[0]
    assert ": mm_page_free: page=ffffea" in out[1] and out[1].endswith("order=2")


def test_vzalloc_in_a_stream_is_zeroed(machine):
    s = pyalloc.Stream()
    v = s.vzalloc(3 * 4096 + 10, caller="vz+0x0/0x1")
    r = machine.run(s)
    assert machine.read(r[v], 3 * 4096 + 10) == bytes(3 * 4096 + 10)
    assert "vz+0x0/0x1" in machine.proc("vmallocinfo")
    machine.vfree(r[v])


def test_deferred_krealloc_of_a_zero_size_handle(make_machine):
    """krealloc(ZERO_SIZE_PTR) with a mask the slab fixes up: the per-call path, as krealloc itself."""
    ops = [("kmalloc", 0, "GFP_KERNEL", None, "z"), ("krealloc", 0, 100, "GFP_KERNEL|__GFP_HIGHMEM"),
           ("kfree", 1)]
    a, b = make_machine(mem="16M"), make_machine(mem="16M")
    assert b.run(as_stream(ops)).addresses() == per_call(a, ops)
    same_machines(a, b)


def test_nofail_failure_is_recorded_as_enomem(make_machine):
    m = make_machine(mem="4M")
    s = pyalloc.Stream()
    for _ in range(1100):
        s.alloc_pages("GFP_KERNEL|__GFP_NOFAIL", 0)
    r = m.run(s, errors="record")
    assert r.errors and all(isinstance(e, OutOfMemory) for _, e in r.errors)
    assert all(r.status(i) == pyalloc.errors.ENOMEM for i, _ in r.errors)
    m.check()


def test_trace_drains_midway_without_changing_the_text(make_machine, tmp_path, monkeypatch):
    import pyalloc.machine.stream
    ops = workload(9, 600, python_ops=False)
    a = make_machine(mem="64M", trace=tmp_path / "a.txt")
    a.run(as_stream(ops))
    monkeypatch.setattr(pyalloc.machine.stream, "TRACE_LIMIT", 7)    # the loop pauses every 7 records
    b = make_machine(mem="64M", trace=tmp_path / "b.txt")
    b.run(as_stream(ops))
    a.close()
    b.close()
    assert (tmp_path / "a.txt").read_text() == (tmp_path / "b.txt").read_text()


def test_record_layout_matches_struct_pa_op():
    """Stream writes four 64-bit words per op; the C core reads them as struct pa_op."""
    core = pytest.importorskip("pyalloc._core")
    ffi = core.ffi
    assert ffi.sizeof("struct pa_op") == 32
    assert [ffi.offsetof("struct pa_op", f) for f in ("kind", "cpu", "gfp", "caller", "cache", "handle", "arg")] == \
        [0, 2, 4, 8, 12, 16, 24]
    s = pyalloc.Stream()
    s.cache("layout", 40)
    h = s.kmem_cache_alloc("layout", 0x12345678 & ~0xf, cpu=3, caller="c")
    s.kmem_cache_free("layout", h, caller="c")
    op = ffi.from_buffer("struct pa_op[]", s._ops)[1]
    assert (op.kind, op.cpu, op.gfp, op.caller, op.cache, op.handle, op.arg) == (5, 0xffff, 0, 1, 0, 0, 0)
    op = ffi.from_buffer("struct pa_op[]", s._ops)[0]
    assert (op.kind, op.cpu, op.gfp, op.handle) == (4, 3, 0x12345670, -1)


# -- processes and files in a stream (the reclaim issue's operations) -------------------------

def _pressure_stream():
    s = pyalloc.Stream()
    db = s.spawn("postgres")
    s.touch(db, 5000)
    objs = [s.kmalloc(size, "GFP_KERNEL") for size in (64, 512, 4096, 20000)]
    s.read_file("/var/lib/data", 3000)
    s.write_file("/var/log/syslog", 800)
    hog = s.spawn("hog")
    s.touch(hog, 9000)                   # more than is left: reclaim, swap, then the OOM killer
    s.touch(db, 200)
    for h in objs:
        s.kfree(h)
    s.sync()
    s.drop_caches()
    s.touch(hog, 10)                     # the OOM killer took hog: an error, recorded
    s.exit(db)
    return s


def _per_call_pressure(m):
    out = []
    db = m.spawn("postgres")
    out += [db, m.touch(db, 5000)]
    objs = [m.kmalloc(size, "GFP_KERNEL") for size in (64, 512, 4096, 20000)]
    out += objs
    out += [m.read_file("/var/lib/data", 3000), m.write_file("/var/log/syslog", 800)]
    hog = m.spawn("hog")
    out += [hog, m.touch(hog, 9000), m.touch(db, 200)]
    for a in objs:
        m.kfree(a)
    m.sync()
    out.append(m.drop_caches())
    return out


def test_stream_process_and_file_ops_match_the_per_call_path(backend):
    kw = dict(mem="32M", swap="16M", backend=backend)
    with pyalloc.Machine(**kw) as a, pyalloc.Machine(**kw) as b:
        s = _pressure_stream()
        r = a.run(s, errors="record")
        expect = _per_call_pressure(b)
        got = [r[i] for i in range(len(s)) if s.op(i)["kind"] not in ("kfree", "sync", "exit")][:len(expect)]
        assert got == expect
        assert [(i, type(e).__name__) for i, e in r.errors] == [(len(s) - 2, "InvalidArgument")]
        assert a.reclaim_counters()["oom_kill"] == 1
        b.exit(expect[0])
        for view in ("meminfo", "vmstat", "buddyinfo", "slabinfo", "pressure/memory"):
            assert a.proc(view) == b.proc(view), view
        assert a.dmesg() == b.dmesg()
        a.check()


def test_stream_process_ops_agree_on_both_backends():
    pytest.importorskip("pyalloc._core")
    kw = dict(mem="32M", swap="16M")
    with pyalloc.Machine(backend="c", **kw) as a, pyalloc.Machine(backend="model", **kw) as b:
        s = _pressure_stream()
        ra, rb = a.run(s, errors="record"), b.run(s, errors="record")
        assert list(ra.raw) == list(rb.raw) and ra.state == rb.state
        assert a.dmesg() == b.dmesg() and a.proc("vmstat") == b.proc("vmstat")


def test_stream_process_ops_bad_input():
    s = pyalloc.Stream()
    k = s.kmalloc(8, "GFP_KERNEL")
    with pytest.raises(pyalloc.InvalidArgument):
        s.touch(k, 1)                    # a kmalloc handle is not a process
    with pytest.raises(TypeError):
        s.spawn(3)
    with pytest.raises(TypeError):
        s.read_file(b"/x", 1)
    with pytest.raises(pyalloc.InvalidArgument):
        s.write_file("/x", -1)
    with pytest.raises(pyalloc.InvalidArgument):
        s.exit(None)
