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

static void test_parse_msec(void **state)
{
	(void)state;
	assert_int_equal(http_parse_msec("1712345678.123"), 1712345678123LL);
	assert_int_equal(http_parse_msec("17123456789.001"), 17123456789001LL);
	assert_int_equal(http_parse_msec(NULL), 0);
	static const char *const bad[] = {"",
	                                  "1712345678",
	                                  "1712345678.",
	                                  "1712345678.12",
	                                  "1712345678.1234",
	                                  "171234567.123",
	                                  "171234567890.123",
	                                  "-712345678.123",
	                                  " 1712345678.123",
	                                  "1712345678.123 ",
	                                  "1712345678,123",
	                                  "17123x5678.123",
	                                  "1712345678.1x3"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(http_parse_msec(bad[i]), 0);
}

static void test_cookie_get(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 20);
	const char *h = "a=1; mailsrv_oauth2_x=v-1;b=2;\tc = 3 ;d=; e";
	assert_string_equal(http_cookie_get(a, h, "a"), "1");
	assert_string_equal(http_cookie_get(a, h, "mailsrv_oauth2_x"), "v-1");
	assert_string_equal(http_cookie_get(a, h, "b"), "2");
	assert_string_equal(http_cookie_get(a, h, "d"), "");
	assert_null(http_cookie_get(a, h, "c")); /* "c " is not "c" */
	assert_null(http_cookie_get(a, h, "e"));
	assert_null(http_cookie_get(a, h, "mailsrv_oauth2_"));
	assert_null(http_cookie_get(a, h, "x"));
	assert_null(http_cookie_get(a, NULL, "a"));
	assert_null(http_cookie_get(a, "", "a"));
	assert_null(http_cookie_get(a, ";;; ;", "a"));
	/* the first of two */
	assert_string_equal(http_cookie_get(a, "a=1; a=2", "a"), "1");
	/* bounded: a header over the limit is no cookie at all */
	size_t n = COOKIE_HEADER_MAX_BYTES + 1;
	char *big = malloc(n + 1);
	assert_non_null(big);
	memset(big, 'x', n);
	memcpy(big, "a=1;", 4);
	big[n] = '\0';
	assert_null(http_cookie_get(a, big, "a"));
	big[n - 1] = '\0';
	assert_string_equal(http_cookie_get(a, big, "a"), "1");
	free(big);
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_msec),  cmocka_unit_test(test_cookie_get),
	    cmocka_unit_test(test_query_parse), cmocka_unit_test(test_if_match),
	    cmocka_unit_test(test_problem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
