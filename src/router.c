/*
 * router.c - the request flow after the FastCGI layer (STYLE.md, 2):
 * match the route -> authenticate -> check the method -> bound and parse
 * the body -> handler -> problem details for any failure. Also the process
 * application (keys, settings) and the per-thread worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_statements.h"
#include "handlers.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "mailsrv_limits.h"
#include "validate.h"

/* What a route's body must be. */
enum body_kind {
	BODY_NONE,        /* any body is ignored */
	BODY_JSON,        /* application/json object */
	BODY_MERGE_PATCH, /* application/merge-patch+json or application/json object */
};

struct method {
	const char *name;
	handler_fn fn;
	enum body_kind body;
};

#define MAX_METHODS 4

struct route {
	const char *path;  /* under /api/v1/, "{id}" matches one segment */
	int public;        /* no bearer token (the OAuth callback) */
	const char *allow; /* the Allow header */
	struct method methods[MAX_METHODS];
};

/* Literal paths before the {id} pattern they would also match. */
static const struct route routes[] = {
    {"mail-servers",
     0,
     "GET, POST",
     {{"GET", ms_handle_list, BODY_NONE}, {"POST", ms_handle_create, BODY_JSON}}},
    {"mail-servers/default", 0, "GET", {{"GET", ms_handle_get_default, BODY_NONE}}},
    {"mail-servers/batch-delete", 0, "POST", {{"POST", ms_handle_batch_delete, BODY_JSON}}},
    {"mail-servers/test", 0, "POST", {{"POST", smtp_handle_test_settings, BODY_JSON}}},
    {"mail-servers/{id}/test", 0, "POST", {{"POST", smtp_handle_test, BODY_JSON}}},
    {"mail-servers/{id}/oauth2/authorize",
     0,
     "POST",
     {{"POST", oauth2_handle_authorize, BODY_NONE}}},
    {"mail-servers/{id}/oauth2/refresh", 0, "POST", {{"POST", oauth2_handle_refresh, BODY_NONE}}},
    {"oauth2/callback", 1, "GET", {{"GET", oauth2_handle_callback, BODY_NONE}}},
    {"mail-servers/{id}",
     0,
     "GET, PUT, PATCH, DELETE",
     {{"GET", ms_handle_get, BODY_NONE},
      {"PUT", ms_handle_replace, BODY_JSON},
      {"PATCH", ms_handle_patch, BODY_MERGE_PATCH},
      {"DELETE", ms_handle_delete, BODY_NONE}}},
};

/* Match path (after "/api/v1/") against a pattern; *id_seg gets the {id}
 * segment. 1 when it matches. */
static int match(const char *pattern, const char *path, const char **id_seg, size_t *id_len)
{
	while (*pattern != '\0') {
		if (strncmp(pattern, "{id}", 4) == 0) {
			size_t n = strcspn(path, "/");
			if (n == 0)
				return 0;
			*id_seg = path;
			*id_len = n;
			path += n;
			pattern += 4;
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	return *path == '\0';
}

static err_t authenticate(struct ctx *c)
{
	const char *h = c->req->authorization;
	if (h == NULL)
		return reject(c, E_UNAUTHORIZED, "a bearer token is required");
	/* RFC 6750 section 2.1: "Bearer" (any case) SP token. */
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return reject(c, E_UNAUTHORIZED,
		              "the Authorization header must use the Bearer scheme");
	const char *tok = h + 7;
	while (*tok == ' ')
		tok++;
	size_t len = strlen(tok);
	while (len > 0 && tok[len - 1] == ' ')
		len--;
	enum jwt_result r = jwt_verify_cached(&c->w->app->jwt, &c->w->jwt_cache, c->arena, tok, len,
	                                      time(NULL), &c->who);
	if (r != JWT_VALID) {
		log_info("bearer token refused: %s", jwt_result_str(r));
		return reject(c, E_UNAUTHORIZED, "the bearer token is invalid or expired");
	}
	if (!c->who.is_administrator)
		return reject(c, E_FORBIDDEN, "the administrator role is required");
	return E_OK;
}

/* Bound and parse the body (STYLE.md, 4): size, then media type, then
 * syntax; the handler only ever sees a JSON object. */
static err_t read_body(struct ctx *c, enum body_kind kind)
{
	const struct http_request *req = c->req;
	if (req->body_too_large)
		return reject(c, E_PAYLOAD_TOO_LARGE,
		              "the request body is larger than 65536 bytes");
	int json = media_type_is(req->content_type, "application/json");
	if (!json && !(kind == BODY_MERGE_PATCH &&
	               media_type_is(req->content_type, "application/merge-patch+json")))
		return reject(
		    c, E_UNSUPPORTED_MEDIA_TYPE,
		    kind == BODY_MERGE_PATCH
		        ? "the body must be application/merge-patch+json or application/json"
		        : "the body must be application/json");
	char msg[96];
	struct json_value *root;
	enum json_status st = json_parse(c->arena, req->body ? req->body : "", req->body_len, &root,
	                                 msg, sizeof(msg));
	if (st == JSON_ERR_NOMEM)
		return reject(c, E_PAYLOAD_TOO_LARGE, "the request body is too large to process");
	if (st != JSON_OK)
		return reject(c, E_BAD_REQUEST, arena_strdup(c->arena, msg));
	if (root->type != JSON_OBJECT)
		return reject(c, E_BAD_REQUEST, "the body must be a JSON object");
	c->body = root;
	return E_OK;
}

static err_t dispatch(struct ctx *c)
{
	const char *path = c->req->path;
	if (strcmp(path, "/healthz") == 0) {
		if (strcmp(c->req->method, "GET") != 0 && strcmp(c->req->method, "HEAD") != 0) {
			c->allow = "GET, HEAD";
			return reject(c, E_METHOD_NOT_ALLOWED, "use GET");
		}
		return health_handle(c);
	}
	static const char prefix[] = "/api/v1/";
	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return reject(c, E_NOT_FOUND, "no such resource");
	path += sizeof(prefix) - 1;

	const struct route *route = NULL;
	const char *id_seg = NULL;
	size_t id_len = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]) && route == NULL; i++)
		if (match(routes[i].path, path, &id_seg, &id_len))
			route = &routes[i];

	/* Everything under /api/v1 but the callback needs the token, even to
	 * learn that a path does not exist. */
	err_t e;
	if ((route == NULL || !route->public) && (e = authenticate(c)) != E_OK)
		return e;
	if (route == NULL)
		return reject(c, E_NOT_FOUND, "no such resource");

	const struct method *m = NULL;
	for (size_t i = 0; i < MAX_METHODS && route->methods[i].name != NULL; i++)
		if (strcmp(route->methods[i].name, c->req->method) == 0)
			m = &route->methods[i];
	if (m == NULL) {
		c->allow = route->allow;
		return reject(c, E_METHOD_NOT_ALLOWED,
		              "this method is not allowed on this resource");
	}
	if (id_seg != NULL && parse_positive_id(id_seg, id_len, &c->id) != 0)
		return reject(c, E_NOT_FOUND, "no mail server has this id");
	if (m->body != BODY_NONE && (e = read_body(c, m->body)) != E_OK)
		return e;
	if ((e = db_ensure(c->w->db)) != E_OK)
		return reject(c, e, "the database is unavailable; retry later");
	return m->fn(c);
}

err_t health_handle(struct ctx *c)
{
	err_t e = db_ensure(c->w->db);
	if (e == E_OK)
		e = db_exec(c->w->db, ST_HEALTH, 0, NULL, NULL, NULL, NULL);
	if (e != E_OK)
		return reject(c, E_DB_UNAVAILABLE, "the database is unavailable");
	json_out_object_open(c->out);
	json_out_key(c->out, "status");
	json_out_cstring(c->out, "ok");
	json_out_object_close(c->out);
	return http_json(c, 200);
}

void app_handle(struct worker *w, const struct http_request *req, struct http_response *resp)
{
	struct ctx c;
	memset(&c, 0, sizeof(c));
	memset(resp, 0, sizeof(*resp));
	c.w = w;
	c.arena = w->arena;
	c.req = req;
	c.resp = resp;
	c.out = w->out;
	json_out_reset(w->out);
	if (req->request_id[0] != '\0')
		http_header(&c, "X-Request-Id", req->request_id);

	err_t e = dispatch(&c);
	if (e != E_OK)
		http_problem(&c, e);
	/* Responses about stored credentials are never cached. */
	http_header(&c, "Cache-Control", "no-store");
}

/* ---- application and worker ---- */

int app_init(struct app *app, char *err, size_t errlen)
{
	memset(app, 0, sizeof(*app));
	if (config_load(&app->cfg, err, errlen) != 0)
		return -1;
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
	app->jwt.leeway_s = 30;
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
