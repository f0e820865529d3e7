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
 * event time come last, by event id then line (they cannot be placed, and
 * a fact says so). Hops still equal on all of these (only possible when
 * the caller passes one row twice) are ordered by their other fields, and
 * only hops equal in every field by their input position, so the order
 * never depends on received_at or on the input order: the same hops in any
 * order give the same chain, so records arriving late and out of order
 * land in place. O(n log n).
 *
 * Status. Corrected and retracted hops (status != TW_CHAIN_ACTIVE) stay in
 * the ordered list, flagged, but take no part in facts, corroboration or
 * the last known custodian and place: they are never folded, never fold
 * another hop, and have sources 1 (themselves). A correction's replacement
 * hop is an ordinary active hop and takes their place.
 *
 * Corroboration. Two active hops of the same kind, from different sources,
 * whose times are within opt->same_hop_seconds and whose parties do not
 * disagree (each of from/to is unknown on one side or the same cluster)
 * report one movement: the later-ordered one is folded into the earlier
 * (result order[i].same_as), and the earlier counts its sources.
 * Precisely, in chain order each active hop with a time is folded into the
 * earliest-ordered earlier "movement" (an active, timed, unfolded hop) that
 *   - has the same kind and a time at most same_hop_seconds before it,
 *   - has parties that do not disagree with the movement's parties, where
 *     the movement's from (to) is the first known one among the movement
 *     and the hops already folded into it (so every member agrees),
 *   - has no member (itself or a hop folded into it) with the same source
 *     (NULL and "" are one source, "");
 * otherwise it is a movement itself. A movement's sources is 1 + the hops
 * folded into it (all of distinct sources); a folded hop has sources 0.
 * Hops without a time never fold and are never folded into. At most
 * TW_CHAIN_FOLD_SCAN earlier hops are examined per hop (a bound for
 * thousands of hops at one instant; the result stays deterministic).
 *
 * Movements and what they say. Facts are computed over the movements with
 * a time, in chain order ("consecutive" means consecutive movements:
 * corrected, retracted, folded and untimed hops are skipped). A movement's
 * from, to, origin and place are its own, or, where its own is unknown,
 * the first known one among the hops folded into it (in chain order).
 * A party is known when its cluster is not 0. Where a movement starts:
 * its origin for a shipment, its place for a sale or a seizure. Where it
 * ends: its place (sale place, destination, seizure place).
 *
 * Facts (each with the event ids it concerns; texts name dates, places and
 * parties, e.g. "custody gap: sold to Jan Peeters on 2026-03-02, next
 * shipped by Transports Lefort (Lille) on 2026-03-20"):
 *   custody_gap        the receiver (to) of one hop is not the sender
 *                      (from) of the next: different clusters, both known
 *                      (consecutive movements; an unknown side asserts
 *                      nothing). A shipment is no gap when its shipper is
 *                      the previous movement's sender (a seller shipping
 *                      what it sold) or its consignee is the previous
 *                      movement's receiver (a delivery to the one who holds
 *                      it already). Event ids: the two movements. When
 *                      the two are different clusters but bear the same
 *                      name (blanks and ASCII case aside), nothing shows
 *                      they are one party or two: the fact is INFO and
 *                      says "X both times, but no identifier or address
 *                      ties the two records".
 *   place_gap          a hop starts (origin, or the sale place) more than
 *                      opt->place_gap_km from where the previous one ended
 *                      (consecutive movements, both places known).
 *                      Event ids: the two movements.
 *   seized_before_sold a seizure ordered before a later sale or shipment
 *                      (anything after a seizure is suspicious). One fact
 *                      per seizure movement followed by any sale or
 *                      shipment movement; event ids: the seizure and the
 *                      first such movement after it (the text counts the
 *                      others).
 *   too_fast           two consecutive places whose distance over the time
 *                      between them exceeds opt->max_kmh (road travel).
 *                      Same pair of places as place_gap (tw_haversine_km);
 *                      the time is from the end of the previous movement
 *                      (its delivery time when it has one not before its
 *                      own time and not after the next movement's time;
 *                      else its event time) to the next movement's time.
 *                      Distances of TW_PLACE_SAME_KM (5 km, one place) or
 *                      less are never too fast; a time difference of 0
 *                      with a distance above opt->place_gap_km is.
 *   sold_twice         two sales by different sellers (clusters) with no
 *                      hop between them returning the item to the second
 *                      seller: compared are each sale movement with a
 *                      known seller and the previous one with a known
 *                      seller; no movement from the first (included) to
 *                      the second (excluded) has the second seller as its
 *                      "to".
 *   readings_disagree  the item has several distinct serial keys (plate and
 *                      stamp, counterfeit plate): listed with their methods
 *                      ("plate reads 6E5X1016523, stamp reads
 *                      6E5X1016532"). Readings with a NULL or empty key, or
 *                      a key holding '?' or '*' (partial readings are
 *                      candidates, not disagreements) are ignored. Event
 *                      ids: every event with a counted reading, ascending.
 *   no_time            a hop without an event time: one fact per active
 *                      hop without a time.
 *   single_source      every active hop rests on one source only: one fact
 *                      when there are movements and none is corroborated
 *                      (event ids: every active hop's, ascending, unique).
 *   corroborated       a hop reported by several independent sources: one
 *                      fact per movement with sources > 1, naming the
 *                      sources and their grading ("1A"); event ids: the
 *                      movement and its folded hops, in chain order.
 *   last_known         the last known custodian and place (below), when
 *                      there is a last hop.
 * Severity: TW_CHAIN_INFO (corroborated, single_source, last_known),
 * TW_CHAIN_WARNING (gaps: custody_gap, place_gap, no_time),
 * TW_CHAIN_INCONSISTENCY (seized_before_sold, too_fast, sold_twice,
 * readings_disagree).
 * Facts are ordered by severity (inconsistencies first), then by the chain
 * position of the hop they are attached to (the later hop of a pair, the
 * seizure, the corroborated movement; readings_disagree before every hop,
 * single_source and last_known after), then by kind in the order above.
 *
 * Last. result.last is the last movement (the latest active, timed,
 * unfolded hop); when no active hop has a time, the last active hop in
 * order (the highest event id); -1 when no hop is active. The last known
 * custodian is that movement's "to" (cluster 0 and name NULL when unknown:
 * an unknown buyer means nobody knows who holds it). The last known place
 * is the end place of the latest movement that has one (known coordinates
 * or at least a name), or else its origin (a shipment seen leaving),
 * searching back from the last; last_place_at says which hop gave it.
 *
 * Texts. Dates are YYYY-MM-DD in UTC. Party names and place names are
 * copied as valid UTF-8 (invalid bytes become '?', control characters
 * spaces), each cut to TW_CHAIN_NAME_MAX bytes, the whole text to
 * TW_CHAIN_TEXT_MAX bytes (NUL included), a cut marked "...". A party
 * without a name is "party #<cluster>", a place without a name its
 * coordinates. Costs: O(n log n + n * min(W, TW_CHAIN_FOLD_SCAN) + nr log
 * nr), W the hops within one corroboration window. */
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

/* Longest fact text, NUL included (bytes). */
#define TW_CHAIN_TEXT_MAX 1024
/* Longest party or place name quoted in a fact (bytes). */
#define TW_CHAIN_NAME_MAX 80
/* Most earlier hops examined when looking for a movement to fold into. */
#define TW_CHAIN_FOLD_SCAN 1024

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

/* Valid options: same_hop_seconds >= 0 (0: only hops at the same
 * instant fold), place_gap_km >= 0 (INFINITY: no place gaps), max_kmh > 0
 * (INFINITY: only the zero-time rule of too_fast). NaN is invalid. */
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
    /* The last known custodian and place (see "Last" above); names copied
     * into the arena as given (NULL when none). */
    tw_chain_party last_custodian;
    tw_chain_place last_place;
    ptrdiff_t last_place_at; /* index in order of the hop that gave last_place, -1 */
} tw_chain_result;

/* "info", "warning", "inconsistency" (the proto's ChainFact.severity);
 * "unknown" out of range. */
const char *tw_chain_severity_name(tw_chain_severity s);

/* Fill *opt with the defaults above. Cannot fail. */
void tw_chain_options_init(tw_chain_options *opt);

/* Assemble the chain of hops[0..n) with readings[0..nr) (either may be
 * empty). opt NULL means the defaults. Everything in *out is allocated in
 * `arena` (caller-owned; freeing or resetting it frees the result).
 * Returns 0, or -1 on invalid arguments (NULL pointers with n > 0, an
 * unknown kind or status, a non-finite coordinate of a known place,
 * invalid options, arena NULL) or allocation failure; *out is then zeroed
 * (out NULL: just -1). Temporary memory (O(n + nr)) is taken with malloc
 * and released before returning. Input strings are not kept. */
int tw_chain_assemble(const tw_chain_hop *hops, size_t n, const tw_chain_reading *readings,
                      size_t nr, const tw_chain_options *opt, tw_arena *arena,
                      tw_chain_result *out) TW_WUR;

#endif
