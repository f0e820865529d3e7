/* Fuzz target for tw_cluster (party clusters).
 *
 * Input layout: byte 0 sets max_names_per_identifier (% 5; 0 disables the
 * cut-off); then 4 bytes per observation: party kind (% 3), name (% 8 from
 * a small pool with variants that fold together, one invalid UTF-8 and one
 * without letters), address (% 4, 0 empty), and a byte whose low 2 bits
 * give 0-3 identifiers and whose high bits the event id; each identifier
 * takes 2 more bytes: kind (% 6) and value (% 6 from a small pool). Small
 * pools make collisions, hence clusters, likely.
 *
 * Checked invariants: every observation is a member of exactly one cluster;
 * each cluster's ranges are consistent and it has n - 1 links; every link
 * joins two members of its own cluster, and the links connect the whole
 * cluster; clusters are ordered by their smallest event id; the result of
 * a permutation (reversed, and rotated) of the input is the same (but for
 * input_index). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_cluster.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

#define MAX_OBS 256

static const char *const names[] = {"Anna Alpha", "ANNA-alpha.", "Bert Beta", "Müller GmbH",
                                    "MULLER gmbh", "\xff\xfe bad", "!!!", NULL};
static const char *const addrs[] = {"", "calais 1", "dover 2", "calais 1 "};
static const char *const vals[] = {"+447700900001", "+447700900002", "a@example.org",
                                   "FR40303265045", "", "X1"};

static void check_result(const tw_cluster_result *r, size_t n)
{
    CHECK(r->n_members == n);
    char *seen = calloc(n ? n : 1, 1);
    size_t *root = malloc((n ? n : 1) * sizeof *root);
    CHECK(seen && root);
    for (size_t i = 0; i < n; i++) {
        CHECK(r->members[i].input_index < n);
        CHECK(!seen[r->members[i].input_index]);
        seen[r->members[i].input_index] = 1;
        CHECK(r->members[i].cluster < r->n_clusters);
    }
    size_t next_member = 0, next_link = 0;
    for (size_t c = 0; c < r->n_clusters; c++) {
        const tw_cluster *cl = &r->clusters[c];
        CHECK(cl->n_members > 0);
        CHECK(cl->first_member == next_member && cl->first_link == next_link);
        CHECK(cl->n_links == cl->n_members - 1);
        next_member += cl->n_members;
        next_link += cl->n_links;
        int64_t min = INT64_MAX;
        for (size_t i = cl->first_member; i < cl->first_member + cl->n_members; i++) {
            CHECK(r->members[i].cluster == c);
            if (r->members[i].event_id < min)
                min = r->members[i].event_id;
            root[i] = i;
        }
        CHECK(cl->min_event_id == min);
        if (c > 0)
            CHECK(r->clusters[c - 1].min_event_id <= cl->min_event_id);
        /* The links join members of this cluster and connect all of it. */
        size_t parts = cl->n_members;
        for (size_t k = cl->first_link; k < cl->first_link + cl->n_links; k++) {
            const tw_cluster_link *l = &r->links[k];
            CHECK(l->a < n && l->b < n);
            CHECK(r->members[l->a].cluster == c && r->members[l->b].cluster == c);
            CHECK(l->value && l->address);
            size_t x = l->a, y = l->b;
            while (root[x] != x)
                x = root[x];
            while (root[y] != y)
                y = root[y];
            if (x != y) {
                root[x] = y;
                parts--;
            }
        }
        CHECK(parts == 1);
    }
    CHECK(next_member == n && next_link == r->n_links);
    free(root);
    free(seen);
}

static void check_same(const tw_cluster_result *x, const tw_cluster_result *y)
{
    CHECK(x->n_members == y->n_members && x->n_clusters == y->n_clusters);
    CHECK(x->n_links == y->n_links && x->n_too_common == y->n_too_common);
    for (size_t i = 0; i < x->n_members; i++) {
        const tw_cluster_member *a = &x->members[i], *b = &y->members[i];
        CHECK(a->event_id == b->event_id && a->kind == b->kind && a->cluster == b->cluster);
        CHECK(!strcmp(a->field, b->field) && !strcmp(a->name_key, b->name_key));
        CHECK(!strcmp(a->address, b->address));
    }
    for (size_t c = 0; c < x->n_clusters; c++)
        CHECK(!memcmp(&x->clusters[c], &y->clusters[c], sizeof x->clusters[c]));
    for (size_t k = 0; k < x->n_links; k++) {
        const tw_cluster_link *a = &x->links[k], *b = &y->links[k];
        CHECK(a->a == b->a && a->b == b->b && a->via == b->via && a->id_kind == b->id_kind);
        CHECK(!strcmp(a->value, b->value) && !strcmp(a->address, b->address));
    }
    for (size_t k = 0; k < x->n_too_common; k++) {
        const tw_cluster_common *a = &x->too_common[k], *b = &y->too_common[k];
        CHECK(a->kind == b->kind && a->agencies == b->agencies && !strcmp(a->value, b->value));
        CHECK(a->observations == b->observations && a->names == b->names);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static tw_cluster_obs obs[MAX_OBS], perm[MAX_OBS];
    static tw_cluster_ident ids[MAX_OBS][3];
    tw_cluster_options opt;
    tw_cluster_options_init(&opt);
    opt.max_names_per_identifier = data[0] % 5;
    size_t p = 1, n = 0;
    while (n < MAX_OBS && p + 4 <= size) {
        tw_cluster_obs *o = &obs[n];
        o->kind = (tw_cluster_party_kind)(data[p] % 3);
        o->name = names[data[p + 1] % 8];
        o->address = addrs[data[p + 2] % 4];
        size_t ni = data[p + 3] & 3u;
        o->event_id = data[p + 3] >> 2;
        o->field = (data[p] & 0x80) ? "shipment.consignee" : "purchase.buyer";
        p += 4;
        size_t k = 0;
        for (; k < ni && p + 2 <= size; k++, p += 2)
            ids[n][k] = (tw_cluster_ident){.kind = (tw_cluster_id_kind)(data[p] % 6),
                                           .value = vals[data[p + 1] % 6]};
        o->idents = k ? ids[n] : NULL;
        o->n_idents = k;
        n++;
    }
    tw_cluster_result *r = NULL, *r2 = NULL;
    CHECK(tw_cluster_build(obs, n, &opt, &r) == 0 && r);
    check_result(r, n);
    for (size_t i = 0; i < n; i++) /* reversed */
        perm[i] = obs[n - 1 - i];
    CHECK(tw_cluster_build(perm, n, &opt, &r2) == 0 && r2);
    check_result(r2, n);
    check_same(r, r2);
    tw_cluster_result_free(r2);
    for (size_t i = 0; i < n; i++) /* rotated by a third */
        perm[i] = obs[(i + n / 3) % n];
    CHECK(tw_cluster_build(perm, n, &opt, &r2) == 0 && r2);
    check_same(r, r2);
    tw_cluster_result_free(r2);
    tw_cluster_result_free(r);
    return 0;
}
