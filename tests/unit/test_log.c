#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "tw_log.h"

static int evaluated;
static int side_effect(void)
{
    evaluated++;
    return 42;
}

Test(log, parse_levels_and_formats)
{
    tw_log_level l;
    cr_assert_eq(tw_log_level_parse("DEBUG", &l), 0);
    cr_assert_eq(l, TW_LOG_DEBUG);
    cr_assert_eq(tw_log_level_parse("warning", &l), 0);
    cr_assert_eq(l, TW_LOG_WARN);
    cr_assert_eq(tw_log_level_parse("loud", &l), -1);
    cr_assert_eq(tw_log_level_parse(NULL, &l), -1);
    tw_log_format f;
    cr_assert_eq(tw_log_format_parse("json", &f), 0);
    cr_assert_eq(f, TW_LOG_FORMAT_JSON);
    cr_assert_eq(tw_log_format_parse("xml", &f), -1);
}

Test(log, below_threshold_costs_nothing)
{
    tw_log_init("test", TW_LOG_WARN, TW_LOG_FORMAT_TEXT);
    evaluated = 0;
    TW_DEBUG(NULL, "value %d", side_effect());
    TW_INFO(NULL, "value %d", side_effect());
    cr_assert_eq(evaluated, 0, "arguments below the level are not evaluated");
    tw_log_shutdown();
}

Test(log, json_lines_carry_context, .init = cr_redirect_stderr)
{
    tw_log_init("ingest", TW_LOG_DEBUG, TW_LOG_FORMAT_JSON);
    tw_log_ctx ctx = {.peer = "127.0.0.1:5000", .call = "/a.B/C"};
    TW_WARN(&ctx, "quote \" and newline\n%s", "done");
    tw_log_shutdown();
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    char line[1024] = {0};
    cr_assert(fgets(line, sizeof line, f));
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    cr_assert(o, "not JSON: %s (%s)", line, err.text);
    cr_assert_str_eq(json_string_value(json_object_get(o, "service")), "ingest");
    cr_assert_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    cr_assert_str_eq(json_string_value(json_object_get(o, "peer")), "127.0.0.1:5000");
    cr_assert_str_eq(json_string_value(json_object_get(o, "call")), "/a.B/C");
    cr_assert_str_eq(json_string_value(json_object_get(o, "msg")), "quote \" and newline\ndone");
    json_decref(o);
}

Test(log, text_lines, .init = cr_redirect_stderr)
{
    tw_log_init("query", TW_LOG_INFO, TW_LOG_FORMAT_TEXT);
    tw_log_ctx ctx = {.peer = "[::1]:9"};
    TW_ERROR(&ctx, "boom %d", 7);
    tw_log_shutdown();
    fflush(stderr);
    char line[1024] = {0};
    cr_assert(fgets(line, sizeof line, cr_get_redirected_stderr()));
    cr_assert(strstr(line, " error query peer=[::1]:9: boom 7\n"), "%s", line);
}
