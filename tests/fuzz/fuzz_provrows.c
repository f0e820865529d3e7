/* Fuzz target for tw_provrows: one event of the log decoded into
 * provenance rows and encoded as the jsonb document prov_apply() reads.
 *
 * Input layout: byte 0 picks the event kind (1 + byte % 4); bytes 1-2 (big
 * endian) are the payload's length, capped at what follows; the payload (a
 * packed tidewatch.v1.Record) comes next and the rest is the derived bytes
 * (a packed tidewatch.v1.DerivedRecord). Decoding runs in an arena with a
 * 1 MiB limit and a small hub table, so coast hubs are computed too.
 *
 * Invariants on every input:
 *   - decoding either refuses (-1 with a reason) or gives rows whose
 *     strings are all non-NULL, at most TW_PROVROWS_MAX_LINES lines, every
 *     quantity >= 1, party ids event * 1024 + role, key kinds 1 or 2;
 *   - the jsonb document, when it can be made (NULL only for strings that
 *     are not UTF-8), parses back as JSON with as many lines as decoded;
 *   - decoding twice gives the same document (a replay gives the same rows). */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_arena.h"
#include "tw_places.h"
#include "tw_provrows.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static const char HUBS[] = "name,aliases,country,locode,lat,lon,kind\n"
                           "Calais,,FR,FRCQF,50.95194,1.85635,coast\n"
                           "Lille,,FR,FRLLE,50.63297,3.05858,inland\n";
static const char GAZ[] = "country,name,lat,lon,admin1\n";

static char *decode(const tw_provrows_input *in, const tw_places *places, size_t *nlines)
{
    tw_arena a;
    tw_arena_init(&a, 0);
    tw_arena_set_limit(&a, 1 << 20);
    tw_prov_event e;
    char err[256];
    char *js = NULL;
    tw_provrows_input x = *in;
    x.places = places;
    if (tw_provrows_decode(&x, &a, &e, err, sizeof err) != 0) {
        CHECK(err[0] != '\0');
        *nlines = (size_t)-1;
        goto out;
    }
    CHECK(e.nlines <= TW_PROVROWS_MAX_LINES);
    CHECK(e.source && e.source_ref && e.invoice_ref && e.consignment_ref && e.vehicle &&
          e.case_ref && e.corrects_source && e.corrects_ref);
    CHECK(e.place.name && e.place.country && e.place.coast_hub && e.origin.name);
    for (size_t i = 0; i < e.nlines; i++) {
        const tw_prov_line *l = &e.lines[i];
        CHECK(l->quantity >= 1);
        CHECK(l->line_field && l->currency);
        CHECK(l->line == (int)i);
        if (!l->equipment)
            continue;
        CHECK(l->equipment->maker && l->equipment->model && l->equipment->field);
        for (size_t j = 0; j < l->equipment->nreadings; j++) {
            const tw_prov_reading *r = &l->equipment->readings[j];
            CHECK(r->key_kind == 1 || r->key_kind == 2);
            CHECK(r->field && r->key && r->loose && r->raw && r->format && r->maker);
        }
    }
    for (size_t i = 0; i < e.nparties; i++) {
        const tw_prov_party *p = &e.parties[i];
        CHECK(p->party_id == e.event_id * TW_PROVROWS_ID_STRIDE + p->role);
        CHECK(p->name && p->name_key && p->country && p->address && p->address_key && p->place);
        for (size_t j = 0; j < p->nidents; j++)
            CHECK(p->idents[j].kind && p->idents[j].value && p->idents[j].value[0]);
    }
    size_t len = 0;
    js = tw_provrows_json(&e, 99, &len);
    *nlines = e.nlines;
    if (js) {
        CHECK(strlen(js) == len);
        json_error_t je;
        json_t *o = json_loads(js, 0, &je);
        CHECK(o != NULL);
        CHECK(json_array_size(json_object_get(o, "lines")) == e.nlines);
        json_decref(o);
    }
out:
    tw_arena_free(&a);
    return js;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tw_places *places;
    if (!places) {
        char err[256];
        places = tw_places_load_mem(HUBS, sizeof HUBS - 1, GAZ, sizeof GAZ - 1, NULL, 0, NULL, 0,
                                    err, sizeof err);
        CHECK(places != NULL);
    }
    if (size < 3)
        return 0;
    size_t plen = (size_t)data[1] << 8 | data[2];
    if (plen > size - 3)
        plen = size - 3;
    tw_provrows_input in = {.event_id = 1 + data[0], .kind = 1 + data[0] % 4, .source = "src",
                            .source_ref = "ref", .received_us = 1790000000000000LL,
                            .payload = data + 3, .payload_len = plen,
                            .derived = data + 3 + plen, .derived_len = size - 3 - plen};
    size_t n1 = 0, n2 = 0;
    char *a = decode(&in, places, &n1);
    char *b = decode(&in, places, &n2);
    CHECK(n1 == n2);
    CHECK((a == NULL) == (b == NULL));
    if (a)
        CHECK(strcmp(a, b) == 0);
    free(a);
    free(b);
    return 0;
}
