/* tidewatch-query: answers investigators: provenance chains and alerts. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "query.h"
#include "sql.h"
#include "tw_log.h"
#include "tw_metrics.h"

#define OFF(f) offsetof(query_config, f)

static const tw_setting extra[] = {
    {.name = "connections", .env = "TIDEWATCH_QUERY_CONNECTIONS", .flag = "connections",
     .type = TW_SET_INT, .def = "4", .min = 1, .max = QUERY_MAX_CONNECTIONS,
     .help = "database connections calls are spread over (each call's SQL goes to the least "
             "busy one, so a slow call holds up one at most)",
     .offset = OFF(connections)},
    {.name = "statement_timeout", .env = "TIDEWATCH_QUERY_STATEMENT_TIMEOUT",
     .flag = "statement-timeout", .type = TW_SET_DURATION_MS, .def = "10s", .min = 0,
     .max = 3600 * 1000,
     .help = "longest one query may run before PostgreSQL cancels it (the call is answered "
             "DEADLINE_EXCEEDED); 0: the server's setting",
     .offset = OFF(statement_timeout_ms)},
    {.name = "idle_in_transaction_timeout", .env = "TIDEWATCH_QUERY_IDLE_IN_TRANSACTION_TIMEOUT",
     .flag = "idle-in-transaction-timeout", .type = TW_SET_DURATION_MS, .def = "60s", .min = 0,
     .max = 3600 * 1000,
     .help = "PostgreSQL ends a daemon session idle inside a transaction this long; 0: the "
             "server's setting",
     .offset = OFF(idle_in_xact_timeout_ms)},
    {.name = "max_hops", .env = "TIDEWATCH_QUERY_MAX_HOPS", .flag = "max-hops",
     .type = TW_SET_INT, .def = "1000", .min = 1, .max = 100000,
     .help = "hops per chain (GetChain, traces) and per party (GetParty): the default and the cap",
     .offset = OFF(max_hops)},
    {.name = "max_chains", .env = "TIDEWATCH_QUERY_MAX_CHAINS", .flag = "max-chains",
     .type = TW_SET_INT, .def = "20", .min = 1, .max = 1000,
     .help = "chains one GetChain key may name (a serial without maker)",
     .offset = OFF(max_chains)},
    {.name = "page_max", .env = "TIDEWATCH_QUERY_PAGE_MAX", .flag = "page-max",
     .type = TW_SET_INT, .def = "200", .min = 1, .max = 10000,
     .help = "largest page of SearchItems, ListEvents and ListAlerts (larger page_size is "
             "capped)",
     .offset = OFF(page_max)},
    {.name = "max_candidates", .env = "TIDEWATCH_QUERY_MAX_CANDIDATES",
     .flag = "max-candidates", .type = TW_SET_INT, .def = "50", .min = 1, .max = 1000,
     .help = "candidates listed for a partial reading at most (GetChain max_candidates is "
             "capped to it; default 10)",
     .offset = OFF(max_candidates)},
    {.name = "candidate_scan", .env = "TIDEWATCH_QUERY_CANDIDATE_SCAN",
     .flag = "candidate-scan", .type = TW_SET_INT, .def = "2000", .min = 10, .max = 1000000,
     .help = "items a partial reading's SQL prefilter hands to the ranking at most",
     .offset = OFF(candidate_scan)},
    {.name = "max_related", .env = "TIDEWATCH_QUERY_MAX_RELATED", .flag = "max-related",
     .type = TW_SET_INT, .def = "50", .min = 0, .max = 10000,
     .help = "related items (same purchase, consignment, buyer cluster) per GetChain",
     .offset = OFF(max_related)},
    {.name = "cluster_parties", .env = "TIDEWATCH_QUERY_CLUSTER_PARTIES",
     .flag = "cluster-parties", .type = TW_SET_INT, .def = "500", .min = 1, .max = 100000,
     .help = "parties one cluster search visits at most (GetParty, GetChain, TraceForward)",
     .offset = OFF(cluster_parties)},
    {.name = "trace_depth", .env = "TIDEWATCH_QUERY_TRACE_DEPTH", .flag = "trace-depth",
     .type = TW_SET_INT, .def = "5", .min = 0, .max = 50,
     .help = "handoffs TraceForward follows at most (max_depth is capped to it; default 3)",
     .offset = OFF(trace_depth)},
    {.name = "trace_items", .env = "TIDEWATCH_QUERY_TRACE_ITEMS", .flag = "trace-items",
     .type = TW_SET_INT, .def = "200", .min = 1, .max = 100000,
     .help = "items a trace answers at most (max_items is capped to it)",
     .offset = OFF(trace_items)},
    {.name = "request_memory", .env = "TIDEWATCH_QUERY_REQUEST_MEMORY",
     .flag = "request-memory", .type = TW_SET_SIZE, .def = "1MiB", .min = 4 << 10,
     .max = 64 << 20, .help = "memory decoding one request may take (more: INVALID_ARGUMENT)",
     .offset = OFF(request_memory)},
    {.name = "page_token_key", .env = "TIDEWATCH_QUERY_PAGE_TOKEN_KEY",
     .flag = "page-token-key", .type = TW_SET_STRING, .def = "",
     .help = "secret that signs page tokens (HMAC-SHA-256); give every replica the same one so "
             "that their tokens work on each other; empty: random at start-up (tokens then "
             "die with the process)",
     .secret = 1, .offset = OFF(page_token_key)},
    {.name = "audit_database_url", .env = "TIDEWATCH_QUERY_AUDIT_DATABASE_URL",
     .flag = "audit-database-url", .type = TW_SET_STRING, .def = "",
     .help = "libpq connection string for the audit rows when reads go to a standby (the "
             "primary); empty: database_url (audit rows always have a connection of their own)",
     .secret = 1, .offset = OFF(audit_database_url)},
    {.name = "audit_batch", .env = "TIDEWATCH_QUERY_AUDIT_BATCH", .flag = "audit-batch",
     .type = TW_SET_INT, .def = "256", .min = 1, .max = 10000,
     .help = "audit rows one INSERT writes at most: the rows of calls that end while the "
             "previous INSERT commits go in the next one together",
     .offset = OFF(audit_batch)},
    {.name = "audit_queue", .env = "TIDEWATCH_QUERY_AUDIT_QUEUE", .flag = "audit-queue",
     .type = TW_SET_INT, .def = "4096", .min = 1, .max = 1000000,
     .help = "calls waiting for their audit row at most (each holds its answer); past it a "
             "call is answered at once without a row, an OK answer as UNAVAILABLE",
     .offset = OFF(audit_queue)},
    {.name = "alert_history", .env = "TIDEWATCH_QUERY_ALERT_HISTORY", .flag = "alert-history",
     .type = TW_SET_INT, .def = "200", .min = 1, .max = 100000,
     .help = "history rows (alert_updates, oldest first) one GetAlert answers at most",
     .offset = OFF(alert_history)},
    {.name = "note_max", .env = "TIDEWATCH_QUERY_NOTE_MAX", .flag = "note-max",
     .type = TW_SET_SIZE, .def = "4KiB", .min = 16, .max = 1 << 20,
     .help = "longest note of AcknowledgeAlert, CloseAlert, PutHub and SetHubEnabled (bytes; "
             "longer: INVALID_ARGUMENT)",
     .offset = OFF(note_max)},
    {.name = "by_max", .env = "TIDEWATCH_QUERY_BY_MAX", .flag = "by-max", .type = TW_SET_INT,
     .def = "128", .min = 1, .max = 4096,
     .help = "longest \"by\" (who acknowledged, closed or changed; bytes)",
     .offset = OFF(by_max)},
    {.name = "watch_max", .env = "TIDEWATCH_QUERY_WATCH_MAX", .flag = "watch-max",
     .type = TW_SET_INT, .def = "64", .min = 1, .max = 100000,
     .help = "WatchAlerts calls open at once (one more: RESOURCE_EXHAUSTED)",
     .offset = OFF(watch_max)},
    {.name = "watch_page", .env = "TIDEWATCH_QUERY_WATCH_PAGE", .flag = "watch-page",
     .type = TW_SET_INT, .def = "100", .min = 1, .max = 10000,
     .help = "alert changes one WatchAlerts read fetches at most",
     .offset = OFF(watch_page)},
    {.name = "watch_buffer", .env = "TIDEWATCH_QUERY_WATCH_BUFFER", .flag = "watch-buffer",
     .type = TW_SET_SIZE, .def = "256KiB", .min = 1024, .max = 64 << 20,
     .help = "bytes queued for one WatchAlerts reader before it stops reading (plus one "
             "message; at most half of max_call_output); a slow reader receives the rest later",
     .offset = OFF(watch_buffer)},
    {.name = "watch_poll", .env = "TIDEWATCH_QUERY_WATCH_POLL", .flag = "watch-poll",
     .type = TW_SET_DURATION_MS, .def = "1s", .min = 10, .max = 3600 * 1000,
     .help = "how often watchers look for changes without a NOTIFY (lost notifications, LISTEN "
             "connection down, reads from a standby)",
     .offset = OFF(watch_poll_ms)},
};

static query_config cfg;

static const tw_daemon_spec spec = {
    .name = "query",
    .summary = "answers investigators: provenance chains and alerts",
    .default_listen = "127.0.0.1:50052",
    .default_metrics_listen = "127.0.0.1:9102",
    .extra = extra,
    .nextra = sizeof extra / sizeof extra[0],
    .cfg = &cfg,
};

/* SERVING while at least one read connection is up, and the audit
 * connection (no answer leaves without its audit row). */
static void on_db_state(void *arg, int up)
{
    (void)up;
    query_service *svc = arg;
    int any = 0;
    for (size_t i = 0; i < svc->npg; i++)
        any |= svc->pg[i] && tw_pg_is_up(svc->pg[i]);
    if (svc->audit_pg && !tw_pg_is_up(svc->audit_pg))
        any = 0;
    if (any == svc->db_up)
        return;
    svc->db_up = any;
    if (tw_health_set(svc->daemon->health, QUERY_SERVICE,
                      any ? TW_HEALTH_SERVING : TW_HEALTH_NOT_SERVING) != 0 ||
        tw_health_set(svc->daemon->health, QUERY_ALERT_SERVICE,
                      any ? TW_HEALTH_SERVING : TW_HEALTH_NOT_SERVING) != 0)
        TW_ERROR(NULL, "could not update health");
    TW_LOG(any ? TW_LOG_INFO : TW_LOG_WARN, NULL, "database %s", any ? "connected" : "unavailable");
}

/* Metrics of the audit queue (qcall.c). */
static size_t audit_queued(void *arg)
{
    const query_service *svc = arg;
    return svc->audit_waiting;
}

static size_t audit_in_flight(void *arg)
{
    const query_service *svc = arg;
    return query_audit_in_flight(svc);
}

int main(int argc, char **argv)
{
    static const char *const info_paths[] = {"/tidewatch.v1.ProvenanceService/GetServerInfo",
                                             "/tidewatch.v1.AlertService/GetServerInfo", NULL};
    tw_daemon d;
    int rv = tw_daemon_init(&d, &spec, info_paths, argc, argv);
    if (rv != 0)
        return rv < 0 ? 2 : 0;

    query_service svc = {.daemon = &d, .cfg = &cfg};
    char err[512];
    int status = 1;
    if (cfg.page_token_key && cfg.page_token_key[0]) {
        /* the key as given, hashed to the HMAC block's worth */
        unsigned int len = 0;
        if (!EVP_Digest(cfg.page_token_key, strlen(cfg.page_token_key), svc.token_key, &len,
                        EVP_sha256(), NULL) ||
            len != sizeof svc.token_key) {
            TW_ERROR(NULL, "page_token_key: could not hash it");
            goto out;
        }
    } else if (RAND_bytes(svc.token_key, (int)sizeof svc.token_key) != 1) {
        TW_ERROR(NULL, "page tokens: no random key");
        goto out;
    }
    svc.token_key_len = sizeof svc.token_key;
    for (svc.npg = 0; svc.npg < (size_t)cfg.connections; svc.npg++) {
        char name[32];
        snprintf(name, sizeof name, "query-%zu", svc.npg + 1);
        tw_pg_opts opts = {.name = name, .on_state = on_db_state, .state_arg = &svc,
                           .statement_timeout_ms = (int)cfg.statement_timeout_ms,
                           .idle_in_xact_timeout_ms = cfg.idle_in_xact_timeout_ms
                                                          ? (int)cfg.idle_in_xact_timeout_ms
                                                          : -1,
                           .jit_off = 1};
        svc.pg[svc.npg] = tw_pg_new(d.base, cfg.common.database_url, &opts, err, sizeof err);
        if (!svc.pg[svc.npg]) {
            TW_ERROR(NULL, "database: %s", err);
            goto out;
        }
        /* every statement but the audit INSERT (its own connection) */
        for (int i = 1; i < Q_COUNT; i++)
            if (tw_pg_prepare(svc.pg[svc.npg], query_sql_table[i].name, query_sql_table[i].text,
                              query_sql_table[i].nparams, NULL) != 0) {
                TW_ERROR(NULL, "could not register statement %s", query_sql_table[i].name);
                goto out;
            }
    }
    /* Audit rows have a connection of their own: to the primary when reads
     * go to a standby (which refuses writes), else to the same database;
     * either way no read waits in a pipeline behind an audit commit (a WAL
     * flush, or a lock on query_audit). */
    {
        const char *aurl = cfg.audit_database_url && cfg.audit_database_url[0]
                               ? cfg.audit_database_url
                               : cfg.common.database_url;
        tw_pg_opts opts = {.name = "query-audit", .on_state = on_db_state, .state_arg = &svc,
                           .statement_timeout_ms = (int)cfg.statement_timeout_ms,
                           .idle_in_xact_timeout_ms = cfg.idle_in_xact_timeout_ms
                                                          ? (int)cfg.idle_in_xact_timeout_ms
                                                          : -1};
        svc.audit_pg = tw_pg_new(d.base, aurl, &opts, err, sizeof err);
        if (!svc.audit_pg ||
            tw_pg_prepare(svc.audit_pg, query_sql_table[0].name, query_sql_table[0].text,
                          query_sql_table[0].nparams, NULL) != 0) {
            TW_ERROR(NULL, "audit database: %s", svc.audit_pg ? "could not prepare" : err);
            goto out;
        }
    }
    if (tw_metrics_gauge_callback(d.metrics, "tidewatch_query_audit_queued_calls",
                                  "Calls whose audit row waits for the next INSERT.",
                                  audit_queued, &svc) != 0 ||
        tw_metrics_gauge_callback(d.metrics, "tidewatch_query_audit_in_flight_calls",
                                  "Calls whose audit row is in the INSERT in flight.",
                                  audit_in_flight, &svc) != 0 ||
        tw_health_set(d.health, QUERY_SERVICE, TW_HEALTH_NOT_SERVING) != 0 ||
        tw_health_set(d.health, QUERY_ALERT_SERVICE, TW_HEALTH_NOT_SERVING) != 0 ||
        query_register(&svc) != 0) {
        TW_ERROR(NULL, "could not set up the provenance service");
        goto out;
    }
    if (query_watch_init(&svc, err, sizeof err) != 0) {
        TW_ERROR(NULL, "WatchAlerts: %s", err);
        goto out;
    }
    status = tw_daemon_run(&d);
out:
    /* Calls still waiting for SQL are answered (audited, then freed) from
     * tw_pg_free's callbacks; their audit rows go to a connection not yet
     * freed, or are given up. */
    for (size_t i = 0; i < svc.npg; i++) {
        tw_pg *pg = svc.pg[i];
        svc.pg[i] = NULL;
        tw_pg_free(pg);
    }
    /* after the pool: a watcher poll still pending there is answered with
     * TW_PG_SHUTDOWN into the watch state */
    query_watch_free(&svc);
    /* last: the read connections' callbacks may still audit there */
    tw_pg *apg = svc.audit_pg;
    svc.audit_pg = NULL;
    tw_pg_free(apg);
    tw_daemon_free(&d);
    return status;
}
