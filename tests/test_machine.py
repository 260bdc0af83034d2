"""The Machine API around the allocator: construction, addresses, memory access,
views, the kernel log, close(); on both backends."""

import pytest

import pyalloc
from pyalloc import InvalidArgument, MachineClosed, PageFault, PAGE_OFFSET, ZERO_SIZE_PTR


@pytest.mark.parametrize("mem,pages", [("1G", 262144), ("512M", 131072), ("1GiB", 262144),
                                       (16 << 20, 4096), ("4096k", 1024)])
def test_mem_sizes(make_machine, mem, pages):
    assert make_machine(mem=mem).nr_pages == pages


@pytest.mark.parametrize("kwargs", [
    {"mem": "1.5G"}, {"mem": "lots"}, {"mem": 4097}, {"mem": "512K"}, {"mem": "8T"}, {"mem": -4096},
    {"mem": None}, {"cpus": 0}, {"cpus": 2.0}, {"cpus": 5000}, {"min_free_kbytes": -5},
    {"swap": "x"}, {"backend": "rust"},
])
def test_bad_machine_arguments(backend, kwargs):
    kwargs.setdefault("backend", backend)
    with pytest.raises(InvalidArgument):
        pyalloc.Machine(**kwargs)


def test_backend_is_the_one_asked_for(backend):
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        assert m.backend == backend
        expected = "pyalloc._cbackend" if backend == "c" else "pyalloc.model"
        assert type(m._core).__module__ == expected


def test_default_backend_follows_environment(monkeypatch):
    monkeypatch.setenv("PYALLOC_BACKEND", "model")
    with pyalloc.Machine(mem="16M") as m:
        assert m.backend == "model"


# -- address arithmetic ------------------------------------------------------------

def test_address_arithmetic(machine):
    assert machine.page_address(5) == PAGE_OFFSET + 5 * 4096
    assert machine.virt_to_page(PAGE_OFFSET + 5 * 4096 + 17) == 5
    assert machine.virt_to_phys(PAGE_OFFSET + 0x1234) == 0x1234
    assert machine.phys_to_virt(0x1234) == PAGE_OFFSET + 0x1234
    for bad in (PAGE_OFFSET - 1, pyalloc.VMALLOC_START, 0):
        with pytest.raises(InvalidArgument):
            machine.virt_to_phys(bad)
    for bad in (-1, 2 ** 64):
        with pytest.raises(InvalidArgument):
            machine.page_address(bad)
        with pytest.raises(InvalidArgument):
            machine.phys_to_virt(bad)
    with pytest.raises(TypeError):
        machine.virt_to_page("0x10")


# -- memory access ------------------------------------------------------------------

def test_read_write_memset_across_pages(machine):
    addr = machine.get_free_pages("GFP_KERNEL", 1)
    machine.write(addr + 4090, b"0123456789ab")
    assert machine.read(addr + 4090, 12) == b"0123456789ab"
    machine.memset(addr + 4094, 0xee, 4)
    assert machine.read(addr + 4090, 12) == b"0123\xee\xee\xee\xee89ab"
    machine.write(addr, bytearray(b"xy"))
    machine.write(addr + 2, memoryview(b"zz"))
    assert machine.read(addr, 4) == b"xyzz"
    assert machine.read(addr, 0) == b""


def test_access_faults(machine):
    end = PAGE_OFFSET + machine.mem
    cases = [
        lambda: machine.read(end, 1),
        lambda: machine.read(end - 2, 4),              # runs past the end
        lambda: machine.write(end - 1, b"ab"),
        lambda: machine.memset(end - 1, 0, 2),
        lambda: machine.read(ZERO_SIZE_PTR, 1),
        lambda: machine.read(None, 1),
        lambda: machine.write(0, b"x"),
        lambda: machine.read(pyalloc.VMALLOC_START, 8),
        lambda: machine.read(0xdead0000, 8),
        lambda: machine.read(PAGE_OFFSET, 1 << 62),
    ]
    before = machine.read(end - 2, 2)
    for case in cases:
        with pytest.raises(PageFault):
            case()
    assert machine.read(end - 2, 2) == before        # the failed write changed nothing
    log = machine.dmesg()
    assert any(f"BUG: unable to handle page fault for address: {end:016x}" in line for line in log)
    assert any("BUG: kernel NULL pointer dereference, address: 0000000000000010" in line for line in log)
    machine.check()


def test_access_bad_arguments(machine):
    addr = machine.get_free_pages("GFP_KERNEL")
    with pytest.raises(InvalidArgument):
        machine.read(addr, -1)
    with pytest.raises(InvalidArgument):
        machine.memset(addr, 256, 1)
    with pytest.raises(InvalidArgument):
        machine.memset(addr, -1, 1)
    with pytest.raises(TypeError):
        machine.write(addr, "text")
    with pytest.raises(TypeError):
        machine.read(addr, 1.0)
    with pytest.raises(TypeError):
        machine.read(float(addr), 1)


# -- views and log ---------------------------------------------------------------------

def test_meminfo_and_vmstat_follow_allocations(machine):
    def meminfo():
        return {l.split(":")[0]: int(l.split()[1]) for l in machine.proc("meminfo").splitlines()}

    def vmstat():
        return dict((k, int(v)) for k, v in (l.split() for l in machine.proc("vmstat").splitlines()))

    mi, vs = meminfo(), vmstat()
    assert mi["MemTotal"] == 1 << 20 and mi["MemFree"] == 1 << 20
    p = machine.alloc_pages("GFP_KERNEL", 3)
    machine.drain_pages()       # the order-3 pcp refill took batch >> 3 blocks: back to the buddy
    assert meminfo()["MemFree"] == mi["MemFree"] - 32
    assert vmstat()["pgalloc_dma32"] == vs["pgalloc_dma32"] + 8
    assert vmstat()["nr_free_pages"] == vs["nr_free_pages"] - 8
    machine.free_pages(p, 3)
    assert vmstat()["pgfree"] == vs["pgfree"] + 8
    machine.drain_pages()       # the freed block waits on a pcp list until drained
    assert meminfo() == mi


def test_zoneinfo_shows_watermarks(machine):
    text = machine.proc("zoneinfo")
    assert "Node 0, zone    DMA32\n  pages free     258048\n        boost    0\n        min      1008\n" \
           "        low      1266\n        high     1524\n        promo    1782\n" in text


def test_unknown_proc_file(machine):
    with pytest.raises(InvalidArgument):
        machine.proc("cpuinfo")
    with pytest.raises(InvalidArgument):
        machine.proc(3)


def test_dmesg_has_boot_lines_and_a_clock(machine):
    log = machine.dmesg()
    assert log[0].startswith("[    0.000000] Linux version 6.18.0")
    assert "[    0.000000]   DMA32    [mem 0x0000000001000000-0x000000003fffffff]" in log
    machine.alloc_pages("GFP_KERNEL", 11)
    stamps = [line[1:13] for line in machine.dmesg()]
    assert stamps[-1] > stamps[0]


def test_same_program_same_text(backend):
    def run():
        with pyalloc.Machine(mem="16M", backend=backend) as m:
            ps = [m.alloc_pages("GFP_KERNEL", o % 4) for o in range(200)]
            for p, o in zip(ps[::3], range(0, 200, 3)):
                if p is not None:
                    m.free_pages(p, o % 4)
            try:
                m.free_pages(ps[0])
            except pyalloc.DoubleFree:
                pass
            return m.dmesg(), [m.proc(n) for n in ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat")]
    assert run() == run()


# -- close ------------------------------------------------------------------------------------

def test_every_call_after_close_raises(backend):
    m = pyalloc.Machine(mem="16M", backend=backend)
    pfn = m.alloc_pages("GFP_KERNEL")
    m.close()
    m.close()       # idempotent
    calls = [
        lambda: m.alloc_pages("GFP_KERNEL"), lambda: m.free_pages(pfn), lambda: m.get_free_pages("GFP_KERNEL"),
        lambda: m.get_zeroed_page("GFP_KERNEL"), lambda: m.free_pages_addr(PAGE_OFFSET),
        lambda: m.page_address(0), lambda: m.virt_to_page(PAGE_OFFSET), lambda: m.virt_to_phys(PAGE_OFFSET),
        lambda: m.phys_to_virt(0), lambda: m.read(PAGE_OFFSET, 1), lambda: m.write(PAGE_OFFSET, b"x"),
        lambda: m.memset(PAGE_OFFSET, 0, 1), lambda: m.proc("buddyinfo"), lambda: m.dmesg(), lambda: m.check(),
        lambda: m.snapshot(),
    ]
    for call in calls:
        with pytest.raises(MachineClosed):
            call()
    assert "closed" in repr(m)


def test_context_manager_closes(backend):
    with pyalloc.Machine(mem="16M", backend=backend) as m:
        pass
    with pytest.raises(MachineClosed):
        m.alloc_pages("GFP_KERNEL")


# -- constants shared by the two backends ---------------------------------------------------------

def test_model_constants_match_the_c_enums():
    conftest = pytest.importorskip("conftest")
    if not conftest.c_core_available():
        pytest.skip("the C core is not built")
    from pyalloc._core import lib
    from pyalloc import errors
    from pyalloc import _abi as status
    pairs = {name[3:]: getattr(lib, name) for name in dir(lib) if name.startswith("PA_") and name != "PA_ABI_VERSION"}
    checked = 0
    for name, value in pairs.items():
        if name.startswith("PG_"):
            assert getattr(status, name) == value, name
        elif name.startswith("PAGE_STATE_") or name.startswith("KIND_"):
            assert getattr(status, name) == value, name
        elif name.startswith("CTR_") or name.startswith("COST_") or name in ("NR_CTRS", "NR_COSTS"):
            # reclaim counters: the shared table pyalloc/vmevents.py, in enum order
            from pyalloc import _abi as vmevents
            if name == "NR_CTRS":
                assert value == vmevents.NR_CTRS
            elif name == "NR_COSTS":
                assert value == vmevents.NR_COSTS
            elif name.startswith("CTR_"):
                assert vmevents.CTR[name[4:].lower()] == value, name
            else:
                assert vmevents.COST[name[5:].lower()] == value, name
        elif name == "FAULT_WRITE":
            from pyalloc.model import reclaim
            assert reclaim.FAULT_WRITE == value
        elif (name.startswith("E") or name == "OK") and hasattr(errors, name):
            assert getattr(errors, name) == value, name
            assert name == "OK" or value in errors.STATUS_NAMES
        else:
            assert getattr(status, name) == value, name
        checked += 1
    assert checked >= 25
    # every error status maps to a Python answer
    for code in errors.STATUS_NAMES:
        assert code in errors.EXCEPTIONS or code in (errors.OK, errors.ENOMEM, errors.E2BIG)
