/* tw_chainfmt: see tw_chainfmt.h. */
#include "tw_chainfmt.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- output ------------------------------------------------------------- */

void tw_fmt_buf_free(tw_fmt_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

tw_fmt_out tw_fmt_to_file(FILE *f)
{
    tw_fmt_out o = {.file = f};
    return o;
}

tw_fmt_out tw_fmt_to_buf(tw_fmt_buf *b)
{
    tw_fmt_out o = {.buf = b};
    return o;
}

static void out_vprintf(tw_fmt_out *o, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static void out_vprintf(tw_fmt_out *o, const char *fmt, va_list ap)
{
    if (o->failed)
        return;
    if (o->file) {
        if (vfprintf(o->file, fmt, ap) < 0)
            o->failed = 1;
        return;
    }
    tw_fmt_buf *b = o->buf;
    if (!b) {
        o->failed = 1;
        return;
    }
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        o->failed = 1;
        return;
    }
    size_t need = b->len + (size_t)n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            o->failed = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void tw_fmt_printf(tw_fmt_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    out_vprintf(o, fmt, ap);
    va_end(ap);
}

static void out_puts(tw_fmt_out *o, const char *s)
{
    tw_fmt_printf(o, "%s", s ? s : "");
}

static int done(const tw_fmt_out *o)
{
    return o->failed ? -1 : 0;
}

static int empty(const char *s)
{
    return !s || !s[0];
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 when the bytes
 * there are not one (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || n > left)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] > 0x8f))
        return 0;
    return n;
}

/* A JSON string of s; bytes that are not UTF-8 (protobuf-c does not check
 * strings) become U+FFFD, so one bad byte in a record cannot make the whole
 * document fail. NULL on allocation failure. */
static json_t *json_text(const char *s)
{
    if (!s)
        s = "";
    size_t len = strlen(s);
    json_t *j = json_stringn(s, len);
    if (j)
        return j;
    char *fixed = malloc(3 * len + 1);
    if (!fixed)
        return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len(p + i, len - i);
        if (n) {
            memcpy(fixed + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(fixed + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn(fixed, o);
    free(fixed);
    return j;
}

/* ---- pieces ------------------------------------------------------------- */

static int has_time(const Google__Protobuf__Timestamp *t)
{
    return t && (t->seconds != 0 || t->nanos != 0);
}

const char *tw_chainfmt_date(const Google__Protobuf__Timestamp *t, char out[16])
{
    struct tm tm;
    time_t s = has_time(t) ? (time_t)t->seconds : 0;
    if (!has_time(t) || !gmtime_r(&s, &tm)) {
        snprintf(out, 16, "no date");
        return out;
    }
    snprintf(out, 16, "%04d-%02d-%02d", (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
             tm.tm_mday % 100);
    return out;
}

const char *tw_chainfmt_grading(const Tidewatch__V1__Grading *g, char out[8])
{
    out[0] = '\0';
    if (!g || (g->source == 0 && g->information == 0 && g->handling == 0))
        return out;
    int src = (int)g->source, inf = (int)g->information, hnd = (int)g->handling;
    out[0] = src >= 1 && src <= 3 ? (char)('0' + src) : '?';
    out[1] = inf >= 1 && inf <= 5 ? (char)('A' + inf - 1) : '?';
    out[2] = hnd == 1 ? 'P' : hnd == 2 ? 'C' : '\0';
    out[3] = '\0';
    return out;
}

static const char *hop_verb(Tidewatch__V1__HopKind k)
{
    switch (k) {
    case TIDEWATCH__V1__HOP_KIND__HOP_KIND_SALE:
        return "sold";
    case TIDEWATCH__V1__HOP_KIND__HOP_KIND_SHIPMENT:
        return "shipped";
    case TIDEWATCH__V1__HOP_KIND__HOP_KIND_SEIZURE:
        return "seized";
    default:
        return "hop";
    }
}

static const char *hop_kind_name(Tidewatch__V1__HopKind k)
{
    switch (k) {
    case TIDEWATCH__V1__HOP_KIND__HOP_KIND_SALE:
        return "sale";
    case TIDEWATCH__V1__HOP_KIND__HOP_KIND_SHIPMENT:
        return "shipment";
    case TIDEWATCH__V1__HOP_KIND__HOP_KIND_SEIZURE:
        return "seizure";
    default:
        return "unspecified";
    }
}

static const char *item_kind_name(Tidewatch__V1__ItemKind k)
{
    switch (k) {
    case TIDEWATCH__V1__ITEM_KIND__ITEM_KIND_ENGINE:
        return "engine";
    case TIDEWATCH__V1__ITEM_KIND__ITEM_KIND_BOAT:
        return "boat";
    case TIDEWATCH__V1__ITEM_KIND__ITEM_KIND_OTHER:
        return "item";
    default:
        return "item";
    }
}

static const char *status_name(Tidewatch__V1__HopStatus s)
{
    switch (s) {
    case TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_CORRECTED:
        return "corrected";
    case TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_RETRACTED:
        return "retracted";
    default:
        return "active";
    }
}

static void party(tw_fmt_out *o, const Tidewatch__V1__PartyRef *p)
{
    if (!p || (empty(p->name) && p->id == 0)) {
        out_puts(o, "unknown party");
        return;
    }
    out_puts(o, empty(p->name) ? "unnamed party" : p->name);
    if (p->id)
        tw_fmt_printf(o, " #%lld", (long long)p->id);
}

static int place_known(const Tidewatch__V1__HopPlace *pl)
{
    return pl && (!empty(pl->name) || pl->has_coordinates);
}

static void place(tw_fmt_out *o, const Tidewatch__V1__HopPlace *pl)
{
    if (!place_known(pl)) {
        out_puts(o, "place unknown");
        return;
    }
    if (!empty(pl->name))
        out_puts(o, pl->name);
    else
        tw_fmt_printf(o, "%.4f, %.4f", pl->lat, pl->lon);
    if (!empty(pl->country))
        tw_fmt_printf(o, ", %s", pl->country);
    if (!empty(pl->hub))
        tw_fmt_printf(o, " (%s hub %s)", empty(pl->hub_kind) ? "a" : pl->hub_kind, pl->hub);
    else if (!empty(pl->coast_hub))
        tw_fmt_printf(o, " (%.0f km from %s)", pl->coast_hub_km, pl->coast_hub);
}

static int hop_line(tw_fmt_out *o, const Tidewatch__V1__Hop *h)
{
    if (!h) {
        out_puts(o, "  (empty hop)");
        return done(o);
    }
    char date[16];
    const char *mark = h->status == TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_CORRECTED   ? "~ "
                       : h->status == TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_RETRACTED ? "x "
                                                                                      : "  ";
    tw_fmt_printf(o, "%s%-10s  %-7s  ", mark, tw_chainfmt_date(h->time, date), hop_verb(h->kind));
    if (h->quantity > 1)
        tw_fmt_printf(o, "%u x ", h->quantity);
    switch (h->kind) {
    case TIDEWATCH__V1__HOP_KIND__HOP_KIND_SEIZURE:
        out_puts(o, "by ");
        party(o, h->to);
        if (h->from && (!empty(h->from->name) || h->from->id)) {
            out_puts(o, " from ");
            party(o, h->from);
        }
        break;
    default:
        party(o, h->from);
        out_puts(o, " -> ");
        party(o, h->to);
        if (h->carrier && (!empty(h->carrier->name) || h->carrier->id)) {
            out_puts(o, " by ");
            party(o, h->carrier);
        }
        break;
    }
    if (h->kind == TIDEWATCH__V1__HOP_KIND__HOP_KIND_SHIPMENT && place_known(h->origin)) {
        out_puts(o, ", from ");
        place(o, h->origin);
        out_puts(o, " to ");
    } else {
        out_puts(o, ", at ");
    }
    place(o, h->place);
    if (h->launch)
        out_puts(o, ", at a launch");
    if (!empty(h->condition))
        tw_fmt_printf(o, ", %s", h->condition);
    if (h->kind == TIDEWATCH__V1__HOP_KIND__HOP_KIND_SHIPMENT && !empty(h->consignment_ref))
        tw_fmt_printf(o, ", consignment %s", h->consignment_ref);
    if (h->kind == TIDEWATCH__V1__HOP_KIND__HOP_KIND_SEIZURE && !empty(h->case_ref))
        tw_fmt_printf(o, ", case %s", h->case_ref);
    size_t ns = h->n_sources;
    if (ns == 0)
        out_puts(o, "; no source listed");
    else
        tw_fmt_printf(o, "; %zu source%s", ns, ns == 1 ? "" : "s");
    for (size_t i = 0; i < ns; i++) {
        const Tidewatch__V1__SourceRef *s = h->sources[i];
        char g[8];
        tw_fmt_printf(o, "%s%s", i ? ", " : ": ", s && !empty(s->source) ? s->source : "?");
        if (s && tw_chainfmt_grading(s->grading, g)[0])
            tw_fmt_printf(o, " %s", g);
    }
    tw_fmt_printf(o, "; event %lld", (long long)h->event_id);
    if (h->corrects)
        tw_fmt_printf(o, " (corrects event %lld)", (long long)h->corrects);
    if (h->status == TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_CORRECTED) {
        out_puts(o, "  CORRECTED");
        if (h->corrected_by)
            tw_fmt_printf(o, " by event %lld", (long long)h->corrected_by);
    } else if (h->status == TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_RETRACTED) {
        out_puts(o, "  RETRACTED (no effect)");
    }
    return done(o);
}

static void hops_block(tw_fmt_out *o, Tidewatch__V1__Hop *const *hops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (hop_line(o, hops[i]) == 0)
            out_puts(o, "\n");
    }
}

static void item_head(tw_fmt_out *o, const Tidewatch__V1__Item *it)
{
    if (!it) {
        out_puts(o, "Unknown item\n");
        return;
    }
    const char *k = item_kind_name(it->kind);
    tw_fmt_printf(o, "%c%s", k[0] - 'a' + 'A', k + 1);
    const char *first = it->n_keys && it->keys[0] ? it->keys[0]->key : NULL;
    if (!empty(first))
        tw_fmt_printf(o, " %s", first);
    if (!empty(it->maker) || !empty(it->model))
        tw_fmt_printf(o, " (%s%s%s)", empty(it->maker) ? "" : it->maker,
                      !empty(it->maker) && !empty(it->model) ? " " : "",
                      empty(it->model) ? "" : it->model);
    tw_fmt_printf(o, ", item %lld\n", (long long)it->id);
}

static void item_keys(tw_fmt_out *o, const Tidewatch__V1__Item *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->n_keys; i++) {
        const Tidewatch__V1__ItemKey *k = it->keys[i];
        if (!k)
            continue;
        tw_fmt_printf(o, "  %s %s", empty(k->kind) ? "key" : k->kind, k->key ? k->key : "");
        if (!empty(k->maker))
            tw_fmt_printf(o, " (%s)", k->maker);
        out_puts(o, "\n");
        for (size_t j = 0; j < k->n_readings; j++) {
            const Tidewatch__V1__Reading *rd = k->readings[j];
            if (!rd)
                continue;
            tw_fmt_printf(o, "    read \"%s\"", rd->text ? rd->text : "");
            if (!empty(rd->method))
                tw_fmt_printf(o, " %s", rd->method);
            if (!empty(rd->completeness))
                tw_fmt_printf(o, ", %s", rd->completeness);
            tw_fmt_printf(o, ", event %lld", (long long)rd->event_id);
            if (!empty(rd->source))
                tw_fmt_printf(o, " (%s)", rd->source);
            out_puts(o, "\n");
        }
    }
    for (size_t i = 0; i < it->n_merges; i++) {
        const Tidewatch__V1__Merge *m = it->merges[i];
        if (m)
            tw_fmt_printf(o, "  merged item %lld (event %lld): %s%s\n", (long long)m->item_id,
                          (long long)m->event_id, m->reason ? m->reason : "",
                          m->undone ? "  UNDONE" : "");
    }
    if (it->partial)
        out_puts(o, "  built from partial readings only: never merged (see candidates)\n");
}

static const char *fact_mark(const char *severity)
{
    if (severity && strcmp(severity, "inconsistency") == 0)
        return "[!!]";
    if (severity && strcmp(severity, "warning") == 0)
        return "[!] ";
    return "[i] ";
}

static void custodian(tw_fmt_out *o, const Tidewatch__V1__PartyRef *p,
                      const Tidewatch__V1__HopPlace *pl)
{
    out_puts(o, "Last known: ");
    party(o, p);
    if (p && !empty(p->kind))
        tw_fmt_printf(o, " (%s%s%s)", p->kind, empty(p->country) ? "" : ", ",
                      empty(p->country) ? "" : p->country);
    out_puts(o, ", at ");
    place(o, pl);
    out_puts(o, "\n");
}

static int chain_text(tw_fmt_out *o, const Tidewatch__V1__GetChainResponse *r)
{
    if (!r || (r->n_chains == 0 && r->n_candidates == 0)) {
        tw_fmt_printf(o, "No chain%s%s and no candidates.\n", r && !empty(r->normalized) ? " for " : "",
                      r && !empty(r->normalized) ? r->normalized : "");
        return done(o);
    }
    for (size_t c = 0; c < r->n_chains; c++) {
        const Tidewatch__V1__Chain *ch = r->chains[c];
        if (!ch)
            continue;
        if (c)
            out_puts(o, "\n");
        item_head(o, ch->item);
        item_keys(o, ch->item);
        tw_fmt_printf(o, "\nTimeline (%zu hop%s, in the order things happened):\n", ch->n_hops,
                      ch->n_hops == 1 ? "" : "s");
        if (ch->n_hops == 0)
            out_puts(o, "  (no hops)\n");
        hops_block(o, ch->hops, ch->n_hops);
        if (ch->truncated)
            out_puts(o, "  ... more hops not shown (truncated: the earliest were kept)\n");
        if (ch->n_facts) {
            out_puts(o, "\nFacts:\n");
            for (size_t i = 0; i < ch->n_facts; i++) {
                const Tidewatch__V1__ChainFact *f = ch->facts[i];
                if (!f)
                    continue;
                tw_fmt_printf(o, "  %s %s", fact_mark(f->severity),
                              !empty(f->text) ? f->text : (f->kind ? f->kind : ""));
                if (f->n_event_ids) {
                    out_puts(o, " (event");
                    out_puts(o, f->n_event_ids > 1 ? "s" : "");
                    for (size_t j = 0; j < f->n_event_ids; j++)
                        tw_fmt_printf(o, "%s%lld", j ? ", " : " ", (long long)f->event_ids[j]);
                    out_puts(o, ")");
                }
                out_puts(o, "\n");
            }
        }
        out_puts(o, "\n");
        if (ch->last_custodian || ch->last_place)
            custodian(o, ch->last_custodian, ch->last_place);
        else
            out_puts(o, "Last known: nothing (no active hop)\n");
        if (ch->n_related) {
            out_puts(o, "\nRelated items:\n");
            for (size_t i = 0; i < ch->n_related; i++) {
                const Tidewatch__V1__RelatedItem *ri = ch->related[i];
                if (!ri)
                    continue;
                const char *rel = ri->relation ? ri->relation : "";
                tw_fmt_printf(o, "  %s: item %lld %s",
                              strcmp(rel, "same_purchase") == 0      ? "same purchase"
                              : strcmp(rel, "same_consignment") == 0 ? "same consignment"
                              : strcmp(rel, "same_buyer_cluster") == 0 ? "same buyer cluster"
                                                                       : rel,
                              (long long)ri->item_id, ri->key ? ri->key : "");
                if (ri->event_id)
                    tw_fmt_printf(o, ", event %lld", (long long)ri->event_id);
                if (!empty(ri->detail))
                    tw_fmt_printf(o, ": %s", ri->detail);
                out_puts(o, "\n");
            }
        }
    }
    if (r->n_candidates) {
        if (r->n_chains)
            out_puts(o, "\n");
        tw_fmt_printf(o, "Candidates for the reading %s%s%s (never merged):\n",
                      empty(r->normalized) ? "" : "\"", empty(r->normalized) ? "" : r->normalized,
                      empty(r->normalized) ? "given" : "\"");
        for (size_t i = 0; i < r->n_candidates; i++) {
            const Tidewatch__V1__Candidate *cd = r->candidates[i];
            if (!cd)
                continue;
            const Tidewatch__V1__Item *it = cd->item;
            const char *key = it && it->n_keys && it->keys[0] ? it->keys[0]->key : "";
            tw_fmt_printf(o, "  %.2f  %-13s  item %lld %s", cd->score,
                          cd->probable ? "PROBABLE LINK" : "candidate", it ? (long long)it->id : 0LL,
                          key ? key : "");
            if (it && (!empty(it->maker) || !empty(it->model)))
                tw_fmt_printf(o, " (%s%s%s)", empty(it->maker) ? "" : it->maker,
                              !empty(it->maker) && !empty(it->model) ? " " : "",
                              empty(it->model) ? "" : it->model);
            if (!empty(cd->reason))
                tw_fmt_printf(o, ": %s", cd->reason);
            if (!empty(cd->reading))
                tw_fmt_printf(o, " [reading \"%s\"]", cd->reading);
            if (cd->probable)
                out_puts(o, "  (probable link, not merged)");
            out_puts(o, "\n");
        }
    }
    return done(o);
}

static int search_text(tw_fmt_out *o, const Tidewatch__V1__SearchItemsResponse *r)
{
    if (!r || r->n_items == 0) {
        out_puts(o, "No items match.\n");
        return done(o);
    }
    tw_fmt_printf(o, "%-5s  %-20s  %-6s  %-8s  %-20s  %s\n", "score", "key", "kind", "item",
                  "maker model", "last place");
    for (size_t i = 0; i < r->n_items; i++) {
        const Tidewatch__V1__ItemMatch *m = r->items[i];
        if (!m)
            continue;
        const Tidewatch__V1__Item *it = m->item;
        char mm[128];
        snprintf(mm, sizeof mm, "%s%s%s", it && !empty(it->maker) ? it->maker : "",
                 it && !empty(it->maker) && !empty(it->model) ? " " : "",
                 it && !empty(it->model) ? it->model : "");
        tw_fmt_printf(o, "%5.2f  %-20s  %-6s  %-8lld  %-20s  ", m->score,
                      m->matched_key ? m->matched_key : "", it ? item_kind_name(it->kind) : "item",
                      it ? (long long)it->id : 0LL, mm[0] ? mm : "-");
        if (place_known(m->last_place))
            place(o, m->last_place);
        else
            out_puts(o, "-");
        if (!empty(m->reason))
            tw_fmt_printf(o, "  (%s)", m->reason);
        out_puts(o, "\n");
    }
    return done(o);
}

static int trace_text(tw_fmt_out *o, const Tidewatch__V1__TraceResponse *r, int forward)
{
    size_t n = r ? r->n_items : 0;
    tw_fmt_printf(o, "%s: %zu item%s\n", forward ? "Where the items went" : "Where the items came from",
                  n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        const Tidewatch__V1__TracedItem *ti = r->items[i];
        if (!ti)
            continue;
        out_puts(o, "\n");
        item_head(o, ti->item);
        if (forward)
            tw_fmt_printf(o, "  %d handoff%s from the start\n", ti->depth, ti->depth == 1 ? "" : "s");
        if (ti->n_hops == 0)
            out_puts(o, "  (no hops)\n");
        hops_block(o, ti->hops, ti->n_hops);
    }
    if (r && r->n_unidentified) {
        out_puts(o, "\nLine items without serials (bulk):\n");
        hops_block(o, r->unidentified, r->n_unidentified);
    }
    if (r && r->truncated)
        out_puts(o, "\n... more not shown (truncated)\n");
    return done(o);
}

static const char *identifier_kind(Tidewatch__V1__PartyIdentifier__Kind k)
{
    switch (k) {
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT:
        return "VAT";
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__COMPANY_NUMBER:
        return "company number";
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE:
        return "phone";
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__EMAIL:
        return "email";
    case TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__IDENTITY_DOCUMENT:
        return "identity document";
    default:
        return "identifier";
    }
}

static void identity(tw_fmt_out *o, const Tidewatch__V1__PartyIdentity *p, const char *indent)
{
    tw_fmt_printf(o, "%s#%lld %s", indent, (long long)p->id, empty(p->name) ? "(no name)" : p->name);
    if (!empty(p->kind) || !empty(p->country))
        tw_fmt_printf(o, " (%s%s%s)", empty(p->kind) ? "" : p->kind,
                      !empty(p->kind) && !empty(p->country) ? ", " : "",
                      empty(p->country) ? "" : p->country);
    if (!empty(p->role))
        tw_fmt_printf(o, ", %s", p->role);
    if (p->event_id)
        tw_fmt_printf(o, " in event %lld", (long long)p->event_id);
    out_puts(o, "\n");
    if (!empty(p->address) || !empty(p->place))
        tw_fmt_printf(o, "%s   address: %s%s%s\n", indent, empty(p->address) ? "" : p->address,
                      !empty(p->address) && !empty(p->place) ? "; place: " : "",
                      empty(p->place) ? "" : p->place);
    for (size_t i = 0; i < p->n_identifiers; i++) {
        const Tidewatch__V1__PartyIdentifier *id = p->identifiers[i];
        if (id)
            tw_fmt_printf(o, "%s   %s %s%s%s\n", indent, identifier_kind(id->kind),
                          id->value ? id->value : "", empty(id->issuing_country) ? "" : " ",
                          empty(id->issuing_country) ? "" : id->issuing_country);
    }
}

static const char *link_kind(const char *k)
{
    if (!k)
        return "";
    if (strcmp(k, "name_address") == 0)
        return "same name and address";
    if (strcmp(k, "company_number") == 0)
        return "same company number";
    if (strcmp(k, "identity_document") == 0)
        return "same identity document";
    if (strcmp(k, "vat") == 0)
        return "same VAT number";
    if (strcmp(k, "phone") == 0)
        return "same phone";
    if (strcmp(k, "email") == 0)
        return "same email";
    return k;
}

static int party_text(tw_fmt_out *o, const Tidewatch__V1__GetPartyResponse *r)
{
    if (!r || !r->party) {
        out_puts(o, "No party.\n");
        return done(o);
    }
    out_puts(o, "Party ");
    identity(o, r->party, "");
    tw_fmt_printf(o, "\nCluster (%zu identit%s):\n", r->n_cluster, r->n_cluster == 1 ? "y" : "ies");
    for (size_t i = 0; i < r->n_cluster; i++)
        if (r->cluster[i])
            identity(o, r->cluster[i], "  ");
    if (r->n_links) {
        out_puts(o, "\nTied by:\n");
        for (size_t i = 0; i < r->n_links; i++) {
            const Tidewatch__V1__ClusterLink *l = r->links[i];
            if (l)
                tw_fmt_printf(o, "  #%lld - #%lld: %s%s%s\n", (long long)l->party_a,
                              (long long)l->party_b, link_kind(l->kind), empty(l->value) ? "" : " ",
                              empty(l->value) ? "" : l->value);
        }
    }
    if (r->n_too_common) {
        out_puts(o, "\nToo common to link anything:\n");
        for (size_t i = 0; i < r->n_too_common; i++)
            tw_fmt_printf(o, "  %s\n", r->too_common[i] ? r->too_common[i] : "");
    }
    tw_fmt_printf(o, "\nHops (%zu, in the order things happened):\n", r->n_hops);
    if (r->n_hops == 0)
        out_puts(o, "  (no hops)\n");
    hops_block(o, r->hops, r->n_hops);
    if (r->truncated)
        out_puts(o, "  ... more hops not shown (truncated)\n");
    return done(o);
}

static int events_text(tw_fmt_out *o, const Tidewatch__V1__ListEventsResponse *r)
{
    if (!r || r->n_events == 0) {
        out_puts(o, "No events.\n");
        return done(o);
    }
    for (size_t i = 0; i < r->n_events; i++) {
        const Tidewatch__V1__EventSummary *e = r->events[i];
        if (!e)
            continue;
        char date[16];
        tw_fmt_printf(o, "%-10lld  %-10s  %-10s  %s/%s", (long long)e->id,
                      tw_chainfmt_date(e->occurred, date), empty(e->kind) ? "?" : e->kind,
                      empty(e->source) ? "?" : e->source, e->source_ref ? e->source_ref : "");
        for (size_t j = 0; j < e->n_serial_keys; j++)
            tw_fmt_printf(o, "%s%s", j ? ", " : "  serial ", e->serial_keys[j]);
        for (size_t j = 0; j < e->n_hull_keys; j++)
            tw_fmt_printf(o, "%s%s", j ? ", " : "  hull ", e->hull_keys[j]);
        out_puts(o, "\n");
    }
    return done(o);
}

/* ---- clean copies for text ----------------------------------------------- */

/* Strings in answers come from data providers' records: a name may hold a
 * newline (which would break "one line per hop") or a terminal escape
 * sequence. The text and DOT renderers work on a copy (packed and unpacked
 * again) whose strings have every C0 control character, DEL and C1 control
 * (U+0080..U+009F) replaced by spaces, and bytes that are not UTF-8 by '?'. */
static void clean_string(char *s)
{
    if (!s)
        return;
    size_t len = strlen(s);
    unsigned char *p = (unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_len(p + i, len - i);
        if (n == 0) {
            p[i++] = '?';
        } else if (n == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
            p[i++] = ' ';
        } else if (n == 2 && p[i] == 0xc2 && p[i + 1] <= 0x9f) {
            p[i] = p[i + 1] = ' ';
            i += 2;
        } else {
            i += n;
        }
    }
}

static void clean_message(ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (depth > 64)
        return;
    char *base = (char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        size_t n = 1;
        void **vals = (void **)(base + f->offset);
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            n = *(size_t *)(base + f->quantifier_offset);
            vals = *(void ***)(base + f->offset);
        }
        for (size_t k = 0; vals && k < n; k++) {
            if (!vals[k])
                continue;
            if (f->type == PROTOBUF_C_TYPE_STRING)
                clean_string(vals[k]);
            else
                clean_message(vals[k], depth + 1);
        }
    }
}

static ProtobufCMessage *clean_copy(tw_fmt_out *o, const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    ProtobufCMessage *c = NULL;
    if (buf) {
        protobuf_c_message_pack(m, buf);
        c = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
        free(buf);
    }
    if (!c)
        o->failed = 1;
    else
        clean_message(c, 0);
    return c;
}

#define CLEAN_RENDER(call, type, r)                                                             \
    do {                                                                                        \
        if (!(r))                                                                               \
            return call(o, NULL);                                                               \
        ProtobufCMessage *c_ = clean_copy(o, &(r)->base);                                       \
        if (!c_)                                                                                \
            return -1;                                                                          \
        int rc_ = call(o, (const type *)c_);                                                    \
        protobuf_c_message_free_unpacked(c_, NULL);                                             \
        return rc_;                                                                             \
    } while (0)

int tw_chainfmt_chain_text(tw_fmt_out *o, const Tidewatch__V1__GetChainResponse *r)
{
    CLEAN_RENDER(chain_text, Tidewatch__V1__GetChainResponse, r);
}

int tw_chainfmt_search_text(tw_fmt_out *o, const Tidewatch__V1__SearchItemsResponse *r)
{
    CLEAN_RENDER(search_text, Tidewatch__V1__SearchItemsResponse, r);
}

int tw_chainfmt_party_text(tw_fmt_out *o, const Tidewatch__V1__GetPartyResponse *r)
{
    CLEAN_RENDER(party_text, Tidewatch__V1__GetPartyResponse, r);
}

int tw_chainfmt_events_text(tw_fmt_out *o, const Tidewatch__V1__ListEventsResponse *r)
{
    CLEAN_RENDER(events_text, Tidewatch__V1__ListEventsResponse, r);
}

int tw_chainfmt_hop_line(tw_fmt_out *o, const Tidewatch__V1__Hop *r)
{
    CLEAN_RENDER(hop_line, Tidewatch__V1__Hop, r);
}

static int trace_fwd(tw_fmt_out *o, const Tidewatch__V1__TraceResponse *r)
{
    return trace_text(o, r, 1);
}

static int trace_back(tw_fmt_out *o, const Tidewatch__V1__TraceResponse *r)
{
    return trace_text(o, r, 0);
}

int tw_chainfmt_trace_text(tw_fmt_out *o, const Tidewatch__V1__TraceResponse *r, int forward)
{
    if (forward)
        CLEAN_RENDER(trace_fwd, Tidewatch__V1__TraceResponse, r);
    CLEAN_RENDER(trace_back, Tidewatch__V1__TraceResponse, r);
}

/* ---- JSON (protobuf's JSON mapping) -------------------------------------- */

static char *camel(const char *name)
{
    size_t n = strlen(name);
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    size_t j = 0;
    int up = 0;
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '_') {
            up = 1;
            continue;
        }
        char c = name[i];
        if (up && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        up = 0;
        s[j++] = c;
    }
    s[j] = '\0';
    return s;
}

static json_t *timestamp_json(const Google__Protobuf__Timestamp *t)
{
    struct tm tm;
    time_t s = (time_t)t->seconds;
    if (!gmtime_r(&s, &tm))
        return json_string("invalid");
    char buf[64];
    int n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    int32_t ns = t->nanos;
    if (n > 0 && ns > 0 && ns < 1000000000) {
        if (ns % 1000000 == 0)
            snprintf(buf + n, sizeof buf - (size_t)n, ".%03dZ", ns / 1000000);
        else if (ns % 1000 == 0)
            snprintf(buf + n, sizeof buf - (size_t)n, ".%06dZ", ns / 1000);
        else
            snprintf(buf + n, sizeof buf - (size_t)n, ".%09dZ", ns);
    } else if (n > 0) {
        snprintf(buf + n, sizeof buf - (size_t)n, "Z");
    }
    return json_string(buf);
}

static json_t *int64_json(long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return json_string(buf);
}

static json_t *uint64_json(unsigned long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", v);
    return json_string(buf);
}

static json_t *double_json(double d)
{
    if (isnan(d))
        return json_string("NaN");
    if (isinf(d))
        return json_string(d > 0 ? "Infinity" : "-Infinity");
    return json_real(d);
}

static json_t *msg_json(const ProtobufCMessage *m);

/* One value of a field (an element of a repeated field, or the single
 * value) at `p`. */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer((json_int_t) * (const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return int64_json((long long)*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return uint64_json((unsigned long long)*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return double_json((double)*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return double_json(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev =
            f->descriptor ? protobuf_c_enum_descriptor_get_value(
                                (const ProtobufCEnumDescriptor *)f->descriptor, v)
                          : NULL;
        return ev ? json_string(ev->name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING:
        return json_text(*(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        if (b->len > (size_t)1 << 28)
            return NULL;
        size_t cap = 4 * ((b->len + 2) / 3) + 1;
        unsigned char *enc = malloc(cap);
        if (!enc)
            return NULL;
        int n = b->len ? EVP_EncodeBlock(enc, b->data, (int)b->len) : 0;
        json_t *j = json_stringn((const char *)enc, n > 0 ? (size_t)n : 0);
        free(enc);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub ? msg_json(sub) : json_null();
    }
    }
    return json_null();
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    }
    return 0;
}

/* Whether a proto3 singular field without presence holds its default
 * (which the JSON mapping leaves out). */
static int is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !s[0];
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(void *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0.0f && !signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0.0 && !signbit(*(const double *)p);
    default: {
        size_t sz = elem_size(f->type);
        static const unsigned char zero[8];
        return sz <= sizeof zero && memcmp(p, zero, sz) == 0;
    }
    }
}

static json_t *msg_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d && d->name && strcmp(d->name, "google.protobuf.Timestamp") == 0)
        return timestamp_json((const Google__Protobuf__Timestamp *)m);
    json_t *obj = json_object();
    if (!obj || !d)
        return obj;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = base + f->offset;
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0)
                continue;
            const char *arr = *(const char *const *)p;
            v = json_array();
            for (size_t k = 0; v && k < n; k++) {
                json_t *e = value_json(f, arr + k * elem_size(f->type));
                if (!e || json_array_append_new(v, e) != 0) {
                    json_decref(v);
                    v = NULL;
                }
            }
        } else {
            if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
                if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
                    continue;
            } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
                       f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
                if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset))
                    continue;
            } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
                if (*(void *const *)p == NULL)
                    continue;
            } else if (f->label == PROTOBUF_C_LABEL_NONE && is_default(f, p)) {
                continue;
            }
            v = value_json(f, p);
        }
        char *key = camel(f->name);
        if (!v || !key || json_object_set_new(obj, key, v) != 0) {
            if (!key)
                json_decref(v);
            free(key);
            json_decref(obj);
            return NULL;
        }
        free(key);
    }
    return obj;
}

json_t *tw_chainfmt_json(const ProtobufCMessage *m)
{
    return m ? msg_json(m) : json_object();
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    tw_fmt_out *o = data;
    tw_fmt_printf(o, "%.*s", (int)size, buffer);
    return o->failed ? -1 : 0;
}

int tw_chainfmt_write_json(tw_fmt_out *o, const json_t *j)
{
    if (!j || json_dump_callback(j, dump_cb, o,
                                 JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) != 0)
        o->failed = 1;
    out_puts(o, "\n");
    return done(o);
}

/* ---- DOT ---------------------------------------------------------------- */

/* A DOT quoted string's content: \ and " escaped, newlines as \n (a line
 * break in a label), other control characters as spaces. */
static void dot_str(tw_fmt_out *o, const char *s)
{
    if (!s)
        return;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            tw_fmt_printf(o, "\\%c", *p);
        else if (*p == '\n')
            out_puts(o, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            out_puts(o, " ");
        else
            tw_fmt_printf(o, "%c", *p);
    }
}

static void dot_place_text(tw_fmt_out *o, const Tidewatch__V1__HopPlace *pl)
{
    tw_fmt_buf b = {0};
    tw_fmt_out t = tw_fmt_to_buf(&b);
    place(&t, pl);
    if (t.failed)
        o->failed = 1;
    else
        dot_str(o, b.data);
    tw_fmt_buf_free(&b);
}

static int party_named(const Tidewatch__V1__PartyRef *p)
{
    return p && (p->id != 0 || !empty(p->name));
}

/* What identifies a party's node: its cluster when the server gave one (one
 * actor named in several records is one node), else its id; 0: none. */
static int64_t party_key(const Tidewatch__V1__PartyRef *p)
{
    return !p ? 0 : p->cluster ? p->cluster : p->id;
}

/* The node for one side of a hop: the party, or a stand-in (the place, or
 * "unknown"). Declares the node (again: DOT merges attributes) and writes
 * its id into idbuf. */
/* Whether party id was on a hop of ch before hop i (or, for the receiving
 * side, is the sender of hop i): its node is declared already. */
static int party_declared(const Tidewatch__V1__Chain *ch, size_t i, int to_side, int64_t id)
{
    for (size_t j = 0; j <= i && j < ch->n_hops; j++) {
        const Tidewatch__V1__Hop *h = ch->hops[j];
        if (!h)
            continue;
        if (party_key(h->from) == id && (j < i || to_side))
            return 1;
        if (j < i && party_key(h->to) == id)
            return 1;
    }
    return 0;
}

static void dot_node(tw_fmt_out *o, const char *ind, const char *prefix,
                     const Tidewatch__V1__Chain *ch, const Tidewatch__V1__PartyRef *p,
                     const Tidewatch__V1__HopPlace *pl, size_t hop, const char *side, char *idbuf,
                     size_t idlen)
{
    int to_side = side[0] == 't';
    if (party_named(p)) {
        int64_t key = party_key(p);
        if (key)
            snprintf(idbuf, idlen, "%sparty_%lld", prefix, (long long)key);
        else
            snprintf(idbuf, idlen, "%shop%zu_%s", prefix, hop, side);
        if (key && party_declared(ch, hop, to_side, key))
            return;
        tw_fmt_printf(o, "%s  \"%s\" [shape=box, label=\"", ind, idbuf);
        dot_str(o, empty(p->name) ? "unnamed party" : p->name);
        if (!empty(p->kind) || !empty(p->country)) {
            out_puts(o, "\\n");
            dot_str(o, p->kind);
            if (!empty(p->kind) && !empty(p->country))
                out_puts(o, ", ");
            dot_str(o, p->country);
        }
        out_puts(o, "\"];\n");
    } else {
        snprintf(idbuf, idlen, "%shop%zu_%s", prefix, hop, side);
        tw_fmt_printf(o, "%s  \"%s\" [shape=ellipse, style=dashed, label=\"", ind, idbuf);
        if (place_known(pl))
            dot_place_text(o, pl);
        else
            out_puts(o, "unknown");
        out_puts(o, "\"];\n");
    }
}

static void dot_chain(tw_fmt_out *o, const Tidewatch__V1__Chain *ch, size_t c, int sub)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "c%zu_", c);
    const char *ind = sub ? "  " : "";
    if (sub) {
        tw_fmt_printf(o, "  subgraph \"cluster_%zu\" {\n    label=\"", c);
        const Tidewatch__V1__Item *it = ch->item;
        dot_str(o, it && it->n_keys && it->keys[0] ? it->keys[0]->key : "item");
        out_puts(o, "\";\n");
    }
    char prev_to[64] = ""; /* the receiver of the last active hop drawn */
    for (size_t i = 0; i < ch->n_hops; i++) {
        const Tidewatch__V1__Hop *h = ch->hops[i];
        if (!h)
            continue;
        char a[64], b[64], date[16];
        int active = h->status == TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_ACTIVE;
        if (h->kind == TIDEWATCH__V1__HOP_KIND__HOP_KIND_SEIZURE && !party_named(h->from) &&
            prev_to[0] && active)
            snprintf(a, sizeof a, "%s", prev_to); /* seized from whoever held it last */
        else
            dot_node(o, ind, prefix, ch, h->from,
                     h->kind == TIDEWATCH__V1__HOP_KIND__HOP_KIND_SHIPMENT ? h->origin : h->place,
                     i, "from", a, sizeof a);
        dot_node(o, ind, prefix, ch, h->to, h->place, i, "to", b, sizeof b);
        if (active)
            snprintf(prev_to, sizeof prev_to, "%s", b);
        tw_fmt_printf(o, "%s  \"%s\" -> \"%s\" [label=\"%s %s", ind, a, b,
                      tw_chainfmt_date(h->time, date), hop_verb(h->kind));
        if (h->quantity > 1)
            tw_fmt_printf(o, " x%u", h->quantity);
        if (party_named(h->carrier)) {
            out_puts(o, "\\nby ");
            dot_str(o, empty(h->carrier->name) ? "unnamed carrier" : h->carrier->name);
        }
        if (place_known(h->place)) {
            out_puts(o, "\\nat ");
            dot_place_text(o, h->place);
        }
        tw_fmt_printf(o, "\\nevent %lld", (long long)h->event_id);
        if (h->status == TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_CORRECTED)
            out_puts(o, "\\n(CORRECTED)\", style=dashed, color=gray50, fontcolor=gray50];\n");
        else if (h->status == TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_RETRACTED)
            out_puts(o, "\\n(RETRACTED)\", style=dashed, color=gray70, fontcolor=gray70];\n");
        else if (h->kind == TIDEWATCH__V1__HOP_KIND__HOP_KIND_SEIZURE)
            out_puts(o, "\", color=red, fontcolor=red];\n");
        else
            out_puts(o, "\"];\n");
    }
    if (ch->n_facts) {
        tw_fmt_printf(o, "%s  \"%sfacts\" [shape=note, label=\"", ind, prefix);
        for (size_t i = 0; i < ch->n_facts; i++) {
            const Tidewatch__V1__ChainFact *f = ch->facts[i];
            if (!f)
                continue;
            tw_fmt_printf(o, "%s ", fact_mark(f->severity));
            dot_str(o, !empty(f->text) ? f->text : f->kind);
            out_puts(o, "\\l");
        }
        out_puts(o, "\"];\n");
    }
    if (sub)
        out_puts(o, "  }\n");
}

static int chain_dot(tw_fmt_out *o, const Tidewatch__V1__GetChainResponse *r)
{
    out_puts(o, "digraph chain {\n  rankdir=LR;\n  fontname=\"Helvetica\";\n  node [fontname=\"Helvetica\"];\n"
                "  edge [fontname=\"Helvetica\", fontsize=10];\n  labelloc=t;\n  label=\"");
    const Tidewatch__V1__Chain *first = r && r->n_chains ? r->chains[0] : NULL;
    if (r && !empty(r->normalized))
        dot_str(o, r->normalized);
    else if (first && first->item && first->item->n_keys && first->item->keys[0])
        dot_str(o, first->item->keys[0]->key);
    else
        out_puts(o, "chain");
    if (first && first->item && r->n_chains == 1 &&
        (!empty(first->item->maker) || !empty(first->item->model))) {
        out_puts(o, " (");
        dot_str(o, first->item->maker);
        if (!empty(first->item->maker) && !empty(first->item->model))
            out_puts(o, " ");
        dot_str(o, first->item->model);
        out_puts(o, ")");
    }
    out_puts(o, "\";\n");
    size_t n = r ? r->n_chains : 0;
    if (n == 0)
        out_puts(o, "  \"empty\" [shape=note, label=\"no chain\"];\n");
    for (size_t c = 0; c < n; c++)
        if (r->chains[c])
            dot_chain(o, r->chains[c], c, n > 1);
    out_puts(o, "}\n");
    return done(o);
}

int tw_chainfmt_chain_dot(tw_fmt_out *o, const Tidewatch__V1__GetChainResponse *r)
{
    CLEAN_RENDER(chain_dot, Tidewatch__V1__GetChainResponse, r);
}

/* ---- GeoJSON ------------------------------------------------------------ */

static int set_str(json_t *obj, const char *k, const char *v)
{
    return json_object_set_new(obj, k, json_text(v));
}

/* Coordinates a map can use: given, finite and in range. */
static int mappable(const Tidewatch__V1__HopPlace *pl)
{
    return pl && pl->has_coordinates && isfinite(pl->lat) && isfinite(pl->lon) &&
           fabs(pl->lat) <= 90.0 && fabs(pl->lon) <= 180.0;
}

static json_t *lonlat(const Tidewatch__V1__HopPlace *pl)
{
    return json_pack("[ff]", pl->lon, pl->lat);
}

static char *party_name_dup(const Tidewatch__V1__PartyRef *p)
{
    if (!party_named(p))
        return NULL;
    return strdup(empty(p->name) ? "unnamed party" : p->name);
}

/* Hops of a chain by time (then position): the server sends them in that
 * order; sorting again makes the route's order a property of this module. */
typedef struct {
    int64_t s;
    int32_t ns;
    size_t i;
} hop_key;

static int hop_key_cmp(const void *a, const void *b)
{
    const hop_key *x = a, *y = b;
    if (x->s != y->s)
        return x->s < y->s ? -1 : 1;
    if (x->ns != y->ns)
        return x->ns < y->ns ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static json_t *hop_point(const Tidewatch__V1__Hop *h, const Tidewatch__V1__Chain *ch)
{
    const Tidewatch__V1__HopPlace *pl = mappable(h->place)    ? h->place
                                        : mappable(h->origin) ? h->origin
                                                              : NULL;
    if (!pl)
        return NULL;
    char date[16];
    json_t *props = json_object();
    json_t *feat = json_pack("{s:s, s:{s:s, s:o}, s:o}", "type", "Feature", "geometry", "type",
                             "Point", "coordinates", lonlat(pl), "properties", props);
    if (!feat)
        return NULL;
    json_t *time = has_time(h->time) ? timestamp_json(h->time) : json_null();
    char *from = party_name_dup(h->from), *to = party_name_dup(h->to),
         *carrier = party_name_dup(h->carrier);
    tw_fmt_buf pb = {0};
    tw_fmt_out po = tw_fmt_to_buf(&pb);
    place(&po, pl);
    int bad = set_str(props, "date", has_time(h->time) ? tw_chainfmt_date(h->time, date) : "") |
              json_object_set_new(props, "time", time) |
              set_str(props, "kind", hop_kind_name(h->kind)) |
              json_object_set_new(props, "from", from ? json_text(from) : json_null()) |
              json_object_set_new(props, "to", to ? json_text(to) : json_null()) |
              json_object_set_new(props, "carrier", carrier ? json_text(carrier) : json_null()) |
              set_str(props, "place", po.failed ? "" : pb.data) |
              set_str(props, "status", status_name(h->status)) |
              json_object_set_new(props, "eventId", json_integer(h->event_id)) |
              json_object_set_new(props, "itemId",
                                  json_integer(ch && ch->item ? ch->item->id : h->item_id));
    if (h->quantity > 1)
        bad |= json_object_set_new(props, "quantity", json_integer(h->quantity));
    free(from);
    free(to);
    free(carrier);
    tw_fmt_buf_free(&pb);
    if (bad || po.failed) {
        json_decref(feat);
        return NULL;
    }
    return feat;
}

static int geo_chain(json_t *features, const Tidewatch__V1__Chain *ch)
{
    size_t n = ch->n_hops;
    hop_key *keys = calloc(n ? n : 1, sizeof *keys);
    json_t *line = json_array();
    int rc = -1;
    if (!keys || !line)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const Tidewatch__V1__Hop *h = ch->hops[i];
        if (!h)
            continue;
        keys[k].s = has_time(h->time) ? h->time->seconds : INT64_MAX;
        keys[k].ns = has_time(h->time) ? h->time->nanos : 0;
        keys[k].i = i;
        k++;
    }
    qsort(keys, k, sizeof *keys, hop_key_cmp);
    const Tidewatch__V1__HopPlace *last = NULL;
    for (size_t j = 0; j < k; j++) {
        const Tidewatch__V1__Hop *h = ch->hops[keys[j].i];
        json_t *pt = hop_point(h, ch);
        if (pt && json_array_append_new(features, pt) != 0)
            goto out;
        if (h->status != TIDEWATCH__V1__HOP_STATUS__HOP_STATUS_ACTIVE)
            continue;
        const Tidewatch__V1__HopPlace *seq[2] = {
            h->kind == TIDEWATCH__V1__HOP_KIND__HOP_KIND_SHIPMENT ? h->origin : NULL, h->place};
        for (int s = 0; s < 2; s++) {
            const Tidewatch__V1__HopPlace *pl = seq[s];
            if (!mappable(pl))
                continue;
            if (last && last->lat == pl->lat && last->lon == pl->lon)
                continue;
            if (json_array_append_new(line, lonlat(pl)) != 0)
                goto out;
            last = pl;
        }
    }
    if (json_array_size(line) >= 2) {
        json_t *props = json_pack("{s:s, s:I}", "kind", "route", "itemId",
                                  (json_int_t)(ch->item ? ch->item->id : 0));
        if (props && ch->item && ch->item->n_keys && ch->item->keys[0])
            set_str(props, "key", ch->item->keys[0]->key);
        json_t *feat = json_pack("{s:s, s:{s:s, s:O}, s:o}", "type", "Feature", "geometry", "type",
                                 "LineString", "coordinates", line, "properties", props);
        /* the route goes first */
        if (!feat || json_array_insert_new(features, 0, feat) != 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(line);
    free(keys);
    return rc;
}

json_t *tw_chainfmt_chain_geojson(const Tidewatch__V1__GetChainResponse *r)
{
    json_t *features = json_array();
    json_t *fc = json_pack("{s:s, s:o}", "type", "FeatureCollection", "features", features);
    if (!fc)
        return NULL;
    for (size_t c = 0; r && c < r->n_chains; c++) {
        json_t *part = json_array();
        if (!part || (r->chains[c] && geo_chain(part, r->chains[c]) != 0) ||
            json_array_extend(features, part) != 0) {
            json_decref(part);
            json_decref(fc);
            return NULL;
        }
        json_decref(part);
    }
    return fc;
}
