/* tidewatch-provenance internals: the log consumer that builds the
 * provenance model (apply.c) and the WorkerService (status.c). */
#ifndef TW_PROVENANCE_H
#define TW_PROVENANCE_H

#include <stdint.h>

#include "tw_arena.h"
#include "tw_consumer.h"
#include "tw_daemon.h"
#include "tw_pg.h"
#include "tw_provrows.h"
#include "tw_worker.h"

typedef struct tw_places tw_places;

/* The daemon's settings: the common ones first (see tw_daemon.h). */
typedef struct prov_config {
    tw_daemon_config common;
    char *data_dir;
    int64_t batch_max;
    int64_t poll_ms;
    int64_t statement_timeout_ms;
    int64_t idle_in_xact_timeout_ms;
    int64_t decode_memory;
    int rebuild;
    int reference_apply;
} prov_config;

#define PROV_CONSUMER "provenance"
#define PROV_SERVICE "tidewatch.v1.WorkerService"

typedef struct prov_fast prov_fast;

/* Prepared statements (registered by prov_start). */
#define PROV_ST_APPLY "prov_apply"
#define PROV_ST_READ "prov_read"
#define PROV_ST_MERGE_ROOTS "prov_merge_roots"
#define PROV_ST_SUMMARY "prov_summary"

typedef struct prov_service {
    tw_daemon *daemon;
    prov_config *cfg;
    tw_places *places; /* hubs only: nearest Channel-coast hub */
    tw_pg *pg;
    tw_consumer *consumer;
    tw_arena arena;    /* one event's decoding, reset per event */
    prov_fast *fast;   /* the default apply's state (fast.c) */
    int db_up;
    uint64_t skipped;  /* events that could not be decoded */
    tw_worker_consumer status_consumer; /* what GetStatus reports */
    tw_worker_status status;
} prov_service;

/* Load the hub table (data_dir/channel-hubs.csv) without the gazetteer.
 * Returns the table or NULL with a reason in err. */
tw_places *prov_load_hubs(const char *data_dir, char *err, size_t errlen) TW_WUR;

/* Create the connection and the consumer (and, with cfg->rebuild, ask for a
 * rebuild from the start of the log). Returns 0 or -1 (logged). */
int prov_start(prov_service *svc) TW_WUR;

/* Decode event e into *pe (in svc->arena, which is reset first). Returns 0,
 * or -1 when it cannot be decoded; with count, the event is then counted
 * and logged as skipped (prov_skipped). */
int prov_decode(prov_service *svc, const tw_consumer_event *e, tw_prov_event *pe,
                int count) TW_WUR;

/* Count and log an event that contributes nothing, and why. */
void prov_skipped(prov_service *svc, const tw_consumer_event *e, const char *why);

/* The reference apply (--reference-apply, and fast.c's corrections):
 * queue ev[0..n) as one prov_apply() call, one jsonb document per event
 * (events that cannot be decoded or encoded are skipped and counted).
 * Resets svc->arena. Returns 0, or -1 when memory runs out. */
int prov_apply_sql(prov_service *svc, const tw_consumer_event *ev, size_t n,
                   tw_consumer_writes *w) TW_WUR;

/* fast.c: the default apply (see there). prov_fast_new returns NULL when
 * memory runs out; prov_fast_register registers its statements on pg (0 or
 * -1); prepare and apply are the tw_consumer callbacks' bodies. */
prov_fast *prov_fast_new(void) TW_WUR;
void prov_fast_free(prov_fast *f);
int prov_fast_register(tw_pg *pg) TW_WUR;
int prov_fast_prepare(prov_service *svc, const tw_consumer_event *ev, size_t n,
                      tw_consumer_writes *reads) TW_WUR;
int prov_fast_apply(prov_service *svc, const tw_consumer_event *ev, size_t n,
                    const PGresult *const *reads, size_t nreads, tw_consumer_writes *w) TW_WUR;

/* Register WorkerService.GetStatus. Returns 0 or -1. */
int prov_register(prov_service *svc) TW_WUR;

/* Free the connection, then the consumer, the arena. Safe after a failed start. */
void prov_stop(prov_service *svc);

#endif
