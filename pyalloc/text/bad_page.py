"""Kernel-style reports for the bugs pyalloc catches: bad page frees and page faults.

Pure functions of their arguments (both backends must print the same text).
The formats follow the kernel's ``bad_page()``, ``dump_page()``,
``VM_BUG_ON_PAGE`` and the x86 page fault oops (``page_fault_oops``).
"""

from __future__ import annotations

from .printk import HARDWARE_NAME, KERNEL_RELEASE, cpu_line, dump_stack_lines
from .._abi import VMEMMAP_START

STRUCT_PAGE_SIZE = 64


def dump_page_lines(pfn: int, refcount: int, flags_text: str, page_type: str, reason: str) -> list[str]:
    """dump_page(): what the kernel prints about one struct page."""
    lines = [
        f"page: refcount:{refcount} mapcount:0 mapping:0000000000000000 index:0x0 pfn:{pfn:#x}",
        f"flags: {flags_text}",
        f"raw: {VMEMMAP_START + pfn * STRUCT_PAGE_SIZE:016x} dead000000000100 dead000000000122 0000000000000000",
    ]
    if page_type:
        lines.insert(2, f"page_type: {page_type}")
    lines.append(f"page dumped because: {reason}")
    return lines


def bad_page_text(comm: str, pid: int, cpu: int, pfn: int, refcount: int, flags_text: str,
                  page_type: str, reason: str, frames) -> str:
    """bad_page(): "BUG: Bad page state" for a free the page allocator refuses."""
    lines = [f"BUG: Bad page state in process {comm}  pfn:{pfn:05x}"]
    lines += dump_page_lines(pfn, refcount, flags_text, page_type, reason)
    lines.append("Modules linked in:")
    lines += dump_stack_lines(cpu, pid, comm, ["dump_stack_lvl", "bad_page", *frames],
                              "G    B              ")
    lines.append("Disabling lock debugging due to kernel taint")
    return "\n".join(lines)


def vm_bug_on_page_text(comm: str, pid: int, cpu: int, pfn: int, flags_text: str, page_type: str,
                        condition: str, where: str, frames) -> str:
    """VM_BUG_ON_PAGE (a DEBUG_VM kernel): dump the page, then an oops."""
    lines = dump_page_lines(pfn, 0, flags_text, page_type, f"VM_BUG_ON_PAGE({condition})")
    lines += ["------------[ cut here ]------------", f"kernel BUG at {where}!",
              "Oops: invalid opcode: 0000 [#1] SMP NOPTI"]
    lines += dump_stack_lines(cpu, pid, comm, frames)
    return "\n".join(lines)


def page_fault_text(comm: str, pid: int, cpu: int, address: int, write: bool, why: str) -> str:
    """The x86 oops for a kernel-mode access to an unmapped address."""
    access = "write" if write else "read"
    if address < 4096:
        first = f"BUG: kernel NULL pointer dereference, address: {address:016x}"
    else:
        first = f"BUG: unable to handle page fault for address: {address:016x}"
    lines = [
        first,
        f"#PF: supervisor {access} access in kernel mode",
        f"#PF: error_code(0x{2 if write else 0:04x}) - not-present page",
        "PGD 0 P4D 0 ",
        "Oops: Oops: 0000 [#1] SMP NOPTI" if not write else "Oops: Oops: 0002 [#1] SMP NOPTI",
        cpu_line(cpu, pid, comm),
        f"Hardware name: {HARDWARE_NAME}",
        f"RIP: 0010:pyalloc_{access}+0x0/0x0",
        f"pyalloc: {why}",
    ]
    return "\n".join(lines)
