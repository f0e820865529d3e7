/* The rule context: the enabled hubs and the newest valid thresholds
 * (alert_config; a newer version that does not parse is logged and not
 * used), read at start and again whenever hub_put(),
 * hub_set_enabled() or a new alert_config version announces a change
 * (NOTIFY tidewatch_hubs), or the LISTEN is re-established after a
 * reconnect (a change may have been missed). A read that fails keeps the
 * previous context and is tried again at the next announcement or on the
 * consumer's next refusal. */
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "tw_log.h"

#define CTX_HUBS_SQL                                                                             \
    "SELECT name, CASE kind WHEN 'coast' THEN 1 WHEN 'inland' THEN 2 WHEN 'transit' THEN 3 "    \
    "ELSE 4 END, lat, lon, radius_km FROM hubs WHERE enabled ORDER BY hub_id"
#define CTX_CONFIG_SQL                                                                           \
    "SELECT version, settings::text FROM alert_config ORDER BY version DESC LIMIT 20"

void alerts_ctx_free(alerts_ctx *ctx)
{
    free(ctx->hubs);
    free(ctx->names);
    memset(ctx, 0, sizeof *ctx);
}

/* Build a context from the two results into *out. Returns 0, or -1 with a
 * reason in err. */
static int ctx_from_results(const PGresult *hubs, const PGresult *conf, alerts_ctx *out,
                            char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    /* The newest version that is valid; newer invalid ones are logged. */
    int found = 0;
    for (int i = 0; i < PQntuples(conf) && !found; i++) {
        int version = atoi(PQgetvalue(conf, i, 0));
        const char *json = PQgetvalue(conf, i, 1);
        char why[256];
        if (tw_ar_config_parse(json, strlen(json), version, &out->cfg, why, sizeof why) == 0)
            found = 1;
        else
            TW_ERROR(NULL, "alert_config version %d: %s (not used)", version, why);
    }
    if (!found) {
        snprintf(err, errlen, "alert_config has no valid version among the newest 20");
        return -1;
    }
    int n = PQntuples(hubs);
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += strlen(PQgetvalue(hubs, i, 0)) + 1;
    out->hubs = calloc(n > 0 ? (size_t)n : 1, sizeof *out->hubs);
    out->names = malloc(bytes ? bytes : 1);
    if (!out->hubs || !out->names) {
        alerts_ctx_free(out);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char *p = out->names;
    for (int i = 0; i < n; i++) {
        const char *name = PQgetvalue(hubs, i, 0);
        size_t len = strlen(name) + 1;
        memcpy(p, name, len);
        out->hubs[i] = (tw_ar_hub){.name = p,
                                   .kind = (tw_ar_hub_kind)atoi(PQgetvalue(hubs, i, 1)),
                                   .lat = strtod(PQgetvalue(hubs, i, 2), NULL),
                                   .lon = strtod(PQgetvalue(hubs, i, 3), NULL),
                                   .radius_km = strtod(PQgetvalue(hubs, i, 4), NULL)};
        p += len;
    }
    out->nhubs = (size_t)n;
    out->loaded = 1;
    return 0;
}

static void ctx_load(alerts_service *svc);

void alerts_ctx_reload(alerts_service *svc)
{
    ctx_load(svc);
}

static void on_ctx(const tw_pg_outcome *o, void *arg)
{
    alerts_service *svc = arg;
    svc->ctx_loading = 0;
    if (o->kind == TW_PG_SHUTDOWN)
        return;
    if (o->kind != TW_PG_OK) {
        TW_WARN(NULL, "could not read hubs and thresholds (%s): %s", tw_pg_kind_name(o->kind),
                o->message);
        return;
    }
    alerts_ctx next;
    char err[512];
    if (ctx_from_results(o->results[0], o->results[1], &next, err, sizeof err) != 0) {
        TW_ERROR(NULL, "hubs and thresholds: %s (keeping the previous ones)", err);
    } else {
        int first = !svc->ctx.loaded;
        alerts_ctx_free(&svc->ctx);
        svc->ctx = next;
        TW_INFO(NULL, "%zu enabled hubs, thresholds version %d", svc->ctx.nhubs,
                svc->ctx.cfg.version);
        if (first && svc->consumer)
            tw_consumer_wake(svc->consumer);
    }
    if (svc->ctx_dirty) {
        svc->ctx_dirty = 0;
        ctx_load(svc);
    }
}

static void ctx_load(alerts_service *svc)
{
    if (svc->ctx_loading) {
        svc->ctx_dirty = 1;
        return;
    }
    const tw_pg_stmt st[] = {{.stmt = CTX_HUBS_SQL}, {.stmt = CTX_CONFIG_SQL}};
    if (tw_pg_batch(svc->pg, st, 2, on_ctx, svc) != 0) {
        TW_ERROR(NULL, "could not read hubs and thresholds");
        return;
    }
    svc->ctx_loading = 1;
}

static void on_notify(void *arg, const char *channel, const char *payload, int resync)
{
    (void)channel;
    (void)payload;
    (void)resync; /* a first LISTEN, a reconnect or a change: read again */
    ctx_load(arg);
}

int alerts_ctx_start(alerts_service *svc)
{
    if (tw_pg_listen(svc->pg, "tidewatch_hubs", on_notify, svc) != 0) {
        TW_ERROR(NULL, "could not listen for hub changes");
        return -1;
    }
    return 0;
}
