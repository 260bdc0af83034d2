"""Machine snapshots: ``m.save(path)``, ``Machine.load(path)``, pickling and deepcopy.

A new core section: a save_/load_ pair in csrc/snapshot.c <-> model/snapshot.py, its rules in
model/snapshot_check.py, then bump the CORE version; Python-side state goes in snapshot_state.py.

A snapshot is one file, the same whichever backend wrote it::

    header    b"PYASNAP\\0", format version (u32 LE), 0 (u32)
    sections  tag (4 ASCII bytes), payload length (u64 LE), CRC-32 of the payload (u32 LE), payload
      INFO    JSON: the Machine's parameters (mem, cpus, swap, slub_debug, slab_merge, min_free_kbytes)
              and what the file holds (the backend that wrote it, page and section counts)
      CORE    the core's canonical state, word for word as pyalloc/model/snapshot.py specifies it
              (buddy free lists and page descriptors, caches, slabs and freelists, cpu slabs, the
              kernel PGD, LRU lists, mms, swap slots and contents, file contents on disk, counters)
      MEM     a chunk of memory: n (u64), n pfns (u64 each), n x 4096 bytes -- only pages that
              hold a non-zero byte; page tables live in memory and travel here
      PYST    the shared layer's state (vmalloc areas, cache names, dmesg, processes and files,
              the warned-once set, callers) as JSON with a fixed schema (pyalloc/snapshot_state.py):
              plain data, checked value by value against the loaded core; nothing in a
              snapshot names a class or runs code
      END     empty: a file without it was cut short

The clock, counters and PSI state are core words, so a loaded machine prints
the same timestamps and /proc text as the original would have.  Reading
checks the magic, the version (a newer one is refused, and so is version 1,
whose Python-side state was a pickle), every length (against the bytes the
file really has, before anything is allocated) and checksum, and the whole core against the machine's invariants (check())
before the machine is handed out; any fault raises :class:`SnapshotError` and
nothing is left behind.  Saving writes a temporary file beside *path* and
renames it, so a failed save leaves any earlier file as it was.

The work and the file size follow what the machine touched, not its size:
the C core finds touched memory and descriptors with mincore() on its
MAP_NORESERVE mappings (see csrc/snapshot.c).
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zlib
from typing import TYPE_CHECKING

from .. import errors
from . import snapshot_state
from ..errors import PyallocError, SnapshotError
from .state import MachineState

if TYPE_CHECKING:
    from .machine import Machine

MAGIC = b"PYASNAP\0"
VERSION = 5                     # 2: the Python-side state is schema'd JSON (1 held a pickle);
                                # 3: CORE's counter blocks carry their counts (2 is upgraded on reading);
                                # 4: seed, kconfig and the per-CPU layers (2 and 3 are upgraded)
                                # 5: reclaim over time: vm sysctls, writeback, working set, ... (2-4 upgraded)
INFO_MAX = 1 << 16              # an INFO section is a few hundred bytes
READ_CHUNK = 1 << 26            # a section from a stream of unknown length grows by this much at most
_HEADER = struct.Struct("<8sII")
_SECTION = struct.Struct("<4sQI")
MEM_BATCH = 4096                # pages per MEM section (16 MiB)

# -- writing ---------------------------------------------------------------------------------

def _section(f, tag: bytes, payload) -> None:
    f.write(_SECTION.pack(tag, len(payload), zlib.crc32(payload)))
    f.write(payload)


def _core_check(core):
    """The loaded core's structural check: None, or the broken invariant's message.  Findings about
    memory a program may damage at run time are data the machine carries, not a broken file: page
    tables scribbled through the direct map are not looked at here (check() reports them after the
    load as before), and damaged slub_debug object bytes have their events drained unreported."""
    r = core.snapshot_check()
    if r == errors.ECORRUPT:
        core.take_events()
        return None
    return r


def host_has_swap() -> bool:
    """Whether this host swaps: then mincore() cannot tell a swapped-out page from an untouched one,
    and the C core is asked to look at every page (slower, never blind)."""
    try:
        with open("/proc/swaps") as f:
            return len(f.read().splitlines()) > 1
    except OSError:
        return True             # cannot tell: be safe


def write(m, f, exhaustive=None) -> dict:
    """Write machine *m* to the binary file *f*, memory chunk by chunk; returns what was written.
    exhaustive: look at every page (default: when the host has swap)."""
    with m._lock:           # the shared layer's state and the core words describe one moment
        return _write_locked(m, f, host_has_swap() if exhaustive is None else exhaustive)


def _write_locked(m, f, exhaustive: bool) -> dict:
    m._live()
    core = m._core.snapshot_save(exhaustive)
    if isinstance(core, int):
        errors.raise_for(core, "save: the core refused to describe itself")
    pyst = snapshot_state.dump(m)
    vm = m._core.vm_info()
    info = {"mem": m.mem, "cpus": m.cpus, "swap": m.swap, "slub_debug": m.slub_debug, "slab_merge": m.slab_merge,
            "min_free_kbytes": vm["min_free_kbytes"], "saved_by": m.backend}
    f.write(_HEADER.pack(MAGIC, VERSION, 0))
    _section(f, b"INFO", json.dumps(info, sort_keys=True).encode())
    _section(f, b"CORE", core)
    pages = sections = 0
    for pfns, data in m._core.snapshot_pages(MEM_BATCH, exhaustive):
        head = struct.pack(f"<Q{len(pfns)}Q", len(pfns), *pfns)
        f.write(_SECTION.pack(b"MEM ", len(head) + len(data), zlib.crc32(data, zlib.crc32(head))))
        f.write(head)
        f.write(data)
        pages += len(pfns)
        sections += 1
    _section(f, b"PYST", pyst)
    _section(f, b"END ", b"")
    return dict(info, pages=pages, mem_sections=sections, core_bytes=len(core))


def save(m, path) -> dict:
    """m.save(path): the whole machine into one file (atomically: a temporary file, then a rename)."""
    path = os.fspath(path)
    m._live()
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".pyalloc-snap-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            info = write(m, f)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return info


def to_bytes(m) -> bytes:
    buf = io.BytesIO()
    write(m, buf)
    return buf.getvalue()


# -- reading ---------------------------------------------------------------------------------

class _Sections:
    """The sections of a snapshot file, one at a time, each checked whole before it is handed out."""

    def __init__(self, f, where: str) -> None:
        self.f, self.where, self.pos = f, where, 0
        self.size = _stream_size(f)       # None: a pipe, read as it comes
        head = self._read(_HEADER.size, "the header")
        magic, version, _ = _HEADER.unpack(head)
        self.version = version
        if magic != MAGIC:
            raise SnapshotError(f"{where}: not a pyalloc snapshot (bad magic {bytes(magic)!r})")
        if version == 1:
            raise SnapshotError(f"{where}: snapshot format version 1 is no longer read: its Python-side state "
                                "is a pickle, and loading a pickle can run code; save the machine again "
                                f"with this pyalloc (version {VERSION})")
        if version > VERSION:
            raise SnapshotError(f"{where}: snapshot format version {version} is newer than this pyalloc reads "
                                f"(version {VERSION}); upgrade pyalloc")
        if version < 1:
            raise SnapshotError(f"{where}: bad snapshot format version {version}")

    def _short(self, what: str, got: int, n: int) -> SnapshotError:
        return SnapshotError(f"{self.where}: cut short in {what} at byte {self.pos + got} "
                             f"({n - got} of {n} bytes missing)")

    def _read(self, n: int, what: str):
        if self.size is not None and n > self.size - self.pos:
            raise self._short(what, max(0, self.size - self.pos), n)
        # a length the file cannot back costs no more host memory than the bytes it really has
        buf = bytearray(min(n, READ_CHUNK) if self.size is None else n)
        got = 0
        while got < n:
            if got == len(buf):
                buf.extend(bytes(min(n - got, len(buf))))
            more = self.f.readinto(memoryview(buf)[got:])
            if not more:
                raise self._short(what, got, n)
            got += more
        self.pos += n
        return buf

    def next(self, expect: tuple):
        """(tag, payload) of the next section, which must be one of *expect*."""
        tag, length, crc = _SECTION.unpack(self._read(_SECTION.size, "a section header"))
        if tag not in expect:
            raise SnapshotError(f"{self.where}: section {tag!r} at byte {self.pos - _SECTION.size} where "
                                f"{' or '.join(t.decode().strip() for t in expect)} belongs")
        if length > 1 << 40 or (tag == b"INFO" and length > INFO_MAX):
            raise SnapshotError(f"{self.where}: section {tag!r} announces {length} bytes")
        payload = self._read(length, f"section {tag.decode().strip()}")
        if zlib.crc32(payload) != crc:
            raise SnapshotError(f"{self.where}: section {tag!r} at byte {self.pos - length} is damaged "
                                "(checksum mismatch)")
        return tag, payload

    def end(self) -> None:
        if self.f.read(1):
            raise SnapshotError(f"{self.where}: bytes after the END section")


def _stream_size(f) -> int | None:
    """The bytes from f's position to its end, when f can tell (a file, a buffer), else None."""
    try:
        if not f.seekable():
            return None
        here = f.tell()
        end = f.seek(0, io.SEEK_END)
        f.seek(here)
        return end
    except (OSError, AttributeError, ValueError):
        return None


def _read_sections(data, where: str) -> dict:
    """{tag: [payloads]} of a whole, undamaged snapshot held in memory (tests compare them)."""
    r = _Sections(io.BytesIO(data), where)
    out: dict = {}
    while True:
        tag, payload = r.next((b"INFO", b"CORE", b"MEM ", b"PYST", b"END "))
        if tag == b"END ":
            r.end()
            return out
        out.setdefault(tag, []).append(payload)


def _info(payload, where: str) -> dict:
    try:
        info = json.loads(bytes(payload).decode("utf-8"))
        if type(info) is not dict:
            raise TypeError("not an object")
        for key, kind in (("mem", int), ("cpus", int), ("swap", int), ("slub_debug", str), ("slab_merge", bool),
                          ("min_free_kbytes", int), ("saved_by", str)):
            if type(info.get(key)) is not kind:
                raise TypeError(f"{key} is missing or not {kind.__name__}")
        if len(info["slub_debug"]) > 1024 or info["saved_by"] not in ("c", "model"):
            raise ValueError("slub_debug or saved_by out of range")
        for key, hi in (("mem", 1 << 42), ("cpus", 4096), ("swap", 1 << 50), ("min_free_kbytes", 1 << 40)):
            if not 0 <= info[key] <= hi:
                raise ValueError(f"{key} out of range")
    except (ValueError, TypeError, RecursionError) as exc:
        raise SnapshotError(f"{where}: bad INFO section ({str(exc)[:100]})") from None
    return info


def read(data, backend=None, where: str = "snapshot"):
    """A new Machine from snapshot bytes."""
    return read_file(io.BytesIO(data), backend, where)


def read_file(f, backend=None, where: str = "snapshot"):
    """A new Machine from a binary file positioned at a snapshot's first byte."""
    from .machine import Machine, PAGE_SHIFT, PAGE_SIZE, _hot_paths, _load_core
    from .slab import _slab_hot_paths, parse_slub_debug
    from ..threads import new_lock
    sections = _Sections(f, where)
    info = _info(sections.next((b"INFO",))[1], where)
    if backend is None:
        backend = info["saved_by"]
    core_cls = _load_core(backend)              # InvalidArgument for a bad name, before any work
    mem = info["mem"]
    if mem <= 0 or mem % PAGE_SIZE or info["cpus"] < 1 or info["swap"] < 0 or info["swap"] % PAGE_SIZE:
        raise SnapshotError(f"{where}: bad machine parameters in INFO")
    core_words = sections.next((b"CORE",))[1]
    m = Machine.__new__(Machine)
    m._closed = True
    m._lock = new_lock()
    m.backend = backend
    try:
        m._core = core = core_cls(mem >> PAGE_SHIFT, info["cpus"], info["min_free_kbytes"])
    except PyallocError as exc:
        raise SnapshotError(f"{where}: cannot build the machine it describes: {exc}") from None
    try:
        if info["swap"]:
            rc = core.set_swap(info["swap"] >> PAGE_SHIFT)
            if rc:
                raise SnapshotError(f"{where}: cannot set up {info['swap']} bytes of swap")
        from ..model.snapshot_check import Corrupt, validate
        from ..model.snapshot import upgrade_v2, upgrade_v3, upgrade_v4
        try:
            if sections.version == 2:
                core_words = upgrade_v2(core_words)
            if sections.version <= 3:
                core_words = upgrade_v3(core_words)
            if sections.version <= 4:
                core_words = upgrade_v4(core_words)
            validate(core_words, mem >> PAGE_SHIFT, info["cpus"], info["swap"] >> PAGE_SHIFT)
        except Corrupt as exc:
            raise SnapshotError(f"{where}: the core section does not describe a valid machine ({exc})") from None
        rc = core.snapshot_load(core_words)
        del core_words
        if rc:
            raise SnapshotError(f"{where}: the core section does not describe a valid machine "
                                f"({errors.STATUS_NAMES.get(rc, rc)})")
        while True:
            tag, payload = sections.next((b"MEM ", b"PYST"))
            if tag == b"PYST":
                break
            if len(payload) < 8:
                raise SnapshotError(f"{where}: a MEM section is too short")
            (n,) = struct.unpack_from("<Q", payload, 0)
            if len(payload) != 8 + 8 * n + (n << 12):
                raise SnapshotError(f"{where}: a MEM section's length does not match its {n} pages")
            pfns = struct.unpack_from(f"<{n}Q", payload, 8)
            if core.snapshot_put_pages(pfns, memoryview(payload)[8 + 8 * n:]):
                raise SnapshotError(f"{where}: a MEM section names a page outside memory")
        pyst = payload
        sections.next((b"END ",))
        sections.end()
        # instance closures shadow the documented methods (buddy.py); mypy forbids that by default
        m.alloc_pages, m.free_pages = _hot_paths(m, core)  # type: ignore[method-assign]
        m.kmalloc, m.kfree, m.kmem_cache_alloc, m.kmem_cache_free = _slab_hot_paths(m, core)  # type: ignore[method-assign]
        # the loaded core must be as sound as the saved one was (a machine the user damaged
        # through the direct map loads damaged, and check() says so as it did before)
        # the two backends word the same broken invariant differently: one message for both
        if _core_check(core) is not None:
            raise SnapshotError(f"{where}: the loaded machine is inconsistent (its core fails check())")
        m.mem, m.nr_pages, m.cpus, m.swap = mem, mem >> PAGE_SHIFT, info["cpus"], info["swap"]
        m.slub_debug, m.slab_merge = info["slub_debug"], info["slab_merge"]
        m._debug_flags, m._debug_names, _ = parse_slub_debug(m.slub_debug)
        snapshot_state.restore(m, pyst, where)
        m._closed = False
    except BaseException:
        m._closed = False
        m.close()
        raise
    return m


def load(path, backend=None):
    """Machine.load(path, backend=None): the machine saved at *path*, on *backend*
    (default: the backend that saved it)."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        return read_file(f, backend, where=path)


def _unpickle(data: bytes, backend: str):
    return read(data, backend, where="pickled Machine")


def reduce(m):
    """Machine.__reduce_ex__: a pickle holds the snapshot bytes and the backend."""
    return _unpickle, (to_bytes(m), m.backend)


def clone(m):
    """copy.deepcopy(m): a second, independent machine in the same state."""
    return read(to_bytes(m), m.backend, where="deepcopy")


class SnapshotAPI(MachineState):
    """m.save(path) and Machine.load(path)."""

    def save(self, path: str | os.PathLike[str]) -> dict:
        """Write the whole machine to *path* (format: pyalloc.machine.snapshot).  Returns what was
        written: the machine's parameters, ``pages`` (memory pages saved) and sizes."""
        return save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], backend: str | None = None) -> Machine:
        """A machine saved with save(), on *backend* ("c" or "model"; default the one that
        saved it).  Raises SnapshotError for a file that is not a whole, undamaged snapshot
        of a version this pyalloc reads."""
        return load(path, backend)
