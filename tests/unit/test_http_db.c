/*
 * test_http_db.c - unit tests of src/http_db.c: every data-layer failure
 * (err_t and cause) to the status, problem type, detail and field error the
 * client sees, through http.c's one err_t mapping; and that mapping itself,
 * err_t by err_t.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "arena.h"
#include "http.h"
#include "http_db.h"
#include "json.h"

struct answer {
	int status;
	const char *type;
};

struct fixture {
	struct worker w;
	struct http_request req;
	struct http_response resp;
	struct ctx c;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->req.request_id = "";
	f->c.arena = arena_new(1 << 20);
	f->c.out = json_out_new();
	f->c.req = &f->req;
	f->c.resp = &f->resp;
	f->c.w = &f->w;
}

static void fixture_free(struct fixture *f)
{
	json_out_free(f->c.out);
	arena_free(f->c.arena);
}

/* Answer e with detail through http_problem; the parsed document. */
static struct json_value *answer(struct fixture *f, err_t e, const char *detail)
{
	memset(&f->resp, 0, sizeof(f->resp));
	http_problem(&f->c, http_reject(&f->c, e, detail));
	struct json_value *v;
	char msg[64];
	assert_int_equal(
	    json_parse(f->c.arena, f->resp.body, f->resp.body_len, &v, msg, sizeof(msg)), JSON_OK);
	assert_int_equal(json_get(v, "status")->u.number.i, f->resp.status);
	return v;
}

/* The one err_t mapping (http.c), pinned: integrators branch on these. */
static void test_problem_table(void **state)
{
	(void)state;
	static const struct answer want[E__COUNT] = {
	    [E_BAD_REQUEST] = {400, "/problems/bad-request"},
	    [E_VALIDATION] = {422, "/problems/validation"},
	    [E_UNAUTHORIZED] = {401, "/problems/unauthorized"},
	    [E_FORBIDDEN] = {403, "/problems/forbidden"},
	    [E_NOT_FOUND] = {404, "/problems/not-found"},
	    [E_METHOD_NOT_ALLOWED] = {405, "/problems/method-not-allowed"},
	    [E_CONFLICT] = {409, "/problems/conflict"},
	    [E_PRECONDITION_FAILED] = {412, "/problems/precondition-failed"},
	    [E_PAYLOAD_TOO_LARGE] = {413, "/problems/payload-too-large"},
	    [E_UNSUPPORTED_MEDIA_TYPE] = {415, "/problems/unsupported-media-type"},
	    [E_RATE_LIMITED] = {429, "/problems/rate-limited"},
	    [E_SERVICE_BUSY] = {503, "/problems/service-busy"},
	    [E_SECRET_UNREADABLE] = {409, "/problems/conflict"},
	    [E_DB_UNAVAILABLE] = {503, "/problems/database-unavailable"},
	    [E_OAUTH2_PROVIDER] = {502, "/problems/oauth2-provider-error"},
	    [E_DESTINATION_REFUSED] = {502, "/problems/destination-refused"},
	    [E_UPSTREAM_UNREACHABLE] = {502, "/problems/upstream-unreachable"},
	    [E_UPSTREAM_TIMEOUT] = {502, "/problems/upstream-timeout"},
	    [E_INTERNAL] = {500, "/problems/internal"},
	};
	struct fixture f;
	fixture_init(&f);
	for (int e = E_OK + 1; e < E__COUNT; e++) {
		struct json_value *v = answer(&f, (err_t)e, "d");
		assert_int_equal(f.resp.status, want[e].status);
		assert_string_equal(json_get(v, "type")->u.string.ptr, want[e].type);
		assert_string_equal(json_get(v, "detail")->u.string.ptr, "d");
		assert_string_equal(f.resp.content_type, "application/problem+json");
	}
	fixture_free(&f);
}

struct db_case {
	err_t e;
	enum db_cause cause;
	const char *constraint;
	enum db_op op;
	/* expected */
	int status;
	const char *type;
	const char *detail;
	const char *field; /* NULL: no field error */
	int bug;
};

static const struct db_case db_cases[] = {
    /* a lost or missing connection, whatever the operation */
    {E_DB_UNAVAILABLE, DB_CAUSE_UNAVAILABLE, "", DB_READ, 503, "/problems/database-unavailable",
     "the database is unavailable; retry later", NULL, 0},
    {E_DB_UNAVAILABLE, DB_CAUSE_UNAVAILABLE, "", DB_WRITE, 503, "/problems/database-unavailable",
     "the database is unavailable; retry later", NULL, 0},
    /* db_ensure failed before any statement, or the cause was lost */
    {E_DB_UNAVAILABLE, DB_CAUSE_NONE, "", DB_WRITE, 503, "/problems/database-unavailable",
     "the database is unavailable; retry later", NULL, 0},
    {E_DB_UNAVAILABLE, DB_CAUSE_TIMEOUT, "", DB_READ, 503, "/problems/database-unavailable",
     "the database did not answer in time; retry later", NULL, 0},
    {E_DB_UNAVAILABLE, DB_CAUSE_SERIALIZATION, "", DB_WRITE, 503, "/problems/database-unavailable",
     "the request conflicted with a concurrent change; retry", NULL, 0},
    /* the unique name: 409 naming the field */
    {E_CONFLICT, DB_CAUSE_UNIQUE, "mail_server_name_key", DB_WRITE, 409, "/problems/conflict",
     "a mail server with this name already exists", "name", 0},
    /* the single default raced: retry */
    {E_CONFLICT, DB_CAUSE_UNIQUE, "mail_server_single_default", DB_WRITE, 503,
     "/problems/database-unavailable", "the default server changed concurrently; retry", NULL, 0},
    /* any other refusal of a validated value is a validator bug: 500, logged */
    {E_CONFLICT, DB_CAUSE_UNIQUE, "some_other_key", DB_WRITE, 500, "/problems/internal",
     "a database constraint refused a validated value", NULL, 1},
    {E_CONFLICT, DB_CAUSE_NONE, "", DB_WRITE, 500, "/problems/internal",
     "a database constraint refused a validated value", NULL, 1},
    {E_INTERNAL, DB_CAUSE_CHECK, "mail_server_basic_fields", DB_WRITE, 500, "/problems/internal",
     "a database constraint refused a validated value", NULL, 1},
    {E_INTERNAL, DB_CAUSE_FOREIGN_KEY, "", DB_WRITE, 500, "/problems/internal",
     "a database constraint refused a validated value", NULL, 1},
    /* other failures say what failed: a read never says "store" */
    {E_INTERNAL, DB_CAUSE_OTHER, "", DB_READ, 500, "/problems/internal",
     "could not read the mail server", NULL, 0},
    {E_INTERNAL, DB_CAUSE_NONE, "", DB_READ, 500, "/problems/internal",
     "could not read the mail server", NULL, 0},
    {E_INTERNAL, DB_CAUSE_OTHER, "", DB_WRITE, 500, "/problems/internal",
     "could not store the change", NULL, 0},
    /* a row the operation needs is gone */
    {E_NOT_FOUND, DB_CAUSE_FOREIGN_KEY, "", DB_WRITE, 404, "/problems/not-found",
     "no mail server has this id", NULL, 0},
    /* a stored secret that does not decrypt: the client's to fix */
    {E_SECRET_UNREADABLE, DB_CAUSE_NONE, "", DB_READ, 409, "/problems/conflict",
     "a stored secret of the mail server cannot be decrypted: enter it again", NULL, 0},
    /* an err_t the data layer never returns is a bug, not passed on */
    {E_VALIDATION, DB_CAUSE_NONE, "", DB_READ, 500, "/problems/internal",
     "could not read the mail server", NULL, 0},
};

static void test_db_failures(void **state)
{
	(void)state;
	struct fixture f;
	fixture_init(&f);
	for (size_t i = 0; i < sizeof(db_cases) / sizeof(db_cases[0]); i++) {
		const struct db_case *k = &db_cases[i];
		struct db_problem p = http_db_problem(k->e, k->cause, k->constraint, k->op);
		f.c.nerrors = 0;
		if (p.field != NULL)
			http_field_error(&f.c, p.field, p.message);
		struct json_value *v = answer(&f, p.e, p.detail);
		if (f.resp.status != k->status)
			fail_msg("case %zu: status %d, want %d", i, f.resp.status, k->status);
		assert_string_equal(json_get(v, "type")->u.string.ptr, k->type);
		assert_string_equal(json_get(v, "detail")->u.string.ptr, k->detail);
		assert_int_equal(p.bug, k->bug);
		const struct json_value *errors = json_get(v, "errors");
		if (k->field == NULL) {
			assert_null(errors);
		} else {
			assert_non_null(errors);
			assert_int_equal(errors->u.array.count, 1);
			assert_string_equal(
			    json_get(errors->u.array.items[0], "field")->u.string.ptr, k->field);
		}
	}
	/* Success is no problem. */
	assert_int_equal(http_db_problem(E_OK, DB_CAUSE_NONE, "", DB_READ).e, E_OK);
	fixture_free(&f);
}

/* The data layer's half: SQLSTATE (PostgreSQL's appendix A) to cause to
 * the err_t db_exec returns. */
static void test_sqlstates(void **state)
{
	(void)state;
	static const struct {
		const char *sqlstate;
		enum db_cause cause;
		err_t e;
	} v[] = {
	    {"23505", DB_CAUSE_UNIQUE, E_CONFLICT},
	    {"23503", DB_CAUSE_FOREIGN_KEY, E_INTERNAL},
	    {"23514", DB_CAUSE_CHECK, E_INTERNAL},
	    {"23502", DB_CAUSE_CHECK, E_INTERNAL},
	    {"57014", DB_CAUSE_TIMEOUT, E_DB_UNAVAILABLE},
	    {"55P03", DB_CAUSE_TIMEOUT, E_DB_UNAVAILABLE},
	    {"40001", DB_CAUSE_SERIALIZATION, E_DB_UNAVAILABLE},
	    {"40P01", DB_CAUSE_SERIALIZATION, E_DB_UNAVAILABLE},
	    {"53300", DB_CAUSE_UNAVAILABLE, E_DB_UNAVAILABLE},
	    {"57P01", DB_CAUSE_UNAVAILABLE, E_DB_UNAVAILABLE},
	    {"08006", DB_CAUSE_UNAVAILABLE, E_DB_UNAVAILABLE},
	    {"42601", DB_CAUSE_OTHER, E_INTERNAL},
	    {"22P02", DB_CAUSE_OTHER, E_INTERNAL},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (db_cause_of_sqlstate(v[i].sqlstate) != v[i].cause)
			fail_msg("SQLSTATE %s: cause %d", v[i].sqlstate,
			         (int)db_cause_of_sqlstate(v[i].sqlstate));
		assert_int_equal(db_cause_err(v[i].cause), v[i].e);
	}
	assert_int_equal(db_cause_err(DB_CAUSE_NONE), E_OK);
}

/* A request that could not be read (fcgi_server.c) is answered by
 * http_problem like every other, even with no request id yet. */
static void test_app_reject(void **state)
{
	(void)state;
	struct worker w;
	memset(&w, 0, sizeof(w));
	w.arena = arena_new(1 << 16);
	w.out = json_out_new();
	struct http_request req;
	memset(&req, 0, sizeof(req));
	struct http_response resp;
	app_reject(&w, &req, &resp, E_PAYLOAD_TOO_LARGE, "the request is too large to process");
	assert_int_equal(resp.status, 413);
	assert_string_equal(resp.content_type, "application/problem+json");
	struct json_value *v;
	char msg[64];
	assert_int_equal(json_parse(w.arena, resp.body, resp.body_len, &v, msg, sizeof(msg)),
	                 JSON_OK);
	assert_string_equal(json_get(v, "type")->u.string.ptr, "/problems/payload-too-large");
	assert_string_equal(json_get(v, "detail")->u.string.ptr,
	                    "the request is too large to process");
	assert_null(json_get(v, "request_id"));
	assert_int_equal(resp.nheaders, 1);
	assert_string_equal(resp.headers[0].name, "Cache-Control");
	json_out_free(w.out);
	arena_free(w.arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_problem_table),
	    cmocka_unit_test(test_db_failures),
	    cmocka_unit_test(test_sqlstates),
	    cmocka_unit_test(test_app_reject),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
