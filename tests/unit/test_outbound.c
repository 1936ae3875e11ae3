/*
 * test_outbound.c - unit tests of src/outbound.c: the allow-list parser, the
 * address policy on every spelling of loopback, link-local, unspecified,
 * shared, multicast, reserved, site-local, cloud metadata and private
 * addresses (as the sockaddr that libcurl hands to the open-socket
 * callback), the save-time check of URLs, and calls that the policy or the
 * protocol rule stops before any byte leaves the machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "arena.h"
#include "json.h"
#include "outbound.h"

static struct outbound_policy policy(const char *allow, int deny_private)
{
	struct outbound_policy p;
	char err[160];
	assert_int_equal(outbound_policy_init(&p, allow, deny_private, err, sizeof(err)), 0);
	return p;
}

/* The verdict for a textual address, through a real sockaddr. */
static const char *verdict(const struct outbound_policy *p, const char *addr)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, addr, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		s4.sin_port = htons(443);
		return outbound_check_addr(p, (struct sockaddr *)&s4, sizeof(s4));
	}
	if (inet_pton(AF_INET6, addr, &s6.sin6_addr) == 1) {
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons(443);
		return outbound_check_addr(p, (struct sockaddr *)&s6, sizeof(s6));
	}
	fail_msg("bad test address %s", addr);
	return NULL;
}

struct addr_case {
	const char *addr;
	const char *want; /* NULL: admitted */
};

static void check_table(const struct outbound_policy *p, const struct addr_case *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *got = verdict(p, t[i].addr);
		if ((got == NULL) != (t[i].want == NULL) ||
		    (got != NULL && strcmp(got, t[i].want) != 0))
			fail_msg("%s: got %s, want %s", t[i].addr, got ? got : "(admitted)",
			         t[i].want ? t[i].want : "(admitted)");
	}
}

static void test_default_policy(void **state)
{
	(void)state;
	struct outbound_policy p = policy(NULL, 0);
	static const struct addr_case t[] = {
	    {"127.0.0.1", "loopback"},
	    {"127.0.0.2", "loopback"},
	    {"127.255.255.255", "loopback"},
	    {"::1", "loopback"},
	    {"0:0:0:0:0:0:0:1", "loopback"},
	    {"::ffff:127.0.0.1", "loopback"},
	    {"::ffff:7f00:2", "loopback"},
	    {"::127.0.0.1", "loopback"},     /* IPv4-compatible */
	    {"64:ff9b::7f00:1", "loopback"}, /* NAT64 */
	    {"169.254.169.254", "link-local"},
	    {"169.254.0.0", "link-local"},
	    {"169.254.255.255", "link-local"},
	    {"::ffff:169.254.169.254", "link-local"},
	    {"64:ff9b::a9fe:a9fe", "link-local"},
	    {"fe80::1", "link-local"},
	    {"febf:ffff::1", "link-local"},
	    {"0.0.0.0", "unspecified"},
	    {"0.1.2.3", "unspecified"},
	    {"::", "unspecified"},
	    {"::ffff:0.0.0.0", "unspecified"},
	    /* admitted */
	    {"8.8.8.8", NULL},
	    {"1.0.0.0", NULL},
	    {"126.255.255.255", NULL},
	    {"128.0.0.1", NULL},
	    {"169.253.255.255", NULL},
	    {"169.255.0.0", NULL},
	    {"10.0.0.1", NULL},
	    {"172.16.0.1", NULL},
	    {"192.168.1.1", NULL},
	    {"fc00::1", NULL},
	    {"fd12:3456::1", NULL},
	    {"2001:db8::1", NULL},
	    {"::ffff:8.8.8.8", NULL},
	    {"::2", "unspecified"}, /* IPv4-compatible 0.0.0.2, deprecated */
	};
	check_table(&p, t, sizeof(t) / sizeof(t[0]));
}

/* The ranges that are neither private nor loopback but never a token
 * endpoint or mail server: each, its edges, and its IPv4-mapped form. */
static void test_special_ranges(void **state)
{
	(void)state;
	static const struct addr_case t[] = {
	    /* shared address space 100.64/10 (RFC 6598) */
	    {"100.64.0.0", "shared address space"},
	    {"100.64.0.1", "shared address space"},
	    {"100.127.255.255", "shared address space"},
	    {"::ffff:100.64.0.1", "shared address space"},
	    {"::ffff:100.127.255.255", "shared address space"},
	    {"64:ff9b::6440:1", "shared address space"}, /* NAT64 */
	    {"100.63.255.255", NULL},
	    {"100.128.0.0", NULL},
	    /* multicast 224/4 and ff00::/8 */
	    {"224.0.0.0", "multicast"},
	    {"224.0.0.251", "multicast"},
	    {"239.255.255.255", "multicast"},
	    {"::ffff:224.0.0.1", "multicast"},
	    {"::ffff:239.255.255.255", "multicast"},
	    {"223.255.255.255", NULL},
	    {"fe7f:ffff::1", NULL}, /* below link-local fe80::/10 */
	    {"ff00::", "multicast"},
	    {"ff02::1", "multicast"},
	    {"ff0e::101", "multicast"},
	    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
	    /* reserved 240/4 and broadcast */
	    {"240.0.0.0", "reserved"},
	    {"250.1.2.3", "reserved"},
	    {"255.255.255.254", "reserved"},
	    {"::ffff:240.0.0.1", "reserved"},
	    {"::ffff:255.255.255.254", "reserved"},
	    {"255.255.255.255", "broadcast"},
	    {"::ffff:255.255.255.255", "broadcast"},
	    /* site-local fec0::/10 */
	    {"fec0::", "site-local"},
	    {"fec0::1", "site-local"},
	    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local"},
	    {"febf:ffff::1", "link-local"},
	    /* cloud metadata that is not link-local */
	    {"100.100.100.200", "cloud metadata"},
	    {"::ffff:100.100.100.200", "cloud metadata"},
	    {"::ffff:6464:64c8", "cloud metadata"},
	    {"64:ff9b::6464:64c8", "cloud metadata"},
	    {"fd00:ec2::254", "cloud metadata"},
	    {"fd00:ec2:0:0:0:0:0:254", "cloud metadata"},
	    {"100.100.100.201", "shared address space"},
	    {"fd00:ec2::253", NULL}, /* private: admitted unless denied */
	    {"fd00:ec2::1:254", NULL},
	};
	struct outbound_policy p = policy(NULL, 0);
	check_table(&p, t, sizeof(t) / sizeof(t[0]));
	/* refused whether private addresses are or not */
	struct outbound_policy dp = policy(NULL, 1);
	assert_string_equal(verdict(&dp, "fd00:ec2::254"), "cloud metadata");
	assert_string_equal(verdict(&dp, "fd00:ec2::253"), "private");
	assert_string_equal(verdict(&dp, "100.64.0.1"), "shared address space");
	/* the allow-list still admits them, in either spelling */
	struct outbound_policy ap = policy("100.64.0.0/10,ff02::1/128,::ffff:240.0.0.1/128", 0);
	assert_null(verdict(&ap, "100.100.100.200"));
	assert_null(verdict(&ap, "::ffff:100.65.0.1"));
	assert_null(verdict(&ap, "ff02::1"));
	assert_string_equal(verdict(&ap, "ff02::2"), "multicast");
	assert_null(verdict(&ap, "240.0.0.1"));
	assert_string_equal(verdict(&ap, "240.0.0.2"), "reserved");
	/* the save-time check of a URL with such a literal host */
	static const struct {
		const char *url, *want;
	} u[] = {
	    {"https://100.64.0.1/token", "shared address space"},
	    {"https://100.100.100.200/latest/meta-data", "cloud metadata"},
	    {"https://[fd00:ec2::254]/latest/api/token", "cloud metadata"},
	    {"https://[::ffff:224.0.0.1]/t", "multicast"},
	    {"https://[ff02::1]:8443/t", "multicast"},
	    {"https://255.255.255.255/t", "broadcast"},
	    {"https://240.0.0.1/t", "reserved"},
	    {"https://[fec0::1]/t", "site-local"},
	    {"https://1684301000/t", "cloud metadata"}, /* 100.100.100.200 as one number */
	};
	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		const char *got = outbound_url_refused(&p, u[i].url, strlen(u[i].url));
		if (got == NULL || strcmp(got, u[i].want) != 0)
			fail_msg("%s: got %s, want %s", u[i].url, got ? got : "(admitted)",
			         u[i].want);
	}
}

static void test_deny_private(void **state)
{
	(void)state;
	struct outbound_policy p = policy(NULL, 1);
	static const struct addr_case t[] = {
	    {"10.0.0.1", "private"},    {"10.255.255.255", "private"},
	    {"172.16.0.1", "private"},  {"172.31.255.255", "private"},
	    {"192.168.0.1", "private"}, {"::ffff:10.1.2.3", "private"},
	    {"fc00::1", "private"},     {"fdff:ffff::1", "private"},
	    {"127.0.0.1", "loopback"},  {"172.15.255.255", NULL},
	    {"172.32.0.0", NULL},       {"192.169.0.1", NULL},
	    {"11.0.0.1", NULL},         {"fe00::1", NULL},
	    {"2001:db8::1", NULL},
	};
	check_table(&p, t, sizeof(t) / sizeof(t[0]));
}

static void test_allow_list(void **state)
{
	(void)state;
	struct outbound_policy p = policy(" 127.0.0.1/32 ,::1, 169.254.0.0/16,10.1.2.3", 1);
	assert_int_equal(p.nallow, 4);
	static const struct addr_case t[] = {
	    {"127.0.0.1", NULL},        {"::ffff:127.0.0.1", NULL}, /* the same destination */
	    {"127.0.0.2", "loopback"},  {"::1", NULL},
	    {"169.254.169.254", NULL},  {"fe80::1", "link-local"},
	    {"0.0.0.0", "unspecified"}, {"10.1.2.3", NULL},
	    {"10.1.2.4", "private"},
	};
	check_table(&p, t, sizeof(t) / sizeof(t[0]));

	/* Host bits are ignored: 127.0.0.1/8 is 127.0.0.0/8. */
	p = policy("127.0.0.1/8", 0);
	assert_null(verdict(&p, "127.9.9.9"));
	assert_string_equal(verdict(&p, "::1"), "loopback");
	/* Odd prefixes. */
	p = policy("169.254.169.254/31", 0);
	assert_null(verdict(&p, "169.254.169.255"));
	assert_string_equal(verdict(&p, "169.254.169.253"), "link-local");
	p = policy("fe80::/9", 0);
	assert_null(verdict(&p, "febf::1"));
	p = policy("0.0.0.0/0", 0);
	assert_null(verdict(&p, "127.0.0.1"));
	assert_string_equal(verdict(&p, "::1"), "loopback");
	p = policy("::/0", 0);
	assert_null(verdict(&p, "::1"));
	assert_null(verdict(&p, "127.0.0.1"));
	p = policy("", 0);
	assert_int_equal(p.nallow, 0);
	p = policy(" , ,", 0);
	assert_int_equal(p.nallow, 0);
}

static void test_allow_list_errors(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "127.0.0.1/33", "::1/129",      "localhost",          "127.0.0.1/",  "127.0.0.1/x",
	    "127.1",        "2130706433",   "0x7f.0.0.1",         "1.2.3.4/-1",  "1.2.3.4/08x",
	    "[::1]",        "fe80::1%eth0", "127.0.0.1 10.0.0.1", "1.2.3.4/1/2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct outbound_policy p;
		char err[160] = "";
		if (outbound_policy_init(&p, bad[i], 0, err, sizeof(err)) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_non_null(strstr(err, "MAILSRV_OUTBOUND_ALLOW"));
	}
	char many[OUTBOUND_ALLOW_MAX * 16 + 16] = "";
	for (int i = 0; i <= OUTBOUND_ALLOW_MAX; i++)
		sprintf(many + strlen(many), "%s10.0.0.%d", i ? "," : "", i);
	struct outbound_policy p;
	char err[160];
	assert_int_equal(outbound_policy_init(&p, many, 0, err, sizeof(err)), -1);
}

static void test_other_families(void **state)
{
	(void)state;
	struct outbound_policy p = policy("0.0.0.0/0,::/0", 0);
	struct sockaddr_un un;
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	assert_non_null(outbound_check_addr(&p, (struct sockaddr *)&un, sizeof(un)));
	/* A truncated sockaddr is refused. */
	struct sockaddr_in s4;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	assert_non_null(outbound_check_addr(&p, (struct sockaddr *)&s4, 4));
}

static void test_url_refused(void **state)
{
	(void)state;
	struct outbound_policy p = policy(NULL, 0);
	static const struct {
		const char *url;
		const char *want;
	} t[] = {
	    {"https://127.0.0.1/token", "loopback"},
	    {"https://127.0.0.2:8443/token", "loopback"},
	    {"HTTPS://127.0.0.1/", "loopback"},
	    {"https://2130706433/", "loopback"}, /* what curl normalizes */
	    {"https://0x7f.1/", "loopback"},
	    {"https://0177.0.0.1/", "loopback"},
	    {"https://127.1", "loopback"},
	    {"https://[::1]/", "loopback"},
	    {"https://[::1]:443/x?y#z", "loopback"},
	    {"https://[::ffff:127.0.0.1]/", "loopback"},
	    {"https://169.254.169.254?x=1", "link-local"},
	    {"https://[fe80::1]/", "link-local"},
	    {"https://0.0.0.0/", "unspecified"},
	    {"https://0/", "unspecified"},
	    {"https://[::]/", "unspecified"},
	    {"https://login.example.com/", NULL},
	    {"https://localhost/", NULL}, /* a name: checked at call time */
	    {"https://8.8.8.8/", NULL},
	    {"https://[2001:db8::1]/", NULL},
	    /* The host as libcurl's URL parser reads it, zone id apart,
	     * escapes decoded. */
	    {"https://[fe80::1%25eth0]/", "link-local"},
	    {"https://%31%32%37.0.0.1/", "loopback"},
	    {"https://[::ffff:7f00:1]/", "loopback"},
	    {"https://127.0.0.1:0443/", "loopback"},
	    {"https://ex%61mple.com/", NULL},
	    {"https://a@127.0.0.1/", "loopback"},
	    {"https:/127.0.0.1/", "loopback"},
	    {"http://127.0.0.1/", NULL}, /* not https: validation refuses it */
	    {"https://", NULL},
	    {"https://[::1/", NULL},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *got = outbound_url_refused(&p, t[i].url, strlen(t[i].url));
		if ((got == NULL) != (t[i].want == NULL) ||
		    (got != NULL && strcmp(got, t[i].want) != 0))
			fail_msg("%s: got %s, want %s", t[i].url, got ? got : "(admitted)",
			         t[i].want ? t[i].want : "(admitted)");
	}
	p = policy("127.0.0.1/32", 0);
	assert_null(outbound_url_refused(&p, "https://127.0.0.1:9/", 20));
	assert_string_equal(outbound_url_refused(&p, "https://127.0.0.2/", 18), "loopback");
	/* Only len bytes are looked at. */
	assert_null(outbound_url_refused(&p, "https://127.0.0.2/", 8));
	assert_string_equal(outbound_url_refused(&p, "https://127.0.0.2/", 17), "loopback");
}

/* Calls that never leave the machine: refused before a connection. */
static void test_refused_calls(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 20);
	struct outbound_policy p = policy(NULL, 0);
	static const struct {
		const char *url;
		err_t want;
		const char *code;
	} t[] = {
	    {"https://127.0.0.1:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"https://2130706433:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"https://0x7f.1:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"https://[::1]:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"https://[::ffff:127.0.0.1]:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"https://169.254.169.254:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"https://0.0.0.0:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"https://localhost:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"http://127.0.0.1:1/token", E_DESTINATION_REFUSED, "destination_refused"},
	    {"file:///etc/passwd", E_DESTINATION_REFUSED, "destination_refused"},
	    {"gopher://127.0.0.1:1/", E_DESTINATION_REFUSED, "destination_refused"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct outbound_request rq = {t[i].url, "a=b", 3, NULL, &p};
		struct outbound_result res;
		struct json_value *root = (struct json_value *)1;
		err_t e = outbound_post_form_json(a, &rq, &root, &res);
		if (e != t[i].want || res.code == NULL || strcmp(res.code, t[i].code) != 0)
			fail_msg("%s: got %d %s", t[i].url, e, res.code ? res.code : "(null)");
		assert_null(root);
		assert_non_null(res.reason);
		arena_reset(a);
	}
	/* Admitted, but nothing listens on port 1: unreachable, not refused. */
	p = policy("127.0.0.1/32", 0);
	struct outbound_request rq = {"https://127.0.0.1:1/token", "a=b", 3, NULL, &p};
	struct outbound_result res;
	struct json_value *root;
	assert_int_equal(outbound_post_form_json(a, &rq, &root, &res), E_UPSTREAM_UNREACHABLE);
	assert_string_equal(res.code, "unreachable");
	arena_free(a);
}

int main(void)
{
	if (outbound_global_init() != 0)
		return 1;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_policy),    cmocka_unit_test(test_special_ranges),
	    cmocka_unit_test(test_deny_private),      cmocka_unit_test(test_allow_list),
	    cmocka_unit_test(test_allow_list_errors), cmocka_unit_test(test_other_families),
	    cmocka_unit_test(test_url_refused),       cmocka_unit_test(test_refused_calls),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
