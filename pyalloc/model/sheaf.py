"""Per-cpu sheaves and the node barn (mm/slub.c, new in 6.18).

The model's twin of csrc/sheaf.c, function for function.  A cache created
with sheaf_capacity N > 0 (and no debug flag) has, per CPU, a main sheaf and
maybe a spare, each a list of up to N objects used LIFO at the end, and one
barn per node with full and empty sheaves (the full ones LIFO, list_add and
list_first_entry at the head; empty ones are all alike, so a count).  A sheaf
object is ``slab pfn << 16 | slot`` (the C core keeps the slab id instead);
its slot's state is OBJ_SHEAF: allocated as far as the slab knows, free to the
user.

* alloc_from_pcs() pops main's top.  An empty main swaps with a non-empty
  spare, else trades itself for a full barn sheaf (barn_replace_empty_sheaf()),
  else - only if the gfp may block - refills the spare, an empty barn sheaf or
  a new one from the slabs (refill_sheaf(): objects[0] is the first the slabs
  hand out, so the sheaf gives them back in reverse) and puts the old main in
  the barn.  Otherwise the allocation takes the ordinary slab path.
* free_to_pcs() pushes on main.  A full main moves to the spare slot when there
  is none (taking an empty barn sheaf or a new one), swaps with a spare that
  has room, else trades itself for an empty barn sheaf while the barn holds
  fewer than MAX_FULL_SHEAVES full ones; past that the full spare is flushed to
  the slabs and becomes main.
* Flushing empties each CPU's sheaves through __kmem_cache_free_bulk()
  (slab.slab_free_bulk()), main in batches of PCS_BATCH_MAX from the top, and
  drops the spare; barn_shrink() flushes and drops every barn sheaf.

Departure: a sheaf's own memory (a kzalloc in the kernel) is not simulated, so
making one never fails and never touches the kmalloc caches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._abi import E2BIG, ENOMEM, GFP_DIRECT_RECLAIM, GFP_NOMEMALLOC, OK

if TYPE_CHECKING:
    from .arena import Arena
    from .slab import Cache

MAX_FULL_SHEAVES = 10
PCS_BATCH_MAX = 32
MAIN, SPARE = 0, 1


def _slab():
    from . import slab
    return slab


def barn_get_empty_sheaf(s: Cache) -> list | None:
    if not s.barn_empty:
        return None
    s.barn_empty -= 1
    return []


def barn_replace_empty_sheaf(s: Cache, empty: list) -> list | None:
    """A full sheaf for the empty one, ignoring the limit: the number of sheaves stays."""
    if not s.barn_full:
        return None
    s.barn_empty += 1
    return s.barn_full.pop(0)


def barn_replace_full_sheaf(s: Cache, full: list):
    """An empty sheaf for the full one, refused (E2BIG) when the barn has enough full ones."""
    if len(s.barn_full) >= MAX_FULL_SHEAVES:
        return E2BIG
    if not s.barn_empty:
        return ENOMEM
    s.barn_empty -= 1
    s.barn_full.insert(0, full)
    return []


def refill_sheaf(a: Arena, s: Cache, sheaf: list, gfp: int) -> int:
    """__kmem_cache_alloc_bulk(): all or nothing."""
    got: list[int] = []
    for _ in range(s.sheaf_capacity - len(sheaf)):
        obj = _slab().slab_get_object(a, s, gfp)
        if obj < 0:
            _slab().slab_free_bulk(a, s, got)
            return ENOMEM
        got.append(obj)
    sheaf += got
    return OK


def alloc_full_sheaf(a: Arena, s: Cache, gfp: int) -> list | None:
    sheaf: list[int] = []
    if refill_sheaf(a, s, sheaf, gfp | GFP_NOMEMALLOC):
        return None
    return sheaf


def sheaf_flush_main(a: Arena, s: Cache, sheaf: list) -> None:
    """Every object of main to the slabs, PCS_BATCH_MAX at a time from the top."""
    while sheaf:
        batch = min(PCS_BATCH_MAX, len(sheaf))
        objs = sheaf[len(sheaf) - batch:]
        del sheaf[len(sheaf) - batch:]
        _slab().slab_free_bulk(a, s, objs)


def sheaf_flush_unused(a: Arena, s: Cache, sheaf: list) -> None:
    if sheaf:
        _slab().slab_free_bulk(a, s, list(sheaf))
        sheaf.clear()


def pcs_replace_empty_main(a: Arena, s: Cache, pcs: list, gfp: int) -> bool:
    if pcs[SPARE]:
        pcs[MAIN], pcs[SPARE] = pcs[SPARE], pcs[MAIN]
        return True
    full = barn_replace_empty_sheaf(s, pcs[MAIN])
    if full is not None:
        pcs[MAIN] = full
        return True
    if not gfp & GFP_DIRECT_RECLAIM:
        return False
    if pcs[SPARE] is not None:
        empty, pcs[SPARE] = pcs[SPARE], None
    else:
        empty = barn_get_empty_sheaf(s)
    if empty is not None:
        # very low on memory when the refill fails: the sheaf is not worth the barn
        full = empty if not refill_sheaf(a, s, empty, gfp) else None
    else:
        full = alloc_full_sheaf(a, s, gfp)
    if full is None:
        return False
    s.barn_empty += 1
    pcs[MAIN] = full
    return True


def alloc_from_pcs(a: Arena, s: Cache, gfp: int) -> int:
    """An object from this cpu's sheaves, or -1."""
    assert s.pcs is not None
    pcs = s.pcs[a.cpu]
    if not pcs[MAIN] and not pcs_replace_empty_main(a, s, pcs, gfp):
        return -1
    return pcs[MAIN].pop()


def pcs_install_empty_sheaf(s: Cache, pcs: list, empty: list) -> None:
    """__pcs_install_empty_sheaf(): main is full."""
    if pcs[SPARE] is None:
        pcs[SPARE], pcs[MAIN] = pcs[MAIN], empty
        return
    s.barn_full.insert(0, pcs[MAIN])
    pcs[MAIN] = empty


def pcs_replace_full_main(a: Arena, s: Cache, pcs: list) -> None:
    """__pcs_replace_full_main(): leaves room on main."""
    if pcs[SPARE] is None:
        empty = barn_get_empty_sheaf(s)
        if empty is not None:
            pcs[SPARE], pcs[MAIN] = pcs[MAIN], empty
            return
    elif len(pcs[SPARE]) < s.sheaf_capacity:
        pcs[MAIN], pcs[SPARE] = pcs[SPARE], pcs[MAIN]
        return
    else:
        got = barn_replace_full_sheaf(s, pcs[MAIN])
        if isinstance(got, list):
            pcs[MAIN] = got
            return
        if got == E2BIG:
            empty, pcs[SPARE] = pcs[SPARE], None    # full: flushed, it becomes main
            sheaf_flush_unused(a, s, empty)
            pcs_install_empty_sheaf(s, pcs, empty)
            return
    pcs_install_empty_sheaf(s, pcs, [])


def free_to_pcs(a: Arena, s: Cache, obj: int) -> None:
    assert s.pcs is not None
    pcs = s.pcs[a.cpu]
    if len(pcs[MAIN]) == s.sheaf_capacity:
        pcs_replace_full_main(a, s, pcs)
    pcs[MAIN].append(obj)


def pcs_flush_all(a: Arena, s: Cache) -> None:
    """This cpu's sheaves to the slabs: the spare goes, main stays (empty)."""
    assert s.pcs is not None
    pcs = s.pcs[a.cpu]
    spare, pcs[SPARE] = pcs[SPARE], None
    if spare is not None:
        sheaf_flush_unused(a, s, spare)
    sheaf_flush_main(a, s, pcs[MAIN])


def barn_shrink(a: Arena, s: Cache) -> None:
    while s.barn_full:
        sheaf_flush_unused(a, s, s.barn_full.pop(0))
    s.barn_empty = 0


def pcs_init(a: Arena, s: Cache, capacity: int) -> None:
    s.sheaf_capacity = capacity
    s.pcs = [[[], None] for _ in range(a.cpus)]


# -- introspection ---------------------------------------------------------------------

def cpu_slab_dict(words: list[int]) -> dict:
    """pa_cpu_slab_info()'s words as cpu_slab_info() returns them."""
    out: dict = {"slab": None if words[0] < 0 else words[0]}
    i = 1
    for key in ("freelist", "partial"):
        n = words[i]
        out[key] = words[i + 1:i + 1 + n]
        i += 1 + n
    for key in ("main", "spare"):
        n = words[i]
        out[key] = None if n < 0 else words[i + 1:i + 1 + n]
        i += 1 + max(n, 0)
    return out


def obj_phys(a: Arena, s: Cache, obj: int) -> int:
    return ((obj >> 16) << 12) + s.red_left_pad + (obj & 0xffff) * s.size


def cpu_slab_info(a: Arena, cid: int, cpu: int) -> dict | None:
    """A cpu's layers of a cache: the cpu slab's phys (None for none), the cpu
    freelist's objects in order, the cpu partial chain's slab physes in order,
    main's and the spare's objects top first (None for no sheaf)."""
    slab = _slab()
    if type(cid) is not int or type(cpu) is not int or not slab.valid_cache(a, cid) or not 0 <= cpu < a.cpus:
        return None
    s = a.caches[cid]
    c = s.cpu[cpu]
    freelist = []
    if c.slab != slab.NIL:
        sl = a.slabs[c.slab]
        slot = c.freelist
        while slot != slab.NIL:
            freelist.append(slab.obj_phys(s, sl, slot))
            slot = sl.next[slot]
    main, spare = s.pcs[cpu] if s.pcs is not None else (None, None)
    return {"slab": None if c.slab == slab.NIL else c.slab << 12, "freelist": freelist,
            "partial": [pfn << 12 for pfn in c.partial],
            "main": None if main is None else [obj_phys(a, s, o) for o in reversed(main)],
            "spare": None if spare is None else [obj_phys(a, s, o) for o in reversed(spare)]}


def barn_info(a: Arena, cid: int) -> dict | None:
    slab = _slab()
    if type(cid) is not int or not slab.valid_cache(a, cid):
        return None
    s = a.caches[cid]
    return {"full": len(s.barn_full), "empty": s.barn_empty}


def sheaves_check(a: Arena, s: Cache) -> tuple[str | None, int]:
    """(what is wrong or None, objects held): every sheaf object a held object of
    the cache, each once; barn sheaves full or empty as listed."""
    if s.pcs is None:
        return ("sheaf state without sheaves" if s.barn_full or s.barn_empty or s.sheaf_capacity else None), 0
    sheaves = [sh for pcs in s.pcs for sh in pcs if sh is not None]
    if any(pcs[MAIN] is None for pcs in s.pcs):
        return "a cpu has no main sheaf", 0
    if any(len(sh) != s.sheaf_capacity for sh in s.barn_full):
        return "a full barn sheaf is not full", 0
    seen = set()
    for sh in sheaves + s.barn_full:
        if len(sh) > s.sheaf_capacity:
            return "a sheaf holds more than its capacity", 0
        for obj in sh:
            sl = a.slabs.get(obj >> 16)
            slot = obj & 0xffff
            if (obj in seen or sl is None or sl.cache != s.id or slot >= sl.objects
                    or sl.state[slot] != _slab().OBJ_SHEAF):
                return "a sheaf holds an object that is not a held object of the cache (or holds one twice)", 0
            seen.add(obj)
    return None, len(seen)
