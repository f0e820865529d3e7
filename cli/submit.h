/* cli/submit: the batch submitter shared by `tidewatch ingest` and
 * `tidewatch simulate --target`. Records (packed tidewatch.v1.Record bytes)
 * are added one at a time; they go to tidewatch.v1.IngestService/Submit in
 * batches (at most SUBMIT_MAX_RECORDS records and SUBMIT_MAX_BYTES bytes,
 * and never twice the same (source, source_ref) in one batch, so that a
 * resubmission is answered against the stored record). Each answer is
 * handed to a callback with the record's position. Blocking: runs its own
 * event loop per call. */
#ifndef TW_CLI_SUBMIT_H
#define TW_CLI_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "tidewatch/v1/ingest.pb-c.h"

#define SUBMIT_MAX_RECORDS 500
#define SUBMIT_MAX_BYTES (1024 * 1024)

typedef struct cli_submitter cli_submitter;

/* Called for each answer: `pos` is the record's position among every
 * record added (0, 1, ...), `res` the server's result (borrowed). */
typedef void (*cli_submit_result_fn)(void *arg, size_t pos, const Tidewatch__V1__RecordResult *res);

/* A submitter for `target` (host:port). cmd names the command in error
 * messages. Returns NULL (message printed) when the target is malformed or
 * memory ran out. */
cli_submitter *cli_submitter_new(const char *cmd, const char *target, int64_t timeout_ms,
                                 size_t batch, cli_submit_result_fn fn, void *arg);

/* Add one record (copied). source and source_ref are its own (used to keep
 * repeats apart; may be ""). May send a full batch first. Returns CLI_OK,
 * or CLI_SERVER when a call failed (message printed; the submitter is then
 * unusable). */
int cli_submitter_add(cli_submitter *s, const uint8_t *data, size_t len, const char *source,
                      const char *source_ref);

/* Send what is pending. Returns CLI_OK or CLI_SERVER (printed). */
int cli_submitter_flush(cli_submitter *s);

/* Records answered so far. */
size_t cli_submitter_done(const cli_submitter *s);

void cli_submitter_free(cli_submitter *s);

#endif
