#include "tw_pbwalk.h"

static int read_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos >= len)
            return -1;
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int tw_pb_next(const uint8_t *p, size_t len, size_t *pos, tw_pb_field *f)
{
    if (*pos >= len)
        return 0;
    uint64_t key;
    if (read_varint(p, len, pos, &key) != 0)
        return -1;
    uint64_t number = key >> 3;
    if (number == 0 || number > 536870911u)
        return -1;
    f->number = (uint32_t)number;
    f->wire_type = (unsigned)(key & 7);
    f->varint = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->wire_type) {
    case 0:
        return read_varint(p, len, pos, &f->varint) == 0 ? 1 : -1;
    case 1:
    case 5: {
        size_t n = f->wire_type == 1 ? 8 : 4;
        if (len - *pos < n)
            return -1;
        f->data = p + *pos;
        f->len = n;
        *pos += n;
        return 1;
    }
    case 2: {
        uint64_t n;
        if (read_varint(p, len, pos, &n) != 0 || n > len - *pos)
            return -1;
        f->data = p + *pos;
        f->len = (size_t)n;
        *pos += (size_t)n;
        return 1;
    }
    default:
        return -1;
    }
}
