/* tw_chain: chain assembly for one item (pure: no I/O, no database, no
 * globals). The query daemon reads an item's hops (every hop of every item
 * merged into it, active, corrected and retracted alike) and its readings
 * from the provenance tables, ties the parties into clusters
 * (lib/domain/tw_cluster), and asks this module for the chain: the hops in
 * the order things happened, which hops are independent reports of one
 * movement (corroboration), and the chain facts in plain words.
 *
 * Order. Hops are ordered by event time (tw_chain_hop.time: purchase time,
 * dispatch, seizure time), ties by event id then line; hops without an
 * event time come last, by event id (they cannot be placed, and a fact
 * says so). The order never depends on received_at or on the input order:
 * the same hops in any order give the same chain, so records arriving late
 * and out of order land in place.
 *
 * Status. Corrected and retracted hops (status != TW_CHAIN_ACTIVE) stay in
 * the ordered list, flagged, but take no part in facts, corroboration or
 * the last known custodian and place.
 *
 * Corroboration. Two active hops of the same kind, from different sources,
 * whose times are within opt->same_hop_seconds and whose parties do not
 * disagree (each of from/to is unknown on one side or the same cluster)
 * report one movement: the later-ordered one is folded into the earlier
 * (result hops[i].same_as), and the earlier counts its sources.
 *
 * Facts (each with the event ids it concerns; texts name dates, places and
 * parties, e.g. "custody gap: sold to Jan Peeters on 2026-03-02, next
 * shipped by Transports Lefort (Lille) on 2026-03-20"):
 *   custody_gap        the receiver (to) of one hop is not the sender
 *                      (from) of the next: different clusters, both known
 *   place_gap          a hop starts (origin, or the sale place) more than
 *                      opt->place_gap_km from where the previous one ended
 *   seized_before_sold a seizure ordered before a later sale or shipment
 *                      (anything after a seizure is suspicious)
 *   too_fast           two consecutive places whose distance over the time
 *                      between them exceeds opt->max_kmh (road travel)
 *   sold_twice         two sales by different sellers (clusters) with no
 *                      hop between them returning the item to the second
 *                      seller
 *   readings_disagree  the item has several distinct serial keys (plate and
 *                      stamp, counterfeit plate): listed with their methods
 *   no_time            a hop without an event time
 *   single_source      every active hop rests on one source only
 *   corroborated       a hop reported by several independent sources
 * Severity: TW_CHAIN_INFO, TW_CHAIN_WARNING (gaps), TW_CHAIN_INCONSISTENCY
 * (seized_before_sold, too_fast, sold_twice, readings_disagree). */
#ifndef TW_CHAIN_H
#define TW_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tw_arena.h"

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

#define TW_CHAIN_DEFAULT_SAME_HOP_SECONDS (2 * 86400)
#define TW_CHAIN_DEFAULT_PLACE_GAP_KM 50.0
#define TW_CHAIN_DEFAULT_MAX_KMH 130.0

typedef enum { TW_CHAIN_SALE = 1, TW_CHAIN_SHIPMENT = 2, TW_CHAIN_SEIZURE = 3 } tw_chain_hop_kind;
typedef enum { TW_CHAIN_ACTIVE = 0, TW_CHAIN_CORRECTED = 1, TW_CHAIN_RETRACTED = 2 } tw_chain_status;
typedef enum { TW_CHAIN_INFO = 0, TW_CHAIN_WARNING, TW_CHAIN_INCONSISTENCY } tw_chain_severity;

/* A party on a hop: cluster 0 means unknown (no party named). Two parties
 * are "the same" when their clusters are equal. */
typedef struct {
    int64_t cluster;
    const char *name; /* NULL or "" when none */
} tw_chain_party;

typedef struct {
    bool known;
    double lat, lon; /* degrees */
    const char *name; /* NULL or "" when none */
} tw_chain_place;

/* One hop as read. Strings are borrowed for the call. */
typedef struct {
    int64_t event_id;
    int line;
    int64_t item_id;
    tw_chain_hop_kind kind;
    tw_chain_status status;
    bool has_time;
    int64_t time;      /* Unix seconds: purchase time, dispatch, seizure time */
    bool has_delivered;
    int64_t delivered; /* shipments */
    tw_chain_party from, to; /* seller/shipper; buyer/consignee/agency */
    tw_chain_place origin;   /* shipments; unknown otherwise */
    tw_chain_place place;    /* sale place, destination, seizure place */
    const char *source;      /* the record's source */
    int grading_source;      /* Grading.SourceEvaluation */
    int grading_info;        /* Grading.InformationAssessment */
} tw_chain_hop;

/* One reading of the item's keys (every reading, for readings_disagree). */
typedef struct {
    const char *key;   /* normalised key */
    const char *raw;   /* as read */
    int method;        /* SerialReading.Method */
    int64_t event_id;
} tw_chain_reading;

typedef struct {
    int64_t same_hop_seconds; /* corroboration window */
    double place_gap_km;
    double max_kmh;
} tw_chain_options;

/* The assembled chain. Everything is in the caller's arena. */
typedef struct {
    size_t input;      /* index into the caller's hops */
    ptrdiff_t same_as; /* -1, or the index (in this ordered list) of the hop it corroborates */
    size_t sources;    /* independent sources for this hop (itself included); 0 when folded */
} tw_chain_entry;

typedef struct {
    const char *kind;  /* "custody_gap", ... (static strings) */
    tw_chain_severity severity;
    const char *text;  /* plain words, in the arena */
    const int64_t *event_ids;
    size_t n_event_ids;
} tw_chain_fact;

typedef struct {
    tw_chain_entry *order; /* n entries: every hop, in chain order */
    size_t n;
    tw_chain_fact *facts;
    size_t n_facts;
    ptrdiff_t last;        /* index in order of the last active hop, -1 when none */
} tw_chain_result;

/* Fill *opt with the defaults above. Cannot fail. */
void tw_chain_options_init(tw_chain_options *opt);

/* Assemble the chain of hops[0..n) with readings[0..nr) (either may be
 * empty). opt NULL means the defaults. Everything in *out is allocated in
 * `arena` (caller-owned; freeing or resetting it frees the result).
 * Returns 0, or -1 on invalid arguments (NULL pointers with n > 0, an
 * unknown kind or status, a non-finite coordinate) or allocation failure;
 * *out is then zeroed. */
int tw_chain_assemble(const tw_chain_hop *hops, size_t n, const tw_chain_reading *readings,
                      size_t nr, const tw_chain_options *opt, tw_arena *arena,
                      tw_chain_result *out) TW_WUR;

#endif
