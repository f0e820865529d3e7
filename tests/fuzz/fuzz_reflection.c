/* Fuzz tw_reflection_answer: the input is one ServerReflectionRequest as a
 * client would send it, answered against the real embedded descriptor set.
 * Any successful answer must be a parseable ServerReflectionResponse. */
#include <stdint.h>
#include <stdlib.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "tw_reflection.h"

extern const unsigned char tw_descriptor_set[];
extern const size_t tw_descriptor_set_len;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Built once and kept for the process (still reachable, not a leak). */
    static tw_reflection *r;
    static const char *const services[] = {
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    };
    if (!r) {
        r = tw_reflection_new(tw_descriptor_set, tw_descriptor_set_len);
        if (!r)
            abort();
    }
    for (int v1alpha = 0; v1alpha <= 1; v1alpha++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        if (tw_reflection_answer(r, v1alpha, services, 3, data, size, &out, &out_len) != 0)
            return 0;
        Grpc__Reflection__V1__ServerReflectionResponse *rs =
            grpc__reflection__v1__server_reflection_response__unpack(NULL, out_len, out);
        free(out);
        if (!rs || !rs->original_request)
            abort();
        grpc__reflection__v1__server_reflection_response__free_unpacked(rs, NULL);
    }
    return 0;
}
