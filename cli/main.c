/* tidewatch: the investigator's and operator's command-line client.
 *
 *   tidewatch [COMMAND] [--target HOST:PORT] [--timeout DURATION] [ARGS]
 *
 * Commands: health, info (any daemon); chain, search, trace, party, events
 * (tidewatch.v1.ProvenanceService on tidewatch-query); alerts, hubs
 * (tidewatch.v1.AlertService on tidewatch-query); one file per group
 * (cli/cmd_*.c), shared pieces in cli/common.c. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tw_hostport.h"
#include "tw_settings.h"

static const tw_setting settings[] = {
    {.name = "target", .env = "TIDEWATCH_TARGET", .flag = "target", .type = TW_SET_STRING,
     .def = "127.0.0.1:50052", .help = "gRPC server, host:port (query by default)",
     .offset = offsetof(tw_cli, target), .check = tw_hostport_check},
    {.name = "timeout", .env = "TIDEWATCH_TIMEOUT", .flag = "timeout",
     .type = TW_SET_DURATION_MS, .def = "10s", .min = 1, .max = 86400000,
     .help = "deadline for each call", .offset = offsetof(tw_cli, timeout_ms)},
};

static const tw_cli_command commands[] = {
    {"health", "[SERVICE]", "ask grpc.health.v1.Health/Check (SERVICE defaults to the server)",
     tw_cli_health, 0},
    {"info", "", "which Tidewatch daemon and version answers at the target", tw_cli_info, 0},
    {"chain", "SERIAL", "the chain of custody of an engine or a boat (--hull, --json, --dot, --geojson)",
     tw_cli_chain, 1},
    {"search", "PATTERN", "items by partial serial or hull number ('?', '*'), ranked", tw_cli_search,
     1},
    {"trace", "back|forward", "where an event's items came from, or where a party's items went",
     tw_cli_trace, 1},
    {"party", "ID", "a party, its cluster (and what tied it) and its hops", tw_cli_party, 1},
    {"events", "", "events of the log, filtered by time, kind and source", tw_cli_events, 1},
    {"alerts", "[show|ack|close]", "alerts: list, show, acknowledge, close, --watch", tw_cli_alerts, 1},
    {"hubs", "[add|set|...]", "the hub table the rules measure against: list, add, change", tw_cli_hubs, 1},
    {"jobs", "[list|run NAME]", "the scheduled alert jobs: schedules, recorded runs, a run now", tw_cli_jobs,
     1},
    {"ingest", "FILE", "submit a length-delimited records file to tidewatch-ingest", tw_cli_ingest, 1},
    {"simulate", "--seed N", "a deterministic scenario with its ground truth (--out DIR, --target)",
     tw_cli_simulate, 1},
};

#define NSETTINGS (sizeof settings / sizeof settings[0])
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out, "Usage: tidewatch COMMAND [OPTIONS] [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-8s %-16s %s\n", commands[i].name, commands[i].args, commands[i].help);
    fprintf(out, "\n`tidewatch COMMAND --help` describes a command, its options and exit status.\n\n");
    tw_settings_about about = {.program = "tidewatch", .out = out};
    tw_settings_help(settings, NSETTINGS, &about, out);
}

/* --target, --timeout (with "=VALUE" or not): the settings every command
 * shares. */
static int common_flag(const char *a)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        size_t n = strlen(settings[i].flag);
        if (strncmp(a, "--", 2) == 0 && strncmp(a + 2, settings[i].flag, n) == 0 &&
            (a[2 + n] == '\0' || a[2 + n] == '='))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("tidewatch %s\n", TW_VERSION);
        return 0;
    }
    const tw_cli_command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        fprintf(stderr, "tidewatch: unknown command \"%s\"; try tidewatch --help\n", argv[1]);
        return 2;
    }

    /* Split what follows the command into flags (for the settings table)
     * and positional arguments. Every flag here takes a value. */
    int status = 2;
    char **flags = calloc((size_t)argc + 1, sizeof *flags);
    char **args = calloc((size_t)argc + 1, sizeof *args);
    tw_cli cli = {0};
    if (!flags || !args)
        goto out;
    int nflags = 1, nargs = 0, target_given = 0;
    flags[0] = argv[0];
    for (int i = 2; i < argc; i++) {
        if (cmd->own_flags) {
            /* Only the common settings go to the table; the command
             * parses the rest, its own --help included. */
            if (common_flag(argv[i])) {
                if (strncmp(argv[i], "--target", 8) == 0)
                    target_given = 1;
                flags[nflags++] = argv[i];
                if (!strchr(argv[i], '=') && i + 1 < argc)
                    flags[nflags++] = argv[++i];
            } else {
                args[nargs++] = argv[i];
                if (strcmp(argv[i], "--") == 0)
                    while (i + 1 < argc)
                        args[nargs++] = argv[++i];
            }
            continue;
        }
        if (strncmp(argv[i], "-", 1) == 0 && argv[i][1] != '\0') {
            flags[nflags++] = argv[i];
            if (!strchr(argv[i], '=') && strcmp(argv[i], "--help") != 0 &&
                strcmp(argv[i], "-h") != 0 && i + 1 < argc)
                flags[nflags++] = argv[++i];
        } else {
            args[nargs++] = argv[i];
        }
    }
    char err[512];
    tw_settings_about about = {.program = "tidewatch"};
    int rv = tw_settings_load(settings, NSETTINGS, &cli, nflags, flags, &about, err, sizeof err);
    if (rv == 1) {
        status = 0;
        goto out;
    }
    if (rv != 0) {
        fprintf(stderr, "tidewatch: %s\n", err);
        goto out;
    }
    cli.target_given = target_given || getenv("TIDEWATCH_TARGET") != NULL;
    signal(SIGPIPE, SIG_IGN); /* a closed connection is an error, not a death */
    status = cmd->run(&cli, nargs, args);
out:
    tw_settings_free(settings, NSETTINGS, &cli);
    free(flags);
    free(args);
    return status;
}
