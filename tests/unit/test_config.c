/*
 * test_config.c - unit tests of src/config.c: the defaults, every refused
 * value with a message naming the setting, and the environment's values
 * taking over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char *const settings[] = {
    "MAILSRV_DATABASE_URL",
    "MAILSRV_SOCKET",
    "MAILSRV_SOCKET_GROUP",
    "MAILSRV_JWT_ALG",
    "MAILSRV_JWT_KEY_FILE",
    "MAILSRV_JWT_ISSUER",
    "MAILSRV_JWT_AUDIENCE",
    "MAILSRV_SECRET_KEY_FILE",
    "MAILSRV_PUBLIC_URL",
    "MAILSRV_CONSOLE_URL",
    "MAILSRV_CA_FILE",
    "MAILSRV_OUTBOUND_ALLOW",
    "MAILSRV_OUTBOUND_DENY_PRIVATE",
    "MAILSRV_PROCESSES",
    "MAILSRV_THREADS",
    "MAILSRV_TEST_RATE",
    "MAILSRV_JWT_MAX_TTL",
};

/* Only the three required settings. */
static int minimal(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		unsetenv(settings[i]);
	setenv("MAILSRV_SOCKET", "/run/mailsrv/fcgi.sock", 1);
	setenv("MAILSRV_JWT_KEY_FILE", "/etc/mailsrv/jwt.key", 1);
	setenv("MAILSRV_SECRET_KEY_FILE", "/etc/mailsrv/secret.keys", 1);
	return 0;
}

static char err[512];

static int load(struct config *c)
{
	err[0] = '\0';
	return config_load(c, err, sizeof(err));
}

static void test_defaults(void **state)
{
	(void)state;
	struct config c;
	assert_int_equal(load(&c), 0);
	assert_string_equal(c.database_url, "dbname=mailsrv");
	assert_string_equal(c.socket_path, "/run/mailsrv/fcgi.sock");
	assert_null(c.socket_group);
	assert_string_equal(c.jwt_alg, "HS256");
	assert_null(c.jwt_issuer);
	assert_null(c.jwt_audience);
	assert_string_equal(c.public_url, "http://127.0.0.1:8080");
	assert_string_equal(c.console_url, "http://127.0.0.1:8080/");
	assert_null(c.ca_file);
	assert_null(c.outbound_allow);
	assert_int_equal(c.outbound_deny_private, 0);
	assert_int_equal(c.processes, 2);
	assert_int_equal(c.threads, 4);
	assert_int_equal(c.test_rate, 6);
	assert_int_equal(c.jwt_max_ttl, 86400);
	assert_int_equal(c.outbound.nallow, 0);
	/* An empty variable is no variable. */
	setenv("MAILSRV_PROCESSES", "", 1);
	setenv("MAILSRV_PUBLIC_URL", "", 1);
	assert_int_equal(load(&c), 0);
	assert_int_equal(c.processes, 2);
	assert_string_equal(c.public_url, "http://127.0.0.1:8080");
}

static void test_environment_overrides(void **state)
{
	(void)state;
	setenv("MAILSRV_DATABASE_URL", "postgresql://mailsrv@db/mailsrv", 1);
	setenv("MAILSRV_SOCKET_GROUP", "www-data", 1);
	setenv("MAILSRV_JWT_ALG", "ES256", 1);
	setenv("MAILSRV_JWT_ISSUER", "https://idp.example.com", 1);
	setenv("MAILSRV_JWT_AUDIENCE", "mailsrv", 1);
	setenv("MAILSRV_PUBLIC_URL", "https://console.example.com", 1);
	setenv("MAILSRV_CONSOLE_URL", "https://console.example.com/mail", 1);
	setenv("MAILSRV_CA_FILE", "/dev/null", 1);
	setenv("MAILSRV_OUTBOUND_ALLOW", "127.0.0.1/32,::1", 1);
	setenv("MAILSRV_OUTBOUND_DENY_PRIVATE", "1", 1);
	setenv("MAILSRV_PROCESSES", "64", 1);
	setenv("MAILSRV_THREADS", "1", 1);
	setenv("MAILSRV_TEST_RATE", "10000", 1);
	setenv("MAILSRV_JWT_MAX_TTL", "3600", 1);
	struct config c;
	assert_int_equal(load(&c), 0);
	assert_string_equal(c.database_url, "postgresql://mailsrv@db/mailsrv");
	assert_string_equal(c.socket_group, "www-data");
	assert_string_equal(c.jwt_alg, "ES256");
	assert_string_equal(c.jwt_issuer, "https://idp.example.com");
	assert_string_equal(c.jwt_audience, "mailsrv");
	assert_string_equal(c.public_url, "https://console.example.com");
	assert_string_equal(c.console_url, "https://console.example.com/mail");
	assert_string_equal(c.ca_file, "/dev/null");
	assert_int_equal(c.outbound.nallow, 2);
	assert_int_equal(c.outbound_deny_private, 1);
	assert_int_equal(c.outbound.deny_private, 1);
	assert_int_equal(c.processes, 64);
	assert_int_equal(c.threads, 1);
	assert_int_equal(c.test_rate, 10000);
	assert_int_equal(c.jwt_max_ttl, 3600);
}

/* Each required setting, missing, is named. */
static void test_required(void **state)
{
	(void)state;
	static const char *const required[] = {"MAILSRV_SOCKET", "MAILSRV_JWT_KEY_FILE",
	                                       "MAILSRV_SECRET_KEY_FILE"};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		minimal(NULL);
		unsetenv(required[i]);
		struct config c;
		assert_int_equal(load(&c), -1);
		assert_non_null(strstr(err, required[i]));
		minimal(NULL);
		setenv(required[i], "", 1);
		assert_int_equal(load(&c), -1);
		assert_non_null(strstr(err, required[i]));
	}
}

/* Refused values: the message names the setting (and the range for
 * numbers); never a crash, never a half-filled success. */
static void test_bad_values(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *value;
		const char *says; /* in the message */
	} cases[] = {
	    {"MAILSRV_PROCESSES", "0", "MAILSRV_PROCESSES: must be an integer from 1 to 64"},
	    {"MAILSRV_PROCESSES", "65", "from 1 to 64"},
	    {"MAILSRV_PROCESSES", "-1", "MAILSRV_PROCESSES"},
	    {"MAILSRV_PROCESSES", "2x", "MAILSRV_PROCESSES"},
	    {"MAILSRV_PROCESSES", " 2", "MAILSRV_PROCESSES"},
	    {"MAILSRV_PROCESSES", "+2", "MAILSRV_PROCESSES"},
	    {"MAILSRV_PROCESSES", "99999999999999999999", "MAILSRV_PROCESSES"},
	    {"MAILSRV_THREADS", "0", "MAILSRV_THREADS: must be an integer from 1 to 256"},
	    {"MAILSRV_THREADS", "257", "MAILSRV_THREADS"},
	    {"MAILSRV_THREADS", "four", "MAILSRV_THREADS"},
	    {"MAILSRV_OUTBOUND_DENY_PRIVATE", "2", "MAILSRV_OUTBOUND_DENY_PRIVATE"},
	    {"MAILSRV_OUTBOUND_DENY_PRIVATE", "yes", "MAILSRV_OUTBOUND_DENY_PRIVATE"},
	    {"MAILSRV_TEST_RATE", "0", "MAILSRV_TEST_RATE: must be an integer from 1 to 10000"},
	    {"MAILSRV_TEST_RATE", "10001", "MAILSRV_TEST_RATE"},
	    {"MAILSRV_JWT_MAX_TTL", "59",
	     "MAILSRV_JWT_MAX_TTL: must be an integer from 60 to 31622400"},
	    {"MAILSRV_JWT_MAX_TTL", "31622401", "MAILSRV_JWT_MAX_TTL"},
	    {"MAILSRV_JWT_MAX_TTL", "1d", "MAILSRV_JWT_MAX_TTL"},
	    {"MAILSRV_PUBLIC_URL", "ftp://example.com", "MAILSRV_PUBLIC_URL"},
	    {"MAILSRV_PUBLIC_URL", "example.com", "MAILSRV_PUBLIC_URL"},
	    {"MAILSRV_PUBLIC_URL", "https://example.com/a b", "spaces"},
	    {"MAILSRV_PUBLIC_URL", "https://example.com/\r\nSet-Cookie: x", "spaces"},
	    {"MAILSRV_CONSOLE_URL", "javascript:alert(1)", "MAILSRV_CONSOLE_URL"},
	    {"MAILSRV_CONSOLE_URL", "https://example.com/\tx", "spaces"},
	    {"MAILSRV_CA_FILE", "/nonexistent/ca.pem", "MAILSRV_CA_FILE"},
	    {"MAILSRV_OUTBOUND_ALLOW", "not-an-address", "MAILSRV_OUTBOUND_ALLOW"},
	    {"MAILSRV_OUTBOUND_ALLOW", "10.0.0.0/33", "MAILSRV_OUTBOUND_ALLOW"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		minimal(NULL);
		setenv(cases[i].name, cases[i].value, 1);
		struct config c;
		if (load(&c) != -1)
			fail_msg("%s=%s was accepted", cases[i].name, cases[i].value);
		if (strstr(err, cases[i].says) == NULL)
			fail_msg("%s=%s: \"%s\" does not say \"%s\"", cases[i].name, cases[i].value,
			         err, cases[i].says);
	}
	/* A socket path too long for sun_path. */
	minimal(NULL);
	char path[128];
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	setenv("MAILSRV_SOCKET", path, 1);
	struct config c;
	assert_int_equal(load(&c), -1);
	assert_non_null(strstr(err, "MAILSRV_SOCKET"));
	/* The message fits a small buffer without overflowing it. */
	char small[16];
	assert_int_equal(config_load(&c, small, sizeof(small)), -1);
	assert_true(strlen(small) < sizeof(small));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_defaults, minimal),
	    cmocka_unit_test_setup(test_environment_overrides, minimal),
	    cmocka_unit_test_setup(test_required, minimal),
	    cmocka_unit_test_setup(test_bad_values, minimal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
