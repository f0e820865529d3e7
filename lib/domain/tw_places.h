/* tw_places: place resolution against the shipped hub table and gazetteer,
 * and distances to hubs.
 *
 * Pure: no sockets, no database. The tables are loaded once (from files or
 * from memory buffers), are immutable afterwards and may be shared by any
 * number of threads; every lookup is reentrant, takes no lock and allocates
 * nothing (libunistring may, briefly, for names that fold to very long text).
 *
 * Data (deploy/data/, see its README for sources and the CC BY 4.0
 * attribution the gazetteer requires):
 *   channel-hubs.csv   name,aliases,country,locode,lat,lon,kind
 *                      aliases separated by '|'; locode blank when none was
 *                      confirmed; kind coast|inland|transit|uk_landing.
 *   gazetteer.csv      country,name,lat,lon,admin1 (GeoNames values).
 *   place-aliases.csv  name,alias,country: `alias` is another spelling of
 *                      the gazetteer's (or a hub's) `name` in `country`
 *                      (exonyms and endonyms: Dunkerque/Dunkirk, Köln/
 *                      Cologne, Antwerpen/Antwerp ...).
 *   regions.csv        country,admin1,iso_3166_2,names: the GeoNames
 *                      admin-1 code of a first-level subdivision, its ISO
 *                      3166-2 code ("DE-NW") and its names separated by '|'
 *                      ("Nordrhein-Westfalen|North Rhine-Westphalia"). A
 *                      row may also map a smaller ISO subdivision to the
 *                      admin-1 region holding it (FR-62 Pas-de-Calais →
 *                      32 Hauts-de-France; BE-VWV → VLG). One code or name
 *                      must not name two admin-1 codes in one country.
 * Columns are found by their header names (order free, extra columns
 * ignored); a UTF-8 byte order mark is skipped; files may be gzipped.
 *
 * Name matching works on keys (tw_place_key): Unicode case folding, NFKD,
 * combining marks dropped (é→e, ü→u, İ→i), a few letters without a
 * decomposition transliterated (ł→l, ø→o, đ/ð→d, æ→ae, œ→oe, þ→th, ı→i;
 * ß→ss comes from case folding), every run of non-alphanumeric characters
 * (spaces, hyphens, apostrophes, dots, slashes, brackets) collapsed to one
 * space, and the whole words "st", "sankt" → "saint" and "ste" → "sainte"
 * (so "St-Omer", "St. Omer" and "Saint-Omer" meet, and "St. Gallen" finds
 * "Sankt Gallen"). Names containing a/o/u with a diaeresis are indexed a
 * second time with the German transcription (ü→ue: "Osnabrueck" finds
 * "Osnabrück"; "Osnabruck" finds it through the plain key). */
#ifndef TW_PLACES_H
#define TW_PLACES_H

#include <stdbool.h>
#include <stddef.h>

#define TW_PLACES_WUR __attribute__((warn_unused_result))

typedef struct tw_places tw_places;

/* Longest accepted place name (bytes of UTF-8), in the files and in queries. */
#define TW_PLACE_NAME_MAX 200
/* Longest accepted region (name or ISO 3166-2 code), bytes of UTF-8. */
#define TW_PLACE_REGION_MAX 100
/* Largest key tw_place_key can produce for an accepted name, with the NUL. */
#define TW_PLACE_KEY_MAX 1024
/* Places of the same name closer than this (pairwise) are one place. */
#define TW_PLACE_SAME_KM 5.0
/* Mean Earth radius (IUGG) used by tw_haversine_km. */
#define TW_EARTH_RADIUS_KM 6371.0088

/* Hub kinds, usable as bits of a kind mask. */
typedef enum {
    TW_HUB_COAST = 1 << 0,      /* launch beach or port on the Channel/North Sea coast */
    TW_HUB_INLAND = 1 << 1,     /* staging town behind the coast */
    TW_HUB_TRANSIT = 1 << 2,    /* storage or crossing point on the supply route */
    TW_HUB_UK_LANDING = 1 << 3, /* UK landing place */
} tw_hub_kind;
#define TW_HUB_ANY (TW_HUB_COAST | TW_HUB_INLAND | TW_HUB_TRANSIT | TW_HUB_UK_LANDING)

/* One row of the hub table. Strings are owned by the tw_places. */
typedef struct tw_hub {
    const char *name;    /* as in the file, e.g. "Dunkerque" */
    const char *aliases; /* the file's aliases column, '|'-separated; "" if none */
    char country[3];     /* ISO 3166-1 alpha-2 */
    char locode[6];      /* UN/LOCODE, "" where none was confirmed */
    double lat, lon;
    tw_hub_kind kind;
} tw_hub;

/* ---- loading ---------------------------------------------------------- */

/* Load the hub table and the gazetteer from files, plus "place-aliases.csv"
 * and "regions.csv" from the gazetteer's directory when those files exist
 * (use tw_places_load_ex to name them or to do without). Returns a new table that
 * the caller owns and releases with tw_places_free, or NULL with a message
 * in err[errlen] (file name and line number for malformed data, e.g.
 * "gazetteer.csv line 17: lat '91.5' out of range -90..90"). Every input
 * may be gzip-compressed (detected by content). */
tw_places *tw_places_load(const char *hubs_csv_path, const char *gazetteer_csv_path, char *err,
                          size_t errlen) TW_PLACES_WUR;

/* Like tw_places_load with the alias and region files named explicitly;
 * NULL loads no aliases or no regions (a missing named file is an error). */
tw_places *tw_places_load_ex(const char *hubs_csv_path, const char *gazetteer_csv_path,
                             const char *aliases_csv_path, const char *regions_csv_path,
                             char *err, size_t errlen) TW_PLACES_WUR;

/* Load from memory buffers holding the CSV text (not gzipped, need not be
 * NUL-terminated; the buffers are not kept). aliases and regions may be
 * NULL (none). Errors name the inputs "hubs", "gazetteer", "aliases" and
 * "regions". Returns a table the caller frees with tw_places_free, or NULL
 * and err. */
tw_places *tw_places_load_mem(const char *hubs, size_t hubs_len, const char *gazetteer,
                              size_t gazetteer_len, const char *aliases, size_t aliases_len,
                              const char *regions, size_t regions_len, char *err,
                              size_t errlen) TW_PLACES_WUR;

/* Release everything the table owns. NULL is a no-op. Names and hubs
 * obtained from the table become invalid. */
void tw_places_free(tw_places *p);

/* Number of gazetteer places (rows of gazetteer.csv). */
size_t tw_places_count(const tw_places *p);

/* Bytes of heap the table holds (entries, strings, indexes). */
size_t tw_places_memory(const tw_places *p);

/* ---- hubs and distances --------------------------------------------- */

/* Number of hubs; hubs are numbered 0..count-1 in file order. */
size_t tw_places_hub_count(const tw_places *p);

/* Hub number i, or NULL when i is out of range. Borrowed from p. */
const tw_hub *tw_places_hub(const tw_places *p, size_t i);

/* Index of the hub whose UN/LOCODE is `locode` (exact, upper case), or -1. */
int tw_places_hub_by_locode(const tw_places *p, const char *locode);

/* "coast", "inland", "transit", "uk_landing"; "?" for anything else. */
const char *tw_hub_kind_name(tw_hub_kind kind);

/* Great-circle distance in km between two points in degrees (haversine on a
 * sphere of TW_EARTH_RADIUS_KM; error against the ellipsoid below 0.5 %).
 * Inputs are not range-checked; NaN in, NaN out. */
double tw_haversine_km(double lat1, double lon1, double lat2, double lon2);

/* Index of the hub nearest to (lat, lon) among the kinds in kind_mask
 * (TW_HUB_* bits), storing the distance in *km when km is non-NULL. Returns
 * -1 (and leaves *km alone) when no hub has one of those kinds or the
 * coordinates are not finite and in range. Ties go to the lower index. */
int tw_places_nearest_hub(const tw_places *p, double lat, double lon, unsigned kind_mask,
                          double *km);

/* ---- name keys ---------------------------------------------------------- */

/* tw_place_key flags. */
#define TW_PLACE_KEY_UMLAUT_E 1u /* a/o/u + diaeresis fold to ae/oe/ue, not a/o/u */
#define TW_PLACE_KEY_NO_FAST 2u  /* skip the ASCII fast path (tests compare both) */

/* Fold the UTF-8 name s[len] into its matching key (see the top of this
 * file) in out[outlen], NUL-terminated: lower case, ASCII or other
 * alphanumerics, words separated by single spaces, no leading or trailing
 * space. Returns the key's length (0 when the name has no letter or digit),
 * or -1 when s is not valid UTF-8, contains a NUL, is longer than
 * TW_PLACE_NAME_MAX, or the key does not fit in out (TW_PLACE_KEY_MAX always
 * fits). On -1, out holds "" when outlen > 0. */
int tw_place_key(const char *s, size_t len, unsigned flags, char *out,
                 size_t outlen) TW_PLACES_WUR;

/* ---- resolution --------------------------------------------------------- */

/* What a record says about a place. Strings are NUL-terminated; NULL and ""
 * both mean "not given". */
typedef struct tw_place_query {
    bool has_coords;
    double lat, lon;      /* degrees, WGS84, when has_coords */
    const char *locode;   /* UN/LOCODE: "FRCQF" (case-insensitive, "FR CQF" accepted) */
    const char *name;     /* "Dunkerque" */
    const char *country;  /* ISO 3166-1 alpha-2, case-insensitive */
    const char *postcode; /* accepted; not used (the gazetteer has no postcodes) */
    const char *admin1;   /* GeoNames admin-1 code hint, e.g. "07" (case-insensitive) */
    const char *region;   /* first-level subdivision: a name ("Nordrhein-Westfalen") or an
                           * ISO 3166-2 code ("DE-NW"), mapped to admin1 through
                           * regions.csv; takes precedence over admin1 */
} tw_place_query;

typedef enum {
    TW_PLACE_RESOLVED = 0,   /* out has coordinates */
    TW_PLACE_UNRESOLVED = 1, /* well-formed but unknown, ambiguous or contradictory */
    TW_PLACE_INVALID = 2,    /* a field is malformed (see the warning's code) */
} tw_place_status;

typedef enum {
    TW_PLACE_SRC_NONE = 0,
    TW_PLACE_SRC_COORDS,    /* the query's own coordinates */
    TW_PLACE_SRC_LOCODE,    /* UN/LOCODE found in the hub table */
    TW_PLACE_SRC_HUB,       /* name matched a hub's name or alias */
    TW_PLACE_SRC_GAZETTEER, /* name matched the gazetteer */
} tw_place_source;

typedef enum {
    TW_PLACE_WARN_BAD_COORDS = 1, /* invalid: not finite or out of range */
    TW_PLACE_WARN_BAD_LOCODE,     /* invalid: not CC + 3 of [A-Z2-9] */
    TW_PLACE_WARN_BAD_COUNTRY,    /* invalid: not two letters */
    TW_PLACE_WARN_BAD_NAME,       /* invalid: bad UTF-8, too long, or no letter/digit */
    TW_PLACE_WARN_BAD_ADMIN1,     /* invalid: longer than 20 or not alphanumeric */
    TW_PLACE_WARN_NO_INPUT,       /* unresolved: no coordinates, locode or name */
    TW_PLACE_WARN_CONFLICT,       /* unresolved: locode's country differs from country */
    TW_PLACE_WARN_LOCODE_UNKNOWN, /* locode not in the hub table; name used instead */
    TW_PLACE_WARN_NAME_MISMATCH,  /* resolved by locode, but the name is not that hub's */
    TW_PLACE_WARN_NOT_FOUND,      /* unresolved: no place of that name (in that country) */
    TW_PLACE_WARN_AMBIGUOUS,      /* unresolved: several places of that name */
    TW_PLACE_WARN_ADMIN1_IGNORED, /* the admin1 hint (or the region's) matched none of the
                                   * candidates */
    TW_PLACE_WARN_MERGED,         /* several entries within TW_PLACE_SAME_KM taken as one */
    TW_PLACE_WARN_HUB_PREFERRED,  /* the name also names other places; the hub was chosen */
    TW_PLACE_WARN_BAD_REGION,     /* invalid: region not UTF-8, too long or without letters */
    TW_PLACE_WARN_REGION_UNKNOWN, /* the region names no known subdivision (of that country) */
} tw_place_warn_code;

#define TW_PLACE_MAX_WARNINGS 4

typedef struct tw_place_warning {
    tw_place_warn_code code;
    char text[200]; /* for a person: "ambiguous: 2 places named 'Essen' in DE ..." */
} tw_place_warning;

typedef struct tw_place_result {
    tw_place_status status;
    bool resolved;          /* status == TW_PLACE_RESOLVED */
    tw_place_source source;
    double lat, lon;        /* valid when resolved */
    const char *name;       /* canonical name (borrowed from p); NULL for coordinates */
    const char *admin1;     /* gazetteer admin-1 code (borrowed), NULL when unknown */
    char country[3];        /* "" when unknown */
    char locode[6];         /* "" when unknown */
    int hub;                /* hub index when the place is a hub (locode/hub), else -1 */
    int nearest_hub;        /* nearest hub of any kind when resolved, else -1 */
    double nearest_hub_km;  /* distance to it, -1 when none */
    size_t candidates;      /* places matching the name (after country), 0 if not looked up */
    size_t nwarnings;
    tw_place_warning warnings[TW_PLACE_MAX_WARNINGS]; /* later ones dropped past the cap */
} tw_place_result;

/* Resolve q against p into *out (fully overwritten) and return out->status.
 *
 * Every given field is validated first; a malformed one (coordinates not
 * finite or outside ±90/±180, a locode not matching [A-Z]{2}[A-Z2-9]{3},
 * a country that is not two letters, a name that is not UTF-8, too long or
 * has no letter or digit) gives TW_PLACE_INVALID with a BAD_* warning.
 * Then, in order:
 *  1. coordinates: used as given (source COORDS); nothing is cross-checked.
 *  2. locode: its country must agree with `country` (else UNRESOLVED,
 *     CONFLICT); found in the hub table → that hub (source LOCODE, with a
 *     NAME_MISMATCH warning when a name is given that is not the hub's);
 *     not found → LOCODE_UNKNOWN warning and the name is tried, with the
 *     locode's country when no country is given.
 *  3. name (+ country when given, else every country): hubs first, as they
 *     are the places that matter. A hub match wins, but when the gazetteer
 *     holds other places of that name (farther than TW_PLACE_SAME_KM from
 *     the hub, in any country when none is given), an admin1 hint that names
 *     one of them picks it instead; without such a hint the hub is taken
 *     with a HUB_PREFERRED warning ("Essen", DE → the transit hub, warning
 *     that Essen (Oldenburg) exists). Otherwise the gazetteer: one match
 *     → it; several → narrowed by the admin1 hint if it matches any (else
 *     ADMIN1_IGNORED); then if they are all within TW_PLACE_SAME_KM of each
 *     other and in one country → the first in file order (MERGED warning),
 *     else UNRESOLVED with AMBIGUOUS ("ambiguous: 2 places named 'Essen' in
 *     DE (admin1 06, 07)") and out->candidates set. Places in several
 *     countries (no country given) are always ambiguous. No match →
 *     UNRESOLVED with NOT_FOUND (naming the countries that do have the name).
 *  4. nothing to go on → UNRESOLVED with NO_INPUT.
 * The region (validated in step 1: BAD_REGION when it has no letter or
 * digit or is longer than TW_PLACE_REGION_MAX) is used for names only: its
 * key (tw_place_key, so "DE-NW", "de nw", "North Rhine Westphalia" all
 * work) is looked up among regions.csv's codes and names in the country
 * (in any country when none is given; then the region's country is used).
 * Found, its admin-1 code replaces the admin1 hint; not found (or naming
 * regions of several countries) → REGION_UNKNOWN warning and no hint: the
 * name is resolved as without a region, so an ambiguous one stays
 * UNRESOLVED (never a guess). Warnings advise only what the contract
 * offers (place.region, place.country, coordinates), and name candidates'
 * regions by ISO 3166-2 code when the region table knows them.
 * The postcode is not used. An admin1 hint that contradicts a lone match is
 * reported (ADMIN1_IGNORED) but does not unresolve it. A resolved result
 * always carries the nearest hub (any kind) and its distance; `hub` is set
 * only when the place is a hub (sources LOCODE and HUB).
 * Strings in *out are borrowed from p (never from q). Uses about 3 KiB of stack.
 * p and q must not be NULL. */
tw_place_status tw_place_resolve(const tw_places *p, const tw_place_query *q,
                                 tw_place_result *out) TW_PLACES_WUR;

/* Stable lower-case names: "coords", "locode", "hub", "gazetteer", "none". */
const char *tw_place_source_name(tw_place_source s);

/* Stable snake_case names for warning codes ("ambiguous", "not_found",
 * "bad_locode", ...), for logs and issue codes; "unknown" otherwise. */
const char *tw_place_warn_name(tw_place_warn_code c);

#endif
