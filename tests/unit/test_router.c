/*
 * test_router.c - unit tests of src/router.c up to the handler call
 * (router_resolve: no database, no network): the route table against the
 * paths it must and must not match and against openapi/openapi.yaml, the
 * Allow header, authentication before everything but the callback, the
 * body rules (413, 415, 400, 422) and the declared query parameters and
 * body fields, with the messages built from the limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "handlers.h"
#include "http.h"
#include "json.h"
#include "jwt.h"
#include "mail_server.h"
#include "mailsrv_limits.h"
#include "router.h"

static struct {
	char dir[64];
	char key_path[96];
	struct sig_key *key;
	struct app app;
	struct worker w;
	const char *admin;  /* Authorization header values */
	const char *reader; /* a valid token without the administrator role */
	/* The last request and what the router made of it. */
	struct http_request req;
	struct http_response resp;
	struct ctx c;
	handler_fn fn;
	int needs_db;
	int too_large; /* the next request's body was over MAX_BODY_BYTES */
} fx;

static int group_setup(void **state)
{
	(void)state;
	char err[256];
	strcpy(fx.dir, "/tmp/test_router.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	snprintf(fx.key_path, sizeof(fx.key_path), "%s/jwt.key", fx.dir);
	if (sig_key_generate_hmac(fx.key_path, err, sizeof(err)) != 0 ||
	    sig_key_load(SIG_HS256, fx.key_path, 0, &fx.key, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	fx.app.jwt.key = fx.key;
	fx.app.jwt.leeway_s = JWT_LEEWAY_S;
	fx.w.app = &fx.app;
	fx.w.arena = arena_new(MAX_ARENA_BYTES);
	fx.w.out = json_out_new();
	if (fx.w.arena == NULL || fx.w.out == NULL)
		return -1;
	/* Tokens live in a malloc'd copy: the arena is reset between tests. */
	char *t =
	    jwt_issue(fx.key, fx.w.arena, "alice", "administrator", 3600, time(NULL), NULL, NULL);
	char *r = jwt_issue(fx.key, fx.w.arena, "bob", "auditor", 3600, time(NULL), NULL, NULL);
	if (t == NULL || r == NULL)
		return -1;
	size_t tl = strlen(t) + 8, rl = strlen(r) + 8;
	char *admin = malloc(tl), *reader = malloc(rl);
	snprintf(admin, tl, "Bearer %s", t);
	snprintf(reader, rl, "Bearer %s", r);
	fx.admin = admin;
	fx.reader = reader;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	jwt_cache_clear(&fx.w.jwt_cache);
	free((char *)fx.admin);
	free((char *)fx.reader);
	sig_key_free(fx.key);
	arena_free(fx.w.arena);
	json_out_free(fx.w.out);
	unlink(fx.key_path);
	rmdir(fx.dir);
	return 0;
}

static int reset(void **state)
{
	(void)state;
	arena_reset(fx.w.arena);
	return 0;
}

/* Resolve one request as the administrator (auth NULL) or with the given
 * Authorization header ("" for none). */
static err_t resolve_as(const char *auth, const char *method, const char *path, const char *query,
                        const char *content_type, const char *body)
{
	memset(&fx.req, 0, sizeof(fx.req));
	memset(&fx.resp, 0, sizeof(fx.resp));
	memset(&fx.c, 0, sizeof(fx.c));
	fx.req.method = method;
	fx.req.path = path;
	fx.req.query = query ? query : "";
	fx.req.content_type = content_type;
	fx.req.authorization = auth == NULL ? fx.admin : (auth[0] ? auth : NULL);
	fx.req.request_id = "";
	fx.req.body = body;
	fx.req.body_len = body ? strlen(body) : 0;
	fx.req.body_too_large = fx.too_large;
	fx.c.w = &fx.w;
	fx.c.arena = fx.w.arena;
	fx.c.req = &fx.req;
	fx.c.resp = &fx.resp;
	fx.c.out = fx.w.out;
	return router_resolve(&fx.c, &fx.fn, &fx.needs_db);
}

static err_t resolve(const char *method, const char *path, const char *query)
{
	return resolve_as(NULL, method, path, query, NULL, NULL);
}

static err_t resolve_body(const char *method, const char *path, const char *content_type,
                          const char *body)
{
	return resolve_as(NULL, method, path, NULL, content_type, body);
}

static const char *header(const char *name)
{
	for (size_t i = 0; i < fx.resp.nheaders; i++)
		if (strcmp(fx.resp.headers[i].name, name) == 0)
			return fx.resp.headers[i].value;
	return NULL;
}

static int has_error(const char *field)
{
	for (size_t i = 0; i < fx.c.nerrors; i++)
		if (strcmp(fx.c.errors[i].field, field) == 0)
			return 1;
	return 0;
}

/* ---- the route table ---- */

/* A route's pattern with {id} as 7, under /api/v1/. */
static void concrete(const char *pattern, char *out, size_t n)
{
	const char *id = strstr(pattern, "{id}");
	if (id == NULL)
		snprintf(out, n, "/api/v1/%s", pattern);
	else
		snprintf(out, n, "/api/v1/%.*s7%s", (int)(id - pattern), pattern, id + 4);
}

/* Every route's own path resolves to it, for each of its methods: the
 * first route of the table that matches is the route itself (so a literal
 * path is never taken by an {id} pattern before it). */
static void test_each_route_matches_itself_first(void **state)
{
	(void)state;
	for (size_t i = 0; i < router_nroutes; i++) {
		char path[128];
		concrete(router_routes[i].path, path, sizeof(path));
		size_t first = router_nroutes;
		for (size_t j = 0; j < router_nroutes && first == router_nroutes; j++) {
			const char *seg;
			size_t len;
			if (router_match(router_routes[j].path, path + 8, &seg, &len))
				first = j;
		}
		assert_int_equal(first, i);
		/* The method names of a route are distinct. */
		for (size_t m = 0; m < ROUTE_MAX_METHODS && router_routes[i].methods[m].name; m++)
			for (size_t k = 0; k < m; k++)
				assert_string_not_equal(router_routes[i].methods[m].name,
				                        router_routes[i].methods[k].name);
	}
}

struct dispatch_case {
	const char *method;
	const char *path;
	handler_fn fn; /* NULL: refused with status */
	err_t e;       /* when refused */
	long long id;  /* c->id when it resolves */
	const char *ctype;
	const char *body;
};

#define JSON "application/json"
#define BASIC_BODY                                                                                 \
	"{\"name\":\"Relay\",\"server\":\"smtp.example.com\",\"port\":587,"                        \
	"\"sender_name\":\"Alerts\",\"sender_email\":\"alerts@example.com\",\"auth_type\":"        \
	"\"basic\"}"

static const struct dispatch_case dispatch_cases[] = {
    {"GET", "/api/v1/mail-servers", ms_handle_list, E_OK, 0, NULL, NULL},
    {"POST", "/api/v1/mail-servers", ms_handle_create, E_OK, 0, JSON, BASIC_BODY},
    {"GET", "/api/v1/mail-servers/default", ms_handle_get_default, E_OK, 0, NULL, NULL},
    {"POST", "/api/v1/mail-servers/batch-delete", ms_handle_batch_delete, E_OK, 0, JSON,
     "{\"ids\":[1]}"},
    {"GET", "/api/v1/mail-servers/42", ms_handle_get, E_OK, 42, NULL, NULL},
    {"PUT", "/api/v1/mail-servers/42", ms_handle_replace, E_OK, 42, JSON, "{}"},
    {"PATCH", "/api/v1/mail-servers/42", ms_handle_patch, E_OK, 42, "application/merge-patch+json",
     "{}"},
    {"PATCH", "/api/v1/mail-servers/42", ms_handle_patch, E_OK, 42, JSON, "{}"},
    {"DELETE", "/api/v1/mail-servers/9223372036854775807", ms_handle_delete, E_OK,
     9223372036854775807LL, NULL, NULL},
    {"POST", "/api/v1/mail-servers/42/oauth2/authorize", oauth2_handle_authorize, E_OK, 42, NULL,
     NULL},
    {"POST", "/api/v1/mail-servers/42/oauth2/refresh", oauth2_handle_refresh, E_OK, 42, NULL, NULL},
    /* Literal paths are not ids; neighbours of a route are not the route. */
    {"DELETE", "/api/v1/mail-servers/default", NULL, E_METHOD_NOT_ALLOWED, 0, NULL, NULL},
    {"GET", "/api/v1/mail-servers/batch-delete", NULL, E_METHOD_NOT_ALLOWED, 0, NULL, NULL},
    {"GET", "/api/v1/mail-servers/", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/mail-servers/7/", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/mail-server", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/mail-serverss", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"POST", "/api/v1/mail-servers/7/oauth2", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"POST", "/api/v1/mail-servers/7/oauth2/authorize/x", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"POST", "/api/v1/mail-servers//oauth2/authorize", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"POST", "/api/v1/mail-servers/7/oauth2/revoke", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/oauth2/callback/x", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v2/mail-servers", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/mail-servers", NULL, E_NOT_FOUND, 0, NULL, NULL},
    /* An {id} that is not a positive int64 is an unknown server. */
    {"GET", "/api/v1/mail-servers/0", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/mail-servers/007", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/mail-servers/-1", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/mail-servers/9223372036854775808", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/mail-servers/abc", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"POST", "/api/v1/mail-servers/default/oauth2/authorize", NULL, E_NOT_FOUND, 0, NULL, NULL},
    /* The probes are outside /api/v1. */
    {"GET", "/healthz", health_handle, E_OK, 0, NULL, NULL},
    {"HEAD", "/healthz", health_handle, E_OK, 0, NULL, NULL},
    {"POST", "/healthz", NULL, E_METHOD_NOT_ALLOWED, 0, NULL, NULL},
    {"GET", "/livez", livez_handle, E_OK, 0, NULL, NULL},
    {"HEAD", "/livez", livez_handle, E_OK, 0, NULL, NULL},
    {"DELETE", "/livez", NULL, E_METHOD_NOT_ALLOWED, 0, NULL, NULL},
    {"GET", "/readyz", readyz_handle, E_OK, 0, NULL, NULL},
    {"HEAD", "/readyz", readyz_handle, E_OK, 0, NULL, NULL},
    {"PUT", "/readyz", NULL, E_METHOD_NOT_ALLOWED, 0, NULL, NULL},
    {"GET", "/livez/", NULL, E_NOT_FOUND, 0, NULL, NULL},
    {"GET", "/api/v1/livez", NULL, E_NOT_FOUND, 0, NULL, NULL},
};

static void test_dispatch_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(dispatch_cases) / sizeof(dispatch_cases[0]); i++) {
		const struct dispatch_case *d = &dispatch_cases[i];
		arena_reset(fx.w.arena);
		err_t e = resolve_as(NULL, d->method, d->path, NULL, d->ctype, d->body);
		if (d->fn != NULL) {
			if (e != E_OK)
				fail_msg("%s %s: err %d (%s)", d->method, d->path, e,
				         fx.c.detail ? fx.c.detail : "");
			assert_ptr_equal(fx.fn, d->fn);
			assert_int_equal(fx.c.id, d->id);
			/* the probes reach the database themselves, if at all */
			assert_int_equal(fx.needs_db, !router_is_probe(d->path));
			assert_non_null(fx.c.route_template);
		} else {
			if (e != d->e)
				fail_msg("%s %s: err %d, want %d", d->method, d->path, e, d->e);
			assert_null(fx.fn);
		}
	}
}

/* 405 with Allow listing exactly the route's methods, in table order, HEAD
 * right after GET. */
static void test_allow(void **state)
{
	(void)state;
	static const struct {
		const char *path;
		const char *allow;
	} want[] = {
	    {"/api/v1/mail-servers", "GET, HEAD, POST"},
	    {"/api/v1/mail-servers/default", "GET, HEAD"},
	    {"/api/v1/mail-servers/batch-delete", "POST"},
	    {"/api/v1/mail-servers/test", "POST"},
	    {"/api/v1/mail-servers/7", "GET, HEAD, PUT, PATCH, DELETE"},
	    {"/api/v1/mail-servers/7/test", "POST"},
	    {"/api/v1/mail-servers/7/oauth2/authorize", "POST"},
	    {"/api/v1/mail-servers/7/oauth2/refresh", "POST"},
	    {"/api/v1/oauth2/callback", "GET, HEAD"},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(resolve("TRACE", want[i].path, NULL), E_METHOD_NOT_ALLOWED);
		assert_string_equal(fx.c.allow, want[i].allow);
		/* Method names are case-sensitive (RFC 9110 section 9.1). */
		assert_int_equal(resolve("get", want[i].path, NULL), E_METHOD_NOT_ALLOWED);
	}
	/* The same, derived from the table for every route. */
	for (size_t i = 0; i < router_nroutes; i++) {
		char path[128];
		concrete(router_routes[i].path, path, sizeof(path));
		assert_int_equal(resolve("OPTIONS", path, NULL), E_METHOD_NOT_ALLOWED);
		const char *allow = fx.c.allow;
		size_t n = 0;
		for (size_t m = 0; m < ROUTE_MAX_METHODS && router_routes[i].methods[m].name; m++) {
			assert_non_null(strstr(allow, router_routes[i].methods[m].name));
			n++;
			/* Every GET route answers HEAD, and says so. */
			if (strcmp(router_routes[i].methods[m].name, "GET") == 0) {
				assert_non_null(strstr(allow, "GET, HEAD"));
				n++;
			}
		}
		size_t commas = 0;
		for (const char *p = allow; *p; p++)
			commas += *p == ',';
		assert_int_equal(commas + 1, n);
	}
	assert_int_equal(resolve("DELETE", "/healthz", NULL), E_METHOD_NOT_ALLOWED);
	assert_string_equal(fx.c.allow, "GET, HEAD");
}

/* HEAD takes the GET of every route that has one (same handler, same
 * checks: the body is left out by the FastCGI layer), and is a 405 on the
 * others. */
static void test_head(void **state)
{
	(void)state;
	for (size_t i = 0; i < router_nroutes; i++) {
		char path[128];
		concrete(router_routes[i].path, path, sizeof(path));
		const struct route_method *get = NULL;
		for (size_t m = 0; m < ROUTE_MAX_METHODS && router_routes[i].methods[m].name; m++)
			if (strcmp(router_routes[i].methods[m].name, "GET") == 0)
				get = &router_routes[i].methods[m];
		/* The callback needs a state; the others take no query. */
		const char *query = router_routes[i].public ? "state=x" : NULL;
		err_t eg = resolve("GET", path, query);
		handler_fn fg = fx.fn;
		long long idg = fx.c.id;
		err_t eh = resolve("HEAD", path, query);
		if (get == NULL) {
			if (eh != E_METHOD_NOT_ALLOWED)
				fail_msg("HEAD %s: err %d, want 405", path, eh);
			continue;
		}
		if (eh != eg || fx.fn != fg || fx.fn != get->fn || fx.c.id != idg)
			fail_msg("HEAD %s: err %d, want GET's %d and handler", path, eh, eg);
	}
	/* The same checks as GET: a bad query, no token, a bad id. */
	assert_int_equal(resolve("HEAD", "/api/v1/mail-servers", "limit=0"), E_BAD_REQUEST);
	assert_int_equal(resolve_as("", "HEAD", "/api/v1/mail-servers", NULL, NULL, NULL),
	                 E_UNAUTHORIZED);
	assert_int_equal(resolve("HEAD", "/api/v1/mail-servers/0", NULL), E_NOT_FOUND);
	assert_int_equal(resolve("HEAD", "/healthz", NULL), E_OK);
	assert_ptr_equal(fx.fn, health_handle);
	/* Case-sensitive, as every method name. */
	assert_int_equal(resolve("head", "/api/v1/mail-servers", NULL), E_METHOD_NOT_ALLOWED);
}

/* The token comes before the route's existence and its methods; only the
 * callback is public. */
static void test_authentication_first(void **state)
{
	(void)state;
	assert_int_equal(resolve_as("", "GET", "/api/v1/mail-servers", NULL, NULL, NULL),
	                 E_UNAUTHORIZED);
	assert_int_equal(resolve_as("", "GET", "/api/v1/nothing", NULL, NULL, NULL),
	                 E_UNAUTHORIZED);
	assert_int_equal(resolve_as("", "TRACE", "/api/v1/mail-servers/7", NULL, NULL, NULL),
	                 E_UNAUTHORIZED);
	assert_int_equal(
	    resolve_as("Basic dXNlcjpwYXNz", "GET", "/api/v1/mail-servers", NULL, NULL, NULL),
	    E_UNAUTHORIZED);
	assert_int_equal(
	    resolve_as("Bearer x.y.z", "GET", "/api/v1/mail-servers", NULL, NULL, NULL),
	    E_UNAUTHORIZED);
	assert_int_equal(resolve_as(fx.reader, "GET", "/api/v1/mail-servers", NULL, NULL, NULL),
	                 E_FORBIDDEN);
	assert_int_equal(resolve_as(fx.admin, "GET", "/api/v1/nothing", NULL, NULL, NULL),
	                 E_NOT_FOUND);
	/* The callback: no token, and its answers are never passed on as a
	 * Referer, refused ones included. */
	assert_int_equal(resolve_as("", "GET", "/api/v1/oauth2/callback", "state=x", NULL, NULL),
	                 E_OK);
	assert_ptr_equal(fx.fn, oauth2_handle_callback);
	assert_string_equal(header("Referrer-Policy"), "no-referrer");
	assert_int_equal(resolve_as("", "GET", "/api/v1/oauth2/callback", "", NULL, NULL),
	                 E_BAD_REQUEST);
	assert_string_equal(header("Referrer-Policy"), "no-referrer");
	assert_int_equal(resolve("GET", "/api/v1/mail-servers", NULL), E_OK);
	assert_null(header("Referrer-Policy"));
}

/* ---- the route table against openapi/openapi.yaml ---- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	size_t cap = 1 << 20, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf != NULL && (r = fread(buf + n, 1, cap - 1 - n, f)) > 0) {
		n += r;
		if (n == cap - 1) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	fclose(f);
	if (buf != NULL)
		buf[n] = '\0';
	return buf;
}

/* The block of one path under `paths:` (up to the next path), or NULL. */
static const char *path_block(const char *yaml, const char *path, size_t *len)
{
	char key[160];
	snprintf(key, sizeof(key), "\n  /%s:\n", path);
	const char *p = strstr(yaml, key);
	if (p == NULL)
		return NULL;
	p += strlen(key);
	const char *end = p;
	/* The block ends at the next line indented by at most two spaces. */
	while ((end = strchr(end, '\n')) != NULL) {
		end++;
		if (!(end[0] == ' ' && end[1] == ' ' && end[2] == ' ') && end[0] != '\n')
			break;
	}
	*len = end ? (size_t)(end - p) : strlen(p);
	return p;
}

/* Whether the document marks the path `x-served-by: nginx`: its own
 * description, a static file nginx serves, which no route handles. */
static int served_by_nginx(const char *yaml, const char *name, size_t n)
{
	char path[128];
	snprintf(path, sizeof(path), "%.*s", (int)n, name);
	size_t len = 0;
	const char *block = path_block(yaml, path, &len);
	static const char mark[] = "\n    x-served-by: nginx\n";
	return block != NULL && memmem(block - 1, len + 1, mark, sizeof(mark) - 1) != NULL;
}

static void test_routes_in_openapi(void **state)
{
	(void)state;
	char *yaml = read_text("openapi/openapi.yaml");
	assert_non_null(yaml);
	for (size_t i = 0; i < router_nroutes; i++) {
		size_t len = 0;
		const char *block = path_block(yaml, router_routes[i].path, &len);
		if (block == NULL)
			fail_msg("route %s is not in openapi/openapi.yaml", router_routes[i].path);
		for (size_t m = 0; m < ROUTE_MAX_METHODS && router_routes[i].methods[m].name; m++) {
			char op[32];
			snprintf(op, sizeof(op), "\n    %s:\n", router_routes[i].methods[m].name);
			for (char *p = op; *p; p++)
				*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
			char *in = strndup(block - 1, len + 1);
			if (strstr(in, op) == NULL)
				fail_msg("%s %s is not in openapi/openapi.yaml",
				         router_routes[i].methods[m].name, router_routes[i].path);
			free(in);
		}
	}
	/* ...and every path the document lists (but the probes, /metrics and
	 * what nginx serves itself) is a route. */
	const char *paths = strstr(yaml, "\npaths:\n");
	assert_non_null(paths);
	for (const char *p = paths + 7; (p = strstr(p, "\n  /")) != NULL; p++) {
		const char *name = p + 4, *end = strstr(name, ":\n");
		assert_non_null(end);
		char probe[64];
		snprintf(probe, sizeof(probe), "/%.*s", (int)(end - name), name);
		if (router_is_probe(probe))
			continue;
		if ((size_t)(end - name) == strlen("metrics") && strncmp(name, "metrics", 7) == 0)
			continue;
		if (served_by_nginx(yaml, name, (size_t)(end - name)))
			continue;
		size_t i;
		for (i = 0; i < router_nroutes; i++)
			if (strlen(router_routes[i].path) == (size_t)(end - name) &&
			    strncmp(router_routes[i].path, name, (size_t)(end - name)) == 0)
				break;
		if (i == router_nroutes)
			fail_msg("openapi/openapi.yaml lists /%.*s, which no route serves",
			         (int)(end - name), name);
	}
	free(yaml);
}

/* ---- body rules ---- */

static void test_body_rules(void **state)
{
	(void)state;
	const char *ms = "/api/v1/mail-servers", *one = "/api/v1/mail-servers/7";
	/* Media type before syntax; merge patch only for PATCH. */
	assert_int_equal(resolve_body("POST", ms, NULL, "{}"), E_UNSUPPORTED_MEDIA_TYPE);
	assert_int_equal(resolve_body("POST", ms, "text/plain", "{}"), E_UNSUPPORTED_MEDIA_TYPE);
	assert_int_equal(resolve_body("POST", ms, "application/json; charset=latin1", "{}"),
	                 E_UNSUPPORTED_MEDIA_TYPE);
	assert_int_equal(resolve_body("PUT", one, "application/merge-patch+json", "{}"),
	                 E_UNSUPPORTED_MEDIA_TYPE);
	assert_int_equal(resolve_body("PATCH", one, "text/json", "{}"), E_UNSUPPORTED_MEDIA_TYPE);
	assert_int_equal(resolve_body("PUT", one, "application/json; charset=utf-8", "{}"), E_OK);
	/* Syntax: not JSON, not an object, duplicate keys, empty. */
	assert_int_equal(resolve_body("PUT", one, JSON, "{"), E_BAD_REQUEST);
	assert_int_equal(resolve_body("PUT", one, JSON, "[]"), E_BAD_REQUEST);
	assert_int_equal(resolve_body("PUT", one, JSON, "\"x\""), E_BAD_REQUEST);
	assert_int_equal(resolve_body("PUT", one, JSON, "{\"a\":1,\"a\":2}"), E_BAD_REQUEST);
	assert_int_equal(resolve_body("PUT", one, JSON, ""), E_BAD_REQUEST);
	assert_int_equal(resolve_body("PUT", one, JSON, "{}"), E_OK);
	assert_non_null(fx.c.body);

	/* Over the cap: 413 before the media type, naming the limit. */
	char want[96];
	snprintf(want, sizeof(want), "the request body is larger than %d bytes", MAX_BODY_BYTES);
	const char *paths[] = {ms, one, "/api/v1/mail-servers/7/oauth2/authorize",
	                       "/api/v1/mail-servers/7/oauth2/refresh",
	                       "/api/v1/mail-servers/batch-delete"};
	const char *methods[] = {"POST", "PATCH", "POST", "POST", "POST"};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		fx.too_large = 1;
		err_t e = resolve_body(methods[i], paths[i], "text/plain", NULL);
		fx.too_large = 0;
		assert_int_equal(e, E_PAYLOAD_TOO_LARGE);
		assert_string_equal(fx.c.detail, want);
	}

	/* authorize and refresh take no body; an empty one with any media type
	 * is none. GET and DELETE ignore theirs. */
	const char *auth = "/api/v1/mail-servers/7/oauth2/authorize";
	assert_int_equal(resolve_body("POST", auth, JSON, "{\"x\":1}"), E_BAD_REQUEST);
	assert_string_equal(fx.c.detail, "this operation takes no request body");
	assert_int_equal(resolve_body("POST", "/api/v1/mail-servers/7/oauth2/refresh", JSON, "{}"),
	                 E_BAD_REQUEST);
	assert_int_equal(resolve_body("POST", auth, JSON, ""), E_OK);
	assert_int_equal(resolve_body("POST", auth, "text/plain", NULL), E_OK);
	assert_int_equal(resolve_body("GET", one, "text/plain", "not json"), E_OK);
	assert_null(fx.c.body);
	assert_int_equal(resolve_body("DELETE", one, JSON, "{"), E_OK);

	/* The create's body goes through the mail server field table before
	 * the handler (and the database). */
	assert_int_equal(resolve_body("POST", ms, JSON, "{}"), E_VALIDATION);
	assert_true(has_error("name"));
	assert_null(fx.fn);
	assert_int_equal(resolve_body("POST", ms, JSON, BASIC_BODY), E_OK);
	const struct ms_input *in = fx.c.input;
	assert_non_null(in);
	assert_string_equal(in->name, "Relay");
	assert_int_equal(in->port, 587);
}

static void test_batch_delete_fields(void **state)
{
	(void)state;
	const char *bd = "/api/v1/mail-servers/batch-delete";
	static const struct {
		const char *body;
		const char *field; /* NULL: accepted */
	} cases[] = {
	    {"{}", "ids"},
	    {"{\"ids\":[]}", "ids"},
	    {"{\"ids\":\"1\"}", "ids"},
	    {"{\"ids\":null}", "ids"},
	    {"{\"ids\":{\"0\":1}}", "ids"},
	    {"{\"ids\":[0]}", "ids"},
	    {"{\"ids\":[-5]}", "ids"},
	    {"{\"ids\":[2.5]}", "ids"},
	    {"{\"ids\":[1e3]}", "ids"},
	    {"{\"ids\":[true]}", "ids"},
	    {"{\"ids\":[\"1\"]}", "ids"},
	    {"{\"ids\":[[1]]}", "ids"},
	    {"{\"ids\":[99999999999999999999999]}", "ids"},
	    {"{\"ids\":[1],\"force\":true}", "force"},
	    {"{\"ids\":[9223372036854775807]}", NULL},
	    {"{\"ids\":[3]}", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		arena_reset(fx.w.arena);
		err_t e = resolve_body("POST", bd, JSON, cases[i].body);
		if (cases[i].field == NULL) {
			assert_int_equal(e, E_OK);
			assert_int_equal(fx.c.fields[MS_BATCH_IDS].nids, 1);
			continue;
		}
		if (e != E_VALIDATION)
			fail_msg("%s: err %d", cases[i].body, e);
		if (!has_error(cases[i].field))
			fail_msg("%s: no error for %s", cases[i].body, cases[i].field);
		assert_string_equal(fx.c.detail, "the batch delete request is invalid");
	}
	assert_int_equal(resolve_body("POST", bd, JSON, "{\"ids\":[1],\"force\":true}"),
	                 E_VALIDATION);
	assert_string_equal(fx.c.errors[0].message, "is not a field of a batch delete");

	/* 1..BATCH_DELETE_MAX_IDS ids, sorted and each once. */
	size_t cap = 16 + 24 * (BATCH_DELETE_MAX_IDS + 1);
	char *body = malloc(cap);
	for (int n = BATCH_DELETE_MAX_IDS; n <= BATCH_DELETE_MAX_IDS + 1; n++) {
		size_t o = (size_t)snprintf(body, cap, "{\"ids\":[");
		for (int i = n; i >= 1; i--)
			o += (size_t)snprintf(body + o, cap - o, "%d%s", i, i > 1 ? "," : "");
		snprintf(body + o, cap - o, "]}");
		arena_reset(fx.w.arena);
		err_t e = resolve_body("POST", bd, JSON, body);
		if (n <= BATCH_DELETE_MAX_IDS) {
			assert_int_equal(e, E_OK);
			assert_int_equal(fx.c.fields[MS_BATCH_IDS].nids, (size_t)n);
			assert_int_equal(fx.c.fields[MS_BATCH_IDS].ids[0], 1);
			assert_int_equal(fx.c.fields[MS_BATCH_IDS].ids[n - 1], n);
		} else {
			assert_int_equal(e, E_VALIDATION);
			char want[64];
			snprintf(want, sizeof(want), "must hold 1 to %d ids", BATCH_DELETE_MAX_IDS);
			assert_string_equal(fx.c.errors[0].message, want);
		}
	}
	free(body);
	assert_int_equal(resolve_body("POST", bd, JSON, "{\"ids\":[5,3,5,1,3]}"), E_OK);
	const struct input_value *ids = &fx.c.fields[MS_BATCH_IDS];
	assert_int_equal(ids->nids, 3);
	assert_int_equal(ids->ids[0], 1);
	assert_int_equal(ids->ids[1], 3);
	assert_int_equal(ids->ids[2], 5);
}

/* ---- query parameters ---- */

static const struct input_value *list_query(const char *q)
{
	err_t e = resolve("GET", "/api/v1/mail-servers", q);
	if (e != E_OK)
		fail_msg("?%s: err %d (%s)", q, e, fx.c.detail ? fx.c.detail : "");
	return fx.c.query;
}

static void list_refused(const char *q, const char *detail)
{
	err_t e = resolve("GET", "/api/v1/mail-servers", q);
	if (e != E_BAD_REQUEST)
		fail_msg("?%s: err %d, want 400", q, e);
	if (detail != NULL && strcmp(fx.c.detail, detail) != 0)
		fail_msg("?%s: \"%s\", want \"%s\"", q, fx.c.detail, detail);
}

static void test_list_query(void **state)
{
	(void)state;
	/* Defaults. */
	const struct input_value *v = list_query("");
	assert_false(v[MS_LIST_Q].present);
	assert_int_equal(v[MS_LIST_LIMIT].i, LIST_LIMIT_DEFAULT);
	assert_int_equal(v[MS_LIST_OFFSET].i, 0);
	assert_int_equal(v[MS_LIST_SORT].i, SORT_NAME);
	assert_false(v[MS_LIST_SORT].negated);

	v = list_query("q=a%20b+c&sort=-port&limit=1&offset=0");
	assert_string_equal(v[MS_LIST_Q].s, "a b c");
	assert_int_equal(v[MS_LIST_SORT].i, SORT_PORT);
	assert_true(v[MS_LIST_SORT].negated);
	assert_int_equal(v[MS_LIST_LIMIT].i, 1);
	v = list_query("sort=updated_at&q=");
	assert_int_equal(v[MS_LIST_SORT].i, SORT_UPDATED_AT);
	assert_false(v[MS_LIST_SORT].negated);
	assert_true(v[MS_LIST_Q].present);
	assert_int_equal(v[MS_LIST_Q].len, 0);

	/* The bounds, and one past them. */
	char q[64], want[128];
	snprintf(q, sizeof(q), "limit=%d", LIST_LIMIT_MAX);
	assert_int_equal(list_query(q)[MS_LIST_LIMIT].i, LIST_LIMIT_MAX);
	snprintf(q, sizeof(q), "offset=%ld", LIST_OFFSET_MAX);
	assert_int_equal(list_query(q)[MS_LIST_OFFSET].i, LIST_OFFSET_MAX);
	snprintf(want, sizeof(want), "limit must be an integer from 1 to %d", LIST_LIMIT_MAX);
	snprintf(q, sizeof(q), "limit=%d", LIST_LIMIT_MAX + 1);
	list_refused(q, want);
	const char *bad_limits[] = {"limit=0",  "limit=-1",   "limit=",
	                            "limit",    "limit=abc",  "limit=1.5",
	                            "limit=+5", "limit=%205", "limit=99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad_limits) / sizeof(bad_limits[0]); i++)
		list_refused(bad_limits[i], want);
	snprintf(want, sizeof(want), "offset must be an integer from 0 to %ld", LIST_OFFSET_MAX);
	snprintf(q, sizeof(q), "offset=%ld", LIST_OFFSET_MAX + 1);
	list_refused(q, want);
	list_refused("offset=-1", want);

	/* Sort keys. */
	const char *bad_sorts[] = {"sort=",         "sort=-",       "sort=--name", "sort=Name",
	                           "sort=password", "sort=name%00", "sort=+name",  "sort=id"};
	for (size_t i = 0; i < sizeof(bad_sorts) / sizeof(bad_sorts[0]); i++)
		list_refused(bad_sorts[i],
		             "sort must be one of name, server, port, sender_name, sender_email,"
		             " is_default, created_at, updated_at, optionally prefixed by '-'");

	/* q: UTF-8 text of at most LIST_Q_MAX_CHARS characters, no control
	 * characters. "é" is one character of two bytes. */
	char *long_q = malloc(16 + 6 * (LIST_Q_MAX_CHARS + 1));
	strcpy(long_q, "q=");
	for (int i = 0; i < LIST_Q_MAX_CHARS; i++)
		strcat(long_q, "%C3%A9");
	v = list_query(long_q);
	assert_int_equal(v[MS_LIST_Q].len, 2 * LIST_Q_MAX_CHARS);
	strcat(long_q, "x");
	snprintf(want, sizeof(want),
	         "q must be UTF-8 text of at most %d characters without control characters",
	         LIST_Q_MAX_CHARS);
	list_refused(long_q, want);
	free(long_q);
	list_refused("q=%FF", want);
	list_refused("q=%C0%AF", want); /* overlong */
	list_refused("q=a%00b", want);
	list_refused("q=a%0Ab", want);
	list_refused("q=a%7Fb", want);
	list_refused("q=a%C2%85b", want); /* C1 */

	/* Unknown, repeated, malformed, too many. */
	list_refused("foo=1", "unknown query parameter; use q, sort, limit and offset");
	list_refused("limit=5&Limit=5", "unknown query parameter; use q, sort, limit and offset");
	list_refused("limit=1&limit=2", "the query string is malformed or repeats a parameter");
	list_refused("q=a&q=a", "the query string is malformed or repeats a parameter");
	list_refused("q=%", "the query string is malformed or repeats a parameter");
	list_refused("q=%zz", "the query string is malformed or repeats a parameter");
	char many[512] = "";
	for (int i = 0; i <= QUERY_MAX_PARAMS; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "p%d=1&", i);
	list_refused(many, "the query string is malformed or repeats a parameter");
	/* Empty pieces are nothing. */
	v = list_query("&&limit=3&");
	assert_int_equal(v[MS_LIST_LIMIT].i, 3);
}

/* Routes that declare no query parameters do not look at the query
 * string; the callback ignores what it did not declare. */
static void test_other_queries(void **state)
{
	(void)state;
	assert_int_equal(resolve("GET", "/api/v1/mail-servers/7", "x=1&x=2&%zz"), E_OK);
	assert_null(fx.c.query);
	assert_int_equal(resolve("GET", "/api/v1/mail-servers/default", "limit=0"), E_OK);

	const char *cb = "/api/v1/oauth2/callback";
	char state_q[128];
	snprintf(state_q, sizeof(state_q),
	         "state=%.43s&code=abc&session_state=x&iss=y&scope=z&authuser=0",
	         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	assert_int_equal(resolve_as("", "GET", cb, state_q, NULL, NULL), E_OK);
	const struct input_value *v = fx.c.query;
	assert_true(v[CB_STATE].present && v[CB_STATE].valid);
	assert_true(v[CB_CODE].present && v[CB_CODE].valid);
	assert_string_equal(v[CB_CODE].s, "abc");
	assert_false(v[CB_ERROR].present);

	/* A missing or empty state is the one refusal; a malformed one is left
	 * to the handler (an unknown state, without a look at the database). */
	assert_int_equal(resolve_as("", "GET", cb, "code=abc", NULL, NULL), E_BAD_REQUEST);
	assert_string_equal(fx.c.detail, "the state parameter is missing");
	assert_int_equal(resolve_as("", "GET", cb, "state=&code=abc", NULL, NULL), E_BAD_REQUEST);
	assert_string_equal(fx.c.detail, "the state parameter is missing");
	assert_int_equal(resolve_as("", "GET", cb, "state=a+b/c", NULL, NULL), E_OK);
	assert_true(fx.c.query[CB_STATE].present);
	assert_false(fx.c.query[CB_STATE].valid);
	assert_int_equal(resolve_as("", "GET", cb, "state=x&state=y", NULL, NULL), E_BAD_REQUEST);

	/* The provider's error and description; a bad code or error is not a
	 * 400 (the console hears of it). */
	assert_int_equal(
	    resolve_as("", "GET", cb,
	               "state=x&error=access_denied&error_description=no%0Away&code=%01", NULL,
	               NULL),
	    E_OK);
	v = fx.c.query;
	assert_true(v[CB_ERROR].valid);
	assert_string_equal(v[CB_ERROR].s, "access_denied");
	assert_true(v[CB_ERROR_DESCRIPTION].valid);
	assert_null(strchr(v[CB_ERROR_DESCRIPTION].s, '\n'));
	assert_true(v[CB_CODE].present);
	assert_false(v[CB_CODE].valid);
	assert_int_equal(resolve_as("", "GET", cb, "state=x&error=bad%22code", NULL, NULL), E_OK);
	assert_true(fx.c.query[CB_ERROR].present);
	assert_false(fx.c.query[CB_ERROR].valid);
	assert_int_equal(resolve_as("", "GET", cb, "state=x&error=a%00b", NULL, NULL), E_OK);
	assert_false(fx.c.query[CB_ERROR].valid);
	char *long_code = malloc(OAUTH2_CODE_MAX_BYTES + 32);
	strcpy(long_code, "state=x&code=");
	size_t o = strlen(long_code);
	memset(long_code + o, 'c', OAUTH2_CODE_MAX_BYTES + 1);
	long_code[o + OAUTH2_CODE_MAX_BYTES + 1] = '\0';
	/* Longer than the whole query string may be: refused as malformed. */
	assert_int_equal(resolve_as("", "GET", cb, long_code, NULL, NULL), E_BAD_REQUEST);
	long_code[o + OAUTH2_CODE_MAX_BYTES - 64] = '\0';
	assert_int_equal(resolve_as("", "GET", cb, long_code, NULL, NULL), E_OK);
	assert_true(fx.c.query[CB_CODE].valid);
	free(long_code);
}

/* The audit listing's time and cursor checks (audit_handlers.c). */
static int time_ok(struct arena *a, const char *s, const char **norm)
{
	struct input_value v;
	memset(&v, 0, sizeof(v));
	v.s = s;
	v.len = strlen(s);
	int ok = audit_time_check(a, s, v.len, &v);
	if (norm != NULL)
		*norm = v.s;
	return ok;
}

static void test_audit_query_checks(void **state)
{
	struct arena *a = arena_new(1 << 16);
	const char *norm;
	assert_true(time_ok(a, "2026-12-02T09:14:03Z", NULL));
	assert_true(time_ok(a, "2026-12-02t09:14:03.123456789z", &norm));
	assert_string_equal(norm, "2026-12-02T09:14:03.123456789Z");
	assert_true(time_ok(a, "2024-02-29T23:59:59+05:30", NULL));
	assert_true(time_ok(a, "2026-01-01T00:00:00-00:00", NULL));
	const char *bad[] = {"",
	                     "2026-12-02",
	                     "2026-12-02T09:14:03",
	                     "2026-12-02 09:14:03Z",
	                     "2025-02-29T00:00:00Z",
	                     "2026-13-01T00:00:00Z",
	                     "2026-00-01T00:00:00Z",
	                     "2026-04-31T00:00:00Z",
	                     "2026-01-01T24:00:00Z",
	                     "2026-01-01T00:60:00Z",
	                     "2026-01-01T00:00:60Z",
	                     "0000-01-01T00:00:00Z",
	                     "2026-01-01T00:00:00.Z",
	                     "2026-01-01T00:00:00.1234567890Z",
	                     "2026-01-01T00:00:00+24:00",
	                     "2026-01-01T00:00:00+0100",
	                     "2026-01-01T00:00:00Z ",
	                     "+2026-01-01T00:00:00Z"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(time_ok(a, bad[i], NULL));

	struct input_value v;
	memset(&v, 0, sizeof(v));
	/* base64url("e42") */
	assert_true(audit_cursor_check(a, "ZTQy", 4, &v));
	assert_int_equal(v.i, 42);
	const char *badc[] = {"", "ZQ", "ZTA", "eDQy", "ZTQy=", "ZTQyYQ", "not a cursor"};
	for (size_t i = 0; i < sizeof(badc) / sizeof(badc[0]); i++)
		assert_false(audit_cursor_check(a, badc[i], strlen(badc[i]), &v));
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_each_route_matches_itself_first, reset),
	    cmocka_unit_test_setup(test_dispatch_table, reset),
	    cmocka_unit_test_setup(test_allow, reset),
	    cmocka_unit_test_setup(test_head, reset),
	    cmocka_unit_test_setup(test_authentication_first, reset),
	    cmocka_unit_test_setup(test_routes_in_openapi, reset),
	    cmocka_unit_test_setup(test_body_rules, reset),
	    cmocka_unit_test_setup(test_batch_delete_fields, reset),
	    cmocka_unit_test_setup(test_list_query, reset),
	    cmocka_unit_test_setup(test_other_queries, reset),
	    cmocka_unit_test_setup(test_audit_query_checks, reset),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
