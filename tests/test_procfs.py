"""Format tests for pyalloc.text.procfs and pyalloc.text.printk.

The text must have the structure of a real Linux 6.18 machine's /proc files
(shared/fixtures/): same line order, same labels, same column positions, same
trailing spaces.  Numbers come from synthetic snapshots built here with the
kernel's own boot-time formulas (watermarks, lowmem_reserve, min_free_kbytes).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from pyalloc.text import procfs
from pyalloc.errors import InvalidArgument
from pyalloc.text.printk import KernelLog, warn_alloc_text, warn_text

FIXTURES = Path(__file__).resolve().parent / "fixtures"     # copies of ../shared/fixtures

ZONE_BOUNDS = (0, 1 << 12, 1 << 20)             # DMA < 16 MiB, DMA32 < 4 GiB, Normal above
LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)


def fixture(name: str) -> str:
    path = FIXTURES / f"{name}.txt"
    if not path.exists():
        pytest.skip(f"fixture {path} not available")
    return path.read_text()


# --------------------------------------------------------------------------
# Snapshots

def _zone_ranges(nr_pages: int) -> list[tuple[int, int]]:
    """(start_pfn, spanned) for DMA, DMA32, Normal, Movable, Device."""
    ranges = []
    for i, start in enumerate(ZONE_BOUNDS):
        end = ZONE_BOUNDS[i + 1] if i + 1 < len(ZONE_BOUNDS) else nr_pages
        end = min(end, nr_pages)
        ranges.append((start, end - start) if end > start else (0, 0))
    return ranges + [(0, 0), (0, 0)]


def _split_free(nr_free: int, small: dict[tuple[int, int], int]) -> list[list[int]]:
    """free_area for a zone: the blocks in ``small`` ((order, mt) -> count), the rest
    of ``nr_free`` as order-10 Movable blocks and a binary tail."""
    area = [[0] * 5 for _ in range(11)]
    rest = nr_free
    for (order, mt), count in small.items():
        area[order][mt] += count
        rest -= count << order
    assert rest >= 0
    area[10][1] += rest >> 10
    for order in range(9, -1, -1):
        if rest & (1 << order):
            area[order][1] += 1
    return area


def example_snapshot(nr_pages: int = 262144, cpus: int = 2, *, used: int = 3000,
                     reserved: int = 0, boost: int = 0, highatomic: int = 0) -> dict:
    """A realistic snapshot of a freshly booted machine with ``nr_pages`` of RAM.

    Zones by physical address as on x86-64; watermarks, lowmem_reserve and
    min_free_kbytes by the kernel's boot formulas (__setup_per_zone_wmarks,
    setup_per_zone_lowmem_reserve, calculate_min_free_kbytes).  ``used`` pages are
    allocated from the highest zone, ``reserved`` pages of each zone are not
    managed, ``highatomic`` order-2 blocks sit on the HighAtomic list of the
    highest zone.
    """
    ranges = _zone_ranges(nr_pages)
    zones = []
    for zid, (start, spanned) in enumerate(ranges):
        present = spanned
        managed = max(present - reserved, 0) if present else 0
        zones.append({"name": procfs.ZONE_NAMES[zid], "start_pfn": start,
                      "spanned": spanned, "present": present, "managed": managed})
    lowmem = sum(z["managed"] for z in zones[:3])
    min_free_kbytes = min(max(math.isqrt(lowmem * 4 * 16), 128), 262144)
    pages_min = min_free_kbytes >> 2
    for zid, z in enumerate(zones):
        tmp = pages_min * z["managed"] // lowmem
        if zid == procfs.ZONE_MOVABLE:
            wmin = min(max(z["managed"] // 1024, 32), 128)
        else:
            wmin = tmp
        tmp = max(tmp >> 2, z["managed"] * 10 // 10000)
        z["wmark"] = (wmin, wmin + tmp, wmin + 2 * tmp, wmin + 3 * tmp)
        z["boost"] = 0
        reserve = [0] * 5
        ratio = LOWMEM_RESERVE_RATIO[zid]
        if ratio and z["managed"]:
            acc = 0
            for j in range(zid + 1, 5):
                acc += zones[j]["managed"]
                reserve[j] = acc // ratio
        z["lowmem_reserve"] = reserve
    top = max(i for i, z in enumerate(zones) if z["present"])
    zones[top]["boost"] = boost
    for zid, z in enumerate(zones):
        small = {}
        z_used = used if zid == top else 0
        if z["managed"]:
            small = {(0, 0): 3, (1, 0): 2, (3, 2): 1, (8, 0): 1} if zid == top else {}
            if zid == top and highatomic:
                small[(2, 3)] = highatomic
        nr_free = max(z["managed"] - z_used, 0)
        z["free_area"] = _split_free(nr_free, small) if nr_free else [[0] * 5 for _ in range(11)]
        z["nr_free_pages"] = nr_free
        z["nr_free_pages_blocks"] = sum(sum(z["free_area"][o]) << o for o in (9, 10))
        z["nr_reserved_highatomic"] = 512 if (zid == top and highatomic) else 0
        blocks = (z["spanned"] + 511) // 512
        z["pageblocks"] = [2 if zid == top and blocks else 0, 0, 1 if zid == top and blocks else 0, 0, 0]
        z["pageblocks"][1] = blocks - sum(z["pageblocks"])
        z["pgalloc"] = z_used + 1234 if zid == top else 0
        z["numa_hit"] = z["pgalloc"] // 2
    return {
        "nr_cpus": cpus,
        "total_pages": nr_pages,
        "min_free_kbytes": min_free_kbytes,
        "zones": zones,
        "vm": {"pgfree": 1234, "nr_slab_reclaimable": 321, "nr_slab_unreclaimable": 654,
               "nr_page_table_pages": 17, "nr_kernel_stack_kb": 96, "vmalloc_pages": 25,
               "swap_total_pages": 0, "swap_free_pages": 0},
    }


SNAPSHOTS = {
    "1G": lambda: example_snapshot(),
    "8G-4cpu": lambda: example_snapshot(1 << 21, 4, reserved=300, boost=64, highatomic=3),
    "12M": lambda: example_snapshot(3072, 1, used=100),
}


@pytest.fixture(params=sorted(SNAPSHOTS))
def snap(request):
    return SNAPSHOTS[request.param]()


def test_example_snapshot_matches_kernel_facts():
    """The helper's boot formulas give the numbers kernel-facts.md §4.2 quotes."""
    s = example_snapshot()
    assert s["min_free_kbytes"] == 4096
    dma, dma32 = s["zones"][:2]
    assert dma["wmark"][:3] == (16, 20, 24)
    assert dma32["wmark"][:3] == (1008, 1266, 1524)
    assert dma["lowmem_reserve"] == [0, 1008, 1008, 1008, 1008]
    assert s["zones"][3]["wmark"] == (32, 32, 32, 32)      # empty Movable, as in the fixture
    assert s["zones"][4]["wmark"] == (0, 0, 0, 0)


# --------------------------------------------------------------------------
# Dispatch

def test_render_dispatch_and_unknown_name():
    s = example_snapshot()
    for name in ("buddyinfo", "pagetypeinfo", "zoneinfo", "meminfo", "vmstat", "slabinfo"):
        assert procfs.render(name, s) == procfs.RENDERERS[name](s)
    for bad in ("cpuinfo", "", None):
        with pytest.raises(InvalidArgument):
            procfs.render(bad, s)


def test_render_is_pure(snap):
    import copy
    before = copy.deepcopy(snap)
    texts = [procfs.render(name, snap) for name in procfs.RENDERERS]
    assert texts == [procfs.render(name, snap) for name in procfs.RENDERERS]
    assert snap == before


# --------------------------------------------------------------------------
# buddyinfo

BUDDY_RE = re.compile(r"^Node 0, zone (?P<zone>[ A-Za-z0-9]{8})(?: {1}[ 0-9]{6}){11} $")


def test_buddyinfo_fixture_matches_our_regex():
    for line in fixture("buddyinfo").splitlines():
        assert BUDDY_RE.match(line), line


def test_buddyinfo_format(snap):
    text = procfs.render("buddyinfo", snap)
    assert text.endswith(" \n")
    lines = text.splitlines()
    populated = [z for z in snap["zones"] if z["present"]]
    assert len(lines) == len(populated)
    for line, zone in zip(lines, populated):
        assert BUDDY_RE.match(line), repr(line)
        assert line[13:21].strip() == zone["name"]
        counts = [int(x) for x in line[21:].split()]
        assert counts == [sum(per_type) for per_type in zone["free_area"]]
        assert len(line) == len("Node 0, zone ") + 8 + 1 + 11 * 7


def test_buddyinfo_columns_line_up_with_fixture():
    ours = procfs.render("buddyinfo", example_snapshot(1 << 21)).splitlines()
    theirs = fixture("buddyinfo").splitlines()
    assert [len(x) for x in ours] == [len(x) for x in theirs]
    # The numbers end at the same columns.
    ends = lambda line: [m.end() for m in re.finditer(r"\d+", line)]
    assert [ends(x)[1:] for x in ours] == [ends(x)[1:] for x in theirs]


def test_buddyinfo_leaves_out_empty_normal_zone():
    s = example_snapshot()                      # 1 GiB: no Normal zone
    assert s["zones"][2]["present"] == 0
    text = procfs.render("buddyinfo", s)
    assert "Normal" not in text
    assert [l.split()[3] for l in text.splitlines()] == ["DMA", "DMA32"]
    big = procfs.render("buddyinfo", example_snapshot(1 << 21))
    assert "zone   Normal " in big


def test_buddyinfo_wide_numbers_widen_the_column():
    s = example_snapshot()
    s["zones"][1]["free_area"][0] = [0, 12345678, 0, 0, 0]
    line = procfs.render("buddyinfo", s).splitlines()[1]
    assert line.startswith("Node 0, zone    DMA32 12345678      ")


# --------------------------------------------------------------------------
# pagetypeinfo

def _pagetype_structure(text: str) -> list[str]:
    """Each line reduced to its shape: digits -> 9, so widths stay visible."""
    return [re.sub(r"\d", "9", line) for line in text.split("\n")]


def test_pagetypeinfo_header_and_structure(snap):
    text = procfs.render("pagetypeinfo", snap)
    ref = fixture("pagetypeinfo")
    ours, theirs = text.split("\n"), ref.split("\n")
    assert ours[:4] == theirs[:4]                       # header, blank, order header
    row = re.compile(r"^Node    0, zone [ A-Za-z0-9]{8}, type [ A-Za-z]{12}(?: >?[ 0-9]{6}){11} $")
    count_row = re.compile(r"^Node 0, zone [ A-Za-z0-9]{8}(?: [ 0-9]{12}){5} $")
    populated = [z for z in snap["zones"] if z["present"]]
    free_rows = ours[4:4 + 5 * len(populated)]
    assert all(row.match(r) for r in free_rows), free_rows
    rest = ours[4 + 5 * len(populated):]
    assert rest[0] == ""
    assert rest[1] == next(l for l in theirs if l.startswith("Number of blocks type"))
    counts = rest[2:2 + len(populated)]
    assert all(count_row.match(r) for r in counts), counts
    assert rest[2 + len(populated):] == [""]
    for zone, line in zip(populated, counts):
        assert [int(x) for x in line.split()[4:]] == zone["pageblocks"]
    for i, zone in enumerate(populated):
        for mt in range(5):
            nums = [int(x) for x in free_rows[5 * i + mt].split()[6:]]
            assert nums == [zone["free_area"][o][mt] for o in range(11)]


def test_pagetypeinfo_same_shape_as_fixture():
    ours = _pagetype_structure(procfs.render("pagetypeinfo", example_snapshot(1 << 21)))
    theirs = _pagetype_structure(fixture("pagetypeinfo"))
    # Same number of lines and the same line lengths where the numbers fit the
    # 6/12-column fields (they always do in these two samples).
    assert len(ours) == len(theirs)
    assert [len(x) for x in ours] == [len(x) for x in theirs]
    label = lambda line: line.rstrip(" 9>")
    assert [label(x) for x in ours] == [label(x) for x in theirs]


def test_pagetypeinfo_caps_long_lists():
    s = example_snapshot()
    s["zones"][1]["free_area"][0][1] = 250000
    text = procfs.render("pagetypeinfo", s)
    assert ">100000 " in text
    assert "250000" not in text


# --------------------------------------------------------------------------
# zoneinfo

def _zoneinfo_labels(text: str) -> list[str]:
    """The label of every line: its text without the value, numbers blanked."""
    out = []
    for line in text.split("\n"):
        line = re.sub(r"protection: \(.*\)", "protection: (...)", line)
        line = re.sub(r"cpu: \d+", "cpu: N", line)
        line = re.sub(r"(?<=[a-z_: ])\d+$", "", line)
        out.append(line)
    return out


def test_zoneinfo_same_labels_as_fixture():
    """A machine with DMA, DMA32 and Normal on 2 CPUs: every line of the
    fixture, in order, with the same label and padding."""
    ours = _zoneinfo_labels(procfs.render("zoneinfo", example_snapshot(1 << 21, 2)))
    theirs = _zoneinfo_labels(fixture("zoneinfo"))
    assert ours == theirs


def test_zoneinfo_padding_of_short_names():
    text = procfs.render("zoneinfo", example_snapshot())
    assert "\n      nr_mlock     0\n" in text
    assert "\n      nr_mapped    0\n" in text
    assert "\n      numa_foreign 0\n" in text
    assert "\n      nr_zspages   0\n" in text
    assert "\n  node_unreclaimable:  0\n  start_pfn:           0\n" in text


def _zone_blocks(text: str) -> dict[str, str]:
    blocks = re.split(r"^(?=Node 0, zone)", text, flags=re.M)
    return {b.split("\n", 1)[0][13:].strip(): b for b in blocks if b}


def test_zoneinfo_all_zones_and_values(snap):
    text = procfs.render("zoneinfo", snap)
    assert text.endswith("\n") and not text.endswith("\n\n")
    blocks = _zone_blocks(text)
    assert list(blocks) == list(procfs.ZONE_NAMES)
    first = next(z["name"] for z in snap["zones"] if z["present"])
    assert [n for n, b in blocks.items() if "per-node stats" in b] == [first]
    node = blocks[first]
    assert f"\n      nr_slab_reclaimable {snap['vm']['nr_slab_reclaimable']}\n" in node
    assert f"\n      nr_slab_unreclaimable {snap['vm']['nr_slab_unreclaimable']}\n" in node
    assert f"\n      nr_kernel_stack {snap['vm']['nr_kernel_stack_kb']}\n" in node
    assert f"\n      nr_page_table_pages {snap['vm']['nr_page_table_pages']}\n" in node
    for zone in snap["zones"]:
        b = blocks[zone["name"]]
        boost = zone["boost"]
        assert f"\n  pages free     {zone['nr_free_pages']}\n" in b
        assert f"\n        boost    {boost}\n" in b
        for label, value in zip(("min", "low", "high", "promo"), zone["wmark"]):
            assert f"\n        {label:<8} {value + boost}\n" in b
        for label in ("spanned", "present", "managed"):
            assert f"\n        {label:<8} {zone[label]}\n" in b
        prot = "(" + ", ".join(map(str, zone["lowmem_reserve"])) + ")"
        assert f"\n        protection: {prot}\n" in b
        if not zone["present"]:
            assert b.endswith(f"protection: {prot}\n")
            continue
        assert f"\n      nr_free_pages {zone['nr_free_pages']}\n" in b
        assert f"\n      nr_free_pages_blocks {zone['nr_free_pages_blocks']}\n" in b
        assert f"\n      numa_hit     {zone['numa_hit']}\n" in b
        assert f"\n      numa_local   {zone['numa_hit']}\n" in b
        assert b.count("\n    cpu: ") == snap["nr_cpus"]
        assert b.count("\n  vm stats threshold: ") == snap["nr_cpus"]
        assert b.endswith(f"\n  start_pfn:           {zone['start_pfn']}\n")


def test_zoneinfo_pageset_formulas_reproduce_fixture():
    """batch, high_min, high_max and the stat threshold computed from the
    fixture's own zone sizes give the fixture's numbers."""
    ref = fixture("zoneinfo")
    for name, block in _zone_blocks(ref).items():
        if "pagesets" not in block:
            continue
        num = lambda label: int(re.search(rf"\n\s+{label}\s+(\d+)", block).group(1))
        zone = {"managed": num("managed"), "wmark": (num("min"), num("low"), num("high"), num("promo")),
                "boost": 0}
        batch = procfs.zone_batchsize(zone)
        assert batch == num("batch:"), name
        assert procfs.zone_highsize(zone, batch, 2, 0) == num("high_min:"), name
        assert procfs.zone_highsize(zone, batch, 2, 8) == num("high_max:"), name
        assert procfs.calculate_normal_threshold(zone, 2) == num("vm stats threshold:"), name


def test_zoneinfo_boost_is_added_to_watermarks():
    s = example_snapshot(1 << 21, boost=64)
    normal = _zone_blocks(procfs.render("zoneinfo", s))["Normal"]
    wmin = s["zones"][2]["wmark"][0]
    assert f"\n        boost    64\n" in normal
    assert f"\n        min      {wmin + 64}\n" in normal


# --------------------------------------------------------------------------
# meminfo

MEMINFO_RE = re.compile(r"^(?P<label>[A-Za-z0-9_()]+):(?P<pad> +)(?P<value>\d+)(?P<unit> kB)?$")


def _meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        m = MEMINFO_RE.match(line)
        assert m, repr(line)
        out[m["label"]] = int(m["value"])
    return out


def test_meminfo_labels_order_and_columns():
    ours = procfs.render("meminfo", example_snapshot()).splitlines()
    theirs = fixture("meminfo").splitlines()
    label = lambda line: line.split(":")[0]
    assert [label(l) for l in ours] == [label(l) for l in theirs]
    for o, t in zip(ours, theirs):
        mo, mt = MEMINFO_RE.match(o), MEMINFO_RE.match(t)
        assert mo and mt, (o, t)
        assert bool(mo["unit"]) == bool(mt["unit"]), (o, t)
        if len(mt["value"]) < 8 or not mt["unit"]:
            # Same end column for the number whenever it fits its field.
            if len(mo["value"]) <= (8 if mt["unit"] else 5):
                assert mo.end("value") == mt.end("value"), (o, t)
    assert "VmallocTotal:   34359738367 kB" in ours


def test_meminfo_arithmetic(snap):
    m = _meminfo(procfs.render("meminfo", snap))
    zones, vm = snap["zones"], snap["vm"]
    assert m["MemTotal"] == 4 * sum(z["managed"] for z in zones)
    assert m["MemFree"] == 4 * sum(z["nr_free_pages"] for z in zones)
    assert m["SReclaimable"] == 4 * vm["nr_slab_reclaimable"] == m["KReclaimable"]
    assert m["SUnreclaim"] == 4 * vm["nr_slab_unreclaimable"]
    assert m["Slab"] == m["SReclaimable"] + m["SUnreclaim"]
    assert m["KernelStack"] == vm["nr_kernel_stack_kb"]
    assert m["PageTables"] == 4 * vm["nr_page_table_pages"]
    assert m["VmallocUsed"] == 4 * vm["vmalloc_pages"]
    assert m["VmallocChunk"] == 0
    assert m["CommitLimit"] == 4 * (sum(z["managed"] for z in zones) // 2 + vm["swap_total_pages"])
    assert m["DirectMap4k"] + m["DirectMap2M"] + m["DirectMap1G"] == 4 * snap["total_pages"]
    assert m["DirectMap1G"] % (1 << 20) == 0 and m["DirectMap2M"] % 2048 == 0
    assert m["DirectMap2M"] < (1 << 20) and m["DirectMap4k"] < 2048
    assert m["Hugepagesize"] == 2048 and m["HugePages_Total"] == 0
    for zero in ("Buffers", "Cached", "Active", "AnonPages", "Mapped", "Committed_AS", "Percpu"):
        assert m[zero] == 0


def test_meminfo_available_and_reserves():
    s = example_snapshot()
    dma, dma32 = s["zones"][:2]
    # calculate_totalreserve_pages(): max(lowmem_reserve) + high, capped at managed.
    reserve = min(1008 + 24, dma["managed"]) + min(0 + 1524, dma32["managed"])
    assert procfs.totalreserve_pages(s) == reserve
    free = dma["nr_free_pages"] + dma32["nr_free_pages"]
    wmark_low = 20 + 1266 + 32                   # Movable's low watermark counts too
    recl = s["vm"]["nr_slab_reclaimable"]
    expected = free - reserve + recl - min(recl // 2, wmark_low)
    assert _meminfo(procfs.render("meminfo", s))["MemAvailable"] == 4 * expected
    # Never negative.
    for z in s["zones"]:
        z["nr_free_pages"] = 0
    s["vm"]["nr_slab_reclaimable"] = 0
    assert _meminfo(procfs.render("meminfo", s))["MemAvailable"] == 0


def test_meminfo_direct_map_split():
    s = example_snapshot((5 << 16) + 512 + 3)    # 1.25 GiB + 2 MiB + 12 KiB
    m = _meminfo(procfs.render("meminfo", s))
    assert (m["DirectMap1G"], m["DirectMap2M"], m["DirectMap4k"]) == (1 << 20, 256 * 1024 + 2048, 12)


# --------------------------------------------------------------------------
# vmstat

def test_vmstat_names_in_fixture_order():
    ours = procfs.render("vmstat", example_snapshot()).splitlines()
    theirs = fixture("vmstat").splitlines()
    assert [l.split(" ")[0] for l in ours] == [l.split(" ")[0] for l in theirs]
    assert all(re.fullmatch(r"[a-z0-9_]+ \d+", l) for l in ours)


def test_vmstat_values(snap):
    text = procfs.render("vmstat", snap)
    v = dict((k, int(x)) for k, x in (l.split(" ") for l in text.splitlines()))
    zones, vm = snap["zones"], snap["vm"]
    assert v["nr_free_pages"] == sum(z["nr_free_pages"] for z in zones)
    assert v["nr_free_pages_blocks"] == sum(z["nr_free_pages_blocks"] for z in zones)
    assert v["numa_hit"] == v["numa_local"] == sum(z["numa_hit"] for z in zones)
    assert v["numa_miss"] == v["numa_foreign"] == v["numa_other"] == 0
    for z in zones[:4]:
        assert v["pgalloc_" + z["name"].lower()] == z["pgalloc"]
    assert v["pgalloc_device"] == 0
    assert v["pgfree"] == vm["pgfree"]
    assert v["nr_slab_reclaimable"] == vm["nr_slab_reclaimable"]
    assert v["nr_slab_unreclaimable"] == vm["nr_slab_unreclaimable"]
    assert v["nr_page_table_pages"] == vm["nr_page_table_pages"]
    assert v["nr_kernel_stack"] == vm["nr_kernel_stack_kb"]
    # global_dirty_limits(): 20% / 10% of the dirtyable memory, in PAGE_SIZE fractions.
    free = v["nr_free_pages"]
    avail = free - min(free, procfs.totalreserve_pages(snap)) + 1
    assert v["nr_dirty_threshold"] == 819 * avail // 4096
    assert v["nr_dirty_background_threshold"] == 409 * avail // 4096
    assert v["pgpgin"] == v["oom_kill"] == v["nr_unstable"] == 0


# --------------------------------------------------------------------------
# show_mem

def test_show_mem_structure(snap):
    lines = procfs.show_mem(snap)
    populated = [z for z in snap["zones"] if z["present"]]
    assert lines[0] == "Mem-Info:"
    assert lines[1] == "active_anon:0 inactive_anon:0 isolated_anon:0"
    assert lines[4] == (f" slab_reclaimable:{snap['vm']['nr_slab_reclaimable']}"
                        f" slab_unreclaimable:{snap['vm']['nr_slab_unreclaimable']}")
    free = sum(z["nr_free_pages"] for z in snap["zones"])
    assert lines[8] == f" free:{free} free_pcp:0 free_cma:0"
    assert re.fullmatch(r"Node 0 active_anon:0kB .* kernel_stack:\d+kB pagetables:\d+kB "
                        r"sec_pagetables:0kB all_unreclaimable\? no Balloon:0kB", lines[9])
    zone_re = re.compile(
        r"Node 0 (?P<name>\w+) free:(?P<free>\d+)kB boost:(?P<boost>\d+)kB min:(?P<min>\d+)kB "
        r"low:(?P<low>\d+)kB high:(?P<high>\d+)kB reserved_highatomic:(?P<rh>\d+)KB "
        r"free_highatomic:(?P<fh>\d+)KB active_anon:0kB inactive_anon:0kB active_file:0kB "
        r"inactive_file:0kB unevictable:0kB writepending:0kB zspages:0kB "
        r"present:(?P<present>\d+)kB managed:(?P<managed>\d+)kB mlocked:0kB bounce:0kB "
        r"free_pcp:0kB local_pcp:0kB free_cma:0kB")
    i = 10
    for zone in populated:
        m = zone_re.fullmatch(lines[i])
        assert m, lines[i]
        assert m["name"] == zone["name"]
        assert int(m["free"]) == 4 * zone["nr_free_pages"]
        assert int(m["min"]) == 4 * (zone["wmark"][0] + zone["boost"])
        assert int(m["high"]) == 4 * (zone["wmark"][2] + zone["boost"])
        assert int(m["managed"]) == 4 * zone["managed"]
        assert int(m["rh"]) == 4 * zone["nr_reserved_highatomic"]
        assert int(m["fh"]) == 4 * sum(zone["free_area"][o][3] << o for o in range(11))
        assert lines[i + 1] == "lowmem_reserve[]: " + " ".join(map(str, zone["lowmem_reserve"]))
        i += 2
    free_re = re.compile(r"Node 0 (\w+): (?:\d+\*\d+kB (?:\([UMEHI]+\) )?){11}= (\d+)kB")
    for zone in populated:
        m = free_re.fullmatch(lines[i])
        assert m, lines[i]
        assert m[1] == zone["name"] and int(m[2]) == 4 * zone["nr_free_pages"]
        sizes = re.findall(r"\d+\*(\d+)kB", lines[i])
        assert sizes == [str(4 << o) for o in range(11)]
        i += 1
    assert lines[i:i + 2] == [
        "Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0 hugepages_size=1048576kB",
        "Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0 hugepages_size=2048kB"]
    present = sum(z["present"] for z in populated)
    reserved = sum(z["present"] - z["managed"] for z in populated)
    assert lines[i + 2:] == [
        "0 total pagecache pages", "0 pages in swap cache",
        "Free swap  = 0kB", "Total swap = 0kB",
        f"{present} pages RAM", "0 pages HighMem/MovableOnly", f"{reserved} pages reserved"]


def test_show_mem_migratetype_letters():
    """show_migration_types(): the letters of the non-empty lists, in
    migratetype order, after every order that has blocks."""
    s = example_snapshot()
    dma = s["zones"][0]
    area = [[0] * 5 for _ in range(11)]
    area[0] = [2, 1, 0, 0, 0]          # U and M
    area[1] = [0, 0, 3, 0, 0]          # E
    area[2] = [1, 0, 0, 1, 1]          # U, H and I
    area[10] = [0, 3, 0, 0, 0]         # M
    dma["free_area"] = area
    dma["nr_free_pages"] = 3 * 1 + 3 * 2 + 3 * 4 + 3 * 1024
    line = next(l for l in procfs.show_mem(s) if l.startswith("Node 0 DMA: "))
    assert line == ("Node 0 DMA: 3*4kB (UM) 3*8kB (E) 3*16kB (UHI) 0*32kB 0*64kB 0*128kB "
                    "0*256kB 0*512kB 0*1024kB 0*2048kB 3*4096kB (M) = 12372kB")


def test_show_mem_respects_max_zone_idx():
    s = example_snapshot(1 << 21)
    only_dma = procfs.show_mem(s, max_zone_idx=0)
    assert any(l.startswith("Node 0 DMA free:") for l in only_dma)
    assert not any(l.startswith(("Node 0 DMA32", "Node 0 Normal")) for l in only_dma)
    # The RAM totals are over every populated zone regardless.
    assert only_dma[-3] == procfs.show_mem(s)[-3]


# --------------------------------------------------------------------------
# printk: KernelLog

def test_kernel_log_timestamps():
    log = KernelLog()
    log.emit(0, "boot")
    log.emit(1_500_000_000, "one\ntwo\n")
    log.emit(123_456_789_999, "later", level="warn")
    log.emit(100_000 * 10**9 + 1000, "wide")
    assert log.lines() == [
        "[    0.000000] boot",
        "[    1.500000] one",
        "[    1.500000] two",
        "[  123.456789] later",
        "[100000.000001] wide",
    ]
    copy = log.lines()
    copy.clear()
    assert len(log.lines()) == 5
    assert log.records()[3] == ("warn", "[  123.456789] later")


def test_kernel_log_cap_drops_oldest():
    log = KernelLog()
    line = "x" * 100                                   # 115 bytes a record with stamp and newline
    for i in range(3000):
        log.emit(i * 1000, f"{i:05d} {line}")
    lines = log.lines()
    assert log.size <= 128 * 1024
    assert sum(len(l) + 1 for l in lines) == log.size
    assert log.size > 128 * 1024 - 200                 # it really is full, not emptied
    assert lines[-1].endswith(f"02999 {line}")
    first = int(lines[0].split("] ")[1][:5])
    assert first > 0 and first == 3000 - len(lines)    # the oldest went first, in order


def test_kernel_log_huge_line_is_dropped_whole():
    log = KernelLog(capacity=64)
    log.emit(0, "a" * 100)
    assert log.lines() == [] and log.size == 0
    log.emit(0, "short")
    assert log.lines() == ["[    0.000000] short"]


# --------------------------------------------------------------------------
# printk: reports

def test_warn_alloc_text_structure():
    s = example_snapshot(1 << 21)
    text = warn_alloc_text("pyalloc", 1, 0, "page allocation failure: order:5", 0x40cc0,
                           "GFP_KERNEL|__GFP_COMP", s)
    assert text.endswith("\n")
    lines = text.splitlines()
    assert lines[0] == ("pyalloc: page allocation failure: order:5, mode:0x40cc0"
                        "(GFP_KERNEL|__GFP_COMP), nodemask=(null),cpuset=/,mems_allowed=0")
    assert re.fullmatch(r"CPU: 0 UID: 0 PID: 1 Comm: pyalloc Not tainted 6\.18\.0-pyalloc #1 "
                        r"PREEMPT\(voluntary\) ", lines[1])
    assert lines[2] == "Hardware name: pyalloc simulated machine"
    assert lines[3:5] == ["Call Trace:", " <TASK>"]
    end = lines.index(" </TASK>")
    frames = lines[5:end]
    assert all(re.fullmatch(r" [\w.]+\+0x[0-9a-f]+/0x[0-9a-f]+", f) for f in frames), frames
    assert any(f.startswith(" warn_alloc+") for f in frames)
    assert any(f.startswith(" __alloc_pages_slowpath") for f in frames)
    assert lines[end + 1:] == procfs.show_mem(s, 2)
    # Deterministic.
    assert text == warn_alloc_text("pyalloc", 1, 0, "page allocation failure: order:5", 0x40cc0,
                                   "GFP_KERNEL|__GFP_COMP", s)


def test_warn_alloc_text_zero_mask_and_zone_limit():
    s = example_snapshot(1 << 21)
    text = warn_alloc_text("kworker/0:1", 42, 1, "page allocation failure: order:0", 0, "", s)
    assert text.startswith("kworker/0:1: page allocation failure: order:0, mode:0x0(), nodemask=(null)")
    assert "CPU: 1 UID: 0 PID: 42 Comm: kworker/0:1 " in text
    dma = warn_alloc_text("t", 1, 0, "page allocation failure: order:3", 0xcc1,
                          "GFP_KERNEL|GFP_DMA", s)
    assert "Node 0 DMA free:" in dma and "Node 0 DMA32 free:" not in dma
    vm = warn_alloc_text("t", 1, 0, "vmalloc error: size 4096, failed to allocate pages",
                         0xcc0, "GFP_KERNEL", s)
    assert " __vmalloc_node_range_noprof+" in vm


def test_warn_text_structure():
    text = warn_text(0, 1, "pyalloc", "mm/page_alloc.c:5017", "__alloc_pages_noprof")
    lines = text.splitlines()
    assert lines[0] == "------------[ cut here ]------------"
    assert re.fullmatch(r"WARNING: CPU: 0 PID: 1 at mm/page_alloc\.c:5017 "
                        r"__alloc_pages_noprof\+0x[0-9a-f]+/0x[0-9a-f]+", lines[1])
    assert lines[2] == "Modules linked in:"
    assert lines[3].startswith("CPU: 0 UID: 0 PID: 1 Comm: pyalloc Not tainted ")
    assert lines[4] == "Hardware name: pyalloc simulated machine"
    assert lines[5] == "RIP: 0010:" + lines[1].rsplit(" ", 1)[1]
    assert lines[6:8] == ["Call Trace:", " <TASK>"]
    assert lines[-2:] == [" </TASK>", "---[ end trace 0000000000000000 ]---"]
    assert text == warn_text(0, 1, "pyalloc", "mm/page_alloc.c:5017", "__alloc_pages_noprof")
    tainted = warn_text(1, 7, "x", "mm/slub.c:1", "kmalloc_noprof", tainted=True).splitlines()
    assert tainted[3] == ("CPU: 1 UID: 0 PID: 7 Comm: x Tainted: G        W           "
                          "6.18.0-pyalloc #1 PREEMPT(voluntary) ")
    assert tainted[4] == "Tainted: [W]=WARN"
