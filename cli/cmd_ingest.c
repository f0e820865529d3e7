/* tidewatch ingest FILE: a length-delimited records file (what `tidewatch
 * simulate --out` writes) submitted to tidewatch-ingest in batches. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "submit.h"
#include "tidewatch/v1/records.pb-c.h"
#include "tw_recfile.h"

#define INGEST_DEFAULT "127.0.0.1:50051"

typedef struct ingest_run {
    char **refs; /* "source source_ref" by position */
    size_t n, cap;
    size_t got[5];
    int quiet_errors;
} ingest_run;

static void on_answer(void *arg, size_t pos, const Tidewatch__V1__RecordResult *res)
{
    ingest_run *r = arg;
    int o = res->outcome >= 0 && res->outcome <= 4 ? (int)res->outcome : 0;
    r->got[o]++;
    if (o != TIDEWATCH__V1__RECORD_RESULT__OUTCOME__REJECTED &&
        o != TIDEWATCH__V1__RECORD_RESULT__OUTCOME__CONFLICT)
        return;
    if (r->quiet_errors)
        return;
    printf("record %zu (%s): %s\n", pos, pos < r->n ? r->refs[pos] : "?",
           o == TIDEWATCH__V1__RECORD_RESULT__OUTCOME__REJECTED ? "rejected" : "conflict");
    for (size_t i = 0; i < res->n_errors; i++)
        printf("  %s: %s: %s\n", res->errors[i]->field[0] ? res->errors[i]->field : "(record)",
               res->errors[i]->code, res->errors[i]->reason);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            errno = ENOMEM;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (f != stdin)
        fclose(f);
    *len = n;
    return buf;
}

int tw_cli_ingest(const tw_cli *cli, int argc, char **argv)
{
    int64_t batch = SUBMIT_MAX_RECORDS;
    int quiet = 0, no_errors = 0;
    const cli_opt opts[] = {
        {"batch", CLI_OPT_INT, "N", "records per Submit call (default and most 500)", &batch, 1},
        {"quiet", CLI_OPT_FLAG, NULL, "no progress on stderr", &quiet, 0},
        {"no-errors", CLI_OPT_FLAG, NULL, "do not print each rejected record", &no_errors, 0},
    };
    const cli_help help = {
        "ingest", "ingest FILE [--batch N] [--quiet] [--no-errors]   (--target defaults to 127.0.0.1:50051)",
        "Submit the records of FILE (\"-\": standard input) to tidewatch-ingest\n"
        "(IngestService/Submit) in batches, in file order. FILE is length-delimited: each record\n"
        "is a varint length, then a packed tidewatch.v1.Record (as `tidewatch simulate --out`\n"
        "writes records.pb, or protobuf's writeDelimitedTo). Here --target names tidewatch-ingest\n"
        "(default 127.0.0.1:50051, not the query service).",
        "Each rejected or conflicting record is printed on stdout with its source, source_ref and\n"
        "every field that failed. Exit status: 0 every record accepted or a duplicate, 1 some were\n"
        "rejected or conflicted, 2 usage or a malformed file, 3 the ingest service failed."};
    char *file;
    int rc = cli_parse_one(&help, opts, sizeof opts / sizeof opts[0], argc, argv, "a FILE", &file);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    size_t len = 0;
    uint8_t *buf = read_all(file, &len);
    if (!buf) {
        fprintf(stderr, "tidewatch ingest: cannot read %s: %s\n", file, strerror(errno));
        return CLI_USAGE;
    }
    const char *target = cli->target_given ? cli->target : INGEST_DEFAULT;
    ingest_run r = {.quiet_errors = no_errors};
    cli_submitter *sub = cli_submitter_new("ingest", target, cli->timeout_ms,
                                           (size_t)(batch > SUBMIT_MAX_RECORDS ? SUBMIT_MAX_RECORDS : batch),
                                           on_answer, &r);
    rc = sub ? CLI_OK : CLI_SERVER;
    size_t off = 0, next_progress = 5000;
    while (rc == CLI_OK) {
        const uint8_t *rec;
        size_t rlen;
        tw_recfile_status st = tw_recfile_next(buf, len, &off, &rec, &rlen);
        if (st == TW_RECFILE_END)
            break;
        if (st != TW_RECFILE_RECORD) {
            fprintf(stderr, "tidewatch ingest: %s: at byte %zu (after %zu records): %s\n", file,
                    off, r.n, tw_recfile_status_text(st));
            rc = CLI_USAGE;
            break;
        }
        /* Its own reference, for the messages (a record that does not
         * decode is sent all the same: the server says why). */
        Tidewatch__V1__Record *m = tidewatch__v1__record__unpack(NULL, rlen, rec);
        const char *src = m && m->source ? m->source : "", *ref = m && m->source_ref ? m->source_ref : "";
        if (r.n == r.cap) {
            size_t nc = r.cap ? r.cap * 2 : 4096;
            char **nr = realloc(r.refs, nc * sizeof *nr);
            if (!nr) {
                if (m)
                    tidewatch__v1__record__free_unpacked(m, NULL);
                fprintf(stderr, "tidewatch ingest: out of memory\n");
                rc = CLI_SERVER;
                break;
            }
            r.refs = nr;
            r.cap = nc;
        }
        size_t l = strlen(src) + strlen(ref) + 32;
        r.refs[r.n] = malloc(l);
        if (r.refs[r.n])
            snprintf(r.refs[r.n], l, m ? "%s %s" : "(undecodable)%s%s", src, ref);
        else
            r.refs[r.n] = NULL;
        if (!r.refs[r.n]) {
            if (m)
                tidewatch__v1__record__free_unpacked(m, NULL);
            rc = CLI_SERVER;
            break;
        }
        r.n++;
        rc = cli_submitter_add(sub, rec, rlen, src, ref);
        if (m)
            tidewatch__v1__record__free_unpacked(m, NULL);
        size_t done = cli_submitter_done(sub);
        if (!quiet && done >= next_progress) {
            fprintf(stderr, "tidewatch ingest: %zu records answered\n", done);
            next_progress = done + 5000;
        }
    }
    if (rc == CLI_OK)
        rc = cli_submitter_flush(sub);
    if (rc == CLI_OK) {
        fprintf(stderr, "tidewatch ingest: %zu records: %zu accepted, %zu duplicate, %zu rejected, "
                        "%zu conflict\n",
                r.n, r.got[1], r.got[2], r.got[3], r.got[4]);
        rc = r.got[3] || r.got[4] ? CLI_NOT_FOUND : CLI_OK;
        rc = cli_finish("ingest", rc);
    }
    cli_submitter_free(sub);
    for (size_t i = 0; i < r.n; i++)
        free(r.refs[i]);
    free(r.refs);
    free(buf);
    return rc;
}
