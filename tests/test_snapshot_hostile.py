"""Hostile CORE sections: CRC-valid files whose core words lie.  Both backends refuse exactly the
same files with exactly the same message; the C core is safe on such words even when called
directly; a machine other threads use still snapshots whole."""

import importlib.util
import json
import pickle
import random
import struct
import threading
from pathlib import Path

import pytest

import pyalloc
from pyalloc.machine import snapshot
from pyalloc.errors import SnapshotError
from pyalloc.model.snapshot import CACHE_FIELDS, MACHINE_SCALARS
from pyalloc import _abi
from pyalloc._abi import NR_COSTS, NR_CTRS
from conftest import c_core_available

_spec = importlib.util.spec_from_file_location("fuzz_snapshot",
                                               Path(__file__).resolve().parent.parent / "fuzz" / "fuzz_snapshot.py")
fz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fz)

ZONE_WORDS = 5 + 3 * 11 * 5 + 5 + 3 + 4 + 5 + 5 + 2 + 4 + 1
NIL = (1 << 64) - 1


def busy(backend):
    m = pyalloc.Machine(mem="16M", cpus=2, swap="4M", backend=backend)
    c = m.kmem_cache_create("hostile", 100, 0, "SLAB_HWCACHE_ALIGN")
    objs = [m.kmem_cache_alloc(c, "GFP_KERNEL") for _ in range(50)]
    m.kmem_cache_free(c, objs[0])
    p = m.spawn("p")
    m.touch(p, 200)
    m.write_file("/f", 20)
    return m


def layout(words):
    """Word indices of the records a test aims at."""
    i = len(MACHINE_SCALARS) + 512
    i += 1 + (words[i] + 7) // 8                        # pageblock blob
    zones = i
    i += 5 * ZONE_WORDS + 1 + NR_CTRS + 1 + NR_COSTS + 8        # each counter block has its count
    npages = words[i]
    pages = i + 1
    i = pages + 4 * npages
    i += 1 + 3 * words[i]                               # rmap
    nr_ids, i = words[i], i + 1
    caches = {}
    cpus = words[1]
    for cid in range(nr_ids):
        alive, i = words[i], i + 1
        if not alive:
            continue
        caches[cid] = i
        i += len(CACHE_FIELDS)
        i += 1 + words[i] + 2 * cpus
    i += 1 + words[i]                                   # creation order
    i += 4 * 14                                         # kmalloc table
    nslabs, i = words[i], i + 1
    for _ in range(nslabs):
        i += 8
        for _ in range(2):
            i += 1 + (words[i] + 7) // 8
    nmms, i = words[i], i + 1
    mms = []
    for _ in range(nmms):
        mms.append(i)
        i += 7
        i += 1 + words[i]
        nd, i = words[i], i + 1
        i += nd * (2 + 512)
    return {"zones": zones, "pages": pages, "npages": npages, "caches": caches, "mms": mms}


def edit_core(blob, fn):
    core = fz.core_of(blob)
    w = list(struct.unpack(f"<{len(core) // 8}Q", core))
    fn(w, layout(w))
    return fz.with_core(blob, struct.pack(f"<{len(w)}Q", *w))


def refusal(blob, backend):
    with pytest.raises(SnapshotError) as exc:
        snapshot.read(blob, backend)
    return str(exc.value)


@pytest.fixture(scope="module")
def saved():
    out = {}
    for b in ("c", "model"):
        if b == "c" and not c_core_available():
            continue
        m = busy(b)
        out[b] = snapshot.to_bytes(m)
        m.close()
    return out


def field(name):
    return CACHE_FIELDS.index(name)


def user_cache(lay):
    return max(lay["caches"])                           # the test's own cache, created last


MUTANTS = {
    "cache size 8 MiB": (lambda w, lay: w.__setitem__(lay["caches"][user_cache(lay)] + field("size"), 8 << 20),
                         "size is 8388608"),
    "objects inconsistent with the slab order": (
        lambda w, lay: w.__setitem__(lay["caches"][user_cache(lay)] + field("objects"),
                                     w[lay["caches"][user_cache(lay)] + field("objects")] + 1), "objects is"),
    "mm nr_pages beyond its entries": (lambda w, lay: w.__setitem__(lay["mms"][0] + 2, w[lay["mms"][0] + 2] + 100),
                                       "entries for"),
    "page order 64": (lambda w, lay: w.__setitem__(lay["pages"] + 3, (w[lay["pages"] + 3] & ~0xff00) | 64 << 8),
                      "order, kind or refcount out of range"),
    "page kind unknown": (lambda w, lay: w.__setitem__(lay["pages"] + 3, w[lay["pages"] + 3] | 0x80 << 16),
                          "order, kind or refcount out of range"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_named_mutant_is_refused_alike(saved, backend, name):
    fn, text = MUTANTS[name]
    for blob in saved.values():
        msg = refusal(edit_core(blob, fn), backend)
        assert "the core section does not describe a valid machine" in msg and text in msg, msg


def test_named_mutants_refused_with_one_message(saved):
    if "c" not in saved:
        pytest.skip("the C core is not built")
    for name, (fn, _) in MUTANTS.items():
        blob = edit_core(saved["c"], fn)
        assert refusal(blob, "c") == refusal(blob, "model"), name


def test_info_core_check_cannot_excuse_a_broken_core(saved, backend):
    """A file cannot switch the final check off: whatever INFO says, a core that fails check() is refused."""
    for blob in saved.values():
        def free_count(w, lay):
            w[lay["zones"] + 5 + 110 + 55 + 5] += 1        # zone DMA's nr_free_pages (16 MiB is all DMA)
        bad = edit_core(blob, free_count)
        secs = fz.sections(bad)
        info = json.loads(secs[0][1])
        # the finding exactly as the core's own check() words it: what an old loader compared INFO with
        from pyalloc.machine.machine import _load_core
        core = _load_core(backend)(info["mem"] >> 12, info["cpus"], info["min_free_kbytes"])
        try:
            if info["swap"]:
                assert core.set_swap(info["swap"] >> 12) == 0
            assert core.snapshot_load(fz.core_of(bad)) == 0           # the words alone are in range
            finding = core.check()
        finally:
            core.close()
        assert isinstance(finding, str) and "nr_free_pages" in finding
        info["core_check"] = finding
        forged = fz.seal(bad[:fz.HEADER], [(b"INFO", json.dumps(info).encode())] + secs[1:])
        assert "the loaded machine is inconsistent" in refusal(forged, backend)


def test_the_c_core_refuses_hostile_words_by_itself(saved):
    """The C loader range-checks what it stores even when nothing ran before it."""
    if "c" not in saved:
        pytest.skip("the C core is not built")
    from pyalloc._core import ffi, lib
    for name, (fn, _) in MUTANTS.items():
        core = fz.core_of(edit_core(saved["c"], fn))
        info = json.loads(fz.sections(saved["c"])[0][1])
        out = ffi.new("pa_machine **")
        assert lib.pa_machine_new(4096, 2, info["min_free_kbytes"], 0, _abi.KCONFIG_DEFAULT, out) == 0
        m = out[0]
        try:
            assert lib.pa_set_swap(m, 1024) == 0
            assert lib.pa_snapshot_load(m, ffi.from_buffer(core), len(core)) == pyalloc.errors.EINVAL, name
        finally:
            lib.pa_machine_close(m)


def test_seeded_mutants_both_backends_agree(saved):
    """About 200 CRC-valid random mutants: the same verdict and message from both backends."""
    if "c" not in saved:
        pytest.skip("the C core is not built")
    rnd = random.Random(14)
    blob = saved["c"]
    verdicts = set()
    for _ in range(200):
        mutant = fz.with_core(blob, fz.mutate(fz.core_of(blob), rnd))
        got = []
        for b in ("c", "model"):
            try:
                snapshot.read(mutant, b).close()
                got.append("loaded")
            except SnapshotError as exc:
                got.append(str(exc))
        assert got[0] == got[1]
        verdicts.add(got[0] == "loaded")
    assert verdicts == {True, False}


def test_snapshot_of_a_machine_other_threads_use_loads(backend):
    """pickle.dumps while other threads allocate and free: every snapshot loads and checks."""
    m = pyalloc.Machine(mem="16M", cpus=2, backend=backend)
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            pfn = m.alloc_pages("GFP_KERNEL", 1)
            a = m.kmalloc(200, "GFP_KERNEL")
            m.kfree(a)
            if pfn is not None:
                m.free_pages(pfn, 1)

    threads = [threading.Thread(target=churn) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        blobs = [pickle.dumps(m) for _ in range(8)]
    finally:
        stop.set()
        for t in threads:
            t.join()
    for blob in blobs:
        copy = pickle.loads(blob)
        copy.check()
        copy.close()
    m.close()
