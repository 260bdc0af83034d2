"""Pictures of a machine (matplotlib, the optional extra ``pyalloc[plot]``).

Four panels, each what a person reads at a glance on a real machine:

* **buddyinfo**: free blocks per order, one group of bars per zone;
* **pageblock map**: physical memory as a grid of pageblocks (2 MiB each),
  the colour its migrate type, the shade how much of it is free (pale: free,
  deep: in use) -- fragmentation is visible as scattered deep cells;
* **slab**: per cache, memory holding live objects and memory its slabs hold
  beyond that (waste: free objects, padding, leftover), largest caches first;
* **time series** over a workload or a replay: free memory against the
  watermarks, and the unusable-free index (debugfs extfrag) at orders 3 and 9.

``plot(m, "out.png", samples)`` writes PNG or SVG by the file's suffix.  The data
functions (:func:`pageblock_map`, :func:`sample`, :func:`record`) need no
matplotlib.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional, Sequence

from .text import debugfs
from .gfp import MIGRATETYPE_NAMES, ZONE_NAMES
from . import _abi as st

PAGEBLOCK_ORDER = st.PAGEBLOCK_ORDER
MIGRATE_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#7f7f7f")   # Unmovable Movable Reclaimable HighAtomic Isolate
FRAG_ORDERS = (3, 9)


def _require_matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("pyalloc's pictures need matplotlib: pip install 'pyalloc[plot]'") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


# -- data ----------------------------------------------------------------------------------

def pageblock_map(m) -> tuple:
    """(migratetype per pageblock, free pages per pageblock), by walking memory block by block."""
    m._live()
    page_state = m._view_page_state
    nr = m.nr_pages
    per = 1 << PAGEBLOCK_ORDER
    free = [0] * ((nr + per - 1) // per)
    pfn = 0
    while pfn < nr:
        state, head, order, _kind, _flags, _ref = page_state(pfn)
        end = head + (1 << order) if 0 <= head <= pfn else pfn + 1
        if end <= pfn:
            end = pfn + 1
        end = min(end, nr)
        if state == st.PAGE_STATE_FREE and 0 <= head <= pfn:
            p = pfn
            while p < end:                       # a free block may span pageblocks (order 10)
                block_end = min(end, (p // per + 1) * per)
                free[p // per] += block_end - p
                p = block_end
        pfn = end
    return m._view_pageblock_mt(), free


def slab_usage(m) -> list:
    """Per cache: (name, bytes in live objects, bytes its slabs hold), largest first."""
    rows = []
    for cache in m._view_caches():
        info = m._view_cache_info(cache._id)
        held = info["nr_slabs"] << (info["order"] + st.PAGE_SHIFT) if info["nr_slabs"] else 0
        if not held:
            continue
        rows.append((cache.name, info["live"] * info["object_size"], held))
    rows.sort(key=lambda r: (-r[2], r[0]))
    return rows


def sample(m, step: int) -> dict:
    """One point of the time series: free pages and watermarks (all zones), and per zone
    the unusable-free index ×1000 at FRAG_ORDERS."""
    snap = m.snapshot()
    zones = [z for z in snap["zones"] if z["present"]]
    point = {"step": step,
             "free": sum(z["nr_free_pages"] for z in zones),
             "min": sum(z["wmark"][0] for z in zones),
             "low": sum(z["wmark"][1] for z in zones),
             "high": sum(z["wmark"][2] for z in zones),
             "unusable": {}}
    for z in zones:
        nr_free = [sum(row) for row in z["free_area"]]
        point["unusable"][z["name"]] = {o: debugfs.unusable_free_index(nr_free, o) for o in FRAG_ORDERS}
    return point


def record(m, steps: Iterator[int], count: int, progress: bool = False) -> List[dict]:
    """Run count ticks of a workload generator, sampling before the first and after each."""
    points = [sample(m, 0)]
    ticks = range(1, count + 1)
    if progress:
        from tqdm import tqdm
        ticks = tqdm(ticks, desc="pyalloc: workload", unit="tick", leave=False)
    for i in ticks:
        try:
            next(steps)
        except StopIteration:
            break
        points.append(sample(m, i))
    return points


# -- drawing -------------------------------------------------------------------------------

def _buddyinfo_panel(ax, m) -> None:
    snap = m.snapshot()
    zones = [z for z in snap["zones"] if z["present"]]
    width = 0.8 / max(1, len(zones))
    for i, z in enumerate(zones):
        counts = [sum(row) for row in z["free_area"]]
        xs = [o + (i - (len(zones) - 1) / 2) * width for o in range(len(counts))]
        ax.bar(xs, counts, width=width, label=z["name"])
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xticks(range(st.NR_PAGE_ORDERS))
    ax.set_xlabel("order")
    ax.set_ylabel("free blocks")
    ax.set_title("/proc/buddyinfo: free blocks per order")
    ax.legend(fontsize="small")


def _pageblock_panel(ax, m) -> None:
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch
    mts, free = pageblock_map(m)
    n = len(free)
    cols = max(1, int(n ** 0.5 * 1.6))
    rows = (n + cols - 1) // cols
    per = 1 << PAGEBLOCK_ORDER
    image = [[(1.0, 1.0, 1.0)] * cols for _ in range(rows)]
    for b in range(n):
        r, g, bl = to_rgb(MIGRATE_COLOURS[min(mts[b], len(MIGRATE_COLOURS) - 1)])
        used = 1.0 - free[b] / per
        shade = 0.15 + 0.85 * used          # a wholly free block stays pale
        image[b // cols][b % cols] = (1 - shade * (1 - r), 1 - shade * (1 - g), 1 - shade * (1 - bl))
    ax.imshow(image, aspect="auto", interpolation="nearest")
    ax.set_title(f"pageblocks ({n} x 2 MiB): colour = migrate type, depth = in use")
    # rows run through physical memory: label each with its first pfn, and outline where each
    # zone starts (a zone boundary falls inside a row: a step line)
    step = max(1, rows // 8)
    ax.set_yticks(range(0, rows, step))
    ax.set_yticklabels([f"{r * cols * per:#x}" for r in range(0, rows, step)], fontsize="x-small")
    ax.set_ylabel("pfn at the row's start")
    ax.set_xticks([])
    for zid, start in _zone_starts(m):
        r, c = divmod(start // per, cols)
        if 0 < start and start // per < n:
            ax.plot([c - 0.5, cols - 0.5], [r - 0.5, r - 0.5], color="black", lw=1)
            ax.plot([c - 0.5, c - 0.5], [r - 0.5, r + 0.5], color="black", lw=1)
            ax.plot([-0.5, c - 0.5], [r + 0.5, r + 0.5], color="black", lw=1)
        ax.text(c - 0.4, r, ZONE_NAMES[zid], va="center", ha="left", fontsize="x-small",
                bbox={"facecolor": "white", "edgecolor": "black", "linewidth": 0.5, "pad": 1})
    present = sorted(set(mts))
    ax.legend(handles=[Patch(color=MIGRATE_COLOURS[t], label=MIGRATETYPE_NAMES[t]) for t in present],
              fontsize="small", loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(present), frameon=False)


def _zone_starts(m) -> list:
    """(zone id, first pfn) of each populated zone, lowest first."""
    zones = [m._view_zone(zid) for zid in range(len(ZONE_NAMES))]
    return [(zid, z.start_pfn) for zid, z in enumerate(zones) if z.present]


def _slab_panel(ax, m, top: int = 15) -> None:
    rows = slab_usage(m)[:top]
    names = [r[0] for r in rows][::-1]
    used = [r[1] / 1024 for r in rows][::-1]
    waste = [(r[2] - r[1]) / 1024 for r in rows][::-1]
    ax.barh(names, used, label="live objects", color="#1f77b4")
    ax.barh(names, waste, left=used, label="free objects and padding", color="#ff7f0e")
    ax.set_xlabel("KiB")
    ax.set_title("slab caches: usage and waste")
    ax.tick_params(axis="y", labelsize="small")
    ax.legend(fontsize="small")


def _series_panel(ax, samples: Sequence[dict]) -> None:
    steps = [p["step"] for p in samples]
    kb = 4
    ax.plot(steps, [p["free"] * kb / 1024 for p in samples], label="free", color="black")
    for key, style in (("min", ":"), ("low", "--"), ("high", "-.")):
        ax.plot(steps, [p[key] * kb / 1024 for p in samples], style, label=f"{key} watermark")
    ax.set_xlabel("tick")
    # free memory is gigabytes, the watermarks a few megabytes: a log axis shows both
    ax.set_yscale("log")
    ax.set_ylabel("MiB (log scale)")
    ax.set_title("free memory, watermarks and extfrag unusable index over the workload")
    ax2 = ax.twinx()
    zones = sorted({z for p in samples for z in p["unusable"]}, key=ZONE_NAMES.index)
    for z in zones:
        for order in FRAG_ORDERS:
            ax2.plot(steps, [p["unusable"].get(z, {}).get(order, 0) / 1000 for p in samples],
                     alpha=0.6, label=f"unusable {z} order {order}")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("unusable free index")
    lines, labels = ax.get_legend_handles_labels()
    l2, lab2 = ax2.get_legend_handles_labels()
    # below the axes, as the pageblock map's: inside it would cover the lines
    ax.legend(lines + l2, labels + lab2, fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.12),
              ncol=4, frameon=False)


def plot(m, out, samples: Optional[Sequence[dict]] = None, title: Optional[str] = None) -> Path:
    """Draw the machine's panels (and the time series, if samples are given) to out (.png or .svg)."""
    m._live()
    out = Path(out)
    if out.suffix.lower() not in (".png", ".svg"):
        from .errors import InvalidArgument
        raise InvalidArgument(f"plot: {out.name!r}: write .png or .svg")
    fig = draw(m, samples, title)
    fig.savefig(out, dpi=90)
    _require_matplotlib().close(fig)
    return out


def draw(m, samples: Optional[Sequence[dict]] = None, title: Optional[str] = None):
    """The matplotlib Figure :func:`plot` saves (the caller closes it)."""
    m._live()
    plt = _require_matplotlib()
    panels = 4 if samples else 3
    fig, axes = plt.subplots(2, 2, figsize=(15, 10)) if panels == 4 else plt.subplots(1, 3, figsize=(18, 5.5))
    axes = list(getattr(axes, "flat", axes))
    _buddyinfo_panel(axes[0], m)
    _pageblock_panel(axes[1], m)
    _slab_panel(axes[2], m)
    if samples:
        _series_panel(axes[3], samples)
    debug = f", slub_debug={m.slub_debug}" if m.slub_debug else ""
    fig.suptitle(title or f"pyalloc: {m.mem >> 20} MiB machine, {m.cpus} CPUs, backend {m.backend}{debug}")
    fig.tight_layout()
    return fig
