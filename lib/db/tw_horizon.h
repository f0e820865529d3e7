/* tw_horizon: the event log's horizon, in a daemon's /metrics.
 *
 * Consumers read the log only below the oldest transaction still running
 * anywhere in the cluster (events_after), so one long-open transaction, in
 * any database, holds every consumer back; and a consumer that stops
 * falls behind silently. tw_horizon polls, every few seconds on a tw_pg
 * connection, the SECURITY DEFINER functions log_horizon_ages() and
 * consumer_lag() (migration 0004) and publishes gauges in the daemon's
 * tw_metrics registry:
 *
 *   tidewatch_log_oldest_xact_seconds       oldest transaction holding a
 *                                           transaction id (consumers read
 *                                           nothing past it), cluster-wide
 *   tidewatch_db_oldest_snapshot_seconds    oldest open transaction of any
 *                                           kind (holds back vacuum)
 *   tidewatch_consumer_lag_events{consumer} committed events after the
 *                                           consumer's cursor (counted up
 *                                           to max_lag_events)
 *   tidewatch_consumer_lag_seconds{consumer} age of the first of them
 *   tidewatch_db_idle_in_transaction_timeout_seconds
 *                                           the polling session's
 *                                           idle_in_transaction_session_
 *                                           timeout (0: the guard is off)
 *   tidewatch_log_horizon_poll_failures_total
 *
 * A failed poll (database down, missing migration, no EXECUTE privilege)
 * leaves the gauges at their last values, counts a failure and logs once
 * until a poll succeeds again. A consumer whose row disappears keeps its
 * last values (series are never removed); at most TW_HORIZON_MAX_CONSUMERS
 * consumers are published. Runs on the tw_pg's event loop. */
#ifndef TW_HORIZON_H
#define TW_HORIZON_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct tw_pg tw_pg;
typedef struct tw_metrics tw_metrics;
typedef struct tw_horizon tw_horizon;

#define TW_HORIZON_INTERVAL_MS 5000
#define TW_HORIZON_MAX_LAG_EVENTS 1000000
#define TW_HORIZON_MAX_CONSUMERS 32

typedef struct tw_horizon_opts {
    int interval_ms;        /* between polls; default TW_HORIZON_INTERVAL_MS */
    int64_t max_lag_events; /* lag counting stops here (bounded cost);
                               default TW_HORIZON_MAX_LAG_EVENTS */
} tw_horizon_opts;

/* Start polling on `pg` (borrowed: it must outlive the poller) and
 * publishing into `metrics` (borrowed likewise). The first poll runs one
 * interval after this call. opts may be NULL (defaults). Returns NULL on
 * allocation failure or when the gauges cannot be registered (a name is
 * taken), with a reason in err. */
tw_horizon *tw_horizon_new(struct event_base *base, tw_pg *pg, tw_metrics *metrics,
                           const tw_horizon_opts *opts, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stop polling and free. A poll still in flight is answered later by tw_pg
 * (or by tw_pg_free) and ignored. NULL is fine. */
void tw_horizon_free(tw_horizon *h);

#endif
