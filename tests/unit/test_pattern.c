/* tw_pattern: search patterns to LIKE / trigram parameters. */
#include <criterion/criterion.h>
#include <string.h>

#include "tw_pattern.h"

static tw_pattern compile_ok(const char *s)
{
    tw_pattern p;
    char err[TW_PATTERN_TEXT_MAX] = "";
    int rv = tw_pattern_compile(s, strlen(s), &p, err, sizeof err);
    cr_assert_eq(rv, 0, "%s: %s", s, err);
    return p;
}

static void compile_bad(const char *s, const char *reason_part)
{
    tw_pattern p;
    char err[TW_PATTERN_TEXT_MAX] = "";
    cr_assert_eq(tw_pattern_compile(s, strlen(s), &p, err, sizeof err), -1, "%s", s);
    cr_assert(strstr(err, reason_part), "%s: reason \"%s\" lacks \"%s\"", s, err, reason_part);
    cr_assert_str_empty(p.key);
}

Test(pattern, wildcards_map_to_like)
{
    tw_pattern p = compile_ok("6e5-x-10?65*");
    cr_assert_str_eq(p.key, "6E5X10?65*");
    cr_assert_str_eq(p.like, "6E5X10_65%");
    cr_assert_str_eq(p.like_gaps, "6E5X10%65%");
    cr_assert_eq(p.literals, 8);
    cr_assert_eq(p.singles, 1);
    cr_assert_eq(p.stars, 1);
    cr_assert(p.wildcard);
}

Test(pattern, loose_folds_lookalikes)
{
    tw_pattern p = compile_ok("6E5X1O16523");
    cr_assert_str_eq(p.like, "6E5X1O16523");
    cr_assert_str_eq(p.like_loose, "6E5X1016523", "O folds to 0, S to 5 ...: %s", p.like_loose);
    cr_assert_str_eq(p.fuzzy, "6E5X1016523");
    cr_assert(!p.wildcard);
}

Test(pattern, stars_collapse_and_underscore_is_one_char)
{
    tw_pattern p = compile_ok("**AB**_C*");
    cr_assert_str_eq(p.key, "*AB*?C*");
    cr_assert_str_eq(p.like, "%AB%_C%");
    cr_assert_eq(p.stars, 3);
    cr_assert_eq(p.singles, 1);
}

Test(pattern, cyrillic_lookalikes_clean_like_ingest)
{
    /* Cyrillic А and В look like Latin A and B. */
    tw_pattern p = compile_ok("\xd0\x90\xd0\x92-12*");
    cr_assert_str_eq(p.key, "AB12*");
}

Test(pattern, refusals)
{
    compile_bad("", "empty");
    compile_bad("*", "known characters");
    compile_bad("A??*", "known characters");
    compile_bad("AB%C", ""); /* '%' is not a serial character */
    compile_bad("AB'; DROP TABLE events; --", "");
    char longp[300];
    memset(longp, 'A', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    compile_bad(longp, "longer than");
    compile_bad("\xff\xfe", "");
}

Test(pattern, like_escape)
{
    char out[32];
    cr_assert_eq(tw_pattern_like_escape("a%b_c\\d", out, sizeof out), 10);
    cr_assert_str_eq(out, "a\\%b\\_c\\\\d");
    cr_assert_eq(tw_pattern_like_escape("abc", out, 3), -1);
    cr_assert_str_empty(out);
    cr_assert_eq(tw_pattern_like_escape(NULL, out, sizeof out), -1);
}
