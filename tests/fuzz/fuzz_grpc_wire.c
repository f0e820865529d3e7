/* Fuzz target for tw_grpc_wire.
 *
 * Input layout: byte 0 chooses max_len, byte 1 seeds the chunk sizes,
 * byte 2 chooses which message the callback aborts on (0 = never); the
 * rest is the stream. The stream is decoded whole, in pseudo-random
 * chunks, and one byte at a time, and all three must deliver the same
 * messages and end with the same result. Compressed messages are also
 * gunzipped with a small cap. The stream bytes are also fed to
 * tw_grpc_timeout_parse, the percent-decoder, the base64 decoder and
 * gunzip, with round-trip checks through the matching encoders. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_grpc_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define GUNZIP_CAP 4096

/* Every delivered message, serialised as flag, 4-byte length, bytes. The
 * serialisation of a stream is never longer than the stream itself. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    size_t count, abort_at;
    int pause; /* ask tw_grpc_decoder_feed_some to pause after each message */
} record;

static int on_message(void *arg, int compressed, const uint8_t *data, size_t len)
{
    record *r = arg;
    CHECK(data != NULL);
    CHECK(compressed == 0 || compressed == 1);
    CHECK(r->len + TW_GRPC_PREFIX_LEN + len <= r->cap);
    tw_grpc_prefix_write(r->buf + r->len, compressed, (uint32_t)len);
    memcpy(r->buf + r->len + TW_GRPC_PREFIX_LEN, data, len);
    r->len += TW_GRPC_PREFIX_LEN + len;
    r->count++;
    if (compressed) {
        uint8_t *out = NULL;
        size_t n = 0;
        int rc = tw_grpc_gunzip(data, len, GUNZIP_CAP, &out, &n);
        CHECK(rc == 0 || rc == -1 || rc == -2);
        if (rc == 0) {
            CHECK(out != NULL && n <= GUNZIP_CAP);
            free(out);
        } else {
            CHECK(out == NULL);
        }
    }
    if (r->abort_at && r->count == r->abort_at)
        return 1;
    return r->pause ? TW_GRPC_MESSAGE_PAUSE : 0;
}

typedef struct {
    tw_grpc_decode_result result;
    int idle;
} outcome;

/* Decode `in` in chunks chosen by `chunk` (0: whole, 1: bytewise, else a
 * PRNG seed). Stops at the first error, as a caller would. With r->pause,
 * tw_grpc_decoder_feed_some stops after every message and the rest of the
 * input is fed again, as a paused call resumes. */
static outcome decode(const uint8_t *in, size_t len, size_t max_len, unsigned chunk, record *r)
{
    tw_grpc_decoder d;
    tw_grpc_decoder_init(&d, max_len);
    outcome o = {TW_GRPC_DECODE_OK, 0};
    uint32_t state = chunk * 2654435761u + 1;
    size_t off = 0;
    while (r->pause && off < len) {
        size_t used = 0, before = r->count;
        o.result = tw_grpc_decoder_feed_some(&d, in + off, len - off, on_message, r, &used);
        CHECK(used <= len - off);
        if (o.result == TW_GRPC_DECODE_PAUSED) {
            CHECK(r->count == before + 1);
            CHECK(tw_grpc_decoder_pending(&d) == 0);
            off += used;
            o.result = TW_GRPC_DECODE_OK;
            continue;
        }
        if (o.result == TW_GRPC_DECODE_OK)
            CHECK(used == len - off);
        off = len;
    }
    while (!r->pause && off < len) {
        size_t n = len - off;
        if (chunk == 1) {
            n = 1;
        } else if (chunk > 1) {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            size_t c = state % 8 == 0 ? state % 300 : state % 9;
            if (c < n)
                n = c;
        }
        o.result = tw_grpc_decoder_feed(&d, in + off, n, on_message, r);
        off += n;
        if (o.result != TW_GRPC_DECODE_OK)
            break;
    }
    if (o.result != TW_GRPC_DECODE_OK) {
        /* Sticky. */
        size_t before = r->count;
        CHECK(tw_grpc_decoder_feed(&d, in, len, on_message, r) == o.result);
        CHECK(r->count == before);
    }
    o.idle = tw_grpc_decoder_idle(&d);
    tw_grpc_decoder_free(&d);
    return o;
}

static void fuzz_decoder(const uint8_t *in, size_t len, size_t max_len, unsigned seed,
                         size_t abort_at)
{
    record rec[4];
    outcome out[4];
    unsigned modes[4] = {0, 1, seed + 2, 0};
    for (int i = 0; i < 4; i++) {
        rec[i] = (record){.buf = malloc(len + 1), .cap = len, .abort_at = abort_at,
                          .pause = i == 3};
        CHECK(rec[i].buf != NULL);
        out[i] = decode(in, len, max_len, modes[i], &rec[i]);
    }
    for (int i = 1; i < 4; i++) {
        CHECK(out[i].result == out[0].result);
        CHECK(out[i].idle == out[0].idle);
        CHECK(rec[i].count == rec[0].count);
        CHECK(rec[i].len == rec[0].len);
        CHECK(memcmp(rec[i].buf, rec[0].buf, rec[0].len) == 0);
    }
    /* The delivered messages re-serialise to a prefix of the input (flag
     * bytes normalised to 0/1), whatever the result. */
    size_t p = 0;
    while (p < rec[0].len) {
        CHECK(rec[0].buf[p] == (in[p] != 0));
        CHECK(memcmp(rec[0].buf + p + 1, in + p + 1, TW_GRPC_PREFIX_LEN - 1) == 0);
        size_t n = (size_t)rec[0].buf[p + 1] << 24 | (size_t)rec[0].buf[p + 2] << 16 |
                   (size_t)rec[0].buf[p + 3] << 8 | rec[0].buf[p + 4];
        CHECK(n <= max_len);
        p += TW_GRPC_PREFIX_LEN;
        CHECK(memcmp(rec[0].buf + p, in + p, n) == 0);
        p += n;
    }
    CHECK(p == rec[0].len);
    if (out[0].result == TW_GRPC_DECODE_OK)
        CHECK(out[0].idle == (rec[0].len == len));
    else
        CHECK(!out[0].idle);
    if (abort_at && rec[0].count >= abort_at)
        CHECK(out[0].result == TW_GRPC_DECODE_ABORTED && rec[0].count == abort_at);
    for (int i = 0; i < 4; i++)
        free(rec[i].buf);
}

static void fuzz_timeout(const uint8_t *in, size_t len)
{
    int64_t ns;
    if (tw_grpc_timeout_parse((const char *)in, len, &ns) != 0)
        return;
    CHECK(len >= 2 && len <= 9);
    CHECK(ns >= 0);
    char out[10];
    tw_grpc_timeout_format(ns, out);
    size_t n = strlen(out);
    CHECK(n >= 2 && n <= 9);
    int64_t back;
    CHECK(tw_grpc_timeout_parse(out, n, &back) == 0);
    CHECK(back == ns);
}

static void fuzz_timeout_format(const uint8_t *in, size_t len)
{
    if (len < 8)
        return;
    int64_t ns;
    memcpy(&ns, in, sizeof ns);
    char out[10];
    tw_grpc_timeout_format(ns, out);
    size_t n = strlen(out);
    CHECK(n >= 2 && n <= 9);
    int64_t back;
    CHECK(tw_grpc_timeout_parse(out, n, &back) == 0);
    CHECK(back >= (ns < 0 ? 0 : ns));
}

static void fuzz_percent(const uint8_t *in, size_t len)
{
    size_t n;
    char *dec = tw_grpc_percent_decode((const char *)in, len, &n);
    CHECK(dec != NULL);
    CHECK(n <= len && dec[n] == '\0');
    free(dec);

    char *enc = tw_grpc_percent_encode((const char *)in, len);
    CHECK(enc != NULL);
    size_t el = strlen(enc);
    for (size_t i = 0; i < el; i++)
        CHECK(enc[i] >= 0x20 && enc[i] <= 0x7e);
    dec = tw_grpc_percent_decode(enc, el, &n);
    CHECK(dec != NULL);
    CHECK(n == len && memcmp(dec, in, len) == 0);
    free(dec);
    free(enc);
}

static void fuzz_base64(const uint8_t *in, size_t len)
{
    size_t n;
    uint8_t *dec = tw_grpc_base64_decode((const char *)in, len, &n);
    if (dec) {
        CHECK(n <= len);
        size_t el;
        char *enc = tw_grpc_base64_encode(dec, n, &el);
        CHECK(enc != NULL && strlen(enc) == el);
        size_t n2;
        uint8_t *dec2 = tw_grpc_base64_decode(enc, el, &n2);
        CHECK(dec2 != NULL && n2 == n && memcmp(dec2, dec, n) == 0);
        free(dec2);
        free(enc);
        free(dec);
    }
    size_t el;
    char *enc = tw_grpc_base64_encode(in, len, &el);
    CHECK(enc != NULL && strlen(enc) == el);
    dec = tw_grpc_base64_decode(enc, el, &n);
    CHECK(dec != NULL && n == len && memcmp(dec, in, len) == 0);
    free(dec);
    free(enc);
}

static void fuzz_gzip(const uint8_t *in, size_t len)
{
    uint8_t *out = NULL;
    size_t n = 0;
    int rc = tw_grpc_gunzip(in, len, GUNZIP_CAP, &out, &n);
    CHECK(rc == 0 || rc == -1 || rc == -2);
    if (rc == 0) {
        CHECK(out != NULL && n <= GUNZIP_CAP);
        free(out);
    }

    uint8_t *z = NULL;
    size_t zl;
    CHECK(tw_grpc_gzip(in, len, &z, &zl) == 0);
    out = NULL;
    CHECK(tw_grpc_gunzip(z, zl, len, &out, &n) == 0);
    CHECK(n == len && memcmp(out, in, len) == 0);
    free(out);
    if (len > 0) {
        out = NULL;
        CHECK(tw_grpc_gunzip(z, zl, len - 1, &out, &n) == -2);
        CHECK(out == NULL);
    }
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    /* 0..254 exercise the limit; 255 is the production default. */
    size_t max_len = data[0] == 255 ? TW_GRPC_DEFAULT_MAX_MESSAGE : data[0];
    unsigned seed = data[1];
    size_t abort_at = data[2] % 8;
    const uint8_t *in = data + 3;
    size_t len = size - 3;

    fuzz_decoder(in, len, max_len, seed, abort_at);
    fuzz_timeout(in, len);
    fuzz_timeout_format(in, len);
    fuzz_percent(in, len);
    fuzz_base64(in, len);
    fuzz_gzip(in, len);
    return 0;
}
