/* tw_nghttp2_check: behavioural probe of libnghttp2's rapid-reset and
 * CONTINUATION-flood fixes. See tw_nghttp2_check.h. */
#include "tw_nghttp2_check.h"

#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* More resets than the fixed library's burst (1000) in well under a
 * second: its rate is 33 a second after the burst. */
#define PROBE_RESETS 1100
/* More CONTINUATION frames than the fixed library allows (8). */
#define PROBE_CONTINUATIONS 24

#define FRAME_HEADERS 0x1
#define FRAME_GOAWAY 0x7
#define FRAME_CONTINUATION 0x9
#define FLAG_END_STREAM 0x1

static const char install_hint[] =
    "install libnghttp2 1.61 or later, or on Debian 12 libnghttp2-14 1.52.0-1+deb12u3 or later "
    "(apt-get update && apt-get install libnghttp2-14)";

/* Drain a session's output and report whether it holds a GOAWAY frame.
 * Returns 1 (GOAWAY seen), 0 (none), -1 (nghttp2 error). */
static int session_sends_goaway(nghttp2_session *s)
{
    uint8_t hd[9];
    size_t hd_have = 0, skip = 0;
    int seen = 0;
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(s, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            return seen;
        /* Walk frame headers across the chunks nghttp2 hands out. */
        for (size_t i = 0; i < (size_t)n;) {
            if (skip) {
                size_t k = skip < (size_t)n - i ? skip : (size_t)n - i;
                skip -= k;
                i += k;
                continue;
            }
            hd[hd_have++] = data[i++];
            if (hd_have == sizeof hd) {
                size_t len = ((size_t)hd[0] << 16) | ((size_t)hd[1] << 8) | hd[2];
                if (hd[3] == FRAME_GOAWAY)
                    seen = 1;
                skip = len;
                hd_have = 0;
            }
        }
    }
}

static int new_server(nghttp2_session **s)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return -1;
    int rv = nghttp2_session_server_new(s, cbs, NULL);
    nghttp2_session_callbacks_del(cbs);
    return rv == 0 ? 0 : -1;
}

/* Feed everything the client session has to send into the server. */
static int pipe_client_to_server(nghttp2_session *client, nghttp2_session *server)
{
    for (;;) {
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(client, &data);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        ssize_t m = nghttp2_session_mem_recv(server, data, (size_t)n);
        if (m != n)
            return -1;
    }
}

/* 1: the server answered a burst of HEADERS + RST_STREAM with GOAWAY;
 * 0: it did not; -1: the probe itself failed. */
static int probe_rapid_reset(void)
{
    nghttp2_session *server = NULL, *client = NULL;
    nghttp2_session_callbacks *cbs = NULL;
    int result = -1;
    if (new_server(&server) != 0 || nghttp2_session_callbacks_new(&cbs) != 0 ||
        nghttp2_session_client_new(&client, cbs, NULL) != 0)
        goto out;
    if (nghttp2_submit_settings(client, NGHTTP2_FLAG_NONE, NULL, 0) != 0)
        goto out;
    nghttp2_nv nva[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)"probe", 10, 5, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)"/probe", 5, 6, NGHTTP2_NV_FLAG_NONE},
    };
    for (int i = 0; i < PROBE_RESETS; i++) {
        int32_t id = nghttp2_submit_request(client, NULL, nva, sizeof nva / sizeof nva[0],
                                            NULL, NULL);
        if (id < 0 || pipe_client_to_server(client, server) != 0)
            goto out;
        if (nghttp2_submit_rst_stream(client, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL) != 0 ||
            pipe_client_to_server(client, server) != 0)
            goto out;
    }
    result = session_sends_goaway(server);
out:
    if (cbs)
        nghttp2_session_callbacks_del(cbs);
    nghttp2_session_del(client);
    nghttp2_session_del(server);
    return result;
}

static size_t put_frame_header(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t id)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)(id >> 24);
    p[6] = (uint8_t)(id >> 16);
    p[7] = (uint8_t)(id >> 8);
    p[8] = (uint8_t)id;
    return 9;
}

/* 1: the server refused a HEADERS frame followed by too many CONTINUATION
 * frames; 0: it took them all; -1: the probe itself failed. */
static int probe_continuation_flood(void)
{
    nghttp2_session *server = NULL;
    if (new_server(&server) != 0)
        return -1;
    uint8_t buf[NGHTTP2_CLIENT_MAGIC_LEN + 9 + 10 + PROBE_CONTINUATIONS * 9];
    size_t n = 0;
    memcpy(buf, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
    n += NGHTTP2_CLIENT_MAGIC_LEN;
    n += put_frame_header(buf + n, 0, NGHTTP2_SETTINGS, 0, 0);
    /* HEADERS without END_HEADERS: ":method: POST" (static index 3). */
    n += put_frame_header(buf + n, 1, FRAME_HEADERS, FLAG_END_STREAM, 1);
    buf[n++] = 0x83;
    for (int i = 0; i < PROBE_CONTINUATIONS; i++)
        n += put_frame_header(buf + n, 0, FRAME_CONTINUATION, 0, 1);
    ssize_t rv = nghttp2_session_mem_recv(server, buf, n);
    int result;
    if (rv < 0)
        result = 1; /* NGHTTP2_ERR_TOO_MANY_CONTINUATIONS (or another refusal) */
    else
        result = session_sends_goaway(server);
    nghttp2_session_del(server);
    return result;
}

int tw_nghttp2_check(char *err, size_t errlen)
{
    const nghttp2_info *info = nghttp2_version(0);
    const char *version = info && info->version_str ? info->version_str : "?";
    int reset = probe_rapid_reset();
    if (reset < 0) {
        snprintf(err, errlen, "libnghttp2 %s: the rapid-reset probe could not run", version);
        return -1;
    }
    if (reset == 0) {
        snprintf(err, errlen,
                 "libnghttp2 %s lacks the HTTP/2 rapid-reset fix (CVE-2023-44487): %s", version,
                 install_hint);
        return -1;
    }
    int cont = probe_continuation_flood();
    if (cont < 0) {
        snprintf(err, errlen, "libnghttp2 %s: the CONTINUATION probe could not run", version);
        return -1;
    }
    if (cont == 0) {
        snprintf(err, errlen, "libnghttp2 %s lacks the CONTINUATION-flood fix (CVE-2024-28182): %s",
                 version, install_hint);
        return -1;
    }
    return 0;
}
