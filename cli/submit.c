/* cli/submit: batches of records to IngestService/Submit (see submit.h). */
#include "submit.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tw_grpc_client.h"

#define SUBMIT_PATH "/tidewatch.v1.IngestService/Submit"
#define HASH_SLOTS 2048 /* > 2 * SUBMIT_MAX_RECORDS */
#define RETRIES 5

struct cli_submitter {
    const char *cmd;
    char *target;
    int64_t timeout_ms;
    size_t batch;
    cli_submit_result_fn fn;
    void *arg;
    struct event_base *base;
    tw_grpc_channel *ch;
    uint8_t *buf; /* the SubmitRequest being built */
    size_t len, cap;
    size_t n;          /* records in it */
    size_t first;      /* position of its first record */
    uint64_t hashes[HASH_SLOTS]; /* (source, source_ref) in this batch; 0 empty */
    size_t done;
    int broken;
};

static uint64_t fnv(const char *a, const char *b)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h ? h : 1;
}

/* 1 when h was in the set already (it is then left as is), else adds it. */
static int seen(cli_submitter *s, uint64_t h)
{
    size_t i = (size_t)(h % HASH_SLOTS);
    while (s->hashes[i]) {
        if (s->hashes[i] == h)
            return 1;
        i = (i + 1) % HASH_SLOTS;
    }
    s->hashes[i] = h;
    return 0;
}

cli_submitter *cli_submitter_new(const char *cmd, const char *target, int64_t timeout_ms,
                                 size_t batch, cli_submit_result_fn fn, void *arg)
{
    cli_submitter *s = calloc(1, sizeof *s);
    char err[256];
    if (!s || !(s->target = strdup(target)) || !(s->base = event_base_new())) {
        fprintf(stderr, "tidewatch %s: out of memory\n", cmd);
        goto fail;
    }
    s->ch = tw_grpc_channel_new(s->base, target, err, sizeof err);
    if (!s->ch) {
        fprintf(stderr, "tidewatch %s: the ingest service at %s is not reachable (%s)\n", cmd,
                target, err);
        goto fail;
    }
    s->cmd = cmd;
    s->timeout_ms = timeout_ms;
    s->batch = batch && batch <= SUBMIT_MAX_RECORDS ? batch : SUBMIT_MAX_RECORDS;
    s->fn = fn;
    s->arg = arg;
    return s;
fail:
    cli_submitter_free(s);
    return NULL;
}

void cli_submitter_free(cli_submitter *s)
{
    if (!s)
        return;
    tw_grpc_channel_free(s->ch);
    if (s->base)
        event_base_free(s->base);
    free(s->buf);
    free(s->target);
    free(s);
}

size_t cli_submitter_done(const cli_submitter *s)
{
    return s->done;
}

static int send_batch(cli_submitter *s)
{
    if (s->n == 0)
        return CLI_OK;
    tw_grpc_call_opts opts = {.timeout_ms = s->timeout_ms};
    tw_grpc_result r = {0};
    int status = TW_GRPC_UNAVAILABLE;
    for (int attempt = 0; attempt <= RETRIES; attempt++) {
        tw_grpc_result_free(&r);
        status = tw_grpc_unary(s->ch, SUBMIT_PATH, s->buf, s->len, &opts, &r);
        if (status != TW_GRPC_UNAVAILABLE || attempt == RETRIES)
            break;
        /* Busy or restarting: wait and send the batch again (what was
         * stored comes back as duplicates). */
        struct timespec ts = {.tv_sec = 1, .tv_nsec = 0};
        nanosleep(&ts, NULL);
    }
    if (status != TW_GRPC_OK) {
        fprintf(stderr, "tidewatch %s: Submit at %s failed: %s%s%s\n", s->cmd, s->target,
                tw_grpc_status_name(status), r.message && r.message[0] ? ": " : "",
                r.message ? r.message : "");
        tw_grpc_result_free(&r);
        s->broken = 1;
        return CLI_SERVER;
    }
    Tidewatch__V1__SubmitResponse *resp = tidewatch__v1__submit_response__unpack(NULL, r.len, r.data);
    tw_grpc_result_free(&r);
    if (!resp || resp->n_results != s->n) {
        fprintf(stderr, "tidewatch %s: the answer of %s could not be decoded or does not answer "
                        "each record (%zu records sent)\n",
                s->cmd, s->target, s->n);
        if (resp)
            tidewatch__v1__submit_response__free_unpacked(resp, NULL);
        s->broken = 1;
        return CLI_SERVER;
    }
    for (size_t i = 0; i < resp->n_results; i++) {
        const Tidewatch__V1__RecordResult *res = resp->results[i];
        size_t idx = res->index < s->n ? res->index : i;
        if (s->fn)
            s->fn(s->arg, s->first + idx, res);
    }
    tidewatch__v1__submit_response__free_unpacked(resp, NULL);
    s->done += s->n;
    s->first += s->n;
    s->n = 0;
    s->len = 0;
    memset(s->hashes, 0, sizeof s->hashes);
    return CLI_OK;
}

int cli_submitter_flush(cli_submitter *s)
{
    return s->broken ? CLI_SERVER : send_batch(s);
}

static size_t varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

int cli_submitter_add(cli_submitter *s, const uint8_t *data, size_t len, const char *source,
                      const char *source_ref)
{
    if (s->broken)
        return CLI_SERVER;
    uint64_t h = fnv(source ? source : "", source_ref ? source_ref : "");
    if (s->n && (s->n >= s->batch || s->len + len + 11 > SUBMIT_MAX_BYTES || seen(s, h))) {
        int rc = send_batch(s);
        if (rc != CLI_OK)
            return rc;
    }
    if (s->n == 0)
        (void)seen(s, h);
    size_t need = s->len + len + 11;
    if (need > s->cap) {
        size_t nc = s->cap ? s->cap : 64 * 1024;
        while (nc < need)
            nc *= 2;
        uint8_t *nb = realloc(s->buf, nc);
        if (!nb) {
            fprintf(stderr, "tidewatch %s: out of memory\n", s->cmd);
            s->broken = 1;
            return CLI_SERVER;
        }
        s->buf = nb;
        s->cap = nc;
    }
    s->buf[s->len++] = 0x0a; /* SubmitRequest.records, length-delimited */
    s->len += varint(s->buf + s->len, len);
    memcpy(s->buf + s->len, data, len);
    s->len += len;
    s->n++;
    return CLI_OK;
}
