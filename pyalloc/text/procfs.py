"""The kernel's /proc text views, built from a plain data snapshot.

Both backends hand the same snapshot dict to these functions (``Machine.snapshot()``:
nr_cpus, total_pages, min_free_kbytes, five zone dicts and the vm counters), so
every view is a pure function of the snapshot: same snapshot, same bytes.

The formats are Linux 6.18's, x86-64, one NUMA node, 4 KiB pages, checked line by
line against samples from real machines (``tests/fixtures/``):

* ``buddyinfo``, ``pagetypeinfo``, ``zoneinfo`` and ``vmstat`` follow
  ``mm/vmstat.c``; ``meminfo`` follows ``fs/proc/meminfo.c`` plus
  ``hugetlb_report_meminfo`` and x86's ``arch_report_meminfo``;
* :func:`show_mem` is ``__show_mem()`` / ``show_free_areas()`` of
  ``mm/show_mem.c``, the ``Mem-Info:`` block after a page allocation failure.

pyalloc models free memory, the buddy lists, watermarks, slab, page tables,
kernel stacks and vmalloc.  It does not model the page cache, anonymous memory,
LRU lists, swap traffic, per-cpu page lists, THP or hugetlb pools: every line
the kernel prints for those is printed here too, with the value 0.

Snapshot conventions:

* ``zone["wmark"]`` holds the raw ``_watermark[]`` (min, low, high, promo);
  the kernel's ``*_wmark_pages()`` add ``watermark_boost``, and so do we wherever
  the kernel prints or uses them (zoneinfo, show_mem, MemAvailable, reserves).
* A zone is populated when ``present > 0`` (the kernel's ``populated_zone``).

* ``slabinfo`` follows ``mm/slab_common.c`` (print_slabinfo_header(),
  cache_show()), version 2.1 (:func:`render_slabinfo`); the rows come from
  ``snap["slab_caches"]`` (a snapshot without that key has no caches).

* ``vmallocinfo`` follows ``vmalloc_info_show()`` / ``show_purge_info()`` of
  ``mm/vmalloc.c`` (:func:`render_vmallocinfo`); the areas come from
  ``snap["vmalloc"]`` (a snapshot without that key renders an empty file), whose
  ``used_pages`` is also meminfo's VmallocUsed.

To add a view, put its function in :data:`RENDERERS`.
"""

from __future__ import annotations

from typing import Callable

from ..errors import InvalidArgument
from ..errors import show
from .._abi import VM_SYSCTLS, MAX_NR_ZONES, NODE_STAT_COUNTERS, NR_PAGE_ORDERS, PAGE_SHIFT, PAGE_SIZE, PAGEBLOCK_ORDER, VM_EVENT_COUNTERS, ZONE_MOVABLE

ZONE_NAMES = ("DMA", "DMA32", "Normal", "Movable", "Device")
MIGRATETYPE_NAMES = ("Unmovable", "Movable", "Reclaimable", "HighAtomic", "Isolate")
# show_migration_types(): one letter per migratetype with a non-empty free
# list; CONFIG_CMA is off in the captured config, so Isolate is bit 4, 'I'.
MIGRATETYPE_LETTERS = "UMEHI"

VMALLOC_TOTAL_KB = ((32 << 40) - 1) >> 10   # 32 TiB vmalloc range minus one byte (34359738367)
HPAGE_PMD_KB = 2048
HPAGE_PUD_KB = 1 << 20
_SYSCTL_DEFAULT = {name: default for name, default, _, _ in VM_SYSCTLS}    # for a snapshot without "sysctl"
OVERCOMMIT_RATIO = 50               # /proc/sys/vm/overcommit_ratio default
MIN_PERCPU_PAGELIST_HIGH_FRACTION = 8

# --------------------------------------------------------------------------
# Counter names, in the order 6.18 prints them (include/linux/mmzone.h enums,
# vmstat_text[] in mm/vmstat.c, for the captured config).

ZONE_STAT_ITEMS = (
    "nr_free_pages", "nr_free_pages_blocks",
    "nr_zone_inactive_anon", "nr_zone_active_anon", "nr_zone_inactive_file",
    "nr_zone_active_file", "nr_zone_unevictable", "nr_zone_write_pending",
    "nr_mlock", "nr_zspages", "nr_free_cma",
)
NUMA_STAT_ITEMS = ("numa_hit", "numa_miss", "numa_foreign", "numa_interleave",
                   "numa_local", "numa_other")
NODE_STAT_ITEMS = (
    "nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file",
    "nr_unevictable", "nr_slab_reclaimable", "nr_slab_unreclaimable",
    "nr_isolated_anon", "nr_isolated_file",
    "workingset_nodes", "workingset_refault_anon", "workingset_refault_file",
    "workingset_activate_anon", "workingset_activate_file",
    "workingset_restore_anon", "workingset_restore_file", "workingset_nodereclaim",
    "nr_anon_pages", "nr_mapped", "nr_file_pages", "nr_dirty", "nr_writeback",
    "nr_shmem", "nr_shmem_hugepages", "nr_shmem_pmdmapped", "nr_file_hugepages",
    "nr_file_pmdmapped", "nr_anon_transparent_hugepages",
    "nr_vmscan_write", "nr_vmscan_immediate_reclaim", "nr_dirtied", "nr_written",
    "nr_throttled_written", "nr_kernel_misc_reclaimable",
    "nr_foll_pin_acquired", "nr_foll_pin_released",
    "nr_kernel_stack", "nr_page_table_pages", "nr_sec_page_table_pages",
    "nr_iommu_pages", "nr_swapcached",
    "pgpromote_success", "pgpromote_candidate", "pgpromote_candidate_nrl",
    "pgdemote_kswapd", "pgdemote_direct", "pgdemote_khugepaged", "pgdemote_proactive",
    "nr_hugetlb", "nr_balloon_pages", "nr_kernel_file_pages",
)
DIRTY_THRESHOLD_ITEMS = ("nr_dirty_threshold", "nr_dirty_background_threshold")
MEMMAP_STAT_ITEMS = ("nr_memmap_pages", "nr_memmap_boot_pages")
_PER_ZONE_EVENTS = tuple(f"{event}_{zone.lower()}" for event in ("pgalloc", "allocstall", "pgskip")
                         for zone in ZONE_NAMES)
VM_EVENT_ITEMS = (
    "pgpgin", "pgpgout", "pswpin", "pswpout",
    *_PER_ZONE_EVENTS,
    "pgfree", "pgactivate", "pgdeactivate", "pglazyfree", "pgfault", "pgmajfault",
    "pglazyfreed", "pgrefill", "pgreuse",
    "pgsteal_kswapd", "pgsteal_direct", "pgsteal_khugepaged", "pgsteal_proactive",
    "pgscan_kswapd", "pgscan_direct", "pgscan_khugepaged", "pgscan_proactive",
    "pgscan_direct_throttle", "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file",
    "zone_reclaim_success", "zone_reclaim_failed",
    "pginodesteal", "slabs_scanned", "kswapd_inodesteal",
    "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly", "pageoutrun",
    "pgrotated", "drop_pagecache", "drop_slab", "oom_kill",
    "numa_pte_updates", "numa_huge_pte_updates", "numa_hint_faults",
    "numa_hint_faults_local", "numa_pages_migrated",
    "pgmigrate_success", "pgmigrate_fail",
    "thp_migration_success", "thp_migration_fail", "thp_migration_split",
    "compact_migrate_scanned", "compact_free_scanned", "compact_isolated",
    "compact_stall", "compact_fail", "compact_success", "compact_daemon_wake",
    "compact_daemon_migrate_scanned", "compact_daemon_free_scanned",
    "htlb_buddy_alloc_success", "htlb_buddy_alloc_fail",
    "unevictable_pgs_culled", "unevictable_pgs_scanned", "unevictable_pgs_rescued",
    "unevictable_pgs_mlocked", "unevictable_pgs_munlocked", "unevictable_pgs_cleared",
    "unevictable_pgs_stranded",
    "thp_fault_alloc", "thp_fault_fallback", "thp_fault_fallback_charge",
    "thp_collapse_alloc", "thp_collapse_alloc_failed",
    "thp_file_alloc", "thp_file_fallback", "thp_file_fallback_charge", "thp_file_mapped",
    "thp_split_page", "thp_split_page_failed", "thp_deferred_split_page",
    "thp_underused_split_page", "thp_split_pmd",
    "thp_scan_exceed_none_pte", "thp_scan_exceed_swap_pte", "thp_scan_exceed_share_pte",
    "thp_split_pud", "thp_zero_page_alloc", "thp_zero_page_alloc_failed",
    "thp_swpout", "thp_swpout_fallback",
    "balloon_inflate", "balloon_deflate", "balloon_migrate",
    "swap_ra", "swap_ra_hit", "swpin_zero", "swpout_zero", "ksm_swpin_copy", "cow_ksm",
    "zswpin", "zswpout", "zswpwb",
    "direct_map_level2_splits", "direct_map_level3_splits",
    "direct_map_level2_collapses", "direct_map_level3_collapses",
)
# /proc/vmstat ends with the legacy "nr_unstable" line (always 0).
VMSTAT_ITEMS = (ZONE_STAT_ITEMS + NUMA_STAT_ITEMS + NODE_STAT_ITEMS + DIRTY_THRESHOLD_ITEMS
                + MEMMAP_STAT_ITEMS + VM_EVENT_ITEMS + ("nr_unstable",))


# --------------------------------------------------------------------------
# Derived values (each mirrors one kernel function; see its docstring).

def _populated(zone: dict) -> bool:
    return zone["present"] > 0


def _wmark(zone: dict, i: int) -> int:
    """wmark_pages(): _watermark[i] + watermark_boost (0 min, 1 low, 2 high, 3 promo)."""
    return zone["wmark"][i] + zone["boost"]


def _fls(x: int) -> int:
    return x.bit_length()


def _rounddown_pow_of_two(x: int) -> int:
    return 1 << (x.bit_length() - 1)


def zone_batchsize(zone: dict) -> int:
    """The pcp batch: ~0.1% of the zone or 1 MiB, /4, clamped to 2^n - 1, at least 1.

    mm/page_alloc.c zone_batchsize(), then zone_set_pageset_high_and_batch()'s max(1, ...).
    """
    batch = min(zone["managed"] >> 10, (1 << 20) // PAGE_SIZE) // 4
    batch = max(batch, 1)
    batch = _rounddown_pow_of_two(batch + batch // 2) - 1
    return max(1, batch)


def zone_highsize(zone: dict, batch: int, nr_cpus: int, high_fraction: int) -> int:
    """mm/page_alloc.c zone_highsize(): the low watermark (or managed/fraction) split
    across the node's CPUs (all CPUs are on node 0), at least batch*4."""
    if high_fraction:
        total = zone["managed"] // high_fraction
    else:
        total = _wmark(zone, 1)
    high = total // max(nr_cpus, 1)
    return max(high, batch << 2)


def calculate_normal_threshold(zone: dict, nr_cpus: int) -> int:
    """mm/vmstat.c: 2 * fls(cpus) * (1 + fls(managed in 128 MiB units)), at most 125."""
    mem = zone["managed"] >> (27 - PAGE_SHIFT)
    return min(125, 2 * _fls(nr_cpus) * (1 + _fls(mem)))


def totalreserve_pages(snap: dict) -> int:
    """calculate_totalreserve_pages(): per zone max(lowmem_reserve[i..]) + high
    watermark, capped at the zone's managed pages."""
    total = 0
    for i, zone in enumerate(snap["zones"]):
        reserve = max([0] + list(zone["lowmem_reserve"][i:])) + _wmark(zone, 2)
        total += min(reserve, zone["managed"])
    return total


def _total_free(snap: dict) -> int:
    return sum(z["nr_free_pages"] for z in snap["zones"])


def _totalram(snap: dict) -> int:
    return sum(z["managed"] for z in snap["zones"])


def si_mem_available(snap: dict) -> int:
    """mm/show_mem.c si_mem_available(): free - totalreserve + the part of the page
    cache and reclaimable slab above the low watermarks."""
    wmark_low = sum(_wmark(z, 1) for z in snap["zones"])
    available = _total_free(snap) - totalreserve_pages(snap)
    _, _, inactive_file, active_file = _lru(snap)
    pagecache = inactive_file + active_file
    available += pagecache - min(pagecache // 2, wmark_low)
    reclaimable = snap["vm"]["nr_slab_reclaimable"]    # + NR_KERNEL_MISC_RECLAIMABLE (0)
    available += reclaimable - min(reclaimable // 2, wmark_low)
    return max(available, 0)


def global_dirty_limits(snap: dict) -> tuple[int, int]:
    """mm/page-writeback.c global_dirty_limits() with the machine's sysctls
    (snap["sysctl"]; default dirty_ratio 20, dirty_background_ratio 10; no *_bytes): returns
    (nr_dirty_threshold, nr_dirty_background_threshold) in pages.

    global_dirtyable_memory() = free - min(free, totalreserve) + file LRU + 1.
    The ratios are kept per PAGE_SIZE for precision, as the kernel does.
    """
    free = _total_free(snap)
    _, _, inactive_file, active_file = _lru(snap)
    available = free - min(free, totalreserve_pages(snap)) + inactive_file + active_file + 1
    knobs = snap.get("sysctl") or {}
    ratio = knobs.get("dirty_ratio", _SYSCTL_DEFAULT["dirty_ratio"]) * PAGE_SIZE // 100
    bg_ratio = knobs.get("dirty_background_ratio", _SYSCTL_DEFAULT["dirty_background_ratio"]) * PAGE_SIZE // 100
    thresh = ratio * available // PAGE_SIZE
    bg_thresh = bg_ratio * available // PAGE_SIZE
    if bg_thresh >= thresh:
        bg_thresh = thresh // 2
    return thresh, bg_thresh


def direct_map_kb(snap: dict) -> tuple[int, int, int]:
    """(DirectMap4k, DirectMap2M, DirectMap1G) in kB.

    Approximation: the kernel reports how the direct map was really built (the
    first 2 MiB and holes around firmware ranges use 4k pages).  pyalloc has one
    contiguous RAM range from physical 0, so it maps the whole GiBs with 1G pages,
    what remains with 2M pages and the last partial 2 MiB with 4k pages.
    """
    total_kb = snap["total_pages"] << (PAGE_SHIFT - 10)
    gb = total_kb // HPAGE_PUD_KB * HPAGE_PUD_KB
    mb2 = (total_kb - gb) // HPAGE_PMD_KB * HPAGE_PMD_KB
    return total_kb - gb - mb2, mb2, gb


def gfp_zone(gfp_mask: int) -> int:
    """include/linux/gfp.h gfp_zone() for x86-64 (no HIGHMEM): the highest zone a
    mask may use, from its zone modifiers __GFP_DMA 0x1, __GFP_HIGHMEM 0x2,
    __GFP_DMA32 0x4, __GFP_MOVABLE 0x8 (stable low bits of every 6.x kernel)."""
    bits = gfp_mask & 0xF
    if bits & 0x1:
        return 0
    if bits & 0x4:
        return 1
    if bits & 0x8 and bits & 0x2:
        return ZONE_MOVABLE
    return 2


# --------------------------------------------------------------------------
# The views.

def render_buddyinfo(snap: dict) -> str:
    """/proc/buddyinfo: populated zones, "Node %d, zone %8s " + 11 x "%6lu " + "\\n"."""
    out = []
    for zone in snap["zones"]:
        if not _populated(zone):
            continue
        counts = "".join("%6d " % sum(per_type) for per_type in zone["free_area"])
        out.append("Node 0, zone %8s %s\n" % (zone["name"], counts))
    return "".join(out)


def render_pagetypeinfo(snap: dict) -> str:
    """/proc/pagetypeinfo: pagetypeinfo_showfree() then pagetypeinfo_showblockcount()
    (mixed block counts need PAGE_OWNER, which is off)."""
    out = ["Page block order: %d\n" % PAGEBLOCK_ORDER,
           "Pages per block:  %d\n" % (1 << PAGEBLOCK_ORDER),
           "\n",
           "%-43s " % "Free pages count per migrate type at order"]
    out.extend("%6d " % order for order in range(NR_PAGE_ORDERS))
    out.append("\n")
    zones = [z for z in snap["zones"] if _populated(z)]
    for zone in zones:
        for mt, mt_name in enumerate(MIGRATETYPE_NAMES):
            out.append("Node %4d, zone %8s, type %12s " % (0, zone["name"], mt_name))
            for order in range(NR_PAGE_ORDERS):
                count = zone["free_area"][order][mt]
                # The kernel stops counting a list at 100000 entries and prints ">".
                out.append(">%6d " % 100000 if count >= 100000 else "%6d " % count)
            out.append("\n")
    out.append("\n%-23s" % "Number of blocks type ")
    out.extend("%12s " % name for name in MIGRATETYPE_NAMES)
    out.append("\n")
    for zone in zones:
        out.append("Node %d, zone %8s " % (0, zone["name"]))
        out.extend("%12d " % n for n in zone["pageblocks"])
        out.append("\n")
    return "".join(out)


def _reclaim(snap: dict) -> dict:
    """The reclaim counters of the snapshot (all 0 for a snapshot made without them)."""
    return snap.get("reclaim") or _NO_RECLAIM


_NO_RECLAIM: dict = {}


def _lru(snap: dict) -> tuple:
    rc = _reclaim(snap)
    return tuple(rc.get(name, 0) for name in ("nr_inactive_anon", "nr_active_anon",
                                              "nr_inactive_file", "nr_active_file"))


def _unevictable(snap: dict) -> int:
    """NR_UNEVICTABLE; every such page is an mlocked anonymous one, so it is NR_MLOCK too."""
    return _reclaim(snap).get("nr_unevictable", 0)


def _node_unreclaimable(snap: dict) -> int:
    """pgdat->kswapd_failures >= MAX_RECLAIM_RETRIES: kswapd gave up on the node."""
    return int(_reclaim(snap).get("kswapd_failures", 0) >= 16)


def _node_stats(snap: dict) -> dict:
    """Node counters pyalloc has; every other node counter is 0."""
    vm = snap["vm"]
    rc = _reclaim(snap)
    ia, aa, if_, af = _lru(snap)
    return {
        # the node counters of the reclaim table (pyalloc._abi.COUNTER_TABLE), by their names
        **{name: rc.get(name, 0) for name in NODE_STAT_COUNTERS},
        "nr_slab_reclaimable": vm["nr_slab_reclaimable"],
        "nr_slab_unreclaimable": vm["nr_slab_unreclaimable"],
        # every unevictable page is an mlocked anonymous one (csrc/mlock.c)
        "nr_anon_pages": ia + aa + rc.get("nr_unevictable", 0), "nr_file_pages": if_ + af,
        "nr_kernel_stack": vm["nr_kernel_stack_kb"],       # NR_KERNEL_STACK_KB: in kB
        "nr_page_table_pages": vm["nr_page_table_pages"],
    }


def _zone_stats(zone: dict) -> dict:
    lru = zone.get("nr_lru") or (0, 0, 0, 0)
    return {"nr_free_pages": zone["nr_free_pages"],
            "nr_free_pages_blocks": zone["nr_free_pages_blocks"],
            "nr_zone_inactive_anon": lru[0], "nr_zone_active_anon": lru[1],
            "nr_zone_inactive_file": lru[2], "nr_zone_active_file": lru[3],
            "nr_zone_write_pending": zone.get("nr_dirty", 0),
            # NR_MLOCK equals the unevictable LRU page for page here (csrc/mlock.c)
            "nr_zone_unevictable": zone.get("nr_unevictable", 0), "nr_mlock": zone.get("nr_unevictable", 0)}


def _numa_stats(zone: dict) -> dict:
    # One node, no mempolicy: every allocation is a local hit.
    return {"numa_hit": zone["numa_hit"], "numa_local": zone["numa_hit"]}


def pageset(zone: dict, nr_cpus: int, cpu: int = 0) -> dict:
    """What zoneinfo prints for one CPU's per_cpu_pages: the core's own (zone["pagesets"]),
    or for a snapshot without them the boot state the kernel's formulas give (count 0,
    high 0 until the first refill)."""
    if "pagesets" in zone:
        return zone["pagesets"][cpu]
    batch = zone_batchsize(zone)
    high_min = zone_highsize(zone, batch, nr_cpus, 0)
    high_max = zone_highsize(zone, batch, nr_cpus, MIN_PERCPU_PAGELIST_HIGH_FRACTION)
    return {"count": 0, "high": 0, "batch": batch,
            "high_min": high_min, "high_max": high_max}


def render_zoneinfo(snap: dict) -> str:
    """/proc/zoneinfo: every zone (zoneinfo_show_print() in mm/vmstat.c, 6.18 layout)."""
    nr_cpus = snap["nr_cpus"]
    node = _node_stats(snap)
    first_populated = next((i for i, z in enumerate(snap["zones"]) if _populated(z)), None)
    out = []
    for idx, zone in enumerate(snap["zones"]):
        out.append("Node %d, zone %8s" % (0, zone["name"]))
        if idx == first_populated:
            out.append("\n  per-node stats")
            out.extend("\n      %-12s %d" % (name, node.get(name, 0)) for name in NODE_STAT_ITEMS)
        out.append(
            "\n  pages free     %d"
            "\n        boost    %d"
            "\n        min      %d"
            "\n        low      %d"
            "\n        high     %d"
            "\n        promo    %d"
            "\n        spanned  %d"
            "\n        present  %d"
            "\n        managed  %d"
            "\n        cma      %d"
            % (zone["nr_free_pages"], zone["boost"], _wmark(zone, 0), _wmark(zone, 1),
               _wmark(zone, 2), _wmark(zone, 3), zone["spanned"], zone["present"],
               zone["managed"], 0))
        out.append("\n        protection: (%s)" % ", ".join(str(r) for r in zone["lowmem_reserve"]))
        if not _populated(zone):
            out.append("\n")
            continue
        stats = _zone_stats(zone)
        out.extend("\n      %-12s %d" % (name, stats.get(name, 0)) for name in ZONE_STAT_ITEMS)
        numa = _numa_stats(zone)
        out.extend("\n      %-12s %d" % (name, numa.get(name, 0)) for name in NUMA_STAT_ITEMS)
        out.append("\n  pagesets")
        threshold = calculate_normal_threshold(zone, nr_cpus)
        for cpu in range(nr_cpus):
            pcp = pageset(zone, nr_cpus, cpu)
            out.append(
                "\n    cpu: %d"
                "\n              count:    %d"
                "\n              high:     %d"
                "\n              batch:    %d"
                "\n              high_min: %d"
                "\n              high_max: %d"
                "\n  vm stats threshold: %d"
                % (cpu, pcp["count"], pcp["high"], pcp["batch"], pcp["high_min"],
                   pcp["high_max"], threshold))
        out.append("\n  node_unreclaimable:  %d"
                   "\n  start_pfn:           %d\n" % (_node_unreclaimable(snap), zone["start_pfn"]))
    return "".join(out)


def _free_pcp(zone: dict) -> int:
    """show_free_areas(): the pages on every CPU's pcp lists of a zone."""
    return sum(p["count"] for p in zone.get("pagesets", ()))


def _local_pcp(zone: dict, snap: dict) -> int:
    """show_free_areas(): the pages on the current CPU's pcp lists of a zone."""
    sets = zone.get("pagesets")
    return sets[snap["vm"].get("cpu", 0)]["count"] if sets else 0


def _kb(pages: int) -> int:
    return pages << (PAGE_SHIFT - 10)


def vmalloc_used_pages(snap: dict) -> int:
    """vmalloc_nr_pages(): the pages vmalloc allocated for its areas (not vmap'ed or
    ioremap'ed ranges, not guard pages).  ``snap["vmalloc"]["used_pages"]`` when the
    snapshot has the vmalloc view, else the older ``snap["vm"]["vmalloc_pages"]``."""
    vmalloc = snap.get("vmalloc")
    if vmalloc and "used_pages" in vmalloc:
        return vmalloc["used_pages"]
    return snap["vm"].get("vmalloc_pages", 0)


def meminfo_values(snap: dict) -> dict:
    """The /proc/meminfo numbers in kB (HugePages_* are counts), keyed by label."""
    vm = snap["vm"]
    totalram = _totalram(snap)
    sreclaimable = vm["nr_slab_reclaimable"]
    sunreclaim = vm["nr_slab_unreclaimable"]
    d4k, d2m, d1g = direct_map_kb(snap)
    # vm_commit_limit(): (totalram - hugetlb) * overcommit_ratio / 100 + swap.
    commit_limit = totalram * OVERCOMMIT_RATIO // 100 + vm["swap_total_pages"]
    values = {label: 0 for label in MEMINFO_LABELS}
    ia, aa, if_, af = _lru(snap)
    values.update({
        "Cached": _kb(if_ + af),
        "Active": _kb(aa + af), "Inactive": _kb(ia + if_),
        "Active(anon)": _kb(aa), "Inactive(anon)": _kb(ia),
        "Active(file)": _kb(af), "Inactive(file)": _kb(if_),
        "Dirty": _kb(_reclaim(snap).get("nr_dirty", 0)),
        "AnonPages": _kb(ia + aa + _unevictable(snap)),
        "Unevictable": _kb(_unevictable(snap)), "Mlocked": _kb(_unevictable(snap)),
        "MemTotal": _kb(totalram),
        "MemFree": _kb(_total_free(snap)),
        "MemAvailable": _kb(si_mem_available(snap)),
        "SwapTotal": _kb(vm["swap_total_pages"]),
        "SwapFree": _kb(vm["swap_free_pages"]),
        "KReclaimable": _kb(sreclaimable),     # + NR_KERNEL_MISC_RECLAIMABLE (0)
        "Slab": _kb(sreclaimable + sunreclaim),
        "SReclaimable": _kb(sreclaimable),
        "SUnreclaim": _kb(sunreclaim),
        "KernelStack": vm["nr_kernel_stack_kb"],
        "PageTables": _kb(vm["nr_page_table_pages"]),
        "CommitLimit": _kb(commit_limit),
        "Committed_AS": _kb(vm.get("committed_as_pages", 0)),
        "VmallocTotal": VMALLOC_TOTAL_KB,
        "VmallocUsed": _kb(vmalloc_used_pages(snap)),
        "VmallocChunk": 0,
        "Hugepagesize": HPAGE_PMD_KB,
        "DirectMap4k": d4k,
        "DirectMap2M": d2m,
        "DirectMap1G": d1g,
    })
    return values


# Label order of 6.18's meminfo_proc_show() for the captured config (ZSWAP=y,
# THP=y, HUGETLB=y; no HIGHMEM, CMA, MEMORY_FAILURE, UNACCEPTED_MEMORY).
MEMINFO_LABELS = (
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached",
    "Active", "Inactive", "Active(anon)", "Inactive(anon)", "Active(file)",
    "Inactive(file)", "Unevictable", "Mlocked", "SwapTotal", "SwapFree",
    "Zswap", "Zswapped", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem",
    "KReclaimable", "Slab", "SReclaimable", "SUnreclaim", "KernelStack",
    "PageTables", "SecPageTables", "NFS_Unstable", "Bounce", "WritebackTmp",
    "CommitLimit", "Committed_AS", "VmallocTotal", "VmallocUsed", "VmallocChunk",
    "Percpu", "AnonHugePages", "ShmemHugePages", "ShmemPmdMapped",
    "FileHugePages", "FilePmdMapped", "Balloon",
    "HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp",
    "Hugepagesize", "Hugetlb", "DirectMap4k", "DirectMap2M", "DirectMap1G",
)
# hugetlb_report_meminfo() prints the pool counts without a unit, "%5lu" after
# a label padded with spaces to 19 columns.
_MEMINFO_COUNTS = ("HugePages_Total", "HugePages_Free", "HugePages_Rsvd", "HugePages_Surp")


def render_meminfo(snap: dict) -> str:
    """/proc/meminfo: "%-16s%8lu kB" per line (show_val_kb(); the lines with their
    own seq_printf use the same widths), HugePages_* as "%-19s%5lu"."""
    values = meminfo_values(snap)
    out = []
    for label in MEMINFO_LABELS:
        if label in _MEMINFO_COUNTS:
            out.append("%-19s%5d\n" % (label + ":", values[label]))
        else:
            out.append("%-16s%8d kB\n" % (label + ":", values[label]))
    return "".join(out)


def vmstat_values(snap: dict) -> dict:
    """Every /proc/vmstat counter, by name."""
    zones = snap["zones"]
    values = dict.fromkeys(VMSTAT_ITEMS, 0)
    values.update(_node_stats(snap))
    for zone in zones:
        for name, v in _zone_stats(zone).items():
            values[name] += v
        for name, v in _numa_stats(zone).items():
            values[name] += v
    for zone_name, zone in zip(ZONE_NAMES, zones):
        values["pgalloc_" + zone_name.lower()] = zone["pgalloc"]
    values["pgalloc_device"] = 0
    values["pgfree"] = snap["vm"]["pgfree"]
    rc = _reclaim(snap)
    for name in VM_EVENT_COUNTERS:
        values[name] = rc.get(name, 0)
    values["nr_dirty_threshold"], values["nr_dirty_background_threshold"] = global_dirty_limits(snap)
    return values


def render_vmstat(snap: dict) -> str:
    """/proc/vmstat: "%s %lu" per counter, in vmstat_text[] order."""
    values = vmstat_values(snap)
    return "".join("%s %d\n" % (name, values[name]) for name in VMSTAT_ITEMS)


# --------------------------------------------------------------------------
# /proc/slabinfo

SLABINFO_HEADER = (
    "slabinfo - version: 2.1\n"
    "# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab>"
    " : tunables <limit> <batchcount> <sharedfactor>"
    " : slabdata <active_slabs> <num_slabs> <sharedavail>\n"
)


def slabinfo_row(cache: dict) -> str:
    """One cache's line, cache_show() in mm/slab_common.c (6.18):

    ``"%-17s %6lu %6lu %6u %4u %4d"`` (name, active_objs, num_objs, s->size,
    objects per slab, pages per slab), ``" : tunables %4u %4u %4u"`` (SLUB has
    no tunables: 0 0 0), ``" : slabdata %6lu %6lu %6lu"`` (active_slabs,
    num_slabs, shared_avail = 0).  ``%-17s`` pads but never truncates: a longer
    name pushes the rest of the row to the right, as on a real machine.
    """
    return ("%-17s %6d %6d %6d %4d %4d : tunables %4d %4d %4d : slabdata %6d %6d %6d\n"
            % (cache["name"], cache["active_objs"], cache["num_objs"], cache["objsize"],
               cache["objperslab"], cache["pagesperslab"], 0, 0, 0,
               cache["active_slabs"], cache["num_slabs"], 0))


def render_slabinfo(snap: dict) -> str:
    """/proc/slabinfo: the two header lines, then one row per cache in the order
    of ``snap["slab_caches"]`` (the Machine lists them as the kernel walks
    slab_caches: newest first).  Merged aliases have no row of their own."""
    return SLABINFO_HEADER + "".join(slabinfo_row(c) for c in snap.get("slab_caches") or ())


# --------------------------------------------------------------------------
# /proc/vmallocinfo

# vmalloc_info_show() prints these words in this order, one per vm->flags bit
# (VM_IOREMAP, VM_SPARSE, VM_ALLOC, VM_MAP, VM_USERMAP, VM_DMA_COHERENT), then
# " vpages" when the area's pages array is itself vmalloc'ed.
VMALLOCINFO_FLAGS = ("ioremap", "sparse", "vmalloc", "vmap", "user", "dma-coherent", "vpages")


def _kptr(addr: int) -> str:
    """%pK / %pa as pyalloc prints them: the raw value, 16 hex digits (a real
    machine with kptr_restrict=0 hashes %pK, but keeps the width)."""
    return "%016x" % addr


def vmallocinfo_area(area: dict) -> str:
    """One vm_struct's line of vmalloc_info_show() (6.18 mm/vmalloc.c):

    ``"0x%pK-0x%pK %7ld"`` (addr, addr + size, size; size includes the guard
    page), then `` %pS`` caller (if any), `` pages=%d`` (if nr_pages),
    `` phys=%pa`` (if phys_addr), the flag words in :data:`VMALLOCINFO_FLAGS`
    order, show_numa_info()'s `` N%u=%u`` for each node with pages, ``\n``.
    """
    start, size = area["start"], area["size"]
    out = ["0x%s-0x%s %7d" % (_kptr(start), _kptr(start + size), size)]
    if area.get("caller"):
        out.append(" %s" % area["caller"])
    if area.get("nr_pages"):
        out.append(" pages=%d" % area["nr_pages"])
    if area.get("phys_addr"):
        out.append(" phys=0x%s" % _kptr(area["phys_addr"]))
    flags = tuple(area.get("flags") or ())
    unknown = [f for f in flags if f not in VMALLOCINFO_FLAGS]
    if unknown:
        raise InvalidArgument(f"unknown vmallocinfo flag(s) {show(unknown)}; known: "
                              f"{', '.join(VMALLOCINFO_FLAGS)}")
    out.extend(" " + word for word in VMALLOCINFO_FLAGS if word in flags)
    nodes = area.get("nodes") or {}
    out.extend(" N%d=%d" % (nid, nodes[nid]) for nid in sorted(nodes) if nodes[nid])
    out.append("\n")
    return "".join(out)


def vmallocinfo_unpurged(va: dict) -> str:
    """show_purge_info(): a lazily freed area not yet purged."""
    start, size = va["start"], va["size"]
    return "0x%s-0x%s %7d unpurged vm_area\n" % (_kptr(start), _kptr(start + size), size)


def render_vmallocinfo(snap: dict) -> str:
    """/proc/vmallocinfo: one line per busy area in the order of
    ``snap["vmalloc"]["areas"]``, then the lazy (unpurged) areas in the order of
    ``snap["vmalloc"]["unpurged"]``.  The order is the snapshot's: the kernel
    walks each vmap node's sorted busy list in turn (mm/vmalloc.c, vmalloc_info_show()), which is
    globally sorted only with a single vmap node."""
    vmalloc = snap.get("vmalloc")
    if not vmalloc:
        return ""
    return ("".join(vmallocinfo_area(a) for a in vmalloc.get("areas") or ())
            + "".join(vmallocinfo_unpurged(va) for va in vmalloc.get("unpurged") or ()))


_PSI_IDLE = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"


def render_pressure_memory(snap: dict) -> str:
    """/proc/pressure/memory: psi_show() of the memory resource (some, then full)."""
    return _reclaim(snap).get("pressure_memory") or _PSI_IDLE


def render_pressure_idle(snap: dict) -> str:
    """/proc/pressure/cpu and /proc/pressure/io: psi_show() of a resource nothing stalls on.  pyalloc
    simulates no run queue and no block IO wait, so these read as on an idle machine; the system-wide
    cpu file has a ``full`` line of zeros since 5.13 (kernel/sched/psi.c psi_show())."""
    return _PSI_IDLE


USER_HZ = 100


def render_stat(snap: dict) -> str:
    """/proc/stat of a machine whose CPUs did nothing but wait (fs/proc/stat.c show_stat()): the
    simulated time since boot, in USER_HZ ticks, all idle.  pyalloc simulates memory, not run
    queues; vmstat and top need the file to start, and then show memory that moves."""
    idle = snap.get("vm", {}).get("clock_ns", 0) // (1_000_000_000 // USER_HZ)
    zeros = " 0" * 10
    cpus = snap["nr_cpus"]
    lines = [f"cpu  0 0 0 {idle * cpus} 0 0 0 0 0 0"]
    lines += [f"cpu{i} 0 0 0 {idle} 0 0 0 0 0 0" for i in range(cpus)]
    lines += ["intr 0", "ctxt 0", "btime 0", "processes 1", "procs_running 1", "procs_blocked 0",
              "softirq 0" + zeros]
    return "\n".join(lines) + "\n"


# The readable vm sysctls (/proc/sys/vm/<name>, mode 0644): proc_dointvec() prints "%d\n".  The
# write-only compact_memory and drop_caches (mode 0200: even root cannot read them) are not views.
SYSCTL_VIEWS = ("swappiness", "dirty_ratio", "dirty_background_ratio", "dirty_expire_centisecs",
                "dirty_writeback_centisecs", "min_free_kbytes", "watermark_scale_factor", "extfrag_threshold")


def _render_sysctl(name: str) -> Callable[[dict], str]:
    def render_sysctl(snap: dict) -> str:
        knobs = snap.get("sysctl") or {}
        value = knobs.get(name)
        if value is None:       # a snapshot dict without the knobs: the kernel's defaults
            value = snap["min_free_kbytes"] if name == "min_free_kbytes" else _SYSCTL_DEFAULTS[name]
        return "%d\n" % value
    render_sysctl.__doc__ = f"/proc/sys/vm/{name}: the value and a newline."
    return render_sysctl


_SYSCTL_DEFAULTS = {name: default for name, default, _, _ in VM_SYSCTLS}

RENDERERS: dict[str, Callable[[dict], str]] = {
    "pressure/memory": render_pressure_memory,
    "pressure/cpu": render_pressure_idle,
    "pressure/io": render_pressure_idle,
    "buddyinfo": render_buddyinfo,
    "pagetypeinfo": render_pagetypeinfo,
    "zoneinfo": render_zoneinfo,
    "meminfo": render_meminfo,
    "vmstat": render_vmstat,
    "slabinfo": render_slabinfo,
    "vmallocinfo": render_vmallocinfo,
    "stat": render_stat,
    **{"sys/vm/" + name: _render_sysctl(name) for name in SYSCTL_VIEWS},
}


def render(name: str, snap: dict) -> str:
    """The text of /proc/<name> for this snapshot."""
    try:
        renderer = RENDERERS[name]
    except (KeyError, TypeError):
        raise InvalidArgument(
            f"unknown /proc view {show(name)}; known: {', '.join(sorted(RENDERERS))}") from None
    return renderer(snap)


# --------------------------------------------------------------------------
# show_mem(): the Mem-Info block of warn_alloc and the OOM report.

def show_mem(snap: dict, max_zone_idx: int = MAX_NR_ZONES - 1) -> list[str]:
    """The lines __show_mem(0, NULL, max_zone_idx) prints (6.18 mm/show_mem.c).

    warn_alloc passes gfp_zone(gfp_mask) as max_zone_idx: zones above it are left
    out of the per-zone lines.  Config as captured: THP=y, ZSMALLOC=y,
    HUGETLB=y with 1G and 2M page sizes, no CMA, no MEMORY_FAILURE,
    no SHADOW_CALL_STACK, no MEM_ALLOC_PROFILING.
    """
    vm = snap["vm"]
    zones = snap["zones"]
    shown = [z for i, z in enumerate(zones) if _populated(z) and i <= max_zone_idx]
    free = _total_free(snap)
    lines = ["Mem-Info:"]
    ia, aa, if_, af = _lru(snap)
    dirty = _reclaim(snap).get("nr_dirty", 0)
    lines += [
        "active_anon:%d inactive_anon:%d isolated_anon:0" % (aa, ia),
        " active_file:%d inactive_file:%d isolated_file:0" % (af, if_),
        " unevictable:%d dirty:%d writeback:0" % (_unevictable(snap), dirty),
        " slab_reclaimable:%d slab_unreclaimable:%d"
        % (vm["nr_slab_reclaimable"], vm["nr_slab_unreclaimable"]),
        " mapped:0 shmem:0 pagetables:%d" % vm["nr_page_table_pages"],
        " sec_pagetables:0 bounce:0",
        " kernel_misc_reclaimable:0",
        " free:%d free_pcp:%d free_cma:0" % (free, sum(_free_pcp(z) for z in zones)),
    ]
    if any(z["managed"] for z in zones[:max_zone_idx + 1]):     # node_has_managed_zones()
        lines.append(
            "Node 0 active_anon:%dkB inactive_anon:%dkB active_file:%dkB inactive_file:%dkB"
            " unevictable:%dkB isolated(anon):0kB isolated(file):0kB mapped:0kB dirty:%dkB"
            " writeback:0kB shmem:0kB shmem_thp:0kB shmem_pmdmapped:0kB anon_thp:0kB"
            " kernel_stack:%dkB pagetables:%dkB sec_pagetables:0kB"
            " all_unreclaimable? %s Balloon:0kB"
            % (_kb(aa), _kb(ia), _kb(af), _kb(if_), _kb(_unevictable(snap)), _kb(dirty),
               vm["nr_kernel_stack_kb"], _kb(vm["nr_page_table_pages"]),
               "yes" if _node_unreclaimable(snap) else "no"))
    for zone in shown:
        zl = zone.get("nr_lru") or (0, 0, 0, 0)
        free_highatomic = sum(zone["free_area"][o][3] << o for o in range(NR_PAGE_ORDERS))
        lines.append(
            "Node 0 %s free:%dkB boost:%dkB min:%dkB low:%dkB high:%dkB"
            " reserved_highatomic:%dKB free_highatomic:%dKB"
            " active_anon:%dkB inactive_anon:%dkB active_file:%dkB inactive_file:%dkB"
            " unevictable:%dkB writepending:%dkB zspages:0kB present:%dkB managed:%dkB"
            " mlocked:%dkB bounce:0kB free_pcp:%dkB local_pcp:%dkB free_cma:0kB"
            % (zone["name"], _kb(zone["nr_free_pages"]), _kb(zone["boost"]),
               _kb(_wmark(zone, 0)), _kb(_wmark(zone, 1)), _kb(_wmark(zone, 2)),
               _kb(zone["nr_reserved_highatomic"]), _kb(free_highatomic),
               _kb(zl[1]), _kb(zl[0]), _kb(zl[3]), _kb(zl[2]), _kb(zone.get("nr_unevictable", 0)),
               _kb(zone.get("nr_dirty", 0)), _kb(zone["present"]), _kb(zone["managed"]),
               _kb(zone.get("nr_unevictable", 0)), _kb(_free_pcp(zone)),
               _kb(_local_pcp(zone, snap))))
        lines.append("lowmem_reserve[]: " + " ".join(str(r) for r in zone["lowmem_reserve"]))
    for zone in shown:
        parts = ["Node 0 %s: " % zone["name"]]
        total = 0
        for order in range(NR_PAGE_ORDERS):
            per_type = zone["free_area"][order]
            nr = sum(per_type)
            total += nr << order
            parts.append("%d*%dkB " % (nr, 4 << order))
            if nr:
                letters = "".join(MIGRATETYPE_LETTERS[mt] for mt, n in enumerate(per_type) if n)
                parts.append("(%s) " % letters)
        parts.append("= %dkB" % _kb(total))
        lines.append("".join(parts))
    # hugetlb_show_meminfo_node(): one line per hstate, 1G registered first on x86.
    for size_kb in (HPAGE_PUD_KB, HPAGE_PMD_KB):
        lines.append("Node 0 hugepages_total=0 hugepages_free=0 hugepages_surp=0"
                     " hugepages_size=%dkB" % size_kb)
    lines.append("%d total pagecache pages" % (if_ + af))
    # show_swap_cache_info()
    lines.append("0 pages in swap cache")
    lines.append("Free swap  = %dkB" % _kb(vm["swap_free_pages"]))
    lines.append("Total swap = %dkB" % _kb(vm["swap_total_pages"]))
    present = sum(z["present"] for z in zones if _populated(z))
    reserved = sum(z["present"] - z["managed"] for z in zones if _populated(z))
    lines.append("%d pages RAM" % present)
    lines.append("0 pages HighMem/MovableOnly")
    lines.append("%d pages reserved" % reserved)
    return lines
