/* The derived writes of the test consumers (test_consumer.c and
 * consumer_probe.c), see support_consumer.h. */
#include "support_consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append s to buf (growing it) as a double-quoted array element. */
static int put(char **buf, size_t *len, size_t *cap, const char *s, int quote)
{
    size_t need = *len + 2 * strlen(s) + 4;
    if (need > *cap) {
        size_t cap2 = need * 2;
        char *b = realloc(*buf, cap2);
        if (!b)
            return -1;
        *buf = b;
        *cap = cap2;
    }
    char *p = *buf + *len;
    if (quote)
        *p++ = '"';
    for (; *s; s++) {
        if (quote && (*s == '"' || *s == '\\'))
            *p++ = '\\';
        *p++ = *s;
    }
    if (quote)
        *p++ = '"';
    *p = '\0';
    *len = (size_t)(p - *buf);
    return 0;
}

int tw_test_apply_events(void *arg, const tw_consumer_event *ev, size_t n,
                         const PGresult *const *reads, size_t nreads, tw_consumer_writes *w)
{
    tw_test_apply *a = arg;
    if (a->refuse)
        return -1;
    char base[32] = "";
    if (a->use_reads) {
        /* The count read before the batch; without it the batch is refused. */
        if (nreads != 1 || PQntuples(reads[0]) != 1)
            return -1;
        snprintf(base, sizeof base, "%s", PQgetvalue(reads[0], 0, 0));
    } else if (nreads != 0 || reads) {
        return -1;
    }
    char *ids = NULL, *refs = NULL;
    size_t il = 0, ic = 0, rl = 0, rc = 0;
    int ret = -1;
    if (put(&ids, &il, &ic, "{", 0) || put(&refs, &rl, &rc, "{", 0))
        goto out;
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%" PRId64, i ? "," : "", ev[i].id);
        if (put(&ids, &il, &ic, id, 0) || (i && put(&refs, &rl, &rc, ",", 0)) ||
            put(&refs, &rl, &rc, ev[i].source_ref, 1))
            goto out;
    }
    if (put(&ids, &il, &ic, "}", 0) || put(&refs, &rl, &rc, "}", 0))
        goto out;
    char sql[512];
    if (a->use_reads)
        snprintf(sql, sizeof sql,
                 "INSERT INTO %s (event_id, ref, pos)"
                 " SELECT e, r, $3::bigint + o"
                 " FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS u(e, r, o)",
                 a->table);
    else
        snprintf(sql, sizeof sql,
                 "INSERT INTO %s (event_id, ref, pos)"
                 " SELECT e, r, (SELECT count(*) FROM %s) + o"
                 " FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS u(e, r, o)",
                 a->table, a->table);
    const char *values[] = {ids, refs, base};
    if (tw_consumer_writes_add(w, &(tw_pg_stmt){.stmt = sql, .nparams = a->use_reads ? 3 : 2,
                                                .values = values}) != 0)
        goto out;
    if (a->sleep_ms > 0) {
        char ms[32];
        snprintf(ms, sizeof ms, "%g", a->sleep_ms / 1000.0);
        const char *sv[] = {ms};
        if (tw_consumer_writes_add(w, &(tw_pg_stmt){.stmt = "SELECT pg_sleep($1::float8)",
                                                    .nparams = 1, .values = sv}) != 0)
            goto out;
    }
    ret = 0;
out:
    free(ids);
    free(refs);
    return ret;
}

int tw_test_prepare_count(void *arg, const tw_consumer_event *ev, size_t n,
                          tw_consumer_writes *reads)
{
    tw_test_apply *a = arg;
    (void)ev;
    (void)n;
    a->prepared++;
    if (a->prepare_refuse)
        return -1;
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", a->table);
    return tw_consumer_writes_add(reads, &(tw_pg_stmt){.stmt = sql});
}
