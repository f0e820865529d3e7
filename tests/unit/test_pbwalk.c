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

/* ---- tw_pb_check ------------------------------------------------------------ */

#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "tidewatch/v1/records.pb-c.h"

/* A growing byte buffer for hand-made wire bytes. */
typedef struct buf {
    uint8_t b[1 << 16];
    size_t n;
} buf;

static void put(buf *w, const void *p, size_t n)
{
    if (n == 0)
        return;
    cr_assert(w->n + n <= sizeof w->b);
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void put_varint(buf *w, uint64_t v)
{
    do {
        uint8_t byte = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            byte |= 0x80;
        put(w, &byte, 1);
    } while (v);
}

/* Field `number` holding `n` bytes (a string or an embedded message). */
static void put_ld(buf *w, uint32_t number, const void *p, size_t n)
{
    put_varint(w, (uint64_t)number << 3 | 2);
    put_varint(w, n);
    put(w, p, n);
}

static void put_str(buf *w, uint32_t number, const char *s)
{
    put_ld(w, number, s, strlen(s));
}

static void put_msg(buf *w, uint32_t number, const buf *m)
{
    put_ld(w, number, m->b, m->n);
}

/* Record{source, source_ref, purchase{seller{name}, items[] {equipment}}}
 * with the equipment of item `odd` replaced by `odd_equipment`. */
static void record_with(buf *out, size_t nitems, size_t odd, const buf *odd_equipment)
{
    static buf seller, purchase, item, equipment;
    memset(&seller, 0, sizeof seller);
    memset(&purchase, 0, sizeof purchase);
    put_str(&seller, 2, "Boote GmbH");
    put_msg(&purchase, 1, &seller);
    for (size_t i = 0; i < nitems; i++) {
        memset(&item, 0, sizeof item);
        memset(&equipment, 0, sizeof equipment);
        put_varint(&equipment, 1 << 3 | 0);
        put_varint(&equipment, 1); /* kind ENGINE */
        put_str(&equipment, 2, "Yamaha");
        put_msg(&item, 1, i == odd && odd_equipment ? odd_equipment : &equipment);
        put_msg(&purchase, 3, &item);
    }
    memset(out, 0, sizeof *out);
    put_str(out, 1, "retailer.de.boote");
    put_str(out, 2, "ref-1");
    put_msg(out, 10, &purchase);
}

static const ProtobufCMessageDescriptor *RECORD = &tidewatch__v1__record__descriptor;

Test(pbcheck, a_clean_record)
{
    static buf r;
    record_with(&r, 3, SIZE_MAX, NULL);
    tw_pb_report rep;
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), 0);
    cr_assert_eq(rep.verdict, TW_PB_OK);
    cr_assert_str_eq(rep.path, "");
    /* record, purchase, seller, 3 items, 3 equipments */
    cr_assert_eq(rep.messages, 9);
    cr_assert_eq(rep.fields, 3 + 4 + 1 + 3 + 6);
    cr_assert_gt(rep.unpacked, 0);
    cr_assert_str_eq(tw_pb_verdict_name(rep.verdict), "ok");
}

Test(pbcheck, unknown_field_named_by_its_path)
{
    static buf eq, r;
    memset(&eq, 0, sizeof eq);
    put_str(&eq, 2, "Yamaha");
    put_varint(&eq, 99 << 3 | 0);
    put_varint(&eq, 1);
    record_with(&r, 3, 1, &eq);
    tw_pb_report rep;
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), 1);
    cr_assert_eq(rep.verdict, TW_PB_UNKNOWN_FIELD);
    cr_assert_str_eq(rep.path, "purchase.items[1].equipment");
    cr_assert_str_eq(rep.reason, "unknown field 99");
    cr_assert_eq(rep.number, 99);
    cr_assert_eq(rep.messages, 9, "the walk goes on after an unknown field");
    /* at the top level */
    put_varint(&r, 50 << 3 | 2);
    put_varint(&r, 0);
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), 1);
    cr_assert_str_eq(rep.path, "purchase.items[1].equipment", "the first one is reported");
}

Test(pbcheck, field_number_zero_is_malformed)
{
    static buf r, seller, purchase;
    record_with(&r, 1, SIZE_MAX, NULL);
    static const uint8_t zero[] = {0x80, 0x00, 0x01}; /* key 0 as a padded varint, value 1 */
    put(&r, zero, sizeof zero);
    tw_pb_report rep;
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), -1);
    cr_assert_eq(rep.verdict, TW_PB_MALFORMED);
    cr_assert_str_eq(rep.path, "");
    cr_assert_str_eq(rep.reason, "field number 0");
    cr_assert_eq(rep.offset, r.n - 3);
    /* nested */
    put_str(&seller, 2, "x");
    put(&seller, zero, sizeof zero);
    put_msg(&purchase, 1, &seller);
    memset(&r, 0, sizeof r);
    put_msg(&r, 10, &purchase);
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), -1);
    cr_assert_str_eq(rep.path, "purchase.seller");
    cr_assert_str_eq(tw_pb_verdict_name(rep.verdict), "malformed");
}

Test(pbcheck, malformed_bytes)
{
    tw_pb_report rep;
    static const uint8_t truncated[] = {0x0a, 0x05, 'a'};
    cr_assert_eq(tw_pb_check(RECORD, truncated, sizeof truncated, &rep), -1);
    cr_assert_eq(rep.verdict, TW_PB_MALFORMED);
    cr_assert(strstr(rep.reason, "truncated"), "%s", rep.reason);
    static const uint8_t group[] = {0x0b, 0x0c};
    cr_assert_eq(tw_pb_check(RECORD, group, sizeof group, &rep), -1);
    cr_assert(strstr(rep.reason, "group"), "%s", rep.reason);
    static const uint8_t wt7[] = {0x0f};
    cr_assert_eq(tw_pb_check(RECORD, wt7, sizeof wt7, &rep), -1);
    static const uint8_t long_key[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01};
    cr_assert_eq(tw_pb_check(RECORD, long_key, sizeof long_key, &rep), -1);
    cr_assert(strstr(rep.reason, "longer than 5 bytes"), "%s", rep.reason);
    static const uint8_t big_number[] = {0xf8, 0xff, 0xff, 0xff, 0x1f, 0x00}; /* 2^30-1 */
    cr_assert_eq(tw_pb_check(RECORD, big_number, sizeof big_number, &rep), -1);
    static const uint8_t long_varint[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    cr_assert_eq(tw_pb_check(RECORD, long_varint, sizeof long_varint, &rep), -1);
    cr_assert_eq(tw_pb_check(RECORD, NULL, 0, &rep), 0, "the empty message is fine");
}

Test(pbcheck, wrong_wire_type)
{
    static buf purchase, r;
    put_varint(&purchase, 3 << 3 | 0); /* items as a varint */
    put_varint(&purchase, 7);
    put_msg(&r, 10, &purchase);
    tw_pb_report rep;
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), -1);
    cr_assert_eq(rep.verdict, TW_PB_WRONG_TYPE);
    cr_assert_str_eq(rep.path, "purchase");
    cr_assert_str_eq(rep.reason, "field 3 (items) has wire type 0; its type needs 2");
}

Test(pbcheck, singular_message_given_twice)
{
    static buf seller, purchase, r;
    put_str(&seller, 2, "A");
    put_msg(&purchase, 1, &seller);
    put_msg(&purchase, 1, &seller);
    put_msg(&r, 10, &purchase);
    tw_pb_report rep;
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), -1);
    cr_assert_eq(rep.verdict, TW_PB_REPEATED_SINGULAR);
    cr_assert_str_eq(rep.path, "purchase");
    /* A oneof set twice: protobuf-c would drop the first (and an unknown
     * field in it) where protobuf merges: refused too. */
    memset(&purchase, 0, sizeof purchase);
    put_msg(&purchase, 1, &seller);
    memset(&r, 0, sizeof r);
    put_msg(&r, 10, &purchase);
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), 0);
    put_msg(&r, 10, &purchase);
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), -1);
    cr_assert_eq(rep.verdict, TW_PB_REPEATED_SINGULAR);
    cr_assert_str_eq(rep.path, "");
    cr_assert_str_eq(rep.reason, "field 10 (purchase): its oneof is set more than once");
    memset(&r, 0, sizeof r);
    put_msg(&r, 10, &purchase);
    put_ld(&r, 12, NULL, 0); /* then a seizure */
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), -1);
    cr_assert_eq(rep.verdict, TW_PB_REPEATED_SINGULAR);
    /* Scalars given twice: the last wins everywhere, fine. */
    memset(&r, 0, sizeof r);
    put_str(&r, 1, "a");
    put_str(&r, 1, "b");
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), 0);
}

Test(pbcheck, packed_repeated_scalars)
{
    /* google.protobuf.FileDescriptorProto.public_dependency: repeated int32 */
    const ProtobufCMessageDescriptor *d = &google__protobuf__file_descriptor_proto__descriptor;
    tw_pb_report rep;
    static const uint8_t packed[] = {0x52, 0x04, 0x01, 0x02, 0x96, 0x01};
    cr_assert_eq(tw_pb_check(d, packed, sizeof packed, &rep), 0);
    static const uint8_t unpacked[] = {0x50, 0x01, 0x50, 0x02};
    cr_assert_eq(tw_pb_check(d, unpacked, sizeof unpacked, &rep), 0);
    static const uint8_t cut[] = {0x52, 0x02, 0x01, 0x96};
    cr_assert_eq(tw_pb_check(d, cut, sizeof cut, &rep), -1);
    cr_assert(strstr(rep.reason, "packed"), "%s", rep.reason);
}

/* ---- the memory bound, against protobuf-c itself ------------------------------- */

typedef struct counting {
    size_t total;
} counting;

static void *count_alloc(void *data, size_t size)
{
    counting *c = data;
    c->total += ((size ? size : 1) + 15) & ~(size_t)15;
    return calloc(1, size ? size : 1);
}

static void count_free(void *data, void *p)
{
    (void)data;
    free(p);
}

/* What protobuf-c's unpack asks for, summed (frees ignored). */
static size_t unpacked_bytes(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    counting c = {0};
    ProtobufCAllocator a = {.alloc = count_alloc, .free = count_free, .allocator_data = &c};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, n, p);
    cr_assert_not_null(m, "protobuf-c unpacks it");
    protobuf_c_message_free_unpacked(m, &a);
    return c.total;
}

static void expect_bound(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    tw_pb_report rep;
    cr_assert_geq(tw_pb_check(d, p, n, &rep), 0);
    size_t real = unpacked_bytes(d, p, n);
    cr_assert_geq(rep.unpacked, real, "estimate %zu below protobuf-c's %zu", rep.unpacked, real);
    cr_assert_leq(rep.unpacked, 2 * real + 1024, "estimate %zu far above protobuf-c's %zu",
                  rep.unpacked, real);
}

Test(pbcheck, memory_bound_holds)
{
    static buf r, purchase, eq;
    record_with(&r, 1, SIZE_MAX, NULL);
    expect_bound(RECORD, r.b, r.n);
    record_with(&r, 400, SIZE_MAX, NULL);
    expect_bound(RECORD, r.b, r.n);
    /* the amplifier: thousands of empty items (two bytes each) */
    for (size_t i = 0; i < 20000; i++)
        put_ld(&purchase, 3, NULL, 0);
    memset(&r, 0, sizeof r);
    put_msg(&r, 10, &purchase);
    expect_bound(RECORD, r.b, r.n);
    tw_pb_report rep;
    cr_assert_eq(tw_pb_check(RECORD, r.b, r.n, &rep), 0);
    cr_assert_gt(rep.unpacked, 40 * r.n / 2, "about 40 bytes of struct and slab per 2 wire bytes");
    /* unknown fields are copied */
    put_varint(&eq, 77 << 3 | 2);
    put_varint(&eq, 1000);
    for (int i = 0; i < 1000; i++)
        put(&eq, "x", 1);
    record_with(&r, 2, 0, &eq);
    expect_bound(RECORD, r.b, r.n);
    /* many strings (each copied, the last kept) */
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 500; i++)
        put_str(&r, 2, "a reference");
    expect_bound(RECORD, r.b, r.n);
}
