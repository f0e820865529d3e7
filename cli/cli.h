/* The tidewatch CLI's commands. Each returns the process exit status: 0
 * success, 1 the server answered with an error or a negative result, 2 a
 * usage error, 3 the server could not be reached. */
#ifndef TW_CLI_H
#define TW_CLI_H

#include <stdint.h>

typedef struct tw_cli {
    char *target;
    int64_t timeout_ms;
} tw_cli;

typedef struct tw_cli_command {
    const char *name;
    const char *args;
    const char *help;
    int (*run)(const tw_cli *cli, int argc, char **argv);
} tw_cli_command;

int tw_cli_health(const tw_cli *cli, int argc, char **argv);
int tw_cli_info(const tw_cli *cli, int argc, char **argv);

#endif
