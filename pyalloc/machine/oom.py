"""The OOM killer (mm/oom_kill.c): choosing a victim and the report it prints.

The cores decide *when* (the slow path answers EOOM where 6.18 would call
out_of_memory()); this module, shared by both backends, decides *whom* and
says it in the kernel's words.  Pure functions of their arguments.
"""

from __future__ import annotations

from typing import AbstractSet

from .. import gfp as gfpmod
from ..text import procfs
from ..text.printk import dump_stack_lines
from .._abi import PAGE_SIZE

OOM_SCORE_ADJ_MIN = -1000

OOM_FRAMES = (
    "dump_stack_lvl", "dump_header", "oom_kill_process", "out_of_memory",
    "__alloc_pages_slowpath.constprop.0", "__alloc_frozen_pages_noprof", "alloc_pages_mpol",
)
FAULT_FRAMES = OOM_FRAMES + (
    "folio_alloc_mpol_noprof", "vma_alloc_folio_noprof", "do_anonymous_page", "__handle_mm_fault",
    "handle_mm_fault", "do_user_addr_fault", "exc_page_fault", "asm_exc_page_fault",
)
NO_VICTIM_FRAMES = ("dump_stack_lvl", "dump_header", "out_of_memory",
                    "__alloc_pages_slowpath.constprop.0", "__alloc_frozen_pages_noprof", "alloc_pages_mpol")

TASKS_HEADER = ("[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes"
                " swapents oom_score_adj name")


def badness(task: dict, totalpages: int):
    """oom_badness(): rss + swap entries + page-table pages, shifted by
    oom_score_adj per mille of all memory; None for an unkillable task."""
    adj = task["oom_score_adj"]
    if adj == OOM_SCORE_ADJ_MIN:
        return None
    points = task["rss"] + task["swapents"] + task["pgtables_bytes"] // PAGE_SIZE
    return points + adj * (totalpages // 1000)


def select_bad_process(tasks: list, totalpages: int):
    """The task with the highest badness; on a tie the later one, as
    oom_evaluate_task() replaces its choice unless the new score is lower."""
    chosen, chosen_points = None, None
    for task in tasks:
        points = badness(task, totalpages)
        if points is None:
            continue
        if chosen_points is not None and points < chosen_points:
            continue
        chosen, chosen_points = task, points
    return chosen


def dump_tasks(tasks: list) -> list[str]:
    lines = ["Tasks state (memory values in pages):", TASKS_HEADER]
    for t in tasks:
        lines.append("[%7d] %5d %5d %8d %8d %8d %8d %9d %8d %8d         %5d %s" % (
            t["pid"], 0, t["pid"], t["total_vm"], t["rss"], t["rss"], 0, 0,
            t["pgtables_bytes"], t["swapents"], t["oom_score_adj"], t["name"]))
    return lines


def unreclaimable_slab(snap: dict, reclaimable: AbstractSet[str] = frozenset()) -> list[str]:
    """dump_unreclaimable_slab(), printed when unreclaimable slab outweighs the LRU lists."""
    rc = snap["reclaim"]
    nr_lru = (rc["nr_inactive_anon"] + rc["nr_active_anon"] + rc["nr_inactive_file"] + rc["nr_active_file"]
              + rc.get("nr_unevictable", 0))
    if snap["vm"]["nr_slab_unreclaimable"] <= nr_lru:
        return []
    lines = ["Unreclaimable slab info:", "Name                      Used          Total"]
    for c in snap.get("slab_caches") or ():
        if c["name"] in reclaimable or not c["num_objs"]:
            continue
        lines.append("%-17s %10dKB %10dKB" % (c["name"], c["active_objs"] * c["objsize"] // 1024,
                                               c["num_objs"] * c["objsize"] // 1024))
    return lines


def dump_header(snap: dict, tasks: list, gfp: int, order: int, comm: str, pid: int, frames,
                current_adj: int = 0) -> list[str]:
    """dump_header(): the first line names the allocating task (current) and its
    oom_score_adj (current->signal->oom_score_adj; 0 for the simulated kernel's own task)."""
    lines = ["%s invoked oom-killer: gfp_mask=%#x(%s), order=%d, oom_score_adj=%d"
             % (comm, gfp, gfpmod.format_pGg(gfp), order, current_adj)]
    lines += dump_stack_lines(0, pid, comm, frames)
    lines += procfs.show_mem(snap, procfs.gfp_zone(gfp))
    lines += unreclaimable_slab(snap, snap.get("reclaimable_caches", frozenset()))
    lines += dump_tasks(tasks)
    return lines


def kill_report(snap: dict, tasks: list, victim: dict, gfp: int, order: int, comm: str, pid: int,
                user_fault: bool, current_adj: int = 0) -> str:
    """Everything out_of_memory() prints when it kills ``victim``."""
    lines = dump_header(snap, tasks, gfp, order, comm, pid, FAULT_FRAMES if user_fault else OOM_FRAMES,
                        current_adj)
    lines.append("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,"
                 "task_memcg=/,task=%s,pid=%d,uid=0" % (victim["name"], victim["pid"]))
    lines.append("Out of memory: Killed process %d (%s) total-vm:%dkB, anon-rss:%dkB, file-rss:0kB, "
                 "shmem-rss:0kB, UID:0 pgtables:%dkB oom_score_adj:%d"
                 % (victim["pid"], victim["name"], victim["total_vm"] * 4, victim["rss"] * 4,
                    victim["pgtables_bytes"] // 1024, victim["oom_score_adj"]))
    lines.append("oom_reaper: reaped process %d (%s), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
                 % (victim["pid"], victim["name"]))
    return "\n".join(lines) + "\n"


PANIC_MESSAGE = "System is deadlocked on memory"
PANIC_FRAMES = ("dump_stack_lvl", "vpanic", "panic", "out_of_memory",
                "__alloc_pages_slowpath.constprop.0", "__alloc_frozen_pages_noprof", "alloc_pages_mpol")


def panic_lines(message: str, comm: str, pid: int, frames) -> list[str]:
    """vpanic() (kernel/panic.c): the message without its newline, the stack
    (CONFIG_DEBUG_BUGVERBOSE), the x86 panic notifier's kernel offset (no
    KASLR: "disabled") and the closing line."""
    lines = ["Kernel panic - not syncing: " + message]
    lines += dump_stack_lines(0, pid, comm, frames)
    lines.append("Kernel Offset: disabled")
    lines.append("---[ end Kernel panic - not syncing: %s ]---" % message)
    return lines


def no_victim_report(snap: dict, tasks: list, gfp: int, order: int, comm: str, pid: int,
                     current_adj: int = 0) -> str:
    """out_of_memory() with nothing to kill: the header, "Out of memory and no
    killable processes...", then panic("System is deadlocked on memory\n"), the
    last lines the kernel prints.  pyalloc's machine goes on after them (the
    caller gets no page, or the reserves for __GFP_NOFAIL) and prints nothing
    more for that call."""
    lines = dump_header(snap, tasks, gfp, order, comm, pid, NO_VICTIM_FRAMES, current_adj)
    lines.append("Out of memory and no killable processes...")
    lines += panic_lines(PANIC_MESSAGE, comm, pid, PANIC_FRAMES)
    return "\n".join(lines) + "\n"


def retry(m, call, failed, comm: str, pid, user_fault: bool, *, stop=None, last=None):
    """The slow path's OOM turn, for every caller: per-call allocations, page
    faults and streams.  Make *call*; while *failed* says its answer is EOOM
    (where __alloc_pages_may_oom() in mm/page_alloc.c calls out_of_memory()),
    kill a victim, note it in ``m._oom_victim`` and call again, unless the
    victim is *stop* (the faulting process itself: its fault cannot go on).
    With nobody left to kill, make *last* (default: *call*) once more with the
    OOM killer declared helpless, so a __GFP_NOFAIL request takes the reserves.

    Returns (the last answer, what the last out_of_memory() returned).
    """
    victim = None
    m._oom_panicked = False
    r = call()
    while failed(r):
        victim = m._out_of_memory(comm, pid, user_fault)
        if victim is None:
            m._oom_panicked = True      # the panic lines end dmesg: no warn_alloc after them
            m._core.set_oom_mode(1)
            try:
                r = (last or call)()
            finally:
                m._core.set_oom_mode(0)
            break
        m._oom_victim = victim
        if victim == stop:
            break
        r = call()
    return r, victim
