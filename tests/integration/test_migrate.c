/* tidewatch-migrate against a real PostgreSQL: applies in order once,
 * no-op when up to date, refuses changed files, rolls back a failing one,
 * serialises concurrent runs, and waits for a database that is not up yet
 * (Compose starts it alongside PostgreSQL) or gives up clearly. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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

/* Start tidewatch-migrate against `url` with its output going to the file
 * `log`; returns its pid. */
static pid_t migrate_async(const char *url, const char *timeout, const char *log)
{
    char bin[512], u[600], d[300], t[64];
    tw_test_bin("tidewatch-migrate", bin, sizeof bin);
    snprintf(u, sizeof u, "--database-url=%s", url);
    snprintf(d, sizeof d, "--dir=%s", dir);
    snprintf(t, sizeof t, "--connect-timeout=%s", timeout);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        char *argv[] = {bin, u, d, t, NULL};
        execv(bin, argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void read_log(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "open %s", path);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
}

Test(migrate, waits_for_a_database_that_comes_up_later)
{
    tw_test_cluster cl;
    tw_test_cluster_create(&cl);
    tw_test_cluster_stop(&cl, "fast");
    char log[300], out[8192];
    snprintf(log, sizeof log, "%s/migrate.log", dir);
    pid_t pid = migrate_async(cl.url, "60s", log);
    sleep(2); /* a few refused attempts */
    tw_test_cluster_start(&cl);
    int rc = wait_exit(pid);
    read_log(log, out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "cannot connect to the database (attempt 1)"), "%s", out);
    cr_assert(strstr(out, "retrying in"), "%s", out);
    cr_assert(strstr(out, "applied 2 migration(s)"), "%s", out);
    tw_test_cluster_destroy(&cl);
}

Test(migrate, gives_up_after_the_connect_timeout_with_the_reason)
{
    char log[300], out[8192], url[400];
    snprintf(log, sizeof log, "%s/migrate.log", dir);
    snprintf(url, sizeof url, "host=%s/no-server-here dbname=x user=postgres", dir);
    time_t t0 = time(NULL);
    pid_t pid = migrate_async(url, "2s", log);
    int rc = wait_exit(pid);
    time_t took = time(NULL) - t0;
    read_log(log, out, sizeof out);
    cr_assert_eq(rc, 1, "%s", out);
    cr_assert(strstr(out, "retrying in"), "it retried: %s", out);
    cr_assert(strstr(out, "cannot connect to the database after "), "%s", out);
    cr_assert(strstr(out, " attempts in "), "%s", out);
    cr_assert(took >= 1, "kept trying for the connect timeout (took %lds)", (long)took);
    cr_assert(took < 30, "then gave up (took %lds)", (long)took);
    cr_assert(strstr(out, "no-server-here"), "names where it tried: %s", out);
}
