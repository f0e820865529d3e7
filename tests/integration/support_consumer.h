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
    /* 1: pos comes from the prepare read (tw_test_prepare_count: the
     * table's row count before the batch), not from a subquery. */
    int use_reads;
    int prepare_refuse; /* 1: tw_test_prepare_count refuses every batch */
    unsigned prepared;  /* batches tw_test_prepare_count was asked for */
} tw_test_apply;

/* The tw_consumer_apply_fn for arg = a tw_test_apply. */
int tw_test_apply_events(void *arg, const tw_consumer_event *ev, size_t n,
                         const PGresult *const *reads, size_t nreads, tw_consumer_writes *w);

/* A tw_consumer_prepare_fn for arg = a tw_test_apply: one read, the
 * table's row count. */
int tw_test_prepare_count(void *arg, const tw_consumer_event *ev, size_t n,
                          tw_consumer_writes *reads);

#endif
