#include <criterion/criterion.h>

#include "tw_pbwalk.h"

Test(pbwalk, fields_of_every_wire_type)
{
    /* 1: varint 150; 2: "hi"; 3: fixed32; 4: fixed64 */
    static const uint8_t msg[] = {0x08, 0x96, 0x01, 0x12, 0x02, 'h', 'i', 0x1d, 1, 2, 3, 4,
                                  0x21, 1,    2,    3,    4,    5,   6,   7,    8};
    size_t pos = 0;
    tw_pb_field f;
    cr_assert_eq(tw_pb_next(msg, sizeof msg, &pos, &f), 1);
    cr_assert_eq(f.number, 1);
    cr_assert_eq(f.varint, 150);
    cr_assert_eq(tw_pb_next(msg, sizeof msg, &pos, &f), 1);
    cr_assert_eq(f.number, 2);
    cr_assert_eq(f.len, 2);
    cr_assert(f.data == msg + 5);
    cr_assert_eq(tw_pb_next(msg, sizeof msg, &pos, &f), 1);
    cr_assert_eq(f.wire_type, 5);
    cr_assert_eq(tw_pb_next(msg, sizeof msg, &pos, &f), 1);
    cr_assert_eq(f.wire_type, 1);
    cr_assert_eq(f.len, 8);
    cr_assert_eq(tw_pb_next(msg, sizeof msg, &pos, &f), 0);
}

Test(pbwalk, malformed)
{
    tw_pb_field f;
    size_t pos = 0;
    static const uint8_t truncated[] = {0x12, 0x05, 'a'};
    cr_assert_eq(tw_pb_next(truncated, sizeof truncated, &pos, &f), -1);
    pos = 0;
    static const uint8_t zero_field[] = {0x80, 0x00, 0x00}; /* field 0, padded varint */
    cr_assert_eq(tw_pb_next(zero_field, sizeof zero_field, &pos, &f), -1);
    pos = 0;
    static const uint8_t group[] = {0x0b};
    cr_assert_eq(tw_pb_next(group, sizeof group, &pos, &f), -1);
    pos = 0;
    static const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(tw_pb_next(long_varint, sizeof long_varint, &pos, &f), -1);
    pos = 0;
    static const uint8_t huge_len[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    cr_assert_eq(tw_pb_next(huge_len, sizeof huge_len, &pos, &f), -1);
}
