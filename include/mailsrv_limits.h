/*
 * mailsrv_limits.h - every size, count and time limit of the service, in one
 * place. Each has a reason; each is crossed by a test. deploy/nginx.conf.template
 * repeats MAX_BODY_BYTES as client_max_body_size: change both together.
 */
#ifndef MAILSRV_LIMITS_H
#define MAILSRV_LIMITS_H

/* Request body cap (contract section 4): 413 above it. */
#define MAX_BODY_BYTES (64 * 1024)
/* Per-request arena cap: a 64 KiB body parsed into a tree plus the response
 * fits easily; anything larger is a bug or an attack. */
#define MAX_ARENA_BYTES (4 * 1024 * 1024)
/* JSON nesting: our documents are at most object > array > scalar (depth 2).
 * A small fixed limit keeps parsing O(1) in stack. */
#define JSON_MAX_DEPTH 8
/* Members of one JSON object / items of one array: bounds the duplicate-key
 * check (quadratic in members) and batch-delete lists. */
#define JSON_MAX_MEMBERS 256
#define JSON_MAX_ITEMS 1000
/* Field lengths from the contract (section 1). Counted in Unicode characters
 * unless said otherwise. */
#define NAME_MAX_CHARS 100
#define SENDER_NAME_MAX_CHARS 100
#define HOSTNAME_MAX_BYTES 253
#define EMAIL_MAX_BYTES 254
/* Fields the contract leaves open: generous but bounded. */
#define USERNAME_MAX_CHARS 320
#define SECRET_MAX_BYTES 8192     /* OAuth tokens from Azure can reach ~3 KB */
#define URL_MAX_BYTES 2048
#define CLIENT_ID_MAX_CHARS 255
#define SCOPE_MAX_CHARS 1024
/* Listing (contract section 2). */
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 200
#define LIST_OFFSET_MAX 1000000000L
#define LIST_Q_MAX_CHARS 200
/* Batch delete (contract section 2). */
#define BATCH_DELETE_MAX_IDS 500
/* Query string and header sizes we look at. nginx caps headers at 8 KiB. */
#define QUERY_STRING_MAX_BYTES 4096
#define BEARER_TOKEN_MAX_BYTES 8192
#define REQUEST_ID_MAX_BYTES 64
/* PostgreSQL: how long a request may wait on the database (seconds/ms). */
#define DB_CONNECT_TIMEOUT_S 2
#define DB_STATEMENT_TIMEOUT_MS 5000
#define DB_LOCK_TIMEOUT_MS 2000
#define DB_IDLE_IN_TX_TIMEOUT_MS 10000
#define DB_TCP_USER_TIMEOUT_MS 10000
/* Retry-After (seconds) on 503 database-unavailable. */
#define RETRY_AFTER_DB_S 1
/* Graceful shutdown: in-flight requests get this long after SIGTERM. */
#define SHUTDOWN_DEADLINE_S 10
/* A crashed worker process is restarted after this delay (ms), doubling up
 * to the max when it keeps crashing right after start. */
#define RESTART_DELAY_MIN_MS 50
#define RESTART_DELAY_MAX_MS 2000

#endif
