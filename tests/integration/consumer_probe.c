/* consumer_probe: a process running one tw_consumer that applies the log
 * into a test table (support_consumer.c), until killed. test_consumer.c
 * SIGKILLs it at random moments and restarts it.
 *
 *   consumer_probe <conninfo> <consumer name> <table> <batch_max> <sleep_ms>
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "support_consumer.h"
#include "tw_consumer.h"
#include "tw_pg.h"

static void on_term(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s conninfo name table batch_max sleep_ms\n", argv[0]);
        return 2;
    }
    int rc = 1;
    char err[256];
    tw_test_apply apply = {.table = argv[3], .sleep_ms = atoi(argv[5])};
    struct event_base *base = event_base_new();
    struct event *term = base ? evsignal_new(base, SIGTERM, on_term, base) : NULL;
    tw_pg *pg = NULL;
    tw_consumer *c = NULL;
    if (!term || event_add(term, NULL) != 0)
        goto out;
    if (!(pg = tw_pg_new(base, argv[1], &(tw_pg_opts){.name = "probe"}, err, sizeof err))) {
        fprintf(stderr, "probe: %s\n", err);
        goto out;
    }
    tw_consumer_opts o = {.name = argv[2], .batch_max = atoi(argv[4]), .poll_ms = 200};
    if (!(c = tw_consumer_new(base, pg, &o, tw_test_apply_events, &apply, err, sizeof err))) {
        fprintf(stderr, "probe: %s\n", err);
        goto out;
    }
    event_base_dispatch(base);
    rc = 0;
out:
    tw_pg_free(pg);
    tw_consumer_free(c);
    if (term)
        event_free(term);
    if (base)
        event_base_free(base);
    return rc;
}
