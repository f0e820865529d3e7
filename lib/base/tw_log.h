/* tw_log: levelled logging to stderr as text or JSON lines.
 *
 * Every line carries the service name (set once by tw_log_init) and an
 * optional context: the peer address and the call (gRPC method) it concerns.
 * The TW_LOG_* macros test the level before evaluating their arguments, so a
 * suppressed debug line costs one comparison. */
#ifndef TW_LOG_H
#define TW_LOG_H

#include <stdarg.h>

typedef enum {
    TW_LOG_DEBUG = 0,
    TW_LOG_INFO = 1,
    TW_LOG_WARN = 2,
    TW_LOG_ERROR = 3,
} tw_log_level;

typedef enum {
    TW_LOG_FORMAT_TEXT = 0,
    TW_LOG_FORMAT_JSON = 1,
} tw_log_format;

/* Context carried by a log line; any field may be NULL. The strings are
 * borrowed for the duration of the call only. */
typedef struct tw_log_ctx {
    const char *peer; /* "127.0.0.1:53422" */
    const char *call; /* "/tidewatch.v1.IngestService/Submit" */
} tw_log_ctx;

/* Current threshold; read by the macros. Set through tw_log_init. */
extern tw_log_level tw_log_threshold;

/* Set the service name (copied), the threshold and the format, and route
 * libevent's internal messages into this log. Safe to call again. */
void tw_log_init(const char *service, tw_log_level level, tw_log_format format);

/* Free what tw_log_init allocated. */
void tw_log_shutdown(void);

/* Parse "debug", "info", "warn"/"warning", "error" (case-insensitive).
 * Returns 0 and sets *out, or -1 for anything else. */
int tw_log_level_parse(const char *s, tw_log_level *out) __attribute__((warn_unused_result));

/* Parse "text" or "json". Returns 0 and sets *out, or -1. */
int tw_log_format_parse(const char *s, tw_log_format *out) __attribute__((warn_unused_result));

const char *tw_log_level_name(tw_log_level level);

/* NULL-terminated names, indexed by tw_log_level / tw_log_format, for
 * settings tables (TW_SET_ENUM choices). */
extern const char *const tw_log_level_names[];
extern const char *const tw_log_format_names[];

/* Write one line unconditionally (the macros check the level first). */
void tw_log_write(tw_log_level level, const tw_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tw_log_vwrite(tw_log_level level, const tw_log_ctx *ctx, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define TW_LOG(level, ctx, ...)                                                                    \
    do {                                                                                           \
        if ((level) >= tw_log_threshold)                                                           \
            tw_log_write((level), (ctx), __VA_ARGS__);                                             \
    } while (0)
#define TW_DEBUG(ctx, ...) TW_LOG(TW_LOG_DEBUG, ctx, __VA_ARGS__)
#define TW_INFO(ctx, ...) TW_LOG(TW_LOG_INFO, ctx, __VA_ARGS__)
#define TW_WARN(ctx, ...) TW_LOG(TW_LOG_WARN, ctx, __VA_ARGS__)
#define TW_ERROR(ctx, ...) TW_LOG(TW_LOG_ERROR, ctx, __VA_ARGS__)

#endif
