/* tw_ident: normalisation of party identifiers (VAT numbers, phone numbers,
 * e-mail addresses, company numbers and identity documents), so that
 * consumers compare identifiers without parsing free text again.
 *
 * Pure: no I/O, no allocation, no global state; every function writes into
 * the caller's buffer and is reentrant. Input is a NUL-terminated string as
 * a provider sent it (already checked to be UTF-8 without control
 * characters by the caller, but any bytes are handled safely).
 *
 * Nothing is guessed: a value that cannot be normalised under the rules
 * below gives a status other than TW_IDENT_OK and an empty output; callers
 * keep the raw value and warn.
 *
 * Calling codes: phone numbers in national form are completed with the
 * calling code of a country from a small static table (see tw_ident.c): the
 * European countries (EU, EFTA, the UK and Crown dependencies, the Balkans,
 * Turkey, Ukraine, Moldova, Belarus, Russia, the Caucasus), the US and
 * Canada, and the countries of origin and transit named in the supply-chain
 * reference and the main nationalities seen at launches (China, Vietnam,
 * Iran, Iraq, Syria, Afghanistan, Eritrea, Sudan, Egypt, ...). Each entry
 * has the trunk prefix dialled before national numbers ("0" in most of
 * Europe, "06" in Hungary, "8" and "0" in Lithuania, "8" in Russia and
 * Belarus, "1" in the US and Canada, none in Italy, Spain, Poland, Greece,
 * the Nordic countries and a few more). Debian ships libphonenumber only for
 * C++ and Java; we stay in C, so the table is the whole of our knowledge:
 * numbers are not checked against numbering plans, only their shape. */
#ifndef TW_IDENT_H
#define TW_IDENT_H

#include <stddef.h>

#define TW_IDENT_WUR __attribute__((warn_unused_result))

/* Longest accepted input (bytes); outputs never exceed it. */
#define TW_IDENT_MAX 256
/* Every function needs an output buffer of at least this size (smaller:
 * TW_IDENT_TOO_LONG). */
#define TW_IDENT_OUT (TW_IDENT_MAX + 8)

typedef enum {
    TW_IDENT_OK = 0,
    TW_IDENT_EMPTY,            /* nothing but blanks and separators */
    TW_IDENT_TOO_LONG,         /* longer than TW_IDENT_MAX, or out too small */
    TW_IDENT_BAD_CHARS,        /* characters that cannot be part of it */
    TW_IDENT_NEEDS_COUNTRY,    /* national form, and no country to complete it */
    TW_IDENT_UNKNOWN_COUNTRY,  /* the country is not in the calling-code table */
    TW_IDENT_BAD_LENGTH,       /* too few or too many digits / characters */
    TW_IDENT_COUNTRY_MISMATCH, /* VAT prefix names another country (output is set) */
    TW_IDENT_BAD_EMAIL,        /* not local@domain.tld */
    TW_IDENT_NO_TRUNK,         /* national form without the country's trunk prefix */
} tw_ident_status;

/* VAT number with its country prefix: blanks, dots, dashes and slashes
 * removed, ASCII letters upper-cased; the rest must be A-Z and 0-9. Starting
 * with two letters, they are the prefix ("de 811.907.980" → "DE811907980");
 * otherwise the prefix of `country` (ISO 3166-1 alpha-2, may be NULL) is
 * put in front ("811907980", "DE" → "DE811907980"). Greece's VAT prefix is
 * EL (country GR and a "GR" prefix both give "EL..."); a UK number may carry
 * XI (Northern Ireland). 2 to 14 characters, at least one a digit, must
 * follow the prefix.
 * Returns TW_IDENT_OK with the number in out; TW_IDENT_COUNTRY_MISMATCH with
 * the number (its own prefix kept) in out when the prefix is not country's;
 * otherwise another status and out = "". */
tw_ident_status tw_ident_vat(const char *in, const char *country, char *out,
                             size_t outlen) TW_IDENT_WUR;

/* Phone number in E.164 ("+4915123456789"). Accepted characters: digits,
 * blanks, '.', '-', '/', '(' and ')', and one leading '+'. International
 * form: a leading '+' or "00" ("0044 20 ..."); a "(0)" after the calling
 * code is dropped ("+44 (0)20 ...") and so is a lone trunk 0 right after a
 * calling code whose trunk prefix is "0" ("+49 01512 ..."). National form:
 * needs `country`; its trunk prefix, when the number starts with it, is
 * removed and its calling code put in front ("01512 3456789", "DE" →
 * "+4915123456789"); a national number that does not start with the trunk
 * prefix of a country that has one is TW_IDENT_NO_TRUNK (it may be a
 * foreign number without its '+': not guessed). The result must have 8 to 15 digits and not start
 * with 0. Returns TW_IDENT_OK with the number in out, or another status
 * and out = "". */
tw_ident_status tw_ident_phone(const char *in, const char *country, char *out,
                               size_t outlen) TW_IDENT_WUR;

/* E-mail address, trimmed of blanks and with ASCII letters lower-cased
 * (non-ASCII bytes kept as they are). The shape must be local@domain: one
 * '@', a local part of 1-64 bytes, a domain of at least two labels separated
 * by single dots, labels not starting or ending with '-', no blanks, and none
 * of ()<>[]\,;:" anywhere. Returns TW_IDENT_OK with the address in out, or
 * another status (TW_IDENT_BAD_EMAIL for the shape) and out = "". */
tw_ident_status tw_ident_email(const char *in, char *out, size_t outlen) TW_IDENT_WUR;

/* Company number or identity document number: blanks, dots, dashes and
 * slashes removed, ASCII letters upper-cased ("hrb 123.45-b" → "HRB12345B");
 * the rest must be A-Z and 0-9. Returns TW_IDENT_OK with the code in out, or
 * another status and out = "". */
tw_ident_status tw_ident_code(const char *in, char *out, size_t outlen) TW_IDENT_WUR;

/* Calling code of an ISO 3166-1 alpha-2 country ("DE" → "49", "GB" → "44",
 * "CA" → "1"), case-insensitive; NULL when the table lacks it. Static. */
const char *tw_ident_calling_code(const char *country);

/* Stable snake_case names: "ok", "empty", "too_long", "bad_chars",
 * "needs_country", "unknown_country", "bad_length", "country_mismatch",
 * "bad_email", "no_trunk"; "unknown" otherwise. */
const char *tw_ident_status_name(tw_ident_status st);

#endif
