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

#endif
