/* IngestService.Submit and SubmitStream: check, decode, validate and
 * normalise each record, hand it to the group-commit writer, and answer each
 * record once its batch committed.
 *
 * Decoding is bounded before it starts. A Submit's envelope is walked on
 * the wire first (tw_pb_next): every field must be a record, and more
 * records than an answer can hold is INVALID_ARGUMENT before anything is
 * decoded or stored. Each record is then taken on its own, Submit or
 * stream alike:
 *
 *   1. larger than TIDEWATCH_INGEST_RECORD_MAX: rejected ("too_large");
 *   2. walked against the schema (tw_pb_check): malformed bytes, a wrong
 *      wire type, a singular message given twice or too deep nesting:
 *      rejected with the path of the message at fault; more decoding
 *      memory than TIDEWATCH_INGEST_DECODE_MEMORY: rejected ("too_complex");
 *   3. unpacked by protobuf-c into a scratch arena capped at twice that
 *      memory and reset for every record, validated (tw_record), and an
 *      unknown field found in 2 added as an error at its path;
 *   4. acceptable records get a digest (SHA-256 of the record re-encoded
 *      canonically by protobuf-c, so the order of fields on the wire does
 *      not matter) and go to the writer; rejected ones go to the writer's
 *      quarantine when their source and source_ref are usable.
 *
 * Records rejected in 1-3, and those without a usable key, cannot wait in
 * quarantine: the answer is the only trace, so they are counted in
 * tidewatch_ingest_records_total{outcome="rejected"} here and every
 * rejection is logged at info (rate-limited) with its reference when it has
 * one.
 *
 * A large Submit is processed in slices of TIDEWATCH_INGEST_SLICE request
 * bytes, one per turn of the event loop (a zero timer), so other calls
 * (health checks, other callers) are served in between.
 *
 * Answers always fit the message limit: each record lists at most
 * TIDEWATCH_INGEST_RESPONSE_ISSUES errors and as many warnings, then one
 * issue of code "truncated"; echoed references are clipped to 128 bytes of
 * valid UTF-8; if the whole answer would still be too large, the issue
 * lists of the last records shrink to a single "truncated" issue (and a
 * stream's kept rejections are dropped from the end), and the answer says
 * so (truncated = true). Submit takes at most as many records as a fully
 * shrunk answer can carry. */
#include <event2/event.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistr.h>

#include "ingest.h"
#include "tidewatch/v1/ingest.pb-c.h"
#include "tw_arena.h"
#include "tw_log.h"
#include "tw_metrics.h"
#include "tw_pbwalk.h"
#include "tw_record.h"

#define SUBMIT_MAX_RECORDS 1000
#define STREAM_MAX_REJECTIONS 1000
/* Upper bound of a result shrunk to its minimum: index, outcome, event id,
 * references clipped to ECHO_MAX, and one "truncated" issue per list. */
#define RESULT_MIN_BYTES 512
#define ECHO_MAX TW_RECORD_MAX_REF
#define ISSUE_FIELD_MAX 256
#define ISSUE_CODE_MAX 64
#define ISSUE_REASON_MAX 256
/* What one record counts against a slice besides its bytes. */
#define SLICE_RECORD_COST 512
/* Log lines about rejections: TIDEWATCH_INGEST_LOG_REJECTIONS a second,
 * in bursts of this many seconds' worth. */
#define LOG_BURST_SECONDS 10.0
#define OUTCOME(x) TIDEWATCH__V1__RECORD_RESULT__OUTCOME__##x
#define CONFLICT_REASON "conflict: same reference, different content; send a correction"

struct ingest_req {
    ingest_service *svc;
    tw_grpc_call *call; /* NULL once the call is over */
    char *peer;         /* for log lines (malloc'd) */
    int stream;
    int adding;      /* inside a handler: completion waits */
    int half_closed; /* stream: the client is done sending */
    int failed;      /* the call already ended with an error */
    int paused;
    int truncated;   /* some issue list was shortened */
    size_t outstanding, outstanding_bytes; /* entries with the writer */
    tw_arena arena;   /* Submit: results; stream: kept rejections */
    tw_arena scratch; /* one record's decoding and validation */
    /* Submit */
    Tidewatch__V1__RecordResult *results;
    size_t n, next;      /* records; the next one to take */
    tw_pb_field *slices; /* each record's bytes */
    uint8_t *copy;       /* the request, when it outlives on_message */
    struct event *cont;  /* runs the next slice */
    int cont_pending;
    /* SubmitStream */
    uint32_t received;
    uint64_t accepted, duplicates, conflicts, rejected;
    Tidewatch__V1__RecordResult **rejections;
    size_t nrejections;
};

ingest_entry *ingest_entry_new(size_t extra)
{
    ingest_entry *e = calloc(1, sizeof *e + extra);
    if (e)
        e->bytes = sizeof *e + extra;
    return e;
}

int ingest_config_check(const ingest_config *cfg, char *err, size_t errlen)
{
    if (cfg->record_max > cfg->batch_bytes) {
        snprintf(err, errlen, "record_max (%lld) must not exceed batch_bytes (%lld)",
                 (long long)cfg->record_max, (long long)cfg->batch_bytes);
        return -1;
    }
    if (cfg->record_max > cfg->stream_window_bytes) {
        snprintf(err, errlen, "record_max (%lld) must not exceed stream_window_bytes (%lld)",
                 (long long)cfg->record_max, (long long)cfg->stream_window_bytes);
        return -1;
    }
    return 0;
}

/* ---- request lifetime ---------------------------------------------------- */

static int req_busy(const ingest_req *r)
{
    return r->adding || r->outstanding > 0 || r->cont_pending;
}

static void req_free(ingest_req *r)
{
    if (r->cont)
        event_free(r->cont);
    free(r->copy);
    free(r->peer);
    tw_arena_free(&r->arena);
    tw_arena_free(&r->scratch);
    free(r);
}

/* Free the request when nothing refers to it any more. */
static void req_maybe_free(ingest_req *r)
{
    if (!r->call && !req_busy(r))
        req_free(r);
}

static void req_stop_slices(ingest_req *r)
{
    if (r->cont_pending) {
        event_del(r->cont);
        r->cont_pending = 0;
    }
}

static void req_fail(ingest_req *r, int status, const char *message)
{
    if (r->call && !r->failed) {
        tw_grpc_call_set_data(r->call, NULL);
        tw_grpc_call_finish(r->call, status, message);
        r->call = NULL;
    }
    r->failed = 1;
    req_stop_slices(r);
}

static ingest_req *req_new(ingest_service *svc, tw_grpc_call *call, int stream)
{
    ingest_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->svc = svc;
    r->call = call;
    r->stream = stream;
    const char *peer = tw_grpc_call_peer(call);
    r->peer = strdup(peer ? peer : "?");
    tw_arena_init(&r->arena, stream ? 0 : 64 * 1024);
    tw_arena_init(&r->scratch, 64 * 1024);
    /* Decoding is refused beyond decode_memory (tw_pb_check's estimate);
     * the cap leaves the same again for validation. */
    tw_arena_set_limit(&r->scratch, 2 * (size_t)svc->cfg->decode_memory);
    if (!r->peer) {
        free(r);
        return NULL;
    }
    return r;
}

/* ---- text for answers and logs --------------------------------------------------- */

/* At most `max` bytes of s[0..len) as valid UTF-8 without control
 * characters (anything else becomes '?'), in the arena. NULL on ENOMEM. */
static char *clean_text(tw_arena *a, const char *s, size_t len, size_t max)
{
    char *out = tw_arena_alloc(a, (len < max ? len : max) + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    const uint8_t *p = (const uint8_t *)s, *end = p + len;
    while (p < end) {
        ucs4_t uc;
        int n = u8_mbtoucr(&uc, p, (size_t)(end - p));
        int ok = n > 0 && uc >= 0x20 && uc != 0x7f && !(uc >= 0x80 && uc < 0xa0);
        size_t take = ok ? (size_t)n : 1;
        if (o + take > max)
            break;
        if (ok)
            memcpy(out + o, p, take);
        else
            out[o] = '?';
        o += ok ? take : 1;
        p += n > 0 ? (size_t)n : 1;
    }
    out[o] = '\0';
    return out;
}

static char *clean(tw_arena *a, const char *s, size_t max)
{
    return clean_text(a, s ? s : "", s ? strlen(s) : 0, max);
}

/* The source (field 1) and source_ref (field 2) of a record's bytes,
 * without decoding it (they may be missing: empty strings). */
static void peek_reference(const uint8_t *p, size_t len, tw_pb_field *src, tw_pb_field *ref)
{
    memset(src, 0, sizeof *src);
    memset(ref, 0, sizeof *ref);
    size_t pos = 0;
    tw_pb_field f;
    for (int i = 0; i < 64 && tw_pb_next(p, len, &pos, &f) == 1; i++) {
        if (f.wire_type != 2)
            continue;
        if (f.number == 1)
            *src = f;
        else if (f.number == 2)
            *ref = f;
    }
}

/* Rate-limited: 1 when a line about a rejection may be logged now. */
static int log_allowed(ingest_service *svc)
{
    ingest_lograte *l = &svc->lograte;
    double rate = (double)svc->cfg->log_rejections, burst = rate * LOG_BURST_SECONDS;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (l->last_ms == 0)
        l->tokens = burst;
    else
        l->tokens += (double)(now - l->last_ms) * rate / 1000.0;
    if (l->tokens > burst)
        l->tokens = burst;
    l->last_ms = now;
    if (l->tokens < 1) {
        l->suppressed++;
        return 0;
    }
    l->tokens -= 1;
    return 1;
}

/* Log a rejected record (its answer `res`, filled): at info, with its
 * reference, its first error and what happens to it. */
static void log_rejection(ingest_req *r, const Tidewatch__V1__RecordResult *res, int keyed)
{
    if (TW_LOG_INFO < tw_log_threshold || !log_allowed(r->svc))
        return;
    ingest_lograte *l = &r->svc->lograte;
    char more[64] = "";
    if (l->suppressed) {
        snprintf(more, sizeof more, " (%llu more rejections not logged)",
                 (unsigned long long)l->suppressed);
        l->suppressed = 0;
    }
    const Tidewatch__V1__FieldIssue *e = res->n_errors ? res->errors[0] : NULL;
    tw_log_ctx ctx = {.peer = r->peer,
                      .call = r->stream ? "/tidewatch.v1.IngestService/SubmitStream"
                                        : "/tidewatch.v1.IngestService/Submit"};
    if (keyed)
        tw_log_write(TW_LOG_INFO, &ctx,
                     "rejected record %u (source \"%s\", source_ref \"%s\"; it waits in "
                     "quarantine): %s %s: %s%s",
                     res->index, res->source, res->source_ref, e ? e->field : "?",
                     e ? e->code : "?", e ? e->reason : "?", more);
    else
        tw_log_write(TW_LOG_INFO, &ctx,
                     "rejected record %u without a usable reference (source \"%s\", source_ref "
                     "\"%s\"; it cannot wait in quarantine): %s %s: %s%s",
                     res->index, res->source, res->source_ref, e ? e->field : "?",
                     e ? e->code : "?", e ? e->reason : "?", more);
}

static void count_rejected(ingest_service *svc)
{
    tw_metrics *m = svc->daemon->metrics;
    if (m && tw_metrics_counter_add(m, "tidewatch_ingest_records_total",
                                    "Records answered, by outcome.", "outcome", "rejected",
                                    1) != 0)
        TW_DEBUG(NULL, "metrics refused an update");
}

/* ---- answers ----------------------------------------------------------------- */

static Tidewatch__V1__FieldIssue *issue_new(tw_arena *a, const char *field, const char *code,
                                            const char *reason)
{
    Tidewatch__V1__FieldIssue *fi = tw_arena_alloc(a, sizeof *fi);
    if (!fi)
        return NULL;
    tidewatch__v1__field_issue__init(fi);
    fi->field = clean(a, field, ISSUE_FIELD_MAX);
    fi->code = clean(a, code, ISSUE_CODE_MAX);
    fi->reason = clean(a, reason, ISSUE_REASON_MAX);
    return fi->field && fi->code && fi->reason ? fi : NULL;
}

/* At most `max` of the n issues, then one "truncated" issue counting the
 * rest. *out_n gets the length; 1 is added to *truncated when shortened.
 * NULL (with *out_n = 0) when n is 0 or memory ran out. */
static Tidewatch__V1__FieldIssue **issues_pb(tw_arena *a, const tw_issue *src, size_t n, size_t max,
                                             const char *what, size_t *out_n, int *truncated)
{
    *out_n = 0;
    if (n == 0)
        return NULL;
    size_t shown = n > max ? max : n;
    Tidewatch__V1__FieldIssue **out = tw_arena_alloc(a, (shown + 1) * sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < shown; i++)
        if (!(out[i] = issue_new(a, src[i].field, src[i].code, src[i].reason)))
            return NULL;
    if (shown < n) {
        char reason[96];
        snprintf(reason, sizeof reason, "and %zu more %s not shown", n - shown, what);
        if (!(out[shown] = issue_new(a, "(record)", "truncated", reason)))
            return NULL;
        shown++;
        *truncated = 1;
    }
    *out_n = shown;
    return out;
}

/* Append one issue to a result's errors (error = 1) or warnings. Returns 0
 * or -1 (ENOMEM: the issue is missing). */
static int result_add(tw_arena *a, Tidewatch__V1__RecordResult *res, int error, const char *field,
                      const char *code, const char *reason)
{
    Tidewatch__V1__FieldIssue *fi = issue_new(a, field, code, reason);
    size_t *n = error ? &res->n_errors : &res->n_warnings;
    Tidewatch__V1__FieldIssue ***list = error ? &res->errors : &res->warnings;
    Tidewatch__V1__FieldIssue **grown = tw_arena_alloc(a, (*n + 1) * sizeof *grown);
    if (!fi || !grown)
        return -1;
    if (*n)
        memcpy(grown, *list, *n * sizeof *grown);
    grown[(*n)++] = fi;
    *list = grown;
    return 0;
}

/* Start a result: index and echoed references (clipped, valid UTF-8). */
static void result_begin(tw_arena *a, Tidewatch__V1__RecordResult *res, uint32_t index,
                         const char *src, size_t slen, const char *ref, size_t rlen)
{
    tidewatch__v1__record_result__init(res);
    res->index = index;
    res->source = clean_text(a, src ? src : "", src ? slen : 0, ECHO_MAX);
    res->source_ref = clean_text(a, ref ? ref : "", ref ? rlen : 0, ECHO_MAX);
    if (!res->source)
        res->source = (char *)"";
    if (!res->source_ref)
        res->source_ref = (char *)"";
}

/* Bytes the result takes inside its parent message. */
static size_t embedded_size(const Tidewatch__V1__RecordResult *res)
{
    size_t n = tidewatch__v1__record_result__get_packed_size(res);
    size_t prefix = 1;
    for (size_t v = n; v >= 0x80; v >>= 7)
        prefix++;
    return 1 + prefix + n;
}

/* Replace the result's issue lists by one "truncated" issue each. */
static void result_shrink(Tidewatch__V1__RecordResult *res)
{
    static Tidewatch__V1__FieldIssue marker = {
        PROTOBUF_C_MESSAGE_INIT(&tidewatch__v1__field_issue__descriptor), (char *)"(record)",
        (char *)"truncated", (char *)"not shown: the answer would exceed the message size limit"};
    static Tidewatch__V1__FieldIssue *one[1] = {&marker};
    if (res->n_errors) {
        res->n_errors = 1;
        res->errors = one;
    }
    if (res->n_warnings) {
        res->n_warnings = 1;
        res->warnings = one;
    }
}

/* Shrink results from the end until `*size` fits `limit`. */
static void fit_results(Tidewatch__V1__RecordResult **res, size_t n, size_t *size, size_t limit,
                        int *truncated)
{
    for (size_t i = n; i-- > 0 && *size > limit;) {
        size_t before = embedded_size(res[i]);
        result_shrink(res[i]);
        *size -= before - embedded_size(res[i]);
        *truncated = 1;
    }
}

static void send_reply(ingest_req *r, const ProtobufCMessage *resp)
{
    size_t len = protobuf_c_message_get_packed_size(resp);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    protobuf_c_message_pack(resp, buf);
    tw_grpc_call_set_data(r->call, NULL);
    tw_grpc_call_reply(r->call, buf, len);
    r->call = NULL;
    free(buf);
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
    size_t limit = (size_t)r->svc->cfg->common.max_message;
    size_t size = tidewatch__v1__submit_response__get_packed_size(&resp) + 2;
    fit_results(ptrs, r->n, &size, limit, &r->truncated);
    resp.truncated = r->truncated;
    send_reply(r, &resp.base);
}

static void reply_stream(ingest_req *r)
{
    Tidewatch__V1__SubmitStreamResponse resp = TIDEWATCH__V1__SUBMIT_STREAM_RESPONSE__INIT;
    resp.accepted = r->accepted;
    resp.duplicates = r->duplicates;
    resp.conflicts = r->conflicts;
    resp.rejected = r->rejected;
    resp.n_rejections = r->nrejections;
    resp.rejections = r->rejections;
    size_t limit = (size_t)r->svc->cfg->common.max_message;
    size_t size = tidewatch__v1__submit_stream_response__get_packed_size(&resp) + 2;
    fit_results(resp.rejections, resp.n_rejections, &size, limit, &r->truncated);
    while (size > limit && resp.n_rejections > 0) {
        size -= embedded_size(resp.rejections[--resp.n_rejections]);
        r->truncated = 1;
    }
    resp.truncated = r->truncated;
    send_reply(r, &resp.base);
}

/* Answer when every record is settled (and, for a stream, the client is
 * done); then free what is no longer needed. */
static void req_maybe_complete(ingest_req *r)
{
    if (req_busy(r))
        return;
    if (r->call && !r->failed) {
        if (r->stream) {
            if (r->half_closed)
                reply_stream(r);
        } else if (r->next >= r->n) {
            reply_submit(r);
        }
    }
    req_maybe_free(r);
}

/* Keep a rejected or conflicting record's result for the stream's answer
 * (the first STREAM_MAX_REJECTIONS). */
static void keep_rejection(ingest_req *r, const Tidewatch__V1__RecordResult *res)
{
    if (r->nrejections >= STREAM_MAX_REJECTIONS)
        return;
    tw_arena *a = &r->arena;
    if (!r->rejections) {
        r->rejections = tw_arena_alloc(a, STREAM_MAX_REJECTIONS * sizeof *r->rejections);
        if (!r->rejections)
            return;
    }
    Tidewatch__V1__RecordResult *k = tw_arena_alloc(a, sizeof *k);
    if (!k)
        return;
    tidewatch__v1__record_result__init(k);
    k->index = res->index;
    k->outcome = res->outcome;
    k->event_id = res->event_id;
    k->source = tw_arena_strdup(a, res->source);
    k->source_ref = tw_arena_strdup(a, res->source_ref);
    k->errors = res->n_errors ? tw_arena_alloc(a, res->n_errors * sizeof *k->errors) : NULL;
    if (!k->source || !k->source_ref || (res->n_errors && !k->errors))
        return;
    for (size_t i = 0; i < res->n_errors; i++) {
        k->errors[i] = issue_new(a, res->errors[i]->field, res->errors[i]->code,
                                 res->errors[i]->reason);
        if (!k->errors[i])
            return;
    }
    k->n_errors = res->n_errors;
    r->rejections[r->nrejections++] = k;
}

/* ---- taking one record ------------------------------------------------------ */

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

/* SHA-256 of the record re-encoded by protobuf-c (fields in number order,
 * defaults left out): the same content gives the same digest however the
 * client encoded it. Returns 0, or -1 on ENOMEM (or an OpenSSL failure). */
static int record_digest(ingest_service *svc, tw_arena *a, const Tidewatch__V1__Record *rec,
                         uint8_t *out)
{
    size_t len = tidewatch__v1__record__get_packed_size(rec);
    uint8_t *buf = tw_arena_alloc(a, len);
    if (!buf)
        return -1;
    tidewatch__v1__record__pack(rec, buf);
    unsigned int mdlen = 0;
    return EVP_DigestInit_ex(svc->md_ctx, svc->sha256, NULL) == 1 &&
                   EVP_DigestUpdate(svc->md_ctx, buf, len) == 1 &&
                   EVP_DigestFinal_ex(svc->md_ctx, out, &mdlen) == 1 &&
                   mdlen == INGEST_DIGEST_LEN
               ? 0
               : -1;
}

/* Build the writer's entry for a validated record. NULL on ENOMEM. */
static ingest_entry *make_entry(ingest_req *r, uint32_t index, const Tidewatch__V1__Record *rec,
                                const tw_record_check *c, const uint8_t *payload, size_t plen,
                                const uint8_t *digest)
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
    if (digest)
        memcpy(e->digest, digest, INGEST_DIGEST_LEN);
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

/* Answer a record now, REJECTED with one error, without storing anything:
 * it cannot be decoded or has no usable key. Counted and logged. */
static void reject_now(ingest_req *r, tw_arena *a, Tidewatch__V1__RecordResult *res,
                       const char *field, const char *code, const char *reason)
{
    res->outcome = OUTCOME(REJECTED);
    if (result_add(a, res, 1, field, code, reason) != 0)
        TW_DEBUG(NULL, "out of memory describing a rejection");
    count_rejected(r->svc);
    log_rejection(r, res, 0);
    if (r->stream) {
        r->rejected++;
        keep_rejection(r, res);
    }
}

/* Reject a record from its bytes alone (references peeked from the wire). */
static int reject_bytes(ingest_req *r, uint32_t index, const uint8_t *data, size_t len,
                        tw_arena *a, Tidewatch__V1__RecordResult *res, const char *field,
                        const char *code, const char *reason)
{
    tw_pb_field src, ref;
    peek_reference(data, len, &src, &ref);
    result_begin(a, res, index, (const char *)src.data, src.len, (const char *)ref.data, ref.len);
    reject_now(r, a, res, field && field[0] ? field : "(record)", code, reason);
    return 1;
}

/* Check, decode and validate one record (its bytes as submitted), fill its
 * result (in `a`) and queue it. The scratch arena must be reset by the
 * caller. Returns 0 when queued (answered later), 1 when answered now, -1
 * when the call failed (already answered). */
static int take_record(ingest_req *r, uint32_t index, const uint8_t *data, size_t len,
                       tw_arena *a, Tidewatch__V1__RecordResult *res)
{
    ingest_service *svc = r->svc;
    const ingest_config *cfg = svc->cfg;
    char why[192];
    if (len > (size_t)cfg->record_max) {
        snprintf(why, sizeof why, "the record is %zu bytes; at most %lld are accepted", len,
                 (long long)cfg->record_max);
        return reject_bytes(r, index, data, len, a, res, NULL, "too_large", why);
    }
    tw_pb_report rep;
    int wire = tw_pb_check(&tidewatch__v1__record__descriptor, data, len, &rep);
    if (wire < 0) {
        snprintf(why, sizeof why, "%s (at byte %zu)", rep.reason, rep.offset);
        return reject_bytes(r, index, data, len, a, res, rep.path,
                            tw_pb_verdict_name(rep.verdict), why);
    }
    if (rep.unpacked > (size_t)cfg->decode_memory) {
        snprintf(why, sizeof why,
                 "decoding it would take up to %zu bytes of memory; at most %lld are allowed",
                 rep.unpacked, (long long)cfg->decode_memory);
        return reject_bytes(r, index, data, len, a, res, NULL, "too_complex", why);
    }
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&r->scratch);
    Tidewatch__V1__Record *rec = tidewatch__v1__record__unpack(&alloc, len, data);
    if (!rec)
        return reject_bytes(r, index, data, len, a, res, NULL,
                            tw_arena_limit_hit(&r->scratch) ? "too_complex" : "malformed",
                            tw_arena_limit_hit(&r->scratch)
                                ? "decoding it takes more memory than is allowed"
                                : "protobuf-c could not decode it");
    tw_record_ctx ctx = {.now_s = (int64_t)time(NULL), .places = svc->places};
    tw_record_check c;
    if (tw_record_validate(&ctx, rec, &r->scratch, &c) != 0 ||
        (wire == 1 && tw_record_add_error(&c, &r->scratch, rep.path[0] ? rep.path : "(record)",
                                          "unknown_field", rep.reason) != 0)) {
        tw_record_check_free(&c);
        if (tw_arena_limit_hit(&r->scratch))
            return reject_bytes(r, index, data, len, a, res, NULL, "too_complex",
                                "validating it takes more memory than is allowed");
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory validating a record");
        return -1;
    }
    /* A stream answers only its rejected records (and conflicts, which the
     * writer's answer describes): the hot path builds no result for the
     * others. */
    if (!r->stream || c.nerrors) {
        result_begin(a, res, index, rec->source, rec->source ? strlen(rec->source) : 0,
                     rec->source_ref, rec->source_ref ? strlen(rec->source_ref) : 0);
        size_t max = (size_t)cfg->response_issues;
        res->errors =
            issues_pb(a, c.errors, c.nerrors, max, "errors", &res->n_errors, &r->truncated);
        if (!r->stream)
            res->warnings = issues_pb(a, c.warnings, c.nwarnings, max, "warnings",
                                      &res->n_warnings, &r->truncated);
    } else {
        tidewatch__v1__record_result__init(res);
        res->index = index;
    }
    if (c.nerrors) {
        res->outcome = OUTCOME(REJECTED);
        if (!reference_ok(&c)) {
            /* Without a usable (source, source_ref) it cannot be
             * quarantined: the answer alone tells the provider. */
            tw_record_check_free(&c);
            count_rejected(svc);
            log_rejection(r, res, 0);
            if (r->stream) {
                r->rejected++;
                keep_rejection(r, res);
            }
            return 1;
        }
        log_rejection(r, res, 1);
        if (r->stream)
            keep_rejection(r, res);
    }
    uint8_t digest[INGEST_DIGEST_LEN];
    int have_digest = !c.nerrors && record_digest(svc, &r->scratch, rec, digest) == 0;
    if (!c.nerrors && !have_digest && tw_arena_limit_hit(&r->scratch)) {
        tw_record_check_free(&c);
        res->n_errors = res->n_warnings = 0;
        reject_now(r, a, res, "(record)", "too_complex",
                   "encoding it again takes more memory than is allowed");
        return 1;
    }
    ingest_entry *e = c.nerrors || have_digest
                          ? make_entry(r, index, rec, &c, data, len, have_digest ? digest : NULL)
                          : NULL;
    tw_record_check_free(&c);
    if (!e) {
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return -1;
    }
    r->outstanding++;
    r->outstanding_bytes += e->bytes;
    ingest_writer_add(&svc->writer, e);
    return 0;
}

/* ---- Submit --------------------------------------------------------------- */

static void submit_continue(evutil_socket_t fd, short what, void *arg);

/* Take records until this turn's slice is used up; then either schedule
 * the next slice or complete. */
static void submit_run(ingest_req *r)
{
    size_t budget = (size_t)r->svc->cfg->slice_bytes, used = 0;
    r->adding = 1;
    while (r->next < r->n && r->call && !r->failed && used < budget) {
        size_t i = r->next++;
        tw_arena_reset(&r->scratch);
        used += r->slices[i].len + SLICE_RECORD_COST;
        if (take_record(r, (uint32_t)i, r->slices[i].data, r->slices[i].len, &r->arena,
                        &r->results[i]) < 0)
            break;
    }
    tw_arena_reset(&r->scratch);
    r->adding = 0;
    if (r->next < r->n && r->call && !r->failed) {
        if (!r->cont)
            r->cont = evtimer_new(r->svc->daemon->base, submit_continue, r);
        if (r->cont) {
            struct timeval now = {0, 0};
            evtimer_add(r->cont, &now);
            r->cont_pending = 1;
            return;
        }
        req_fail(r, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
    }
    req_maybe_complete(r);
}

static void submit_continue(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ingest_req *r = arg;
    r->cont_pending = 0;
    if (!r->call || r->failed) {
        req_maybe_free(r);
        return;
    }
    submit_run(r);
}

static void submit_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    ingest_service *svc = arg;
    /* The envelope first, on the wire: only records, and no more than an
     * answer can carry. Nothing is decoded or stored before this passed. */
    size_t pos = 0, n = 0;
    tw_pb_field f;
    int rv;
    while ((rv = tw_pb_next(msg, len, &pos, &f)) == 1) {
        if (f.number != 1 || f.wire_type != 2) {
            char m[128];
            snprintf(m, sizeof m, "SubmitRequest: field %u is not a record (unknown field or "
                                  "wrong wire type)", f.number);
            tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, m);
            return;
        }
        if (++n > svc->submit_max) {
            char m[160];
            snprintf(m, sizeof m,
                     "records: at most %zu per Submit (got more); use SubmitStream for more",
                     svc->submit_max);
            tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, m);
            return;
        }
    }
    if (rv < 0) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed SubmitRequest");
        return;
    }
    ingest_req *r = req_new(svc, call, 0);
    if (!r) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    r->n = n;
    r->results = tw_arena_calloc(&r->arena, n ? n : 1, sizeof *r->results);
    r->slices = tw_arena_alloc(&r->arena, (n ? n : 1) * sizeof *r->slices);
    /* A request processed over several turns must outlive this call: copy
     * it whenever submit_run may not take every record in this turn, i.e.
     * counting each record's SLICE_RECORD_COST as submit_run does (a
     * request of many small records is under slice_bytes but not one
     * turn's worth; its later slices read msg after the server had reused
     * it: records rejected as malformed, or stored altered). */
    const uint8_t *bytes = msg;
    if (r->results && r->slices &&
        len + n * (size_t)SLICE_RECORD_COST >= (size_t)svc->cfg->slice_bytes) {
        r->copy = malloc(len);
        if (r->copy)
            memcpy(r->copy, msg, len);
        bytes = r->copy;
    }
    if (!r->results || !r->slices || !bytes) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        req_free(r);
        return;
    }
    pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (tw_pb_next(bytes, len, &pos, &r->slices[i]) != 1) { /* walked above: cannot be */
            tw_grpc_call_finish(call, TW_GRPC_INTERNAL, "SubmitRequest changed under us");
            req_free(r);
            return;
        }
    }
    tw_grpc_call_set_data(call, r);
    submit_run(r);
}

static void req_on_cancel(tw_grpc_call *call, void *arg)
{
    (void)arg;
    ingest_req *r = tw_grpc_call_data(call);
    if (!r)
        return;
    r->call = NULL;
    req_stop_slices(r);
    req_maybe_free(r);
}

/* ---- SubmitStream ----------------------------------------------------------- */

static void stream_on_start(tw_grpc_call *call, void *arg)
{
    ingest_req *r = req_new(arg, call, 1);
    if (!r) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    tw_grpc_call_set_data(call, r);
}

static void stream_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)arg;
    ingest_req *r = tw_grpc_call_data(call);
    if (!r)
        return;
    const ingest_config *cfg = r->svc->cfg;
    uint32_t index = r->received++;
    tw_arena_reset(&r->scratch);
    Tidewatch__V1__RecordResult res;
    r->adding = 1;
    int rv = take_record(r, index, msg, len, &r->scratch, &res);
    r->adding = 0;
    tw_arena_reset(&r->scratch);
    if (rv < 0) {
        req_maybe_free(r);
        return;
    }
    if (r->call && !r->paused &&
        (r->outstanding >= (size_t)cfg->stream_window ||
         r->outstanding_bytes >= (size_t)cfg->stream_window_bytes)) {
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

/* What the writer learnt about a record, as issues on its result. */
static void add_writer_issues(tw_arena *a, Tidewatch__V1__RecordResult *res,
                              const ingest_entry *e)
{
    int rv = 0;
    if (e->outcome == OUTCOME(CONFLICT))
        rv |= result_add(a, res, 1, "(record)", "conflict", CONFLICT_REASON);
    if (e->refused) {
        char reason[2 * ISSUE_REASON_MAX];
        snprintf(reason, sizeof reason, "the database refused this record: %s", e->refused);
        rv |= result_add(a, res, 1, "(record)", "storage_refused", reason);
    }
    if (e->correction_target_missing) {
        char reason[2 * ISSUE_REASON_MAX];
        snprintf(reason, sizeof reason,
                 "the corrected record (%.100s, %.100s) is not in the log yet: the correction "
                 "applies when it arrives", e->csource, e->cref);
        rv |= result_add(a, res, 0, "correction.corrects", "not_found", reason);
    }
    if (rv != 0)
        TW_DEBUG(NULL, "out of memory describing an outcome");
}

void ingest_entry_done(ingest_entry *e, int status, const char *message)
{
    ingest_req *r = e->req;
    if (status != TW_GRPC_OK) {
        req_fail(r, status, message);
    } else if (r->stream) {
        switch (e->outcome) {
        case OUTCOME(ACCEPTED): r->accepted++; break;
        case OUTCOME(DUPLICATE): r->duplicates++; break;
        case OUTCOME(CONFLICT): r->conflicts++; break;
        default: r->rejected++; break;
        }
        /* Rejected in validation: kept when it was taken. */
        if (e->outcome == OUTCOME(CONFLICT) || (e->refused && !e->rejected)) {
            Tidewatch__V1__RecordResult res;
            tw_arena tmp;
            tw_arena_init(&tmp, 2048);
            result_begin(&tmp, &res, e->index, e->source, strlen(e->source), e->source_ref,
                         strlen(e->source_ref));
            res.outcome = e->outcome;
            res.event_id = e->event_id;
            add_writer_issues(&tmp, &res, e);
            keep_rejection(r, &res);
            tw_arena_free(&tmp);
        }
    } else {
        Tidewatch__V1__RecordResult *res = &r->results[e->index];
        res->outcome = e->outcome;
        res->event_id = e->event_id;
        add_writer_issues(&r->arena, res, e);
    }
    r->outstanding--;
    r->outstanding_bytes -= e->bytes;
    free(e->refused);
    free(e);
    const ingest_config *cfg = r->svc->cfg;
    if (r->paused && r->call && r->outstanding <= (size_t)cfg->stream_window / 2 &&
        r->outstanding_bytes <= (size_t)cfg->stream_window_bytes / 2) {
        r->paused = 0;
        tw_grpc_call_resume_input(r->call);
    }
    req_maybe_complete(r);
}

void ingest_service_cleanup(ingest_service *svc)
{
    EVP_MD_CTX_free(svc->md_ctx);
    EVP_MD_free(svc->sha256);
    svc->md_ctx = NULL;
    svc->sha256 = NULL;
}

int ingest_register(ingest_service *svc)
{
    /* One SHA-256 implementation and context, fetched once, for every
     * record's digest. */
    svc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    svc->md_ctx = EVP_MD_CTX_new();
    if (!svc->sha256 || !svc->md_ctx)
        return -1;
    /* As many records as a fully shrunk answer can carry. */
    size_t max = (size_t)svc->cfg->common.max_message;
    svc->submit_max = max > 64 ? (max - 64) / RESULT_MIN_BYTES : 0;
    if (svc->submit_max > SUBMIT_MAX_RECORDS)
        svc->submit_max = SUBMIT_MAX_RECORDS;
    if (svc->submit_max == 0)
        svc->submit_max = 1;
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
