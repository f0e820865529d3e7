/* tidewatch trace back / trace forward. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tidewatch/v1/provenance.pb-c.h"
#include "tw_chainfmt.h"

static int print_trace(ProtobufCMessage *m, int json, int forward, const char *cmd)
{
    const Tidewatch__V1__TraceResponse *r = (const Tidewatch__V1__TraceResponse *)m;
    int rc;
    if (json) {
        rc = cli_print_json(m);
    } else {
        tw_fmt_out o = tw_fmt_to_file(stdout);
        rc = tw_chainfmt_trace_text(&o, r, forward) ? CLI_SERVER : CLI_OK;
    }
    if (rc == CLI_OK && r->n_items == 0 && r->n_unidentified == 0)
        rc = CLI_NOT_FOUND;
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish(cmd, rc);
}

static int trace_back(const tw_cli *cli, int argc, char **argv)
{
    const char *source = NULL, *ref = NULL;
    int json = 0;
    int64_t max_items = 0;
    const cli_opt opts[] = {
        {"source", CLI_OPT_STR, "S", "the event by its data provider ...", &source, 0},
        {"ref", CLI_OPT_STR, "R", "... and that provider's reference", &ref, 0},
        {"max-items", CLI_OPT_INT, "N", "items at most (default: the server's)", &max_items, 1},
        {"json", CLI_OPT_FLAG, NULL, "the answer as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const cli_help help = {
        "trace back", "trace back EVENT_ID [--json]\n       tidewatch trace back --source S --ref R [--json]",
        "From a seizure or any event: where its items came from (each item's hops before it).",
        NULL};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, 1, &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    Tidewatch__V1__TraceBackRequest req = TIDEWATCH__V1__TRACE_BACK_REQUEST__INIT;
    char nf[512];
    if (npos == 1 && !source && !ref) {
        if ((rc = cli_id("trace back", "EVENT_ID", pos[0], &req.event_id)) != 0)
            return rc;
        snprintf(nf, sizeof nf, "no event with id %lld", (long long)req.event_id);
    } else if (npos == 0 && source && ref) {
        req.source = (char *)source;
        req.source_ref = (char *)ref;
        snprintf(nf, sizeof nf, "no event with source %s and reference %s", source, ref);
    } else {
        fprintf(stderr, "tidewatch trace back: give an EVENT_ID, or both --source and --ref; see "
                        "tidewatch trace back --help\n");
        return CLI_USAGE;
    }
    req.max_items = (int32_t)(max_items > INT32_MAX ? INT32_MAX : max_items);
    ProtobufCMessage *m = NULL;
    rc = cli_call(cli, "trace back", "TraceBack", &req.base, &tidewatch__v1__trace_response__descriptor,
                  &m, nf);
    return rc ? rc : print_trace(m, json, 0, "trace back");
}

static int trace_forward(const tw_cli *cli, int argc, char **argv)
{
    int json = 0;
    int64_t party = 0, event = 0, depth = 0, max_items = 0;
    const cli_opt opts[] = {
        {"party", CLI_OPT_INT, "ID", "from a party (its whole cluster)", &party, 1},
        {"event", CLI_OPT_INT, "ID", "from an event (a purchase)", &event, 1},
        {"depth", CLI_OPT_INT, "N", "handoffs to follow (default 3, capped by the server)", &depth,
         1},
        {"max-items", CLI_OPT_INT, "N", "items at most (default: the server's)", &max_items, 1},
        {"json", CLI_OPT_FLAG, NULL, "the answer as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const cli_help help = {
        "trace forward", "trace forward --party ID | --event ID [--depth N] [--json]",
        "From a party or a purchase: where its items went, transitively (items the buyers then\n"
        "passed on, up to --depth handoffs).",
        NULL};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if ((party == 0) == (event == 0)) {
        fprintf(stderr, "tidewatch trace forward: give either --party ID or --event ID\n");
        return CLI_USAGE;
    }
    Tidewatch__V1__TraceForwardRequest req = TIDEWATCH__V1__TRACE_FORWARD_REQUEST__INIT;
    req.party_id = party;
    req.event_id = event;
    req.max_depth = (int32_t)(depth > INT32_MAX ? INT32_MAX : depth);
    req.max_items = (int32_t)(max_items > INT32_MAX ? INT32_MAX : max_items);
    char nf[128];
    snprintf(nf, sizeof nf, "no %s with id %lld", party ? "party" : "event",
             (long long)(party ? party : event));
    ProtobufCMessage *m = NULL;
    rc = cli_call(cli, "trace forward", "TraceForward", &req.base,
                  &tidewatch__v1__trace_response__descriptor, &m, nf);
    return rc ? rc : print_trace(m, json, 1, "trace forward");
}

int tw_cli_trace(const tw_cli *cli, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "back") == 0)
        return trace_back(cli, argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "forward") == 0)
        return trace_forward(cli, argc - 1, argv + 1);
    int help = argc >= 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0);
    FILE *out = help ? stdout : stderr;
    if (!help)
        fprintf(stderr, "tidewatch trace: expected \"back\" or \"forward\"%s%s%s\n\n",
                argc ? ", got \"" : "", argc ? argv[0] : "", argc ? "\"" : "");
    fprintf(out, "Usage: tidewatch trace back EVENT_ID [--json]\n"
                 "       tidewatch trace back --source S --ref R [--json]\n"
                 "       tidewatch trace forward --party ID | --event ID [--depth N] [--json]\n\n"
                 "tidewatch trace back --help and tidewatch trace forward --help say more.\n");
    return help ? CLI_OK : CLI_USAGE;
}
