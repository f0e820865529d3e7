/* tidewatch health / info: talk to any Tidewatch gRPC port. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "tidewatch/v1/info.pb-c.h"
#include "tw_arena.h"
#include "tw_grpc_client.h"

/* One unary call (or, with `stream`, a client-streaming or bidi call with
 * that one request message) on a fresh loop and channel. Returns the gRPC
 * status, or -1 if the channel could not be set up (message printed). */
static int call_one(const tw_cli *cli, const char *path, const uint8_t *req, size_t len,
                    int stream, tw_grpc_result *out)
{
    char err[256];
    struct event_base *base = event_base_new();
    if (!base) {
        fprintf(stderr, "tidewatch: out of memory\n");
        return -1;
    }
    tw_grpc_channel *ch = tw_grpc_channel_new(base, cli->target, err, sizeof err);
    if (!ch) {
        fprintf(stderr, "tidewatch: %s\n", err);
        event_base_free(base);
        return -1;
    }
    tw_grpc_call_opts opts = {.timeout_ms = cli->timeout_ms};
    tw_grpc_buf msg = {req, len};
    int status = stream ? tw_grpc_client_stream(ch, path, &msg, 1, &opts, out)
                        : tw_grpc_unary(ch, path, req, len, &opts, out);
    tw_grpc_channel_free(ch);
    event_base_free(base);
    return status;
}

static int report_error(const tw_cli *cli, const char *what, const tw_grpc_result *r)
{
    fprintf(stderr, "tidewatch: %s at %s: %s%s%s\n", what, cli->target,
            tw_grpc_status_name(r->status), r->message && r->message[0] ? ": " : "",
            r->message ? r->message : "");
    return r->status == TW_GRPC_UNAVAILABLE || r->status == TW_GRPC_DEADLINE_EXCEEDED ? 3 : 1;
}

int tw_cli_health(const tw_cli *cli, int argc, char **argv)
{
    if (argc > 1) {
        fprintf(stderr, "tidewatch health: at most one SERVICE\n");
        return 2;
    }
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = argc ? argv[0] : "";
    size_t len = grpc__health__v1__health_check_request__get_packed_size(&req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return 1;
    grpc__health__v1__health_check_request__pack(&req, buf);
    tw_grpc_result r = {0};
    int status = call_one(cli, "/grpc.health.v1.Health/Check", buf, len, 0, &r);
    free(buf);
    int rc;
    if (status < 0) {
        rc = 3;
    } else if (status != TW_GRPC_OK) {
        rc = report_error(cli, "health check", &r);
    } else {
        Grpc__Health__V1__HealthCheckResponse *resp =
            grpc__health__v1__health_check_response__unpack(tw_protobuf_zeroing_allocator(),
                                                            r.len, r.data);
        if (!resp) {
            fprintf(stderr, "tidewatch: malformed HealthCheckResponse from %s\n", cli->target);
            rc = 1;
        } else {
            const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
                &grpc__health__v1__health_check_response__serving_status__descriptor,
                resp->status);
            printf("%s\n", v ? v->name : "UNKNOWN");
            rc = resp->status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                     ? 0
                     : 1;
            grpc__health__v1__health_check_response__free_unpacked(
                resp, tw_protobuf_zeroing_allocator());
        }
    }
    tw_grpc_result_free(&r);
    return rc;
}

/* Tidewatch services that answer GetServerInfo, in the order asked. */
static const char *const info_services[] = {
    "tidewatch.v1.IngestService", "tidewatch.v1.ProvenanceService",
    "tidewatch.v1.AlertService", "tidewatch.v1.WorkerService"};

/* Ask the server's reflection which services it serves and pick the first
 * Tidewatch one that answers GetServerInfo: one question that always has an
 * answer, instead of guessing paths (each wrong guess is an UNIMPLEMENTED
 * call in the server's metrics). Returns an info_services entry, or NULL
 * with *rc set (message printed). */
static const char *find_info_service(const tw_cli *cli, int *rc)
{
    Grpc__Reflection__V1__ServerReflectionRequest req =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
    req.list_services = (char *)"";
    uint8_t buf[64];
    size_t len = grpc__reflection__v1__server_reflection_request__pack(&req, buf);
    tw_grpc_result r = {0};
    int status = call_one(cli, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", buf,
                          len, 1, &r);
    const char *found = NULL;
    if (status < 0) {
        *rc = 3;
    } else if (status == TW_GRPC_UNIMPLEMENTED) {
        fprintf(stderr, "tidewatch: %s answers no Tidewatch service (no server reflection)\n",
                cli->target);
        *rc = 1;
    } else if (status != TW_GRPC_OK) {
        *rc = report_error(cli, "server reflection", &r);
    } else {
        Grpc__Reflection__V1__ServerReflectionResponse *resp =
            grpc__reflection__v1__server_reflection_response__unpack(
                tw_protobuf_zeroing_allocator(), r.len, r.data);
        const Grpc__Reflection__V1__ListServiceResponse *list =
            resp && resp->message_response_case ==
                        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE
                ? resp->list_services_response
                : NULL;
        if (!list) {
            fprintf(stderr, "tidewatch: malformed reflection answer from %s\n", cli->target);
            *rc = 1;
        }
        for (size_t k = 0; list && !found && k < sizeof info_services / sizeof info_services[0];
             k++)
            for (size_t i = 0; i < list->n_service; i++)
                if (list->service[i] && list->service[i]->name &&
                    strcmp(list->service[i]->name, info_services[k]) == 0)
                    found = info_services[k];
        if (list && !found) {
            fprintf(stderr, "tidewatch: %s answers no Tidewatch service\n", cli->target);
            *rc = 1;
        }
        if (resp)
            grpc__reflection__v1__server_reflection_response__free_unpacked(
                resp, tw_protobuf_zeroing_allocator());
    }
    tw_grpc_result_free(&r);
    return found;
}

int tw_cli_info(const tw_cli *cli, int argc, char **argv)
{
    (void)argv;
    if (argc) {
        fprintf(stderr, "tidewatch info: takes no arguments\n");
        return 2;
    }
    int rc = 1;
    const char *service = find_info_service(cli, &rc);
    if (!service)
        return rc;
    char path[128];
    snprintf(path, sizeof path, "/%s/GetServerInfo", service);
    tw_grpc_result r = {0};
    int status = call_one(cli, path, NULL, 0, 0, &r);
    if (status < 0)
        return 3;
    if (status != TW_GRPC_OK) {
        rc = report_error(cli, "server info", &r);
        tw_grpc_result_free(&r);
        return rc;
    }
    Tidewatch__V1__ServerInfo *info =
        tidewatch__v1__server_info__unpack(tw_protobuf_zeroing_allocator(), r.len, r.data);
    tw_grpc_result_free(&r);
    if (!info) {
        fprintf(stderr, "tidewatch: malformed ServerInfo from %s\n", cli->target);
        return 1;
    }
    printf("service  %s\nversion  %s\nuptime   %llus\n", info->service, info->version,
           (unsigned long long)info->uptime_seconds);
    tidewatch__v1__server_info__free_unpacked(info, tw_protobuf_zeroing_allocator());
    return 0;
}
