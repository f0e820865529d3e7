/* tw_sim: the deterministic scenario simulator (see tw_sim.h).
 *
 * How it works: the world (importers, dealers, networks) is drawn first;
 * then every record is built as a protobuf-c message in a scratch arena,
 * packed, and kept with its simulated arrival time (event time plus a delay
 * that depends on who reports it; some records are late by weeks). Mess is
 * applied as records are kept (duplicates, rejected versions, corrections).
 * At the end the records are sorted by (arrival, creation order) and handed
 * to the callback; the truth is written from the items and networks.
 *
 * Every random choice comes from one xoshiro256** stream seeded by
 * splitmix64 from the seed, consumed in a fixed order, so the output
 * depends on the parameters only. */
#include "tw_sim.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tidewatch/v1/records.pb-c.h"
#include "tw_arena.h"
#include "tw_hin.h"
#include "tw_ident.h"
#include "tw_serial.h"

#define DAY 86400
#define HOUR 3600

/* ---- PRNG ------------------------------------------------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next64(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, n); n > 0. */
static uint64_t below(rng *r, uint64_t n)
{
    return n ? (next64(r) >> 11) % n : 0;
}

/* Uniform in [lo, hi]. */
static int64_t range(rng *r, int64_t lo, int64_t hi)
{
    return hi <= lo ? lo : lo + (int64_t)below(r, (uint64_t)(hi - lo + 1));
}

static double unit(rng *r)
{
    return (double)(next64(r) >> 11) * (1.0 / 9007199254740992.0);
}

static int chance(rng *r, double p)
{
    return unit(r) < p;
}

#define PICK(r, arr) ((arr)[below((r), sizeof(arr) / sizeof((arr)[0]))])

/* ---- reference data --------------------------------------------------------- */

/* A place the sim names. Every one resolves through deploy/data (the unit
 * test checks it): gazetteer names unique in their country, hub names, or
 * with a region where the name repeats. slug: ASCII, for source names. */
typedef struct place {
    const char *name, *cc, *region, *slug;
    double lat, lon;
} place;

static const place towns_fr[] = {
    {"Paris", "FR", NULL, "paris", 48.85341, 2.3488},
    {"Lyon", "FR", NULL, "lyon", 45.74906, 4.84789},
    {"Rouen", "FR", NULL, "rouen", 49.44313, 1.09932},
    {"Amiens", "FR", NULL, "amiens", 49.9, 2.3},
    {"Caen", "FR", NULL, "caen", 49.18585, -0.35912},
    {"Nantes", "FR", NULL, "nantes", 47.21725, -1.55336},
    {"La Rochelle", "FR", NULL, "la-rochelle", 46.16308, -1.15222},
    {"Bordeaux", "FR", NULL, "bordeaux", 44.84124, -0.58046},
    {"Brest", "FR", NULL, "brest", 48.39029, -4.48628},
    {"Annecy", "FR", NULL, "annecy", 45.90878, 6.12565},
    {"Le Havre", "FR", NULL, "le-havre", 49.49346, 0.10785},
};
static const place towns_de[] = {
    {"Hamburg", "DE", NULL, "hamburg", 53.55073, 9.99302},
    {"Bremen", "DE", NULL, "bremen", 53.07582, 8.80717},
    {"Kiel", "DE", NULL, "kiel", 54.32133, 10.13489},
    {"Köln", "DE", NULL, "koeln", 50.93333, 6.95},
    {"Düsseldorf", "DE", NULL, "duesseldorf", 51.22319, 6.77927},
    {"Berlin", "DE", NULL, "berlin", 52.52437, 13.41053},
    {"Hannover", "DE", NULL, "hannover", 52.37052, 9.73322},
    {"Dortmund", "DE", NULL, "dortmund", 51.51494, 7.466},
    {"Duisburg", "DE", NULL, "duisburg", 51.43247, 6.76516},
    {"Bochum", "DE", NULL, "bochum", 51.48165, 7.21648},
    {"Bielefeld", "DE", NULL, "bielefeld", 52.03333, 8.53333},
    {"Frankfurt am Main", "DE", NULL, "frankfurt", 50.11552, 8.68417},
};
static const place towns_nl[] = {
    {"Amsterdam", "NL", NULL, "amsterdam", 52.37403, 4.88969},
    {"Rotterdam", "NL", NULL, "rotterdam", 51.9225, 4.47917},
    {"Utrecht", "NL", NULL, "utrecht", 52.09083, 5.12222},
    {"Eindhoven", "NL", NULL, "eindhoven", 51.44083, 5.47778},
    {"Lelystad", "NL", NULL, "lelystad", 52.50833, 5.475},
    {"Harderwijk", "NL", NULL, "harderwijk", 52.34167, 5.62083},
    {"Groningen", "NL", NULL, "groningen", 53.21917, 6.56667},
    {"Venlo", "NL", NULL, "venlo", 51.37, 6.16806},
    {"Breda", "NL", NULL, "breda", 51.58656, 4.77596},
};
static const place towns_be[] = {
    {"Gent", "BE", NULL, "gent", 51.05, 3.71667},
    {"Brussels", "BE", NULL, "brussels", 50.85045, 4.34878},
    {"Antwerp", "BE", NULL, "antwerpen", 51.22047, 4.40026},
    {"Liège", "BE", NULL, "liege", 50.63373, 5.56749},
    {"Namur", "BE", NULL, "namur", 50.4669, 4.86746},
    {"Kortrijk", "BE", NULL, "kortrijk", 50.82803, 3.26487},
};
static const place towns_gb[] = {
    {"Southampton", "GB", NULL, "southampton", 50.90395, -1.40428},
    {"Portsmouth", "GB", NULL, "portsmouth", 50.79899, -1.09125},
    {"Plymouth", "GB", NULL, "plymouth", 50.37153, -4.14305},
    {"Bristol", "GB", NULL, "bristol", 51.45523, -2.59665},
    {"London", "GB", NULL, "london", 51.50853, -0.12574},
    {"Poole", "GB", NULL, "poole", 50.71429, -1.98458},
    {"Brighton", "GB", NULL, "brighton", 50.82838, -0.13947},
};
/* Coastal dealers: towns within a coast hub's radius. */
static const place towns_coast_trade[] = {
    {"Boulogne-sur-Mer", "FR", NULL, "boulogne", 50.72485, 1.61373},
    {"Calais", "FR", NULL, "calais", 50.95194, 1.85635},
    {"Dunkerque", "FR", NULL, "dunkerque", 51.0344, 2.37681},
    {"Étaples", "FR", NULL, "etaples", 50.52194, 1.63319},
    {"Le Touquet-Paris-Plage", "FR", NULL, "le-touquet", 50.52432, 1.58571},
    {"Gravelines", "FR", NULL, "gravelines", 50.98651, 2.12807},
    {"Ostend", "BE", NULL, "oostende", 51.21551, 2.927},
    {"Nieuwpoort", "BE", NULL, "nieuwpoort", 51.13008, 2.75135},
};
/* Launch beaches and coastal drop-off points. */
static const place coast_launch[] = {
    {"Gravelines", "FR", NULL, "gravelines", 50.98651, 2.12807},
    {"Loon-Plage", "FR", NULL, "loon-plage", 50.99647, 2.2177},
    {"Wimereux", "FR", NULL, "wimereux", 50.76963, 1.61139},
    {"Wissant", "FR", NULL, "wissant", 50.8853, 1.66263},
    {"Sangatte", "FR", NULL, "sangatte", 50.94564, 1.75321},
    {"Le Portel", "FR", NULL, "le-portel", 50.70559, 1.57574},
    {"Camiers", "FR", NULL, "camiers", 50.57153, 1.61325},
    {"Grande-Synthe", "FR", NULL, "grande-synthe", 51.0154, 2.29975},
    {"Marck", "FR", NULL, "marck", 50.94897, 1.94328},
    {"De Panne", "BE", NULL, "de-panne", 51.09793, 2.59368},
};
static const place staging[] = {
    {"Lille", "FR", NULL, "lille", 50.63391, 3.05512},
    {"Saint-Omer", "FR", NULL, "saint-omer", 50.74834, 2.26091},
    {"Arras", "FR", NULL, "arras", 50.29301, 2.78186},
};
static const place transit_de[] = {
    {"Essen", "DE", "Nordrhein-Westfalen", "essen", 51.45657, 7.01228},
    {"Gelsenkirchen", "DE", NULL, "gelsenkirchen", 51.50508, 7.09654},
    {"Duisburg", "DE", NULL, "duisburg", 51.43247, 6.76516},
};
static const place farms[] = {
    {"Osnabrück", "DE", NULL, "osnabrueck", 52.27264, 8.0498},
    {"Lotte", "DE", NULL, "lotte", 52.28333, 7.91667},
};
static const place p_istanbul = {"Istanbul", "TR", NULL, "istanbul", 41.01384, 28.94966};
static const place p_kapitan = {"Kapitan Andreevo", "BG", NULL, "kapitan-andreevo", 41.7206, 26.3207};

static const char *const first_fr[] = {"Julien", "Camille", "Thomas", "Lea", "Nicolas", "Sophie",
                                       "Antoine", "Marie", "Pierre", "Claire", "Hugo", "Manon"};
static const char *const first_de[] = {"Jonas", "Lena", "Lukas", "Anna", "Felix", "Laura",
                                       "Tobias", "Julia", "Stefan", "Katrin", "Jan", "Miriam"};
static const char *const first_nl[] = {"Daan", "Sanne", "Bram", "Lotte", "Joris", "Eva",
                                       "Thijs", "Femke", "Ruben", "Iris"};
static const char *const first_be[] = {"Wout", "Lies", "Pieter", "An", "Jens", "Sarah",
                                       "Koen", "Elise", "Arne", "Nele"};
static const char *const first_gb[] = {"Oliver", "Emma", "Harry", "Sophie", "James", "Amelia",
                                       "George", "Olivia", "Jack", "Grace"};
static const char *const last_fr[] = {"Martin", "Bernard", "Dubois", "Lefebvre", "Moreau",
                                      "Laurent", "Fournier", "Girard", "Lambert", "Fontaine"};
static const char *const last_de[] = {"Schneider", "Fischer", "Weber", "Meyer", "Wagner",
                                      "Becker", "Hoffmann", "Koch", "Richter", "Klein"};
static const char *const last_nl[] = {"de Jong", "Jansen", "de Vries", "van Dijk", "Bakker",
                                      "Visser", "Smit", "Meijer", "Mulder", "Bos"};
static const char *const last_be[] = {"Peeters", "Janssens", "Maes", "Jacobs", "Mertens",
                                      "Willems", "Claes", "Goossens", "Wouters", "De Smet"};
static const char *const last_gb[] = {"Smith", "Jones", "Taylor", "Brown", "Williams",
                                      "Wilson", "Johnson", "Davies", "Robinson", "Wright"};
static const char *const first_net[] = {"Ardit", "Berzan", "Kawa", "Dilan", "Hemin", "Arben",
                                        "Rebin", "Soran", "Emre", "Burak", "Aram", "Dler"};
static const char *const last_net[] = {"Ahmadi", "Hoxha", "Karimi", "Rahimi", "Demir", "Yilmaz",
                                       "Berisha", "Mohammadi", "Aziz", "Kaya", "Osman", "Kurt"};
static const char *const co_words[] = {"Nord", "Rhein", "Atlantic", "Delta", "Channel", "Maas",
                                       "Elbe", "Weser", "Schelde", "Solent", "Baltic", "Opaal"};
static const char *const dealer_words[] = {"Port", "Quai", "Hafen", "Marina", "Harbour", "Cap",
                                           "Bootshaus", "Watersport", "Nautic", "Anker"};
static const char *const net_co_words[] = {"Trans", "Global", "Euro", "Star", "Prime", "Fast"};
static const char *const mail_domains[] = {"example.com", "example.net", "example.org"};
static const char *const nationalities[] = {"AF", "IQ", "IR", "SY", "ER", "SD", "VN", "EG"};

typedef enum { SER_YAMAHA, SER_MERCURY, SER_SUZUKI, SER_HONDA, SER_FREE } ser_style;

typedef struct sim_maker {
    const char *name;
    int boat;
    ser_style style;
    const char *prefix;        /* free-form prefix; CIN country + MIC for boats */
    const char *models[3];
    double size[3];            /* hp or metres */
} sim_maker;

static const sim_maker engines_legit[] = {
    {"Yamaha", 0, SER_YAMAHA, "", {"F40FETL", "F15CMHS", "F60FETL"}, {40, 15, 60}},
    {"Mercury", 0, SER_MERCURY, "", {"F40 ELPT", "F15 MH", "F60 ELPT"}, {40, 15, 60}},
    {"Suzuki", 0, SER_SUZUKI, "", {"DF40A", "DF15A", "DF60A"}, {40, 15, 60}},
    {"Honda", 0, SER_HONDA, "", {"BF40D", "BF15D", "BF60A"}, {40, 15, 60}},
    {"Tohatsu", 0, SER_FREE, "TH", {"MFS40", "MFS15", "MFS60"}, {40, 15, 60}},
};
static const sim_maker engines_cheap[] = {
    {"Parsun", 0, SER_FREE, "PX", {"F40FWS", "F15BMS", "F60FEL"}, {40, 15, 60}},
    {"Hidea", 0, SER_FREE, "HD", {"HDF40", "HDF15", "HDF60"}, {40, 15, 60}},
    {"Yamaha", 0, SER_YAMAHA, "", {"F40FETL", "F40GETL", "F60FETL"}, {40, 40, 60}},
    {"Tohatsu", 0, SER_FREE, "TH", {"MFS40", "M40D2", "MFS60"}, {40, 40, 60}},
};
static const sim_maker boats_legit[] = {
    {"Zodiac", 1, SER_FREE, "FRZDC", {"Medline 580", "Cadet 340", "Open 5.5"}, {5.8, 3.4, 5.5}},
    {"Bombard", 1, SER_FREE, "FRBMB", {"Explorer 500", "Sunrunner 3.6", "Commando C5"}, {5.0, 3.6, 5.0}},
    {"Highfield", 1, SER_FREE, "CNHFD", {"Ocean Master 540", "Classic 340", "Sport 600"}, {5.4, 3.4, 6.0}},
    {"Quicksilver", 1, SER_FREE, "FRQSV", {"Activ 505", "Sport 470", "HD 380"}, {5.0, 4.7, 3.8}},
};
static const sim_maker boats_cheap[] = {
    {"Seaking", 1, SER_FREE, "CNSKG", {"SK-800", "SK-950", "SK-1000"}, {8.0, 9.5, 10.0}},
    {"Ocean Rider", 1, SER_FREE, "CNORD", {"OR-750", "OR-850", "OR-900"}, {7.5, 8.5, 9.0}},
};

/* ---- the world ---------------------------------------------------------------- */

#define MAX_KEYS 16
#define MAX_CLUSTERS 40
#define MAX_CONS 8
#define MAX_PKEYS 4

typedef struct party {
    int kind; /* Party.Kind */
    const char *name;
    const place *pl;
    const char *address;
    const char *vat, *phone, *email, *iddoc; /* as given, NULL none */
    const char *phone_alt;                   /* the same phone written another way */
    const char *source;                      /* trade parties: their source name */
    const char *keys[MAX_PKEYS];             /* normalised "kind:value" */
    int nkeys;
    int network;                             /* 0 legit */
    const char *role;                        /* truth: role in a sim_net */
    int coastal;
} party;

enum { FATE_NONE, FATE_SEIZED_STAGING, FATE_SEIZED_BEACH, FATE_LAUNCHED, FATE_LAUNCHED_UNSEEN,
       FATE_NEVER };
static const char *const fate_names[] = {"", "seized_staging", "seized_beach", "launched",
                                         "launched_unseen", "never"};

/* A key as prov_item_keys holds it. */
typedef struct ikey {
    const char *kind; /* "serial", "hull" */
    const char *key;
    const char *maker; /* canonical, "" none */
    int partial;
} ikey;

typedef struct item {
    size_t id;
    const sim_maker *mk;
    int model;
    const char *serial; /* engines: the true serial as printed */
    const char *hull;   /* boats */
    int network;        /* 0 legit */
    int dealer;         /* stock of dealer (index), -1 none */
    int64_t avail;      /* in stock from */
    int claimed;
    int coastal;        /* legitimate coastal trade */
    int counterfeit;    /* a network engine fitted with a fake plate */
    const char *fake_plate;
    ikey keys[MAX_KEYS];
    int nkeys;
    const char *clusters[MAX_CLUSTERS];
    int nclusters;
    const char *cons[MAX_CONS];
    int ncons;
    int fate;
    int64_t warn_by;
    const place *fate_place;
} item;

typedef struct dealer {
    party *p;
    int importer;
    int coastal;
    item **stock;
    size_t nstock, capstock;
} dealer;

#define MAX_NET_PARTIES 16

typedef struct sim_net {
    int id;
    const char *kind;
    party *parties[MAX_NET_PARTIES];
    int nparties;
    const char *cons[32];
    int ncons;
    const char *vehicles[16];
    int nvehicles;
    item **items;
    size_t nitems, capitems;
    int64_t start, end;
} sim_net;

typedef struct rec {
    uint8_t *data;
    size_t len;
    char *source, *ref;
    const char *why;
    tw_sim_expect expect;
    int64_t event_s, arrival_s;
    uint64_t seq;
    int network, coastal;
} rec;

typedef struct sim {
    tw_sim_params p;
    int64_t t0, t1; /* start, end */
    rng r;
    tw_arena a;     /* world: names, parties, items */
    tw_arena ra;    /* one record's messages */
    int oom;
    unsigned char dummy[1024];
    uint64_t counter;
    party **importers;
    size_t nimporters;
    dealer *dealers;
    size_t ndealers;
    party **carriers;
    size_t ncarriers;
    item **items;
    size_t nitems, capitems;
    sim_net *nets;
    size_t nnets;
    rec *recs;
    size_t nrecs, caprecs;
    json_t *coastal_recs;
    size_t n_accepted, n_duplicate, n_rejected;
} sim;

/* ---- memory helpers ------------------------------------------------------------ */

static void *wcalloc(sim *s, tw_arena *a, size_t n)
{
    void *p = tw_arena_calloc(a, 1, n);
    if (!p) {
        s->oom = 1;
        memset(s->dummy, 0, sizeof s->dummy);
        return n <= sizeof s->dummy ? s->dummy : NULL;
    }
    return p;
}

static const char *wprintf(sim *s, tw_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static const char *wprintf(sim *s, tw_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = tw_arena_vprintf(a, fmt, ap);
    va_end(ap);
    if (!p) {
        s->oom = 1;
        return "";
    }
    return p;
}

static int grow(sim *s, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void *na = realloc(*arr, nc * elem);
    if (!na) {
        s->oom = 1;
        return -1;
    }
    *arr = na;
    *cap = nc;
    return 0;
}

static void add_str(const char **arr, int *n, int cap, const char *v)
{
    if (!v || !v[0])
        return;
    for (int i = 0; i < *n; i++)
        if (strcmp(arr[i], v) == 0)
            return;
    if (*n < cap)
        arr[(*n)++] = v;
}

/* ---- people, companies and identifiers --------------------------------------- */

static const place *town_of(sim *s, const char *cc)
{
    rng *r = &s->r;
    if (strcmp(cc, "FR") == 0)
        return &PICK(r, towns_fr);
    if (strcmp(cc, "DE") == 0)
        return &PICK(r, towns_de);
    if (strcmp(cc, "NL") == 0)
        return &PICK(r, towns_nl);
    if (strcmp(cc, "BE") == 0)
        return &PICK(r, towns_be);
    return &PICK(r, towns_gb);
}

static const char *phone_for(sim *s, const char *cc, int national, const char **alt)
{
    rng *r = &s->r;
    unsigned a = (unsigned)below(r, 100000000);
    const char *intl, *nat;
    if (strcmp(cc, "FR") == 0) {
        intl = wprintf(s, &s->a, "+33 6 %02u %02u %02u %02u", a / 1000000 % 100, a / 10000 % 100,
                       a / 100 % 100, a % 100);
        nat = wprintf(s, &s->a, "06%08u", a);
    } else if (strcmp(cc, "DE") == 0) {
        intl = wprintf(s, &s->a, "+49 151 %08u", a);
        nat = wprintf(s, &s->a, "0151-%08u", a);
    } else if (strcmp(cc, "NL") == 0) {
        intl = wprintf(s, &s->a, "+31 6 %08u", a);
        nat = wprintf(s, &s->a, "06 %08u", a);
    } else if (strcmp(cc, "BE") == 0) {
        intl = wprintf(s, &s->a, "+32 470 %06u", a % 1000000);
        nat = wprintf(s, &s->a, "0470/%06u", a % 1000000);
    } else if (strcmp(cc, "TR") == 0) {
        intl = wprintf(s, &s->a, "+90 532 %07u", a % 10000000);
        nat = intl;
    } else {
        intl = wprintf(s, &s->a, "+44 7700 %06u", a % 1000000);
        nat = wprintf(s, &s->a, "07700 %06u", a % 1000000);
    }
    if (alt)
        *alt = national ? intl : nat;
    return national ? nat : intl;
}

static const char *vat_for(sim *s, const char *cc)
{
    rng *r = &s->r;
    unsigned a = (unsigned)below(r, 1000000000);
    if (strcmp(cc, "FR") == 0)
        return wprintf(s, &s->a, "FR%02u%09u", (unsigned)below(r, 100), a);
    if (strcmp(cc, "NL") == 0)
        return wprintf(s, &s->a, "NL%09uB01", a);
    if (strcmp(cc, "BE") == 0)
        return wprintf(s, &s->a, "BE0%09u", a);
    if (strcmp(cc, "TR") == 0)
        return wprintf(s, &s->a, "TR%010u", a);
    return wprintf(s, &s->a, "%s%09u", cc, a);
}

/* Normalise the party's identifiers as ingest does and keep them as
 * cluster keys ("kind:value"). */
static void party_keys(sim *s, party *p)
{
    char out[TW_IDENT_OUT];
    const char *cc = p->pl ? p->pl->cc : NULL;
    if (p->vat && tw_ident_vat(p->vat, cc, out, sizeof out) == TW_IDENT_OK)
        add_str(p->keys, &p->nkeys, MAX_PKEYS, wprintf(s, &s->a, "vat:%s", out));
    if (p->phone && tw_ident_phone(p->phone, cc, out, sizeof out) == TW_IDENT_OK)
        add_str(p->keys, &p->nkeys, MAX_PKEYS, wprintf(s, &s->a, "phone:%s", out));
    if (p->email && tw_ident_email(p->email, out, sizeof out) == TW_IDENT_OK)
        add_str(p->keys, &p->nkeys, MAX_PKEYS, wprintf(s, &s->a, "email:%s", out));
    if (p->iddoc && tw_ident_code(p->iddoc, out, sizeof out) == TW_IDENT_OK)
        add_str(p->keys, &p->nkeys, MAX_PKEYS, wprintf(s, &s->a, "identity_document:%s", out));
}

static party *new_party(sim *s, int kind, const char *name, const place *pl)
{
    party *p = wcalloc(s, &s->a, sizeof *p);
    if (!p)
        return NULL;
    p->kind = kind;
    p->name = name;
    p->pl = pl;
    p->address = wprintf(s, &s->a, "%u %s, %s", (unsigned)range(&s->r, 1, 180),
                         PICK(&s->r, ((const char *const[]){"rue du Port", "Hauptstrasse",
                                                             "Havenweg", "Kaai", "High Street",
                                                             "Industrieweg", "Zone artisanale"})),
                         pl->name);
    return p;
}

static void names_for(sim *s, const char *cc, const char **first, const char **last)
{
    rng *r = &s->r;
    if (strcmp(cc, "FR") == 0) {
        *first = PICK(r, first_fr);
        *last = PICK(r, last_fr);
    } else if (strcmp(cc, "DE") == 0) {
        *first = PICK(r, first_de);
        *last = PICK(r, last_de);
    } else if (strcmp(cc, "NL") == 0) {
        *first = PICK(r, first_nl);
        *last = PICK(r, last_nl);
    } else if (strcmp(cc, "BE") == 0) {
        *first = PICK(r, first_be);
        *last = PICK(r, last_be);
    } else {
        *first = PICK(r, first_gb);
        *last = PICK(r, last_gb);
    }
}

static void ascii_slug(char *out, size_t n, const char *a, const char *b)
{
    size_t j = 0;
    const char *parts[2] = {a, b};
    for (int k = 0; k < 2 && parts[k]; k++) {
        if (k && j + 1 < n)
            out[j++] = '.';
        for (const char *c = parts[k]; *c && j + 1 < n; c++) {
            unsigned char ch = (unsigned char)*c;
            if (ch >= 'A' && ch <= 'Z')
                out[j++] = (char)(ch - 'A' + 'a');
            else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
                out[j++] = (char)ch;
            else if (ch == ' ' || ch == '-')
                out[j++] = '-';
        }
    }
    out[j] = '\0';
}

/* A private person in cc (a town of cc unless pl is given). */
static party *person(sim *s, const char *cc, const place *pl, int network)
{
    const char *first, *last;
    if (network) {
        first = PICK(&s->r, first_net);
        last = PICK(&s->r, last_net);
    } else {
        names_for(s, cc, &first, &last);
    }
    party *p = new_party(s, TIDEWATCH__V1__PARTY__KIND__PERSON,
                         wprintf(s, &s->a, "%s %s", first, last), pl ? pl : town_of(s, cc));
    if (!p)
        return NULL;
    p->network = network;
    p->phone = phone_for(s, p->pl->cc, chance(&s->r, 0.3), &p->phone_alt);
    char slug[64];
    ascii_slug(slug, sizeof slug, first, last);
    if (!network || chance(&s->r, 0.5))
        p->email = wprintf(s, &s->a, "%s%u@%s", slug, (unsigned)below(&s->r, 1000),
                           PICK(&s->r, mail_domains));
    if (network || chance(&s->r, 0.3))
        p->iddoc = wprintf(s, &s->a, "%c%c%07u", (char)('A' + below(&s->r, 26)),
                           (char)('A' + below(&s->r, 26)), (unsigned)below(&s->r, 10000000));
    party_keys(s, p);
    return p;
}

static const char *co_suffix(const char *cc)
{
    return strcmp(cc, "DE") == 0   ? "GmbH"
           : strcmp(cc, "NL") == 0 ? "B.V."
           : strcmp(cc, "FR") == 0 ? "SAS"
           : strcmp(cc, "BE") == 0 ? "NV"
           : strcmp(cc, "TR") == 0 ? "Ltd. Sti."
           : strcmp(cc, "BG") == 0 ? "EOOD"
                                   : "Ltd";
}

static party *company(sim *s, const char *name, const place *pl, const char *kind_slug,
                      int network)
{
    party *p = new_party(s, TIDEWATCH__V1__PARTY__KIND__COMPANY, name, pl);
    if (!p)
        return NULL;
    p->network = network;
    p->vat = vat_for(s, pl->cc);
    p->phone = phone_for(s, pl->cc, 0, NULL);
    party_keys(s, p);
    if (kind_slug) {
        char slug[96];
        ascii_slug(slug, sizeof slug, name, NULL);
        char cc[3] = {(char)(pl->cc[0] - 'A' + 'a'), (char)(pl->cc[1] - 'A' + 'a'), 0};
        p->source = wprintf(s, &s->a, "%s.%s.%s", kind_slug, cc, slug);
    }
    return p;
}

/* ---- items and serials ------------------------------------------------------ */

static const char *serial_for(sim *s, const sim_maker *m)
{
    rng *r = &s->r;
    static const char *const yam[] = {"6BG", "6E5", "6AH", "6B4", "63V"};
    static const char *const suz[] = {"02002", "04004", "14003", "06001"};
    static const char *const hon[] = {"BAAJ", "BAZJ", "BBEJ", "BACJ"};
    static const char letters[] = "ABCDEFGHJKLMNPRSTUVWXYZ";
    switch (m->style) {
    case SER_YAMAHA:
        return wprintf(s, &s->a, "%s-%c-%07u", PICK(r, yam), "SLX"[below(r, 3)],
                       (unsigned)range(r, 1000000, 1999999));
    case SER_MERCURY:
        return wprintf(s, &s->a, "%u%c%06u", (unsigned)below(r, 3),
                       letters[below(r, sizeof letters - 1)], (unsigned)below(r, 1000000));
    case SER_SUZUKI:
        return wprintf(s, &s->a, "%sF-%06u", PICK(r, suz), (unsigned)range(r, 100000, 999999));
    case SER_HONDA:
        return wprintf(s, &s->a, "%s-%07u", PICK(r, hon), (unsigned)range(r, 1000000, 9999999));
    default:
        return wprintf(s, &s->a, "%s%08u", m->prefix, (unsigned)below(r, 100000000));
    }
}

/* An EU CIN: country, MIC, 5 serial characters, month, production year
 * digit, model year. */
static const char *hull_for(sim *s, const sim_maker *m, int year)
{
    rng *r = &s->r;
    static const char ser[] = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
    char sn[6];
    for (int i = 0; i < 5; i++)
        sn[i] = ser[below(r, sizeof ser - 1)];
    sn[5] = 0;
    int model = year % 100;
    int prod = (year - (int)below(r, 2)) % 10;
    return wprintf(s, &s->a, "%.2s-%s%s%c%d%02d", m->prefix, m->prefix + 2, sn,
                   (char)('A' + below(r, 12)), prod, model);
}

static int year_of(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm))
        return 2026;
    return tm.tm_year + 1900;
}

static item *new_item(sim *s, const sim_maker *m, int64_t t, int network)
{
    item *it = wcalloc(s, &s->a, sizeof *it);
    if (!it || grow(s, (void **)&s->items, &s->capitems, s->nitems, sizeof *s->items))
        return NULL;
    it->id = s->nitems;
    s->items[s->nitems++] = it;
    it->mk = m;
    it->model = (int)below(&s->r, 3);
    it->network = network;
    it->dealer = -1;
    if (m->boat)
        it->hull = hull_for(s, m, year_of(t));
    else
        it->serial = serial_for(s, m);
    return it;
}

static const char *maker_canon(const char *make)
{
    tw_serial_maker m = tw_serial_maker_parse(make);
    if (m == TW_SERIAL_MAKER_UNKNOWN || m == TW_SERIAL_MAKER_OTHER)
        return "";
    return tw_serial_maker_name(m);
}

static void add_key(sim *s, item *it, const char *kind, const char *key, const char *maker,
                    int partial)
{
    for (int i = 0; i < it->nkeys; i++)
        if (strcmp(it->keys[i].kind, kind) == 0 && strcmp(it->keys[i].key, key) == 0 &&
            strcmp(it->keys[i].maker, maker) == 0)
            return;
    if (it->nkeys >= MAX_KEYS)
        return;
    it->keys[it->nkeys++] = (ikey){.kind = kind, .key = wprintf(s, &s->a, "%s", key),
                                   .maker = maker, .partial = partial != 0};
}

/* Remember the key a reading (or hull number) gives, as prov_item_keys
 * will hold it: "serial\tKEY\tMaker\t0|1". */
static void note_serial_key(sim *s, item *it, const char *text)
{
    tw_serial ser;
    if (!text || !text[0] || tw_serial_normalize(text, strlen(text), it->mk->name, &ser) != TW_SERIAL_OK)
        return;
    add_key(s, it, "serial", ser.key, maker_canon(it->mk->name), ser.partial);
}

static void note_hull_key(sim *s, item *it, const char *hull, int64_t t)
{
    tw_hin h;
    if (!hull || tw_hin_decode(hull, strlen(hull), year_of(t), &h) != TW_HIN_OK)
        return;
    add_key(s, it, "hull", h.key, "", h.partial);
}

static void item_touch(item *it, const party *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nkeys; i++)
        add_str(it->clusters, &it->nclusters, MAX_CLUSTERS, p->keys[i]);
}

/* OCR / hand-copy confusion: one confusable character swapped. */
static const char *confuse(sim *s, const char *text)
{
    static const char from[] = "0O1I5S8B";
    static const char to[] = "O0I1S5B8";
    size_t n = strlen(text);
    char *c = (char *)wprintf(s, &s->ra, "%s", text);
    if (!c[0])
        return text;
    size_t start = below(&s->r, n);
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        const char *f = strchr(from, c[i]);
        if (f && c[i]) {
            c[i] = to[f - from];
            return c;
        }
    }
    return c;
}

/* Unreadable characters as '?', 1-3 of them, never a separator. */
static const char *partial_of(sim *s, const char *text)
{
    char *c = (char *)wprintf(s, &s->ra, "%s", text);
    size_t n = strlen(c);
    int k = (int)range(&s->r, 1, 3);
    for (int j = 0; j < k && n; j++) {
        size_t i = below(&s->r, n);
        if (c[i] != '-' && c[i] != ' ')
            c[i] = '?';
    }
    return c;
}

/* ---- protobuf builders (scratch arena) ------------------------------------ */

static Google__Protobuf__Timestamp *ts(sim *s, int64_t t)
{
    Google__Protobuf__Timestamp *p = wcalloc(s, &s->ra, sizeof *p);
    google__protobuf__timestamp__init(p);
    p->seconds = t;
    return p;
}

static Tidewatch__V1__Place *mk_place(sim *s, const place *pl, int coords, double jitter)
{
    Tidewatch__V1__Place *p = wcalloc(s, &s->ra, sizeof *p);
    tidewatch__v1__place__init(p);
    p->name = (char *)pl->name;
    p->country = (char *)pl->cc;
    if (pl->region)
        p->region = (char *)pl->region;
    if (coords) {
        Tidewatch__V1__LatLon *c = wcalloc(s, &s->ra, sizeof *c);
        tidewatch__v1__lat_lon__init(c);
        c->lat = pl->lat + (unit(&s->r) - 0.5) * jitter;
        c->lon = pl->lon + (unit(&s->r) - 0.5) * jitter;
        p->coordinates = c;
    }
    return p;
}

static Tidewatch__V1__PartyIdentifier *mk_ident(sim *s, int kind, const char *v)
{
    Tidewatch__V1__PartyIdentifier *id = wcalloc(s, &s->ra, sizeof *id);
    tidewatch__v1__party_identifier__init(id);
    id->kind = kind;
    id->value = (char *)v;
    return id;
}

/* alt: write the phone the other way (national/international). */
static Tidewatch__V1__Party *mk_party(sim *s, const party *pp, int alt)
{
    Tidewatch__V1__Party *p = wcalloc(s, &s->ra, sizeof *p);
    tidewatch__v1__party__init(p);
    p->kind = pp->kind;
    p->name = (char *)pp->name;
    p->country = (char *)pp->pl->cc;
    p->address = (char *)pp->address;
    if (pp->kind != TIDEWATCH__V1__PARTY__KIND__AGENCY)
        p->place = mk_place(s, pp->pl, 0, 0);
    Tidewatch__V1__PartyIdentifier **ids = wcalloc(s, &s->ra, 4 * sizeof *ids);
    size_t n = 0;
    if (pp->vat)
        ids[n++] = mk_ident(s, TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__VAT, pp->vat);
    if (pp->phone)
        ids[n++] = mk_ident(s, TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__PHONE,
                            alt && pp->phone_alt ? pp->phone_alt : pp->phone);
    if (pp->email)
        ids[n++] = mk_ident(s, TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__EMAIL, pp->email);
    if (pp->iddoc)
        ids[n++] = mk_ident(s, TIDEWATCH__V1__PARTY_IDENTIFIER__KIND__IDENTITY_DOCUMENT, pp->iddoc);
    p->identifiers = ids;
    p->n_identifiers = n;
    return p;
}

static Tidewatch__V1__Party *mk_agency(sim *s, const char *name, const place *pl)
{
    Tidewatch__V1__Party *p = wcalloc(s, &s->ra, sizeof *p);
    tidewatch__v1__party__init(p);
    p->kind = TIDEWATCH__V1__PARTY__KIND__AGENCY;
    p->name = (char *)name;
    p->country = (char *)pl->cc;
    return p;
}

static Tidewatch__V1__SerialReading *mk_reading(sim *s, const char *text, int method, int compl)
{
    Tidewatch__V1__SerialReading *r = wcalloc(s, &s->ra, sizeof *r);
    tidewatch__v1__serial_reading__init(r);
    r->text = (char *)text;
    r->method = method;
    r->completeness = compl;
    return r;
}

enum { READ_CLEAN, READ_SEIZED };

/* The equipment of an item as a record shows it; READ_SEIZED applies the
 * seizure mess (ground-off, counterfeit plates, partial reads, OCR).
 * *ground_off is set when the serial was ground off (no readable text). */
static Tidewatch__V1__Equipment *mk_equipment(sim *s, item *it, int method, int mode, int64_t t,
                                              int *ground_off)
{
    Tidewatch__V1__Equipment *e = wcalloc(s, &s->ra, sizeof *e);
    tidewatch__v1__equipment__init(e);
    const sim_maker *m = it->mk;
    e->kind = m->boat ? TIDEWATCH__V1__EQUIPMENT__KIND__BOAT : TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE;
    e->make = (char *)m->name;
    e->model = (char *)m->models[it->model];
    if (m->boat) {
        e->length_m = m->size[it->model];
        const char *h = it->hull;
        if (mode == READ_CLEAN && chance(&s->r, 0.03))
            h = confuse(s, h);
        e->hull_number = (char *)h;
        note_hull_key(s, it, h, t);
        return e;
    }
    e->power_hp = m->size[it->model];
    Tidewatch__V1__SerialReading **rd = wcalloc(s, &s->ra, 3 * sizeof *rd);
    size_t n = 0;
    const int COMPLETE = TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__COMPLETE;
    const int PARTIAL = TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__PARTIAL;
    if (mode == READ_CLEAN) {
        /* Documents and checks copy the plate: a fake one when fitted. */
        const char *base = it->counterfeit ? it->fake_plate : it->serial;
        const char *txt = chance(&s->r, 0.03) ? confuse(s, base) : base;
        rd[n++] = mk_reading(s, txt, method, COMPLETE);
    } else if (it->counterfeit) {
        rd[n++] = mk_reading(s, it->fake_plate, TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE, COMPLETE);
        rd[n++] = mk_reading(s, it->serial, TIDEWATCH__V1__SERIAL_READING__METHOD__STAMP, COMPLETE);
        rd[1]->note = (char *)"block stamp differs from the plate";
    } else {
        double u = unit(&s->r);
        if (u < 0.15) {
            rd[n++] = mk_reading(s, "", TIDEWATCH__V1__SERIAL_READING__METHOD__STAMP,
                                 TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__ILLEGIBLE);
            rd[0]->note = (char *)"serial ground off; sent for acid etching";
            if (ground_off)
                *ground_off = 1;
        } else if (u < 0.30) {
            rd[n++] = mk_reading(s, partial_of(s, it->serial),
                                 TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE, PARTIAL);
        } else if (u < 0.40) {
            rd[n++] = mk_reading(s, confuse(s, it->serial),
                                 TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE, COMPLETE);
        } else {
            rd[n++] = mk_reading(s, it->serial, TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE,
                                 COMPLETE);
        }
    }
    for (size_t i = 0; i < n; i++)
        note_serial_key(s, it, rd[i]->text);
    e->serials = rd;
    e->n_serials = n;
    return e;
}

static Tidewatch__V1__Money *mk_money(sim *s, int64_t cents)
{
    Tidewatch__V1__Money *m = wcalloc(s, &s->ra, sizeof *m);
    tidewatch__v1__money__init(m);
    m->currency = (char *)"EUR";
    m->amount_minor = cents;
    return m;
}

static int64_t price_of(sim *s, const item *it)
{
    double base = it->mk->boat ? 900.0 * it->mk->size[it->model] : 110.0 * it->mk->size[it->model];
    return (int64_t)(base * (0.85 + 0.3 * unit(&s->r))) * 100;
}

static Tidewatch__V1__LineItem **mk_lines(sim *s, item **its, size_t n, int method, int priced,
                                           int64_t t)
{
    Tidewatch__V1__LineItem **l = wcalloc(s, &s->ra, (n ? n : 1) * sizeof *l);
    if (!l)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        l[i] = wcalloc(s, &s->ra, sizeof *l[i]);
        tidewatch__v1__line_item__init(l[i]);
        l[i]->equipment = mk_equipment(s, its[i], method, READ_CLEAN, t, NULL);
        l[i]->quantity = 1;
        if (priced)
            l[i]->unit_price = mk_money(s, price_of(s, its[i]));
    }
    return l;
}

static Tidewatch__V1__Grading *mk_grading(sim *s, int src, int info, int conditions)
{
    Tidewatch__V1__Grading *g = wcalloc(s, &s->ra, sizeof *g);
    tidewatch__v1__grading__init(g);
    g->source = src;
    g->information = info;
    g->handling = conditions ? TIDEWATCH__V1__GRADING__HANDLING__HANDLING_C_CONDITIONS
                             : TIDEWATCH__V1__GRADING__HANDLING__HANDLING_P_LAWFUL_SHARING;
    if (conditions)
        g->handling_conditions = (char *)"law enforcement use only; no onward sharing without consent";
    return g;
}

static Tidewatch__V1__Record *mk_record(sim *s, const char *source, const char *ref_prefix,
                                        Tidewatch__V1__Grading *g)
{
    Tidewatch__V1__Record *r = wcalloc(s, &s->ra, sizeof *r);
    tidewatch__v1__record__init(r);
    r->source = (char *)source;
    r->source_ref = (char *)wprintf(s, &s->ra, "%s-%07llu", ref_prefix,
                                    (unsigned long long)++s->counter);
    r->grading = g;
    return r;
}

/* ---- keeping records ---------------------------------------------------------- */

typedef struct keep_opts {
    int64_t event_s;
    int64_t delay_lo, delay_hi; /* seconds after the event */
    int network, coastal;
    int may_drop;               /* a rejected version may never be fixed */
    int may_mess;               /* duplicates and rejections allowed */
} keep_opts;

static rec *push_rec(sim *s, const Tidewatch__V1__Record *r, tw_sim_expect ex, const char *why,
                     int64_t event_s, int64_t arrival, int network, int coastal)
{
    if (s->oom || grow(s, (void **)&s->recs, &s->caprecs, s->nrecs, sizeof *s->recs))
        return NULL;
    size_t len = protobuf_c_message_get_packed_size(&r->base);
    uint8_t *buf = malloc(len ? len : 1);
    char *src = strdup(r->source ? r->source : "");
    char *ref = strdup(r->source_ref ? r->source_ref : "");
    if (!buf || !src || !ref) {
        free(buf);
        free(src);
        free(ref);
        s->oom = 1;
        return NULL;
    }
    protobuf_c_message_pack(&r->base, buf);
    rec *x = &s->recs[s->nrecs];
    *x = (rec){.data = buf, .len = len, .source = src, .ref = ref, .why = why ? why : "",
               .expect = ex, .event_s = event_s, .arrival_s = arrival, .seq = s->nrecs,
               .network = network, .coastal = coastal};
    s->nrecs++;
    if (ex == TW_SIM_ACCEPTED)
        s->n_accepted++;
    else if (ex == TW_SIM_DUPLICATE)
        s->n_duplicate++;
    else
        s->n_rejected++;
    if (coastal && ex == TW_SIM_ACCEPTED && s->coastal_recs)
        json_array_append_new(s->coastal_recs,
                              json_pack("{s:s, s:s}", "source", src, "source_ref", ref));
    return x;
}

/* Break the record the way providers do; returns the defect's code. The
 * record is changed in place (it was packed before). */
static const char *break_record(sim *s, Tidewatch__V1__Record *r)
{
    int k = (int)below(&s->r, 5);
    if (k == 0 || r->body_case == TIDEWATCH__V1__RECORD__BODY_CORRECTION) {
        r->grading = mk_grading(s, 1, 1, 0);
        r->grading->handling = TIDEWATCH__V1__GRADING__HANDLING__HANDLING_C_CONDITIONS;
        r->grading->handling_conditions = NULL;
        return "required";
    }
    if (r->body_case == TIDEWATCH__V1__RECORD__BODY_PURCHASE) {
        Tidewatch__V1__Purchase *p = r->purchase;
        if (k == 1) {
            Tidewatch__V1__Party *sp = wcalloc(s, &s->ra, sizeof *sp);
            *sp = *p->seller;
            sp->country = (char *)"France";
            p->seller = sp;
            return "bad_country";
        }
        if (k == 2) {
            p->time = NULL;
            return "required";
        }
        if (k == 3 && p->n_items && p->items[0]->unit_price) {
            p->items[0]->unit_price->currency = (char *)"EURO";
            return "bad_currency";
        }
        p->n_items = 0;
        return "required";
    }
    if (r->body_case == TIDEWATCH__V1__RECORD__BODY_SHIPMENT) {
        Tidewatch__V1__Shipment *sh = r->shipment;
        if (k == 1 && sh->destination) {
            Tidewatch__V1__Place *d = wcalloc(s, &s->ra, sizeof *d);
            *d = *sh->destination;
            d->country = (char *)"FRA";
            sh->destination = d;
            return "bad_country";
        }
        if (k == 2) {
            sh->dispatched = NULL;
            sh->delivered = NULL;
            return "required";
        }
        if (k == 3 && sh->delivered && sh->dispatched) {
            sh->delivered = ts(s, sh->dispatched->seconds - 2 * DAY);
            return "before_dispatch";
        }
        sh->n_items = 0;
        return "required";
    }
    if (r->body_case == TIDEWATCH__V1__RECORD__BODY_SEIZURE) {
        if (k <= 2) {
            r->seizure->place = NULL;
            return "required";
        }
        r->seizure->agency = NULL;
        return "required";
    }
    r->source_ref = (char *)"";
    return "required";
}

/* The same bytes under the same reference again, a little later: ingest
 * must answer "duplicate". */
static void dup_last(sim *s)
{
    if (s->oom || !s->nrecs || grow(s, (void **)&s->recs, &s->caprecs, s->nrecs, sizeof *s->recs))
        return;
    rec *orig = &s->recs[s->nrecs - 1];
    uint8_t *b = malloc(orig->len ? orig->len : 1);
    char *src = strdup(orig->source), *ref = strdup(orig->ref);
    if (!b || !src || !ref) {
        free(b);
        free(src);
        free(ref);
        s->oom = 1;
        return;
    }
    memcpy(b, orig->data, orig->len);
    rec *d = &s->recs[s->nrecs];
    *d = *orig;
    d->data = b;
    d->source = src;
    d->ref = ref;
    d->expect = TW_SIM_DUPLICATE;
    d->why = "";
    d->arrival_s = orig->arrival_s + range(&s->r, 60, 3 * DAY);
    d->seq = s->nrecs;
    d->coastal = 0;
    s->nrecs++;
    s->n_duplicate++;
}

/* Keep r (packed now) with its arrival; apply duplicates and rejected
 * versions. Returns the kept record's arrival (0 when dropped). */
static int64_t keep(sim *s, Tidewatch__V1__Record *r, const keep_opts *o)
{
    int64_t arrival = o->event_s + range(&s->r, o->delay_lo, o->delay_hi);
    if (chance(&s->r, 0.06))
        arrival += range(&s->r, 15 * DAY, 60 * DAY); /* late */
    double u = o->may_mess ? unit(&s->r) : 1.0;
    int64_t result = arrival;
    if (u < 0.03) {
        /* Rejected first; fixed under the same reference later (or, for
         * legitimate trade, sometimes never). */
        int drop = o->may_drop && chance(&s->r, 0.3);
        int64_t fixed = arrival + range(&s->r, HOUR, 2 * DAY);
        if (!drop)
            push_rec(s, r, TW_SIM_ACCEPTED, NULL, o->event_s, fixed, o->network, o->coastal);
        const char *why = break_record(s, r);
        push_rec(s, r, TW_SIM_REJECTED, why, o->event_s, arrival, o->network, 0);
        result = drop ? 0 : fixed;
    } else {
        push_rec(s, r, TW_SIM_ACCEPTED, NULL, o->event_s, arrival, o->network, o->coastal);
        if (u < 0.06)
            dup_last(s);
    }
    tw_arena_reset(&s->ra);
    return result;
}

/* ---- legitimate trade ------------------------------------------------------------ */

static const char *const trade_cc[] = {"FR", "FR", "FR", "DE", "DE", "DE", "NL", "NL", "BE", "BE",
                                       "GB", "GB"};

static int build_world(sim *s)
{
    int S = s->p.scale;
    s->nimporters = (size_t)(4 * S);
    s->ndealers = (size_t)(60 * S);
    s->ncarriers = (size_t)(3 + S);
    s->importers = calloc(s->nimporters, sizeof *s->importers);
    s->dealers = calloc(s->ndealers, sizeof *s->dealers);
    s->carriers = calloc(s->ncarriers, sizeof *s->carriers);
    if (!s->importers || !s->dealers || !s->carriers)
        return -1;
    static const char *const imp_cc[] = {"DE", "NL", "FR", "BE", "GB"};
    for (size_t i = 0; i < s->nimporters; i++) {
        const char *cc = imp_cc[i % 5];
        const place *pl = town_of(s, cc);
        const char *name = wprintf(s, &s->a, "%s Marine Distribution %s %zu", PICK(&s->r, co_words),
                                   co_suffix(cc), i + 1);
        s->importers[i] = company(s, name, pl, "distributor", 0);
    }
    for (size_t i = 0; i < s->ncarriers; i++) {
        const char *cc = imp_cc[i % 5];
        s->carriers[i] = company(
            s, wprintf(s, &s->a, "%s Logistik %s %zu", PICK(&s->r, co_words), co_suffix(cc), i),
            town_of(s, cc), NULL, 0);
    }
    for (size_t i = 0; i < s->ndealers; i++) {
        dealer *d = &s->dealers[i];
        int coastal = (i % 7) == 3;
        const place *pl = coastal ? &PICK(&s->r, towns_coast_trade)
                                  : town_of(s, trade_cc[below(&s->r, sizeof trade_cc / sizeof *trade_cc)]);
        const char *name = wprintf(s, &s->a, "%s %s Bootsport %zu", PICK(&s->r, dealer_words),
                                   pl->name, i);
        d->p = company(s, name, pl, "retailer", 0);
        if (!d->p)
            return -1;
        d->p->coastal = coastal;
        d->coastal = coastal;
        /* The usual importer: one of the dealer's country when there is one. */
        d->importer = (int)below(&s->r, s->nimporters);
        for (size_t k = 0; k < s->nimporters; k++) {
            size_t j = (k + (size_t)d->importer) % s->nimporters;
            if (strcmp(s->importers[j]->pl->cc, pl->cc) == 0) {
                d->importer = (int)j;
                break;
            }
        }
    }
    return s->oom ? -1 : 0;
}

static const sim_maker *legit_maker(sim *s, int boat)
{
    return boat ? &PICK(&s->r, boats_legit) : &PICK(&s->r, engines_legit);
}

static void dealer_stock_add(sim *s, dealer *d, item *it)
{
    if (grow(s, (void **)&d->stock, &d->capstock, d->nstock, sizeof *d->stock))
        return;
    d->stock[d->nstock++] = it;
}

/* Importers ship stock to their dealers every few weeks. */
static void legit_shipments(sim *s)
{
    for (size_t i = 0; i < s->ndealers && !s->oom; i++) {
        dealer *d = &s->dealers[i];
        party *imp = s->importers[d->importer];
        int64_t t = s->t0 + range(&s->r, 0, 10 * DAY);
        while (t < s->t1 - 5 * DAY && !s->oom) {
            size_t n = (size_t)range(&s->r, 4, 10);
            item *its[10];
            for (size_t k = 0; k < n; k++) {
                its[k] = new_item(s, legit_maker(s, chance(&s->r, 0.3)), t, 0);
                if (!its[k])
                    return;
                its[k]->dealer = (int)i;
                its[k]->coastal = d->coastal;
            }
            int64_t delivered = t + range(&s->r, DAY, 3 * DAY);
            Tidewatch__V1__Record *r = mk_record(s, imp->source, "DN", mk_grading(s, 1, 1, 0));
            Tidewatch__V1__Shipment *sh = wcalloc(s, &s->ra, sizeof *sh);
            tidewatch__v1__shipment__init(sh);
            sh->shipper = mk_party(s, imp, 0);
            sh->carrier = mk_party(s, s->carriers[below(&s->r, s->ncarriers)], 0);
            sh->consignee = mk_party(s, d->p, 0);
            sh->origin = mk_place(s, imp->pl, 0, 0);
            sh->destination = mk_place(s, d->p->pl, 0, 0);
            sh->dispatched = ts(s, t);
            sh->delivered = ts(s, delivered);
            const char *cons = wprintf(s, &s->a, "%.3s-%llu", imp->vat, (unsigned long long)s->counter + 1);
            sh->consignment_ref = (char *)cons;
            sh->items = mk_lines(s, its, n, TIDEWATCH__V1__SERIAL_READING__METHOD__DOCUMENT, 0, t);
            sh->n_items = n;
            r->body_case = TIDEWATCH__V1__RECORD__BODY_SHIPMENT;
            r->shipment = sh;
            keep_opts o = {.event_s = t, .delay_lo = HOUR / 2, .delay_hi = 12 * HOUR,
                           .coastal = d->coastal, .may_drop = 0, .may_mess = 1};
            keep(s, r, &o);
            for (size_t k = 0; k < n; k++) {
                its[k]->avail = delivered;
                add_str(its[k]->cons, &its[k]->ncons, MAX_CONS, cons);
                item_touch(its[k], d->p);
                dealer_stock_add(s, d, its[k]);
            }
            t += range(&s->r, 14 * DAY, 35 * DAY);
        }
    }
}

/* A sale record: seller (a dealer or importer) to buyer. */
static Tidewatch__V1__Record *sale_record(sim *s, const party *seller, const party *buyer,
                                          item **its, size_t n, int payment, int64_t t, int alt)
{
    Tidewatch__V1__Record *r = mk_record(s, seller->source, "INV", mk_grading(s, 2, 1, 0));
    Tidewatch__V1__Purchase *p = wcalloc(s, &s->ra, sizeof *p);
    tidewatch__v1__purchase__init(p);
    p->seller = mk_party(s, seller, 0);
    p->buyer = mk_party(s, buyer, alt);
    p->items = mk_lines(s, its, n, TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE, 1, t);
    p->n_items = n;
    p->payment = payment;
    p->place = mk_place(s, seller->pl, 0, 0);
    p->time = ts(s, t);
    p->invoice_ref = (char *)wprintf(s, &s->ra, "F%llu", (unsigned long long)s->counter);
    r->body_case = TIDEWATCH__V1__RECORD__BODY_PURCHASE;
    r->purchase = p;
    return r;
}

/* A correction of a legitimate sale (price fixed) or a double entry later
 * retracted. */
static void legit_correction(sim *s, const party *dealer_p, const party *buyer, item **its,
                             size_t n, int64_t t, int64_t orig_arrival, const char *orig_ref,
                             int coastal)
{
    if (chance(&s->r, 0.5)) {
        Tidewatch__V1__Record *r = mk_record(s, dealer_p->source, "COR", mk_grading(s, 2, 1, 0));
        Tidewatch__V1__Record *body = sale_record(s, dealer_p, buyer, its, n,
                                                  TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CARD, t, 0);
        Tidewatch__V1__Correction *c = wcalloc(s, &s->ra, sizeof *c);
        tidewatch__v1__correction__init(c);
        Tidewatch__V1__RecordRef *ref = wcalloc(s, &s->ra, sizeof *ref);
        tidewatch__v1__record_ref__init(ref);
        ref->source = (char *)dealer_p->source;
        ref->source_ref = (char *)orig_ref;
        c->corrects = ref;
        c->reason = (char *)"wrong price and payment method on the invoice";
        c->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_PURCHASE;
        c->purchase = body->purchase;
        r->body_case = TIDEWATCH__V1__RECORD__BODY_CORRECTION;
        r->correction = c;
        push_rec(s, r, TW_SIM_ACCEPTED, NULL, t,
                 orig_arrival + range(&s->r, 2 * DAY, 20 * DAY), 0, coastal);
        tw_arena_reset(&s->ra);
        return;
    }
    /* Entered twice under a new reference, the second retracted. */
    Tidewatch__V1__Record *dbl = sale_record(s, dealer_p, buyer, its, n,
                                             TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CARD, t, 0);
    const char *dref = wprintf(s, &s->a, "%s", dbl->source_ref);
    int64_t a1 = orig_arrival + range(&s->r, HOUR, DAY);
    push_rec(s, dbl, TW_SIM_ACCEPTED, NULL, t, a1, 0, coastal);
    tw_arena_reset(&s->ra);
    Tidewatch__V1__Record *r = mk_record(s, dealer_p->source, "COR", mk_grading(s, 2, 1, 0));
    Tidewatch__V1__Correction *c = wcalloc(s, &s->ra, sizeof *c);
    tidewatch__v1__correction__init(c);
    Tidewatch__V1__RecordRef *ref = wcalloc(s, &s->ra, sizeof *ref);
    tidewatch__v1__record_ref__init(ref);
    ref->source = (char *)dealer_p->source;
    ref->source_ref = (char *)dref;
    c->corrects = ref;
    c->reason = (char *)"entered twice; the first entry stands";
    r->body_case = TIDEWATCH__V1__RECORD__BODY_CORRECTION;
    r->correction = c;
    push_rec(s, r, TW_SIM_ACCEPTED, NULL, t, a1 + range(&s->r, DAY, 10 * DAY), 0, coastal);
    tw_arena_reset(&s->ra);
}

/* Dealers sell what the networks did not buy to leisure buyers living near
 * them, one item (sometimes a boat with its engine) at a time. */
static void legit_sales(sim *s)
{
    for (size_t i = 0; i < s->ndealers && !s->oom; i++) {
        dealer *d = &s->dealers[i];
        for (size_t k = 0; k < d->nstock && !s->oom; k++) {
            item *it = d->stock[k];
            if (it->claimed || !chance(&s->r, 0.75))
                continue;
            int64_t t = it->avail + range(&s->r, DAY, 60 * DAY);
            if (t >= s->t1)
                continue;
            it->claimed = 1;
            item *its[2] = {it, NULL};
            size_t n = 1;
            if (chance(&s->r, 0.12)) {
                for (size_t j = k + 1; j < d->nstock; j++) {
                    item *o = d->stock[j];
                    if (!o->claimed && o->mk->boat != it->mk->boat && o->avail <= t) {
                        o->claimed = 1;
                        its[n++] = o;
                        break;
                    }
                }
            }
            const place *home = chance(&s->r, 0.8) ? d->p->pl : town_of(s, d->p->pl->cc);
            int coastal_buyer = 0;
            if (!d->coastal && (strcmp(d->p->pl->cc, "FR") == 0 || strcmp(d->p->pl->cc, "BE") == 0) &&
                chance(&s->r, 0.05)) {
                /* A leisure buyer from the coast buying inland: legitimate
                 * coastal trade too. */
                for (int tries = 0; tries < 20; tries++) {
                    const place *c = &PICK(&s->r, towns_coast_trade);
                    if (strcmp(c->cc, d->p->pl->cc) == 0) {
                        home = c;
                        coastal_buyer = 1;
                        break;
                    }
                }
            }
            party *buyer = person(s, d->p->pl->cc, home, 0);
            if (!buyer)
                return;
            buyer->coastal = d->coastal || coastal_buyer;
            for (size_t j = 0; j < n && coastal_buyer; j++)
                its[j]->coastal = 1;
            double pu = unit(&s->r);
            int pay = pu < 0.1 ? TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH
                      : pu < 0.7 ? TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CARD
                                 : TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_TRANSFER;
            Tidewatch__V1__Record *r = sale_record(s, d->p, buyer, its, n, pay, t, 0);
            const char *ref = wprintf(s, &s->a, "%s", r->source_ref);
            keep_opts o = {.event_s = t, .delay_lo = HOUR, .delay_hi = 36 * HOUR,
                           .coastal = buyer->coastal, .may_drop = 1, .may_mess = 1};
            int64_t arr = keep(s, r, &o);
            for (size_t j = 0; j < n; j++)
                item_touch(its[j], buyer);
            if (arr && chance(&s->r, 0.03))
                legit_correction(s, d->p, buyer, its, n, t, arr, ref, buyer->coastal);
        }
    }
}

/* Legitimate bulk buyers: sailing schools, clubs and rental companies
 * equipping a fleet from one dealer, by transfer (some on the coast). */
static void legit_fleets(sim *s)
{
    static const char *const kinds[] = {"Club nautique", "Segelschule", "Watersportcentrum",
                                        "Boat Hire", "Base nautique"};
    size_t nf = (size_t)(3 * s->p.scale);
    for (size_t f = 0; f < nf && !s->oom; f++) {
        dealer *d = &s->dealers[(f * 7 + 3 * (f % 2)) % s->ndealers]; /* odd ones coastal */
        party *club = company(s, wprintf(s, &s->a, "%s %s %zu", PICK(&s->r, kinds), d->p->pl->name, f),
                              d->p->pl, NULL, 0);
        if (!club)
            return;
        club->coastal = d->coastal;
        int64_t t = s->t0 + range(&s->r, 20 * DAY, (s->p.days - 10) * (int64_t)DAY);
        int buys = (int)range(&s->r, 1, 2);
        for (int b = 0; b < buys; b++) {
            item *its[8];
            size_t n = 0, want = (size_t)range(&s->r, 3, 6);
            for (size_t k = 0; k < d->nstock && n < want; k++) {
                item *it = d->stock[k];
                if (!it->claimed && it->avail <= t) {
                    it->claimed = 1;
                    its[n++] = it;
                }
            }
            if (n < 2)
                break;
            Tidewatch__V1__Record *r = sale_record(s, d->p, club, its, n,
                                                   TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_TRANSFER,
                                                   t, 0);
            keep_opts o = {.event_s = t, .delay_lo = HOUR, .delay_hi = 36 * HOUR,
                           .coastal = d->coastal, .may_drop = 0, .may_mess = 1};
            keep(s, r, &o);
            for (size_t k = 0; k < n; k++)
                item_touch(its[k], club);
            t += range(&s->r, DAY, 6 * DAY);
        }
    }
}

/* ---- networks ----------------------------------------------------------------------- */

static void net_party(sim_net *n, party *p, const char *role)
{
    if (!p || n->nparties >= MAX_NET_PARTIES)
        return;
    for (int i = 0; i < n->nparties; i++)
        if (n->parties[i] == p)
            return;
    p->network = n->id;
    p->role = role;
    n->parties[n->nparties++] = p;
}

static void net_item(sim *s, sim_net *n, item *it)
{
    if (grow(s, (void **)&n->items, &n->capitems, n->nitems, sizeof *n->items))
        return;
    it->network = n->id;
    n->items[n->nitems++] = it;
}

/* An item for a network to buy from a dealer: unsold stock delivered
 * before t, else a new one (the dealer's stock records are not all in). */
static item *claim(sim *s, sim_net *n, dealer *d, int boat, int64_t t)
{
    for (size_t k = 0; k < d->nstock; k++) {
        item *it = d->stock[k];
        if (!it->claimed && it->avail <= t && it->mk->boat == boat) {
            it->claimed = 1;
            it->coastal = 0;
            /* Its legitimate past (the dealer, the importer's consignment)
             * is not the network's. */
            it->nclusters = 0;
            it->ncons = 0;
            net_item(s, n, it);
            return it;
        }
    }
    item *it = new_item(s, boat ? &PICK(&s->r, boats_legit) : &PICK(&s->r, engines_cheap), t, n->id);
    if (it) {
        it->claimed = 1;
        net_item(s, n, it);
    }
    return it;
}

static const char *nl_be_plate(sim *s, int be)
{
    rng *r = &s->r;
    if (be)
        return wprintf(s, &s->a, "1-%c%c%c-%03u", (char)('A' + below(r, 26)), (char)('A' + below(r, 26)),
                       (char)('A' + below(r, 26)), (unsigned)below(r, 1000));
    return wprintf(s, &s->a, "V%c-%03u-%c", (char)('A' + below(r, 26)), (unsigned)below(r, 1000),
                   (char)('B' + below(r, 24)));
}

static const char *police_source(const place *pl)
{
    if (strcmp(pl->cc, "BE") == 0)
        return "police.be.federale-kust";
    if (strcmp(pl->slug, "lille") == 0 || strcmp(pl->slug, "grande-synthe") == 0 ||
        strcmp(pl->slug, "loon-plage") == 0 || strcmp(pl->slug, "gravelines") == 0)
        return "police.fr.nord";
    return "police.fr.pas-de-calais";
}

/* A shipment of network items (van or lorry) observed by `source`. */
static void net_shipment(sim *s, sim_net *n, const char *source, int grade_src, int grade_info,
                         party *shipper, party *carrier, party *consignee, const place *from,
                         const place *to, int64_t t, const char *vehicle, item **its, size_t k,
                         int64_t delay_lo, int64_t delay_hi, const char *cons_prefix)
{
    Tidewatch__V1__Record *r = mk_record(s, source, "OBS", mk_grading(s, grade_src, grade_info,
                                                                      grade_src == 2));
    Tidewatch__V1__Shipment *sh = wcalloc(s, &s->ra, sizeof *sh);
    tidewatch__v1__shipment__init(sh);
    if (shipper)
        sh->shipper = mk_party(s, shipper, 1);
    if (carrier)
        sh->carrier = mk_party(s, carrier, 0);
    if (consignee)
        sh->consignee = mk_party(s, consignee, 0);
    sh->origin = mk_place(s, from, 0, 0);
    sh->destination = mk_place(s, to, 0, 0);
    sh->dispatched = ts(s, t);
    const char *cons = wprintf(s, &s->a, "%s-%llu", cons_prefix, (unsigned long long)s->counter);
    sh->consignment_ref = (char *)cons;
    if (vehicle)
        sh->vehicle_registration = (char *)vehicle;
    sh->items = mk_lines(s, its, k, TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE, 0, t);
    sh->n_items = k;
    r->body_case = TIDEWATCH__V1__RECORD__BODY_SHIPMENT;
    r->shipment = sh;
    keep_opts o = {.event_s = t, .delay_lo = delay_lo, .delay_hi = delay_hi, .network = n->id,
                   .may_mess = 1};
    keep(s, r, &o);
    if (n->ncons < 32)
        n->cons[n->ncons++] = cons;
    for (size_t i = 0; i < k; i++) {
        add_str(its[i]->cons, &its[i]->ncons, MAX_CONS, cons);
        item_touch(its[i], shipper);
        item_touch(its[i], consignee);
        item_touch(its[i], carrier);
    }
}

/* The seizure (or launch) of a van load; items[] of which `seen` are
 * identified. Ground-off serials get the agency's correction with the
 * etched recovery later. */
static void net_seizure(sim *s, sim_net *n, item **its, size_t k, const place *pl, int64_t t,
                        int launch, int unseen)
{
    const char *source = police_source(pl);
    Tidewatch__V1__Record *r = mk_record(s, source, "PV", mk_grading(s, 1, 1, 0));
    Tidewatch__V1__Seizure *sz = wcalloc(s, &s->ra, sizeof *sz);
    tidewatch__v1__seizure__init(sz);
    sz->agency = mk_agency(s, strcmp(pl->cc, "BE") == 0 ? "Federale Politie Kust"
                              : launch                   ? "Gendarmerie maritime"
                                                         : "Police aux frontières", pl);
    sz->case_ref = (char *)wprintf(s, &s->ra, "%s/%llu", launch ? "LCH" : "SAI",
                                   (unsigned long long)s->counter);
    sz->place = mk_place(s, pl, 1, 0.02);
    sz->time = ts(s, t);
    Tidewatch__V1__SeizedItem **si = wcalloc(s, &s->ra, (k ? k : 1) * sizeof *si);
    int ground[64] = {0};
    for (size_t i = 0; i < k && i < 64; i++) {
        si[i] = wcalloc(s, &s->ra, sizeof *si[i]);
        tidewatch__v1__seized_item__init(si[i]);
        si[i]->quantity = 1;
        si[i]->condition = launch ? TIDEWATCH__V1__SEIZED_ITEM__CONDITION__USED
                                  : TIDEWATCH__V1__SEIZED_ITEM__CONDITION__NEW;
        if (unseen) {
            Tidewatch__V1__Equipment *e = wcalloc(s, &s->ra, sizeof *e);
            tidewatch__v1__equipment__init(e);
            e->kind = its[i]->mk->boat ? TIDEWATCH__V1__EQUIPMENT__KIND__BOAT
                                       : TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE;
            e->description = (char *)(its[i]->mk->boat ? "grey inflatable, about 8 m, no markings"
                                                       : "outboard, plates removed, not recovered");
            si[i]->equipment = e;
            si[i]->note = (char *)"boat left before it could be boarded";
        } else {
            si[i]->equipment = mk_equipment(s, its[i], TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE,
                                            READ_SEIZED, t, &ground[i]);
        }
    }
    sz->items = si;
    sz->n_items = k < 64 ? k : 64;
    if (launch) {
        Tidewatch__V1__LaunchInfo *li = wcalloc(s, &s->ra, sizeof *li);
        tidewatch__v1__launch_info__init(li);
        li->people_aboard = (uint32_t)range(&s->r, 35, 70);
        Tidewatch__V1__NationalityCount **nc = wcalloc(s, &s->ra, 3 * sizeof *nc);
        uint32_t left = li->people_aboard;
        for (int j = 0; j < 3; j++) {
            nc[j] = wcalloc(s, &s->ra, sizeof *nc[j]);
            tidewatch__v1__nationality_count__init(nc[j]);
            nc[j]->country = (char *)nationalities[(below(&s->r, 8) + (uint64_t)j * 3) % 8];
            nc[j]->count = j == 2 ? left / 2 : (uint32_t)range(&s->r, 1, left / 2);
            left -= nc[j]->count;
        }
        /* distinct countries */
        if (strcmp(nc[0]->country, nc[1]->country) == 0 || strcmp(nc[0]->country, nc[2]->country) == 0 ||
            strcmp(nc[1]->country, nc[2]->country) == 0) {
            nc[1]->country = (char *)"IQ";
            nc[2]->country = (char *)"AF";
            nc[0]->country = (char *)"SY";
        }
        li->nationalities = nc;
        li->n_nationalities = 3;
        sz->launch = li;
    }
    r->body_case = TIDEWATCH__V1__RECORD__BODY_SEIZURE;
    r->seizure = sz;
    const char *orig_ref = wprintf(s, &s->a, "%s", r->source_ref);
    keep_opts o = {.event_s = t, .delay_lo = 2 * HOUR, .delay_hi = 48 * HOUR, .network = n->id,
                   .may_mess = 1};
    int64_t arr = keep(s, r, &o);
    int any_ground = 0;
    for (size_t i = 0; i < k && i < 64; i++)
        any_ground |= ground[i];
    if (!any_ground || !arr)
        return;
    /* The etched recovery: the seizing agency corrects its record. */
    Tidewatch__V1__Record *c = mk_record(s, source, "PVC", mk_grading(s, 1, 1, 0));
    Tidewatch__V1__Correction *co = wcalloc(s, &s->ra, sizeof *co);
    tidewatch__v1__correction__init(co);
    Tidewatch__V1__RecordRef *ref = wcalloc(s, &s->ra, sizeof *ref);
    tidewatch__v1__record_ref__init(ref);
    ref->source = (char *)source;
    ref->source_ref = (char *)orig_ref;
    co->corrects = ref;
    co->reason = (char *)"serials recovered by acid etching";
    Tidewatch__V1__Seizure *z2 = wcalloc(s, &s->ra, sizeof *z2);
    tidewatch__v1__seizure__init(z2);
    z2->agency = mk_agency(s, "Police aux frontières", pl);
    z2->case_ref = (char *)"recovered";
    z2->place = mk_place(s, pl, 1, 0.0);
    z2->time = ts(s, t);
    Tidewatch__V1__SeizedItem **s2 = wcalloc(s, &s->ra, (k ? k : 1) * sizeof *s2);
    for (size_t i = 0; i < k && i < 64; i++) {
        s2[i] = wcalloc(s, &s->ra, sizeof *s2[i]);
        tidewatch__v1__seized_item__init(s2[i]);
        s2[i]->quantity = 1;
        if (ground[i]) {
            Tidewatch__V1__Equipment *e = wcalloc(s, &s->ra, sizeof *e);
            tidewatch__v1__equipment__init(e);
            e->kind = TIDEWATCH__V1__EQUIPMENT__KIND__ENGINE;
            e->make = (char *)its[i]->mk->name;
            e->power_hp = its[i]->mk->size[its[i]->model];
            Tidewatch__V1__SerialReading **rd = wcalloc(s, &s->ra, sizeof *rd);
            int part = chance(&s->r, 0.4);
            rd[0] = mk_reading(s, part ? partial_of(s, its[i]->serial) : its[i]->serial,
                               TIDEWATCH__V1__SERIAL_READING__METHOD__ETCHED_RECOVERY,
                               part ? TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__PARTIAL
                                    : TIDEWATCH__V1__SERIAL_READING__COMPLETENESS__COMPLETE);
            note_serial_key(s, its[i], rd[0]->text);
            e->serials = rd;
            e->n_serials = 1;
            s2[i]->equipment = e;
        } else {
            s2[i]->equipment = mk_equipment(s, its[i], TIDEWATCH__V1__SERIAL_READING__METHOD__PLATE,
                                            READ_CLEAN, t, NULL);
        }
    }
    z2->items = s2;
    z2->n_items = k < 64 ? k : 64;
    co->replacement_case = TIDEWATCH__V1__CORRECTION__REPLACEMENT_SEIZURE;
    co->seizure = z2;
    c->body_case = TIDEWATCH__V1__RECORD__BODY_CORRECTION;
    c->correction = co;
    push_rec(s, c, TW_SIM_ACCEPTED, NULL, t, arr + range(&s->r, 5 * DAY, 20 * DAY), n->id, 0);
    tw_arena_reset(&s->ra);
}

static void set_fate(item **its, size_t k, int fate, int64_t t, const place *pl)
{
    for (size_t i = 0; i < k; i++) {
        its[i]->fate = fate;
        its[i]->warn_by = fate == FATE_NEVER ? 0 : t;
        its[i]->fate_place = fate == FATE_NEVER ? NULL : pl;
    }
}

/* Vans from `holder` at `from` to staging or the coast, then seizures and
 * launches. */
static void endgame(sim *s, sim_net *n, party *holder, const place *from, item **its, size_t nits,
                    int64_t t)
{
    size_t i = 0;
    while (i < nits && !s->oom) {
        size_t k = (size_t)range(&s->r, 2, 6);
        if (k > nits - i)
            k = nits - i;
        item **g = its + i;
        i += k;
        int64_t tv = t + range(&s->r, 2 * DAY, 25 * DAY);
        if (tv >= s->t1 - 2 * DAY) {
            set_fate(g, k, FATE_NEVER, 0, NULL);
            continue;
        }
        int be = chance(&s->r, 0.5);
        party *driver = person(s, be ? "BE" : "NL", NULL, n->id);
        net_party(n, driver, "driver");
        const char *veh = nl_be_plate(s, be);
        if (n->nvehicles < 16)
            n->vehicles[n->nvehicles++] = veh;
        int to_staging = chance(&s->r, 0.6);
        const place *dest = to_staging ? &PICK(&s->r, staging) : &PICK(&s->r, coast_launch);
        const char *obs = be ? "police.be.federale" : "police.nl.kmar";
        net_shipment(s, n, obs, 2, 2, holder, driver, NULL, from, dest, tv, veh, g, k, 2 * HOUR,
                     72 * HOUR, "VAN");
        const place *beach = &PICK(&s->r, coast_launch);
        double u = unit(&s->r);
        if (to_staging && u < 0.25) {
            int64_t ts_ = tv + range(&s->r, DAY, 8 * DAY);
            net_seizure(s, n, g, k, dest, ts_, 0, 0);
            set_fate(g, k, FATE_SEIZED_STAGING, ts_, dest);
            continue;
        }
        int64_t tb = tv + range(&s->r, 2 * DAY, 12 * DAY);
        if (to_staging && chance(&s->r, 0.5)) {
            /* The last leg is seen too (a French patrol). */
            int64_t tl = tb - range(&s->r, 3 * HOUR, DAY);
            net_shipment(s, n, "police.fr.pas-de-calais", 2, 3, driver, driver, NULL, dest, beach,
                         tl, veh, g, k, HOUR, 24 * HOUR, "OBS");
        }
        if (tb >= s->t1) {
            set_fate(g, k, FATE_NEVER, 0, NULL);
        } else if (u < 0.55) {
            net_seizure(s, n, g, k, beach, tb, 0, 0);
            set_fate(g, k, FATE_SEIZED_BEACH, tb, beach);
        } else if (u < 0.82) {
            net_seizure(s, n, g, k, beach, tb, 1, 0);
            set_fate(g, k, FATE_LAUNCHED, tb, beach);
        } else if (u < 0.92) {
            net_seizure(s, n, g, k, beach, tb, 1, 1);
            set_fate(g, k, FATE_LAUNCHED_UNSEEN, tb, beach);
        } else {
            set_fate(g, k, FATE_NEVER, 0, NULL);
        }
    }
}

static dealer *pick_dealer(sim *s, const char *const *ccs, size_t nccs)
{
    for (int tries = 0; tries < 200; tries++) {
        dealer *d = &s->dealers[below(&s->r, s->ndealers)];
        for (size_t j = 0; j < nccs; j++)
            if (strcmp(d->p->pl->cc, ccs[j]) == 0 && !d->coastal)
                return d;
    }
    return &s->dealers[0];
}

static const char *const buy_cc[] = {"DE", "NL", "BE"};

static void net_balkan(sim *s, sim_net *n)
{
    int64_t t = n->start;
    const place *de = &PICK(&s->r, transit_de);
    party *exporter = company(
        s, wprintf(s, &s->a, "%s Denizcilik %s", PICK(&s->r, net_co_words), co_suffix("TR")),
        &p_istanbul, NULL, n->id);
    party *front = company(
        s, wprintf(s, &s->a, "%s Handel %s %d", PICK(&s->r, net_co_words), co_suffix("DE"), n->id),
        de, NULL, n->id);
    party *haulier = company(
        s, wprintf(s, &s->a, "%s Nakliyat %s", PICK(&s->r, co_words), co_suffix("TR")),
        &p_istanbul, NULL, n->id);
    party *tenant = person(s, "DE", &PICK(&s->r, farms), n->id);
    net_party(n, exporter, "exporter");
    net_party(n, front, "consignee");
    net_party(n, haulier, "carrier");
    net_party(n, tenant, "storage");
    size_t nit = (size_t)range(&s->r, 8, 18);
    item **its = calloc(nit, sizeof *its);
    if (!its) {
        s->oom = 1;
        return;
    }
    for (size_t i = 0; i < nit; i++) {
        int boat = (i % 2) == 1;
        its[i] = new_item(s, boat ? &PICK(&s->r, boats_cheap) : &PICK(&s->r, engines_cheap), t, n->id);
        if (!its[i]) {
            free(its);
            return;
        }
        if (!boat && chance(&s->r, 0.25)) {
            its[i]->counterfeit = 1;
            its[i]->fake_plate = serial_for(s, &engines_legit[0]);
            its[i]->mk = &engines_cheap[2]; /* a "Yamaha" by its plate */
        }
        net_item(s, n, its[i]);
    }
    /* The border crossing, declared at Kapitan Andreevo. */
    net_shipment(s, n, "customs.bg.kapitan-andreevo", 1, 1, exporter, haulier, front, &p_kapitan,
                 de, t, wprintf(s, &s->a, "34 %c%c %04u", (char)('A' + below(&s->r, 26)),
                                (char)('A' + below(&s->r, 26)), (unsigned)below(&s->r, 10000)),
                 its, nit, HOUR / 4, 6 * HOUR, "CMR");
    /* Into storage at a farm. */
    int64_t t2 = t + range(&s->r, 4 * DAY, 10 * DAY);
    const place *farm = tenant->pl;
    net_shipment(s, n, "police.de.osnabrueck", 2, 3, front, tenant, tenant, de, farm, t2, NULL,
                 its, nit, DAY, 10 * DAY, "OBS");
    endgame(s, n, tenant, farm, its, nit, t2 + range(&s->r, 3 * DAY, 15 * DAY));
    free(its);
}

static void net_ring(sim *s, sim_net *n)
{
    const char *cc = buy_cc[below(&s->r, 3)];
    int members = (int)range(&s->r, 3, 6);
    party *m[6];
    int share_phone = chance(&s->r, 0.6);
    for (int i = 0; i < members; i++) {
        m[i] = person(s, cc, NULL, n->id);
        if (!m[i])
            return;
        if (i > 0) {
            if (share_phone) {
                m[i]->phone = m[0]->phone;
                m[i]->phone_alt = m[0]->phone_alt;
            } else {
                m[i]->email = m[0]->email ? m[0]->email
                                          : (m[0]->email = wprintf(s, &s->a, "boats%u@%s",
                                                                   (unsigned)below(&s->r, 10000),
                                                                   PICK(&s->r, mail_domains)));
            }
            m[i]->nkeys = 0;
            party_keys(s, m[i]);
        } else if (!share_phone && !m[0]->email) {
            m[0]->email = wprintf(s, &s->a, "boats%u@%s", (unsigned)below(&s->r, 10000),
                                  PICK(&s->r, mail_domains));
            m[0]->nkeys = 0;
            party_keys(s, m[0]);
        }
        net_party(n, m[i], i ? "buyer" : "buyer (organiser)");
    }
    int64_t t = n->start, last = t;
    int64_t window = range(&s->r, 14 * DAY, 35 * DAY);
    item *all[24];
    size_t nall = 0;
    for (int i = 0; i < members; i++) {
        int buys = (int)range(&s->r, 1, 3);
        for (int b = 0; b < buys && nall < 24; b++) {
            dealer *d = pick_dealer(s, buy_cc, 3);
            int64_t tb = t + range(&s->r, 0, window);
            item *its[2];
            size_t k = 0;
            its[k++] = claim(s, n, d, chance(&s->r, 0.35), tb);
            if (chance(&s->r, 0.3))
                its[k++] = claim(s, n, d, its[0] && !its[0]->mk->boat, tb);
            for (size_t j = 0; j < k; j++)
                if (!its[j])
                    return;
            int pay = chance(&s->r, 0.8) ? TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH
                                         : TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CARD;
            Tidewatch__V1__Record *r = sale_record(s, d->p, m[i], its, k, pay, tb, b % 2);
            keep_opts o = {.event_s = tb, .delay_lo = HOUR, .delay_hi = 36 * HOUR,
                           .network = n->id, .may_mess = 1};
            keep(s, r, &o);
            for (size_t j = 0; j < k; j++) {
                item_touch(its[j], m[i]);
                all[nall++] = its[j];
            }
            if (tb > last)
                last = tb;
        }
    }
    /* The ring is one buyer cluster: every item it bought is its items. */
    for (size_t j = 0; j < nall; j++)
        for (int i = 0; i < members; i++)
            item_touch(all[j], m[i]);
    endgame(s, n, m[0], m[0]->pl, all, nall, last + range(&s->r, DAY, 7 * DAY));
}

static void net_bulk(sim *s, sim_net *n)
{
    const char *cc = buy_cc[below(&s->r, 3)];
    party *buyer = person(s, cc, NULL, n->id);
    if (!buyer)
        return;
    net_party(n, buyer, "buyer");
    size_t target = (size_t)range(&s->r, 6, 14);
    item *all[24];
    size_t nall = 0;
    int64_t t = n->start, last = t;
    int64_t window = range(&s->r, 10 * DAY, 21 * DAY);
    while (nall < target) {
        dealer *d = pick_dealer(s, buy_cc, 3);
        int64_t tb = t + range(&s->r, 0, window);
        size_t k = (size_t)range(&s->r, 1, 3);
        if (k > target - nall)
            k = target - nall;
        item *its[3];
        for (size_t j = 0; j < k; j++) {
            its[j] = claim(s, n, d, j == 1, tb);
            if (!its[j])
                return;
        }
        Tidewatch__V1__Record *r = sale_record(s, d->p, buyer, its, k,
                                               TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH, tb,
                                               (int)(nall % 2));
        keep_opts o = {.event_s = tb, .delay_lo = HOUR, .delay_hi = 36 * HOUR, .network = n->id,
                       .may_mess = 1};
        keep(s, r, &o);
        for (size_t j = 0; j < k; j++) {
            item_touch(its[j], buyer);
            all[nall++] = its[j];
        }
        if (tb > last)
            last = tb;
    }
    const place *at = buyer->pl;
    party *holder = buyer;
    if (chance(&s->r, 0.5)) {
        party *tenant = person(s, "DE", &PICK(&s->r, farms), n->id);
        net_party(n, tenant, "storage");
        int64_t t2 = last + range(&s->r, DAY, 5 * DAY);
        net_shipment(s, n, "police.de.osnabrueck", 2, 3, buyer, buyer, tenant, at, tenant->pl, t2,
                     NULL, all, nall, DAY, 10 * DAY, "OBS");
        holder = tenant;
        at = tenant->pl;
        last = t2;
    }
    endgame(s, n, holder, at, all, nall, last + range(&s->r, DAY, 6 * DAY));
}

static void net_front(sim *s, sim_net *n)
{
    const char *cc = buy_cc[below(&s->r, 3)];
    const place *pl = strcmp(cc, "DE") == 0 ? &PICK(&s->r, transit_de) : town_of(s, cc);
    party *front = company(
        s, wprintf(s, &s->a, "%s Watersport Trading %s %d", PICK(&s->r, net_co_words), co_suffix(cc), n->id),
        pl, NULL, n->id);
    if (!front)
        return;
    net_party(n, front, "buyer (front company)");
    party *imp = s->importers[below(&s->r, s->nimporters)];
    size_t nit = (size_t)range(&s->r, 8, 16);
    item **its = calloc(nit, sizeof *its);
    if (!its) {
        s->oom = 1;
        return;
    }
    int64_t t = n->start;
    for (size_t i = 0; i < nit; i++) {
        its[i] = new_item(s, (i % 2) ? &PICK(&s->r, boats_legit) : &PICK(&s->r, engines_legit), t, n->id);
        if (!its[i]) {
            free(its);
            return;
        }
        net_item(s, n, its[i]);
    }
    int pay = chance(&s->r, 0.3) ? TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_CASH
                                 : TIDEWATCH__V1__PAYMENT_METHOD__PAYMENT_METHOD_TRANSFER;
    Tidewatch__V1__Record *r = sale_record(s, imp, front, its, nit, pay, t, 0);
    keep_opts o = {.event_s = t, .delay_lo = HOUR, .delay_hi = 24 * HOUR, .network = n->id,
                   .may_mess = 1};
    keep(s, r, &o);
    for (size_t i = 0; i < nit; i++)
        item_touch(its[i], front);
    /* Delivered by the importer's carrier. */
    int64_t t2 = t + range(&s->r, DAY, 4 * DAY);
    Tidewatch__V1__Record *d = mk_record(s, imp->source, "DN", mk_grading(s, 1, 1, 0));
    Tidewatch__V1__Shipment *sh = wcalloc(s, &s->ra, sizeof *sh);
    tidewatch__v1__shipment__init(sh);
    sh->shipper = mk_party(s, imp, 0);
    sh->carrier = mk_party(s, s->carriers[below(&s->r, s->ncarriers)], 0);
    sh->consignee = mk_party(s, front, 0);
    sh->origin = mk_place(s, imp->pl, 0, 0);
    sh->destination = mk_place(s, pl, 0, 0);
    sh->dispatched = ts(s, t2);
    sh->delivered = ts(s, t2 + DAY);
    const char *cons = wprintf(s, &s->a, "%.3s-%llu", imp->vat, (unsigned long long)s->counter);
    sh->consignment_ref = (char *)cons;
    sh->items = mk_lines(s, its, nit, TIDEWATCH__V1__SERIAL_READING__METHOD__DOCUMENT, 0, t2);
    sh->n_items = nit;
    d->body_case = TIDEWATCH__V1__RECORD__BODY_SHIPMENT;
    d->shipment = sh;
    keep_opts o2 = {.event_s = t2, .delay_lo = HOUR / 2, .delay_hi = 12 * HOUR, .network = n->id,
                    .may_mess = 1};
    keep(s, d, &o2);
    if (n->ncons < 32)
        n->cons[n->ncons++] = cons;
    for (size_t i = 0; i < nit; i++)
        add_str(its[i]->cons, &its[i]->ncons, MAX_CONS, cons);
    endgame(s, n, front, pl, its, nit, t2 + range(&s->r, 2 * DAY, 10 * DAY));
    free(its);
}

static const char *const net_kinds[] = {"balkan_import", "buyer_ring", "bulk_cash", "front_company"};

static void networks(sim *s)
{
    int per = 3 * s->p.scale;
    s->nnets = (size_t)(4 * per);
    s->nets = calloc(s->nnets, sizeof *s->nets);
    if (!s->nets) {
        s->oom = 1;
        return;
    }
    for (size_t i = 0; i < s->nnets && !s->oom; i++) {
        sim_net *n = &s->nets[i];
        n->id = (int)i + 1;
        n->kind = net_kinds[i % 4];
        /* Not in the first weeks (legitimate trade gets its history) and
         * early enough to play out. */
        n->start = s->t0 + range(&s->r, 15 * DAY, (s->p.days - 45) * (int64_t)DAY);
        switch (i % 4) {
        case 0: net_balkan(s, n); break;
        case 1: net_ring(s, n); break;
        case 2: net_bulk(s, n); break;
        default: net_front(s, n); break;
        }
    }
}

/* ---- output ------------------------------------------------------------------------- */

static void iso(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, n, "%lld", (long long)t);
}

static json_t *strs(const char *const *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *keys_json(const item *it)
{
    json_t *a = json_array();
    for (int i = 0; a && i < it->nkeys; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:b}", "kind", it->keys[i].kind,
                                           "key", it->keys[i].key, "maker", it->keys[i].maker,
                                           "partial", it->keys[i].partial));
    return a;
}

static json_t *item_json(const item *it, int with_fate)
{
    char buf[40];
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", "", "kind",
                          it->mk->boat ? "boat" : "engine", "make", it->mk->name, "model",
                          it->mk->models[it->model]);
    if (!o)
        return NULL;
    char id[32];
    snprintf(id, sizeof id, "I%zu", it->id);
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "serial", it->serial ? json_string(it->serial) : json_null());
    json_object_set_new(o, "hull_number", it->hull ? json_string(it->hull) : json_null());
    if (it->counterfeit)
        json_object_set_new(o, "counterfeit_plate", json_string(it->fake_plate));
    json_object_set_new(o, "keys", keys_json(it));
    json_object_set_new(o, "cluster_keys", strs(it->clusters, it->nclusters));
    json_object_set_new(o, "consignments", strs(it->cons, it->ncons));
    if (with_fate) {
        json_object_set_new(o, "network", json_integer(it->network));
        json_object_set_new(o, "fate", json_string(fate_names[it->fate]));
        if (it->warn_by) {
            iso(it->warn_by, buf, sizeof buf);
            json_object_set_new(o, "warn_by", json_string(buf));
        } else {
            json_object_set_new(o, "warn_by", json_null());
        }
        json_object_set_new(o, "fate_place", it->fate_place ? json_string(it->fate_place->name)
                                                            : json_null());
    }
    return o;
}

static json_t *party_json(const party *p)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "name", p->name, "role", p->role ? p->role : "",
                          "country", p->pl->cc, "place", p->pl->name);
    if (o)
        json_object_set_new(o, "cluster_keys", strs(p->keys, p->nkeys));
    return o;
}

static json_t *truth_json(sim *s)
{
    char a[40], b[40];
    iso(s->t0, a, sizeof a);
    iso(s->t1, b, sizeof b);
    json_t *t = json_object();
    if (!t)
        return NULL;
    json_object_set_new(t, "format", json_string("tidewatch-sim-truth/1"));
    json_object_set_new(t, "scenario",
                        json_pack("{s:I, s:s, s:s, s:i, s:i}", "seed", (json_int_t)s->p.seed,
                                  "start", a, "end", b, "days", s->p.days, "scale", s->p.scale));
    json_object_set_new(t, "about",
                        json_string("warn_by is the event time of the item's seizure or launch: an "
                                    "alert names an item in time when the event time of its "
                                    "evidence (known_at) is before it. Items with warn_by null "
                                    "were never caught and are left out of recall. keys are "
                                    "prov_item_keys' (key_kind serial|hull, strict key, canonical "
                                    "maker); cluster_keys are \"kind:value\" of normalised party "
                                    "identifiers."));
    json_object_set_new(t, "expected",
                        json_pack("{s:I, s:I, s:I, s:I}", "records",
                                  (json_int_t)s->nrecs, "accepted", (json_int_t)s->n_accepted,
                                  "duplicate", (json_int_t)s->n_duplicate, "rejected",
                                  (json_int_t)s->n_rejected));
    json_t *nets = json_array(), *items = json_array();
    size_t counted = 0, caught = 0;
    for (size_t i = 0; i < s->nnets; i++) {
        sim_net *n = &s->nets[i];
        json_t *ps = json_array();
        for (int j = 0; j < n->nparties; j++)
            json_array_append_new(ps, party_json(n->parties[j]));
        json_t *ids = json_array();
        for (size_t j = 0; j < n->nitems; j++) {
            char id[32];
            snprintf(id, sizeof id, "I%zu", n->items[j]->id);
            json_array_append_new(ids, json_string(id));
            json_array_append_new(items, item_json(n->items[j], 1));
            counted++;
            if (n->items[j]->warn_by)
                caught++;
        }
        json_t *no = json_pack("{s:i, s:s}", "id", n->id, "kind", n->kind);
        json_object_set_new(no, "parties", ps);
        json_object_set_new(no, "consignments", strs(n->cons, n->ncons));
        json_object_set_new(no, "vehicles", strs(n->vehicles, n->nvehicles));
        json_object_set_new(no, "items", ids);
        json_array_append_new(nets, no);
    }
    json_object_set_new(t, "networks", nets);
    json_object_set_new(t, "network_items", items);
    json_object_set_new(t, "network_item_counts",
                        json_pack("{s:I, s:I}", "all", (json_int_t)counted, "with_warn_by",
                                  (json_int_t)caught));
    /* Legitimate coastal trade: coastal dealers' items, consignments and
     * buyers. */
    json_t *citems = json_array(), *cclus = json_array();
    for (size_t i = 0; i < s->nitems; i++) {
        item *it = s->items[i];
        if (!it->coastal || it->network)
            continue;
        json_array_append_new(citems, item_json(it, 0));
    }
    for (size_t i = 0; i < s->ndealers; i++) {
        if (!s->dealers[i].coastal)
            continue;
        for (int k = 0; k < s->dealers[i].p->nkeys; k++)
            json_array_append_new(cclus, json_string(s->dealers[i].p->keys[k]));
    }
    json_t *lc = json_object();
    json_object_set_new(lc, "records", s->coastal_recs);
    s->coastal_recs = NULL;
    json_object_set_new(lc, "items", citems);
    json_object_set_new(lc, "dealer_cluster_keys", cclus);
    json_object_set_new(t, "legit_coastal", lc);
    return t;
}

static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->arrival_s != y->arrival_s)
        return x->arrival_s < y->arrival_s ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ---- entry points -------------------------------------------------------------------- */

const char *tw_sim_expect_name(tw_sim_expect e)
{
    switch (e) {
    case TW_SIM_ACCEPTED: return "accepted";
    case TW_SIM_DUPLICATE: return "duplicate";
    case TW_SIM_REJECTED: return "rejected";
    default: return "?";
    }
}

int tw_sim_params_check(tw_sim_params *p, char *err, size_t errlen)
{
    if (!p->start_s)
        p->start_s = TW_SIM_DEFAULT_START;
    if (!p->days)
        p->days = TW_SIM_DEFAULT_DAYS;
    if (!p->scale)
        p->scale = 1;
    if (p->days < 60 || p->days > TW_SIM_MAX_DAYS) {
        snprintf(err, errlen, "days must be within 60..%d (got %d)", TW_SIM_MAX_DAYS, p->days);
        return -1;
    }
    if (p->scale < 1 || p->scale > TW_SIM_MAX_SCALE) {
        snprintf(err, errlen, "scale must be within 1..%d (got %d)", TW_SIM_MAX_SCALE, p->scale);
        return -1;
    }
    if (p->start_s < 631152000 || p->start_s > 4102444800LL) {
        snprintf(err, errlen, "start must be within 1990..2100");
        return -1;
    }
    return 0;
}

static void sim_free(sim *s)
{
    for (size_t i = 0; i < s->nrecs; i++) {
        free(s->recs[i].data);
        free(s->recs[i].source);
        free(s->recs[i].ref);
    }
    free(s->recs);
    for (size_t i = 0; i < s->ndealers && s->dealers; i++)
        free(s->dealers[i].stock);
    for (size_t i = 0; i < s->nnets && s->nets; i++)
        free(s->nets[i].items);
    free(s->nets);
    free(s->dealers);
    free(s->importers);
    free(s->carriers);
    free(s->items);
    json_decref(s->coastal_recs);
    tw_arena_free(&s->a);
    tw_arena_free(&s->ra);
}

int tw_sim_run(const tw_sim_params *params, tw_sim_emit_fn emit, void *arg, json_t **truth,
               char *err, size_t errlen)
{
    if (truth)
        *truth = NULL;
    sim *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->p = *params;
    if (tw_sim_params_check(&s->p, err, errlen) != 0) {
        free(s);
        return -1;
    }
    tw_arena_init(&s->a, 256 * 1024);
    tw_arena_init(&s->ra, 64 * 1024);
    uint64_t x = s->p.seed;
    for (int i = 0; i < 4; i++)
        s->r.s[i] = splitmix64(&x);
    s->t0 = s->p.start_s;
    s->t1 = s->p.start_s + (int64_t)s->p.days * DAY;
    s->coastal_recs = json_array();
    int rc = -1;
    if (!s->coastal_recs || build_world(s) != 0)
        goto oom;
    legit_shipments(s);
    networks(s);
    legit_fleets(s);
    legit_sales(s);
    if (s->oom)
        goto oom;
    qsort(s->recs, s->nrecs, sizeof *s->recs, cmp_rec);
    json_t *t = truth ? truth_json(s) : NULL;
    if (truth && !t)
        goto oom;
    for (size_t i = 0; i < s->nrecs; i++) {
        rec *x2 = &s->recs[i];
        tw_sim_record out = {.index = i, .data = x2->data, .len = x2->len, .source = x2->source,
                             .source_ref = x2->ref, .expect = x2->expect, .why = x2->why,
                             .event_s = x2->event_s, .arrival_s = x2->arrival_s,
                             .network = x2->network, .coastal = x2->coastal};
        int e = emit ? emit(arg, &out) : 0;
        if (e != 0) {
            json_decref(t);
            sim_free(s);
            free(s);
            return e;
        }
    }
    if (truth)
        *truth = t;
    sim_free(s);
    free(s);
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    sim_free(s);
    free(s);
    return rc;
}
