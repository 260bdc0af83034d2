"""Format tests for /proc/slabinfo (procfs.render) and the SLUB debug reports
(pyalloc.text.slub_report), against a real 6.18 sample (shared/fixtures/slabinfo.txt)
and the format strings of 6.18's mm/slub.c."""

from __future__ import annotations

import re

import pytest

from pyalloc.text import procfs, slub_report as sr

try:                                    # tests/ on sys.path (pytest's default rootdir import)
    from test_procfs import example_snapshot, fixture
except ImportError:                     # tests/ as a package
    from tests.test_procfs import example_snapshot, fixture

FIELDS = ("name", "active_objs", "num_objs", "objsize", "objperslab", "pagesperslab")


def parse_row(line: str) -> dict:
    f = line.split()
    assert len(f) == 16, line
    assert f[6] == ":" and f[7] == "tunables" and f[11] == ":" and f[12] == "slabdata", line
    row = dict(zip(FIELDS, [f[0]] + [int(x) for x in f[1:6]]))
    row["active_slabs"], row["num_slabs"] = int(f[13]), int(f[14])
    assert f[8:11] == ["0", "0", "0"] and f[15] == "0", line
    return row


def cache(name, active, total, size, per_slab, pages, slabs=None, active_slabs=None):
    slabs = -(-total // per_slab) if slabs is None else slabs
    return {"name": name, "active_objs": active, "num_objs": total, "objsize": size,
            "objperslab": per_slab, "pagesperslab": pages,
            "active_slabs": slabs if active_slabs is None else active_slabs, "num_slabs": slabs}


SYNTHETIC = [
    cache("kmalloc-8k", 8, 8, 8192, 4, 8),
    cache("kmalloc-8", 4096, 4096, 8, 512, 1),
    cache("dentry", 123456, 130000, 192, 21, 1),
    cache("empty_cache", 0, 0, 4096, 8, 8, slabs=0),
    cache("a_cache_name_that_is_long", 17, 17, 960, 17, 4),
    cache("exactly_17_chars_", 1, 32, 128, 32, 1),
    cache("huge", 99999999, 123456789, 1234567, 32767, 1024),   # wider than the fields
]


def _snap(caches):
    snap = example_snapshot()
    snap["slab_caches"] = caches
    return snap


# --------------------------------------------------------------------------
# /proc/slabinfo

def test_header_is_the_fixtures():
    real = fixture("slabinfo").splitlines(keepends=True)
    ours = procfs.render("slabinfo", _snap(SYNTHETIC)).splitlines(keepends=True)
    assert ours[:2] == real[:2]
    assert procfs.SLABINFO_HEADER == "".join(real[:2])


def test_every_fixture_row_is_reproduced_byte_for_byte():
    """Parse each real row and print it again: identical bytes, long names included."""
    real = fixture("slabinfo").splitlines(keepends=True)[2:]
    assert real
    rows = [parse_row(line) for line in real]
    assert any(len(r["name"]) > 17 for r in rows)          # the sample has long names
    text = procfs.render("slabinfo", _snap(rows))
    assert text.splitlines(keepends=True)[2:] == real


def test_synthetic_rows_have_16_fields_and_round_trip():
    text = procfs.render("slabinfo", _snap(SYNTHETIC))
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 2 + len(SYNTHETIC)
    for line, want in zip(lines[2:], SYNTHETIC):
        assert parse_row(line) == want


def test_column_positions_match_the_fixture():
    """Rows with names of at most 17 characters and numbers that fit their widths
    put every field at the same column as the real sample's rows."""
    def columns(line):
        return [m.end() for m in re.finditer(r"\S+", line)][1:]

    real = [l for l in fixture("slabinfo").splitlines()[2:] if len(l.split()[0]) <= 17]
    ref = columns(real[0])
    assert all(columns(l) == ref for l in real)
    ours = [l for l in procfs.render("slabinfo", _snap(SYNTHETIC)).splitlines()[2:]
            if len(l.split()[0]) <= 17 and l.split()[0] != "huge"]
    assert len(ours) == 5
    for line in ours:
        assert columns(line) == ref, line


def test_long_and_wide_fields_push_the_row_right():
    lines = procfs.render("slabinfo", _snap(SYNTHETIC)).splitlines()
    by_name = {l.split()[0]: l for l in lines[2:]}
    # %-17s does not truncate: one space, then the %6lu field.
    assert by_name["a_cache_name_that_is_long"].startswith("a_cache_name_that_is_long     17     17    960   17    4 :")
    assert by_name["exactly_17_chars_"].startswith("exactly_17_chars_      1     32    128   32    1 :")
    assert by_name["huge"] == ("huge              99999999 123456789 1234567 32767 1024 : tunables    0    0"
                               "    0 : slabdata   3768   3768      0")
    assert by_name["kmalloc-8k"] == ("kmalloc-8k             8      8   8192    4    8 : tunables    0    0"
                                     "    0 : slabdata      2      2      0")


def test_order_is_the_snapshots():
    names = [l.split()[0] for l in procfs.render("slabinfo", _snap(SYNTHETIC)).splitlines()[2:]]
    assert names == [c["name"] for c in SYNTHETIC]


def test_no_caches():
    snap = example_snapshot()
    snap.pop("slab_caches", None)
    assert procfs.render("slabinfo", snap) == procfs.SLABINFO_HEADER
    assert procfs.render("slabinfo", _snap([])) == procfs.SLABINFO_HEADER
    # The other views do not care about the new key.
    for name in ("buddyinfo", "meminfo", "vmstat", "zoneinfo", "pagetypeinfo"):
        assert procfs.render(name, snap) == procfs.render(name, _snap(SYNTHETIC))


def test_meminfo_and_vmstat_show_slab_pages():
    snap = example_snapshot()
    snap["vm"]["nr_slab_reclaimable"] = 1000
    snap["vm"]["nr_slab_unreclaimable"] = 2345
    mem = procfs.meminfo_values(snap)
    assert mem["SReclaimable"] == 4000
    assert mem["SUnreclaim"] == 9380
    assert mem["Slab"] == 13380
    assert mem["KReclaimable"] == 4000          # + nr_kernel_misc_reclaimable (0)
    text = procfs.render("meminfo", snap)
    assert "Slab:              13380 kB\n" in text
    assert "SReclaimable:       4000 kB\n" in text
    assert "SUnreclaim:         9380 kB\n" in text
    assert "KReclaimable:       4000 kB\n" in text
    vm = procfs.render("vmstat", snap)
    assert "\nnr_slab_reclaimable 1000\n" in vm
    assert "\nnr_slab_unreclaimable 2345\n" in vm


# --------------------------------------------------------------------------
# slub_debug reports

OBJ = 0xffff888003a1e040
SLAB = sr.slab_struct_addr(0x3a1e)
HEX_LINE = re.compile(r"(Redzone  |Object   |Padding  |Bytes b4 |Padding )([0-9a-f]{16}): "
                      r"((?:[0-9a-f]{2} ){0,15}[0-9a-f]{2}) +(.{1,16})$")


def test_hex_dump_full_line_is_the_kernels():
    lines = sr.hex_dump_lines(sr.LABEL_OBJECT, OBJ, b"\x6b" * 16)
    assert lines == ["Object   ffff888003a1e040: 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b 6b"
                     "  kkkkkkkkkkkkkkkk"]


def test_hex_dump_partial_line_and_ascii():
    data = bytes(range(0x1e, 0x1e + 16)) + b"\x7f\x80 A\xa5"
    lines = sr.hex_dump_lines("Redzone", OBJ - 8, data)      # bare word: padded to 9
    assert len(lines) == 2
    assert lines[0] == ("Redzone  ffff888003a1e038: 1e 1f 20 21 22 23 24 25 26 27 28 29 2a 2b 2c 2d"
                        "  .. !\"#$%&'()*+,-")
    # The ASCII column starts at the same place on a short last line (column 49 of the dump).
    assert lines[1] == "Redzone  ffff888003a1e048: 7f 80 20 41 a5" + " " * 35 + ".. A."
    prefix = len("Redzone  ffff888003a1e048: ")
    assert lines[0].index("..") == lines[1].index("..") == prefix + 49
    for line in lines:
        assert HEX_LINE.match(line), line
    assert sr.hex_dump_lines("Object   ", OBJ, b"") == []
    assert sr.hex_dump_lines("Padding ", OBJ, b"Z")[0] == "Padding ffff888003a1e040: 5a" + " " * 47 + "Z"


def test_bug_header():
    assert sr.bug_header("kmalloc-64", "Object already free", False) == [
        "=" * 77, "BUG kmalloc-64 (Not tainted): Object already free", "-" * 77, ""]
    head = sr.bug_header("foo", "Object corrupt", True)
    assert head[1] == "BUG foo (Tainted: G    B   W          ): Object corrupt"
    assert len(head[1].split("(")[1].split(")")[0]) == len("Tainted: ") + 20
    assert sr.bug_header(None, "No slab cache for object 0x0", False)[1].startswith("BUG <unknown> (")


def test_track_and_fix_lines():
    line = sr.track_line("Allocated", "my_alloc", 120, 1, 42)
    assert re.fullmatch(r"Allocated in my_alloc\+0x[0-9a-f]+/0x[0-9a-f]+ age=120 cpu=1 pid=42", line)
    assert sr.track_line("Freed", "my_alloc", 120, 1, 42).startswith("Freed in my_alloc+")
    assert sr.fix_line("kmalloc-64", "Marking all objects used") == "FIX kmalloc-64: Marking all objects used"
    assert (sr.restore_line("kmalloc-64", "Poison", OBJ + 8, OBJ + 9, 0x6b)
            == "FIX kmalloc-64: Restoring Poison 0xffff888003a1e048-0xffff888003a1e049=0x6b")
    assert (sr.overwrite_line("Poison", OBJ + 8, OBJ + 9, 72, 0, 0x6b)
            == "[Poison overwritten] 0xffff888003a1e048-0xffff888003a1e049 @offset=72."
               " First byte 0x0 instead of 0x6b")


def _object_report(**kw):
    args = dict(tainted=False, slab_addr=SLAB, objects=25, inuse=3, slab_fp=OBJ + 160,
                obj_addr=OBJ, obj_offset=64, obj_fp=0,
                sections=[(sr.LABEL_REDZONE, OBJ - 8, b"\xbb" * 8),
                          (sr.LABEL_OBJECT, OBJ, b"\x6b" * 8 + b"\x00" + b"\x6b" * 54 + b"\xa5"),
                          (sr.LABEL_REDZONE, OBJ + 64, b"\xbb" * 8),
                          (sr.LABEL_PADDING, OBJ + 144, b"\x5a" * 8)],
                alloc_track=("test_alloc", 300, 0, 1), free_track=("test_free", 20, 1, 1),
                first_line=sr.overwrite_line("Poison", OBJ + 8, OBJ + 8, 72, 0, 0x6b),
                comm="swapper/0", pid=1, cpu=0)
    args.update(kw)
    return sr.object_report("kmalloc-64", "Object corrupt", **args)


def test_object_report_structure():
    lines = _object_report().split("\n")
    assert lines[0] == ("[Poison overwritten] 0xffff888003a1e048-0xffff888003a1e048 @offset=72."
                        " First byte 0x0 instead of 0x6b")
    assert lines[1:5] == ["=" * 77, "BUG kmalloc-64 (Not tainted): Object corrupt", "-" * 77, ""]
    assert lines[5].startswith("Allocated in test_alloc+0x") and lines[5].endswith(" age=300 cpu=0 pid=1")
    i = lines.index(next(l for l in lines if l.startswith("Freed in ")))
    assert all(l.startswith(" ") for l in lines[6:i])                 # stack depot frames
    slab = next(l for l in lines if l.startswith("Slab "))
    assert slab == ("Slab 0xffffea00000e8780 objects=25 used=3 fp=0xffff888003a1e0e0"
                    " flags=0x4000000000000000(node=0|zone=1)")
    k = lines.index(slab)
    assert lines[k + 1] == "Object 0xffff888003a1e040 @offset=64 fp=0x0000000000000000"
    assert lines[k + 2] == ""
    dumps = lines[k + 3:k + 3 + 7]
    assert [l[:9] for l in dumps] == ["Redzone  "] + ["Object   "] * 4 + ["Redzone  ", "Padding  "]
    assert all(HEX_LINE.match(l) for l in dumps)
    assert dumps[1] == ("Object   ffff888003a1e040: 6b 6b 6b 6b 6b 6b 6b 6b 00 6b 6b 6b 6b 6b 6b 6b"
                        "  kkkkkkkk.kkkkkkk")
    rest = lines[k + 10:]
    assert rest[0] == "------------[ cut here ]------------"
    assert re.fullmatch(r"WARNING: CPU: 0 PID: 1 at mm/slub\.c:\d+ object_err\+0x[0-9a-f]+/0x[0-9a-f]+",
                        rest[1])
    cpu = next(l for l in rest if l.startswith("CPU: "))
    assert "Tainted: G    B               6.18" in cpu      # B is set before WARN_ON(1)
    assert "Tainted: [B]=BAD_PAGE" in rest
    assert rest[-1] == "---[ end trace 0000000000000000 ]---"
    assert _object_report() == _object_report()              # deterministic


def test_object_report_variants():
    tainted = _object_report(tainted=True, first_line=None, alloc_track=None, free_track=None,
                             order=1, zone=2).split("\n")
    assert tainted[0] == "=" * 77
    assert tainted[1] == "BUG kmalloc-64 (Tainted: G    B   W          ): Object corrupt"
    assert tainted[4].startswith("Slab ") and tainted[4].endswith("flags=0x8000000000000040(head|node=0|zone=2)")
    assert "Tainted: [B]=BAD_PAGE, [W]=WARN" in tainted
    bad = _object_report(valid=False, obj_addr=OBJ + 3, first_line=None).split("\n")
    assert bad[5] == "Invalid pointer 0xffff888003a1e043"
    assert not any(HEX_LINE.match(l) for l in bad)


def test_slab_err_and_shutdown_reports():
    text = sr.slab_err_report("foo", "Invalid object pointer 0xffff888003a1e043", tainted=False,
                              slab_addr=SLAB, objects=32, inuse=1, slab_fp=0, comm="insmod",
                              pid=7, cpu=1)
    lines = text.split("\n")
    assert lines[:4] == ["=" * 77, "BUG foo (Not tainted): Invalid object pointer 0xffff888003a1e043",
                         "-" * 77, ""]
    assert lines[4] == ("Slab 0xffffea00000e8780 objects=32 used=1 fp=0x0000000000000000"
                        " flags=0x4000000000000000(node=0|zone=1)")
    assert lines[5] == "------------[ cut here ]------------"
    assert "__slab_err+0x" in lines[6]

    base = 0xffff888000005000
    assert sr.objects_remaining_lines(base, [base, base + 256]) == [
        "Object 0xffff888000005000 @offset=0", "Object 0xffff888000005100 @offset=256"]
    with_tracks = sr.objects_remaining_lines(base, [(base + 64, ("my_init", 5, 0, 7), None)])
    assert with_tracks[0] == "Object 0xffff888000005040 @offset=64"
    assert with_tracks[1].startswith("Allocated in my_init+")
    shut = sr.shutdown_report("foo", tainted=False, slab_addr=sr.slab_struct_addr(5), slab_base=base,
                              objects=16, inuse=2, slab_fp=0, live=[base, base + 256],
                              comm="insmod", pid=7, cpu=1).split("\n")
    assert shut[1] == "BUG foo (Not tainted): Objects remaining on __kmem_cache_shutdown()"
    assert shut[4:6] == ["Object 0xffff888000005000 @offset=0", "Object 0xffff888000005100 @offset=256"]
    assert shut[6].startswith("Slab 0xffffea0000000140 objects=16 used=2 ")

    warn = sr.destroy_warning("foo", "my_exit", "rmmod", 9, 0).split("\n")
    assert warn[0] == "------------[ cut here ]------------"
    assert re.fullmatch(r"kmem_cache_destroy foo: Slab cache still has objects when called from "
                        r"my_exit\+0x[0-9a-f]+/0x[0-9a-f]+", warn[1])
    assert warn[2].startswith("WARNING: CPU: 0 PID: 9 at mm/slab_common.c:")
    assert warn[-1] == "---[ end trace 0000000000000000 ]---"


def test_free_errors():
    common = dict(comm="test", pid=5, cpu=0)
    slab = dict(slab_addr=SLAB, objects=32, inuse=2, slab_fp=OBJ)
    dbl = sr.free_error("kmalloc-64", sr.FREE_DOUBLE, OBJ, **common).split("\n")
    assert re.fullmatch(r"kernel BUG at mm/slub\.c:\d+!", dbl[1])
    assert dbl[2] == "Oops: invalid opcode: 0000 [#1] SMP NOPTI"

    free = sr.free_error("kmalloc-64", sr.FREE_ALREADY_FREE, OBJ, slab=slab, obj_offset=64,
                         sections=[(sr.LABEL_OBJECT, OBJ, b"\x6b" * 64)], **common).split("\n")
    assert free[1] == "BUG kmalloc-64 (Not tainted): Object already free"
    assert free[-1] == "FIX kmalloc-64: Object at 0xffff888003a1e040 not freed"

    inval = sr.free_error("kmalloc-64", sr.FREE_INVALID_POINTER, OBJ + 1, slab=slab, **common)
    assert "BUG kmalloc-64 (Not tainted): Invalid object pointer 0xffff888003a1e041\n" in inval
    assert inval.endswith("\nFIX kmalloc-64: Object at 0xffff888003a1e041 not freed")

    wrong = sr.free_error("kmalloc-64", sr.FREE_WRONG_CACHE, OBJ, other_cache="foo",
                          caller="kmem_cache_free", **common).split("\n")
    assert wrong[1] == "cache_from_obj: Wrong slab cache. kmalloc-64 but object is from foo"
    assert wrong[2].startswith("WARNING: CPU: 0 PID: 5 at ")

    not_slab = sr.free_error("foo", sr.FREE_NOT_SLAB, 0xffff888000100000, **common)
    assert "\nvirt_to_cache: Object is not a Slab page!\n" in not_slab
    not_kmalloc = sr.free_error("kmalloc-64", sr.FREE_NOT_KMALLOC, 0xffff888000100000, pfn=0x100,
                                **common).split("\n")
    assert not_kmalloc[-1] == "page dumped because: Not a kmalloc allocation"
    assert "page: refcount:1 mapcount:0 mapping:0000000000000000 index:0x0 pfn:0x100" in not_kmalloc
    outside = sr.free_error("foo", sr.FREE_OUTSIDE_SLAB, OBJ, slab=slab, **common)
    assert "): Attempt to free object(0xffff888003a1e040) outside of slab\n" in outside
    with pytest.raises(ValueError):
        sr.free_error("foo", "no such reason", OBJ, **common)
