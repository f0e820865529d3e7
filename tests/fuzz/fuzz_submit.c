/* The decoding path of IngestService.Submit (and of each SubmitStream
 * message): the envelope walked on the wire with tw_pb_next, then each
 * record checked against the schema with tw_pb_check before protobuf-c
 * unpacks it.
 *
 * Invariants:
 *   - when the whole SubmitRequest unpacks with protobuf-c and the walk
 *     succeeds (the walk is stricter: protobuf-c keeps field numbers above
 *     2^29-1 as unknown fields), the walk finds exactly one slice per
 *     record;
 *   - when tw_pb_check accepts a record (clean or with unknown fields),
 *     protobuf-c unpacks it; the bytes protobuf-c asks for (each request
 *     rounded up to 16) never exceed the check's bound; the unpacked record
 *     holds unknown fields somewhere exactly when the verdict says so; and
 *     unpacking into an arena capped the way the daemon caps it (twice the
 *     bound, plus chunk slack) succeeds;
 *   - a rejected record has a verdict other than ok, a reason, and a path
 *     made of field names and indices. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tidewatch/v1/ingest.pb-c.h"
#include "tw_arena.h"
#include "tw_pbwalk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define CHUNK (64 * 1024)

typedef struct counting {
    size_t total;
} counting;

static void *count_alloc(void *data, size_t size)
{
    counting *c = data;
    c->total += ((size ? size : 1) + 15) & ~(size_t)15;
    return calloc(1, size ? size : 1);
}

static void count_free(void *data, void *p)
{
    (void)data;
    free(p);
}

/* Unknown fields anywhere in an unpacked message. */
static size_t unknown_fields(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    size_t n = m->n_unknown_fields;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < count; k++)
                n += unknown_fields(items[k]);
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)(base + f->offset);
        if (sub)
            n += unknown_fields(sub);
    }
    return n;
}

static void check_record(const uint8_t *p, size_t len)
{
    tw_pb_report rep;
    int rv = tw_pb_check(&tidewatch__v1__record__descriptor, p, len, &rep);
    CHECK(rv == (rep.verdict == TW_PB_OK ? 0 : rep.verdict == TW_PB_UNKNOWN_FIELD ? 1 : -1));
    for (const char *c = rep.path; *c; c++)
        CHECK((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.' ||
              *c == '[' || *c == ']');
    if (rv < 0) {
        CHECK(rep.reason[0] != '\0');
        return;
    }
    CHECK(rep.number == 0 || rv == 1);
    counting c = {0};
    ProtobufCAllocator counter = {.alloc = count_alloc, .free = count_free, .allocator_data = &c};
    ProtobufCMessage *m = protobuf_c_message_unpack(&tidewatch__v1__record__descriptor, &counter,
                                                    len, p);
    CHECK(m != NULL);
    CHECK(c.total <= rep.unpacked);
    CHECK((unknown_fields(m) > 0) == (rv == 1));
    protobuf_c_message_free_unpacked(m, &counter);

    tw_arena a;
    tw_arena_init(&a, CHUNK);
    tw_arena_set_limit(&a, 2 * rep.unpacked + 3 * CHUNK);
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&a);
    CHECK(tidewatch__v1__record__unpack(&alloc, len, p) != NULL);
    tw_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (1u << 20))
        return 0;
    tw_arena a;
    tw_arena_init(&a, 0);
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&a);
    Tidewatch__V1__SubmitRequest *req = tidewatch__v1__submit_request__unpack(&alloc, size, data);
    size_t pos = 0, slices = 0;
    tw_pb_field f;
    int rv;
    while ((rv = tw_pb_next(data, size, &pos, &f)) == 1) {
        if (f.number != 1)
            continue;
        if (f.wire_type == 2) {
            Tidewatch__V1__Record *r = tidewatch__v1__record__unpack(&alloc, f.len, f.data);
            if (req && !r)
                abort(); /* the whole unpacked, so each record must */
            check_record(f.data, f.len);
        }
        slices++;
    }
    if (req && rv == 0 && slices != req->n_records)
        abort();
    /* The input as one record, too (a SubmitStream message). */
    check_record(data, size);
    tw_arena_free(&a);
    return 0;
}
