/* tw_consumer_settings: the settings rows every log-consumer daemon
 * (tidewatch-provenance, tidewatch-alerts) declares the same way, for its
 * config struct T with the fields batch_max, poll_ms, statement_timeout_ms
 * and idle_in_xact_timeout_ms (int64_t). BATCH_DEF is the default batch
 * size as a string, BATCH_HELP its help text. */
#ifndef TW_CONSUMER_SETTINGS_H
#define TW_CONSUMER_SETTINGS_H

#include <stddef.h>

#include "tw_consumer.h"
#include "tw_settings.h"

#define TW_CONSUMER_SETTING_ROWS(T, BATCH_DEF, BATCH_HELP)                                      \
    {.name = "batch_max", .env = "TIDEWATCH_CONSUMER_BATCH", .flag = "batch",                  \
     .type = TW_SET_INT, .def = BATCH_DEF, .min = 1, .max = TW_CONSUMER_BATCH_LIMIT,           \
     .help = BATCH_HELP, .offset = offsetof(T, batch_max)},                                    \
    {.name = "poll_interval", .env = "TIDEWATCH_CONSUMER_POLL_INTERVAL",                         \
     .flag = "poll-interval", .type = TW_SET_DURATION_MS, .def = "1s", .min = 10,              \
     .max = 3600 * 1000, .help = "how often the log is read without a NOTIFY, and the lag measured", \
     .offset = offsetof(T, poll_ms)},                                                            \
    {.name = "statement_timeout", .env = "TIDEWATCH_CONSUMER_STATEMENT_TIMEOUT",                 \
     .flag = "statement-timeout", .type = TW_SET_DURATION_MS, .def = "120s", .min = 0,         \
     .max = 3600 * 1000,                                                                         \
     .help = "longest one statement may run before PostgreSQL cancels it (a batch is retried "  \
             "at the next poll; lower the batch size if it keeps happening); 0: the server's "  \
             "setting",                                                                          \
     .offset = offsetof(T, statement_timeout_ms)},                                               \
    {.name = "idle_in_transaction_timeout",                                                      \
     .env = "TIDEWATCH_CONSUMER_IDLE_IN_TRANSACTION_TIMEOUT",                                    \
     .flag = "idle-in-transaction-timeout", .type = TW_SET_DURATION_MS, .def = "60s", .min = 0, \
     .max = 3600 * 1000,                                                                         \
     .help = "PostgreSQL ends the daemon's session idle inside a transaction this long; 0: "    \
             "the server's setting",                                                             \
     .offset = offsetof(T, idle_in_xact_timeout_ms)}

#endif
