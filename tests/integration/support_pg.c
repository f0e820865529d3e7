/* Helpers shared by the integration suites: a scratch database per test on
 * the throwaway server that tests/run.sh starts (TW_TEST_DATABASE_URL), and
 * running the project's binaries as real processes. */
#include "support_pg.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *admin_url(void)
{
    const char *url = getenv("TW_TEST_DATABASE_URL");
    cr_assert(url && url[0], "TW_TEST_DATABASE_URL is not set: run the suites through tests/run.sh");
    return url;
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *tw_test_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    cr_assert(PQstatus(c) == CONNECTION_OK, "connect %s: %s", url, PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

static void admin_exec(const char *sql)
{
    PGconn *c = tw_test_connect(admin_url());
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

void tw_test_db_create(tw_test_db *db, const char *label)
{
    static int seq;
    snprintf(db->name, sizeof db->name, "tw_%s_%d_%d", label, (int)getpid(), ++seq);
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db->name);
    admin_exec(sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db->name);
    admin_exec(sql);
    snprintf(db->url, sizeof db->url, "%s dbname=%s", admin_url(), db->name);
}

void tw_test_db_drop(tw_test_db *db)
{
    if (!db->name[0])
        return;
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    admin_exec(sql);
    db->name[0] = '\0';
}

char *tw_test_query1(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(r));
    cr_assert(PQntuples(r) == 1 && PQnfields(r) >= 1, "%s: expected one row", sql);
    char *v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

const char *tw_test_bin(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("TW_BIN_DIR");
    cr_assert(dir, "TW_BIN_DIR is not set (CTest sets it)");
    snprintf(buf, len, "%s/%s", dir, name);
    cr_assert(access(buf, X_OK) == 0, "%s is not built", buf);
    return buf;
}

int tw_test_run(char *out, size_t outlen, char *const argv[])
{
    int pipefd[2];
    cr_assert(pipe(pipefd) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        close(pipefd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t n = 0;
    ssize_t r;
    char sink[4096];
    while ((r = read(pipefd[0], out && n + 1 < outlen ? out + n : sink,
                     out && n + 1 < outlen ? outlen - n - 1 : sizeof sink)) > 0)
        if (out && n + 1 < outlen)
            n += (size_t)r;
    close(pipefd[0]);
    if (out && outlen)
        out[n] = '\0';
    int status;
    cr_assert(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
