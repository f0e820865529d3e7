/* Unit tests for tw_cluster: party clusters by shared identifiers and by a
 * name at one address, with the links that explain each cluster. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_cluster.h"

#define ID(k, v) ((tw_cluster_ident){.kind = (k), .value = (v)})

static tw_cluster_result *build(const tw_cluster_obs *obs, size_t n, const tw_cluster_options *opt)
{
    tw_cluster_result *r = NULL;
    int rc = tw_cluster_build(obs, n, opt, &r);
    cr_assert_eq(rc, 0, "tw_cluster_build failed: %s", strerror(errno));
    cr_assert_not_null(r);
    return r;
}

/* Cluster number of the observation with this input index. */
static size_t cluster_of(const tw_cluster_result *r, size_t input_index)
{
    for (size_t i = 0; i < r->n_members; i++)
        if (r->members[i].input_index == input_index)
            return r->members[i].cluster;
    cr_assert_fail("input %zu is in no cluster", input_index);
    return SIZE_MAX;
}

/* The ring: A-B share a phone, B-C an e-mail, C-D a VAT number, D-E a name
 * at one address. Each step uses a different identifier so that only the
 * chain ties them. */
static const tw_cluster_ident ring_a[] = {ID(TW_CLUSTER_ID_PHONE, "+447700900001")};
static const tw_cluster_ident ring_b[] = {ID(TW_CLUSTER_ID_PHONE, "+447700900001"),
                                          ID(TW_CLUSTER_ID_EMAIL, "b@example.org")};
static const tw_cluster_ident ring_c[] = {ID(TW_CLUSTER_ID_EMAIL, "b@example.org"),
                                          ID(TW_CLUSTER_ID_VAT, "FR40303265045")};
static const tw_cluster_ident ring_d[] = {ID(TW_CLUSTER_ID_VAT, "FR40303265045")};

static void ring(tw_cluster_obs o[5])
{
    o[0] = (tw_cluster_obs){TW_CLUSTER_PERSON, "Anna Alpha", "", ring_a, 1, 101, "purchase.buyer"};
    o[1] = (tw_cluster_obs){TW_CLUSTER_PERSON, "Bert Beta", "", ring_b, 2, 102, "purchase.buyer"};
    o[2] = (tw_cluster_obs){TW_CLUSTER_COMPANY, "Gamma SARL", "", ring_c, 2, 103, "purchase.buyer"};
    o[3] = (tw_cluster_obs){TW_CLUSTER_COMPANY, "Delta Trading", "calais 1 rue x", ring_d, 1, 104,
                            "purchase.buyer"};
    o[4] = (tw_cluster_obs){TW_CLUSTER_COMPANY, "DELTA-trading.", "calais 1 rue x", NULL, 0, 105,
                            "shipment.consignee"};
}

static int has_link(const tw_cluster_result *r, tw_cluster_via via, tw_cluster_id_kind kind,
                    const char *value, int64_t ev1, int64_t ev2)
{
    for (size_t k = 0; k < r->n_links; k++) {
        const tw_cluster_link *l = &r->links[k];
        int64_t a = r->members[l->a].event_id, b = r->members[l->b].event_id;
        if (l->via == via && (via != TW_CLUSTER_VIA_IDENTIFIER || l->id_kind == kind) &&
            strcmp(l->value, value) == 0 && ((a == ev1 && b == ev2) || (a == ev2 && b == ev1)))
            return 1;
    }
    return 0;
}

Test(cluster, ring_of_five_buyers_is_one_cluster_with_four_links)
{
    tw_cluster_obs o[5];
    ring(o);
    tw_cluster_result *r = build(o, 5, NULL);
    cr_assert_eq(r->n_clusters, 1);
    cr_assert_eq(r->clusters[0].n_members, 5);
    cr_assert_eq(r->clusters[0].n_links, 4);
    cr_assert_eq(r->clusters[0].min_event_id, 101);
    cr_assert(has_link(r, TW_CLUSTER_VIA_IDENTIFIER, TW_CLUSTER_ID_PHONE, "+447700900001", 101, 102));
    cr_assert(has_link(r, TW_CLUSTER_VIA_IDENTIFIER, TW_CLUSTER_ID_EMAIL, "b@example.org", 102, 103));
    cr_assert(has_link(r, TW_CLUSTER_VIA_IDENTIFIER, TW_CLUSTER_ID_VAT, "FR40303265045", 103, 104));
    cr_assert(has_link(r, TW_CLUSTER_VIA_NAME_ADDRESS, 0, "delta trading", 104, 105));
    /* The evidence names the field of each observation. */
    for (size_t i = 0; i < r->n_members; i++)
        cr_assert_str_eq(r->members[i].field,
                         r->members[i].event_id == 105 ? "shipment.consignee" : "purchase.buyer");
    cr_assert_eq(r->n_too_common, 0);
    tw_cluster_result_free(r);
}

Test(cluster, unrelated_parties_stay_apart)
{
    tw_cluster_obs o[5];
    ring(o);
    /* Break the ring between B and C: C no longer carries B's e-mail. */
    static const tw_cluster_ident c2[] = {ID(TW_CLUSTER_ID_EMAIL, "c@example.org"),
                                          ID(TW_CLUSTER_ID_VAT, "FR40303265045")};
    o[2].idents = c2;
    tw_cluster_result *r = build(o, 5, NULL);
    cr_assert_eq(r->n_clusters, 2);
    cr_assert_eq(cluster_of(r, 0), cluster_of(r, 1));
    cr_assert_eq(cluster_of(r, 2), cluster_of(r, 4));
    cr_assert_neq(cluster_of(r, 0), cluster_of(r, 2));
    /* Ordered by smallest event id: A-B (101) first, then C-E (103). */
    cr_assert_eq(r->clusters[0].min_event_id, 101);
    cr_assert_eq(r->clusters[1].min_event_id, 103);
    cr_assert_eq(r->n_links, 3);
    tw_cluster_result_free(r);
}

Test(cluster, same_name_different_address_stays_apart)
{
    tw_cluster_obs o[3] = {
        {TW_CLUSTER_PERSON, "John Smith", "dover 1", NULL, 0, 1, "purchase.buyer"},
        {TW_CLUSTER_PERSON, "John Smith", "dover 2", NULL, 0, 2, "purchase.buyer"},
        {TW_CLUSTER_PERSON, "John Smith", "", NULL, 0, 3, "purchase.buyer"},
    };
    tw_cluster_result *r = build(o, 3, NULL);
    cr_assert_eq(r->n_clusters, 3);
    cr_assert_eq(r->n_links, 0);
    tw_cluster_result_free(r);
    /* Same name, same address, different kind: apart too. */
    o[1].address = "dover 1";
    o[1].kind = TW_CLUSTER_COMPANY;
    r = build(o, 3, NULL);
    cr_assert_eq(r->n_clusters, 3);
    tw_cluster_result_free(r);
    /* Same kind: joined. */
    o[1].kind = TW_CLUSTER_PERSON;
    r = build(o, 3, NULL);
    cr_assert_eq(r->n_clusters, 2);
    cr_assert_eq(cluster_of(r, 0), cluster_of(r, 1));
    tw_cluster_result_free(r);
}

Test(cluster, names_fold_case_accents_and_punctuation)
{
    tw_cluster_obs o[3] = {
        {TW_CLUSTER_COMPANY, "Müller-Lüdenscheidt GmbH", "calais 1", NULL, 0, 1, "purchase.seller"},
        {TW_CLUSTER_COMPANY, "MULLER  ludenscheidt, gmbh", "calais 1", NULL, 0, 2, "purchase.seller"},
        {TW_CLUSTER_COMPANY, "Muller Ludenscheid GmbH", "calais 1", NULL, 0, 3, "purchase.seller"},
    };
    tw_cluster_result *r = build(o, 3, NULL);
    cr_assert_eq(r->n_clusters, 2);
    cr_assert_eq(cluster_of(r, 0), cluster_of(r, 1));
    cr_assert_neq(cluster_of(r, 0), cluster_of(r, 2));
    cr_assert_str_eq(r->members[0].name_key, "muller ludenscheidt gmbh");
    cr_assert_eq(r->links[0].via, TW_CLUSTER_VIA_NAME_ADDRESS);
    cr_assert_str_eq(r->links[0].address, "calais 1");
    tw_cluster_result_free(r);
}

Test(cluster, agency_and_person_with_same_phone_stay_apart)
{
    static const tw_cluster_ident ph[] = {ID(TW_CLUSTER_ID_PHONE, "+33321000000")};
    tw_cluster_obs o[4] = {
        {TW_CLUSTER_AGENCY, "Douane Calais", "", ph, 1, 1, "seizure.agency"},
        {TW_CLUSTER_PERSON, "Eve Echo", "", ph, 1, 2, "purchase.buyer"},
        {TW_CLUSTER_COMPANY, "Echo Ltd", "", ph, 1, 3, "purchase.seller"},
        {TW_CLUSTER_AGENCY, "Douanes Calais", "", ph, 1, 4, "seizure.agency"},
    };
    tw_cluster_result *r = build(o, 4, NULL);
    cr_assert_eq(r->n_clusters, 2);
    cr_assert_eq(cluster_of(r, 0), cluster_of(r, 3)); /* the two agencies */
    cr_assert_eq(cluster_of(r, 1), cluster_of(r, 2)); /* person and company */
    cr_assert_neq(cluster_of(r, 0), cluster_of(r, 1));
    tw_cluster_result_free(r);
}

Test(cluster, too_common_identifier_links_nothing_and_is_reported)
{
    enum { N = 8 };
    static const tw_cluster_ident ph[] = {ID(TW_CLUSTER_ID_PHONE, "+448000000000")};
    static const tw_cluster_ident em[] = {ID(TW_CLUSTER_ID_EMAIL, "x@example.org"),
                                          ID(TW_CLUSTER_ID_PHONE, "+448000000000")};
    tw_cluster_obs o[N];
    char names[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "buyer %d", i);
        o[i] = (tw_cluster_obs){TW_CLUSTER_PERSON, names[i], "", i < 2 ? em : ph, i < 2 ? 2 : 1,
                                i + 1, "purchase.buyer"};
    }
    tw_cluster_options opt;
    tw_cluster_options_init(&opt);
    cr_assert_eq(opt.max_names_per_identifier, TW_CLUSTER_DEFAULT_MAX_NAMES);
    opt.max_names_per_identifier = N; /* N names: still links */
    tw_cluster_result *r = build(o, N, &opt);
    cr_assert_eq(r->n_clusters, 1);
    cr_assert_eq(r->n_too_common, 0);
    tw_cluster_result_free(r);

    opt.max_names_per_identifier = N - 1; /* more than N-1 names: too common */
    r = build(o, N, &opt);
    cr_assert_eq(r->n_too_common, 1);
    cr_assert_eq(r->too_common[0].kind, TW_CLUSTER_ID_PHONE);
    cr_assert_str_eq(r->too_common[0].value, "+448000000000");
    cr_assert_eq(r->too_common[0].observations, N);
    cr_assert_eq(r->too_common[0].names, N);
    cr_assert_eq(r->too_common[0].agencies, 0);
    /* Only the e-mail shared by buyers 0 and 1 still links. */
    cr_assert_eq(r->n_clusters, N - 1);
    cr_assert_eq(cluster_of(r, 0), cluster_of(r, 1));
    cr_assert_eq(r->n_links, 1);
    cr_assert_eq(r->links[0].id_kind, TW_CLUSTER_ID_EMAIL);
    tw_cluster_result_free(r);

    /* One person seen many times with one phone is not "too common". */
    for (int i = 0; i < N; i++)
        o[i].name = "Same Person";
    opt.max_names_per_identifier = 1;
    r = build(o, N, &opt);
    cr_assert_eq(r->n_too_common, 0);
    cr_assert_eq(r->n_clusters, 1);
    tw_cluster_result_free(r);
}

/* Everything but input_index must be equal. */
static void assert_same(const tw_cluster_result *x, const tw_cluster_result *y)
{
    cr_assert_eq(x->n_members, y->n_members);
    cr_assert_eq(x->n_clusters, y->n_clusters);
    cr_assert_eq(x->n_links, y->n_links);
    cr_assert_eq(x->n_too_common, y->n_too_common);
    for (size_t i = 0; i < x->n_members; i++) {
        const tw_cluster_member *a = &x->members[i], *b = &y->members[i];
        cr_assert_eq(a->event_id, b->event_id);
        cr_assert_str_eq(a->field, b->field);
        cr_assert_eq(a->kind, b->kind);
        cr_assert_str_eq(a->name_key, b->name_key);
        cr_assert_str_eq(a->address, b->address);
        cr_assert_eq(a->cluster, b->cluster);
    }
    cr_assert_eq(memcmp(x->clusters, y->clusters, x->n_clusters * sizeof *x->clusters), 0);
    for (size_t k = 0; k < x->n_links; k++) {
        const tw_cluster_link *a = &x->links[k], *b = &y->links[k];
        cr_assert(a->a == b->a && a->b == b->b && a->via == b->via && a->id_kind == b->id_kind);
        cr_assert_str_eq(a->value, b->value);
        cr_assert_str_eq(a->address, b->address);
    }
}

Test(cluster, input_order_does_not_change_the_output)
{
    tw_cluster_obs o[5], p[5];
    ring(o);
    tw_cluster_result *r1 = build(o, 5, NULL);
    static const int perms[][5] = {{4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}, {1, 4, 0, 3, 2}};
    for (size_t k = 0; k < sizeof perms / sizeof perms[0]; k++) {
        for (int i = 0; i < 5; i++)
            p[i] = o[perms[k][i]];
        tw_cluster_result *r2 = build(p, 5, NULL);
        assert_same(r1, r2);
        tw_cluster_result_free(r2);
    }
    tw_cluster_result_free(r1);
}

Test(cluster, empty_input)
{
    tw_cluster_result *r = build(NULL, 0, NULL);
    cr_assert_eq(r->n_members, 0);
    cr_assert_eq(r->n_clusters, 0);
    cr_assert_eq(r->n_links, 0);
    cr_assert_eq(r->n_too_common, 0);
    tw_cluster_result_free(r);
    tw_cluster_result_free(NULL);
}

Test(cluster, bad_input_is_einval)
{
    tw_cluster_result *r = (tw_cluster_result *)1;
    errno = 0;
    cr_assert_eq(tw_cluster_build(NULL, 1, NULL, &r), -1);
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(r);
    tw_cluster_obs o = {(tw_cluster_party_kind)7, "x", "", NULL, 0, 1, "f"};
    cr_assert_eq(tw_cluster_build(&o, 1, NULL, &r), -1);
    cr_assert_eq(errno, EINVAL);
    o.kind = TW_CLUSTER_PERSON;
    o.n_idents = 1; /* idents NULL */
    cr_assert_eq(tw_cluster_build(&o, 1, NULL, &r), -1);
    cr_assert_eq(errno, EINVAL);
}

Test(cluster, other_identifiers_and_blank_values_never_link)
{
    static const tw_cluster_ident x[] = {ID(TW_CLUSTER_ID_OTHER, "loyalty-42"),
                                         ID(TW_CLUSTER_ID_PHONE, "")};
    tw_cluster_obs o[2] = {
        {TW_CLUSTER_PERSON, "P One", "", x, 2, 1, "purchase.buyer"},
        {TW_CLUSTER_PERSON, "P Two", "", x, 2, 2, "purchase.buyer"},
    };
    tw_cluster_result *r = build(o, 2, NULL);
    cr_assert_eq(r->n_clusters, 2);
    tw_cluster_result_free(r);
}

Test(cluster, kind_names)
{
    cr_assert_eq(tw_cluster_id_kind_from_name("company_number"), TW_CLUSTER_ID_COMPANY_NUMBER);
    cr_assert_eq(tw_cluster_id_kind_from_name("identity_document"),
                 TW_CLUSTER_ID_IDENTITY_DOCUMENT);
    cr_assert_eq(tw_cluster_id_kind_from_name("fax"), TW_CLUSTER_ID_OTHER);
    cr_assert_eq(tw_cluster_id_kind_from_name(NULL), TW_CLUSTER_ID_OTHER);
    cr_assert_str_eq(tw_cluster_id_kind_name(TW_CLUSTER_ID_VAT), "vat");
    cr_assert_str_eq(tw_cluster_party_kind_name(TW_CLUSTER_AGENCY), "agency");
}

/* 10,000 observations, each sharing a phone with the next: one cluster,
 * 9,999 links. Run time is printed by ctest; no timing assertion. */
Test(cluster, chain_of_ten_thousand)
{
    enum { N = 10000 };
    tw_cluster_obs *o = calloc(N, sizeof *o);
    tw_cluster_ident *ids = calloc(2 * N, sizeof *ids);
    char (*vals)[16] = calloc(N + 1, sizeof *vals);
    char (*names)[16] = calloc(N, sizeof *names);
    cr_assert(o && ids && vals && names);
    for (int i = 0; i <= N; i++)
        snprintf(vals[i], sizeof vals[i], "+4470%08d", i);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "person %d", i);
        ids[2 * i] = ID(TW_CLUSTER_ID_PHONE, vals[i]);
        ids[2 * i + 1] = ID(TW_CLUSTER_ID_PHONE, vals[i + 1]);
        /* reverse event ids so canonical order differs from input order */
        o[i] = (tw_cluster_obs){TW_CLUSTER_PERSON, names[i], "", &ids[2 * i], 2, N - i,
                                "purchase.buyer"};
    }
    tw_cluster_result *r = build(o, N, NULL);
    cr_assert_eq(r->n_clusters, 1);
    cr_assert_eq(r->clusters[0].n_members, N);
    cr_assert_eq(r->n_links, N - 1);
    cr_assert_eq(r->clusters[0].min_event_id, 1);
    cr_assert_eq(r->members[0].event_id, 1);
    cr_assert_eq(r->members[N - 1].event_id, N);
    tw_cluster_result_free(r);
    free(names);
    free(vals);
    free(ids);
    free(o);
}
