/* A raw HTTP/2 client for attack tests; see support_h2.h. */
#include "support_h2.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_DATA 0x0
#define FRAME_HEADERS 0x1
#define FRAME_RST_STREAM 0x3
#define FRAME_SETTINGS 0x4
#define FRAME_PING 0x6
#define FRAME_GOAWAY 0x7
#define FRAME_WINDOW_UPDATE 0x8
#define FRAME_CONTINUATION 0x9

#define FLAG_END_STREAM 0x1
#define FLAG_ACK 0x1
#define FLAG_END_HEADERS 0x4
#define FLAG_PADDED 0x8
#define FLAG_PRIORITY 0x20

#define MAX_FRAME 16384

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

tw_h2_stream *tw_h2_stream_of(tw_h2 *h, int32_t id)
{
    cr_assert(id > 0 && (id & 1) && (id - 1) / 2 < TW_H2_MAX_STREAMS, "stream id %d", id);
    return &h->streams[(id - 1) / 2];
}

static tw_h2_stream *stream_or_null(tw_h2 *h, int32_t id)
{
    if (id <= 0 || !(id & 1) || (id - 1) / 2 >= TW_H2_MAX_STREAMS)
        return NULL;
    return &h->streams[(id - 1) / 2];
}

void tw_h2_connect(tw_h2 *h, int port, int preface)
{
    tw_h2_connect_rcvbuf(h, port, preface, 0);
}

void tw_h2_connect_rcvbuf(tw_h2 *h, int port, int preface, int rcvbuf)
{
    memset(h, 0, sizeof *h);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(h->fd >= 0);
    if (rcvbuf > 0)
        cr_assert_eq(setsockopt(h->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    cr_assert_eq(connect(h->fd, (struct sockaddr *)&sin, sizeof sin), 0, "connect: %s",
                 strerror(errno));
    fcntl(h->fd, F_SETFL, O_NONBLOCK);
    cr_assert_eq(nghttp2_hd_inflate_new(&h->inflater), 0);
    h->rcap = 1 << 17;
    h->rbuf = malloc(h->rcap);
    cr_assert(h->rbuf);
    h->initial_window = 65535;
    h->conn_window = 65535;
    h->max_concurrent = UINT32_MAX;
    if (preface) {
        static const char magic[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        size_t off = 0, len = sizeof magic - 1;
        while (off < len) {
            ssize_t n = write(h->fd, magic + off, len - off);
            cr_assert(n > 0 || errno == EAGAIN, "write: %s", strerror(errno));
            if (n > 0)
                off += (size_t)n;
        }
        cr_assert_eq(tw_h2_send_frame(h, FRAME_SETTINGS, 0, 0, NULL, 0), 0);
        for (int64_t end = now_ms() + 5000; !h->settings_seen && !h->eof && now_ms() < end;)
            tw_h2_pump(h, 20);
        cr_assert(h->settings_seen, "no SETTINGS from the server");
    }
}

void tw_h2_close(tw_h2 *h)
{
    if (h->fd >= 0)
        close(h->fd);
    h->fd = -1;
    nghttp2_hd_inflate_del(h->inflater);
    h->inflater = NULL;
    free(h->rbuf);
    h->rbuf = NULL;
    free(h->hdr_buf);
    h->hdr_buf = NULL;
}

int tw_h2_send_frame(tw_h2 *h, uint8_t type, uint8_t flags, int32_t id, const void *payload,
                     size_t len)
{
    uint8_t hd[9] = {(uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len, type, flags};
    put_be32(hd + 5, (uint32_t)id & 0x7fffffffu);
    const uint8_t *parts[2] = {hd, payload};
    size_t lens[2] = {9, len};
    int64_t deadline = now_ms() + (h->send_timeout_ms ? h->send_timeout_ms : 10000);
    for (int i = 0; i < 2; i++) {
        size_t off = 0;
        while (off < lens[i]) {
            ssize_t n = send(h->fd, parts[i] + off, lens[i] - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (now_ms() > deadline)
                    return -1;
                struct pollfd p = {.fd = h->fd, .events = POLLOUT};
                poll(&p, 1, 50);
                continue;
            }
            h->eof = 1;
            return -1;
        }
    }
    return 0;
}

/* HPACK integer with an N-bit prefix; `first` holds the pattern bits. */
static size_t hpack_int(uint8_t *p, uint8_t first, int prefix_bits, size_t v)
{
    size_t max = ((size_t)1 << prefix_bits) - 1, n = 0;
    if (v < max) {
        p[n++] = (uint8_t)(first | v);
        return n;
    }
    p[n++] = (uint8_t)(first | max);
    v -= max;
    while (v >= 128) {
        p[n++] = (uint8_t)(0x80 | (v & 0x7f));
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t hpack_str(uint8_t *p, const char *s)
{
    size_t len = strlen(s);
    size_t n = hpack_int(p, 0, 7, len);
    memcpy(p + n, s, len);
    return n + len;
}

size_t tw_h2_grpc_request_block(uint8_t *buf, const char *path)
{
    size_t n = 0;
    buf[n++] = 0x83; /* :method POST (static 3) */
    buf[n++] = 0x86; /* :scheme http (static 6) */
    n += hpack_int(buf + n, 0x00, 4, 4); /* :path, literal without indexing */
    n += hpack_str(buf + n, path);
    n += hpack_int(buf + n, 0x00, 4, 1); /* :authority */
    n += hpack_str(buf + n, "localhost");
    n += hpack_int(buf + n, 0x00, 4, 31); /* content-type */
    n += hpack_str(buf + n, "application/grpc");
    buf[n++] = 0x00; /* te: trailers, new name */
    n += hpack_str(buf + n, "te");
    n += hpack_str(buf + n, "trailers");
    return n;
}

static void stream_open(tw_h2 *h, int32_t id)
{
    tw_h2_stream *st = tw_h2_stream_of(h, id);
    memset(st, 0, sizeof *st);
    st->window = h->initial_window;
}

int tw_h2_send_request(tw_h2 *h, int32_t id, const char *path, int end_stream)
{
    uint8_t block[1024];
    cr_assert(strlen(path) < 900);
    size_t n = tw_h2_grpc_request_block(block, path);
    stream_open(h, id);
    return tw_h2_send_frame(h, FRAME_HEADERS,
                            (uint8_t)(FLAG_END_HEADERS | (end_stream ? FLAG_END_STREAM : 0)), id,
                            block, n);
}

static void decode_headers(tw_h2 *h, int32_t id, const uint8_t *in, size_t len, int end_stream)
{
    tw_h2_stream *st = stream_or_null(h, id);
    for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t n = nghttp2_hd_inflate_hd2(h->inflater, &nv, &flags, in, len, 1);
        cr_assert(n >= 0, "HPACK from the server: %s", nghttp2_strerror((int)n));
        in += n;
        len -= (size_t)n;
        if ((flags & NGHTTP2_HD_INFLATE_EMIT) && st) {
            char *dst = NULL;
            size_t cap = 0;
            if (nv.namelen == 7 && memcmp(nv.name, ":status", 7) == 0)
                dst = st->http_status, cap = sizeof st->http_status;
            else if (nv.namelen == 11 && memcmp(nv.name, "grpc-status", 11) == 0)
                dst = st->grpc_status, cap = sizeof st->grpc_status;
            else if (nv.namelen == 12 && memcmp(nv.name, "grpc-message", 12) == 0)
                dst = st->grpc_message, cap = sizeof st->grpc_message;
            if (dst)
                snprintf(dst, cap, "%.*s", (int)nv.valuelen, nv.value);
        }
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
            nghttp2_hd_inflate_end_headers(h->inflater);
            break;
        }
        if (n == 0 && len == 0 && !(flags & NGHTTP2_HD_INFLATE_EMIT))
            break;
    }
    if (st && end_stream)
        st->ended = 1;
}

static void hdr_append(tw_h2 *h, const uint8_t *p, size_t len)
{
    uint8_t *b = realloc(h->hdr_buf, h->hdr_len + len + 1);
    cr_assert(b);
    h->hdr_buf = b;
    memcpy(h->hdr_buf + h->hdr_len, p, len);
    h->hdr_len += len;
}

static void window_update(tw_h2 *h, int32_t id, uint32_t inc)
{
    uint8_t p[4];
    put_be32(p, inc);
    tw_h2_send_frame(h, FRAME_WINDOW_UPDATE, 0, id, p, 4);
}

static void handle_frame(tw_h2 *h, uint8_t type, uint8_t flags, int32_t id, const uint8_t *p,
                         size_t len)
{
    tw_h2_stream *st = stream_or_null(h, id);
    switch (type) {
    case FRAME_DATA:
        if (st) {
            st->data_bytes += len;
            if (flags & FLAG_END_STREAM)
                st->ended = 1;
        }
        if (len) { /* we read it: give the window back */
            window_update(h, 0, (uint32_t)len);
            if (!(flags & FLAG_END_STREAM))
                window_update(h, id, (uint32_t)len);
        }
        break;
    case FRAME_HEADERS: {
        size_t pad = 0, off = 0;
        if (flags & FLAG_PADDED)
            pad = p[off++];
        if (flags & FLAG_PRIORITY)
            off += 5;
        cr_assert(off + pad <= len, "malformed HEADERS");
        h->hdr_len = 0;
        hdr_append(h, p + off, len - off - pad);
        h->hdr_stream = id;
        h->hdr_end_stream = flags & FLAG_END_STREAM;
        if (flags & FLAG_END_HEADERS)
            decode_headers(h, id, h->hdr_buf, h->hdr_len, h->hdr_end_stream);
        break;
    }
    case FRAME_CONTINUATION:
        hdr_append(h, p, len);
        if (flags & FLAG_END_HEADERS)
            decode_headers(h, h->hdr_stream, h->hdr_buf, h->hdr_len, h->hdr_end_stream);
        break;
    case FRAME_RST_STREAM:
        if (st && len >= 4) {
            st->rst = 1;
            st->rst_code = be32(p);
            st->ended = 1;
        }
        break;
    case FRAME_SETTINGS:
        if (flags & FLAG_ACK)
            break;
        for (size_t i = 0; i + 6 <= len; i += 6) {
            uint16_t sid = (uint16_t)((p[i] << 8) | p[i + 1]);
            uint32_t v = be32(p + i + 2);
            if (sid == 3) {
                h->max_concurrent = v;
            } else if (sid == 4) {
                int64_t delta = (int64_t)v - h->initial_window;
                h->initial_window = v;
                for (int k = 0; k < TW_H2_MAX_STREAMS; k++)
                    h->streams[k].window += delta;
            } else if (sid == 6) {
                h->max_header_list = v;
            }
        }
        h->settings_seen = 1;
        tw_h2_send_frame(h, FRAME_SETTINGS, FLAG_ACK, 0, NULL, 0);
        break;
    case FRAME_PING:
        if (!(flags & FLAG_ACK) && len == 8)
            tw_h2_send_frame(h, FRAME_PING, FLAG_ACK, 0, p, 8);
        break;
    case FRAME_GOAWAY:
        if (len >= 8) {
            h->goaway = 1;
            h->goaway_code = be32(p + 4);
            snprintf(h->goaway_debug, sizeof h->goaway_debug, "%.*s", (int)(len - 8), p + 8);
        }
        break;
    case FRAME_WINDOW_UPDATE:
        if (len >= 4) {
            uint32_t inc = be32(p) & 0x7fffffffu;
            if (id == 0)
                h->conn_window += inc;
            else if (st)
                st->window += inc;
        }
        break;
    default:
        break;
    }
}

static void process_input(tw_h2 *h)
{
    size_t off = 0;
    while (h->rlen - off >= 9) {
        const uint8_t *f = h->rbuf + off;
        size_t len = ((size_t)f[0] << 16) | ((size_t)f[1] << 8) | f[2];
        if (h->rlen - off < 9 + len)
            break;
        handle_frame(h, f[3], f[4], (int32_t)(be32(f + 5) & 0x7fffffffu), f + 9, len);
        off += 9 + len;
    }
    memmove(h->rbuf, h->rbuf + off, h->rlen - off);
    h->rlen -= off;
}

size_t tw_h2_pump(tw_h2 *h, int ms)
{
    size_t total = 0;
    int64_t deadline = now_ms() + ms;
    while (!h->eof) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r <= 0)
            continue;
        if (h->rcap - h->rlen < 65536) {
            uint8_t *b = realloc(h->rbuf, h->rcap * 2);
            cr_assert(b);
            h->rbuf = b;
            h->rcap *= 2;
        }
        ssize_t n = read(h->fd, h->rbuf + h->rlen, h->rcap - h->rlen);
        if (n > 0) {
            h->rlen += (size_t)n;
            total += (size_t)n;
            h->bytes_read += (size_t)n;
            process_input(h);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            h->eof = 1;
        }
    }
    return total;
}

size_t tw_h2_send_data(tw_h2 *h, int32_t id, const uint8_t *data, size_t len, int end_stream,
                       int stall_ms)
{
    tw_h2_stream *st = tw_h2_stream_of(h, id);
    size_t sent = 0;
    do {
        if (st->ended || h->eof || h->goaway)
            break;
        size_t chunk = len - sent;
        if (chunk > MAX_FRAME)
            chunk = MAX_FRAME;
        int64_t win = st->window < h->conn_window ? st->window : h->conn_window;
        if (win <= 0 && chunk > 0) {
            /* Wait for a WINDOW_UPDATE, or give up. */
            int64_t end = now_ms() + stall_ms;
            while (now_ms() < end && !h->eof &&
                   (st->window <= 0 || h->conn_window <= 0) && !st->ended)
                tw_h2_pump(h, 10);
            if (st->window <= 0 || h->conn_window <= 0)
                break;
            continue;
        }
        if ((int64_t)chunk > win)
            chunk = (size_t)win;
        int last = sent + chunk == len;
        if (tw_h2_send_frame(h, FRAME_DATA, (uint8_t)(last && end_stream ? FLAG_END_STREAM : 0),
                             id, data + sent, chunk) != 0)
            break;
        st->window -= (int64_t)chunk;
        h->conn_window -= (int64_t)chunk;
        sent += chunk;
        /* Keep up with what the server says (window updates, SETTINGS). */
        tw_h2_pump(h, 0);
    } while (sent < len);
    return sent;
}

int tw_h2_wait_stream(tw_h2 *h, int32_t id, int ms)
{
    tw_h2_stream *st = tw_h2_stream_of(h, id);
    for (int64_t end = now_ms() + ms; !st->ended && !h->eof && now_ms() < end;)
        tw_h2_pump(h, 10);
    return st->ended;
}

int tw_h2_wait_eof(tw_h2 *h, int ms)
{
    for (int64_t end = now_ms() + ms; !h->eof && now_ms() < end;)
        tw_h2_pump(h, 10);
    return h->eof;
}

int tw_h2_unary_empty(tw_h2 *h, int32_t id, const char *path, int ms)
{
    static const uint8_t empty[5] = {0};
    if (tw_h2_send_request(h, id, path, 0) != 0 ||
        tw_h2_send_frame(h, FRAME_DATA, FLAG_END_STREAM, id, empty, sizeof empty) != 0)
        return -1;
    tw_h2_wait_stream(h, id, ms);
    tw_h2_stream *st = tw_h2_stream_of(h, id);
    return st->grpc_status[0] ? atoi(st->grpc_status) : -1;
}
