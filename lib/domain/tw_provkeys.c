/* tw_provkeys: the keys a batch reads and the identity rule (see
 * tw_provkeys.h). One open-addressing table of (kind, key) groups, each a
 * short list of (maker, item) in the order added; strings in an arena. */
#include "tw_provkeys.h"

#include <stdlib.h>
#include <string.h>

#include "tw_arena.h"

typedef struct ent {
    const char *maker;
    int64_t item;
    struct ent *next;
} ent;

typedef struct group {
    const char *key; /* NULL: free slot */
    int kind;
    uint32_t hash;
    size_t n;
    ent *first, *last;
} group;

struct tw_provkeys {
    tw_arena arena;
    group *slots;
    size_t cap;     /* power of two */
    size_t groups;  /* slots used */
    size_t count;   /* triples */
};

static uint32_t hash_of(int kind, const char *key)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 16777619u;
    }
    return h;
}

tw_provkeys *tw_provkeys_new(void)
{
    tw_provkeys *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    tw_arena_init(&k->arena, 0);
    k->cap = 1024;
    k->slots = calloc(k->cap, sizeof *k->slots);
    if (!k->slots) {
        tw_provkeys_free(k);
        return NULL;
    }
    return k;
}

void tw_provkeys_clear(tw_provkeys *k)
{
    memset(k->slots, 0, k->cap * sizeof *k->slots);
    k->groups = 0;
    k->count = 0;
    tw_arena_reset(&k->arena);
}

void tw_provkeys_free(tw_provkeys *k)
{
    if (!k)
        return;
    free(k->slots);
    tw_arena_free(&k->arena);
    free(k);
}

/* The slot of (kind, key): its group, or the free slot where it goes. */
static group *slot(const tw_provkeys *k, int kind, const char *key, uint32_t h)
{
    size_t mask = k->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        group *g = &k->slots[i];
        if (!g->key || (g->hash == h && g->kind == kind && strcmp(g->key, key) == 0))
            return g;
    }
}

static int grow(tw_provkeys *k)
{
    size_t ncap = k->cap * 2;
    group *ns = calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < k->cap; i++) {
        group *g = &k->slots[i];
        if (!g->key)
            continue;
        size_t j = g->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *g;
    }
    free(k->slots);
    k->slots = ns;
    k->cap = ncap;
    return 0;
}

static const group *find(const tw_provkeys *k, int kind, const char *key)
{
    const group *g = slot(k, kind, key, hash_of(kind, key));
    return g->key ? g : NULL;
}

static const ent *find_maker(const group *g, const char *maker)
{
    for (const ent *e = g ? g->first : NULL; e; e = e->next)
        if (strcmp(e->maker, maker) == 0)
            return e;
    return NULL;
}

int tw_provkeys_has(const tw_provkeys *k, int kind, const char *key, const char *maker)
{
    return find_maker(find(k, kind, key), maker) != NULL;
}

int tw_provkeys_add(tw_provkeys *k, int kind, const char *key, const char *maker, int64_t item)
{
    if ((k->groups + 1) * 10 > k->cap * 7 && grow(k) != 0)
        return -1;
    uint32_t h = hash_of(kind, key);
    group *g = slot(k, kind, key, h);
    if (g->key && find_maker(g, maker))
        return 0;
    ent *e = tw_arena_alloc(&k->arena, sizeof *e);
    const char *m = tw_arena_strdup(&k->arena, maker);
    if (!e || !m)
        return -1;
    if (!g->key) {
        const char *kk = tw_arena_strdup(&k->arena, key);
        if (!kk)
            return -1;
        *g = (group){.key = kk, .kind = kind, .hash = h};
        k->groups++;
    }
    *e = (ent){.maker = m, .item = item};
    if (g->last)
        g->last->next = e;
    else
        g->first = e;
    g->last = e;
    g->n++;
    k->count++;
    return 1;
}

int64_t tw_provkeys_item(const tw_provkeys *k, int kind, const char *key, const char *maker)
{
    const group *g = find(k, kind, key);
    if (!g)
        return 0;
    const ent *e;
    if (maker[0] && (e = find_maker(g, maker)))
        return e->item;
    if (g->n == 1 && (!maker[0] || !g->first->maker[0]))
        return g->first->item;
    if (!maker[0] && g->n > 1 && (e = find_maker(g, "")))
        return e->item;
    return 0;
}

size_t tw_provkeys_count(const tw_provkeys *k) { return k->count; }
