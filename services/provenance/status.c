/* tidewatch.v1.WorkerService for the provenance consumer (GetStatus,
 * lib/net/tw_worker). */
#include "provenance.h"
#include "tw_worker.h"

int prov_register(prov_service *svc)
{
    svc->status_consumer = (tw_worker_consumer){.name = PROV_CONSUMER, .consumer = &svc->consumer};
    svc->status = (tw_worker_status){.consumers = &svc->status_consumer, .n = 1};
    return tw_worker_register_status(svc->daemon->server, &svc->status);
}
