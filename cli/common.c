/* What the investigator commands share: option parsing and help, dates and
 * ids from the command line, the call to ProvenanceService with errors in
 * plain words, JSON output. */
#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "tw_arena.h"
#include "tw_chainfmt.h"
#include "tw_grpc_client.h"

void cli_print_help(const cli_help *h, const cli_opt *opts, size_t nopts)
{
    printf("Usage: tidewatch %s\n\n%s\n", h->usage, h->summary);
    if (h->more)
        printf("\n%s\n", h->more);
    if (nopts) {
        printf("\nOptions:\n");
        for (size_t i = 0; i < nopts; i++) {
            char left[64];
            snprintf(left, sizeof left, "--%s%s%s", opts[i].name, opts[i].arg ? " " : "",
                     opts[i].arg ? opts[i].arg : "");
            printf("  %-22s %s\n", left, opts[i].help);
        }
    }
    printf("\nCommon options:\n"
           "  %-22s %s\n  %-22s %s\n  %-22s %s\n",
           "--target HOST:PORT", "the query service (TIDEWATCH_TARGET; default 127.0.0.1:50052)",
           "--timeout DURATION", "deadline for each call, e.g. 500ms, 10s (TIDEWATCH_TIMEOUT; default 10s)",
           "--help", "this text");
    printf("\nExit status:\n"
           "  0  success\n"
           "  1  not found (no such item, party, event, alert or hub; no match), or refused by\n"
           "     the state of things (a closed alert; a hub changed since read; a name taken)\n"
           "  2  usage error, or the server refused an argument (INVALID_ARGUMENT, with its field)\n"
           "  3  the query service is not reachable, did not answer in time, or failed\n");
}

static const cli_opt *find_opt(const cli_opt *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

int cli_parse(const cli_help *h, const cli_opt *opts, size_t nopts, int argc, char **argv,
              char **pos, int maxpos, int *npos)
{
    *npos = 0;
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            cli_print_help(h, opts, nopts);
            return -1;
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*npos >= maxpos) {
                fprintf(stderr, "tidewatch %s: unexpected argument \"%s\"; see tidewatch %s --help\n",
                        h->cmd, a, h->cmd);
                return CLI_USAGE;
            }
            pos[(*npos)++] = argv[i];
            continue;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = find_opt(opts, nopts, name, len);
        if (!o) {
            fprintf(stderr, "tidewatch %s: unknown option \"%.*s\"; see tidewatch %s --help\n",
                    h->cmd, (int)(len + (size_t)(name - a)), a, h->cmd);
            return CLI_USAGE;
        }
        if (o->kind == CLI_OPT_FLAG) {
            if (eq) {
                fprintf(stderr, "tidewatch %s: --%s takes no value\n", h->cmd, o->name);
                return CLI_USAGE;
            }
            *(int *)o->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tidewatch %s: --%s needs a value (%s)\n", h->cmd, o->name,
                        o->arg ? o->arg : "VALUE");
                return CLI_USAGE;
            }
            val = argv[++i];
        }
        if (o->kind == CLI_OPT_STR) {
            *(const char **)o->dst = val;
            continue;
        }
        if (o->kind == CLI_OPT_LIST) {
            cli_list *l = o->dst;
            if (l->n >= CLI_LIST_MAX) {
                fprintf(stderr, "tidewatch %s: --%s: at most %d times\n", h->cmd, o->name,
                        CLI_LIST_MAX);
                return CLI_USAGE;
            }
            l->v[l->n++] = (char *)val;
            continue;
        }
        char *end = NULL;
        if (o->kind == CLI_OPT_DOUBLE) {
            errno = 0;
            double d = strtod(val, &end);
            if (!val[0] || *end || errno || !isfinite(d)) {
                fprintf(stderr, "tidewatch %s: --%s: expected a number, got \"%s\"\n", h->cmd,
                        o->name, val);
                return CLI_USAGE;
            }
            *(double *)o->dst = d;
            continue;
        }
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (!val[0] || *end || errno || v < o->min) {
            fprintf(stderr, "tidewatch %s: --%s: expected an integer of at least %lld, got \"%s\"\n",
                    h->cmd, o->name, (long long)o->min, val);
            return CLI_USAGE;
        }
        *(int64_t *)o->dst = v;
    }
    return 0;
}

int cli_parse_one(const cli_help *h, const cli_opt *opts, size_t nopts, int argc, char **argv,
                  const char *what, char **arg)
{
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(h, opts, nopts, argc, argv, pos, 1, &npos);
    if (rc)
        return rc;
    if (npos != 1) {
        fprintf(stderr, "tidewatch %s: give %s; see tidewatch %s --help\n", h->cmd, what, h->cmd);
        return CLI_USAGE;
    }
    *arg = pos[0];
    return 0;
}

int cli_id(const char *cmd, const char *what, const char *text, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || !text[0] || *end || errno || v <= 0) {
        fprintf(stderr, "tidewatch %s: %s: expected a positive number, got \"%s\"\n", cmd, what,
                text ? text : "");
        return CLI_USAGE;
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int cli_date(const char *cmd, const char *flag, const char *text, Google__Protobuf__Timestamp *ts)
{
    int y, mo, d, hh = 0, mi = 0, ss = 0, nanos = 0, off = 0;
    const char *p = text;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(p) < 10 || digits(p, 4, &y) || p[4] != '-' || digits(p + 5, 2, &mo) ||
        p[7] != '-' || digits(p + 8, 2, &d))
        goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
        (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))))
        goto bad;
    p += 10;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        if (strlen(p) < 9 || digits(p + 1, 2, &hh) || p[3] != ':' || digits(p + 4, 2, &mi) ||
            p[6] != ':' || digits(p + 7, 2, &ss) || hh > 23 || mi > 59 || ss > 60)
            goto bad;
        p += 9;
        if (*p == '.') {
            int n = 0;
            p++;
            while (*p >= '0' && *p <= '9') {
                if (n < 9)
                    nanos = nanos * 10 + (*p - '0');
                n++;
                p++;
            }
            if (n == 0)
                goto bad;
            for (; n < 9; n++)
                nanos *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int oh, om;
            if (strlen(p) != 6 || digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) ||
                oh > 23 || om > 59)
                goto bad;
            off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
            p += 6;
        } else {
            goto bad;
        }
    }
    if (*p)
        goto bad;
    ts->seconds = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off;
    ts->nanos = nanos;
    return 0;
bad:
    fprintf(stderr,
            "tidewatch %s: --%s: expected a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM:SSZ (UTC), "
            "got \"%s\"\n",
            cmd, flag, text);
    return CLI_USAGE;
}

/* "connect to 127.0.0.1:50052: Connection refused" -> "connection refused" */
static void lower_reason(const char *msg, char *out, size_t outlen)
{
    const char *r = strrchr(msg, ':');
    r = r ? r + 1 : msg;
    while (*r == ' ')
        r++;
    size_t i = 0;
    for (; r[i] && i + 1 < outlen; i++)
        out[i] = i == 0 && r[i] >= 'A' && r[i] <= 'Z' ? (char)(r[i] - 'A' + 'a') : r[i];
    out[i] = '\0';
}

static void duration_text(int64_t ms, char *out, size_t len)
{
    if (ms % 1000 == 0)
        snprintf(out, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, len, "%lldms", (long long)ms);
}

/* Who answers a service, in messages. */
static const char *who(const char *service)
{
    return strstr(service, "WorkerService") ? "the alerts daemon"
           : strstr(service, "IngestService") ? "the ingest service"
                                              : "the query service";
}

static const char *daemon_of(const char *service)
{
    return strstr(service, "WorkerService") ? "tidewatch-alerts"
           : strstr(service, "IngestService") ? "tidewatch-ingest"
                                              : "tidewatch-query";
}

int cli_status(const tw_cli *cli, const char *cmd, const char *service, const char *method,
               int status, const char *message, const char *not_found)
{
    int rc = CLI_SERVER;
    const char *msg = message ? message : "";
    char reason[160], dur[32];
    switch (status) {
    case TW_GRPC_OK:
        rc = CLI_OK;
        break;
    case TW_GRPC_NOT_FOUND:
        fprintf(stderr, "tidewatch %s: %s\n", cmd, not_found);
        if (msg[0] && strcmp(msg, not_found) != 0)
            fprintf(stderr, "  (%s said: %s)\n", who(service), msg);
        rc = CLI_NOT_FOUND;
        break;
    case TW_GRPC_FAILED_PRECONDITION:
    case TW_GRPC_ALREADY_EXISTS:
    case TW_GRPC_ABORTED:
        fprintf(stderr, "tidewatch %s: refused: %s\n", cmd,
                msg[0] ? msg : tw_grpc_status_name(status));
        rc = CLI_NOT_FOUND;
        break;
    case TW_GRPC_INVALID_ARGUMENT:
        fprintf(stderr, "tidewatch %s: invalid argument: %s\n", cmd,
                msg[0] ? msg : "(no reason given)");
        rc = CLI_USAGE;
        break;
    case TW_GRPC_UNAVAILABLE:
        if (strncmp(msg, "connect to ", 11) == 0 || strstr(msg, "connection to ")) {
            lower_reason(msg, reason, sizeof reason);
            fprintf(stderr, "tidewatch %s: %s at %s is not reachable (%s)\n", cmd,
                    who(service), cli->target, reason);
        } else {
            fprintf(stderr, "tidewatch %s: %s at %s is unavailable%s%s\n", cmd,
                    who(service), cli->target, msg[0] ? ": " : "", msg);
        }
        break;
    case TW_GRPC_DEADLINE_EXCEEDED:
        duration_text(cli->timeout_ms, dur, sizeof dur);
        fprintf(stderr, "tidewatch %s: %s at %s did not answer within %s (--timeout)\n",
                cmd, who(service), cli->target, dur);
        break;
    case TW_GRPC_UNIMPLEMENTED:
        fprintf(stderr,
                "tidewatch %s: %s does not serve %s/%s (is it %s?)%s%s\n", cmd,
                cli->target, service, method, daemon_of(service), msg[0] ? ": " : "", msg);
        break;
    default:
        fprintf(stderr, "tidewatch %s: %s at %s failed: %s%s%s\n", cmd, who(service), cli->target,
                tw_grpc_status_name(status), msg[0] ? ": " : "", msg);
        break;
    }
    return rc;
}

int cli_call(const tw_cli *cli, const char *cmd, const char *method, const ProtobufCMessage *req,
             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
             const char *not_found)
{
    return cli_call_service(cli, cmd, "tidewatch.v1.ProvenanceService", method, req, resp_desc,
                            resp, not_found);
}

int cli_call_service(const tw_cli *cli, const char *cmd, const char *service, const char *method,
                     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
                     ProtobufCMessage **resp, const char *not_found)
{
    *resp = NULL;
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fprintf(stderr, "tidewatch %s: out of memory\n", cmd);
        return CLI_SERVER;
    }
    protobuf_c_message_pack(req, buf);
    char err[256], path[128];
    snprintf(path, sizeof path, "/%s/%s", service, method);
    struct event_base *base = event_base_new();
    tw_grpc_channel *ch = base ? tw_grpc_channel_new(base, cli->target, err, sizeof err) : NULL;
    if (!ch) {
        fprintf(stderr, "tidewatch %s: %s at %s is not reachable (%s)\n", cmd, who(service),
                cli->target, base ? err : "out of memory");
        if (base)
            event_base_free(base);
        free(buf);
        return CLI_SERVER;
    }
    tw_grpc_call_opts opts = {.timeout_ms = cli->timeout_ms};
    tw_grpc_result r = {0};
    int status = tw_grpc_unary(ch, path, buf, len, &opts, &r);
    tw_grpc_channel_free(ch);
    event_base_free(base);
    free(buf);
    int rc;
    if (status == TW_GRPC_OK) {
        *resp = protobuf_c_message_unpack(resp_desc, NULL, r.len, r.data);
        rc = CLI_OK;
        if (!*resp) {
            fprintf(stderr, "tidewatch %s: the answer of %s could not be decoded (%zu bytes)\n",
                    cmd, cli->target, r.len);
            rc = CLI_SERVER;
        }
    } else {
        rc = cli_status(cli, cmd, service, method, status, r.message, not_found);
    }
    tw_grpc_result_free(&r);
    return rc;
}

int cli_print_json(const ProtobufCMessage *m)
{
    json_t *j = tw_chainfmt_json(m);
    if (!j) {
        fprintf(stderr, "tidewatch: out of memory\n");
        return CLI_SERVER;
    }
    tw_fmt_out o = tw_fmt_to_file(stdout);
    int rc = tw_chainfmt_write_json(&o, j);
    json_decref(j);
    return rc == 0 ? CLI_OK : CLI_SERVER;
}

int cli_finish(const char *cmd, int rc)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (errno == EPIPE)
            return rc;
        fprintf(stderr, "tidewatch %s: could not write the output: %s\n", cmd, strerror(errno));
        return CLI_SERVER;
    }
    return rc;
}

const char *cli_when(const Google__Protobuf__Timestamp *t, char out[32])
{
    if (!t)
        return "-";
    time_t s = (time_t)t->seconds;
    struct tm tm;
    if (!gmtime_r(&s, &tm) || !strftime(out, 32, "%Y-%m-%d %H:%M:%SZ", &tm))
        return "?";
    return out;
}
