"""The CORE section of a snapshot file, checked word by word before either backend sees it.

A snapshot file is user input: its CORE words are treated as the kernel treats
user memory.  :func:`validate` reads the whole section (layout: the docstring
of pyalloc/model/snapshot.py) and refuses, with one message for both backends,
any word outside what a running machine can hold: cache geometry that
kmem_cache_create could not have produced, counts beyond their arrays, orders
above MAX_PAGE_ORDER, pfns outside memory, slots outside their slab, unknown
descriptor kinds, looping or crossed lists, swap slots used twice.  Only then
does a backend load the words (each loader still checks what it indexes with,
so the C core is safe on its own), and then the loaded core's structural
check() runs; only findings about memory contents that a program may damage at
run time (page tables scribbled through the direct map, slub_debug object
bytes) are data that loads.

The rules here are the format's, not a backend's: both backends must refuse
exactly the files refused here (fuzz/fuzz_snapshot.py compares them).
"""

from __future__ import annotations

from typing import NoReturn

from . import slab as mslab
from .workingset import shadow_valid
from .snapshot import (
    CACHE_FIELDS,
    MACHINE_SCALARS,
    NR_KMALLOC_INDEX,
    SLOT_NIL16,
    U64_NIL,
    Corrupt,
    Reader,
    caches_have_random,
)
from .._abi import KTHREAD_INFO, NR_KTHREAD_INFO
from .._abi import (
    VM_SYSCTLS,
    DMA32_END_PFN,
    DMA_END_PFN,
    KCONFIG_MASK,
    KCONFIG_RANDOM_KMALLOC_CACHES,
    KCONFIG_SLAB_FREELIST_HARDENED,
    KCONFIG_SLAB_FREELIST_RANDOM,
    KIND_ANON,
    KIND_FILE,
    KIND_PGTABLE,
    KIND_SLAB,
    KCONFIG_SLUB_CPU_PARTIAL,
    KMALLOC_MAX_SIZE,
    OBJ_SHEAF,
    SHEAF_CAPACITY_MAX,
    MAX_NR_ZONES,
    MAX_PAGE_ORDER,
    MAX_SEED,
    MIGRATE_TYPES,
    NR_KMALLOC_TABLE,
    NR_KMALLOC_TYPES,
    NR_PAGE_ORDERS,
    OBJECT_POISON,
    PAGE_SIZE,
    PAGEBLOCK_ORDER,
    PG_ALLOC,
    PG_BUDDY,
    PG_LRU,
    PGX_WORKINGSET,
    PGX_YOUNG,
    KIND_PCP,
    NR_LOWORDER_PCP_LISTS,
    NR_PCP_LISTS,
    PCP_BATCH_SCALE_MAX,
    PCP_THP_ORDER,
    PCPF_FREE_HIGH_BATCH,
    PCPF_PREV_FREE_HIGH_ORDER,
)

__all__ = ["Corrupt", "validate"]

MAX_KIND = 8                # KIND_PCP: a free page on a per-cpu page list
OBJ_STATES = frozenset((0, 1, 2, 4, 5))   # never used, live, freed, held by a sheaf, pinned by a vmalloc area
from .._abi import ENT_NONE, ENT_PRESENT, ENT_SWAP, ENT_DISK, ENT_DIRTY, ENT_MLOCKED  # noqa: F401,E402
MAX_MM_PAGES = 1 << 30
MAX_CACHES = 1 << 16
MAX_MMS = 1 << 24
BIG = 1 << 62                # a counter this large cannot come from a run (and 64-bit wrap-around differs)
# scalars a running machine bounds: name -> largest value (None: a counter, below BIG)
_SCALAR_LIMITS = {"slab_merge": 1, "kswapd_wanted": 1, "kswapd_order": MAX_PAGE_ORDER,
                  "kswapd_highest": MAX_NR_ZONES - 1, "oom_mode": 1, "slab_fallback_gfp": (1 << 32) - 1,
                  "seed": MAX_SEED, "kconfig": KCONFIG_MASK}


def _fail(what: str) -> NoReturn:
    raise Corrupt(what)


def _zone_of(pfn: int) -> int:
    return 0 if pfn < DMA_END_PFN else 1 if pfn < DMA32_END_PFN else 2


class _Cache:
    __slots__ = ("fields", "partial", "cpu")
    fields: dict[str, int]
    partial: list[int]
    cpu: list[tuple[int, int]]          # (slab pfn, freelist slot) per cpu


def _expected_cache(flags: int, object_size: int, align: int, cpus: int):
    """What calculate_sizes() makes of these creation parameters."""
    s = mslab.Cache()
    s.flags = flags & ~OBJECT_POISON
    s.object_size = object_size
    s.align = align
    mslab.calculate_sizes(s, cpus)
    return s


def _check_cache(cid: int, f: dict, cpus: int) -> None:
    bad = f"cache {cid}"
    flags, osize, align = f["flags"], f["object_size"], f["align"]
    if flags & ~(0x3fff | OBJECT_POISON) or bool(flags & OBJECT_POISON) != bool(flags & mslab.SLAB_POISON):
        _fail(f"{bad}: unknown flags {flags:#x}")
    if (flags & (mslab.SLAB_CACHE_DMA | mslab.SLAB_CACHE_DMA32)) == mslab.SLAB_CACHE_DMA | mslab.SLAB_CACHE_DMA32:
        _fail(f"{bad}: both DMA zones")
    if not 1 <= osize <= KMALLOC_MAX_SIZE:
        _fail(f"{bad}: object size {osize} out of range")
    if not 8 <= align <= KMALLOC_MAX_SIZE or align & (align - 1):
        _fail(f"{bad}: alignment {align} is not a power of two from 8 to {KMALLOC_MAX_SIZE}")
    e = _expected_cache(flags, osize, align, cpus)
    if e.min_order > MAX_PAGE_ORDER:
        _fail(f"{bad}: no slab order holds an object of {e.size} bytes")
    for name in ("size", "inuse", "red_left_pad", "order", "objects", "min_order", "min_objects", "min_partial",
                 "allocflags"):
        if f[name] != getattr(e, name):
            _fail(f"{bad}: {name} is {f[name]}, its geometry makes {getattr(e, name)}")
    # a merge grows object_size (never size) after creation: the free pointer stays where the
    # smaller first user put it, inside the object, on a word
    mergeable = not flags & (mslab.SLAB_NEVER_MERGE | mslab.SLAB_KMALLOC)
    off = f["offset"]
    if off != e.offset and not (mergeable and off % 8 == 0 and off <= e.offset):
        _fail(f"{bad}: free pointer offset {off} is not where its geometry puts it")
    if not 1 <= f["refcount"] <= 0xffffffff:
        _fail(f"{bad}: refcount {f['refcount']}")
    if f["min_order"] > f["order"] or not 1 <= f["objects"] <= mslab.MAX_OBJS_PER_PAGE:
        _fail(f"{bad}: slab order {f['order']} holds {f['objects']} objects")


def _check_slab_random(r: Reader, kconfig: int, caches: list) -> None:
    """The slab_random section: only what a machine of this kconfig draws (a random with
    SLAB_FREELIST_HARDENED, a permutation of a cache's objects with SLAB_FREELIST_RANDOM when a
    slab holds two or more, the seed and copies with RANDOM_KMALLOC_CACHES), for every live cache."""
    rnd_kmalloc = kconfig & KCONFIG_RANDOM_KMALLOC_CACHES
    if r.get() and not rnd_kmalloc:
        _fail("random_kmalloc_seed without RANDOM_KMALLOC_CACHES")
    nr_ids = len(caches)
    for t in range(NR_KMALLOC_TYPES, NR_KMALLOC_TABLE):
        for i, v in enumerate(r.many(NR_KMALLOC_INDEX)):
            if v != U64_NIL and (i == 0 or v >= nr_ids or caches[v] is None or not rnd_kmalloc):
                _fail(f"kmalloc cache [{t}][{i}] names {v}, not a live kmalloc-rnd cache")
    live = [cid for cid, c in enumerate(caches) if c is not None]
    n = r.count(len(live), "caches with random state")
    if n != (len(live) if caches_have_random(kconfig) else 0):
        _fail(f"{n} caches with random state, not every live one")
    for cid in live[:n]:
        if r.get() != cid:
            _fail(f"random state of cache {cid} is missing or out of order")
        objects = caches[cid].fields["objects"]
        if r.get() and not kconfig & KCONFIG_SLAB_FREELIST_HARDENED:
            _fail(f"cache {cid}: a free pointer random without SLAB_FREELIST_HARDENED")
        want = objects if kconfig & KCONFIG_SLAB_FREELIST_RANDOM and objects >= 2 else 0
        nseq = r.count(want, "random sequence")
        if nseq != want or sorted(r.many(nseq)) != list(range(nseq)):
            _fail(f"cache {cid}: the random sequence is not a permutation of its {objects} objects")


def _check_compaction(r: Reader) -> None:
    """Deferral within the kernel's bounds (COMPACT_MAX_DEFER_SHIFT 6, compact_considered at most
    1 << shift, compact_order_failed at most NR_PAGE_ORDERS); kcompactd woken only with an order."""
    for zid in range(MAX_NR_ZONES):
        considered, shift, failed = r.many(3)
        if shift > 6 or considered > 1 << shift or failed > NR_PAGE_ORDERS:
            _fail(f"compaction deferral of zone {zid} out of range")
    wanted, order, highest = r.many(3)
    if wanted > 1 or order > MAX_PAGE_ORDER or highest >= MAX_NR_ZONES or (wanted and not order):
        _fail("kcompactd state out of range")


def _check_pcp(r: Reader, zones: list, pages: dict, cpus: int) -> None:
    """The pcp section: every listed pfn a free pcp block of the list's order in the pcp's zone,
    listed once, and every pcp descriptor listed."""
    mask = r.get()
    if mask >> MAX_NR_ZONES or any(mask >> zid & 1 and not zones[zid][2] for zid in range(MAX_NR_ZONES)):
        _fail(f"pcp: zone mask {mask:#x}")
    seen = set()
    last = (-1, -1)
    for _ in range(r.count(MAX_NR_ZONES * cpus, "pcp")):
        zid, cpu, high, free_count, flags, alloc_factor = r.many(6)
        if zid >= MAX_NR_ZONES or cpu >= cpus or (zid, cpu) <= last or not zones[zid][2]:
            _fail(f"pcp of zone {zid} cpu {cpu}: no such pcp, or out of order")
        last = (zid, cpu)
        if high >= 1 << 31 or free_count >= 1 << 31 or flags & ~(PCPF_PREV_FREE_HIGH_ORDER | PCPF_FREE_HIGH_BATCH) \
                or alloc_factor > PCP_BATCH_SCALE_MAX:
            _fail(f"pcp of zone {zid} cpu {cpu}: high, free_count, flags or alloc_factor out of range")
        start, end, _ = zones[zid]
        for i in range(NR_PCP_LISTS):
            order = PCP_THP_ORDER if i >= NR_LOWORDER_PCP_LISTS else i // 3
            for pfn in r.many(r.count(end - start, "pcp list")):
                desc = pages.get(pfn)
                if not start <= pfn < end or pfn in seen or desc is None or desc[2] != KIND_PCP \
                        or desc[0] & (PG_BUDDY | PG_ALLOC) or desc[1] != order:
                    _fail(f"pcp of zone {zid} cpu {cpu}: pfn {pfn:#x} is not a free order-{order} pcp block"
                          " listed once")
                seen.add(pfn)
    if any(d[2] == KIND_PCP and not d[0] & PG_ALLOC and pfn not in seen for pfn, d in pages.items()):
        _fail("a pcp page is on no pcp list")


def _check_kthreads(r: Reader, sc: dict, nr_pages: int) -> None:
    """kswapd's place in balance_pgdat() (csrc/snapshot.c load_kthreads())."""
    w = dict(zip(KTHREAD_INFO, r.many(NR_KTHREAD_INFO)))
    if any(w["kswapd_nr_" + n] > nr_pages for n in ("inactive_anon", "active_anon", "inactive_file", "active_file")):
        _fail("kthreads: kswapd's scan counts exceed memory")
    if w["kswapd_priority"] > 12 or w["kswapd_in_round"] > 1:
        _fail("kthreads: kswapd's priority or round flag is out of range")
    if w["kswapd_in_round"] and not w["kswapd_priority"]:
        _fail("kthreads: kswapd is in a round of no run")
    if w["kswapd_nap_until"] and (w["kswapd_priority"] or not sc["kswapd_wanted"]):
        _fail("kthreads: kswapd naps while working or asleep")
    if w["kswapd_priority"] and not sc["kswapd_wanted"]:
        _fail("kthreads: a sleeping kswapd is in balance_pgdat()")


def _check_writeback(r: Reader, ticks: int, nr_pages: int, file_mms: set, nmms: int) -> None:
    """The flusher: its clock not ahead of the machine's, its kupdate cutoff and last run not
    ahead of its clock, a start-all work of at most every page; files dirty-timed by ascending
    live file id, not in the future, writeback_index within MAX_MM_PAGES."""
    clock, last_old_flush, cutoff, start_all, kupdate = r.many(5)
    if clock > ticks or last_old_flush > clock or cutoff > clock or start_all > nr_pages or kupdate > 1:
        _fail("writeback: flusher state out of range")
    last = -1
    for _ in range(r.count(nmms, "writeback files")):
        mid, when, index = r.many(3)
        if mid <= last or mid not in file_mms or when > ticks or index > MAX_MM_PAGES:
            _fail(f"writeback: file {mid} out of order, not a live file, or out of range")
        last = mid


def _check_sysctl(r: Reader) -> None:
    """The sysctl section: every knob within the kernel's range, drop_caches_stfu 0 or 1."""
    for (name, _, lo, hi), v in zip(VM_SYSCTLS, r.many(len(VM_SYSCTLS))):
        if not lo <= v <= hi:
            _fail(f"sysctl vm.{name} = {v}: outside {lo}..{hi}")
    if r.get() > 1:
        _fail("sysctl: drop_caches_stfu is not 0 or 1")


def _check_mlock(r: Reader, zones: list, nr_pages: int) -> None:
    """The mlock section: the unevictable LRU's ends (both NIL or both pfns), each zone counting
    at most its managed pages; the list itself is walked by check() after loading."""
    ends = r.many(2)
    if any(v != U64_NIL and v >= nr_pages for v in ends) or (ends[0] == U64_NIL) != (ends[1] == U64_NIL):
        _fail("mlock: the unevictable LRU's ends")
    for zi, (_, _, managed) in enumerate(zones):
        if r.get() > managed:
            _fail(f"mlock: zone {zi} counts more unevictable pages than it manages")


def validate(data, nr_pages: int, cpus: int, swap_pages: int) -> None:
    """Raise Corrupt (its text names the first bad word) unless *data* is a CORE section a machine of
    nr_pages pages, cpus CPUs and swap_pages swap slots can take."""
    r = Reader(data)
    get, count, many = r.get, r.count, r.many

    def pfn_or_nil(what: str) -> int:
        v = get()
        if v != U64_NIL and v >= nr_pages:
            _fail(f"{what}: pfn {v:#x} is outside memory")
        return v

    def counter(v: int, what: str) -> int:
        if v >= BIG:
            _fail(f"{what}: {v} is out of range")
        return v

    sc = dict(zip(MACHINE_SCALARS, many(len(MACHINE_SCALARS))))
    if sc["nr_pages"] != nr_pages or sc["cpus"] != cpus:
        _fail("nr_pages or cpus differ from the machine being loaded")
    if sc["swap_pages"] != swap_pages or sc["swap_next"] > swap_pages or sc["cpu"] >= cpus:
        _fail("swap or cpu values out of range")
    for name, v in sc.items():
        if name in ("last_cache", "rand_state"):    # any 64-bit word
            continue
        limit = _SCALAR_LIMITS.get(name)
        if limit is not None and v > limit:
            _fail(f"{name}: {v} is more than {limit}")
        counter(v, name)
    for name in ("nr_page_table_pages", "nr_pgtable_pages_all", "vmalloc_pages", "nr_slab_reclaimable",
                 "nr_slab_unreclaimable"):
        if sc[name] > nr_pages:
            _fail(f"{name}: {sc[name]} is more than the machine's {nr_pages} pages")
    many(512)                       # the PGD: page-table contents, judged by pgt_check as data
    nblocks = (nr_pages + (1 << PAGEBLOCK_ORDER) - 1) >> PAGEBLOCK_ORDER
    mt = r.blob(nblocks)
    if len(mt) != nblocks or any(b >= MIGRATE_TYPES for b in mt):
        _fail("pageblock map")
    pristine = []
    zones = []
    prev_end = 0
    for zi in range(MAX_NR_ZONES):
        start, end, managed, pnext, pend = many(5)
        if not start <= end <= nr_pages or (end > start and start < prev_end) or managed > end - start:
            _fail(f"zone {zi}: bounds")
        if end > start:
            prev_end = end
        if pnext > pend or (pend > pnext and not (start <= pnext and pend <= end)) \
                or pnext % (1 << MAX_PAGE_ORDER) or pend % (1 << MAX_PAGE_ORDER):
            _fail(f"zone {zi}: untouched range {pnext:#x}-{pend:#x}")
        if pend > pnext:
            pristine.append((pnext, pend))
        zones.append((start, end, managed))
        links = [pfn_or_nil(f"zone {zi} free list") for _ in range(2 * NR_PAGE_ORDERS * MIGRATE_TYPES)]
        free = many(NR_PAGE_ORDERS * MIGRATE_TYPES + MIGRATE_TYPES + 3)
        rest = many(4 + MAX_NR_ZONES + MIGRATE_TYPES + 2 + 4 + 1)
        for v in free + rest:
            counter(v, f"zone {zi} counter")
        # check() looks only at zones with pages: an empty zone must hold nothing to look at
        if not managed and (any(v != U64_NIL for v in links) or any(free) or any(rest[-5:])):
            _fail(f"zone {zi} has no pages but free or LRU pages counted")
    for _ in range(2):                  # counters, then costs: each with its count (model/snapshot.py)
        for v in many(count(len(r.w) - r.i, "counter block")):
            counter(v, "event counter")
    for _ in range(8):
        pfn_or_nil("LRU list")

    # page descriptors
    pages = {}
    last = -1
    for _ in range(count(nr_pages, "pages")):
        pfn = get()
        if pfn >= nr_pages or pfn <= last:
            _fail(f"page descriptor for pfn {pfn:#x}: outside memory or out of order")
        last = pfn
        pfn_or_nil(f"pfn {pfn:#x} next")
        pfn_or_nil(f"pfn {pfn:#x} prev")
        packed = get()
        flags, order, kind, ref = packed & 0xff, packed >> 8 & 0xff, packed >> 16 & 0xff, packed >> 24
        if order > MAX_PAGE_ORDER or kind > MAX_KIND or ref > 1:
            _fail(f"pfn {pfn:#x}: descriptor {packed:#x} (order, kind or refcount out of range)")
        if flags & PG_ALLOC and pfn + (1 << order) > nr_pages:
            _fail(f"pfn {pfn:#x}: an order-{order} block runs past memory")
        pages[pfn] = (flags, order, kind)
    for lo, hi in pristine:
        if any(lo <= p < hi for p in pages):
            _fail(f"a touched descriptor lies in the untouched range {lo:#x}-{hi:#x}")
    rmap = {}
    last = -1
    for _ in range(count(nr_pages, "rmap")):
        pfn, mid, idx = many(3)
        if pfn >= nr_pages or pfn <= last:
            _fail(f"rmap pfn {pfn:#x}: outside memory or out of order")
        last = pfn
        desc = pages.get(pfn)
        if desc is None or not desc[0] & PG_ALLOC or desc[2] not in (KIND_ANON, KIND_FILE):
            _fail(f"rmap pfn {pfn:#x} is not a process or file page")
        if mid >= MAX_MMS or idx >= MAX_MM_PAGES:
            _fail(f"rmap pfn {pfn:#x}: owner {mid} index {idx} out of range")
        rmap[pfn] = (mid, idx)

    # caches
    nr_ids = count(MAX_CACHES, "caches")
    caches: list = []
    for cid in range(nr_ids):
        alive = get()
        if alive > 1:
            _fail(f"cache {cid}: alive word {alive}")
        if not alive:
            caches.append(None)
            continue
        c = _Cache()
        c.fields = dict(zip(CACHE_FIELDS, many(len(CACHE_FIELDS))))
        for name in ("nr_slabs", "total_objects", "live"):
            counter(c.fields[name], f"cache {cid} {name}")
        _check_cache(cid, c.fields, cpus)
        c.partial = [pfn_or_nil(f"cache {cid} partial list") for _ in range(count(nr_pages, "partial"))]
        c.cpu = []
        for _ in range(cpus):
            sp = pfn_or_nil(f"cache {cid} cpu slab")
            fl = get()
            if fl != U64_NIL and (fl > mslab.MAX_OBJS_PER_PAGE or sp == U64_NIL):
                _fail(f"cache {cid}: cpu freelist {fl:#x}")
            c.cpu.append((sp, fl))
        caches.append(c)
    cache_order = many(count(nr_ids, "cache order"))
    if sorted(cache_order) != [i for i, c in enumerate(caches) if c is not None]:
        _fail("cache order does not list the live caches")
    lc = sc["last_cache"]
    if lc != U64_NIL and lc >= nr_ids:
        _fail(f"last cache {lc} out of range")
    for t in range(NR_KMALLOC_TYPES):
        for i, v in enumerate(many(NR_KMALLOC_INDEX)):
            if v == U64_NIL and True:
                continue
            if i == 0 or v >= nr_ids or caches[v] is None:
                _fail(f"kmalloc cache [{t}][{i}] names {v}, not a live cache")

    # slabs
    slabs = {}
    slab_order: dict[int, int] = {}
    sheaf_held: dict[int, set] = {}     # pfn -> slots a sheaf holds
    last = -1
    for _ in range(count(nr_pages, "slabs")):
        pfn, cid, sorder, objects, inuse, freelist, frozen, on_partial = many(8)
        what = f"slab at pfn {pfn:#x}"
        if pfn >= nr_pages or pfn <= last:
            _fail(f"{what}: outside memory or out of order")
        last = pfn
        if cid >= nr_ids or caches[cid] is None:
            _fail(f"{what}: cache {cid} is not a live cache")
        f = caches[cid].fields
        if (sorder, objects) not in ((f["order"], f["objects"]), (f["min_order"], f["min_objects"])):
            _fail(f"{what}: order {sorder} with {objects} objects does not fit cache {cid}")
        desc = pages.get(pfn)
        if desc is None or desc[0] & (PG_ALLOC | PG_BUDDY) != PG_ALLOC or desc[1] != sorder or desc[2] != KIND_SLAB:
            _fail(f"{what}: the page is not an order-{sorder} slab page")
        if inuse > objects or frozen > 1 or on_partial > 1:
            _fail(f"{what}: inuse {inuse}, frozen {frozen}, on_partial {on_partial}")
        if freelist != U64_NIL and freelist >= objects:
            _fail(f"{what}: freelist slot {freelist} is outside the slab")
        chain = r.blob(2 * objects)
        state = r.blob(objects)
        if len(chain) != 2 * objects or len(state) != objects:
            _fail(f"{what}: freelist or state of the wrong length")
        nxt = [chain[2 * k] | chain[2 * k + 1] << 8 for k in range(objects)]
        if any(v != SLOT_NIL16 and v >= objects for v in nxt):
            _fail(f"{what}: a freelist link leaves the slab")
        if any(b not in OBJ_STATES for b in state):
            _fail(f"{what}: unknown object state")
        slabs[pfn] = (cid, objects, bool(on_partial), bool(frozen))
        slab_order[pfn] = sorder
        if OBJ_SHEAF in state:
            sheaf_held[pfn] = {k for k, b in enumerate(state) if b == OBJ_SHEAF}
    for p, (flags, _, kind) in pages.items():
        if flags & PG_ALLOC and kind == KIND_SLAB and p not in slabs:
            _fail(f"slab page at pfn {p:#x} has no slab record")
    for cid, c in enumerate(caches):
        if c is None:
            continue
        if len(set(c.partial)) != len(c.partial):
            _fail(f"cache {cid}: a slab is twice on the partial list")
        for p in c.partial:
            s = slabs.get(p)
            if s is None or s[0] != cid or not s[2]:
                _fail(f"cache {cid}: partial list names pfn {p:#x}, not one of its partial slabs")
        if sum(1 for s in slabs.values() if s[0] == cid and s[2]) != len(c.partial):
            _fail(f"cache {cid}: a slab marked partial is on no list")
        held = [sp for sp, _ in c.cpu if sp != U64_NIL]
        if len(set(held)) != len(held):
            _fail(f"cache {cid}: two cpus hold one slab")
        for sp, fl in c.cpu:
            if sp == U64_NIL:
                continue
            s = slabs.get(sp)
            if s is None or s[0] != cid or not s[3]:
                _fail(f"cache {cid}: cpu slab pfn {sp:#x} is not one of its frozen slabs")
            if fl != U64_NIL and fl >= s[1]:
                _fail(f"cache {cid}: cpu freelist slot {fl} is outside its slab")
        if sum(1 for s in slabs.values() if s[0] == cid and s[3]) != len(held):
            _fail(f"cache {cid}: a frozen slab is no cpu's")

    # processes and files
    nmms = count(MAX_MMS, "mms")
    swap_used = set()
    file_mms = set()
    for mid in range(nmms):
        alive, is_file, npages, size, rss, swapents, nr_dirty = many(7)
        if alive == 1 and is_file == 1:
            file_mms.add(mid)
        what = f"mm {mid}"
        if alive > 1 or is_file > 1 or npages > MAX_MM_PAGES or size > MAX_MM_PAGES * PAGE_SIZE:
            _fail(f"{what}: header out of range")
        for v in (rss, swapents, nr_dirty):
            if v > npages:
                _fail(f"{what}: counts beyond its {npages} pages")
        nent = count(npages, "mm entries")
        if nent != npages or (not alive and npages):
            _fail(f"{what}: {nent} entries for {npages} pages")
        for idx, e in enumerate(many(nent)):
            st, val = e & 3, e >> 3
            # bit 2 is a file page's dirty bit and an anonymous page's mlock (ENT_MLOCKED)
            if st == ENT_NONE:
                ok = e == 0 or (not is_file and e == ENT_MLOCKED)
            elif st == ENT_PRESENT:
                ok = val < nr_pages
            elif st == ENT_SWAP:
                ok = not is_file and val < sc["swap_next"] and val not in swap_used
                swap_used.add(val)
            else:
                ok = is_file and (e == ENT_DISK or (not e & ENT_DIRTY and shadow_valid(val)))
            if not ok:
                _fail(f"{what} page {idx}: bad entry {e:#x}")
        last = -1
        for _ in range(count(npages if is_file else 0, "disk pages")):
            idx = get()
            if idx >= npages or idx <= last:
                _fail(f"{what}: disk page {idx} outside the file or out of order")
            last = idx
            if len(r.blob(PAGE_SIZE)) != PAGE_SIZE:
                _fail(f"{what}: disk page {idx}")
    for pfn, (mid, _) in rmap.items():
        if mid >= nmms:
            _fail(f"rmap pfn {pfn:#x} names mm {mid}, beyond the {nmms} there are")

    # swap
    free = many(count(swap_pages, "free swap slots"))
    if any(v >= sc["swap_next"] for v in free) or len(set(free)) != len(free) or swap_used & set(free):
        _fail("free swap slots: out of range, repeated or in use")
    if len(free) + len(swap_used) != sc["swap_next"]:
        _fail(f"swap: {len(free)} free and {len(swap_used)} used slots, {sc['swap_next']} handed out")
    last = -1
    for _ in range(count(swap_pages, "swap slots")):
        slot = get()
        if slot <= last or slot not in swap_used:
            _fail(f"swap slot {slot}: not in use or out of order")
        last = slot
        if len(r.blob(PAGE_SIZE)) != PAGE_SIZE:
            _fail(f"swap slot {slot}")
    _check_slab_random(r, sc["kconfig"], caches)
    _validate_percpu(r, caches, slabs, slab_order, sheaf_held, sc["kconfig"], nr_pages, cpus)
    _check_pcp(r, zones, pages, cpus)
    _check_kthreads(r, sc, nr_pages)
    _check_writeback(r, sc["ticks"], nr_pages, file_mms, nmms)
    _check_compaction(r)
    _check_sysctl(r)
    _check_workingset(r, pages, swap_used, nr_pages, swap_pages)
    _check_mlock(r, zones, nr_pages)
    if r.i != len(r.w):
        _fail("words left over after the core section")


def _check_workingset(r: Reader, pages: dict, swap_used: set, nr_pages: int, swap_pages: int) -> None:
    """LRU bits only on LRU pages of processes and files, known bits, ascending pfn; swap shadows
    only on slots an mm entry names, well-formed, ascending slot."""
    last = -1
    for _ in range(r.count(nr_pages, "LRU bits")):
        pfn, bits = r.many(2)
        d = pages.get(pfn)
        if (pfn <= last or d is None or d[0] & (PG_LRU | PG_ALLOC) != PG_LRU | PG_ALLOC
                or d[2] not in (KIND_ANON, KIND_FILE) or not bits or bits & ~(PGX_YOUNG | PGX_WORKINGSET)):
            _fail(f"LRU bits {bits:#x} for pfn {pfn:#x}: not an LRU page, unknown bits, or out of order")
        last = pfn
    last = -1
    for _ in range(r.count(swap_pages, "swap shadows")):
        slot, shadow = r.many(2)
        if slot <= last or slot not in swap_used or not shadow_valid(shadow):
            _fail(f"swap slot {slot}: shadow {shadow:#x} on a slot not in use, malformed, or out of order")
        last = slot


def _validate_percpu(r: Reader, caches: list, slabs: dict, slab_order: dict, held: dict, kconfig: int,
                     nr_pages: int, cpus: int) -> None:
    """The per-cpu section: cpu partial chains of unfrozen slabs off the node list, each slab on
    one chain; sheaves of held objects (each once, every held object in one) within capacity."""
    get, count, many = r.get, r.count, r.many
    on_chain: set = set()
    last = -1
    for _ in range(count(len(caches), "per-cpu records")):
        cid, capacity = many(2)
        if cid <= last or cid >= len(caches) or caches[cid] is None:
            _fail(f"per-cpu record for cache {cid}: not a live cache, or out of order")
        last = cid
        f = caches[cid].fields
        debug = bool(f["flags"] & mslab.SLAB_DEBUG_FLAGS)
        if capacity > SHEAF_CAPACITY_MAX or (capacity and (debug or f["refcount"] != 1)):
            _fail(f"cache {cid}: sheaf_capacity {capacity} it cannot have")
        chains = 0
        for cpu in range(cpus):
            for pfn in many(count(nr_pages, "cpu partial")):
                s = slabs.get(pfn)
                if s is None or s[0] != cid or s[2] or s[3] or pfn in on_chain:
                    _fail(f"cache {cid}: cpu {cpu}'s partial chain names pfn {pfn:#x}, not one of its "
                          "unfrozen slabs off the node list (or twice)")
                on_chain.add(pfn)
                chains += 1
        if chains and (debug or not kconfig & KCONFIG_SLUB_CPU_PARTIAL):
            _fail(f"cache {cid}: a cpu partial chain without cpu partial lists")
        if not capacity:
            if not chains:
                _fail(f"per-cpu record for cache {cid} says nothing")
            continue
        seen: set = set()

        def sheaf(what: str, exact: bool) -> None:
            n = count(capacity, what)
            if exact and n != capacity:
                _fail(f"cache {cid}: a full barn sheaf holds {n} of {capacity}")
            for phys in many(n):
                for order in {f["order"], f["min_order"]}:
                    head = (phys >> 12) & ~((1 << order) - 1)
                    s = slabs.get(head)
                    off = phys - (head << 12) - f["red_left_pad"]
                    if s is not None and s[0] == cid and slab_order[head] == order and off >= 0:
                        slot = off // f["size"]
                        if off % f["size"] == 0 and slot in held.get(head, ()) and (head, slot) not in seen:
                            seen.add((head, slot))
                            break
                else:
                    _fail(f"cache {cid}: {what} holds {phys:#x}, not an object its slab marks held (or twice)")

        for cpu in range(cpus):
            sheaf(f"cpu {cpu} main sheaf", False)
            if r.i < len(r.w) and r.w[r.i] == U64_NIL:
                get()
            else:
                sheaf(f"cpu {cpu} spare sheaf", False)
        for _ in range(count(1 << 20, "barn")):
            sheaf("a barn sheaf", True)
        count(1 << 20, "empty barn sheaves")
        if len(seen) != sum(len(v) for p, v in held.items() if slabs[p][0] == cid):
            _fail(f"cache {cid}: an object its slab marks held is in no sheaf")
        for p in [p for p in held if slabs[p][0] == cid]:
            del held[p]
    if held:
        _fail("a slab marks objects held by sheaves of a cache without sheaves")
