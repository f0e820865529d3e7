/* Unit tests for tw_grpc_wire: message reassembly, grpc-timeout,
 * grpc-message percent-encoding, status names, base64 and gzip. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tw_grpc_wire.h"

/* ---- Helpers ----------------------------------------------------------- */

#define MAX_MSGS 64

typedef struct {
    int compressed;
    size_t len;
    uint8_t *data;
    const uint8_t *ptr; /* the pointer the callback saw */
} msg;

typedef struct {
    msg msgs[MAX_MSGS];
    size_t count;
    size_t abort_at; /* abort when delivering message number abort_at (1-based); 0 = never */
} collector;

static int collect(void *arg, int compressed, const uint8_t *data, size_t len)
{
    collector *c = arg;
    cr_assert_not_null(data, "data must be a valid pointer even for empty messages");
    cr_assert_lt(c->count, MAX_MSGS);
    msg *m = &c->msgs[c->count++];
    m->compressed = compressed;
    m->len = len;
    m->ptr = data;
    m->data = malloc(len ? len : 1);
    cr_assert_not_null(m->data);
    if (len)
        memcpy(m->data, data, len);
    return c->abort_at && c->count == c->abort_at ? 1 : 0;
}

static void collector_free(collector *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->msgs[i].data);
    c->count = 0;
}

/* Append one framed message to buf at *off. */
static void frame(uint8_t *buf, size_t *off, uint8_t flag, const void *payload, uint32_t len)
{
    tw_grpc_prefix_write(buf + *off, flag, len);
    buf[*off] = flag; /* allow odd flag values for pass-through tests */
    *off += TW_GRPC_PREFIX_LEN;
    if (len)
        memcpy(buf + *off, payload, len);
    *off += len;
}

typedef struct {
    int compressed;
    const char *data;
    size_t len;
} expect;

static void check_msgs(const collector *c, const expect *e, size_t n)
{
    cr_assert_eq(c->count, n, "delivered %zu messages, expected %zu", c->count, n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(c->msgs[i].compressed, e[i].compressed, "message %zu flag", i);
        cr_assert_eq(c->msgs[i].len, e[i].len, "message %zu length", i);
        cr_assert(memcmp(c->msgs[i].data, e[i].data, e[i].len) == 0, "message %zu bytes", i);
    }
}

/* A buffer of four messages: plain, empty, compressed, plain. */
static size_t sample_stream(uint8_t *buf, expect *e)
{
    size_t off = 0;
    e[0] = (expect){0, "hello", 5};
    e[1] = (expect){0, "", 0};
    e[2] = (expect){1, "\x1f\x8b\x00zz", 5};
    e[3] = (expect){0, "the quick brown fox jumps", 25};
    for (int i = 0; i < 4; i++)
        frame(buf, &off, (uint8_t)e[i].compressed, e[i].data, (uint32_t)e[i].len);
    return off;
}

/* ---- Status names ------------------------------------------------------ */

Test(grpc_wire, status_names)
{
    static const char *names[] = {"OK",
                                  "CANCELLED",
                                  "UNKNOWN",
                                  "INVALID_ARGUMENT",
                                  "DEADLINE_EXCEEDED",
                                  "NOT_FOUND",
                                  "ALREADY_EXISTS",
                                  "PERMISSION_DENIED",
                                  "RESOURCE_EXHAUSTED",
                                  "FAILED_PRECONDITION",
                                  "ABORTED",
                                  "OUT_OF_RANGE",
                                  "UNIMPLEMENTED",
                                  "INTERNAL",
                                  "UNAVAILABLE",
                                  "DATA_LOSS",
                                  "UNAUTHENTICATED"};
    for (int i = 0; i <= 16; i++)
        cr_assert_str_eq(tw_grpc_status_name(i), names[i]);
    cr_assert_str_eq(tw_grpc_status_name(TW_GRPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    cr_assert_str_eq(tw_grpc_status_name(-1), "UNKNOWN");
    cr_assert_str_eq(tw_grpc_status_name(17), "UNKNOWN");
    cr_assert_str_eq(tw_grpc_status_name(1000), "UNKNOWN");
}

/* ---- Reassembly -------------------------------------------------------- */

Test(grpc_wire, prefix_write)
{
    uint8_t p[TW_GRPC_PREFIX_LEN];
    tw_grpc_prefix_write(p, 0, 0x01020304u);
    cr_assert(memcmp(p, "\x00\x01\x02\x03\x04", 5) == 0);
    tw_grpc_prefix_write(p, 7, 0xFFFFFFFFu);
    cr_assert(memcmp(p, "\x01\xff\xff\xff\xff", 5) == 0);
}

Test(grpc_wire, whole_buffer_zero_copy)
{
    uint8_t buf[256];
    expect e[4];
    size_t n = sample_stream(buf, e);
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, TW_GRPC_DEFAULT_MAX_MESSAGE);
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf, n, collect, &c), TW_GRPC_DECODE_OK);
    check_msgs(&c, e, 4);
    /* Non-empty messages inside the input are delivered in place. */
    cr_assert_eq(c.msgs[0].ptr, buf + 5);
    cr_assert_eq(c.msgs[3].ptr, buf + n - 25);
    cr_assert(tw_grpc_decoder_idle(&d));
    cr_assert_null(d.buf);
    tw_grpc_decoder_free(&d);
    collector_free(&c);
}

Test(grpc_wire, split_at_every_boundary)
{
    uint8_t buf[256];
    expect e[4];
    size_t n = sample_stream(buf, e);
    for (size_t split = 0; split <= n; split++) {
        collector c = {0};
        tw_grpc_decoder d;
        tw_grpc_decoder_init(&d, 1024);
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf, split, collect, &c), TW_GRPC_DECODE_OK);
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf + split, n - split, collect, &c),
                     TW_GRPC_DECODE_OK, "split %zu", split);
        check_msgs(&c, e, 4);
        cr_assert(tw_grpc_decoder_idle(&d), "split %zu", split);
        tw_grpc_decoder_free(&d);
        collector_free(&c);
    }
}

Test(grpc_wire, split_in_three_pieces)
{
    uint8_t buf[256];
    expect e[4];
    size_t n = sample_stream(buf, e);
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            collector c = {0};
            tw_grpc_decoder d;
            tw_grpc_decoder_init(&d, 1024);
            cr_assert_eq(tw_grpc_decoder_feed(&d, buf, a, collect, &c), TW_GRPC_DECODE_OK);
            cr_assert_eq(tw_grpc_decoder_feed(&d, buf + a, b - a, collect, &c), TW_GRPC_DECODE_OK);
            cr_assert_eq(tw_grpc_decoder_feed(&d, buf + b, n - b, collect, &c), TW_GRPC_DECODE_OK);
            check_msgs(&c, e, 4);
            cr_assert(tw_grpc_decoder_idle(&d));
            tw_grpc_decoder_free(&d);
            collector_free(&c);
        }
    }
}

Test(grpc_wire, one_byte_at_a_time)
{
    uint8_t buf[256];
    expect e[4];
    size_t n = sample_stream(buf, e);
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, 1024);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf + i, 1, collect, &c), TW_GRPC_DECODE_OK);
        /* Idle exactly at message boundaries. */
        size_t boundary = 0;
        int at_boundary = 0;
        for (int k = 0; k < 4; k++) {
            boundary += TW_GRPC_PREFIX_LEN + e[k].len;
            if (boundary == i + 1)
                at_boundary = 1;
        }
        cr_assert_eq(tw_grpc_decoder_idle(&d), at_boundary, "after byte %zu", i);
    }
    check_msgs(&c, e, 4);
    /* Split payloads were assembled in the decoder's buffer, not in place. */
    cr_assert(c.msgs[3].ptr < buf || c.msgs[3].ptr >= buf + n);
    tw_grpc_decoder_free(&d);
    collector_free(&c);
}

Test(grpc_wire, large_message_random_splits)
{
    size_t plen = 300000;
    uint8_t *payload = malloc(plen);
    uint8_t *buf = malloc(plen + 2 * TW_GRPC_PREFIX_LEN + 3);
    cr_assert(payload && buf);
    uint32_t r = 12345;
    for (size_t i = 0; i < plen; i++) {
        r = r * 1103515245u + 12345u;
        payload[i] = (uint8_t)(r >> 16);
    }
    size_t n = 0;
    frame(buf, &n, 0, payload, (uint32_t)plen);
    frame(buf, &n, 1, "abc", 3);
    for (int round = 0; round < 20; round++) {
        collector c = {0};
        tw_grpc_decoder d;
        tw_grpc_decoder_init(&d, TW_GRPC_DEFAULT_MAX_MESSAGE);
        size_t off = 0;
        while (off < n) {
            r = r * 1103515245u + 12345u;
            size_t chunk = 1 + (r >> 8) % 40000;
            if (chunk > n - off)
                chunk = n - off;
            cr_assert_eq(tw_grpc_decoder_feed(&d, buf + off, chunk, collect, &c), TW_GRPC_DECODE_OK);
            off += chunk;
        }
        cr_assert_eq(c.count, 2);
        cr_assert_eq(c.msgs[0].len, plen);
        cr_assert(memcmp(c.msgs[0].data, payload, plen) == 0);
        cr_assert_eq(c.msgs[1].compressed, 1);
        cr_assert_eq(c.msgs[1].len, 3);
        cr_assert(tw_grpc_decoder_idle(&d));
        tw_grpc_decoder_free(&d);
        collector_free(&c);
    }
    free(payload);
    free(buf);
}

Test(grpc_wire, zero_length_messages)
{
    uint8_t buf[64];
    size_t n = 0;
    frame(buf, &n, 0, NULL, 0);
    frame(buf, &n, 1, NULL, 0);
    frame(buf, &n, 0, NULL, 0);
    expect e[3] = {{0, "", 0}, {1, "", 0}, {0, "", 0}};
    for (size_t split = 0; split <= n; split++) {
        collector c = {0};
        tw_grpc_decoder d;
        tw_grpc_decoder_init(&d, 0); /* max_len 0 still accepts empty messages */
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf, split, collect, &c), TW_GRPC_DECODE_OK);
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf + split, n - split, collect, &c),
                     TW_GRPC_DECODE_OK);
        check_msgs(&c, e, 3);
        cr_assert(tw_grpc_decoder_idle(&d));
        tw_grpc_decoder_free(&d);
        collector_free(&c);
    }
}

/* Pause after the second message, as a paused call does. */
static int collect_pause_at_2(void *arg, int compressed, const uint8_t *data, size_t len)
{
    collector *c = arg;
    collect(arg, compressed, data, len);
    return c->count == 2 ? TW_GRPC_MESSAGE_PAUSE : 0;
}

Test(grpc_wire, feed_some_pauses_between_messages)
{
    uint8_t buf[256];
    size_t n = 0;
    frame(buf, &n, 0, "one", 3);
    frame(buf, &n, 0, "two", 3);
    size_t after_two = n;
    frame(buf, &n, 0, "three", 5);
    frame(buf, &n, 0, "four", 4);
    /* Split the stream inside the second message's payload as well. */
    for (size_t split = 0; split <= after_two; split++) {
        collector c = {0};
        tw_grpc_decoder d;
        tw_grpc_decoder_init(&d, 1024);
        size_t used = 99, total = 0;
        tw_grpc_decode_result r =
            tw_grpc_decoder_feed_some(&d, buf, split, collect_pause_at_2, &c, &used);
        if (split < after_two) {
            cr_assert_eq(r, TW_GRPC_DECODE_OK);
            cr_assert_eq(used, split);
            total = split;
            r = tw_grpc_decoder_feed_some(&d, buf + split, n - split, collect_pause_at_2, &c,
                                          &used);
            total += used;
        } else {
            total = used;
        }
        cr_assert_eq(r, TW_GRPC_DECODE_PAUSED, "split %zu", split);
        cr_assert_eq(total, after_two, "stops right after the second message (split %zu)", split);
        cr_assert_eq(c.count, 2);
        cr_assert(tw_grpc_decoder_idle(&d), "paused between messages, not failed");
        cr_assert_eq(tw_grpc_decoder_pending(&d), 0);
        /* The rest goes on from where it stopped. */
        r = tw_grpc_decoder_feed_some(&d, buf + after_two, n - after_two, collect_pause_at_2, &c,
                                      &used);
        cr_assert_eq(r, TW_GRPC_DECODE_OK);
        cr_assert_eq(used, n - after_two);
        cr_assert_eq(c.count, 4);
        cr_assert_eq(c.msgs[2].len, 5);
        cr_assert(memcmp(c.msgs[3].data, "four", 4) == 0);
        tw_grpc_decoder_free(&d);
        collector_free(&c);
    }
}

Test(grpc_wire, plain_feed_treats_pause_as_abort)
{
    uint8_t buf[64];
    size_t n = 0;
    frame(buf, &n, 0, "one", 3);
    frame(buf, &n, 0, "two", 3);
    frame(buf, &n, 0, "six", 3);
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, 1024);
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf, n, collect_pause_at_2, &c), TW_GRPC_DECODE_ABORTED);
    cr_assert_eq(c.count, 2);
    tw_grpc_decoder_free(&d);
    collector_free(&c);
}

/* A prefix announcing 4 MiB costs memory only as the bytes arrive. */
Test(grpc_wire, buffer_follows_received_bytes_not_the_announced_length)
{
    const size_t want = 4u << 20;
    uint8_t prefix[TW_GRPC_PREFIX_LEN];
    tw_grpc_prefix_write(prefix, 0, (uint32_t)want);
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, want);
    cr_assert_eq(tw_grpc_decoder_feed(&d, prefix, sizeof prefix, collect, &c), TW_GRPC_DECODE_OK);
    cr_assert_eq(tw_grpc_decoder_pending(&d), TW_GRPC_PREFIX_LEN);
    cr_assert_eq(tw_grpc_decoder_allocated(&d), 0, "nothing allocated for a bare prefix");

    static uint8_t chunk[10000];
    size_t have = 0;
    while (have < want) {
        size_t k = want - have < sizeof chunk ? want - have : sizeof chunk;
        memset(chunk, (int)(have & 0xff), k);
        cr_assert_eq(tw_grpc_decoder_feed(&d, chunk, k, collect, &c), TW_GRPC_DECODE_OK);
        have += k;
        if (have < want) {
            cr_assert_eq(tw_grpc_decoder_pending(&d), TW_GRPC_PREFIX_LEN + have);
            size_t alloc = tw_grpc_decoder_allocated(&d);
            cr_assert_geq(alloc, have);
            cr_assert_leq(alloc, 2 * have + TW_GRPC_DECODER_INITIAL_CAP,
                          "%zu bytes allocated for %zu received", alloc, have);
        }
    }
    cr_assert_eq(c.count, 1);
    cr_assert_eq(c.msgs[0].len, want);
    cr_assert_eq(c.msgs[0].data[0], 0);
    cr_assert_eq(c.msgs[0].data[want - 1], (uint8_t)((want - 1) / sizeof chunk * sizeof chunk));
    cr_assert_eq(tw_grpc_decoder_pending(&d), 0);
    cr_assert_eq(tw_grpc_decoder_allocated(&d), 0);
    tw_grpc_decoder_free(&d);
    collector_free(&c);
}

Test(grpc_wire, empty_feed)
{
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, 10);
    cr_assert_eq(tw_grpc_decoder_feed(&d, NULL, 0, collect, &c), TW_GRPC_DECODE_OK);
    cr_assert_eq(c.count, 0);
    cr_assert(tw_grpc_decoder_idle(&d));
    tw_grpc_decoder_free(&d);
}

Test(grpc_wire, oversize_is_sticky)
{
    uint8_t buf[64];
    size_t n = 0;
    frame(buf, &n, 0, "ok", 2);
    tw_grpc_prefix_write(buf + n, 0, 11); /* max_len + 1 */
    n += TW_GRPC_PREFIX_LEN;
    memset(buf + n, 'x', 11);
    n += 11;

    /* Whole buffer: the first message is delivered, then OVERSIZE. */
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, 10);
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf, n, collect, &c), TW_GRPC_DECODE_OVERSIZE);
    cr_assert_eq(c.count, 1);
    cr_assert_eq(c.msgs[0].len, 2);
    cr_assert_not(tw_grpc_decoder_idle(&d));
    /* Sticky: later feeds, even valid ones, fail the same way. */
    uint8_t good[8];
    size_t gn = 0;
    frame(good, &gn, 0, "a", 1);
    cr_assert_eq(tw_grpc_decoder_feed(&d, good, gn, collect, &c), TW_GRPC_DECODE_OVERSIZE);
    cr_assert_eq(tw_grpc_decoder_feed(&d, NULL, 0, collect, &c), TW_GRPC_DECODE_OVERSIZE);
    cr_assert_eq(c.count, 1);
    cr_assert_null(d.buf, "nothing is allocated for a refused message");
    tw_grpc_decoder_free(&d);
    collector_free(&c);

    /* Byte at a time: detected as soon as the prefix is complete. */
    tw_grpc_decoder_init(&d, 10);
    size_t i;
    tw_grpc_decode_result r = TW_GRPC_DECODE_OK;
    for (i = 0; i < n; i++) {
        r = tw_grpc_decoder_feed(&d, buf + i, 1, collect, &c);
        if (r != TW_GRPC_DECODE_OK)
            break;
    }
    cr_assert_eq(r, TW_GRPC_DECODE_OVERSIZE);
    cr_assert_eq(i, 7 + TW_GRPC_PREFIX_LEN - 1, "failed at byte %zu", i);
    cr_assert_eq(c.count, 1);
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf + i + 1, 1, collect, &c), TW_GRPC_DECODE_OVERSIZE);
    tw_grpc_decoder_free(&d);
    collector_free(&c);
}

Test(grpc_wire, oversize_huge_prefix)
{
    /* A 4 GiB announcement must be refused before any allocation. */
    uint8_t p[TW_GRPC_PREFIX_LEN];
    tw_grpc_prefix_write(p, 0, UINT32_MAX);
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, TW_GRPC_DEFAULT_MAX_MESSAGE);
    cr_assert_eq(tw_grpc_decoder_feed(&d, p, 3, collect, &c), TW_GRPC_DECODE_OK);
    cr_assert_eq(tw_grpc_decoder_feed(&d, p + 3, 2, collect, &c), TW_GRPC_DECODE_OVERSIZE);
    cr_assert_null(d.buf);
    cr_assert_eq(c.count, 0);
    tw_grpc_decoder_free(&d);
}

Test(grpc_wire, exactly_max_len_accepted)
{
    uint8_t buf[64];
    size_t n = 0;
    frame(buf, &n, 0, "0123456789", 10);
    expect e[1] = {{0, "0123456789", 10}};
    for (size_t split = 0; split <= n; split++) {
        collector c = {0};
        tw_grpc_decoder d;
        tw_grpc_decoder_init(&d, 10);
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf, split, collect, &c), TW_GRPC_DECODE_OK);
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf + split, n - split, collect, &c),
                     TW_GRPC_DECODE_OK);
        check_msgs(&c, e, 1);
        tw_grpc_decoder_free(&d);
        collector_free(&c);
    }
    /* And one byte less of max_len refuses it. */
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, 9);
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf, n, collect, &c), TW_GRPC_DECODE_OVERSIZE);
    cr_assert_eq(c.count, 0);
    tw_grpc_decoder_free(&d);
}

Test(grpc_wire, compressed_flag_passthrough)
{
    uint8_t buf[64];
    size_t n = 0;
    frame(buf, &n, 0, "a", 1);
    frame(buf, &n, 1, "b", 1);
    frame(buf, &n, 0x80, "c", 1); /* reserved bits: reported as compressed */
    frame(buf, &n, 0xFF, "", 0);
    expect e[4] = {{0, "a", 1}, {1, "b", 1}, {1, "c", 1}, {1, "", 0}};
    for (size_t split = 0; split <= n; split++) {
        collector c = {0};
        tw_grpc_decoder d;
        tw_grpc_decoder_init(&d, 10);
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf, split, collect, &c), TW_GRPC_DECODE_OK);
        cr_assert_eq(tw_grpc_decoder_feed(&d, buf + split, n - split, collect, &c),
                     TW_GRPC_DECODE_OK);
        check_msgs(&c, e, 4);
        tw_grpc_decoder_free(&d);
        collector_free(&c);
    }
}

Test(grpc_wire, callback_abort)
{
    uint8_t buf[256];
    expect e[4];
    size_t n = sample_stream(buf, e);
    for (size_t at = 1; at <= 4; at++) {
        for (size_t split = 0; split <= n; split++) {
            collector c = {.abort_at = at};
            tw_grpc_decoder d;
            tw_grpc_decoder_init(&d, 1024);
            tw_grpc_decode_result r1 = tw_grpc_decoder_feed(&d, buf, split, collect, &c);
            tw_grpc_decode_result r2 = tw_grpc_decoder_feed(&d, buf + split, n - split, collect, &c);
            cr_assert(r1 == TW_GRPC_DECODE_ABORTED || r2 == TW_GRPC_DECODE_ABORTED);
            cr_assert(r1 == TW_GRPC_DECODE_OK || r1 == TW_GRPC_DECODE_ABORTED);
            /* The aborting message was delivered, none after it. */
            check_msgs(&c, e, at);
            cr_assert_eq(tw_grpc_decoder_feed(&d, buf, n, collect, &c), TW_GRPC_DECODE_ABORTED);
            cr_assert_eq(c.count, at);
            cr_assert_not(tw_grpc_decoder_idle(&d));
            tw_grpc_decoder_free(&d);
            collector_free(&c);
        }
    }
}

Test(grpc_wire, decoder_idle)
{
    uint8_t buf[64];
    size_t n = 0;
    frame(buf, &n, 0, "abcdef", 6);
    collector c = {0};
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, 100);
    cr_assert(tw_grpc_decoder_idle(&d));
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf, 3, collect, &c), TW_GRPC_DECODE_OK);
    cr_assert_not(tw_grpc_decoder_idle(&d), "partial prefix");
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf + 3, 4, collect, &c), TW_GRPC_DECODE_OK);
    cr_assert_not(tw_grpc_decoder_idle(&d), "partial payload");
    cr_assert_not_null(d.buf);
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf + 7, n - 7, collect, &c), TW_GRPC_DECODE_OK);
    cr_assert(tw_grpc_decoder_idle(&d));
    cr_assert_eq(c.count, 1);
    /* Freeing mid-message releases the buffer (checked by ASan/LSan). */
    cr_assert_eq(tw_grpc_decoder_feed(&d, buf, 8, collect, &c), TW_GRPC_DECODE_OK);
    cr_assert_not(tw_grpc_decoder_idle(&d));
    tw_grpc_decoder_free(&d);
    cr_assert_null(d.buf);
    collector_free(&c);
}

/* ---- grpc-timeout ------------------------------------------------------ */

static int64_t parse_ok(const char *s)
{
    int64_t ns = -42;
    cr_assert_eq(tw_grpc_timeout_parse(s, strlen(s), &ns), 0, "parse \"%s\"", s);
    return ns;
}

static void parse_bad(const char *s)
{
    int64_t ns = -42;
    cr_assert_eq(tw_grpc_timeout_parse(s, strlen(s), &ns), -1, "\"%s\" should be refused", s);
    cr_assert_eq(ns, -42, "output untouched on error");
}

Test(grpc_wire, timeout_units)
{
    cr_assert_eq(parse_ok("1H"), 3600LL * 1000000000LL);
    cr_assert_eq(parse_ok("1M"), 60LL * 1000000000LL);
    cr_assert_eq(parse_ok("1S"), 1000000000LL);
    cr_assert_eq(parse_ok("1m"), 1000000LL);
    cr_assert_eq(parse_ok("1u"), 1000LL);
    cr_assert_eq(parse_ok("1n"), 1LL);
    cr_assert_eq(parse_ok("100m"), 100000000LL);
    cr_assert_eq(parse_ok("0S"), 0);
    cr_assert_eq(parse_ok("25M"), 1500LL * 1000000000LL);
}

Test(grpc_wire, timeout_digits)
{
    cr_assert_eq(parse_ok("99999999n"), 99999999LL);
    cr_assert_eq(parse_ok("00000001S"), 1000000000LL, "leading zeros within 8 digits");
    cr_assert_eq(parse_ok("12345678u"), 12345678000LL);
    parse_bad("123456789n");
    parse_bad("000000001S");
    parse_bad("100000000H");
}

Test(grpc_wire, timeout_malformed)
{
    parse_bad("");
    parse_bad("S");
    parse_bad("100");    /* missing unit */
    parse_bad("10x");    /* bad unit */
    parse_bad("10s");    /* units are case-sensitive */
    parse_bad("10h");
    parse_bad("10U");
    parse_bad("-1S");
    parse_bad("+1S");
    parse_bad(" 1S");
    parse_bad("1 S");
    parse_bad("1S ");
    parse_bad("1.5S");
    parse_bad("1SS");
    parse_bad("0x10n");
    int64_t ns;
    cr_assert_eq(tw_grpc_timeout_parse(NULL, 0, &ns), -1);
    cr_assert_eq(tw_grpc_timeout_parse("1\0S", 3, &ns), -1, "embedded NUL");
    /* Only `len` bytes are read. */
    cr_assert_eq(tw_grpc_timeout_parse("5Sgarbage", 2, &ns), 0);
    cr_assert_eq(ns, 5000000000LL);
}

Test(grpc_wire, timeout_saturation)
{
    cr_assert_eq(parse_ok("99999999H"), INT64_MAX);
    cr_assert_eq(parse_ok("2562048H"), INT64_MAX);
    cr_assert_eq(parse_ok("2562047H"), 2562047LL * 3600LL * 1000000000LL);
    cr_assert_eq(parse_ok("99999999M"), 99999999LL * 60LL * 1000000000LL);
    cr_assert_eq(parse_ok("99999999S"), 99999999LL * 1000000000LL);
}

static void format_is(int64_t ns, const char *want)
{
    char out[10];
    memset(out, 'X', sizeof out);
    tw_grpc_timeout_format(ns, out);
    cr_assert_str_eq(out, want, "format(%lld)", (long long)ns);
}

Test(grpc_wire, timeout_format)
{
    format_is(0, "0n");
    format_is(-5, "0n");
    format_is(INT64_MIN, "0n");
    format_is(1, "1n");
    format_is(99999999, "99999999n");
    format_is(100000000, "100000u");
    format_is(100000001, "100001u"); /* rounds up */
    format_is(1000000000, "1000000u");
    format_is(99999999000LL, "99999999u");
    format_is(99999999001LL, "100000m");
    format_is(99999999LL * 1000000000LL, "99999999S");
    format_is(99999999LL * 1000000000LL + 1, "1666667M");
    format_is(INT64_MAX, "2562048H");
}

Test(grpc_wire, timeout_round_trip)
{
    static const int64_t units[] = {1, 1000, 1000000, 1000000000LL, 60000000000LL, 3600000000000LL};
    uint64_t r = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        /* Spread over all magnitudes. */
        int64_t ns = (int64_t)((r >> 1) >> (r % 63));
        if (i < 64)
            ns = i == 63 ? INT64_MAX : (int64_t)1 << i;
        char out[10];
        tw_grpc_timeout_format(ns, out);
        size_t len = strlen(out);
        cr_assert(len >= 2 && len <= 9, "\"%s\"", out);
        int64_t back;
        cr_assert_eq(tw_grpc_timeout_parse(out, len, &back), 0, "\"%s\"", out);
        cr_assert_geq(back, ns, "rounds up: %lld -> %s", (long long)ns, out);
        int64_t unit = 1;
        for (size_t u = 0; u < 6; u++)
            if ("numSMH"[u] == out[len - 1])
                unit = units[u];
        if (back != INT64_MAX)
            cr_assert_lt(back - ns, unit, "%lld -> %s", (long long)ns, out);
        /* Values that came from parsing survive exactly. */
        char again[10];
        tw_grpc_timeout_format(back, again);
        int64_t back2;
        cr_assert_eq(tw_grpc_timeout_parse(again, strlen(again), &back2), 0);
        cr_assert_eq(back2, back);
    }
}

/* ---- Percent-encoding -------------------------------------------------- */

static void encode_is(const char *in, size_t len, const char *want)
{
    char *got = tw_grpc_percent_encode(in, len);
    cr_assert_not_null(got);
    cr_assert_str_eq(got, want);
    free(got);
}

static void decode_is(const char *in, const char *want, size_t want_len)
{
    size_t n = 12345;
    char *got = tw_grpc_percent_decode(in, strlen(in), &n);
    cr_assert_not_null(got);
    cr_assert_eq(n, want_len, "decode \"%s\": length %zu", in, n);
    cr_assert(memcmp(got, want, want_len) == 0, "decode \"%s\"", in);
    cr_assert_eq(got[n], '\0');
    free(got);
}

Test(grpc_wire, percent_encode)
{
    encode_is("", 0, "");
    encode_is("Hello, world! ~`{}", 18, "Hello, world! ~`{}");
    encode_is("my favorite character is \0", 26, "my favorite character is %00");
    encode_is("my favorite character is %", 26, "my favorite character is %25");
    encode_is("line\nbreak\ttab\r", 15, "line%0Abreak%09tab%0D");
    encode_is("\x1f\x7f", 2, "%1F%7F");
    encode_is("caf\xc3\xa9", 5, "caf%C3%A9");
    encode_is("\xe6\x97\xa5\xe6\x9c\xac", 6, "%E6%97%A5%E6%9C%AC");
    encode_is("\xf0\x9f\x8c\x8a tide", 9, "%F0%9F%8C%8A tide");
    encode_is("\xff", 1, "%FF");
}

Test(grpc_wire, percent_decode)
{
    decode_is("", "", 0);
    decode_is("plain text", "plain text", 10);
    decode_is("caf%C3%A9", "caf\xc3\xa9", 5);
    decode_is("caf%c3%a9", "caf\xc3\xa9", 5);
    decode_is("%E6%97%A5%E6%9C%AC", "\xe6\x97\xa5\xe6\x9c\xac", 6);
    decode_is("100%25", "100%", 4);
    decode_is("nul%00byte", "nul\0byte", 8);
    /* Malformed escapes are kept as-is. */
    decode_is("%", "%", 1);
    decode_is("abc%", "abc%", 4);
    decode_is("%4", "%4", 2);
    decode_is("%G1x", "%G1x", 4);
    decode_is("%zz", "%zz", 3);
    decode_is("%%41", "%A", 2);
    decode_is("50% off", "50% off", 7);
    /* out_len is optional. */
    char *s = tw_grpc_percent_decode("a%20b", 5, NULL);
    cr_assert_str_eq(s, "a b");
    free(s);
}

Test(grpc_wire, percent_round_trip_all_bytes)
{
    char in[256];
    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    char *enc = tw_grpc_percent_encode(in, sizeof in);
    cr_assert_not_null(enc);
    for (const char *p = enc; *p; p++)
        cr_assert(*p >= 0x20 && *p <= 0x7e, "encoded output is printable ASCII");
    size_t n;
    char *dec = tw_grpc_percent_decode(enc, strlen(enc), &n);
    cr_assert_not_null(dec);
    cr_assert_eq(n, sizeof in);
    cr_assert(memcmp(dec, in, sizeof in) == 0);
    free(enc);
    free(dec);
}

/* ---- base64 ------------------------------------------------------------ */

static void b64_pair(const char *raw, const char *unpadded, const char *padded)
{
    size_t rl = strlen(raw), n = 999;
    char *enc = tw_grpc_base64_encode((const uint8_t *)raw, rl, &n);
    cr_assert_not_null(enc);
    cr_assert_str_eq(enc, unpadded);
    cr_assert_eq(n, strlen(unpadded));
    free(enc);
    const char *forms[2] = {unpadded, padded};
    for (int i = 0; i < 2; i++) {
        n = 999;
        uint8_t *dec = tw_grpc_base64_decode(forms[i], strlen(forms[i]), &n);
        cr_assert_not_null(dec, "decode \"%s\"", forms[i]);
        cr_assert_eq(n, rl, "decode \"%s\": %zu bytes", forms[i], n);
        cr_assert(memcmp(dec, raw, rl) == 0);
        cr_assert_eq(dec[n], 0);
        free(dec);
    }
}

Test(grpc_wire, base64_rfc4648_vectors)
{
    b64_pair("", "", "");
    b64_pair("f", "Zg", "Zg==");
    b64_pair("fo", "Zm8", "Zm8=");
    b64_pair("foo", "Zm9v", "Zm9v");
    b64_pair("foob", "Zm9vYg", "Zm9vYg==");
    b64_pair("fooba", "Zm9vYmE", "Zm9vYmE=");
    b64_pair("foobar", "Zm9vYmFy", "Zm9vYmFy");
}

Test(grpc_wire, base64_invalid)
{
    static const char *bad[] = {
        "Z",         /* one leftover character */
        "Zm9vY",     /* same after a full group */
        "Zg=",       /* incomplete padding */
        "Zg===",     /* too much padding */
        "Zm9v=",     /* padding after a full group */
        "=",         "==", "Zg==Zg==", /* padding in the middle */
        "Zm9v!",     "Zm 9v", "Zm9v\n", "Zm-_", /* url-safe alphabet is not accepted */
        "Zm\0v",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = i == sizeof bad / sizeof bad[0] - 1 ? 4 : strlen(bad[i]);
        size_t n = 777;
        uint8_t *dec = tw_grpc_base64_decode(bad[i], len, &n);
        cr_assert_null(dec, "\"%s\" should be refused", bad[i]);
        free(dec);
    }
}

Test(grpc_wire, base64_binary_round_trip)
{
    uint8_t raw[300];
    uint32_t r = 7;
    for (size_t i = 0; i < sizeof raw; i++) {
        r = r * 1103515245u + 12345u;
        raw[i] = (uint8_t)(r >> 16);
    }
    raw[0] = 0;
    raw[1] = 0xff;
    for (size_t len = 0; len <= sizeof raw; len++) {
        size_t el, dl;
        char *enc = tw_grpc_base64_encode(raw, len, &el);
        cr_assert_not_null(enc);
        cr_assert_eq(strlen(enc), el);
        cr_assert_null(strchr(enc, '='), "unpadded");
        cr_assert_eq(el, len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0));
        uint8_t *dec = tw_grpc_base64_decode(enc, el, &dl);
        cr_assert_not_null(dec);
        cr_assert_eq(dl, len);
        cr_assert(memcmp(dec, raw, len) == 0, "length %zu", len);
        free(dec);
        /* The padded form decodes identically. */
        char padded[420];
        memcpy(padded, enc, el);
        size_t pl = el;
        while (pl % 4)
            padded[pl++] = '=';
        dec = tw_grpc_base64_decode(padded, pl, &dl);
        cr_assert_not_null(dec);
        cr_assert_eq(dl, len);
        cr_assert(memcmp(dec, raw, len) == 0);
        free(dec);
        free(enc);
    }
}

Test(grpc_wire, key_is_bin)
{
    cr_assert(tw_grpc_key_is_bin("trace-bin", 9));
    cr_assert(tw_grpc_key_is_bin("grpc-status-details-bin", 23));
    cr_assert_not(tw_grpc_key_is_bin("trace", 5));
    cr_assert_not(tw_grpc_key_is_bin("bin", 3));
    cr_assert_not(tw_grpc_key_is_bin("trace-bin-not", 13));
    cr_assert_not(tw_grpc_key_is_bin("trace-bin", 8), "length bounds the key");
    cr_assert_not(tw_grpc_key_is_bin("", 0));
}

/* ---- gzip -------------------------------------------------------------- */

/* gzip.compress(b"hello, tidewatch\n", mtime=0) from Python. */
static const uint8_t python_gzip[] = {
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xcb, 0x48, 0xcd,
    0xc9, 0xc9, 0xd7, 0x51, 0x28, 0xc9, 0x4c, 0x49, 0x2d, 0x4f, 0x2c, 0x49, 0xce,
    0xe0, 0x02, 0x00, 0xe3, 0xab, 0xc0, 0xdf, 0x11, 0x00, 0x00, 0x00};

Test(grpc_wire, gunzip_foreign_stream)
{
    uint8_t *out = NULL;
    size_t n = 0;
    cr_assert_eq(tw_grpc_gunzip(python_gzip, sizeof python_gzip, 1024, &out, &n), 0);
    cr_assert_eq(n, 17);
    cr_assert(memcmp(out, "hello, tidewatch\n", 17) == 0);
    free(out);
    /* Exactly at the cap is fine; one byte less is -2. */
    cr_assert_eq(tw_grpc_gunzip(python_gzip, sizeof python_gzip, 17, &out, &n), 0);
    cr_assert_eq(n, 17);
    free(out);
    out = NULL;
    cr_assert_eq(tw_grpc_gunzip(python_gzip, sizeof python_gzip, 16, &out, &n), -2);
    cr_assert_null(out, "no buffer on failure");
}

static void gzip_round_trip(const uint8_t *in, size_t len)
{
    uint8_t *z = NULL, *back = NULL;
    size_t zl = 0, bl = 0;
    cr_assert_eq(tw_grpc_gzip(in, len, &z, &zl), 0);
    cr_assert_geq(zl, 18);
    cr_assert_eq(z[0], 0x1f);
    cr_assert_eq(z[1], 0x8b);
    cr_assert_eq(tw_grpc_gunzip(z, zl, len, &back, &bl), 0);
    cr_assert_not_null(back);
    cr_assert_eq(bl, len);
    cr_assert(len == 0 || memcmp(back, in, len) == 0);
    free(back);
    if (len > 0) {
        back = NULL;
        cr_assert_eq(tw_grpc_gunzip(z, zl, len - 1, &back, &bl), -2);
        cr_assert_null(back);
    }
    free(z);
}

Test(grpc_wire, gzip_round_trip)
{
    gzip_round_trip(NULL, 0);
    gzip_round_trip((const uint8_t *)"a", 1);
    gzip_round_trip((const uint8_t *)"hello, tidewatch\n", 17);

    size_t big = 1 << 20;
    uint8_t *buf = malloc(big);
    cr_assert_not_null(buf);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)("tide gauge reading "[i % 19]);
    gzip_round_trip(buf, big); /* compresses well: output grows a lot */
    uint32_t r = 99;
    for (size_t i = 0; i < big; i++) {
        r = r * 1103515245u + 12345u;
        buf[i] = (uint8_t)(r >> 16);
    }
    gzip_round_trip(buf, big); /* incompressible */
    free(buf);
}

Test(grpc_wire, gunzip_empty_output)
{
    uint8_t *z = NULL, *out = NULL;
    size_t zl, n = 99;
    cr_assert_eq(tw_grpc_gzip(NULL, 0, &z, &zl), 0);
    cr_assert_eq(tw_grpc_gunzip(z, zl, 0, &out, &n), 0);
    cr_assert_not_null(out, "never NULL, even for empty output");
    cr_assert_eq(n, 0);
    free(out);
    free(z);
}

Test(grpc_wire, gunzip_corrupt)
{
    uint8_t *out = NULL;
    size_t n;
    cr_assert_eq(tw_grpc_gunzip(NULL, 0, 100, &out, &n), -1, "empty input");
    cr_assert_eq(tw_grpc_gunzip((const uint8_t *)"not gzip at all", 15, 100, &out, &n), -1);
    /* Every truncation fails. */
    for (size_t len = 1; len < sizeof python_gzip; len++)
        cr_assert_eq(tw_grpc_gunzip(python_gzip, len, 100, &out, &n), -1, "truncated at %zu", len);
    /* Flipping any byte of the deflate body or trailer is caught (CRC-32
     * or ISIZE or a deflate error). Header bytes 4..9 (mtime, xfl, os) are
     * not checked by gzip. */
    for (size_t i = 10; i < sizeof python_gzip; i++) {
        uint8_t bad[sizeof python_gzip];
        memcpy(bad, python_gzip, sizeof bad);
        bad[i] ^= 0x55;
        int rc = tw_grpc_gunzip(bad, sizeof bad, 100, &out, &n);
        cr_assert(rc == -1 || rc == -2, "flip at %zu gave %d", i, rc);
        if (rc == 0)
            free(out);
    }
    uint8_t bad_magic[sizeof python_gzip];
    memcpy(bad_magic, python_gzip, sizeof bad_magic);
    bad_magic[0] = 0x1e;
    cr_assert_eq(tw_grpc_gunzip(bad_magic, sizeof bad_magic, 100, &out, &n), -1);
    /* Trailing garbage after the member is refused. */
    uint8_t trailing[sizeof python_gzip + 3];
    memcpy(trailing, python_gzip, sizeof python_gzip);
    memcpy(trailing + sizeof python_gzip, "xyz", 3);
    cr_assert_eq(tw_grpc_gunzip(trailing, sizeof trailing, 100, &out, &n), -1);
}

Test(grpc_wire, gunzip_concatenated_members)
{
    uint8_t two[2 * sizeof python_gzip];
    memcpy(two, python_gzip, sizeof python_gzip);
    memcpy(two + sizeof python_gzip, python_gzip, sizeof python_gzip);
    uint8_t *out = NULL;
    size_t n;
    cr_assert_eq(tw_grpc_gunzip(two, sizeof two, 100, &out, &n), 0);
    cr_assert_eq(n, 34);
    cr_assert(memcmp(out, "hello, tidewatch\nhello, tidewatch\n", 34) == 0);
    free(out);
    /* The cap counts the whole output, across members. */
    out = NULL;
    cr_assert_eq(tw_grpc_gunzip(two, sizeof two, 33, &out, &n), -2);
    cr_assert_null(out);
}

Test(grpc_wire, gunzip_bomb_capped)
{
    /* 64 MiB of zeros compress to ~64 KiB; a 1 MiB cap stops it early. */
    size_t big = 64u << 20;
    uint8_t *zeros = calloc(big, 1);
    cr_assert_not_null(zeros);
    uint8_t *z = NULL, *out = NULL;
    size_t zl, n;
    cr_assert_eq(tw_grpc_gzip(zeros, big, &z, &zl), 0);
    free(zeros);
    cr_assert_lt(zl, big / 100);
    cr_assert_eq(tw_grpc_gunzip(z, zl, 1u << 20, &out, &n), -2);
    cr_assert_null(out);
    free(z);
}
