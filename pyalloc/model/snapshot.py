"""The core's state as canonical snapshot words: the model's twin of csrc/snapshot.c.

Both backends write and read the same *canonical* core section, so a machine
saved on one continues on the other.  Nothing in it is a backend's own id or
pointer: a slab is named by its head pfn, a list by its pfns in order, a
cache by the id both backends hand out alike.  The section is a sequence of
little-endian 64-bit words; NIL (no pfn, no slot, no cache) is 2**64-1; a
*blob* is a length word and the bytes, zero-padded to a whole word.

    machine   nr_pages cpus min_free_kbytes pgfree ticks slowpath_entries cpu slab_merge
              nr_slab_reclaimable nr_slab_unreclaimable gfp_fixups last_cache slab_fallback_gfp
              nr_page_table_pages nr_pgtable_pages_all vmalloc_pages swap_pages swap_next
              alloc_seq kswapd_wanted kswapd_order kswapd_highest oom_mode
    pgd       512 words
    pageblock blob: one migratetype byte per pageblock
    zones     5 x (start_pfn end_pfn managed pristine_next pristine_end head[11][5] tail[11][5]
              nr_free[11][5] nr_free_mt_pages[5] nr_free_pages nr_free_blocks_pages
              nr_reserved_highatomic wmark[4] lowmem_reserve[5] pageblocks[5] pgalloc numa_hit
              nr_lru[4] nr_dirty)
    reclaim   n + n counters, m + m costs (the tables of pyalloc._abi, in order; a reader takes
              the counters it knows and reads those the writer did not have as 0), lru 4 x
              (head tail)
    pages     n, n x (pfn next prev flags|order<<8|kind<<16|refcount<<24), ascending pfn: every
              descriptor that was ever touched (the pristine blocks have none)
    rmap      n, n x (pfn mm index): the mm page of each LRU page, ascending pfn
    caches    nr_ids, per id: alive, and if alive: flags object_size size align inuse offset
              red_left_pad order objects min_order min_objects min_partial refcount allocflags
              nr_slabs total_objects live, n + n partial-slab pfns (list order),
              cpus x (active slab pfn, cpu freelist slot)
    order     n, n cache ids, oldest first (merging prefers the oldest)
    kmalloc   4 x 14 cache ids
    slabs     n, n x (pfn cache order objects inuse freelist frozen on_partial, blob(chain: u16
              next-slot per slot, 0xffff ends), blob(state: a byte per slot)), ascending pfn
    mms       n, n x (alive is_file nr_pages size rss swapents nr_dirty, n + n entries (n =
              nr_pages), n + n x (page index, blob(4096 bytes)) of the file's disk)
    swap      n + n free slots (stack order, bottom first), n + n x (slot, blob(4096 bytes)) of the
              slots in use, ascending slot
    slab_random  random_kmalloc_seed, 15 x 14 cache ids (the kmalloc-rnd-NN rows), n caches (every
              live one with SLAB_FREELIST_HARDENED or _RANDOM, else none) x (id, random, n + n
              random sequence indices)
    percpu    n, n x (cache id, sheaf_capacity, cpus x (n + n cpu partial slab pfns, chain order),
              and with sheaf_capacity: cpus x (main: n + n objects; spare: NIL, or n + n objects),
              n + n x (n + n objects) the barn's full sheaves (list order), nr_empty), ascending
              id, for every cache with sheaves or a cpu partial slab; a sheaf's objects are phys
              addresses, bottom first.  cpu_partial and cpu_partial_slabs follow from kconfig
    pcp       ZONE_BELOW_HIGH zone mask, n, n x (zid cpu high free_count flags alloc_factor,
              NR_PCP_LISTS x (n + n pfns, head first)) for each per_cpu_pages not in its boot
              state, ascending (zid, cpu); batch, high_min and high_max follow from the zone.
              A pcp page's descriptor carries NIL links (its list is here).
    sysctl    vm_sysctl[] (the knobs of _abi.VM_SYSCTLS, in order), drop_caches_stfu (format 5)
    workingset  n + n x (pfn, PGX_* bits) of the LRU pages with bits, ascending pfn; n + n x (slot,
              shadow) of the swap slots with a shadow, ascending slot (a file page's shadow is its
              ENT_DISK entry's value; the clock and the LRU costs are counters)
    mlock     the unevictable LRU's head and tail, 5 x nr_unevictable (by zone).  A locked range
              is bit 2 of its anonymous mm entries (mlock.py)

Memory is not here: the snapshot file carries the touched pages apart
(:func:`touched_pages`), a page that reads as zeros is never written.
"""

from __future__ import annotations

import sys
from array import array

from .arena import NIL, Arena, Page
from .reclaim import Mm
from . import sheaf as msheaf, slab as mslab
from .slab import Cache, CpuSlab, Slab
from .._abi import CTR, NR_KTHREAD_INFO
from .._abi import (KCONFIG_SLAB_FREELIST_HARDENED, KCONFIG_SLAB_FREELIST_RANDOM, KIND_PCP, MAX_NR_ZONES,
                    MIGRATE_TYPES, NR_COSTS, NR_CTRS, NR_KMALLOC_TYPES, NR_PAGE_ORDERS, NR_PCP_LISTS, PAGE_SIZE,
                    PG_ALLOC, RANDOM_KMALLOC_CACHES_NR, VM_SYSCTLS)

VERSION = 1
MASK = (1 << 64) - 1
U64_NIL = MASK
SLOT_NIL16 = 0xffff
NR_KMALLOC_INDEX = 14

CACHE_FIELDS = ("flags", "object_size", "size", "align", "inuse", "offset", "red_left_pad", "order",
                "objects", "min_order", "min_objects", "min_partial", "refcount", "allocflags",
                "nr_slabs", "total_objects", "live")
ZONE_SCALARS = ("nr_free_pages", "nr_free_blocks_pages", "nr_reserved_highatomic")
MACHINE_SCALARS = ("nr_pages", "cpus", "min_free_kbytes", "pgfree", "ticks", "slowpath_entries", "cpu",
                   "slab_merge", "nr_slab_reclaimable", "nr_slab_unreclaimable", "gfp_fixups", "last_cache",
                   "slab_fallback_gfp", "nr_page_table_pages", "nr_pgtable_pages_all", "vmalloc_pages",
                   "swap_pages", "swap_next", "alloc_seq", "kswapd_wanted", "kswapd_order", "kswapd_highest",
                   "oom_mode", "seed", "kconfig", "rand_state")


class Corrupt(ValueError):
    """The words do not describe a machine this core can take (the caller names the file)."""


class Writer:
    def __init__(self) -> None:
        self.w = array("Q")

    def put(self, v: int) -> None:
        self.w.append(int(v) & MASK)

    def many(self, vs) -> None:
        self.w.extend(int(v) & MASK for v in vs)

    def blob(self, data) -> None:
        data = bytes(data)
        self.put(len(data))
        pad = -len(data) % 8
        self.w.frombytes(data + bytes(pad))

    def bytes(self) -> bytes:
        w = self.w
        if w.itemsize != 8:
            raise RuntimeError("array('Q') is not 64-bit here")
        if sys.byteorder != "little":
            w = array("Q", w)
            w.byteswap()
        return w.tobytes()


class Reader:
    def __init__(self, data: bytes) -> None:
        if len(data) % 8:
            raise Corrupt("the core section is not a whole number of words")
        self.w = array("Q")
        self.w.frombytes(data)
        if sys.byteorder != "little":
            self.w.byteswap()
        self.raw = memoryview(data)
        self.i = 0

    def get(self) -> int:
        if self.i >= len(self.w):
            raise Corrupt("the core section ends early")
        v = self.w[self.i]
        self.i += 1
        return v

    def signed(self) -> int:
        v = self.get()
        return v - (1 << 64) if v >> 63 else v

    def nil(self) -> int:
        v = self.get()
        return NIL if v == U64_NIL else v

    def count(self, limit: int, what: str) -> int:
        n = self.get()
        if n > limit:
            raise Corrupt(f"{what}: {n} is more than {limit}")
        return n

    def many(self, n: int) -> list:
        if self.i + n > len(self.w):
            raise Corrupt("the core section ends early")
        out = self.w[self.i:self.i + n].tolist()
        self.i += n
        return out

    def blob(self, limit: int) -> bytes:
        n = self.count(limit, "blob length")
        words = (n + 7) // 8
        if self.i + words > len(self.w):
            raise Corrupt("the core section ends early")
        out = bytes(self.raw[self.i * 8:self.i * 8 + n])
        self.i += words
        return out


def _counter_block(r: Reader, known: int) -> list:
    """A counted block of counters: the first *known*, 0 for those an older writer did not have."""
    vals = r.many(r.count(len(r.w) - r.i, "counter block"))
    return (vals + [0] * known)[:known]


# Formats 2 and 3 had these many machine scalars (no seed, kconfig, rand_state).
V3_MACHINE_WORDS = 23
# The counter and cost blocks of snapshot file format 2 had no count: these many words each.
V2_NR_CTRS, V2_NR_COSTS = 54, 13
_ZONE_WORDS = 5 + 3 * NR_PAGE_ORDERS * MIGRATE_TYPES + MIGRATE_TYPES + len(ZONE_SCALARS) + 4 + MAX_NR_ZONES \
    + MIGRATE_TYPES + 2 + 4 + 1


def upgrade_v2(data) -> bytes:
    """A CORE section of snapshot format 2 in today's layout: the counts put before its counter
    and cost blocks (Corrupt if it ends before them)."""
    i = V3_MACHINE_WORDS + 512                          # the pageblock blob's length word
    if (i + 1) * 8 > len(data):
        raise Corrupt("the core section ends early")
    i += 1 + (int.from_bytes(data[i * 8:(i + 1) * 8], "little") + 7) // 8 + MAX_NR_ZONES * _ZONE_WORDS
    if (i + V2_NR_CTRS + V2_NR_COSTS) * 8 > len(data):
        raise Corrupt("the core section ends early")
    head = bytes(data[:i * 8])
    ctrs = bytes(data[i * 8:(i + V2_NR_CTRS) * 8])
    rest = bytes(data[(i + V2_NR_CTRS) * 8:])
    return head + V2_NR_CTRS.to_bytes(8, "little") + ctrs + V2_NR_COSTS.to_bytes(8, "little") + rest


def caches_have_random(kconfig: int) -> bool:
    """Whether every live cache has random state in the slab_random section (else none has)."""
    return bool(kconfig & (KCONFIG_SLAB_FREELIST_HARDENED | KCONFIG_SLAB_FREELIST_RANDOM))


# the slab_random section of a machine without the random options: seed 0, no kmalloc-rnd
# copies, no cache with random state
EMPTY_SLAB_RANDOM = bytes(8) + b"\xff" * (8 * RANDOM_KMALLOC_CACHES_NR * NR_KMALLOC_INDEX) + bytes(8)


# the sysctl section of a machine that never wrote one: every knob at its default, drop_caches
# not silenced
EMPTY_SYSCTL = b"".join(default.to_bytes(8, "little") for _, default, _, _ in VM_SYSCTLS) + bytes(8)


def upgrade_v3(data) -> bytes:
    """A CORE section of snapshot format 3 in today's layout.  A format-3 machine had none of the
    per-CPU layers and no kernel options: it loads as seed 0 with every KCONFIG option off, which
    is exactly how it behaved."""
    i = V3_MACHINE_WORDS * 8
    if i > len(data):
        raise Corrupt("the core section ends early")
    # no per-cpu section record (no cpu partial chain, no sheaves), and an empty pcp section (no
    # zone below high, no pcp)
    return bytes(data[:i]) + bytes(3 * 8) + bytes(data[i:]) + EMPTY_SLAB_RANDOM + bytes(8) + bytes(2 * 8)


# the writeback section of a machine whose flusher never ran: five zero words, no file
EMPTY_WRITEBACK = bytes(6 * 8)
COMPACTION_WORDS = 3 * MAX_NR_ZONES + 3


def upgrade_v4(data) -> bytes:
    """A CORE section of snapshot format 4 in today's layout.  Format 5 appends the state of
    reclaim over time; a format-4 machine loads with that state empty (vm sysctls at their
    defaults, nothing dirty-timed, no shadow entries), which is how it behaved."""
    return bytes(data) + EMPTY_KTHREADS + EMPTY_WRITEBACK + EMPTY_COMPACTION + EMPTY_SYSCTL + EMPTY_WORKINGSET + EMPTY_MLOCK


# the kthreads section of a machine whose kswapd sleeps and whose PSI "some" is its "full"
EMPTY_KTHREADS = bytes(8 * NR_KTHREAD_INFO)
# the compaction section: no zone deferred, kcompactd asleep
EMPTY_COMPACTION = bytes(8 * COMPACTION_WORDS)
# the mlock section: nothing locked, the unevictable LRU empty
EMPTY_MLOCK = b"\xff" * 16 + bytes(8 * MAX_NR_ZONES)


EMPTY_WORKINGSET = bytes(2 * 8)     # no page with LRU bits, no swap shadow


def _nil(v: int) -> int:
    return U64_NIL if v == NIL else v


def _pfn(r: Reader, a: Arena) -> int:
    v = r.nil()
    if v != NIL and v >= a.nr_pages:
        raise Corrupt(f"pfn {v:#x} is outside memory")
    return v


# -- save ---------------------------------------------------------------------------------
# One function per section of the layout above, with the names csrc/snapshot.c uses (the
# pages section is *_descriptors: load_pages below writes memory, not descriptors).

def save_machine(a: Arena, w: Writer) -> None:
    for name in MACHINE_SCALARS:
        w.put(int(getattr(a, name)))


def save_pgd(a: Arena, w: Writer) -> None:
    w.many(a.pgd)


def save_pageblocks(a: Arena, w: Writer) -> None:
    w.blob(a.pageblock_mt)


def save_zone(z, w: Writer) -> None:
    w.many((z.start_pfn, z.end_pfn, z.managed, z.pristine_next, z.pristine_end))
    for table in (z.head, z.tail):
        for row in table:
            w.many(_nil(v) for v in row)
    for row in z.nr_free:
        w.many(row)
    w.many(z.nr_free_mt_pages)
    w.many(getattr(z, n) for n in ZONE_SCALARS)
    w.many(z.wmark)
    w.many(z.lowmem_reserve)
    w.many(z.pageblocks)
    w.many((z.pgalloc, z.numa_hit))
    w.many(z.nr_lru)
    w.put(z.nr_dirty)


def save_zones(a: Arena, w: Writer) -> None:
    for z in a.zones:
        save_zone(z, w)


def save_reclaim(a: Arena, w: Writer) -> None:
    """Reclaim's counters, the costs of the last allocating call, the LRU heads."""
    for block in (a.ctr, a.cost):
        w.put(len(block))
        w.many(block)
    for head, tail in a.lru[:4]:
        w.many((_nil(head), _nil(tail)))


def save_descriptors(a: Arena, w: Writer) -> None:
    pfns = sorted(a.pages)
    w.put(len(pfns))
    for pfn in pfns:
        p = a.pages[pfn]
        pcp_page = p.kind == KIND_PCP and not p.flags & PG_ALLOC
        w.many((pfn, U64_NIL if pcp_page else _nil(p.next), U64_NIL if pcp_page else _nil(p.prev), p.flags | p.order << 8 | p.kind << 16 | p.refcount << 24))


def save_rmap(a: Arena, w: Writer) -> None:
    w.put(len(a.rmap))
    for pfn in sorted(a.rmap):
        mid, idx = a.rmap[pfn]
        w.many((pfn, mid, idx))


def save_cache(s: Cache, w: Writer) -> None:
    w.many(getattr(s, f) for f in CACHE_FIELDS)
    w.put(len(s.partial))
    w.many(s.partial)
    for c in s.cpu:
        w.many((_nil(c.slab), _nil(c.freelist)))


def save_caches(a: Arena, w: Writer) -> None:
    w.put(len(a.caches))
    for s in a.caches:
        w.put(s is not None)
        if s is not None:
            save_cache(s, w)


def save_cache_order(a: Arena, w: Writer) -> None:
    w.put(len(a.cache_order))
    w.many(a.cache_order)


def save_kmalloc(a: Arena, w: Writer) -> None:
    for row in a.kmalloc_caches[:NR_KMALLOC_TYPES]:
        w.many(row)


def save_slab(sl: Slab, w: Writer) -> None:
    w.many((sl.pfn, sl.cache, sl.order, sl.objects, sl.inuse, _nil(sl.freelist), sl.frozen, sl.on_partial))
    chain = array("H", (SLOT_NIL16 if v == NIL else v for v in sl.next))
    w.blob(_le16(chain))
    w.blob(sl.state)


def save_slabs(a: Arena, w: Writer) -> None:
    w.put(len(a.slabs))
    for pfn in sorted(a.slabs):
        save_slab(a.slabs[pfn], w)


def save_mm(mm: Mm, w: Writer) -> None:
    w.many((mm.alive, mm.is_file, mm.nr_pages, mm.size, mm.rss, mm.swapents, mm.nr_dirty))
    # every entry of the mapping, holes included (munmap, MADV_DONTNEED and truncate leave zeros
    # below nr_pages); none past it
    n = mm.nr_pages
    w.put(n)
    w.many(mm.ent[:n])
    w.put(len(mm.disk))
    for idx in sorted(mm.disk):
        w.put(idx)
        w.blob(mm.disk[idx])


def save_mms(a: Arena, w: Writer) -> None:
    w.put(len(a.mms))
    for mm in a.mms:
        save_mm(mm, w)


def save_swap(a: Arena, w: Writer) -> None:
    w.put(len(a.swap_free))
    w.many(a.swap_free)
    w.put(len(a.swap))
    for slot in sorted(a.swap):
        w.put(slot)
        w.blob(a.swap[slot])


def save_slab_random(a: Arena, w: Writer) -> None:
    w.put(a.random_kmalloc_seed)
    for row in a.kmalloc_caches[NR_KMALLOC_TYPES:]:
        w.many(row)
    live = [s for s in a.caches if s is not None] if caches_have_random(a.kconfig) else []
    w.put(len(live))
    for s in live:
        seq = s.random_seq or ()
        w.many((s.id, s.random, len(seq)))
        w.many(seq)


def _save_sheaf(a: Arena, s: Cache, sheaf: list, w: Writer) -> None:
    w.put(len(sheaf))
    w.many(msheaf.obj_phys(a, s, o) for o in sheaf)


def save_percpu(a: Arena, w: Writer) -> None:
    """The cpu partial chains, sheaves and barns (slab.py, sheaf.py)."""
    listed = [s for s in a.caches if s is not None and (s.sheaf_capacity or any(c.partial for c in s.cpu))]
    w.put(len(listed))
    for s in listed:
        w.many((s.id, s.sheaf_capacity))
        for c in s.cpu:
            w.put(len(c.partial))
            w.many(c.partial)
        if not s.sheaf_capacity:
            continue
        for main, spare in s.pcs:
            _save_sheaf(a, s, main, w)
            if spare is None:
                w.put(U64_NIL)
            else:
                _save_sheaf(a, s, spare, w)
        w.put(len(s.barn_full))
        for sheaf in s.barn_full:
            _save_sheaf(a, s, sheaf, w)
        w.put(s.barn_empty)


def save_compaction(a: Arena, w: Writer) -> None:
    """Each zone's compaction deferral, then kcompactd's pending work."""
    for d in a.compact_defer:
        w.many(d)
    w.many((a.kcompactd_wanted, a.kcompactd_max_order, a.kcompactd_highest))


def save_pcp(a: Arena, w: Writer) -> None:
    w.put(sum(z.below_high << zid for zid, z in enumerate(a.zones)))
    recs = [(zid, cpu, p) for zid, row in enumerate(a.pcp) for cpu, p in enumerate(row) if not p.is_boot()]
    w.put(len(recs))
    for zid, cpu, p in recs:
        w.many((zid, cpu, p.high, p.free_count, p.flags, p.alloc_factor))
        for lst in p.lists:
            w.put(len(lst))
            w.many(lst)


def save_kthreads(a: Arena, w: Writer) -> None:
    w.many(a.kt.words())


def save_writeback(a: Arena, w: Writer) -> None:
    """The flusher (page_writeback.py), then (id, dirtied_when, wb_index) of each file whose
    two words are not both 0, by id."""
    from .page_writeback import Wb
    w.many(getattr(a.wb, f) for f in Wb.FIELDS)
    recs = [(mid, mm.dirtied_when, mm.wb_index) for mid, mm in enumerate(a.mms) if mm.dirtied_when or mm.wb_index]
    w.put(len(recs))
    for rec in recs:
        w.many(rec)


def save_sysctl(a: Arena, w: Writer) -> None:
    w.many(a.vm_sysctl)
    w.put(a.drop_caches_stfu)


def save_workingset(a: Arena, w: Writer) -> None:
    w.put(len(a.lru_ext))
    for pfn in sorted(a.lru_ext):
        w.many((pfn, a.lru_ext[pfn]))
    w.put(len(a.swap_shadow))
    for slot in sorted(a.swap_shadow):
        w.many((slot, a.swap_shadow[slot]))


def save_mlock(a: Arena, w: Writer) -> None:
    """The unevictable LRU (mlock.py): head, tail, then each zone's nr_unevictable."""
    w.many((_nil(a.lru[4][0]), _nil(a.lru[4][1])))
    w.many(z.nr_unevictable for z in a.zones)


SAVE_SECTIONS = (save_machine, save_pgd, save_pageblocks, save_zones, save_reclaim, save_descriptors, save_rmap,
                 save_caches, save_cache_order, save_kmalloc, save_slabs, save_mms, save_swap, save_slab_random,
                 save_percpu, save_pcp, save_kthreads, save_writeback, save_compaction, save_sysctl,
                 save_workingset, save_mlock)


def save(a: Arena) -> bytes:
    """The canonical core section of this machine."""
    if a.slab_events:
        raise Corrupt("slab events are pending")      # drained at the end of every call
    w = Writer()
    for section in SAVE_SECTIONS:
        section(a, w)
    return w.bytes()


def _le16(arr: array) -> bytes:
    if sys.byteorder != "little":
        arr = array("H", arr)
        arr.byteswap()
    return arr.tobytes()


def touched_pages(a: Arena, start: int = 0):
    """(pfn, 4096 bytes) of every page that does not read as zeros, ascending pfn."""
    zero = bytes(PAGE_SIZE)
    for pfn in sorted(a.mem):
        if pfn >= start and a.mem[pfn] != zero:
            yield pfn, bytes(a.mem[pfn])


# -- load ---------------------------------------------------------------------------------
# One function per section, named as in csrc/snapshot.c.  validate() has checked the
# words already; what is left here are the checks the model needs to build its objects.

def load_machine(a: Arena, r: Reader) -> None:
    vals = {name: r.get() for name in MACHINE_SCALARS}
    vals["last_cache"] = vals["last_cache"] - (1 << 64) if vals["last_cache"] >> 63 else vals["last_cache"]
    if (vals["nr_pages"], vals["cpus"]) != (a.nr_pages, a.cpus):
        raise Corrupt("nr_pages or cpus differ from the machine being loaded")
    if vals["swap_pages"] != a.swap_pages or vals["swap_next"] > a.swap_pages or vals["cpu"] >= a.cpus:
        raise Corrupt("swap or cpu values out of range")
    for name, v in vals.items():
        setattr(a, name, bool(v) if name == "slab_merge" else v)


def load_pgd(a: Arena, r: Reader) -> None:
    a.pgd = r.many(512)


def load_pageblocks(a: Arena, r: Reader) -> None:
    mt = r.blob(len(a.pageblock_mt))
    if len(mt) != len(a.pageblock_mt) or any(b >= MIGRATE_TYPES for b in mt):
        raise Corrupt("pageblock map")
    a.pageblock_mt = bytearray(mt)


def load_zone(a: Arena, z, r: Reader) -> None:
    geo = r.many(5)
    if geo[:3] != [z.start_pfn, z.end_pfn, z.managed]:
        raise Corrupt(f"zone {z.name} has another size")
    z.pristine_next, z.pristine_end = geo[3], geo[4]
    z.head = [[_pfn(r, a) for _ in range(MIGRATE_TYPES)] for _ in range(NR_PAGE_ORDERS)]
    z.tail = [[_pfn(r, a) for _ in range(MIGRATE_TYPES)] for _ in range(NR_PAGE_ORDERS)]
    z.nr_free = [r.many(MIGRATE_TYPES) for _ in range(NR_PAGE_ORDERS)]
    z.nr_free_mt_pages = r.many(MIGRATE_TYPES)
    for n in ZONE_SCALARS:
        setattr(z, n, r.get())
    z.wmark = r.many(4)
    z.lowmem_reserve = r.many(MAX_NR_ZONES)
    z.pageblocks = r.many(MIGRATE_TYPES)
    z.pgalloc, z.numa_hit = r.many(2)
    z.nr_lru = r.many(4)
    z.nr_dirty = r.get()


def load_zones(a: Arena, r: Reader) -> None:
    for z in a.zones:
        load_zone(a, z, r)


def load_reclaim(a: Arena, r: Reader) -> None:
    a.ctr = _counter_block(r, NR_CTRS)
    a.cost = _counter_block(r, NR_COSTS)
    a.lru = [[_pfn(r, a), _pfn(r, a)] for _ in range(4)] + [[NIL, NIL]]


def load_descriptors(a: Arena, r: Reader) -> None:
    a.pages = {}
    for _ in range(r.count(a.nr_pages, "pages")):
        pfn = _pfn(r, a)
        if pfn == NIL:
            raise Corrupt("a page descriptor without a pfn")
        p = Page()
        p.next, p.prev = _pfn(r, a), _pfn(r, a)
        packed = r.get()
        p.flags, p.order, p.kind, p.refcount = packed & 0xff, packed >> 8 & 0xff, packed >> 16 & 0xff, packed >> 24 & 0xff
        a.pages[pfn] = p


def load_rmap(a: Arena, r: Reader) -> None:
    a.rmap = {}
    for _ in range(r.count(a.nr_pages, "rmap")):
        pfn, mid, idx = r.many(3)
        if pfn >= a.nr_pages:
            raise Corrupt("rmap pfn")
        a.rmap[pfn] = (mid, idx)


def load_cache(a: Arena, cid: int, r: Reader) -> Cache:
    s = Cache()
    for f in CACHE_FIELDS:
        setattr(s, f, r.get())
    s.id = cid
    s.alive = True
    s.random, s.random_seq = 0, None       # the slab_random section comes last
    s.partial = [_pfn(r, a) for _ in range(r.count(a.nr_pages, "partial"))]
    s.cpu = []
    for _ in range(a.cpus):
        c = CpuSlab()
        c.slab, c.freelist = _pfn(r, a), r.nil()
        s.cpu.append(c)
    return s


def load_caches(a: Arena, r: Reader) -> None:
    nr_ids = r.count(1 << 16, "caches")
    a.caches = []
    for cid in range(nr_ids):
        a.caches.append(load_cache(a, cid, r) if r.get() else None)


def load_cache_order(a: Arena, r: Reader) -> None:
    a.cache_order = r.many(r.count(len(a.caches), "cache order"))
    if sorted(a.cache_order) != [i for i, s in enumerate(a.caches) if s is not None]:
        raise Corrupt("cache order does not list the live caches")


def load_kmalloc(a: Arena, r: Reader) -> None:
    a.kmalloc_caches = [[v - (1 << 64) if v >> 63 else v for v in r.many(NR_KMALLOC_INDEX)]
                        for _ in range(NR_KMALLOC_TYPES)] + a.kmalloc_caches[NR_KMALLOC_TYPES:]


def load_slab(a: Arena, r: Reader) -> Slab:
    pfn, cache, order, objects, inuse, freelist, frozen, on_partial = r.many(8)
    if pfn >= a.nr_pages or cache >= len(a.caches) or a.caches[cache] is None or objects > 32767 or order > 10:
        raise Corrupt("slab record")
    sl = Slab(pfn, cache, order, objects)
    sl.inuse = inuse
    sl.freelist = NIL if freelist == U64_NIL else freelist
    sl.frozen, sl.on_partial = bool(frozen), bool(on_partial)
    chain = r.blob(2 * objects)
    state = r.blob(objects)
    if len(chain) != 2 * objects or len(state) != objects:
        raise Corrupt("slab freelist")
    arr = array("H")
    arr.frombytes(chain)
    if sys.byteorder != "little":
        arr.byteswap()
    sl.next = [NIL if v == SLOT_NIL16 else v for v in arr]
    sl.state = bytearray(state)
    return sl


def load_slabs(a: Arena, r: Reader) -> None:
    a.slabs = {}
    for _ in range(r.count(a.nr_pages, "slabs")):
        sl = load_slab(a, r)
        a.slabs[sl.pfn] = sl


def load_mm(r: Reader) -> Mm:
    alive, is_file, nr_pages, size, rss, swapents, nr_dirty = r.many(7)
    mm = Mm(bool(is_file))
    mm.alive = bool(alive)
    mm.nr_pages, mm.size, mm.rss, mm.swapents, mm.nr_dirty = nr_pages, size, rss, swapents, nr_dirty
    mm.ent = r.many(r.count(1 << 30, "mm entries"))
    for _ in range(r.count(1 << 30, "disk pages")):
        idx = r.get()
        mm.disk[idx] = r.blob(PAGE_SIZE)
        if len(mm.disk[idx]) != PAGE_SIZE:
            raise Corrupt("disk page")
    return mm


def load_mms(a: Arena, r: Reader) -> None:
    a.mms = []
    for _ in range(r.count(1 << 24, "mms")):
        a.mms.append(load_mm(r))


def load_swap(a: Arena, r: Reader) -> None:
    a.swap_free = r.many(r.count(a.swap_pages, "free swap slots"))
    a.swap = {}
    for _ in range(r.count(a.swap_pages, "swap slots")):
        slot = r.get()
        data = r.blob(PAGE_SIZE)
        if slot >= a.swap_pages or len(data) != PAGE_SIZE:
            raise Corrupt("swap slot")
        a.swap[slot] = data


def load_slab_random(a: Arena, r: Reader) -> None:
    a.random_kmalloc_seed = r.get()
    a.kmalloc_caches[NR_KMALLOC_TYPES:] = [[v - (1 << 64) if v >> 63 else v for v in r.many(NR_KMALLOC_INDEX)]
                                           for _ in range(RANDOM_KMALLOC_CACHES_NR)]
    for _ in range(r.get()):
        s = a.caches[r.get()]
        s.random = r.get()
        n = r.get()
        s.random_seq = list(r.many(n)) if n else None


def _load_sheaf(a: Arena, s: Cache, r: Reader) -> list:
    out = []
    for phys in r.many(r.count(s.sheaf_capacity, "sheaf objects")):
        for order in {s.order, s.min_order}:
            head = (phys >> 12) & ~((1 << order) - 1)
            sl = a.slabs.get(head)
            if sl is not None and sl.cache == s.id and sl.order == order:
                out.append(head << 16 | (phys - (head << 12) - s.red_left_pad) // s.size)
                break
        else:
            raise Corrupt("sheaf object")
    return out


def load_percpu(a: Arena, r: Reader) -> None:
    for s in a.caches:
        if s is not None:
            s.sheaf_capacity, s.pcs, s.barn_full, s.barn_empty = 0, None, [], 0
            mslab.set_cpu_partial(a, s)
    for _ in range(r.count(len(a.caches), "per-cpu records")):
        cid, capacity = r.many(2)
        s = a.caches[cid]
        for c in s.cpu:
            c.partial = r.many(r.count(a.nr_pages, "cpu partial"))
            for k, pfn in enumerate(c.partial):
                a.slabs[pfn].slabs = len(c.partial) - k
        if not capacity:
            continue
        msheaf.pcs_init(a, s, capacity)
        assert s.pcs is not None
        for pcs in s.pcs:
            pcs[msheaf.MAIN] = _load_sheaf(a, s, r)
            if r.i < len(r.w) and r.w[r.i] == U64_NIL:
                r.get()
            else:
                pcs[msheaf.SPARE] = _load_sheaf(a, s, r)
        s.barn_full = [_load_sheaf(a, s, r) for _ in range(r.count(1 << 20, "barn"))]
        s.barn_empty = r.get()


def load_pcp(a: Arena, r: Reader) -> None:
    """The pcp lists (validated by snapshot_check); batch and the high limits recomputed."""
    from . import pcp
    mask = r.get()
    pcp.init(a)
    for zid, z in enumerate(a.zones):
        z.below_high = mask >> zid & 1
    for _ in range(r.count(MAX_NR_ZONES * a.cpus, "pcp")):
        zid, cpu, high, free_count, flags, alloc_factor = r.many(6)
        p = a.pcp[zid][cpu]
        p.high, p.free_count, p.flags, p.alloc_factor = high, free_count, flags, alloc_factor
        for i in range(NR_PCP_LISTS):
            lst = r.many(r.count(a.nr_pages, "pcp list"))
            p.lists[i].extend(lst)
            p.count += len(lst) << pcp.pindex_to_order(i)


def load_kthreads(a: Arena, r: Reader) -> None:
    """kswapd's place in balance_pgdat(), PSI "some" (all zero: a format-4 file, "some" is "full")."""
    w = r.many(NR_KTHREAD_INFO)
    a.kt.set_words(w)
    if not any(a.kt.psi_some):
        base = CTR["psi_total_us"]
        a.kt.psi_some = list(a.ctr[base:base + 6])


def load_writeback(a: Arena, r: Reader) -> None:
    """The flusher's state (validated by snapshot_check)."""
    from .page_writeback import Wb
    for f in Wb.FIELDS:
        setattr(a.wb, f, r.get())
    for _ in range(r.count(len(a.mms), "writeback files")):
        mid, when, index = r.many(3)
        a.mms[mid].dirtied_when, a.mms[mid].wb_index = when, index


def load_compaction(a: Arena, r: Reader) -> None:
    """(validated by snapshot_check)"""
    a.compact_defer = [list(r.many(3)) for _ in range(MAX_NR_ZONES)]
    a.kcompactd_wanted, a.kcompactd_max_order, a.kcompactd_highest = r.many(3)


def load_sysctl(a: Arena, r: Reader) -> None:
    """The vm sysctls (validated by snapshot_check)."""
    a.vm_sysctl = list(r.many(len(VM_SYSCTLS)))
    a.drop_caches_stfu = r.get()


def load_workingset(a: Arena, r: Reader) -> None:
    a.lru_ext = {}
    for _ in range(r.count(a.nr_pages, "LRU bits")):
        pfn, bits = r.many(2)
        a.lru_ext[pfn] = bits
    a.swap_shadow = {}
    for _ in range(r.count(a.swap_pages, "swap shadows")):
        slot, shadow = r.many(2)
        a.swap_shadow[slot] = shadow


def load_mlock(a: Arena, r: Reader) -> None:
    """The unevictable LRU (validated by snapshot_check; check() walks it)."""
    a.lru[4] = [_pfn(r, a), _pfn(r, a)]
    for z in a.zones:
        z.nr_unevictable = r.get()


LOAD_SECTIONS = (load_machine, load_pgd, load_pageblocks, load_zones, load_reclaim, load_descriptors, load_rmap,
                 load_caches, load_cache_order, load_kmalloc, load_slabs, load_mms, load_swap, load_slab_random,
                 load_percpu, load_pcp, load_kthreads, load_writeback, load_compaction, load_sysctl,
                 load_workingset, load_mlock)


def load(a: Arena, data: bytes) -> None:
    """Make a freshly booted arena (same nr_pages, cpus and swap, nothing allocated) the saved one.

    Raises Corrupt, leaving *a* half-made: the caller throws it away."""
    from .snapshot_check import validate     # the format's rules, shared with the C path
    validate(data, a.nr_pages, a.cpus, a.swap_pages)
    r = Reader(data)
    for section in LOAD_SECTIONS:
        section(a, r)
    if r.i != len(r.w):
        raise Corrupt("words left over after the core section")


def load_pages(a: Arena, pages) -> None:
    """Write saved pages (pfn, 4096 bytes) back into memory."""
    for pfn, data in pages:
        a.mem[pfn] = bytearray(data)
