/* tw_cron: cron schedules (five fields: minute, hour, day of month, month,
 * day of week) for the scheduled alert jobs, parsed from configuration and
 * stepped in UTC. Pure: no I/O, no clock.
 *
 * Each field is `*`, a number, a range `a-b`, a step `*\/n` or `a-b/n`, or a
 * comma list of those. Months take JAN..DEC and days of week SUN..SAT (case
 * does not matter); day of week 0 and 7 are both Sunday. Macros: @yearly
 * (@annually), @monthly, @weekly, @daily (@midnight), @hourly. As in classic
 * cron, when both day of month and day of week are restricted, a day
 * matching either one is taken. */
#ifndef TW_CRON_H
#define TW_CRON_H

#include <stddef.h>
#include <stdint.h>

#ifndef TW_WUR
#define TW_WUR __attribute__((warn_unused_result))
#endif

#define TW_CRON_TEXT_MAX 256

typedef struct tw_cron {
    uint64_t minutes;  /* bit m: minute m (0..59) */
    uint32_t hours;    /* bit h (0..23) */
    uint32_t mdays;    /* bit d (1..31) */
    uint16_t months;   /* bit m (1..12) */
    uint8_t wdays;     /* bit d (0..6, 0 Sunday) */
    uint8_t mday_any;  /* the day-of-month field was `*` */
    uint8_t wday_any;  /* the day-of-week field was `*` */
} tw_cron;

/* Parse text (NUL-terminated, at most TW_CRON_TEXT_MAX bytes) into *out.
 * Returns 0, or -1 with a reason naming the field in err (out is then
 * zeroed). */
int tw_cron_parse(const char *text, tw_cron *out, char *err, size_t errlen) TW_WUR;

/* The first minute strictly after `after` (Unix seconds, UTC) that the
 * schedule names, in Unix seconds; -1 when there is none within the next
 * 8 years (e.g. "0 0 30 2 *": February 30th). */
int64_t tw_cron_next(const tw_cron *c, int64_t after);

#endif
