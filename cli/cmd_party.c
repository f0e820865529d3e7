/* tidewatch party: a party, its cluster and its hops. */
#include <stdio.h>

#include "cli.h"
#include "tidewatch/v1/provenance.pb-c.h"
#include "tw_chainfmt.h"

int tw_cli_party(const tw_cli *cli, int argc, char **argv)
{
    int json = 0;
    int64_t max_hops = 0;
    const cli_opt opts[] = {
        {"max-hops", CLI_OPT_INT, "N", "hops at most (default: the server's)", &max_hops, 1},
        {"json", CLI_OPT_FLAG, NULL, "the answer as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const cli_help help = {
        "party", "party ID [--json]",
        "A party (person, company, agency) as records named it, every identity of its cluster,\n"
        "the links that tied them (shared phone, e-mail, VAT or company number, identity\n"
        "document, or name and address), identifiers too common to link, and its hops.",
        NULL};
    char *arg;
    int rc = cli_parse_one(&help, opts, sizeof opts / sizeof opts[0], argc, argv, "a party ID", &arg);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    Tidewatch__V1__GetPartyRequest req = TIDEWATCH__V1__GET_PARTY_REQUEST__INIT;
    if ((rc = cli_id("party", "ID", arg, &req.party_id)) != 0)
        return rc;
    req.max_hops = (int32_t)(max_hops > INT32_MAX ? INT32_MAX : max_hops);
    char nf[64];
    snprintf(nf, sizeof nf, "no party with id %lld", (long long)req.party_id);
    ProtobufCMessage *m = NULL;
    rc = cli_call(cli, "party", "GetParty", &req.base, &tidewatch__v1__get_party_response__descriptor,
                  &m, nf);
    if (rc)
        return rc;
    if (json) {
        rc = cli_print_json(m);
    } else {
        tw_fmt_out o = tw_fmt_to_file(stdout);
        rc = tw_chainfmt_party_text(&o, (const Tidewatch__V1__GetPartyResponse *)m) ? CLI_SERVER
                                                                                     : CLI_OK;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish("party", rc);
}
