/*
 * test_metrics.c - unit tests of src/metrics.c: the text format of every
 * series (HELP and TYPE before the samples, labels, cumulative histogram
 * buckets, the sum in seconds), routes and statuses outside the table
 * counted as "other", counts shared with a forked process (the worker
 * processes' case), the busy gauge of a restarted slot, a too small buffer,
 * and the route templates against the route table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db.h"
#include "mailsrv_limits.h"
#include "metrics.h"
#include "router.h"

static char text[METRICS_TEXT_MAX_BYTES];

static int fresh(void **state)
{
	(void)state;
	metrics_free();
	return metrics_init();
}

static const char *render(void)
{
	size_t n = metrics_render(text, sizeof(text));
	assert_true(n != (size_t)-1);
	assert_int_equal(strlen(text), n);
	return text;
}

/* The value of the sample line that starts with `series ` (0 when none). */
static double value(const char *series)
{
	char key[512];
	snprintf(key, sizeof(key), "\n%s ", series);
	const char *p = strstr(render(), key);
	if (p == NULL)
		return 0;
	return strtod(p + strlen(key), NULL);
}

static int has_line(const char *line)
{
	char key[512];
	snprintf(key, sizeof(key), "\n%s\n", line);
	return strstr(render(), key) != NULL;
}

static void test_nothing_before_init(void **state)
{
	(void)state;
	metrics_free();
	metrics_request("/api/v1/mail-servers", 200, 0.01);
	metrics_db_error(DB_CAUSE_TIMEOUT);
	metrics_thread_busy(1);
	assert_int_equal(metrics_render(text, sizeof(text)), 0);
	assert_string_equal(text, "");
}

static void test_requests_by_route_and_status(void **state)
{
	(void)state;
	/* The router's own pointer, an equal string, and what no route is. */
	metrics_request(router_routes[router_nroutes - 1].template, 200, 0.002);
	metrics_request("/api/v1/mail-servers/{id}", 200, 0.002);
	metrics_request("/api/v1/mail-servers/{id}", 404, 0.002);
	metrics_request(NULL, 404, 0.001);
	metrics_request("/api/v1/nothing", 404, 0.001);
	metrics_request("/healthz", 299, 0.001);
	assert_true(has_line("mailsrv_http_requests_total{route=\"/api/v1/mail-servers/{id}\","
	                     "status=\"200\"} 2"));
	assert_true(has_line("mailsrv_http_requests_total{route=\"/api/v1/mail-servers/{id}\","
	                     "status=\"404\"} 1"));
	assert_true(has_line("mailsrv_http_requests_total{route=\"other\",status=\"404\"} 2"));
	assert_true(has_line("mailsrv_http_requests_total{route=\"/healthz\",status=\"other\"} 1"));
	/* Series never counted are left out, not written as 0. */
	assert_null(strstr(render(), "route=\"/api/v1/mail-servers\",status"));
}

static void test_histogram(void **state)
{
	(void)state;
	const char *r = "/api/v1/mail-servers";
	metrics_request(r, 200, 0.0005); /* le 0.001 */
	metrics_request(r, 200, 0.001);  /* le 0.001: the bound is inclusive */
	metrics_request(r, 200, 0.02);   /* le 0.025 */
	metrics_request(r, 201, 45.0);   /* above every bound */
#define B(le)                                                                                      \
	"mailsrv_http_request_duration_seconds_bucket{route=\"/api/v1/mail-servers\",le=\"" le "\"}"
	assert_true(value(B("0.001")) == 2);
	assert_true(value(B("0.01")) == 2);
	assert_true(value(B("0.025")) == 3);
	assert_true(value(B("30")) == 3);
	assert_true(value(B("+Inf")) == 4);
#undef B
	assert_true(has_line(
	    "mailsrv_http_request_duration_seconds_count{route=\"/api/v1/mail-servers\"} 4"));
	assert_true(has_line(
	    "mailsrv_http_request_duration_seconds_sum{route=\"/api/v1/mail-servers\"} 45.021500"));
	/* A route never requested has no histogram. */
	assert_null(strstr(render(), "seconds_count{route=\"/metrics\"}"));
}

static void test_the_other_series(void **state)
{
	(void)state;
	metrics_db_error(DB_CAUSE_TIMEOUT);
	metrics_db_error(DB_CAUSE_TIMEOUT);
	metrics_db_error(DB_CAUSE_UNIQUE);
	metrics_db_error(DB_CAUSE_NONE); /* counted as other */
	metrics_db_error(99);
	metrics_db_reconnect();
	metrics_db_read_rerun();
	metrics_db_read_rerun();
	metrics_outbound(METRICS_OAUTH2_TOKEN, METRICS_SUCCESS);
	metrics_outbound(METRICS_SMTP_TEST, METRICS_FAILURE);
	metrics_outbound(METRICS_SMTP_TEST, METRICS_FAILURE);
	metrics_worker_restarted();
	assert_true(has_line("mailsrv_db_errors_total{cause=\"timeout\"} 2"));
	assert_true(has_line("mailsrv_db_errors_total{cause=\"unique_violation\"} 1"));
	assert_true(has_line("mailsrv_db_errors_total{cause=\"other\"} 2"));
	assert_true(has_line("mailsrv_db_errors_total{cause=\"unavailable\"} 0"));
	assert_true(has_line("mailsrv_db_reconnects_total 1"));
	assert_true(has_line("mailsrv_db_reads_rerun_total 2"));
	assert_true(
	    has_line("mailsrv_outbound_calls_total{kind=\"oauth2_token\",outcome=\"success\"} 1"));
	assert_true(
	    has_line("mailsrv_outbound_calls_total{kind=\"oauth2_token\",outcome=\"failure\"} 0"));
	assert_true(
	    has_line("mailsrv_outbound_calls_total{kind=\"smtp_test\",outcome=\"failure\"} 2"));
	assert_true(has_line("mailsrv_worker_restarts_total 1"));
	assert_true(has_line("mailsrv_build_info{version=\"" MAILSRV_VERSION "\"} 1"));
}

/* Every sample belongs to the family announced last by HELP and TYPE, each
 * family is announced once, and every line ends with a newline. */
static void test_help_and_type_before_samples(void **state)
{
	(void)state;
	metrics_request("/api/v1/mail-servers", 200, 0.01);
	char *copy = strdup(render());
	assert_non_null(copy);
	assert_true(copy[strlen(copy) - 1] == '\n');
	char family[128] = "", type[32] = "";
	int families = 0;
	for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "# HELP ", 7) == 0) {
			char name[128];
			assert_int_equal(sscanf(line + 7, "%127s", name), 1);
			assert_true(strcmp(name, family) != 0);
			snprintf(family, sizeof(family), "%s", name);
			type[0] = '\0';
			families++;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[128];
			assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
			assert_string_equal(name, family);
			continue;
		}
		assert_true(type[0] != '\0');
		size_t n = strlen(family);
		assert_memory_equal(line, family, n);
		const char *rest = line + n;
		if (strcmp(type, "histogram") == 0 &&
		    (strncmp(rest, "_bucket", 7) == 0 || strncmp(rest, "_count", 6) == 0))
			rest += rest[1] == 'b' ? 7 : 6;
		else if (strcmp(type, "histogram") == 0 && strncmp(rest, "_sum", 4) == 0)
			rest += 4;
		assert_true(*rest == ' ' || *rest == '{');
	}
	assert_int_equal(families, 9);
	free(copy);
}

static void test_counts_are_shared_with_forked_processes(void **state)
{
	(void)state;
	metrics_request("/api/v1/mail-servers/default", 200, 0.01);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		metrics_set_slot(1);
		for (int i = 0; i < 1000; i++)
			metrics_request("/api/v1/mail-servers/default", 200, 0.01);
		metrics_thread_busy(1);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(has_line("mailsrv_http_requests_total{route=\"/api/v1/mail-servers/default\","
	                     "status=\"200\"} 1001"));
	/* The child died busy; the slot's next process starts from 0. */
	assert_true(has_line("mailsrv_worker_threads_busy 1"));
	metrics_set_slot(1);
	assert_true(has_line("mailsrv_worker_threads_busy 0"));
	metrics_set_slot(0);
}

/* A new connection is left to a started process holding fewer connections
 * with a thread free; never to a slot no process has started in, nor to a
 * process whose threads are all busy. */
static void test_lighter_process(void **state)
{
	(void)state;
	metrics_set_slot(0);
	assert_false(metrics_other_process_lighter(4, 1)); /* alone */
	metrics_connections(2);
	assert_false(metrics_other_process_lighter(4, 1)); /* slot 1: never started */
	metrics_set_slot(1);
	metrics_connections(1);
	metrics_set_slot(0); /* started again: its count is 0 again */
	metrics_connections(2);
	assert_true(metrics_other_process_lighter(4, 1));  /* 2 against 1 */
	assert_false(metrics_other_process_lighter(4, 2)); /* not 2 fewer */
	metrics_connections(1);
	assert_true(metrics_other_process_lighter(4, 2)); /* 3 against 1 */
	metrics_connections(-1);
	metrics_set_slot(1);
	metrics_thread_busy(4);
	metrics_set_slot(0);
	metrics_connections(2);
	assert_false(metrics_other_process_lighter(4, 1)); /* slot 1's threads all busy */
	metrics_connections(-4);
	assert_false(metrics_other_process_lighter(4, 1)); /* 0 against 1 */
}

static void test_a_small_buffer_is_refused(void **state)
{
	(void)state;
	char small[64];
	assert_true(metrics_render(small, sizeof(small)) == (size_t)-1);
	assert_true(metrics_render(small, 0) == (size_t)-1);
}

/* Every route of every status and every histogram fits the buffer. */
static void test_the_largest_text_fits(void **state)
{
	(void)state;
	static const int all[] = {200, 201, 204, 303, 400, 401, 403, 404, 405, 409,
	                          412, 413, 415, 422, 429, 500, 502, 503, 504, 299};
	for (size_t r = 0; r < router_nroutes; r++)
		for (size_t s = 0; s < sizeof(all) / sizeof(all[0]); s++)
			metrics_request(router_routes[r].template, all[s], 123456.789);
	const char *extra[] = {"/healthz", "/livez", "/readyz", "/metrics", NULL};
	for (size_t r = 0; r < sizeof(extra) / sizeof(extra[0]); r++)
		for (size_t s = 0; s < sizeof(all) / sizeof(all[0]); s++)
			metrics_request(extra[r], all[s], 123456.789);
	size_t n = metrics_render(text, sizeof(text));
	assert_true(n != (size_t)-1);
	assert_true(n < sizeof(text) / 2);
}

static void test_templates_match_the_routes(void **state)
{
	(void)state;
	for (size_t i = 0; i < router_nroutes; i++) {
		char want[128];
		snprintf(want, sizeof(want), "/api/v1/%s", router_routes[i].path);
		assert_string_equal(router_routes[i].template, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nothing_before_init),
	    cmocka_unit_test_setup(test_requests_by_route_and_status, fresh),
	    cmocka_unit_test_setup(test_histogram, fresh),
	    cmocka_unit_test_setup(test_the_other_series, fresh),
	    cmocka_unit_test_setup(test_help_and_type_before_samples, fresh),
	    cmocka_unit_test_setup(test_counts_are_shared_with_forked_processes, fresh),
	    cmocka_unit_test_setup(test_lighter_process, fresh),
	    cmocka_unit_test_setup(test_a_small_buffer_is_refused, fresh),
	    cmocka_unit_test_setup(test_the_largest_text_fits, fresh),
	    cmocka_unit_test(test_templates_match_the_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
