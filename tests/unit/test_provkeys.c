/* tw_provkeys: the identity rule of prov_key_item() on a batch's keys. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "tw_provkeys.h"

static tw_provkeys *k;

static void setup(void) { cr_assert((k = tw_provkeys_new())); }
static void teardown(void) { tw_provkeys_free(k); }

TestSuite(provkeys, .init = setup, .fini = teardown);

Test(provkeys, a_maker_matches_its_own_entry_or_a_lone_makerless_one)
{
    cr_assert_eq(tw_provkeys_item(k, 1, "6E5X1094417", "Yamaha"), 0, "nothing known yet");
    cr_assert_eq(tw_provkeys_add(k, 1, "6E5X1094417", "", 10), 1);
    cr_assert_eq(tw_provkeys_item(k, 1, "6E5X1094417", "Yamaha"), 10, "lone entry without maker");
    cr_assert_eq(tw_provkeys_item(k, 1, "6E5X1094417", ""), 10);
    cr_assert_eq(tw_provkeys_item(k, 2, "6E5X1094417", ""), 0, "another key kind");
    cr_assert_eq(tw_provkeys_add(k, 1, "6E5X1094417", "Yamaha", 10), 1);
    /* Two entries now: Yamaha finds its own, Tohatsu none, no maker the
     * makerless entry. */
    cr_assert_eq(tw_provkeys_item(k, 1, "6E5X1094417", "Yamaha"), 10);
    cr_assert_eq(tw_provkeys_item(k, 1, "6E5X1094417", "Tohatsu"), 0);
    cr_assert_eq(tw_provkeys_item(k, 1, "6E5X1094417", ""), 10);
}

Test(provkeys, a_reading_without_maker_takes_a_lone_entry_of_any_maker)
{
    cr_assert_eq(tw_provkeys_add(k, 1, "ABC123", "Suzuki", 7), 1);
    cr_assert_eq(tw_provkeys_item(k, 1, "ABC123", ""), 7);
    cr_assert_eq(tw_provkeys_item(k, 1, "ABC123", "Honda"), 0, "another maker: not the same");
    cr_assert_eq(tw_provkeys_add(k, 1, "ABC123", "Honda", 9), 1);
    cr_assert_eq(tw_provkeys_item(k, 1, "ABC123", ""), 0, "two makers, none without: ambiguous");
    cr_assert_eq(tw_provkeys_item(k, 1, "ABC123", "Honda"), 9);
}

Test(provkeys, the_first_item_of_a_triple_stays)
{
    cr_assert_eq(tw_provkeys_add(k, 2, "FR-ABC12345D404", "", 3), 1);
    cr_assert_eq(tw_provkeys_add(k, 2, "FR-ABC12345D404", "", 4), 0);
    cr_assert_eq(tw_provkeys_item(k, 2, "FR-ABC12345D404", ""), 3);
    cr_assert(tw_provkeys_has(k, 2, "FR-ABC12345D404", ""));
    cr_assert(!tw_provkeys_has(k, 2, "FR-ABC12345D404", "Zodiac"));
    cr_assert_eq(tw_provkeys_count(k), 1);
}

Test(provkeys, many_keys_grow_the_table_and_clear_empties_it)
{
    char key[32];
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "K%06d", i);
        cr_assert_eq(tw_provkeys_add(k, 1 + i % 2, key, i % 3 ? "" : "Mercury", i + 1), 1);
    }
    cr_assert_eq(tw_provkeys_count(k), 50000);
    for (int i = 0; i < 50000; i += 997) {
        snprintf(key, sizeof key, "K%06d", i);
        cr_assert_eq(tw_provkeys_item(k, 1 + i % 2, key, ""), i + 1);
        cr_assert_eq(tw_provkeys_item(k, 2 - i % 2, key, ""), 0);
    }
    tw_provkeys_clear(k);
    cr_assert_eq(tw_provkeys_count(k), 0);
    cr_assert_eq(tw_provkeys_item(k, 1, "K000000", ""), 0);
    cr_assert_eq(tw_provkeys_add(k, 1, "K000000", "", 5), 1);
    cr_assert_eq(tw_provkeys_item(k, 1, "K000000", ""), 5);
}
