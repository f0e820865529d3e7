/* Fuzz tw_cron_parse (schedules come from configuration files), and step
 * whatever parses: the next time is after the start and matches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tw_cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char text[TW_CRON_TEXT_MAX + 8];
    char err[256];
    tw_cron c;
    if (size > sizeof text - 1)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (tw_cron_parse(text, &c, err, sizeof err) != 0) {
        if (!err[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    const int64_t start = INT64_C(1764547200); /* 2025-12-01 */
    int64_t t = tw_cron_next(&c, start);
    if (t == -1)
        return 0;
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= start || t % 60 || !gmtime_r(&tt, &tm) || !((c.minutes >> tm.tm_min) & 1) ||
        !((c.hours >> tm.tm_hour) & 1) || !((c.months >> (tm.tm_mon + 1)) & 1))
        abort();
    return 0;
}
