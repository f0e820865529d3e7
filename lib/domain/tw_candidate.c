/* tw_candidate: see tw_candidate.h for the contract and the formula. */
#include "tw_candidate.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_places.h"

#define W_CHARS 0.60
#define W_MAKER 0.15
#define W_MODEL 0.10
#define W_PLACE 0.10
#define W_TIME 0.05
#define LOOKALIKE_WEIGHT 0.75

void tw_candidate_options_default(tw_candidate_options *o)
{
    if (!o)
        return;
    o->cutoff = TW_CANDIDATE_DEFAULT_CUTOFF;
    o->margin = TW_CANDIDATE_DEFAULT_MARGIN;
}

const char *tw_candidate_kind_name(tw_candidate_kind k)
{
    switch (k) {
    case TW_CANDIDATE_RULED_OUT: return "ruled out";
    case TW_CANDIDATE_IMPLAUSIBLE: return "implausible";
    case TW_CANDIDATE_CANDIDATE: return "candidate";
    case TW_CANDIDATE_PROBABLE: return "probable link";
    }
    return "?";
}

const char *tw_candidate_status_name(tw_candidate_status s)
{
    switch (s) {
    case TW_CANDIDATE_OK: return "ok";
    case TW_CANDIDATE_ERR_ARG: return "invalid argument";
    case TW_CANDIDATE_ERR_KEY: return "invalid reading key";
    case TW_CANDIDATE_ERR_PLACE: return "invalid place";
    }
    return "?";
}

/* ---- alignment ---------------------------------------------------------- */

/* One DP cell: the best alignment of a reading prefix with a key prefix. */
typedef struct {
    unsigned char ok, exact, lookalike, unknown, gap, open, mismatch;
} cell;

/* Is a better than b: fewest mismatches, most agreeing, most exact, fewest gaps. */
static bool cell_better(const cell *a, const cell *b)
{
    if (!b->ok)
        return a->ok;
    if (!a->ok)
        return false;
    if (a->mismatch != b->mismatch)
        return a->mismatch < b->mismatch;
    unsigned aa = (unsigned)a->exact + a->lookalike, ba = (unsigned)b->exact + b->lookalike;
    if (aa != ba)
        return aa > ba;
    if (a->exact != b->exact)
        return a->exact > b->exact;
    return a->gap < b->gap;
}

static void relax(cell *dst, const cell *cand)
{
    if (cell_better(cand, dst))
        *dst = *cand;
}

static bool key_ok(const char *k, size_t *len)
{
    size_t n = 0;
    for (; k[n]; n++) {
        char c = k[n];
        if (n >= TW_CANDIDATE_KEY_MAX)
            return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '?'))
            return false;
    }
    *len = n;
    return n > 0;
}

bool tw_candidate_align_keys(const char *reading, const char *key, tw_candidate_align *out)
{
    tw_candidate_align zero = {0};
    if (out)
        *out = zero;
    size_t n, m;
    if (!out || !reading || !key || !key_ok(reading, &n) || !key_ok(key, &m))
        return false;
    out->key_len = (unsigned)m;

    cell dp[TW_CANDIDATE_KEY_MAX + 1][TW_CANDIDATE_KEY_MAX + 1];
    memset(dp, 0, sizeof dp);
    dp[0][0].ok = 1;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j <= m; j++) {
            const cell *c = &dp[i][j];
            if (!c->ok)
                continue;
            cell t = *c;
            if (reading[i] == '?') {
                t.gap++;
                relax(&dp[i + 1][j], &t);
                if (j < m) {
                    t = *c;
                    t.unknown++;
                    relax(&dp[i + 1][j + 1], &t);
                }
                continue;
            }
            if (j == m)
                continue;
            char x = reading[i], y = key[j];
            if (y == '?')
                t.open++;
            else if (x == y)
                t.exact++;
            else if (tw_serial_fold_char(x) == tw_serial_fold_char(y))
                t.lookalike++;
            else
                t.mismatch++;
            relax(&dp[i + 1][j + 1], &t);
        }
    }
    const cell *end = &dp[n][m];
    if (!end->ok)
        return false;
    out->aligned = true;
    out->exact = end->exact;
    out->lookalike = end->lookalike;
    out->unknown = end->unknown;
    out->gap = end->gap;
    out->open = end->open;
    out->mismatch = end->mismatch;
    return out->mismatch == 0;
}

/* ---- bounded text -------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap, len;
} text;

/* Append s (no format interpretation), truncating at the capacity. */
static void put(text *t, const char *s)
{
    size_t room = t->cap - 1 - t->len, l = strlen(s);
    if (l > room)
        l = room;
    memcpy(t->buf + t->len, s, l);
    t->len += l;
    t->buf[t->len] = 0;
}

static void put_u(text *t, unsigned long long v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", v);
    put(t, b);
}

/* ---- components ---------------------------------------------------------- */

/* Compare letters and digits of a and b ignoring case and everything else. */
static bool same_alnum(const char *a, const char *b)
{
    for (;;) {
        while (*a && !isalnum((unsigned char)*a))
            a++;
        while (*b && !isalnum((unsigned char)*b))
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        if (toupper((unsigned char)*a) != toupper((unsigned char)*b))
            return false;
        a++, b++;
    }
}

static bool has_alnum(const char *s)
{
    if (!s)
        return false;
    for (; *s; s++)
        if (isalnum((unsigned char)*s))
            return true;
    return false;
}

typedef enum { CMP_UNKNOWN, CMP_SAME, CMP_DIFFERENT } cmp;

static cmp maker_cmp(const char *a, const char *b)
{
    tw_serial_maker ma = tw_serial_maker_parse(a), mb = tw_serial_maker_parse(b);
    if (ma == TW_SERIAL_MAKER_UNKNOWN || mb == TW_SERIAL_MAKER_UNKNOWN)
        return CMP_UNKNOWN;
    if (ma != mb)
        return CMP_DIFFERENT;
    if (ma == TW_SERIAL_MAKER_OTHER)
        return same_alnum(a, b) ? CMP_SAME : CMP_DIFFERENT;
    return CMP_SAME;
}

static cmp model_cmp(const char *a, const char *b)
{
    if (!has_alnum(a) || !has_alnum(b))
        return CMP_UNKNOWN;
    return same_alnum(a, b) ? CMP_SAME : CMP_DIFFERENT;
}

static bool place_ok(double lat, double lon)
{
    return isfinite(lat) && isfinite(lon) && lat >= -90.0 && lat <= 90.0 && lon >= -180.0 &&
           lon <= 180.0;
}

static double chars_score(const tw_candidate_align *a)
{
    /* every reading character stands for one key character or a gap */
    unsigned n = a->key_len + a->gap;
    if (!n)
        return 0.0;
    double s = (a->exact + LOOKALIKE_WEIGHT * a->lookalike) / n;
    return s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
}

static void reason_chars(text *t, const tw_candidate_align *a)
{
    put_u(t, (unsigned long long)a->exact + a->lookalike);
    put(t, " of ");
    put_u(t, a->key_len);
    put(t, " characters agree");
    const char *sep = " (";
    if (a->lookalike) {
        put(t, sep);
        put_u(t, a->lookalike);
        put(t, a->lookalike == 1 ? " OCR look-alike" : " OCR look-alikes");
        sep = ", ";
    }
    if (a->unknown) {
        put(t, sep);
        put_u(t, a->unknown);
        put(t, " unreadable");
        sep = ", ";
    }
    if (a->gap) {
        put(t, sep);
        put_u(t, a->gap);
        put(t, a->gap == 1 ? " '?' read as a removed separator"
                           : " '?' read as removed separators");
        sep = ", ";
    }
    if (a->open) {
        put(t, sep);
        put_u(t, a->open);
        put(t, " unknown in the item's key");
        sep = ", ";
    }
    if (sep[0] == ',')
        put(t, ")");
}

/* Score one item into *res (not its kind beyond RULED_OUT/IMPLAUSIBLE). */
static void score_item(const char *rkey, const tw_candidate_reading *r,
                       const tw_candidate_item *it, size_t index, tw_candidate_result *res)
{
    memset(res, 0, sizeof *res);
    res->item_id = it->item_id;
    res->index = index;
    res->km = -1.0;
    res->kind = TW_CANDIDATE_RULED_OUT;
    text t = {res->reason, sizeof res->reason, 0};

    /* The best key: aligned without mismatch and highest chars score; else
     * the fewest mismatches, for the reason. */
    bool found = false, any_aligned = false;
    tw_candidate_align best = {0}, near = {0};
    for (size_t k = 0; k < it->nkeys; k++) {
        char key[TW_CANDIDATE_KEY_MAX + 1];
        tw_serial_clean_info info;
        const char *raw = it->keys[k];
        if (!raw || tw_serial_clean(raw, strlen(raw), key, sizeof key, &info) != TW_SERIAL_OK)
            continue;
        tw_candidate_align a;
        if (tw_candidate_align_keys(rkey, key, &a)) {
            if (!found || chars_score(&a) > chars_score(&best)) {
                best = a;
                res->key_index = k;
            }
            found = true;
        } else if (!found && a.aligned && (!any_aligned || a.mismatch < near.mismatch)) {
            near = a;
            any_aligned = true;
            res->key_index = k;
        }
    }
    if (!found) {
        if (any_aligned) {
            res->align = near;
            put(&t, "ruled out: ");
            put_u(&t, near.mismatch);
            put(&t, near.mismatch == 1 ? " known character differs"
                                       : " known characters differ");
        } else if (it->nkeys) {
            put(&t, "ruled out: no key of the item can align with the reading");
        } else {
            put(&t, "ruled out: the item has no key");
        }
        return;
    }
    res->align = best;

    cmp mk = maker_cmp(r->maker, it->maker);
    if (mk == CMP_DIFFERENT) {
        put(&t, "ruled out: different maker; ");
        reason_chars(&t, &best);
        return;
    }
    cmp md = model_cmp(r->model, it->model);
    double place = 0.5;
    if (r->has_place && it->has_place) {
        res->km = tw_haversine_km(r->lat, r->lon, it->lat, it->lon);
        double d = res->km < TW_CANDIDATE_PLACE_KM ? res->km : TW_CANDIDATE_PLACE_KM;
        place = 1.0 - d / TW_CANDIDATE_PLACE_KM;
    }
    bool after = r->has_time && it->has_time && it->time > r->time;

    double s = W_CHARS * chars_score(&best) +
               W_MAKER * (mk == CMP_SAME ? 1.0 : 0.5) +
               W_MODEL * (md == CMP_SAME ? 1.0 : md == CMP_UNKNOWN ? 0.5 : 0.0) +
               W_PLACE * place + W_TIME * (after ? 0.0 : 1.0);
    res->score = s < 0.0 ? 0.0 : s > 1.0 ? 1.0 : s;
    res->kind = TW_CANDIDATE_IMPLAUSIBLE;

    reason_chars(&t, &best);
    if (mk == CMP_SAME && md == CMP_SAME)
        put(&t, ", same maker and model");
    else {
        put(&t, mk == CMP_SAME ? ", same maker" : ", maker unknown");
        put(&t, md == CMP_SAME        ? ", same model"
                : md == CMP_DIFFERENT ? ", different model"
                                      : ", model unknown");
    }
    if (res->km >= 0.0) {
        put(&t, ", last seen ");
        put_u(&t, (unsigned long long)llround(res->km));
        put(&t, " km away");
    } else {
        put(&t, ", distance unknown");
    }
    if (after)
        put(&t, ", last seen after the reading");
}

static int result_cmp(const void *pa, const void *pb)
{
    const tw_candidate_result *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    if (a->item_id != b->item_id)
        return a->item_id < b->item_id ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static tw_candidate_status fail(char *err, tw_candidate_status st, const char *why)
{
    if (err) {
        text t = {err, TW_CANDIDATE_TEXT_MAX, 0};
        err[0] = 0;
        put(&t, why);
    }
    return st;
}

tw_candidate_status tw_candidate_rank(const tw_candidate_reading *r,
                                      const tw_candidate_item *items, size_t nitems,
                                      const tw_candidate_options *opt,
                                      tw_candidate_result *out, size_t *nplausible,
                                      char err[TW_CANDIDATE_TEXT_MAX])
{
    if (err)
        err[0] = 0;
    if (nplausible)
        *nplausible = 0;
    if (!r || !nplausible || (nitems && (!items || !out)))
        return fail(err, TW_CANDIDATE_ERR_ARG, "NULL argument");
    tw_candidate_options o;
    tw_candidate_options_default(&o);
    if (opt)
        o = *opt;
    if (!(o.cutoff >= 0.0 && o.cutoff <= 1.0) || !(o.margin >= 0.0 && o.margin <= 1.0))
        return fail(err, TW_CANDIDATE_ERR_ARG, "cutoff and margin must be in [0, 1]");
    if (!r->key)
        return fail(err, TW_CANDIDATE_ERR_KEY, "reading key: missing");

    char rkey[TW_CANDIDATE_KEY_MAX + 1];
    tw_serial_clean_info info;
    if (tw_serial_clean(r->key, strlen(r->key), rkey, sizeof rkey, &info) != TW_SERIAL_OK) {
        char why[TW_CANDIDATE_TEXT_MAX];
        text t = {why, sizeof why, 0};
        why[0] = 0;
        put(&t, "reading key: ");
        put(&t, info.error_text);
        return fail(err, TW_CANDIDATE_ERR_KEY, why);
    }
    if (r->has_place && !place_ok(r->lat, r->lon))
        return fail(err, TW_CANDIDATE_ERR_PLACE, "reading place: latitude/longitude out of range");
    for (size_t i = 0; i < nitems; i++) {
        if (items[i].nkeys && !items[i].keys)
            return fail(err, TW_CANDIDATE_ERR_ARG, "item with keys == NULL");
        if (items[i].has_place && !place_ok(items[i].lat, items[i].lon))
            return fail(err, TW_CANDIDATE_ERR_PLACE, "item place: latitude/longitude out of range");
    }

    for (size_t i = 0; i < nitems; i++)
        score_item(rkey, r, &items[i], i, &out[i]);
    if (nitems > 1)
        qsort(out, nitems, sizeof *out, result_cmp);

    size_t np = 0;
    for (size_t i = 0; i < nitems; i++) {
        if (out[i].kind == TW_CANDIDATE_RULED_OUT || out[i].score < o.cutoff)
            break;
        out[i].kind = TW_CANDIDATE_CANDIDATE;
        np++;
    }
    if (np == 1 && (nitems == 1 || out[0].score - out[1].score >= o.margin))
        out[0].kind = TW_CANDIDATE_PROBABLE;
    *nplausible = np;
    return TW_CANDIDATE_OK;
}
