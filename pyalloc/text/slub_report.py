"""The text of SLUB's debug reports (mm/slub.c, mm/slab_common.c, Linux 6.18).

Pure functions of their arguments, shared by both backends: the caller (the
slab allocator) decides *what* went wrong and hands over the addresses, bytes
and counters; these functions only lay the text out.  Addresses are printed
unhashed, as the kernel does with ``no_hash_pointers``: ``%p`` is 16 lowercase
hex digits, ``0x%p`` adds the prefix, and NULL (pass 0) prints
``0000000000000000`` (vsprintf prints NULL and error pointers unhashed anyway).

Layout of one object report in 6.18.  Since "mm: slub: call WARN() when
detecting a slab corruption" (upstream 3f6f32b14ab3) ``object_err()`` and
``slab_err()`` end in ``WARN_ON(1)`` instead of ``dump_stack()``, and since
"mm: slub: Print the broken data before restoring them" (ed5ec2e95259)
``check_bytes_and_report()`` prints its ``[<what> overwritten] ...`` line
*before* the report, whose reason is then ``Object corrupt``::

    [Poison overwritten] 0x...-0x... @offset=72. First byte 0x0 instead of 0x6b   (first_line)
    =============================================================================
    BUG kmalloc-64 (Not tainted): Object corrupt
    -----------------------------------------------------------------------------
    <blank>
    Allocated in <caller>+0x../0x.. age=.. cpu=.. pid=..         (STORE_USER only)
     <stack depot frames, one space in front>
    Freed in ...
    Slab 0xffffea....... objects=.. used=.. fp=0x... flags=0x...(node=0|zone=1)
    Object 0xffff888... @offset=.. fp=0x...
    <blank>
    Redzone  ffff888...: bb bb ...                                 (print_section)
    Object   ffff888...: 6b 6b ...
    Redzone  ...
    Padding  ...
    ------------[ cut here ]------------                           (WARN_ON(1) in object_err)
    WARNING: CPU: 0 PID: 1 at mm/slub.c:NNNN object_err+0x../0x..
    ...
    ---[ end trace 0000000000000000 ]---

followed by the caller's ``FIX <cache>: ...`` lines (:func:`fix_line`,
:func:`restore_line`).

Taint: ``tainted=False`` means nothing was tainted before this report: the BUG
line says ``Not tainted`` and the WARN splat, printed after ``add_taint(B)``,
says ``Tainted: G    B ...`` / ``Tainted: [B]=BAD_PAGE``.  ``tainted=True`` means
an earlier slab report left B and W (WARN) set.  A string of taint letters
(e.g. ``"BW"``) may be passed instead of a bool for any other state.

Line numbers in ``mm/slub.c:NNNN`` locations and ``+0xOFF/0xSIZE`` offsets are
stable inventions (see :data:`LOCATIONS`, :func:`pyalloc.text.printk.symbol_offset`):
a simulator has no build to take them from.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from .printk import HARDWARE_NAME, cpu_line, symbol_offset
from .bad_page import STRUCT_PAGE_SIZE, VMEMMAP_START, dump_page_lines

RULE_EQ = "=" * 77
RULE_DASH = "-" * 77

# print_section() prefixes, exactly as print_trailer() passes them (9 columns).
LABEL_REDZONE = "Redzone  "
LABEL_OBJECT = "Object   "
LABEL_PADDING = "Padding  "
LABEL_BYTES_B4 = "Bytes b4 "
# slab_pad_check() dumps the slab tail with the shorter "Padding " (8 columns).
LABEL_SLAB_PADDING = "Padding "

# Where the WARN_ON()s sit.  The line numbers are plausible for 6.18, not exact.
LOCATIONS = {
    "object_err": "mm/slub.c:1102",
    "__slab_err": "mm/slub.c:1131",
    "kmem_cache_destroy": "mm/slab_common.c:521",
    "cache_from_obj": "mm/slub.c:6712",
    "virt_to_cache": "mm/slub.c:6688",
    "free_large_kmalloc": "mm/slub.c:6772",
    "set_freepointer": "mm/slub.c:499",
}

# print_tainted(): one column per taint flag, in bit order (TAINT_FLAGS_COUNT = 20).
# Bit 0 prints 'G' when clear (no proprietary module); every other clear bit a space.
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTNJ"
TAINT_NAMES = {"B": "BAD_PAGE", "W": "WARN", "D": "DIE"}

_EARLIER_SLAB_REPORT = "BW"     # what tainted=True stands for


def _p(addr: int | None) -> str:
    """%p without hashing: 16 hex digits, NULL as zeros."""
    return "%016x" % (addr or 0)


def _taint_letters(tainted) -> str:
    if isinstance(tainted, str):
        return tainted
    return _EARLIER_SLAB_REPORT if tainted else ""


def taint_columns(letters: str) -> str:
    """The flag columns print_tainted() prints after "Tainted: " for these taints."""
    out = []
    for i, letter in enumerate(TAINT_LETTERS):
        if letter in letters:
            out.append(letter)
        else:
            out.append("G" if i == 0 else " ")
    return "".join(out)


def print_tainted(letters: str) -> str:
    return "Tainted: " + taint_columns(letters) if letters else "Not tainted"


def slab_struct_addr(pfn: int) -> int:
    """The address ``Slab 0x%p`` prints: the struct slab, i.e. the head page's
    struct page in the vmemmap (0xffffea0000000000 + pfn * 64)."""
    return VMEMMAP_START + pfn * STRUCT_PAGE_SIZE


def slab_flags_text(zone: int = 1, order: int = 0) -> str:
    """%pGp of a slab's folio flags, as pyalloc's page reports print them.

    Since 6.10 "slab" is a page type, not a page flag, so the flag names are
    only ``head`` (a compound slab, order > 0), then the node and zone fields.
    """
    value = zone << 62
    if order:
        return "0x%x(head|node=0|zone=%d)" % (value | 0x40, zone)
    return "0x%x(node=0|zone=%d)" % (value, zone)


# --------------------------------------------------------------------------
# Pieces

def hex_dump_lines(label: str, addr: int, data: bytes) -> list[str]:
    """print_hex_dump(KERN_ERR, label, DUMP_PREFIX_ADDRESS, 16, 1, data, len, true).

    ``label`` is the prefix string, used verbatim when it ends in a space (pass
    the kernel's own, e.g. :data:`LABEL_OBJECT` ``"Object   "`` or the slab-tail
    ``"Padding "``); a bare word without trailing space (``"Object"``,
    ``"Bytes b4"``) is padded to print_trailer()'s 9 columns.

    Each line: label, the address as 16 hex digits, ": ", the bytes as
    ``%02x`` separated by single spaces, blanks up to column 49 of the dump
    (hex_dump_to_buffer's ascii_column = 16*2 + 16/1 + 1), then the ASCII
    column ('.' for bytes outside 0x20..0x7e).  A full line has two blanks
    before the ASCII; the last, partial line is padded to the same column.
    No line at all for empty data.
    """
    if not label.endswith(" "):
        label = "%-9s" % label
    lines = []
    for i in range(0, len(data), 16):
        chunk = bytes(data[i:i + 16])
        hexpart = " ".join("%02x" % b for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7f else "." for b in chunk)
        lines.append("%s%s: %s%s" % (label, _p(addr + i), hexpart.ljust(49), text))
    return lines


def bug_header(cache: str, reason: str, tainted) -> list[str]:
    """slab_bug(): 77 '=', ``BUG <cache> (<taint>): <reason>``, 77 '-', a blank line.

    A NULL cache (slab_err(NULL, ...)) prints as ``<unknown>``: pass None."""
    name = "<unknown>" if cache is None else cache
    return [RULE_EQ,
            "BUG %s (%s): %s" % (name, print_tainted(_taint_letters(tainted)), reason),
            RULE_DASH,
            ""]


def track_line(kind: str, caller: str, age: int, cpu: int, pid: int) -> str:
    """print_track(): ``"%s in %pS age=%lu cpu=%u pid=%d"``; kind is "Allocated" or "Freed"."""
    where = caller if ("+" in caller or ":" in caller) else symbol_offset(caller)
    return "%s in %s age=%d cpu=%d pid=%d" % (kind, where, age, cpu, pid)


def _track_lines(kind: str, track) -> list[str]:
    """A track tuple is (caller, age, cpu, pid) or (caller, age, cpu, pid, frames).

    With STACKDEPOT the saved stack follows, one frame a line with one space in
    front (stack_trace_print()).  Without explicit frames pyalloc prints the
    allocator entry point and the caller.  frames=() prints the kernel's
    "object allocation/free stack trace missing" line instead.
    """
    if track is None:
        return []
    caller, age, cpu, pid = track[:4]
    if len(track) > 4:
        frames = tuple(track[4])
    else:
        entry = "kmem_cache_alloc_noprof" if kind == "Allocated" else "kmem_cache_free"
        frames = (entry, caller)
    lines = [track_line(kind, caller, age, cpu, pid)]
    if frames:
        # a caller that already reads like %pS (or a file:line) is printed as given
        lines += [" " + (f if ("+" in f or ":" in f) else symbol_offset(f)) for f in frames]
    else:
        lines.append("object allocation/free stack trace missing")
    return lines


def tracking_lines(alloc_track, free_track) -> list[str]:
    """print_tracking(): the Allocated and Freed records (empty without STORE_USER).
    A track whose caller is empty or None was never set and is skipped, as the
    kernel skips a track with addr 0."""
    out = []
    for kind, track in (("Allocated", alloc_track), ("Freed", free_track)):
        if track is not None and track[0]:
            out += _track_lines(kind, track)
    return out


def slab_info_line(slab_addr: int, objects: int, inuse: int, slab_fp: int,
                   zone: int = 1, order: int = 0) -> str:
    """print_slab_info(): ``Slab 0x%p objects=%u used=%u fp=0x%p flags=%pGp``.
    ``slab_addr`` is the struct slab (see :func:`slab_struct_addr`)."""
    return "Slab 0x%s objects=%d used=%d fp=0x%s flags=%s" % (
        _p(slab_addr), objects, inuse, _p(slab_fp), slab_flags_text(zone, order))


def fix_line(cache: str, message: str) -> str:
    """slab_fix(): ``FIX <cache>: <message>``."""
    return "FIX %s: %s" % (cache, message)


def overwrite_line(what: str, start: int, end: int, offset: int, found: int, expected: int) -> str:
    """check_bytes_and_report(), 6.18: ``[%s overwritten] 0x%p-0x%p @offset=%tu.
    First byte 0x%x instead of 0x%x``.  ``end`` is the last damaged byte
    (inclusive), ``offset`` the first one's offset from the slab start.
    Pass it as ``first_line`` of :func:`object_report` with reason
    ``"Object corrupt"``."""
    return "[%s overwritten] 0x%s-0x%s @offset=%d. First byte 0x%x instead of 0x%x" % (
        what, _p(start), _p(end), offset, found, expected)


def restore_line(cache: str, what: str, start: int, end: int, value: int) -> str:
    """restore_bytes(): ``FIX <cache>: Restoring <what> 0x%p-0x%p=0x%x`` (end inclusive)."""
    return fix_line(cache, "Restoring %s 0x%s-0x%s=0x%x" % (what, _p(start), _p(end), value))


def _dump_stack_lines(cpu: int, pid: int, comm: str, frames: Iterable[str], letters: str,
                      rip: str | None = None) -> list[str]:
    """dump_stack_print_info() + the call trace, with the taint the report has set.
    ``rip`` inserts a ``RIP: 0010:`` line before the call trace (WARN / oops)."""
    lines = [cpu_line(cpu, pid, comm, taint_columns(letters) if letters else False)]
    if letters:
        lines.append("Tainted: " + ", ".join(
            "[%s]=%s" % (c, TAINT_NAMES.get(c, c)) for c in TAINT_LETTERS if c in letters))
    lines.append("Hardware name: " + HARDWARE_NAME)
    if rip is not None:
        lines.append("RIP: 0010:" + symbol_offset(rip))
    lines += ["Call Trace:", " <TASK>"]
    lines += [" " + symbol_offset(f) for f in frames]
    lines.append(" </TASK>")
    return lines


def warn_lines(function: str, *, comm: str, pid: int, cpu: int, letters: str,
               frames: Sequence[str], message: str | None = None) -> list[str]:
    """A WARN()/WARN_ON() splat in printk.warn_text()'s layout, with the taint
    as it stands when the WARN fires (``letters``).  WARN(cond, fmt) prints its
    message right after the cut line."""
    lines = ["------------[ cut here ]------------"]
    if message is not None:
        lines.append(message)
    lines.append("WARNING: CPU: %d PID: %d at %s %s"
                 % (cpu, pid, LOCATIONS.get(function, "mm/slub.c:1"), symbol_offset(function)))
    lines.append("Modules linked in:")
    lines += _dump_stack_lines(cpu, pid, comm, frames, letters, rip=function)
    lines.append("---[ end trace 0000000000000000 ]---")
    return lines


def _with(letters: str, *more: str) -> str:
    return "".join(c for c in TAINT_LETTERS if c in letters or c in "".join(more))


# Callers of object_err() / __slab_err() in the usual paths (innermost first).
OBJECT_ERR_FRAMES = ("free_to_partial_list", "__slab_free", "kmem_cache_free")
SLAB_ERR_FRAMES = ("free_to_partial_list", "__slab_free", "kmem_cache_free")
SHUTDOWN_FRAMES = ("__kmem_cache_shutdown", "kmem_cache_destroy")


# --------------------------------------------------------------------------
# Whole reports

def object_report(cache: str, reason: str, *, tainted, slab_addr: int, objects: int,
                  inuse: int, slab_fp: int, obj_addr: int, obj_offset: int, obj_fp: int,
                  sections: list[tuple[str, int, bytes]], alloc_track: tuple | None,
                  free_track: tuple | None, first_line: str | None, comm: str, pid: int,
                  cpu: int, zone: int = 1, order: int = 0,
                  frames: Sequence[str] | None = None, valid: bool = True) -> str:
    """object_err() (6.18): the whole report as one string, lines joined by "\\n"
    (no trailing newline).

    ``first_line`` (e.g. :func:`overwrite_line`) comes first, before the
    ``=====`` rule, as check_bytes_and_report() prints it.  ``sections`` are
    print_trailer()'s hex dumps in order: (label, address, bytes), e.g.
    ``[("Redzone  ", obj-8, rz), ("Object   ", obj, body), ("Redzone  ", ...),
    ("Padding  ", ...)]``; the caller picks them, as print_trailer() does from the
    cache flags.  ``alloc_track`` / ``free_track``: see :func:`tracking_lines`
    (None without SLAB_STORE_USER).  ``valid=False`` is object_err() on a
    pointer outside the slab: no trailer, ``Invalid pointer 0x%p`` instead.
    ``frames`` are the callers of object_err() for the WARN's call trace.
    """
    letters = _taint_letters(tainted)
    lines = [first_line] if first_line else []
    lines += bug_header(cache, reason, letters)
    if valid:
        lines += tracking_lines(alloc_track, free_track)
        lines.append(slab_info_line(slab_addr, objects, inuse, slab_fp, zone, order))
        lines.append("Object 0x%s @offset=%d fp=0x%s" % (_p(obj_addr), obj_offset, _p(obj_fp)))
        lines.append("")
        for label, addr, data in sections:
            lines += hex_dump_lines(label, addr, data)
    else:
        lines.append(slab_info_line(slab_addr, objects, inuse, slab_fp, zone, order))
        lines.append("Invalid pointer 0x%s" % _p(obj_addr))
    lines += warn_lines("object_err", comm=comm, pid=pid, cpu=cpu, letters=_with(letters, "B"),
                        frames=OBJECT_ERR_FRAMES if frames is None else frames)
    return "\n".join(lines)


def slab_err_report(cache: str, message: str, *, tainted, slab_addr: int, objects: int,
                    inuse: int, slab_fp: int, comm: str, pid: int, cpu: int, zone: int = 1,
                    order: int = 0, body: Sequence[str] = (),
                    frames: Sequence[str] | None = None) -> str:
    """slab_err() (6.18): the BUG header with ``message``, then __slab_err():
    print_slab_info() and WARN_ON(1).

    ``body`` goes between the header and the Slab line: list_slab_objects()
    prints its per-object lines (:func:`objects_remaining_lines`) there, with
    the message ``"Objects remaining on __kmem_cache_shutdown()"`` (6.18 no
    longer names the cache in it; see :func:`shutdown_report`).
    """
    letters = _taint_letters(tainted)
    lines = bug_header(cache, message, letters)
    lines += list(body)
    lines.append(slab_info_line(slab_addr, objects, inuse, slab_fp, zone, order))
    lines += warn_lines("__slab_err", comm=comm, pid=pid, cpu=cpu, letters=_with(letters, "B"),
                        frames=SLAB_ERR_FRAMES if frames is None else frames)
    return "\n".join(lines)


def objects_remaining_lines(slab_base: int, objects: Sequence) -> list[str]:
    """list_slab_objects(): for each object still allocated, in address order,
    ``Object 0x%p @offset=%tu`` (offset from the slab's first byte), then its
    tracking records.  ``objects`` holds addresses, or tuples
    (addr, alloc_track, free_track) for a STORE_USER cache."""
    lines = []
    for item in objects:
        if isinstance(item, int):
            addr, alloc_track, free_track = item, None, None
        else:
            addr, alloc_track, free_track = item
        lines.append("Object 0x%s @offset=%d" % (_p(addr), addr - slab_base))
        lines += tracking_lines(alloc_track, free_track)
    return lines


SHUTDOWN_MESSAGE = "Objects remaining on __kmem_cache_shutdown()"


def shutdown_report(cache: str, *, tainted, slab_addr: int, slab_base: int, objects: int,
                    inuse: int, slab_fp: int, live: Sequence, comm: str, pid: int, cpu: int,
                    zone: int = 1, order: int = 0) -> str:
    """One slab's report from __kmem_cache_shutdown() → free_partial() →
    list_slab_objects() (one per slab that still has objects)."""
    return slab_err_report(cache, SHUTDOWN_MESSAGE, tainted=tainted, slab_addr=slab_addr,
                           objects=objects, inuse=inuse, slab_fp=slab_fp, comm=comm, pid=pid,
                           cpu=cpu, zone=zone, order=order,
                           body=objects_remaining_lines(slab_base, live), frames=SHUTDOWN_FRAMES)


def destroy_warning(cache: str, caller: str, comm: str, pid: int, cpu: int,
                    tainted=True) -> str:
    """kmem_cache_destroy()'s ``WARN(err, "%s %s: Slab cache still has objects
    when called from %pS", __func__, s->name, _RET_IP_)``.  It follows the
    shutdown reports, which already set B and W: hence ``tainted=True``."""
    letters = _taint_letters(tainted)
    message = "kmem_cache_destroy %s: Slab cache still has objects when called from %s" % (
        cache, symbol_offset(caller))
    return "\n".join(warn_lines("kmem_cache_destroy", comm=comm, pid=pid, cpu=cpu,
                                letters=letters, frames=(caller,), message=message))


def duplicate_cache_lines(cache: str, caller: str, comm: str, pid: int, cpu: int,
                          tainted=False) -> list[str]:
    """What 6.18 logs when kmem_cache_create() names a cache whose sysfs directory exists.

    An unmergeable cache (slub_debug, SLAB_NO_MERGE, slab_nomerge) gets /sys/kernel/slab/<name>
    itself, not a unique id (mm/slub.c sysfs_slab_add(): "we can catch duplicate names
    easily"): kernfs refuses the second directory (fs/sysfs/dir.c sysfs_warn_dup(), a stack
    dump), lib/kobject.c kobject_add_internal() says why, and the cache is released and
    mm/slab_common.c __kmem_cache_create_args() warns with -EEXIST and another stack dump."""
    letters = _taint_letters(tainted)
    create = ["__kmem_cache_create_args", caller]
    add = ["kobject_add_internal", "kobject_init_and_add", "sysfs_slab_add", "do_kmem_cache_create"]
    lines = ["sysfs: cannot create duplicate filename '/kernel/slab/%s'" % cache.replace("/", "!")]
    lines += _dump_stack_lines(cpu, pid, comm, ["dump_stack_lvl", "sysfs_warn_dup", "kernfs_create_dir_ns",
                                                "sysfs_create_dir_ns", *add, *create], letters)
    lines.append("kobject: kobject_add_internal failed for %s with -EEXIST, don't try to register things "
                 "with the same name in the same directory." % cache.replace("/", "!"))
    lines.append("__kmem_cache_create_args(%s) failed with error -17" % cache)
    lines += _dump_stack_lines(cpu, pid, comm, ["dump_stack_lvl", *create], letters)
    return lines


# --------------------------------------------------------------------------
# Frees the slab allocator refuses

FREE_DOUBLE = "double free"            # no slub_debug: SLAB_FREELIST_HARDENED's BUG_ON
FREE_ALREADY_FREE = "Object already free"          # slub_debug F
FREE_INVALID_POINTER = "Invalid object pointer"    # slub_debug F
FREE_WRONG_CACHE = "Wrong slab cache"              # hardened or F: cache_from_obj()
FREE_NOT_SLAB = "not a slab page"                  # kmem_cache_free() of a non-slab address
FREE_NOT_KMALLOC = "Not a kmalloc allocation"      # kfree() of a non-slab, non-kmalloc page
FREE_OUTSIDE_SLAB = "Attempt to free object outside of slab"   # older kernels' slab_err


def free_error(cache: str, reason: str, addr: int, *, comm: str, pid: int, cpu: int,
               tainted=False, caller: str = "kfree", other_cache: str | None = None,
               slab: dict | None = None, pfn: int | None = None,
               alloc_track: tuple | None = None, free_track: tuple | None = None,
               sections: list | None = None, obj_offset: int = 0, obj_fp: int = 0) -> str:
    """The report for a free SLUB refuses, by ``reason`` (one of the FREE_* constants).

    ``slab`` (for the reports that print the Slab line) is a dict with
    ``slab_addr, objects, inuse, slab_fp`` and optionally ``zone, order``.

    * FREE_DOUBLE: without slub_debug only SLAB_FREELIST_HARDENED's
      ``BUG_ON(object == fp)`` in set_freepointer() sees a double free, and only
      of the object at the head of the freelist: ``kernel BUG at mm/slub.c:NNN!``
      and an invalid-opcode oops (no registers).  Any other double free goes
      unnoticed by the kernel; pyalloc's caller decides what to print then.
    * FREE_ALREADY_FREE (F): object_err(..., "Object already free") then
      ``FIX <cache>: Object at 0x%p not freed``.
    * FREE_INVALID_POINTER (F): slab_err(..., "Invalid object pointer 0x%p"), FIX as above.
    * FREE_WRONG_CACHE: cache_from_obj()'s ``WARN(..., "%s: Wrong slab cache. %s
      but object is from %s")`` (``cache`` is the cache passed to
      kmem_cache_free(), ``other_cache`` the object's), then the object's
      tracking records if its cache stores them.  (The kernel then frees the
      object into its real cache; the simulator refuses the free instead.)
    * FREE_NOT_SLAB: kmem_cache_free() of an address with no slab:
      virt_to_cache()'s ``WARN_ONCE(!slab, "%s: Object is not a Slab page!")``.
    * FREE_NOT_KMALLOC: kfree() of a page that is neither slab nor large
      kmalloc: free_large_kmalloc()'s WARN_ON_ONCE, then dump_page() with
      ``Not a kmalloc allocation`` (needs ``pfn``).
    * FREE_OUTSIDE_SLAB: the pre-6.x slab_err ``Attempt to free object(0x%p)
      outside of slab`` (6.18's free_consistency_checks() no longer has it; kept
      for callers that want the older wording).
    """
    letters = _taint_letters(tainted)
    frames = (caller,)
    if reason == FREE_DOUBLE:
        lines = ["------------[ cut here ]------------",
                 "kernel BUG at %s!" % LOCATIONS["set_freepointer"],
                 "Oops: invalid opcode: 0000 [#1] SMP NOPTI"]
        lines += _dump_stack_lines(cpu, pid, comm, frames, letters, rip="kmem_cache_free")
        lines += ["Modules linked in:", "---[ end trace 0000000000000000 ]---"]
        return "\n".join(lines)
    if reason in (FREE_ALREADY_FREE, FREE_INVALID_POINTER, FREE_OUTSIDE_SLAB):
        if slab is None:
            raise ValueError("free_error(%r) needs slab=" % reason)
        info = dict(slab_addr=slab["slab_addr"], objects=slab["objects"], inuse=slab["inuse"],
                    slab_fp=slab["slab_fp"], zone=slab.get("zone", 1), order=slab.get("order", 0))
        if reason == FREE_ALREADY_FREE:
            text = object_report(cache, FREE_ALREADY_FREE, tainted=tainted, obj_addr=addr,
                                 obj_offset=obj_offset, obj_fp=obj_fp, sections=sections or [],
                                 alloc_track=alloc_track, free_track=free_track,
                                 first_line=None, comm=comm, pid=pid, cpu=cpu,
                                 frames=("free_to_partial_list", "__slab_free", caller), **info)
        else:
            message = ("Invalid object pointer 0x%s" % _p(addr) if reason == FREE_INVALID_POINTER
                       else "Attempt to free object(0x%s) outside of slab" % _p(addr))
            text = slab_err_report(cache, message, tainted=tainted, comm=comm, pid=pid, cpu=cpu,
                                   frames=("free_to_partial_list", "__slab_free", caller), **info)
        return text + "\n" + fix_line(cache, "Object at 0x%s not freed" % _p(addr))
    if reason == FREE_WRONG_CACHE:
        message = "cache_from_obj: Wrong slab cache. %s but object is from %s" % (
            cache, other_cache)
        lines = warn_lines("cache_from_obj", comm=comm, pid=pid, cpu=cpu, letters=letters,
                           frames=("kmem_cache_free",) if caller == "kmem_cache_free"
                           else ("kmem_cache_free", caller), message=message)
        lines += tracking_lines(alloc_track, free_track)
        return "\n".join(lines)
    if reason == FREE_NOT_SLAB:
        return "\n".join(warn_lines("virt_to_cache", comm=comm, pid=pid, cpu=cpu, letters=letters,
                                    frames=("kmem_cache_free", caller),
                                    message="virt_to_cache: Object is not a Slab page!"))
    if reason == FREE_NOT_KMALLOC:
        if pfn is None:
            raise ValueError("free_error(FREE_NOT_KMALLOC) needs pfn=")
        lines = warn_lines("free_large_kmalloc", comm=comm, pid=pid, cpu=cpu, letters=letters,
                           frames=("kfree", caller) if caller != "kfree" else ("kfree",))
        zone = 0 if pfn < (1 << 12) else 1 if pfn < (1 << 20) else 2
        lines += dump_page_lines(pfn, 1, slab_flags_text(zone), "", "Not a kmalloc allocation")
        return "\n".join(lines)
    raise ValueError("unknown free_error reason %r" % (reason,))
