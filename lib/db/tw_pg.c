/* tw_pg: asynchronous PostgreSQL on libevent (see tw_pg.h for the contract).
 *
 * How it works. Work is a job: a user query (one statement), a user batch
 * (n statements), or an internal setup job (PREPARE one registered
 * statement, LISTEN one channel). Jobs move through three queues:
 *
 *   pending   accepted, not yet handed to libpq
 *   inflight  handed to libpq, answer not complete yet (in order)
 *   done      failed at submission (not connected), callback not yet run
 *
 * In pipeline mode each job is sent as its statements followed by one
 * PQpipelineSync, so each job is its own implicit transaction and an error
 * aborts that job only. libpq 15 hands back, per statement, one result then
 * NULL (PGRES_PIPELINE_ABORTED for statements skipped after an error), and
 * per Sync one PGRES_PIPELINE_SYNC result with no NULL after it; a job is
 * complete at its Sync, which is also its commit point.
 *
 * A job with a COPY step is "sequential": when it reaches the head of the
 * pending queue it waits for the pipeline to drain, the connection leaves
 * pipeline mode, and the job runs statement by statement (BEGIN; steps;
 * COMMIT, or ROLLBACK after an error), streaming COPY data with
 * PQputCopyData as the socket drains; then pipeline mode resumes.
 *
 * Everything happens in pump(), run from the socket events and from a
 * "kick" event that the public functions activate; public functions never
 * touch the socket and never call callbacks themselves. */
#include "tw_pg.h"

#include <event2/event.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "tw_log.h"

#define PG_MAX_PARAMS 65535
#define PG_MAX_IDENT 63            /* NAMEDATALEN - 1: longer channel names get truncated */
#define COPY_CHUNK (64 * 1024)     /* bytes per PQputCopyData */
#define COPY_BUDGET (1024 * 1024)  /* bytes per turn of the loop, for fairness */
#define STABLE_MS 1000             /* a connection up this long resets the backoff */

enum { ST_DOWN, ST_CONNECTING, ST_UP };
enum { MODE_PIPELINE, MODE_SEQ };
enum { JOB_QUERY, JOB_BATCH, JOB_PREPARE, JOB_LISTEN };
enum { SEQ_BEGIN, SEQ_STEPS, SEQ_COMMIT, SEQ_ROLLBACK };

typedef struct pg_step {
    char *stmt;
    int prepared; /* stmt names a registered statement */
    int nparams;
    char **values;
    int *lengths;
    int *formats;
    int result_format;
    int copy;
    char *copy_data;
    size_t copy_len;
    tw_pg_copy_source source;
    void *source_arg;
} pg_step;

typedef struct pg_job {
    TAILQ_ENTRY(pg_job) link;
    int type;
    int sequential;
    size_t reg; /* JOB_PREPARE, JOB_LISTEN: index in the registry */
    pg_step *steps;
    size_t nsteps;
    PGresult **results;
    size_t nslots;
    tw_pg_cb cb;
    void *arg;

    /* Progress. */
    size_t step;       /* statement whose result comes next */
    int awaiting_null; /* its result came; the NULL that ends it has not */
    int sync_sent;     /* pipeline: the Sync (commit point) is in libpq */
    int commit_sent;   /* sequential: COMMIT is in libpq */
    int seq_phase;
    int copied;        /* sequential: the current step entered COPY IN */
    int copying;       /* sequential: sending COPY data */
    int copy_abort, copy_eof;
    const char *chunk;
    size_t chunk_len;

    /* Failure, first one wins. */
    tw_pg_kind kind;
    int failed_step;
    char sqlstate[6];
    char *message;
    PGresult *error;
} pg_job;

typedef struct pg_jobq {
    TAILQ_HEAD(pg_jobh, pg_job) h;
    size_t n;
} pg_jobq;

typedef struct pg_prep {
    char *name;
    char *sql;
    int nparams;
    Oid *types;
} pg_prep;

typedef struct pg_listener {
    char *channel;
    tw_pg_notify_cb cb;
    void *arg;
} pg_listener;

struct tw_pg {
    struct event_base *base;
    /* The connection parameters, NULL-terminated, for PQconnectStartParams:
     * the connection string's, with our session settings merged into
     * "options" (see build_params). */
    char **keys, **vals;
    char *name;
    tw_pg_opts opts;

    PGconn *conn;
    int state;
    int mode;
    struct event *ev_io;    /* connecting: one-shot, read or write as libpq asks */
    struct event *ev_read;  /* up: persistent */
    struct event *ev_write; /* up: one-shot, armed while output is pending */
    struct event *ev_retry;
    struct event *ev_ctimeout;
    struct event *ev_kick;

    pg_jobq pending, inflight, done;
    size_t user_jobs;

    pg_prep *preps;
    size_t npreps;
    pg_listener *listens;
    size_t nlistens;

    int backoff_ms;
    unsigned fail_streak;
    unsigned connections;
    int64_t up_since_ms;
    uint64_t rng;
    int fatal_seen; /* PostgreSQL reported this session terminated */
    int closing;
    char last_error[256];
    char drop_reason[256]; /* why io_round gave up, when libpq does not say */
};

/* ---- Small helpers ---------------------------------------------------- */

static void pglog(const tw_pg *pg, tw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pglog(const tw_pg *pg, tw_log_level level, const char *fmt, ...)
{
    if (level < tw_log_threshold)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    tw_log_write(level, NULL, "pg %s: %s", pg->name, buf);
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Copy src into dst (n bytes) as one line without trailing white space
 * (libpq's messages end with a newline and may span several lines). */
static void trim_copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
    char *w = dst;
    for (const char *r = dst; *r; r++) {
        if (*r == '\n' || *r == '\t') {
            if (w > dst && w[-1] != ' ' && r[1] && r[1] != '\n' && r[1] != '\t')
                *w++ = ' ';
            continue;
        }
        *w++ = *r;
    }
    *w = '\0';
    size_t len = strlen(dst);
    while (len > 0 && (dst[len - 1] == '\n' || dst[len - 1] == ' ' || dst[len - 1] == '\r'))
        dst[--len] = '\0';
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t next_rand(tw_pg *pg)
{
    /* xorshift64*: jitter only, no need for quality. */
    uint64_t x = pg->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    pg->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

const char *tw_pg_kind_name(tw_pg_kind kind)
{
    switch (kind) {
    case TW_PG_OK: return "ok";
    case TW_PG_QUERY_ERROR: return "query error";
    case TW_PG_NOT_CONNECTED: return "not connected";
    case TW_PG_CONNECTION_LOST: return "connection lost";
    case TW_PG_OUTCOME_UNKNOWN: return "outcome unknown";
    case TW_PG_SHUTDOWN: return "shutdown";
    }
    return "?";
}

/* ---- Queues ------------------------------------------------------------ */

static void q_init(pg_jobq *q)
{
    TAILQ_INIT(&q->h);
    q->n = 0;
}

static void q_push(pg_jobq *q, pg_job *j)
{
    TAILQ_INSERT_TAIL(&q->h, j, link);
    q->n++;
}

static pg_job *q_pop(pg_jobq *q)
{
    pg_job *j = TAILQ_FIRST(&q->h);
    if (j) {
        TAILQ_REMOVE(&q->h, j, link);
        q->n--;
    }
    return j;
}

/* Move every job of src to the (empty) dst. */
static void q_take(pg_jobq *dst, pg_jobq *src)
{
    q_init(dst);
    pg_job *j;
    while ((j = q_pop(src)))
        q_push(dst, j);
}

/* ---- Jobs -------------------------------------------------------------- */

static void step_clear(pg_step *s)
{
    free(s->stmt);
    if (s->values)
        for (int i = 0; i < s->nparams; i++)
            free(s->values[i]);
    free(s->values);
    free(s->lengths);
    free(s->formats);
    free(s->copy_data);
}

static void job_free(pg_job *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->nsteps; i++)
        step_clear(&j->steps[i]);
    free(j->steps);
    for (size_t i = 0; i < j->nslots; i++)
        PQclear(j->results[i]);
    free(j->results);
    PQclear(j->error);
    free(j->message);
    free(j);
}

static pg_job *job_new(int type, size_t nsteps, size_t nslots)
{
    pg_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->type = type;
    j->failed_step = -1;
    j->nsteps = nsteps;
    j->nslots = nslots;
    if ((nsteps && !(j->steps = calloc(nsteps, sizeof *j->steps))) ||
        (nslots && !(j->results = calloc(nslots, sizeof *j->results)))) {
        j->nsteps = 0; /* nothing to clear in a partly allocated steps array */
        job_free(j);
        return NULL;
    }
    return j;
}

static const pg_prep *find_prep(const tw_pg *pg, const char *name)
{
    for (size_t i = 0; i < pg->npreps; i++)
        if (strcmp(pg->preps[i].name, name) == 0)
            return &pg->preps[i];
    return NULL;
}

/* Copy a caller's statement into d. Returns 0, or -1 on invalid arguments
 * or allocation failure (d is then cleared by job_free). */
static int step_init(const tw_pg *pg, pg_step *d, const tw_pg_stmt *s, int allow_copy)
{
    if (!s->stmt || !s->stmt[0] || s->nparams < 0 || s->nparams > PG_MAX_PARAMS)
        return -1;
    if (s->nparams > 0 && !s->values)
        return -1;
    if (s->result_format != 0 && s->result_format != 1)
        return -1;
    if (s->copy && (!allow_copy || s->nparams > 0 || (s->copy_len && !s->copy_data)))
        return -1;
    const pg_prep *p = find_prep(pg, s->stmt);
    if (p && p->nparams != s->nparams)
        return -1;
    for (int i = 0; i < s->nparams; i++)
        if (s->values[i] && s->formats && s->formats[i] && (!s->lengths || s->lengths[i] < 0))
            return -1;

    d->prepared = p != NULL;
    d->nparams = s->nparams;
    d->result_format = s->result_format;
    if (!(d->stmt = xstrdup(s->stmt)))
        return -1;
    if (s->nparams > 0) {
        size_t n = (size_t)s->nparams;
        if (!(d->values = calloc(n, sizeof *d->values)) ||
            !(d->lengths = calloc(n, sizeof *d->lengths)) ||
            !(d->formats = calloc(n, sizeof *d->formats)))
            return -1;
        for (size_t i = 0; i < n; i++) {
            const char *v = s->values[i];
            if (!v)
                continue;
            int binary = s->formats && s->formats[i];
            size_t len = binary ? (size_t)s->lengths[i] : strlen(v);
            if (len > INT_MAX || !(d->values[i] = malloc(len + 1)))
                return -1;
            memcpy(d->values[i], v, len);
            d->values[i][len] = '\0';
            d->lengths[i] = (int)len;
            d->formats[i] = binary;
        }
    }
    if (s->copy) {
        d->copy = 1;
        d->source = s->copy_source;
        d->source_arg = s->copy_source_arg;
        if (!s->copy_source && s->copy_len) {
            if (!(d->copy_data = malloc(s->copy_len)))
                return -1;
            memcpy(d->copy_data, s->copy_data, s->copy_len);
            d->copy_len = s->copy_len;
        }
    }
    return 0;
}

static void set_message(pg_job *j, const char *prefix, const char *detail)
{
    free(j->message);
    j->message = NULL;
    if (asprintf(&j->message, "%s%s%s", prefix, detail && detail[0] ? ": " : "",
                 detail ? detail : "") < 0)
        j->message = NULL;
}

/* ---- Completion -------------------------------------------------------- */

static void kick(tw_pg *pg)
{
    if (!pg->closing)
        event_active(pg->ev_kick, EV_TIMEOUT, 0);
}

static void internal_done(tw_pg *pg, pg_job *j)
{
    if (j->type == JOB_PREPARE) {
        if (j->kind == TW_PG_QUERY_ERROR)
            pglog(pg, TW_LOG_ERROR, "preparing statement \"%s\" failed: %s (SQLSTATE %s)",
                  pg->preps[j->reg].name, j->message ? j->message : "", j->sqlstate);
        return;
    }
    /* JOB_LISTEN */
    pg_listener l = pg->listens[j->reg];
    if (j->kind == TW_PG_OK) {
        if (!pg->closing)
            l.cb(l.arg, l.channel, NULL, 1);
    } else if (j->kind == TW_PG_QUERY_ERROR) {
        pglog(pg, TW_LOG_ERROR, "LISTEN \"%s\" failed: %s (SQLSTATE %s)", l.channel,
              j->message ? j->message : "", j->sqlstate);
    }
}

/* Run the job's callback and free it. The job is on no queue. */
static void finish_job(tw_pg *pg, pg_job *j)
{
    if (j->type == JOB_PREPARE || j->type == JOB_LISTEN) {
        internal_done(pg, j);
        job_free(j);
        return;
    }
    pg->user_jobs--;
    if (j->cb) {
        const char *msg = j->message ? j->message : tw_pg_kind_name(j->kind);
        tw_pg_outcome o = {
            .kind = j->kind,
            .sqlstate = j->sqlstate,
            .message = j->kind == TW_PG_OK ? "" : msg,
            .failed_step = j->kind == TW_PG_OK ? -1 : j->failed_step,
            .error = j->error,
            .results = j->results,
            .nresults = j->nslots,
        };
        j->cb(&o, j->arg);
    }
    job_free(j);
}

/* Deliver the jobs that failed at submission (only those there now: a
 * callback that resubmits at once gets its answer on the next turn). */
static void deliver_done(tw_pg *pg)
{
    pg_jobq q;
    q_take(&q, &pg->done);
    pg_job *j;
    while ((j = q_pop(&q)))
        finish_job(pg, j);
}

/* Record a failure reported in result r for the job (first one wins; r is
 * taken). */
static void record_error(tw_pg *pg, pg_job *j, PGresult *r, int step)
{
    if (j->kind != TW_PG_OK) {
        PQclear(r);
        return;
    }
    const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *primary = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (!ss && PQstatus(pg->conn) == CONNECTION_BAD) {
        /* libpq's own report of a broken connection: the loss handler
         * decides what is known about this job. */
        PQclear(r);
        return;
    }
    int fatal = (sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)) ||
                (ss && (strncmp(ss, "57P", 3) == 0 || strncmp(ss, "08", 2) == 0));
    if (fatal) {
        /* PostgreSQL ended the session while running this job; nothing
         * after it in the pipeline ran. Before the commit point the job was
         * aborted. At the commit point (all statements answered) it may
         * have committed: e.g. a shutdown interrupting a synchronous
         * replication wait reports FATAL after the local commit. */
        pg->fatal_seen = 1;
        if (j->type == JOB_BATCH && j->step >= j->nsteps) {
            j->kind = TW_PG_OUTCOME_UNKNOWN;
            step = -1;
        } else {
            j->kind = TW_PG_CONNECTION_LOST;
        }
    } else {
        j->kind = TW_PG_QUERY_ERROR;
    }
    j->failed_step = step;
    snprintf(j->sqlstate, sizeof j->sqlstate, "%s", ss ? ss : "");
    char msg[512];
    trim_copy(msg, sizeof msg, primary ? primary : PQresultErrorMessage(r));
    set_message(j, msg, NULL);
    j->error = r;
}

/* A failure the client detected itself (no PostgreSQL result). */
static void record_local_error(pg_job *j, int step, const char *msg)
{
    if (j->kind != TW_PG_OK)
        return;
    j->kind = TW_PG_QUERY_ERROR;
    j->failed_step = step;
    set_message(j, msg, NULL);
}

/* ---- Connection lifecycle ----------------------------------------------- */

static void start_connect(tw_pg *pg);
static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

static void close_conn(tw_pg *pg)
{
    if (pg->ev_io) {
        event_free(pg->ev_io);
        pg->ev_io = NULL;
    }
    if (pg->ev_read) {
        event_free(pg->ev_read);
        pg->ev_read = NULL;
    }
    if (pg->ev_write) {
        event_free(pg->ev_write);
        pg->ev_write = NULL;
    }
    if (pg->ev_ctimeout)
        evtimer_del(pg->ev_ctimeout);
    if (pg->conn) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
}

static void schedule_retry(tw_pg *pg)
{
    if (pg->closing)
        return;
    int b = pg->backoff_ms;
    int delay = b / 2 + (int)(next_rand(pg) % (uint64_t)(b / 2 + 1));
    pg->backoff_ms = b >= pg->opts.backoff_max_ms / 2 ? pg->opts.backoff_max_ms : b * 2;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(pg->ev_retry, &tv);
}

static void connect_failed(tw_pg *pg, const char *why)
{
    trim_copy(pg->last_error, sizeof pg->last_error, why);
    close_conn(pg);
    pg->state = ST_DOWN;
    pg->fail_streak++;
    tw_log_level level =
        pg->fail_streak == 1 || pg->fail_streak % 20 == 0 ? TW_LOG_WARN : TW_LOG_DEBUG;
    pglog(pg, level, "connection attempt failed (%u in a row): %s", pg->fail_streak,
          pg->last_error);
    schedule_retry(pg);
}

/* The connection broke (or libpq refused an operation on it): fail what was
 * sent according to what is known, fail what was not sent as
 * not-connected, and schedule a reconnect. */
static void conn_lost(tw_pg *pg, const char *why)
{
    char reason[256];
    trim_copy(reason, sizeof reason,
              why ? why : pg->conn ? PQerrorMessage(pg->conn) : "connection closed");
    if (!reason[0])
        snprintf(reason, sizeof reason, "connection closed");
    snprintf(pg->last_error, sizeof pg->last_error, "%s", reason);

    int was_up = pg->state == ST_UP;
    int fatal = pg->fatal_seen;
    pg_jobq lost, unsent;
    q_take(&lost, &pg->inflight);
    q_take(&unsent, &pg->pending);
    close_conn(pg);
    pg->state = ST_DOWN;
    pg->mode = MODE_PIPELINE;
    pg->fatal_seen = 0;
    if (now_ms() - pg->up_since_ms >= STABLE_MS)
        pg->backoff_ms = pg->opts.backoff_min_ms;
    pglog(pg, TW_LOG_WARN, "connection lost: %s (%zu in flight, %zu queued); reconnecting",
          reason, lost.n, unsent.n);
    schedule_retry(pg);
    if (was_up && pg->opts.on_state)
        pg->opts.on_state(pg->opts.state_arg, 0);

    pg_job *j;
    while ((j = q_pop(&lost))) {
        if (j->kind == TW_PG_OK) {
            if (!fatal && j->type == JOB_BATCH && (j->sync_sent || j->commit_sent)) {
                j->kind = TW_PG_OUTCOME_UNKNOWN;
                set_message(j, "connection lost after the commit was sent; it may or may not have "
                               "been committed", reason);
            } else {
                j->kind = TW_PG_CONNECTION_LOST;
                set_message(j, "connection lost", reason);
            }
        }
        finish_job(pg, j);
    }
    while ((j = q_pop(&unsent))) {
        j->kind = TW_PG_NOT_CONNECTED;
        set_message(j, "not connected", reason);
        finish_job(pg, j);
    }
}

static void on_notice(void *arg, const PGresult *r)
{
    const tw_pg *pg = arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    int warn = sev && strcmp(sev, "WARNING") == 0;
    pglog(pg, warn ? TW_LOG_WARN : TW_LOG_DEBUG, "server %s: %s", sev ? sev : "NOTICE",
          msg ? msg : "");
}

static pg_job *setup_job(int type, size_t reg)
{
    pg_job *j = job_new(type, 0, 1);
    if (j)
        j->reg = reg;
    return j;
}

static void connected(tw_pg *pg)
{
    event_free(pg->ev_io);
    pg->ev_io = NULL;
    evtimer_del(pg->ev_ctimeout);
    if (PQsetnonblocking(pg->conn, 1) != 0 || PQenterPipelineMode(pg->conn) != 1) {
        connect_failed(pg, PQerrorMessage(pg->conn));
        return;
    }
    int fd = PQsocket(pg->conn);
    pg->ev_read = event_new(pg->base, fd, EV_READ | EV_PERSIST, on_read, pg);
    pg->ev_write = event_new(pg->base, fd, EV_WRITE, on_write, pg);
    if (!pg->ev_read || !pg->ev_write || event_add(pg->ev_read, NULL) != 0) {
        connect_failed(pg, "cannot watch the socket");
        return;
    }
    pg->state = ST_UP;
    pg->mode = MODE_PIPELINE;
    pg->connections++;
    pg->fail_streak = 0;
    pg->fatal_seen = 0;
    pg->up_since_ms = now_ms();
    pg->last_error[0] = '\0';
    pglog(pg, TW_LOG_INFO, "connected (server %d, backend pid %d)", PQserverVersion(pg->conn),
          PQbackendPID(pg->conn));

    /* Setup first: every statement prepared and every LISTEN issued before
     * anything submitted from now on (pending is empty: it was failed when
     * the connection went down). */
    for (size_t i = 0; i < pg->npreps + pg->nlistens; i++) {
        pg_job *j = i < pg->npreps ? setup_job(JOB_PREPARE, i)
                                   : setup_job(JOB_LISTEN, i - pg->npreps);
        if (!j) {
            conn_lost(pg, "out of memory setting up the connection");
            return;
        }
        q_push(&pg->pending, j);
    }
    if (pg->opts.on_state)
        pg->opts.on_state(pg->opts.state_arg, 1);
    kick(pg);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg);

/* Wait for the socket to become readable or writable, as PQconnectPoll
 * asked; the socket can change between calls (several hosts). */
static void connect_wait(tw_pg *pg, short what)
{
    if (pg->ev_io) {
        event_free(pg->ev_io);
        pg->ev_io = NULL;
    }
    int fd = PQsocket(pg->conn);
    if (fd < 0) {
        connect_failed(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->ev_io = event_new(pg->base, fd, what, on_connect_io, pg);
    if (!pg->ev_io || event_add(pg->ev_io, NULL) != 0)
        connect_failed(pg, "cannot watch the socket");
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_pg *pg = arg;
    switch (PQconnectPoll(pg->conn)) {
    case PGRES_POLLING_READING:
        connect_wait(pg, EV_READ);
        break;
    case PGRES_POLLING_WRITING:
        connect_wait(pg, EV_WRITE);
        break;
    case PGRES_POLLING_OK:
        connected(pg);
        break;
    default:
        connect_failed(pg, PQerrorMessage(pg->conn));
        break;
    }
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_pg *pg = arg;
    char why[64];
    snprintf(why, sizeof why, "timed out after %d ms", pg->opts.connect_timeout_ms);
    connect_failed(pg, why);
}

static void start_connect(tw_pg *pg)
{
    pg->conn =
        PQconnectStartParams((const char *const *)pg->keys, (const char *const *)pg->vals, 0);
    if (!pg->conn) {
        connect_failed(pg, "out of memory");
        return;
    }
    PQsetNoticeReceiver(pg->conn, on_notice, pg);
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        connect_failed(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->state = ST_CONNECTING;
    int t = pg->opts.connect_timeout_ms;
    struct timeval tv = {t / 1000, (t % 1000) * 1000};
    evtimer_add(pg->ev_ctimeout, &tv);
    /* Right after PQconnectStart, behave as if PQconnectPoll had asked to
     * wait for writing. */
    connect_wait(pg, EV_WRITE);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_connect(arg);
}

/* ---- Sending ----------------------------------------------------------- */

/* Give up on the connection for a reason libpq does not know. Returns -1. */
static int drop(tw_pg *pg, const char *why)
{
    snprintf(pg->drop_reason, sizeof pg->drop_reason, "%s", why);
    return -1;
}

static void arm_write(tw_pg *pg)
{
    if (pg->ev_write && !event_pending(pg->ev_write, EV_WRITE, NULL))
        event_add(pg->ev_write, NULL);
}

/* Flush libpq's output. Returns 0, or -1 when the connection failed. */
static int flush_out(tw_pg *pg)
{
    int r = PQflush(pg->conn);
    if (r < 0)
        return -1;
    if (r > 0)
        arm_write(pg);
    return 0;
}

static int send_step(tw_pg *pg, const pg_step *s)
{
    const char *const *values = (const char *const *)s->values;
    if (s->prepared)
        return PQsendQueryPrepared(pg->conn, s->stmt, s->nparams, values, s->lengths, s->formats,
                                   s->result_format);
    return PQsendQueryParams(pg->conn, s->stmt, s->nparams, NULL, values, s->lengths, s->formats,
                             s->result_format);
}

static int send_sql(tw_pg *pg, const char *sql)
{
    return PQsendQueryParams(pg->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
}

/* "LISTEN "quoted"" (the channel is an exact identifier). */
static char *listen_sql(const char *channel)
{
    size_t n = strlen(channel);
    char *sql = malloc(sizeof "LISTEN \"\"" + 2 * n);
    if (!sql)
        return NULL;
    char *p = sql + sprintf(sql, "LISTEN \"");
    for (size_t i = 0; i < n; i++) {
        if (channel[i] == '"')
            *p++ = '"';
        *p++ = channel[i];
    }
    strcpy(p, "\"");
    return sql;
}

/* Hand a job to libpq in pipeline mode: its statements, then a Sync.
 * Returns 0, or -1 when libpq refused (the connection is then dropped). */
static int send_pipelined(tw_pg *pg, pg_job *j)
{
    if (j->type == JOB_PREPARE) {
        const pg_prep *p = &pg->preps[j->reg];
        if (!PQsendPrepare(pg->conn, p->name, p->sql, p->nparams, p->types))
            return -1;
    } else if (j->type == JOB_LISTEN) {
        char *sql = listen_sql(pg->listens[j->reg].channel);
        int ok = sql && send_sql(pg, sql);
        free(sql);
        if (!ok)
            return -1;
    } else {
        for (size_t i = 0; i < j->nsteps; i++)
            if (!send_step(pg, &j->steps[i]))
                return -1;
    }
    if (!PQpipelineSync(pg->conn))
        return -1;
    j->sync_sent = 1;
    return 0;
}

/* Move pending jobs into libpq as far as the mode and the in-flight limit
 * allow. Returns 0, or -1 when the connection must be dropped. */
static int send_pending(tw_pg *pg)
{
    pg_job *j;
    while (pg->mode == MODE_PIPELINE && (j = TAILQ_FIRST(&pg->pending.h))) {
        if (j->sequential) {
            if (pg->inflight.n > 0)
                break; /* wait for the pipeline to drain */
            q_push(&pg->inflight, q_pop(&pg->pending));
            if (PQexitPipelineMode(pg->conn) != 1)
                return drop(pg, "cannot leave pipeline mode for a COPY");
            pg->mode = MODE_SEQ;
            j->seq_phase = SEQ_BEGIN;
            return send_sql(pg, "BEGIN") ? 0 : -1;
        }
        if (pg->inflight.n >= (size_t)pg->opts.max_in_flight)
            break;
        q_push(&pg->inflight, q_pop(&pg->pending));
        if (send_pipelined(pg, j) < 0)
            return -1;
    }
    return 0;
}

/* Stream the current COPY step's data. Returns 0 (done, or waiting for the
 * socket), or -1 when the connection failed. */
static int copy_push(tw_pg *pg, pg_job *j)
{
    const pg_step *s = j->copy_abort ? NULL : &j->steps[j->step];
    size_t budget = COPY_BUDGET;
    while (j->copying) {
        if (!j->copy_abort && !j->copy_eof && j->chunk_len == 0) {
            if (s->source) {
                const char *d = NULL;
                size_t n = 0;
                int r = s->source(s->source_arg, &d, &n);
                if (r < 0)
                    j->copy_abort = 1;
                else if (r == 0)
                    j->copy_eof = 1;
                else {
                    j->chunk = d;
                    j->chunk_len = d ? n : 0;
                }
            } else {
                j->copy_eof = 1;
            }
        }
        if (!j->copy_abort && j->chunk_len > 0) {
            if (budget == 0) {
                arm_write(pg); /* continue on the next turn of the loop */
                return 0;
            }
            size_t n = j->chunk_len < COPY_CHUNK ? j->chunk_len : COPY_CHUNK;
            int r = PQputCopyData(pg->conn, j->chunk, (int)n);
            if (r < 0)
                return -1;
            if (r == 0) {
                arm_write(pg);
                return 0;
            }
            j->chunk += n;
            j->chunk_len -= n;
            budget = budget > n ? budget - n : 0;
            int f = PQflush(pg->conn);
            if (f < 0)
                return -1;
            if (f > 0) {
                arm_write(pg); /* socket full: back-pressure */
                return 0;
            }
            continue;
        }
        if (!j->copy_abort && !j->copy_eof)
            continue; /* the source gave an empty chunk: ask again */
        int r = PQputCopyEnd(pg->conn, j->copy_abort ? "COPY aborted by the client" : NULL);
        if (r < 0)
            return -1;
        if (r == 0) {
            arm_write(pg);
            return 0;
        }
        j->copying = 0;
    }
    return flush_out(pg);
}

/* ---- Receiving --------------------------------------------------------- */

static int is_error_status(ExecStatusType st)
{
    return st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
}

static void store_result(pg_job *j, size_t slot, PGresult *r)
{
    if (slot < j->nslots && !j->results[slot])
        j->results[slot] = r;
    else
        PQclear(r);
}

/* Sequential job: send its current step (or COMMIT after the last one). */
static int seq_send_step(tw_pg *pg, pg_job *j)
{
    if (j->step < j->nsteps) {
        j->copied = 0;
        j->copy_abort = 0;
        j->copy_eof = 0;
        j->chunk = j->steps[j->step].copy_data;
        j->chunk_len = j->steps[j->step].copy_len;
        return send_step(pg, &j->steps[j->step]) ? 0 : -1;
    }
    j->seq_phase = SEQ_COMMIT;
    j->commit_sent = 1;
    return send_sql(pg, "COMMIT") ? 0 : -1;
}

/* The sequential job is over: back to pipeline mode, then its callback. */
static int seq_finish(tw_pg *pg, pg_job *j)
{
    TAILQ_REMOVE(&pg->inflight.h, j, link);
    pg->inflight.n--;
    int idle = PQtransactionStatus(pg->conn) == PQTRANS_IDLE;
    int ok = idle && PQenterPipelineMode(pg->conn) == 1;
    pg->mode = MODE_PIPELINE;
    finish_job(pg, j);
    kick(pg);
    if (!idle)
        return drop(pg, "session left inside a transaction after a sequential batch");
    return ok ? 0 : -1;
}

/* The NULL that ends a statement's results came, in sequential mode. */
static int seq_advance(tw_pg *pg, pg_job *j)
{
    switch (j->seq_phase) {
    case SEQ_BEGIN:
        if (j->kind != TW_PG_OK)
            return seq_finish(pg, j);
        j->seq_phase = SEQ_STEPS;
        j->step = 0;
        return seq_send_step(pg, j);
    case SEQ_STEPS:
        if (j->kind != TW_PG_OK) {
            j->seq_phase = SEQ_ROLLBACK;
            return send_sql(pg, "ROLLBACK") ? 0 : -1;
        }
        j->step++;
        return seq_send_step(pg, j);
    default: /* SEQ_COMMIT, SEQ_ROLLBACK */
        return seq_finish(pg, j);
    }
}

/* Index to blame for an error in the current sequential phase. */
static int seq_blame(const pg_job *j)
{
    switch (j->seq_phase) {
    case SEQ_STEPS: return (int)j->step;
    case SEQ_COMMIT: return (int)j->nsteps;
    default: return -1;
    }
}

/* Take every result libpq has ready, without blocking, and complete jobs.
 * Returns 0, or -1 when the connection must be dropped. */
static int read_results(tw_pg *pg)
{
    int stray_ok = 1; /* tolerate one NULL we did not expect, not a stream of them */
    for (;;) {
        pg_job *j = TAILQ_FIRST(&pg->inflight.h);
        if (!j || (pg->mode == MODE_SEQ && j->copying))
            return 0;
        if (PQisBusy(pg->conn))
            return 0;
        PGresult *r = PQgetResult(pg->conn);
        if (!r) {
            if (!j->awaiting_null) {
                if (stray_ok--)
                    continue;
                return 0; /* nothing more for now */
            }
            j->awaiting_null = 0;
            if (pg->mode == MODE_SEQ) {
                if (seq_advance(pg, j) < 0)
                    return -1;
            } else {
                j->step++;
            }
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        stray_ok = 1;

        if (pg->mode == MODE_PIPELINE) {
            if (st == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                q_pop(&pg->inflight);
                if (j->kind == TW_PG_OK && j->step < j->nslots)
                    record_local_error(j, -1, "incomplete results from the pipeline");
                finish_job(pg, j);
                continue;
            }
            if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
                PQclear(r);
                record_local_error(j, (int)j->step,
                                   "COPY cannot run in a pipeline: use tw_pg_copy or a COPY step "
                                   "of tw_pg_batch");
                return drop(pg, "COPY sent in pipeline mode");
            }
            j->awaiting_null = 1;
            if (st == PGRES_PIPELINE_ABORTED)
                PQclear(r); /* skipped after this job's error */
            else if (is_error_status(st))
                record_error(pg, j, r, (int)j->step);
            else
                store_result(j, j->step, r);
            continue;
        }

        /* MODE_SEQ */
        if (st == PGRES_COPY_IN) {
            PQclear(r);
            int is_copy_step = j->seq_phase == SEQ_STEPS && j->step < j->nsteps &&
                               j->steps[j->step].copy;
            j->copied = 1;
            j->copying = 1;
            j->copy_abort = !is_copy_step;
            if (!is_copy_step)
                record_local_error(j, seq_blame(j), "unexpected COPY FROM STDIN");
            if (copy_push(pg, j) < 0)
                return -1;
            continue;
        }
        if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            PQclear(r);
            record_local_error(j, seq_blame(j), "COPY TO STDOUT is not supported");
            return drop(pg, "COPY TO STDOUT is not supported");
        }
        j->awaiting_null = 1;
        if (is_error_status(st)) {
            record_error(pg, j, r, seq_blame(j));
        } else if (j->seq_phase == SEQ_STEPS && j->step < j->nsteps) {
            if (j->steps[j->step].copy && !j->copied) {
                PQclear(r);
                record_local_error(j, (int)j->step,
                                   "a COPY step must be a COPY ... FROM STDIN statement");
            } else {
                store_result(j, j->step, r);
            }
        } else {
            PQclear(r);
        }
    }
}

static void drain_notifies(tw_pg *pg)
{
    PGnotify *n;
    while (pg->conn && (n = PQnotifies(pg->conn))) {
        for (size_t i = 0; i < pg->nlistens; i++) {
            pg_listener l = pg->listens[i]; /* the array may grow in a callback */
            if (strcmp(l.channel, n->relname) == 0)
                l.cb(l.arg, l.channel, n->extra ? n->extra : "", 0);
        }
        PQfreemem(n);
    }
}

/* One round of I/O on an up connection. Returns 0, or -1 to drop it. */
static int io_round(tw_pg *pg)
{
    pg_job *head = TAILQ_FIRST(&pg->inflight.h);
    if (pg->mode == MODE_SEQ && head && head->copying && copy_push(pg, head) < 0)
        return -1;
    if (send_pending(pg) < 0 || flush_out(pg) < 0)
        return -1;
    size_t sent = pg->inflight.n;
    if (read_results(pg) < 0)
        return -1;
    if (PQstatus(pg->conn) == CONNECTION_BAD)
        return -1;
    /* Jobs completed (room in the pipeline, or drained for a sequential
     * job): send more on the next turn. Only on progress, never a spin. */
    if (pg->pending.n && pg->inflight.n < sent)
        kick(pg);
    return 0;
}

static void pump(tw_pg *pg)
{
    deliver_done(pg);
    if (pg->state != ST_UP)
        return;
    if (io_round(pg) < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", pg->drop_reason);
        pg->drop_reason[0] = '\0';
        conn_lost(pg, why[0] ? why : NULL);
        return;
    }
    drain_notifies(pg);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    tw_pg *pg = arg;
    if (!PQconsumeInput(pg->conn)) {
        conn_lost(pg, NULL);
        return;
    }
    pump(pg);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

/* ---- Public API -------------------------------------------------------- */

/* The startup options we send ahead of the caller's: "-c name=value" for
 * each session setting in opts. Returns the number of bytes written. */
static size_t session_options(const tw_pg_opts *o, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    if (o->idle_in_xact_timeout_ms > 0)
        n += (size_t)snprintf(buf + n, len - n, "-c idle_in_transaction_session_timeout=%d",
                              o->idle_in_xact_timeout_ms);
    if (o->statement_timeout_ms > 0 && n < len)
        n += (size_t)snprintf(buf + n, len - n, "%s-c statement_timeout=%d", n ? " " : "",
                              o->statement_timeout_ms);
    if (o->jit_off && n < len)
        n += (size_t)snprintf(buf + n, len - n, "%s-c jit=off", n ? " " : "");
    return n < len ? n : len - 1;
}

/* 1 when the parsed connection string sets `keyword`. */
static int conninfo_has(const PQconninfoOption *parsed, const char *keyword)
{
    for (const PQconninfoOption *o = parsed; o->keyword; o++)
        if (o->val && strcmp(o->keyword, keyword) == 0)
            return 1;
    return 0;
}

/* Turn the parsed connection string into the NULL-terminated keys/vals
 * arrays of pg, with `ours` (session options) placed before the string's
 * own options (or PGOPTIONS when it has none), so that the caller's win,
 * and our name as fallback_application_name unless the string names one
 * (pg_stat_activity then says whose session holds a transaction open).
 * Call after pg->name is set. Returns 0, or -1 on ENOMEM. */
static int build_params(tw_pg *pg, const PQconninfoOption *parsed, const char *ours)
{
    size_t n = 0;
    for (const PQconninfoOption *o = parsed; o->keyword; o++)
        n++;
    pg->keys = calloc(n + 3, sizeof *pg->keys);
    pg->vals = calloc(n + 3, sizeof *pg->vals);
    if (!pg->keys || !pg->vals)
        return -1;
    const char *theirs = getenv("PGOPTIONS");
    size_t k = 0;
    for (const PQconninfoOption *o = parsed; o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "options") == 0) {
            theirs = o->val;
            continue;
        }
        if (!(pg->keys[k] = xstrdup(o->keyword)) || !(pg->vals[k] = xstrdup(o->val)))
            return -1;
        k++;
    }
    if (!conninfo_has(parsed, "fallback_application_name")) {
        /* pg_stat_activity then says which daemon's session is which */
        if (!(pg->keys[k] = xstrdup("fallback_application_name")) ||
            !(pg->vals[k] = xstrdup(pg->name)))
            return -1;
        k++;
    }
    if (!theirs)
        theirs = "";
    if (ours[0] || theirs[0]) {
        size_t len = strlen(ours) + strlen(theirs) + 2;
        if (!(pg->keys[k] = xstrdup("options")) || !(pg->vals[k] = malloc(len)))
            return -1;
        snprintf(pg->vals[k], len, "%s%s%s", ours, ours[0] && theirs[0] ? " " : "", theirs);
    }
    return 0;
}

static void free_params(tw_pg *pg)
{
    for (size_t i = 0; pg->keys && pg->keys[i]; i++) {
        free(pg->keys[i]);
        free(pg->vals[i]);
    }
    free(pg->keys);
    free(pg->vals);
}

tw_pg *tw_pg_new(struct event_base *base, const char *conninfo, const tw_pg_opts *opts, char *err,
                 size_t errlen)
{
    if (!conninfo)
        conninfo = "";
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo, &perr);
    if (!parsed) {
        char msg[256];
        trim_copy(msg, sizeof msg, perr ? perr : "out of memory");
        snprintf(err, errlen, "invalid connection string: %s", msg);
        PQfreemem(perr);
        return NULL;
    }

    tw_pg *pg = calloc(1, sizeof *pg);
    if (!pg)
        goto oom;
    pg->base = base;
    if (opts)
        pg->opts = *opts;
    if (pg->opts.connect_timeout_ms <= 0)
        pg->opts.connect_timeout_ms = 10000;
    if (pg->opts.backoff_min_ms <= 0)
        pg->opts.backoff_min_ms = 100;
    if (pg->opts.backoff_max_ms < pg->opts.backoff_min_ms)
        pg->opts.backoff_max_ms = pg->opts.backoff_min_ms > 5000 ? pg->opts.backoff_min_ms : 5000;
    if (pg->opts.max_in_flight <= 0)
        pg->opts.max_in_flight = 256;
    if (pg->opts.idle_in_xact_timeout_ms == 0)
        pg->opts.idle_in_xact_timeout_ms = TW_PG_IDLE_IN_XACT_TIMEOUT_MS;
    char ours[128];
    session_options(&pg->opts, ours, sizeof ours);
    pg->backoff_ms = pg->opts.backoff_min_ms;
    pg->rng = ((uint64_t)time(NULL) << 20) ^ (uint64_t)(uintptr_t)pg ^ (uint64_t)getpid();
    if (!pg->rng)
        pg->rng = 88172645463325252ULL;
    q_init(&pg->pending);
    q_init(&pg->inflight);
    q_init(&pg->done);
    if (!(pg->name = xstrdup(opts && opts->name ? opts->name : "postgres")) ||
        build_params(pg, parsed, ours) != 0)
        goto oom;
    pg->opts.name = pg->name;
    pg->ev_retry = evtimer_new(base, on_retry, pg);
    pg->ev_ctimeout = evtimer_new(base, on_connect_timeout, pg);
    pg->ev_kick = event_new(base, -1, 0, on_kick, pg);
    if (!pg->ev_retry || !pg->ev_ctimeout || !pg->ev_kick)
        goto oom;
    snprintf(pg->last_error, sizeof pg->last_error, "not connected yet");
    struct timeval now = {0, 0};
    if (evtimer_add(pg->ev_retry, &now) != 0)
        goto oom;
    PQconninfoFree(parsed);
    return pg;

oom:
    snprintf(err, errlen, "out of memory");
    PQconninfoFree(parsed);
    tw_pg_free(pg);
    return NULL;
}

/* Fail jobs with TW_PG_SHUTDOWN unless they already failed otherwise. */
static void shutdown_jobs(tw_pg *pg, pg_jobq *q)
{
    pg_job *j;
    while ((j = q_pop(q))) {
        if (j->kind == TW_PG_OK) {
            j->kind = TW_PG_SHUTDOWN;
            set_message(j, "the PostgreSQL connection object was freed before completion", NULL);
        }
        finish_job(pg, j);
    }
}

void tw_pg_free(tw_pg *pg)
{
    if (!pg)
        return;
    pg->closing = 1;
    pg_jobq done, inflight, pending;
    q_take(&done, &pg->done);
    q_take(&inflight, &pg->inflight);
    q_take(&pending, &pg->pending);
    shutdown_jobs(pg, &done);
    shutdown_jobs(pg, &inflight);
    shutdown_jobs(pg, &pending);
    close_conn(pg);
    if (pg->ev_retry)
        event_free(pg->ev_retry);
    if (pg->ev_ctimeout)
        event_free(pg->ev_ctimeout);
    if (pg->ev_kick)
        event_free(pg->ev_kick);
    for (size_t i = 0; i < pg->npreps; i++) {
        free(pg->preps[i].name);
        free(pg->preps[i].sql);
        free(pg->preps[i].types);
    }
    free(pg->preps);
    for (size_t i = 0; i < pg->nlistens; i++)
        free(pg->listens[i].channel);
    free(pg->listens);
    free_params(pg);
    free(pg->name);
    free(pg);
}

int tw_pg_is_up(const tw_pg *pg)
{
    return pg && pg->state == ST_UP;
}

unsigned tw_pg_connections(const tw_pg *pg)
{
    return pg ? pg->connections : 0;
}

size_t tw_pg_pending(const tw_pg *pg)
{
    return pg ? pg->user_jobs : 0;
}

/* Queue a setup job now if connected (otherwise the next connection does
 * it). Returns 0, or -1 on allocation failure. */
static int setup_now(tw_pg *pg, int type, size_t reg)
{
    if (pg->state != ST_UP)
        return 0;
    pg_job *j = setup_job(type, reg);
    if (!j)
        return -1;
    q_push(&pg->pending, j);
    kick(pg);
    return 0;
}

int tw_pg_prepare(tw_pg *pg, const char *name, const char *sql, int nparams, const Oid *types)
{
    if (!pg || pg->closing || !name || !name[0] || !sql || nparams < 0 ||
        nparams > PG_MAX_PARAMS || find_prep(pg, name))
        return -1;
    pg_prep p = {.nparams = nparams};
    p.name = xstrdup(name);
    p.sql = xstrdup(sql);
    if (types && nparams > 0 && (p.types = malloc((size_t)nparams * sizeof *types)))
        memcpy(p.types, types, (size_t)nparams * sizeof *types);
    pg_prep *grown = NULL;
    if (p.name && p.sql && (!types || !nparams || p.types))
        grown = realloc(pg->preps, (pg->npreps + 1) * sizeof *grown);
    if (!grown) {
        free(p.name);
        free(p.sql);
        free(p.types);
        return -1;
    }
    pg->preps = grown;
    pg->preps[pg->npreps++] = p;
    return setup_now(pg, JOB_PREPARE, pg->npreps - 1);
}

int tw_pg_listen(tw_pg *pg, const char *channel, tw_pg_notify_cb cb, void *arg)
{
    if (!pg || pg->closing || !channel || !channel[0] || strlen(channel) > PG_MAX_IDENT || !cb)
        return -1;
    pg_listener l = {.cb = cb, .arg = arg, .channel = xstrdup(channel)};
    pg_listener *grown = l.channel ? realloc(pg->listens, (pg->nlistens + 1) * sizeof *grown)
                                   : NULL;
    if (!grown) {
        free(l.channel);
        return -1;
    }
    pg->listens = grown;
    pg->listens[pg->nlistens++] = l;
    return setup_now(pg, JOB_LISTEN, pg->nlistens - 1);
}

/* Accept a user job: queue it, or fail it fast when not connected. */
static void submit(tw_pg *pg, pg_job *j)
{
    pg->user_jobs++;
    if (pg->state == ST_UP) {
        q_push(&pg->pending, j);
    } else {
        j->kind = TW_PG_NOT_CONNECTED;
        set_message(j, "not connected", pg->last_error);
        q_push(&pg->done, j);
    }
    kick(pg);
}

int tw_pg_query(tw_pg *pg, const char *stmt, int nparams, const char *const *values,
                const int *lengths, const int *formats, int result_format, tw_pg_cb cb, void *arg)
{
    if (!pg || pg->closing)
        return -1;
    tw_pg_stmt s = {.stmt = stmt, .nparams = nparams, .values = values, .lengths = lengths,
                    .formats = formats, .result_format = result_format};
    pg_job *j = job_new(JOB_QUERY, 1, 1);
    if (!j)
        return -1;
    if (step_init(pg, &j->steps[0], &s, 0) < 0) {
        job_free(j);
        return -1;
    }
    j->cb = cb;
    j->arg = arg;
    submit(pg, j);
    return 0;
}

int tw_pg_batch(tw_pg *pg, const tw_pg_stmt *stmts, size_t n, tw_pg_cb cb, void *arg)
{
    if (!pg || pg->closing || !stmts || n == 0 || n > INT_MAX)
        return -1;
    pg_job *j = job_new(JOB_BATCH, n, n);
    if (!j)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (step_init(pg, &j->steps[i], &stmts[i], 1) < 0) {
            job_free(j);
            return -1;
        }
        if (stmts[i].copy)
            j->sequential = 1;
    }
    j->cb = cb;
    j->arg = arg;
    submit(pg, j);
    return 0;
}

int tw_pg_copy(tw_pg *pg, const char *sql, const void *data, size_t len, tw_pg_cb cb, void *arg)
{
    tw_pg_stmt s = {.stmt = sql, .copy = 1, .copy_data = data, .copy_len = len};
    return tw_pg_batch(pg, &s, 1, cb, arg);
}
