/*
 * log.h - log lines on stderr in PostgreSQL's message style, each with the
 * process, and the request id of the thread's current request. Never pass a
 * secret, a token, a request body or a query string to these.
 */
#ifndef MAILSRV_LOG_H
#define MAILSRV_LOG_H

/* The request id the calling thread is serving ("" between requests). */
void log_set_request_id(const char *id);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
