/* tw_consumer: a consumer of the event log (provenance, alerts).
 *
 * A consumer has a name, which is its row in consumer_cursors (migration
 * 0002; row-level security of 0004 confines each consumer login to its own
 * row). It loops on a borrowed tw_pg connection:
 *
 *   1. read up to batch_max events after its cursor with events_after()
 *      (a plain read outside any write transaction: events are immutable,
 *      and events_after() reads only below the oldest running transaction,
 *      so a late commit is never skipped);
 *   2. hand them to the apply callback, which appends the derived writes to
 *      a tw_consumer_writes builder;
 *   3. run, in ONE transaction (tw_pg_batch): consumer_advance() (migration
 *      0005), which moves the cursor from where the batch was read to its
 *      last event and raises SQLSTATE TWC01 if the cursor is no longer
 *      there (another instance of the same consumer moved it), a NOTIFY on
 *      TW_CONSUMER_CURSOR_CHANNEL (for consumers downstream), then the
 *      derived writes. All commit together or none does, so a crash at any
 *      instant (SIGKILL included) loses or doubles nothing: a restarted
 *      consumer resumes from the committed cursor;
 *   4. go on at once while batches come back full; otherwise wait for a
 *      NOTIFY on tidewatch_events (ingest sends it after each commit) or
 *      the poll timer (the fallback: NOTIFY is lost while disconnected, and
 *      events held back by an open transaction produce no new NOTIFY).
 *
 * At start, and again after every reconnect (the LISTEN's resync) or
 * failed batch, it creates its cursor row if missing (INSERT ... ON
 * CONFLICT DO NOTHING) and reloads the committed cursor: a batch whose
 * outcome is unknown is then either in the database or re-read.
 *
 * Lag: every poll interval it asks consumer_lag() (0004, the same function
 * tw_horizon publishes cluster-wide from ingest) for its own row and sets
 *   tidewatch_consumer_cursor_lag_events{consumer}  committed events after
 *                                                   the cursor (exact up to
 *                                                   10,000, estimated from
 *                                                   the ids above, at most
 *                                                   lag_max_events; 0008)
 *   tidewatch_consumer_cursor_lag_seconds{consumer} age of the first one
 * plus the counters tidewatch_consumer_applied_events_total{consumer},
 * tidewatch_consumer_batches_total{consumer} and
 * tidewatch_consumer_conflicts_total{consumer} (batches refused because
 * another instance had moved the cursor) in the daemon's tw_metrics; and
 * tw_consumer_stats() returns the same figures.
 *
 * Lifetime: tw_pg has no UNLISTEN, so the consumer must outlive its pg's
 * callbacks: free the tw_pg first (its pending work is answered with
 * TW_PG_SHUTDOWN, which the consumer ignores), then the consumer.
 * Everything runs on the event_base's thread. */
#ifndef TW_CONSUMER_H
#define TW_CONSUMER_H

#include <stddef.h>
#include <stdint.h>

#include "tw_pg.h"

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

struct event_base;
typedef struct tw_metrics tw_metrics;
typedef struct tw_consumer tw_consumer;
typedef struct tw_consumer_writes tw_consumer_writes;

#define TW_CONSUMER_BATCH_MAX 1000
#define TW_CONSUMER_BATCH_LIMIT 100000 /* the most batch_max may be */
/* Every apply transaction also sends NOTIFY on this channel with the
 * consumer's name as payload (delivered at commit). */
#define TW_CONSUMER_CURSOR_CHANNEL "tidewatch_cursors"
#define TW_CONSUMER_POLL_MS 1000
#define TW_CONSUMER_LAG_MAX_EVENTS 1000000
/* SQLSTATE raised by consumer_advance() when the cursor has moved. */
#define TW_CONSUMER_SQLSTATE_MOVED "TWC01"

/* One event of a batch, decoded from events (migration 0002). Pointers are
 * valid during the apply callback only. */
typedef struct tw_consumer_event {
    uint64_t tx;              /* inserting transaction (xid8) */
    int64_t id;               /* events.id */
    int kind;                 /* 1 purchase, 2 shipment, 3 seizure, 4 correction */
    const char *source;       /* NUL-terminated */
    const char *source_ref;   /* NUL-terminated */
    int has_occurred_at;      /* 0: occurred_at is NULL */
    int64_t occurred_at_us;   /* Unix time, microseconds */
    int64_t received_at_us;   /* Unix time, microseconds */
    int64_t corrects;         /* the corrected event's id, 0 when none */
    const uint8_t *derived;   /* packed tidewatch.v1.DerivedRecord */
    size_t derived_len;
    const uint8_t *payload;   /* packed tidewatch.v1.Record as submitted */
    size_t payload_len;
} tw_consumer_event;

/* Apply callback: turn events[0..n) (in (tx, id) order, n >= 1) into
 * derived writes by appending statements to w (tw_consumer_writes_add);
 * appending none is fine (the cursor still moves). They run after the
 * cursor move in the same transaction. reads[0..nreads) are the results of
 * the statements the prepare callback asked for (see tw_consumer_opts;
 * NULL and 0 without one), valid during the call. The callback must not
 * block and must depend only on the events, on those reads and on the
 * database state its statements read (a replay must give the same
 * result). Return 0 to commit, or -1 to refuse the batch: nothing is
 * written, the cursor stays, and the same batch is offered again at the
 * next poll (logged as an error). */
typedef int (*tw_consumer_apply_fn)(void *arg, const tw_consumer_event *events, size_t n,
                                    const PGresult *const *reads, size_t nreads,
                                    tw_consumer_writes *w);

/* Prepare callback (optional): for events[0..n), append to `reads` the
 * read-only statements whose results apply needs (for instance the
 * existing rows a batch's keys name). They run as one transaction before
 * the apply callback, after the batch was read; as only one instance of a
 * consumer commits (its cursor check), what they see is what the batch's
 * writes will find. Appending none calls apply at once. Return 0, or -1 to
 * refuse the batch (as apply's -1). A failed read is retried like a failed
 * batch. */
typedef int (*tw_consumer_prepare_fn)(void *arg, const tw_consumer_event *events, size_t n,
                                      tw_consumer_writes *reads);

/* Called after a batch has committed (optional): n events applied, the
 * cursor is now (tx, id). */
typedef void (*tw_consumer_committed_fn)(void *arg, size_t n, uint64_t tx, int64_t id);

typedef struct tw_consumer_opts {
    const char *name;      /* the cursor row (copied); required, 1..63 bytes */
    /* Optional (copied, 1..63 bytes): another consumer this one never runs
     * ahead of (alerts after provenance). Reads stop at that consumer's
     * committed cursor (nothing while it has no row), and its commits wake
     * this one (NOTIFY on TW_CONSUMER_CURSOR_CHANNEL). This consumer's login
     * must be allowed to read that row (0004: alerts may read provenance's). */
    const char *upstream;
    int batch_max;         /* events per batch; default TW_CONSUMER_BATCH_MAX,
                              at most TW_CONSUMER_BATCH_LIMIT */
    int poll_ms;           /* fallback poll and lag interval; default TW_CONSUMER_POLL_MS */
    int64_t lag_max_events; /* lag counting stops here; default TW_CONSUMER_LAG_MAX_EVENTS */
    tw_metrics *metrics;   /* borrowed, may be NULL (no metrics) */
    tw_consumer_committed_fn on_committed; /* may be NULL */
    tw_consumer_prepare_fn prepare;        /* may be NULL */
} tw_consumer_opts;

typedef struct tw_consumer_stats {
    uint64_t tx;             /* the committed cursor as last known */
    int64_t id;
    int loaded;              /* 1 once the cursor has been read from the database */
    uint64_t applied_events; /* since start */
    uint64_t batches;
    uint64_t conflicts;      /* batches refused: another instance moved the cursor */
    uint64_t failures;       /* reads or batches that failed otherwise */
    int64_t lag_events;      /* from the last lag poll; -1 before the first */
    double lag_seconds;
} tw_consumer_stats;

/* Create and start a consumer on `pg` (borrowed; see the lifetime rule
 * above) and `base`. It registers two prepared statements named after the
 * consumer ("tw_consumer_read:<name>", "tw_consumer_advance:<name>") and a
 * LISTEN on tidewatch_events; the first load and read start when that
 * LISTEN is active. apply is required; arg goes to apply and on_committed.
 * Returns NULL with a reason in err on invalid options, a name already
 * registered on this pg, or allocation failure. */
tw_consumer *tw_consumer_new(struct event_base *base, tw_pg *pg, const tw_consumer_opts *opts,
                             tw_consumer_apply_fn apply, void *arg, char *err,
                             size_t errlen) TW_WUR;

/* Free the consumer (after tw_pg_free of its pg, see above). NULL is fine. */
void tw_consumer_free(tw_consumer *c);

/* Copy the current figures into *out. */
void tw_consumer_stats_get(const tw_consumer *c, tw_consumer_stats *out);

/* Read the log now (as a NOTIFY would), e.g. after the caller learnt of
 * new events otherwise. Harmless while a batch is in flight. */
void tw_consumer_wake(tw_consumer *c);

/* Rebuild from scratch: in ONE transaction, reset the cursor to the start
 * of the log (creating the row if missing) and run stmts[0..n) (e.g.
 * TRUNCATE of the derived tables; copied now, no COPY steps with a
 * copy_source). It runs as the consumer's next step, after any batch in
 * flight, and no batch is applied before it has committed; a try that
 * fails for want of a connection is retried at the next poll. cb (may be
 * NULL) gets the outcome once: TW_PG_OK (then consumption restarts from
 * the beginning) or TW_PG_QUERY_ERROR (nothing changed; consumption goes
 * on from the old cursor); it is not called if the pg is freed first.
 * Returns 0 when accepted, -1 on invalid
 * statements, allocation failure or a rebuild already pending. */
int tw_consumer_rebuild(tw_consumer *c, const tw_pg_stmt *stmts, size_t n, tw_pg_cb cb,
                        void *arg) TW_WUR;

/* Append one statement to the transaction being built (see tw_pg_stmt:
 * stmt, nparams, values, lengths, formats, result_format; a COPY step with
 * copy_data, not copy_source). Everything is copied. Returns 0, or -1 on
 * invalid arguments or allocation failure (the batch is then refused as if
 * the apply callback had returned -1). */
int tw_consumer_writes_add(tw_consumer_writes *w, const tw_pg_stmt *s) TW_WUR;

#endif
