/* IngestService.Submit and SubmitStream: decode, validate and normalise each
 * record, hand it to the group-commit writer, and answer each record once
 * its batch committed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ingest.h"
#include "tidewatch/v1/ingest.pb-c.h"
#include "tw_arena.h"
#include "tw_log.h"
#include "tw_pbwalk.h"
#include "tw_record.h"

#define SUBMIT_MAX_RECORDS 1000
#define STREAM_MAX_REJECTIONS 1000
#define OUTCOME(x) TIDEWATCH__V1__RECORD_RESULT__OUTCOME__##x

struct ingest_req {
    ingest_service *svc;
    tw_grpc_call *call; /* NULL once the call is over */
    int stream;
    int adding;      /* inside on_message: completion waits */
    int half_closed; /* stream: the client is done sending */
    int failed;      /* the call already ended with an error */
    int paused;
    size_t outstanding;
    tw_arena arena;   /* Submit: request and results; stream: kept rejections */
    tw_arena scratch; /* stream: one message's memory */
    /* Submit */
    Tidewatch__V1__RecordResult *results;
    size_t n;
    /* SubmitStream */
    uint32_t received;
    uint64_t accepted, duplicates, rejected;
    Tidewatch__V1__RecordResult **rejections;
    size_t nrejections;
};

ingest_entry *ingest_entry_new(size_t extra)
{
    ingest_entry *e = calloc(1, sizeof *e + extra);
    return e;
}

/* ---- request lifetime ---------------------------------------------------- */

static void req_free(ingest_req *r)
{
    tw_arena_free(&r->arena);
    tw_arena_free(&r->scratch);
    free(r);
}

/* Free the request when nothing refers to it any more. */
static void req_maybe_free(ingest_req *r)
{
    if (!r->call && r->outstanding == 0 && !r->adding)
        req_free(r);
}

static void req_fail(ingest_req *r, int status, const char *message)
{
    if (r->call && !r->failed) {
        tw_grpc_call_set_data(r->call, NULL);
        tw_grpc_call_finish(r->call, status, message);
        r->call = NULL;
    }
    r->failed = 1;
}

static void reply_submit(ingest_req *r)
{
    Tidewatch__V1__SubmitResponse resp = TIDEWATCH__V1__SUBMIT_RESPONSE__INIT;
    Tidewatch__V1__RecordResult **ptrs = tw_arena_alloc(&r->arena, (r->n ? r->n : 1) * sizeof *ptrs);
    if (!ptrs) {
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < r->n; i++)
        ptrs[i] = &r->results[i];
    resp.n_results = r->n;
    resp.results = ptrs;
    size_t len = tidewatch__v1__submit_response__get_packed_size(&resp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    tidewatch__v1__submit_response__pack(&resp, buf);
    tw_grpc_call_set_data(r->call, NULL);
    tw_grpc_call_reply(r->call, buf, len);
    r->call = NULL;
    free(buf);
}

static void reply_stream(ingest_req *r)
{
    Tidewatch__V1__SubmitStreamResponse resp = TIDEWATCH__V1__SUBMIT_STREAM_RESPONSE__INIT;
    resp.accepted = r->accepted;
    resp.duplicates = r->duplicates;
    resp.rejected = r->rejected;
    resp.n_rejections = r->nrejections;
    resp.rejections = r->rejections;
    size_t len = tidewatch__v1__submit_stream_response__get_packed_size(&resp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    tidewatch__v1__submit_stream_response__pack(&resp, buf);
    tw_grpc_call_set_data(r->call, NULL);
    tw_grpc_call_reply(r->call, buf, len);
    r->call = NULL;
    free(buf);
}

/* Answer when every record is settled (and, for a stream, the client is
 * done); then free what is no longer needed. */
static void req_maybe_complete(ingest_req *r)
{
    if (r->adding || r->outstanding > 0)
        return;
    if (r->call && !r->failed && (!r->stream || r->half_closed)) {
        if (r->stream)
            reply_stream(r);
        else
            reply_submit(r);
    }
    req_maybe_free(r);
}

/* ---- building entries ------------------------------------------------------ */

/* Issues as protobuf FieldIssue messages in the arena. */
static Tidewatch__V1__FieldIssue **issues_pb(tw_arena *a, const tw_issue *src, size_t n)
{
    if (n == 0)
        return NULL;
    Tidewatch__V1__FieldIssue **out = tw_arena_alloc(a, n * sizeof *out);
    Tidewatch__V1__FieldIssue *items = tw_arena_alloc(a, n * sizeof *items);
    if (!out || !items)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        tidewatch__v1__field_issue__init(&items[i]);
        items[i].field = (char *)src[i].field;
        items[i].code = (char *)src[i].code;
        items[i].reason = (char *)src[i].reason;
        out[i] = &items[i];
    }
    return out;
}

static size_t joined_len(const char **keys, size_t n)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(keys[i]) + 1;
    return len;
}

static char *join_into(char *dst, const char **keys, size_t n)
{
    char *p = dst;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = ' ';
        size_t l = strlen(keys[i]);
        memcpy(p, keys[i], l);
        p += l;
    }
    *p++ = '\0';
    return p;
}

static char *copy_into(char *dst, const char *s, const char **out)
{
    if (!s) {
        *out = NULL;
        return dst;
    }
    size_t l = strlen(s) + 1;
    memcpy(dst, s, l);
    *out = dst;
    return dst + l;
}

/* 1 when the record's reference is usable as a key (not itself invalid). */
static int reference_ok(const tw_record_check *c)
{
    for (size_t i = 0; i < c->nerrors; i++)
        if (strcmp(c->errors[i].field, "source") == 0 ||
            strcmp(c->errors[i].field, "source_ref") == 0)
            return 0;
    return 1;
}

/* Build the writer's entry for a validated record. NULL on ENOMEM. */
static ingest_entry *make_entry(ingest_req *r, uint32_t index, const Tidewatch__V1__Record *rec,
                                const tw_record_check *c, const uint8_t *payload, size_t plen)
{
    size_t dlen = 0;
    uint8_t *doc;
    if (c->nerrors) {
        char *text = tw_record_stored_errors(c);
        doc = (uint8_t *)text;
        dlen = text ? strlen(text) : 0;
    } else {
        doc = tw_record_stored_derived(c, &dlen);
    }
    if (!doc)
        return NULL;
    const char *csource = NULL, *cref = NULL;
    if (!c->nerrors && rec->body_case == TIDEWATCH__V1__RECORD__BODY_CORRECTION &&
        rec->correction->corrects) {
        csource = rec->correction->corrects->source;
        cref = rec->correction->corrects->source_ref;
    }
    size_t extra = strlen(rec->source) + strlen(rec->source_ref) + 2 +
                   (csource ? strlen(csource) + strlen(cref) + 2 : 0) +
                   joined_len(c->serial_keys, c->nserial_keys) +
                   joined_len(c->hull_keys, c->nhull_keys) + dlen + plen;
    ingest_entry *e = ingest_entry_new(extra);
    if (!e) {
        free(doc);
        return NULL;
    }
    e->req = r;
    e->index = index;
    e->rejected = c->nerrors > 0;
    e->kind = (int16_t)c->kind;
    e->has_time = c->has_time;
    e->occurred_at = c->occurred_at_s;
    char *p = e->buf;
    p = copy_into(p, rec->source, &e->source);
    p = copy_into(p, rec->source_ref, &e->source_ref);
    p = copy_into(p, csource, &e->csource);
    p = copy_into(p, cref, &e->cref);
    e->skeys = p;
    p = join_into(p, c->serial_keys, c->nserial_keys);
    e->hkeys = p;
    p = join_into(p, c->hull_keys, c->nhull_keys);
    if (dlen)
        memcpy(p, doc, dlen);
    e->doc = (const uint8_t *)p;
    e->doc_len = dlen;
    p += dlen;
    if (plen)
        memcpy(p, payload, plen);
    e->payload = (const uint8_t *)p;
    e->payload_len = plen;
    free(doc);
    return e;
}

static void fill_result(tw_arena *a, Tidewatch__V1__RecordResult *res, uint32_t index,
                        const Tidewatch__V1__Record *rec, const tw_record_check *c)
{
    tidewatch__v1__record_result__init(res);
    res->index = index;
    res->source = rec->source ? rec->source : (char *)"";
    res->source_ref = rec->source_ref ? rec->source_ref : (char *)"";
    res->errors = issues_pb(a, c->errors, c->nerrors);
    res->n_errors = res->errors ? c->nerrors : 0;
    res->warnings = issues_pb(a, c->warnings, c->nwarnings);
    res->n_warnings = res->warnings ? c->nwarnings : 0;
    if (c->nerrors)
        res->outcome = OUTCOME(REJECTED);
}

/* Validate one record and queue it. Returns 0, or -1 when the request must
 * fail (out of memory; already answered). */
static int take_record(ingest_req *r, uint32_t index, const Tidewatch__V1__Record *rec,
                       const uint8_t *payload, size_t plen, tw_arena *a,
                       Tidewatch__V1__RecordResult *res)
{
    ingest_service *svc = r->svc;
    tw_record_ctx ctx = {.now_s = (int64_t)time(NULL), .places = svc->places};
    tw_record_check c;
    if (tw_record_validate(&ctx, rec, a, &c) != 0) {
        tw_record_check_free(&c);
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory validating a record");
        return -1;
    }
    fill_result(a, res, index, rec, &c);
    if (c.nerrors && !reference_ok(&c)) {
        /* Without a usable (source, source_ref) it cannot be quarantined:
         * the answer alone tells the provider. */
        tw_record_check_free(&c);
        if (r->stream)
            r->rejected++;
        return 1;
    }
    ingest_entry *e = make_entry(r, index, rec, &c, payload, plen);
    tw_record_check_free(&c);
    if (!e) {
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    r->outstanding++;
    ingest_writer_add(&svc->writer, e);
    return 0;
}

/* ---- Submit --------------------------------------------------------------- */

static void submit_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    ingest_service *svc = arg;
    ingest_req *r = calloc(1, sizeof *r);
    if (!r) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    r->svc = svc;
    r->call = call;
    tw_arena_init(&r->arena, 64 * 1024);
    tw_arena_init(&r->scratch, 0);
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&r->arena);
    Tidewatch__V1__SubmitRequest *req = tidewatch__v1__submit_request__unpack(&alloc, len, msg);
    if (!req) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed SubmitRequest");
        req_free(r);
        return;
    }
    if (req->n_records > SUBMIT_MAX_RECORDS) {
        char m[160];
        snprintf(m, sizeof m,
                 "records: at most %d per Submit (got %zu); use SubmitStream for more",
                 SUBMIT_MAX_RECORDS, req->n_records);
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, m);
        req_free(r);
        return;
    }
    r->n = req->n_records;
    r->results = tw_arena_alloc(&r->arena, (r->n ? r->n : 1) * sizeof *r->results);
    if (!r->results) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        req_free(r);
        return;
    }
    tw_grpc_call_set_data(call, r);
    /* The records' bytes exactly as submitted: field 1 of the request.
     * Located before anything is queued, so a malformed request changes
     * nothing (the walk is stricter than protobuf-c about field numbers). */
    tw_pb_field *slices = tw_arena_alloc(&r->arena, (r->n ? r->n : 1) * sizeof *slices);
    size_t pos = 0, found = 0;
    tw_pb_field f;
    int rv = 0;
    while (slices && (rv = tw_pb_next(msg, len, &pos, &f)) == 1)
        if (f.number == 1 && f.wire_type == 2 && found < r->n)
            slices[found++] = f;
    if (!slices || rv != 0 || found != r->n) {
        tw_grpc_call_set_data(call, NULL);
        tw_grpc_call_finish(call, slices ? TW_GRPC_INVALID_ARGUMENT : TW_GRPC_RESOURCE_EXHAUSTED,
                            slices ? "malformed SubmitRequest" : "out of memory");
        req_free(r);
        return;
    }
    r->adding = 1;
    for (size_t i = 0; i < r->n && !r->failed; i++)
        if (take_record(r, (uint32_t)i, req->records[i], slices[i].data, slices[i].len,
                        &r->arena, &r->results[i]) < 0)
            break;
    r->adding = 0;
    req_maybe_complete(r);
}

static void req_on_cancel(tw_grpc_call *call, void *arg)
{
    (void)arg;
    ingest_req *r = tw_grpc_call_data(call);
    if (!r)
        return;
    r->call = NULL;
    req_maybe_free(r);
}

/* ---- SubmitStream ----------------------------------------------------------- */

static void stream_on_start(tw_grpc_call *call, void *arg)
{
    ingest_req *r = calloc(1, sizeof *r);
    if (!r) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    r->svc = arg;
    r->call = call;
    r->stream = 1;
    tw_arena_init(&r->arena, 0);
    tw_arena_init(&r->scratch, 64 * 1024);
    tw_grpc_call_set_data(call, r);
}

/* Keep a rejected record's result for the final answer (bounded). */
static void keep_rejection(ingest_req *r, const Tidewatch__V1__RecordResult *res)
{
    if (r->nrejections >= STREAM_MAX_REJECTIONS)
        return;
    tw_arena *a = &r->arena;
    if (r->nrejections == 0) {
        r->rejections = tw_arena_alloc(a, STREAM_MAX_REJECTIONS * sizeof *r->rejections);
        if (!r->rejections)
            return;
    }
    Tidewatch__V1__RecordResult *k = tw_arena_alloc(a, sizeof *k);
    if (!k)
        return;
    tidewatch__v1__record_result__init(k);
    k->index = res->index;
    k->outcome = OUTCOME(REJECTED);
    k->source = tw_arena_strdup(a, res->source);
    k->source_ref = tw_arena_strdup(a, res->source_ref);
    k->n_errors = res->n_errors;
    k->errors = res->n_errors ? tw_arena_alloc(a, res->n_errors * sizeof *k->errors) : NULL;
    if (!k->source || !k->source_ref || (res->n_errors && !k->errors))
        return;
    for (size_t i = 0; i < res->n_errors; i++) {
        Tidewatch__V1__FieldIssue *fi = tw_arena_alloc(a, sizeof *fi);
        if (!fi)
            return;
        tidewatch__v1__field_issue__init(fi);
        fi->field = tw_arena_strdup(a, res->errors[i]->field);
        fi->code = tw_arena_strdup(a, res->errors[i]->code);
        fi->reason = tw_arena_strdup(a, res->errors[i]->reason);
        k->errors[i] = fi;
    }
    r->rejections[r->nrejections++] = k;
}

static void stream_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    ingest_req *r = tw_grpc_call_data(call);
    if (!r)
        return;
    uint32_t index = r->received++;
    tw_arena_reset(&r->scratch);
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&r->scratch);
    Tidewatch__V1__Record *rec = tidewatch__v1__record__unpack(&alloc, len, msg);
    if (!rec) {
        char m[96];
        snprintf(m, sizeof m, "record %u: malformed Record", index);
        req_fail(r, TW_GRPC_INVALID_ARGUMENT, m);
        req_maybe_free(r);
        return;
    }
    Tidewatch__V1__RecordResult res;
    r->adding = 1;
    int rv = take_record(r, index, rec, msg, len, &r->scratch, &res);
    r->adding = 0;
    if (rv < 0) {
        req_maybe_free(r);
        return;
    }
    if (res.outcome == OUTCOME(REJECTED))
        keep_rejection(r, &res);
    if (r->call && !r->paused && r->outstanding >= r->svc->stream_window) {
        r->paused = 1;
        tw_grpc_call_pause_input(r->call);
    }
    req_maybe_complete(r);
}

static void stream_on_half_close(tw_grpc_call *call, void *arg)
{
    (void)arg;
    ingest_req *r = tw_grpc_call_data(call);
    if (!r)
        return;
    r->half_closed = 1;
    req_maybe_complete(r);
}

/* ---- the writer's answers ----------------------------------------------------- */

void ingest_entry_done(ingest_entry *e, int status, const char *message)
{
    ingest_req *r = e->req;
    if (status != TW_GRPC_OK) {
        req_fail(r, status, message);
    } else if (r->stream) {
        if (e->outcome == OUTCOME(ACCEPTED))
            r->accepted++;
        else if (e->outcome == OUTCOME(DUPLICATE))
            r->duplicates++;
        else
            r->rejected++;
    } else {
        Tidewatch__V1__RecordResult *res = &r->results[e->index];
        res->outcome = e->outcome;
        res->event_id = e->event_id;
        if (e->correction_target_missing) {
            Tidewatch__V1__FieldIssue *fi = tw_arena_alloc(&r->arena, sizeof *fi);
            Tidewatch__V1__FieldIssue **w =
                tw_arena_alloc(&r->arena, (res->n_warnings + 1) * sizeof *w);
            if (fi && w) {
                tidewatch__v1__field_issue__init(fi);
                fi->field = (char *)"correction.corrects";
                fi->code = (char *)"not_found";
                fi->reason = (char *)"the corrected record is not in the log (yet)";
                if (res->n_warnings)
                    memcpy(w, res->warnings, res->n_warnings * sizeof *w);
                w[res->n_warnings++] = fi;
                res->warnings = w;
            }
        }
    }
    free(e);
    r->outstanding--;
    if (r->paused && r->call && r->outstanding <= r->svc->stream_window / 2) {
        r->paused = 0;
        tw_grpc_call_resume_input(r->call);
    }
    req_maybe_complete(r);
}

int ingest_register(ingest_service *svc)
{
    const tw_grpc_method methods[] = {
        {.path = "/tidewatch.v1.IngestService/Submit", .kind = TW_GRPC_UNARY,
         .on_message = submit_on_message, .on_cancel = req_on_cancel, .arg = svc},
        {.path = "/tidewatch.v1.IngestService/SubmitStream", .kind = TW_GRPC_CLIENT_STREAM,
         .on_start = stream_on_start, .on_message = stream_on_message,
         .on_half_close = stream_on_half_close, .on_cancel = req_on_cancel, .arg = svc},
    };
    return tw_grpc_server_add_methods(svc->daemon->server, methods,
                                      sizeof methods / sizeof methods[0]);
}
