/* tw_reflection: gRPC server reflection (grpc.reflection.v1 and v1alpha).
 *
 * protobuf-c keeps no descriptor bytes, so the build embeds the output of
 * `protoc --descriptor_set_out --include_imports` (tw_descriptor_set in
 * tw_proto). tw_reflection_new indexes that FileDescriptorSet once: file
 * name -> file, fully-qualified symbol -> file, extension -> file. Each
 * file's FileDescriptorProto is served as the exact bytes protoc wrote.
 *
 * tw_reflection_answer is a pure function (one ServerReflectionRequest in,
 * one ServerReflectionResponse out), tested and fuzzed without a socket.
 * tw_reflection_register (in tw_reflection_service.c) binds it to a
 * tw_grpc_server as the bidi method ServerReflectionInfo of both versions.
 *
 * v1 and v1alpha messages are wire-identical (same field numbers and types,
 * only the package differs), so one implementation answers both. */
#ifndef TW_REFLECTION_H
#define TW_REFLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "tw_grpc_server.h"

typedef struct tw_reflection tw_reflection;

/* Index a serialized google.protobuf.FileDescriptorSet. The bytes are
 * copied, so `fdset` may be freed afterwards. Symbols indexed per file:
 * messages (nested ones too), their fields and oneofs, enums and their
 * values (in the enum's enclosing scope, as protobuf does), services,
 * methods ("pkg.Service.Method") and extensions.
 *
 * Returns NULL when the bytes are not a well-formed FileDescriptorSet, when
 * two files share a name, when a file has no name, or on allocation
 * failure. Dependencies absent from the set are skipped when answering.
 * The set is trusted build output: nesting depth is capped, sizes are not. */
tw_reflection *tw_reflection_new(const uint8_t *fdset, size_t len) TW_WUR;

/* Free everything tw_reflection_new and tw_reflection_register allocated.
 * Every server it was registered on must be freed first. NULL is a no-op. */
void tw_reflection_free(tw_reflection *r);

/* Number of files in the set (for tests and diagnostics). */
size_t tw_reflection_file_count(const tw_reflection *r);

/* Answer one serialized ServerReflectionRequest (`req`, `len`; untrusted)
 * with one serialized ServerReflectionResponse. `v1alpha` says which
 * package the stream speaks; the encoding is the same either way.
 * `services` (nservices names, borrowed) is what list_services returns.
 *
 * The response echoes the request's host as valid_host and the request
 * itself as original_request, and carries one of:
 *   list_services                  -> list_services_response
 *   file_by_filename,
 *   file_containing_symbol,
 *   file_containing_extension      -> file_descriptor_response: the file
 *                                     first, then its transitive
 *                                     dependencies, each once
 *   all_extension_numbers_of_type  -> all_extension_numbers_response
 *   unknown file/symbol/type/extension -> error_response NOT_FOUND (5)
 *   no request set                 -> error_response UNIMPLEMENTED (12)
 *
 * On success returns 0 and sets *resp to a malloc'd buffer (the caller
 * frees it; never NULL, even for an empty encoding) and *resp_len to its
 * length. Returns -1 and sets nothing when the request bytes are not a
 * valid ServerReflectionRequest, or on allocation failure. */
int tw_reflection_answer(tw_reflection *r, int v1alpha, const char *const *services,
                         size_t nservices, const uint8_t *req, size_t len, uint8_t **resp,
                         size_t *resp_len) TW_WUR;

/* Register /grpc.reflection.v1.ServerReflection/ServerReflectionInfo and
 * /grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo on `s`.
 * Each request message gets one response message; a malformed request ends
 * the call with INVALID_ARGUMENT; half-close ends it with OK. The service
 * list is read from the server when each request is answered, so services
 * added later (and reflection itself) are listed.
 *
 * `r` must outlive `s` (it may be registered on several servers). Returns 0,
 * or -1 if the paths are already registered on `s` or on allocation
 * failure. */
int tw_reflection_register(tw_reflection *r, tw_grpc_server *s) TW_WUR;

#endif
