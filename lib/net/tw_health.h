/* tw_health: grpc.health.v1.Health (Check and Watch) backed by a registry
 * of service statuses. The server itself is the service named "". */
#ifndef TW_HEALTH_H
#define TW_HEALTH_H

#include "tw_grpc_server.h"

typedef enum {
    TW_HEALTH_UNKNOWN = 0,
    TW_HEALTH_SERVING = 1,
    TW_HEALTH_NOT_SERVING = 2,
} tw_health_status;

typedef struct tw_health tw_health;

/* A registry with "" set to SERVING. Returns NULL on ENOMEM. */
tw_health *tw_health_new(void) TW_WUR;

/* Set a service's status (the name is copied) and notify watchers. Returns
 * 0 or -1 on ENOMEM. */
int tw_health_set(tw_health *h, const char *service, tw_health_status status) TW_WUR;

/* Mark every registered service NOT_SERVING (used when shutting down). */
void tw_health_set_all_not_serving(tw_health *h);

/* Status of a service; -1 if it is not registered. */
int tw_health_get(const tw_health *h, const char *service);

/* Register Check and Watch on the server. The registry must outlive it. */
int tw_health_register(tw_health *h, tw_grpc_server *s) TW_WUR;

/* Mark everything NOT_SERVING, tell watchers, and end every Watch call with
 * UNAVAILABLE so that a graceful shutdown is not held up by them. */
void tw_health_shutdown(tw_health *h);

/* Free the registry. Watch calls still open are finished first. */
void tw_health_free(tw_health *h);

#endif
