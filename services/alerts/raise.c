/* Raising alerts: one statement per list, alert_raise() (migration 0010)
 * once per alert in the list's order, answering how many were raised and
 * how many open ones got new evidence. Shared by the real-time consumer
 * and the jobs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "tw_pgarray.h"

#define RAISE_SQL_HEAD                                                                           \
    "WITH x AS (SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "        \
    "$5::int2[], $6::float8[], $7::text[], $8::text[], $9::jsonb[], $10::timestamptz[], "      \
    "$11::int8[]) WITH ORDINALITY AS x(rule, subject_kind, subject, hub, severity, score, "    \
    "title, explanation, evidence, known_at, source_event, ord)), "                            \
    "r AS (SELECT (alert_raise(x.rule, x.subject_kind, x.subject, x.hub, x.severity, x.score, " \
    "x.title, x.explanation, x.evidence, x.known_at, $12::int4, $13::text, "                   \
    "nullif(x.source_event, 0), $14::int8)).outcome FROM x ORDER BY x.ord)"
#define RAISE_SQL                                                                                \
    RAISE_SQL_HEAD " SELECT count(*) FILTER (WHERE outcome = 'raised'), "                                      \
    "count(*) FILTER (WHERE outcome = 'updated') FROM r"

/* A job's: the same, and the run's outcome in the same statement. */
#define RAISE_RUN_SQL                                                                            \
    RAISE_SQL_HEAD ", c AS (SELECT count(*) FILTER (WHERE outcome = 'raised') AS raised, "      \
    "count(*) FILTER (WHERE outcome = 'updated') AS updated FROM r) "                           \
    "UPDATE alert_job_runs j SET outcome = 'ok', finished_at = clock_timestamp(), "            \
    "raised = c.raised, updated = c.updated, message = $15 FROM c WHERE j.run_id = $14 "       \
    "RETURNING j.raised, j.updated"

enum { A_RULE, A_KIND, A_SUBJECT, A_HUB, A_SEV, A_SCORE, A_TITLE, A_EXPL, A_EVID, A_KNOWN,
       A_EVENT, A_N };

int alerts_raise_register(tw_pg *pg)
{
    if (tw_pg_prepare(pg, ALERTS_ST_RAISE, RAISE_SQL, ALERTS_RAISE_NPARAMS, NULL) != 0)
        return -1;
    return tw_pg_prepare(pg, ALERTS_ST_RAISE_RUN, RAISE_RUN_SQL, ALERTS_RAISE_NPARAMS + 1, NULL);
}

void alerts_raise_params_free(alerts_raise_params *p)
{
    tw_pgarray *arr = p->arrays;
    if (arr)
        for (int i = 0; i < A_N; i++)
            tw_pgarray_free(&arr[i]);
    free(arr);
    p->arrays = NULL;
}

int alerts_raise_params_build(alerts_raise_params *p, const tw_ar_alerts *a, int cfg_version,
                              const char *job, int64_t run_id)
{
    static const Oid oids[A_N] = {TW_OID_TEXT,  TW_OID_TEXT,  TW_OID_TEXT,  TW_OID_TEXT,
                                  TW_OID_INT2,  TW_OID_FLOAT8, TW_OID_TEXT, TW_OID_TEXT,
                                  TW_OID_JSONB, TW_OID_TIMESTAMPTZ, TW_OID_INT8};
    memset(p, 0, sizeof *p);
    tw_pgarray *arr = calloc(A_N, sizeof *arr);
    if (!arr)
        return -1;
    p->arrays = arr;
    for (int i = 0; i < A_N; i++)
        tw_pgarray_begin(&arr[i], oids[i]);
    for (size_t i = 0; i < a->n; i++) {
        const tw_ar_alert *x = &a->v[i];
        tw_pgarray_text(&arr[A_RULE], x->rule);
        tw_pgarray_text(&arr[A_KIND], tw_ar_subject_kind_name(x->subject_kind));
        tw_pgarray_text(&arr[A_SUBJECT], x->subject);
        tw_pgarray_text(&arr[A_HUB], x->hub ? x->hub : "");
        tw_pgarray_int2(&arr[A_SEV], (int16_t)x->severity);
        tw_pgarray_float8(&arr[A_SCORE], x->score);
        tw_pgarray_text(&arr[A_TITLE], x->title);
        tw_pgarray_text(&arr[A_EXPL], x->explanation);
        tw_pgarray_jsonb(&arr[A_EVID], x->evidence_json, strlen(x->evidence_json));
        tw_pgarray_timestamptz(&arr[A_KNOWN], x->known_at);
        tw_pgarray_int8(&arr[A_EVENT], x->source_event);
    }
    for (int i = 0; i < A_N; i++) {
        if (tw_pgarray_finish(&arr[i]) != 0 || arr[i].len > 0x7fffffff) {
            alerts_raise_params_free(p);
            return -1;
        }
        p->values[i] = (const char *)arr[i].data;
        p->lengths[i] = (int)arr[i].len;
        p->formats[i] = 1;
    }
    snprintf(p->version, sizeof p->version, "%d", cfg_version);
    snprintf(p->job, sizeof p->job, "%s", job ? job : "");
    p->values[A_N] = p->version;
    p->values[A_N + 1] = p->job;
    if (run_id > 0) {
        snprintf(p->run, sizeof p->run, "%lld", (long long)run_id);
        p->values[A_N + 2] = p->run;
    } else {
        p->values[A_N + 2] = NULL;
    }
    return 0;
}
