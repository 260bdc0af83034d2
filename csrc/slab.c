/*
 * slab.c - SLUB: kmem_cache, slabs, per-cpu slabs, partial lists, kmalloc,
 * slub_debug.  pyalloc/model/slab.py is the same algorithm, function for
 * function; both follow mm/slub.c:
 *
 *  - a cache has a per-cpu active slab with its lockless freelist, and a node
 *    partial list.  Allocation pops the cpu freelist (fast path); when empty,
 *    slab_alloc_slow takes the slab's remote frees, else the FIRST slab of the
 *    cpu partial list (CONFIG_SLUB_CPU_PARTIAL), else the FIRST slab of the
 *    node partial list (get_partial_node, which also moves up to
 *    cpu_partial_slabs / 2 + 1 more to the cpu partial list), else a new slab
 *    (cache order with NOWARN|NORETRY first, then the minimum order).
 *  - freeing to this cpu's active slab pushes onto the cpu freelist; other
 *    frees (remote ones too) go to the slab's own freelist.  A slab that was
 *    full goes to this cpu's partial list (put_cpu_partial; a chain already
 *    cpu_partial_slabs long moves to the node list first, __put_partials),
 *    or without cpu partial lists to the node partial TAIL; one that becomes
 *    empty while min_partial slabs are already on the node list goes back to
 *    the buddy allocator.  Cpu partial slabs are not frozen (6.8+).
 *  - caches with sheaves put sheaf.c in front of all this.
 *  - a new slab's freelist runs in address order, or in the cache's random
 *    order under SLAB_FREELIST_RANDOM (slab_random.c); frees push at the head.
 *  - debug caches (POISON, RED_ZONE, STORE_USER, CONSISTENCY_CHECKS) take the
 *    kernel's debug path: no cpu slab, one object at a time from the first
 *    partial slab or a new one (which goes to the partial HEAD).
 *
 * Departures, on purpose: the freelist chain lives beside the slab
 * (slab->chain), and the free pointer is only WRITTEN into the object, so a
 * program scribbling on freed memory cannot derail the core; double frees and
 * frees of non-objects are always caught (slab->state); a failed debug check
 * on allocation restores the bytes and fails the call (the kernel marks the
 * slab used and goes on).
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "internal.h"
#include "trace.h"

#define PAGE_OFFSET_VIRT PA_PAGE_OFFSET
#define GFP_RECLAIM_MASK (0xc00u | 0x20u | 0x40u | 0x80u | 0x2000u | 0x4000u | 0x8000u | 0x10000u | 0x20000u | 0x80000u)
#define GFP_CONSTRAINT_MASK (0x100000u | 0x200000u)
#define GFP_SLAB_BUG_MASK (0x4u | 0x2u | ~GFP_BITS_MASK)
#define GFP_DMA_BIT 0x1u
#define GFP_DMA32_BIT 0x4u
#define GFP_RECLAIMABLE_BIT 0x10u
#define GFP_ACCOUNT_BIT 0x400000u
#define GFP_NOWARN_BIT 0x2000u
#define GFP_NORETRY_BIT 0x10000u
#define MAX_OBJS_PER_PAGE 32767u
#define MIN_PARTIAL 5u
#define MAX_PARTIAL 10u
#define SLUB_MAX_ORDER 3u
#define CACHE_LINE_SIZE 64u
#define SHRINK_PROMOTE_MAX 32

#define POISON_INUSE 0x5a
#define POISON_FREE 0x6b
#define POISON_END 0xa5
#define SLUB_RED_INACTIVE 0xbb
#define SLUB_RED_ACTIVE 0xcc

/* OBJ_PINNED: live, but owned by another allocation (a vmalloc area's page
 * array), so no free function may release it; bit 0 set means live */
enum { OBJ_NEVER, OBJ_LIVE, OBJ_FREED, OBJ_PINNED = 5 };     /* and OBJ_SHEAF (internal.h) */

#define SLAB_DEBUG_FLAGS (PA_SLAB_POISON | PA_SLAB_RED_ZONE | PA_SLAB_STORE_USER | PA_SLAB_CONSISTENCY_CHECKS | PA_SLAB_TRACE)
#define SLAB_NEVER_MERGE (PA_SLAB_RED_ZONE | PA_SLAB_POISON | PA_SLAB_STORE_USER | PA_SLAB_TRACE | PA_SLAB_NO_MERGE)
#define SLAB_MERGE_SAME (PA_SLAB_RECLAIM_ACCOUNT | PA_SLAB_CACHE_DMA | PA_SLAB_CACHE_DMA32 | PA_SLAB_ACCOUNT)

/* kmalloc_size_index[] for sizes 1..192, by (size - 1) / 8 */
static const uint8_t size_index[24] = {3, 4, 5, 5, 6, 6, 6, 6, 1, 1, 1, 1, 7, 7, 7, 7, 2, 2, 2, 2, 2, 2, 2, 2};

static unsigned fls64(uint64_t x)
{
    return x ? 64u - (unsigned)__builtin_clzll(x) : 0u;
}

static unsigned get_order(uint64_t size)
{
    return fls64((size - 1) >> PA_PAGE_SHIFT);
}

static unsigned kmalloc_index(uint64_t size)
{
    return size <= 192 ? size_index[(size - 1) / 8] : fls64(size - 1);
}

/* 0 normal, 1 reclaim, 2 dma, 3 cgroup: DMA beats RECLAIMABLE beats ACCOUNT; a normal
 * request goes to a kmalloc-rnd-NN copy by its caller under RANDOM_KMALLOC_CACHES */
static unsigned kmalloc_type(const pa_machine *m, uint32_t gfp, uint64_t caller)
{
    if (pa_likely(!(gfp & (GFP_DMA_BIT | GFP_RECLAIMABLE_BIT | GFP_ACCOUNT_BIT))))
        return pa_unlikely(m->kconfig & PA_KCONFIG_RANDOM_KMALLOC_CACHES) ? random_kmalloc_type(m, caller) : 0;
    if (gfp & GFP_DMA_BIT)
        return 2;
    return (gfp & GFP_RECLAIMABLE_BIT) ? 1 : 3;
}

static inline bool valid_cache(const pa_machine *m, int64_t id)
{
    return id >= 0 && id < (int64_t)m->nr_caches && m->caches[id].alive;
}

static inline bool is_debug(const struct pa_cache *s)
{
    return s->flags & SLAB_DEBUG_FLAGS;
}

static inline bool debug_orig_size(const struct pa_cache *s)
{
    return (s->flags & PA_SLAB_STORE_USER) && (s->flags & PA_SLAB_KMALLOC);
}

/* -- creation --------------------------------------------------------------------- */

static uint32_t calculate_alignment(uint32_t flags, uint32_t align, uint32_t size)
{
    if (flags & PA_SLAB_HWCACHE_ALIGN) {
        uint32_t ralign = CACHE_LINE_SIZE;
        while (size <= ralign / 2)
            ralign /= 2;
        if (ralign > align)
            align = ralign;
    }
    if (align < 8)
        align = 8;
    return (align + 7) & ~7u;
}

static uint32_t order_objects(unsigned order, uint32_t size)
{
    return (uint32_t)((PA_PAGE_SIZE << order) / size);
}

static unsigned calc_slab_order(uint32_t size, unsigned min_order, unsigned max_order, unsigned fract)
{
    unsigned order;
    for (order = min_order; order <= max_order; order++) {
        uint64_t slab_size = (uint64_t)PA_PAGE_SIZE << order;
        if (slab_size % size <= slab_size / fract)
            break;
    }
    return order;
}

static unsigned calculate_order(uint32_t size, uint32_t cpus)
{
    uint32_t min_objects = 4 * (fls64(cpus) + 1);
    uint32_t max_objects = order_objects(SLUB_MAX_ORDER, size);
    if (max_objects < 1)
        max_objects = 1;
    if (min_objects > max_objects)
        min_objects = max_objects;
    unsigned min_order = get_order((uint64_t)min_objects * size);
    if (order_objects(min_order, size) > MAX_OBJS_PER_PAGE)
        return get_order((uint64_t)size * MAX_OBJS_PER_PAGE) - 1;
    for (unsigned fraction = 16; fraction > 1; fraction /= 2) {
        unsigned order = calc_slab_order(size, min_order, SLUB_MAX_ORDER, fraction);
        if (order <= SLUB_MAX_ORDER)
            return order;
    }
    return get_order(size);
}

static void calculate_sizes(struct pa_cache *s, uint32_t cpus)
{
    uint32_t flags = s->flags;
    uint32_t size = (s->object_size + 7) & ~7u;

    if (flags & PA_SLAB_POISON)
        s->flags |= PA_OBJECT_POISON;
    if ((flags & PA_SLAB_RED_ZONE) && size == s->object_size)
        size += 8;
    s->inuse = size;
    if ((flags & PA_SLAB_POISON)
        || ((flags & PA_SLAB_RED_ZONE) && (s->object_size < 8 || debug_orig_size(s)))) {
        s->offset = size;           /* free pointer after the object */
        size += 8;
    } else {
        s->offset = (s->object_size / 2) & ~7u;
    }
    if (flags & PA_SLAB_STORE_USER) {
        size += 2 * PA_TRACK_SIZE;
        if (flags & PA_SLAB_KMALLOC)
            size += 4;
    }
    s->red_left_pad = 0;
    if (flags & PA_SLAB_RED_ZONE) {
        size += 8;
        s->red_left_pad = (8 + s->align - 1) & ~(s->align - 1);
        size += s->red_left_pad;
    }
    size = (size + s->align - 1) & ~(s->align - 1);
    s->size = size;
    s->order = calculate_order(size, cpus);
    s->objects = order_objects(s->order, size);
    s->min_order = get_order(size);
    s->min_objects = order_objects(s->min_order, size);
    s->allocflags = GFP_COMP_BIT;
    if (flags & PA_SLAB_CACHE_DMA)
        s->allocflags |= GFP_DMA_BIT;
    if (flags & PA_SLAB_CACHE_DMA32)
        s->allocflags |= GFP_DMA32_BIT;
    if (flags & PA_SLAB_RECLAIM_ACCOUNT)
        s->allocflags |= GFP_RECLAIMABLE_BIT;
    uint32_t mp = (fls64(size) - 1) / 2;
    s->min_partial = mp < MIN_PARTIAL ? MIN_PARTIAL : mp > MAX_PARTIAL ? MAX_PARTIAL : mp;
}

/* Whether a cache record read from a snapshot is one kmem_cache_create() could have
 * made: its geometry is recomputed from flags, object size and alignment.  A merge
 * grows object_size (never size) later, leaving the free pointer where the first,
 * smaller user put it. */
bool slab_cache_geometry_ok(const struct pa_cache *s, uint32_t cpus)
{
    uint32_t flags = s->flags;
    if ((flags & ~(0x3fffu | PA_OBJECT_POISON)) || !(flags & PA_OBJECT_POISON) != !(flags & PA_SLAB_POISON)
        || (flags & (PA_SLAB_CACHE_DMA | PA_SLAB_CACHE_DMA32)) == (PA_SLAB_CACHE_DMA | PA_SLAB_CACHE_DMA32)
        || s->object_size < 1 || s->object_size > PA_KMALLOC_MAX_SIZE || s->align < 8
        || s->align > PA_KMALLOC_MAX_SIZE || (s->align & (s->align - 1)))
        return false;
    struct pa_cache e = {0};
    e.flags = flags & ~(uint32_t)PA_OBJECT_POISON;
    e.object_size = s->object_size;
    e.align = s->align;
    calculate_sizes(&e, cpus);
    if (e.min_order > PA_MAX_PAGE_ORDER || s->size != e.size || s->inuse != e.inuse
        || s->red_left_pad != e.red_left_pad || s->order != e.order || s->objects != e.objects
        || s->min_order != e.min_order || s->min_objects != e.min_objects || s->min_partial != e.min_partial
        || s->allocflags != e.allocflags)
        return false;
    bool mergeable = !(flags & (SLAB_NEVER_MERGE | PA_SLAB_KMALLOC));
    if (s->offset != e.offset && !(mergeable && s->offset % 8 == 0 && s->offset <= e.offset))
        return false;
    return s->refcount >= 1 && s->min_order <= s->order && s->objects >= 1 && s->objects <= MAX_OBJS_PER_PAGE;
}

/* the oldest compatible cache, as the kernel's reverse walk of slab_caches */
static int64_t find_mergeable(const pa_machine *m, uint32_t size, uint32_t align, uint32_t flags)
{
    if (!m->slab_merge || (flags & SLAB_NEVER_MERGE))
        return -1;
    size = (size + 7) & ~7u;
    align = calculate_alignment(flags, align, size);
    size = (size + align - 1) & ~(align - 1);
    int64_t best = -1;
    for (uint32_t id = 0; id < m->nr_caches; id++) {
        const struct pa_cache *s = &m->caches[id];
        /* kmalloc caches carry a usercopy region (HARDENED_USERCOPY): never a target */
        if (!s->alive || (s->flags & (SLAB_NEVER_MERGE | PA_SLAB_KMALLOC)) || size > s->size || s->pcs)
            continue;
        if ((flags & SLAB_MERGE_SAME) != (s->flags & SLAB_MERGE_SAME))
            continue;
        if ((s->size & ~(align - 1)) != s->size || s->size - size >= 8)
            continue;
        if (best < 0 || s->seq < m->caches[best].seq)
            best = id;
    }
    return best;
}

/* set_cpu_partial(), slub_set_cpu_partial(): how much a cpu partial list keeps */
void slab_set_cpu_partial(const pa_machine *m, struct pa_cache *s)
{
    uint32_t nr_objects = 0;
    if (!(m->kconfig & PA_KCONFIG_SLUB_CPU_PARTIAL))
        return;
    if (!is_debug(s))           /* kmem_cache_has_cpu_partial() */
        nr_objects = s->size >= PA_PAGE_SIZE ? 6 : s->size >= 1024 ? 24 : s->size >= 256 ? 52 : 120;
    s->cpu_partial = nr_objects;
    /* the limit in slabs assumes them half full */
    s->cpu_partial_slabs = (nr_objects * 2 + s->objects - 1) / s->objects;
}

PA_ENTRY(int64_t, pa_kmem_cache_create, (pa_machine *m, int64_t size, int64_t align, int64_t flags,
                                         int64_t sheaf_capacity), (m, size, align, flags, sheaf_capacity))
{
    if (!m || size < 1 || size > PA_KMALLOC_MAX_SIZE || align < 0 || align > PA_KMALLOC_MAX_SIZE
        || sheaf_capacity < 0 || sheaf_capacity > PA_SHEAF_CAPACITY_MAX
        || (align & (align - 1)) || flags < 0 || flags > 0x3fff
        || (flags & (PA_SLAB_CACHE_DMA | PA_SLAB_CACHE_DMA32)) == (PA_SLAB_CACHE_DMA | PA_SLAB_CACHE_DMA32))
        return PA_EINVAL;
    uint32_t id;
    for (id = 0; id < m->nr_caches; id++)
        if (!m->caches[id].alive)
            break;
    if (id == PA_MAX_CACHES)
        return PA_ENOMEM;
    m->ticks++;
    /* a cache with sheaves is never an alias (__kmem_cache_create_args) */
    int64_t merged = sheaf_capacity ? -1 : find_mergeable(m, (uint32_t)size, (uint32_t)align, (uint32_t)flags);
    if (merged >= 0) {
        struct pa_cache *s = &m->caches[merged];
        s->refcount++;
        if ((uint32_t)size > s->object_size)
            s->object_size = (uint32_t)size;
        uint32_t in = ((uint32_t)size + 7) & ~7u;
        if (in > s->inuse)
            s->inuse = in;
        return merged;
    }
    struct pa_cache probe = {0};
    probe.flags = (uint32_t)flags;
    probe.object_size = (uint32_t)size;
    probe.align = calculate_alignment((uint32_t)flags, align ? (uint32_t)align : 8u, (uint32_t)size);
    calculate_sizes(&probe, m->cpus);
    if (probe.min_order > PA_MAX_PAGE_ORDER)
        return PA_EINVAL;       /* calculate_sizes() fails: no slab order can hold one object */
    struct pa_cpu_slab *cpu = malloc(m->cpus * sizeof(*cpu));
    uint32_t *seq = cache_random_seq_wanted(m, &probe) ? malloc(probe.objects * sizeof(*seq)) : NULL;
    if (!cpu || (!seq && cache_random_seq_wanted(m, &probe))) {
        free(cpu);
        free(seq);
        return PA_ENOMEM;
    }
    for (uint32_t c = 0; c < m->cpus; c++) {
        cpu[c].slab = PA_NIL;
        cpu[c].freelist = SLOT_NIL;
        cpu[c].partial = PA_NIL;
    }
    struct pa_cache *s = &m->caches[id];
    memset(s, 0, sizeof(*s));
    s->flags = (uint32_t)flags;
    s->object_size = (uint32_t)size;
    s->align = calculate_alignment((uint32_t)flags, align ? (uint32_t)align : 8u, (uint32_t)size);
    calculate_sizes(s, m->cpus);
    /* do_kmem_cache_create: no sheaves for a debug cache */
    if (sheaf_capacity && !is_debug(s) && pcs_init(m, s, (uint32_t)sheaf_capacity)) {
        free(cpu);
        memset(s, 0, sizeof(*s));
        return PA_ENOMEM;
    }
    slab_set_cpu_partial(m, s);
    s->refcount = 1;
    s->seq = ++m->cache_seq;
    s->partial_head = s->partial_tail = PA_NIL;
    s->cpu = cpu;
    s->alive = 1;
    init_cache_random(m, s, seq);
    if (id == m->nr_caches)
        m->nr_caches++;
    return id;
}

PA_ENTRY(int, pa_kmalloc_register, (pa_machine *m, int64_t type, int64_t index, int64_t cache), (m, type, index, cache))
{
    if (!m || type < 0 || type >= PA_NR_KMALLOC_TABLE || index < 1 || index > 13 || !valid_cache(m, cache))
        return PA_EINVAL;
    m->kmalloc_caches[type][index] = (int32_t)cache;
    return PA_OK;
}

/* -- object helpers ------------------------------------------------------------------ */

static inline uint64_t slab_base(const struct pa_slab *slab)
{
    return (uint64_t)slab->pfn << PA_PAGE_SHIFT;
}

static inline uint64_t obj_phys(const struct pa_cache *s, const struct pa_slab *slab, unsigned slot)
{
    return slab_base(slab) + (uint64_t)slot * s->size + s->red_left_pad;
}

static inline void put64(pa_machine *m, uint64_t phys, uint64_t v)
{
    memcpy(m->mem + phys, &v, 8);      /* x86-64 is little-endian, as the model writes */
}

static inline uint64_t get64(const pa_machine *m, uint64_t phys)
{
    uint64_t v;
    memcpy(&v, m->mem + phys, 8);
    return v;
}

/* link slot -> next in the chain, and write the pointer where SLUB keeps it */
static inline void set_freepointer(pa_machine *m, const struct pa_cache *s, struct pa_slab *slab,
                                   unsigned slot, unsigned next)
{
    uint64_t ptr_addr = obj_phys(s, slab, slot) + s->offset;
    slab->chain[slot] = (uint16_t)next;
    put64(m, ptr_addr, freelist_ptr_encode(m, s, next == SLOT_NIL ? 0 : PAGE_OFFSET_VIRT + obj_phys(s, slab, next),
                                           PAGE_OFFSET_VIRT + ptr_addr));
}

void slab_set_freepointer(pa_machine *m, const struct pa_cache *s, struct pa_slab *slab, unsigned slot,
                          unsigned next)
{
    set_freepointer(m, s, slab, slot, next);
}

static inline uint32_t get_info_end(const struct pa_cache *s)
{
    return s->offset >= s->inuse ? s->offset + 8 : s->inuse;
}

static void event(pa_machine *m, int reason, const struct pa_cache *s, const struct pa_slab *slab,
                  uint64_t obj, uint64_t start, uint64_t end, int expected, int found)
{
    if (m->nr_events >= PA_MAX_SLAB_EVENTS)
        return;
    struct pa_slab_event *e = &m->events[m->nr_events++];
    e->reason = reason;
    e->cache = s ? (int32_t)(s - m->caches) : -1;
    e->slab = slab ? (int64_t)slab_base(slab) : -1;
    e->object = (int64_t)obj;
    e->start = (int64_t)start;
    e->end = (int64_t)end;
    e->expected = expected;
    e->found = found;
}

static bool check_bytes_and_report(pa_machine *m, const struct pa_cache *s, const struct pa_slab *slab,
                                   uint64_t obj, int reason, uint64_t start, int value, int64_t n)
{
    if (n <= 0)
        return true;
    const unsigned char *p = m->mem + start;
    int64_t i = 0;
    while (i < n && p[i] == value)
        i++;
    if (i == n)
        return true;
    int64_t end = n;
    while (end > i && p[end - 1] == value)
        end--;
    event(m, reason, s, slab, obj, start + (uint64_t)i, start + (uint64_t)end, value, p[i]);
    memset(m->mem + start + i, value, (size_t)(end - i));     /* FIX: restoring */
    return false;
}

static void init_object(pa_machine *m, const struct pa_cache *s, uint64_t obj, int val, uint32_t orig_size)
{
    uint32_t poison_size = s->object_size;
    if (s->flags & PA_SLAB_RED_ZONE) {
        memset(m->mem + obj - s->red_left_pad, val, s->red_left_pad);
        if (debug_orig_size(s) && val == SLUB_RED_ACTIVE)
            poison_size = orig_size;
    }
    if (s->flags & PA_OBJECT_POISON) {
        memset(m->mem + obj, POISON_FREE, poison_size - 1);
        m->mem[obj + poison_size - 1] = POISON_END;
    }
    if (s->flags & PA_SLAB_RED_ZONE)
        memset(m->mem + obj + poison_size, val, s->inuse - poison_size);
}

static uint32_t orig_size_at(const pa_machine *m, const struct pa_cache *s, uint64_t obj)
{
    uint32_t v;
    if (!debug_orig_size(s))
        return s->object_size;
    memcpy(&v, m->mem + obj + get_info_end(s) + 2 * PA_TRACK_SIZE, 4);
    return v;
}

static void set_orig_size(pa_machine *m, const struct pa_cache *s, uint64_t obj, uint32_t orig_size)
{
    if (debug_orig_size(s))
        memcpy(m->mem + obj + get_info_end(s) + 2 * PA_TRACK_SIZE, &orig_size, 4);
}

/* struct track {addr, handle, cpu, pid, when}; the caller is an id the shared layer interns */
static void set_track(pa_machine *m, const struct pa_cache *s, uint64_t obj, unsigned which, uint64_t caller)
{
    if (!(s->flags & PA_SLAB_STORE_USER))
        return;
    unsigned char *t = m->mem + obj + get_info_end(s) + which * PA_TRACK_SIZE;
    uint32_t cpu = m->cpu, pid = 1, zero = 0;
    memcpy(t, &caller, 8);
    memcpy(t + 8, &zero, 4);
    memcpy(t + 12, &cpu, 4);
    memcpy(t + 16, &pid, 4);
    memcpy(t + 20, &zero, 4);
    memcpy(t + 24, &m->ticks, 8);
}

static bool check_pad_bytes(pa_machine *m, const struct pa_cache *s, const struct pa_slab *slab, uint64_t obj)
{
    uint32_t off = get_info_end(s);
    if (s->flags & PA_SLAB_STORE_USER)
        off += 2 * PA_TRACK_SIZE + ((s->flags & PA_SLAB_KMALLOC) ? 4 : 0);
    uint32_t size_from_object = s->size - s->red_left_pad;
    if (size_from_object == off)
        return true;
    return check_bytes_and_report(m, s, slab, obj, PA_SLAB_ERR_OBJECT_PADDING, obj + off, POISON_INUSE,
                                  (int64_t)size_from_object - off);
}

static bool check_object(pa_machine *m, const struct pa_cache *s, const struct pa_slab *slab, unsigned slot, int val)
{
    uint64_t obj = obj_phys(s, slab, slot);
    bool ok = true;
    if (s->flags & PA_SLAB_RED_ZONE) {
        ok &= check_bytes_and_report(m, s, slab, obj, PA_SLAB_ERR_LEFT_REDZONE, obj - s->red_left_pad, val,
                                     s->red_left_pad);
        ok &= check_bytes_and_report(m, s, slab, obj, PA_SLAB_ERR_RIGHT_REDZONE, obj + s->object_size, val,
                                     (int64_t)s->inuse - s->object_size);
        if (debug_orig_size(s) && val == SLUB_RED_ACTIVE) {
            uint32_t orig = orig_size_at(m, s, obj);
            if (s->object_size > orig)
                ok &= check_bytes_and_report(m, s, slab, obj, PA_SLAB_ERR_KMALLOC_REDZONE, obj + orig, val,
                                             (int64_t)s->object_size - orig);
        }
    } else if ((s->flags & PA_SLAB_POISON) && s->object_size < s->inuse) {
        ok &= check_bytes_and_report(m, s, slab, obj, PA_SLAB_ERR_ALIGN_PADDING, obj + s->object_size,
                                     POISON_INUSE, (int64_t)s->inuse - s->object_size);
    }
    if (s->flags & PA_SLAB_POISON) {
        if (val != SLUB_RED_ACTIVE && (s->flags & PA_OBJECT_POISON)) {
            ok &= check_bytes_and_report(m, s, slab, obj, PA_SLAB_ERR_POISON, obj, POISON_FREE,
                                         (int64_t)s->object_size - 1);
            ok &= check_bytes_and_report(m, s, slab, obj, PA_SLAB_ERR_END_POISON, obj + s->object_size - 1,
                                         POISON_END, 1);
        }
        ok &= check_pad_bytes(m, s, slab, obj);
    }
    if ((s->offset >= s->inuse || val != SLUB_RED_ACTIVE) && !(slab->state[slot] & OBJ_LIVE)) {
        /* the stored free pointer must be the chain's, as freelist_ptr_encode() stores it */
        unsigned next = slab->chain[slot];
        uint64_t want = freelist_ptr_encode(m, s, next == SLOT_NIL ? 0 : PAGE_OFFSET_VIRT + obj_phys(s, slab, next),
                                            PAGE_OFFSET_VIRT + obj + s->offset);
        if (get64(m, obj + s->offset) != want) {
            event(m, PA_SLAB_ERR_FREEPOINTER, s, slab, obj, obj + s->offset, obj + s->offset + 8, 0, 0);
            put64(m, obj + s->offset, want);
            ok = false;
        }
    }
    return ok;
}

/* -- slabs from and to the buddy allocator --------------------------------------------- */

static void account_slab(pa_machine *m, const struct pa_cache *s, unsigned order, int sign)
{
    uint64_t pages = 1ull << order;
    uint64_t *ctr = (s->flags & PA_SLAB_RECLAIM_ACCOUNT) ? &m->nr_slab_reclaimable : &m->nr_slab_unreclaimable;
    *ctr = sign > 0 ? *ctr + pages : *ctr - pages;
}

static uint32_t slab_id_get(pa_machine *m)
{
    if (m->nr_free_slab_ids)
        return m->free_slab_ids[--m->nr_free_slab_ids];
    if (m->nr_slab_ids == m->cap_slab_ids) {
        uint32_t cap = m->cap_slab_ids ? m->cap_slab_ids * 2 : 64;
        struct pa_slab *ns = realloc(m->slabs, cap * sizeof(*ns));
        if (!ns)
            return PA_NIL;
        m->slabs = ns;
        uint32_t *nf = realloc(m->free_slab_ids, cap * sizeof(*nf));
        if (!nf)
            return PA_NIL;
        m->free_slab_ids = nf;
        m->cap_slab_ids = cap;
    }
    return m->nr_slab_ids++;
}

static struct pa_slab *allocate_slab(pa_machine *m, struct pa_cache *s, uint32_t gfp)
{
    uint32_t flags = (gfp & (GFP_RECLAIM_MASK | GFP_CONSTRAINT_MASK)) | s->allocflags;
    unsigned order = s->order;
    uint32_t objects = s->objects;
    uint32_t first = (flags | GFP_NOWARN_BIT | GFP_NORETRY_BIT) & ~GFP_NOFAIL_BIT;
    if ((first & GFP_DIRECT_RECLAIM_BIT) && s->order > s->min_order)
        first = (first | GFP_NOMEMALLOC_BIT) & ~(GFP_DIRECT_RECLAIM_BIT | GFP_KSWAPD_RECLAIM_BIT);
    int64_t pfn = buddy_alloc_pages(m, first, order);
    if (pfn < 0) {
        order = s->min_order;
        objects = s->min_objects;
        m->slab_fallback_gfp = flags;
        pfn = buddy_alloc_pages(m, flags, order);
        if (pfn < 0)
            return NULL;
    }
    uint32_t id = slab_id_get(m);
    uint16_t *chain = malloc(objects * sizeof(*chain));
    uint8_t *state = calloc(objects, 1);
    if (id == PA_NIL || !chain || !state) {
        free(chain);
        free(state);
        if (id != PA_NIL)
            m->free_slab_ids[m->nr_free_slab_ids++] = id;
        buddy_free_pages(m, pfn, order, PA_KIND_PAGES);
        return NULL;
    }
    struct pa_page *page = &m->pages[pfn];
    page->kind = PA_KIND_SLAB;
    page->priv = id;
    struct pa_slab *slab = &m->slabs[id];
    memset(slab, 0, sizeof(*slab));
    slab->pfn = (uint32_t)pfn;
    slab->cache = (uint32_t)(s - m->caches);
    slab->order = (uint8_t)order;
    slab->objects = (uint16_t)objects;
    slab->chain = chain;
    slab->state = state;
    slab->used = 1;
    slab->prev = slab->next = PA_NIL;
    if (s->flags & PA_SLAB_POISON)
        memset(m->mem + ((uint64_t)pfn << PA_PAGE_SHIFT), POISON_INUSE, (size_t)PA_PAGE_SIZE << order);
    for (unsigned slot = 0; slot < objects; slot++) {
        uint64_t obj = obj_phys(s, slab, slot);
        if (s->flags & (PA_SLAB_STORE_USER | PA_SLAB_RED_ZONE | PA_OBJECT_POISON)) {
            init_object(m, s, obj, SLUB_RED_INACTIVE, s->object_size);
            if (s->flags & PA_SLAB_STORE_USER)
                memset(m->mem + obj + get_info_end(s), 0, 2 * PA_TRACK_SIZE);
        }
    }
    /* the freelist runs in the cache's random order (shuffle_freelist), else in address order */
    if (!shuffle_freelist(m, s, slab)) {
        for (unsigned slot = 0; slot < objects; slot++)
            set_freepointer(m, s, slab, slot, slot + 1 < objects ? slot + 1 : SLOT_NIL);
        slab->freelist = 0;
    }
    s->nr_slabs++;
    s->total_objects += objects;
    account_slab(m, s, order, 1);
    return slab;
}

static struct pa_slab *new_slab(pa_machine *m, struct pa_cache *s, uint32_t gfp)
{
    if (gfp & GFP_SLAB_BUG_MASK) {
        m->gfp_fixups++;
        gfp &= ~GFP_SLAB_BUG_MASK;
    }
    return allocate_slab(m, s, gfp);
}

static void discard_slab(pa_machine *m, struct pa_cache *s, struct pa_slab *slab)
{
    uint32_t id = (uint32_t)(slab - m->slabs);
    s->nr_slabs--;
    s->total_objects -= slab->objects;
    account_slab(m, s, slab->order, -1);
    free(slab->chain);
    free(slab->state);
    slab->chain = NULL;
    slab->state = NULL;
    slab->used = 0;
    m->pages[slab->pfn].priv = 0;
    m->free_slab_ids[m->nr_free_slab_ids++] = id;
    buddy_free_pages(m, slab->pfn, slab->order, PA_KIND_SLAB);
}

static void add_partial(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, bool tail)
{
    uint32_t id = (uint32_t)(slab - m->slabs);
    slab->on_partial = 1;
    if (tail) {
        slab->prev = s->partial_tail;
        slab->next = PA_NIL;
        if (s->partial_tail == PA_NIL)
            s->partial_head = id;
        else
            m->slabs[s->partial_tail].next = id;
        s->partial_tail = id;
    } else {
        slab->prev = PA_NIL;
        slab->next = s->partial_head;
        if (s->partial_head == PA_NIL)
            s->partial_tail = id;
        else
            m->slabs[s->partial_head].prev = id;
        s->partial_head = id;
    }
    s->nr_partial++;
}

static void remove_partial(pa_machine *m, struct pa_cache *s, struct pa_slab *slab)
{
    if (slab->prev == PA_NIL)
        s->partial_head = slab->next;
    else
        m->slabs[slab->prev].next = slab->next;
    if (slab->next == PA_NIL)
        s->partial_tail = slab->prev;
    else
        m->slabs[slab->next].prev = slab->prev;
    slab->prev = slab->next = PA_NIL;
    slab->on_partial = 0;
    s->nr_partial--;
}

/* __put_partials: a cpu partial chain to the node list, in chain order; empty
 * slabs beyond min_partial are discarded after, the last one seen first */
static void put_partials(pa_machine *m, struct pa_cache *s, uint32_t id)
{
    uint32_t discard = PA_NIL;
    while (id != PA_NIL) {
        struct pa_slab *slab = &m->slabs[id];
        uint32_t next = slab->next;
        slab->slabs = 0;
        if (slab->inuse == 0 && s->nr_partial >= s->min_partial) {
            slab->next = discard;
            discard = id;
        } else {
            add_partial(m, s, slab, true);
        }
        id = next;
    }
    while (discard != PA_NIL) {
        struct pa_slab *slab = &m->slabs[discard];
        discard = slab->next;
        slab->next = PA_NIL;
        discard_slab(m, s, slab);
    }
}

/* put_cpu_partial: push on this cpu's chain; with drain, a chain already
 * cpu_partial_slabs long goes to the node list and a new chain starts */
static void put_cpu_partial(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, bool drain)
{
    struct pa_cpu_slab *c = &s->cpu[m->cpu];
    uint32_t old = c->partial, slabs = 0, to_put = PA_NIL;
    if (old != PA_NIL) {
        if (drain && m->slabs[old].slabs >= s->cpu_partial_slabs) {
            to_put = old;
            old = PA_NIL;
        } else {
            slabs = m->slabs[old].slabs;
        }
    }
    slab->slabs = slabs + 1;
    slab->prev = PA_NIL;
    slab->next = old;
    c->partial = (uint32_t)(slab - m->slabs);
    if (to_put != PA_NIL)
        put_partials(m, s, to_put);
}

/* the cpu partial chain to the node list (put_partials_cpu) */
static void put_partials_cpu(pa_machine *m, struct pa_cache *s, struct pa_cpu_slab *c)
{
    uint32_t id = c->partial;
    c->partial = PA_NIL;
    put_partials(m, s, id);
}

/* get_partial_node: the first node partial slab for the cpu, and while cpu
 * partial lists are on, more of them onto this cpu's chain */
static struct pa_slab *get_partial_node(pa_machine *m, struct pa_cache *s)
{
    struct pa_slab *partial = NULL;
    uint32_t partial_slabs = 0;
    for (uint32_t id = s->partial_head; id != PA_NIL;) {
        struct pa_slab *slab = &m->slabs[id];
        id = slab->next;
        remove_partial(m, s, slab);
        if (!partial) {
            partial = slab;
            if (s->cpu_partial == 0)
                break;
        } else {
            put_cpu_partial(m, s, slab, false);
            if (++partial_slabs > s->cpu_partial_slabs / 2)
                break;
        }
    }
    return partial;
}

/* -- allocation ------------------------------------------------------------------------- */

static uint64_t take_object(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, unsigned slot,
                            uint32_t gfp, uint32_t orig_size, uint64_t caller)
{
    slab->state[slot] = OBJ_LIVE;
    s->live++;
    uint64_t obj = obj_phys(s, slab, slot);
    if (pa_unlikely(is_debug(s))) {
        set_track(m, s, obj, 0, caller);
        set_orig_size(m, s, obj, orig_size);
        init_object(m, s, obj, SLUB_RED_ACTIVE, orig_size);
    }
    if (gfp & GFP_ZERO_BIT) {
        /* a debug kmalloc object keeps its kmalloc red zone past the requested size */
        uint32_t zero = ((s->flags & (PA_SLAB_STORE_USER | PA_SLAB_RED_ZONE)) && (s->flags & PA_SLAB_KMALLOC))
                        ? orig_size : s->object_size;
        memset(m->mem + obj, 0, zero);
    }
    return obj;
}

static bool alloc_debug_checks(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, unsigned slot)
{
    if (s->flags & PA_SLAB_CONSISTENCY_CHECKS)
        return check_object(m, s, slab, slot, SLUB_RED_INACTIVE);
    return true;
}

static unsigned alloc_single(struct pa_slab *slab)
{
    unsigned slot = slab->freelist;
    slab->freelist = slab->chain[slot];
    slab->inuse++;
    return slot;
}

static void unpop(struct pa_slab *slab, unsigned slot)
{
    slab->freelist = (uint16_t)slot;
    slab->inuse--;
}

static int64_t slab_alloc_debug(pa_machine *m, struct pa_cache *s, uint32_t gfp, uint32_t orig_size,
                                uint64_t caller)
{
    if (s->partial_head != PA_NIL) {
        struct pa_slab *slab = &m->slabs[s->partial_head];
        unsigned slot = alloc_single(slab);
        if (!alloc_debug_checks(m, s, slab, slot)) {
            unpop(slab, slot);
            return PA_ECORRUPT;
        }
        if (slab->inuse == slab->objects)
            remove_partial(m, s, slab);
        return (int64_t)take_object(m, s, slab, slot, gfp, orig_size, caller);
    }
    struct pa_slab *slab = new_slab(m, s, gfp);
    if (!slab)
        return PA_ENOMEM;
    unsigned slot = alloc_single(slab);
    if (!alloc_debug_checks(m, s, slab, slot)) {
        unpop(slab, slot);
        add_partial(m, s, slab, false);
        return PA_ECORRUPT;
    }
    if (slab->inuse < slab->objects)
        add_partial(m, s, slab, false);
    return (int64_t)take_object(m, s, slab, slot, gfp, orig_size, caller);
}

/* unfreeze a cpu slab: splice the cpu freelist in front of the slab's own */
static void deactivate_slab(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, unsigned freelist)
{
    bool tail = slab->freelist != SLOT_NIL;     /* remote frees arrived */
    if (freelist != SLOT_NIL) {
        unsigned last = freelist, count = 1;
        while (slab->chain[last] != SLOT_NIL) {
            last = slab->chain[last];
            count++;
        }
        set_freepointer(m, s, slab, last, slab->freelist);
        slab->freelist = (uint16_t)freelist;
        slab->inuse = (uint16_t)(slab->inuse - count);
    }
    slab->frozen = 0;
    if (slab->inuse == 0 && s->nr_partial >= s->min_partial)
        discard_slab(m, s, slab);
    else if (slab->freelist != SLOT_NIL)
        add_partial(m, s, slab, tail);
}

static unsigned freeze_slab(struct pa_slab *slab)
{
    unsigned freelist = slab->freelist;
    slab->freelist = SLOT_NIL;
    slab->inuse = slab->objects;
    slab->frozen = 1;
    return freelist;
}

static int64_t slab_alloc_slow(pa_machine *m, struct pa_cache *s, struct pa_cpu_slab *c, uint32_t gfp)
{
    struct pa_slab *slab;
    if (c->slab != PA_NIL) {
        slab = &m->slabs[c->slab];
        unsigned freelist = slab->freelist;     /* get_freelist: the remote frees */
        slab->freelist = SLOT_NIL;
        slab->inuse = slab->objects;
        if (freelist != SLOT_NIL) {
            c->freelist = slab->chain[freelist];
            return freelist;
        }
        slab->frozen = 0;                       /* full: no list holds it now */
        c->slab = PA_NIL;
    }
    if (c->partial != PA_NIL) {                 /* slub_percpu_partial */
        slab = &m->slabs[c->partial];
        c->partial = slab->next;
        slab->next = PA_NIL;
        slab->slabs = 0;
    } else if (s->partial_head != PA_NIL) {
        slab = get_partial_node(m, s);
    } else {
        slab = new_slab(m, s, gfp);
        if (!slab)
            return PA_ENOMEM;
    }
    unsigned freelist = freeze_slab(slab);
    c->slab = (uint32_t)(slab - m->slabs);
    c->freelist = slab->chain[freelist];
    return freelist;
}

static int64_t slab_alloc(pa_machine *m, struct pa_cache *s, uint32_t gfp, uint32_t orig_size, uint64_t caller)
{
    m->last_cache = s - m->caches;
    if (pa_unlikely(is_debug(s)))
        return slab_alloc_debug(m, s, gfp, orig_size, caller);
    struct pa_cpu_slab *c = &s->cpu[m->cpu];
    unsigned slot = c->freelist;
    struct pa_slab *slab;
    uint64_t obj;
    if (pa_unlikely(s->pcs != NULL) && alloc_from_pcs(m, s, gfp, &obj)) {
        slab = &m->slabs[obj >> 16];
        slot = (unsigned)(obj & 0xffff);
    } else if (pa_likely(c->slab != PA_NIL && slot != SLOT_NIL)) {
        slab = &m->slabs[c->slab];
        c->freelist = slab->chain[slot];
    } else {
        int64_t r = slab_alloc_slow(m, s, c, gfp);
        if (r < 0)
            return r;
        slot = (unsigned)r;
        slab = &m->slabs[c->slab];
    }
    return (int64_t)take_object(m, s, slab, slot, gfp, orig_size, caller);
}

/* one object for a sheaf (__kmem_cache_alloc_bulk): the cpu freelist, else ___slab_alloc */
int slab_get_object(pa_machine *m, struct pa_cache *s, uint32_t gfp, uint64_t *out)
{
    struct pa_cpu_slab *c = &s->cpu[m->cpu];
    unsigned slot = c->freelist;
    if (c->slab != PA_NIL && slot != SLOT_NIL) {
        c->freelist = m->slabs[c->slab].chain[slot];
    } else {
        int64_t r = slab_alloc_slow(m, s, c, gfp);
        if (r < 0)
            return (int)r;
        slot = (unsigned)r;
    }
    m->slabs[c->slab].state[slot] = OBJ_SHEAF;
    *out = SHEAF_OBJ(c->slab, slot);
    return PA_OK;
}

int64_t slab_cache_alloc(pa_machine *m, int64_t cache, int64_t gfp, int64_t caller)
{
    if (pa_unlikely(!m))
        return PA_EINVAL;
    m->ticks++;
    if (pa_unlikely(!valid_cache(m, cache) || gfp < 0 || gfp > (int64_t)UINT32_MAX))
        return PA_EINVAL;
    struct pa_cache *s = &m->caches[cache];
    int64_t r = slab_alloc(m, s, (uint32_t)gfp, s->object_size, (uint64_t)caller);
    trace_kmem_cache_alloc(m, (uint64_t)caller, r, (uint32_t)cache, s->object_size, s->size, (uint32_t)gfp,
                           ((uint32_t)gfp & GFP_ACCOUNT_BIT) || (s->flags & PA_SLAB_ACCOUNT));
    return r;
}

PA_ENTRY(int64_t, pa_kmem_cache_alloc, (pa_machine *m, int64_t cache, int64_t gfp, int64_t caller),
         (m, cache, gfp, caller))
{
    m->alloc_seq++;
    return pa_call_end(m, slab_cache_alloc(m, cache, gfp, caller));
}

static int64_t kmalloc_large(pa_machine *m, int64_t size, uint32_t gfp)
{
    if (gfp & GFP_SLAB_BUG_MASK) {
        m->gfp_fixups++;
        gfp &= ~GFP_SLAB_BUG_MASK;
    }
    unsigned order = get_order((uint64_t)size);
    if (order > PA_MAX_PAGE_ORDER)
        return PA_E2BIG;
    int64_t pfn = buddy_alloc_pages(m, gfp | GFP_COMP_BIT, order);
    if (pfn < 0)
        return pfn;
    m->pages[pfn].kind = PA_KIND_LARGE_KMALLOC;
    m->nr_slab_unreclaimable += 1ull << order;
    return pfn << PA_PAGE_SHIFT;
}

int64_t slab_kmalloc(pa_machine *m, int64_t size, int64_t gfp, int64_t caller)
{
    if (pa_unlikely(!m))
        return PA_EINVAL;
    m->ticks++;
    if (pa_unlikely(size < 0 || gfp < 0 || gfp > (int64_t)UINT32_MAX))
        return PA_EINVAL;
    if (pa_unlikely(size == 0))
        return PA_ZERO_SIZE_STATUS;
    if (pa_unlikely(size > PA_KMALLOC_MAX_CACHE_SIZE)) {
        m->last_cache = -1;
        int64_t r = kmalloc_large(m, size, (uint32_t)gfp);
        if (r != PA_E2BIG)
            trace_kmalloc(m, (uint64_t)caller, r, (uint64_t)size, (uint64_t)PA_PAGE_SIZE << get_order((uint64_t)size),
                          (uint32_t)gfp);
        return r;
    }
    int32_t id = m->kmalloc_caches[kmalloc_type(m, (uint32_t)gfp, (uint64_t)caller)][kmalloc_index((uint64_t)size)];
    if (pa_unlikely(id < 0))
        return PA_EINVAL;
    int64_t r = slab_alloc(m, &m->caches[id], (uint32_t)gfp, (uint32_t)size, (uint64_t)caller);
    trace_kmalloc(m, (uint64_t)caller, r, (uint64_t)size, m->caches[id].size, (uint32_t)gfp);
    return r;
}

PA_ENTRY(int64_t, pa_kmalloc, (pa_machine *m, int64_t size, int64_t gfp, int64_t caller), (m, size, gfp, caller))
{
    m->alloc_seq++;
    return pa_call_end(m, slab_kmalloc(m, size, gfp, caller));
}

/* -- freeing ----------------------------------------------------------------------------- */

/* the slab and slot of a live object's start; else a status, with an event */
static int lookup_object(pa_machine *m, int64_t phys, struct pa_slab **slabp, unsigned *slotp)
{
    if (phys < 0 || (uint64_t)phys >= m->nr_pages << PA_PAGE_SHIFT) {
        event(m, PA_SLAB_ERR_NOT_SLAB, NULL, NULL, (uint64_t)phys, 0, 0, 0, 0);
        return PA_EINVALFREE;
    }
    unsigned order;
    uint64_t head = buddy_block_containing(m, (uint64_t)phys >> PA_PAGE_SHIFT, PA_PG_ALLOC, &order);
    if (head == PA_NIL || m->pages[head].kind != PA_KIND_SLAB) {
        event(m, PA_SLAB_ERR_NOT_SLAB, NULL, NULL, (uint64_t)phys, 0, 0, 0, 0);
        return PA_EINVALFREE;
    }
    struct pa_slab *slab = &m->slabs[m->pages[head].priv];
    const struct pa_cache *s = &m->caches[slab->cache];
    int64_t off = phys - (int64_t)slab_base(slab) - s->red_left_pad;
    /* one division: the slot, and whether off is its start */
    uint64_t slot = off >= 0 ? (uint64_t)off / s->size : UINT64_MAX;
    if (off < 0 || (uint64_t)off != slot * s->size || slot >= slab->objects) {
        event(m, PA_SLAB_ERR_INVALID_POINTER, s, slab, (uint64_t)phys, 0, 0, 0, 0);
        return PA_EINVALFREE;
    }
    if (slab->state[slot] == OBJ_FREED || slab->state[slot] == OBJ_SHEAF) {
        event(m, PA_SLAB_ERR_ALREADY_FREE, s, slab, (uint64_t)phys, 0, 0, 0, 0);
        return PA_EDOUBLEFREE;
    }
    if (slab->state[slot] == OBJ_NEVER) {
        event(m, PA_SLAB_ERR_NEVER_ALLOCATED, s, slab, (uint64_t)phys, 0, 0, 0, 0);
        return PA_EINVALFREE;
    }
    if (pa_unlikely(slab->state[slot] == OBJ_PINNED)) {
        event(m, PA_SLAB_ERR_PINNED, s, slab, (uint64_t)phys, 0, 0, 0, 0);
        return PA_EINVALFREE;
    }
    *slabp = slab;
    *slotp = (unsigned)slot;
    return PA_OK;
}

static int slab_free_debug(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, unsigned slot, uint64_t caller)
{
    uint64_t obj = obj_phys(s, slab, slot);
    if ((s->flags & PA_SLAB_CONSISTENCY_CHECKS) && !check_object(m, s, slab, slot, SLUB_RED_ACTIVE))
        return PA_ECORRUPT;     /* "Object at 0x... not freed" */
    set_track(m, s, obj, 1, caller);
    init_object(m, s, obj, SLUB_RED_INACTIVE, s->object_size);
    slab->state[slot] = OBJ_FREED;
    s->live--;
    unsigned prior = slab->freelist;
    slab->inuse--;
    set_freepointer(m, s, slab, slot, prior);
    slab->freelist = (uint16_t)slot;
    bool empty = slab->inuse == 0 && s->nr_partial >= s->min_partial;
    if (prior == SLOT_NIL) {
        if (!empty)
            add_partial(m, s, slab, true);
    } else if (empty) {
        remove_partial(m, s, slab);
    }
    if (empty)
        discard_slab(m, s, slab);
    return PA_OK;
}

/* __slab_free: cnt objects head..tail (linked) to a slab that is not this cpu's */
static void slab_free_slow(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, unsigned head, unsigned tail,
                           unsigned cnt)
{
    unsigned prior = slab->freelist;
    set_freepointer(m, s, slab, tail, prior);
    slab->freelist = (uint16_t)head;
    slab->inuse = (uint16_t)(slab->inuse - cnt);
    if (slab->frozen)
        return;
    if (prior == SLOT_NIL && (m->kconfig & PA_KCONFIG_SLUB_CPU_PARTIAL)) {
        put_cpu_partial(m, s, slab, true);      /* it was full */
        return;
    }
    /* on a cpu partial chain (prior set, not on the node list) it stays, even empty */
    if ((slab->inuse != 0 && prior != SLOT_NIL) || (prior != SLOT_NIL && !slab->on_partial))
        return;
    if (slab->inuse == 0 && s->nr_partial >= s->min_partial) {
        if (prior != SLOT_NIL)
            remove_partial(m, s, slab);
        discard_slab(m, s, slab);
    } else if (prior == SLOT_NIL) {
        add_partial(m, s, slab, true);
    }
}

/* do_slab_free: onto the cpu freelist when the slab is this cpu's */
static void do_slab_free(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, unsigned head, unsigned tail,
                         unsigned cnt)
{
    struct pa_cpu_slab *c = &s->cpu[m->cpu];
    if (pa_likely(c->slab == (uint32_t)(slab - m->slabs))) {
        set_freepointer(m, s, slab, tail, c->freelist);
        c->freelist = (uint32_t)head;
        return;
    }
    slab_free_slow(m, s, slab, head, tail, cnt);
}

/* __kmem_cache_free_bulk of sheaf objects: build_detached_freelist takes the
 * last object and links the others of its slab in front of it, looking past
 * at most two objects of other slabs, and moves what it took out of the way */
void slab_free_bulk(pa_machine *m, struct pa_cache *s, uint64_t *p, uint32_t size)
{
    while (size) {
        uint64_t obj = p[--size];
        uint32_t sid = (uint32_t)(obj >> 16);
        struct pa_slab *slab = &m->slabs[sid];
        unsigned head = (unsigned)(obj & 0xffff), tail = head, cnt = 1, lookahead = 3;
        slab->state[head] = OBJ_FREED;
        set_freepointer(m, s, slab, head, SLOT_NIL);
        uint32_t same = size;
        while (size) {
            obj = p[--size];
            if ((uint32_t)(obj >> 16) == sid) {
                unsigned slot = (unsigned)(obj & 0xffff);
                slab->state[slot] = OBJ_FREED;
                set_freepointer(m, s, slab, slot, head);
                head = slot;
                cnt++;
                same--;
                if (size != same) {
                    p[size] = p[same];
                    p[same] = obj;
                }
                continue;
            }
            if (!--lookahead)
                break;
        }
        size = same;
        do_slab_free(m, s, slab, head, tail, cnt);
    }
}

static int slab_free(pa_machine *m, struct pa_cache *s, struct pa_slab *slab, unsigned slot, uint64_t caller)
{
    if (pa_unlikely(is_debug(s)))
        return slab_free_debug(m, s, slab, slot, caller);
    s->live--;
    if (pa_unlikely(s->pcs != NULL)) {
        slab->state[slot] = OBJ_SHEAF;
        free_to_pcs(m, s, SHEAF_OBJ(slab - m->slabs, slot));
        return PA_OK;
    }
    slab->state[slot] = OBJ_FREED;
    struct pa_cpu_slab *c = &s->cpu[m->cpu];
    if (pa_likely(c->slab == (uint32_t)(slab - m->slabs))) {
        set_freepointer(m, s, slab, slot, c->freelist);
        c->freelist = (uint32_t)slot;
        return PA_OK;
    }
    slab_free_slow(m, s, slab, slot, slot, 1);
    return PA_OK;
}

int slab_cache_free(pa_machine *m, int64_t cache, int64_t phys, int64_t caller)
{
    if (pa_unlikely(!m))
        return PA_EINVAL;
    m->ticks++;
    if (pa_unlikely(!valid_cache(m, cache)))
        return PA_EINVAL;
    trace_kmem_cache_free(m, (uint64_t)caller, phys, (uint32_t)cache);
    struct pa_slab *slab;
    unsigned slot;
    int rc = lookup_object(m, phys, &slab, &slot);
    if (pa_unlikely(rc))
        return rc;
    struct pa_cache *s = &m->caches[cache];
    if (pa_unlikely(slab->cache != (uint32_t)cache)) {
        event(m, PA_SLAB_ERR_WRONG_CACHE, s, slab, (uint64_t)phys, 0, 0, 0, (int)slab->cache);
        return PA_EINVALFREE;
    }
    return slab_free(m, s, slab, slot, (uint64_t)caller);
}

PA_ENTRY(int, pa_kmem_cache_free, (pa_machine *m, int64_t cache, int64_t phys, int64_t caller), (m, cache, phys, caller))
{
    return slab_cache_free(m, cache, phys, caller);
}

int slab_kfree(pa_machine *m, int64_t phys, int64_t caller)
{
    if (pa_unlikely(!m))
        return PA_EINVAL;
    m->ticks++;
    trace_kfree(m, (uint64_t)caller, phys);
    if (phys >= 0 && (uint64_t)phys < m->nr_pages << PA_PAGE_SHIFT && !(phys & (PA_PAGE_SIZE - 1))) {
        uint64_t pfn = (uint64_t)phys >> PA_PAGE_SHIFT;
        struct pa_page *p = &m->pages[pfn];
        if ((p->flags & PA_PG_ALLOC) && p->kind == PA_KIND_LARGE_KMALLOC) {
            unsigned order = p->order;
            m->nr_slab_unreclaimable -= 1ull << order;
            return buddy_free_pages(m, (int64_t)pfn, order, PA_KIND_LARGE_KMALLOC);
        }
        unsigned o;
        if (!(p->flags & PA_PG_ALLOC) && (p->flags & PA_PG_FREED) && buddy_page_is_free(m, pfn, &o) != PA_NIL) {
            /* a block freed and not handed out since: kfree'd twice */
            event(m, PA_SLAB_ERR_ALREADY_FREE, NULL, NULL, (uint64_t)phys, 0, 0, 0, 0);
            return PA_EDOUBLEFREE;
        }
    }
    struct pa_slab *slab;
    unsigned slot;
    int rc = lookup_object(m, phys, &slab, &slot);
    if (pa_unlikely(rc))
        return rc;
    return slab_free(m, &m->caches[slab->cache], slab, slot, (uint64_t)caller);
}

PA_ENTRY(int, pa_kfree, (pa_machine *m, int64_t phys, int64_t caller), (m, phys, caller))
{
    return slab_kfree(m, phys, caller);
}

int64_t slab_ksize(pa_machine *m, int64_t phys)
{
    if (!m || phys < 0 || (uint64_t)phys >= m->nr_pages << PA_PAGE_SHIFT)
        return PA_EINVAL;
    unsigned order;
    uint64_t head = buddy_block_containing(m, (uint64_t)phys >> PA_PAGE_SHIFT, PA_PG_ALLOC, &order);
    if (head == PA_NIL)
        return PA_EINVAL;
    const struct pa_page *p = &m->pages[head];
    if (p->kind == PA_KIND_LARGE_KMALLOC)
        return (int64_t)PA_PAGE_SIZE << p->order;
    if (p->kind != PA_KIND_SLAB)
        return PA_EINVAL;
    const struct pa_cache *s = &m->caches[m->slabs[p->priv].cache];
    if (s->flags & (PA_SLAB_RED_ZONE | PA_SLAB_POISON))
        return s->object_size;
    if (s->flags & PA_SLAB_STORE_USER)
        return s->inuse;
    return s->size;
}

PA_ENTRY(int64_t, pa_ksize, (pa_machine *m, int64_t phys), (m, phys))
{
    return slab_ksize(m, phys);
}

/* -- shrink, destroy, info ------------------------------------------------------------------ */

/* flush_all: each cpu in turn, as its flush_cpu_slab work does it - the
 * sheaves (frees to the cpu slab still on the fast path), the cpu slab, then
 * its partial chain */
static void flush_cpu_slabs(pa_machine *m, struct pa_cache *s)
{
    uint32_t home = m->cpu;
    for (uint32_t c = 0; c < m->cpus; c++) {
        struct pa_cpu_slab *cs = &s->cpu[c];
        m->cpu = c;
        if (s->pcs)
            pcs_flush_all(m, s);
        if (cs->slab != PA_NIL) {
            struct pa_slab *slab = &m->slabs[cs->slab];
            unsigned freelist = cs->freelist;
            cs->slab = PA_NIL;
            cs->freelist = SLOT_NIL;
            deactivate_slab(m, s, slab, freelist);
        }
        put_partials_cpu(m, s, cs);
    }
    m->cpu = home;
}

/* the cache an operation names, or NULL; every call counts as one tick */
static struct pa_cache *cache_op(pa_machine *m, int64_t cache)
{
    if (!m)
        return NULL;
    m->ticks++;
    return valid_cache(m, cache) ? &m->caches[cache] : NULL;
}

PA_ENTRY(int, pa_kmem_cache_shrink, (pa_machine *m, int64_t cache), (m, cache))
{
    struct pa_cache *s = cache_op(m, cache);
    if (!s)
        return PA_EINVAL;
    flush_cpu_slabs(m, s);
    if (s->pcs)
        barn_shrink(m, s);
    /* buckets by free count; list_move puts each at its list's head */
    uint32_t promote_head[SHRINK_PROMOTE_MAX], discard_head = PA_NIL;
    for (int i = 0; i < SHRINK_PROMOTE_MAX; i++)
        promote_head[i] = PA_NIL;
    uint32_t rest_head = PA_NIL, rest_tail = PA_NIL;
    uint32_t id = s->partial_head;
    while (id != PA_NIL) {
        struct pa_slab *slab = &m->slabs[id];
        uint32_t next = slab->next;
        unsigned free = slab->objects - slab->inuse;
        if (free == slab->objects) {
            slab->next = discard_head;
            discard_head = id;
        } else if (free <= SHRINK_PROMOTE_MAX) {
            slab->next = promote_head[free - 1];
            promote_head[free - 1] = id;
        } else {
            slab->next = PA_NIL;
            if (rest_tail == PA_NIL)
                rest_head = id;
            else
                m->slabs[rest_tail].next = id;
            rest_tail = id;
        }
        id = next;
    }
    /* rebuild: bucket 0 (fewest free) first ... bucket 31, then the rest */
    s->partial_head = s->partial_tail = PA_NIL;
    s->nr_partial = 0;
    for (int i = 0; i < SHRINK_PROMOTE_MAX; i++)
        for (id = promote_head[i]; id != PA_NIL;) {
            uint32_t next = m->slabs[id].next;
            add_partial(m, s, &m->slabs[id], true);
            id = next;
        }
    for (id = rest_head; id != PA_NIL;) {
        uint32_t next = m->slabs[id].next;
        add_partial(m, s, &m->slabs[id], true);
        id = next;
    }
    for (id = discard_head; id != PA_NIL;) {
        struct pa_slab *slab = &m->slabs[id];
        uint32_t next = slab->next;
        slab->on_partial = 0;
        slab->prev = slab->next = PA_NIL;
        discard_slab(m, s, slab);
        id = next;
    }
    return PA_OK;
}

PA_ENTRY(int, pa_kmem_cache_destroy, (pa_machine *m, int64_t cache), (m, cache))
{
    struct pa_cache *s = cache_op(m, cache);
    if (!s)
        return PA_EINVAL;
    if (s->refcount > 1) {              /* an alias goes, the cache stays */
        s->refcount--;
        return PA_OK;
    }
    if (s->live) {
        /* list the live objects, by address, as list_slab_objects does */
        for (uint64_t pfn = 0; pfn < m->nr_pages && m->nr_events < PA_MAX_SLAB_EVENTS; pfn++) {
            const struct pa_page *p = &m->pages[pfn];
            if (!(p->flags & PA_PG_ALLOC)) {
                continue;
            }
            if (p->kind == PA_KIND_SLAB && m->slabs[p->priv].cache == (uint32_t)cache) {
                const struct pa_slab *slab = &m->slabs[p->priv];
                for (unsigned i = 0; i < slab->objects; i++)
                    if ((slab->state[i] & OBJ_LIVE))
                        event(m, PA_SLAB_ERR_OBJECTS_REMAINING, s, slab, obj_phys(s, slab, i), 0, 0, 0, 0);
            }
            pfn += (1ull << p->order) - 1;
        }
        return PA_EBUSY;
    }
    flush_cpu_slabs(m, s);
    if (s->pcs)
        barn_shrink(m, s);
    while (s->partial_head != PA_NIL) {
        struct pa_slab *slab = &m->slabs[s->partial_head];
        remove_partial(m, s, slab);
        discard_slab(m, s, slab);
    }
    pcs_destroy(m, s);
    free(s->cpu);
    s->cpu = NULL;
    cache_random_seq_destroy(s);
    s->alive = 0;
    for (int t = 0; t < PA_NR_KMALLOC_TABLE; t++)
        for (int i = 0; i < 14; i++)
            if (m->kmalloc_caches[t][i] == (int32_t)cache)
                m->kmalloc_caches[t][i] = -1;
    return PA_OK;
}

PA_ENTRY(int, pa_cache_info, (pa_machine *m, int64_t cache, struct pa_cache_info *out), (m, cache, out))
{
    if (!m || !out || !valid_cache(m, cache))
        return PA_EINVAL;
    const struct pa_cache *s = &m->caches[cache];
    uint64_t free_on_partial = 0;
    for (uint32_t id = s->partial_head; id != PA_NIL; id = m->slabs[id].next)
        free_on_partial += (uint64_t)(m->slabs[id].objects - m->slabs[id].inuse);
    out->flags = s->flags;
    out->object_size = s->object_size;
    out->size = s->size;
    out->align = s->align;
    out->order = s->order;
    out->objects = s->objects;
    out->offset = s->offset;
    out->inuse = s->inuse;
    out->red_left_pad = s->red_left_pad;
    out->min_order = s->min_order;
    out->nr_slabs = s->nr_slabs;
    out->total_objects = s->total_objects;
    out->active_objects = s->total_objects - free_on_partial;
    out->refcount = s->refcount;
    out->allocflags = s->allocflags;
    out->live = s->live;
    out->cpu_partial = s->cpu_partial;
    out->cpu_partial_slabs = s->cpu_partial_slabs;
    out->sheaf_capacity = s->sheaf_capacity;
    return PA_OK;
}

PA_ENTRY(int, pa_take_events, (pa_machine *m, struct pa_slab_event *out, int64_t max), (m, out, max))
{
    if (!m || !out || max < 0)
        return PA_EINVAL;
    uint32_t n = m->nr_events < (uint64_t)max ? m->nr_events : (uint32_t)max;
    memcpy(out, m->events, n * sizeof(*out));
    m->nr_events = 0;
    return (int)n;
}

/* order, objects, inuse and the freelist head (virtual, 0 = none) of the slab at slab_phys */
PA_ENTRY(int, pa_slab_info, (pa_machine *m, int64_t slab_phys, int64_t *out4), (m, slab_phys, out4))
{
    if (!m || !out4 || slab_phys < 0 || (uint64_t)slab_phys >= m->nr_pages << PA_PAGE_SHIFT)
        return PA_EINVAL;
    const struct pa_page *p = &m->pages[(uint64_t)slab_phys >> PA_PAGE_SHIFT];
    if (!(p->flags & PA_PG_ALLOC) || p->kind != PA_KIND_SLAB)
        return PA_EINVAL;
    const struct pa_slab *slab = &m->slabs[p->priv];
    const struct pa_cache *s = &m->caches[slab->cache];
    out4[0] = slab->order;
    out4[1] = slab->objects;
    out4[2] = slab->inuse;
    out4[3] = slab->freelist == SLOT_NIL ? 0 : (int64_t)(PAGE_OFFSET_VIRT + obj_phys(s, slab, slab->freelist));
    return PA_OK;
}

/* Pin (op 1) or unpin (op 0) the live slab object starting at phys, or ask
 * (op -1): 1 pinned, 0 live and not pinned.  A pinned object is refused by
 * every free function (vmalloc pins its page array while the area lives). */
PA_ENTRY(int, pa_slab_pin, (pa_machine *m, int64_t phys, int64_t op), (m, phys, op))
{
    if (phys < 0 || (uint64_t)phys >= m->nr_pages << PA_PAGE_SHIFT || op < -1 || op > 1)
        return PA_EINVAL;
    unsigned order;
    uint64_t head = buddy_block_containing(m, (uint64_t)phys >> PA_PAGE_SHIFT, PA_PG_ALLOC, &order);
    if (head == PA_NIL || m->pages[head].kind != PA_KIND_SLAB)
        return PA_EINVAL;
    struct pa_slab *slab = &m->slabs[m->pages[head].priv];
    const struct pa_cache *s = &m->caches[slab->cache];
    int64_t off = phys - (int64_t)slab_base(slab) - s->red_left_pad;
    if (off < 0 || off % s->size || off / s->size >= slab->objects)
        return PA_EINVAL;
    uint8_t *state = &slab->state[off / s->size];
    if (!(*state & OBJ_LIVE))
        return PA_EINVAL;
    if (op >= 0)
        *state = op ? OBJ_PINNED : OBJ_LIVE;
    return *state == OBJ_PINNED;
}

void slab_machine_free(pa_machine *m)
{
    for (uint32_t id = 0; id < m->nr_slab_ids; id++)
        if (m->slabs[id].used) {
            free(m->slabs[id].chain);
            free(m->slabs[id].state);
        }
    free(m->slabs);
    free(m->free_slab_ids);
    if (m->caches)
        for (uint32_t id = 0; id < m->nr_caches; id++) {
            free(m->caches[id].cpu);
            cache_random_seq_destroy(&m->caches[id]);
            pcs_destroy(m, &m->caches[id]);
        }
    free(m->caches);
}

/* -- invariants and validation ------------------------------------------------------------------ */

#define FAIL(...) do { snprintf(msg, msglen, __VA_ARGS__); return PA_EINVARIANT; } while (0)

static bool on_cpu_partial(const pa_machine *m, const struct pa_cache *s, uint32_t id)
{
    for (uint32_t c = 0; c < m->cpus; c++)
        for (uint32_t sid = s->cpu[c].partial, n = 0; sid != PA_NIL && n <= s->nr_slabs; sid = m->slabs[sid].next, n++)
            if (sid == id)
                return true;
    return false;
}

/* one sheaf: each object a held object of cache id, seen once (marked 6 while
 * counted); unmarking (mark 0) goes through everything and never fails */
static const char *sheaf_check(pa_machine *m, uint32_t id, const struct pa_sheaf *sheaf, uint64_t *held, int mark)
{
    const struct pa_cache *s = &m->caches[id];
    if (sheaf->size > s->sheaf_capacity)
        return mark ? "a sheaf holds more than its capacity" : NULL;
    for (uint32_t i = 0; i < sheaf->size; i++) {
        uint64_t obj = sheaf->objects[i];
        uint32_t sid = (uint32_t)(obj >> 16), slot = (uint32_t)(obj & 0xffff);
        bool ours = sid < m->nr_slab_ids && m->slabs[sid].used && m->slabs[sid].cache == id
                    && slot < m->slabs[sid].objects;
        uint8_t *st = ours ? &m->slabs[sid].state[slot] : NULL;
        if (!mark) {
            if (st && *st == 6)
                *st = OBJ_SHEAF;
            continue;
        }
        if (!st || *st != OBJ_SHEAF)
            return "a sheaf holds an object that is not a held object of the cache (or holds one twice)";
        *st = 6;
    }
    *held += sheaf->size;
    return NULL;
}

static const char *sheaves_walk(pa_machine *m, uint32_t id, uint64_t *held, int mark)
{
    const struct pa_cache *s = &m->caches[id];
    const char *why = NULL;
    for (uint32_t c = 0; c < m->cpus && (!why || !mark); c++) {
        if (!s->pcs[c].main) {
            why = "a cpu has no main sheaf";
            continue;
        }
        const char *w = sheaf_check(m, id, s->pcs[c].main, held, mark);
        if (!w && s->pcs[c].spare)
            w = sheaf_check(m, id, s->pcs[c].spare, held, mark);
        why = why ? why : w;
    }
    uint32_t k = 0;
    for (const struct pa_sheaf *sh = s->barn.full; sh && k <= s->barn.nr_full && (!why || !mark); sh = sh->next, k++) {
        const char *w = sh->size != s->sheaf_capacity ? "a full barn sheaf is not full" : sheaf_check(m, id, sh, held, mark);
        why = why ? why : w;
    }
    if (!why && k != s->barn.nr_full)
        why = "the barn's full count is wrong";
    k = 0;
    for (const struct pa_sheaf *sh = s->barn.empty; sh && !why; sh = sh->next, k++)
        if (k >= s->barn.nr_empty || sh->size)
            why = "the barn's empty list is wrong";
    if (!why && k != s->barn.nr_empty)
        why = "the barn's empty count is wrong";
    return why;
}

/* every sheaf of the cache: counted and marked, then unmarked */
static const char *sheaves_check(pa_machine *m, uint32_t id, uint64_t *held)
{
    const struct pa_cache *s = &m->caches[id];
    if (!s->pcs)
        return s->barn.nr_full || s->barn.nr_empty || s->sheaf_capacity ? "sheaf state without sheaves" : NULL;
    const char *why = sheaves_walk(m, id, held, 1);
    uint64_t ignored = 0;
    sheaves_walk(m, id, &ignored, 0);
    return why;
}

int slab_check(pa_machine *m, char *msg, size_t msglen)
{
    uint64_t pages_rec = 0, pages_unrec = 0, large = 0;
    bool corrupt = false;
    uint64_t *cnt = calloc((size_t)m->nr_caches * 4 + 1, sizeof(uint64_t));
    uint8_t *seen = NULL;
    if (!cnt)
        return PA_ENOMEM;
#undef FAIL
#define FAIL(...) do { snprintf(msg, msglen, __VA_ARGS__); free(cnt); free(seen); return PA_EINVARIANT; } while (0)
    for (uint64_t pfn = 0; pfn < m->nr_pages; pfn++) {
        const struct pa_page *p = &m->pages[pfn];
        if (!(p->flags & PA_PG_ALLOC))
            continue;
        if (p->order > PA_MAX_PAGE_ORDER)
            FAIL("pfn 0x%llx heads a block of order %u", (unsigned long long)pfn, p->order);
        uint64_t span = 1ull << p->order;
        if (p->kind == PA_KIND_LARGE_KMALLOC)
            large += span;
        if (p->kind != PA_KIND_SLAB) {
            pfn += span - 1;
            continue;
        }
        if (p->priv >= m->nr_slab_ids || !m->slabs[p->priv].used || m->slabs[p->priv].pfn != pfn)
            FAIL("slab page at pfn 0x%llx has no slab record", (unsigned long long)pfn);
        struct pa_slab *slab = &m->slabs[p->priv];
        if (slab->order != p->order || !valid_cache(m, slab->cache) || pfn + span > m->nr_pages
            || (uint64_t)slab->objects * m->caches[slab->cache].size > (uint64_t)PA_PAGE_SIZE << slab->order)
            FAIL("slab at pfn 0x%llx is not a live slab page of a live cache", (unsigned long long)pfn);
        struct pa_cache *s = &m->caches[slab->cache];
        uint64_t *c3 = &cnt[slab->cache * 4];
        c3[0]++;
        c3[1] += slab->objects;
        if (s->flags & PA_SLAB_RECLAIM_ACCOUNT)
            pages_rec += span;
        else
            pages_unrec += span;
        unsigned owners = 0;
        struct pa_cpu_slab *owner = NULL;
        for (uint32_t c = 0; c < m->cpus; c++)
            if (s->cpu[c].slab == p->priv) {
                owners++;
                owner = &s->cpu[c];
            }
        if (owners > 1 || (owners == 1) != (slab->frozen != 0))
            FAIL("slab at pfn 0x%llx: frozen=%u but %u cpus hold it", (unsigned long long)pfn, slab->frozen, owners);
        free(seen);
        seen = calloc(slab->objects, 1);
        if (!seen) {
            free(cnt);
            return PA_ENOMEM;
        }
        unsigned heads[2] = {slab->freelist, owner ? owner->freelist : SLOT_NIL};
        unsigned nseen = 0, nfree_own = 0;
        for (int ci = 0; ci < 2; ci++) {
            unsigned slot = heads[ci], n = 0;
            while (slot != SLOT_NIL) {
                if (slot >= slab->objects || seen[slot])
                    FAIL("slab at pfn 0x%llx: freelist loops or leaves the slab", (unsigned long long)pfn);
                if ((slab->state[slot] & OBJ_LIVE))
                    FAIL("slab at pfn 0x%llx: live object in slot %u is on a freelist", (unsigned long long)pfn, slot);
                seen[slot] = 1;
                n++;
                slot = slab->chain[slot];
            }
            nseen += n;
            if (ci == 0)
                nfree_own = n;
        }
        unsigned live = 0, sheafed = 0;
        for (unsigned i = 0; i < slab->objects; i++) {
            live += (slab->state[i] & OBJ_LIVE);
            sheafed += slab->state[i] == OBJ_SHEAF;
        }
        c3[2] += live;
        c3[3] += sheafed;
        if (nseen + live + sheafed != slab->objects)
            FAIL("slab at pfn 0x%llx: %u free objects are on no freelist", (unsigned long long)pfn,
                 slab->objects - nseen - live - sheafed);
        if (slab->slabs && (slab->frozen || slab->on_partial || !on_cpu_partial(m, s, p->priv)))
            FAIL("slab at pfn 0x%llx: cpu partial membership is wrong", (unsigned long long)pfn);
        /* a frozen slab counts its cpu freelist as in use; remote frees lower inuse */
        unsigned expect_inuse = slab->objects - nfree_own;
        if (slab->inuse != expect_inuse)
            FAIL("slab at pfn 0x%llx: inuse %u, expected %u", (unsigned long long)pfn, slab->inuse, expect_inuse);
        bool listed = false;
        for (uint32_t id = s->partial_head; id != PA_NIL; id = m->slabs[id].next)
            if (id == p->priv)
                listed = true;
        if ((slab->on_partial != 0) != listed)
            FAIL("slab at pfn 0x%llx: partial-list membership is wrong", (unsigned long long)pfn);
        if (!slab->frozen && !slab->on_partial && !slab->slabs && nfree_own && !is_debug(s))
            FAIL("slab at pfn 0x%llx has free objects but is on no list", (unsigned long long)pfn);
        if (is_debug(s)) {
            for (unsigned i = 0; i < slab->objects; i++)
                if (!check_object(m, s, slab, i, (slab->state[i] & OBJ_LIVE) ? SLUB_RED_ACTIVE : SLUB_RED_INACTIVE))
                    corrupt = true;
            if (s->flags & PA_SLAB_POISON) {
                uint64_t used = (uint64_t)slab->objects * s->size;
                if (!check_bytes_and_report(m, s, slab, 0, PA_SLAB_ERR_SLAB_PADDING, slab_base(slab) + used,
                                            POISON_INUSE, (int64_t)(((uint64_t)PA_PAGE_SIZE << slab->order) - used)))
                    corrupt = true;
            }
        }
        pfn += span - 1;
    }
    for (uint32_t id = 0; id < m->nr_caches; id++) {
        const struct pa_cache *s = &m->caches[id];
        if (!s->alive)
            continue;
        uint64_t *c3 = &cnt[id * 4];
        if (c3[0] != s->nr_slabs || c3[1] != s->total_objects || c3[2] != s->live)
            FAIL("cache %u: counters %llu/%llu/%llu but slabs say %llu/%llu/%llu", id,
                 (unsigned long long)s->nr_slabs, (unsigned long long)s->total_objects, (unsigned long long)s->live,
                 (unsigned long long)c3[0], (unsigned long long)c3[1], (unsigned long long)c3[2]);
        uint64_t n = 0;
        for (uint32_t sid = s->partial_head; sid != PA_NIL; sid = m->slabs[sid].next) {
            if (!m->slabs[sid].used || m->slabs[sid].cache != id || ++n > s->nr_slabs)
                FAIL("cache %u: partial list holds a slab that is not its own", id);
        }
        if (n != s->nr_partial)
            FAIL("cache %u: nr_partial %llu but the list holds %llu", id, (unsigned long long)s->nr_partial,
                 (unsigned long long)n);
        for (uint32_t c = 0; c < m->cpus; c++) {
            uint32_t len = 0;
            for (uint32_t sid = s->cpu[c].partial; sid != PA_NIL; sid = m->slabs[sid].next)
                if (sid >= m->nr_slab_ids || !m->slabs[sid].used || m->slabs[sid].cache != id || ++len > s->nr_slabs)
                    FAIL("cache %u: cpu %u's partial chain holds a slab that is not its own", id, c);
            for (uint32_t sid = s->cpu[c].partial; sid != PA_NIL; sid = m->slabs[sid].next)
                if (m->slabs[sid].slabs != len--)
                    FAIL("cache %u: cpu %u's partial chain counts its slabs wrong", id, c);
        }
        uint64_t held = 0;
        const char *why = sheaves_check(m, id, &held);
        if (why)
            FAIL("cache %u: %s", id, why);
        if (held != c3[3])
            FAIL("cache %u: sheaves hold %llu objects but %llu are marked held", id, (unsigned long long)held,
                 (unsigned long long)c3[3]);
    }
    if (pages_rec != m->nr_slab_reclaimable || pages_unrec + large != m->nr_slab_unreclaimable)
        FAIL("slab pages %llu/%llu counted but %llu/%llu found", (unsigned long long)m->nr_slab_reclaimable,
             (unsigned long long)m->nr_slab_unreclaimable, (unsigned long long)pages_rec,
             (unsigned long long)(pages_unrec + large));
    free(cnt);
    free(seen);
    return corrupt ? PA_ECORRUPT : PA_OK;
}
