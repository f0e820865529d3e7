/* tw_reflection_register: the thin binding of tw_reflection_answer to a
 * tw_grpc_server (kept apart from tw_reflection.c so that the pure part
 * links without the server). See tw_reflection.h. */
#include <stdlib.h>

#include "tw_log.h"
#include "tw_reflection-internal.h"
#include "tw_reflection.h"

/* A client that sends requests and does not read the answers: above this
 * many queued response bytes the call's input pauses until they drain, so
 * the queue holds at most this plus one answer. */
#define REFL_LOW_WATER (64 * 1024)

/* One per (reflection, server, version): the method arg. Owned by the
 * tw_reflection (tw_reflection_keep), since the server never frees args. */
typedef struct refl_binding {
    tw_reflection *r;
    tw_grpc_server *s;
    int v1alpha;
} refl_binding;

static void refl_writable(tw_grpc_call *call, void *arg)
{
    (void)arg;
    tw_grpc_call_resume_input(call);
}

static void refl_on_message(tw_grpc_call *call, const uint8_t *msg, size_t len, void *arg)
{
    refl_binding *b = arg;
    size_t n = tw_grpc_server_service_count(b->s);
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) {
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = tw_grpc_server_service_name(b->s, i);

    uint8_t *resp = NULL;
    size_t resp_len = 0;
    int rc = tw_reflection_answer(b->r, b->v1alpha, names, n, msg, len, &resp, &resp_len);
    free(names);
    if (rc != 0) {
        tw_grpc_call_finish(call, TW_GRPC_INVALID_ARGUMENT,
                            "malformed ServerReflectionRequest (or out of memory)");
        return;
    }
    if (tw_grpc_call_send(call, resp, resp_len) != 0) {
        tw_log_ctx ctx = {.peer = tw_grpc_call_peer(call), .call = tw_grpc_call_path(call)};
        TW_WARN(&ctx, "reflection response of %zu bytes could not be sent", resp_len);
        free(resp);
        tw_grpc_call_finish(call, TW_GRPC_RESOURCE_EXHAUSTED,
                            "reflection response exceeds the send limit or the client is not "
                            "reading");
        return;
    }
    free(resp);
    /* Wait for the client to read before taking the next request. */
    if (tw_grpc_call_pending(call) > REFL_LOW_WATER) {
        tw_grpc_call_pause_input(call);
        tw_grpc_call_on_writable(call, REFL_LOW_WATER, refl_writable, NULL);
    }
}

static void refl_on_half_close(tw_grpc_call *call, void *arg)
{
    (void)arg;
    tw_grpc_call_finish(call, TW_GRPC_OK, NULL);
}

static refl_binding *refl_bind(tw_reflection *r, tw_grpc_server *s, int v1alpha)
{
    refl_binding *b = malloc(sizeof *b);
    if (!b)
        return NULL;
    *b = (refl_binding){.r = r, .s = s, .v1alpha = v1alpha};
    if (tw_reflection_keep(r, b) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

int tw_reflection_register(tw_reflection *r, tw_grpc_server *s)
{
    refl_binding *v1 = refl_bind(r, s, 0);
    refl_binding *v1alpha = v1 ? refl_bind(r, s, 1) : NULL;
    if (!v1alpha)
        return -1; /* whatever was bound is freed with r */
    tw_grpc_method methods[2] = {
        {
            .path = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            .kind = TW_GRPC_BIDI,
            .on_message = refl_on_message,
            .on_half_close = refl_on_half_close,
            .arg = v1,
        },
        {
            .path = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            .kind = TW_GRPC_BIDI,
            .on_message = refl_on_message,
            .on_half_close = refl_on_half_close,
            .arg = v1alpha,
        },
    };
    return tw_grpc_server_add_methods(s, methods, 2);
}
