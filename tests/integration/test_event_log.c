/* The event log's consumption contract, on a real PostgreSQL: reading with
 * events_after() never skips an event whose transaction commits after a
 * later-numbered one, where a naive "id > cursor" reader does; the log is
 * append-only; the service roles have only what they need. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support_pg.h"

static tw_test_db db;

static void migrate_db(void)
{
    char bin[512], url[600], out[4096];
    tw_test_bin("tidewatch-migrate", bin, sizeof bin);
    snprintf(url, sizeof url, "--database-url=%s", db.url);
    char *argv[] = {bin, url, NULL};
    cr_assert_eq(tw_test_run(out, sizeof out, argv), 0, "%s", out);
}

static void setup(void)
{
    tw_test_db_create(&db, "eventlog");
    migrate_db();
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

Test(event_log, ingest_role_cannot_rewrite_history)
{
    PGconn *c = tw_test_connect(db.url);
    exec(c, "DROP ROLE IF EXISTS tw_test_ingest_user");
    exec(c, "CREATE ROLE tw_test_ingest_user LOGIN IN ROLE tidewatch_ingest");
    exec(c, "SET ROLE tw_test_ingest_user");
    insert_event(c, "by-ingest");
    PGresult *r = PQexec(c, "DELETE FROM consumer_cursors");
    cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    cr_assert(strstr(PQresultErrorMessage(r), "permission denied"), "%s",
              PQresultErrorMessage(r));
    PQclear(r);
    exec(c, "RESET ROLE");
    exec(c, "DROP OWNED BY tw_test_ingest_user");
    exec(c, "DROP ROLE tw_test_ingest_user");
    PQfinish(c);
}
