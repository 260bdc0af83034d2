"""Threads: what makes one Machine safe to share, and what it promises.

Every operation on a Machine is atomic with respect to every other operation on
the same machine, on both backends, and two machines never wait for each other:

* the C core takes a per-machine lock inside every ``pa_*`` entry point
  (csrc/lock.c, ``PA_ENTRY`` in csrc/internal.h), because cffi drops the GIL
  around each call and the hot paths call C straight from their closures;
* the pure model takes a per-machine Python lock around every entry of
  :class:`pyalloc.model.ModelCore` (:func:`locked_entry` below);
* the shared layer (this module's :func:`serialize`) holds a per-machine
  re-entrant lock across every public method of :class:`pyalloc.Machine`, so
  compound operations (vmalloc: range, page array, pages, page tables; krealloc;
  kmem_cache_create; a failure report) and the Python-side bookkeeping (vmalloc
  areas, cache names, the kernel log) are never seen half done.  The
  per-call hot paths (alloc_pages, free_pages, kmalloc, kfree,
  kmem_cache_alloc, kmem_cache_free) skip it: each is one core call, atomic in
  the core, and only their failure paths, which print, take it.

Not promised: an order between calls made by different threads at the same
time (as in the kernel, which of two racing allocations gets which block is up
to timing, so a threaded run is not reproducible address for address), and the
simulated CPU of ``on_cpu`` is the machine's, not the thread's (``cpu=`` on a
per-call operation is that call's alone: the core sets and restores it under
its lock, csrc/oncpu.c).
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Callable

__all__ = ["serialize", "locked_entry", "retarget", "new_lock"]

new_lock = threading.RLock


def locked_entry(fn: Callable[..., Any], lock: Any) -> Callable[..., Any]:
    """fn with `lock` held: the model core's hot entry points.

    The wrapper has a fixed arity for the common shapes (Python 3.11
    specializes a plain call but not ``fn(*args)``); the arity is fn's required
    parameters, the shape the shared layer calls it with.  :func:`retarget`
    swaps fn for another function later (closing the core).
    """
    acquire, release = lock.acquire, lock.release
    arity = sum(p.default is p.empty for p in inspect.signature(fn).parameters.values())

    call: Callable[..., Any]
    if arity == 3:
        def call(a, b, c):
            acquire()
            try:
                return fn(a, b, c)
            finally:
                release()
    elif arity == 4:
        def call(a, b, c, d):
            acquire()
            try:
                return fn(a, b, c, d)
            finally:
                release()
    elif arity == 5:
        def call(a, b, c, d, e):
            acquire()
            try:
                return fn(a, b, c, d, e)
            finally:
                release()
    else:
        def call(*args):
            acquire()
            try:
                return fn(*args)
            finally:
                release()

    call.__name__ = fn.__name__
    call.__doc__ = fn.__doc__
    return call


def retarget(call, fn) -> None:
    """Make a locked_entry() wrapper call fn from now on.

    Closing the model core swaps in a function answering ECLOSED, as the C
    core's entries do after pa_machine_close(): a thread that fetched the entry
    before close() gets MachineClosed, not a dead arena.  Rebinding the
    closure cell costs the hot path nothing, where an indirection would.
    """
    names = call.__code__.co_freevars
    call.__closure__[names.index("fn")].cell_contents = fn


def _serialized(fn):
    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        with self._lock:
            return fn(self, *args, **kwargs)
    method.__serialized__ = True
    return method


# the wrapper's code: frames running it are skipped when pyalloc names the caller of an
# allocation (slab.frame_caller), so vmallocinfo and slub_debug tracks name the user's line
WRAPPER_CODE = _serialized(lambda self: None).__code__


def serialize(cls, exclude=(), also=()):
    """Wrap every public method of cls (and of its bases) so it runs under ``self._lock``.

    `exclude` names methods that need no lock (they touch nothing but the
    core, whose entries lock themselves); `also` names private methods that
    are entered from outside a public one (the hot paths' failure helpers).
    A method added later to any base is covered without being listed.
    """
    names = set(also)
    for klass in cls.__mro__:
        if klass is object:
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and inspect.isfunction(value):
                names.add(name)
    for name in sorted(names - set(exclude)):
        value = inspect.getattr_static(cls, name)
        if inspect.isfunction(value) and not getattr(value, "__serialized__", False):
            setattr(cls, name, _serialized(value))
    return cls
