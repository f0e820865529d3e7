/* tidewatch-ingest: accepts purchase, shipment and seizure records into the event log */
#include "tw_daemon.h"

static const tw_daemon_spec spec = {
    .name = "ingest",
    .summary = "accepts purchase, shipment and seizure records into the event log",
    .default_listen = "127.0.0.1:50051",
    .default_metrics_listen = "127.0.0.1:9101",
};

int main(int argc, char **argv)
{
    static const char *const info_paths[] = {"/tidewatch.v1.IngestService/GetServerInfo", NULL};
    tw_daemon d;
    int rv = tw_daemon_init(&d, &spec, info_paths, argc, argv);
    if (rv != 0)
        return rv < 0 ? 2 : 0;
    rv = tw_daemon_run(&d);
    tw_daemon_free(&d);
    return rv;
}
