/* tidewatch-query-load: concurrent investigator calls against
 * tidewatch-query, for tests/bench/provenance.sh.
 *
 *   tidewatch-query-load --keys FILE [--method chain|search] [-c CALLS]
 *                        [-d SECONDS] [--warmup SECONDS] [--target HOST:PORT]
 *                        [--channels K] [--seed S]
 *
 * FILE holds one serial key per line (e.g. drawn from prov_item_keys). C
 * calls are kept in flight over K connections for the duration: each
 * GetChain asks for a key drawn at random (serial = the key); each
 * SearchItems asks for a key with two of its characters unreadable ('?'),
 * the way an investigator types a half-ground serial. Calls of the warm-up
 * are not counted. The final line (stdout) gives calls, errors, calls/s and
 * latency p50 / p90 / p99 / max in milliseconds; errors are listed by
 * status. Exit status 1 when any call failed other than NOT_FOUND. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tidewatch/v1/provenance.pb-c.h"
#include "tw_grpc_client.h"

#define MAX_KEY 64

typedef struct load {
    struct event_base *base;
    tw_grpc_channel **ch;
    int nch, next_ch;
    char (*keys)[MAX_KEY + 1];
    size_t nkeys;
    int search;
    uint64_t rng;
    double start, warm_until, stop_at;
    int in_flight;
    /* counted calls */
    double *lat_ms;
    size_t nlat, caplat;
    uint64_t calls, not_found, errors[17];
} load;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(load *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 7;
    l->rng ^= l->rng << 17;
    return l->rng;
}

typedef struct call_ctx {
    load *l;
    double t0;
} call_ctx;

static int start_call(load *l);

static void on_close(tw_grpc_ccall *call, int status, const char *message, const tw_grpc_md *md,
                     size_t n, void *arg)
{
    (void)call, (void)md, (void)n;
    call_ctx *c = arg;
    load *l = c->l;
    double t1 = now_s();
    l->in_flight--;
    if (c->t0 >= l->warm_until && t1 <= l->stop_at) {
        if (status == 0 || status == 5) {
            if (l->nlat == l->caplat) {
                size_t cap = l->caplat ? l->caplat * 2 : 65536;
                double *p = realloc(l->lat_ms, cap * sizeof *p);
                if (p) {
                    l->lat_ms = p;
                    l->caplat = cap;
                }
            }
            if (l->nlat < l->caplat)
                l->lat_ms[l->nlat++] = (t1 - c->t0) * 1000.0;
            l->calls++;
            l->not_found += status == 5;
        } else {
            l->errors[status >= 0 && status <= 16 ? status : 2]++;
            if (l->errors[status >= 0 && status <= 16 ? status : 2] == 1)
                fprintf(stderr, "tidewatch-query-load: status %d: %s\n", status, message);
        }
    }
    free(c);
    if (t1 < l->stop_at) {
        if (start_call(l) != 0)
            event_base_loopbreak(l->base);
    } else if (l->in_flight == 0) {
        event_base_loopbreak(l->base);
    }
}

static int start_call(load *l)
{
    static const tw_grpc_client_handlers h = {.on_close = on_close};
    char key[MAX_KEY + 1];
    snprintf(key, sizeof key, "%s", l->keys[rnd(l) % l->nkeys]);
    uint8_t buf[256];
    size_t len;
    const char *path;
    if (l->search) {
        size_t kl = strlen(key);
        for (int k = 0; k < 2 && kl > 4; k++)
            key[1 + rnd(l) % (kl - 1)] = '?';
        Tidewatch__V1__SearchItemsRequest req = TIDEWATCH__V1__SEARCH_ITEMS_REQUEST__INIT;
        req.pattern = key;
        req.page_size = 20;
        len = tidewatch__v1__search_items_request__pack(&req, buf);
        path = "/tidewatch.v1.ProvenanceService/SearchItems";
    } else {
        Tidewatch__V1__GetChainRequest req = TIDEWATCH__V1__GET_CHAIN_REQUEST__INIT;
        req.serial = key;
        len = tidewatch__v1__get_chain_request__pack(&req, buf);
        path = "/tidewatch.v1.ProvenanceService/GetChain";
    }
    call_ctx *c = malloc(sizeof *c);
    if (!c)
        return -1;
    c->l = l;
    c->t0 = now_s();
    tw_grpc_call_opts opts = {.timeout_ms = 30000, .max_recv_message = 64 << 20};
    tw_grpc_ccall *call = tw_grpc_channel_start(l->ch[l->next_ch], path, &opts, &h, c);
    l->next_ch = (l->next_ch + 1) % l->nch;
    if (!call) {
        free(c);
        return -1;
    }
    if (tw_grpc_ccall_send(call, buf, len) != 0) {
        tw_grpc_ccall_cancel(call); /* on_close frees c */
        return 0;
    }
    tw_grpc_ccall_close_send(call);
    l->in_flight++;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static int read_keys(load *l, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tidewatch-query-load: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[256];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || strlen(line) > MAX_KEY)
            continue;
        if (l->nkeys == cap) {
            cap = cap ? cap * 2 : 1024;
            void *p = realloc(l->keys, cap * sizeof *l->keys);
            if (!p) {
                fclose(f);
                return -1;
            }
            l->keys = p;
        }
        snprintf(l->keys[l->nkeys++], MAX_KEY + 1, "%s", line);
    }
    fclose(f);
    if (!l->nkeys) {
        fprintf(stderr, "tidewatch-query-load: %s: no keys\n", path);
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: tidewatch-query-load --keys FILE [--method chain|search] [-c CALLS]\n"
               "                            [-d SECONDS] [--warmup SECONDS] [--target HOST:PORT]\n"
               "                            [--channels K] [--seed S]\n"
               "\n"
               "Keeps CALLS (default 16) GetChain or SearchItems calls in flight against\n"
               "tidewatch-query (default 127.0.0.1:50052) for SECONDS (default 10) after a\n"
               "warm-up (default 2), over K connections (default 4), with keys drawn from\n"
               "FILE (one serial key per line); prints calls/s and latency percentiles.\n");
}

int main(int argc, char **argv)
{
    const char *target = "127.0.0.1:50052", *keys = NULL;
    int concurrency = 16, nch = 4, rc = 2;
    double seconds = 10, warmup = 2;
    load l = {.rng = 88172645463325252ull};
    enum { O_KEYS = 256, O_METHOD, O_WARMUP, O_TARGET, O_CHANNELS, O_SEED };
    static const struct option lo[] = {
        {"keys", required_argument, NULL, O_KEYS},       {"method", required_argument, NULL, O_METHOD},
        {"warmup", required_argument, NULL, O_WARMUP},   {"target", required_argument, NULL, O_TARGET},
        {"channels", required_argument, NULL, O_CHANNELS}, {"seed", required_argument, NULL, O_SEED},
        {"help", no_argument, NULL, 'h'},                {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:d:h", lo, NULL)) != -1) {
        switch (opt) {
        case 'c': concurrency = atoi(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case O_KEYS: keys = optarg; break;
        case O_METHOD:
            if (strcmp(optarg, "chain") && strcmp(optarg, "search")) {
                fprintf(stderr, "tidewatch-query-load: --method: chain or search\n");
                return 2;
            }
            l.search = strcmp(optarg, "search") == 0;
            break;
        case O_WARMUP: warmup = atof(optarg); break;
        case O_TARGET: target = optarg; break;
        case O_CHANNELS: nch = atoi(optarg); break;
        case O_SEED: l.rng = strtoull(optarg, NULL, 10) | 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!keys || concurrency < 1 || concurrency > 10000 || nch < 1 || nch > 64 || seconds <= 0 ||
        warmup < 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char err[256];
    if (read_keys(&l, keys) != 0)
        goto out;
    rc = 1;
    if (!(l.base = event_base_new()) || !(l.ch = calloc((size_t)nch, sizeof *l.ch)))
        goto out;
    for (l.nch = 0; l.nch < nch; l.nch++) {
        if (!(l.ch[l.nch] = tw_grpc_channel_new(l.base, target, err, sizeof err))) {
            fprintf(stderr, "tidewatch-query-load: %s: %s\n", target, err);
            goto out;
        }
    }
    l.start = now_s();
    l.warm_until = l.start + warmup;
    l.stop_at = l.warm_until + seconds;
    for (int i = 0; i < concurrency; i++)
        if (start_call(&l) != 0)
            goto out;
    event_base_dispatch(l.base);
    qsort(l.lat_ms, l.nlat, sizeof *l.lat_ms, cmp_double);
    uint64_t errs = 0;
    for (int s = 0; s <= 16; s++)
        errs += l.errors[s];
    printf("%s: %" PRIu64 " calls (%" PRIu64 " not found), %" PRIu64 " errors, %.0f calls/s, "
           "latency ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
           l.search ? "SearchItems" : "GetChain", l.calls, l.not_found, errs,
           (double)l.calls / seconds, pct(l.lat_ms, l.nlat, 50), pct(l.lat_ms, l.nlat, 90),
           pct(l.lat_ms, l.nlat, 99), l.nlat ? l.lat_ms[l.nlat - 1] : 0.0);
    for (int s = 0; s <= 16; s++)
        if (l.errors[s])
            printf("  status %d: %" PRIu64 "\n", s, l.errors[s]);
    rc = errs ? 1 : 0;
out:
    for (int i = 0; l.ch && i < l.nch; i++)
        tw_grpc_channel_free(l.ch[i]);
    free(l.ch);
    if (l.base)
        event_base_free(l.base);
    free(l.keys);
    free(l.lat_ms);
    return rc;
}
