/* tw_pg against a real PostgreSQL: connect, prepared statements (text and
 * binary), pipelining in order, batches (commit, rollback, commit-time
 * failure), LISTEN/NOTIFY, fail-fast when down, restart and crash of a
 * private cluster (connection lost, outcome unknown, reconnect, resync),
 * COPY (text, binary, streamed, failing), freeing with work pending, and
 * the session settings every connection gets (idle-in-transaction and
 * statement timeouts, application name), overridable by the connection
 * string. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/event.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support_pg.h"
#include "tw_log.h"
#include "tw_pg.h"

static tw_test_db db;
static tw_test_cluster cluster;
static struct event_base *base;

static void setup(void)
{
    tw_log_init("test_pg", TW_LOG_INFO, TW_LOG_FORMAT_TEXT);
    tw_test_db_create(&db, "pg");
    base = event_base_new();
    cr_assert(base);
}

static void teardown(void)
{
    event_base_free(base);
    tw_test_db_drop(&db);
    tw_test_cluster_destroy(&cluster);
    tw_log_shutdown();
}

TestSuite(pg, .init = setup, .fini = teardown, .timeout = 120);

/* ---- Loop helpers ------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run the loop for about ms milliseconds. */
static void run_for(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* Run the loop until *v >= want, at most timeout_ms. Returns 1 if reached. */
static int run_until(const int *v, int want, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (*v < want) {
        if (now_ms() >= end)
            return 0;
        run_for(5);
    }
    return 1;
}

/* ---- Callback recorders ----------------------------------------------- */

typedef struct state_rec {
    int up, ups, downs;
} state_rec;

static void on_state(void *arg, int up)
{
    state_rec *s = arg;
    s->up = up;
    if (up)
        s->ups++;
    else
        s->downs++;
}

#define MAXR 8
typedef struct res_rec {
    int done;
    int seq; /* order of completion, from a shared counter */
    int *counter;
    tw_pg_kind kind;
    char sqlstate[6];
    char message[512];
    char constraint[64];
    int failed_step;
    size_t n;
    PGresult *r[MAXR]; /* taken from the outcome */
} res_rec;

static void on_res(const tw_pg_outcome *o, void *arg)
{
    res_rec *x = arg;
    x->done++;
    if (x->counter)
        x->seq = ++*x->counter;
    x->kind = o->kind;
    snprintf(x->sqlstate, sizeof x->sqlstate, "%s", o->sqlstate);
    snprintf(x->message, sizeof x->message, "%s", o->message);
    const char *cn = o->error ? PQresultErrorField(o->error, PG_DIAG_CONSTRAINT_NAME) : NULL;
    snprintf(x->constraint, sizeof x->constraint, "%s", cn ? cn : "");
    x->failed_step = o->failed_step;
    x->n = o->nresults;
    for (size_t i = 0; i < o->nresults && i < MAXR; i++) {
        x->r[i] = o->results[i]; /* take it */
        o->results[i] = NULL;
    }
}

static void res_clear(res_rec *x)
{
    for (size_t i = 0; i < MAXR; i++)
        PQclear(x->r[i]);
    memset(x, 0, sizeof *x);
}

static const char *val(const res_rec *x, size_t i)
{
    cr_assert(i < MAXR && x->r[i], "no result %zu (kind %s: %s)", i, tw_pg_kind_name(x->kind),
              x->message);
    cr_assert(PQntuples(x->r[i]) >= 1, "result %zu has no rows", i);
    return PQgetvalue(x->r[i], 0, 0);
}

typedef struct listen_rec {
    int resyncs, notes;
    char last[128];
    char channel[64];
} listen_rec;

static void on_note(void *arg, const char *channel, const char *payload, int resync)
{
    listen_rec *l = arg;
    snprintf(l->channel, sizeof l->channel, "%s", channel);
    if (resync) {
        cr_assert_null(payload);
        l->resyncs++;
    } else {
        l->notes++;
        snprintf(l->last, sizeof l->last, "%s", payload);
    }
}

static tw_pg *connect_pg(const char *url, state_rec *s, const tw_pg_opts *extra)
{
    tw_pg_opts o = {0};
    if (extra)
        o = *extra;
    o.name = "test";
    o.on_state = on_state;
    o.state_arg = s;
    char err[256];
    tw_pg *pg = tw_pg_new(base, url, &o, err, sizeof err);
    cr_assert(pg, "tw_pg_new: %s", err);
    return pg;
}

static void wait_up(state_rec *s, int ups)
{
    cr_assert(run_until(&s->ups, ups, 15000), "not connected (ups %d, want %d)", s->ups, ups);
    cr_assert(s->up);
}

/* Run one query and wait for its answer. */
static void query_sync(tw_pg *pg, res_rec *r, const char *sql)
{
    cr_assert_eq(tw_pg_query(pg, sql, 0, NULL, NULL, NULL, 0, on_res, r), 0);
    cr_assert(run_until(&r->done, 1, 10000), "no answer to %s", sql);
}

static void exec_ok(tw_pg *pg, const char *sql)
{
    res_rec r = {0};
    query_sync(pg, &r, sql);
    cr_assert_eq(r.kind, TW_PG_OK, "%s: %s", sql, r.message);
    res_clear(&r);
}

static int count_rows(const char *url, const char *sql)
{
    PGconn *c = tw_test_connect(url);
    char *v = tw_test_query1(c, sql);
    int n = atoi(v);
    free(v);
    PQfinish(c);
    return n;
}

/* ---- Tests ------------------------------------------------------------- */

Test(pg, connect_and_simple_query)
{
    state_rec s = {0};
    tw_pg *pg = connect_pg(db.url, &s, NULL);
    cr_assert(!tw_pg_is_up(pg), "connecting happens on the loop, not in tw_pg_new");
    wait_up(&s, 1);
    cr_assert(tw_pg_is_up(pg));
    cr_assert_eq(tw_pg_connections(pg), 1);

    res_rec r = {0};
    cr_assert_eq(tw_pg_query(pg, "SELECT 40 + 2", 0, NULL, NULL, NULL, 0, on_res, &r), 0);
    cr_assert_eq(r.done, 0, "callbacks never run inside tw_pg_query");
    cr_assert_eq(tw_pg_pending(pg), 1);
    cr_assert(run_until(&r.done, 1, 5000));
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    cr_assert_eq(r.failed_step, -1);
    cr_assert_str_eq(r.sqlstate, "");
    cr_assert_str_eq(val(&r, 0), "42");
    cr_assert_eq(tw_pg_pending(pg), 0);
    res_clear(&r);

    /* A query error names the statement and SQLSTATE; the next query is fine. */
    query_sync(pg, &r, "SELECT 1 / 0");
    cr_assert_eq(r.kind, TW_PG_QUERY_ERROR);
    cr_assert_str_eq(r.sqlstate, "22012");
    cr_assert_eq(r.failed_step, 0);
    cr_assert(strstr(r.message, "division by zero"), "%s", r.message);
    cr_assert_null(r.r[0]);
    res_clear(&r);
    query_sync(pg, &r, "SELECT 'still fine'");
    cr_assert_str_eq(val(&r, 0), "still fine");
    res_clear(&r);

    /* Invalid arguments are refused without a callback. */
    cr_assert_eq(tw_pg_query(pg, "", 0, NULL, NULL, NULL, 0, on_res, &r), -1);
    cr_assert_eq(tw_pg_query(pg, "SELECT $1", 1, NULL, NULL, NULL, 0, on_res, &r), -1);
    int fmt[1] = {1};
    const char *v1[1] = {"x"};
    cr_assert_eq(tw_pg_query(pg, "SELECT $1", 1, v1, NULL, fmt, 0, on_res, &r), -1,
                 "binary values need lengths");
    run_for(20);
    cr_assert_eq(r.done, 0);
    tw_pg_free(pg);
}

Test(pg, prepared_statements_text_and_binary)
{
    state_rec s = {0};
    tw_pg *pg = connect_pg(db.url, &s, NULL);
    /* Registered before the connection exists... */
    cr_assert_eq(tw_pg_prepare(pg, "add", "SELECT $1::int4 + $2::int4", 2, NULL), 0);
    cr_assert_eq(tw_pg_prepare(pg, "add", "SELECT 1", 0, NULL), -1, "duplicate name");
    cr_assert_eq(tw_pg_prepare(pg, "broken", "SELEC nonsense", 0, NULL), 0);
    wait_up(&s, 1);
    /* ...and after: prepared at once, ahead of later queries. */
    Oid bytea_oid[1] = {17};
    cr_assert_eq(tw_pg_prepare(pg, "echo", "SELECT $1", 1, bytea_oid), 0);

    res_rec r = {0};
    const char *tv[2] = {"2", "3"};
    cr_assert_eq(tw_pg_query(pg, "add", 2, tv, NULL, NULL, 0, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 5000));
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    cr_assert_str_eq(val(&r, 0), "5");
    res_clear(&r);

    /* Binary int4 parameters in network order, binary result. */
    uint32_t a = htonl(1000), b = htonl(234);
    const char *bv[2] = {(const char *)&a, (const char *)&b};
    int lens[2] = {4, 4}, fmts[2] = {1, 1};
    cr_assert_eq(tw_pg_query(pg, "add", 2, bv, lens, fmts, 1, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 5000));
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    cr_assert_eq(PQfformat(r.r[0], 0), 1);
    cr_assert_eq(PQgetlength(r.r[0], 0, 0), 4);
    uint32_t sum;
    memcpy(&sum, PQgetvalue(r.r[0], 0, 0), 4);
    cr_assert_eq(ntohl(sum), 1234);
    res_clear(&r);

    /* Binary bytea with NUL and high bytes round-trips. */
    const char raw[5] = {'a', '\0', 'b', (char)0xff, '\n'};
    const char *ev[1] = {raw};
    int elen[1] = {5}, efmt[1] = {1};
    cr_assert_eq(tw_pg_query(pg, "echo", 1, ev, elen, efmt, 1, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 5000));
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    cr_assert_eq(PQgetlength(r.r[0], 0, 0), 5);
    cr_assert_eq(memcmp(PQgetvalue(r.r[0], 0, 0), raw, 5), 0);
    res_clear(&r);

    /* NULL parameter. */
    const char *nv[2] = {"1", NULL};
    cr_assert_eq(tw_pg_query(pg, "add", 2, nv, NULL, NULL, 0, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 5000));
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    cr_assert(PQgetisnull(r.r[0], 0, 0));
    res_clear(&r);

    /* Wrong parameter count for a registered statement: refused. */
    cr_assert_eq(tw_pg_query(pg, "add", 1, tv, NULL, NULL, 0, on_res, &r), -1);
    /* A statement PostgreSQL rejected: its queries fail with 26000. */
    query_sync(pg, &r, "broken");
    cr_assert_eq(r.kind, TW_PG_QUERY_ERROR);
    cr_assert_str_eq(r.sqlstate, "26000", "%s", r.message);
    res_clear(&r);
    tw_pg_free(pg);
}

typedef struct order_ctx {
    int next;
    int bad;
    int done;
} order_ctx;

typedef struct order_arg {
    order_ctx *ctx;
    int i;
} order_arg;

static void on_ordered(const tw_pg_outcome *o, void *arg)
{
    order_arg *a = arg;
    order_ctx *c = a->ctx;
    if (c->next != a->i || o->kind != TW_PG_OK || o->results[0] == NULL ||
        atoi(PQgetvalue(o->results[0], 0, 0)) != a->i * 2)
        c->bad++;
    c->next = a->i + 1;
    c->done++;
}

/* Submit 1000 queries at once and check they are answered in order. */
static void thousand_in_order(int max_in_flight)
{
    state_rec s = {0};
    tw_pg_opts o = {.max_in_flight = max_in_flight};
    tw_pg *pg = connect_pg(db.url, &s, &o);
    cr_assert_eq(tw_pg_prepare(pg, "twice", "SELECT $1::int * 2", 1, NULL), 0);
    wait_up(&s, 1);
    enum { N = 1000 };
    static order_arg args[N];
    order_ctx ctx = {0};
    for (int i = 0; i < N; i++) {
        args[i] = (order_arg){&ctx, i};
        char num[16];
        snprintf(num, sizeof num, "%d", i);
        const char *v[1] = {num};
        /* Alternate prepared and unnamed statements. */
        const char *stmt = i % 2 ? "twice" : "SELECT $1::int * 2";
        cr_assert_eq(tw_pg_query(pg, stmt, 1, v, NULL, NULL, 0, on_ordered, &args[i]), 0);
    }
    cr_assert_eq(tw_pg_pending(pg), N);
    int64_t t0 = now_ms();
    cr_assert(run_until(&ctx.done, N, 30000), "only %d of %d answered", ctx.done, N);
    cr_assert_eq(ctx.bad, 0, "%d answers out of order or wrong", ctx.bad);
    cr_assert_eq(ctx.next, N);
    cr_assert_eq(tw_pg_pending(pg), 0);
    cr_log_info("1000 pipelined queries (max %d in flight) in %lld ms",
                max_in_flight ? max_in_flight : 256, (long long)(now_ms() - t0));
    tw_pg_free(pg);
}

Test(pg, thousand_pipelined_queries_in_order)
{
    thousand_in_order(0);  /* default limit (256) */
    thousand_in_order(7);  /* most wait in the queue behind a full pipeline */
}

static const char *events_ddl =
    "CREATE TABLE ev (id bigserial PRIMARY KEY, source text NOT NULL, ref text NOT NULL, "
    "CONSTRAINT ev_source_ref UNIQUE (source, ref))";

Test(pg, batch_commit_is_visible_with_all_results)
{
    state_rec s = {0};
    tw_pg *pg = connect_pg(db.url, &s, NULL);
    wait_up(&s, 1);
    exec_ok(pg, events_ddl);
    const char *ins = "INSERT INTO ev (source, ref) VALUES ($1, $2) RETURNING id";
    cr_assert_eq(tw_pg_prepare(pg, "ins", ins, 2, NULL), 0);
    const char *v1[2] = {"shop", "r1"}, *v2[2] = {"shop", "r2"};
    tw_pg_stmt st[3] = {
        {.stmt = "ins", .nparams = 2, .values = v1},
        {.stmt = ins, .nparams = 2, .values = v2}, /* the same, unnamed */
        {.stmt = "SELECT count(*) FROM ev"},
    };
    res_rec r = {0};
    cr_assert_eq(tw_pg_batch(pg, st, 3, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 5000));
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    cr_assert_eq(r.n, 3);
    cr_assert_eq(PQntuples(r.r[0]), 1, "RETURNING row of statement 0");
    cr_assert_eq(PQntuples(r.r[1]), 1, "RETURNING row of statement 1");
    cr_assert_neq(atoll(val(&r, 0)), atoll(val(&r, 1)));
    cr_assert_str_eq(val(&r, 2), "2", "the batch sees its own rows");
    res_clear(&r);
    cr_assert_eq(count_rows(db.url, "SELECT count(*) FROM ev"), 2, "committed and visible");
    tw_pg_free(pg);
}

Test(pg, failing_batch_rolls_back_everything)
{
    state_rec s = {0};
    tw_pg *pg = connect_pg(db.url, &s, NULL);
    wait_up(&s, 1);
    exec_ok(pg, events_ddl);
    const char *ins = "INSERT INTO ev (source, ref) VALUES ($1, $2)";
    const char *a[2] = {"s", "a"}, *b[2] = {"s", "b"}, *c[2] = {"s", "c"};
    tw_pg_stmt st[4] = {
        {.stmt = ins, .nparams = 2, .values = a},
        {.stmt = ins, .nparams = 2, .values = b},
        {.stmt = ins, .nparams = 2, .values = a}, /* duplicate (source, ref) */
        {.stmt = ins, .nparams = 2, .values = c},
    };
    int counter = 0;
    res_rec r = {.counter = &counter}, after = {.counter = &counter};
    cr_assert_eq(tw_pg_batch(pg, st, 4, on_res, &r), 0);
    /* Pipelined right behind the failing batch: must not be affected. */
    cr_assert_eq(tw_pg_query(pg, "SELECT count(*) FROM ev", 0, NULL, NULL, NULL, 0, on_res, &after),
                 0);
    cr_assert(run_until(&after.done, 1, 5000));
    cr_assert_eq(r.done, 1);
    cr_assert_lt(r.seq, after.seq, "answers in submission order");
    cr_assert_eq(r.kind, TW_PG_QUERY_ERROR, "%s", r.message);
    cr_assert_eq(r.failed_step, 2);
    cr_assert_str_eq(r.sqlstate, "23505");
    cr_assert_str_eq(r.constraint, "ev_source_ref");
    cr_assert_null(r.r[2]);
    cr_assert_null(r.r[3], "skipped statement has no result");
    cr_assert_eq(after.kind, TW_PG_OK, "session clean after the failed batch: %s", after.message);
    cr_assert_str_eq(val(&after, 0), "0", "nothing half-written");
    res_clear(&r);
    res_clear(&after);
    cr_assert_eq(count_rows(db.url, "SELECT count(*) FROM ev"), 0);

    /* A failure at commit time (deferred constraint) blames index n. */
    exec_ok(pg, "CREATE TABLE p (id int PRIMARY KEY)");
    exec_ok(pg, "CREATE TABLE ch (pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED)");
    tw_pg_stmt d[2] = {{.stmt = "INSERT INTO p VALUES (1)"}, {.stmt = "INSERT INTO ch VALUES (7)"}};
    cr_assert_eq(tw_pg_batch(pg, d, 2, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 5000));
    cr_assert_eq(r.kind, TW_PG_QUERY_ERROR, "%s", r.message);
    cr_assert_str_eq(r.sqlstate, "23503");
    cr_assert_eq(r.failed_step, 2, "commit-time failure blames nresults");
    res_clear(&r);
    cr_assert_eq(count_rows(db.url, "SELECT count(*) FROM p"), 0);
    exec_ok(pg, "SELECT 1");
    tw_pg_free(pg);
}

Test(pg, listen_notify)
{
    state_rec s = {0};
    tw_pg *pg = connect_pg(db.url, &s, NULL);
    listen_rec l = {0}, q = {0}, late = {0};
    cr_assert_eq(tw_pg_listen(pg, "tw_events", on_note, &l), 0);
    cr_assert_eq(tw_pg_listen(pg, "Odd \"Name\"", on_note, &q), 0);
    cr_assert_eq(tw_pg_listen(pg, "", on_note, &q), -1);
    wait_up(&s, 1);
    cr_assert(run_until(&l.resyncs, 1, 5000), "resync when the LISTEN becomes active");
    cr_assert(run_until(&q.resyncs, 1, 5000));

    PGconn *other = tw_test_connect(db.url);
    PQclear(PQexec(other, "NOTIFY tw_events, 'hello'"));
    PQclear(PQexec(other, "NOTIFY \"Odd \"\"Name\"\"\", 'quoted'"));
    PQclear(PQexec(other, "NOTIFY unrelated, 'nobody listens'"));
    cr_assert(run_until(&l.notes, 1, 5000));
    cr_assert(run_until(&q.notes, 1, 5000));
    cr_assert_str_eq(l.last, "hello");
    cr_assert_str_eq(l.channel, "tw_events");
    cr_assert_str_eq(q.last, "quoted");
    cr_assert_str_eq(q.channel, "Odd \"Name\"");

    /* A listener added while up gets its resync, then notifications. */
    cr_assert_eq(tw_pg_listen(pg, "tw_events", on_note, &late), 0);
    cr_assert(run_until(&late.resyncs, 1, 5000));
    PQclear(PQexec(other, "NOTIFY tw_events"));
    cr_assert(run_until(&late.notes, 1, 5000));
    cr_assert(run_until(&l.notes, 2, 5000));
    cr_assert_str_eq(late.last, "");
    cr_assert_eq(l.resyncs, 1, "no resync without a reconnect");
    PQfinish(other);
    tw_pg_free(pg);
}

Test(pg, unreachable_server_fails_fast_without_blocking)
{
    char err[256];
    cr_assert_null(tw_pg_new(base, "this is = not valid '", NULL, err, sizeof err));
    cr_assert(strstr(err, "invalid connection string"), "%s", err);

    state_rec s = {0};
    tw_pg_opts o = {.backoff_min_ms = 20, .backoff_max_ms = 100};
    tw_pg *pg = connect_pg("host=/nonexistent/tw-nowhere user=postgres dbname=postgres", &s, &o);
    tw_pg *tcp =
        connect_pg("hostaddr=127.0.0.1 port=1 user=postgres dbname=postgres", &s, &o);
    int64_t t0 = now_ms();
    run_for(300);
    cr_assert_lt(now_ms() - t0, 1000, "the loop kept turning");
    cr_assert(!tw_pg_is_up(pg));
    cr_assert(!tw_pg_is_up(tcp));
    cr_assert_eq(s.ups, 0);

    res_rec r = {0}, b = {0}, c = {0};
    t0 = now_ms();
    cr_assert_eq(tw_pg_query(pg, "SELECT 1", 0, NULL, NULL, NULL, 0, on_res, &r), 0);
    tw_pg_stmt st[1] = {{.stmt = "SELECT 1"}};
    cr_assert_eq(tw_pg_batch(tcp, st, 1, on_res, &b), 0);
    cr_assert_eq(tw_pg_copy(pg, "COPY x FROM STDIN", "1\n", 2, on_res, &c), 0);
    cr_assert_eq(r.done + b.done + c.done, 0, "not from inside the call");
    cr_assert(run_until(&r.done, 1, 1000));
    cr_assert(run_until(&b.done, 1, 1000));
    cr_assert(run_until(&c.done, 1, 1000));
    cr_assert_lt(now_ms() - t0, 200, "fail fast");
    cr_assert_eq(r.kind, TW_PG_NOT_CONNECTED);
    cr_assert_eq(b.kind, TW_PG_NOT_CONNECTED);
    cr_assert_eq(c.kind, TW_PG_NOT_CONNECTED);
    cr_assert_eq(r.failed_step, -1);
    cr_assert(strstr(r.message, "not connected"), "%s", r.message);
    cr_assert(strstr(b.message, "refused") || strstr(b.message, "onnect"), "%s", b.message);
    res_clear(&r);
    res_clear(&b);
    res_clear(&c);
    tw_pg_free(pg);
    tw_pg_free(tcp);
}

Test(pg, restart_loses_in_flight_then_reconnects)
{
    tw_test_cluster_create(&cluster);
    PGconn *admin = tw_test_connect(cluster.url);
    PQclear(PQexec(admin, "CREATE TABLE t (x int PRIMARY KEY)"));
    PQfinish(admin);

    state_rec s = {0};
    tw_pg_opts o = {.backoff_min_ms = 50, .backoff_max_ms = 400};
    tw_pg *pg = connect_pg(cluster.url, &s, &o);
    cr_assert_eq(tw_pg_prepare(pg, "ins", "INSERT INTO t VALUES ($1) RETURNING x", 1, NULL), 0);
    listen_rec l = {0};
    cr_assert_eq(tw_pg_listen(pg, "chan", on_note, &l), 0);
    wait_up(&s, 1);
    cr_assert(run_until(&l.resyncs, 1, 5000));

    res_rec q[3] = {{0}}, bt = {0};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tw_pg_query(pg, "SELECT pg_sleep(30)", 0, NULL, NULL, NULL, 0, on_res, &q[i]),
                     0);
    const char *one[1] = {"1"};
    tw_pg_stmt st[2] = {{.stmt = "ins", .nparams = 1, .values = one},
                        {.stmt = "SELECT pg_sleep(30)"}};
    cr_assert_eq(tw_pg_batch(pg, st, 2, on_res, &bt), 0);
    run_for(300); /* all sent; the first sleep runs */

    tw_test_cluster_stop(&cluster, "fast");
    for (int i = 0; i < 3; i++)
        cr_assert(run_until(&q[i].done, 1, 10000));
    cr_assert(run_until(&bt.done, 1, 10000));
    for (int i = 0; i < 3; i++)
        cr_assert_eq(q[i].kind, TW_PG_CONNECTION_LOST, "query %d: %s (%s)", i,
                     tw_pg_kind_name(q[i].kind), q[i].message);
    /* PostgreSQL reported the session terminated (57P01) while the first
     * sleep ran: the batch behind it is known not committed. */
    cr_log_info("batch in flight at the stop: %s, SQLSTATE '%s': %s", tw_pg_kind_name(bt.kind),
                bt.sqlstate, bt.message);
    cr_assert(bt.kind == TW_PG_CONNECTION_LOST || bt.kind == TW_PG_OUTCOME_UNKNOWN, "batch: %s",
              tw_pg_kind_name(bt.kind));
    cr_assert_eq(s.downs, 1);
    cr_assert(!tw_pg_is_up(pg));
    cr_assert_eq(tw_pg_pending(pg), 0);

    /* While down: fail fast. */
    res_rec r = {0};
    cr_assert_eq(tw_pg_query(pg, "ins", 1, one, NULL, NULL, 0, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 500));
    cr_assert_eq(r.kind, TW_PG_NOT_CONNECTED);
    res_clear(&r);
    run_for(500); /* a few failed attempts with backoff */

    tw_test_cluster_start(&cluster);
    wait_up(&s, 2);
    cr_assert_eq(tw_pg_connections(pg), 2);
    cr_assert(run_until(&l.resyncs, 2, 5000), "resync flagged after the reconnect");

    const char *two[1] = {"2"};
    cr_assert_eq(tw_pg_query(pg, "ins", 1, two, NULL, NULL, 0, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 5000));
    cr_assert_eq(r.kind, TW_PG_OK, "prepared again on the new connection: %s", r.message);
    cr_assert_str_eq(val(&r, 0), "2");
    res_clear(&r);
    cr_assert_eq(count_rows(cluster.url, "SELECT count(*) FROM t WHERE x = 1"), 0);

    PGconn *other = tw_test_connect(cluster.url);
    PQclear(PQexec(other, "NOTIFY chan, 'after restart'"));
    PQfinish(other);
    cr_assert(run_until(&l.notes, 1, 5000), "LISTEN re-issued on the new connection");
    cr_assert_str_eq(l.last, "after restart");
    for (int i = 0; i < 3; i++)
        res_clear(&q[i]);
    res_clear(&bt);
    tw_pg_free(pg);
}

Test(pg, backend_killed_after_commit_sent_is_outcome_unknown)
{
    tw_test_cluster_create(&cluster);
    PGconn *admin = tw_test_connect(cluster.url);
    PQclear(PQexec(admin, "CREATE TABLE t (x int PRIMARY KEY)"));
    PQfinish(admin);

    char url[400];
    snprintf(url, sizeof url, "%s application_name=tw_victim", cluster.url);
    state_rec s = {0};
    tw_pg_opts o = {.backoff_min_ms = 50, .backoff_max_ms = 400};
    tw_pg *pg = connect_pg(url, &s, &o);
    wait_up(&s, 1);

    res_rec bt = {0}, q = {0};
    tw_pg_stmt st[2] = {{.stmt = "INSERT INTO t VALUES (1)"}, {.stmt = "SELECT pg_sleep(30)"}};
    cr_assert_eq(tw_pg_batch(pg, st, 2, on_res, &bt), 0);
    cr_assert_eq(tw_pg_query(pg, "SELECT 1", 0, NULL, NULL, NULL, 0, on_res, &q), 0);
    run_for(300);

    /* The backend vanishes without a word (as in a crash or a network
     * cut): the batch's commit was requested and no answer came. */
    PGconn *c = tw_test_connect(cluster.url);
    char *pid = tw_test_query1(c, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                                  "'tw_victim'");
    PQfinish(c);
    cr_assert_eq(kill((pid_t)atoi(pid), SIGKILL), 0);
    free(pid);

    cr_assert(run_until(&bt.done, 1, 10000));
    cr_assert(run_until(&q.done, 1, 10000));
    cr_assert_eq(bt.kind, TW_PG_OUTCOME_UNKNOWN, "%s: %s", tw_pg_kind_name(bt.kind), bt.message);
    cr_assert_eq(bt.failed_step, -1);
    cr_assert_eq(q.kind, TW_PG_CONNECTION_LOST, "%s", tw_pg_kind_name(q.kind));
    /* The postmaster restarts the cluster after a crashed backend. */
    wait_up(&s, 2);
    res_rec r = {0};
    query_sync(pg, &r, "SELECT count(*) FROM t");
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    cr_assert_str_eq(val(&r, 0), "0", "it had in fact rolled back");
    res_clear(&r);
    res_clear(&bt);
    res_clear(&q);
    tw_pg_free(pg);
}

/* Streams rows [from, to) in chunks of `per` rows. */
typedef struct row_source {
    int next, to, per, calls;
    int fail_at; /* call number on which to return -1, or 0 */
    char buf[64 * 1024];
} row_source;

static int rows_next(void *arg, const char **data, size_t *len)
{
    row_source *s = arg;
    s->calls++;
    if (s->fail_at && s->calls == s->fail_at)
        return -1;
    if (s->next >= s->to)
        return 0;
    size_t n = 0;
    for (int i = 0; i < s->per && s->next < s->to; i++, s->next++)
        n += (size_t)snprintf(s->buf + n, sizeof s->buf - n, "%d\tstreamed %d\n", s->next, s->next);
    *data = s->buf;
    *len = n;
    return 1;
}

Test(pg, copy_100k_rows_and_copy_in_batches)
{
    state_rec s = {0};
    tw_pg *pg = connect_pg(db.url, &s, NULL);
    wait_up(&s, 1);
    exec_ok(pg, "CREATE TABLE bulk (id int PRIMARY KEY, name text NOT NULL)");

    enum { ROWS = 100000 };
    size_t cap = (size_t)ROWS * 32, len = 0;
    char *buf = malloc(cap);
    cr_assert(buf);
    for (int i = 0; i < ROWS; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%d\tname %d\n", i, i);

    int counter = 0;
    res_rec before = {.counter = &counter}, cp = {.counter = &counter},
            after = {.counter = &counter};
    cr_assert_eq(tw_pg_query(pg, "SELECT 'before'", 0, NULL, NULL, NULL, 0, on_res, &before), 0);
    int64_t t0 = now_ms();
    cr_assert_eq(tw_pg_copy(pg, "COPY bulk (id, name) FROM STDIN", buf, len, on_res, &cp), 0);
    free(buf); /* copied */
    cr_assert_eq(
        tw_pg_query(pg, "SELECT count(*) FROM bulk", 0, NULL, NULL, NULL, 0, on_res, &after), 0);
    cr_assert(run_until(&after.done, 1, 60000));
    cr_log_info("COPY of %d rows in %lld ms", ROWS, (long long)(now_ms() - t0));
    cr_assert_eq(cp.kind, TW_PG_OK, "%s", cp.message);
    cr_assert_str_eq(PQcmdTuples(cp.r[0]), "100000");
    cr_assert(before.seq < cp.seq && cp.seq < after.seq, "in submission order");
    cr_assert_str_eq(val(&after, 0), "100000", "the COPY committed before the next query ran");
    res_clear(&before);
    res_clear(&cp);
    res_clear(&after);

    /* A batch mixing statements and a streamed COPY: one transaction. */
    row_source src = {.next = ROWS, .to = ROWS + 1000, .per = 100};
    tw_pg_stmt st[3] = {
        {.stmt = "INSERT INTO bulk VALUES (-1, 'pre')"},
        {.stmt = "COPY bulk (id, name) FROM STDIN", .copy = 1, .copy_source = rows_next,
         .copy_source_arg = &src},
        {.stmt = "SELECT count(*) FROM bulk"},
    };
    res_rec r = {0};
    cr_assert_eq(tw_pg_batch(pg, st, 3, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 30000));
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    cr_assert_str_eq(PQcmdTuples(r.r[1]), "1000");
    cr_assert_str_eq(val(&r, 2), "101001");
    cr_assert_gt(src.calls, 10);
    res_clear(&r);

    /* A COPY that fails (duplicate key) rolls back the whole batch, and the
     * pipeline resumes. */
    const char *dup = "5\tagain\n";
    tw_pg_stmt bad[2] = {
        {.stmt = "INSERT INTO bulk VALUES (-2, 'pre')"},
        {.stmt = "COPY bulk (id, name) FROM STDIN", .copy = 1, .copy_data = dup,
         .copy_len = strlen(dup)},
    };
    cr_assert_eq(tw_pg_batch(pg, bad, 2, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 10000));
    cr_assert_eq(r.kind, TW_PG_QUERY_ERROR);
    cr_assert_eq(r.failed_step, 1);
    cr_assert_str_eq(r.sqlstate, "23505", "%s", r.message);
    res_clear(&r);
    query_sync(pg, &r, "SELECT count(*) FROM bulk WHERE id = -2");
    cr_assert_str_eq(val(&r, 0), "0");
    res_clear(&r);

    /* A data source that gives up aborts the COPY and the transaction. */
    row_source failing = {.next = 200000, .to = 300000, .per = 100, .fail_at = 3};
    tw_pg_stmt ab[1] = {{.stmt = "COPY bulk (id, name) FROM STDIN", .copy = 1,
                         .copy_source = rows_next, .copy_source_arg = &failing}};
    cr_assert_eq(tw_pg_batch(pg, ab, 1, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 10000));
    cr_assert_eq(r.kind, TW_PG_QUERY_ERROR);
    cr_assert_eq(r.failed_step, 0);
    res_clear(&r);
    cr_assert_eq(count_rows(db.url, "SELECT count(*) FROM bulk WHERE id >= 200000"), 0);

    /* Binary COPY. */
    exec_ok(pg, "CREATE TABLE bin (id int4, b bytea)");
    unsigned char bin[256];
    size_t n = 0;
    memcpy(bin, "PGCOPY\n\377\r\n\0", 11);
    n = 11;
    memset(bin + n, 0, 8); /* flags, header extension length */
    n += 8;
    for (uint32_t i = 1; i <= 3; i++) {
        uint16_t nf = htons(2);
        uint32_t l4 = htonl(4), v = htonl(i * 10), l3 = htonl(3);
        memcpy(bin + n, &nf, 2), n += 2;
        memcpy(bin + n, &l4, 4), n += 4;
        memcpy(bin + n, &v, 4), n += 4;
        memcpy(bin + n, &l3, 4), n += 4;
        memcpy(bin + n, "\0\1\2", 3), n += 3;
    }
    uint16_t trailer = htons(0xffff);
    memcpy(bin + n, &trailer, 2), n += 2;
    cr_assert_eq(tw_pg_copy(pg, "COPY bin FROM STDIN WITH (FORMAT binary)", bin, n, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 10000));
    cr_assert_eq(r.kind, TW_PG_OK, "%s", r.message);
    res_clear(&r);
    query_sync(pg, &r, "SELECT sum(id) || ':' || sum(length(b)) FROM bin");
    cr_assert_str_eq(val(&r, 0), "60:9");
    res_clear(&r);

    /* COPY FROM STDIN through tw_pg_query cannot run in the pipeline: it
     * fails, the connection is reset, and comes back by itself. */
    cr_assert_eq(tw_pg_query(pg, "COPY bulk FROM STDIN", 0, NULL, NULL, NULL, 0, on_res, &r), 0);
    cr_assert(run_until(&r.done, 1, 10000));
    cr_assert_eq(r.kind, TW_PG_QUERY_ERROR);
    cr_assert(strstr(r.message, "tw_pg_copy"), "%s", r.message);
    res_clear(&r);
    wait_up(&s, 2);
    exec_ok(pg, "SELECT 1");
    tw_pg_free(pg);
}

typedef struct free_ctx {
    tw_pg *pg;
    int calls, shutdown, ok, other, resubmit_refused;
} free_ctx;

static void on_free_cb(const tw_pg_outcome *o, void *arg)
{
    free_ctx *c = arg;
    c->calls++;
    if (o->kind == TW_PG_SHUTDOWN)
        c->shutdown++;
    else if (o->kind == TW_PG_OK)
        c->ok++;
    else
        c->other++;
    if (o->kind == TW_PG_SHUTDOWN &&
        tw_pg_query(c->pg, "SELECT 1", 0, NULL, NULL, NULL, 0, on_free_cb, c) == -1)
        c->resubmit_refused++;
}

Test(pg, free_with_work_pending)
{
    state_rec s = {0};
    tw_pg *pg = connect_pg(db.url, &s, NULL);
    listen_rec l = {0};
    cr_assert_eq(tw_pg_listen(pg, "x", on_note, &l), 0);
    cr_assert_eq(tw_pg_prepare(pg, "p", "SELECT $1::text", 1, NULL), 0);
    wait_up(&s, 1);
    free_ctx c = {.pg = pg};
    const char *v[1] = {"x"};
    for (int i = 0; i < 100; i++) {
        const char *sql = i % 10 == 0 ? "SELECT pg_sleep(0.2)" : "p";
        int np = i % 10 == 0 ? 0 : 1;
        cr_assert_eq(tw_pg_query(pg, sql, np, v, NULL, NULL, 0, on_free_cb, &c), 0);
    }
    tw_pg_stmt st[1] = {{.stmt = "COPY nowhere FROM STDIN", .copy = 1, .copy_data = "1\n",
                         .copy_len = 2}};
    cr_assert_eq(tw_pg_batch(pg, st, 1, on_free_cb, &c), 0);
    run_for(50); /* some answered, some in flight, some queued */
    tw_pg_free(pg);
    cr_assert_eq(c.calls, 101, "every callback exactly once (%d)", c.calls);
    cr_assert_gt(c.shutdown, 0);
    cr_assert_eq(c.other, 0);
    cr_assert_eq(c.resubmit_refused, c.shutdown);

    /* Freed while connecting, and while failed-fast answers are pending. */
    state_rec s2 = {0};
    tw_pg *down = connect_pg("host=/nonexistent/tw-nowhere user=postgres", &s2, NULL);
    free_ctx d = {.pg = down};
    cr_assert_eq(tw_pg_query(down, "SELECT 1", 0, NULL, NULL, NULL, 0, on_free_cb, &d), 0);
    tw_pg_free(down);
    cr_assert_eq(d.calls, 1);
    cr_assert_eq(d.other, 1, "not-connected answer delivered at free");

    tw_pg *connecting = connect_pg(db.url, &s2, NULL);
    run_for(1);
    tw_pg_free(connecting);
    tw_pg_free(NULL);
}

/* SHOW name on pg, as text. */
static void show(tw_pg *pg, const char *name, char *out, size_t len)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SHOW %s", name);
    res_rec r = {0};
    query_sync(pg, &r, sql);
    cr_assert_eq(r.kind, TW_PG_OK, "%s: %s", sql, r.message);
    snprintf(out, len, "%s", val(&r, 0));
    res_clear(&r);
}

Test(pg, session_settings_on_every_connection)
{
    char v[64];
    /* Defaults: the idle-in-transaction guard is on, no statement timeout. */
    state_rec s1 = {0};
    tw_pg *pg = connect_pg(db.url, &s1, NULL);
    wait_up(&s1, 1);
    show(pg, "idle_in_transaction_session_timeout", v, sizeof v);
    cr_assert_str_eq(v, "1min");
    show(pg, "statement_timeout", v, sizeof v);
    cr_assert_str_eq(v, "0");
    show(pg, "application_name", v, sizeof v);
    cr_assert_str_eq(v, "test", "pg_stat_activity names the session");
    show(pg, "jit", v, sizeof v);
    cr_assert_str_eq(v, "on");
    tw_pg_free(pg);

    /* Options: a statement timeout that bites, the guard turned off, no JIT. */
    state_rec s2 = {0};
    tw_pg_opts o = {.statement_timeout_ms = 300, .idle_in_xact_timeout_ms = -1, .jit_off = 1};
    pg = connect_pg(db.url, &s2, &o);
    wait_up(&s2, 1);
    show(pg, "jit", v, sizeof v);
    cr_assert_str_eq(v, "off");
    show(pg, "statement_timeout", v, sizeof v);
    cr_assert_str_eq(v, "300ms");
    show(pg, "idle_in_transaction_session_timeout", v, sizeof v);
    cr_assert_str_eq(v, "0");
    res_rec r = {0};
    query_sync(pg, &r, "SELECT pg_sleep(5)");
    cr_assert_eq(r.kind, TW_PG_QUERY_ERROR);
    cr_assert_str_eq(r.sqlstate, "57014", "canceled by statement_timeout: %s", r.message);
    res_clear(&r);
    tw_pg_free(pg);

    /* The connection string's own options and application name win. */
    char url[700];
    snprintf(url, sizeof url,
             "%s application_name=mine options='-c idle_in_transaction_session_timeout=7s"
             " -c work_mem=8MB'",
             db.url);
    state_rec s3 = {0};
    pg = connect_pg(url, &s3, NULL);
    wait_up(&s3, 1);
    show(pg, "idle_in_transaction_session_timeout", v, sizeof v);
    cr_assert_str_eq(v, "7s");
    show(pg, "work_mem", v, sizeof v);
    cr_assert_str_eq(v, "8MB");
    show(pg, "application_name", v, sizeof v);
    cr_assert_str_eq(v, "mine");
    tw_pg_free(pg);

    /* Without options in the string, PGOPTIONS still applies (after ours). */
    cr_assert_eq(setenv("PGOPTIONS", "-c work_mem=9MB", 1), 0);
    state_rec s4 = {0};
    pg = connect_pg(db.url, &s4, NULL);
    wait_up(&s4, 1);
    show(pg, "work_mem", v, sizeof v);
    cr_assert_str_eq(v, "9MB");
    show(pg, "idle_in_transaction_session_timeout", v, sizeof v);
    cr_assert_str_eq(v, "1min");
    tw_pg_free(pg);
    unsetenv("PGOPTIONS");
}
