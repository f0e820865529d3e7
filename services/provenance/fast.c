/* The provenance consumer's apply, with identities resolved in C and rows
 * written with COPY (the default; --reference-apply runs prov_apply() in
 * SQL instead, event by event: the rule this file must reproduce row for
 * row, which test_provenance.py checks on a replay full of merges,
 * partial readings and corrections).
 *
 * Per batch:
 *   prepare: one read for what the batch's readings and records find in
 *     the database: the prov_item_keys rows of every (kind, key) read, and
 *     which of the batch's records a correction already applied targets;
 *   apply:   the events in log order against those keys (tw_provkeys, to
 *     which each event adds its own, so every event sees exactly the keys
 *     of the events before it). A plain event (not a correction, not the
 *     target of one) becomes COPY rows for items, parties, identifiers,
 *     keys, readings, hops and merges; a correction or a corrected record
 *     goes through prov_apply() in SQL, after the rows gathered so far (its
 *     effect on keys is the same rule, mirrored here). Merges move roots
 *     with one UPDATE each, after the rows of their segment, and the new
 *     hops are folded into their items' summaries (first and last seen,
 *     last place) by one UPDATE per segment. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provenance.h"
#include "tw_copytext.h"
#include "tw_log.h"
#include "tw_pgarray.h"
#include "tw_provkeys.h"
#include "tw_provrows.h"

/* Correction targets share the key set under a kind no key has. */
#define TARGET_KIND 99

enum { T_ITEMS, T_PARTIES, T_IDENTS, T_KEYS, T_READINGS, T_HOPS, T_MERGES, T_N };

/* In the order a segment is written (items before the keys and readings
 * that name them, parties before their identifiers). */
static const char *const COPY_SQL[T_N] = {
    "COPY prov_items (item_id, root_id, kind, maker, model, partial, first_event) FROM STDIN",
    "COPY prov_parties (party_id, event_id, role, kind, name, name_key, country, address,"
    " address_key, place, lat, lon) FROM STDIN",
    "COPY prov_party_identifiers (party_id, kind, value) FROM STDIN",
    "COPY prov_item_keys (key_kind, key, maker, item_id, loose, partial, first_event) FROM STDIN",
    "COPY prov_readings (event_id, field, item_id, key_kind, key, raw, method, completeness,"
    " format, maker, partial) FROM STDIN",
    "COPY prov_hops (event_id, line, item_id, kind, status, corrected_by, corrects, line_field,"
    " quantity, occurred_at, expected_at, delivered_at, received_at, source, source_ref,"
    " grading_source, grading_info, grading_handling, from_party, to_party, carrier_party,"
    " origin_name, origin_country, origin_lat, origin_lon, place_name, place_country,"
    " place_lat, place_lon, place_hub, place_hub_kind, coast_hub, coast_hub_km, currency,"
    " unit_price_minor, payment, invoice_ref, consignment_ref, vehicle, case_ref, condition,"
    " launch) FROM STDIN",
    "COPY prov_merges (item_id, into_id, event_id, reason) FROM STDIN",
};

/* What the batch's keys and records already have (text results). */
static const char SQL_READ[] =
    "SELECT 1, k.key_kind, k.key, k.maker, k.item_id"
    "  FROM unnest($1::smallint[], $2::text[]) AS u(kind, key)"
    "  JOIN prov_item_keys k ON k.key_kind = u.kind AND k.key = u.key"
    " UNION ALL "
    "SELECT DISTINCT 2, 0, c.target_source, c.target_ref, 0"
    "  FROM unnest($3::text[], $4::text[]) AS t(src, ref)"
    "  JOIN prov_corrections c ON c.target_source = t.src AND c.target_ref = t.ref";

/* A merge while no correction undoes it: every item of the merged groups
 * takes the smallest root (prov_apply_event's UPDATE). */
static const char SQL_MERGE_ROOTS[] =
    "UPDATE prov_items SET root_id = m.r"
    "  FROM (SELECT min(root_id) AS r, array_agg(DISTINCT root_id) AS roots"
    "          FROM prov_items WHERE item_id = ANY ($1::bigint[])) m"
    " WHERE root_id = ANY (m.roots) AND root_id <> m.r";

/* A segment's new hops folded into their items' summaries (what
 * prov_touch() would compute from all the hops, given that the new ones are
 * in force and no old one changed): earliest and latest event time, and the
 * last place unless the item's is later in (time, event, line) order, a
 * missing time last. Times are Unix microseconds. */
#define TS(x) "(timestamptz 'epoch' + " x " * interval '1 microsecond')"
static const char SQL_SUMMARY[] =
    "UPDATE prov_items i"
    "   SET first_seen = least(i.first_seen, s.f), last_seen = greatest(i.last_seen, s.l),"
    "       last_place_at = CASE WHEN s.b THEN s.pat ELSE i.last_place_at END,"
    "       last_place_event = CASE WHEN s.b THEN s.pev ELSE i.last_place_event END,"
    "       last_place_line = CASE WHEN s.b THEN s.pline ELSE i.last_place_line END,"
    "       last_lat = CASE WHEN s.b THEN s.lat ELSE i.last_lat END,"
    "       last_lon = CASE WHEN s.b THEN s.lon ELSE i.last_lon END,"
    "       last_place = CASE WHEN s.b THEN s.place ELSE i.last_place END,"
    "       last_country = CASE WHEN s.b THEN s.country ELSE i.last_country END"
    "  FROM (SELECT u.*, u.pev IS NOT NULL AND (c.last_place_event IS NULL"
    "               OR (u.pat IS NOT NULL AND (c.last_place_at IS NULL OR u.pat > c.last_place_at))"
    "               OR (u.pat IS NOT DISTINCT FROM c.last_place_at"
    "                   AND (u.pev, u.pline) > (c.last_place_event, c.last_place_line))) AS b"
    "          FROM (SELECT id, " TS("f") " AS f, " TS("l") " AS l, " TS("pat") " AS pat,"
    "                       pev, pline::integer AS pline, lat, lon, place, country"
    "                  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],"
    "                              $5::bigint[], $6::bigint[], $7::float8[], $8::float8[],"
    "                              $9::text[], $10::text[])"
    "                       AS x(id, f, l, pat, pev, pline, lat, lon, place, country)) u"
    "          JOIN prov_items c ON c.item_id = u.id) s"
    " WHERE i.item_id = s.id";

/* One new hop of an item, for its summary. */
typedef struct sumrec {
    int64_t item;
    int has_t;           /* occurred_at not NULL */
    int64_t t;
    int has_place;       /* place_name <> '' OR place_lat IS NOT NULL */
    int64_t event;
    int line;
    int has_coords;
    double lat, lon;
    const char *name, *country; /* in prov_fast.seg */
} sumrec;

struct prov_fast {
    tw_provkeys *keys;
    tw_copytext t[T_N];
    /* The segment's new hops with an item (their strings in seg). */
    sumrec *sums;
    size_t nsums, capsums;
    tw_arena seg;
    /* Merges of the segment: their item arrays, in order. */
    tw_pgarray *merges;
    size_t nmerges, capmerges;
    /* (item, into) pairs of the current event's merges (no duplicates). */
    int64_t *pairs;
    size_t npairs, cappairs;
    int failed;
};

/* Room for one more element in *v (n used of *cap, each size bytes).
 * Returns 0, or -1 (and f->failed) when memory runs out. */
static int room(prov_fast *f, void **v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, nc * size);
    if (!nv) {
        f->failed = 1;
        return -1;
    }
    *v = nv;
    *cap = nc;
    return 0;
}

prov_fast *prov_fast_new(void)
{
    prov_fast *f = calloc(1, sizeof *f);
    if (f && !(f->keys = tw_provkeys_new())) {
        free(f);
        return NULL;
    }
    if (f)
        tw_arena_init(&f->seg, 0);
    return f;
}

static void merges_clear(prov_fast *f)
{
    for (size_t i = 0; i < f->nmerges; i++)
        tw_pgarray_free(&f->merges[i]);
    f->nmerges = 0;
}

void prov_fast_free(prov_fast *f)
{
    if (!f)
        return;
    tw_provkeys_free(f->keys);
    for (int i = 0; i < T_N; i++)
        tw_copytext_free(&f->t[i]);
    merges_clear(f);
    free(f->merges);
    free(f->sums);
    tw_arena_free(&f->seg);
    free(f->pairs);
    free(f);
}

/* ---- prepare ------------------------------------------------------------ */

static void target_key(char *buf, size_t len, const char *src, const char *ref)
{
    snprintf(buf, len, "%s\x1f%s", src, ref);
}

int prov_fast_prepare(prov_service *svc, const tw_consumer_event *ev, size_t n,
                      tw_consumer_writes *reads)
{
    tw_pgarray kinds = {0}, keys = {0}, srcs = {0}, refs = {0};
    int rc = -1;
    tw_pgarray_begin(&kinds, TW_OID_INT2);
    tw_pgarray_begin(&keys, TW_OID_TEXT);
    tw_pgarray_begin(&srcs, TW_OID_TEXT);
    tw_pgarray_begin(&refs, TW_OID_TEXT);
    for (size_t i = 0; i < n; i++) {
        tw_prov_event pe;
        tw_pgarray_text(&srcs, ev[i].source);
        tw_pgarray_text(&refs, ev[i].source_ref);
        if (prov_decode(svc, &ev[i], &pe, 0) != 0)
            continue;
        for (size_t l = 0; l < pe.nlines; l++) {
            const tw_prov_equipment *q = pe.lines[l].equipment;
            for (size_t r = 0; q && r < q->nreadings; r++)
                if (q->readings[r].key[0]) {
                    tw_pgarray_int2(&kinds, (int16_t)q->readings[r].key_kind);
                    tw_pgarray_text(&keys, q->readings[r].key);
                }
        }
    }
    tw_arena_reset(&svc->arena);
    if (tw_pgarray_finish(&kinds) != 0 || tw_pgarray_finish(&keys) != 0 ||
        tw_pgarray_finish(&srcs) != 0 || tw_pgarray_finish(&refs) != 0) {
        TW_ERROR(NULL, "out of memory preparing a batch");
        goto out;
    }
    const char *values[] = {(const char *)kinds.data, (const char *)keys.data,
                            (const char *)srcs.data, (const char *)refs.data};
    const int lengths[] = {(int)kinds.len, (int)keys.len, (int)srcs.len, (int)refs.len};
    const int formats[] = {1, 1, 1, 1};
    if (keys.len > 0x7fffffff || srcs.len > 0x7fffffff || refs.len > 0x7fffffff ||
        tw_consumer_writes_add(reads, &(tw_pg_stmt){.stmt = PROV_ST_READ, .nparams = 4,
                                                    .values = values, .lengths = lengths,
                                                    .formats = formats}) != 0) {
        TW_ERROR(NULL, "could not queue a batch's read");
        goto out;
    }
    rc = 0;
out:
    tw_pgarray_free(&kinds);
    tw_pgarray_free(&keys);
    tw_pgarray_free(&srcs);
    tw_pgarray_free(&refs);
    return rc;
}

/* ---- rows ---------------------------------------------------------------- */

static void party_rows(prov_fast *f, const tw_prov_event *e)
{
    for (size_t i = 0; i < e->nparties; i++) {
        const tw_prov_party *p = &e->parties[i];
        tw_copytext *t = &f->t[T_PARTIES];
        tw_copytext_int(t, p->party_id);
        tw_copytext_int(t, e->event_id);
        tw_copytext_str(t, p->role_name);
        tw_copytext_int(t, p->kind);
        tw_copytext_str(t, p->name);
        tw_copytext_str(t, p->name_key);
        tw_copytext_str(t, p->country);
        tw_copytext_str(t, p->address);
        tw_copytext_str(t, p->address_key);
        tw_copytext_str(t, p->place);
        tw_copytext_f64(t, p->has_coords, p->lat);
        tw_copytext_f64(t, p->has_coords, p->lon);
        tw_copytext_end(t);
        for (size_t j = 0; j < p->nidents; j++) {
            int dup = 0;
            for (size_t k = 0; k < j && !dup; k++)
                dup = strcmp(p->idents[k].kind, p->idents[j].kind) == 0 &&
                      strcmp(p->idents[k].value, p->idents[j].value) == 0;
            if (dup)
                continue;
            tw_copytext *x = &f->t[T_IDENTS];
            tw_copytext_int(x, p->party_id);
            tw_copytext_str(x, p->idents[j].kind);
            tw_copytext_str(x, p->idents[j].value);
            tw_copytext_end(x);
        }
    }
}

static void place_cols(tw_copytext *t, const tw_prov_place *p, int hub)
{
    tw_copytext_str(t, p->name);
    tw_copytext_str(t, p->country);
    tw_copytext_f64(t, p->has_coords, p->lat);
    tw_copytext_f64(t, p->has_coords, p->lon);
    if (hub) {
        tw_copytext_str(t, p->hub);
        tw_copytext_str(t, p->hub_kind);
        tw_copytext_str(t, p->coast_hub);
        tw_copytext_f64(t, p->has_coast_km, p->coast_km);
    }
}

static void hop_row(prov_fast *f, const tw_prov_event *e, const tw_prov_line *l, int64_t item)
{
    tw_copytext *t = &f->t[T_HOPS];
    tw_copytext_int(t, e->event_id);
    tw_copytext_int(t, l->line);
    tw_copytext_id(t, item);
    tw_copytext_int(t, l->hop_kind);
    tw_copytext_int(t, 0);   /* status: in force */
    tw_copytext_null(t);     /* corrected_by */
    tw_copytext_null(t);     /* corrects */
    tw_copytext_str(t, l->line_field);
    tw_copytext_int(t, (int64_t)l->quantity);
    tw_copytext_time(t, e->has_time, e->time_us);
    tw_copytext_time(t, e->has_expected, e->expected_us);
    tw_copytext_time(t, e->has_delivered, e->delivered_us);
    tw_copytext_time(t, true, e->received_us);
    tw_copytext_str(t, e->source);
    tw_copytext_str(t, e->source_ref);
    tw_copytext_int(t, e->grading_source);
    tw_copytext_int(t, e->grading_info);
    tw_copytext_int(t, e->grading_handling);
    tw_copytext_id(t, e->from_party);
    tw_copytext_id(t, e->to_party);
    tw_copytext_id(t, e->carrier_party);
    place_cols(t, &e->origin, 0);
    place_cols(t, &e->place, 1);
    tw_copytext_str(t, l->currency);
    if (l->has_price)
        tw_copytext_int(t, l->unit_price_minor);
    else
        tw_copytext_null(t);
    tw_copytext_int(t, e->payment);
    tw_copytext_str(t, e->invoice_ref);
    tw_copytext_str(t, e->consignment_ref);
    tw_copytext_str(t, e->vehicle);
    tw_copytext_str(t, e->case_ref);
    tw_copytext_int(t, l->condition);
    tw_copytext_bool(t, e->launch);
    tw_copytext_end(t);
}

/* The merge reason prov_apply_event writes: "<field> read as K1 (plate),
 * K2 (stamp)" over the complete readings with a key, in order. */
static char *merge_reason(tw_arena *a, const tw_prov_equipment *q)
{
    size_t len = strlen(q->field) + 16;
    for (size_t r = 0; r < q->nreadings; r++)
        len += strlen(q->readings[r].key) + 24;
    char *s = tw_arena_alloc(a, len);
    if (!s)
        return NULL;
    size_t o = (size_t)snprintf(s, len, "%s read as ", q->field);
    int first = 1;
    for (size_t r = 0; r < q->nreadings; r++) {
        const tw_prov_reading *rd = &q->readings[r];
        if (!rd->key[0] || rd->partial)
            continue;
        const char *m = tw_provrows_method_name(rd->method);
        o += (size_t)snprintf(s + o, len - o, "%s%s%s%s%s", first ? "" : ", ", rd->key,
                              m[0] ? " (" : "", m, m[0] ? ")" : "");
        first = 0;
    }
    return s;
}

static int pair_seen(prov_fast *f, int64_t item, int64_t into)
{
    for (size_t i = 0; i < f->npairs; i++)
        if (f->pairs[2 * i] == item && f->pairs[2 * i + 1] == into)
            return 1;
    if (room(f, (void **)&f->pairs, f->npairs, &f->cappairs, 2 * sizeof *f->pairs) != 0)
        return 1;
    f->pairs[2 * f->npairs] = item;
    f->pairs[2 * f->npairs + 1] = into;
    f->npairs++;
    return 0;
}

static void merge_rows(prov_fast *f, tw_arena *a, const tw_prov_event *e,
                       const tw_prov_equipment *q, const int64_t *matched, size_t nm,
                       int64_t item)
{
    char *reason = merge_reason(a, q);
    if (!reason) {
        f->failed = 1;
        return;
    }
    for (size_t i = 0; i < nm; i++) {
        if (matched[i] == item || pair_seen(f, matched[i], item))
            continue;
        tw_copytext *t = &f->t[T_MERGES];
        tw_copytext_int(t, matched[i]);
        tw_copytext_int(t, item);
        tw_copytext_int(t, e->event_id);
        tw_copytext_str(t, reason);
        tw_copytext_end(t);
    }
    if (room(f, (void **)&f->merges, f->nmerges, &f->capmerges, sizeof *f->merges) != 0)
        return;
    tw_pgarray *arr = &f->merges[f->nmerges++];
    memset(arr, 0, sizeof *arr);
    tw_pgarray_begin(arr, TW_OID_INT8);
    for (size_t i = 0; i < nm; i++)
        tw_pgarray_int8(arr, matched[i]);
    if (tw_pgarray_finish(arr) != 0)
        f->failed = 1;
}

/* Note the hop of line l (item) for the segment's summaries. */
static void add_sum(prov_fast *f, const tw_prov_event *e, const tw_prov_line *l, int64_t item)
{
    if (room(f, (void **)&f->sums, f->nsums, &f->capsums, sizeof *f->sums) != 0)
        return;
    const tw_prov_place *p = &e->place;
    int coords = p->has_coords && isfinite(p->lat) && isfinite(p->lon);
    sumrec *r = &f->sums[f->nsums++];
    *r = (sumrec){.item = item, .has_t = tw_copytext_time_valid(e->has_time, e->time_us),
                  .t = e->time_us, .has_place = p->name[0] || (p->has_coords && isfinite(p->lat)),
                  .event = e->event_id, .line = l->line, .has_coords = coords, .lat = p->lat,
                  .lon = p->lon};
    if (r->has_place) {
        r->name = tw_arena_strdup(&f->seg, p->name);
        r->country = tw_arena_strdup(&f->seg, p->country);
        if (!r->name || !r->country)
            f->failed = 1;
    }
}

/* Resolve line l's equipment against the keys known so far and record its
 * keys; with rows, also write its item, keys, readings, merges and hop.
 * The rule is prov_apply_event's (migration 0006). */
static void apply_line(prov_fast *f, tw_arena *a, const tw_prov_event *e, const tw_prov_line *l,
                       int rows)
{
    const tw_prov_equipment *q = l->equipment;
    int64_t item = 0;
    if (q) {
        int64_t *matched = tw_arena_alloc(a, (q->nreadings + 1) * sizeof *matched);
        size_t nm = 0;
        int full = 0, partial = 0;
        if (!matched) {
            f->failed = 1;
            return;
        }
        for (size_t r = 0; r < q->nreadings; r++) {
            const tw_prov_reading *rd = &q->readings[r];
            if (!rd->key[0])
                continue;
            if (rd->partial) {
                partial = 1;
                continue;
            }
            full = 1;
            int64_t ki = tw_provkeys_item(f->keys, rd->key_kind, rd->key, rd->maker);
            int dup = 0;
            for (size_t i = 0; i < nm && !dup; i++)
                dup = matched[i] == ki;
            if (ki && !dup)
                matched[nm++] = ki;
        }
        if (full && nm > 0) {
            item = matched[0];
            for (size_t i = 1; i < nm; i++)
                if (matched[i] < item)
                    item = matched[i];
        } else if (full || partial) {
            item = e->event_id * TW_PROVROWS_ID_STRIDE + l->line;
            if (rows) {
                tw_copytext *t = &f->t[T_ITEMS];
                tw_copytext_int(t, item);
                tw_copytext_int(t, item);
                tw_copytext_int(t, q->kind);
                tw_copytext_str(t, q->maker);
                tw_copytext_str(t, q->model);
                tw_copytext_bool(t, !full);
                tw_copytext_int(t, e->event_id);
                tw_copytext_end(t);
            }
        }
        if (nm > 1 && rows)
            merge_rows(f, a, e, q, matched, nm, item);
        for (size_t r = 0; item && r < q->nreadings; r++) {
            const tw_prov_reading *rd = &q->readings[r];
            int64_t kitem = item;
            if (rd->key[0]) {
                if (!rd->partial) {
                    int64_t ki = tw_provkeys_item(f->keys, rd->key_kind, rd->key, rd->maker);
                    if (ki)
                        kitem = ki;
                }
                int added = tw_provkeys_add(f->keys, rd->key_kind, rd->key, rd->maker,
                                            rd->partial ? item : kitem);
                if (added < 0) {
                    f->failed = 1;
                    return;
                }
                if (added && rows) {
                    tw_copytext *t = &f->t[T_KEYS];
                    tw_copytext_int(t, rd->key_kind);
                    tw_copytext_str(t, rd->key);
                    tw_copytext_str(t, rd->maker);
                    tw_copytext_int(t, rd->partial ? item : kitem);
                    tw_copytext_str(t, rd->loose);
                    tw_copytext_bool(t, rd->partial);
                    tw_copytext_int(t, e->event_id);
                    tw_copytext_end(t);
                }
            }
            if (rows) {
                tw_copytext *t = &f->t[T_READINGS];
                tw_copytext_int(t, e->event_id);
                tw_copytext_str(t, rd->field);
                tw_copytext_int(t, kitem);
                tw_copytext_int(t, rd->key_kind);
                tw_copytext_str(t, rd->key);
                tw_copytext_str(t, rd->raw);
                tw_copytext_int(t, rd->method);
                tw_copytext_int(t, rd->completeness);
                tw_copytext_str(t, rd->format);
                tw_copytext_str(t, rd->maker);
                tw_copytext_bool(t, rd->partial);
                tw_copytext_end(t);
            }
        }
        if (item && rows)
            add_sum(f, e, l, item);
    }
    if (rows)
        hop_row(f, e, l, item);
}

/* Every string of the event valid UTF-8 (the reference path's JSON would
 * refuse the event otherwise: it is skipped on both). */
static int event_utf8(const tw_prov_event *e)
{
    const char *s[] = {e->source, e->source_ref, e->corrects_source, e->corrects_ref,
                       e->invoice_ref, e->consignment_ref, e->vehicle, e->case_ref,
                       e->origin.name, e->origin.country, e->origin.hub, e->origin.hub_kind,
                       e->origin.coast_hub, e->place.name, e->place.country, e->place.hub,
                       e->place.hub_kind, e->place.coast_hub};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
        if (!tw_copytext_utf8(s[i]))
            return 0;
    for (size_t i = 0; i < e->nparties; i++) {
        const tw_prov_party *p = &e->parties[i];
        const char *ps[] = {p->role_name, p->name, p->name_key, p->country, p->address,
                            p->address_key, p->place};
        for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++)
            if (!tw_copytext_utf8(ps[k]))
                return 0;
        for (size_t j = 0; j < p->nidents; j++)
            if (!tw_copytext_utf8(p->idents[j].kind) || !tw_copytext_utf8(p->idents[j].value))
                return 0;
    }
    for (size_t i = 0; i < e->nlines; i++) {
        const tw_prov_line *l = &e->lines[i];
        if (!tw_copytext_utf8(l->line_field) || !tw_copytext_utf8(l->currency))
            return 0;
        const tw_prov_equipment *q = l->equipment;
        if (q && (!tw_copytext_utf8(q->field) || !tw_copytext_utf8(q->maker) ||
                  !tw_copytext_utf8(q->model)))
            return 0;
        for (size_t r = 0; q && r < q->nreadings; r++) {
            const tw_prov_reading *rd = &q->readings[r];
            const char *rs[] = {rd->field, rd->key, rd->loose, rd->raw, rd->format, rd->maker};
            for (size_t k = 0; k < sizeof rs / sizeof rs[0]; k++)
                if (!tw_copytext_utf8(rs[k]))
                    return 0;
        }
    }
    return 1;
}

/* ---- apply --------------------------------------------------------------- */

static int add_int8_stmt(tw_consumer_writes *w, const char *stmt, const tw_pgarray *arr)
{
    const char *values[] = {(const char *)arr->data};
    const int lengths[] = {(int)arr->len};
    const int formats[] = {1};
    if (arr->len > 0x7fffffff)
        return -1;
    return tw_consumer_writes_add(w, &(tw_pg_stmt){.stmt = stmt, .nparams = 1, .values = values,
                                                   .lengths = lengths, .formats = formats});
}

static int by_item(const void *a, const void *b)
{
    const sumrec *x = a, *y = b;
    return (x->item > y->item) - (x->item < y->item);
}

/* r is later than best as prov_touch orders place hops: by event time
 * (a missing time last), then event id, then line. */
static int later_place(const sumrec *r, const sumrec *best)
{
    if (r->has_t != best->has_t)
        return r->has_t;
    if (r->has_t && r->t != best->t)
        return r->t > best->t;
    return r->event != best->event ? r->event > best->event : r->line > best->line;
}

/* Queue the summary update of the segment's items (one row per item). */
static int summaries(prov_fast *f, tw_consumer_writes *w)
{
    enum { A_ID, A_F, A_L, A_PAT, A_PEV, A_PLINE, A_LAT, A_LON, A_PLACE, A_COUNTRY, A_N };
    static const Oid oids[A_N] = {TW_OID_INT8, TW_OID_INT8, TW_OID_INT8, TW_OID_INT8,
                                  TW_OID_INT8, TW_OID_INT8, TW_OID_FLOAT8, TW_OID_FLOAT8,
                                  TW_OID_TEXT, TW_OID_TEXT};
    tw_pgarray a[A_N];
    memset(a, 0, sizeof a);
    for (int k = 0; k < A_N; k++)
        tw_pgarray_begin(&a[k], oids[k]);
    qsort(f->sums, f->nsums, sizeof *f->sums, by_item);
    for (size_t i = 0; i < f->nsums;) {
        size_t j = i;
        const sumrec *first = NULL, *last = NULL, *place = NULL;
        for (; j < f->nsums && f->sums[j].item == f->sums[i].item; j++) {
            const sumrec *r = &f->sums[j];
            if (r->has_t && (!first || r->t < first->t))
                first = r;
            if (r->has_t && (!last || r->t > last->t))
                last = r;
            if (r->has_place && (!place || later_place(r, place)))
                place = r;
        }
        tw_pgarray_int8(&a[A_ID], f->sums[i].item);
        if (first) {
            tw_pgarray_int8(&a[A_F], first->t);
            tw_pgarray_int8(&a[A_L], last->t);
        } else {
            tw_pgarray_null(&a[A_F]);
            tw_pgarray_null(&a[A_L]);
        }
        if (place && place->has_t)
            tw_pgarray_int8(&a[A_PAT], place->t);
        else
            tw_pgarray_null(&a[A_PAT]);
        if (place) {
            tw_pgarray_int8(&a[A_PEV], place->event);
            tw_pgarray_int8(&a[A_PLINE], place->line);
            tw_pgarray_text(&a[A_PLACE], place->name);
            tw_pgarray_text(&a[A_COUNTRY], place->country);
        } else {
            tw_pgarray_null(&a[A_PEV]);
            tw_pgarray_null(&a[A_PLINE]);
            tw_pgarray_null(&a[A_PLACE]);
            tw_pgarray_null(&a[A_COUNTRY]);
        }
        if (place && place->has_coords) {
            tw_pgarray_float8(&a[A_LAT], place->lat);
            tw_pgarray_float8(&a[A_LON], place->lon);
        } else {
            tw_pgarray_null(&a[A_LAT]);
            tw_pgarray_null(&a[A_LON]);
        }
        i = j;
    }
    const char *values[A_N];
    int lengths[A_N], formats[A_N];
    int rc = 0;
    for (int k = 0; k < A_N; k++) {
        if (tw_pgarray_finish(&a[k]) != 0 || a[k].len > 0x7fffffff)
            rc = -1;
        values[k] = (const char *)a[k].data;
        lengths[k] = (int)a[k].len;
        formats[k] = 1;
    }
    if (rc == 0)
        rc = tw_consumer_writes_add(w, &(tw_pg_stmt){.stmt = PROV_ST_SUMMARY, .nparams = A_N,
                                                     .values = values, .lengths = lengths,
                                                     .formats = formats});
    for (int k = 0; k < A_N; k++)
        tw_pgarray_free(&a[k]);
    return rc;
}

/* Queue the rows gathered so far, then the segment's merges and the
 * summaries of its items. */
static int flush(prov_fast *f, tw_consumer_writes *w)
{
    int rc = 0;
    for (int i = 0; i < T_N && rc == 0; i++) {
        tw_copytext *t = &f->t[i];
        if (t->failed)
            rc = -1;
        else if (t->rows > 0)
            rc = tw_consumer_writes_add(w, &(tw_pg_stmt){.stmt = COPY_SQL[i], .copy = 1,
                                                         .copy_data = t->data,
                                                         .copy_len = t->len});
        tw_copytext_reset(t);
    }
    for (size_t i = 0; i < f->nmerges && rc == 0; i++)
        rc = add_int8_stmt(w, PROV_ST_MERGE_ROOTS, &f->merges[i]);
    merges_clear(f);
    if (rc == 0 && f->nsums > 0)
        rc = summaries(f, w);
    f->nsums = 0;
    tw_arena_reset(&f->seg);
    return rc;
}

/* Load what prepare read: the keys, and the records a correction targets. */
static int load_reads(prov_fast *f, const PGresult *const *reads, size_t nreads)
{
    tw_provkeys_clear(f->keys);
    if (nreads != 1 || PQnfields(reads[0]) != 5)
        return -1;
    const PGresult *r = reads[0];
    for (int i = 0, n = PQntuples(r); i < n; i++) {
        const char *what = PQgetvalue(r, i, 0), *key = PQgetvalue(r, i, 2);
        int added;
        if (what[0] == '1') {
            added = tw_provkeys_add(f->keys, atoi(PQgetvalue(r, i, 1)), key, PQgetvalue(r, i, 3),
                                    strtoll(PQgetvalue(r, i, 4), NULL, 10));
        } else {
            size_t len = strlen(key) + strlen(PQgetvalue(r, i, 3)) + 2;
            char *t = malloc(len);
            if (!t)
                return -1;
            target_key(t, len, key, PQgetvalue(r, i, 3));
            added = tw_provkeys_add(f->keys, TARGET_KIND, t, "", 1);
            free(t);
        }
        if (added < 0)
            return -1;
    }
    return 0;
}

static int is_target(prov_fast *f, const char *src, const char *ref, int add)
{
    size_t len = strlen(src) + strlen(ref) + 2;
    char *t = malloc(len);
    int rv;
    if (!t) {
        f->failed = 1;
        return 1;
    }
    target_key(t, len, src, ref);
    if (add) {
        rv = tw_provkeys_add(f->keys, TARGET_KIND, t, "", 1);
        if (rv < 0)
            f->failed = 1;
    } else {
        rv = tw_provkeys_has(f->keys, TARGET_KIND, t, "");
    }
    free(t);
    return rv;
}

int prov_fast_apply(prov_service *svc, const tw_consumer_event *ev, size_t n,
                    const PGresult *const *reads, size_t nreads, tw_consumer_writes *w)
{
    prov_fast *f = svc->fast;
    int rc = -1;
    f->failed = 0;
    for (int i = 0; i < T_N; i++)
        tw_copytext_reset(&f->t[i]);
    merges_clear(f);
    f->nsums = 0;
    tw_arena_reset(&f->seg);
    if (load_reads(f, reads, nreads) != 0) {
        TW_ERROR(NULL, "a batch's read came back in an unexpected shape, or memory ran out");
        goto out;
    }
    for (size_t i = 0; i < n && !f->failed; i++) {
        const tw_consumer_event *e = &ev[i];
        tw_prov_event pe;
        if (prov_decode(svc, e, &pe, 1) != 0)
            continue;
        if (!event_utf8(&pe)) {
            prov_skipped(svc, e, "a string is not valid UTF-8");
            continue;
        }
        int slow = pe.is_correction || is_target(f, pe.source, pe.source_ref, 0);
        if (pe.is_correction)
            is_target(f, pe.corrects_source, pe.corrects_ref, 1);
        f->npairs = 0;
        if (!slow) {
            party_rows(f, &pe);
            for (size_t l = 0; l < pe.nlines; l++)
                apply_line(f, &svc->arena, &pe, &pe.lines[l], 1);
            continue;
        }
        /* Its keys, as prov_apply_event records them; then the event
         * itself through prov_apply() in SQL, after everything before it. */
        for (size_t l = 0; l < pe.nlines; l++)
            apply_line(f, &svc->arena, &pe, &pe.lines[l], 0);
        if (f->failed || flush(f, w) != 0 || prov_apply_sql(svc, e, 1, w) != 0) {
            f->failed = 1;
            break;
        }
    }
    tw_arena_reset(&svc->arena);
    if (f->failed || flush(f, w) != 0) {
        TW_ERROR(NULL, "out of memory building a batch of %zu events", n);
        goto out;
    }
    rc = 0;
out:
    return rc;
}

int prov_fast_register(tw_pg *pg)
{
    static const Oid merge_types[] = {1016}; /* bigint[] */
    if (tw_pg_prepare(pg, PROV_ST_READ, SQL_READ, 4, NULL) != 0 ||
        tw_pg_prepare(pg, PROV_ST_MERGE_ROOTS, SQL_MERGE_ROOTS, 1, merge_types) != 0 ||
        tw_pg_prepare(pg, PROV_ST_SUMMARY, SQL_SUMMARY, 10, NULL) != 0)
        return -1;
    return 0;
}
