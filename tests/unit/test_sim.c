/* tw_sim: the scenario simulator is deterministic, its records are what it
 * says they are (valid ones pass ingest's validation with the shipped place
 * tables, rejected ones fail it for the defect named), and its truth agrees
 * with its records. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tidewatch/v1/records.pb-c.h"
#include "tw_places.h"
#include "tw_record.h"
#include "tw_sim.h"

typedef struct copy {
    uint8_t *data;
    size_t len;
    char *source, *ref, *why;
    tw_sim_expect expect;
    int64_t event_s, arrival_s;
    int network, coastal;
} copy;

typedef struct run {
    copy *v;
    size_t n, cap;
    size_t stop_at; /* emit returns 7 at this index when set */
} run;

static int collect(void *arg, const tw_sim_record *r)
{
    run *x = arg;
    if (x->stop_at && r->index == x->stop_at)
        return 7;
    cr_assert_eq(r->index, x->n, "records arrive numbered 0, 1, ...");
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 1024;
        x->v = realloc(x->v, x->cap * sizeof *x->v);
        cr_assert(x->v);
    }
    copy *c = &x->v[x->n++];
    c->data = malloc(r->len ? r->len : 1);
    memcpy(c->data, r->data, r->len);
    c->len = r->len;
    c->source = strdup(r->source);
    c->ref = strdup(r->source_ref);
    c->why = strdup(r->why);
    c->expect = r->expect;
    c->event_s = r->event_s;
    c->arrival_s = r->arrival_s;
    c->network = r->network;
    c->coastal = r->coastal;
    return 0;
}

static void run_free(run *x)
{
    for (size_t i = 0; i < x->n; i++) {
        free(x->v[i].data);
        free(x->v[i].source);
        free(x->v[i].ref);
        free(x->v[i].why);
    }
    free(x->v);
    memset(x, 0, sizeof *x);
}

static json_t *simulate(uint64_t seed, int scale, run *out)
{
    tw_sim_params p = {.seed = seed, .scale = scale};
    char err[128];
    cr_assert_eq(tw_sim_params_check(&p, err, sizeof err), 0, "%s", err);
    json_t *truth = NULL;
    int rc = tw_sim_run(&p, collect, out, &truth, err, sizeof err);
    cr_assert_eq(rc, 0, "tw_sim_run: %s", err);
    cr_assert(truth);
    return truth;
}

static int same_runs(const run *a, const run *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].len != b->v[i].len || memcmp(a->v[i].data, b->v[i].data, a->v[i].len) != 0 ||
            a->v[i].arrival_s != b->v[i].arrival_s || a->v[i].expect != b->v[i].expect)
            return 0;
    return 1;
}

Test(sim, same_seed_same_records_and_truth)
{
    run a = {0}, b = {0};
    json_t *ta = simulate(7, 1, &a), *tb = simulate(7, 1, &b);
    cr_assert_gt(a.n, 1000, "a scenario has a few thousand records (got %zu)", a.n);
    cr_assert(same_runs(&a, &b), "same seed, same records, same order");
    char *ja = json_dumps(ta, JSON_INDENT(2)), *jb = json_dumps(tb, JSON_INDENT(2));
    cr_assert_str_eq(ja, jb, "same seed, same truth text");
    free(ja);
    free(jb);
    json_decref(ta);
    json_decref(tb);
    run_free(&a);
    run_free(&b);
}

Test(sim, different_seeds_differ)
{
    run a = {0}, b = {0};
    json_t *ta = simulate(7, 1, &a), *tb = simulate(8, 1, &b);
    cr_assert_not(same_runs(&a, &b));
    cr_assert_not(json_equal(json_object_get(ta, "network_items"),
                             json_object_get(tb, "network_items")));
    json_decref(ta);
    json_decref(tb);
    run_free(&a);
    run_free(&b);
}

Test(sim, scale_multiplies)
{
    run a = {0}, b = {0};
    json_t *ta = simulate(3, 1, &a), *tb = simulate(3, 3, &b);
    cr_assert_gt(b.n, 2 * a.n, "scale 3 (%zu records) is well over twice scale 1 (%zu)", b.n, a.n);
    cr_assert_gt(json_array_size(json_object_get(tb, "networks")),
                 2 * json_array_size(json_object_get(ta, "networks")));
    json_decref(ta);
    json_decref(tb);
    run_free(&a);
    run_free(&b);
}

Test(sim, bad_parameters_and_a_stopped_run)
{
    char err[128] = "";
    tw_sim_params p = {.seed = 1, .days = 10};
    cr_assert_eq(tw_sim_params_check(&p, err, sizeof err), -1);
    cr_assert(strstr(err, "days"), "%s", err);
    p = (tw_sim_params){.seed = 1, .scale = TW_SIM_MAX_SCALE + 1};
    cr_assert_eq(tw_sim_params_check(&p, err, sizeof err), -1);
    cr_assert(strstr(err, "scale"), "%s", err);
    p = (tw_sim_params){.seed = 1};
    cr_assert_eq(tw_sim_params_check(&p, err, sizeof err), 0);
    cr_assert_eq(p.start_s, TW_SIM_DEFAULT_START);
    cr_assert_eq(p.days, TW_SIM_DEFAULT_DAYS);
    cr_assert_eq(p.scale, 1);
    /* The callback's refusal stops the run and is returned; no truth. */
    run x = {.stop_at = 5};
    json_t *t = (json_t *)1;
    cr_assert_eq(tw_sim_run(&p, collect, &x, &t, err, sizeof err), 7);
    cr_assert_null(t);
    cr_assert_eq(x.n, 5);
    run_free(&x);
}

/* ---- validation against ingest's own rules -------------------------------- */

static tw_places *load_places(void)
{
    const char *src = getenv("TW_SOURCE_DIR");
    cr_assert(src && *src, "TW_SOURCE_DIR is not set: run this test through ctest");
    char hubs[4096], gaz[4096], err[256] = "";
    snprintf(hubs, sizeof hubs, "%s/deploy/data/channel-hubs.csv", src);
    snprintf(gaz, sizeof gaz, "%s/deploy/data/gazetteer.csv", src);
    tw_places *pl = tw_places_load(hubs, gaz, err, sizeof err);
    cr_assert(pl, "loading the shipped data failed: %s", err);
    return pl;
}

/* A small set of strings (linear; the tests' sets are small enough). */
typedef struct strset {
    char **v;
    size_t n, cap;
} strset;

static int set_has(const strset *s, const char *k)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], k) == 0)
            return 1;
    return 0;
}

static void set_add(strset *s, const char *k)
{
    if (set_has(s, k))
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        cr_assert(s->v);
    }
    s->v[s->n++] = strdup(k);
}

static void set_free(strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static int is_place_field(const char *f)
{
    return strstr(f, "place") || strstr(f, "origin") || strstr(f, "destination");
}

Test(sim, records_pass_or_fail_validation_as_expected_and_truth_matches_them, .timeout = 120)
{
    tw_places *places = load_places();
    run x = {0};
    json_t *truth = simulate(7, 1, &x);
    tw_sim_params p = {.seed = 7};
    char err[64];
    cr_assert_eq(tw_sim_params_check(&p, err, sizeof err), 0);
    tw_record_ctx ctx = {.now_s = p.start_s + (int64_t)(p.days + 365) * 86400, .places = places};
    strset keys = {0}, idents = {0}, refs = {0};
    size_t n_acc = 0, n_dup = 0, n_rej = 0, corrections = 0, launches = 0, seizures = 0,
           illegible = 0, etched = 0, partial = 0, plate_and_stamp = 0, out_of_order = 0;
    int64_t max_event = 0;
    for (size_t i = 0; i < x.n; i++) {
        const copy *c = &x.v[i];
        if (i > 0)
            cr_assert_geq(c->arrival_s, x.v[i - 1].arrival_s, "records come in arrival order");
        Tidewatch__V1__Record *r = tidewatch__v1__record__unpack(NULL, c->len, c->data);
        cr_assert(r, "record %zu decodes", i);
        tw_arena a;
        tw_arena_init(&a, 0);
        tw_record_check chk;
        cr_assert_eq(tw_record_validate(&ctx, r, &a, &chk), 0);
        char ref[300];
        snprintf(ref, sizeof ref, "%s\t%s", c->source, c->ref);
        if (c->expect == TW_SIM_REJECTED) {
            n_rej++;
            cr_assert_gt(chk.nerrors, 0, "record %zu (%s %s) is meant to be rejected (%s)", i,
                         c->source, c->ref, c->why);
            int found = 0;
            for (size_t k = 0; k < chk.nerrors; k++)
                found |= strcmp(chk.errors[k].code, c->why) == 0;
            cr_assert(found, "record %zu is rejected for %s as announced (first error: %s %s)", i,
                      c->why, chk.errors[0].field, chk.errors[0].code);
        } else {
            if (chk.nerrors)
                cr_assert_fail("record %zu (%s %s, %s) must pass: %s: %s: %s", i, c->source, c->ref,
                               tw_sim_expect_name(c->expect), chk.errors[0].field,
                               chk.errors[0].code, chk.errors[0].reason);
            for (size_t k = 0; k < chk.nwarnings; k++) {
                const tw_issue *w = &chk.warnings[k];
                if (is_place_field(w->field))
                    cr_assert(strcmp(w->code, "not_found") != 0 && strcmp(w->code, "ambiguous") != 0 &&
                                  strcmp(w->code, "conflict") != 0 &&
                                  strcmp(w->code, "region_unknown") != 0 &&
                                  strcmp(w->code, "unresolved") != 0,
                              "record %zu: every place resolves (%s: %s: %s)", i, w->field, w->code,
                              w->reason);
                if (strstr(w->field, "identifiers"))
                    cr_assert(strcmp(w->code, "not_normalised") != 0,
                              "record %zu: identifiers normalise (%s: %s)", i, w->field, w->reason);
            }
            if (c->expect == TW_SIM_ACCEPTED) {
                n_acc++;
                cr_assert_not(set_has(&refs, ref), "record %zu: (%s) accepted only once", i, ref);
                set_add(&refs, ref);
                for (size_t k = 0; k < chk.nserial_keys; k++) {
                    char kk[200];
                    snprintf(kk, sizeof kk, "serial:%s", chk.serial_keys[k]);
                    set_add(&keys, kk);
                }
                for (size_t k = 0; k < chk.nhull_keys; k++) {
                    char kk[200];
                    snprintf(kk, sizeof kk, "hull:%s", chk.hull_keys[k]);
                    set_add(&keys, kk);
                }
                for (size_t k = 0; k < chk.derived.n_identifiers; k++) {
                    char kk[400];
                    snprintf(kk, sizeof kk, "%s:%s", chk.derived.identifiers[k]->kind,
                             chk.derived.identifiers[k]->value);
                    set_add(&idents, kk);
                }
            } else {
                n_dup++;
                /* The very bytes of an earlier accepted record. */
                int found = 0;
                for (size_t j = 0; j < i && !found; j++)
                    found = x.v[j].expect == TW_SIM_ACCEPTED && x.v[j].len == c->len &&
                            memcmp(x.v[j].data, c->data, c->len) == 0;
                cr_assert(found, "duplicate %zu repeats an earlier accepted record", i);
            }
            if (r->body_case == TIDEWATCH__V1__RECORD__BODY_CORRECTION) {
                corrections++;
                char cref[300];
                snprintf(cref, sizeof cref, "%s\t%s", r->correction->corrects->source,
                         r->correction->corrects->source_ref);
                cr_assert(set_has(&refs, cref), "correction %zu corrects a record that came before", i);
                if (r->correction->replacement_case == TIDEWATCH__V1__CORRECTION__REPLACEMENT_SEIZURE)
                    for (size_t k = 0; k < r->correction->seizure->n_items; k++) {
                        Tidewatch__V1__Equipment *e = r->correction->seizure->items[k]->equipment;
                        for (size_t m = 0; m < e->n_serials; m++)
                            etched += e->serials[m]->method ==
                                      TIDEWATCH__V1__SERIAL_READING__METHOD__ETCHED_RECOVERY;
                    }
            }
            if (r->body_case == TIDEWATCH__V1__RECORD__BODY_SEIZURE) {
                seizures++;
                launches += r->seizure->launch != NULL;
                for (size_t k = 0; k < r->seizure->n_items; k++) {
                    Tidewatch__V1__Equipment *e = r->seizure->items[k]->equipment;
                    int plate = 0, stamp = 0;
                    for (size_t m = 0; m < e->n_serials; m++) {
                        illegible += e->serials[m]->completeness ==
                                     TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__ILLEGIBLE;
                        partial += e->serials[m]->completeness ==
                                   TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__PARTIAL;
                        plate |= e->serials[m]->method == TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE;
                        stamp |= e->serials[m]->method == TIDEWATCH__V1__SERIAL_READING__METHOD__STAMP &&
                                 e->serials[m]->text[0];
                    }
                    plate_and_stamp += plate && stamp;
                }
            }
        }
        if (c->event_s < max_event)
            out_of_order++;
        if (c->event_s > max_event)
            max_event = c->event_s;
        tw_record_check_free(&chk);
        tw_arena_free(&a);
        tidewatch__v1__record__free_unpacked(r, NULL);
    }
    /* Counts agree with the truth. */
    json_t *ex = json_object_get(truth, "expected");
    cr_assert_eq(json_integer_value(json_object_get(ex, "records")), (json_int_t)x.n);
    cr_assert_eq(json_integer_value(json_object_get(ex, "accepted")), (json_int_t)n_acc);
    cr_assert_eq(json_integer_value(json_object_get(ex, "duplicate")), (json_int_t)n_dup);
    cr_assert_eq(json_integer_value(json_object_get(ex, "rejected")), (json_int_t)n_rej);
    /* The mess is there. */
    cr_assert_gt(n_dup, 0);
    cr_assert_gt(n_rej, 0);
    cr_assert_gt(corrections, 0);
    cr_assert_gt(launches, 0);
    cr_assert_gt(seizures, launches);
    cr_assert_gt(partial, 0, "partial readings with '?'");
    cr_assert_gt(illegible, 0, "ground-off serials");
    cr_assert_gt(etched, 0, "etched recoveries");
    cr_assert_gt(plate_and_stamp, 0, "counterfeit plates read with the block stamp");
    cr_assert_gt(out_of_order, 10, "arrival order is not event order (%zu records arrive after "
                                   "later events)", out_of_order);
    /* Every network item's keys are in accepted records; so are the
     * parties' cluster keys. */
    json_t *items = json_object_get(truth, "network_items");
    cr_assert_gt(json_array_size(items), 40);
    size_t i;
    json_t *it;
    size_t with_warn = 0;
    json_array_foreach(items, i, it) {
        json_t *ks = json_object_get(it, "keys");
        cr_assert_gt(json_array_size(ks), 0, "network item %s has keys",
                     json_string_value(json_object_get(it, "id")));
        size_t j;
        json_t *k;
        json_array_foreach(ks, j, k) {
            char kk[200];
            snprintf(kk, sizeof kk, "%s:%s", json_string_value(json_object_get(k, "kind")),
                     json_string_value(json_object_get(k, "key")));
            cr_assert(set_has(&keys, kk), "network item %s's key %s appears in an accepted record",
                      json_string_value(json_object_get(it, "id")), kk);
        }
        json_t *cl = json_object_get(it, "cluster_keys");
        cr_assert_gt(json_array_size(cl), 0);
        json_array_foreach(cl, j, k)
            cr_assert(set_has(&idents, json_string_value(k)), "cluster key %s is an identifier "
                      "ingest normalises so", json_string_value(k));
        with_warn += !json_is_null(json_object_get(it, "warn_by"));
        const char *fate = json_string_value(json_object_get(it, "fate"));
        cr_assert(fate && fate[0]);
        cr_assert_eq(json_is_null(json_object_get(it, "warn_by")), strcmp(fate, "never") == 0);
    }
    cr_assert_gt(with_warn, json_array_size(items) / 2);
    cr_assert_lt(with_warn, json_array_size(items), "some network items are never caught");
    json_t *lc = json_object_get(truth, "legit_coastal");
    cr_assert_gt(json_array_size(json_object_get(lc, "records")), 10);
    cr_assert_gt(json_array_size(json_object_get(lc, "items")), 10);
    json_array_foreach(json_object_get(lc, "records"), i, it) {
        char ref[300];
        snprintf(ref, sizeof ref, "%s\t%s", json_string_value(json_object_get(it, "source")),
                 json_string_value(json_object_get(it, "source_ref")));
        cr_assert(set_has(&refs, ref), "coastal record %s is accepted", ref);
    }
    set_free(&keys);
    set_free(&idents);
    set_free(&refs);
    json_decref(truth);
    run_free(&x);
    tw_places_free(places);
}
