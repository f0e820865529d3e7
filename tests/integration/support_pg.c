/* Helpers shared by the integration suites: a scratch database per test on
 * the throwaway server that tests/run.sh starts (TW_TEST_DATABASE_URL), and
 * running the project's binaries as real processes. */
#include "support_pg.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pwd.h>
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

/* ---- Private clusters -------------------------------------------------- */

static const char *runuser_path(void)
{
    static const char *const cands[] = {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (access(cands[i], X_OK) == 0)
            return cands[i];
    return NULL;
}

/* Run a server program (args[0] a path) as the cluster owner: `postgres`
 * when we are root. Returns its exit status; output goes to out. */
static int cluster_run(char *out, size_t outlen, const char *const args[])
{
    char *argv[32];
    int n = 0;
    if (geteuid() == 0) {
        const char *ru = runuser_path();
        cr_assert(ru, "running as root but runuser is missing");
        argv[n++] = (char *)ru;
        argv[n++] = (char *)"-u";
        argv[n++] = (char *)"postgres";
        argv[n++] = (char *)"--";
    }
    for (int i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    return tw_test_run(out, outlen, argv);
}

void tw_test_cluster_create(tw_test_cluster *c)
{
    memset(c, 0, sizeof *c);
    const char *bindir = getenv("TW_PG_BINDIR");
    snprintf(c->bindir, sizeof c->bindir, "%s",
             bindir && bindir[0] ? bindir : "/usr/lib/postgresql/15/bin");
    snprintf(c->dir, sizeof c->dir, "/tmp/tw-pgc-XXXXXX");
    cr_assert(mkdtemp(c->dir), "mkdtemp: %s", strerror(errno));
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam("postgres");
        cr_assert(pw, "running as root but there is no postgres user to run the server as");
        cr_assert(chown(c->dir, pw->pw_uid, pw->pw_gid) == 0, "chown %s: %s", c->dir,
                  strerror(errno));
    }
    char initdb[300], data[160], out[4096];
    snprintf(initdb, sizeof initdb, "%s/initdb", c->bindir);
    snprintf(data, sizeof data, "%s/data", c->dir);
    const char *args[] = {initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                          "--locale=C", "--no-sync", NULL};
    int st = cluster_run(out, sizeof out, args);
    cr_assert_eq(st, 0, "initdb failed (%d): %s", st, out);

    char conf[200];
    snprintf(conf, sizeof conf, "%s/postgresql.conf", data);
    FILE *f = fopen(conf, "a");
    cr_assert(f, "open %s: %s", conf, strerror(errno));
    fputs("\n# test cluster\nlisten_addresses = ''\nmax_connections = 50\nshared_buffers = 16MB\n"
          "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
          "log_min_messages = warning\n",
          f);
    cr_assert(fclose(f) == 0);
    snprintf(c->url, sizeof c->url, "host=%s user=postgres dbname=postgres", c->dir);
    tw_test_cluster_start(c);
}

void tw_test_cluster_start(tw_test_cluster *c)
{
    char pg_ctl[300], data[160], log[160], opts[200], out[4096];
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
    snprintf(data, sizeof data, "%s/data", c->dir);
    snprintf(log, sizeof log, "%s/log", c->dir);
    snprintf(opts, sizeof opts, "-k %s", c->dir);
    const char *args[] = {pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", opts, "start",
                          NULL};
    int st = cluster_run(out, sizeof out, args);
    cr_assert_eq(st, 0, "pg_ctl start failed (%d): %s (see %s)", st, out, log);
}

void tw_test_cluster_stop(tw_test_cluster *c, const char *mode)
{
    char pg_ctl[300], data[160], out[4096];
    snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
    snprintf(data, sizeof data, "%s/data", c->dir);
    const char *args[] = {pg_ctl, "-D", data, "-m", mode, "-w", "-t", "60", "stop", NULL};
    int st = cluster_run(out, sizeof out, args);
    cr_assert_eq(st, 0, "pg_ctl stop -m %s failed (%d): %s", mode, st, out);
}

void tw_test_cluster_restart(tw_test_cluster *c, const char *mode)
{
    tw_test_cluster_stop(c, mode);
    tw_test_cluster_start(c);
}

void tw_test_cluster_destroy(tw_test_cluster *c)
{
    if (!c->dir[0])
        return;
    char pidfile[200];
    snprintf(pidfile, sizeof pidfile, "%s/data/postmaster.pid", c->dir);
    if (access(pidfile, F_OK) == 0) {
        char pg_ctl[300], data[160];
        snprintf(pg_ctl, sizeof pg_ctl, "%s/pg_ctl", c->bindir);
        snprintf(data, sizeof data, "%s/data", c->dir);
        const char *args[] = {pg_ctl, "-D", data, "-m", "immediate", "-w", "stop", NULL};
        (void)cluster_run(NULL, 0, args);
    }
    char *rm[] = {(char *)"/bin/rm", (char *)"-rf", c->dir, NULL};
    (void)tw_test_run(NULL, 0, rm);
    c->dir[0] = '\0';
}
