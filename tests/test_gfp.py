"""pyalloc.gfp: values, parsing, printing, zone and migratetype.

Expected values are written out here from kernel-facts.md §1 (Linux 6.18, default
config), not computed from the module under test.  gfp is pure Python and the same
for both backends, so there is no backend fixture.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

import pyalloc.gfp as gfp
from pyalloc.errors import GFPError, PyallocError
from pyalloc.gfp import GFP

FIXTURES = Path(__file__).resolve().parent / "fixtures"     # copies of ../shared/fixtures

# kernel-facts §1.1: kernel name -> value (6.18, default config).
BITS = {
    "__GFP_DMA": 0x1,
    "__GFP_HIGHMEM": 0x2,
    "__GFP_DMA32": 0x4,
    "__GFP_MOVABLE": 0x8,
    "__GFP_RECLAIMABLE": 0x10,
    "__GFP_HIGH": 0x20,
    "__GFP_IO": 0x40,
    "__GFP_FS": 0x80,
    "__GFP_ZERO": 0x100,
    "__GFP_DIRECT_RECLAIM": 0x400,
    "__GFP_KSWAPD_RECLAIM": 0x800,
    "__GFP_WRITE": 0x1000,
    "__GFP_NOWARN": 0x2000,
    "__GFP_RETRY_MAYFAIL": 0x4000,
    "__GFP_NOFAIL": 0x8000,
    "__GFP_NORETRY": 0x10000,
    "__GFP_MEMALLOC": 0x20000,
    "__GFP_COMP": 0x40000,
    "__GFP_NOMEMALLOC": 0x80000,
    "__GFP_HARDWALL": 0x100000,
    "__GFP_THISNODE": 0x200000,
    "__GFP_ACCOUNT": 0x400000,
    "__GFP_ZEROTAGS": 0x800000,
    "__GFP_NO_OBJ_EXT": 0x1000000,
}
ZERO_IN_THIS_CONFIG = ("__GFP_SKIP_ZERO", "__GFP_SKIP_KASAN", "__GFP_NOLOCKDEP")

# kernel-facts §1.2 (and __GFP_RECLAIM from §1.1).
COMPOSITES = {
    "__GFP_RECLAIM": 0xC00,
    "GFP_ATOMIC": 0x820,
    "GFP_KERNEL": 0xCC0,
    "GFP_KERNEL_ACCOUNT": 0x400CC0,
    "GFP_NOWAIT": 0x2800,
    "GFP_NOIO": 0xC00,
    "GFP_NOFS": 0xC40,
    "GFP_USER": 0x100CC0,
    "GFP_DMA": 0x1,
    "GFP_DMA32": 0x4,
    "GFP_HIGHUSER": 0x100CC2,
    "GFP_HIGHUSER_MOVABLE": 0x100CCA,
    "GFP_TRANSHUGE_LIGHT": 0x1C20CA,
    "GFP_TRANSHUGE": 0x1C24CA,
}
ALL_NAMES = {**BITS, **COMPOSITES, **{name: 0 for name in ZERO_IN_THIS_CONFIG}}

BAD_NIBBLES = (0x3, 0x5, 0x6, 0x7, 0xB, 0xD, 0xE, 0xF)
GOOD_NIBBLES = tuple(n for n in range(16) if n not in BAD_NIBBLES)

# kernel-facts §1.5, examples table and the real 6.18 output.
FORMAT_EXAMPLES = [
    (0xCC0, "GFP_KERNEL"),
    (0xDC0, "GFP_KERNEL|__GFP_ZERO"),
    (0x40CC0, "GFP_KERNEL|__GFP_COMP"),
    (0x2820, "GFP_ATOMIC|__GFP_NOWARN"),
    (0x12CC0, "GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY"),
    (0x2CC2, "GFP_KERNEL|__GFP_HIGHMEM|__GFP_NOWARN"),
    (0x8C0, "__GFP_IO|__GFP_FS|__GFP_KSWAPD_RECLAIM"),
    (0x800, "__GFP_KSWAPD_RECLAIM"),
    (0xC00, "GFP_NOIO"),
    (0x1000000, "__GFP_NO_OBJ_EXT"),
    # real 6.18 output
    (0x400CC0 | 0x100 | 0x40000, "GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP"),
    (0xC40 | 0x100 | 0x8000, "GFP_NOFS|__GFP_ZERO|__GFP_NOFAIL"),
    (0x2800 | 0x100, "GFP_NOWAIT|__GFP_ZERO"),
    # further cases worked out by hand from the 6.18 table order
    (0x140CCA, "GFP_HIGHUSER_MOVABLE|__GFP_COMP"),
    (0x1C24CA, "GFP_TRANSHUGE"),
    (0x1C20CA, "GFP_TRANSHUGE_LIGHT"),
    (0x100CC2, "GFP_HIGHUSER"),
    (0x100CC0, "GFP_USER"),
    (0x820, "GFP_ATOMIC"),
    (0x2800, "GFP_NOWAIT"),
    (0x1, "GFP_DMA"),
    (0x4, "GFP_DMA32"),
    (0xCC1, "GFP_KERNEL|GFP_DMA"),
    (0x400, "__GFP_DIRECT_RECLAIM"),
    (0xA, "__GFP_HIGHMEM|__GFP_MOVABLE"),
    (0x200, "0x200"),
    (0xEC0, "GFP_KERNEL|0x200"),
    (0x2000000, "0x2000000"),
    (0xFE000200 | 0x100, "__GFP_ZERO|0xfe000200"),
    (0x5, "GFP_DMA|GFP_DMA32"),   # format prints anything, even what parse refuses
]


def fixture_gfp_strings() -> list[str]:
    path = FIXTURES / "ftrace-kmem.txt"
    if not path.exists():
        return []
    return sorted(set(re.findall(r"gfp_flags=(\S+)", path.read_text())))


# ---------------------------------------------------------------- values


@pytest.mark.parametrize("name,value", sorted(BITS.items()))
def test_bit_values(name, value):
    assert gfp.NAMES[name] == value
    assert getattr(gfp, name.lstrip("_")) == value          # module constant GFP_<NAME>
    assert GFP[name[len("__GFP_"):]] == value                # enum member <NAME>
    assert gfp.parse(name) == value


@pytest.mark.parametrize("name", ZERO_IN_THIS_CONFIG)
def test_names_that_are_zero_in_this_config(name):
    assert gfp.parse(name) == 0
    assert gfp.parse(f"GFP_KERNEL|{name}") == 0xCC0
    assert getattr(gfp, name.lstrip("_")) == 0


@pytest.mark.parametrize("name,value", sorted(COMPOSITES.items()))
def test_composite_values(name, value):
    assert gfp.NAMES[name] == value
    assert getattr(gfp, name.lstrip("_")) == value
    assert GFP[name.lstrip("_")[len("GFP_"):]] == value
    assert gfp.parse(name) == value


def test_masks():
    assert gfp.GFP_BITS_MASK == 0x1FFFFFF
    assert gfp.GFP_ZONEMASK == 0xF
    assert gfp.GFP_BITS_SHIFT == 25
    assert gfp.GFP_SLAB_BUG_MASK == 0xFE000006
    assert gfp.GFP_CONSTRAINT_MASK == 0x300000
    assert gfp.GFP_RECLAIM_MASK == 0xC00 | 0x20 | 0x40 | 0x80 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000 | 0x80000
    assert gfp.GFP_BOOT_MASK == 0x1FFFFFF & ~0xCC0
    # the bits are distinct and fill 0..24 except bit 9
    assert sum(BITS.values()) == 0x1FFFFFF & ~0x200


def test_enum_members():
    bits = [m for m in GFP.__members__.values() if m.value and m.value & (m.value - 1) == 0]
    assert sorted(m.value for m in set(bits)) == sorted(BITS.values())
    expected_members = {n[len("__GFP_"):] for n in BITS} | {
        "RECLAIM", "ATOMIC", "KERNEL", "KERNEL_ACCOUNT", "NOWAIT", "NOIO", "NOFS", "USER",
        "HIGHUSER", "HIGHUSER_MOVABLE", "TRANSHUGE_LIGHT", "TRANSHUGE"}
    assert expected_members <= set(GFP.__members__)
    assert issubclass(GFP, enum.IntFlag)


def test_enum_keeps_composites_and_unused_bits():
    assert GFP.KERNEL | GFP.ZERO == 0xDC0
    assert isinstance(GFP.KERNEL | GFP.ZERO, GFP)
    assert GFP.TRANSHUGE == 0x1C24CA
    assert GFP.NOIO == GFP.RECLAIM == 0xC00
    assert int(GFP(0x200)) == 0x200
    assert int(GFP.KERNEL | 0x200) == 0xEC0
    assert int(GFP(0x2000000)) == 0x2000000
    assert GFP.KERNEL & ~GFP.FS == 0xC40
    assert repr(GFP.KERNEL | GFP.ZERO) == "<GFP GFP_KERNEL|__GFP_ZERO: 0xdc0>"


def test_pyalloc_reexports_gfp():
    init = Path(gfp.__file__).with_name("__init__.py")
    if not init.exists():
        pytest.skip("pyalloc/__init__.py not written yet")
    import pyalloc

    assert pyalloc.GFP is GFP
    assert pyalloc.GFPError is GFPError


# ---------------------------------------------------------------- parse


def test_parse_accepts_enum_members_and_returns_plain_int():
    for value in (GFP.KERNEL | GFP.ZERO, GFP.KERNEL, GFP(0x200), GFP.HIGHUSER_MOVABLE):
        result = gfp.parse(value)
        assert result == int(value)
        assert type(result) is int
    assert gfp.parse(GFP.KERNEL | GFP.ZERO) == 0xDC0


def test_parse_ints():
    assert gfp.parse(0) == 0
    assert gfp.parse(0xDC0) == 0xDC0
    assert gfp.parse(0x200) == 0x200
    assert gfp.parse(0xFFFFFFF0) == 0xFFFFFFF0         # bits past the mask are kept
    assert gfp.parse(2**32 - 1 - 0xF + 0xA) == 0xFFFFFFFA
    assert type(gfp.parse(0xCC0)) is int

    class MyInt(int):
        pass

    assert gfp.parse(MyInt(0xCC0)) == 0xCC0
    assert type(gfp.parse(MyInt(0xCC0))) is int


@pytest.mark.parametrize("text,value", [
    ("GFP_KERNEL|__GFP_ZERO", 0xDC0),
    ("GFP_KERNEL | __GFP_ZERO", 0xDC0),
    ("  GFP_KERNEL  |__GFP_ZERO ", 0xDC0),
    ("GFP_KERNEL\t|\t__GFP_ZERO", 0xDC0),
    ("none", 0),
    (" none ", 0),
    ("0", 0),
    ("0x0", 0),
    ("0x200", 0x200),
    ("0X200", 0x200),
    ("512", 0x200),
    ("GFP_KERNEL|0x200", 0xEC0),
    ("GFP_KERNEL|0xfe000000", 0xFE000CC0),
    ("0xffffffff", None),   # all zone bits: refused below
    ("GFP_HIGHUSER_MOVABLE|__GFP_COMP", 0x140CCA),
    ("GFP_NOWAIT|__GFP_ZERO", 0x2900),
    ("GFP_NOFS|__GFP_ZERO|__GFP_NOFAIL", 0x8D40),
    ("GFP_KERNEL|GFP_KERNEL", 0xCC0),
    ("__GFP_HIGHMEM|__GFP_MOVABLE", 0xA),
    ("GFP_DMA|__GFP_MOVABLE", 0x9),
    ("GFP_DMA32|__GFP_MOVABLE", 0xC),
    ("__GFP_DMA|GFP_DMA", 0x1),                    # the same bit twice is one modifier
])
def test_parse_strings(text, value):
    if value is None:
        with pytest.raises(GFPError):
            gfp.parse(text)
        return
    assert gfp.parse(text) == value
    assert gfp.parse(text) == value                # and again, from the cache
    assert type(gfp.parse(text)) is int


@pytest.mark.parametrize("text", fixture_gfp_strings() or [pytest.param("", marks=pytest.mark.skip(
    reason="shared/fixtures/ftrace-kmem.txt not present"))])
def test_fixture_strings_round_trip(text):
    value = gfp.parse(text)
    assert gfp.format(value) == text


def test_fixture_has_the_expected_strings():
    found = fixture_gfp_strings()
    if not found:
        pytest.skip("shared/fixtures/ftrace-kmem.txt not present")
    assert "GFP_KERNEL" in found
    assert "GFP_HIGHUSER_MOVABLE|__GFP_COMP" in found
    expected = {"GFP_KERNEL": 0xCC0, "GFP_HIGHUSER_MOVABLE|__GFP_COMP": 0x140CCA,
                "GFP_NOWAIT": 0x2800, "GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP": 0x440DC0}
    for text, value in expected.items():
        assert gfp.parse(text) == value


@pytest.mark.parametrize("bad,culprit", [
    ("", "''"),
    ("   ", "'   '"),
    ("GFP_KERNEL|", "'GFP_KERNEL|'"),
    ("|GFP_KERNEL", "'|GFP_KERNEL'"),
    ("GFP_KERNEL||__GFP_ZERO", "'GFP_KERNEL||__GFP_ZERO'"),
    ("GFP_KERNEL| |__GFP_ZERO", "'GFP_KERNEL| |__GFP_ZERO'"),
    ("GFP_KERNEL|__GFP_ZER0", "'__GFP_ZER0'"),
    ("gfp_kernel", "'gfp_kernel'"),
    ("GFP_KERNEL,__GFP_ZERO", "'GFP_KERNEL,__GFP_ZERO'"),
    ("GFP_KERNEL+__GFP_ZERO", "'GFP_KERNEL+__GFP_ZERO'"),
    ("___GFP_ZERO", "'___GFP_ZERO'"),
    ("__GFP_ATOMIC", "'__GFP_ATOMIC'"),          # gone since v6.3
    ("GFP_RECLAIM_MASK", "'GFP_RECLAIM_MASK'"),
    ("NONE", "'NONE'"),
    ("-1", "'-1'"),
    ("0x", "'0x'"),
    ("0xg", "'0xg'"),
    ("1.0", "'1.0'"),
    ("1_000", "'1_000'"),
    ("\u0663", "'\u0663'"),                          # a non-ASCII digit
    ("0x100000000", "'0x100000000'"),
    ("4294967296", "'4294967296'"),
    (-1, "-1"),
    (2**32, "4294967296"),
    (2**64, str(2**64)),
    (1.0, "1.0"),
    (3264.0, "3264.0"),
    (True, "True"),
    (False, "False"),
    (None, "None"),
    (b"GFP_KERNEL", "b'GFP_KERNEL'"),
    (["GFP_KERNEL"], "['GFP_KERNEL']"),
    (object, "object"),
])
def test_parse_rejects(bad, culprit):
    with pytest.raises(GFPError) as info:
        gfp.parse(bad)
    assert culprit in str(info.value)
    if isinstance(bad, str) and bad:
        assert repr(bad) in str(info.value)        # the whole input is quoted too


def test_empty_part_message_names_the_part():
    with pytest.raises(GFPError, match=r"empty part .*'GFP_KERNEL\|\|__GFP_ZERO'"):
        gfp.parse("GFP_KERNEL||__GFP_ZERO")
    with pytest.raises(GFPError, match=r"unknown GFP flag '__GFP_BOGUS' in GFP mask 'GFP_KERNEL \| __GFP_BOGUS'"):
        gfp.parse("GFP_KERNEL | __GFP_BOGUS")


def test_gfperror_is_a_valueerror():
    assert issubclass(GFPError, ValueError)
    assert issubclass(GFPError, PyallocError)
    with pytest.raises(ValueError):
        gfp.parse("GFP_BOGUS")


@pytest.mark.parametrize("nibble", BAD_NIBBLES)
def test_zone_conflicts_refused(nibble):
    names = "|".join(n for bit, n in ((1, "__GFP_DMA"), (2, "__GFP_HIGHMEM"), (4, "__GFP_DMA32"))
                     if nibble & bit)
    for value in (nibble, 0xCC0 | nibble, GFP(0xCC0 | nibble)):
        with pytest.raises(GFPError, match=re.escape(names) + ": more than one zone modifier"):
            gfp.parse(value)
    text = "|".join(f"0x{bit:x}" for bit in (1, 2, 4, 8) if nibble & bit)
    with pytest.raises(GFPError) as info:
        gfp.parse("GFP_KERNEL|" + text)
    assert str(info.value) == f"{names}: more than one zone modifier in GFP mask 'GFP_KERNEL|{text}'"


def test_zone_conflict_message_example():
    with pytest.raises(GFPError) as info:
        gfp.parse("__GFP_DMA|__GFP_DMA32")
    assert str(info.value).startswith("__GFP_DMA|__GFP_DMA32: more than one zone modifier")
    with pytest.raises(GFPError, match="__GFP_HIGHMEM|__GFP_DMA32"):
        gfp.parse("GFP_HIGHUSER|GFP_DMA32")


@pytest.mark.parametrize("nibble", GOOD_NIBBLES)
def test_good_zone_nibbles_accepted(nibble):
    assert gfp.parse(nibble) == nibble
    assert gfp.parse(0xCC0 | nibble) == 0xCC0 | nibble
    assert gfp.parse(gfp.format(0xCC0 | nibble)) == 0xCC0 | nibble


def test_cache_does_not_confuse_equal_values():
    assert gfp.parse("1") == 1              # cache a string
    assert gfp.parse(1) == 1                # cache-free int path
    for bad in (1.0, True, 1 + 0j):
        with pytest.raises(GFPError):
            gfp.parse(bad)
    assert gfp.parse("GFP_KERNEL") == 0xCC0
    with pytest.raises(GFPError):
        gfp.parse(b"GFP_KERNEL")


def test_string_cache_is_bounded():
    for i in range(gfp._STR_CACHE_MAX + 500):
        assert gfp.parse(str(i << 4)) == i << 4
    assert len(gfp._STR_CACHE) <= gfp._STR_CACHE_MAX
    assert gfp.parse("GFP_KERNEL|__GFP_ZERO") == 0xDC0


def test_failed_parses_are_not_cached():
    for bad in ("GFP_BOGUS", "GFP_DMA|GFP_DMA32", "GFP_KERNEL|"):
        with pytest.raises(GFPError):
            gfp.parse(bad)
        with pytest.raises(GFPError):
            gfp.parse(bad)
        assert bad not in gfp._STR_CACHE


def test_str_subclass():
    class S(str):
        pass

    assert gfp.parse(S("GFP_KERNEL|__GFP_ZERO")) == 0xDC0
    with pytest.raises(GFPError, match="GFP_BOGUS"):
        gfp.parse(S("GFP_BOGUS"))


# ---------------------------------------------------------------- format


@pytest.mark.parametrize("value,text", FORMAT_EXAMPLES)
def test_format_examples(value, text):
    assert gfp.format(value) == text
    assert gfp.format(value) == text            # from the cache
    assert gfp.format_pGg(value) == text
    assert gfp.format(GFP(value)) == text


def test_format_zero():
    assert gfp.format(0) == "none"
    assert gfp.format_pGg(0) == ""
    assert gfp.parse(gfp.format(0)) == 0


def test_format_rejects_non_masks():
    for bad in (-1, 2**32, 1.0, True, None, "GFP_KERNEL"):
        with pytest.raises(GFPError):
            gfp.format(bad)


def test_format_every_single_bit():
    for name, value in BITS.items():
        expected = {"__GFP_DMA": "GFP_DMA", "__GFP_DMA32": "GFP_DMA32"}.get(name, name)
        assert gfp.format(value) == expected


def test_print_table_order():
    order = [name for _, name in gfp.PRINT_TABLE]
    assert order[:14] == [
        "GFP_TRANSHUGE", "GFP_TRANSHUGE_LIGHT", "GFP_HIGHUSER_MOVABLE", "GFP_HIGHUSER", "GFP_USER",
        "GFP_KERNEL_ACCOUNT", "GFP_KERNEL", "GFP_NOFS", "GFP_ATOMIC", "GFP_NOIO", "GFP_NOWAIT",
        "GFP_DMA", "GFP_DMA32", "__GFP_RECLAIM"]
    assert order[14:] == sorted(BITS, key=BITS.get)
    assert order[-1] == "__GFP_NO_OBJ_EXT"


valid_masks = st.builds(
    lambda high, nibble: (high & ~0xF) | nibble,
    st.integers(min_value=0, max_value=2**32 - 1),
    st.sampled_from(GOOD_NIBBLES),
)
small_valid_masks = st.builds(
    lambda high, nibble: (high & ~0xF) | nibble,
    st.integers(min_value=0, max_value=0x1FFFFFF),
    st.sampled_from(GOOD_NIBBLES),
)


@given(st.one_of(valid_masks, small_valid_masks))
def test_round_trip(value):
    text = gfp.format(value)
    assert gfp.parse(text) == value
    assert gfp.format(gfp.parse(text)) == text
    assert gfp.format_pGg(value) == ("" if value == 0 else text)


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_format_parts_cover_the_value(value):
    # Every part is a known name or one trailing hex number; their bits OR to value.
    parts = gfp.format(value).split("|")
    total = 0
    for i, part in enumerate(parts):
        if part in ALL_NAMES:
            total |= ALL_NAMES[part]
        elif part == "none":
            assert value == 0
        else:
            assert i == len(parts) - 1 and part.startswith("0x")
            total |= int(part, 16)
    assert total == value


@given(
    st.lists(st.sampled_from(sorted(ALL_NAMES)), min_size=1, max_size=6),
    st.lists(st.sampled_from(["", " ", "  ", "\t"]), min_size=12, max_size=12),
)
def test_parse_random_name_lists(names, spaces):
    expected = 0
    for name in names:
        expected |= ALL_NAMES[name]
    text = "|".join(spaces[2 * i] + name + spaces[2 * i + 1] for i, name in enumerate(names))
    if expected & 0xF in BAD_NIBBLES:
        with pytest.raises(GFPError, match="more than one zone modifier"):
            gfp.parse(text)
    else:
        assert gfp.parse(text) == expected


# ---------------------------------------------------------------- zone, migratetype, blocking

# kernel-facts §1.3: low nibble -> zone (DMA 0, DMA32 1, NORMAL 2, MOVABLE 3); bad -> 0.
ZONE_BY_NIBBLE = {
    0x0: 2, 0x1: 0, 0x2: 2, 0x3: 0, 0x4: 1, 0x5: 0, 0x6: 0, 0x7: 0,
    0x8: 2, 0x9: 0, 0xA: 3, 0xB: 0, 0xC: 1, 0xD: 0, 0xE: 0, 0xF: 0,
}


@pytest.mark.parametrize("nibble", range(16))
def test_gfp_zone(nibble):
    assert gfp.gfp_zone(nibble) == ZONE_BY_NIBBLE[nibble]
    assert gfp.gfp_zone(0x1C24C0 | nibble) == ZONE_BY_NIBBLE[nibble]
    assert gfp.ZONE_TABLE[nibble] == gfp._gfp_zone_compute(nibble)   # table and its twin


def test_gfp_zone_named():
    assert gfp.ZONE_NAMES == ("DMA", "DMA32", "Normal", "Movable", "Device")
    assert gfp.ZONE_NAMES[gfp.gfp_zone(gfp.parse("GFP_KERNEL"))] == "Normal"
    assert gfp.ZONE_NAMES[gfp.gfp_zone(gfp.parse("GFP_KERNEL|GFP_DMA"))] == "DMA"
    assert gfp.ZONE_NAMES[gfp.gfp_zone(gfp.parse("GFP_KERNEL|GFP_DMA32"))] == "DMA32"
    assert gfp.ZONE_NAMES[gfp.gfp_zone(gfp.parse("GFP_HIGHUSER_MOVABLE"))] == "Movable"
    assert gfp.ZONE_NAMES[gfp.gfp_zone(gfp.parse("GFP_HIGHUSER"))] == "Normal"


# kernel-facts §1.4: (flags & 0x18) >> 3; MOVABLE is bit 3 of the nibble, RECLAIMABLE 0x10.
@pytest.mark.parametrize("nibble", range(16))
@pytest.mark.parametrize("reclaimable", [0, 0x10])
def test_gfp_migratetype(nibble, reclaimable):
    movable = bool(nibble & 0x8)
    expected = {(False, False): 0, (True, False): 1, (False, True): 2, (True, True): 3}[
        (movable, bool(reclaimable))]
    assert gfp.gfp_migratetype(nibble | reclaimable) == expected
    assert gfp.gfp_migratetype(0xCC0 | nibble | reclaimable) == expected


def test_migratetype_names():
    assert gfp.MIGRATETYPE_NAMES == ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
    assert gfp.MIGRATETYPE_NAMES[gfp.gfp_migratetype(0x100CCA)] == "Movable"
    assert gfp.MIGRATETYPE_NAMES[gfp.gfp_migratetype(0xCC0)] == "Unmovable"
    assert gfp.MIGRATETYPE_NAMES[gfp.gfp_migratetype(0xCD0)] == "Reclaimable"


def test_allows_blocking():
    assert gfp.allows_blocking(0xCC0) is True
    assert gfp.allows_blocking(0x400) is True
    assert gfp.allows_blocking(0x1C24CA) is True
    assert gfp.allows_blocking(0x820) is False          # GFP_ATOMIC
    assert gfp.allows_blocking(0x2800) is False         # GFP_NOWAIT
    assert gfp.allows_blocking(0x1C20CA) is False       # GFP_TRANSHUGE_LIGHT
    assert gfp.allows_blocking(0xCC0 & ~0x400) is False
