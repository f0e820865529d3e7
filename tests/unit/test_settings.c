#include <criterion/criterion.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_hostport.h"
#include "tw_settings.h"

typedef struct test_cfg {
    char *listen;
    int64_t port;
    int verbose;
    int64_t timeout_ms;
    int64_t max_message;
    int log_level;
    char *database_url;
    char *label;
    int64_t env_only;
} test_cfg;

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const tw_setting table[] = {
    {.name = "listen", .env = "TIDEWATCH_LISTEN", .flag = "listen", .type = TW_SET_STRING,
     .def = "127.0.0.1:50051", .help = "gRPC listen address.", .offset = offsetof(test_cfg, listen),
     .check = tw_hostport_check},
    {.name = "port", .env = "TIDEWATCH_PORT", .flag = "port", .type = TW_SET_INT, .def = "8080",
     .help = "A port.", .offset = offsetof(test_cfg, port), .min = 1, .max = 65535},
    {.name = "verbose", .env = "TIDEWATCH_VERBOSE", .flag = "verbose", .type = TW_SET_BOOL,
     .def = "false", .help = "Chatty.", .offset = offsetof(test_cfg, verbose), .reloadable = 1},
    {.name = "timeout", .env = "TIDEWATCH_TIMEOUT", .flag = "timeout", .type = TW_SET_DURATION_MS,
     .def = "5s", .help = "Call timeout.", .offset = offsetof(test_cfg, timeout_ms), .min = 1,
     .max = 3600000},
    {.name = "max_message", .env = "TIDEWATCH_MAX_MESSAGE", .flag = "max-message",
     .type = TW_SET_SIZE, .def = "4MiB", .help = "Largest message.",
     .offset = offsetof(test_cfg, max_message)},
    {.name = "log_level", .env = "TIDEWATCH_LOG_LEVEL", .flag = "log-level", .type = TW_SET_ENUM,
     .def = "info", .help = "Log threshold.", .offset = offsetof(test_cfg, log_level),
     .choices = levels, .reloadable = 1},
    {.name = "database_url", .env = "TIDEWATCH_DATABASE_URL", .flag = "database-url",
     .type = TW_SET_STRING, .def = NULL, .help = "libpq connection string.",
     .offset = offsetof(test_cfg, database_url), .check = NULL, .secret = 1},
    {.name = "label", .env = NULL, .flag = "label", .type = TW_SET_STRING, .def = NULL,
     .help = "Flag only.", .offset = offsetof(test_cfg, label)},
    {.name = "env_only", .env = "TIDEWATCH_ENV_ONLY", .flag = NULL, .type = TW_SET_INT, .def = "7",
     .help = "Environment only.", .offset = offsetof(test_cfg, env_only)},
};
#define NTABLE (sizeof table / sizeof table[0])

/* A fake environment: NULL-terminated name/value pairs. */
typedef struct fake_env {
    const char *const *pairs;
    int lookups;
} fake_env;

static const char *fake_getenv(void *arg, const char *name)
{
    fake_env *e = arg;
    e->lookups++;
    for (size_t i = 0; e->pairs && e->pairs[i]; i += 2) {
        if (strcmp(e->pairs[i], name) == 0)
            return e->pairs[i + 1];
    }
    return NULL;
}

/* Load with argv (NULL-terminated, without argv[0]) and env pairs. */
static int load(test_cfg *c, const char *const *env, const char *const *args, char *err,
                size_t errlen, FILE *out)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "/usr/bin/tidewatch-test";
    for (size_t i = 0; args && args[i]; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;
    fake_env fe = {.pairs = env};
    tw_settings_about about = {.program = "tidewatch-test",
                               .summary = "Exercises the settings table.",
                               .version = "9.9.9",
                               .getenv_fn = fake_getenv,
                               .getenv_arg = &fe,
                               .out = out};
    return tw_settings_load(table, NTABLE, c, argc, argv, &about, err, errlen);
}

Test(settings, defaults)
{
    test_cfg c = {0};
    char err[256] = "";
    cr_assert_eq(load(&c, NULL, NULL, err, sizeof err, NULL), 0, "%s", err);
    cr_assert_str_eq(c.listen, "127.0.0.1:50051");
    cr_assert_eq(c.port, 8080);
    cr_assert_eq(c.verbose, 0);
    cr_assert_eq(c.timeout_ms, 5000);
    cr_assert_eq(c.max_message, 4 * 1024 * 1024);
    cr_assert_eq(c.log_level, 1);
    cr_assert_null(c.database_url);
    cr_assert_null(c.label);
    cr_assert_eq(c.env_only, 7);
    tw_settings_free(table, NTABLE, &c);
    cr_assert_null(c.listen, "free resets string fields");
}

Test(settings, env_overrides_defaults_and_flags_override_env)
{
    const char *const env[] = {"TIDEWATCH_LISTEN", "[::1]:9000", "TIDEWATCH_PORT", "1234",
                               "TIDEWATCH_LOG_LEVEL", "DEBUG", "TIDEWATCH_VERBOSE", "yes",
                               "TIDEWATCH_ENV_ONLY", "-3", "TIDEWATCH_TIMEOUT", "250ms",
                               NULL};
    test_cfg c = {0};
    char err[256] = "";
    cr_assert_eq(load(&c, env, NULL, err, sizeof err, NULL), 0, "%s", err);
    cr_assert_str_eq(c.listen, "[::1]:9000");
    cr_assert_eq(c.port, 1234);
    cr_assert_eq(c.log_level, 0);
    cr_assert_eq(c.verbose, 1);
    cr_assert_eq(c.env_only, -3);
    cr_assert_eq(c.timeout_ms, 250);

    const char *const args[] = {"--listen", "0.0.0.0:1", "--port=99", "--log-level=warn",
                                "--no-verbose", "--timeout", "2m", "--label", "x y", NULL};
    cr_assert_eq(load(&c, env, args, err, sizeof err, NULL), 0, "%s", err);
    cr_assert_str_eq(c.listen, "0.0.0.0:1");
    cr_assert_eq(c.port, 99);
    cr_assert_eq(c.log_level, 2);
    cr_assert_eq(c.verbose, 0);
    cr_assert_eq(c.timeout_ms, 120000);
    cr_assert_str_eq(c.label, "x y");
    tw_settings_free(table, NTABLE, &c);
}

Test(settings, bool_flag_forms)
{
    test_cfg c = {0};
    char err[256];
    const char *const a1[] = {"--verbose", NULL};
    cr_assert_eq(load(&c, NULL, a1, err, sizeof err, NULL), 0, "%s", err);
    cr_assert_eq(c.verbose, 1);
    const char *const a2[] = {"--verbose=off", NULL};
    cr_assert_eq(load(&c, NULL, a2, err, sizeof err, NULL), 0, "%s", err);
    cr_assert_eq(c.verbose, 0);
    const char *const env[] = {"TIDEWATCH_VERBOSE", "ON", NULL};
    const char *const a3[] = {"--verbose=0", NULL};
    cr_assert_eq(load(&c, env, NULL, err, sizeof err, NULL), 0, "%s", err);
    cr_assert_eq(c.verbose, 1);
    cr_assert_eq(load(&c, env, a3, err, sizeof err, NULL), 0, "%s", err);
    cr_assert_eq(c.verbose, 0);
    const char *const a4[] = {"--no-port", NULL};
    cr_assert_eq(load(&c, NULL, a4, err, sizeof err, NULL), -1, "--no- only applies to booleans");
    cr_assert_str_eq(err, "unknown flag \"--no-port\" (see --help)");
    tw_settings_free(table, NTABLE, &c);
}

Test(settings, error_names_setting_and_source)
{
    test_cfg c = {0};
    char err[256];
    const char *const env[] = {"TIDEWATCH_PORT", "abc", NULL};
    cr_assert_eq(load(&c, env, NULL, err, sizeof err, NULL), -1);
    cr_assert_str_eq(err, "invalid value \"abc\" for port (from TIDEWATCH_PORT): expected an "
                          "integer between 1 and 65535");

    const char *const args[] = {"--port", "70000", NULL};
    cr_assert_eq(load(&c, NULL, args, err, sizeof err, NULL), -1);
    cr_assert_str_eq(err, "invalid value \"70000\" for port (from --port): expected an integer "
                          "between 1 and 65535");

    const char *const a2[] = {"--timeout=0ms", NULL};
    cr_assert_eq(load(&c, NULL, a2, err, sizeof err, NULL), -1);
    cr_assert(strstr(err, "for timeout (from --timeout): expected a duration between 1ms and 1h"),
              "%s", err);

    const char *const a3[] = {"--log-level", "loud", NULL};
    cr_assert_eq(load(&c, NULL, a3, err, sizeof err, NULL), -1);
    cr_assert_str_eq(err, "invalid value \"loud\" for log_level (from --log-level): expected one "
                          "of: debug, info, warn, error");

    const char *const a4[] = {"--max-message=4MB", NULL};
    cr_assert_eq(load(&c, NULL, a4, err, sizeof err, NULL), -1);
    cr_assert(strstr(err, "\"4MB\" for max_message (from --max-message): expected a size"), "%s",
              err);

    const char *const a5[] = {"--listen", "localhost", NULL};
    cr_assert_eq(load(&c, NULL, a5, err, sizeof err, NULL), -1);
    cr_assert(strstr(err, "\"localhost\" for listen (from --listen): expected host:port"), "%s",
              err);
    tw_settings_free(table, NTABLE, &c);
}

Test(settings, secret_values_are_not_echoed)
{
    test_cfg c = {0};
    char err[256];
    const char *const args[] = {"--database-url=postgres://u:hunter2@db/x", "--verbose", NULL};
    cr_assert_eq(load(&c, NULL, args, err, sizeof err, NULL), 0, "%s", err);
    char *dump = tw_settings_dump(table, NTABLE, &c);
    cr_assert_not_null(dump);
    cr_assert_null(strstr(dump, "hunter2"), "%s", dump);
    cr_assert(strstr(dump, "database_url=***"), "%s", dump);
    cr_assert(strstr(dump, "listen=\"127.0.0.1:50051\""), "%s", dump);
    cr_assert(strstr(dump, "port=8080 verbose=true timeout=5s max_message=4MiB log_level=info"),
              "%s", dump);
    cr_assert(strstr(dump, "label=\"\""), "%s", dump);
    free(dump);
    tw_settings_free(table, NTABLE, &c);
}

Test(settings, command_line_errors)
{
    test_cfg c = {0};
    char err[256];
    const char *const a1[] = {"--bogus=1", NULL};
    cr_assert_eq(load(&c, NULL, a1, err, sizeof err, NULL), -1);
    cr_assert_str_eq(err, "unknown flag \"--bogus\" (see --help)");

    const char *const a2[] = {"--port", NULL};
    cr_assert_eq(load(&c, NULL, a2, err, sizeof err, NULL), -1);
    cr_assert_str_eq(err, "missing value for --port (port)");

    const char *const a3[] = {"--port", "--verbose", NULL};
    cr_assert_eq(load(&c, NULL, a3, err, sizeof err, NULL), -1);
    cr_assert_str_eq(err, "missing value for --port (port)");

    const char *const a4[] = {"stray", NULL};
    cr_assert_eq(load(&c, NULL, a4, err, sizeof err, NULL), -1);
    cr_assert(strstr(err, "unexpected argument \"stray\""), "%s", err);

    const char *const a5[] = {"-p", "1", NULL};
    cr_assert_eq(load(&c, NULL, a5, err, sizeof err, NULL), -1);
    cr_assert(strstr(err, "unknown flag \"-p\""), "%s", err);

    const char *const a6[] = {"--env_only=3", NULL};
    cr_assert_eq(load(&c, NULL, a6, err, sizeof err, NULL), -1, "env-only settings have no flag");

    const char *const a7[] = {"--", NULL};
    cr_assert_eq(load(&c, NULL, a7, err, sizeof err, NULL), 0, "%s", err);
    const char *const a8[] = {"--", "--help", NULL};
    cr_assert_eq(load(&c, NULL, a8, err, sizeof err, NULL), -1, "after -- nothing is a flag");
    tw_settings_free(table, NTABLE, &c);
}

Test(settings, help_lists_every_setting)
{
    test_cfg c = {0};
    char err[256] = "";
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    cr_assert_not_null(out);
    /* --help wins even over invalid values elsewhere. */
    const char *const env[] = {"TIDEWATCH_PORT", "abc", NULL};
    const char *const args[] = {"--port=0", "--help", NULL};
    cr_assert_eq(load(&c, env, args, err, sizeof err, out), 1);
    fclose(out);
    cr_assert(strstr(text, "Usage: tidewatch-test [OPTIONS]\nExercises the settings table.\n"),
              "%s", text);
    for (size_t i = 0; i < NTABLE; i++) {
        if (table[i].env)
            cr_assert(strstr(text, table[i].env), "missing %s in\n%s", table[i].env, text);
        cr_assert(strstr(text, table[i].help), "missing help of %s", table[i].name);
    }
    cr_assert(strstr(text, "--listen STRING"), "%s", text);
    cr_assert(strstr(text, "--verbose[=BOOL]"), "%s", text);
    cr_assert(strstr(text, "--log-level {debug|info|warn|error}"), "%s", text);
    cr_assert(strstr(text, "(env only) INT"), "%s", text);
    cr_assert(strstr(text, "127.0.0.1:50051"), "%s", text);
    cr_assert(strstr(text, "4MiB"), "%s", text);
    cr_assert(strstr(text, "[reloadable]"), "%s", text);
    cr_assert(strstr(text, "Range: 1 to 65535."), "%s", text);
    cr_assert(strstr(text, "--help"), "%s", text);
    /* Columns line up: the env column starts at the same offset on each row. */
    const char *hdr = strstr(text, "  FLAG");
    const char *row = strstr(text, "  --port INT");
    cr_assert(hdr && row);
    const char *hdr_env = strstr(hdr, "ENVIRONMENT");
    const char *row_env = strstr(row, "TIDEWATCH_PORT");
    cr_assert_eq(hdr_env - hdr, row_env - row, "columns misaligned:\n%s", text);
    free(text);
    tw_settings_free(table, NTABLE, &c);
}

Test(settings, version)
{
    test_cfg c = {0};
    char err[64];
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    const char *const args[] = {"--version", NULL};
    cr_assert_eq(load(&c, NULL, args, err, sizeof err, out), 1);
    fclose(out);
    cr_assert_str_eq(text, "tidewatch-test 9.9.9\n");
    free(text);
    tw_settings_free(table, NTABLE, &c);
}

Test(settings, duration_parser)
{
    int64_t v;
    struct {
        const char *in;
        int64_t want;
    } ok[] = {{"250ms", 250}, {"5s", 5000}, {"2m", 120000}, {"1h", 3600000}, {"42", 42},
              {"0", 0},       {"0s", 0}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert_eq(tw_settings_parse_duration_ms(ok[i].in, &v), 0, "%s", ok[i].in);
        cr_assert_eq(v, ok[i].want, "%s", ok[i].in);
    }
    const char *bad[] = {"",   "s",    "1.5s",  "5S",   "-1s", "5 s", " 5s",
                         "5d", "5sec", "5msx", "9223372036854775807h",
                         "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(tw_settings_parse_duration_ms(bad[i], &v), -1, "\"%s\"", bad[i]);
}

Test(settings, size_parser)
{
    int64_t v;
    struct {
        const char *in;
        int64_t want;
    } ok[] = {{"4MiB", 4 << 20},        {"512KiB", 512 << 10}, {"1GiB", INT64_C(1) << 30},
              {"2TiB", INT64_C(2) << 40}, {"4mib", 4 << 20},    {"100", 100},
              {"100B", 100}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert_eq(tw_settings_parse_size(ok[i].in, &v), 0, "%s", ok[i].in);
        cr_assert_eq(v, ok[i].want, "%s", ok[i].in);
    }
    const char *bad[] = {"4MB", "4M", "4K", "4 MiB", "MiB", "-1", "1.5GiB", "99999999999TiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(tw_settings_parse_size(bad[i], &v), -1, "\"%s\"", bad[i]);
}

Test(settings, bool_parser)
{
    int b = -1;
    const char *yes[] = {"true", "TRUE", "1", "yes", "on"};
    const char *no[] = {"false", "0", "No", "off"};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(tw_settings_parse_bool(yes[i], &b), 0);
        cr_assert_eq(b, 1, "%s", yes[i]);
    }
    for (size_t i = 0; i < 4; i++) {
        cr_assert_eq(tw_settings_parse_bool(no[i], &b), 0);
        cr_assert_eq(b, 0, "%s", no[i]);
    }
    cr_assert_eq(tw_settings_parse_bool("y", &b), -1);
    cr_assert_eq(tw_settings_parse_bool("", &b), -1);
}

Test(settings, int_limits)
{
    static const tw_setting t[] = {
        {.name = "n", .flag = "n", .type = TW_SET_INT, .offset = 0},
    };
    int64_t v = 5;
    char why[128];
    cr_assert_eq(tw_settings_set(&t[0], &v, "-9223372036854775808", why, sizeof why), 0);
    cr_assert_eq(v, INT64_MIN);
    cr_assert_eq(tw_settings_set(&t[0], &v, "9223372036854775807", why, sizeof why), 0);
    cr_assert_eq(v, INT64_MAX);
    cr_assert_eq(tw_settings_set(&t[0], &v, "9223372036854775808", why, sizeof why), -1);
    cr_assert_str_eq(why, "expected an integer");
    cr_assert_eq(v, INT64_MAX, "failed parse leaves the field alone");
    cr_assert_eq(tw_settings_set(&t[0], &v, " 1", why, sizeof why), -1);
    cr_assert_eq(tw_settings_set(&t[0], &v, "0x10", why, sizeof why), -1);
}

Test(settings, bad_table_is_reported)
{
    static const tw_setting t[] = {
        {.name = "mode", .flag = "mode", .type = TW_SET_ENUM, .def = "a", .offset = 0},
    };
    int mode = 0;
    char err[128];
    char *argv[] = {"x", NULL};
    fake_env fe = {0};
    tw_settings_about about = {.getenv_fn = fake_getenv, .getenv_arg = &fe};
    cr_assert_eq(tw_settings_load(t, 1, &mode, 1, argv, &about, err, sizeof err), -1);
    cr_assert(strstr(err, "mode") && strstr(err, "without choices"), "%s", err);
}

Test(settings, invalid_default_is_reported)
{
    static const tw_setting t[] = {
        {.name = "size", .env = "X_SIZE", .flag = "size", .type = TW_SET_SIZE, .def = "4MB",
         .offset = 0},
    };
    int64_t v = 0;
    char err[256];
    char *argv[] = {"x", NULL};
    fake_env fe = {0};
    tw_settings_about about = {.getenv_fn = fake_getenv, .getenv_arg = &fe};
    cr_assert_eq(tw_settings_load(t, 1, &v, 1, argv, &about, err, sizeof err), -1);
    cr_assert(strstr(err, "invalid value \"4MB\" for size (from default)"), "%s", err);
}

Test(settings, real_getenv_by_default)
{
    static const tw_setting t[] = {
        {.name = "home", .env = "TW_TEST_SETTINGS_VAR", .type = TW_SET_STRING, .offset = 0},
    };
    char *home = NULL;
    char err[128];
    char *argv[] = {"x", NULL};
    setenv("TW_TEST_SETTINGS_VAR", "from-env", 1);
    cr_assert_eq(tw_settings_load(t, 1, &home, 1, argv, NULL, err, sizeof err), 0, "%s", err);
    unsetenv("TW_TEST_SETTINGS_VAR");
    cr_assert_str_eq(home, "from-env");
    tw_settings_free(t, 1, &home);
    cr_assert_null(home);
}
