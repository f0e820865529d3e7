/* tidewatch-query: answers investigators: provenance chains and alerts */
#include "tw_daemon.h"

static const tw_daemon_spec spec = {
    .name = "query",
    .summary = "answers investigators: provenance chains and alerts",
    .default_listen = "127.0.0.1:50052",
    .default_metrics_listen = "127.0.0.1:9102",
};

int main(int argc, char **argv)
{
    static const char *const info_paths[] = {"/tidewatch.v1.ProvenanceService/GetServerInfo", "/tidewatch.v1.AlertService/GetServerInfo", NULL};
    tw_daemon d;
    int rv = tw_daemon_init(&d, &spec, info_paths, argc, argv);
    if (rv != 0)
        return rv < 0 ? 2 : 0;
    rv = tw_daemon_run(&d);
    tw_daemon_free(&d);
    return rv;
}
