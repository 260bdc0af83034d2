/* trace_parse.c - the lines of a kmem ftrace capture, read in chunks, as fixed records.
 *
 * The twin of pyalloc/model/trace_parse.py, which documents the record and the rules: both
 * give the same records for any bytes.  The matching mirrors the Python regular expressions
 * (HEAD, FIELD, HEADER_CPUS there) with ASCII classes; where a regular expression could
 * backtrack, the order it tries things in is the order here.  Memory is one line
 * (PA_TPARSE_MAX_LINE bytes) however large the capture; a longer line is dropped as it comes.
 */
#include <stdlib.h>
#include <string.h>

#include "pyalloc.h"

struct pa_tparse {
    uint64_t lineno, ignored;
    int after_cr;           /* the last chunk ended at a \r: a \n next ends no line */
    int too_long;           /* the carried line is longer than PA_TPARSE_MAX_LINE: dropped */
    size_t carry_len;
    uint8_t carry[PA_TPARSE_MAX_LINE];
};

static void init_ctype(void);

pa_tparse *pa_tparse_new(void)
{
    init_ctype();
    return calloc(1, sizeof(pa_tparse));
}

void pa_tparse_free(pa_tparse *p)
{
    free(p);
}

uint64_t pa_tparse_lineno(const pa_tparse *p)
{
    return p->lineno;
}

uint64_t pa_tparse_ignored(const pa_tparse *p)
{
    return p->ignored;
}

int pa_tparse_pending(const pa_tparse *p)
{
    return p->carry_len || p->too_long;
}

/* bytes regular expressions: \s is [ \t\n\r\f\v], \w is [A-Za-z0-9_] */
enum { C_SPACE = 1, C_DIGIT = 2, C_WORD = 4, C_DASH = 8 };
static uint8_t ctype[256];

static void init_ctype(void)
{
    if (ctype['0'])
        return;
    for (int c = 0; c < 256; c++) {
        uint8_t t = 0;
        if (c == ' ' || (c >= '\t' && c <= '\r'))
            t |= C_SPACE;
        if (c >= '0' && c <= '9')
            t |= C_DIGIT | C_WORD;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
            t |= C_WORD;
        if (c == '-')
            t |= C_DASH;
        ctype[c] = t;
    }
}

static inline int is_space(uint8_t c)
{
    return ctype[c] & C_SPACE;
}

static inline int is_digit(uint8_t c)
{
    return ctype[c] & C_DIGIT;
}

static inline int is_word(uint8_t c)
{
    return ctype[c] & C_WORD;
}

static int hex_value(uint8_t c)
{
    if (is_digit(c))
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

struct span {
    const uint8_t *s;
    size_t n;
};

struct head {
    size_t cpu, cpu_len, event, event_len, end;
};

#define span_is(v, lit) ((v).s && (v).n == sizeof(lit) - 1 && memcmp((v).s, lit, sizeof(lit) - 1) == 0)

/* one or more bytes of class cls at *i (skipped); 0 when there is none */
static int run(const uint8_t *c, size_t len, size_t *i, uint8_t cls)
{
    size_t j = *i;

    while (j < len && (ctype[c[j]] & cls))
        j++;
    if (j == *i)
        return 0;
    *i = j;
    return 1;
}

static int byte(const uint8_t *c, size_t len, size_t *i, uint8_t want)
{
    if (*i >= len || c[*i] != want)
        return 0;
    ++*i;
    return 1;
}

/* (\d+\.\d+):\s+(\w+): at i */
static int match_tail(const uint8_t *c, size_t len, size_t i, struct head *h)
{
    if (!run(c, len, &i, C_DIGIT) || !byte(c, len, &i, '.') || !run(c, len, &i, C_DIGIT)
        || !byte(c, len, &i, ':') || !run(c, len, &i, C_SPACE))
        return 0;
    h->event = i;
    if (!run(c, len, &i, C_WORD) || !byte(c, len, &i, ':'))
        return 0;
    h->event_len = i - 1 - h->event;
    h->end = i;
    return 1;
}

/* -\d+\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:\S{4,5}\s+)?<tail> at the '-' at p */
static int match_head_at(const uint8_t *c, size_t len, size_t p, struct head *h)
{
    size_t i = p + 1, j;

    if (!run(c, len, &i, C_DIGIT) || !run(c, len, &i, C_SPACE))
        return 0;
    /* the tgid column: if it does not match, the '(' cannot be the '[' either */
    if (byte(c, len, &i, '(')) {
        run(c, len, &i, C_SPACE);
        if (!run(c, len, &i, C_DIGIT | C_DASH) || !byte(c, len, &i, ')') || !run(c, len, &i, C_SPACE))
            return 0;
    }
    if (!byte(c, len, &i, '['))
        return 0;
    h->cpu = i;
    if (!run(c, len, &i, C_DIGIT))
        return 0;
    h->cpu_len = i - h->cpu;
    if (!byte(c, len, &i, ']') || !run(c, len, &i, C_SPACE))
        return 0;
    /* the flags column, five characters then four, then none */
    for (size_t k = 5; k >= 4; k--) {
        size_t n = 0;
        while (n < k && i + n < len && !is_space(c[i + n]))
            n++;
        j = i + k;
        if (n == k && run(c, len, &j, C_SPACE) && match_tail(c, len, j, h))
            return 1;
    }
    return match_tail(c, len, i, h);
}

static int match_head(const uint8_t *c, size_t len, struct head *h)
{
    for (size_t p = 1; p < len; p++) {
        const uint8_t *dash = memchr(c + p, '-', len - p);
        if (!dash)
            return 0;
        p = (size_t)(dash - c);
        if (match_head_at(c, len, p, h))
            return 1;
    }
    return 0;
}

enum { K_SITE, K_PTR, K_REQ, K_ALLOC, K_GFP, K_NAME, K_ACCOUNTED, K_PAGE, K_PFN, K_ORDER, NR_KEYS };
static const char *const KEYS[NR_KEYS] = {
    "call_site", "ptr", "bytes_req", "bytes_alloc", "gfp_flags", "name", "accounted", "page", "pfn", "order",
};

static const uint8_t KEY_LEN[NR_KEYS] = {9, 3, 9, 11, 9, 4, 9, 4, 3, 5};

static int key_index(const uint8_t *k, size_t n)
{
    if (n < 3 || n > 11)
        return -1;
    for (int i = 0; i < NR_KEYS; i++)
        if (KEY_LEN[i] == n && KEYS[i][0] == k[0] && memcmp(KEYS[i], k, n) == 0)
            return i;
    return -1;
}

/* the first whitespace byte at or after v (or len): eight bytes at a time while none of them
 * is below '!' (every \s byte is) */
static size_t value_end(const uint8_t *c, size_t len, size_t v)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;

    while (v + 8 <= len) {
        uint64_t x;
        memcpy(&x, c + v, 8);
        if ((x - ones * '!') & ~x & highs)
            break;
        v += 8;
    }
    while (v < len && !is_space(c[v]))
        v++;
    return v;
}

/* every (?<!\w)(\w+)=(?: +(?=\(null\)))?(\S*) from i; the last of a key wins */
static void match_fields(const uint8_t *c, size_t len, size_t i, struct span *f)
{
    while (i < len) {
        if (!is_word(c[i]) || is_word(c[i - 1])) {
            i++;
            continue;
        }
        size_t k = i;
        while (k < len && is_word(c[k]))
            k++;
        if (k >= len || c[k] != '=') {
            i = k;
            continue;
        }
        size_t v = k + 1, s = v, e;
        while (s < len && c[s] == ' ')
            s++;
        if (s > v && len - s >= 6 && memcmp(c + s, "(null)", 6) == 0)
            v = s;
        e = value_end(c, len, v);
        int key = key_index(c + i, k - i);
        if (key >= 0) {
            f[key].s = c + v;
            f[key].n = e - v;
        }
        i = e > i ? e : i + 1;
    }
}

/* n (1 to 16) hex digits */
static int hex_digits(const uint8_t *s, size_t n, uint64_t *out)
{
    uint64_t x = 0;

    if (n == 0 || n > 16)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int d = hex_value(s[i]);
        if (d < 0)
            return 0;
        x = x << 4 | (uint64_t)d;
    }
    *out = x;
    return 1;
}

/* a decimal of at most 18 digits or 0x and at most 15 hex digits; else the line is raw */
static int fast_num(struct span v, uint64_t *out)
{
    uint64_t x = 0;

    if (!v.s || v.n == 0)
        return 0;
    if (v.n >= 3 && v.n <= 17 && v.s[0] == '0' && (v.s[1] | 0x20) == 'x')
        return hex_digits(v.s + 2, v.n - 2, out);
    if (v.n > 18)
        return 0;
    for (size_t i = 0; i < v.n; i++) {
        if (!is_digit(v.s[i]))
            return 0;
        x = x * 10 + (uint64_t)(v.s[i] - '0');
    }
    *out = x;
    return 1;
}

static int is_null_text(struct span v)
{
    return span_is(v, "0000000000000000") || span_is(v, "(null)") || span_is(v, "0")
        || span_is(v, "00000000") || span_is(v, "0x0");
}

static int fast_ptr(struct span v, uint64_t *out, uint64_t *flags)
{
    if (!v.s)
        return 0;
    if (is_null_text(v)) {
        *out = 0;
        *flags |= PA_TPARSE_F_NULL;
        return 1;
    }
    return hex_digits(v.s, v.n, out);
}

/* the event of a name (0: another event); *spelling: 0 6.18's name, 1 mm_page_free_batched,
 * -1 an older name (3.x page frees, the _node events until 6.2), whose lines are raw */
static int event_kind(const uint8_t *e, size_t n, int *spelling)
{
    /* _abi.TRACE_EVENT_SPELLINGS, the most frequent first */
    const size_t nr_events = sizeof(pa_trace_event_spellings) / sizeof(pa_trace_event_spellings[0]);
    for (size_t i = 0; i < nr_events; i++) {
        const char *name = pa_trace_event_spellings[i].name;
        if (name[0] == e[0] && strlen(name) == n && memcmp(name, e, n) == 0) {
            *spelling = pa_trace_event_spellings[i].spelling;
            return pa_trace_event_spellings[i].kind;
        }
    }
    return 0;
}

struct out {
    uint64_t *rec;
    uint8_t *text;
    int64_t nrec, ntext;
};

static uint64_t *new_rec(struct out *o, uint64_t kind, uint64_t lineno)
{
    uint64_t *r = o->rec + o->nrec++ * PA_TPARSE_WORDS;
    memset(r, 0, PA_TPARSE_WORDS * sizeof(*r));
    r[0] = kind;
    r[1] = lineno;
    return r;
}

static void put_text(struct out *o, uint64_t *r, int word, const uint8_t *s, size_t n)
{
    r[word] = (uint64_t)o->ntext;
    r[word + 1] = n;
    if (n)
        memcpy(o->text + o->ntext, s, n);
    o->ntext += (int64_t)n;
}

static void bad_line(struct out *o, uint64_t lineno, uint64_t why, const uint8_t *keep, size_t n)
{
    uint64_t *r = new_rec(o, PA_TPARSE_BAD, lineno);
    r[2] = why;
    put_text(o, r, 7, keep, n);
}

/* #P:(\d{1,5})\b anywhere in a header line */
static void header_line(struct out *o, uint64_t lineno, const uint8_t *c, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++) {
        if (memcmp(c + i, "#P:", 3) != 0)
            continue;
        size_t j = i + 3;
        uint64_t cpus = 0;
        while (j < len && is_digit(c[j]) && j - i - 3 < 6)
            cpus = cpus * 10 + (uint64_t)(c[j++] - '0');
        if (j > i + 3 && j - i - 3 <= 5 && (j >= len || !is_word(c[j]))) {
            new_rec(o, PA_TPARSE_CPUS, lineno)[2] = cpus;
            return;
        }
    }
}

/* the fast record of a known event; 0 when its line is left to the caller (raw) */
static int event_line(struct out *o, uint64_t lineno, int kind, int spelling, const uint8_t *c, size_t len,
                      const struct head *h)
{
    struct span f[NR_KEYS] = {{0}};
    uint64_t cpu = 0, ptr = 0, a = 0, b = 0, flags = 0;

    if (h->cpu_len > 18 || spelling < 0)
        return 0;
    for (size_t i = 0; i < h->cpu_len; i++)
        cpu = cpu * 10 + (uint64_t)(c[h->cpu + i] - '0');
    if (cpu >= PA_OP_CPU_CURRENT)
        return 0;
    match_fields(c, len, h->end, f);
    if (kind == PA_TRACE_MM_PAGE_ALLOC) {
        if (!fast_num(f[K_PFN], &ptr) || !fast_num(f[K_ORDER], &a))
            return 0;
        if (!(f[K_PAGE].s && is_null_text(f[K_PAGE])) && !(ptr == 0 && (!f[K_PAGE].s || f[K_PAGE].n == 0)))
            flags = PA_TPARSE_F_PAGE;
    } else if (kind == PA_TRACE_MM_PAGE_FREE) {
        if (!fast_num(f[K_PFN], &ptr) || (f[K_ORDER].s && !fast_num(f[K_ORDER], &a)))
            return 0;
        b = (uint64_t)spelling;
    } else {
        if (!fast_ptr(f[K_PTR], &ptr, &flags))
            return 0;
        if (kind == PA_TRACE_KMALLOC || kind == PA_TRACE_KMEM_CACHE_ALLOC) {
            if (!fast_num(f[K_REQ], &a))
                return 0;
            if (f[K_ALLOC].s) {
                if (!fast_num(f[K_ALLOC], &b))
                    return 0;
                flags |= PA_TPARSE_F_ALLOC;
            } else if (kind == PA_TRACE_KMEM_CACHE_ALLOC) {
                return 0;
            }
            if (span_is(f[K_ACCOUNTED], "true"))
                flags |= PA_TPARSE_F_ACCOUNTED;
        }
    }
    uint64_t *r = new_rec(o, (uint64_t)kind, lineno);
    r[2] = cpu;
    r[3] = ptr;
    r[4] = a;
    r[5] = b;
    static const struct { int key, word; uint64_t bit; } texts[] = {
        {K_SITE, 7, PA_TPARSE_F_SITE}, {K_GFP, 9, PA_TPARSE_F_GFP}, {K_NAME, 11, PA_TPARSE_F_NAME},
    };
    for (size_t i = 0; i < 3; i++) {
        if (f[texts[i].key].s) {
            flags |= texts[i].bit;
            put_text(o, r, texts[i].word, f[texts[i].key].s, f[texts[i].key].n);
        }
    }
    r[6] = flags;
    return 1;
}

/* may_nul: the line may hold a NUL (the chunk it came from does) */
static void one_line(pa_tparse *p, struct out *o, const uint8_t *c, size_t len, int too_long, int may_nul)
{
    struct head h;
    uint64_t lineno = ++p->lineno;

    if (too_long) {
        bad_line(o, lineno, PA_TPARSE_BAD_LONG, NULL, 0);
    } else if (may_nul && memchr(c, 0, len)) {
        bad_line(o, lineno, PA_TPARSE_BAD_NUL, NULL, 0);
    } else if (len && c[0] == '#') {
        header_line(o, lineno, c, len);
    } else if (!match_head(c, len, &h)) {
        size_t n = len;
        while (n && is_space(c[n - 1]))
            n--;
        if (n)
            bad_line(o, lineno, PA_TPARSE_BAD_LINE, c, n < PA_TPARSE_KEEP ? n : PA_TPARSE_KEEP);
    } else if (h.cpu_len > PA_TPARSE_MAX_DIGITS) {
        bad_line(o, lineno, PA_TPARSE_BAD_CPU, NULL, 0);
    } else {
        int spelling;
        int kind = event_kind(c + h.event, h.event_len, &spelling);
        if (!kind) {
            p->ignored++;
        } else if (!event_line(o, lineno, kind, spelling, c, len, &h)) {
            uint64_t *r = new_rec(o, PA_TPARSE_RAW, lineno);
            r[2] = (uint64_t)kind;
            put_text(o, r, 7, c, len);
        }
    }
}

/* the start of a line that the chunk does not end */
static void carry(pa_tparse *p, const uint8_t *s, size_t n)
{
    if (p->too_long)
        return;
    if (p->carry_len + n > PA_TPARSE_MAX_LINE) {
        p->too_long = 1;
        p->carry_len = 0;
        return;
    }
    memcpy(p->carry + p->carry_len, s, n);
    p->carry_len += n;
}

static void carried_line(pa_tparse *p, struct out *o)
{
    int too_long = p->too_long;
    size_t len = p->carry_len;

    p->too_long = 0;
    p->carry_len = 0;
    one_line(p, o, p->carry, len, too_long, 1);
}

int64_t pa_tparse_feed(pa_tparse *p, const uint8_t *data, int64_t n, int final, uint64_t *rec, int64_t rec_cap,
                       uint8_t *text, int64_t text_cap, int64_t *nrec, int64_t *ntext)
{
    struct out o = {rec, text, 0, 0};
    size_t pos = 0, len = n > 0 ? (size_t)n : 0;

    *nrec = *ntext = 0;
    if (rec_cap < 1 || text_cap < PA_TPARSE_MAX_LINE)
        return -1;
    if (p->after_cr && len) {
        p->after_cr = 0;
        if (data[0] == '\n')
            pos = 1;
    }
    /* the next \r and NUL at or after pos, looked for again only once pos passes them:
     * captures have neither, and each byte is looked at once */
    size_t next_cr = 0, next_nul = 0;
    int have_cr = 0, have_nul = 0;
    while (pos < len) {
        /* a line's record and text must fit before it is taken: else return what was read */
        if (o.nrec >= rec_cap || o.ntext + PA_TPARSE_MAX_LINE > text_cap)
            break;
        const uint8_t *s = data + pos, *stop = data + len;
        const uint8_t *end = memchr(s, '\n', len - pos), *cr;
        if (!end)
            end = stop;
        if (!have_cr || next_cr < pos) {
            cr = memchr(s, '\r', len - pos);
            next_cr = cr ? (size_t)(cr - data) : len;
            have_cr = 1;
        }
        if (data + next_cr < end)
            end = data + next_cr;
        if (!have_nul || next_nul < pos) {
            const uint8_t *nul = memchr(s, 0, len - pos);
            next_nul = nul ? (size_t)(nul - data) : len;
            have_nul = 1;
        }
        int may_nul = data + next_nul < end;
        size_t piece = (size_t)(end - s);
        if (end == stop) {
            carry(p, s, piece);
            pos = len;
            break;
        }
        size_t next = pos + piece + 1;
        if (*end == '\r') {
            if (next < len) {
                if (data[next] == '\n')
                    next++;
            } else {
                p->after_cr = 1;
            }
        }
        if (p->carry_len || p->too_long) {
            carry(p, s, piece);
            carried_line(p, &o);
        } else if (piece > PA_TPARSE_MAX_LINE) {
            one_line(p, &o, s, 0, 1, 0);
        } else {
            one_line(p, &o, s, piece, 0, may_nul);
        }
        pos = next;
    }
    /* the last line has no end: taken when it fits, else by the next call (pa_tparse_pending) */
    if (final && pos >= len && (p->carry_len || p->too_long) && o.nrec < rec_cap
        && o.ntext + PA_TPARSE_MAX_LINE <= text_cap)
        carried_line(p, &o);
    *nrec = o.nrec;
    *ntext = o.ntext;
    return (int64_t)pos;
}
