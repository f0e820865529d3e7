/* tw_pagetoken: page tokens, opaque to clients: the position ("kind|v0|v1")
 * in hex followed by a truncated HMAC-SHA-256 over the position and a
 * `binding` (the request's filters), so a token from another query, with
 * other filters, edited or forged, is refused. Pure: no I/O. */
#ifndef TW_PAGETOKEN_H
#define TW_PAGETOKEN_H

#include <stddef.h>
#include <stdint.h>

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

#define TW_PAGETOKEN_MAX 256   /* characters of a token at most */
#define TW_PAGETOKEN_VALUES 8  /* positions a token carries at most */

/* Write the token of (kind, v[0..n)) bound to binding into out (at least
 * TW_PAGETOKEN_MAX + 1 bytes), NUL-terminated. Returns 0, or -1 when n is
 * out of 0..TW_PAGETOKEN_VALUES, kind is longer than 64 bytes or contains
 * '|', or hashing fails. */
int tw_pagetoken_encode(const uint8_t *key, size_t keylen, const char *kind, const char *binding,
                        const int64_t *v, int n, char *out) TW_WUR;

/* Read token (NUL-terminated, any bytes) issued for kind and binding: 1 when
 * it is empty (the first page), 0 with v[0..n) set, -1 when it is not such
 * a token (malformed, too long, another kind or binding, a wrong MAC, not
 * exactly n values). v is only written on 0. */
int tw_pagetoken_decode(const uint8_t *key, size_t keylen, const char *token, const char *kind,
                        const char *binding, int64_t *v, int n) TW_WUR;

#endif
