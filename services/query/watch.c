/* AlertService.WatchAlerts: a server stream of alert changes.
 *
 * Changes commit in seq order (migration 0010: every writer takes
 * alert_seq_lock before it draws a seq and keeps it to its commit), so a
 * watcher's position is one seq: it has sent every change up to it. Nothing
 * is queued for a watcher: it reads the alerts table itself, a page at a
 * time (Q_WATCH_LIVE: alerts whose latest change is after its position, in
 * seq order, each in its newest state with the kind of that change), and
 * only when its call's output queue has room (at most watch_buffer bytes,
 * plus the message that crossed it). A reader that does not read costs that
 * buffer and one position; it receives the rest later, or resumes with the
 * last seq it saw. Other watchers are not held up: every read is its own
 * batch on the pool.
 *
 * When to read: the service knows the newest seq ("top") from the NOTIFY
 * tidewatch_alerts payloads (one LISTEN connection for the daemon) and
 * from a poll every watch_poll (one max(seq) on the pool, for lost
 * notifications and a LISTEN connection that is down); a watcher behind
 * top with room in its queue reads. Each read is [Q_WATCH_TOP, page] in
 * one batch: when the page is not full, every change up to that top has
 * been seen, so the position moves there even if the severity filter
 * skipped them (no rescans).
 *
 * Start: after_seq resumes after it; after_alert_id first sends, in id
 * order with kind "backlog", every alert above it whose latest change is
 * at or below S0 (the top when the call started), then goes on live from
 * S0; neither: live from S0.
 *
 * Limits: watch_max calls at once (more: RESOURCE_EXHAUSTED). Connections
 * with an open call are never closed for idleness (tw_grpc_server counts
 * idle time only with no open stream), so a quiet watch stays open.
 *
 * Audit: one query_audit row per call, when it ends (the client cancels,
 * the server shuts down: UNAVAILABLE, or an error), with result_count =
 * the changes sent and the duration of the whole watch. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "sql.h"
#include "tw_log.h"
#include "tw_metrics.h"

typedef struct qwatcher qwatcher;

typedef struct qwatch {
    query_service *svc;
    tw_pg *listen_pg; /* LISTEN tidewatch_alerts only */
    struct event *poll;
    qwatcher *head;
    size_t n;
    int64_t top;   /* newest seq known to have committed */
    int polling;   /* a poll's max(seq) in flight */
} qwatch;

struct qwatcher {
    qwatcher *prev, *next;
    qwatch *w;
    qcall *q;
    int linked;
    int started; /* S0 known */
    int backlog; /* sending the after_alert_id backlog */
    int reading; /* a read in flight */
    int again;   /* woken while reading */
    int waiting; /* on_writable registered */
    int severity;
    int64_t after_seq, after_id; /* as asked */
    int64_t pos;      /* live: every change up to it was sent (or filtered) */
    int64_t s0;       /* top at the start */
    int64_t last_id;  /* backlog: last alert id sent */
    tw_arena page;    /* one page's messages */
};

/* The queue a watcher fills before it stops: watch_buffer, but never more
 * than half of what the server lets one call queue. */
static size_t buffer_cap(const qwatcher *x)
{
    const query_config *cfg = x->w->svc->cfg;
    size_t cap = (size_t)cfg->watch_buffer;
    size_t call_max = cfg->common.max_call_output > 0 ? (size_t)cfg->common.max_call_output
                                                      : TW_GRPC_DEFAULT_MAX_CALL_OUTPUT;
    if (cap > call_max / 2)
        cap = call_max / 2;
    return cap;
}

static void unlink_watcher(qwatcher *x)
{
    if (!x->linked)
        return;
    qwatch *w = x->w;
    if (x->prev)
        x->prev->next = x->next;
    else
        w->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
    x->linked = 0;
    w->n--;
}

/* End the call (not while a read is in flight: the read's callback ends
 * it). The call is audited and freed: x is dead afterwards. */
static void watcher_end(qwatcher *x, int status, const char *why)
{
    unlink_watcher(x);
    if (x->started && !x->backlog)
        qcall_fail(x->q, status, "%s; resume with after_seq %lld", why, (long long)x->pos);
    else
        qcall_fail(x->q, status, "%s", why);
}

static void watcher_cancelled(qcall *q)
{
    unlink_watcher(q->state);
}

static void watcher_cleanup(qcall *q)
{
    qwatcher *x = q->state;
    unlink_watcher(x);
    tw_arena_free(&x->page);
}

static void pump(qwatcher *x);

static void writable(tw_grpc_call *call, void *arg)
{
    (void)call;
    qwatcher *x = arg;
    x->waiting = 0;
    pump(x);
}

/* Send one page's rows; returns how many were sent, or -1 when the call
 * was ended (x is dead). Sets *last_seq / *last_id to the last sent. */
static long send_rows(qwatcher *x, const PGresult *r, int64_t *last_seq, int64_t *last_id)
{
    qcall *q = x->q;
    size_t cap = buffer_cap(x);
    int n = PQntuples(r);
    long sent = 0;
    tw_arena_reset(&x->page);
    for (int i = 0; i < n; i++) {
        if (i > 0 && tw_grpc_call_pending(q->call) >= cap)
            break; /* the rest waits for the reader: read again later */
        Tidewatch__V1__AlertChange ch = TIDEWATCH__V1__ALERT_CHANGE__INIT;
        ch.alert = qalert_from_row(&x->page, r, i);
        const char *kind = qs(r, i, "change");
        ch.kind = (char *)(kind ? kind : "");
        ch.seq = ch.alert ? ch.alert->seq : 0;
        size_t len = ch.alert ? protobuf_c_message_get_packed_size(&ch.base) : 0;
        uint8_t *buf = ch.alert ? tw_arena_alloc(&x->page, len ? len : 1) : NULL;
        if (!buf) {
            watcher_end(x, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            return -1;
        }
        protobuf_c_message_pack(&ch.base, buf);
        if (tw_grpc_call_send(q->call, buf, len) != 0) {
            char why[160];
            snprintf(why, sizeof why,
                     "the change of alert %lld (%zu bytes) could not be sent (over the message "
                     "or output limit)",
                     (long long)ch.alert->alert_id, len);
            watcher_end(x, TW_GRPC_RESOURCE_EXHAUSTED, why);
            return -1;
        }
        q->count++;
        sent++;
        *last_seq = ch.alert->seq;
        *last_id = ch.alert->alert_id;
    }
    tw_arena_reset(&x->page);
    return sent;
}

static void read_done(const tw_pg_outcome *o, void *arg)
{
    qwatcher *x = arg;
    qcall *q = x->q;
    x->reading = 0;
    if (qcall_sql_back(q))
        return; /* cancelled: audited and freed */
    qwatch *w = x->w;
    if (w->svc->daemon->stopping) {
        watcher_end(x, TW_GRPC_UNAVAILABLE, "the server is shutting down");
        return;
    }
    if (o->kind != TW_PG_OK) {
        /* not the watcher's fault: the next poll tries again */
        TW_LOG(TW_LOG_WARN, (&(tw_log_ctx){.peer = q->peer, .call = q->m->path}),
               "watch read failed (%s: %s %s); retrying at the next poll",
               tw_pg_kind_name(o->kind), o->sqlstate, o->message);
        x->again = 0;
        return;
    }
    int64_t top = qi(o->results[0], 0, "top");
    if (top > w->top)
        w->top = top;
    if (!x->started) { /* the start: S0 */
        x->started = 1;
        x->s0 = top;
        if (x->after_seq > 0) {
            x->pos = x->after_seq;
        } else {
            x->pos = top;
            x->backlog = x->after_id > 0;
            x->last_id = x->after_id;
        }
        pump(x);
        return;
    }
    const PGresult *r = o->results[1];
    int64_t page = w->svc->cfg->watch_page;
    int64_t last_seq = 0, last_id = 0;
    long sent = send_rows(x, r, &last_seq, &last_id);
    if (sent < 0)
        return;
    int full = PQntuples(r) >= page;
    int cut = sent < PQntuples(r);
    if (x->backlog) {
        if (sent > 0)
            x->last_id = last_id;
        if (!full && !cut)
            x->backlog = 0; /* live from S0 (x->pos) */
    } else {
        if (sent > 0)
            x->pos = last_seq;
        if (!full && !cut && top > x->pos)
            x->pos = top; /* every change up to top was seen: the rest were filtered */
    }
    if (full || cut || x->backlog)
        x->again = 1;
    pump(x);
}

/* Read the next page when the watcher is behind and its queue has room. */
static void pump(qwatcher *x)
{
    qcall *q = x->q;
    qwatch *w = x->w;
    if (!q->call || !x->linked)
        return;
    if (x->reading) {
        x->again = 1;
        return;
    }
    int start = !x->started;
    if (!start && !x->backlog && !x->again && x->pos >= w->top)
        return; /* nothing new */
    size_t low = buffer_cap(x) / 2;
    if (!start && tw_grpc_call_pending(q->call) > low) {
        if (!x->waiting) {
            x->waiting = 1;
            tw_grpc_call_on_writable(q->call, low, writable, x);
        }
        return;
    }
    x->again = 0;
    tw_pg *pg = query_pick_pg(w->svc);
    const char **v = tw_arena_calloc(&x->page, 4, sizeof *v);
    const char *sev = tw_arena_printf(&x->page, "%d", x->severity);
    const char *lim = tw_arena_printf(&x->page, "%lld", (long long)w->svc->cfg->watch_page);
    const char *a = x->backlog ? tw_arena_printf(&x->page, "%lld", (long long)x->last_id)
                               : tw_arena_printf(&x->page, "%lld", (long long)x->pos);
    const char *b = tw_arena_printf(&x->page, "%lld", (long long)x->s0);
    if (!v || !sev || !lim || !a || !b || !pg) {
        watcher_end(x, pg ? TW_GRPC_RESOURCE_EXHAUSTED : TW_GRPC_UNAVAILABLE,
                    pg ? "out of memory" : "no database connection");
        return;
    }
    tw_pg_stmt st[2];
    st[0] = (tw_pg_stmt){.stmt = QSQL(Q_WATCH_TOP)};
    if (x->backlog) {
        v[0] = a;
        v[1] = b;
        v[2] = sev;
        v[3] = lim;
        st[1] = (tw_pg_stmt){.stmt = QSQL(Q_WATCH_BACKLOG), .nparams = 4, .values = v};
    } else {
        v[0] = a;
        v[1] = sev;
        v[2] = lim;
        st[1] = (tw_pg_stmt){.stmt = QSQL(Q_WATCH_LIVE), .nparams = 3, .values = v};
    }
    q->pending++;
    x->reading = 1;
    if (tw_pg_batch(pg, st, start ? 1 : 2, read_done, x) != 0) {
        q->pending--;
        x->reading = 0;
        watcher_end(x, TW_GRPC_INTERNAL, "could not submit a query");
    }
}

static void wake_all(qwatch *w)
{
    for (qwatcher *x = w->head, *next; x; x = next) {
        next = x->next;
        pump(x);
    }
}

/* Shutting down: end the watchers now (not those reading: their read
 * ends them), so that the grace period is not spent on them. */
static void end_all(qwatch *w)
{
    for (qwatcher *x = w->head, *next; x; x = next) {
        next = x->next;
        if (!x->reading)
            watcher_end(x, TW_GRPC_UNAVAILABLE, "the server is shutting down");
    }
}

static void poll_done(const tw_pg_outcome *o, void *arg)
{
    qwatch *w = arg;
    w->polling = 0;
    if (o->kind != TW_PG_OK)
        return;
    int64_t top = qi(o->results[0], 0, "top");
    if (top > w->top)
        w->top = top;
    wake_all(w);
}

static void poll_now(qwatch *w)
{
    if (w->polling || !w->head)
        return;
    tw_pg *pg = query_pick_pg(w->svc);
    if (!pg)
        return;
    w->polling = 1;
    if (tw_pg_query(pg, QSQL(Q_WATCH_TOP), 0, NULL, NULL, NULL, 0, poll_done, w) != 0)
        w->polling = 0;
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    qwatch *w = arg;
    if (w->svc->daemon->stopping) {
        end_all(w);
        return;
    }
    poll_now(w);
}

static void on_notify(void *arg, const char *channel, const char *payload, int resync)
{
    (void)channel;
    qwatch *w = arg;
    if (resync || !payload) {
        poll_now(w); /* notifications may have been lost meanwhile */
        return;
    }
    char *end = NULL;
    long long seq = strtoll(payload, &end, 10);
    if (!payload[0] || *end || seq <= 0) {
        poll_now(w);
        return;
    }
    if (seq > w->top)
        w->top = seq;
    wake_all(w);
}

void query_watch_alerts(qcall *q)
{
    Tidewatch__V1__WatchAlertsRequest *req = q->req;
    qwatch *w = q->svc->watch;
    const query_config *cfg = q->svc->cfg;
    if (req->after_seq < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "after_seq: must not be negative");
        return;
    }
    if (req->after_alert_id < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "after_alert_id: must not be negative");
        return;
    }
    if (req->after_seq > 0 && req->after_alert_id > 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "after_seq, after_alert_id: give one of them (resume after a seq, or the "
                   "backlog after an alert id)");
        return;
    }
    if (req->min_severity < 0 || req->min_severity > 4) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "min_severity: not an AlertSeverity (unspecified, low, medium, high, critical)");
        return;
    }
    if (!w || q->svc->daemon->stopping) {
        qcall_fail(q, TW_GRPC_UNAVAILABLE, "the server is shutting down");
        return;
    }
    if (w->n >= (size_t)cfg->watch_max) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED,
                   "too many WatchAlerts calls at once (watch_max %lld): retry later",
                   (long long)cfg->watch_max);
        return;
    }
    qwatcher *x = tw_arena_calloc(&q->arena, 1, sizeof *x);
    if (!x) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    x->w = w;
    x->q = q;
    x->severity = (int)req->min_severity;
    x->after_seq = req->after_seq;
    x->after_id = req->after_alert_id;
    tw_arena_init(&x->page, 16 * 1024);
    q->state = x;
    q->cleanup = watcher_cleanup;
    q->on_cancel = watcher_cancelled;
    x->next = w->head;
    if (w->head)
        w->head->prev = x;
    w->head = x;
    x->linked = 1;
    w->n++;
    pump(x); /* S0 first */
}

/* ---- the shared part -------------------------------------------------------- */

static size_t watchers_gauge(void *arg)
{
    const qwatch *w = arg;
    size_t n = 0;
    for (const qwatcher *x = w->head; x; x = x->next)
        n += x->started;
    return n;
}

static size_t queued_gauge(void *arg)
{
    const qwatch *w = arg;
    size_t n = 0;
    for (const qwatcher *x = w->head; x; x = x->next)
        if (x->q->call)
            n += tw_grpc_call_pending(x->q->call);
    return n;
}

int query_watch_init(query_service *svc, char *err, size_t errlen)
{
    qwatch *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    w->svc = svc;
    svc->watch = w;
    /* NOTIFY reaches no standby: when reads go to one, listen on the
     * primary (where audit rows go); the poll covers the rest. */
    const char *url = svc->cfg->audit_database_url && svc->cfg->audit_database_url[0]
                          ? svc->cfg->audit_database_url
                          : svc->cfg->common.database_url;
    tw_pg_opts opts = {.name = "query-listen", .idle_in_xact_timeout_ms = -1};
    w->listen_pg = tw_pg_new(svc->daemon->base, url, &opts, err, errlen);
    if (!w->listen_pg)
        return -1;
    if (tw_pg_listen(w->listen_pg, "tidewatch_alerts", on_notify, w) != 0) {
        snprintf(err, errlen, "cannot listen on tidewatch_alerts");
        return -1;
    }
    w->poll = event_new(svc->daemon->base, -1, EV_PERSIST, on_poll, w);
    struct timeval tv = {.tv_sec = svc->cfg->watch_poll_ms / 1000,
                         .tv_usec = (svc->cfg->watch_poll_ms % 1000) * 1000};
    if (!w->poll || event_add(w->poll, &tv) != 0) {
        snprintf(err, errlen, "no poll timer");
        return -1;
    }
    if (tw_metrics_gauge_callback(svc->daemon->metrics, "tidewatch_query_watchers",
                                  "WatchAlerts calls open (started).", watchers_gauge, w) != 0 ||
        tw_metrics_gauge_callback(svc->daemon->metrics, "tidewatch_query_watch_queued_bytes",
                                  "Bytes queued for WatchAlerts readers, all of them.",
                                  queued_gauge, w) != 0) {
        snprintf(err, errlen, "metrics");
        return -1;
    }
    return 0;
}

void query_watch_free(query_service *svc)
{
    qwatch *w = svc->watch;
    if (!w)
        return;
    svc->watch = NULL;
    /* calls still open were cancelled with the server; none is linked */
    while (w->head)
        unlink_watcher(w->head);
    if (w->poll)
        event_free(w->poll);
    tw_pg_free(w->listen_pg);
    free(w);
}
