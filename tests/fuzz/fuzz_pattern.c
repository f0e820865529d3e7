/* Fuzz target for tw_pattern_compile and tw_pattern_like_escape.
 *
 * Invariants: on success key is only [A-Z0-9?*] without "**", the counts
 * add up to its length, like/like_loose/like_gaps contain no unescaped
 * character outside [A-Z0-9_%] (an escape is always followed by one of
 * % _ \), there are at least TW_PATTERN_MIN_LITERALS literals, and
 * compiling key again gives the same key; on failure the output is zeroed.
 * like_escape's output unescapes to its input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static void check_like(const char *l)
{
    for (const char *p = l; *p; p++) {
        if (*p == '\\') {
            p++;
            CHECK(*p == '%' || *p == '_' || *p == '\\');
            continue;
        }
        CHECK((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '%');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_pattern p;
    char err[TW_PATTERN_TEXT_MAX];
    if (tw_pattern_compile((const char *)data, size, &p, err, sizeof err) == 0) {
        size_t n = strlen(p.key);
        CHECK(n <= TW_PATTERN_MAX);
        CHECK(p.literals + p.singles + p.stars == n);
        CHECK(p.literals >= TW_PATTERN_MIN_LITERALS);
        CHECK(!strstr(p.key, "**"));
        CHECK(p.wildcard == (p.singles + p.stars > 0));
        for (size_t i = 0; i < n; i++) {
            char c = p.key[i];
            CHECK((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '?' || c == '*');
        }
        check_like(p.like);
        check_like(p.like_loose);
        check_like(p.like_gaps);
        CHECK(strlen(p.fuzzy) == p.literals);
        tw_pattern q;
        CHECK(tw_pattern_compile(p.key, n, &q, err, sizeof err) == 0);
        CHECK(strcmp(p.key, q.key) == 0);
        CHECK(strcmp(p.like, q.like) == 0);
    } else {
        CHECK(p.key[0] == '\0' && p.like[0] == '\0' && p.literals == 0);
    }
    /* like_escape round trip on the raw bytes up to the first NUL */
    char in[128], out[260], back[128];
    size_t m = size < sizeof in - 1 ? size : sizeof in - 1;
    memcpy(in, data, m);
    in[m] = '\0';
    int w = tw_pattern_like_escape(in, out, sizeof out);
    CHECK(w >= 0);
    size_t b = 0;
    for (const char *q = out; *q; q++) {
        if (*q == '\\')
            q++;
        back[b++] = *q;
    }
    back[b] = '\0';
    CHECK(strcmp(back, in) == 0);
    return 0;
}
