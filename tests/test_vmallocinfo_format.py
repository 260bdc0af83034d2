"""Format tests for /proc/vmallocinfo (procfs.render("vmallocinfo")) and the
vmalloc lines of meminfo, against a real 6.18 sample
(shared/fixtures/vmallocinfo.txt, its first 40 lines) and vmalloc_info_show() /
show_purge_info() of 6.18's mm/vmalloc.c (kernel-facts.md §5.5).

The fixture's pointers are hashed, so it is compared by structure: the shape of
each line, the columns of the size field, the order of the optional fields.
"""

from __future__ import annotations

import copy
import re

import pytest

from pyalloc.text import procfs
from pyalloc.errors import InvalidArgument

try:                                    # tests/ on sys.path (pytest's default rootdir import)
    from test_procfs import example_snapshot, fixture, SNAPSHOTS
except ImportError:                     # tests/ as a package
    from tests.test_procfs import example_snapshot, fixture, SNAPSHOTS

VMALLOC_START = 0xffffc90000000000

FLAG_WORDS = ("ioremap", "sparse", "vmalloc", "vmap", "user", "dma-coherent", "vpages")

# One busy area: "0x%pK-0x%pK %7ld", then [ caller] [ pages=%d] [ phys=%pa]
# [flag words, in the kernel's order] [ N%u=%u ...].
AREA_RE = re.compile(
    r"^0x(?P<start>[0-9a-f]{16})-0x(?P<end>[0-9a-f]{16}) (?P<size>[ 0-9]{6}\d|\d{8,})"
    r"(?: (?P<caller>(?!pages=|phys=|N\d+=)\S+))?"
    r"(?: pages=(?P<pages>\d+))?"
    r"(?: phys=0x(?P<phys>[0-9a-f]{16}))?"
    r"(?P<flags>(?: ioremap)?(?: sparse)?(?: vmalloc)?(?: vmap)?(?: user)?(?: dma-coherent)?(?: vpages)?)"
    r"(?P<nodes>(?: N\d+=\d+)*)$")
UNPURGED_RE = re.compile(
    r"^0x(?P<start>[0-9a-f]{16})-0x(?P<end>[0-9a-f]{16}) (?P<size>[ 0-9]{6}\d|\d{8,}) unpurged vm_area$")


def area(start, size, caller, *, nr_pages=0, phys_addr=0, flags=(), nodes=None):
    return {"start": start, "size": size, "caller": caller, "nr_pages": nr_pages,
            "phys_addr": phys_addr, "flags": tuple(flags), "nodes": dict(nodes or {})}


def _snap(areas=(), unpurged=(), used_pages=0):
    snap = example_snapshot()
    snap["vmalloc"] = {"areas": list(areas), "unpurged": list(unpurged), "used_pages": used_pages}
    return snap


def _render(**kwargs) -> str:
    return procfs.render("vmallocinfo", _snap(**kwargs))


# A small but complete machine: every kind of line vmalloc_info_show() prints.
S = VMALLOC_START
SYNTHETIC_AREAS = [
    area(S, 0x5000, "my_func+0x10/0x20", nr_pages=4, flags=("vmalloc",), nodes={0: 4}),
    area(S + 0x5000, 0x5000, "irq_init_percpu_irqstack+0xed/0x120", flags=("vmap",)),
    area(S + 0x10000, 0x2000, "acpi_os_map_iomem+0x1bc/0x1e0", phys_addr=0xa0000,
         flags=("ioremap",)),
    area(S + 0x200000, 0x402000, "big_table_alloc+0x2a/0x90", nr_pages=1026,
         flags=("vmalloc", "vpages"), nodes={0: 1026}),
    area(S + 0x800000, 0x3000, "vmalloc_user_test+0x5/0x40", nr_pages=2,
         flags=("vmalloc", "user"), nodes={0: 2}),
]
SYNTHETIC_UNPURGED = [{"start": S + 0x1000000, "size": 0x2000},
                      {"start": S + 0x1002000, "size": 0x11000}]
SYNTHETIC_LINES = [
    "0xffffc90000000000-0xffffc90000005000   20480 my_func+0x10/0x20 pages=4 vmalloc N0=4",
    "0xffffc90000005000-0xffffc9000000a000   20480 irq_init_percpu_irqstack+0xed/0x120 vmap",
    "0xffffc90000010000-0xffffc90000012000    8192 acpi_os_map_iomem+0x1bc/0x1e0"
    " phys=0x00000000000a0000 ioremap",
    "0xffffc90000200000-0xffffc90000602000 4202496 big_table_alloc+0x2a/0x90"
    " pages=1026 vmalloc vpages N0=1026",
    "0xffffc90000800000-0xffffc90000803000   12288 vmalloc_user_test+0x5/0x40"
    " pages=2 vmalloc user N0=2",
    "0xffffc90001000000-0xffffc90001002000    8192 unpurged vm_area",
    "0xffffc90001002000-0xffffc90001013000   69632 unpurged vm_area",
]


# --------------------------------------------------------------------------
# The fixture

def _fixture_lines() -> list[str]:
    text = fixture("vmallocinfo")
    assert text.endswith("\n")
    return text.splitlines()


def test_fixture_lines_match_our_regex():
    for line in _fixture_lines():
        assert AREA_RE.match(line) or UNPURGED_RE.match(line), repr(line)


def test_fixture_size_column():
    """The size is "%7ld" after one space: it ends at column 45 whatever its width."""
    ours = procfs.render("vmallocinfo", _snap(SYNTHETIC_AREAS, SYNTHETIC_UNPURGED)).splitlines()
    for line in _fixture_lines() + ours:
        assert line[37] == " " and line[45] == " ", repr(line)
        assert line[38:45].lstrip(" ").isdigit() and line[44].isdigit(), repr(line)


def test_fixture_size_is_end_minus_start_on_our_lines():
    """The fixture's pointers are hashed; ours are not, and the size is their difference."""
    for line in procfs.render("vmallocinfo", _snap(SYNTHETIC_AREAS, SYNTHETIC_UNPURGED)).splitlines():
        m = AREA_RE.match(line) or UNPURGED_RE.match(line)
        assert int(m["end"], 16) - int(m["start"], 16) == int(m["size"])


def _structure(line: str) -> tuple:
    """What a line looks like, without its numbers: the kinds of fields in order."""
    m = AREA_RE.match(line)
    if not m:
        return ("unpurged", len(line.split()[1]))
    return (m["caller"] is not None, m["pages"] is not None, m["phys"] is not None,
            m["flags"].split(), re.sub(r"\d+", "#", m["nodes"]))


def test_fixture_kinds_of_line_and_ours_agree():
    """Each kind of line in the fixture (vmap, ioremap with phys, vmalloc with pages and
    a node count) comes out of the renderer with the same fields in the same order and
    the same columns."""
    theirs = {}
    for line in _fixture_lines():
        theirs.setdefault(tuple(_structure(line)[3]), line)
    assert set(theirs) == {("vmap",), ("ioremap",), ("vmalloc",)}
    ours = {tuple(_structure(l)[3]): l
            for l in procfs.render("vmallocinfo", _snap(SYNTHETIC_AREAS)).splitlines()}
    for kind, their_line in theirs.items():
        our_line = ours[kind]
        assert _structure(our_line) == _structure(their_line), (our_line, their_line)
        # Same column for every separator up to the caller.
        assert [i for i, c in enumerate(our_line[:46]) if c in "x- "] == \
               [i for i, c in enumerate(their_line[:46]) if c in "x- "], (our_line, their_line)


def test_fixture_field_order():
    """caller, pages=, phys=, flag words, N<node>= - each optional, never reordered."""
    for line in _fixture_lines():
        fields = line.split()[2:]
        caller, rest = fields[0], fields[1:]
        assert re.fullmatch(r"[A-Za-z0-9_.]+\+0x[0-9a-f]+/0x[0-9a-f]+", caller), line
        rank = []
        for f in rest:
            if f.startswith("pages="):
                rank.append(0)
            elif f.startswith("phys="):
                rank.append(1)
            elif f in FLAG_WORDS:
                rank.append(2 + FLAG_WORDS.index(f))
            else:
                assert re.fullmatch(r"N\d+=\d+", f), line
                rank.append(20)
        assert rank == sorted(rank), line
        # vmalloc'ed areas say how many pages they hold and where; vmap/ioremap don't.
        if "vmalloc" in rest:
            pages = int(next(f for f in rest if f.startswith("pages="))[6:])
            assert sum(int(f.split("=")[1]) for f in rest if f.startswith("N")) == pages
            assert int(line.split()[1]) == pages * 4096 + 4096       # + guard page
        if "ioremap" in rest:
            assert any(f.startswith("phys=") for f in rest) and not any(f.startswith("pages=") for f in rest)


def test_kernel_facts_example_line_has_our_shape():
    line = "0x00000000bf8661b7-0x00000000110d8339   20480 kernel_clone+0xb8/0x400 pages=4 vmalloc N0=4"
    assert line in _fixture_lines()
    ours = procfs.render("vmallocinfo", _snap([area(0xbf8661b7, 20480, "kernel_clone+0xb8/0x400",
                                                    nr_pages=4, flags=("vmalloc",), nodes={0: 4})]))
    assert ours == "0x00000000bf8661b7-0x00000000bf86b1b7   20480 kernel_clone+0xb8/0x400 pages=4 vmalloc N0=4\n"
    assert ours.split()[1:] == line.split()[1:]


# --------------------------------------------------------------------------
# Synthetic areas, exact text

def test_synthetic_exact_lines():
    text = procfs.render("vmallocinfo", _snap(SYNTHETIC_AREAS, SYNTHETIC_UNPURGED))
    assert text == "".join(l + "\n" for l in SYNTHETIC_LINES)
    for line in SYNTHETIC_LINES:
        assert AREA_RE.match(line) or UNPURGED_RE.match(line), line


def test_vmalloc_area_of_four_pages_and_guard():
    assert _render(areas=[area(VMALLOC_START, 5 * 4096, "my_func+0x10/0x20", nr_pages=4,
                               flags=("vmalloc",), nodes={0: 4})]) == \
        "0xffffc90000000000-0xffffc90000005000   20480 my_func+0x10/0x20 pages=4 vmalloc N0=4\n"


def test_vmap_area_has_no_pages_or_nodes():
    assert _render(areas=[area(VMALLOC_START + 0x4000, 0x5000, "vmap_user+0x1/0x2",
                               flags=("vmap",))]) == \
        "0xffffc90000004000-0xffffc90000009000   20480 vmap_user+0x1/0x2 vmap\n"


def test_vmap_put_pages_prints_pages_without_nodes_when_given_none():
    """vmap(VM_MAP_PUT_PAGES) sets nr_pages; the node counts are whatever the snapshot says."""
    assert _render(areas=[area(VMALLOC_START, 0x3000, "f+0x0/0x1", nr_pages=2, flags=("vmap",))]) == \
        "0xffffc90000000000-0xffffc90000003000   12288 f+0x0/0x1 pages=2 vmap\n"


def test_ioremap_with_phys():
    assert _render(areas=[area(0xffffc90000100000, 0x2000, "vp_modern_map_capability+0x142/0x1d0",
                               phys_addr=0x4000000000, flags=("ioremap",))]) == \
        ("0xffffc90000100000-0xffffc90000102000    8192 vp_modern_map_capability+0x142/0x1d0"
         " phys=0x0000004000000000 ioremap\n")


def test_vpages_comes_last_before_nodes():
    line = _render(areas=[area(VMALLOC_START, 0x402000, "f+0x1/0x2", nr_pages=1026,
                               flags=("vmalloc", "vpages"), nodes={0: 1026})])
    assert line.endswith(" pages=1026 vmalloc vpages N0=1026\n")


def test_all_flags_print_in_kernel_order():
    line = _render(areas=[area(VMALLOC_START, 0x2000, "f+0x1/0x2", nr_pages=1, phys_addr=0x1000,
                               flags=FLAG_WORDS, nodes={0: 1})])
    assert line == ("0xffffc90000000000-0xffffc90000002000    8192 f+0x1/0x2 pages=1"
                    " phys=0x0000000000001000 ioremap sparse vmalloc vmap user dma-coherent vpages N0=1\n")
    # The words always come out in the kernel's order, whatever order the snapshot lists them in.
    shuffled = _render(areas=[area(VMALLOC_START, 0x2000, "f+0x1/0x2", nr_pages=1, phys_addr=0x1000,
                                   flags=tuple(reversed(FLAG_WORDS)), nodes={0: 1})])
    assert shuffled == line


def test_unknown_flag_is_rejected():
    with pytest.raises(InvalidArgument):
        _render(areas=[area(VMALLOC_START, 0x2000, "f+0x1/0x2", flags=("huge",))])


def test_nodes_print_only_nonzero_counts_in_node_order():
    line = _render(areas=[area(VMALLOC_START, 0x6000, "f+0x1/0x2", nr_pages=5,
                               flags=("vmalloc",), nodes={2: 3, 0: 2, 1: 0})])
    assert line.endswith(" pages=5 vmalloc N0=2 N2=3\n")
    empty = _render(areas=[area(VMALLOC_START, 0x2000, "f+0x1/0x2", nr_pages=1,
                                flags=("vmalloc",), nodes={})])
    assert empty.endswith(" pages=1 vmalloc\n")


def test_no_caller_no_flags():
    """if (v->caller) - an area without a caller prints the bare range."""
    assert _render(areas=[area(VMALLOC_START, 0x2000, "")]) == \
        "0xffffc90000000000-0xffffc90000002000    8192\n"


def test_caller_printed_as_given():
    line = _render(areas=[area(VMALLOC_START, 0x2000, "0xffffffffc0a01234", flags=("vmalloc",),
                               nr_pages=1, nodes={0: 1})])
    assert " 0xffffffffc0a01234 pages=1 " in line


def test_unpurged_lines_come_after_all_areas():
    text = _render(areas=SYNTHETIC_AREAS[:1], unpurged=[{"start": VMALLOC_START - 0x10000 + 0x10000 * 3,
                                                          "size": 0x5000}])
    assert text.splitlines() == [
        SYNTHETIC_LINES[0],
        "0xffffc90000020000-0xffffc90000025000   20480 unpurged vm_area",
    ]
    assert _render(unpurged=[{"start": VMALLOC_START, "size": 4096}]) == \
        "0xffffc90000000000-0xffffc90000001000    4096 unpurged vm_area\n"


def test_wide_sizes_widen_the_field():
    """%7ld pads but never truncates: 8+ digit sizes push the caller right."""
    line = _render(areas=[area(VMALLOC_START, 0x40001000, "f+0x1/0x2", nr_pages=0x40000,
                               flags=("vmalloc",), nodes={0: 0x40000})])
    assert line.startswith("0xffffc90000000000-0xffffc90040001000 1073745920 f+0x1/0x2 pages=262144 ")
    assert AREA_RE.match(line.rstrip("\n"))


def test_areas_print_in_snapshot_order():
    """The kernel walks vmap node 0's busy list, then node 1's...: the renderer does not re-sort."""
    a, b = SYNTHETIC_AREAS[0], SYNTHETIC_AREAS[2]
    assert _render(areas=[b, a]).splitlines() == [SYNTHETIC_LINES[2], SYNTHETIC_LINES[0]]


def test_no_vmalloc_in_snapshot_renders_empty_file():
    snap = example_snapshot()
    assert "vmalloc" not in snap
    assert procfs.render("vmallocinfo", snap) == ""
    assert _render() == ""


def test_registered_and_pure():
    assert procfs.RENDERERS["vmallocinfo"] is procfs.render_vmallocinfo
    snap = _snap(SYNTHETIC_AREAS, SYNTHETIC_UNPURGED, 1032)
    before = copy.deepcopy(snap)
    assert procfs.render("vmallocinfo", snap) == procfs.render("vmallocinfo", snap)
    assert snap == before


# --------------------------------------------------------------------------
# meminfo / vmstat / zoneinfo

def _meminfo(snap) -> dict[str, int]:
    out = {}
    for line in procfs.render("meminfo", snap).splitlines():
        label, value = line.split(":")
        out[label] = int(value.split()[0])
    return out


@pytest.mark.parametrize("name", sorted(SNAPSHOTS))
def test_meminfo_vmalloc_used_from_vmalloc_view(name):
    snap = SNAPSHOTS[name]()
    assert _meminfo(snap)["VmallocUsed"] == 4 * snap["vm"]["vmalloc_pages"]     # older snapshots
    snap["vmalloc"] = {"areas": SYNTHETIC_AREAS, "unpurged": SYNTHETIC_UNPURGED, "used_pages": 1032}
    m = _meminfo(snap)
    assert m["VmallocUsed"] == 4 * 1032 == 4128
    assert m["VmallocTotal"] == 34359738367
    assert m["VmallocChunk"] == 0
    assert "VmallocTotal:   34359738367 kB\n" in procfs.render("meminfo", snap)
    assert "VmallocUsed:        4128 kB\n" in procfs.render("meminfo", snap)


def test_meminfo_vmalloc_used_zero_when_view_is_empty():
    assert _meminfo(_snap())["VmallocUsed"] == 0


def test_meminfo_vmalloc_lines_line_up_with_fixture():
    ours = procfs.render("meminfo", _snap(SYNTHETIC_AREAS, used_pages=1389)).splitlines()
    theirs = fixture("meminfo").splitlines()
    for label in ("VmallocTotal:", "VmallocUsed:", "VmallocChunk:", "PageTables:"):
        o = next(l for l in ours if l.startswith(label))
        t = next(l for l in theirs if l.startswith(label))
        assert len(o) == len(t), (o, t)
    assert "VmallocUsed:        5556 kB" in ours                # 1389 pages, the fixture's value


@pytest.mark.parametrize("pt_pages", [0, 17, 367, 123456789])
def test_page_tables_everywhere(pt_pages):
    snap = _snap(SYNTHETIC_AREAS, used_pages=7)
    snap["vm"]["nr_page_table_pages"] = pt_pages
    assert _meminfo(snap)["PageTables"] == 4 * pt_pages
    vmstat = dict(l.split(" ") for l in procfs.render("vmstat", snap).splitlines())
    assert int(vmstat["nr_page_table_pages"]) == pt_pages
    assert int(vmstat["nr_sec_page_table_pages"]) == 0
    zoneinfo = procfs.render("zoneinfo", snap)
    assert zoneinfo.count("\n      nr_page_table_pages %d\n" % pt_pages) == 1
    assert zoneinfo.count("nr_page_table_pages") == 1          # per-node stats: first zone only


def test_page_tables_fixture_agree():
    """The real machine's three views of NR_PAGETABLE agree: pages in vmstat and
    zoneinfo, kB in meminfo."""
    vmstat = dict(l.split(" ") for l in fixture("vmstat").splitlines())
    meminfo = {l.split(":")[0]: int(l.split()[1]) for l in fixture("meminfo").splitlines()}
    zone = re.search(r"\n      nr_page_table_pages (\d+)\n", fixture("zoneinfo"))
    assert meminfo["PageTables"] == 4 * int(vmstat["nr_page_table_pages"]) == 4 * int(zone[1])
