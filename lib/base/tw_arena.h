/* tw_arena: a bump allocator for per-request memory.
 *
 * Allocations are carved from chunks of `chunk_size` bytes and are never
 * freed one by one: tw_arena_reset releases everything at once (keeping one
 * chunk for reuse) and tw_arena_free returns all memory. Every pointer is
 * aligned to alignof(max_align_t). Requests larger than half a chunk get a
 * chunk of their own, so they neither waste the current chunk nor are
 * limited by chunk_size. The arena is not thread-safe.
 *
 * tw_arena_protobuf_allocator adapts an arena to protobuf-c: unpacked
 * messages then live in the arena and die with the next reset, with no
 * *_free_unpacked call.
 *
 * An arena may have a byte limit (tw_arena_set_limit): a request that would
 * make the arena hold more than `limit` bytes from malloc fails like an
 * allocation failure, and tw_arena_limit_hit says so. This bounds what a
 * hostile message can make protobuf-c allocate while unpacking. */
#ifndef TW_ARENA_H
#define TW_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stddef.h>

#define TW_ARENA_DEFAULT_CHUNK 8192

typedef struct tw_arena_chunk tw_arena_chunk;

typedef struct tw_arena {
    tw_arena_chunk *chunks; /* normal chunks, the one being filled first */
    tw_arena_chunk *large;  /* dedicated chunks for large allocations */
    size_t chunk_size;      /* payload bytes of a normal chunk */
    size_t allocated;       /* bytes currently obtained from malloc */
    size_t limit;           /* most bytes `allocated` may reach; 0: none */
    int limit_hit;          /* a request failed because of the limit */
} tw_arena;

/* Prepare an empty arena; no memory is allocated until the first request.
 * chunk_size 0 means TW_ARENA_DEFAULT_CHUNK; it is rounded up to the
 * alignment. Cannot fail. */
void tw_arena_init(tw_arena *a, size_t chunk_size);

/* Cap what the arena may hold from malloc (chunk headers included) at
 * `bytes`; 0 removes the cap. A cap below what it holds already only makes
 * further growth fail. Clears the limit_hit flag. */
void tw_arena_set_limit(tw_arena *a, size_t bytes);

/* 1 when a request failed because of the limit since the last
 * tw_arena_set_limit, reset or free; else 0. */
int tw_arena_limit_hit(const tw_arena *a);

/* Return `size` bytes (uninitialised) aligned to max_align_t, valid until the
 * next reset or free. size 0 yields a distinct valid pointer. Returns NULL
 * on allocation failure or when size overflows. */
void *tw_arena_alloc(tw_arena *a, size_t size) __attribute__((warn_unused_result));

/* Like tw_arena_alloc for n * size zeroed bytes; NULL if the product
 * overflows or memory runs out. */
void *tw_arena_calloc(tw_arena *a, size_t n, size_t size) __attribute__((warn_unused_result));

/* Copy the NUL-terminated string s into the arena. NULL on ENOMEM. */
char *tw_arena_strdup(tw_arena *a, const char *s) __attribute__((warn_unused_result));

/* Copy at most n bytes of s (stopping at a NUL) and terminate the copy;
 * handy for length-delimited input such as HTTP/2 header values. */
char *tw_arena_strndup(tw_arena *a, const char *s, size_t n) __attribute__((warn_unused_result));

/* Copy n bytes from p. NULL on ENOMEM. */
void *tw_arena_memdup(tw_arena *a, const void *p, size_t n) __attribute__((warn_unused_result));

/* printf into the arena. Returns the NUL-terminated result, or NULL on
 * ENOMEM or an encoding error. */
char *tw_arena_printf(tw_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)))
__attribute__((warn_unused_result));
char *tw_arena_vprintf(tw_arena *a, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)))
__attribute__((warn_unused_result));

/* Invalidate every allocation. Large chunks are released and a single
 * normal chunk is kept for the next request. The limit stays; limit_hit is
 * cleared. */
void tw_arena_reset(tw_arena *a);

/* Release all memory. The arena is left empty (its limit kept) and may be
 * used again. */
void tw_arena_free(tw_arena *a);

/* Bytes the arena currently holds from malloc (chunk headers included). */
size_t tw_arena_allocated(const tw_arena *a);

/* A protobuf-c allocator drawing ZEROED memory from `a` (protobuf-c 1.4.1
 * can leave fields unset when unpacking malformed input, so zeroing is
 * required); its free is a no-op. The returned struct borrows `a`, which must
 * outlive every message unpacked with it. Messages are released by
 * tw_arena_reset/free, never by *_free_unpacked (which would be harmless). */
ProtobufCAllocator tw_arena_protobuf_allocator(tw_arena *a);

/* A process-wide allocator using calloc (zeroed) and free, for code that
 * unpacks onto the heap and releases with *_free_unpacked using the same
 * allocator. The struct is static and immutable in practice; do not modify
 * it. */
ProtobufCAllocator *tw_protobuf_zeroing_allocator(void);

#endif
