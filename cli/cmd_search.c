/* tidewatch search: items by partial serial or hull number. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tidewatch/v1/provenance.pb-c.h"
#include "tw_chainfmt.h"

/* Pages fetched with --all at most (a server that keeps answering with a
 * next page token would otherwise keep the CLI busy forever). */
#define MAX_PAGES 10000

int tw_cli_search(const tw_cli *cli, int argc, char **argv)
{
    const char *kind = NULL, *maker = NULL, *after = NULL, *before = NULL, *country = NULL,
               *token = NULL;
    int all = 0, json = 0;
    int64_t limit = 0;
    const cli_opt opts[] = {
        {"kind", CLI_OPT_STR, "engine|boat", "only engines or only boats", &kind, 0},
        {"maker", CLI_OPT_STR, "M", "only this maker", &maker, 0},
        {"after", CLI_OPT_STR, "DATE", "seen on or after DATE (YYYY-MM-DD, UTC)", &after, 0},
        {"before", CLI_OPT_STR, "DATE", "seen before DATE", &before, 0},
        {"country", CLI_OPT_STR, "CC", "seen in this country (ISO 3166-1 alpha-2)", &country, 0},
        {"limit", CLI_OPT_INT, "N", "matches per page (default 20, capped by the server)", &limit,
         1},
        {"all", CLI_OPT_FLAG, NULL, "follow the page tokens to the last page", &all, 0},
        {"page-token", CLI_OPT_STR, "T", "start at this page (printed when there are more)",
         &token, 0},
        {"json", CLI_OPT_FLAG, NULL,
         "the answer as JSON (protobuf's JSON mapping; with --all one document, every page's items)",
         &json, 0},
    };
    const cli_help help = {
        "search", "search PATTERN [--kind engine|boat] [--maker M] [--after DATE] [--before DATE]\n"
                  "       [--country CC] [--limit N] [--all] [--json]",
        "Items whose serial or hull number matches PATTERN ('?' one character, '*' any run;\n"
        "without either it is also matched fuzzily), ranked by score. The pattern is sent as\n"
        "typed: the server normalises it.",
        "Without --all one page is printed and, if there are more, the token of the next page\n"
        "(on stderr). No match at all exits 1."};
    char *pattern;
    int rc = cli_parse_one(&help, opts, sizeof opts / sizeof opts[0], argc, argv, "a PATTERN",
                           &pattern);
    if (rc)
        return rc < 0 ? CLI_OK : rc;
    Tidewatch__V1__SearchItemsRequest req = TIDEWATCH__V1__SEARCH_ITEMS_REQUEST__INIT;
    Google__Protobuf__Timestamp ta = GOOGLE__PROTOBUF__TIMESTAMP__INIT,
                                tb = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
    req.pattern = pattern;
    if (kind) {
        if (strcmp(kind, "engine") == 0)
            req.kind = TIDEWATCH__V1__ITEM_KIND__ITEM_KIND_ENGINE;
        else if (strcmp(kind, "boat") == 0)
            req.kind = TIDEWATCH__V1__ITEM_KIND__ITEM_KIND_BOAT;
        else if (strcmp(kind, "other") == 0)
            req.kind = TIDEWATCH__V1__ITEM_KIND__ITEM_KIND_OTHER;
        else {
            fprintf(stderr, "tidewatch search: --kind: expected engine, boat or other, got \"%s\"\n",
                    kind);
            return CLI_USAGE;
        }
    }
    if (after && (rc = cli_date("search", "after", after, &ta)) != 0)
        return rc;
    if (before && (rc = cli_date("search", "before", before, &tb)) != 0)
        return rc;
    req.seen_after = after ? &ta : NULL;
    req.seen_before = before ? &tb : NULL;
    req.maker = (char *)maker;
    req.country = (char *)country;
    req.page_size = (int32_t)(limit > INT32_MAX ? INT32_MAX : limit);
    req.page_token = (char *)token;

    char nf[512];
    snprintf(nf, sizeof nf, "no items match \"%s\"", pattern);
    Tidewatch__V1__SearchItemsResponse **pages = NULL;
    size_t npages = 0, nitems = 0;
    const char *next = NULL;
    for (;;) {
        ProtobufCMessage *m = NULL;
        rc = cli_call(cli, "search", "SearchItems", &req.base,
                      &tidewatch__v1__search_items_response__descriptor, &m, nf);
        if (rc)
            goto out;
        Tidewatch__V1__SearchItemsResponse *r = (Tidewatch__V1__SearchItemsResponse *)m;
        Tidewatch__V1__SearchItemsResponse **np = realloc(pages, (npages + 1) * sizeof *np);
        if (!np) {
            protobuf_c_message_free_unpacked(m, NULL);
            fprintf(stderr, "tidewatch search: out of memory\n");
            rc = CLI_SERVER;
            goto out;
        }
        pages = np;
        pages[npages++] = r;
        nitems += r->n_items;
        next = r->next_page_token && r->next_page_token[0] ? r->next_page_token : NULL;
        if (!all || !next)
            break;
        if (req.page_token && strcmp(req.page_token, next) == 0) {
            fprintf(stderr, "tidewatch search: the query service answered the same page token "
                            "twice (\"%s\"); stopped\n", next);
            rc = CLI_SERVER;
            goto out;
        }
        if (npages >= MAX_PAGES) {
            fprintf(stderr, "tidewatch search: stopped after %d pages\n", MAX_PAGES);
            rc = CLI_SERVER;
            goto out;
        }
        req.page_token = (char *)next;
    }
    /* One answer with every page's matches (the pages keep ownership). */
    Tidewatch__V1__SearchItemsResponse merged = TIDEWATCH__V1__SEARCH_ITEMS_RESPONSE__INIT;
    Tidewatch__V1__ItemMatch **items = calloc(nitems ? nitems : 1, sizeof *items);
    if (!items) {
        fprintf(stderr, "tidewatch search: out of memory\n");
        rc = CLI_SERVER;
        goto out;
    }
    size_t k = 0;
    for (size_t p = 0; p < npages; p++)
        for (size_t i = 0; i < pages[p]->n_items; i++)
            items[k++] = pages[p]->items[i];
    merged.items = items;
    merged.n_items = nitems;
    merged.next_page_token = (char *)(all || !next ? "" : next);
    if (json) {
        rc = cli_print_json(&merged.base);
    } else {
        tw_fmt_out o = tw_fmt_to_file(stdout);
        rc = tw_chainfmt_search_text(&o, &merged) ? CLI_SERVER : CLI_OK;
        if (!all && next)
            fprintf(stderr, "More matches: --all, or --page-token %s\n", next);
    }
    free(items);
    if (rc == CLI_OK && nitems == 0)
        rc = CLI_NOT_FOUND;
out:
    for (size_t p = 0; p < npages; p++)
        protobuf_c_message_free_unpacked(&pages[p]->base, NULL);
    free(pages);
    return cli_finish("search", rc);
}
