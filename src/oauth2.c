/*
 * oauth2.c - the OAuth 2.0 authorization-code flow with PKCE and the access
 * token's refresh (see oauth2.h).
 *
 * Single flight. A refresh runs under the server's refresh lock (a
 * PostgreSQL advisory lock, db_oauth2_lock), so at most one request per
 * server talks to its token endpoint at a time, across every worker process
 * and host. A request takes the outcome of another attempt instead of
 * calling the provider itself only when that attempt was still running when
 * the request reached the service, or started after: that is, when it
 * finished (oauth2_last_attempt_at, on the database's clock) after the
 * request's arrival (nginx's $msec, passed as REQUEST_ARRIVAL). A request
 * reads the server before it waits for the lock and again after: when the
 * mark of the last attempt moved in between, that attempt finished while it
 * waited, so after it arrived, and its outcome is this request's too.
 * Requests that queued in nginx behind the worker threads waiting on the
 * lock arrived while the attempt ran, so they take its outcome without
 * waiting at all. That is how fifty concurrent refreshes make exactly one
 * call to the provider, while a refresh that arrives after an attempt
 * finished (an earlier click, the callback's code exchange) always calls.
 *
 * Rotation (a provider that rotates refresh tokens revokes a reused one): every token answer is
 * stored whole; a rotated refresh token replaces the stored one in the same UPDATE as the access
 * token, and an answer without one keeps the stored one.
 */
#include "oauth2.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_audit.h"
#include "db_oauth2.h"
#include "failpoint.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "mailsrv_limits.h"
#include "outbound.h"
#include "validate.h"

/* ---- building blocks ---- */

char *oauth2_random_token(struct arena *a, size_t bytes)
{
	unsigned char buf[64];
	if (bytes == 0 || bytes > sizeof(buf) || crypto_random(buf, bytes) != 0)
		return NULL;
	return base64url_encode(a, buf, bytes);
}

char *oauth2_pkce_challenge(struct arena *a, const char *verifier)
{
	unsigned char h[32];
	if (verifier == NULL || crypto_sha256(verifier, strlen(verifier), h) != 0)
		return NULL;
	return base64url_encode(a, h, sizeof(h));
}

static int is_b64url(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

int oauth2_state_wellformed(const char *s, size_t len)
{
	/* base64url without padding of OAUTH2_STATE_BYTES bytes */
	const size_t want = (OAUTH2_STATE_BYTES * 4 + 2) / 3;
	if (s == NULL || len != want)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_b64url((unsigned char)s[i]))
			return 0;
	return 1;
}

char *oauth2_callback_path(struct arena *a, const char *public_url)
{
	char *uri = oauth2_redirect_uri(a, public_url);
	if (uri == NULL)
		return NULL;
	const char *p = strstr(uri, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	return p ? arena_strdup(a, p) : arena_strdup(a, "/api/v1/oauth2/callback");
}

char *oauth2_cookie_name(struct arena *a, const unsigned char state_hash[32])
{
	char *h = base64url_encode(a, state_hash, OAUTH2_COOKIE_NAME_HASH_BYTES);
	return h ? arena_printf(a, "mailsrv_oauth2_%s", h) : NULL;
}

char *oauth2_set_cookie(struct arena *a, const char *name, const char *value, const char *path,
                        const char *public_url)
{
	int secure = strncasecmp(public_url, "https://", 8) == 0;
	return arena_printf(a, "%s=%s; Path=%s; Max-Age=%d; HttpOnly; SameSite=Lax%s", name,
	                    value ? value : "", path, value ? OAUTH2_STATE_TTL_S : 0,
	                    secure ? "; Secure" : "");
}

int oauth2_scope_ok(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > OAUTH2_GRANTED_SCOPE_MAX_BYTES)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ') {
			/* between two tokens, one space */
			if (i == 0 || i + 1 == len || s[i + 1] == ' ')
				return 0;
		} else if (c < 0x21 || c > 0x7E || c == '"' || c == '\\') {
			return 0;
		}
	}
	return 1;
}

static int unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

char *oauth2_pct_encode(struct arena *a, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	char *out = arena_alloc(a, 3 * len + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

static char *enc(struct arena *a, const char *s)
{
	return oauth2_pct_encode(a, s, strlen(s));
}

char *oauth2_redirect_uri(struct arena *a, const char *public_url)
{
	size_t n = strlen(public_url);
	while (n > 0 && public_url[n - 1] == '/')
		n--;
	return arena_printf(a, "%.*s/api/v1/oauth2/callback", (int)n, public_url);
}

/* The separator to append a parameter to url[0..n): '?' without a query,
 * '&' after one, nothing after a trailing '?' or '&'. */
static const char *separator(const char *url, size_t n)
{
	if (memchr(url, '?', n) == NULL)
		return "?";
	if (n > 0 && (url[n - 1] == '?' || url[n - 1] == '&'))
		return "";
	return "&";
}

/* Does the query of url[0..n) set parameter name? */
static int has_param(const char *url, size_t n, const char *name)
{
	const char *q = memchr(url, '?', n);
	if (q == NULL)
		return 0;
	size_t nl = strlen(name);
	const char *end = url + n;
	for (const char *p = q + 1; p < end;) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		size_t plen = amp ? (size_t)(amp - p) : (size_t)(end - p);
		if (plen > nl && strncmp(p, name, nl) == 0 && p[nl] == '=')
			return 1;
		if (plen == nl && strncmp(p, name, nl) == 0)
			return 1;
		if (amp == NULL)
			break;
		p = amp + 1;
	}
	return 0;
}

/* The host of an https URL (without port), compared without regard to case. */
static int host_is(const char *url, const char *host)
{
	if (strncasecmp(url, "https://", 8) != 0)
		return 0;
	const char *h = url + 8;
	size_t n = strcspn(h, "/?#:");
	return n == strlen(host) && strncasecmp(h, host, n) == 0;
}

char *oauth2_authorize_url(struct arena *a, const struct oauth2_authorize_params *p)
{
	const char *base = p->authorization_url;
	/* RFC 6749 section 3.1: the endpoint URI has no fragment. */
	size_t n = strcspn(base, "#");
	char *client_id = enc(a, p->client_id);
	char *redirect = enc(a, p->redirect_uri);
	char *state = enc(a, p->state);
	char *challenge = enc(a, p->code_challenge);
	int has_scope = p->scope != NULL && p->scope[0] != '\0';
	char *scope = has_scope ? enc(a, p->scope) : NULL;
	if (client_id == NULL || redirect == NULL || state == NULL || challenge == NULL ||
	    (has_scope && scope == NULL))
		return NULL;
	/* Google: a refresh token only with access_type=offline, and again after
	 * the first consent only with prompt=consent. */
	int google = host_is(base, "accounts.google.com");
	const char *offline =
	    google && !has_param(base, n, "access_type") ? "&access_type=offline" : "";
	const char *consent = google && !has_param(base, n, "prompt") ? "&prompt=consent" : "";
	return arena_printf(a,
	                    "%.*s%sresponse_type=code&client_id=%s&redirect_uri=%s%s%s&state=%s"
	                    "&code_challenge=%s&code_challenge_method=S256%s%s",
	                    (int)n, base, separator(base, n), client_id, redirect,
	                    has_scope ? "&scope=" : "", has_scope ? scope : "", state, challenge,
	                    offline, consent);
}

char *oauth2_console_url(struct arena *a, const char *console_url, long long id,
                         const char *error_code)
{
	size_t n = strcspn(console_url, "#");
	const char *fragment = console_url + n; /* "" or "#..." */
	char *code = error_code ? enc(a, error_code) : NULL;
	if (error_code != NULL && code == NULL)
		return NULL;
	return arena_printf(a, "%.*s%smail_server_id=%lld&oauth2=%s%s%s%s", (int)n, console_url,
	                    separator(console_url, n), id, error_code ? "error" : "connected",
	                    error_code ? "&error=" : "", error_code ? code : "", fragment);
}

char *oauth2_form(struct arena *a, size_t n, const char *const *names, const char *const *values,
                  size_t *len)
{
	size_t total = 1;
	char **encoded = arena_calloc(a, n ? n : 1, sizeof(*encoded));
	if (encoded == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (values[i] == NULL)
			continue;
		if ((encoded[i] = enc(a, values[i])) == NULL)
			return NULL;
		total += strlen(names[i]) + 2 + strlen(encoded[i]);
	}
	char *out = arena_alloc(a, total);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (encoded[i] == NULL)
			continue;
		o += (size_t)sprintf(out + o, "%s%s=%s", o ? "&" : "", names[i], encoded[i]);
	}
	out[o] = '\0';
	*len = o;
	return out;
}

char *oauth2_clean_text(struct arena *a, const char *s, size_t len, size_t max_chars)
{
	if (s == NULL)
		return NULL;
	char *out = arena_alloc(a, len + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0, chars = 0;
	for (size_t i = 0; i < len && chars < max_chars; chars++) {
		unsigned cp;
		size_t n = utf8_decode(s + i, len - i, &cp);
		if (n == 0) {
			out[o++] = '?';
			i++;
		} else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
			out[o++] = ' ';
			i += n;
		} else {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
		}
	}
	out[o] = '\0';
	return out;
}

int oauth2_error_code_ok(const char *s, size_t len)
{
	if (s == NULL || len == 0 || len > OAUTH2_ERROR_CODE_MAX_BYTES)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* RFC 6749 section 5.2: %x20-21 / %x23-5B / %x5D-7E */
		if (c < 0x20 || c > 0x7E || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

/* A token as we accept it: 1-SECRET_MAX_BYTES bytes, no control chars. */
static int token_ok(const struct json_value *v)
{
	return v->type == JSON_STRING && v->u.string.len > 0 &&
	       v->u.string.len <= SECRET_MAX_BYTES &&
	       !text_has_control_chars(v->u.string.ptr, v->u.string.len);
}

enum oauth2_answer oauth2_read_token_response(struct arena *a, const struct json_value *root,
                                              struct oauth2_token_response *out, const char **why)
{
	memset(out, 0, sizeof(*out));
	out->expires_in = -1;
	*why = NULL;
	if (root == NULL || root->type != JSON_OBJECT) {
		*why = "the answer is not a JSON object";
		return OAUTH2_ANSWER_INVALID;
	}
	const struct json_value *error = json_get(root, "error");
	if (error != NULL) {
		if (error->type != JSON_STRING ||
		    !oauth2_error_code_ok(error->u.string.ptr, error->u.string.len)) {
			*why = "the answer's error is not a valid OAuth 2.0 error code";
			return OAUTH2_ANSWER_INVALID;
		}
		out->error = error->u.string.ptr;
		const struct json_value *d = json_get(root, "error_description");
		if (d != NULL && d->type == JSON_STRING) {
			out->error_description =
			    oauth2_clean_text(a, d->u.string.ptr, d->u.string.len,
			                      OAUTH2_ERROR_DESCRIPTION_MAX_CHARS);
			if (out->error_description == NULL) {
				*why = "out of memory";
				return OAUTH2_ANSWER_INVALID;
			}
		}
		return OAUTH2_ANSWER_ERROR;
	}
	const struct json_value *at = json_get(root, "access_token");
	if (at == NULL || !token_ok(at)) {
		*why = at == NULL ? "the answer has no access_token"
		                  : "the answer's access_token is not a valid token";
		return OAUTH2_ANSWER_INVALID;
	}
	const struct json_value *tt = json_get(root, "token_type");
	if (tt != NULL && (tt->type != JSON_STRING || tt->u.string.len != 6 ||
	                   strncasecmp(tt->u.string.ptr, "bearer", 6) != 0)) {
		*why = "the answer's token_type is not Bearer";
		return OAUTH2_ANSWER_INVALID;
	}
	const struct json_value *ei = json_get(root, "expires_in");
	if (ei != NULL && ei->type != JSON_NULL) {
		long long v = -1;
		if (ei->type == JSON_NUMBER && ei->u.number.is_int && ei->u.number.i >= 0) {
			v = ei->u.number.i;
		} else if (ei->type == JSON_STRING && ei->u.string.len > 0 &&
		           ei->u.string.len <= 12) {
			v = 0;
			for (size_t i = 0; i < ei->u.string.len && v >= 0; i++) {
				char c = ei->u.string.ptr[i];
				v = (c >= '0' && c <= '9') ? v * 10 + (c - '0') : -1;
			}
		}
		if (v < 0) {
			*why = "the answer's expires_in is not a number of seconds";
			return OAUTH2_ANSWER_INVALID;
		}
		out->expires_in = v > OAUTH2_EXPIRES_IN_MAX_S ? OAUTH2_EXPIRES_IN_MAX_S : v;
	}
	const struct json_value *sc = json_get(root, "scope");
	if (sc != NULL && sc->type != JSON_NULL) {
		out->scope_state = OAUTH2_SCOPE_MALFORMED;
		if (sc->type == JSON_STRING &&
		    oauth2_scope_ok(sc->u.string.ptr, sc->u.string.len)) {
			out->scope = arena_strndup(a, sc->u.string.ptr, sc->u.string.len);
			if (out->scope == NULL) {
				*why = "out of memory";
				return OAUTH2_ANSWER_INVALID;
			}
			out->scope_state = OAUTH2_SCOPE_GRANTED;
		}
	}
	const struct json_value *rt = json_get(root, "refresh_token");
	if (rt != NULL && rt->type != JSON_NULL &&
	    !(rt->type == JSON_STRING && rt->u.string.len == 0)) {
		if (!token_ok(rt)) {
			*why = "the answer's refresh_token is not a valid token";
			return OAUTH2_ANSWER_INVALID;
		}
		out->refresh_token = rt->u.string.ptr;
		out->refresh_token_len = rt->u.string.len;
	}
	out->access_token = at->u.string.ptr;
	out->access_token_len = at->u.string.len;
	return OAUTH2_ANSWER_TOKENS;
}

enum oauth2_answer oauth2_parse_token_response(struct arena *a, const char *buf, size_t len,
                                               struct oauth2_token_response *out, const char **why)
{
	struct json_value *root;
	char msg[96];
	memset(out, 0, sizeof(*out));
	out->expires_in = -1;
	if (json_parse(a, buf, len, &root, msg, sizeof(msg)) != JSON_OK) {
		*why = "the answer is not valid JSON";
		return OAUTH2_ANSWER_INVALID;
	}
	return oauth2_read_token_response(a, root, out, why);
}

/* ---- flows ---- */

/* Our own codes, never the provider's. */
static int our_code(const char *code)
{
	static const char *const ours[] = {"timeout",          "unreachable",
	                                   "tls_failed",       "destination_refused",
	                                   "invalid_response", "internal"};
	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		if (strcmp(code, ours[i]) == 0)
			return 1;
	return 0;
}

/* The err_t a stored or fresh failure code stands for. */
static err_t err_for_code(const char *code)
{
	if (strcmp(code, "timeout") == 0)
		return E_UPSTREAM_TIMEOUT;
	if (strcmp(code, "unreachable") == 0 || strcmp(code, "tls_failed") == 0)
		return E_UPSTREAM_UNREACHABLE;
	if (strcmp(code, "destination_refused") == 0)
		return E_DESTINATION_REFUSED;
	return E_OAUTH2_PROVIDER;
}

static err_t conflict(struct oauth2_failure *f, const char *code, const char *description)
{
	f->code = code;
	f->description = description;
	f->provider = 0;
	return E_CONFLICT;
}

/* What the administrator reads for one of our network codes. */
static const char *describe(struct arena *a, const struct outbound_result *res)
{
	if (strcmp(res->code, "timeout") == 0)
		return "the token endpoint did not answer in time";
	if (strcmp(res->code, "unreachable") == 0)
		return "the token endpoint could not be reached";
	if (strcmp(res->code, "tls_failed") == 0)
		return "the TLS connection to the token endpoint failed (is its certificate "
		       "trusted?)";
	if (strcmp(res->code, "internal") == 0)
		return "internal error";
	/* destination_refused and invalid_response: our own words, or curl's
	 * (which never quote the response). */
	const char *d = oauth2_clean_text(a, res->reason, strlen(res->reason),
	                                  OAUTH2_ERROR_DESCRIPTION_MAX_CHARS);
	return d ? d : "";
}

/* POST a form to s's token endpoint; E_OK with a token answer in *tok, or
 * the failure in *f (logged with what was being done). */
static err_t token_request(const struct app *app, struct arena *a, const struct oauth2_server *s,
                           const char *form, size_t len, const char *what,
                           struct oauth2_token_response *tok, struct oauth2_failure *f)
{
	struct outbound_request rq = {s->token_url, form, len, app->cfg.ca_file,
	                              &app->cfg.outbound};
	struct outbound_result res;
	struct json_value *root;
	memset(f, 0, sizeof(*f));
	err_t e = outbound_post_form_json(a, &rq, &root, &res);
	/* Counted by the call's own outcome: an OAuth 2.0 error answer is a
	 * failure too (the metrics' outcome "failure"). */
	int ok = e == E_OK && res.status == 200;
	metrics_outbound(METRICS_OAUTH2_TOKEN, ok ? METRICS_SUCCESS : METRICS_FAILURE);
	if (e != E_OK) {
		f->code = res.code;
		f->description = describe(a, &res);
		log_warning("could not %s of mail server %lld: %s (%s)", what, s->id, res.code,
		            res.reason);
		return e;
	}
	const char *why;
	enum oauth2_answer ans = oauth2_read_token_response(a, root, tok, &why);
	if (ans == OAUTH2_ANSWER_ERROR) {
		f->code = tok->error;
		f->description = tok->error_description;
		f->provider = 1;
		log_warning("could not %s of mail server %lld: the provider answered %s (HTTP %ld)",
		            what, s->id, tok->error, res.status);
		return E_OAUTH2_PROVIDER;
	}
	if (ans == OAUTH2_ANSWER_INVALID || res.status != 200) {
		f->code = "invalid_response";
		f->description = ans == OAUTH2_ANSWER_INVALID
		                     ? why
		                     : "the token endpoint answered an error status without an"
		                       " OAuth 2.0 error";
		log_warning(
		    "could not %s of mail server %lld: invalid answer from the token endpoint"
		    " (HTTP %ld: %s)",
		    what, s->id, res.status, f->description);
		return E_OAUTH2_PROVIDER;
	}
	return E_OK;
}

/* The details of a failed attempt's event: the error code (ours, or the
 * provider's, which oauth2_error_code_ok kept to printable ASCII). */
static const char *failure_details(struct arena *a, const struct oauth2_failure *f)
{
	const char *code = audit_json_string(a, f->code != NULL ? f->code : "");
	return code != NULL ? arena_printf(a, "{\"code\": %s}", code) : NULL;
}

/* Record a failed attempt (status NULL: keep it), and with who and action
 * its audit event, in one transaction. */
static void store_failure(struct db *db, struct arena *a, const struct oauth2_server *s,
                          const char *status, const struct oauth2_failure *f,
                          const struct audit_who *who, const char *action)
{
	int stored = 0;
	int audited = who != NULL && action != NULL;
	err_t e = audited ? db_begin(db) : E_OK;
	if (e == E_OK)
		e = db_oauth2_store_failure(db, s, status, f->code, f->description, &stored);
	if (e == E_OK && audited && stored) {
		const char *details = failure_details(a, f);
		e = details != NULL ? db_audit_record(db, who, action, s->id, NULL, details)
		                    : E_INTERNAL;
	}
	if (e == E_OK && audited)
		e = db_commit(db);
	if (e != E_OK) {
		if (audited)
			db_rollback(db);
		log_warning("could not record the failed token request of mail server %lld", s->id);
	}
}

/* Store a token answer with the scope it grants (asked: what the request
 * asked for, NULL when unknown); E_CONFLICT when the server's destination
 * changed. */
static err_t store_tokens(const struct app *app, struct db *db, struct arena *a,
                          const struct oauth2_server *s, const struct oauth2_token_response *tok,
                          const char *asked, const struct audit_who *who, const char *action,
                          struct oauth2_failure *f)
{
	int stored = 0;
	const char *granted = tok->scope_state == OAUTH2_SCOPE_GRANTED  ? tok->scope
	                      : tok->scope_state == OAUTH2_SCOPE_ABSENT ? asked
	                                                                : NULL;
	if (granted != NULL && granted[0] == '\0')
		granted = NULL;
	err_t e = E_OK;
	if (who != NULL && action != NULL) {
		/* The tokens and their event in one transaction. */
		int recorded = 0;
		e = db_begin(db);
		if (e == E_OK)
			e = db_oauth2_store_tokens(db, a, app->keyring, s, tok->access_token,
			                           tok->access_token_len, tok->expires_in,
			                           tok->refresh_token, tok->refresh_token_len,
			                           granted, &stored);
		if (e == E_OK && stored)
			recorded =
			    (e = db_audit_record(db, who, action, s->id, NULL, NULL)) == E_OK;
		if (e == E_OK)
			e = db_commit(db);
		if (e == E_OK)
			return stored
			           ? E_OK
			           : conflict(f, "settings_changed",
			                      "the server's token URL or client id changed during"
			                      " the request");
		db_rollback(db);
		/* The provider may have rotated the refresh token: the tokens
		 * matter more than their event, so when the event could not be
		 * written they are stored alone (and the loss is logged). */
		if (stored && !recorded)
			log_error("could not record the %s event of mail server %lld; storing its"
			          " tokens without it",
			          action, s->id);
		stored = 0;
	}
	e = db_oauth2_store_tokens(db, a, app->keyring, s, tok->access_token, tok->access_token_len,
	                           tok->expires_in, tok->refresh_token, tok->refresh_token_len,
	                           granted, &stored);
	if (e != E_OK) {
		/* The provider may have rotated the refresh token we could not
		 * store: say so loudly, the server may need authorizing again. */
		log_error("could not store the new tokens of mail server %lld; if the provider"
		          " rotated its refresh token, the server must be authorized again",
		          s->id);
		return e;
	}
	if (!stored) {
		log_warning(
		    "discarded the new tokens of mail server %lld: its token URL or client id"
		    " changed while they were requested",
		    s->id);
		return conflict(f, "settings_changed",
		                "the server's token URL or client id changed during the request");
	}
	return E_OK;
}

static int same(const char *x, const char *y)
{
	if (x == NULL || y == NULL)
		return x == y;
	return strcmp(x, y) == 0;
}

static int usable(const struct oauth2_server *s, long long margin_s)
{
	return s->access_token != NULL && (!s->has_expiry || s->expires_in_s > margin_s);
}

enum want { WANT_REFRESH, WANT_USABLE };

/* Take the outcome of the last attempt recorded in s. 1 when there is one
 * to take (*e set), 0 when this request must make its own. */
static int adopt(const struct oauth2_server *s, enum want want, struct oauth2_failure *f, err_t *e)
{
	if (s->last_attempt == NULL)
		return 0;
	if (s->last_error_code == NULL) {
		/* It succeeded (a success clears the last error). */
		if (want == WANT_USABLE && !usable(s, 0))
			return 0;
		if (s->access_token == NULL)
			return 0;
		*e = E_OK;
		return 1;
	}
	f->code = s->last_error_code;
	f->description = s->last_error_description;
	f->provider = !our_code(s->last_error_code);
	*e = err_for_code(s->last_error_code);
	return 1;
}

/* A stored secret of s does not decrypt: its ciphertext was changed or moved
 * in the database (each is sealed to its row and column), or its key left the
 * keyring. Logged here, once per request: the value never, the column always.
 * Nothing is sent anywhere with such a server. */
static err_t unreadable(struct arena *a, const struct oauth2_server *s, struct oauth2_failure *f)
{
	log_error("integrity: the stored %s of mail server %lld does not decrypt (changed in the"
	          " database, or its key left the keyring)",
	          s->unreadable, s->id);
	f->code = "secret_unreadable";
	f->description = arena_printf(a,
	                              "the stored %s of the mail server cannot be decrypted"
	                              " (it was changed outside the service, or its key is no"
	                              " longer in the keyring): enter it again",
	                              s->unreadable);
	f->provider = 0;
	return E_SECRET_UNREADABLE;
}

static err_t check_refreshable(const struct oauth2_server *s, struct oauth2_failure *f)
{
	if (!s->is_oauth2)
		return conflict(f, "not_oauth2", "the mail server does not use OAuth 2.0");
	if (s->refresh_token == NULL)
		return conflict(f, "no_refresh_token",
		                "the mail server has no refresh token; authorize it first");
	if (s->client_secret == NULL)
		return conflict(f, "no_client_secret",
		                "the mail server has no client secret (secret_key)");
	return E_OK;
}

/* Call the provider with s's refresh token and store the outcome. On
 * success out gets the new access token. */
static err_t refresh_now(const struct app *app, struct db *db, struct arena *a,
                         const struct oauth2_server *s, const struct audit_who *who,
                         struct oauth2_server *out, struct oauth2_failure *f)
{
	/* Only what was granted (RFC 6749 section 6: a refresh must not ask
	 * for more, and a strict provider refuses it with invalid_scope), or
	 * nothing, which means the same. Never the configured scope, which may
	 * hold what the provider left out. */
	const char *names[] = {"grant_type", "refresh_token", "client_id", "client_secret",
	                       "scope"};
	const char *values[] = {"refresh_token", s->refresh_token, s->client_id, s->client_secret,
	                        s->granted_scope};
	size_t len;
	char *form = oauth2_form(a, 5, names, values, &len);
	if (form == NULL)
		return E_INTERNAL;
	struct oauth2_token_response tok;
	err_t e = token_request(app, a, s, form, len, "refresh the access token", &tok, f);
	if (e == E_INTERNAL)
		return e;
	if (e != E_OK) {
		int invalid_grant = f->provider && strcmp(f->code, "invalid_grant") == 0;
		store_failure(
		    db, a, s, invalid_grant ? "reauthorization_required" : "error", f, who,
		    invalid_grant ? "oauth2.reauthorization_required" : "oauth2.refresh_failed");
		return e;
	}
	/* The drill of a crash between the provider's answer and its storing. */
	FAILPOINT("refresh-answered");
	if ((e = store_tokens(app, db, a, s, &tok, s->granted_scope, who, "oauth2.refreshed", f)) !=
	    E_OK)
		return e;
	log_info("refreshed the access token of mail server %lld%s", s->id,
	         tok.refresh_token ? " (the provider rotated the refresh token)" : "");
	*out = *s;
	out->access_token = tok.access_token;
	out->access_token_len = tok.access_token_len;
	return E_OK;
}

/* Did s's last attempt finish after the request arrived (arrival_ms > 0),
 * that is, was it running then or did it start later? Both times are
 * milliseconds; a tie counts as before (the request must be served now). */
static int after_arrival(const struct oauth2_server *s, long long arrival_ms)
{
	return arrival_ms > 0 && s->last_attempt != NULL && s->attempt_ms > arrival_ms;
}

static err_t single_flight(const struct app *app, struct db *db, struct arena *a, long long id,
                           enum want want, long long arrival_ms, const struct audit_who *who,
                           struct oauth2_server *out, struct oauth2_failure *f)
{
	struct oauth2_server s1, s2;
	int found;
	memset(f, 0, sizeof(*f));
	err_t e = db_oauth2_get(db, a, app->keyring, id, &s1, &found);
	if (e != E_OK)
		return e;
	if (!found)
		return E_NOT_FOUND;
	if (!s1.is_oauth2)
		return conflict(f, "not_oauth2", "the mail server does not use OAuth 2.0");
	if (s1.unreadable != NULL)
		return unreadable(a, &s1, f);
	if (want == WANT_USABLE) {
		if (usable(&s1, OAUTH2_REFRESH_MARGIN_S)) {
			*out = s1;
			return E_OK;
		}
		if (s1.status != NULL && strcmp(s1.status, "reauthorization_required") == 0) {
			f->code = s1.last_error_code ? s1.last_error_code : "invalid_grant";
			f->description = s1.last_error_description;
			f->provider = 1;
			return E_OAUTH2_PROVIDER;
		}
		/* Nothing to refresh with, but still valid for a while: use it. */
		if (s1.refresh_token == NULL && usable(&s1, 0)) {
			*out = s1;
			return E_OK;
		}
	}
	if ((e = check_refreshable(&s1, f)) != E_OK)
		return e;
	/* An attempt that was running when this request arrived (it queued in
	 * nginx meanwhile), or that started later, has finished: its outcome
	 * is ours. */
	if (after_arrival(&s1, arrival_ms) && adopt(&s1, want, f, &e)) {
		*out = s1;
		return e;
	}

	if ((e = db_oauth2_lock(db, id)) != E_OK)
		return e;
	e = db_oauth2_get(db, a, app->keyring, id, &s2, &found);
	if (e == E_OK && !found)
		e = E_NOT_FOUND;
	if (e == E_OK && s2.unreadable != NULL)
		e = unreadable(a, &s2, f);
	if (e != E_OK)
		goto out;
	*out = s2;
	if (want == WANT_USABLE && s2.is_oauth2 && usable(&s2, OAUTH2_REFRESH_MARGIN_S))
		goto out;
	/* Another request's attempt finished while we waited (so after this
	 * request arrived): take it. */
	if ((!same(s1.last_attempt, s2.last_attempt) || after_arrival(&s2, arrival_ms)) &&
	    s2.is_oauth2 && adopt(&s2, want, f, &e))
		goto out;
	if ((e = check_refreshable(&s2, f)) != E_OK)
		goto out;
	e = refresh_now(app, db, a, &s2, who, out, f);
out:
	db_oauth2_unlock(db, id);
	return e;
}

err_t oauth2_refresh(const struct app *app, struct db *db, struct arena *a, long long id,
                     long long arrival_ms, const struct audit_who *who, struct oauth2_failure *f)
{
	struct oauth2_server s;
	return single_flight(app, db, a, id, WANT_REFRESH, arrival_ms, who, &s, f);
}

err_t oauth2_access_token(const struct app *app, struct db *db, struct arena *a, long long id,
                          const struct audit_who *who, const char **token, size_t *len,
                          struct oauth2_failure *f)
{
	struct oauth2_server s;
	*token = NULL;
	*len = 0;
	/* No arrival: only an attempt it waited for stands in (and any token
	 * still usable does anyway). */
	err_t e = single_flight(app, db, a, id, WANT_USABLE, 0, who, &s, f);
	if (e != E_OK)
		return e;
	if (s.access_token == NULL)
		return conflict(f, "no_access_token", "the mail server has no access token");
	*token = s.access_token;
	*len = s.access_token_len;
	return E_OK;
}

err_t oauth2_exchange_code(const struct app *app, struct db *db, struct arena *a, long long id,
                           const char *code, const char *code_verifier,
                           const struct oauth2_flow *flow, const struct audit_who *who,
                           struct oauth2_failure *f)
{
	const char *actor = who != NULL ? who->actor : NULL;
	struct oauth2_server s;
	int found;
	memset(f, 0, sizeof(*f));
	char *redirect_uri = oauth2_redirect_uri(a, app->cfg.public_url);
	if (redirect_uri == NULL)
		return E_INTERNAL;
	/* Under the refresh lock: a refresh running meanwhile must not overwrite
	 * the tokens of this new authorization with those of the old one. */
	err_t e = db_oauth2_lock(db, id);
	if (e != E_OK)
		return e;
	e = db_oauth2_get(db, a, app->keyring, id, &s, &found);
	if (e == E_OK && !found)
		e = E_NOT_FOUND;
	if (e != E_OK)
		goto out;
	if (!s.is_oauth2) {
		e = conflict(f, "not_oauth2", "the mail server does not use OAuth 2.0");
		goto out;
	}
	/* The code goes to the token URL, for the client, that the flow started
	 * with, and only while the server still has them: after an edit the
	 * code belongs to the old destination, and the secret stored now (if
	 * any) was entered for the new one. */
	if (flow->token_url == NULL || flow->client_id == NULL ||
	    !same(s.token_url, flow->token_url) || !same(s.client_id, flow->client_id)) {
		log_info(
		    "refused the OAuth 2.0 callback of mail server %lld: its token URL or client id"
		    " changed since the authorization started",
		    id);
		e = conflict(f, "flow_settings_changed",
		             "the server's token URL or client id changed since the authorization"
		             " started; authorize it again");
		goto out;
	}
	s.token_url = flow->token_url;
	s.client_id = flow->client_id;
	/* Unreadable tokens are about to be replaced; the client secret is used. */
	if (s.unreadable != NULL && strcmp(s.unreadable, "secret_key") == 0) {
		e = unreadable(a, &s, f);
		goto out;
	}
	if (s.client_secret == NULL) {
		e = conflict(f, "no_client_secret",
		             "the mail server has no client secret (secret_key)");
		goto out;
	}
	const char *names[] = {"grant_type", "code",          "redirect_uri",
	                       "client_id",  "client_secret", "code_verifier"};
	const char *values[] = {"authorization_code", code,         redirect_uri, s.client_id,
	                        s.client_secret,      code_verifier};
	size_t len;
	char *form = oauth2_form(a, 6, names, values, &len);
	if (form == NULL) {
		e = E_INTERNAL;
		goto out;
	}
	struct oauth2_token_response tok;
	e = token_request(app, a, &s, form, len, "exchange the authorization code", &tok, f);
	if (e == E_OK)
		e = store_tokens(app, db, a, &s, &tok, flow->scope, who, "oauth2.connected", f);
	else if (e != E_INTERNAL)
		store_failure(db, a, &s, NULL, f, NULL, NULL);
	if (e == E_OK)
		log_info("mail server %lld is connected to its OAuth 2.0 provider (authorized by "
		         "\"%s\")",
		         id, actor ? actor : "");
out:
	db_oauth2_unlock(db, id);
	return e;
}

err_t oauth2_note_authorization_error(const struct app *app, struct db *db, struct arena *a,
                                      long long id, const struct oauth2_failure *f)
{
	struct oauth2_server s;
	int found, stored;
	err_t e = db_oauth2_get(db, a, app->keyring, id, &s, &found);
	if (e != E_OK || !found || !s.is_oauth2)
		return e;
	return db_oauth2_store_failure(db, &s, NULL, f->code, f->description, &stored);
}
