/* Fuzz target for tw_places.
 *
 * Byte 0 chooses the mode (mod 5); the rest is the payload.
 *   0  payload is the hub table CSV (with a fixed small gazetteer)
 *   1  payload is the gazetteer CSV (with fixed hubs)
 *   2  payload is the alias CSV (with fixed hubs and gazetteer)
 *   3  payload is a query "name|country|locode|admin1|lat|lon" against the
 *      fixed tables (the admin1 field is tried again as a region), and the
 *      name alone goes through tw_place_key.
 *   4  payload is the region CSV (with fixed hubs and gazetteer)
 * Whatever loads must resolve its own hubs by locode and by name; every
 * result must be self-consistent; keys must be well-formed, idempotent and
 * the same on the ASCII fast path and the general path. Payload lines are
 * also tried as names in every mode. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#include "tw_places.h"

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
                           "Dunkerque,Dunkirk|Duinkerke,FR,FRDKK,51.03440,2.37681,coast\n"
                           "Osnabrück,Osnabrueck,DE,DEOSN,52.27264,8.04980,transit\n"
                           "Essen,,DE,DEESS,51.45657,7.01228,transit\n"
                           "Dover,,GB,GBDVR,51.12598,1.31257,uk_landing\n";
static const char GAZ[] = "country,name,lat,lon,admin1\n"
                          "FR,Calais,50.95194,1.85635,32\n"
                          "FR,Dunkirk,51.03440,2.37681,32\n"
                          "FR,Saint-Omer,50.74834,2.26091,32\n"
                          "BE,Lille,51.24197,4.82313,VLG\n"
                          "FR,Lille,50.63391,3.05512,32\n"
                          "DE,Essen,52.7228,7.93721,06\n"
                          "DE,Essen,51.45657,7.01228,07\n"
                          "DE,Köln,50.93333,6.95,07\n"
                          "ES,Arzúa,42.9281,-8.1641,58\n"
                          "ES,Arzúa,42.93333,-8.15,58\n"
                          "TR,Istanbul,41.01384,28.94966,34\n";
static const char ALIASES[] = "name,alias,country\nKöln,Cologne,DE\nLille,Rijsel,FR\n";
static const char REGIONS[] = "country,admin1,iso_3166_2,names\n"
                              "DE,06,DE-NI,Niedersachsen|Lower Saxony\n"
                              "DE,07,DE-NW,Nordrhein-Westfalen|North Rhine-Westphalia\n"
                              "FR,32,FR-HDF,Hauts-de-France\n"
                              "BE,VLG,BE-VLG,Vlaanderen|Flanders\n";

static void check_key_shape(const char *k, int n)
{
    CHECK(n >= 0 && (size_t)n == strlen(k));
    CHECK(u8_check((const uint8_t *)k, (size_t)n) == NULL);
    if (n == 0)
        return;
    CHECK(k[0] != ' ' && k[n - 1] != ' ');
    CHECK(!strstr(k, "  "));
    for (int i = 0; i < n; i++)
        CHECK(!(k[i] >= 'A' && k[i] <= 'Z'));
    /* Abbreviations are always expanded. */
    CHECK(strcmp(k, "st") != 0 && strncmp(k, "st ", 3) != 0 && !strstr(k, " st ") &&
          (n < 3 || strcmp(k + n - 3, " st") != 0));
}

static void fuzz_key(const char *s, size_t len)
{
    char k[TW_PLACE_KEY_MAX], slow[TW_PLACE_KEY_MAX], again[TW_PLACE_KEY_MAX];
    char alt[TW_PLACE_KEY_MAX];
    int n = tw_place_key(s, len, 0, k, sizeof k);
    int ns = tw_place_key(s, len, TW_PLACE_KEY_NO_FAST, slow, sizeof slow);
    CHECK(n == ns);
    if (n < 0) {
        CHECK(k[0] == '\0');
        return;
    }
    CHECK(strcmp(k, slow) == 0);
    check_key_shape(k, n);
    if (n <= TW_PLACE_NAME_MAX) {
        int m = tw_place_key(k, (size_t)n, 0, again, sizeof again);
        CHECK(m == n && strcmp(again, k) == 0);
    }
    int na = tw_place_key(s, len, TW_PLACE_KEY_UMLAUT_E, alt, sizeof alt);
    if (na >= 0) {
        check_key_shape(alt, na);
        CHECK(na >= n);
    }
    /* A tiny output buffer fails cleanly. */
    char tiny[4];
    int nt = tw_place_key(s, len, 0, tiny, sizeof tiny);
    CHECK(nt == -1 ? tiny[0] == '\0' : (nt == n && strcmp(tiny, k) == 0));
}

static void check_result(const tw_places *p, const tw_place_query *q, const tw_place_result *r,
                         tw_place_status st)
{
    CHECK(st == r->status);
    CHECK(st == TW_PLACE_RESOLVED || st == TW_PLACE_UNRESOLVED || st == TW_PLACE_INVALID);
    CHECK(r->resolved == (st == TW_PLACE_RESOLVED));
    CHECK(r->nwarnings <= TW_PLACE_MAX_WARNINGS);
    for (size_t i = 0; i < r->nwarnings; i++) {
        CHECK(strlen(r->warnings[i].text) < sizeof r->warnings[i].text);
        CHECK(strcmp(tw_place_warn_name(r->warnings[i].code), "unknown") != 0);
    }
    CHECK(strlen(r->country) == 0 || strlen(r->country) == 2);
    CHECK(strlen(r->locode) == 0 || strlen(r->locode) == 5);
    if (st != TW_PLACE_RESOLVED) {
        CHECK(r->source == TW_PLACE_SRC_NONE && r->hub == -1 && !r->name);
        CHECK(r->nwarnings > 0); /* never silently unresolved */
        return;
    }
    CHECK(isfinite(r->lat) && isfinite(r->lon) && fabs(r->lat) <= 90 && fabs(r->lon) <= 180);
    CHECK(r->source != TW_PLACE_SRC_NONE);
    if (r->source == TW_PLACE_SRC_COORDS) {
        CHECK(q->has_coords && r->lat == q->lat && r->lon == q->lon && !r->name);
    } else {
        CHECK(r->name && strlen(r->country) == 2);
    }
    if (r->hub >= 0) {
        const tw_hub *h = tw_places_hub(p, (size_t)r->hub);
        CHECK(h && h->lat == r->lat && h->lon == r->lon && strcmp(h->name, r->name) == 0);
    }
    if (tw_places_hub_count(p)) {
        CHECK(r->nearest_hub >= 0 && r->nearest_hub_km >= 0);
        double km;
        CHECK(tw_places_nearest_hub(p, r->lat, r->lon, TW_HUB_ANY, &km) == r->nearest_hub);
        CHECK(km == r->nearest_hub_km);
    } else {
        CHECK(r->nearest_hub == -1);
    }
}

static void query(const tw_places *p, const tw_place_query *q)
{
    tw_place_result r;
    tw_place_status st = tw_place_resolve(p, q, &r);
    check_result(p, q, &r, st);
}

/* Resolve every hub by its locode and by name + country. */
static void self_check(const tw_places *p)
{
    for (size_t i = 0; i < tw_places_hub_count(p); i++) {
        const tw_hub *h = tw_places_hub(p, i);
        CHECK(h && h->name && h->aliases);
        tw_place_result r;
        if (h->locode[0]) {
            tw_place_query q = {.locode = h->locode};
            CHECK(tw_place_resolve(p, &q, &r) == TW_PLACE_RESOLVED);
            CHECK(r.hub == (int)i && r.source == TW_PLACE_SRC_LOCODE);
        }
        tw_place_query q = {.name = h->name, .country = h->country};
        CHECK(tw_place_resolve(p, &q, &r) == TW_PLACE_RESOLVED);
        CHECK(r.hub == (int)i && r.source == TW_PLACE_SRC_HUB);
        check_result(p, &q, &r, r.status);
        q.country = NULL;
        query(p, &q);
        double km = -1;
        CHECK(tw_places_nearest_hub(p, h->lat, h->lon, h->kind, &km) >= 0 && km == 0);
    }
}

/* Try each line of the payload (up to 32) as a name. */
static void names_from_lines(const tw_places *p, const char *s, size_t len)
{
    size_t done = 0;
    while (len && done < 32) {
        const char *nl = memchr(s, '\n', len);
        size_t n = nl ? (size_t)(nl - s) : len;
        char name[TW_PLACE_NAME_MAX + 1];
        if (n <= TW_PLACE_NAME_MAX && !memchr(s, '\0', n)) {
            memcpy(name, s, n);
            name[n] = '\0';
            tw_place_query q = {.name = name};
            query(p, &q);
            q.country = "DE";
            query(p, &q);
        }
        done++;
        if (!nl)
            break;
        len -= n + 1;
        s = nl + 1;
    }
}

/* Split "a|b|c" into at most 6 NUL-terminated fields in buf. */
static size_t split(char *buf, char **f)
{
    size_t n = 0;
    f[n++] = buf;
    for (char *c = buf; *c && n < 6; c++)
        if (*c == '|') {
            *c = '\0';
            f[n++] = c + 1;
        }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16384)
        return 0;
    int mode = data[0] % 5;
    const char *pl = (const char *)data + 1;
    size_t plen = size - 1;
    char err[256];
    tw_places *p = NULL;
    switch (mode) {
    case 0:
        p = tw_places_load_mem(pl, plen, GAZ, strlen(GAZ), ALIASES, strlen(ALIASES), REGIONS,
                               strlen(REGIONS), err, sizeof err);
        break;
    case 1:
        p = tw_places_load_mem(HUBS, strlen(HUBS), pl, plen, NULL, 0, NULL, 0, err, sizeof err);
        break;
    case 2:
        p = tw_places_load_mem(HUBS, strlen(HUBS), GAZ, strlen(GAZ), pl, plen, NULL, 0, err,
                               sizeof err);
        break;
    case 4:
        p = tw_places_load_mem(HUBS, strlen(HUBS), GAZ, strlen(GAZ), NULL, 0, pl, plen, err,
                               sizeof err);
        break;
    default:
        p = tw_places_load_mem(HUBS, strlen(HUBS), GAZ, strlen(GAZ), ALIASES, strlen(ALIASES),
                               REGIONS, strlen(REGIONS), err, sizeof err);
        CHECK(p != NULL);
        break;
    }
    if (!p) {
        CHECK(strlen(err) > 0 && strlen(err) < sizeof err);
        return 0;
    }
    self_check(p);
    if (mode != 3) {
        names_from_lines(p, pl, plen);
    } else if (plen <= 1024) {
        char buf[1025];
        memcpy(buf, pl, plen);
        buf[plen] = '\0';
        char *f[6] = {0};
        size_t n = split(buf, f);
        fuzz_key(pl, plen);
        fuzz_key(f[0], strlen(f[0]));
        tw_place_query q = {.name = f[0]};
        if (n > 1)
            q.country = f[1];
        if (n > 2)
            q.locode = f[2];
        if (n > 3)
            q.admin1 = f[3];
        query(p, &q);
        if (n > 3) { /* the same field as a region */
            q.admin1 = NULL;
            q.region = f[3];
            query(p, &q);
        }
        if (n > 5) {
            q.has_coords = true;
            q.lat = strtod(f[4], NULL);
            q.lon = strtod(f[5], NULL);
            query(p, &q);
        }
    }
    tw_places_free(p);
    return 0;
}
