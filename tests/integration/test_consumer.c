/* The log consumer (lib/db/tw_consumer) on a real PostgreSQL: every event
 * applied exactly once in (tx, id) order; NOTIFY wakes it well before its
 * poll; a late-committing transaction is not skipped; two instances of one
 * consumer never both apply a batch; SIGKILLed at random moments and
 * restarted, it ends with the same derived table as an uninterrupted run;
 * under tidewatch_provenance it moves only its own cursor; its lag shows in
 * /metrics; a rebuild starts it over in one transaction.
 *
 * The derived table pos column (support_consumer.c) is each row's rank in
 * the order applied, so a doubled, skipped or reordered batch shows as a
 * pos that differs from the event's rank in (tx, id) order. */
#include <criterion/criterion.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support_consumer.h"
#include "support_pg.h"
#include "tw_consumer.h"
#include "tw_metrics.h"
#include "tw_pg.h"

static tw_test_db db;
static struct event_base *base;

static void exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

static long long qnum(PGconn *c, const char *sql)
{
    char *v = tw_test_query1(c, sql);
    long long n = atoll(v);
    free(v);
    return n;
}

static void migrate_db(const char *dburl)
{
    char bin[512], url[600], out[4096];
    tw_test_bin("tidewatch-migrate", bin, sizeof bin);
    snprintf(url, sizeof url, "--database-url=%s", dburl);
    char *argv[] = {bin, url, NULL};
    cr_assert_eq(tw_test_run(out, sizeof out, argv), 0, "%s", out);
}

static void make_tables(const char *url)
{
    PGconn *c = tw_test_connect(url);
    exec(c, "CREATE TABLE consumed (event_id bigint PRIMARY KEY, ref text NOT NULL,"
            " pos bigint NOT NULL)");
    exec(c, "CREATE TABLE consumed_ref (event_id bigint PRIMARY KEY, ref text NOT NULL,"
            " pos bigint NOT NULL)");
    /* No key: a batch applied twice would show as duplicate rows. */
    exec(c, "CREATE TABLE consumed_nopk (event_id bigint NOT NULL, ref text NOT NULL,"
            " pos bigint NOT NULL)");
    PQfinish(c);
}

static void setup(void)
{
    tw_test_db_create(&db, "consumer");
    migrate_db(db.url);
    make_tables(db.url);
    base = event_base_new();
    cr_assert(base);
}

static void teardown(void)
{
    if (base)
        event_base_free(base);
    tw_test_db_drop(&db);
}

TestSuite(consumer, .init = setup, .fini = teardown, .timeout = 60);

/* n events with source_ref prefix<from..from+n-1>, in one transaction. */
static void insert_events(PGconn *c, const char *prefix, int from, int n)
{
    char a[16], b[16];
    snprintf(a, sizeof a, "%d", from);
    snprintf(b, sizeof b, "%d", from + n - 1);
    const char *params[] = {prefix, a, b};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO events (source, source_ref, kind, payload)"
                               " SELECT 'test', $1 || g, 1, '\\x00'"
                               " FROM generate_series($2::int, $3::int) g",
                               3, NULL, params, NULL, NULL, 0);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s", PQresultErrorMessage(r));
    PQclear(r);
}

/* `table` holds every event exactly once, each at its rank in (tx, id)
 * order. */
static void check_table(PGconn *c, const char *table, long long n)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    cr_assert_eq(qnum(c, sql), n, "%s: %lld rows wanted", table, n);
    snprintf(sql, sizeof sql, "SELECT count(DISTINCT event_id) FROM %s", table);
    cr_assert_eq(qnum(c, sql), n, "%s: every event once", table);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM %s t JOIN (SELECT id, source_ref,"
             " row_number() OVER (ORDER BY tx, id) AS rn FROM events) e"
             " ON e.id = t.event_id AND e.rn = t.pos AND e.source_ref = t.ref",
             table);
    cr_assert_eq(qnum(c, sql), n, "%s: every row at its rank in (tx, id) order", table);
}

/* ---- Running consumers on the test's loop ---------------------------------- */

typedef struct harness {
    tw_pg *pg;
    tw_consumer *c;
    tw_test_apply apply;
} harness;

static void start_opts(harness *h, const char *url, const tw_consumer_opts *o, const char *table,
                       int sleep_ms)
{
    char err[256];
    memset(h, 0, sizeof *h);
    h->apply.table = table;
    h->apply.sleep_ms = sleep_ms;
    h->pg = tw_pg_new(base, url, &(tw_pg_opts){.name = o->name}, err, sizeof err);
    cr_assert(h->pg, "%s", err);
    h->c = tw_consumer_new(base, h->pg, o, tw_test_apply_events, &h->apply, err, sizeof err);
    cr_assert(h->c, "%s", err);
}

static void start(harness *h, const char *url, const char *name, const char *table, int batch,
                  int poll_ms, int sleep_ms, tw_metrics *m)
{
    tw_consumer_opts o = {.name = name, .batch_max = batch, .poll_ms = poll_ms, .metrics = m};
    start_opts(h, url, &o, table, sleep_ms);
}

static void stop(harness *h)
{
    tw_pg_free(h->pg); /* first: see the lifetime rule in tw_consumer.h */
    tw_consumer_free(h->c);
    memset(h, 0, sizeof *h);
}

static tw_consumer_stats stats(const harness *h)
{
    tw_consumer_stats s;
    tw_consumer_stats_get(h->c, &s);
    return s;
}

typedef int (*cond_fn)(void *arg);

typedef struct waiter {
    cond_fn f;
    void *arg;
    struct timespec deadline;
    int met;
} waiter;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    waiter *w = arg;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (w->f && w->f(w->arg)) {
        w->met = 1;
        event_base_loopbreak(base);
    } else if (t.tv_sec > w->deadline.tv_sec ||
               (t.tv_sec == w->deadline.tv_sec && t.tv_nsec >= w->deadline.tv_nsec)) {
        event_base_loopbreak(base);
    }
}

/* Run the loop until f(arg) holds (checked every 10 ms) or `seconds` have
 * passed; f NULL: run for `seconds`. Returns 1 if f held. */
static int run_until(cond_fn f, void *arg, double seconds)
{
    waiter w = {.f = f, .arg = arg};
    clock_gettime(CLOCK_MONOTONIC, &w.deadline);
    long long ns = (long long)w.deadline.tv_nsec + (long long)(seconds * 1e9);
    w.deadline.tv_sec += (time_t)(ns / 1000000000LL);
    w.deadline.tv_nsec = (long)(ns % 1000000000LL);
    struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, &w);
    struct timeval tv = {0, 10000};
    cr_assert(tick && event_add(tick, &tv) == 0);
    event_base_dispatch(base);
    event_free(tick);
    return w.met;
}

typedef struct applied_at_least {
    harness *h;
    uint64_t n;
} applied_at_least;

static int cond_applied(void *arg)
{
    applied_at_least *a = arg;
    return stats(a->h).applied_events >= a->n;
}

/* ---- (a) exactly once, in order; and a rebuild ------------------------------- */

static void on_rebuilt(const tw_pg_outcome *o, void *arg)
{
    *(int *)arg = o->kind == TW_PG_OK ? 1 : -1;
}

Test(consumer, applies_every_event_once_in_order_and_rebuilds)
{
    PGconn *c = tw_test_connect(db.url);
    for (int t = 0; t < 5; t++)
        insert_events(c, "a", t * 500, 500);
    harness h;
    start(&h, db.url, "orderly", "consumed", 100, 200, 0, NULL);
    applied_at_least want = {&h, 2500};
    cr_assert(run_until(cond_applied, &want, 20), "applied %llu of 2500",
              (unsigned long long)stats(&h).applied_events);
    run_until(NULL, NULL, 0.3); /* nothing more may come */
    tw_consumer_stats s = stats(&h);
    cr_assert_eq(s.applied_events, 2500);
    cr_assert_eq(s.batches, 25, "full batches of 100: %llu", (unsigned long long)s.batches);
    cr_assert_eq(s.conflicts, 0);
    check_table(c, "consumed", 2500);
    cr_assert_eq(qnum(c, "SELECT last_id FROM consumer_cursors WHERE consumer = 'orderly'"),
                 qnum(c, "SELECT id FROM events ORDER BY tx DESC, id DESC LIMIT 1"),
                 "the committed cursor is at the last event");

    /* Rebuild: truncate and reset in one transaction, then all over again. */
    int rebuilt = 0;
    cr_assert_eq(tw_consumer_rebuild(h.c, &(tw_pg_stmt){.stmt = "TRUNCATE consumed"}, 1,
                                     on_rebuilt, &rebuilt),
                 0);
    want.n = 5000;
    cr_assert(run_until(cond_applied, &want, 20), "rebuild reapplied %llu",
              (unsigned long long)stats(&h).applied_events);
    cr_assert_eq(rebuilt, 1);
    check_table(c, "consumed", 2500);
    stop(&h);
    PQfinish(c);
}

/* ---- Derived writes and cursor: one transaction ------------------------------- */

static int cond_failed(void *arg)
{
    return stats(arg).failures >= 2;
}

Test(consumer, a_failing_derived_write_leaves_the_cursor_where_it_was)
{
    PGconn *c = tw_test_connect(db.url);
    insert_events(c, "p", 0, 50);
    /* The derived row of the 30th event exists already: the batch's insert
     * fails on the key, and with it the whole transaction. */
    exec(c, "INSERT INTO consumed SELECT id, 'poison', 0 FROM events"
            " ORDER BY tx, id OFFSET 29 LIMIT 1");
    harness h;
    start(&h, db.url, "atomic", "consumed", 100, 100, 0, NULL);
    int failed_twice = run_until(cond_failed, &h, 5);
    cr_assert_eq(qnum(c, "SELECT last_id FROM consumer_cursors WHERE consumer = 'atomic'"), 0,
                 "the cursor did not move without its derived writes");
    cr_assert_eq(qnum(c, "SELECT count(*) FROM consumed"), 1,
                 "no derived write of the failed batch was kept");
    cr_assert(failed_twice, "the batch failed (twice: it is retried at each poll)");
    cr_assert_eq(stats(&h).applied_events, 0);
    /* Once the obstacle is gone, the retried batch commits whole. */
    exec(c, "DELETE FROM consumed");
    applied_at_least want = {&h, 50};
    cr_assert(run_until(cond_applied, &want, 10));
    check_table(c, "consumed", 50);
    stop(&h);
    PQfinish(c);
}

/* The prepare reads run before apply, see the state the batch's writes
 * will find, and a refusal there moves nothing. */
Test(consumer, prepare_reads_reach_apply_and_a_refusal_moves_nothing)
{
    PGconn *c = tw_test_connect(db.url);
    insert_events(c, "r", 0, 700);
    harness h;
    tw_consumer_opts o = {.name = "reader", .batch_max = 100, .poll_ms = 100,
                          .prepare = tw_test_prepare_count};
    start_opts(&h, db.url, &o, "consumed", 0);
    h.apply.use_reads = 1;
    h.apply.prepare_refuse = 1;
    int failed_twice = run_until(cond_failed, &h, 5);
    cr_assert(failed_twice, "a refusing prepare fails the batch (retried at each poll)");
    cr_assert_eq(qnum(c, "SELECT count(*) FROM consumed"), 0);
    cr_assert_eq(qnum(c, "SELECT last_id FROM consumer_cursors WHERE consumer = 'reader'"), 0,
                 "the cursor did not move");
    h.apply.prepare_refuse = 0;
    applied_at_least want = {&h, 700};
    cr_assert(run_until(cond_applied, &want, 20), "applied %llu of 700",
              (unsigned long long)stats(&h).applied_events);
    /* pos = the count read before each batch + rank: right only when every
     * read saw exactly the rows of the batches before it. */
    check_table(c, "consumed", 700);
    cr_assert_geq(h.apply.prepared, 7 + 2);
    stop(&h);
    PQfinish(c);
}

/* ---- (b) NOTIFY wakes it ------------------------------------------------------ */

/* On a private cluster: the horizon is cluster-wide, and a transaction of
 * another suite open at the moment of the NOTIFY would leave the read empty
 * until the (here 30 s) poll. */
Test(consumer, notify_wakes_it_well_before_the_poll)
{
    tw_test_cluster cl;
    tw_test_cluster_create(&cl);
    migrate_db(cl.url);
    make_tables(cl.url);
    PGconn *c = tw_test_connect(cl.url);
    harness h;
    start(&h, cl.url, "woken", "consumed", 100, 30000, 0, NULL);
    /* Started: the cursor is loaded and the first (empty) read done. */
    run_until(NULL, NULL, 0.5);
    cr_assert(stats(&h).loaded);
    cr_assert_eq(stats(&h).applied_events, 0);

    insert_events(c, "b", 0, 3);
    double t0 = now_s();
    exec(c, "NOTIFY tidewatch_events"); /* as ingest does after its commit */
    applied_at_least want = {&h, 3};
    int met = run_until(cond_applied, &want, 5);
    double took = now_s() - t0;
    cr_log_info("NOTIFY to applied: %.3f s (poll interval 30 s)", took);
    cr_assert(met, "not woken within 5 s by the NOTIFY (poll interval 30 s)");
    check_table(c, "consumed", 3);
    stop(&h);
    PQfinish(c);
    tw_test_cluster_destroy(&cl);
}

/* ---- Database loss ------------------------------------------------------------ */

typedef struct rows_at_least {
    PGconn **c;
    const char *url;
    long long n;
} rows_at_least;

/* The table may be unreachable for a moment (the server restarts):
 * reconnect as needed. */
static int cond_rows(void *arg)
{
    rows_at_least *r = arg;
    if (!*r->c || PQstatus(*r->c) != CONNECTION_OK) {
        PQfinish(*r->c);
        *r->c = PQconnectdb(r->url);
        if (PQstatus(*r->c) != CONNECTION_OK)
            return 0;
    }
    PGresult *res = PQexec(*r->c, "SELECT count(*) FROM consumed");
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK && atoll(PQgetvalue(res, 0, 0)) >= r->n;
    PQclear(res);
    return ok;
}

Test(consumer, resumes_from_the_committed_cursor_after_a_server_crash, .timeout = 90)
{
    tw_test_cluster cl;
    tw_test_cluster_create(&cl);
    migrate_db(cl.url);
    make_tables(cl.url);
    PGconn *c = tw_test_connect(cl.url);
    for (int t = 0; t < 3; t++)
        insert_events(c, "s", t * 1000, 1000);
    PQfinish(c);
    harness h;
    start(&h, cl.url, "survivor", "consumed", 100, 200, 10, NULL);
    applied_at_least some = {&h, 300};
    cr_assert(run_until(cond_applied, &some, 15));
    /* Crash the server mid-batch (immediate: no clean shutdown). */
    tw_test_cluster_stop(&cl, "immediate");
    run_until(NULL, NULL, 0.5); /* the consumer notices */
    tw_test_cluster_start(&cl);
    c = NULL;
    rows_at_least all = {&c, cl.url, 3000};
    cr_assert(run_until(cond_rows, &all, 30), "not all applied after the restart");
    run_until(NULL, NULL, 0.3);
    cr_assert_geq(tw_pg_connections(h.pg), 2, "it reconnected");
    check_table(c, "consumed", 3000);
    stop(&h);
    PQfinish(c);
    tw_test_cluster_destroy(&cl);
}

/* ---- (c) late commits --------------------------------------------------------- */

static char *refs_in_order(PGconn *c)
{
    return tw_test_query1(c, "SELECT coalesce(string_agg(ref, ' ' ORDER BY pos), '') FROM consumed");
}

Test(consumer, late_commit_is_not_skipped)
{
    PGconn *a = tw_test_connect(db.url), *b = tw_test_connect(db.url);
    harness h;
    start(&h, db.url, "patient", "consumed", 100, 100, 0, NULL);
    /* A takes the lower id and stays open; B takes a higher id and commits. */
    exec(a, "BEGIN");
    insert_events(a, "A", 1, 1);
    insert_events(b, "B", 1, 1);
    exec(b, "NOTIFY tidewatch_events");
    cr_assert_lt(qnum(a, "SELECT id FROM events WHERE source_ref = 'A1'"),
                 qnum(b, "SELECT id FROM events WHERE source_ref = 'B1'"));
    run_until(NULL, NULL, 0.8); /* several polls */
    char *v = refs_in_order(b);
    cr_assert_str_eq(v, "", "nothing applied while an older transaction is open");
    free(v);
    exec(a, "COMMIT");
    exec(a, "NOTIFY tidewatch_events");
    applied_at_least want = {&h, 2};
    cr_assert(run_until(cond_applied, &want, 10));
    run_until(NULL, NULL, 0.3);
    v = refs_in_order(b);
    cr_assert_str_eq(v, "A1 B1", "the late commit is applied, in (tx, id) order");
    free(v);
    check_table(b, "consumed", 2);
    stop(&h);
    PQfinish(a);
    PQfinish(b);
}

/* ---- (d) two instances of one consumer ------------------------------------------ */

typedef struct twins {
    PGconn *c;
} twins;

static int cond_nopk_full(void *arg)
{
    twins *t = arg;
    return qnum(t->c, "SELECT count(*) FROM consumed_nopk") >= 2000;
}

Test(consumer, two_instances_never_both_advance)
{
    PGconn *c = tw_test_connect(db.url);
    for (int t = 0; t < 4; t++)
        insert_events(c, "d", t * 500, 500);
    /* Same name, separate connections; each batch sleeps 20 ms inside its
     * transaction, so the two keep reading the same cursor. The table has
     * no key: without the guarded cursor move, both would insert a batch. */
    harness h1, h2;
    start(&h1, db.url, "twin", "consumed_nopk", 50, 100, 20, NULL);
    start(&h2, db.url, "twin", "consumed_nopk", 50, 100, 20, NULL);
    twins t = {c};
    cr_assert(run_until(cond_nopk_full, &t, 30), "not all applied");
    run_until(NULL, NULL, 0.5);
    tw_consumer_stats s1 = stats(&h1), s2 = stats(&h2);
    cr_log_info("twin 1 applied %llu (conflicts %llu), twin 2 applied %llu (conflicts %llu)",
                (unsigned long long)s1.applied_events, (unsigned long long)s1.conflicts,
                (unsigned long long)s2.applied_events, (unsigned long long)s2.conflicts);
    check_table(c, "consumed_nopk", 2000);
    cr_assert_eq(s1.applied_events + s2.applied_events, 2000, "no batch committed twice");
    cr_assert_gt(s1.conflicts + s2.conflicts, 0, "the two did collide (the guard was exercised)");
    stop(&h1);
    stop(&h2);
    PQfinish(c);
}

/* ---- (e) SIGKILL at any instant -------------------------------------------------- */

static pid_t spawn_probe(const char *name, const char *table)
{
    const char *bd = getenv("TW_BUILD_DIR");
    cr_assert(bd, "TW_BUILD_DIR is not set (CTest sets it)");
    char path[512];
    snprintf(path, sizeof path, "%s/tests/consumer_probe", bd);
    cr_assert(access(path, X_OK) == 0, "%s is not built", path);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char *argv[] = {path, db.url, (char *)name, (char *)table, "100", "10", NULL};
        execv(path, argv);
        _exit(127);
    }
    return pid;
}

static void kill_probe(pid_t pid, int sig)
{
    cr_assert_eq(kill(pid, sig), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    if (sig == SIGKILL)
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the probe died by SIGKILL");
    else
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the probe stopped cleanly");
}

static long long count_rows(PGconn *c, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return qnum(c, sql);
}

/* Run a probe until `table` holds n rows (30 s at most), then stop it. */
static void probe_to_completion(PGconn *c, const char *name, const char *table, long long n)
{
    pid_t pid = spawn_probe(name, table);
    usleep(500000); /* let it install its SIGTERM handler, even when there is nothing to do */
    long long got = 0;
    for (int i = 0; i < 600 && (got = count_rows(c, table)) < n; i++)
        usleep(50000);
    kill_probe(pid, SIGTERM);
    cr_assert_eq(got, n, "%s: %lld of %lld applied", table, got, n);
}

Test(consumer, sigkilled_and_restarted_equals_an_uninterrupted_run, .timeout = 120)
{
    PGconn *c = tw_test_connect(db.url);
    for (int t = 0; t < 10; t++)
        insert_events(c, "e", t * 1000, 1000);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    int midway = 0, kills = 8, added = 10000;
    for (int k = 0; k < kills; k++) {
        pid_t pid = spawn_probe("killed", "consumed");
        usleep((useconds_t)(100000 + rand() % 300000));
        kill_probe(pid, SIGKILL);
        long long got = count_rows(c, "consumed");
        fprintf(stderr, "consumer test: SIGKILL %d of %d after %lld of %d events applied\n",
                k + 1, kills, got, added);
        if (got > 0 && got < added)
            midway++;
        if (k == 2 || k == 4) { /* more of the log arrives meanwhile */
            for (int t = 0; t < 5; t++, added += 1000)
                insert_events(c, "e", added, 1000);
        }
    }
    cr_assert_eq(added, 20000);
    cr_assert_gt(midway, 0, "at least one kill landed while the consumer was working");
    probe_to_completion(c, "killed", "consumed", 20000);
    probe_to_completion(c, "reference", "consumed_ref", 20000);

    check_table(c, "consumed", 20000);
    check_table(c, "consumed_ref", 20000);
    cr_assert_eq(qnum(c, "SELECT count(*) FROM (SELECT * FROM consumed EXCEPT"
                         " SELECT * FROM consumed_ref) x"),
                 0);
    cr_assert_eq(qnum(c, "SELECT count(*) FROM (SELECT * FROM consumed_ref EXCEPT"
                         " SELECT * FROM consumed) x"),
                 0);
    PQfinish(c);
}

/* ---- (f) under the provenance role ------------------------------------------------ */

Test(consumer, provenance_role_moves_only_its_own_cursor)
{
    PGconn *admin = tw_test_connect(db.url);
    char name[64], sql[256], url[700];
    snprintf(name, sizeof name, "tw_t_cprov_%d", (int)getpid());
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", name);
    exec(admin, sql);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN IN ROLE tidewatch_provenance", name);
    exec(admin, sql);
    snprintf(sql, sizeof sql, "GRANT SELECT, INSERT ON consumed, consumed_nopk TO %s", name);
    exec(admin, sql);
    snprintf(url, sizeof url, "%s user=%s", db.url, name);
    exec(admin, "INSERT INTO consumer_cursors (consumer) VALUES ('alerts')");
    insert_events(admin, "f", 0, 300);

    harness mine, theirs;
    start(&mine, url, "provenance", "consumed", 100, 100, 0, NULL);
    start(&theirs, url, "alerts", "consumed_nopk", 100, 100, 0, NULL);
    applied_at_least want = {&mine, 300};
    cr_assert(run_until(cond_applied, &want, 15), "provenance applied %llu of 300",
              (unsigned long long)stats(&mine).applied_events);
    run_until(NULL, NULL, 0.5);
    check_table(admin, "consumed", 300);
    tw_consumer_stats s = stats(&theirs);
    cr_assert_eq(s.applied_events, 0, "the provenance login cannot consume as alerts");
    cr_assert_eq(s.loaded, 0, "nor even see alerts' cursor");
    cr_assert_gt(s.failures, 0);
    cr_assert_eq(count_rows(admin, "consumed_nopk"), 0);
    cr_assert_eq(qnum(admin, "SELECT last_id FROM consumer_cursors WHERE consumer = 'alerts'"), 0,
                 "alerts' cursor did not move");
    stop(&mine);
    stop(&theirs);

    /* The guarded move itself refuses another consumer's row. */
    PGconn *p = tw_test_connect(url);
    PGresult *r = PQexec(p, "SELECT consumer_advance('alerts', '0', 0, '1', 1)");
    cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    cr_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), TW_CONSUMER_SQLSTATE_MOVED);
    PQclear(r);
    PQfinish(p);

    snprintf(sql, sizeof sql, "DROP OWNED BY %s", name);
    exec(admin, sql);
    snprintf(sql, sizeof sql, "DROP ROLE %s", name);
    exec(admin, sql);
    PQfinish(admin);
}

/* ---- Lag in /metrics ------------------------------------------------------------------ */

static int cond_lag40(void *arg)
{
    return stats(arg).lag_events == 40;
}

Test(consumer, lag_shows_in_metrics)
{
    PGconn *c = tw_test_connect(db.url);
    insert_events(c, "g", 0, 40);
    tw_metrics *m = tw_metrics_new("test");
    cr_assert(m);
    harness h;
    start(&h, db.url, "stuck", "consumed", 100, 100, 0, m);
    h.apply.refuse = 1; /* it reads, but never applies */
    cr_assert(run_until(cond_lag40, &h, 10), "lag %lld", (long long)stats(&h).lag_events);
    cr_assert_gt(stats(&h).lag_seconds, 0.0);
    char *text = tw_metrics_render_string(m, NULL);
    cr_assert(text);
    cr_assert(strstr(text, "tidewatch_consumer_cursor_lag_events{service=\"test\","
                           "consumer=\"stuck\"} 40\n"),
              "%s", text);
    cr_assert(strstr(text, "tidewatch_consumer_cursor_lag_seconds{service=\"test\","
                           "consumer=\"stuck\"} "),
              "%s", text);
    cr_assert(strstr(text, "tidewatch_consumer_applied_events_total{service=\"test\","
                           "consumer=\"stuck\"} 0\n"),
              "%s", text);
    free(text);

    /* Now let it apply: the lag drops to 0. */
    h.apply.refuse = 0;
    applied_at_least want = {&h, 40};
    cr_assert(run_until(cond_applied, &want, 10));
    cr_assert(run_until((cond_fn)NULL, NULL, 0.4) == 0);
    cr_assert_eq(stats(&h).lag_events, 0);
    cr_assert_eq(stats(&h).lag_seconds, 0.0);
    stop(&h);
    tw_metrics_free(m);
    PQfinish(c);
}

/* ---- Never ahead of an upstream consumer ------------------------------------------------ */

Test(consumer, never_runs_ahead_of_its_upstream_and_follows_its_commits)
{
    /* A private cluster: with a 30 s poll, another suite's open transaction
     * in the shared test server would hold the log's horizon (cluster-wide)
     * and no NOTIFY would follow its end. */
    tw_test_cluster cl;
    tw_test_cluster_create(&cl);
    migrate_db(cl.url);
    make_tables(cl.url);
    PGconn *c = tw_test_connect(cl.url);
    insert_events(c, "u", 0, 100);
    insert_events(c, "u", 100, 200);
    /* alerts follows provenance, as the alerts login (row-level security
     * lets it read provenance's cursor); provenance has applied the first
     * 100 events. */
    char name[64], sql[256], url[700];
    snprintf(name, sizeof name, "tw_t_calerts_%d", (int)getpid());
    snprintf(sql, sizeof sql, "DROP ROLE IF EXISTS %s", name);
    exec(c, sql);
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN IN ROLE tidewatch_alerts", name);
    exec(c, sql);
    snprintf(sql, sizeof sql, "GRANT SELECT, INSERT ON consumed TO %s", name);
    exec(c, sql);
    snprintf(url, sizeof url, "%s user=%s", cl.url, name);
    exec(c, "INSERT INTO consumer_cursors (consumer, last_tx, last_id)"
            " SELECT 'provenance', tx, id FROM events ORDER BY tx, id OFFSET 99 LIMIT 1");
    harness follower, leader;
    /* A 30 s poll: only the leader's commits can wake the follower in time. */
    tw_consumer_opts fo = {.name = "alerts", .upstream = "provenance", .batch_max = 1000,
                           .poll_ms = 30000};
    start_opts(&follower, url, &fo, "consumed", 0);
    applied_at_least want = {&follower, 100};
    cr_assert(run_until(cond_applied, &want, 10));
    run_until(NULL, NULL, 0.5);
    cr_assert_eq(stats(&follower).applied_events, 100, "stopped at the leader's cursor");
    check_table(c, "consumed", 100);

    start(&leader, cl.url, "provenance", "consumed_nopk", 50, 100, 0, NULL);
    want.n = 300;
    cr_assert(run_until(cond_applied, &want, 5),
              "the leader's commits wake the follower (applied %llu of 300)",
              (unsigned long long)stats(&follower).applied_events);
    check_table(c, "consumed", 300);
    stop(&leader);
    stop(&follower);
    snprintf(sql, sizeof sql, "DROP OWNED BY %s", name);
    exec(c, sql);
    snprintf(sql, sizeof sql, "DROP ROLE %s", name);
    exec(c, sql);
    PQfinish(c);
    tw_test_cluster_destroy(&cl);
}
