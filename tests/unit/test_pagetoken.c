/* tw_pagetoken: tokens round-trip, and anything else is refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "tw_pagetoken.h"

static const uint8_t KEY[] = "0123456789abcdef0123456789abcdef";

static void encode(const char *kind, const char *binding, const int64_t *v, int n, char *out)
{
    cr_assert_eq(tw_pagetoken_encode(KEY, 32, kind, binding, v, n, out), 0);
}

Test(pagetoken, round_trip)
{
    char t[TW_PAGETOKEN_MAX + 1];
    const int64_t v[] = {INT64_MIN, 42};
    encode("search", "k=6E5X", v, 2, t);
    int64_t got[2] = {0, 0};
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, t, "search", "k=6E5X", got, 2), 0);
    cr_assert_eq(got[0], INT64_MIN);
    cr_assert_eq(got[1], 42);
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, "", "search", "k=6E5X", got, 2), 1, "first page");
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, NULL, "search", "k=6E5X", got, 2), 1);
}

Test(pagetoken, another_binding_kind_key_or_count_is_refused)
{
    char t[TW_PAGETOKEN_MAX + 1];
    const int64_t v[] = {7};
    int64_t got[2] = {-1, -1};
    encode("events", "src=a", v, 1, t);
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, t, "events", "src=b", got, 1), -1, "other filters");
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, t, "search", "src=a", got, 1), -1, "other query");
    cr_assert_eq(tw_pagetoken_decode(KEY, 31, t, "events", "src=a", got, 1), -1, "other key");
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, t, "events", "src=a", got, 2), -1, "two values");
    cr_assert_eq(got[0], -1, "nothing written on refusal");
}

Test(pagetoken, edited_or_malformed_tokens_are_refused)
{
    char t[TW_PAGETOKEN_MAX + 1];
    const int64_t v[] = {7};
    int64_t got[1];
    encode("events", "", v, 1, t);
    char e[TW_PAGETOKEN_MAX + 1];
    for (size_t i = 0; i < strlen(t); i++) {
        strcpy(e, t);
        e[i] = e[i] == '0' ? '1' : '0';
        cr_assert_eq(tw_pagetoken_decode(KEY, 32, e, "events", "", got, 1), -1, "edit at %zu", i);
    }
    strcpy(e, t);
    e[strlen(e) - 1] = '\0';
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, e, "events", "", got, 1), -1, "odd length");
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, "zz", "events", "", got, 1), -1);
    char big[TW_PAGETOKEN_MAX + 3];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_assert_eq(tw_pagetoken_decode(KEY, 32, big, "events", "", got, 1), -1, "too long");
    cr_assert_eq(tw_pagetoken_encode(KEY, 32, "a|b", "", v, 1, e), -1, "kind with |");
    cr_assert_eq(tw_pagetoken_encode(KEY, 32, "x", "", v, TW_PAGETOKEN_VALUES + 1, e), -1);
}
