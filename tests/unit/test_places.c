#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "tw_places.h"

/* ---- helpers ------------------------------------------------------------ */

/* The shipped data, loaded once per test that needs it (about 0.1 s). */
static tw_places *real(void)
{
    const char *src = getenv("TW_SOURCE_DIR");
    cr_assert(src && *src, "TW_SOURCE_DIR is not set: run this test through ctest, or export "
                           "TW_SOURCE_DIR=/path/to/the/repository");
    char hubs[4096], gaz[4096], err[256] = "";
    snprintf(hubs, sizeof hubs, "%s/deploy/data/channel-hubs.csv", src);
    snprintf(gaz, sizeof gaz, "%s/deploy/data/gazetteer.csv", src);
    tw_places *p = tw_places_load(hubs, gaz, err, sizeof err);
    cr_assert(p, "loading the shipped data failed: %s", err);
    return p;
}

static tw_place_status resolve(const tw_places *p, tw_place_result *r, const char *name,
                               const char *country, const char *admin1)
{
    tw_place_query q = {.name = name, .country = country, .admin1 = admin1};
    tw_place_status st = tw_place_resolve(p, &q, r);
    cr_assert_eq(st, r->status, "returned status and out->status agree");
    cr_assert_eq(r->resolved, st == TW_PLACE_RESOLVED);
    return st;
}

static bool has_warning(const tw_place_result *r, tw_place_warn_code code, const char *substr)
{
    for (size_t i = 0; i < r->nwarnings; i++)
        if (r->warnings[i].code == code && (!substr || strstr(r->warnings[i].text, substr)))
            return true;
    return false;
}

static void expect_hub(const tw_places *p, const char *name, const char *country,
                       const char *want_hub, const char *want_locode)
{
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, name, country, NULL), TW_PLACE_RESOLVED, "'%s' (%s) resolves: %s",
                 name, country ? country : "-", r.nwarnings ? r.warnings[0].text : "");
    cr_assert_eq(r.source, TW_PLACE_SRC_HUB, "'%s' resolves through the hub table", name);
    cr_assert_str_eq(r.name, want_hub, "'%s' is hub %s", name, want_hub);
    cr_assert_str_eq(r.locode, want_locode);
    cr_assert_geq(r.hub, 0);
    cr_assert_str_eq(tw_places_hub(p, (size_t)r.hub)->name, want_hub);
    cr_assert_eq(r.nwarnings, 0, "no warning for '%s': %s", name,
                 r.nwarnings ? r.warnings[0].text : "");
}

static void expect_key(const char *in, const char *want)
{
    char key[TW_PLACE_KEY_MAX];
    int n = tw_place_key(in, strlen(in), 0, key, sizeof key);
    cr_assert_geq(n, 0, "key of \"%s\" computed", in);
    cr_assert_str_eq(key, want, "key of \"%s\"", in);
    cr_assert_eq((size_t)n, strlen(want));
    /* The general path gives the same key as the ASCII fast path. */
    char slow[TW_PLACE_KEY_MAX];
    cr_assert_eq(tw_place_key(in, strlen(in), TW_PLACE_KEY_NO_FAST, slow, sizeof slow), n);
    cr_assert_str_eq(slow, key, "fast and slow keys of \"%s\"", in);
}

/* A tiny data set for loader and resolver tests. */
static const char HUBS[] = "name,aliases,country,locode,lat,lon,kind\n"
                           "Calais,,FR,FRCQF,50.95194,1.85635,coast\n"
                           "Dunkerque,Dunkirk|Duinkerke,FR,FRDKK,51.03440,2.37681,coast\n"
                           "Dover,,GB,GBDVR,51.12598,1.31257,uk_landing\n";
static const char GAZ[] = "country,name,lat,lon,admin1\n"
                          "FR,Calais,50.95194,1.85635,32\n"
                          "FR,Dunkirk,51.03440,2.37681,32\n"
                          "DE,Essen,52.7228,7.93721,06\n"
                          "DE,Essen,51.45657,7.01228,07\n"
                          "DE,Köln,50.93333,6.95,07\n"
                          "ES,Arzúa,42.9281,-8.1641,58\n"
                          "ES,Arzúa,42.93333,-8.15,58\n";
static const char ALIASES[] = "name,alias,country\nKöln,Cologne,DE\n";

static tw_places *small(void)
{
    char err[256] = "";
    tw_places *p = tw_places_load_mem(HUBS, strlen(HUBS), GAZ, strlen(GAZ), ALIASES,
                                      strlen(ALIASES), NULL, 0, err, sizeof err);
    cr_assert(p, "small data set loads: %s", err);
    return p;
}

/* Expect the load to fail with a message containing `want`. */
static void expect_load_error(const char *hubs, const char *gaz, const char *aliases,
                              const char *want)
{
    char err[256] = "";
    tw_places *p = tw_places_load_mem(hubs, strlen(hubs), gaz, strlen(gaz), aliases,
                                      aliases ? strlen(aliases) : 0, NULL, 0, err, sizeof err);
    if (p)
        tw_places_free(p);
    cr_assert_null(p, "load should fail with \"%s\"", want);
    cr_assert(strstr(err, want), "error \"%s\" mentions \"%s\"", err, want);
}

/* ---- keys ------------------------------------------------------------------ */

Test(places, key_folds_case_diacritics_and_punctuation)
{
    expect_key("Boulogne-sur-Mer", "boulogne sur mer");
    expect_key("  boulogne   SUR mer ", "boulogne sur mer");
    expect_key("Équihen-Plage", "equihen plage");
    expect_key("Villeneuve-d'Ascq", "villeneuve d ascq");
    expect_key("Villeneuve-d’Ascq", "villeneuve d ascq");
    expect_key("Boulogne – sur – Mer", "boulogne sur mer");
    expect_key("Osnabrück", "osnabruck");
    expect_key("OSNABRÜCK", "osnabruck");
    expect_key("Straße", "strasse");
    expect_key("Łódź", "lodz");
    expect_key("İstanbul", "istanbul");
    expect_key("Kapıkule", "kapikule");
    expect_key("Ærøskøbing", "aeroskobing");
    expect_key("Halle (Saale)", "halle saale");
    expect_key("---", "");
}

Test(places, key_saint_abbreviations)
{
    expect_key("Saint-Omer", "saint omer");
    expect_key("St-Omer", "saint omer");
    expect_key("ST. OMER", "saint omer");
    expect_key("Ste-Marie", "sainte marie");
    expect_key("Sankt Gallen", "saint gallen");
    expect_key("Stella", "stella"); /* only whole words */
}

Test(places, key_umlaut_alternate)
{
    char key[TW_PLACE_KEY_MAX];
    cr_assert_eq(tw_place_key("Osnabrück", strlen("Osnabrück"), TW_PLACE_KEY_UMLAUT_E, key,
                              sizeof key),
                 10);
    cr_assert_str_eq(key, "osnabrueck");
    /* The decomposed spelling (u + U+0308) folds the same way. */
    const char *nfd = "Osnabru\xcc\x88" "ck";
    cr_assert_geq(tw_place_key(nfd, strlen(nfd), TW_PLACE_KEY_UMLAUT_E, key, sizeof key), 0);
    cr_assert_str_eq(key, "osnabrueck");
    cr_assert_geq(tw_place_key(nfd, strlen(nfd), 0, key, sizeof key), 0);
    cr_assert_str_eq(key, "osnabruck");
}

Test(places, key_rejects_bad_input)
{
    char key[8];
    cr_assert_eq(tw_place_key("\xff\xfe", 2, 0, key, sizeof key), -1, "invalid UTF-8");
    cr_assert_str_eq(key, "");
    cr_assert_eq(tw_place_key("a\0b", 3, 0, key, sizeof key), -1, "embedded NUL");
    cr_assert_eq(tw_place_key("Gelsenkirchen", 13, 0, key, sizeof key), -1, "does not fit");
    cr_assert_eq(tw_place_key("st", 2, 0, key, 5), -1, "'saint' needs 6 bytes");
    char big[TW_PLACE_NAME_MAX + 2];
    memset(big, 'a', sizeof big);
    cr_assert_eq(tw_place_key(big, sizeof big, 0, key, sizeof key), -1, "too long");
}

/* ---- resolution against the shipped data ----------------------------------- */

Test(places, shipped_data_loads_and_counts)
{
    tw_places *p = real();
    cr_assert_eq(tw_places_count(p), 68786);
    cr_assert_eq(tw_places_hub_count(p), 38);
    cr_assert_lt(tw_places_memory(p), (size_t)16 << 20, "table stays small");
    const tw_hub *h = tw_places_hub(p, 0);
    cr_assert_str_eq(h->name, "Calais");
    cr_assert_eq(h->kind, TW_HUB_COAST);
    cr_assert_null(tw_places_hub(p, 38));
    tw_places_free(p);
}

Test(places, alias_dunkerque_is_the_dunkirk_hub)
{
    tw_places *p = real();
    expect_hub(p, "Dunkerque", "FR", "Dunkerque", "FRDKK");
    expect_hub(p, "Dunkirk", "FR", "Dunkerque", "FRDKK");
    expect_hub(p, "Duinkerke", NULL, "Dunkerque", "FRDKK");
    expect_hub(p, "DUNKERQUE", "fr", "Dunkerque", "FRDKK");
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Dunkerque", "FR", NULL), TW_PLACE_RESOLVED);
    cr_assert_float_eq(r.lat, 51.03440, 1e-9);
    cr_assert_float_eq(r.lon, 2.37681, 1e-9);
    cr_assert_str_eq(r.admin1, "32", "admin1 taken from the gazetteer's Dunkirk");
    cr_assert_eq(r.nearest_hub, r.hub);
    cr_assert_float_eq(r.nearest_hub_km, 0.0, 1e-9);
    tw_places_free(p);
}

Test(places, alias_file_exonyms_reach_the_gazetteer)
{
    tw_places *p = real();
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Antwerpen", "BE", NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Antwerp");
    cr_assert_eq(r.source, TW_PLACE_SRC_GAZETTEER);
    cr_assert_eq(r.hub, -1);
    cr_assert_eq(resolve(p, &r, "Cologne", "DE", NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Köln");
    cr_assert_eq(resolve(p, &r, "Koeln", "DE", NULL), TW_PLACE_RESOLVED, "ü→ue alternate key");
    cr_assert_str_eq(r.name, "Köln");
    cr_assert_eq(resolve(p, &r, "Bruxelles", NULL, NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Brussels");
    cr_assert_eq(resolve(p, &r, "'s-Gravenhage", "NL", NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "The Hague");
    expect_hub(p, "Rijsel", "FR", "Lille", "");
    expect_hub(p, "Oostende", "BE", "Ostend", "BEOST");
    /* "Cologne" is also a town in Italy: without a country it is ambiguous. */
    cr_assert_eq(resolve(p, &r, "Cologne", NULL, NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "DE, IT"), "%s", r.warnings[0].text);
    tw_places_free(p);
}

Test(places, diacritics_and_case)
{
    tw_places *p = real();
    expect_hub(p, "Étaples", "FR", "Étaples", "FRELS");
    expect_hub(p, "ETAPLES", "FR", "Étaples", "FRELS");
    expect_hub(p, "equihen plage", "FR", "Équihen-Plage", "");
    expect_hub(p, "Osnabrueck", "DE", "Osnabrück", "DEOSN");
    expect_hub(p, "osnabruck", NULL, "Osnabrück", "DEOSN");
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "İSTANBUL", "tr", NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Istanbul");
    cr_assert_str_eq(r.country, "TR");
    cr_assert_eq(resolve(p, &r, "Dusseldorf", "DE", NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Düsseldorf");
    cr_assert_eq(resolve(p, &r, "Duesseldorf", "DE", NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Düsseldorf");
    cr_assert_eq(resolve(p, &r, "St. Gallen", "CH", NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Sankt Gallen");
    tw_places_free(p);
}

Test(places, hyphen_apostrophe_and_saint_variants)
{
    tw_places *p = real();
    expect_hub(p, "Boulogne sur Mer", "FR", "Boulogne-sur-Mer", "FRBOL");
    expect_hub(p, "BOULOGNE-SUR-MER", "FR", "Boulogne-sur-Mer", "FRBOL");
    expect_hub(p, "Le Touquet Paris Plage", "FR", "Le Touquet-Paris-Plage", "FRLTQ");
    expect_hub(p, "Oye Plage", "FR", "Oye-Plage", "FRO5P");
    expect_hub(p, "St-Omer", "FR", "Saint-Omer", "");
    expect_hub(p, "St. Omer", "FR", "Saint-Omer", "");
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Villeneuve d’Ascq", "FR", NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Villeneuve-d'Ascq");
    tw_places_free(p);
}

Test(places, ambiguous_name_in_one_country_is_unresolved)
{
    tw_places *p = real();
    tw_place_result r;
    /* Four places called Bergen in Germany, far apart. */
    cr_assert_eq(resolve(p, &r, "Bergen", "DE", NULL), TW_PLACE_UNRESOLVED);
    cr_assert_eq(r.source, TW_PLACE_SRC_NONE);
    cr_assert_eq(r.candidates, 4);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "ambiguous: 4 places named 'Bergen' in DE"),
              "warning: %s", r.nwarnings ? r.warnings[0].text : "(none)");
    cr_assert_null(r.name);
    /* Two Mons in France share an admin1 code, so the hint cannot help. */
    cr_assert_eq(resolve(p, &r, "Mons", "FR", "76"), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "2 places named 'Mons' in FR"));
    tw_places_free(p);
}

Test(places, ambiguity_resolved_by_admin1)
{
    tw_places *p = real();
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Bergen", "DE", "13"), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.admin1, "13");
    cr_assert_float_eq(r.lat, 50.471, 1e-9);
    cr_assert_eq(r.nwarnings, 0);
    /* A hint that matches nothing is reported, and the ambiguity stays. */
    cr_assert_eq(resolve(p, &r, "Bergen", "DE", "99"), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_ADMIN1_IGNORED, NULL));
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, NULL));
    tw_places_free(p);
}

Test(places, hub_name_shared_with_other_places)
{
    tw_places *p = real();
    tw_place_result r;
    /* Essen (North Rhine-Westphalia) is a transit hub; Essen (Oldenburg),
     * Lower Saxony, is another town. The hub wins, with a warning. */
    cr_assert_eq(resolve(p, &r, "Essen", "DE", NULL), TW_PLACE_RESOLVED);
    cr_assert_eq(r.source, TW_PLACE_SRC_HUB);
    cr_assert_str_eq(r.locode, "DEESS");
    cr_assert(has_warning(&r, TW_PLACE_WARN_HUB_PREFERRED, "1 other place"));
    /* admin1 07 is the hub's own: no warning. */
    cr_assert_eq(resolve(p, &r, "Essen", "DE", "07"), TW_PLACE_RESOLVED);
    cr_assert_eq(r.source, TW_PLACE_SRC_HUB);
    cr_assert_eq(r.nwarnings, 0);
    /* admin1 06 picks the other Essen from the gazetteer. */
    cr_assert_eq(resolve(p, &r, "Essen", "DE", "06"), TW_PLACE_RESOLVED);
    cr_assert_eq(r.source, TW_PLACE_SRC_GAZETTEER);
    cr_assert_eq(r.hub, -1);
    cr_assert_float_eq(r.lat, 52.7228, 1e-9);
    /* Without a country, Lille is the French hub; Lille in Belgium is named. */
    cr_assert_eq(resolve(p, &r, "Lille", NULL, NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.country, "FR");
    cr_assert(has_warning(&r, TW_PLACE_WARN_HUB_PREFERRED, "(BE)"));
    cr_assert_eq(resolve(p, &r, "Lille", "BE", NULL), TW_PLACE_RESOLVED);
    cr_assert_eq(r.source, TW_PLACE_SRC_GAZETTEER);
    cr_assert_str_eq(r.admin1, "VLG");
    tw_places_free(p);
}

Test(places, nearby_duplicates_are_one_place)
{
    tw_places *p = real();
    tw_place_result r;
    /* Two GeoNames rows for Arzúa, 1.3 km apart. */
    cr_assert_eq(resolve(p, &r, "Arzua", "ES", NULL), TW_PLACE_RESOLVED);
    cr_assert_eq(r.candidates, 2);
    cr_assert(has_warning(&r, TW_PLACE_WARN_MERGED, NULL));
    cr_assert_float_eq(r.lat, 42.9281, 1e-9, "the first row in file order");
    tw_places_free(p);
}

Test(places, no_country_searches_everywhere)
{
    tw_places *p = real();
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Gelsenkirchen", NULL, NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.country, "DE");
    cr_assert_eq(resolve(p, &r, "Antwerp", NULL, NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.country, "BE");
    cr_assert_eq(resolve(p, &r, "Bruges", NULL, NULL), TW_PLACE_UNRESOLVED,
                 "Bruges (FR) and the alias of Brugge (BE)");
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "2 countries (BE, FR)"));
    tw_places_free(p);
}

Test(places, locode_lookup)
{
    tw_places *p = real();
    tw_place_result r;
    const char *forms[] = {"FRCQF", "frcqf", "FR CQF"};
    for (size_t i = 0; i < 3; i++) {
        tw_place_query q = {.locode = forms[i]};
        cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_RESOLVED, "locode %s", forms[i]);
        cr_assert_eq(r.source, TW_PLACE_SRC_LOCODE);
        cr_assert_str_eq(r.name, "Calais");
        cr_assert_str_eq(r.locode, "FRCQF");
        cr_assert_str_eq(r.country, "FR");
        cr_assert_float_eq(r.lat, 50.95194, 1e-9);
    }
    cr_assert_eq(tw_places_hub_by_locode(p, "GBDVR"), 35);
    /* The locode wins over a different name, with a warning. */
    tw_place_query q = {.locode = "FRCQF", .name = "Dunkerque", .country = "FR"};
    cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.name, "Calais");
    cr_assert(has_warning(&r, TW_PLACE_WARN_NAME_MISMATCH, NULL));
    /* A locode in another country than the record's is a contradiction. */
    q = (tw_place_query){.locode = "FRCQF", .country = "GB"};
    cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_CONFLICT, NULL));
    /* A well-formed locode missing from the hub table falls back to the name,
     * in the locode's country. */
    q = (tw_place_query){.locode = "DEHAM", .name = "Hamburg"};
    cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_RESOLVED);
    cr_assert_eq(r.source, TW_PLACE_SRC_GAZETTEER);
    cr_assert_str_eq(r.country, "DE");
    cr_assert(has_warning(&r, TW_PLACE_WARN_LOCODE_UNKNOWN, NULL));
    q = (tw_place_query){.locode = "DEHAM"};
    cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_LOCODE_UNKNOWN, NULL));
    tw_places_free(p);
}

Test(places, invalid_locode_format)
{
    tw_places *p = small();
    const char *bad[] = {"FRCQ", "FRCQFX", "FR1QF", "F1CQF", "FR-CQF", "12345", "FRCQ0", "FR  CQF"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tw_place_query q = {.locode = bad[i], .name = "Calais"};
        tw_place_result r;
        cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_INVALID, "locode '%s' rejected",
                     bad[i]);
        cr_assert(has_warning(&r, TW_PLACE_WARN_BAD_LOCODE, NULL));
        cr_assert_str_eq(tw_place_warn_name(r.warnings[0].code), "bad_locode");
    }
    tw_places_free(p);
}

Test(places, coordinates_out_of_range_are_invalid)
{
    tw_places *p = small();
    const double bad[][2] = {{91, 0}, {-90.0001, 0}, {0, 180.5}, {0, -181}, {NAN, 0}, {0, INFINITY}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tw_place_query q = {.has_coords = true, .lat = bad[i][0], .lon = bad[i][1]};
        tw_place_result r;
        cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_INVALID, "%g,%g", bad[i][0], bad[i][1]);
        cr_assert(has_warning(&r, TW_PLACE_WARN_BAD_COORDS, NULL));
        cr_assert_not(r.resolved);
        cr_assert_eq(r.nearest_hub, -1);
    }
    tw_place_query edge = {.has_coords = true, .lat = -90, .lon = 180};
    tw_place_result r;
    cr_assert_eq(tw_place_resolve(p, &edge, &r), TW_PLACE_RESOLVED, "the limits are valid");
    tw_places_free(p);
}

Test(places, coordinates_are_used_as_given)
{
    tw_places *p = real();
    /* Coordinates win over a name that means somewhere else. */
    tw_place_query q = {.has_coords = true, .lat = 50.99, .lon = 2.10, .name = "Dover",
                        .country = "fr"};
    tw_place_result r;
    cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_RESOLVED);
    cr_assert_eq(r.source, TW_PLACE_SRC_COORDS);
    cr_assert_str_eq(tw_place_source_name(r.source), "coords");
    cr_assert_eq(r.lat, 50.99);
    cr_assert_eq(r.lon, 2.10);
    cr_assert_null(r.name);
    cr_assert_str_eq(r.country, "FR");
    cr_assert_eq(r.hub, -1);
    cr_assert_str_eq(tw_places_hub(p, (size_t)r.nearest_hub)->name, "Gravelines");
    cr_assert_lt(r.nearest_hub_km, 3.0);
    tw_places_free(p);
}

Test(places, unknown_place_and_country_mismatch)
{
    tw_places *p = real();
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Xyzzyville", "FR", NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_NOT_FOUND, "'Xyzzyville' in FR"));
    cr_assert_str_eq(tw_place_warn_name(r.warnings[0].code), "not_found");
    cr_assert_eq(resolve(p, &r, "Xyzzyville", NULL, NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_NOT_FOUND, NULL));
    /* Calais exists, but not in Belgium: unresolved, naming where it is. */
    cr_assert_eq(resolve(p, &r, "Calais", "BE", NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_NOT_FOUND, "found in FR"), "%s", r.warnings[0].text);
    cr_assert_eq(resolve(p, &r, "Xyzzyville", "US", NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_NOT_FOUND, "no places in US"));
    tw_places_free(p);
}

Test(places, malformed_fields_are_invalid)
{
    tw_places *p = small();
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Calais", "FRA", NULL), TW_PLACE_INVALID);
    cr_assert(has_warning(&r, TW_PLACE_WARN_BAD_COUNTRY, NULL));
    cr_assert_eq(resolve(p, &r, "Calais", "F1", NULL), TW_PLACE_INVALID);
    cr_assert_eq(resolve(p, &r, "Cal\xe9is", "FR", NULL), TW_PLACE_INVALID);
    cr_assert(has_warning(&r, TW_PLACE_WARN_BAD_NAME, "UTF-8"));
    cr_assert_eq(resolve(p, &r, "--", "FR", NULL), TW_PLACE_INVALID);
    cr_assert_eq(resolve(p, &r, "Calais", "FR", "3-2"), TW_PLACE_INVALID);
    cr_assert(has_warning(&r, TW_PLACE_WARN_BAD_ADMIN1, NULL));
    tw_place_query none = {.country = "FR", .postcode = "62100"};
    cr_assert_eq(tw_place_resolve(p, &none, &r), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_NO_INPUT, NULL));
    tw_place_query empty = {.name = "", .locode = ""};
    cr_assert_eq(tw_place_resolve(p, &empty, &r), TW_PLACE_UNRESOLVED, "empty means absent");
    tw_places_free(p);
}

/* ---- distances and hubs ---------------------------------------------------- */

Test(places, haversine_known_distances)
{
    /* One degree of longitude on the equator: 2πR/360. */
    cr_assert_float_eq(tw_haversine_km(0, 0, 0, 1), 111.19508, 1e-4);
    /* A quarter and a half of a great circle. */
    cr_assert_float_eq(tw_haversine_km(0, 0, 0, 90), M_PI / 2 * TW_EARTH_RADIUS_KM, 1e-6);
    cr_assert_float_eq(tw_haversine_km(90, 0, -90, 0), M_PI * TW_EARTH_RADIUS_KM, 1e-6);
    cr_assert_float_eq(tw_haversine_km(10, 179.5, 10, -179.5), tw_haversine_km(10, 0, 10, 1), 1e-9,
                       "across the antimeridian");
    /* London (51.5074 N, 0.1278 W) to Paris (48.8566 N, 2.3522 E): 343.5 km
     * (the usual published figure is 344 km). */
    cr_assert_float_eq(tw_haversine_km(51.5074, -0.1278, 48.8566, 2.3522), 343.5, 0.5);
    /* Calais to Dover town centres (GeoNames points): 42.7 km; the strait's
     * narrowest crossing (Cap Gris-Nez to South Foreland) is 33 km. */
    double cd = tw_haversine_km(50.95194, 1.85635, 51.12598, 1.31257);
    cr_assert(cd > 42.0 && cd < 43.3, "Calais-Dover %.2f km", cd);
    cr_assert_float_eq(cd, tw_haversine_km(51.12598, 1.31257, 50.95194, 1.85635), 1e-9);
    cr_assert_eq(tw_haversine_km(50.95194, 1.85635, 50.95194, 1.85635), 0.0);
    cr_assert(isnan(tw_haversine_km(NAN, 0, 0, 0)));
}

Test(places, nearest_hub_by_kind)
{
    tw_places *p = real();
    double km = -1;
    /* A beach between Gravelines and Oye-Plage. */
    int h = tw_places_nearest_hub(p, 50.995, 2.09, TW_HUB_COAST, &km);
    cr_assert_geq(h, 0);
    cr_assert_str_eq(tw_places_hub(p, (size_t)h)->name, "Gravelines");
    cr_assert_lt(km, 3.5, "%.2f km", km);
    cr_assert_float_eq(km, tw_haversine_km(50.995, 2.09, 50.98651, 2.12807), 1e-9);
    /* From there Deal (54.3 km) is nearer than Dover (56.2 km); from Cap
     * Gris-Nez, Dover (32.2 km) is. */
    h = tw_places_nearest_hub(p, 50.995, 2.09, TW_HUB_UK_LANDING, &km);
    cr_assert_str_eq(tw_places_hub(p, (size_t)h)->name, "Deal");
    cr_assert_float_eq(km, 54.27, 0.01);
    h = tw_places_nearest_hub(p, 50.90, 1.60, TW_HUB_UK_LANDING, &km);
    cr_assert_str_eq(tw_places_hub(p, (size_t)h)->name, "Dover");
    cr_assert_str_eq(tw_hub_kind_name(tw_places_hub(p, (size_t)h)->kind), "uk_landing");
    h = tw_places_nearest_hub(p, 52.285, 7.92, TW_HUB_TRANSIT | TW_HUB_INLAND, &km);
    cr_assert_str_eq(tw_places_hub(p, (size_t)h)->name, "Lotte");
    km = -7;
    cr_assert_eq(tw_places_nearest_hub(p, 50.995, 2.09, 0, &km), -1, "no kind selected");
    cr_assert_eq(km, -7, "km untouched");
    cr_assert_eq(tw_places_nearest_hub(p, 95, 2.09, TW_HUB_ANY, &km), -1, "bad latitude");
    tw_places_free(p);
}

/* ---- loader ------------------------------------------------------------------ */

Test(places, small_inline_tables)
{
    tw_places *p = small();
    cr_assert_eq(tw_places_count(p), 7);
    cr_assert_eq(tw_places_hub_count(p), 3);
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Cologne", NULL, NULL), TW_PLACE_RESOLVED, "alias file");
    cr_assert_str_eq(r.name, "Köln");
    cr_assert_eq(resolve(p, &r, "Essen", "DE", NULL), TW_PLACE_UNRESOLVED, "no hub here");
    cr_assert_eq(r.candidates, 2);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "admin1 06, 07"), "%s", r.warnings[0].text);
    cr_assert_eq(resolve(p, &r, "Essen", NULL, "07"), TW_PLACE_RESOLVED);
    cr_assert_float_eq(r.lat, 51.45657, 1e-9);
    cr_assert_eq(resolve(p, &r, "Dunkirk", NULL, NULL), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.locode, "FRDKK");
    tw_places_free(p);
}

Test(places, loader_accepts_bom_crlf_quotes_and_column_order)
{
    const char hubs[] = "\xEF\xBB\xBFkind,lat,lon,country,name,extra\r\n"
                        "coast,50.95194,1.85635,FR,\"Calais, ville\",x\r\n";
    const char gaz[] = "name,country,lat,lon\r\n\"Boulogne-sur-Mer\",FR,50.72485,1.61373\r\n\r\n";
    char err[256] = "";
    tw_places *p = tw_places_load_mem(hubs, strlen(hubs), gaz, strlen(gaz), NULL, 0, NULL, 0, err,
                                      sizeof err);
    cr_assert(p, "%s", err);
    cr_assert_str_eq(tw_places_hub(p, 0)->name, "Calais, ville");
    cr_assert_str_eq(tw_places_hub(p, 0)->locode, "");
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "calais ville", NULL, NULL), TW_PLACE_RESOLVED);
    cr_assert_eq(resolve(p, &r, "boulogne sur mer", NULL, NULL), TW_PLACE_RESOLVED);
    cr_assert_null(r.admin1, "no admin1 column");
    tw_places_free(p);
}

Test(places, header_only_tables_load)
{
    const char hubs[] = "name,country,lat,lon,kind\n";
    const char gaz[] = "country,name,lat,lon\n";
    char err[256] = "";
    tw_places *p = tw_places_load_mem(hubs, strlen(hubs), gaz, strlen(gaz), NULL, 0, NULL, 0, err,
                                      sizeof err);
    cr_assert(p, "%s", err);
    cr_assert_eq(tw_places_count(p), 0);
    cr_assert_eq(tw_places_hub_count(p), 0);
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Calais", "FR", NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_NOT_FOUND, NULL));
    tw_place_query q = {.has_coords = true, .lat = 1, .lon = 2};
    cr_assert_eq(tw_place_resolve(p, &q, &r), TW_PLACE_RESOLVED);
    cr_assert_eq(r.nearest_hub, -1, "no hubs");
    cr_assert_eq(r.nearest_hub_km, -1);
    tw_places_free(p);
}

Test(places, loader_errors_carry_line_numbers)
{
    const char *gaz = "country,name,lat,lon,admin1\nFR,Calais,50.9,1.8,32\n";
    expect_load_error(HUBS, "country,name,lat,lon,admin1\nFR,Calais,50.9,1.8,32\nFR,Nowhere,91.5,1,32\n",
                      NULL, "gazetteer line 3: lat '91.5' out of range -90..90");
    expect_load_error(HUBS, "country,name,lat,lon\nFR,Calais,abc,1\n", NULL,
                      "gazetteer line 2: lat 'abc' is not a decimal number");
    expect_load_error(HUBS, "country,name,lat,lon\nFR,Calais,nan,1\n", NULL, "not a decimal");
    expect_load_error(HUBS, "country,name,lat\nFR,Calais,1\n", NULL, "lacks the 'lon' column");
    expect_load_error(HUBS, "country,name,lat,lon\nFR,Calais,1\n", NULL,
                      "gazetteer line 2: 3 fields where the header has 4");
    expect_load_error(HUBS, "country,name,lat,lon\n\nFR,\"Cal\"ais,1,2\n", NULL,
                      "gazetteer line 3: malformed CSV");
    expect_load_error(HUBS, "country,name,lat,lon\nFR,\"Calais,1,2\n", NULL,
                      "unterminated quoted field");
    expect_load_error(HUBS, "country,name,lat,lon\nfr,Calais,1,2\n", NULL, "country 'fr'");
    expect_load_error(HUBS, "country,name,lat,lon\nFR,\xff,1,2\n", NULL, "not valid UTF-8");
    expect_load_error(HUBS, "country,name,lat,lon\nFR,-,1,2\n", NULL, "no letter or digit");
    expect_load_error(HUBS, "", NULL, "gazetteer line 1: empty input");
    expect_load_error("name,country,lat,lon,kind\nCalais,FR,50.9,1.8,beach\n", gaz, NULL,
                      "hubs line 2: kind 'beach'");
    expect_load_error("name,country,locode,lat,lon,kind\nCalais,FR,FRC1F,50.9,1.8,coast\n", gaz,
                      NULL, "locode 'FRC1F'");
    expect_load_error("name,country,locode,lat,lon,kind\nCalais,FR,BECQF,50.9,1.8,coast\n", gaz,
                      NULL, "does not belong to country FR");
    expect_load_error("name,country,locode,lat,lon,kind\nCalais,FR,FRCQF,50.9,1.8,coast\n"
                      "Calais2,FR,FRCQF,50.9,1.8,coast\n",
                      gaz, NULL, "hubs line 3: locode FRCQF appears twice");
    expect_load_error("name,aliases,country,lat,lon,kind\nCalais,,FR,50.9,1.8,coast\n"
                      "Kales,calais,FR,50.9,1.8,coast\n",
                      gaz, NULL, "also names hub 'Calais'");
    expect_load_error(HUBS, gaz, "name,alias,country\nAtlantis,Atlantide,FR\n",
                      "aliases line 2: no place named 'Atlantis' in FR");
    expect_load_error(HUBS, gaz, "name,alias\nCalais,Kales\n", "lacks the 'country' column");
}

Test(places, load_files_gzip_and_errors)
{
    char dir[] = "/tmp/tw_places_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char hubs[128], gaz[128], ali[128], err[256] = "";
    snprintf(hubs, sizeof hubs, "%s/hubs.csv", dir);
    snprintf(gaz, sizeof gaz, "%s/gaz.csv.gz", dir);
    snprintf(ali, sizeof ali, "%s/place-aliases.csv", dir);
    FILE *f = fopen(hubs, "w");
    cr_assert_not_null(f);
    fputs(HUBS, f);
    fclose(f);
    gzFile g = gzopen(gaz, "wb");
    cr_assert_not_null(g);
    cr_assert_eq(gzwrite(g, GAZ, (unsigned)strlen(GAZ)), (int)strlen(GAZ));
    gzclose(g);

    tw_places *p = tw_places_load(hubs, gaz, err, sizeof err);
    cr_assert(p, "gzipped gazetteer loads: %s", err);
    cr_assert_eq(tw_places_count(p), 7);
    tw_place_result r;
    cr_assert_eq(resolve(p, &r, "Cologne", "DE", NULL), TW_PLACE_UNRESOLVED,
                 "no alias file next to the gazetteer yet");
    tw_places_free(p);

    f = fopen(ali, "w");
    cr_assert_not_null(f);
    fputs(ALIASES, f);
    fclose(f);
    p = tw_places_load(hubs, gaz, err, sizeof err);
    cr_assert(p, "%s", err);
    cr_assert_eq(resolve(p, &r, "Cologne", "DE", NULL), TW_PLACE_RESOLVED,
                 "place-aliases.csv beside the gazetteer is picked up");
    tw_places_free(p);

    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope.csv", dir);
    cr_assert_null(tw_places_load(hubs, missing, err, sizeof err));
    cr_assert(strstr(err, "nope.csv") && strstr(err, "No such file"), "%s", err);
    cr_assert_null(tw_places_load_ex(hubs, gaz, missing, NULL, err, sizeof err), "named alias file");
    cr_assert(strstr(err, "nope.csv"), "%s", err);

    unlink(hubs);
    unlink(gaz);
    unlink(ali);
    rmdir(dir);
}

/* ---- regions (issue 7: Place.region) ------------------------------------------------ */

static tw_place_status resolve_region(const tw_places *p, tw_place_result *r, const char *name,
                                      const char *country, const char *region)
{
    tw_place_query q = {.name = name, .country = country, .region = region};
    tw_place_status st = tw_place_resolve(p, &q, r);
    cr_assert_eq(st, r->status);
    return st;
}

Test(places, region_resolves_an_ambiguous_town)
{
    tw_places *p = real();
    tw_place_result r;
    /* Without a region, Münster (DE) is three places: never guessed, and the
     * warning advises the contract's field, naming the candidates' regions. */
    cr_assert_eq(resolve(p, &r, "Münster", "DE", NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "give place.region"), "%s",
              r.warnings[0].text);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "DE-NW"), "%s", r.warnings[0].text);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "DE-HE"), "%s", r.warnings[0].text);
    for (size_t i = 0; i < r.nwarnings; i++)
        cr_assert(!strstr(r.warnings[i].text, "give admin1"), "%s", r.warnings[i].text);
    const char *nrw[] = {"DE-NW", "de-nw", "Nordrhein-Westfalen", "North Rhine-Westphalia",
                         "nordrhein westfalen", "NRW"};
    for (size_t i = 0; i < sizeof nrw / sizeof *nrw; i++) {
        cr_assert_eq(resolve_region(p, &r, "Münster", "DE", nrw[i]), TW_PLACE_RESOLVED,
                     "region %s: %s", nrw[i], r.nwarnings ? r.warnings[0].text : "");
        cr_assert_float_eq(r.lat, 51.96236, 1e-5, "Münster (Westfalen) with %s", nrw[i]);
        cr_assert_str_eq(r.admin1, "07");
        cr_assert_eq(r.nwarnings, 0, "%s", r.nwarnings ? r.warnings[0].text : "");
    }
    cr_assert_eq(resolve_region(p, &r, "Münster", "DE", "Hessen"), TW_PLACE_RESOLVED);
    cr_assert_float_eq(r.lat, 49.92278, 1e-5);
    cr_assert_eq(resolve_region(p, &r, "Münster", "DE", "Bavaria"), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.admin1, "02");
    /* An ISO code alone gives the country too. */
    cr_assert_eq(resolve_region(p, &r, "Münster", NULL, "DE-NW"), TW_PLACE_RESOLVED);
    cr_assert_str_eq(r.country, "DE");
    tw_places_free(p);
}

Test(places, wrong_or_unknown_region_is_a_warning_never_a_guess)
{
    tw_places *p = real();
    tw_place_result r;
    /* A real region holding no Münster: unresolved, and said so. */
    cr_assert_eq(resolve_region(p, &r, "Münster", "DE", "Sachsen"), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_ADMIN1_IGNORED, "region 'Sachsen' (DE-SN) matches "
                                                           "none"),
              "%s", r.warnings[0].text);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "give place.region"));
    /* Not a region of that country at all. */
    cr_assert_eq(resolve_region(p, &r, "Münster", "DE", "Atlantis"), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_REGION_UNKNOWN, "give place.region"), "%s",
              r.warnings[0].text);
    cr_assert(has_warning(&r, TW_PLACE_WARN_REGION_UNKNOWN, "(e.g. DE-"), "%s",
              r.warnings[0].text);
    cr_assert_str_eq(tw_place_warn_name(TW_PLACE_WARN_REGION_UNKNOWN), "region_unknown");
    /* Another country's code. */
    cr_assert_eq(resolve_region(p, &r, "Münster", "DE", "FR-HDF"), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_REGION_UNKNOWN, "FR-HDF"));
    /* An unknown region does not unresolve a name that needs none. */
    cr_assert_eq(resolve_region(p, &r, "Osnabrück", "DE", "Atlantis"), TW_PLACE_RESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_REGION_UNKNOWN, NULL));
    /* Limburg is a province in NL and in BE: the country must say which. */
    cr_assert_eq(resolve_region(p, &r, "Münster", NULL, "Limburg"), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_REGION_UNKNOWN, "give place.country"), "%s",
              r.warnings[0].text);
    /* A region without a letter or digit is malformed. */
    cr_assert_eq(resolve_region(p, &r, "Münster", "DE", "--"), TW_PLACE_INVALID);
    cr_assert(has_warning(&r, TW_PLACE_WARN_BAD_REGION, NULL));
    tw_places_free(p);
}

Test(places, region_table_maps_subdivisions_to_gazetteer_admin1)
{
    tw_places *p = real();
    tw_place_result r;
    /* One capital per shipped country checked against the gazetteer. */
    struct { const char *name, *cc, *region, *admin1; } cases[] = {
        {"Düsseldorf", "DE", "DE-NW", "07"},  {"Lille", "FR", "Hauts-de-France", "32"},
        {"Rouen", "FR", "FR-NOR", "28"},      {"Utrecht", "NL", "NL-UT", "09"},
        {"Namur", "BE", "Wallonie", "WAL"},   {"Cardiff", "GB", "Cymru", "WLS"},
        {"Graz", "AT", "Styria", "06"},       {"Zug", "CH", "CH-ZG", "ZG"},
        {"Odense", "DK", "DK-83", "21"},      {"Gdańsk", "PL", "PL-22", "82"},
        {"Diekirch", "LU", "LU-DI", "DI"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cr_assert_eq(resolve_region(p, &r, cases[i].name, cases[i].cc, cases[i].region),
                     TW_PLACE_RESOLVED, "%s: %s", cases[i].name,
                     r.nwarnings ? r.warnings[0].text : "");
        cr_assert_str_eq(r.admin1, cases[i].admin1, "%s", cases[i].name);
        for (size_t k = 0; k < r.nwarnings; k++)
            cr_assert_neq(r.warnings[k].code, TW_PLACE_WARN_ADMIN1_IGNORED, "%s: %s",
                          cases[i].name, r.warnings[k].text);
    }
    /* A department maps to its region: Pas-de-Calais is in Hauts-de-France. */
    cr_assert_eq(resolve_region(p, &r, "Saint-Omer", "FR", "FR-62"), TW_PLACE_RESOLVED);
    tw_places_free(p);
}

Test(places, region_file_errors_name_the_line)
{
    char err[256] = "";
    const char *regions[] = {
        "country,admin1,iso_3166_2\nDE,07,DE-NW\n",                       /* no names column */
        "country,admin1,iso_3166_2,names\nDE,07,FR-NW,X\n",                /* other country's code */
        "country,admin1,iso_3166_2,names\nDE,0-7,DE-NW,X\n",               /* admin1 shape */
        "country,admin1,iso_3166_2,names\nDE,07,DE-NW,\n",                 /* no names */
        "country,admin1,iso_3166_2,names\nDE,07,DE-NW,A||B\n",             /* empty name */
        "country,admin1,iso_3166_2,names\nDE,07,DE-NW,X\nDE,05,DE-HE,X\n", /* X twice */
    };
    for (size_t i = 0; i < sizeof regions / sizeof *regions; i++) {
        tw_places *p = tw_places_load_mem(HUBS, strlen(HUBS), GAZ, strlen(GAZ), NULL, 0,
                                          regions[i], strlen(regions[i]), err, sizeof err);
        cr_assert_null(p, "case %zu loads", i);
        cr_assert(strstr(err, "regions"), "case %zu: %s", i, err);
    }
    cr_assert(strstr(err, "line 3"), "%s", err);
    /* The same name twice for the same admin1 is fine (a department and its region). */
    const char *ok = "country,admin1,iso_3166_2,names\nDE,07,DE-NW,NRW\nDE,07,DE-NW,NRW\n";
    tw_places *p = tw_places_load_mem(HUBS, strlen(HUBS), GAZ, strlen(GAZ), NULL, 0, ok,
                                      strlen(ok), err, sizeof err);
    cr_assert(p, "%s", err);
    tw_place_result r;
    cr_assert_eq(resolve_region(p, &r, "Essen", "DE", "NRW"), TW_PLACE_RESOLVED,
                 "the inline Essen in 07");
    cr_assert_float_eq(r.lat, 51.45657, 1e-9);
    tw_places_free(p);
}

Test(places, ambiguity_advice_fits_what_the_tables_know)
{
    tw_places *p = real();
    tw_place_result r;
    /* Revel (FR): two regions the table knows, named by ISO code. */
    cr_assert_eq(resolve(p, &r, "Revel", "FR", NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "(FR-ARA, FR-OCC)") ||
                  has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "(FR-OCC, FR-ARA)"),
              "%s", r.warnings[0].text);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "give place.region (e.g. FR-"));
    tw_places_free(p);
    /* Without a region table for the country only coordinates can help. */
    char err[256] = "";
    const char *gaz = "country,name,lat,lon,admin1\nIT,Ronco,45.1,9.1,09\nIT,Ronco,41.1,14.1,04\n";
    const char *hubs = "name,aliases,country,locode,lat,lon,kind\nCalais,,FR,FRCQF,50.9,1.8,coast\n";
    const char *reg = "country,admin1,iso_3166_2,names\nDE,07,DE-NW,NRW\n";
    p = tw_places_load_mem(hubs, strlen(hubs), gaz, strlen(gaz), NULL, 0, reg, strlen(reg), err,
                           sizeof err);
    cr_assert(p, "%s", err);
    cr_assert_eq(resolve(p, &r, "Ronco", "IT", NULL), TW_PLACE_UNRESOLVED);
    cr_assert(has_warning(&r, TW_PLACE_WARN_AMBIGUOUS, "(admin1 09, 04); give coordinates"), "%s",
              r.warnings[0].text);
    tw_places_free(p);
}
