/*
 * app.c - the process-wide application (settings and keys, loaded once and
 * read-only while workers run), the per-thread worker (arena, JSON writer,
 * database connection, token cache), and the entry of every request.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "http.h"
#include "json.h"
#include "mailsrv_limits.h"
#include "router.h"

/* The request's context, with the headers every answer carries first. */
static void begin(struct ctx *c, struct worker *w, const struct http_request *req,
                  struct http_response *resp)
{
	memset(c, 0, sizeof(*c));
	memset(resp, 0, sizeof(*resp));
	c->w = w;
	c->arena = w->arena;
	c->req = req;
	c->resp = resp;
	c->out = w->out;
	json_out_reset(w->out);
	if (req->request_id[0] != '\0')
		http_header(c, "X-Request-Id", req->request_id);
}

/* Responses about stored credentials are never cached. */
static void end(struct ctx *c)
{
	http_header(c, "Cache-Control", "no-store");
}

void app_handle(struct worker *w, const struct http_request *req, struct http_response *resp)
{
	struct ctx c;
	begin(&c, w, req, resp);
	err_t e = router_dispatch(&c);
	if (e != E_OK)
		http_problem(&c, e);
	end(&c);
	resp->route = c.route_template;
}

void app_reject(struct worker *w, const struct http_request *req, struct http_response *resp,
                err_t e, const char *detail)
{
	struct http_request r = *req;
	if (r.request_id == NULL)
		r.request_id = "";
	struct ctx c;
	begin(&c, w, &r, resp);
	http_problem(&c, http_reject(&c, e, detail));
	end(&c);
}

int app_init(struct app *app, char *err, size_t errlen)
{
	if (app_load_settings(app, err, errlen) != 0)
		return -1;
	return app_load_keys(app, err, errlen);
}

int app_load_settings(struct app *app, char *err, size_t errlen)
{
	memset(app, 0, sizeof(*app));
	return config_load(&app->cfg, err, errlen);
}

int app_load_keys(struct app *app, char *err, size_t errlen)
{
	/* Checked again: the settings may have been read by root (src/main.c) */
	if (app->cfg.ca_file != NULL && access(app->cfg.ca_file, R_OK) != 0) {
		snprintf(err, errlen, "MAILSRV_CA_FILE \"%s\" is not readable by uid %u: %s",
		         app->cfg.ca_file, (unsigned)geteuid(), strerror(errno));
		return -1;
	}
	enum sig_alg alg;
	if (sig_alg_from_name(app->cfg.jwt_alg, &alg) != 0) {
		snprintf(err, errlen, "MAILSRV_JWT_ALG must be HS256, RS256 or ES256");
		return -1;
	}
	if (sig_key_load(alg, app->cfg.jwt_key_file, 0, &app->jwt_key, err, errlen) != 0)
		return -1;
	if (secret_keyring_load(app->cfg.secret_key_file, &app->keyring, err, errlen) != 0) {
		app_free(app);
		return -1;
	}
	app->jwt.key = app->jwt_key;
	app->jwt.issuer = app->cfg.jwt_issuer;
	app->jwt.audience = app->cfg.jwt_audience;
	app->jwt.leeway_s = JWT_LEEWAY_S;
	app->jwt.max_ttl_s = app->cfg.jwt_max_ttl;
	return 0;
}

void app_free(struct app *app)
{
	sig_key_free(app->jwt_key);
	secret_keyring_free(app->keyring);
	app->jwt_key = NULL;
	app->keyring = NULL;
}

int worker_init(struct worker *w, const struct app *app)
{
	memset(w, 0, sizeof(*w));
	w->app = app;
	w->arena = arena_new(MAX_ARENA_BYTES);
	w->out = json_out_new();
	w->db = db_new(app->cfg.database_url);
	if (w->arena == NULL || w->out == NULL || w->db == NULL) {
		worker_free(w);
		return -1;
	}
	return 0;
}

void worker_free(struct worker *w)
{
	jwt_cache_clear(&w->jwt_cache);
	arena_free(w->arena);
	json_out_free(w->out);
	db_free(w->db);
	memset(w, 0, sizeof(*w));
}
