/* Fuzz target for tw_record.
 *
 * The input is a serialized tidewatch.v1.Record, unpacked into an arena with
 * the zeroing protobuf-c allocator (as the ingest service does) and
 * validated against the place tables: the shipped ones from
 * $TW_SOURCE_DIR/deploy/data when that variable is set, else a small inline
 * set (fuzzers run without CTest's environment). The tables are loaded once
 * per process and kept (still reachable at exit, so LeakSanitizer is quiet).
 *
 * Invariants checked on every input:
 *   - validation succeeds (memory does not run out here);
 *   - every issue has a non-empty field (an ASCII path), a snake_case code
 *     and a non-empty reason, all valid UTF-8; at most 100 + 1 of each kind;
 *   - kind follows the body; a record time lies within the accepted window;
 *   - serial and hull keys are non-empty, distinct, only [A-Z0-9?], and are
 *     exactly the keys named in derived.serials / derived.hulls;
 *   - derived serializes with json_dumps, and a second validation of the
 *     same record gives the same issues and the same derived JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "tidewatch/v1/records.pb-c.h"
#include "tw_arena.h"
#include "tw_places.h"
#include "tw_record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* Derived identifiers have their normalised shape. */
static void check_identifiers(const Tidewatch__V1__DerivedRecord *d)
{
    static const char upper_digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (size_t i = 0; i < d->n_identifiers; i++) {
        const Tidewatch__V1__DerivedIdentifier *x = d->identifiers[i];
        CHECK(x->field && strstr(x->field, ".identifiers[") && x->value && x->value[0]);
        if (strcmp(x->kind, "phone") == 0) {
            size_t n = strlen(x->value);
            CHECK(x->value[0] == '+' && x->value[1] != '0' && n >= 9 && n <= 16 &&
                  strspn(x->value + 1, "0123456789") == n - 1);
        } else if (strcmp(x->kind, "email") == 0) {
            CHECK(strchr(x->value, '@') && !strpbrk(x->value, " ABCDEFGHIJKLMNOPQRSTUVWXYZ"));
        } else {
            CHECK(strcmp(x->kind, "vat") == 0 || strcmp(x->kind, "company_number") == 0 ||
                  strcmp(x->kind, "identity_document") == 0);
            CHECK(strspn(x->value, upper_digits) == strlen(x->value));
        }
    }
}

/* Every derived time is a valid one, under a path ending in a time field. */
static void check_times(const Tidewatch__V1__DerivedRecord *d)
{
    for (size_t i = 0; i < d->n_times; i++) {
        const Tidewatch__V1__DerivedTime *t = d->times[i];
        CHECK(t->field && t->field[0] && t->seconds >= TW_RECORD_MIN_TIME_S &&
              t->nanos >= 0 && t->nanos <= 999999999);
    }
}

/* The clock of every run (2025-06-15), so that runs are reproducible. */
#define NOW 1750000000LL

static const char HUBS[] = "name,aliases,country,locode,lat,lon,kind\n"
                           "Calais,,FR,FRCQF,50.95194,1.85635,coast\n"
                           "Gravelines,,FR,FRGRV,50.98651,2.12807,coast\n"
                           "Dunkerque,Dunkirk|Duinkerke,FR,FRDKK,51.03440,2.37681,coast\n"
                           "Lille,Rijsel,FR,,50.63391,3.05512,inland\n"
                           "Osnabrück,Osnabrueck,DE,DEOSN,52.27264,8.04980,transit\n"
                           "Essen,,DE,DEESS,51.45657,7.01228,transit\n"
                           "Dover,,GB,GBDVR,51.12598,1.31257,uk_landing\n";
static const char GAZ[] = "country,name,lat,lon,admin1\n"
                          "FR,Calais,50.95194,1.85635,32\n"
                          "FR,Dunkirk,51.03440,2.37681,32\n"
                          "FR,Saint-Omer,50.74834,2.26091,32\n"
                          "FR,Revel,45.18618,5.87208,84\n"
                          "FR,Revel,43.4589,2.00437,76\n"
                          "BE,Lille,51.24197,4.82313,VLG\n"
                          "FR,Lille,50.63391,3.05512,32\n"
                          "DE,Essen,52.7228,7.93721,06\n"
                          "DE,Essen,51.45657,7.01228,07\n"
                          "DE,Köln,50.93333,6.95,07\n";
static const char ALIASES[] = "name,alias,country\nKöln,Cologne,DE\nDunkirk,Dunkerque,FR\n";

/* The place tables, loaded on first use and kept for the process. */
static const tw_places *places(void)
{
    static tw_places *p;
    if (p)
        return p;
    char err[256] = "";
    const char *src = getenv("TW_SOURCE_DIR");
    if (src && *src) {
        char hubs[4096], gaz[4096];
        snprintf(hubs, sizeof hubs, "%s/deploy/data/channel-hubs.csv", src);
        snprintf(gaz, sizeof gaz, "%s/deploy/data/gazetteer.csv", src);
        p = tw_places_load(hubs, gaz, err, sizeof err);
        if (!p)
            fprintf(stderr, "fuzz_record: %s; using the inline tables\n", err);
    }
    if (!p)
        p = tw_places_load_mem(HUBS, strlen(HUBS), GAZ, strlen(GAZ), ALIASES, strlen(ALIASES),
                               NULL, 0, err, sizeof err);
    CHECK(p != NULL);
    return p;
}

static int utf8_ok(const char *s)
{
    return s && u8_check((const uint8_t *)s, strlen(s)) == NULL;
}

static void check_issues(const tw_issue *is, size_t n)
{
    CHECK(n <= 101);
    for (size_t i = 0; i < n; i++) {
        CHECK(is[i].field && is[i].field[0] && utf8_ok(is[i].field));
        for (const char *c = is[i].field; *c; c++)
            CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
        CHECK(is[i].code && is[i].code[0] && utf8_ok(is[i].code));
        for (const char *c = is[i].code; *c; c++)
            CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_');
        CHECK(is[i].reason && is[i].reason[0] && utf8_ok(is[i].reason));
    }
}

static void check_key(const char *k)
{
    CHECK(k && k[0]);
    for (const char *c = k; *c; c++)
        CHECK((*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '?');
}

/* keys[] are distinct, well-formed, and the same set as the "key" members
 * of the derived array. */
static void check_keys(const char **keys, size_t n, json_t *derived)
{
    CHECK(n == 0 || keys);
    for (size_t i = 0; i < n; i++) {
        check_key(keys[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(keys[i], keys[j]) != 0);
    }
    CHECK(json_is_array(derived));
    CHECK(json_array_size(derived) >= n);
    size_t idx;
    json_t *v;
    json_array_foreach(derived, idx, v) {
        const char *k = json_string_value(json_object_get(v, "key"));
        check_key(k);
        CHECK(json_is_string(json_object_get(v, "field")));
        CHECK(json_object_get(v, "raw") == NULL); /* the raw text lives in the payload */
        size_t i = 0;
        while (i < n && strcmp(keys[i], k) != 0)
            i++;
        CHECK(i < n);
    }
    /* Every key came from some derived entry. */
    for (size_t i = 0; i < n; i++) {
        int found = 0;
        json_array_foreach(derived, idx, v) {
            if (strcmp(json_string_value(json_object_get(v, "key")), keys[i]) == 0) {
                found = 1;
                break;
            }
        }
        CHECK(found);
    }
}

static tw_record_kind expected_kind(const Tidewatch__V1__Record *rec)
{
    switch (rec->body_case) {
    case TIDEWATCH__V1__RECORD__BODY_PURCHASE: return TW_RECORD_PURCHASE;
    case TIDEWATCH__V1__RECORD__BODY_SHIPMENT: return TW_RECORD_SHIPMENT;
    case TIDEWATCH__V1__RECORD__BODY_SEIZURE: return TW_RECORD_SEIZURE;
    case TIDEWATCH__V1__RECORD__BODY_CORRECTION: return TW_RECORD_CORRECTION;
    default: return 0;
    }
}

static int same_issues(const tw_issue *a, size_t na, const tw_issue *b, size_t nb)
{
    if (na != nb)
        return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].field, b[i].field) != 0 || strcmp(a[i].code, b[i].code) != 0 ||
            strcmp(a[i].reason, b[i].reason) != 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    const tw_places *pl = places();
    tw_arena arena;
    tw_arena_init(&arena, 0);
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&arena);
    Tidewatch__V1__Record *rec = tidewatch__v1__record__unpack(&alloc, size, data);
    if (!rec)
        goto out;

    tw_record_ctx ctx = {.now_s = NOW, .places = pl};
    tw_record_check c, again;
    CHECK(tw_record_validate(&ctx, rec, &arena, &c) == 0);
    json_t *derived = tw_record_derived_json(&c.derived);
    CHECK(derived);
    check_issues(c.errors, c.nerrors);
    check_issues(c.warnings, c.nwarnings);
    CHECK(c.kind == expected_kind(rec));
    if (c.kind == 0)
        CHECK(c.nerrors > 0);
    if (c.has_time)
        CHECK(c.occurred_at_s >= TW_RECORD_MIN_TIME_S &&
              c.occurred_at_s <= NOW + TW_RECORD_FUTURE_SKEW_S);
    check_keys(c.serial_keys, c.nserial_keys, json_object_get(derived, "serials"));
    check_keys(c.hull_keys, c.nhull_keys, json_object_get(derived, "hulls"));
    CHECK(json_is_array(json_object_get(derived, "places")));
    char *json = json_dumps(derived, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK(json != NULL);
    /* The stored form packs and unpacks to the same facts. */
    size_t plen = 0;
    uint8_t *packed = tw_record_stored_derived(&c, &plen);
    CHECK(packed != NULL);
    Tidewatch__V1__DerivedRecord *back =
        tidewatch__v1__derived_record__unpack(&alloc, plen, packed);
    CHECK(back && back->n_serials == c.derived.n_serials && back->n_hulls == c.derived.n_hulls &&
          back->n_places == c.derived.n_places && back->n_warnings == c.nwarnings &&
          back->n_party_places == c.derived.n_party_places &&
          back->n_identifiers == c.derived.n_identifiers && back->n_times == c.derived.n_times);
    check_identifiers(&c.derived);
    check_times(&c.derived);
    free(packed);

    /* Deterministic, and nothing carried over between calls. */
    CHECK(tw_record_validate(&ctx, rec, &arena, &again) == 0);
    CHECK(same_issues(c.errors, c.nerrors, again.errors, again.nerrors));
    CHECK(same_issues(c.warnings, c.nwarnings, again.warnings, again.nwarnings));
    CHECK(again.nserial_keys == c.nserial_keys && again.nhull_keys == c.nhull_keys);
    json_t *derived2 = tw_record_derived_json(&again.derived);
    char *json2 = derived2 ? json_dumps(derived2, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    CHECK(json2 != NULL && strcmp(json, json2) == 0);
    json_decref(derived2);

    /* Without place tables every place stays unresolved. */
    tw_record_ctx bare = {.now_s = NOW, .places = NULL};
    tw_record_check nop;
    CHECK(tw_record_validate(&bare, rec, &arena, &nop) == 0);
    CHECK(nop.derived.n_places == 0 && nop.derived.n_party_places == 0);
    check_issues(nop.errors, nop.nerrors);
    check_issues(nop.warnings, nop.nwarnings);

    free(json2);
    free(json);
    json_decref(derived);
    tw_record_check_free(&nop);
    tw_record_check_free(&again);
    tw_record_check_free(&c);
out:
    tw_arena_free(&arena);
    return 0;
}
