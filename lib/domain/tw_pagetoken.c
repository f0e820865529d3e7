/* tw_pagetoken: HMAC-bound page tokens (see tw_pagetoken.h). */
#include "tw_pagetoken.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAC_LEN 16
#define PAYLOAD_MAX (TW_PAGETOKEN_MAX / 2 - MAC_LEN)

/* The first MAC_LEN bytes of HMAC-SHA-256(key, payload NUL binding). */
static int mac_of(const uint8_t *key, size_t keylen, const char *payload, const char *binding,
                  uint8_t *mac)
{
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    size_t pl = strlen(payload), bl = strlen(binding);
    unsigned char *msg = malloc(pl + bl + 2);
    if (!msg || keylen > 0x7fffffff)
        goto fail;
    memcpy(msg, payload, pl);
    msg[pl] = 0;
    memcpy(msg + pl + 1, binding, bl + 1);
    if (!HMAC(EVP_sha256(), key, (int)keylen, msg, pl + bl + 1, full, &len) || len < MAC_LEN)
        goto fail;
    free(msg);
    memcpy(mac, full, MAC_LEN);
    return 0;
fail:
    free(msg);
    return -1;
}

int tw_pagetoken_encode(const uint8_t *key, size_t keylen, const char *kind, const char *binding,
                        const int64_t *v, int n, char *out)
{
    char payload[PAYLOAD_MAX + 1];
    if (n < 0 || n > TW_PAGETOKEN_VALUES || strlen(kind) > 64 || strchr(kind, '|'))
        return -1;
    int off = snprintf(payload, sizeof payload, "%s", kind);
    for (int i = 0; i < n && off < (int)sizeof payload; i++)
        off += snprintf(payload + off, sizeof payload - (size_t)off, "|%lld", (long long)v[i]);
    uint8_t mac[MAC_LEN];
    if (off >= (int)sizeof payload || mac_of(key, keylen, payload, binding, mac) != 0)
        return -1;
    size_t pl = (size_t)off;
    for (size_t i = 0; i < pl; i++)
        snprintf(out + 2 * i, 3, "%02x", (unsigned char)payload[i]);
    for (size_t i = 0; i < MAC_LEN; i++)
        snprintf(out + 2 * (pl + i), 3, "%02x", mac[i]);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int tw_pagetoken_decode(const uint8_t *key, size_t keylen, const char *token, const char *kind,
                        const char *binding, int64_t *v, int n)
{
    if (!token || !token[0])
        return 1;
    size_t len = strnlen(token, TW_PAGETOKEN_MAX + 1);
    uint8_t raw[TW_PAGETOKEN_MAX / 2];
    if (len > TW_PAGETOKEN_MAX || len % 2 || len < 2 * (MAC_LEN + 1) || n < 0 ||
        n > TW_PAGETOKEN_VALUES)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(token[2 * i]), lo = hexval(token[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    size_t pl = len / 2 - MAC_LEN;
    char payload[TW_PAGETOKEN_MAX / 2 + 1];
    memcpy(payload, raw, pl);
    payload[pl] = '\0';
    uint8_t mac[MAC_LEN];
    if (strlen(payload) != pl || mac_of(key, keylen, payload, binding, mac) != 0 ||
        CRYPTO_memcmp(mac, raw + pl, MAC_LEN) != 0)
        return -1;
    /* "kind|v0|v1..." as tw_pagetoken_encode wrote it */
    size_t kl = strlen(kind);
    if (strncmp(payload, kind, kl) != 0)
        return -1;
    int64_t got[TW_PAGETOKEN_VALUES];
    const char *p = payload + kl;
    for (int i = 0; i < n; i++) {
        if (*p != '|')
            return -1;
        char *end;
        errno = 0;
        long long x = strtoll(p + 1, &end, 10);
        if (errno || end == p + 1)
            return -1;
        got[i] = x;
        p = end;
    }
    if (*p)
        return -1;
    memcpy(v, got, (size_t)n * sizeof *v);
    return 0;
}
