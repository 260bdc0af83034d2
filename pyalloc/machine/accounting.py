"""What the machine's processes add to the node's page-table and commit counts.

Two counters of 6.18 sum over every process; pyalloc's processes are mms of the
core (csrc/reclaim.c, model/reclaim.py), so the sums are taken here, over the
live processes, whenever a view is drawn:

- NR_PAGETABLE (meminfo ``PageTables``, vmstat ``nr_page_table_pages``,
  show_mem's ``pagetables:``): every page-table page of every mm is counted by
  pagetable_pte_ctor()/pagetable_pmd_ctor()/pagetable_pud_ctor(), besides the
  kernel's own PUD and PMD pages (csrc/pgtable.c).  A process's share is its
  mm_pgtables_bytes() / PAGE_SIZE, the ``pgtables_bytes`` column of the OOM
  report's task list, so the two views agree as they do on a real machine.
  The process tables are counted, not allocated: they take no page from the
  buddy allocator (the core does not model user page tables), and each mm's
  PGD page, which 6.18 counts in NR_PAGETABLE but not in pgtables_bytes, is
  left out with them.
- vm_committed_as (meminfo ``Committed_AS``): mm/mmap.c accounts a private
  writable mapping's pages when it is made (security_vm_enough_memory_mm(),
  VM_ACCOUNT) and gives them back at munmap or exit.  A pyalloc process's
  anonymous memory is one private writable mapping as large as what it has
  touched (``total_vm``), resident or swapped out, so that is what it commits.
  Page cache, kernel memory and files commit nothing.
"""

from __future__ import annotations

from .._abi import PAGE_SIZE
from .state import MachineState


def process_totals(m: MachineState) -> tuple[int, int]:
    """(page-table pages, committed pages) of the machine's live processes."""
    pgtables = committed = 0
    for proc in m._procs.values():
        info = m._core.mm_info(proc.mm)
        pgtables += info["pgtables_bytes"] // PAGE_SIZE
        committed += info["nr_pages"]
    return pgtables, committed
