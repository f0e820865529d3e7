/* tw_sim: a deterministic scenario simulator (issue 8) for the alert
 * rules' benchmark, demos and tests: the legitimate trade in outboard
 * engines and boats, several kinds of smuggling network (supply-chain.md),
 * and the mess of real data, as tidewatch.v1.Record messages in the order
 * they would ARRIVE, with the ground truth.
 *
 * Pure: its own PRNG (splitmix64 seeding xoshiro256**), no libc rand, no
 * clock, no globals, no I/O: the same parameters give the same records byte
 * for byte and the same truth. Times in the records are event times between
 * start and start + days (late records arrive after that); nothing depends
 * on the current time, so a scenario whose days reach past "now" would be
 * rejected by ingest ("in_future"): choose the start accordingly.
 *
 * What a scenario holds (scale 1: a few thousand records; scale S
 * multiplies dealers, buyers and networks by S):
 *  - legitimate trade: importers/distributors (companies with VAT numbers)
 *    shipping stock to dealers in FR, DE, NL, BE and the UK, some of them
 *    coastal (Boulogne-sur-Mer, Calais, Dunkerque, Étaples, Ostend ...);
 *    dealers selling single engines and boats (sometimes a pair) to leisure
 *    buyers who live near them;
 *  - networks, a few of each kind: "balkan_import" (a consignment from
 *    Istanbul through Kapitan Andreevo to a German transit town, storage at
 *    a farm near Osnabrück or Lotte, vans through NL/BE), "buyer_ring"
 *    (private buyers sharing a phone, e-mail or address, each buying 1-3
 *    items from several dealers within weeks), "bulk_cash" (one buyer, many
 *    items, cash), "front_company" (a new company with a VAT number and no
 *    history buying in bulk from an importer); all end with vans (vehicle
 *    registrations) to inland staging towns (Lille, Saint-Omer, Arras) or
 *    the coast, and seizures (at staging or on beaches) or launches
 *    (Seizure with LaunchInfo) after the flow; some items are never caught;
 *  - mess: partial serials with '?', ground-off serials (ILLEGIBLE on the
 *    seizure, then the seizing agency's correction with ETCHED_RECOVERY
 *    readings), OCR confusions (O/0, I/1, S/5, B/8), counterfeit plates (a
 *    PLATE reading differing from the STAMP), exact duplicate submissions,
 *    corrections (replacements and retractions), late and out-of-order
 *    records, and records ingest must reject (some resubmitted fixed under
 *    the same reference).
 *
 * Truth (JSON, see tw_sim_run): per network item its keys as
 * prov_item_keys holds them (kind, strict key, canonical maker, partial),
 * its network, the cluster keys of the parties that held it
 * ("phone:+33...", as tw_ar_party_key names clusters), its consignment
 * references, its fate and warn_by (the event time of its seizure or
 * launch, null when never caught); the networks and their parties; the
 * legitimate coastal trade (records, items, consignments, cluster keys) to
 * count alerts on; the expected outcome counts. */
#ifndef TW_SIM_H
#define TW_SIM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

/* 2026-03-01T00:00:00Z, the default start. */
#define TW_SIM_DEFAULT_START 1772323200
#define TW_SIM_DEFAULT_DAYS 120
#define TW_SIM_MAX_DAYS 3650
#define TW_SIM_MAX_SCALE 1000

typedef struct tw_sim_params {
    uint64_t seed;
    int64_t start_s; /* 0: TW_SIM_DEFAULT_START */
    int days;        /* 0: TW_SIM_DEFAULT_DAYS; at least 60 otherwise */
    int scale;       /* 0: 1 */
} tw_sim_params;

typedef enum {
    TW_SIM_ACCEPTED = 1,
    TW_SIM_DUPLICATE = 2,
    TW_SIM_REJECTED = 3,
} tw_sim_expect;

/* One record, as it arrives. Everything is borrowed for the callback. */
typedef struct tw_sim_record {
    size_t index;             /* 0, 1, ... in arrival order */
    const uint8_t *data;      /* the packed tidewatch.v1.Record */
    size_t len;
    const char *source;       /* "" when the record has none (a rejection) */
    const char *source_ref;
    tw_sim_expect expect;     /* what ingest must answer */
    const char *why;          /* rejections: the defect ("bad_country", ...), else "" */
    int64_t event_s;          /* the record's own time (purchase, dispatch, seizure) */
    int64_t arrival_s;        /* when it is submitted in the simulated world */
    int network;              /* 1.. for a network's record, 0 legitimate trade */
    int coastal;              /* legitimate trade with a coastal dealer */
} tw_sim_record;

/* Called for each record in arrival order; a non-zero return stops the run
 * (tw_sim_run then returns that value). */
typedef int (*tw_sim_emit_fn)(void *arg, const tw_sim_record *r);

/* Fill in the defaults of p (0 fields) and check it. Returns 0, or -1 with
 * the reason in err (days under 60 or over TW_SIM_MAX_DAYS, scale over
 * TW_SIM_MAX_SCALE, start before 1990). */
int tw_sim_params_check(tw_sim_params *p, char *err, size_t errlen) TW_WUR;

/* Generate the scenario of *p (checked with tw_sim_params_check first),
 * calling emit for every record in arrival order. When truth is not NULL,
 * *truth receives the ground truth (a new JSON object the caller
 * json_decrefs; keys in a fixed order, so json_dumps gives the same text
 * for the same parameters). Returns 0; -1 on bad parameters or when memory
 * ran out (err says which; *truth is then NULL); or emit's non-zero value
 * (*truth NULL). Every allocation is released before it returns. */
int tw_sim_run(const tw_sim_params *p, tw_sim_emit_fn emit, void *arg, json_t **truth, char *err,
               size_t errlen) TW_WUR;

/* "accepted", "duplicate", "rejected". */
const char *tw_sim_expect_name(tw_sim_expect e);

#endif
