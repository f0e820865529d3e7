/* Fuzz tw_pagetoken_decode: the input as a client's token, and (so that the
 * parser behind the MAC is reached) as a payload given a valid MAC. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/hmac.h>

#include "tw_pagetoken.h"

static const uint8_t KEY[] = "fuzz-key-fuzz-key-fuzz-key-32byt";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char token[2 * TW_PAGETOKEN_MAX + 1];
    int64_t v[TW_PAGETOKEN_VALUES];
    if (size > TW_PAGETOKEN_MAX)
        return 0;
    /* 1. as sent */
    memcpy(token, data, size);
    token[size] = '\0';
    int rv = tw_pagetoken_decode(KEY, 32, token, "search", "b", v, 2);
    if (rv < -1 || rv > 1 || (rv == 1) != (token[0] == '\0'))
        abort();
    /* 2. as a payload with its MAC ("payload NUL binding"), hex-encoded */
    size_t pl = strnlen((const char *)data, size);
    if (pl + 16 > TW_PAGETOKEN_MAX / 2)
        return 0;
    unsigned char msg[TW_PAGETOKEN_MAX + 4], mac[64];
    unsigned int ml = 0;
    memcpy(msg, data, pl);
    memcpy(msg + pl, "\0b", 3);
    if (!HMAC(EVP_sha256(), KEY, 32, msg, pl + 2, mac, &ml))
        return 0;
    for (size_t i = 0; i < pl; i++)
        snprintf(token + 2 * i, 3, "%02x", data[i]);
    for (size_t i = 0; i < 16; i++)
        snprintf(token + 2 * (pl + i), 3, "%02x", mac[i]);
    for (int n = 0; n <= 3; n++)
        if (tw_pagetoken_decode(KEY, 32, token, "search", "b", v, n) == 1)
            abort(); /* a non-empty token is never "the first page" */
    return 0;
}
