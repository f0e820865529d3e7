/* tw_pattern: see tw_pattern.h. */
#include "tw_pattern.h"

#include <stdio.h>
#include <string.h>

#include "tw_serial.h"

int tw_pattern_like_escape(const char *s, char *out, size_t outsz)
{
    if (!s || !out || outsz == 0) {
        if (out && outsz)
            out[0] = '\0';
        return -1;
    }
    size_t o = 0;
    for (const char *p = s; *p; p++) {
        int esc = *p == '%' || *p == '_' || *p == '\\';
        if (o + (size_t)esc + 1 >= outsz) {
            out[0] = '\0';
            return -1;
        }
        if (esc)
            out[o++] = '\\';
        out[o++] = *p;
    }
    out[o] = '\0';
    return (int)o;
}

static void fail(tw_pattern *out, char *err, size_t errlen, const char *why)
{
    memset(out, 0, sizeof *out);
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
}

/* Append one cleaned character (literal, '?' or '*') to every form. The
 * buffers are sized so that TW_PATTERN_MAX characters always fit. */
static void put(tw_pattern *p, size_t *n, size_t *nl, size_t *ng, size_t *nf, char c)
{
    p->key[(*n)++] = c;
    if (c == '?') {
        p->like[*nl] = '_';
        p->like_loose[(*nl)++] = '_';
        p->like_gaps[(*ng)++] = '%';
        p->singles++;
    } else if (c == '*') {
        p->like[*nl] = '%';
        p->like_loose[(*nl)++] = '%';
        p->like_gaps[(*ng)++] = '%';
        p->stars++;
    } else {
        char f = tw_serial_fold_char(c);
        int esc = c == '%' || c == '_' || c == '\\';
        if (esc) {
            p->like[*nl] = '\\';
            p->like_loose[*nl] = '\\';
            p->like_gaps[(*ng)++] = '\\';
            (*nl)++;
        }
        p->like[*nl] = c;
        p->like_loose[(*nl)++] = f;
        p->like_gaps[(*ng)++] = f;
        p->fuzzy[(*nf)++] = f;
        p->literals++;
    }
}

int tw_pattern_compile(const char *text, size_t len, tw_pattern *out, char *err, size_t errlen)
{
    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!text || len == 0) {
        fail(out, err, errlen, "empty pattern");
        return -1;
    }
    if (len > TW_PATTERN_RAW_MAX) {
        char why[TW_PATTERN_TEXT_MAX];
        snprintf(why, sizeof why, "longer than %d bytes", TW_PATTERN_RAW_MAX);
        fail(out, err, errlen, why);
        return -1;
    }
    size_t n = 0, nl = 0, ng = 0, nf = 0, i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && text[j] != '?' && text[j] != '*')
            j++;
        if (j > i) { /* a literal run: clean it as ingest does */
            char buf[TW_PATTERN_MAX + 2];
            tw_serial_clean_info info;
            memset(&info, 0, sizeof info);
            tw_serial_status st = tw_serial_clean(text + i, j - i, buf, sizeof buf, &info);
            if (st == TW_SERIAL_ERR_EMPTY) {
                buf[0] = '\0'; /* separators only */
            } else if (st != TW_SERIAL_OK) {
                if (st == TW_SERIAL_ERR_TOO_LONG)
                    fail(out, err, errlen, "too many characters");
                else
                    fail(out, err, errlen, info.error_text[0] ? info.error_text : "not readable");
                return -1;
            }
            for (const char *c = buf; *c; c++) {
                if (n >= TW_PATTERN_MAX) {
                    fail(out, err, errlen, "too many characters");
                    return -1;
                }
                put(out, &n, &nl, &ng, &nf, *c);
            }
        }
        if (j < len) {
            char w = text[j];
            if (!(w == '*' && n > 0 && out->key[n - 1] == '*')) { /* collapse '**' */
                if (n >= TW_PATTERN_MAX) {
                    fail(out, err, errlen, "too many characters");
                    return -1;
                }
                put(out, &n, &nl, &ng, &nf, w);
            }
        }
        i = j + 1;
    }
    out->key[n] = out->like[nl] = out->like_loose[nl] = out->like_gaps[ng] = out->fuzzy[nf] = '\0';
    out->wildcard = out->singles > 0 || out->stars > 0;
    if (out->literals < TW_PATTERN_MIN_LITERALS) {
        char why[TW_PATTERN_TEXT_MAX];
        snprintf(why, sizeof why, "needs at least %d known characters besides '?' and '*'",
                 TW_PATTERN_MIN_LITERALS);
        fail(out, err, errlen, why);
        return -1;
    }
    return 0;
}
