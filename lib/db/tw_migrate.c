#include "tw_migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* pg_advisory_lock key: "tidewatc" as a big-endian int64. */
#define MIGRATE_LOCK_KEY "8388346167911609443"

void tw_sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < mdlen && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[64] = '\0';
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* 1 if name is NNNN_[A-Za-z0-9_]+.sql, 0 if it is not a migration at all,
 * -1 if it starts like one but is malformed. */
static int classify(const char *name)
{
    size_t len = strlen(name);
    if (len < 4 || !isdigit((unsigned char)name[0]))
        return 0;
    if (len < 10 || strcmp(name + len - 4, ".sql") != 0)
        return -1;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)name[i]))
            return -1;
    if (name[4] != '_')
        return -1;
    for (size_t i = 5; i < len - 4; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_')
            return -1;
    return 1;
}

static int cmp_version(const void *a, const void *b)
{
    const tw_migration *x = a, *y = b;
    return (x->version > y->version) - (x->version < y->version);
}

int tw_migrations_load(const char *dir, tw_migration_set *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(err, errlen, "cannot open migrations directory %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *e;
    size_t cap = 0;
    while ((e = readdir(d))) {
        int kind = classify(e->d_name);
        if (kind == 0)
            continue;
        if (kind < 0) {
            snprintf(err, errlen, "%s/%s: migration files are named NNNN_name.sql", dir, e->d_name);
            goto fail;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            tw_migration *items = realloc(out->items, cap * sizeof *items);
            if (!items) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            out->items = items;
        }
        tw_migration *m = &out->items[out->n];
        memset(m, 0, sizeof *m);
        out->n++;
        m->version = atoi(e->d_name);
        m->name = strdup(e->d_name);
        size_t plen = strlen(dir) + strlen(e->d_name) + 2;
        m->path = malloc(plen);
        if (!m->name || !m->path) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        snprintf(m->path, plen, "%s/%s", dir, e->d_name);
        size_t len = 0;
        m->sql = read_file(m->path, &len);
        if (!m->sql) {
            snprintf(err, errlen, "cannot read %s: %s", m->path, strerror(errno));
            goto fail;
        }
        tw_sha256_hex(m->sql, len, m->sha256);
    }
    closedir(d);
    d = NULL;
    if (out->n)
        qsort(out->items, out->n, sizeof *out->items, cmp_version);
    for (size_t i = 1; i < out->n; i++) {
        if (out->items[i].version == out->items[i - 1].version) {
            snprintf(err, errlen, "%s and %s share version %04d", out->items[i - 1].name,
                     out->items[i].name, out->items[i].version);
            goto fail;
        }
    }
    return 0;
fail:
    if (d)
        closedir(d);
    tw_migrations_free(out);
    return -1;
}

void tw_migrations_free(tw_migration_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->items[i].name);
        free(set->items[i].path);
        free(set->items[i].sql);
    }
    free(set->items);
    memset(set, 0, sizeof *set);
}

/* Run a command without parameters; 0 if it succeeded. */
/* Run sql; 0 when it succeeded, else -1 with the error in err and, when
 * sqlstate is not NULL, its SQLSTATE there ("" when none). */
static int exec_state(PGconn *c, const char *sql, char *err, size_t errlen, char sqlstate[6])
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
        if (sqlstate) {
            const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            snprintf(sqlstate, 6, "%s", s ? s : "");
        }
    }
    PQclear(r);
    return ok ? 0 : -1;
}

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
    return exec_state(c, sql, err, errlen, NULL);
}

/* Roles are shared by every database of a cluster, and the advisory lock
 * is per database: two databases migrated at once can both find a role
 * missing and both create it, and one fails with unique_violation (or
 * duplicate_object). Its transaction is rolled back whole, so trying the
 * same migration again is safe, and it then finds the role. */
#define MIGRATE_RACE_RETRIES 3
static int lost_cluster_race(const char *sqlstate)
{
    return strcmp(sqlstate, "23505") == 0 || strcmp(sqlstate, "42710") == 0;
}

static const tw_migration *find_version(const tw_migration_set *set, int version)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->items[i].version == version)
            return &set->items[i];
    return NULL;
}

int tw_migrate_apply(PGconn *c, const tw_migration_set *set, tw_migrate_report *report,
                     void (*progress)(void *arg, const tw_migration *m), void *arg, char *err,
                     size_t errlen)
{
    memset(report, 0, sizeof *report);
    char why[1024], why2[256];
    PGresult *r = NULL;
    int locked = 0, rv = -1;
    char *applied = NULL; /* applied[i]: set->items[i] already applied */

    if (exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", why, sizeof why) != 0) {
        snprintf(err, errlen, "taking the migration lock: %s", why);
        goto out;
    }
    locked = 1;
    if (exec_ok(c,
                "CREATE TABLE IF NOT EXISTS tidewatch_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())",
                why, sizeof why) != 0) {
        snprintf(err, errlen, "creating tidewatch_migrations: %s", why);
        goto out;
    }
    applied = calloc(set->n ? set->n : 1, 1);
    if (!applied) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    r = PQexec(c, "SELECT version, name, sha256 FROM tidewatch_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "reading tidewatch_migrations: %s", PQresultErrorMessage(r));
        goto out;
    }
    /* Verify everything before changing anything. */
    for (int i = 0; i < PQntuples(r); i++) {
        int version = atoi(PQgetvalue(r, i, 0));
        const tw_migration *m = find_version(set, version);
        if (!m) {
            snprintf(err, errlen,
                     "the database has migration %s applied but no such file exists here: "
                     "is this an older release?",
                     PQgetvalue(r, i, 1));
            goto out;
        }
        if (strcmp(m->sha256, PQgetvalue(r, i, 2)) != 0) {
            snprintf(err, errlen,
                     "%s changed after it was applied (sha256 %s now, %s when applied): "
                     "migrations are forward-only, add a new one instead",
                     m->name, m->sha256, PQgetvalue(r, i, 2));
            goto out;
        }
        applied[m - set->items] = 1;
        report->up_to_date++;
    }
    PQclear(r);
    r = NULL;

    int retries = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (applied[i])
            continue;
        const tw_migration *m = &set->items[i];
        if (progress && retries == 0)
            progress(arg, m);
        if (exec_ok(c, "BEGIN", why, sizeof why) != 0) {
            snprintf(err, errlen, "%s: %s", m->name, why);
            goto out;
        }
        char state[6] = "";
        if (exec_state(c, m->sql, why, sizeof why, state) != 0) {
            (void)exec_ok(c, "ROLLBACK", why2, sizeof why2);
            if (lost_cluster_race(state) && retries < MIGRATE_RACE_RETRIES) {
                retries++;
                i--; /* the same migration again */
                continue;
            }
            snprintf(err, errlen, "%s failed, nothing of it was applied: %s", m->name, why);
            goto out;
        }
        retries = 0;
        char version[16];
        snprintf(version, sizeof version, "%d", m->version);
        const char *params[] = {version, m->name, m->sha256};
        r = PQexecParams(c,
                         "INSERT INTO tidewatch_migrations (version, name, sha256) "
                         "VALUES ($1, $2, $3)",
                         3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            snprintf(err, errlen, "recording %s: %s", m->name, PQresultErrorMessage(r));
            (void)exec_ok(c, "ROLLBACK", why, sizeof why);
            goto out;
        }
        PQclear(r);
        r = NULL;
        if (exec_ok(c, "COMMIT", why, sizeof why) != 0) {
            snprintf(err, errlen, "committing %s: %s", m->name, why);
            goto out;
        }
        report->applied++;
    }
    rv = 0;
out:
    PQclear(r);
    free(applied);
    if (locked)
        (void)exec_ok(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", why, sizeof why);
    return rv;
}

/* ---- Connecting, with retries ------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* libpq's message on one line, without the trailing newline. */
static void one_line(char *dst, size_t n, const char *msg)
{
    size_t j = 0;
    for (size_t i = 0; msg && msg[i] && j + 1 < n; i++) {
        char c = msg[i] == '\n' || msg[i] == '\t' ? ' ' : msg[i];
        if (c != ' ' || (j > 0 && dst[j - 1] != ' '))
            dst[j++] = c;
    }
    while (j > 0 && dst[j - 1] == ' ')
        j--;
    dst[j] = '\0';
}

struct pg_conn *tw_migrate_connect(const char *conninfo, int64_t timeout_ms,
                                   tw_migrate_retry_fn on_retry, void *arg, char *err,
                                   size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(conninfo ? conninfo : "", &perr);
    if (!parsed) {
        char why[256];
        one_line(why, sizeof why, perr ? perr : "out of memory");
        snprintf(err, errlen, "invalid connection string: %s", why);
        PQfreemem(perr);
        return NULL;
    }
    size_t n = 0;
    int has_timeout = 0;
    for (const PQconninfoOption *o = parsed; o->keyword; o++) {
        n++;
        if (o->val && strcmp(o->keyword, "connect_timeout") == 0)
            has_timeout = 1;
    }
    const char **keys = calloc(n + 2, sizeof *keys);
    const char **vals = calloc(n + 2, sizeof *vals);
    PGconn *conn = NULL;
    if (!keys || !vals) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t k = 0, tslot = 0;
    for (const PQconninfoOption *o = parsed; o->keyword; o++)
        if (o->val) {
            keys[k] = o->keyword;
            vals[k++] = o->val;
        }
    char tbuf[24];
    if (!has_timeout) {
        tslot = k;
        keys[k++] = "connect_timeout";
    }

    int64_t start = mono_ms(), delay = 250;
    char why[512] = "";
    for (int attempt = 1;; attempt++) {
        if (!has_timeout) {
            int64_t left_s = (timeout_ms - (mono_ms() - start) + 999) / 1000;
            snprintf(tbuf, sizeof tbuf, "%lld", (long long)(left_s < 2 ? 2 : left_s));
            vals[tslot] = tbuf;
        }
        conn = PQconnectdbParams(keys, vals, 0);
        if (conn && PQstatus(conn) == CONNECTION_OK)
            goto out;
        one_line(why, sizeof why, conn ? PQerrorMessage(conn) : "out of memory");
        PQfinish(conn);
        conn = NULL;
        int64_t elapsed = mono_ms() - start;
        if (elapsed >= timeout_ms) {
            snprintf(err, errlen, "after %d attempt%s in %.1f s: %s", attempt,
                     attempt == 1 ? "" : "s", (double)elapsed / 1000.0, why);
            goto out;
        }
        int64_t wait = delay < timeout_ms - elapsed ? delay : timeout_ms - elapsed;
        if (on_retry)
            on_retry(arg, attempt, why, wait);
        sleep_ms(wait);
        delay = delay * 2 > 5000 ? 5000 : delay * 2;
    }
out:
    free(keys);
    free(vals);
    PQconninfoFree(parsed);
    return conn;
}
