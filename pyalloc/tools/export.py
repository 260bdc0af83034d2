"""A live procfs for real monitoring tools: a machine's views as files under a directory.

``export(m, root)`` lays out what a monitoring tool reads on a real machine::

    root/proc/buddyinfo, pagetypeinfo, zoneinfo, meminfo, vmstat, slabinfo, vmallocinfo, ...
    root/proc/sys/vm/swappiness, min_free_kbytes, ... (the readable vm sysctls; the write-only
                     compact_memory and drop_caches, mode 0200, are not exported)
    root/sys/kernel/slab/<cache>/<attribute>          (sysfs.py)
    root/sys/kernel/debug/extfrag/unusable_index, extfrag_index   (debugfs.py)

so that ``node_exporter --path.procfs root/proc``, psutil with
``PROCFS_PATH=root/proc`` or a bind mount over /proc/meminfo read pyalloc's
text as they read a kernel's.  Each file is written beside its final name and
renamed over it, so a scraper that reads while the export runs sees the old
file or the new one, never half of one.  An :class:`Exporter` remembers what it
wrote last and rewrites only files whose text changed (or that someone else
removed or replaced), which keeps ``pyalloc serve`` cheap with many caches.

What the export guarantees, because the root is often a shared place such as
/tmp/pyalloc where another user may plant links:

* Nothing is written, renamed or removed outside the root.  The root is
  resolved once, when the :class:`Exporter` is made (so a root that is itself a
  symlink the user chose works); below it every directory is opened relative to
  its parent's descriptor with ``O_NOFOLLOW``, and every file is created,
  renamed and removed relative to its directory's descriptor.
* pyalloc owns the tree below the root.  A symlink, file, fifo or socket where
  it needs a directory, and a symlink or directory where it writes a file, is
  removed (a link itself, never what it points at) and replaced by the real
  thing.  A directory is removed one descriptor at a time, never through a link
  and never across a mount point.
* Temporary files have unpredictable names, are created ``O_EXCL|O_NOFOLLOW``
  and are removed again if anything fails before their rename.
* Text is written as UTF-8, with the bytes of each name as they are (a cache
  named "café" has a directory named "café").
* Each update notices files and directories that went away (the whole root,
  too) and writes them again.

Errors: :class:`~pyalloc.errors.InvalidArgument` when the root is not a
directory (a link or file took its place after it was resolved: pyalloc does
not touch the root's parent), when a mount point sits where pyalloc must
remove a directory, or when the tree keeps changing under the exporter faster
than it can repair it; ``OSError`` from the file system itself (permission
denied, disk full).
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from ..errors import InvalidArgument
from ..text import debugfs, procfs, sysfs

PathLike = Union[str, "os.PathLike[str]"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_A_DIR = (errno.ELOOP, errno.ENOTDIR)          # O_NOFOLLOW|O_DIRECTORY met a link or a non-directory
_DIR_IN_THE_WAY = (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST)
# A hostile writer can undo each repair; after this many the exporter gives up rather than spin.
_TRIES = 64
NAME_MAX = 255


def _dirname(cache_name: str) -> str:
    """A cache's directory name: kobject names cannot hold '/', the kernel writes '!' instead."""
    return _component(cache_name.replace("/", "!"))


def _component(name: str) -> str:
    """name, if it is one directory entry that stays where it is put."""
    if name in ("", ".", "..") or "/" in name or "\0" in name or len(_encode(name)) > NAME_MAX:
        raise InvalidArgument(f"export: {name!r} cannot be a file name under the export root")
    return name


def _encode(text: str) -> bytes:
    """UTF-8, bytes as they are: a name that came from bytes (surrogateescape) goes back to them."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:          # a lone surrogate that stands for no byte
        return text.encode("utf-8", "backslashreplace")


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


# -- descriptor-relative file operations ---------------------------------------------------

def _open_dir(parent: int, name: str) -> int:
    """The directory name in parent, made if missing; whatever else is there is replaced."""
    for _ in range(_TRIES):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            try:
                os.mkdir(name, 0o755, dir_fd=parent)
            except FileExistsError:
                pass
        except OSError as exc:
            if exc.errno not in _NOT_A_DIR:
                raise
            remove_entry(parent, name)
    raise InvalidArgument(f"export: {name!r} keeps changing under the exporter")


def _walk(parent: int, names: List[str]) -> int:
    """A new descriptor of parent/names..., opening each step without following a link."""
    fd = os.dup(parent)
    for name in names:
        try:
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def remove_entry(parent: int, name: str) -> None:
    """Remove parent/name, whatever it is, without following a link out of parent.

    A directory is emptied from the bottom up, each level reopened from parent
    by name with O_NOFOLLOW, so a link swapped in at any moment is removed as a
    link.  Holding one descriptor at a time keeps any depth within the fd limit.
    """
    dev = os.fstat(parent).st_dev
    stack = [name]                      # the path from parent to the entry in hand
    for _ in range(1 << 20):
        if not stack:
            return
        try:
            holder = _walk(parent, stack[:-1])
        except OSError as exc:
            if exc.errno not in (errno.ENOENT,) + _NOT_A_DIR:
                raise
            stack.pop()                 # a level above went or turned into a link: handle that level
            continue
        try:
            entry = stack[-1]
            try:
                st = os.stat(entry, dir_fd=holder, follow_symlinks=False)
            except FileNotFoundError:
                stack.pop()
                continue
            if not stat.S_ISDIR(st.st_mode):
                _unlink(holder, entry)
                stack.pop()
                continue
            if st.st_dev != dev:
                raise InvalidArgument(f"export: {'/'.join(stack)!r} is a mount point under the export "
                                      "root; pyalloc will not remove it")
            try:
                fd = os.open(entry, _DIR_FLAGS, dir_fd=holder)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT,) + _NOT_A_DIR:
                    raise
                continue                # it changed since the stat: look again
            try:
                subdir = None
                with os.scandir(fd) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            subdir = subdir or e.name
                        else:
                            _unlink(fd, e.name)
            finally:
                os.close(fd)
            if subdir is not None:
                stack.append(subdir)
                continue
            try:
                os.rmdir(entry, dir_fd=holder)
                stack.pop()
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    stack.pop()
                elif exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise           # ENOTEMPTY: something new arrived; ENOTDIR: swapped; go round
        finally:
            os.close(holder)
    raise InvalidArgument(f"export: {name!r} keeps changing under the exporter")


def _unlink(dirfd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=dirfd)
    except FileNotFoundError:
        pass
    except IsADirectoryError:       # became a directory since it was listed
        remove_entry(dirfd, name)


def write_file(dirfd: int, name: str, data: bytes) -> Tuple[int, int, int]:
    """Replace dirfd/name by a file holding data, in one rename; returns the new file's identity.

    Readers see the old file or the new one.  The temporary file's name cannot be
    guessed, and it is created exclusively, so nothing planted can be written through.
    """
    for _ in range(_TRIES):
        tmp = f".{name[:32]}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o644, dir_fd=dirfd)
        except FileExistsError:
            continue
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                ident = _identity(os.fstat(fd))
            finally:
                os.close(fd)
            for _ in range(_TRIES):
                try:
                    os.replace(tmp, name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
                    return ident
                except OSError as exc:
                    if exc.errno not in _DIR_IN_THE_WAY:
                        raise
                    remove_entry(dirfd, name)       # a directory stands where the file goes
            raise InvalidArgument(f"export: {name!r} keeps changing under the exporter")
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dirfd)
            except OSError:
                pass
            raise
    raise InvalidArgument(f"export: no free temporary name beside {name!r}")


def write_in_place(dirfd: int, name: str, data: bytes) -> Optional[Tuple[int, int, int]]:
    """Rewrite the regular file dirfd/name in its own inode, for readers that hold that inode (a
    single-file bind mount such as ``mount --bind root/proc/meminfo /proc/meminfo``, which a
    rename would leave on the old file for ever).  None when there is no such file to rewrite:
    not there, not a regular file, a link, or a file with other names (a hard link planted
    into the tree could point out of it).

    One pwrite of the whole text, then ftruncate to its length: a reader whose read() falls
    between the two (or inside the pwrite) can see a mix of the old and new text once; the
    next read is whole.  Monitoring tools read these files once per interval, so this is rare
    and short-lived; the rename mode (the default) never shows a mix.
    """
    try:
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dirfd)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            return None
        written = os.pwrite(fd, data, 0)
        if written != len(data):            # a short write: finish it the slow way
            view = memoryview(data)[written:]
            while view:
                view = view[os.pwrite(fd, view, len(data) - len(view)):]
        os.ftruncate(fd, len(data))
        return _identity(os.fstat(fd))
    finally:
        os.close(fd)


def write_atomic(path: PathLike, text: str) -> None:
    """Replace path's contents in one rename: readers see the old file or the new one.

    path's directory is the caller's choice and is followed; the file itself and
    its temporary are never written through a link.
    """
    path = Path(path)
    dirfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        write_file(dirfd, _component(path.name), _encode(text))
    finally:
        os.close(dirfd)


# -- the exporter ----------------------------------------------------------------------------

class Exporter:
    """Keeps one directory current with one machine; rewrites only what changed or went away."""

    def __init__(self, root: PathLike, in_place: bool = False) -> None:
        if not isinstance(in_place, bool):
            raise InvalidArgument(f"export: in_place must be True or False, not {in_place!r}")
        self.in_place = in_place
        try:
            self.root = Path(root)
            # the user may have chosen a link as the root: follow it now, and never again
            self._real = os.path.realpath(os.fspath(root))
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"export: bad root {root!r} ({exc})") from None
        self._written: Dict[str, Tuple[str, Tuple[int, int, int]]] = {}     # rel -> (text, identity)

    def _open_root(self) -> int:
        for _ in range(_TRIES):
            try:
                return os.open(self._real, _DIR_FLAGS)
            except FileNotFoundError:
                os.makedirs(self._real, exist_ok=True)
            except OSError as exc:
                if exc.errno not in _NOT_A_DIR:
                    raise
                raise InvalidArgument(f"export: root {self._real} is not a directory (pyalloc resolved "
                                      "the root once and will not follow or remove what took its place)") from None
        raise InvalidArgument(f"export: root {self._real} keeps changing under the exporter")

    def update(self, m) -> int:
        """Export the machine's current state; returns how many files were rewritten."""
        files = render_tree(m)
        by_dir: Dict[Tuple[str, ...], Dict[str, str]] = {}
        for rel, text in files.items():
            where, _, name = rel.rpartition("/")
            by_dir.setdefault(tuple(where.split("/")), {})[name] = text
        changed = [0]
        for _ in range(8):
            try:
                self._write_tree(by_dir, changed)
                return changed[0]
            except FileNotFoundError:
                pass            # a directory this pass held was removed under it: the next pass remakes it
        raise InvalidArgument(f"export: the tree under {self._real} keeps changing under the exporter")

    def _write_tree(self, by_dir: Dict[Tuple[str, ...], Dict[str, str]], changed: List[int]) -> None:
        fds: Dict[Tuple[str, ...], int] = {(): self._open_root()}
        try:
            for parts in sorted(by_dir):
                dirfd = self._dir(fds, parts)
                present = _files_in(dirfd)
                for name, text in by_dir[parts].items():
                    rel = "/".join(parts + (name,))
                    last = self._written.get(rel)
                    if last is not None and last[0] == text and present.get(name) == last[1]:
                        continue
                    data = _encode(text)
                    ident = write_in_place(dirfd, name, data) if self.in_place and name in present else None
                    self._written[rel] = (text, ident or write_file(dirfd, name, data))
                    changed[0] += 1
            # a destroyed cache's directory goes, as its kobject does
            slab = ("sys", "kernel", "slab")
            keep = {parts[3] for parts in by_dir if parts[:3] == slab}
            slab_fd = self._dir(fds, slab)
            with os.scandir(slab_fd) as it:
                stale = [e.name for e in it if e.name not in keep]
            for entry in stale:
                remove_entry(slab_fd, entry)
                prefix = f"sys/kernel/slab/{entry}/"
                for rel in [r for r in self._written if r.startswith(prefix)]:
                    del self._written[rel]
        finally:
            for fd in fds.values():
                os.close(fd)

    def _dir(self, fds: Dict[Tuple[str, ...], int], parts: Tuple[str, ...]) -> int:
        """The directory root/parts..., opened step by step from the nearest one already open."""
        if parts not in fds:
            parent = self._dir(fds, parts[:-1])
            fds[parts] = _open_dir(parent, parts[-1])
        return fds[parts]


def _identity(st: os.stat_result) -> Tuple[int, int, int]:
    """What tells the file this exporter wrote from one put in its place: a freed inode
    number comes back at once on some file systems, so the inode alone is not enough."""
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _files_in(dirfd: int) -> Dict[str, Tuple[int, int, int]]:
    """The regular files of a directory, name -> identity (links, directories and the rest left out)."""
    out = {}
    with os.scandir(dirfd) as it:
        for e in it:
            try:
                if e.is_file(follow_symlinks=False):
                    out[e.name] = _identity(e.stat(follow_symlinks=False))
            except FileNotFoundError:
                pass
    return out


def export(m, root: PathLike, exporter: Optional[Exporter] = None, in_place: bool = False) -> Path:
    """Write the machine's proc/, sys/kernel/slab/ and sys/kernel/debug/ files under root; with
    *in_place*, files already there are rewritten in their own inode (:func:`write_in_place`)."""
    exporter = exporter or Exporter(root, in_place)
    exporter.update(m)
    return exporter.root
