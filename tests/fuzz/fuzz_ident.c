/* Fuzz target for tw_ident (party identifier normalisation).
 *
 * Input layout: byte 0 chooses the normaliser (vat, phone, email, code),
 * bytes 1-2 the country ("--" for none); the rest is the value. Checked
 * invariants: a failure leaves "" in the output, a success only the
 * characters its form allows (VAT and codes [A-Z0-9] with a two-letter VAT
 * prefix, E.164 '+' and 8-15 digits not starting with 0, e-mail without
 * upper-case ASCII or blanks, with one '@'), and normalising a result again
 * gives the same result (idempotence). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_ident.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static int all_of(const char *s, const char *set)
{
    return strspn(s, set) == strlen(s);
}

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > TW_IDENT_MAX + 16)
        return 0;
    char cc[3] = {(char)data[1], (char)data[2], '\0'};
    const char *country = strcmp(cc, "--") == 0 ? NULL : cc;
    char *in = malloc(size - 2);
    if (!in)
        return 0;
    memcpy(in, data + 3, size - 3);
    in[size - 3] = '\0'; /* an embedded NUL just shortens the value */
    char out[TW_IDENT_OUT], again[TW_IDENT_OUT];
    tw_ident_status st, st2;
    switch (data[0] % 4) {
    case 0:
        st = tw_ident_vat(in, country, out, sizeof out);
        if (st != TW_IDENT_OK && st != TW_IDENT_COUNTRY_MISMATCH)
            break;
        CHECK(strlen(out) >= 4 && strlen(out) <= 16 && all_of(out, ALNUM));
        CHECK(out[0] >= 'A' && out[0] <= 'Z' && out[1] >= 'A' && out[1] <= 'Z');
        st2 = tw_ident_vat(out, country, again, sizeof again);
        CHECK(st2 == st && strcmp(again, out) == 0);
        break;
    case 1:
        st = tw_ident_phone(in, country, out, sizeof out);
        if (st != TW_IDENT_OK)
            break;
        CHECK(out[0] == '+' && out[1] != '0' && all_of(out + 1, "0123456789"));
        CHECK(strlen(out) >= 9 && strlen(out) <= 16);
        st2 = tw_ident_phone(out, country, again, sizeof again);
        CHECK(st2 == TW_IDENT_OK && strcmp(again, out) == 0);
        break;
    case 2:
        st = tw_ident_email(in, out, sizeof out);
        if (st != TW_IDENT_OK)
            break;
        CHECK(strchr(out, '@') && strchr(out, '@') == strrchr(out, '@'));
        for (const char *p = out; *p; p++)
            CHECK(!(*p >= 'A' && *p <= 'Z') && (unsigned char)*p > ' ');
        st2 = tw_ident_email(out, again, sizeof again);
        CHECK(st2 == TW_IDENT_OK && strcmp(again, out) == 0);
        break;
    default:
        st = tw_ident_code(in, out, sizeof out);
        if (st != TW_IDENT_OK)
            break;
        CHECK(out[0] && all_of(out, ALNUM));
        st2 = tw_ident_code(out, again, sizeof again);
        CHECK(st2 == TW_IDENT_OK && strcmp(again, out) == 0);
        break;
    }
    if (st != TW_IDENT_OK && st != TW_IDENT_COUNTRY_MISMATCH)
        CHECK(out[0] == '\0');
    CHECK(tw_ident_status_name(st)[0] != '\0');
    free(in);
    return 0;
}
