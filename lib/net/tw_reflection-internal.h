/* Private to tw_reflection.c and tw_reflection_service.c. */
#ifndef TW_REFLECTION_INTERNAL_H
#define TW_REFLECTION_INTERNAL_H

#include "tw_reflection.h"

/* Hand `p` (malloc'd) to `r`: tw_reflection_free frees it with free().
 * Used for per-server bindings, whose lifetime is the server's and which
 * the server has no hook to free. Returns 0, or -1 on allocation failure
 * (p is then still the caller's). */
int tw_reflection_keep(tw_reflection *r, void *p) TW_WUR;

#endif
