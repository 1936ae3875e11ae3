/*
 * config.c - read the MAILSRV_* settings (see config.h). Pointers point into
 * the process environment, which nothing modifies after start.
 */
#include "config.h"

#include "mailsrv_limits.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return (v != NULL && v[0] != '\0') ? v : fallback;
}

static int env_int(const char *name, int fallback, int min, int max, int *out, char *err,
                   size_t errlen)
{
	const char *v = env_or(name, NULL);
	if (v == NULL) {
		*out = fallback;
		return 0;
	}
	/* Plain decimal digits: strtol alone would take " 2" and "+2". */
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || errno != 0 || *end != '\0' || n < min || n > max) {
		snprintf(err, errlen, "invalid value for %s: must be an integer from %d to %d",
		         name, min, max);
		return -1;
	}
	*out = (int)n;
	return 0;
}

static int require(const char *name, const char *value, char *err, size_t errlen)
{
	if (value == NULL) {
		snprintf(err, errlen, "%s is not set", name);
		return -1;
	}
	return 0;
}

int config_audit_retention_days(int *days, char *err, size_t errlen)
{
	return env_int("MAILSRV_AUDIT_RETENTION_DAYS", AUDIT_RETENTION_DAYS_DEFAULT, 1,
	               AUDIT_RETENTION_DAYS_MAX, days, err, errlen);
}

int config_load(struct config *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->database_url = env_or("MAILSRV_DATABASE_URL", "dbname=mailsrv");
	c->socket_path = env_or("MAILSRV_SOCKET", NULL);
	c->socket_group = env_or("MAILSRV_SOCKET_GROUP", NULL);
	c->jwt_alg = env_or("MAILSRV_JWT_ALG", "HS256");
	c->jwt_key_file = env_or("MAILSRV_JWT_KEY_FILE", NULL);
	c->jwt_issuer = env_or("MAILSRV_JWT_ISSUER", NULL);
	c->jwt_audience = env_or("MAILSRV_JWT_AUDIENCE", NULL);
	c->secret_key_file = env_or("MAILSRV_SECRET_KEY_FILE", NULL);
	c->public_url = env_or("MAILSRV_PUBLIC_URL", "http://127.0.0.1:8080");
	c->console_url = env_or("MAILSRV_CONSOLE_URL", "http://127.0.0.1:8080/");
	c->ca_file = env_or("MAILSRV_CA_FILE", NULL);
	c->outbound_allow = env_or("MAILSRV_OUTBOUND_ALLOW", NULL);

	if (require("MAILSRV_SOCKET", c->socket_path, err, errlen) != 0 ||
	    require("MAILSRV_JWT_KEY_FILE", c->jwt_key_file, err, errlen) != 0 ||
	    require("MAILSRV_SECRET_KEY_FILE", c->secret_key_file, err, errlen) != 0)
		return -1;
	if (strlen(c->socket_path) >= 100) {
		snprintf(err, errlen, "MAILSRV_SOCKET is too long for a unix socket path");
		return -1;
	}
	if (env_int("MAILSRV_PROCESSES", 2, 1, 64, &c->processes, err, errlen) != 0 ||
	    env_int("MAILSRV_THREADS", 4, 1, 256, &c->threads, err, errlen) != 0 ||
	    env_int("MAILSRV_OUTBOUND_DENY_PRIVATE", 0, 0, 1, &c->outbound_deny_private, err,
	            errlen) != 0 ||
	    env_int("MAILSRV_JWT_MAX_TTL", JWT_MAX_TTL_DEFAULT_S, JWT_MAX_TTL_MIN_S,
	            JWT_MAX_TTL_MAX_S, &c->jwt_max_ttl, err, errlen) != 0 ||
	    env_int("MAILSRV_TEST_RATE", 6, 1, 10000, &c->test_rate, err, errlen) != 0 ||
	    env_int("MAILSRV_TEST_CONNECT_TIMEOUT", 10, 1, SMTP_TEST_TIMEOUT_MAX_S,
	            &c->test_connect_timeout, err, errlen) != 0 ||
	    env_int("MAILSRV_TEST_TIMEOUT", 30, 1, SMTP_TEST_TIMEOUT_MAX_S, &c->test_timeout, err,
	            errlen) != 0 ||
	    config_audit_retention_days(&c->audit_retention_days, err, errlen) != 0)
		return -1;
	const char *log_format = env_or("MAILSRV_LOG_FORMAT", "text");
	if (strcmp(log_format, "text") != 0 && strcmp(log_format, "json") != 0) {
		snprintf(err, errlen, "MAILSRV_LOG_FORMAT must be text or json");
		return -1;
	}
	c->log_json = strcmp(log_format, "json") == 0;
	if (strncmp(c->public_url, "http://", 7) != 0 &&
	    strncmp(c->public_url, "https://", 8) != 0) {
		snprintf(err, errlen, "MAILSRV_PUBLIC_URL must be an http or https URL");
		return -1;
	}
	/* The OAuth callback sends the browser there, and the redirect URI is
	 * built from the public URL: both end up in a Location header. */
	if (strncmp(c->console_url, "http://", 7) != 0 &&
	    strncmp(c->console_url, "https://", 8) != 0) {
		snprintf(err, errlen, "MAILSRV_CONSOLE_URL must be an http or https URL");
		return -1;
	}
	if (strpbrk(c->public_url, " \t\r\n") != NULL ||
	    strpbrk(c->console_url, " \t\r\n") != NULL) {
		snprintf(err, errlen,
		         "MAILSRV_PUBLIC_URL and MAILSRV_CONSOLE_URL must not hold spaces");
		return -1;
	}
	if (outbound_policy_init(&c->outbound, c->outbound_allow, c->outbound_deny_private, err,
	                         errlen) != 0)
		return -1;
	/* Read on every outbound call: fail now rather than on the first one. */
	if (c->ca_file != NULL && access(c->ca_file, R_OK) != 0) {
		snprintf(err, errlen, "MAILSRV_CA_FILE \"%s\" cannot be read", c->ca_file);
		return -1;
	}
	return 0;
}
