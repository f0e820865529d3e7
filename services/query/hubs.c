/* AlertService: ListHubs, PutHub, SetHubEnabled.
 *
 * Input is checked here, field by field, before any SQL (the table's CHECK
 * constraints stay the last line); changes go through migration 0010's
 * hub_put and hub_set_enabled, which write the hub_changes row, in one
 * batch with the read of the hub as it now is. SQLSTATEs: 23505 (a hub of
 * that name in that country) ALREADY_EXISTS, TWH01 NOT_FOUND, TWH02
 * ABORTED (someone changed it since it was read). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "query.h"
#include "sql.h"

#define HUB_NAME_CHARS 128
#define HUB_ALIASES_MAX 32

static const char *const kind_names[] = {"", "coast", "inland", "transit", "uk_landing"};

static Tidewatch__V1__HubKind kind_of(const char *s)
{
    for (int k = 1; k <= 4; k++)
        if (s && strcmp(s, kind_names[k]) == 0)
            return (Tidewatch__V1__HubKind)k;
    return TIDEWATCH__V1__HUB_KIND__HUB_KIND_UNSPECIFIED;
}

/* Row `row` of `r` (sql.h HUB_COLS) as a Hub in the call's arena; NULL on
 * ENOMEM. */
static Tidewatch__V1__Hub *hub_from_row(qcall *q, const PGresult *r, int row)
{
    Tidewatch__V1__Hub *h = tw_arena_alloc(&q->arena, sizeof *h);
    if (!h)
        return NULL;
    tidewatch__v1__hub__init(h);
    h->hub_id = (int32_t)qi(r, row, "hub_id");
    h->name = qstr(q, r, row, "name");
    h->country = qstr(q, r, row, "country");
    h->locode = qstr(q, r, row, "locode");
    h->lat = qd(r, row, "lat");
    h->lon = qd(r, row, "lon");
    h->kind = kind_of(qs(r, row, "kind"));
    h->radius_km = qd(r, row, "radius_km");
    h->enabled = qi(r, row, "enabled") != 0;
    h->version = (int32_t)qi(r, row, "version");
    h->updated_at = qtime(q, r, row, "updated_us");
    const char *aj = qs(r, row, "aliases");
    json_t *arr = aj ? json_loads(aj, 0, NULL) : NULL;
    size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
    h->aliases = tw_arena_calloc(&q->arena, n + 1, sizeof *h->aliases);
    int ok = h->aliases != NULL && h->updated_at != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        const char *v = json_string_value(json_array_get(arr, i));
        char *c = tw_arena_strdup(&q->arena, v ? v : "");
        if (!c)
            ok = 0;
        else
            h->aliases[h->n_aliases++] = c;
    }
    json_decref(arr);
    return ok ? h : NULL;
}

/* ---- ListHubs ----------------------------------------------------------------- */

static void list_rows(qcall *q, const tw_pg_outcome *o)
{
    const PGresult *r = o->results[0];
    size_t n = (size_t)PQntuples(r);
    Tidewatch__V1__ListHubsResponse resp = TIDEWATCH__V1__LIST_HUBS_RESPONSE__INIT;
    resp.hubs = tw_arena_calloc(&q->arena, n + 1, sizeof *resp.hubs);
    int ok = resp.hubs != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        Tidewatch__V1__Hub *h = hub_from_row(q, r, (int)i);
        if (!h)
            ok = 0;
        else
            resp.hubs[resp.n_hubs++] = h;
    }
    if (!ok) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_reply(q, &resp.base, (long)resp.n_hubs);
}

void query_list_hubs(qcall *q)
{
    Tidewatch__V1__ListHubsRequest *req = q->req;
    if (req->kind < 0 || req->kind > 4) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "kind: not a HubKind (unspecified, coast, inland, transit, uk_landing)");
        return;
    }
    const char *v[2] = {kind_names[req->kind], req->include_disabled ? "true" : "false"};
    qcall_sql1(q, QSQL(Q_HUBS_LIST), 2, v, list_rows);
}

/* ---- PutHub, SetHubEnabled ------------------------------------------------------- */

static void hub_rows(qcall *q, const tw_pg_outcome *o)
{
    const PGresult *r = o->results[o->nresults - 1];
    if (PQntuples(r) == 0) { /* cannot happen: the function checked */
        qcall_fail(q, TW_GRPC_NOT_FOUND, "hub_id: no such hub");
        return;
    }
    Tidewatch__V1__Hub *h = hub_from_row(q, r, 0);
    if (!h) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    qcall_reply(q, &h->base, 1);
}

static int hub_error(qcall *q, const tw_pg_outcome *o)
{
    const int32_t *id = q->state;
    if (strcmp(o->sqlstate, "TWH01") == 0) {
        qcall_fail(q, TW_GRPC_NOT_FOUND, "hub_id: no hub %d", (int)*id);
        return 1;
    }
    if (strcmp(o->sqlstate, "TWH02") == 0) {
        qcall_fail(q, TW_GRPC_ABORTED,
                   "version: %s (someone changed hub %d since; redo your change on the hub as "
                   "it is now)",
                   o->message, (int)*id);
        return 1;
    }
    if (strcmp(o->sqlstate, "23505") == 0) {
        qcall_fail(q, TW_GRPC_ALREADY_EXISTS,
                   "name: a hub of that name already exists in that country");
        return 1;
    }
    if (strcmp(o->sqlstate, "23514") == 0) { /* checked above; the table says no */
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub: refused by the table's checks (%s)",
                   o->message);
        return 1;
    }
    return 0;
}

/* Printable UTF-8 of 1..max characters: NULL, or why not. */
static const char *name_error(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0)
        return "required";
    const char *bad = qfield_error(s, 4 * max);
    if (bad)
        return bad;
    if (u8_mbsnlen((const uint8_t *)s, n) > max)
        return "too long";
    if (s[0] == ' ' || s[n - 1] == ' ')
        return "leading or trailing spaces";
    return NULL;
}

static int upper2(const char *s)
{
    return s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z';
}

/* Field by field, as the table would refuse it (and more): 0 or -1
 * (answered INVALID_ARGUMENT naming the field). */
static int check_hub(qcall *q, const Tidewatch__V1__Hub *h)
{
    const char *bad = name_error(h->name, HUB_NAME_CHARS);
    if (bad) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub.name: %s (1 to %d characters)", bad,
                   HUB_NAME_CHARS);
        return -1;
    }
    if (h->n_aliases > HUB_ALIASES_MAX) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub.aliases: %zu, at most %d", h->n_aliases,
                   HUB_ALIASES_MAX);
        return -1;
    }
    for (size_t i = 0; i < h->n_aliases; i++) {
        bad = name_error(h->aliases[i], HUB_NAME_CHARS);
        if (bad) {
            qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub.aliases[%zu]: %s (1 to %d characters)",
                       i, bad, HUB_NAME_CHARS);
            return -1;
        }
    }
    if (strlen(h->country) != 2 || !upper2(h->country)) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "hub.country: two upper-case letters (ISO 3166-1 alpha-2, e.g. FR)");
        return -1;
    }
    const char *l = h->locode;
    if (l[0]) {
        int ok = strlen(l) == 5 && upper2(l);
        for (int i = 2; ok && i < 5; i++)
            ok = (l[i] >= 'A' && l[i] <= 'Z') || (l[i] >= '2' && l[i] <= '9');
        if (!ok) {
            qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                       "hub.locode: a UN/LOCODE (country letters and three letters or digits "
                       "2-9, e.g. FRCQF), or empty");
            return -1;
        }
    }
    if (!isfinite(h->lat) || h->lat < -90 || h->lat > 90) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub.lat: a latitude from -90 to 90 degrees");
        return -1;
    }
    if (!isfinite(h->lon) || h->lon < -180 || h->lon > 180) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub.lon: a longitude from -180 to 180 degrees");
        return -1;
    }
    if (h->lat == 0 && h->lon == 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "hub.lat, hub.lon: required (0, 0 is in the Gulf of Guinea)");
        return -1;
    }
    if (h->kind < 1 || h->kind > 4) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "hub.kind: required (coast, inland, transit or uk_landing)");
        return -1;
    }
    if (!isfinite(h->radius_km) || h->radius_km <= 0 || h->radius_km > 200) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "hub.radius_km: more than 0 and at most 200 kilometres");
        return -1;
    }
    return 0;
}

/* A text[] literal of the aliases ({"a","b"} with quotes and backslashes
 * escaped), in the arena. */
static char *aliases_array(qcall *q, const Tidewatch__V1__Hub *h)
{
    size_t len = 3;
    for (size_t i = 0; i < h->n_aliases; i++)
        len += 2 * strlen(h->aliases[i]) + 3;
    char *s = tw_arena_alloc(&q->arena, len);
    if (!s)
        return NULL;
    size_t o = 0;
    s[o++] = '{';
    for (size_t i = 0; i < h->n_aliases; i++) {
        if (i)
            s[o++] = ',';
        s[o++] = '"';
        for (const char *p = h->aliases[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                s[o++] = '\\';
            s[o++] = *p;
        }
        s[o++] = '"';
    }
    s[o++] = '}';
    s[o] = '\0';
    return s;
}

static int32_t *keep_id(qcall *q, int32_t id)
{
    int32_t *p = tw_arena_alloc(&q->arena, sizeof *p);
    if (!p) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    *p = id;
    q->state = p;
    return p;
}

void query_put_hub(qcall *q)
{
    Tidewatch__V1__PutHubRequest *req = q->req;
    const Tidewatch__V1__Hub *h = req->hub;
    if (!h) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub: required");
        return;
    }
    if (h->hub_id < 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub.hub_id: 0 to add a hub, else its id");
        return;
    }
    if (h->hub_id > 0 && h->version <= 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT,
                   "hub.version: required to change a hub (the version you read)");
        return;
    }
    if (check_hub(q, h) != 0 || qcheck_by_note(q, req->by, req->note) != 0 ||
        !keep_id(q, h->hub_id))
        return;
    const char **v = tw_arena_calloc(&q->arena, 12, sizeof *v);
    if (!v) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[0] = h->hub_id ? qfmt(q, "%d", (int)h->hub_id) : NULL;
    v[1] = h->hub_id ? qfmt(q, "%d", (int)h->version) : NULL;
    v[2] = h->name;
    v[3] = aliases_array(q, h);
    v[4] = h->country;
    v[5] = h->locode;
    v[6] = qfmt(q, "%.17g", h->lat);
    v[7] = qfmt(q, "%.17g", h->lon);
    v[8] = kind_names[h->kind];
    v[9] = qfmt(q, "%.17g", h->radius_km);
    v[10] = req->by;
    v[11] = req->note;
    if ((h->hub_id && (!v[0] || !v[1])) || !v[3] || !v[6] || !v[7] || !v[9]) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    tw_pg_stmt st[2] = {{.stmt = QSQL(Q_HUB_PUT), .nparams = 12, .values = v},
                        {.stmt = QSQL(Q_HUB_GET_PUT)}};
    q->on_query_error = hub_error;
    qcall_sql(q, st, 2, hub_rows);
}

void query_set_hub_enabled(qcall *q)
{
    Tidewatch__V1__SetHubEnabledRequest *req = q->req;
    if (req->hub_id <= 0) {
        qcall_fail(q, TW_GRPC_INVALID_ARGUMENT, "hub_id: required (a positive hub id)");
        return;
    }
    if (qcheck_by_note(q, req->by, req->note) != 0 || !keep_id(q, req->hub_id))
        return;
    const char **v = tw_arena_calloc(&q->arena, 4, sizeof *v);
    if (!v || !(v[0] = qfmt(q, "%d", (int)req->hub_id))) {
        qcall_fail(q, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    v[1] = req->enabled ? "true" : "false";
    v[2] = req->by;
    v[3] = req->note;
    tw_pg_stmt st[2] = {{.stmt = QSQL(Q_HUB_ENABLE), .nparams = 4, .values = v},
                        {.stmt = QSQL(Q_HUB_GET), .nparams = 1, .values = v}};
    q->on_query_error = hub_error;
    qcall_sql(q, st, 2, hub_rows);
}
