/*
 * pgtable.c - x86-64 4-level page tables of init_mm, for vmalloc and vmap.
 * pyalloc/model/pgtable.py is the same code in Python.
 *
 * PGD (bits 47-39) -> PUD (38-30) -> PMD (29-21) -> PTE (20-12), 512 8-byte
 * entries per level, P4D folded.  The PGD is init_mm's swapper_pg_dir, part of
 * the kernel image, so it lives in the machine, not in a buddy page; every
 * lower table is a real page from the buddy allocator (GFP_KERNEL|__GFP_ZERO),
 * taken when first needed (x86 preallocates the vmalloc PUDs at boot; pyalloc
 * takes them lazily so that boot leaves the free lists untouched) and never
 * given back, as the kernel keeps them after vunmap.  Table entries are
 * pfn << 12 | _KERNPG_TABLE (0x63); leaves are pfn << 12 | PAGE_KERNEL
 * (0x8000000000000163).  PUD and PMD pages count in NR_PAGETABLE (meminfo
 * PageTables); kernel PTE pages do not (pagetable_pte_ctor is not run for
 * init_mm), as in 6.12.
 *
 * vmalloc takes its pages first, one order-0 page at a time in order, and
 * maps them afterwards, as __vmalloc_area_node does; a failure at either step
 * gives back everything taken by the call.
 */
#include <string.h>
#include <stdio.h>

#include "internal.h"

#define PAGE_KERNEL 0x8000000000000163ull
#define PTE_PFN_MASK 0x000ffffffffff000ull
#define GFP_PGTABLE_KERNEL (0xcc0u | GFP_ZERO_BIT)

static inline unsigned level_index(uint64_t va, unsigned shift)
{
    return (unsigned)((va >> shift) & 511u);
}

/* a kernel half canonical address: bits 63..47 all set */
static inline bool canonical_kernel(uint64_t va)
{
    return (va >> 47) == 0x1ffffu;
}

static inline uint64_t *table(pa_machine *m, uint64_t entry)
{
    return (uint64_t *)(m->mem + (entry & PTE_PFN_MASK));
}

/* the table an entry points at, or NULL when it points at anything but a live
 * table page: the tables sit in simulated memory, where a program writing
 * through the direct map can scribble on them, so no entry is trusted */
static uint64_t *table_of(pa_machine *m, uint64_t entry)
{
    uint64_t pfn = (entry & PTE_PFN_MASK) >> PA_PAGE_SHIFT;
    if (pfn >= m->nr_pages || !(m->pages[pfn].flags & PA_PG_ALLOC) || m->pages[pfn].kind != PA_KIND_PGTABLE)
        return NULL;
    return table(m, entry);
}

/* the next level's table for entry *e, allocating it if empty; NULL on ENOMEM
 * or when the entry is damaged */
static uint64_t *next_table(pa_machine *m, uint64_t *e, bool counted)
{
    if (*e & PA_PTE_PRESENT)
        return table_of(m, *e);
    int64_t pfn = buddy_alloc_pages(m, GFP_PGTABLE_KERNEL, 0);
    if (pfn < 0)
        return NULL;
    m->pages[pfn].kind = PA_KIND_PGTABLE;
    m->nr_pgtable_pages_all++;
    if (counted)
        m->nr_page_table_pages++;
    *e = ((uint64_t)pfn << PA_PAGE_SHIFT) | PA_KERNPG_TABLE;
    return table(m, *e);
}

/* the leaf entry for va, allocating missing tables when alloc; NULL if absent */
static uint64_t *pte_slot(pa_machine *m, uint64_t va, bool alloc)
{
    uint64_t *e = &m->pgd[level_index(va, 39)];
    if (!alloc && !(*e & PA_PTE_PRESENT))
        return NULL;
    uint64_t *pud = next_table(m, e, true);
    if (!pud)
        return NULL;
    e = &pud[level_index(va, 30)];
    if (!alloc && !(*e & PA_PTE_PRESENT))
        return NULL;
    uint64_t *pmd = next_table(m, e, true);
    if (!pmd)
        return NULL;
    e = &pmd[level_index(va, 21)];
    if (!alloc && !(*e & PA_PTE_PRESENT))
        return NULL;
    uint64_t *pte = next_table(m, e, false);
    if (!pte)
        return NULL;
    return &pte[level_index(va, 12)];
}

static bool range_ok(const pa_machine *m, int64_t vaddr, int64_t nr_pages)
{
    (void)m;
    uint64_t va = (uint64_t)vaddr;
    return nr_pages >= 0 && nr_pages <= (1ll << 33) && !(va & (PA_PAGE_SIZE - 1)) && canonical_kernel(va)
           && canonical_kernel(va + ((uint64_t)nr_pages << PA_PAGE_SHIFT) - (nr_pages ? 1 : 0));
}

/* map pfns at vaddr; on failure unmap what this call mapped */
static int map_pages(pa_machine *m, uint64_t va, int64_t nr, const int64_t *pfns)
{
    for (int64_t i = 0; i < nr; i++) {
        uint64_t *pte = pte_slot(m, va + ((uint64_t)i << PA_PAGE_SHIFT), true);
        if (!pte || (*pte & PA_PTE_PRESENT)) {
            for (int64_t j = 0; j < i; j++) {
                /* tables live in writable memory: one scribbled on through the direct map
                 * may alias another level, so a slot mapped above can be gone by now */
                uint64_t *undo = pte_slot(m, va + ((uint64_t)j << PA_PAGE_SHIFT), false);
                if (undo)
                    *undo = 0;
            }
            return pte ? PA_EBUSY : PA_ENOMEM;
        }
        *pte = ((uint64_t)pfns[i] << PA_PAGE_SHIFT) | PAGE_KERNEL;
    }
    return PA_OK;
}

/* on failure pfns[0] holds how many pages were obtained (and given back) */
static int vmalloc_pages(pa_machine *m, int64_t vaddr, int64_t nr_pages, int64_t gfp, int64_t *pfns)
{
    int64_t got;
    for (got = 0; got < nr_pages; got++) {
        int64_t pfn = buddy_alloc_pages(m, gfp, 0);
        if (pfn < 0)
            break;
        m->pages[pfn].kind = PA_KIND_VMALLOC;
        pfns[got] = pfn;
    }
    /* ENOMEM: a page could not be had; EBUSY: the pages could not be mapped */
    int rc = got < nr_pages ? PA_ENOMEM : map_pages(m, (uint64_t)vaddr, nr_pages, pfns);
    if (rc) {
        for (int64_t i = 0; i < got; i++)
            buddy_free_pages(m, pfns[i], 0, PA_KIND_VMALLOC);
        pfns[0] = got;          /* how far it got, for the warning */
        return got < nr_pages ? PA_ENOMEM : PA_EBUSY;
    }
    m->vmalloc_pages += (uint64_t)nr_pages;
    return PA_OK;
}

PA_ENTRY(int, pa_vmalloc_pages, (pa_machine *m, int64_t vaddr, int64_t nr_pages, int64_t gfp, int64_t *pfns),
         (m, vaddr, nr_pages, gfp, pfns))
{
    if (!m || !pfns || !range_ok(m, vaddr, nr_pages) || gfp < 0 || gfp > (int64_t)UINT32_MAX)
        return PA_EINVAL;
    m->alloc_seq++;
    return (int)pa_call_end(m, vmalloc_pages(m, vaddr, nr_pages, gfp, pfns));
}

PA_ENTRY(int, pa_vmap_pages, (pa_machine *m, int64_t vaddr, int64_t nr_pages, const int64_t *pfns), (m, vaddr, nr_pages, pfns))
{
    if (!m || !pfns || !range_ok(m, vaddr, nr_pages))
        return PA_EINVAL;
    for (int64_t i = 0; i < nr_pages; i++)
        if (pfns[i] < 0 || (uint64_t)pfns[i] >= m->nr_pages)
            return PA_EINVAL;
    return map_pages(m, (uint64_t)vaddr, nr_pages, pfns);
}

/* clear the PTEs of a range; the pages themselves are the owner's business
 * (vfree frees its own page list, as the kernel frees area->pages) */
PA_ENTRY(int, pa_vunmap_pages, (pa_machine *m, int64_t vaddr, int64_t nr_pages), (m, vaddr, nr_pages))
{
    if (!m || !range_ok(m, vaddr, nr_pages))
        return PA_EINVAL;
    uint64_t va = (uint64_t)vaddr;
    for (int64_t i = 0; i < nr_pages; i++) {
        uint64_t *pte = pte_slot(m, va + ((uint64_t)i << PA_PAGE_SHIFT), false);
        if (pte)
            *pte = 0;
    }
    return PA_OK;
}

/* give back the pages vmalloc took (all of them, or none on a bad pfn) */
PA_ENTRY(int, pa_free_vmalloc_pages, (pa_machine *m, const int64_t *pfns, int64_t nr_pages), (m, pfns, nr_pages))
{
    if (!m || (!pfns && nr_pages) || nr_pages < 0)
        return PA_EINVAL;
    for (int64_t i = 0; i < nr_pages; i++) {
        const struct pa_page *p = pfns[i] >= 0 && (uint64_t)pfns[i] < m->nr_pages ? &m->pages[pfns[i]] : NULL;
        if (!p || !(p->flags & PA_PG_ALLOC) || p->kind != PA_KIND_VMALLOC || p->order)
            return PA_EINVALFREE;
    }
    for (int64_t i = 0; i < nr_pages; i++) {
        buddy_free_pages(m, pfns[i], 0, PA_KIND_VMALLOC);
        m->vmalloc_pages--;
    }
    return PA_OK;
}

PA_ENTRY(int64_t, pa_walk, (pa_machine *m, int64_t vaddr), (m, vaddr))
{
    if (!m)
        return PA_EINVAL;
    if (!canonical_kernel((uint64_t)vaddr))
        return PA_EFAULT;
    uint64_t *pte = pte_slot(m, (uint64_t)vaddr, false);
    if (!pte || !(*pte & PA_PTE_PRESENT) || ((*pte & PTE_PFN_MASK) >> PA_PAGE_SHIFT) >= m->nr_pages)
        return PA_EFAULT;
    return (int64_t)((*pte & PTE_PFN_MASK) >> PA_PAGE_SHIFT);
}

PA_ENTRY(int64_t, pa_pte, (pa_machine *m, int64_t vaddr), (m, vaddr))
{
    if (!m)
        return PA_EINVAL;
    if (!canonical_kernel((uint64_t)vaddr))
        return 0;
    uint64_t *pte = pte_slot(m, (uint64_t)vaddr, false);
    return pte ? (int64_t)*pte : 0;
}

/* every table entry points at a table page, and the counters agree; a leaf may
 * map a page its owner has freed (a use-after-free the kernel allows too) */
int pgt_check(pa_machine *m, char *msg, size_t msglen)
{
    uint64_t tables = 0, counted = 0;
    for (unsigned i = 0; i < 512; i++) {
        uint64_t e1 = m->pgd[i];
        if (!(e1 & PA_PTE_PRESENT))
            continue;
        uint64_t pud_pfn = (e1 & PTE_PFN_MASK) >> PA_PAGE_SHIFT;
        if (!table_of(m, e1)) {
            snprintf(msg, msglen, "page table entry %u points at pfn 0x%llx, not a table page", i,
                     (unsigned long long)pud_pfn);
            return PA_EINVARIANT;
        }
        tables++;
        counted++;
        uint64_t *pud = table(m, e1);
        for (unsigned j = 0; j < 512; j++) {
            if (!(pud[j] & PA_PTE_PRESENT))
                continue;
            uint64_t pmd_pfn = (pud[j] & PTE_PFN_MASK) >> PA_PAGE_SHIFT;
            if (!table_of(m, pud[j])) {
                snprintf(msg, msglen, "page table entry %u/%u points at pfn 0x%llx, not a table page", i, j,
                         (unsigned long long)pmd_pfn);
                return PA_EINVARIANT;
            }
            tables++;
            counted++;
            uint64_t *pmd = table(m, pud[j]);
            for (unsigned k = 0; k < 512; k++) {
                if (!(pmd[k] & PA_PTE_PRESENT))
                    continue;
                uint64_t pte_pfn = (pmd[k] & PTE_PFN_MASK) >> PA_PAGE_SHIFT;
                if (!table_of(m, pmd[k])) {
                    snprintf(msg, msglen, "page table entry %u/%u/%u points at pfn 0x%llx, not a table page", i, j, k,
                             (unsigned long long)pte_pfn);
                    return PA_EINVARIANT;
                }
                tables++;
            }
        }
    }
    if (tables != m->nr_pgtable_pages_all || counted != m->nr_page_table_pages) {
        snprintf(msg, msglen, "%llu table pages (%llu counted) found, counters say %llu (%llu)",
                 (unsigned long long)tables, (unsigned long long)counted,
                 (unsigned long long)m->nr_pgtable_pages_all, (unsigned long long)m->nr_page_table_pages);
        return PA_EINVARIANT;
    }
    return PA_OK;
}
