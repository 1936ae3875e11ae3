/*
 * db_statements.h - names of the one table of SQL statements
 * (src/db_statements.c), prepared on every connection.
 */
#ifndef MAILSRV_DB_STATEMENTS_H
#define MAILSRV_DB_STATEMENTS_H

#include "mail_server.h" /* enum ms_sort: one list statement per sort key */

enum db_statement_id {
	ST_HEALTH,
	ST_MS_GET,
	ST_MS_GET_FOR_UPDATE,
	ST_MS_GET_DEFAULT,
	ST_MS_COUNT,
	ST_MS_NEXT_ID,
	ST_MS_INSERT,
	ST_MS_UPDATE,
	ST_MS_LOCK_DEFAULT,
	ST_MS_UNSET_DEFAULT,
	ST_MS_DELETE,
	ST_MS_BATCH_DELETE,
	ST_MS_LIST_FIRST,
	ST_MS_LIST_LAST = ST_MS_LIST_FIRST + 2 * SORT__COUNT - 1,
	/* OAuth 2.0 (db_oauth2.c, sql/002_oauth2.sql) */
	ST_OA_GET,
	ST_OA_LOCK_TIMEOUTS,
	ST_OA_LOCK,
	ST_OA_UNLOCK,
	ST_OA_UNLOCK_ALL,
	ST_OA_STORE_TOKENS,
	ST_OA_STORE_FAILURE,
	ST_OA_STATE_INSERT,
	ST_OA_STATE_CONSUME,
	ST_OA_STATE_PEEK,
	ST_OA_STATE_PURGE,
	/* SMTP connection test (db_smtp_test.c, sql/004_smtp_test.sql) */
	ST_ST_PASSWORD,
	ST_ST_RATE_HIT,
	ST_ST_RATE_PURGE,
	ST_ST_STORE_LAST,
	/* the audit trail (db_audit.c, sql/006_audit.sql) */
	ST_AU_RECORD,
	ST_AU_LIST,
	ST_AU_AS_OWNER,
	ST_AU_PRUNE,
	/* key rotation (db_rewrap.c, mailsrv-tool rewrap) */
	ST_RW_MS_PAGE,
	ST_RW_MS_UPDATE,
	ST_RW_STATE_PAGE,
	ST_RW_STATE_UPDATE,
	ST__COUNT
};

/* 1 for a single statement that only reads. When the connection is lost
 * under it (pg_terminate_backend, a failover, a server restart) while no
 * transaction is open and nothing is pinned (db_pin), db_exec runs it once
 * more on a new connection instead of failing the request: nothing it did
 * can have stayed behind. Writes never are: a lost one may have committed. */
int db_statement_reads_only(int stmt);

/* How long the client waits for stmt's answer (ms): its server-side
 * timeout, DB_STATEMENT_TIMEOUT_MS unless the statement raises it, plus
 * DB_ANSWER_MARGIN_MS. */
int db_statement_wait_ms(int stmt);

#endif
