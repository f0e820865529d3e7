/* tw_recfile: length-delimited record files (see tw_recfile.h). */
#include "tw_recfile.h"

tw_recfile_status tw_recfile_next(const uint8_t *buf, size_t len, size_t *off, const uint8_t **rec,
                                  size_t *rlen)
{
    size_t p = *off;
    if (p >= len)
        return TW_RECFILE_END;
    uint64_t v = 0;
    int shift = 0;
    for (;;) {
        if (p >= len)
            return TW_RECFILE_TRUNCATED;
        if (shift > 63)
            return TW_RECFILE_BAD_LENGTH;
        uint8_t b = buf[p++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
    }
    if (v > TW_RECFILE_MAX_RECORD)
        return TW_RECFILE_BAD_LENGTH;
    if (v > len - p)
        return TW_RECFILE_TRUNCATED;
    *rec = buf + p;
    *rlen = (size_t)v;
    *off = p + (size_t)v;
    return TW_RECFILE_RECORD;
}

size_t tw_recfile_prefix(uint8_t out[10], size_t len)
{
    size_t n = 0;
    uint64_t v = len;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

const char *tw_recfile_status_text(tw_recfile_status st)
{
    switch (st) {
    case TW_RECFILE_END: return "end of file";
    case TW_RECFILE_RECORD: return "record";
    case TW_RECFILE_TRUNCATED: return "truncated record (the file ends inside it)";
    case TW_RECFILE_BAD_LENGTH: return "bad length prefix (not a length-delimited record file?)";
    default: return "unknown";
    }
}
