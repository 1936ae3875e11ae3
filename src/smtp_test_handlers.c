/*
 * smtp_test_handlers.c - the SMTP connection test:
 *
 *   POST /mail-servers/{id}/test  a saved server, body {} or {"recipient"}
 *   POST /mail-servers/test       settings not saved yet: the create form's
 *                                 body plus an optional recipient
 *
 * Both answer 200 with the test's result (stages, TLS certificate, error
 * with a hint); only refusals to run a test are problem details: 400, 415,
 * 422 for the body, 404 for an unknown server, 429 over MAILSRV_TEST_RATE,
 * 503 when the process runs its share of tests already.
 *
 * Unsaved settings use their body alone: no id, no stored row, no stored
 * secret. A saved server's test logs in with its stored password or its
 * OAuth access token (refreshed first when it expires within five minutes;
 * a token entered by hand, with no known expiry, is used as it is, and when
 * the server refuses it and a refresh token is stored, it is refreshed once
 * and the test runs once more). The saved server keeps the outcome as its
 * last_test, without a new version: a test is not an edit.
 *
 * Nothing here logs or answers a secret: the password and the token go to
 * libcurl (outbound.c) and nowhere else.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_audit.h"
#include "db_mail_server.h"
#include "db_smtp_test.h"
#include "handlers.h"
#include "http.h"
#include "http_db.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "mail_server.h"
#include "mailsrv_limits.h"
#include "oauth2.h"
#include "outbound.h"
#include "smtp_message.h"
#include "validate.h"

/* What the administrator reads for each error code. */
struct test_error {
	const char *code;
	const char *message;
	const char *hint;
};

static const struct test_error test_errors[] = {
    {"resolve_failed", "the server name could not be resolved",
     "check the server name (a DNS name or an IP address)"},
    {"connect_refused", "the connection to the server was refused or could not be made",
     "check the server and the port, and that no firewall is in the way"},
    {"timeout", "the server did not answer in time",
     "check the server and the port; a firewall may be dropping the connection"},
    {"tls_required",
     "the server does not offer STARTTLS, so no encrypted connection could be made (nothing was"
     " sent in clear text)",
     "use port 465 if the server offers TLS from the first byte; disable SSL only for a server"
     " on a trusted network"},
    {"tls_failed", "the TLS handshake with the server failed",
     "port 465 means TLS from the first byte and other ports STARTTLS: check that the port"
     " matches"},
    {"certificate_name_mismatch", "the server's certificate was not issued for this server name",
     "use the name the certificate was issued for"},
    {"certificate_expired", "the server's certificate has expired or is not valid yet",
     "renew the server's certificate, and check the clocks"},
    {"certificate_untrusted", "the server's certificate is not signed by a trusted authority",
     "use a certificate from a trusted authority, or add its CA to MAILSRV_CA_FILE"},
    {"auth_failed", "the server refused the login", "check the username and the password"},
    {"sender_refused", "the server refused the sender address",
     "check sender_email: the account must be allowed to send as this address"},
    {"recipient_refused", "the server refused the recipient address",
     "check the recipient address; some servers relay only for their own domains"},
    {"message_refused", "the server refused the test message",
     "the server's logs say why (size, content or policy)"},
    {"destination_refused", "the outbound policy refuses this destination",
     "ports below 1024 other than 25, 465 and 587 are refused, and so are loopback and"
     " link-local addresses unless MAILSRV_OUTBOUND_ALLOW admits them"},
    {"oauth2_refresh_failed", "the OAuth 2.0 access token could not be refreshed",
     "refresh the token (POST .../oauth2/refresh) to see the provider's answer, or authorize the"
     " server again"},
    {"connection_closed", "the server closed the connection",
     "check that the port is the server's SMTP port"},
    {"unexpected_reply", "the server gave an answer SMTP does not expect",
     "check that the port is the server's SMTP port"},
};

static const struct test_error *find_error(const char *code)
{
	for (size_t i = 0; i < sizeof(test_errors) / sizeof(test_errors[0]); i++)
		if (strcmp(test_errors[i].code, code) == 0)
			return &test_errors[i];
	return NULL;
}

/* What one test is about, from a saved row or from a body. */
struct target {
	long long id; /* 0: unsaved settings */
	const char *name;
	const char *server;
	int port;
	int enable_ssl;
	const char *sender_name;
	const char *sender_email;
	enum auth_type auth;
	const char *username; /* basic; NULL or "": no login */
	const char *password;
	const char *token; /* oauth2 */
	const char *recipient;
};

/* What the routes' body readers leave in c->input. */
struct smtp_test_input {
	struct ms_input settings; /* the unsaved-settings test only */
	const char *recipient;    /* NULL: connect and log in, send nothing */
};

/* The outcome, with what the administrator reads. */
struct outcome {
	struct outbound_smtp_result r;
	const char *message; /* NULL: the code's */
	const char *hint;
};

/* ---- the body ---- */

static err_t check_recipient(struct ctx *c, const struct json_value *v, const char **out)
{
	*out = NULL;
	if (v == NULL || v->type == JSON_NULL)
		return E_OK;
	if (v->type != JSON_STRING) {
		http_field_error(c, "recipient", "must be a string");
		return E_VALIDATION;
	}
	const char *msg = validate_email(v->u.string.ptr, v->u.string.len);
	if (msg != NULL) {
		http_field_error(c, "recipient", msg);
		return E_VALIDATION;
	}
	*out = v->u.string.ptr;
	return E_OK;
}

static int is_key(const struct json_member *m, const char *key)
{
	return m->key_len == strlen(key) && memcmp(m->key, key, m->key_len) == 0;
}

/* The saved-server test's body: {} (or none) or {"recipient": ...};
 * anything else is a field error. */
err_t smtp_read_test(struct ctx *c)
{
	struct smtp_test_input *in = arena_calloc(c->arena, 1, sizeof(*in));
	if (in == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	const struct json_value *rv = NULL;
	for (size_t i = 0; i < c->body->u.object.count; i++) {
		const struct json_member *m = &c->body->u.object.members[i];
		if (is_key(m, "recipient"))
			rv = m->value;
		else
			http_field_error(c,
			                 strlen(m->key) == m->key_len ? m->key : "(key with NUL)",
			                 "is not a field of a test (only recipient is)");
	}
	check_recipient(c, rv, &in->recipient);
	if (c->nerrors > 0)
		return http_reject(c, E_VALIDATION, "the test request is invalid");
	c->input = in;
	return E_OK;
}

/* The unsaved-settings test's body: the create form's fields plus
 * recipient, every failing field reported at once. */
err_t smtp_read_settings(struct ctx *c)
{
	const struct json_value *body = c->body;
	size_t n = body->u.object.count;
	struct smtp_test_input *in = arena_calloc(c->arena, 1, sizeof(*in));
	struct json_member *members = arena_calloc(c->arena, n > 0 ? n : 1, sizeof(*members));
	struct json_value *settings = arena_calloc(c->arena, 1, sizeof(*settings));
	if (in == NULL || members == NULL || settings == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	const struct json_value *rv = NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (is_key(&body->u.object.members[i], "recipient"))
			rv = body->u.object.members[i].value;
		else
			members[k++] = body->u.object.members[i];
	}
	settings->type = JSON_OBJECT;
	settings->u.object.members = members;
	settings->u.object.count = k;
	check_recipient(c, rv, &in->recipient);
	err_t e = ms_input_parse(c, settings, MS_CREATE, NULL, &in->settings);
	if (e == E_INTERNAL)
		return http_reject(c, e, "out of memory");
	if (c->nerrors > 0)
		return http_reject(c, E_VALIDATION, "the mail server settings are invalid");
	c->input = in;
	return E_OK;
}

/* ---- limits ---- */

/* Tests running in this process (the one thing the threads share: a
 * counter, atomically). */
static atomic_int tests_running;

static int slot_take(const struct app *app)
{
	int max = app->cfg.threads / SMTP_TEST_THREAD_SHARE;
	if (max < 1)
		max = 1;
	if (atomic_fetch_add(&tests_running, 1) >= max) {
		atomic_fetch_sub(&tests_running, 1);
		return 0;
	}
	return 1;
}

static void slot_give(void)
{
	atomic_fetch_sub(&tests_running, 1);
}

/* MAILSRV_TEST_RATE tests a minute per bucket, then 429 with Retry-After,
 * and at most this process's share of threads at once, else 503. On E_OK
 * the caller holds a slot and gives it back with slot_give(). */
static err_t admit(struct ctx *c, const char *bucket)
{
	const struct app *app = c->w->app;
	/* The slot first: a test refused as busy is not counted as one run. */
	if (!slot_take(app)) {
		c->retry_after = SMTP_TEST_BUSY_RETRY_S;
		return http_reject(c, E_SERVICE_BUSY,
		                   "too many connection tests are running; retry later");
	}
	long hits;
	int retry;
	err_t e = db_smtp_test_rate_hit(c->w->db, bucket, &hits, &retry);
	if (e != E_OK) {
		slot_give();
		return http_reject_db(c, e, DB_WRITE);
	}
	if (hits > app->cfg.test_rate) {
		slot_give();
		c->retry_after = retry > 0 ? retry : 1;
		return http_reject(
		    c, E_RATE_LIMITED,
		    arena_printf(c->arena,
		                 "at most %d tests a minute are allowed here; retry in %d"
		                 " seconds",
		                 app->cfg.test_rate, c->retry_after));
	}
	return E_OK;
}

/* ---- running ---- */

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A failure before any connection (no token): one failed auth stage. */
static void fail_before(struct outcome *o, const char *code, long long ms, const char *message,
                        const char *hint)
{
	memset(o, 0, sizeof(*o));
	o->r.stages[0].stage = SMTP_STAGE_AUTH;
	o->r.stages[0].duration_ms = (long)ms;
	o->r.nstages = 1;
	o->r.stage = SMTP_STAGE_AUTH;
	o->r.error_code = code;
	o->r.total_ms = (long)ms;
	o->r.reason = message;
	o->message = message;
	o->hint = hint;
}

/* The message for a recipient: 16 random bytes name it. */
static char *test_message(struct ctx *c, const struct target *t, size_t *len)
{
	unsigned char rnd[16];
	char unique[33];
	static const char hex[] = "0123456789abcdef";
	if (crypto_random(rnd, sizeof(rnd)) != 0)
		return NULL;
	for (size_t i = 0; i < sizeof(rnd); i++) {
		unique[2 * i] = hex[rnd[i] >> 4];
		unique[2 * i + 1] = hex[rnd[i] & 15];
	}
	unique[32] = '\0';
	struct smtp_message_in in = {t->sender_name, t->sender_email, t->recipient, t->name,
	                             t->server,      t->port,         time(NULL),   unique};
	return smtp_message_build(c->arena, &in, len);
}

/* One SMTP session with what time is left of the test. */
static err_t session(struct ctx *c, const struct target *t, long long deadline, struct outcome *o)
{
	const struct app *app = c->w->app;
	struct outbound_smtp_request rq;
	memset(&rq, 0, sizeof(rq));
	memset(o, 0, sizeof(*o));
	long long left = deadline - now_ms();
	if (left < 1)
		left = 1;
	rq.host = t->server;
	rq.port = t->port;
	rq.security = !t->enable_ssl   ? SMTP_PLAIN
	              : t->port == 465 ? SMTP_IMPLICIT_TLS
	                               : SMTP_STARTTLS;
	if (t->auth == AUTH_OAUTH2) {
		rq.username = t->sender_email;
		rq.bearer = t->token;
	} else if (t->username != NULL && t->username[0] != '\0') {
		rq.username = t->username;
		rq.password = t->password;
	}
	if (t->recipient != NULL) {
		rq.mail_from = t->sender_email;
		rq.rcpt = t->recipient;
		rq.message = test_message(c, t, &rq.message_len);
		if (rq.message == NULL)
			return http_reject(c, E_INTERNAL, "could not build the test message");
	}
	long connect_ms = (long)app->cfg.test_connect_timeout * 1000;
	rq.connect_timeout_ms = connect_ms < left ? connect_ms : (long)left;
	rq.timeout_ms = (long)left;
	rq.ca_file = app->cfg.ca_file;
	rq.policy = &app->cfg.outbound;
	if (outbound_smtp_session(c->arena, &rq, &o->r) != E_OK) {
		metrics_outbound(METRICS_SMTP_TEST, METRICS_FAILURE);
		return http_reject(c, E_INTERNAL, "could not run the SMTP session");
	}
	metrics_outbound(METRICS_SMTP_TEST, o->r.ok ? METRICS_SUCCESS : METRICS_FAILURE);
	if (o->r.error_code != NULL && strcmp(o->r.error_code, "auth_failed") == 0) {
		const struct outbound_smtp_stage *s = &o->r.stages[o->r.nstages - 1];
		if (s->stage == SMTP_STAGE_AUTH && o->r.login_not_offered) {
			o->message = "the server offers no login (no AUTH in its answer to EHLO) on"
			             " this connection";
			o->hint = t->enable_ssl
			              ? "check that the server allows this account to log in"
			              : "enable SSL: many servers offer a login only over"
			                " TLS; or remove the username if none is needed";
		} else if (t->auth == AUTH_OAUTH2) {
			o->hint =
			    "check that the token allows sending mail as sender_email (XOAUTH2),"
			    " and the scope the server was authorized with";
		}
	}
	return E_OK;
}

/* The access token of a saved oauth2 server; E_OK with *token, or E_OK
 * with *token NULL and the failure in o, or a problem (database). */
static err_t saved_token(struct ctx *c, const struct ms_row *row, long long started,
                         const char **token, struct outcome *o)
{
	struct oauth2_failure f;
	size_t len;
	*token = NULL;
	struct audit_who who = audit_who_of(c);
	err_t e =
	    oauth2_access_token(c->w->app, c->w->db, c->arena, row->id, &who, token, &len, &f);
	if (e == E_OK)
		return E_OK;
	if (e == E_SECRET_UNREADABLE)
		return http_reject(c, e, f.description);
	if (e == E_DB_UNAVAILABLE || e == E_NOT_FOUND || e == E_INTERNAL)
		return http_reject_db(c, e, DB_READ);
	*token = NULL;
	long long ms = now_ms() - started;
	if (!row->access_token_set && !row->refresh_token_set) {
		fail_before(o, "auth_failed", ms, "the mail server has no OAuth 2.0 access token",
		            "connect it to its provider first (POST .../oauth2/authorize)");
		return E_OK;
	}
	const char *msg =
	    f.code != NULL
	        ? arena_printf(c->arena, "the OAuth 2.0 access token could not be refreshed (%s)",
	                       f.code)
	        : NULL;
	fail_before(o, "oauth2_refresh_failed", ms, msg, NULL);
	return E_OK;
}

/* ---- the answer ---- */

static void write_outcome(struct json_out *out, struct arena *a, const struct outcome *o)
{
	const struct outbound_smtp_result *r = &o->r;
	json_out_object_open(out);
	json_out_key(out, "ok");
	json_out_bool(out, r->ok);
	json_out_key(out, "stage");
	json_out_cstring(out, outbound_smtp_stage_name(r->stage));
	json_out_key(out, "stages");
	json_out_array_open(out);
	for (size_t i = 0; i < r->nstages; i++) {
		const struct outbound_smtp_stage *s = &r->stages[i];
		json_out_object_open(out);
		json_out_key(out, "name");
		json_out_cstring(out, outbound_smtp_stage_name(s->stage));
		json_out_key(out, "ok");
		json_out_bool(out, s->ok);
		json_out_key(out, "duration_ms");
		json_out_int(out, s->duration_ms);
		if (s->reply_code > 0) {
			json_out_key(out, "reply_code");
			json_out_int(out, s->reply_code);
		}
		json_out_object_close(out);
	}
	json_out_array_close(out);
	json_out_key(out, "tls");
	if (r->has_tls) {
		json_out_object_open(out);
		json_out_key(out, "subject");
		json_out_cstring(out, r->tls.subject);
		json_out_key(out, "issuer");
		json_out_cstring(out, r->tls.issuer);
		json_out_key(out, "not_after");
		if (r->tls.not_after != 0) {
			time_t t = (time_t)r->tls.not_after;
			struct tm tm;
			char buf[32];
			gmtime_r(&t, &tm);
			strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
			json_out_cstring(out, arena_strdup(a, buf));
			json_out_key(out, "days_left");
			long long left = r->tls.not_after - (long long)time(NULL);
			/* whole days, rounded down (an expired one is negative) */
			json_out_int(out, left >= 0 ? left / 86400 : -((-left + 86399) / 86400));
		} else {
			json_out_null(out);
			json_out_key(out, "days_left");
			json_out_null(out);
		}
		json_out_object_close(out);
	} else {
		json_out_null(out);
	}
	json_out_key(out, "error");
	if (r->ok || r->error_code == NULL) {
		json_out_null(out);
	} else {
		const struct test_error *d = find_error(r->error_code);
		json_out_object_open(out);
		json_out_key(out, "code");
		json_out_cstring(out, r->error_code);
		json_out_key(out, "message");
		json_out_cstring(out, o->message ? o->message : d ? d->message : "internal error");
		json_out_key(out, "hint");
		json_out_cstring(out, o->hint ? o->hint : d ? d->hint : NULL);
		json_out_object_close(out);
	}
	json_out_object_close(out);
}

static void log_outcome(const char *what, const struct outcome *o, long long ms)
{
	const struct outbound_smtp_result *r = &o->r;
	if (r->ok)
		log_info("tested %s: ok (stage %s, %lld ms)", what,
		         outbound_smtp_stage_name(r->stage), ms);
	else
		log_info("tested %s: failed at stage %s: %s (%s; %lld ms)", what,
		         outbound_smtp_stage_name(r->stage), r->error_code ? r->error_code : "?",
		         r->reason ? r->reason : "", ms);
}

static int same_text(const char *x, const char *y)
{
	if (x == NULL || y == NULL)
		return x == y;
	return strcmp(x, y) == 0;
}

/* The settings a test depends on are the same in both rows. */
static int same_settings(const struct ms_row *a, const struct ms_row *b)
{
	return a->auth == b->auth && a->port == b->port && a->enable_ssl == b->enable_ssl &&
	       same_text(a->server, b->server) && same_text(a->sender_email, b->sender_email) &&
	       same_text(a->username, b->username) && same_text(a->token_url, b->token_url) &&
	       same_text(a->client_id, b->client_id);
}

/* ---- the endpoints ---- */

/* The stored password of a saved basic server, as the row was read
 * (*password NULL: none stored). A problem when it does not decrypt, or
 * the server changed meanwhile. */
static err_t saved_password(struct ctx *c, const struct ms_row *row, const char **password)
{
	int found;
	err_t e = db_smtp_test_password_get(c->w->db, c->arena, c->w->app->keyring, row->id,
	                                    row->version, password, &found);
	if (e == E_SECRET_UNREADABLE)
		return http_reject(c, e,
		                   "the stored password of the mail server cannot be decrypted (it"
		                   " was changed outside the service, or its key is no longer in"
		                   " the keyring): enter it again");
	if (e != E_OK)
		return http_reject_db(c, e, DB_READ);
	if (!found) {
		c->error_code = "changed_during_test";
		return http_reject(c, E_CONFLICT,
		                   "the mail server changed while its test started; retry");
	}
	return E_OK;
}

/* A token entered by hand (no known expiry) that the server refused, with
 * a refresh token stored and time left: refresh it once, then run the
 * session once more. Otherwise o stays as it is. */
static err_t retry_refreshed(struct ctx *c, const struct ms_row *row, struct target *t,
                             long long deadline, struct outcome *o)
{
	if (row->auth != AUTH_OAUTH2 || row->access_token_expires_at != NULL ||
	    !row->refresh_token_set || o->r.error_code == NULL ||
	    strcmp(o->r.error_code, "auth_failed") != 0 ||
	    o->r.stages[o->r.nstages - 1].reply_code <= 0 ||
	    deadline - now_ms() < SMTP_TEST_RETRY_MIN_MS)
		return E_OK;
	const struct app *app = c->w->app;
	struct db *db = c->w->db;
	struct oauth2_failure f;
	size_t len;
	log_info("mail server %lld refused its OAuth 2.0 access token; refreshing it once",
	         row->id);
	struct audit_who who = audit_who_of(c);
	err_t e = oauth2_refresh(app, db, c->arena, row->id, c->req->arrival_ms, &who, &f);
	if (e == E_OK)
		e = oauth2_access_token(app, db, c->arena, row->id, &who, &t->token, &len, &f);
	if (e == E_SECRET_UNREADABLE)
		return http_reject(c, e, f.description);
	if (e == E_DB_UNAVAILABLE || e == E_NOT_FOUND || e == E_INTERNAL)
		return http_reject_db(c, e, DB_WRITE);
	if (e != E_OK) {
		o->r.error_code = "oauth2_refresh_failed";
		o->message = f.code ? arena_printf(c->arena,
		                                   "the server refused the access token, and it"
		                                   " could not be refreshed (%s)",
		                                   f.code)
		                    : NULL;
		o->hint = NULL;
		return E_OK;
	}
	return session(c, t, deadline, o);
}

/* The outcome as the server's last test and its audit event, in one
 * transaction; a failure to store them is logged, the answer stands. */
static void store_last_test(struct ctx *c, const struct ms_row *row, const struct outcome *o)
{
	struct db *db = c->w->db;
	/* A refresh of the token (before the test or for its retry) gave the
	 * server a new version: the outcome is still about the same settings. */
	long long version = row->version;
	struct ms_row now;
	int found, stored;
	if (row->auth == AUTH_OAUTH2 && db_ms_get(db, c->arena, row->id, 0, &now, &found) == E_OK &&
	    found && same_settings(row, &now))
		version = now.version;
	const char *stage = outbound_smtp_stage_name(o->r.stage);
	const char *code = o->r.ok ? NULL : o->r.error_code;
	const char *qstage = audit_json_string(c->arena, stage ? stage : "");
	const char *qcode = code != NULL ? audit_json_string(c->arena, code) : "null";
	const char *details =
	    qstage != NULL && qcode != NULL
	        ? arena_printf(c->arena, "{\"ok\": %s, \"stage\": %s, \"error_code\": %s}",
	                       o->r.ok ? "true" : "false", qstage, qcode)
	        : NULL;
	struct audit_who who = audit_who_of(c);
	err_t e = details != NULL ? db_begin(db) : E_INTERNAL;
	if (e == E_OK)
		e = db_smtp_test_last_update(db, row->id, version, o->r.ok, stage, code, &stored);
	if (e == E_OK)
		e = db_audit_record(db, &who, "mail_server.tested", row->id, NULL, details);
	if (e == E_OK)
		e = db_commit(db);
	if (e != E_OK) {
		if (details != NULL)
			db_rollback(db);
		log_warning("could not store the last test of mail server %lld", row->id);
	}
}

err_t smtp_handle_test(struct ctx *c)
{
	const struct app *app = c->w->app;
	const char *recipient = ((const struct smtp_test_input *)c->input)->recipient;
	struct ms_row row;
	int found;
	err_t e;
	if ((e = db_ms_get(c->w->db, c->arena, c->id, 0, &row, &found)) != E_OK)
		return http_reject_db(c, e, DB_READ);
	if (!found)
		return http_reject(c, E_NOT_FOUND, "no mail server has this id");
	if ((e = admit(c, arena_printf(c->arena, "server:%lld", c->id))) != E_OK)
		return e;

	long long started = now_ms();
	long long deadline = started + (long long)app->cfg.test_timeout * 1000;
	struct target t = {
	    row.id,           row.name, row.server,   row.port, row.enable_ssl, row.sender_name,
	    row.sender_email, row.auth, row.username, NULL,     NULL,           recipient};
	struct outcome o;
	memset(&o, 0, sizeof(o));
	if (row.auth == AUTH_BASIC && row.username != NULL && row.username[0] != '\0')
		e = saved_password(c, &row, &t.password);
	else if (row.auth == AUTH_OAUTH2)
		e = saved_token(c, &row, started, &t.token, &o);
	/* No token: saved_token described the failure in o, no session runs. */
	if (e == E_OK && (row.auth != AUTH_OAUTH2 || t.token != NULL) &&
	    (e = session(c, &t, deadline, &o)) == E_OK)
		e = retry_refreshed(c, &row, &t, deadline, &o);
	if (e != E_OK)
		goto out;

	store_last_test(c, &row, &o);
	log_outcome(
	    arena_printf(c->arena, "mail server %lld (%s:%d)", row.id, row.server, row.port), &o,
	    now_ms() - started);
	write_outcome(c->out, c->arena, &o);
	e = http_json(c, 200);
out:
	slot_give();
	return e;
}

err_t smtp_handle_test_settings(struct ctx *c)
{
	const struct app *app = c->w->app;
	const struct smtp_test_input *input = c->input;
	const struct ms_input in = input->settings;
	const char *recipient = input->recipient;
	err_t e;
	/* The administrator's bucket: a hash, so any sub fits. */
	const char *sub = c->who.sub ? c->who.sub : "";
	unsigned char h[32];
	char hex[65];
	if (crypto_sha256(sub, strlen(sub), h) != 0)
		return http_reject(c, E_INTERNAL, "could not hash the actor");
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", h[i]);
	if ((e = admit(c, arena_printf(c->arena, "actor:%s", hex))) != E_OK)
		return e;

	long long started = now_ms();
	long long deadline = started + (long long)app->cfg.test_timeout * 1000;
	struct target t = {0,
	                   NULL,
	                   in.server,
	                   in.port,
	                   in.enable_ssl,
	                   in.sender_name,
	                   in.sender_email,
	                   in.auth,
	                   in.username,
	                   in.password.op == SECRET_SET ? in.password.value : NULL,
	                   in.access_token.op == SECRET_SET ? in.access_token.value : NULL,
	                   recipient};
	struct outcome o;
	if (t.auth == AUTH_OAUTH2 && t.token == NULL)
		fail_before(&o, "auth_failed", 0, "no OAuth 2.0 access token was given",
		            "send access_token with the settings, or save the server and authorize"
		            " it first");
	else if ((e = session(c, &t, deadline, &o)) != E_OK)
		goto out;
	const char *actor = oauth2_clean_text(c->arena, sub, strlen(sub), 64);
	log_outcome(arena_printf(c->arena, "unsaved settings for %s:%d by \"%s\"", in.server,
	                         in.port, actor ? actor : ""),
	            &o, now_ms() - started);
	write_outcome(c->out, c->arena, &o);
	e = http_json(c, 200);
out:
	slot_give();
	return e;
}
