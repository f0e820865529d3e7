/* Party clusters (tw_cluster) and chain assembly (tw_chain) for the query
 * daemon: the adapter between rows/messages and the pure domain modules. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

/* ---- clusters ------------------------------------------------------------- */

static tw_cluster_party_kind cluster_kind(int party_kind)
{
    return party_kind == 3 ? TW_CLUSTER_AGENCY
           : party_kind == 2 ? TW_CLUSTER_COMPANY
                             : TW_CLUSTER_PERSON;
}

static int read_party(qcall *q, const PGresult *r, int row, qparty *p)
{
    memset(p, 0, sizeof *p);
    p->party_id = qi(r, row, "party_id");
    p->event_id = qi(r, row, "event_id");
    p->kind = (int)qi(r, row, "kind");
    p->role = qstr(q, r, row, "role");
    p->name = qstr(q, r, row, "name");
    p->name_key = qstr(q, r, row, "name_key");
    p->country = qstr(q, r, row, "country");
    p->address = qstr(q, r, row, "address");
    p->address_key = qstr(q, r, row, "address_key");
    p->place = qstr(q, r, row, "place");
    const char *ids = qs(r, row, "idents");
    if (!ids)
        return 0;
    json_t *arr = json_loads(ids, 0, NULL);
    if (!arr || !json_is_array(arr)) {
        json_decref(arr);
        return 0;
    }
    size_t n = json_array_size(arr);
    p->ids = tw_arena_calloc(&q->arena, n ? n : 1, sizeof *p->ids);
    if (!p->ids) {
        json_decref(arr);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        const char *kind = json_string_value(json_array_get(e, 0));
        const char *value = json_string_value(json_array_get(e, 1));
        if (!kind || !value)
            continue;
        char *v = tw_arena_strdup(&q->arena, value);
        /* keep the text kind next to the value: "phone\0+4915..." */
        char *k = tw_arena_strdup(&q->arena, kind);
        if (!v || !k) {
            json_decref(arr);
            return -1;
        }
        p->ids[p->nids].kind = tw_cluster_id_kind_from_name(kind);
        p->ids[p->nids].value = v;
        p->nids++;
    }
    json_decref(arr);
    return 0;
}

int qclusters_build(qcall *q, const PGresult *r, const PGresult *extra, size_t max_names,
                    qclusters *out)
{
    memset(out, 0, sizeof *out);
    size_t n1 = r ? (size_t)PQntuples(r) : 0, n2 = extra ? (size_t)PQntuples(extra) : 0;
    size_t n = n1 + n2;
    out->p = tw_arena_calloc(&q->arena, n ? n : 1, sizeof *out->p);
    out->cluster_of = tw_arena_calloc(&q->arena, n ? n : 1, sizeof *out->cluster_of);
    tw_cluster_obs *obs = tw_arena_calloc(&q->arena, n ? n : 1, sizeof *obs);
    if (!out->p || !out->cluster_of || !obs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const PGresult *src = i < n1 ? r : extra;
        int row = (int)(i < n1 ? i : i - n1);
        if (read_party(q, src, row, &out->p[i]) != 0)
            return -1;
        qparty *p = &out->p[i];
        obs[i] = (tw_cluster_obs){.kind = cluster_kind(p->kind), .name = p->name,
                                  .address = p->address_key, .idents = p->ids,
                                  .n_idents = p->nids, .event_id = p->event_id,
                                  .field = p->role};
    }
    out->n = n;
    tw_cluster_options opt;
    tw_cluster_options_init(&opt);
    opt.max_names_per_identifier = max_names;
    if (tw_cluster_build(obs, n, &opt, &out->res) != 0)
        return -1;
    for (size_t m = 0; m < out->res->n_members; m++)
        out->cluster_of[out->res->members[m].input_index] = out->res->members[m].cluster;
    return 0;
}

int64_t qclusters_of(const qclusters *c, int64_t party_id)
{
    if (!c || !c->res)
        return 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->p[i].party_id == party_id)
            return (int64_t)c->cluster_of[i] + 1;
    return 0;
}

int64_t qclusters_min_id(const qclusters *c, int64_t party_id)
{
    if (!c || !c->res)
        return 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->p[i].party_id != party_id)
            continue;
        /* Only the members of its cluster, not every party again. */
        const tw_cluster *k = &c->res->clusters[c->cluster_of[i]];
        int64_t min = party_id;
        for (size_t m = k->first_member; m < k->first_member + k->n_members; m++) {
            int64_t id = c->p[c->res->members[m].input_index].party_id;
            if (id < min)
                min = id;
        }
        return min;
    }
    return 0;
}

void qclusters_free(qclusters *c)
{
    if (c) {
        tw_cluster_result_free(c->res);
        c->res = NULL;
    }
}

Tidewatch__V1__PartyIdentity *qclusters_identity(qcall *q, const qclusters *c, size_t i)
{
    const qparty *p = &c->p[i];
    Tidewatch__V1__PartyIdentity *pi = tw_arena_alloc(&q->arena, sizeof *pi);
    if (!pi)
        return NULL;
    tidewatch__v1__party_identity__init(pi);
    pi->id = p->party_id;
    pi->event_id = p->event_id;
    pi->role = p->role;
    pi->kind = (char *)qrows_party_kind(p->kind);
    pi->name = p->name;
    pi->country = p->country;
    pi->address = p->address;
    pi->place = p->place;
    if (p->nids) {
        pi->identifiers = tw_arena_calloc(&q->arena, p->nids, sizeof *pi->identifiers);
        if (!pi->identifiers)
            return NULL;
        for (size_t k = 0; k < p->nids; k++) {
            Tidewatch__V1__PartyIdentifier *id = tw_arena_alloc(&q->arena, sizeof *id);
            if (!id)
                return NULL;
            tidewatch__v1__party_identifier__init(id);
            id->kind = qrows_ident_kind(tw_cluster_id_kind_name(p->ids[k].kind));
            id->value = (char *)p->ids[k].value;
            pi->identifiers[pi->n_identifiers++] = id;
        }
    }
    return pi;
}

/* ---- chains ------------------------------------------------------------------ */

static tw_chain_place chain_place(const Tidewatch__V1__HopPlace *p)
{
    tw_chain_place cp = {0};
    if (p) {
        cp.known = p->has_coordinates;
        cp.lat = p->lat;
        cp.lon = p->lon;
        cp.name = p->name;
    }
    return cp;
}

static tw_chain_party chain_party(const qclusters *cl, const Tidewatch__V1__PartyRef *p)
{
    tw_chain_party cp = {0};
    if (p) {
        cp.cluster = qclusters_of(cl, p->id);
        if (cp.cluster == 0)
            cp.cluster = -p->id; /* not clustered: itself only */
        cp.name = p->name;
    }
    return cp;
}

int qchain_assemble(qcall *q, Tidewatch__V1__Hop **hops, size_t n, const qclusters *cl,
                    const Tidewatch__V1__Item *item, tw_chain_result *out)
{
    memset(out, 0, sizeof *out);
    tw_chain_hop *in = tw_arena_calloc(&q->arena, n ? n : 1, sizeof *in);
    if (!in)
        return -1;
    for (size_t i = 0; i < n; i++) {
        Tidewatch__V1__PartyRef *sides[3] = {hops[i]->from, hops[i]->to, hops[i]->carrier};
        for (int k = 0; k < 3; k++)
            if (sides[k] && sides[k]->id)
                sides[k]->cluster = qclusters_min_id(cl, sides[k]->id);
        const Tidewatch__V1__Hop *h = hops[i];
        in[i] = (tw_chain_hop){
            .event_id = h->event_id,
            .line = (int)i,
            .item_id = h->item_id,
            .kind = h->kind >= 1 && h->kind <= 3 ? (tw_chain_hop_kind)h->kind : TW_CHAIN_SALE,
            .status = h->status <= 2 ? (tw_chain_status)h->status : TW_CHAIN_ACTIVE,
            .has_time = h->time != NULL,
            .time = h->time ? h->time->seconds : 0,
            .has_delivered = h->delivered != NULL,
            .delivered = h->delivered ? h->delivered->seconds : 0,
            .from = chain_party(cl, h->from),
            .to = chain_party(cl, h->to),
            .origin = chain_place(h->origin),
            .place = chain_place(h->place),
            .source = h->n_sources ? h->sources[0]->source : "",
            .grading_source = h->n_sources && h->sources[0]->grading
                                  ? (int)h->sources[0]->grading->source
                                  : 0,
            .grading_info = h->n_sources && h->sources[0]->grading
                                ? (int)h->sources[0]->grading->information
                                : 0,
        };
    }
    size_t nr = 0;
    for (size_t k = 0; item && k < item->n_keys; k++)
        nr += item->keys[k]->n_readings;
    tw_chain_reading *rd = tw_arena_calloc(&q->arena, nr ? nr : 1, sizeof *rd);
    if (!rd)
        return -1;
    nr = 0;
    static const char *const methods[] = {"", "plate", "stamp", "etched_recovery", "document"};
    for (size_t k = 0; item && k < item->n_keys; k++) {
        if (strcmp(item->keys[k]->kind, "serial") != 0)
            continue;
        for (size_t j = 0; j < item->keys[k]->n_readings; j++) {
            const Tidewatch__V1__Reading *r = item->keys[k]->readings[j];
            int m = 0;
            for (int x = 1; x < 5; x++)
                if (strcmp(r->method, methods[x]) == 0)
                    m = x;
            rd[nr++] = (tw_chain_reading){.key = item->keys[k]->key, .raw = r->text, .method = m,
                                          .event_id = r->event_id};
        }
    }
    tw_chain_options opt;
    tw_chain_options_init(&opt);
    if (tw_chain_assemble(in, n, rd, nr, &opt, &q->arena, out) != 0)
        return -1;
    /* independent reports of one movement: their sources go to the first */
    for (size_t i = 0; i < out->n; i++) {
        ptrdiff_t to = out->order[i].same_as;
        if (to < 0 || (size_t)to >= out->n)
            continue;
        Tidewatch__V1__Hop *dst = hops[out->order[to].input], *src = hops[out->order[i].input];
        if (!src->n_sources)
            continue;
        Tidewatch__V1__SourceRef **g =
            tw_arena_alloc(&q->arena, (dst->n_sources + 1) * sizeof *g);
        if (!g)
            return -1;
        memcpy(g, dst->sources, dst->n_sources * sizeof *g);
        g[dst->n_sources++] = src->sources[0];
        dst->sources = g;
    }
    return 0;
}
