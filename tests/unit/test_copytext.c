/* tw_copytext: COPY text rows. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "tw_copytext.h"

static void expect(tw_copytext *b, const char *want)
{
    cr_assert_not(b->failed);
    cr_assert_eq(b->len, strlen(want), "got %.*s", (int)b->len, b->data);
    cr_assert_eq(memcmp(b->data, want, b->len), 0, "got %.*s", (int)b->len, b->data);
}

Test(copytext, columns_are_escaped_and_nulls_are_marked)
{
    tw_copytext b = {0};
    tw_copytext_int(&b, -42);
    tw_copytext_str(&b, "tab\there\\back\nline\rcr");
    tw_copytext_str(&b, NULL);
    tw_copytext_bool(&b, true);
    tw_copytext_id(&b, 0);
    tw_copytext_id(&b, 7);
    tw_copytext_f64(&b, true, 0.1);
    tw_copytext_f64(&b, true, NAN);
    tw_copytext_f64(&b, false, 1);
    tw_copytext_end(&b);
    tw_copytext_str(&b, "");
    tw_copytext_end(&b);
    expect(&b, "-42\ttab\\there\\\\back\\nline\\rcr\t\\N\tt\t\\N\t7\t0.10000000000000001\t\\N\t\\N\n"
               "\n");
    cr_assert_eq(b.rows, 2);
    tw_copytext_free(&b);
}

Test(copytext, times_are_utc_with_microseconds_and_out_of_range_is_null)
{
    tw_copytext b = {0};
    tw_copytext_time(&b, true, INT64_C(1700000000123456));
    tw_copytext_time(&b, true, -1);
    tw_copytext_time(&b, false, 0);
    tw_copytext_time(&b, true, INT64_C(400000000000000000));
    tw_copytext_end(&b);
    expect(&b, "2023-11-14 22:13:20.123456+00\t1969-12-31 23:59:59.999999+00\t\\N\t\\N\n");
    tw_copytext_free(&b);
}

Test(copytext, reset_keeps_nothing_of_the_rows)
{
    tw_copytext b = {0};
    tw_copytext_int(&b, 1);
    tw_copytext_end(&b);
    tw_copytext_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.rows, 0);
    tw_copytext_int(&b, 3);
    tw_copytext_end(&b);
    expect(&b, "3\n");
    tw_copytext_free(&b);
}

Test(copytext, utf8_check)
{
    cr_assert(tw_copytext_utf8("Dunkerque — Gravelines"));
    cr_assert(tw_copytext_utf8(NULL));
    cr_assert_not(tw_copytext_utf8("bad \xff byte"));
    cr_assert_not(tw_copytext_utf8("cut \xc3"));
}
