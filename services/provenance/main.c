/* tidewatch-provenance: builds provenance chains from the event log. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "provenance.h"
#include "tw_log.h"
#include "tw_consumer_settings.h"
#include "tw_places.h"

/* Default: the source tree's deploy/data, like tidewatch-ingest (whose
 * CMake target defines TW_DATA_DIR); without that definition it is found
 * from this file's path at build time (CMake compiles with absolute paths). */
#ifndef TW_DATA_DIR
#define TW_DATA_DIR ""
#endif

#define OFF(f) offsetof(prov_config, f)

static const tw_setting extra[] = {
    {.name = "data_dir", .env = "TIDEWATCH_DATA_DIR", .flag = "data-dir", .type = TW_SET_STRING,
     .def = TW_DATA_DIR,
     .help = "directory with channel-hubs.csv (distances to the coast hubs); default: the "
             "source tree's deploy/data",
     .offset = OFF(data_dir)},
    TW_CONSUMER_SETTING_ROWS(prov_config, "1000", "most events applied per transaction"),
    {.name = "decode_memory", .env = "TIDEWATCH_CONSUMER_DECODE_MEMORY", .flag = "decode-memory",
     .type = TW_SET_SIZE, .def = "16MiB", .min = 1 << 20, .max = 1LL << 30,
     .help = "most memory decoding one event may take (an event needing more is skipped and "
             "logged; ingest's limit is lower)",
     .offset = OFF(decode_memory)},
    {.name = "rebuild", .env = "TIDEWATCH_PROVENANCE_REBUILD", .flag = "rebuild",
     .type = TW_SET_BOOL, .def = "false",
     .help = "empty the derived tables and replay the log from the start, then keep consuming",
     .offset = OFF(rebuild)},
    {.name = "reference_apply", .env = "TIDEWATCH_PROVENANCE_REFERENCE_APPLY",
     .flag = "reference-apply", .type = TW_SET_BOOL, .def = "false",
     .help = "apply every event with prov_apply() in SQL, the reference the default (keys "
             "resolved in the daemon, rows written with COPY) must equal row for row; several "
             "times slower, for checking",
     .offset = OFF(reference_apply)},
};

static prov_config cfg;

static const tw_daemon_spec spec = {
    .name = "provenance",
    .summary = "builds provenance chains from the event log",
    .default_listen = "127.0.0.1:50053",
    .default_metrics_listen = "127.0.0.1:9103",
    .extra = extra,
    .nextra = sizeof extra / sizeof extra[0],
    .cfg = &cfg,
};

int main(int argc, char **argv)
{
    static const char *const info_paths[] = {"/tidewatch.v1.WorkerService/GetServerInfo", NULL};
    tw_daemon d;
    int rv = tw_daemon_init(&d, &spec, info_paths, argc, argv);
    if (rv != 0)
        return rv < 0 ? 2 : 0;
    prov_service svc = {.daemon = &d, .cfg = &cfg};
    char err[512];
    int status = 1;
    char dir[1024];
    const char *data_dir = cfg.data_dir;
    if (!data_dir[0]) {
        /* .../services/provenance/main.c -> .../deploy/data */
        const char *f = __FILE__, *tail = strstr(f, "services/provenance/main.c");
        snprintf(dir, sizeof dir, "%.*sdeploy/data", tail ? (int)(tail - f) : 0, f);
        data_dir = dir;
    }
    svc.places = prov_load_hubs(data_dir, err, sizeof err);
    if (!svc.places) {
        TW_ERROR(NULL, "hub table: %s", err);
        goto out;
    }
    if (tw_health_set(d.health, PROV_SERVICE, TW_HEALTH_NOT_SERVING) != 0 ||
        prov_start(&svc) != 0 || prov_register(&svc) != 0) {
        TW_ERROR(NULL, "could not set up the provenance consumer");
        goto out;
    }
    status = tw_daemon_run(&d);
out:
    prov_stop(&svc);
    tw_daemon_free(&d);
    tw_places_free(svc.places);
    return status;
}
