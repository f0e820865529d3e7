/* TEMPORARY STUB of tw_chain (branch `query` only): DROP THIS FILE AT MERGE.
 *
 * The real lib/domain/tw_chain.c is written on another branch; this stub
 * only lets tidewatch-query link and be tested before it lands. It orders
 * hops as tw_chain.h says (time, event id, line; hops without a time last)
 * and finds no facts and no corroboration. If both files are ever linked
 * together the build fails on duplicate symbols, so it cannot linger. */
#include <stdlib.h>
#include <string.h>

#include "tw_chain.h"

void tw_chain_options_init(tw_chain_options *opt)
{
    opt->same_hop_seconds = TW_CHAIN_DEFAULT_SAME_HOP_SECONDS;
    opt->place_gap_km = TW_CHAIN_DEFAULT_PLACE_GAP_KM;
    opt->max_kmh = TW_CHAIN_DEFAULT_MAX_KMH;
}

static int before(const tw_chain_hop *a, const tw_chain_hop *b)
{
    if (a->has_time != b->has_time)
        return a->has_time;
    if (a->has_time && a->time != b->time)
        return a->time < b->time;
    if (a->event_id != b->event_id)
        return a->event_id < b->event_id;
    return a->line < b->line;
}

int tw_chain_assemble(const tw_chain_hop *hops, size_t n, const tw_chain_reading *readings,
                      size_t nr, const tw_chain_options *opt, tw_arena *arena,
                      tw_chain_result *out)
{
    (void)readings;
    (void)nr;
    (void)opt;
    memset(out, 0, sizeof *out);
    out->last = -1;
    if (n && !hops)
        return -1;
    out->order = tw_arena_calloc(arena, n ? n : 1, sizeof *out->order);
    if (!out->order)
        return -1;
    for (size_t i = 0; i < n; i++) { /* insertion sort: stable, n is capped */
        size_t j = i;
        while (j > 0 && before(&hops[i], &hops[out->order[j - 1].input])) {
            out->order[j] = out->order[j - 1];
            j--;
        }
        out->order[j] = (tw_chain_entry){.input = i, .same_as = -1, .sources = 1};
    }
    out->n = n;
    for (size_t i = n; i-- > 0;)
        if (hops[out->order[i].input].status == TW_CHAIN_ACTIVE) {
            out->last = (ptrdiff_t)i;
            break;
        }
    return 0;
}
