/* The decoding path of IngestService.Submit: a SubmitRequest unpacked with
 * the zeroing arena allocator, and the records' raw bytes located with
 * tw_pbwalk. Invariants: no crash or leak; when both the request unpacks
 * and the walk succeeds (the walk is stricter: protobuf-c keeps field
 * numbers above 2^29-1 as unknown fields, the handler then answers
 * INVALID_ARGUMENT), the walk finds exactly one slice per record, each of
 * which unpacks as a Record on its own. */
#include <stdint.h>
#include <stdlib.h>

#include "tidewatch/v1/ingest.pb-c.h"
#include "tw_arena.h"
#include "tw_pbwalk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
        }
        slices++;
    }
    if (req && rv == 0 && slices != req->n_records)
        abort();
    tw_arena_free(&a);
    return 0;
}
