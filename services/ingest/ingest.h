/* tidewatch-ingest internals: the IngestService handlers (submit.c) and the
 * group-commit writer (writer.c) they hand records to. */
#ifndef TW_INGEST_H
#define TW_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "tw_daemon.h"
#include "tw_pg.h"

struct event;
typedef struct tw_places tw_places;
typedef struct ingest_req ingest_req;

/* The daemon's settings: the common ones first (see tw_daemon.h). */
typedef struct ingest_config {
    tw_daemon_config common;
    char *data_dir;
    int64_t batch_max;
    int64_t flush_delay_ms;
    int64_t pipeline;
    int64_t stream_window;
    int64_t connections;
} ingest_config;

/* One record on its way to the database: an event to append, or (when
 * rejected) a quarantine row. Allocated in one block by ingest_entry_new;
 * strings point into it. Owned by the writer from ingest_writer_add until it
 * hands it back through ingest_entry_done. */
typedef struct ingest_entry {
    struct ingest_entry *next;
    ingest_req *req;
    uint32_t index; /* position in the request or stream */
    size_t seq;     /* arrival order within its batch (writer's) */
    int rejected;
    int16_t kind;
    int has_time;
    int64_t occurred_at;
    const char *source, *source_ref;
    const char *csource, *cref; /* the corrected record, for corrections */
    const char *skeys, *hkeys;  /* space-separated serial / hull keys */
    /* events: packed tidewatch.v1.DerivedRecord; quarantine: errors JSON */
    const uint8_t *doc;
    size_t doc_len;
    const uint8_t *payload;
    size_t payload_len;
    /* outcome, set by the writer */
    int outcome;                /* TIDEWATCH__V1__RECORD_RESULT__OUTCOME__* */
    int64_t event_id;
    int correction_target_missing;
    char buf[];
} ingest_entry;

#define INGEST_MAX_CONNECTIONS 8

typedef struct ingest_writer {
    struct event_base *base;
    tw_pg *pg[INGEST_MAX_CONNECTIONS]; /* batches go to the least busy one that is up */
    int in_flight_pg[INGEST_MAX_CONNECTIONS];
    size_t npg;
    tw_metrics *metrics;
    ingest_entry *head, *tail;
    size_t queued;
    size_t batch_max;
    int flush_delay_ms;
    int max_in_flight; /* per connection */
    int in_flight;     /* all connections */
    struct event *timer;
    int stopping;
} ingest_writer;

typedef struct ingest_service {
    tw_daemon *daemon;
    ingest_config *cfg;
    tw_places *places;
    tw_pg *pg[INGEST_MAX_CONNECTIONS];
    size_t npg;
    int db_up; /* some connection is up */
    ingest_writer writer;
    size_t stream_window; /* records a stream may have outstanding */
} ingest_service;

/* Allocate an entry with room for its strings; NULL on ENOMEM. */
ingest_entry *ingest_entry_new(size_t extra);

/* Called by the writer once per entry with the gRPC status of the write
 * (TW_GRPC_OK: outcome and event_id are set); takes ownership back and
 * frees the entry. */
void ingest_entry_done(ingest_entry *e, int status, const char *message);

/* Set up the writer on npg connections (borrowed; they must outlive the
 * writer's batches). Returns 0 or -1. */
int ingest_writer_init(ingest_writer *w, struct event_base *base, tw_pg *const *pg, size_t npg,
                       tw_metrics *metrics, size_t batch_max, int flush_delay_ms,
                       int max_in_flight) __attribute__((warn_unused_result));

/* Queue an entry; it is written in the next group commit. */
void ingest_writer_add(ingest_writer *w, ingest_entry *e);

/* Fail what is still queued (UNAVAILABLE) and free the writer. Batches in
 * flight are answered when tw_pg_free runs their callbacks. */
void ingest_writer_free(ingest_writer *w);

/* Register Submit and SubmitStream. */
int ingest_register(ingest_service *svc) __attribute__((warn_unused_result));

#endif
