/* tw_cluster: party clusters by union-find over shared identifiers and
 * names at one address. See tw_cluster.h for the contract.
 *
 * Grouping is done by sorting (identifier memberships, name/address keys)
 * rather than hashing: it is O(m log m) in the number of memberships, needs
 * no table sizing, and its order is the canonical order the output needs. */
#include "tw_cluster.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tw_places.h"

/* An observation in canonical form (strings in the result's arena). */
typedef struct {
    int64_t event_id;
    const char *field;
    tw_cluster_party_kind kind;
    const char *name_key;
    const char *address;
    tw_cluster_ident *idents; /* linkable only, sorted by kind and value, unique */
    size_t n_idents;
    size_t input_index;
} obs_c;

/* Observation idx carries identifier id (side: 1 among agencies). */
typedef struct {
    int side;
    const tw_cluster_ident *id;
    const char *name_key;
    size_t idx;
} membership;

/* A link found, over canonical indices. */
typedef struct {
    size_t a, b;
    tw_cluster_via via;
    tw_cluster_id_kind id_kind;
    const char *value;
    const char *address;
} raw_link;

typedef struct {
    size_t *parent;
    size_t *size;
} uf;

static size_t uf_find(uf *u, size_t x)
{
    size_t r = x;
    while (u->parent[r] != r)
        r = u->parent[r];
    while (u->parent[x] != r) { /* path compression */
        size_t next = u->parent[x];
        u->parent[x] = r;
        x = next;
    }
    return r;
}

/* Join the sets of a and b (union by size); 1 when they were apart. */
static int uf_union(uf *u, size_t a, size_t b)
{
    size_t ra = uf_find(u, a), rb = uf_find(u, b);
    if (ra == rb)
        return 0;
    if (u->size[ra] < u->size[rb]) {
        size_t t = ra;
        ra = rb;
        rb = t;
    }
    u->parent[rb] = ra;
    u->size[ra] += u->size[rb];
    return 1;
}

static int cmp_ident(const tw_cluster_ident *a, const tw_cluster_ident *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return strcmp(a->value, b->value);
}

static int cmp_ident_q(const void *pa, const void *pb)
{
    return cmp_ident(pa, pb);
}

static int cmp_obs(const void *pa, const void *pb)
{
    const obs_c *a = pa, *b = pb;
    if (a->event_id != b->event_id)
        return a->event_id < b->event_id ? -1 : 1;
    int c = strcmp(a->field, b->field);
    if (c)
        return c;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if ((c = strcmp(a->name_key, b->name_key)) || (c = strcmp(a->address, b->address)))
        return c;
    if (a->n_idents != b->n_idents)
        return a->n_idents < b->n_idents ? -1 : 1;
    for (size_t i = 0; i < a->n_idents; i++)
        if ((c = cmp_ident(&a->idents[i], &b->idents[i])))
            return c;
    return 0;
}

static int cmp_membership(const void *pa, const void *pb)
{
    const membership *a = pa, *b = pb;
    if (a->side != b->side)
        return a->side < b->side ? -1 : 1;
    int c = cmp_ident(a->id, b->id);
    if (c || (c = strcmp(a->name_key, b->name_key)))
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Sorting observation indices by kind, name key, address, index. */
static int cmp_name_addr(const obs_c *a, const obs_c *b)
{
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    int c = strcmp(a->name_key, b->name_key);
    return c ? c : strcmp(a->address, b->address);
}

typedef struct {
    const obs_c *o;
    size_t idx;
} name_ref;

static int cmp_name_ref(const void *pa, const void *pb)
{
    const name_ref *a = pa, *b = pb;
    int c = cmp_name_addr(a->o, b->o);
    if (c)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

void tw_cluster_options_init(tw_cluster_options *opt)
{
    opt->max_names_per_identifier = TW_CLUSTER_DEFAULT_MAX_NAMES;
}

static const char *const id_names[] = {"other", "phone", "email", "vat", "company_number",
                                       "identity_document"};

tw_cluster_id_kind tw_cluster_id_kind_from_name(const char *name)
{
    if (!name)
        return TW_CLUSTER_ID_OTHER;
    for (size_t i = 1; i < sizeof id_names / sizeof id_names[0]; i++)
        if (strcmp(name, id_names[i]) == 0)
            return (tw_cluster_id_kind)i;
    return TW_CLUSTER_ID_OTHER;
}

const char *tw_cluster_id_kind_name(tw_cluster_id_kind kind)
{
    if ((unsigned)kind >= sizeof id_names / sizeof id_names[0])
        return "other";
    return id_names[kind];
}

const char *tw_cluster_party_kind_name(tw_cluster_party_kind kind)
{
    switch (kind) {
    case TW_CLUSTER_PERSON: return "person";
    case TW_CLUSTER_COMPANY: return "company";
    case TW_CLUSTER_AGENCY: return "agency";
    }
    return "unknown";
}

void tw_cluster_result_free(tw_cluster_result *r)
{
    if (!r)
        return;
    tw_arena_free(&r->arena);
    free(r);
}

static int check_input(const tw_cluster_obs *obs, size_t n)
{
    if (n && !obs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if ((unsigned)obs[i].kind > TW_CLUSTER_AGENCY)
            return -1;
        if (obs[i].n_idents && !obs[i].idents)
            return -1;
        for (size_t k = 0; k < obs[i].n_idents; k++)
            if ((unsigned)obs[i].idents[k].kind > TW_CLUSTER_ID_IDENTITY_DOCUMENT)
                return -1;
    }
    return 0;
}

/* Canonical copy of one observation into the arena; 0 or -1 (ENOMEM). */
static int canon(tw_arena *a, const tw_cluster_obs *in, size_t index, obs_c *o)
{
    char key[TW_PLACE_KEY_MAX];
    const char *name = in->name ? in->name : "";
    if (tw_place_key(name, strlen(name), 0, key, sizeof key) < 0)
        key[0] = '\0';
    o->event_id = in->event_id;
    o->kind = in->kind;
    o->input_index = index;
    o->field = tw_arena_strdup(a, in->field ? in->field : "");
    o->name_key = tw_arena_strdup(a, key);
    o->address = tw_arena_strdup(a, in->address ? in->address : "");
    if (!o->field || !o->name_key || !o->address)
        return -1;
    o->n_idents = 0;
    o->idents = NULL;
    if (!in->n_idents)
        return 0;
    o->idents = tw_arena_calloc(a, in->n_idents, sizeof *o->idents);
    if (!o->idents)
        return -1;
    for (size_t k = 0; k < in->n_idents; k++) {
        const tw_cluster_ident *id = &in->idents[k];
        if (id->kind == TW_CLUSTER_ID_OTHER || !id->value || !id->value[0])
            continue;
        tw_cluster_ident *d = &o->idents[o->n_idents];
        d->kind = id->kind;
        if (!(d->value = tw_arena_strdup(a, id->value)))
            return -1;
        o->n_idents++;
    }
    qsort(o->idents, o->n_idents, sizeof *o->idents, cmp_ident_q);
    size_t m = 0; /* drop repeats */
    for (size_t k = 0; k < o->n_idents; k++)
        if (m == 0 || cmp_ident(&o->idents[m - 1], &o->idents[k]) != 0)
            o->idents[m++] = o->idents[k];
    o->n_idents = m;
    return 0;
}

/* Identifier links and too-common identifiers. Returns 0 or -1 (ENOMEM). */
static int link_identifiers(tw_cluster_result *r, const obs_c *oc, size_t n, size_t max_names,
                            uf *u, raw_link *links, size_t *n_links)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += oc[i].n_idents;
    if (!m)
        return 0;
    membership *ms = calloc(m, sizeof *ms);
    if (!ms)
        return -1;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < oc[i].n_idents; k++)
            ms[j++] = (membership){.side = oc[i].kind == TW_CLUSTER_AGENCY,
                                   .id = &oc[i].idents[k],
                                   .name_key = oc[i].name_key,
                                   .idx = i};
    qsort(ms, m, sizeof *ms, cmp_membership);

    /* First pass: count too-common groups, to size the result's array. */
    size_t n_common = 0, cap_common = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (n_common) {
                r->too_common = tw_arena_calloc(&r->arena, n_common, sizeof *r->too_common);
                if (!r->too_common) {
                    free(ms);
                    return -1;
                }
            }
            cap_common = n_common;
            n_common = 0;
        }
        for (size_t g = 0; g < m;) {
            size_t e = g + 1;
            while (e < m && ms[e].side == ms[g].side && cmp_ident(ms[e].id, ms[g].id) == 0)
                e++;
            size_t names = 0;
            for (size_t k = g; k < e; k++)
                if (ms[k].name_key[0] &&
                    (k == g || strcmp(ms[k].name_key, ms[k - 1].name_key) != 0))
                    names++;
            if (max_names && names > max_names) {
                if (pass == 1 && n_common < cap_common)
                    r->too_common[n_common] = (tw_cluster_common){.kind = ms[g].id->kind,
                                                                 .value = ms[g].id->value,
                                                                 .agencies = ms[g].side,
                                                                 .observations = e - g,
                                                                 .names = names};
                n_common++;
            } else if (pass == 1) {
                for (size_t k = g + 1; k < e; k++)
                    if (uf_union(u, ms[g].idx, ms[k].idx))
                        links[(*n_links)++] = (raw_link){.a = ms[g].idx,
                                                         .b = ms[k].idx,
                                                         .via = TW_CLUSTER_VIA_IDENTIFIER,
                                                         .id_kind = ms[g].id->kind,
                                                         .value = ms[g].id->value,
                                                         .address = ""};
            }
            g = e;
        }
    }
    r->n_too_common = n_common;
    free(ms);
    return 0;
}

/* Links by kind + name key + non-empty address. Returns 0 or -1 (ENOMEM). */
static int link_names(const obs_c *oc, size_t n, uf *u, raw_link *links, size_t *n_links)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += oc[i].name_key[0] && oc[i].address[0];
    if (m < 2)
        return 0;
    name_ref *refs = calloc(m, sizeof *refs);
    if (!refs)
        return -1;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (oc[i].name_key[0] && oc[i].address[0])
            refs[j++] = (name_ref){.o = &oc[i], .idx = i};
    qsort(refs, m, sizeof *refs, cmp_name_ref);
    for (size_t g = 0; g < m;) {
        size_t e = g + 1;
        while (e < m && cmp_name_addr(refs[e].o, refs[g].o) == 0)
            e++;
        for (size_t k = g + 1; k < e; k++)
            if (uf_union(u, refs[g].idx, refs[k].idx))
                links[(*n_links)++] = (raw_link){.a = refs[g].idx,
                                                 .b = refs[k].idx,
                                                 .via = TW_CLUSTER_VIA_NAME_ADDRESS,
                                                 .id_kind = TW_CLUSTER_ID_OTHER,
                                                 .value = refs[g].o->name_key,
                                                 .address = refs[g].o->address};
        g = e;
    }
    free(refs);
    return 0;
}

/* Lay out members, clusters and links from the union-find. 0 or -1. */
static int assemble(tw_cluster_result *r, const obs_c *oc, size_t n, uf *u,
                    const raw_link *links, size_t n_links)
{
    int rc = -1;
    size_t *cl = malloc(n * sizeof *cl);     /* root -> cluster number, then obs -> cluster */
    size_t *pos = malloc(n * sizeof *pos);   /* canonical index -> member index */
    size_t *fill = NULL;
    if (!cl || !pos)
        goto out;
    for (size_t i = 0; i < n; i++)
        cl[i] = SIZE_MAX;
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) { /* canonical order: smallest event id first */
        size_t root = uf_find(u, i);
        if (cl[root] == SIZE_MAX)
            cl[root] = nc++;
    }
    r->clusters = tw_arena_calloc(&r->arena, nc, sizeof *r->clusters);
    r->members = tw_arena_calloc(&r->arena, n, sizeof *r->members);
    if (n_links)
        r->links = tw_arena_calloc(&r->arena, n_links, sizeof *r->links);
    fill = calloc(nc, sizeof *fill);
    if (!r->clusters || !r->members || (n_links && !r->links) || !fill)
        goto out;
    r->n_clusters = nc;
    r->n_members = n;
    r->n_links = n_links;
    for (size_t i = 0; i < n; i++) {
        tw_cluster *c = &r->clusters[cl[uf_find(u, i)]];
        if (c->n_members == 0)
            c->min_event_id = oc[i].event_id;
        c->n_members++;
    }
    for (size_t k = 0; k < n_links; k++)
        r->clusters[cl[uf_find(u, links[k].a)]].n_links++;
    size_t mstart = 0, lstart = 0;
    for (size_t c = 0; c < nc; c++) {
        r->clusters[c].first_member = mstart;
        r->clusters[c].first_link = lstart;
        mstart += r->clusters[c].n_members;
        lstart += r->clusters[c].n_links;
    }
    for (size_t i = 0; i < n; i++) {
        size_t c = cl[uf_find(u, i)];
        size_t p = r->clusters[c].first_member + fill[c]++;
        pos[i] = p;
        r->members[p] = (tw_cluster_member){.event_id = oc[i].event_id,
                                            .field = oc[i].field,
                                            .kind = oc[i].kind,
                                            .name_key = oc[i].name_key,
                                            .address = oc[i].address,
                                            .input_index = oc[i].input_index,
                                            .cluster = c};
    }
    memset(fill, 0, nc * sizeof *fill);
    for (size_t k = 0; k < n_links; k++) {
        size_t c = cl[uf_find(u, links[k].a)];
        r->links[r->clusters[c].first_link + fill[c]++] =
            (tw_cluster_link){.a = pos[links[k].a],
                              .b = pos[links[k].b],
                              .via = links[k].via,
                              .id_kind = links[k].id_kind,
                              .value = links[k].value,
                              .address = links[k].address};
    }
    rc = 0;
out:
    free(fill);
    free(pos);
    free(cl);
    return rc;
}

int tw_cluster_build(const tw_cluster_obs *obs, size_t n, const tw_cluster_options *opt,
                     tw_cluster_result **out)
{
    tw_cluster_options defaults;
    obs_c *oc = NULL;
    raw_link *links = NULL;
    uf u = {0};
    *out = NULL;
    if (check_input(obs, n) < 0) {
        errno = EINVAL;
        return -1;
    }
    if (!opt) {
        tw_cluster_options_init(&defaults);
        opt = &defaults;
    }
    tw_cluster_result *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return -1;
    }
    tw_arena_init(&r->arena, 0);
    if (n == 0) {
        *out = r;
        return 0;
    }
    oc = calloc(n, sizeof *oc);
    u.parent = malloc(n * sizeof *u.parent);
    u.size = malloc(n * sizeof *u.size);
    links = malloc(n * sizeof *links); /* a spanning forest has < n edges */
    if (!oc || !u.parent || !u.size || !links)
        goto fail;
    for (size_t i = 0; i < n; i++)
        if (canon(&r->arena, &obs[i], i, &oc[i]) < 0)
            goto fail;
    qsort(oc, n, sizeof *oc, cmp_obs);
    for (size_t i = 0; i < n; i++) {
        u.parent[i] = i;
        u.size[i] = 1;
    }
    size_t n_links = 0;
    if (link_identifiers(r, oc, n, opt->max_names_per_identifier, &u, links, &n_links) < 0 ||
        link_names(oc, n, &u, links, &n_links) < 0 || assemble(r, oc, n, &u, links, n_links) < 0)
        goto fail;
    free(links);
    free(u.size);
    free(u.parent);
    free(oc);
    *out = r;
    return 0;
fail:
    free(links);
    free(u.size);
    free(u.parent);
    free(oc);
    tw_cluster_result_free(r);
    errno = ENOMEM;
    return -1;
}
