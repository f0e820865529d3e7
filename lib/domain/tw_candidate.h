/* tw_candidate: ranking candidate items for a partial or damaged serial
 * reading (pure: no I/O, no database, no allocation, no globals).
 *
 * A reading that is partial ('?' for unreadable characters), ground off, or
 * OCR-confused is never merged into an item: this module only ranks the
 * items it could belong to, with a score in [0, 1] and a one-line English
 * reason, and marks a single clear winner PROBABLE. It never merges.
 *
 * Keys. The reading key and every item key go through tw_serial_clean
 * (NFKC, upper case, look-alike letters, separators dropped, unknown markers
 * ? * _ U+FFFD as '?'), so raw text and tw_serial keys both work. Keys are
 * capped at TW_CANDIDATE_KEY_MAX (64) characters and TW_SERIAL_RAW_MAX (64)
 * bytes; a longer or invalid reading key is an error, an invalid item key
 * only rules that key out.
 *
 * Alignment (tw_candidate_align_keys). Every known reading character
 * stands for exactly one item character: equal (exact), equal after
 * tw_serial_fold_char (OCR look-alike: 0/O/Q/D, 1/I/L, 5/S, 8/B, 2/Z, 6/G),
 * opposite a '?' in the item key (open), or different (mismatch). A reading
 * '?' stands for one item character (unknown) or for a separator that
 * ingest removed, i.e. for no character (gap); so a reading of n characters
 * with q '?' aligns with keys of n - q to n characters only, and at most q
 * gaps are used. Of all alignments the best is kept: fewest mismatches, then
 * most agreeing (exact + look-alike), then most exact, then fewest gaps.
 * Any mismatch, or a length that cannot align, rules the key out.
 *
 * Score (tw_candidate_rank), for the best key of an item:
 *   chars = (exact + 0.75 * lookalike) / len(reading key)   in [0, 1]
 *           (every '?' counts as not agreeing, whether it stood for a
 *           character or a separator, so a reading of all but one '?'
 *           scores low however well it "matches", and an item whose key
 *           equals the reading scores highest on this component)
 *   maker = 1 same, 0.5 either unknown; both known and different: ruled out
 *   model = 1 same, 0 different, 0.5 either unknown
 *   place = 1 - min(km, 500) / 500 between the reading's place and the
 *           item's last place; 0.5 when either is unknown
 *   time  = 0 when the item was last seen after the reading's time, else 1
 *           (also 1 when either time is unknown)
 *   score = 0.60 chars + 0.15 maker + 0.10 model + 0.10 place + 0.05 time
 * A ruled-out item scores 0. Makers are compared with tw_serial_maker_parse;
 * two makers of kind OTHER, and models, are equal when their ASCII letters
 * and digits are equal ignoring case ("F40-LEHA" == "f40leha"; "Acme" and
 * "Acme Marine" are different makers). A model with no ASCII letter or
 * digit counts as unknown. The alignment table lives on the stack (about
 * 30 KiB).
 *
 * Kinds. Results are sorted by score (descending), then item id, then input
 * order. A result is plausible when score >= cutoff (default 0.6). When
 * exactly one result is plausible and the next one scores at least `margin`
 * (default 0.15) less (or there is no next one), it is PROBABLE; every other
 * plausible result is CANDIDATE; the rest are IMPLAUSIBLE or RULED_OUT. */
#ifndef TW_CANDIDATE_H
#define TW_CANDIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tw_serial.h"

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

/* Most characters in a reading or item key (after cleaning). */
#define TW_CANDIDATE_KEY_MAX TW_SERIAL_KEY_MAX
/* Room for one reason or error text, NUL included. */
#define TW_CANDIDATE_TEXT_MAX 192

#define TW_CANDIDATE_DEFAULT_CUTOFF 0.6
#define TW_CANDIDATE_DEFAULT_MARGIN 0.15
/* Distance at which the place component reaches 0. */
#define TW_CANDIDATE_PLACE_KM 500.0

typedef enum {
    TW_CANDIDATE_OK = 0,
    TW_CANDIDATE_ERR_ARG,   /* NULL pointer, bad option, NULL item keys */
    TW_CANDIDATE_ERR_KEY,   /* the reading key is invalid or too long */
    TW_CANDIDATE_ERR_PLACE, /* a latitude/longitude not finite or out of range */
} tw_candidate_status;

typedef enum {
    TW_CANDIDATE_RULED_OUT = 0, /* a known character or the maker differs */
    TW_CANDIDATE_IMPLAUSIBLE,   /* score below the cut-off */
    TW_CANDIDATE_CANDIDATE,     /* plausible, not alone */
    TW_CANDIDATE_PROBABLE,      /* the only plausible one, well ahead: a probable link */
} tw_candidate_kind;

/* The reading. Strings are borrowed for the call; NULL or "" maker/model
 * means unknown. */
typedef struct {
    const char *key;   /* NUL-terminated, '?' for unknown characters */
    const char *maker; /* free text (tw_serial_maker_parse) */
    const char *model;
    bool has_place;
    double lat, lon; /* degrees, when has_place */
    bool has_time;
    int64_t time; /* seconds since the epoch, when has_time */
} tw_candidate_reading;

/* One item that the reading may belong to. */
typedef struct {
    int64_t item_id;
    const char *const *keys; /* nkeys NUL-terminated serial keys (plate, stamp ...) */
    size_t nkeys;
    const char *maker;
    const char *model;
    bool has_place;
    double lat, lon; /* last known place */
    bool has_time;
    int64_t time; /* last time seen */
} tw_candidate_item;

typedef struct {
    double cutoff; /* plausible when score >= cutoff; in [0, 1] */
    double margin; /* PROBABLE needs the next score this much lower; in [0, 1] */
} tw_candidate_options;

/* How a reading key aligned with one item key. */
typedef struct {
    unsigned exact;     /* known reading characters equal to the item's */
    unsigned lookalike; /* equal only after OCR folding */
    unsigned unknown;   /* reading '?' standing for one item character */
    unsigned gap;       /* reading '?' standing for a removed separator */
    unsigned open;      /* known reading characters opposite an item '?' */
    unsigned mismatch;  /* known reading characters that differ */
    unsigned key_len;   /* characters in the item key */
    bool aligned;       /* false: lengths cannot align (counts are 0) */
} tw_candidate_align;

typedef struct {
    int64_t item_id;
    size_t index;     /* into the caller's item array */
    size_t key_index; /* the item key that scored best */
    double score;     /* in [0, 1]; 0 when ruled out */
    tw_candidate_kind kind;
    tw_candidate_align align; /* for keys[key_index] */
    double km;                /* distance to the last place, -1 when unknown */
    char reason[TW_CANDIDATE_TEXT_MAX]; /* one line, never empty */
} tw_candidate_result;

/* Fill *o with the defaults (cutoff 0.6, margin 0.15). */
void tw_candidate_options_default(tw_candidate_options *o);

/* Align two cleaned keys (only [A-Z0-9?], at most TW_CANDIDATE_KEY_MAX
 * characters each; `reading` may hold '?' standing for one or no character,
 * `key` may hold '?' meaning its own unknown) as described above, into
 * *out (caller-owned). Returns true when they align with no mismatch; false
 * when they cannot align (out->aligned false), when some known character
 * differs (out->mismatch > 0), or when an argument is NULL, empty or too
 * long (out, when not NULL, is then zeroed). */
bool tw_candidate_align_keys(const char *reading, const char *key, tw_candidate_align *out) TW_WUR;

/* Score and rank items[0..nitems) for reading `r` with options `opt` (NULL
 * for the defaults). Writes nitems results to out[0..nitems) (caller-owned,
 * nitems elements), sorted as described above, and the number of plausible
 * ones (which come first) to *nplausible. An item with no key that cleans
 * is RULED_OUT with a reason saying so. `err` (may be NULL) receives a
 * reason on error, "" on success.
 *
 * Returns TW_CANDIDATE_OK, or an error with nothing useful in out (*nplausible
 * is 0): ERR_ARG for NULL r/out/nplausible (with nitems > 0), NULL
 * items with nitems > 0, an item with nkeys > 0 and NULL keys, or options
 * outside [0, 1]; ERR_KEY for a reading key that is NULL, does not clean
 * (tw_serial_clean's reason) or is longer than TW_CANDIDATE_KEY_MAX;
 * ERR_PLACE for a place not finite or outside [-90, 90] x [-180, 180]. */
tw_candidate_status tw_candidate_rank(const tw_candidate_reading *r,
                                      const tw_candidate_item *items, size_t nitems,
                                      const tw_candidate_options *opt,
                                      tw_candidate_result *out, size_t *nplausible,
                                      char err[TW_CANDIDATE_TEXT_MAX]) TW_WUR;

/* Static names: "ruled out", "implausible", "candidate", "probable link". */
const char *tw_candidate_kind_name(tw_candidate_kind k);
const char *tw_candidate_status_name(tw_candidate_status s);

#endif
