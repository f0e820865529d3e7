/* The event log's consumption contract, on a real PostgreSQL: reading with
 * events_after() never skips an event whose transaction commits after a
 * later-numbered one, where a naive "id > cursor" reader does; the log is
 * append-only; the service roles have only what they need (ingest names
 * only the record's columns, each consumer moves only its own cursor); the
 * horizon functions see the whole cluster; and the ingest daemon exports
 * the horizon and consumer lag in /metrics. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support_pg.h"

static tw_test_db db;

static void migrate_db(const char *dburl)
{
    char bin[512], url[600], out[4096];
    tw_test_bin("tidewatch-migrate", bin, sizeof bin);
    snprintf(url, sizeof url, "--database-url=%s", dburl);
    char *argv[] = {bin, url, NULL};
    cr_assert_eq(tw_test_run(out, sizeof out, argv), 0, "%s", out);
}

static void setup(void)
{
    tw_test_db_create(&db, "eventlog");
    migrate_db(db.url);
}

static void teardown(void) { tw_test_db_drop(&db); }

TestSuite(event_log, .init = setup, .fini = teardown, .timeout = 60);

static void exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static void insert_event(PGconn *c, const char *ref)
{
    const char *params[] = {ref};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO events (source, source_ref, kind, payload) "
                               "VALUES ('test', $1, 1, '\\x00')",
                               1, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
}

/* A consumer's cursor. */
typedef struct cursor {
    char tx[32];
    long long id;
} cursor;

/* Read everything visible after the cursor, appending source_refs to
 * seen (space separated) and advancing the cursor. */
static void consume(PGconn *c, cursor *cur, char *seen, size_t seenlen)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", cur->id);
    const char *params[] = {cur->tx, id};
    PGresult *r = PQexecParams(c,
                               "SELECT tx::text, id, source_ref FROM events_after($1::xid8, "
                               "$2::bigint, 1000)",
                               2, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    for (int i = 0; i < PQntuples(r); i++) {
        snprintf(cur->tx, sizeof cur->tx, "%s", PQgetvalue(r, i, 0));
        cur->id = atoll(PQgetvalue(r, i, 1));
        strncat(seen, PQgetvalue(r, i, 2), seenlen - strlen(seen) - 1);
        strncat(seen, " ", seenlen - strlen(seen) - 1);
    }
    PQclear(r);
}

/* Consume until `want` has been seen, for up to 10 s: the horizon is the
 * oldest transaction in the whole cluster, so a short transaction of another
 * test running alongside may hold reading back for a moment (never skip). */
static void consume_until(PGconn *c, cursor *cur, char *seen, size_t seenlen, const char *want)
{
    for (int i = 0; i < 200 && strcmp(seen, want) != 0; i++) {
        consume(c, cur, seen, seenlen);
        if (strcmp(seen, want) != 0)
            usleep(50000);
    }
}

static long long naive_max_id(PGconn *c, long long after)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT coalesce(max(id), %lld) FROM events WHERE id > %lld", after,
             after);
    char *v = tw_test_query1(c, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

Test(event_log, late_commit_is_not_skipped)
{
    PGconn *a = tw_test_connect(db.url), *b = tw_test_connect(db.url);
    PGconn *reader = tw_test_connect(db.url);
    cursor cur = {"0", 0};
    char seen[256] = "";

    /* A takes the lower id and stays open; B takes a higher id and commits. */
    exec(a, "BEGIN");
    insert_event(a, "A");
    exec(b, "BEGIN");
    insert_event(b, "B");
    exec(b, "COMMIT");

    /* A naive reader would now see B's id and move its cursor past A's. */
    long long naive = naive_max_id(reader, 0);
    char *a_id = tw_test_query1(a, "SELECT id FROM events WHERE source_ref = 'A'");
    cr_assert_gt(naive, atoll(a_id), "the naive cursor passes A's id while A is open");
    free(a_id);

    consume(reader, &cur, seen, sizeof seen);
    cr_assert_str_eq(seen, "", "nothing may be read while an older transaction is open");

    exec(a, "COMMIT");
    consume_until(reader, &cur, seen, sizeof seen, "A B ");
    cr_assert_str_eq(seen, "A B ", "both events, in commit-safe order");
    consume(reader, &cur, seen, sizeof seen);
    cr_assert_str_eq(seen, "A B ", "nothing read twice");
    PQfinish(a);
    PQfinish(b);
    PQfinish(reader);
}

Test(event_log, older_xid_inserting_later_is_not_skipped)
{
    PGconn *a = tw_test_connect(db.url), *b = tw_test_connect(db.url);
    PGconn *reader = tw_test_connect(db.url);
    cursor cur = {"0", 0};
    char seen[256] = "";

    /* B gets its transaction id first but inserts after A committed. */
    exec(b, "BEGIN");
    exec(b, "SELECT pg_current_xact_id()");
    insert_event(a, "A"); /* autocommit */
    consume(reader, &cur, seen, sizeof seen);
    cr_assert_str_eq(seen, "", "A waits for the older open transaction");
    insert_event(b, "B");
    exec(b, "COMMIT");
    consume_until(reader, &cur, seen, sizeof seen, "B A ");
    cr_assert_str_eq(seen, "B A ");
    PQfinish(a);
    PQfinish(b);
    PQfinish(reader);
}

Test(event_log, append_only)
{
    PGconn *c = tw_test_connect(db.url);
    insert_event(c, "X");
    const char *stmts[] = {"UPDATE events SET kind = 2", "DELETE FROM events",
                           "TRUNCATE events CASCADE"};
    for (size_t i = 0; i < 3; i++) {
        PGresult *r = PQexec(c, stmts[i]);
        cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "%s must fail", stmts[i]);
        cr_assert(strstr(PQresultErrorMessage(r), "append-only"), "%s", PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
}

/* ---- Roles ------------------------------------------------------------- */

/* A LOGIN role named after `label` (unique per process: roles are
 * cluster-wide and other suites run alongside), member of `group`; its
 * connection string (the test cluster trusts local users) goes to url. */
static void make_login(PGconn *admin, const char *base, const char *label, const char *group,
                       char *name, size_t namelen, char *url, size_t urllen)
{
    snprintf(name, namelen, "tw_t_%s_%d", label, (int)getpid());
    char sql[256];
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", name);
    exec(admin, sql);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN IN ROLE %s", name, group);
    exec(admin, sql);
    snprintf(url, urllen, "%s user=%s", base, name);
}

static void drop_login(PGconn *admin, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP OWNED BY %s", name);
    exec(admin, sql);
    snprintf(sql, sizeof sql, "DROP ROLE %s", name);
    exec(admin, sql);
}

/* Run sql; it must fail with `want` in the message. */
static void refused(PGconn *c, const char *sql, const char *want)
{
    PGresult *r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "%s must be refused", sql);
    cr_assert(strstr(PQresultErrorMessage(r), want), "%s: %s (want \"%s\")", sql,
              PQresultErrorMessage(r), want);
    PQclear(r);
}

Test(event_log, ingest_role_cannot_rewrite_history)
{
    PGconn *admin = tw_test_connect(db.url);
    char name[64], url[700];
    make_login(admin, db.url, "ingest", "tidewatch_ingest", name, sizeof name, url, sizeof url);
    PGconn *c = tw_test_connect(url);

    /* What the writer names: the record's columns, nothing the database fills. */
    exec(c, "INSERT INTO events (source, source_ref, kind, occurred_at, corrects, corrects_source,"
            " corrects_ref, digest, serial_keys, hull_keys, derived, payload)"
            " VALUES ('test', 'by-ingest', 1, now(), NULL, NULL, NULL, sha256('x'), '{K1}', '{}',"
            " '\\x02', '\\x00')");
    char *v = tw_test_query1(admin, "SELECT principal || ' ' || (tx <> '0')::text || ' ' ||"
                                    " (received_at > now() - interval '1 minute')::text"
                                    " FROM events WHERE source_ref = 'by-ingest'");
    char want[128];
    snprintf(want, sizeof want, "%s true true", name);
    cr_assert_str_eq(v, want, "principal is the login that appended the row; tx and"
                              " received_at are the database's");
    free(v);

    /* Forged columns: refused whatever the value (column privileges). */
    refused(c, "INSERT INTO events (source, source_ref, kind, payload, tx)"
               " VALUES ('test', 'forged-tx', 1, '\\x00', '0')", "permission denied");
    refused(c, "INSERT INTO events (source, source_ref, kind, payload, received_at)"
               " VALUES ('test', 'forged-time', 1, '\\x00', '2000-01-01')", "permission denied");
    refused(c, "INSERT INTO events (source, source_ref, kind, payload, principal)"
               " VALUES ('test', 'forged-principal', 1, '\\x00', 'someone-else')",
            "permission denied");
    refused(c, "INSERT INTO events (id, source, source_ref, kind, payload) OVERRIDING SYSTEM VALUE"
               " VALUES (1, 'test', 'forged-id', 1, '\\x00')", "permission denied");
    /* History: no update, delete or truncate (privileges, before the trigger). */
    refused(c, "UPDATE events SET kind = 2", "permission denied");
    refused(c, "UPDATE events SET tx = '0'", "permission denied");
    refused(c, "DELETE FROM events", "permission denied");
    refused(c, "TRUNCATE events", "permission denied");
    /* Nor the consumers' cursors. */
    refused(c, "DELETE FROM consumer_cursors", "permission denied");
    refused(c, "INSERT INTO consumer_cursors (consumer) VALUES ('provenance')",
            "permission denied");

    char *n = tw_test_query1(admin, "SELECT count(*) FROM events");
    cr_assert_str_eq(n, "1", "only the legitimate row landed");
    free(n);
    PQfinish(c);
    drop_login(admin, name);
    PQfinish(admin);
}

Test(event_log, each_consumer_moves_only_its_own_cursor)
{
    PGconn *admin = tw_test_connect(db.url);
    char pname[64], purl[700], aname[64], aurl[700], gname[64], gurl[700];
    make_login(admin, db.url, "prov", "tidewatch_provenance", pname, sizeof pname, purl,
               sizeof purl);
    make_login(admin, db.url, "alerts", "tidewatch_alerts", aname, sizeof aname, aurl,
               sizeof aurl);
    make_login(admin, db.url, "other", "tidewatch_consumer", gname, sizeof gname, gurl,
               sizeof gurl);
    PGconn *p = tw_test_connect(purl), *a = tw_test_connect(aurl), *g = tw_test_connect(gurl);

    /* Each may create and move its own cursor... */
    exec(p, "INSERT INTO consumer_cursors (consumer) VALUES ('provenance')");
    exec(p, "UPDATE consumer_cursors SET last_id = 10 WHERE consumer = 'provenance'");
    exec(a, "INSERT INTO consumer_cursors (consumer) VALUES ('alerts')");
    exec(a, "UPDATE consumer_cursors SET last_id = 5");
    /* ...and both still read the log. */
    char *v = tw_test_query1(a, "SELECT count(*) FROM events_after('0', 0, 10)");
    free(v);

    /* alerts cannot move, take over or delete provenance's cursor. */
    refused(a, "INSERT INTO consumer_cursors (consumer) VALUES ('provenance')"
               " ON CONFLICT (consumer) DO UPDATE SET last_id = 99",
            "row-level security");
    refused(a, "INSERT INTO consumer_cursors (consumer) VALUES ('provenance2')",
            "row-level security");
    exec(a, "UPDATE consumer_cursors SET last_id = 99 WHERE consumer = 'provenance'");
    refused(a, "DELETE FROM consumer_cursors WHERE consumer = 'provenance'", "permission denied");
    /* It may read provenance's (it never runs ahead of provenance). */
    v = tw_test_query1(a, "SELECT last_id FROM consumer_cursors WHERE consumer = 'provenance'");
    cr_assert_str_eq(v, "10");
    free(v);
    /* provenance cannot touch or see alerts'. */
    exec(p, "UPDATE consumer_cursors SET last_id = 99 WHERE consumer = 'alerts'");
    v = tw_test_query1(p, "SELECT count(*) FROM consumer_cursors");
    cr_assert_str_eq(v, "1", "provenance sees only its own row");
    free(v);
    /* A consumer login with no consumer of its own sees and writes nothing. */
    v = tw_test_query1(g, "SELECT count(*) FROM consumer_cursors");
    cr_assert_str_eq(v, "0");
    free(v);
    refused(g, "INSERT INTO consumer_cursors (consumer) VALUES ('alerts')", "row-level security");

    v = tw_test_query1(admin, "SELECT string_agg(consumer || '=' || last_id, ' ' ORDER BY consumer)"
                              " FROM consumer_cursors");
    cr_assert_str_eq(v, "alerts=5 provenance=10", "nobody moved another's cursor");
    free(v);
    PQfinish(p);
    PQfinish(a);
    PQfinish(g);
    drop_login(admin, pname);
    drop_login(admin, aname);
    drop_login(admin, gname);
    PQfinish(admin);
}

/* ---- Horizon --------------------------------------------------------------- */

static double query_double(PGconn *c, const char *sql)
{
    char *v = tw_test_query1(c, sql);
    double d = strtod(v, NULL);
    free(v);
    return d;
}

/* The horizon tests hold transactions open, which would hold back every
 * consumer of the shared test server (the horizon is cluster-wide): they
 * get a private cluster, with the log migrated into its database
 * "tidewatch" (URL in url). */
static void private_log(tw_test_cluster *cl, char *url, size_t len)
{
    tw_test_cluster_create(cl);
    PGconn *c = tw_test_connect(cl->url);
    exec(c, "CREATE DATABASE tidewatch");
    PQfinish(c);
    snprintf(url, len, "%s dbname=tidewatch", cl->url);
    migrate_db(url);
}

Test(event_log, horizon_functions_see_the_cluster_and_the_lag)
{
    tw_test_cluster cl;
    char logurl[400];
    private_log(&cl, logurl, sizeof logurl);
    PGconn *admin = tw_test_connect(logurl);
    char name[64], url[700];
    make_login(admin, logurl, "hz", "tidewatch_ingest", name, sizeof name, url, sizeof url);
    PGconn *daemon = tw_test_connect(url);

    /* Another user's transaction holding an xid, in ANOTHER database. */
    PGconn *holder = tw_test_connect(cl.url);
    exec(holder, "BEGIN");
    exec(holder, "SELECT pg_current_xact_id()");
    usleep(1500 * 1000);
    double age = query_double(daemon, "SELECT xact_seconds FROM log_horizon_ages()");
    cr_assert_geq(age, 1.4, "the daemon role sees the other user's open transaction (%.2f)", age);
    double snap = query_double(daemon, "SELECT snapshot_seconds FROM log_horizon_ages()");
    cr_assert_geq(snap, age - 0.01);
    exec(holder, "COMMIT");

    /* Lag: three events, a cursor at the start, then at the end. */
    insert_event(admin, "L1");
    insert_event(admin, "L2");
    insert_event(admin, "L3");
    exec(admin, "INSERT INTO consumer_cursors (consumer) VALUES ('provenance')");
    usleep(200 * 1000);
    char *v = tw_test_query1(daemon, "SELECT consumer || ' ' || lag_events || ' ' ||"
                                     " (lag_seconds >= 0.2)::text FROM consumer_lag(1000)");
    cr_assert_str_eq(v, "provenance 3 true");
    free(v);
    v = tw_test_query1(daemon, "SELECT lag_events FROM consumer_lag(2)");
    cr_assert_str_eq(v, "2", "counting stops at the cap");
    free(v);
    exec(admin, "UPDATE consumer_cursors SET (last_tx, last_id) = (SELECT tx, id FROM events"
                " ORDER BY tx DESC, id DESC LIMIT 1)");
    v = tw_test_query1(daemon, "SELECT lag_events || ' ' || lag_seconds FROM consumer_lag(1000)");
    cr_assert_str_eq(v, "0 0", "caught up");
    free(v);
    /* Far behind: exact up to 10,000, then estimated from the ids (0008),
     * still capped; the search path is pinned again after the replace. */
    exec(admin, "INSERT INTO events (source, source_ref, kind, payload) SELECT 'lag', 'lag-' || g,"
                " 1, '\\x00' FROM generate_series(1, 25000) g");
    v = tw_test_query1(daemon, "SELECT lag_events FROM consumer_lag(1000000)");
    cr_assert_str_eq(v, "25000", "estimated from the ids");
    free(v);
    v = tw_test_query1(daemon, "SELECT lag_events FROM consumer_lag(12000)");
    cr_assert_str_eq(v, "12000", "the cap still holds");
    free(v);
    v = tw_test_query1(daemon, "SELECT lag_events FROM consumer_lag(7)");
    cr_assert_str_eq(v, "7");
    free(v);
    v = tw_test_query1(admin, "SELECT array_to_string(proconfig, ',') LIKE 'search_path=pg_catalog%'"
                              " FROM pg_proc WHERE proname = 'consumer_lag'");
    cr_assert_str_eq(v, "t");
    free(v);
    exec(admin, "UPDATE consumer_cursors SET (last_tx, last_id) = (SELECT tx, id FROM events"
                " ORDER BY tx DESC, id DESC LIMIT 1)");

    /* Nobody else may call them (they are SECURITY DEFINER). */
    char oname[64], ourl[700];
    make_login(admin, logurl, "nobody", "pg_monitor", oname, sizeof oname, ourl, sizeof ourl);
    PGconn *other = tw_test_connect(ourl);
    refused(other, "SELECT * FROM log_horizon_ages()", "permission denied");
    refused(other, "SELECT * FROM consumer_lag(10)", "permission denied");
    PQfinish(other);
    PQfinish(holder);
    PQfinish(daemon);
    PQfinish(admin);
    tw_test_cluster_destroy(&cl);
}

/* ---- The ingest daemon's /metrics ------------------------------------------ */

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof a;
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* GET /metrics from 127.0.0.1:port into out; 0, or -1 when not reachable. */
static int scrape(int port, char *out, size_t len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    const char req[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    cr_assert_eq(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    size_t n = 0;
    ssize_t r;
    while (n + 1 < len && (r = read(fd, out + n, len - n - 1)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fd);
    return 0;
}

/* The value of the series starting with `series` (name and labels), or -1. */
static double metric(const char *text, const char *series)
{
    size_t sl = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p += sl)
        if ((p == text || p[-1] == '\n') && p[sl] == ' ')
            return strtod(p + sl + 1, NULL);
    return -1;
}

Test(event_log, ingest_metrics_show_the_horizon_and_consumer_lag, .timeout = 90)
{
    tw_test_cluster cl;
    char logurl[400];
    private_log(&cl, logurl, sizeof logurl);
    PGconn *admin = tw_test_connect(logurl);
    char name[64], url[700];
    make_login(admin, logurl, "hzd", "tidewatch_ingest", name, sizeof name, url, sizeof url);
    insert_event(admin, "M1");
    insert_event(admin, "M2");
    exec(admin, "INSERT INTO consumer_cursors (consumer) VALUES ('alerts')");

    char bin[512], dbarg[800], listen[64], metrics_listen[64], data[600];
    tw_test_bin("tidewatch-ingest", bin, sizeof bin);
    int mport = free_port();
    snprintf(dbarg, sizeof dbarg, "--database-url=%s", url);
    snprintf(listen, sizeof listen, "--listen=127.0.0.1:%d", free_port());
    snprintf(metrics_listen, sizeof metrics_listen, "--metrics-listen=127.0.0.1:%d", mport);
    const char *src = getenv("TW_SOURCE_DIR");
    cr_assert(src, "TW_SOURCE_DIR is not set (CTest sets it)");
    snprintf(data, sizeof data, "--data-dir=%s/deploy/data", src);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char *argv[] = {bin, dbarg, listen, metrics_listen, data, (char *)"--log-level=warn",
                        (char *)"--idle-in-transaction-timeout=45s",
                        (char *)"--horizon-interval=500ms", NULL};
        execv(bin, argv);
        _exit(127);
    }

    /* Another session holds a transaction (with an xid) open. */
    PGconn *holder = tw_test_connect(logurl);
    exec(holder, "BEGIN");
    exec(holder, "SELECT pg_current_xact_id()");

    static char text[65536];
    double xact = -1, lag = -1, lag_s = -1, idle = -1;
    for (int i = 0; i < 300; i++) { /* up to 30 s: polls run every 500 ms */
        if (scrape(mport, text, sizeof text) == 0) {
#define ALERTS "{service=\"ingest\",consumer=\"alerts\"}"
            xact = metric(text, "tidewatch_log_oldest_xact_seconds{service=\"ingest\"}");
            lag = metric(text, "tidewatch_consumer_lag_events" ALERTS);
            lag_s = metric(text, "tidewatch_consumer_lag_seconds" ALERTS);
            idle = metric(text,
                          "tidewatch_db_idle_in_transaction_timeout_seconds{service=\"ingest\"}");
            if (xact >= 2.0 && lag == 2)
                break;
        }
        usleep(100 * 1000);
    }
    exec(holder, "COMMIT");
    PQfinish(holder);
    kill(pid, SIGTERM);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert_geq(xact, 2.0, "the open transaction's age shows (%.2f)\n%s", xact, text);
    cr_assert_eq(lag, 2, "two events after alerts' cursor\n%s", text);
    cr_assert_gt(lag_s, 0, "the first unread event's age\n%s", text);
    cr_assert_eq(idle, 45, "the daemon's session has its idle_in_transaction_session_timeout "
                 "setting\n%s", text);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "clean exit (status %d)", st);
    PQfinish(admin);
    tw_test_cluster_destroy(&cl);
}
