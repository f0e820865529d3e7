/* tw_chainfmt: provenance answers (tidewatch.v1.ProvenanceService) rendered
 * for people and tools. Pure: it reads protobuf-c messages and writes text
 * to the one output it is given (a FILE * or a caller-owned growable
 * buffer); no other I/O, no globals.
 *
 * Formats:
 *   text     a readable timeline (GetChain), result tables (SearchItems,
 *            ListEvents), traces (TraceBack/TraceForward) and parties
 *            (GetParty). One line per hop: date (YYYY-MM-DD, UTC), what,
 *            who -> whom, where, corroboration, status. Markers:
 *              "~" before a corrected hop, "x" before a retracted one
 *              (and the words CORRECTED / RETRACTED at the end of the line);
 *              "[!!]" before an inconsistency, "[!]" before a warning
 *              (gaps), "[i]" before information.
 *   JSON     any message in protobuf's canonical JSON mapping (proto3):
 *            lowerCamelCase field names, fields at their default value
 *            left out, enums by name, 64-bit integers as decimal strings,
 *            google.protobuf.Timestamp as RFC 3339 UTC text, bytes as
 *            padded base64, non-finite doubles as "NaN"/"Infinity".
 *   DOT      a Graphviz digraph of a chain: parties as boxes (a place
 *            stands in, as an ellipse, for a party the hop does not name),
 *            hops as edges labelled with date, kind and place (corrected and
 *            retracted ones dashed and grey), the chain facts in a note.
 *   GeoJSON  a FeatureCollection (RFC 7946, coordinates [lon, lat]): per
 *            chain a LineString "route" through the places of its active
 *            hops in time order (a shipment's origin, then its destination),
 *            and one Point per hop that has a place with coordinates
 *            (properties: date, time, kind, from, to, carrier, place,
 *            status, eventId, itemId). Coordinates that are not finite or
 *            out of range are left off the map.
 * Strings that are not UTF-8 (protobuf-c does not check) come out with
 * U+FFFD in JSON and GeoJSON, and '?' in text and DOT. */
#ifndef TW_CHAINFMT_H
#define TW_CHAINFMT_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tidewatch/v1/provenance.pb-c.h"

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

/* A growable text buffer owned by the caller: zero it before first use and
 * release it with tw_fmt_buf_free. data is NUL-terminated whenever len > 0. */
typedef struct tw_fmt_buf {
    char *data;
    size_t len, cap;
} tw_fmt_buf;

void tw_fmt_buf_free(tw_fmt_buf *b);

/* Where a renderer writes: exactly one of file and buf is set. `failed`
 * becomes 1 on the first write error or allocation failure; later writes
 * are then ignored. */
typedef struct tw_fmt_out {
    FILE *file;
    tw_fmt_buf *buf;
    int failed;
} tw_fmt_out;

tw_fmt_out tw_fmt_to_file(FILE *f);
tw_fmt_out tw_fmt_to_buf(tw_fmt_buf *b);

/* printf into the output (sets failed on error). */
void tw_fmt_printf(tw_fmt_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- text ---------------------------------------------------------------- */

/* The renderers below return 0, or -1 when the output failed (a write error
 * or no memory; o->failed is set). NULL messages and NULL/empty fields are
 * fine: what is missing is said in words ("no date", "place unknown").
 * Strings from the answer are printed with control characters (C0, DEL,
 * C1: newlines, terminal escapes) turned into spaces, so a record cannot
 * break a line or drive the terminal. (They work on a cleaned copy of the
 * message: it is packed and unpacked once.) */

/* GetChain: per chain a header (kind, keys and readings, merges), the
 * timeline, the facts, the last known custodian and place, related items;
 * then the candidates for a partial reading ("probable link" marked). */
int tw_chainfmt_chain_text(tw_fmt_out *o, const Tidewatch__V1__GetChainResponse *r) TW_WUR;

/* SearchItems: one line per match (score, key, kind, maker, model, last
 * place, reason). */
int tw_chainfmt_search_text(tw_fmt_out *o, const Tidewatch__V1__SearchItemsResponse *r) TW_WUR;

/* TraceBack (forward = 0) or TraceForward (forward = 1): per item its
 * timeline (with the depth for forward traces), then unidentified line
 * items (bulk quantities). */
int tw_chainfmt_trace_text(tw_fmt_out *o, const Tidewatch__V1__TraceResponse *r,
                           int forward) TW_WUR;

/* GetParty: the party, its cluster's identities, the links that tied them
 * and their values, identifiers too common to link, and the hops. */
int tw_chainfmt_party_text(tw_fmt_out *o, const Tidewatch__V1__GetPartyResponse *r) TW_WUR;

/* ListEvents: one line per event (id, date, kind, source and reference,
 * keys). */
int tw_chainfmt_events_text(tw_fmt_out *o, const Tidewatch__V1__ListEventsResponse *r) TW_WUR;

/* One hop as one timeline line (no newline): exposed for tests and for
 * callers composing their own views. */
int tw_chainfmt_hop_line(tw_fmt_out *o, const Tidewatch__V1__Hop *h) TW_WUR;

/* ---- JSON, DOT, GeoJSON -------------------------------------------------- */

/* Any protobuf-c message in protobuf's JSON mapping (see the top). Returns a
 * new reference the caller json_decrefs, or NULL on allocation failure. A
 * NULL message gives an empty object. */
json_t *tw_chainfmt_json(const ProtobufCMessage *m) TW_WUR;

/* Write a JSON value indented by 2, keys in insertion order, numbers with
 * 15 significant digits (9.99 stays 9.99; any decimal of up to 15 digits
 * comes back exactly), followed by a newline. Does not take the reference.
 * Returns 0 or -1. */
int tw_chainfmt_write_json(tw_fmt_out *o, const json_t *j) TW_WUR;

/* A Graphviz digraph for every chain of the response (one cluster per
 * chain when there are several; an empty graph with a note when none).
 * Every label is quoted and escaped (\" \\ and control characters). */
int tw_chainfmt_chain_dot(tw_fmt_out *o, const Tidewatch__V1__GetChainResponse *r) TW_WUR;

/* The GeoJSON FeatureCollection of the response's chains (see the top);
 * a new reference, or NULL on allocation failure. */
json_t *tw_chainfmt_chain_geojson(const Tidewatch__V1__GetChainResponse *r) TW_WUR;

/* ---- pieces ------------------------------------------------------------- */

/* "YYYY-MM-DD" (UTC) of a timestamp into out (at least 11 bytes); "no date"
 * for NULL or the zero time. Returns out. */
const char *tw_chainfmt_date(const Google__Protobuf__Timestamp *t, char out[16]);

/* A source's grading in UK 3x5x2 order: source evaluation digit, then the
 * information letter, then the handling code ("1B", "2AP", "1BC"); "?" for
 * an unknown part, "" when the grading is NULL or wholly unspecified. */
const char *tw_chainfmt_grading(const Tidewatch__V1__Grading *g, char out[8]);

#endif
