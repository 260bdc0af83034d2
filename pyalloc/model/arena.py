"""Physical memory, page descriptors and zones: the model's twin of csrc/arena.c.

Physical memory is a sparse dict of 4 KiB bytearrays: a page that was never
written reads as zeros and costs nothing, as the C core's MAP_NORESERVE mmap.

Page descriptors (:class:`Page`) are created on first touch.  Memory that has
never been handed out is not described page by page at all: each zone keeps a
*pristine* range of whole order-10 blocks, counted as free on the Movable list
of order 10 but not linked into it (the kernel defers struct page
initialisation for the same reason).  Boot frees memory to the tail of the free
lists in ascending pfn order, so the pristine blocks always sit, virtually, at
the tail of the order-10 Movable list; a block is materialised (given a
descriptor and linked) only when the allocator reaches it.

Zones follow x86-64: DMA below 16 MiB, DMA32 below 4 GiB, Normal above;
Movable and Device exist but are always empty.  Every page is present and
managed (no memory is reserved for the kernel image or the memmap): a
simplification the /proc views inherit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._abi import (
    DMA32_END_PFN, DMA_END_PFN, MAX_NR_ZONES, MAX_PAGE_ORDER, MIGRATE_MOVABLE, NR_KMALLOC_TABLE,
    MIGRATE_TYPES, NR_PAGE_ORDERS, PAGE_SHIFT, PAGE_SIZE, PAGEBLOCK_ORDER,
    ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_MOVABLE, EFAULT, EINVAL, OK, VM_SYSCTL, VM_SYSCTLS,
    INT64_MAX, clamp64,  # noqa: F401  (re-exported: the model's modules take them from here)
)

NIL = -1

if TYPE_CHECKING:
    from .kthread import KThreads
    from .reclaim import Mm
    from .page_writeback import Wb
    from .trace import TraceBuffer

ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable", "Device")

# lowmem_reserve_ratio, per zone (mm/page_alloc.c)
LOWMEM_RESERVE_RATIO = (256, 256, 32, 0, 0)


INT64_MIN = -(1 << 63)


def c_int(x) -> int:
    """Convert an argument as cffi converts one for an int64_t parameter.

    cffi takes ints (bools too) and objects with __int__, refuses floats,
    strings and everything else with TypeError, and values outside int64 with
    OverflowError; the model must answer alike, so the shared layer sees the
    same exceptions from both backends.
    """
    if isinstance(x, float) or not (isinstance(x, int) or hasattr(type(x), "__int__")):
        raise TypeError("an integer is required")
    x = int(x)
    if not INT64_MIN <= x <= INT64_MAX:
        raise OverflowError("int too big to convert")
    return x


def c_ints(*xs) -> tuple:
    return tuple(c_int(x) for x in xs)


class Page:
    """One page descriptor (the part of struct page the allocator needs)."""

    __slots__ = ("flags", "order", "kind", "refcount", "next", "prev")

    def __init__(self) -> None:
        self.refcount = 0   # 1 on the head of a live allocation (no get_page yet)
        self.flags = 0      # PG_* bits
        self.order = 0      # order of the free block (PG_BUDDY) or allocation (PG_ALLOC)
        self.kind = 0       # KIND_* of a live allocation
        self.next = NIL     # free-list links, as pfns
        self.prev = NIL


class Zone:
    __slots__ = (
        "zid", "name", "start_pfn", "end_pfn", "spanned", "present", "managed",
        "pristine_next", "pristine_end",
        "head", "tail", "nr_free", "nr_free_mt_pages", "nr_free_pages",
        "nr_free_blocks_pages", "nr_reserved_highatomic", "wmark",
        "lowmem_reserve", "pageblocks", "pgalloc", "numa_hit", "nr_lru", "nr_dirty", "below_high",
        "nr_unevictable",
    )

    def __init__(self, zid: int, start: int, end: int) -> None:
        self.zid = zid
        self.name = ZONE_NAMES[zid]
        self.start_pfn = start if end > start else 0
        self.end_pfn = end if end > start else 0
        n = max(0, end - start)
        self.spanned = self.present = self.managed = n
        # free_area[order].free_list[mt] as head/tail pfns
        self.head = [[NIL] * MIGRATE_TYPES for _ in range(NR_PAGE_ORDERS)]
        self.tail = [[NIL] * MIGRATE_TYPES for _ in range(NR_PAGE_ORDERS)]
        self.nr_free = [[0] * MIGRATE_TYPES for _ in range(NR_PAGE_ORDERS)]
        self.nr_free_mt_pages = [0] * MIGRATE_TYPES   # free pages per migratetype
        self.nr_free_pages = 0
        self.nr_free_blocks_pages = 0                 # free pages in blocks >= pageblock_order
        self.nr_reserved_highatomic = 0
        self.wmark = [0, 0, 0, 0]                     # min, low, high, promo
        self.lowmem_reserve = [0] * MAX_NR_ZONES
        self.pageblocks = [0] * MIGRATE_TYPES
        self.pgalloc = 0
        self.numa_hit = 0
        self.nr_lru = [0, 0, 0, 0]                    # LRU pages here, by lru list
        self.nr_dirty = 0
        self.below_high = 0                           # ZONE_BELOW_HIGH
        self.nr_unevictable = 0                       # pages on LRU_UNEVICTABLE (mlock.py)
        # whole order-10 blocks never touched: [pristine_next, pristine_end)
        block = 1 << MAX_PAGE_ORDER
        self.pristine_next = self.start_pfn
        self.pristine_end = self.start_pfn + (n // block) * block


def _int_sqrt(x: int) -> int:
    r = 0
    bit = 1 << ((x.bit_length() + 1) & ~1)
    while bit > x:
        bit >>= 2
    while bit:
        if x >= r + bit:
            x -= r + bit
            r = (r >> 1) + bit
        else:
            r >>= 1
        bit >>= 2
    return r


def _mult_frac(x: int, n: int, d: int) -> int:
    q, r = divmod(x, d)
    return q * n + (r * n) // d


class Arena:
    """Machine state: memory, descriptors, zones, counters."""

    # the reclaim part, set by reclaim.init() (reclaim.py)
    lru: list[list[int]]                  # [lru list] -> [head pfn, tail pfn]
    mms: list[Mm]                         # mm id -> process memory or file page cache
    rmap: dict[int, tuple[int, int]]      # pfn -> (mm id, index)
    swap: dict[int, bytes]                # swap slot -> page contents
    swap_pages: int
    swap_next: int
    swap_free: list[int]                  # freed swap slots, reused first
    ctr: list[int]                        # the reclaim counters (_abi.CTR)
    cost: list[int]                       # the last call's cost (_abi.COST)
    alloc_seq: int
    kswapd_wanted: int
    kswapd_order: int
    kswapd_highest: int
    oom_mode: int
    kt: KThreads                          # kthread.KThreads: kswapd on the clock, PSI "some"
    rw_pin: "tuple[int, int, int, int, int] | None"   # (mm id, first, last, offset, end) while a read or write faults its pages in
    wb: "Wb"                              # the flusher (page_writeback.py), set by page_writeback.init()
    compact_defer: list[list[int]]        # [zid] -> [compact_considered, compact_defer_shift, compact_order_failed]
    kcompactd_wanted: int
    kcompactd_max_order: int
    kcompactd_highest: int
    lru_ext: dict[int, int]               # pfn -> PGX_* bits, absent = 0 (workingset.py)
    swap_shadow: dict[int, int]           # swap slot -> the shadow its page left
    pcp: list                             # [zid][cpu] -> pcp.Pcp (per_cpu_pages), set by pcp.init()

    def __init__(self, nr_pages: int, cpus: int, min_free_kbytes: int) -> None:
        self.nr_pages = nr_pages
        self.cpus = cpus
        self.mem: dict[int, bytearray] = {}
        self.pages: dict[int, Page] = {}
        # pageblock migratetypes: all Movable at boot, as memmap_init_zone sets them
        nr_blocks = (nr_pages + (1 << PAGEBLOCK_ORDER) - 1) >> PAGEBLOCK_ORDER
        self.pageblock_mt = bytearray([MIGRATE_MOVABLE]) * nr_blocks
        bounds = (
            (0, min(nr_pages, DMA_END_PFN)),
            (DMA_END_PFN, min(nr_pages, DMA32_END_PFN)),
            (DMA32_END_PFN, nr_pages),
            (0, 0),
            (0, 0),
        )
        self.zones = [Zone(z, s, e) for z, (s, e) in enumerate(bounds)]
        self.pgfree = 0
        self.ticks = 0            # operations done: drives the simulated clock
        self.cpu = 0              # the simulated current CPU
        self.seed = 0             # every random choice starts here (_abi.prandom_next)
        self.kconfig = 0          # KCONFIG_* bits in force (set by ModelCore)
        self.rand_state = 0       # the random stream's position
        # vm sysctls, in the order of _abi.VM_SYSCTLS
        self.vm_sysctl = [default for _, default, _, _ in VM_SYSCTLS]
        self.drop_caches_stfu = 0     # a write of 4 to drop_caches silenced its pr_info (sysctl.py)
        # slab state (slab.py)
        self.slab_merge = False
        self.caches: list = []            # by cache id; None marks a destroyed cache's slot
        self.cache_order: list[int] = []  # ids, oldest first (slabinfo prints newest first)
        # [type][kmalloc index] -> id; the kmalloc-rnd-NN copies after the four types
        self.kmalloc_caches = [[-1] * 14 for _ in range(NR_KMALLOC_TABLE)]
        self.random_kmalloc_seed = 0     # RANDOM_KMALLOC_CACHES (slab_random.py)
        self.slabs: dict = {}             # head pfn -> Slab
        self.slab_events: list = []
        self.nr_slab_reclaimable = 0      # pages
        self.nr_slab_unreclaimable = 0    # pages, kmalloc_large included
        self.gfp_fixups = 0
        self.last_cache = -1
        self.slab_fallback_gfp = 0
        # page tables (pgtable.py): init_mm's PGD is part of the kernel image
        self.pgd = [0] * 512
        self.nr_page_table_pages = 0      # PUD and PMD pages
        self.nr_pgtable_pages_all = 0
        self.vmalloc_pages = 0
        self.slowpath_entries = 0
        self.trace: TraceBuffer | None = None   # set while tracing (trace.py)
        for z in self.zones:
            if not z.managed:
                continue
            blocks = ((z.end_pfn - z.start_pfn) + PAGEBLOCK_ORDER_MASK) >> PAGEBLOCK_ORDER
            z.pageblocks[MIGRATE_MOVABLE] = blocks
            pristine = z.pristine_end - z.start_pfn
            z.nr_free[MAX_PAGE_ORDER][MIGRATE_MOVABLE] = pristine >> MAX_PAGE_ORDER
            z.nr_free_pages = pristine
            z.nr_free_mt_pages[MIGRATE_MOVABLE] = pristine
            z.nr_free_blocks_pages = pristine
        self.min_free_kbytes = min_free_kbytes if min_free_kbytes >= 0 else self.calculate_min_free_kbytes()
        self.setup_per_zone_wmarks()
        self.setup_per_zone_lowmem_reserve()
        from . import pcp
        pcp.init(self)

    # -- descriptors --------------------------------------------------------

    def page(self, pfn: int) -> Page:
        p = self.pages.get(pfn)
        if p is None:
            p = self.pages[pfn] = Page()
        return p

    def zone_of(self, pfn: int) -> Zone:
        if pfn < DMA_END_PFN:
            return self.zones[ZONE_DMA]
        if pfn < DMA32_END_PFN:
            return self.zones[ZONE_DMA32]
        return self.zones[ZONE_NORMAL]

    # -- watermarks (mm/page_alloc.c) ------------------------------------------

    def calculate_min_free_kbytes(self) -> int:
        # the watermarks are still 0 at first boot, so lowmem is all managed memory
        lowmem_kbytes = sum(z.managed for z in self.zones[:ZONE_MOVABLE]) * (PAGE_SIZE // 1024)
        return min(max(_int_sqrt(lowmem_kbytes * 16), 128), 262144)

    def setup_per_zone_wmarks(self) -> None:
        pages_min = self.min_free_kbytes >> (PAGE_SHIFT - 10)
        lowmem_pages = sum(z.managed for z in self.zones[:ZONE_MOVABLE])
        for z in self.zones:
            share = pages_min * z.managed // lowmem_pages
            wmin = share
            if z.zid == ZONE_MOVABLE:
                # not lowmem: a small fixed reserve, even for an empty zone
                wmin = min(max(z.managed // 1024, 32), 128)
            tmp = max(share >> 2, _mult_frac(z.managed, self.vm_sysctl[VM_SYSCTL["watermark_scale_factor"]], 10000))
            z.wmark = [wmin, wmin + tmp, wmin + 2 * tmp, wmin + 3 * tmp]

    def setup_per_zone_lowmem_reserve(self) -> None:
        # the 6.6/6.18 rule: an empty upper zone still gets the sum of the zones below it
        for i, z in enumerate(self.zones):
            ratio = LOWMEM_RESERVE_RATIO[i]
            managed_above = 0
            for j in range(i + 1, MAX_NR_ZONES):
                managed_above += self.zones[j].managed
                z.lowmem_reserve[j] = managed_above // ratio if (ratio and z.managed) else 0

    # -- memory ---------------------------------------------------------------

    def read(self, phys: int, n: int):
        if phys < 0 or n < 0 or phys + n > self.nr_pages << PAGE_SHIFT:
            return EFAULT
        out = bytearray()
        while n:
            pfn, off = phys >> PAGE_SHIFT, phys & (PAGE_SIZE - 1)
            chunk = min(n, PAGE_SIZE - off)
            buf = self.mem.get(pfn)
            out += buf[off:off + chunk] if buf is not None else bytes(chunk)
            phys += chunk
            n -= chunk
        return bytes(out)

    def write(self, phys: int, data) -> int:
        n = len(data)
        if phys < 0 or phys + n > self.nr_pages << PAGE_SHIFT:
            return EFAULT
        data = memoryview(data).cast("B")
        pos = 0
        while pos < n:
            pfn, off = phys >> PAGE_SHIFT, phys & (PAGE_SIZE - 1)
            chunk = min(n - pos, PAGE_SIZE - off)
            buf = self.mem.get(pfn)
            if buf is None:
                buf = self.mem[pfn] = bytearray(PAGE_SIZE)
            buf[off:off + chunk] = data[pos:pos + chunk]
            phys += chunk
            pos += chunk
        return OK

    def memset(self, phys: int, byte: int, n: int) -> int:
        if not 0 <= byte <= 255:
            return EINVAL
        if phys < 0 or n < 0 or phys + n > self.nr_pages << PAGE_SHIFT:
            return EFAULT
        while n:
            pfn, off = phys >> PAGE_SHIFT, phys & (PAGE_SIZE - 1)
            chunk = min(n, PAGE_SIZE - off)
            buf = self.mem.get(pfn)
            if buf is None:
                if byte == 0:   # untouched pages already read as zeros
                    phys += chunk
                    n -= chunk
                    continue
                buf = self.mem[pfn] = bytearray(PAGE_SIZE)
            buf[off:off + chunk] = bytes([byte]) * chunk
            phys += chunk
            n -= chunk
        return OK


PAGEBLOCK_ORDER_MASK = (1 << PAGEBLOCK_ORDER) - 1
