/*
 * router.c - the request flow after the FastCGI layer: match the route ->
 * authenticate -> check the method -> parse the {id} -> bound and parse the
 * body -> check the declared query parameters and body fields -> database
 * -> handler. Any failure comes back as an err_t for the one problem
 * mapping (http.c); the messages are built from the limits they state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "router.h"
#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_statements.h"
#include "handlers.h"
#include "http.h"
#include "http_db.h"
#include "json.h"
#include "log.h"
#include "mailsrv_limits.h"
#include "validate.h"

/* Literal paths before the {id} pattern they would also match. Each method
 * names its handler, what body it takes, its query parameters and the
 * reader of its body fields. */
const struct route router_routes[] = {
    {"mail-servers",
     0,
     0,
     {{"GET", ms_handle_list, BODY_IGNORED, &ms_list_query, NULL, NULL},
      {"POST", ms_handle_create, BODY_JSON, NULL, NULL, ms_read_create}}},
    {"mail-servers/default",
     0,
     0,
     {{"GET", ms_handle_get_default, BODY_IGNORED, NULL, NULL, NULL}}},
    {"mail-servers/batch-delete",
     0,
     0,
     {{"POST", ms_handle_batch_delete, BODY_JSON, NULL, &ms_batch_delete_body, NULL}}},
    {"mail-servers/test",
     0,
     0,
     {{"POST", smtp_handle_test_settings, BODY_JSON, NULL, NULL, smtp_read_settings}}},
    {"mail-servers/{id}/test",
     0,
     0,
     {{"POST", smtp_handle_test, BODY_JSON_OR_EMPTY, NULL, NULL, smtp_read_test}}},
    {"mail-servers/{id}/oauth2/authorize",
     0,
     0,
     {{"POST", oauth2_handle_authorize, BODY_REFUSED, NULL, NULL, NULL}}},
    {"mail-servers/{id}/oauth2/refresh",
     0,
     0,
     {{"POST", oauth2_handle_refresh, BODY_REFUSED, NULL, NULL, NULL}}},
    /* Public: the state authorizes it. The URL holds a code and a state,
     * which the browser must not pass on as a Referer. */
    {"oauth2/callback",
     1,
     1,
     {{"GET", oauth2_handle_callback, BODY_IGNORED, &oauth2_callback_query, NULL, NULL}}},
    {"audit-events",
     0,
     0,
     {{"GET", audit_handle_list, BODY_IGNORED, &audit_list_query, NULL, NULL}}},
    {"mail-servers/{id}",
     0,
     0,
     {{"GET", ms_handle_get, BODY_IGNORED, NULL, NULL, NULL},
      {"PUT", ms_handle_replace, BODY_JSON, NULL, NULL, NULL},
      {"PATCH", ms_handle_patch, BODY_MERGE_PATCH, NULL, NULL, NULL},
      {"DELETE", ms_handle_delete, BODY_IGNORED, NULL, NULL, NULL}}},
};
const size_t router_nroutes = sizeof(router_routes) / sizeof(router_routes[0]);

int router_match(const char *pattern, const char *path, const char **id_seg, size_t *id_len)
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
		return http_reject(c, E_UNAUTHORIZED, "a bearer token is required");
	/* RFC 6750 section 2.1: "Bearer" (any case) SP token. */
	if (strncasecmp(h, "Bearer ", 7) != 0)
		return http_reject(c, E_UNAUTHORIZED,
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
		return http_reject(c, E_UNAUTHORIZED, "the bearer token is invalid or expired");
	}
	if (!c->who.is_administrator)
		return http_reject(c, E_FORBIDDEN, "the administrator role is required");
	return E_OK;
}

/* Bound and parse the body (the request flow in README.md): size, then
 * media type, then syntax; the handler only ever sees a JSON object. */
static err_t read_body(struct ctx *c, enum body_kind kind)
{
	const struct http_request *req = c->req;
	if (req->body_too_large)
		return http_reject(c, E_PAYLOAD_TOO_LARGE,
		                   arena_printf(c->arena,
		                                "the request body is larger than %d bytes",
		                                MAX_BODY_BYTES));
	if (kind == BODY_REFUSED) {
		/* An empty body with any Content-Type is no body. */
		if (req->body_len > 0)
			return http_reject(c, E_BAD_REQUEST,
			                   "this operation takes no request body");
		return E_OK;
	}
	if (kind == BODY_JSON_OR_EMPTY && req->body_len == 0) {
		/* No body at all reads as {} (an empty object). */
		struct json_value *empty = arena_calloc(c->arena, 1, sizeof(*empty));
		if (empty == NULL)
			return http_reject(c, E_INTERNAL, "out of memory");
		empty->type = JSON_OBJECT;
		c->body = empty;
		return E_OK;
	}
	int json = text_media_type_is(req->content_type, "application/json");
	if (!json && !(kind == BODY_MERGE_PATCH &&
	               text_media_type_is(req->content_type, "application/merge-patch+json")))
		return http_reject(
		    c, E_UNSUPPORTED_MEDIA_TYPE,
		    kind == BODY_MERGE_PATCH
		        ? "the body must be application/merge-patch+json or application/json"
		        : "the body must be application/json");
	char msg[96];
	struct json_value *root;
	enum json_status st = json_parse(c->arena, req->body ? req->body : "", req->body_len, &root,
	                                 msg, sizeof(msg));
	if (st == JSON_ERR_NOMEM)
		return http_reject(c, E_PAYLOAD_TOO_LARGE,
		                   "the request body is too large to process");
	if (st != JSON_OK)
		return http_reject(c, E_BAD_REQUEST, arena_strdup(c->arena, msg));
	if (root->type != JSON_OBJECT)
		return http_reject(c, E_BAD_REQUEST, "the body must be a JSON object");
	c->body = root;
	return E_OK;
}

/* ---- declared input ---- */

static size_t find_field(const struct input_decl *d, const char *name, size_t len)
{
	size_t k;
	for (k = 0; k < d->nfields; k++)
		if (strlen(d->fields[k].name) == len && memcmp(d->fields[k].name, name, len) == 0)
			break;
	return k;
}

/* "a, b and c" from the declared names, or from a keyword list ("a, b, c"). */
static const char *joined(struct arena *a, const struct input_decl *d, const char *const *words,
                          const char *last_sep)
{
	size_t n = 0;
	if (words != NULL)
		while (words[n] != NULL)
			n++;
	else
		n = d->nfields;
	const char *s = "";
	for (size_t i = 0; i < n && s != NULL; i++) {
		const char *w = words != NULL ? words[i] : d->fields[i].name;
		s = arena_printf(a, "%s%s%s", s, i == 0 ? "" : (i + 1 == n ? last_sep : ", "), w);
	}
	return s;
}

/* A plain decimal of at most 18 digits (no sign, no overflow) in [min, max]. */
static int parse_int(const char *s, size_t len, long long min, long long max, long long *out)
{
	if (len == 0 || len > 18)
		return -1;
	long long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Check and convert one query value into v. 1 when acceptable. */
static int query_value_ok(struct arena *a, const struct input_field *f, struct input_value *v)
{
	const char *s = v->s;
	size_t len = v->len;
	switch (f->kind) {
	case IN_INT:
		return parse_int(s, len, f->min, f->max, &v->i) == 0;
	case IN_TEXT:
		return utf8_valid(s, len) && !text_has_control_chars(s, len) &&
		       utf8_count(s, len) <= (size_t)f->max;
	case IN_KEYWORD:
		if (strlen(s) != len)
			return 0;
		if ((f->flags & IN_SIGNED) && s[0] == '-') {
			v->negated = 1;
			s++;
		}
		for (size_t k = 0; f->words[k] != NULL; k++)
			if (strcmp(f->words[k], s) == 0) {
				v->i = (long long)k;
				return 1;
			}
		return 0;
	case IN_FUNC:
		return f->check(a, s, len, v);
	case IN_IDS:
		break;
	}
	return 0;
}

/* The 400 detail of a refused value, from the field's declaration. */
static const char *bad_value(struct arena *a, const struct input_field *f)
{
	switch (f->kind) {
	case IN_INT:
		return arena_printf(a, "%s must be an integer from %lld to %lld", f->name, f->min,
		                    f->max);
	case IN_TEXT:
		return arena_printf(a,
		                    "%s must be UTF-8 text of at most %lld characters without"
		                    " control characters",
		                    f->name, f->max);
	case IN_KEYWORD:
		return arena_printf(a, "%s must be one of %s%s", f->name,
		                    joined(a, NULL, f->words, ", "),
		                    (f->flags & IN_SIGNED) ? ", optionally prefixed by '-'" : "");
	default:
		return arena_printf(a, "%s has a value that is not accepted", f->name);
	}
}

/* The query string against the route's declared parameters: unknown,
 * repeated or bad ones are a 400; c->query gets one value per field. */
static err_t check_query(struct ctx *c, const struct input_decl *d)
{
	struct query_param *params;
	size_t n;
	if (query_parse(c->arena, c->req->query, &params, &n) != 0)
		return http_reject(c, E_BAD_REQUEST,
		                   "the query string is malformed or repeats a parameter");
	struct input_value *v = arena_calloc(c->arena, d->nfields, sizeof(*v));
	if (v == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	for (size_t k = 0; k < d->nfields; k++)
		v[k].i = d->fields[k].dflt;
	for (size_t i = 0; i < n; i++) {
		size_t k = find_field(d, params[i].name, strlen(params[i].name));
		if (k == d->nfields) {
			if (d->others_ignored)
				continue;
			return http_reject(c, E_BAD_REQUEST,
			                   arena_printf(c->arena, "unknown query parameter; use %s",
			                                joined(c->arena, d, NULL, " and ")));
		}
		const struct input_field *f = &d->fields[k];
		v[k].present = 1;
		v[k].s = params[i].value;
		v[k].len = params[i].value_len;
		v[k].valid = query_value_ok(c->arena, f, &v[k]);
		if (!v[k].valid && !(f->flags & IN_SOFT))
			return http_reject(c, E_BAD_REQUEST, bad_value(c->arena, f));
	}
	for (size_t k = 0; k < d->nfields; k++)
		if ((d->fields[k].flags & IN_REQUIRED) && (!v[k].present || v[k].len == 0))
			return http_reject(c, E_BAD_REQUEST, d->fields[k].missing);
	c->query = v;
	return E_OK;
}

static int cmp_id(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* IN_IDS: min..max positive integers, kept sorted and without repeats.
 * Records a field error and returns -1 when refused. */
static int read_ids(struct ctx *c, const struct input_field *f, const struct json_value *j,
                    struct input_value *v)
{
	if (j->type != JSON_ARRAY) {
		http_field_error(c, f->name, "must be an array of mail server ids");
		return -1;
	}
	size_t n = j->u.array.count;
	if ((long long)n < f->min || (long long)n > f->max) {
		http_field_error(
		    c, f->name,
		    arena_printf(c->arena, "must hold %lld to %lld ids", f->min, f->max));
		return -1;
	}
	long long *ids = arena_calloc(c->arena, n, sizeof(*ids));
	if (ids == NULL) {
		http_field_error(c, f->name, "is too long to process");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct json_value *e = j->u.array.items[i];
		if (e->type != JSON_NUMBER || !e->u.number.is_int || e->u.number.i < 1) {
			http_field_error(c, f->name, "must hold only positive integers");
			return -1;
		}
		ids[i] = e->u.number.i;
	}
	qsort(ids, n, sizeof(*ids), cmp_id);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || ids[u - 1] != ids[i])
			ids[u++] = ids[i];
	v->ids = ids;
	v->nids = u;
	return 0;
}

/* The body's members against the route's declared fields: every failing
 * field is reported at once (422); c->fields gets one value per field. */
static err_t check_fields(struct ctx *c, const struct input_decl *d)
{
	const struct json_value *body = c->body;
	struct input_value *v = arena_calloc(c->arena, d->nfields, sizeof(*v));
	if (v == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	for (size_t i = 0; i < body->u.object.count; i++) {
		const struct json_member *m = &body->u.object.members[i];
		size_t k = find_field(d, m->key, m->key_len);
		if (k == d->nfields) {
			http_field_error(c,
			                 strlen(m->key) == m->key_len ? m->key : "(key with NUL)",
			                 arena_printf(c->arena, "is not a field of a %s", d->what));
			continue;
		}
		v[k].present = 1;
		v[k].valid =
		    d->fields[k].kind == IN_IDS && read_ids(c, &d->fields[k], m->value, &v[k]) == 0;
	}
	for (size_t k = 0; k < d->nfields; k++)
		if ((d->fields[k].flags & IN_REQUIRED) && !v[k].present)
			http_field_error(c, d->fields[k].name, "is required");
	if (c->nerrors > 0)
		return http_reject(c, E_VALIDATION,
		                   arena_printf(c->arena, "the %s request is invalid", d->what));
	c->fields = v;
	return E_OK;
}

const char *router_allow(struct arena *a, const struct route *r)
{
	const char *s = "";
	for (size_t i = 0; i < ROUTE_MAX_METHODS && r->methods[i].name != NULL && s != NULL; i++) {
		const char *name = r->methods[i].name;
		s = arena_printf(a, "%s%s%s%s", s, i == 0 ? "" : ", ", name,
		                 strcmp(name, "GET") == 0 ? ", HEAD" : "");
	}
	return s;
}

/* ---- the flow ---- */

err_t router_resolve(struct ctx *c, handler_fn *fn, int *needs_db)
{
	*fn = NULL;
	*needs_db = 0;
	const char *path = c->req->path;
	if (strcmp(path, "/healthz") == 0) {
		if (strcmp(c->req->method, "GET") != 0 && strcmp(c->req->method, "HEAD") != 0) {
			c->allow = "GET, HEAD";
			return http_reject(c, E_METHOD_NOT_ALLOWED, "use GET");
		}
		*fn = health_handle; /* reaches the database itself */
		return E_OK;
	}
	static const char prefix[] = "/api/v1/";
	if (strncmp(path, prefix, sizeof(prefix) - 1) != 0)
		return http_reject(c, E_NOT_FOUND, "no such resource");
	path += sizeof(prefix) - 1;

	const struct route *route = NULL;
	const char *id_seg = NULL;
	size_t id_len = 0;
	for (size_t i = 0; i < router_nroutes && route == NULL; i++)
		if (router_match(router_routes[i].path, path, &id_seg, &id_len))
			route = &router_routes[i];
	if (route != NULL && route->no_referrer)
		http_header(c, "Referrer-Policy", "no-referrer");

	/* Everything under /api/v1 but the callback needs the token, even to
	 * learn that a path does not exist. */
	err_t e;
	if ((route == NULL || !route->public) && (e = authenticate(c)) != E_OK)
		return e;
	if (route == NULL)
		return http_reject(c, E_NOT_FOUND, "no such resource");

	/* HEAD is GET without the body (RFC 9110 section 9.3.2): the same
	 * handler, status and headers; the FastCGI layer leaves the body out. */
	const char *method = strcmp(c->req->method, "HEAD") == 0 ? "GET" : c->req->method;
	const struct route_method *m = NULL;
	for (size_t i = 0; i < ROUTE_MAX_METHODS && route->methods[i].name != NULL; i++)
		if (strcmp(route->methods[i].name, method) == 0)
			m = &route->methods[i];
	if (m == NULL) {
		c->allow = router_allow(c->arena, route);
		return http_reject(c, E_METHOD_NOT_ALLOWED,
		                   "this method is not allowed on this resource");
	}
	if (id_seg != NULL && text_parse_positive_id(id_seg, id_len, &c->id) != 0)
		return http_reject(c, E_NOT_FOUND, "no mail server has this id");
	if (m->body != BODY_IGNORED && (e = read_body(c, m->body)) != E_OK)
		return e;
	if (m->query != NULL && (e = check_query(c, m->query)) != E_OK)
		return e;
	if (m->fields != NULL && (e = check_fields(c, m->fields)) != E_OK)
		return e;
	if (m->read != NULL && (e = m->read(c)) != E_OK)
		return e;
	*fn = m->fn;
	*needs_db = 1;
	return E_OK;
}

err_t router_dispatch(struct ctx *c)
{
	handler_fn fn;
	int needs_db;
	err_t e = router_resolve(c, &fn, &needs_db);
	if (e != E_OK)
		return e;
	if (needs_db && (e = db_ensure(c->w->db)) != E_OK)
		return http_reject_db(c, e, DB_READ);
	return fn(c);
}

err_t health_handle(struct ctx *c)
{
	err_t e = db_ensure(c->w->db);
	if (e == E_OK)
		e = db_exec(c->w->db, ST_HEALTH, 0, NULL, NULL, NULL, NULL);
	if (e != E_OK)
		return http_reject(c, E_DB_UNAVAILABLE, "the database is unavailable");
	json_out_object_open(c->out);
	json_out_key(c->out, "status");
	json_out_cstring(c->out, "ok");
	json_out_object_close(c->out);
	return http_json(c, 200);
}
