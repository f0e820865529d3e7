#include "tw_record.h"

#include <math.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistr.h>

#include "tw_hin.h"
#include "tw_ident.h"
#include "tw_places.h"
#include "tw_serial.h"


/* ---- the walk's state -------------------------------------------------- */

/* At most this many errors, and as many warnings, are kept per record; one
 * more issue with code "too_many_issues" says that the rest were dropped.
 * Without a cap a 4 MiB message of empty repeated entries (two bytes each)
 * would produce millions of issues and hundreds of MiB of arena. */
#define MAX_ISSUES 100

/* An expected delivery time is naturally in the future: allow up to a year. */
#define EXPECTED_FUTURE_S (366 * 86400)

/* Index over a key list (open addressing, slots hold index + 1), so that
 * de-duplicating 1000 items x 16 readings is not quadratic. */
typedef struct keyset {
    size_t *slots;
    size_t nslots; /* a power of two, or 0 */
} keyset;

typedef struct walk {
    const tw_record_ctx *ctx;
    tw_arena *arena;
    tw_record_check *out;
    char path[512];
    size_t len;
    int oom;
    int in_party; /* places found now are a party's (derived party_places) */
    /* out->derived's arrays grow in the arena */
    keyset serial_set, hull_set;
} walk;

/* Append ".name" (or "name" at the root) or "[i]" to the path; returns the
 * previous length for pop(). */
/* Append raw bytes to the path, truncating at its end (paths are for
 * people; a truncated one is still useful). On the hot path: no printf. */
static void append(walk *w, const char *s, size_t n)
{
    size_t room = sizeof w->path - 1 - w->len;
    if (n > room)
        n = room;
    memcpy(w->path + w->len, s, n);
    w->len += n;
    w->path[w->len] = '\0';
}

static size_t push(walk *w, const char *name)
{
    size_t old = w->len;
    if (w->len)
        append(w, ".", 1);
    append(w, name, strlen(name));
    return old;
}

static size_t push_index(walk *w, size_t i)
{
    size_t old = w->len;
    char buf[24], *p = buf + sizeof buf;
    *--p = ']';
    do
        *--p = (char)('0' + i % 10);
    while ((i /= 10) > 0);
    *--p = '[';
    append(w, p, (size_t)(buf + sizeof buf - p));
    return old;
}

static void pop(walk *w, size_t old)
{
    w->len = old;
    w->path[old] = '\0';
}

static int grow(walk *w, tw_issue **items, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    tw_issue *ni = tw_arena_alloc(w->arena, ncap * sizeof *ni);
    if (!ni) {
        w->oom = 1;
        return -1;
    }
    if (n)
        memcpy(ni, *items, n * sizeof *ni);
    *items = ni;
    *cap = ncap;
    return 0;
}

/* Record an issue at the current path plus `sub` (may be NULL). */
static void issue(walk *w, int error, const char *sub, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void issue(walk *w, int error, const char *sub, const char *code, const char *fmt, ...)
{
    tw_record_check *o = w->out;
    tw_issue **items = error ? &o->errors : &o->warnings;
    size_t *n = error ? &o->nerrors : &o->nwarnings;
    size_t *cap = error ? &o->cap_errors : &o->cap_warnings;
    if (*n > MAX_ISSUES)
        return;
    if (grow(w, items, *n, cap) != 0)
        return;
    char *reason;
    if (*n == MAX_ISSUES) {
        code = "too_many_issues";
        reason = tw_arena_printf(w->arena, "more than %d %s: the rest are not reported",
                                 MAX_ISSUES, error ? "errors" : "warnings");
    } else {
        va_list ap;
        va_start(ap, fmt);
        reason = tw_arena_vprintf(w->arena, fmt, ap);
        va_end(ap);
    }
    /* Reasons may quote submitted text: keep them valid UTF-8 for JSON. */
    if (reason && u8_check((const uint8_t *)reason, strlen(reason)) != NULL)
        for (char *c = reason; *c; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
    const char *field = *n == MAX_ISSUES ? "(record)"
                        : sub ? tw_arena_printf(w->arena, "%s%s%s", w->path,
                                                w->len && sub[0] != '[' ? "." : "", sub)
                              : tw_arena_strdup(w->arena, w->len ? w->path : "(record)");
    if (!reason || !field) {
        w->oom = 1;
        return;
    }
    (*items)[*n] = (tw_issue){.field = field, .code = code, .reason = reason};
    (*n)++;
}

#define ERR(w, sub, code, ...) issue((w), 1, (sub), (code), __VA_ARGS__)
#define WARN(w, sub, code, ...) issue((w), 0, (sub), (code), __VA_ARGS__)

static size_t key_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (size_t)h;
}

static void keyset_insert(keyset *set, const char *key, size_t i)
{
    size_t m = set->nslots - 1, j = key_hash(key) & m;
    while (set->slots[j])
        j = (j + 1) & m;
    set->slots[j] = i + 1;
}

/* Make room for n keys (keys[0..n) stay indexed); half the slots stay
 * empty. Returns 0, or -1 on ENOMEM. */
static int keyset_reserve(walk *w, keyset *set, const char **keys, size_t n)
{
    if (2 * n <= set->nslots)
        return 0;
    size_t ns = set->nslots ? set->nslots * 2 : 32;
    while (2 * n > ns)
        ns *= 2;
    size_t *slots = tw_arena_calloc(w->arena, ns, sizeof *slots);
    if (!slots) {
        w->oom = 1;
        return -1;
    }
    set->slots = slots;
    set->nslots = ns;
    for (size_t k = 0; k + 1 < n; k++) /* the n-th is inserted by the caller */
        keyset_insert(set, keys[k], k);
    return 0;
}

static void add_key(walk *w, keyset *set, const char ***keys, size_t *n, size_t *cap,
                    const char *key)
{
    if (set->nslots) {
        size_t m = set->nslots - 1;
        for (size_t j = key_hash(key) & m; set->slots[j]; j = (j + 1) & m)
            if (strcmp((*keys)[set->slots[j] - 1], key) == 0)
                return;
    }
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        const char **nk = tw_arena_alloc(w->arena, ncap * sizeof *nk);
        if (!nk) {
            w->oom = 1;
            return;
        }
        if (*n)
            memcpy(nk, *keys, *n * sizeof *nk);
        *keys = nk;
        *cap = ncap;
    }
    const char *copy = tw_arena_strdup(w->arena, key);
    if (!copy) {
        w->oom = 1;
        return;
    }
    if (keyset_reserve(w, set, *keys, *n + 1) != 0)
        return;
    (*keys)[*n] = copy;
    keyset_insert(set, copy, *n);
    (*n)++;
}

/* ---- values ------------------------------------------------------------ */

static int text_ok(const char *s, size_t max, const char **why)
{
    size_t len = strlen(s);
    if (len > max) {
        *why = "too_long";
        return 0;
    }
    if (u8_check((const uint8_t *)s, len) != NULL) {
        *why = "bad_utf8";
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
            *why = "control_character";
            return 0;
        }
    }
    return 1;
}

/* Check a string field; returns 1 when it is present and fine. */
static int text(walk *w, const char *name, const char *s, int required, size_t max)
{
    if (!s || !s[0]) {
        if (required)
            ERR(w, name, "required", "%s is required", name);
        return 0;
    }
    const char *why;
    if (!text_ok(s, max, &why)) {
        if (strcmp(why, "too_long") == 0)
            ERR(w, name, why, "longer than %zu bytes", max);
        else if (strcmp(why, "bad_utf8") == 0)
            ERR(w, name, why, "not valid UTF-8");
        else
            ERR(w, name, why, "contains control characters");
        return 0;
    }
    return 1;
}

static int country_ok(const char *s)
{
    return s && strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

static void country(walk *w, const char *name, const char *s, int required)
{
    if (!s || !s[0]) {
        if (required)
            ERR(w, name, "required", "%s is required (ISO 3166-1 alpha-2, e.g. \"FR\")", name);
        return;
    }
    if (!country_ok(s))
        ERR(w, name, "bad_country", "\"%.16s\" is not an ISO 3166-1 alpha-2 code (two capital letters)",
            s);
}

static int enum_ok(const ProtobufCEnumDescriptor *d, int value)
{
    return protobuf_c_enum_descriptor_get_value(d, value) != NULL;
}

/* An enum field: unknown numbers are errors, 0 (unspecified) is an error
 * when required. Returns 1 when set to a known non-zero value. */
static int enumeration(walk *w, const char *name, const ProtobufCEnumDescriptor *d, int value,
                       int required)
{
    if (!enum_ok(d, value)) {
        ERR(w, name, "bad_enum", "%d is not a %s", value, d->name);
        return 0;
    }
    if (value == 0) {
        if (required)
            ERR(w, name, "required", "%s is required", name);
        return 0;
    }
    return 1;
}

static void push_ptr(walk *w, void ***arr, size_t *n, size_t *cap, void *p);

/* Keep a valid time in derived.times under its path. */
static void derived_time(walk *w, const char *name, const Google__Protobuf__Timestamp *t)
{
    Tidewatch__V1__DerivedTime *d = tw_arena_alloc(w->arena, sizeof *d);
    if (d) {
        tidewatch__v1__derived_time__init(d);
        d->field = w->len ? tw_arena_printf(w->arena, "%s.%s", w->path, name)
                          : tw_arena_strdup(w->arena, name);
        if (!d->field)
            d = NULL;
        else {
            d->seconds = t->seconds;
            d->nanos = t->nanos;
        }
    }
    Tidewatch__V1__DerivedRecord *dr = &w->out->derived;
    push_ptr(w, (void ***)&dr->times, &dr->n_times, &w->out->cap_dtimes, d);
}

/* A timestamp: not before 1990, not more than the skew in the future. */
static int timestamp(walk *w, const char *name, const Google__Protobuf__Timestamp *t, int required,
                     int64_t future_s, int64_t *out)
{
    if (!t) {
        if (required)
            ERR(w, name, "required", "%s is required", name);
        return 0;
    }
    if (t->nanos < 0 || t->nanos > 999999999) {
        ERR(w, name, "bad_time", "nanos must be within 0..999999999");
        return 0;
    }
    if (t->seconds < TW_RECORD_MIN_TIME_S) {
        ERR(w, name, "too_early", "before 1990-01-01");
        return 0;
    }
    if (t->seconds > w->ctx->now_s + future_s) {
        if (future_s < 86400)
            ERR(w, name, "in_future", "more than %d minutes in the future", (int)(future_s / 60));
        else
            ERR(w, name, "in_future", "more than %d days in the future", (int)(future_s / 86400));
        return 0;
    }
    if (out)
        *out = t->seconds;
    derived_time(w, name, t);
    return 1;
}

static void set_time(walk *w, int64_t s)
{
    if (!w->out->has_time) {
        w->out->has_time = 1;
        w->out->occurred_at_s = s;
    }
}

/* ---- composite fields --------------------------------------------------- */

static void place(walk *w, const char *name, const Tidewatch__V1__Place *p, int required);
static void identifier(walk *w, const Tidewatch__V1__PartyIdentifier *id, const char *cc);

static void party(walk *w, const char *name, const Tidewatch__V1__Party *p, int required)
{
    if (!p) {
        if (required)
            ERR(w, name, "required", "%s is required", name);
        return;
    }
    size_t old = push(w, name);
    enumeration(w, "kind", &tidewatch__v1__party__kind__descriptor, p->kind, 0);
    text(w, "name", p->name, 1, TW_RECORD_MAX_NAME);
    country(w, "country", p->country, 0);
    text(w, "address", p->address, 0, TW_RECORD_MAX_TEXT);
    for (size_t i = 0; i < p->n_identifiers; i++) {
        const Tidewatch__V1__PartyIdentifier *id = p->identifiers[i];
        size_t o2 = push(w, "identifiers");
        push_index(w, i);
        enumeration(w, "kind", &tidewatch__v1__party_identifier__kind__descriptor, id->kind, 1);
        int have_value = text(w, "value", id->value, 1, TW_RECORD_MAX_NAME);
        country(w, "issuing_country", id->issuing_country, 0);
        if (have_value)
            identifier(w, id, country_ok(id->issuing_country) ? id->issuing_country
                              : country_ok(p->country)          ? p->country
                                                                 : NULL);
        pop(w, o2);
    }
    int outer = w->in_party;
    w->in_party = 1;
    place(w, "place", p->place, 0);
    w->in_party = outer;
    pop(w, old);
}

/* Append p to an arena-grown array of pointers. */
static void push_ptr(walk *w, void ***arr, size_t *n, size_t *cap, void *p)
{
    if (!p) {
        w->oom = 1;
        return;
    }
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        void **na = tw_arena_alloc(w->arena, ncap * sizeof *na);
        if (!na) {
            w->oom = 1;
            return;
        }
        if (*n)
            memcpy(na, *arr, *n * sizeof *na);
        *arr = na;
        *cap = ncap;
    }
    (*arr)[(*n)++] = p;
}

static char *dup(walk *w, const char *s)
{
    char *c = tw_arena_strdup(w->arena, s ? s : "");
    if (!c)
        w->oom = 1;
    return c ? c : (char *)"";
}

/* Normalise a party identifier (tw_ident) into derived.identifiers, at
 * the identifier's path; what cannot be normalised stays as given with a
 * warning at its value (never a guess). cc: the identifier's issuing
 * country, else the party's, else NULL. */
static void identifier(walk *w, const Tidewatch__V1__PartyIdentifier *id, const char *cc)
{
    char out[TW_IDENT_OUT];
    tw_ident_status st;
    const char *kind;
    switch (id->kind) {
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT:
        kind = "vat";
        st = tw_ident_vat(id->value, cc, out, sizeof out);
        break;
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE:
        kind = "phone";
        st = tw_ident_phone(id->value, cc, out, sizeof out);
        break;
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__EMAIL:
        kind = "email";
        st = tw_ident_email(id->value, out, sizeof out);
        break;
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__COMPANY_NUMBER:
        kind = "company_number";
        st = tw_ident_code(id->value, out, sizeof out);
        break;
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__IDENTITY_DOCUMENT:
        kind = "identity_document";
        st = tw_ident_code(id->value, out, sizeof out);
        break;
    default:
        return; /* OTHER (and unknown kinds, already errors): kept as given */
    }
    if (st == TW_IDENT_BAD_EMAIL) {
        WARN(w, "value", "odd_email", "does not look like an e-mail address (local@domain)");
        return;
    }
    if (st == TW_IDENT_COUNTRY_MISMATCH)
        WARN(w, "value", "country_mismatch",
             "the VAT prefix %.2s is not that of issuing_country (or the party's country) %s",
             out, cc);
    else if (st != TW_IDENT_OK) {
        const char *advice =
            st == TW_IDENT_NEEDS_COUNTRY
                ? "; give issuing_country or the party's country, or the international form"
            : st == TW_IDENT_NO_TRUNK
                ? "; give it in international form (+CC...) or with the national trunk prefix"
            : st == TW_IDENT_UNKNOWN_COUNTRY
                ? "; give it in international form (+CC...)"
                : "";
        WARN(w, "value", "not_normalised", "%s kept as given: %s%s", kind,
             tw_ident_status_name(st), advice);
        return;
    }
    Tidewatch__V1__DerivedIdentifier *d = tw_arena_alloc(w->arena, sizeof *d);
    if (d) {
        tidewatch__v1__derived_identifier__init(d);
        d->field = dup(w, w->path);
        d->kind = (char *)kind;
        d->value = dup(w, out);
        d->country = dup(w, cc && (id->kind == TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT ||
                                   id->kind == TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE)
                                ? cc
                                : "");
    }
    Tidewatch__V1__DerivedRecord *dr = &w->out->derived;
    push_ptr(w, (void ***)&dr->identifiers, &dr->n_identifiers, &w->out->cap_didents, d);
}

static Tidewatch__V1__DerivedHub *derived_hub(walk *w, const tw_hub *h, double km)
{
    Tidewatch__V1__DerivedHub *d = tw_arena_alloc(w->arena, sizeof *d);
    if (!d) {
        w->oom = 1;
        return NULL;
    }
    tidewatch__v1__derived_hub__init(d);
    d->name = (char *)h->name;
    d->kind = (char *)tw_hub_kind_name(h->kind);
    d->km = km;
    return d;
}

/* UN/LOCODE: country code and three of A-Z, 2-9. */
static int locode_ok(const char *s)
{
    if (strlen(s) != 5)
        return 0;
    for (int i = 0; i < 5; i++) {
        char c = s[i];
        int letter = c >= 'A' && c <= 'Z';
        if (i < 2 ? !letter : !(letter || (c >= '2' && c <= '9')))
            return 0;
    }
    return 1;
}

/* Resolve a place to coordinates (coordinates, then UN/LOCODE, then name
 * and country through the gazetteer), from the fields that passed the
 * checks above only (a malformed one is an error already and must not be
 * reported twice). Unresolved and ambiguous places are warnings, never a
 * guess; what tw_places finds malformed beyond our checks (a name with no
 * letter or digit) is an error. */
static void resolve_place(walk *w, const Tidewatch__V1__Place *p, int have_coords,
                          int have_locode, int have_name, int have_country, int have_region)
{
    if (!w->ctx->places) {
        WARN(w, NULL, "unresolved", "place tables are not loaded: the place is kept unresolved");
        return;
    }
    tw_place_query q = {.locode = have_locode ? p->locode : NULL,
                        .name = have_name ? p->name : NULL,
                        .country = have_country ? p->country : NULL,
                        .region = have_region ? p->region : NULL};
    if (have_coords) {
        q.has_coords = true;
        q.lat = p->coordinates->lat;
        q.lon = p->coordinates->lon;
    }
    tw_place_result r;
    tw_place_status st = tw_place_resolve(w->ctx->places, &q, &r);
    for (size_t i = 0; i < r.nwarnings; i++) {
        tw_place_warn_code code = r.warnings[i].code;
        if (st != TW_PLACE_INVALID) {
            WARN(w, NULL, tw_place_warn_name(code), "%s", r.warnings[i].text);
            continue;
        }
        const char *sub = code == TW_PLACE_WARN_BAD_COORDS   ? "coordinates"
                          : code == TW_PLACE_WARN_BAD_LOCODE  ? "locode"
                          : code == TW_PLACE_WARN_BAD_COUNTRY ? "country"
                          : code == TW_PLACE_WARN_BAD_REGION  ? "region"
                                                              : "name";
        ERR(w, sub, tw_place_warn_name(code), "%s", r.warnings[i].text);
    }
    if (st == TW_PLACE_INVALID && r.nwarnings == 0)
        ERR(w, NULL, "invalid", "the place tables reject this place");
    if (st != TW_PLACE_RESOLVED)
        return;
    const tw_hub *hub = r.hub >= 0 ? tw_places_hub(w->ctx->places, (size_t)r.hub) : NULL;
    const tw_hub *near = r.nearest_hub >= 0 ? tw_places_hub(w->ctx->places, (size_t)r.nearest_hub)
                                            : NULL;
    Tidewatch__V1__DerivedPlace *d = tw_arena_alloc(w->arena, sizeof *d);
    if (!d) {
        w->oom = 1;
        return;
    }
    tidewatch__v1__derived_place__init(d);
    d->field = dup(w, w->path);
    d->source = (char *)tw_place_source_name(r.source);
    d->lat = r.lat;
    d->lon = r.lon;
    d->name = r.name ? (char *)r.name : (char *)""; /* borrowed from the place tables */
    d->country = dup(w, r.country);
    d->locode = dup(w, r.locode);
    if (hub)
        d->hub = derived_hub(w, hub, 0);
    if (near)
        d->nearest_hub = derived_hub(w, near, r.nearest_hub_km);
    Tidewatch__V1__DerivedRecord *dr = &w->out->derived;
    if (w->in_party)
        push_ptr(w, (void ***)&dr->party_places, &dr->n_party_places,
                 &w->out->cap_dparty_places, d);
    else
        push_ptr(w, (void ***)&dr->places, &dr->n_places, &w->out->cap_dplaces, d);
}

static void place(walk *w, const char *name, const Tidewatch__V1__Place *p, int required)
{
    if (!p) {
        if (required)
            ERR(w, name, "required", "%s is required", name);
        return;
    }
    size_t old = push(w, name);
    int have_coords = 0;
    if (p->coordinates) {
        double lat = p->coordinates->lat, lon = p->coordinates->lon;
        if (!isfinite(lat) || lat < -90 || lat > 90 || !isfinite(lon) || lon < -180 || lon > 180)
            ERR(w, "coordinates", "bad_coordinates", "latitude must be within -90..90 and "
                "longitude within -180..180");
        else
            have_coords = 1;
    }
    int have_locode = 0;
    if (p->locode && p->locode[0]) {
        if (!locode_ok(p->locode))
            ERR(w, "locode", "bad_locode", "\"%.16s\" is not a UN/LOCODE (country + 3 of A-Z, 2-9)",
                p->locode);
        else
            have_locode = 1;
    }
    /* The place tables take names of at most TW_PLACE_NAME_MAX bytes. */
    int have_name = text(w, "name", p->name, 0, TW_PLACE_NAME_MAX);
    text(w, "postcode", p->postcode, 0, 32);
    country(w, "country", p->country, 0);
    int have_country = country_ok(p->country);
    text(w, "address", p->address, 0, TW_RECORD_MAX_TEXT);
    int have_region = text(w, "region", p->region, 0, TW_PLACE_REGION_MAX);
    if (!have_coords && !have_locode && !have_name)
        ERR(w, NULL, "required", "a place needs coordinates, a UN/LOCODE or a name");
    else
        resolve_place(w, p, have_coords, have_locode, have_name, have_country, have_region);
    pop(w, old);
}

/* Issue codes for tw_serial and tw_hin errors, in the same snake_case
 * vocabulary as the rest (their status names are words for people). */
static const char *serial_code(tw_serial_status st)
{
    switch (st) {
    case TW_SERIAL_ERR_UTF8: return "bad_utf8";
    case TW_SERIAL_ERR_TOO_LONG: return "too_long";
    case TW_SERIAL_ERR_CHAR: return "bad_character";
    case TW_SERIAL_ERR_EMPTY: return "empty";
    default: return "invalid";
    }
}

static const char *hin_code(tw_hin_status st)
{
    switch (st) {
    case TW_HIN_ERR_UTF8: return "bad_utf8";
    case TW_HIN_ERR_TOO_LONG: return "too_long";
    case TW_HIN_ERR_CHAR: return "bad_character";
    case TW_HIN_ERR_EMPTY: return "empty";
    default: return "invalid";
    }
}

/* Normalise one serial reading: errors reject the record, weak formats
 * and fixes are warnings; keys go to the record's key list and derived. An
 * ILLEGIBLE reading with nothing readable ("???") is what it says: no key,
 * no error. */
static void serial_key(walk *w, const Tidewatch__V1__SerialReading *r, const char *make)
{
    tw_serial s;
    if (tw_serial_normalize(r->text, strlen(r->text), make, &s) != TW_SERIAL_OK) {
        if (s.status == TW_SERIAL_ERR_EMPTY &&
            r->completeness == TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__ILLEGIBLE)
            return;
        if (s.status == TW_SERIAL_ERR_NOMEM)
            w->oom = 1;
        ERR(w, "text", serial_code(s.status), "%s", s.error_text);
        return;
    }
    for (size_t i = 0; i < s.nwarnings; i++)
        WARN(w, "text", "serial_format", "%s", s.warnings[i].text);
    add_key(w, &w->serial_set, &w->out->serial_keys, &w->out->nserial_keys, &w->out->cap_serial,
            s.key);
    /* Only what needs this library to compute: the raw text, method and
     * completeness are in the stored record itself. */
    Tidewatch__V1__DerivedSerial *d = tw_arena_alloc(w->arena, sizeof *d);
    if (!d) {
        w->oom = 1;
        return;
    }
    tidewatch__v1__derived_serial__init(d);
    d->field = dup(w, w->path);
    d->key = dup(w, s.key);
    d->loose = dup(w, s.loose_key);
    d->format = (char *)tw_serial_format_name(s.format);
    d->partial = s.partial;
    Tidewatch__V1__DerivedRecord *dr = &w->out->derived;
    push_ptr(w, (void ***)&dr->serials, &dr->n_serials, &w->out->cap_dserials, d);
}

/* The year of the record's time, or of now, anchors two-digit model years. */
static int ref_year(const walk *w)
{
    time_t t = (time_t)(w->out->has_time ? w->out->occurred_at_s : w->ctx->now_s);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 1000 || tm.tm_year + 1900 > 9999)
        return 2000; /* a nonsensical ctx->now_s; tw_hin needs 1000-9999 */
    return tm.tm_year + 1900;
}

static void hull_key(walk *w, const char *hull)
{
    tw_hin h;
    if (tw_hin_decode(hull, strlen(hull), ref_year(w), &h) != TW_HIN_OK) {
        if (h.status == TW_HIN_ERR_NOMEM)
            w->oom = 1;
        ERR(w, "hull_number", hin_code(h.status), "%s", h.error_text);
        return;
    }
    for (size_t i = 0; i < h.nwarnings; i++)
        WARN(w, "hull_number", "hull_format", "%s", h.warnings[i].text);
    add_key(w, &w->hull_set, &w->out->hull_keys, &w->out->nhull_keys, &w->out->cap_hull, h.key);
    Tidewatch__V1__DerivedHull *d = tw_arena_alloc(w->arena, sizeof *d);
    if (!d) {
        w->oom = 1;
        return;
    }
    tidewatch__v1__derived_hull__init(d);
    d->field = dup(w, w->path);
    d->key = dup(w, h.key);
    d->kind = (char *)tw_hin_kind_name(h.kind);
    d->country = dup(w, h.country);
    d->maker = dup(w, h.maker);
    d->month = h.month;
    d->production_year = h.production_year;
    d->model_year = h.model_year;
    d->partial = h.partial;
    Tidewatch__V1__DerivedRecord *dr = &w->out->derived;
    push_ptr(w, (void ***)&dr->hulls, &dr->n_hulls, &w->out->cap_dhulls, d);
}

static void serial_reading(walk *w, const Tidewatch__V1__SerialReading *r, const char *make)
{
    enumeration(w, "method", &tidewatch__v1__serial_reading__method__descriptor, r->method, 0);
    int illegible = r->completeness == TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__ILLEGIBLE;
    enumeration(w, "completeness", &tidewatch__v1__serial_reading__completeness__descriptor,
                r->completeness, 0);
    text(w, "note", r->note, 0, TW_RECORD_MAX_TEXT);
    if (!r->text || !r->text[0]) {
        if (!illegible)
            ERR(w, "text", "required", "text is required unless completeness is ILLEGIBLE");
        return;
    }
    if (!text(w, "text", r->text, 1, TW_RECORD_MAX_NAME))
        return;
    serial_key(w, r, make);
}

static void equipment(walk *w, const char *name, const Tidewatch__V1__Equipment *e)
{
    if (!e) {
        ERR(w, name, "required", "%s is required", name);
        return;
    }
    size_t old = push(w, name);
    enumeration(w, "kind", &tidewatch__v1__equipment__kind__descriptor, e->kind, 1);
    text(w, "make", e->make, 0, TW_RECORD_MAX_NAME);
    text(w, "model", e->model, 0, TW_RECORD_MAX_NAME);
    text(w, "description", e->description, 0, TW_RECORD_MAX_TEXT);
    if (e->n_serials > TW_RECORD_MAX_SERIALS)
        ERR(w, "serials", "too_many", "at most %d readings", TW_RECORD_MAX_SERIALS);
    for (size_t i = 0; i < e->n_serials && i < TW_RECORD_MAX_SERIALS; i++) {
        size_t o2 = push(w, "serials");
        push_index(w, i);
        serial_reading(w, e->serials[i], e->make);
        pop(w, o2);
    }
    if (e->hull_number && e->hull_number[0]) {
        if (text(w, "hull_number", e->hull_number, 0, 64)) {
            if (e->kind == TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE)
                WARN(w, "hull_number", "unexpected", "engines do not carry hull numbers");
            hull_key(w, e->hull_number);
        }
    }
    if (!isfinite(e->power_hp) || e->power_hp < 0 || e->power_hp > 2000)
        ERR(w, "power_hp", "out_of_range", "power must be within 0..2000 hp");
    if (!isfinite(e->length_m) || e->length_m < 0 || e->length_m > 100)
        ERR(w, "length_m", "out_of_range", "length must be within 0..100 m");
    if (e->kind == TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE && e->n_serials == 0)
        WARN(w, "serials", "missing", "an engine without any serial reading cannot be traced");
    if (e->kind == TIDEWATCH__V1__EQUIPMENT__KIND__BOAT && !(e->hull_number && e->hull_number[0]) &&
        e->n_serials == 0)
        WARN(w, "hull_number", "missing", "a boat without a hull number cannot be traced");
    pop(w, old);
}

static void quantity(walk *w, uint32_t q)
{
    if (q > TW_RECORD_MAX_QUANTITY)
        ERR(w, "quantity", "out_of_range", "quantity must be at most %d", TW_RECORD_MAX_QUANTITY);
}

static void money(walk *w, const char *name, const Tidewatch__V1__Money *m)
{
    if (!m)
        return;
    size_t old = push(w, name);
    const char *c = m->currency;
    if (!c || strlen(c) != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' ||
        c[2] < 'A' || c[2] > 'Z')
        ERR(w, "currency", "bad_currency", "an ISO 4217 code such as \"EUR\" is required");
    if (m->amount_minor < 0 || m->amount_minor > 1000000000000LL)
        ERR(w, "amount_minor", "out_of_range", "amount must be within 0..10^12 minor units");
    pop(w, old);
}

static void line_items(walk *w, const char *name, Tidewatch__V1__LineItem **items, size_t n)
{
    if (n == 0) {
        ERR(w, name, "required", "at least one item is required");
        return;
    }
    if (n > TW_RECORD_MAX_ITEMS) {
        ERR(w, name, "too_many", "at most %d items per record", TW_RECORD_MAX_ITEMS);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t old = push(w, name);
        push_index(w, i);
        equipment(w, "equipment", items[i]->equipment);
        quantity(w, items[i]->quantity);
        money(w, "unit_price", items[i]->unit_price);
        pop(w, old);
    }
}

/* ---- bodies ------------------------------------------------------------- */

/* A body whose oneof case is set but whose pointer is NULL cannot come
 * from the wire, but hand-built messages can hold one: report, don't crash. */
static int body_present(walk *w, const void *body)
{
    if (!body)
        ERR(w, NULL, "required", "the body is set but empty");
    return body != NULL;
}

static void purchase(walk *w, const Tidewatch__V1__Purchase *p)
{
    if (!body_present(w, p))
        return;
    int64_t t; /* first: the time anchors two-digit years in hull numbers */
    if (timestamp(w, "time", p->time, 1, TW_RECORD_FUTURE_SKEW_S, &t))
        set_time(w, t);
    party(w, "seller", p->seller, 1);
    party(w, "buyer", p->buyer, 0);
    if (!p->buyer)
        WARN(w, "buyer", "missing", "a purchase without a buyer leaves the chain open");
    line_items(w, "items", p->items, p->n_items);
    enumeration(w, "payment", &tidewatch__v1__payment_method__descriptor, (int)p->payment, 0);
    place(w, "place", p->place, 0);
    text(w, "invoice_ref", p->invoice_ref, 0, TW_RECORD_MAX_REF);
}

static void shipment(walk *w, const Tidewatch__V1__Shipment *s)
{
    if (!body_present(w, s))
        return;
    party(w, "shipper", s->shipper, 0);
    party(w, "carrier", s->carrier, 0);
    party(w, "consignee", s->consignee, 0);
    if (!s->origin && !s->destination)
        ERR(w, "destination", "required", "a shipment needs an origin or a destination");
    place(w, "origin", s->origin, 0);
    place(w, "destination", s->destination, 0);
    int64_t dispatched = 0, delivered = 0, expected = 0;
    int hd = timestamp(w, "dispatched", s->dispatched, 0, TW_RECORD_FUTURE_SKEW_S, &dispatched);
    int hx = timestamp(w, "expected", s->expected, 0, EXPECTED_FUTURE_S, &expected);
    int hv = timestamp(w, "delivered", s->delivered, 0, TW_RECORD_FUTURE_SKEW_S, &delivered);
    if (!s->dispatched && !s->delivered)
        ERR(w, "dispatched", "required", "a shipment needs a dispatch or a delivery time");
    if (hd && hv && delivered < dispatched)
        ERR(w, "delivered", "before_dispatch", "delivered before it was dispatched");
    if (hd && hx && expected < dispatched)
        WARN(w, "expected", "before_dispatch", "expected before it was dispatched");
    if (hd)
        set_time(w, dispatched);
    else if (hv)
        set_time(w, delivered);
    text(w, "consignment_ref", s->consignment_ref, 0, TW_RECORD_MAX_REF);
    text(w, "vehicle_registration", s->vehicle_registration, 0, 32);
    line_items(w, "items", s->items, s->n_items);
}

static void seizure(walk *w, const Tidewatch__V1__Seizure *s)
{
    if (!body_present(w, s))
        return;
    int64_t t;
    if (timestamp(w, "time", s->time, 1, TW_RECORD_FUTURE_SKEW_S, &t))
        set_time(w, t);
    party(w, "agency", s->agency, 1);
    text(w, "case_ref", s->case_ref, 0, TW_RECORD_MAX_REF);
    place(w, "place", s->place, 1);
    if (s->n_items == 0 && !s->launch)
        ERR(w, "items", "required", "a seizure needs items or launch information");
    if (s->n_items > TW_RECORD_MAX_ITEMS)
        ERR(w, "items", "too_many", "at most %d items per record", TW_RECORD_MAX_ITEMS);
    for (size_t i = 0; i < s->n_items && i < TW_RECORD_MAX_ITEMS; i++) {
        size_t old = push(w, "items");
        push_index(w, i);
        equipment(w, "equipment", s->items[i]->equipment);
        quantity(w, s->items[i]->quantity);
        enumeration(w, "condition", &tidewatch__v1__seized_item__condition__descriptor,
                    s->items[i]->condition, 0);
        text(w, "note", s->items[i]->note, 0, TW_RECORD_MAX_TEXT);
        pop(w, old);
    }
    if (s->launch) {
        size_t old = push(w, "launch");
        const Tidewatch__V1__LaunchInfo *l = s->launch;
        if (l->people_aboard > 500)
            ERR(w, "people_aboard", "out_of_range", "at most 500 people aboard");
        uint64_t sum = 0;
        for (size_t i = 0; i < l->n_nationalities; i++) {
            size_t o2 = push(w, "nationalities");
            push_index(w, i);
            country(w, "country", l->nationalities[i]->country, 1);
            sum += l->nationalities[i]->count;
            pop(w, o2);
        }
        if (sum > l->people_aboard)
            WARN(w, "nationalities", "inconsistent",
                 "nationality counts add up to %llu, more than the %u people aboard",
                 (unsigned long long)sum, l->people_aboard);
        pop(w, old);
    }
}

static void correction(walk *w, const Tidewatch__V1__Record *rec, const Tidewatch__V1__Correction *c)
{
    if (!body_present(w, c))
        return;
    if (!c->corrects) {
        ERR(w, "corrects", "required", "the corrected record's source and source_ref are required");
    } else {
        size_t old = push(w, "corrects");
        int a = text(w, "source", c->corrects->source, 1, TW_RECORD_MAX_REF);
        int b = text(w, "source_ref", c->corrects->source_ref, 1, TW_RECORD_MAX_REF);
        /* EPCIS: an error declaration comes from the party that declared
         * the event. A source may only correct or retract its own records
         * (compared byte for byte, like the log's unique key). */
        if (a && rec->source && rec->source[0] && strcmp(c->corrects->source, rec->source) != 0)
            ERR(w, "source", "other_source",
                "a correction may only correct or retract a record of its own source "
                "(\"%.64s\" is not \"%.64s\")", c->corrects->source, rec->source);
        else if (a && b && rec->source && rec->source_ref &&
                 strcmp(c->corrects->source, rec->source) == 0 &&
                 strcmp(c->corrects->source_ref, rec->source_ref) == 0)
            ERR(w, NULL, "self_reference", "a record cannot correct itself");
        pop(w, old);
    }
    text(w, "reason", c->reason, 1, TW_RECORD_MAX_TEXT);
    size_t old;
    switch (c->replacement_case) {
    case TIDEWATCH__V1__CORRECTION__REPLACEMENT_PURCHASE:
        old = push(w, "purchase");
        purchase(w, c->purchase);
        pop(w, old);
        break;
    case TIDEWATCH__V1__CORRECTION__REPLACEMENT_SHIPMENT:
        old = push(w, "shipment");
        shipment(w, c->shipment);
        pop(w, old);
        break;
    case TIDEWATCH__V1__CORRECTION__REPLACEMENT_SEIZURE:
        old = push(w, "seizure");
        seizure(w, c->seizure);
        pop(w, old);
        break;
    default:
        break; /* a retraction */
    }
}

static void grading(walk *w, const Tidewatch__V1__Grading *g)
{
    if (!g)
        return;
    size_t old = push(w, "grading");
    enumeration(w, "source", &tidewatch__v1__grading__source_evaluation__descriptor, g->source, 1);
    enumeration(w, "information", &tidewatch__v1__grading__information_assessment__descriptor,
                g->information, 1);
    int h = enumeration(w, "handling", &tidewatch__v1__grading__handling__descriptor, g->handling,
                        1);
    text(w, "handling_conditions", g->handling_conditions, 0, TW_RECORD_MAX_TEXT);
    int conditions = g->handling_conditions && g->handling_conditions[0];
    if (h && g->handling == TIDEWATCH__V1__GRADING__HANDLING__HANDLING_C_CONDITIONS && !conditions)
        ERR(w, "handling_conditions", "required", "handling C needs its conditions");
    pop(w, old);
}

/* ---- entry point ---------------------------------------------------------- */

static void walk_record(walk *w, const Tidewatch__V1__Record *rec)
{
    tw_record_check *out = w->out;
    text(w, "source", rec->source, 1, TW_RECORD_MAX_REF);
    text(w, "source_ref", rec->source_ref, 1, TW_RECORD_MAX_REF);
    grading(w, rec->grading);
    if (!rec->grading)
        WARN(w, "grading", "missing", "ungraded information (3x5x2) is treated as untested");
    size_t old;
    switch (rec->body_case) {
    case TIDEWATCH__V1__RECORD__BODY_PURCHASE:
        out->kind = TW_RECORD_PURCHASE;
        old = push(w, "purchase");
        purchase(w, rec->purchase);
        pop(w, old);
        break;
    case TIDEWATCH__V1__RECORD__BODY_SHIPMENT:
        out->kind = TW_RECORD_SHIPMENT;
        old = push(w, "shipment");
        shipment(w, rec->shipment);
        pop(w, old);
        break;
    case TIDEWATCH__V1__RECORD__BODY_SEIZURE:
        out->kind = TW_RECORD_SEIZURE;
        old = push(w, "seizure");
        seizure(w, rec->seizure);
        pop(w, old);
        break;
    case TIDEWATCH__V1__RECORD__BODY_CORRECTION:
        out->kind = TW_RECORD_CORRECTION;
        old = push(w, "correction");
        correction(w, rec, rec->correction);
        pop(w, old);
        break;
    default:
        ERR(w, "body", "required", "one of purchase, shipment, seizure or correction is required");
        break;
    }
}

int tw_record_add_error(tw_record_check *c, tw_arena *arena, const char *field, const char *code,
                        const char *reason)
{
    walk w = {.arena = arena, .out = c};
    size_t n = strlen(field);
    if (n >= sizeof w.path)
        n = sizeof w.path - 1;
    memcpy(w.path, field, n);
    w.path[n] = '\0';
    w.len = n;
    ERR(&w, NULL, code, "%s", reason);
    return w.oom ? -1 : 0;
}

int tw_record_validate(const tw_record_ctx *ctx, const Tidewatch__V1__Record *rec,
                       tw_arena *arena, tw_record_check *out)
{
    memset(out, 0, sizeof *out);
    walk w = {.ctx = ctx, .arena = arena, .out = out};
    tidewatch__v1__derived_record__init(&out->derived);
    walk_record(&w, rec);
    return w.oom ? -1 : 0;
}

/* Issues as JSON; with_reason = 0 keeps only field and code. */
static json_t *issues_json(const tw_issue *src, size_t n, int with_reason)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = with_reason ? json_pack("{s:s, s:s, s:s}", "field", src[i].field, "code",
                                            src[i].code, "reason", src[i].reason)
                                : json_pack("{s:s, s:s}", "field", src[i].field, "code",
                                            src[i].code);
        if (!o || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

uint8_t *tw_record_stored_derived(const tw_record_check *c, size_t *len)
{
    Tidewatch__V1__DerivedRecord d = c->derived;
    Tidewatch__V1__DerivedIssue *items = NULL;
    Tidewatch__V1__DerivedIssue **ptrs = NULL;
    uint8_t *buf = NULL;
    if (c->nwarnings) {
        items = malloc(c->nwarnings * sizeof *items);
        ptrs = malloc(c->nwarnings * sizeof *ptrs);
        if (!items || !ptrs)
            goto out;
        for (size_t i = 0; i < c->nwarnings; i++) {
            tidewatch__v1__derived_issue__init(&items[i]);
            items[i].field = (char *)c->warnings[i].field;
            items[i].code = (char *)c->warnings[i].code;
            ptrs[i] = &items[i];
        }
        d.n_warnings = c->nwarnings;
        d.warnings = ptrs;
    }
    *len = tidewatch__v1__derived_record__get_packed_size(&d);
    buf = malloc(*len ? *len : 1);
    if (buf)
        tidewatch__v1__derived_record__pack(&d, buf);
out:
    free(items);
    free(ptrs);
    return buf;
}

char *tw_record_stored_errors(const tw_record_check *c)
{
    json_t *doc = json_pack("{s:o*, s:o*}", "errors", issues_json(c->errors, c->nerrors, 1),
                            "warnings", issues_json(c->warnings, c->nwarnings, 1));
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

static json_t *hub_json(const Tidewatch__V1__DerivedHub *h, int with_km)
{
    return with_km ? json_pack("{s:s, s:s, s:f}", "name", h->name, "kind", h->kind, "km", h->km)
                   : json_pack("{s:s, s:s}", "name", h->name, "kind", h->kind);
}

static json_t *place_json(const Tidewatch__V1__DerivedPlace *p)
{
    json_t *j = json_pack("{s:s, s:s, s:f, s:f, s:s?, s:s, s:s?}", "field", p->field, "source",
                          p->source, "lat", p->lat, "lon", p->lon, "name",
                          p->name[0] ? p->name : NULL, "country", p->country, "locode",
                          p->locode[0] ? p->locode : NULL);
    if (j && p->hub)
        json_object_set_new(j, "hub", hub_json(p->hub, 0));
    if (j && p->nearest_hub)
        json_object_set_new(j, "nearest_hub", hub_json(p->nearest_hub, 1));
    return j;
}

json_t *tw_record_derived_json(const Tidewatch__V1__DerivedRecord *d)
{
    json_t *serials = json_array(), *hulls = json_array(), *places = json_array();
    json_t *pplaces = json_array(), *idents = json_array(), *times = json_array();
    json_t *doc = json_pack("{s:o*, s:o*, s:o*, s:o*, s:o*, s:o*}", "serials", serials, "hulls",
                            hulls, "places", places, "party_places", pplaces, "identifiers",
                            idents, "times", times);
    if (!doc)
        return NULL;
    int bad = 0;
    for (size_t i = 0; i < d->n_serials; i++) {
        const Tidewatch__V1__DerivedSerial *s = d->serials[i];
        bad |= json_array_append_new(serials, json_pack("{s:s, s:s, s:s, s:s, s:b}", "field",
                                                        s->field, "key", s->key, "loose",
                                                        s->loose, "format", s->format,
                                                        "partial", s->partial));
    }
    for (size_t i = 0; i < d->n_hulls; i++) {
        const Tidewatch__V1__DerivedHull *h = d->hulls[i];
        bad |= json_array_append_new(
            hulls, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:b}", "field", h->field,
                             "key", h->key, "kind", h->kind, "country", h->country, "maker",
                             h->maker, "month", h->month, "production_year", h->production_year,
                             "model_year", h->model_year, "partial", h->partial));
    }
    for (size_t i = 0; i < d->n_places; i++)
        bad |= json_array_append_new(places, place_json(d->places[i]));
    for (size_t i = 0; i < d->n_party_places; i++)
        bad |= json_array_append_new(pplaces, place_json(d->party_places[i]));
    for (size_t i = 0; i < d->n_identifiers; i++) {
        const Tidewatch__V1__DerivedIdentifier *x = d->identifiers[i];
        bad |= json_array_append_new(idents, json_pack("{s:s, s:s, s:s, s:s}", "field", x->field,
                                                       "kind", x->kind, "value", x->value,
                                                       "country", x->country));
    }
    for (size_t i = 0; i < d->n_times; i++) {
        const Tidewatch__V1__DerivedTime *t = d->times[i];
        bad |= json_array_append_new(times, json_pack("{s:s, s:I, s:i}", "field", t->field,
                                                      "seconds", (json_int_t)t->seconds,
                                                      "nanos", (int)t->nanos));
    }
    if (bad) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

void tw_record_check_free(tw_record_check *c) { (void)c; }
