/* tw_copytext: rows in PostgreSQL's COPY text format (tab-separated columns,
 * backslash escapes, \N for NULL, one row per line), built in memory for a
 * COPY ... FROM STDIN step (tw_pg_stmt.copy_data). No I/O.
 *
 * Columns are appended in the table's (or the COPY column list's) order;
 * tw_copytext_end closes the row. Allocation failure is sticky (failed),
 * so a caller checks once, at the end. Strings must be valid UTF-8 (the
 * server refuses the COPY otherwise): check them first (tw_copytext_utf8). */
#ifndef TW_COPYTEXT_H
#define TW_COPYTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tw_copytext {
    char *data;
    size_t len, cap;
    size_t rows;  /* rows ended */
    int col;      /* columns in the row being built */
    int failed;   /* sticky allocation failure */
} tw_copytext;

void tw_copytext_str(tw_copytext *b, const char *s); /* NULL: \N */
void tw_copytext_int(tw_copytext *b, int64_t v);
void tw_copytext_bool(tw_copytext *b, bool v);
/* A float8 that reads back as the same double; \N unless has and finite. */
void tw_copytext_f64(tw_copytext *b, bool has, double v);
/* A timestamptz from Unix microseconds, UTC; \N unless has and the year is
 * 1..9999. */
void tw_copytext_time(tw_copytext *b, bool has, int64_t us);
/* 1 when tw_copytext_time(has, us) writes a time, 0 when it writes \N. */
int tw_copytext_time_valid(bool has, int64_t us);
void tw_copytext_null(tw_copytext *b);
/* id, or \N when id is 0. */
void tw_copytext_id(tw_copytext *b, int64_t id);
void tw_copytext_end(tw_copytext *b);

/* Empty the rows (the buffer is kept), or free it all. */
void tw_copytext_reset(tw_copytext *b);
void tw_copytext_free(tw_copytext *b);

/* 1 when s is NULL or valid UTF-8 without NUL (always true for a C
 * string), 0 otherwise. */
int tw_copytext_utf8(const char *s);

#endif
