#include <criterion/criterion.h>
#include <string.h>

#include "tw_hin.h"

#define REF 2025

static void dec_ok(const char *raw, int ref, tw_hin *h)
{
    tw_hin_status st = tw_hin_decode(raw, strlen(raw), ref, h);
    cr_assert_eq(st, TW_HIN_OK, "'%s': %s: %s", raw, tw_hin_status_name(st), h->error_text);
    cr_assert_eq(h->status, TW_HIN_OK);
    cr_assert_str_empty(h->error_text);
}

static tw_hin_status dec_err(const char *raw, size_t len, int ref, tw_hin *h)
{
    tw_hin_status st = tw_hin_decode(raw, len, ref, h);
    cr_assert_neq(st, TW_HIN_OK, "'%.*s' was accepted as '%s'", (int)len, raw, h->key);
    cr_assert_eq(h->status, st);
    cr_assert_str_empty(h->key);
    cr_assert_eq(h->kind, TW_HIN_KIND_UNKNOWN);
    cr_assert_eq(h->nwarnings, 0);
    cr_assert_str_not_empty(h->error_text);
    return st;
}

static int find_warning(const tw_hin *h, tw_hin_warn code)
{
    for (size_t i = 0; i < h->nwarnings; i++)
        if (h->warnings[i].code == code)
            return (int)i;
    return -1;
}

static size_t count_warnings(const tw_hin *h, tw_hin_warn code)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nwarnings; i++)
        n += h->warnings[i].code == code;
    return n;
}

/* ---- US HIN ------------------------------------------------------------ */

Test(hin, us_hin_decodes)
{
    tw_hin h;
    dec_ok("ABC12345H324", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_US);
    cr_assert_str_eq(h.key, "ABC12345H324");
    cr_assert_str_eq(h.country, "US");
    cr_assert_str_eq(h.maker, "ABC");
    cr_assert_str_eq(h.serial, "12345");
    cr_assert_eq(h.month, 8, "H is August");
    cr_assert_eq(h.production_year, 2023);
    cr_assert_eq(h.model_year, 2024);
    cr_assert_eq(h.legacy_form, TW_HIN_LEGACY_NONE);
    cr_assert_eq(h.fixes, 0);
    cr_assert_not(h.partial);
    cr_assert_not(h.one_off);
    cr_assert_eq(h.nwarnings, 0, "first: %s", h.nwarnings ? h.warnings[0].text : "");
}

Test(hin, us_prefix_and_separators)
{
    tw_hin h;
    dec_ok("US-ABC12345H324", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_US);
    cr_assert_str_eq(h.key, "ABC12345H324", "the prefix is not part of the key");
    cr_assert_str_eq(h.country, "US");
    cr_assert_eq(h.nwarnings, 0);
    dec_ok("us abc 12345 h3 24", REF, &h);
    cr_assert_str_eq(h.key, "ABC12345H324");
    dec_ok("U5-ABC12345H324", REF, &h);
    cr_assert_str_eq(h.key, "ABC12345H324");
    cr_assert_eq(h.fixes, 1);
    int w = find_warning(&h, TW_HIN_W_OCR_FIX);
    cr_assert_geq(w, 0);
    cr_assert(strstr(h.warnings[w].text, "US prefix"), "%s", h.warnings[w].text);
}

Test(hin, first_and_last_months)
{
    tw_hin h;
    dec_ok("ABC12345A324", REF, &h);
    cr_assert_eq(h.month, 1);
    dec_ok("ABC12345L324", REF, &h);
    cr_assert_eq(h.month, 12);
}

Test(hin, o_in_serial_is_zero_zero_in_month_is_d)
{
    tw_hin h;
    dec_ok("ABC1234O0324", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_US);
    cr_assert_str_eq(h.key, "ABC12340D324");
    cr_assert_str_eq(h.serial, "12340");
    cr_assert_eq(h.month, 4);
    cr_assert_eq(h.fixes, 2);
    cr_assert_eq(count_warnings(&h, TW_HIN_W_OCR_FIX), 2);
    cr_assert_eq(h.warnings[0].pos, 8);
    cr_assert(strstr(h.warnings[0].text, "(O\xe2\x86\x92" "0)"), "%s", h.warnings[0].text);
    cr_assert_eq(h.warnings[1].pos, 9);
    cr_assert(strstr(h.warnings[1].text, "(0\xe2\x86\x92" "D)"), "%s", h.warnings[1].text);
}

Test(hin, serial_i_and_q_and_maker_digits_and_year_letters)
{
    tw_hin h;
    dec_ok("A8C1I3Q5H3Z4", REF, &h);
    cr_assert_str_eq(h.key, "ABC11305H324");
    cr_assert_str_eq(h.maker, "ABC");
    cr_assert_str_eq(h.serial, "11305");
    cr_assert_eq(h.model_year, 2024);
    cr_assert_eq(h.fixes, 4);
    /* L is a valid serial character and stays. */
    dec_ok("ABC1L345H324", REF, &h);
    cr_assert_str_eq(h.serial, "1L345");
    cr_assert_eq(h.fixes, 0);
}

Test(hin, month_out_of_range_still_decodes)
{
    tw_hin h;
    dec_ok("ABC12345X324", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_US);
    cr_assert_eq(h.month, 0);
    cr_assert_eq(h.model_year, 2024);
    int w = find_warning(&h, TW_HIN_W_MONTH_RANGE);
    cr_assert_geq(w, 0);
    cr_assert_eq(h.warnings[w].pos, 9);
    cr_assert(strstr(h.warnings[w].text, "'X'"), "%s", h.warnings[w].text);
    dec_ok("ABC12345M404", REF, &h); /* M: neither a month nor legacy (year 04) */
    cr_assert_eq(h.kind, TW_HIN_KIND_US);
    cr_assert_geq(find_warning(&h, TW_HIN_W_MONTH_RANGE), 0);
}

Test(hin, model_year_gap)
{
    tw_hin h;
    dec_ok("ABC12345D024", REF, &h);
    cr_assert_eq(h.production_year, 2020);
    cr_assert_eq(h.model_year, 2024);
    int w = find_warning(&h, TW_HIN_W_YEAR_GAP);
    cr_assert_geq(w, 0);
    cr_assert(strstr(h.warnings[w].text, "4 years"), "%s", h.warnings[w].text);
    dec_ok("ABC12345D424", REF, &h);
    cr_assert_eq(h.production_year, 2024);
    cr_assert_lt(find_warning(&h, TW_HIN_W_YEAR_GAP), 0, "same year");
    /* Digit larger than the model year's last digit: previous decade. */
    dec_ok("ABC12345D920", REF, &h);
    cr_assert_eq(h.model_year, 2020);
    cr_assert_eq(h.production_year, 2019);
    cr_assert_lt(find_warning(&h, TW_HIN_W_YEAR_GAP), 0, "one year is normal");
    dec_ok("ABC12345D921", REF, &h);
    cr_assert_eq(h.production_year, 2019);
    cr_assert_geq(find_warning(&h, TW_HIN_W_YEAR_GAP), 0, "two years is suspicious");
}

Test(hin, century_rule)
{
    tw_hin h;
    dec_ok("ABC12345H526", REF, &h);
    cr_assert_eq(h.model_year, 2026, "next year's model year is allowed");
    cr_assert_eq(h.production_year, 2025);
    cr_assert_lt(find_warning(&h, TW_HIN_W_FUTURE), 0);
    dec_ok("ABC12345H627", REF, &h);
    cr_assert_eq(h.model_year, 1927);
    cr_assert_eq(h.production_year, 1926);
    cr_assert_geq(find_warning(&h, TW_HIN_W_YEAR_RANGE), 0, "before the 1984 format");
    dec_ok("ABC12345H899", REF, &h);
    cr_assert_eq(h.model_year, 1999);
    cr_assert_eq(h.production_year, 1998);
    cr_assert_eq(h.nwarnings, 0);
    dec_ok("ABC12345H899", 2099, &h);
    cr_assert_eq(h.model_year, 2099, "relative to the reference year");
    dec_ok("ABC12345H627", 2026, &h);
    cr_assert_eq(h.model_year, 2027);
    dec_ok("ABC12345H900", 1999, &h);
    cr_assert_eq(h.model_year, 2000, "a 2000 model year recorded in 1999");
    cr_assert_eq(h.production_year, 1999);
    dec_ok("ABC12345H899", 1999, &h);
    cr_assert_eq(h.model_year, 1999);
}

Test(hin, production_after_reference_year)
{
    tw_hin h;
    dec_ok("ABC12345H626", REF, &h);
    cr_assert_eq(h.production_year, 2026);
    cr_assert_geq(find_warning(&h, TW_HIN_W_FUTURE), 0);
}

/* ---- EU CIN ------------------------------------------------------------ */

Test(hin, cin_published_example)
{
    tw_hin h;
    dec_ok("GB-ABC00042-A3-99", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_EU_CIN);
    cr_assert_str_eq(h.key, "GBABC00042A399");
    cr_assert_str_eq(h.country, "GB");
    cr_assert_str_eq(h.maker, "ABC");
    cr_assert_str_eq(h.serial, "00042");
    cr_assert_eq(h.month, 1);
    cr_assert_eq(h.model_year, 1999);
    cr_assert_eq(h.production_year, 1993);
    cr_assert_geq(find_warning(&h, TW_HIN_W_YEAR_GAP), 0,
                  "the example's digits are 6 years apart under the rule");
    cr_assert_not(h.one_off);
    cr_assert_eq(h.fixes, 0);
}

Test(hin, cin_with_alnum_maker_code_and_fixes)
{
    tw_hin h;
    dec_ok("FR-B3N12345-E8-19", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_EU_CIN);
    cr_assert_str_eq(h.country, "FR");
    cr_assert_str_eq(h.maker, "B3N", "CIN maker codes are alphanumeric");
    cr_assert_eq(h.month, 5);
    cr_assert_eq(h.production_year, 2018);
    cr_assert_eq(h.model_year, 2019);
    cr_assert_eq(h.nwarnings, 0);
    dec_ok("FR\xe2\x80\x93" "B3N1234O\xe2\x80\x93" "18\xe2\x80\x94" "19", REF, &h); /* dashes */
    cr_assert_str_eq(h.key, "FRB3N12340I819");
    cr_assert_eq(h.month, 9, "1 in the month position (character 11) is I");
    cr_assert_eq(h.fixes, 2);
    cr_assert_eq(h.warnings[0].pos, 10);
    cr_assert_eq(h.warnings[1].pos, 11);
    dec_ok("F6-B3N12345-E8-19", REF, &h);
    cr_assert_str_eq(h.country, "FG", "6 in a country position is G");
}

Test(hin, cin_month_out_of_range)
{
    tw_hin h;
    dec_ok("DE-XYZ12345-P8-19", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_EU_CIN);
    cr_assert_eq(h.month, 0);
    int w = find_warning(&h, TW_HIN_W_MONTH_RANGE);
    cr_assert_geq(w, 0);
    cr_assert_eq(h.warnings[w].pos, 11);
}

Test(hin, rya_one_off)
{
    tw_hin h;
    dec_ok("GB-RYA12345-F2-23", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_EU_CIN);
    cr_assert(h.one_off);
    cr_assert_str_eq(h.maker, "RYA");
    cr_assert_str_eq(h.serial, "12345");
    cr_assert_eq(h.month, 6);
    cr_assert_eq(h.production_year, 2022);
    cr_assert_eq(h.model_year, 2023);
    cr_assert_geq(find_warning(&h, TW_HIN_W_ONE_OFF), 0);
    dec_ok("GB-RYA12345", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_EU_CIN);
    cr_assert(h.one_off);
    cr_assert_str_eq(h.key, "GBRYA12345");
    cr_assert_str_eq(h.country, "GB");
    cr_assert_str_eq(h.serial, "12345");
    cr_assert_eq(h.month, 0);
    cr_assert_eq(h.model_year, 0);
    cr_assert_geq(find_warning(&h, TW_HIN_W_INCOMPLETE), 0);
    dec_ok("FR-RYA12345", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_UNKNOWN, "the short form is only the RYA's");
    cr_assert_not(h.one_off);
}

/* ---- legacy ------------------------------------------------------------ */

Test(hin, legacy_straight_year)
{
    tw_hin h;
    dec_ok("ABC12345 1272", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_LEGACY);
    cr_assert_eq(h.legacy_form, TW_HIN_LEGACY_STRAIGHT_YEAR);
    cr_assert_str_eq(h.key, "ABC123451272");
    cr_assert_str_eq(h.maker, "ABC");
    cr_assert_str_eq(h.serial, "12345");
    cr_assert_eq(h.month, 12);
    cr_assert_eq(h.production_year, 1972);
    cr_assert_eq(h.model_year, 0);
    cr_assert_geq(find_warning(&h, TW_HIN_W_LEGACY), 0);
}

Test(hin, legacy_model_year)
{
    tw_hin h;
    dec_ok("ABC12345 M73E", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_LEGACY);
    cr_assert_eq(h.legacy_form, TW_HIN_LEGACY_MODEL_YEAR);
    cr_assert_eq(h.model_year, 1973);
    cr_assert_eq(h.month, 5);
    cr_assert_eq(h.production_year, 0);
}

Test(hin, legacy_only_for_legacy_years)
{
    tw_hin h;
    dec_ok("ABC12345 0324", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_US, "1924 is no legacy year: the month was misread");
    cr_assert_str_eq(h.key, "ABC12345D324");
    dec_ok("ABC12345 1385", REF, &h);
    cr_assert_neq(h.kind, TW_HIN_KIND_LEGACY, "month 13");
}

/* ---- partial, look-alikes, unknown, errors ----------------------------- */

Test(hin, partial_readings)
{
    tw_hin h;
    dec_ok("ABC12?45H3?4", REF, &h);
    cr_assert_eq(h.kind, TW_HIN_KIND_US);
    cr_assert(h.partial);
    cr_assert_eq(h.unknown, 2);
    cr_assert_str_eq(h.serial, "12?45");
    cr_assert_eq(h.month, 8);
    cr_assert_eq(h.model_year, 0);
    cr_assert_eq(h.production_year, 0);
    cr_assert_geq(find_warning(&h, TW_HIN_W_PARTIAL), 0);
    dec_ok("ABC12345*324", REF, &h);
    cr_assert_eq(h.month, 0);
    cr_assert_lt(find_warning(&h, TW_HIN_W_MONTH_RANGE), 0, "unknown is not out of range");
}

Test(hin, lookalike_letters)
{
    tw_hin h;
    dec_ok("\xd0\x90\xd0\x92\xd0\xa1" "12345H324", REF, &h); /* Cyrillic A, Ve, Es */
    cr_assert_str_eq(h.key, "ABC12345H324");
    cr_assert_geq(find_warning(&h, TW_HIN_W_CYRILLIC), 0);
    dec_ok("\xce\x91\xce\x92\xce\xa7" "12345H324", REF, &h); /* Greek Alpha, Beta, Chi */
    cr_assert_str_eq(h.key, "ABX12345H324");
    cr_assert_geq(find_warning(&h, TW_HIN_W_GREEK), 0);
}

Test(hin, unknown_forms_are_warnings)
{
    const char *texts[] = {"HELLO", "ABC123", "1234567890123", "ABC1234567890", "123456789012"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        tw_hin h;
        dec_ok(texts[i], REF, &h);
        cr_assert_eq(h.kind, TW_HIN_KIND_UNKNOWN, "%s", texts[i]);
        cr_assert_str_eq(h.key, texts[i]);
        cr_assert_geq(find_warning(&h, TW_HIN_W_UNKNOWN_FORMAT), 0);
        cr_assert_str_empty(h.maker);
        cr_assert_eq(h.model_year, 0);
    }
}

Test(hin, garbage_is_an_error)
{
    tw_hin h;
    const char *emoji = "ABC\xf0\x9f\x9a\xa4" "12345H324";
    cr_assert_eq(dec_err(emoji, strlen(emoji), REF, &h), TW_HIN_ERR_CHAR);
    cr_assert_eq(dec_err("ABC\xff" "2345H324", 12, REF, &h), TW_HIN_ERR_UTF8);
    cr_assert_eq(dec_err("", 0, REF, &h), TW_HIN_ERR_EMPTY);
    cr_assert_eq(dec_err("-- --", 5, REF, &h), TW_HIN_ERR_EMPTY);
    cr_assert_eq(dec_err("ABC12345H324\n", 13, REF, &h), TW_HIN_ERR_CHAR);
    cr_assert_eq(dec_err("HIN: ABC12345H324", 17, REF, &h), TW_HIN_ERR_CHAR);
    char big[TW_HIN_RAW_MAX + 1];
    memset(big, 'A', sizeof big);
    cr_assert_eq(dec_err(big, sizeof big, REF, &h), TW_HIN_ERR_TOO_LONG);
    cr_assert_eq(dec_err("ABC12345H324", 12, 0, &h), TW_HIN_ERR_ARG, "reference year");
    cr_assert_eq(dec_err(NULL, 4, REF, &h), TW_HIN_ERR_ARG);
    cr_assert_eq(tw_hin_decode("ABC12345H324", 12, REF, NULL), TW_HIN_ERR_ARG);
    cr_assert_str_eq(tw_hin_kind_name(TW_HIN_KIND_EU_CIN), "EU CIN");
}

Test(hin, decoding_a_key_again_changes_nothing)
{
    const char *texts[] = {"US-ABC12345H324", "ABC1234O0324",      "GB-ABC00042-A3-99",
                           "GB-RYA12345",     "ABC12345 1272",     "ABC12345 M73E",
                           "ABC12345X324",    "ABC12?45H3?4",      "HELLO",
                           "U5-A8C12345H324", "FR-B3N1234O-18-19", "ABC12345 0324"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        tw_hin a, b;
        dec_ok(texts[i], REF, &a);
        dec_ok(a.key, REF, &b);
        cr_assert_str_eq(b.key, a.key, "%s", texts[i]);
        cr_assert_eq(b.kind, a.kind, "%s", texts[i]);
        cr_assert_eq(b.fixes, 0, "%s", texts[i]);
        cr_assert_str_eq(b.country, a.country, "%s", texts[i]);
        cr_assert_str_eq(b.maker, a.maker, "%s", texts[i]);
        cr_assert_str_eq(b.serial, a.serial, "%s", texts[i]);
        cr_assert_eq(b.month, a.month, "%s", texts[i]);
        cr_assert_eq(b.production_year, a.production_year, "%s", texts[i]);
        cr_assert_eq(b.model_year, a.model_year, "%s", texts[i]);
    }
}
