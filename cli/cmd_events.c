/* tidewatch events: the event log, filtered and paged (ListEvents). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tidewatch/v1/provenance.pb-c.h"
#include "tw_chainfmt.h"

#define MAX_PAGES 10000

int tw_cli_events(const tw_cli *cli, int argc, char **argv)
{
    const char *kind = NULL, *source = NULL, *after = NULL, *before = NULL, *token = NULL;
    int all = 0, json = 0;
    int64_t limit = 0;
    const cli_opt opts[] = {
        {"kind", CLI_OPT_STR, "K", "purchase, shipment, seizure or correction", &kind, 0},
        {"source", CLI_OPT_STR, "S", "only this data provider's records", &source, 0},
        {"after", CLI_OPT_STR, "DATE", "occurred on or after DATE (YYYY-MM-DD, UTC)", &after, 0},
        {"before", CLI_OPT_STR, "DATE", "occurred before DATE", &before, 0},
        {"limit", CLI_OPT_INT, "N", "events per page (default 50, capped by the server)", &limit, 1},
        {"all", CLI_OPT_FLAG, NULL, "follow the page tokens to the last page", &all, 0},
        {"page-token", CLI_OPT_STR, "T", "start at this page", &token, 0},
        {"json", CLI_OPT_FLAG, NULL, "the answer as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const cli_help help = {
        "events", "events [--kind K] [--source S] [--after DATE] [--before DATE] [--limit N] [--all]\n"
                  "       [--json]",
        "Events of the log by when they occurred: id, date, kind, source/reference, keys.",
        "No event at all exits 1."};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    Tidewatch__V1__ListEventsRequest req = TIDEWATCH__V1__LIST_EVENTS_REQUEST__INIT;
    Google__Protobuf__Timestamp ta = GOOGLE__PROTOBUF__TIMESTAMP__INIT,
                                tb = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    if (after && (rc = cli_date("events", "after", after, &ta)) != 0)
        return rc;
    if (before && (rc = cli_date("events", "before", before, &tb)) != 0)
        return rc;
    req.after = after ? &ta : NULL;
    req.before = before ? &tb : NULL;
    req.kind = (char *)kind;
    req.source = (char *)source;
    req.page_size = (int32_t)(limit > INT32_MAX ? INT32_MAX : limit);
    req.page_token = (char *)token;

    Tidewatch__V1__ListEventsResponse **pages = NULL;
    size_t npages = 0, nevents = 0;
    const char *next = NULL;
    for (;;) {
        ProtobufCMessage *m = NULL;
        rc = cli_call(cli, "events", "ListEvents", &req.base,
                      &tidewatch__v1__list_events_response__descriptor, &m, "no such events");
        if (rc)
            goto out;
        Tidewatch__V1__ListEventsResponse *r = (Tidewatch__V1__ListEventsResponse *)m;
        Tidewatch__V1__ListEventsResponse **np = realloc(pages, (npages + 1) * sizeof *np);
        if (!np) {
            protobuf_c_message_free_unpacked(m, NULL);
            fprintf(stderr, "tidewatch events: out of memory\n");
            rc = CLI_SERVER;
            goto out;
        }
        pages = np;
        pages[npages++] = r;
        nevents += r->n_events;
        next = r->next_page_token && r->next_page_token[0] ? r->next_page_token : NULL;
        if (!all || !next)
            break;
        if ((req.page_token && strcmp(req.page_token, next) == 0) || npages >= MAX_PAGES) {
            fprintf(stderr, "tidewatch events: the query service keeps answering with more pages "
                            "(page token \"%s\"); stopped\n", next);
            rc = CLI_SERVER;
            goto out;
        }
        req.page_token = (char *)next;
    }
    Tidewatch__V1__ListEventsResponse merged = TIDEWATCH__V1__LIST_EVENTS_RESPONSE__INIT;
    Tidewatch__V1__EventSummary **evs = calloc(nevents ? nevents : 1, sizeof *evs);
    if (!evs) {
        fprintf(stderr, "tidewatch events: out of memory\n");
        rc = CLI_SERVER;
        goto out;
    }
    size_t k = 0;
    for (size_t p = 0; p < npages; p++)
        for (size_t i = 0; i < pages[p]->n_events; i++)
            evs[k++] = pages[p]->events[i];
    merged.events = evs;
    merged.n_events = nevents;
    merged.next_page_token = (char *)(all || !next ? "" : next);
    if (json) {
        rc = cli_print_json(&merged.base);
    } else {
        tw_fmt_out o = tw_fmt_to_file(stdout);
        rc = tw_chainfmt_events_text(&o, &merged) ? CLI_SERVER : CLI_OK;
        if (!all && next)
            fprintf(stderr, "More events: --all, or --page-token %s\n", next);
    }
    free(evs);
    if (rc == CLI_OK && nevents == 0)
        rc = CLI_NOT_FOUND;
out:
    for (size_t p = 0; p < npages; p++)
        protobuf_c_message_free_unpacked(&pages[p]->base, NULL);
    free(pages);
    return cli_finish("events", rc);
}
