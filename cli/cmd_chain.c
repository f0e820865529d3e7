/* tidewatch chain: the chain of custody of an engine or a boat. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "tidewatch/v1/provenance.pb-c.h"
#include "tw_chainfmt.h"

int tw_cli_chain(const tw_cli *cli, int argc, char **argv)
{
    const char *maker = NULL;
    int hull = 0, json = 0, dot = 0, geojson = 0;
    int64_t item = 0, max_hops = 0, max_candidates = 0;
    const cli_opt opts[] = {
        {"maker", CLI_OPT_STR, "M", "narrow a serial to one maker (\"Yamaha\")", &maker, 0},
        {"hull", CLI_OPT_FLAG, NULL, "the key is a boat's hull number (HIN/CIN), not a serial", &hull, 0},
        {"item", CLI_OPT_INT, "ID", "the item by its id instead of a serial or hull number", &item, 1},
        {"max-hops", CLI_OPT_INT, "N", "hops per chain (default: the server's)", &max_hops, 1},
        {"max-candidates", CLI_OPT_INT, "N", "candidates for a partial reading (default 10)",
         &max_candidates, 1},
        {"json", CLI_OPT_FLAG, NULL, "the answer as JSON (protobuf's JSON mapping)", &json, 0},
        {"dot", CLI_OPT_FLAG, NULL, "a Graphviz digraph (dot -Tsvg)", &dot, 0},
        {"geojson", CLI_OPT_FLAG, NULL, "a GeoJSON FeatureCollection ([lon, lat])", &geojson, 0},
    };
    const cli_help help = {
        "chain", "chain SERIAL [--maker M] [--json|--dot|--geojson]\n"
                 "       tidewatch chain --hull HULL_NUMBER [...]\n"
                 "       tidewatch chain --item ID [...]",
        "The chain of custody of an engine (by serial) or a boat (by hull number), as typed:\n"
        "the server normalises it (\"6e5-x 1016523\" finds 6E5X1016523; '?' marks an unreadable\n"
        "character and asks for candidates).",
        "The timeline has one line per hop, in the order things happened: date (UTC), sold /\n"
        "shipped / seized, who -> whom, where (with the nearest Channel-coast hub), the\n"
        "sources and their grading (3x5x2: source 1-3, information A-E, handling P/C), the\n"
        "event id. \"~\" marks a corrected hop, \"x\" a retracted one. Facts follow: [!!] an\n"
        "inconsistency, [!] a gap, [i] information. Then the last known custodian and place,\n"
        "related items, and candidates for a partial reading (PROBABLE LINK marked, never\n"
        "merged)."};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, 1, &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (json + dot + geojson > 1) {
        fprintf(stderr, "tidewatch chain: choose one of --json, --dot and --geojson\n");
        return CLI_USAGE;
    }
    if ((npos == 0) == (item == 0)) {
        fprintf(stderr, "tidewatch chain: give a SERIAL (or a hull number with --hull), or --item ID; "
                        "see tidewatch chain --help\n");
        return CLI_USAGE;
    }
    if (item && (hull || maker)) {
        fprintf(stderr, "tidewatch chain: --item takes no --hull or --maker\n");
        return CLI_USAGE;
    }
    if (hull && maker) {
        fprintf(stderr, "tidewatch chain: --maker narrows serials, not hull numbers\n");
        return CLI_USAGE;
    }
    if (npos && !pos[0][0]) {
        fprintf(stderr, "tidewatch chain: the %s is empty\n", hull ? "hull number" : "serial");
        return CLI_USAGE;
    }

    Tidewatch__V1__GetChainRequest req = TIDEWATCH__V1__GET_CHAIN_REQUEST__INIT;
    if (npos && hull)
        req.hull_number = pos[0];
    else if (npos)
        req.serial = pos[0];
    if (maker)
        req.maker = (char *)maker;
    req.item_id = item;
    req.max_hops = (int32_t)(max_hops > INT32_MAX ? INT32_MAX : max_hops);
    req.max_candidates = (int32_t)(max_candidates > INT32_MAX ? INT32_MAX : max_candidates);

    char nf[512];
    if (item)
        snprintf(nf, sizeof nf, "no item with id %lld", (long long)item);
    else
        snprintf(nf, sizeof nf, "no item with %s %s%s%s", hull ? "hull number" : "serial", pos[0],
                 maker ? " and maker " : "", maker ? maker : "");
    ProtobufCMessage *m = NULL;
    rc = cli_call(cli, "chain", "GetChain", &req.base, &tidewatch__v1__get_chain_response__descriptor,
                  &m, nf);
    if (rc)
        return rc;
    const Tidewatch__V1__GetChainResponse *r = (const Tidewatch__V1__GetChainResponse *)m;
    if (json) {
        rc = cli_print_json(m);
    } else {
        tw_fmt_out o = tw_fmt_to_file(stdout);
        if (dot) {
            rc = tw_chainfmt_chain_dot(&o, r) ? CLI_SERVER : CLI_OK;
        } else if (geojson) {
            json_t *g = tw_chainfmt_chain_geojson(r);
            rc = !g || tw_chainfmt_write_json(&o, g) ? CLI_SERVER : CLI_OK;
            json_decref(g);
        } else {
            rc = tw_chainfmt_chain_text(&o, r) ? CLI_SERVER : CLI_OK;
        }
    }
    if (rc == CLI_OK && r->n_chains == 0 && r->n_candidates == 0) {
        if (json || dot || geojson)
            fprintf(stderr, "tidewatch chain: %s\n", nf);
        rc = CLI_NOT_FOUND;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish("chain", rc);
}
