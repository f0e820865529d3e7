#include <criterion/criterion.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "tw_arena.h"

static int aligned(const void *p)
{
    return ((uintptr_t)p % alignof(max_align_t)) == 0;
}

Test(arena, allocations_are_aligned_and_distinct)
{
    tw_arena a;
    tw_arena_init(&a, 256);
    cr_assert_eq(tw_arena_allocated(&a), 0, "init allocates nothing");
    unsigned char *prev = NULL;
    for (size_t i = 0; i < 200; i++) {
        size_t n = i % 13;
        unsigned char *p = tw_arena_alloc(&a, n);
        cr_assert_not_null(p);
        cr_assert(aligned(p), "allocation %zu misaligned", i);
        cr_assert_neq(p, prev, "size %zu returned the previous pointer", n);
        memset(p, (int)i, n);
        prev = p;
    }
    tw_arena_free(&a);
    cr_assert_eq(tw_arena_allocated(&a), 0);
}

Test(arena, contents_survive_growth)
{
    tw_arena a;
    tw_arena_init(&a, 128);
    char *ptrs[100];
    for (int i = 0; i < 100; i++) {
        ptrs[i] = tw_arena_printf(&a, "item-%d-%s", i, "xxxxxxxxxxxxxxxx");
        cr_assert_not_null(ptrs[i]);
    }
    for (int i = 0; i < 100; i++) {
        char want[64];
        snprintf(want, sizeof want, "item-%d-%s", i, "xxxxxxxxxxxxxxxx");
        cr_assert_str_eq(ptrs[i], want);
    }
    cr_assert_gt(tw_arena_allocated(&a), 128 * 10, "several chunks were needed");
    tw_arena_free(&a);
}

Test(arena, large_allocations_get_their_own_chunk)
{
    tw_arena a;
    tw_arena_init(&a, 1024);
    char *small = tw_arena_alloc(&a, 16);
    cr_assert_not_null(small);
    size_t after_small = tw_arena_allocated(&a);
    char *big = tw_arena_alloc(&a, 100000);
    cr_assert_not_null(big);
    cr_assert(aligned(big));
    memset(big, 0x5a, 100000);
    cr_assert_geq(tw_arena_allocated(&a), after_small + 100000);
    /* The current chunk is still used for the next small allocation. */
    char *small2 = tw_arena_alloc(&a, 16);
    cr_assert_eq(small2, small + 16, "small allocations continue in the same chunk");
    tw_arena_free(&a);
}

Test(arena, reset_keeps_one_chunk)
{
    tw_arena a;
    tw_arena_init(&a, 512);
    for (int i = 0; i < 50; i++)
        cr_assert_not_null(tw_arena_alloc(&a, 100));
    cr_assert_not_null(tw_arena_alloc(&a, 1 << 20));
    size_t before = tw_arena_allocated(&a);
    tw_arena_reset(&a);
    size_t after = tw_arena_allocated(&a);
    cr_assert_lt(after, before);
    cr_assert_gt(after, 0, "one chunk is kept");
    cr_assert_lt(after, 1024, "only one 512-byte chunk is kept, got %zu", after);
    /* The kept chunk is reused without new mallocs. */
    cr_assert_not_null(tw_arena_alloc(&a, 100));
    cr_assert_eq(tw_arena_allocated(&a), after);
    tw_arena_reset(&a);
    tw_arena_free(&a);
    /* Usable again after free. */
    cr_assert_not_null(tw_arena_strdup(&a, "again"));
    tw_arena_free(&a);
}

Test(arena, calloc_and_copies)
{
    tw_arena a;
    tw_arena_init(&a, 0);
    int *z = tw_arena_calloc(&a, 100, sizeof(int));
    cr_assert_not_null(z);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(z[i], 0);
    cr_assert_null(tw_arena_calloc(&a, SIZE_MAX / 2, 4), "overflowing product is refused");
    cr_assert_null(tw_arena_alloc(&a, SIZE_MAX - 3), "overflowing size is refused");

    char *s = tw_arena_strdup(&a, "hello");
    cr_assert_str_eq(s, "hello");
    char *t = tw_arena_strndup(&a, "header-value-and-more", 12);
    cr_assert_str_eq(t, "header-value");
    char *u = tw_arena_strndup(&a, "ab", 10);
    cr_assert_str_eq(u, "ab");
    const unsigned char bytes[] = {0, 1, 2, 0, 4};
    unsigned char *d = tw_arena_memdup(&a, bytes, sizeof bytes);
    cr_assert_arr_eq(d, bytes, sizeof bytes);
    cr_assert_not_null(tw_arena_memdup(&a, NULL, 0));
    tw_arena_free(&a);
}

Test(arena, protobuf_allocator_returns_zeroed_memory)
{
    tw_arena a;
    tw_arena_init(&a, 1024);
    /* Dirty the chunk, then reset so the next allocations reuse it. */
    unsigned char *dirty = tw_arena_alloc(&a, 900);
    cr_assert_not_null(dirty);
    memset(dirty, 0xAA, 900);
    tw_arena_reset(&a);
    ProtobufCAllocator al = tw_arena_protobuf_allocator(&a);
    unsigned char *p = al.alloc(al.allocator_data, 512);
    cr_assert_not_null(p);
    for (int i = 0; i < 512; i++)
        cr_assert_eq(p[i], 0, "byte %d not zeroed", i);
    al.free(al.allocator_data, p); /* no-op */
    tw_arena_free(&a);
}

Test(arena, protobuf_unpack_into_arena)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "tidewatch.v1.IngestService";
    uint8_t buf[128];
    size_t n = grpc__health__v1__health_check_request__pack(&req, buf);

    tw_arena a;
    tw_arena_init(&a, 0);
    ProtobufCAllocator al = tw_arena_protobuf_allocator(&a);
    Grpc__Health__V1__HealthCheckRequest *got =
        grpc__health__v1__health_check_request__unpack(&al, n, buf);
    cr_assert_not_null(got);
    cr_assert_str_eq(got->service, "tidewatch.v1.IngestService");
    /* Malformed input fails cleanly and leaks nothing outside the arena. */
    const uint8_t bad[] = {0x0a, 0x7f, 'x'};
    cr_assert_null(grpc__health__v1__health_check_request__unpack(&al, sizeof bad, bad));
    tw_arena_free(&a); /* releases the message; LSan checks the rest */
}

Test(arena, zeroing_heap_allocator)
{
    ProtobufCAllocator *al = tw_protobuf_zeroing_allocator();
    cr_assert_not_null(al);
    cr_assert_eq(al, tw_protobuf_zeroing_allocator(), "one shared instance");
    unsigned char *p = al->alloc(al->allocator_data, 64);
    cr_assert_not_null(p);
    for (int i = 0; i < 64; i++)
        cr_assert_eq(p[i], 0);
    al->free(al->allocator_data, p);
    cr_assert_not_null(p = al->alloc(al->allocator_data, 0), "size 0 still yields a pointer");
    al->free(al->allocator_data, p);

    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    req.service = "svc";
    uint8_t buf[32];
    size_t n = grpc__health__v1__health_check_request__pack(&req, buf);
    Grpc__Health__V1__HealthCheckRequest *got =
        grpc__health__v1__health_check_request__unpack(al, n, buf);
    cr_assert_not_null(got);
    cr_assert_str_eq(got->service, "svc");
    grpc__health__v1__health_check_request__free_unpacked(got, al);
}

Test(arena, limit_refuses_growth_beyond_it)
{
    tw_arena a;
    tw_arena_init(&a, 1024);
    tw_arena_set_limit(&a, 8192);
    cr_assert_eq(tw_arena_limit_hit(&a), 0);
    size_t got = 0;
    while (tw_arena_alloc(&a, 100))
        got += 100;
    cr_assert(tw_arena_limit_hit(&a), "the failure is the limit's");
    cr_assert_leq(tw_arena_allocated(&a), 8192);
    cr_assert_geq(got, 8192 / 2, "most of the limit is usable (got %zu)", got);
    /* a large request beyond the limit fails at once */
    tw_arena_reset(&a);
    cr_assert_eq(tw_arena_limit_hit(&a), 0, "reset clears the flag");
    cr_assert_null(tw_arena_alloc(&a, 100000));
    cr_assert(tw_arena_limit_hit(&a));
    cr_assert_not_null(tw_arena_alloc(&a, 100), "small requests still fit");
    /* no limit */
    tw_arena_set_limit(&a, 0);
    cr_assert_not_null(tw_arena_alloc(&a, 100000));
    cr_assert_eq(tw_arena_limit_hit(&a), 0);
    tw_arena_free(&a);
}

Test(arena, limit_bounds_protobuf_unpacking)
{
    /* HealthCheckRequest has one string field (1): 2048 empty copies of
     * it in 4 KiB take at least 2048 * 16 bytes of strings plus slabs. */
    uint8_t msg[4096];
    for (size_t i = 0; i < sizeof msg; i += 2) {
        msg[i] = 0x0a;
        msg[i + 1] = 0x00;
    }
    tw_arena a;
    tw_arena_init(&a, 0);
    tw_arena_set_limit(&a, 16 * 1024);
    ProtobufCAllocator al = tw_arena_protobuf_allocator(&a);
    Grpc__Health__V1__HealthCheckRequest *m =
        grpc__health__v1__health_check_request__unpack(&al, sizeof msg, msg);
    cr_assert_null(m, "unpacking fails at the limit");
    cr_assert(tw_arena_limit_hit(&a));
    cr_assert_leq(tw_arena_allocated(&a), 16 * 1024);
    tw_arena_free(&a);
}
