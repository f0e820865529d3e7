/* The provenance consumer's wiring: the connection, the consumer, the
 * rebuild, decoding shared by both applies, and the reference apply (each
 * batch one call of prov_apply(), migration 0006, with one jsonb document
 * per event); the default apply is fast.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provenance.h"
#include "tw_log.h"
#include "tw_metrics.h"
#include "tw_pgarray.h"
#include "tw_places.h"
#include "tw_provrows.h"

/* Every derived table, emptied by --rebuild in the transaction that resets
 * the cursor. */
static const char REBUILD_SQL[] =
    "TRUNCATE prov_hops, prov_readings, prov_merges, prov_item_keys, prov_party_identifiers, "
    "prov_parties, prov_items, prov_corrections";

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return NULL;
    }
    for (;;) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = ncap <= (64u << 20) ? realloc(buf, ncap) : NULL;
            if (!nb) {
                snprintf(err, errlen, "%s: too large or out of memory", path);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: read error", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

tw_places *prov_load_hubs(const char *data_dir, char *err, size_t errlen)
{
    char path[1024];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/channel-hubs.csv", data_dir);
    char *hubs = read_file(path, &len, err, errlen);
    if (!hubs)
        return NULL;
    /* The gazetteer is not needed: places arrive resolved; only distances
     * to the coast hubs are computed here. */
    static const char no_gazetteer[] = "country,name,lat,lon,admin1\n";
    tw_places *p = tw_places_load_mem(hubs, len, no_gazetteer, sizeof no_gazetteer - 1, NULL, 0,
                                      NULL, 0, err, errlen);
    free(hubs);
    return p;
}

void prov_skipped(prov_service *svc, const tw_consumer_event *e, const char *why)
{
    svc->skipped++;
    if (svc->daemon->metrics &&
        tw_metrics_counter_add(svc->daemon->metrics, "tidewatch_provenance_skipped_events_total",
                               "events of the log that could not be decoded (they add no rows)",
                               NULL, NULL, 1) != 0)
        TW_ERROR(NULL, "could not count a skipped event");
    TW_WARN(NULL, "event %lld (%s / %s) skipped: %s", (long long)e->id, e->source, e->source_ref,
            why);
}

int prov_decode(prov_service *svc, const tw_consumer_event *e, tw_prov_event *pe, int count)
{
    char err[256];
    tw_arena_reset(&svc->arena);
    tw_provrows_input in = {.event_id = e->id, .kind = e->kind, .source = e->source,
                            .source_ref = e->source_ref, .received_us = e->received_at_us,
                            .payload = e->payload, .payload_len = e->payload_len,
                            .derived = e->derived, .derived_len = e->derived_len,
                            .places = svc->places};
    if (tw_provrows_decode(&in, &svc->arena, pe, err, sizeof err) == 0)
        return 0;
    /* Only validated records reach the log; one that does not decode
     * contributes nothing (the same on every replay). */
    if (count)
        prov_skipped(svc, e, err);
    return -1;
}

int prov_apply_sql(prov_service *svc, const tw_consumer_event *ev, size_t n,
                   tw_consumer_writes *w)
{
    tw_pgarray arr = {0};
    int rc = -1;
    tw_pgarray_begin(&arr, TW_OID_JSONB);
    for (size_t i = 0; i < n; i++) {
        const tw_consumer_event *e = &ev[i];
        tw_prov_event pe;
        if (prov_decode(svc, e, &pe, 1) != 0)
            continue;
        size_t len = 0;
        char *json = tw_provrows_json(&pe, e->tx, &len);
        if (!json) {
            prov_skipped(svc, e, "cannot encode its rows");
            continue;
        }
        tw_pgarray_jsonb(&arr, json, len);
        free(json);
    }
    tw_arena_reset(&svc->arena);
    if (tw_pgarray_finish(&arr) != 0) {
        TW_ERROR(NULL, "out of memory building a batch");
        goto out;
    }
    if (arr.count > 0) {
        const char *values[] = {(const char *)arr.data};
        const int lengths[] = {(int)arr.len};
        const int formats[] = {1};
        if (arr.len > (size_t)0x7fffffff ||
            tw_consumer_writes_add(w, &(tw_pg_stmt){.stmt = PROV_ST_APPLY, .nparams = 1,
                                                    .values = values, .lengths = lengths,
                                                    .formats = formats}) != 0) {
            TW_ERROR(NULL, "could not queue a batch of %zu events", n);
            goto out;
        }
    }
    rc = 0;
out:
    tw_pgarray_free(&arr);
    return rc;
}

static int prepare(void *arg, const tw_consumer_event *ev, size_t n, tw_consumer_writes *reads)
{
    prov_service *svc = arg;
    return svc->cfg->reference_apply ? 0 : prov_fast_prepare(svc, ev, n, reads);
}

static int apply(void *arg, const tw_consumer_event *ev, size_t n, const PGresult *const *reads,
                 size_t nreads, tw_consumer_writes *w)
{
    prov_service *svc = arg;
    if (svc->cfg->reference_apply)
        return prov_apply_sql(svc, ev, n, w);
    return prov_fast_apply(svc, ev, n, reads, nreads, w);
}

static void on_db_state(void *arg, int up)
{
    prov_service *svc = arg;
    tw_daemon_db_state(svc->daemon, PROV_SERVICE, &svc->db_up, up);
}

static void on_rebuilt(const tw_pg_outcome *o, void *arg)
{
    (void)arg;
    if (o->kind == TW_PG_OK)
        TW_INFO(NULL, "rebuild: derived tables emptied, replaying the log from the start");
    else
        TW_ERROR(NULL, "rebuild failed (%s): %s", tw_pg_kind_name(o->kind), o->message);
}

int prov_start(prov_service *svc)
{
    char err[512];
    const prov_config *cfg = svc->cfg;
    tw_arena_init(&svc->arena, 0);
    tw_arena_set_limit(&svc->arena, (size_t)cfg->decode_memory);
    /* No JIT: a batch's statements are many short ones, which PostgreSQL
     * may cost high once the tables are large and would then compile for
     * longer than they run (as the query daemon's did). */
    tw_pg_opts opts = {.name = PROV_CONSUMER, .on_state = on_db_state, .state_arg = svc,
                       .statement_timeout_ms = (int)cfg->statement_timeout_ms,
                       .idle_in_xact_timeout_ms = cfg->idle_in_xact_timeout_ms
                                                      ? (int)cfg->idle_in_xact_timeout_ms
                                                      : -1,
                       .jit_off = 1};
    svc->pg = tw_pg_new(svc->daemon->base, cfg->common.database_url, &opts, err, sizeof err);
    if (!svc->pg) {
        TW_ERROR(NULL, "database: %s", err);
        return -1;
    }
    static const Oid types[] = {3807}; /* jsonb[] */
    if (!(svc->fast = prov_fast_new()) ||
        tw_pg_prepare(svc->pg, PROV_ST_APPLY, "SELECT prov_apply($1)", 1, types) != 0 ||
        prov_fast_register(svc->pg) != 0) {
        TW_ERROR(NULL, "could not register statements");
        return -1;
    }
    tw_consumer_opts co = {.name = PROV_CONSUMER, .batch_max = (int)cfg->batch_max,
                           .poll_ms = (int)cfg->poll_ms, .metrics = svc->daemon->metrics,
                           .prepare = prepare};
    svc->consumer = tw_consumer_new(svc->daemon->base, svc->pg, &co, apply, svc, err, sizeof err);
    if (!svc->consumer) {
        TW_ERROR(NULL, "consumer: %s", err);
        return -1;
    }
    if (cfg->rebuild) {
        const tw_pg_stmt st = {.stmt = REBUILD_SQL};
        if (tw_consumer_rebuild(svc->consumer, &st, 1, on_rebuilt, svc) != 0) {
            TW_ERROR(NULL, "could not ask for a rebuild");
            return -1;
        }
        TW_INFO(NULL, "rebuild requested: the derived tables will be rebuilt from the log");
    }
    return 0;
}

void prov_stop(prov_service *svc)
{
    tw_pg_free(svc->pg); /* first: the consumer must outlive its callbacks */
    svc->pg = NULL;
    tw_consumer_free(svc->consumer);
    svc->consumer = NULL;
    prov_fast_free(svc->fast);
    svc->fast = NULL;
    tw_arena_free(&svc->arena);
}
