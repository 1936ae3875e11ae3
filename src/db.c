/*
 * db.c - the worker thread's PostgreSQL connection (see db.h).
 *
 * Timeouts come from two places on purpose: the client side bounds the
 * connect and a half-open TCP connection (docs/design.md, "PostgreSQL 15 and libpq"), the session
 * settings bound statements, lock waits and idle transactions, so a request
 * never waits on the database longer than DB_STATEMENT_TIMEOUT_MS. And the
 * client waits for no answer longer than that plus DB_ANSWER_MARGIN_MS
 * (await): a path that went silent without a reset (a stalled proxy that
 * keeps the TCP connection up) is noticed by neither of the others. So every
 * statement is sent with libpq's asynchronous calls on a non-blocking
 * connection and its answer awaited with poll().
 */
#include "db.h"
#include "db_statements.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mailsrv_limits.h"
#include "metrics.h"

struct db {
	const char *conninfo;
	PGconn *conn;
	int pinned;         /* db_pin: session state held, no re-runs */
	int had_connection; /* a connection made now is a reconnect (metrics) */
	enum db_cause cause;
	char sqlstate[6];
	char constraint[64];
	long long busy_ns; /* time spent waiting for the server since db_take_busy_us */
};

struct db *db_new(const char *conninfo)
{
	struct db *db = calloc(1, sizeof(*db));
	if (db != NULL)
		db->conninfo = conninfo;
	return db;
}

static void db_disconnect(struct db *db)
{
	if (db->conn != NULL) {
		PQfinish(db->conn);
		db->conn = NULL;
	}
}

void db_free(struct db *db)
{
	if (db == NULL)
		return;
	db_disconnect(db);
	free(db);
}

static void remember_error(struct db *db, const PGresult *res)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", state ? state : "");
	snprintf(db->constraint, sizeof(db->constraint), "%s", cons ? cons : "");
}

/* libpq prints server notices (and the FATAL of a terminated session) on
 * stderr by default, unformatted; route them through our log instead. */
static void notice_to_log(void *arg, const char *message)
{
	(void)arg;
	log_info("database notice: %s", message);
}

static long long mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * The answer to what was just sent (sent: the PQsend* call's return), waited
 * for at most wait_ms: the first error result, else the last result; the
 * caller clears it. NULL with *timed_out set when no answer came in time:
 * the connection is given up (closed, db->conn NULL), since its protocol
 * state is unknown and the statement may yet run. NULL without it when the
 * connection failed (PQstatus says so, PQerrorMessage why).
 */
static PGresult *await_answer(struct db *db, int sent, int wait_ms, int *timed_out)
{
	PGconn *conn = db->conn;
	PGresult *kept = NULL;
	long long deadline = mono_ms() + wait_ms;
	*timed_out = 0;
	if (!sent)
		return NULL;
	for (;;) {
		int flushing = PQflush(conn); /* 0 all sent, 1 more to send, -1 failed */
		if (flushing < 0)
			break;
		while (!flushing && !PQisBusy(conn)) {
			PGresult *r = PQgetResult(conn);
			if (r == NULL)
				return kept;
			ExecStatusType st = PQresultStatus(r);
			int err = st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
			if (kept == NULL || (err && (PQresultStatus(kept) == PGRES_COMMAND_OK ||
			                             PQresultStatus(kept) == PGRES_TUPLES_OK))) {
				PQclear(kept);
				kept = r;
			} else {
				PQclear(r);
			}
		}
		long long left = deadline - mono_ms();
		if (left <= 0) {
			PQclear(kept);
			log_warning(
			    "no answer from the database within %d ms: giving the connection up",
			    wait_ms);
			db_disconnect(db);
			db->cause = DB_CAUSE_TIMEOUT;
			metrics_db_error(DB_CAUSE_TIMEOUT);
			*timed_out = 1;
			return NULL;
		}
		struct pollfd p = {.fd = PQsocket(conn),
		                   .events = POLLIN | (flushing ? POLLOUT : 0)};
		if (p.fd < 0)
			break;
		int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (n < 0 && errno != EINTR)
			break;
		if (n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn))
			break;
	}
	PQclear(kept);
	return NULL;
}

/* await_answer, its time added to the request's database time. */
static PGresult *await(struct db *db, int sent, int wait_ms, int *timed_out)
{
	long long t0 = mono_ns();
	PGresult *r = await_answer(db, sent, wait_ms, timed_out);
	db->busy_ns += mono_ns() - t0;
	return r;
}

long long db_take_busy_us(struct db *db)
{
	if (db == NULL)
		return 0;
	long long us = db->busy_ns / 1000;
	db->busy_ns = 0;
	return us;
}

static int prepare_all(struct db *db)
{
	int wait_ms = DB_STATEMENT_TIMEOUT_MS + DB_ANSWER_MARGIN_MS, timed_out;
	for (size_t i = 0; i < db_statement_count; i++) {
		PGresult *res = await(
		    db,
		    PQsendPrepare(db->conn, db_statements[i].name, db_statements[i].sql, 0, NULL),
		    wait_ms, &timed_out);
		int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok && !timed_out)
			log_error("could not prepare statement \"%s\": %s", db_statements[i].name,
			          res ? PQresultErrorMessage(res) : PQerrorMessage(db->conn));
		PQclear(res);
		if (!ok)
			return -1;
	}
	return 0;
}

/*
 * Has the server closed this idle connection (restart, pg_terminate_backend,
 * idle timeout)? It then sends a FATAL message and closes the socket, which
 * becomes readable: one poll() with no wait finds out, so the request that
 * follows reconnects first instead of failing on a dead connection.
 */
static int closed_by_server(PGconn *conn)
{
	struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
	if (p.fd < 0)
		return 1;
	/* We never LISTEN, so an idle connection has nothing to say but its
	 * own termination (or, rarely, a notice: a reconnect is cheap). */
	return poll(&p, 1, 0) != 0;
}

err_t db_ensure(struct db *db)
{
	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) == PQTRANS_IDLE && !closed_by_server(db->conn))
		return E_OK;
	if (db->conn != NULL)
		log_info("reconnecting to the database: the connection was closed");
	db_disconnect(db);

	char connect_timeout[16], tcp_user_timeout[16], options[160];
	snprintf(connect_timeout, sizeof(connect_timeout), "%d", DB_CONNECT_TIMEOUT_S);
	const char *ka_idle = LIMIT_STR(DB_KEEPALIVES_IDLE_S);
	const char *ka_interval = LIMIT_STR(DB_KEEPALIVES_INTERVAL_S);
	const char *ka_count = LIMIT_STR(DB_KEEPALIVES_COUNT);
	snprintf(tcp_user_timeout, sizeof(tcp_user_timeout), "%d", DB_TCP_USER_TIMEOUT_MS);
	snprintf(
	    options, sizeof(options),
	    "-c statement_timeout=%d -c lock_timeout=%d -c idle_in_transaction_session_timeout=%d"
	    " -c TimeZone=UTC",
	    DB_STATEMENT_TIMEOUT_MS, DB_LOCK_TIMEOUT_MS, DB_IDLE_IN_TX_TIMEOUT_MS);
	/* Our defaults first: the configured conninfo (expanded from "dbname",
	 * last) overrides any of them. */
	const char *keys[] = {"connect_timeout",  "keepalives",
	                      "keepalives_idle",  "keepalives_interval",
	                      "keepalives_count", "tcp_user_timeout",
	                      "options",          "application_name",
	                      "dbname",           NULL};
	const char *vals[] = {connect_timeout,  "1",     ka_idle,   ka_interval,  ka_count,
	                      tcp_user_timeout, options, "mailsrv", db->conninfo, NULL};
	long long t0 = mono_ns();
	db->conn = PQconnectdbParams(keys, vals, 1);
	db->busy_ns += mono_ns() - t0;
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		/* PQerrorMessage names host and reason, never a password. */
		char msg[256];
		snprintf(msg, sizeof(msg), "%s",
		         db->conn ? PQerrorMessage(db->conn) : "out of memory");
		log_warning("could not connect to the database: %s", msg);
		db_disconnect(db);
		db->cause = DB_CAUSE_UNAVAILABLE;
		metrics_db_error(DB_CAUSE_UNAVAILABLE);
		return E_DB_UNAVAILABLE;
	}
	PQsetNoticeProcessor(db->conn, notice_to_log, NULL);
	/* Sends never block (await polls for the rest); see the header. */
	if (PQsetnonblocking(db->conn, 1) != 0 || prepare_all(db) != 0) {
		db_disconnect(db);
		db->cause = DB_CAUSE_UNAVAILABLE;
		metrics_db_error(DB_CAUSE_UNAVAILABLE);
		return E_DB_UNAVAILABLE;
	}
	if (db->had_connection)
		metrics_db_reconnect();
	db->had_connection = 1;
	return E_OK;
}

enum db_cause db_cause_of_sqlstate(const char *s)
{
	if (strcmp(s, "23505") == 0)
		return DB_CAUSE_UNIQUE;
	if (strcmp(s, "23503") == 0)
		return DB_CAUSE_FOREIGN_KEY;
	if (strncmp(s, "23", 2) == 0)
		return DB_CAUSE_CHECK;
	/* 55P03 lock_not_available, 57014 query_canceled (statement timeout) */
	if (strcmp(s, "55P03") == 0 || strcmp(s, "57014") == 0)
		return DB_CAUSE_TIMEOUT;
	/* 40001/40P01 serialization failure, deadlock */
	if (strncmp(s, "40", 2) == 0)
		return DB_CAUSE_SERIALIZATION;
	/* 53xxx resources, 57P0x shutdown, 08xxx connection */
	if (strncmp(s, "53", 2) == 0 || strncmp(s, "57P", 3) == 0 || strncmp(s, "08", 2) == 0)
		return DB_CAUSE_UNAVAILABLE;
	return DB_CAUSE_OTHER;
}

/* Classify a failed result: remember its cause, answer its err_t. */
static err_t classify(struct db *db, PGresult *res)
{
	remember_error(db, res);
	const char *s = db->sqlstate;
	/* No SQLSTATE: the failure is libpq's own, not an answer of the server
	 * (which always sends one). A write that failed because the server
	 * closed the connection (PostgreSQL stopped with -m immediate) comes
	 * back so while PQstatus still says CONNECTION_OK: the connection is
	 * as lost as when it says so. */
	if (PQstatus(db->conn) != CONNECTION_OK || s[0] == '\0') {
		log_warning("lost the database connection: %s", PQerrorMessage(db->conn));
		db_disconnect(db);
		db->cause = DB_CAUSE_UNAVAILABLE;
		metrics_db_error(DB_CAUSE_UNAVAILABLE);
		return E_DB_UNAVAILABLE;
	}
	db->cause = db_cause_of_sqlstate(s);
	metrics_db_error(db->cause);
	err_t e = db_cause_err(db->cause);
	if (e == E_INTERNAL)
		log_error("database request failed (SQLSTATE %s): %s", s,
		          res ? PQresultErrorMessage(res) : "");
	else if (e == E_DB_UNAVAILABLE) /* transient: the client may retry */
		log_warning("database request failed (SQLSTATE %s): %s", s,
		            res ? PQresultErrorMessage(res) : "");
	return e;
}

err_t db_cause_err(enum db_cause cause)
{
	switch (cause) {
	case DB_CAUSE_NONE:
		return E_OK;
	case DB_CAUSE_UNIQUE:
		return E_CONFLICT;
	case DB_CAUSE_UNAVAILABLE:
	case DB_CAUSE_TIMEOUT:
	case DB_CAUSE_SERIALIZATION:
		return E_DB_UNAVAILABLE;
	default:
		return E_INTERNAL;
	}
}

void db_pin(struct db *db)
{
	db->pinned++;
}

void db_unpin(struct db *db)
{
	if (db->pinned > 0)
		db->pinned--;
}

/* Before a statement: no cause or SQLSTATE of an earlier one stays behind.
 * E_DB_UNAVAILABLE (and that cause) when there is no connection. */
static err_t fresh_status(struct db *db)
{
	db->sqlstate[0] = db->constraint[0] = '\0';
	db->cause = DB_CAUSE_NONE;
	if (db->conn == NULL) {
		db->cause = DB_CAUSE_UNAVAILABLE;
		return E_DB_UNAVAILABLE;
	}
	return E_OK;
}

/* A statement runs alone on its first try, outside a transaction and on a
 * connection nobody pinned: only then may a read be run again elsewhere. */
static int runs_alone(struct db *db, int attempt)
{
	return attempt == 0 && db->pinned == 0 && PQtransactionStatus(db->conn) == PQTRANS_IDLE;
}

/* Whether a read that failed with *e is run once more: only when the
 * connection was lost under it (classify gave the connection up, or the
 * server ended the session: 57P01 admin_shutdown, which
 * pg_terminate_backend and a fast shutdown send) and the read ran alone
 * (may_rerun: first try, outside a transaction). Yes means a new
 * connection is ready; no leaves in *e the error to return. */
static int read_again(struct db *db, err_t *e, int may_rerun, const char *name)
{
	int lost = db->conn == NULL || strcmp(db->sqlstate, "57P01") == 0;
	if (*e != E_DB_UNAVAILABLE || !lost || !may_rerun)
		return 0;
	log_info("running %s again on a new connection", name);
	metrics_db_read_rerun();
	db_disconnect(db);
	if (db_ensure(db) != E_OK) {
		*e = E_DB_UNAVAILABLE;
		return 0;
	}
	return 1;
}

err_t db_exec(struct db *db, int stmt, int nparams, const char *const *values, const int *lengths,
              const int *fmt, struct pg_result **out)
{
	if (out != NULL)
		*out = NULL;
	for (int attempt = 0;; attempt++) {
		if (fresh_status(db) != E_OK)
			return E_DB_UNAVAILABLE;
		/* Taken before the statement: after a failure the status is the
		 * failure's. Whether the statement only reads is asked on failure. */
		int alone = runs_alone(db, attempt);
		int timed_out;
		PGresult *res = await(db,
		                      PQsendQueryPrepared(db->conn, db_statements[stmt].name,
		                                          nparams, values, lengths, fmt, 0),
		                      db_statement_wait_ms(stmt), &timed_out);
		/* No answer in time: given up, never run again (it may yet run). */
		if (timed_out)
			return E_DB_UNAVAILABLE;
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
			if (out != NULL)
				*out = res;
			else
				PQclear(res);
			return E_OK;
		}
		err_t e = classify(db, res);
		PQclear(res);
		if (!read_again(db, &e, alone && db_statement_reads_only(stmt),
		                db_statements[stmt].name))
			return e;
	}
}

err_t db_schema_latest(struct db *db, int wait_ms, char *out, size_t outlen)
{
	out[0] = '\0';
	for (int attempt = 0;; attempt++) {
		if (fresh_status(db) != E_OK)
			return E_DB_UNAVAILABLE;
		int alone = runs_alone(db, attempt);
		/* Not a prepared statement: those are prepared on every connection,
		 * and a database without the bookkeeping table (or without the grant
		 * to read it) must only make this fail, not every connection. */
		int timed_out;
		PGresult *res =
		    await(db, PQsendQuery(db->conn, "SELECT max(filename) FROM schema_migrations"),
		          wait_ms, &timed_out);
		if (timed_out)
			return E_DB_UNAVAILABLE;
		if (PQresultStatus(res) == PGRES_TUPLES_OK) {
			if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
				snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
			PQclear(res);
			return E_OK;
		}
		err_t e = classify(db, res);
		PQclear(res);
		if (!read_again(db, &e, alone, "schema_latest"))
			return e;
	}
}

void db_clear(struct pg_result *res)
{
	PQclear(res);
}

static err_t simple(struct db *db, const char *sql)
{
	if (fresh_status(db) != E_OK)
		return E_DB_UNAVAILABLE;
	int timed_out;
	PGresult *res = await(db, PQsendQuery(db->conn, sql),
	                      DB_STATEMENT_TIMEOUT_MS + DB_ANSWER_MARGIN_MS, &timed_out);
	if (timed_out)
		return E_DB_UNAVAILABLE;
	err_t e = PQresultStatus(res) == PGRES_COMMAND_OK ? E_OK : classify(db, res);
	PQclear(res);
	return e;
}

err_t db_begin(struct db *db)
{
	return simple(db, "BEGIN");
}

err_t db_commit(struct db *db)
{
	err_t e = simple(db, "COMMIT");
	/* A COMMIT whose answer was lost may or may not have committed: the
	 * caller reports 503 and never retries it blindly. */
	return e;
}

void db_rollback(struct db *db)
{
	if (db->conn == NULL)
		return;
	if (PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return;
	int timed_out;
	PGresult *res = await(db, PQsendQuery(db->conn, "ROLLBACK"),
	                      DB_STATEMENT_TIMEOUT_MS + DB_ANSWER_MARGIN_MS, &timed_out);
	PQclear(res);
	if (!timed_out && PQstatus(db->conn) != CONNECTION_OK)
		db_disconnect(db);
}

enum db_cause db_cause(const struct db *db)
{
	return db->cause;
}

const char *db_constraint(const struct db *db)
{
	return db->constraint;
}

const char *db_sqlstate(const struct db *db)
{
	return db->sqlstate;
}

int db_ntuples(const struct pg_result *r)
{
	return PQntuples(r);
}

int db_isnull(const struct pg_result *r, int row, int col)
{
	return PQgetisnull(r, row, col);
}

const char *db_value(const struct pg_result *r, int row, int col)
{
	return PQgetvalue(r, row, col);
}

int db_length(const struct pg_result *r, int row, int col)
{
	return PQgetlength(r, row, col);
}

long db_affected(const struct pg_result *r)
{
	return strtol(PQcmdTuples((PGresult *)r), NULL, 10);
}
