/* tw_pgarray's binary array parameters accepted by a real PostgreSQL and
 * unnested back intact. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "support_pg.h"
#include "tw_pgarray.h"

static tw_test_db db;
static void setup(void) { tw_test_db_create(&db, "pgarray"); }
static void teardown(void) { tw_test_db_drop(&db); }
TestSuite(pgarray_pg, .init = setup, .fini = teardown, .timeout = 60);

Test(pgarray_pg, binary_arrays_unnest)
{
    PGconn *c = tw_test_connect(db.url);
    tw_pgarray t = {0}, i2 = {0}, ts = {0}, j = {0}, b = {0}, i8 = {0};
    tw_pgarray_begin(&t, TW_OID_TEXT);
    tw_pgarray_begin(&i2, TW_OID_INT2);
    tw_pgarray_begin(&ts, TW_OID_TIMESTAMPTZ);
    tw_pgarray_begin(&j, TW_OID_JSONB);
    tw_pgarray_begin(&b, TW_OID_BYTEA);
    tw_pgarray_begin(&i8, TW_OID_INT8);
    for (int k = 0; k < 3; k++) {
        if (k == 1)
            tw_pgarray_text(&t, NULL);
        else
            tw_pgarray_text(&t, k ? "Gravelines" : "Étaples");
        tw_pgarray_int2(&i2, (int16_t)(k - 1));
        tw_pgarray_timestamptz(&ts, 1700000000 + k);
        tw_pgarray_jsonb(&j, "{\"a\":1}", 7);
        tw_pgarray_bytes(&b, "\xff\x00", 2);
        tw_pgarray_int8(&i8, -5000000000LL * k);
    }
    tw_pgarray *arrays[] = {&t, &i2, &ts, &j, &b, &i8};
    const char *values[6];
    int lengths[6], formats[6];
    for (int k = 0; k < 6; k++) {
        cr_assert_eq(tw_pgarray_finish(arrays[k]), 0);
        values[k] = (const char *)arrays[k]->data;
        lengths[k] = (int)arrays[k]->len;
        formats[k] = 1;
    }
    PGresult *r = PQexecParams(
        c,
        "SELECT coalesce(a, 'NULL'), b, extract(epoch from c)::bigint, d::text, encode(e, 'hex'), f "
        "FROM unnest($1::text[], $2::int2[], $3::timestamptz[], $4::jsonb[], $5::bytea[], "
        "$6::int8[]) WITH ORDINALITY AS u(a, b, c, d, e, f, ord) ORDER BY ord",
        6, NULL, values, lengths, formats, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_assert_eq(PQntuples(r), 3);
    cr_assert_str_eq(PQgetvalue(r, 0, 0), "Étaples");
    cr_assert_str_eq(PQgetvalue(r, 1, 0), "NULL");
    cr_assert_str_eq(PQgetvalue(r, 0, 1), "-1");
    cr_assert_str_eq(PQgetvalue(r, 2, 2), "1700000002");
    cr_assert_str_eq(PQgetvalue(r, 2, 3), "{\"a\": 1}");
    cr_assert_str_eq(PQgetvalue(r, 1, 4), "ff00");
    cr_assert_str_eq(PQgetvalue(r, 2, 5), "-10000000000");
    PQclear(r);
    for (int k = 0; k < 6; k++)
        tw_pgarray_free(arrays[k]);
    PQfinish(c);
}

Test(pgarray_pg, float8_arrays_read_back_as_the_same_doubles)
{
    PGconn *c = tw_test_connect(db.url);
    tw_pgarray f = {0};
    tw_pgarray_begin(&f, TW_OID_FLOAT8);
    tw_pgarray_float8(&f, 50.98661234567891);
    tw_pgarray_null(&f);
    tw_pgarray_float8(&f, -0.1);
    cr_assert_eq(tw_pgarray_finish(&f), 0);
    const char *values[] = {(const char *)f.data};
    const int lengths[] = {(int)f.len}, formats[] = {1};
    PGresult *r = PQexecParams(c,
                               "SELECT coalesce(x::text, 'NULL'), x = 50.98661234567891::float8 "
                               "FROM unnest($1::float8[]) WITH ORDINALITY AS u(x, o) ORDER BY o",
                               1, NULL, values, lengths, formats, 0);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQresultErrorMessage(r));
    cr_assert_eq(PQntuples(r), 3);
    cr_assert_str_eq(PQgetvalue(r, 0, 1), "t", "exactly the double sent");
    cr_assert_str_eq(PQgetvalue(r, 1, 0), "NULL");
    cr_assert_str_eq(PQgetvalue(r, 2, 0), "-0.1");
    PQclear(r);
    tw_pgarray_free(&f);
    PQfinish(c);
}
