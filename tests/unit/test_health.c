#include <criterion/criterion.h>

#include "tw_health.h"

Test(health, registry)
{
    tw_health *h = tw_health_new();
    cr_assert(h);
    cr_assert_eq(tw_health_get(h, ""), TW_HEALTH_SERVING, "the server itself starts SERVING");
    cr_assert_eq(tw_health_get(h, "tidewatch.v1.IngestService"), -1);
    cr_assert_eq(tw_health_set(h, "tidewatch.v1.IngestService", TW_HEALTH_NOT_SERVING), 0);
    cr_assert_eq(tw_health_get(h, "tidewatch.v1.IngestService"), TW_HEALTH_NOT_SERVING);
    cr_assert_eq(tw_health_set(h, "tidewatch.v1.IngestService", TW_HEALTH_SERVING), 0);
    cr_assert_eq(tw_health_get(h, "tidewatch.v1.IngestService"), TW_HEALTH_SERVING);
    tw_health_set_all_not_serving(h);
    cr_assert_eq(tw_health_get(h, ""), TW_HEALTH_NOT_SERVING);
    cr_assert_eq(tw_health_get(h, "tidewatch.v1.IngestService"), TW_HEALTH_NOT_SERVING);
    tw_health_free(h);
}
