/* Spawning a Tidewatch daemon as a real process for attack tests, and
 * watching its memory, CPU and log from outside (/proc). */
#ifndef TW_TEST_SUPPORT_DAEMON_H
#define TW_TEST_SUPPORT_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

typedef struct tw_test_daemon {
    pid_t pid;
    int port;       /* its gRPC port */
    char dir[64];   /* temp dir */
    char log[128];  /* its stdout and stderr */
} tw_test_daemon;

/* Start TW_BIN_DIR/<prog> with --listen 127.0.0.1:0 --metrics-listen ""
 * followed by `args` (NULL-terminated, may be NULL; later flags win). When
 * nofile > 0 the child's RLIMIT_NOFILE (soft and hard) is set to it. Waits
 * (up to 10 s) until the daemon logs its port. Asserts on failure. */
void tw_test_daemon_start(tw_test_daemon *d, const char *prog, const char *const *args,
                          long nofile);

/* SIGTERM, wait up to 10 s (then SIGKILL), remove the temp dir. Returns the
 * exit status (128 + signal if killed). Safe on a zeroed struct. */
int tw_test_daemon_stop(tw_test_daemon *d);

/* A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); asserts. */
long tw_test_proc_kib(pid_t pid, const char *field);

/* User + system CPU seconds the process has used so far. */
double tw_test_proc_cpu_seconds(pid_t pid);

/* Size of a file in bytes (-1 if missing). */
long tw_test_file_size(const char *path);

/* Whether the file contains `needle`. */
int tw_test_file_contains(const char *path, const char *needle);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int tw_test_free_port(void);

/* Blocking TCP connection to 127.0.0.1:port; returns the fd or -1. */
int tw_test_tcp_connect(int port);

/* Sleep for ms milliseconds. */
void tw_test_sleep_ms(int ms);

#endif
