/* tw_record: validation and normalisation of a submitted tidewatch.v1.Record.
 *
 * Pure: takes a decoded record and a context (the current time, the place
 * tables), returns every problem found with its field path, and what
 * consumers need derived from the record (normalised serial and hull keys,
 * resolved places) as values. No I/O. All output memory lives in the
 * caller's arena. */
#ifndef TW_RECORD_H
#define TW_RECORD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tidewatch/v1/derived.pb-c.h"
#include "tidewatch/v1/records.pb-c.h"
#include "tw_arena.h"

typedef struct tw_places tw_places;

/* Limits (documented in the README's record reference). */
#define TW_RECORD_MAX_REF 128         /* source, source_ref, case refs */
#define TW_RECORD_MAX_NAME 256        /* names, makes, models */
#define TW_RECORD_MAX_TEXT 1024       /* addresses, notes, reasons */
#define TW_RECORD_MAX_ITEMS 1000      /* line items per record */
#define TW_RECORD_MAX_SERIALS 16      /* readings per piece of equipment */
#define TW_RECORD_MAX_QUANTITY 100000 /* per line item */
#define TW_RECORD_MIN_TIME_S 631152000 /* 1990-01-01T00:00:00Z */
#define TW_RECORD_FUTURE_SKEW_S 600   /* how far in the future a time may be */

typedef enum {
    TW_RECORD_PURCHASE = 1,
    TW_RECORD_SHIPMENT = 2,
    TW_RECORD_SEIZURE = 3,
    TW_RECORD_CORRECTION = 4,
} tw_record_kind;

/* One problem: where ("purchase.items[0].equipment.serials[1].text"), a
 * stable code ("required", "too_long", ...) and words for a person. */
typedef struct tw_issue {
    const char *field;
    const char *code;
    const char *reason;
} tw_issue;

typedef struct tw_record_ctx {
    int64_t now_s;            /* current Unix time */
    const tw_places *places;  /* NULL: places stay unresolved (warning) */
} tw_record_ctx;

typedef struct tw_record_check {
    tw_issue *errors;
    size_t nerrors;
    tw_issue *warnings;
    size_t nwarnings;
    tw_record_kind kind;     /* 0 when there is no body */
    int has_time;
    int64_t occurred_at_s;   /* the record's own time (purchase, dispatch, seizure) */
    const char **serial_keys; /* distinct strict keys of every reading */
    size_t nserial_keys;
    const char **hull_keys;   /* distinct normalised hull numbers */
    size_t nhull_keys;
    /* Serial keys, hull decodes, resolved places (no warnings: see
     * tw_record_stored_derived); everything in the arena. */
    Tidewatch__V1__DerivedRecord derived;
    /* internal growth state */
    size_t cap_errors, cap_warnings, cap_serial, cap_hull;
    size_t cap_dserials, cap_dhulls, cap_dplaces, cap_dparty_places, cap_didents, cap_dtimes;
} tw_record_check;

/* Validate and normalise `rec`. Fills *out (zeroed first); everything in
 * it lives in `arena`. The record is acceptable when out->nerrors == 0.
 * Returns 0, or -1 only when memory ran out (then out is incomplete and the
 * record must be treated as not validated). */
int tw_record_validate(const tw_record_ctx *ctx, const Tidewatch__V1__Record *rec,
                       tw_arena *arena, tw_record_check *out) __attribute__((warn_unused_result));

/* Add an error found outside tw_record_validate (for instance by the wire
 * check before unpacking: an unknown field) to a check it filled, with the
 * same cap on the number of issues. `field` is a path ("" or "(record)" for
 * the record itself), `code` a static string; field and reason are copied
 * into `arena`. Returns 0, or -1 on ENOMEM (the issue may be missing). */
int tw_record_add_error(tw_record_check *c, tw_arena *arena, const char *field, const char *code,
                        const char *reason) __attribute__((warn_unused_result));

/* What is stored in events.derived for an acceptable record: the derived
 * facts plus its warnings as {field, code}, packed as a
 * tidewatch.v1.DerivedRecord. Returns malloc'd bytes (length in *len; the
 * caller frees them), or NULL on ENOMEM. */
uint8_t *tw_record_stored_derived(const tw_record_check *c, size_t *len)
    __attribute__((warn_unused_result));

/* What quarantine stores for a rejected record, for the provider to read:
 * {"errors": [...], "warnings": [...]} with fields, codes and reasons.
 * Returns malloc'd JSON text, or NULL on ENOMEM. */
char *tw_record_stored_errors(const tw_record_check *c) __attribute__((warn_unused_result));

/* The derived facts as JSON ({"serials": [...], "hulls": [...], "places":
 * [...], "party_places": [...], "identifiers": [...], "times": [...]}), for
 * tests, logs and people. The caller json_decrefs it; NULL on
 * ENOMEM. */
json_t *tw_record_derived_json(const Tidewatch__V1__DerivedRecord *d)
    __attribute__((warn_unused_result));

/* Release what tw_record_validate allocated outside the arena (nothing at
 * present; kept so callers need not change if that changes). */
void tw_record_check_free(tw_record_check *c);

#endif
