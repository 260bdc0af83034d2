"""``pyalloc replay --verify``: does the replay end where the trace says the kernel ended?

Two counts of what is live at the end, made apart: the trace's, from its events alone
(``stream.trace_expect``, built by :func:`pyalloc.read_trace`: objects allocated in the
capture and not freed, explicitly or by their pointer coming back, and page blocks the
caller kept), and the machine's, from what each replayed allocation left live
(``StreamResult.state``) and the object size the machine gave it (``ksize``).  A failed
or refused replayed allocation, a free the replay did not run, or a leak shows as a
difference.  Objects and pages from before the capture are in neither count.
"""

from __future__ import annotations

from .._abi import OBJ_LIVE, OP_ALLOC_PAGES, OP_KMALLOC, OP_KMEM_CACHE_ALLOC
from .perf_kmem import _kmalloc_cache


def _label(key: tuple) -> str:
    name, alloc, gfp = key
    return _kmalloc_cache(alloc, gfp) if name == "kmalloc" else name


def expected_live(stream) -> tuple[dict, dict]:
    """({cache label: objects}, {order: page blocks}) the trace implies at its end."""
    objects: dict[str, int] = {}
    for key, n in stream.trace_expect["objects"].items():
        label = _label(key)
        objects[label] = objects.get(label, 0) + n
    return objects, dict(stream.trace_expect["pages"])


def replayed_live(m, stream, result) -> tuple[dict, dict]:
    """({cache label: objects}, {order: page blocks}) the replay left live."""
    objects: dict[str, int] = {}
    pages: dict[int, int] = {}
    for i, state in enumerate(result.state):
        if state != OBJ_LIVE:
            continue
        kind = stream.kind(i)
        if kind == OP_ALLOC_PAGES:
            order = stream.op(i)["arg"]
            pages[order] = pages.get(order, 0) + 1
        elif kind in (OP_KMALLOC, OP_KMEM_CACHE_ALLOC):
            op = stream.op(i)
            label = op["cache"] if kind == OP_KMEM_CACHE_ALLOC else _kmalloc_cache(m.ksize(result[i]), op["gfp"])
            objects[label] = objects.get(label, 0) + 1
    return objects, pages


def differences(m, stream, result) -> list[str]:
    """One line per cache or page order whose live count differs; empty when they agree."""
    want_obj, want_pages = expected_live(stream)
    got_obj, got_pages = replayed_live(m, stream, result)
    out = []
    for label in sorted(set(want_obj) | set(got_obj)):
        want, got = want_obj.get(label, 0), got_obj.get(label, 0)
        if want != got:
            out.append(f"{label}: {got} live objects after the replay, the trace implies {want}")
    for order in sorted(set(want_pages) | set(got_pages)):
        want, got = want_pages.get(order, 0), got_pages.get(order, 0)
        if want != got:
            out.append(f"order-{order} pages: {got} live blocks after the replay, the trace implies {want}")
    return out


def report(m, stream, result) -> list[str]:
    """The lines ``pyalloc replay --verify`` prints."""
    want_obj, want_pages = expected_live(stream)
    diff = differences(m, stream, result)
    head = (f"# verify: the trace implies {sum(want_obj.values())} live objects in {len(want_obj)} caches and "
            f"{sum(want_pages.values())} live page blocks at its end; ")
    if not diff:
        return [head + "the replay agrees"]
    return [head + f"{len(diff)} differences:"] + [f"#   {line}" for line in diff]
