"""A live procfs for real monitoring tools: a machine's views as files under a directory.

``export(m, root)`` lays out what a monitoring tool reads on a real machine::

    root/proc/buddyinfo, pagetypeinfo, zoneinfo, meminfo, vmstat, slabinfo, vmallocinfo, ...
    root/sys/kernel/slab/<cache>/<attribute>          (sysfs.py)
    root/sys/kernel/debug/extfrag/unusable_index, extfrag_index   (debugfs.py)

so that ``node_exporter --path.procfs root/proc``, psutil with
``PROCFS_PATH=root/proc`` or a bind mount over /proc/meminfo read pyalloc's
text as they read a kernel's.  Each file is written beside its final name and
renamed over it, so a scraper that reads while the export runs sees the old
file or the new one, never half of one.  An :class:`Exporter` remembers what it
wrote last and rewrites only files whose text changed, which keeps
``pyalloc serve`` cheap with many caches.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Dict, Optional, Union

from ..text import debugfs, procfs, sysfs

PathLike = Union[str, "os.PathLike[str]"]


def _dirname(cache_name: str) -> str:
    """A cache's directory name: kobject names cannot hold '/', the kernel writes '!' instead."""
    return cache_name.replace("/", "!")


def render_tree(m) -> Dict[str, str]:
    """Every exported file of the machine, relative path -> text."""
    m._live()
    snap = m.snapshot()
    files = {f"proc/{name}": procfs.render(name, snap) for name in procfs.RENDERERS}
    for name in debugfs.RENDERERS:
        files[f"sys/kernel/debug/{name}"] = debugfs.render(name, snap)
    for cache in sysfs.slab_caches(m):
        base = f"sys/kernel/slab/{_dirname(cache.name)}"
        for attr, text in sysfs.slab_attributes(m, cache).items():
            files[f"{base}/{attr}"] = text
    return files


def write_atomic(path: Path, text: str) -> None:
    """Replace path's contents in one rename: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)


class Exporter:
    """Keeps one directory current with one machine; rewrites only what changed."""

    def __init__(self, root: PathLike) -> None:
        self.root = Path(root)
        self._written: Dict[str, str] = {}
        self._slab_dirs: set = set()

    def update(self, m) -> int:
        """Export the machine's current state; returns how many files were rewritten."""
        files = render_tree(m)
        changed = 0
        made_dirs = set()
        for rel, text in files.items():
            if self._written.get(rel) == text:
                continue
            path = self.root / rel
            if path.parent not in made_dirs:
                path.parent.mkdir(parents=True, exist_ok=True)
                made_dirs.add(path.parent)
            write_atomic(path, text)
            self._written[rel] = text
            changed += 1
        # a destroyed cache's directory goes, as its kobject does
        slab_dirs = {rel.split("/")[3] for rel in files if rel.startswith("sys/kernel/slab/")}
        slab_root = self.root / "sys" / "kernel" / "slab"
        if slab_root.is_dir():
            for entry in slab_root.iterdir():
                if entry.is_dir() and entry.name not in slab_dirs:
                    shutil.rmtree(entry, ignore_errors=True)
                    prefix = f"sys/kernel/slab/{entry.name}/"
                    for rel in [r for r in self._written if r.startswith(prefix)]:
                        del self._written[rel]
        return changed


def export(m, root: PathLike, exporter: Optional[Exporter] = None) -> Path:
    """Write the machine's proc/, sys/kernel/slab/ and sys/kernel/debug/ files under root."""
    exporter = exporter or Exporter(root)
    exporter.update(m)
    return exporter.root
