/* tidewatch-migrate: applies migrations/NNNN_*.sql in order, once, under an
 * advisory lock; refuses to run if an applied file changed. */
#include <libpq-fe.h>
#include <stddef.h>
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
} config;


static const tw_setting settings[] = {
    {.name = "database_url", .env = "TIDEWATCH_DATABASE_URL", .flag = "database-url",
     .type = TW_SET_STRING, .def = "", .secret = 1,
     .help = "libpq connection string (empty: libpq's PG* defaults)",
     .offset = offsetof(config, database_url)},
    {.name = "migrations_dir", .env = "TIDEWATCH_MIGRATIONS_DIR", .flag = "dir",
     .type = TW_SET_STRING, .def = TW_MIGRATIONS_DIR, .help = "directory of NNNN_name.sql files",
     .offset = offsetof(config, dir)},
    {.name = "log_level", .env = "TIDEWATCH_LOG_LEVEL", .flag = "log-level", .type = TW_SET_ENUM,
     .def = "info", .choices = tw_log_level_names, .help = "least severe level logged",
     .offset = offsetof(config, log_level)},
};

static void notice(void *arg, const char *message)
{
    (void)arg;
    TW_DEBUG(NULL, "postgres: %s", message);
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
    conn = PQconnectdb(cfg.database_url);
    if (PQstatus(conn) != CONNECTION_OK) {
        TW_ERROR(NULL, "cannot connect to the database: %s", PQerrorMessage(conn));
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
