#include "tw_arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN (alignof(max_align_t))

struct tw_arena_chunk {
    tw_arena_chunk *next;
    size_t cap;  /* payload bytes */
    size_t used; /* payload bytes handed out */
    max_align_t data[];
};

/* Round n up to the alignment; 0 on overflow. */
static size_t round_up(size_t n)
{
    if (n > SIZE_MAX - (ALIGN - 1))
        return 0;
    return (n + ALIGN - 1) & ~(ALIGN - 1);
}

static tw_arena_chunk *chunk_new(tw_arena *a, size_t cap)
{
    if (cap > SIZE_MAX - sizeof(tw_arena_chunk))
        return NULL;
    if (a->limit && (sizeof(tw_arena_chunk) + cap > a->limit ||
                     a->allocated > a->limit - sizeof(tw_arena_chunk) - cap)) {
        a->limit_hit = 1;
        return NULL;
    }
    tw_arena_chunk *c = malloc(sizeof *c + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    a->allocated += sizeof *c + cap;
    return c;
}

static void chunk_release(tw_arena *a, tw_arena_chunk *c)
{
    a->allocated -= sizeof *c + c->cap;
    free(c);
}

void tw_arena_init(tw_arena *a, size_t chunk_size)
{
    a->chunks = NULL;
    a->large = NULL;
    size_t cs = round_up(chunk_size ? chunk_size : TW_ARENA_DEFAULT_CHUNK);
    a->chunk_size = cs ? cs : TW_ARENA_DEFAULT_CHUNK;
    a->allocated = 0;
    a->limit = 0;
    a->limit_hit = 0;
}

void tw_arena_set_limit(tw_arena *a, size_t bytes)
{
    a->limit = bytes;
    a->limit_hit = 0;
}

int tw_arena_limit_hit(const tw_arena *a)
{
    return a->limit_hit;
}

void *tw_arena_alloc(tw_arena *a, size_t size)
{
    size_t need = round_up(size ? size : 1);
    if (need == 0)
        return NULL;
    tw_arena_chunk *c = a->chunks;
    if (c && c->cap - c->used >= need) {
        void *p = (char *)c->data + c->used;
        c->used += need;
        return p;
    }
    if (need > a->chunk_size / 2) {
        c = chunk_new(a, need);
        if (!c)
            return NULL;
        c->used = need;
        c->next = a->large;
        a->large = c;
        return c->data;
    }
    c = chunk_new(a, a->chunk_size);
    if (!c)
        return NULL;
    c->used = need;
    c->next = a->chunks;
    a->chunks = c;
    return c->data;
}

void *tw_arena_calloc(tw_arena *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = tw_arena_alloc(a, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *tw_arena_memdup(tw_arena *a, const void *p, size_t n)
{
    void *q = tw_arena_alloc(a, n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

char *tw_arena_strndup(tw_arena *a, const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    if (len == SIZE_MAX)
        return NULL;
    char *q = tw_arena_alloc(a, len + 1);
    if (!q)
        return NULL;
    memcpy(q, s, len);
    q[len] = '\0';
    return q;
}

char *tw_arena_strdup(tw_arena *a, const char *s)
{
    return tw_arena_strndup(a, s, SIZE_MAX - 1);
}

char *tw_arena_vprintf(tw_arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return NULL;
    char *q = tw_arena_alloc(a, (size_t)n + 1);
    if (!q)
        return NULL;
    vsnprintf(q, (size_t)n + 1, fmt, ap);
    return q;
}

char *tw_arena_printf(tw_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *q = tw_arena_vprintf(a, fmt, ap);
    va_end(ap);
    return q;
}

void tw_arena_reset(tw_arena *a)
{
    a->limit_hit = 0;
    while (a->large) {
        tw_arena_chunk *next = a->large->next;
        chunk_release(a, a->large);
        a->large = next;
    }
    /* Keep the first chunk in the list, free the rest. */
    tw_arena_chunk *keep = a->chunks;
    if (!keep)
        return;
    tw_arena_chunk *c = keep->next;
    while (c) {
        tw_arena_chunk *next = c->next;
        chunk_release(a, c);
        c = next;
    }
    keep->next = NULL;
    keep->used = 0;
}

void tw_arena_free(tw_arena *a)
{
    tw_arena_reset(a);
    if (a->chunks)
        chunk_release(a, a->chunks);
    a->chunks = NULL;
}

size_t tw_arena_allocated(const tw_arena *a)
{
    return a->allocated;
}

static void *arena_pb_alloc(void *data, size_t size)
{
    return tw_arena_calloc(data, 1, size);
}

static void arena_pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

ProtobufCAllocator tw_arena_protobuf_allocator(tw_arena *a)
{
    ProtobufCAllocator al = {.alloc = arena_pb_alloc, .free = arena_pb_free, .allocator_data = a};
    return al;
}

static void *zeroing_alloc(void *data, size_t size)
{
    (void)data;
    return calloc(1, size ? size : 1);
}

static void zeroing_free(void *data, void *p)
{
    (void)data;
    free(p);
}

ProtobufCAllocator *tw_protobuf_zeroing_allocator(void)
{
    static ProtobufCAllocator al = {.alloc = zeroing_alloc, .free = zeroing_free,
                                    .allocator_data = NULL};
    return &al;
}
