/* tw_pg: asynchronous PostgreSQL (libpq 15) on a libevent loop.
 *
 * A tw_pg object owns one connection, opened and reopened by itself: a
 * non-blocking connect (PQconnectStart/PQconnectPoll), then pipeline mode,
 * in which many queries are in flight at once and their results come back
 * in order. When the connection fails or PostgreSQL restarts, it reconnects
 * with exponential backoff (with jitter), prepares every registered
 * statement and re-issues every LISTEN on the new connection before any of
 * your later queries run. Nothing you submitted is ever retried: you decide.
 *
 * Units of work, each answered by exactly one callback:
 *   - tw_pg_query: one statement (a registered prepared statement or SQL
 *     text), in its own implicit transaction.
 *   - tw_pg_batch: several statements as one transaction, all or nothing,
 *     with every statement's result (RETURNING rows) in the one callback.
 *   - tw_pg_copy, or a batch with a COPY step: bulk load with COPY FROM
 *     STDIN. COPY cannot run in pipeline mode, so these wait until the
 *     pipeline is drained, run alone outside it, and the pipeline resumes.
 *
 * Outcomes (tw_pg_kind) say what is known about the effect of the work:
 *   TW_PG_OK               done (a batch: committed).
 *   TW_PG_QUERY_ERROR      PostgreSQL rejected a statement (sqlstate,
 *                          message, failed_step); nothing of it was kept.
 *   TW_PG_NOT_CONNECTED    never sent: the connection was down when it was
 *                          submitted (or dropped before it could be sent).
 *                          Fail fast; safe to retry later.
 *   TW_PG_CONNECTION_LOST  sent, then the connection dropped before the
 *                          answer. A batch is known NOT committed: it never
 *                          asked for its commit, or PostgreSQL reported
 *                          ending the session before its commit point, or
 *                          an earlier job in the pipeline was so ended
 *                          (nothing after it ran). A single tw_pg_query
 *                          that writes autocommits: its effect is unknown;
 *                          reads may be retried freely. Use a batch for
 *                          writes whose outcome matters.
 *   TW_PG_OUTCOME_UNKNOWN  a batch (or copy) whose commit was requested
 *                          (the pipeline Sync, or COMMIT, was handed to
 *                          libpq) when the connection dropped without an
 *                          answer, or PostgreSQL ended the session at the
 *                          commit point: it may or may not have committed
 *                          (the library cannot tell a lost request from a
 *                          lost answer). Callers
 *                          retry only idempotent work (ingest keys every
 *                          record by (source, source_ref), so a retry is
 *                          reported "duplicate" if the first one landed).
 *   TW_PG_SHUTDOWN         tw_pg_free was called while it was pending; it
 *                          may or may not have run.
 *
 * Transactions in the pipeline: a batch is sent as its statements followed
 * by one Sync. PostgreSQL runs everything between two Syncs as one implicit
 * transaction, committed at the Sync, rolled back entirely if any statement
 * fails (the later ones are skipped: PGRES_PIPELINE_ABORTED). This is the
 * same all-or-nothing as BEGIN; ...; COMMIT, without its trap: after a
 * failed explicit BEGIN block the session would stay in an aborted
 * transaction, and the queries pipelined behind it would fail too. So do not
 * put BEGIN/COMMIT/ROLLBACK in queries or batches. Sequential batches (with
 * a COPY step) use BEGIN ... COMMIT explicitly and ROLLBACK on error.
 *
 * Threading and reentrancy: everything runs on the event_base's thread.
 * Callbacks are never called from inside the function that submits the work
 * (a failure found at submission is delivered on the next turn of the loop).
 * Callbacks may submit queries, batches, copies, and register statements and
 * listeners; they must not call tw_pg_free.
 *
 * Blocking: nothing blocks the loop, with two caveats of libpq's: a host
 * name in the connection string is resolved with the blocking system
 * resolver at each connection attempt (use a unix socket directory, an IP
 * address or hostaddr=), and PQfinish in tw_pg_free writes a Terminate
 * message (non-blocking socket, so it cannot hang).
 *
 * Timeouts: there is none per query on the client side, and a TCP peer
 * that vanishes is only noticed by TCP. Server-side limits go into every
 * connection's startup options (tw_pg_opts): idle_in_transaction_session_
 * timeout (on by default: a session idle inside a transaction holds back
 * the event log's horizon for the whole cluster) and statement_timeout
 * (off by default). Options in the connection string (options='-c ...') or
 * PGOPTIONS come after ours, so they win. For TCP put keepalives_idle=10
 * keepalives_interval=5 keepalives_count=3 tcp_user_timeout=30000 in the
 * connection string. A unix socket needs none of this: a server that stops
 * closes it.
 *
 * Logging goes through tw_log with the prefix "pg <name>:"; PostgreSQL
 * warnings are logged at warn, other notices at debug. */
#ifndef TW_PG_H
#define TW_PG_H

#include <libpq-fe.h>
#include <stddef.h>

struct event_base;

typedef struct tw_pg tw_pg;

typedef enum tw_pg_kind {
    TW_PG_OK = 0,
    TW_PG_QUERY_ERROR,
    TW_PG_NOT_CONNECTED,
    TW_PG_CONNECTION_LOST,
    TW_PG_OUTCOME_UNKNOWN,
    TW_PG_SHUTDOWN,
} tw_pg_kind;

/* "ok", "query error", "not connected", "connection lost", "outcome
 * unknown", "shutdown"; "?" for anything else. */
const char *tw_pg_kind_name(tw_pg_kind kind);

/* What a completion callback gets. Everything it points to is valid during
 * the callback only, except results the callback takes (below). */
typedef struct tw_pg_outcome {
    tw_pg_kind kind;
    /* SQLSTATE sent by PostgreSQL (five characters), or "" when there is
     * none (TW_PG_OK, and failures PostgreSQL did not report itself). */
    const char *sqlstate;
    /* Human-readable reason without a trailing newline; "" for TW_PG_OK. */
    const char *message;
    /* TW_PG_QUERY_ERROR: index of the failing statement (0 for
     * tw_pg_query), or nresults when the commit itself failed (e.g. a
     * deferred constraint). TW_PG_CONNECTION_LOST: the statement PostgreSQL
     * was running when it reported ending the session (sqlstate says why,
     * e.g. 57P01 for a shutdown), else -1. Otherwise -1. */
    int failed_step;
    /* PostgreSQL's error result when it sent one (for PQresultErrorField:
     * constraint name, detail, ...), else NULL. */
    const PGresult *error;
    /* One slot per statement (1 for tw_pg_query, n for a batch, 1 for
     * tw_pg_copy): the statement's result (PGRES_TUPLES_OK or
     * PGRES_COMMAND_OK; for a COPY step PQcmdTuples says how many rows), or
     * NULL when it has none (not run, or failed). On TW_PG_OK every slot is
     * set. After a failure, earlier slots may be set but their effects were
     * rolled back. Results are PQclear'd after the callback returns; to keep
     * one, take it by setting its slot to NULL (then PQclear it yourself). */
    PGresult **results;
    size_t nresults;
} tw_pg_outcome;

/* Completion callback: called exactly once per accepted query, batch or
 * copy, never from inside the call that submitted it. */
typedef void (*tw_pg_cb)(const tw_pg_outcome *o, void *arg);

/* Connection state callback: up = 1 when a connection is ready (queries are
 * accepted from now on), 0 when it was lost (queries fail fast with
 * TW_PG_NOT_CONNECTED until the next up). Called from the event loop; not
 * called by tw_pg_free. */
typedef void (*tw_pg_state_cb)(void *arg, int up);

/* Notification callback. For a NOTIFY on the channel: resync = 0, payload
 * the payload ("" when none). With resync = 1 (payload NULL): the LISTEN has
 * just become active on a connection, the first one or a new one after a
 * reconnect; notifications sent while there was no active LISTEN are lost,
 * so the consumer must re-read whatever the notifications stand for. */
typedef void (*tw_pg_notify_cb)(void *arg, const char *channel, const char *payload, int resync);

/* COPY data source for streaming loads: set *data and *len to the next
 * chunk and return 1 (the chunk must stay valid until the next call), or
 * return 0 at the end of the data, or -1 to abort the COPY (the statement
 * then fails with TW_PG_QUERY_ERROR and its transaction rolls back). Called
 * from the event loop as the socket drains. */
typedef int (*tw_pg_copy_source)(void *arg, const char **data, size_t *len);

typedef struct tw_pg_opts {
    const char *name;          /* for log lines, and the session's
                                  fallback_application_name; default "postgres" */
    tw_pg_state_cb on_state;   /* may be NULL */
    void *state_arg;
    int connect_timeout_ms;    /* per attempt (libpq's connect_timeout is not
                                  applied to PQconnectPoll); default 10000 */
    int backoff_min_ms;        /* first reconnect delay; default 100 */
    int backoff_max_ms;        /* delay doubles up to this; default 5000 */
    int max_in_flight;         /* queries/batches sent and unanswered;
                                  more wait in a queue; default 256 */
    int idle_in_xact_timeout_ms; /* the session's idle_in_transaction_session_
                                  timeout: PostgreSQL ends a session that sits
                                  idle inside a transaction this long; 0 =
                                  default 60000 (TW_PG_IDLE_IN_XACT_TIMEOUT_MS),
                                  -1 = leave the server's setting */
    int statement_timeout_ms;  /* the session's statement_timeout: 0 = leave
                                  the server's setting (default), > 0 = this */
    int jit_off;               /* 1: jit=off for the session. Short lookups
                                  whose plans PostgreSQL costs high (a generic
                                  plan over a large table) otherwise pay tens
                                  of milliseconds of JIT compilation per run
                                  for a statement that runs in one; 0 = the
                                  server's setting (default) */
} tw_pg_opts;

#define TW_PG_IDLE_IN_XACT_TIMEOUT_MS 60000

/* Create a connection object on `base` for the libpq connection string
 * `conninfo` (keyword=value or a postgresql:// URI; "" or NULL = libpq's
 * defaults and PG* environment variables). opts may be NULL (defaults); it
 * is copied (name included). The session settings of opts are sent as
 * "-c name=value" startup options ahead of the connection string's own
 * `options` (or, when it has none, PGOPTIONS), which therefore override
 * them; options that a pg_service.conf entry (service=) would supply are
 * replaced by these. The first connection attempt starts on the
 * next turn of the loop, so statements and listeners registered right after
 * this call are set up before anything else. Returns NULL with a reason in
 * err on an unparsable connection string or allocation failure. */
tw_pg *tw_pg_new(struct event_base *base, const char *conninfo, const tw_pg_opts *opts, char *err,
                 size_t errlen) __attribute__((warn_unused_result));

/* Close the connection and free everything. Every pending query, batch and
 * copy gets its callback from here with TW_PG_SHUTDOWN (those that had
 * already failed fast keep their TW_PG_NOT_CONNECTED); submissions from
 * those callbacks are refused (-1). Listener and state callbacks are not
 * called. Must not be called from inside a tw_pg callback. NULL is fine. */
void tw_pg_free(tw_pg *pg);

/* 1 when connected and accepting queries, else 0. */
int tw_pg_is_up(const tw_pg *pg);

/* How many connections have been established so far (for tests and
 * diagnostics: it grows by one at each reconnect). */
unsigned tw_pg_connections(const tw_pg *pg);

/* How many queries, batches and copies are pending: queued, in flight, or
 * failed and awaiting their callback. */
size_t tw_pg_pending(const tw_pg *pg);

/* Register a prepared statement: `sql` with $1..$nparams, under `name`
 * (both copied). `types` (may be NULL) gives nparams parameter type OIDs, 0
 * meaning "infer". It is prepared on every connection before any query
 * submitted afterwards; if the connection is up it is prepared now, ahead
 * of later queries. PostgreSQL's verdict comes later: a statement it
 * rejects is logged at error level and queries naming it fail with
 * SQLSTATE 26000. Returns 0, or -1 when the name is empty or already
 * registered, nparams is out of range (0..65535), allocation fails or the
 * object is being freed. */
int tw_pg_prepare(tw_pg *pg, const char *name, const char *sql, int nparams, const Oid *types)
    __attribute__((warn_unused_result));

/* Listen on `channel` (copied; used as an exact identifier, quoted on the
 * wire) and call cb for each notification on it, and with resync = 1 each
 * time the LISTEN becomes active (see tw_pg_notify_cb). Several listeners
 * may share a channel. LISTEN is issued now if connected, and again on
 * every new connection. A LISTEN that PostgreSQL rejects is logged at error
 * level. There is no unlisten: listeners live as long as the object.
 * Returns 0, or -1 on an empty channel, a NULL cb, allocation failure or
 * while being freed. */
int tw_pg_listen(tw_pg *pg, const char *channel, tw_pg_notify_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* One statement of a batch. stmt is the name of a registered prepared
 * statement, or else the text of ONE SQL statement. values[i] is parameter
 * i+1 (NULL = SQL NULL): text (NUL-terminated) when formats is NULL or
 * formats[i] == 0, else binary with lengths[i] bytes (PostgreSQL's binary
 * send format, e.g. int4 in network byte order). result_format: 0 text, 1
 * binary. Everything is copied at submission.
 *
 * A COPY step has copy = 1 and stmt "COPY table (cols) FROM STDIN [WITH
 * (FORMAT binary|csv ...)]"; its data is copy_data/copy_len (copied), or
 * when copy_source is set, streamed from copy_source(copy_source_arg, ...),
 * which must then stay usable until the batch's callback. */
typedef struct tw_pg_stmt {
    const char *stmt;
    int nparams;
    const char *const *values;
    const int *lengths;
    const int *formats;
    int result_format;
    int copy;
    const void *copy_data;
    size_t copy_len;
    tw_pg_copy_source copy_source;
    void *copy_source_arg;
} tw_pg_stmt;

/* Submit one statement (see tw_pg_stmt for stmt, parameters and formats;
 * copy steps are for tw_pg_batch and tw_pg_copy). It is pipelined: sent as
 * soon as possible without waiting for earlier answers, answered in
 * submission order. It runs in its own implicit transaction. cb (may be
 * NULL: the result is discarded) gets the outcome, results[0] on success.
 * When not connected, the callback comes on the next turn of the loop with
 * TW_PG_NOT_CONNECTED. Returns 0 when accepted (cb will be called exactly
 * once), or -1 without calling cb on invalid arguments (NULL or empty stmt,
 * nparams out of range, binary values without lengths, nparams different
 * from a registered statement's), allocation failure, or while the object
 * is being freed. */
int tw_pg_query(tw_pg *pg, const char *stmt, int nparams, const char *const *values,
                const int *lengths, const int *formats, int result_format, tw_pg_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* Submit n statements as one transaction: all committed or none. cb gets
 * every statement's result (results[i]) on TW_PG_OK. If a statement fails,
 * the later ones are skipped, nothing is committed, and cb gets
 * TW_PG_QUERY_ERROR with failed_step = its index; the session is clean for
 * whatever follows. Connection loss: see TW_PG_CONNECTION_LOST and
 * TW_PG_OUTCOME_UNKNOWN. Without COPY steps the batch is pipelined like
 * tw_pg_query; with one, it runs alone outside pipeline mode as BEGIN;
 * steps; COMMIT (ROLLBACK on error), after the work submitted before it and
 * before the work submitted after it. Returns 0 when accepted, or -1
 * without calling cb (invalid step, n == 0, allocation failure, while being
 * freed). */
int tw_pg_batch(tw_pg *pg, const tw_pg_stmt *stmts, size_t n, tw_pg_cb cb, void *arg)
    __attribute__((warn_unused_result));

/* Bulk load: run `sql` (a COPY ... FROM STDIN statement) with `data` (len
 * bytes, copied) in the format the statement names (text by default).
 * Same as a one-step tw_pg_batch with a COPY step: it runs in a
 * transaction; results[0] is the COPY's PGRES_COMMAND_OK result
 * (PQcmdTuples: rows loaded). Returns 0 when accepted, or -1 without
 * calling cb. */
int tw_pg_copy(tw_pg *pg, const char *sql, const void *data, size_t len, tw_pg_cb cb, void *arg)
    __attribute__((warn_unused_result));

#endif
