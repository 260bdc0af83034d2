"""debugfs extfrag/unusable_index and extfrag/extfrag_index (mm/vmstat.c, kernel-facts 4.5).

The real sample (fixtures/extfrag.txt) holds a buddyinfo read together with both
files: computing both from those counts must give the kernel's text exactly.
On machines of both backends, the values must follow from the machine's own
/proc/buddyinfo, and reading them must change nothing.
"""

from pathlib import Path
import re

import pytest

import pyalloc
from pyalloc.text import debugfs
from pyalloc.tools import workload

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "extfrag.txt"
UNUSABLE_RE = re.compile(r"Node 0, zone [ \w]{8}( \d\.\d{3}){11} \n")
EXTFRAG_RE = re.compile(r"Node 0, zone [ \w]{8}( [ -]\d\.\d{3}){11} \n")


def sections(text):
    out, name = {}, None
    for line in text.splitlines():
        if line.startswith("# "):
            name = line[2:].strip()
            out[name] = []
        elif line:
            out[name].append(line + "\n")
    return {k: "".join(v) for k, v in out.items()}


def snapshot_from_buddyinfo(text):
    zones = []
    for line in text.splitlines():
        f = line.split()
        zones.append({"name": f[3], "present": 1, "free_area": [[int(n)] for n in f[4:]]})
    return {"zones": zones}


def test_the_real_sample_to_the_digit():
    s = sections(FIXTURE.read_text())
    snap = snapshot_from_buddyinfo(s["/proc/buddyinfo"])
    assert debugfs.render("extfrag/unusable_index", snap) == s["/sys/kernel/debug/extfrag/unusable_index"]
    assert debugfs.render("extfrag/extfrag_index", snap) == s["/sys/kernel/debug/extfrag/extfrag_index"]


def test_integer_maths_edge_cases():
    # nothing free: unusable 1.000, extfrag 0.000 (no free block at all)
    assert debugfs.unusable_free_index([0] * 11, 3) == 1000
    assert debugfs.fragmentation_index([0] * 11, 3) == 0
    # only order-0 pages free: order 3 fails for fragmentation
    nr = [100] + [0] * 10
    assert debugfs.fragmentation_index(nr, 3) == 1000 - (1000 + 100 * 1000 // 8) // 100   # 988
    assert debugfs.unusable_free_index(nr, 3) == 1000
    assert debugfs.unusable_free_index(nr, 0) == 0
    # a block of the order is free: -1.000, printed as the kernel prints -1000/1000 and -1000%1000
    nr = [0, 0, 0, 1] + [0] * 7
    assert debugfs.fragmentation_index(nr, 2) == -1000
    snap = {"zones": [{"name": "Normal", "present": 1, "free_area": [[n] for n in nr]}]}
    text = debugfs.render_extfrag_index(snap)
    # past the free memory the formula goes negative, and "%2d.%03d" of index / 1000 and
    # index % 1000 prints what a kernel prints for it: " 0.-500" (C division truncates to zero)
    assert text == ("Node 0, zone   Normal -1.000 -1.000 -1.000 -1.000  0.-500  0.-250  0.-125 "
                    " 0.-62  0.-31  0.-15  0.-07 \n")
    nr = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    snap = {"zones": [{"name": "Normal", "present": 1, "free_area": [[n] for n in nr]}]}
    assert EXTFRAG_RE.fullmatch(debugfs.render_extfrag_index(snap))


def test_unpopulated_zones_are_left_out():
    snap = {"zones": [{"name": "DMA", "present": 0, "free_area": [[0]] * 11},
                      {"name": "DMA32", "present": 5, "free_area": [[1]] * 11}]}
    assert debugfs.render_unusable_index(snap).startswith("Node 0, zone    DMA32 ")
    assert debugfs.render_unusable_index(snap).count("\n") == 1


def test_machine_views_follow_its_buddyinfo(backend):
    with pyalloc.Machine(mem="256M", backend=backend) as m:
        workload.run_pages(m)
        before = {v: m.proc(v) for v in ("buddyinfo", "zoneinfo", "vmstat")}
        unusable = m.debugfs("extfrag/unusable_index")
        extfrag = m.debugfs("extfrag/extfrag_index")
        assert {v: m.proc(v) for v in before} == before          # reading changes nothing
        snap = snapshot_from_buddyinfo(before["buddyinfo"])
        assert unusable == debugfs.render_unusable_index(snap)
        assert extfrag == debugfs.render_extfrag_index(snap)
        lines = unusable.splitlines(keepends=True)
        assert [l.split()[3] for l in lines] == ["DMA", "DMA32"]
        assert all(UNUSABLE_RE.fullmatch(l) for l in lines)
        assert all(EXTFRAG_RE.fullmatch(l) for l in extfrag.splitlines(keepends=True))
        # fragmented: some order-10 blocks are unusable as such, less so at order 0
        dma32 = [float(v) for v in lines[1].split()[4:]]
        assert dma32[0] == 0.0 and dma32[10] > 0.0 and dma32 == sorted(dma32)
        m.check()


def test_unknown_file_is_refused(machine):
    with pytest.raises(pyalloc.InvalidArgument, match="known: extfrag/extfrag_index, extfrag/unusable_index"):
        machine.debugfs("extfrag/nonsense")
    with pytest.raises(pyalloc.InvalidArgument):
        machine.debugfs(None)
