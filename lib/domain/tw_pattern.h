/* tw_pattern: serial and hull-number search patterns (pure: no I/O, no
 * allocation, no globals).
 *
 * An investigator types a pattern such as "6E5-X-10?65*": '?' stands for
 * exactly one character, '*' for any run (also empty). Everything between
 * the wildcards is cleaned as ingest cleans readings (tw_serial_clean: NFKC,
 * upper case, look-alike letters mapped to Latin, separators dropped; '_'
 * and U+FFFD count as '?'), so "6e5 x" and "6E5X" are the same pattern.
 *
 * The compiled pattern gives the SQL parameters (values, never SQL text):
 *   like        LIKE pattern on the strict key, with ESCAPE '\': literal
 *               characters escaped ('%' '_' '\' would be; cleaned literals
 *               are [A-Z0-9] only, so in practice none is), '?' as '_', '*'
 *               as '%';
 *   like_loose  the same on the loose key: literals folded with
 *               tw_serial_fold_char (OCR look-alikes: 0/O/Q/D, 1/I/L ...);
 *   like_gaps   like_loose with every '?' as '%' as well (a '?' may stand for a
 *               separator ingest removed: the reading is then longer than the
 *               key), for prefiltering candidates; combine with a length bound;
 *   key         the cleaned pattern ([A-Z0-9?*], runs of '*' collapsed);
 *   fuzzy       the folded literal characters in order, for trigram
 *               similarity (pg_trgm) when there is no wildcard.
 * Counts: literals (known characters), singles ('?'), stars ('*' runs). */
#ifndef TW_PATTERN_H
#define TW_PATTERN_H

#include <stdbool.h>
#include <stddef.h>

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

/* Raw pattern bytes accepted (UTF-8). */
#define TW_PATTERN_RAW_MAX 256
/* Characters of the cleaned pattern (literals and wildcards). */
#define TW_PATTERN_MAX 64
/* Known characters a pattern needs (so that it cannot list everything). */
#define TW_PATTERN_MIN_LITERALS 2
#define TW_PATTERN_TEXT_MAX 160

typedef struct {
    char key[TW_PATTERN_MAX + 1];
    char like[2 * TW_PATTERN_MAX + 1];
    char like_loose[2 * TW_PATTERN_MAX + 1];
    char like_gaps[2 * TW_PATTERN_MAX + 1];
    char fuzzy[TW_PATTERN_MAX + 1];
    unsigned literals, singles, stars;
    bool wildcard; /* singles or stars */
} tw_pattern;

/* Compile text[0..len) (UTF-8, need not be NUL-terminated) into *out
 * (caller-owned). Returns 0, or -1 with a reason in err (errlen bytes,
 * may be NULL) and *out zeroed: empty, longer than TW_PATTERN_RAW_MAX bytes,
 * invalid UTF-8 or a character that is neither readable, a separator nor a
 * wildcard (tw_serial_clean's reason), more than TW_PATTERN_MAX characters
 * after cleaning, or fewer than TW_PATTERN_MIN_LITERALS known characters. */
int tw_pattern_compile(const char *text, size_t len, tw_pattern *out, char *err, size_t errlen)
    TW_WUR;

/* Escape s for a LIKE pattern with ESCAPE '\' ('%', '_' and '\' get a
 * backslash) into out[outsz]. Returns the length written, or -1 (out set
 * to "" when outsz > 0) when it does not fit or an argument is NULL. */
int tw_pattern_like_escape(const char *s, char *out, size_t outsz) TW_WUR;

#endif
