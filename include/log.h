/*
 * log.h - log lines on stderr in PostgreSQL's message style, each with the
 * process, and the request id of the thread's current request; or, with
 * MAILSRV_LOG_FORMAT=json, the same as one JSON object per line (time, pid,
 * level, request_id, message; the request line's fields instead of a text
 * message). Never pass a secret, a token, a request body or a query string
 * to these.
 */
#ifndef MAILSRV_LOG_H
#define MAILSRV_LOG_H

#include "mailsrv_limits.h"

/* The request id the calling thread is serving ("" between requests). */
void log_set_request_id(const char *id);

/* 1: every line from now on is a JSON object (MAILSRV_LOG_FORMAT=json). */
void log_set_json(int on);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The one line per request, at info level. The method and actor are
 * cleaned (see LOG_ACTOR_MAX_BYTES); route is the matched route's template,
 * NULL when none matched (never the raw path). */
struct log_request {
	const char *method;
	const char *route;
	int status;
	long long duration_us; /* from the request's start to its answer */
	long long db_us;       /* of it, waiting for the database */
	const char *actor;     /* the token's sub; NULL or "" when none */
};
void log_request(const struct log_request *r);

#endif
