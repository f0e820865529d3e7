/* AlertService: ListAlerts, GetAlert, AcknowledgeAlert, CloseAlert.
 *
 * Alerts are read from the tables migration 0010 defines; state changes go
 * through its SECURITY DEFINER functions (alert_acknowledge, alert_close),
 * which write the history row and NOTIFY watchers, in one batch with the
 * read of the alert as it now is (one transaction). Their SQLSTATEs become
 * statuses: TWA01 NOT_FOUND, TWA02 FAILED_PRECONDITION, TWA03
 * INVALID_ARGUMENT at note. */
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "query.h"
#include "sql.h"

/* ---- rows to messages ------------------------------------------------------- */

static char *astr(tw_arena *a, const PGresult *r, int row, const char *col)
{
    const char *v = qs(r, row, col);
    return tw_arena_strdup(a, v ? v : "");
}

static Google__Protobuf__Timestamp *atime(tw_arena *a, const PGresult *r, int row,
                                          const char *col)
{
    return qtime_at(a, r, row, PQfnumber(r, col));
}

static Tidewatch__V1__AlertState state_of(const char *s)
{
    if (!s)
        return TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_UNSPECIFIED;
    if (strcmp(s, "open") == 0)
        return TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_OPEN;
    if (strcmp(s, "acknowledged") == 0)
        return TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_ACKNOWLEDGED;
    if (strcmp(s, "closed") == 0)
        return TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_CLOSED;
    return TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_UNSPECIFIED;
}

static Tidewatch__V1__AlertSeverity severity_of(int64_t v)
{
    return v >= 1 && v <= 4 ? (Tidewatch__V1__AlertSeverity)v
                            : TIDEWATCH__V1__ALERT_SEVERITY__ALERT_SEVERITY_UNSPECIFIED;
}

Tidewatch__V1__Alert *qalert_from_row(tw_arena *a, const PGresult *r, int row)
{
    Tidewatch__V1__Alert *m = tw_arena_alloc(a, sizeof *m);
    if (!m)
        return NULL;
    tidewatch__v1__alert__init(m);
    m->alert_id = qi(r, row, "alert_id");
    m->rule = astr(a, r, row, "rule");
    m->subject_kind = astr(a, r, row, "subject_kind");
    m->subject = astr(a, r, row, "subject");
    m->hub = astr(a, r, row, "hub");
    m->severity = severity_of(qi(r, row, "severity"));
    m->score = qd(r, row, "score");
    m->state = state_of(qs(r, row, "state"));
    m->title = astr(a, r, row, "title");
    m->explanation = astr(a, r, row, "explanation");
    m->evidence_json = astr(a, r, row, "evidence");
    m->known_at = atime(a, r, row, "known_us");
    m->raised_at = atime(a, r, row, "raised_us");
    m->updated_at = atime(a, r, row, "updated_us");
    m->updates = (int32_t)qi(r, row, "updates");
    m->config_version = (int32_t)qi(r, row, "config_version");
    m->job = astr(a, r, row, "job");
    m->acknowledged_at = atime(a, r, row, "acked_us");
    m->acknowledged_by = astr(a, r, row, "acked_by");
    m->closed_at = atime(a, r, row, "closed_us");
    m->closed_by = astr(a, r, row, "closed_by");
    m->close_note = astr(a, r, row, "close_note");
    m->seq = qi(r, row, "seq");
    if (!m->rule || !m->subject_kind || !m->subject || !m->hub || !m->title ||
        !m->explanation || !m->evidence_json || !m->job || !m->acknowledged_by ||
        !m->closed_by || !m->close_note)
        return NULL;
    if ((!m->known_at && !qnull(r, row, "known_us")) ||
        (!m->raised_at && !qnull(r, row, "raised_us")) ||
        (!m->updated_at && !qnull(r, row, "updated_us")) ||
        (!m->acknowledged_at && !qnull(r, row, "acked_us")) ||
        (!m->closed_at && !qnull(r, row, "closed_us")))
        return NULL;
    return m;
}

/* History rows (Q_ALERT_HISTORY) into m->history. 0 or -1 (ENOMEM). */
static int add_history(tw_arena *a, Tidewatch__V1__Alert *m, const PGresult *r)
{
    int n = PQntuples(r);
    m->history = tw_arena_calloc(a, (size_t)n + 1, sizeof *m->history);
    if (!m->history)
        return -1;
    for (int i = 0; i < n; i++) {
        Tidewatch__V1__AlertUpdate *u = tw_arena_alloc(a, sizeof *u);
        if (!u)
            return -1;
        tidewatch__v1__alert_update__init(u);
        u->seq = qi(r, i, "seq");
        u->kind = astr(a, r, i, "kind");
        u->at = atime(a, r, i, "at_us");
        u->by = astr(a, r, i, "by");
        u->note = astr(a, r, i, "note");
        u->severity = severity_of(qi(r, i, "severity"));
        if (!u->kind || !u->by || !u->note || !u->at)
            return -1;
        m->history[m->n_history++] = u;
    }
    return 0;
}

/* ---- ListAlerts ------------------------------------------------------------- */

/* Caps of the filter strings (bytes). */
#define RULE_MAX 64
#define SUBJECT_MAX 512
#define HUB_NAME_MAX 512

typedef struct list_state {
    int64_t page;
    const char *binding;
} list_state;

static void list_rows(qcall *q, const tw_pg_outcome *o)
{
    list_state *st = q->state;
    const PGresult *r = o->results[0];
    size_t n = (size_t)PQntuples(r);
    bool more = (int64_t)n > st->page;
    if (more)
        n = (size_t)st->page;
    Tidewatch__V1__ListAlertsResponse resp = TIDEWATCH__V1__LIST_ALERTS_RESPONSE__INIT;
    resp.alerts = tw_arena_calloc(&q->arena, n + 1, sizeof *resp.alerts);
    int ok = resp.alerts != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        Tidewatch__V1__Alert *m = qalert_from_row(&q->arena, r, (int)i);
        if (!m)
            ok = 0;
        else
            resp.alerts[resp.n_alerts++] = m;
    }
    if (ok && more && resp.n_alerts > 0) {
        int64_t v[1] = {resp.alerts[resp.n_alerts - 1]->seq};
        resp.next_page_token = qtoken_encode(q, "alerts", st->binding, v, 1);
        ok = resp.next_page_token != NULL;
    }
    if (!ok) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_reply(q, &resp.base, (long)resp.n_alerts);
}

/* A filter string: why it is unacceptable (answered), or 0. */
static int check_field(qcall *q, const char *field, const char *s, size_t max)
{
    const char *bad = qfield_error(s ? s : "", max);
    if (bad) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "%s: %s (at most %zu bytes of printable UTF-8)",
                   field, bad, max);
        return -1;
    }
    return 0;
}

void query_list_alerts(qcall *q)
{
    Tidewatch__V1__ListAlertsRequest *req = q->req;
    const query_config *cfg = q->svc->cfg;
    list_state *st = tw_arena_calloc(&q->arena, 1, sizeof *st);
    if (!st) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    q->state = st;
    const char *states;
    switch ((int)req->state) {
    case TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_UNSPECIFIED:
        states = req->include_closed ? "{open,acknowledged,closed}" : "{open,acknowledged}";
        break;
    case TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_OPEN:
        states = "{open}";
        break;
    case TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_ACKNOWLEDGED:
        states = "{acknowledged}";
        break;
    case TIDEWATCH__V1__ALERT_STATE__ALERT_STATE_CLOSED:
        states = "{closed}";
        break;
    default:
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "state: not an AlertState (unspecified, open, acknowledged, closed)");
        return;
    }
    if (req->min_severity < 0 || req->min_severity > 4) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "min_severity: not an AlertSeverity (unspecified, low, medium, high, critical)");
        return;
    }
    if (req->subject_kind[0] && strcmp(req->subject_kind, "item") != 0 &&
        strcmp(req->subject_kind, "cluster") != 0 && strcmp(req->subject_kind, "consignment") != 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "subject_kind: one of item, cluster, consignment, or empty for any");
        return;
    }
    if (check_field(q, "rule", req->rule, RULE_MAX) || check_field(q, "subject", req->subject,
                                                                   SUBJECT_MAX) ||
        check_field(q, "hub", req->hub, HUB_NAME_MAX))
        return;
    if (req->page_size < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "page_size: must not be negative");
        return;
    }
    char *known = NULL;
    if (qtime_param(q, req->known_after, "known_after", &known) != 0)
        return;
    st->page = qlimit(req->page_size, 50, cfg->page_max);
    st->binding = qfmt(q, "alerts\x1f%s\x1f%d\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", states,
                       (int)req->min_severity, req->rule, req->subject_kind, req->subject,
                       req->hub, known ? known : "");
    if (!st->binding) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    int64_t tok[1] = {0};
    int t = qtoken_decode(q, req->page_token, "alerts", st->binding, tok, 1);
    if (t < 0)
        return;
    const char **v = tw_arena_calloc(&q->arena, 9, sizeof *v);
    if (!v) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = states;
    v[1] = qfmt(q, "%d", (int)req->min_severity);
    v[2] = req->rule;
    v[3] = req->subject_kind;
    v[4] = req->subject;
    v[5] = req->hub;
    v[6] = known;
    v[7] = t == 0 ? qfmt(q, "%lld", (long long)tok[0]) : NULL;
    v[8] = qfmt(q, "%lld", (long long)st->page + 1);
    if (!v[1] || (t == 0 && !v[7]) || !v[8]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_sql1(q, QSQL(Q_ALERTS_LIST), 9, v, list_rows);
}

/* ---- GetAlert, AcknowledgeAlert, CloseAlert ------------------------------------ */

/* The last two results of the batch: the alert row and its history. */
static void alert_rows(qcall *q, const tw_pg_outcome *o)
{
    const PGresult *r = o->results[o->nresults - 2];
    const PGresult *h = o->results[o->nresults - 1];
    int64_t *id = q->state;
    if (PQntuples(r) == 0) {
        qcall_fail(q, TW_GRPC_NOT_FOUND, "alert_id: no alert %lld", (long long)*id);
        return;
    }
    Tidewatch__V1__Alert *m = qalert_from_row(&q->arena, r, 0);
    if (!m || add_history(&q->arena, m, h) != 0) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_reply(q, &m->base, 1);
}

/* The functions' SQLSTATEs (migration 0010) as statuses. */
static int state_error(qcall *q, const tw_pg_outcome *o)
{
    int64_t *id = q->state;
    if (strcmp(o->sqlstate, "TWA01") == 0) {
        qcall_fail(q, TW_GRPC_NOT_FOUND, "alert_id: no alert %lld", (long long)*id);
        return 1;
    }
    if (strcmp(o->sqlstate, "TWA02") == 0) {
        qcall_fail(q, TW_GRPC_FAILED_PRECONDITION,
                   "alert_id: alert %lld is closed; a closed alert cannot be %s", (long long)*id,
                   strcmp(q->m->name, "CloseAlert") == 0 ? "closed again" : "acknowledged");
        return 1;
    }
    if (strcmp(o->sqlstate, "TWA03") == 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "note: required (say why the alert is closed)");
        return 1;
    }
    return 0;
}

/* The id (answered when not positive), kept in q->state. */
static int64_t *take_id(qcall *q, int64_t id)
{
    if (id <= 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "alert_id: required (a positive alert id)");
        return NULL;
    }
    int64_t *p = tw_arena_alloc(&q->arena, sizeof *p);
    if (!p) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    *p = id;
    q->state = p;
    return p;
}

/* Run [change,] Q_ALERT_GET, Q_ALERT_HISTORY as one batch. */
static void run_alert_batch(qcall *q, const char *change, const char *by, const char *note)
{
    int64_t *id = q->state;
    const char *idtext = qfmt(q, "%lld", (long long)*id);
    const char *hist = qfmt(q, "%lld", (long long)q->svc->cfg->alert_history);
    const char **cv = tw_arena_calloc(&q->arena, 3, sizeof *cv);
    const char **gv = tw_arena_calloc(&q->arena, 2, sizeof *gv);
    if (!idtext || !hist || !cv || !gv) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    cv[0] = idtext;
    cv[1] = by;
    cv[2] = note;
    gv[0] = idtext;
    gv[1] = hist;
    tw_pg_stmt st[3];
    size_t n = 0;
    if (change)
        st[n++] = (tw_pg_stmt){.stmt = change, .nparams = 3, .values = cv};
    st[n++] = (tw_pg_stmt){.stmt = QSQL(Q_ALERT_GET), .nparams = 1, .values = gv};
    st[n++] = (tw_pg_stmt){.stmt = QSQL(Q_ALERT_HISTORY), .nparams = 2, .values = gv};
    q->on_query_error = state_error;
    qcall_sql(q, st, n, alert_rows);
}

void query_get_alert(qcall *q)
{
    Tidewatch__V1__GetAlertRequest *req = q->req;
    if (!take_id(q, req->alert_id))
        return;
    run_alert_batch(q, NULL, NULL, NULL);
}

int qcheck_by_note(qcall *q, const char *by, const char *note)
{
    const query_config *cfg = q->svc->cfg;
    const char *bad = qfield_error(by, (size_t)cfg->by_max);
    if (bad) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "by: %s (at most %lld bytes, no control characters)",
                   bad, (long long)cfg->by_max);
        return -1;
    }
    /* notes may have line breaks and tabs */
    size_t n = strlen(note);
    if (n > (size_t)cfg->note_max) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "note: too long (%zu bytes, at most %lld)", n,
                   (long long)cfg->note_max);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)note[i] < 0x20 && note[i] != '\n' && note[i] != '\t') ||
            note[i] == 0x7f) {
            qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                       "note: contains control characters (line breaks and tabs are fine)");
            return -1;
        }
    if (u8_check((const uint8_t *)note, n)) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "note: not valid UTF-8");
        return -1;
    }
    return 0;
}

void query_ack_alert(qcall *q)
{
    Tidewatch__V1__AcknowledgeAlertRequest *req = q->req;
    if (!take_id(q, req->alert_id) || qcheck_by_note(q, req->by, req->note) != 0)
        return;
    run_alert_batch(q, QSQL(Q_ALERT_ACK), req->by, req->note);
}

void query_close_alert(qcall *q)
{
    Tidewatch__V1__CloseAlertRequest *req = q->req;
    if (!take_id(q, req->alert_id) || qcheck_by_note(q, req->by, req->note) != 0)
        return;
    /* the function says so too (TWA03); saying it first costs no lock */
    const char *p = req->note;
    while (*p == ' ' || *p == '\t' || *p == '\n')
        p++;
    if (!*p) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "note: required (say why the alert is closed)");
        return;
    }
    run_alert_batch(q, QSQL(Q_ALERT_CLOSE), req->by, req->note);
}
