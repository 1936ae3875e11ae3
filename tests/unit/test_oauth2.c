/*
 * test_oauth2.c - unit tests of src/oauth2.c's pure parts: PKCE (RFC 7636
 * appendix B), states, percent- and form-encoding, the authorization and
 * console URLs, the cleaning of provider text, and the token response
 * parser (table-driven).
 *
 * Integration mode: with OAUTH2_IT_SERVER_ID set (and the service's
 * MAILSRV_* settings), it instead calls oauth2_access_token() for that
 * server from OAUTH2_IT_THREADS threads at once, each with its own database
 * connection as separate worker processes have, and checks that they all
 * get the same token (or all the same failure). tests/api/
 * test_oauth2_refresh.py drives it against the test stack and the stand-in
 * provider, counting the provider's calls. It prints outcomes, never a token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "arena.h"
#include "db.h"
#include "json.h"
#include "mailsrv_limits.h"
#include "oauth2.h"
#include "outbound.h"

static struct arena *A;

static int setup(void **state)
{
	(void)state;
	A = arena_new(4 << 20);
	return A ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(A);
	return 0;
}

static void test_pkce(void **state)
{
	(void)state;
	/* RFC 7636 appendix B */
	assert_string_equal(oauth2_pkce_challenge(A, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
	                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
	char *v1 = oauth2_random_token(A, OAUTH2_VERIFIER_BYTES);
	char *v2 = oauth2_random_token(A, OAUTH2_VERIFIER_BYTES);
	assert_int_equal(strlen(v1), 43); /* RFC 7636 4.1: 43-128 characters */
	assert_string_not_equal(v1, v2);
	assert_int_equal(strlen(oauth2_pkce_challenge(A, v1)), 43);
	assert_null(oauth2_random_token(A, 0));
	assert_null(oauth2_random_token(A, 65));
}

static void test_state(void **state)
{
	(void)state;
	char *s = oauth2_random_token(A, OAUTH2_STATE_BYTES);
	assert_true(oauth2_state_wellformed(s, strlen(s)));
	assert_true(oauth2_state_wellformed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJK-_0123", 43));
	assert_false(oauth2_state_wellformed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJK-_012", 42));
	assert_false(oauth2_state_wellformed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJK-_01234", 44));
	assert_false(oauth2_state_wellformed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJK+/0123", 43));
	assert_false(oauth2_state_wellformed("abcdefghijklmnopqrstuvwxyzABCDEFGHIJK\0_0123", 43));
	assert_false(oauth2_state_wellformed(NULL, 0));
	/* 1000 states: no repeat */
	char *seen[1000];
	for (int i = 0; i < 1000; i++) {
		seen[i] = oauth2_random_token(A, OAUTH2_STATE_BYTES);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(seen[i], seen[j]);
	}
}

static void test_pct_encode_and_form(void **state)
{
	(void)state;
	assert_string_equal(oauth2_pct_encode(A, "aZ09-._~ &=/+?#%\xc3\xa9", 18),
	                    "aZ09-._~%20%26%3D%2F%2B%3F%23%25%C3%A9");
	assert_string_equal(oauth2_pct_encode(A, "a\0b", 3), "a%00b");
	assert_string_equal(oauth2_pct_encode(A, "", 0), "");
	const char *names[] = {"grant_type", "code", "scope", "x"};
	const char *values[] = {"authorization_code", "a+b c", NULL, ""};
	size_t len;
	char *f = oauth2_form(A, 4, names, values, &len);
	assert_string_equal(f, "grant_type=authorization_code&code=a%2Bb%20c&x=");
	assert_int_equal(len, strlen(f));
	f = oauth2_form(A, 0, names, values, &len);
	assert_string_equal(f, "");
}

static void test_redirect_uri(void **state)
{
	(void)state;
	assert_string_equal(oauth2_redirect_uri(A, "https://console.example.com"),
	                    "https://console.example.com/api/v1/oauth2/callback");
	assert_string_equal(oauth2_redirect_uri(A, "https://console.example.com//"),
	                    "https://console.example.com/api/v1/oauth2/callback");
	assert_string_equal(oauth2_redirect_uri(A, "http://127.0.0.1:8080/"),
	                    "http://127.0.0.1:8080/api/v1/oauth2/callback");
	assert_string_equal(oauth2_redirect_uri(A, "https://h.example/mail"),
	                    "https://h.example/mail/api/v1/oauth2/callback");
}

static const char *authz(const char *base, const char *scope)
{
	struct oauth2_authorize_params p = {base, "cid 1", "https://h/cb", scope, "STATE", "CH"};
	return oauth2_authorize_url(A, &p);
}

static void test_authorize_url(void **state)
{
	(void)state;
	static const char tail[] = "response_type=code&client_id=cid%201&redirect_uri="
	                           "https%3A%2F%2Fh%2Fcb&scope=a%20b&state=STATE"
	                           "&code_challenge=CH&code_challenge_method=S256";
	char want[512];
	snprintf(want, sizeof(want), "https://l.example/authorize?%s", tail);
	assert_string_equal(authz("https://l.example/authorize", "a b"), want);
	snprintf(want, sizeof(want), "https://l.example/authorize?p=1&%s", tail);
	assert_string_equal(authz("https://l.example/authorize?p=1", "a b"), want);
	assert_string_equal(authz("https://l.example/authorize?p=1&", "a b"), want);
	snprintf(want, sizeof(want), "https://l.example/authorize?%s", tail);
	assert_string_equal(authz("https://l.example/authorize?", "a b"), want);
	assert_string_equal(authz("https://l.example/authorize#frag", "a b"), want);
	/* no scope: no scope parameter */
	assert_null(strstr(authz("https://l.example/a", NULL), "scope="));
	assert_null(strstr(authz("https://l.example/a", ""), "scope="));
	/* Google's host: offline access and consent, once */
	const char *g =
	    authz("https://accounts.google.com/o/oauth2/v2/auth", "https://mail.google.com/");
	assert_non_null(strstr(g, "&access_type=offline"));
	assert_non_null(strstr(g, "&prompt=consent"));
	g = authz("https://ACCOUNTS.google.com:443/o/oauth2/v2/auth?access_type=online", "x");
	assert_null(strstr(g, "access_type=offline"));
	assert_non_null(strstr(g, "&prompt=consent"));
	g = authz("https://accounts.google.com.evil.example/auth", "x");
	assert_null(strstr(g, "access_type"));
	g = authz("https://evil.example/accounts.google.com", "x");
	assert_null(strstr(g, "access_type"));
}

static void test_console_url(void **state)
{
	(void)state;
	assert_string_equal(oauth2_console_url(A, "https://c.example/", 5, NULL),
	                    "https://c.example/?mail_server_id=5&oauth2=connected");
	assert_string_equal(
	    oauth2_console_url(A, "https://c.example/s?tab=mail", 5, "access_denied"),
	    "https://c.example/s?tab=mail&mail_server_id=5&oauth2=error"
	    "&error=access_denied");
	assert_string_equal(oauth2_console_url(A, "https://c.example/#/settings/mail", 12, "a b&c"),
	                    "https://c.example/?mail_server_id=12&oauth2=error&error=a%20b%26c"
	                    "#/settings/mail");
	assert_string_equal(oauth2_console_url(A, "https://c.example/x?", 1, NULL),
	                    "https://c.example/x?mail_server_id=1&oauth2=connected");
}

static void test_clean_text(void **state)
{
	(void)state;
	assert_string_equal(oauth2_clean_text(A,
	                                      "a\r\nb\tc\x7f"
	                                      "d",
	                                      8, 100),
	                    "a  b c d");
	/* U+0085 (C1) becomes a space; U+00E9 stays */
	assert_string_equal(oauth2_clean_text(A, "x\xc2\x85y\xc3\xa9", 6, 100), "x y\xc3\xa9");
	/* invalid UTF-8: overlong, lone continuation, truncated, surrogate */
	assert_string_equal(oauth2_clean_text(A, "\xc0\xaf|\x80|\xe2\x82|\xed\xa0\x80", 11, 100),
	                    "??|?|??|???");
	/* NUL inside */
	assert_string_equal(oauth2_clean_text(A, "a\0b", 3, 100), "a b");
	/* cut at max characters, never inside one */
	assert_string_equal(oauth2_clean_text(A, "\xc3\xa9\xc3\xa9\xc3\xa9", 6, 2),
	                    "\xc3\xa9\xc3\xa9");
	assert_string_equal(oauth2_clean_text(A, "abc", 3, 0), "");
	assert_null(oauth2_clean_text(A, NULL, 0, 10));
}

static void test_error_code(void **state)
{
	(void)state;
	assert_true(oauth2_error_code_ok("invalid_grant", 13));
	assert_true(oauth2_error_code_ok("a b!#[]^~", 9));
	assert_false(oauth2_error_code_ok("", 0));
	assert_false(oauth2_error_code_ok("a\"b", 3));
	assert_false(oauth2_error_code_ok("a\\b", 3));
	assert_false(oauth2_error_code_ok("a\nb", 3));
	assert_false(oauth2_error_code_ok("\xc3\xa9", 2));
	char long_code[OAUTH2_ERROR_CODE_MAX_BYTES + 2];
	memset(long_code, 'x', sizeof(long_code));
	assert_true(oauth2_error_code_ok(long_code, OAUTH2_ERROR_CODE_MAX_BYTES));
	assert_false(oauth2_error_code_ok(long_code, OAUTH2_ERROR_CODE_MAX_BYTES + 1));
}

struct token_case {
	const char *json;
	enum oauth2_answer want;
	long long expires_in;
	int has_refresh;
};

static void test_token_response(void **state)
{
	(void)state;
	static const struct token_case t[] = {
	    {"{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"expires_in\":3599,"
	     "\"refresh_token\":\"rt\",\"scope\":\"x\"}",
	     OAUTH2_ANSWER_TOKENS, 3599, 1},
	    /* Google without refresh_token; bearer in any case; extra members */
	    {"{\"access_token\":\"at\",\"token_type\":\"bearer\",\"expires_in\":3599,"
	     "\"id_token\":\"x.y.z\",\"ext\":{\"a\":[1,2]}}",
	     OAUTH2_ANSWER_TOKENS, 3599, 0},
	    /* older Azure: expires_in as a string */
	    {"{\"access_token\":\"at\",\"token_type\":\"Bearer\",\"expires_in\":\"3600\"}",
	     OAUTH2_ANSWER_TOKENS, 3600, 0},
	    /* no expiry, no token_type */
	    {"{\"access_token\":\"at\"}", OAUTH2_ANSWER_TOKENS, -1, 0},
	    {"{\"access_token\":\"at\",\"expires_in\":null,\"refresh_token\":null}",
	     OAUTH2_ANSWER_TOKENS, -1, 0},
	    {"{\"access_token\":\"at\",\"refresh_token\":\"\"}", OAUTH2_ANSWER_TOKENS, -1, 0},
	    /* capped */
	    {"{\"access_token\":\"at\",\"expires_in\":99999999999}", OAUTH2_ANSWER_TOKENS,
	     OAUTH2_EXPIRES_IN_MAX_S, 0},
	    {"{\"access_token\":\"at\",\"expires_in\":0}", OAUTH2_ANSWER_TOKENS, 0, 0},
	    /* errors */
	    {"{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS70000: bad\"}",
	     OAUTH2_ANSWER_ERROR, -1, 0},
	    {"{\"error\":\"invalid_client\"}", OAUTH2_ANSWER_ERROR, -1, 0},
	    {"{\"error\":\"x\",\"access_token\":\"at\"}", OAUTH2_ANSWER_ERROR, -1, 0},
	    {"{\"error\":\"a\\\"b\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"error\":42}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"error\":\"\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    /* invalid */
	    {"{}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"[]", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"\"at\"", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":42}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"a\\u0000b\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"a\\r\\nb\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"token_type\":\"mac\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"token_type\":\"Bearerx\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"expires_in\":-1}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"expires_in\":3599.5}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"expires_in\":\"36x\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"expires_in\":\"\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"expires_in\":true}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"refresh_token\":7}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\",\"refresh_token\":\"a\\tb\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    /* duplicate keys, bad JSON, trailing text, comments, deep nesting */
	    {"{\"access_token\":\"a\",\"access_token\":\"b\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\"", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"access_token\":\"at\"} x", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{/*c*/\"access_token\":\"at\"}", OAUTH2_ANSWER_INVALID, -1, 0},
	    {"{\"a\":[[[[[[[[[[[[[[1]]]]]]]]]]]]]],\"access_token\":\"at\"}", OAUTH2_ANSWER_INVALID,
	     -1, 0},
	    {"", OAUTH2_ANSWER_INVALID, -1, 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct oauth2_token_response r;
		const char *why = NULL;
		enum oauth2_answer got =
		    oauth2_parse_token_response(A, t[i].json, strlen(t[i].json), &r, &why);
		if (got != t[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i, t[i].json, got, t[i].want);
		if (got == OAUTH2_ANSWER_INVALID)
			assert_non_null(why);
		if (got == OAUTH2_ANSWER_TOKENS) {
			assert_int_equal(r.expires_in, t[i].expires_in);
			assert_int_equal(r.refresh_token != NULL, t[i].has_refresh);
			assert_string_equal(r.access_token, "at");
			assert_int_equal(r.access_token_len, 2);
		}
	}
	/* the error's description is cleaned and capped */
	char big[3000];
	int n = snprintf(big, sizeof(big),
	                 "{\"error\":\"server_error\",\"error_description\":\"a\\n\\u0007");
	memset(big + n, 'x', 2000);
	strcpy(big + n + 2000, "\"}");
	struct oauth2_token_response r;
	const char *why;
	assert_int_equal(oauth2_parse_token_response(A, big, strlen(big), &r, &why),
	                 OAUTH2_ANSWER_ERROR);
	assert_string_equal(r.error, "server_error");
	assert_int_equal(strlen(r.error_description), OAUTH2_ERROR_DESCRIPTION_MAX_CHARS);
	assert_memory_equal(r.error_description, "a  xx", 5);
	/* tokens up to SECRET_MAX_BYTES */
	char *tok = malloc(SECRET_MAX_BYTES + 64);
	n = sprintf(tok, "{\"access_token\":\"");
	memset(tok + n, 'a', SECRET_MAX_BYTES);
	strcpy(tok + n + SECRET_MAX_BYTES, "\"}");
	assert_int_equal(oauth2_parse_token_response(A, tok, strlen(tok), &r, &why),
	                 OAUTH2_ANSWER_TOKENS);
	memset(tok + n, 'a', SECRET_MAX_BYTES + 1);
	strcpy(tok + n + SECRET_MAX_BYTES + 1, "\"}");
	assert_int_equal(oauth2_parse_token_response(A, tok, strlen(tok), &r, &why),
	                 OAUTH2_ANSWER_INVALID);
	free(tok);
}

/* ---- integration mode ---- */

/* Every thread connects first, then all start the flight together: the
 * test is about the refresh, not about 50 connects racing on a busy
 * machine (a connect that times out is retried). */
static pthread_barrier_t it_start;

struct it_thread {
	pthread_t t;
	const struct app *app;
	long long id;
	err_t e;
	char code[80];
	char token_hash[65]; /* compare tokens without keeping them */
};

static void *it_run(void *arg)
{
	struct it_thread *it = arg;
	struct arena *a = arena_new(1 << 20);
	struct db *db = db_new(it->app->cfg.database_url);
	it->e = E_INTERNAL;
	int connected = 0;
	for (int attempt = 0; attempt < 10 && a != NULL && db != NULL && !connected; attempt++)
		connected = db_ensure(db) == E_OK;
	pthread_barrier_wait(&it_start);
	if (!connected) {
		snprintf(it->code, sizeof(it->code), "no database");
		goto out;
	}
	const char *token;
	size_t len;
	struct oauth2_failure f;
	it->e = oauth2_access_token(it->app, db, a, it->id, NULL, &token, &len, &f);
	if (it->e == E_OK) {
		/* a stand-in's token is ASCII: keep a fingerprint, not the token */
		unsigned long h = 5381;
		for (size_t i = 0; i < len; i++)
			h = h * 33 + (unsigned char)token[i];
		snprintf(it->token_hash, sizeof(it->token_hash), "%lx-%zu", h, len);
	} else {
		snprintf(it->code, sizeof(it->code), "%s", f.code ? f.code : "(none)");
	}
out:
	db_free(db);
	arena_free(a);
	return NULL;
}

static int integration(const char *server_id)
{
	struct app app;
	char err[512];
	if (outbound_global_init() != 0 || app_init(&app, err, sizeof(err)) != 0) {
		fprintf(stderr, "integration: could not start: %s\n", err);
		return 2;
	}
	int n = getenv("OAUTH2_IT_THREADS") ? atoi(getenv("OAUTH2_IT_THREADS")) : 1;
	if (n < 1 || n > 200)
		n = 1;
	struct it_thread *th = calloc((size_t)n, sizeof(*th));
	pthread_barrier_init(&it_start, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		th[i].app = &app;
		th[i].id = strtoll(server_id, NULL, 10);
		pthread_create(&th[i].t, NULL, it_run, &th[i]);
	}
	int same = 1;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i].t, NULL);
		printf("thread %d: err %d %s%s\n", i, th[i].e, th[i].e == E_OK ? "token " : "code ",
		       th[i].e == E_OK ? th[i].token_hash : th[i].code);
		if (th[i].e != th[0].e || strcmp(th[i].token_hash, th[0].token_hash) != 0 ||
		    strcmp(th[i].code, th[0].code) != 0)
			same = 0;
	}
	printf("integration: %d threads, %s\n", n, same ? "one outcome" : "DIFFERENT OUTCOMES");
	pthread_barrier_destroy(&it_start);
	free(th);
	app_free(&app);
	return same ? 0 : 1;
}

static void test_browser_cookie(void **state)
{
	(void)state;
	assert_string_equal(oauth2_callback_path(A, "https://console.example.com"),
	                    "/api/v1/oauth2/callback");
	assert_string_equal(oauth2_callback_path(A, "https://h.example:8443/mail/"),
	                    "/mail/api/v1/oauth2/callback");
	unsigned char h[32];
	for (int i = 0; i < 32; i++)
		h[i] = (unsigned char)(i * 7);
	char *name = oauth2_cookie_name(A, h);
	assert_string_equal(name, "mailsrv_oauth2_AAcOFRwjKjE4P0ZN");
	h[31] ^= 1; /* beyond the bytes that name it */
	assert_string_equal(oauth2_cookie_name(A, h), name);
	h[0] ^= 1;
	assert_string_not_equal(oauth2_cookie_name(A, h), name);
	assert_string_equal(oauth2_set_cookie(A, "n", "v", "/p", "http://127.0.0.1:8080"),
	                    "n=v; Path=/p; Max-Age=600; HttpOnly; SameSite=Lax");
	assert_string_equal(oauth2_set_cookie(A, "n", "v", "/p", "HTTPS://h.example"),
	                    "n=v; Path=/p; Max-Age=600; HttpOnly; SameSite=Lax; Secure");
	assert_string_equal(oauth2_set_cookie(A, "n", NULL, "/p", "https://h.example"),
	                    "n=; Path=/p; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
}

static void test_scope(void **state)
{
	(void)state;
#define OK(s)  assert_true(oauth2_scope_ok(s, strlen(s)))
#define BAD(s) assert_false(oauth2_scope_ok(s, strlen(s)))
	OK("https://outlook.office.com/SMTP.Send");
	OK("https://outlook.office.com/SMTP.Send offline_access openid");
	OK("!#[]~");
	BAD("");
	BAD(" a");
	BAD("a ");
	BAD("a  b");
	BAD("a\tb");
	BAD("a\"b");
	BAD("a\\b");
	BAD("a\x7f");
	BAD("caf\xc3\xa9");
#undef OK
#undef BAD
	char *long_scope = arena_alloc(A, OAUTH2_GRANTED_SCOPE_MAX_BYTES + 2);
	memset(long_scope, 'a', OAUTH2_GRANTED_SCOPE_MAX_BYTES + 1);
	assert_true(oauth2_scope_ok(long_scope, OAUTH2_GRANTED_SCOPE_MAX_BYTES));
	assert_false(oauth2_scope_ok(long_scope, OAUTH2_GRANTED_SCOPE_MAX_BYTES + 1));

	/* what a token answer grants */
	static const struct {
		const char *json;
		int state;
		const char *scope;
	} t[] = {
	    {"{\"access_token\":\"at\"}", OAUTH2_SCOPE_ABSENT, NULL},
	    {"{\"access_token\":\"at\",\"scope\":null}", OAUTH2_SCOPE_ABSENT, NULL},
	    {"{\"access_token\":\"at\",\"scope\":\"a b\"}", OAUTH2_SCOPE_GRANTED, "a b"},
	    {"{\"access_token\":\"at\",\"scope\":\"\"}", OAUTH2_SCOPE_MALFORMED, NULL},
	    {"{\"access_token\":\"at\",\"scope\":[\"a\"]}", OAUTH2_SCOPE_MALFORMED, NULL},
	    {"{\"access_token\":\"at\",\"scope\":\"a\\nb\"}", OAUTH2_SCOPE_MALFORMED, NULL},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct oauth2_token_response r;
		const char *why;
		assert_int_equal(
		    oauth2_parse_token_response(A, t[i].json, strlen(t[i].json), &r, &why),
		    OAUTH2_ANSWER_TOKENS);
		assert_int_equal(r.scope_state, t[i].state);
		if (t[i].scope)
			assert_string_equal(r.scope, t[i].scope);
		else
			assert_null(r.scope);
	}
}

int main(void)
{
	const char *it = getenv("OAUTH2_IT_SERVER_ID");
	if (it != NULL && it[0] != '\0')
		return integration(it);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkce),
	    cmocka_unit_test(test_state),
	    cmocka_unit_test(test_pct_encode_and_form),
	    cmocka_unit_test(test_redirect_uri),
	    cmocka_unit_test(test_authorize_url),
	    cmocka_unit_test(test_console_url),
	    cmocka_unit_test(test_clean_text),
	    cmocka_unit_test(test_error_code),
	    cmocka_unit_test(test_token_response),
	    cmocka_unit_test(test_browser_cookie),
	    cmocka_unit_test(test_scope),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
