/*
 * test_http.c - unit tests of src/http.c: media types, query strings,
 * If-Match, and the problem details mapping.
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
#include "mailsrv_limits.h"

static void test_query_parse(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 20);
	struct query_param *p;
	size_t n;
	assert_int_equal(query_parse(a, "", &p, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(query_parse(a, "q=a%20b+c&limit=5&&sort=-name", &p, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(p[0].name, "q");
	assert_string_equal(p[0].value, "a b c");
	assert_string_equal(p[1].value, "5");
	assert_string_equal(p[2].value, "-name");
	assert_int_equal(query_parse(a, "q", &p, &n), 0);
	assert_string_equal(p[0].value, "");
	/* NUL after decoding is kept with its length. */
	assert_int_equal(query_parse(a, "q=a%00b", &p, &n), 0);
	assert_int_equal(p[0].value_len, 3);
	/* Malformed escapes, repeated names, a NUL in a name. */
	assert_int_equal(query_parse(a, "q=%", &p, &n), -1);
	assert_int_equal(query_parse(a, "q=%4", &p, &n), -1);
	assert_int_equal(query_parse(a, "q=%zz", &p, &n), -1);
	assert_int_equal(query_parse(a, "limit=1&limit=2", &p, &n), -1);
	assert_int_equal(query_parse(a, "a%00=1", &p, &n), -1);
	/* Too many parameters. */
	char many[256] = "";
	for (int i = 0; i <= QUERY_MAX_PARAMS; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "p%d=1&", i);
	assert_int_equal(query_parse(a, many, &p, &n), -1);
	/* Too long. */
	char *huge = malloc(5000);
	memset(huge, 'a', 4999);
	huge[4999] = '\0';
	assert_int_equal(query_parse(a, huge, &p, &n), -1);
	free(huge);
	arena_free(a);
}

static void test_if_match(void **state)
{
	(void)state;
	assert_true(if_match_ok("\"3\"", 3));
	assert_true(if_match_ok("*", 3));
	assert_true(if_match_ok("\"1\", \"3\"", 3));
	assert_false(if_match_ok("\"2\"", 3));
	assert_false(if_match_ok("W/\"3\"", 3)); /* strong comparison */
	assert_false(if_match_ok("3", 3));
	assert_false(if_match_ok("\"33\"", 3));
	assert_false(if_match_ok("", 3));
}

static void test_problem(void **state)
{
	(void)state;
	struct worker w;
	memset(&w, 0, sizeof(w));
	struct http_request req;
	memset(&req, 0, sizeof(req));
	req.request_id = "abc";
	struct http_response resp;
	memset(&resp, 0, sizeof(resp));
	struct ctx c;
	memset(&c, 0, sizeof(c));
	c.arena = arena_new(1 << 20);
	c.out = json_out_new();
	c.req = &req;
	c.resp = &resp;
	c.w = &w;

	http_field_error(&c, "name", "is required");
	http_field_error(&c, "port", "must be an integer");
	http_problem(&c, http_reject(&c, E_VALIDATION, "bad"));
	assert_int_equal(resp.status, 422);
	assert_string_equal(resp.content_type, "application/problem+json");
	struct json_value *v;
	char msg[64];
	assert_int_equal(json_parse(c.arena, resp.body, resp.body_len, &v, msg, sizeof(msg)),
	                 JSON_OK);
	assert_string_equal(json_get(v, "type")->u.string.ptr, "/problems/validation");
	assert_int_equal(json_get(v, "status")->u.number.i, 422);
	assert_int_equal(json_get(v, "errors")->u.array.count, 2);

	/* 401 carries WWW-Authenticate; 503 Retry-After; 405 Allow. */
	memset(&resp, 0, sizeof(resp));
	c.nerrors = 0;
	http_problem(&c, E_UNAUTHORIZED);
	assert_int_equal(resp.status, 401);
	assert_string_equal(resp.headers[0].name, "WWW-Authenticate");
	memset(&resp, 0, sizeof(resp));
	http_problem(&c, E_DB_UNAVAILABLE);
	assert_int_equal(resp.status, 503);
	assert_string_equal(resp.headers[0].name, "Retry-After");
	memset(&resp, 0, sizeof(resp));
	c.allow = "GET";
	http_problem(&c, E_METHOD_NOT_ALLOWED);
	assert_int_equal(resp.status, 405);
	assert_string_equal(resp.headers[0].value, "GET");
	/* Header values with CR/LF are dropped. */
	memset(&resp, 0, sizeof(resp));
	http_header(&c, "X", "a\r\nb");
	assert_int_equal(resp.nheaders, 0);

	json_out_free(c.out);
	arena_free(c.arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query_parse),
	    cmocka_unit_test(test_if_match),
	    cmocka_unit_test(test_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
