/* tidewatch-alerts: raises alerts on equipment moving toward the Channel coast */
#include "tw_daemon.h"

static const tw_daemon_spec spec = {
    .name = "alerts",
    .summary = "raises alerts on equipment moving toward the Channel coast",
    .default_listen = "127.0.0.1:50054",
    .default_metrics_listen = "127.0.0.1:9104",
};

int main(int argc, char **argv)
{
    static const char *const info_paths[] = {"/tidewatch.v1.WorkerService/GetServerInfo", NULL};
    tw_daemon d;
    int rv = tw_daemon_init(&d, &spec, info_paths, argc, argv);
    if (rv != 0)
        return rv < 0 ? 2 : 0;
    rv = tw_daemon_run(&d);
    tw_daemon_free(&d);
    return rv;
}
