/*
 * mail_server.c - the mail server resource: its declared input (one table
 * of fields with their kind and rule, see docs/api.md), the merge patch,
 * the secret rules, and its JSON representation.
 */
#include "mail_server.h"

#include <string.h>

#include "app.h"
#include "arena.h"
#include "http.h"
#include "json.h"
#include "mailsrv_limits.h"
#include "outbound.h"
#include "validate.h"

enum field_kind {
	K_NAME, /* text 1-100 characters after trimming */
	K_HOST,
	K_PORT,
	K_EMAIL,
	K_BOOL,
	K_AUTH_TYPE,
	K_OPT_TEXT, /* optional text, max chars in `max` */
	K_URL,      /* absolute https URL */
	K_SCOPE,
	K_SECRET,    /* write-only */
	K_READ_ONLY, /* ignored when sent back */
};

/* Which auth type a field belongs to. */
enum field_scope { FOR_BOTH, FOR_BASIC, FOR_OAUTH2 };

struct field_def {
	const char *name;
	enum field_kind kind;
	enum field_scope scope;
	int required; /* within its scope */
	size_t max;   /* characters or bytes, per kind */
};

enum {
	F_NAME,
	F_SERVER,
	F_PORT,
	F_SENDER_NAME,
	F_SENDER_EMAIL,
	F_IS_DEFAULT,
	F_ENABLE_SSL,
	F_AUTH_TYPE,
	F_USERNAME,
	F_PASSWORD,
	F_CLIENT_ID,
	F_SECRET_KEY,
	F_AUTHORIZATION_URL,
	F_TOKEN_URL,
	F_SCOPE,
	F_ACCESS_TOKEN,
	F_REFRESH_TOKEN,
	F_WRITABLE_COUNT
};

static const struct field_def fields[] = {
    [F_NAME] = {"name", K_NAME, FOR_BOTH, 1, NAME_MAX_CHARS},
    [F_SERVER] = {"server", K_HOST, FOR_BOTH, 1, HOSTNAME_MAX_BYTES},
    [F_PORT] = {"port", K_PORT, FOR_BOTH, 1, 0},
    [F_SENDER_NAME] = {"sender_name", K_NAME, FOR_BOTH, 1, SENDER_NAME_MAX_CHARS},
    [F_SENDER_EMAIL] = {"sender_email", K_EMAIL, FOR_BOTH, 1, EMAIL_MAX_BYTES},
    [F_IS_DEFAULT] = {"is_default", K_BOOL, FOR_BOTH, 0, 0},
    [F_ENABLE_SSL] = {"enable_ssl", K_BOOL, FOR_BOTH, 0, 0},
    [F_AUTH_TYPE] = {"auth_type", K_AUTH_TYPE, FOR_BOTH, 1, 0},
    [F_USERNAME] = {"username", K_OPT_TEXT, FOR_BASIC, 0, USERNAME_MAX_CHARS},
    [F_PASSWORD] = {"password", K_SECRET, FOR_BASIC, 0, SECRET_MAX_BYTES},
    [F_CLIENT_ID] = {"client_id", K_OPT_TEXT, FOR_OAUTH2, 1, CLIENT_ID_MAX_CHARS},
    [F_SECRET_KEY] = {"secret_key", K_SECRET, FOR_OAUTH2, 0, SECRET_MAX_BYTES},
    [F_AUTHORIZATION_URL] = {"authorization_url", K_URL, FOR_OAUTH2, 1, URL_MAX_BYTES},
    [F_TOKEN_URL] = {"token_url", K_URL, FOR_OAUTH2, 1, URL_MAX_BYTES},
    [F_SCOPE] = {"scope", K_SCOPE, FOR_OAUTH2, 0, SCOPE_MAX_CHARS},
    [F_ACCESS_TOKEN] = {"access_token", K_SECRET, FOR_OAUTH2, 0, SECRET_MAX_BYTES},
    [F_REFRESH_TOKEN] = {"refresh_token", K_SECRET, FOR_OAUTH2, 0, SECRET_MAX_BYTES},
};

/* Read-only fields of the representation: a client may send them back. */
static const char *const read_only[] = {
    "id",
    "created_at",
    "updated_at",
    "version",
    "password_set",
    "secret_key_set",
    "access_token_set",
    "refresh_token_set",
    "access_token_expires_at",
    "oauth2_status",
    "oauth2_last_refreshed_at",
    "oauth2_last_error",
    "last_test",
};

static int find_field(const struct json_member *m)
{
	if (strlen(m->key) != m->key_len)
		return -1; /* a key holding NUL names no field */
	for (int i = 0; i < F_WRITABLE_COUNT; i++)
		if (strcmp(fields[i].name, m->key) == 0)
			return i;
	return -1;
}

static int is_read_only(const char *key, size_t key_len)
{
	for (size_t i = 0; i < sizeof(read_only) / sizeof(read_only[0]); i++)
		if (strlen(read_only[i]) == key_len && strcmp(read_only[i], key) == 0)
			return 1;
	return 0;
}

/* null or "" sent for a field: "nothing". */
static int is_blank(const struct json_value *v)
{
	return v->type == JSON_NULL || (v->type == JSON_STRING && v->u.string.len == 0);
}

/* Check one present, non-blank value against its kind. NULL when valid. */
static const char *check_value(const struct field_def *d, const struct json_value *v)
{
	switch (d->kind) {
	case K_PORT:
		if (v->type != JSON_NUMBER || !v->u.number.is_int)
			return "must be an integer";
		if (v->u.number.i < 1 || v->u.number.i > 65535)
			return "must be from 1 to 65535";
		return NULL;
	case K_BOOL:
		return v->type == JSON_BOOL ? NULL : "must be true or false";
	default:
		break;
	}
	if (v->type != JSON_STRING)
		return "must be a string";
	const char *s = v->u.string.ptr;
	size_t len = v->u.string.len;
	switch (d->kind) {
	case K_NAME:
		return validate_text(s, len, 1, d->max);
	case K_HOST:
		if (text_has_control_chars(s, len))
			return "must not contain control characters";
		return validate_host(s, len);
	case K_EMAIL:
		if (text_has_control_chars(s, len))
			return "must not contain control characters";
		return validate_email(s, len);
	case K_AUTH_TYPE:
		if (len == 5 && memcmp(s, "basic", 5) == 0)
			return NULL;
		if (len == 6 && memcmp(s, "oauth2", 6) == 0)
			return NULL;
		return "must be \"basic\" or \"oauth2\"";
	case K_OPT_TEXT:
		return validate_text(s, len, 1, d->max);
	case K_SCOPE:
		if (text_has_control_chars(s, len))
			return "must not contain control characters";
		return validate_scope(s, len);
	case K_SECRET:
		return validate_secret(s, len, d->max);
	default:
		return "is not supported";
	}
}

/* The outbound policy at save time (docs/api.md, "Outbound calls"): a URL whose host is an IP
 * literal that the policy refuses is refused now, not only when it is
 * called (host names are checked when they are resolved). */
static const char *refused_destination(const struct ctx *c, const struct json_value *v)
{
	if (c->w == NULL || c->w->app == NULL)
		return NULL;
	const char *why =
	    outbound_url_refused(&c->w->app->cfg.outbound, v->u.string.ptr, v->u.string.len);
	if (why == NULL)
		return NULL;
	if (strcmp(why, "loopback") == 0)
		return "names a loopback address, a destination the outbound policy refuses";
	if (strcmp(why, "link-local") == 0)
		return "names a link-local address, a destination the outbound policy refuses";
	if (strcmp(why, "unspecified") == 0)
		return "names an unspecified address, a destination the outbound policy refuses";
	if (strcmp(why, "private") == 0)
		return "names a private address, a destination the outbound policy refuses";
	if (strcmp(why, "cloud metadata") == 0)
		return "names a cloud metadata address, a destination the outbound policy refuses";
	if (strcmp(why, "shared address space") == 0)
		return "names a shared (carrier-grade NAT) address, a destination the outbound "
		       "policy refuses";
	if (strcmp(why, "multicast") == 0 || strcmp(why, "broadcast") == 0)
		return "names a multicast or broadcast address, a destination the outbound policy "
		       "refuses";
	if (strcmp(why, "reserved") == 0 || strcmp(why, "site-local") == 0)
		return "names a reserved address, a destination the outbound policy refuses";
	return "names a destination the outbound policy refuses";
}

static struct json_value *str_value(struct arena *a, const char *s);

/* v (a string) without the spaces at its ends, as a NUL-terminated copy in
 * the arena; v itself when there are none. NULL when out of memory. */
static const struct json_value *trimmed(struct arena *a, const struct json_value *v)
{
	const char *s = v->u.string.ptr;
	size_t len = v->u.string.len;
	text_trim_blanks(&s, &len);
	if (len == v->u.string.len)
		return v;
	char *copy = arena_strndup(a, s, len);
	return copy != NULL ? str_value(a, copy) : NULL;
}

/* An https URL, as libcurl's URL parser reads it (validate_https_url): *slot
 * becomes its normalized form, the value stored and later called
 * (docs/api.md, "A mail server"), and the address policy judges that. */
static const char *check_url(struct ctx *c, const struct json_value **slot)
{
	const struct json_value *v = *slot;
	if (v->type != JSON_STRING)
		return "must be a string";
	const char *norm;
	const char *msg = validate_https_url(c->arena, v->u.string.ptr, v->u.string.len, &norm);
	if (msg != NULL)
		return msg;
	struct json_value *nv = str_value(c->arena, norm);
	if (nv == NULL)
		return "is too long to process";
	*slot = nv;
	return refused_destination(c, nv);
}

static void take_secret(const struct json_value *v, struct secret_in *out)
{
	if (v == NULL) {
		out->op = SECRET_KEEP;
	} else if (is_blank(v)) {
		out->op = SECRET_CLEAR;
	} else {
		out->op = SECRET_SET;
		out->value = v->u.string.ptr;
		out->len = v->u.string.len;
	}
}

static const char *take_string(const struct json_value *v)
{
	return (v == NULL || is_blank(v)) ? NULL : v->u.string.ptr;
}

/* Each member of the body into its field's slot; an unknown key is a field
 * error (the read-only fields of a GET representation are let through). */
static void slot_fields(struct ctx *c, const struct json_value *body,
                        const struct json_value **slot)
{
	for (size_t i = 0; i < body->u.object.count; i++) {
		const struct json_member *m = &body->u.object.members[i];
		int f = find_field(m);
		if (f >= 0) {
			slot[f] = m->value;
		} else if (!is_read_only(m->key, m->key_len)) {
			http_field_error(c,
			                 strlen(m->key) == m->key_len ? m->key : "(key with NUL)",
			                 "is not a field of a mail server");
		}
	}
}

/* The auth type, which decides which other fields apply: 1 when it was
 * given and valid (*auth set), 0 after a field error. */
static int read_auth_type(struct ctx *c, const struct json_value *v, enum auth_type *auth)
{
	*auth = AUTH_BASIC;
	if (v == NULL || is_blank(v)) {
		http_field_error(c, "auth_type", "is required");
		return 0;
	}
	const char *msg = check_value(&fields[F_AUTH_TYPE], v);
	if (msg != NULL) {
		http_field_error(c, "auth_type", msg);
		return 0;
	}
	*auth = strcmp(v->u.string.ptr, "oauth2") == 0 ? AUTH_OAUTH2 : AUTH_BASIC;
	return 1;
}

/* Every field but auth_type against its definition, for the auth type
 * (auth_ok: it is known). A text field's slot is replaced by its trimmed
 * copy. E_OK, or the rejection when memory ran out. */
static err_t check_fields(struct ctx *c, const struct json_value **slot, int auth_ok,
                          enum auth_type auth)
{
	for (int f = 0; f < F_WRITABLE_COUNT; f++) {
		const struct field_def *d = &fields[f];
		const struct json_value *v = slot[f];
		if (f == F_AUTH_TYPE)
			continue;
		int applies = d->scope == FOR_BOTH ||
		              (auth_ok && d->scope == FOR_BASIC && auth == AUTH_BASIC) ||
		              (auth_ok && d->scope == FOR_OAUTH2 && auth == AUTH_OAUTH2);
		if (!applies) {
			/* null or "" for the other type's field is harmless (a GET
			 * representation sent back); a value is a mistake. */
			if (auth_ok && v != NULL && !is_blank(v))
				http_field_error(c, d->name,
				                 auth == AUTH_BASIC
				                     ? "applies only to auth_type \"oauth2\""
				                     : "applies only to auth_type \"basic\"");
			continue;
		}
		if (v == NULL || v->type == JSON_NULL ||
		    (v->type == JSON_STRING && v->u.string.len == 0 && d->kind != K_NAME)) {
			if (d->required)
				http_field_error(c, d->name, "is required");
			continue;
		}
		const char *msg = d->kind == K_URL ? check_url(c, &slot[f]) : check_value(d, v);
		if (msg != NULL) {
			http_field_error(c, d->name, msg);
		} else if (d->kind == K_NAME || d->kind == K_OPT_TEXT) {
			/* A text field is stored trimmed: its length was counted
			 * without the spaces at its ends, and what is stored
			 * must fit the same limit (docs/api.md, "A mail
			 * server"). Secrets are kept byte for byte. */
			if ((slot[f] = trimmed(c->arena, v)) == NULL)
				return http_reject(c, E_INTERNAL, "out of memory");
		}
	}
	return E_OK;
}

/* The checked slots into the input; the other auth type's secrets are
 * cleared. */
static void take_input(const struct json_value **slot, enum auth_type auth, struct ms_input *in)
{
	in->name = slot[F_NAME]->u.string.ptr;
	in->server = slot[F_SERVER]->u.string.ptr;
	in->port = (int)slot[F_PORT]->u.number.i;
	in->sender_name = slot[F_SENDER_NAME]->u.string.ptr;
	in->sender_email = slot[F_SENDER_EMAIL]->u.string.ptr;
	in->is_default = slot[F_IS_DEFAULT] && slot[F_IS_DEFAULT]->type == JSON_BOOL
	                     ? slot[F_IS_DEFAULT]->u.boolean
	                     : 0;
	in->enable_ssl = slot[F_ENABLE_SSL] && slot[F_ENABLE_SSL]->type == JSON_BOOL
	                     ? slot[F_ENABLE_SSL]->u.boolean
	                     : 1;
	in->auth = auth;
	if (auth == AUTH_BASIC) {
		in->username = take_string(slot[F_USERNAME]);
		take_secret(slot[F_PASSWORD], &in->password);
		in->secret_key.op = in->access_token.op = in->refresh_token.op = SECRET_CLEAR;
	} else {
		in->client_id = take_string(slot[F_CLIENT_ID]);
		in->authorization_url = take_string(slot[F_AUTHORIZATION_URL]);
		in->token_url = take_string(slot[F_TOKEN_URL]);
		in->scope = take_string(slot[F_SCOPE]);
		take_secret(slot[F_SECRET_KEY], &in->secret_key);
		take_secret(slot[F_ACCESS_TOKEN], &in->access_token);
		take_secret(slot[F_REFRESH_TOKEN], &in->refresh_token);
		in->password.op = SECRET_CLEAR;
	}
}

err_t ms_input_parse(struct ctx *c, const struct json_value *body, enum ms_mode mode,
                     const struct ms_row *cur, struct ms_input *in)
{
	const struct json_value *slot[F_WRITABLE_COUNT] = {0};
	size_t errors_before = c->nerrors;
	enum auth_type auth;
	err_t e;

	memset(in, 0, sizeof(*in));
	slot_fields(c, body, slot);
	int auth_ok = read_auth_type(c, slot[F_AUTH_TYPE], &auth);
	if ((e = check_fields(c, slot, auth_ok, auth)) != E_OK)
		return e;
	/* A new oauth2 server (created, or switched from basic) needs its
	 * client secret (docs/api.md, "Secrets"). */
	if (auth_ok && auth == AUTH_OAUTH2 &&
	    (slot[F_SECRET_KEY] == NULL || is_blank(slot[F_SECRET_KEY])) &&
	    (mode == MS_CREATE || (cur != NULL && cur->auth != AUTH_OAUTH2)))
		http_field_error(c, "secret_key", "is required for an oauth2 server");
	if (c->nerrors > errors_before)
		return E_VALIDATION;
	take_input(slot, auth, in);
	return E_OK;
}

/* ---- merge patch ---- */

static struct json_value *str_value(struct arena *a, const char *s)
{
	struct json_value *v = arena_calloc(a, 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	v->type = JSON_STRING;
	v->u.string.ptr = s;
	v->u.string.len = strlen(s);
	return v;
}

static struct json_value *int_value(struct arena *a, long long n)
{
	struct json_value *v = arena_calloc(a, 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	v->type = JSON_NUMBER;
	v->u.number.is_int = 1;
	v->u.number.i = n;
	v->u.number.text = "";
	return v;
}

static struct json_value *bool_value(struct arena *a, int b)
{
	struct json_value *v = arena_calloc(a, 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	v->type = JSON_BOOL;
	v->u.boolean = b;
	return v;
}

/* Set key in the object being built (replacing an earlier value). */
static int same_key(const struct json_member *m, const char *key, size_t key_len)
{
	return m->key_len == key_len && memcmp(m->key, key, key_len) == 0;
}

/* Set key (key_len bytes, may hold NUL) in the object being built,
 * replacing an earlier value. */
static void put_member_n(struct json_member *members, size_t *count, const char *key,
                         size_t key_len, struct json_value *v)
{
	for (size_t i = 0; i < *count; i++) {
		if (same_key(&members[i], key, key_len)) {
			members[i].value = v;
			return;
		}
	}
	members[*count].key = key;
	members[*count].key_len = key_len;
	members[*count].value = v;
	(*count)++;
}

static void put_member(struct json_member *members, size_t *count, const char *key,
                       struct json_value *v)
{
	put_member_n(members, count, key, strlen(key), v);
}

static void remove_member(struct json_member *members, size_t *count, const char *key,
                          size_t key_len)
{
	for (size_t i = 0; i < *count; i++) {
		if (same_key(&members[i], key, key_len)) {
			members[i] = members[*count - 1];
			(*count)--;
			return;
		}
	}
}

err_t ms_merge_patch(struct ctx *c, const struct ms_row *cur, const struct json_value *patch,
                     const struct json_value **merged)
{
	struct arena *a = c->arena;
	/* The base holds at most the writable fields; the patch adds at most
	 * its own members. */
	size_t cap = F_WRITABLE_COUNT + patch->u.object.count;
	struct json_member *m = arena_calloc(a, cap, sizeof(*m));
	struct json_value *obj = arena_calloc(a, 1, sizeof(*obj));
	if (m == NULL || obj == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	size_t n = 0;

	/* Does the patch switch the auth type? Then the old type's fields are
	 * not carried over: switching clears them (docs/api.md, "Secrets"). */
	enum auth_type auth = cur->auth;
	const struct json_value *pa = json_get(patch, "auth_type");
	if (pa != NULL && pa->type == JSON_STRING)
		auth = strcmp(pa->u.string.ptr, "oauth2") == 0 ? AUTH_OAUTH2 : AUTH_BASIC;
	int same = auth == cur->auth;

	put_member(m, &n, "name", str_value(a, cur->name));
	put_member(m, &n, "server", str_value(a, cur->server));
	put_member(m, &n, "port", int_value(a, cur->port));
	put_member(m, &n, "sender_name", str_value(a, cur->sender_name));
	put_member(m, &n, "sender_email", str_value(a, cur->sender_email));
	put_member(m, &n, "is_default", bool_value(a, cur->is_default));
	put_member(m, &n, "enable_ssl", bool_value(a, cur->enable_ssl));
	put_member(m, &n, "auth_type", str_value(a, cur->auth == AUTH_OAUTH2 ? "oauth2" : "basic"));
	if (same && cur->auth == AUTH_BASIC && cur->username)
		put_member(m, &n, "username", str_value(a, cur->username));
	if (same && cur->auth == AUTH_OAUTH2) {
		const char *keys[] = {"client_id", "authorization_url", "token_url", "scope"};
		const char *vals[] = {cur->client_id, cur->authorization_url, cur->token_url,
		                      cur->scope};
		for (size_t i = 0; i < 4; i++)
			if (vals[i] != NULL)
				put_member(m, &n, keys[i], str_value(a, vals[i]));
	}
	for (size_t i = 0; i < n; i++)
		if (m[i].value == NULL)
			return http_reject(c, E_INTERNAL, "out of memory");

	for (size_t i = 0; i < patch->u.object.count; i++) {
		const struct json_member *pm = &patch->u.object.members[i];
		int f = find_field(pm);
		int secret = f >= 0 && fields[f].kind == K_SECRET;
		/* RFC 7396: null removes the member. A secret's null is kept: for
		 * secrets null means "clear" (docs/api.md, "Secrets"). */
		if (pm->value->type == JSON_NULL && !secret)
			remove_member(m, &n, pm->key, pm->key_len);
		else
			put_member_n(m, &n, pm->key, pm->key_len, pm->value);
	}
	obj->type = JSON_OBJECT;
	obj->u.object.members = m;
	obj->u.object.count = n;
	*merged = obj;
	return E_OK;
}

/* ---- the secret rules ---- */

static int str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* What happens to one stored secret: what the request says, else it is
 * cleared when its destination changed, else kept. */
static struct secret_in decide(struct secret_in asked, int destination_changed)
{
	if (asked.op == SECRET_KEEP && destination_changed)
		asked.op = SECRET_CLEAR;
	return asked;
}

void ms_plan_change(const struct ms_row *cur, const struct ms_input *in, struct ms_change *out)
{
	memset(out, 0, sizeof(*out));
	out->in = in;
	out->move_default = in->is_default && (cur == NULL || !cur->is_default);
	if (in->auth == AUTH_BASIC) {
		int switched = cur != NULL && cur->auth != AUTH_BASIC;
		int moved = cur == NULL || switched || !str_eq(cur->server, in->server) ||
		            cur->port != in->port;
		/* A new row has nothing stored: KEEP would keep nothing. */
		out->password = decide(in->password, moved);
		out->secret_key.op = out->access_token.op = out->refresh_token.op = SECRET_CLEAR;
		out->oauth2_status = NULL;
		out->keep_oauth2_state = 0;
		return;
	}
	int switched = cur == NULL || cur->auth != AUTH_OAUTH2;
	int moved = switched || !str_eq(cur->token_url, in->token_url) ||
	            !str_eq(cur->authorization_url, in->authorization_url) ||
	            !str_eq(cur->client_id, in->client_id);
	out->password.op = SECRET_CLEAR;
	out->secret_key = decide(in->secret_key, moved);
	out->access_token = decide(in->access_token, moved);
	out->refresh_token = decide(in->refresh_token, moved);

	int tokens_kept =
	    out->access_token.op == SECRET_KEEP && out->refresh_token.op == SECRET_KEEP;
	int has_access = out->access_token.op == SECRET_SET ||
	                 (out->access_token.op == SECRET_KEEP && cur && cur->access_token_set);
	int has_refresh = out->refresh_token.op == SECRET_SET ||
	                  (out->refresh_token.op == SECRET_KEEP && cur && cur->refresh_token_set);
	if (tokens_kept && !switched) {
		out->oauth2_status = cur->oauth2_status;
		out->keep_oauth2_state = 1;
	} else {
		/* Tokens entered or cleared by hand: a fresh start. */
		out->oauth2_status = (has_access || has_refresh) ? "connected" : "not_connected";
		out->keep_oauth2_state = 0;
	}
}

/* ---- the representation ---- */

void ms_row_to_json(struct json_out *o, const struct ms_row *r)
{
	int oauth = r->auth == AUTH_OAUTH2;
	json_out_object_open(o);
	json_out_key(o, "id");
	json_out_int(o, r->id);
	json_out_key(o, "name");
	json_out_cstring(o, r->name);
	json_out_key(o, "server");
	json_out_cstring(o, r->server);
	json_out_key(o, "port");
	json_out_int(o, r->port);
	json_out_key(o, "sender_name");
	json_out_cstring(o, r->sender_name);
	json_out_key(o, "sender_email");
	json_out_cstring(o, r->sender_email);
	json_out_key(o, "is_default");
	json_out_bool(o, r->is_default);
	json_out_key(o, "enable_ssl");
	json_out_bool(o, r->enable_ssl);
	json_out_key(o, "auth_type");
	json_out_cstring(o, oauth ? "oauth2" : "basic");
	json_out_key(o, "username");
	json_out_cstring(o, oauth ? NULL : r->username);
	json_out_key(o, "password_set");
	json_out_bool(o, r->password_set);
	json_out_key(o, "client_id");
	json_out_cstring(o, r->client_id);
	json_out_key(o, "authorization_url");
	json_out_cstring(o, r->authorization_url);
	json_out_key(o, "token_url");
	json_out_cstring(o, r->token_url);
	json_out_key(o, "scope");
	json_out_cstring(o, r->scope);
	json_out_key(o, "secret_key_set");
	json_out_bool(o, r->secret_key_set);
	json_out_key(o, "access_token_set");
	json_out_bool(o, r->access_token_set);
	json_out_key(o, "refresh_token_set");
	json_out_bool(o, r->refresh_token_set);
	json_out_key(o, "access_token_expires_at");
	json_out_cstring(o, r->access_token_expires_at);
	json_out_key(o, "oauth2_status");
	json_out_cstring(o, oauth ? r->oauth2_status : NULL);
	json_out_key(o, "oauth2_last_refreshed_at");
	json_out_cstring(o, oauth ? r->oauth2_last_refreshed_at : NULL);
	json_out_key(o, "oauth2_last_error");
	if (oauth && r->oauth2_last_error_code != NULL) {
		json_out_object_open(o);
		json_out_key(o, "code");
		json_out_cstring(o, r->oauth2_last_error_code);
		json_out_key(o, "description");
		json_out_cstring(o, r->oauth2_last_error_description);
		json_out_object_close(o);
	} else {
		json_out_null(o);
	}
	json_out_key(o, "created_at");
	json_out_cstring(o, r->created_at);
	json_out_key(o, "updated_at");
	json_out_cstring(o, r->updated_at);
	json_out_key(o, "version");
	json_out_int(o, r->version);
	json_out_key(o, "last_test");
	if (r->last_test_at != NULL) {
		json_out_object_open(o);
		json_out_key(o, "at");
		json_out_cstring(o, r->last_test_at);
		json_out_key(o, "ok");
		json_out_bool(o, r->last_test_ok);
		json_out_key(o, "stage");
		json_out_cstring(o, r->last_test_stage);
		json_out_key(o, "error_code");
		json_out_cstring(o, r->last_test_error_code);
		json_out_object_close(o);
	} else {
		json_out_null(o);
	}
	json_out_object_close(o);
}
