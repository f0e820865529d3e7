/* tw_migrate: forward-only schema migrations.
 *
 * Migrations are files named NNNN_name.sql (four digits, then a name of
 * letters, digits and underscores) in one directory. They apply in version
 * order, each in its own transaction together with its row in
 * tidewatch_migrations (version, name, sha256, applied_at), under a
 * session advisory lock so that concurrent runs serialise. A file whose
 * content changed after it was applied stops the run before anything is
 * applied. An up-to-date database is left untouched. */
#ifndef TW_MIGRATE_H
#define TW_MIGRATE_H

#include <stddef.h>
#include <stdint.h>

typedef struct tw_migration {
    int version;
    char *name;   /* "0001_events.sql" */
    char *path;   /* full path */
    char *sql;    /* file content */
    char sha256[65];
} tw_migration;

typedef struct tw_migration_set {
    tw_migration *items;
    size_t n;
} tw_migration_set;

/* Read every migration file in `dir` into `out`, sorted by version.
 * Files that do not look like NNNN_*.sql are ignored; two files with one
 * version, an unreadable file or a malformed name starting with digits are
 * errors. Returns 0, or -1 with a message in err. */
int tw_migrations_load(const char *dir, tw_migration_set *out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

void tw_migrations_free(tw_migration_set *set);

/* Hex SHA-256 of data (OpenSSL). out gets 64 hex digits and a NUL. */
void tw_sha256_hex(const void *data, size_t len, char out[65]);

typedef struct tw_migrate_report {
    int applied;    /* migrations applied by this run */
    int up_to_date; /* migrations already applied before */
} tw_migrate_report;

struct pg_conn;

/* Called after each failed connection attempt that will be retried:
 * attempt number (1, 2, ...), libpq's reason (one line), and the delay in
 * milliseconds before the next attempt. */
typedef void (*tw_migrate_retry_fn)(void *arg, int attempt, const char *why, int64_t delay_ms);

/* Connect with libpq (blocking), retrying failed attempts with exponential
 * backoff (250 ms, doubling up to 5 s) until timeout_ms has passed since the
 * first attempt (0: a single attempt). A database still starting up, a
 * host not yet resolvable and a refused connection all look alike to
 * libpq, so every failure is retried. Unless the connection string sets
 * connect_timeout, each attempt is bounded by the time left (at least 2 s),
 * so an unreachable host cannot stretch the wait much past timeout_ms.
 * on_retry (may be NULL) is called before each wait. Returns a connected
 * PGconn the caller PQfinish'es, or NULL with "after N attempts in S s:
 * <libpq's reason>" (or why the string is unusable) in err. */
struct pg_conn *tw_migrate_connect(const char *conninfo, int64_t timeout_ms,
                                   tw_migrate_retry_fn on_retry, void *arg, char *err,
                                   size_t errlen) __attribute__((warn_unused_result));

/* Apply pending migrations on a connected libpq connection (blocking).
 * `progress` (may be NULL) is called before each one is applied. Returns 0,
 * or -1 with a message in err; a failed migration's transaction is rolled
 * back and later ones are not attempted. */
int tw_migrate_apply(struct pg_conn *conn, const tw_migration_set *set, tw_migrate_report *report,
                     void (*progress)(void *arg, const tw_migration *m), void *arg, char *err,
                     size_t errlen) __attribute__((warn_unused_result));

#endif
