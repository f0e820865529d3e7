/* tidewatch alerts: list, show, acknowledge, close and watch alerts
 * (tidewatch.v1.AlertService on tidewatch-query). */
#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "tidewatch/v1/alerts.pb-c.h"
#include "tw_chainfmt.h"
#include "tw_grpc_client.h"

#define SERVICE "tidewatch.v1.AlertService"

static const char *const severities[] = {"", "low", "medium", "high", "critical"};
static const char *const states[] = {"", "open", "acknowledged", "closed"};

static const char *sev_name(int s)
{
    return s >= 1 && s <= 4 ? severities[s] : "?";
}

static const char *state_name(int s)
{
    return s >= 1 && s <= 3 ? states[s] : "?";
}

static void print_line(const Tidewatch__V1__Alert *a)
{
    char k[32];
    printf("%-7lld %-8s %-12s %-18s %s %s%s%s  %s  (known %s)\n", (long long)a->alert_id,
           sev_name(a->severity), state_name(a->state), a->rule, a->subject_kind, a->subject,
           a->hub[0] ? " -> " : "", a->hub, a->title, cli_when(a->known_at, k));
}

#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))

/* The evidence's top-level keys: scalars as they are, arrays and objects
 * by size (and their first elements, shortened). */
static void print_evidence(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    if (!json_is_object(j)) {
        printf("  %.200s%s\n", text, strlen(text) > 200 ? "..." : "");
        json_decref(j);
        return;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v) {
        if (json_is_array(v)) {
            size_t n = json_array_size(v);
            printf("  %s: %zu item%s\n", key, n, n == 1 ? "" : "s");
            for (size_t i = 0; i < n && i < 5; i++) {
                char *s = json_dumps(json_array_get(v, i), DUMP_FLAGS);
                if (s)
                    printf("    - %.110s%s\n", s, strlen(s) > 110 ? "..." : "");
                free(s);
            }
            if (n > 5)
                printf("    ... %zu more\n", n - 5);
        } else {
            char *s = json_dumps(v, DUMP_FLAGS);
            if (s)
                printf("  %s: %.110s%s\n", key, json_is_string(v) ? json_string_value(v) : s,
                       strlen(s) > 110 ? "..." : "");
            free(s);
        }
    }
    json_decref(j);
}

static void print_alert(const Tidewatch__V1__Alert *a)
{
    char t1[32], t2[32], t3[32];
    printf("Alert %lld: %s\n", (long long)a->alert_id, a->title);
    printf("  severity   %s (score %.2f)\n", sev_name(a->severity), a->score);
    printf("  state      %s", state_name(a->state));
    if (a->acknowledged_at)
        printf(", acknowledged %s by %s", cli_when(a->acknowledged_at, t1),
               a->acknowledged_by[0] ? a->acknowledged_by : "-");
    if (a->closed_at)
        printf(", closed %s by %s", cli_when(a->closed_at, t2), a->closed_by[0] ? a->closed_by : "-");
    printf("\n");
    if (a->close_note[0])
        printf("  close note %s\n", a->close_note);
    printf("  rule       %s%s%s (thresholds v%d)\n", a->rule, a->job[0] ? ", job " : "", a->job,
           (int)a->config_version);
    printf("  subject    %s %s\n", a->subject_kind, a->subject);
    printf("  hub        %s\n", a->hub[0] ? a->hub : "-");
    printf("  known      %s (latest event time of the evidence)\n", cli_when(a->known_at, t1));
    printf("  raised     %s, updated %s (%d update%s), seq %lld\n", cli_when(a->raised_at, t2),
           cli_when(a->updated_at, t3), (int)a->updates, a->updates == 1 ? "" : "s",
           (long long)a->seq);
    printf("\nExplanation:\n  %s\n", a->explanation);
    printf("\nEvidence:\n");
    print_evidence(a->evidence_json);
    if (a->n_history) {
        printf("\nHistory:\n");
        for (size_t i = 0; i < a->n_history; i++) {
            const Tidewatch__V1__AlertUpdate *u = a->history[i];
            printf("  %s  %-12s %-8s %s%s%s\n", cli_when(u->at, t1), u->kind, sev_name(u->severity),
                   u->by[0] ? u->by : "-", u->note[0] ? ": " : "", u->note);
        }
    }
}

static int parse_severity(const char *cmd, const char *text, int *out)
{
    for (int i = 1; i <= 4; i++)
        if (strcmp(text, severities[i]) == 0) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "tidewatch %s: --severity: expected low, medium, high or critical, got \"%s\"\n",
            cmd, text);
    return CLI_USAGE;
}

/* ---- alerts --watch ---------------------------------------------------------- */

typedef struct watch_state {
    int json;
    int64_t last_seq;
    int failed;
} watch_state;

static int on_change(void *arg, const uint8_t *msg, size_t len)
{
    watch_state *w = arg;
    Tidewatch__V1__AlertChange *ch = tidewatch__v1__alert_change__unpack(NULL, len, msg);
    if (!ch || !ch->alert) {
        fprintf(stderr, "tidewatch alerts: a change could not be decoded (%zu bytes)\n", len);
        if (ch)
            tidewatch__v1__alert_change__free_unpacked(ch, NULL);
        w->failed = 1;
        return 1;
    }
    if (strcmp(ch->kind, "backlog") != 0)
        w->last_seq = ch->seq;
    int rc = 0;
    if (w->json) {
        json_t *j = tw_chainfmt_json(&ch->base);
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        else
            rc = 1;
        free(s);
        json_decref(j);
    } else {
        printf("seq %-7lld %-12s ", (long long)ch->seq, ch->kind);
        print_line(ch->alert);
    }
    tidewatch__v1__alert_change__free_unpacked(ch, NULL);
    if (fflush(stdout) != 0 || rc) {
        w->failed = 1;
        return 1;
    }
    return 0;
}

static int run_watch(const tw_cli *cli, int json, int severity, int64_t after_seq,
                     int64_t after_id)
{
    Tidewatch__V1__WatchAlertsRequest req = TIDEWATCH__V1__WATCH_ALERTS_REQUEST__INIT;
    req.after_seq = after_seq;
    req.after_alert_id = after_id;
    req.min_severity = (Tidewatch__V1__AlertSeverity)severity;
    uint8_t buf[64];
    size_t len = tidewatch__v1__watch_alerts_request__pack(&req, buf);
    char err[256];
    struct event_base *base = event_base_new();
    tw_grpc_channel *ch = base ? tw_grpc_channel_new(base, cli->target, err, sizeof err) : NULL;
    if (!ch) {
        fprintf(stderr, "tidewatch alerts: the query service at %s is not reachable (%s)\n",
                cli->target, base ? err : "out of memory");
        if (base)
            event_base_free(base);
        return CLI_SERVER;
    }
    watch_state w = {.json = json, .last_seq = after_seq};
    tw_grpc_call_opts opts = {.timeout_ms = 0}; /* a watch runs until interrupted */
    tw_grpc_result r = {0};
    int status = tw_grpc_server_stream(ch, "/" SERVICE "/WatchAlerts", buf, len, &opts, on_change,
                                       &w, &r);
    tw_grpc_channel_free(ch);
    event_base_free(base);
    int rc = CLI_OK;
    if (w.failed) {
        rc = CLI_SERVER;
    } else if (status != TW_GRPC_OK) {
        rc = cli_status(cli, "alerts", SERVICE, "WatchAlerts", status, r.message, "no such alerts");
        if (w.last_seq > 0)
            fprintf(stderr, "tidewatch alerts: resume with --watch --after-seq %lld\n",
                    (long long)w.last_seq);
    }
    tw_grpc_result_free(&r);
    return rc;
}

/* ---- alerts (list) ------------------------------------------------------------- */

static int run_list(const tw_cli *cli, int argc, char **argv)
{
    const char *state = NULL, *severity = NULL, *rule = NULL, *hub = NULL, *kind = NULL,
               *subject = NULL, *token = NULL;
    int all = 0, json = 0, watch = 0;
    int64_t limit = 0, after_seq = 0, after_id = 0;
    const cli_opt opts[] = {
        {"state", CLI_OPT_STR, "S", "open, acknowledged or closed (default: open and acknowledged)",
         &state, 0},
        {"severity", CLI_OPT_STR, "S", "at least this severity: low, medium, high, critical",
         &severity, 0},
        {"rule", CLI_OPT_STR, "R", "only this rule (destination_hub, approach_coast, ...)", &rule, 0},
        {"hub", CLI_OPT_STR, "H", "only alerts about this hub", &hub, 0},
        {"subject-kind", CLI_OPT_STR, "K", "item, cluster or consignment", &kind, 0},
        {"subject", CLI_OPT_STR, "S", "only this subject (an item id, a cluster key, ...)",
         &subject, 0},
        {"all", CLI_OPT_FLAG, NULL, "every state, closed alerts too", &all, 0},
        {"limit", CLI_OPT_INT, "N", "alerts per page (default 50, capped by the server)", &limit,
         1},
        {"page-token", CLI_OPT_STR, "T", "start at this page (printed when there are more)",
         &token, 0},
        {"json", CLI_OPT_FLAG, NULL,
         "the answer as JSON (protobuf's JSON mapping; with --watch one change per line)", &json,
         0},
        {"watch", CLI_OPT_FLAG, NULL,
         "stream changes as they commit, until interrupted (filters: --severity only)", &watch, 0},
        {"after-seq", CLI_OPT_INT, "SEQ", "with --watch: resume after this change (its seq)",
         &after_seq, 1},
        {"after-id", CLI_OPT_INT, "ID",
         "with --watch: first every alert above this id as it is now, then the changes",
         &after_id, 1},
    };
    const cli_help help = {
        "alerts",
        "alerts [--state S] [--severity S] [--rule R] [--hub H] [--subject-kind K --subject S]\n"
        "              [--all] [--limit N] [--page-token T] [--json]\n"
        "       tidewatch alerts --watch [--severity S] [--after-seq SEQ | --after-id ID] [--json]\n"
        "       tidewatch alerts show ID [--json]\n"
        "       tidewatch alerts ack ID [--by WHO] [--note TEXT]\n"
        "       tidewatch alerts close ID --note TEXT [--by WHO]",
        "Alerts raised by tidewatch-alerts, newest change first: id, severity, state, rule,\n"
        "subject, hub, title and when it could be known. --watch prints each change as it\n"
        "commits (\"seq N KIND\" then the alert); after an interruption, resume with\n"
        "--after-seq and the last seq printed.",
        "Without --all only open and acknowledged alerts are listed; one page is printed and,\n"
        "if there are more, the token of the next page (on stderr). No alert listed exits 1."};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    int sev = 0;
    if (severity && (rc = parse_severity("alerts", severity, &sev)) != 0)
        return rc;
    int nfilters = !!state + !!rule + !!hub + !!kind + !!subject + all + (limit > 0) + !!token;
    int nresume = (after_seq > 0) + (after_id > 0);
    if (watch) {
        if (nfilters) {
            fprintf(stderr, "tidewatch alerts: --watch takes --severity, --after-seq or --after-id "
                            "(and --json) only\n");
            return CLI_USAGE;
        }
        if (nresume > 1) {
            fprintf(stderr, "tidewatch alerts: give --after-seq or --after-id, not both\n");
            return CLI_USAGE;
        }
        return cli_finish("alerts", run_watch(cli, json, sev, after_seq, after_id));
    }
    if (nresume) {
        fprintf(stderr, "tidewatch alerts: --after-seq and --after-id go with --watch\n");
        return CLI_USAGE;
    }
    Tidewatch__V1__ListAlertsRequest req = TIDEWATCH__V1__LIST_ALERTS_REQUEST__INIT;
    if (state) {
        int s = 0;
        for (int i = 1; i <= 3; i++)
            if (strcmp(state, states[i]) == 0)
                s = i;
        if (!s) {
            fprintf(stderr, "tidewatch alerts: --state: expected open, acknowledged or closed, got "
                            "\"%s\"\n", state);
            return CLI_USAGE;
        }
        req.state = (Tidewatch__V1__AlertState)s;
    }
    req.include_closed = all;
    req.min_severity = (Tidewatch__V1__AlertSeverity)sev;
    req.rule = (char *)(rule ? rule : "");
    req.hub = (char *)(hub ? hub : "");
    req.subject_kind = (char *)(kind ? kind : "");
    req.subject = (char *)(subject ? subject : "");
    req.page_size = (int32_t)(limit > INT32_MAX ? INT32_MAX : limit);
    req.page_token = (char *)(token ? token : "");
    ProtobufCMessage *m = NULL;
    rc = cli_call_service(cli, "alerts", SERVICE, "ListAlerts", &req.base,
                          &tidewatch__v1__list_alerts_response__descriptor, &m, "no such alerts");
    if (rc)
        return cli_finish("alerts", rc);
    Tidewatch__V1__ListAlertsResponse *r = (Tidewatch__V1__ListAlertsResponse *)m;
    if (json) {
        rc = cli_print_json(m);
    } else {
        if (r->n_alerts)
            printf("%-7s %-8s %-12s %-18s %s\n", "ID", "SEVERITY", "STATE", "RULE",
                   "SUBJECT -> HUB  TITLE  (KNOWN)");
        for (size_t i = 0; i < r->n_alerts; i++)
            print_line(r->alerts[i]);
        if (r->next_page_token[0])
            fprintf(stderr, "More alerts: --page-token %s\n", r->next_page_token);
    }
    if (rc == CLI_OK && r->n_alerts == 0) {
        if (!json)
            fprintf(stderr, "tidewatch alerts: no alerts%s\n",
                    all ? "" : " open or acknowledged (--all: closed ones too)");
        rc = CLI_NOT_FOUND;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish("alerts", rc);
}

/* ---- alerts show / ack / close --------------------------------------------------- */

static int run_one(const tw_cli *cli, const char *verb, int argc, char **argv)
{
    int json = 0;
    const char *by = getenv("USER"), *note = NULL;
    cli_opt opts[] = {
        {"json", CLI_OPT_FLAG, NULL, "the alert as JSON (protobuf's JSON mapping)", &json, 0},
        {"by", CLI_OPT_STR, "WHO", "who does it (default: $USER)", &by, 0},
        {"note", CLI_OPT_STR, "TEXT", "why (required to close)", &note, 0},
    };
    char cmdname[32], usage[96];
    snprintf(cmdname, sizeof cmdname, "alerts %s", verb);
    int show = strcmp(verb, "show") == 0, close = strcmp(verb, "close") == 0;
    snprintf(usage, sizeof usage, "alerts %s ID%s", verb,
             show ? " [--json]" : close ? " --note TEXT [--by WHO] [--json]"
                                        : " [--by WHO] [--note TEXT] [--json]");
    const cli_help help = {
        cmdname, usage,
        show ? "One alert: title, severity, state, subject, hub, when it could be known and was\n"
               "raised, the explanation, a summary of the evidence and its history."
        : close ? "Close an open or acknowledged alert, saying why (--note). Rules do not raise it\n"
                  "again for the same evidence."
                : "Acknowledge an open alert (someone is on it). Acknowledging it again changes\n"
                  "nothing.",
        NULL};
    char *arg;
    int rc = cli_parse_one(&help, opts, show ? 1 : 3, argc, argv, "the alert's ID", &arg);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    int64_t id;
    if ((rc = cli_id(cmdname, "ID", arg, &id)) != 0)
        return rc;
    if (close && (!note || !note[0])) {
        fprintf(stderr, "tidewatch %s: --note is required: say why the alert is closed\n", cmdname);
        return CLI_USAGE;
    }
    char nf[64];
    snprintf(nf, sizeof nf, "no alert %lld", (long long)id);
    ProtobufCMessage *m = NULL;
    if (show) {
        Tidewatch__V1__GetAlertRequest req = TIDEWATCH__V1__GET_ALERT_REQUEST__INIT;
        req.alert_id = id;
        rc = cli_call_service(cli, cmdname, SERVICE, "GetAlert", &req.base,
                              &tidewatch__v1__alert__descriptor, &m, nf);
    } else if (close) {
        Tidewatch__V1__CloseAlertRequest req = TIDEWATCH__V1__CLOSE_ALERT_REQUEST__INIT;
        req.alert_id = id;
        req.by = (char *)(by ? by : "");
        req.note = (char *)note;
        rc = cli_call_service(cli, cmdname, SERVICE, "CloseAlert", &req.base,
                              &tidewatch__v1__alert__descriptor, &m, nf);
    } else {
        Tidewatch__V1__AcknowledgeAlertRequest req = TIDEWATCH__V1__ACKNOWLEDGE_ALERT_REQUEST__INIT;
        req.alert_id = id;
        req.by = (char *)(by ? by : "");
        req.note = (char *)(note ? note : "");
        rc = cli_call_service(cli, cmdname, SERVICE, "AcknowledgeAlert", &req.base,
                              &tidewatch__v1__alert__descriptor, &m, nf);
    }
    if (rc)
        return cli_finish(cmdname, rc);
    const Tidewatch__V1__Alert *a = (const Tidewatch__V1__Alert *)m;
    if (json)
        rc = cli_print_json(m);
    else if (show)
        print_alert(a);
    else
        printf("alert %lld %s (%s), seq %lld\n", (long long)a->alert_id, state_name(a->state),
               close ? a->closed_by : a->acknowledged_by, (long long)a->seq);
    protobuf_c_message_free_unpacked(m, NULL);
    return cli_finish(cmdname, rc);
}

int tw_cli_alerts(const tw_cli *cli, int argc, char **argv)
{
    if (argc > 0 && (strcmp(argv[0], "show") == 0 || strcmp(argv[0], "ack") == 0 ||
                     strcmp(argv[0], "close") == 0))
        return run_one(cli, argv[0], argc - 1, argv + 1);
    return run_list(cli, argc, argv);
}
