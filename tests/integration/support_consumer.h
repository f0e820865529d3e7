#ifndef TW_TEST_SUPPORT_CONSUMER_H
#define TW_TEST_SUPPORT_CONSUMER_H

#include "tw_consumer.h"

/* What the test consumers apply: each event becomes a row (event_id, ref,
 * pos) of `table`, pos being the row's rank in the order applied
 * ((SELECT count(*) FROM table) + its place in the batch), so a batch
 * applied twice, skipped or out of (tx, id) order leaves a wrong pos. With
 * sleep_ms > 0, each batch also sleeps that long inside its transaction
 * (so that kills and a second instance land inside transactions). */
typedef struct tw_test_apply {
    const char *table; /* an identifier made by the test, not a value */
    int sleep_ms;
    int refuse;        /* 1: refuse every batch */
} tw_test_apply;

/* The tw_consumer_apply_fn for arg = a tw_test_apply. */
int tw_test_apply_events(void *arg, const tw_consumer_event *ev, size_t n, tw_consumer_writes *w);

#endif
