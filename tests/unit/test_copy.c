#include <criterion/criterion.h>
#include <string.h>

#include "tw_copy.h"

Test(copy, header_row_and_trailer)
{
    tw_copy c = {0};
    cr_assert_eq(tw_copy_begin(&c), 0);
    cr_assert_eq(c.len, 19);
    cr_assert(memcmp(c.data, "PGCOPY\n\377\r\n\0", 11) == 0);
    tw_copy_row(&c, 2);
    tw_copy_int4(&c, 258);
    tw_copy_text(&c, "ab");
    cr_assert_eq(tw_copy_end(&c), 0);
    static const uint8_t want[] = {0, 2, 0, 0, 0, 4, 0, 0, 1, 2, 0, 0, 0, 2, 'a', 'b', 0xff, 0xff};
    cr_assert_eq(c.len, 19 + sizeof want);
    cr_assert(memcmp(c.data + 19, want, sizeof want) == 0);
    tw_copy_free(&c);
}

Test(copy, null_and_timestamp)
{
    tw_copy c = {0};
    cr_assert_eq(tw_copy_begin(&c), 0);
    tw_copy_row(&c, 2);
    tw_copy_text(&c, NULL);
    tw_copy_timestamptz(&c, 946684801); /* one second after 2000-01-01 */
    cr_assert_eq(tw_copy_end(&c), 0);
    static const uint8_t want[] = {0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 8,
                                   0, 0, 0,    0,    0,    0x0f, 0x42, 0x40};
    cr_assert(memcmp(c.data + 19, want, sizeof want) == 0);
    tw_copy_free(&c);
}

Test(copy, wrong_field_count_fails)
{
    tw_copy c = {0};
    cr_assert_eq(tw_copy_begin(&c), 0);
    tw_copy_row(&c, 2);
    tw_copy_int2(&c, 1);
    cr_assert_neq(tw_copy_end(&c), 0, "a row with too few fields");
    cr_assert_eq(tw_copy_begin(&c), 0, "begin resets");
    tw_copy_row(&c, 1);
    tw_copy_int2(&c, 1);
    tw_copy_int2(&c, 2);
    cr_assert_neq(tw_copy_end(&c), 0, "a row with too many fields");
    tw_copy_free(&c);
}

Test(copy, arrays)
{
    tw_copy c = {0};
    cr_assert_eq(tw_copy_begin(&c), 0);
    const char *items[] = {"A", "BC"};
    tw_copy_row(&c, 2);
    tw_copy_text_array(&c, items, 2);
    tw_copy_text_array(&c, NULL, 0);
    cr_assert_eq(tw_copy_end(&c), 0);
    /* field length: 20 header bytes + (4+1) + (4+2) */
    const uint8_t *p = c.data + 19 + 2;
    cr_assert_eq((p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]), 31);
    tw_copy_free(&c);
}
