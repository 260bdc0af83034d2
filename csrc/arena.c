/*
 * arena.c - physical memory, page descriptors, zones and watermarks.
 *
 * Physical memory is one anonymous MAP_NORESERVE mapping: pfn 0 is mem[0],
 * and a page nobody wrote costs the host nothing.  The descriptor array is a
 * second such mapping, 16 bytes a page, all zero until touched.  Boot writes
 * nothing per page or per block: each zone's whole order-10 blocks stay
 * *pristine*, counted as free on the order-10 Movable list but not linked
 * into it.  Boot frees memory to the list tails in ascending pfn order, so the
 * pristine blocks are, virtually, that list's tail; buddy.c materialises one
 * when the list's real part is empty.  The only per-block array is the
 * pageblock migratetype map (one byte per 2 MiB), filled with Movable at boot
 * as memmap_init_zone does.
 *
 * Zones follow x86-64: DMA below 16 MiB, DMA32 below 4 GiB, Normal above;
 * Movable and Device are always empty.  Every page is present and managed.
 *
 * Watermarks follow mm/page_alloc.c: min_free_kbytes = clamp(sqrt(lowmem_kB *
 * 16), 128, 262144); each lowmem zone's min is its managed share of
 * min_free_kbytes/4 (the Movable zone's is clamp(managed/1024, 32, 128), 32
 * when empty, as 6.18 shows); low, high and promo add max(share/4, managed *
 * 10 / 10000) each; lowmem_reserve uses
 * the ratios 256/256/32 with the 6.6/6.18 rule (an empty upper zone adds 0
 * but does not zero the entry).
 */
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "internal.h"
#include "trace.h"

static const uint32_t lowmem_reserve_ratio[PA_MAX_NR_ZONES] = {256, 256, 32, 0, 0};

int pa_abi_version(void)
{
    return PA_ABI_VERSION;
}

static uint64_t int_sqrt(uint64_t x)
{
    uint64_t r = 0, bit = 1ull << 62;

    while (bit > x)
        bit >>= 2;
    while (bit) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

static uint64_t mult_frac(uint64_t x, uint64_t n, uint64_t d)
{
    return (x / d) * n + ((x % d) * n) / d;
}

static uint64_t lowmem_managed(const pa_machine *m)
{
    uint64_t sum = 0;

    for (int z = 0; z < ZONE_MOVABLE; z++)
        sum += m->zones[z].managed;
    return sum;
}

void arena_setup_watermarks(pa_machine *m)
{
    uint64_t pages_min = m->min_free_kbytes >> (PA_PAGE_SHIFT - 10);
    uint64_t lowmem = lowmem_managed(m);

    for (int i = 0; i < PA_MAX_NR_ZONES; i++) {
        struct pa_zone *z = &m->zones[i];
        uint64_t share = pages_min * z->managed / lowmem;
        uint64_t wmin = share;
        if (i == ZONE_MOVABLE) {
            /* not lowmem: a small fixed reserve, even for an empty zone */
            wmin = z->managed / 1024;
            wmin = wmin < 32 ? 32 : wmin > 128 ? 128 : wmin;
        }
        uint64_t tmp = mult_frac(z->managed, m->vm_sysctl[PA_SYSCTL_WATERMARK_SCALE_FACTOR], 10000);
        if (share >> 2 > tmp)
            tmp = share >> 2;
        z->wmark[0] = wmin;
        z->wmark[1] = wmin + tmp;
        z->wmark[2] = wmin + 2 * tmp;
        z->wmark[3] = wmin + 3 * tmp;
    }
    for (int i = 0; i < PA_MAX_NR_ZONES; i++) {
        struct pa_zone *z = &m->zones[i];
        uint64_t above = 0;
        for (int j = i + 1; j < PA_MAX_NR_ZONES; j++) {
            above += m->zones[j].managed;
            z->lowmem_reserve[j] = (lowmem_reserve_ratio[i] && z->managed)
                                   ? above / lowmem_reserve_ratio[i] : 0;
        }
    }
}

void *pa_map_noreserve(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void pa_unmap(void *p, size_t len)
{
    munmap(p, len);
}

static void zone_init(struct pa_zone *z, uint64_t start, uint64_t end)
{
    memset(z, 0, sizeof(*z));
    memset(z->head, 0xff, sizeof(z->head));
    memset(z->tail, 0xff, sizeof(z->tail));
    if (end <= start)
        return;
    uint64_t n = end - start;
    uint64_t block = 1ull << PA_MAX_PAGE_ORDER;
    z->start_pfn = start;
    z->end_pfn = end;
    z->managed = n;
    z->pristine_next = start;
    z->pristine_end = start + n / block * block;
    uint64_t pristine = z->pristine_end - start;
    z->pageblocks[MIGRATE_MOVABLE] = (n + PAGEBLOCK_NR_PAGES - 1) >> PA_PAGEBLOCK_ORDER;
    z->nr_free[PA_MAX_PAGE_ORDER][MIGRATE_MOVABLE] = pristine >> PA_MAX_PAGE_ORDER;
    z->nr_free_pages = pristine;
    z->nr_free_mt_pages[MIGRATE_MOVABLE] = pristine;
    z->nr_free_blocks_pages = pristine;
}

/* The arena of a machine whose nr_pages is set: memory, descriptors, the
 * pageblock map and the zones.  On PA_ENOMEM the caller releases what was
 * mapped with arena_free(). */
int arena_init(pa_machine *m)
{
    uint64_t n = m->nr_pages;
    m->nr_pageblocks = (n + PAGEBLOCK_NR_PAGES - 1) >> PA_PAGEBLOCK_ORDER;
    m->mem = pa_map_noreserve(n << PA_PAGE_SHIFT);
    m->pages = pa_map_noreserve(n * sizeof(struct pa_page));
    m->pageblock_mt = malloc(m->nr_pageblocks);
    m->touched = pa_map_noreserve((n + 63) / 64 * sizeof(uint64_t));
    if (!m->mem || !m->pages || !m->pageblock_mt || !m->touched)
        return PA_ENOMEM;
    memset(m->pageblock_mt, MIGRATE_MOVABLE, m->nr_pageblocks);

    zone_init(&m->zones[ZONE_DMA], 0, n < DMA_END_PFN ? n : DMA_END_PFN);
    zone_init(&m->zones[ZONE_DMA32], DMA_END_PFN, n < DMA32_END_PFN ? n : DMA32_END_PFN);
    zone_init(&m->zones[ZONE_NORMAL], DMA32_END_PFN, n);
    zone_init(&m->zones[ZONE_MOVABLE], 0, 0);
    zone_init(&m->zones[ZONE_DEVICE], 0, 0);
    return PA_OK;
}

/* min_free_kbytes when the user gives none, from the zones arena_init() made */
uint64_t arena_default_min_free_kbytes(const pa_machine *m)
{
    /* the watermarks are still 0 at first boot: lowmem is all of it */
    uint64_t kb = int_sqrt(lowmem_managed(m) * (PA_PAGE_SIZE / 1024) * 16);
    return kb < 128 ? 128 : kb > 262144 ? 262144 : kb;
}

void arena_free(pa_machine *m)
{
    if (m->mem)
        munmap(m->mem, m->nr_pages << PA_PAGE_SHIFT);
    if (m->pages)
        munmap(m->pages, m->nr_pages * sizeof(struct pa_page));
    if (m->touched)
        munmap(m->touched, (m->nr_pages + 63) / 64 * sizeof(uint64_t));
    free(m->pageblock_mt);
    m->touched = NULL;
    m->mem = NULL;
    m->pages = NULL;
    m->pageblock_mt = NULL;
}

/* -- first touch ------------------------------------------------------------
 *
 * m->touched has a bit per page, clear while the page holds the zeros the
 * mapping started with: set when the page is handed out (everything that
 * writes the arena writes pages it was handed, or marks them itself: pa_write,
 * pa_memset, compaction's copy, a snapshot's pages).  A __GFP_ZERO allocation
 * or an anonymous fault of a clear page need not memset it, which would only
 * make the host fault in a page of zeros: a replay's memory then costs the
 * host what the simulated machine really wrote.  The bit never changes a
 * result (the model zeroes every such page and reads the same bytes), so no
 * snapshot carries it: a loaded machine marks the pages it writes back. */

void arena_touch(pa_machine *m, uint64_t pfn, uint64_t nr)
{
    for (uint64_t q = pfn; q < pfn + nr; q++)
        m->touched[q >> 6] |= 1ull << (q & 63);
}

void arena_hand_out(pa_machine *m, uint64_t pfn, uint64_t nr, bool zero)
{
    for (uint64_t q = pfn; q < pfn + nr; q++) {
        uint64_t *w = &m->touched[q >> 6], bit = 1ull << (q & 63);
        if (*w & bit) {
            if (zero)
                memset(m->mem + (q << PA_PAGE_SHIFT), 0, PA_PAGE_SIZE);
        } else {
            *w |= bit;
        }
    }
}

/* the pages of [phys, phys + n) */
static void touch_range(pa_machine *m, int64_t phys, int64_t n)
{
    if (n > 0)
        arena_touch(m, (uint64_t)phys >> PA_PAGE_SHIFT,
                    (((uint64_t)phys + (uint64_t)n - 1) >> PA_PAGE_SHIFT) - ((uint64_t)phys >> PA_PAGE_SHIFT) + 1);
}

/* -- memory access through physical addresses ------------------------------ */

static bool phys_range_ok(const pa_machine *m, int64_t phys, int64_t n)
{
    uint64_t size = m->nr_pages << PA_PAGE_SHIFT;
    return phys >= 0 && n >= 0 && (uint64_t)phys <= size && (uint64_t)n <= size - (uint64_t)phys;
}

PA_ENTRY(int, pa_read, (pa_machine *m, int64_t phys, int64_t n, unsigned char *out), (m, phys, n, out))
{
    if (!m || (!out && n))
        return PA_EINVAL;
    if (!phys_range_ok(m, phys, n))
        return PA_EFAULT;
    memcpy(out, m->mem + phys, (size_t)n);
    return PA_OK;
}

PA_ENTRY(int, pa_write, (pa_machine *m, int64_t phys, const unsigned char *data, int64_t n), (m, phys, data, n))
{
    if (!m || (!data && n))
        return PA_EINVAL;
    if (!phys_range_ok(m, phys, n))
        return PA_EFAULT;
    touch_range(m, phys, n);
    memcpy(m->mem + phys, data, (size_t)n);
    return PA_OK;
}

PA_ENTRY(int, pa_memset, (pa_machine *m, int64_t phys, int64_t byte, int64_t n), (m, phys, byte, n))
{
    if (!m || byte < 0 || byte > 255)
        return PA_EINVAL;
    if (!phys_range_ok(m, phys, n))
        return PA_EFAULT;
    touch_range(m, phys, n);
    memset(m->mem + phys, (int)byte, (size_t)n);
    return PA_OK;
}

PA_ENTRY(int, pa_set_cpu, (pa_machine *m, int64_t cpu), (m, cpu))
{
    if (!m || cpu < 0 || cpu >= m->cpus)
        return PA_EINVAL;
    m->cpu = (uint32_t)cpu;
    return PA_OK;
}

PA_ENTRY(int, pa_set_slab_merge, (pa_machine *m, int64_t on), (m, on))
{
    if (!m)
        return PA_EINVAL;
    m->slab_merge = on != 0;
    return PA_OK;
}

/* -- counters ------------------------------------------------------------------ */

PA_ENTRY(int, pa_zone_info, (pa_machine *m, int64_t zid, struct pa_zone_info *out), (m, zid, out))
{
    if (!m || !out || zid < 0 || zid >= PA_MAX_NR_ZONES)
        return PA_EINVAL;
    const struct pa_zone *z = &m->zones[zid];
    memset(out, 0, sizeof(*out));
    out->start_pfn = z->start_pfn;
    out->spanned = out->present = out->managed = z->managed;
    memcpy(out->wmark, z->wmark, sizeof(out->wmark));
    memcpy(out->lowmem_reserve, z->lowmem_reserve, sizeof(out->lowmem_reserve));
    out->nr_free_pages = z->nr_free_pages;
    out->nr_free_blocks_pages = z->nr_free_blocks_pages;
    out->nr_reserved_highatomic = z->nr_reserved_highatomic;
    memcpy(out->nr_free, z->nr_free, sizeof(out->nr_free));
    memcpy(out->pageblocks, z->pageblocks, sizeof(out->pageblocks));
    out->pgalloc = z->pgalloc;
    out->numa_hit = z->numa_hit;
    memcpy(out->nr_lru, z->nr_lru, sizeof(out->nr_lru));
    out->nr_dirty = z->nr_dirty;
    out->nr_unevictable = z->nr_unevictable;
    return PA_OK;
}

PA_ENTRY(int, pa_vm_info, (pa_machine *m, struct pa_vm_info *out), (m, out))
{
    if (!m || !out)
        return PA_EINVAL;
    out->nr_pages = m->nr_pages;
    out->min_free_kbytes = m->min_free_kbytes;
    out->pgfree = m->pgfree;
    out->ticks = m->ticks;
    out->slowpath_entries = m->slowpath_entries;
    out->nr_slab_reclaimable = m->nr_slab_reclaimable;
    out->nr_slab_unreclaimable = m->nr_slab_unreclaimable;
    out->gfp_fixups = m->gfp_fixups;
    out->last_cache = m->last_cache;
    out->slab_fallback_gfp = m->slab_fallback_gfp;
    out->cpu = m->cpu;
    out->nr_page_table_pages = m->nr_page_table_pages;
    out->nr_pgtable_pages_all = m->nr_pgtable_pages_all;
    out->vmalloc_pages = m->vmalloc_pages;
    out->seed = m->seed;
    out->kconfig = m->kconfig;
    return PA_OK;
}
