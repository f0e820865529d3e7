/* tw_info: the GetServerInfo method every Tidewatch service answers. */
#ifndef TW_INFO_H
#define TW_INFO_H

#include <time.h>

#include "tw_grpc_server.h"

typedef struct tw_info {
    const char *service; /* borrowed */
    time_t started;      /* CLOCK_REALTIME seconds */
} tw_info;

/* Register GetServerInfo at `path` (e.g. "/tidewatch.v1.IngestService/
 * GetServerInfo"). `info` and `path` must outlive the server. */
int tw_info_register(tw_info *info, tw_grpc_server *s, const char *path) TW_WUR;

#endif
