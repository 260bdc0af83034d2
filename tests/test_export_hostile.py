"""The export stays inside its root: links planted below it are replaced, never followed.

Each test plants something under the root that points at a sentinel directory
outside it, exports, and checks that the sentinel (names, contents, modes and
mtimes of everything in it, and its own mtime) did not change and that the
tree under the root is what the machine shows.
"""

import os
import re
import shutil
import stat

import pytest

import pyalloc
from pyalloc.tools import export, serve
from pyalloc.errors import InvalidArgument


def fingerprint(top):
    """Everything about a directory tree that a stray write, unlink or rename would change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [""] + dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            body = None
            if stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    body = f.read()
            out[os.path.relpath(path, top)] = (st.st_mode, st.st_ino, st.st_mtime_ns, body)
    return out


@pytest.fixture
def places(tmp_path):
    """(root, sentinel): an empty export root and a populated directory beside it."""
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside"
    (outside / "keep" / "deeper").mkdir(parents=True)
    (outside / "meminfo").write_text("precious\n")
    (outside / "keep" / "file").write_text("do not delete\n")
    (outside / "keep" / "deeper" / "file").write_text("nor this\n")
    (outside / "dentry").mkdir()                      # a name the export uses, outside the root
    (outside / "dentry" / "objects").write_text("not pyalloc's\n")
    return root, outside


def assert_tree_matches(m, root):
    files = export.render_tree(m)
    for rel, text in files.items():
        path = root / rel
        assert not any(p.is_symlink() for p in [path, *path.parents] if root in p.parents), rel
        assert path.read_bytes() == text.encode("utf-8"), rel
    slab = root / "sys/kernel/slab"
    assert sorted(os.listdir(slab)) == sorted({rel.split("/")[3] for rel in files if rel.startswith("sys/kernel/slab/")})
    leftovers = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                 if re.match(r"^\..*\.[0-9a-f]{16}\.tmp$", f)]          # the exporter's own temporaries
    assert not leftovers


def test_symlinked_slab_directory_is_replaced(backend, places):
    root, outside = places
    (root / "sys/kernel").mkdir(parents=True)
    os.symlink(outside, root / "sys/kernel/slab")
    before = fingerprint(outside)
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        m.export(root)
        assert fingerprint(outside) == before          # nothing written there, no directory of it removed
        assert not (root / "sys/kernel/slab").is_symlink()
        assert_tree_matches(m, root)


def test_symlinked_proc_is_replaced(backend, places):
    root, outside = places
    os.symlink(outside, root / "proc")
    before = fingerprint(outside)
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        m.export(root)
        assert fingerprint(outside) == before
        assert (outside / "meminfo").read_text() == "precious\n"
        assert_tree_matches(m, root)


def test_symlinks_at_every_file_are_replaced_not_written_through(backend, places):
    root, outside = places
    (root / "proc").mkdir()
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        for rel in export.render_tree(m):
            if rel.startswith("proc/") and rel.count("/") == 1:
                os.symlink(outside / "meminfo", root / rel)
        before = fingerprint(outside)
        m.export(root)
        assert fingerprint(outside) == before
        assert_tree_matches(m, root)


def test_planted_temporary_file_links_are_not_opened(backend, places):
    root, outside = places
    (root / "proc").mkdir()
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        for rel in export.render_tree(m):
            if rel.startswith("proc/") and rel.count("/") == 1:
                name = rel.split("/")[1]
                # the names an exporter that used its pid would pick, for pids near this one
                for pid in range(os.getpid() - 2, os.getpid() + 3):
                    os.symlink(outside / "meminfo", root / "proc" / f".{name}.{pid}.tmp")
        before = fingerprint(outside)
        m.export(root)
        assert fingerprint(outside) == before
        assert (outside / "meminfo").read_text() == "precious\n"
        for rel, text in export.render_tree(m).items():
            assert (root / rel).read_bytes() == text.encode()


def test_stale_cache_entry_linking_to_a_directory_keeps_what_it_points_at(backend, places):
    """A link where a destroyed cache's directory was, and links inside such a directory,
    go as links: the files they point at stay."""
    root, outside = places
    slab = root / "sys/kernel/slab"
    slab.mkdir(parents=True)
    os.symlink(outside, slab / "gone_cache")
    (slab / "old_cache").mkdir()
    os.symlink(outside / "keep", slab / "old_cache" / "objects")
    os.symlink(outside, slab / "old_cache" / "sub")
    before = fingerprint(outside)
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        m.export(root)
        assert fingerprint(outside) == before
        assert not os.path.lexists(slab / "gone_cache")
        assert not os.path.lexists(slab / "old_cache")
        assert_tree_matches(m, root)


def test_directories_and_fifos_in_the_way_are_replaced(backend, places):
    root, outside = places
    (root / "proc" / "meminfo" / "inner").mkdir(parents=True)       # a directory where a file goes
    os.symlink(outside, root / "proc" / "meminfo" / "inner" / "link")
    (root / "sys").mkdir()
    os.mkfifo(root / "sys" / "kernel")                              # a fifo where a directory goes
    before = fingerprint(outside)
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        m.export(root)
        assert fingerprint(outside) == before
        assert_tree_matches(m, root)


def test_unicode_cache_name_exports_as_utf8(backend, tmp_path):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        c = m.kmem_cache_create("café", 64)
        d = m.kmem_cache_create("naïve/ünï", 32)
        m.kmem_cache_alloc(c, "GFP_KERNEL")
        m.export(tmp_path)
        assert (tmp_path / "sys/kernel/slab/café/objects").read_text() == m.sysfs("kernel/slab/café/objects")
        assert (tmp_path / "sys/kernel/slab/naïve!ünï/object_size").read_text() == "32\n"
        assert not (tmp_path / "sys/kernel/slab/naïve").exists()     # '/' became '!', as in a kobject name
        assert "café" in (tmp_path / "proc/slabinfo").read_text(encoding="utf-8")
        assert_tree_matches(m, tmp_path)
        m.kmem_cache_destroy(d)
        m.check()


@pytest.mark.parametrize("name", [".", "..", "\U0001d538" * 64])
def test_names_that_cannot_be_a_sysfs_directory_are_refused(backend, name):
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        before = m.proc("slabinfo")
        with pytest.raises(InvalidArgument, match="bad name"):
            m.kmem_cache_create(name, 64)
        assert m.proc("slabinfo") == before
        m.check()


def test_slash_names_stay_inside_the_slab_directory(backend, tmp_path):
    root = tmp_path / "root"
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        for name in ("/", "../x", "./..", "a/../../b"):
            m.kmem_cache_create(name, 16)
        m.export(root)
        assert sorted(os.listdir(tmp_path)) == ["root"]
        assert sorted(os.listdir(root / "sys/kernel")) == ["debug", "slab"]
        for name in ("!", "..!x", ".!..", "a!..!..!b"):
            assert (root / "sys/kernel/slab" / name / "objects").read_text() == "0\n"
        assert_tree_matches(m, root)


def test_tree_removed_between_refreshes_is_written_again(backend, tmp_path):
    root = tmp_path / "root"
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        damage = [lambda: shutil.rmtree(root),
                  lambda: shutil.rmtree(root / "sys"),
                  lambda: os.unlink(root / "proc/buddyinfo"),
                  lambda: shutil.rmtree(root / "sys/kernel/slab/churn_dentry"),
                  lambda: (shutil.rmtree(root / "proc"), os.symlink(tmp_path, root / "proc"))]
        before = None

        def steps():
            nonlocal before
            work = serve.churn(m, ops=50)
            for i, harm in enumerate(damage):
                yield next(work)
                harm()
                before = fingerprint(tmp_path / "elsewhere")
                yield next(work)

        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "f").write_text("x")
        silent = type("L", (), {"write": lambda s, t: None, "flush": lambda s: None})()
        ex = export.Exporter(root)
        for tick, _ in enumerate(steps()):
            ex.update(m)
            assert_tree_matches(m, root)
        assert tick == 2 * len(damage) - 1
        assert fingerprint(tmp_path / "elsewhere") == before
        assert serve.serve(m, root, interval=0.001, steps=iter([1]), ticks=1, log=silent) == 1


def test_serve_restores_a_removed_root(backend, tmp_path):
    root = tmp_path / "root"
    silent = type("L", (), {"write": lambda s, t: None, "flush": lambda s: None})()
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        work = serve.churn(m, ops=50)

        def steps():
            for _ in range(3):
                next(work)
                shutil.rmtree(root)
                yield 1

        assert serve.serve(m, root, interval=0.001, steps=steps(), ticks=3, log=silent) == 3
        assert_tree_matches(m, root)


def test_root_that_is_a_users_symlink_is_followed_once(backend, tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    os.symlink(real, link)
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        ex = export.Exporter(link)
        ex.update(m)
        assert (real / "proc/meminfo").read_text() == m.proc("meminfo")
        # the root's place taken by a link after the start: refused, its target untouched
        other = tmp_path / "other"
        other.mkdir()
        shutil.rmtree(real)
        os.symlink(other, real)
        with pytest.raises(InvalidArgument, match="not a directory"):
            ex.update(m)
        assert os.listdir(other) == []


def test_root_that_is_a_file_is_refused(backend, tmp_path):
    (tmp_path / "f").write_text("mine")
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        with pytest.raises(InvalidArgument, match="not a directory"):
            m.export(tmp_path / "f")
        assert (tmp_path / "f").read_text() == "mine"


def test_a_racing_writer_below_the_root_cannot_redirect_the_export(backend, places):
    """Another user swapping directories for links while updates run: every update
    succeeds and nothing outside the root changes."""
    import threading

    root, outside = places
    before = fingerprint(outside)
    stop = threading.Event()
    swaps = [0]

    def opened(rel):
        """rel's directory opened without following links (the racer must not plant through its own)."""
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        for part in filter(None, rel.split("/")):
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            finally:
                os.close(fd)
            fd = child
        return fd

    def racer():
        i = 0
        while not stop.wait(0.002):
            i += 1
            for where, name in (("", "proc"), ("sys/kernel", "slab"), ("sys/kernel/slab", "kmalloc-64"), ("", "sys"),
                                ("proc", f".meminfo.{os.getpid()}.tmp")):
                try:
                    fd = opened(where)
                except OSError:
                    continue
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        os.rename(name, f"moved{i}{name}", src_dir_fd=fd, dst_dir_fd=fd)   # aside, inside the root
                    else:
                        os.unlink(name, dir_fd=fd)
                except OSError:
                    pass
                try:
                    os.symlink(outside / "meminfo" if name.endswith(".tmp") else outside, name, dir_fd=fd)
                    swaps[0] += 1
                except OSError:
                    pass
                finally:
                    os.close(fd)

    with pyalloc.Machine(mem="64M", backend=backend) as m:
        ex = export.Exporter(root)
        t = threading.Thread(target=racer)
        t.start()
        try:
            for _ in range(8):
                m.kmalloc(64, "GFP_KERNEL")
                ex.update(m)
        finally:
            stop.set()
            t.join()
        assert swaps[0] > 0
        assert fingerprint(outside) == before
        ex.update(m)
        assert_tree_matches(m, root)


def test_a_directory_removed_during_an_update_is_made_again(backend, tmp_path, monkeypatch):
    root = tmp_path / "root"
    real_write = export.write_file
    removed = []

    def write_then_remove(dirfd, name, data):
        ident = real_write(dirfd, name, data)
        if not removed and (root / "proc").is_dir():
            removed.append(name)
            shutil.rmtree(root / "proc")        # the directory this write went into, mid-update
        return ident

    monkeypatch.setattr(export, "write_file", write_then_remove)
    with pyalloc.Machine(mem="64M", backend=backend) as m:
        export.Exporter(root).update(m)
        assert removed
        assert_tree_matches(m, root)
