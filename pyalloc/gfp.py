"""GFP masks: names, parsing, printing and the few questions the allocator asks of them.

Where the flags act: this module only names and prints them.  The zone and watermark bits act
in the fast path (``get_page_from_freelist`` in csrc/buddy.c <-> model/buddy.py); the reclaim,
IO/FS and retry bits in the slow path (``__alloc_pages_slowpath``, ``should_reclaim_retry``, same
files) and in reclaim (csrc/reclaim.c <-> model/reclaim.py); __GFP_ZERO, __GFP_COMP and the slab
fix-ups in csrc/slab.c <-> model/slab.py; __GFP_NOWARN in the shared layer's reports.

A GFP ("get free pages") mask tells an allocator where memory may come from and how
hard it may try.  The kernel spells masks in three layers, and so does this module:

1. **Bits.**  One per behaviour: a zone modifier (``__GFP_DMA``), a mobility hint
   (``__GFP_MOVABLE``), a watermark or reclaim permission (``__GFP_HIGH``,
   ``__GFP_DIRECT_RECLAIM``) or an action modifier (``__GFP_ZERO``, ``__GFP_COMP``).
   Here they are plain ``int`` constants named ``GFP_<NAME>`` for the kernel's
   ``__GFP_<NAME>``: a leading double underscore would be name-mangled inside a class
   body (``gfp.__GFP_ZERO`` in a method of ``Machine`` looks up ``_Machine__GFP_ZERO``).
   The kernel's own spellings are the keys of :data:`NAMES`.
2. **Typed flags.**  :class:`GFP`, an :class:`enum.IntFlag` re-exported as
   ``pyalloc.GFP``, whose members are the bits without the prefix (``GFP.ZERO``) so
   users can write ``GFP.KERNEL | GFP.ZERO``.
3. **Composites.**  The combinations callers actually use (``GFP_KERNEL``,
   ``GFP_ATOMIC``, ``GFP_HIGHUSER_MOVABLE``, ...), as module constants and as
   :class:`GFP` members.

The values are those of Linux 6.18 on x86-64 with a distro-like config (ZONE_DMA and
ZONE_DMA32 on, HIGHMEM off, MEMCG on so ``__GFP_NO_OBJ_EXT`` exists, LOCKDEP and
KASAN_HW_TAGS off, so ``__GFP_NOLOCKDEP``, ``__GFP_SKIP_ZERO`` and ``__GFP_SKIP_KASAN``
are 0), taken from ``include/linux/gfp_types.h``; the print order is that of the 6.18
tracepoint format (``include/trace/events/mmflags.h``).

Everything that accepts a mask from a user goes through :func:`parse` once, which
returns a plain ``int``; from there on the allocator works on ints only.
:func:`format` prints a mask the way the kmem tracepoints do.
"""

from __future__ import annotations

import enum
import re
from typing import Union

from .errors import GFPError
from .errors import show

# --------------------------------------------------------------------------------------
# Layer 1: the bits (6.18, default config).  Bit 9 (0x200) is unused since v6.3.
# --------------------------------------------------------------------------------------

GFP_DMA = 0x1                  # zone modifier: ZONE_DMA
GFP_HIGHMEM = 0x2              # zone modifier: HIGHMEM, which is ZONE_NORMAL on x86-64
GFP_DMA32 = 0x4                # zone modifier: ZONE_DMA32
GFP_MOVABLE = 0x8              # zone modifier (with HIGHMEM: ZONE_MOVABLE) + migratetype
GFP_RECLAIMABLE = 0x10         # migratetype RECLAIMABLE
GFP_HIGH = 0x20                # may dip into the min reserve
GFP_IO = 0x40                  # may start physical IO
GFP_FS = 0x80                  # may call into the filesystem
GFP_ZERO = 0x100               # return zeroed memory
GFP_DIRECT_RECLAIM = 0x400     # may sleep and reclaim directly
GFP_KSWAPD_RECLAIM = 0x800     # may wake kswapd
GFP_WRITE = 0x1000             # the caller will dirty the page
GFP_NOWARN = 0x2000            # no allocation-failure report
GFP_RETRY_MAYFAIL = 0x4000     # retry while progress is made, may fail, never OOM-kill
GFP_NOFAIL = 0x8000            # never fail (loop forever)
GFP_NORETRY = 0x10000          # one light attempt at reclaim, then fail
GFP_MEMALLOC = 0x20000         # ignore watermarks
GFP_COMP = 0x40000             # compound page
GFP_NOMEMALLOC = 0x80000       # never use the reserves; beats MEMALLOC
GFP_HARDWALL = 0x100000        # enforce the cpuset memory policy
GFP_THISNODE = 0x200000        # no fallback to another node
GFP_ACCOUNT = 0x400000         # charge to the memory cgroup
GFP_ZEROTAGS = 0x800000        # zero MTE tags along with the memory
GFP_NO_OBJ_EXT = 0x1000000     # no slab object extension vector (bit 24 in this config)
# Named by the kernel but compiled to 0 in this config.
GFP_SKIP_ZERO = 0              # KASAN_HW_TAGS only
GFP_SKIP_KASAN = 0             # KASAN_HW_TAGS only
GFP_NOLOCKDEP = 0              # LOCKDEP only

GFP_BITS_SHIFT = 25
GFP_BITS_MASK = (1 << GFP_BITS_SHIFT) - 1          # 0x1ffffff
GFP_ZONEMASK = GFP_DMA | GFP_HIGHMEM | GFP_DMA32 | GFP_MOVABLE   # 0xf
GFP_MOVABLE_MASK = GFP_RECLAIMABLE | GFP_MOVABLE  # the migratetype bits, 0x18
GFP_MOVABLE_SHIFT = 3
GFP_T_MAX = 0xFFFFFFFF                            # gfp_t is a 32-bit unsigned int

# --------------------------------------------------------------------------------------
# Layer 3: the composites (values of the default config; SKIP_KASAN is 0).
# --------------------------------------------------------------------------------------

GFP_RECLAIM = GFP_DIRECT_RECLAIM | GFP_KSWAPD_RECLAIM                      # 0xc00
GFP_ATOMIC = GFP_HIGH | GFP_KSWAPD_RECLAIM                                 # 0x820
GFP_KERNEL = GFP_RECLAIM | GFP_IO | GFP_FS                                 # 0xcc0
GFP_KERNEL_ACCOUNT = GFP_KERNEL | GFP_ACCOUNT                              # 0x400cc0
GFP_NOWAIT = GFP_KSWAPD_RECLAIM | GFP_NOWARN       # 0x2800 (NOWARN joined after 6.6)
GFP_NOIO = GFP_RECLAIM                                                     # 0xc00
GFP_NOFS = GFP_RECLAIM | GFP_IO                                            # 0xc40
GFP_USER = GFP_RECLAIM | GFP_IO | GFP_FS | GFP_HARDWALL                    # 0x100cc0
GFP_HIGHUSER = GFP_USER | GFP_HIGHMEM                                      # 0x100cc2
GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | GFP_MOVABLE | GFP_SKIP_KASAN         # 0x100cca
GFP_TRANSHUGE_LIGHT = ((GFP_HIGHUSER_MOVABLE | GFP_COMP | GFP_NOMEMALLOC | GFP_NOWARN)
                       & ~GFP_RECLAIM)                                     # 0x1c20ca
GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | GFP_DIRECT_RECLAIM                   # 0x1c24ca
# GFP_DMA and GFP_DMA32 are the composites of the same name: equal to the bits.

# Internal masks the allocator uses (mm/internal.h, mm/slab.h).
GFP_RECLAIM_MASK = (GFP_RECLAIM | GFP_HIGH | GFP_IO | GFP_FS | GFP_NOWARN
                    | GFP_RETRY_MAYFAIL | GFP_NOFAIL | GFP_NORETRY | GFP_MEMALLOC
                    | GFP_NOMEMALLOC | GFP_NOLOCKDEP)
GFP_SLAB_BUG_MASK = (GFP_DMA32 | GFP_HIGHMEM | ~GFP_BITS_MASK) & GFP_T_MAX   # 0xfe000006
GFP_CONSTRAINT_MASK = GFP_HARDWALL | GFP_THISNODE
GFP_BOOT_MASK = GFP_BITS_MASK & ~(GFP_RECLAIM | GFP_IO | GFP_FS)

# --------------------------------------------------------------------------------------
# Layer 2: the typed flags users see as pyalloc.GFP.
# --------------------------------------------------------------------------------------

# KEEP (the IntFlag default since 3.11, spelled out here) keeps any value as it is:
# the unused bit 0x200 and bits above GFP_BITS_MASK are neither dropped nor refused.
_ENUM_KW = {"boundary": enum.KEEP} if hasattr(enum, "KEEP") else {}


class GFP(enum.IntFlag, **_ENUM_KW):
    """GFP bits and composites as an IntFlag: ``GFP.KERNEL | GFP.ZERO == 0xdc0``.

    Members are named after the kernel's ``__GFP_X`` bits and ``GFP_X`` composites
    without their prefix.  Any function taking a mask also takes a plain int or a
    kernel-spelled string; :func:`parse` turns all three into an int.
    """

    DMA = GFP_DMA
    HIGHMEM = GFP_HIGHMEM
    DMA32 = GFP_DMA32
    MOVABLE = GFP_MOVABLE
    RECLAIMABLE = GFP_RECLAIMABLE
    HIGH = GFP_HIGH
    IO = GFP_IO
    FS = GFP_FS
    ZERO = GFP_ZERO
    DIRECT_RECLAIM = GFP_DIRECT_RECLAIM
    KSWAPD_RECLAIM = GFP_KSWAPD_RECLAIM
    WRITE = GFP_WRITE
    NOWARN = GFP_NOWARN
    RETRY_MAYFAIL = GFP_RETRY_MAYFAIL
    NOFAIL = GFP_NOFAIL
    NORETRY = GFP_NORETRY
    MEMALLOC = GFP_MEMALLOC
    COMP = GFP_COMP
    NOMEMALLOC = GFP_NOMEMALLOC
    HARDWALL = GFP_HARDWALL
    THISNODE = GFP_THISNODE
    ACCOUNT = GFP_ACCOUNT
    ZEROTAGS = GFP_ZEROTAGS
    NO_OBJ_EXT = GFP_NO_OBJ_EXT
    # composites
    RECLAIM = GFP_RECLAIM
    ATOMIC = GFP_ATOMIC
    KERNEL = GFP_KERNEL
    KERNEL_ACCOUNT = GFP_KERNEL_ACCOUNT
    NOWAIT = GFP_NOWAIT
    NOIO = GFP_NOIO
    NOFS = GFP_NOFS
    USER = GFP_USER
    HIGHUSER = GFP_HIGHUSER
    HIGHUSER_MOVABLE = GFP_HIGHUSER_MOVABLE
    TRANSHUGE_LIGHT = GFP_TRANSHUGE_LIGHT
    TRANSHUGE = GFP_TRANSHUGE

    def __repr__(self) -> str:
        # IntFlag's own repr lists every alias that fits (KERNEL, NOFS, RECLAIM, ...);
        # print the kernel's spelling instead: <GFP GFP_KERNEL|__GFP_ZERO: 0xdc0>.
        value = int(self)
        text = format(value) if 0 <= value <= GFP_T_MAX else "%#x" % value
        return f"<GFP {text}: {value:#x}>"


# --------------------------------------------------------------------------------------
# Names, in the order the 6.18 tracepoints print them.
# --------------------------------------------------------------------------------------

# The table show_gfp_flags / %pGg walk: composites first, largest first, then every
# single bit in bit order.  GFP_NOIO comes before __GFP_RECLAIM, so 0xc00 prints as
# GFP_NOIO; GFP_DMA and GFP_DMA32 come before their bits, so __GFP_DMA and
# __GFP_DMA32 never print.
PRINT_TABLE: tuple[tuple[int, str], ...] = (
    (GFP_TRANSHUGE, "GFP_TRANSHUGE"),
    (GFP_TRANSHUGE_LIGHT, "GFP_TRANSHUGE_LIGHT"),
    (GFP_HIGHUSER_MOVABLE, "GFP_HIGHUSER_MOVABLE"),
    (GFP_HIGHUSER, "GFP_HIGHUSER"),
    (GFP_USER, "GFP_USER"),
    (GFP_KERNEL_ACCOUNT, "GFP_KERNEL_ACCOUNT"),
    (GFP_KERNEL, "GFP_KERNEL"),
    (GFP_NOFS, "GFP_NOFS"),
    (GFP_ATOMIC, "GFP_ATOMIC"),
    (GFP_NOIO, "GFP_NOIO"),
    (GFP_NOWAIT, "GFP_NOWAIT"),
    (GFP_DMA, "GFP_DMA"),
    (GFP_DMA32, "GFP_DMA32"),
    (GFP_RECLAIM, "__GFP_RECLAIM"),
    (GFP_DMA, "__GFP_DMA"),
    (GFP_HIGHMEM, "__GFP_HIGHMEM"),
    (GFP_DMA32, "__GFP_DMA32"),
    (GFP_MOVABLE, "__GFP_MOVABLE"),
    (GFP_RECLAIMABLE, "__GFP_RECLAIMABLE"),
    (GFP_HIGH, "__GFP_HIGH"),
    (GFP_IO, "__GFP_IO"),
    (GFP_FS, "__GFP_FS"),
    (GFP_ZERO, "__GFP_ZERO"),
    (GFP_DIRECT_RECLAIM, "__GFP_DIRECT_RECLAIM"),
    (GFP_KSWAPD_RECLAIM, "__GFP_KSWAPD_RECLAIM"),
    (GFP_WRITE, "__GFP_WRITE"),
    (GFP_NOWARN, "__GFP_NOWARN"),
    (GFP_RETRY_MAYFAIL, "__GFP_RETRY_MAYFAIL"),
    (GFP_NOFAIL, "__GFP_NOFAIL"),
    (GFP_NORETRY, "__GFP_NORETRY"),
    (GFP_MEMALLOC, "__GFP_MEMALLOC"),
    (GFP_COMP, "__GFP_COMP"),
    (GFP_NOMEMALLOC, "__GFP_NOMEMALLOC"),
    (GFP_HARDWALL, "__GFP_HARDWALL"),
    (GFP_THISNODE, "__GFP_THISNODE"),
    (GFP_ACCOUNT, "__GFP_ACCOUNT"),
    (GFP_ZEROTAGS, "__GFP_ZEROTAGS"),
    (GFP_NO_OBJ_EXT, "__GFP_NO_OBJ_EXT"),
)

# Every name parse() accepts, in the kernel's spelling: the printed ones plus the
# names that are 0 in this config.  Raw ___GFP_* names are not accepted (the kernel
# says not to use them), nor internal masks such as GFP_RECLAIM_MASK.
NAMES: dict[str, int] = {name: value for value, name in PRINT_TABLE}
NAMES.update({
    "__GFP_SKIP_ZERO": GFP_SKIP_ZERO,
    "__GFP_SKIP_KASAN": GFP_SKIP_KASAN,
    "__GFP_NOLOCKDEP": GFP_NOLOCKDEP,
})

# --------------------------------------------------------------------------------------
# Zones and migratetypes
# --------------------------------------------------------------------------------------

ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, ZONE_DEVICE = range(5)
# what every API taking a mask accepts: an int, the kernel's spelling, or GFP members
GfpLike = Union[int, str, GFP]

ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable", "Device")

MIGRATE_UNMOVABLE, MIGRATE_MOVABLE, MIGRATE_RECLAIMABLE, MIGRATE_HIGHATOMIC = range(4)
MIGRATE_ISOLATE = 4     # no CMA in this config, so ISOLATE follows HIGHATOMIC
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")

# Low nibbles with more than one of DMA, HIGHMEM, DMA32: the kernel's GFP_ZONE_BAD.
# A DEBUG_VM kernel stops on them; pyalloc refuses them in parse().
GFP_ZONE_BAD = frozenset({0x3, 0x5, 0x6, 0x7, 0xB, 0xD, 0xE, 0xF})
_ZONE_OK = tuple(nibble not in GFP_ZONE_BAD for nibble in range(16))   # by low nibble


def _gfp_zone_compute(flags: int) -> int:
    """gfp_zone by reasoning, the twin of ZONE_TABLE (a test asserts they agree)."""
    nibble = flags & GFP_ZONEMASK
    if nibble in GFP_ZONE_BAD:
        return ZONE_DMA      # the kernel's table holds 0 there
    if nibble & GFP_DMA:
        return ZONE_DMA
    if nibble & GFP_DMA32:
        return ZONE_DMA32
    if nibble & GFP_HIGHMEM and nibble & GFP_MOVABLE:
        return ZONE_MOVABLE
    return ZONE_NORMAL       # nothing, HIGHMEM alone (no highmem on 64-bit) or MOVABLE alone


# Indexed by flags & GFP_ZONEMASK, as the kernel's GFP_ZONE_TABLE.
ZONE_TABLE: tuple[int, ...] = (
    ZONE_NORMAL,   # 0x0
    ZONE_DMA,      # 0x1 DMA
    ZONE_NORMAL,   # 0x2 HIGHMEM
    ZONE_DMA,      # 0x3 bad
    ZONE_DMA32,    # 0x4 DMA32
    ZONE_DMA,      # 0x5 bad
    ZONE_DMA,      # 0x6 bad
    ZONE_DMA,      # 0x7 bad
    ZONE_NORMAL,   # 0x8 MOVABLE
    ZONE_DMA,      # 0x9 MOVABLE|DMA
    ZONE_MOVABLE,  # 0xa MOVABLE|HIGHMEM
    ZONE_DMA,      # 0xb bad
    ZONE_DMA32,    # 0xc MOVABLE|DMA32
    ZONE_DMA,      # 0xd bad
    ZONE_DMA,      # 0xe bad
    ZONE_DMA,      # 0xf bad
)


def gfp_zone(flags: int) -> int:
    """The highest zone *flags* may allocate from (ZONE_DMA 0 ... ZONE_MOVABLE 3).

    Expects a mask that passed :func:`parse`; a bad zone combination gives ZONE_DMA,
    as the kernel's table does.
    """
    return ZONE_TABLE[flags & GFP_ZONEMASK]


def gfp_migratetype(flags: int) -> int:
    """Migratetype from the mobility bits: 0 Unmovable, 1 Movable, 2 Reclaimable.

    MOVABLE|RECLAIMABLE together give 3 (HighAtomic), where the kernel also warns.
    """
    return (flags & GFP_MOVABLE_MASK) >> GFP_MOVABLE_SHIFT


def allows_blocking(flags: int) -> bool:
    """True when the caller may sleep (``gfpflags_allow_blocking``: DIRECT_RECLAIM set)."""
    return bool(flags & GFP_DIRECT_RECLAIM)


# --------------------------------------------------------------------------------------
# parse
# --------------------------------------------------------------------------------------

# Successful string parses, input string -> mask.  Cleared when full, so input that
# never repeats cannot grow it without bound; the hot strings come back at once.
_STR_CACHE: dict[str, int] = {}
_STR_CACHE_MAX = 4096

_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]+)\Z")   # ASCII only: not \d


def _did_you_mean(part: str) -> str:
    """"; did you mean GFP_KERNEL?" for a near miss of a known name (cold path only)."""
    import difflib

    def stem(name: str) -> str:
        name = name.upper().lstrip("_")
        return name[4:] if name.startswith("GFP_") else name
    stems: dict[str, str] = {}
    for name in NAMES:
        stems.setdefault(stem(name), name)
    close = difflib.get_close_matches(stem(part), stems, n=1, cutoff=0.75)
    return f"; did you mean {stems[close[0]]}?" if close else ""


def parse(gfp) -> int:
    """Return the mask *gfp* stands for, as a plain int, or raise :class:`GFPError`.

    *gfp* is an int or a :class:`GFP` (0 <= value < 2**32; bits above
    GFP_BITS_MASK are kept, the allocator strips them) or a string in the kernel's
    spelling: ``|``-separated parts, spaces allowed, each a ``GFP_*`` / ``__GFP_*``
    name, a number (``0x200``, ``512``) or ``none`` (0, as a tracepoint prints it).
    A mask with more than one zone modifier (DMA, DMA32, HIGHMEM) is refused.
    """
    # Hot path: a string seen before is one dict lookup; a plain int or a GFP member
    # a few compares and one tuple index.  The type tests are exact, so a float or a
    # bool (equal and hash-equal to an int) never reaches the cache or these branches.
    # 0xFFFFFFFF is GFP_T_MAX, written out to save a global lookup.
    t = type(gfp)
    if t is str:
        try:
            return _STR_CACHE[gfp]
        except KeyError:
            return _parse_str(gfp)
    if t is int:
        if 0 <= gfp <= 0xFFFFFFFF and _ZONE_OK[gfp & 0xF]:
            return gfp
    elif t is GFP:
        value = gfp._value_          # the plain int behind the member
        if 0 <= value <= 0xFFFFFFFF and _ZONE_OK[value & 0xF]:
            return value
    return _parse_other(gfp)


def _parse_str(text: str) -> int:
    """Parse a string that is not in the cache; cache it if it is valid."""
    flags = _parse_text(text, text)
    if len(_STR_CACHE) >= _STR_CACHE_MAX:
        _STR_CACHE.clear()
    _STR_CACHE[text] = flags
    return flags


def _parse_text(text: str, shown) -> int:
    """Parse the kernel spelling *text*; errors quote *shown*."""
    if not text.strip():
        raise GFPError(f"empty GFP mask {show(shown)}")
    flags = 0
    for index, raw in enumerate(text.split("|"), 1):
        part = raw.strip()
        if not part:
            raise GFPError(f"empty part (part {index}) in GFP mask {show(shown)}")
        value = NAMES.get(part)
        if value is None:
            if part == "none":
                value = 0
            elif _NUMBER.match(part):
                # int() of thousands of digits raises ValueError; no gfp_t has more than 10
                hexa = part[:2] in ("0x", "0X")
                if len((part[2:] if hexa else part).lstrip("0")) > 12:
                    value = GFP_T_MAX + 1
                else:
                    value = int(part, 16) if hexa else int(part, 10)
                if value > GFP_T_MAX:
                    raise GFPError(f"number {show(part)} does not fit in 32-bit gfp_t, "
                                   f"in GFP mask {show(shown)}")
            else:
                raise GFPError(f"unknown GFP flag {show(part)} in GFP mask {show(shown)}{_did_you_mean(part)}")
        flags |= value
    _check_zone(flags, shown)
    return flags


def _parse_other(gfp) -> int:
    """Everything that is not a str or an in-range, valid plain int."""
    if isinstance(gfp, bool):
        raise GFPError(f"a GFP mask cannot be a bool: {show(gfp)}")
    if isinstance(gfp, int):       # a plain int that failed a check, a GFP, an IntEnum
        value = int(gfp)
        if not 0 <= value <= GFP_T_MAX:
            raise GFPError(f"GFP mask {show(gfp)} out of range: gfp_t is 32 bits "
                           f"(0 <= mask < 2**32)")
        _check_zone(value, gfp)
        return value
    if isinstance(gfp, str):       # a str subclass: parse it, do not cache it
        return _parse_text(str(gfp), gfp)
    raise GFPError(f"a GFP mask must be an int, a str or a pyalloc.GFP, "
                   f"not {type(gfp).__name__}: {show(gfp)}")


def _check_zone(flags: int, shown) -> None:
    """Refuse more than one zone modifier, naming them and quoting the input."""
    if not _ZONE_OK[flags & 0xF]:
        names = "|".join(name for bit, name in ((GFP_DMA, "__GFP_DMA"),
                                                 (GFP_HIGHMEM, "__GFP_HIGHMEM"),
                                                 (GFP_DMA32, "__GFP_DMA32"))
                         if flags & bit)
        if isinstance(shown, int):
            shown = "%#x" % shown
        else:
            shown = repr(shown)
        raise GFPError(f"{names}: more than one zone modifier in GFP mask {shown}")


# --------------------------------------------------------------------------------------
# format
# --------------------------------------------------------------------------------------

# mask -> text as the tracepoints print it; small and cleared when full.
_FMT_CACHE: dict[int, str] = {}
_FMT_CACHE_MAX = 1024


def format(flags: int) -> str:  # noqa: A001 - the module's verb, as gfp.format()
    """*flags* as the 6.18 kmem tracepoints print it: ``GFP_KERNEL|__GFP_ZERO``.

    Walks :data:`PRINT_TABLE`; each entry whose bits are all present is printed and
    its bits cleared; leftover bits print as one ``0x%x``; 0 prints ``none``.
    Any 32-bit value prints, including zone combinations :func:`parse` refuses.
    """
    if type(flags) is not int:
        flags = _format_arg(flags)
    try:
        return _FMT_CACHE[flags]
    except KeyError:
        pass
    text = _format_compute(flags) or "none"
    if len(_FMT_CACHE) >= _FMT_CACHE_MAX:
        _FMT_CACHE.clear()
    _FMT_CACHE[flags] = text
    return text


def format_pGg(flags: int) -> str:  # noqa: N802 - named after the printk specifier
    """*flags* as printk's ``%pGg`` prints it: as :func:`format`, but "" for 0."""
    text = format(flags)
    return "" if text == "none" else text


def _format_arg(flags) -> int:
    if isinstance(flags, int) and not isinstance(flags, bool):
        flags = int(flags)
        if 0 <= flags <= GFP_T_MAX:
            return flags
        raise GFPError(f"GFP mask {show(flags)} out of range: gfp_t is 32 bits")
    raise GFPError(f"format() takes an int mask, not {type(flags).__name__}: {show(flags)}")


def _format_compute(flags: int) -> str:
    if flags < 0 or flags > GFP_T_MAX:
        raise GFPError(f"GFP mask {show(flags)} out of range: gfp_t is 32 bits")
    return format_table(flags, PRINT_TABLE)


def format_table(flags: int, table) -> str:
    """show_gfp_flags(): each (mask, name) of table whose bits are all set, in order; the rest in hex."""
    parts = []
    for mask, name in table:
        if not flags:
            break
        if flags & mask == mask:
            parts.append(name)
            flags &= ~mask
    if flags:
        parts.append("0x%x" % flags)
    return "|".join(parts)


__all__ = [  # format and format_pGg are left out: a star import would shadow format()
    "GFP", "parse", "gfp_zone", "gfp_migratetype", "allows_blocking",
    "NAMES", "PRINT_TABLE", "ZONE_NAMES", "MIGRATETYPE_NAMES", "GFP_BITS_MASK", "GFP_ZONEMASK",
]
