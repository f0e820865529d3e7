#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tw_candidate.h"

#define EPS 1e-9

static tw_candidate_align align_ok(const char *r, const char *k)
{
    tw_candidate_align a;
    cr_assert(tw_candidate_align_keys(r, k, &a), "'%s' vs '%s' should align", r, k);
    cr_assert(a.aligned);
    cr_assert_eq(a.mismatch, 0);
    return a;
}

/* Rank; the test fails unless it is OK. */
static size_t rank_ok(const tw_candidate_reading *r, const tw_candidate_item *it, size_t n,
                      const tw_candidate_options *o, tw_candidate_result *out)
{
    size_t np = 99;
    char err[TW_CANDIDATE_TEXT_MAX];
    tw_candidate_status st = tw_candidate_rank(r, it, n, o, out, &np, err);
    cr_assert_eq(st, TW_CANDIDATE_OK, "%s: %s", tw_candidate_status_name(st), err);
    cr_assert_str_empty(err);
    for (size_t i = 0; i < n; i++) {
        cr_assert(out[i].score >= 0.0 && out[i].score <= 1.0);
        cr_assert_str_not_empty(out[i].reason);
        if (i)
            cr_assert(out[i - 1].score >= out[i].score, "sorted by score");
    }
    return np;
}

static const char *const yamaha_a[] = {"6E5-X-1016523"};

Test(candidate, unknown_positions_match_any_character)
{
    tw_candidate_align a = align_ok("6E5X10?65?3", "6E5X1016523");
    cr_assert_eq(a.exact, 9);
    cr_assert_eq(a.unknown, 2);
    cr_assert_eq(a.gap, 0);
    cr_assert_eq(a.lookalike, 0);
    cr_assert_eq(a.key_len, 11);
    /* a known character that differs rules the key out, '?' or not */
    tw_candidate_align b;
    cr_assert_not(tw_candidate_align_keys("6E5X10?75?3", "6E5X1016523", &b));
    cr_assert(b.aligned);
    cr_assert_eq(b.mismatch, 1);
}

Test(candidate, unknown_may_stand_for_a_removed_separator)
{
    /* "6E5-X-1016523" with both hyphens ground off and read as '?' */
    tw_candidate_align a = align_ok("6E5?X?1016523", "6E5X1016523");
    cr_assert_eq(a.exact, 11);
    cr_assert_eq(a.gap, 2);
    cr_assert_eq(a.unknown, 0);
    /* one '?' more than the true serial has characters for: one of them is
     * a separator, the other an unreadable digit */
    a = align_ok("6E5?X10?6523", "6E5X1016523");
    cr_assert_eq(a.exact, 10);
    cr_assert_eq(a.gap, 1);
    cr_assert_eq(a.unknown, 1);
    /* ground-off digits and a separator in one reading */
    a = align_ok("6E5?X10?65?3", "6E5X1016523");
    cr_assert_eq(a.exact, 9);
    cr_assert_eq(a.gap, 1);
    cr_assert_eq(a.unknown, 2);
}

Test(candidate, gaps_are_bounded_by_the_unknowns)
{
    tw_candidate_align a;
    /* 13 characters with 2 '?' cover 11 to 13 key characters, not 10 */
    cr_assert_not(tw_candidate_align_keys("6E5??X1016523", "6E5X101652", &a));
    cr_assert_not(a.aligned);
    /* nor 14: a '?' never stands for two characters, known ones for none */
    cr_assert_not(tw_candidate_align_keys("6E5??X1016523", "6E5XXX1016523X", &a));
    cr_assert_not(a.aligned);
    /* without '?' the lengths must be equal */
    cr_assert_not(tw_candidate_align_keys("6E5X101652", "6E5X1016523", &a));
    cr_assert_not(a.aligned);
}

Test(candidate, ocr_lookalike_agrees_but_less_than_exact)
{
    tw_candidate_align a = align_ok("6E5X1O16S23", "6E5X1016523");
    cr_assert_eq(a.exact, 9);
    cr_assert_eq(a.lookalike, 2);

    tw_candidate_reading r = {.key = "6E5X1O16S23", .maker = "Yamaha"};
    const char *const exact_key[] = {"6E5X1O16S23"};
    tw_candidate_item it[2] = {
        {.item_id = 1, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha"},
        {.item_id = 2, .keys = exact_key, .nkeys = 1, .maker = "Yamaha"},
    };
    tw_candidate_result out[2];
    rank_ok(&r, it, 2, NULL, out);
    cr_assert_eq(out[0].item_id, 2, "the exact key ranks first");
    cr_assert_eq(out[1].item_id, 1);
    cr_assert(out[1].score < out[0].score);
    cr_assert_neq(out[1].kind, TW_CANDIDATE_RULED_OUT, "a look-alike never rules out");
    cr_assert(strstr(out[1].reason, "11 of 11 characters agree (2 OCR look-alikes)"),
              "%s", out[1].reason);
}

Test(candidate, reason_and_score_follow_the_formula)
{
    tw_candidate_reading r = {.key = "6E5X10?65?3", .maker = "Yamaha", .model = "F40LEHA"};
    tw_candidate_item it = {.item_id = 7, .keys = yamaha_a, .nkeys = 1, .maker = "YAMAHA MOTOR",
                            .model = "f40-leha"};
    tw_candidate_result out[1];
    size_t np = rank_ok(&r, &it, 1, NULL, out);
    cr_assert_eq(np, 1);
    cr_assert_str_eq(out[0].reason,
                     "9 of 11 characters agree (2 unreadable), same maker and model, "
                     "distance unknown");
    double want = 0.60 * 9.0 / 11.0 + 0.15 + 0.10 + 0.10 * 0.5 + 0.05;
    cr_assert(fabs(out[0].score - want) < EPS, "%f vs %f", out[0].score, want);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_PROBABLE);
    cr_assert_eq(out[0].km, -1.0);
}

Test(candidate, maker_mismatch_rules_out)
{
    tw_candidate_reading r = {.key = "6E5X1016523", .maker = "Yamaha"};
    tw_candidate_item it[3] = {
        {.item_id = 1, .keys = yamaha_a, .nkeys = 1, .maker = "Suzuki"},
        {.item_id = 2, .keys = yamaha_a, .nkeys = 1, .maker = NULL},
        {.item_id = 3, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha"},
    };
    tw_candidate_result out[3];
    rank_ok(&r, it, 3, NULL, out);
    cr_assert_eq(out[0].item_id, 3, "same maker beats unknown maker");
    cr_assert_eq(out[1].item_id, 2);
    cr_assert_eq(out[2].item_id, 1);
    cr_assert_eq(out[2].kind, TW_CANDIDATE_RULED_OUT);
    cr_assert_eq(out[2].score, 0.0);
    cr_assert(strncmp(out[2].reason, "ruled out: different maker", 26) == 0, "%s",
              out[2].reason);
    /* two unnamed makers of ours: different text, different maker */
    tw_candidate_reading r2 = {.key = "AB12345", .maker = "Acme Marine"};
    const char *const k[] = {"AB12345"};
    tw_candidate_item it2[2] = {
        {.item_id = 1, .keys = k, .nkeys = 1, .maker = "Zenith"},
        {.item_id = 2, .keys = k, .nkeys = 1, .maker = "acme-marine"},
    };
    rank_ok(&r2, it2, 2, NULL, out);
    cr_assert_eq(out[0].item_id, 2);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_PROBABLE);
    cr_assert_eq(out[1].kind, TW_CANDIDATE_RULED_OUT);
}

Test(candidate, distance_orders_otherwise_equal_candidates)
{
    /* seizure at Calais; item 1 last sold near Paris (~240 km), item 2 in
     * Boulogne (~30 km) */
    tw_candidate_reading r = {.key = "6E5X10?6523", .maker = "Yamaha", .has_place = true,
                              .lat = 50.95, .lon = 1.86};
    tw_candidate_item it[2] = {
        {.item_id = 1, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha", .has_place = true,
         .lat = 48.86, .lon = 2.35},
        {.item_id = 2, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha", .has_place = true,
         .lat = 50.73, .lon = 1.61},
    };
    tw_candidate_result out[2];
    size_t np = rank_ok(&r, it, 2, NULL, out);
    cr_assert_eq(np, 2);
    cr_assert_eq(out[0].item_id, 2, "the nearer item ranks first");
    cr_assert(out[0].km > 20 && out[0].km < 40, "%f", out[0].km);
    cr_assert(out[1].km > 200 && out[1].km < 260, "%f", out[1].km);
    cr_assert(strstr(out[0].reason, " km away"), "%s", out[0].reason);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_CANDIDATE);
    cr_assert_eq(out[1].kind, TW_CANDIDATE_CANDIDATE);

    /* without places the lower id comes first */
    it[0].has_place = it[1].has_place = false;
    rank_ok(&r, it, 2, NULL, out);
    cr_assert_eq(out[0].item_id, 1);
    cr_assert(fabs(out[0].score - out[1].score) < EPS);
}

Test(candidate, seen_after_the_reading_loses_a_little)
{
    tw_candidate_reading r = {.key = "6E5X1016523", .maker = "Yamaha", .has_time = true,
                              .time = 1000};
    tw_candidate_item it[2] = {
        {.item_id = 1, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha", .has_time = true,
         .time = 2000},
        {.item_id = 2, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha", .has_time = true,
         .time = 500},
    };
    tw_candidate_result out[2];
    rank_ok(&r, it, 2, NULL, out);
    cr_assert_eq(out[0].item_id, 2);
    cr_assert(fabs(out[0].score - out[1].score - 0.05) < EPS);
    cr_assert(strstr(out[1].reason, "last seen after the reading"), "%s", out[1].reason);
}

Test(candidate, only_plausible_one_is_probable)
{
    tw_candidate_reading r = {.key = "6E5X10?65?3", .maker = "Yamaha", .model = "F40"};
    const char *const other[] = {"6E5X2016523"};
    const char *const partial_match[] = {"6E5X1016529"};
    tw_candidate_item it[3] = {
        {.item_id = 1, .keys = other, .nkeys = 1, .maker = "Yamaha"},
        {.item_id = 2, .keys = partial_match, .nkeys = 1, .maker = "Yamaha"},
        {.item_id = 3, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha", .model = "F40"},
    };
    tw_candidate_result out[3];
    size_t np = rank_ok(&r, it, 3, NULL, out);
    cr_assert_eq(np, 1);
    cr_assert_eq(out[0].item_id, 3);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_PROBABLE);
    cr_assert_str_eq(tw_candidate_kind_name(out[0].kind), "probable link");
    cr_assert_eq(out[1].kind, TW_CANDIDATE_RULED_OUT);
    cr_assert_eq(out[2].kind, TW_CANDIDATE_RULED_OUT);
    cr_assert(strstr(out[1].reason, "known character differs"), "%s", out[1].reason);
}

Test(candidate, two_close_are_both_candidates)
{
    tw_candidate_reading r = {.key = "6E5X10165??", .maker = "Yamaha", .has_place = true,
                              .lat = 50.95, .lon = 1.86};
    const char *const k1[] = {"6E5X1016523"};
    const char *const k2[] = {"6E5X1016524"};
    tw_candidate_item it[2] = {
        {.item_id = 10, .keys = k1, .nkeys = 1, .maker = "Yamaha"},
        {.item_id = 11, .keys = k2, .nkeys = 1, .maker = "Yamaha", .has_place = true,
         .lat = 50.95, .lon = 1.86},
    };
    tw_candidate_result out[2];
    size_t np = rank_ok(&r, it, 2, NULL, out);
    cr_assert_eq(np, 2);
    cr_assert_eq(out[0].item_id, 11);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_CANDIDATE);
    cr_assert_eq(out[1].kind, TW_CANDIDATE_CANDIDATE);
    cr_assert(fabs(out[0].score - out[1].score - 0.05) < EPS);

    /* a higher cut-off leaves one plausible, but the next is only 0.05
     * below: not PROBABLE unless the margin allows it */
    tw_candidate_options o;
    tw_candidate_options_default(&o);
    o.cutoff = 0.8;
    np = rank_ok(&r, it, 2, &o, out);
    cr_assert_eq(np, 1);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_CANDIDATE);
    cr_assert_eq(out[1].kind, TW_CANDIDATE_IMPLAUSIBLE);
    o.margin = 0.04;
    np = rank_ok(&r, it, 2, &o, out);
    cr_assert_eq(np, 1);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_PROBABLE);
}

Test(candidate, no_candidates)
{
    tw_candidate_reading r = {.key = "6E5X10?65?3"};
    size_t np = 99;
    cr_assert_eq(tw_candidate_rank(&r, NULL, 0, NULL, NULL, &np, NULL), TW_CANDIDATE_OK);
    cr_assert_eq(np, 0);
    /* a reading of all but one '?' matches, but is never plausible */
    tw_candidate_reading r2 = {.key = "??????????3", .maker = "Yamaha"};
    tw_candidate_item it = {.item_id = 1, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha"};
    tw_candidate_result out[1];
    cr_assert_eq(rank_ok(&r2, &it, 1, NULL, out), 0);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_IMPLAUSIBLE);
    /* an item with no usable key is ruled out, not an error */
    const char *const bad[] = {"#!", NULL};
    tw_candidate_item it2 = {.item_id = 2, .keys = bad, .nkeys = 2};
    cr_assert_eq(rank_ok(&r, &it2, 1, NULL, out), 0);
    cr_assert_eq(out[0].kind, TW_CANDIDATE_RULED_OUT);
}

Test(candidate, best_key_of_an_item_counts)
{
    tw_candidate_reading r = {.key = "6E5X10?6523", .maker = "Yamaha"};
    const char *const keys[] = {"0P096282", "6E5X1016523"};
    tw_candidate_item it = {.item_id = 1, .keys = keys, .nkeys = 2, .maker = "Yamaha"};
    tw_candidate_result out[1];
    cr_assert_eq(rank_ok(&r, &it, 1, NULL, out), 1);
    cr_assert_eq(out[0].key_index, 1);
}

Test(candidate, long_inputs_are_bounded)
{
    char k64[65], k65[66];
    memset(k64, 'A', 64);
    k64[64] = 0;
    memset(k65, 'A', 65);
    k65[65] = 0;
    align_ok(k64, k64);
    tw_candidate_align a;
    cr_assert_not(tw_candidate_align_keys(k65, k64, &a));
    cr_assert_not(tw_candidate_align_keys(k64, k65, &a));

    const char *const keys[] = {k64, k65};
    tw_candidate_item it = {.item_id = 1, .keys = keys, .nkeys = 2};
    tw_candidate_reading r = {.key = k64};
    tw_candidate_result out[1];
    cr_assert_eq(rank_ok(&r, &it, 1, NULL, out), 1);
    cr_assert_eq(out[0].key_index, 0);

    r.key = k65;
    size_t np = 99;
    char err[TW_CANDIDATE_TEXT_MAX];
    cr_assert_eq(tw_candidate_rank(&r, &it, 1, NULL, out, &np, err), TW_CANDIDATE_ERR_KEY);
    cr_assert_eq(np, 0);
    cr_assert(strncmp(err, "reading key: ", 13) == 0 && strlen(err) > 13, "%s", err);
}

Test(candidate, bad_arguments_are_errors)
{
    tw_candidate_reading r = {.key = "6E5X1016523", .has_place = true, .lat = 91, .lon = 0};
    tw_candidate_item it = {.item_id = 1, .keys = yamaha_a, .nkeys = 1};
    tw_candidate_result out[1];
    size_t np;
    char err[TW_CANDIDATE_TEXT_MAX];
    cr_assert_eq(tw_candidate_rank(&r, &it, 1, NULL, out, &np, err), TW_CANDIDATE_ERR_PLACE);
    cr_assert_str_not_empty(err);
    r.has_place = false;
    it.has_place = true;
    it.lat = NAN;
    cr_assert_eq(tw_candidate_rank(&r, &it, 1, NULL, out, &np, err), TW_CANDIDATE_ERR_PLACE);
    it.has_place = false;
    tw_candidate_options o = {.cutoff = 1.5, .margin = 0.1};
    cr_assert_eq(tw_candidate_rank(&r, &it, 1, &o, out, &np, err), TW_CANDIDATE_ERR_ARG);
    o.cutoff = NAN;
    cr_assert_eq(tw_candidate_rank(&r, &it, 1, &o, out, &np, err), TW_CANDIDATE_ERR_ARG);
    r.key = "6E5:X";
    cr_assert_eq(tw_candidate_rank(&r, &it, 1, NULL, out, &np, err), TW_CANDIDATE_ERR_KEY);
    cr_assert_eq(tw_candidate_rank(NULL, &it, 1, NULL, out, &np, err), TW_CANDIDATE_ERR_ARG);
    it.keys = NULL;
    r.key = "6E5X1016523";
    cr_assert_eq(tw_candidate_rank(&r, &it, 1, NULL, out, &np, err), TW_CANDIDATE_ERR_ARG);
}

Test(candidate, separators_score_like_unreadable_characters)
{
    /* every reading character counts: the true serial (both '?' read as
     * removed hyphens) scores the same as an item recorded with the same
     * partial key, never more, and both stay candidates */
    tw_candidate_reading r = {.key = "6E5?X?1016523", .maker = "Yamaha"};
    const char *const same[] = {"6E5?X?1016523"};
    tw_candidate_item it[2] = {
        {.item_id = 1, .keys = yamaha_a, .nkeys = 1, .maker = "Yamaha"},
        {.item_id = 2, .keys = same, .nkeys = 1, .maker = "Yamaha"},
    };
    tw_candidate_result out[2];
    size_t np = rank_ok(&r, it, 2, NULL, out);
    cr_assert_eq(np, 2);
    double want = 0.60 * 11.0 / 13.0 + 0.15 + 0.10 * 0.5 + 0.10 * 0.5 + 0.05;
    cr_assert(fabs(out[0].score - want) < EPS, "%f vs %f", out[0].score, want);
    cr_assert(fabs(out[1].score - want) < EPS);
    cr_assert_eq(out[0].item_id, 1);
    cr_assert_str_eq(out[0].reason,
                     "11 of 11 characters agree (2 '?' read as removed separators), same "
                     "maker, model unknown, distance unknown");
    cr_assert_str_eq(out[1].reason,
                     "11 of 13 characters agree (2 unreadable), same maker, model unknown, "
                     "distance unknown");
    cr_assert_eq(out[0].kind, TW_CANDIDATE_CANDIDATE);
    cr_assert_eq(out[1].kind, TW_CANDIDATE_CANDIDATE);
}
