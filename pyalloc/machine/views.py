"""The views beside /proc, as Machine methods: debugfs, sysfs and the exported tree.

Mixed into :class:`pyalloc.Machine`; the text itself is made in debugfs.py,
sysfs.py and export.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..text import debugfs, sysfs
from ..tools import export as exportmod
from .state import MachineState

if TYPE_CHECKING:
    from .slab import Cache


class ViewsAPI(MachineState):
    """debugfs(), sysfs() and export() of Machine."""

    if TYPE_CHECKING:                   # provided by Machine
        def _live(self) -> None: ...
        def snapshot(self) -> dict: ...

    def debugfs(self, name: str) -> str:
        """The text of /sys/kernel/debug/<name> in the kernel's format.

        ``name`` is ``"extfrag/unusable_index"`` or ``"extfrag/extfrag_index"``.
        Raises InvalidArgument for any other name.
        """
        self._live()
        if not isinstance(name, str) or name not in debugfs.RENDERERS:
            debugfs.render(name, {})          # raises, naming the known files
        return debugfs.render(name, self.snapshot())

    def sysfs(self, path: str) -> str:
        """The text of a /sys file, e.g. ``m.sysfs("kernel/slab/dentry/objects")``.

        Raises InvalidArgument for a file pyalloc does not show.
        """
        self._live()
        return sysfs.render(self, path)

    def slab_sysfs(self, cache: Cache) -> dict[str, str]:
        """Every attribute of /sys/kernel/slab/<cache>/ as {name: text}."""
        return sysfs.slab_attributes(self, cache)

    def export(self, root: str | os.PathLike[str], in_place: bool = False) -> Path:
        """Write proc/, sys/kernel/slab/ and sys/kernel/debug/ under root, each file
        replaced atomically (written beside it, then renamed), or with *in_place* rewritten in
        its own inode (for single-file bind mounts).  Returns root as a Path."""
        self._live()
        return exportmod.export(self, root, in_place=in_place)
