/* tw_recfile: length-delimited record files. */
#include <criterion/criterion.h>
#include <string.h>

#include "tw_recfile.h"

Test(recfile, round_trip_of_records_of_every_prefix_length)
{
    static uint8_t buf[300000];
    size_t sizes[] = {0, 1, 127, 128, 300, 16383, 16384, 200000};
    size_t len = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        len += tw_recfile_prefix(buf + len, sizes[i]);
        memset(buf + len, (int)i, sizes[i]);
        len += sizes[i];
    }
    cr_assert_lt(len, sizeof buf);
    size_t off = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        const uint8_t *rec;
        size_t rlen;
        cr_assert_eq(tw_recfile_next(buf, len, &off, &rec, &rlen), TW_RECFILE_RECORD);
        cr_assert_eq(rlen, sizes[i]);
        for (size_t k = 0; k < rlen; k++)
            cr_assert_eq(rec[k], (uint8_t)i);
    }
    const uint8_t *rec;
    size_t rlen;
    cr_assert_eq(tw_recfile_next(buf, len, &off, &rec, &rlen), TW_RECFILE_END);
    cr_assert_eq(off, len);
}

Test(recfile, prefix_bytes)
{
    uint8_t p[10];
    cr_assert_eq(tw_recfile_prefix(p, 1), 1);
    cr_assert_eq(p[0], 1);
    cr_assert_eq(tw_recfile_prefix(p, 300), 2);
    cr_assert_eq(p[0], 0xac);
    cr_assert_eq(p[1], 0x02);
}

Test(recfile, truncated_and_malformed_change_nothing)
{
    const uint8_t *rec = NULL;
    size_t rlen = 0, off = 0;
    const uint8_t cut[] = {0x05, 'a', 'b'};
    cr_assert_eq(tw_recfile_next(cut, sizeof cut, &off, &rec, &rlen), TW_RECFILE_TRUNCATED);
    cr_assert_eq(off, 0);
    cr_assert_null(rec);
    const uint8_t open_varint[] = {0x80, 0x80};
    cr_assert_eq(tw_recfile_next(open_varint, sizeof open_varint, &off, &rec, &rlen),
                 TW_RECFILE_TRUNCATED);
    const uint8_t eleven[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(tw_recfile_next(eleven, sizeof eleven, &off, &rec, &rlen), TW_RECFILE_BAD_LENGTH);
    uint8_t huge[10];
    size_t n = tw_recfile_prefix(huge, (size_t)TW_RECFILE_MAX_RECORD + 1);
    cr_assert_eq(tw_recfile_next(huge, n, &off, &rec, &rlen), TW_RECFILE_BAD_LENGTH);
    cr_assert_eq(off, 0);
    cr_assert(strstr(tw_recfile_status_text(TW_RECFILE_TRUNCATED), "truncated"));
}
