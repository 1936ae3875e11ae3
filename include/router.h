/*
 * router.h - from a request context to its handler (src/router.c): the
 * route table, the bearer token, the method, the path id, and the input each
 * route declares (query parameters, body kind, body fields), checked and
 * converted before the handler runs, in the manner of kcgi's struct kvalid.
 *
 * A handler file declares the input of its routes beside the handlers: an
 * enum of field positions and a table of struct input_field in that order.
 * The router fills c->query (or c->fields) in the same order, so the handler
 * reads c->query[MS_LIST_LIMIT].i and nothing else.
 */
#ifndef MAILSRV_ROUTER_H
#define MAILSRV_ROUTER_H

#include <stddef.h>

#include "err.h"
#include "handlers.h"

struct arena;
struct ctx;
struct input_value;

/* How a declared field is checked and converted. */
enum input_kind {
	IN_INT,     /* query: a plain decimal in [min, max] -> i */
	IN_TEXT,    /* query: UTF-8 without control characters, at most max
	             * characters -> s, len */
	IN_KEYWORD, /* query: one of words (IN_SIGNED: a leading '-' sets
	             * negated) -> i, the word's index */
	IN_FUNC,    /* query: check() decides and converts */
	IN_IDS,     /* JSON body: an array of min..max positive integers ->
	             * ids, nids: sorted, each id once */
};

/* Flags of a field. */
#define IN_REQUIRED 0x1 /* absent or empty: 400 with the field's `missing` */
#define IN_SOFT     0x2 /* a bad value is no error: the handler sees valid 0 */
#define IN_SIGNED   0x4 /* IN_KEYWORD: a leading '-' is allowed */

struct input_field {
	const char *name;
	enum input_kind kind;
	unsigned flags;
	long long min, max;       /* IN_INT: the range; IN_TEXT: max characters;
	                           * IN_IDS: how many ids */
	long long dflt;           /* i when the field is absent */
	const char *const *words; /* IN_KEYWORD: NULL-terminated */
	/* IN_FUNC: 1 when s[0..len) is acceptable, after filling v (v->s and
	 * v->len already hold the decoded value). */
	int (*check)(struct arena *a, const char *s, size_t len, struct input_value *v);
	const char *missing; /* IN_REQUIRED: the 400 detail */
};

/* The declared input of one side (a query string or a JSON body). */
struct input_decl {
	const struct input_field *fields;
	size_t nfields;
	/* Query: parameters not declared are ignored instead of refused (the
	 * OAuth callback: providers add their own). */
	int others_ignored;
	/* Body: what the request is called in its messages ("batch delete"). */
	const char *what;
};

/* What a route's body must be. */
enum body_kind {
	BODY_IGNORED,       /* GET, DELETE: whatever is sent is not read */
	BODY_REFUSED,       /* a non-empty body is a 400 (413 above the cap) */
	BODY_JSON,          /* application/json object */
	BODY_JSON_OR_EMPTY, /* the same, and no body at all reads as {} */
	BODY_MERGE_PATCH,   /* application/merge-patch+json or application/json object */
};

struct route_method {
	const char *name;
	handler_fn fn;
	enum body_kind body;
	/* NULL: the route takes no query parameters and the query string is
	 * not looked at. */
	const struct input_decl *query;
	/* BODY_JSON: the fields the router reads into c->fields (NULL: the
	 * resource's own table reads c->body, see `read`). */
	const struct input_decl *fields;
	/* BODY_JSON: run after the body parsed, before the database (the
	 * create's field table, ms_read_create). PUT and PATCH have none: their
	 * field rules need the stored row, so ms_input_parse reads the body in
	 * the update's transaction. */
	err_t (*read)(struct ctx *c);
};

#define ROUTE_MAX_METHODS 4

struct route {
	const char *template; /* the full path template, "/api/v1/mail-servers/{id}":
	                       * what logs and metrics name the route by */
	const char *path;     /* the same under /api/v1/, "{id}" matches one segment */
	int public;           /* no bearer token (the OAuth callback) */
	int no_referrer;      /* answers carry Referrer-Policy: no-referrer */
	struct route_method methods[ROUTE_MAX_METHODS];
};

/* A route's template and path from one literal: ROUTE("mail-servers/{id}"). */
#define ROUTE_PREFIX "/api/v1/"
#define ROUTE(p)     ROUTE_PREFIX p, &(ROUTE_PREFIX p)[sizeof(ROUTE_PREFIX) - 1]

/* The table, literal paths before the {id} pattern they would also match. */
extern const struct route router_routes[];
extern const size_t router_nroutes;
/* 1 when path (after "/api/v1/") matches pattern; *id_seg and *id_len get
 * the {id} segment when there is one. */
int router_match(const char *pattern, const char *path, const char **id_seg, size_t *id_len);

/* The Allow header of a route: its methods, ", "-separated, HEAD after GET
 * (every GET route answers HEAD too), in the arena. */
const char *router_allow(struct arena *a, const struct route *r);

/*
 * Everything before the handler: match the route, authenticate, check the
 * method (HEAD takes the route's GET), parse the {id}, bound and parse the body, check the query
 * and body fields. E_OK with *fn the handler and *needs_db whether the database must be reached
 * first; else the err_t (detail set) for the problem mapping. Touches neither the database nor the
 * network.
 */
err_t router_resolve(struct ctx *c, handler_fn *fn, int *needs_db);

/* Route c->req and run its handler. E_OK with c->resp set, or the err_t
 * (with c->detail and c->errors) that app_handle turns into a problem. */
err_t router_dispatch(struct ctx *c);

#endif
