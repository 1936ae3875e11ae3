/*
 * app.h - the process-wide application (configuration and keys, read-only
 * once workers start) and the per-thread worker (its arena, JSON writer,
 * database connection and token cache: nothing mutable is shared between
 * threads).
 */
#ifndef MAILSRV_APP_H
#define MAILSRV_APP_H

#include <stddef.h>

#include "config.h"
#include "err.h"
#include "jwt.h"

struct arena;
struct db;
struct http_request;
struct http_response;
struct json_out;
struct secret_keyring;
struct sig_key;

struct app {
	struct config cfg;
	struct sig_key *jwt_key;
	struct jwt_policy jwt;
	struct secret_keyring *keyring;
};

struct worker {
	const struct app *app;
	struct arena *arena;
	struct json_out *out;
	struct db *db;
	struct jwt_cache jwt_cache; /* bearer tokens this thread verified lately */
};

/* Load configuration and keys; -1 with a message in err. The two halves
 * apart, for the master, which opens its socket and leaves root in between
 * (src/main.c): app_load_settings fills app->cfg, app_load_keys reads the
 * key files. */
int app_init(struct app *app, char *err, size_t errlen);
int app_load_settings(struct app *app, char *err, size_t errlen);
int app_load_keys(struct app *app, char *err, size_t errlen);
void app_free(struct app *app);

int worker_init(struct worker *w, const struct app *app);
void worker_free(struct worker *w);

/* Serve one request: route, authenticate, validate, handle, and always
 * leave a complete response in resp (strings in the worker's arena). */
void app_handle(struct worker *w, const struct http_request *req, struct http_response *resp);
/* Answer with the problem e before routing (a request that could not be
 * read: req may be partly filled), like every other problem. Needs nothing
 * from the arena. */
void app_reject(struct worker *w, const struct http_request *req, struct http_response *resp,
                err_t e, const char *detail);

#endif
