/*
 * test_log.c - the log lines as written to stderr: text and JSON, the
 * request line's fields and cleaning, escaping, and the cut of long lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Run fn with stderr going to a pipe; the bytes it wrote, in buf. */
static size_t capture(void (*fn)(void), char *buf, size_t cap)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	int saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	size_t n = 0;
	ssize_t r;
	while (n < cap - 1 && (r = read(p[0], buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	close(p[0]);
	buf[n] = '\0';
	return n;
}

static void emit_request(void)
{
	log_set_request_id("abc123");
	struct log_request r = {"GET",           "/api/v1/mail-servers/{id}", 404, 1500, 250,
	                        "eve \"x\"=\\\n"};
	log_request(&r);
	struct log_request anon = {"POST", NULL, 401, 10, 0, NULL};
	log_request(&anon);
	log_set_request_id(NULL);
}

static void emit_message(void)
{
	log_warning("a \"quoted\" \\ line\nwith\ttabs \x01 and bad \xff bytes, é kept");
}

static void emit_long(void)
{
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[500] = '"';
	log_error("%s", big);
}

static void test_text_request_line(void **state)
{
	(void)state;
	char buf[4096];
	log_set_json(0);
	capture(emit_request, buf, sizeof(buf));
	char *second = strchr(buf, '\n');
	assert_non_null(second);
	*second++ = '\0';
	assert_non_null(strstr(buf, " request abc123 LOG: request method=GET"
	                            " route=/api/v1/mail-servers/{id} status=404"
	                            " duration_ms=1.500 db_ms=0.250 actor=eve??x????\0"));
	assert_non_null(strstr(second, "LOG: request method=POST route=- status=401"));
	assert_non_null(strstr(second, "actor=-\n"));
}

static void test_json_request_line(void **state)
{
	(void)state;
	char buf[4096];
	log_set_json(1);
	capture(emit_request, buf, sizeof(buf));
	log_set_json(0);
	assert_non_null(strstr(buf, "\"level\":\"info\",\"request_id\":\"abc123\","
	                            "\"message\":\"request\",\"method\":\"GET\","
	                            "\"route\":\"/api/v1/mail-servers/{id}\",\"status\":404,"
	                            "\"duration_ms\":1.500,\"db_ms\":0.250,"
	                            "\"actor\":\"eve??x????\"}\n"));
	assert_non_null(strstr(buf, "\"route\":\"-\""));
	assert_int_equal(buf[0], '{');
}

static void test_json_escapes_every_message(void **state)
{
	(void)state;
	char buf[4096];
	log_set_json(1);
	size_t n = capture(emit_message, buf, sizeof(buf));
	log_set_json(0);
	assert_true(n > 0 && buf[n - 1] == '\n');
	assert_non_null(strstr(buf,
	                       "\"level\":\"warning\",\"message\":\"a \\\"quoted\\\" \\\\ "
	                       "line\\u000awith\\u0009tabs \\u0001 and bad ? bytes, é kept\"}\n"));
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* one line */
}

static void test_long_lines_are_cut_whole(void **state)
{
	(void)state;
	char buf[8192];
	log_set_json(1);
	size_t n = capture(emit_long, buf, sizeof(buf));
	log_set_json(0);
	assert_true(n <= 1024);
	assert_memory_equal(buf + n - 3, "\"}\n", 3);
	assert_non_null(strstr(buf, "xx\\\"xx"));
	log_set_json(0);
	n = capture(emit_long, buf, sizeof(buf));
	assert_true(n <= 1024);
	assert_int_equal(buf[n - 1], '\n');
	assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_request_line),
	    cmocka_unit_test(test_json_request_line),
	    cmocka_unit_test(test_json_escapes_every_message),
	    cmocka_unit_test(test_long_lines_are_cut_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
