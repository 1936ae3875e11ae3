/*
 * oauth2.h - the OAuth 2.0 authorization-code flow with PKCE for a
 * confidential client (RFC 6749, RFC 7636; docs/api.md, "OAuth 2.0";
 * docs/oauth2.md), and the access token's life after it: refresh on
 * request and automatically before use, one refresh per server at a time
 * across every worker and host.
 *
 * The pure parts (URLs, PKCE, the token response parser) need neither the
 * database nor the network and are unit-tested and fuzzed on their own.
 * Nothing here logs or returns a secret, a code, a state or a token; the
 * provider's error code and description are kept, cleaned and bounded.
 */
#ifndef MAILSRV_OAUTH2_H
#define MAILSRV_OAUTH2_H

#include <stddef.h>

#include "err.h"

struct app;
struct arena;
struct audit_who;
struct db;
struct json_value;
struct oauth2_flow;

/* ---- building blocks (pure) ---- */

/* A fresh random state or PKCE verifier: OAUTH2_STATE_BYTES /
 * OAUTH2_VERIFIER_BYTES random bytes as base64url (43 characters). NULL when
 * randomness or memory fails. */
char *oauth2_random_token(struct arena *a, size_t bytes);
/* The S256 challenge of a verifier: base64url(SHA-256(verifier)). */
char *oauth2_pkce_challenge(struct arena *a, const char *verifier);
/* 1 when s could be a state this service issued (43 base64url characters). */
int oauth2_state_wellformed(const char *s, size_t len);

/* RFC 3986 percent-encoding: everything but unreserved characters. */
char *oauth2_pct_encode(struct arena *a, const char *s, size_t len);

/* <public_url without trailing slashes>/api/v1/oauth2/callback */
char *oauth2_redirect_uri(struct arena *a, const char *public_url);

struct oauth2_authorize_params {
	const char *authorization_url; /* the server's, may hold a query */
	const char *client_id;
	const char *redirect_uri;
	const char *scope; /* NULL or "": not sent */
	const char *state;
	const char *code_challenge;
};
/* The provider's authorization URL (RFC 6749 section 4.1.1, RFC 7636
 * section 4.3): the configured URL (its fragment dropped) plus
 * response_type=code, client_id, redirect_uri, scope, state,
 * code_challenge, code_challenge_method=S256; for Google's authorization
 * host also access_type=offline and prompt=consent (without them Google
 * issues no refresh token, or only on the very first consent), unless the
 * configured URL already sets them. */
char *oauth2_authorize_url(struct arena *a, const struct oauth2_authorize_params *p);

/* The path of the redirect URI as browsers send it (after the scheme and
 * host of public_url): the Path of the flows' cookies. */
char *oauth2_callback_path(struct arena *a, const char *public_url);

/* The cookie that binds a flow to the browser that started it: one per
 * flow, named "mailsrv_oauth2_" plus base64url of the first
 * OAUTH2_COOKIE_NAME_HASH_BYTES of the state's SHA-256, so that the
 * callback finds it from the state and two flows in one browser keep their
 * own. Its value is random; only its SHA-256 is stored, with the state. */
char *oauth2_cookie_name(struct arena *a, const unsigned char state_hash[32]);
/* The Set-Cookie value that sets it (value NULL: that drops it):
 * HttpOnly, SameSite=Lax (the provider's redirect back is a top-level
 * navigation, which carries Lax cookies), Path=path, Max-Age of the state's
 * lifetime (0 to drop), Secure when public_url is https. */
char *oauth2_set_cookie(struct arena *a, const char *name, const char *value, const char *path,
                        const char *public_url);

/* Where the callback sends the browser: console_url (before its fragment)
 * plus mail_server_id=<id>&oauth2=connected, or &oauth2=error&error=<code>
 * when error_code is not NULL. '?' or '&' as the console URL needs. */
char *oauth2_console_url(struct arena *a, const char *console_url, long long id,
                         const char *error_code);

/* application/x-www-form-urlencoded body: n name/value pairs (a NULL value
 * leaves its pair out). */
char *oauth2_form(struct arena *a, size_t n, const char *const *names, const char *const *values,
                  size_t *len);

/* A copy of s fit for storing and showing: control characters become
 * spaces, at most max_chars Unicode characters (cut at a character
 * boundary), invalid UTF-8 replaced by '?'. NULL when s is NULL. */
char *oauth2_clean_text(struct arena *a, const char *s, size_t len, size_t max_chars);
/* An RFC 6749 error code as we keep it: 1-OAUTH2_ERROR_CODE_MAX_BYTES
 * characters of %x20-21 / %x23-5B / %x5D-7E. */
int oauth2_error_code_ok(const char *s, size_t len);

/* A token endpoint's answer (RFC 6749 sections 5.1 and 5.2). */
struct oauth2_token_response {
	const char *access_token; /* tokens: in the arena, never logged */
	size_t access_token_len;
	const char *refresh_token; /* NULL: the answer has none (keep the old) */
	size_t refresh_token_len;
	long long expires_in; /* seconds, capped; -1 when absent */
	/* The scope the answer grants: OAUTH2_SCOPE_ABSENT (then it is the one
	 * asked for, RFC 6749 section 5.1), _GRANTED (scope, NUL-terminated in
	 * the arena), or _MALFORMED (not a string of scope tokens, or longer
	 * than OAUTH2_GRANTED_SCOPE_MAX_BYTES: unknown). */
	int scope_state;
	const char *scope;
	const char *error;             /* error answers: the code */
	const char *error_description; /* cleaned, NULL when absent */
};

enum { OAUTH2_SCOPE_ABSENT, OAUTH2_SCOPE_GRANTED, OAUTH2_SCOPE_MALFORMED };

/* A scope as RFC 6749 section 3.3 spells it: scope tokens of %x21 /
 * %x23-5B / %x5D-7E separated by single spaces, 1 to
 * OAUTH2_GRANTED_SCOPE_MAX_BYTES bytes. */
int oauth2_scope_ok(const char *s, size_t len);

enum oauth2_answer {
	OAUTH2_ANSWER_TOKENS,  /* a usable token answer */
	OAUTH2_ANSWER_ERROR,   /* an RFC 6749 error answer */
	OAUTH2_ANSWER_INVALID, /* neither: *why says what is wrong */
};

/* Read a parsed JSON object: access_token (1-SECRET_MAX_BYTES, no control
 * characters), token_type (Bearer, any case), expires_in (a non-negative
 * integer, or a string of digits as older Azure endpoints sent), optional
 * refresh_token (same rules as access_token); or error with optional
 * error_description. Other members are ignored. */
enum oauth2_answer oauth2_read_token_response(struct arena *a, const struct json_value *root,
                                              struct oauth2_token_response *out, const char **why);
/* The same from raw bytes, through json_parse (for the fuzzer and tests). */
enum oauth2_answer oauth2_parse_token_response(struct arena *a, const char *buf, size_t len,
                                               struct oauth2_token_response *out, const char **why);

/* ---- flows (database and network) ---- */

/* Why a flow failed, as the server's oauth2_last_error shows it: the
 * provider's error code and description, or ours ("timeout", "unreachable",
 * "tls_failed", "destination_refused", "invalid_response"). provider is 1
 * when the code is the provider's own. */
struct oauth2_failure {
	const char *code;
	const char *description;
	int provider;
};

/*
 * Exchange an authorization code (the callback, after its state was
 * consumed) for tokens at the token URL and for the client id the flow
 * started with (flow, kept with the state), and store them with the scope
 * granted (the answer's, or the one the flow asked for). Runs under the
 * server's refresh lock. When the server's token URL or client id is not the
 * flow's any more, nothing is sent anywhere: E_CONFLICT with f->code
 * "flow_settings_changed" (the code belongs to the old destination, and a
 * secret entered since belongs to the new one). Errors: E_NOT_FOUND (no such
 * server), E_CONFLICT (not oauth2 any more, no client secret),
 * E_DB_UNAVAILABLE, E_INTERNAL, or an outbound/provider error with *f set
 * (also stored as the server's last error; its status is left as it was).
 * who: the administrator who started the flow (kept with the state), for
 * the oauth2.connected event written with the tokens.
 */
err_t oauth2_exchange_code(const struct app *app, struct db *db, struct arena *a, long long id,
                           const char *code, const char *code_verifier,
                           const struct oauth2_flow *flow, const struct audit_who *who,
                           struct oauth2_failure *f);

/* The provider sent the browser back with an error (the callback's error
 * parameter, e.g. access_denied): record it as the server's last error,
 * leaving its status and tokens as they are. */
err_t oauth2_note_authorization_error(const struct app *app, struct db *db, struct arena *a,
                                      long long id, const struct oauth2_failure *f);

/*
 * Refresh server id's access token now (the refresh endpoint). It asks for
 * the scope granted with the stored tokens, or for none when that is
 * unknown. Single flight: a request takes the outcome of another attempt
 * of the same server, without calling the provider, only when that attempt
 * finished after the request arrived (arrival_ms, when nginx received it;
 * 0: unknown), that is when it was still running then or started later, or
 * when it finished while this request waited for it. An attempt that
 * finished before the request arrived never stands in for it. A failure is
 * stored: invalid_grant sets oauth2_status to reauthorization_required,
 * any other failure to error. Errors as above; E_CONFLICT also when no
 * refresh token is stored.
 *
 * The outcome of this request's own call is an audit event (who: the
 * administrator; NULL records none): oauth2.refreshed in the transaction
 * that stores the tokens, oauth2.refresh_failed or
 * oauth2.reauthorization_required in the one that stores the failure. An
 * outcome taken from another attempt records nothing (that attempt did).
 */
err_t oauth2_refresh(const struct app *app, struct db *db, struct arena *a, long long id,
                     long long arrival_ms, const struct audit_who *who, struct oauth2_failure *f);

/*
 * A usable access token for server id (for the SMTP login): the stored one
 * when it has no known expiry or expires in more than
 * OAUTH2_REFRESH_MARGIN_S, else refreshed first (single flight, as above).
 * *token (NUL-terminated, in the arena) must never be logged. A server
 * marked reauthorization_required fails at once (E_OAUTH2_PROVIDER,
 * invalid_grant) without calling the provider. A refresh it makes is
 * recorded for who as oauth2_refresh says.
 */
err_t oauth2_access_token(const struct app *app, struct db *db, struct arena *a, long long id,
                          const struct audit_who *who, const char **token, size_t *len,
                          struct oauth2_failure *f);

#endif
