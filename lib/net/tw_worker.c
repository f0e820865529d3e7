/* tidewatch.v1.WorkerService.GetStatus: where each consumer has got to. */
#include <stdlib.h>

#include "tidewatch/v1/worker.pb-c.h"
#include "tw_consumer.h"
#include "tw_grpc_wire.h"
#include "tw_worker.h"

static void get_status(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    const tw_worker_status *ws_arg = arg;
    /* GetWorkerStatusRequest has no fields; anything else is malformed. */
    Tidewatch__V1__GetWorkerStatusRequest *req =
        tidewatch__v1__get_worker_status_request__unpack(NULL, len, msg);
    if (!req) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed GetWorkerStatusRequest");
        return;
    }
    tidewatch__v1__get_worker_status_request__free_unpacked(req, NULL);
    enum { MAX = TW_WORKER_MAX_CONSUMERS };
    Tidewatch__V1__ConsumerStatus cs[MAX];
    Tidewatch__V1__ConsumerStatus *list[MAX];
    size_t k = 0;
    for (size_t i = 0; i < ws_arg->n && k < MAX; i++) {
        const tw_consumer *c = *ws_arg->consumers[i].consumer;
        if (!c)
            continue;
        tw_consumer_stats st;
        tw_consumer_stats_get(c, &st);
        tidewatch__v1__consumer_status__init(&cs[k]);
        cs[k].name = (char *)ws_arg->consumers[i].name;
        cs[k].loaded = st.loaded != 0;
        cs[k].cursor_tx = st.tx;
        cs[k].cursor_id = st.id;
        cs[k].applied_events = st.applied_events;
        cs[k].batches = st.batches;
        cs[k].conflicts = st.conflicts;
        cs[k].failures = st.failures;
        cs[k].lag_events = st.lag_events;
        cs[k].lag_seconds = st.lag_seconds;
        list[k] = &cs[k];
        k++;
    }
    Tidewatch__V1__WorkerStatus ws = TIDEWATCH__V1__WORKER_STATUS__INIT;
    ws.n_consumers = k;
    ws.consumers = list;
    size_t n = tidewatch__v1__worker_status__get_packed_size(&ws);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    tidewatch__v1__worker_status__pack(&ws, buf);
    tw_grpc_call_reply(call, buf, n);
    free(buf);
}

int tw_worker_register_status(tw_grpc_server *server, const tw_worker_status *ws)
{
    const tw_grpc_method m = {.path = "/tidewatch.v1.WorkerService/GetStatus",
                              .kind = TW_GRPC_UNARY, .on_message = get_status, .arg = (void *)ws};
    return tw_grpc_server_add_methods(server, &m, 1);
}
