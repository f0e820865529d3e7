#include "tw_info.h"

#include "tidewatch/v1/info.pb-c.h"

static void info_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)msg;
    (void)len; /* GetServerInfoRequest has no fields; unknown ones are ignored */
    const tw_info *info = arg;
    Tidewatch__V1__ServerInfo resp = TIDEWATCH__V1__SERVER_INFO__INIT;
    time_t now = time(NULL);
    resp.service = (char *)info->service;
    resp.version = (char *)TW_VERSION;
    resp.uptime_seconds = now > info->started ? (uint64_t)(now - info->started) : 0;
    resp.started_at_unix = (int64_t)info->started;
    uint8_t buf[256];
    size_t need = tidewatch__v1__server_info__get_packed_size(&resp);
    if (need > sizeof buf) {
        tw_grpc_call_finish(call, TW_GRPC_INTERNAL, "server info too large");
        return;
    }
    size_t n = tidewatch__v1__server_info__pack(&resp, buf);
    tw_grpc_call_reply(call, buf, n);
}

int tw_info_register(tw_info *info, tw_grpc_server *s, const char *path)
{
    const tw_grpc_method m = {
        .path = path, .kind = TW_GRPC_UNARY, .on_message = info_on_message, .arg = info};
    return tw_grpc_server_add_methods(s, &m, 1);
}
