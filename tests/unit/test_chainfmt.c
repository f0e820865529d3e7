/* tw_chainfmt on hand-built protobuf-c messages: the text timeline (order,
 * markers, words), JSON that parses back with protobuf's JSON mapping, DOT
 * that is well formed with escaped labels (and accepted by Graphviz when it
 * is installed), GeoJSON in [lon, lat] following time order, and empty or
 * placeless chains. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tw_chainfmt.h"

/* 2026-03-02 10:00:00 UTC */
#define T0 1772445600LL
#define DAY 86400LL

/* ---- a hand-built chain -------------------------------------------------- */

typedef struct fixture {
    Google__Protobuf__Timestamp t[6];
    Tidewatch__V1__PartyRef dealer, bob, jan, lefort, paf, other;
    Tidewatch__V1__HopPlace hamburg, lille, roubaix, gravelines, bremen;
    Tidewatch__V1__Grading g1a, g2b;
    Tidewatch__V1__SourceRef s1, s2, s3;
    Tidewatch__V1__SourceRef *sale_src[2], *ship_src[1], *seize_src[1];
    Tidewatch__V1__Hop sale, retracted, shipped, corrected, seized;
    Tidewatch__V1__Hop *hops[5];
    Tidewatch__V1__ChainFact gap, fast;
    Tidewatch__V1__ChainFact *facts[2];
    int64_t gap_ids[2];
    Tidewatch__V1__Reading reading;
    Tidewatch__V1__Reading *readings[1];
    Tidewatch__V1__ItemKey key;
    Tidewatch__V1__ItemKey *keys[1];
    Tidewatch__V1__Item item, cand_item;
    Tidewatch__V1__RelatedItem rel;
    Tidewatch__V1__RelatedItem *related[1];
    Tidewatch__V1__Chain chain;
    Tidewatch__V1__Chain *chains[1];
    Tidewatch__V1__Candidate cand;
    Tidewatch__V1__Candidate *cands[1];
    Tidewatch__V1__GetChainResponse resp;
} fixture;

static void party_init(Tidewatch__V1__PartyRef *p, int64_t id, const char *name, const char *kind,
                       const char *cc)
{
    Tidewatch__V1__PartyRef z = TIDEWATCH__V1__PARTY_REF__INIT;
    *p = z;
    p->id = id;
    p->name = (char *)name;
    p->kind = (char *)kind;
    p->country = (char *)cc;
}

static void place_init(Tidewatch__V1__HopPlace *pl, const char *name, const char *cc, double lat,
                       double lon, const char *coast_hub, double km)
{
    Tidewatch__V1__HopPlace z = TIDEWATCH__V1__HOP_PLACE__INIT;
    *pl = z;
    pl->name = (char *)name;
    pl->country = (char *)cc;
    pl->has_coordinates = 1;
    pl->lat = lat;
    pl->lon = lon;
    pl->coast_hub = (char *)coast_hub;
    pl->coast_hub_km = km;
}

static void hop_init(Tidewatch__V1__Hop *h, int64_t event, Tidewatch__V1__HopKind kind,
                     Google__Protobuf__Timestamp *t)
{
    Tidewatch__V1__Hop z = TIDEWATCH__V1__HOP__INIT;
    *h = z;
    h->event_id = event;
    h->kind = kind;
    h->item_id = 17;
    h->time = t;
}

static fixture *make_fixture(void)
{
    fixture *f = calloc(1, sizeof *f);
    cr_assert_not_null(f);
    for (int i = 0; i < 6; i++) {
        Google__Protobuf__Timestamp z = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        f->t[i] = z;
    }
    f->t[0].seconds = T0;                 /* 2026-03-02 sale */
    f->t[1].seconds = T0 + 3 * DAY;       /* 2026-03-05 retracted sale */
    f->t[2].seconds = T0 + 8 * DAY;       /* 2026-03-10 shipment (corrected) */
    f->t[3].seconds = T0 + 9 * DAY;       /* 2026-03-11 shipment (the correction) */
    f->t[4].seconds = T0 + 13 * DAY;      /* 2026-03-15 seizure */
    f->t[4].nanos = 500000000;

    party_init(&f->dealer, 5, "Bootshandel Nord", "company", "DE");
    party_init(&f->bob, 7, "Bob \"the boat\" O'Neil", "person", "GB");
    party_init(&f->jan, 9, "Jan Peeters", "person", "BE");
    party_init(&f->lefort, 11, "Transports Lefort", "company", "FR");
    party_init(&f->paf, 20, "Police aux Fronti\xc3\xa8res", "agency", "FR");
    party_init(&f->other, 30, "Back\\slash\nNewline", "person", "NL");

    place_init(&f->hamburg, "Hamburg", "DE", 53.55, 9.99, "Dunkerque", 640.4);
    place_init(&f->lille, "Lille", "FR", 50.63, 3.06, "Dunkerque", 68.0);
    place_init(&f->roubaix, "Roubaix", "FR", 50.69, 3.17, "Dunkerque", 75.2);
    place_init(&f->gravelines, "Gravelines", "FR", 50.98, 2.12, "Gravelines", 0.0);
    f->gravelines.hub = "Gravelines";
    f->gravelines.hub_kind = "coast";
    place_init(&f->bremen, "Bremen", "DE", 53.08, 8.80, "Dunkerque", 560.0);

    Tidewatch__V1__Grading gz = TIDEWATCH__V1__GRADING__INIT;
    f->g1a = gz;
    f->g1a.source = TIDEWATCH__V1__GRADING__SOURCE_EVALUATION__SOURCE_1_RELIABLE;
    f->g1a.information = TIDEWATCH__V1__GRADING__INFORMATION_ASSESSMENT__INFORMATION_A_KNOWN_DIRECTLY;
    f->g2b = gz;
    f->g2b.source = TIDEWATCH__V1__GRADING__SOURCE_EVALUATION__SOURCE_2_UNTESTED;
    f->g2b.information =
        TIDEWATCH__V1__GRADING__INFORMATION_ASSESSMENT__INFORMATION_B_INDIRECTLY_CORROBORATED;
    f->g2b.handling = TIDEWATCH__V1__GRADING__HANDLING__HANDLING_P_LAWFUL_SHARING;
    Tidewatch__V1__SourceRef sz = TIDEWATCH__V1__SOURCE_REF__INIT;
    f->s1 = sz;
    f->s1.event_id = 101;
    f->s1.source = "dealer-de";
    f->s1.grading = &f->g1a;
    f->s2 = sz;
    f->s2.event_id = 102;
    f->s2.source = "police-de";
    f->s2.grading = &f->g2b;
    f->s3 = sz;
    f->s3.event_id = 140;
    f->s3.source = "paf-fr";
    f->sale_src[0] = &f->s1;
    f->sale_src[1] = &f->s2;
    f->ship_src[0] = &f->s3;
    f->seize_src[0] = &f->s3;

    hop_init(&f->sale, 101, TIDEWATCH__V1__HOP_KIND__HOP_KIND_SALE, &f->t[0]);
    f->sale.from = &f->dealer;
    f->sale.to = &f->bob;
    f->sale.place = &f->hamburg;
    f->sale.n_sources = 2;
    f->sale.sources = f->sale_src;

    hop_init(&f->retracted, 105, TIDEWATCH__V1__HOP_KIND__HOP_KIND_SALE, &f->t[1]);
    f->retracted.from = &f->other;
    f->retracted.to = &f->jan;
    f->retracted.place = &f->bremen;
    f->retracted.status = TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_RETRACTED;

    hop_init(&f->corrected, 120, TIDEWATCH__V1__HOP_KIND__HOP_KIND_SHIPMENT, &f->t[2]);
    f->corrected.from = &f->bob;
    f->corrected.to = &f->jan;
    f->corrected.carrier = &f->lefort;
    f->corrected.origin = &f->hamburg;
    f->corrected.place = &f->lille;
    f->corrected.status = TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_CORRECTED;
    f->corrected.corrected_by = 130;

    hop_init(&f->shipped, 130, TIDEWATCH__V1__HOP_KIND__HOP_KIND_SHIPMENT, &f->t[3]);
    f->shipped.from = &f->bob;
    f->shipped.to = &f->jan;
    f->shipped.carrier = &f->lefort;
    f->shipped.origin = &f->hamburg;
    f->shipped.place = &f->roubaix;
    f->shipped.corrects = 120;
    f->shipped.n_sources = 1;
    f->shipped.sources = f->ship_src;

    hop_init(&f->seized, 140, TIDEWATCH__V1__HOP_KIND__HOP_KIND_SEIZURE, &f->t[4]);
    f->seized.to = &f->paf;
    f->seized.place = &f->gravelines;
    f->seized.launch = 1;
    f->seized.condition = "used";
    f->seized.n_sources = 1;
    f->seized.sources = f->seize_src;

    f->hops[0] = &f->sale;
    f->hops[1] = &f->retracted;
    f->hops[2] = &f->corrected;
    f->hops[3] = &f->shipped;
    f->hops[4] = &f->seized;

    Tidewatch__V1__ChainFact fz = TIDEWATCH__V1__CHAIN_FACT__INIT;
    f->gap = fz;
    f->gap.kind = "custody_gap";
    f->gap.severity = "warning";
    f->gap.text = "custody gap: shipped to Jan Peeters on 2026-03-11, next seized from nobody known";
    f->gap_ids[0] = 130;
    f->gap_ids[1] = 140;
    f->gap.n_event_ids = 2;
    f->gap.event_ids = f->gap_ids;
    f->fast = fz;
    f->fast.kind = "too_fast";
    f->fast.severity = "inconsistency";
    f->fast.text = "too fast: Hamburg to Roubaix faster than road travel allows";
    f->facts[0] = &f->gap;
    f->facts[1] = &f->fast;

    Tidewatch__V1__Reading rz = TIDEWATCH__V1__READING__INIT;
    f->reading = rz;
    f->reading.text = "6E5-X 1016523";
    f->reading.method = "plate";
    f->reading.completeness = "complete";
    f->reading.event_id = 101;
    f->reading.source = "dealer-de";
    f->readings[0] = &f->reading;
    Tidewatch__V1__ItemKey kz = TIDEWATCH__V1__ITEM_KEY__INIT;
    f->key = kz;
    f->key.kind = "serial";
    f->key.key = "6E5X1016523";
    f->key.maker = "Yamaha";
    f->key.n_readings = 1;
    f->key.readings = f->readings;
    f->keys[0] = &f->key;
    Tidewatch__V1__Item iz = TIDEWATCH__V1__ITEM__INIT;
    f->item = iz;
    f->item.id = 17;
    f->item.kind = TIDEWATCH__V1__ITEM_KIND__ITEM_KIND_ENGINE;
    f->item.maker = "Yamaha";
    f->item.model = "F40";
    f->item.n_keys = 1;
    f->item.keys = f->keys;
    f->item.first_seen = &f->t[0];
    f->cand_item = f->item;

    Tidewatch__V1__RelatedItem relz = TIDEWATCH__V1__RELATED_ITEM__INIT;
    f->rel = relz;
    f->rel.item_id = 18;
    f->rel.relation = "same_purchase";
    f->rel.key = "6E5X1016524";
    f->rel.event_id = 101;
    f->related[0] = &f->rel;

    Tidewatch__V1__Chain cz = TIDEWATCH__V1__CHAIN__INIT;
    f->chain = cz;
    f->chain.item = &f->item;
    f->chain.n_hops = 5;
    f->chain.hops = f->hops;
    f->chain.n_facts = 2;
    f->chain.facts = f->facts;
    f->chain.n_related = 1;
    f->chain.related = f->related;
    f->chain.last_custodian = &f->paf;
    f->chain.last_place = &f->gravelines;
    f->chains[0] = &f->chain;

    Tidewatch__V1__Candidate candz = TIDEWATCH__V1__CANDIDATE__INIT;
    f->cand = candz;
    f->cand.item = &f->cand_item;
    f->cand.score = 0.86;
    f->cand.probable = 1;
    f->cand.reason = "10 of 11 characters agree (1 unreadable), same maker and model";
    f->cand.reading = "6E5X10?6523";
    f->cands[0] = &f->cand;

    Tidewatch__V1__GetChainResponse gz2 = TIDEWATCH__V1__GET_CHAIN_RESPONSE__INIT;
    f->resp = gz2;
    f->resp.n_chains = 1;
    f->resp.chains = f->chains;
    f->resp.n_candidates = 1;
    f->resp.candidates = f->cands;
    f->resp.normalized = "6E5X1016523";
    return f;
}

/* ---- helpers ------------------------------------------------------------- */

static char *render_text(const Tidewatch__V1__GetChainResponse *r)
{
    tw_fmt_buf b = {0};
    tw_fmt_out o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_chain_text(&o, r), 0);
    cr_assert_not_null(b.data);
    return b.data;
}

static const char *after(const char *hay, const char *needle, const char *from)
{
    const char *p = strstr(from ? from : hay, needle);
    cr_assert_not_null(p, "\"%s\" missing (or out of order) in:\n%s", needle, hay);
    return p + strlen(needle);
}

/* The line of `text` containing `needle`, copied into buf. */
static const char *line_with(const char *text, const char *needle, char *buf, size_t len)
{
    const char *p = strstr(text, needle);
    cr_assert_not_null(p, "no line with \"%s\" in:\n%s", needle, text);
    const char *s = p;
    while (s > text && s[-1] != '\n')
        s--;
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    cr_assert_lt(n, len);
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* ---- text ---------------------------------------------------------------- */

Test(chainfmt, text_timeline_in_order_with_parties_places_and_sources)
{
    fixture *f = make_fixture();
    char *t = render_text(&f->resp);
    const char *p = after(t, "Engine 6E5X1016523 (Yamaha F40), item 17", NULL);
    p = after(t, "read \"6E5-X 1016523\" plate, complete, event 101 (dealer-de)", p);
    p = after(t, "2026-03-02  sold", p);
    p = after(t, "Bootshandel Nord #5 -> Bob \"the boat\" O'Neil #7", p);
    p = after(t, "at Hamburg, DE (640 km from Dunkerque)", p);
    p = after(t, "2 sources: dealer-de 1A, police-de 2BP; event 101", p);
    p = after(t, "2026-03-05", p);
    p = after(t, "2026-03-10  shipped", p);
    p = after(t, "by Transports Lefort #11, from Hamburg, DE (640 km from Dunkerque) to Lille, FR", p);
    p = after(t, "2026-03-11  shipped", p);
    p = after(t, "(corrects event 120)", p);
    p = after(t, "2026-03-15  seized   by Police aux Fronti\xc3\xa8res #20", p);
    p = after(t, "at Gravelines, FR (coast hub Gravelines), at a launch, used", p);
    p = after(t, "Facts:", p);
    p = after(t, "[!]  custody gap:", p);
    p = after(t, "(events 130, 140)", p);
    p = after(t, "[!!] too fast:", p);
    p = after(t, "Last known: Police aux Fronti\xc3\xa8res #20 (agency, FR), at Gravelines", p);
    p = after(t, "same purchase: item 18 6E5X1016524, event 101", p);
    p = after(t, "Candidates for the reading \"6E5X1016523\"", p);
    p = after(t, "0.86  PROBABLE LINK  item 17 6E5X1016523 (Yamaha F40): 10 of 11 characters agree", p);
    p = after(t, "(probable link, not merged)", p);
    (void)p;
    free(t);
    free(f);
}

Test(chainfmt, corrected_and_retracted_hops_are_marked)
{
    fixture *f = make_fixture();
    char *t = render_text(&f->resp);
    char line[1024];
    line_with(t, "2026-03-10", line, sizeof line);
    cr_assert(strncmp(line, "~ ", 2) == 0, "corrected line starts with ~: %s", line);
    cr_assert_not_null(strstr(line, "CORRECTED by event 130"), "%s", line);
    line_with(t, "2026-03-05", line, sizeof line);
    cr_assert(strncmp(line, "x ", 2) == 0, "retracted line starts with x: %s", line);
    cr_assert_not_null(strstr(line, "RETRACTED"), "%s", line);
    /* a newline in a name does not break the hop's line */
    cr_assert_not_null(strstr(line, "Back\\slash Newline #30 -> Jan Peeters"), "%s", line);
    line_with(t, "2026-03-11", line, sizeof line);
    cr_assert(strncmp(line, "  ", 2) == 0, "active line unmarked: %s", line);
    cr_assert_null(strstr(line, "CORRECTED"), "%s", line);
    cr_assert_null(strstr(line, "RETRACTED"), "%s", line);
    free(t);
    free(f);
}

Test(chainfmt, missing_time_party_and_place_are_said_in_words)
{
    Tidewatch__V1__Hop h = TIDEWATCH__V1__HOP__INIT;
    h.event_id = 9;
    h.kind = TIDEWATCH__V1__HOP_KIND__HOP_KIND_SALE;
    h.quantity = 10;
    tw_fmt_buf b = {0};
    tw_fmt_out o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_hop_line(&o, &h), 0);
    cr_assert_str_eq(b.data, "  no date     sold     10 x unknown party -> unknown party, at place "
                             "unknown; no source listed; event 9");
    tw_fmt_buf_free(&b);
}

Test(chainfmt, empty_answers)
{
    Tidewatch__V1__GetChainResponse r = TIDEWATCH__V1__GET_CHAIN_RESPONSE__INIT;
    r.normalized = "6E5X1016523";
    char *t = render_text(&r);
    cr_assert_str_eq(t, "No chain for 6E5X1016523 and no candidates.\n");
    free(t);
    /* a chain without hops, facts or a last place */
    Tidewatch__V1__Item it = TIDEWATCH__V1__ITEM__INIT;
    it.id = 3;
    it.kind = TIDEWATCH__V1__ITEM_KIND__ITEM_KIND_BOAT;
    Tidewatch__V1__Chain c = TIDEWATCH__V1__CHAIN__INIT;
    c.item = &it;
    Tidewatch__V1__Chain *cs[1] = {&c};
    r.n_chains = 1;
    r.chains = cs;
    t = render_text(&r);
    after(t, "Boat, item 3", NULL);
    after(t, "(no hops)", NULL);
    after(t, "Last known: nothing (no active hop)", NULL);
    free(t);
    /* a NULL answer renders too */
    t = render_text(NULL);
    cr_assert_str_eq(t, "No chain and no candidates.\n");
    free(t);
}

Test(chainfmt, text_strips_control_characters)
{
    fixture *f = make_fixture();
    char evil[] = "Evil\x1b[31mRed\x1b]0;title\x07 \xc2\x9b" "2J Ltd\r\n";
    f->dealer.name = evil;
    char *t = render_text(&f->resp);
    cr_assert_null(strchr(t, '\x1b'), "no ESC in:\n%s", t);
    cr_assert_null(strchr(t, '\x07'));
    cr_assert_null(strchr(t, '\r'));
    cr_assert_null(strstr(t, "\xc2\x9b"), "no C1 CSI");
    after(t, "2026-03-02  sold     Evil [31mRed ]0;title    2J Ltd   #5 -> Bob", NULL);
    /* the caller's message is untouched */
    cr_assert_eq(evil[4], '\x1b');
    free(t);
    free(f);
}

Test(chainfmt, grading_and_dates)
{
    char g[8], d[16];
    cr_assert_str_eq(tw_chainfmt_grading(NULL, g), "");
    Tidewatch__V1__Grading gr = TIDEWATCH__V1__GRADING__INIT;
    cr_assert_str_eq(tw_chainfmt_grading(&gr, g), "");
    gr.source = TIDEWATCH__V1__GRADING__SOURCE_EVALUATION__SOURCE_3_NOT_RELIABLE;
    cr_assert_str_eq(tw_chainfmt_grading(&gr, g), "3?");
    gr.information = TIDEWATCH__V1__GRADING__INFORMATION_ASSESSMENT__INFORMATION_E_SUSPECTED_FALSE;
    gr.handling = TIDEWATCH__V1__GRADING__HANDLING__HANDLING_C_CONDITIONS;
    cr_assert_str_eq(tw_chainfmt_grading(&gr, g), "3EC");
    Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    cr_assert_str_eq(tw_chainfmt_date(&t, d), "no date");
    cr_assert_str_eq(tw_chainfmt_date(NULL, d), "no date");
    t.seconds = T0 + 14 * 3600 - 1; /* 23:59:59 UTC stays the same day */
    cr_assert_str_eq(tw_chainfmt_date(&t, d), "2026-03-02");
}

Test(chainfmt, buffer_grows_and_file_output_matches)
{
    fixture *f = make_fixture();
    char *t = render_text(&f->resp);
    cr_assert_gt(strlen(t), 1024, "output large enough to grow the buffer several times");
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    tw_fmt_out o = tw_fmt_to_file(tmp);
    cr_assert_eq(tw_chainfmt_chain_text(&o, &f->resp), 0);
    long n = ftell(tmp);
    cr_assert_eq((size_t)n, strlen(t));
    rewind(tmp);
    char *back = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(back, 1, (size_t)n, tmp), (size_t)n);
    cr_assert_str_eq(back, t);
    fclose(tmp);
    free(back);
    free(t);
    free(f);
}

Test(chainfmt, other_views)
{
    fixture *f = make_fixture();
    /* search */
    Tidewatch__V1__ItemMatch m = TIDEWATCH__V1__ITEM_MATCH__INIT;
    m.item = &f->item;
    m.score = 0.9;
    m.matched_key = "6E5X1016523";
    m.reason = "2 characters differ";
    m.last_place = &f->gravelines;
    Tidewatch__V1__ItemMatch *ms[1] = {&m};
    Tidewatch__V1__SearchItemsResponse sr = TIDEWATCH__V1__SEARCH_ITEMS_RESPONSE__INIT;
    tw_fmt_buf b = {0};
    tw_fmt_out o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_search_text(&o, &sr), 0);
    cr_assert_str_eq(b.data, "No items match.\n");
    tw_fmt_buf_free(&b);
    sr.n_items = 1;
    sr.items = ms;
    o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_search_text(&o, &sr), 0);
    after(b.data, " 0.90  6E5X1016523", NULL);
    after(b.data, "Yamaha F40", NULL);
    after(b.data, "Gravelines, FR", NULL);
    after(b.data, "(2 characters differ)", NULL);
    tw_fmt_buf_free(&b);

    /* trace forward */
    Tidewatch__V1__TracedItem ti = TIDEWATCH__V1__TRACED_ITEM__INIT;
    ti.item = &f->item;
    ti.depth = 2;
    ti.n_hops = 2;
    ti.hops = &f->hops[3];
    Tidewatch__V1__TracedItem *tis[1] = {&ti};
    Tidewatch__V1__Hop bulk = TIDEWATCH__V1__HOP__INIT;
    bulk.kind = TIDEWATCH__V1__HOP_KIND__HOP_KIND_SALE;
    bulk.quantity = 10;
    bulk.from = &f->dealer;
    bulk.to = &f->bob;
    bulk.time = &f->t[0];
    Tidewatch__V1__Hop *bulks[1] = {&bulk};
    Tidewatch__V1__TraceResponse tr = TIDEWATCH__V1__TRACE_RESPONSE__INIT;
    tr.n_items = 1;
    tr.items = tis;
    tr.n_unidentified = 1;
    tr.unidentified = bulks;
    tr.truncated = 1;
    o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_trace_text(&o, &tr, 1), 0);
    const char *p = after(b.data, "Where the items went: 1 item", NULL);
    p = after(b.data, "2 handoffs from the start", p);
    p = after(b.data, "2026-03-11  shipped", p);
    p = after(b.data, "2026-03-15  seized", p);
    p = after(b.data, "Line items without serials (bulk):", p);
    p = after(b.data, "sold     10 x Bootshandel Nord #5", p);
    after(b.data, "truncated", p);
    tw_fmt_buf_free(&b);

    /* party */
    Tidewatch__V1__PartyIdentifier phone = TIDEWATCH__V1__PARTY_IDENTIFIER__INIT;
    phone.kind = TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE;
    phone.value = "+32470123456";
    Tidewatch__V1__PartyIdentifier *ids[1] = {&phone};
    Tidewatch__V1__PartyIdentity a = TIDEWATCH__V1__PARTY_IDENTITY__INIT, c = a;
    a.id = 9;
    a.name = "Jan Peeters";
    a.kind = "person";
    a.role = "buyer";
    a.event_id = 101;
    a.n_identifiers = 1;
    a.identifiers = ids;
    c.id = 10;
    c.name = "J. Peeters";
    c.event_id = 150;
    Tidewatch__V1__PartyIdentity *cl[2] = {&a, &c};
    Tidewatch__V1__ClusterLink l = TIDEWATCH__V1__CLUSTER_LINK__INIT;
    l.party_a = 9;
    l.party_b = 10;
    l.kind = "phone";
    l.value = "+32470123456";
    Tidewatch__V1__ClusterLink *ls[1] = {&l};
    char *common[1] = {"+33100000000"};
    Tidewatch__V1__GetPartyResponse pr = TIDEWATCH__V1__GET_PARTY_RESPONSE__INIT;
    pr.party = &a;
    pr.n_cluster = 2;
    pr.cluster = cl;
    pr.n_links = 1;
    pr.links = ls;
    pr.n_too_common = 1;
    pr.too_common = common;
    pr.n_hops = 1;
    pr.hops = &f->hops[0];
    o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_party_text(&o, &pr), 0);
    p = after(b.data, "Party #9 Jan Peeters (person), buyer in event 101", NULL);
    p = after(b.data, "phone +32470123456", p);
    p = after(b.data, "Cluster (2 identities):", p);
    p = after(b.data, "#10 J. Peeters in event 150", p);
    p = after(b.data, "#9 - #10: same phone +32470123456", p);
    p = after(b.data, "Too common to link anything:\n  +33100000000", p);
    after(b.data, "2026-03-02  sold", p);
    tw_fmt_buf_free(&b);

    /* events */
    Tidewatch__V1__EventSummary e = TIDEWATCH__V1__EVENT_SUMMARY__INIT;
    e.id = 101;
    e.kind = "purchase";
    e.source = "dealer-de";
    e.source_ref = "INV-1";
    e.occurred = &f->t[0];
    char *sk[1] = {"6E5X1016523"};
    e.n_serial_keys = 1;
    e.serial_keys = sk;
    Tidewatch__V1__EventSummary *es[1] = {&e};
    Tidewatch__V1__ListEventsResponse er = TIDEWATCH__V1__LIST_EVENTS_RESPONSE__INIT;
    er.n_events = 1;
    er.events = es;
    o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_events_text(&o, &er), 0);
    after(b.data, "101         2026-03-02  purchase    dealer-de/INV-1  serial 6E5X1016523", NULL);
    tw_fmt_buf_free(&b);
    free(f);
}

/* ---- JSON ---------------------------------------------------------------- */

static json_t *json_roundtrip(const ProtobufCMessage *m)
{
    json_t *j = tw_chainfmt_json(m);
    cr_assert_not_null(j);
    tw_fmt_buf b = {0};
    tw_fmt_out o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_write_json(&o, j), 0);
    json_decref(j);
    json_error_t err;
    json_t *back = json_loads(b.data, 0, &err);
    cr_assert_not_null(back, "JSON does not parse: %s at line %d:\n%s", err.text, err.line, b.data);
    tw_fmt_buf_free(&b);
    return back;
}

static const char *jstr(json_t *o, const char *path)
{
    /* "a.b.0.c": objects by key, arrays by index */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save))
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    cr_assert(json_is_string(cur), "%s is not a string", path);
    return json_string_value(cur);
}

static json_t *jget(json_t *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *cur = o;
    for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur;
         tok = strtok_r(NULL, ".", &save))
        cur = json_is_array(cur) ? json_array_get(cur, (size_t)atoi(tok)) : json_object_get(cur, tok);
    return cur;
}

Test(chainfmt, json_follows_protobuf_mapping_and_parses_back)
{
    fixture *f = make_fixture();
    json_t *j = json_roundtrip(&f->resp.base);
    cr_assert_str_eq(jstr(j, "normalized"), "6E5X1016523");
    cr_assert_eq(json_array_size(jget(j, "chains")), 1);
    cr_assert_eq(json_array_size(jget(j, "chains.0.hops")), 5);
    /* int64 as strings, enums by name, lowerCamelCase, RFC 3339 times */
    cr_assert_str_eq(jstr(j, "chains.0.item.id"), "17");
    cr_assert_str_eq(jstr(j, "chains.0.item.kind"), "ITEM_KIND_ENGINE");
    cr_assert_str_eq(jstr(j, "chains.0.item.firstSeen"), "2026-03-02T10:00:00Z");
    cr_assert_str_eq(jstr(j, "chains.0.hops.0.eventId"), "101");
    cr_assert_str_eq(jstr(j, "chains.0.hops.0.kind"), "HOP_KIND_SALE");
    cr_assert_str_eq(jstr(j, "chains.0.hops.0.time"), "2026-03-02T10:00:00Z");
    cr_assert_str_eq(jstr(j, "chains.0.hops.0.to.name"), "Bob \"the boat\" O'Neil");
    cr_assert_str_eq(jstr(j, "chains.0.hops.0.sources.1.grading.information"),
                     "INFORMATION_B_INDIRECTLY_CORROBORATED");
    cr_assert_str_eq(jstr(j, "chains.0.hops.2.status"), "HOP_STATUS_CORRECTED");
    cr_assert_str_eq(jstr(j, "chains.0.hops.2.correctedBy"), "130");
    cr_assert_str_eq(jstr(j, "chains.0.hops.1.status"), "HOP_STATUS_RETRACTED");
    cr_assert_str_eq(jstr(j, "chains.0.hops.4.time"), "2026-03-15T10:00:00.500Z");
    cr_assert(json_is_true(jget(j, "chains.0.hops.4.launch")));
    cr_assert_str_eq(jstr(j, "chains.0.facts.0.eventIds.1"), "140");
    cr_assert_str_eq(jstr(j, "chains.0.lastCustodian.name"), "Police aux Fronti\xc3\xa8res");
    cr_assert_str_eq(jstr(j, "chains.0.lastPlace.hubKind"), "coast");
    cr_assert(fabs(json_real_value(jget(j, "chains.0.lastPlace.lat")) - 50.98) < 1e-9);
    cr_assert_eq(json_real_value(jget(j, "chains.0.hops.0.place.coastHubKm")), 640.4, "exact");
    cr_assert(json_is_true(jget(j, "candidates.0.probable")));
    cr_assert(fabs(json_real_value(jget(j, "candidates.0.score")) - 0.86) < 1e-9);
    /* defaults are left out: an active hop has no "status", a place on a
     * coast hub 0 km away no "coastHubKm", a hop without quantity none */
    cr_assert_null(jget(j, "chains.0.hops.0.status"));
    cr_assert_null(jget(j, "chains.0.hops.0.quantity"));
    cr_assert_null(jget(j, "chains.0.lastPlace.coastHubKm"));
    cr_assert_null(jget(j, "chains.0.truncated"));
    cr_assert_null(jget(j, "chains.0.hops.0.corrected_by"), "no snake_case names");
    json_decref(j);

    /* an empty message is an empty object; NULL too */
    Tidewatch__V1__GetChainResponse e = TIDEWATCH__V1__GET_CHAIN_RESPONSE__INIT;
    j = json_roundtrip(&e.base);
    cr_assert(json_is_object(j));
    cr_assert_eq(json_object_size(j), 0);
    json_decref(j);
    j = tw_chainfmt_json(NULL);
    cr_assert(json_is_object(j) && json_object_size(j) == 0);
    json_decref(j);
    free(f);
}

Test(chainfmt, json_edge_values)
{
    Tidewatch__V1__HopPlace pl = TIDEWATCH__V1__HOP_PLACE__INIT;
    pl.lat = NAN;
    pl.lon = -INFINITY;
    pl.name = "a\x01\"b";
    Tidewatch__V1__Hop h = TIDEWATCH__V1__HOP__INIT;
    h.kind = (Tidewatch__V1__HopKind)42; /* unknown enum value: its number */
    h.event_id = -9007199254740993LL;    /* not exact in a double */
    h.place = &pl;
    json_t *j = json_roundtrip(&h.base);
    cr_assert_eq(json_integer_value(jget(j, "kind")), 42);
    cr_assert_str_eq(jstr(j, "eventId"), "-9007199254740993");
    cr_assert_str_eq(jstr(j, "place.lat"), "NaN");
    cr_assert_str_eq(jstr(j, "place.lon"), "-Infinity");
    cr_assert_str_eq(jstr(j, "place.name"), "a\x01\"b");
    json_decref(j);
    /* bytes that are not UTF-8 become U+FFFD instead of failing the document */
    pl.name = "Mu\xffnster \xed\xa0\x80";
    j = json_roundtrip(&h.base);
    cr_assert_str_eq(jstr(j, "place.name"), "Mu\xef\xbf\xbdnster \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    json_decref(j);
    /* ... and '?' in text */
    tw_fmt_buf b = {0};
    tw_fmt_out o = tw_fmt_to_buf(&b);
    pl.has_coordinates = 1;
    cr_assert_eq(tw_chainfmt_hop_line(&o, &h), 0);
    cr_assert_not_null(strstr(b.data, "at Mu?nster ???"), "%s", b.data);
    tw_fmt_buf_free(&b);
    /* non-finite coordinates stay off the map */
    Tidewatch__V1__Hop *hs[1] = {&h};
    Tidewatch__V1__Chain c = TIDEWATCH__V1__CHAIN__INIT;
    c.n_hops = 1;
    c.hops = hs;
    Tidewatch__V1__Chain *cs[1] = {&c};
    Tidewatch__V1__GetChainResponse r = TIDEWATCH__V1__GET_CHAIN_RESPONSE__INIT;
    r.n_chains = 1;
    r.chains = cs;
    json_t *g = tw_chainfmt_chain_geojson(&r);
    cr_assert_not_null(g);
    cr_assert_eq(json_array_size(json_object_get(g, "features")), 0);
    json_decref(g);
}

/* ---- DOT ----------------------------------------------------------------- */

/* Structural check of a DOT text: it is a digraph, every quoted string ends
 * (escapes honoured), braces balance outside quoted strings and never go
 * negative, and no raw newline sits inside a quoted string. */
static void dot_well_formed(const char *d)
{
    cr_assert(strncmp(d, "digraph ", 8) == 0, "%s", d);
    int depth = 0, in_str = 0, max_depth = 0;
    for (const char *p = d; *p; p++) {
        if (in_str) {
            cr_assert_neq(*p, '\n', "raw newline inside a quoted string");
            if (*p == '\\') {
                cr_assert(p[1] != '\0');
                p++;
            } else if (*p == '"') {
                in_str = 0;
            }
            continue;
        }
        if (*p == '"')
            in_str = 1;
        else if (*p == '{')
            depth++;
        else if (*p == '}')
            depth--;
        cr_assert_geq(depth, 0, "unbalanced }");
        if (depth > max_depth)
            max_depth = depth;
    }
    cr_assert_eq(in_str, 0, "unterminated string");
    cr_assert_eq(depth, 0, "unbalanced {");
    cr_assert_geq(max_depth, 1);
}

/* Graphviz itself, when installed (CI does not install it yet; the
 * structural check above always runs). */
static void dot_accepted_by_graphviz(const char *d)
{
    if (access("/usr/bin/dot", X_OK) != 0) {
        cr_log_warn("graphviz not installed: DOT checked structurally only");
        return;
    }
    char path[] = "/tmp/tw_chainfmt_XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *fp = fdopen(fd, "w");
    cr_assert_not_null(fp);
    fputs(d, fp);
    fclose(fp);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/dot -Tsvg %s -o /dev/null", path);
    int rc = system(cmd);
    unlink(path);
    cr_assert_eq(rc, 0, "dot -Tsvg refused:\n%s", d);
}

static char *render_dot(const Tidewatch__V1__GetChainResponse *r)
{
    tw_fmt_buf b = {0};
    tw_fmt_out o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_chain_dot(&o, r), 0);
    return b.data;
}

Test(chainfmt, dot_is_well_formed_with_escaped_labels)
{
    fixture *f = make_fixture();
    f->hops[1]->from = &f->other; /* a name with a backslash and a newline */
    char *d = render_dot(&f->resp);
    dot_well_formed(d);
    dot_accepted_by_graphviz(d);
    cr_assert_not_null(strstr(d, "label=\"Bob \\\"the boat\\\" O'Neil\\nperson, GB\""), "%s", d);
    cr_assert_not_null(strstr(d, "Back\\\\slash Newline"), "%s", d);
    /* hops are edges between parties, with dates */
    cr_assert_not_null(strstr(d, "\"c0_party_5\" -> \"c0_party_7\" [label=\"2026-03-02 sold"), "%s", d);
    cr_assert_not_null(strstr(d, "\"c0_party_7\" -> \"c0_party_9\" [label=\"2026-03-11 shipped\\nby "
                                 "Transports Lefort"),
                       "%s", d);
    /* the seizure names no "from": it is drawn from the last active receiver
     * (hop 3 is retracted, so hop 2's consignee) */
    cr_assert_not_null(strstr(d, "\"c0_party_9\" -> \"c0_party_20\" [label=\"2026-03-15 seized"), "%s",
                       d);
    cr_assert_null(strstr(d, "c0_hop4_from"), "%s", d);
    cr_assert_not_null(strstr(d, "(CORRECTED)\", style=dashed"), "%s", d);
    cr_assert_not_null(strstr(d, "(RETRACTED)\", style=dashed"), "%s", d);
    cr_assert_not_null(strstr(d, "[shape=note, label=\"[!]  custody gap"), "%s", d);
    /* each party is declared once, however many hops it is on */
    const char *decl = "\"c0_party_7\" [shape=box";
    const char *first = strstr(d, decl);
    cr_assert_not_null(first, "%s", d);
    cr_assert_null(strstr(first + 1, decl), "declared twice:\n%s", d);
    free(d);
    free(f);
}

Test(chainfmt, dot_one_node_per_cluster_and_a_first_seizure_from_its_place)
{
    fixture *f = make_fixture();
    /* hop 2's shipper is another record's mention of the buyer of hop 0:
     * with a cluster from the server, one node */
    Tidewatch__V1__PartyRef again = *f->hops[0]->to;
    again.id = 77;
    again.cluster = f->hops[0]->to->id;
    f->hops[0]->to->cluster = f->hops[0]->to->id;
    f->hops[2]->from = &again;
    char *d = render_dot(&f->resp);
    dot_well_formed(d);
    dot_accepted_by_graphviz(d);
    cr_assert_null(strstr(d, "c0_party_77"), "the second mention is not a node of its own:\n%s", d);
    free(d);
    /* a chain that starts with a seizure: its place stands in */
    Tidewatch__V1__Hop *only[1] = {f->hops[4]};
    f->chain.hops = only;
    f->chain.n_hops = 1;
    d = render_dot(&f->resp);
    dot_well_formed(d);
    dot_accepted_by_graphviz(d);
    cr_assert_not_null(strstr(d, "\"c0_hop0_from\" [shape=ellipse, style=dashed, label=\"Gravelines"),
                       "%s", d);
    free(d);
    free(f);
}

Test(chainfmt, dot_empty_and_several_chains)
{
    Tidewatch__V1__GetChainResponse e = TIDEWATCH__V1__GET_CHAIN_RESPONSE__INIT;
    char *d = render_dot(&e);
    dot_well_formed(d);
    dot_accepted_by_graphviz(d);
    cr_assert_not_null(strstr(d, "no chain"));
    free(d);
    fixture *f = make_fixture();
    Tidewatch__V1__Chain *two[2] = {&f->chain, &f->chain};
    f->resp.n_chains = 2;
    f->resp.chains = two;
    d = render_dot(&f->resp);
    dot_well_formed(d);
    dot_accepted_by_graphviz(d);
    cr_assert_not_null(strstr(d, "subgraph \"cluster_0\""));
    cr_assert_not_null(strstr(d, "subgraph \"cluster_1\""));
    cr_assert_not_null(strstr(d, "\"c1_party_5\" -> \"c1_party_7\""));
    free(d);
    free(f);
}

/* ---- GeoJSON ------------------------------------------------------------- */

static json_t *geo(const Tidewatch__V1__GetChainResponse *r)
{
    json_t *g = tw_chainfmt_chain_geojson(r);
    cr_assert_not_null(g);
    tw_fmt_buf b = {0};
    tw_fmt_out o = tw_fmt_to_buf(&b);
    cr_assert_eq(tw_chainfmt_write_json(&o, g), 0);
    json_decref(g);
    json_t *back = json_loads(b.data, 0, NULL);
    cr_assert_not_null(back, "%s", b.data);
    tw_fmt_buf_free(&b);
    cr_assert_str_eq(jstr(back, "type"), "FeatureCollection");
    return back;
}

static void assert_lonlat(json_t *pt, double lon, double lat)
{
    cr_assert(json_is_array(pt) && json_array_size(pt) == 2);
    cr_assert(fabs(json_real_value(json_array_get(pt, 0)) - lon) < 1e-9, "lon first");
    cr_assert(fabs(json_real_value(json_array_get(pt, 1)) - lat) < 1e-9, "lat second");
}

Test(chainfmt, geojson_route_in_time_order_with_lon_lat)
{
    fixture *f = make_fixture();
    /* hand the hops over out of order: the route still follows time */
    Tidewatch__V1__Hop *scrambled[5] = {f->hops[4], f->hops[2], f->hops[0], f->hops[3], f->hops[1]};
    f->chain.hops = scrambled;
    json_t *g = geo(&f->resp);
    json_t *feats = jget(g, "features");
    /* the route, then one point per hop with coordinates (all 5 here) */
    cr_assert_eq(json_array_size(feats), 6);
    cr_assert_str_eq(jstr(g, "features.0.geometry.type"), "LineString");
    cr_assert_str_eq(jstr(g, "features.0.properties.kind"), "route");
    json_t *line = jget(g, "features.0.geometry.coordinates");
    /* active hops only: Hamburg (sale), Hamburg (shipment origin: not
     * repeated), Roubaix, Gravelines; the corrected Lille and the
     * retracted Bremen stay off the route */
    cr_assert_eq(json_array_size(line), 3);
    assert_lonlat(json_array_get(line, 0), 9.99, 53.55);
    assert_lonlat(json_array_get(line, 1), 3.17, 50.69);
    assert_lonlat(json_array_get(line, 2), 2.12, 50.98);
    /* points in time order, with date, kind and parties */
    const char *dates[5] = {"2026-03-02", "2026-03-05", "2026-03-10", "2026-03-11", "2026-03-15"};
    for (size_t i = 0; i < 5; i++) {
        json_t *ft = json_array_get(feats, i + 1);
        cr_assert_str_eq(jstr(ft, "geometry.type"), "Point");
        cr_assert_str_eq(jstr(ft, "properties.date"), dates[i]);
    }
    cr_assert_str_eq(jstr(g, "features.1.properties.kind"), "sale");
    cr_assert_str_eq(jstr(g, "features.1.properties.from"), "Bootshandel Nord");
    cr_assert_str_eq(jstr(g, "features.1.properties.to"), "Bob \"the boat\" O'Neil");
    assert_lonlat(jget(g, "features.1.geometry.coordinates"), 9.99, 53.55);
    cr_assert_str_eq(jstr(g, "features.2.properties.status"), "retracted");
    cr_assert_str_eq(jstr(g, "features.3.properties.status"), "corrected");
    cr_assert_str_eq(jstr(g, "features.5.properties.kind"), "seizure");
    cr_assert(json_is_null(jget(g, "features.5.properties.from")));
    cr_assert_str_eq(jstr(g, "features.5.properties.time"), "2026-03-15T10:00:00.500Z");
    json_decref(g);
    free(f);
}

Test(chainfmt, geojson_empty_and_placeless)
{
    Tidewatch__V1__GetChainResponse e = TIDEWATCH__V1__GET_CHAIN_RESPONSE__INIT;
    json_t *g = geo(&e);
    cr_assert_eq(json_array_size(jget(g, "features")), 0);
    json_decref(g);
    g = geo(NULL);
    cr_assert_eq(json_array_size(jget(g, "features")), 0);
    json_decref(g);
    /* hops without coordinates: no route, no points, no failure */
    fixture *f = make_fixture();
    for (int i = 0; i < 5; i++) {
        f->hops[i]->place = NULL;
        f->hops[i]->origin = NULL;
    }
    f->hamburg.has_coordinates = 0;
    g = geo(&f->resp);
    cr_assert_eq(json_array_size(jget(g, "features")), 0);
    json_decref(g);
    char *t = render_text(&f->resp);
    after(t, "2026-03-02  sold     Bootshandel Nord #5 -> Bob \"the boat\" O'Neil #7, at place unknown", NULL);
    free(t);
    char *d = render_dot(&f->resp);
    dot_well_formed(d);
    cr_assert_not_null(strstr(d, "\"c0_party_9\" -> \"c0_party_20\""), "%s", d);
    free(d);
    /* a first hop with neither party nor place: an "unknown" stand-in */
    Tidewatch__V1__Hop *only[1] = {f->hops[4]};
    f->chain.hops = only;
    f->chain.n_hops = 1;
    d = render_dot(&f->resp);
    dot_well_formed(d);
    cr_assert_not_null(strstr(d, "label=\"unknown\""), "%s", d);
    free(d);
    free(f);
}

/* ---- any decodable answer renders ----------------------------------------- */

/* The CLI renders whatever a server sends. Mutate the packed fixture (byte
 * flips, truncations, deterministic), and render every answer protobuf-c
 * accepts in every format: nothing may crash or read out of bounds (the
 * ASan pass runs this too), and JSON and GeoJSON must stay parseable. */
Test(chainfmt, mutated_answers_render_in_every_format)
{
    fixture *f = make_fixture();
    size_t n = tidewatch__v1__get_chain_response__get_packed_size(&f->resp);
    uint8_t *orig = malloc(n), *buf = malloc(n);
    cr_assert(orig && buf);
    tidewatch__v1__get_chain_response__pack(&f->resp, orig);
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    unsigned decoded = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(buf, orig, n);
        size_t len = n;
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[x % n] ^= (uint8_t)(x >> 32);
        }
        if (iter % 5 == 0)
            len = (size_t)(x >> 40) % n;
        Tidewatch__V1__GetChainResponse *r = tidewatch__v1__get_chain_response__unpack(NULL, len, buf);
        if (!r)
            continue;
        decoded++;
        tw_fmt_buf b = {0};
        tw_fmt_out o = tw_fmt_to_buf(&b);
        cr_assert_eq(tw_chainfmt_chain_text(&o, r), 0);
        cr_assert_eq(tw_chainfmt_chain_dot(&o, r), 0);
        tw_fmt_buf_free(&b);
        json_t *j = tw_chainfmt_json(&r->base), *g = tw_chainfmt_chain_geojson(r);
        cr_assert(j && g);
        char *s1 = json_dumps(j, 0), *s2 = json_dumps(g, 0);
        cr_assert(s1 && s2);
        json_t *b1 = json_loads(s1, 0, NULL), *b2 = json_loads(s2, 0, NULL);
        cr_assert(b1 && b2, "%s\n%s", s1, s2);
        json_decref(b1);
        json_decref(b2);
        free(s1);
        free(s2);
        json_decref(j);
        json_decref(g);
        tidewatch__v1__get_chain_response__free_unpacked(r, NULL);
    }
    cr_log_info("%u of 3000 mutated answers decoded and rendered", decoded);
    cr_assert_gt(decoded, 100);
    free(orig);
    free(buf);
    free(f);
}
