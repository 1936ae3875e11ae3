/*
 * http_db.h - the one mapping of a data-layer failure to problem details:
 * the err_t a db_* function returned, the cause the data layer saw
 * (db_cause, db_constraint) and whether the request read or wrote give the
 * err_t to answer with (http.c turns it into status and type), the detail
 * and, for a taken name, the field error.
 */
#ifndef MAILSRV_HTTP_DB_H
#define MAILSRV_HTTP_DB_H

#include "db.h"
#include "err.h"

struct ctx;

enum db_op { DB_READ, DB_WRITE };

struct db_problem {
	err_t e;
	const char *detail;  /* static, client-safe */
	const char *field;   /* a field error to add (NULL: none) */
	const char *message; /* ... and its message */
	int bug;             /* the database refused what validation let through */
};

/* Pure (tests/unit/test_http_db.c holds its table). e is what the data
 * layer returned: E_OK, E_NOT_FOUND (a row the operation needs is gone),
 * E_CONFLICT, E_DB_UNAVAILABLE or E_INTERNAL; any other value is a bug. */
struct db_problem http_db_problem(err_t e, enum db_cause cause, const char *constraint,
                                  enum db_op op);

/* For handlers, at the call that failed: E_OK passes through; a failure
 * becomes its problem on c (detail, field error, a log line for a bug)
 * and the err_t to return.
 *   if ((e = http_reject_db(c, db_ms_get(...), DB_READ)) != E_OK) ... */
err_t http_reject_db(struct ctx *c, err_t e, enum db_op op);

#endif
