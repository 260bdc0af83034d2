"""What a REPL user sees: help() of the hot-path methods, exceptions that carry what they
are about, repr() and len(), type hints and py.typed."""

import pydoc
import typing
from pathlib import Path

import pytest

import pyalloc
from pyalloc import Machine
from pyalloc.machine.slab import _slab_hot_paths

HOT = ("alloc_pages", "free_pages", "kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free")


@pytest.mark.parametrize("name", HOT)
def test_help_shows_the_hot_paths(name):
    doc = pydoc.render_doc(getattr(Machine, name), renderer=pydoc.plaintext)
    assert "Returns" in doc and "Raises" in doc
    assert typing.get_type_hints(getattr(Machine, name))      # annotated, and the names resolve
    assert name in pydoc.render_doc(Machine, renderer=pydoc.plaintext)


def test_the_per_call_path_is_still_the_closure(backend):
    """The documented methods never run on a call through an instance: the closure shadows them."""
    with Machine(mem="16M", backend=backend) as m:
        for name in HOT:
            fn = m.__dict__[name]
            assert getattr(m, name) is fn and fn.__code__.co_name == name
            assert fn.__code__.co_qualname.startswith(("_hot_paths.", "_slab_hot_paths."))   # the closure
            assert fn.__qualname__ == f"Machine.{name}"             # dressed as the method it shadows
        # and through the class they hand over to the same closure
        addr = Machine.kmalloc(m, 64, "GFP_KERNEL")
        Machine.kfree(m, addr)
        pfn = Machine.alloc_pages(m, "GFP_KERNEL", 1)
        Machine.free_pages(m, pfn, 1)
        m.check()
    assert _slab_hot_paths.__name__ == "_slab_hot_paths"


def test_exceptions_carry_what_they_are_about(backend):
    with Machine(mem="16M", backend=backend) as m:
        c = m.kmem_cache_create("things", 64)
        a = m.kmem_cache_alloc(c, "GFP_KERNEL")
        m.kmem_cache_free(c, a)
        with pytest.raises(pyalloc.DoubleFree) as e:
            m.kmem_cache_free(c, a)
        assert (e.value.addr, e.value.cache, e.value.reason) == (a, c, "double free")
        k = m.kmalloc(100, "GFP_KERNEL")
        with pytest.raises(pyalloc.InvalidFree) as e:
            m.kfree(k + 8)
        assert e.value.addr == k + 8 and e.value.cache.name == "kmalloc-128" and e.value.reason == "invalid pointer"
        pfn = m.alloc_pages("GFP_KERNEL", 2)
        with pytest.raises(pyalloc.InvalidFree) as e:
            m.free_pages(pfn, 1)
        assert e.value.reason == "wrong order" and e.value.addr == m.page_address(pfn)
        with pytest.raises(pyalloc.PageFault) as e:
            m.read(0x10, 4)
        assert e.value.addr == 0x10 and "NULL" in e.value.reason
        m.kmem_cache_alloc(c, "GFP_KERNEL")
        with pytest.raises(pyalloc.CacheInUse) as e:
            m.kmem_cache_destroy(c)
        assert e.value.cache is c and e.value.reason == "objects remaining"
        v = m.vmalloc(8192)
        m.vfree(v)
        with pytest.raises(pyalloc.DoubleFree) as e:
            m.vfree(v)
        assert (e.value.addr, e.value.reason) == (v, "double free")
        with pytest.raises(pyalloc.InvalidFree) as e:
            m.vfree(m.vmalloc(8192) + 4096)
        assert e.value.reason == "inside an area"
        assert pyalloc.GFPError("x").addr is None


def test_slab_corruption_message_has_the_finding(backend):
    with Machine(mem="16M", backend=backend, slub_debug="FZP") as m:
        a = m.kmalloc(64, "GFP_KERNEL")
        m.write(a + 64, b"\x00")                       # one byte into the right red zone
        with pytest.raises(pyalloc.SlabCorruption) as e:
            m.kfree(a)
        msg = str(e.value)
        assert "Right Redzone overwritten: 0x" in msg and "First byte 0x0 instead of 0xcc" in msg
        assert e.value.reason == "Right Redzone overwritten" and e.value.cache.name == "kmalloc-64"
        assert e.value.addr == a


@pytest.mark.parametrize("call, argument", [
    (lambda m: m.kmalloc("64", "GFP_KERNEL"), "size"),
    (lambda m: m.kmalloc(6.4, "GFP_KERNEL"), "size"),
    (lambda m: m.alloc_pages("GFP_KERNEL", "2"), "order"),
    (lambda m: m.free_pages("7"), "pfn"),
    (lambda m: m.free_pages(7, 1.0), "order"),
    (lambda m: m.kfree("0xffff"), "address"),
])
def test_type_errors_name_the_argument(backend, call, argument):
    with Machine(mem="16M", backend=backend) as m:
        before = m.proc("buddyinfo"), m.proc("slabinfo")
        with pytest.raises(TypeError, match=argument):
            call(m)
        assert (m.proc("buddyinfo"), m.proc("slabinfo")) == before
        m.check()


def test_repr_and_len(backend):
    with Machine(mem="64M", backend=backend, cpus=2) as m:
        c = m.kmem_cache_create("things", 100)
        objs = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(5)]
        assert len(c) == 5 and c
        m.kmem_cache_free(c, objs.pop())
        assert len(c) == 4
        per = c.objects
        assert repr(c) == f"<kmem_cache 'things' object_size=100 size={c.size}: 4 live, {per - 4} free objects in 1 slabs>"
        free_kb = int(m.proc("meminfo").split("MemFree:")[1].split()[0])
        assert repr(m) == (f"<pyalloc.Machine backend={backend!r} 64 MiB, 2 CPUs, {free_kb} kB free, "
                           f"{len(m.proc('slabinfo').splitlines()) - 2} slab caches>")
        for a in objs:
            m.kmem_cache_free(c, a)
        m.kmem_cache_destroy(c)
        assert len(c) == 0 and repr(c) == "<kmem_cache 'things' destroyed>" and c
    assert "closed" in repr(m)


def test_py_typed_ships():
    assert (Path(pyalloc.__file__).parent / "py.typed").exists()


def test_per_call_methods_speak_as_the_documented_ones(backend):
    """The per-call closures that shadow alloc_pages ... kmem_cache_free carry their method's
    name, documentation and signature: a TypeError names Machine.kmalloc, help() is the real text."""
    import inspect
    m = pyalloc.Machine(mem="16M", backend=backend)
    for name in ("alloc_pages", "free_pages", "kmalloc", "kfree", "kmem_cache_alloc", "kmem_cache_free"):
        bound, method = getattr(m, name), getattr(pyalloc.Machine, name)
        assert bound.__doc__ == method.__doc__ and bound.__doc__.count("\n") > 1
        assert list(inspect.signature(bound).parameters) == list(inspect.signature(method).parameters)[1:]
    with pytest.raises(TypeError, match=r"^Machine\.kmalloc\(\) missing"):
        m.kmalloc()
    with pytest.raises(TypeError, match=r"^Machine\.alloc_pages\(\) missing"):
        m.alloc_pages()
    m.close()
