/* Fuzz target for tw_serial (engine serials) and tw_hin (hull numbers).
 *
 * Input layout: byte 0 chooses the maker hint, byte 1 the reference year
 * (1950 + byte) for the HIN decoder; the rest is the reading. Checked
 * invariants: keys only hold [A-Z0-9?], the loose key is the folded key and
 * holds no folded letter, fixes only where a strong format applies,
 * normalising or decoding a key again changes nothing, decoded fields are
 * consistent with the key, errors leave no key, the matcher is symmetric
 * and matches a key with its own loose key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_hin.h"
#include "tw_serial.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static const char *const makers[] = {
    NULL, "Yamaha", "Mercury", "Suzuki", "Honda", "Parsun", "Hidea (Yamaha copy)", "Acme",
};

static int key_chars_ok(const char *k)
{
    for (; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= '0' && *k <= '9') || *k == '?'))
            return 0;
    return 1;
}

static unsigned count_unknown(const char *k)
{
    unsigned n = 0;
    for (; *k; k++)
        n += *k == '?';
    return n;
}

static int text_ok(const char *t, size_t cap)
{
    return memchr(t, 0, cap) != NULL && t[0] != 0;
}

static void check_serial_ok(const tw_serial *s, const char *maker)
{
    CHECK(s->status == TW_SERIAL_OK);
    CHECK(s->error_text[0] == 0);
    CHECK(s->len > 0 && s->len <= TW_SERIAL_KEY_MAX);
    CHECK(strlen(s->key) == s->len && strlen(s->loose_key) == s->len &&
          strlen(s->clean) == s->len);
    CHECK(key_chars_ok(s->key) && key_chars_ok(s->clean) && key_chars_ok(s->loose_key));
    CHECK(strpbrk(s->loose_key, "OQDILSBZG") == NULL);
    char folded[TW_SERIAL_KEY_MAX + 1];
    CHECK(tw_serial_fold(s->key, folded, sizeof folded) == 0);
    CHECK(strcmp(folded, s->loose_key) == 0);
    CHECK(tw_serial_fold(s->clean, folded, sizeof folded) == 0);
    CHECK(strcmp(folded, s->loose_key) == 0);
    CHECK(s->unknown == count_unknown(s->key) && s->unknown == count_unknown(s->clean));
    CHECK(s->unknown < s->len);
    CHECK(s->partial == (s->unknown > 0));
    CHECK(s->format != TW_SERIAL_FORMAT_INVALID);
    CHECK(s->nwarnings <= TW_SERIAL_WARN_MAX);
    unsigned diff = 0;
    for (size_t i = 0; i < s->len; i++)
        diff += s->key[i] != s->clean[i];
    CHECK(diff == s->fixes);
    if (s->fixes)
        CHECK(s->format == TW_SERIAL_FORMAT_YAMAHA || s->format == TW_SERIAL_FORMAT_MERCURY);
    if (s->maker != TW_SERIAL_MAKER_YAMAHA && s->maker != TW_SERIAL_MAKER_MERCURY)
        CHECK(s->fixes == 0);
    size_t nfix = 0;
    for (size_t i = 0; i < s->nwarnings; i++) {
        const tw_serial_warning *w = &s->warnings[i];
        CHECK(text_ok(w->text, sizeof w->text));
        CHECK(w->pos <= s->len);
        if (w->code == TW_SERIAL_W_OCR_FIX) {
            CHECK(w->pos >= 1 && s->key[w->pos - 1] != s->clean[w->pos - 1]);
            nfix++;
        }
    }
    if (!s->warnings_truncated)
        CHECK(nfix == s->fixes);
    size_t agree = 0;
    CHECK(tw_serial_match(s->key, s->loose_key, &agree));
    CHECK(agree == s->len - s->unknown);
    CHECK(tw_serial_match(s->clean, s->key, NULL));

    /* Idempotent. */
    tw_serial again;
    CHECK(tw_serial_normalize(s->key, s->len, maker, &again) == TW_SERIAL_OK);
    CHECK(strcmp(again.key, s->key) == 0);
    CHECK(strcmp(again.loose_key, s->loose_key) == 0);
    CHECK(again.format == s->format);
    CHECK(again.fixes == 0);
}

static void check_serial_error(const tw_serial *s, tw_serial_status st)
{
    CHECK(s->status == st);
    CHECK(st > TW_SERIAL_OK && st <= TW_SERIAL_ERR_NOMEM);
    CHECK(s->key[0] == 0 && s->loose_key[0] == 0 && s->clean[0] == 0);
    CHECK(s->format == TW_SERIAL_FORMAT_INVALID);
    CHECK(s->nwarnings == 0);
    CHECK(text_ok(s->error_text, sizeof s->error_text));
}

static void check_hin_ok(const tw_hin *h, int ref)
{
    CHECK(h->status == TW_HIN_OK && h->error_text[0] == 0);
    size_t n = strlen(h->key);
    CHECK(n > 0 && n <= TW_HIN_KEY_MAX);
    CHECK(key_chars_ok(h->key));
    CHECK(h->unknown == count_unknown(h->key) && h->partial == (h->unknown > 0));
    CHECK(h->month >= 0 && h->month <= 12);
    CHECK(h->nwarnings <= TW_HIN_WARN_MAX);
    for (size_t i = 0; i < h->nwarnings; i++) {
        CHECK(text_ok(h->warnings[i].text, sizeof h->warnings[i].text));
        CHECK(h->warnings[i].pos <= n);
    }
    switch (h->kind) {
    case TW_HIN_KIND_US:
        CHECK(n == 12 && strcmp(h->country, "US") == 0);
        CHECK(strncmp(h->maker, h->key, 3) == 0 && strncmp(h->serial, h->key + 3, 5) == 0);
        break;
    case TW_HIN_KIND_EU_CIN:
        CHECK(n == 14 || (n == 10 && h->one_off));
        CHECK(strncmp(h->country, h->key, 2) == 0 && strncmp(h->maker, h->key + 2, 3) == 0);
        CHECK(strncmp(h->serial, h->key + 5, 5) == 0);
        break;
    case TW_HIN_KIND_LEGACY:
        CHECK(n == 12 && h->legacy_form != TW_HIN_LEGACY_NONE);
        CHECK(h->production_year == 0 || (h->production_year >= 1972 && h->production_year <= 1984));
        CHECK(h->model_year == 0 || (h->model_year >= 1972 && h->model_year <= 1985));
        break;
    case TW_HIN_KIND_UNKNOWN:
        CHECK(h->maker[0] == 0 && h->month == 0 && h->model_year == 0 && h->production_year == 0);
        break;
    }
    if (h->kind == TW_HIN_KIND_US || h->kind == TW_HIN_KIND_EU_CIN) {
        if (h->model_year)
            CHECK(h->model_year <= ref + 1 && h->model_year > ref + 1 - 100);
        if (h->production_year)
            CHECK(h->model_year - h->production_year >= 0 &&
                  h->model_year - h->production_year <= 9);
    }

    tw_hin again;
    CHECK(tw_hin_decode(h->key, n, ref, &again) == TW_HIN_OK);
    CHECK(strcmp(again.key, h->key) == 0);
    CHECK(again.kind == h->kind && again.legacy_form == h->legacy_form);
    CHECK(again.fixes == 0);
    CHECK(strcmp(again.country, h->country) == 0 && strcmp(again.maker, h->maker) == 0 &&
          strcmp(again.serial, h->serial) == 0);
    CHECK(again.month == h->month && again.production_year == h->production_year &&
          again.model_year == h->model_year && again.one_off == h->one_off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *maker = makers[data[0] % (sizeof makers / sizeof makers[0])];
    int ref = 1950 + data[1];
    const char *raw = (const char *)data + 2;
    size_t len = size - 2;

    tw_serial s;
    tw_serial_status st = tw_serial_normalize(raw, len, maker, &s);
    if (len > TW_SERIAL_RAW_MAX)
        CHECK(st == TW_SERIAL_ERR_TOO_LONG);
    if (st == TW_SERIAL_OK)
        check_serial_ok(&s, maker);
    else
        check_serial_error(&s, st);

    /* The same reading for another maker: same cleaning, and the matcher is
     * symmetric. */
    const char *other = makers[(data[0] + 1) % (sizeof makers / sizeof makers[0])];
    tw_serial s2;
    tw_serial_status st2 = tw_serial_normalize(raw, len, other, &s2);
    CHECK(st2 == st);
    if (st == TW_SERIAL_OK) {
        CHECK(strcmp(s.clean, s2.clean) == 0 && strcmp(s.loose_key, s2.loose_key) == 0);
        size_t a1, a2;
        bool m1 = tw_serial_match(s.key, s2.key, &a1), m2 = tw_serial_match(s2.key, s.key, &a2);
        CHECK(m1 && m2 && a1 == a2);
        /* Two halves of the input make an arbitrary pair. */
        tw_serial h1, h2;
        size_t half = len / 2;
        if (tw_serial_normalize(raw, half, NULL, &h1) == TW_SERIAL_OK &&
            tw_serial_normalize(raw + half, len - half, NULL, &h2) == TW_SERIAL_OK) {
            m1 = tw_serial_match(h1.loose_key, h2.loose_key, &a1);
            m2 = tw_serial_match(h2.loose_key, h1.loose_key, &a2);
            CHECK(m1 == m2 && a1 == a2);
            if (m1)
                CHECK(h1.len == h2.len);
        }
    }

    tw_hin h;
    tw_hin_status hs = tw_hin_decode(raw, len, ref, &h);
    CHECK((hs == TW_HIN_OK) == (st == TW_SERIAL_OK));
    if (hs == TW_HIN_OK) {
        check_hin_ok(&h, ref);
    } else {
        CHECK(h.status == hs && h.key[0] == 0 && h.kind == TW_HIN_KIND_UNKNOWN);
        CHECK(h.nwarnings == 0 && text_ok(h.error_text, sizeof h.error_text));
    }
    return 0;
}
