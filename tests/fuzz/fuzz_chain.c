/* Fuzz target for tw_chain (chain assembly).
 *
 * Input layout: byte 0 picks the options (corroboration window 0, 1 h or
 * 2 days; place gap 0, 50 km or none; max speed 1, 130 km/h or none) and,
 * in its high bits, how many readings follow the hops (0-7). Then 8 bytes
 * per hop:
 *   0  kind (% 3 + 1), status (>> 2, % 3)
 *   1  event id
 *   2  line (% 4), bit 6 has_delivered, bit 7 has_time
 *   3  time in hours (0xFE: INT64_MIN, 0xFF: INT64_MAX seconds)
 *   4  from cluster (% 6), to cluster (>> 4, % 6)
 *   5  place (% 8), origin (>> 4, % 8) from a pool (unknown, towns, a
 *      place with a name and no coordinates, extreme coordinates)
 *   6  source (% 5, one NULL, one ""), names (>> 4, % 6 from a pool with
 *      NULL, "", invalid UTF-8, control characters and a long name)
 *   7  delivery offset in hours (low 5 bits, may be before the time),
 *      grading (>> 5)
 * and then 2 bytes per reading: key (% 7 from a pool with NULL, "", a
 * partial key and a long one) and method (% 6). Small pools make ties,
 * folds and facts likely.
 *
 * Checked invariants: assembly succeeds; the order is a permutation of the
 * input, timed hops first in time order, then untimed by event id; a folded
 * hop points to an earlier active, timed, unfolded hop of its kind whose
 * sources count it, inactive and untimed hops are never folded; facts have
 * a known kind, non-increasing severity, a clean bounded UTF-8 text and
 * event ids taken from the input; last is an active unfolded hop; the
 * reversed and the rotated input give the same chain and facts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define MAX_HOPS 512

static const char *const sources[] = {"retailer", "carrier", "customs", NULL, ""};
static char long_name[600];
static const char *names[] = {NULL, "", "Jan Peeters", "Caf\xc3\xa9 \xff\xfe", "a\nb\x01\x7f",
                              long_name};
static const char *const keys[] = {"6E5X1016523", "6E5X1016532", NULL, "", "6E5X10?6523",
                                   "F40LEHA", long_name};
static const tw_chain_place places[] = {
    {false, 0, 0, NULL},
    {true, 50.9513, 1.8587, "Calais"},
    {true, 50.6292, 3.0573, "Lille"},
    {true, 48.1351, 11.5820, "M\xc3\xbcnchen"},
    {true, 51.0344, 2.3768, NULL},
    {false, 1.0, 2.0, "Nowhere"},
    {true, 1e300, -1e300, "Far"},
    {true, 50.9514, 1.8588, "Calais Nord"},
};

static const char *const fact_kinds[] = {"custody_gap",  "place_gap",        "seized_before_sold",
                                         "too_fast",     "sold_twice",       "readings_disagree",
                                         "no_time",      "single_source",    "corroborated",
                                         "last_known"};

static int clean_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
                               : (*p & 0xF8) == 0xF0   ? 4
                                                       : 0;
        if (n == 0 || *p < 0x20 || *p == 0x7F || (n == 2 && *p < 0xC2))
            return 0;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

/* NULL and "" are the same text to the module. */
static int same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Hops the module cannot tell apart (NULL and "" are one). */
static int same_hop(const tw_chain_hop *a, const tw_chain_hop *b)
{
    return a->event_id == b->event_id && a->line == b->line && a->kind == b->kind &&
           a->status == b->status && a->has_time == b->has_time && a->time == b->time &&
           a->from.cluster == b->from.cluster && a->to.cluster == b->to.cluster &&
           same_str(a->source, b->source) && same_str(a->place.name, b->place.name) &&
           same_str(a->origin.name, b->origin.name) && same_str(a->from.name, b->from.name) &&
           same_str(a->to.name, b->to.name) && a->delivered == b->delivered &&
           a->has_delivered == b->has_delivered && a->grading_source == b->grading_source &&
           a->grading_info == b->grading_info;
}

static int known_id(int64_t id, const tw_chain_hop *h, size_t n, const tw_chain_reading *r,
                    size_t nr)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].event_id == id)
            return 1;
    for (size_t i = 0; i < nr; i++)
        if (r[i].event_id == id)
            return 1;
    return 0;
}

static void check_result(const tw_chain_result *r, const tw_chain_hop *h, size_t n,
                         const tw_chain_reading *rd, size_t nr)
{
    CHECK(r->n == n && (n == 0 || r->order));
    char *seen = calloc(n ? n : 1, 1);
    size_t *folded = calloc(n ? n : 1, sizeof *folded);
    CHECK(seen && folded);
    for (size_t p = 0; p < n; p++) {
        const tw_chain_entry *e = &r->order[p];
        CHECK(e->input < n && !seen[e->input]);
        seen[e->input] = 1;
        const tw_chain_hop *x = &h[e->input];
        if (p > 0) {
            const tw_chain_hop *w = &h[r->order[p - 1].input];
            CHECK(w->has_time || !x->has_time);
            if (w->has_time && x->has_time)
                CHECK(w->time < x->time || (w->time == x->time && w->event_id <= x->event_id));
            if (!w->has_time && !x->has_time)
                CHECK(w->event_id <= x->event_id);
        }
        if (e->same_as >= 0) {
            CHECK(e->same_as < (ptrdiff_t)p && e->sources == 0);
            const tw_chain_entry *g = &r->order[e->same_as];
            const tw_chain_hop *y = &h[g->input];
            CHECK(g->same_as == -1 && y->kind == x->kind && y->has_time && x->has_time);
            CHECK(y->status == TW_CHAIN_ACTIVE && x->status == TW_CHAIN_ACTIVE);
            folded[e->same_as]++;
        } else {
            CHECK(e->same_as == -1 && e->sources >= 1);
        }
        if (x->status != TW_CHAIN_ACTIVE || !x->has_time)
            CHECK(e->same_as == -1 && e->sources == 1);
    }
    for (size_t p = 0; p < n; p++)
        if (r->order[p].same_as == -1)
            CHECK(r->order[p].sources == 1 + folded[p]);
    for (size_t i = 0; i < r->n_facts; i++) {
        const tw_chain_fact *f = &r->facts[i];
        int ok = 0;
        for (size_t k = 0; k < sizeof fact_kinds / sizeof *fact_kinds; k++)
            ok |= strcmp(f->kind, fact_kinds[k]) == 0;
        CHECK(ok);
        CHECK(f->text && strlen(f->text) < TW_CHAIN_TEXT_MAX && clean_utf8(f->text));
        CHECK(f->n_event_ids > 0 && f->event_ids);
        for (size_t k = 0; k < f->n_event_ids; k++)
            CHECK(known_id(f->event_ids[k], h, n, rd, nr));
        if (i > 0)
            CHECK(r->facts[i - 1].severity >= f->severity);
    }
    if (r->last >= 0) {
        CHECK((size_t)r->last < n && r->order[r->last].same_as == -1);
        CHECK(h[r->order[r->last].input].status == TW_CHAIN_ACTIVE);
    }
    CHECK(r->last_place_at < (ptrdiff_t)n);
    free(folded);
    free(seen);
}

static void check_same(const tw_chain_result *a, const tw_chain_hop *ha, const tw_chain_result *b,
                       const tw_chain_hop *hb)
{
    CHECK(a->n == b->n && a->n_facts == b->n_facts && a->last == b->last);
    CHECK(a->last_place_at == b->last_place_at);
    for (size_t p = 0; p < a->n; p++) {
        CHECK(same_hop(&ha[a->order[p].input], &hb[b->order[p].input]));
        CHECK(a->order[p].same_as == b->order[p].same_as);
        CHECK(a->order[p].sources == b->order[p].sources);
    }
    for (size_t i = 0; i < a->n_facts; i++) {
        const tw_chain_fact *x = &a->facts[i], *y = &b->facts[i];
        CHECK(!strcmp(x->kind, y->kind) && x->severity == y->severity);
        CHECK(!strcmp(x->text, y->text) && x->n_event_ids == y->n_event_ids);
        CHECK(!memcmp(x->event_ids, y->event_ids, x->n_event_ids * sizeof *x->event_ids));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tw_chain_hop hops[MAX_HOPS], perm[MAX_HOPS];
    tw_chain_reading rd[8];
    if (size < 1)
        return 0;
    if (!long_name[0])
        memset(long_name, 'L', sizeof long_name - 1);
    static const int64_t windows[] = {0, 3600, 2 * 86400};
    static const double gaps[] = {0, 50, 1.0 / 0.0};
    static const double speeds[] = {1, 130, 1.0 / 0.0};
    tw_chain_options opt;
    tw_chain_options_init(&opt);
    opt.same_hop_seconds = windows[data[0] % 3];
    opt.place_gap_km = gaps[(data[0] / 3) % 3];
    opt.max_kmh = speeds[(data[0] / 9) % 3];
    size_t want_readings = (data[0] >> 5) & 7u;
    size_t p = 1, n = 0, nr = 0;
    while (n < MAX_HOPS && p + 8 + 2 * want_readings <= size) {
        const uint8_t *b = data + p;
        tw_chain_hop *h = &hops[n++];
        memset(h, 0, sizeof *h);
        h->kind = (tw_chain_hop_kind)(b[0] % 3 + 1);
        h->status = (tw_chain_status)((b[0] >> 2) % 3);
        h->event_id = b[1];
        h->line = b[2] & 3;
        h->has_delivered = (b[2] & 0x40) != 0;
        h->has_time = (b[2] & 0x80) != 0;
        h->time = b[3] == 0xFE ? INT64_MIN : b[3] == 0xFF ? INT64_MAX : 1767225600 + b[3] * 3600LL;
        h->delivered = h->time == INT64_MIN || h->time == INT64_MAX
                           ? h->time
                           : h->time + ((int64_t)(b[7] & 31) - 4) * 3600;
        h->from = (tw_chain_party){b[4] % 6, names[(b[6] >> 4) % 6]};
        h->to = (tw_chain_party){(b[4] >> 4) % 6, names[(b[6] >> 2) % 6]};
        h->place = places[b[5] % 8];
        h->origin = places[(b[5] >> 4) % 8];
        h->source = sources[b[6] % 5];
        h->grading_source = b[7] >> 5;
        h->grading_info = (b[7] >> 5) + 1;
        p += 8;
    }
    for (; nr < want_readings && p + 2 <= size; nr++, p += 2)
        rd[nr] = (tw_chain_reading){keys[data[p] % 7], "raw", data[p + 1] % 6, data[p]};

    tw_arena a;
    tw_arena_init(&a, 0);
    tw_chain_result r, r2;
    CHECK(tw_chain_assemble(hops, n, rd, nr, &opt, &a, &r) == 0);
    check_result(&r, hops, n, rd, nr);
    for (size_t i = 0; i < n; i++) /* reversed */
        perm[i] = hops[n - 1 - i];
    CHECK(tw_chain_assemble(perm, n, rd, nr, &opt, &a, &r2) == 0);
    check_result(&r2, perm, n, rd, nr);
    check_same(&r, hops, &r2, perm);
    for (size_t i = 0; i < n; i++) /* rotated by a third */
        perm[i] = hops[(i + n / 3) % n];
    CHECK(tw_chain_assemble(perm, n, rd, nr, &opt, &a, &r2) == 0);
    check_same(&r, hops, &r2, perm);
    tw_arena_free(&a);
    return 0;
}
