#ifndef TW_TEST_SUPPORT_PG_H
#define TW_TEST_SUPPORT_PG_H

#include <libpq-fe.h>
#include <stddef.h>

typedef struct tw_test_db {
    char name[64];
    char url[512];
} tw_test_db;

/* Create an empty database named after `label` on the test server; its
 * connection string goes to db->url. Asserts on failure. */
void tw_test_db_create(tw_test_db *db, const char *label);
void tw_test_db_drop(tw_test_db *db);

/* Connect or fail the test. */
PGconn *tw_test_connect(const char *url);

/* First column of the single row `sql` returns (malloc'd). */
char *tw_test_query1(PGconn *c, const char *sql);

/* Path of a built binary in TW_BIN_DIR. */
const char *tw_test_bin(const char *name, char *buf, size_t len);

/* Run argv (argv[0] a path) to completion; stdout and stderr go to out.
 * Returns the exit status (128 + signal when killed). */
int tw_test_run(char *out, size_t outlen, char *const argv[]);

/* A private PostgreSQL cluster that a test owns and may stop, restart or
 * crash (the server tests/run.sh starts is shared by the suites and must
 * not be disturbed). It lives in a fresh temp dir that is also its unix
 * socket directory; no TCP. As root the server runs as the `postgres` user
 * (runuser). Binaries from TW_PG_BINDIR, else /usr/lib/postgresql/15/bin. */
typedef struct tw_test_cluster {
    char dir[128];   /* temp dir: data in dir/data, log in dir/log, socket here */
    char url[256];   /* "host=<dir> user=postgres dbname=postgres" */
    char bindir[256];
} tw_test_cluster;

/* initdb a new cluster in a temp dir and start it (a couple of seconds).
 * Asserts on failure. */
void tw_test_cluster_create(tw_test_cluster *c);
/* Stop the server; mode is pg_ctl's: "smart", "fast" or "immediate". */
void tw_test_cluster_stop(tw_test_cluster *c, const char *mode);
/* Start the server again (after tw_test_cluster_stop, or a crash). */
void tw_test_cluster_start(tw_test_cluster *c);
/* Stop, then start. */
void tw_test_cluster_restart(tw_test_cluster *c, const char *mode);
/* Stop the server (immediate) if running and delete the directory. Safe on
 * a zeroed struct and to call twice. */
void tw_test_cluster_destroy(tw_test_cluster *c);

#endif
