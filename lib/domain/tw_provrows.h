/* tw_provrows: one event of the log as the flat rows of the provenance model
 * (migration 0006: prov_readings, prov_parties, prov_party_identifiers,
 * prov_hops, and the equipment that tidewatch-provenance resolves to
 * prov_items / prov_item_keys in SQL). Pure: values in, values out, no I/O.
 *
 * Input: the event's id, kind, source, source_ref, received time, its
 * payload (a packed tidewatch.v1.Record as submitted) and derived bytes (a
 * packed tidewatch.v1.DerivedRecord: serial keys, hull keys, resolved places,
 * normalised party identifiers, written by ingest). Nothing is re-parsed from
 * free text: keys, places and identifiers come from the derived record,
 * matched by field path ("purchase.items[0].equipment.serials[1]",
 * "shipment.destination", "purchase.buyer.identifiers[0]"; for a correction's
 * replacement body the paths start with "correction.").
 *
 * Output, per line item of the body (or of a correction's replacement body):
 *   - its equipment (kind, maker as tw_serial_maker_parse's canonical name or
 *     "" when unknown or not one we know, model) with every reading: serial
 *     readings (key kind 1) with their strict and loose keys, format and
 *     partial flag from DerivedSerial, and the hull number (key kind 2, maker
 *     always "": a HIN/CIN carries its manufacturer code) from DerivedHull.
 *     A reading ingest derived no key for (an illegible one) has key "".
 *   - its hop: kind (1 sale, 2 shipment, 3 seizure), quantity (1 when 0),
 *     the record's times, the parties (as party ids), origin and place
 *     (resolved by ingest; the nearest Channel-coast hub computed here when
 *     `places` is given), price, payment, references, condition, launch.
 * and the parties (role ordinals: seller 0, buyer 1, shipper 2, carrier 3,
 * consignee 4, agency 5; party_id = event id * 1024 + ordinal) with their
 * normalised identifiers.
 *
 * Ids: equipment of line i creates, if it creates one, item event id * 1024
 * + i (TW_PROVROWS_ID_STRIDE); line i is hop (event id, i). */
#ifndef TW_PROVROWS_H
#define TW_PROVROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tw_arena.h"

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

typedef struct tw_places tw_places;

#define TW_PROVROWS_ID_STRIDE 1024
/* Line items beyond this many are ignored (ingest accepts at most 1,000). */
#define TW_PROVROWS_MAX_LINES 1000

enum { TW_PROV_KEY_SERIAL = 1, TW_PROV_KEY_HULL = 2 };
enum { TW_PROV_HOP_SALE = 1, TW_PROV_HOP_SHIPMENT = 2, TW_PROV_HOP_SEIZURE = 3 };
enum {
    TW_PROV_ROLE_SELLER = 0,
    TW_PROV_ROLE_BUYER,
    TW_PROV_ROLE_SHIPPER,
    TW_PROV_ROLE_CARRIER,
    TW_PROV_ROLE_CONSIGNEE,
    TW_PROV_ROLE_AGENCY,
};

/* Strings are never NULL ("" when absent) and live in the caller's arena
 * (or in the decoded messages, also in the arena). */
typedef struct tw_prov_reading {
    const char *field;   /* path of the reading, or of the equipment's hull_number */
    int key_kind;        /* TW_PROV_KEY_* */
    const char *key;     /* strict key; "" when none was derived */
    const char *loose;   /* look-alikes folded */
    const char *raw;     /* as read */
    int method;          /* SerialReading.Method; 0 for hull numbers */
    int completeness;    /* SerialReading.Completeness; 0 for hull numbers */
    const char *format;  /* serial format name, or hull kind ("EU CIN") */
    const char *maker;   /* canonical maker for serials, "" for hulls or unknown */
    bool partial;        /* '?' in the key: never merged */
} tw_prov_reading;

typedef struct tw_prov_equipment {
    int kind;            /* Equipment.Kind */
    const char *maker;   /* canonical maker name or "" */
    const char *model;
    const char *field;   /* "purchase.items[0].equipment" */
    tw_prov_reading *readings;
    size_t nreadings;
} tw_prov_equipment;

typedef struct tw_prov_place {
    bool present;        /* the record gave this place */
    const char *name;    /* resolved name, else the name given */
    const char *country; /* resolved country, else the one given */
    bool has_coords;     /* resolved */
    double lat, lon;
    const char *hub;     /* the hub it is, "" */
    const char *hub_kind;
    const char *coast_hub; /* nearest hub of kind coast, "" when unknown */
    bool has_coast_km;
    double coast_km;
} tw_prov_place;

typedef struct tw_prov_ident {
    const char *kind;    /* "vat", "phone", ... (DerivedIdentifier.kind) */
    const char *value;   /* normalised */
} tw_prov_ident;

typedef struct tw_prov_party {
    int64_t party_id;
    int role;            /* TW_PROV_ROLE_* */
    const char *role_name; /* "seller", ... */
    int kind;            /* Party.Kind */
    const char *name;
    const char *name_key;  /* tw_place_key of the name, "" */
    const char *country;
    const char *address;
    const char *address_key; /* see tw_provrows_decode */
    const char *place;     /* resolved place name, "" */
    bool has_coords;
    double lat, lon;
    tw_prov_ident *idents;
    size_t nidents;
} tw_prov_party;

typedef struct tw_prov_line {
    int line;               /* ordinal in the body's items */
    const char *line_field; /* "purchase.items[0]" */
    tw_prov_equipment *equipment; /* NULL when the line item has none */
    int hop_kind;           /* TW_PROV_HOP_* */
    uint32_t quantity;      /* >= 1 */
    int condition;          /* SeizedItem.Condition */
    const char *currency;
    bool has_price;
    int64_t unit_price_minor;
} tw_prov_line;

typedef struct tw_prov_event {
    int64_t event_id;
    int kind;               /* events.kind: 1 purchase .. 4 correction */
    const char *source, *source_ref;
    int64_t received_us;
    int grading_source, grading_info, grading_handling;
    /* Corrections. */
    bool is_correction;
    const char *corrects_source, *corrects_ref;
    bool retraction;        /* a correction without a replacement body */
    /* The body (the record's, or the correction's replacement): kind 0 when
     * there is none (a retraction). */
    int body_kind;          /* TW_PROV_HOP_* */
    bool has_time, has_expected, has_delivered;
    int64_t time_us;        /* purchase time, dispatch (else delivery), seizure time */
    int64_t expected_us, delivered_us;
    int64_t from_party, to_party, carrier_party; /* party ids, 0 none */
    tw_prov_place origin, place;
    int payment;
    const char *invoice_ref, *consignment_ref, *vehicle, *case_ref;
    bool launch;
    tw_prov_line *lines;
    size_t nlines;
    tw_prov_party *parties;
    size_t nparties;
} tw_prov_event;

typedef struct tw_provrows_input {
    int64_t event_id;       /* > 0 */
    int kind;               /* events.kind */
    const char *source, *source_ref; /* NUL-terminated */
    int64_t received_us;
    const uint8_t *payload;
    size_t payload_len;
    const uint8_t *derived; /* may be NULL with derived_len 0 (nothing derived) */
    size_t derived_len;
    const tw_places *places; /* NULL: no coast hubs computed */
} tw_provrows_input;

/* Decode one event into *out (zeroed first). Everything out points to lives
 * in `arena` (whose byte limit, if set, bounds what unpacking may take).
 * Returns 0, or -1 with a reason in err (the payload or derived bytes are
 * malformed or exceed the arena's limit, the body does not match `kind`, or
 * event_id is out of range): out is then unusable and nothing should be
 * written for the event. Party address_key: the resolved party place as
 * "<tw_place_key of its name>|<country>" (or "@lat,lon" to 3 decimals for bare
 * coordinates) when DerivedRecord.party_places has it, else the tw_place_key
 * of the free-text address, else "". */
int tw_provrows_decode(const tw_provrows_input *in, tw_arena *arena, tw_prov_event *out,
                       char *err, size_t errlen) TW_WUR;

/* The event as the jsonb document prov_apply() (migration 0006) reads:
 *   {"id", "tx" (decimal string: events.tx), "source", "ref",
 *    "corr": {"source", "ref", "retraction"} (corrections only),
 *    "parties": [prov_parties rows], "idents": [prov_party_identifiers rows],
 *    "lines": [{"line", "eq": {"field", "kind", "maker", "model",
 *               "readings": [{"field", "key_kind", "key", "loose", "raw",
 *                             "method", "mname", "completeness", "format",
 *                             "maker", "partial"}]} or null,
 *               "hop": every prov_hops column but item_id, status,
 *                      corrected_by and corrects}]}
 * Times are RFC 3339 with microseconds, UTC. Returns a malloc'd,
 * NUL-terminated text (length in *len) the caller frees, or NULL when memory
 * runs out or a string is not valid UTF-8 (the log holds only validated
 * records, so that means the event cannot be applied). */
char *tw_provrows_json(const tw_prov_event *e, uint64_t tx, size_t *len) TW_WUR;

/* A serial reading's method as the merge reasons name it: "plate",
 * "stamp", "etched_recovery", "document"; "" else. */
const char *tw_provrows_method_name(int method);

/* "seller", "buyer", "shipper", "carrier", "consignee", "agency"; "?" else. */
const char *tw_provrows_role_name(int role);

#endif
