/*
 * db.h - one PostgreSQL connection per worker thread, its prepared
 * statements, and the mapping of database failures to err_t.
 *
 * The connection is opened lazily and reopened on the next request after
 * it broke (PostgreSQL restarted, backend terminated): a request during an
 * outage fails fast with E_DB_UNAVAILABLE (503) instead of hanging.
 * Only this file and the per-table data files (db_*.c) include libpq-fe.h.
 */
#ifndef MAILSRV_DB_H
#define MAILSRV_DB_H

#include <stddef.h>

#include "err.h"

struct pg_result; /* libpq's PGresult */
struct db;

/* A statement of the one table (db_statements.c). */
struct db_statement {
	const char *name;
	const char *sql;
};
extern const struct db_statement db_statements[];
extern const size_t db_statement_count;

struct db *db_new(const char *conninfo);
/* The caller holds session state on this connection (an advisory session
 * lock): until db_unpin, no statement is run again on a new connection,
 * where that state would be missing. Counted; db_unpin after the state is
 * given back, or lost with the connection. */
void db_pin(struct db *db);
void db_unpin(struct db *db);
void db_free(struct db *db);

/* Connect and prepare every statement when not connected. */
err_t db_ensure(struct db *db);

/*
 * Run prepared statement `stmt` (index into db_statements) with text
 * parameters (NULL value = SQL NULL; lengths/binary per param when fmt is
 * non-NULL: fmt[i] = 1 for binary). On E_OK *res holds the result (NULL
 * allowed when the caller does not need it); the caller frees it with
 * db_clear. On failure db_cause() tells why: a unique violation gives
 * E_CONFLICT (the constraint's name in db_constraint()); timeouts,
 * serialization failures and lost connections E_DB_UNAVAILABLE; anything
 * else E_INTERNAL.
 */
err_t db_exec(struct db *db, int stmt, int nparams, const char *const *values, const int *lengths,
              const int *fmt, struct pg_result **res);
void db_clear(struct pg_result *res);

/* The time this connection spent waiting for the server (connecting,
 * statements, BEGIN/COMMIT/ROLLBACK) since the last call, in microseconds;
 * the count starts again at 0 (0 for a NULL db). Read once per request for
 * its log line. */
long long db_take_busy_us(struct db *db);

/* The newest migration applied (the greatest file name recorded by
 * scripts/migrate.sh in schema_migrations) into out, "" when none; waits at
 * most wait_ms for the answer (then the connection is given up). E_OK, or
 * the failure as db_exec reports it (E_INTERNAL when the table is missing or
 * not readable by the service's role). */
err_t db_schema_latest(struct db *db, int wait_ms, char *out, size_t outlen);

err_t db_begin(struct db *db);
err_t db_commit(struct db *db);
/* Never fails visibly: a broken connection is simply marked for reconnect. */
void db_rollback(struct db *db);

/* Why the last statement failed (SQLSTATE classes per PostgreSQL's
 * appendix A). http_db.c maps it, with the err_t, to problem details. */
enum db_cause {
	DB_CAUSE_NONE,          /* it did not fail (or the failure was not the database's) */
	DB_CAUSE_UNAVAILABLE,   /* no connection, lost, server shutting down or out of resources */
	DB_CAUSE_TIMEOUT,       /* statement or lock timeout (57014, 55P03): E_DB_UNAVAILABLE */
	DB_CAUSE_SERIALIZATION, /* serialization failure or deadlock (40xxx): E_DB_UNAVAILABLE */
	DB_CAUSE_UNIQUE,        /* unique violation (23505): E_CONFLICT, db_constraint() */
	DB_CAUSE_FOREIGN_KEY,   /* a referenced row is gone (23503): E_INTERNAL */
	DB_CAUSE_CHECK,         /* check or not-null violation (23xxx): E_INTERNAL */
	DB_CAUSE_OTHER,         /* anything else the server refused (a bug): E_INTERNAL */
	DB_CAUSE__COUNT
};
enum db_cause db_cause(const struct db *db);
/* The cause of a failure the server answered with this SQLSTATE, and the
 * err_t db_exec returns for a cause. */
enum db_cause db_cause_of_sqlstate(const char *sqlstate);
err_t db_cause_err(enum db_cause cause);
/* The constraint named by the last failure ("" if none). */
const char *db_constraint(const struct db *db);
/* The SQLSTATE of the last failure ("" if none). */
const char *db_sqlstate(const struct db *db);

/* Result access (rows and columns by index). */
int db_ntuples(const struct pg_result *r);
int db_isnull(const struct pg_result *r, int row, int col);
const char *db_value(const struct pg_result *r, int row, int col);
int db_length(const struct pg_result *r, int row, int col);
/* Rows changed by an INSERT/UPDATE/DELETE. */
long db_affected(const struct pg_result *r);

#endif
