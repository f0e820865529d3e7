/* tidewatch.v1.WorkerService.GetStatus: where the consumer has got to. */
#include <stdlib.h>

#include "provenance.h"
#include "tidewatch/v1/worker.pb-c.h"
#include "tw_grpc_wire.h"

static void get_status(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    prov_service *svc = arg;
    /* GetWorkerStatusRequest has no fields; anything else is malformed. */
    Tidewatch__V1__GetWorkerStatusRequest *req =
        tidewatch__v1__get_worker_status_request__unpack(NULL, len, msg);
    if (!req) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT, "malformed GetWorkerStatusRequest");
        return;
    }
    tidewatch__v1__get_worker_status_request__free_unpacked(req, NULL);
    tw_consumer_stats st;
    tw_consumer_stats_get(svc->consumer, &st);
    Tidewatch__V1__ConsumerStatus cs = TIDEWATCH__V1__CONSUMER_STATUS__INIT;
    cs.name = (char *)PROV_CONSUMER;
    cs.loaded = st.loaded != 0;
    cs.cursor_tx = st.tx;
    cs.cursor_id = st.id;
    cs.applied_events = st.applied_events;
    cs.batches = st.batches;
    cs.conflicts = st.conflicts;
    cs.failures = st.failures;
    cs.lag_events = st.lag_events;
    cs.lag_seconds = st.lag_seconds;
    Tidewatch__V1__ConsumerStatus *list[] = {&cs};
    Tidewatch__V1__WorkerStatus ws = TIDEWATCH__V1__WORKER_STATUS__INIT;
    ws.n_consumers = 1;
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

int prov_register(prov_service *svc)
{
    const tw_grpc_method methods[] = {
        {.path = "/tidewatch.v1.WorkerService/GetStatus", .kind = TW_GRPC_UNARY,
         .on_message = get_status, .arg = svc},
    };
    return tw_grpc_server_add_methods(svc->daemon->server, methods,
                                      sizeof methods / sizeof methods[0]);
}
