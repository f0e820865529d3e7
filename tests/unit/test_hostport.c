#include <criterion/criterion.h>

#include "tw_hostport.h"

static void expect_ok(const char *in, const char *want_host, int want_port)
{
    char host[64] = "garbage";
    int port = -7;
    cr_assert_eq(tw_hostport_parse(in, host, sizeof host, &port), 0, "should accept \"%s\"", in);
    cr_assert_str_eq(host, want_host, "host of \"%s\"", in);
    cr_assert_eq(port, want_port, "port of \"%s\"", in);
}

static void expect_bad(const char *in)
{
    char host[64];
    int port = -7;
    cr_assert_eq(tw_hostport_parse(in, host, sizeof host, &port), -1, "should reject \"%s\"",
                 in ? in : "(null)");
    cr_assert_eq(port, -7, "port untouched on error for \"%s\"", in ? in : "(null)");
}

Test(hostport, accepts_common_forms)
{
    expect_ok("127.0.0.1:50051", "127.0.0.1", 50051);
    expect_ok("[::1]:50052", "::1", 50052);
    expect_ok("localhost:80", "localhost", 80);
    expect_ok(":8080", "", 8080);
    expect_ok("0.0.0.0:0", "0.0.0.0", 0);
    expect_ok("[fe80::1%eth0]:65535", "fe80::1%eth0", 65535);
    expect_ok("db.example.org:00443", "db.example.org", 443);
}

Test(hostport, rejects_bad_ports)
{
    expect_bad("localhost:65536");
    expect_bad("localhost:99999");
    expect_bad("localhost:123456");
    expect_bad("localhost:-1");
    expect_bad("localhost:+80");
    expect_bad("localhost:80x");
    expect_bad("localhost: 80");
    expect_bad("localhost:");
    expect_bad("localhost");
    expect_bad(":");
}

Test(hostport, rejects_malformed_hosts)
{
    expect_bad(NULL);
    expect_bad("");
    expect_bad("::1:80");       /* unbracketed IPv6 */
    expect_bad("[::1]");        /* no port */
    expect_bad("[::1]80");
    expect_bad("[]:80");
    expect_bad("[127.0.0.1]:80"); /* brackets are for IPv6 only */
    expect_bad("[::1:80");
    expect_bad("local host:80");
    expect_bad("host/x:80");
}

Test(hostport, host_must_fit)
{
    char host[5];
    int port = 0;
    cr_assert_eq(tw_hostport_parse("abcd:1", host, sizeof host, &port), 0);
    cr_assert_str_eq(host, "abcd");
    cr_assert_eq(tw_hostport_parse("abcde:1", host, sizeof host, &port), -1);
}

Test(hostport, check_explains)
{
    char why[128] = "";
    cr_assert_eq(tw_hostport_check("127.0.0.1:1", why, sizeof why), 0);
    cr_assert_eq(tw_hostport_check("nope", why, sizeof why), -1);
    cr_assert(strstr(why, "host:port") != NULL, "why: %s", why);
}
