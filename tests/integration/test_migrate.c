/* tidewatch-migrate against a real PostgreSQL: applies in order once,
 * no-op when up to date, refuses changed files, rolls back a failing one,
 * and serialises concurrent runs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support_pg.h"
#include "tw_migrate.h"

static tw_test_db db;
static char dir[256];

static void write_file(const char *name, const char *content)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert(f, "open %s", path);
    fputs(content, f);
    fclose(f);
}

static int migrate(char *out, size_t outlen)
{
    char bin[512], url[600], d[300];
    tw_test_bin("tidewatch-migrate", bin, sizeof bin);
    snprintf(url, sizeof url, "--database-url=%s", db.url);
    snprintf(d, sizeof d, "--dir=%s", dir);
    char *argv[] = {bin, url, d, NULL};
    return tw_test_run(out, outlen, argv);
}

static void setup(void)
{
    tw_test_db_create(&db, "migrate");
    snprintf(dir, sizeof dir, "/tmp/tw-migrations-XXXXXX");
    cr_assert(mkdtemp(dir));
    write_file("0001_first.sql", "CREATE TABLE a (id int);\n");
    write_file("0002_second.sql", "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1), (2);\n");
    write_file("README.md", "not a migration\n");
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert(system(cmd) == 0);
    tw_test_db_drop(&db);
}

TestSuite(migrate, .init = setup, .fini = teardown, .timeout = 60);

static int count(PGconn *c, const char *sql)
{
    char *v = tw_test_query1(c, sql);
    int n = atoi(v);
    free(v);
    return n;
}

Test(migrate, applies_in_order_once_then_noop)
{
    char out[4096];
    cr_assert_eq(migrate(out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "applied 2 migration(s)"), "%s", out);
    PGconn *c = tw_test_connect(db.url);
    cr_assert_eq(count(c, "SELECT count(*) FROM tidewatch_migrations"), 2);
    cr_assert_eq(count(c, "SELECT count(*) FROM b"), 2);
    char *first = tw_test_query1(c, "SELECT name FROM tidewatch_migrations ORDER BY version LIMIT 1");
    cr_assert_str_eq(first, "0001_first.sql");
    free(first);

    cr_assert_eq(migrate(out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "up to date"), "%s", out);
    cr_assert_eq(count(c, "SELECT count(*) FROM b"), 2, "second run must not re-apply");

    write_file("0003_third.sql", "ALTER TABLE a ADD COLUMN note text;\n");
    cr_assert_eq(migrate(out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "applied 1 migration(s); 2 were already applied"), "%s", out);
    PQfinish(c);
}

Test(migrate, refuses_a_changed_file_and_changes_nothing)
{
    char out[4096];
    cr_assert_eq(migrate(out, sizeof out), 0, "%s", out);
    write_file("0001_first.sql", "CREATE TABLE a (id bigint);\n");
    write_file("0003_third.sql", "CREATE TABLE c (id int);\n");
    cr_assert_neq(migrate(out, sizeof out), 0);
    cr_assert(strstr(out, "0001_first.sql changed after it was applied"), "%s", out);
    PGconn *c = tw_test_connect(db.url);
    cr_assert_eq(count(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'"), 0,
                 "nothing applied after a refusal");
    PQfinish(c);
}

Test(migrate, failing_migration_rolls_back)
{
    write_file("0003_broken.sql", "CREATE TABLE c (id int);\nSELECT no_such_function();\n");
    char out[4096];
    cr_assert_neq(migrate(out, sizeof out), 0);
    cr_assert(strstr(out, "0003_broken.sql failed"), "%s", out);
    PGconn *c = tw_test_connect(db.url);
    cr_assert_eq(count(c, "SELECT count(*) FROM tidewatch_migrations"), 2);
    cr_assert_eq(count(c, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'"), 0);
    PQfinish(c);
}

Test(migrate, bad_names_are_errors)
{
    write_file("0004-oops.sql", "SELECT 1;\n");
    char out[4096];
    cr_assert_neq(migrate(out, sizeof out), 0);
    cr_assert(strstr(out, "0004-oops.sql"), "%s", out);
}

Test(migrate, concurrent_runs_apply_each_once)
{
    write_file("0003_slow.sql", "SELECT pg_sleep(0.5);\nCREATE TABLE c (id int);\n");
    pid_t pids[4];
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        cr_assert(pids[i] >= 0);
        if (pids[i] == 0)
            _exit(migrate(NULL, 0));
    }
    for (int i = 0; i < 4; i++) {
        int st;
        cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "run %d failed", i);
    }
    PGconn *c = tw_test_connect(db.url);
    cr_assert_eq(count(c, "SELECT count(*) FROM tidewatch_migrations"), 3);
    PQfinish(c);
}

Test(migrate, sha256_matches_openssl_reference)
{
    char hex[65];
    tw_sha256_hex("abc", 3, hex);
    cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
