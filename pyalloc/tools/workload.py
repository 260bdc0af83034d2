"""The built-in mixed workloads that ``pyalloc demo`` runs.

Deterministic (a fixed seed drives the choices), so two runs print the same
text on either backend.  It allocates pages of several orders and migrate
types, then frees a scattered subset -- every block whose index is not a
multiple of three -- so that the survivors pin pageblocks apart and the free
lists show fragmentation: many low-order blocks, fewer order-10 ones, and
pageblocks converted to Unmovable and Reclaimable.
"""

from __future__ import annotations

import random

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
