/* tw_grpc_wire: the gRPC-over-HTTP/2 wire format, without any I/O.
 * See tw_grpc_wire.h for the contracts. */
#define ZLIB_CONST
#include "tw_grpc_wire.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- Status names ------------------------------------------------------ */

static const char *const status_names[] = {
    "OK",
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
    "UNAUTHENTICATED",
};

const char *tw_grpc_status_name(int code)
{
    if (code < 0 || (size_t)code >= sizeof status_names / sizeof status_names[0])
        return "UNKNOWN";
    return status_names[code];
}

/* ---- Reassembly -------------------------------------------------------- */

void tw_grpc_decoder_init(tw_grpc_decoder *d, size_t max_len)
{
    memset(d, 0, sizeof *d);
    d->max_len = max_len;
}

void tw_grpc_decoder_free(tw_grpc_decoder *d)
{
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
    d->want = 0;
    d->have = 0;
    d->prefix_have = 0;
}

static uint32_t read_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

void tw_grpc_prefix_write(uint8_t out[TW_GRPC_PREFIX_LEN], int compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

/* Record a failure; every later feed returns it again. */
static tw_grpc_decode_result decoder_fail(tw_grpc_decoder *d, tw_grpc_decode_result r)
{
    d->failed = (int)r;
    return r;
}

/* Forget the current message so the next byte starts a new prefix. The
 * payload buffer is handed to the caller, who frees it. */
static void decoder_reset_message(tw_grpc_decoder *d)
{
    d->prefix_have = 0;
    d->buf = NULL;
    d->cap = 0;
    d->want = 0;
    d->have = 0;
}

/* Make room for `more` payload bytes: the buffer doubles, never beyond the
 * announced length. Returns 0 or -1 on ENOMEM. */
static int decoder_reserve(tw_grpc_decoder *d, size_t more)
{
    size_t need = d->have + more; /* <= want */
    if (need <= d->cap)
        return 0;
    size_t cap = d->cap ? d->cap : TW_GRPC_DECODER_INITIAL_CAP;
    while (cap < need)
        cap *= 2;
    if (cap > d->want)
        cap = d->want;
    uint8_t *b = realloc(d->buf, cap);
    if (!b)
        return -1;
    d->buf = b;
    d->cap = cap;
    return 0;
}

/* Deliver a message; maps the callback's answer to "go on" (0), "pause"
 * (1) or "abort" (-1). */
static int deliver(tw_grpc_message_cb cb, void *arg, int compressed, const uint8_t *data,
                   size_t len, int pausable)
{
    int rc = cb(arg, compressed, data, len);
    if (rc == 0)
        return 0;
    return pausable && rc == TW_GRPC_MESSAGE_PAUSE ? 1 : -1;
}

static tw_grpc_decode_result decoder_run(tw_grpc_decoder *d, const uint8_t *in, size_t len,
                                         tw_grpc_message_cb cb, void *arg, size_t *used,
                                         int pausable)
{
    const uint8_t *start = in;
    *used = 0;
    if (d->failed)
        return (tw_grpc_decode_result)d->failed;

    while (len > 0) {
        int rc;
        if (d->prefix_have < TW_GRPC_PREFIX_LEN) {
            /* Fast path: a whole prefix inside the input, nothing pending. */
            if (d->prefix_have == 0 && len >= TW_GRPC_PREFIX_LEN) {
                uint32_t n = read_be32(in + 1);
                int compressed = in[0] != 0;
                memcpy(d->prefix, in, TW_GRPC_PREFIX_LEN);
                d->prefix_have = TW_GRPC_PREFIX_LEN;
                if (n > d->max_len) {
                    *used = (size_t)(in - start);
                    return decoder_fail(d, TW_GRPC_DECODE_OVERSIZE);
                }
                if (len - TW_GRPC_PREFIX_LEN >= n) {
                    /* Whole message in the input: deliver without copying. */
                    const uint8_t *payload = in + TW_GRPC_PREFIX_LEN;
                    decoder_reset_message(d);
                    in += TW_GRPC_PREFIX_LEN + (size_t)n;
                    len -= TW_GRPC_PREFIX_LEN + (size_t)n;
                    rc = deliver(cb, arg, compressed, n ? payload : d->prefix, n, pausable);
                    goto delivered;
                }
                in += TW_GRPC_PREFIX_LEN;
                len -= TW_GRPC_PREFIX_LEN;
                d->want = n;
            } else {
                size_t take = TW_GRPC_PREFIX_LEN - d->prefix_have;
                if (take > len)
                    take = len;
                memcpy(d->prefix + d->prefix_have, in, take);
                d->prefix_have += take;
                in += take;
                len -= take;
                if (d->prefix_have < TW_GRPC_PREFIX_LEN)
                    break;
                uint32_t n = read_be32(d->prefix + 1);
                if (n > d->max_len) {
                    *used = (size_t)(in - start);
                    return decoder_fail(d, TW_GRPC_DECODE_OVERSIZE);
                }
                d->want = n;
                if (len >= n) {
                    /* Only the prefix was split: the payload is whole in
                     * the input, so still deliver it in place. */
                    const uint8_t *payload = in;
                    int compressed = d->prefix[0] != 0;
                    decoder_reset_message(d);
                    in += n;
                    len -= n;
                    rc = deliver(cb, arg, compressed, n ? payload : d->prefix, n, pausable);
                    goto delivered;
                }
            }
            /* The payload is split (want > len >= 0, so want is non-zero):
             * it is assembled in a buffer that grows with the bytes that
             * actually arrive. */
            d->have = 0;
        }

        size_t take = d->want - d->have;
        if (take > len)
            take = len;
        if (take == 0)
            break; /* only the prefix was in the input */
        if (decoder_reserve(d, take) != 0) {
            *used = (size_t)(in - start);
            return decoder_fail(d, TW_GRPC_DECODE_NOMEM);
        }
        memcpy(d->buf + d->have, in, take);
        d->have += take;
        in += take;
        len -= take;
        if (d->have < d->want)
            break;

        {
            uint8_t *payload = d->buf;
            size_t n = d->want;
            int compressed = d->prefix[0] != 0;
            decoder_reset_message(d);
            rc = deliver(cb, arg, compressed, payload, n, pausable);
            free(payload);
        }
    delivered:
        if (rc < 0) {
            *used = (size_t)(in - start);
            return decoder_fail(d, TW_GRPC_DECODE_ABORTED);
        }
        if (rc > 0) {
            *used = (size_t)(in - start);
            return TW_GRPC_DECODE_PAUSED;
        }
    }
    *used = (size_t)(in - start);
    return TW_GRPC_DECODE_OK;
}

tw_grpc_decode_result tw_grpc_decoder_feed(tw_grpc_decoder *d, const uint8_t *in, size_t len,
                                           tw_grpc_message_cb cb, void *arg)
{
    size_t used;
    return decoder_run(d, in, len, cb, arg, &used, 0);
}

tw_grpc_decode_result tw_grpc_decoder_feed_some(tw_grpc_decoder *d, const uint8_t *in,
                                                size_t len, tw_grpc_message_cb cb, void *arg,
                                                size_t *used)
{
    return decoder_run(d, in, len, cb, arg, used, 1);
}

int tw_grpc_decoder_idle(const tw_grpc_decoder *d)
{
    return !d->failed && d->prefix_have == 0;
}

size_t tw_grpc_decoder_pending(const tw_grpc_decoder *d)
{
    return d->prefix_have + d->have;
}

size_t tw_grpc_decoder_allocated(const tw_grpc_decoder *d) { return d->cap; }

/* ---- grpc-timeout ------------------------------------------------------ */

#define TIMEOUT_MAX_DIGITS 8
#define TIMEOUT_MAX_VALUE 99999999LL

static int64_t timeout_unit_ns(char c)
{
    switch (c) {
    case 'H':
        return 3600LL * 1000000000LL;
    case 'M':
        return 60LL * 1000000000LL;
    case 'S':
        return 1000000000LL;
    case 'm':
        return 1000000LL;
    case 'u':
        return 1000LL;
    case 'n':
        return 1LL;
    default:
        return 0;
    }
}

int tw_grpc_timeout_parse(const char *s, size_t len, int64_t *out_ns)
{
    if (!s || len < 2 || len > TIMEOUT_MAX_DIGITS + 1)
        return -1;
    int64_t unit = timeout_unit_ns(s[len - 1]);
    if (unit == 0)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out_ns = v > INT64_MAX / unit ? INT64_MAX : v * unit;
    return 0;
}

void tw_grpc_timeout_format(int64_t ns, char out[10])
{
    static const char units[] = {'n', 'u', 'm', 'S', 'M', 'H'};
    int64_t v = 0;
    size_t i = 0;
    if (ns > 0) {
        /* The coarsest unit always fits: INT64_MAX ns is ~2.6M hours. */
        for (;; i++) {
            int64_t unit = timeout_unit_ns(units[i]);
            v = ns / unit + (ns % unit != 0);
            if (v <= TIMEOUT_MAX_VALUE || i + 1 == sizeof units)
                break;
        }
    }
    char digits[TIMEOUT_MAX_DIGITS];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && nd < TIMEOUT_MAX_DIGITS);
    size_t o = 0;
    while (nd > 0)
        out[o++] = digits[--nd];
    out[o++] = units[i];
    out[o] = '\0';
}

/* ---- grpc-message percent-encoding ------------------------------------- */

static int percent_plain(unsigned char c)
{
    return c >= 0x20 && c <= 0x7E && c != '%';
}

char *tw_grpc_percent_encode(const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (len > (SIZE_MAX - 1) / 3)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += percent_plain((unsigned char)s[i]) ? 1 : 3;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (percent_plain(c)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *tw_grpc_percent_decode(const char *s, size_t len, size_t *out_len)
{
    if (len == SIZE_MAX)
        return NULL;
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len) {
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out[n++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        out[n++] = s[i];
    }
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return out;
}

/* ---- base64 for -bin metadata ------------------------------------------ */

/* EVP_{En,De}codeBlock take an int length: work in chunks well below it,
 * multiples of 3 input bytes (encode) and 4 characters (decode). */
#define B64_ENCODE_CHUNK (3u << 20)
#define B64_DECODE_CHUNK (4u << 20)

char *tw_grpc_base64_encode(const uint8_t *in, size_t len, size_t *out_len)
{
    size_t full = len / 3, rem = len % 3;
    if (full > (SIZE_MAX - 8) / 4)
        return NULL;
    size_t n = full * 4 + (rem ? rem + 1 : 0);
    /* +1: EVP_EncodeBlock NUL-terminates after the last full group. */
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    unsigned char *dst = (unsigned char *)out;
    size_t left = full * 3;
    while (left > 0) {
        size_t chunk = left > B64_ENCODE_CHUNK ? B64_ENCODE_CHUNK : left;
        int w = EVP_EncodeBlock(dst, in, (int)chunk);
        dst += w;
        in += chunk;
        left -= chunk;
    }
    if (rem) {
        unsigned char tail[5];
        EVP_EncodeBlock(tail, in, (int)rem); /* padded: "xx==" or "xxx=" */
        memcpy(dst, tail, rem + 1);
        dst += rem + 1;
    }
    *dst = '\0';
    if (out_len)
        *out_len = n;
    return out;
}

static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

uint8_t *tw_grpc_base64_decode(const char *in, size_t len, size_t *out_len)
{
    size_t n = len, pads = 0;
    while (n > 0 && pads < 2 && in[n - 1] == '=') {
        n--;
        pads++;
    }
    /* Padding, when present, must complete the last group; a lone
     * character in the last group encodes no whole byte. */
    if ((pads && (n + pads) % 4 != 0) || n % 4 == 1)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!b64_char(in[i]))
            return NULL;

    size_t full = n / 4, rem = n % 4;
    size_t total = full * 3 + (rem ? rem - 1 : 0);
    uint8_t *out = malloc(total + 1);
    if (!out)
        return NULL;
    uint8_t *dst = out;
    const unsigned char *src = (const unsigned char *)in;
    size_t left = full * 4;
    while (left > 0) {
        size_t chunk = left > B64_DECODE_CHUNK ? B64_DECODE_CHUNK : left;
        /* No '=' inside these groups, so the count is exact. */
        int w = EVP_DecodeBlock(dst, src, (int)chunk);
        if (w < 0 || (size_t)w != chunk / 4 * 3)
            goto bad;
        dst += w;
        src += chunk;
        left -= chunk;
    }
    if (rem) {
        /* Pad the last group ourselves: EVP_DecodeBlock wants whole
         * groups and counts the padding as zero bytes in its result. */
        unsigned char group[4] = {'=', '=', '=', '='}, bytes[3];
        memcpy(group, src, rem);
        if (EVP_DecodeBlock(bytes, group, 4) != 3)
            goto bad;
        memcpy(dst, bytes, rem - 1);
        dst += rem - 1;
    }
    *dst = '\0';
    if (out_len)
        *out_len = total;
    return out;

bad:
    free(out);
    return NULL;
}

int tw_grpc_key_is_bin(const char *key, size_t len)
{
    return len >= 4 && memcmp(key + len - 4, "-bin", 4) == 0;
}

/* ---- gzip -------------------------------------------------------------- */

/* zlib counts in uInt; feed larger buffers in slices. */
static uInt zslice(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

int tw_grpc_gzip(const uint8_t *in, size_t len, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -1;

    size_t cap = deflateBound(&z, len) + 32, have = 0;
    uint8_t *buf = malloc(cap);
    if (!buf)
        goto fail_stream;
    size_t in_left = len;
    int rc;
    do {
        if (z.avail_in == 0 && in_left > 0) {
            z.next_in = in + (len - in_left);
            z.avail_in = zslice(in_left);
            in_left -= z.avail_in;
        }
        if (have == cap) {
            /* deflateBound should make this unreachable; stay safe. */
            size_t ncap = cap * 2;
            uint8_t *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb)
                goto fail_buf;
            buf = nb;
            cap = ncap;
        }
        z.next_out = buf + have;
        z.avail_out = zslice(cap - have);
        uInt before = z.avail_out;
        rc = deflate(&z, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
        have += before - z.avail_out;
    } while (rc == Z_OK);
    if (rc != Z_STREAM_END)
        goto fail_buf;

    deflateEnd(&z);
    *out = buf;
    *out_len = have;
    return 0;

fail_buf:
    free(buf);
fail_stream:
    deflateEnd(&z);
    return -1;
}

int tw_grpc_gunzip(const uint8_t *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return -1;

    /* Room for one byte past the cap, so overflowing is observable. */
    size_t limit = max_out == SIZE_MAX ? SIZE_MAX : max_out + 1;
    size_t cap = len < SIZE_MAX / 4 && len * 4 > 256 ? len * 4 : 256;
    if (cap > limit)
        cap = limit;
    size_t have = 0, in_left = len;
    int ret = -1;
    uint8_t *buf = malloc(cap);
    if (!buf)
        goto fail_stream;

    for (;;) {
        if (z.avail_in == 0 && in_left > 0) {
            z.next_in = in + (len - in_left);
            z.avail_in = zslice(in_left);
            in_left -= z.avail_in;
        }
        if (have == cap) {
            size_t ncap = cap > limit / 2 ? limit : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb)
                goto fail_buf;
            buf = nb;
            cap = ncap;
        }
        z.next_out = buf + have;
        z.avail_out = zslice(cap - have);
        uInt before = z.avail_out;
        int rc = inflate(&z, Z_NO_FLUSH);
        have += before - z.avail_out;
        if (have > max_out) {
            ret = -2;
            goto fail_buf;
        }
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0 && in_left == 0)
                break;
            /* Another gzip member follows (RFC 1952 allows several). */
            if (inflateReset(&z) != Z_OK)
                goto fail_buf;
            continue;
        }
        /* Output space was available, so Z_BUF_ERROR means the input
         * ended mid-stream: truncated. */
        if (rc != Z_OK)
            goto fail_buf;
    }

    inflateEnd(&z);
    *out = buf;
    *out_len = have;
    return 0;

fail_buf:
    free(buf);
fail_stream:
    inflateEnd(&z);
    return ret;
}
