#include "tw_log.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

tw_log_level tw_log_threshold = TW_LOG_INFO;
static tw_log_format log_format = TW_LOG_FORMAT_TEXT;
static char *log_service;

const char *const tw_log_level_names[] = {"debug", "info", "warn", "error", NULL};
const char *const tw_log_format_names[] = {"text", "json", NULL};

const char *tw_log_level_name(tw_log_level level)
{
    if ((unsigned)level < (size_t)TW_LOG_ERROR + 1)
        return tw_log_level_names[level];
    return "?";
}

int tw_log_level_parse(const char *s, tw_log_level *out)
{
    if (!s)
        return -1;
    for (unsigned i = 0; i < (size_t)TW_LOG_ERROR + 1; i++) {
        if (strcasecmp(s, tw_log_level_names[i]) == 0) {
            *out = (tw_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = TW_LOG_WARN;
        return 0;
    }
    return -1;
}

int tw_log_format_parse(const char *s, tw_log_format *out)
{
    if (s && strcasecmp(s, "text") == 0) {
        *out = TW_LOG_FORMAT_TEXT;
        return 0;
    }
    if (s && strcasecmp(s, "json") == 0) {
        *out = TW_LOG_FORMAT_JSON;
        return 0;
    }
    return -1;
}

static void libevent_log_cb(int severity, const char *msg)
{
    tw_log_level level = severity >= EVENT_LOG_ERR    ? TW_LOG_ERROR
                         : severity >= EVENT_LOG_WARN ? TW_LOG_WARN
                         : severity >= EVENT_LOG_MSG  ? TW_LOG_INFO
                                                      : TW_LOG_DEBUG;
    TW_LOG(level, NULL, "libevent: %s", msg);
}

void tw_log_init(const char *service, tw_log_level level, tw_log_format format)
{
    free(log_service);
    log_service = service ? strdup(service) : NULL;
    tw_log_threshold = level;
    log_format = format;
    event_set_log_callback(libevent_log_cb);
}

void tw_log_shutdown(void)
{
    free(log_service);
    log_service = NULL;
    event_set_log_callback(NULL);
}

void tw_log_write(tw_log_level level, const tw_log_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tw_log_vwrite(level, ctx, fmt, ap);
    va_end(ap);
}

void tw_log_vwrite(tw_log_level level, const tw_log_ctx *ctx, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000);

    const char *service = log_service ? log_service : "tidewatch";
    const char *peer = ctx ? ctx->peer : NULL;
    const char *call = ctx ? ctx->call : NULL;

    if (log_format == TW_LOG_FORMAT_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "ts", json_string(when));
        json_object_set_new(o, "level", json_string(tw_log_level_name(level)));
        json_object_set_new(o, "service", json_string(service));
        if (peer)
            json_object_set_new(o, "peer", json_string(peer));
        if (call)
            json_object_set_new(o, "call", json_string(call));
        /* json_string rejects invalid UTF-8; fall back to a lossless-enough form. */
        json_t *m = json_string(msg);
        json_object_set_new(o, "msg", m ? m : json_string("(message not valid UTF-8)"));
        char *line = json_dumps(o, JSON_COMPACT);
        if (line) {
            fprintf(stderr, "%s\n", line);
            free(line);
        }
        json_decref(o);
        return;
    }
    fprintf(stderr, "%s %-5s %s%s%s%s%s: %s\n", when, tw_log_level_name(level), service,
            peer ? " peer=" : "", peer ? peer : "", call ? " call=" : "", call ? call : "", msg);
}
