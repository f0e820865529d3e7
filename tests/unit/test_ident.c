/* Unit tests for tw_ident: each normaliser with the forms providers send
 * and the ones it must refuse rather than guess. */
#include <criterion/criterion.h>
#include <string.h>

#include "tw_ident.h"

typedef tw_ident_status (*with_cc)(const char *, const char *, char *, size_t);

static void expect_cc(with_cc f, const char *in, const char *cc, tw_ident_status want,
                      const char *value)
{
    char out[TW_IDENT_OUT];
    memset(out, 'x', sizeof out);
    tw_ident_status st = f(in, cc, out, sizeof out);
    cr_assert_eq(st, want, "'%s' (%s): %s, expected %s", in, cc ? cc : "-",
                 tw_ident_status_name(st), tw_ident_status_name(want));
    cr_assert_str_eq(out, value, "'%s' (%s)", in, cc ? cc : "-");
}

static void expect_plain(tw_ident_status (*f)(const char *, char *, size_t), const char *in,
                         tw_ident_status want, const char *value)
{
    char out[TW_IDENT_OUT];
    memset(out, 'x', sizeof out);
    tw_ident_status st = f(in, out, sizeof out);
    cr_assert_eq(st, want, "'%s': %s, expected %s", in, tw_ident_status_name(st),
                 tw_ident_status_name(want));
    cr_assert_str_eq(out, value, "'%s'", in);
}

Test(ident, vat_gets_its_country_prefix)
{
    expect_cc(tw_ident_vat, "811907980", "DE", TW_IDENT_OK, "DE811907980");
    expect_cc(tw_ident_vat, "811 907 980", "de", TW_IDENT_OK, "DE811907980");
    expect_cc(tw_ident_vat, "de 811.907-980", NULL, TW_IDENT_OK, "DE811907980");
    expect_cc(tw_ident_vat, "DE811907980", "DE", TW_IDENT_OK, "DE811907980");
    expect_cc(tw_ident_vat, "fr 40 303 265 045", "FR", TW_IDENT_OK, "FR40303265045");
    expect_cc(tw_ident_vat, "NL 8203.26.128.B01", "NL", TW_IDENT_OK, "NL820326128B01");
    /* Greece files as EL, whichever way it is written. */
    expect_cc(tw_ident_vat, "094259216", "GR", TW_IDENT_OK, "EL094259216");
    expect_cc(tw_ident_vat, "GR094259216", "GR", TW_IDENT_OK, "EL094259216");
    expect_cc(tw_ident_vat, "XI 123456789", "GB", TW_IDENT_OK, "XI123456789");
}

Test(ident, vat_refuses_to_guess)
{
    expect_cc(tw_ident_vat, "811907980", NULL, TW_IDENT_NEEDS_COUNTRY, "");
    expect_cc(tw_ident_vat, "811907980", "", TW_IDENT_NEEDS_COUNTRY, "");
    expect_cc(tw_ident_vat, "811_907_980", "DE", TW_IDENT_BAD_CHARS, "");
    expect_cc(tw_ident_vat, "81190798ü", "DE", TW_IDENT_BAD_CHARS, "");
    expect_cc(tw_ident_vat, " .-/ ", "DE", TW_IDENT_EMPTY, "");
    expect_cc(tw_ident_vat, "DE1", "DE", TW_IDENT_BAD_LENGTH, "");
    expect_cc(tw_ident_vat, "DEABCDEF", "DE", TW_IDENT_BAD_LENGTH, "");
    expect_cc(tw_ident_vat, "123456789012345", "DE", TW_IDENT_BAD_LENGTH, "");
    /* A prefix naming another country is kept as given, and flagged. */
    expect_cc(tw_ident_vat, "FR40303265045", "DE", TW_IDENT_COUNTRY_MISMATCH, "FR40303265045");
}

Test(ident, phone_to_e164)
{
    expect_cc(tw_ident_phone, "+49 1512 3456789", NULL, TW_IDENT_OK, "+4915123456789");
    expect_cc(tw_ident_phone, "01512 3456789", "DE", TW_IDENT_OK, "+4915123456789");
    expect_cc(tw_ident_phone, "0151/234-567.89", "DE", TW_IDENT_OK, "+4915123456789");
    expect_cc(tw_ident_phone, "0044 20 7946 0958", "DE", TW_IDENT_OK, "+442079460958");
    expect_cc(tw_ident_phone, "+44 (0)20 7946 0958", NULL, TW_IDENT_OK, "+442079460958");
    expect_cc(tw_ident_phone, "+49 01512 3456789", NULL, TW_IDENT_OK, "+4915123456789");
    expect_cc(tw_ident_phone, "06 00 00 00 00", "FR", TW_IDENT_OK, "+33600000000");
    expect_cc(tw_ident_phone, " (0321) 12 34 56 ", "FR", TW_IDENT_OK, "+33321123456");
    /* Italy keeps its leading 0; Spain and Poland have no trunk prefix. */
    expect_cc(tw_ident_phone, "06 6982 1234", "IT", TW_IDENT_OK, "+390669821234");
    expect_cc(tw_ident_phone, "+39 06 6982 1234", NULL, TW_IDENT_OK, "+390669821234");
    expect_cc(tw_ident_phone, "612 345 678", "ES", TW_IDENT_OK, "+34612345678");
    expect_cc(tw_ident_phone, "512 345 678", "PL", TW_IDENT_OK, "+48512345678");
    /* Hungary dials 06, Lithuania 8 or 0, the US and Canada 1. */
    expect_cc(tw_ident_phone, "06 30 123 4567", "HU", TW_IDENT_OK, "+36301234567");
    expect_cc(tw_ident_phone, "8 612 34567", "LT", TW_IDENT_OK, "+37061234567");
    expect_cc(tw_ident_phone, "0 612 34567", "LT", TW_IDENT_OK, "+37061234567");
    expect_cc(tw_ident_phone, "(202) 555-0143", "US", TW_IDENT_OK, "+12025550143");
    expect_cc(tw_ident_phone, "1 202 555 0143", "CA", TW_IDENT_OK, "+12025550143");
    /* Supply-chain countries. */
    expect_cc(tw_ident_phone, "0532 123 45 67", "TR", TW_IDENT_OK, "+905321234567");
    expect_cc(tw_ident_phone, "088 123 4567", "BG", TW_IDENT_OK, "+359881234567");
    expect_cc(tw_ident_phone, "+86 138 0013 8000", "DE", TW_IDENT_OK, "+8613800138000");
}

Test(ident, phone_unparseable_is_never_guessed)
{
    expect_cc(tw_ident_phone, "01512 3456789", NULL, TW_IDENT_NEEDS_COUNTRY, "");
    expect_cc(tw_ident_phone, "01512 3456789", "ZZ", TW_IDENT_UNKNOWN_COUNTRY, "");
    expect_cc(tw_ident_phone, "1512 3456789", "DE", TW_IDENT_NO_TRUNK, "");
    expect_cc(tw_ident_phone, "+49 1512 3456789 ext 12", NULL, TW_IDENT_BAD_CHARS, "");
    expect_cc(tw_ident_phone, "call 0800", "DE", TW_IDENT_BAD_CHARS, "");
    expect_cc(tw_ident_phone, "+49+1512", NULL, TW_IDENT_BAD_CHARS, "");
    expect_cc(tw_ident_phone, "+49 1512 (0) 3456789", NULL, TW_IDENT_BAD_CHARS, "");
    expect_cc(tw_ident_phone, "+49 123", NULL, TW_IDENT_BAD_LENGTH, "");
    expect_cc(tw_ident_phone, "+49 1512 3456789 1234 5", NULL, TW_IDENT_BAD_LENGTH, "");
    expect_cc(tw_ident_phone, "+0 1512 3456789", NULL, TW_IDENT_BAD_LENGTH, "");
    expect_cc(tw_ident_phone, "+", NULL, TW_IDENT_BAD_LENGTH, "");
    expect_cc(tw_ident_phone, " - ", "DE", TW_IDENT_EMPTY, "");
}

Test(ident, email_lower_cased_and_trimmed)
{
    expect_plain(tw_ident_email, "  Jean.Dupont@Example.FR\t", TW_IDENT_OK,
                 "jean.dupont@example.fr");
    expect_plain(tw_ident_email, "a+b@mail.example.co.uk", TW_IDENT_OK, "a+b@mail.example.co.uk");
    const char *bad[] = {"jean.example.org", "@example.org", "jean@", "jean@example",
                         "jean@@example.org", "je an@example.org", "jean@example..org",
                         "jean@-example.org", "jean@example-.org", "jean@.example.org",
                         "jean@example.org.", "<jean@example.org>", "jean,paul@example.org"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        expect_plain(tw_ident_email, bad[i], TW_IDENT_BAD_EMAIL, "");
    expect_plain(tw_ident_email, "   ", TW_IDENT_EMPTY, "");
    char local[80];
    memset(local, 'a', 65);
    strcpy(local + 65, "@example.org");
    expect_plain(tw_ident_email, local, TW_IDENT_BAD_EMAIL, "");
}

Test(ident, codes_upper_cased_without_separators)
{
    expect_plain(tw_ident_code, "hrb 123.45-b", TW_IDENT_OK, "HRB12345B");
    expect_plain(tw_ident_code, "C01X00T47", TW_IDENT_OK, "C01X00T47");
    expect_plain(tw_ident_code, "12/345/6789", TW_IDENT_OK, "123456789");
    expect_plain(tw_ident_code, "AB#123", TW_IDENT_BAD_CHARS, "");
    expect_plain(tw_ident_code, "- -", TW_IDENT_EMPTY, "");
}

Test(ident, limits_and_table)
{
    char big[TW_IDENT_MAX + 2];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char out[TW_IDENT_OUT];
    cr_assert_eq(tw_ident_code(big, out, sizeof out), TW_IDENT_TOO_LONG);
    cr_assert_str_eq(out, "");
    cr_assert_eq(tw_ident_code("ABC", out, 4), TW_IDENT_TOO_LONG, "out smaller than TW_IDENT_OUT");
    cr_assert_eq(tw_ident_email(NULL, out, sizeof out), TW_IDENT_EMPTY);
    cr_assert_str_eq(tw_ident_calling_code("de"), "49");
    cr_assert_str_eq(tw_ident_calling_code("GB"), "44");
    cr_assert_str_eq(tw_ident_calling_code("CA"), "1");
    cr_assert_str_eq(tw_ident_calling_code("TR"), "90");
    cr_assert_null(tw_ident_calling_code("ZZ"));
    cr_assert_null(tw_ident_calling_code("D"));
    cr_assert_str_eq(tw_ident_status_name(TW_IDENT_NO_TRUNK), "no_trunk");
    cr_assert_str_eq(tw_ident_status_name((tw_ident_status)99), "unknown");
}
