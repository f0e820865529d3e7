/* tidewatch-migrate: applies migrations/NNNN_*.sql in order, once, under an
 * advisory lock; refuses to run if an applied file changed. */
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tw_log.h"
#include "tw_migrate.h"
#include "tw_settings.h"

#ifndef TW_MIGRATIONS_DIR
#define TW_MIGRATIONS_DIR "migrations"
#endif

typedef struct config {
    char *database_url;
    char *dir;
    int log_level;
    int64_t connect_timeout_ms;
} config;


static const tw_setting settings[] = {
    {.name = "database_url", .env = "TIDEWATCH_DATABASE_URL", .flag = "database-url",
     .type = TW_SET_STRING, .def = "", .secret = 1,
     .help = "libpq connection string (empty: libpq's PG* defaults)",
     .offset = offsetof(config, database_url)},
    {.name = "migrations_dir", .env = "TIDEWATCH_MIGRATIONS_DIR", .flag = "dir",
     .type = TW_SET_STRING, .def = TW_MIGRATIONS_DIR, .help = "directory of NNNN_name.sql files",
     .offset = offsetof(config, dir)},
    {.name = "connect_timeout", .env = "TIDEWATCH_CONNECT_TIMEOUT", .flag = "connect-timeout",
     .type = TW_SET_DURATION_MS, .def = "60s", .min = 0, .max = 3600000,
     .help = "keep retrying the connection this long (a database still starting); 0: try once",
     .offset = offsetof(config, connect_timeout_ms)},
    {.name = "log_level", .env = "TIDEWATCH_LOG_LEVEL", .flag = "log-level", .type = TW_SET_ENUM,
     .def = "info", .choices = tw_log_level_names, .help = "least severe level logged",
     .offset = offsetof(config, log_level)},
};

static void notice(void *arg, const char *message)
{
    (void)arg;
    TW_DEBUG(NULL, "postgres: %s", message);
}

static void retrying(void *arg, int attempt, const char *why, int64_t delay_ms)
{
    (void)arg;
    TW_WARN(NULL, "cannot connect to the database (attempt %d): %s; retrying in %lld ms", attempt,
            why, (long long)delay_ms);
}

static void progress(void *arg, const tw_migration *m)
{
    (void)arg;
    TW_INFO(NULL, "applying %s", m->name);
}

int main(int argc, char **argv)
{
    config cfg = {0};
    char err[1024];
    size_t n = sizeof settings / sizeof settings[0];
    tw_settings_about about = {.program = "tidewatch-migrate",
                               .summary = "apply the database migrations, once, in order"};
    int rv = tw_settings_load(settings, n, &cfg, argc, argv, &about, err, sizeof err);
    if (rv != 0) {
        if (rv < 0)
            fprintf(stderr, "tidewatch-migrate: %s\ntidewatch-migrate: try --help\n", err);
        tw_settings_free(settings, n, &cfg);
        return rv < 0 ? 2 : 0;
    }
    tw_log_init("migrate", (tw_log_level)cfg.log_level, TW_LOG_FORMAT_TEXT);

    int status = 1;
    tw_migration_set set = {0};
    PGconn *conn = NULL;
    if (tw_migrations_load(cfg.dir, &set, err, sizeof err) != 0) {
        TW_ERROR(NULL, "%s", err);
        goto out;
    }
    conn = tw_migrate_connect(cfg.database_url, cfg.connect_timeout_ms, retrying, NULL, err,
                              sizeof err);
    if (!conn) {
        TW_ERROR(NULL, "cannot connect to the database %s", err);
        goto out;
    }
    PQsetNoticeProcessor(conn, notice, NULL);
    tw_migrate_report report;
    if (tw_migrate_apply(conn, &set, &report, progress, NULL, err, sizeof err) != 0) {
        TW_ERROR(NULL, "%s", err);
        goto out;
    }
    if (report.applied)
        TW_INFO(NULL, "applied %d migration(s); %d were already applied", report.applied,
                report.up_to_date);
    else
        TW_INFO(NULL, "up to date (%d migration(s) applied)", report.up_to_date);
    status = 0;
out:
    PQfinish(conn);
    tw_migrations_free(&set);
    tw_settings_free(settings, n, &cfg);
    tw_log_shutdown();
    return status;
}
