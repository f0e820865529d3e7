/* Spawning daemons for attack tests; see support_daemon.h. */
#include "support_daemon.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void tw_test_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

long tw_test_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

int tw_test_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* The port from the daemon's "serving gRPC on ... (port N)" line, or 0. */
static int logged_port(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int port = 0;
    while (!port && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "serving gRPC on");
        if (p && (p = strstr(p, "(port ")))
            port = atoi(p + 6);
    }
    fclose(f);
    return port;
}

void tw_test_daemon_start(tw_test_daemon *d, const char *prog, const char *const *args,
                          long nofile)
{
    memset(d, 0, sizeof *d);
    const char *bindir = getenv("TW_BIN_DIR");
    cr_assert(bindir, "TW_BIN_DIR is not set (CTest sets it)");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", bindir, prog);
    cr_assert(access(path, X_OK) == 0, "%s is not built", path);
    snprintf(d->dir, sizeof d->dir, "/tmp/tw-daemon-XXXXXX");
    cr_assert(mkdtemp(d->dir), "mkdtemp: %s", strerror(errno));
    snprintf(d->log, sizeof d->log, "%s/log", d->dir);

    char *argv[64];
    int n = 0;
    argv[n++] = path;
    argv[n++] = (char *)"--listen";
    argv[n++] = (char *)"127.0.0.1:0";
    argv[n++] = (char *)"--metrics-listen";
    argv[n++] = (char *)"";
    for (int i = 0; args && args[i] && n < 63; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;

    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        int nullfd = open("/dev/null", O_RDONLY);
        if (nullfd >= 0) {
            dup2(nullfd, 0);
            close(nullfd);
        }
        /* Close whatever else the test process has open. */
        for (int i = 3; i < 1024; i++)
            close(i);
        /* Under AddressSanitizer, freed blocks wait in a quarantine and stay
         * resident: the memory the tests watch would be ASan's, not ours. */
        char asan[1024];
        const char *ao = getenv("ASAN_OPTIONS");
        snprintf(asan, sizeof asan, "%s%squarantine_size_mb=0", ao ? ao : "", ao && *ao ? ":" : "");
        setenv("ASAN_OPTIONS", asan, 1);
        if (nofile > 0) {
            struct rlimit rl = {.rlim_cur = (rlim_t)nofile, .rlim_max = (rlim_t)nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                _exit(125);
        }
        execv(argv[0], argv);
        _exit(127);
    }
    d->pid = pid;
    for (int waited = 0; waited < 10000; waited += 10) {
        d->port = logged_port(d->log);
        if (d->port)
            return;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            d->pid = 0;
            char cat[600];
            snprintf(cat, sizeof cat, "%s", d->log);
            cr_assert_fail("%s exited before serving (status %d); log in %s", prog, status, cat);
        }
        tw_test_sleep_ms(10);
    }
    cr_assert_fail("%s did not log its port within 10 s (log %s)", prog, d->log);
}

int tw_test_daemon_stop(tw_test_daemon *d)
{
    int rc = -1;
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        int status = 0;
        int done = 0;
        for (int waited = 0; waited < 10000 && !done; waited += 10) {
            if (waitpid(d->pid, &status, WNOHANG) == d->pid)
                done = 1;
            else
                tw_test_sleep_ms(10);
        }
        if (!done) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &status, 0);
        }
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        d->pid = 0;
    }
    if (d->dir[0]) {
        unlink(d->log);
        rmdir(d->dir);
        d->dir[0] = '\0';
    }
    return rc;
}

long tw_test_proc_kib(pid_t pid, const char *field)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f, "open %s: %s", path, strerror(errno));
    char line[256];
    size_t flen = strlen(field);
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kib = atol(line + flen + 1);
            break;
        }
    fclose(f);
    cr_assert(kib >= 0, "no %s in %s", field, path);
    return kib;
}

double tw_test_proc_cpu_seconds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    cr_assert(f, "open %s: %s", path, strerror(errno));
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after the command name (which may hold spaces) start after
     * the last ')': state is field 3, utime 14, stime 15. */
    char *p = strrchr(buf, ')');
    cr_assert(p, "malformed %s", path);
    unsigned long long utime = 0, stime = 0;
    int got = sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                     &stime);
    cr_assert_eq(got, 2, "malformed %s", path);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

int tw_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

int tw_test_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}
