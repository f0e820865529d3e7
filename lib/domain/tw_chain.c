/* tw_chain: chain assembly for one item. See tw_chain.h for the contract.
 *
 * Steps: validate; sort pointers to the hops into chain order (qsort over a
 * total order, the input position last, so the result does not depend on
 * the input order); fold corroborating hops into movements (a backward scan
 * over the corroboration window); walk the movements once for the pairwise
 * facts; sort the facts; copy the result into the caller's arena.
 * Temporaries live on the heap and are freed before returning. */
#include "tw_chain.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_places.h"

/* Kind ranks: the order of the header's list. */
enum {
    R_CUSTODY_GAP,
    R_PLACE_GAP,
    R_SEIZED_BEFORE_SOLD,
    R_TOO_FAST,
    R_SOLD_TWICE,
    R_READINGS_DISAGREE,
    R_NO_TIME,
    R_SINGLE_SOURCE,
    R_CORROBORATED,
    R_LAST_KNOWN,
};

static const char *const kind_names[] = {
    "custody_gap", "place_gap",  "seized_before_sold", "too_fast",     "sold_twice",
    "readings_disagree", "no_time", "single_source", "corroborated", "last_known",
};

/* Most distinct keys named in readings_disagree, sources in single_source. */
#define KEYS_NAMED 8
#define SOURCES_NAMED 4

/* ---- text ------------------------------------------------------------- */

/* A bounded text builder on the stack: at most TW_CHAIN_TEXT_MAX - 4 bytes
 * of content, then "..." when something did not fit. */
typedef struct {
    char buf[TW_CHAIN_TEXT_MAX];
    size_t len;
    bool full;
} sb;

static void sb_init(sb *b)
{
    b->len = 0;
    b->full = false;
    b->buf[0] = '\0';
}

static void sb_cut(sb *b)
{
    if (b->full)
        return;
    b->full = true;
    memcpy(b->buf + b->len, "...", 4);
    b->len += 3;
}

/* Room left for content (three bytes stay for "..." and one for the NUL). */
static size_t sb_room(const sb *b)
{
    return b->full ? 0 : sizeof b->buf - 4 - b->len;
}

/* Append n bytes that are known to be whole characters. */
static bool sb_bytes(sb *b, const char *s, size_t n)
{
    if (b->full)
        return false;
    if (n > sb_room(b)) {
        sb_cut(b);
        return false;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return true;
}

/* Append ASCII text of our own, cut at a byte when it does not fit. */
static void sb_lit(sb *b, const char *s)
{
    size_t n = strlen(s), room = sb_room(b);
    if (b->full)
        return;
    if (n > room) {
        memcpy(b->buf + b->len, s, room);
        b->len += room;
        b->buf[b->len] = '\0';
        sb_cut(b);
        return;
    }
    sb_bytes(b, s, n);
}

static void sb_fmt(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(sb *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (r < 0)
        return;
    sb_lit(b, tmp);
}

/* Length of the valid UTF-8 sequence at s (NUL-terminated), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c == 0xE0) {
        n = 3;
        lo = 0xA0;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
        n = 3;
    else if (c == 0xED) {
        n = 3;
        hi = 0x9F;
    } else if (c == 0xF0) {
        n = 4;
        lo = 0x90;
    } else if (c >= 0xF1 && c <= 0xF3)
        n = 4;
    else if (c == 0xF4) {
        n = 4;
        hi = 0x8F;
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

/* Append text from the caller: valid UTF-8 only (an invalid byte becomes
 * '?'), control characters (C0, DEL, C1) as spaces, at most `max` bytes of
 * it (then "..."). */
static void sb_text(sb *b, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t used = 0;
    while (*p && !b->full) {
        size_t k = utf8_seq(p);
        const char *out = (const char *)p;
        size_t outn = k;
        if (k == 0) {
            out = "?";
            outn = 1;
            k = 1;
        } else if ((k == 1 && (*p < 0x20 || *p == 0x7F)) || (k == 2 && p[0] == 0xC2 && p[1] < 0xA0)) {
            out = " ";
            outn = 1;
        }
        if (used + outn > max) {
            sb_lit(b, "...");
            return;
        }
        if (!sb_bytes(b, out, outn))
            return;
        used += outn;
        p += k;
    }
}

static bool has_text(const char *s)
{
    return s && *s;
}

/* YYYY-MM-DD (UTC) of Unix seconds t, for any int64 (days from civil,
 * H. Hinnant's algorithm, in 64-bit arithmetic). */
static void fmt_date(char out[64], int64_t t)
{
    int64_t days = t / 86400;
    if (t % 86400 < 0)
        days--;
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    snprintf(out, 64, "%04" PRId64 "-%02d-%02d", y, (int)m, (int)d);
}

static void sb_date(sb *b, int64_t t)
{
    char d[64];
    fmt_date(d, t);
    sb_lit(b, d);
}

static bool party_present(const tw_chain_party *p)
{
    return p->cluster != 0 || has_text(p->name);
}

static void sb_party(sb *b, const tw_chain_party *p)
{
    if (has_text(p->name))
        sb_text(b, p->name, TW_CHAIN_NAME_MAX);
    else if (p->cluster != 0)
        sb_fmt(b, "party #%" PRId64, p->cluster);
    else
        sb_lit(b, "an unknown party");
}

/* Known coordinates or at least a name. */
static bool place_present(const tw_chain_place *p)
{
    return p->known || has_text(p->name);
}

static void sb_place(sb *b, const tw_chain_place *p)
{
    if (has_text(p->name))
        sb_text(b, p->name, TW_CHAIN_NAME_MAX);
    else if (p->known)
        sb_fmt(b, "%.4f,%.4f", p->lat, p->lon);
    else
        sb_lit(b, "an unknown place");
}

/* A duration in words: "35 minutes", "1 hour", "5.5 hours", "3.2 days". */
static void sb_duration(sb *b, uint64_t s)
{
    if (s < 60)
        sb_fmt(b, "%" PRIu64 " second%s", s, s == 1 ? "" : "s");
    else if (s < 3600)
        sb_fmt(b, "%" PRIu64 " minute%s", s / 60, s / 60 == 1 ? "" : "s");
    else if (s < 48 * 3600) {
        if (s % 3600 == 0)
            sb_fmt(b, "%" PRIu64 " hour%s", s / 3600, s == 3600 ? "" : "s");
        else
            sb_fmt(b, "%.1f hours", (double)s / 3600.0);
    } else
        sb_fmt(b, "%.1f days", (double)s / 86400.0);
}

/* ---- working state ---------------------------------------------------- */

/* What a movement says: its own values, unknowns filled from the hops
 * folded into it. */
typedef struct {
    tw_chain_party from, to;
    tw_chain_place origin, place;
    bool has_delivered;
    int64_t delivered;
} view;

typedef struct {
    tw_chain_fact f;
    size_t pos; /* 0: before every hop; 1 + p: hop p; n + 1, n + 2: after */
    int rank;
    size_t seq;
} fact_tmp;

typedef struct {
    const tw_chain_options *o;
    tw_arena *a;
    size_t n;
    const tw_chain_hop **h; /* chain order */
    view *v;
    ptrdiff_t *same_as;
    size_t *sources;
    size_t *next_member; /* SIZE_MAX ends a movement's list of folded hops */
    size_t *tail;
    size_t *mv; /* movements (timed, active, unfolded), chain order */
    size_t nmv;
    fact_tmp *facts;
    size_t nfacts, capfacts;
} ctx;

static const char *str0(const char *s)
{
    return s ? s : "";
}

/* Phrase for the hop at position p as its movement says it: "sold by A to
 * B in Calais on 2026-03-02". */
static void sb_hop(sb *b, const ctx *c, size_t p, bool with_date)
{
    const tw_chain_hop *h = c->h[p];
    const view *v = &c->v[p];
    switch (h->kind) {
    case TW_CHAIN_SALE:
        sb_lit(b, "sold");
        if (party_present(&v->from)) {
            sb_lit(b, " by ");
            sb_party(b, &v->from);
        }
        if (party_present(&v->to)) {
            sb_lit(b, " to ");
            sb_party(b, &v->to);
        }
        if (place_present(&v->place)) {
            sb_lit(b, " in ");
            sb_place(b, &v->place);
        }
        break;
    case TW_CHAIN_SHIPMENT:
        sb_lit(b, "shipped");
        if (party_present(&v->from)) {
            sb_lit(b, " by ");
            sb_party(b, &v->from);
        }
        if (place_present(&v->origin)) {
            sb_lit(b, " from ");
            sb_place(b, &v->origin);
        }
        if (party_present(&v->to)) {
            sb_lit(b, " to ");
            sb_party(b, &v->to);
        }
        if (place_present(&v->place)) {
            sb_lit(b, party_present(&v->to) ? " in " : " to ");
            sb_place(b, &v->place);
        }
        break;
    case TW_CHAIN_SEIZURE:
        sb_lit(b, "seized");
        if (party_present(&v->to)) {
            sb_lit(b, " by ");
            sb_party(b, &v->to);
        }
        if (party_present(&v->from)) {
            sb_lit(b, " from ");
            sb_party(b, &v->from);
        }
        if (place_present(&v->place)) {
            sb_lit(b, " at ");
            sb_place(b, &v->place);
        }
        break;
    }
    if (with_date && h->has_time) {
        sb_lit(b, " on ");
        sb_date(b, h->time);
    }
    if (!h->has_time || !with_date)
        sb_fmt(b, " (event %" PRId64 ")", h->event_id);
}

static int cmp_i64_v(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

/* Record a fact: text and event ids copied into the arena. */
static int add_fact(ctx *c, int rank, tw_chain_severity sev, size_t pos, const sb *text,
                    const int64_t *ids, size_t nids)
{
    if (c->nfacts == c->capfacts) {
        size_t cap = c->capfacts ? c->capfacts * 2 : 16;
        fact_tmp *f = realloc(c->facts, cap * sizeof *f);
        if (!f)
            return -1;
        c->facts = f;
        c->capfacts = cap;
    }
    fact_tmp *t = &c->facts[c->nfacts];
    t->f.kind = kind_names[rank];
    t->f.severity = sev;
    t->f.text = tw_arena_strdup(c->a, text->buf);
    t->f.event_ids = tw_arena_memdup(c->a, ids, nids * sizeof *ids);
    t->f.n_event_ids = nids;
    if (!t->f.text || !t->f.event_ids)
        return -1;
    t->pos = pos;
    t->rank = rank;
    t->seq = c->nfacts;
    c->nfacts++;
    return 0;
}

/* ---- order ------------------------------------------------------------ */

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_dbl(double a, double b)
{
    return (a > b) - (a < b);
}

static int cmp_place(const tw_chain_place *a, const tw_chain_place *b)
{
    int c;
    if (a->known != b->known)
        return a->known ? -1 : 1;
    if (a->known && ((c = cmp_dbl(a->lat, b->lat)) || (c = cmp_dbl(a->lon, b->lon))))
        return c;
    return strcmp(str0(a->name), str0(b->name));
}

/* The chain order: a total order on hops, the input position last. */
static int cmp_hop(const void *x, const void *y)
{
    const tw_chain_hop *a = *(const tw_chain_hop *const *)x;
    const tw_chain_hop *b = *(const tw_chain_hop *const *)y;
    int c;
    if (a->has_time != b->has_time)
        return a->has_time ? -1 : 1;
    if (a->has_time && (c = cmp_i64(a->time, b->time)))
        return c;
    if ((c = cmp_i64(a->event_id, b->event_id)) || (c = cmp_i64(a->line, b->line)) ||
        (c = cmp_i64(a->item_id, b->item_id)) || (c = cmp_i64(a->kind, b->kind)) ||
        (c = cmp_i64(a->status, b->status)) || (c = cmp_i64(a->has_delivered, b->has_delivered)))
        return c;
    if (a->has_delivered && (c = cmp_i64(a->delivered, b->delivered)))
        return c;
    if ((c = cmp_i64(a->from.cluster, b->from.cluster)) ||
        (c = cmp_i64(a->to.cluster, b->to.cluster)) ||
        (c = strcmp(str0(a->from.name), str0(b->from.name))) ||
        (c = strcmp(str0(a->to.name), str0(b->to.name))) ||
        (c = cmp_place(&a->origin, &b->origin)) || (c = cmp_place(&a->place, &b->place)) ||
        (c = strcmp(str0(a->source), str0(b->source))) ||
        (c = cmp_i64(a->grading_source, b->grading_source)) ||
        (c = cmp_i64(a->grading_info, b->grading_info)))
        return c;
    /* Fields that mean nothing here (a time without has_time ...) still
     * order, so that only hops equal in every field fall back on their
     * input position. */
    if ((c = cmp_i64(a->time, b->time)) || (c = cmp_i64(a->delivered, b->delivered)))
        return c;
    return (a > b) - (a < b);
}

/* ---- corroboration ---------------------------------------------------- */

static bool parties_agree(const tw_chain_party *g, const tw_chain_party *h)
{
    return g->cluster == 0 || h->cluster == 0 || g->cluster == h->cluster;
}

static void fill_party(tw_chain_party *g, const tw_chain_party *h)
{
    if (g->cluster == 0 && h->cluster != 0)
        *g = *h;
    else if (g->cluster == h->cluster && !has_text(g->name) && has_text(h->name))
        g->name = h->name;
}

static void fill_place(tw_chain_place *g, const tw_chain_place *h)
{
    if (!g->known && h->known)
        *g = *h;
}

/* b - a for a <= b, exact (the difference of two int64 fits in uint64). */
static uint64_t span(int64_t a, int64_t b)
{
    return (uint64_t)b - (uint64_t)a;
}

/* Fold the timed active hops at positions [0, timed) into movements. */
static void fold(ctx *c, size_t timed, size_t *blocked)
{
    uint64_t window = (uint64_t)c->o->same_hop_seconds;
    for (size_t p = 0; p < timed; p++) {
        const tw_chain_hop *h = c->h[p];
        if (h->status != TW_CHAIN_ACTIVE)
            continue;
        const char *src = str0(h->source);
        ptrdiff_t best = -1;
        size_t steps = 0;
        for (size_t q = p; q-- > 0 && steps < TW_CHAIN_FOLD_SCAN; steps++) {
            const tw_chain_hop *g = c->h[q];
            if (span(g->time, h->time) > window)
                break;
            if (g->status != TW_CHAIN_ACTIVE)
                continue;
            bool same_src = strcmp(str0(g->source), src) == 0;
            if (c->same_as[q] >= 0) {
                /* A folded hop: its movement already has this source. */
                if (same_src)
                    blocked[c->same_as[q]] = p;
                continue;
            }
            if (same_src || blocked[q] == p || g->kind != h->kind)
                continue;
            if (parties_agree(&c->v[q].from, &h->from) && parties_agree(&c->v[q].to, &h->to))
                best = (ptrdiff_t)q; /* keep going: the earliest wins */
        }
        if (best < 0)
            continue;
        size_t m = (size_t)best;
        c->same_as[p] = best;
        c->sources[p] = 0;
        c->sources[m]++;
        view *v = &c->v[m];
        fill_party(&v->from, &h->from);
        fill_party(&v->to, &h->to);
        fill_place(&v->origin, &h->origin);
        fill_place(&v->place, &h->place);
        if (!v->has_delivered && h->has_delivered) {
            v->has_delivered = true;
            v->delivered = h->delivered;
        }
        if (c->tail[m] == SIZE_MAX)
            c->next_member[m] = p;
        else
            c->next_member[c->tail[m]] = p;
        c->tail[m] = p;
    }
}

/* ---- pairwise facts ---------------------------------------------------- */

/* Where movement p starts and ends. */
static const tw_chain_place *start_of(const ctx *c, size_t p)
{
    return c->h[p]->kind == TW_CHAIN_SHIPMENT ? &c->v[p].origin : &c->v[p].place;
}

/* The next character of a name with runs of blanks as one ' ' and none
 * at the end, ASCII letters in lower case; 0 at the end. */
static int name_next(const char **p)
{
    const char *s = *p;
    if (*s == ' ') {
        while (*s == ' ')
            s++;
        *p = s;
        return *s ? ' ' : 0;
    }
    if (!*s)
        return 0;
    *p = s + 1;
    return *s >= 'A' && *s <= 'Z' ? *s + 32 : (unsigned char)*s;
}

/* Whether two party names are the same words (blanks folded and trimmed,
 * ASCII case ignored). NULL or blank: never. */
static int names_equal(const char *x, const char *y)
{
    if (!x || !y)
        return 0;
    while (*x == ' ')
        x++;
    while (*y == ' ')
        y++;
    if (!*x || !*y)
        return 0;
    int cx, cy;
    do {
        cx = name_next(&x);
        cy = name_next(&y);
        if (cx != cy)
            return 0;
    } while (cx);
    return 1;
}

static int pair_facts(ctx *c, size_t a, size_t b)
{
    const view *va = &c->v[a], *vb = &c->v[b];
    const tw_chain_hop *ha = c->h[a], *hb = c->h[b];
    int64_t ids[2] = {ha->event_id, hb->event_id};
    sb t;

    /* custody_gap */
    int64_t to = va->to.cluster, from = vb->from.cluster;
    if (to != 0 && from != 0 && to != from &&
        !(hb->kind == TW_CHAIN_SHIPMENT &&
          (from == va->from.cluster || (vb->to.cluster != 0 && vb->to.cluster == to)))) {
        /* Two records naming the same name without an identifier or an
         * address that ties them: not shown to be one party, nor two. */
        int same_name = names_equal(vb->from.name, va->to.name);
        sb_init(&t);
        sb_lit(&t, "custody gap: ");
        sb_hop(&t, c, a, true);
        sb_lit(&t, ", next ");
        sb_hop(&t, c, b, true);
        sb_lit(&t, " (");
        sb_party(&t, &vb->from);
        if (same_name) {
            sb_lit(&t, " both times, but no identifier or address ties the two records)");
        } else {
            sb_lit(&t, " is not ");
            sb_party(&t, &va->to);
            sb_lit(&t, ")");
        }
        if (add_fact(c, R_CUSTODY_GAP, same_name ? TW_CHAIN_INFO : TW_CHAIN_WARNING, 1 + b, &t,
                     ids, 2))
            return -1;
    }

    /* place_gap and too_fast */
    const tw_chain_place *end = &va->place, *start = start_of(c, b);
    if (!end->known || !start->known)
        return 0;
    double km = tw_haversine_km(end->lat, end->lon, start->lat, start->lon);
    if (!(km >= 0)) /* NaN cannot come from finite input; be safe */
        return 0;
    if (km > c->o->place_gap_km) {
        sb_init(&t);
        sb_lit(&t, "place gap: ");
        sb_hop(&t, c, a, true);
        sb_lit(&t, ", next ");
        sb_hop(&t, c, b, true);
        sb_fmt(&t, ", %.0f km from ", km);
        sb_place(&t, end);
        if (add_fact(c, R_PLACE_GAP, TW_CHAIN_WARNING, 1 + b, &t, ids, 2))
            return -1;
    }
    int64_t t_end = ha->time;
    bool delivered = false;
    if (ha->kind == TW_CHAIN_SHIPMENT && va->has_delivered && va->delivered >= ha->time &&
        va->delivered <= hb->time) {
        t_end = va->delivered;
        delivered = true;
    }
    uint64_t dt = span(t_end, hb->time);
    bool fast;
    double kmh = 0;
    if (km <= TW_PLACE_SAME_KM)
        fast = false;
    else if (dt == 0)
        fast = km > c->o->place_gap_km;
    else {
        kmh = km / ((double)dt / 3600.0);
        fast = kmh > c->o->max_kmh;
    }
    if (!fast)
        return 0;
    sb_init(&t);
    sb_lit(&t, "too fast: ");
    sb_hop(&t, c, a, true);
    if (delivered) {
        sb_lit(&t, ", delivered on ");
        sb_date(&t, t_end);
    }
    if (dt == 0) {
        sb_lit(&t, ", and at the same time ");
        sb_hop(&t, c, b, true);
        sb_fmt(&t, ": %.0f km apart", km);
    } else {
        sb_lit(&t, ", then ");
        sb_hop(&t, c, b, true);
        sb_lit(&t, " ");
        sb_duration(&t, dt);
        sb_fmt(&t, " later: %.0f km at %.0f km/h, more than the %.0f km/h road travel allows", km,
               kmh, c->o->max_kmh);
    }
    return add_fact(c, R_TOO_FAST, TW_CHAIN_INCONSISTENCY, 1 + b, &t, ids, 2);
}

static int seizure_facts(ctx *c)
{
    size_t first = SIZE_MAX, count = 0;
    for (size_t k = c->nmv; k-- > 0;) {
        size_t p = c->mv[k];
        tw_chain_hop_kind kind = c->h[p]->kind;
        if (kind != TW_CHAIN_SEIZURE) {
            first = p;
            count++;
            continue;
        }
        if (count == 0)
            continue;
        sb t;
        sb_init(&t);
        sb_lit(&t, "seized before sold: ");
        sb_hop(&t, c, p, true);
        sb_lit(&t, ", yet ");
        sb_hop(&t, c, first, true);
        sb_lit(&t, " afterwards");
        if (count > 1)
            sb_fmt(&t, " (and %zu more sale%s or shipment%s after the seizure)", count - 1,
                   count == 2 ? "" : "s", count == 2 ? "" : "s");
        int64_t ids[2] = {c->h[p]->event_id, c->h[first]->event_id};
        if (add_fact(c, R_SEIZED_BEFORE_SOLD, TW_CHAIN_INCONSISTENCY, 1 + p, &t, ids, 2))
            return -1;
    }
    return 0;
}

static int sold_twice_facts(ctx *c)
{
    size_t prev = SIZE_MAX; /* index into mv of the previous sale with a known seller */
    for (size_t k = 0; k < c->nmv; k++) {
        size_t p = c->mv[k];
        int64_t seller = c->v[p].from.cluster;
        if (c->h[p]->kind != TW_CHAIN_SALE || seller == 0)
            continue;
        if (prev != SIZE_MAX && c->v[c->mv[prev]].from.cluster != seller) {
            bool returned = false;
            for (size_t j = prev; j < k && !returned; j++)
                returned = c->v[c->mv[j]].to.cluster == seller;
            if (!returned) {
                size_t a = c->mv[prev];
                sb t;
                sb_init(&t);
                sb_lit(&t, "sold twice: ");
                sb_hop(&t, c, a, true);
                sb_lit(&t, ", then ");
                sb_hop(&t, c, p, true);
                sb_lit(&t, "; no hop between returned it to ");
                sb_party(&t, &c->v[p].from);
                int64_t ids[2] = {c->h[a]->event_id, c->h[p]->event_id};
                if (add_fact(c, R_SOLD_TWICE, TW_CHAIN_INCONSISTENCY, 1 + p, &t, ids, 2))
                    return -1;
            }
        }
        prev = k;
    }
    return 0;
}

static void sb_grading(sb *t, const tw_chain_hop *h)
{
    bool s = h->grading_source >= 1 && h->grading_source <= 3;
    bool i = h->grading_info >= 1 && h->grading_info <= 5;
    if (!s && !i)
        return;
    sb_lit(t, " (graded ");
    if (s)
        sb_fmt(t, "%d", h->grading_source);
    if (i)
        sb_fmt(t, "%c", 'A' + h->grading_info - 1);
    sb_lit(t, ")");
}

static int corroboration_facts(ctx *c)
{
    int64_t *ids = NULL;
    int rc = -1;
    for (size_t k = 0; k < c->nmv; k++) {
        size_t p = c->mv[k], nsrc = c->sources[p];
        if (nsrc < 2)
            continue;
        int64_t *tmp = realloc(ids, nsrc * sizeof *ids);
        if (!tmp)
            goto out;
        ids = tmp;
        sb t;
        sb_init(&t);
        sb_lit(&t, "corroborated: ");
        sb_hop(&t, c, p, true);
        sb_fmt(&t, " reported by %zu independent sources: ", nsrc);
        size_t i = 0;
        for (size_t q = p; q != SIZE_MAX && i < nsrc; q = c->next_member[q], i++) {
            if (i)
                sb_lit(&t, ", ");
            sb_text(&t, has_text(c->h[q]->source) ? c->h[q]->source : "(no source)",
                    TW_CHAIN_NAME_MAX);
            sb_grading(&t, c->h[q]);
            ids[i] = c->h[q]->event_id;
        }
        if (add_fact(c, R_CORROBORATED, TW_CHAIN_INFO, 1 + p, &t, ids, i))
            goto out;
    }
    rc = 0;
out:
    free(ids);
    return rc;
}

static int cmp_str_p(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Sort and remove duplicates; returns the new count. */
static size_t sort_unique_ids(int64_t *ids, size_t n)
{
    if (n == 0)
        return 0;
    qsort(ids, n, sizeof *ids, cmp_i64_v);
    size_t w = 1;
    for (size_t i = 1; i < n; i++)
        if (ids[i] != ids[w - 1])
            ids[w++] = ids[i];
    return w;
}

static int single_source_fact(ctx *c)
{
    size_t nactive = 0;
    for (size_t p = 0; p < c->n; p++) {
        if (c->h[p]->status == TW_CHAIN_ACTIVE)
            nactive++;
        if (c->sources[p] > 1)
            return 0;
    }
    if (c->nmv == 0)
        return 0;
    int rc = -1;
    int64_t *ids = malloc(nactive * sizeof *ids);
    const char **src = malloc(nactive * sizeof *src);
    if (!ids || !src)
        goto out;
    size_t k = 0;
    for (size_t p = 0; p < c->n; p++)
        if (c->h[p]->status == TW_CHAIN_ACTIVE) {
            ids[k] = c->h[p]->event_id;
            src[k++] = str0(c->h[p]->source);
        }
    size_t nids = sort_unique_ids(ids, nactive);
    qsort(src, nactive, sizeof *src, cmp_str_p);
    size_t nsrc = 0;
    for (size_t i = 0; i < nactive; i++)
        if (i == 0 || strcmp(src[i], src[nsrc - 1]) != 0)
            src[nsrc++] = src[i];
    sb t;
    sb_init(&t);
    if (nactive == 1)
        sb_lit(&t, "single source: the only hop rests on one source, ");
    else
        sb_fmt(&t, "single source: no hop is corroborated; each of the %zu hops rests on one "
                   "source (%s",
               nactive, nsrc == 1 ? "all from " : "");
    if (nactive > 1 && nsrc > 1)
        sb_fmt(&t, "%zu sources: ", nsrc);
    for (size_t i = 0; i < nsrc && i < SOURCES_NAMED; i++) {
        if (i)
            sb_lit(&t, ", ");
        sb_text(&t, *src[i] ? src[i] : "(no source)", TW_CHAIN_NAME_MAX);
    }
    if (nsrc > SOURCES_NAMED)
        sb_fmt(&t, " and %zu more", nsrc - SOURCES_NAMED);
    if (nactive > 1)
        sb_lit(&t, ")");
    rc = add_fact(c, R_SINGLE_SOURCE, TW_CHAIN_INFO, c->n + 1, &t, ids, nids);
out:
    free(src);
    free(ids);
    return rc;
}

/* ---- readings ---------------------------------------------------------- */

static int cmp_reading(const void *x, const void *y)
{
    const tw_chain_reading *a = *(const tw_chain_reading *const *)x;
    const tw_chain_reading *b = *(const tw_chain_reading *const *)y;
    int c;
    if ((c = strcmp(a->key, b->key)) || (c = cmp_i64(a->method, b->method)) ||
        (c = cmp_i64(a->event_id, b->event_id)) || (c = strcmp(str0(a->raw), str0(b->raw))))
        return c;
    return (a > b) - (a < b);
}

typedef struct {
    const char *key;
    unsigned methods; /* bit m for method m in 1..4, bit 0 for any other */
    int first;        /* lowest method 1..4, 5 when only others */
} key_group;

static int cmp_group(const void *x, const void *y)
{
    const key_group *a = x, *b = y;
    if (a->first != b->first)
        return a->first < b->first ? -1 : 1;
    return strcmp(a->key, b->key);
}

static const char *method_name(int m)
{
    switch (m) {
    case 1:
        return "plate";
    case 2:
        return "stamp";
    case 3:
        return "etched recovery";
    case 4:
        return "document";
    default:
        return "a reading of unknown method";
    }
}

static int readings_fact(ctx *c, const tw_chain_reading *r, size_t nr)
{
    int rc = -1;
    const tw_chain_reading **rp = malloc((nr ? nr : 1) * sizeof *rp);
    key_group *g = malloc((nr ? nr : 1) * sizeof *g);
    int64_t *ids = malloc((nr ? nr : 1) * sizeof *ids);
    if (!rp || !g || !ids)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < nr; i++)
        if (has_text(r[i].key) && !strpbrk(r[i].key, "?*"))
            rp[k++] = &r[i];
    qsort(rp, k, sizeof *rp, cmp_reading);
    size_t ng = 0;
    for (size_t i = 0; i < k; i++) {
        ids[i] = rp[i]->event_id;
        if (ng == 0 || strcmp(g[ng - 1].key, rp[i]->key) != 0)
            g[ng++] = (key_group){rp[i]->key, 0, 5};
        int m = rp[i]->method;
        if (m >= 1 && m <= 4) {
            g[ng - 1].methods |= 1u << m;
            if (m < g[ng - 1].first)
                g[ng - 1].first = m;
        } else
            g[ng - 1].methods |= 1u;
    }
    if (ng < 2) {
        rc = 0;
        goto out;
    }
    qsort(g, ng, sizeof *g, cmp_group);
    sb t;
    sb_init(&t);
    sb_lit(&t, "readings disagree: ");
    for (size_t i = 0; i < ng && i < KEYS_NAMED; i++) {
        if (i)
            sb_lit(&t, ", ");
        int ms[5], nm = 0;
        for (int m = 1; m <= 4; m++)
            if (g[i].methods & (1u << m))
                ms[nm++] = m;
        if (g[i].methods & 1u)
            ms[nm++] = 0;
        for (int j = 0; j < nm; j++) {
            if (j)
                sb_lit(&t, j == nm - 1 ? " and " : ", ");
            sb_lit(&t, method_name(ms[j]));
        }
        sb_lit(&t, nm == 1 ? " reads " : " read ");
        sb_text(&t, g[i].key, TW_CHAIN_NAME_MAX);
    }
    if (ng > KEYS_NAMED)
        sb_fmt(&t, " and %zu more keys", ng - KEYS_NAMED);
    size_t nids = sort_unique_ids(ids, k);
    rc = add_fact(c, R_READINGS_DISAGREE, TW_CHAIN_INCONSISTENCY, 0, &t, ids, nids);
out:
    free(ids);
    free(g);
    free(rp);
    return rc;
}

/* ---- last known -------------------------------------------------------- */

static int last_known(ctx *c, const size_t *list, size_t nlist, tw_chain_result *out)
{
    if (nlist == 0)
        return 0;
    size_t last = list[nlist - 1];
    out->last = (ptrdiff_t)last;
    const tw_chain_party *to = &c->v[last].to;
    if (party_present(to)) {
        out->last_custodian.cluster = to->cluster;
        if (to->name && !(out->last_custodian.name = tw_arena_strdup(c->a, to->name)))
            return -1;
    }
    for (size_t k = nlist; k-- > 0;) {
        const view *v = &c->v[list[k]];
        const tw_chain_place *pl = place_present(&v->place)    ? &v->place
                                   : place_present(&v->origin) ? &v->origin
                                                               : NULL;
        if (!pl)
            continue;
        out->last_place = *pl;
        out->last_place.name = NULL;
        if (pl->name && !(out->last_place.name = tw_arena_strdup(c->a, pl->name)))
            return -1;
        out->last_place_at = (ptrdiff_t)list[k];
        break;
    }
    sb t;
    sb_init(&t);
    sb_lit(&t, "last known: custodian ");
    if (party_present(to))
        sb_party(&t, to);
    else
        sb_lit(&t, "unknown");
    sb_lit(&t, ", place ");
    if (out->last_place_at >= 0) {
        sb_place(&t, &out->last_place);
        if ((size_t)out->last_place_at != last && c->h[out->last_place_at]->has_time) {
            sb_lit(&t, " (as of ");
            sb_date(&t, c->h[out->last_place_at]->time);
            sb_lit(&t, ")");
        }
    } else
        sb_lit(&t, "unknown");
    sb_lit(&t, "; last ");
    sb_hop(&t, c, last, true);
    int64_t ids[2] = {c->h[last]->event_id, 0};
    size_t nids = 1;
    if (out->last_place_at >= 0 && (size_t)out->last_place_at != last)
        ids[nids++] = c->h[out->last_place_at]->event_id;
    return add_fact(c, R_LAST_KNOWN, TW_CHAIN_INFO, c->n + 2, &t, ids, nids);
}

/* ---- assembly ---------------------------------------------------------- */

static int cmp_fact(const void *x, const void *y)
{
    const fact_tmp *a = x, *b = y;
    if (a->f.severity != b->f.severity)
        return a->f.severity > b->f.severity ? -1 : 1;
    if (a->pos != b->pos)
        return a->pos < b->pos ? -1 : 1;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    return (a->seq > b->seq) - (a->seq < b->seq);
}

const char *tw_chain_severity_name(tw_chain_severity s)
{
    switch (s) {
    case TW_CHAIN_INFO:
        return "info";
    case TW_CHAIN_WARNING:
        return "warning";
    case TW_CHAIN_INCONSISTENCY:
        return "inconsistency";
    }
    return "unknown";
}

void tw_chain_options_init(tw_chain_options *opt)
{
    opt->same_hop_seconds = TW_CHAIN_DEFAULT_SAME_HOP_SECONDS;
    opt->place_gap_km = TW_CHAIN_DEFAULT_PLACE_GAP_KM;
    opt->max_kmh = TW_CHAIN_DEFAULT_MAX_KMH;
}

static bool place_ok(const tw_chain_place *p)
{
    return !p->known || (isfinite(p->lat) && isfinite(p->lon));
}

static bool hop_ok(const tw_chain_hop *h)
{
    return (h->kind == TW_CHAIN_SALE || h->kind == TW_CHAIN_SHIPMENT ||
            h->kind == TW_CHAIN_SEIZURE) &&
           (h->status == TW_CHAIN_ACTIVE || h->status == TW_CHAIN_CORRECTED ||
            h->status == TW_CHAIN_RETRACTED) &&
           place_ok(&h->origin) && place_ok(&h->place);
}

int tw_chain_assemble(const tw_chain_hop *hops, size_t n, const tw_chain_reading *readings,
                      size_t nr, const tw_chain_options *opt, tw_arena *arena,
                      tw_chain_result *out)
{
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    out->last = -1;
    out->last_place_at = -1;
    tw_chain_options defaults;
    tw_chain_options_init(&defaults);
    if (!opt)
        opt = &defaults;
    if (!arena || (n > 0 && !hops) || (nr > 0 && !readings) || opt->same_hop_seconds < 0 ||
        !(opt->place_gap_km >= 0) || !(opt->max_kmh > 0) || n > SIZE_MAX / 2 - 4) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!hop_ok(&hops[i])) {
            memset(out, 0, sizeof *out);
            return -1;
        }

    int rc = -1;
    size_t m = n ? n : 1;
    ctx c = {.o = opt, .a = arena, .n = n};
    size_t *blocked = NULL, *untimed = NULL;
    c.h = malloc(m * sizeof *c.h);
    c.v = malloc(m * sizeof *c.v);
    c.same_as = malloc(m * sizeof *c.same_as);
    c.sources = malloc(m * sizeof *c.sources);
    c.next_member = malloc(m * sizeof *c.next_member);
    c.tail = malloc(m * sizeof *c.tail);
    c.mv = malloc(m * sizeof *c.mv);
    blocked = malloc(m * sizeof *blocked);
    untimed = malloc(m * sizeof *untimed);
    if (!c.h || !c.v || !c.same_as || !c.sources || !c.next_member || !c.tail || !c.mv ||
        !blocked || !untimed)
        goto done;

    for (size_t i = 0; i < n; i++)
        c.h[i] = &hops[i];
    qsort(c.h, n, sizeof *c.h, cmp_hop);
    size_t timed = 0;
    while (timed < n && c.h[timed]->has_time)
        timed++;
    for (size_t p = 0; p < n; p++) {
        const tw_chain_hop *h = c.h[p];
        c.v[p] = (view){h->from, h->to, h->origin, h->place, h->has_delivered, h->delivered};
        c.same_as[p] = -1;
        c.sources[p] = 1;
        c.next_member[p] = SIZE_MAX;
        c.tail[p] = SIZE_MAX;
        blocked[p] = SIZE_MAX;
    }
    fold(&c, timed, blocked);

    size_t nuntimed = 0;
    for (size_t p = 0; p < n; p++) {
        if (c.h[p]->status != TW_CHAIN_ACTIVE)
            continue;
        if (p >= timed)
            untimed[nuntimed++] = p;
        else if (c.same_as[p] < 0)
            c.mv[c.nmv++] = p;
    }

    if (readings_fact(&c, readings, nr))
        goto done;
    for (size_t k = 1; k < c.nmv; k++)
        if (pair_facts(&c, c.mv[k - 1], c.mv[k]))
            goto done;
    if (seizure_facts(&c) || sold_twice_facts(&c) || corroboration_facts(&c))
        goto done;
    for (size_t k = 0; k < nuntimed; k++) {
        sb t;
        sb_init(&t);
        sb_lit(&t, "no time: ");
        sb_hop(&t, &c, untimed[k], false);
        sb_lit(&t, " has no event time; it is listed last, after the hops with a time");
        if (add_fact(&c, R_NO_TIME, TW_CHAIN_WARNING, 1 + untimed[k], &t,
                     &c.h[untimed[k]]->event_id, 1))
            goto done;
    }
    if (single_source_fact(&c))
        goto done;
    if (last_known(&c, c.nmv ? c.mv : untimed, c.nmv ? c.nmv : nuntimed, out))
        goto done;

    out->order = tw_arena_calloc(arena, m, sizeof *out->order);
    out->facts = tw_arena_calloc(arena, c.nfacts ? c.nfacts : 1, sizeof *out->facts);
    if (!out->order || !out->facts)
        goto done;
    for (size_t p = 0; p < n; p++)
        out->order[p] = (tw_chain_entry){(size_t)(c.h[p] - hops), c.same_as[p], c.sources[p]};
    out->n = n;
    if (c.nfacts)
        qsort(c.facts, c.nfacts, sizeof *c.facts, cmp_fact);
    for (size_t i = 0; i < c.nfacts; i++)
        out->facts[i] = c.facts[i].f;
    out->n_facts = c.nfacts;
    rc = 0;
done:
    free(c.facts);
    free(untimed);
    free(blocked);
    free(c.mv);
    free(c.tail);
    free(c.next_member);
    free(c.sources);
    free(c.same_as);
    free(c.v);
    free(c.h);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}
