"""/sys/kernel/slab/<cache>/: SLUB's per-cache attributes (mm/slub.c, CONFIG_SYSFS).

The files tools/mm/slabinfo reads, each in the kernel's format: plain numbers
(``"%u\\n"``), flags as 0 or 1, and the counts that ``show_slab_objects`` sums
over nodes as ``"<total> N0=<total>\\n"`` (the per-node part only when it is
non-zero, as on a NUMA-enabled kernel with one node).

What each count means, as in the kernel:
``slabs`` every slab of the cache; ``partial`` slabs on the node partial list;
``cpu_slabs`` slabs that are some CPU's active slab plus the slabs of the cpu
partial lists (each chain counted by its head's ``slab->slabs``); ``objects``
objects in use, where CPU slabs, cpu partial slabs and sheaf objects count as
in use (only the node partial lists' free objects are subtracted);
``objects_partial`` objects in use in node partial slabs; ``total_objects``
room in every slab; ``cpu_partial`` the objects a cpu partial list keeps
(set_cpu_partial()); ``slabs_cpu_partial`` (slabs_cpu_partial_show()) the
chains' slabs, each counted as half full: ``"N(S) C<cpu>=n(s) ..."``;
``sheaf_capacity`` the objects one sheaf holds (0: no sheaves).
"""

from __future__ import annotations

from ..errors import InvalidArgument
from .. import _abi as st

# attribute -> how it is printed from (info, counts)
_FLAG_ATTRS = {
    "reclaim_account": st.SLAB_RECLAIM_ACCOUNT, "hwcache_align": st.SLAB_HWCACHE_ALIGN,
    "cache_dma": st.SLAB_CACHE_DMA, "sanity_checks": st.SLAB_CONSISTENCY_CHECKS,
    "trace": st.SLAB_TRACE, "red_zone": st.SLAB_RED_ZONE, "poison": st.SLAB_POISON,
    "store_user": st.SLAB_STORE_USER,
}
DEFRAG_RATIO = 100      # remote_node_defrag_ratio's default (1000, shown /10)


def _nodes(total: int) -> str:
    """show_slab_objects(): the total, then " N<node>=<count>" for each node with a count."""
    return f"{total} N0={total}\n" if total else "0\n"


def slab_counts(m, cid: int) -> dict:
    """Per-cache sums over its slabs, as show_slab_objects() collects them; cpu_partial_slabs
    is each CPU's partial chain length (the head slab's slab->slabs), by CPU."""
    counts: dict = {"slabs": 0, "partial": 0, "cpu_slabs": 0, "objects_partial": 0}
    chains = [len(m._view_cpu_slab(cid, cpu)["partial"]) for cpu in range(m.cpus)]
    counts["cpu_slabs"] += sum(chains)
    counts["cpu_partial_slabs"] = chains
    pfns = m._view_slab_pfns(cid)
    if isinstance(pfns, int):
        return counts
    for pfn in pfns:
        view = m._view_slab(pfn)
        if isinstance(view, int):
            continue
        (_cache, _order, _objects, inuse, frozen, on_partial, _cpu), _states = view
        counts["slabs"] += 1
        if on_partial:
            counts["partial"] += 1
            counts["objects_partial"] += inuse
        if frozen:
            counts["cpu_slabs"] += 1
    return counts


def slab_attributes(m, cache) -> dict[str, str]:
    """Every attribute file of /sys/kernel/slab/<cache>/, name -> text."""
    cid = m._cache_id(cache, "sysfs")
    info = m._view_cache_info(cid)
    c = slab_counts(m, cid)
    attrs = {
        "aliases": "%d\n" % max(0, info["refcount"] - 1),
        "align": "%u\n" % info["align"],
        "cpu_partial": "%u\n" % info["cpu_partial"],
        "cpu_slabs": _nodes(c["cpu_slabs"]),
        "ctor": "",
        "destroy_by_rcu": "0\n",
        "min_partial": "%u\n" % _min_partial(info["size"]),
        "object_size": "%u\n" % info["object_size"],
        "objects": _nodes(info["active_objects"]),
        "objects_partial": _nodes(c["objects_partial"]),
        "objs_per_slab": "%u\n" % info["objects"],
        "order": "%u\n" % info["order"],
        "partial": _nodes(c["partial"]),
        "remote_node_defrag_ratio": "%u\n" % DEFRAG_RATIO,
        "slab_size": "%u\n" % info["size"],
        "slabs": _nodes(c["slabs"]),
        "sheaf_capacity": "%u\n" % info["sheaf_capacity"],
        "slabs_cpu_partial": _slabs_cpu_partial(c["cpu_partial_slabs"], info["objects"]),
        "total_objects": _nodes(info["total_objects"]),
        "usersize": "0\n",
    }
    for name, bit in _FLAG_ATTRS.items():
        attrs[name] = "%d\n" % (1 if info["flags"] & bit else 0)
    return dict(sorted(attrs.items()))


def _slabs_cpu_partial(chains: list, objs_per_slab: int) -> str:
    """slabs_cpu_partial_show(): objects approximated as half-full slabs (as
    slub_set_cpu_partial() assumes), in total and per CPU that has a chain."""
    total = sum(chains)
    text = "%d(%d)" % (total * objs_per_slab // 2, total)
    for cpu, slabs in enumerate(chains):
        if slabs:
            text += " C%d=%d(%d)" % (cpu, slabs * objs_per_slab // 2, slabs)
    return text + "\n"


def _min_partial(size: int) -> int:
    """set_min_partial(s, ilog2(s->size) / 2), clamped to MIN_PARTIAL..MAX_PARTIAL (5..10)."""
    return min(10, max(5, (size.bit_length() - 1) // 2))


def slab_caches(m) -> list:
    """The caches that have a directory, oldest first (aliases share their cache's)."""
    return m._view_caches()


def render(m, path: str) -> str:
    """The text of /sys/<path>, e.g. ``kernel/slab/dentry/objects``."""
    if not isinstance(path, str):
        raise InvalidArgument(f"sysfs: path must be a string, not {path!r}")
    parts = path.strip("/").split("/")
    if parts[:2] == ["sys", "kernel"]:
        parts = parts[1:]
    if len(parts) == 4 and parts[:2] == ["kernel", "slab"]:
        for cache in slab_caches(m):
            if cache.name == parts[2]:
                attrs = slab_attributes(m, cache)
                if parts[3] in attrs:
                    return attrs[parts[3]]
                raise InvalidArgument(f"sysfs: {path!r}: no attribute {parts[3]!r}; "
                                      f"known: {', '.join(attrs)}")
        raise InvalidArgument(f"sysfs: {path!r}: no slab cache named {parts[2]!r}")
    raise InvalidArgument(f"sysfs: {path!r} is not a file pyalloc shows "
                          "(kernel/slab/<cache>/<attribute>)")

