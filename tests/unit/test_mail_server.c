/*
 * test_mail_server.c - unit tests of src/mail_server.c: the declared
 * fields and their errors, the merge patch, and the secret rules that decide
 * what a change keeps or clears (docs/api.md, "Secrets").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "arena.h"
#include "http.h"
#include "json.h"
#include "mail_server.h"

struct fixture {
	struct ctx c;
	struct worker w;
	struct http_request req;
	struct http_response resp;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->c.arena = arena_new(1 << 20);
	f->c.out = json_out_new();
	f->c.req = &f->req;
	f->c.resp = &f->resp;
	f->c.w = &f->w;
	f->req.request_id = "";
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	json_out_free(f->c.out);
	arena_free(f->c.arena);
	free(f);
	return 0;
}

static const struct json_value *parse(struct fixture *f, const char *text)
{
	struct json_value *v;
	char msg[80];
	assert_int_equal(json_parse(f->c.arena, text, strlen(text), &v, msg, sizeof(msg)), JSON_OK);
	return v;
}

static int has_error(const struct ctx *c, const char *field)
{
	for (size_t i = 0; i < c->nerrors; i++)
		if (strcmp(c->errors[i].field, field) == 0)
			return 1;
	return 0;
}

#define BASIC                                                                                      \
	"\"name\":\"Relay\",\"server\":\"smtp.example.com\",\"port\":587,"                         \
	"\"sender_name\":\"Alerts\",\"sender_email\":\"alerts@example.com\""
#define OAUTH                                                                                      \
	BASIC ",\"auth_type\":\"oauth2\",\"client_id\":\"cid\","                                   \
	      "\"authorization_url\":\"https://login.example.com/authorize\","                     \
	      "\"token_url\":\"https://login.example.com/token\""

static void test_valid_basic(void **state)
{
	struct fixture *f = *state;
	struct ms_input in;
	const struct json_value *b =
	    parse(f, "{" BASIC ",\"auth_type\":\"basic\",\"username\":\"u\","
	             "\"password\":\"p\",\"id\":7,\"version\":3}");
	assert_int_equal(ms_input_parse(&f->c, b, MS_CREATE, NULL, &in), E_OK);
	assert_string_equal(in.name, "Relay");
	assert_int_equal(in.port, 587);
	assert_int_equal(in.enable_ssl, 1); /* default */
	assert_int_equal(in.is_default, 0);
	assert_int_equal(in.password.op, SECRET_SET);
	assert_int_equal(in.auth, AUTH_BASIC);
}

/* Text fields are taken without the spaces at their ends, so what is stored
 * fits the limit the validator counted; secrets are taken as sent. */
static void test_text_is_trimmed_secrets_are_not(void **state)
{
	struct fixture *f = *state;
	struct ms_input in;
	char body[4096];
	char pad[1024];
	size_t n = 0;
	for (int i = 0; i < 300; i++, n += 3)
		memcpy(pad + n, "\xe3\x80\x80", 3); /* U+3000 */
	pad[n] = '\0';
	snprintf(body, sizeof(body),
	         "{\"name\":\"  Relay \\u00a0\",\"server\":\"smtp.example.com\",\"port\":587,"
	         "\"sender_name\":\"%s Alerts\",\"sender_email\":\"alerts@example.com\","
	         "\"auth_type\":\"basic\",\"username\":\"%sbob%s\",\"password\":\" p \"}",
	         pad, pad, pad);
	assert_int_equal(ms_input_parse(&f->c, parse(f, body), MS_CREATE, NULL, &in), E_OK);
	assert_string_equal(in.name, "Relay");
	assert_string_equal(in.sender_name, "Alerts");
	assert_string_equal(in.username, "bob");
	assert_int_equal(in.password.op, SECRET_SET);
	assert_int_equal(in.password.len, 3);
	assert_memory_equal(in.password.value, " p ", 3);

	snprintf(body, sizeof(body),
	         "{" BASIC ",\"auth_type\":\"oauth2\",\"client_id\":\"%scid \","
	         "\"authorization_url\":\"https://login.example.com/authorize\","
	         "\"token_url\":\"https://login.example.com/token\",\"secret_key\":\"%s\"}",
	         pad, pad);
	assert_int_equal(ms_input_parse(&f->c, parse(f, body), MS_CREATE, NULL, &in), E_OK);
	assert_string_equal(in.client_id, "cid");
	assert_int_equal(in.secret_key.len, strlen(pad));
}

static void test_all_errors_at_once(void **state)
{
	struct fixture *f = *state;
	struct ms_input in;
	const struct json_value *b =
	    parse(f, "{\"name\":\"\",\"server\":\"bad host\",\"port\":70000,\"sender_name\":\"x\","
	             "\"sender_email\":\"nope\",\"auth_type\":\"basic\",\"colour\":\"red\","
	             "\"enable_ssl\":\"yes\",\"client_id\":\"c\"}");
	assert_int_equal(ms_input_parse(&f->c, b, MS_CREATE, NULL, &in), E_VALIDATION);
	const char *want[] = {"name",   "server",     "port",     "sender_email",
	                      "colour", "enable_ssl", "client_id"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!has_error(&f->c, want[i]))
			fail_msg("no error for %s", want[i]);
	assert_false(has_error(&f->c, "sender_name"));
}

static void test_types_and_control_chars(void **state)
{
	struct fixture *f = *state;
	struct ms_input in;
	const struct json_value *b =
	    parse(f, "{\"name\":\"a\\u0000b\",\"server\":\"smtp.example.com\",\"port\":\"25\","
	             "\"sender_name\":\"x\\ty\",\"sender_email\":\"a@example.com\",\"auth_type\":"
	             "\"Basic\"}");
	assert_int_equal(ms_input_parse(&f->c, b, MS_CREATE, NULL, &in), E_VALIDATION);
	assert_true(has_error(&f->c, "name"));
	assert_true(has_error(&f->c, "port"));
	assert_true(has_error(&f->c, "sender_name"));
	assert_true(has_error(&f->c, "auth_type"));
	f->c.nerrors = 0;
	b = parse(
	    f, "{\"name\":\"n\",\"server\":\"smtp.example.com\",\"port\":25.0,"
	       "\"sender_name\":\"s\",\"sender_email\":\"a@example.com\",\"auth_type\":\"basic\"}");
	assert_int_equal(ms_input_parse(&f->c, b, MS_CREATE, NULL, &in), E_VALIDATION);
	assert_true(has_error(&f->c, "port"));
}

static void test_oauth2_rules(void **state)
{
	struct fixture *f = *state;
	struct ms_input in;
	/* secret_key is required on create... */
	const struct json_value *b = parse(f, "{" OAUTH "}");
	assert_int_equal(ms_input_parse(&f->c, b, MS_CREATE, NULL, &in), E_VALIDATION);
	assert_true(has_error(&f->c, "secret_key"));
	/* ...and http token URLs are refused, basic fields with values too. */
	f->c.nerrors = 0;
	b = parse(f, "{" BASIC ",\"auth_type\":\"oauth2\",\"client_id\":\"c\",\"secret_key\":\"s\","
	             "\"authorization_url\":\"https://a.example.com/\",\"token_url\":\"http://"
	             "t.example.com/\","
	             "\"username\":\"u\",\"password\":null}");
	assert_int_equal(ms_input_parse(&f->c, b, MS_CREATE, NULL, &in), E_VALIDATION);
	assert_true(has_error(&f->c, "token_url"));
	assert_true(has_error(&f->c, "username"));
	assert_false(has_error(&f->c, "password")); /* null for the other type is fine */
	/* On replace of an oauth2 server, secret_key may be omitted (kept). */
	f->c.nerrors = 0;
	struct ms_row cur = {.auth = AUTH_OAUTH2};
	b = parse(f, "{" OAUTH "}");
	assert_int_equal(ms_input_parse(&f->c, b, MS_REPLACE, &cur, &in), E_OK);
	assert_int_equal(in.secret_key.op, SECRET_KEEP);
	/* ...but not when switching from basic. */
	cur.auth = AUTH_BASIC;
	assert_int_equal(ms_input_parse(&f->c, b, MS_REPLACE, &cur, &in), E_VALIDATION);
	assert_true(has_error(&f->c, "secret_key"));
}

static struct ms_row basic_row(void)
{
	struct ms_row r = {.id = 1,
	                   .name = "Relay",
	                   .server = "smtp.example.com",
	                   .port = 587,
	                   .sender_name = "Alerts",
	                   .sender_email = "alerts@example.com",
	                   .auth = AUTH_BASIC,
	                   .username = "u",
	                   .password_set = 1,
	                   .version = 4};
	return r;
}

static void test_plan_basic(void **state)
{
	(void)state;
	struct ms_row cur = basic_row();
	struct ms_input in = {
	    .name = "Relay", .server = "smtp.example.com", .port = 587, .auth = AUTH_BASIC};
	struct ms_change ch;
	/* Omitted password, same destination: kept. */
	in.password.op = SECRET_KEEP;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.password.op, SECRET_KEEP);
	/* New port: cleared unless sent again. */
	in.port = 465;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.password.op, SECRET_CLEAR);
	in.password.op = SECRET_SET;
	in.password.value = "p";
	in.password.len = 1;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.password.op, SECRET_SET);
	/* New server name. */
	in.port = 587;
	in.server = "other.example.com";
	in.password.op = SECRET_KEEP;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.password.op, SECRET_CLEAR);
	/* Explicit clear. */
	in.server = "smtp.example.com";
	in.password.op = SECRET_CLEAR;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.password.op, SECRET_CLEAR);
	assert_int_equal(ch.move_default, 0);
	in.is_default = 1;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.move_default, 1);
	cur.is_default = 1;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.move_default, 0);
}

static void test_plan_oauth2(void **state)
{
	(void)state;
	struct ms_row cur = {.id = 1,
	                     .auth = AUTH_OAUTH2,
	                     .client_id = "c",
	                     .authorization_url = "https://a/",
	                     .token_url = "https://t/",
	                     .secret_key_set = 1,
	                     .access_token_set = 1,
	                     .refresh_token_set = 1,
	                     .oauth2_status = "connected"};
	struct ms_input in = {.auth = AUTH_OAUTH2,
	                      .client_id = "c",
	                      .authorization_url = "https://a/",
	                      .token_url = "https://t/"};
	struct ms_change ch;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.secret_key.op, SECRET_KEEP);
	assert_int_equal(ch.refresh_token.op, SECRET_KEEP);
	assert_int_equal(ch.password.op, SECRET_CLEAR);
	assert_string_equal(ch.oauth2_status, "connected");
	assert_int_equal(ch.keep_oauth2_state, 1);
	/* Each destination field clears all three secrets unless resent. */
	const char **fields[] = {&in.client_id, &in.authorization_url, &in.token_url};
	for (size_t i = 0; i < 3; i++) {
		const char *old = *fields[i];
		*fields[i] = "https://elsewhere/";
		ms_plan_change(&cur, &in, &ch);
		assert_int_equal(ch.secret_key.op, SECRET_CLEAR);
		assert_int_equal(ch.access_token.op, SECRET_CLEAR);
		assert_int_equal(ch.refresh_token.op, SECRET_CLEAR);
		assert_string_equal(ch.oauth2_status, "not_connected");
		*fields[i] = old;
	}
	/* Resent with the change: stored as sent. */
	in.token_url = "https://new/";
	in.secret_key.op = SECRET_SET;
	in.refresh_token.op = SECRET_SET;
	ms_plan_change(&cur, &in, &ch);
	assert_int_equal(ch.secret_key.op, SECRET_SET);
	assert_int_equal(ch.refresh_token.op, SECRET_SET);
	assert_int_equal(ch.access_token.op, SECRET_CLEAR);
	assert_string_equal(ch.oauth2_status, "connected");
	assert_int_equal(ch.keep_oauth2_state, 0);
	/* Switching to basic clears every OAuth secret. */
	struct ms_input b = {.auth = AUTH_BASIC, .server = "s", .port = 25};
	ms_plan_change(&cur, &b, &ch);
	assert_int_equal(ch.secret_key.op, SECRET_CLEAR);
	assert_int_equal(ch.access_token.op, SECRET_CLEAR);
	assert_int_equal(ch.refresh_token.op, SECRET_CLEAR);
	assert_null(ch.oauth2_status);
}

static void test_merge_patch(void **state)
{
	struct fixture *f = *state;
	struct ms_row cur = basic_row();
	const struct json_value *merged;
	struct ms_input in;
	/* null removes an optional field; secrets' null is kept (clears). */
	const struct json_value *p = parse(f, "{\"username\":null,\"password\":null,\"port\":465}");
	assert_int_equal(ms_merge_patch(&f->c, &cur, p, &merged), E_OK);
	assert_int_equal(ms_input_parse(&f->c, merged, MS_REPLACE, &cur, &in), E_OK);
	assert_null(in.username);
	assert_int_equal(in.password.op, SECRET_CLEAR);
	assert_int_equal(in.port, 465);
	assert_string_equal(in.name, "Relay");
	/* null on a required field: required. */
	p = parse(f, "{\"name\":null}");
	assert_int_equal(ms_merge_patch(&f->c, &cur, p, &merged), E_OK);
	assert_int_equal(ms_input_parse(&f->c, merged, MS_REPLACE, &cur, &in), E_VALIDATION);
	assert_true(has_error(&f->c, "name"));
	/* Switching type drops the old type's fields from the base. */
	f->c.nerrors = 0;
	p = parse(f, "{\"auth_type\":\"oauth2\",\"client_id\":\"c\",\"secret_key\":\"s\","
	             "\"authorization_url\":\"https://a.example.com/\","
	             "\"token_url\":\"https://t.example.com/\"}");
	assert_int_equal(ms_merge_patch(&f->c, &cur, p, &merged), E_OK);
	assert_int_equal(ms_input_parse(&f->c, merged, MS_REPLACE, &cur, &in), E_OK);
	assert_int_equal(in.auth, AUTH_OAUTH2);
	assert_null(in.username);
	/* A key with an embedded NUL never aliases a field. */
	f->c.nerrors = 0;
	p = parse(f, "{\"name\\u0000x\":\"Other\"}");
	assert_int_equal(ms_merge_patch(&f->c, &cur, p, &merged), E_OK);
	assert_int_equal(ms_input_parse(&f->c, merged, MS_REPLACE, &cur, &in), E_VALIDATION);
}

static void test_representation(void **state)
{
	struct fixture *f = *state;
	struct ms_row r = basic_row();
	r.created_at = r.updated_at = "2026-01-01T00:00:00.000Z";
	ms_row_to_json(f->c.out, &r);
	const char *buf;
	size_t len;
	assert_int_equal(json_out_result(f->c.out, &buf, &len), 0);
	assert_non_null(strstr(buf, "\"password_set\":true"));
	assert_null(strstr(buf, "\"password\":"));
	assert_non_null(strstr(buf, "\"oauth2_status\":null"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_valid_basic, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_all_errors_at_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_text_is_trimmed_secrets_are_not, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_types_and_control_chars, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oauth2_rules, setup, teardown),
	    cmocka_unit_test(test_plan_basic),
	    cmocka_unit_test(test_plan_oauth2),
	    cmocka_unit_test_setup_teardown(test_merge_patch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_representation, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
