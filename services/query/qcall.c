/* One ProvenanceService or AlertService call from request to audit row to
 * answer (WatchAlerts, a stream, is audited when it ends: see watch.c).
 *
 * on_message decodes the request into the call's arena (capped by
 * TIDEWATCH_QUERY_REQUEST_MEMORY), renders it as JSON for the audit row
 * (jansson), and hands it to the method. The method runs batches through
 * qcall_sql and ends with qcall_reply or qcall_fail. Either one has the
 * audit row written first (query_audit; the rows of concurrent calls go in
 * one INSERT, see "audit rows" below) and answers when PostgreSQL has
 * committed it: an OK answer whose row could not be written becomes
 * UNAVAILABLE, so nothing leaves without its trace. A call the client
 * cancels (or whose deadline passes) is audited as CANCELLED once its SQL
 * is back. */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "query.h"
#include "sql.h"
#include "tw_pagetoken.h"
#include "tw_log.h"
#include "tw_metrics.h"
#include "tw_pgarray.h"

/* ---- helpers ----------------------------------------------------------- */

char *qfmt(qcall *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = tw_arena_vprintf(&q->arena, fmt, ap);
    va_end(ap);
    return s;
}

int64_t qlimit(int64_t asked, int64_t def, int64_t cap)
{
    int64_t v = asked > 0 ? asked : def;
    return v > cap ? cap : v;
}

static double elapsed_ms(const qcall *q)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - q->start.tv_sec) * 1e3 +
           (double)(now.tv_nsec - q->start.tv_nsec) / 1e6;
}

const char *qfield_error(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return "too long";
    if (u8_check((const uint8_t *)s, n))
        return "not valid UTF-8";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "contains control characters";
    return NULL;
}

int qtime_param(qcall *q, const Google__Protobuf__Timestamp *t, const char *field, char **out)
{
    *out = NULL;
    if (!t)
        return 0;
    if (t->nanos < 0 || t->nanos > 999999999 || t->seconds < -62135596800LL ||
        t->seconds > 253402300799LL) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "%s: not a valid time (seconds in years 1-9999, nanos 0-999999999)", field);
        return -1;
    }
    *out = qfmt(q, "%lld.%09d", (long long)t->seconds, (int)t->nanos);
    if (!*out) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    return 0;
}

/* ---- request as JSON (for the audit row) ------------------------------- */

static json_t *pb_json(const ProtobufCMessage *m, int depth);

/* Request strings longer than this are audited as their first bytes and
 * their length ({"prefix": "...", "bytes": n}). */
#define AUDIT_STRING_MAX 1024

static json_t *pb_string(const char *s)
{
    size_t len = strlen(s);
    if (len > AUDIT_STRING_MAX) {
        size_t cut = AUDIT_STRING_MAX;
        json_t *prefix = NULL;
        while (!prefix && cut > AUDIT_STRING_MAX - 4)
            prefix = json_stringn(s, cut--); /* back off to a character boundary */
        return prefix ? json_pack("{s:o,s:I}", "prefix", prefix, "bytes", (json_int_t)len)
                      : json_pack("{s:I}", "bytes", (json_int_t)len);
    }
    json_t *j = json_string(s);
    if (j)
        return j;
    /* not UTF-8: kept as hex, so the row can still be written */
    size_t n = strlen(s);
    char *hex = malloc(2 * n + 1);
    if (!hex)
        return NULL;
    for (size_t i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", (unsigned char)s[i]);
    json_t *o = json_pack("{s:s}", "hex", hex);
    free(hex);
    return o;
}

static json_t *pb_field(const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: {
        int32_t v = *(const int32_t *)p;
        return v ? json_integer(v) : NULL;
    }
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: {
        uint32_t v = *(const uint32_t *)p;
        return v ? json_integer((json_int_t)v) : NULL;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        int64_t v = *(const int64_t *)p;
        return v ? json_integer((json_int_t)v) : NULL;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        return v ? json_integer((json_int_t)v) : NULL;
    }
    case PROTOBUF_C_TYPE_FLOAT: {
        float v = *(const float *)p;
        return v != 0 ? json_real(v) : NULL;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = *(const double *)p;
        return v != 0 ? json_real(v) : NULL;
    }
    case PROTOBUF_C_TYPE_BOOL:
        return *(const protobuf_c_boolean *)p ? json_true() : NULL;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        if (!v)
            return NULL;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s && s[0] ? pb_string(s) : NULL;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        return b->len ? json_pack("{s:I}", "bytes", (json_int_t)b->len) : NULL;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        return sub ? pb_json(sub, depth + 1) : NULL;
    }
    }
    return NULL;
}

/* Non-default fields by their .proto names; repeated fields as arrays. */
static json_t *pb_json(const ProtobufCMessage *m, int depth)
{
    json_t *o = json_object();
    if (!o || depth > 8)
        return o;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0)
                continue;
            v = json_array();
            const char *arr = *(char *const *)(base + f->offset);
            size_t sz = f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING
                            ? sizeof(void *)
                        : f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData)
                        : f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
                                f->type == PROTOBUF_C_TYPE_SFIXED64 ||
                                f->type == PROTOBUF_C_TYPE_UINT64 ||
                                f->type == PROTOBUF_C_TYPE_FIXED64 ||
                                f->type == PROTOBUF_C_TYPE_DOUBLE
                            ? 8
                            : 4;
            for (size_t k = 0; v && k < n && k < 100; k++) {
                json_t *e = pb_field(f, arr + k * sz, depth);
                json_array_append_new(v, e ? e : json_null());
            }
        } else {
            v = pb_field(f, base + f->offset, depth);
        }
        if (v)
            json_object_set_new(o, f->name, v);
    }
    return o;
}

/* ---- the audit row and the answer -------------------------------------- */

static void qcall_free(qcall *q)
{
    if (q->cleanup)
        q->cleanup(q);
    free(q->args_json);
    free(q->peer);
    tw_arena_free(&q->arena);
    free(q);
}

tw_pg *query_pick_pg(query_service *svc)
{
    tw_pg *best = NULL;
    size_t best_pending = 0;
    for (size_t i = 0; i < svc->npg; i++) {
        if (!svc->pg[i] || !tw_pg_is_up(svc->pg[i]))
            continue;
        size_t p = tw_pg_pending(svc->pg[i]);
        if (!best || p < best_pending) {
            best = svc->pg[i];
            best_pending = p;
        }
    }
    if (best)
        return best;
    for (size_t i = 0; i < svc->npg; i++)
        if (svc->pg[i])
            return svc->pg[i]; /* down: it answers NOT_CONNECTED */
    return NULL;
}

static void send_answer(qcall *q)
{
    tw_grpc_call *call = q->call;
    q->call = NULL;
    tw_grpc_call_set_data(call, NULL);
    if (q->status == TW_GRPC_OK)
        tw_grpc_call_reply(call, q->resp, q->resp_len);
    else
        tw_grpc_call_finish(call, q->status, q->message);
}

/* ---- audit rows, many calls per INSERT ---------------------------------------
 *
 * One INSERT is in flight at a time (per daemon). Calls that end while it
 * runs (its commit waits for the WAL flush) queue in the service's list, in
 * order; when it is answered, the next INSERT takes up to audit_batch of
 * them as seven binary arrays unnested into rows (sql.c TW_SQL_AUDIT): one
 * statement and one commit for many calls. Each call is answered only when
 * the INSERT holding its row has committed; if that INSERT fails, every OK
 * answer in it becomes UNAVAILABLE (errors keep their status), so nothing
 * leaves without its trace. At most audit_queue calls wait (queued or in
 * flight); past that, a call is answered at once without a row (OK becomes
 * UNAVAILABLE: the database is not keeping up with the audit). */

#define AUDIT_COLS 7

typedef struct qaudit_flight {
    query_service *svc;
    size_t n;
    qcall *calls[]; /* n, in row order */
} qaudit_flight;

size_t query_audit_in_flight(const query_service *svc)
{
    return svc->audit_flight ? svc->audit_flight->n : 0;
}

/* The call's row could not be written: OK answers become UNAVAILABLE. */
static void audit_failed(qcall *q, const char *message)
{
    if (q->status == TW_GRPC_OK) {
        q->status = TW_GRPC_UNAVAILABLE;
        q->message = (char *)message;
    }
}

/* The audit is over (row written or not): answer (unless cancelled), free. */
static void audit_finish(qcall *q)
{
    q->auditing = 0;
    if (q->call)
        send_answer(q);
    qcall_free(q);
}

static void audit_pump(query_service *svc);

static void audit_done(const tw_pg_outcome *o, void *arg)
{
    qaudit_flight *f = arg;
    query_service *svc = f->svc;
    svc->audit_flight = NULL;
    if (o->kind != TW_PG_OK)
        TW_LOG(TW_LOG_WARN, NULL, "%zu audit row%s not written (%s: %s); their OK answers become "
               "UNAVAILABLE", f->n, f->n == 1 ? "" : "s", tw_pg_kind_name(o->kind), o->message);
    for (size_t i = 0; i < f->n; i++) {
        qcall *q = f->calls[i];
        if (o->kind != TW_PG_OK)
            audit_failed(q, "the call could not be audited (database unavailable); retry");
        audit_finish(q);
    }
    free(f);
    audit_pump(svc);
}

/* The next INSERT: up to audit_batch queued calls as arrays. Returns 0
 * when it is in flight, -1 when it could not be submitted (the calls taken
 * are answered; the caller tries again with the rest). */
static int audit_send(query_service *svc)
{
    size_t n = svc->audit_waiting;
    if (n > (size_t)svc->cfg->audit_batch)
        n = (size_t)svc->cfg->audit_batch;
    qaudit_flight *f = malloc(sizeof *f + n * sizeof f->calls[0]);
    if (!f) {
        n = 1; /* out of memory: this one is answered unaudited */
    } else {
        f->svc = svc;
        f->n = n;
    }
    static const Oid oids[AUDIT_COLS] = {TW_OID_TEXT, TW_OID_TEXT, TW_OID_JSONB, TW_OID_INT8,
                                         TW_OID_INT2, TW_OID_TEXT, TW_OID_INT8};
    tw_pgarray a[AUDIT_COLS];
    memset(a, 0, sizeof a);
    for (int c = 0; c < AUDIT_COLS; c++)
        tw_pgarray_begin(&a[c], oids[c]);
    qcall *taken = NULL;
    for (size_t i = 0; i < n; i++) {
        qcall *q = svc->audit_head;
        svc->audit_head = q->audit_next;
        if (!svc->audit_head)
            svc->audit_tail = NULL;
        svc->audit_waiting--;
        q->audit_next = taken; /* kept for answering on failure */
        taken = q;
        if (f)
            f->calls[i] = q;
        const char *args = q->args_json ? q->args_json : "{}";
        tw_pgarray_text(&a[0], q->peer);
        tw_pgarray_text(&a[1], q->m->path);
        tw_pgarray_jsonb(&a[2], args, strlen(args));
        tw_pgarray_int8(&a[3], q->count);
        tw_pgarray_int2(&a[4], (int16_t)q->status);
        tw_pgarray_text(&a[5], q->message ? q->message : "");
        tw_pgarray_int8(&a[6], q->audit_us);
    }
    int ok = f != NULL;
    const char *values[AUDIT_COLS];
    int lengths[AUDIT_COLS], formats[AUDIT_COLS];
    for (int c = 0; c < AUDIT_COLS; c++) {
        if (tw_pgarray_finish(&a[c]) != 0 || a[c].len > INT32_MAX)
            ok = 0;
        values[c] = (const char *)a[c].data;
        lengths[c] = (int)a[c].len;
        formats[c] = 1;
    }
    tw_pg *pg = svc->audit_pg; /* NULL once freed at shutdown */
    if (ok && pg &&
        tw_pg_query(pg, TW_SQL_AUDIT, AUDIT_COLS, values, lengths, formats, 0, audit_done, f) == 0)
        svc->audit_flight = f;
    else
        ok = 0;
    for (int c = 0; c < AUDIT_COLS; c++)
        tw_pgarray_free(&a[c]);
    if (ok)
        return 0;
    TW_ERROR(NULL, "%zu audit row%s not submitted; their OK answers become UNAVAILABLE", n,
             n == 1 ? "" : "s");
    free(f);
    while (taken) {
        qcall *q = taken;
        taken = q->audit_next;
        q->audit_next = NULL;
        audit_failed(q, "the call could not be audited; retry");
        audit_finish(q);
    }
    return -1;
}

static void audit_pump(query_service *svc)
{
    while (!svc->audit_flight && svc->audit_head && audit_send(svc) == 0)
        ;
}

/* Queue the call's audit row; the answer follows when it is written. */
static void audit(qcall *q)
{
    query_service *svc = q->svc;
    q->audit_us = (int64_t)(elapsed_ms(q) * 1000.0 + 0.5);
    q->auditing = 1;
    size_t busy = svc->audit_waiting + (svc->audit_flight ? svc->audit_flight->n : 0);
    if (busy >= (size_t)svc->cfg->audit_queue) {
        TW_LOG(TW_LOG_WARN, (&(tw_log_ctx){.peer = q->peer, .call = q->m->path}),
               "audit queue full (%zu calls waiting for their rows): answered without a row%s",
               busy, q->call && q->status == TW_GRPC_OK ? " (UNAVAILABLE)" : "");
        if (tw_metrics_counter_add(svc->daemon->metrics, "tidewatch_query_audit_refused_total",
                                   "Calls answered without an audit row: the audit queue was "
                                   "full.", NULL, NULL, 1) != 0)
            TW_ERROR(NULL, "metrics: could not count a refused call");
        audit_failed(q, "too many calls are waiting for their audit rows (the database is "
                        "not keeping up); retry");
        audit_finish(q);
        return;
    }
    q->audit_next = NULL;
    if (svc->audit_tail)
        svc->audit_tail->audit_next = q;
    else
        svc->audit_head = q;
    svc->audit_tail = q;
    svc->audit_waiting++;
    audit_pump(svc);
}

void qcall_reply(qcall *q, const ProtobufCMessage *resp, long count)
{
    size_t len = protobuf_c_message_get_packed_size(resp);
    if (len > (size_t)q->svc->cfg->common.max_message) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED,
                   "the answer would be %zu bytes, over the message limit: ask for fewer "
                   "(max_hops, page_size, max_items)",
                   len);
        return;
    }
    q->resp = tw_arena_alloc(&q->arena, len ? len : 1);
    if (!q->resp) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    protobuf_c_message_pack(resp, q->resp);
    q->resp_len = len;
    q->status = TW_GRPC_OK;
    q->count = count;
    q->message = NULL;
    audit(q);
}

void qcall_fail(qcall *q, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = tw_arena_vprintf(&q->arena, fmt, ap);
    va_end(ap);
    q->status = status;
    q->message = m ? m : (char *)"error";
    audit(q); /* the count stays: a stream's messages sent before the error */
}

/* ---- SQL ------------------------------------------------------------------ */

static void sql_done(const tw_pg_outcome *o, void *arg)
{
    qcall *q = arg;
    q->pending--;
    q->hop_cols_for = NULL; /* the results it was for may be gone */
    if (!q->call) { /* cancelled meanwhile: audit it now */
        q->status = TW_GRPC_CANCELLED;
        q->message = (char *)"cancelled by the client (or its deadline passed)";
        audit(q);
        return;
    }
    if (o->kind == TW_PG_OK) {
        qcall_step next = q->next;
        q->next = NULL;
        if (q->skip_first) { /* qcall_sql_generic's SET is not the caller's */
            q->skip_first = 0;
            tw_pg_outcome mine = *o;
            mine.results = o->results + 1;
            mine.nresults = o->nresults - 1;
            next(q, &mine);
            return;
        }
        next(q, o);
        return;
    }
    q->skip_first = 0;
    if (o->kind == TW_PG_QUERY_ERROR && q->on_query_error && q->on_query_error(q, o))
        return;
    if (o->kind == TW_PG_QUERY_ERROR && strcmp(o->sqlstate, "57014") == 0) {
        qcall_fail(q, TW_GRPC_DEADLINE_EXCEEDED,
                   "the query ran longer than the statement timeout (%lld ms) and was cancelled: "
                   "narrow it (a longer pattern, filters, smaller pages)",
                   (long long)q->svc->cfg->statement_timeout_ms);
        return;
    }
    if (o->kind == TW_PG_QUERY_ERROR) {
        TW_ERROR((&(tw_log_ctx){.peer = q->peer, .call = q->m->path}),
                 "statement %d failed: %s %s", o->failed_step, o->sqlstate, o->message);
        qcall_fail(q, TW_GRPC_INTERNAL, "the database refused a query (%s)", o->sqlstate);
        return;
    }
    qcall_fail(q, TW_GRPC_UNAVAILABLE, "database unavailable (%s); retry",
               tw_pg_kind_name(o->kind));
}

int qcall_sql_back(qcall *q)
{
    q->pending--;
    if (q->call)
        return 0;
    q->status = TW_GRPC_CANCELLED;
    q->message = (char *)"cancelled by the client (or its deadline passed)";
    audit(q);
    return 1;
}

void qcall_sql(qcall *q, const tw_pg_stmt *stmts, size_t n, qcall_step next)
{
    q->next = next;
    q->pending++;
    tw_pg *pg = query_pick_pg(q->svc);
    if (!pg || tw_pg_batch(pg, stmts, n, sql_done, q) != 0) {
        q->pending--;
        q->skip_first = 0;
        qcall_fail(q, TW_GRPC_INTERNAL, "could not submit a query");
    }
}

void qcall_sql_generic(qcall *q, const tw_pg_stmt *stmts, size_t n, qcall_step next)
{
    tw_pg_stmt *all = tw_arena_calloc(&q->arena, n + 1, sizeof *all);
    if (!all) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    /* Transaction-local: the batch is one transaction, and the connection's
     * other work keeps the server's choice. */
    all[0] = (tw_pg_stmt){.stmt = QSQL(Q_GENERIC_PLANS)};
    memcpy(all + 1, stmts, n * sizeof *stmts);
    q->skip_first = 1;
    qcall_sql(q, all, n + 1, next);
}

void qcall_sql1(qcall *q, const char *sql, int nparams, const char *const *values,
                qcall_step next)
{
    tw_pg_stmt st = {.stmt = sql, .nparams = nparams, .values = values};
    qcall_sql(q, &st, 1, next);
}

/* ---- page tokens ------------------------------------------------------------ */

char *qtoken_encode(qcall *q, const char *kind, const char *binding, const int64_t *v, int n)
{
    char *t = tw_arena_alloc(&q->arena, TW_PAGETOKEN_MAX + 1);
    if (!t || tw_pagetoken_encode(q->svc->token_key, q->svc->token_key_len, kind, binding, v, n,
                                  t) != 0)
        return NULL;
    return t;
}

int qtoken_decode(qcall *q, const char *token, const char *kind, const char *binding, int64_t *v,
                  int n)
{
    int rv = tw_pagetoken_decode(q->svc->token_key, q->svc->token_key_len, token, kind, binding, v,
                                 n);
    if (rv < 0)
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "page_token: not a token this server issued for this query (pass "
                   "next_page_token unchanged, with the same filters)");
    return rv;
}

/* ---- the methods ----------------------------------------------------------- */

/* Headers arrived: the call exists from now on, and is audited whatever
 * happens to it (a request the transport refuses, too large or badly
 * compressed, ends in on_cancel). */
static void on_start(tw_grpc_call *call, void *arg)
{
    const query_bound *b = arg;
    qcall *q = calloc(1, sizeof *q);
    const char *peer = tw_grpc_call_peer(call);
    if (q)
        q->peer = strdup(peer ? peer : "?");
    if (!q || !q->peer) {
        if (q)
            free(q);
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &q->start);
    q->svc = b->svc;
    q->m = b->m;
    q->call = call;
    tw_arena_init(&q->arena, 16 * 1024);
    tw_grpc_call_set_data(call, q);
}

static void on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    const query_bound *b = arg;
    qcall *q = tw_grpc_call_data(call);
    if (!q || q->req || q->args_json)
        return; /* unary: one message; on_start failed otherwise */
    tw_arena_set_limit(&q->arena, (size_t)b->svc->cfg->request_memory);
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&q->arena);
    q->req = protobuf_c_message_unpack(b->m->request, &alloc, len, msg);
    /* The answer is built in the same arena: lift the request's cap. */
    tw_arena_set_limit(&q->arena, 0);
    if (!q->req) {
        char *j = NULL;
        json_t *o = json_pack("{s:I}", "undecodable_bytes", (json_int_t)len);
        if (o) {
            j = json_dumps(o, JSON_COMPACT);
            json_decref(o);
        }
        q->args_json = j;
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "%s: the request could not be decoded (%zu bytes)",
                   b->m->request->name, len);
        return;
    }
    json_t *o = pb_json(q->req, 0);
    if (o) {
        q->args_json = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    if (!q->args_json) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    b->m->handle(q);
}

static void on_cancel(tw_grpc_call *call, void *arg)
{
    (void)arg;
    qcall *q = tw_grpc_call_data(call);
    if (!q)
        return;
    q->call = NULL;
    if (q->on_cancel)
        q->on_cancel(q);
    if (q->pending || q->auditing)
        return; /* sql_done or audit_done finishes it */
    q->status = TW_GRPC_CANCELLED;
    if (!q->args_json) {
        q->args_json = strdup("{\"request\": \"not received\"}");
        q->message = (char *)"ended before its request was handled: cancelled by the client, "
                             "its deadline passed, or the request was refused on the wire "
                             "(larger than the message limit, bad compression)";
    } else {
        q->message = (char *)"cancelled by the client (or its deadline passed)";
    }
    audit(q);
}

static const query_method methods[] = {
    {"/tidewatch.v1.ProvenanceService/GetChain", "GetChain",
     &tidewatch__v1__get_chain_request__descriptor, query_get_chain},
    {"/tidewatch.v1.ProvenanceService/SearchItems", "SearchItems",
     &tidewatch__v1__search_items_request__descriptor, query_search_items},
    {"/tidewatch.v1.ProvenanceService/ListEvents", "ListEvents",
     &tidewatch__v1__list_events_request__descriptor, query_list_events},
    {"/tidewatch.v1.ProvenanceService/GetParty", "GetParty",
     &tidewatch__v1__get_party_request__descriptor, query_get_party},
    {"/tidewatch.v1.ProvenanceService/TraceBack", "TraceBack",
     &tidewatch__v1__trace_back_request__descriptor, query_trace_back},
    {"/tidewatch.v1.ProvenanceService/TraceForward", "TraceForward",
     &tidewatch__v1__trace_forward_request__descriptor, query_trace_forward},
    {"/tidewatch.v1.AlertService/ListAlerts", "ListAlerts",
     &tidewatch__v1__list_alerts_request__descriptor, query_list_alerts},
    {"/tidewatch.v1.AlertService/GetAlert", "GetAlert",
     &tidewatch__v1__get_alert_request__descriptor, query_get_alert},
    {"/tidewatch.v1.AlertService/AcknowledgeAlert", "AcknowledgeAlert",
     &tidewatch__v1__acknowledge_alert_request__descriptor, query_ack_alert},
    {"/tidewatch.v1.AlertService/CloseAlert", "CloseAlert",
     &tidewatch__v1__close_alert_request__descriptor, query_close_alert},
    {"/tidewatch.v1.AlertService/ListHubs", "ListHubs",
     &tidewatch__v1__list_hubs_request__descriptor, query_list_hubs},
    {"/tidewatch.v1.AlertService/PutHub", "PutHub", &tidewatch__v1__put_hub_request__descriptor,
     query_put_hub},
    {"/tidewatch.v1.AlertService/SetHubEnabled", "SetHubEnabled",
     &tidewatch__v1__set_hub_enabled_request__descriptor, query_set_hub_enabled},
    /* A server stream: audited once, when it ends (watch.c). */
    {"/tidewatch.v1.AlertService/WatchAlerts", "WatchAlerts",
     &tidewatch__v1__watch_alerts_request__descriptor, query_watch_alerts},
};

int query_register(query_service *svc)
{
    size_t n = sizeof methods / sizeof methods[0];
    tw_grpc_method gm[sizeof methods / sizeof methods[0]];
    if (n > QUERY_MAX_METHODS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        svc->bound[i] = (query_bound){.svc = svc, .m = &methods[i]};
        gm[i] = (tw_grpc_method){.path = methods[i].path,
                                 .kind = methods[i].handle == query_watch_alerts
                                             ? TW_GRPC_SERVER_STREAM
                                             : TW_GRPC_UNARY,
                                 .on_start = on_start, .on_message = on_message,
                                 .on_cancel = on_cancel,
                                 .arg = &svc->bound[i]};
    }
    return tw_grpc_server_add_methods(svc->daemon->server, gm, n);
}
