/*
 * trace.c - the kmem tracepoints, in the ftrace text of Linux 6.18.
 *
 * The hooks (internal.h, one line at each event in buddy.c and slab.c) append
 * a fixed-size binary record; pa_trace_take() turns records into text in bulk
 * when Python drains the buffer.  Formatting late keeps a traced operation
 * cheap and lets Python name callers and caches after the fact: it registers
 * every name it knows before each drain.  pyalloc/trace.py formats the
 * model's records with the same rules; a test compares the two texts.
 *
 * Line layout, as the kernel's trace output prints it (print_trace_fmt):
 *   "%16s-%-7d [%03d] ..... %5lu.%06lu: <event>: <fields>\n"
 * The flags column is always "....." (no irqs off, no preemption count), the
 * timestamp is the simulated clock (one microsecond per core operation, as
 * dmesg), and every pointer is printed unhashed: a simulator hides nothing.
 * Pages print as their struct page address, vmemmap + pfn * 64.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "trace.h"

#define VMEMMAP_START 0xffffea0000000000ull
#define STRUCT_PAGE_SIZE 64u
#define GFP_ACCOUNT 0x400000u

struct trace_rec {
    uint8_t type;           /* TRACE_* */
    uint8_t pad;
    uint16_t cpu;
    uint32_t gfp;
    uint64_t ticks;         /* the clock when the event fired */
    uint64_t ptr;           /* virtual address (0: NULL) or pfn (PA_NIL: none) */
    uint64_t a, b;          /* bytes_req/bytes_alloc, or order/migratetype */
    uint32_t caller;        /* caller id, 0 for none */
    uint32_t extra;         /* cache id, bit 31: accounted */
};

/* A trace repeats a handful of masks: their text is kept, direct-mapped by mask. */
enum { GFP_MEMO_SLOTS = 64, GFP_MEMO_TEXT = 160 };
struct gfp_memo {
    uint32_t mask;
    uint32_t len;                       /* 0: empty slot */
    char text[GFP_MEMO_TEXT];
};

struct name_table {
    char **name;
    uint32_t nr;
};

struct pa_trace {
    struct trace_rec *rec;
    uint64_t head, len, cap;            /* records [head, len) are not yet drained */
    uint64_t lost;                      /* records dropped when host memory ran out */
    char comm[17];
    int32_t pid;
    struct name_table callers, caches;
    uint32_t *gfp_mask;                 /* the print table, in order */
    char **gfp_name;
    uint32_t nr_gfp;
    size_t gfp_names_len;               /* all names and separators: a bound of one mask's text */
    struct gfp_memo memo[GFP_MEMO_SLOTS];
};

/* -- recording ---------------------------------------------------------------------- */

void trace_event(pa_machine *m, unsigned type, uint64_t ptr, uint64_t a, uint64_t b, uint32_t gfp,
                 uint32_t caller, uint32_t extra)
{
    struct pa_trace *t = m->trace;
    if (pa_unlikely(t->len == t->cap)) {
        uint64_t cap = t->cap ? t->cap * 2 : 4096;
        struct trace_rec *n = realloc(t->rec, cap * sizeof(*n));
        if (!n) {
            t->lost++;
            return;
        }
        t->rec = n;
        t->cap = cap;
    }
    struct trace_rec *r = &t->rec[t->len++];
    r->type = (uint8_t)type;
    r->pad = 0;
    r->cpu = (uint16_t)m->cpu;
    r->gfp = gfp;
    r->ticks = m->ticks;
    r->ptr = ptr;
    r->a = a;
    r->b = b;
    r->caller = caller;
    r->extra = extra;
}

static void names_free(struct name_table *nt)
{
    for (uint32_t i = 0; i < nt->nr; i++)
        free(nt->name[i]);
    free(nt->name);
    nt->name = NULL;
    nt->nr = 0;
}

void trace_machine_free(pa_machine *m)
{
    struct pa_trace *t = m->trace;
    if (!t)
        return;
    names_free(&t->callers);
    names_free(&t->caches);
    for (uint32_t i = 0; i < t->nr_gfp; i++)
        free(t->gfp_name[i]);
    free(t->gfp_name);
    free(t->gfp_mask);
    free(t->rec);
    free(t);
    m->trace = NULL;
}

/* -- the API Python drives ----------------------------------------------------------------- */

PA_ENTRY(int, pa_trace_start, (pa_machine *m, const char *comm, int64_t pid), (m, comm, pid))
{
    if (!m || !comm || pid < 0 || pid > INT32_MAX)
        return PA_EINVAL;
    if (m->trace)
        return PA_EBUSY;
    struct pa_trace *t = calloc(1, sizeof(*t));
    if (!t)
        return PA_ENOMEM;
    strncpy(t->comm, comm, sizeof(t->comm) - 1);
    t->pid = (int32_t)pid;
    m->trace = t;
    return PA_OK;
}

PA_ENTRY(int, pa_trace_stop, (pa_machine *m), (m))
{
    if (!m)
        return PA_EINVAL;
    trace_machine_free(m);
    return PA_OK;
}

PA_ENTRY(int, pa_trace_gfp_name, (pa_machine *m, int64_t mask, const char *name), (m, mask, name))
{
    if (!m || !m->trace || !name || mask <= 0 || mask > (int64_t)UINT32_MAX)
        return PA_EINVAL;
    struct pa_trace *t = m->trace;
    uint32_t *nm = realloc(t->gfp_mask, (t->nr_gfp + 1) * sizeof(*nm));
    if (!nm)
        return PA_ENOMEM;
    t->gfp_mask = nm;
    char **nn = realloc(t->gfp_name, (t->nr_gfp + 1) * sizeof(*nn));
    if (!nn)
        return PA_ENOMEM;
    t->gfp_name = nn;
    char *copy = strdup(name);
    if (!copy)
        return PA_ENOMEM;
    t->gfp_mask[t->nr_gfp] = (uint32_t)mask;
    t->gfp_name[t->nr_gfp++] = copy;
    t->gfp_names_len += strlen(copy) + 1;
    memset(t->memo, 0, sizeof(t->memo));
    return PA_OK;
}

static int name_set(struct name_table *nt, int64_t id, const char *name)
{
    if (id < 0 || id > INT32_MAX || !name)
        return PA_EINVAL;
    if ((uint64_t)id >= nt->nr) {
        uint32_t nr = (uint32_t)id + 1;
        char **n = realloc(nt->name, nr * sizeof(*n));
        if (!n)
            return PA_ENOMEM;
        memset(n + nt->nr, 0, (nr - nt->nr) * sizeof(*n));
        nt->name = n;
        nt->nr = nr;
    }
    char *copy = strdup(name);
    if (!copy)
        return PA_ENOMEM;
    free(nt->name[id]);
    nt->name[id] = copy;
    return PA_OK;
}

/* what: 0 names a caller id, 1 a cache id */
PA_ENTRY(int, pa_trace_name, (pa_machine *m, int64_t what, int64_t id, const char *name), (m, what, id, name))
{
    if (!m || !m->trace || (what != 0 && what != 1))
        return PA_EINVAL;
    return name_set(what ? &m->trace->caches : &m->trace->callers, id, name);
}

PA_ENTRY(int, pa_trace_kfree, (pa_machine *m, int64_t vaddr, int64_t caller), (m, vaddr, caller))
{
    if (!m || caller < 0 || caller > (int64_t)UINT32_MAX)
        return PA_EINVAL;
    if (m->trace)
        trace_event(m, TRACE_KFREE, (uint64_t)vaddr, 0, 0, 0, (uint32_t)caller, 0);
    return PA_OK;
}

uint64_t trace_pending(const pa_machine *m)
{
    return m->trace ? m->trace->len - m->trace->head : 0;
}

PA_ENTRY(int64_t, pa_trace_pending, (pa_machine *m), (m))
{
    return m ? (int64_t)trace_pending(m) : 0;
}

PA_ENTRY(int64_t, pa_trace_lost, (pa_machine *m), (m))
{
    return m && m->trace ? (int64_t)m->trace->lost : 0;
}

/* -- formatting ----------------------------------------------------------------------------- */

struct out {
    char *p, *end;
};

static inline void put_str(struct out *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o->p, s, n);
    o->p += n;
}

static inline void put_udec(struct out *o, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *o->p++ = tmp[--n];
}

static inline void put_udec_width(struct out *o, uint64_t v, int width, char fill)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = n; i < width; i++)
        *o->p++ = fill;
    while (n)
        *o->p++ = tmp[--n];
}

static inline void put_hex(struct out *o, uint64_t v, int width)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    for (int i = n; i < width; i++)
        *o->p++ = '0';
    while (n)
        *o->p++ = tmp[--n];
}

static void put_gfp_compute(struct out *o, const struct pa_trace *t, uint32_t flags)
{
    if (!flags) {
        put_str(o, "none");
        return;
    }
    bool first = true;
    for (uint32_t i = 0; i < t->nr_gfp && flags; i++) {
        uint32_t mask = t->gfp_mask[i];
        if ((flags & mask) == mask) {
            if (!first)
                *o->p++ = '|';
            put_str(o, t->gfp_name[i]);
            flags &= ~mask;
            first = false;
        }
    }
    if (flags) {
        if (!first)
            *o->p++ = '|';
        put_str(o, "0x");
        put_hex(o, flags, 1);
    }
}

static void put_gfp(struct out *o, struct pa_trace *t, uint32_t flags)
{
    struct gfp_memo *slot = &t->memo[(flags * 2654435761u) >> 26];
    if (slot->len && slot->mask == flags) {
        memcpy(o->p, slot->text, slot->len);
        o->p += slot->len;
        return;
    }
    char *start = o->p;
    put_gfp_compute(o, t, flags);
    size_t len = (size_t)(o->p - start);
    if (len < GFP_MEMO_TEXT) {
        memcpy(slot->text, start, len);
        slot->mask = flags;
        slot->len = (uint32_t)len;
    }
}

static const char *name_of(const struct name_table *nt, uint32_t id)
{
    return id < nt->nr && nt->name[id] ? nt->name[id] : NULL;
}

static void put_call_site(struct out *o, const struct pa_trace *t, uint32_t caller)
{
    put_str(o, "call_site=");
    const char *name = name_of(&t->callers, caller);
    if (name) {
        put_str(o, name);
    } else {
        put_str(o, "0x");
        put_hex(o, caller, 1);
    }
}

/* an upper bound of one line's length, so formatting never checks per byte */
static size_t line_bound(const struct pa_trace *t, const struct trace_rec *r)
{
    size_t n = 256;
    const char *s = name_of(&t->callers, r->caller);
    n += s ? strlen(s) : 0;
    s = name_of(&t->caches, r->extra & 0x7fffffffu);
    n += s ? strlen(s) : 0;
    return r->gfp ? n + t->gfp_names_len : n;
}

static void format_rec(struct out *o, struct pa_trace *t, const struct trace_rec *r)
{
    static const char *const event[] = {"", "kmalloc", "kmem_cache_alloc", "kfree", "kmem_cache_free",
                                        "mm_page_alloc", "mm_page_free"};
    size_t clen = strlen(t->comm);
    for (size_t i = clen; i < 16; i++)
        *o->p++ = ' ';
    put_str(o, t->comm);
    *o->p++ = '-';
    char *pid_start = o->p;
    put_udec(o, (uint64_t)t->pid);
    while (o->p - pid_start < 7)
        *o->p++ = ' ';
    put_str(o, " [");
    put_udec_width(o, r->cpu, 3, '0');
    put_str(o, "] ..... ");
    put_udec_width(o, r->ticks / 1000000, 5, ' ');
    *o->p++ = '.';
    put_udec_width(o, r->ticks % 1000000, 6, '0');
    put_str(o, ": ");
    put_str(o, event[r->type]);
    put_str(o, ": ");
    const char *cache = name_of(&t->caches, r->extra & 0x7fffffffu);
    switch (r->type) {
    case TRACE_KMALLOC:
    case TRACE_KMEM_CACHE_ALLOC:
        put_call_site(o, t, r->caller);
        put_str(o, " ptr=");
        put_hex(o, r->ptr, 16);
        if (r->type == TRACE_KMEM_CACHE_ALLOC) {
            put_str(o, " name=");
            put_str(o, cache ? cache : "(unknown)");
        }
        put_str(o, " bytes_req=");
        put_udec(o, r->a);
        put_str(o, " bytes_alloc=");
        put_udec(o, r->b);
        put_str(o, " gfp_flags=");
        put_gfp(o, t, r->gfp);
        put_str(o, " node=-1 accounted=");
        put_str(o, (r->type == TRACE_KMALLOC ? (r->gfp & GFP_ACCOUNT) : (r->extra & 0x80000000u)) ? "true" : "false");
        break;
    case TRACE_KFREE:
    case TRACE_KMEM_CACHE_FREE:
        put_call_site(o, t, r->caller);
        put_str(o, " ptr=");
        put_hex(o, r->ptr, 16);
        if (r->type == TRACE_KMEM_CACHE_FREE) {
            put_str(o, " name=");
            put_str(o, cache ? cache : "(unknown)");
        }
        break;
    case TRACE_MM_PAGE_ALLOC:
    case TRACE_MM_PAGE_FREE: {
        bool none = r->ptr == PA_NIL;
        put_str(o, "page=");
        put_hex(o, none ? 0 : VMEMMAP_START + r->ptr * STRUCT_PAGE_SIZE, 16);
        put_str(o, " pfn=0x");
        put_hex(o, none ? 0 : r->ptr, 1);
        put_str(o, " order=");
        put_udec(o, r->a);
        if (r->type == TRACE_MM_PAGE_ALLOC) {
            put_str(o, " migratetype=");
            put_udec(o, r->b);
            put_str(o, " gfp_flags=");
            put_gfp(o, t, r->gfp);
        }
        break;
    }
    }
    *o->p++ = '\n';
}

/* Format whole lines into out[0, max) and drop them from the buffer; the
 * number of bytes written (0 when nothing is pending). */
PA_ENTRY(int64_t, pa_trace_take, (pa_machine *m, char *out, int64_t max), (m, out, max))
{
    if (!m || !out || max < 0)
        return PA_EINVAL;
    struct pa_trace *t = m->trace;
    if (!t)
        return 0;
    struct out o = {out, out + max};
    while (t->head < t->len) {
        const struct trace_rec *r = &t->rec[t->head];
        if ((size_t)(o.end - o.p) < line_bound(t, r))
            break;
        format_rec(&o, t, r);
        t->head++;
    }
    if (t->head == t->len)
        t->head = t->len = 0;
    return o.p - out;
}
