"""m.run() against hostile streams and results: every buffer and index is refused before the
first op, with the same exception and text on both backends, and the C loop refuses lying
lengths by itself (called directly, as any cffi user may)."""

from array import array

import pytest

import pyalloc
import pyalloc.machine.stream as stream_mod
from pyalloc import InvalidArgument
from pyalloc.model import stream as model_stream

VIEWS = ("buddyinfo", "slabinfo", "meminfo", "vmallocinfo")
MASK64 = (1 << 64) - 1
OP_CPU_CURRENT = 0xffff


def views(m):
    return [m.proc(v) for v in VIEWS]


def base_stream():
    """Op 0 allocates, so a stream refused before its first op leaves a visible trace if it ran."""
    s = pyalloc.Stream()
    a = s.kmalloc(64, "GFP_KERNEL")
    s.cache("hostile_c", 40)
    s.spawn("proc")
    s.kmalloc(32, "GFP_KERNEL")
    s.kfree(a)
    return s


def put(s, op, kind=None, cpu=None, gfp=None, caller=None, cache=None, handle=None, arg=None):
    """Overwrite fields of record op by hand (struct pa_op: four 64-bit words)."""
    w = s._ops
    w0, w1 = w[4 * op], w[4 * op + 1]
    if kind is not None:
        w0 = (w0 & ~0xffff) | kind
    if cpu is not None:
        w0 = (w0 & ~(0xffff << 16)) | cpu << 16
    if gfp is not None:
        w0 = (w0 & 0xffffffff) | gfp << 32
    if caller is not None:
        w1 = (w1 & ~0xffffffff) | caller
    if cache is not None:
        w1 = (w1 & 0xffffffff) | (cache & 0xffffffff) << 32
    w[4 * op], w[4 * op + 1] = w0, w1
    if handle is not None:
        w[4 * op + 2] = handle & MASK64
    if arg is not None:
        w[4 * op + 3] = arg & MASK64
    return s


KMALLOC, KFREE, KMEM_CACHE_ALLOC, ALLOC_PAGES, FREE_PAGES, VMALLOC, SPAWN = 1, 2, 4, 6, 7, 8, 32
NOFAIL = 0x8000 | 0xcc0


# (name, how to spoil record 3 of base_stream (or add one), the words the message must hold)
BAD_RECORDS = [
    ("failing kmalloc with a handle of 10**6",
     lambda s: put(s, 3, kind=KMALLOC, handle=10 ** 6, arg=1 << 40), ("stream op 3 (kmalloc)", "handle 1000000")),
    ("kfree of handle 10**6", lambda s: put(s, 3, handle=10 ** 6), ("stream op 3 (kfree)", "handle 1000000")),
    ("kfree of a later op", lambda s: put(s, 3, handle=3), ("stream op 3 (kfree)", "handle 3")),
    ("kfree of a negative handle", lambda s: put(s, 3, handle=-7), ("stream op 3 (kfree)", "handle -7")),
    ("NOFAIL kmem_cache_alloc, cache 5",
     lambda s: put(s, 3, kind=KMEM_CACHE_ALLOC, gfp=NOFAIL, cache=5, handle=-1),
     ("stream op 3 (kmem_cache_alloc)", "cache index 5")),
    ("NOFAIL kmem_cache_alloc, cache -1",
     lambda s: put(s, 3, kind=KMEM_CACHE_ALLOC, gfp=NOFAIL, cache=-1, handle=-1),
     ("stream op 3 (kmem_cache_alloc)", "cache index -1")),
    ("spawn with name index 9", lambda s: put(s, 3, kind=SPAWN, cache=9, handle=-1),
     ("stream op 3 (spawn)", "name index 9")),
    ("caller index past the callers", lambda s: put(s, 3, caller=4), ("stream op 3 (kfree)", "caller index 4")),
    ("vmalloc (deferred) with a bad caller", lambda s: put(s, 3, kind=VMALLOC, caller=77, handle=-1, arg=4096),
     ("stream op 3 (vmalloc)", "caller index 77")),
    ("unknown kind", lambda s: put(s, 3, kind=999), ("stream op 3", "kind 999")),
    ("free_pages of a kmalloc", lambda s: put(s, 3, kind=FREE_PAGES, handle=0),
     ("stream op 3 (free_pages)", "handle 0")),
    ("free_pages of NULL", lambda s: put(s, 3, kind=FREE_PAGES, handle=-1), ("stream op 3 (free_pages)", "handle -1")),
    ("alloc_pages with a cache", lambda s: put(s, 3, kind=ALLOC_PAGES, cache=0, handle=-1),
     ("stream op 3 (alloc_pages)", "cache field 0")),
    ("cpu past the machine's", lambda s: put(s, 3, cpu=7), ("stream op 3 (kfree)", "cpu 7")),
]


def outcome(backend, spoil):
    """(exception class, text) of running the spoiled stream; the machine is checked unchanged."""
    with pyalloc.Machine(mem="32M", cpus=2, backend=backend) as m:
        before = views(m)
        s = spoil(base_stream())
        with pytest.raises(InvalidArgument) as info:
            m.run(s, errors="record")
        assert views(m) == before       # refused before op 0 (a kmalloc) ran, and no cache made
        m.check()
        return type(info.value), str(info.value), getattr(info.value, "index", None)


@pytest.mark.parametrize("name,spoil,words", BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_bad_record_refused_before_the_first_op(backend, name, spoil, words):
    cls, text, index = outcome(backend, spoil)
    assert cls is InvalidArgument and index == 3
    for w in words:
        assert w in text, (name, text)


@pytest.mark.parametrize("name,spoil,words", BAD_RECORDS, ids=[b[0] for b in BAD_RECORDS])
def test_bad_record_same_on_both_backends(name, spoil, words):
    pytest.importorskip("pyalloc._cbackend")
    assert outcome("c", spoil) == outcome("model", spoil)


def bad_results(s):
    n = len(s)
    other = pyalloc.Stream()
    other.kmalloc(8, "GFP_KERNEL")
    cases = []
    for raw, state in ((array("b", bytes(n)), bytearray(n)),          # 1-byte items: 8 x too short
                       (array("q"), bytearray(n)),                     # too few
                       (array("q", bytes(8 * (n + 3))), bytearray(n)),
                       (array("Q", bytes(8 * n)), bytearray(n)),
                       ([0] * n, bytearray(n)),
                       (array("q", bytes(8 * n)), bytearray(n + 1)),  # long state
                       (array("q", bytes(8 * n)), bytearray(n - 1)),  # short state
                       (array("q", bytes(8 * n)), [0] * n),
                       (array("q", bytes(8 * n)), array("B", bytes(n))[:1])):
        r = pyalloc.StreamResult(s)
        r.raw, r.state = raw, state
        cases.append(r)
    cases.append(pyalloc.StreamResult(other))
    cases.append("not a result")
    return cases


def test_hostile_result_arrays_refused(backend):
    s = pyalloc.Stream()
    s.kmalloc(64, "GFP_KERNEL")                 # one op: a 1-byte raw has as many items as ops
    texts = []
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        before = views(m)
        for r in bad_results(s):
            with pytest.raises(InvalidArgument) as info:
                m.run(s, result=r)
            texts.append(str(info.value))
            assert views(m) == before
        m.check()
        assert m.run(s).pos == 1                # a good result still runs
    assert "result.raw must be an array('q') of 1 entries, one per op" in texts
    assert "result.state must be a bytearray of 1 entries, one per op" in texts


def test_hostile_stream_tables_refused(backend):
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        before = views(m)
        for spoil in (lambda s: s.callers.append(5), lambda s: setattr(s, "callers", ["x"]),
                      lambda s: s.caches.append(("c", "big", 0, 0)), lambda s: s.names.append(None),
                      lambda s: setattr(s, "_rec", [1, 2, 3, 4]), lambda s: s._ops.append(1)):
            s = base_stream()
            spoil(s)
            with pytest.raises(InvalidArgument, match="run\\(\\)"):
                m.run(s)
            assert views(m) == before
        m.check()


def test_cache_that_cannot_be_made_leaves_no_cache_behind(backend):
    s = pyalloc.Stream()
    s.kmem_cache_alloc("good_one", "GFP_KERNEL", size=48)
    s.caches.append(("bad_one", 1 << 40, 0, 0))           # bigger than any cache may be
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        before = m.proc("slabinfo")
        with pytest.raises(InvalidArgument):
            m.run(s)
        assert m.proc("slabinfo") == before and "good_one" not in before
        m.check()


def test_records_checked_once_and_again_after_an_edit(backend, monkeypatch):
    calls = []
    real = stream_mod.check_records

    def spy(rec, lo, hi, *sizes):
        calls.append((lo, hi))
        return real(rec, lo, hi, *sizes)

    monkeypatch.setattr(stream_mod, "check_records", spy)
    s = pyalloc.Stream()                        # no op stops the loop (a stop re-checks its own record)
    a = s.kmalloc(64, "GFP_KERNEL")
    s.kmalloc(32, "GFP_KERNEL")
    s.kfree(a)
    s.kmalloc(16, "GFP_KERNEL")
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        m.run(s)
        s.kmalloc(10, "GFP_KERNEL")
        m.run(s)
        assert calls == []                      # built by the builder: checked as it was built
        s.buffer                                # whoever holds the buffer may have written it
        m.run(s)
        assert calls == [(0, 5)]
        m.run(s)
        s.kmalloc(20, "GFP_KERNEL")             # appended after a check: only it is new
        s._rec.append(0)                        # (what an edit of the private array looks like)
        s._rec.pop()
        m.run(s)
        assert calls == [(0, 5)]
        s._ops.append(0)
        s._ops.pop()
        m.run(s)
        assert calls == [(0, 5), (0, 6)]
        put(s, 3, handle=10 ** 6)               # an edit through _ops is seen too
        with pytest.raises(InvalidArgument, match="stream op 3 .*handle 1000000"):
            m.run(s)
        m.check()


def test_builder_records_pass_the_run_check():
    """The builder marks what it builds as checked: that must be what check_records says."""
    s = pyalloc.Stream()
    a = s.kmalloc(64, "GFP_KERNEL", cpu=1, caller="x")
    b = s.krealloc(a, 128, "GFP_KERNEL")
    c = s.kmem_cache_alloc("built_c", "GFP_KERNEL", size=40, caller="y")
    s.kmem_cache_free("built_c", c)
    s.kmem_cache_free("built_c", None)
    s.kfree(b)
    s.kfree(None)
    s.krealloc(None, 10, "GFP_KERNEL")
    p = s.alloc_pages("GFP_KERNEL", 1, cpu=0)
    s.free_pages(p, 1)
    v = s.vmalloc(5000)
    s.vfree(v)
    s.vfree(None)
    pid = s.spawn("built")
    s.touch(pid, 3)
    s.read_file("/f", 2)
    s.write_file("/g", 2)
    s.sync()
    s.drop_caches()
    s.exit(pid)
    assert s._checked == len(s) == 20 and s._checked_cpu == (1, 0)
    assert stream_mod.check_records(s._rec, 0, len(s), len(s.callers), len(s.caches), len(s.names)) == (1, 0)


def test_edit_through_a_buffer_held_across_runs_is_caught_at_the_op(backend):
    """The up-front check cannot see writes through a buffer taken before it ran: the core and
    the stop path check the record then, with a documented error and no crash."""
    s = pyalloc.Stream()
    a = s.kmalloc(64, "GFP_KERNEL")
    s.kfree(a)
    s.kmem_cache_alloc("held_c", "GFP_KERNEL", size=40)
    words = s.buffer.cast("Q")
    with pyalloc.Machine(mem="32M", backend=backend) as m:
        m.run(s)
        words[4 * 1 + 2] = 10 ** 6              # op 1 (kfree) now names a handle that is not there
        with pytest.raises(InvalidArgument, match="stream op 1 \\(kfree\\): handle 1000000"):
            m.run(s)
        words[4 * 1 + 2] = 0
        words[4 * 2] |= NOFAIL << 32            # op 2: a NOFAIL alloc (deferred) from cache -1
        words[4 * 2 + 1] |= 0xffffffff << 32
        with pytest.raises(InvalidArgument, match="stream op 2 \\(kmem_cache_alloc\\): cache index -1"):
            m.run(s)
        m.check()


# -- the loop itself, called directly with lying lengths ----------------------------------------

def c_run(m, s, results, state, nr_ops=None, nr_results=None, nr_state=None, callers=(0,), nr_callers=None,
          pos=0):
    from pyalloc._core import ffi, lib
    r = ffi.new("struct pa_run *")
    keep = (ffi.from_buffer("struct pa_op[]", s._ops), ffi.from_buffer("int64_t[]", results),
            ffi.from_buffer("uint8_t[]", state), ffi.new("int64_t[]", list(callers)))
    r.ops, r.results, r.state, r.callers = keep
    r.caches = ffi.NULL
    r.nr_ops = len(s) if nr_ops is None else nr_ops
    r.nr_results = len(results) if nr_results is None else nr_results
    r.nr_state = len(state) if nr_state is None else nr_state
    r.nr_callers = len(callers) if nr_callers is None else nr_callers
    r.pos = pos
    return lib.pa_stream_run(m._core._m, r), r.pos


def model_run(m, s, results, state, end=None, callers=(0,), pos=0):
    r = model_stream.Run(s._ops, results, state, list(callers), [], pos, end)
    return model_stream.stream_run(m._core._a, r), r.pos


def two_kmallocs():
    s = pyalloc.Stream()
    for _ in range(4):
        s.kmalloc(64, "GFP_KERNEL")
    return s


def test_c_loop_refuses_lying_lengths():
    pytest.importorskip("pyalloc._cbackend")
    EINVAL = -22
    s = two_kmallocs()
    with pyalloc.Machine(mem="32M", backend="c") as m:
        before = views(m)
        big = array("q", bytes(8 * 4))
        for kwargs in (dict(nr_state=1), dict(nr_results=3), dict(nr_state=-1), dict(nr_ops=-5),
                       dict(nr_callers=-1, nr_ops=4), dict(pos=5), dict(pos=-1)):
            assert c_run(m, s, big, bytearray(4), **kwargs)[0] == EINVAL, kwargs
        assert views(m) == before
        # results the caller filled in: a "live" pfn too large to shift is refused, not shifted
        p = pyalloc.Stream()
        h = p.alloc_pages("GFP_KERNEL", 0)
        p.free_pages(h, 0)
        results, state = array("q", [1 << 62, 0]), bytearray([1, 0])
        assert c_run(m, p, results, state, pos=1) == (EINVAL, 1)
        assert views(m) == before
        assert c_run(m, s, big, bytearray(4)) == (0, 4)      # honest lengths run
        m.check()


def test_model_loop_refuses_short_buffers():
    EINVAL = -22
    s = two_kmallocs()
    with pyalloc.Machine(mem="32M", backend="model") as m:
        before = views(m)
        assert model_run(m, s, array("q", bytes(32)), bytearray(1))[0] == EINVAL
        assert model_run(m, s, array("q", bytes(8)), bytearray(4))[0] == EINVAL
        p = pyalloc.Stream()
        h = p.alloc_pages("GFP_KERNEL", 0)
        p.free_pages(h, 0)
        assert model_run(m, p, array("q", [1 << 62, 0]), bytearray([1, 0]), pos=1) == (EINVAL, 1)
        assert views(m) == before
        assert model_run(m, s, array("q", bytes(32)), bytearray(4)) == (0, 4)
        m.check()
