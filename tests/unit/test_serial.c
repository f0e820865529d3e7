#include <criterion/criterion.h>
#include <string.h>

#include "tw_serial.h"

/* Normalise a NUL-terminated reading; the test fails unless it is OK. */
static void norm_ok(const char *raw, const char *maker, tw_serial *s)
{
    tw_serial_status st = tw_serial_normalize(raw, strlen(raw), maker, s);
    cr_assert_eq(st, TW_SERIAL_OK, "'%s' (%s): %s: %s", raw, maker ? maker : "NULL",
                 tw_serial_status_name(st), s->error_text);
    cr_assert_eq(s->status, TW_SERIAL_OK);
    cr_assert_str_empty(s->error_text);
}

static tw_serial_status norm_err(const char *raw, size_t len, const char *maker, tw_serial *s)
{
    tw_serial_status st = tw_serial_normalize(raw, len, maker, s);
    cr_assert_neq(st, TW_SERIAL_OK, "'%.*s' was accepted as '%s'", (int)len, raw, s->key);
    cr_assert_eq(s->status, st);
    cr_assert_str_empty(s->key);
    cr_assert_str_empty(s->loose_key);
    cr_assert_eq(s->format, TW_SERIAL_FORMAT_INVALID);
    cr_assert_eq(s->nwarnings, 0);
    cr_assert_str_not_empty(s->error_text, "an error says why");
    return st;
}

/* The index of the first warning with `code`, or -1. */
static int find_warning(const tw_serial *s, tw_serial_warn code)
{
    for (size_t i = 0; i < s->nwarnings; i++)
        if (s->warnings[i].code == code)
            return (int)i;
    return -1;
}

static size_t count_warnings(const tw_serial *s, tw_serial_warn code)
{
    size_t n = 0;
    for (size_t i = 0; i < s->nwarnings; i++)
        n += s->warnings[i].code == code;
    return n;
}

/* ---- Yamaha ------------------------------------------------------------ */

Test(serial, yamaha_reference_example)
{
    tw_serial s;
    norm_ok("6E5-X-1016523", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X1016523");
    cr_assert_str_eq(s.clean, "6E5X1016523");
    cr_assert_str_eq(s.loose_key, "6E5X1016523");
    cr_assert_eq(s.len, 11);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_YAMAHA);
    cr_assert_eq(s.maker, TW_SERIAL_MAKER_YAMAHA);
    cr_assert_eq(s.fixes, 0);
    cr_assert_not(s.partial);
    cr_assert_eq(s.nwarnings, 0, "first warning: %s", s.nwarnings ? s.warnings[0].text : "");
}

Test(serial, yamaha_six_digits_lower_case_and_spaces)
{
    tw_serial s;
    norm_ok(" 6bg l 123456 ", "YAMAHA MOTOR", &s);
    cr_assert_str_eq(s.key, "6BGL123456");
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_YAMAHA);
    /* B, G and L fold in the loose key. */
    cr_assert_str_eq(s.loose_key, "6861123456");
}

Test(serial, yamaha_o_in_digit_position_is_fixed_with_warning)
{
    tw_serial s;
    norm_ok("6E5-X-1O16523", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X1016523");
    cr_assert_str_eq(s.clean, "6E5X1O16523", "the reading as cleaned is kept");
    cr_assert_eq(s.fixes, 1);
    int w = find_warning(&s, TW_SERIAL_W_OCR_FIX);
    cr_assert_geq(w, 0);
    cr_assert_eq(s.warnings[w].pos, 6);
    cr_assert_str_eq(s.warnings[w].text, "OCR fix applied at position 6 (O\xe2\x86\x92" "0)");
}

Test(serial, yamaha_ioi_becomes_101)
{
    tw_serial s;
    norm_ok("6E5-X-IOI6523", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X1016523");
    cr_assert_eq(s.fixes, 3);
    cr_assert_eq(count_warnings(&s, TW_SERIAL_W_OCR_FIX), 3);
    cr_assert_eq(s.warnings[0].pos, 5);
    cr_assert_eq(s.warnings[1].pos, 6);
    cr_assert_eq(s.warnings[2].pos, 7);
}

Test(serial, yamaha_every_digit_confusion)
{
    tw_serial s;
    /* Q D L S B Z G in digit positions. */
    norm_ok("6E5XQDLSBZG", "yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X0015826");
    cr_assert_eq(s.fixes, 7);
}

Test(serial, yamaha_transom_letter_position_fix)
{
    tw_serial s;
    norm_ok("6E5-5-1016523", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5S1016523", "5 in the transom position is S");
    cr_assert_eq(s.warnings[find_warning(&s, TW_SERIAL_W_OCR_FIX)].pos, 4);
    norm_ok("6E5-1-1016523", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5L1016523", "1 in the transom position is L (I is no transom)");
}

Test(serial, yamaha_model_prefix_is_never_fixed)
{
    tw_serial s;
    norm_ok("6AH-S-1O00001", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6AHS1000001");
    cr_assert_eq(s.fixes, 1);
}

Test(serial, cyrillic_o_in_yamaha_serial)
{
    tw_serial s;
    norm_ok("6E5-X-1\xd0\x9e" "16523", "Yamaha", &s); /* U+041E CYRILLIC CAPITAL O */
    cr_assert_str_eq(s.key, "6E5X1016523");
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_CYRILLIC), 0);
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_OCR_FIX), 0);
    cr_assert_lt(find_warning(&s, TW_SERIAL_W_GREEK), 0);
}

Test(serial, cyrillic_letters_in_letter_positions_are_mapped_not_fixed)
{
    tw_serial s;
    /* Cyrillic small ie and capital ha: 6Е5-Х-1016523 */
    norm_ok("6\xd0\xb5" "5-\xd0\xa5-1016523", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X1016523");
    cr_assert_eq(s.fixes, 0);
    int w = find_warning(&s, TW_SERIAL_W_CYRILLIC);
    cr_assert_geq(w, 0);
    cr_assert(strstr(s.warnings[w].text, "Cyrillic"));
    cr_assert(strstr(s.warnings[w].text, "2 mapped"), "%s", s.warnings[w].text);
}

Test(serial, greek_omicron_in_yamaha_serial)
{
    tw_serial s;
    norm_ok("6E5-X-1\xce\x9f" "16523", "Yamaha", &s); /* U+039F GREEK CAPITAL OMICRON */
    cr_assert_str_eq(s.key, "6E5X1016523");
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_GREEK), 0);
    cr_assert_lt(find_warning(&s, TW_SERIAL_W_CYRILLIC), 0);
    norm_ok("6\xce\xb5" "5\xcf\x87" "1016523", "Yamaha", &s); /* small epsilon, small chi */
    cr_assert_str_eq(s.key, "6E5X1016523");
}

Test(serial, fullwidth_forms)
{
    tw_serial s;
    /* "６Ｅ５－Ｘ－１０１６５２３" */
    norm_ok("\xef\xbc\x96\xef\xbc\xa5\xef\xbc\x95\xef\xbc\x8d\xef\xbc\xb8\xef\xbc\x8d"
            "\xef\xbc\x91\xef\xbc\x90\xef\xbc\x91\xef\xbc\x96\xef\xbc\x95\xef\xbc\x92"
            "\xef\xbc\x93",
            "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X1016523");
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_YAMAHA);
    /* Fullwidth small letters are upper-cased too. */
    norm_ok("6\xef\xbd\x85" "5x1016523", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X1016523");
}

Test(serial, dashes_slashes_dots_and_invisibles_are_separators)
{
    const char *readings[] = {
        "6E5\xe2\x80\x93X\xe2\x80\x94" "1016523",     /* en dash, em dash */
        "6E5\xe2\x80\x90X\xe2\x88\x92" "1016523",     /* U+2010 hyphen, U+2212 minus */
        "6E5/X\\1016523",                             /* slashes */
        "6E5.X\xc2\xb7" "1016523",                    /* dot, middle dot */
        "6E5\xc2\xa0X\xe3\x80\x80" "1016523",         /* no-break and ideographic space */
        "6E5\xe2\x80\x8bX\xc2\xad" "1016523",         /* zero-width space, soft hyphen */
        "\xef\xbb\xbf" "6E5X1016523",                 /* BOM */
        "6E5\xe2\xb8\xba" "X1016523",                 /* U+2E3A two-em dash */
    };
    for (size_t i = 0; i < sizeof readings / sizeof readings[0]; i++) {
        tw_serial s;
        norm_ok(readings[i], "Yamaha", &s);
        cr_assert_str_eq(s.key, "6E5X1016523", "reading %zu", i);
    }
}

Test(serial, digits_of_other_scripts)
{
    tw_serial s;
    /* Arabic-Indic ١٠١٦٥٢٣ */
    norm_ok("6E5X\xd9\xa1\xd9\xa0\xd9\xa1\xd9\xa6\xd9\xa5\xd9\xa2\xd9\xa3", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X1016523");
}

Test(serial, yamaha_mismatch_is_a_warning_without_fixes)
{
    tw_serial s;
    norm_ok("6E5-Q-1O16523", "Yamaha", &s); /* Q is no transom letter */
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_FREE_FORM);
    cr_assert_str_eq(s.key, "6E5Q1O16523", "no fixes when the format does not fit");
    cr_assert_eq(s.fixes, 0);
    int w = find_warning(&s, TW_SERIAL_W_FORMAT_MISMATCH);
    cr_assert_geq(w, 0);
    cr_assert(strstr(s.warnings[w].text, "does not match Yamaha's format"), "%s",
              s.warnings[w].text);
    norm_ok("6E5X10165", "Yamaha", &s); /* 5 digits */
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_FREE_FORM);
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_FORMAT_MISMATCH), 0);
}

/* ---- Mercury ----------------------------------------------------------- */

Test(serial, mercury_reference_example_and_leading_o)
{
    tw_serial s;
    norm_ok("0P096282", "Mercury", &s);
    cr_assert_str_eq(s.key, "0P096282");
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_MERCURY);
    cr_assert_eq(s.nwarnings, 0);
    norm_ok("OP096282", "Mercury Marine", &s);
    cr_assert_str_eq(s.key, "0P096282");
    cr_assert_eq(s.fixes, 1);
    cr_assert_eq(s.warnings[0].code, TW_SERIAL_W_OCR_FIX);
    cr_assert_eq(s.warnings[0].pos, 1);
    cr_assert(strstr(s.warnings[0].text, "(O\xe2\x86\x92" "0)"));
}

Test(serial, mercury_letter_position_fix)
{
    tw_serial s;
    norm_ok("00096282", "Mercury", &s);
    cr_assert_str_eq(s.key, "0O096282", "a digit in the letter position becomes its letter");
    cr_assert_eq(s.warnings[0].pos, 2);
    cr_assert(strstr(s.warnings[0].text, "(0\xe2\x86\x92O)"));
    norm_ok("08096282", "Mariner", &s);
    cr_assert_str_eq(s.key, "0B096282");
    cr_assert_eq(s.maker, TW_SERIAL_MAKER_MERCURY);
}

Test(serial, mercury_without_hint_is_not_fixed)
{
    tw_serial s;
    norm_ok("OP096282", NULL, &s);
    cr_assert_str_eq(s.key, "OP096282");
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_FREE_FORM);
    cr_assert_eq(s.fixes, 0);
    cr_assert_eq(s.nwarnings, 0);
    cr_assert_str_eq(s.loose_key, "0P096282");
}

/* ---- weak formats ------------------------------------------------------ */

Test(serial, suzuki_weak_format_is_detected_not_fixed)
{
    tw_serial s;
    norm_ok("14003F-510001", "Suzuki", &s);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_SUZUKI);
    cr_assert_str_eq(s.key, "14003F510001");
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_WEAK_FORMAT), 0);
    norm_ok("14003-510001", "Suzuki", &s);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_SUZUKI, "the letter is optional");
    norm_ok("14OO3F-510001", "SUZUKI", &s);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_SUZUKI);
    cr_assert_str_eq(s.key, "14OO3F510001", "weak: not fixed");
    cr_assert_eq(s.fixes, 0);
    cr_assert_eq(count_warnings(&s, TW_SERIAL_W_OCR_SUSPECT), 2);
    cr_assert_eq(s.warnings[find_warning(&s, TW_SERIAL_W_OCR_SUSPECT)].pos, 3);
    cr_assert_str_eq(s.loose_key, "14003F510001");
}

Test(serial, suzuki_mismatch_is_a_warning)
{
    tw_serial s;
    norm_ok("DF140-12345", "Suzuki", &s);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_FREE_FORM);
    cr_assert_str_eq(s.key, "DF14012345");
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_FORMAT_MISMATCH), 0);
    cr_assert_lt(find_warning(&s, TW_SERIAL_W_WEAK_FORMAT), 0);
}

Test(serial, honda_weak_format)
{
    tw_serial s;
    norm_ok("BAAJ-1234567", "Honda", &s);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_HONDA);
    cr_assert_str_eq(s.key, "BAAJ1234567");
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_WEAK_FORMAT), 0);
    cr_assert_eq(count_warnings(&s, TW_SERIAL_W_OCR_SUSPECT), 0);
    norm_ok("BAA1-1234567", "Honda", &s);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_HONDA);
    cr_assert_str_eq(s.key, "BAA11234567");
    cr_assert_eq(count_warnings(&s, TW_SERIAL_W_OCR_SUSPECT), 1);
    norm_ok("BF115A3LRTA", "Honda", &s); /* a model name, not a frame serial */
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_FREE_FORM);
}

/* ---- free-form --------------------------------------------------------- */

Test(serial, chinese_makes_are_free_form)
{
    const char *makers[] = {"Parsun", "Hidea", "Tohatsu", "Zhejiang Acme Outboards", NULL, ""};
    tw_serial_maker want[] = {TW_SERIAL_MAKER_PARSUN, TW_SERIAL_MAKER_HIDEA,
                              TW_SERIAL_MAKER_TOHATSU, TW_SERIAL_MAKER_OTHER,
                              TW_SERIAL_MAKER_UNKNOWN, TW_SERIAL_MAKER_UNKNOWN};
    for (size_t i = 0; i < sizeof makers / sizeof makers[0]; i++) {
        tw_serial s;
        norm_ok("ps-2023 0815a", makers[i], &s);
        cr_assert_eq(s.maker, want[i], "maker %zu", i);
        cr_assert_eq(s.format, TW_SERIAL_FORMAT_FREE_FORM);
        cr_assert_str_eq(s.key, "PS20230815A");
        cr_assert_eq(s.fixes, 0);
        cr_assert_eq(s.nwarnings, 0);
        cr_assert_str_eq(s.loose_key, "P520230815A");
    }
}

Test(serial, free_form_length_warning)
{
    tw_serial s;
    norm_ok("AB12", "Parsun", &s);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_FREE_FORM);
    int w = find_warning(&s, TW_SERIAL_W_LENGTH);
    cr_assert_geq(w, 0);
    cr_assert(strstr(s.warnings[w].text, "4 characters"), "%s", s.warnings[w].text);
    norm_ok("ABCDEFGHJKLMN", NULL, &s);
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_LENGTH), 0);
    norm_ok("ABC12", NULL, &s);
    cr_assert_lt(find_warning(&s, TW_SERIAL_W_LENGTH), 0);
    norm_ok("ABCDEFGHJKLM", NULL, &s);
    cr_assert_lt(find_warning(&s, TW_SERIAL_W_LENGTH), 0);
}

/* ---- maker hints ------------------------------------------------------- */

Test(serial, maker_hints)
{
    cr_assert_eq(tw_serial_maker_parse("Yamaha"), TW_SERIAL_MAKER_YAMAHA);
    cr_assert_eq(tw_serial_maker_parse("YAMAHA MOTOR"), TW_SERIAL_MAKER_YAMAHA);
    cr_assert_eq(tw_serial_maker_parse("\xef\xbc\xb9" "amaha"), TW_SERIAL_MAKER_YAMAHA);
    cr_assert_eq(tw_serial_maker_parse("mercury marine"), TW_SERIAL_MAKER_MERCURY);
    cr_assert_eq(tw_serial_maker_parse("Mariner"), TW_SERIAL_MAKER_MERCURY);
    cr_assert_eq(tw_serial_maker_parse("Suzuki"), TW_SERIAL_MAKER_SUZUKI);
    cr_assert_eq(tw_serial_maker_parse("Honda Marine"), TW_SERIAL_MAKER_HONDA);
    cr_assert_eq(tw_serial_maker_parse("Tohatsu"), TW_SERIAL_MAKER_TOHATSU);
    cr_assert_eq(tw_serial_maker_parse("Parsun"), TW_SERIAL_MAKER_PARSUN);
    cr_assert_eq(tw_serial_maker_parse("HIDEA"), TW_SERIAL_MAKER_HIDEA);
    cr_assert_eq(tw_serial_maker_parse("Acme"), TW_SERIAL_MAKER_OTHER);
    cr_assert_eq(tw_serial_maker_parse(NULL), TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_eq(tw_serial_maker_parse(""), TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_eq(tw_serial_maker_parse("  - "), TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_eq(tw_serial_maker_parse("unknown"), TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_eq(tw_serial_maker_parse("N/A"), TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_eq(tw_serial_maker_parse("Hidea (Yamaha copy)"), TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_eq(tw_serial_maker_parse("\xff"), TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_str_eq(tw_serial_maker_name(TW_SERIAL_MAKER_YAMAHA), "Yamaha");
    cr_assert_str_eq(tw_serial_format_name(TW_SERIAL_FORMAT_FREE_FORM), "free-form");
}

Test(serial, ambiguous_or_invalid_hint_is_warned_and_not_fixed)
{
    tw_serial s;
    norm_ok("6E5-X-1O16523", "Hidea (Yamaha copy)", &s);
    cr_assert_eq(s.maker, TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_FREE_FORM);
    cr_assert_str_eq(s.key, "6E5X1O16523");
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_MAKER_AMBIGUOUS), 0);
    norm_ok("6E5-X-1O16523", "Yamaha\xc3", &s);
    cr_assert_eq(s.maker, TW_SERIAL_MAKER_UNKNOWN);
    cr_assert_geq(find_warning(&s, TW_SERIAL_W_MAKER_INVALID), 0);
}

/* ---- partial reads and matching ---------------------------------------- */

Test(serial, partial_reading_and_matcher)
{
    tw_serial s, full, other;
    norm_ok("6E5X10?65?3", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X10?65?3");
    cr_assert(s.partial);
    cr_assert_eq(s.unknown, 2);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_YAMAHA, "unknown characters fit any position");
    int w = find_warning(&s, TW_SERIAL_W_PARTIAL);
    cr_assert_geq(w, 0);
    cr_assert(strstr(s.warnings[w].text, "2 of 11"), "%s", s.warnings[w].text);

    norm_ok("6E5-X-1016523", "Yamaha", &full);
    norm_ok("6E5-X-1099999", "Yamaha", &other);
    size_t agree = 99;
    cr_assert(tw_serial_match(s.loose_key, full.loose_key, &agree));
    cr_assert_eq(agree, 9);
    cr_assert_not(tw_serial_match(s.loose_key, other.loose_key, &agree));
    cr_assert_eq(agree, 0);
    cr_assert(tw_serial_match(full.loose_key, s.loose_key, NULL), "symmetric");
}

Test(serial, unknown_markers)
{
    tw_serial s;
    norm_ok("6E5-X-1*16_23", "Yamaha", &s);
    cr_assert_str_eq(s.key, "6E5X1?16?23");
    cr_assert_eq(s.unknown, 2);
    norm_ok("6E5X1\xef\xbf\xbd" "16523", NULL, &s); /* U+FFFD */
    cr_assert_str_eq(s.key, "6E5X1?16523");
    norm_ok("6E5X1\xef\xbc\x9f" "16523", NULL, &s); /* fullwidth question mark */
    cr_assert_str_eq(s.key, "6E5X1?16523");
}

Test(serial, matcher_rules)
{
    size_t agree;
    cr_assert(tw_serial_match("6E5X1O16523", "6E5X1016523", &agree), "strict keys are folded");
    cr_assert_eq(agree, 11);
    cr_assert(tw_serial_match("0P096282", "OP096282", NULL));
    cr_assert(tw_serial_match("5B2G", "S8Z6", NULL));
    cr_assert_not(tw_serial_match("6E5X1016523", "6E5X101652", NULL), "lengths differ");
    cr_assert_not(tw_serial_match("6E5X1016523", "6E5X1016524", NULL));
    cr_assert_not(tw_serial_match(NULL, "A", NULL));
    cr_assert_not(tw_serial_match("A", NULL, &agree));
    cr_assert(tw_serial_match("???", "ABC", &agree));
    cr_assert_eq(agree, 0, "all-unknown matches with no agreement");
    cr_assert(tw_serial_match("", "", &agree));
}

Test(serial, fold_and_fix_helpers)
{
    char out[32];
    cr_assert_eq(tw_serial_fold("0OQD1IL5S8B2Z6GAEX?9", out, sizeof out), 0);
    cr_assert_str_eq(out, "000011155882266AEX?9");
    cr_assert_eq(tw_serial_fold("ABCDEF", out, 3), -1, "does not fit");
    cr_assert_str_empty(out);
    cr_assert_eq(tw_serial_fold(NULL, out, sizeof out), -1);

    cr_assert_eq(tw_serial_fix_char('O', "0123456789"), '0');
    cr_assert_eq(tw_serial_fix_char('D', "0123456789"), '0');
    cr_assert_eq(tw_serial_fix_char('L', "0123456789"), '1');
    cr_assert_eq(tw_serial_fix_char('A', "0123456789"), 0, "A has no digit look-alike");
    cr_assert_eq(tw_serial_fix_char('0', "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 'O');
    cr_assert_eq(tw_serial_fix_char('1', "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 'I');
    cr_assert_eq(tw_serial_fix_char('6', "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 'G');
    cr_assert_eq(tw_serial_fix_char('7', "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 0);
    cr_assert_eq(tw_serial_fix_char('0', "ABCDEFGHIJKL"), 'D', "month: 0 can only be D");
    cr_assert_eq(tw_serial_fix_char('1', "SLXUNJ"), 'L');
    cr_assert_eq(tw_serial_fix_char('?', "0123456789"), '?');
    cr_assert_eq(tw_serial_fix_char('7', "0123456789"), '7');
    cr_assert_eq(tw_serial_fix_char(0, "0123456789"), 0);
    cr_assert_eq(tw_serial_fold_char('Q'), '0');
    cr_assert_eq(tw_serial_fold_char('A'), 'A');
}

/* ---- errors ------------------------------------------------------------ */

Test(serial, errors)
{
    tw_serial s;
    cr_assert_eq(norm_err("", 0, "Yamaha", &s), TW_SERIAL_ERR_EMPTY);
    cr_assert_eq(norm_err(NULL, 0, "Yamaha", &s), TW_SERIAL_ERR_EMPTY);
    cr_assert_eq(norm_err(" - / . ", 7, NULL, &s), TW_SERIAL_ERR_EMPTY);
    cr_assert_eq(norm_err("?\?-**", 5, NULL, &s), TW_SERIAL_ERR_EMPTY);
    cr_assert(strstr(s.error_text, "readable"), "%s", s.error_text);
    cr_assert_eq(norm_err(NULL, 3, NULL, &s), TW_SERIAL_ERR_ARG);

    const char *emoji = "6E5X\xf0\x9f\x98\x80" "1016523";
    cr_assert_eq(norm_err(emoji, strlen(emoji), "Yamaha", &s), TW_SERIAL_ERR_CHAR);
    cr_assert(strstr(s.error_text, "U+1F600"), "%s", s.error_text);
    cr_assert_eq(norm_err("6E5\x07X", 5, NULL, &s), TW_SERIAL_ERR_CHAR);
    cr_assert(strstr(s.error_text, "control"), "%s", s.error_text);
    cr_assert_eq(norm_err("6E5\tX", 5, NULL, &s), TW_SERIAL_ERR_CHAR);
    cr_assert_eq(norm_err("6E5\0X", 5, NULL, &s), TW_SERIAL_ERR_CHAR, "embedded NUL");
    cr_assert_eq(norm_err("SN:12345", 8, NULL, &s), TW_SERIAL_ERR_CHAR);
    const char *zhe = "6E5\xd0\x96" "1016523"; /* Cyrillic Zhe has no look-alike */
    cr_assert_eq(norm_err(zhe, strlen(zhe), NULL, &s), TW_SERIAL_ERR_CHAR);
    cr_assert(strstr(s.error_text, "no Latin look-alike"), "%s", s.error_text);
    const char *han = "\xe5\xb1\xb1" "12345"; /* a Han character */
    cr_assert_eq(norm_err(han, strlen(han), "Parsun", &s), TW_SERIAL_ERR_CHAR);

    cr_assert_eq(norm_err("6E5\xff" "1016523", 11, NULL, &s), TW_SERIAL_ERR_UTF8);
    cr_assert(strstr(s.error_text, "byte 4"), "%s", s.error_text);
    cr_assert_eq(norm_err("\xc0\xaf", 2, NULL, &s), TW_SERIAL_ERR_UTF8, "overlong");
    cr_assert_eq(norm_err("\xed\xa0\x80", 3, NULL, &s), TW_SERIAL_ERR_UTF8, "surrogate");
    cr_assert_eq(norm_err("6E5\xd0", 4, NULL, &s), TW_SERIAL_ERR_UTF8, "truncated sequence");

    char big[TW_SERIAL_RAW_MAX + 2];
    memset(big, 'A', sizeof big);
    cr_assert_eq(norm_err(big, TW_SERIAL_RAW_MAX + 1, NULL, &s), TW_SERIAL_ERR_TOO_LONG);
    norm_ok("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, &s);
    cr_assert_eq(s.len, TW_SERIAL_RAW_MAX, "exactly the limit is accepted");
    /* NFKC expansion past the key limit: 17 x U+3389 SQUARE KCAL = 51 bytes, 68 chars. */
    char kcal[64] = "";
    for (int i = 0; i < 17; i++)
        strcat(kcal, "\xe3\x8e\x89");
    cr_assert_eq(norm_err(kcal, strlen(kcal), NULL, &s), TW_SERIAL_ERR_TOO_LONG);

    cr_assert_eq(tw_serial_normalize("6E5", 3, NULL, NULL), TW_SERIAL_ERR_ARG);
}

Test(serial, clean_reports_what_it_mapped)
{
    char out[TW_SERIAL_KEY_MAX + 1];
    tw_serial_clean_info info;
    cr_assert_eq(tw_serial_clean("a\xd0\x92\xce\x92?-b", 8, out, sizeof out, &info), TW_SERIAL_OK);
    cr_assert_str_eq(out, "ABB?B");
    cr_assert_eq(info.len, 5);
    cr_assert_eq(info.cyrillic, 1);
    cr_assert_eq(info.greek, 1);
    cr_assert_eq(info.unknown, 1);
    cr_assert_eq(tw_serial_clean("ABCDEF", 6, out, 4, &info), TW_SERIAL_ERR_TOO_LONG);
    cr_assert_str_empty(out);
    cr_assert_eq(tw_serial_clean("A", 1, out, sizeof out, NULL), TW_SERIAL_ERR_ARG);
}

Test(serial, normalising_a_key_again_changes_nothing)
{
    struct {
        const char *raw, *maker;
    } cases[] = {
        {"6E5-X-IOI6523", "Yamaha"}, {"OP096282", "Mercury"},     {"14OO3F-510001", "Suzuki"},
        {"6E5X10?65?3", "Yamaha"},   {"ps-2023 0815a", "Parsun"}, {"6E5-Q-1O16523", "Yamaha"},
        {"00096282", "Mercury"},     {"AB12", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tw_serial a, b;
        norm_ok(cases[i].raw, cases[i].maker, &a);
        norm_ok(a.key, cases[i].maker, &b);
        cr_assert_str_eq(b.key, a.key, "case %zu", i);
        cr_assert_str_eq(b.loose_key, a.loose_key, "case %zu", i);
        cr_assert_eq(b.format, a.format, "case %zu", i);
        cr_assert_eq(b.fixes, 0, "case %zu: a key needs no more fixes", i);
        char folded[TW_SERIAL_KEY_MAX + 1];
        cr_assert_eq(tw_serial_fold(a.key, folded, sizeof folded), 0);
        cr_assert_str_eq(folded, a.loose_key, "case %zu: loose key is the folded key", i);
    }
}

Test(serial, most_warnings_fit)
{
    tw_serial s;
    /* Suzuki with a letter: 5 Cyrillic O in digit positions, 0 in the letter
     * position, 5 Greek Omicron and one unknown in digit positions: 11
     * suspects, weak format, Cyrillic, Greek and partial. */
    char raw[64] = "";
    for (int i = 0; i < 5; i++)
        strcat(raw, "\xd0\x9e");
    strcat(raw, "0");
    for (int i = 0; i < 5; i++)
        strcat(raw, "\xce\x9f");
    strcat(raw, "?");
    norm_ok(raw, "Suzuki", &s);
    cr_assert_eq(s.format, TW_SERIAL_FORMAT_SUZUKI);
    cr_assert_str_eq(s.key, "OOOOO0OOOOO?");
    cr_assert_eq(count_warnings(&s, TW_SERIAL_W_OCR_SUSPECT), 11);
    cr_assert_eq(s.nwarnings, 15);
    cr_assert_not(s.warnings_truncated);
    for (size_t i = 0; i < s.nwarnings; i++)
        cr_assert_str_not_empty(s.warnings[i].text);
}
