"""The built-in workloads, and the one registry of them that ``pyalloc demo``,
``serve``, ``plot`` and ``sweep`` read (:data:`REGISTRY`).

``pyalloc demo`` runs :data:`DEMO_PHASES`.  Deterministic (a fixed seed
drives the choices), so two runs print the same text on either backend.  It
allocates pages of several orders and migrate types, then frees a scattered
subset -- every block whose index is not a multiple of three -- so that the
survivors pin pageblocks apart and the free lists show fragmentation: many
low-order blocks, fewer order-10 ones, and pageblocks converted to Unmovable
and Reclaimable.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable, Iterator

# (gfp, weight): what a small kernel does most: movable user pages, unmovable
# kernel allocations, reclaimable caches, a few atomic ones
MIX = (
    ("GFP_HIGHUSER_MOVABLE", 5),
    ("GFP_KERNEL", 3),
    ("GFP_KERNEL|__GFP_RECLAIMABLE", 1),
    ("GFP_ATOMIC|__GFP_NOWARN", 1),
)
ORDERS = (0, 0, 0, 0, 1, 1, 2, 3, 4)


def run_pages(m, fraction: float = 0.25, seed: int = 2026) -> dict:
    """Fill about *fraction* of memory, then free two blocks in three.

    Returns counts of what was done.
    """
    rnd = random.Random(seed)
    gfps = [g for g, w in MIX for _ in range(w)]
    target = int(m.nr_pages * fraction)
    live = []
    used = failed = 0
    while used < target:
        gfp, order = rnd.choice(gfps), rnd.choice(ORDERS)
        pfn = m.alloc_pages(gfp, order)
        if pfn is None:
            failed += 1
            if failed > 64:
                break
            continue
        live.append((pfn, order))
        used += 1 << order
    kept = live[::3]
    for i, (pfn, order) in enumerate(live):
        if i % 3:
            m.free_pages(pfn, order)
    return {"allocated": len(live), "freed": len(live) - len(kept), "kept": len(kept),
            "failed": failed}


# (name, object size, flags): caches shaped like a few a real kernel creates
CACHES = (
    ("task_struct", 4248, "SLAB_HWCACHE_ALIGN|SLAB_ACCOUNT"),
    ("dentry", 192, "SLAB_HWCACHE_ALIGN|SLAB_RECLAIM_ACCOUNT"),
    ("buffer_head", 104, "SLAB_RECLAIM_ACCOUNT"),
    ("vm_area_struct", 176, "SLAB_HWCACHE_ALIGN|SLAB_ACCOUNT"),
)
KMALLOC_SIZES = (8, 16, 24, 32, 64, 96, 100, 128, 192, 256, 500, 1000, 2048, 3000, 5000, 12000)
KMALLOC_GFPS = ("GFP_KERNEL", "GFP_KERNEL", "GFP_KERNEL_ACCOUNT", "GFP_KERNEL|__GFP_RECLAIMABLE",
                "GFP_ATOMIC|__GFP_NOWARN")


def run_slab(m, objects: int = 6000, seed: int = 2026) -> dict:
    """Create a few caches, allocate objects from them and from kmalloc, free two in three."""
    rnd = random.Random(seed)
    caches = [m.kmem_cache_create(name, size, 0, flags) for name, size, flags in CACHES]
    live = []
    for _ in range(objects):
        if rnd.random() < 0.4:
            cache = rnd.choice(caches)
            addr = m.kmem_cache_alloc(cache, "GFP_KERNEL")
        else:
            cache = None
            addr = m.kmalloc(rnd.choice(KMALLOC_SIZES), rnd.choice(KMALLOC_GFPS))
        if addr is not None:
            live.append((cache, addr))
    for i, (cache, addr) in enumerate(live):
        if i % 3:
            if cache is None:
                m.kfree(addr)
            else:
                m.kmem_cache_free(cache, addr)
    return {"objects": len(live), "freed": len(live) - len(live[::3]), "caches": len(caches)}


def run_vmalloc(m, seed: int = 2026) -> dict:
    """A few vmalloc areas of several sizes (one large enough for a vmalloc'ed page
    array), a vmap of scattered pages, kvmalloc both ways; some freed again."""
    rnd = random.Random(seed)
    areas = []
    for size in (4096, 3 * 4096 + 100, 16 << 10, 64 << 10, 600 << 12, 8192):
        areas.append(m.vmalloc(size, caller=rnd.choice(CALLERS)))
    pfns = [m.alloc_pages("GFP_KERNEL") for _ in range(4)]
    mapped = m.vmap([p for p in pfns if p is not None][::-1], caller="demo_vmap_init+0x2c/0x90")
    big = m.kvmalloc(6 << 20, caller="demo_kvmalloc+0x18/0x60")      # past KMALLOC_MAX_SIZE: vmalloc
    small = m.kvmalloc(2048, caller="demo_kvmalloc+0x18/0x60")       # kmalloc
    for addr in areas[1::2]:
        m.vfree(addr)
    m.kvfree(small)
    return {"areas": len(areas) + 2, "freed": len(areas[1::2]), "vmap": mapped is not None, "kvmalloc": big}


CALLERS = ("alloc_large_system_hash+0x1a0/0x2f0", "bpf_prog_alloc_no_stats+0x4d/0x230",
           "module_alloc+0x3e/0x60", "kernel_clone+0xb8/0x400")


def run_pressure(m, seed: int = 2026) -> dict:
    """Push a machine into reclaim, swap and the OOM killer, as a small server
    does on a bad day: a database with its cache and logs, a second service
    that needs room, then a leak that the OOM killer has to stop.  Returns what
    happened, including whether the database's bytes survived."""
    rnd = random.Random(seed)
    total = m.nr_pages
    db = m.spawn("postgres")
    m.touch(db, total * 30 // 100)
    records = {}
    for _ in range(64):
        off = rnd.randrange(0, total * 30 // 100) * 4096 + rnd.randrange(0, 3000)
        records[off] = bytes(rnd.randrange(256) for _ in range(32))
        m.user_write(db, off, records[off])
    m.read_file("/var/lib/postgresql/base/16384", total * 25 // 100)
    m.write_file("/var/log/journal/system.journal", total * 10 // 100)
    web = m.spawn("java")
    m.touch(web, total * 40 // 100)
    m.touch(db, total * 10 // 100)                  # the hot part of the database again
    for size in (64, 192, 1024, 4096):
        m.kfree(m.kmalloc(size, "GFP_ATOMIC|__GFP_NOWARN"))
    leak = m.spawn("leaky")
    got = m.touch(leak, total * 2)                  # more than RAM and swap together
    intact = all(m.user_read(db, off, len(data)) == data for off, data in records.items())
    m.sync()
    return {"processes": len(m.processes()), "leak_pages": got, "db_intact": intact,
            "oom_kills": m.reclaim_counters()["oom_kill"]}


# -- sweep workloads: (machine, seed) -> a row of metrics -------------------------------

# the GFP classes the built-in workloads allocate with, as the column names say them
GFP_CLASSES = {
    "atomic": "GFP_ATOMIC|__GFP_NOWARN",
    "nowait": "GFP_NOWAIT|__GFP_NOWARN",
    "kernel": "GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY",
}
FILL_GFP = "GFP_HIGHUSER_MOVABLE|__GFP_NOWARN|__GFP_NORETRY"     # user pages that fill memory first


class Tally:
    """Allocation attempts and failures per GFP class (and per order for pages)."""

    def __init__(self) -> None:
        self.tries = {c: 0 for c in GFP_CLASSES}
        self.fails = {c: 0 for c in GFP_CLASSES}
        self.order_tries = {c: [0] * 4 for c in GFP_CLASSES}
        self.order_fails = {c: [0] * 4 for c in GFP_CLASSES}

    def pages(self, m, cls: str, order: int):
        pfn = m.alloc_pages(GFP_CLASSES[cls], order)
        self.tries[cls] += 1
        if order < 4:
            self.order_tries[cls][order] += 1
        if pfn is None:
            self.fails[cls] += 1
            if order < 4:
                self.order_fails[cls][order] += 1
        return pfn

    def kmalloc(self, m, cls: str, size: int):
        addr = m.kmalloc(size, GFP_CLASSES[cls])
        self.tries[cls] += 1
        if addr is None:
            self.fails[cls] += 1
        return addr

    def metrics(self) -> dict:
        out = {}
        for c in GFP_CLASSES:
            out[f"tries_{c}"] = self.tries[c]
            out[f"fail_{c}"] = self.fails[c]
        for c in ("atomic", "nowait"):
            for order in range(4):
                out[f"tries_{c}_o{order}"] = self.order_tries[c][order]
                out[f"fail_{c}_o{order}"] = self.order_fails[c][order]
        return out


HELD = 400                  # blocks in flight at once
FREE_RUNS = (1, 1, 2, 2, 3, 4, 6, 8)
MIX_KMALLOC_SIZES = (16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048)


def kmalloc_mix(m, seed: int, ops: int = 20000) -> dict:
    """Slab churn beside atomic page allocations, as a busy network stack does.

    Memory is first filled with movable user pages until the allocator
    refuses, then about a fifth is freed again in runs of 1-8 pages between
    kept runs of 4-16 (a fragmented machine: holes of every order up to 3).  Then *ops* steps: each
    CPU in turn allocates or frees kmalloc objects of mixed sizes (the live set
    grows to a few thousand objects), and every fourth step asks for an
    order 0-3 block with GFP_ATOMIC or GFP_NOWAIT, holding it for a while
    (up to HELD blocks in flight, as an skb's pages).  Failures are counted per GFP class and order.
    """
    rnd = random.Random(seed)
    t = Tally()
    fill = []
    while True:
        pfn = m.alloc_pages(FILL_GFP, 0)
        if pfn is None:
            break
        fill.append(pfn)
    fill.sort()
    i = 0
    while i < len(fill):            # keep 4-16 pages, free a run of 1-8: holes of every order up to 3
        i += rnd.randint(4, 16)
        run = rnd.choice(FREE_RUNS)
        for pfn in fill[i:i + run]:
            m.free_pages(pfn)
        i += run
    live: list[int] = []
    held: list[tuple[int, int]] = []
    for step in range(ops):
        with m.on_cpu(step % m.cpus):
            if not live or rnd.random() < 0.55:
                addr = t.kmalloc(m, "kernel" if rnd.random() < 0.8 else "atomic", rnd.choice(MIX_KMALLOC_SIZES))
                if addr is not None:
                    live.append(addr)
            else:
                m.kfree(live.pop(rnd.randrange(len(live))))
            if step % 4 == 0:
                order = rnd.choice((0, 0, 1, 2, 3))
                cls = "atomic" if rnd.random() < 0.7 else "nowait"
                pfn = t.pages(m, cls, order)
                if pfn is not None:
                    held.append((pfn, order))
                if len(held) > HELD:
                    pfn, order = held.pop(rnd.randrange(len(held)))
                    m.free_pages(pfn, order)
    return {**t.metrics(), "live_objects": len(live)}


def demo_mix(m, seed: int) -> dict:
    """The demo's page, slab and vmalloc mix (pyalloc.tools.workload), seeded per run."""
    pages = run_pages(m, seed=seed)
    slab = run_slab(m, objects=4000, seed=seed)
    vm = run_vmalloc(m, seed=seed)
    return {"page_blocks": pages["allocated"], "page_fails": pages["failed"], "slab_objects": slab["objects"],
            "vmalloc_areas": vm["areas"]}


def pressure(m, seed: int) -> dict:
    """The demo's bad day (pyalloc.tools.run_pressure): reclaim, swap, the OOM killer."""
    r = run_pressure(m, seed=seed)
    return {"processes": r["processes"], "leak_pages": r["leak_pages"], "db_intact": r["db_intact"]}


def cross_cache(m, seed: int, overflow: bool = True) -> dict:
    """A cross-cache heap-grooming recipe, as kernelCTF write-ups run it against SLUB (pin a CPU;
    mm/slub.c put_cpu_partial(), __put_partials(), discard_slab()): can the slab holding a victim
    object be handed back to the page allocator, so that another cache or a page allocation
    reuses its memory?

    1. fill 2 x cpu_partial_slabs slabs of the victim's cache;
    2. allocate a slab's worth of objects, the victim among them, and one slab more after it;
    3. free the victim's slab empty;
    4. (*overflow*) free one object in each slab of step 1: each is a full slab's first free, so
       it goes to the CPU's partial list, which overflows (cpu_partial_slabs) to the node list,
       where empty slabs beyond min_partial are discarded.

    Other tasks on the CPU allocate from the same cache now and then (the seeded noise), which
    is why the recipe does not always work.  Metric: ``victim_slab_freed`` (1 or 0).
    """
    rng = random.Random(seed)
    cache = m.kmem_cache_create("victim_cache", 256)
    attrs = m.slab_sysfs(cache)
    per_slab = int(attrs["objs_per_slab"])
    # slub_set_cpu_partial(): cpu_partial objects, as slabs
    cpu_partial_slabs = -(-int(attrs["cpu_partial"]) * 2 // per_slab)

    def alloc() -> int:
        return m.kmem_cache_alloc(cache, "GFP_KERNEL", cpu=0)

    def noise() -> None:
        for _ in range(rng.randrange(3)):
            alloc()

    filled = [alloc() for _ in range(2 * cpu_partial_slabs * per_slab)]
    noise()
    before = [alloc() for _ in range(per_slab - 1)]
    victim = alloc()
    noise()
    after = [alloc() for _ in range(per_slab + 1)]
    victim_pfn = m.virt_to_page(victim)
    for p in [victim] + before + after:
        m.kmem_cache_free(cache, p, cpu=0)
    if overflow:
        for p in filled[::per_slab]:
            m.kmem_cache_free(cache, p, cpu=0)
    from ..helpers import PageSlab, pfn_to_page
    # the victim's slab is gone when no slab owns its first page any more
    return {"victim_slab_freed": int(not PageSlab(pfn_to_page(m, victim_pfn)))}


def cross_cache_no_overflow(m, seed: int) -> dict:
    """:func:`cross_cache` without step 4."""
    return cross_cache(m, seed, overflow=False)


# -- serve and plot workloads: generators over a machine that yield after each tick ------

TICK_OPS = 1500          # operations per churn tick
CYCLE_TICKS = 24         # ticks per rise and fall of the live-set target


def churn(m, seed: int = 2026, ops: int = TICK_OPS) -> Iterator[int]:
    """Allocate and free around a target that follows a slow wave: tick after tick."""
    rnd = random.Random(seed)
    gfps = [g for g, w in MIX for _ in range(w)]
    caches = [m.kmem_cache_create(f"churn_{name}", size, 0, flags)
              for name, size, flags in CACHES]
    pages: list = []
    objects: list = []      # (cache or None, addr)
    areas: list = []
    budget = max(64, m.nr_pages // 5)        # live pages at the crest of the wave
    tick = 0
    while True:
        target = int(budget * (0.55 + 0.45 * math.sin(2 * math.pi * tick / CYCLE_TICKS)))
        live = sum(1 << order for _, order in pages)
        for _ in range(ops):
            roll = rnd.random()
            grow = live < target
            if roll < 0.5:                                   # pages
                if grow or not pages:
                    order = rnd.choice(ORDERS)
                    pfn = m.alloc_pages(rnd.choice(gfps) + "|__GFP_NOWARN", order)
                    if pfn is not None:
                        pages.append((pfn, order))
                        live += 1 << order
                else:
                    pfn, order = pages.pop(rnd.randrange(len(pages)))
                    m.free_pages(pfn, order)
                    live -= 1 << order
            elif roll < 0.98:                                # slab objects
                if (grow or not objects) and len(objects) < budget * 4:
                    if rnd.random() < 0.4:
                        cache = rnd.choice(caches)
                        addr = m.kmem_cache_alloc(cache, "GFP_KERNEL|__GFP_NOWARN")
                    else:
                        cache = None
                        addr = m.kmalloc(rnd.choice(KMALLOC_SIZES), "GFP_KERNEL|__GFP_NOWARN")
                    if addr is not None:
                        objects.append((cache, addr))
                elif objects:
                    cache, addr = objects.pop(rnd.randrange(len(objects)))
                    if cache is None:
                        m.kfree(addr)
                    else:
                        m.kmem_cache_free(cache, addr)
            else:                                            # vmalloc areas
                if (grow or not areas) and len(areas) < 64:
                    addr = m.vmalloc(rnd.choice((4096, 16 << 10, 64 << 10)), "GFP_KERNEL|__GFP_NOWARN",
                                     caller=rnd.choice(CALLERS))
                    if addr is not None:
                        areas.append(addr)
                elif areas:
                    m.vfree(areas.pop(rnd.randrange(len(areas))))
        tick += 1
        yield tick


def demo(m, seed: int = 2026) -> Iterator[int]:
    """The demo's workload once (the first tick), then churn."""
    run_pages(m, seed=seed)
    run_slab(m, seed=seed)
    run_vmalloc(m, seed=seed)
    yield 1
    for tick in churn(m, seed=seed):
        yield tick + 1


# -- the registry ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Workload:
    """A built-in workload: its name on the command line, what it does, and the callable.

    kind "sweep": ``fn(machine, seed)`` returns a dict of metrics (one row of a sweep);
    kind "ticks": ``fn(machine, seed=)`` is a generator that yields after each tick (serve, plot).
    """
    name: str
    kind: str
    description: str
    fn: Callable


REGISTRY: tuple[Workload, ...] = (
    Workload("kmalloc-mix", "sweep", "slab churn beside atomic page allocations on a fragmented machine",
             kmalloc_mix),
    Workload("demo-mix", "sweep", "the demo's page, slab and vmalloc mix", demo_mix),
    Workload("pressure", "sweep", "reclaim, swap and the OOM killer (the demo's bad day)", pressure),
    Workload("cross-cache", "sweep", "a heap-grooming recipe: does the victim's slab go back to the page "
             "allocator?", cross_cache),
    Workload("cross-cache-no-overflow", "sweep", "the same recipe without overflowing the cpu partial list",
             cross_cache_no_overflow),
    Workload("demo", "ticks", "the demo's workload then churn", demo),
    Workload("churn", "ticks", "allocate and free in waves", churn),
)

# what ``pyalloc demo`` (and ``proc --workload``) runs, in order
DEMO_PHASES: tuple[tuple[str, Callable[..., dict]], ...] = (
    ("pages", run_pages), ("slab", run_slab), ("vmalloc", run_vmalloc))


def named(kind: str) -> dict[str, Callable]:
    """Name -> callable of every built-in workload of one kind ("sweep" or "ticks")."""
    return {w.name: w.fn for w in REGISTRY if w.kind == kind}


def describe(kind: str, default: str) -> str:
    """"name: description; ..." of one kind, the default marked, for --help."""
    return "; ".join(f"{w.name}: {w.description}{' (default)' if w.name == default else ''}"
                     for w in REGISTRY if w.kind == kind)
