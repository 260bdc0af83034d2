"""Fuzz pyalloc: the public API on both backends, and the C core through cffi.

One input is a byte string, read as a program of up to MAX_OPS calls.  The
same program runs on a C-backend and a model-backend Machine side by side
(mostly plausible arguments: live pfns, objects, areas, caches; sometimes
hostile ones: huge and negative ints, wrong types, interior and freed
pointers, other machines' caches), and then, decoded again from the same
bytes, as raw ``lib.pa_*`` calls on a bare C machine.  A finding is:

* crash       -- the process dies (atheris keeps the input; the plain driver
                 dies with it, so CI fails);
* undocumented -- an exception that is neither a pyalloc.PyallocError nor a
                 TypeError (README: a non-int where an int belongs);
* state       -- a call raised, yet some /proc text changed (the promise is
                 "exactly as before the call");
* check       -- Machine.check() or pa_check() found a broken invariant;
* diverge     -- the two backends answered differently (value, exception
                 type or message, or /proc text).

Two ways to run it (README, "Fuzzing"):

    pip install -e '.[fuzz]'                                   # atheris
    python fuzz/fuzz_pyalloc.py -max_total_time=36000 fuzz/corpus   # coverage-guided, for hours
    python fuzz/fuzz_pyalloc.py --plain --seconds 120 --seed 1      # no atheris: random inputs (CI)

The plain driver feeds random byte strings through the same decoder: no
coverage feedback, but the same findings.  It prints the calls fuzzed and the
findings by kind, and exits 1 if there was any.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)                        # the shared driver beside this file
sys.path.insert(0, os.path.dirname(HERE))       # run from a checkout without installing

import _driver  # noqa: E402
import pyalloc  # noqa: E402
from pyalloc import PAGE_OFFSET, VMALLOC_START, _abi  # noqa: E402
from pyalloc.errors import show  # noqa: E402

MAX_OPS = 40
VIEWS = ("buddyinfo", "meminfo", "slabinfo", "vmallocinfo")
DOCUMENTED = (pyalloc.PyallocError, TypeError)
GFPS = ("GFP_KERNEL", "GFP_ATOMIC", "GFP_NOWAIT", "GFP_KERNEL|__GFP_ZERO", "GFP_DMA", "GFP_USER",
        "GFP_KERNEL|__GFP_NOWARN", "GFP_KERNEL|__GFP_NOFAIL", "GFP_HIGHUSER_MOVABLE", "__GFP_DMA|__GFP_DMA32",
        "GFP_KERNEL|__GFP_HIGHMEM", "GFP_NOIO|__GFP_RETRY_MAYFAIL", 0, 0x400cc0, "bogus", "GFP_KERNEL|",
        "GFP_KERNEL|__GFP_COMP")
HOSTILE = (None, -1, 0, 1, 0x10, 17, 4095, 4096, -(2 ** 63), 2 ** 63 - 1, 2 ** 63, 2 ** 64, 2 ** 80,
           10 ** 5000, -(10 ** 5000), 1.5, "0x1000", b"\x00", [], object(), True, PAGE_OFFSET - 1,
           PAGE_OFFSET + 7, VMALLOC_START, 2 ** 64 - 1, "x" * 10000)


class Findings(Exception):
    """A finding: its kind and a description."""

    def __init__(self, kind: str, what: str) -> None:
        super().__init__(f"[{kind}] {what}")
        self.kind = kind


class Reader:
    """Decodes the input bytes; past the end every read is 0."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def left(self) -> bool:
        return self.pos < len(self.data)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        v = self.byte() | self.byte() << 8
        return v % n if n > 0 else 0

    def pick(self, seq):
        return seq[self.below(len(seq))]

    def int64(self) -> int:
        v = int.from_bytes(bytes(self.byte() for _ in range(8)), "little", signed=True)
        return v


# -- the public API, differential ------------------------------------------------------------------------

class Side:
    """One backend's machine and the handles it has handed out."""

    def __init__(self, backend: str) -> None:
        self.m = pyalloc.Machine(mem="16M", cpus=2, backend=backend, swap="4M")
        self.other = pyalloc.Machine(mem="16M", cpus=1, backend=backend)
        self.foreign = self.other.kmem_cache_create("foreign", 32)
        self.pages: list = []       # (pfn, order)
        self.objs: list = []        # kmalloc'ed addresses
        self.cobjs: list = []       # (cache index, address)
        self.caches: list = []
        self.areas: list = []       # vmalloc / vmap addresses
        self.freed: list = []       # addresses and pfns freed (for double frees)
        self.pids: list = []        # processes spawned (some exited or killed since)

    def close(self) -> None:
        self.m.close()
        self.other.close()


def _arg(r: Reader, s: Side, plausible):
    """A plausible argument most of the time, a hostile one otherwise."""
    k = r.below(16)
    if k < 11:
        return plausible()
    if k < 13 and s.freed:
        return r.pick(s.freed)
    if k < 14:
        v = plausible()
        return v + r.pick((1, 8, 4096, -1)) if isinstance(v, int) and not isinstance(v, bool) else v
    return r.pick(HOSTILE)


def _live(seq, r: Reader, default):
    return (lambda: r.pick(seq)) if seq else (lambda: default)


def plan(r: Reader, s: Side):
    """Decode one call: (name, function of the Side, bookkeeping of its result)."""
    m = s.m
    op = r.below(29)
    gfp = r.pick(GFPS) if r.below(8) else _arg(r, s, lambda: "GFP_KERNEL")
    if op == 0:
        order = _arg(r, s, lambda: r.below(4))
        return f"alloc_pages({show(gfp)}, {show(order)})", lambda: m.alloc_pages(gfp, order), ("pages", order)
    if op == 1:
        p = _arg(r, s, _live(s.pages, r, (0, 0)))
        pfn, order = p if isinstance(p, tuple) else (p, r.below(3))
        return f"free_pages({show(pfn)}, {show(order)})", lambda: m.free_pages(pfn, order), ("unpage", (pfn, order))
    if op == 2:
        size = _arg(r, s, lambda: r.pick((1, 8, 64, 100, 192, 4096, 8192, 9000, 1 << 20, 0)))
        return f"kmalloc({show(size)}, {show(gfp)})", lambda: m.kmalloc(size, gfp), ("obj", None)
    if op == 3:
        a = _arg(r, s, _live(s.objs, r, None))
        return f"kfree({show(a)})", lambda: m.kfree(a), ("unobj", a)
    if op == 4:
        size = _arg(r, s, lambda: r.pick((8, 24, 64, 200, 4000)))
        align = r.pick((0, 8, 64, 3)) if r.below(4) else _arg(r, s, lambda: 0)
        flags = r.pick((0, "SLAB_HWCACHE_ALIGN", "SLAB_POISON|SLAB_RED_ZONE", "SLAB_STORE_USER", "SLAB_BOGUS"))
        name = f"fz{r.below(4)}" if r.below(8) else _arg(r, s, lambda: "fz")
        cap = r.pick((0, 0, 0, 2, 32, -1, "32")) if r.below(4) else 0
        return (f"kmem_cache_create({show(name)}, {show(size)}, {show(align)}, {show(flags)}, "
                f"sheaf_capacity={show(cap)})",
                lambda: m.kmem_cache_create(name, size, align, flags, sheaf_capacity=cap), ("cache", None))
    if op == 5:
        c = _cache(r, s)
        return f"kmem_cache_alloc({show(c)}, {show(gfp)})", lambda: m.kmem_cache_alloc(c, gfp), ("cobj", c)
    if op == 6:
        ca = _arg(r, s, _live(s.cobjs, r, (None, None)))
        c, a = ca if isinstance(ca, tuple) else (_cache(r, s), ca)
        return f"kmem_cache_free({show(c)}, {show(a)})", lambda: m.kmem_cache_free(c, a), ("uncobj", (c, a))
    if op == 7:
        c = _cache(r, s)
        return f"kmem_cache_shrink({show(c)})", lambda: m.kmem_cache_shrink(c), None
    if op == 8:
        c = _cache(r, s)
        return f"kmem_cache_destroy({show(c)})", lambda: m.kmem_cache_destroy(c), ("uncache", c)
    if op == 9:
        a = _arg(r, s, _live(s.objs, r, None))
        size = _arg(r, s, lambda: r.pick((0, 8, 100, 5000)))
        return f"krealloc({show(a)}, {show(size)})", lambda: m.krealloc(a, size, gfp), ("realloc", a)
    if op == 10:
        a = _arg(r, s, _live(s.objs, r, None))
        return f"ksize({show(a)})", lambda: m.ksize(a), None
    if op in (11, 12):
        size = _arg(r, s, lambda: r.pick((1, 4096, 5000, 40000, 600 * 4096, 0)))
        fn = r.pick(("vmalloc", "vzalloc", "kvmalloc"))
        caller = "fz+0x0/0x1" if r.below(4) else _arg(r, s, lambda: "fz")
        return (f"{fn}({show(size)}, {show(gfp)}, caller={show(caller)})",
                lambda: getattr(m, fn)(size, gfp, caller=caller), ("area", None))
    if op == 13:
        a = _arg(r, s, _live(s.areas, r, None))
        fn = r.pick(("vfree", "kvfree", "vunmap"))
        return f"{fn}({show(a)})", lambda: getattr(m, fn)(a), ("unarea", a)
    if op == 14:
        pfns = [p for p, _ in s.pages[:3]] or [r.below(4096)]
        if not r.below(4):
            # pages the program does not own would let writes through the area hit page tables
            pfns = [r.pick((None, -1, 1 << 40, 2 ** 64, 10 ** 5000, "x", 1.5, []))]
        return f"vmap({show(pfns)})", lambda: m.vmap(pfns), ("area", None)
    if op == 15:
        # writes go only where the program owns memory (or where nothing is mapped): a write
        # into a page table through the direct map is the kernel's memory corruption too
        targets = [(a, 8) for a in s.objs] + [(a, 4096) for a in s.areas] + \
                  [(PAGE_OFFSET + (p << 12), 4096 << o) for p, o in s.pages]
        kind = r.below(3)
        if targets and r.below(4):
            base, room = r.pick(targets)
            off = r.below(room)
            addr, n = base + off, 1 + r.below(room - off + (4096 if base >= VMALLOC_START else 0))
        else:
            addr = r.pick((None, 0, 0x10, PAGE_OFFSET + (1 << 40), VMALLOC_START + (1 << 40), 2 ** 64 - 8,
                           10 ** 5000, "x", -1))
            n = _arg(r, s, lambda: r.pick((1, 8, 100, 4097)))
        if kind == 0:
            return f"read({show(addr)}, {show(n)})", lambda: m.read(addr, n), None
        if kind == 1:
            data = bytes([r.byte()]) * (n if isinstance(n, int) and 0 <= n <= 16384 else 1)
            return f"write({show(addr)}, {len(data)} bytes)", lambda: m.write(addr, data), None
        byte = _arg(r, s, lambda: r.byte())
        return f"memset({show(addr)}, {show(byte)}, {show(n)})", lambda: m.memset(addr, byte, n), None
    if op == 16:
        a = _arg(r, s, _live(s.areas, r, None))
        return f"vmalloc_to_page({show(a)})", lambda: m.vmalloc_to_page(a), None
    if op == 17:
        p = _arg(r, s, _live(s.pages, r, (0, 0)))
        pfn = p[0] if isinstance(p, tuple) else p
        kind = r.below(3)
        if kind == 0:
            return f"page_address({show(pfn)})", lambda: m.page_address(pfn), None
        if kind == 1:
            return f"free_pages_addr(page_address({show(pfn)}))", lambda: m.free_pages_addr(
                PAGE_OFFSET + (pfn << 12) if isinstance(pfn, int) and 0 <= pfn < 1 << 40 else pfn), ("unpage", (pfn, 0))
        order = r.below(3)
        return f"get_free_pages({show(gfp)}, {order})", lambda: m.get_free_pages(gfp, order), ("gfp", order)
    if op == 18:
        cpu = _arg(r, s, lambda: r.below(2))
        size = r.pick((8, 64, 512))

        def on_cpu():
            with m.on_cpu(cpu):
                return m.kmalloc(size, gfp)
        return f"on_cpu({show(cpu)}).kmalloc({size})", on_cpu, ("obj", None)
    if op == 19:
        n = _arg(r, s, lambda: r.pick((0, 1, 4, 1 << 40)))
        size = _arg(r, s, lambda: r.pick((8, 100)))
        fn = r.pick(("kmalloc_array", "kcalloc"))
        return f"{fn}({show(n)}, {show(size)})", lambda: getattr(m, fn)(n, size, gfp), ("obj", None)
    if op == 20:
        name = r.pick(VIEWS + ("zoneinfo", "vmstat", "pagetypeinfo")) if r.below(8) else _arg(r, s, lambda: "x")
        return f"proc({show(name)})", lambda: m.proc(name), None
    if op == 21:
        a = _arg(r, s, _live(s.objs, r, None))
        caller = _arg(r, s, lambda: "fz+0x0/0x1")
        return f"kfree({show(a)}, caller={show(caller)})", lambda: m.kfree(a, caller=caller), ("unobj", a)
    if op == 22:
        size = _arg(r, s, lambda: r.pick((8, 64)))
        caller = _arg(r, s, lambda: "fz+0x0/0x1")
        cpu = r.pick((None, 0, 1))
        return (f"kmalloc({show(size)}, cpu={show(cpu)}, caller={show(caller)})",
                lambda: m.kmalloc(size, gfp, cpu=cpu, caller=caller), ("obj", None))
    if op == 24:
        name = r.pick(("db", "web", "x" * 40)) if r.below(8) else _arg(r, s, lambda: "p")
        adj = r.pick((0, 500, -1000)) if r.below(8) else _arg(r, s, lambda: 0)
        return f"spawn({show(name)}, {show(adj)})", lambda: m.spawn(name, adj), ("pid", None)
    if op == 25:
        pid = _arg(r, s, _live(s.pids, r, 100))
        which = r.below(3)
        if which == 0:
            n = _arg(r, s, lambda: r.pick((1, 100, 2000, 5000)))
            return f"touch({show(pid)}, {show(n)})", lambda: m.touch(pid, n), None
        if which == 1:
            return f"exit({show(pid)})", lambda: m.exit(pid), None
        off = _arg(r, s, lambda: r.below(8 * 4096))
        data = bytes(r.below(256) for _ in range(r.below(16)))
        return (f"user_write({show(pid)}, {show(off)}, {len(data)} bytes)",
                lambda: (m.user_write(pid, off, data), m.user_read(pid, off, len(data))), None)
    if op == 26:
        path = r.pick(("/a", "/b")) if r.below(8) else _arg(r, s, lambda: "/c")
        n = _arg(r, s, lambda: r.pick((1, 50, 3000)))
        fn = r.pick(("read_file", "write_file"))
        return f"{fn}({show(path)}, {show(n)})", lambda: getattr(m, fn)(path, n), None
    if op == 27:
        path = r.pick(("/a", "/b")) if r.below(8) else _arg(r, s, lambda: "/c")
        off = _arg(r, s, lambda: r.below(40000))
        data = bytes(r.below(256) for _ in range(r.below(16)))
        which = r.below(4)
        if which == 0:
            return f"file_write({show(path)}, {show(off)})", lambda: m.file_write(path, off, data), None
        if which == 1:
            n = _arg(r, s, lambda: r.below(64))
            return f"file_read({show(path)}, {show(off)}, {show(n)})", lambda: m.file_read(path, off, n), None
        fn = r.pick(("sync", "drop_caches"))
        return f"{fn}()", lambda: getattr(m, fn)(), None
    if op == 28:
        return _hand_made_stream(r, m)
    a = _arg(r, s, lambda: PAGE_OFFSET)
    return f"virt_to_page({show(a)})", lambda: m.virt_to_page(a), None


def _hand_made_stream(r: Reader, m):
    """m.run() of a small stream with one 64-bit word of its records written by hand."""
    st = pyalloc.Stream()
    a = st.kmalloc(r.pick((8, 64, 5000)), "GFP_KERNEL")
    c = st.kmem_cache_alloc("fzs", r.pick(("GFP_KERNEL", "GFP_KERNEL|__GFP_NOFAIL")), size=40)
    b = st.krealloc(a, 100, "GFP_KERNEL", caller="fz+0x1/0x2")
    st.spawn("fzp")
    st.free_pages(st.alloc_pages("GFP_KERNEL", 1), 1)
    st.kmem_cache_free("fzs", c)
    st.kfree(b)
    word = r.below(4 * len(st))
    v = r.pick((-1, 0, 1, 3, 7, 10 ** 6, 0xffff, 1 << 16, 5 << 32, 0xffffffff << 32, 2 ** 63)) \
        if r.below(2) else r.int64()
    st._ops[word] = v & (2 ** 64 - 1)

    def go():
        res = m.run(st, errors="record")
        return list(res.raw), bytes(res.state), [(i, type(e).__name__, str(e)) for i, e in res.errors]
    return f"run(hand-made stream, word {word} = {show(v)})", go, None


def _cache(r: Reader, s: Side):
    k = r.below(8)
    if s.caches and k < 5:
        return r.pick(s.caches)
    if k == 5:
        return s.foreign
    return r.pick(HOSTILE + (None,))


def account(s: Side, book, result) -> None:
    """Remember what a successful call handed out or took back."""
    if book is None:
        return
    kind, arg = book
    if kind == "pages" and isinstance(result, int):
        s.pages.append((result, arg))
    elif kind == "gfp" and isinstance(result, int):
        s.pages.append(((result - PAGE_OFFSET) >> 12, arg))
    elif kind == "obj" and isinstance(result, int) and result > 0x10:
        s.objs.append(result)
    elif kind == "cache" and result is not None:
        s.caches.append(result)
    elif kind == "cobj" and isinstance(result, int):
        s.cobjs.append((arg, result))
    elif kind == "area" and isinstance(result, int):
        (s.areas if result >= VMALLOC_START else s.objs).append(result)
    elif kind == "unpage" and arg in s.pages:
        s.pages.remove(arg)
        s.freed.append(arg[0])
    elif kind in ("unobj", "unarea", "realloc") and arg in (s.objs + s.areas):
        (s.objs if arg in s.objs else s.areas).remove(arg)
        s.freed.append(arg)
        if kind == "realloc" and isinstance(result, int) and result > 0x10:
            s.objs.append(result)
    elif kind == "uncobj" and arg in s.cobjs:
        s.cobjs.remove(arg)
        s.freed.append(arg[1])
    elif kind == "uncache" and arg in s.caches:
        s.caches.remove(arg)
    elif kind == "pid" and isinstance(result, int):
        s.pids.append(result)


def _outcome(call):
    try:
        v = call()
        return ("ok", v if not isinstance(v, (bytes, str)) else v[:64]), None
    except DOCUMENTED as exc:
        return (type(exc).__name__, str(exc)[:300]), exc
    except Exception as exc:        # noqa: BLE001 - this is what a finding looks like
        return ("undocumented", type(exc).__name__, str(exc)[:200]), exc


def _same(v1, v2) -> bool:
    """Results compare equal, except objects that are machine-specific by nature (Cache)."""
    if isinstance(v1, tuple) and isinstance(v2, tuple) and len(v1) == len(v2) == 2 and v1[0] == "ok":
        a, b = v1[1], v2[1]
        if isinstance(a, pyalloc.machine.slab.Cache) and isinstance(b, pyalloc.machine.slab.Cache):
            return a.name == b.name and a.size == b.size
    return v1 == v2


def run_api(data: bytes, stats: Counter) -> None:
    r = Reader(data)
    sides = [Side("c"), Side("model")]
    try:
        for _ in range(MAX_OPS):
            if not r.left():
                break
            start = r.pos
            calls = []
            for s in sides:
                r.pos = start        # the same bytes decode to the same call on both sides
                calls.append(plan(r, s))
            name = calls[0][0]
            before = [{v: s.m.proc(v) for v in VIEWS} for s in sides]
            outs = []
            for s, (_, fn, book) in zip(sides, calls):
                out, exc = _outcome(fn)
                stats["api calls"] += 1
                if out[0] == "undocumented":
                    raise Findings("undocumented", f"{name} on {s.m.backend}: {out[1]}: {out[2]}\n"
                                   + "".join(traceback.format_exception(exc)[-4:]))
                if exc is None:
                    account(s, book, out[1])
                outs.append(out)
            for s, b, out in zip(sides, before, outs):
                if out[0] != "ok":
                    after = {v: s.m.proc(v) for v in VIEWS}
                    changed = [v for v in VIEWS if after[v] != b[v]]
                    if changed:
                        raise Findings("state", f"{name} on {s.m.backend} raised {out[0]} ({out[1][:120]}) "
                                                f"yet changed /proc/{', /proc/'.join(changed)}")
            if not _same(outs[0], outs[1]):
                raise Findings("diverge", f"{name}: c -> {show(outs[0])}, model -> {show(outs[1])}")
            for s in sides:
                try:
                    s.m.check()
                except pyalloc.SlabCorruption:
                    s.m.check()     # a write hit a debug object's red zone: reported and repaired
                except pyalloc.errors.InvariantBroken as exc:
                    raise Findings("check", f"after {name} on {s.m.backend}: {exc}") from None
        texts = [{v: s.m.proc(v) for v in VIEWS} for s in sides]
        if texts[0] != texts[1]:
            diff = [v for v in VIEWS if texts[0][v] != texts[1][v]]
            raise Findings("diverge", f"/proc/{diff[0]} differs between the backends at the end")
    finally:
        for s in sides:
            s.close()


# -- the C core through cffi -------------------------------------------------------------------------------

def run_raw(data: bytes, stats: Counter) -> None:
    """Raw pa_* calls with int64 arguments on a bare C machine; pa_check() after each."""
    try:
        from pyalloc._core import ffi, lib
    except ImportError:
        return
    r = Reader(data[::-1])      # the same input, read from the other end
    out = ffi.new("pa_machine **")
    assert lib.pa_machine_new(4096, 2, -1, 0, _abi.KCONFIG_DEFAULT, out) == 0
    m = ffi.gc(out[0], lib.pa_machine_free)
    msg = ffi.new("char[]", 512)
    buf = ffi.new("unsigned char[]", 8192)
    pfns = ffi.new("int64_t[]", 64)
    vals: list = [0, 1, 4096, PAGE_OFFSET]
    areas: list = []            # (vaddr, [pfns]) mapped by pa_vmalloc_pages
    owned: list = []            # (phys, bytes) of the blocks pa_alloc_pages handed out

    def val():
        k = r.below(8)
        if k < 4 and vals:
            v = r.pick(vals) + r.pick((0, 0, 0, 1, -1, 8, 4096))
        elif k < 6:
            v = r.below(1 << 16)
        else:
            v = r.int64()
        return ((v + (1 << 63)) % (1 << 64)) - (1 << 63)     # an int64, as the core takes

    try:
        for _ in range(MAX_OPS * 2):
            if not r.left():
                break
            op = r.below(16)
            a, b, c = val(), val(), val()
            if op == 0:
                order = a % 12
                rc = lib.pa_alloc_pages(m, r.pick((0xcc0, 0x820, 0x800, 0xcc1)), order)
                if rc >= 0:
                    owned.append((rc << 12, 4096 << order))
            elif op == 1:
                rc = lib.pa_free_pages(m, a, b % 12 if r.below(2) else b)
            elif op == 2:
                rc = lib.pa_kmalloc(m, a % 20000 if r.below(2) else a, r.pick((0xcc0, 0x820, c)), 0)
            elif op == 3:
                rc = lib.pa_kfree(m, a, 0)
            elif op == 4:
                rc = lib.pa_kmem_cache_create(m, a % 5000, r.pick((0, 8, 64, b)), c & 0x3ff,
                                              r.pick((0, 0, 4, 32, -1, 1 << 40, b)))
            elif op == 5:
                rc = lib.pa_kmem_cache_alloc(m, a % 80, 0xcc0, 0)
            elif op == 6:
                rc = lib.pa_kmem_cache_free(m, a % 80, b, 0)
            elif op == 7:
                rc = lib.pa_kmem_cache_destroy(m, a % 80) if r.below(2) else lib.pa_kmem_cache_shrink(m, a % 80)
            elif op == 8:
                rc = lib.pa_ksize(m, a)
            elif op == 9:
                n = b % 8192 if r.below(4) else b
                if r.below(2):
                    rc = lib.pa_read(m, a, n, buf) if 0 <= n <= 8192 else lib.pa_read(m, a, n, ffi.NULL)
                elif owned and r.below(4):
                    # writes only into memory the program owns: pa_memset() anywhere else could
                    # scribble on page tables, which pa_check() rightly calls corruption
                    phys, room = r.pick(owned)
                    rc = lib.pa_memset(m, phys + n % room, c, (room - n % room) if r.below(2) else room + 1)
                else:
                    rc = lib.pa_memset(m, (4096 << 12) + (a & 0xffffffff) if a >= 0 else a, c, n)
            elif op == 10:
                vaddr = VMALLOC_START + (a % (1 << 30)) * 4096 - (1 << 64)
                nr = b % 32
                rc = lib.pa_vmalloc_pages(m, vaddr, nr, 0xcc0, pfns)
                if rc == 0 and nr:
                    areas.append((vaddr, [pfns[i] for i in range(nr)]))
            elif op == 11 and areas:
                vaddr, got = areas.pop(r.below(len(areas)))
                rc = lib.pa_vunmap_pages(m, vaddr, len(got))
                arr = ffi.new("int64_t[]", got)
                rc = rc or lib.pa_free_vmalloc_pages(m, arr, len(got))
            elif op == 12:
                rc = lib.pa_walk(m, a) if r.below(2) else lib.pa_pte(m, a)
            elif op == 13:
                rc = lib.pa_set_cpu(m, a % 4)
            elif op == 14:
                rc = lib.pa_slab_pin(m, a, r.pick((-1, 0, 1, b)))
            else:
                st = ffi.new("struct pa_page_state *")
                rc = lib.pa_page_state(m, a, st)
            stats["raw C calls"] += 1
            if rc > 0:
                vals.append(rc)
            rc = lib.pa_check(m, msg, 512)
            if rc == lib.PA_EINVARIANT:
                raise Findings("check", f"raw op {op}: pa_check: {ffi.string(msg).decode()}")
            lib.pa_take_events(m, ffi.new("struct pa_slab_event[]", 16), 16)
    finally:
        ffi.release(m)


TOTALS: Counter = Counter()
STATS_FILE = os.environ.get("PYALLOC_FUZZ_STATS")     # atheris never returns: counts go here


def test_one_input(data: bytes, stats: Counter | None = None) -> None:
    stats = TOTALS if stats is None else stats
    stats["inputs"] += 1
    try:
        run_api(data, stats)
        run_raw(data, stats)
    finally:
        if STATS_FILE and stats["inputs"] % 50 == 0:
            with open(STATS_FILE, "w") as f:
                f.write(", ".join(f"{v} {k}" for k, v in sorted(stats.items())) + "\n")


def plain(seconds: float, seed: int, max_len: int = 400) -> int:
    """The driver without atheris: random inputs until the time is up."""
    return _driver.plain("fuzz", test_one_input, Findings, seconds, seed, max_len)


def main(argv=None) -> int:
    return _driver.main("fuzz", __doc__ or "", test_one_input, Findings, 400, argv)


if __name__ == "__main__":
    sys.exit(main())
