/* tidewatch-query internals: tidewatch.v1.ProvenanceService and
 * tidewatch.v1.AlertService.
 *
 *   main.c     settings, the connection pool, health
 *   qcall.c    one call's life: decoding, SQL on the pool, the audit row,
 *              the answer; database errors to gRPC statuses; page tokens
 *   sql.c      every statement (prepared by name on each connection)
 *   qrows.c    rows to messages: items (keys, readings, merges), hops,
 *              places, parties
 *   qchain.c   the adapter to lib/domain: party clusters (tw_cluster) and
 *              chain assembly (tw_chain)
 *   chain.c    GetChain
 *   search.c   SearchItems and ListEvents
 *   party.c    GetParty, TraceBack, TraceForward
 *   alerts.c   ListAlerts, GetAlert, AcknowledgeAlert, CloseAlert; alert rows
 *              to messages
 *   hubs.c     ListHubs, PutHub, SetHubEnabled
 *   watch.c    WatchAlerts (a server stream fed from the alerts table on
 *              NOTIFY tidewatch_alerts and a fallback poll)
 *
 * Every call gets a qcall with its own arena (the request, the answer and
 * every intermediate row live there, freed at once when the call ends).
 * SQL goes through tw_pg with parameters only, as one batch per round trip
 * on the least busy connection of the pool, so a slow call holds one
 * connection's pipeline at most, and PostgreSQL's statement_timeout (a
 * setting) ends it: DEADLINE_EXCEEDED with a message saying so. */
#ifndef TW_QUERY_H
#define TW_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "tidewatch/v1/alerts.pb-c.h"
#include "tidewatch/v1/provenance.pb-c.h"
#include "tw_arena.h"
#include "tw_daemon.h"
#include "tw_pg.h"

#define QUERY_MAX_CONNECTIONS 16
#define QUERY_SERVICE "tidewatch.v1.ProvenanceService"
#define QUERY_ALERT_SERVICE "tidewatch.v1.AlertService"

/* The daemon's settings: the common ones first (see tw_daemon.h). */
typedef struct query_config {
    tw_daemon_config common;
    int64_t connections;
    int64_t statement_timeout_ms;
    int64_t idle_in_xact_timeout_ms;
    int64_t max_hops;
    int64_t max_chains;
    int64_t page_max;
    int64_t max_candidates;
    int64_t candidate_scan;
    int64_t max_related;
    int64_t cluster_parties;
    int64_t trace_depth;
    int64_t trace_items;
    int64_t request_memory;
    char *page_token_key;
    char *audit_database_url;
    int64_t audit_batch; /* audit rows per INSERT at most */
    int64_t audit_queue; /* calls waiting for their audit row at most */
    int64_t alert_history;  /* history rows per GetAlert */
    int64_t note_max;       /* bytes of a note (alerts, hubs) */
    int64_t by_max;         /* bytes of "by" */
    int64_t watch_max;      /* WatchAlerts calls at once */
    int64_t watch_page;     /* rows per watcher read */
    int64_t watch_buffer;   /* bytes queued per watcher before it stops reading */
    int64_t watch_poll_ms;  /* fallback poll */
} query_config;

#define QUERY_MAX_METHODS 24

typedef struct query_service query_service;
typedef struct qcall qcall;

typedef struct query_method {
    const char *path;
    const char *name; /* "GetChain" */
    const ProtobufCMessageDescriptor *request;
    void (*handle)(qcall *q);
} query_method;

/* What a registered method's callbacks get as their argument. */
typedef struct query_bound {
    query_service *svc;
    const query_method *m;
} query_bound;

struct query_service {
    tw_daemon *daemon;
    query_config *cfg;
    tw_pg *pg[QUERY_MAX_CONNECTIONS];
    size_t npg;
    /* Where audit rows go: a connection of their own, to audit_database_url
     * when set (reads from a standby, audit rows to the primary), else to
     * database_url. NULL once freed at shutdown (rows then fail). */
    tw_pg *audit_pg;
    /* Audit rows of concurrent calls go in one INSERT (qcall.c): while one
     * is in flight, the calls that end meanwhile wait here, in order, and
     * the next INSERT takes them all (audit_batch at most). */
    qcall *audit_head, *audit_tail;
    size_t audit_waiting;   /* calls in the list */
    struct qaudit_flight *audit_flight; /* the INSERT in flight, or NULL */
    int db_up;
    query_bound bound[QUERY_MAX_METHODS];
    unsigned char token_key[32]; /* HMAC key of page tokens */
    size_t token_key_len;
    struct qwatch *watch; /* WatchAlerts (watch.c) */
};

/* Called with a batch's outcome, which is TW_PG_OK (failures are answered
 * by qcall itself) and the call still alive. */
typedef void (*qcall_step)(qcall *q, const tw_pg_outcome *o);

struct qcall {
    query_service *svc;
    const query_method *m;
    tw_grpc_call *call; /* NULL once cancelled or answered */
    tw_arena arena;
    char *peer;
    char *args_json;
    struct timespec start;
    void *req; /* the decoded request (in the arena) */
    int pending; /* batches in flight */
    int auditing; /* waiting for its audit row (queued or in flight) */
    int cancelled;
    qcall *audit_next; /* in the service's audit list */
    int64_t audit_us;  /* duration as audited (microseconds) */
    qcall_step next;
    int skip_first; /* the batch in flight began with qcall_sql_generic's SET */
    void *state; /* the method's own (in the arena) */
    int *hop_cols; /* qrows_hop's column numbers of hop_cols_for (qrows.c) */
    const PGresult *hop_cols_for;
    void (*cleanup)(qcall *q); /* frees what state holds outside the arena */
    /* Called first when the client cancels (streams stop their work). */
    void (*on_cancel)(qcall *q);
    /* When set, a statement PostgreSQL rejects (TW_PG_QUERY_ERROR) goes
     * here first: it returns 1 when it answered the call (mapping its
     * SQLSTATE), 0 for the generic answer. */
    int (*on_query_error)(qcall *q, const tw_pg_outcome *o);
    /* the answer */
    int status;
    char *message;
    uint8_t *resp;
    size_t resp_len;
    long count;
};

/* ---- qcall.c ---- */

/* Register the methods of tidewatch.v1.ProvenanceService. Returns 0 or -1. */
int query_register(query_service *svc) __attribute__((warn_unused_result));

/* Calls whose audit rows are in the INSERT in flight (0 when none is). */
size_t query_audit_in_flight(const query_service *svc);

/* Run n statements as one batch on the least busy connection; `next` gets
 * the outcome when it is OK and the call is still alive. Parameters are
 * copied at submission. Failures are answered here (UNAVAILABLE when the
 * database is away, DEADLINE_EXCEEDED when the statement timeout ended a
 * statement, INTERNAL otherwise). */
void qcall_sql(qcall *q, const tw_pg_stmt *stmts, size_t n, qcall_step next);

/* As qcall_sql, with generic plans for this batch only (plan_cache_mode set
 * for its transaction): each statement is planned once per connection
 * instead of at every call. For statements that look rows up by keys and
 * id arrays, whose best plan does not depend on the values (GetChain's:
 * re-planning cost about 5 ms a call, more than running them); never for
 * LIKE and trigram searches, whose plans do. `next` sees the results of
 * stmts only, as with qcall_sql. */
void qcall_sql_generic(qcall *q, const tw_pg_stmt *stmts, size_t n, qcall_step next);

/* A one-statement convenience: text parameters (NULL = SQL NULL). */
void qcall_sql1(qcall *q, const char *sql, int nparams, const char *const *values,
                qcall_step next);

/* Answer OK with `resp` (packed into the arena) and `count` results;
 * the audit row is written first. */
void qcall_reply(qcall *q, const ProtobufCMessage *resp, long count);

/* Answer an error (message printf-style); the audit row is written first. */
void qcall_fail(qcall *q, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Page tokens: opaque to clients, an HMAC-SHA-256 (key: the
 * page_token_key setting, else random per process) over the position and
 * `binding` (the request's filters), so a token from another query, a
 * changed one or a forged one is refused. A token carries up to
 * four integers. Encode returns an arena string ("" never: NULL on ENOMEM). */
char *qtoken_encode(qcall *q, const char *kind, const char *binding, const int64_t *v, int n);
/* 0 with v[0..n) set, or -1 (answered: INVALID_ARGUMENT at page_token). An
 * empty token is 1 (first page). */
int qtoken_decode(qcall *q, const char *token, const char *kind, const char *binding, int64_t *v,
                  int n) __attribute__((warn_unused_result));

/* Text for a parameter, in the arena ("%lld"). */
char *qfmt(qcall *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Why a request string is unacceptable (longer than max bytes, not
 * UTF-8, control characters), or NULL when it is fine. */
const char *qfield_error(const char *s, size_t max);

/* A Timestamp as a float8 parameter ("seconds.nanos"), *out NULL when t is
 * NULL. -1 when it is out of range (answered: INVALID_ARGUMENT at field). */
int qtime_param(qcall *q, const Google__Protobuf__Timestamp *t, const char *field, char **out)
    __attribute__((warn_unused_result));

/* The least busy connection of the pool that is up (else any, which
 * answers NOT_CONNECTED; NULL when there is none). */
tw_pg *query_pick_pg(query_service *svc);

/* For a handler that submits SQL with its own callback (tw_pg_query) while
 * holding q->pending: call it first thing in that callback. Returns 1 when
 * the client cancelled meanwhile: the call is then audited and freed (do
 * not touch q again); else 0 (q->pending was decremented). */
int qcall_sql_back(qcall *q) __attribute__((warn_unused_result));

/* Effective limit: `asked` when 1..cap, `def` when asked <= 0 (capped). */
int64_t qlimit(int64_t asked, int64_t def, int64_t cap);

/* The methods (chain.c, search.c, party.c): each ends the call with
 * qcall_reply or qcall_fail, now or after its SQL. */
void query_get_chain(qcall *q);
void query_search_items(qcall *q);
void query_list_events(qcall *q);
void query_get_party(qcall *q);
void query_trace_back(qcall *q);
void query_trace_forward(qcall *q);
void query_list_alerts(qcall *q);
void query_get_alert(qcall *q);
void query_ack_alert(qcall *q);
void query_close_alert(qcall *q);
void query_list_hubs(qcall *q);
void query_put_hub(qcall *q);
void query_set_hub_enabled(qcall *q);
void query_watch_alerts(qcall *q);

/* ---- alerts.c ---- */

/* Row `row` of `r` (sql.h ALERT_COLS) as an Alert, allocated in `a`.
 * NULL on ENOMEM. */
Tidewatch__V1__Alert *qalert_from_row(tw_arena *a, const PGresult *r, int row);

/* "by" (the by_max setting, printable) and a note (note_max, printable
 * UTF-8 with line breaks and tabs): 0, or -1 answered INVALID_ARGUMENT
 * naming the field. */
int qcheck_by_note(qcall *q, const char *by, const char *note) __attribute__((warn_unused_result));

/* ---- watch.c ---- */

/* The watchers' shared part: a LISTEN tidewatch_alerts connection and the
 * fallback poll timer. Returns 0 or -1 (err set). Freed by
 * query_watch_free (watchers still open are ended first). */
int query_watch_init(query_service *svc, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void query_watch_free(query_service *svc);

/* ---- qrows.c ---- */

/* Column access by name: NULL for SQL NULL or a missing column. */
const char *qs(const PGresult *r, int row, const char *col);
int64_t qi(const PGresult *r, int row, const char *col);
double qd(const PGresult *r, int row, const char *col);
bool qnull(const PGresult *r, int row, const char *col);
/* A string column copied into the arena ("" for NULL). */
char *qstr(qcall *q, const PGresult *r, int row, const char *col);
/* A timestamp column given as microseconds since the epoch, or NULL. */
Google__Protobuf__Timestamp *qtime(qcall *q, const PGresult *r, int row, const char *col);
/* The same from column c (microseconds since the epoch, NULL: none), in
 * arena a (for answers built outside a call's arena). */
Google__Protobuf__Timestamp *qtime_at(tw_arena *a, const PGresult *r, int row, int c);

/* A hop row (sql.h HOP_COLS) to a Hop. NULL on ENOMEM. */
Tidewatch__V1__Hop *qrows_hop(qcall *q, const PGresult *r, int row);

/* Items, grouped by root (a chain's item is its root; keys, readings and
 * merges of every member). The four statements take $1 = bigint[] of root
 * ids and $2 = readings per item at most; add them to a batch in this
 * order and pass their results to qrows_items. */
extern const char *const QROWS_ITEM_SQL[4];
typedef struct qitems {
    Tidewatch__V1__Item **items;
    size_t n;
} qitems;
int qrows_items(qcall *q, PGresult *const *res, qitems *out) __attribute__((warn_unused_result));
Tidewatch__V1__Item *qitems_find(const qitems *it, int64_t root);

/* "{1,2,3}" for a bigint[] parameter (in the arena). */
char *qrows_id_array(qcall *q, const int64_t *ids, size_t n);

/* Enum names as the contract spells them. */
const char *qrows_party_kind(int kind);
Tidewatch__V1__PartyIdentifier__Kind qrows_ident_kind(const char *name);

/* ---- qchain.c: party clusters and chain assembly ---- */

#include "tw_chain.h"
#include "tw_cluster.h"

/* Parties as read (PARTY_COLS rows), clustered with tw_cluster. */
typedef struct qparty {
    int64_t party_id, event_id;
    int kind;
    char *role, *name, *name_key, *country, *address, *address_key, *place;
    tw_cluster_ident *ids;
    size_t nids;
} qparty;

typedef struct qclusters {
    qparty *p;
    size_t n;
    tw_cluster_result *res; /* member i has input_index into p */
    size_t *cluster_of;     /* p[i] -> cluster index */
} qclusters;

/* Cluster the parties of `r` plus those of `extra` (may be NULL: carriers
 * of too common identifiers, so that they are reported as such), at most
 * max_names names per identifier. Returns 0 (free with qclusters_free) or
 * -1 (ENOMEM). */
int qclusters_build(qcall *q, const PGresult *r, const PGresult *extra, size_t max_names,
                    qclusters *out) __attribute__((warn_unused_result));
/* 1 + the cluster index of party_id, 0 when it is not among the parties. */
int64_t qclusters_of(const qclusters *c, int64_t party_id);
/* The smallest party id of party_id's cluster (PartyRef.cluster), 0 when
 * party_id is not among the parties. */
int64_t qclusters_min_id(const qclusters *c, int64_t party_id);
void qclusters_free(qclusters *c);
/* The identity message of party p[i]. NULL on ENOMEM. */
Tidewatch__V1__PartyIdentity *qclusters_identity(qcall *q, const qclusters *c, size_t i);

/* Order hops[0..n) of one chain and find its facts with tw_chain (the
 * parties' clusters from `cl`, may be NULL; readings from `item`, may be
 * NULL). Sets each hop party's PartyRef.cluster (qclusters_min_id). Hops
 * folded into an earlier one as independent reports add their source to it. Returns 0 and *out (in the call's arena), or -1. */
int qchain_assemble(qcall *q, Tidewatch__V1__Hop **hops, size_t n, const qclusters *cl,
                    const Tidewatch__V1__Item *item, tw_chain_result *out)
    __attribute__((warn_unused_result));

#endif
