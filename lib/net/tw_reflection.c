/* tw_reflection: index of an embedded FileDescriptorSet and the pure
 * request -> response function of gRPC server reflection. See
 * tw_reflection.h. The server binding lives in tw_reflection_service.c so
 * that this file links without the server. */
#include "tw_reflection.h"

#include "tw_pbwalk.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "tw_arena.h"
#include "tw_reflection-internal.h"

/* Deepest message nesting indexed; the set is build output, this only keeps
 * a corrupt one from exhausting the stack in our own walk. */
#define REFL_MAX_DEPTH 64

#define REFL_NONE ((size_t)-1)

typedef struct refl_file {
    char *name;           /* "grpc/health/v1/health.proto" (owned) */
    const uint8_t *bytes; /* serialized FileDescriptorProto, into r->buf */
    size_t len;
    size_t *deps;         /* indices of dependencies present in the set */
    size_t ndeps;
} refl_file;

typedef struct refl_sym {
    char *name;       /* fully qualified, no leading dot (owned) */
    size_t file;
    int is_message;   /* a message type (valid base of extensions) */
} refl_sym;

typedef struct refl_ext {
    char *extendee;   /* fully qualified, no leading dot (owned) */
    int32_t number;
    size_t file;
} refl_ext;

struct tw_reflection {
    uint8_t *buf; /* copy of the FileDescriptorSet */
    refl_file *files;
    size_t nfiles;
    size_t *by_name; /* file indices sorted by name */
    size_t total_deps;
    refl_sym *syms; /* sorted by name once built */
    size_t nsyms, csyms;
    refl_ext *exts;
    size_t nexts, cexts;
    void **kept; /* see tw_reflection_keep */
    size_t nkept, ckept;
};

/* ---- Wire walking ------------------------------------------------------ */

/* Walk the top-level fields of a FileDescriptorSet. For each `file` (field
 * 1, length-delimited) call add(r, offset, length) unless r is NULL; count
 * them in *n. Other fields are skipped. Returns 0, or -1 when the bytes are
 * not a well-formed message. */
static int walk_set(tw_reflection *r, const uint8_t *p, size_t len, size_t *n)
{
    size_t pos = 0;
    tw_pb_field f;
    int rv;
    *n = 0;
    while ((rv = tw_pb_next(p, len, &pos, &f)) == 1) {
        if (f.number != 1)
            continue;
        if (f.wire_type != 2)
            return -1;
        if (r) {
            r->files[*n].bytes = r->buf + (f.data - p);
            r->files[*n].len = f.len;
        }
        (*n)++;
    }
    return rv;
}

/* ---- Index ------------------------------------------------------------- */

/* "scope.name", or "name" when scope is empty. NULL on allocation failure. */
static char *join(const char *scope, const char *name)
{
    size_t a = strlen(scope), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    if (a) {
        memcpy(s, scope, a);
        s[a++] = '.';
    }
    memcpy(s + a, name, b + 1);
    return s;
}

static int valid_name(const char *s)
{
    return s && *s;
}

/* Add `scope.name` as a symbol of `file`. Returns the new symbol's name (owned
 * by r) or NULL on failure (bad name or allocation). */
static const char *add_sym(tw_reflection *r, const char *scope, const char *name, size_t file,
                           int is_message)
{
    if (!valid_name(name))
        return NULL;
    if (r->nsyms == r->csyms) {
        size_t c = r->csyms ? r->csyms * 2 : 256;
        refl_sym *ns = realloc(r->syms, c * sizeof *ns);
        if (!ns)
            return NULL;
        r->syms = ns;
        r->csyms = c;
    }
    char *full = join(scope, name);
    if (!full)
        return NULL;
    r->syms[r->nsyms++] = (refl_sym){.name = full, .file = file, .is_message = is_message};
    return full;
}

/* Index an extension field declared in `scope`. */
static int add_ext(tw_reflection *r, const char *scope,
                   const Google__Protobuf__FieldDescriptorProto *f, size_t file)
{
    if (!add_sym(r, scope, f->name, file, 0))
        return -1;
    if (!valid_name(f->extendee) || !f->has_number)
        return -1;
    if (r->nexts == r->cexts) {
        size_t c = r->cexts ? r->cexts * 2 : 16;
        refl_ext *ne = realloc(r->exts, c * sizeof *ne);
        if (!ne)
            return -1;
        r->exts = ne;
        r->cexts = c;
    }
    const char *e = f->extendee[0] == '.' ? f->extendee + 1 : f->extendee;
    char *copy = strdup(e);
    if (!copy)
        return -1;
    r->exts[r->nexts++] = (refl_ext){.extendee = copy, .number = f->number, .file = file};
    return 0;
}

/* Enum values live in the enum's enclosing scope, as in protobuf. */
static int index_enum(tw_reflection *r, const char *scope,
                      const Google__Protobuf__EnumDescriptorProto *e, size_t file)
{
    if (!add_sym(r, scope, e->name, file, 0))
        return -1;
    for (size_t i = 0; i < e->n_value; i++)
        if (!add_sym(r, scope, e->value[i]->name, file, 0))
            return -1;
    return 0;
}

static int index_message(tw_reflection *r, const char *scope,
                         const Google__Protobuf__DescriptorProto *m, size_t file, int depth)
{
    if (depth > REFL_MAX_DEPTH)
        return -1;
    const char *full = add_sym(r, scope, m->name, file, 1);
    if (!full)
        return -1;
    for (size_t i = 0; i < m->n_field; i++)
        if (!add_sym(r, full, m->field[i]->name, file, 0))
            return -1;
    for (size_t i = 0; i < m->n_oneof_decl; i++)
        if (!add_sym(r, full, m->oneof_decl[i]->name, file, 0))
            return -1;
    for (size_t i = 0; i < m->n_extension; i++)
        if (add_ext(r, full, m->extension[i], file) != 0)
            return -1;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (index_enum(r, full, m->enum_type[i], file) != 0)
            return -1;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (index_message(r, full, m->nested_type[i], file, depth + 1) != 0)
            return -1;
    return 0;
}

static int index_file(tw_reflection *r, const Google__Protobuf__FileDescriptorProto *f,
                      size_t file)
{
    const char *pkg = f->package ? f->package : "";
    for (size_t i = 0; i < f->n_message_type; i++)
        if (index_message(r, pkg, f->message_type[i], file, 0) != 0)
            return -1;
    for (size_t i = 0; i < f->n_enum_type; i++)
        if (index_enum(r, pkg, f->enum_type[i], file) != 0)
            return -1;
    for (size_t i = 0; i < f->n_extension; i++)
        if (add_ext(r, pkg, f->extension[i], file) != 0)
            return -1;
    for (size_t i = 0; i < f->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
        const char *svc = add_sym(r, pkg, s->name, file, 0);
        if (!svc)
            return -1;
        for (size_t j = 0; j < s->n_method; j++)
            if (!add_sym(r, svc, s->method[j]->name, file, 0))
                return -1;
    }
    return 0;
}

/* A file name with its index, for sorting files by name. */
typedef struct refl_name_ix {
    const char *name;
    size_t ix;
} refl_name_ix;

static int cmp_name_ix(const void *a, const void *b)
{
    return strcmp(((const refl_name_ix *)a)->name, ((const refl_name_ix *)b)->name);
}

static int cmp_sym(const void *a, const void *b)
{
    return strcmp(((const refl_sym *)a)->name, ((const refl_sym *)b)->name);
}

static int cmp_key_sym(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const refl_sym *)elem)->name);
}

/* Sort files by name into r->by_name; fail on duplicates. */
static int sort_files(tw_reflection *r)
{
    refl_name_ix *tmp = malloc(r->nfiles * sizeof *tmp + 1);
    if (!tmp)
        return -1;
    for (size_t i = 0; i < r->nfiles; i++)
        tmp[i] = (refl_name_ix){.name = r->files[i].name, .ix = i};
    qsort(tmp, r->nfiles, sizeof *tmp, cmp_name_ix);
    int rc = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        if (i > 0 && strcmp(tmp[i - 1].name, tmp[i].name) == 0)
            rc = -1;
        r->by_name[i] = tmp[i].ix;
    }
    free(tmp);
    return rc;
}

/* Index of the file called `name`, or REFL_NONE. */
static size_t find_file(const tw_reflection *r, const char *name)
{
    size_t lo = 0, hi = r->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, r->files[r->by_name[mid]].name);
        if (c == 0)
            return r->by_name[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return REFL_NONE;
}

static const refl_sym *find_sym(const tw_reflection *r, const char *name)
{
    if (name[0] == '.')
        name++;
    if (r->nsyms == 0)
        return NULL;
    return bsearch(name, r->syms, r->nsyms, sizeof *r->syms, cmp_key_sym);
}

static int resolve_deps(tw_reflection *r, size_t i, const Google__Protobuf__FileDescriptorProto *f)
{
    refl_file *file = &r->files[i];
    file->deps = malloc(f->n_dependency * sizeof *file->deps + 1);
    if (!file->deps)
        return -1;
    for (size_t j = 0; j < f->n_dependency; j++) {
        size_t d = f->dependency[j] ? find_file(r, f->dependency[j]) : REFL_NONE;
        if (d != REFL_NONE && d != i)
            file->deps[file->ndeps++] = d;
    }
    r->total_deps += file->ndeps;
    return 0;
}

tw_reflection *tw_reflection_new(const uint8_t *fdset, size_t len)
{
    ProtobufCAllocator *za = tw_protobuf_zeroing_allocator();
    Google__Protobuf__FileDescriptorProto **fdp = NULL;
    size_t n = 0;
    int ok = 0;
    if (!fdset && len)
        return NULL;
    tw_reflection *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->buf = malloc(len ? len : 1);
    if (!r->buf)
        goto out;
    if (len)
        memcpy(r->buf, fdset, len);

    if (walk_set(NULL, r->buf, len, &n) != 0)
        goto out;
    r->files = calloc(n ? n : 1, sizeof *r->files);
    r->by_name = calloc(n ? n : 1, sizeof *r->by_name);
    fdp = calloc(n ? n : 1, sizeof *fdp);
    if (!r->files || !r->by_name || !fdp)
        goto out;
    if (walk_set(r, r->buf, len, &r->nfiles) != 0 || r->nfiles != n)
        goto out;

    /* Unpacked only to index; the served bytes are the slices. */
    for (size_t i = 0; i < n; i++) {
        fdp[i] = google__protobuf__file_descriptor_proto__unpack(za, r->files[i].len,
                                                                 r->files[i].bytes);
        if (!fdp[i] || !valid_name(fdp[i]->name))
            goto out;
        r->files[i].name = strdup(fdp[i]->name);
        if (!r->files[i].name)
            goto out;
    }
    if (sort_files(r) != 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (resolve_deps(r, i, fdp[i]) != 0 || index_file(r, fdp[i], i) != 0)
            goto out;
    }
    if (r->nsyms)
        qsort(r->syms, r->nsyms, sizeof *r->syms, cmp_sym);
    ok = 1;

out:
    if (fdp) {
        for (size_t i = 0; i < n; i++)
            if (fdp[i])
                google__protobuf__file_descriptor_proto__free_unpacked(fdp[i], za);
        free(fdp);
    }
    if (!ok) {
        tw_reflection_free(r);
        r = NULL;
    }
    return r;
}

void tw_reflection_free(tw_reflection *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nkept; i++)
        free(r->kept[i]);
    free(r->kept);
    for (size_t i = 0; i < r->nexts; i++)
        free(r->exts[i].extendee);
    free(r->exts);
    for (size_t i = 0; i < r->nsyms; i++)
        free(r->syms[i].name);
    free(r->syms);
    if (r->files) {
        for (size_t i = 0; i < r->nfiles; i++) {
            free(r->files[i].deps);
            free(r->files[i].name);
        }
    }
    free(r->by_name);
    free(r->files);
    free(r->buf);
    free(r);
}

size_t tw_reflection_file_count(const tw_reflection *r)
{
    return r->nfiles;
}

int tw_reflection_keep(tw_reflection *r, void *p)
{
    if (r->nkept == r->ckept) {
        size_t c = r->ckept ? r->ckept * 2 : 4;
        void **nk = realloc(r->kept, c * sizeof *nk);
        if (!nk)
            return -1;
        r->kept = nk;
        r->ckept = c;
    }
    r->kept[r->nkept++] = p;
    return 0;
}

/* ---- Answering --------------------------------------------------------- */

typedef Grpc__Reflection__V1__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_response;
#define REQ_CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##x
#define RESP_CASE(x) GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##x

/* Everything a response points at that is not inside the request. */
typedef struct refl_answer {
    Grpc__Reflection__V1__FileDescriptorResponse fdr;
    Grpc__Reflection__V1__ExtensionNumberResponse enr;
    Grpc__Reflection__V1__ListServiceResponse lsr;
    Grpc__Reflection__V1__ErrorResponse err;
    ProtobufCBinaryData *blobs;
    Grpc__Reflection__V1__ServiceResponse *svcs;
    Grpc__Reflection__V1__ServiceResponse **svcp;
    int32_t *numbers;
    char msg[256];
} refl_answer;

__attribute__((format(printf, 4, 5)))
static void set_error(refl_response *rs, refl_answer *a, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, sizeof a->msg, fmt, ap);
    va_end(ap);
    grpc__reflection__v1__error_response__init(&a->err);
    a->err.error_code = code;
    a->err.error_message = a->msg;
    rs->message_response_case =
        RESP_CASE(ERROR_RESPONSE);
    rs->error_response = &a->err;
}

/* Answer with `file` followed by its transitive dependencies, each once,
 * in depth-first pre-order (as grpc's C++ server does). */
static int set_files(const tw_reflection *r, refl_response *rs, refl_answer *a, size_t file)
{
    uint8_t *seen = calloc(r->nfiles, 1);
    size_t *stack = malloc((r->total_deps + 1) * sizeof *stack);
    a->blobs = malloc(r->nfiles * sizeof *a->blobs);
    if (!seen || !stack || !a->blobs) {
        free(seen);
        free(stack);
        return -1;
    }
    size_t sp = 0, n = 0;
    stack[sp++] = file;
    while (sp > 0) {
        size_t f = stack[--sp];
        if (seen[f])
            continue;
        seen[f] = 1;
        /* Packing only reads the bytes; the cast satisfies the struct. */
        a->blobs[n++] = (ProtobufCBinaryData){.len = r->files[f].len,
                                              .data = (uint8_t *)r->files[f].bytes};
        for (size_t j = r->files[f].ndeps; j > 0; j--)
            if (!seen[r->files[f].deps[j - 1]])
                stack[sp++] = r->files[f].deps[j - 1];
    }
    free(seen);
    free(stack);
    grpc__reflection__v1__file_descriptor_response__init(&a->fdr);
    a->fdr.n_file_descriptor_proto = n;
    a->fdr.file_descriptor_proto = a->blobs;
    rs->message_response_case =
        RESP_CASE(FILE_DESCRIPTOR_RESPONSE);
    rs->file_descriptor_response = &a->fdr;
    return 0;
}

static int set_services(refl_response *rs, refl_answer *a, const char *const *services,
                        size_t nservices)
{
    grpc__reflection__v1__list_service_response__init(&a->lsr);
    if (nservices) {
        a->svcs = calloc(nservices, sizeof *a->svcs);
        a->svcp = calloc(nservices, sizeof *a->svcp);
        if (!a->svcs || !a->svcp)
            return -1;
        for (size_t i = 0; i < nservices; i++) {
            grpc__reflection__v1__service_response__init(&a->svcs[i]);
            a->svcs[i].name = (char *)(services[i] ? services[i] : "");
            a->svcp[i] = &a->svcs[i];
        }
        a->lsr.n_service = nservices;
        a->lsr.service = a->svcp;
    }
    rs->message_response_case =
        RESP_CASE(LIST_SERVICES_RESPONSE);
    rs->list_services_response = &a->lsr;
    return 0;
}

static int set_extension_numbers(const tw_reflection *r, refl_response *rs, refl_answer *a,
                                 const char *type)
{
    const refl_sym *s = find_sym(r, type);
    if (!s || !s->is_message) {
        set_error(rs, a, TW_GRPC_NOT_FOUND, "message type not found: %.200s", type);
        return 0;
    }
    a->numbers = malloc(r->nexts * sizeof *a->numbers + 1);
    if (!a->numbers)
        return -1;
    grpc__reflection__v1__extension_number_response__init(&a->enr);
    for (size_t i = 0; i < r->nexts; i++)
        if (strcmp(r->exts[i].extendee, s->name) == 0)
            a->numbers[a->enr.n_extension_number++] = r->exts[i].number;
    a->enr.extension_number = a->numbers;
    a->enr.base_type_name = s->name;
    rs->message_response_case =
        RESP_CASE(ALL_EXTENSION_NUMBERS_RESPONSE);
    rs->all_extension_numbers_response = &a->enr;
    return 0;
}

static int set_extension_file(const tw_reflection *r, refl_response *rs, refl_answer *a,
                              const Grpc__Reflection__V1__ExtensionRequest *x)
{
    const char *type = x && x->containing_type ? x->containing_type : "";
    if (type[0] == '.')
        type++;
    for (size_t i = 0; x && i < r->nexts; i++)
        if (r->exts[i].number == x->extension_number && strcmp(r->exts[i].extendee, type) == 0)
            return set_files(r, rs, a, r->exts[i].file);
    set_error(rs, a, TW_GRPC_NOT_FOUND, "extension not found: %.200s field %d", type,
              x ? (int)x->extension_number : 0);
    return 0;
}

/* protobuf-c 1.4.1 accepts field number 0 when the key is an overlong
 * varint, and field numbers above the protobuf maximum, keeping them as
 * unknown fields; echoed in original_request they would make the response
 * unparseable for every client. Such requests are malformed. */
static int valid_unknown_fields(const ProtobufCMessage *m)
{
    for (size_t i = 0; i < m->n_unknown_fields; i++) {
        uint32_t tag = m->unknown_fields[i].tag;
        if (tag == 0 || tag > 0x1fffffffu)
            return 0;
    }
    return 1;
}

int tw_reflection_answer(tw_reflection *r, int v1alpha, const char *const *services,
                         size_t nservices, const uint8_t *req, size_t len, uint8_t **resp,
                         size_t *resp_len)
{
    /* v1alpha is the same wire format: the v1 types serve both. */
    (void)v1alpha;
    ProtobufCAllocator *za = tw_protobuf_zeroing_allocator();
    int rc = -1;
    if (!req && len)
        return -1;
    refl_request *rq = grpc__reflection__v1__server_reflection_request__unpack(
        za, len, req ? req : (const uint8_t *)"");
    if (!rq)
        return -1;
    if (!valid_unknown_fields(&rq->base) ||
        (rq->message_request_case == REQ_CASE(FILE_CONTAINING_EXTENSION) &&
         rq->file_containing_extension &&
         !valid_unknown_fields(&rq->file_containing_extension->base))) {
        grpc__reflection__v1__server_reflection_request__free_unpacked(rq, za);
        return -1;
    }
    refl_answer a;
    memset(&a, 0, sizeof a);
    refl_response rs = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
    rs.valid_host = rq->host ? rq->host : (char *)protobuf_c_empty_string;
    rs.original_request = rq;

    int ok = 0;
    size_t f;
    const refl_sym *s;
    switch (rq->message_request_case) {
    case REQ_CASE(LIST_SERVICES):
        ok = set_services(&rs, &a, services, nservices);
        break;
    case REQ_CASE(FILE_BY_FILENAME):
        f = find_file(r, rq->file_by_filename);
        if (f == REFL_NONE)
            set_error(&rs, &a, TW_GRPC_NOT_FOUND, "file not found: %.200s", rq->file_by_filename);
        else
            ok = set_files(r, &rs, &a, f);
        break;
    case REQ_CASE(FILE_CONTAINING_SYMBOL):
        s = find_sym(r, rq->file_containing_symbol);
        if (!s)
            set_error(&rs, &a, TW_GRPC_NOT_FOUND, "symbol not found: %.200s",
                      rq->file_containing_symbol);
        else
            ok = set_files(r, &rs, &a, s->file);
        break;
    case REQ_CASE(FILE_CONTAINING_EXTENSION):
        ok = set_extension_file(r, &rs, &a, rq->file_containing_extension);
        break;
    case REQ_CASE(ALL_EXTENSION_NUMBERS_OF_TYPE):
        ok = set_extension_numbers(r, &rs, &a, rq->all_extension_numbers_of_type);
        break;
    default:
        set_error(&rs, &a, TW_GRPC_UNIMPLEMENTED, "%s", "no request in ServerReflectionRequest");
        break;
    }
    if (ok != 0)
        goto out;

    size_t size = grpc__reflection__v1__server_reflection_response__get_packed_size(&rs);
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        goto out;
    *resp_len = grpc__reflection__v1__server_reflection_response__pack(&rs, buf);
    *resp = buf;
    rc = 0;

out:
    free(a.numbers);
    free(a.svcp);
    free(a.svcs);
    free(a.blobs);
    grpc__reflection__v1__server_reflection_request__free_unpacked(rq, za);
    return rc;
}
