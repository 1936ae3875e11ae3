/*
 * http.h - our own request and response types (the rest of the code never
 * sees libfcgi), the per-request context, and the one mapping from err_t to
 * an HTTP status and RFC 9457 problem details.
 */
#ifndef MAILSRV_HTTP_H
#define MAILSRV_HTTP_H

#include <stddef.h>

#include "err.h"
#include "jwt.h"
#include "mailsrv_limits.h"

struct arena;
struct json_out;
struct json_value;
struct worker;

/* Every string is a NUL-terminated copy in the request arena. */
struct http_request {
	const char *method;         /* REQUEST_METHOD */
	const char *path;           /* DOCUMENT_URI: normalized path, no query */
	const char *query;          /* QUERY_STRING, "" when none */
	const char *content_type;   /* NULL when absent */
	const char *authorization;  /* NULL when absent */
	const char *if_match;       /* NULL when absent */
	const char *request_id;     /* from nginx, checked; "" when absent */
	const char *cookie;         /* HTTP_COOKIE, NULL when absent */
	const char *client_address; /* REMOTE_ADDR, checked; "" when absent */
	/* When the request reached nginx (REQUEST_ARRIVAL, nginx's $msec), in
	 * milliseconds since the epoch; 0 when absent or malformed. */
	long long arrival_ms;
	const char *body; /* NULL when none was read */
	size_t body_len;
	int body_too_large; /* CONTENT_LENGTH above MAX_BODY_BYTES: not read */
};

struct http_header {
	const char *name;
	const char *value; /* never holds CR or LF */
};

struct http_response {
	int status;
	const char *content_type; /* NULL: no body */
	struct http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	const char *body;
	size_t body_len;
	/* The matched route's template (struct ctx's route_template), NULL when
	 * no route matched: read by the FastCGI layer after the handler. */
	const char *route;
};

struct field_error {
	const char *field;   /* the JSON field name as the client sent it */
	const char *message; /* static, client-safe */
};

/* One declared input field as the router checked and converted it
 * (router.h: struct input_field says which members a kind fills). */
struct input_value {
	int present;          /* sent (a required field is always present) */
	int valid;            /* passed its check: always, unless IN_SOFT */
	long long i;          /* IN_INT, IN_KEYWORD; the default when absent */
	int negated;          /* IN_KEYWORD with IN_SIGNED: a leading '-' */
	const char *s;        /* the decoded text, NUL-terminated (may hold NUL) */
	size_t len;           /* bytes of s */
	const long long *ids; /* IN_IDS: ascending, without repeats */
	size_t nids;
};

/* What one request carries from the router to its handler. */
struct ctx {
	struct worker *w;
	struct arena *arena;
	const struct http_request *req;
	struct http_response *resp;
	struct json_out *out;          /* the response document */
	struct jwt_identity who;       /* the authenticated administrator */
	long long id;                  /* {id} from the path, 0 when none */
	const struct json_value *body; /* parsed JSON object, when the route has a body */
	/* The route's declared query parameters and body fields, checked and
	 * converted, in the order of its input_decl (NULL when it has none). */
	const struct input_value *query;
	const struct input_value *fields;
	const void *input; /* what the route's body reader made of the body */
	/* Problem details filled on the way out of a failing handler. */
	const char *detail;
	const char *allow;      /* 405: the Allow header */
	int retry_after;        /* >0: a Retry-After header */
	const char *error_code; /* a problem's "error_code" member (an OAuth 2.0
	                         * provider's error code or ours), NULL: none */
	struct field_error errors[MAX_FIELD_ERRORS];
	size_t nerrors;
	/* The matched route ("/api/v1/mail-servers/{id}"), set by the router;
	 * NULL when no route matched. Logs and metrics use it, never the raw
	 * path. */
	const char *route_template;
};

/* Add a response header (name and value must outlive the response: static
 * or in the arena). Values holding CR/LF are dropped. */
void http_header(struct ctx *c, const char *name, const char *value);

/* Finish ctx->out as the response body with this status. E_INTERNAL when
 * the document could not be produced. */
err_t http_json(struct ctx *c, int status);
/* An empty response (204). */
void http_empty(struct ctx *c, int status);

/* Set detail and return e: `return http_reject(c, E_NOT_FOUND, "no such server");` */
err_t http_reject(struct ctx *c, err_t e, const char *detail);
/* Record a field error for a 422 (beyond MAX_FIELD_ERRORS they are counted
 * into the last one). */
void http_field_error(struct ctx *c, const char *field, const char *message);

/* Write the problem details for e into the response. */
void http_problem(struct ctx *c, err_t e);

/* Query string: name=value pairs, percent-decoded ('+' is a space). */
struct query_param {
	const char *name;
	const char *value;
	size_t value_len; /* may hold NUL after decoding */
};
/* -1 when malformed (bad escape, repeated name, too long, too many). */
int query_parse(struct arena *a, const char *qs, struct query_param **out, size_t *n);

/* nginx's $msec ("1712345678.123": seconds, a dot, milliseconds) as
 * milliseconds since the epoch; 0 when v is NULL or anything else. */
long long http_parse_msec(const char *v);

/* The value of the first cookie called name in a Cookie header (RFC 6265
 * section 5.4: "a=1; b=2"), a copy in the arena; NULL when there is none, or
 * when the header is longer than COOKIE_HEADER_MAX_BYTES. */
const char *http_cookie_get(struct arena *a, const char *header, const char *name);

/* If-Match (RFC 9110 section 13.1.1) against the current version: 1 when it
 * matches ("*" or one of the listed strong tags), 0 when not. */
int if_match_ok(const char *if_match, long long version);

#endif
