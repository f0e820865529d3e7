/* Group commit: records from every concurrent call are gathered and written
 * in one transaction per batch (flushed when the batch is full, in records
 * or in bytes, or a few milliseconds after its first record), pipelined on a
 * few connections so that PostgreSQL works on several batches at once
 * (events_after's (tx, id) order makes concurrent writers safe for
 * consumers). Each batch is a handful of statements whose parameters are
 * whole arrays (unnest), so a batch of a thousand records costs about what
 * one record would. A record is answered only after its batch committed.
 *
 * One caller never fails another's records:
 *
 *   - Records with the same (source, source_ref) in one batch are settled
 *     in C before any SQL, so no statement ever touches a key twice (which
 *     PostgreSQL refuses for ON CONFLICT DO UPDATE). Within such a group,
 *     in arrival order: the first acceptable record is the one appended;
 *     later acceptable ones are DUPLICATE of it when their digest is the
 *     same, CONFLICT when it differs; rejected ones are REJECTED, and the
 *     quarantine keeps one row for the key (the last rejected attempt, with
 *     every attempt counted), resolved to the event when the key is in the
 *     log (appended by this batch or earlier).
 *
 *   - When PostgreSQL refuses a batch for something a record can cause
 *     (SQLSTATE classes 21, 22, 23, 54, P0), the batch is split in two at a
 *     key-group boundary and each half is retried as its own transaction,
 *     recursively: the records that did not cause it commit, and a group
 *     refused on its own is answered REJECTED (code "storage_refused") with
 *     the database's reason. A batch of n records costs at most 2n - 1
 *     transactions, and a single bad record about 2 log2(n).
 *     Serialization failures and deadlocks (class 40) retry the same batch
 *     up to three times; connection loss and resource exhaustion (08, 53,
 *     57, 58, and tw_pg's transport outcomes) answer UNAVAILABLE with no
 *     splitting; anything else is a server fault: INTERNAL for the batch. */
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "tidewatch/v1/ingest.pb-c.h"
#include "tw_log.h"
#include "tw_metrics.h"
#include "tw_pgarray.h"

#define OUTCOME(x) TIDEWATCH__V1__RECORD_RESULT__OUTCOME__##x
#define MAX_RETRIES 3

/* Append the batch's events (one per key: within-batch duplicates are
 * settled before this runs); answer, in input order, each one's event id,
 * whether this statement inserted it, whether a correction's target is
 * neither in the log nor in this batch, and the digest stored under a
 * reference that was already there. The correction link is the key it
 * names, resolved by readers (event_corrections), never an id looked up
 * with this statement's snapshot. */
static const char SQL_EVENTS[] =
    "WITH r AS ("
    " SELECT u.source COLLATE \"C\" AS source, u.source_ref COLLATE \"C\" AS source_ref,"
    "  u.kind, u.occurred_at, u.csource COLLATE \"C\" AS csource,"
    "  u.cref COLLATE \"C\" AS cref, u.skeys, u.hkeys, u.derived, u.payload, u.digest, u.ord"
    " FROM unnest($1::text[], $2::text[], $3::int2[], $4::timestamptz[],"
    "  $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[], $10::bytea[], $11::bytea[])"
    " WITH ORDINALITY AS u(source, source_ref, kind, occurred_at, csource, cref,"
    "  skeys, hkeys, derived, payload, digest, ord)),"
    " ins AS ("
    " INSERT INTO events (source, source_ref, kind, occurred_at, corrects_source,"
    "  corrects_ref, serial_keys, hull_keys, derived, payload, digest)"
    " SELECT r.source, r.source_ref, r.kind, r.occurred_at, r.csource, r.cref,"
    "  coalesce(string_to_array(nullif(r.skeys, ''), ' '), '{}'),"
    "  coalesce(string_to_array(nullif(r.hkeys, ''), ' '), '{}'), r.derived, r.payload, r.digest"
    " FROM r ORDER BY r.ord"
    " ON CONFLICT (source, source_ref) DO NOTHING"
    " RETURNING id, source, source_ref)"
    " SELECT r.ord, coalesce(ins.id, old.id), ins.id IS NOT NULL,"
    "  r.csource IS NOT NULL AND ins.id IS NOT NULL"
    "   AND NOT EXISTS (SELECT 1 FROM events t WHERE t.source = r.csource AND t.source_ref = r.cref)"
    "   AND NOT EXISTS (SELECT 1 FROM r t WHERE t.source = r.csource AND t.source_ref = r.cref),"
    "  old.digest"
    " FROM r LEFT JOIN ins ON ins.source = r.source AND ins.source_ref = r.source_ref"
    /* the events lookup runs only for records the insert skipped */
    " LEFT JOIN LATERAL (SELECT e.id, e.digest FROM events e WHERE ins.id IS NULL"
    "  AND e.source = r.source AND e.source_ref = r.source_ref) old ON true"
    " ORDER BY r.ord";

/* Keep rejected records: one row per key (the latest attempt), attempts
 * counted, resolved when the key is in the log already (this transaction's
 * events statement ran before, so this batch's events count). */
static const char SQL_QUARANTINE[] =
    "INSERT INTO quarantine AS q (source, source_ref, principal, errors, payload, attempts,"
    " resolved_event)"
    " SELECT u.source, u.source_ref, u.principal, u.errors, u.payload, u.attempts::integer,"
    "  (SELECT e.id FROM events e WHERE e.source = u.source COLLATE \"C\""
    "   AND e.source_ref = u.source_ref COLLATE \"C\")"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::json[], $5::bytea[], $6::int8[])"
    "  AS u(source, source_ref, principal, errors, payload, attempts)"
    " ON CONFLICT (source, source_ref) DO UPDATE SET received_at = now(),"
    "  attempts = q.attempts + excluded.attempts, principal = excluded.principal,"
    "  errors = excluded.errors, payload = excluded.payload,"
    "  resolved_event = excluded.resolved_event";

/* A record that is now in the log resolves its quarantine row. */
static const char SQL_RESOLVE[] =
    "UPDATE quarantine q SET resolved_event = e.id"
    " FROM unnest($1::text[], $2::text[]) AS r(source, source_ref), events e"
    " WHERE q.resolved_event IS NULL AND q.source = r.source COLLATE \"C\""
    "  AND q.source_ref = r.source_ref COLLATE \"C\""
    "  AND e.source = q.source AND e.source_ref = q.source_ref";

static const char SQL_NOTIFY[] = "SELECT pg_notify('tidewatch_events', '')";

/* Ids (and digests) of records another transaction committed while ours
 * waited on the unique index (our statement's snapshot could not see
 * them). */
static const char SQL_LOOKUP[] =
    "SELECT r.ord, e.id, e.digest FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS"
    " r(source, source_ref, ord) JOIN events e ON e.source = r.source COLLATE \"C\""
    "  AND e.source_ref = r.source_ref COLLATE \"C\"";

enum { N_EVENT_PARAMS = 11, N_QUAR_PARAMS = 6, N_RESOLVE_PARAMS = 2 };
enum { A_EVENTS = 0, A_QUAR = N_EVENT_PARAMS, A_RESOLVE = A_QUAR + N_QUAR_PARAMS,
       N_ARRAYS = A_RESOLVE + N_RESOLVE_PARAMS };

typedef struct batch {
    ingest_writer *w;
    size_t pg;              /* the connection it went to */
    int retries;            /* serialization failures retried */
    unsigned depth;         /* splits since the batch was formed */
    ingest_entry **entries; /* every entry, sorted by key then arrival */
    size_t n;
    ingest_entry **events;  /* the first acceptable entry of each key, by arrival */
    size_t nevents;
    ingest_entry **missing; /* leads whose stored row must be looked up */
    size_t nmissing;
    size_t nquarantine;
    tw_pgarray arrays[N_ARRAYS];
} batch;

static void flush(ingest_writer *w);
static int batch_start(batch *b);

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg);
}

int ingest_writer_init(ingest_writer *w, struct event_base *base, tw_pg *const *pg, size_t npg,
                       tw_metrics *metrics, const ingest_writer_opts *opts)
{
    memset(w, 0, sizeof *w);
    if (npg == 0 || npg > INGEST_MAX_CONNECTIONS || opts->batch_max == 0)
        return -1;
    w->base = base;
    w->npg = npg;
    memcpy(w->pg, pg, npg * sizeof *pg);
    w->metrics = metrics;
    w->opts = *opts;
    w->timer = evtimer_new(base, timer_cb, w);
    if (!w->timer)
        return -1;
    for (size_t i = 0; i < npg; i++) {
        if (tw_pg_prepare(pg[i], "ingest_events", SQL_EVENTS, N_EVENT_PARAMS, NULL) != 0 ||
            tw_pg_prepare(pg[i], "ingest_quarantine", SQL_QUARANTINE, N_QUAR_PARAMS, NULL) != 0 ||
            tw_pg_prepare(pg[i], "ingest_resolve", SQL_RESOLVE, N_RESOLVE_PARAMS, NULL) != 0 ||
            tw_pg_prepare(pg[i], "ingest_lookup", SQL_LOOKUP, 2, NULL) != 0) {
            event_free(w->timer);
            w->timer = NULL;
            return -1;
        }
    }
    return 0;
}

static void arm_timer(ingest_writer *w)
{
    if (!evtimer_pending(w->timer, NULL)) {
        struct timeval tv = {.tv_sec = 0, .tv_usec = w->opts.flush_delay_ms * 1000};
        evtimer_add(w->timer, &tv);
    }
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
    w->queued_bytes += e->bytes;
    if (w->queued >= w->opts.batch_max || w->queued_bytes >= w->opts.batch_bytes)
        flush(w);
    else
        arm_timer(w);
}

static int same_key(const ingest_entry *x, const ingest_entry *y)
{
    return strcmp(x->source, y->source) == 0 && strcmp(x->source_ref, y->source_ref) == 0;
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

static void batch_free(batch *b)
{
    for (size_t i = 0; i < N_ARRAYS; i++)
        tw_pgarray_free(&b->arrays[i]);
    free(b->entries);
    free(b->events);
    free(b->missing);
    free(b);
}

/* A batch over `entries` (n >= 1, sorted by key then arrival; the batch
 * takes the array). NULL on ENOMEM (the array is then still the caller's). */
static batch *batch_new(ingest_writer *w, ingest_entry **entries, size_t n, unsigned depth)
{
    batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->w = w;
    b->depth = depth;
    b->events = malloc(n * sizeof *b->events);
    b->missing = malloc(n * sizeof *b->missing);
    if (!b->events || !b->missing) {
        free(b->events);
        free(b->missing);
        free(b);
        return NULL;
    }
    b->entries = entries;
    b->n = n;
    /* The lead of each key: its first acceptable entry. */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        ingest_entry *lead = NULL;
        for (; j < n && same_key(entries[i], entries[j]); j++)
            if (!lead && !entries[j]->rejected)
                lead = entries[j];
        if (lead)
            b->events[b->nevents++] = lead;
        i = j;
    }
    /* Events are inserted (and take their ids) in key order, not arrival
     * order: every group commit then locks the unique keys it inserts in
     * one global order, so two batches in flight on different connections
     * that share keys wait for each other at most one way, never in a
     * cycle (a deadlock costs deadlock_timeout and a retry). Arrival order
     * within a group commit carries no meaning: concurrent callers' records
     * interleave by chance, and consumers order by event time. */
    return b;
}

/* Free the connection slot the batch held. */
static void batch_release(batch *b)
{
    ingest_writer *w = b->w;
    w->in_flight--;
    w->in_flight_pg[b->pg]--;
}

/* Answer every entry of the batch with `status` and free it (the slot is
 * already released or was never taken). */
static void batch_answer(batch *b, int status, const char *message)
{
    ingest_writer *w = b->w;
    for (size_t i = 0; i < b->n; i++)
        ingest_entry_done(b->entries[i], status, message);
    batch_free(b);
    if (w->head && !w->stopping)
        flush(w);
}

static void count(ingest_writer *w, const char *outcome, uint64_t n)
{
    if (!w->metrics || n == 0)
        return;
    if (tw_metrics_counter_add(w->metrics, "tidewatch_ingest_records_total",
                               "Records answered, by outcome.", "outcome", outcome,
                               (double)n) != 0)
        TW_DEBUG(NULL, "metrics refused an update");
}

/* ---- outcomes ---------------------------------------------------------------- */

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A bytea digest in text form ("\x" and 64 hex digits) into e's stored
 * digest; anything else (NULL: an event from before digests) leaves it
 * unknown. */
static void take_stored_digest(ingest_entry *e, const PGresult *r, int row, int col)
{
    e->has_stored_digest = 0;
    if (PQgetisnull(r, row, col))
        return;
    const char *s = PQgetvalue(r, row, col);
    if (strlen(s) != 2 + 2 * INGEST_DIGEST_LEN || s[0] != '\\' || s[1] != 'x')
        return;
    for (size_t i = 0; i < INGEST_DIGEST_LEN; i++) {
        int hi = hexval(s[2 + 2 * i]), lo = hexval(s[3 + 2 * i]);
        if (hi < 0 || lo < 0)
            return;
        e->stored_digest[i] = (uint8_t)(hi << 4 | lo);
    }
    e->has_stored_digest = 1;
}

/* DUPLICATE when `e` says what is stored (or what is stored has no
 * digest), CONFLICT when it says something else. */
static int compare_outcome(const ingest_entry *e, const ingest_entry *lead)
{
    if (!lead->has_stored_digest ||
        memcmp(e->digest, lead->stored_digest, INGEST_DIGEST_LEN) == 0)
        return OUTCOME(DUPLICATE);
    return OUTCOME(CONFLICT);
}

/* Every lead has its id and stored digest: answer the batch. */
static void batch_settle(batch *b)
{
    ingest_writer *w = b->w;
    uint64_t accepted = 0, duplicates = 0, conflicts = 0, rejected = 0;
    for (size_t i = 0; i < b->n;) {
        size_t j = i;
        ingest_entry *lead = NULL;
        for (; j < b->n && same_key(b->entries[i], b->entries[j]); j++) {
            ingest_entry *e = b->entries[j];
            if (e->rejected) {
                e->outcome = OUTCOME(REJECTED);
            } else if (!lead) {
                lead = e;
                if (e->outcome != OUTCOME(ACCEPTED))
                    e->outcome = compare_outcome(e, e);
            } else {
                e->event_id = lead->event_id;
                e->outcome = compare_outcome(e, lead);
            }
            switch (e->outcome) {
            case OUTCOME(ACCEPTED): accepted++; break;
            case OUTCOME(DUPLICATE): duplicates++; break;
            case OUTCOME(CONFLICT): conflicts++; break;
            default: rejected++; break;
            }
        }
        i = j;
    }
    count(w, "accepted", accepted);
    count(w, "duplicate", duplicates);
    count(w, "conflict", conflicts);
    count(w, "rejected", rejected);
    if (w->metrics &&
        tw_metrics_counter_add(w->metrics, "tidewatch_ingest_commits_total",
                               "Group-commit transactions.", NULL, NULL, 1) != 0)
        TW_DEBUG(NULL, "metrics refused an update");
    batch_release(b);
    batch_answer(b, TW_GRPC_OK, NULL);
}

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
            if (ord >= 1 && ord <= b->nmissing) {
                ingest_entry *e = b->missing[ord - 1];
                e->event_id = strtoll(PQgetvalue(r, i, 1), NULL, 10);
                take_stored_digest(e, r, i, 2);
            }
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

/* ---- failures ------------------------------------------------------------------ */

typedef enum {
    FAIL_RECORD,    /* a record can cause it: split */
    FAIL_RETRY,     /* serialization failure, deadlock: run again */
    FAIL_TRANSIENT, /* the database is away or short of resources */
    FAIL_SERVER,    /* our statements or privileges: everyone's problem */
} failure_kind;

static failure_kind classify(const tw_pg_outcome *o)
{
    if (o->kind != TW_PG_QUERY_ERROR)
        return FAIL_TRANSIENT;
    const char *s = o->sqlstate ? o->sqlstate : "";
    static const char *const record_classes[] = {"21", "22", "23", "54", "P0"};
    static const char *const transient_classes[] = {"08", "53", "57", "58"};
    for (size_t i = 0; i < sizeof record_classes / sizeof *record_classes; i++)
        if (strncmp(s, record_classes[i], 2) == 0)
            return FAIL_RECORD;
    if (strncmp(s, "40", 2) == 0)
        return FAIL_RETRY;
    for (size_t i = 0; i < sizeof transient_classes / sizeof *transient_classes; i++)
        if (strncmp(s, transient_classes[i], 2) == 0)
            return FAIL_TRANSIENT;
    return FAIL_SERVER;
}

/* The batch is one key group the database refused on its own: each of its
 * records is rejected with the database's reason (status OK: the rest of
 * each caller's records go on). */
static void refuse_group(batch *b, const tw_pg_outcome *o)
{
    const ingest_entry *e0 = b->entries[0];
    TW_ERROR(NULL, "the database refused record %s/%s (%s): %s", e0->source, e0->source_ref,
             o->sqlstate, o->message);
    size_t len = strlen(o->message);
    for (size_t i = 0; i < b->n; i++) {
        ingest_entry *e = b->entries[i];
        e->outcome = OUTCOME(REJECTED);
        e->refused = malloc(len + 1);
        if (e->refused)
            memcpy(e->refused, o->message, len + 1);
    }
    count(b->w, "rejected", b->n);
    batch_release(b);
    batch_answer(b, TW_GRPC_OK, NULL);
}

/* Split the batch at the key-group boundary nearest its middle and run
 * both halves as their own transactions. Returns 0, or -1 when it holds a
 * single group (or memory ran out) and cannot be split. */
static int batch_split(batch *b)
{
    size_t n = b->n, lo = n / 2, hi = n / 2;
    while (lo > 0 && same_key(b->entries[lo - 1], b->entries[lo]))
        lo--;
    while (hi < n && hi > 0 && same_key(b->entries[hi - 1], b->entries[hi]))
        hi++;
    size_t cut = lo > 0 && (hi >= n || n / 2 - lo <= hi - n / 2) ? lo : hi;
    if (cut == 0 || cut >= n)
        return -1;
    ingest_entry **left = malloc(cut * sizeof *left);
    ingest_entry **right = malloc((n - cut) * sizeof *right);
    batch *l = NULL, *r = NULL;
    if (left && right) {
        memcpy(left, b->entries, cut * sizeof *left);
        memcpy(right, b->entries + cut, (n - cut) * sizeof *right);
        l = batch_new(b->w, left, cut, b->depth + 1);
        r = l ? batch_new(b->w, right, n - cut, b->depth + 1) : NULL;
    }
    if (!l || !r) {
        if (l) {
            l->entries = NULL; /* the entries stay with b */
            batch_free(l);
        }
        free(left);
        free(right);
        return -1;
    }
    /* The halves own the entries now. */
    ingest_writer *w = b->w;
    batch_release(b);
    free(b->entries);
    b->entries = NULL;
    b->n = 0;
    batch_free(b);
    if (w->metrics && tw_metrics_counter_add(w->metrics, "tidewatch_ingest_batch_splits_total",
                                             "Group commits split to isolate a record the "
                                             "database refused.", NULL, NULL, 1) != 0)
        TW_DEBUG(NULL, "metrics refused an update");
    if (batch_start(l) != 0)
        batch_answer(l, TW_GRPC_INTERNAL, "could not form the database batch");
    if (batch_start(r) != 0)
        batch_answer(r, TW_GRPC_INTERNAL, "could not form the database batch");
    return 0;
}

static int batch_send(batch *b);

static void batch_cb(const tw_pg_outcome *o, void *arg)
{
    batch *b = arg;
    if (o->kind == TW_PG_OK) {
        const PGresult *r = o->results[0];
        if (b->nevents && (int)b->nevents != PQntuples(r)) {
            TW_ERROR(NULL, "group commit answered %d rows for %zu records", PQntuples(r),
                     b->nevents);
            batch_release(b);
            batch_answer(b, TW_GRPC_INTERNAL, "unexpected answer from the database");
            return;
        }
        for (size_t i = 0; i < b->nevents; i++) {
            ingest_entry *e = b->events[i];
            int row = (int)i;
            e->event_id = PQgetisnull(r, row, 1) ? 0 : strtoll(PQgetvalue(r, row, 1), NULL, 10);
            int inserted = PQgetvalue(r, row, 2)[0] == 't';
            e->correction_target_missing = PQgetvalue(r, row, 3)[0] == 't';
            if (inserted) {
                e->outcome = OUTCOME(ACCEPTED);
                e->has_stored_digest = 1;
                memcpy(e->stored_digest, e->digest, INGEST_DIGEST_LEN);
            } else {
                e->outcome = OUTCOME(DUPLICATE);
                take_stored_digest(e, r, row, 4);
                if (e->event_id == 0)
                    b->missing[b->nmissing++] = e;
            }
        }
        if (b->nmissing && lookup_missing(b) == 0)
            return; /* lookup_cb settles the batch */
        batch_settle(b);
        return;
    }
    switch (classify(o)) {
    case FAIL_RECORD:
        TW_WARN(NULL, "group commit of %zu records refused (%s: %s): %s", b->n, o->sqlstate,
                o->message, b->n > 1 ? "splitting it to find the cause" : "");
        if (batch_split(b) == 0)
            return;
        refuse_group(b, o);
        return;
    case FAIL_RETRY:
        if (b->retries < MAX_RETRIES) {
            b->retries++;
            TW_INFO(NULL, "group commit of %zu records hit %s (%s): retry %d", b->n, o->sqlstate,
                    o->message, b->retries);
            batch_release(b);
            if (batch_send(b) != 0)
                batch_answer(b, TW_GRPC_INTERNAL, "could not send the database batch");
            return;
        }
        TW_WARN(NULL, "group commit of %zu records: %s (%s) after %d retries", b->n,
                o->message, o->sqlstate, MAX_RETRIES);
        batch_release(b);
        batch_answer(b, TW_GRPC_UNAVAILABLE, "database busy with conflicting writes: retry");
        return;
    case FAIL_TRANSIENT:
        TW_WARN(NULL, "group commit of %zu records failed (%s): %s", b->n,
                tw_pg_kind_name(o->kind), o->message);
        batch_release(b);
        batch_answer(b, TW_GRPC_UNAVAILABLE,
                     o->kind == TW_PG_OUTCOME_UNKNOWN
                         ? "database connection lost during commit: retry (resubmitted records "
                           "are reported as duplicates)"
                         : "database unavailable: retry later");
        return;
    case FAIL_SERVER:
        TW_ERROR(NULL, "group commit of %zu records failed (%s): %s", b->n, o->sqlstate,
                 o->message);
        batch_release(b);
        batch_answer(b, TW_GRPC_INTERNAL, "the database refused the batch (see the server log)");
        return;
    }
}

/* ---- forming and sending -------------------------------------------------------- */

/* Build the statements' array parameters. Returns 0 or -1 (ENOMEM). */
static int batch_build(batch *b)
{
    tw_pgarray *a = b->arrays;
    static const Oid types[N_ARRAYS] = {
        TW_OID_TEXT,  TW_OID_TEXT,  TW_OID_INT2, TW_OID_TIMESTAMPTZ,
        TW_OID_TEXT,  TW_OID_TEXT,  TW_OID_TEXT, TW_OID_TEXT,        TW_OID_BYTEA,
        TW_OID_BYTEA, TW_OID_BYTEA, /* quarantine */ TW_OID_TEXT, TW_OID_TEXT, TW_OID_TEXT,
        TW_OID_JSON,  TW_OID_BYTEA, TW_OID_INT8, /* resolve */ TW_OID_TEXT, TW_OID_TEXT};
    for (int i = 0; i < N_ARRAYS; i++)
        tw_pgarray_begin(&a[i], types[i]);
    for (size_t i = 0; i < b->nevents; i++) {
        ingest_entry *e = b->events[i];
        tw_pgarray_text(&a[0], e->source);
        tw_pgarray_text(&a[1], e->source_ref);
        tw_pgarray_int2(&a[2], e->kind);
        if (e->has_time)
            tw_pgarray_timestamptz(&a[3], e->occurred_at);
        else
            tw_pgarray_null(&a[3]);
        /* principal: the database fills it (the login that appended) */
        tw_pgarray_text(&a[4], e->csource);
        tw_pgarray_text(&a[5], e->cref);
        tw_pgarray_text(&a[6], e->skeys);
        tw_pgarray_text(&a[7], e->hkeys);
        tw_pgarray_bytes(&a[8], e->doc, e->doc_len);
        tw_pgarray_bytes(&a[9], e->payload, e->payload_len);
        tw_pgarray_bytes(&a[10], e->digest, INGEST_DIGEST_LEN);
        tw_pgarray_text(&a[A_RESOLVE], e->source);
        tw_pgarray_text(&a[A_RESOLVE + 1], e->source_ref);
    }
    /* One quarantine row per key: the last rejected attempt, all counted. */
    b->nquarantine = 0;
    for (size_t i = 0; i < b->n;) {
        size_t j = i, attempts = 0;
        ingest_entry *last = NULL;
        for (; j < b->n && same_key(b->entries[i], b->entries[j]); j++)
            if (b->entries[j]->rejected) {
                last = b->entries[j];
                attempts++;
            }
        i = j;
        if (!last)
            continue;
        tw_pgarray_text(&a[A_QUAR], last->source);
        tw_pgarray_text(&a[A_QUAR + 1], last->source_ref);
        tw_pgarray_null(&a[A_QUAR + 2]);
        tw_pgarray_json(&a[A_QUAR + 3], (const char *)last->doc, last->doc_len);
        tw_pgarray_bytes(&a[A_QUAR + 4], last->payload, last->payload_len);
        tw_pgarray_int8(&a[A_QUAR + 5], (int64_t)attempts);
        b->nquarantine++;
    }
    for (int i = 0; i < N_ARRAYS; i++)
        if (tw_pgarray_finish(&a[i]) != 0)
            return -1;
    return 0;
}

/* Send the built batch to the least busy connection that is up (or the
 * first, to fail fast) and take a slot. Returns 0, or -1 (no slot taken). */
static int batch_send(batch *b)
{
    ingest_writer *w = b->w;
    const char *v[N_ARRAYS];
    int l[N_ARRAYS], f[N_ARRAYS];
    for (int i = 0; i < N_ARRAYS; i++) {
        v[i] = (const char *)b->arrays[i].data;
        l[i] = (int)b->arrays[i].len;
        f[i] = 1;
    }
    tw_pg_stmt steps[4];
    size_t n = 0;
    /* batch_cb reads the events step's rows from results[0] (when there are
     * no events, results[0] is the quarantine step's and is not read). */
    if (b->nevents)
        steps[n++] = (tw_pg_stmt){.stmt = "ingest_events", .nparams = N_EVENT_PARAMS,
                                  .values = v + A_EVENTS, .lengths = l + A_EVENTS,
                                  .formats = f + A_EVENTS};
    if (b->nquarantine)
        steps[n++] = (tw_pg_stmt){.stmt = "ingest_quarantine", .nparams = N_QUAR_PARAMS,
                                  .values = v + A_QUAR, .lengths = l + A_QUAR,
                                  .formats = f + A_QUAR};
    if (b->nevents) {
        steps[n++] = (tw_pg_stmt){.stmt = "ingest_resolve", .nparams = N_RESOLVE_PARAMS,
                                  .values = v + A_RESOLVE, .lengths = l + A_RESOLVE,
                                  .formats = f + A_RESOLVE};
        steps[n++] = (tw_pg_stmt){.stmt = SQL_NOTIFY};
    }
    if (n == 0)
        return -1; /* cannot happen: every entry is an event or a quarantine row */
    size_t pick = 0;
    int found = 0;
    for (size_t i = 0; i < w->npg; i++) {
        if (!tw_pg_is_up(w->pg[i]))
            continue;
        if (!found || w->in_flight_pg[i] < w->in_flight_pg[pick])
            pick = i;
        found = 1;
    }
    if (tw_pg_batch(w->pg[pick], steps, n, batch_cb, b) != 0)
        return -1;
    b->pg = pick;
    w->in_flight++;
    w->in_flight_pg[pick]++;
    return 0;
}

static int batch_start(batch *b)
{
    return batch_build(b) == 0 && batch_send(b) == 0 ? 0 : -1;
}

static void fail_entries(ingest_entry **entries, size_t n, int status, const char *message)
{
    for (size_t i = 0; i < n; i++)
        ingest_entry_done(entries[i], status, message);
}

static void flush(ingest_writer *w)
{
    int capacity = w->opts.max_in_flight * (int)w->npg;
    while (w->head && w->in_flight < capacity) {
        /* Up to batch_max records and batch_bytes bytes (one always). */
        size_t take = 0, bytes = 0;
        for (ingest_entry *e = w->head; e && take < w->opts.batch_max; e = e->next) {
            if (take && bytes + e->bytes > w->opts.batch_bytes)
                break;
            bytes += e->bytes;
            take++;
        }
        ingest_entry **entries = malloc(take * sizeof *entries);
        if (!entries) {
            TW_ERROR(NULL, "out of memory forming a batch");
            break; /* the timer retries */
        }
        for (size_t i = 0; i < take; i++) {
            ingest_entry *e = w->head;
            w->head = e->next;
            e->next = NULL;
            e->seq = i;
            entries[i] = e;
        }
        if (!w->head)
            w->tail = NULL;
        w->queued -= take;
        w->queued_bytes -= bytes;
        qsort(entries, take, sizeof *entries, cmp_key);
        batch *b = batch_new(w, entries, take, 0);
        if (!b) {
            fail_entries(entries, take, TW_GRPC_RESOURCE_EXHAUSTED, "out of memory");
            free(entries);
            continue;
        }
        if (batch_start(b) != 0)
            batch_answer(b, TW_GRPC_INTERNAL, "could not form the database batch");
    }
    if (w->head && w->in_flight < capacity)
        arm_timer(w);
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
    w->queued_bytes = 0;
    if (w->timer)
        event_free(w->timer);
    w->timer = NULL;
}
