/* The tidewatch CLI's commands. Each returns the process exit status.
 *
 * health, info: 0 success, 1 the server answered with an error or a
 * negative result, 3 the server could not be reached, 2 a usage error.
 *
 * The investigator commands (chain, search, trace, party, events) share one
 * convention, printed by their --help:
 *   0  success (something was found and printed)
 *   1  not found (NOT_FOUND from the server, or no match at all)
 *   2  usage error: bad arguments on the command line, or the server refused
 *      an argument (INVALID_ARGUMENT, shown with its field)
 *   3  the server could not be reached, did not answer in time, or failed
 *      (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, UNIMPLEMENTED, ...), or its
 *      answer could not be decoded */
#ifndef TW_CLI_H
#define TW_CLI_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "google/protobuf/timestamp.pb-c.h"

enum { CLI_OK = 0, CLI_NOT_FOUND = 1, CLI_USAGE = 2, CLI_SERVER = 3 };

typedef struct tw_cli {
    char *target;
    int64_t timeout_ms;
    int target_given; /* --target or TIDEWATCH_TARGET was given (not the default) */
} tw_cli;

typedef struct tw_cli_command {
    const char *name;
    const char *args;
    const char *help;
    int (*run)(const tw_cli *cli, int argc, char **argv);
    /* The command parses its own flags (and --help); main gives it every
     * argument except the common --target and --timeout. */
    int own_flags;
} tw_cli_command;

int tw_cli_health(const tw_cli *cli, int argc, char **argv);
int tw_cli_info(const tw_cli *cli, int argc, char **argv);
int tw_cli_chain(const tw_cli *cli, int argc, char **argv);
int tw_cli_search(const tw_cli *cli, int argc, char **argv);
int tw_cli_trace(const tw_cli *cli, int argc, char **argv);
int tw_cli_party(const tw_cli *cli, int argc, char **argv);
int tw_cli_events(const tw_cli *cli, int argc, char **argv);
int tw_cli_alerts(const tw_cli *cli, int argc, char **argv);
int tw_cli_hubs(const tw_cli *cli, int argc, char **argv);
int tw_cli_jobs(const tw_cli *cli, int argc, char **argv);
int tw_cli_simulate(const tw_cli *cli, int argc, char **argv);
int tw_cli_ingest(const tw_cli *cli, int argc, char **argv);

/* ---- shared by the investigator commands (cli/common.c) ---------------- */

typedef enum { CLI_OPT_STR, CLI_OPT_FLAG, CLI_OPT_INT, CLI_OPT_DOUBLE, CLI_OPT_LIST } cli_opt_kind;

/* Values of a repeatable option (CLI_OPT_LIST), argv strings not copied. */
#define CLI_LIST_MAX 64
typedef struct cli_list {
    char *v[CLI_LIST_MAX];
    size_t n;
} cli_list;

/* One command-line option: "--name VALUE" or "--name=VALUE" (STR, INT,
 * DOUBLE, LIST), "--name" (FLAG). dst points at a char * (STR: the argv
 * string, not copied), an int (FLAG: set to 1), an int64_t (INT: a decimal
 * integer >= min), a double (DOUBLE: a finite number) or a cli_list (LIST:
 * each occurrence appended, CLI_LIST_MAX at most). */
typedef struct cli_opt {
    const char *name;
    cli_opt_kind kind;
    const char *arg; /* "M" in "--maker M" */
    const char *help;
    void *dst;
    int64_t min;
} cli_opt;

/* A command's help: "usage" lines after "Usage: tidewatch ", a summary and
 * an optional extra paragraph. */
typedef struct cli_help {
    const char *cmd;     /* "chain", "trace back" */
    const char *usage;   /* "chain SERIAL [options]" */
    const char *summary;
    const char *more;
} cli_help;

/* Parse argv[0..argc) against opts. Positional arguments go to pos (at most
 * maxpos; more is a usage error). "--" ends the options. Returns 0 when
 * parsed, -1 when --help/-h was given (help printed on stdout: the caller
 * exits 0), CLI_USAGE on an error (message on stderr). */
int cli_parse(const cli_help *h, const cli_opt *opts, size_t nopts, int argc, char **argv,
              char **pos, int maxpos, int *npos);

/* cli_parse for a command that takes exactly one positional argument: *arg
 * gets it. Without it (or with more): "tidewatch CMD: give WHAT; see
 * tidewatch CMD --help" on stderr and CLI_USAGE. Returns as cli_parse. */
int cli_parse_one(const cli_help *h, const cli_opt *opts, size_t nopts, int argc, char **argv,
                  const char *what, char **arg);

/* Print the help of a command (usage, options, common options, exit codes). */
void cli_print_help(const cli_help *h, const cli_opt *opts, size_t nopts);

/* A date from the command line: "YYYY-MM-DD" (midnight UTC) or RFC 3339
 * "YYYY-MM-DDTHH:MM:SS[.fff]Z" / with "+HH:MM" offset. Returns 0 and fills
 * ts, or CLI_USAGE with a message naming the flag. */
int cli_date(const char *cmd, const char *flag, const char *text,
             Google__Protobuf__Timestamp *ts);

/* Call tidewatch.v1.ProvenanceService/<method> at cli->target with `req`,
 * and unpack the answer as `resp_desc` into *resp (free it with
 * protobuf_c_message_free_unpacked(*resp, NULL)). Returns CLI_OK, or an
 * exit code with the error printed in plain words on stderr:
 * NOT_FOUND -> CLI_NOT_FOUND ("tidewatch CMD: " + not_found, then the
 * server's own words if it gave any), INVALID_ARGUMENT -> CLI_USAGE (the
 * server's message, which names the field), anything else -> CLI_SERVER. */
int cli_call(const tw_cli *cli, const char *cmd, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
             const char *not_found);

/* cli_call for any service ("tidewatch.v1.AlertService"). Besides
 * cli_call's mapping, a refusal by the state of things (FAILED_PRECONDITION,
 * ALREADY_EXISTS, ABORTED) is printed with the server's words and returns
 * CLI_NOT_FOUND (exit 1). */
int cli_call_service(const tw_cli *cli, const char *cmd, const char *service, const char *method,
                     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                     ProtobufCMessage **resp, const char *not_found);

/* Print a failed call's status as cli_call does and return the exit code
 * (for streams, which do not go through cli_call). */
int cli_status(const tw_cli *cli, const char *cmd, const char *service, const char *method,
               int status, const char *message, const char *not_found);

/* A time for people: "2026-11-20 05:40:00Z", or "-" without one. Writes
 * into out and returns it (or a constant string). */
const char *cli_when(const Google__Protobuf__Timestamp *t, char out[32]);

/* Parse a positive decimal id (a party or event id). Returns 0 or
 * CLI_USAGE with a message. */
int cli_id(const char *cmd, const char *what, const char *text, int64_t *out);

/* Write `m` as JSON (protobuf's JSON mapping) on stdout. Returns CLI_OK or
 * CLI_SERVER (out of memory or a write error, printed). */
int cli_print_json(const ProtobufCMessage *m);

/* Flush stdout; a failed write (a full disk, a closed pipe) is an error
 * (printed): returns CLI_SERVER then, else rc. */
int cli_finish(const char *cmd, int rc);

#endif
