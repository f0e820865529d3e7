/* tw_worker: tidewatch.v1.WorkerService/GetStatus for the daemons that
 * consume the event log (tidewatch-provenance, tidewatch-alerts): where
 * each of their consumers has got to. */
#ifndef TW_WORKER_H
#define TW_WORKER_H

#include <stddef.h>

#include "tw_grpc_server.h"

typedef struct tw_consumer tw_consumer;

/* One consumer to report: its cursor row's name and the consumer, whose
 * address is read at every call (so it may be set after registration). */
typedef struct tw_worker_consumer {
    const char *name;
    tw_consumer *const *consumer;
} tw_worker_consumer;

/* The consumers a daemon reports. */
typedef struct tw_worker_status {
    const tw_worker_consumer *consumers;
    size_t n; /* at most TW_WORKER_MAX_CONSUMERS are reported */
} tw_worker_status;

#define TW_WORKER_MAX_CONSUMERS 8

/* Register GetStatus on `server` for ws (borrowed, with everything it
 * points to: it must outlive the server). Returns 0, or -1 as
 * tw_grpc_server_add_methods. */
int tw_worker_register_status(tw_grpc_server *server, const tw_worker_status *ws)
    __attribute__((warn_unused_result));

#endif
