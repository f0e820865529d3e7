#include "tw_places.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistd.h>
#include <unistr.h>
#include <zlib.h>

/* ======================================================================
 * Name keys
 * ====================================================================== */

/* Key builder: words of alphanumerics separated by single spaces. */
typedef struct {
    char *out;
    size_t cap, len;
    size_t tok;   /* start of the current word */
    bool in_tok;  /* a word is open */
    bool overflow;
} keybuf;

static void kb_append(keybuf *b, const char *s, size_t n)
{
    if (b->overflow || b->len + n + 1 > b->cap) {
        b->overflow = true;
        return;
    }
    memcpy(b->out + b->len, s, n);
    b->len += n;
}

/* Close the current word, expanding the abbreviations of Saint/Sainte. */
static void kb_end_word(keybuf *b)
{
    if (!b->in_tok)
        return;
    b->in_tok = false;
    if (b->overflow)
        return;
    const char *t = b->out + b->tok;
    size_t tl = b->len - b->tok;
    if ((tl == 2 && memcmp(t, "st", 2) == 0) || (tl == 5 && memcmp(t, "sankt", 5) == 0)) {
        b->len = b->tok;
        kb_append(b, "saint", 5);
    } else if (tl == 3 && memcmp(t, "ste", 3) == 0) {
        b->len = b->tok;
        kb_append(b, "sainte", 6);
    }
}

static void kb_put(keybuf *b, const char *s, size_t n)
{
    if (!b->in_tok) {
        if (b->len > 0)
            kb_append(b, " ", 1);
        b->tok = b->len;
        b->in_tok = true;
    }
    kb_append(b, s, n);
}

/* Letters without a canonical decomposition, after case folding. */
static const char *translit(ucs4_t uc)
{
    switch (uc) {
    case 0x00E6: return "ae"; /* æ */
    case 0x00F0: return "d";  /* ð */
    case 0x00F8: return "o";  /* ø */
    case 0x00FE: return "th"; /* þ */
    case 0x0111: return "d";  /* đ */
    case 0x0127: return "h";  /* ħ */
    case 0x0131: return "i";  /* dotless ı */
    case 0x0142: return "l";  /* ł */
    case 0x0153: return "oe"; /* œ */
    default: return NULL;
    }
}

int tw_place_key(const char *s, size_t len, unsigned flags, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return -1;
    out[0] = '\0';
    if (!s || len > TW_PLACE_NAME_MAX || memchr(s, '\0', len))
        return -1;
    keybuf b = {.out = out, .cap = outlen};
    bool ascii = true;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80) {
            ascii = false;
            break;
        }
    if (ascii && !(flags & TW_PLACE_KEY_NO_FAST)) {
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)s[i];
            if (isalnum(c)) {
                char l = (char)tolower(c);
                kb_put(&b, &l, 1);
            } else {
                kb_end_word(&b);
            }
        }
    } else {
        if (u8_check((const uint8_t *)s, len) != NULL)
            return -1;
        uint8_t fbuf[TW_PLACE_NAME_MAX * 4 + 64];
        size_t flen = sizeof fbuf;
        uint8_t *f = u8_casefold((const uint8_t *)s, len, NULL, UNINORM_NFKD, fbuf, &flen);
        if (!f)
            return -1;
        char last = 0; /* last ASCII letter emitted, for ü→ue */
        for (size_t i = 0; i < flen;) {
            ucs4_t uc;
            int n = u8_mbtouc(&uc, f + i, flen - i);
            if (n <= 0)
                break;
            i += (size_t)n;
            if (uc_is_general_category(uc, UC_CATEGORY_M)) {
                if ((flags & TW_PLACE_KEY_UMLAUT_E) && uc == 0x0308 &&
                    (last == 'a' || last == 'o' || last == 'u')) {
                    kb_put(&b, "e", 1);
                    last = 0;
                }
                continue;
            }
            const char *t = translit(uc);
            if (t) {
                kb_put(&b, t, strlen(t));
                last = 0;
            } else if (uc == 0x00B7) {
                /* Catalan middle dot (l·l) joins, it does not separate. */
            } else if (uc_is_alnum(uc)) {
                if (uc < 0x80) {
                    char c = (char)tolower((int)uc);
                    kb_put(&b, &c, 1);
                    last = c;
                } else {
                    uint8_t enc[6];
                    int el = u8_uctomb(enc, uc, (ptrdiff_t)sizeof enc);
                    if (el > 0)
                        kb_put(&b, (const char *)enc, (size_t)el);
                    last = 0;
                }
            } else {
                kb_end_word(&b);
                last = 0;
            }
        }
        if (f != fbuf)
            free(f);
    }
    kb_end_word(&b);
    if (b.overflow || b.len > INT_MAX) {
        out[0] = '\0';
        return -1;
    }
    out[b.len] = '\0';
    return (int)b.len;
}

/* Whether s may hold a/o/u with a diaeresis (precomposed ä ö ü Ä Ö Ü, the
 * Latin Extended-B block with ǖ ǘ ǚ ǜ ǟ, or a combining U+0308): only then
 * can the ü→ue key differ, so the second folding is skipped otherwise. */
static bool may_have_umlaut(const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if (u[0] == 0xC7 || (u[0] == 0xCC && u[1] == 0x88))
            return true;
        if (u[0] == 0xC3 && (u[1] == 0x84 || u[1] == 0x96 || u[1] == 0x9C || u[1] == 0xA4 ||
                             u[1] == 0xB6 || u[1] == 0xBC))
            return true;
    }
    return false;
}

/* ======================================================================
 * Table layout
 * ====================================================================== */

typedef struct {
    uint32_t name;   /* pool offset */
    uint32_t admin1; /* pool offset; 0 is "" */
    double lat, lon;
    char cc[2];
} entry;

typedef struct {
    uint32_t key; /* pool offset of a key */
    uint32_t ref; /* entry index (gazetteer) or hub index (hub keys) */
} keyrow;

typedef struct {
    uint32_t name, aliases, admin1; /* pool offsets */
    double x, y, z;                 /* unit vector, for nearest-hub search */
} hubstr;

typedef struct {
    uint32_t admin1, iso; /* pool offsets: GeoNames admin-1 code, ISO 3166-2 code */
    char cc[2];
} region;

struct tw_places {
    char *pool; /* every string, NUL-terminated; offset 0 is "" */
    size_t pool_len, pool_cap;
    entry *ents;
    size_t nents, cap_ents;
    keyrow *rows; /* gazetteer keys sorted by (key, country, entry) */
    size_t nrows, cap_rows;
    tw_hub *hubs;
    hubstr *hubstr;
    size_t nhubs, cap_hubs, cap_hubstr;
    keyrow *hrows; /* hub keys (names and aliases), file order */
    size_t nhrows, cap_hrows;
    region *regs;   /* regions.csv rows, file order */
    size_t nregs, cap_regs;
    keyrow *rkeys;  /* region keys (ISO code and names) -> region index */
    size_t nrkeys, cap_rkeys;
    uint8_t has_cc[26 * 26 / 8 + 1]; /* countries present in the gazetteer */
};

#define MAX_ROWS 20000000u

static void unit_vector(double lat, double lon, double *x, double *y, double *z)
{
    const double rad = M_PI / 180.0;
    double cl = cos(lat * rad);
    *x = cl * cos(lon * rad);
    *y = cl * sin(lon * rad);
    *z = sin(lat * rad);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return -1;
        nc *= 2;
    }
    void *n = realloc(*arr, nc * elem);
    if (!n)
        return -1;
    *arr = n;
    *cap = nc;
    return 0;
}

/* Append s[n] and a NUL to the pool; returns its offset or UINT32_MAX. */
static uint32_t pool_add(tw_places *p, const char *s, size_t n)
{
    if (p->pool_len + n + 1 > UINT32_MAX)
        return UINT32_MAX;
    if (p->pool_len + n + 1 > p->pool_cap) {
        size_t nc = p->pool_cap ? p->pool_cap : 4096;
        while (nc < p->pool_len + n + 1)
            nc *= 2;
        char *np = realloc(p->pool, nc);
        if (!np)
            return UINT32_MAX;
        p->pool = np;
        p->pool_cap = nc;
    }
    uint32_t off = (uint32_t)p->pool_len;
    memcpy(p->pool + off, s, n);
    p->pool[off + n] = '\0';
    p->pool_len += n + 1;
    return off;
}

static int cc_index(const char *cc)
{
    if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z')
        return -1;
    return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

static bool has_country(const tw_places *p, const char *cc)
{
    int i = cc_index(cc);
    return i >= 0 && (p->has_cc[i / 8] >> (i % 8)) & 1;
}

static int row_cmp(const void *a, const void *b, void *arg)
{
    const tw_places *p = arg;
    const keyrow *x = a, *y = b;
    int c = strcmp(p->pool + x->key, p->pool + y->key);
    if (c)
        return c;
    c = memcmp(p->ents[x->ref].cc, p->ents[y->ref].cc, 2);
    if (c)
        return c;
    return (x->ref > y->ref) - (x->ref < y->ref);
}

/* First row of the sorted rows[0..n) whose key is >= key. */
static size_t rows_lower(const tw_places *p, size_t n, const char *key)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(p->pool + p->rows[mid].key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ======================================================================
 * Loading
 * ====================================================================== */

#define CSV_MAX_FIELDS 32
#define CSV_MAX_FIELD 1024
#define CSV_ROW_BYTES 4096

typedef struct csvrd csvrd;
struct csvrd {
    const char *label;
    size_t line; /* physical line being parsed, 1-based */
    size_t nf;
    size_t off[CSV_MAX_FIELDS], len[CSV_MAX_FIELDS];
    char buf[CSV_ROW_BYTES];
    size_t used;
    bool failed, header_done;
    char *err;
    size_t errlen;
    int (*row)(csvrd *r, void *arg); /* 0, or -1 after csv_fail */
    void *arg;
};

static void csv_fail(csvrd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void csv_fail(csvrd *r, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    if (!r->err || r->errlen == 0)
        return;
    int n = snprintf(r->err, r->errlen, "%s line %zu: ", r->label, r->line);
    if (n < 0 || (size_t)n >= r->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static void csv_on_field(void *s, size_t len, void *arg)
{
    csvrd *r = arg;
    if (r->failed)
        return;
    if (r->nf == CSV_MAX_FIELDS) {
        csv_fail(r, "more than %d fields", CSV_MAX_FIELDS);
        return;
    }
    if (len > CSV_MAX_FIELD || r->used + len + 1 > sizeof r->buf) {
        csv_fail(r, "field %zu longer than %d bytes", r->nf + 1, CSV_MAX_FIELD);
        return;
    }
    if (len && memchr(s, '\0', len)) {
        csv_fail(r, "NUL byte in field %zu", r->nf + 1);
        return;
    }
    if (len)
        memcpy(r->buf + r->used, s, len);
    r->buf[r->used + len] = '\0';
    r->off[r->nf] = r->used;
    r->len[r->nf] = len;
    r->used += len + 1;
    r->nf++;
}

static void csv_on_row(int c, void *arg)
{
    (void)c;
    csvrd *r = arg;
    if (!r->failed)
        (void)r->row(r, r->arg);
    r->header_done = true;
    r->nf = 0;
    r->used = 0;
}

static const char *fld(const csvrd *r, int i)
{
    return r->buf + r->off[i];
}

/* Parse buf[len] as CSV, calling r->row for every record (the header
 * first). The input is fed one physical line at a time so that errors carry
 * line numbers. Returns 0 or -1 with r->err set. */
static int csv_run(csvrd *r, const char *buf, size_t len)
{
    struct csv_parser cp;
    if (csv_init(&cp, CSV_STRICT | CSV_STRICT_FINI) != 0) {
        r->line = 0;
        csv_fail(r, "out of memory");
        return -1;
    }
    size_t pos = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    r->line = 1;
    while (pos < len && !r->failed) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t chunk = nl ? (size_t)(nl - (buf + pos)) + 1 : len - pos;
        if (csv_parse(&cp, buf + pos, chunk, csv_on_field, csv_on_row, r) != chunk) {
            csv_fail(r, "malformed CSV (%s)", csv_strerror(csv_error(&cp)));
            break;
        }
        pos += chunk;
        if (nl && !r->failed)
            r->line++;
    }
    if (!r->failed && csv_fini(&cp, csv_on_field, csv_on_row, r) != 0)
        csv_fail(r, "malformed CSV at end of input (unterminated quoted field)");
    csv_free(&cp);
    if (!r->failed && !r->header_done) {
        r->line = 1;
        csv_fail(r, "empty input: no header line");
    }
    return r->failed ? -1 : 0;
}

enum { COL_NAME, COL_ALIASES, COL_ALIAS, COL_COUNTRY, COL_LOCODE, COL_LAT, COL_LON, COL_KIND,
       COL_ADMIN1, COL_ISO, COL_NAMES, NCOLS };
static const char *const col_names[NCOLS] = {"name", "aliases", "alias", "country", "locode",
                                             "lat", "lon", "kind", "admin1", "iso_3166_2",
                                             "names"};

typedef enum { SRC_HUBS, SRC_GAZ, SRC_ALIASES, SRC_REGIONS } src_kind;

typedef struct {
    tw_places *p;
    src_kind kind;
    size_t ncols;
    int col[NCOLS];
    size_t nsorted; /* rows sorted before the alias file is read */
    size_t alias_added;
} loadctx;

static int read_header(csvrd *r, loadctx *c)
{
    static const unsigned required[] = {
        [SRC_HUBS] = 1u << COL_NAME | 1u << COL_COUNTRY | 1u << COL_LAT | 1u << COL_LON |
                     1u << COL_KIND,
        [SRC_GAZ] = 1u << COL_NAME | 1u << COL_COUNTRY | 1u << COL_LAT | 1u << COL_LON,
        [SRC_ALIASES] = 1u << COL_NAME | 1u << COL_ALIAS | 1u << COL_COUNTRY,
        [SRC_REGIONS] = 1u << COL_COUNTRY | 1u << COL_ADMIN1 | 1u << COL_ISO | 1u << COL_NAMES,
    };
    for (int i = 0; i < NCOLS; i++)
        c->col[i] = -1;
    for (size_t f = 0; f < r->nf; f++)
        for (int i = 0; i < NCOLS; i++)
            if (strcmp(fld(r, (int)f), col_names[i]) == 0) {
                if (c->col[i] >= 0) {
                    csv_fail(r, "column '%s' appears twice in the header", col_names[i]);
                    return -1;
                }
                c->col[i] = (int)f;
            }
    for (int i = 0; i < NCOLS; i++)
        if ((required[c->kind] >> i & 1) && c->col[i] < 0) {
            csv_fail(r, "header lacks the '%s' column", col_names[i]);
            return -1;
        }
    c->ncols = r->nf;
    return 0;
}

static int check_country(csvrd *r, const char *s, char cc[3])
{
    if (strlen(s) != 2 || cc_index(s) < 0) {
        csv_fail(r, "country '%.40s' is not an ISO 3166-1 alpha-2 code (two capitals)", s);
        return -1;
    }
    memcpy(cc, s, 3);
    return 0;
}

static int check_coord(csvrd *r, const char *what, const char *s, double lim, double *out)
{
    bool syntax = *s != '\0';
    for (const char *c = s; *c && syntax; c++)
        if (!strchr("0123456789+-.eE", *c))
            syntax = false;
    char *end = NULL;
    double v = syntax ? strtod(s, &end) : 0;
    if (!syntax || end == s || *end) {
        csv_fail(r, "%s '%.40s' is not a decimal number", what, s);
        return -1;
    }
    if (!isfinite(v) || v < -lim || v > lim) {
        csv_fail(r, "%s '%.40s' out of range -%g..%g", what, s, lim, lim);
        return -1;
    }
    *out = v;
    return 0;
}

/* Compute the key of a name from a data file; -1 (reported) when the name
 * is empty, too long, not UTF-8 or has no letter or digit. */
static int file_key(csvrd *r, const char *what, const char *s, unsigned flags, char *key)
{
    size_t n = strlen(s);
    if (n == 0) {
        csv_fail(r, "empty %s", what);
        return -1;
    }
    if (n > TW_PLACE_NAME_MAX) {
        csv_fail(r, "%s '%.40s...' longer than %d bytes", what, s, TW_PLACE_NAME_MAX);
        return -1;
    }
    int k = tw_place_key(s, n, flags, key, TW_PLACE_KEY_MAX);
    if (k < 0) {
        csv_fail(r, "%s '%.40s' is not valid UTF-8", what, s);
        return -1;
    }
    if (k == 0) {
        csv_fail(r, "%s '%.40s' has no letter or digit", what, s);
        return -1;
    }
    return 0;
}

static bool valid_locode(const char *s)
{
    if (strlen(s) != 5 || cc_index(s) < 0)
        return false;
    for (int i = 2; i < 5; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '2' && s[i] <= '9')))
            return false;
    return true;
}

static int oom(csvrd *r)
{
    csv_fail(r, "out of memory");
    return -1;
}

/* Register `key` for hub h unless it has it already; a key that already
 * names another hub in the same country is an error. */
static int hub_add_key(csvrd *r, tw_places *p, size_t h, const char *key, const char *shown)
{
    for (size_t i = 0; i < p->nhrows; i++) {
        if (strcmp(p->pool + p->hrows[i].key, key) != 0)
            continue;
        size_t o = p->hrows[i].ref;
        if (o == h)
            return 0;
        if (memcmp(p->hubs[o].country, p->hubs[h].country, 2) == 0) {
            csv_fail(r, "'%.40s' also names hub '%.40s' in %s", shown,
                     p->pool + p->hubstr[o].name, p->hubs[h].country);
            return -1;
        }
    }
    if (grow((void **)&p->hrows, &p->cap_hrows, p->nhrows + 1, sizeof *p->hrows) != 0)
        return oom(r);
    uint32_t off = pool_add(p, key, strlen(key));
    if (off == UINT32_MAX)
        return oom(r);
    p->hrows[p->nhrows++] = (keyrow){off, (uint32_t)h};
    return 0;
}

/* Register a name (and its ü→ue variant) for hub h. */
static int hub_add_name(csvrd *r, tw_places *p, size_t h, const char *what, const char *name)
{
    char key[TW_PLACE_KEY_MAX], alt[TW_PLACE_KEY_MAX];
    if (file_key(r, what, name, 0, key) != 0 || hub_add_key(r, p, h, key, name) != 0)
        return -1;
    if (!may_have_umlaut(name))
        return 0;
    if (file_key(r, what, name, TW_PLACE_KEY_UMLAUT_E, alt) != 0)
        return -1;
    if (strcmp(alt, key) != 0 && hub_add_key(r, p, h, alt, name) != 0)
        return -1;
    return 0;
}

static int hub_row(csvrd *r, loadctx *c)
{
    tw_places *p = c->p;
    if (p->nhubs >= 4096) {
        csv_fail(r, "too many hubs");
        return -1;
    }
    tw_hub h = {0};
    const char *name = fld(r, c->col[COL_NAME]);
    const char *aliases = c->col[COL_ALIASES] >= 0 ? fld(r, c->col[COL_ALIASES]) : "";
    const char *locode = c->col[COL_LOCODE] >= 0 ? fld(r, c->col[COL_LOCODE]) : "";
    const char *kind = fld(r, c->col[COL_KIND]);
    if (check_country(r, fld(r, c->col[COL_COUNTRY]), h.country) != 0 ||
        check_coord(r, "lat", fld(r, c->col[COL_LAT]), 90, &h.lat) != 0 ||
        check_coord(r, "lon", fld(r, c->col[COL_LON]), 180, &h.lon) != 0)
        return -1;
    if (strcmp(kind, "coast") == 0)
        h.kind = TW_HUB_COAST;
    else if (strcmp(kind, "inland") == 0)
        h.kind = TW_HUB_INLAND;
    else if (strcmp(kind, "transit") == 0)
        h.kind = TW_HUB_TRANSIT;
    else if (strcmp(kind, "uk_landing") == 0)
        h.kind = TW_HUB_UK_LANDING;
    else {
        csv_fail(r, "kind '%.40s' is not coast, inland, transit or uk_landing", kind);
        return -1;
    }
    if (*locode) {
        if (!valid_locode(locode)) {
            csv_fail(r, "locode '%.40s' is not a UN/LOCODE (country + 3 of A-Z, 2-9)", locode);
            return -1;
        }
        if (memcmp(locode, h.country, 2) != 0) {
            csv_fail(r, "locode %s does not belong to country %s", locode, h.country);
            return -1;
        }
        if (tw_places_hub_by_locode(p, locode) >= 0) {
            csv_fail(r, "locode %s appears twice", locode);
            return -1;
        }
        memcpy(h.locode, locode, 6);
    }
    if (grow((void **)&p->hubs, &p->cap_hubs, p->nhubs + 1, sizeof *p->hubs) != 0)
        return oom(r);
    if (grow((void **)&p->hubstr, &p->cap_hubstr, p->nhubs + 1, sizeof *p->hubstr) != 0)
        return oom(r);
    size_t hi = p->nhubs;
    p->hubs[hi] = h;
    hubstr hs = {pool_add(p, name, strlen(name)), pool_add(p, aliases, strlen(aliases)), 0, 0, 0, 0};
    unit_vector(h.lat, h.lon, &hs.x, &hs.y, &hs.z);
    if (hs.name == UINT32_MAX || hs.aliases == UINT32_MAX)
        return oom(r);
    p->hubstr[hi] = hs;
    p->nhubs++; /* counted now so that a failure below still frees cleanly */
    if (hub_add_name(r, p, hi, "name", name) != 0)
        return -1;
    /* aliases: '|'-separated; empty pieces are skipped. */
    const char *a = aliases;
    while (*a) {
        const char *bar = strchr(a, '|');
        size_t n = bar ? (size_t)(bar - a) : strlen(a);
        if (n > TW_PLACE_NAME_MAX) {
            csv_fail(r, "alias '%.40s...' longer than %d bytes", a, TW_PLACE_NAME_MAX);
            return -1;
        }
        char one[TW_PLACE_NAME_MAX + 1];
        memcpy(one, a, n);
        one[n] = '\0';
        if (n && hub_add_name(r, p, hi, "alias", one) != 0)
            return -1;
        a += n;
        if (*a == '|')
            a++;
    }
    return 0;
}

static int add_row(csvrd *r, tw_places *p, const char *key, uint32_t ent)
{
    if (p->nrows >= MAX_ROWS) {
        csv_fail(r, "too many rows");
        return -1;
    }
    if (grow((void **)&p->rows, &p->cap_rows, p->nrows + 1, sizeof *p->rows) != 0)
        return oom(r);
    uint32_t off = pool_add(p, key, strlen(key));
    if (off == UINT32_MAX)
        return oom(r);
    p->rows[p->nrows++] = (keyrow){off, ent};
    return 0;
}

static int gaz_row(csvrd *r, loadctx *c)
{
    tw_places *p = c->p;
    if (p->nents >= MAX_ROWS) {
        csv_fail(r, "too many rows");
        return -1;
    }
    entry e = {0};
    char cc[3];
    const char *name = fld(r, c->col[COL_NAME]);
    const char *admin1 = c->col[COL_ADMIN1] >= 0 ? fld(r, c->col[COL_ADMIN1]) : "";
    char key[TW_PLACE_KEY_MAX];
    if (check_country(r, fld(r, c->col[COL_COUNTRY]), cc) != 0 ||
        file_key(r, "name", name, 0, key) != 0 ||
        check_coord(r, "lat", fld(r, c->col[COL_LAT]), 90, &e.lat) != 0 ||
        check_coord(r, "lon", fld(r, c->col[COL_LON]), 180, &e.lon) != 0)
        return -1;
    size_t al = strlen(admin1);
    if (al > 20) {
        csv_fail(r, "admin1 '%.40s' longer than 20 bytes", admin1);
        return -1;
    }
    for (size_t i = 0; i < al; i++)
        if (!isalnum((unsigned char)admin1[i])) {
            csv_fail(r, "admin1 '%.40s' is not alphanumeric", admin1);
            return -1;
        }
    memcpy(e.cc, cc, 2);
    e.name = pool_add(p, name, strlen(name));
    e.admin1 = al ? pool_add(p, admin1, al) : 0;
    if (e.name == UINT32_MAX || e.admin1 == UINT32_MAX)
        return oom(r);
    if (grow((void **)&p->ents, &p->cap_ents, p->nents + 1, sizeof *p->ents) != 0)
        return oom(r);
    uint32_t ei = (uint32_t)p->nents;
    p->ents[p->nents++] = e;
    int ci = cc_index(cc);
    p->has_cc[ci / 8] |= (uint8_t)(1u << (ci % 8));
    if (add_row(r, p, key, ei) != 0)
        return -1;
    if (may_have_umlaut(name)) {
        char alt[TW_PLACE_KEY_MAX];
        if (file_key(r, "name", name, TW_PLACE_KEY_UMLAUT_E, alt) != 0)
            return -1;
        if (strcmp(alt, key) != 0 && add_row(r, p, alt, ei) != 0)
            return -1;
    }
    return 0;
}

/* Give the alias key `akey` to every gazetteer place and hub called `name`
 * (key `nkey`) in country cc. */
static int alias_row(csvrd *r, loadctx *c)
{
    tw_places *p = c->p;
    char cc[3], nkey[TW_PLACE_KEY_MAX], akey[TW_PLACE_KEY_MAX], aalt[TW_PLACE_KEY_MAX];
    const char *name = fld(r, c->col[COL_NAME]);
    const char *alias = fld(r, c->col[COL_ALIAS]);
    if (check_country(r, fld(r, c->col[COL_COUNTRY]), cc) != 0 ||
        file_key(r, "name", name, 0, nkey) != 0 || file_key(r, "alias", alias, 0, akey) != 0 ||
        file_key(r, "alias", alias, TW_PLACE_KEY_UMLAUT_E, aalt) != 0)
        return -1;
    size_t found = 0;
    for (size_t i = rows_lower(p, c->nsorted, nkey);
         i < c->nsorted && strcmp(p->pool + p->rows[i].key, nkey) == 0; i++) {
        uint32_t e = p->rows[i].ref;
        if (memcmp(p->ents[e].cc, cc, 2) != 0)
            continue;
        found++;
        if (strcmp(akey, nkey) != 0 && add_row(r, p, akey, e) != 0)
            return -1;
        if (strcmp(aalt, akey) != 0 && strcmp(aalt, nkey) != 0 && add_row(r, p, aalt, e) != 0)
            return -1;
        c->alias_added++;
    }
    size_t nh = p->nhrows; /* hub keys added below are not matched again */
    for (size_t i = 0; i < nh; i++) {
        size_t h = p->hrows[i].ref;
        if (strcmp(p->pool + p->hrows[i].key, nkey) != 0 || memcmp(p->hubs[h].country, cc, 2) != 0)
            continue;
        found++;
        if (hub_add_name(r, p, h, "alias", alias) != 0)
            return -1;
    }
    if (!found) {
        csv_fail(r, "no place named '%.60s' in %s (neither gazetteer nor hubs)", name, cc);
        return -1;
    }
    return 0;
}

/* Give region `g` the key of `text` (an ISO code or a name). The same key
 * twice in one country must name the same admin-1 code. */
static int region_add_key(csvrd *r, tw_places *p, size_t g, const char *what, const char *text)
{
    char key[TW_PLACE_KEY_MAX];
    if (file_key(r, what, text, 0, key) != 0)
        return -1;
    const region *rg = &p->regs[g];
    for (size_t i = 0; i < p->nrkeys; i++) {
        const region *o = &p->regs[p->rkeys[i].ref];
        if (memcmp(o->cc, rg->cc, 2) != 0 || strcmp(p->pool + p->rkeys[i].key, key) != 0)
            continue;
        if (strcmp(p->pool + o->admin1, p->pool + rg->admin1) != 0) {
            csv_fail(r, "%s '%.60s' already names admin1 %s in %.2s", what, text,
                     p->pool + o->admin1, rg->cc);
            return -1;
        }
        return 0; /* same meaning: keep the first */
    }
    if (grow((void **)&p->rkeys, &p->cap_rkeys, p->nrkeys + 1, sizeof *p->rkeys) != 0)
        return oom(r);
    uint32_t k = pool_add(p, key, strlen(key));
    if (k == UINT32_MAX)
        return oom(r);
    p->rkeys[p->nrkeys++] = (keyrow){.key = k, .ref = (uint32_t)g};
    return 0;
}

/* country,admin1,iso_3166_2,names: names separated by '|'. */
static int region_row(csvrd *r, loadctx *c)
{
    tw_places *p = c->p;
    char cc[3];
    if (check_country(r, fld(r, c->col[COL_COUNTRY]), cc) != 0)
        return -1;
    const char *admin1 = fld(r, c->col[COL_ADMIN1]);
    const char *iso = fld(r, c->col[COL_ISO]);
    const char *names = fld(r, c->col[COL_NAMES]);
    size_t al = strlen(admin1), il = strlen(iso);
    bool ok = al > 0 && al <= 20;
    for (size_t i = 0; ok && i < al; i++)
        ok = isalnum((unsigned char)admin1[i]);
    if (!ok) {
        csv_fail(r, "admin1 '%.40s' is not an alphanumeric code of 1-20 characters", admin1);
        return -1;
    }
    ok = il >= 4 && il <= 6 && memcmp(iso, cc, 2) == 0 && iso[2] == '-';
    for (size_t i = 3; ok && i < il; i++)
        ok = isupper((unsigned char)iso[i]) || isdigit((unsigned char)iso[i]);
    if (!ok) {
        csv_fail(r, "iso_3166_2 '%.40s' is not %s- and 1-3 of A-Z, 0-9", iso, cc);
        return -1;
    }
    if (p->nregs >= UINT32_MAX / 2)
        return oom(r);
    if (grow((void **)&p->regs, &p->cap_regs, p->nregs + 1, sizeof *p->regs) != 0)
        return oom(r);
    region g = {.admin1 = pool_add(p, admin1, al), .iso = pool_add(p, iso, il)};
    memcpy(g.cc, cc, 2);
    if (g.admin1 == UINT32_MAX || g.iso == UINT32_MAX)
        return oom(r);
    size_t gi = p->nregs;
    p->regs[p->nregs++] = g;
    if (region_add_key(r, p, gi, "iso_3166_2", iso) != 0)
        return -1;
    if (!names[0]) {
        csv_fail(r, "empty names");
        return -1;
    }
    char one[TW_PLACE_NAME_MAX + 1];
    for (const char *n = names;;) {
        const char *bar = strchr(n, '|');
        size_t len = bar ? (size_t)(bar - n) : strlen(n);
        if (len > TW_PLACE_NAME_MAX) {
            csv_fail(r, "name '%.40s...' longer than %d bytes", n, TW_PLACE_NAME_MAX);
            return -1;
        }
        memcpy(one, n, len);
        one[len] = '\0';
        if (region_add_key(r, p, gi, "name", one) != 0)
            return -1;
        if (!bar)
            break;
        n = bar + 1;
    }
    return 0;
}

static int on_row(csvrd *r, void *arg)
{
    loadctx *c = arg;
    if (!r->header_done)
        return read_header(r, c);
    if (r->nf != c->ncols) {
        csv_fail(r, "%zu fields where the header has %zu", r->nf, c->ncols);
        return -1;
    }
    switch (c->kind) {
    case SRC_HUBS: return hub_row(r, c);
    case SRC_GAZ: return gaz_row(r, c);
    case SRC_ALIASES: return alias_row(r, c);
    case SRC_REGIONS: return region_row(r, c);
    }
    return -1;
}

static int parse_src(tw_places *p, src_kind kind, const char *label, const char *buf, size_t len,
                     loadctx *c, char *err, size_t errlen)
{
    csvrd *r = calloc(1, sizeof *r);
    if (!r) {
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", label);
        return -1;
    }
    c->p = p;
    c->kind = kind;
    r->label = label;
    r->err = err;
    r->errlen = errlen;
    r->row = on_row;
    r->arg = c;
    int rc = csv_run(r, buf ? buf : "", buf ? len : 0);
    free(r);
    return rc;
}

static void sort_rows(tw_places *p)
{
    if (p->nrows > 1)
        qsort_r(p->rows, p->nrows, sizeof *p->rows, row_cmp, p);
}

/* Gazetteer entries with key `key`, in country cc (NULL: any), deduplicated,
 * in (country, file) order. Stores up to CAND_MAX, counts all. */
#define CAND_MAX 256
typedef struct {
    uint32_t idx[CAND_MAX];
    size_t n;
} cands;

static void gaz_candidates(const tw_places *p, const char *key, const char *cc, cands *c)
{
    c->n = 0;
    uint32_t prev = UINT32_MAX;
    for (size_t i = rows_lower(p, p->nrows, key);
         i < p->nrows && strcmp(p->pool + p->rows[i].key, key) == 0; i++) {
        uint32_t e = p->rows[i].ref;
        if (e == prev)
            continue;
        prev = e;
        if (cc && memcmp(p->ents[e].cc, cc, 2) != 0)
            continue;
        if (c->n < CAND_MAX)
            c->idx[c->n] = e;
        c->n++;
    }
}

static double ent_km(const tw_places *p, uint32_t e, double lat, double lon)
{
    return tw_haversine_km(p->ents[e].lat, p->ents[e].lon, lat, lon);
}

/* The gazetteer's own entry for hub h: same name key, same country, within
 * TW_PLACE_SAME_KM (the nearest); -1 if none. */
static long hub_twin(const tw_places *p, size_t h)
{
    const tw_hub *hub = &p->hubs[h];
    long best = -1;
    double bkm = TW_PLACE_SAME_KM;
    for (size_t k = 0; k < p->nhrows; k++) {
        if (p->hrows[k].ref != h)
            continue;
        cands c;
        gaz_candidates(p, p->pool + p->hrows[k].key, hub->country, &c);
        for (size_t i = 0; i < c.n && i < CAND_MAX; i++) {
            double km = ent_km(p, c.idx[i], hub->lat, hub->lon);
            if (km <= bkm) {
                bkm = km;
                best = c.idx[i];
            }
        }
    }
    return best;
}

static tw_places *load_bufs(const char *const label[4], const char *const buf[4],
                            const size_t len[4], char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    tw_places *p = calloc(1, sizeof *p);
    if (!p)
        goto nomem;
    size_t total = len[0] + len[1] + (buf[2] ? len[2] : 0) + (buf[3] ? len[3] : 0);
    p->pool_cap = total + 4096;
    p->pool = malloc(p->pool_cap);
    if (!p->pool)
        goto nomem;
    p->pool[0] = '\0';
    p->pool_len = 1;

    loadctx c = {0};
    if (parse_src(p, SRC_HUBS, label[0], buf[0], len[0], &c, err, errlen) != 0)
        goto fail;
    memset(&c, 0, sizeof c);
    if (parse_src(p, SRC_GAZ, label[1], buf[1], len[1], &c, err, errlen) != 0)
        goto fail;
    sort_rows(p);
    if (buf[2]) {
        memset(&c, 0, sizeof c);
        c.nsorted = p->nrows;
        if (parse_src(p, SRC_ALIASES, label[2], buf[2], len[2], &c, err, errlen) != 0)
            goto fail;
        if (p->nrows > c.nsorted)
            sort_rows(p);
    }
    if (buf[3]) {
        memset(&c, 0, sizeof c);
        if (parse_src(p, SRC_REGIONS, label[3], buf[3], len[3], &c, err, errlen) != 0)
            goto fail;
    }
    for (size_t h = 0; h < p->nhubs; h++) {
        long t = hub_twin(p, h);
        p->hubstr[h].admin1 = t >= 0 ? p->ents[t].admin1 : 0;
    }
    /* Give back the unused tails; then the pool stops moving. */
    char *np = realloc(p->pool, p->pool_len);
    if (np) {
        p->pool = np;
        p->pool_cap = p->pool_len;
    }
    if (p->nents) {
        entry *ne = realloc(p->ents, p->nents * sizeof *ne);
        if (ne) {
            p->ents = ne;
            p->cap_ents = p->nents;
        }
    }
    if (p->nrows) {
        keyrow *nr = realloc(p->rows, p->nrows * sizeof *nr);
        if (nr) {
            p->rows = nr;
            p->cap_rows = p->nrows;
        }
    }
    for (size_t h = 0; h < p->nhubs; h++) {
        p->hubs[h].name = p->pool + p->hubstr[h].name;
        p->hubs[h].aliases = p->pool + p->hubstr[h].aliases;
    }
    return p;

nomem:
    if (err && errlen)
        snprintf(err, errlen, "out of memory");
fail:
    tw_places_free(p);
    return NULL;
}

tw_places *tw_places_load_mem(const char *hubs, size_t hubs_len, const char *gazetteer,
                              size_t gazetteer_len, const char *aliases, size_t aliases_len,
                              const char *regions, size_t regions_len, char *err, size_t errlen)
{
    const char *label[4] = {"hubs", "gazetteer", "aliases", "regions"};
    const char *buf[4] = {hubs, gazetteer, aliases, regions};
    size_t len[4] = {hubs ? hubs_len : 0, gazetteer ? gazetteer_len : 0,
                     aliases ? aliases_len : 0, regions ? regions_len : 0};
    return load_bufs(label, buf, len, err, errlen);
}

#define FILE_MAX (256u << 20)

/* Read a whole (possibly gzipped) file into a malloc'd buffer. */
static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL;
    *outlen = 0;
    gzFile g = gzopen(path, "rb");
    if (!g) {
        if (err && errlen)
            snprintf(err, errlen, "%s: %s", path, errno ? strerror(errno) : "cannot open");
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        goto nomem;
    for (;;) {
        if (len == cap) {
            if (cap >= FILE_MAX) {
                if (err && errlen)
                    snprintf(err, errlen, "%s: larger than %u MiB", path, FILE_MAX >> 20);
                goto fail;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                goto nomem;
            buf = nb;
            cap *= 2;
        }
        int n = gzread(g, buf + len, (unsigned)(cap - len));
        if (n < 0) {
            int zerr;
            const char *m = gzerror(g, &zerr);
            if (err && errlen)
                snprintf(err, errlen, "%s: read error: %s", path,
                         zerr == Z_ERRNO ? strerror(errno) : m);
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    gzclose(g);
    *out = buf;
    *outlen = len;
    return 0;
nomem:
    if (err && errlen)
        snprintf(err, errlen, "%s: out of memory", path);
fail:
    free(buf);
    gzclose(g);
    return -1;
}

tw_places *tw_places_load_ex(const char *hubs_csv_path, const char *gazetteer_csv_path,
                             const char *aliases_csv_path, const char *regions_csv_path, char *err,
                             size_t errlen)
{
    const char *label[4] = {hubs_csv_path, gazetteer_csv_path, aliases_csv_path,
                            regions_csv_path};
    char *buf[4] = {NULL, NULL, NULL, NULL};
    size_t len[4] = {0, 0, 0, 0};
    tw_places *p = NULL;
    if (!hubs_csv_path || !gazetteer_csv_path) {
        if (err && errlen)
            snprintf(err, errlen, "hub table and gazetteer paths are required");
        return NULL;
    }
    for (int i = 0; i < 4; i++)
        if (label[i] && read_file(label[i], &buf[i], &len[i], err, errlen) != 0)
            goto out;
    p = load_bufs(label, (const char *const *)buf, len, err, errlen);
out:
    for (int i = 0; i < 4; i++)
        free(buf[i]);
    return p;
}

/* dir of `path` + name, malloc'd; NULL on ENOMEM. */
static char *sibling(const char *path, const char *name)
{
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0, nl = strlen(name);
    char *s = malloc(dir + nl + 1);
    if (s) {
        memcpy(s, path, dir);
        memcpy(s + dir, name, nl + 1);
    }
    return s;
}

tw_places *tw_places_load(const char *hubs_csv_path, const char *gazetteer_csv_path, char *err,
                          size_t errlen)
{
    if (!gazetteer_csv_path)
        return tw_places_load_ex(hubs_csv_path, gazetteer_csv_path, NULL, NULL, err, errlen);
    char *ali = sibling(gazetteer_csv_path, "place-aliases.csv");
    char *reg = sibling(gazetteer_csv_path, "regions.csv");
    tw_places *p = NULL;
    if (!ali || !reg) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        goto out;
    }
    p = tw_places_load_ex(hubs_csv_path, gazetteer_csv_path,
                          access(ali, F_OK) == 0 ? ali : NULL,
                          access(reg, F_OK) == 0 ? reg : NULL, err, errlen);
out:
    free(reg);
    free(ali);
    return p;
}

void tw_places_free(tw_places *p)
{
    if (!p)
        return;
    free(p->pool);
    free(p->ents);
    free(p->rows);
    free(p->hubs);
    free(p->hubstr);
    free(p->hrows);
    free(p->regs);
    free(p->rkeys);
    free(p);
}

size_t tw_places_count(const tw_places *p)
{
    return p ? p->nents : 0;
}

size_t tw_places_memory(const tw_places *p)
{
    if (!p)
        return 0;
    return sizeof *p + p->pool_cap + p->cap_ents * sizeof *p->ents +
           p->cap_rows * sizeof *p->rows + p->cap_hubs * sizeof *p->hubs +
           p->cap_hubstr * sizeof *p->hubstr +
           p->cap_hrows * sizeof *p->hrows + p->cap_regs * sizeof *p->regs +
           p->cap_rkeys * sizeof *p->rkeys;
}

/* ======================================================================
 * Hubs and distances
 * ====================================================================== */

size_t tw_places_hub_count(const tw_places *p)
{
    return p ? p->nhubs : 0;
}

const tw_hub *tw_places_hub(const tw_places *p, size_t i)
{
    return p && i < p->nhubs ? &p->hubs[i] : NULL;
}

int tw_places_hub_by_locode(const tw_places *p, const char *locode)
{
    if (!p || !locode || !*locode)
        return -1;
    for (size_t i = 0; i < p->nhubs; i++)
        if (strcmp(p->hubs[i].locode, locode) == 0)
            return (int)i;
    return -1;
}

const char *tw_hub_kind_name(tw_hub_kind kind)
{
    switch (kind) {
    case TW_HUB_COAST: return "coast";
    case TW_HUB_INLAND: return "inland";
    case TW_HUB_TRANSIT: return "transit";
    case TW_HUB_UK_LANDING: return "uk_landing";
    }
    return "?";
}

double tw_haversine_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double s1 = sin(dlat / 2), s2 = sin(dlon / 2);
    double a = s1 * s1 + cos(lat1 * rad) * cos(lat2 * rad) * s2 * s2;
    if (a > 1)
        a = 1;
    if (a < 0)
        a = 0;
    return 2 * TW_EARTH_RADIUS_KM * asin(sqrt(a));
}

static bool coords_ok(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon) && lat >= -90 && lat <= 90 && lon >= -180 && lon <= 180;
}

int tw_places_nearest_hub(const tw_places *p, double lat, double lon, unsigned kind_mask,
                          double *km)
{
    if (!p || !coords_ok(lat, lon))
        return -1;
    /* The nearest point on the sphere has the largest dot product of unit
     * vectors: four trigonometric calls for the query, one haversine for
     * the winner, instead of a haversine per hub. */
    double x, y, z;
    unit_vector(lat, lon, &x, &y, &z);
    int best = -1;
    double bdot = -2;
    for (size_t i = 0; i < p->nhubs; i++) {
        if (!(p->hubs[i].kind & kind_mask))
            continue;
        const hubstr *h = &p->hubstr[i];
        double dot = x * h->x + y * h->y + z * h->z;
        if (dot > bdot) {
            best = (int)i;
            bdot = dot;
        }
    }
    if (best >= 0 && km)
        *km = tw_haversine_km(lat, lon, p->hubs[best].lat, p->hubs[best].lon);
    return best;
}

/* ======================================================================
 * Resolution
 * ====================================================================== */

const char *tw_place_source_name(tw_place_source s)
{
    switch (s) {
    case TW_PLACE_SRC_NONE: return "none";
    case TW_PLACE_SRC_COORDS: return "coords";
    case TW_PLACE_SRC_LOCODE: return "locode";
    case TW_PLACE_SRC_HUB: return "hub";
    case TW_PLACE_SRC_GAZETTEER: return "gazetteer";
    }
    return "none";
}

const char *tw_place_warn_name(tw_place_warn_code c)
{
    switch (c) {
    case TW_PLACE_WARN_BAD_COORDS: return "bad_coords";
    case TW_PLACE_WARN_BAD_LOCODE: return "bad_locode";
    case TW_PLACE_WARN_BAD_COUNTRY: return "bad_country";
    case TW_PLACE_WARN_BAD_NAME: return "bad_name";
    case TW_PLACE_WARN_BAD_ADMIN1: return "bad_admin1";
    case TW_PLACE_WARN_NO_INPUT: return "no_input";
    case TW_PLACE_WARN_CONFLICT: return "conflict";
    case TW_PLACE_WARN_LOCODE_UNKNOWN: return "locode_unknown";
    case TW_PLACE_WARN_NAME_MISMATCH: return "name_mismatch";
    case TW_PLACE_WARN_NOT_FOUND: return "not_found";
    case TW_PLACE_WARN_AMBIGUOUS: return "ambiguous";
    case TW_PLACE_WARN_ADMIN1_IGNORED: return "admin1_ignored";
    case TW_PLACE_WARN_MERGED: return "merged";
    case TW_PLACE_WARN_HUB_PREFERRED: return "hub_preferred";
    case TW_PLACE_WARN_BAD_REGION: return "bad_region";
    case TW_PLACE_WARN_REGION_UNKNOWN: return "region_unknown";
    }
    return "unknown";
}

static void warn(tw_place_result *out, tw_place_warn_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn(tw_place_result *out, tw_place_warn_code code, const char *fmt, ...)
{
    if (out->nwarnings >= TW_PLACE_MAX_WARNINGS)
        return;
    tw_place_warning *w = &out->warnings[out->nwarnings++];
    w->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->text, sizeof w->text, fmt, ap);
    va_end(ap);
}

static tw_place_status finish(tw_place_result *out, tw_place_status st)
{
    out->status = st;
    out->resolved = st == TW_PLACE_RESOLVED;
    if (st != TW_PLACE_RESOLVED) {
        out->source = TW_PLACE_SRC_NONE;
        out->lat = out->lon = 0;
        out->name = out->admin1 = NULL;
        out->locode[0] = '\0';
        out->hub = -1;
    }
    return st;
}

static tw_place_status resolved(const tw_places *p, tw_place_result *out, tw_place_source src)
{
    out->source = src;
    double km;
    int h = tw_places_nearest_hub(p, out->lat, out->lon, TW_HUB_ANY, &km);
    if (h >= 0) {
        out->nearest_hub = h;
        out->nearest_hub_km = km;
    }
    return finish(out, TW_PLACE_RESOLVED);
}

static tw_place_status use_hub(const tw_places *p, tw_place_result *out, size_t h,
                               tw_place_source src)
{
    const tw_hub *hub = &p->hubs[h];
    out->lat = hub->lat;
    out->lon = hub->lon;
    out->name = hub->name;
    out->admin1 = p->hubstr[h].admin1 ? p->pool + p->hubstr[h].admin1 : NULL;
    memcpy(out->country, hub->country, 3);
    memcpy(out->locode, hub->locode, 6);
    out->hub = (int)h;
    return resolved(p, out, src);
}

static tw_place_status use_entry(const tw_places *p, tw_place_result *out, uint32_t e)
{
    const entry *en = &p->ents[e];
    out->lat = en->lat;
    out->lon = en->lon;
    out->name = p->pool + en->name;
    out->admin1 = en->admin1 ? p->pool + en->admin1 : NULL;
    memcpy(out->country, en->cc, 2);
    out->country[2] = '\0';
    out->locode[0] = '\0';
    out->hub = -1;
    return resolved(p, out, TW_PLACE_SRC_GAZETTEER);
}

static bool admin1_eq(const tw_places *p, uint32_t e, const char *hint)
{
    return p->ents[e].admin1 && strcasecmp(p->pool + p->ents[e].admin1, hint) == 0;
}

/* "BE, FR" from a list of country codes (distinct, sorted input order). */
static void list_countries(const tw_places *p, const uint32_t *idx, size_t n, char *buf,
                           size_t buflen, size_t *ncountries)
{
    size_t len = 0, k = 0;
    buf[0] = '\0';
    const char *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *cc = p->ents[idx[i]].cc;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = memcmp(p->ents[idx[j]].cc, cc, 2) == 0;
        if (seen)
            continue;
        k++;
        if (len + 5 < buflen) {
            len += (size_t)snprintf(buf + len, buflen - len, "%s%.2s", prev ? ", " : "", cc);
            prev = cc;
        }
    }
    if (ncountries)
        *ncountries = k;
}

/* ISO 3166-2 code of the first region row for (cc, admin1), or NULL. */
static const char *region_iso(const tw_places *p, const char *cc, const char *admin1)
{
    for (size_t i = 0; admin1 && i < p->nregs; i++)
        if (memcmp(p->regs[i].cc, cc, 2) == 0 &&
            strcasecmp(p->pool + p->regs[i].admin1, admin1) == 0)
            return p->pool + p->regs[i].iso;
    return NULL;
}

/* For messages: the ISO 3166-2 code of (cc, admin1) when the region table
 * knows it ("DE-NW"), else the admin-1 code itself, else "unknown".
 * Borrowed from p (or a literal). */
static const char *region_label(const tw_places *p, const char *cc, const char *admin1)
{
    const char *iso = region_iso(p, cc, admin1);
    if (iso)
        return iso;
    return admin1 ? admin1 : "unknown";
}

/* The region whose ISO code or name has key `key`, in country cc (NULL:
 * any). Returns its index, -1 when none, -2 when it names regions in
 * several countries. */
static long region_find(const tw_places *p, const char *key, const char *cc)
{
    long found = -1;
    for (size_t i = 0; i < p->nrkeys; i++) {
        const region *g = &p->regs[p->rkeys[i].ref];
        if ((cc && memcmp(g->cc, cc, 2) != 0) || strcmp(p->pool + p->rkeys[i].key, key) != 0)
            continue;
        if (found >= 0 && memcmp(p->regs[found].cc, g->cc, 2) != 0)
            return -2;
        if (found < 0)
            found = (long)p->rkeys[i].ref;
    }
    return found;
}

/* Resolve among gazetteer candidates c (already filtered by country). */
static tw_place_status resolve_gaz(const tw_places *p, const char *qname, const char *cc,
                                   const char *hint, const char *hshow, const char *key, cands *c,
                                   tw_place_result *out)
{
    if (c->n == 0) {
        cands any;
        char where[64] = "";
        if (cc)
            gaz_candidates(p, key, NULL, &any);
        if (cc && any.n) {
            list_countries(p, any.idx, any.n < CAND_MAX ? any.n : CAND_MAX, where, sizeof where,
                           NULL);
            warn(out, TW_PLACE_WARN_NOT_FOUND, "not found: no place named '%.60s' in %s (found in %s)",
                 qname, cc, where);
        } else if (cc && !has_country(p, cc)) {
            warn(out, TW_PLACE_WARN_NOT_FOUND,
                 "not found: no place named '%.60s' in %s (the gazetteer has no places in %s)",
                 qname, cc, cc);
        } else {
            warn(out, TW_PLACE_WARN_NOT_FOUND, "not found: no place named '%.60s'%s%s", qname,
                 cc ? " in " : "", cc ? cc : "");
        }
        return finish(out, TW_PLACE_UNRESOLVED);
    }
    size_t n = c->n < CAND_MAX ? c->n : CAND_MAX;
    uint32_t *s = c->idx;
    if (hint) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (admin1_eq(p, s[i], hint))
                s[m++] = s[i]; /* compacts in place: earlier slots are already read */
        if (m) {
            n = m;
            c->n = m;
        } else {
            warn(out, TW_PLACE_WARN_ADMIN1_IGNORED,
                 "%s matches none of the %zu places named '%.60s'", hshow, c->n, qname);
        }
    }
    out->candidates = c->n;
    if (c->n == 1)
        return use_entry(p, out, s[0]);
    char where[64];
    size_t ncountries;
    list_countries(p, s, n, where, sizeof where, &ncountries);
    bool together = c->n <= CAND_MAX && ncountries == 1;
    for (size_t i = 0; i < n && together; i++)
        for (size_t j = i + 1; j < n && together; j++)
            together = ent_km(p, s[i], p->ents[s[j]].lat, p->ents[s[j]].lon) <= TW_PLACE_SAME_KM;
    if (together) {
        warn(out, TW_PLACE_WARN_MERGED,
             "%zu gazetteer entries named '%.60s' lie within %g km of each other; taken as one place",
             c->n, qname, TW_PLACE_SAME_KM);
        return use_entry(p, out, s[0]);
    }
    if (ncountries > 1) {
        warn(out, TW_PLACE_WARN_AMBIGUOUS,
             "ambiguous: %zu places named '%.60s' in %zu countries (%s); give the country", c->n,
             qname, ncountries, where);
    } else {
        /* Name the candidates' regions by ISO 3166-2 code when the region
         * table knows them all, else by GeoNames admin-1 code. */
        bool all_iso = true;
        for (size_t i = 0; i < n && i < 6 && all_iso; i++)
            all_iso = p->ents[s[i]].admin1 &&
                      region_iso(p, p->ents[s[i]].cc, p->pool + p->ents[s[i]].admin1) != NULL;
        char adm[64] = "";
        size_t len = 0;
        for (size_t i = 0; i < n && i < 6 && len + 8 < sizeof adm; i++) {
            const char *a = p->ents[s[i]].admin1 ? p->pool + p->ents[s[i]].admin1 : "?";
            if (all_iso)
                a = region_iso(p, p->ents[s[i]].cc, a);
            len += (size_t)snprintf(adm + len, sizeof adm - len, "%s%.6s", i ? ", " : "", a);
        }
        /* Advise only what helps: a region when the table knows the
         * country's regions, else coordinates. */
        bool known = false;
        for (size_t i = 0; i < p->nregs && !known; i++)
            known = memcmp(p->regs[i].cc, p->ents[s[0]].cc, 2) == 0;
        char advice[48] = "coordinates";
        if (all_iso)
            snprintf(advice, sizeof advice, "place.region (e.g. %.6s) or coordinates",
                     region_iso(p, p->ents[s[0]].cc, p->pool + p->ents[s[0]].admin1));
        else if (known)
            snprintf(advice, sizeof advice, "place.region or coordinates");
        warn(out, TW_PLACE_WARN_AMBIGUOUS, "ambiguous: %zu places named '%.60s' in %s (%s%s%s); give %s",
             c->n, qname, where, all_iso ? "" : "admin1 ", adm, n > 6 ? ", ..." : "", advice);
    }
    return finish(out, TW_PLACE_UNRESOLVED);
}

static tw_place_status resolve_name(const tw_places *p, const char *qname, const char *key,
                                    const char *cc, const char *hint, const char *hshow,
                                    tw_place_result *out)
{
    /* Hubs first. */
    size_t hubs[8], nh = 0;
    for (size_t i = 0; i < p->nhrows; i++) {
        size_t h = p->hrows[i].ref;
        if (strcmp(p->pool + p->hrows[i].key, key) != 0 ||
            (cc && memcmp(p->hubs[h].country, cc, 2) != 0))
            continue;
        bool dup = false;
        for (size_t j = 0; j < nh && !dup; j++)
            dup = hubs[j] == h;
        if (!dup && nh < 8)
            hubs[nh++] = h;
    }
    cands cbuf; /* about 2 KiB of stack with oth */
    uint32_t oth[CAND_MAX];
    cands *c = &cbuf;
    gaz_candidates(p, key, cc, c);
    tw_place_status st;
    if (nh > 1) {
        bool together = true;
        for (size_t i = 1; i < nh && together; i++)
            together = memcmp(p->hubs[hubs[i]].country, p->hubs[hubs[0]].country, 2) == 0 &&
                       tw_haversine_km(p->hubs[hubs[0]].lat, p->hubs[hubs[0]].lon,
                                       p->hubs[hubs[i]].lat, p->hubs[hubs[i]].lon) <= TW_PLACE_SAME_KM;
        if (together) {
            st = use_hub(p, out, hubs[0], TW_PLACE_SRC_HUB);
        } else {
            out->candidates = nh;
            warn(out, TW_PLACE_WARN_AMBIGUOUS,
                 "ambiguous: %zu hubs named '%.60s' (%s, %s...); give the country", nh, qname,
                 p->hubs[hubs[0]].country, p->hubs[hubs[1]].country);
            st = finish(out, TW_PLACE_UNRESOLVED);
        }
    } else if (nh == 1) {
        const tw_hub *hub = &p->hubs[hubs[0]];
        size_t n = c->n < CAND_MAX ? c->n : CAND_MAX;
        size_t others = c->n - n; /* beyond the stored ones: count as others */
        size_t nstored_others = 0;
        bool twin_hint = false, other_hint = false;
        for (size_t i = 0; i < n; i++) {
            uint32_t e = c->idx[i];
            bool twin = memcmp(p->ents[e].cc, hub->country, 2) == 0 &&
                        ent_km(p, e, hub->lat, hub->lon) <= TW_PLACE_SAME_KM;
            bool hinted = hint && admin1_eq(p, e, hint);
            if (twin) {
                twin_hint |= hinted;
            } else {
                others++;
                other_hint |= hinted;
                oth[nstored_others++] = e;
            }
        }
        out->candidates = others + 1;
        if (others == 0 || twin_hint) {
            if (hint && !twin_hint)
                warn(out, TW_PLACE_WARN_ADMIN1_IGNORED,
                     "%s does not match hub '%.60s' (%s)", hshow, hub->name,
                     region_label(p, hub->country, p->hubstr[hubs[0]].admin1
                                                       ? p->pool + p->hubstr[hubs[0]].admin1
                                                       : NULL));
            st = use_hub(p, out, hubs[0], TW_PLACE_SRC_HUB);
        } else if (other_hint) {
            st = resolve_gaz(p, qname, cc, hint, hshow, key, c, out);
        } else {
            if (hint)
                warn(out, TW_PLACE_WARN_ADMIN1_IGNORED,
                     "%s matches none of the places named '%.60s'", hshow, qname);
            char where[64];
            list_countries(p, oth, nstored_others, where, sizeof where, NULL);
            warn(out, TW_PLACE_WARN_HUB_PREFERRED,
                 "'%.60s' also names %zu other place%s (%s); took the hub in %s (give "
                 "place.region or coordinates for another)",
                 qname, others, others == 1 ? "" : "s", where, hub->country);
            st = use_hub(p, out, hubs[0], TW_PLACE_SRC_HUB);
        }
    } else {
        st = resolve_gaz(p, qname, cc, hint, hshow, key, c, out);
    }
    return st;
}

static bool given(const char *s)
{
    return s && *s;
}

/* Fold a query's free-text field (`what`: "name", "region") into `key`
 * (tw_place_key). Returns true, or false with a `code` warning when the
 * text is longer than `max` bytes, not valid UTF-8 or has no letter or
 * digit. */
static bool field_key(tw_place_result *out, tw_place_warn_code code, const char *what,
                      const char *text, size_t max, char *key, size_t keylen)
{
    size_t n = strlen(text);
    int k = n > max ? -1 : tw_place_key(text, n, 0, key, keylen);
    if (k > 0)
        return true;
    if (n > max)
        warn(out, code, "%s longer than %zu bytes", what, max);
    else
        warn(out, code, "%s %s", what, k < 0 ? "is not valid UTF-8" : "has no letter or digit");
    return false;
}

tw_place_status tw_place_resolve(const tw_places *p, const tw_place_query *q,
                                 tw_place_result *out)
{
    memset(out, 0, sizeof *out);
    out->hub = -1;
    out->nearest_hub = -1;
    out->nearest_hub_km = -1;

    /* 1. Validate every given field. */
    bool bad = false;
    if (q->has_coords && !coords_ok(q->lat, q->lon)) {
        warn(out, TW_PLACE_WARN_BAD_COORDS,
             "coordinates %g, %g are not a latitude in -90..90 and a longitude in -180..180",
             q->lat, q->lon);
        bad = true;
    }
    char locode[6] = "";
    if (given(q->locode)) {
        const char *s = q->locode;
        size_t n = strlen(s), k = 0;
        bool shape = n == 5 || (n == 6 && s[2] == ' ');
        for (size_t i = 0; shape && i < n; i++)
            if (!(n == 6 && i == 2))
                locode[k++] = (char)toupper((unsigned char)s[i]);
        locode[5] = '\0';
        if (!shape || !valid_locode(locode)) {
            warn(out, TW_PLACE_WARN_BAD_LOCODE,
                 "locode '%.20s' is not a UN/LOCODE (country + 3 of A-Z, 2-9)", s);
            bad = true;
        }
    }
    char cc[3] = "";
    if (given(q->country)) {
        const char *s = q->country;
        if (strlen(s) == 2 && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1])) {
            cc[0] = (char)toupper((unsigned char)s[0]);
            cc[1] = (char)toupper((unsigned char)s[1]);
            cc[2] = '\0';
        } else {
            warn(out, TW_PLACE_WARN_BAD_COUNTRY,
                 "country '%.20s' is not an ISO 3166-1 alpha-2 code", s);
            bad = true;
        }
    }
    char key[TW_PLACE_KEY_MAX];
    if (given(q->name) &&
        !field_key(out, TW_PLACE_WARN_BAD_NAME, "name", q->name, TW_PLACE_NAME_MAX, key, sizeof key))
        bad = true;
    const char *hint = NULL;
    if (given(q->admin1)) {
        size_t n = strlen(q->admin1);
        bool ok = n <= 20;
        for (size_t i = 0; i < n && ok; i++)
            ok = isalnum((unsigned char)q->admin1[i]);
        if (ok) {
            hint = q->admin1;
        } else {
            warn(out, TW_PLACE_WARN_BAD_ADMIN1, "admin1 hint is not an alphanumeric code");
            bad = true;
        }
    }
    char rkey[TW_PLACE_KEY_MAX];
    bool have_region = false;
    if (given(q->region)) {
        if (field_key(out, TW_PLACE_WARN_BAD_REGION, "region", q->region, TW_PLACE_REGION_MAX,
                      rkey, sizeof rkey))
            have_region = true;
        else
            bad = true;
    }
    if (cc[0])
        memcpy(out->country, cc, 3);
    if (bad)
        return finish(out, TW_PLACE_INVALID);

    /* 2. Coordinates. */
    if (q->has_coords) {
        out->lat = q->lat;
        out->lon = q->lon;
        return resolved(p, out, TW_PLACE_SRC_COORDS);
    }

    /* 3. UN/LOCODE. */
    if (locode[0]) {
        if (cc[0] && memcmp(cc, locode, 2) != 0) {
            warn(out, TW_PLACE_WARN_CONFLICT, "locode %s is in %.2s but country is %s", locode,
                 locode, cc);
            return finish(out, TW_PLACE_UNRESOLVED);
        }
        int h = tw_places_hub_by_locode(p, locode);
        if (h >= 0) {
            if (given(q->name)) {
                bool match = false;
                for (size_t i = 0; i < p->nhrows && !match; i++)
                    match = p->hrows[i].ref == (uint32_t)h &&
                            strcmp(p->pool + p->hrows[i].key, key) == 0;
                if (!match)
                    warn(out, TW_PLACE_WARN_NAME_MISMATCH,
                         "locode %s is %s, not '%.60s'; used the locode", locode,
                         p->hubs[h].name, q->name);
            }
            return use_hub(p, out, (size_t)h, TW_PLACE_SRC_LOCODE);
        }
        warn(out, TW_PLACE_WARN_LOCODE_UNKNOWN, "locode %s is not in the hub table%s", locode,
             given(q->name) ? "; resolving by name" : "");
        if (!cc[0]) {
            memcpy(cc, locode, 2);
            cc[2] = '\0';
            memcpy(out->country, cc, 3);
        }
        if (!given(q->name))
            return finish(out, TW_PLACE_UNRESOLVED);
    }

    /* 4. Name (+ country), narrowed by the region (or the admin1 hint). */
    if (given(q->name)) {
        char hshow[160] = "";
        if (hint)
            snprintf(hshow, sizeof hshow, "admin1 '%.20s'", hint);
        if (have_region) {
            long g = region_find(p, rkey, cc[0] ? cc : NULL);
            if (g >= 0) {
                hint = p->pool + p->regs[g].admin1;
                if (!cc[0]) {
                    memcpy(cc, p->regs[g].cc, 2);
                    cc[2] = '\0';
                }
                snprintf(hshow, sizeof hshow, "region '%.60s' (%s)", q->region,
                         p->pool + p->regs[g].iso);
            } else if (g == -2) {
                warn(out, TW_PLACE_WARN_REGION_UNKNOWN,
                     "region '%.60s' names subdivisions of several countries; give place.country",
                     q->region);
            } else {
                const char *eg = NULL;
                for (size_t i = 0; i < p->nregs && !eg && cc[0]; i++)
                    if (memcmp(p->regs[i].cc, cc, 2) == 0)
                        eg = p->pool + p->regs[i].iso;
                if (eg)
                    warn(out, TW_PLACE_WARN_REGION_UNKNOWN,
                         "region '%.60s' is not a known subdivision of %s; give place.region as "
                         "its name or ISO 3166-2 code (e.g. %s)",
                         q->region, cc, eg);
                else
                    warn(out, TW_PLACE_WARN_REGION_UNKNOWN,
                         "region '%.60s' is not known%s%s (the region table has no subdivisions "
                         "there); give coordinates",
                         q->region, cc[0] ? " in " : "", cc);
            }
        }
        return resolve_name(p, q->name, key, cc[0] ? cc : NULL, hint, hshow, out);
    }

    warn(out, TW_PLACE_WARN_NO_INPUT, "no coordinates, locode or name to resolve");
    return finish(out, TW_PLACE_UNRESOLVED);
}
