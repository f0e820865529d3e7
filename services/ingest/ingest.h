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
    int64_t batch_bytes;
    int64_t flush_delay_ms;
    int64_t pipeline;
    int64_t stream_window;
    int64_t stream_window_bytes;
    int64_t connections;
    int64_t record_max;
    int64_t decode_memory;
    int64_t slice_bytes;
    int64_t response_issues;
    int64_t log_rejections;
    int64_t statement_timeout_ms;
    int64_t idle_in_xact_timeout_ms;
    int64_t horizon_interval_ms;
} ingest_config;

#define INGEST_DIGEST_LEN 32 /* SHA-256 */

/* One record on its way to the database: an event to append, or (when
 * rejected) a quarantine row. Allocated in one block by ingest_entry_new;
 * strings point into it. Owned by the writer from ingest_writer_add until it
 * hands it back through ingest_entry_done. */
typedef struct ingest_entry {
    struct ingest_entry *next;
    ingest_req *req;
    uint32_t index; /* position in the request or stream */
    size_t seq;     /* arrival order within its batch (writer's) */
    size_t bytes;   /* memory it holds: counted against the byte budgets */
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
    /* SHA-256 of the record re-encoded canonically (acceptable records) */
    uint8_t digest[INGEST_DIGEST_LEN];
    /* outcome, set by the writer */
    int outcome;                /* TIDEWATCH__V1__RECORD_RESULT__OUTCOME__* */
    int64_t event_id;
    int correction_target_missing;
    /* outcome REJECTED by the database itself (malloc'd reason), else NULL */
    char *refused;
    /* writer's: the digest stored under this reference, when known */
    int has_stored_digest;
    uint8_t stored_digest[INGEST_DIGEST_LEN];
    char buf[];
} ingest_entry;

#define INGEST_MAX_CONNECTIONS 8

typedef struct ingest_writer_opts {
    size_t batch_max;   /* records per group commit */
    size_t batch_bytes; /* entry bytes per group commit (one entry always fits) */
    int flush_delay_ms;
    int max_in_flight;  /* per connection */
} ingest_writer_opts;

typedef struct ingest_writer {
    struct event_base *base;
    tw_pg *pg[INGEST_MAX_CONNECTIONS]; /* batches go to the least busy one that is up */
    int in_flight_pg[INGEST_MAX_CONNECTIONS];
    size_t npg;
    tw_metrics *metrics;
    ingest_entry *head, *tail;
    size_t queued, queued_bytes;
    ingest_writer_opts opts;
    int in_flight;     /* all connections */
    struct event *timer;
    int stopping;
} ingest_writer;

/* Rate limit for the log lines about rejected records. */
typedef struct ingest_lograte {
    double tokens;
    int64_t last_ms;
    uint64_t suppressed;
} ingest_lograte;

typedef struct ingest_service {
    tw_daemon *daemon;
    ingest_config *cfg;
    tw_places *places;
    tw_pg *pg[INGEST_MAX_CONNECTIONS];
    size_t npg;
    int db_up; /* some connection is up */
    ingest_writer writer;
    size_t submit_max;    /* records per Submit: what an answer can always hold */
    ingest_lograte lograte;
    struct evp_md_st *sha256; /* EVP_MD: records' digests */
    struct evp_md_ctx_st *md_ctx;
} ingest_service;

/* Allocate an entry with room for its strings; NULL on ENOMEM. */
ingest_entry *ingest_entry_new(size_t extra);

/* Called by the writer once per entry with the gRPC status of the write
 * (TW_GRPC_OK: outcome and event_id are set; `refused` may say the
 * database refused this very record); takes ownership back and frees the
 * entry. */
void ingest_entry_done(ingest_entry *e, int status, const char *message);

/* Set up the writer on npg connections (borrowed; they must outlive the
 * writer's batches). Returns 0 or -1. */
int ingest_writer_init(ingest_writer *w, struct event_base *base, tw_pg *const *pg, size_t npg,
                       tw_metrics *metrics, const ingest_writer_opts *opts)
    __attribute__((warn_unused_result));

/* Queue an entry; it is written in the next group commit. */
void ingest_writer_add(ingest_writer *w, ingest_entry *e);

/* Fail what is still queued (UNAVAILABLE) and free the writer. Batches in
 * flight are answered when tw_pg_free runs their callbacks. */
void ingest_writer_free(ingest_writer *w);

/* Check the settings that depend on each other; 0, or -1 with a reason in
 * err. */
int ingest_config_check(const ingest_config *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Register Submit and SubmitStream (and set up what they share). Returns 0
 * or -1. */
int ingest_register(ingest_service *svc) __attribute__((warn_unused_result));

/* Free what ingest_register set up (safe if it failed or never ran). */
void ingest_service_cleanup(ingest_service *svc);

#endif
