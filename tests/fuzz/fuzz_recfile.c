/* Fuzz tw_recfile_next (record files come from anyone who runs `tidewatch
 * ingest FILE`): it never reads outside the buffer, always makes progress
 * or stops, and what it returns re-encodes to the very bytes it read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tw_recfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    for (;;) {
        const uint8_t *rec = NULL;
        size_t rlen = 0, before = off;
        tw_recfile_status st = tw_recfile_next(data, size, &off, &rec, &rlen);
        if (st != TW_RECFILE_RECORD) {
            if (off != before || (st == TW_RECFILE_END) != (off >= size))
                abort();
            if (!tw_recfile_status_text(st)[0])
                abort();
            return 0;
        }
        if (off <= before || rec < data || rec + rlen != data + off || off > size)
            abort();
        /* The canonical prefix is at most as long as the one read (a
         * non-minimal varint is longer) and encodes the same length. */
        uint8_t pre[10];
        size_t n = tw_recfile_prefix(pre, rlen);
        size_t got = (size_t)(rec - (data + before));
        if (n > got)
            abort();
        if (n == got && memcmp(pre, data + before, n) != 0)
            abort();
    }
}
