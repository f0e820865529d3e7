/* Unit tests for tw_chain: chain order, corrections and retractions,
 * corroboration and the chain facts, on hand-built hops. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* timegm */
#endif
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tw_chain.h"

/* ---- fixtures ----------------------------------------------------------- */

/* Parties (cluster, name). */
#define RETAILER ((tw_chain_party){1, "Marine Nord"})
#define BUYER ((tw_chain_party){2, "Jan Peeters"})
#define CARRIER ((tw_chain_party){3, "Transports Lefort"})
#define AGENCY ((tw_chain_party){4, "Douane Calais"})
#define OTHER ((tw_chain_party){5, "Kurt Weber"})
#define NOBODY ((tw_chain_party){0, NULL})

/* Places. */
#define CALAIS ((tw_chain_place){true, 50.9513, 1.8587, "Calais"})
#define LILLE ((tw_chain_place){true, 50.6292, 3.0573, "Lille"})
#define MUNICH ((tw_chain_place){true, 48.1351, 11.5820, "München"})
#define DUNKERQUE ((tw_chain_place){true, 51.0344, 2.3768, "Dunkerque"})
#define NOWHERE ((tw_chain_place){false, 0, 0, NULL})

/* 2026-MM-DD HH:00 UTC. */
static int64_t at(int month, int day, int hour)
{
    struct tm tm = {.tm_year = 2026 - 1900, .tm_mon = month - 1, .tm_mday = day, .tm_hour = hour};
    return (int64_t)timegm(&tm);
}

static tw_chain_hop sale(int64_t ev, int64_t t, tw_chain_party from, tw_chain_party to,
                         tw_chain_place place, const char *source)
{
    return (tw_chain_hop){.event_id = ev, .kind = TW_CHAIN_SALE, .has_time = true, .time = t,
                          .from = from, .to = to, .place = place, .source = source};
}

static tw_chain_hop shipment(int64_t ev, int64_t t, tw_chain_party from, tw_chain_party to,
                             tw_chain_place origin, tw_chain_place dest, const char *source)
{
    return (tw_chain_hop){.event_id = ev, .kind = TW_CHAIN_SHIPMENT, .has_time = true,
                          .time = t, .from = from, .to = to, .origin = origin, .place = dest,
                          .source = source};
}

static tw_chain_hop seizure(int64_t ev, int64_t t, tw_chain_party agency, tw_chain_party from,
                            tw_chain_place place, const char *source)
{
    return (tw_chain_hop){.event_id = ev, .kind = TW_CHAIN_SEIZURE, .has_time = true, .time = t,
                          .from = from, .to = agency, .place = place, .source = source};
}

static tw_arena arena;

static void setup(void)
{
    tw_arena_init(&arena, 0);
}

static void teardown(void)
{
    tw_arena_free(&arena);
}

TestSuite(chain, .init = setup, .fini = teardown);

static tw_chain_result assemble_opt(const tw_chain_hop *h, size_t n, const tw_chain_reading *r,
                                    size_t nr, const tw_chain_options *o)
{
    tw_chain_result res;
    int rc = tw_chain_assemble(h, n, r, nr, o, &arena, &res);
    cr_assert_eq(rc, 0, "tw_chain_assemble failed");
    cr_assert_eq(res.n, n);
    /* Facts: severity never rises along the list; texts bounded. */
    for (size_t i = 0; i < res.n_facts; i++) {
        cr_assert_not_null(res.facts[i].text);
        cr_assert_lt(strlen(res.facts[i].text), TW_CHAIN_TEXT_MAX);
        cr_assert_gt(res.facts[i].n_event_ids, 0, "%s has no event ids", res.facts[i].kind);
        if (i)
            cr_assert_geq(res.facts[i - 1].severity, res.facts[i].severity);
    }
    return res;
}

static tw_chain_result assemble(const tw_chain_hop *h, size_t n)
{
    return assemble_opt(h, n, NULL, 0, NULL);
}

static size_t count_kind(const tw_chain_result *r, const char *kind)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n_facts; i++)
        k += strcmp(r->facts[i].kind, kind) == 0;
    return k;
}

static const tw_chain_fact *fact(const tw_chain_result *r, const char *kind)
{
    for (size_t i = 0; i < r->n_facts; i++)
        if (strcmp(r->facts[i].kind, kind) == 0)
            return &r->facts[i];
    cr_assert_fail("no %s fact", kind);
    return NULL;
}

static void assert_ids(const tw_chain_fact *f, size_t n, const int64_t *ids)
{
    cr_assert_eq(f->n_event_ids, n, "%s: %zu event ids, want %zu", f->kind, f->n_event_ids, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(f->event_ids[i], ids[i], "%s: event id %zu is %lld, want %lld", f->kind, i,
                     (long long)f->event_ids[i], (long long)ids[i]);
}
#define IDS(...) (sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), ((int64_t[]){__VA_ARGS__})

static void assert_has(const tw_chain_fact *f, const char *needle)
{
    cr_assert(strstr(f->text, needle), "%s text lacks \"%s\": %s", f->kind, needle, f->text);
}

/* Event id of the hop at chain position p. */
static int64_t ev_at(const tw_chain_result *r, const tw_chain_hop *h, size_t p)
{
    return h[r->order[p].input].event_id;
}

/* ---- order ---------------------------------------------------------------- */

Test(chain, in_order_chain_has_no_fact_but_single_source_and_last_known)
{
    tw_chain_hop h[3] = {
        sale(101, at(3, 2, 10), RETAILER, BUYER, LILLE, "retailer-fr"),
        shipment(102, at(3, 5, 9), BUYER, OTHER, LILLE, CALAIS, "carrier-fr"),
        seizure(103, at(3, 20, 6), AGENCY, OTHER, CALAIS, "douane-fr"),
    };
    tw_chain_result r = assemble(h, 3);
    for (size_t p = 0; p < 3; p++) {
        cr_assert_eq(r.order[p].input, p);
        cr_assert_eq(r.order[p].same_as, -1);
        cr_assert_eq(r.order[p].sources, 1);
    }
    cr_assert_eq(r.n_facts, 2, "unexpected facts, first: %s", r.facts[0].text);
    const tw_chain_fact *s = fact(&r, "single_source");
    cr_assert_eq(s->severity, TW_CHAIN_INFO);
    assert_has(s, "each of the 3 hops rests on one source (3 sources: carrier-fr, douane-fr, "
                  "retailer-fr)");
    assert_ids(s, IDS(101, 102, 103));
    const tw_chain_fact *l = fact(&r, "last_known");
    cr_assert_str_eq(l->text, "last known: custodian Douane Calais, place Calais; last seized by "
                              "Douane Calais from Kurt Weber at Calais on 2026-03-20");
    cr_assert_eq(r.last, 2);
    cr_assert_eq(r.last_custodian.cluster, 4);
    cr_assert_str_eq(r.last_custodian.name, "Douane Calais");
    cr_assert(r.last_place.known);
    cr_assert_str_eq(r.last_place.name, "Calais");
    cr_assert_eq(r.last_place_at, 2);
    cr_assert_str_eq(tw_chain_severity_name(s->severity), "info");
}

/* Compare two results hop by hop (by event id and line, since input
 * positions differ) and fact by fact. */
static void assert_same_chain(const tw_chain_result *a, const tw_chain_hop *ha,
                              const tw_chain_result *b, const tw_chain_hop *hb)
{
    cr_assert_eq(a->n, b->n);
    for (size_t p = 0; p < a->n; p++) {
        const tw_chain_hop *x = &ha[a->order[p].input], *y = &hb[b->order[p].input];
        cr_assert(x->event_id == y->event_id && x->line == y->line,
                  "position %zu: event %lld/%d vs %lld/%d", p, (long long)x->event_id, x->line,
                  (long long)y->event_id, y->line);
        cr_assert_eq(a->order[p].same_as, b->order[p].same_as);
        cr_assert_eq(a->order[p].sources, b->order[p].sources);
    }
    cr_assert_eq(a->n_facts, b->n_facts);
    for (size_t i = 0; i < a->n_facts; i++) {
        cr_assert_str_eq(a->facts[i].kind, b->facts[i].kind);
        cr_assert_eq(a->facts[i].severity, b->facts[i].severity);
        cr_assert_str_eq(a->facts[i].text, b->facts[i].text);
        cr_assert_eq(a->facts[i].n_event_ids, b->facts[i].n_event_ids);
        for (size_t k = 0; k < a->facts[i].n_event_ids; k++)
            cr_assert_eq(a->facts[i].event_ids[k], b->facts[i].event_ids[k]);
    }
    cr_assert_eq(a->last, b->last);
    cr_assert_eq(a->last_place_at, b->last_place_at);
    cr_assert_eq(a->last_custodian.cluster, b->last_custodian.cluster);
}

/* Seven hops that exercise every rule: two reports of one shipment, a
 * custody gap, a seizure followed by a sale, equal timestamps, a corrected
 * hop and a hop without time. */
static void rich_chain(tw_chain_hop h[7])
{
    h[0] = sale(10, at(3, 2, 10), RETAILER, BUYER, LILLE, "retailer-fr");
    h[1] = shipment(11, at(3, 5, 9), CARRIER, NOBODY, LILLE, CALAIS, "carrier-fr");
    h[2] = shipment(12, at(3, 5, 20), NOBODY, BUYER, LILLE, CALAIS, "customs-fr");
    h[3] = seizure(13, at(3, 10, 8), AGENCY, BUYER, CALAIS, "douane-fr");
    h[4] = sale(14, at(3, 10, 8), OTHER, BUYER, CALAIS, "market");
    h[4].line = 1;
    h[5] = sale(14, at(3, 10, 8), OTHER, BUYER, MUNICH, "market");
    h[5].line = 0;
    h[5].status = TW_CHAIN_CORRECTED;
    h[6] = sale(9, 0, OTHER, RETAILER, NOWHERE, "market");
    h[6].has_time = false;
}

Test(chain, every_permutation_gives_the_same_chain)
{
    tw_chain_hop base[7], h[7];
    rich_chain(base);
    tw_arena ref_arena;
    tw_arena_init(&ref_arena, 0);
    tw_chain_result ref;
    cr_assert_eq(tw_chain_assemble(base, 7, NULL, 0, NULL, &ref_arena, &ref), 0);
    /* The reference itself: times first, then event id, then line; the
     * hop without time last. */
    static const int64_t want_ev[7] = {10, 11, 12, 13, 14, 14, 9};
    static const int want_line[7] = {0, 0, 0, 0, 0, 1, 0};
    for (size_t p = 0; p < 7; p++) {
        cr_assert_eq(ev_at(&ref, base, p), want_ev[p]);
        cr_assert_eq(base[ref.order[p].input].line, want_line[p]);
    }
    cr_assert_eq(ref.order[2].same_as, 1, "the customs report folds into the carrier's");
    cr_assert_eq(count_kind(&ref, "corroborated"), 1);
    cr_assert_eq(count_kind(&ref, "custody_gap"), 1);
    cr_assert_eq(count_kind(&ref, "seized_before_sold"), 1);
    cr_assert_eq(count_kind(&ref, "sold_twice"), 1);
    cr_assert_eq(count_kind(&ref, "no_time"), 1);

    /* All 5040 orders (Heap's algorithm, iterative). */
    size_t idx[7] = {0, 1, 2, 3, 4, 5, 6}, cnt[7] = {0}, perms = 0;
    for (size_t i = 1;;) {
        for (size_t k = 0; k < 7; k++)
            h[k] = base[idx[k]];
        tw_chain_result r = assemble(h, 7);
        assert_same_chain(&ref, base, &r, h);
        tw_arena_reset(&arena);
        perms++;
        while (i < 7 && cnt[i] >= i)
            cnt[i++] = 0;
        if (i == 7)
            break;
        size_t j = i % 2 ? cnt[i] : 0, t = idx[j];
        idx[j] = idx[i];
        idx[i] = t;
        cnt[i]++;
        i = 1;
    }
    tw_arena_free(&ref_arena);
    cr_assert_eq(perms, 5040);
}

Test(chain, equal_timestamps_are_ordered_by_event_id_then_line)
{
    int64_t t = at(4, 1, 12);
    tw_chain_hop h[6] = {
        sale(30, t, RETAILER, BUYER, LILLE, "a"),
        sale(10, t, RETAILER, BUYER, LILLE, "b"),
        sale(20, t, RETAILER, BUYER, LILLE, "c"),
        sale(20, t, RETAILER, BUYER, LILLE, "d"),
        sale(5, 0, RETAILER, BUYER, LILLE, "e"),
        sale(1, 0, RETAILER, BUYER, LILLE, "f"),
    };
    h[2].line = 2;
    h[3].line = 1;
    h[4].has_time = h[5].has_time = false;
    /* The input order (arrival) is scrambled on purpose. */
    tw_chain_options o;
    tw_chain_options_init(&o);
    o.same_hop_seconds = 0; /* equal times fold: sources differ, parties agree */
    tw_chain_result r = assemble_opt(h, 6, NULL, 0, &o);
    static const int64_t ev[6] = {10, 20, 20, 30, 1, 5};
    static const int line[6] = {0, 1, 2, 0, 0, 0};
    for (size_t p = 0; p < 6; p++) {
        cr_assert_eq(ev_at(&r, h, p), ev[p], "position %zu", p);
        cr_assert_eq(h[r.order[p].input].line, line[p]);
    }
    /* The four timed sales are one movement (four sources) at the earliest. */
    cr_assert_eq(r.order[0].sources, 4);
    for (size_t p = 1; p < 4; p++)
        cr_assert_eq(r.order[p].same_as, 0);
    /* Untimed hops never fold. */
    cr_assert_eq(r.order[4].same_as, -1);
    cr_assert_eq(r.order[5].same_as, -1);
}

/* ---- gaps ---------------------------------------------------------------- */

Test(chain, custody_gap_when_the_next_sender_is_not_the_receiver)
{
    tw_chain_hop h[2] = {
        sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r"),
        shipment(2, at(3, 20, 9), OTHER, CARRIER, LILLE, LILLE, "c"),
    };
    tw_chain_result r = assemble(h, 2);
    const tw_chain_fact *f = fact(&r, "custody_gap");
    cr_assert_eq(f->severity, TW_CHAIN_WARNING);
    assert_ids(f, IDS(1, 2));
    cr_assert_str_eq(f->text,
                     "custody gap: sold by Marine Nord to Jan Peeters in Lille on 2026-03-02, next "
                     "shipped by Kurt Weber from Lille to Transports Lefort in Lille on 2026-03-20 "
                     "(Kurt Weber is not Jan Peeters)");
    cr_assert_str_eq(tw_chain_severity_name(f->severity), "warning");

    /* The receiver sends it on: no gap. */
    h[1].from = BUYER;
    tw_chain_result r2 = assemble(h, 2);
    cr_assert_eq(count_kind(&r2, "custody_gap"), 0);
    /* The seller ships what it sold: no gap. */
    h[1].from = RETAILER;
    r2 = assemble(h, 2);
    cr_assert_eq(count_kind(&r2, "custody_gap"), 0);
    /* A warehouse delivers to the buyer: no gap. */
    h[1].from = OTHER;
    h[1].to = BUYER;
    r2 = assemble(h, 2);
    cr_assert_eq(count_kind(&r2, "custody_gap"), 0);
    /* ... but a sale by someone else to the buyer is one. */
    h[1] = sale(2, at(3, 20, 9), OTHER, BUYER, LILLE, "c");
    r2 = assemble(h, 2);
    cr_assert_eq(count_kind(&r2, "custody_gap"), 1);
    /* An unknown sender asserts nothing. */
    h[1].from = NOBODY;
    r2 = assemble(h, 2);
    cr_assert_eq(count_kind(&r2, "custody_gap"), 0);
    /* Another record's "jan  PEETERS", not tied to the buyer by an
     * identifier or an address: not shown to be another party either. */
    h[1].from = (tw_chain_party){9, " jan  PEETERS "};
    r2 = assemble(h, 2);
    f = fact(&r2, "custody_gap");
    cr_assert_eq(f->severity, TW_CHAIN_INFO);
    cr_assert(strstr(f->text, "PEETERS  both times, but no identifier or address ties the two "
                              "records)") != NULL, "%s", f->text);
    h[1].from = (tw_chain_party){9, "Jan Peeterson"};
    r2 = assemble(h, 2);
    cr_assert_eq(fact(&r2, "custody_gap")->severity, TW_CHAIN_WARNING);
}

Test(chain, place_gap_when_the_next_hop_starts_elsewhere)
{
    tw_chain_hop h[2] = {
        sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r"),
        shipment(2, at(3, 12, 9), BUYER, OTHER, CALAIS, DUNKERQUE, "c"),
    };
    tw_chain_result r = assemble(h, 2);
    const tw_chain_fact *f = fact(&r, "place_gap");
    cr_assert_eq(f->severity, TW_CHAIN_WARNING);
    assert_ids(f, IDS(1, 2));
    assert_has(f, "sold by Marine Nord to Jan Peeters in Lille on 2026-03-02, next shipped by Jan "
                  "Peeters from Calais");
    assert_has(f, "on 2026-03-12, 92 km from Lille");
    cr_assert_eq(count_kind(&r, "too_fast"), 0, "92 km in ten days is plausible");

    /* Dunkerque is 37 km from Calais: under place_gap_km, no gap. */
    h[0].place = DUNKERQUE;
    r = assemble(h, 2);
    cr_assert_eq(count_kind(&r, "place_gap"), 0);
    /* ... unless the threshold is lower. */
    tw_chain_options o;
    tw_chain_options_init(&o);
    o.place_gap_km = 30;
    r = assemble_opt(h, 2, NULL, 0, &o);
    cr_assert_eq(count_kind(&r, "place_gap"), 1);
    /* A shipment without origin asserts nothing. */
    h[1].origin = NOWHERE;
    h[0].place = LILLE;
    r = assemble(h, 2);
    cr_assert_eq(count_kind(&r, "place_gap"), 0);
}

/* ---- inconsistencies ------------------------------------------------------ */

Test(chain, seizure_before_a_sale_is_an_inconsistency)
{
    tw_chain_hop h[3] = {
        seizure(1, at(3, 10, 8), AGENCY, BUYER, CALAIS, "douane"),
        sale(2, at(3, 20, 10), AGENCY, OTHER, CALAIS, "auction"),
        shipment(3, at(3, 22, 10), OTHER, OTHER, CALAIS, CALAIS, "c"),
    };
    tw_chain_result r = assemble(h, 3);
    cr_assert_eq(count_kind(&r, "seized_before_sold"), 1);
    const tw_chain_fact *f = fact(&r, "seized_before_sold");
    cr_assert_eq(f->severity, TW_CHAIN_INCONSISTENCY);
    assert_ids(f, IDS(1, 2));
    cr_assert_str_eq(f->text, "seized before sold: seized by Douane Calais from Jan Peeters at "
                              "Calais on 2026-03-10, yet sold by Douane Calais to Kurt Weber in "
                              "Calais on 2026-03-20 afterwards (and 1 more sale or shipment after "
                              "the seizure)");
    cr_assert_eq(&r.facts[0], f, "inconsistencies come first");
    cr_assert_str_eq(tw_chain_severity_name(f->severity), "inconsistency");

    /* Sold, then seized: in order. */
    h[0].time = at(3, 25, 8);
    r = assemble(h, 3);
    cr_assert_eq(count_kind(&r, "seized_before_sold"), 0);
}

Test(chain, too_fast_calais_to_munich_in_one_hour_vs_plausible)
{
    tw_chain_hop h[2] = {
        sale(1, at(3, 1, 10), RETAILER, BUYER, CALAIS, "r"),
        shipment(2, at(3, 1, 11), BUYER, OTHER, MUNICH, MUNICH, "c"),
    };
    tw_chain_result r = assemble(h, 2);
    const tw_chain_fact *f = fact(&r, "too_fast");
    cr_assert_eq(f->severity, TW_CHAIN_INCONSISTENCY);
    assert_ids(f, IDS(1, 2));
    assert_has(f, "too fast: sold by Marine Nord to Jan Peeters in Calais on 2026-03-01, then "
                  "shipped by Jan Peeters from München");
    assert_has(f, " 1 hour later: 767 km at 767 km/h");
    assert_has(f, "km/h, more than the 130 km/h road travel allows");
    cr_assert_eq(count_kind(&r, "place_gap"), 1);

    /* Three days later: plausible (the change of place stays a gap). */
    h[1].time = at(3, 4, 11);
    r = assemble(h, 2);
    cr_assert_eq(count_kind(&r, "too_fast"), 0);
    cr_assert_eq(count_kind(&r, "place_gap"), 1);

    /* At the same instant, Lille (92 km) is too fast, Dunkerque (37 km) not. */
    h[1].time = h[0].time;
    h[1].origin = LILLE;
    r = assemble(h, 2);
    assert_has(fact(&r, "too_fast"), "and at the same time shipped by Jan Peeters from Lille");
    h[1].origin = DUNKERQUE;
    r = assemble(h, 2);
    cr_assert_eq(count_kind(&r, "too_fast"), 0);
    /* 37 km in 10 minutes is too fast (225 km/h). */
    h[1].time = h[0].time + 600;
    r = assemble(h, 2);
    assert_has(fact(&r, "too_fast"), "10 minutes later: 37 km at 225 km/h");
    /* 3 km is one place (TW_PLACE_SAME_KM): never too fast, even in a minute. */
    h[1].origin = CALAIS;
    h[1].origin.lat += 0.027;
    h[1].time = h[0].time + 60;
    r = assemble(h, 2);
    cr_assert_eq(count_kind(&r, "too_fast"), 0);
    h[1].origin.lat += 0.027; /* 6 km in a minute is */
    r = assemble(h, 2);
    cr_assert_eq(count_kind(&r, "too_fast"), 1);
}

Test(chain, too_fast_counts_from_the_delivery)
{
    /* Dispatched from Munich on 03-01, delivered in Calais on 03-02 08:00,
     * sold in Munich at 09:00: the engine cannot be back in one hour,
     * though the dispatch was 33 hours earlier. */
    tw_chain_hop h[2] = {
        shipment(1, at(3, 1, 0), RETAILER, BUYER, MUNICH, CALAIS, "c"),
        sale(2, at(3, 2, 9), BUYER, OTHER, MUNICH, "r"),
    };
    h[0].has_delivered = true;
    h[0].delivered = at(3, 2, 8);
    tw_chain_result r = assemble(h, 2);
    const tw_chain_fact *f = fact(&r, "too_fast");
    assert_has(f, ", delivered on 2026-03-02, then sold by Jan Peeters to Kurt Weber in München on "
                  "2026-03-02 1 hour later");
    h[0].has_delivered = false;
    r = assemble(h, 2);
    cr_assert_eq(count_kind(&r, "too_fast"), 0);
}

Test(chain, sold_twice_by_different_sellers)
{
    tw_chain_hop h[3] = {
        sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r"),
        sale(2, at(3, 20, 10), OTHER, CARRIER, LILLE, "m"),
        sale(3, at(3, 22, 10), CARRIER, BUYER, LILLE, "m"),
    };
    tw_chain_result r = assemble(h, 3);
    cr_assert_eq(count_kind(&r, "sold_twice"), 1, "3 follows its own buyer's purchase");
    const tw_chain_fact *f = fact(&r, "sold_twice");
    cr_assert_eq(f->severity, TW_CHAIN_INCONSISTENCY);
    assert_ids(f, IDS(1, 2));
    cr_assert_str_eq(f->text, "sold twice: sold by Marine Nord to Jan Peeters in Lille on "
                              "2026-03-02, then sold by Kurt Weber to Transports Lefort in Lille on "
                              "2026-03-20; no hop between returned it to Kurt Weber");

    /* A shipment between them brought it to the second seller: no fact. */
    tw_chain_hop h2[3] = {h[0], shipment(4, at(3, 10, 10), BUYER, OTHER, LILLE, LILLE, "c"),
                          h[1]};
    r = assemble(h2, 3);
    cr_assert_eq(count_kind(&r, "sold_twice"), 0);
    /* A plain resale by the buyer: no fact. */
    h[1].from = BUYER;
    r = assemble(h, 3);
    cr_assert_eq(count_kind(&r, "sold_twice"), 0);
}

Test(chain, readings_disagree_names_methods_and_keys)
{
    tw_chain_hop h[1] = {sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r")};
    tw_chain_reading rd[5] = {
        {"6E5X1016532", "6E5-X-1016532", 2, 40},
        {"6E5X1016523", "6E5-X-1016523", 1, 7},
        {"6E5X1016523", "6E5 X 1016523", 4, 1},
        {"6E5X10?6523", "6E5X10?6523", 1, 50}, /* partial: not a disagreement */
        {NULL, "", 1, 60},
    };
    tw_chain_result r = assemble_opt(h, 1, rd, 5, NULL);
    const tw_chain_fact *f = fact(&r, "readings_disagree");
    cr_assert_eq(f->severity, TW_CHAIN_INCONSISTENCY);
    cr_assert_str_eq(f->text,
                     "readings disagree: plate and document read 6E5X1016523, stamp reads 6E5X1016532");
    assert_ids(f, IDS(1, 7, 40));

    /* Plate and stamp agree: nothing to say. */
    rd[0].key = "6E5X1016523";
    r = assemble_opt(h, 1, rd, 5, NULL);
    cr_assert_eq(count_kind(&r, "readings_disagree"), 0);
}

/* ---- status ---------------------------------------------------------------- */

Test(chain, corrected_hop_is_kept_but_excluded_and_its_replacement_used)
{
    tw_chain_hop h[3] = {
        sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r"),
        shipment(2, at(3, 5, 9), BUYER, OTHER, MUNICH, MUNICH, "c"), /* wrong: Munich */
        shipment(3, at(3, 5, 9), BUYER, OTHER, LILLE, CALAIS, "c"),  /* the correction */
    };
    /* Before the correction applies (both active) the wrong one is a gap. */
    tw_chain_result r = assemble(h, 2);
    cr_assert_eq(count_kind(&r, "place_gap"), 1);

    h[1].status = TW_CHAIN_CORRECTED;
    r = assemble(h, 3);
    cr_assert_eq(r.n, 3, "the corrected hop stays visible");
    cr_assert_eq(ev_at(&r, h, 1), 2);
    cr_assert_eq(r.order[1].same_as, -1);
    cr_assert_eq(r.order[1].sources, 1);
    cr_assert_eq(r.order[2].same_as, -1, "a corrected hop is not a corroboration");
    cr_assert_eq(count_kind(&r, "place_gap"), 0);
    cr_assert_eq(count_kind(&r, "too_fast"), 0);
    cr_assert_eq(r.last, 2);
    cr_assert_str_eq(r.last_place.name, "Calais");
    assert_ids(fact(&r, "single_source"), IDS(1, 3));
}

Test(chain, retracted_hop_has_no_effect)
{
    tw_chain_hop h[3] = {
        sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r"),
        seizure(2, at(3, 5, 9), AGENCY, BUYER, CALAIS, "d"),
        sale(3, at(3, 10, 9), BUYER, OTHER, LILLE, "r"),
    };
    tw_chain_hop late = seizure(4, at(3, 30, 9), AGENCY, OTHER, CALAIS, "d");
    tw_chain_hop h4[4] = {h[0], h[1], h[2], late};
    tw_chain_result r = assemble(h4, 4);
    cr_assert_eq(count_kind(&r, "seized_before_sold"), 1);
    cr_assert_eq(r.last, 3);

    h4[1].status = TW_CHAIN_RETRACTED;
    h4[3].status = TW_CHAIN_RETRACTED;
    r = assemble(h4, 4);
    cr_assert_eq(count_kind(&r, "seized_before_sold"), 0);
    cr_assert_eq(count_kind(&r, "custody_gap"), 0);
    cr_assert_eq(r.last, 2, "the last active hop is the resale");
    cr_assert_eq(r.last_custodian.cluster, 5);
    cr_assert_str_eq(r.last_place.name, "Lille");
    assert_ids(fact(&r, "last_known"), IDS(3));
}

/* ---- corroboration ------------------------------------------------------------ */

Test(chain, two_sources_of_one_shipment_fold)
{
    tw_chain_hop h[3] = {
        sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "retailer"),
        shipment(5, at(3, 5, 10), CARRIER, NOBODY, LILLE, NOWHERE, "carrier-fr"),
        shipment(9, at(3, 6, 8), NOBODY, BUYER, LILLE, CALAIS, "customs-fr"),
    };
    h[1].grading_source = 1;
    h[1].grading_info = 1;
    h[2].grading_source = 2;
    h[2].grading_info = 2;
    tw_chain_result r = assemble(h, 3);
    cr_assert_eq(r.order[1].same_as, -1);
    cr_assert_eq(r.order[1].sources, 2);
    cr_assert_eq(r.order[2].same_as, 1);
    cr_assert_eq(r.order[2].sources, 0);
    const tw_chain_fact *f = fact(&r, "corroborated");
    cr_assert_eq(f->severity, TW_CHAIN_INFO);
    assert_ids(f, IDS(5, 9));
    /* The movement's consignee and destination come from the customs report. */
    cr_assert_str_eq(f->text, "corroborated: shipped by Transports Lefort from Lille to Jan "
                              "Peeters in Calais on 2026-03-05 reported by 2 independent sources: "
                              "carrier-fr (graded 1A), customs-fr (graded 2B)");
    cr_assert_eq(count_kind(&r, "single_source"), 0);
    cr_assert_eq(r.last, 1, "the last movement is the folded shipment");
    cr_assert_str_eq(r.last_custodian.name, "Jan Peeters");
    cr_assert_str_eq(r.last_place.name, "Calais");

    /* One source twice is not corroboration. */
    h[2].source = "carrier-fr";
    r = assemble(h, 3);
    cr_assert_eq(r.order[2].same_as, -1);
    cr_assert_eq(count_kind(&r, "corroborated"), 0);
    h[2].source = "customs-fr";
    /* Outside the window (two days). */
    h[2].time = at(3, 7, 11);
    r = assemble(h, 3);
    cr_assert_eq(r.order[2].same_as, -1);
    h[2].time = at(3, 6, 8);
    /* Disagreeing parties: another shipper. */
    h[2].from = OTHER;
    r = assemble(h, 3);
    cr_assert_eq(r.order[2].same_as, -1);
    h[2].from = NOBODY;
    /* Another kind. */
    h[2].kind = TW_CHAIN_SEIZURE;
    r = assemble(h, 3);
    cr_assert_eq(r.order[2].same_as, -1);
}

Test(chain, a_third_report_disagreeing_with_a_folded_one_stays_apart)
{
    /* The second report names the consignee; a third naming another
     * consignee disagrees with the movement though not with its head. */
    tw_chain_hop h[3] = {
        shipment(1, at(3, 5, 10), CARRIER, NOBODY, LILLE, CALAIS, "carrier"),
        shipment(2, at(3, 5, 11), NOBODY, BUYER, LILLE, CALAIS, "customs"),
        shipment(3, at(3, 5, 12), NOBODY, OTHER, LILLE, CALAIS, "police"),
    };
    tw_chain_result r = assemble(h, 3);
    cr_assert_eq(r.order[1].same_as, 0);
    cr_assert_eq(r.order[2].same_as, -1);
    cr_assert_eq(r.order[0].sources, 2);
}

Test(chain, a_source_counts_once_per_movement_and_the_earliest_movement_wins)
{
    tw_chain_hop h[3] = {
        shipment(1, at(3, 5, 10), CARRIER, BUYER, LILLE, CALAIS, "carrier"),
        shipment(2, at(3, 5, 11), CARRIER, BUYER, LILLE, CALAIS, "customs"),
        shipment(3, at(3, 5, 12), CARRIER, BUYER, LILLE, CALAIS, "customs"),
    };
    /* 2 folds into 1; 3 cannot (customs is already there), and cannot fold
     * into 2 (folded): it is a movement of its own. */
    tw_chain_result r = assemble(h, 3);
    cr_assert_eq(r.order[1].same_as, 0);
    cr_assert_eq(r.order[2].same_as, -1);
    cr_assert_eq(r.order[0].sources, 2);
    cr_assert_eq(r.order[2].sources, 1);

    /* 1 and 2 from one source are two movements; 3 from another source
     * fits both and folds into the earliest. */
    h[1].source = "carrier";
    h[2].source = "police";
    r = assemble(h, 3);
    cr_assert_eq(r.order[1].same_as, -1);
    cr_assert_eq(r.order[2].same_as, 0);
    cr_assert_eq(r.order[0].sources, 2);
    cr_assert_eq(r.order[1].sources, 1);
}

Test(chain, corrected_and_retracted_hops_never_corroborate)
{
    tw_chain_hop h[3] = {
        shipment(1, at(3, 5, 10), CARRIER, BUYER, LILLE, CALAIS, "carrier"),
        shipment(2, at(3, 5, 11), CARRIER, BUYER, LILLE, CALAIS, "customs"),
        shipment(3, at(3, 5, 12), CARRIER, BUYER, LILLE, CALAIS, "police"),
    };
    tw_chain_result r = assemble(h, 3);
    cr_assert_eq(r.order[0].sources, 3, "all active: one movement, three sources");
    h[1].status = TW_CHAIN_RETRACTED;
    h[2].status = TW_CHAIN_CORRECTED;
    r = assemble(h, 3);
    for (size_t p = 0; p < 3; p++) {
        cr_assert_eq(r.order[p].same_as, -1);
        cr_assert_eq(r.order[p].sources, 1);
    }
    cr_assert_eq(count_kind(&r, "corroborated"), 0);
    assert_ids(fact(&r, "single_source"), IDS(1));
    /* An inactive first report does not take the active ones in. */
    h[0].status = TW_CHAIN_RETRACTED;
    h[1].status = h[2].status = TW_CHAIN_ACTIVE;
    r = assemble(h, 3);
    cr_assert_eq(r.order[0].sources, 1);
    cr_assert_eq(r.order[2].same_as, 1);
    cr_assert_eq(r.order[1].sources, 2);
}

/* ---- time, last ------------------------------------------------------------------ */

Test(chain, hops_without_time_come_last_and_are_flagged)
{
    tw_chain_hop h[4] = {
        sale(7, 0, OTHER, NOBODY, MUNICH, "m"),
        sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r"),
        sale(3, 0, CARRIER, AGENCY, NOWHERE, "m"),
        shipment(2, at(3, 3, 10), BUYER, BUYER, LILLE, CALAIS, "c"),
    };
    h[0].has_time = h[2].has_time = false;
    h[0].time = 1; /* ignored without has_time */
    tw_chain_result r = assemble(h, 4);
    cr_assert_eq(ev_at(&r, h, 0), 1);
    cr_assert_eq(ev_at(&r, h, 1), 2);
    cr_assert_eq(ev_at(&r, h, 2), 3);
    cr_assert_eq(ev_at(&r, h, 3), 7);
    cr_assert_eq(count_kind(&r, "no_time"), 2);
    const tw_chain_fact *f = fact(&r, "no_time");
    cr_assert_eq(f->severity, TW_CHAIN_WARNING);
    assert_ids(f, IDS(3));
    cr_assert_str_eq(f->text, "no time: sold by Transports Lefort to Douane Calais (event 3) has no "
                              "event time; it is listed last, after the hops with a time");
    /* Untimed hops are not placed: no gaps or sales compared with them. */
    cr_assert_eq(count_kind(&r, "custody_gap"), 0);
    cr_assert_eq(count_kind(&r, "place_gap"), 0);
    cr_assert_eq(count_kind(&r, "sold_twice"), 0);
    cr_assert_eq(r.last, 1, "the last hop with a time");
}

Test(chain, last_custodian_and_place)
{
    tw_chain_hop h[3] = {
        sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r"),
        shipment(2, at(3, 5, 9), BUYER, NOBODY, LILLE, CALAIS, "c"),
        seizure(3, at(3, 9, 9), AGENCY, NOBODY, NOWHERE, "d"),
    };
    /* Shipped to nobody known: the custodian is unknown, the place Calais. */
    tw_chain_result r = assemble(h, 2);
    cr_assert_eq(r.last, 1);
    cr_assert_eq(r.last_custodian.cluster, 0);
    cr_assert_null(r.last_custodian.name);
    cr_assert_str_eq(r.last_place.name, "Calais");
    cr_assert_eq(r.last_place_at, 1);
    assert_has(fact(&r, "last_known"), "last known: custodian unknown, place Calais;");

    /* Seized where nobody wrote down: custodian the agency, place the
     * last known one, as of its date. */
    r = assemble(h, 3);
    cr_assert_eq(r.last, 2);
    cr_assert_eq(r.last_custodian.cluster, 4);
    cr_assert_str_eq(r.last_place.name, "Calais");
    cr_assert_eq(r.last_place_at, 1);
    const tw_chain_fact *f = fact(&r, "last_known");
    cr_assert_str_eq(f->text, "last known: custodian Douane Calais, place Calais (as of "
                              "2026-03-05); last seized by Douane Calais on 2026-03-09");
    assert_ids(f, IDS(3, 2));

    /* A place named but not resolved (an ambiguous town) still counts. */
    h[2].place = (tw_chain_place){false, 0, 0, "Münster"};
    r = assemble(h, 3);
    cr_assert_not(r.last_place.known);
    cr_assert_str_eq(r.last_place.name, "Münster");
    cr_assert_eq(r.last_place_at, 2);

    /* Nothing active: no last. */
    h[0].status = h[1].status = h[2].status = TW_CHAIN_RETRACTED;
    r = assemble(h, 3);
    cr_assert_eq(r.last, -1);
    cr_assert_eq(r.last_place_at, -1);
    cr_assert_eq(r.n_facts, 0);
    /* No hops at all. */
    r = assemble(NULL, 0);
    cr_assert_eq(r.n, 0);
    cr_assert_eq(r.last, -1);
    cr_assert_eq(r.n_facts, 0);
}

/* ---- arguments and robustness ------------------------------------------------------------ */

static void assert_invalid(const tw_chain_hop *h, size_t n, const tw_chain_reading *rd, size_t nr,
                           const tw_chain_options *o, tw_arena *a)
{
    tw_chain_result r, zero;
    memset(&r, 0xAB, sizeof r);
    memset(&zero, 0, sizeof zero);
    cr_assert_eq(tw_chain_assemble(h, n, rd, nr, o, a, &r), -1);
    cr_assert(memcmp(&r, &zero, sizeof r) == 0, "*out is zeroed");
}

Test(chain, invalid_arguments_return_minus_one_with_out_zeroed)
{
    tw_chain_hop h[1] = {sale(1, at(3, 2, 10), RETAILER, BUYER, LILLE, "r")};
    tw_chain_options o;
    tw_chain_options_init(&o);
    cr_assert_eq(o.same_hop_seconds, TW_CHAIN_DEFAULT_SAME_HOP_SECONDS);
    cr_assert_eq(o.place_gap_km, TW_CHAIN_DEFAULT_PLACE_GAP_KM);
    cr_assert_eq(o.max_kmh, TW_CHAIN_DEFAULT_MAX_KMH);

    assert_invalid(NULL, 1, NULL, 0, NULL, &arena);
    assert_invalid(h, 1, NULL, 1, NULL, &arena);
    assert_invalid(h, 1, NULL, 0, NULL, NULL);
    cr_assert_eq(tw_chain_assemble(h, 1, NULL, 0, NULL, &arena, NULL), -1);

    h[0].kind = 0;
    assert_invalid(h, 1, NULL, 0, NULL, &arena);
    h[0].kind = 4;
    assert_invalid(h, 1, NULL, 0, NULL, &arena);
    h[0].kind = TW_CHAIN_SALE;
    h[0].status = 3;
    assert_invalid(h, 1, NULL, 0, NULL, &arena);
    h[0].status = TW_CHAIN_ACTIVE;
    h[0].place.lat = NAN;
    assert_invalid(h, 1, NULL, 0, NULL, &arena);
    h[0].place.lat = 50;
    h[0].origin = (tw_chain_place){true, 1, INFINITY, "x"};
    assert_invalid(h, 1, NULL, 0, NULL, &arena);
    /* An unknown place's coordinates are not looked at. */
    h[0].origin = (tw_chain_place){false, NAN, NAN, NULL};
    tw_chain_result r;
    cr_assert_eq(tw_chain_assemble(h, 1, NULL, 0, NULL, &arena, &r), 0);

    o.same_hop_seconds = -1;
    assert_invalid(h, 1, NULL, 0, &o, &arena);
    tw_chain_options_init(&o);
    o.place_gap_km = NAN;
    assert_invalid(h, 1, NULL, 0, &o, &arena);
    tw_chain_options_init(&o);
    o.max_kmh = 0;
    assert_invalid(h, 1, NULL, 0, &o, &arena);

    /* Allocation failure (an arena limit) is -1 with *out zeroed too. */
    tw_arena small;
    tw_arena_init(&small, 0);
    tw_arena_set_limit(&small, 64);
    assert_invalid(h, 1, NULL, 0, NULL, &small);
    tw_arena_free(&small);
}

static bool valid_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
                               : (*p & 0xF8) == 0xF0   ? 4
                                                       : 0;
        if (n == 0 || (n == 2 && *p < 0xC2))
            return false;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                return false;
        if (*p < 0x20)
            return false;
        p += n;
    }
    return true;
}

Test(chain, hostile_input_is_bounded_and_clean)
{
    enum { N = 3000 };
    tw_chain_hop *h = calloc(N, sizeof *h);
    cr_assert_not_null(h);
    char longname[4000];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memcpy(longname, "Caf\xc3\xa9 \xff\xfe\n\x01", 10);
    /* Thousands of hops at one instant from one source, NULL strings,
     * hops without time, extreme times and coordinates. */
    for (size_t i = 0; i < N; i++) {
        h[i].event_id = (int64_t)(i % 97);
        h[i].line = (int)(i % 3);
        h[i].kind = (tw_chain_hop_kind)(1 + i % 3);
        h[i].status = (tw_chain_status)(i % 5 == 0 ? 1 : 0);
        h[i].has_time = i % 7 != 0;
        h[i].time = i % 11 == 0 ? INT64_MIN : i % 13 == 0 ? INT64_MAX : 1700000000;
        h[i].from = (tw_chain_party){(int64_t)(i % 4), i % 2 ? longname : NULL};
        h[i].to = (tw_chain_party){(int64_t)(i % 5), i % 3 ? NULL : longname};
        h[i].place = (tw_chain_place){i % 2 == 0, i % 2 ? 0.0 : 1e6, -1e6, i % 4 ? NULL : longname};
        h[i].origin = (tw_chain_place){i % 3 == 0, 89.9, 179.9, longname};
        h[i].source = i % 6 ? NULL : "s";
    }
    tw_chain_reading rd[3] = {{longname, NULL, 1, 1}, {"A1", NULL, 99, 2}, {"B2", "x", -5, 3}};
    tw_chain_result r = assemble_opt(h, N, rd, 3, NULL);
    for (size_t i = 0; i < r.n_facts; i++)
        cr_assert(valid_utf8(r.facts[i].text), "not clean UTF-8: %s", r.facts[i].text);
    /* The order is a permutation of the input. */
    char *seen = calloc(N, 1);
    for (size_t p = 0; p < N; p++) {
        cr_assert_lt(r.order[p].input, N);
        cr_assert_not(seen[r.order[p].input]);
        seen[r.order[p].input] = 1;
        if (r.order[p].same_as >= 0)
            cr_assert_lt(r.order[p].same_as, (ptrdiff_t)p);
    }
    free(seen);
    /* A long name is cut with "..." and still leaves room for the rest. */
    tw_chain_hop two[2] = {sale(1, 0, (tw_chain_party){1, longname}, (tw_chain_party){2, longname},
                                NOWHERE, longname),
                           sale(2, 0, (tw_chain_party){3, longname}, BUYER, NOWHERE, "t")};
    r = assemble(two, 2);
    const tw_chain_fact *f = fact(&r, "custody_gap");
    assert_has(f, "1970-01-01");
    assert_has(f, "sold by Café ??  xxx");
    assert_has(f, "...");
    cr_assert(valid_utf8(f->text));
    two[1].time = -1;
    two[0].time = -86400 * 365;
    r = assemble(two, 2);
    assert_has(fact(&r, "custody_gap"), "1969-01-01");
    assert_has(fact(&r, "custody_gap"), "1969-12-31");
    free(h);
}
