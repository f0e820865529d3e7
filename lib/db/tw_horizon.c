/* tw_horizon: poll the log's horizon and consumer lag into gauges (see
 * tw_horizon.h). One poll is a two-statement batch (one transaction, one
 * snapshot) on the borrowed tw_pg; a poll is never started while the
 * previous one is unanswered. */
#include "tw_horizon.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_log.h"
#include "tw_metrics.h"
#include "tw_pg.h"

static const char SQL_AGES[] =
    "SELECT xact_seconds, snapshot_seconds,"
    " extract(epoch FROM current_setting('idle_in_transaction_session_timeout')::interval)::float8"
    " FROM log_horizon_ages()";
static const char SQL_LAG[] =
    "SELECT consumer, lag_events, lag_seconds FROM consumer_lag($1::bigint)";

/* One poll in flight. It outlives the poller if the poller is freed first
 * (h is then NULL and the answer is dropped). */
typedef struct horizon_poll {
    tw_horizon *h;
} horizon_poll;

struct tw_horizon {
    tw_pg *pg;
    tw_metrics *metrics;
    struct event *timer;
    tw_horizon_opts opts;
    horizon_poll *inflight;
    int failing; /* logged the current run of failures */
};

static void gauge(tw_horizon *h, const char *name, const char *help, const char *label,
                  const char *value, double v)
{
    if (tw_metrics_gauge_set(h->metrics, name, help, label, value, v) != 0)
        TW_WARN(NULL, "horizon: cannot set %s", name);
}

static void failed(tw_horizon *h, const char *why)
{
    if (tw_metrics_counter_add(h->metrics, "tidewatch_log_horizon_poll_failures_total",
                               "horizon and consumer-lag polls that failed", NULL, NULL, 1) != 0)
        TW_WARN(NULL, "horizon: cannot count a failure");
    if (!h->failing)
        TW_WARN(NULL, "horizon: poll failed (gauges keep their last values): %s", why);
    h->failing = 1;
}

static double num(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0.0 : strtod(PQgetvalue(r, row, col), NULL);
}

static void publish(tw_horizon *h, const PGresult *ages, const PGresult *lag)
{
    if (PQntuples(ages) != 1 || PQnfields(ages) != 3 || PQnfields(lag) != 3) {
        failed(h, "unexpected result shape (is migration 0004 applied?)");
        return;
    }
    gauge(h, "tidewatch_log_oldest_xact_seconds",
          "age of the oldest transaction holding a transaction id, cluster-wide: consumers read "
          "no event past it",
          NULL, NULL, num(ages, 0, 0));
    gauge(h, "tidewatch_db_oldest_snapshot_seconds",
          "age of the oldest open transaction of any kind, cluster-wide (holds back vacuum)",
          NULL, NULL, num(ages, 0, 1));
    gauge(h, "tidewatch_db_idle_in_transaction_timeout_seconds",
          "idle_in_transaction_session_timeout of this daemon's database session (0: off)", NULL,
          NULL, num(ages, 0, 2));
    int n = PQntuples(lag);
    if (n > TW_HORIZON_MAX_CONSUMERS) {
        TW_WARN(NULL, "horizon: %d consumers, publishing the first %d", n,
                TW_HORIZON_MAX_CONSUMERS);
        n = TW_HORIZON_MAX_CONSUMERS;
    }
    for (int i = 0; i < n; i++) {
        const char *consumer = PQgetvalue(lag, i, 0);
        gauge(h, "tidewatch_consumer_lag_events",
              "committed events after the consumer's cursor (counting stops at a cap)",
              "consumer", consumer, num(lag, i, 1));
        gauge(h, "tidewatch_consumer_lag_seconds",
              "seconds since the first event after the consumer's cursor was received (0: caught "
              "up)",
              "consumer", consumer, num(lag, i, 2));
    }
    if (h->failing)
        TW_INFO(NULL, "horizon: polling again");
    h->failing = 0;
}

static void on_answer(const tw_pg_outcome *o, void *arg)
{
    horizon_poll *p = arg;
    tw_horizon *h = p->h;
    free(p);
    if (!h)
        return; /* the poller was freed meanwhile */
    h->inflight = NULL;
    if (o->kind != TW_PG_OK) {
        char why[300];
        snprintf(why, sizeof why, "%s%s%s", tw_pg_kind_name(o->kind), o->message[0] ? ": " : "",
                 o->message);
        failed(h, why);
        return;
    }
    publish(h, o->results[0], o->results[1]);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_horizon *h = arg;
    if (h->inflight)
        return; /* the previous poll is still unanswered: skip this turn */
    if (!tw_pg_is_up(h->pg)) {
        failed(h, "database not connected");
        return;
    }
    horizon_poll *p = malloc(sizeof *p);
    if (!p) {
        failed(h, "out of memory");
        return;
    }
    p->h = h;
    char cap[32];
    snprintf(cap, sizeof cap, "%lld", (long long)h->opts.max_lag_events);
    const char *values[] = {cap};
    const tw_pg_stmt stmts[] = {{.stmt = SQL_AGES},
                                {.stmt = SQL_LAG, .nparams = 1, .values = values}};
    if (tw_pg_batch(h->pg, stmts, 2, on_answer, p) != 0) {
        free(p);
        failed(h, "cannot submit the query");
        return;
    }
    h->inflight = p;
}

tw_horizon *tw_horizon_new(struct event_base *base, tw_pg *pg, tw_metrics *metrics,
                           const tw_horizon_opts *opts, char *err, size_t errlen)
{
    tw_horizon *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->pg = pg;
    h->metrics = metrics;
    if (opts)
        h->opts = *opts;
    if (h->opts.interval_ms <= 0)
        h->opts.interval_ms = TW_HORIZON_INTERVAL_MS;
    if (h->opts.max_lag_events <= 0)
        h->opts.max_lag_events = TW_HORIZON_MAX_LAG_EVENTS;
    /* Create the families now, so that /metrics shows them (at 0) from the
     * start and a clash of names is found here, not at the first poll. */
    if (tw_metrics_counter_add(metrics, "tidewatch_log_horizon_poll_failures_total",
                               "horizon and consumer-lag polls that failed", NULL, NULL, 0) != 0) {
        snprintf(err, errlen, "cannot register the horizon metrics");
        goto fail;
    }
    h->timer = event_new(base, -1, EV_PERSIST, on_timer, h);
    struct timeval tv = {h->opts.interval_ms / 1000, (h->opts.interval_ms % 1000) * 1000};
    if (!h->timer || event_add(h->timer, &tv) != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    return h;
fail:
    tw_horizon_free(h);
    return NULL;
}

void tw_horizon_free(tw_horizon *h)
{
    if (!h)
        return;
    if (h->inflight)
        h->inflight->h = NULL;
    if (h->timer)
        event_free(h->timer);
    free(h);
}
