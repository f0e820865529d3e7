#include "tw_hostport.h"

#include <stdio.h>
#include <string.h>

/* Parse a decimal port of 1..5 digits into 0..65535. */
static int parse_port(const char *p, int *out)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

int tw_hostport_parse(const char *s, char *host, size_t hostlen, int *port)
{
    if (!s || !host || hostlen == 0 || !port)
        return -1;
    const char *hbeg, *hend, *colon;
    if (s[0] == '[') {
        hbeg = s + 1;
        hend = strchr(hbeg, ']');
        if (!hend || hend == hbeg || hend[1] != ':')
            return -1;
        colon = hend + 1;
        /* Brackets only make sense around an IPv6 literal. */
        if (!memchr(hbeg, ':', (size_t)(hend - hbeg)))
            return -1;
    } else {
        hbeg = s;
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':'))
            return -1; /* no port, or an unbracketed IPv6 address */
        hend = colon;
    }
    for (const char *c = hbeg; c < hend; c++) {
        if (*c <= ' ' || *c == '[' || *c == ']' || *c == '/' || *c == 0x7f)
            return -1;
    }
    int p;
    if (parse_port(colon + 1, &p) != 0)
        return -1;
    size_t hl = (size_t)(hend - hbeg);
    if (hl >= hostlen)
        return -1;
    memcpy(host, hbeg, hl);
    host[hl] = '\0';
    *port = p;
    return 0;
}

int tw_hostport_check(const char *text, char *why, size_t whylen)
{
    char host[256];
    int port;
    if (tw_hostport_parse(text, host, sizeof host, &port) == 0)
        return 0;
    if (why && whylen)
        snprintf(why, whylen, "host:port with a port 0..65535, e.g. 127.0.0.1:50051 or [::1]:50051");
    return -1;
}
