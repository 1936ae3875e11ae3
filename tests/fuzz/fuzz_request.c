/*
 * fuzz_request.c - libFuzzer target for what the service makes of a request
 * before the database: the query string (query_parse), If-Match
 * (if_match_ok), media types (text_media_type_is), the {id} segment
 * (text_parse_positive_id), the body's field validation for create, replace and
 * merge patch (ms_input_parse, ms_merge_patch) and the secret rules
 * (ms_plan_change) against a fuzzed stored row, and the whole router
 * (app_handle: route, bearer token, method, id, body size, media type, JSON)
 * up to the database, which here is unreachable (a unix socket that does not
 * exist), so a request that gets that far ends in 503.
 *
 * The input is lines: method, path, query string, Content-Type, If-Match,
 * Authorization, the stored row, then the body (the rest, newlines and all).
 * In the Authorization line "@admin" and "@user" stand for valid tokens with
 * and without the administrator role, "-" for no header. The row line is
 * flags (o oauth2, d default, s ssl, p password set, k secret key set, a
 * access token set, r refresh token set, u no username) optionally followed
 * by '|' and fields: name|server|port|sender_name|sender_email|username|
 * client_id|authorization_url|token_url|scope|oauth2_status.
 *
 * Besides "no crash, no leak, no UB" it checks properties:
 *   - query_parse: at most QUERY_MAX_PARAMS distinct names without NUL, values
 *     NUL-terminated, and a query over QUERY_STRING_MAX_BYTES refused;
 *   - if_match_ok agrees with a plain reading of RFC 9110 13.1.1 (a list of
 *     tags; "*" or the exact strong tag matches);
 *   - text_parse_positive_id accepts exactly the canonical decimals of 1..2^63-1;
 *   - an accepted body holds only values its validators accept; a refused
 *     one names at least one field;
 *   - the plan keeps a secret only when its destination is unchanged,
 *     clears the other auth type's secrets, and moves the default only
 *     onto a server that was not the default;
 *   - the router answers a known status, never 500, with a JSON body that
 *     parses, headers without CR or LF.
 * Build and run with tests/fuzz/run_brief.sh (its options file
 * fuzz_request.options closes the target's stderr: the service logs a line
 * per request that reaches the unreachable database).
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "metrics.h"
#include "jwt.h"
#include "mail_server.h"
#include "mailsrv_limits.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A unix socket directory that does not exist: libpq fails at once. */
#define UNREACHABLE_DB "host=/nonexistent/fuzz_request port=1 dbname=x user=x connect_timeout=1"

static const char hs_secret[] = "fuzz-request-hs256-secret-0123456789abcdef\n";

static struct app app;
static struct worker w;
static struct arena *scratch; /* the fuzz target's own copies */
static struct arena *keep;    /* the tokens, for the whole run */
static const char *admin_token, *user_token;

static void init(void)
{
	char dir[] = "/tmp/fuzz_request.XXXXXX", path[256], err[256];
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/hs.key", dir);
	FILE *f = fopen(path, "w");
	/* owner-only, as src/crypto.c requires of a secret key file */
	if (f == NULL || fchmod(fileno(f), 0600) != 0 || fputs(hs_secret, f) < 0 || fclose(f) != 0)
		abort();
	memset(&app, 0, sizeof(app));
	if (sig_key_load(SIG_HS256, path, 0, &app.jwt_key, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_request: %s\n", err);
		abort();
	}
	unlink(path);
	rmdir(dir);
	app.jwt.key = app.jwt_key;
	app.jwt.leeway_s = 30;
	app.cfg.database_url = UNREACHABLE_DB;
	app.cfg.processes = app.cfg.threads = 1;
	app.cfg.public_url = "https://mail.example.com";
	app.cfg.console_url = "https://console.example.com/";
	app.cfg.test_rate = 6;
	if (worker_init(&w, &app) != 0)
		abort();
	scratch = arena_new(MAX_ARENA_BYTES);
	keep = arena_new(64 * 1024);
	if (scratch == NULL || keep == NULL)
		abort();
	time_t now = time(NULL);
	admin_token =
	    jwt_issue(app.jwt_key, keep, "fuzz", "administrator", 7 * 86400, now, NULL, NULL);
	user_token = jwt_issue(app.jwt_key, keep, "fuzz", "auditor", 7 * 86400, now, NULL, NULL);
	if (admin_token == NULL || user_token == NULL)
		abort();
}

/* ---- the pieces of the input ---- */

struct cursor {
	const char *p;
	size_t left;
};

/* The next line (without its newline) as a NUL-terminated copy; a request
 * field cannot hold NUL (FastCGI parameters are C strings), so it ends at
 * the first one. */
static const char *next_line(struct cursor *c)
{
	const char *nl = memchr(c->p, '\n', c->left);
	size_t n = nl ? (size_t)(nl - c->p) : c->left;
	char *s = arena_strndup(scratch, c->p, n);
	if (s == NULL)
		abort();
	c->p += n + (nl != NULL);
	c->left -= n + (nl != NULL);
	return s;
}

/* ---- references ---- */

/* RFC 9110 13.1.1 read plainly: tags separated by commas and spaces. */
static int if_match_reference(const char *h, long long version)
{
	char want[32];
	snprintf(want, sizeof(want), "\"%lld\"", version);
	size_t wl = strlen(want);
	const char *p = h;
	while (*p != '\0') {
		size_t n = strcspn(p, ", \t");
		if ((n == 1 && p[0] == '*') || (n == wl && memcmp(p, want, n) == 0))
			return 1;
		p += n;
		p += strspn(p, ", \t");
	}
	return 0;
}

static void check_query(const char *qs)
{
	struct query_param *params;
	size_t n;
	int rc = query_parse(scratch, qs, &params, &n);
	if (strlen(qs) > QUERY_STRING_MAX_BYTES && rc == 0)
		abort();
	if (rc != 0)
		return;
	if (n > QUERY_MAX_PARAMS)
		abort();
	for (size_t i = 0; i < n; i++) {
		if (params[i].name == NULL || params[i].value == NULL ||
		    params[i].value[params[i].value_len] != '\0')
			abort();
		for (size_t j = 0; j < i; j++)
			if (strcmp(params[i].name, params[j].name) == 0)
				abort();
	}
}

static void check_if_match(const char *h)
{
	static const long long versions[] = {1, 2, 42, 1000000, LLONG_MAX};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
		if (if_match_ok(h, versions[i]) != if_match_reference(h, versions[i]))
			abort();
}

static void check_id(const char *path)
{
	const char *seg = strrchr(path, '/');
	seg = seg ? seg + 1 : path;
	size_t len = strlen(seg);
	long long id;
	if (text_parse_positive_id(seg, len, &id) != 0)
		return;
	char back[32];
	snprintf(back, sizeof(back), "%lld", id);
	if (id <= 0 || strlen(back) != len || memcmp(back, seg, len) != 0)
		abort();
}

static void check_media_type(const char *ct)
{
	static const char *const types[] = {"application/json", "application/merge-patch+json"};
	for (size_t i = 0; i < 2; i++) {
		if (!text_media_type_is(ct, types[i]))
			continue;
		const char *p = ct + strspn(ct, " \t");
		if (strncasecmp(p, types[i], strlen(types[i])) != 0)
			abort();
	}
}

/* ---- the stored row ---- */

/* A stored text column: valid UTF-8 (the database's encoding), so a field
 * that is not keeps the default. "~" is SQL NULL. */
static const char *field_or(char **fields, size_t nfields, size_t i, const char *dflt)
{
	if (i >= nfields || fields[i][0] == '\0' || !utf8_valid(fields[i], strlen(fields[i])))
		return dflt;
	if (strcmp(fields[i], "~") == 0)
		return NULL;
	return fields[i];
}

static void make_row(const char *spec, struct ms_row *r)
{
	memset(r, 0, sizeof(*r));
	char *copy = arena_strdup(scratch, spec);
	if (copy == NULL)
		abort();
	char *fields[11];
	size_t nf = 0;
	char *bar = strchr(copy, '|');
	if (bar != NULL) {
		*bar = '\0';
		char *s = bar + 1;
		while (nf < 11) {
			fields[nf++] = s;
			char *next = strchr(s, '|');
			if (next == NULL)
				break;
			*next = '\0';
			s = next + 1;
		}
	}
	const char *flags = copy;
	int oauth = strchr(flags, 'o') != NULL;
	r->id = 7;
	r->auth = oauth ? AUTH_OAUTH2 : AUTH_BASIC;
	r->is_default = strchr(flags, 'd') != NULL;
	r->enable_ssl = strchr(flags, 's') != NULL;
	r->password_set = !oauth && strchr(flags, 'p') != NULL;
	r->secret_key_set = oauth && strchr(flags, 'k') != NULL;
	r->access_token_set = oauth && strchr(flags, 'a') != NULL;
	r->refresh_token_set = oauth && strchr(flags, 'r') != NULL;
	r->name = field_or(fields, nf, 0, "Office relay");
	r->server = field_or(fields, nf, 1, "smtp.example.com");
	const char *port = field_or(fields, nf, 2, "587");
	r->port = port ? atoi(port) : 587;
	r->sender_name = field_or(fields, nf, 3, "Security console");
	r->sender_email = field_or(fields, nf, 4, "alerts@example.com");
	/* The data layer never gives NULL for the required columns. */
	if (!r->name || !r->server || !r->sender_name || !r->sender_email)
		r->name = r->server = r->sender_name = r->sender_email = "x";
	if (!oauth) {
		r->username = strchr(flags, 'u') ? NULL : field_or(fields, nf, 5, "alerts");
	} else {
		r->client_id = field_or(fields, nf, 6, "0f4c1c1e-7d43-4e8f-9a59-0c7b5c0b8f10");
		r->authorization_url = field_or(fields, nf, 7, "https://login.example.com/a");
		r->token_url = field_or(fields, nf, 8, "https://login.example.com/t");
		r->scope = field_or(fields, nf, 9, "offline_access");
		r->oauth2_status = field_or(fields, nf, 10, "connected");
	}
	r->created_at = r->updated_at = "2026-01-01T00:00:00Z";
	r->version = 3;
}

/* ---- validation and the secret rules ---- */

static void ctx_for(struct ctx *c, const struct http_request *req, struct http_response *resp)
{
	memset(c, 0, sizeof(*c));
	c->w = &w;
	c->arena = w.arena;
	c->req = req;
	c->resp = resp;
	c->out = w.out;
}

static int str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* An accepted input holds only what the validators accept. */
static void check_input(struct arena *a, const struct ms_input *in)
{
	if (in->name == NULL || in->server == NULL || in->sender_name == NULL ||
	    in->sender_email == NULL)
		abort();
	if (validate_text(in->name, strlen(in->name), 1, NAME_MAX_CHARS) != NULL ||
	    validate_text(in->sender_name, strlen(in->sender_name), 1, SENDER_NAME_MAX_CHARS) !=
	        NULL)
		abort();
	if (in->port < 1 || in->port > 65535)
		abort();
	if (in->auth == AUTH_BASIC) {
		if (in->client_id || in->authorization_url || in->token_url || in->scope)
			abort();
		if (in->secret_key.op != SECRET_CLEAR || in->access_token.op != SECRET_CLEAR ||
		    in->refresh_token.op != SECRET_CLEAR)
			abort();
	} else {
		if (in->username != NULL || in->password.op != SECRET_CLEAR)
			abort();
		if (in->client_id == NULL || in->authorization_url == NULL || in->token_url == NULL)
			abort();
		/* What is stored is already the normalized form: it validates
		 * and normalizes to itself. */
		const char *u[] = {in->authorization_url, in->token_url};
		for (size_t i = 0; i < 2; i++) {
			const char *norm;
			if (validate_https_url(a, u[i], strlen(u[i]), &norm) != NULL ||
			    strcmp(norm, u[i]) != 0)
				abort();
		}
	}
	const struct secret_in *s[] = {&in->password, &in->secret_key, &in->access_token,
	                               &in->refresh_token};
	for (size_t i = 0; i < 4; i++)
		if (s[i]->op == SECRET_SET &&
		    (s[i]->value == NULL || s[i]->len == 0 ||
		     validate_secret(s[i]->value, s[i]->len, SECRET_MAX_BYTES) != NULL))
			abort();
}

static void check_plan(const struct ms_row *cur, const struct ms_input *in)
{
	struct ms_change ch;
	ms_plan_change(cur, in, &ch);
	if (ch.in != in)
		abort();
	if (ch.move_default != (in->is_default && (cur == NULL || !cur->is_default)))
		abort();
	if (in->auth == AUTH_BASIC) {
		int moved = cur == NULL || cur->auth != AUTH_BASIC ||
		            !str_eq(cur->server, in->server) || cur->port != in->port;
		if (moved && ch.password.op == SECRET_KEEP)
			abort();
		if (!moved && ch.password.op != in->password.op)
			abort();
		if (ch.secret_key.op != SECRET_CLEAR || ch.access_token.op != SECRET_CLEAR ||
		    ch.refresh_token.op != SECRET_CLEAR || ch.oauth2_status != NULL)
			abort();
	} else {
		int moved = cur == NULL || cur->auth != AUTH_OAUTH2 ||
		            !str_eq(cur->token_url, in->token_url) ||
		            !str_eq(cur->authorization_url, in->authorization_url) ||
		            !str_eq(cur->client_id, in->client_id);
		const struct secret_in *s[] = {&ch.secret_key, &ch.access_token, &ch.refresh_token};
		for (size_t i = 0; i < 3; i++)
			if (moved && s[i]->op == SECRET_KEEP)
				abort();
		if (ch.password.op != SECRET_CLEAR)
			abort();
		if (!ch.keep_oauth2_state && !str_eq(ch.oauth2_status, "connected") &&
		    !str_eq(ch.oauth2_status, "not_connected"))
			abort();
	}
}

/* Parse body as the mode's write of cur (NULL for a create): refused with
 * field errors or accepted without, and when accepted, the input and its
 * plan must keep the rules. */
static err_t check_parse(struct ctx *c, const struct json_value *body, enum ms_mode mode,
                         const struct ms_row *cur)
{
	struct ms_input in;
	err_t e = ms_input_parse(c, body, mode, cur, &in);
	if ((e == E_OK) != (c->nerrors == 0))
		abort();
	if (e == E_OK) {
		check_input(c->arena, &in);
		check_plan(cur, &in);
	}
	return e;
}

static void check_body(const struct http_request *req, const struct json_value *body,
                       const struct ms_row *cur)
{
	struct http_response resp;
	struct ctx c;

	/* POST: a create. */
	ctx_for(&c, req, &resp);
	err_t e = check_parse(&c, body, MS_CREATE, NULL);
	if (e != E_OK && e != E_VALIDATION)
		abort();

	/* PUT: a replace of cur. */
	ctx_for(&c, req, &resp);
	check_parse(&c, body, MS_REPLACE, cur);

	/* PATCH: merged onto cur, then a replace. */
	ctx_for(&c, req, &resp);
	const struct json_value *merged = NULL;
	e = ms_merge_patch(&c, cur, body, &merged);
	if (e == E_INTERNAL)
		return; /* the arena is full: the request would be refused */
	if (e != E_OK || merged == NULL || merged->type != JSON_OBJECT)
		abort();
	check_parse(&c, merged, MS_REPLACE, cur);
}

static void check_representation(const struct ms_row *r)
{
	json_out_reset(w.out);
	ms_row_to_json(w.out, r);
	const char *buf;
	size_t len;
	if (json_out_result(w.out, &buf, &len) != 0)
		return; /* a row string that is not UTF-8: the writer refuses it */
	struct json_value *v;
	if (json_parse(scratch, buf, len, &v, NULL, 0) != JSON_OK || v->type != JSON_OBJECT ||
	    json_get(v, "password") != NULL || json_get(v, "secret_key") != NULL)
		abort();
}

/* ---- the router ---- */

static void check_response(const struct http_response *r)
{
	static const int known[] = {200, 201, 204, 303, 400, 401, 403, 404, 405,
	                            409, 412, 413, 415, 422, 429, 502, 503};
	int ok = 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok |= r->status == known[i];
	if (!ok)
		abort();
	for (size_t i = 0; i < r->nheaders; i++)
		if (strpbrk(r->headers[i].value, "\r\n") != NULL ||
		    strpbrk(r->headers[i].name, "\r\n:") != NULL)
			abort();
	if (r->content_type == NULL) {
		if (r->body_len != 0)
			abort();
		return;
	}
	/* /metrics answers Prometheus' text format; everything else is JSON. */
	if (strcmp(r->content_type, METRICS_CONTENT_TYPE) == 0) {
		if (r->status != 200)
			abort();
		return;
	}
	if (strcmp(r->content_type, "application/json") != 0 &&
	    strcmp(r->content_type, "application/problem+json") != 0)
		abort();
	struct json_value *v;
	if (json_parse(scratch, r->body, r->body_len, &v, NULL, 0) != JSON_OK ||
	    v->type != JSON_OBJECT)
		abort();
	if (r->status >= 400) {
		const struct json_value *st = json_get(v, "status");
		if (st == NULL || st->type != JSON_NUMBER || st->u.number.i != r->status)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (scratch == NULL)
		init();
	if (size > MAX_BODY_BYTES + 4096)
		return 0;
	arena_reset(scratch);
	arena_reset(w.arena);

	struct cursor cur = {(const char *)data, size};
	struct http_request req;
	memset(&req, 0, sizeof(req));
	req.method = next_line(&cur);
	req.path = next_line(&cur);
	req.query = next_line(&cur);
	const char *ct = next_line(&cur);
	const char *im = next_line(&cur);
	const char *auth = next_line(&cur);
	const char *row_spec = next_line(&cur);
	req.content_type = ct[0] ? ct : NULL;
	req.if_match = im[0] ? im : NULL;
	if (strcmp(auth, "@admin") == 0)
		req.authorization = arena_printf(scratch, "Bearer %s", admin_token);
	else if (strcmp(auth, "@user") == 0)
		req.authorization = arena_printf(scratch, "Bearer %s", user_token);
	else if (strcmp(auth, "-") == 0)
		req.authorization = NULL;
	else
		req.authorization = auth;
	req.request_id = "0123456789abcdef0123456789abcdef";
	if (cur.left > MAX_BODY_BYTES) {
		req.body_too_large = 1;
	} else if (cur.left > 0 || req.content_type != NULL) {
		char *body = arena_strndup(scratch, cur.p, cur.left);
		if (body == NULL)
			abort();
		req.body = body;
		req.body_len = cur.left;
	}

	check_query(req.query);
	if (req.if_match != NULL)
		check_if_match(req.if_match);
	check_id(req.path);
	if (req.content_type != NULL)
		check_media_type(req.content_type);

	struct ms_row row;
	make_row(row_spec, &row);
	check_representation(&row);
	if (req.body != NULL) {
		struct json_value *root;
		if (json_parse(w.arena, req.body, req.body_len, &root, NULL, 0) == JSON_OK &&
		    root->type == JSON_OBJECT)
			check_body(&req, root, &row);
	}

	/* The whole router, in a fresh arena as after a response. */
	arena_reset(w.arena);
	struct http_response resp;
	app_handle(&w, &req, &resp);
	check_response(&resp);
	return 0;
}
