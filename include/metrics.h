/*
 * metrics.h - the service's counters and their Prometheus text rendering
 * (src/metrics.c, the one place that knows their layout).
 *
 * The counters live in one block of shared memory that the master maps
 * (MAP_SHARED | MAP_ANONYMOUS) before it forks its worker processes, so
 * every worker adds to the same numbers: a scrape through any worker sees
 * the whole service, and a worker that dies and is restarted loses nothing.
 * Each update is one relaxed atomic add; nothing on the request path takes
 * a lock. The table has a fixed size: the routes are known at build time
 * (router_routes plus the paths outside /api/v1), the statuses are the ones
 * the service answers (anything else is counted as "other").
 *
 * Before metrics_init (unit tests of other modules, mailsrv-tool) every
 * update is a no-op and the rendering is empty.
 */
#ifndef MAILSRV_METRICS_H
#define MAILSRV_METRICS_H

#include <stddef.h>

#include "err.h"

struct ctx;

/* The service's version, for mailsrv_build_info (the API's version in
 * openapi/openapi.yaml). */
#define MAILSRV_VERSION "1.0.0"

enum metrics_outbound_kind {
	METRICS_OAUTH2_TOKEN, /* a call to a provider's token endpoint */
	METRICS_SMTP_TEST,    /* an SMTP session of a connection test */
	METRICS_OUTBOUND__COUNT
};

enum metrics_outcome { METRICS_SUCCESS, METRICS_FAILURE, METRICS_OUTCOME__COUNT };

/* Map the shared block, once, in the master before any fork. 0 on
 * success, -1 when mmap failed or the route table does not fit. */
int metrics_init(void);
/* Unmap it (tests). */
void metrics_free(void);

/* The worker process's slot (0..MAILSRV_PROCESSES-1), set in the child
 * right after fork: its busy threads are counted there (a process that
 * died in the slot before is forgotten: its gauge starts at 0 again). */
void metrics_set_slot(int slot);

/* One request served: its route template (NULL: none matched, counted as
 * "other"), status and duration in seconds. */
void metrics_request(const char *route_template, int status, double seconds);

/* A worker thread took a request (+1) or finished it (-1). */
void metrics_thread_busy(int delta);

/* This worker process accepted (+1) or closed (-1) a FastCGI connection. */
void metrics_connections(int delta);

/* Whether another worker process that has started holds at least `by`
 * FastCGI connections fewer than this one and has one of its `threads`
 * threads free: a new connection is better left to it, and (by 2) a kept
 * one better closed (src/fcgi_server.c, next_connection and serve_thread). */
int metrics_other_process_lighter(int threads, int by);

/* The master started a new worker process after one ended. */
void metrics_worker_restarted(void);

/* A database statement or connection attempt failed, with its cause (enum
 * db_cause, include/db.h). */
void metrics_db_error(int cause);
/* A worker thread connected to the database again after having had a
 * connection. */
void metrics_db_reconnect(void);
/* A read-only statement ran again on a new connection after the old one
 * was lost under it (db_exec). */
void metrics_db_read_rerun(void);

/* One outbound call finished. */
void metrics_outbound(enum metrics_outbound_kind kind, enum metrics_outcome outcome);

/* The text format (version 0.0.4) of every series into buf: the bytes
 * written, or (size_t)-1 when cap is too small (the text is then
 * incomplete). */
size_t metrics_render(char *buf, size_t cap);

/* GET /metrics (no token; nginx admits only the allowed addresses). */
err_t metrics_handle(struct ctx *c);

/* The media type of GET /metrics (Prometheus' text exposition format). */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
