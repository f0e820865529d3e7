/* tidewatch hubs: the hub table the alert rules measure against (list, add,
 * change, disable, enable) through tidewatch.v1.AlertService. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tidewatch/v1/alerts.pb-c.h"

#define SERVICE "tidewatch.v1.AlertService"

static const char *const kinds[] = {"", "coast", "inland", "transit", "uk_landing"};

static int parse_kind(const char *cmd, const char *text, int *out)
{
    for (int i = 1; i <= 4; i++)
        if (strcmp(text, kinds[i]) == 0) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "tidewatch %s: --kind: expected coast, inland, transit or uk_landing, got \"%s\"\n",
            cmd, text);
    return CLI_USAGE;
}

static void print_hub_line(const Tidewatch__V1__Hub *h)
{
    printf("%-5d %-24s %-2s %-6s %-10s %6.1f km %9.5f %10.5f  %-8s v%d", (int)h->hub_id, h->name,
           h->country, h->locode[0] ? h->locode : "-",
           h->kind >= 1 && h->kind <= 4 ? kinds[h->kind] : "?", h->radius_km, h->lat, h->lon,
           h->enabled ? "enabled" : "disabled", (int)h->version);
    for (size_t i = 0; i < h->n_aliases; i++)
        printf("%s%s", i ? ", " : " aka ", h->aliases[i]);
    printf("\n");
}

static int run_list(const tw_cli *cli, int argc, char **argv)
{
    const char *kind = NULL;
    int all = 0, json = 0;
    const cli_opt opts[] = {
        {"kind", CLI_OPT_STR, "K", "coast, inland, transit or uk_landing", &kind, 0},
        {"all", CLI_OPT_FLAG, NULL, "disabled hubs too", &all, 0},
        {"json", CLI_OPT_FLAG, NULL, "the answer as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const cli_help help = {
        "hubs",
        "hubs [--kind K] [--all] [--json]\n"
        "       tidewatch hubs add --name N --country CC --lat LAT --lon LON --kind K --radius KM\n"
        "              [--locode L] [--alias A]... [--by WHO] [--note TEXT]\n"
        "       tidewatch hubs set ID --version V [--name N] [--country CC] [--lat LAT] [--lon LON]\n"
        "              [--kind K] [--radius KM] [--locode L] [--alias A]... [--by WHO] [--note TEXT]\n"
        "       tidewatch hubs disable ID [--by WHO] [--note TEXT]\n"
        "       tidewatch hubs enable ID [--by WHO] [--note TEXT]",
        "The Channel-coast hubs, inland staging towns, transit points and UK landing places the\n"
        "alert rules measure distances to: id, name, country, UN/LOCODE, kind, radius,\n"
        "coordinates, state and version (every change adds one and is recorded).",
        "A change names the version it read (hubs set --version): if someone changed the hub\n"
        "since, it is refused (exit 1): list again and redo it."};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    Tidewatch__V1__ListHubsRequest req = TIDEWATCH__V1__LIST_HUBS_REQUEST__INIT;
    int k = 0;
    if (kind && (rc = parse_kind("hubs", kind, &k)) != 0)
        return rc;
    req.kind = (Tidewatch__V1__HubKind)k;
    req.include_disabled = all;
    ProtobufCMessage *m = NULL;
    rc = cli_call_service(cli, "hubs", SERVICE, "ListHubs", &req.base,
                          &tidewatch__v1__list_hubs_response__descriptor, &m, "no such hubs");
    if (rc)
        return cli_finish("hubs", rc);
    Tidewatch__V1__ListHubsResponse *r = (Tidewatch__V1__ListHubsResponse *)m;
    if (json) {
        rc = cli_print_json(m);
    } else {
        for (size_t i = 0; i < r->n_hubs; i++)
            print_hub_line(r->hubs[i]);
    }
    if (rc == CLI_OK && r->n_hubs == 0)
        rc = CLI_NOT_FOUND;
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish("hubs", rc);
}

/* hubs add / set: the fields given replace those of `h`. */
static int run_put(const tw_cli *cli, int add, int argc, char **argv)
{
    const char *name = NULL, *country = NULL, *kind = NULL, *locode = NULL, *note = NULL;
    const char *by = getenv("USER");
    double lat = NAN, lon = NAN, radius = NAN; /* NaN: not given */
    int64_t version = 0;                        /* 0: not given */
    int json = 0;
    cli_list aliases = {.n = 0};
    const cli_opt opts[] = {
        {"name", CLI_OPT_STR, "N", "its name (1 to 128 characters)", &name, 0},
        {"country", CLI_OPT_STR, "CC", "ISO 3166-1 alpha-2, upper case (FR)", &country, 0},
        {"lat", CLI_OPT_DOUBLE, "LAT", "latitude, degrees north", &lat, 0},
        {"lon", CLI_OPT_DOUBLE, "LON", "longitude, degrees east", &lon, 0},
        {"kind", CLI_OPT_STR, "K", "coast, inland, transit or uk_landing", &kind, 0},
        {"radius", CLI_OPT_DOUBLE, "KM", "the rules' radius around it (more than 0, at most 200)",
         &radius, 0},
        {"locode", CLI_OPT_STR, "L", "UN/LOCODE (FRCQF), or \"\" for none", &locode, 0},
        {"alias", CLI_OPT_LIST, "A", "another name (repeat for more; replaces the list)", &aliases,
         0},
        {"version", CLI_OPT_INT, "V", "hubs set: the version you read (from hubs)", &version, 1},
        {"by", CLI_OPT_STR, "WHO", "who changes it (default: $USER)", &by, 0},
        {"note", CLI_OPT_STR, "TEXT", "why", &note, 0},
        {"json", CLI_OPT_FLAG, NULL, "the hub as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const char *cmd = add ? "hubs add" : "hubs set";
    const cli_help help = {
        cmd,
        add ? "hubs add --name N --country CC --lat LAT --lon LON --kind K --radius KM\n"
              "              [--locode L] [--alias A]... [--by WHO] [--note TEXT] [--json]"
            : "hubs set ID --version V [--name N] [--country CC] [--lat LAT] [--lon LON]\n"
              "              [--kind K] [--radius KM] [--locode L] [--alias A]... [--by WHO]\n"
              "              [--note TEXT] [--json]",
        add ? "Add a hub; the rules measure against it from their next evaluation."
            : "Change a hub: the options given replace its fields, the others stay. --version is\n"
              "the version you read; if it changed since, nothing is changed (exit 1).",
        NULL};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, add ? 0 : 1,
                       &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    int nlat = !isnan(lat), nlon = !isnan(lon), nradius = !isnan(radius), nversion = version > 0;
    Tidewatch__V1__Hub h = TIDEWATCH__V1__HUB__INIT;
    ProtobufCMessage *cur = NULL;
    if (add) {
        const char *missing = !name ? "--name" : !country ? "--country" : !nlat ? "--lat"
                              : !nlon ? "--lon" : !kind ? "--kind" : !nradius ? "--radius" : NULL;
        if (missing) {
            fprintf(stderr, "tidewatch hubs add: %s is required; see tidewatch hubs add --help\n",
                    missing);
            return CLI_USAGE;
        }
        if (nversion) {
            fprintf(stderr, "tidewatch hubs add: --version goes with hubs set\n");
            return CLI_USAGE;
        }
    } else {
        int64_t id;
        if (npos != 1) {
            fprintf(stderr, "tidewatch hubs set: give the hub's ID; see tidewatch hubs set --help\n");
            return CLI_USAGE;
        }
        if ((rc = cli_id(cmd, "ID", pos[0], &id)) != 0)
            return rc;
        if (!nversion) {
            fprintf(stderr, "tidewatch hubs set: --version is required (the version you read, "
                            "from tidewatch hubs --all)\n");
            return CLI_USAGE;
        }
        /* the hub as it is, for the fields not given */
        Tidewatch__V1__ListHubsRequest lr = TIDEWATCH__V1__LIST_HUBS_REQUEST__INIT;
        lr.include_disabled = 1;
        rc = cli_call_service(cli, cmd, SERVICE, "ListHubs", &lr.base,
                              &tidewatch__v1__list_hubs_response__descriptor, &cur, "no hubs");
        if (rc)
            return cli_finish(cmd, rc);
        const Tidewatch__V1__ListHubsResponse *r = (const Tidewatch__V1__ListHubsResponse *)cur;
        const Tidewatch__V1__Hub *found = NULL;
        for (size_t i = 0; i < r->n_hubs; i++)
            if (r->hubs[i]->hub_id == id)
                found = r->hubs[i];
        if (!found) {
            fprintf(stderr, "tidewatch hubs set: no hub %lld\n", (long long)id);
            protobuf_c_message_free_unpacked(cur, NULL);
            return cli_finish(cmd, CLI_NOT_FOUND);
        }
        h = *found;
        h.base.unknown_fields = NULL;
        h.base.n_unknown_fields = 0;
        h.version = (int32_t)(version > INT32_MAX ? INT32_MAX : version);
    }
    if (name)
        h.name = (char *)name;
    if (country)
        h.country = (char *)country;
    if (locode)
        h.locode = (char *)locode;
    if (nlat)
        h.lat = lat;
    if (nlon)
        h.lon = lon;
    if (nradius)
        h.radius_km = radius;
    if (kind) {
        int k = 0;
        if ((rc = parse_kind(cmd, kind, &k)) != 0) {
            if (cur)
                protobuf_c_message_free_unpacked(cur, NULL);
            return rc;
        }
        h.kind = (Tidewatch__V1__HubKind)k;
    }
    if (aliases.n || add) {
        h.aliases = aliases.v;
        h.n_aliases = aliases.n;
    }
    Tidewatch__V1__PutHubRequest req = TIDEWATCH__V1__PUT_HUB_REQUEST__INIT;
    req.hub = &h;
    req.by = (char *)(by ? by : "");
    req.note = (char *)(note ? note : "");
    ProtobufCMessage *m = NULL;
    char nf[64];
    snprintf(nf, sizeof nf, "no hub %d", (int)h.hub_id);
    rc = cli_call_service(cli, cmd, SERVICE, "PutHub", &req.base, &tidewatch__v1__hub__descriptor,
                          &m, nf);
    if (cur)
        protobuf_c_message_free_unpacked(cur, NULL);
    if (rc)
        return cli_finish(cmd, rc);
    if (json)
        rc = cli_print_json(m);
    else
        print_hub_line((const Tidewatch__V1__Hub *)m);
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish(cmd, rc);
}

static int run_enable(const tw_cli *cli, int enable, int argc, char **argv)
{
    const char *by = getenv("USER"), *note = NULL;
    int json = 0;
    const cli_opt opts[] = {
        {"by", CLI_OPT_STR, "WHO", "who does it (default: $USER)", &by, 0},
        {"note", CLI_OPT_STR, "TEXT", "why", &note, 0},
        {"json", CLI_OPT_FLAG, NULL, "the hub as JSON (protobuf's JSON mapping)", &json, 0},
    };
    const char *cmd = enable ? "hubs enable" : "hubs disable";
    const cli_help help = {
        cmd, enable ? "hubs enable ID [--by WHO] [--note TEXT] [--json]"
                    : "hubs disable ID [--by WHO] [--note TEXT] [--json]",
        enable ? "Enable a disabled hub again." : "Disable a hub: the rules ignore it from then on.",
        NULL};
    char *arg;
    int rc = cli_parse_one(&help, opts, sizeof opts / sizeof opts[0], argc, argv, "the hub's ID",
                           &arg);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    int64_t id;
    if ((rc = cli_id(cmd, "ID", arg, &id)) != 0)
        return rc;
    if (id > INT32_MAX) {
        fprintf(stderr, "tidewatch %s: ID: no hub has so large an id\n", cmd);
        return CLI_USAGE;
    }
    Tidewatch__V1__SetHubEnabledRequest req = TIDEWATCH__V1__SET_HUB_ENABLED_REQUEST__INIT;
    req.hub_id = (int32_t)id;
    req.enabled = enable;
    req.by = (char *)(by ? by : "");
    req.note = (char *)(note ? note : "");
    char nf[64];
    snprintf(nf, sizeof nf, "no hub %lld", (long long)id);
    ProtobufCMessage *m = NULL;
    rc = cli_call_service(cli, cmd, SERVICE, "SetHubEnabled", &req.base,
                          &tidewatch__v1__hub__descriptor, &m, nf);
    if (rc)
        return cli_finish(cmd, rc);
    if (json)
        rc = cli_print_json(m);
    else
        print_hub_line((const Tidewatch__V1__Hub *)m);
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish(cmd, rc);
}

int tw_cli_hubs(const tw_cli *cli, int argc, char **argv)
{
    if (argc > 0 && strcmp(argv[0], "add") == 0)
        return run_put(cli, 1, argc - 1, argv + 1);
    if (argc > 0 && strcmp(argv[0], "set") == 0)
        return run_put(cli, 0, argc - 1, argv + 1);
    if (argc > 0 && (strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0))
        return run_enable(cli, argv[0][0] == 'e', argc - 1, argv + 1);
    return run_list(cli, argc, argv);
}
