"""Reclaim counters and per-call costs: one table both backends index alike.

The C core keeps ``uint64_t ctr[PA_NR_CTRS]`` in the order of :data:`COUNTERS`
(its enum ``PA_CTR_*`` in csrc/pyalloc.h is checked against this table by
tests/test_reclaim.py); the model keeps a list in the same order.  Most names
are the /proc/vmstat names of 6.18, so procfs can print them as they are.
Gauges (LRU sizes, dirty pages, free swap) are kept up to date by the cores
rather than recomputed; the PSI state sits at the end.
"""

COUNTERS = (
    # events, /proc/vmstat names
    "pgpgin", "pgpgout", "pswpin", "pswpout", "pgfault", "pgmajfault",
    "pgactivate", "pgdeactivate", "pgrefill", "pgrotated",
    "pgsteal_kswapd", "pgsteal_direct", "pgscan_kswapd", "pgscan_direct",
    "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file",
    "allocstall_dma", "allocstall_dma32", "allocstall_normal", "allocstall_movable",
    "allocstall_device",
    "pageoutrun", "kswapd_low_wmark_hit_quickly", "kswapd_high_wmark_hit_quickly",
    "nr_written", "nr_dirtied", "nr_vmscan_write", "drop_pagecache",
    "compact_migrate_scanned", "compact_free_scanned", "compact_isolated",
    "compact_stall", "compact_fail", "compact_success", "pgmigrate_success",
    "oom_kill", "workingset_refault_anon", "workingset_refault_file",
    # gauges
    "nr_inactive_anon", "nr_active_anon", "nr_inactive_file", "nr_active_file",
    "nr_dirty", "nr_swap_pages", "nr_swap_free",
    # kswapd runs in a row that reclaimed nothing (pgdat->kswapd_failures)
    "kswapd_failures",
    # PSI (kernel/sched/psi.c): total stall in us, the open 2 s period and its
    # stall, and the three averages in FIXED_1 = 2048 fixed point
    "psi_total_us", "psi_period", "psi_period_stall_us", "psi_avg10", "psi_avg60", "psi_avg300",
)
CTR = {name: i for i, name in enumerate(COUNTERS)}
NR_CTRS = len(COUNTERS)

# What the most recent allocating call cost (Machine.last_alloc); "seq" says
# which call the rest belongs to.
COSTS = ("seq", "slept", "scanned", "reclaimed", "written_back", "swapped_out",
         "compacted", "reserves", "kswapd_woken", "stall_us", "oom_needed", "oom_gfp", "oom_order")
COST = {name: i for i, name in enumerate(COSTS)}
NR_COSTS = len(COSTS)

# LRU list numbers, as enum lru_list
LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE = range(4)

# Simulated cost of the slow work, in microseconds of the machine's clock (one
# core operation is 1 us).  A 4 KiB page at ~40 MB/s of disk is ~100 us.
WRITEBACK_US = 100      # a dirty file page written back
SWAP_OUT_US = 100       # an anonymous page written to swap
SWAP_IN_US = 100        # read back from swap (a major fault)
READ_PAGE_US = 100      # a file page read from disk into the cache
MIGRATE_US = 2          # compaction copies a page

PSI_PERIOD_US = 2_000_000   # psi_avgs_work runs every 2 s
