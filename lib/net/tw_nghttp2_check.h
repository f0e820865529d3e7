/* tw_nghttp2_check: refuse to serve with an nghttp2 that lacks the fixes
 * for two remote denial-of-service flaws.
 *
 *   CVE-2023-44487 "rapid reset": a client opens and immediately resets
 *     streams; an unpatched server does the work of each without limit.
 *     Fixed upstream in 1.57.0, in Debian 12 by 1.52.0-1+deb12u1: the
 *     server answers a burst of resets (1000, then 33 a second) with GOAWAY.
 *   CVE-2024-28182 "CONTINUATION flood": unbounded CONTINUATION frames after
 *     a HEADERS frame. Fixed upstream in 1.61.0, in Debian 12 by
 *     1.52.0-1+deb12u2: more than 8 CONTINUATION frames end the session.
 *
 * Debian keeps the version string "1.52.0" for the patched library, so the
 * version says nothing; this probe checks the behaviour instead. It runs an
 * in-memory server session (no socket, about a millisecond) and feeds it
 * both attacks. The build also checks (cmake/nghttp2_check.cmake); the probe
 * catches a library swapped after the build. */
#ifndef TW_NGHTTP2_CHECK_H
#define TW_NGHTTP2_CHECK_H

#include <stddef.h>

#include "tw_grpc_wire.h"

/* Returns 0 when the linked libnghttp2 resists both attacks. Otherwise -1
 * with a sentence for the operator in err (which flaw, the library version,
 * what to install). */
int tw_nghttp2_check(char *err, size_t errlen) TW_WUR;

#endif
