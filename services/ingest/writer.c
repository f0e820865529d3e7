/* Group commit: records from every concurrent call are gathered and written
 * in one transaction per batch (flushed when the batch is full or a few
 * milliseconds after its first record), pipelined on a few connections so
 * that PostgreSQL works on several batches at once (events_after's (tx, id)
 * order makes concurrent writers safe for consumers). Each
 * batch is a handful of statements whose parameters are whole arrays
 * (unnest), so a batch of a thousand records costs about what one record
 * would. A record is answered only after its batch committed. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "tidewatch/v1/ingest.pb-c.h"
#include "tw_log.h"
#include "tw_metrics.h"
#include "tw_pgarray.h"

#define OUTCOME(x) TIDEWATCH__V1__RECORD_RESULT__OUTCOME__##x

/* Append the batch's events; answer, in input order, each one's event id,
 * whether this statement inserted it, and whether a correction's target
 * was missing. Within-batch duplicates are removed before this runs. */
static const char SQL_EVENTS[] =
    "WITH r AS ("
    " SELECT u.source COLLATE \"C\" AS source, u.source_ref COLLATE \"C\" AS source_ref,"
    "  u.kind, u.occurred_at, u.principal, u.csource COLLATE \"C\" AS csource,"
    "  u.cref COLLATE \"C\" AS cref, u.skeys, u.hkeys, u.derived, u.payload, u.ord"
    " FROM unnest($1::text[], $2::text[], $3::int2[], $4::timestamptz[], $5::text[],"
    "  $6::text[], $7::text[], $8::text[], $9::text[], $10::bytea[], $11::bytea[])"
    " WITH ORDINALITY AS u(source, source_ref, kind, occurred_at, principal, csource, cref,"
    "  skeys, hkeys, derived, payload, ord)),"
    " ins AS ("
    " INSERT INTO events (source, source_ref, kind, occurred_at, corrects,"
    "  serial_keys, hull_keys, derived, payload)"
    " SELECT r.source, r.source_ref, r.kind, r.occurred_at,"
    "  CASE WHEN r.csource IS NOT NULL THEN"
    "   (SELECT c.id FROM events c WHERE c.source = r.csource AND c.source_ref = r.cref) END,"
    "  coalesce(string_to_array(nullif(r.skeys, ''), ' '), '{}'),"
    "  coalesce(string_to_array(nullif(r.hkeys, ''), ' '), '{}'), r.derived, r.payload"
    " FROM r ORDER BY r.ord"
    " ON CONFLICT (source, source_ref) DO NOTHING"
    " RETURNING id, source, source_ref, corrects)"
    /* the events lookup runs only for records the insert skipped */
    " SELECT r.ord, coalesce(ins.id, (SELECT e.id FROM events e"
    "  WHERE e.source = r.source AND e.source_ref = r.source_ref)), ins.id IS NOT NULL,"
    "  r.csource IS NOT NULL AND ins.id IS NOT NULL AND ins.corrects IS NULL"
    " FROM r LEFT JOIN ins ON ins.source = r.source AND ins.source_ref = r.source_ref"
    " ORDER BY r.ord";

/* Keep rejected records (the latest attempt per reference). */
static const char SQL_QUARANTINE[] =
    "INSERT INTO quarantine AS q (source, source_ref, principal, errors, payload)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::json[], $5::bytea[])"
    " ON CONFLICT (source, source_ref) DO UPDATE SET received_at = now(),"
    "  attempts = q.attempts + 1, principal = excluded.principal, errors = excluded.errors,"
    "  payload = excluded.payload, resolved_event = NULL";

/* A record that is now in the log resolves its quarantine row. */
static const char SQL_RESOLVE[] =
    "UPDATE quarantine q SET resolved_event = e.id"
    " FROM unnest($1::text[], $2::text[]) AS r(source, source_ref), events e"
    " WHERE q.resolved_event IS NULL AND q.source = r.source COLLATE \"C\""
    "  AND q.source_ref = r.source_ref COLLATE \"C\""
    "  AND e.source = q.source AND e.source_ref = q.source_ref";

static const char SQL_NOTIFY[] = "SELECT pg_notify('tidewatch_events', '')";

/* Ids of records another transaction committed while ours waited on the
 * unique index (our statement's snapshot could not see them). */
static const char SQL_LOOKUP[] =
    "SELECT r.ord, e.id FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(source,"
    " source_ref, ord) JOIN events e ON e.source = r.source COLLATE \"C\""
    "  AND e.source_ref = r.source_ref COLLATE \"C\"";

typedef struct batch {
    ingest_writer *w;
    size_t pg;               /* the connection it went to */
    ingest_entry **missing;  /* duplicates whose id must be looked up */
    size_t nmissing;
    ingest_entry **entries; /* every entry of the batch */
    size_t n;
    ingest_entry **events;  /* distinct accepted records, in order */
    size_t nevents;
    int has_quarantine;
    tw_pgarray arrays[18];
} batch;

static void flush(ingest_writer *w);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

int ingest_writer_init(ingest_writer *w, struct event_base *base, tw_pg *const *pg, size_t npg,
                       tw_metrics *metrics, size_t batch_max, int flush_delay_ms,
                       int max_in_flight)
{
    memset(w, 0, sizeof *w);
    if (npg == 0 || npg > INGEST_MAX_CONNECTIONS)
        return -1;
    w->base = base;
    w->npg = npg;
    memcpy(w->pg, pg, npg * sizeof *pg);
    w->metrics = metrics;
    w->batch_max = batch_max;
    w->flush_delay_ms = flush_delay_ms;
    w->max_in_flight = max_in_flight;
    w->timer = evtimer_new(base, timer_cb, w);
    if (!w->timer)
        return -1;
    for (size_t i = 0; i < npg; i++) {
        if (tw_pg_prepare(pg[i], "ingest_events", SQL_EVENTS, 11, NULL) != 0 ||
            tw_pg_prepare(pg[i], "ingest_quarantine", SQL_QUARANTINE, 5, NULL) != 0 ||
            tw_pg_prepare(pg[i], "ingest_resolve", SQL_RESOLVE, 2, NULL) != 0 ||
            tw_pg_prepare(pg[i], "ingest_lookup", SQL_LOOKUP, 2, NULL) != 0) {
            event_free(w->timer);
            w->timer = NULL;
            return -1;
        }
    }
    return 0;
}

void ingest_writer_add(ingest_writer *w, ingest_entry *e)
{
    e->next = NULL;
    if (w->stopping) {
        ingest_entry_done(e, TW_GRPC_UNAVAILABLE, "server is shutting down");
        return;
    }
    if (w->tail)
        w->tail->next = e;
    else
        w->head = e;
    w->tail = e;
    w->queued++;
    if (w->queued >= w->batch_max) {
        flush(w);
    } else if (!evtimer_pending(w->timer, NULL)) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = w->flush_delay_ms * 1000};
        evtimer_add(w->timer, &tv);
    }
}

static int cmp_key(const void *a, const void *b)
{
    const ingest_entry *x = *(ingest_entry *const *)a, *y = *(ingest_entry *const *)b;
    int c = strcmp(x->source, y->source);
    if (c == 0)
        c = strcmp(x->source_ref, y->source_ref);
    if (c == 0)
        c = (x->seq > y->seq) - (x->seq < y->seq); /* stable by arrival */
    return c;
}

static int cmp_seq(const void *a, const void *b)
{
    const ingest_entry *x = *(ingest_entry *const *)a, *y = *(ingest_entry *const *)b;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static void batch_free(batch *b)
{
    for (size_t i = 0; i < sizeof b->arrays / sizeof b->arrays[0]; i++)
        tw_pgarray_free(&b->arrays[i]);
    free(b->entries);
    free(b->events);
    free(b->missing);
    free(b);
}

/* Answer every entry of the batch and release it. */
static void batch_done(batch *b, int status, const char *message)
{
    ingest_writer *w = b->w;
    w->in_flight--;
    w->in_flight_pg[b->pg]--;
    for (size_t i = 0; i < b->n; i++)
        ingest_entry_done(b->entries[i], status, message);
    batch_free(b);
    if (w->head && !w->stopping)
        flush(w);
}

static void batch_settle(batch *b);

static void lookup_cb(const tw_pg_outcome *o, void *arg)
{
    batch *b = arg;
    if (o->kind != TW_PG_OK) {
        /* The batch committed; only the originals' ids are unknown. */
        TW_WARN(NULL, "looking up %zu duplicates' ids failed (%s): %s", b->nmissing,
                tw_pg_kind_name(o->kind), o->message);
    } else {
        const PGresult *r = o->results[0];
        for (int i = 0; i < PQntuples(r); i++) {
            size_t ord = strtoull(PQgetvalue(r, i, 0), NULL, 10);
            if (ord >= 1 && ord <= b->nmissing)
                b->missing[ord - 1]->event_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        }
    }
    batch_settle(b);
}

/* Ask for the ids of duplicates that committed concurrently in another
 * transaction. Returns 0 when the query is on its way. */
static int lookup_missing(batch *b)
{
    TW_DEBUG(NULL, "%zu duplicates committed concurrently elsewhere: looking up their ids",
             b->nmissing);
    tw_pgarray src = {0}, ref = {0};
    tw_pgarray_begin(&src, TW_OID_TEXT);
    tw_pgarray_begin(&ref, TW_OID_TEXT);
    for (size_t i = 0; i < b->nmissing; i++) {
        tw_pgarray_text(&src, b->missing[i]->source);
        tw_pgarray_text(&ref, b->missing[i]->source_ref);
    }
    int rv = -1;
    if (tw_pgarray_finish(&src) == 0 && tw_pgarray_finish(&ref) == 0) {
        const char *v[2] = {(const char *)src.data, (const char *)ref.data};
        int l[2] = {(int)src.len, (int)ref.len}, f[2] = {1, 1};
        rv = tw_pg_query(b->w->pg[b->pg], "ingest_lookup", 2, v, l, f, 0, lookup_cb, b);
    }
    tw_pgarray_free(&src);
    tw_pgarray_free(&ref);
    return rv;
}

static void batch_cb(const tw_pg_outcome *o, void *arg)
{
    batch *b = arg;
    if (o->kind != TW_PG_OK) {
        int status = o->kind == TW_PG_QUERY_ERROR ? TW_GRPC_INTERNAL : TW_GRPC_UNAVAILABLE;
        TW_LOG(o->kind == TW_PG_QUERY_ERROR ? TW_LOG_ERROR : TW_LOG_WARN, NULL,
               "group commit of %zu records failed (%s): %s", b->n, tw_pg_kind_name(o->kind),
               o->message);
        batch_done(b, status,
                   o->kind == TW_PG_QUERY_ERROR ? "the database refused the batch"
                   : o->kind == TW_PG_OUTCOME_UNKNOWN
                       ? "database connection lost during commit: retry (resubmitted records are "
                         "reported as duplicates)"
                       : "database unavailable: retry later");
        return;
    }
    const PGresult *r = o->results[0];
    if (b->nevents && (int)b->nevents != PQntuples(r)) {
        TW_ERROR(NULL, "group commit answered %d rows for %zu records", PQntuples(r), b->nevents);
        batch_done(b, TW_GRPC_INTERNAL, "unexpected answer from the database");
        return;
    }
    for (size_t i = 0; i < b->nevents; i++) {
        ingest_entry *e = b->events[i];
        e->event_id = PQgetisnull(r, (int)i, 1) ? 0 : strtoll(PQgetvalue(r, (int)i, 1), NULL, 10);
        int inserted = PQgetvalue(r, (int)i, 2)[0] == 't';
        e->outcome = inserted ? OUTCOME(ACCEPTED) : OUTCOME(DUPLICATE);
        e->correction_target_missing = PQgetvalue(r, (int)i, 3)[0] == 't';
        if (!inserted && e->event_id == 0)
            b->missing[b->nmissing++] = e;
    }
    if (b->nmissing && lookup_missing(b) == 0)
        return; /* lookup_cb settles the batch */
    batch_settle(b);
}

/* Every event has its outcome: answer the batch. */
static void batch_settle(batch *b)
{
    ingest_writer *w = b->w;
    uint64_t accepted = 0, duplicates = 0, rejected = 0;
    /* Later copies of a record within the batch are duplicates of the first
     * (b->entries is sorted by key, then arrival). */
    ingest_entry *first = NULL;
    for (size_t i = 0; i < b->n; i++) {
        ingest_entry *e = b->entries[i];
        if (e->rejected) {
            e->outcome = OUTCOME(REJECTED);
            rejected++;
            continue;
        }
        if (first && strcmp(first->source, e->source) == 0 &&
            strcmp(first->source_ref, e->source_ref) == 0 && first != e) {
            e->outcome = OUTCOME(DUPLICATE);
            e->event_id = first->event_id;
        } else {
            first = e;
        }
        if (e->outcome == OUTCOME(ACCEPTED))
            accepted++;
        else
            duplicates++;
    }
    if (w->metrics) {
        int rv = tw_metrics_counter_add(w->metrics, "tidewatch_ingest_records_total",
                                        "Records answered, by outcome.", "outcome", "accepted",
                                        (double)accepted);
        rv |= tw_metrics_counter_add(w->metrics, "tidewatch_ingest_records_total",
                                     "Records answered, by outcome.", "outcome", "duplicate",
                                     (double)duplicates);
        rv |= tw_metrics_counter_add(w->metrics, "tidewatch_ingest_records_total",
                                     "Records answered, by outcome.", "outcome", "rejected",
                                     (double)rejected);
        rv |= tw_metrics_counter_add(w->metrics, "tidewatch_ingest_commits_total",
                                     "Group-commit transactions.", NULL, NULL, 1);
        if (rv != 0)
            TW_DEBUG(NULL, "metrics refused an update");
    }
    batch_done(b, TW_GRPC_OK, NULL);
}

/* Fill the i-th array as a binary parameter. */
static void param(batch *b, int i, const char **values, int *lengths, int *formats)
{
    values[i] = (const char *)b->arrays[i].data;
    lengths[i] = (int)b->arrays[i].len;
    formats[i] = 1;
}

static int submit(batch *b)
{
    ingest_writer *w = b->w;
    tw_pgarray *a = b->arrays;
    static const Oid event_types[11] = {TW_OID_TEXT,  TW_OID_TEXT, TW_OID_INT2,
                                        TW_OID_TIMESTAMPTZ, TW_OID_TEXT, TW_OID_TEXT,
                                        TW_OID_TEXT,  TW_OID_TEXT, TW_OID_TEXT,
                                        TW_OID_BYTEA, TW_OID_BYTEA};
    for (int i = 0; i < 11; i++)
        tw_pgarray_begin(&a[i], event_types[i]);
    for (size_t i = 0; i < b->nevents; i++) {
        ingest_entry *e = b->events[i];
        tw_pgarray_text(&a[0], e->source);
        tw_pgarray_text(&a[1], e->source_ref);
        tw_pgarray_int2(&a[2], e->kind);
        if (e->has_time)
            tw_pgarray_timestamptz(&a[3], e->occurred_at);
        else
            tw_pgarray_null(&a[3]);
        tw_pgarray_null(&a[4]); /* principal: filled once auth exists */
        tw_pgarray_text(&a[5], e->csource);
        tw_pgarray_text(&a[6], e->cref);
        tw_pgarray_text(&a[7], e->skeys);
        tw_pgarray_text(&a[8], e->hkeys);
        tw_pgarray_bytes(&a[9], e->doc, e->doc_len);
        tw_pgarray_bytes(&a[10], e->payload, e->payload_len);
    }
    static const Oid q_types[5] = {TW_OID_TEXT, TW_OID_TEXT, TW_OID_TEXT, TW_OID_JSON,
                                   TW_OID_BYTEA};
    for (int i = 0; i < 5; i++)
        tw_pgarray_begin(&a[11 + i], q_types[i]);
    tw_pgarray_begin(&a[16], TW_OID_TEXT);
    tw_pgarray_begin(&a[17], TW_OID_TEXT);
    /* Quarantine the latest rejected attempt per reference (entries are
     * sorted by key then arrival, so the last of a run wins). */
    for (size_t i = 0; i < b->n; i++) {
        ingest_entry *e = b->entries[i];
        if (!e->rejected)
            continue;
        ingest_entry *next = i + 1 < b->n ? b->entries[i + 1] : NULL;
        if (next && next->rejected && strcmp(next->source, e->source) == 0 &&
            strcmp(next->source_ref, e->source_ref) == 0)
            continue;
        tw_pgarray_text(&a[11], e->source);
        tw_pgarray_text(&a[12], e->source_ref);
        tw_pgarray_null(&a[13]);
        tw_pgarray_json(&a[14], (const char *)e->doc, e->doc_len);
        tw_pgarray_bytes(&a[15], e->payload, e->payload_len);
        b->has_quarantine = 1;
    }
    for (size_t i = 0; i < b->nevents; i++) {
        tw_pgarray_text(&a[16], b->events[i]->source);
        tw_pgarray_text(&a[17], b->events[i]->source_ref);
    }
    for (size_t i = 0; i < sizeof b->arrays / sizeof b->arrays[0]; i++)
        if (tw_pgarray_finish(&a[i]) != 0)
            return -1;

    const char *v[18];
    int l[18], f[18];
    for (int i = 0; i < 18; i++)
        param(b, i, v, l, f);
    tw_pg_stmt steps[4];
    size_t n = 0;
    if (b->nevents)
        steps[n++] = (tw_pg_stmt){.stmt = "ingest_events", .nparams = 11, .values = v,
                                  .lengths = l, .formats = f};
    if (b->has_quarantine)
        steps[n++] = (tw_pg_stmt){.stmt = "ingest_quarantine", .nparams = 5, .values = v + 11,
                                  .lengths = l + 11, .formats = f + 11};
    if (b->nevents) {
        steps[n++] = (tw_pg_stmt){.stmt = "ingest_resolve", .nparams = 2, .values = v + 16,
                                  .lengths = l + 16, .formats = f + 16};
        steps[n++] = (tw_pg_stmt){.stmt = SQL_NOTIFY};
    }
    if (n == 0)
        return 1; /* nothing to write (cannot happen: a batch has entries) */
    /* batch_cb reads the events step's rows from results[0] (when there are
     * no events, results[0] is the quarantine step's and is not read). */
    /* the least busy connection that is up (or the first, to fail fast) */
    size_t pick = 0;
    int found = 0;
    for (size_t i = 0; i < w->npg; i++) {
        if (!tw_pg_is_up(w->pg[i]))
            continue;
        if (!found || w->in_flight_pg[i] < w->in_flight_pg[pick])
            pick = i;
        found = 1;
    }
    b->pg = pick;
    w->in_flight++;
    w->in_flight_pg[pick]++;
    if (tw_pg_batch(w->pg[pick], steps, n, batch_cb, b) != 0) {
        w->in_flight--;
        w->in_flight_pg[pick]--;
        return -1;
    }
    return 0;
}

static void flush(ingest_writer *w)
{
    int capacity = w->max_in_flight * (int)w->npg;
    while (w->head && w->in_flight < capacity) {
        batch *b = calloc(1, sizeof *b);
        size_t take = w->queued < w->batch_max ? w->queued : w->batch_max;
        if (b) {
            b->w = w;
            b->entries = malloc(take * sizeof *b->entries);
            b->events = malloc(take * sizeof *b->events);
            b->missing = malloc(take * sizeof *b->missing);
        }
        if (!b || !b->entries || !b->events || !b->missing) {
            if (b) {
                free(b->entries);
                free(b->events);
                free(b->missing);
                free(b);
            }
            TW_ERROR(NULL, "out of memory forming a batch");
            return; /* the timer retries */
        }
        for (size_t i = 0; i < take; i++) {
            ingest_entry *e = w->head;
            w->head = e->next;
            e->next = NULL;
            e->seq = i;
            b->entries[b->n++] = e;
        }
        if (!w->head)
            w->tail = NULL;
        w->queued -= take;
        qsort(b->entries, b->n, sizeof *b->entries, cmp_key);
        /* distinct accepted records, first arrival of each key */
        for (size_t i = 0; i < b->n; i++) {
            ingest_entry *e = b->entries[i];
            if (e->rejected)
                continue;
            if (b->nevents) {
                ingest_entry *p = b->events[b->nevents - 1];
                if (strcmp(p->source, e->source) == 0 && strcmp(p->source_ref, e->source_ref) == 0)
                    continue;
            }
            b->events[b->nevents++] = e;
        }
        /* Events take their ids in arrival order. */
        qsort(b->events, b->nevents, sizeof *b->events, cmp_seq);
        int rv = submit(b);
        if (rv != 0) {
            w->in_flight++; /* batch_done decrements */
            w->in_flight_pg[b->pg]++;
            batch_done(b, TW_GRPC_INTERNAL, "could not form the database batch");
        }
    }
    if (w->head && !evtimer_pending(w->timer, NULL) && w->in_flight < capacity) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = w->flush_delay_ms * 1000};
        evtimer_add(w->timer, &tv);
    }
}

void ingest_writer_free(ingest_writer *w)
{
    w->stopping = 1;
    while (w->head) {
        ingest_entry *e = w->head;
        w->head = e->next;
        ingest_entry_done(e, TW_GRPC_UNAVAILABLE, "server is shutting down");
    }
    w->tail = NULL;
    w->queued = 0;
    if (w->timer)
        event_free(w->timer);
    w->timer = NULL;
}
