#include "tw_pbwalk.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

/* ---- tw_pb_check ----------------------------------------------------------- */

/* protobuf-c's ScannedMember: tag, two bytes, field, len, data. */
#define SCANNED_MEMBER_SIZE (8 + 3 * sizeof(void *))
/* Per-field state is kept for this many fields of a message; fields beyond
 * (no Tidewatch message has that many) are counted pessimistically. */
#define TRACKED_FIELDS 64

/* Where the walk is: one frame per embedded message entered. The path
 * text is only built when a problem is reported. */
typedef struct frame {
    const char *name;
    int indexed;
    size_t index;
} frame;

typedef struct checker {
    tw_pb_report *out;
    frame frames[TW_PB_MAX_DEPTH + 1];
    unsigned depth;
} checker;

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

static size_t sat_mul(size_t a, size_t b)
{
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

/* A request of n bytes as the arena counts it. */
static size_t r16(size_t n)
{
    if (n == 0)
        n = 1;
    return n > SIZE_MAX - 15 ? SIZE_MAX : (n + 15) & ~(size_t)15;
}

static void path_append(char *path, size_t *len, const char *s, size_t n)
{
    size_t room = TW_PB_PATH_MAX - 1 - *len;
    if (n > room)
        n = room;
    memcpy(path + *len, s, n);
    *len += n;
    path[*len] = '\0';
}

/* The frames as "purchase.items[0].equipment" into out->path. */
static void build_path(const checker *c, char *path)
{
    size_t len = 0;
    path[0] = '\0';
    for (unsigned i = 0; i < c->depth; i++) {
        const frame *f = &c->frames[i];
        if (len)
            path_append(path, &len, ".", 1);
        path_append(path, &len, f->name, strlen(f->name));
        if (f->indexed) {
            char buf[24];
            int n = snprintf(buf, sizeof buf, "[%zu]", f->index);
            path_append(path, &len, buf, (size_t)n);
        }
    }
}

/* Record the first problem. Hard problems end the walk; an unknown field is
 * only noted (a hard problem found later replaces it). */
static void problem(checker *c, tw_pb_verdict v, uint32_t number, size_t offset, const char *fmt,
                    ...) __attribute__((format(printf, 5, 6)));
static void problem(checker *c, tw_pb_verdict v, uint32_t number, size_t offset, const char *fmt,
                    ...)
{
    tw_pb_report *o = c->out;
    if (o->verdict != TW_PB_OK && !(o->verdict == TW_PB_UNKNOWN_FIELD && v != TW_PB_UNKNOWN_FIELD))
        return;
    o->verdict = v;
    o->number = number;
    o->offset = offset;
    build_path(c, o->path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->reason, sizeof o->reason, fmt, ap);
    va_end(ap);
}

static int wire_type_of(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0; /* the integer types, bool and enum */
    }
}

/* Bytes of one element of a repeated field in protobuf-c's arrays. */
static size_t element_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
        return 8;
    default:
        return 4;
    }
}

/* Read a field key: 1 with *number and *wt, 0 at the end, -1 malformed
 * (reported). protobuf-c reads keys of at most 5 bytes. */
static int read_key(checker *c, const uint8_t *p, size_t len, size_t *pos, size_t base,
                    uint32_t *number, unsigned *wt)
{
    if (*pos >= len)
        return 0;
    size_t at = *pos;
    uint64_t key = 0;
    for (unsigned i = 0;; i++) {
        if (i == 5) {
            problem(c, TW_PB_MALFORMED, 0, base + at, "a field key longer than 5 bytes");
            return -1;
        }
        if (*pos >= len) {
            problem(c, TW_PB_MALFORMED, 0, base + at, "truncated field key");
            return -1;
        }
        uint8_t b = p[(*pos)++];
        key |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80))
            break;
    }
    uint64_t n = key >> 3;
    *wt = (unsigned)(key & 7);
    if (n == 0) {
        problem(c, TW_PB_MALFORMED, 0, base + at, "field number 0");
        return -1;
    }
    if (n > 536870911u) {
        problem(c, TW_PB_MALFORMED, 0, base + at, "field number above 2^29-1");
        return -1;
    }
    *number = (uint32_t)n;
    if (*wt == 3 || *wt == 4) {
        problem(c, TW_PB_MALFORMED, *number, base + at, "field %u is a group (not supported)",
                *number);
        return -1;
    }
    if (*wt == 6 || *wt == 7) {
        problem(c, TW_PB_MALFORMED, *number, base + at, "field %u has wire type %u, which does not exist",
                *number, *wt);
        return -1;
    }
    return 1;
}

/* Read the value after a key: its bytes start at *vstart and are *vlen
 * long (for wire type 2 the payload, without its length prefix); *raw
 * counts every byte after the key. Returns 0 or -1 (reported). */
static int read_value(checker *c, const uint8_t *p, size_t len, size_t *pos, size_t base,
                      size_t key_at, uint32_t number, unsigned wt, size_t *vstart, size_t *vlen,
                      size_t *raw)
{
    size_t start = *pos;
    uint64_t v;
    switch (wt) {
    case 0:
        if (read_varint(p, len, pos, &v) != 0) {
            problem(c, TW_PB_MALFORMED, number, base + key_at,
                    "field %u: truncated varint or longer than 10 bytes", number);
            return -1;
        }
        *vstart = start;
        *vlen = *pos - start;
        break;
    case 1:
    case 5: {
        size_t n = wt == 1 ? 8 : 4;
        if (len - *pos < n) {
            problem(c, TW_PB_MALFORMED, number, base + key_at, "field %u is truncated", number);
            return -1;
        }
        *vstart = start;
        *vlen = n;
        *pos += n;
        break;
    }
    default: /* 2 */
        if (read_varint(p, len, pos, &v) != 0 || v > len - *pos) {
            problem(c, TW_PB_MALFORMED, number, base + key_at, "field %u is truncated", number);
            return -1;
        }
        *vstart = *pos;
        *vlen = (size_t)v;
        *pos += (size_t)v;
        break;
    }
    *raw = *pos - start;
    return 0;
}

/* Elements in a packed repeated field's payload, or SIZE_MAX when the
 * payload is not a whole number of them (as protobuf-c checks). */
static size_t packed_count(ProtobufCType t, const uint8_t *p, size_t vlen)
{
    switch (wire_type_of(t)) {
    case 5:
        return vlen % 4 ? SIZE_MAX : vlen / 4;
    case 1:
        return vlen % 8 ? SIZE_MAX : vlen / 8;
    default: {
        size_t n = 0, pos = 0;
        uint64_t v;
        while (pos < vlen) {
            if (read_varint(p, vlen, &pos, &v) != 0)
                return SIZE_MAX;
            n++;
        }
        return n;
    }
    }
}

/* Memory protobuf-c allocates for the ScannedMember slabs of a message
 * with n fields: the first 16 live on the stack, then slabs of 32, 64, ...
 * members. */
static size_t slab_bytes(size_t n)
{
    size_t total = 0, cap = 16;
    for (unsigned k = 1; cap < n && k < 40; k++) {
        size_t members = (size_t)1 << (k + 4);
        total = sat_add(total, r16(sat_mul(SCANNED_MEMBER_SIZE, members)));
        cap = sat_add(cap, members);
    }
    return total;
}

/* Walk one message. Adds what its unpack allocates to out->unpacked and
 * returns the number of repeated-field elements in it and below, or
 * SIZE_MAX after a hard problem. */
static size_t check_message(checker *c, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                            size_t len, size_t base, unsigned depth)
{
    tw_pb_report *o = c->out;
    o->messages++;
    size_t count[TRACKED_FIELDS]; /* occurrences (elements) per field */
    memset(count, 0, (d->n_fields < TRACKED_FIELDS ? d->n_fields : TRACKED_FIELDS) * sizeof *count);
    size_t mem = r16(d->sizeof_message);
    if (d->n_fields > 128)
        mem = sat_add(mem, r16((d->n_fields + 7) / 8));
    size_t nfields = 0, nunknown = 0, elements = 0, untracked = 0;
    size_t pos = 0;
    for (;;) {
        size_t key_at = pos;
        uint32_t number;
        unsigned wt;
        int rv = read_key(c, p, len, &pos, base, &number, &wt);
        if (rv == 0)
            break;
        if (rv < 0)
            return SIZE_MAX;
        size_t vstart, vlen, raw;
        if (read_value(c, p, len, &pos, base, key_at, number, wt, &vstart, &vlen, &raw) != 0)
            return SIZE_MAX;
        nfields++;
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(d, number);
        if (!fd) {
            problem(c, TW_PB_UNKNOWN_FIELD, number, base + key_at, "unknown field %u", number);
            nunknown++;
            mem = sat_add(mem, r16(raw)); /* the field's bytes are copied */
            continue;
        }
        int repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
        int packed = repeated && wt == 2 && wire_type_of(fd->type) != 2;
        if (!packed && (int)wt != wire_type_of(fd->type)) {
            problem(c, TW_PB_WRONG_TYPE, number, base + key_at,
                    "field %u (%s) has wire type %u; its type needs %d", number, fd->name, wt,
                    wire_type_of(fd->type));
            return SIZE_MAX;
        }
        size_t idx = (size_t)(fd - d->fields);
        size_t n = packed ? packed_count(fd->type, p + vstart, vlen) : 1;
        if (n == SIZE_MAX) {
            problem(c, TW_PB_MALFORMED, number, base + key_at,
                    "field %u (%s): packed values are truncated", number, fd->name);
            return SIZE_MAX;
        }
        size_t seen = idx < TRACKED_FIELDS ? count[idx] : 0;
        if (idx < TRACKED_FIELDS)
            count[idx] = sat_add(count[idx], n);
        else if (repeated)
            untracked = sat_add(untracked, sat_mul(n, 16) + 16);
        if (repeated)
            elements = sat_add(elements, n);
        /* A oneof set twice (the same member or another): protobuf-c keeps
         * the last and drops the earlier one, unknown fields and all, where
         * the protobuf rules would merge a repeated member. Refused. */
        if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            for (size_t k = 0; k < d->n_fields && k < TRACKED_FIELDS; k++) {
                const ProtobufCFieldDescriptor *o2 = &d->fields[k];
                if (k != idx && (o2->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    o2->quantifier_offset == fd->quantifier_offset && count[k]) {
                    seen = 1;
                    break;
                }
            }
            if (seen) {
                problem(c, TW_PB_REPEATED_SINGULAR, number, base + key_at,
                        "field %u (%s): its oneof is set more than once", number, fd->name);
                return SIZE_MAX;
            }
        }
        switch (fd->type) {
        case PROTOBUF_C_TYPE_STRING:
            mem = sat_add(mem, r16(sat_add(vlen, 1)));
            break;
        case PROTOBUF_C_TYPE_BYTES:
            mem = sat_add(mem, r16(vlen));
            break;
        case PROTOBUF_C_TYPE_MESSAGE: {
            if (!repeated && seen > 0) {
                problem(c, TW_PB_REPEATED_SINGULAR, number, base + key_at,
                        "field %u (%s) is given more than once", number, fd->name);
                return SIZE_MAX;
            }
            if (depth >= TW_PB_MAX_DEPTH) {
                problem(c, TW_PB_TOO_DEEP, number, base + key_at,
                        "nested deeper than %d messages", TW_PB_MAX_DEPTH);
                return SIZE_MAX;
            }
            c->frames[c->depth++] = (frame){.name = fd->name, .indexed = repeated, .index = seen};
            size_t sub = check_message(c, fd->descriptor, p + vstart, vlen, base + vstart,
                                       depth + 1);
            c->depth--;
            if (sub == SIZE_MAX)
                return SIZE_MAX;
            elements = sat_add(elements, sub);
            break;
        }
        default:
            break;
        }
    }
    /* The arrays of repeated fields, the unknown fields' table, the slabs. */
    for (size_t i = 0; i < d->n_fields && i < TRACKED_FIELDS; i++)
        if (d->fields[i].label == PROTOBUF_C_LABEL_REPEATED && count[i])
            mem = sat_add(mem, r16(sat_mul(count[i], element_size(d->fields[i].type))));
    mem = sat_add(mem, untracked);
    if (nunknown)
        mem = sat_add(mem, r16(sat_mul(nunknown, sizeof(ProtobufCMessageUnknownField))));
    mem = sat_add(mem, slab_bytes(nfields));
    o->unpacked = sat_add(o->unpacked, mem);
    o->fields = sat_add(o->fields, nfields);
    return elements;
}

int tw_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                tw_pb_report *out)
{
    memset(out, 0, sizeof *out);
    checker c = {.out = out};
    (void)check_message(&c, d, p, len, 0, 0);
    return out->verdict == TW_PB_OK ? 0 : out->verdict == TW_PB_UNKNOWN_FIELD ? 1 : -1;
}

const char *tw_pb_verdict_name(tw_pb_verdict v)
{
    switch (v) {
    case TW_PB_OK: return "ok";
    case TW_PB_UNKNOWN_FIELD: return "unknown_field";
    case TW_PB_MALFORMED: return "malformed";
    case TW_PB_WRONG_TYPE: return "wrong_type";
    case TW_PB_REPEATED_SINGULAR: return "repeated_singular";
    case TW_PB_TOO_DEEP: return "too_deep";
    }
    return "?";
}
