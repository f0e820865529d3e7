/* tw_cluster: party clusters (issue 7). Observations of parties (persons,
 * companies, agencies) as records name them are joined into clusters when
 * they share an identifier or a name at the same address, and every cluster
 * carries the links that tied it, so an investigator sees why.
 *
 * Pure: no I/O, no database, no global state; reentrant. One call takes all
 * observations and returns one result that owns everything it points to.
 *
 * Links (union-find with path compression and union by size):
 *   - the same identifier (kind and normalised value, as tw_ident produces
 *     them): phone, e-mail, VAT number, company number, identity document.
 *     TW_CLUSTER_ID_OTHER never links;
 *   - the same party kind, the same name key and the same non-empty address
 *     key.
 * Agencies are never joined with persons or companies: identifiers are
 * matched only within agencies, or only within persons and companies
 * together (a person and a company sharing a phone are linked).
 *
 * Name keys are tw_place_key (lib/domain/tw_places.h, flags 0): Unicode case
 * folding, NFKD without combining marks, runs of punctuation and blanks
 * collapsed to one space ("Müller-Lüdenscheidt GmbH" and "MULLER
 * LUDENSCHEIDT gmbh" meet). A name that is not valid UTF-8, longer than
 * TW_PLACE_NAME_MAX bytes or without a letter or digit has an empty key and
 * links by identifiers only. Address keys are compared byte for byte: the
 * caller normalises them (a resolved place key, for instance).
 *
 * Too common: an identifier carried by observations of more than
 * max_names_per_identifier distinct non-empty name keys (a marketplace's
 * shared phone, a carrier's switchboard) links nothing and is listed in
 * the result instead. Observations without a name do not count.
 *
 * Determinism: the observations are put in a canonical order first (event
 * id, field path, kind, name, address, identifiers), so any permutation of
 * the same input gives the same result. Clusters are ordered by their
 * smallest event id (ties: canonical order), members within a cluster in
 * canonical order, links in the order they were found (identifiers by
 * agency side, kind, value; then names and addresses). Only links that joined two parts are listed (a spanning tree of
 * the cluster: n members, n - 1 links); redundant evidence is not. */
#ifndef TW_CLUSTER_H
#define TW_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "tw_arena.h"

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

/* Default for tw_cluster_options.max_names_per_identifier. */
#define TW_CLUSTER_DEFAULT_MAX_NAMES 50

typedef enum {
    TW_CLUSTER_PERSON = 0,
    TW_CLUSTER_COMPANY,
    TW_CLUSTER_AGENCY,
} tw_cluster_party_kind;

typedef enum {
    TW_CLUSTER_ID_OTHER = 0, /* kept, never links */
    TW_CLUSTER_ID_PHONE,
    TW_CLUSTER_ID_EMAIL,
    TW_CLUSTER_ID_VAT,
    TW_CLUSTER_ID_COMPANY_NUMBER,
    TW_CLUSTER_ID_IDENTITY_DOCUMENT,
} tw_cluster_id_kind;

/* One normalised identifier (value as tw_ident produced it). */
typedef struct {
    tw_cluster_id_kind kind;
    const char *value; /* NULL or "" : ignored */
} tw_cluster_ident;

/* One observation of a party in a record. Borrowed for the call only. */
typedef struct {
    tw_cluster_party_kind kind;
    const char *name;    /* as sent; NULL = none; folded by the module */
    const char *address; /* normalised address/place key; NULL or "" = none */
    const tw_cluster_ident *idents;
    size_t n_idents;
    int64_t event_id;  /* evidence: the event ... */
    const char *field; /* ... and the field path ("purchase.buyer"); NULL = "" */
} tw_cluster_obs;

typedef struct {
    /* An identifier carried by more distinct names than this links nothing
     * and is reported as too common; 0 disables the cut-off. */
    size_t max_names_per_identifier;
} tw_cluster_options;

/* An observation as the result holds it (strings owned by the result). */
typedef struct {
    int64_t event_id;
    const char *field;
    tw_cluster_party_kind kind;
    const char *name_key; /* "" when none */
    const char *address;  /* "" when none */
    size_t input_index;   /* position in the caller's array */
    size_t cluster;       /* index into clusters */
} tw_cluster_member;

typedef enum {
    TW_CLUSTER_VIA_IDENTIFIER = 0,
    TW_CLUSTER_VIA_NAME_ADDRESS,
} tw_cluster_via;

/* Why members a and b (indices into members) are in one cluster. */
typedef struct {
    size_t a, b;
    tw_cluster_via via;
    tw_cluster_id_kind id_kind; /* VIA_IDENTIFIER */
    const char *value;          /* identifier value, or the name key */
    const char *address;        /* VIA_NAME_ADDRESS: the address key; else "" */
} tw_cluster_link;

/* Cluster i: members[first_member .. first_member + n_members) and
 * links[first_link .. first_link + n_links); n_links == n_members - 1. */
typedef struct {
    size_t first_member, n_members;
    size_t first_link, n_links;
    int64_t min_event_id;
} tw_cluster;

/* An identifier that was not used because too many names share it. */
typedef struct {
    tw_cluster_id_kind kind;
    const char *value;
    int agencies;        /* 1: among agencies, 0: among persons and companies */
    size_t observations; /* observations carrying it */
    size_t names;        /* distinct non-empty name keys among them */
} tw_cluster_common;

typedef struct {
    tw_cluster_member *members;
    size_t n_members;
    tw_cluster *clusters;
    size_t n_clusters;
    tw_cluster_link *links;
    size_t n_links;
    tw_cluster_common *too_common; /* sorted by agencies, kind, value */
    size_t n_too_common;
    tw_arena arena; /* owns everything above */
} tw_cluster_result;

/* Fill *opt with the defaults (max_names_per_identifier =
 * TW_CLUSTER_DEFAULT_MAX_NAMES). Cannot fail. */
void tw_cluster_options_init(tw_cluster_options *opt);

/* Cluster obs[0..n) (obs may be NULL when n is 0; opt NULL means the
 * defaults). On success returns 0 and sets *out to a new result the caller
 * frees with tw_cluster_result_free; every observation is a member of
 * exactly one cluster (singletons included). Returns -1 with *out = NULL
 * and errno EINVAL (obs NULL with n > 0, a party or identifier kind out of
 * range, idents NULL with n_idents > 0) or ENOMEM. Memory is linear in the
 * input size (observations, identifiers and string bytes). */
int tw_cluster_build(const tw_cluster_obs *obs, size_t n, const tw_cluster_options *opt,
                     tw_cluster_result **out) TW_WUR;

/* Release a result and everything it owns. NULL is a no-op. */
void tw_cluster_result_free(tw_cluster_result *r);

/* Identifier kind from the names tw_record derives ("phone", "email",
 * "vat", "company_number", "identity_document"); anything else gives
 * TW_CLUSTER_ID_OTHER. NULL is OTHER. */
tw_cluster_id_kind tw_cluster_id_kind_from_name(const char *name);

/* Stable names of the kinds above ("other" for OTHER or out of range). */
const char *tw_cluster_id_kind_name(tw_cluster_id_kind kind);

/* "person", "company", "agency"; "unknown" otherwise. */
const char *tw_cluster_party_kind_name(tw_cluster_party_kind kind);

#endif
