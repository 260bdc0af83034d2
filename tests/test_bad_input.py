"""A battery of bad inputs across the public API: each must raise one of the
documented exceptions (or return NULL where the kernel does), leave check()
passing, never crash, and give the same answer on both backends."""

import pytest

import pyalloc
from pyalloc import PAGE_OFFSET

ALLOWED = (pyalloc.PyallocError, TypeError)
WEIRD = [None, -1, 0, 1, 0x10, 17, -(2 ** 63), 2 ** 63, 2 ** 64, 2 ** 80, 1.5, "0x1000", b"\x00", [], object(),
         True, PAGE_OFFSET - 1, PAGE_OFFSET + 7, PAGE_OFFSET + (64 << 20), pyalloc.VMALLOC_START, 2 ** 64 - 1]


def calls(m, cache):
    yield from ((f"alloc_pages(gfp, {w!r})", lambda w=w: m.alloc_pages("GFP_KERNEL", w)) for w in WEIRD)
    yield from ((f"alloc_pages({w!r})", lambda w=w: m.alloc_pages(w)) for w in WEIRD)
    yield from ((f"free_pages({w!r})", lambda w=w: m.free_pages(w)) for w in WEIRD)
    yield from ((f"free_pages(4096, {w!r})", lambda w=w: m.free_pages(4096, w)) for w in WEIRD)
    yield from ((f"free_pages_addr({w!r})", lambda w=w: m.free_pages_addr(w)) for w in WEIRD)
    yield from ((f"kmalloc({w!r})", lambda w=w: m.kmalloc(w, "GFP_KERNEL")) for w in WEIRD)
    yield from ((f"kmalloc(64, {w!r})", lambda w=w: m.kmalloc(64, w)) for w in WEIRD)
    yield from ((f"kfree({w!r})", lambda w=w: m.kfree(w)) for w in WEIRD)
    yield from ((f"ksize({w!r})", lambda w=w: m.ksize(w)) for w in WEIRD)
    yield from ((f"krealloc({w!r}, 8)", lambda w=w: m.krealloc(w, 8, "GFP_KERNEL")) for w in WEIRD)
    yield from ((f"krealloc(NULL, {w!r})", lambda w=w: m.krealloc(None, w, "GFP_KERNEL")) for w in WEIRD)
    yield from ((f"kmalloc_array({w!r}, 8)", lambda w=w: m.kmalloc_array(w, 8, "GFP_KERNEL")) for w in WEIRD)
    yield from ((f"kmem_cache_alloc({w!r})", lambda w=w: m.kmem_cache_alloc(w, "GFP_KERNEL")) for w in WEIRD)
    yield from ((f"kmem_cache_free(c, {w!r})", lambda w=w: m.kmem_cache_free(cache, w)) for w in WEIRD)
    yield from ((f"kmem_cache_free({w!r}, p)", lambda w=w: m.kmem_cache_free(w, PAGE_OFFSET)) for w in WEIRD)
    yield from ((f"kmem_cache_create(n, {w!r})", lambda w=w: m.kmem_cache_create("n", w)) for w in WEIRD)
    yield from ((f"kmem_cache_create(n, 8, {w!r})", lambda w=w: m.kmem_cache_create("n", 8, w)) for w in WEIRD)
    yield from ((f"kmem_cache_create(n, 8, 0, {w!r})", lambda w=w: m.kmem_cache_create("n", 8, 0, w)) for w in WEIRD)
    yield from ((f"kmem_cache_create({w!r}, 8)", lambda w=w: m.kmem_cache_create(w, 8)) for w in WEIRD)
    yield from ((f"kmem_cache_shrink({w!r})", lambda w=w: m.kmem_cache_shrink(w)) for w in WEIRD)
    yield from ((f"kmem_cache_destroy({w!r})", lambda w=w: m.kmem_cache_destroy(w)) for w in WEIRD)
    yield from ((f"read({w!r}, 8)", lambda w=w: m.read(w, 8)) for w in WEIRD)
    yield from ((f"read(p, {w!r})", lambda w=w: m.read(PAGE_OFFSET, w)) for w in WEIRD)
    yield from ((f"write({w!r})", lambda w=w: m.write(w, b"x")) for w in WEIRD)
    yield from ((f"memset(p, {w!r}, 4)", lambda w=w: m.memset(PAGE_OFFSET, w, 4)) for w in WEIRD)
    yield from ((f"page_address({w!r})", lambda w=w: m.page_address(w)) for w in WEIRD)
    yield from ((f"virt_to_page({w!r})", lambda w=w: m.virt_to_page(w)) for w in WEIRD)
    yield from ((f"proc({w!r})", lambda w=w: m.proc(w)) for w in WEIRD)
    yield from ((f"on_cpu({w!r})", lambda w=w: m.on_cpu(w).__enter__()) for w in WEIRD)
    yield from ((f"kmalloc(8, cpu={w!r})", lambda w=w: m.kmalloc(8, "GFP_KERNEL", cpu=w)) for w in WEIRD)
    yield from ((f"kmalloc(8, caller={w!r})", lambda w=w: m.kmalloc(8, "GFP_KERNEL", caller=w)) for w in WEIRD)
    yield from ((f"vmalloc({w!r})", lambda w=w: m.vmalloc(w)) for w in WEIRD)
    yield from ((f"vmalloc(4096, {w!r})", lambda w=w: m.vmalloc(4096, w)) for w in WEIRD)
    yield from ((f"vmalloc_node(4096, {w!r})", lambda w=w: m.vmalloc_node(4096, w)) for w in WEIRD)
    yield from ((f"vfree({w!r})", lambda w=w: m.vfree(w)) for w in WEIRD)
    yield from ((f"vunmap({w!r})", lambda w=w: m.vunmap(w)) for w in WEIRD)
    yield from ((f"vmap([{w!r}])", lambda w=w: m.vmap([w])) for w in WEIRD)
    yield from ((f"vmap({w!r})", lambda w=w: m.vmap(w)) for w in WEIRD)
    yield from ((f"vmalloc_to_page({w!r})", lambda w=w: m.vmalloc_to_page(w)) for w in WEIRD)
    yield from ((f"kvmalloc({w!r})", lambda w=w: m.kvmalloc(w)) for w in WEIRD)
    yield from ((f"kvfree({w!r})", lambda w=w: m.kvfree(w)) for w in WEIRD)
    yield from ((f"read(vmalloc + {w!r})", lambda w=w: m.read(pyalloc.VMALLOC_START + w, 8)) for w in WEIRD
                if isinstance(w, int))
    pid = m.spawn("victim")
    m.touch(pid, 3)
    m.read_file("/f", 2)
    yield from ((f"spawn({w!r})", lambda w=w: m.spawn(w)) for w in WEIRD)
    yield from ((f"spawn(x, {w!r})", lambda w=w: m.spawn("x", w)) for w in WEIRD)
    yield from ((f"touch({w!r}, 1)", lambda w=w: m.touch(w, 1)) for w in WEIRD)
    yield from ((f"touch(pid, {w!r})", lambda w=w: m.touch(pid, w)) for w in WEIRD)
    yield from ((f"exit({w!r})", lambda w=w: m.exit(w)) for w in WEIRD)
    yield from ((f"user_write(pid, {w!r})", lambda w=w: m.user_write(pid, w, b"x")) for w in WEIRD)
    yield from ((f"user_write({w!r}, 0)", lambda w=w: m.user_write(w, 0, b"x")) for w in WEIRD)
    yield from ((f"user_write(pid, 0, {w!r})", lambda w=w: m.user_write(pid, 0, w)) for w in WEIRD)
    yield from ((f"user_read(pid, {w!r}, 1)", lambda w=w: m.user_read(pid, w, 1)) for w in WEIRD)
    yield from ((f"user_read(pid, 0, {w!r})", lambda w=w: m.user_read(pid, 0, w)) for w in WEIRD)
    yield from ((f"read_file({w!r}, 1)", lambda w=w: m.read_file(w, 1)) for w in WEIRD)
    yield from ((f"read_file(f, {w!r})", lambda w=w: m.read_file("/f", w)) for w in WEIRD)
    yield from ((f"write_file(f, {w!r})", lambda w=w: m.write_file("/f", w)) for w in WEIRD)
    yield from ((f"file_write(f, {w!r})", lambda w=w: m.file_write("/f", w, b"x")) for w in WEIRD)
    yield from ((f"file_write(f, 0, {w!r})", lambda w=w: m.file_write("/f", 0, w)) for w in WEIRD)
    yield from ((f"file_read(f, {w!r}, 1)", lambda w=w: m.file_read("/f", w, 1)) for w in WEIRD)
    yield from ((f"file_read(f, 0, {w!r})", lambda w=w: m.file_read("/f", 0, w)) for w in WEIRD)
    yield from ((f"file_info({w!r})", lambda w=w: m.file_info(w)) for w in WEIRD)

    # the views beside /proc and drgn's helpers (read-only: they must not change anything either)
    from pyalloc import helpers as h
    yield from ((f"debugfs({w!r})", lambda w=w: m.debugfs(w)) for w in WEIRD)
    yield from ((f"sysfs({w!r})", lambda w=w: m.sysfs(w)) for w in WEIRD)
    yield from ((f"slab_sysfs({w!r})", lambda w=w: m.slab_sysfs(w)) for w in WEIRD)
    for fn in (h.slab_object_info, h.find_containing_slab_cache, h.pfn_to_page, h.virt_to_page,
               h.vmalloc_to_page, h.find_vmap_area, h.find_slab_cache, h.slab_cache_order,
               h.slab_cache_objects_per_slab, h.slab_cache_for_each_allocated_object):
        yield from ((f"helpers.{fn.__name__}({w!r})", lambda w=w, fn=fn: repr(fn(m, w))) for w in WEIRD)

    yield from ((f"Stream().kmalloc({w!r})", lambda w=w: pyalloc.Stream().kmalloc(w, "GFP_KERNEL")) for w in WEIRD)
    yield from ((f"Stream().kfree({w!r})", lambda w=w: pyalloc.Stream().kfree(w)) for w in WEIRD)
    yield from ((f"run(errors={w!r})", lambda w=w: m.run(pyalloc.Stream(), errors=w)) for w in WEIRD)
    for op in range(4):
        for word in range(4):
            yield from ((f"run(op {op} word {word} = {w!r})", lambda w=w, op=op, word=word: m.run(
                raw_stream(op, word, w), errors="record").errors) for w in WEIRD if isinstance(w, int))


def raw_stream(op: int, word: int, value: int) -> pyalloc.Stream:
    """A stream whose records were written by hand: one 64-bit word of one op replaced by value."""
    s = pyalloc.Stream()
    a = s.kmalloc(64, "GFP_KERNEL")
    b = s.krealloc(a, 100, "GFP_KERNEL")
    p = s.alloc_pages("GFP_KERNEL", 1)
    s.kfree(b)
    s.free_pages(p, 1)
    s._ops[4 * op + word] = value & (2 ** 64 - 1)
    return s


def outcomes(backend, slub_debug):
    out = []
    with pyalloc.Machine(mem="64M", backend=backend, cpus=2, slub_debug=slub_debug) as m:
        cache = m.kmem_cache_create("victim", 40)
        keep = m.kmem_cache_alloc(cache, "GFP_KERNEL")
        m.vmalloc(3 * 4096, caller="victim+0x0/0x1")
        for name, call in calls(m, cache):
            try:
                result = call()
                out.append((name, "ok", type(result).__name__))
            except ALLOWED as exc:
                out.append((name, type(exc).__name__, str(exc)))
            try:
                m.check()
            except pyalloc.SlabCorruption:
                # a write landed in a debug object's red zone: found, reported and repaired
                assert name.startswith(("write", "memset")), name
                out.append((name, "check found the overwrite"))
                m.check()
        m.kmem_cache_free(cache, keep)
        out.append(("dmesg", len(m.dmesg())))
        m.check()
    return out


@pytest.mark.parametrize("slub_debug", ["", "FZPU"])
def test_bad_inputs_raise_documented_errors_and_leave_the_machine_whole(backend, slub_debug):
    assert len(outcomes(backend, slub_debug)) > 500


@pytest.mark.parametrize("slub_debug", ["", "FZPU"])
def test_bad_inputs_get_the_same_answers_on_both_backends(slub_debug):
    pytest.importorskip("pyalloc._core")
    c, py = outcomes("c", slub_debug), outcomes("model", slub_debug)
    for a, b in zip(c, py):
        assert a == b
