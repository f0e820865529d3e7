/* tidewatch simulate: a deterministic scenario (lib/domain/tw_sim) written
 * to files or submitted to tidewatch-ingest, checked against the expected
 * outcome of every record. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "submit.h"
#include "tw_recfile.h"
#include "tw_sim.h"

#define INGEST_DEFAULT "127.0.0.1:50051"
#define MISMATCHES_SHOWN 20

typedef struct sim_run {
    FILE *records, *index;
    cli_submitter *sub;
    tw_sim_expect *expect; /* by position, for the answers */
    char **refs;           /* "source source_ref" by position, for the mismatches */
    size_t n, cap;
    size_t got[5];         /* by RecordResult.Outcome */
    size_t want[4];        /* by tw_sim_expect */
    size_t mismatches;
    size_t total;
    int progress;
    size_t next_progress;
    int rc;
} sim_run;

static const char *outcome_name(int o)
{
    switch (o) {
    case TIDEWATCH__V1__RECORD_RESULT__OUTCOME__ACCEPTED: return "accepted";
    case TIDEWATCH__V1__RECORD_RESULT__OUTCOME__DUPLICATE: return "duplicate";
    case TIDEWATCH__V1__RECORD_RESULT__OUTCOME__REJECTED: return "rejected";
    case TIDEWATCH__V1__RECORD_RESULT__OUTCOME__CONFLICT: return "conflict";
    default: return "unspecified";
    }
}

static void on_result(void *arg, size_t pos, const Tidewatch__V1__RecordResult *res)
{
    sim_run *r = arg;
    int o = res->outcome >= 0 && res->outcome <= 4 ? (int)res->outcome : 0;
    r->got[o]++;
    if (pos >= r->n)
        return;
    int want = r->expect[pos] == TW_SIM_ACCEPTED    ? TIDEWATCH__V1__RECORD_RESULT__OUTCOME__ACCEPTED
               : r->expect[pos] == TW_SIM_DUPLICATE ? TIDEWATCH__V1__RECORD_RESULT__OUTCOME__DUPLICATE
                                                    : TIDEWATCH__V1__RECORD_RESULT__OUTCOME__REJECTED;
    if (o == want)
        return;
    if (r->mismatches++ < MISMATCHES_SHOWN) {
        fprintf(stderr, "tidewatch simulate: record %zu (%s): expected %s, got %s", pos,
                r->refs[pos], outcome_name(want), outcome_name(o));
        if (res->n_errors)
            fprintf(stderr, " (%s: %s: %s)", res->errors[0]->field, res->errors[0]->code,
                    res->errors[0]->reason);
        fputc('\n', stderr);
    }
}

static int emit(void *arg, const tw_sim_record *x)
{
    sim_run *r = arg;
    r->total = x->index + 1;
    r->want[x->expect]++;
    if (r->records) {
        uint8_t pre[10];
        size_t n = tw_recfile_prefix(pre, x->len);
        if (fwrite(pre, 1, n, r->records) != n || fwrite(x->data, 1, x->len, r->records) != x->len)
            return 1;
    }
    if (r->index) {
        char ev[32], ar[32];
        time_t a = (time_t)x->event_s, b = (time_t)x->arrival_s;
        struct tm ta, tb;
        strftime(ev, sizeof ev, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&a, &ta));
        strftime(ar, sizeof ar, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&b, &tb));
        if (fprintf(r->index, "%zu,%s,%s,%s,%s,%s,%s,%d,%d\n", x->index, x->source, x->source_ref,
                    tw_sim_expect_name(x->expect), x->why, ev, ar, x->network, x->coastal) < 0)
            return 1;
    }
    if (!r->sub)
        return 0;
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 4096;
        tw_sim_expect *ne = realloc(r->expect, nc * sizeof *ne);
        if (ne)
            r->expect = ne;
        char **nr = ne ? realloc(r->refs, nc * sizeof *nr) : NULL;
        if (!ne || !nr) {
            fprintf(stderr, "tidewatch simulate: out of memory\n");
            r->rc = CLI_SERVER;
            return 1;
        }
        r->refs = nr;
        r->cap = nc;
    }
    r->expect[r->n] = x->expect;
    size_t l = strlen(x->source) + strlen(x->source_ref) + 2;
    r->refs[r->n] = malloc(l);
    if (!r->refs[r->n]) {
        r->rc = CLI_SERVER;
        return 1;
    }
    snprintf(r->refs[r->n], l, "%s %s", x->source, x->source_ref);
    r->n++;
    if (cli_submitter_add(r->sub, x->data, x->len, x->source, x->source_ref) != CLI_OK) {
        r->rc = CLI_SERVER;
        return 1;
    }
    size_t done = cli_submitter_done(r->sub);
    if (r->progress && done >= r->next_progress) {
        fprintf(stderr, "tidewatch simulate: %zu records answered\n", done);
        r->next_progress = done + 5000;
    }
    return 0;
}

static int write_truth(const char *dir, json_t *truth)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/truth.json", dir);
    if (json_dump_file(truth, path, JSON_INDENT(2) | JSON_ENSURE_ASCII) != 0) {
        fprintf(stderr, "tidewatch simulate: cannot write %s: %s\n", path, strerror(errno));
        return CLI_SERVER;
    }
    return CLI_OK;
}

static FILE *open_out(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        fprintf(stderr, "tidewatch simulate: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

int tw_cli_simulate(const tw_cli *cli, int argc, char **argv)
{
    int64_t seed = -1, days = 0, scale = 0;
    const char *start = NULL, *out = NULL;
    int quiet = 0;
    const cli_opt opts[] = {
        {"seed", CLI_OPT_INT, "N", "the scenario's seed (required): same seed, same records", &seed, 0},
        {"days", CLI_OPT_INT, "D", "days of trade (default 120, at least 60)", &days, 60},
        {"scale", CLI_OPT_INT, "S", "dealers, buyers and networks times S (default 1: a few thousand "
                                    "records; 100: about 170,000)", &scale, 1},
        {"start", CLI_OPT_STR, "TIME", "first day (default 2026-03-01; YYYY-MM-DD or RFC 3339)",
         &start, 0},
        {"out", CLI_OPT_STR, "DIR", "write DIR/records.pb, DIR/index.csv and DIR/truth.json", &out, 0},
        {"quiet", CLI_OPT_FLAG, NULL, "no progress on stderr", &quiet, 0},
    };
    const cli_help help = {
        "simulate",
        "simulate --seed N [--days D] [--scale S] [--start TIME] (--out DIR | --target HOST:PORT)",
        "A deterministic scenario of legitimate trade in outboard engines and boats, smuggling\n"
        "networks (Balkan imports, buyer rings, bulk cash buyers, front companies, vans to the\n"
        "coast, seizures and launches) and the mess of real data (partial and ground-off serials,\n"
        "OCR errors, counterfeit plates, duplicates, corrections, late records, records ingest\n"
        "must reject), in the order the records arrive, with the ground truth.",
        "Here --target names tidewatch-ingest (e.g. 127.0.0.1:50051) and has no default.\n"
        "--out DIR writes records.pb (each record: a varint length, then a tidewatch.v1.Record;\n"
        "`tidewatch ingest` reads it), index.csv (position, source, source_ref, expected outcome,\n"
        "defect, event time, arrival time, network, coastal) and truth.json. --target submits the\n"
        "records to tidewatch-ingest (IngestService/Submit, in batches, arrival order) and checks\n"
        "every answer against the expected outcome (accepted, duplicate, rejected); with --out\n"
        "too, the files are written as well. Event times lie between the start and start + days:\n"
        "ingest rejects times in the future, so keep them in the past.\n"
        "Exit status: 0 done (and every answer as expected), 1 some answers differed, 2 usage,\n"
        "3 the ingest service failed or a file could not be written."};
    char *pos[1];
    int npos = 0;
    int rc = cli_parse(&help, opts, sizeof opts / sizeof opts[0], argc, argv, pos, 0, &npos);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    if (seed < 0) {
        fprintf(stderr, "tidewatch simulate: --seed N is required; see tidewatch simulate --help\n");
        return CLI_USAGE;
    }
    if (!out && !cli->target_given) {
        fprintf(stderr, "tidewatch simulate: give --out DIR, --target HOST:PORT (tidewatch-ingest) "
                        "or both\n");
        return CLI_USAGE;
    }
    tw_sim_params p = {.seed = (uint64_t)seed, .days = (int)(days > 100000 ? 100000 : days),
                       .scale = (int)(scale > 100000 ? 100000 : scale)};
    if (start) {
        Google__Protobuf__Timestamp t = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        if ((rc = cli_date("simulate", "start", start, &t)) != 0)
            return rc;
        p.start_s = t.seconds;
    }
    char err[256];
    if (tw_sim_params_check(&p, err, sizeof err) != 0) {
        fprintf(stderr, "tidewatch simulate: %s\n", err);
        return CLI_USAGE;
    }
    time_t now = time(NULL);
    if (cli->target_given && p.start_s + (int64_t)p.days * 86400 > (int64_t)now)
        fprintf(stderr, "tidewatch simulate: warning: the scenario runs until after now; ingest "
                        "rejects records dated in the future (choose an earlier --start)\n");
    sim_run r = {.progress = !quiet && cli->target_given, .next_progress = 5000, .rc = CLI_OK};
    if (out) {
        if (mkdir(out, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "tidewatch simulate: cannot create %s: %s\n", out, strerror(errno));
            return CLI_SERVER;
        }
        r.records = open_out(out, "records.pb");
        r.index = r.records ? open_out(out, "index.csv") : NULL;
        if (!r.records || !r.index) {
            rc = CLI_SERVER;
            goto done;
        }
        fprintf(r.index, "index,source,source_ref,expect,why,event_time,arrival_time,network,coastal\n");
    }
    if (cli->target_given) {
        r.sub = cli_submitter_new("simulate", cli->target, cli->timeout_ms, SUBMIT_MAX_RECORDS,
                                  on_result, &r);
        if (!r.sub) {
            rc = CLI_SERVER;
            goto done;
        }
    }
    json_t *truth = NULL;
    int e = tw_sim_run(&p, emit, &r, &truth, err, sizeof err);
    if (e == 0 && r.sub && cli_submitter_flush(r.sub) != CLI_OK)
        r.rc = CLI_SERVER;
    if (e != 0) {
        if (e < 0)
            fprintf(stderr, "tidewatch simulate: %s\n", err);
        else if (r.rc == CLI_OK)
            fprintf(stderr, "tidewatch simulate: cannot write the records: %s\n", strerror(errno));
        rc = CLI_SERVER;
        json_decref(truth);
        goto done;
    }
    if (r.rc != CLI_OK) {
        rc = r.rc;
        json_decref(truth);
        goto done;
    }
    if (out && (write_truth(out, truth) != CLI_OK || fclose(r.records) != 0 ||
                fclose(r.index) != 0)) {
        r.records = r.index = NULL;
        json_decref(truth);
        rc = CLI_SERVER;
        goto done;
    }
    if (out)
        r.records = r.index = NULL;
    json_t *ni = json_object_get(truth, "network_item_counts");
    printf("scenario: seed %lld, %d days from %s, scale %d\n", (long long)seed, p.days,
           json_string_value(json_object_get(json_object_get(truth, "scenario"), "start")), p.scale);
    printf("records: %zu (expected: %zu accepted, %zu duplicate, %zu rejected)\n", r.total,
           r.want[TW_SIM_ACCEPTED], r.want[TW_SIM_DUPLICATE], r.want[TW_SIM_REJECTED]);
    printf("networks: %zu; network items: %lld (%lld caught or launched: warn_by set)\n",
           json_array_size(json_object_get(truth, "networks")),
           (long long)json_integer_value(json_object_get(ni, "all")),
           (long long)json_integer_value(json_object_get(ni, "with_warn_by")));
    if (out)
        printf("written: %s/records.pb, %s/index.csv, %s/truth.json\n", out, out, out);
    if (r.sub) {
        printf("answers from %s: %zu accepted, %zu duplicate, %zu rejected, %zu conflict\n",
               cli->target, r.got[1], r.got[2], r.got[3], r.got[4]);
        if (r.mismatches) {
            printf("MISMATCH: %zu answers differ from the expected outcome%s\n", r.mismatches,
                   r.mismatches > MISMATCHES_SHOWN ? " (the first 20 are on stderr)" : " (on stderr)");
            rc = CLI_NOT_FOUND;
        } else {
            printf("every answer as expected\n");
        }
    }
    json_decref(truth);
    rc = cli_finish("simulate", rc);
done:
    if (r.records)
        fclose(r.records);
    if (r.index)
        fclose(r.index);
    cli_submitter_free(r.sub);
    for (size_t i = 0; i < r.n; i++)
        free(r.refs[i]);
    free(r.refs);
    free(r.expect);
    return rc;
}
