/* tw_hostport: parse "host:port" listen/connect addresses.
 *
 * Accepted forms: "127.0.0.1:50051", "localhost:80", "[::1]:50052" (IPv6
 * literals must be bracketed) and ":8080" (empty host: the caller decides
 * what that means, e.g. all interfaces). The port is decimal 0..65535; port
 * 0 is accepted because listeners use it to pick a free port. Nothing is
 * resolved: the host is returned as text. */
#ifndef TW_HOSTPORT_H
#define TW_HOSTPORT_H

#include <stddef.h>

/* Split `s` into host and port. On success returns 0, writes the host
 * (without brackets, NUL-terminated, possibly empty) into host[hostlen] and
 * the port into *port. Returns -1 and leaves *port unchanged when `s` is
 * NULL or malformed: no port, a port that is not 0..65535 in plain decimal,
 * an unbracketed IPv6 address, an empty "[]", whitespace, or a host that
 * does not fit in hostlen bytes. */
int tw_hostport_parse(const char *s, char *host, size_t hostlen, int *port)
    __attribute__((warn_unused_result));

/* Validator with the tw_setting `check` signature: returns 0 if `text`
 * parses with tw_hostport_parse, else -1 and a short expectation ("host:port,
 * e.g. 127.0.0.1:50051 or [::1]:50051") in why[whylen]. */
int tw_hostport_check(const char *text, char *why, size_t whylen)
    __attribute__((warn_unused_result));

#endif
