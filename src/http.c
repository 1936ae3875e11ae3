/*
 * http.c - response helpers, the single err_t -> problem details mapping
 * (RFC 9457), media types, query strings and If-Match.
 */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "json.h"
#include "log.h"
#include "mailsrv_limits.h"
#include "validate.h"

struct problem_def {
	int status;
	const char *slug; /* last path segment of the type URI */
	const char *title;
};

/* The one mapping. Type URIs are "/problems/<slug>" (relative references,
 * RFC 9457 section 3.1.1); integrators branch on the slug. */
static const struct problem_def problems[E__COUNT] = {
    [E_OK] = {200, "ok", "OK"},
    [E_BAD_REQUEST] = {400, "bad-request", "Bad request"},
    [E_VALIDATION] = {422, "validation", "Validation failed"},
    [E_UNAUTHORIZED] = {401, "unauthorized", "Unauthorized"},
    [E_FORBIDDEN] = {403, "forbidden", "Forbidden"},
    [E_NOT_FOUND] = {404, "not-found", "Not found"},
    [E_METHOD_NOT_ALLOWED] = {405, "method-not-allowed", "Method not allowed"},
    [E_CONFLICT] = {409, "conflict", "Conflict"},
    [E_PRECONDITION_FAILED] = {412, "precondition-failed", "Precondition failed"},
    [E_PAYLOAD_TOO_LARGE] = {413, "payload-too-large", "Payload too large"},
    [E_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported-media-type", "Unsupported media type"},
    [E_RATE_LIMITED] = {429, "rate-limited", "Too many requests"},
    [E_DB_UNAVAILABLE] = {503, "database-unavailable", "Database unavailable"},
    [E_OAUTH2_PROVIDER] = {502, "oauth2-provider-error", "OAuth 2.0 provider error"},
    [E_DESTINATION_REFUSED] = {502, "destination-refused", "Destination refused"},
    [E_UPSTREAM_UNREACHABLE] = {502, "upstream-unreachable", "Upstream unreachable"},
    /* 502 like the other outbound failures (a failed refresh answers 502
     * whose type names the cause: docs/api.md, "OAuth 2.0"). */
    [E_UPSTREAM_TIMEOUT] = {502, "upstream-timeout", "Upstream timeout"},
    /* Connection tests beyond a process's share of threads (they may hold
     * a thread for MAILSRV_TEST_TIMEOUT): the rest of the API keeps its. */
    [E_SERVICE_BUSY] = {503, "service-busy", "Service busy"},
    /* The request is fine, the server's stored state is not: like the other
     * "not ready" answers of the OAuth operations (docs/api.md, "Errors"). */
    [E_SECRET_UNREADABLE] = {409, "conflict", "Conflict"},
    [E_INTERNAL] = {500, "internal", "Internal error"},
};

void http_header(struct ctx *c, const char *name, const char *value)
{
	if (value == NULL || strpbrk(value, "\r\n") != NULL)
		return;
	struct http_response *r = c->resp;
	if (r->nheaders == HTTP_MAX_HEADERS) {
		log_error("response header \"%s\" dropped: too many headers", name);
		return;
	}
	r->headers[r->nheaders].name = name;
	r->headers[r->nheaders].value = value;
	r->nheaders++;
}

err_t http_json(struct ctx *c, int status)
{
	const char *buf;
	size_t len;
	if (json_out_result(c->out, &buf, &len) != 0)
		return http_reject(c, E_INTERNAL, "could not produce the response document");
	c->resp->status = status;
	c->resp->content_type = "application/json";
	c->resp->body = buf;
	c->resp->body_len = len;
	return E_OK;
}

void http_empty(struct ctx *c, int status)
{
	c->resp->status = status;
	c->resp->content_type = NULL;
	c->resp->body = NULL;
	c->resp->body_len = 0;
}

err_t http_reject(struct ctx *c, err_t e, const char *detail)
{
	c->detail = detail;
	return e;
}

void http_field_error(struct ctx *c, const char *field, const char *message)
{
	if (c->nerrors < MAX_FIELD_ERRORS) {
		c->errors[c->nerrors].field = field;
		c->errors[c->nerrors].message = message;
		c->nerrors++;
	}
}

void http_problem(struct ctx *c, err_t e)
{
	if (e <= E_OK || e >= E__COUNT)
		e = E_INTERNAL;
	const struct problem_def *p = &problems[e];
	struct json_out *o = c->out;
	/* Drop any half-written success document. */
	json_out_reset(o);
	json_out_object_open(o);
	json_out_key(o, "type");
	char type[64];
	snprintf(type, sizeof(type), "/problems/%s", p->slug);
	json_out_cstring(o, type);
	json_out_key(o, "title");
	json_out_cstring(o, p->title);
	json_out_key(o, "status");
	json_out_int(o, p->status);
	json_out_key(o, "detail");
	json_out_cstring(o, c->detail ? c->detail : p->title);
	if (e == E_SECRET_UNREADABLE && c->error_code == NULL)
		c->error_code = "secret_unreadable";
	if (c->error_code != NULL) {
		json_out_key(o, "error_code");
		json_out_cstring(o, c->error_code);
	}
	if (c->req->request_id[0] != '\0') {
		json_out_key(o, "request_id");
		json_out_cstring(o, c->req->request_id);
	}
	if (e == E_VALIDATION || (e == E_CONFLICT && c->nerrors > 0)) {
		json_out_key(o, "errors");
		json_out_array_open(o);
		for (size_t i = 0; i < c->nerrors; i++) {
			json_out_object_open(o);
			json_out_key(o, "field");
			json_out_cstring(o, c->errors[i].field);
			json_out_key(o, "message");
			json_out_cstring(o, c->errors[i].message);
			json_out_object_close(o);
		}
		json_out_array_close(o);
	}
	json_out_object_close(o);

	struct http_response *r = c->resp;
	const char *buf;
	size_t len;
	if (json_out_result(o, &buf, &len) != 0) {
		/* Only a broken yajl_gen gets here; answer without a body. */
		buf = NULL;
		len = 0;
	}
	r->status = p->status;
	r->content_type = buf ? "application/problem+json" : NULL;
	r->body = buf;
	r->body_len = len;
	if (e == E_UNAUTHORIZED)
		http_header(c, "WWW-Authenticate",
		            c->req->authorization ? "Bearer error=\"invalid_token\"" : "Bearer");
	if (e == E_METHOD_NOT_ALLOWED && c->allow)
		http_header(c, "Allow", c->allow);
	if (c->retry_after > 0 || e == E_DB_UNAVAILABLE) {
		int s = c->retry_after > 0 ? c->retry_after : RETRY_AFTER_DB_S;
		http_header(c, "Retry-After", arena_printf(c->arena, "%d", s));
	}
	if (e == E_INTERNAL)
		log_error("internal error: %s", c->detail ? c->detail : "(no detail)");
}

/* Percent-decode s[0..len) into the arena ('+' means space, HTML forms). */
static char *pct_decode(struct arena *a, const char *s, size_t len, size_t *outlen)
{
	char *out = arena_alloc(a, len + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			if (i + 2 >= len)
				return NULL;
			int hi = text_hex_digit((unsigned char)s[i + 1]),
			    lo = text_hex_digit((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return NULL;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

int query_parse(struct arena *a, const char *qs, struct query_param **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	size_t total = strlen(qs);
	if (total > QUERY_STRING_MAX_BYTES)
		return -1;
	struct query_param *params = arena_calloc(a, QUERY_MAX_PARAMS, sizeof(*params));
	if (params == NULL)
		return -1;
	size_t count = 0;
	const char *p = qs;
	while (*p != '\0') {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);
		if (plen > 0) {
			if (count == QUERY_MAX_PARAMS)
				return -1;
			const char *eq = memchr(p, '=', plen);
			size_t nlen = eq ? (size_t)(eq - p) : plen;
			size_t name_len, vlen = 0;
			char *name = pct_decode(a, p, nlen, &name_len);
			char *value = eq ? pct_decode(a, eq + 1, plen - nlen - 1, &vlen)
			                 : arena_strdup(a, "");
			if (name == NULL || value == NULL || strlen(name) != name_len)
				return -1;
			for (size_t i = 0; i < count; i++)
				if (strcmp(params[i].name, name) == 0)
					return -1; /* a repeated parameter is ambiguous */
			params[count].name = name;
			params[count].value = value;
			params[count].value_len = vlen;
			count++;
		}
		if (end == NULL)
			break;
		p = end + 1;
	}
	*out = params;
	*n = count;
	return 0;
}

long long http_parse_msec(const char *v)
{
	/* Seconds: ten or eleven digits (from 2001 until far beyond any clock
	 * this runs on). */
	if (v == NULL)
		return 0;
	long long ms = 0;
	size_t i = 0;
	for (; v[i] >= '0' && v[i] <= '9'; i++) {
		if (i == 11)
			return 0;
		ms = ms * 10 + (v[i] - '0');
	}
	if (i < 10 || v[i] != '.')
		return 0;
	for (size_t k = 1; k <= 3; k++) {
		if (v[i + k] < '0' || v[i + k] > '9')
			return 0;
		ms = ms * 10 + (v[i + k] - '0');
	}
	return v[i + 4] == '\0' ? ms : 0;
}

const char *http_cookie_get(struct arena *a, const char *header, const char *name)
{
	if (header == NULL || strlen(header) > COOKIE_HEADER_MAX_BYTES)
		return NULL;
	size_t nl = strlen(name);
	const char *p = header;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (eq != NULL && (size_t)(eq - p) == nl && memcmp(p, name, nl) == 0) {
			const char *v = eq + 1;
			size_t vl = len - nl - 1;
			while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
				vl--;
			return arena_strndup(a, v, vl);
		}
		p += len;
	}
	return NULL;
}

int if_match_ok(const char *if_match, long long version)
{
	const char *p = if_match;
	char want[32];
	int wl = snprintf(want, sizeof(want), "\"%lld\"", version);
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		const char *start = p;
		while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
			p++;
		size_t len = (size_t)(p - start);
		if (len == 1 && *start == '*')
			return 1;
		/* If-Match uses the strong comparison: W/ tags never match. */
		if (len == (size_t)wl && memcmp(start, want, len) == 0)
			return 1;
	}
}
