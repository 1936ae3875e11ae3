/*
 * config.h - settings from MAILSRV_* environment variables (docs/api.md,
 * "Settings"), read and checked once in the master process before any worker
 * starts; read-only afterwards.
 */
#ifndef MAILSRV_CONFIG_H
#define MAILSRV_CONFIG_H

#include <stddef.h>

#include "outbound.h"

struct config {
	const char *database_url;        /* MAILSRV_DATABASE_URL, libpq conninfo or URI */
	const char *socket_path;         /* MAILSRV_SOCKET */
	const char *socket_group;        /* MAILSRV_SOCKET_GROUP, NULL: keep ours */
	int processes;                   /* MAILSRV_PROCESSES, 1-64 */
	int threads;                     /* MAILSRV_THREADS per process, 1-256 */
	const char *jwt_alg;             /* MAILSRV_JWT_ALG: HS256, RS256, ES256 */
	const char *jwt_key_file;        /* MAILSRV_JWT_KEY_FILE */
	const char *jwt_issuer;          /* MAILSRV_JWT_ISSUER or NULL */
	const char *jwt_audience;        /* MAILSRV_JWT_AUDIENCE or NULL */
	int jwt_max_ttl;                 /* MAILSRV_JWT_MAX_TTL seconds */
	const char *secret_key_file;     /* MAILSRV_SECRET_KEY_FILE */
	const char *public_url;          /* MAILSRV_PUBLIC_URL */
	const char *console_url;         /* MAILSRV_CONSOLE_URL */
	const char *ca_file;             /* MAILSRV_CA_FILE or NULL */
	const char *outbound_allow;      /* MAILSRV_OUTBOUND_ALLOW or NULL */
	int outbound_deny_private;       /* MAILSRV_OUTBOUND_DENY_PRIVATE */
	int test_rate;                   /* MAILSRV_TEST_RATE per minute */
	int test_connect_timeout;        /* MAILSRV_TEST_CONNECT_TIMEOUT seconds */
	int test_timeout;                /* MAILSRV_TEST_TIMEOUT seconds */
	int log_json;                    /* MAILSRV_LOG_FORMAT: 0 text, 1 json */
	struct outbound_policy outbound; /* parsed MAILSRV_OUTBOUND_ALLOW and _DENY_PRIVATE */
	int audit_retention_days;        /* MAILSRV_AUDIT_RETENTION_DAYS (365) */
};

/* Fill c from the environment. -1 with a message in err when a setting is
 * missing or malformed. */
int config_load(struct config *c, char *err, size_t errlen);

/* MAILSRV_AUDIT_RETENTION_DAYS alone (1-AUDIT_RETENTION_DAYS_MAX, default
 * AUDIT_RETENTION_DAYS_DEFAULT): how long audit events are kept, for
 * `mailsrv-tool audit-prune`, which needs none of the other settings. */
int config_audit_retention_days(int *days, char *err, size_t errlen);

#endif
