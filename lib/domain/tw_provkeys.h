/* tw_provkeys: the keys items are known by ((kind, key, maker) -> item id,
 * the rows of prov_item_keys, migration 0006) for the keys one batch of
 * events reads, and the identity rule that decides which item a reading
 * names. Pure: values in, values out, no I/O.
 *
 * tidewatch-provenance loads the rows the batch's keys already have, then
 * applies the batch's events in log order, adding each key as the event
 * records it, so every event sees exactly the keys of the events before it
 * (as prov_key_item() in SQL would, event by event). */
#ifndef TW_PROVKEYS_H
#define TW_PROVKEYS_H

#include <stddef.h>
#include <stdint.h>

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

typedef struct tw_provkeys tw_provkeys;

/* An empty set. Returns NULL when memory runs out. */
tw_provkeys *tw_provkeys_new(void) TW_WUR;

/* Empty it (the memory is kept for the next batch). */
void tw_provkeys_clear(tw_provkeys *k);

void tw_provkeys_free(tw_provkeys *k);

/* Record that (kind, key, maker) names item (> 0) unless that triple is
 * already known (the first one stays, as INSERT ... ON CONFLICT DO NOTHING
 * keeps it). Strings are copied; maker "" is no maker. Returns 1 when
 * added, 0 when already known, -1 when memory runs out. */
int tw_provkeys_add(tw_provkeys *k, int kind, const char *key, const char *maker,
                    int64_t item) TW_WUR;

/* 1 when (kind, key, maker) is known, else 0. */
int tw_provkeys_has(const tw_provkeys *k, int kind, const char *key, const char *maker);

/* The item a complete reading (kind, key, maker) names, or 0 for none:
 *   - with a maker: the entry of that maker; else the key's only entry
 *     when that one has no maker;
 *   - without a maker: the key's only entry whatever its maker; else the
 *     key's entry without a maker.
 * (prov_key_item() of migration 0006, the rule both must keep.) */
int64_t tw_provkeys_item(const tw_provkeys *k, int kind, const char *key, const char *maker);

/* Number of triples known. */
size_t tw_provkeys_count(const tw_provkeys *k);

#endif
