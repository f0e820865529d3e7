/* tw_alertrules: the alert rules of issue 8 (see tw_alertrules.h for the
 * contract and the scoring table). */
#include "tw_alertrules.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tw_cluster.h"
#include "tw_places.h"

#define DAY INT64_C(86400)
/* Evidence lists at most this many hops (the first and the latest ones). */
#define MAX_EVIDENCE_HOPS 64
#define MAX_FACTORS 24
/* One line's quantity counts at most this much (keeps sums in range). */
#define MAX_LINE_QUANTITY 1000000

/* ---- configuration ---------------------------------------------------- */

void tw_ar_config_defaults(tw_ar_config *out)
{
    *out = (tw_ar_config){
        .version = 1,
        .approach_min_km = 150,
        .approach_end_km = 60,
        .via_transit_min_km = 100,
        .via_transit_max_days = 45,
        .seizure_lookback_days = 365,
        .bulk_min_items = 4,
        .bulk_window_days = 30,
        .quiet_within_km = 40,
        .quiet_days = 10,
        .quiet_lookback_days = 90,
        .trader_min_records = 3,
        .local_km = 50,
        .min_score = 3,
        .medium_score = 5,
        .high_score = 8,
        .critical_score = 11,
        .long_haul_km = 300,
    };
}

typedef struct cfg_field {
    const char *name;
    int is_int;
    size_t off;
    double lo, hi;
} cfg_field;

#define F_D(n, lo, hi) {#n, 0, offsetof(tw_ar_config, n), lo, hi}
#define F_I(n, lo, hi) {#n, 1, offsetof(tw_ar_config, n), lo, hi}
static const cfg_field CFG_FIELDS[] = {
    F_D(approach_min_km, 0, 20000),   F_D(approach_end_km, 0, 20000),
    F_D(via_transit_min_km, 0, 20000), F_I(via_transit_max_days, 0, 36500),
    F_I(seizure_lookback_days, 0, 36500), F_I(bulk_min_items, 1, 1000000),
    F_I(bulk_window_days, 1, 36500),  F_D(quiet_within_km, 0, 20000),
    F_I(quiet_days, 0, 36500),        F_I(quiet_lookback_days, 0, 36500),
    F_I(trader_min_records, 0, 1000000), F_D(local_km, 0, 20000),
    F_D(min_score, 0, 1000),          F_D(medium_score, 0, 1000),
    F_D(high_score, 0, 1000),         F_D(critical_score, 0, 1000),
    F_D(long_haul_km, 0, 20000),
};
#undef F_D
#undef F_I

int tw_ar_config_parse(const char *json, size_t len, int version, tw_ar_config *out, char *err,
                       size_t errlen)
{
    tw_ar_config c;
    tw_ar_config_defaults(&c);
    c.version = version;
    if (errlen)
        err[0] = '\0';
    if (!json) {
        snprintf(err, errlen, "settings: missing");
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "settings: invalid JSON at line %d column %d: %s", je.line,
                 je.column, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "settings: not a JSON object");
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        const cfg_field *f = NULL;
        for (size_t i = 0; i < sizeof CFG_FIELDS / sizeof CFG_FIELDS[0]; i++)
            if (!strcmp(key, CFG_FIELDS[i].name))
                f = &CFG_FIELDS[i];
        if (!f) {
            snprintf(err, errlen, "%.64s: unknown key", key);
            goto done;
        }
        char *p = (char *)&c + f->off;
        if (f->is_int) {
            if (!json_is_integer(v)) {
                snprintf(err, errlen, "%s: must be an integer", f->name);
                goto done;
            }
            json_int_t x = json_integer_value(v);
            if ((double)x < f->lo || (double)x > f->hi) {
                snprintf(err, errlen, "%s: %" JSON_INTEGER_FORMAT " out of range %.0f..%.0f",
                         f->name, x, f->lo, f->hi);
                goto done;
            }
            int iv = (int)x;
            memcpy(p, &iv, sizeof iv);
        } else {
            if (!json_is_number(v)) {
                snprintf(err, errlen, "%s: must be a number", f->name);
                goto done;
            }
            double x = json_number_value(v);
            if (!isfinite(x) || x < f->lo || x > f->hi) {
                snprintf(err, errlen, "%s: %g out of range %g..%g", f->name, x, f->lo, f->hi);
                goto done;
            }
            memcpy(p, &x, sizeof x);
        }
    }
    if (!(c.min_score <= c.medium_score && c.medium_score <= c.high_score &&
          c.high_score <= c.critical_score)) {
        snprintf(err, errlen,
                 "min_score: the scores must rise: min_score <= medium_score <= high_score <= "
                 "critical_score");
        goto done;
    }
    if (c.quiet_lookback_days < c.quiet_days) {
        snprintf(err, errlen, "quiet_lookback_days: must be at least quiet_days (%d)",
                 c.quiet_days);
        goto done;
    }
    *out = c;
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* ---- names --------------------------------------------------------------- */

const char *tw_ar_subject_kind_name(tw_ar_subject_kind k)
{
    switch (k) {
    case TW_AR_SUBJECT_ITEM:
        return "item";
    case TW_AR_SUBJECT_CLUSTER:
        return "cluster";
    case TW_AR_SUBJECT_CONSIGNMENT:
        return "consignment";
    }
    return "";
}

const char *tw_ar_severity_name(int severity)
{
    static const char *const n[] = {"low", "medium", "high", "critical"};
    return severity >= 1 && severity <= 4 ? n[severity - 1] : "";
}

static const char *hub_kind_name(tw_ar_hub_kind k)
{
    switch (k) {
    case TW_AR_HUB_COAST:
        return "coast";
    case TW_AR_HUB_INLAND:
        return "inland";
    case TW_AR_HUB_TRANSIT:
        return "transit";
    case TW_AR_HUB_UK_LANDING:
        return "uk_landing";
    }
    return "";
}

static const char *hop_kind_name(int k)
{
    return k == TW_AR_HOP_SALE       ? "sale"
           : k == TW_AR_HOP_SHIPMENT ? "shipment"
           : k == TW_AR_HOP_SEIZURE  ? "seizure"
                                     : "unknown";
}

static const char *party_kind_name(int k)
{
    return k == TW_AR_PARTY_PERSON    ? "person"
           : k == TW_AR_PARTY_COMPANY ? "company"
           : k == TW_AR_PARTY_AGENCY  ? "agency"
                                      : "unknown";
}

static const char *item_kind_name(int k)
{
    return k == TW_AR_ITEM_ENGINE ? "engine"
           : k == TW_AR_ITEM_BOAT ? "boat"
           : k == TW_AR_ITEM_OTHER ? "other"
                                   : "unknown";
}

static const char *payment_name(int p)
{
    return p == TW_AR_PAY_CASH       ? "cash"
           : p == TW_AR_PAY_CARD     ? "card"
           : p == TW_AR_PAY_TRANSFER ? "transfer"
           : p == TW_AR_PAY_OTHER    ? "other"
                                     : "";
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* ---- text ------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (s non-empty), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x3fu >> (n - 1));
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A growing string; `oom` sticks once an allocation failed. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_grow(sbuf *b, size_t more)
{
    if (b->oom)
        return;
    if (b->n + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void sb_mem(sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = 1;
        return;
    }
    sb_mem(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

/* Append s as valid UTF-8 (invalid bytes become '?', control characters a
 * space), at most 200 bytes of it. */
static void sb_text(sbuf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)nz(s);
    size_t done = 0;
    while (*p && done < 200) {
        size_t k = utf8_seq(p);
        if (k == 0) {
            sb_mem(b, "?", 1);
            p++;
            done++;
            continue;
        }
        size_t i = 0;
        while (i < k && p[i])
            i++;
        if (i < k) { /* truncated by the terminator */
            sb_mem(b, "?", 1);
            break;
        }
        if (k == 1 && (*p < 0x20 || *p == 0x7f))
            sb_mem(b, " ", 1);
        else
            sb_mem(b, (const char *)p, k);
        p += k;
        done += k;
    }
}

static char *sb_take(sbuf *b)
{
    if (b->oom) {
        free(b->p);
        *b = (sbuf){0};
        return NULL;
    }
    if (!b->p)
        return strdup("");
    char *p = b->p;
    *b = (sbuf){0};
    return p;
}

static void sb_free(sbuf *b)
{
    free(b->p);
    *b = (sbuf){0};
}

/* A JSON string of s, made valid UTF-8 first when it is not. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(nz(s));
    if (j)
        return j;
    sbuf b = {0};
    sb_text(&b, s);
    char *t = sb_take(&b);
    if (!t)
        return NULL;
    j = json_string(t);
    free(t);
    return j;
}

/* A number rounded to 1/scale, null when not finite. */
static json_t *jnum(double x, double scale)
{
    if (!isfinite(x))
        return json_null();
    double r = round(x * scale) / scale;
    if (!isfinite(r))
        return json_null();
    return json_real(r == 0 ? 0.0 : r);
}

static int fmt_time(int64_t t, char *out, size_t len, int date_only)
{
    if (t == TW_AR_NO_TIME || t < -(INT64_C(1) << 40) || t > (INT64_C(1) << 40))
        return -1;
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return -1;
    size_t k = strftime(out, len, date_only ? "%Y-%m-%d" : "%Y-%m-%dT%H:%M:%SZ", &tm);
    return k ? 0 : -1;
}

static json_t *jtime(int64_t t)
{
    char buf[64];
    return fmt_time(t, buf, sizeof buf, 0) ? json_null() : json_string(buf);
}

static void sb_date(sbuf *b, int64_t t)
{
    char buf[64];
    if (fmt_time(t, buf, sizeof buf, 1))
        sb_printf(b, "an unknown date");
    else
        sb_printf(b, "%s", buf);
}

/* Set key on o to v (stolen); failure is recorded in *bad. */
static void jset(json_t *o, const char *key, json_t *v, int *bad)
{
    if (!v || json_object_set_new(o, key, v))
        *bad = 1;
}

static void japp(json_t *a, json_t *v, int *bad)
{
    if (!v || json_array_append_new(a, v))
        *bad = 1;
}

/* ---- geometry ------------------------------------------------------------ */

static double km(double lat1, double lon1, double lat2, double lon2)
{
    return tw_haversine_km(lat1, lon1, lat2, lon2);
}

/* The nearest hub of kind `kind` (0: any) to (lat, lon), optionally only
 * those within their radius; ties go to the lower index. -1 if none. */
static int nearest_hub(const tw_ar_hub *hubs, size_t nhubs, int kind, double lat, double lon,
                       int within_radius, double *dist)
{
    int best = -1;
    double bd = 0;
    for (size_t i = 0; i < nhubs; i++) {
        if (kind && (int)hubs[i].kind != kind)
            continue;
        double d = km(lat, lon, hubs[i].lat, hubs[i].lon);
        if (!(d == d))
            continue;
        if (within_radius && !(d <= hubs[i].radius_km))
            continue;
        if (best < 0 || d < bd) {
            best = (int)i;
            bd = d;
        }
    }
    if (best >= 0 && dist)
        *dist = bd;
    return best;
}

/* A known place of a subject: the origin of a shipment, its destination,
 * the place of a sale or the buyer's place. */
typedef struct pt {
    const tw_ar_hop *h;
    size_t hop; /* index into the sorted hops */
    double lat, lon;
    const char *name; /* "" none */
    int buyer;        /* the buyer's place of a sale */
    const tw_ar_party *holder; /* who held it there: shipper at the origin, seller at the
                                * sale place, consignee or buyer at the destination */
} pt;

/* Where a sale or a shipment ends: the buyer's place of a sale, else its
 * place. 0 if none. */
static int hop_dest(const tw_ar_hop *h, double *lat, double *lon, const char **name, int *buyer)
{
    *lat = *lon = NAN;
    *name = "";
    *buyer = 0;
    if (h->kind == TW_AR_HOP_SALE && h->to && h->to->has_place) {
        *lat = h->to->lat;
        *lon = h->to->lon;
        int same = h->has_place && h->lat == h->to->lat && h->lon == h->to->lon;
        *name = same ? nz(h->place_name) : "";
        *buyer = !same;
        return 1;
    }
    if (!h->has_place)
        return 0;
    *lat = h->lat;
    *lon = h->lon;
    *name = nz(h->place_name);
    *buyer = 0;
    return 1;
}

static int is_flow(const tw_ar_hop *h)
{
    return (h->kind == TW_AR_HOP_SALE || h->kind == TW_AR_HOP_SHIPMENT) &&
           !(h->to && h->to->kind == TW_AR_PARTY_AGENCY);
}

/* The known places of the sorted hops (seizures excluded), in order.
 * *out is malloc'ed (NULL when none); returns the count or -1. */
static ptrdiff_t points_of(const tw_ar_hop *const *s, size_t n, pt **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if (n > SIZE_MAX / (2 * sizeof(pt)))
        return -1;
    pt *p = malloc(2 * n * sizeof *p);
    if (!p)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const tw_ar_hop *h = s[i];
        if (h->kind == TW_AR_HOP_SHIPMENT) {
            if (h->has_origin)
                p[k++] = (pt){h, i, h->origin_lat, h->origin_lon, nz(h->origin_name), 0, h->from};
            if (h->has_place)
                p[k++] = (pt){h, i, h->lat, h->lon, nz(h->place_name), 0, h->to};
        } else if (h->kind == TW_AR_HOP_SALE) {
            int buyer = h->to && h->to->has_place;
            int same = buyer && h->has_place && h->to->lat == h->lat && h->to->lon == h->lon;
            if (h->has_place && !same)
                p[k++] = (pt){h, i, h->lat, h->lon, nz(h->place_name), 0, h->from};
            if (buyer)
                p[k++] = (pt){h, i, h->to->lat, h->to->lon, same ? nz(h->place_name) : "", !same,
                              h->to};
        }
    }
    *out = p;
    return (ptrdiff_t)k;
}

static int established(const tw_ar_config *cfg, const tw_ar_party *p);

/* The transit hub p lies in (within its radius), or -1. A place where an
 * established trader held the equipment (an importer's or a shop's
 * premises in the Ruhr) is trade, not storage on the route: -1. */
static int transit_at(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs, const pt *p)
{
    if (established(cfg, p->holder))
        return -1;
    return nearest_hub(hubs, nhubs, TW_AR_HUB_TRANSIT, p->lat, p->lon, 1, NULL);
}

/* ---- ordering --------------------------------------------------------------- */

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* a - b, saturated. */
static int64_t sub_sat(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int cmp_dbl(double a, double b)
{
    int na = a != a, nb = b != b;
    if (na || nb)
        return na - nb;
    return (a > b) - (a < b);
}

static int cmp_s(const char *a, const char *b)
{
    return strcmp(nz(a), nz(b));
}

static int cmp_party(const tw_ar_party *a, const tw_ar_party *b)
{
    int c;
    if (!a || !b)
        return (a != NULL) - (b != NULL);
    if ((c = cmp_i64(a->party_id, b->party_id)) || (c = cmp_i64(a->kind, b->kind)) ||
        (c = cmp_s(a->name, b->name)) || (c = cmp_s(a->name_key, b->name_key)) ||
        (c = cmp_s(a->address_key, b->address_key)) || (c = cmp_i64(a->has_place, b->has_place)) ||
        (c = cmp_dbl(a->lat, b->lat)) || (c = cmp_dbl(a->lon, b->lon)) ||
        (c = cmp_i64(a->trade_records, b->trade_records)) ||
        (c = cmp_i64(a->first_seen, b->first_seen)) ||
        (c = cmp_i64(a->seizure_linked, b->seizure_linked)))
        return c;
    return 0;
}

/* (at, event_id, line), unknown times last; then everything else, so that
 * any permutation of the same hops sorts the same. */
static int cmp_hop(const void *x, const void *y)
{
    const tw_ar_hop *a = *(const tw_ar_hop *const *)x, *b = *(const tw_ar_hop *const *)y;
    int ua = a->at == TW_AR_NO_TIME, ub = b->at == TW_AR_NO_TIME, c;
    if (ua != ub)
        return ua - ub;
    if ((c = cmp_i64(a->at, b->at)) || (c = cmp_i64(a->event_id, b->event_id)) ||
        (c = cmp_i64(a->line, b->line)) || (c = cmp_i64(a->kind, b->kind)) ||
        (c = cmp_i64(a->item_id, b->item_id)) || (c = cmp_i64(a->item_kind, b->item_kind)) ||
        (c = cmp_i64(a->quantity, b->quantity)) || (c = cmp_i64(a->payment, b->payment)) ||
        (c = cmp_i64(a->launch, b->launch)) || (c = cmp_i64(a->has_place, b->has_place)) ||
        (c = cmp_dbl(a->lat, b->lat)) || (c = cmp_dbl(a->lon, b->lon)) ||
        (c = cmp_i64(a->has_origin, b->has_origin)) ||
        (c = cmp_dbl(a->origin_lat, b->origin_lat)) ||
        (c = cmp_dbl(a->origin_lon, b->origin_lon)) ||
        (c = cmp_s(a->item_label, b->item_label)) || (c = cmp_s(a->place_name, b->place_name)) ||
        (c = cmp_s(a->origin_name, b->origin_name)) ||
        (c = cmp_s(a->consignment, b->consignment)) || (c = cmp_s(a->vehicle, b->vehicle)) ||
        (c = cmp_s(a->source, b->source)) || (c = cmp_s(a->source_ref, b->source_ref)) ||
        (c = cmp_i64(a->grading_source, b->grading_source)) ||
        (c = cmp_i64(a->grading_info, b->grading_info)) || (c = cmp_party(a->from, b->from)) ||
        (c = cmp_party(a->to, b->to)))
        return c;
    return 0;
}

/* Pointers to hops[0..n) in rule order; NULL on allocation failure (or n 0). */
static const tw_ar_hop **sorted_hops(const tw_ar_hop *hops, size_t n)
{
    if (n == 0 || n > SIZE_MAX / sizeof(tw_ar_hop *))
        return NULL;
    const tw_ar_hop **s = malloc(n * sizeof *s);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        s[i] = &hops[i];
    qsort(s, n, sizeof *s, cmp_hop);
    return s;
}

/* ---- factors ------------------------------------------------------------- */

typedef struct factor {
    const char *name; /* snake_case; the explanation says it with spaces */
    int points;
    char detail[160];
} factor;

typedef struct factors {
    factor v[MAX_FACTORS];
    size_t n;
} factors;

__attribute__((format(printf, 4, 5))) static void add_factor(factors *f, const char *name,
                                                             int points, const char *fmt, ...)
{
    if (f->n >= MAX_FACTORS)
        return;
    factor *x = &f->v[f->n++];
    x->name = name;
    x->points = points;
    x->detail[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->detail, sizeof x->detail, fmt, ap);
        va_end(ap);
    }
}

static int factor_sum(const factors *f)
{
    int s = 0;
    for (size_t i = 0; i < f->n; i++)
        s += f->v[i].points;
    return s;
}

static int established(const tw_ar_config *cfg, const tw_ar_party *p)
{
    return p && p->kind == TW_AR_PARTY_COMPANY && p->trade_records >= cfg->trader_min_records;
}

/* A party whose seizure link counts: not an agency, not an established
 * trader (a dealer that once sold an item later seized is no lead). */
static int linked(const tw_ar_config *cfg, const tw_ar_party *p)
{
    return p && p->seizure_linked && p->kind != TW_AR_PARTY_AGENCY && !established(cfg, p);
}

static int quantity_of(const tw_ar_hop *h)
{
    return h->quantity < 1 ? 1 : h->quantity > MAX_LINE_QUANTITY ? MAX_LINE_QUANTITY : h->quantity;
}

static int poorly_graded(const tw_ar_hop *h)
{
    return h->grading_source == 3 || h->grading_info == 5;
}

/* A party's name for people: its name, else what it is. */
static void sb_party(sbuf *b, const tw_ar_party *p)
{
    if (!p) {
        sb_printf(b, "an unnamed party");
        return;
    }
    if (p->name && p->name[0]) {
        sb_text(b, p->name);
        return;
    }
    sb_printf(b, "%s", p->kind == TW_AR_PARTY_PERSON    ? "a private person"
                       : p->kind == TW_AR_PARTY_COMPANY ? "a company"
                       : p->kind == TW_AR_PARTY_AGENCY  ? "an agency"
                                                        : "an unnamed party");
}

static void sb_place(sbuf *b, const char *name, double lat, double lon, int buyer)
{
    if (name && name[0])
        sb_text(b, name);
    else if (isfinite(lat) && isfinite(lon))
        sb_printf(b, "%s(%.4f, %.4f)", buyer ? "the buyer's place " : "", lat, lon);
    else
        sb_printf(b, "an unknown place");
}

/* What a flow looks like, for the common factors of rules 1-4 and 6. */
typedef struct flow {
    const tw_ar_hop *trig;         /* the hop whose parties count */
    const tw_ar_hop *const *group; /* the hops of the event: units, boats with engines, cash */
    size_t ngroup;
    double prev_km; /* from the place before the destination; NAN none */
    const char *prev_name;
    const tw_ar_hub *transit; /* a transit hub passed before; NULL none */
    int no_transit_factor;    /* rule 3: the transit is the rule itself */
    int no_party_link;        /* rule 4 on a party link: the link is the rule */
    int no_local;             /* rule 4: a local sale of linked equipment is no excuse */
} flow;

static void score_flow(const tw_ar_config *cfg, const flow *f, factors *fs)
{
    const tw_ar_hop *t = f->trig;
    const tw_ar_party *r = t->to, *s = t->from;
    long units = 0;
    int engines = 0, boats = 0, cash = 0;
    for (size_t i = 0; i < f->ngroup; i++) {
        const tw_ar_hop *h = f->group[i];
        if (h->item_kind == TW_AR_ITEM_ENGINE || h->item_kind == TW_AR_ITEM_BOAT)
            units += quantity_of(h);
        engines |= h->item_kind == TW_AR_ITEM_ENGINE;
        boats |= h->item_kind == TW_AR_ITEM_BOAT;
        cash |= h->payment == TW_AR_PAY_CASH;
    }
    int any_link = !f->no_party_link && (linked(cfg, r) || linked(cfg, s));
    /* Trade between companies, not in cash, no seizure link: stock moving
     * between businesses. From an established trader it is ordinary
     * supply (its quantities and route are those of stock); otherwise the
     * quantities still do not count, the route does. */
    int b2b = s && s->kind == TW_AR_PARTY_COMPANY && r && r->kind == TW_AR_PARTY_COMPANY &&
              !cash && !linked(cfg, r) && !linked(cfg, s);
    int ordinary = b2b && established(cfg, s);

    if (r && r->kind == TW_AR_PARTY_PERSON) {
        add_factor(fs, "private_receiver", 2, NULL);
    } else if (r && r->kind == TW_AR_PARTY_COMPANY) {
        if (established(cfg, r))
            add_factor(fs, "established_trader", -5, "%d earlier trade records", r->trade_records);
        else if (r->trade_records <= 0)
            add_factor(fs, "new_company", 2, "no earlier trade records");
        else
            add_factor(fs, "little_trading_history", 1, "%d earlier trade records",
                       r->trade_records);
    }
    if (s && s->kind == TW_AR_PARTY_PERSON)
        add_factor(fs, "private_sender", 1, NULL);
    if (ordinary)
        add_factor(fs, "supply_from_established_trader", -3,
                   "quantities and route are those of ordinary stock supply");
    else if (b2b)
        add_factor(fs, "trade_between_companies", -2, "not in cash");
    /* A retail sale: a company selling a private (or unknown) buyer one
     * engine, one boat, or one boat with its engine. That is how leisure
     * boating is sold; the buyer's home may lie anywhere, so neither the
     * outfit nor the distance counts. Within local_km of the sale (or over
     * the counter) it is a local sale. Not for rule 4 (linked equipment). */
    int retail = 0;
    if (!f->no_local && t->kind == TW_AR_HOP_SALE && s && s->kind == TW_AR_PARTY_COMPANY && r &&
        r->kind != TW_AR_PARTY_COMPANY && r->kind != TW_AR_PARTY_AGENCY && units >= 1 &&
        units <= 2 && !any_link) {
        long ne = 0, nb = 0;
        for (size_t i = 0; i < f->ngroup; i++) {
            const tw_ar_hop *h = f->group[i];
            if (h->item_kind == TW_AR_ITEM_ENGINE)
                ne += quantity_of(h);
            else if (h->item_kind == TW_AR_ITEM_BOAT)
                nb += quantity_of(h);
        }
        retail = ne <= 1 && nb <= 1;
    }
    if (retail) {
        int local = 0;
        double d = NAN;
        if (!r->has_place) {
            local = t->has_place; /* sold over the counter */
        } else if (t->has_place) {
            d = km(t->lat, t->lon, r->lat, r->lon);
        } else if (s->has_place) {
            d = km(s->lat, s->lon, r->lat, r->lon);
        }
        if (d == d && d <= cfg->local_km)
            local = 1;
        if (local && d == d)
            add_factor(fs, "local_single_sale", -3, "buyer %.1f km from the sale", d);
        else if (local)
            add_factor(fs, "local_single_sale", -3, "sold over the counter");
        else if (d == d)
            add_factor(fs, "retail_sale", -2, "one outfit sold to a private buyer %.1f km away", d);
        else
            add_factor(fs, "retail_sale", -2, "one outfit sold to a private buyer");
    }
    if (!b2b && !retail) {
        if (units >= 5)
            add_factor(fs, "five_or_more_units", 3, "%ld engines or boats", units);
        else if (units >= 2)
            add_factor(fs, "several_units", 1, "%ld engines or boats", units);
        if (engines && boats)
            add_factor(fs, "boats_with_engines", 2, NULL);
    }
    if (cash)
        add_factor(fs, "cash", 1, NULL);
    /* Distance counts on the way of the goods, not on trade: a distributor
     * delivers a business anywhere in its country and a leisure buyer
     * drives home; between companies it counts after storage at a transit
     * point (f->transit set), the smugglers' route. */
    if (!ordinary && !retail && (!b2b || f->transit) && cfg->long_haul_km > 0 &&
        f->prev_km == f->prev_km &&
        f->prev_km > cfg->long_haul_km) {
        if (f->prev_name && f->prev_name[0]) {
            sbuf b = {0};
            sb_text(&b, f->prev_name);
            add_factor(fs, "long_haul", 2, "%.1f km from %s", f->prev_km, b.p ? b.p : "");
            sb_free(&b);
        } else {
            add_factor(fs, "long_haul", 2, "%.1f km from the place before", f->prev_km);
        }
    }
    if (!ordinary && f->transit && !f->no_transit_factor) {
        sbuf b = {0};
        sb_text(&b, f->transit->name);
        add_factor(fs, "passed_transit_hub", 2, "%s", b.p ? b.p : "");
        sb_free(&b);
    }
    if (any_link)
        add_factor(fs, "party_seizure_linked", 4, "a party is on an earlier record of seized equipment");
    if (poorly_graded(t))
        add_factor(fs, "poorly_graded_source", -2, "source graded %d%c",
                   t->grading_source, t->grading_info >= 1 && t->grading_info <= 5
                                           ? 'A' + t->grading_info - 1
                                           : '?');
}

/* ---- evidence ------------------------------------------------------------- */

static json_t *party_json(const tw_ar_party *p)
{
    if (!p)
        return json_null();
    json_t *o = json_object();
    int bad = !o;
    if (o) {
        jset(o, "party_id", json_integer(p->party_id), &bad);
        jset(o, "kind", json_string(party_kind_name(p->kind)), &bad);
        jset(o, "name", jstr(p->name), &bad);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *hub_json(const tw_ar_hub *h, double dist)
{
    if (!h)
        return json_null();
    json_t *o = json_object();
    int bad = !o;
    if (o) {
        jset(o, "name", jstr(h->name), &bad);
        jset(o, "kind", json_string(hub_kind_name(h->kind)), &bad);
        jset(o, "lat", jnum(h->lat, 1e5), &bad);
        jset(o, "lon", jnum(h->lon, 1e5), &bad);
        jset(o, "radius_km", jnum(h->radius_km, 10), &bad);
        jset(o, "km", jnum(dist, 10), &bad);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *hop_json(const tw_ar_hop *h, const tw_ar_hub *hub)
{
    json_t *o = json_object();
    int bad = !o;
    if (!o)
        return NULL;
    char g[8] = "";
    size_t k = 0;
    if (h->grading_source >= 1 && h->grading_source <= 3)
        g[k++] = (char)('0' + h->grading_source);
    if (h->grading_info >= 1 && h->grading_info <= 5)
        g[k++] = (char)('A' + h->grading_info - 1);
    g[k] = '\0';
    double dl, dn;
    const char *dname;
    int buyer;
    int has_dest = hop_dest(h, &dl, &dn, &dname, &buyer);
    jset(o, "event_id", json_integer(h->event_id), &bad);
    jset(o, "line", json_integer(h->line), &bad);
    jset(o, "kind", json_string(hop_kind_name(h->kind)), &bad);
    jset(o, "item_id", json_integer(h->item_id), &bad);
    jset(o, "item_kind", json_string(item_kind_name(h->item_kind)), &bad);
    jset(o, "item_label", jstr(h->item_label), &bad);
    jset(o, "quantity", json_integer(quantity_of(h)), &bad);
    jset(o, "payment", json_string(payment_name(h->payment)), &bad);
    jset(o, "at", jtime(h->at), &bad);
    if (h->kind == TW_AR_HOP_SEIZURE)
        jset(o, "launch", json_boolean(h->launch), &bad);
    if (h->has_origin) {
        jset(o, "origin", jstr(h->origin_name), &bad);
        jset(o, "origin_lat", jnum(h->origin_lat, 1e5), &bad);
        jset(o, "origin_lon", jnum(h->origin_lon, 1e5), &bad);
    }
    jset(o, "place", jstr(h->has_place ? h->place_name : ""), &bad);
    jset(o, "lat", h->has_place ? jnum(h->lat, 1e5) : json_null(), &bad);
    jset(o, "lon", h->has_place ? jnum(h->lon, 1e5) : json_null(), &bad);
    if (buyer && has_dest) {
        jset(o, "buyer_lat", jnum(dl, 1e5), &bad);
        jset(o, "buyer_lon", jnum(dn, 1e5), &bad);
    }
    jset(o, "km_to_hub",
         hub && has_dest ? jnum(km(dl, dn, hub->lat, hub->lon), 10) : json_null(), &bad);
    jset(o, "from", party_json(h->from), &bad);
    jset(o, "to", party_json(h->to), &bad);
    jset(o, "consignment", jstr(h->consignment), &bad);
    jset(o, "vehicle", jstr(h->vehicle), &bad);
    jset(o, "source", jstr(h->source), &bad);
    jset(o, "source_ref", jstr(h->source_ref), &bad);
    jset(o, "grading", json_string(g), &bad);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* What one alert is made of, before it is appended. */
typedef struct draft {
    const char *rule;
    tw_ar_subject_kind kind;
    const char *subject;
    const tw_ar_hub *hub; /* NULL none */
    double hub_km;
    const tw_ar_hop *const *hops; /* sorted; capped here */
    size_t nhops;
    factors fs;
    sbuf title, what; /* what: the explanation's first sentences */
    json_t *extra;    /* more evidence keys (stolen), NULL none */
    int64_t source_event;
} draft;

static void draft_free(draft *d)
{
    sb_free(&d->title);
    sb_free(&d->what);
    json_decref(d->extra);
    d->extra = NULL;
}

static int push_alert(tw_ar_alerts *out, const tw_ar_alert *a)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        tw_ar_alert *v = realloc(out->v, cap * sizeof *v);
        if (!v)
            return -1;
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = *a;
    return 0;
}

static void alert_free(tw_ar_alert *a)
{
    free(a->subject);
    free(a->hub);
    free(a->title);
    free(a->explanation);
    free(a->evidence_json);
}

/* Score d and append it as an alert when it reaches min_score. Frees what
 * d holds. Returns 0 or -1 (allocation). */
static int emit(const tw_ar_config *cfg, draft *d, tw_ar_alerts *out)
{
    int rc = -1;
    int score = factor_sum(&d->fs);
    if ((double)score < cfg->min_score) {
        draft_free(d);
        return 0;
    }
    int sev = (double)score >= cfg->critical_score ? 4
              : (double)score >= cfg->high_score   ? 3
              : (double)score >= cfg->medium_score ? 2
                                                   : 1;
    tw_ar_alert a = {.rule = d->rule, .subject_kind = d->kind, .severity = sev,
                     .score = (double)score, .known_at = TW_AR_NO_TIME,
                     .source_event = d->source_event};
    json_t *ev = json_object(), *hops = json_array(), *fa = json_array();
    int bad = !ev || !hops || !fa;
    sbuf ex = {0};
    /* Hops: all of them up to the cap, else the first and the latest. */
    size_t skip_from = d->nhops, skip_n = 0;
    if (d->nhops > MAX_EVIDENCE_HOPS) {
        skip_from = 1;
        skip_n = d->nhops - MAX_EVIDENCE_HOPS;
    }
    for (size_t i = 0; !bad && i < d->nhops; i++) {
        if (i >= skip_from && i < skip_from + skip_n)
            continue;
        const tw_ar_hop *h = d->hops[i];
        if (h->at != TW_AR_NO_TIME && (a.known_at == TW_AR_NO_TIME || h->at > a.known_at))
            a.known_at = h->at;
        japp(hops, hop_json(h, d->hub), &bad);
    }
    for (size_t i = 0; !bad && i < d->fs.n; i++) {
        json_t *f = json_object();
        if (!f) {
            bad = 1;
            break;
        }
        jset(f, "name", json_string(d->fs.v[i].name), &bad);
        jset(f, "points", json_integer(d->fs.v[i].points), &bad);
        jset(f, "detail", jstr(d->fs.v[i].detail), &bad);
        japp(fa, f, &bad);
    }
    if (bad)
        goto fail;
    if (a.known_at == TW_AR_NO_TIME) { /* no event time to know it from */
        rc = 0;
        goto fail;
    }
    jset(ev, "rule", json_string(d->rule), &bad);
    jset(ev, "subject_kind", json_string(tw_ar_subject_kind_name(d->kind)), &bad);
    jset(ev, "subject", jstr(d->subject), &bad);
    jset(ev, "hub", hub_json(d->hub, d->hub_km), &bad);
    jset(ev, "hops", hops, &bad);
    hops = NULL;
    if (skip_n)
        jset(ev, "hops_omitted", json_integer((json_int_t)skip_n), &bad);
    jset(ev, "factors", fa, &bad);
    fa = NULL;
    jset(ev, "score", json_integer(score), &bad);
    jset(ev, "severity", json_string(tw_ar_severity_name(sev)), &bad);
    jset(ev, "config_version", json_integer(cfg->version), &bad);
    if (d->extra) {
        const char *k;
        json_t *v;
        json_object_foreach(d->extra, k, v) jset(ev, k, json_incref(v), &bad);
    }
    if (bad)
        goto fail;

    /* Explanation: what happened, then what counted. */
    sb_mem(&ex, d->what.p ? d->what.p : "", d->what.n);
    sb_printf(&ex, " Counted: ");
    for (size_t i = 0; i < d->fs.n; i++) {
        const factor *f = &d->fs.v[i];
        if (i)
            sb_printf(&ex, ", ");
        for (const char *p = f->name; *p; p++)
            sb_mem(&ex, *p == '_' ? " " : p, 1);
        if (f->detail[0]) {
            sb_printf(&ex, ": ");
            sb_text(&ex, f->detail);
        }
        sb_printf(&ex, " (%+d)", f->points);
    }
    sb_printf(&ex, ". Score %d: %s.", score, tw_ar_severity_name(sev));

    a.subject = strdup(nz(d->subject));
    a.hub = strdup(d->hub ? nz(d->hub->name) : "");
    a.title = sb_take(&d->title);
    a.explanation = sb_take(&ex);
    a.evidence_json = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(12));
    if (!a.subject || !a.hub || !a.title || !a.explanation || !a.evidence_json)
        goto fail;
    if (push_alert(out, &a))
        goto fail;
    a = (tw_ar_alert){0};
    rc = 0;
fail:
    alert_free(&a);
    sb_free(&ex);
    json_decref(hops);
    json_decref(fa);
    json_decref(ev);
    draft_free(d);
    return rc;
}

/* How the subject is named in titles and explanations. */
static void sb_subject(sbuf *b, tw_ar_subject_kind kind, const char *subject,
                       const tw_ar_hop *const *hops, size_t n)
{
    if (kind == TW_AR_SUBJECT_ITEM) {
        for (size_t i = n; i-- > 0;)
            if (hops[i]->item_label && hops[i]->item_label[0]) {
                sb_text(b, hops[i]->item_label);
                sb_printf(b, " (item ");
                sb_text(b, subject);
                sb_printf(b, ")");
                return;
            }
        sb_printf(b, "item ");
        sb_text(b, subject);
    } else if (kind == TW_AR_SUBJECT_CLUSTER) {
        sb_printf(b, "party cluster ");
        sb_text(b, subject);
    } else {
        sb_printf(b, "consignment ");
        sb_text(b, subject);
    }
}

/* "sold to X" / "shipped by X to Y". */
static void sb_flow(sbuf *b, const tw_ar_hop *h)
{
    if (h->kind == TW_AR_HOP_SALE) {
        sb_printf(b, "sold by ");
        sb_party(b, h->from);
        sb_printf(b, " to ");
        sb_party(b, h->to);
    } else if (h->kind == TW_AR_HOP_SHIPMENT) {
        sb_printf(b, "shipped by ");
        sb_party(b, h->from);
        sb_printf(b, " to ");
        sb_party(b, h->to);
    } else {
        sb_printf(b, "seized by ");
        sb_party(b, h->to);
    }
}

/* ---- real-time rules -------------------------------------------------- */

typedef struct rt {
    const tw_ar_config *cfg;
    const tw_ar_hub *hubs;
    size_t nhubs;
    tw_ar_subject_kind kind;
    const char *subject;
    int64_t event_id;
    const tw_ar_hop **s; /* sorted history */
    size_t n;
    pt *p; /* its places */
    size_t np;
    const tw_ar_hop **tmp; /* scratch, n entries */
    tw_ar_alerts *out;
} rt;

/* Index of the point where hop index `hop` ends (its last point), or -1. */
static ptrdiff_t last_point_of(const rt *c, size_t hop)
{
    for (size_t i = c->np; i-- > 0;)
        if (c->p[i].hop == hop)
            return (ptrdiff_t)i;
    return -1;
}

/* The transit hub of the latest point before point `before` within a
 * transit hub's radius, or NULL. */
static const tw_ar_hub *transit_before(const rt *c, size_t before)
{
    for (size_t i = before; i-- > 0;) {
        int t = transit_at(c->cfg, c->hubs, c->nhubs, &c->p[i]);
        if (t >= 0)
            return &c->hubs[t];
    }
    return NULL;
}

static void prev_of(const rt *c, ptrdiff_t dest, flow *f)
{
    f->prev_km = NAN;
    f->prev_name = "";
    if (dest > 0) {
        const pt *a = &c->p[dest - 1], *b = &c->p[dest];
        f->prev_km = km(a->lat, a->lon, b->lat, b->lon);
        f->prev_name = a->name;
    }
}

static int rule_destination(rt *c)
{
    const tw_ar_config *cfg = c->cfg;
    /* Each new flow hop's destination hub (coast or inland, within radius). */
    int *hub_of = malloc(c->n * sizeof *hub_of);
    const tw_ar_hop **grp = malloc(c->n * sizeof *grp);
    int rc = -1;
    if (!hub_of || !grp)
        goto done;
    for (size_t i = 0; i < c->n; i++) {
        const tw_ar_hop *h = c->s[i];
        hub_of[i] = -1;
        double lat, lon;
        const char *name;
        int buyer;
        if (h->event_id != c->event_id || !is_flow(h) || !hop_dest(h, &lat, &lon, &name, &buyer))
            continue;
        double dc = 0, di = 0;
        int hc = nearest_hub(c->hubs, c->nhubs, TW_AR_HUB_COAST, lat, lon, 1, &dc);
        int hi = nearest_hub(c->hubs, c->nhubs, TW_AR_HUB_INLAND, lat, lon, 1, &di);
        hub_of[i] = hc >= 0 && (hi < 0 || dc < di || (dc == di && hc < hi)) ? hc : hi;
    }
    for (size_t i = 0; i < c->n; i++) {
        if (hub_of[i] < 0)
            continue;
        int hub = hub_of[i];
        size_t ng = 0;
        for (size_t j = i; j < c->n; j++)
            if (hub_of[j] == hub) {
                grp[ng++] = c->s[j];
                if (j > i)
                    hub_of[j] = -1;
            }
        hub_of[i] = -1;
        const tw_ar_hop *t = grp[ng - 1];
        size_t tidx = 0;
        while (c->s[tidx] != t)
            tidx++;
        const tw_ar_hub *H = &c->hubs[hub];
        double lat, lon;
        const char *name;
        int buyer;
        (void)hop_dest(t, &lat, &lon, &name, &buyer);
        double d = km(lat, lon, H->lat, H->lon);
        ptrdiff_t dp = last_point_of(c, tidx);
        flow f = {.trig = t, .group = grp, .ngroup = ng};
        prev_of(c, dp, &f);
        f.transit = dp >= 0 ? transit_before(c, (size_t)dp) : NULL;
        draft dr = {.rule = "destination_hub", .kind = c->kind, .subject = c->subject,
                    .hub = H, .hub_km = d, .hops = grp, .nhops = ng, .source_event = c->event_id};
        add_factor(&dr.fs, H->kind == TW_AR_HUB_COAST ? "destination_at_coast_hub"
                                                      : "destination_at_inland_hub",
                   1, "%.1f km from the hub", d);
        score_flow(cfg, &f, &dr.fs);
        sb_subject(&dr.title, c->kind, c->subject, grp, ng);
        sb_printf(&dr.title, " went to ");
        sb_place(&dr.title, name, lat, lon, buyer);
        sb_printf(&dr.title, ", %.1f km from the %s hub ", d, hub_kind_name(H->kind));
        sb_text(&dr.title, H->name);
        sb_subject(&dr.what, c->kind, c->subject, grp, ng);
        sb_printf(&dr.what, " was ");
        sb_flow(&dr.what, t);
        if (ng > 1)
            sb_printf(&dr.what, " (%zu lines)", ng);
        sb_printf(&dr.what, " on ");
        sb_date(&dr.what, t->at);
        sb_printf(&dr.what, ", ending at ");
        sb_place(&dr.what, name, lat, lon, buyer);
        sb_printf(&dr.what, ", %.1f km from the %s hub ", d, hub_kind_name(H->kind));
        sb_text(&dr.what, H->name);
        sb_printf(&dr.what, " (radius %.1f km).", H->radius_km);
        if (emit(cfg, &dr, c->out))
            goto done;
    }
    rc = 0;
done:
    free(hub_of);
    free(grp);
    return rc;
}

/* The hops [from, to] of the sorted history into c->tmp; 1 if one of them
 * is new. */
static int range_hops(rt *c, size_t from, size_t to, size_t *n)
{
    int has_new = 0;
    size_t k = 0;
    for (size_t i = from; i <= to; i++) {
        c->tmp[k++] = c->s[i];
        has_new |= c->s[i]->event_id == c->event_id;
    }
    *n = k;
    return has_new;
}

/* The new flow hops among c->tmp[0..n) moved to grp; returns their count. */
static size_t new_in(const rt *c, const tw_ar_hop **src, size_t n, const tw_ar_hop **grp)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (src[i]->event_id == c->event_id && is_flow(src[i]))
            grp[k++] = src[i];
    return k;
}

static int rule_approach(rt *c)
{
    const tw_ar_config *cfg = c->cfg;
    if (c->np < 2)
        return 0;
    const pt *L = &c->p[c->np - 1];
    if (!is_flow(L->h) || c->s[c->n - 1]->kind == TW_AR_HOP_SEIZURE)
        return 0;
    double dend = 0;
    int hub = nearest_hub(c->hubs, c->nhubs, TW_AR_HUB_COAST, L->lat, L->lon, 0, &dend);
    if (hub < 0 || !(dend <= cfg->approach_end_km))
        return 0;
    const tw_ar_hub *H = &c->hubs[hub];
    size_t start = 0;
    double dstart = -1;
    for (size_t i = 0; i + 1 < c->np; i++) {
        double d = km(c->p[i].lat, c->p[i].lon, H->lat, H->lon);
        if (d > dstart) {
            dstart = d;
            start = i;
        }
    }
    double progress = dstart - dend;
    if (!(progress >= cfg->approach_min_km))
        return 0;
    size_t nh;
    if (!range_hops(c, c->p[start].hop, L->hop, &nh))
        return 0;
    const tw_ar_hop **grp = malloc(nh * sizeof *grp);
    if (!grp)
        return -1;
    size_t ng = new_in(c, c->tmp, nh, grp);
    flow f = {.trig = L->h, .group = grp, .ngroup = ng};
    prev_of(c, (ptrdiff_t)(c->np - 1), &f);
    f.transit = transit_before(c, c->np - 1);
    draft dr = {.rule = "approach_coast", .kind = c->kind, .subject = c->subject, .hub = H,
                .hub_km = dend, .hops = c->tmp, .nhops = nh, .source_event = c->event_id};
    add_factor(&dr.fs, "approach_coast", 1, "%.1f km nearer the coast", progress);
    score_flow(cfg, &f, &dr.fs);
    dr.extra = json_object();
    int bad = !dr.extra;
    if (dr.extra) {
        jset(dr.extra, "from_place", jstr(c->p[start].name), &bad);
        jset(dr.extra, "from_km", jnum(dstart, 10), &bad);
        jset(dr.extra, "progress_km", jnum(progress, 10), &bad);
    }
    sb_subject(&dr.title, c->kind, c->subject, c->tmp, nh);
    sb_printf(&dr.title, " approaches the coast: %.1f km from ", dend);
    sb_text(&dr.title, H->name);
    sb_subject(&dr.what, c->kind, c->subject, c->tmp, nh);
    sb_printf(&dr.what, " moved from ");
    sb_place(&dr.what, c->p[start].name, c->p[start].lat, c->p[start].lon, c->p[start].buyer);
    sb_printf(&dr.what, " (%.1f km from the coast hub ", dstart);
    sb_text(&dr.what, H->name);
    sb_printf(&dr.what, ") to ");
    sb_place(&dr.what, L->name, L->lat, L->lon, L->buyer);
    sb_printf(&dr.what, " (%.1f km), %.1f km nearer; last ", dend, progress);
    sb_flow(&dr.what, L->h);
    sb_printf(&dr.what, " on ");
    sb_date(&dr.what, L->h->at);
    sb_printf(&dr.what, ".");
    int rc = bad ? -1 : 0;
    if (bad)
        draft_free(&dr);
    else
        rc = emit(cfg, &dr, c->out);
    free(grp);
    return rc;
}

static int rule_via_transit(rt *c)
{
    const tw_ar_config *cfg = c->cfg;
    if (c->np < 2)
        return 0;
    const pt *L = &c->p[c->np - 1];
    if (!is_flow(L->h) || c->s[c->n - 1]->kind == TW_AR_HOP_SEIZURE)
        return 0;
    double dl = 0;
    int coast = nearest_hub(c->hubs, c->nhubs, TW_AR_HUB_COAST, L->lat, L->lon, 0, &dl);
    if (coast < 0)
        return 0;
    /* The latest transit point from which the subject then moved coastward. */
    ptrdiff_t T = -1;
    int thub = -1;
    double dt = 0;
    for (size_t i = c->np - 1; i-- > 0;) {
        const pt *p = &c->p[i];
        int th = transit_at(cfg, c->hubs, c->nhubs, p);
        if (th < 0)
            continue;
        double d = 0;
        if (nearest_hub(c->hubs, c->nhubs, TW_AR_HUB_COAST, p->lat, p->lon, 0, &d) < 0)
            continue;
        if (!(d - dl >= cfg->via_transit_min_km))
            continue;
        if (p->h->at != TW_AR_NO_TIME && L->h->at != TW_AR_NO_TIME &&
            sub_sat(L->h->at, p->h->at) > (int64_t)cfg->via_transit_max_days * DAY)
            continue;
        T = (ptrdiff_t)i;
        thub = th;
        dt = d;
        break;
    }
    if (T < 0)
        return 0;
    size_t nh;
    if (!range_hops(c, c->p[T].hop, L->hop, &nh))
        return 0;
    const tw_ar_hop **grp = malloc(nh * sizeof *grp);
    if (!grp)
        return -1;
    size_t ng = new_in(c, c->tmp, nh, grp);
    const tw_ar_hub *TH = &c->hubs[thub], *CH = &c->hubs[coast];
    double progress = dt - dl;
    flow f = {.trig = L->h, .group = grp, .ngroup = ng, .transit = TH, .no_transit_factor = 1};
    prev_of(c, (ptrdiff_t)(c->np - 1), &f);
    double tkm = km(c->p[T].lat, c->p[T].lon, TH->lat, TH->lon);
    draft dr = {.rule = "via_transit", .kind = c->kind, .subject = c->subject, .hub = TH,
                .hub_km = tkm, .hops = c->tmp, .nhops = nh, .source_event = c->event_id};
    add_factor(&dr.fs, "via_transit", 2, "then %.1f km nearer the coast", progress);
    score_flow(cfg, &f, &dr.fs);
    dr.extra = json_object();
    int bad = !dr.extra;
    if (dr.extra) {
        jset(dr.extra, "toward", hub_json(CH, dl), &bad);
        jset(dr.extra, "progress_km", jnum(progress, 10), &bad);
    }
    sb_subject(&dr.title, c->kind, c->subject, c->tmp, nh);
    sb_printf(&dr.title, " passed ");
    sb_text(&dr.title, TH->name);
    sb_printf(&dr.title, " and moved toward ");
    sb_text(&dr.title, CH->name);
    sb_subject(&dr.what, c->kind, c->subject, c->tmp, nh);
    sb_printf(&dr.what, " passed the transit point ");
    sb_text(&dr.what, TH->name);
    sb_printf(&dr.what, " (");
    sb_place(&dr.what, c->p[T].name, c->p[T].lat, c->p[T].lon, c->p[T].buyer);
    sb_printf(&dr.what, ", ");
    sb_date(&dr.what, c->p[T].h->at);
    sb_printf(&dr.what, ") and then moved %.1f km nearer the coast, to ", progress);
    sb_place(&dr.what, L->name, L->lat, L->lon, L->buyer);
    sb_printf(&dr.what, ", %.1f km from the coast hub ", dl);
    sb_text(&dr.what, CH->name);
    sb_printf(&dr.what, " (");
    sb_flow(&dr.what, L->h);
    sb_printf(&dr.what, " on ");
    sb_date(&dr.what, L->h->at);
    sb_printf(&dr.what, ").");
    int rc = bad ? -1 : 0;
    if (bad)
        draft_free(&dr);
    else
        rc = emit(cfg, &dr, c->out);
    free(grp);
    return rc;
}

static int within_lookback(const tw_ar_config *cfg, const tw_ar_hop *a, const tw_ar_hop *b)
{
    if (a->at == TW_AR_NO_TIME || b->at == TW_AR_NO_TIME)
        return 1;
    int64_t d = a->at > b->at ? sub_sat(a->at, b->at) : sub_sat(b->at, a->at);
    return d <= (int64_t)cfg->seizure_lookback_days * DAY;
}

static int rule_seizure_link(rt *c)
{
    const tw_ar_config *cfg = c->cfg;
    size_t ng = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->s[i]->event_id == c->event_id && c->s[i]->kind != TW_AR_HOP_SEIZURE &&
            (c->s[i]->kind == TW_AR_HOP_SALE || c->s[i]->kind == TW_AR_HOP_SHIPMENT))
            c->tmp[ng++] = c->s[i];
    if (ng == 0)
        return 0;
    const tw_ar_hop *seized = NULL;
    for (size_t i = c->n; i-- > 0 && !seized;) {
        const tw_ar_hop *h = c->s[i];
        if (h->kind != TW_AR_HOP_SEIZURE || h->event_id >= c->event_id)
            continue;
        for (size_t j = 0; j < ng; j++)
            if (within_lookback(cfg, c->tmp[j], h)) {
                seized = h;
                break;
            }
    }
    const tw_ar_hop *party_hop = NULL;
    const tw_ar_party *party = NULL;
    for (size_t j = 0; j < ng && !party; j++) {
        if (linked(cfg, c->tmp[j]->to))
            party_hop = c->tmp[j], party = c->tmp[j]->to;
        else if (linked(cfg, c->tmp[j]->from))
            party_hop = c->tmp[j], party = c->tmp[j]->from;
    }
    if (!seized && !party)
        return 0;
    (void)party_hop;
    const tw_ar_hop **ev = malloc((ng + 1) * sizeof *ev);
    if (!ev)
        return -1;
    size_t ne = 0;
    if (seized)
        ev[ne++] = seized;
    for (size_t j = 0; j < ng; j++)
        ev[ne++] = c->tmp[j];
    qsort(ev, ne, sizeof *ev, cmp_hop);
    const tw_ar_hop *t = c->tmp[ng - 1];
    flow f = {.trig = t, .group = c->tmp, .ngroup = ng, .no_party_link = !seized, .no_local = 1};
    ptrdiff_t dp = -1;
    for (size_t i = 0; i < c->n; i++)
        if (c->s[i] == t)
            dp = last_point_of(c, i);
    prev_of(c, dp, &f);
    f.transit = dp >= 0 ? transit_before(c, (size_t)dp) : NULL;
    draft dr = {.rule = "seizure_link", .kind = c->kind, .subject = c->subject, .hops = ev,
                .nhops = ne, .source_event = c->event_id};
    if (seized && seized->launch)
        add_factor(&dr.fs, "linked_to_launch", 5, "event %" PRId64, seized->event_id);
    else if (seized)
        add_factor(&dr.fs, "linked_to_seizure", 4, "event %" PRId64, seized->event_id);
    else {
        sbuf b = {0};
        sb_party(&b, party);
        add_factor(&dr.fs, "party_seizure_linked", 4, "%s is on an earlier record of seized equipment",
                   b.p ? b.p : "");
        sb_free(&b);
    }
    score_flow(cfg, &f, &dr.fs);
    dr.extra = json_object();
    int bad = !dr.extra;
    if (dr.extra) {
        json_t *l = json_object();
        bad |= !l;
        if (l) {
            jset(l, "kind", json_string(seized ? (seized->launch ? "launch" : "seizure") : "party"),
                 &bad);
            jset(l, "event_id", json_integer(seized ? seized->event_id : 0), &bad);
            jset(l, "party", party ? party_json(party) : json_null(), &bad);
            jset(dr.extra, "link", l, &bad);
        }
    }
    sb_subject(&dr.title, c->kind, c->subject, c->tmp, ng);
    sb_printf(&dr.title, seized ? (seized->launch ? ": new record after a launch"
                                                  : ": new record after a seizure")
                                : ": new record naming a party linked to a seizure");
    sb_printf(&dr.what, "A new record (");
    sb_flow(&dr.what, t);
    sb_printf(&dr.what, " on ");
    sb_date(&dr.what, t->at);
    sb_printf(&dr.what, ") concerns ");
    sb_subject(&dr.what, c->kind, c->subject, c->tmp, ng);
    if (seized) {
        sb_printf(&dr.what, ", which was seized%s at ", seized->launch ? " at a launch" : "");
        sb_place(&dr.what, seized->has_place ? seized->place_name : "", seized->has_place ? seized->lat : NAN,
                 seized->has_place ? seized->lon : NAN, 0);
        sb_printf(&dr.what, " on ");
        sb_date(&dr.what, seized->at);
        sb_printf(&dr.what, ".");
    } else {
        sb_printf(&dr.what, ": ");
        sb_party(&dr.what, party);
        sb_printf(&dr.what, " is on an earlier record of equipment that was seized or launched.");
    }
    int rc = bad ? -1 : 0;
    if (bad)
        draft_free(&dr);
    else
        rc = emit(cfg, &dr, c->out);
    free(ev);
    return rc;
}

int tw_ar_realtime(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs,
                   tw_ar_subject_kind kind, const char *subject, int64_t event_id,
                   const tw_ar_hop *hist, size_t n, tw_ar_alerts *out)
{
    if (n == 0 || !hist)
        return 0;
    rt c = {.cfg = cfg, .hubs = hubs, .nhubs = hubs ? nhubs : 0, .kind = kind,
            .subject = nz(subject), .event_id = event_id, .n = n, .out = out};
    int rc = -1;
    c.s = sorted_hops(hist, n);
    c.tmp = malloc(n * sizeof *c.tmp);
    ptrdiff_t np = c.s ? points_of(c.s, n, &c.p) : -1;
    if (!c.s || !c.tmp || np < 0)
        goto done;
    c.np = (size_t)np;
    int any_new = 0;
    for (size_t i = 0; i < n; i++)
        any_new |= c.s[i]->event_id == event_id &&
                   (c.s[i]->kind == TW_AR_HOP_SALE || c.s[i]->kind == TW_AR_HOP_SHIPMENT);
    if (!any_new) { /* every rule needs a new sale or shipment */
        rc = 0;
        goto done;
    }
    if (rule_destination(&c) || rule_approach(&c) || rule_via_transit(&c) ||
        rule_seizure_link(&c))
        goto done;
    rc = 0;
done:
    free(c.s);
    free(c.tmp);
    free(c.p);
    return rc;
}

void tw_ar_alerts_clear(tw_ar_alerts *a)
{
    for (size_t i = 0; i < a->n; i++)
        alert_free(&a->v[i]);
    free(a->v);
    *a = (tw_ar_alerts){0};
}

typedef struct dedup_ref {
    const tw_ar_alert *a;
    size_t i;
} dedup_ref;

static int cmp_dedup(const void *x, const void *y)
{
    const dedup_ref *p = x, *q = y;
    const tw_ar_alert *a = p->a, *b = q->a;
    int c = strcmp(a->rule, b->rule);
    if (!c)
        c = (a->subject_kind > b->subject_kind) - (a->subject_kind < b->subject_kind);
    if (!c)
        c = strcmp(a->subject, b->subject);
    if (!c)
        c = strcmp(a->hub, b->hub);
    return c ? c : (p->i > q->i) - (p->i < q->i);
}

int tw_ar_alerts_dedup(tw_ar_alerts *a, size_t from)
{
    if (from >= a->n)
        return 0;
    size_t m = a->n - from;
    dedup_ref *r = malloc(m * sizeof *r);
    unsigned char *drop = calloc(m, 1);
    if (!r || !drop) {
        free(r);
        free(drop);
        return -1;
    }
    for (size_t i = 0; i < m; i++)
        r[i] = (dedup_ref){&a->v[from + i], i};
    qsort(r, m, sizeof *r, cmp_dedup);
    for (size_t i = 1; i < m; i++) {
        const tw_ar_alert *x = r[i].a, *y = r[i - 1].a;
        if (!strcmp(x->rule, y->rule) && x->subject_kind == y->subject_kind &&
            !strcmp(x->subject, y->subject) && !strcmp(x->hub, y->hub))
            drop[r[i].i] = 1; /* a later one of the same key */
    }
    size_t k = from;
    for (size_t i = 0; i < m; i++) {
        if (drop[i])
            alert_free(&a->v[from + i]);
        else
            a->v[k++] = a->v[from + i];
    }
    a->n = k;
    free(r);
    free(drop);
    return 0;
}

/* ---- party keys ------------------------------------------------------------ */

/* The smallest "kind:value" of p's linking identifiers into buf; 0 if none. */
static int ident_key(const tw_ar_party *p, char *buf, size_t len)
{
    int found = 0;
    char tmp[512];
    for (size_t i = 0; p->idents && i < p->n_idents; i++) {
        const tw_ar_ident *id = &p->idents[i];
        if (!id->value || !id->value[0] ||
            tw_cluster_id_kind_from_name(id->kind) == TW_CLUSTER_ID_OTHER)
            continue;
        snprintf(tmp, sizeof tmp, "%s:%s", id->kind, id->value);
        if (!found || strcmp(tmp, buf) < 0) {
            snprintf(buf, len, "%s", tmp);
            found = 1;
        }
    }
    return found;
}

const char *tw_ar_party_key(const tw_ar_party *p, char *buf, size_t len)
{
    if (!buf || len == 0)
        return buf;
    buf[0] = '\0';
    if (!p)
        return buf;
    if (ident_key(p, buf, len))
        return buf;
    if ((p->name_key && p->name_key[0]) || (p->address_key && p->address_key[0])) {
        snprintf(buf, len, "name:%s|%s", nz(p->name_key), nz(p->address_key));
        return buf;
    }
    snprintf(buf, len, "party:%" PRId64, p->party_id);
    return buf;
}

/* ---- rule 5: bulk acquisition --------------------------------------------- */

static tw_cluster_party_kind cluster_kind(int k)
{
    return k == TW_AR_PARTY_COMPANY ? TW_CLUSTER_COMPANY : TW_CLUSTER_PERSON;
}

typedef struct bulk_buyer {
    const tw_ar_party *p; /* as the latest of its hops names it */
    int64_t party_id;
    int64_t min_event;
    size_t cluster;
} bulk_buyer;

typedef struct unit_ref {
    int64_t item_id;
    size_t idx;
} unit_ref;

static int cmp_unit_ref(const void *x, const void *y)
{
    const unit_ref *a = x, *b = y;
    int c = cmp_i64(a->item_id, b->item_id);
    return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

/* Rule 5 for one cluster: its members b[members[0..nm)] and its hops
 * hs[0..nh) in rule order. */
static int bulk_cluster(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs,
                        int64_t as_of, const tw_ar_hop **hs, size_t nh, const size_t *members,
                        size_t nm, const bulk_buyer *b, const tw_cluster_result *cr, size_t cl,
                        tw_ar_alerts *out)
{
    /* Each item counts once (a purchase and the shipment after it). */
    unit_ref *seen = malloc((nh ? nh : 1) * sizeof *seen);
    if (!seen)
        return -1;
    size_t nseen = 0;
    long units = 0, cash_units = 0, engines = 0, boats = 0;
    int all_poor = 1, ordinary = 1, b2b = 1, sellers = 0;
    char seller_keys[4][512];
    for (size_t i = 0; i < nh; i++) {
        const tw_ar_hop *h = hs[i];
        all_poor &= poorly_graded(h);
        int between = h->from && h->from->kind == TW_AR_PARTY_COMPANY && h->to &&
                      h->to->kind == TW_AR_PARTY_COMPANY && h->payment != TW_AR_PAY_CASH;
        b2b &= between;
        ordinary &= between && established(cfg, h->from);
        if (h->from && sellers < 4) {
            /* Sellers are told apart by their key (one company named by
             * several records is one seller). */
            char sk[512];
            tw_ar_party_key(h->from, sk, sizeof sk);
            int dup = 0;
            for (int k = 0; k < sellers; k++)
                dup |= strcmp(seller_keys[k], sk) == 0;
            if (!dup)
                snprintf(seller_keys[sellers++], sizeof seller_keys[0], "%s", sk);
        }
        if (h->item_kind == TW_AR_ITEM_ENGINE || h->item_kind == TW_AR_ITEM_BOAT)
            seen[nseen++] = (unit_ref){h->item_id, i};
    }
    qsort(seen, nseen, sizeof *seen, cmp_unit_ref);
    for (size_t k = 0; k < nseen; k++) {
        if (k > 0 && seen[k].item_id != 0 && seen[k].item_id == seen[k - 1].item_id)
            continue;
        const tw_ar_hop *h = hs[seen[k].idx];
        int q = quantity_of(h);
        units += q;
        if (h->payment == TW_AR_PAY_CASH)
            cash_units += q;
        if (h->item_kind == TW_AR_ITEM_ENGINE)
            engines += q;
        else
            boats += q;
    }
    free(seen);
    int rc = 0;
    if (units < cfg->bulk_min_items)
        return 0;
    /* Who the buyers are. */
    int persons = 0, new_co = 0, little = 0, est = 0, link = 0, near_hub = -1;
    char key[512] = "", k2[512];
    int key_rank = 3;
    int64_t min_pid = INT64_MAX;
    for (size_t m = 0; m < nm; m++) {
        const tw_ar_party *p = b[members[m]].p;
        if (p->kind == TW_AR_PARTY_COMPANY) {
            if (established(cfg, p))
                est++;
            else if (p->trade_records <= 0)
                new_co++;
            else
                little++;
        } else {
            persons++;
        }
        link |= linked(cfg, p);
        if (p->has_place && near_hub < 0) {
            int h = nearest_hub(hubs, nhubs, TW_AR_HUB_COAST, p->lat, p->lon, 1, NULL);
            if (h < 0)
                h = nearest_hub(hubs, nhubs, TW_AR_HUB_INLAND, p->lat, p->lon, 1, NULL);
            near_hub = h;
        }
        /* The cluster key: smallest identifier key, else name key, else id. */
        int rank;
        if (ident_key(p, k2, sizeof k2))
            rank = 0;
        else if ((p->name_key && p->name_key[0]) || (p->address_key && p->address_key[0])) {
            snprintf(k2, sizeof k2, "name:%s|%s", nz(p->name_key), nz(p->address_key));
            rank = 1;
        } else {
            rank = 2;
            if (p->party_id < min_pid)
                min_pid = p->party_id;
        }
        if (rank < 2 && (rank < key_rank || (rank == key_rank && strcmp(k2, key) < 0))) {
            snprintf(key, sizeof key, "%s", k2);
            key_rank = rank;
        }
    }
    if (key_rank == 3 || key_rank == 2)
        snprintf(key, sizeof key, "party:%" PRId64, min_pid);

    draft dr = {.rule = "bulk_acquisition", .kind = TW_AR_SUBJECT_CLUSTER, .subject = key,
                .hops = hs, .nhops = nh};
    (void)b;
    add_factor(&dr.fs, "bulk_acquisition", 2, "%ld engines or boats in %d days", units,
               cfg->bulk_window_days);
    if (units >= 2L * cfg->bulk_min_items && !b2b)
        add_factor(&dr.fs, "large_quantity", 2, "%ld units", units);
    if (engines && boats && !b2b)
        add_factor(&dr.fs, "boats_with_engines", 2, "%ld boats, %ld engines", boats, engines);
    if (cash_units * 2 >= units)
        add_factor(&dr.fs, "mostly_cash", 2, "%ld of %ld units paid in cash", cash_units, units);
    else if (cash_units > 0)
        add_factor(&dr.fs, "some_cash", 1, "%ld of %ld units paid in cash", cash_units, units);
    if (persons)
        add_factor(&dr.fs, "private_buyer", 2, "%d private or unidentified buyer%s", persons,
                   persons == 1 ? "" : "s");
    if (new_co)
        add_factor(&dr.fs, "new_company", 2, "%d compan%s without earlier trade records", new_co,
                   new_co == 1 ? "y" : "ies");
    else if (little)
        add_factor(&dr.fs, "little_trading_history", 1, "%d compan%s with few trade records",
                   little, little == 1 ? "y" : "ies");
    /* Different buyers sharing identifiers: members under different names
     * (one company or person named by several records is one buyer). */
    size_t names = 0;
    for (size_t m = 0; m < nm; m++) {
        const tw_ar_party *p = b[members[m]].p;
        const char *nk = p->name_key ? p->name_key : "";
        int dup = 0;
        for (size_t j = 0; j < m && !dup; j++) {
            const tw_ar_party *q = b[members[j]].p;
            dup = nk[0] && q->name_key && strcmp(nk, q->name_key) == 0;
        }
        names += !dup;
    }
    if (names >= 2)
        add_factor(&dr.fs, "shared_identifiers", 2, "%zu buyers under different names linked by shared identifiers or address",
                   names);
    if (sellers >= 3)
        add_factor(&dr.fs, "several_sellers", 2, "%d sellers", sellers);
    else if (sellers == 2)
        add_factor(&dr.fs, "several_sellers", 1, "2 sellers");
    if (near_hub >= 0 && !b2b) { /* a marina or dealer on the coast receiving stock is trade */
        sbuf t = {0};
        sb_text(&t, hubs[near_hub].name);
        add_factor(&dr.fs, "buyer_near_coast", 1, "%s", t.p ? t.p : "");
        sb_free(&t);
    }
    if (est == (int)nm)
        add_factor(&dr.fs, "established_trader", -5, "every buyer is an established trader");
    if (ordinary)
        add_factor(&dr.fs, "supply_from_established_trader", -4,
                   "bought from established traders, not in cash");
    else if (b2b)
        add_factor(&dr.fs, "trade_between_companies", -2, "bought from companies, not in cash");
    if (link)
        add_factor(&dr.fs, "party_seizure_linked", 4, "a buyer is on an earlier record of seized equipment");
    if (all_poor)
        add_factor(&dr.fs, "poorly_graded_source", -2, "every source graded 3 or E");

    /* Evidence: the members and what linked them. */
    json_t *mem = json_array(), *links = json_array();
    dr.extra = json_object();
    int bad = !mem || !links || !dr.extra;
    for (size_t m = 0; !bad && m < nm; m++) {
        const tw_ar_party *p = b[members[m]].p;
        json_t *o = party_json(p);
        char pk[512];
        if (o)
            jset(o, "key", jstr(tw_ar_party_key(p, pk, sizeof pk)), &bad);
        japp(mem, o, &bad);
    }
    const tw_cluster *C = &cr->clusters[cl];
    for (size_t k = C->first_link; !bad && k < C->first_link + C->n_links; k++) {
        const tw_cluster_link *l = &cr->links[k];
        json_t *o = json_object();
        if (!o) {
            bad = 1;
            break;
        }
        jset(o, "via",
             json_string(l->via == TW_CLUSTER_VIA_IDENTIFIER ? tw_cluster_id_kind_name(l->id_kind)
                                                             : "name_address"),
             &bad);
        jset(o, "value", jstr(l->value), &bad);
        jset(o, "address", jstr(l->address), &bad);
        japp(links, o, &bad);
    }
    if (!bad) {
        jset(dr.extra, "members", mem, &bad);
        mem = NULL;
        jset(dr.extra, "links", links, &bad);
        links = NULL;
        jset(dr.extra, "window_days", json_integer(cfg->bulk_window_days), &bad);
        jset(dr.extra, "as_of", jtime(as_of), &bad);
        jset(dr.extra, "units", json_integer(units), &bad);
        jset(dr.extra, "engines", json_integer(engines), &bad);
        jset(dr.extra, "boats", json_integer(boats), &bad);
        jset(dr.extra, "sellers", json_integer(sellers), &bad);
    }
    json_decref(mem);
    json_decref(links);

    sb_printf(&dr.title, "party cluster ");
    sb_text(&dr.title, key);
    sb_printf(&dr.title, " acquired %ld engines or boats in %d days", units, cfg->bulk_window_days);
    sb_printf(&dr.what, "Party cluster ");
    sb_text(&dr.what, key);
    sb_printf(&dr.what, " (");
    for (size_t m = 0; m < nm && m < 5; m++) {
        if (m)
            sb_printf(&dr.what, ", ");
        sb_party(&dr.what, b[members[m]].p);
    }
    if (nm > 5)
        sb_printf(&dr.what, " and %zu more", nm - 5);
    sb_printf(&dr.what, ") acquired %ld engines and boats (%ld engines, %ld boats) from %d seller%s "
                        "in the %d days to ",
              units, engines, boats, sellers, sellers == 1 ? "" : "s", cfg->bulk_window_days);
    sb_date(&dr.what, as_of);
    sb_printf(&dr.what, ".");
    if (bad) {
        draft_free(&dr);
        rc = -1;
    } else {
        rc = emit(cfg, &dr, out);
    }
    return rc;
}

int tw_ar_bulk(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs, int64_t as_of,
               const tw_ar_hop *buys, size_t n, tw_ar_alerts *out)
{
    if (n == 0 || !buys)
        return 0;
    if (!hubs)
        nhubs = 0;
    int rc = -1;
    const tw_ar_hop **s = sorted_hops(buys, n);
    int *buyer_of = malloc(n * sizeof *buyer_of);
    bulk_buyer *b = calloc(n, sizeof *b);
    tw_cluster_obs *obs = calloc(n, sizeof *obs);
    tw_cluster_ident **ids = calloc(n, sizeof *ids);
    size_t *members = malloc(n * sizeof *members);
    unit_ref *refs = malloc(n * sizeof *refs);
    tw_cluster_result *cr = NULL;
    size_t nb = 0, *start = NULL;
    const tw_ar_hop **byc = NULL;
    if (!s || !buyer_of || !b || !obs || !ids || !members || !refs)
        goto done;
    int64_t lo = sub_sat(as_of, (int64_t)cfg->bulk_window_days * DAY);
    /* One buyer per party id (0: one per hop); its latest hop describes it. */
    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        const tw_ar_hop *h = s[i];
        buyer_of[i] = -1;
        if (!h->to || h->to->kind == TW_AR_PARTY_AGENCY || h->at == TW_AR_NO_TIME ||
            h->at <= lo || h->at > as_of ||
            (h->kind != TW_AR_HOP_SALE && h->kind != TW_AR_HOP_SHIPMENT))
            continue;
        refs[ne++] = (unit_ref){h->to->party_id, i};
    }
    qsort(refs, ne, sizeof *refs, cmp_unit_ref);
    for (size_t r = 0; r < ne; r++) {
        const tw_ar_hop *h = s[refs[r].idx];
        if (r == 0 || refs[r].item_id == 0 || refs[r].item_id != refs[r - 1].item_id)
            b[nb++] = (bulk_buyer){.p = h->to, .party_id = h->to->party_id, .min_event = h->event_id};
        bulk_buyer *x = &b[nb - 1];
        x->p = h->to; /* refs run in rule order: the latest wins */
        if (h->event_id < x->min_event)
            x->min_event = h->event_id;
        buyer_of[refs[r].idx] = (int)(nb - 1);
    }
    if (nb == 0) {
        rc = 0;
        goto done;
    }
    for (size_t k = 0; k < nb; k++) {
        const tw_ar_party *p = b[k].p;
        size_t ni = p->idents ? p->n_idents : 0;
        if (ni) {
            ids[k] = calloc(ni, sizeof *ids[k]);
            if (!ids[k])
                goto done;
            for (size_t j = 0; j < ni; j++)
                ids[k][j] = (tw_cluster_ident){tw_cluster_id_kind_from_name(p->idents[j].kind),
                                               nz(p->idents[j].value)};
        }
        obs[k] = (tw_cluster_obs){.kind = cluster_kind(p->kind),
                                  .name = p->name_key && p->name_key[0] ? p->name_key : nz(p->name),
                                  .address = nz(p->address_key), .idents = ids[k], .n_idents = ni,
                                  .event_id = b[k].min_event, .field = "buyer"};
    }
    if (tw_cluster_build(obs, nb, NULL, &cr))
        goto done;
    for (size_t m = 0; m < cr->n_members; m++)
        b[cr->members[m].input_index].cluster = cr->members[m].cluster;
    /* The hops of each cluster, in rule order (counting sort by cluster). */
    start = calloc(cr->n_clusters + 1, sizeof *start);
    byc = malloc(n * sizeof *byc);
    if (!start || !byc)
        goto done;
    for (size_t i = 0; i < n; i++)
        if (buyer_of[i] >= 0)
            start[b[buyer_of[i]].cluster + 1]++;
    for (size_t cl = 0; cl < cr->n_clusters; cl++)
        start[cl + 1] += start[cl];
    for (size_t i = 0; i < n; i++)
        if (buyer_of[i] >= 0)
            byc[start[b[buyer_of[i]].cluster]++] = s[i];
    for (size_t cl = cr->n_clusters; cl > 0; cl--)
        start[cl] = start[cl - 1];
    start[0] = 0;
    for (size_t cl = 0; cl < cr->n_clusters; cl++) {
        const tw_cluster *C = &cr->clusters[cl];
        size_t nm = 0;
        for (size_t m = C->first_member; m < C->first_member + C->n_members; m++)
            members[nm++] = cr->members[m].input_index;
        if (bulk_cluster(cfg, hubs, nhubs, as_of, byc + start[cl], start[cl + 1] - start[cl],
                         members, nm, b, cr, cl, out))
            goto done;
    }
    rc = 0;
done:
    free(start);
    free(byc);
    tw_cluster_result_free(cr);
    for (size_t k = 0; ids && k < n; k++)
        free(ids[k]);
    free(ids);
    free(obs);
    free(b);
    free(buyer_of);
    free(members);
    free(refs);
    free(s);
    return rc;
}

/* ---- rule 6: quiet near the coast ----------------------------------------- */

static int cmp_item_hop(const void *x, const void *y)
{
    const tw_ar_hop *a = *(const tw_ar_hop *const *)x, *b = *(const tw_ar_hop *const *)y;
    int c = cmp_i64(a->item_id, b->item_id);
    return c ? c : cmp_hop(x, y);
}

/* Rule 6 for one subject whose records are hs[0..n) (sorted, at or before
 * as_of, no seizure among them): its latest record L = hs[n - 1] must be a
 * sale or shipment with a time, a destination within quiet_within_km of a
 * coast hub, and an age between quiet_days and quiet_lookback_days. The
 * hops of L's event among hs[ngroup_from..n) count as the event's units.
 * names: a cluster's members under different names (0 for an item). */
static int quiet_subject(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs,
                         int64_t as_of, tw_ar_subject_kind kind, const char *subject,
                         const tw_ar_hop *const *hs, size_t n, size_t ngroup_from, size_t names,
                         tw_ar_alerts *out)
{
    const tw_ar_hop *L = hs[n - 1];
    double lat = 0, lon = 0;
    const char *name = "";
    int buyer = 0;
    if (L->at == TW_AR_NO_TIME || !is_flow(L) || !hop_dest(L, &lat, &lon, &name, &buyer))
        return 0;
    int64_t age = sub_sat(as_of, L->at);
    if (age < (int64_t)cfg->quiet_days * DAY || age > (int64_t)cfg->quiet_lookback_days * DAY)
        return 0;
    double d = 0;
    int hub = nearest_hub(hubs, nhubs, TW_AR_HUB_COAST, lat, lon, 0, &d);
    if (hub < 0 || !(d <= cfg->quiet_within_km))
        return 0;
    pt *p = NULL;
    ptrdiff_t np = points_of(hs, n, &p);
    if (np < 0)
        return -1;
    flow f = {.trig = L, .group = &hs[ngroup_from], .ngroup = n - ngroup_from,
              .prev_km = NAN, .prev_name = ""};
    if (np >= 2) {
        f.prev_km = km(p[np - 2].lat, p[np - 2].lon, p[np - 1].lat, p[np - 1].lon);
        f.prev_name = p[np - 2].name;
        for (ptrdiff_t i = np - 1; i-- > 0 && !f.transit;) {
            int t = transit_at(cfg, hubs, nhubs, &p[i]);
            if (t >= 0)
                f.transit = &hubs[t];
        }
    }
    const tw_ar_hub *H = &hubs[hub];
    int64_t days = age / DAY;
    draft dr = {.rule = "quiet_near_coast", .kind = kind, .subject = subject,
                .hub = H, .hub_km = d, .hops = hs, .nhops = n};
    /* The date, not the days: a later run finds the same evidence. */
    char since[32] = "?";
    if (fmt_time(L->at, since, sizeof since, 1) != 0)
        snprintf(since, sizeof since, "?");
    add_factor(&dr.fs, "quiet_near_coast", 1, "nothing recorded since %s, %.1f km from the coast",
               since, d);
    score_flow(cfg, &f, &dr.fs);
    if (names >= 2)
        add_factor(&dr.fs, "shared_identifiers", 2,
                   "%zu parties under different names linked by shared identifiers or address",
                   names);
    free(p); /* f.prev_name pointed into the hops, not into p */
    dr.extra = json_object();
    int bad = !dr.extra;
    if (dr.extra) {
        jset(dr.extra, "as_of", jtime(as_of), &bad);
        jset(dr.extra, "quiet_days", json_integer(days), &bad);
    }
    sb_subject(&dr.title, kind, subject, hs, n);
    sb_printf(&dr.title, " quiet for %" PRId64 " days %.1f km from ", days, d);
    sb_text(&dr.title, H->name);
    sb_subject(&dr.what, kind, subject, hs, n);
    sb_printf(&dr.what, kind == TW_AR_SUBJECT_CLUSTER ? " last received equipment at "
                                                      : " was last recorded at ");
    sb_place(&dr.what, name, lat, lon, buyer);
    sb_printf(&dr.what, " on ");
    sb_date(&dr.what, L->at);
    sb_printf(&dr.what, " (");
    sb_flow(&dr.what, L);
    sb_printf(&dr.what, "), %.1f km from the coast hub ", d);
    sb_text(&dr.what, H->name);
    sb_printf(&dr.what, ", and nothing has been recorded %s for %" PRId64 " days.",
              kind == TW_AR_SUBJECT_CLUSTER ? "of any of its parties" : "of it", days);
    if (bad) {
        draft_free(&dr);
        return -1;
    }
    return emit(cfg, &dr, out);
}

/* Rule 6 for one item's hops item[0..ni) (sorted). */
static int quiet_item(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs, int64_t as_of,
                      const tw_ar_hop *const *item, size_t ni, tw_ar_alerts *out)
{
    for (size_t i = 0; i < ni; i++)
        if (item[i]->kind == TW_AR_HOP_SEIZURE)
            return 0; /* seized or launched: not quiet, known */
    char subject[32];
    snprintf(subject, sizeof subject, "%" PRId64, item[ni - 1]->item_id);
    return quiet_subject(cfg, hubs, nhubs, as_of, TW_AR_SUBJECT_ITEM, subject, item, ni, ni - 1,
                         0, out);
}

/* An array of n hop pointers (malloc'ed), or NULL. */
static const tw_ar_hop **hop_ptrs(size_t n)
{
    return n > SIZE_MAX / sizeof(tw_ar_hop *) ? NULL : malloc(n * sizeof(tw_ar_hop *));
}

int tw_ar_quiet(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs, int64_t as_of,
                const tw_ar_hop *hops, size_t n, tw_ar_alerts *out)
{
    if (n == 0 || !hops)
        return 0;
    if (!hubs)
        nhubs = 0;
    const tw_ar_hop **s = hop_ptrs(n);
    if (!s)
        return -1;
    /* Hops at or before as_of (unknown times too: they sort last), by item. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (hops[i].item_id != 0 && (hops[i].at == TW_AR_NO_TIME || hops[i].at <= as_of))
            s[k++] = &hops[i];
    qsort(s, k, sizeof *s, cmp_item_hop);
    int rc = 0;
    for (size_t i = 0; i < k && rc == 0;) {
        size_t j = i + 1;
        while (j < k && s[j]->item_id == s[i]->item_id)
            j++;
        rc = quiet_item(cfg, hubs, nhubs, as_of, s + i, j - i, out);
        i = j;
    }
    free(s);
    return rc;
}

static int cmp_i64v(const void *x, const void *y)
{
    return cmp_i64(*(const int64_t *)x, *(const int64_t *)y);
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Whether p is one of the sorted members m[0..nm). */
static int is_member(const tw_ar_party *p, const int64_t *m, size_t nm)
{
    return p && bsearch(&p->party_id, m, nm, sizeof *m, cmp_i64v) != NULL;
}

/* How a member is told apart from another: its name key, else its name. */
static const char *member_name(const tw_ar_party *p)
{
    return p->name_key && p->name_key[0] ? p->name_key : nz(p->name);
}

int tw_ar_quiet_cluster(const tw_ar_config *cfg, const tw_ar_hub *hubs, size_t nhubs,
                        int64_t as_of, const int64_t *members, size_t nm, const tw_ar_hop *hops,
                        size_t n, tw_ar_alerts *out)
{
    if (n == 0 || !hops || nm == 0 || !members)
        return 0;
    if (!hubs)
        nhubs = 0;
    int rc = -1;
    const tw_ar_hop **s = hop_ptrs(n);
    int64_t *m = nm <= SIZE_MAX / sizeof *m ? malloc(nm * sizeof *m) : NULL;
    const char **names = n <= SIZE_MAX / (2 * sizeof *names) ? malloc(2 * n * sizeof *names) : NULL;
    if (!s || !m || !names)
        goto done;
    memcpy(m, members, nm * sizeof *m);
    qsort(m, nm, sizeof *m, cmp_i64v);
    rc = 0;
    size_t k = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        const tw_ar_hop *h = &hops[i];
        int rec = is_member(h->to, m, nm), sent = is_member(h->from, m, nm);
        if (!rec && !sent)
            continue; /* names no member: not the cluster's record */
        if (h->at != TW_AR_NO_TIME && h->at > as_of)
            continue;
        if (h->kind == TW_AR_HOP_SEIZURE)
            goto done; /* equipment seized from it, or launched: known */
        s[k++] = h;
        if (rec && member_name(h->to)[0])
            names[nn++] = member_name(h->to);
        if (sent && member_name(h->from)[0])
            names[nn++] = member_name(h->from);
    }
    if (k == 0)
        goto done;
    qsort(s, k, sizeof *s, cmp_hop);
    /* Its latest record must be a receipt: equipment it passed on is
     * followed on the items. */
    const tw_ar_hop *L = s[k - 1];
    if (!is_member(L->to, m, nm))
        goto done;
    size_t g = k - 1;
    while (g > 0 && s[g - 1]->event_id == L->event_id)
        g--;
    /* Members under different names (one name on several records is one
     * party). */
    qsort(names, nn, sizeof *names, cmp_str);
    size_t distinct = 0;
    for (size_t i = 0; i < nn; i++)
        distinct += i == 0 || strcmp(names[i], names[i - 1]) != 0;
    char subject[512];
    tw_ar_party_key(L->to, subject, sizeof subject);
    rc = quiet_subject(cfg, hubs, nhubs, as_of, TW_AR_SUBJECT_CLUSTER, subject, s, k, g, distinct,
                       out);
done:
    free(names);
    free(m);
    free(s);
    return rc;
}
