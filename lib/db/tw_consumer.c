/* tw_consumer: read the event log after a cursor, apply, and move the
 * cursor in the same transaction (see tw_consumer.h).
 *
 * One step is in flight at a time (busy): a rebuild, a cursor load, a read
 * or an apply batch. Wake-ups that arrive meanwhile (NOTIFY, timer) set
 * `again`, so the step that ends next reads once more. The lag poll is a
 * separate read-only query, at most one in flight. */
#include "tw_consumer.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_log.h"
#include "tw_metrics.h"

#define CHANNEL "tidewatch_events"
/* PostgreSQL's epoch (2000-01-01) in Unix microseconds. */
#define PG_EPOCH_US INT64_C(946684800000000)

static const char SQL_READ[] =
    "SELECT tx, id, kind, source, source_ref, occurred_at, received_at, corrects, derived, payload"
    " FROM events_after($1::xid8, $2::bigint, $3::integer)";
/* With an upstream consumer: no further than its committed cursor (no row
 * yet: nothing). The limit applies before this bound, so a batch cut short
 * by it is not full and the consumer waits for the upstream's NOTIFY. */
static const char SQL_READ_UPSTREAM[] =
    "SELECT tx, id, kind, source, source_ref, occurred_at, received_at, corrects, derived, payload"
    " FROM events_after($1::xid8, $2::bigint, $3::integer) e"
    " WHERE (e.tx, e.id) <= (SELECT last_tx, last_id FROM consumer_cursors WHERE consumer = $4)";
/* Sent in every apply transaction (delivered at its commit), so consumers
 * downstream of this one wake up. */
static const char SQL_CURSOR_NOTIFY[] = "SELECT pg_notify('" TW_CONSUMER_CURSOR_CHANNEL "', $1)";
static const char SQL_ADVANCE[] =
    "SELECT consumer_advance($1::text, $2::xid8, $3::bigint, $4::xid8, $5::bigint)";
static const char SQL_CREATE[] =
    "INSERT INTO consumer_cursors (consumer) VALUES ($1) ON CONFLICT (consumer) DO NOTHING";
static const char SQL_LOAD[] =
    "SELECT last_tx::text, last_id FROM consumer_cursors WHERE consumer = $1";
static const char SQL_RESET[] =
    "INSERT INTO consumer_cursors (consumer) VALUES ($1) ON CONFLICT (consumer) DO UPDATE"
    " SET last_tx = '0', last_id = 0, updated_at = now()";
static const char SQL_LAG[] =
    "SELECT lag_events, lag_seconds FROM consumer_lag($1::bigint) WHERE consumer = $2";

typedef struct wstmt {
    char *stmt;
    int nparams;
    char **values;
    int *lengths;
    int *formats;
    int result_format;
    int copy;
    void *copy_data;
    size_t copy_len;
} wstmt;

struct tw_consumer_writes {
    wstmt *v;
    size_t n, cap;
    int failed;
};

struct tw_consumer {
    struct event_base *base;
    tw_pg *pg;
    tw_consumer_opts opts;
    char name[64];
    char upstream[64];
    char st_read[96];
    char st_advance[96];
    tw_consumer_apply_fn apply;
    void *arg;
    struct event *timer;

    int listening; /* the LISTEN has been active: the connection is usable */
    int busy;
    int again;
    int need_load;
    int lag_inflight;
    int failing; /* the current run of failures has been logged */
    int conflicting; /* the current run of conflicts has been logged */

    /* A batch waiting for its prepare reads: its events point into held. */
    PGresult *held;
    tw_consumer_event *held_ev;
    size_t held_n;

    /* The batch in flight. */
    uint64_t new_tx;
    int64_t new_id;
    size_t new_n;

    /* A pending rebuild. */
    tw_consumer_writes *rebuild;
    tw_pg_cb rebuild_cb;
    void *rebuild_arg;

    tw_consumer_stats st;
};

/* ---- Writes builder ------------------------------------------------------ */

static void wstmt_clear(wstmt *s)
{
    if (s->values)
        for (int i = 0; i < s->nparams; i++)
            free(s->values[i]);
    free(s->values);
    free(s->lengths);
    free(s->formats);
    free(s->copy_data);
    free(s->stmt);
}

static void writes_free(tw_consumer_writes *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n; i++)
        wstmt_clear(&w->v[i]);
    free(w->v);
    free(w);
}

int tw_consumer_writes_add(tw_consumer_writes *w, const tw_pg_stmt *s)
{
    if (!w)
        return -1;
    if (!s || !s->stmt || !s->stmt[0] || s->nparams < 0 || s->nparams > 65535 ||
        (s->nparams > 0 && !s->values) || s->copy_source)
        goto bad;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        wstmt *v = realloc(w->v, cap * sizeof *v);
        if (!v)
            goto bad;
        w->v = v;
        w->cap = cap;
    }
    wstmt *d = &w->v[w->n];
    memset(d, 0, sizeof *d);
    d->nparams = s->nparams;
    d->result_format = s->result_format;
    d->copy = s->copy;
    if (!(d->stmt = strdup(s->stmt)))
        goto fail;
    if (s->nparams > 0) {
        d->values = calloc((size_t)s->nparams, sizeof *d->values);
        d->lengths = calloc((size_t)s->nparams, sizeof *d->lengths);
        d->formats = calloc((size_t)s->nparams, sizeof *d->formats);
        if (!d->values || !d->lengths || !d->formats)
            goto fail;
        for (int i = 0; i < s->nparams; i++) {
            int binary = s->formats && s->formats[i];
            d->formats[i] = binary;
            if (!s->values[i])
                continue;
            if (binary && !s->lengths)
                goto fail;
            size_t len = binary ? (size_t)s->lengths[i] : strlen(s->values[i]);
            if (binary && s->lengths[i] < 0)
                goto fail;
            if (!(d->values[i] = malloc(len + 1)))
                goto fail;
            memcpy(d->values[i], s->values[i], len);
            d->values[i][len] = '\0';
            d->lengths[i] = (int)len;
        }
    }
    if (s->copy && s->copy_len) {
        if (!s->copy_data || !(d->copy_data = malloc(s->copy_len)))
            goto fail;
        memcpy(d->copy_data, s->copy_data, s->copy_len);
        d->copy_len = s->copy_len;
    }
    w->n++;
    return 0;
fail:
    wstmt_clear(d);
bad:
    w->failed = 1;
    return -1;
}

/* A view of the builder's statements as tw_pg_stmt, after `lead` leading
 * slots the caller fills. Returns NULL on allocation failure. */
static tw_pg_stmt *writes_view(const tw_consumer_writes *w, size_t lead)
{
    tw_pg_stmt *v = calloc(lead + (w ? w->n : 0), sizeof *v);
    if (!v)
        return NULL;
    for (size_t i = 0; w && i < w->n; i++) {
        const wstmt *s = &w->v[i];
        v[lead + i] = (tw_pg_stmt){.stmt = s->stmt,
                                   .nparams = s->nparams,
                                   .values = (const char *const *)s->values,
                                   .lengths = s->lengths,
                                   .formats = s->formats,
                                   .result_format = s->result_format,
                                   .copy = s->copy,
                                   .copy_data = s->copy_data,
                                   .copy_len = s->copy_len};
    }
    return v;
}

/* ---- Metrics and failures --------------------------------------------------- */

static void count(tw_consumer *c, const char *name, const char *help, double v)
{
    if (c->opts.metrics &&
        tw_metrics_counter_add(c->opts.metrics, name, help, "consumer", c->name, v) != 0)
        TW_WARN(NULL, "consumer %s: cannot count %s", c->name, name);
}

static void gauge(tw_consumer *c, const char *name, const char *help, double v)
{
    if (c->opts.metrics &&
        tw_metrics_gauge_set(c->opts.metrics, name, help, "consumer", c->name, v) != 0)
        TW_WARN(NULL, "consumer %s: cannot set %s", c->name, name);
}

static const char H_APPLIED[] = "events applied by this consumer (committed with its cursor)";
static const char H_BATCHES[] = "batches committed by this consumer";
static const char H_CONFLICTS[] =
    "batches refused because another instance of the consumer had moved its cursor";
static const char H_LAG_EVENTS[] =
    "committed events after this consumer's cursor (counting stops at a cap)";
static const char H_LAG_SECONDS[] =
    "seconds since the first event after this consumer's cursor was received (0: caught up)";

static void failed(tw_consumer *c, const char *what, const tw_pg_outcome *o)
{
    c->st.failures++;
    if (!c->failing)
        TW_WARN(NULL, "consumer %s: %s failed: %s%s%s%s%s (retrying from the committed cursor)",
                c->name, what, tw_pg_kind_name(o->kind), o->message[0] ? ": " : "", o->message,
                o->sqlstate[0] ? " SQLSTATE " : "", o->sqlstate);
    c->failing = 1;
    c->need_load = 1;
}

static void succeeded(tw_consumer *c)
{
    if (c->failing)
        TW_INFO(NULL, "consumer %s: consuming again", c->name);
    c->failing = 0;
}

/* ---- The loop --------------------------------------------------------------- */

static void step(tw_consumer *c);

/* The current step ended; go on at once if asked to. */
static void done(tw_consumer *c, int go_on)
{
    c->busy = 0;
    if (go_on || c->again) {
        c->again = 0;
        step(c);
    }
}

static void on_rebuild(const tw_pg_outcome *o, void *arg)
{
    tw_consumer *c = arg;
    if (o->kind == TW_PG_SHUTDOWN) {
        c->busy = 0;
        return;
    }
    if (o->kind == TW_PG_NOT_CONNECTED || o->kind == TW_PG_CONNECTION_LOST ||
        o->kind == TW_PG_OUTCOME_UNKNOWN) {
        /* Kept pending: resetting and truncating again is harmless. */
        failed(c, "rebuild", o);
        c->busy = 0;
        return;
    }
    writes_free(c->rebuild);
    c->rebuild = NULL;
    if (o->kind == TW_PG_OK) {
        TW_INFO(NULL, "consumer %s: rebuild committed, reading the log from its start", c->name);
        c->st.tx = 0;
        c->st.id = 0;
    } else {
        TW_ERROR(NULL, "consumer %s: rebuild failed: %s", c->name, o->message);
    }
    c->need_load = 1;
    if (c->rebuild_cb)
        c->rebuild_cb(o, c->rebuild_arg);
    done(c, 1);
}

static void on_load(const tw_pg_outcome *o, void *arg)
{
    tw_consumer *c = arg;
    if (o->kind != TW_PG_OK) {
        if (o->kind != TW_PG_SHUTDOWN)
            failed(c, "loading the cursor", o);
        c->busy = 0;
        return;
    }
    const PGresult *r = o->results[1];
    if (PQntuples(r) != 1 || PQnfields(r) != 2) {
        tw_pg_outcome why = *o;
        why.kind = TW_PG_QUERY_ERROR;
        why.message = "the cursor row is not visible (row-level security: is this login a "
                      "member of the consumer's role?)";
        failed(c, "loading the cursor", &why);
        c->busy = 0;
        return;
    }
    c->st.tx = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    c->st.id = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    c->st.loaded = 1;
    c->need_load = 0;
    TW_DEBUG(NULL, "consumer %s: cursor at (%" PRIu64 ", %" PRId64 ")", c->name, c->st.tx,
             c->st.id);
    done(c, 1);
}

static void on_applied(const tw_pg_outcome *o, void *arg)
{
    tw_consumer *c = arg;
    if (o->kind == TW_PG_SHUTDOWN) {
        c->busy = 0;
        return;
    }
    if (o->kind != TW_PG_OK) {
        if (o->kind == TW_PG_QUERY_ERROR && o->failed_step == 0 &&
            strcmp(o->sqlstate, TW_CONSUMER_SQLSTATE_MOVED) == 0) {
            c->st.conflicts++;
            count(c, "tidewatch_consumer_conflicts_total", H_CONFLICTS, 1);
            /* Once per run of conflicts: a second instance keeps colliding. */
            if (!c->conflicting)
                TW_WARN(NULL, "consumer %s: %s; nothing applied, reloading the cursor (logged "
                              "once until a batch of ours commits)",
                        c->name, o->message);
            c->conflicting = 1;
            c->need_load = 1;
        } else {
            failed(c, "applying a batch", o);
        }
        c->busy = 0;
        return;
    }
    succeeded(c);
    c->conflicting = 0;
    c->st.tx = c->new_tx;
    c->st.id = c->new_id;
    c->st.applied_events += c->new_n;
    c->st.batches++;
    count(c, "tidewatch_consumer_applied_events_total", H_APPLIED, (double)c->new_n);
    count(c, "tidewatch_consumer_batches_total", H_BATCHES, 1);
    if (c->opts.on_committed)
        c->opts.on_committed(c->arg, c->new_n, c->new_tx, c->new_id);
    done(c, c->new_n == (size_t)c->opts.batch_max);
}

static uint64_t be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | (uint8_t)p[i];
    return v;
}

/* Decode row i of a read into *e. Returns 0, or -1 on an unexpected shape. */
static int decode(const PGresult *r, int i, tw_consumer_event *e)
{
    static const int want8[] = {0, 1, 5, 6, 7};
    for (size_t k = 0; k < sizeof want8 / sizeof want8[0]; k++) {
        int col = want8[k];
        if (!PQgetisnull(r, i, col) && PQgetlength(r, i, col) != 8)
            return -1;
    }
    if (PQgetisnull(r, i, 0) || PQgetisnull(r, i, 1) || PQgetisnull(r, i, 2) ||
        PQgetlength(r, i, 2) != 2 || PQgetisnull(r, i, 6))
        return -1;
    memset(e, 0, sizeof *e);
    e->tx = be64(PQgetvalue(r, i, 0));
    e->id = (int64_t)be64(PQgetvalue(r, i, 1));
    const uint8_t *k = (const uint8_t *)PQgetvalue(r, i, 2);
    e->kind = (int16_t)(uint16_t)((k[0] << 8) | k[1]);
    e->source = PQgetvalue(r, i, 3);
    e->source_ref = PQgetvalue(r, i, 4);
    if (!PQgetisnull(r, i, 5)) {
        e->has_occurred_at = 1;
        e->occurred_at_us = (int64_t)be64(PQgetvalue(r, i, 5)) + PG_EPOCH_US;
    }
    e->received_at_us = (int64_t)be64(PQgetvalue(r, i, 6)) + PG_EPOCH_US;
    e->corrects = PQgetisnull(r, i, 7) ? 0 : (int64_t)be64(PQgetvalue(r, i, 7));
    e->derived = (const uint8_t *)PQgetvalue(r, i, 8);
    e->derived_len = (size_t)PQgetlength(r, i, 8);
    e->payload = (const uint8_t *)PQgetvalue(r, i, 9);
    e->payload_len = (size_t)PQgetlength(r, i, 9);
    return 0;
}

/* Refuse the batch just read: nothing written, retried at the next poll. */
static void refuse(tw_consumer *c, const char *why)
{
    c->st.failures++;
    if (!c->failing)
        TW_ERROR(NULL,
                 "consumer %s: batch after (%" PRIu64 ", %" PRId64 ") not applied: %s (retried "
                 "at each poll, logged once until a batch commits)",
                 c->name, c->st.tx, c->st.id, why);
    c->failing = 1;
    c->busy = 0;
}

/* Hand events[0..n) and the prepare reads to apply, then submit the
 * transaction that moves the cursor with the writes. */
static void apply_batch(tw_consumer *c, const tw_consumer_event *ev, size_t n,
                        const PGresult *const *reads, size_t nreads)
{
    tw_consumer_writes *w = calloc(1, sizeof *w);
    tw_pg_stmt *stmts = NULL;
    if (!w) {
        refuse(c, "out of memory");
        return;
    }
    if (c->apply(c->arg, ev, n, reads, nreads, w) != 0 || w->failed) {
        refuse(c, w->failed ? "a derived write could not be built" : "the apply callback refused it");
        goto out;
    }
    c->new_tx = ev[n - 1].tx;
    c->new_id = ev[n - 1].id;
    c->new_n = n;
    char old_tx[24], old_id[24], new_tx[24], new_id[24];
    snprintf(old_tx, sizeof old_tx, "%" PRIu64, c->st.tx);
    snprintf(old_id, sizeof old_id, "%" PRId64, c->st.id);
    snprintf(new_tx, sizeof new_tx, "%" PRIu64, c->new_tx);
    snprintf(new_id, sizeof new_id, "%" PRId64, c->new_id);
    const char *values[] = {c->name, old_tx, old_id, new_tx, new_id};
    if (!(stmts = writes_view(w, 2))) {
        refuse(c, "out of memory");
        goto out;
    }
    stmts[0] = (tw_pg_stmt){.stmt = c->st_advance, .nparams = 5, .values = values};
    stmts[1] = (tw_pg_stmt){.stmt = SQL_CURSOR_NOTIFY, .nparams = 1, .values = values};
    if (tw_pg_batch(c->pg, stmts, 2 + w->n, on_applied, c) != 0)
        refuse(c, "the transaction could not be submitted (invalid derived write?)");
out:
    free(stmts);
    writes_free(w);
}

static void release_held(tw_consumer *c)
{
    PQclear(c->held);
    free(c->held_ev);
    c->held = NULL;
    c->held_ev = NULL;
    c->held_n = 0;
}

static void on_prepared(const tw_pg_outcome *o, void *arg)
{
    tw_consumer *c = arg;
    if (o->kind != TW_PG_OK) {
        if (o->kind != TW_PG_SHUTDOWN)
            failed(c, "reading what a batch needs", o);
        release_held(c);
        c->busy = 0;
        return;
    }
    apply_batch(c, c->held_ev, c->held_n, (const PGresult *const *)o->results, o->nresults);
    release_held(c);
}

static void on_read(const tw_pg_outcome *o, void *arg)
{
    tw_consumer *c = arg;
    if (o->kind != TW_PG_OK) {
        if (o->kind != TW_PG_SHUTDOWN)
            failed(c, "reading the log", o);
        c->busy = 0;
        return;
    }
    const PGresult *r = o->results[0];
    int n = PQntuples(r);
    if (n == 0) {
        succeeded(c);
        done(c, 0);
        return;
    }
    if (PQnfields(r) != 10) {
        refuse(c, "events_after() returned an unexpected shape");
        return;
    }
    tw_consumer_event *ev = calloc((size_t)n, sizeof *ev);
    tw_consumer_writes *reads = NULL;
    tw_pg_stmt *stmts = NULL;
    if (!ev) {
        refuse(c, "out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++)
        if (decode(r, i, &ev[i]) != 0) {
            refuse(c, "an event has an unexpected binary layout");
            goto out;
        }
    if (c->opts.prepare) {
        if (!(reads = calloc(1, sizeof *reads))) {
            refuse(c, "out of memory");
            goto out;
        }
        if (c->opts.prepare(c->arg, ev, (size_t)n, reads) != 0 || reads->failed) {
            refuse(c, reads->failed ? "a read could not be built" : "the prepare callback refused it");
            goto out;
        }
    }
    if (!reads || reads->n == 0) {
        apply_batch(c, ev, (size_t)n, NULL, 0);
        goto out;
    }
    /* Keep the events (they point into r) until the reads are back. */
    if (!(stmts = writes_view(reads, 0))) {
        refuse(c, "out of memory");
        goto out;
    }
    if (tw_pg_batch(c->pg, stmts, reads->n, on_prepared, c) != 0) {
        refuse(c, "the reads could not be submitted (invalid read?)");
        goto out;
    }
    c->held = o->results[0];
    o->results[0] = NULL;
    c->held_ev = ev;
    c->held_n = (size_t)n;
    ev = NULL;
out:
    free(stmts);
    writes_free(reads);
    free(ev);
}

static void submit_failed(tw_consumer *c, const char *what)
{
    tw_pg_outcome o = {.kind = TW_PG_QUERY_ERROR, .sqlstate = "", .message = "cannot submit",
                       .failed_step = -1};
    failed(c, what, &o);
    c->busy = 0;
}

static void step(tw_consumer *c)
{
    if (c->busy) {
        c->again = 1;
        return;
    }
    if (!c->listening || !tw_pg_is_up(c->pg)) {
        c->need_load = 1;
        return; /* the LISTEN's resync starts us again */
    }
    c->busy = 1;
    const char *values[] = {c->name};
    if (c->rebuild) {
        tw_pg_stmt *stmts = writes_view(c->rebuild, 1);
        if (!stmts) {
            submit_failed(c, "rebuild");
            return;
        }
        stmts[0] = (tw_pg_stmt){.stmt = SQL_RESET, .nparams = 1, .values = values};
        int rc = tw_pg_batch(c->pg, stmts, 1 + c->rebuild->n, on_rebuild, c);
        free(stmts);
        if (rc != 0)
            submit_failed(c, "rebuild");
        return;
    }
    if (c->need_load || !c->st.loaded) {
        const tw_pg_stmt stmts[] = {{.stmt = SQL_CREATE, .nparams = 1, .values = values},
                                    {.stmt = SQL_LOAD, .nparams = 1, .values = values}};
        if (tw_pg_batch(c->pg, stmts, 2, on_load, c) != 0)
            submit_failed(c, "loading the cursor");
        return;
    }
    char tx[24], id[24], lim[16];
    snprintf(tx, sizeof tx, "%" PRIu64, c->st.tx);
    snprintf(id, sizeof id, "%" PRId64, c->st.id);
    snprintf(lim, sizeof lim, "%d", c->opts.batch_max);
    const char *rv[] = {tx, id, lim, c->upstream};
    if (tw_pg_query(c->pg, c->st_read, c->upstream[0] ? 4 : 3, rv, NULL, NULL, 1, on_read, c) != 0)
        submit_failed(c, "reading the log");
}

/* ---- Wake-ups and lag ----------------------------------------------------- */

static void on_notify(void *arg, const char *channel, const char *payload, int resync)
{
    (void)channel;
    (void)payload;
    tw_consumer *c = arg;
    if (resync) {
        /* A new connection: whatever was in flight on the old one is
         * answered (failed) by now or soon; reload the committed cursor. */
        c->listening = 1;
        c->need_load = 1;
    }
    step(c);
}

static void on_cursor_notify(void *arg, const char *channel, const char *payload, int resync)
{
    (void)channel;
    tw_consumer *c = arg;
    if (resync || (payload && strcmp(payload, c->upstream) == 0))
        step(c);
}

static void on_lag(const tw_pg_outcome *o, void *arg)
{
    tw_consumer *c = arg;
    c->lag_inflight = 0;
    if (o->kind != TW_PG_OK)
        return; /* the loop reports database trouble; lag keeps its last value */
    const PGresult *r = o->results[0];
    if (PQntuples(r) != 1 || PQnfields(r) != 2)
        return; /* no cursor row yet */
    c->st.lag_events = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    c->st.lag_seconds = strtod(PQgetvalue(r, 0, 1), NULL);
    gauge(c, "tidewatch_consumer_cursor_lag_events", H_LAG_EVENTS, (double)c->st.lag_events);
    gauge(c, "tidewatch_consumer_cursor_lag_seconds", H_LAG_SECONDS, c->st.lag_seconds);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_consumer *c = arg;
    step(c);
    if (c->lag_inflight || !tw_pg_is_up(c->pg))
        return;
    char cap[24];
    snprintf(cap, sizeof cap, "%" PRId64, c->opts.lag_max_events);
    const char *values[] = {cap, c->name};
    if (tw_pg_query(c->pg, SQL_LAG, 2, values, NULL, NULL, 0, on_lag, c) == 0)
        c->lag_inflight = 1;
}

/* ---- Public ----------------------------------------------------------------- */

tw_consumer *tw_consumer_new(struct event_base *base, tw_pg *pg, const tw_consumer_opts *opts,
                             tw_consumer_apply_fn apply, void *arg, char *err, size_t errlen)
{
    if (!base || !pg || !opts || !apply || !opts->name || !opts->name[0] ||
        strlen(opts->name) > 63 || (opts->upstream && strlen(opts->upstream) > 63) ||
        opts->batch_max > TW_CONSUMER_BATCH_LIMIT) {
        snprintf(err, errlen, "consumer: a base, a pg, an apply callback, a name (and upstream) "
                              "of 1..63 bytes and a batch of at most %d events are required",
                 TW_CONSUMER_BATCH_LIMIT);
        return NULL;
    }
    tw_consumer *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->base = base;
    c->pg = pg;
    c->opts = *opts;
    snprintf(c->name, sizeof c->name, "%s", opts->name);
    c->opts.name = c->name;
    snprintf(c->upstream, sizeof c->upstream, "%s", opts->upstream ? opts->upstream : "");
    c->opts.upstream = c->upstream[0] ? c->upstream : NULL;
    if (c->opts.batch_max <= 0)
        c->opts.batch_max = TW_CONSUMER_BATCH_MAX;
    if (c->opts.poll_ms <= 0)
        c->opts.poll_ms = TW_CONSUMER_POLL_MS;
    if (c->opts.lag_max_events <= 0)
        c->opts.lag_max_events = TW_CONSUMER_LAG_MAX_EVENTS;
    c->apply = apply;
    c->arg = arg;
    c->need_load = 1;
    c->st.lag_events = -1;
    snprintf(c->st_read, sizeof c->st_read, "tw_consumer_read:%s", c->name);
    snprintf(c->st_advance, sizeof c->st_advance, "tw_consumer_advance:%s", c->name);

    /* Series exist (at 0) from the start; a name clash shows here. */
    if (c->opts.metrics &&
        (tw_metrics_counter_add(c->opts.metrics, "tidewatch_consumer_applied_events_total",
                                H_APPLIED, "consumer", c->name, 0) != 0 ||
         tw_metrics_counter_add(c->opts.metrics, "tidewatch_consumer_batches_total", H_BATCHES,
                                "consumer", c->name, 0) != 0 ||
         tw_metrics_counter_add(c->opts.metrics, "tidewatch_consumer_conflicts_total",
                                H_CONFLICTS, "consumer", c->name, 0) != 0)) {
        snprintf(err, errlen, "consumer %s: cannot register its metrics", c->name);
        goto fail;
    }
    if (tw_pg_prepare(pg, c->st_read, c->upstream[0] ? SQL_READ_UPSTREAM : SQL_READ,
                      c->upstream[0] ? 4 : 3, NULL) != 0 ||
        tw_pg_prepare(pg, c->st_advance, SQL_ADVANCE, 5, NULL) != 0) {
        snprintf(err, errlen, "consumer %s: cannot register its statements (one consumer of "
                              "this name per connection)", c->name);
        goto fail;
    }
    c->timer = event_new(base, -1, EV_PERSIST, on_timer, c);
    struct timeval tv = {c->opts.poll_ms / 1000, (c->opts.poll_ms % 1000) * 1000};
    if (!c->timer || event_add(c->timer, &tv) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* Last: from here on the pg may call us back (resync starts the loop). */
    if (c->upstream[0] &&
        tw_pg_listen(pg, TW_CONSUMER_CURSOR_CHANNEL, on_cursor_notify, c) != 0) {
        snprintf(err, errlen, "consumer %s: cannot listen on " TW_CONSUMER_CURSOR_CHANNEL,
                 c->name);
        goto fail;
    }
    if (tw_pg_listen(pg, CHANNEL, on_notify, c) != 0) {
        snprintf(err, errlen, "consumer %s: cannot listen on " CHANNEL, c->name);
        goto fail;
    }
    return c;
fail:
    tw_consumer_free(c);
    return NULL;
}

void tw_consumer_free(tw_consumer *c)
{
    if (!c)
        return;
    if (c->timer)
        event_free(c->timer);
    writes_free(c->rebuild);
    release_held(c);
    free(c);
}

void tw_consumer_stats_get(const tw_consumer *c, tw_consumer_stats *out) { *out = c->st; }

void tw_consumer_wake(tw_consumer *c) { step(c); }

int tw_consumer_rebuild(tw_consumer *c, const tw_pg_stmt *stmts, size_t n, tw_pg_cb cb, void *arg)
{
    if (c->rebuild || (n > 0 && !stmts))
        return -1;
    tw_consumer_writes *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (tw_consumer_writes_add(w, &stmts[i]) != 0) {
            writes_free(w);
            return -1;
        }
    c->rebuild = w;
    c->rebuild_cb = cb;
    c->rebuild_arg = arg;
    step(c);
    return 0;
}
