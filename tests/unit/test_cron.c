/* tw_cron: parsing schedules and finding their next minute (UTC). */
#include <criterion/criterion.h>
#include <string.h>
#include <time.h>

#include "tw_cron.h"

static tw_cron parse_ok(const char *s)
{
    tw_cron c;
    char err[256] = "";
    cr_assert_eq(tw_cron_parse(s, &c, err, sizeof err), 0, "%s: %s", s, err);
    return c;
}

static void parse_bad(const char *s, const char *reason_part)
{
    tw_cron c;
    char err[256] = "";
    cr_assert_eq(tw_cron_parse(s, &c, err, sizeof err), -1, "%s parsed", s);
    cr_assert(strstr(err, reason_part), "%s: \"%s\" lacks \"%s\"", s, err, reason_part);
}

/* Unix seconds of a UTC time. */
static int64_t at(int y, int mo, int d, int h, int mi)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
                    .tm_min = mi};
    return (int64_t)timegm(&tm);
}

Test(cron, fields_lists_ranges_steps_and_names)
{
    tw_cron c = parse_ok("*/15 2,14 1-7 JAN-mar/2 mon-fri");
    cr_assert_eq(c.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
    cr_assert_eq(c.hours, (1u << 2) | (1u << 14));
    cr_assert_eq(c.mdays, 0xfeu);
    cr_assert_eq(c.months, (1u << 1) | (1u << 3));
    cr_assert_eq(c.wdays, 0x3e);
    cr_assert(!c.mday_any && !c.wday_any);
    c = parse_ok("5/20 * * * 7");
    cr_assert_eq(c.minutes, (1ULL << 5) | (1ULL << 25) | (1ULL << 45), "a/n runs to the end");
    cr_assert_eq(c.wdays, 1, "7 is Sunday");
    cr_assert(c.mday_any && !c.wday_any);
}

Test(cron, macros)
{
    tw_cron a = parse_ok("@daily"), b = parse_ok("0 0 * * *");
    cr_assert_eq(memcmp(&a, &b, sizeof a), 0);
    a = parse_ok("  @HOURLY ");
    cr_assert_eq(a.minutes, 1);
    cr_assert_eq(a.hours, 0xffffff);
    parse_bad("@fortnightly", "unknown macro");
    parse_bad("@daily 5", "unknown macro");
}

Test(cron, bad_schedules_name_the_field)
{
    parse_bad("60 * * * *", "minute");
    parse_bad("* 24 * * *", "hour");
    parse_bad("* * 0 * *", "day of month");
    parse_bad("* * * 13 *", "month");
    parse_bad("* * * * 8", "day of week");
    parse_bad("* * * foo *", "month: not a number");
    parse_bad("5-1 * * * *", "backwards");
    parse_bad("*/0 * * * *", "minute");
    parse_bad("1,,2 * * * *", "minute");
    parse_bad("1, * * * *", "minute");
    parse_bad("* * * *", "4 fields given");
    parse_bad("* * * * * *", "more than 5");
    parse_bad("", "0 fields given");
}

Test(cron, next_minute)
{
    tw_cron c = parse_ok("30 2 * * *");
    cr_assert_eq(tw_cron_next(&c, at(2026, 12, 1, 1, 0)), at(2026, 12, 1, 2, 30));
    cr_assert_eq(tw_cron_next(&c, at(2026, 12, 1, 2, 30)), at(2026, 12, 2, 2, 30), "strictly after");
    cr_assert_eq(tw_cron_next(&c, at(2026, 12, 31, 3, 0)), at(2027, 1, 1, 2, 30), "year end");
    c = parse_ok("0 0 29 2 *");
    cr_assert_eq(tw_cron_next(&c, at(2026, 3, 1, 0, 0)), at(2028, 2, 29, 0, 0), "leap day");
    c = parse_ok("0 0 30 2 *");
    cr_assert_eq(tw_cron_next(&c, at(2026, 1, 1, 0, 0)), -1, "February 30th never comes");
    c = parse_ok("*/10 * * * *");
    cr_assert_eq(tw_cron_next(&c, at(2026, 12, 1, 9, 59) + 59), at(2026, 12, 1, 10, 0));
}

Test(cron, day_of_month_or_day_of_week)
{
    /* Both restricted: either matches (the 13th, or any Friday). */
    tw_cron c = parse_ok("0 12 13 * fri");
    /* 2026-12-01 is a Tuesday: the next Friday is the 4th. */
    cr_assert_eq(tw_cron_next(&c, at(2026, 12, 1, 0, 0)), at(2026, 12, 4, 12, 0));
    cr_assert_eq(tw_cron_next(&c, at(2026, 12, 11, 12, 0)), at(2026, 12, 13, 12, 0));
    /* Only the day of week restricted: Fridays only. */
    c = parse_ok("0 12 * * fri");
    cr_assert_eq(tw_cron_next(&c, at(2026, 12, 11, 12, 0)), at(2026, 12, 18, 12, 0));
}
