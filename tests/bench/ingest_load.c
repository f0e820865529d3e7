/* tidewatch-ingest-load: a load generator for IngestService.SubmitStream,
 * and the client side of the baselines it is compared with.
 *
 * Generates N realistic records deterministically (record i depends only on
 * the seed, the reference prefix, the anchor time and i): retail purchases
 * in Germany, shipments towards the coast and seizures by police, customs
 * and border agencies, with engines (Yamaha, Parsun, Hidea, Tohatsu,
 * Suzuki, Mercury) carrying serials in each maker's format, inflatable
 * boats with EU CIN hull numbers, and places from the hub table and the
 * gazetteer. Each record has a unique (source, source_ref).
 *
 * --mix makes a mixed load instead of the happy path, still deterministic
 * from the seed: about 1% of the records are resubmissions of an earlier
 * record, byte for byte (answered DUPLICATE), about 1% are invalid (no
 * time at all, or a correction of another source's record: REJECTED and
 * quarantined) and about 0.5% are corrections (retractions, or a
 * replacement body with the time corrected) of an earlier record of the
 * same source. The earlier record is always in the same block of
 * MIX_BLOCK records, and a block is never split between streams, so every
 * stream's answer can be checked exactly.
 *
 * Load mode (default): C concurrent SubmitStream calls over K connections
 * share the N records; each call is fed on the fly while its unsent bytes
 * stay under a bound (tw_grpc_ccall_pending), so memory stays flat. Every
 * stream's SubmitStreamResponse is checked: accepted, duplicates, rejected
 * and conflicts must be exactly what was sent (happy path: all accepted,
 * unless --allow-rejected; --mix: the counts of each kind sent, conflicts
 * 0, and every listed rejection is one of the invalid records with the
 * expected error). Progress goes to stderr every second: records committed
 * (the daemon's accepted counter, read from its metrics endpoint with
 * --metrics) or else records queued for sending. The final line (stdout)
 * gives records, seconds and records/s, from the first byte sent to the
 * last answer received.
 *
 * Emit modes write the SAME records as rows of the events table, exactly
 * as tidewatch-ingest would store them (validated and normalised with
 * tw_record_validate, so derived, serial_keys and hull_keys are equal; the
 * digest computed as the daemon does; the corrected key of corrections):
 * --emit-copy FILE (COPY text format, for COPY baselines) and --emit-sql
 * FILE (one INSERT statement per line); with --mix, only the records that
 * are stored (no duplicates, no rejected ones), and --emit-quarantine FILE
 * writes the rejected ones as quarantine would hold them.
 *
 * --insert-baseline URL: the same rows (as --emit-copy would write them)
 * inserted with one prepared INSERT per record, autocommit (each row
 * durable on its own, as an ingest acknowledgement is), by --clients
 * concurrent clients, each a thread with its own libpq connection. The
 * rows are built before the clock starts; the final line gives rows,
 * seconds, rows/s, the clients' CPU time and the server backends' pids. */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tidewatch/v1/ingest.pb-c.h"
#include "tidewatch/v1/records.pb-c.h"
#include "tw_arena.h"
#include "tw_grpc_client.h"
#include "tw_hostport.h"
#include "tw_migrate.h"
#include "tw_places.h"
#include "tw_record.h"

#ifndef TW_DATA_DIR
#define TW_DATA_DIR "deploy/data"
#endif

#define SUBMIT_STREAM_PATH "/tidewatch.v1.IngestService/SubmitStream"
#define TWO_YEARS_S (2 * 365 * 86400LL)

/* ---- deterministic randomness ------------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n). */
static uint32_t rng_below(rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* 1 with probability pct/100. */
static int rng_pct(rng *r, unsigned pct)
{
    return rng_below(r, 100) < pct;
}

static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) / 9007199254740992.0;
}

#define PICK(r, arr) (&(arr)[rng_below((r), (uint32_t)(sizeof(arr) / sizeof((arr)[0])))])

/* ---- reference data -------------------------------------------------------- */

typedef struct town {
    const char *name, *postcode, *country;
} town;

/* Gazetteer names (each unique in its country there). */
static const town de_towns[] = {
    {"Leer", "26789", "DE"},          {"Bremen", "28195", "DE"},      {"Osnabrück", "49074", "DE"},
    {"Cuxhaven", "27472", "DE"},      {"Gelsenkirchen", "45879", "DE"}, {"Dortmund", "44135", "DE"},
    {"Hamburg", "20095", "DE"},       {"Kiel", "24103", "DE"},        {"Hannover", "30159", "DE"},
    {"Emden", "26721", "DE"},         {"Bremerhaven", "27568", "DE"}, {"Oldenburg", "26122", "DE"},
    {"Köln", "50667", "DE"},          {"Düsseldorf", "40213", "DE"},  {"Aachen", "52062", "DE"},
};
static const town other_towns[] = {
    {"Rotterdam", "3011", "NL"}, {"Venlo", "5911", "NL"}, {"Antwerp", "2000", "BE"},
    {"Roubaix", "59100", "FR"},
};

static const char *const de_streets[] = {
    "Hauptstraße", "Bahnhofstraße", "Hafenstraße", "Industriestraße", "Schulstraße",
    "Gartenstraße", "Dorfstraße", "Lindenweg", "Am Deich", "Kanalstraße", "Mühlenweg",
    "Friedrich-Ebert-Straße", "Weserstraße", "Emsstraße", "Ringstraße",
};

typedef struct retailer {
    const char *slug, *name, *street, *vat;
    const town *where;
} retailer;

static const retailer retailers[] = {
    {"kroeger-wassersport", "Wassersport Kröger GmbH", "Hafenstraße 14", "DE287419036", &de_towns[0]},
    {"bootszentrum-weser", "Bootszentrum Weser GmbH & Co. KG", "Am Hohentorshafen 3", "DE301552847", &de_towns[1]},
    {"marine-service-os", "Marine Service Osnabrück e.K.", "Hansastraße 52", "DE276104583", &de_towns[2]},
    {"nordsee-boote", "Nordsee Boote Cuxhaven GmbH", "Neufelder Straße 8", "DE312907461", &de_towns[3]},
    {"schlauchboot-discount24", "Schlauchboot-Discount24 GmbH", "Emscherstraße 101", "DE324876190", &de_towns[4]},
    {"motoren-becker", "Motorenhandel Becker OHG", "Speditionstraße 7", "DE268830412", &de_towns[5]},
    {"elbe-marine", "Elbe Marine Handels GmbH", "Billstraße 190", "DE118592036", &de_towns[6]},
    {"ostsee-bootstechnik", "Ostsee Bootstechnik GmbH", "Kieler Straße 311", "DE134420986", &de_towns[7]},
    {"boote-lange", "Boote & Motoren Lange GmbH", "Vahrenwalder Straße 245", "DE115347209", &de_towns[8]},
    {"angelshop-emden", "Angel- und Bootsshop Emden", "Ratsdelft 2", "DE296650118", &de_towns[9]},
    {"rhein-wassersport", "Rhein-Wassersport Meyer GmbH", "Niederländer Ufer 19", "DE121094873", &de_towns[12]},
    {"aqua-technik-aachen", "Aqua-Technik Aachen UG", "Jülicher Straße 88", "DE328015764", &de_towns[14]},
};

static const char *const de_first[] = {
    "Thomas", "Michael", "Andreas", "Stefan", "Jan", "Lukas", "Anna", "Julia", "Katrin",
    "Sabine", "Jonas", "Leon", "Marco", "Sven", "Dennis", "Kevin", "Hasan", "Mehmet", "Ali",
    "Ahmad", "Karwan", "Rebin", "Dariusz", "Piotr", "Ivan", "Alexandru", "Omar", "Yusuf",
};
static const char *const de_last[] = {
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Koch", "Richter", "Klein", "Wolf", "Neumann", "Schwarz", "Yilmaz",
    "Kaya", "Demir", "Hassan", "Rahimi", "Ahmadi", "Mohammadi", "Kowalski", "Nowak", "Popescu",
    "Petrov", "Rasul", "Aziz",
};
static const char *const mail_domains[] = {"gmx.de", "web.de", "gmail.com", "t-online.de",
                                           "outlook.de", "yahoo.com"};

typedef enum { SER_YAMAHA, SER_MERCURY, SER_SUZUKI, SER_TOHATSU, SER_PARSUN, SER_HIDEA } ser_fmt;

typedef struct engine_model {
    const char *make, *model;
    double hp;
    int price_eur;
    ser_fmt fmt;
    const char *code; /* Yamaha model prefix, Suzuki model code, Tohatsu prefix */
    unsigned weight;  /* relative frequency */
} engine_model;

/* Low-cost Chinese makes and Yamaha dominate what is bought and seized. */
static const engine_model engines[] = {
    {"Yamaha", "F15CMHS", 15, 3290, SER_YAMAHA, "6AG", 10},
    {"Yamaha", "F20BMHS", 20, 3690, SER_YAMAHA, "6AH", 8},
    {"Yamaha", "F40FETL", 40, 7490, SER_YAMAHA, "6BG", 5},
    {"Yamaha", "F60FETL", 60, 9990, SER_YAMAHA, "6C5", 3},
    {"Parsun", "F15ABMS", 15, 1390, SER_PARSUN, NULL, 12},
    {"Parsun", "T40JBWS", 40, 2890, SER_PARSUN, NULL, 8},
    {"Parsun", "F20ABMS", 20, 1690, SER_PARSUN, NULL, 7},
    {"Hidea", "HDF15HS", 15, 1190, SER_HIDEA, NULL, 9},
    {"Hidea", "HDF40FEL", 40, 2790, SER_HIDEA, NULL, 5},
    {"Tohatsu", "MFS15E", 15, 2990, SER_TOHATSU, "3BK", 5},
    {"Tohatsu", "M18E2", 18, 2590, SER_TOHATSU, "3AC", 4},
    {"Suzuki", "DF15AS", 15, 3190, SER_SUZUKI, "01504", 4},
    {"Suzuki", "DF20AS", 20, 3590, SER_SUZUKI, "02002", 3},
    {"Mercury", "F20MH", 20, 3590, SER_MERCURY, NULL, 3},
    {"Mercury", "F15ELPT", 15, 3890, SER_MERCURY, NULL, 2},
};

typedef struct boat_model {
    const char *make, *model;
    double length_m;
    int price_eur;
    const char *cin_country, *mic; /* NULL: no CIN on these */
    const char *description;
} boat_model;

static const boat_model boats[] = {
    {"Zodiac", "Cadet 340 Aero", 3.40, 1890, "FR", "ZOD", "grey hypalon, aluminium floor"},
    {"Bombard", "AX3", 3.10, 1490, "FR", "BOM", "grey PVC, air deck"},
    {"Allroundmarin", "Jolly 320", 3.20, 990, "DE", "ARM", "grey PVC, slatted floor"},
    {"Quicksilver", "380 Air Deck", 3.80, 2690, "FR", "QUI", "grey PVC, air deck"},
    {"Suzumar", "DS 350 AL", 3.50, 1590, "IT", "SUZ", "aluminium floor"},
    {"Honwave", "T38-IE3", 3.80, 3290, "FR", "HWV", "inflatable keel"},
    {"Hangkai", "HK-430", 4.30, 720, NULL, NULL, "grey PVC, plywood floor"},
    {"Seago", "Sprint 330", 3.30, 650, NULL, NULL, "grey PVC, slatted floor"},
    {"", "", 7.50, 2400, NULL, NULL, "black PVC tubes, plywood floor, no markings"},
    {"", "", 9.00, 3100, NULL, NULL, "grey PVC, plywood floor, about 9 m"},
};

typedef struct carrier {
    const char *source, *name, *country, *plate_pre, *plate_post; /* plate: pre, digits, post */
} carrier;

static const carrier carriers[] = {
    {"carrier.de.dpd", "DPD Deutschland GmbH", "DE", "AB-DP ", ""},
    {"carrier.de.dhl", "DHL Paket GmbH", "DE", "BN-DH ", ""},
    {"carrier.de.spedition-hartmann", "Spedition Hartmann GmbH", "DE", "OS-HT ", ""},
    {"carrier.de.kurier-ruhr", "Kurierdienst Ruhr UG", "DE", "GE-KR ", ""},
    {"carrier.nl.van-dijk", "Van Dijk Transport B.V.", "NL", "VX-", "-B"},
    {"carrier.be.vlaeminck", "Transport Vlaeminck BV", "BE", "1-VLM-", ""},
};

typedef struct agency {
    const char *source, *name, *country, *case_pre; /* case: pre, year, sep, number */
    char case_sep;
    unsigned hub_kinds; /* where it seizes */
} agency;

static const agency agencies[] = {
    {"police.fr.paf-calais", "Police aux frontières, Calais", "FR", "PAF62/", '/',
     TW_HUB_COAST | TW_HUB_INLAND},
    {"gendarmerie.fr.pas-de-calais", "Groupement de gendarmerie du Pas-de-Calais", "FR",
     "GGD62-", '-', TW_HUB_COAST},
    {"douane.fr.dunkerque", "Direction régionale des douanes de Dunkerque", "FR",
     "DRD-", '-', TW_HUB_COAST | TW_HUB_INLAND},
    {"police.be.westkust", "Politiezone Westkust", "BE", "WK.", '.', TW_HUB_COAST},
    {"police.de.osnabrueck", "Polizeidirektion Osnabrück", "DE", "PD-OS ", '/',
     TW_HUB_TRANSIT},
    {"border.bg.kapitan-andreevo", "Border Police, Kapitan Andreevo", "BG", "KA-", '-',
     TW_HUB_TRANSIT},
};

static const char *const nationalities[] = {"AF", "IQ", "IR", "ER", "SY", "SD", "VN", "AL", "TR",
                                            "EG"};

/* A hub row as read from channel-hubs.csv. */
typedef struct hub_row {
    char name[96], country[3], locode[6];
    double lat, lon;
    unsigned kind;
} hub_row;

/* ---- generator state ------------------------------------------------------- */

typedef struct gen {
    uint64_t seed;
    const char *prefix;
    int64_t now;
    hub_row *hubs;
    size_t nhubs;
    unsigned engine_weight_total;
    int mix;        /* --mix: duplicates, rejects and corrections */
    uint64_t items; /* --items: engines and boats drawn from this many (0: all new) */
    tw_arena arena; /* one record's memory */
} gen;

static void *xalloc(gen *g, size_t size)
{
    void *p = tw_arena_calloc(&g->arena, 1, size);
    if (!p) {
        fprintf(stderr, "tidewatch-ingest-load: out of memory\n");
        exit(1);
    }
    return p;
}

static char *xprintf(gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *xprintf(gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = tw_arena_vprintf(&g->arena, fmt, ap);
    va_end(ap);
    if (!s) {
        fprintf(stderr, "tidewatch-ingest-load: out of memory\n");
        exit(1);
    }
    return s;
}

/* Read channel-hubs.csv (name,aliases,country,locode,lat,lon,kind; no
 * quoted fields in it). Returns 0 or -1 with a message on stderr. */
static int load_hubs(gen *g, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "tidewatch-ingest-load: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[512];
    size_t lineno = 0, cap = 0;
    int rv = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (lineno == 1)
            continue; /* header */
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        char *fields[7], *p = line;
        int nf = 0;
        for (; nf < 7; nf++) {
            fields[nf] = p;
            char *comma = strchr(p, ',');
            if (!comma) {
                nf++;
                break;
            }
            *comma = '\0';
            p = comma + 1;
        }
        if (nf != 7) {
            fprintf(stderr, "tidewatch-ingest-load: %s line %zu: expected 7 fields\n", path,
                    lineno);
            rv = -1;
            break;
        }
        if (g->nhubs == cap) {
            cap = cap ? 2 * cap : 64;
            hub_row *n = realloc(g->hubs, cap * sizeof *n);
            if (!n) {
                rv = -1;
                break;
            }
            g->hubs = n;
        }
        hub_row *h = &g->hubs[g->nhubs++];
        memset(h, 0, sizeof *h);
        if (strlen(fields[0]) >= sizeof h->name || strlen(fields[2]) >= sizeof h->country ||
            strlen(fields[3]) >= sizeof h->locode) {
            fprintf(stderr, "tidewatch-ingest-load: %s line %zu: field too long\n", path, lineno);
            rv = -1;
            break;
        }
        memcpy(h->name, fields[0], strlen(fields[0]) + 1);
        memcpy(h->country, fields[2], strlen(fields[2]) + 1);
        memcpy(h->locode, fields[3], strlen(fields[3]) + 1);
        h->lat = strtod(fields[4], NULL);
        h->lon = strtod(fields[5], NULL);
        const char *k = fields[6];
        h->kind = strcmp(k, "coast") == 0     ? TW_HUB_COAST
                  : strcmp(k, "inland") == 0  ? TW_HUB_INLAND
                  : strcmp(k, "transit") == 0 ? TW_HUB_TRANSIT
                                              : TW_HUB_UK_LANDING;
    }
    fclose(f);
    if (rv == 0 && g->nhubs == 0) {
        fprintf(stderr, "tidewatch-ingest-load: %s: no hubs\n", path);
        rv = -1;
    }
    return rv;
}

/* A hub of one of the kinds in mask, preferring the country when it has one. */
static const hub_row *pick_hub(gen *g, rng *r, unsigned mask, const char *country)
{
    size_t match = 0, match_c = 0;
    for (size_t i = 0; i < g->nhubs; i++)
        if (g->hubs[i].kind & mask) {
            match++;
            if (country && strcmp(g->hubs[i].country, country) == 0)
                match_c++;
        }
    int by_country = match_c > 0;
    size_t k = rng_below(r, (uint32_t)(by_country ? match_c : match));
    for (size_t i = 0; i < g->nhubs; i++) {
        if (!(g->hubs[i].kind & mask))
            continue;
        if (by_country && strcmp(g->hubs[i].country, country) != 0)
            continue;
        if (k-- == 0)
            return &g->hubs[i];
    }
    return &g->hubs[0];
}

/* ---- building blocks -------------------------------------------------------- */

static Google__Protobuf__Timestamp *ts(gen *g, int64_t s)
{
    Google__Protobuf__Timestamp *t = xalloc(g, sizeof *t);
    google__protobuf__timestamp__init(t);
    t->seconds = s;
    return t;
}

static Tidewatch__V1__Grading *grading(gen *g, rng *r, int agency_source)
{
    Tidewatch__V1__Grading *gr = xalloc(g, sizeof *gr);
    tidewatch__v1__grading__init(gr);
    gr->source = agency_source || rng_pct(r, 70)
                     ? TIDEWATCH__V1__GRADING__SOURCE_EVALUATION__SOURCE_1_RELIABLE
                     : TIDEWATCH__V1__GRADING__SOURCE_EVALUATION__SOURCE_2_UNTESTED;
    gr->information = agency_source || rng_pct(r, 80)
                          ? TIDEWATCH__V1__GRADING__INFORMATION_ASSESSMENT__INFORMATION_A_KNOWN_DIRECTLY
                          : TIDEWATCH__V1__GRADING__INFORMATION_ASSESSMENT__INFORMATION_C_KNOWN_INDIRECTLY;
    if (agency_source && rng_pct(r, 20)) {
        gr->handling = TIDEWATCH__V1__GRADING__HANDLING__HANDLING_C_CONDITIONS;
        gr->handling_conditions = (char *)"law enforcement use only; no onward disclosure";
    } else {
        gr->handling = TIDEWATCH__V1__GRADING__HANDLING__HANDLING_P_LAWFUL_SHARING;
    }
    return gr;
}

static Tidewatch__V1__PartyIdentifier *ident(gen *g, int kind, char *value, const char *country)
{
    Tidewatch__V1__PartyIdentifier *id = xalloc(g, sizeof *id);
    tidewatch__v1__party_identifier__init(id);
    id->kind = kind;
    id->value = value;
    if (country)
        id->issuing_country = (char *)country;
    return id;
}

static Tidewatch__V1__Party *company(gen *g, const char *name, const char *country,
                                     const char *vat, char *address)
{
    Tidewatch__V1__Party *p = xalloc(g, sizeof *p);
    tidewatch__v1__party__init(p);
    p->kind = TIDEWATCH__V1__PARTY__KIND__COMPANY;
    p->name = (char *)name;
    p->country = (char *)country;
    if (address)
        p->address = address;
    if (vat) {
        p->n_identifiers = 1;
        p->identifiers = xalloc(g, sizeof *p->identifiers);
        p->identifiers[0] = ident(g, TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT, (char *)vat, NULL);
    }
    return p;
}

static Tidewatch__V1__Party *person(gen *g, rng *r, int with_id)
{
    Tidewatch__V1__Party *p = xalloc(g, sizeof *p);
    tidewatch__v1__party__init(p);
    p->kind = TIDEWATCH__V1__PARTY__KIND__PERSON;
    const char *first = *PICK(r, de_first), *last = *PICK(r, de_last);
    p->name = xprintf(g, "%s %s", first, last);
    const town *t = rng_pct(r, 88) ? PICK(r, de_towns) : PICK(r, other_towns);
    p->country = (char *)t->country;
    if (strcmp(t->country, "DE") == 0)
        p->address = xprintf(g, "%s %u, %s %s", *PICK(r, de_streets), rng_below(r, 140) + 1,
                             t->postcode, t->name);
    else
        p->address = xprintf(g, "%u %s", rng_below(r, 200) + 1, t->name);
    size_t n = 0;
    Tidewatch__V1__PartyIdentifier **ids = xalloc(g, 3 * sizeof *ids);
    const char *cc = strcmp(t->country, "DE") == 0   ? "+49 15"
                     : strcmp(t->country, "NL") == 0 ? "+31 6"
                     : strcmp(t->country, "BE") == 0 ? "+32 47"
                                                     : "+33 6";
    ids[n++] = ident(g, TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE,
                     xprintf(g, "%s%u %07u", cc, rng_below(r, 10), rng_below(r, 10000000)), NULL);
    if (rng_pct(r, 45))
        ids[n++] = ident(g, TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__EMAIL,
                         xprintf(g, "%c.%s%u@%s", first[0], last, rng_below(r, 90) + 10,
                                 *PICK(r, mail_domains)),
                         NULL);
    if (with_id)
        ids[n++] = ident(g, TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__IDENTITY_DOCUMENT,
                         xprintf(g, "L%08u", rng_below(r, 100000000)), t->country);
    p->identifiers = ids;
    p->n_identifiers = n;
    return p;
}

static Tidewatch__V1__Place *town_place(gen *g, const town *t, const char *address)
{
    Tidewatch__V1__Place *pl = xalloc(g, sizeof *pl);
    tidewatch__v1__place__init(pl);
    pl->name = (char *)t->name;
    pl->postcode = (char *)t->postcode;
    pl->country = (char *)t->country;
    if (address)
        pl->address = (char *)address;
    return pl;
}

/* A hub by name and country; with precise coordinates (a few hundred metres
 * off the town centre) when `coords`. */
static Tidewatch__V1__Place *hub_place(gen *g, rng *r, const hub_row *h, int coords)
{
    Tidewatch__V1__Place *pl = xalloc(g, sizeof *pl);
    tidewatch__v1__place__init(pl);
    pl->name = (char *)h->name;
    pl->country = (char *)h->country;
    if (h->locode[0] && rng_pct(r, 50))
        pl->locode = (char *)h->locode;
    if (coords) {
        Tidewatch__V1__LatLon *ll = xalloc(g, sizeof *ll);
        tidewatch__v1__lat_lon__init(ll);
        ll->lat = round((h->lat + (rng_unit(r) - 0.5) * 0.02) * 1e5) / 1e5;
        ll->lon = round((h->lon + (rng_unit(r) - 0.5) * 0.03) * 1e5) / 1e5;
        pl->coordinates = ll;
    }
    return pl;
}

static const engine_model *pick_engine(gen *g, rng *r)
{
    unsigned k = rng_below(r, g->engine_weight_total);
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++) {
        if (k < engines[i].weight)
            return &engines[i];
        k -= engines[i].weight;
    }
    return &engines[0];
}

static int year_of(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return tm.tm_year + 1900;
}

/* A serial in the maker's format, as printed on the plate. */
static char *engine_serial(gen *g, rng *r, const engine_model *m, int year)
{
    switch (m->fmt) {
    case SER_YAMAHA:
        return xprintf(g, "%s-%c-%07u", m->code, "SSLX"[rng_below(r, 4)],
                       1000000 + rng_below(r, 1200000));
    case SER_MERCURY:
        return xprintf(g, "%u%c%06u", rng_below(r, 3) + 1, "BPRT"[rng_below(r, 4)],
                       rng_below(r, 1000000));
    case SER_SUZUKI:
        return xprintf(g, "%sF-%06u", m->code, 100000 + rng_below(r, 900000));
    case SER_TOHATSU:
        return xprintf(g, "%s-%06u", m->code, rng_below(r, 1000000));
    case SER_PARSUN:
        return xprintf(g, "PS-%02d-%06u", year % 100, rng_below(r, 1000000));
    case SER_HIDEA:
        return xprintf(g, "HD%.0f-%02d%05u", m->hp, year % 100, rng_below(r, 100000));
    }
    return xprintf(g, "X%06u", rng_below(r, 1000000));
}

static Tidewatch__V1__SerialReading *reading(gen *g, char *text, int method, int completeness)
{
    Tidewatch__V1__SerialReading *s = xalloc(g, sizeof *s);
    tidewatch__v1__serial_reading__init(s);
    s->text = text;
    s->method = method;
    s->completeness = completeness;
    return s;
}

/* An engine; in seizures the plate may be ground off (etched recovery, partial). */
static Tidewatch__V1__Equipment *engine(gen *g, rng *r, const engine_model *m, int64_t t,
                                        int seized)
{
    Tidewatch__V1__Equipment *e = xalloc(g, sizeof *e);
    tidewatch__v1__equipment__init(e);
    e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE;
    e->make = (char *)m->make;
    e->model = (char *)m->model;
    e->power_hp = m->hp;
    char *serial = engine_serial(g, r, m, year_of(t) - (int)rng_below(r, 2));
    Tidewatch__V1__SerialReading **rd = xalloc(g, 2 * sizeof *rd);
    size_t n = 0;
    if (!seized) {
        rd[n++] = reading(g, serial, rng_pct(r, 70) ? TIDEWATCH__V1__SERIAL_READING__METHOD__DOCUMENT
                                                    : TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE,
                          TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__COMPLETE);
    } else if (rng_pct(r, 25)) {
        /* plate removed; the block stamp recovered in part */
        char *partial = xprintf(g, "%s", serial);
        size_t len = strlen(partial);
        for (int k = 0; k < 2; k++) {
            size_t pos = len - 1 - rng_below(r, (uint32_t)(len > 6 ? 6 : len));
            if (partial[pos] != '-')
                partial[pos] = '?';
        }
        rd[n++] = reading(g, partial, TIDEWATCH__V1__SERIAL_READING__METHOD__ETCHED_RECOVERY,
                          TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__PARTIAL);
    } else {
        rd[n++] = reading(g, serial, TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE,
                          TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__COMPLETE);
        if (rng_pct(r, 30))
            rd[n++] = reading(g, serial, TIDEWATCH__V1__SERIAL_READING__METHOD__STAMP,
                              TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__COMPLETE);
    }
    e->serials = rd;
    e->n_serials = n;
    return e;
}

static Tidewatch__V1__Equipment *boat(gen *g, rng *r, const boat_model *b, int64_t t)
{
    Tidewatch__V1__Equipment *e = xalloc(g, sizeof *e);
    tidewatch__v1__equipment__init(e);
    e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__BOAT;
    if (b->make[0])
        e->make = (char *)b->make;
    if (b->model[0])
        e->model = (char *)b->model;
    e->length_m = b->length_m;
    e->description = (char *)b->description;
    if (b->mic && rng_pct(r, 85)) {
        static const char serial_chars[] = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
        char sn[6];
        for (int k = 0; k < 5; k++)
            sn[k] = serial_chars[rng_below(r, sizeof serial_chars - 1)];
        sn[5] = '\0';
        int model_year = year_of(t) - (int)rng_below(r, 3);
        int prod_year = model_year - (int)rng_below(r, 2);
        char month = (char)('A' + rng_below(r, 12));
        e->hull_number = rng_pct(r, 50)
                             ? xprintf(g, "%s-%s%s%c%d%02d", b->cin_country, b->mic, sn, month,
                                       prod_year % 10, model_year % 100)
                             : xprintf(g, "%s-%s%s-%c%d-%02d", b->cin_country, b->mic, sn, month,
                                       prod_year % 10, model_year % 100);
    }
    return e;
}

static Tidewatch__V1__Money *eur(gen *g, rng *r, int price_eur)
{
    Tidewatch__V1__Money *m = xalloc(g, sizeof *m);
    tidewatch__v1__money__init(m);
    m->currency = (char *)"EUR";
    /* list price -10% .. +5%, ending in .00 or .90 */
    int64_t cents = (int64_t)price_eur * (90 + rng_below(r, 16));
    m->amount_minor = cents - cents % 100 + (rng_pct(r, 50) ? 90 : 0);
    return m;
}

/* --items M: the engine (salt 1) or boat (salt 2) a line names is one of M,
 * drawn with r; its make, model and identifiers come from the returned
 * generator, seeded by the item alone, so every record naming item j names
 * it the same way and provenance sees it again. *t becomes the item's own
 * time (its serial's year). Without --items, r and t are used as they are. */
static rng item_rng(gen *g, rng *r, uint64_t salt, int64_t *t)
{
    if (!g->items)
        return *r;
    uint64_t j = rng_next(r) % g->items;
    rng ir = {.s = (g->seed + salt * 0x9E3779B97F4A7C15ull) * 0xD1B54A32D192ED03ull ^
                   (j + 1) * 0x8CB92BA72F3D8DD7ull};
    (void)rng_next(&ir);
    *t = g->now - 200 * 86400 - (int64_t)rng_below(&ir, 400) * 86400;
    return ir;
}

/* Draws from ir go back to r when ir is r itself (no --items). */
#define ITEM_DONE(g, r, ir) do { if (!(g)->items) *(r) = (ir); } while (0)

/* 1-3 line items: engines, boats, now and then a pack of lifejackets. */
static Tidewatch__V1__LineItem **line_items(gen *g, rng *r, int64_t t, size_t *n, int priced)
{
    size_t k = 1 + (rng_pct(r, 35) ? 1 : 0) + (rng_pct(r, 10) ? 1 : 0);
    Tidewatch__V1__LineItem **items = xalloc(g, k * sizeof *items);
    for (size_t j = 0; j < k; j++) {
        Tidewatch__V1__LineItem *li = xalloc(g, sizeof *li);
        tidewatch__v1__line_item__init(li);
        li->quantity = 1;
        unsigned what = rng_below(r, 100);
        if (what < 55) {
            int64_t it = t;
            rng ir = item_rng(g, r, 1, &it);
            const engine_model *m = pick_engine(g, &ir);
            li->equipment = engine(g, &ir, m, it, 0);
            ITEM_DONE(g, r, ir);
            if (priced)
                li->unit_price = eur(g, r, m->price_eur);
        } else if (what < 92) {
            int64_t it = t;
            rng ir = item_rng(g, r, 2, &it);
            const boat_model *b = PICK(&ir, boats);
            if (!b->make[0])
                b = &boats[rng_below(&ir, 8)]; /* the no-name 7-9 m boats are not sold in shops */
            li->equipment = boat(g, &ir, b, it);
            ITEM_DONE(g, r, ir);
            if (priced)
                li->unit_price = eur(g, r, b->price_eur);
        } else {
            Tidewatch__V1__Equipment *e = xalloc(g, sizeof *e);
            tidewatch__v1__equipment__init(e);
            e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__OTHER;
            e->description = (char *)"lifejackets, adult, 150N";
            li->equipment = e;
            li->quantity = 10 * (1 + rng_below(r, 6));
            if (priced)
                li->unit_price = eur(g, r, 29);
        }
        items[j] = li;
    }
    *n = k;
    return items;
}

/* ---- the three record kinds --------------------------------------------------- */

static void purchase(gen *g, rng *r, uint64_t i, int64_t t, Tidewatch__V1__Record *rec)
{
    const retailer *rt = PICK(r, retailers);
    rec->source = xprintf(g, "retailer.de.%s", rt->slug);
    rec->source_ref = xprintf(g, "RE-%s-%08" PRIu64, g->prefix, i);
    rec->grading = grading(g, r, 0);
    Tidewatch__V1__Purchase *p = xalloc(g, sizeof *p);
    tidewatch__v1__purchase__init(p);
    p->seller = company(g, rt->name, "DE", rt->vat, NULL);
    if (rng_pct(r, 94))
        p->buyer = person(g, r, rng_pct(r, 30));
    p->items = line_items(g, r, t, &p->n_items, 1);
    unsigned pay = rng_below(r, 100);
    p->payment = pay < 48   ? TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH
                 : pay < 85 ? TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CARD
                            : TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_TRANSFER;
    p->place = town_place(g, rt->where, rt->street);
    p->time = ts(g, t);
    p->invoice_ref = rec->source_ref;
    rec->body_case = TIDEWATCH__V1__RECORD__BODY_PURCHASE;
    rec->purchase = p;
}

static void shipment(gen *g, rng *r, uint64_t i, int64_t t, Tidewatch__V1__Record *rec)
{
    const carrier *c = PICK(r, carriers);
    rec->source = (char *)c->source;
    rec->source_ref = xprintf(g, "SND-%s-%08" PRIu64, g->prefix, i);
    rec->grading = grading(g, r, 0);
    Tidewatch__V1__Shipment *s = xalloc(g, sizeof *s);
    tidewatch__v1__shipment__init(s);
    const retailer *rt = PICK(r, retailers);
    s->shipper = company(g, rt->name, "DE", rt->vat, NULL);
    s->carrier = company(g, c->name, c->country, NULL, NULL);
    s->consignee = person(g, r, 0);
    s->origin = town_place(g, rt->where, rt->street);
    unsigned where = rng_below(r, 100);
    if (where < 55) {
        const town *to = PICK(r, de_towns);
        s->destination = town_place(g, to, NULL);
    } else if (where < 80) {
        s->destination = hub_place(g, r, pick_hub(g, r, TW_HUB_INLAND | TW_HUB_COAST, NULL), 0);
    } else {
        s->destination = hub_place(g, r, pick_hub(g, r, TW_HUB_TRANSIT, "DE"), 0);
    }
    s->dispatched = ts(g, t);
    int64_t expected = t + 86400 * (1 + rng_below(r, 3));
    s->expected = ts(g, expected);
    int64_t delivered = expected + (int64_t)rng_below(r, 8 * 3600) - 4 * 3600;
    if (delivered < g->now && rng_pct(r, 80))
        s->delivered = ts(g, delivered);
    s->consignment_ref = xprintf(g, "%s%012" PRIu64, strcmp(c->country, "DE") ? "NL" : "JJD",
                                 (uint64_t)(rng_next(r) % 1000000000000ull));
    if (rng_pct(r, 60))
        s->vehicle_registration = xprintf(g, "%s%u%s", c->plate_pre, 100 + rng_below(r, 900),
                                            c->plate_post);
    s->items = line_items(g, r, t, &s->n_items, 0);
    rec->body_case = TIDEWATCH__V1__RECORD__BODY_SHIPMENT;
    rec->shipment = s;
}

static void seizure(gen *g, rng *r, uint64_t i, int64_t t, Tidewatch__V1__Record *rec)
{
    const agency *ag = PICK(r, agencies);
    rec->source = (char *)ag->source;
    rec->source_ref = xprintf(g, "SZ-%s-%08" PRIu64, g->prefix, i);
    rec->grading = grading(g, r, 1);
    Tidewatch__V1__Seizure *s = xalloc(g, sizeof *s);
    tidewatch__v1__seizure__init(s);
    Tidewatch__V1__Party *a = xalloc(g, sizeof *a);
    tidewatch__v1__party__init(a);
    a->kind = TIDEWATCH__V1__PARTY__KIND__AGENCY;
    a->name = (char *)ag->name;
    a->country = (char *)ag->country;
    s->agency = a;
    s->case_ref = xprintf(g, "%s%04d%c%05u", ag->case_pre, year_of(t), ag->case_sep,
                          rng_below(r, 100000));
    const hub_row *h = pick_hub(g, r, ag->hub_kinds, ag->country);
    s->place = hub_place(g, r, h, rng_pct(r, 70));
    s->time = ts(g, t);
    int launch = (h->kind & TW_HUB_COAST) && rng_pct(r, 40);
    size_t k = 1 + rng_below(r, launch ? 2 : 4);
    Tidewatch__V1__SeizedItem **items = xalloc(g, k * sizeof *items);
    for (size_t j = 0; j < k; j++) {
        Tidewatch__V1__SeizedItem *it = xalloc(g, sizeof *it);
        tidewatch__v1__seized_item__init(it);
        it->quantity = 1;
        int64_t itime = t;
        if (j % 2 == 0) {
            rng ir = item_rng(g, r, 2, &itime);
            const boat_model *b = PICK(&ir, boats);
            it->equipment = boat(g, &ir, b, itime);
            ITEM_DONE(g, r, ir);
        } else {
            rng ir = item_rng(g, r, 1, &itime);
            it->equipment = engine(g, &ir, pick_engine(g, &ir), itime, 1);
            ITEM_DONE(g, r, ir);
        }
        unsigned cond = rng_below(r, 100);
        it->condition = cond < 30   ? TIDEWATCH__V1__SEIZED_ITEM__CONDITION__NEW
                        : cond < 75 ? TIDEWATCH__V1__SEIZED_ITEM__CONDITION__USED
                        : cond < 95 ? TIDEWATCH__V1__SEIZED_ITEM__CONDITION__DAMAGED
                                    : TIDEWATCH__V1__SEIZED_ITEM__CONDITION__DESTROYED;
        if (launch && j == 0)
            it->note = (char *)"found on the beach at dawn, punctured";
        items[j] = it;
    }
    s->items = items;
    s->n_items = k;
    if (launch) {
        Tidewatch__V1__LaunchInfo *l = xalloc(g, sizeof *l);
        tidewatch__v1__launch_info__init(l);
        l->people_aboard = 25 + rng_below(r, 45);
        size_t nn = 1 + rng_below(r, 3);
        l->nationalities = xalloc(g, nn * sizeof *l->nationalities);
        uint32_t left = l->people_aboard;
        for (size_t j = 0; j < nn; j++) {
            Tidewatch__V1__NationalityCount *nc = xalloc(g, sizeof *nc);
            tidewatch__v1__nationality_count__init(nc);
            nc->country = (char *)nationalities[(j * 3 + rng_below(r, 3)) % 10];
            nc->count = j + 1 == nn ? left : left / 2;
            left -= nc->count;
            l->nationalities[j] = nc;
        }
        l->n_nationalities = nn;
        s->launch = l;
    }
    rec->body_case = TIDEWATCH__V1__RECORD__BODY_SEIZURE;
    rec->seizure = s;
}

/* Record i, in g's arena (valid until the next call). */
static Tidewatch__V1__Record *gen_record(gen *g, uint64_t i)
{
    tw_arena_reset(&g->arena);
    rng r = {.s = g->seed * 0xD1B54A32D192ED03ull ^ (i + 1) * 0x8CB92BA72F3D8DD7ull};
    (void)rng_next(&r);
    Tidewatch__V1__Record *rec = xalloc(g, sizeof *rec);
    tidewatch__v1__record__init(rec);
    /* Times in the last two years, at business hours for purchases. */
    int64_t t = g->now - 3600 - (int64_t)(rng_next(&r) % (uint64_t)TWO_YEARS_S);
    unsigned kind = rng_below(&r, 100);
    if (kind < 60) {
        t = t - t % 86400 + rng_range(&r, 8 * 3600, 18 * 3600 + 1800);
        if (t > g->now - 3600)
            t -= 86400;
        purchase(g, &r, i, t, rec);
    } else if (kind < 92) {
        /* tidewatch-ingest rejects times more than 10 minutes ahead, the
         * expected delivery included: report shipments once they are due. */
        if (t > g->now - 4 * 86400)
            t -= 4 * 86400;
        shipment(g, &r, i, t, rec);
    } else {
        seizure(g, &r, i, t, rec);
    }
    return rec;
}

/* ---- the mixed load ---------------------------------------------------------- */

/* A duplicate or a correction names an earlier record of its own block of
 * MIX_BLOCK records; load mode never splits a block between streams. */
#define MIX_BLOCK 1000
/* Per mille of the records (before the few that find no earlier record in
 * their block fall back to plain records). */
#define MIX_DUPLICATE_PM 10
#define MIX_REJECT_PM 10
#define MIX_CORRECTION_PM 5

typedef enum {
    SLOT_RECORD,     /* record i: ACCEPTED */
    SLOT_DUPLICATE,  /* record `target` again, byte for byte: DUPLICATE */
    SLOT_REJECT,     /* invalid: REJECTED, quarantined */
    SLOT_CORRECTION, /* a correction of record `target` by its source: ACCEPTED */
} slot_kind;

enum { REJECT_NO_TIME, REJECT_OTHER_SOURCE };

/* What position i of the load sends. */
typedef struct slot {
    slot_kind kind;
    uint64_t target;
    int variant; /* REJECT: REJECT_*; CORRECTION: 1 with a replacement body, 0 a retraction */
} slot;

static rng slot_rng(const gen *g, uint64_t i)
{
    rng r = {.s = g->seed * 0x9FB21C651E98DF25ull ^ (i + 1) * 0xC2B2AE3D27D4EB4Full ^ 0x6D6978ull};
    (void)rng_next(&r);
    return r;
}

static slot_kind raw_kind(rng *r)
{
    unsigned u = rng_below(r, 1000);
    return u < MIX_DUPLICATE_PM                                     ? SLOT_DUPLICATE
           : u < MIX_DUPLICATE_PM + MIX_REJECT_PM                   ? SLOT_REJECT
           : u < MIX_DUPLICATE_PM + MIX_REJECT_PM + MIX_CORRECTION_PM ? SLOT_CORRECTION
                                                                      : SLOT_RECORD;
}

/* Position i: with --mix, a record, a duplicate, a reject or a correction
 * (deterministic from the seed); else always record i. The target of a
 * duplicate or correction is a plain record earlier in the same block. */
static slot slot_of(const gen *g, uint64_t i)
{
    slot s = {.kind = SLOT_RECORD};
    if (!g->mix)
        return s;
    rng r = slot_rng(g, i);
    slot_kind k = raw_kind(&r);
    int variant = k == SLOT_REJECT       ? (rng_pct(&r, 20) ? REJECT_OTHER_SOURCE : REJECT_NO_TIME)
                  : k == SLOT_CORRECTION ? rng_pct(&r, 50)
                                         : 0;
    if (k == SLOT_RECORD || (k == SLOT_REJECT && variant == REJECT_NO_TIME)) {
        s.kind = k;
        return s;
    }
    uint64_t start = i - i % MIX_BLOCK;
    if (i == start)
        return s;
    uint64_t j = i - 1 - rng_below(&r, (uint32_t)(i - start));
    for (;;) {
        rng rj = slot_rng(g, j);
        if (raw_kind(&rj) == SLOT_RECORD)
            break;
        if (j == start)
            return s; /* no plain record before it in the block */
        j--;
    }
    s.kind = k;
    s.target = j;
    s.variant = variant;
    return s;
}

/* A correction (or retraction, when !with_body) of `t` as record i, by
 * `source` (t's own, or another one's for an invalid correction). Takes
 * t's body for the replacement, its time moved back as the correction
 * says. In g's arena. */
static Tidewatch__V1__Record *correction_of(gen *g, rng *r, Tidewatch__V1__Record *t, uint64_t i,
                                            const char *source, int with_body)
{
    Tidewatch__V1__Record *rec = xalloc(g, sizeof *rec);
    tidewatch__v1__record__init(rec);
    rec->source = (char *)source;
    rec->source_ref = xprintf(g, "%s-%s-%08" PRIu64, strcmp(source, t->source) ? "XC" : "COR",
                              g->prefix, i);
    rec->grading = t->grading;
    Tidewatch__V1__RecordRef *ref = xalloc(g, sizeof *ref);
    tidewatch__v1__record_ref__init(ref);
    ref->source = t->source;
    ref->source_ref = t->source_ref;
    Tidewatch__V1__Correction *c = xalloc(g, sizeof *c);
    tidewatch__v1__correction__init(c);
    c->corrects = ref;
    if (!with_body) {
        static const char *const why[] = {"entered in error", "duplicate of another record",
                                          "sent to the wrong recipient", "cancelled before dispatch"};
        c->reason = (char *)*PICK(r, why);
    } else {
        int64_t back = 900 * (1 + rng_below(r, 8));
        switch (t->body_case) {
        case TIDEWATCH__V1__RECORD__BODY_PURCHASE:
            t->purchase->time->seconds -= back;
            c->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_PURCHASE;
            c->purchase = t->purchase;
            break;
        case TIDEWATCH__V1__RECORD__BODY_SHIPMENT:
            t->shipment->dispatched->seconds -= back;
            c->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_SHIPMENT;
            c->shipment = t->shipment;
            break;
        case TIDEWATCH__V1__RECORD__BODY_SEIZURE:
            t->seizure->time->seconds -= back;
            c->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_SEIZURE;
            c->seizure = t->seizure;
            break;
        default: break;
        }
        c->reason = xprintf(g, "time was wrong by %" PRId64 " minutes", back / 60);
    }
    rec->body_case = TIDEWATCH__V1__RECORD__BODY_CORRECTION;
    rec->correction = c;
    return rec;
}

/* A source other than s (for corrections that may not be made). */
static const char *other_source(const char *s)
{
    return strcmp(s, carriers[0].source) != 0 ? carriers[0].source : carriers[1].source;
}

/* What position i sends (see slot_of), in g's arena (valid until the next
 * call). */
static Tidewatch__V1__Record *slot_record(gen *g, uint64_t i, const slot *s)
{
    Tidewatch__V1__Record *rec;
    rng r = slot_rng(g, i);
    (void)rng_next(&r); /* not the draws slot_of made */
    switch (s->kind) {
    case SLOT_DUPLICATE:
        return gen_record(g, s->target);
    case SLOT_REJECT:
        if (s->variant == REJECT_OTHER_SOURCE) {
            rec = gen_record(g, s->target);
            return correction_of(g, &r, rec, i, other_source(rec->source), 0);
        }
        /* every time left out: purchase and seizure times and a shipment's
         * dispatch and delivery are required */
        rec = gen_record(g, i);
        switch (rec->body_case) {
        case TIDEWATCH__V1__RECORD__BODY_PURCHASE: rec->purchase->time = NULL; break;
        case TIDEWATCH__V1__RECORD__BODY_SHIPMENT:
            rec->shipment->dispatched = rec->shipment->delivered = NULL;
            break;
        case TIDEWATCH__V1__RECORD__BODY_SEIZURE: rec->seizure->time = NULL; break;
        default: break;
        }
        return rec;
    case SLOT_CORRECTION:
        rec = gen_record(g, s->target);
        return correction_of(g, &r, rec, i, rec->source, s->variant);
    case SLOT_RECORD:
        break;
    }
    return gen_record(g, i);
}

/* Pack what position i sends into *buf (grown as needed); returns its
 * length and, in *s, what it is. */
static size_t pack_slot(gen *g, uint64_t i, slot *s, uint8_t **buf, size_t *cap)
{
    *s = slot_of(g, i);
    Tidewatch__V1__Record *rec = slot_record(g, i, s);
    size_t len = tidewatch__v1__record__get_packed_size(rec);
    if (len > *cap) {
        size_t ncap = len * 2;
        uint8_t *n = realloc(*buf, ncap);
        if (!n) {
            fprintf(stderr, "tidewatch-ingest-load: out of memory\n");
            exit(1);
        }
        *buf = n;
        *cap = ncap;
    }
    tidewatch__v1__record__pack(rec, *buf);
    return len;
}

/* ---- the rows tidewatch-ingest would store ------------------------------------------ */

typedef struct opts {
    uint64_t n, items;
    int streams, channels, clients;
    const char *target, *prefix, *data_dir, *emit_copy, *emit_sql, *emit_quarantine, *table,
        *metrics, *insert_url;
    uint64_t seed;
    int64_t now;
    size_t window;
    int allow_rejected, quiet, mix;
    double timeout_s;
} opts;

/* What a position of the load leaves in the database. */
typedef enum { FATE_EVENT, FATE_QUARANTINE, FATE_NONE } row_fate;

/* Builds rows the way tidewatch-ingest does: decode the bytes sent,
 * validate and normalise (tw_record_validate), derive, digest. */
typedef struct rowgen {
    gen *g;
    tw_places *places;
    tw_record_ctx ctx;
    tw_arena va;     /* one record's decoding and validation */
    uint8_t *buf;    /* the bytes sent */
    uint8_t *canon;  /* the record re-encoded, for its digest */
    size_t cap, canon_cap;
} rowgen;

/* One position's row. Valid until the next rowgen_build (its strings point
 * into the rowgen's arena and buffer). */
typedef struct row {
    row_fate fate;
    slot s;
    const Tidewatch__V1__Record *rec; /* decoded from the bytes sent */
    tw_record_check c;
    int have_check;
    const uint8_t *payload; /* the bytes sent: events.payload, quarantine.payload */
    size_t plen;
    uint8_t *derived;       /* events.derived (malloc'd) */
    size_t dlen;
    const char *csource, *cref; /* events.corrects_source, corrects_ref */
    char digest[65];        /* events.digest, hex */
} row;

/* Load the place tables. Returns 0, or -1 with a message on stderr. */
static int rowgen_open(rowgen *x, gen *g, const opts *o)
{
    char hubs[1024], gaz[1024], err[512];
    memset(x, 0, sizeof *x);
    snprintf(hubs, sizeof hubs, "%s/channel-hubs.csv", o->data_dir);
    snprintf(gaz, sizeof gaz, "%s/gazetteer.csv", o->data_dir);
    x->places = tw_places_load(hubs, gaz, err, sizeof err);
    if (!x->places) {
        fprintf(stderr, "tidewatch-ingest-load: place tables: %s\n", err);
        return -1;
    }
    x->g = g;
    x->ctx = (tw_record_ctx){.now_s = o->now, .places = x->places};
    tw_arena_init(&x->va, 64 * 1024);
    return 0;
}

static void rowgen_close(rowgen *x)
{
    free(x->buf);
    free(x->canon);
    tw_arena_free(&x->va);
    tw_places_free(x->places);
}

static void row_release(row *r)
{
    free(r->derived);
    r->derived = NULL;
    if (r->have_check)
        tw_record_check_free(&r->c);
    r->have_check = 0;
}

/* Build position i's row. Returns 0, or -1 with a message on stderr (a
 * record that should be valid is not, or the reverse, or ENOMEM). The
 * caller calls row_release either way. */
static int rowgen_build(rowgen *x, uint64_t i, row *out)
{
    memset(out, 0, sizeof *out);
    size_t len = pack_slot(x->g, i, &out->s, &x->buf, &x->cap);
    if (out->s.kind == SLOT_DUPLICATE) {
        out->fate = FATE_NONE; /* its record is stored once, as position s.target */
        return 0;
    }
    tw_arena_reset(&x->va);
    ProtobufCAllocator alloc = tw_arena_protobuf_allocator(&x->va);
    Tidewatch__V1__Record *rec = tidewatch__v1__record__unpack(&alloc, len, x->buf);
    if (!rec) {
        fprintf(stderr, "tidewatch-ingest-load: record %" PRIu64 ": could not decode\n", i);
        return -1;
    }
    out->have_check = 1;
    if (tw_record_validate(&x->ctx, rec, &x->va, &out->c) != 0) {
        fprintf(stderr, "tidewatch-ingest-load: record %" PRIu64 ": could not validate\n", i);
        return -1;
    }
    out->rec = rec;
    out->payload = x->buf;
    out->plen = len;
    if (out->s.kind == SLOT_REJECT) {
        if (!out->c.nerrors) {
            fprintf(stderr, "tidewatch-ingest-load: record %" PRIu64 " should be invalid\n", i);
            return -1;
        }
        out->fate = FATE_QUARANTINE;
        return 0;
    }
    if (out->c.nerrors) {
        fprintf(stderr, "tidewatch-ingest-load: record %" PRIu64 " is invalid: %s: %s\n", i,
                out->c.errors[0].field, out->c.errors[0].reason);
        return -1;
    }
    out->derived = tw_record_stored_derived(&out->c, &out->dlen);
    if (!out->derived)
        return -1;
    if (rec->body_case == TIDEWATCH__V1__RECORD__BODY_CORRECTION && rec->correction->corrects) {
        out->csource = rec->correction->corrects->source;
        out->cref = rec->correction->corrects->source_ref;
    }
    /* The digest as tidewatch-ingest computes it (record_digest in
     * services/ingest/submit.c): SHA-256 of the decoded record packed again
     * by protobuf-c, so it is the same however the sender encoded it. */
    size_t clen = tidewatch__v1__record__get_packed_size(rec);
    if (clen > x->canon_cap) {
        uint8_t *n = realloc(x->canon, clen * 2);
        if (!n)
            return -1;
        x->canon = n;
        x->canon_cap = clen * 2;
    }
    tidewatch__v1__record__pack(rec, x->canon);
    tw_sha256_hex(x->canon, clen, out->digest);
    out->fate = FATE_EVENT;
    return 0;
}

/* ---- emit modes --------------------------------------------------------------------- */

enum { ESC_NONE, ESC_COPY, ESC_SQL };

/* One character of a value inside COPY text (backslash, tab, newline and
 * carriage return escaped) or inside an SQL string literal
 * (standard_conforming_strings on: quotes doubled). */
static void put_esc(FILE *f, char c, int esc)
{
    if (esc == ESC_COPY) {
        switch (c) {
        case '\\': fputs_unlocked("\\\\", f); return;
        case '\t': fputs_unlocked("\\t", f); return;
        case '\n': fputs_unlocked("\\n", f); return;
        case '\r': fputs_unlocked("\\r", f); return;
        default: break;
        }
    } else if (esc == ESC_SQL && c == '\'') {
        fputc_unlocked('\'', f);
    }
    fputc_unlocked(c, f);
}

static void put_text(FILE *f, const char *s, int esc)
{
    for (; *s; s++)
        put_esc(f, *s, esc);
}

/* An array literal of keys (normalised keys need no quoting, but quote
 * anyway so any key survives). */
static void keys_literal(FILE *f, const char **keys, size_t n, int esc)
{
    fputc_unlocked('{', f);
    for (size_t i = 0; i < n; i++) {
        fputs_unlocked(i ? ",\"" : "\"", f);
        for (const char *p = keys[i]; *p; p++) {
            if (*p == '"' || *p == '\\')
                put_esc(f, '\\', esc);
            put_esc(f, *p, esc);
        }
        fputc_unlocked('"', f);
    }
    fputc_unlocked('}', f);
}

static void hex_bytes(FILE *f, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        fputc_unlocked(hex[p[i] >> 4], f);
        fputc_unlocked(hex[p[i] & 15], f);
    }
}

static void time_literal(FILE *f, int64_t s)
{
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[40];
    strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S+00", &tm);
    fputs_unlocked(b, f);
}

/* The events columns every baseline writes, in this order: those
 * tidewatch-ingest's writer names (the others are the table's defaults: id,
 * tx, received_at, principal; corrects stays NULL). */
#define EVENT_COLUMNS                                                                            \
    "source, source_ref, kind, occurred_at, corrects_source, corrects_ref, serial_keys, "        \
    "hull_keys, derived, payload, digest"
enum { N_EVENT_COLUMNS = 11 };

/* A nullable text value: COPY's \N, SQL's NULL, or the text. */
static void opt_text(FILE *f, const char *s, int esc)
{
    if (!s) {
        fputs_unlocked(esc == ESC_COPY ? "\\N" : "NULL", f);
        return;
    }
    if (esc == ESC_SQL)
        fputc_unlocked('\'', f);
    put_text(f, s, esc);
    if (esc == ESC_SQL)
        fputc_unlocked('\'', f);
}

/* Columns of EVENT_COLUMNS as a COPY text line (esc ESC_COPY) or the
 * values of an INSERT (ESC_SQL). */
static void event_values(FILE *f, const row *r, int esc)
{
    const char *sep = esc == ESC_COPY ? "\t" : ", ";
    const char *q = esc == ESC_COPY ? "" : "'";
    const char *bx = esc == ESC_COPY ? "\\\\x" : "'\\x";
    opt_text(f, r->rec->source, esc);
    fputs_unlocked(sep, f);
    opt_text(f, r->rec->source_ref, esc);
    fprintf(f, "%s%d%s", sep, (int)r->c.kind, sep);
    if (r->c.has_time) {
        fputs_unlocked(q, f);
        time_literal(f, r->c.occurred_at_s);
        fputs_unlocked(q, f);
    } else {
        fputs_unlocked(esc == ESC_COPY ? "\\N" : "NULL", f);
    }
    fputs_unlocked(sep, f);
    opt_text(f, r->csource, esc);
    fputs_unlocked(sep, f);
    opt_text(f, r->cref, esc);
    fputs_unlocked(sep, f);
    fputs_unlocked(q, f);
    keys_literal(f, r->c.serial_keys, r->c.nserial_keys, esc);
    fputs_unlocked(q, f);
    fputs_unlocked(sep, f);
    fputs_unlocked(q, f);
    keys_literal(f, r->c.hull_keys, r->c.nhull_keys, esc);
    fputs_unlocked(q, f);
    fputs_unlocked(sep, f);
    fputs_unlocked(bx, f);
    hex_bytes(f, r->derived, r->dlen);
    fputs_unlocked(q, f);
    fputs_unlocked(sep, f);
    fputs_unlocked(bx, f);
    hex_bytes(f, r->payload, r->plen);
    fputs_unlocked(q, f);
    fputs_unlocked(sep, f);
    fputs_unlocked(bx, f);
    fputs_unlocked(r->digest, f);
    fputs_unlocked(q, f);
}

static FILE *open_out(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
    if (!f)
        fprintf(stderr, "tidewatch-ingest-load: %s: %s\n", path, strerror(errno));
    else if (setvbuf(f, NULL, _IOFBF, 1 << 20) != 0)
        fprintf(stderr, "tidewatch-ingest-load: %s: unbuffered\n", path);
    return f;
}

/* Flush and close (not stdout); -1 when a write failed. */
static int close_out(FILE *f, const char *path)
{
    int rv = fflush(f) != 0 || ferror(f) ? -1 : 0;
    if (f != stdout && fclose(f) != 0)
        rv = -1;
    if (rv != 0)
        fprintf(stderr, "tidewatch-ingest-load: %s: write failed\n", path);
    return rv;
}

/* Write the rows of positions 0..n-1: events rows to `path` (COPY text,
 * or INSERT statements when `sql`), and with --emit-quarantine the
 * rejected records as quarantine holds them (COPY text: source,
 * source_ref, payload). Returns the exit status. */
static int emit(gen *g, const opts *o, const char *path, int sql)
{
    rowgen x;
    if (rowgen_open(&x, g, o) != 0)
        return 1;
    FILE *f = open_out(path);
    FILE *q = f && o->emit_quarantine ? open_out(o->emit_quarantine) : NULL;
    int rv = !f || (o->emit_quarantine && !q) ? 1 : 0;
    uint64_t bytes = 0, events = 0, quarantined = 0, duplicates = 0;
    for (uint64_t i = 0; i < o->n && rv == 0; i++) {
        row r;
        if (rowgen_build(&x, i, &r) != 0) {
            row_release(&r);
            rv = 1;
            break;
        }
        if (r.fate == FATE_EVENT) {
            events++;
            bytes += r.plen;
            if (sql) {
                fprintf(f, "INSERT INTO %s (" EVENT_COLUMNS ") VALUES (", o->table);
                event_values(f, &r, ESC_SQL);
                fputs_unlocked(");\n", f);
            } else {
                event_values(f, &r, ESC_COPY);
                fputc_unlocked('\n', f);
            }
        } else if (r.fate == FATE_QUARANTINE) {
            quarantined++;
            if (q) {
                put_text(q, r.rec->source, ESC_COPY);
                fputc_unlocked('\t', q);
                put_text(q, r.rec->source_ref, ESC_COPY);
                fputs_unlocked("\t\\\\x", q);
                hex_bytes(q, r.payload, r.plen);
                fputc_unlocked('\n', q);
            }
        } else {
            duplicates++;
        }
        row_release(&r);
    }
    if (f && close_out(f, path) != 0)
        rv = 1;
    if (q && close_out(q, o->emit_quarantine) != 0)
        rv = 1;
    rowgen_close(&x);
    if (rv == 0)
        fprintf(stderr,
                "tidewatch-ingest-load: wrote %" PRIu64 " rows to %s (mean record %.0f bytes); "
                "rows: events %" PRIu64 ", quarantine %" PRIu64 ", duplicates %" PRIu64 "\n",
                events, path, events ? (double)bytes / (double)events : 0.0, events, quarantined,
                duplicates);
    return rv;
}

/* ---- the INSERT baseline: prepared, autocommit, concurrent clients ------------------ */

/* One events row as INSERT parameters (EVENT_COLUMNS): text, except
 * derived and payload (binary); one allocation. */
typedef struct ins_row {
    char *blob;
    const char *v[N_EVENT_COLUMNS];
    int l[N_EVENT_COLUMNS];
} ins_row;

static const int ins_formats[N_EVENT_COLUMNS] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0};

/* Returns 0, or -1 on ENOMEM. */
static int ins_row_make(ins_row *out, const row *r)
{
    char *blob = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&blob, &size);
    if (!m)
        return -1;
    long off[N_EVENT_COLUMNS];
    int null[N_EVENT_COLUMNS] = {0};
    for (int k = 0; k < N_EVENT_COLUMNS; k++) {
        off[k] = ftell(m);
        switch (k) {
        case 0: put_text(m, r->rec->source, ESC_NONE); break;
        case 1: put_text(m, r->rec->source_ref, ESC_NONE); break;
        case 2: fprintf(m, "%d", (int)r->c.kind); break;
        case 3:
            if (r->c.has_time)
                time_literal(m, r->c.occurred_at_s);
            else
                null[k] = 1;
            break;
        case 4:
        case 5: {
            const char *s = k == 4 ? r->csource : r->cref;
            if (s)
                put_text(m, s, ESC_NONE);
            else
                null[k] = 1;
            break;
        }
        case 6: keys_literal(m, r->c.serial_keys, r->c.nserial_keys, ESC_NONE); break;
        case 7: keys_literal(m, r->c.hull_keys, r->c.nhull_keys, ESC_NONE); break;
        case 8: fwrite(r->derived, 1, r->dlen, m); break;
        case 9: fwrite(r->payload, 1, r->plen, m); break;
        case 10: fprintf(m, "\\x%s", r->digest); break;
        }
        out->l[k] = (int)(ftell(m) - off[k]);
        fputc('\0', m);
    }
    if (fclose(m) != 0 || !blob) {
        free(blob);
        return -1;
    }
    out->blob = blob;
    for (int k = 0; k < N_EVENT_COLUMNS; k++)
        out->v[k] = null[k] ? NULL : blob + off[k];
    return 0;
}

typedef struct ins_client {
    PGconn *conn;
    const ins_row *rows;
    size_t nrows;
    int index, nclients;
    uint64_t done;
    char err[256];
    pthread_t thread;
    int started;
} ins_client;

/* A client's share: rows index, index + nclients, ... each its own
 * autocommit transaction. */
static void *ins_client_run(void *arg)
{
    ins_client *k = arg;
    for (size_t i = (size_t)k->index; i < k->nrows; i += (size_t)k->nclients) {
        const ins_row *r = &k->rows[i];
        PGresult *res =
            PQexecPrepared(k->conn, "ins", N_EVENT_COLUMNS, r->v, r->l, ins_formats, 0);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(k->err, sizeof k->err, "row %zu: %s", i, PQresultErrorMessage(res));
        PQclear(res);
        if (!ok)
            break;
        k->done++;
    }
    return NULL;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double since(const struct timespec *a);

/* Build the rows of positions 0..n-1 (events only), then insert them with
 * --clients concurrent clients, timed from the first INSERT to the last
 * answer. Returns the exit status. */
static int insert_baseline(gen *g, const opts *o)
{
    rowgen x;
    if (rowgen_open(&x, g, o) != 0)
        return 1;
    int rv = 1;
    size_t nrows = 0;
    ins_row *rows = calloc(o->n ? (size_t)o->n : 1, sizeof *rows);
    ins_client *cl = calloc((size_t)o->clients, sizeof *cl);
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO %s (" EVENT_COLUMNS ") VALUES "
             "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)", o->table);
    if (!rows || !cl)
        goto out;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < o->n; i++) {
        row r;
        int bad = rowgen_build(&x, i, &r) != 0 ||
                  (r.fate == FATE_EVENT && ins_row_make(&rows[nrows++], &r) != 0);
        row_release(&r);
        if (bad) {
            fprintf(stderr, "tidewatch-ingest-load: could not build row %" PRIu64 "\n", i);
            goto out;
        }
    }
    fprintf(stderr, "tidewatch-ingest-load: %zu rows built in %.1f s (not timed)\n", nrows,
            since(&t0));
    for (int k = 0; k < o->clients; k++) {
        cl[k] = (ins_client){.rows = rows, .nrows = nrows, .index = k, .nclients = o->clients};
        cl[k].conn = PQconnectdb(o->insert_url);
        if (PQstatus(cl[k].conn) != CONNECTION_OK) {
            fprintf(stderr, "tidewatch-ingest-load: connecting: %s", PQerrorMessage(cl[k].conn));
            goto out;
        }
        PGresult *res = PQprepare(cl[k].conn, "ins", sql, N_EVENT_COLUMNS, NULL);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            fprintf(stderr, "tidewatch-ingest-load: preparing: %s", PQresultErrorMessage(res));
        PQclear(res);
        if (!ok)
            goto out;
    }
    double c0 = cpu_seconds();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int failed = 0;
    for (int k = 0; k < o->clients; k++) {
        if (pthread_create(&cl[k].thread, NULL, ins_client_run, &cl[k]) != 0) {
            fprintf(stderr, "tidewatch-ingest-load: could not start client %d\n", k);
            failed = 1;
            break;
        }
        cl[k].started = 1;
    }
    uint64_t done = 0;
    for (int k = 0; k < o->clients; k++) {
        if (!cl[k].started)
            continue;
        pthread_join(cl[k].thread, NULL);
        done += cl[k].done;
        if (cl[k].err[0]) {
            fprintf(stderr, "tidewatch-ingest-load: client %d: %s", k, cl[k].err);
            failed = 1;
        }
    }
    double secs = since(&t0), cpu = cpu_seconds() - c0;
    if (failed || done != nrows)
        goto out;
    printf("insert %zu rows, %d client(s), %.3f s, %.0f rows/s (one prepared INSERT per row, "
           "autocommit; client CPU %.2f s); backends",
           nrows, o->clients, secs, secs > 0 ? (double)nrows / secs : 0.0, cpu);
    for (int k = 0; k < o->clients; k++)
        printf(" %d", PQbackendPID(cl[k].conn));
    printf("\n");
    fflush(stdout);
    rv = 0;
out:
    if (cl)
        for (int k = 0; k < o->clients; k++)
            if (cl[k].conn)
                PQfinish(cl[k].conn);
    free(cl);
    if (rows)
        for (size_t i = 0; i < nrows; i++)
            free(rows[i].blob);
    free(rows);
    rowgen_close(&x);
    return rv;
}

/* ---- load mode ------------------------------------------------------------------- */

typedef struct load load;

typedef struct stream {
    load *L;
    int index;
    tw_grpc_ccall *call;
    uint64_t first, next, end, sent;
    int half_closed, closed, status;
    char message[256];
    int have_response;
    uint64_t accepted, duplicates, rejected, conflicts; /* the answer */
    uint64_t exp_accepted, exp_duplicates, exp_rejected; /* what was sent */
    uint64_t bad_rejections; /* listed rejections that are not the invalid records */
} stream;

struct load {
    const opts *o;
    gen *g;
    struct event_base *base;
    tw_grpc_channel **channels;
    stream *streams;
    int open;
    uint64_t sent, sent_at_last_tick, bytes;
    struct timespec t0, last_tick;
    struct event *tick, *deadline;
    uint8_t *buf;
    size_t cap;
    int timed_out;
    double acked_base, acked_last; /* --metrics: accepted counter at the start, last tick */
};

static double since(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

/* 1 when a listed rejection is the invalid record sent at position i,
 * rejected for what makes it invalid. */
static int rejection_expected(gen *g, uint64_t i, const Tidewatch__V1__RecordResult *rr)
{
    slot sl = slot_of(g, i);
    if (rr->outcome != TIDEWATCH__V1__RECORD_RESULT__OUTCOME__REJECTED ||
        sl.kind != SLOT_REJECT)
        return 0;
    const char *field = sl.variant == REJECT_OTHER_SOURCE ? "correction.corrects.source" : NULL;
    const char *code = sl.variant == REJECT_OTHER_SOURCE ? "other_source" : "required";
    for (size_t k = 0; k < rr->n_errors; k++)
        if (strcmp(rr->errors[k]->code, code) == 0 &&
            (!field || strcmp(rr->errors[k]->field, field) == 0))
            return 1;
    return 0;
}

static void on_message(tw_grpc_ccall *call, const uint8_t *msg, size_t len, void *arg)
{
    (void)call;
    stream *s = arg;
    Tidewatch__V1__SubmitStreamResponse *resp =
        tidewatch__v1__submit_stream_response__unpack(NULL, len, msg);
    if (!resp) {
        snprintf(s->message, sizeof s->message, "malformed SubmitStreamResponse");
        return;
    }
    s->have_response = 1;
    s->accepted = resp->accepted;
    s->duplicates = resp->duplicates;
    s->rejected = resp->rejected;
    s->conflicts = resp->conflicts;
    size_t shown = 0;
    for (size_t i = 0; i < resp->n_rejections; i++) {
        const Tidewatch__V1__RecordResult *rr = resp->rejections[i];
        if (s->L->g->mix && rejection_expected(s->L->g, s->first + rr->index, rr))
            continue;
        if (s->L->g->mix)
            s->bad_rejections++;
        if (shown++ < 3)
            fprintf(stderr, "stream %d: %s %s/%s (position %u): %s %s %s\n", s->index,
                    rr->outcome == TIDEWATCH__V1__RECORD_RESULT__OUTCOME__CONFLICT ? "conflict"
                                                                                   : "rejected",
                    rr->source, rr->source_ref, rr->index,
                    rr->n_errors ? rr->errors[0]->field : "",
                    rr->n_errors ? rr->errors[0]->code : "",
                    rr->n_errors ? rr->errors[0]->reason : "");
    }
    tidewatch__v1__submit_stream_response__free_unpacked(resp, NULL);
}

static void on_close(tw_grpc_ccall *call, int status, const char *message,
                     const tw_grpc_md *trailers, size_t n, void *arg)
{
    (void)call;
    (void)trailers;
    (void)n;
    stream *s = arg;
    s->closed = 1;
    s->call = NULL;
    s->status = status;
    if (status != TW_GRPC_OK)
        snprintf(s->message, sizeof s->message, "%s", message);
    s->L->open--;
}

/* Queue records on every stream while its unsent bytes stay under the window. */
static void refill(load *L)
{
    for (int k = 0; k < L->o->streams; k++) {
        stream *s = &L->streams[k];
        if (s->closed || s->half_closed)
            continue;
        while (s->next < s->end && tw_grpc_ccall_pending(s->call) < L->o->window) {
            slot sl;
            size_t len = pack_slot(L->g, s->next, &sl, &L->buf, &L->cap);
            if (tw_grpc_ccall_send(s->call, L->buf, len) != 0) {
                snprintf(s->message, sizeof s->message, "could not queue a record");
                tw_grpc_ccall_cancel(s->call);
                break;
            }
            switch (sl.kind) {
            case SLOT_DUPLICATE: s->exp_duplicates++; break;
            case SLOT_REJECT: s->exp_rejected++; break;
            default: s->exp_accepted++; break;
            }
            s->next++;
            s->sent++;
            L->sent++;
            L->bytes += len;
        }
        if (!s->closed && s->next == s->end && !s->half_closed) {
            s->half_closed = 1;
            tw_grpc_ccall_close_send(s->call);
        }
    }
}

/* Records the daemon has answered as accepted so far, from its metrics
 * endpoint (a blocking GET on the loopback, at most half a second), or -1. */
static double scrape_accepted(const char *hostport)
{
    char host[256], service[16];
    int port;
    if (tw_hostport_parse(hostport, host, sizeof host, &port) != 0)
        return -1;
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host[0] ? host : "127.0.0.1", service, &hints, &ai) != 0 || !ai)
        return -1;
    double v = -1;
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    struct timeval tv = {0, 500000};
    static char buf[1 << 18];
    size_t len = 0;
    if (fd < 0)
        goto out;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0 ||
        connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        goto out;
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf - 1)
            break;
    }
    buf[len] = '\0';
    /* tidewatch_ingest_records_total{service="ingest",outcome="accepted"} N */
    for (const char *p = buf; (p = strstr(p, "\ntidewatch_ingest_records_total{")) != NULL; p++) {
        const char *eol = strchr(p + 1, '\n');
        const char *m = strstr(p, "outcome=\"accepted\"} ");
        if (m && (!eol || m < eol)) {
            v = strtod(strchr(m, ' ') + 1, NULL);
            break;
        }
    }
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return v;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    load *L = arg;
    double dt = since(&L->last_tick), t = since(&L->t0);
    int done = 0;
    for (int k = 0; k < L->o->streams; k++)
        done += L->streams[k].closed;
    if (L->o->metrics) {
        /* what the daemon committed: the accepted counter (it starts from
         * its value when the run began) */
        double acc = scrape_accepted(L->o->metrics);
        if (acc >= 0 && L->acked_base < 0)
            L->acked_base = acc;
        if (acc >= 0) {
            double a = acc - L->acked_base;
            fprintf(stderr, "[%6.1f s] committed %.0f/%" PRIu64 " (%.0f records/s now, %.0f mean), "
                    "queued %" PRIu64 ", streams answered %d/%d\n",
                    t, a, L->o->n, (a - L->acked_last) / dt, t > 0 ? a / t : 0.0, L->sent, done,
                    L->o->streams);
            L->acked_last = a;
            clock_gettime(CLOCK_MONOTONIC, &L->last_tick);
            return;
        }
    }
    fprintf(stderr, "[%6.1f s] queued %" PRIu64 "/%" PRIu64 " (%.0f records/s now, %.0f mean), "
            "streams answered %d/%d\n",
            t, L->sent, L->o->n, (double)(L->sent - L->sent_at_last_tick) / dt,
            t > 0 ? (double)L->sent / t : 0.0, done, L->o->streams);
    L->sent_at_last_tick = L->sent;
    clock_gettime(CLOCK_MONOTONIC, &L->last_tick);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    load *L = arg;
    L->timed_out = 1;
    fprintf(stderr, "tidewatch-ingest-load: timed out after %g s: cancelling\n",
            L->o->timeout_s);
    for (int k = 0; k < L->o->streams; k++)
        if (!L->streams[k].closed)
            tw_grpc_ccall_cancel(L->streams[k].call);
}

static int run_load(gen *g, const opts *o)
{
    load L = {.o = o, .g = g, .acked_base = -1};
    int rv = 1;
    L.base = event_base_new();
    L.channels = calloc((size_t)o->channels, sizeof *L.channels);
    L.streams = calloc((size_t)o->streams, sizeof *L.streams);
    if (!L.base || !L.channels || !L.streams)
        goto out;
    char err[256];
    for (int k = 0; k < o->channels; k++) {
        L.channels[k] = tw_grpc_channel_new(L.base, o->target, err, sizeof err);
        if (!L.channels[k]) {
            fprintf(stderr, "tidewatch-ingest-load: %s: %s\n", o->target, err);
            goto out;
        }
    }
    static const tw_grpc_client_handlers handlers = {.on_message = on_message,
                                                     .on_close = on_close};
    if (o->metrics && !o->quiet)
        L.acked_base = scrape_accepted(o->metrics);
    clock_gettime(CLOCK_MONOTONIC, &L.t0);
    L.last_tick = L.t0;
    for (int k = 0; k < o->streams; k++) {
        stream *s = &L.streams[k];
        s->L = &L;
        s->index = k;
        if (o->mix) {
            /* whole blocks: a duplicate or correction travels after its
             * target, in the same stream */
            uint64_t blocks = (o->n + MIX_BLOCK - 1) / MIX_BLOCK;
            s->next = blocks * (uint64_t)k / (uint64_t)o->streams * MIX_BLOCK;
            s->end = blocks * (uint64_t)(k + 1) / (uint64_t)o->streams * MIX_BLOCK;
            if (s->next > o->n)
                s->next = o->n;
            if (s->end > o->n)
                s->end = o->n;
        } else {
            s->next = o->n * (uint64_t)k / (uint64_t)o->streams;
            s->end = o->n * (uint64_t)(k + 1) / (uint64_t)o->streams;
        }
        s->first = s->next;
        s->call = tw_grpc_channel_start(L.channels[k % o->channels], SUBMIT_STREAM_PATH, NULL,
                                        &handlers, s);
        if (!s->call) {
            fprintf(stderr, "tidewatch-ingest-load: could not start stream %d\n", k);
            for (int j = 0; j < k; j++)
                tw_grpc_ccall_cancel(L.streams[j].call);
            goto out;
        }
        L.open++;
    }
    if (!o->quiet) {
        L.tick = event_new(L.base, -1, EV_PERSIST, tick_cb, &L);
        struct timeval one = {1, 0};
        if (!L.tick || event_add(L.tick, &one) != 0)
            goto out;
    }
    if (o->timeout_s > 0) {
        L.deadline = evtimer_new(L.base, deadline_cb, &L);
        struct timeval tv = {(time_t)o->timeout_s,
                             (suseconds_t)((o->timeout_s - floor(o->timeout_s)) * 1e6)};
        if (!L.deadline || evtimer_add(L.deadline, &tv) != 0)
            goto out;
    }
    while (L.open > 0) {
        refill(&L);
        if (L.open == 0)
            break;
        if (event_base_loop(L.base, EVLOOP_ONCE) < 0) {
            fprintf(stderr, "tidewatch-ingest-load: event loop failed\n");
            break;
        }
    }
    double secs = since(&L.t0);

    uint64_t acc = 0, dup = 0, rej = 0, conf = 0, eacc = 0, edup = 0, erej = 0, badrej = 0;
    int bad = L.open > 0 || L.timed_out;
    for (int k = 0; k < o->streams; k++) {
        stream *s = &L.streams[k];
        if (s->status != TW_GRPC_OK || !s->have_response) {
            fprintf(stderr, "stream %d: failed: status %d: %s\n", k, s->status,
                    s->message[0] ? s->message : "no SubmitStreamResponse");
            bad = 1;
            continue;
        }
        if (s->accepted + s->duplicates + s->rejected + s->conflicts != s->sent) {
            fprintf(stderr,
                    "stream %d: answered %" PRIu64 " accepted + %" PRIu64 " duplicates + %" PRIu64
                    " rejected + %" PRIu64 " conflicts for %" PRIu64 " sent\n",
                    k, s->accepted, s->duplicates, s->rejected, s->conflicts, s->sent);
            bad = 1;
        }
        if (o->mix && (s->accepted != s->exp_accepted || s->duplicates != s->exp_duplicates ||
                       s->rejected != s->exp_rejected || s->conflicts != 0)) {
            fprintf(stderr,
                    "stream %d: answered %" PRIu64 " accepted, %" PRIu64 " duplicates, %" PRIu64
                    " rejected, %" PRIu64 " conflicts; sent %" PRIu64 " valid, %" PRIu64
                    " resubmitted, %" PRIu64 " invalid\n",
                    k, s->accepted, s->duplicates, s->rejected, s->conflicts, s->exp_accepted,
                    s->exp_duplicates, s->exp_rejected);
            bad = 1;
        }
        acc += s->accepted;
        dup += s->duplicates;
        rej += s->rejected;
        conf += s->conflicts;
        eacc += s->exp_accepted;
        edup += s->exp_duplicates;
        erej += s->exp_rejected;
        badrej += s->bad_rejections;
    }
    if (rej && !o->allow_rejected && !o->mix) {
        fprintf(stderr, "tidewatch-ingest-load: %" PRIu64 " records rejected\n", rej);
        bad = 1;
    }
    if (conf) {
        fprintf(stderr, "tidewatch-ingest-load: %" PRIu64 " conflicts\n", conf);
        bad = 1;
    }
    if (badrej) {
        fprintf(stderr,
                "tidewatch-ingest-load: %" PRIu64 " listed rejections are not the invalid "
                "records sent, or not for the reason they are invalid\n", badrej);
        bad = 1;
    }
    if (L.sent != o->n)
        bad = 1;
    double cpu = cpu_seconds();
    printf("%stotal %" PRIu64 " records, %.3f s, %.0f records/s (accepted %" PRIu64
           ", duplicates %" PRIu64 ", rejected %" PRIu64 ", conflicts %" PRIu64 "; %d streams on "
           "%d connection(s), mean record %.0f bytes, generator CPU %.2f s)\n",
           bad ? "FAILED: " : "", L.sent, secs, secs > 0 ? (double)L.sent / secs : 0.0, acc, dup,
           rej, conf, o->streams, o->channels, L.sent ? (double)L.bytes / (double)L.sent : 0.0,
           cpu);
    if (o->mix)
        printf("mix: sent %" PRIu64 " valid (records and corrections), %" PRIu64
               " resubmissions, %" PRIu64 " invalid; answers %s\n",
               eacc, edup, erej, bad ? "DO NOT MATCH" : "match");
    fflush(stdout);
    rv = bad ? 1 : 0;
out:
    if (L.tick)
        event_free(L.tick);
    if (L.deadline)
        event_free(L.deadline);
    if (L.channels)
        for (int k = 0; k < o->channels; k++)
            tw_grpc_channel_free(L.channels[k]);
    free(L.channels);
    free(L.streams);
    free(L.buf);
    if (L.base)
        event_base_free(L.base);
    return rv;
}

/* ---- main --------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tidewatch-ingest-load [options]\n"
            "\n"
            "Streams N generated records to IngestService.SubmitStream and prints records/s\n"
            "(every record acknowledged), or writes the same records as events rows, or\n"
            "inserts them with one prepared INSERT per row.\n"
            "\n"
            "  -n N               records (default 1000000)\n"
            "  -c C               concurrent SubmitStream calls (default 8)\n"
            "  --channels K       connections the calls are spread over (default 1)\n"
            "  --target HOST:PORT ingest daemon (default 127.0.0.1:50051)\n"
            "  --seed S           PRNG seed (default 1)\n"
            "  --prefix P         source_ref prefix, so reruns do not collide\n"
            "                     (default: derived from the current time)\n"
            "  --now UNIX_SECONDS anchor of the record times (the last two years before it;\n"
            "                     default now). Pass the same value to load and emit runs.\n"
            "  --window BYTES     unsent bytes allowed per stream (default 262144)\n"
            "  --timeout SECONDS  give up after this long (default 1800; 0: never)\n"
            "  --allow-rejected   rejected records are not an error\n"
            "  --mix              a mixed load: ~1%% resubmissions of earlier records\n"
            "                     (DUPLICATE), ~1%% invalid ones (REJECTED), ~0.5%% corrections\n"
            "                     of earlier records; the answers must match exactly\n"
            "  --items M          engines and boats are M items seen again and again\n"
            "                     (each record line names one of them; default: every\n"
            "                     one new), for provenance benchmarks\n"
            "  --quiet            no progress lines\n"
            "  --metrics HOST:PORT the daemon's metrics endpoint: progress then shows\n"
            "                     committed records (tidewatch_ingest_records_total)\n"
            "                     instead of records queued for sending\n"
            "  --emit-copy FILE   write the stored records as COPY text rows of events\n"
            "                     (columns: " EVENT_COLUMNS ")\n"
            "                     instead of sending; - = stdout\n"
            "  --emit-sql FILE    write one INSERT statement per stored record instead\n"
            "  --emit-quarantine FILE  with --emit-*: the rejected records as COPY text rows\n"
            "                     of quarantine (source, source_ref, payload)\n"
            "  --insert-baseline URL  insert the stored records into --table through libpq\n"
            "                     (URL: a connection string), one prepared INSERT per row,\n"
            "                     autocommit, by --clients concurrent clients\n"
            "  --clients N        clients of --insert-baseline (default 8)\n"
            "  --table NAME       table of --emit-sql and --insert-baseline (default events)\n"
            "  --data-dir DIR     channel-hubs.csv and gazetteer.csv (default %s)\n"
            "  -h, --help         this text\n",
            TW_DATA_DIR);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {.n = 1000000, .streams = 8, .channels = 1, .clients = 8,
              .target = "127.0.0.1:50051",
              .seed = 1, .data_dir = TW_DATA_DIR, .table = "events", .window = 256 * 1024,
              .timeout_s = 1800, .now = (int64_t)time(NULL)};
    char default_prefix[32];
    snprintf(default_prefix, sizeof default_prefix, "L%llx", (unsigned long long)time(NULL));
    o.prefix = default_prefix;
    enum { O_CHANNELS = 256, O_TARGET, O_SEED, O_PREFIX, O_NOW, O_WINDOW, O_TIMEOUT, O_ALLOW,
           O_QUIET, O_COPY, O_SQL, O_TABLE, O_DATA, O_METRICS, O_MIX, O_ITEMS, O_QUARANTINE, O_INSERT,
           O_CLIENTS };
    static const struct option longopts[] = {
        {"channels", required_argument, NULL, O_CHANNELS},
        {"target", required_argument, NULL, O_TARGET},
        {"seed", required_argument, NULL, O_SEED},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"now", required_argument, NULL, O_NOW},
        {"window", required_argument, NULL, O_WINDOW},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"allow-rejected", no_argument, NULL, O_ALLOW},
        {"quiet", no_argument, NULL, O_QUIET},
        {"emit-copy", required_argument, NULL, O_COPY},
        {"emit-sql", required_argument, NULL, O_SQL},
        {"table", required_argument, NULL, O_TABLE},
        {"data-dir", required_argument, NULL, O_DATA},
        {"metrics", required_argument, NULL, O_METRICS},
        {"mix", no_argument, NULL, O_MIX},
        {"items", required_argument, NULL, O_ITEMS},
        {"emit-quarantine", required_argument, NULL, O_QUARANTINE},
        {"insert-baseline", required_argument, NULL, O_INSERT},
        {"clients", required_argument, NULL, O_CLIENTS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "n:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (parse_u64(optarg, &o.n) != 0)
                goto bad;
            break;
        case 'c':
            if (parse_u64(optarg, &v) != 0 || v < 1 || v > 10000)
                goto bad;
            o.streams = (int)v;
            break;
        case O_CHANNELS:
            if (parse_u64(optarg, &v) != 0 || v < 1 || v > 1000)
                goto bad;
            o.channels = (int)v;
            break;
        case O_TARGET: o.target = optarg; break;
        case O_SEED:
            if (parse_u64(optarg, &o.seed) != 0)
                goto bad;
            break;
        case O_PREFIX:
            if (!optarg[0] || strlen(optarg) > 64)
                goto bad;
            o.prefix = optarg;
            break;
        case O_NOW:
            if (parse_u64(optarg, &v) != 0 || v < 1000000000ull || v > 4000000000ull)
                goto bad;
            o.now = (int64_t)v;
            break;
        case O_WINDOW:
            if (parse_u64(optarg, &v) != 0 || v < 1)
                goto bad;
            o.window = (size_t)v;
            break;
        case O_TIMEOUT: {
            char *end;
            o.timeout_s = strtod(optarg, &end);
            if (*end || !(o.timeout_s >= 0))
                goto bad;
            break;
        }
        case O_ALLOW: o.allow_rejected = 1; break;
        case O_QUIET: o.quiet = 1; break;
        case O_COPY: o.emit_copy = optarg; break;
        case O_SQL: o.emit_sql = optarg; break;
        case O_TABLE: o.table = optarg; break;
        case O_DATA: o.data_dir = optarg; break;
        case O_METRICS: o.metrics = optarg; break;
        case O_MIX: o.mix = 1; break;
        case O_ITEMS:
            if (parse_u64(optarg, &o.items) != 0) {
                fprintf(stderr, "tidewatch-ingest-load: --items: not a count: %s\n", optarg);
                return 2;
            }
            break;
        case O_QUARANTINE: o.emit_quarantine = optarg; break;
        case O_INSERT: o.insert_url = optarg; break;
        case O_CLIENTS:
            if (parse_u64(optarg, &v) != 0 || v < 1 || v > 1000)
                goto bad;
            o.clients = (int)v;
            break;
        case 'h': usage(stdout); return 0;
        default: goto bad;
        }
    }
    if (optind != argc)
        goto bad;
    if (!!o.emit_copy + !!o.emit_sql + !!o.insert_url > 1) {
        fprintf(stderr, "tidewatch-ingest-load: --emit-copy, --emit-sql and --insert-baseline "
                        "exclude each other\n");
        return 2;
    }
    if (o.emit_quarantine && !o.emit_copy && !o.emit_sql) {
        fprintf(stderr, "tidewatch-ingest-load: --emit-quarantine goes with --emit-copy or "
                        "--emit-sql\n");
        return 2;
    }
    if (o.channels > o.streams)
        o.channels = o.streams;
    for (const char *p = o.table; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '.')) {
            fprintf(stderr, "tidewatch-ingest-load: --table: plain lower-case names only\n");
            return 2;
        }

    gen g = {.seed = o.seed, .prefix = o.prefix, .now = o.now, .mix = o.mix, .items = o.items};
    tw_arena_init(&g.arena, 16 * 1024);
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++)
        g.engine_weight_total += engines[i].weight;
    char hubs[1024];
    snprintf(hubs, sizeof hubs, "%s/channel-hubs.csv", o.data_dir);
    int rv;
    if (load_hubs(&g, hubs) != 0) {
        rv = 2;
    } else if (o.emit_copy || o.emit_sql) {
        rv = emit(&g, &o, o.emit_copy ? o.emit_copy : o.emit_sql, o.emit_sql != NULL);
    } else if (o.insert_url) {
        rv = insert_baseline(&g, &o);
    } else {
        signal(SIGPIPE, SIG_IGN);
        fprintf(stderr,
                "tidewatch-ingest-load: %" PRIu64 " records%s to %s, %d streams on %d "
                "connection(s), seed %" PRIu64 ", prefix %s, now %" PRId64 "\n",
                o.n, o.mix ? " (mixed)" : "", o.target, o.streams, o.channels, o.seed, o.prefix,
                o.now);
        rv = run_load(&g, &o);
    }
    free(g.hubs);
    tw_arena_free(&g.arena);
    return rv;
bad:
    fprintf(stderr, "tidewatch-ingest-load: bad option or value (see --help)\n");
    return 2;
}
