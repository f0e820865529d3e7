#include "tw_health.h"

#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "tw_arena.h"

typedef struct entry {
    char *name;
    tw_health_status status;
} entry;

/* Above this many queued bytes a watcher stops sending and, once the
 * client has read them, sends only the latest status. */
#define WATCH_LOW_WATER 1024

typedef struct watcher {
    struct watcher *prev, *next;
    tw_health *h;
    tw_grpc_call *call;
    char *service;
    int sent;    /* last status sent */
    int latest;  /* status to report */
    int waiting; /* on_writable registered */
} watcher;

struct tw_health {
    entry *entries;
    size_t n;
    watcher *watchers;
};

static entry *find(const tw_health *h, const char *service)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->entries[i].name, service) == 0)
            return &h->entries[i];
    return NULL;
}

tw_health *tw_health_new(void)
{
    tw_health *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    if (tw_health_set(h, "", TW_HEALTH_SERVING) != 0) {
        tw_health_free(h);
        return NULL;
    }
    return h;
}

int tw_health_get(const tw_health *h, const char *service)
{
    const entry *e = find(h, service);
    return e ? (int)e->status : -1;
}

/* Serialize a HealthCheckResponse with `status` and send it on `call`. */
static int send_status(tw_grpc_call *call, int status)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    uint8_t buf[16];
    size_t len = grpc__health__v1__health_check_response__pack(&resp, buf);
    return tw_grpc_call_send(call, buf, len);
}

static void watcher_unlink(watcher *w);
static void watcher_flush(watcher *w);

static void watcher_writable(tw_grpc_call *call, void *arg)
{
    (void)call;
    watcher *w = arg;
    w->waiting = 0;
    watcher_flush(w);
}

/* Send the latest status if it differs from the last one sent, or wait
 * until the client reads what is queued (changes in between coalesce).
 * A send refused over the output caps ends the call; w may then be
 * freed. */
static void watcher_flush(watcher *w)
{
    if (w->waiting || w->latest == w->sent)
        return;
    if (tw_grpc_call_pending(w->call) > WATCH_LOW_WATER) {
        w->waiting = 1;
        tw_grpc_call_on_writable(w->call, WATCH_LOW_WATER, watcher_writable, w);
        return;
    }
    if (send_status(w->call, w->latest) != 0) {
        tw_grpc_call_finish(w->call, TW_GRPC_RESOURCE_EXHAUSTED, "could not send status");
        watcher_unlink(w);
        return;
    }
    w->sent = w->latest;
}

static void notify(tw_health *h, const char *service, int status)
{
    for (watcher *w = h->watchers, *next; w; w = next) {
        next = w->next;
        if (strcmp(w->service, service) == 0) {
            w->latest = status;
            watcher_flush(w);
        }
    }
}

int tw_health_set(tw_health *h, const char *service, tw_health_status status)
{
    entry *e = find(h, service);
    if (!e) {
        entry *n = realloc(h->entries, (h->n + 1) * sizeof *n);
        if (!n)
            return -1;
        h->entries = n;
        e = &h->entries[h->n];
        e->name = strdup(service);
        if (!e->name)
            return -1;
        e->status = TW_HEALTH_UNKNOWN;
        h->n++;
    }
    if (e->status != status) {
        e->status = status;
        notify(h, service, (int)status);
    }
    return 0;
}

void tw_health_set_all_not_serving(tw_health *h)
{
    for (size_t i = 0; i < h->n; i++) {
        if (h->entries[i].status != TW_HEALTH_NOT_SERVING) {
            h->entries[i].status = TW_HEALTH_NOT_SERVING;
            notify(h, h->entries[i].name, TW_HEALTH_NOT_SERVING);
        }
    }
}

/* Unpack a HealthCheckRequest; returns the service name (malloc'd) or NULL
 * for malformed bytes. */
static char *request_service(const uint8_t *msg, size_t len)
{
    Grpc__Health__V1__HealthCheckRequest *req =
        grpc__health__v1__health_check_request__unpack(tw_protobuf_zeroing_allocator(), len, msg);
    if (!req)
        return NULL;
    char *name = strdup(req->service ? req->service : "");
    grpc__health__v1__health_check_request__free_unpacked(req, tw_protobuf_zeroing_allocator());
    return name;
}

static void check_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    tw_health *h = arg;
    char *service = request_service(msg, len);
    if (!service) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed HealthCheckRequest");
        return;
    }
    int status = tw_health_get(h, service);
    free(service);
    if (status < 0) {
        tw_grpc_call_finish(call, TW_GRPC_NOT_FOUND, "unknown service");
        return;
    }
    if (send_status(call, status) != 0) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "could not send status");
        return;
    }
    tw_grpc_call_finish(call, TW_GRPC_OK, NULL);
}

static void watcher_unlink(watcher *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->h->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w->service);
    free(w);
}

static void watch_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    tw_health *h = arg;
    watcher *w = calloc(1, sizeof *w);
    if (!w) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    w->service = request_service(msg, len);
    if (!w->service) {
        free(w);
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed HealthCheckRequest");
        return;
    }
    int status = tw_health_get(h, w->service);
    /* Watch reports SERVICE_UNKNOWN for unknown services and keeps going. */
    w->latest = w->sent = status < 0 ? (int)TW_HEALTH_UNKNOWN : status;
    if (send_status(call, w->sent) != 0) {
        free(w->service);
        free(w);
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "could not send status");
        return;
    }
    w->h = h;
    w->call = call;
    w->next = h->watchers;
    if (h->watchers)
        h->watchers->prev = w;
    h->watchers = w;
    tw_grpc_call_set_data(call, w);
}

static void watch_on_cancel(tw_grpc_call *call, void *arg)
{
    (void)arg;
    watcher *w = tw_grpc_call_data(call);
    if (w)
        watcher_unlink(w);
}

int tw_health_register(tw_health *h, tw_grpc_server *s)
{
    const tw_grpc_method methods[] = {
        {.path = "/grpc.health.v1.Health/Check", .kind = TW_GRPC_UNARY,
         .on_message = check_on_message, .arg = h},
        {.path = "/grpc.health.v1.Health/Watch", .kind = TW_GRPC_SERVER_STREAM,
         .on_message = watch_on_message, .on_cancel = watch_on_cancel, .arg = h},
    };
    return tw_grpc_server_add_methods(s, methods, sizeof methods / sizeof methods[0]);
}

void tw_health_shutdown(tw_health *h)
{
    tw_health_set_all_not_serving(h);
    while (h->watchers) {
        watcher *w = h->watchers;
        tw_grpc_call_finish(w->call, TW_GRPC_UNAVAILABLE, "server is shutting down");
        watcher_unlink(w);
    }
}

void tw_health_free(tw_health *h)
{
    if (!h)
        return;
    tw_health_shutdown(h);
    for (size_t i = 0; i < h->n; i++)
        free(h->entries[i].name);
    free(h->entries);
    free(h);
}
