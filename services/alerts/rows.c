/* Parsers for the projections of rows.h (text results). */
#include <stdlib.h>
#include <string.h>

#include "rows.h"

static int64_t col_i64(const PGresult *r, int row, int col, int64_t null_value)
{
    return PQgetisnull(r, row, col) ? null_value : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Whether the column has a value; *v gets it. */
static int col_f8(const PGresult *r, int row, int col, double *v)
{
    if (PQgetisnull(r, row, col))
        return 0;
    *v = strtod(PQgetvalue(r, row, col), NULL);
    return 1;
}

static const char *col_str(const PGresult *r, int row, int col)
{
    return PQgetvalue(r, row, col); /* "" for NULL; owned by the result */
}

/* Parse a text[] literal of "kind:value" strings ({a,"b c"}) into idents.
 * Values were normalised by ingest; quoting is PostgreSQL's array output. */
static int parse_idents(const char *lit, tw_arena *a, tw_ar_ident **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t len = strlen(lit);
    if (len < 2 || lit[0] != '{')
        return 0;
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += lit[i] == ',';
    tw_ar_ident *v = tw_arena_calloc(a, cap, sizeof *v);
    char *buf = tw_arena_alloc(a, len + 1);
    if (!v || !buf)
        return -1;
    const char *p = lit + 1;
    size_t k = 0;
    while (*p && *p != '}') {
        char *start = buf;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                *buf++ = *p++;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != '}')
                *buf++ = *p++;
        }
        *buf++ = '\0';
        if (*p == ',')
            p++;
        char *colon = strchr(start, ':');
        if (colon && k < cap) {
            *colon = '\0';
            v[k].kind = start;
            v[k].value = colon + 1;
            k++;
        }
    }
    *out = v;
    *n = k;
    return 0;
}

static int cmp_party(const void *x, const void *y)
{
    const tw_ar_party *a = x, *b = y;
    return (a->party_id > b->party_id) - (a->party_id < b->party_id);
}

int alerts_parties_read(const PGresult *r, int col0, tw_arena *a, alerts_parties *out)
{
    int n = PQntuples(r);
    out->n = 0;
    out->v = tw_arena_calloc(a, n > 0 ? (size_t)n : 1, sizeof *out->v);
    if (!out->v)
        return -1;
    for (int i = 0; i < n; i++) {
        tw_ar_party *p = &out->v[out->n];
        const int c = col0;
        p->party_id = col_i64(r, i, c, 0);
        p->kind = (int)col_i64(r, i, c + 1, 0);
        p->name = col_str(r, i, c + 2);
        p->name_key = col_str(r, i, c + 3);
        p->address_key = col_str(r, i, c + 4);
        p->has_place = col_f8(r, i, c + 5, &p->lat) & col_f8(r, i, c + 6, &p->lon);
        tw_ar_ident *ids;
        if (parse_idents(col_str(r, i, c + 7), a, &ids, &p->n_idents) != 0)
            return -1;
        p->idents = ids;
        p->trade_records = (int)col_i64(r, i, c + 8, 0);
        p->first_seen = col_i64(r, i, c + 9, TW_AR_NO_TIME);
        p->seizure_linked = (int)col_i64(r, i, c + 10, 0);
        out->n++;
    }
    qsort(out->v, out->n, sizeof *out->v, cmp_party);
    /* The same party may come twice (seller of one hop, buyer of another). */
    size_t k = 0;
    for (size_t i = 0; i < out->n; i++)
        if (k == 0 || out->v[k - 1].party_id != out->v[i].party_id)
            out->v[k++] = out->v[i];
    out->n = k;
    return 0;
}

const tw_ar_party *alerts_parties_find(const alerts_parties *p, int64_t id)
{
    if (!p || p->n == 0)
        return NULL;
    tw_ar_party key = {.party_id = id};
    return bsearch(&key, p->v, p->n, sizeof *p->v, cmp_party);
}

/* A party known only from the hop's row. */
static const tw_ar_party *row_party(const PGresult *r, int row, int c, int64_t id, tw_arena *a,
                                    const alerts_parties *known, int *oom)
{
    if (id == 0)
        return NULL;
    const tw_ar_party *k = alerts_parties_find(known, id);
    if (k)
        return k;
    tw_ar_party *p = tw_arena_calloc(a, 1, sizeof *p);
    if (!p) {
        *oom = 1;
        return NULL;
    }
    p->party_id = id;
    p->kind = (int)col_i64(r, row, c, 0);
    p->name = col_str(r, row, c + 1);
    p->name_key = "";
    p->address_key = "";
    p->has_place = col_f8(r, row, c + 2, &p->lat) & col_f8(r, row, c + 3, &p->lon);
    p->first_seen = TW_AR_NO_TIME;
    return p;
}

int alerts_hop_read(const PGresult *r, int row, int col0, tw_arena *a,
                    const alerts_parties *known, tw_ar_hop *h, int64_t *corrected_by)
{
    const int c = col0;
    memset(h, 0, sizeof *h);
    h->event_id = col_i64(r, row, c, 0);
    h->line = (int)col_i64(r, row, c + 1, 0);
    h->kind = (int)col_i64(r, row, c + 2, 0);
    h->item_id = col_i64(r, row, c + 3, 0);
    h->item_kind = (int)col_i64(r, row, c + 4, 0);
    h->item_label = col_str(r, row, c + 5);
    h->at = col_i64(r, row, c + 6, TW_AR_NO_TIME);
    h->quantity = (int)col_i64(r, row, c + 7, 1);
    if (h->quantity < 1)
        h->quantity = 1;
    h->payment = (int)col_i64(r, row, c + 8, 0);
    h->launch = (int)col_i64(r, row, c + 9, 0);
    h->has_origin = col_f8(r, row, c + 10, &h->origin_lat) & col_f8(r, row, c + 11, &h->origin_lon);
    h->origin_name = col_str(r, row, c + 12);
    h->has_place = col_f8(r, row, c + 13, &h->lat) & col_f8(r, row, c + 14, &h->lon);
    h->place_name = col_str(r, row, c + 15);
    h->consignment = col_str(r, row, c + 16);
    h->vehicle = col_str(r, row, c + 17);
    h->source = col_str(r, row, c + 18);
    h->source_ref = col_str(r, row, c + 19);
    h->grading_source = (int)col_i64(r, row, c + 20, 0);
    h->grading_info = (int)col_i64(r, row, c + 21, 0);
    *corrected_by = col_i64(r, row, c + 22, 0);
    int oom = 0;
    h->from = row_party(r, row, c + 24, col_i64(r, row, c + 23, 0), a, known, &oom);
    h->to = row_party(r, row, c + 29, col_i64(r, row, c + 28, 0), a, known, &oom);
    return oom ? -1 : 0;
}
