/*
 * oauth2_handlers.c - the OAuth 2.0 endpoints (docs/api.md, "OAuth 2.0"):
 *
 *   POST /mail-servers/{id}/oauth2/authorize  start the flow: 200 with the
 *        provider's authorization URL (state and PKCE stored first) and a
 *        cookie that binds the flow to this browser
 *   GET  /oauth2/callback                     public; authorized by its
 *        state and the flow's cookie: 303 to the console with the outcome,
 *        or 400 for a missing or unknown state
 *   POST /mail-servers/{id}/oauth2/refresh    refresh now: 200 with the
 *        server, or 502 naming the cause
 *
 * authorize and refresh take no request body: their routes refuse a
 * non-empty one with a 400 (an empty body with any Content-Type is fine).
 * The callback's query parameters are declared below; the state decides
 * before anything else, and a state that fails its check causes no call to
 * the provider. Neither the code nor the state ever reaches a log line.
 */
#include <string.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_mail_server.h"
#include "db_oauth2.h"
#include "handlers.h"
#include "http.h"
#include "http_db.h"
#include "db_audit.h"
#include "json.h"
#include "log.h"
#include "mail_server.h"
#include "mailsrv_limits.h"
#include "oauth2.h"
#include "outbound.h"
#include "router.h"
#include "validate.h"

/* The administrator, fit for a log line and the state row. */
static const char *actor_of(struct ctx *c)
{
	const char *sub = c->who.sub ? c->who.sub : "";
	/* 64 characters of at most 4 bytes fit OAUTH2_ACTOR_MAX_BYTES. */
	const char *a = oauth2_clean_text(c->arena, sub, strlen(sub), OAUTH2_ACTOR_MAX_BYTES / 4);
	return a ? a : "";
}

/* ---- authorize ---- */

err_t oauth2_handle_authorize(struct ctx *c)
{
	struct db *db = c->w->db;
	const struct app *app = c->w->app;
	struct ms_row row;
	int found;
	err_t e = db_ms_get(db, c->arena, c->id, 0, &row, &found);
	if (e != E_OK)
		return http_reject_db(c, e, DB_READ);
	if (!found)
		return http_reject(c, E_NOT_FOUND, "no mail server has this id");
	if (row.auth != AUTH_OAUTH2) {
		c->error_code = "not_oauth2";
		return http_reject(
		    c, E_CONFLICT,
		    "the mail server does not use OAuth 2.0 (its auth_type is basic)");
	}
	if (!row.secret_key_set) {
		c->error_code = "no_client_secret";
		return http_reject(
		    c, E_CONFLICT,
		    "the mail server has no client secret (secret_key); set it, then authorize");
	}
	/* Refused at save time already, unless the policy changed since. */
	const char *why =
	    outbound_url_refused(&app->cfg.outbound, row.token_url, strlen(row.token_url));
	if (why == NULL)
		why = outbound_url_refused(&app->cfg.outbound, row.authorization_url,
		                           strlen(row.authorization_url));
	if (why != NULL) {
		c->error_code = "destination_refused";
		return http_reject(c, E_DESTINATION_REFUSED,
		                   arena_printf(c->arena,
		                                "the outbound policy refuses the server's token or"
		                                " authorization URL (a %s address)",
		                                why));
	}

	char *state = oauth2_random_token(c->arena, OAUTH2_STATE_BYTES);
	char *verifier = oauth2_random_token(c->arena, OAUTH2_VERIFIER_BYTES);
	char *challenge = verifier ? oauth2_pkce_challenge(c->arena, verifier) : NULL;
	char *redirect_uri = oauth2_redirect_uri(c->arena, app->cfg.public_url);
	/* The browser binding: a random cookie value, only its hash stored. */
	char *binding = oauth2_random_token(c->arena, OAUTH2_BROWSER_BINDING_BYTES);
	unsigned char hash[32], binding_hash[32];
	if (state == NULL || challenge == NULL || redirect_uri == NULL || binding == NULL ||
	    crypto_sha256(state, strlen(state), hash) != 0 ||
	    crypto_sha256(binding, strlen(binding), binding_hash) != 0)
		return http_reject(c, E_INTERNAL, "could not make a state for the authorization");
	char *cookie_name = oauth2_cookie_name(c->arena, hash);
	char *cookie_path = oauth2_callback_path(c->arena, app->cfg.public_url);
	char *cookie = cookie_name && cookie_path
	                   ? oauth2_set_cookie(c->arena, cookie_name, binding, cookie_path,
	                                       app->cfg.public_url)
	                   : NULL;
	if (cookie == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	const char *actor = actor_of(c);
	struct oauth2_flow flow = {row.token_url, row.client_id, row.scope};

	/* Old states first (indexed, usually nothing to do). */
	if ((e = db_oauth2_state_purge(db)) != E_OK ||
	    (e = db_oauth2_state_insert(db, c->arena, app->keyring, hash, c->id, actor, verifier,
	                                binding_hash, &flow)) != E_OK)
		return http_reject_db(c, e, DB_WRITE);

	struct oauth2_authorize_params p = {
	    row.authorization_url, row.client_id, redirect_uri, row.scope, state, challenge};
	char *url = oauth2_authorize_url(c->arena, &p);
	if (url == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	log_info("started the OAuth 2.0 authorization of mail server %lld for \"%s\"", c->id,
	         actor);
	json_out_object_open(c->out);
	json_out_key(c->out, "authorization_url");
	json_out_cstring(c->out, url);
	json_out_object_close(c->out);
	http_header(c, "Set-Cookie", cookie);
	return http_json(c, 200);
}

/* ---- callback ---- */

/* 303 to the console with the outcome (error_code NULL: connected). */
static err_t to_console(struct ctx *c, long long id, const char *error_code)
{
	char *url = oauth2_console_url(c->arena, c->w->app->cfg.console_url, id, error_code);
	if (url == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	http_header(c, "Location", url);
	http_empty(c, 303);
	return E_OK;
}

/* The state: 43 base64url characters; anything else is unknown without a
 * look at the database (soft: the handler answers 400 "unknown"). */
static int state_ok(struct arena *a, const char *s, size_t len, struct input_value *v)
{
	return oauth2_state_wellformed(s, len);
}

/* The provider's error (RFC 6749 section 4.1.2.1): a short ASCII word; any
 * other value is reported as invalid_response (soft). */
static int error_ok(struct arena *a, const char *s, size_t len, struct input_value *v)
{
	return oauth2_error_code_ok(s, len) && strlen(s) == len;
}

/* The code passed on to the token endpoint: bounded, no control
 * characters; a bad one ends as invalid_request at the console (soft). */
static int code_ok(struct arena *a, const char *s, size_t len, struct input_value *v)
{
	return len > 0 && len <= OAUTH2_CODE_MAX_BYTES && !text_has_control_chars(s, len);
}

/* Shown to administrators: any text, kept as clean printable UTF-8 of at
 * most OAUTH2_ERROR_DESCRIPTION_MAX_CHARS characters. */
static int description_clean(struct arena *a, const char *s, size_t len, struct input_value *v)
{
	v->s = oauth2_clean_text(a, s, len, OAUTH2_ERROR_DESCRIPTION_MAX_CHARS);
	v->len = v->s ? strlen(v->s) : 0;
	return v->s != NULL;
}

/* GET /oauth2/callback, in enum oauth2_callback_param order. Providers add
 * parameters of their own (session_state, iss, scope, authuser, ...): only
 * these four matter. */
static const struct input_field callback_params[] = {
    [CB_STATE] = {.name = "state",
                  .kind = IN_FUNC,
                  .flags = IN_REQUIRED | IN_SOFT,
                  .check = state_ok,
                  .missing = "the state parameter is missing"},
    [CB_CODE] = {.name = "code", .kind = IN_FUNC, .flags = IN_SOFT, .check = code_ok},
    [CB_ERROR] = {.name = "error", .kind = IN_FUNC, .flags = IN_SOFT, .check = error_ok},
    [CB_ERROR_DESCRIPTION] = {.name = "error_description",
                              .kind = IN_FUNC,
                              .flags = IN_SOFT,
                              .check = description_clean},
};
const struct input_decl oauth2_callback_query = {
    callback_params, sizeof(callback_params) / sizeof(callback_params[0]), 1, NULL};

/* What the callback's state led to: the flow it started, if any. */
struct callback_state {
	enum oauth2_state_result sr;
	long long id;
	const char *actor, *verifier;
	struct oauth2_flow flow;
};

/* The state and the browser first: nothing else is looked at, nothing is
 * called and nothing stored, for a state that fails its check or comes back
 * in a browser that did not start its flow (no cookie, or a wrong one: the
 * state is left as it is). The flow's cookie is cleared once the state was
 * known. E_OK with st filled, or the rejection. */
static err_t consume_state(struct ctx *c, const struct input_value *state,
                           struct callback_state *st)
{
	const struct app *app = c->w->app;
	unsigned char hash[32], binding_hash[32];
	memset(st, 0, sizeof(*st));
	st->sr = OAUTH2_STATE_UNKNOWN;
	if (!state->valid)
		return E_OK;
	if (crypto_sha256(state->s, state->len, hash) != 0)
		return http_reject(c, E_INTERNAL, "could not hash the state");
	const char *name = oauth2_cookie_name(c->arena, hash);
	const char *path = oauth2_callback_path(c->arena, app->cfg.public_url);
	if (name == NULL || path == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	const char *binding = http_cookie_get(c->arena, c->req->cookie, name);
	int bound = binding != NULL && binding[0] != '\0';
	if (bound && crypto_sha256(binding, strlen(binding), binding_hash) != 0)
		return http_reject(c, E_INTERNAL, "could not hash the cookie");
	err_t e = db_oauth2_state_consume(c->w->db, c->arena, app->keyring, hash,
	                                  bound ? binding_hash : NULL, &st->sr, &st->id, &st->actor,
	                                  &st->verifier, &st->flow);
	if (e != E_OK)
		return http_reject_db(c, e, DB_WRITE);
	/* The flow's cookie has done its work, whatever the outcome. */
	if (binding != NULL && st->sr != OAUTH2_STATE_UNKNOWN)
		http_header(c, "Set-Cookie",
		            oauth2_set_cookie(c->arena, name, NULL, path, app->cfg.public_url));
	return E_OK;
}

err_t oauth2_handle_callback(struct ctx *c)
{
	struct db *db = c->w->db;
	const struct app *app = c->w->app;
	const struct input_value *code = &c->query[CB_CODE];
	const struct input_value *error = &c->query[CB_ERROR];
	const struct input_value *desc = &c->query[CB_ERROR_DESCRIPTION];
	struct callback_state st;
	err_t e;
	if ((e = consume_state(c, &c->query[CB_STATE], &st)) != E_OK)
		return e;
	enum oauth2_state_result sr = st.sr;
	long long id = st.id;
	if (sr == OAUTH2_STATE_UNKNOWN)
		return http_reject(c, E_BAD_REQUEST, "the state is unknown");
	if (sr == OAUTH2_STATE_SPENT) {
		log_info(
		    "refused an OAuth 2.0 callback for mail server %lld: its state has expired or"
		    " was used already",
		    id);
		return to_console(c, id, "invalid_state");
	}
	if (sr == OAUTH2_STATE_FOREIGN) {
		log_warning(
		    "refused an OAuth 2.0 callback for mail server %lld: the browser did not"
		    " start its flow (the flow's cookie is missing or wrong)",
		    id);
		return to_console(c, id, "invalid_state");
	}

	struct oauth2_failure f;
	memset(&f, 0, sizeof(f));
	if (error->present) {
		/* The provider's answer, e.g. access_denied (RFC 6749 4.1.2.1). */
		f.provider = 1;
		f.code = error->valid ? error->s : "invalid_response";
		f.description = desc->valid ? desc->s : NULL;
		if (oauth2_note_authorization_error(app, db, c->arena, id, &f) != E_OK)
			log_warning("could not record the failed authorization of mail server %lld",
			            id);
		log_info(
		    "the OAuth 2.0 authorization of mail server %lld failed: the provider answered"
		    " %s",
		    id, f.code);
		return to_console(c, id, f.code);
	}
	if (!code->valid) {
		log_info(
		    "the OAuth 2.0 authorization of mail server %lld failed: the provider sent no"
		    " usable code",
		    id);
		return to_console(c, id, "invalid_request");
	}

	/* The event names the administrator who started the flow. */
	struct audit_who who = audit_who_of(c);
	who.actor = st.actor != NULL ? st.actor : "";
	e = oauth2_exchange_code(app, db, c->arena, id, code->s, st.verifier, &st.flow, &who, &f);
	switch (e) {
	case E_OK:
		return to_console(c, id, NULL);
	case E_CONFLICT:
		/* Started for a token URL or client the server no longer has:
		 * like an expired state, start again. */
		if (f.code != NULL && strcmp(f.code, "flow_settings_changed") == 0)
			return to_console(c, id, "invalid_state");
		return to_console(c, id, "token_exchange_failed");
	case E_DB_UNAVAILABLE:
		return http_reject_db(c, e, DB_WRITE);
	case E_INTERNAL:
		return http_reject(c, E_INTERNAL, "could not finish the authorization");
	case E_SECRET_UNREADABLE:
		return to_console(c, id, "secret_unreadable");
	case E_DESTINATION_REFUSED:
		return to_console(c, id, "destination_refused");
	case E_OAUTH2_PROVIDER:
		if (f.provider)
			return to_console(c, id, f.code);
		return to_console(c, id, "token_exchange_failed");
	default:
		return to_console(c, id, "token_exchange_failed");
	}
}

/* ---- refresh ---- */

err_t oauth2_handle_refresh(struct ctx *c)
{
	struct db *db = c->w->db;
	struct oauth2_failure f;
	struct ms_row row;
	int found;
	struct audit_who who = audit_who_of(c);
	err_t e = oauth2_refresh(c->w->app, db, c->arena, c->id, c->req->arrival_ms, &who, &f);
	switch (e) {
	case E_OK:
		break;
	case E_NOT_FOUND:
	case E_DB_UNAVAILABLE:
		return http_reject_db(c, e, DB_WRITE);
	case E_CONFLICT:
	case E_SECRET_UNREADABLE:
		c->error_code = f.code;
		return http_reject(c, e, f.description);
	case E_OAUTH2_PROVIDER:
	case E_DESTINATION_REFUSED:
	case E_UPSTREAM_TIMEOUT:
	case E_UPSTREAM_UNREACHABLE:
		c->error_code = f.code;
		if (f.provider && strcmp(f.code, "invalid_grant") == 0)
			return http_reject(
			    c, e,
			    "the provider refused the refresh token (invalid_grant): the"
			    " mail server must be authorized again");
		if (f.provider)
			return http_reject(c, e,
			                   arena_printf(c->arena,
			                                "the provider refused to refresh the"
			                                " access token (%s)",
			                                f.code));
		return http_reject(c, e,
		                   arena_printf(c->arena, "could not refresh the access token: %s",
		                                f.description ? f.description : f.code));
	default:
		return http_reject(c, E_INTERNAL, "could not refresh the access token");
	}
	if ((e = db_ms_get(db, c->arena, c->id, 0, &row, &found)) != E_OK)
		return http_reject_db(c, e, DB_READ);
	if (!found)
		return http_reject(c, E_NOT_FOUND, "no mail server has this id");
	ms_row_to_json(c->out, &row);
	http_header(c, "ETag", arena_printf(c->arena, "\"%lld\"", row.version));
	return http_json(c, 200);
}
