/* Fuzz target for tw_candidate (ranking candidate items for a reading).
 *
 * Input layout: byte 0 sets the reading's maker (bits 0-2), place (bit 3),
 * time (bit 4) and model (bit 5); byte 1 the cut-off (byte / 255) and
 * margin (byte % 16 / 15). The rest is split at '\n': the first line is the
 * reading key, each further line (at most MAX_ITEMS) an item whose first
 * byte sets its maker, place, time and model like byte 0 (place and time
 * values from the same byte), and whose remaining bytes are up to three
 * keys separated by '|'. One more item is appended: its key is the reading
 * key, with the reading's maker, model, place and time.
 *
 * Checked invariants: OK unless the reading key is bad; every score in
 * [0, 1]; results sorted by score, then item id; every item appears once;
 * plausible ones first and counted; at most one PROBABLE, only when it is
 * the only plausible one; ruled-out ones score 0; reasons are non-empty
 * NUL-terminated lines; the appended exact item scores highest; alignment
 * counts add up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_candidate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define MAX_ITEMS 16
#define MAX_KEYS 3
#define FIELD_MAX 96

static const char *const makers[] = {
    NULL, "Yamaha", "Mercury", "Suzuki", "Honda", "Parsun", "Acme", "acme",
};
static const char *const models[] = {NULL, "F40LEHA"};

static void flags(uint8_t b, const char **maker, const char **model, bool *has_place,
                  double *lat, double *lon, bool *has_time, int64_t *t)
{
    *maker = makers[b & 7];
    *has_place = (b >> 3) & 1;
    *has_time = (b >> 4) & 1;
    *model = models[(b >> 5) & 1];
    *lat = 45.0 + (b >> 6) * 1.5;
    *lon = -5.0 + (b & 7) * 1.25;
    *t = (int64_t)(b >> 5) * 1000;
}

static void check_reason(const char *s)
{
    const char *end = memchr(s, 0, TW_CANDIDATE_TEXT_MAX);
    CHECK(end && end > s);
    for (; s < end; s++)
        CHECK(*s != '\n' && *s != '\r');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    tw_candidate_reading r = {0};
    flags(data[0], &r.maker, &r.model, &r.has_place, &r.lat, &r.lon, &r.has_time, &r.time);
    tw_candidate_options o = {.cutoff = data[1] / 255.0, .margin = (data[1] % 16) / 15.0};
    data += 2;
    size -= 2;

    /* split into lines, each copied into a NUL-terminated field */
    static const size_t nlines_max = MAX_ITEMS + 1;
    char lines[MAX_ITEMS + 1][FIELD_MAX + 1];
    size_t nlines = 0, pos = 0;
    while (nlines < nlines_max) {
        size_t e = pos;
        while (e < size && data[e] != '\n')
            e++;
        size_t l = e - pos > FIELD_MAX ? FIELD_MAX : e - pos;
        memcpy(lines[nlines], data + pos, l);
        lines[nlines][l] = 0;
        nlines++;
        if (e >= size)
            break;
        pos = e + 1;
    }
    r.key = lines[0];

    tw_candidate_item items[MAX_ITEMS + 1];
    const char *keys[MAX_ITEMS + 1][MAX_KEYS];
    size_t n = 0;
    for (size_t i = 1; i < nlines; i++, n++) {
        tw_candidate_item *it = &items[n];
        memset(it, 0, sizeof *it);
        char *line = lines[i];
        uint8_t b = (uint8_t)line[0];
        flags(b, &it->maker, &it->model, &it->has_place, &it->lat, &it->lon, &it->has_time,
              &it->time);
        it->item_id = (int64_t)(b % 5); /* duplicate ids on purpose */
        char *p = line[0] ? line + 1 : line;
        size_t nk = 0;
        while (nk < MAX_KEYS) {
            keys[n][nk++] = p;
            char *bar = strchr(p, '|');
            if (!bar)
                break;
            *bar = 0;
            p = bar + 1;
        }
        it->keys = keys[n];
        it->nkeys = nk;
    }
    /* the exact item */
    tw_candidate_item *ex = &items[n];
    const char *exkey[1] = {r.key};
    *ex = (tw_candidate_item){.item_id = 99, .keys = exkey, .nkeys = 1, .maker = r.maker,
                              .model = r.model, .has_place = r.has_place, .lat = r.lat,
                              .lon = r.lon, .has_time = r.has_time, .time = r.time};
    size_t exact_index = n++;

    tw_candidate_result out[MAX_ITEMS + 1];
    size_t np = 12345;
    char err[TW_CANDIDATE_TEXT_MAX];
    tw_candidate_status st = tw_candidate_rank(&r, items, n, &o, out, &np, err);
    if (st != TW_CANDIDATE_OK) {
        CHECK(st == TW_CANDIDATE_ERR_KEY);
        CHECK(np == 0);
        check_reason(err);
        return 0;
    }
    CHECK(err[0] == 0);
    CHECK(np <= n);

    bool seen[MAX_ITEMS + 1] = {false};
    size_t probable = 0;
    double exact_score = -1.0;
    for (size_t i = 0; i < n; i++) {
        const tw_candidate_result *x = &out[i];
        CHECK(x->score >= 0.0 && x->score <= 1.0);
        CHECK(x->index < n && !seen[x->index]);
        seen[x->index] = true;
        CHECK(x->item_id == items[x->index].item_id);
        check_reason(x->reason);
        if (i) {
            const tw_candidate_result *w = &out[i - 1];
            CHECK(w->score > x->score ||
                  (w->score == x->score && (w->item_id < x->item_id ||
                                            (w->item_id == x->item_id && w->index < x->index))));
        }
        bool plausible = x->kind == TW_CANDIDATE_CANDIDATE || x->kind == TW_CANDIDATE_PROBABLE;
        CHECK(plausible == (i < np));
        if (plausible)
            CHECK(x->score >= o.cutoff);
        else if (x->kind == TW_CANDIDATE_IMPLAUSIBLE)
            CHECK(x->score < o.cutoff);
        if (x->kind == TW_CANDIDATE_RULED_OUT)
            CHECK(x->score == 0.0);
        else {
            const tw_candidate_align *a = &x->align;
            CHECK(a->aligned && a->mismatch == 0);
            CHECK(x->key_index < items[x->index].nkeys);
            CHECK(a->exact + a->lookalike + a->unknown + a->open == a->key_len);
            CHECK(a->key_len >= 1 && a->key_len <= TW_CANDIDATE_KEY_MAX);
        }
        if (x->kind == TW_CANDIDATE_PROBABLE) {
            probable++;
            CHECK(i == 0 && np == 1);
        }
        if (x->index == exact_index) {
            exact_score = x->score;
            CHECK(x->kind != TW_CANDIDATE_RULED_OUT);
            CHECK(x->align.mismatch == 0 && x->align.gap == 0 && x->align.lookalike == 0);
        }
    }
    CHECK(probable <= 1);
    CHECK(exact_score >= 0.0);
    CHECK(exact_score >= out[0].score - 1e-12);

    /* the aligner agrees with itself on the reading and its own key */
    tw_candidate_align a;
    char clean[TW_CANDIDATE_KEY_MAX + 1];
    tw_serial_clean_info info;
    if (tw_serial_clean(r.key, strlen(r.key), clean, sizeof clean, &info) == TW_SERIAL_OK)
        CHECK(tw_candidate_align_keys(clean, clean, &a) && a.gap == 0);
    return 0;
}
