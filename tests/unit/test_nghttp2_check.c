/* Unit tests for tw_nghttp2_check: the linked libnghttp2 passes the
 * rapid-reset and CONTINUATION-flood probes. (Run against upstream 1.52.0
 * or 1.57.0 with LD_LIBRARY_PATH, the probe fails and names the CVE.) */
#include <criterion/criterion.h>
#include <string.h>

#include "tw_nghttp2_check.h"

Test(nghttp2_check, linked_library_has_the_fixes)
{
    char err[512] = "";
    cr_assert_eq(tw_nghttp2_check(err, sizeof err), 0, "%s", err);
}

Test(nghttp2_check, repeatable)
{
    char err[512] = "";
    for (int i = 0; i < 3; i++)
        cr_assert_eq(tw_nghttp2_check(err, sizeof err), 0, "%s", err);
}
