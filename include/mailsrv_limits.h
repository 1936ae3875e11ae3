/*
 * mailsrv_limits.h - every size, count and time limit of the service, in one
 * place. Each has a reason; each is crossed by a test. deploy/nginx.conf.template
 * repeats MAX_BODY_BYTES as client_max_body_size: change both together.
 */
#ifndef MAILSRV_LIMITS_H
#define MAILSRV_LIMITS_H

/* A limit as a string literal, for messages that state it:
 * "at most " LIMIT_STR(KEY_ID_MAX) " characters". Only for limits written as
 * a plain number; the others go through a printf format. */
#define LIMIT_STR(x)  LIMIT_STR_(x)
#define LIMIT_STR_(x) #x

/* Request body cap (docs/api.md, "Limits"): 413 above it. */
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
#define JSON_MAX_ITEMS   1000
/* A response document: the longest listing (LIST_LIMIT_MAX servers with
 * every field at its longest, quotes escaped) stays well below it. */
#define JSON_OUT_MAX_BYTES (16 * 1024 * 1024)
/* Field lengths of the API (docs/api.md, "A mail server"). Counted in Unicode characters
 * unless said otherwise. */
#define NAME_MAX_CHARS        100
#define SENDER_NAME_MAX_CHARS 100
#define HOSTNAME_MAX_BYTES    253
#define EMAIL_MAX_BYTES       254
/* Fields the API leaves open: generous but bounded. */
#define USERNAME_MAX_CHARS  320
#define SECRET_MAX_BYTES    8192 /* OAuth tokens from Azure can reach ~3 KB */
#define URL_MAX_BYTES       2048
#define CLIENT_ID_MAX_CHARS 255
#define SCOPE_MAX_CHARS     1024
/* Listing (docs/api.md, "Listing and search"). */
#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX     200
#define LIST_OFFSET_MAX    1000000000L
#define LIST_Q_MAX_CHARS   200
/* Batch delete: one transaction, bounded so it stays short. */
#define BATCH_DELETE_MAX_IDS 500
/* Audit events (docs/api.md, "Audit events"): a page as long as the
 * listing's; an actor filter as long as the column may hold (a token's sub
 * is not ours to bound tighter); a cursor is base64url of a short text. */
#define AUDIT_LIMIT_DEFAULT    50
#define AUDIT_LIMIT_MAX        200
#define AUDIT_ACTOR_MAX_CHARS  256
#define AUDIT_CURSOR_MAX_BYTES 64
/* The longest RFC 3339 time accepted as a filter: 2026-12-02T09:14:03,
 * nine fraction digits and an offset. */
#define AUDIT_TIME_MAX_BYTES 35
/* The details of one event (field names, a code): a few hundred bytes. */
#define AUDIT_DETAILS_MAX_BYTES 2048
/* Retention: at most this many events deleted per transaction, so that no
 * delete holds its locks or its WAL long. */
#define AUDIT_PRUNE_BATCH 1000
/* Key rotation (mailsrv-tool rewrap): rows read per page, each then
 * rewritten in its own transaction; and how many passes over the tables
 * redo the rows that changed under a pass before the tool gives up and says
 * to run it again (every pass makes progress unless the rows keep
 * changing). */
#define REWRAP_BATCH_DEFAULT 100
#define REWRAP_BATCH_MAX     1000
#define REWRAP_MAX_PASSES    10
/* Distinct key ids counted in the report: the keyring's (KEYRING_MAX_KEYS)
 * and as many unknown ones; more are counted together as "other". */
#define REWRAP_MAX_KEY_IDS           (2 * KEYRING_MAX_KEYS)
#define AUDIT_RETENTION_DAYS_DEFAULT 365
#define AUDIT_RETENTION_DAYS_MAX     36500
/* Query string and header sizes we look at. nginx caps headers at 8 KiB. */
#define QUERY_STRING_MAX_BYTES 4096
/* Distinct parameters of one query string: the listing takes four and an
 * OAuth provider's callback a handful more (session_state, iss, scope...);
 * beyond this the query string is refused as malformed. */
#define QUERY_MAX_PARAMS       16
#define BEARER_TOKEN_MAX_BYTES 8192
#define REQUEST_ID_MAX_BYTES   64
/* REMOTE_ADDR: the longest IPv6 text form is 45 bytes. */
#define CLIENT_ADDRESS_MAX_BYTES 45
/* Clock skew allowed between the token issuer and us when checking a bearer
 * token's exp and nbf (seconds): hosts kept by NTP stay well within it, and
 * a token outlives its expiry by at most this long. */
#define JWT_LEEWAY_S 30
/* The longest bearer token lifetime accepted (exp - iat), MAILSRV_JWT_MAX_TTL:
 * a day by default, so a leaked token is a standing credential for a day at
 * most; settable from a minute to a year (a year is the token tool's own
 * cap). */
#define JWT_MAX_TTL_DEFAULT_S 86400
#define JWT_MAX_TTL_MIN_S     60
#define JWT_MAX_TTL_MAX_S     (366 * 86400)
/* Bearer tokens a worker thread remembers as verified (jwt.h): a few
 * administrators at once per thread. A longer token or sub is verified on
 * every request instead: the cache lives in each thread's worker (about
 * 5 KiB each), so it stays small. */
#define JWT_CACHE_ENTRIES         4
#define JWT_CACHE_TOKEN_MAX_BYTES 1024
#define JWT_CACHE_SUB_MAX_BYTES   255
/* Response headers one answer carries (X-Request-Id, Cache-Control, ETag,
 * Location, Allow, WWW-Authenticate, Retry-After, Referrer-Policy,
 * Set-Cookie never all at once): a fixed array in the response, a header
 * beyond it is dropped and logged. */
#define HTTP_MAX_HEADERS 8
/* The Cookie header the service looks into (only the OAuth callback does):
 * nginx bounds a header line at 16 KiB (large_client_header_buffers); a
 * longer one is treated as no cookie. */
#define COOKIE_HEADER_MAX_BYTES 16384
/* Field errors one 422 lists: a body has at most about 25 fields, so every
 * failing field is reported; a hostile body with hundreds of unknown
 * members gets the first ones. */
#define MAX_FIELD_ERRORS 32
/* Per-request arena growth: chunks of this size come from malloc; the first
 * is kept across requests, so an ordinary request never calls malloc. */
#define ARENA_CHUNK_BYTES (64 * 1024)
/* The JSON writer: our documents are at most three levels deep; yajl_gen's
 * own limit was 128. Its buffer starts at the first size and one grown
 * beyond the keep size (a long listing) is given back at the next reset, so
 * an idle thread holds little. */
#define JSON_OUT_MAX_DEPTH   64
#define JSON_OUT_FIRST_BYTES 4096
#define JSON_OUT_KEEP_BYTES  (64 * 1024)
/* PostgreSQL: how long a request may wait on the database (seconds/ms). */
#define DB_CONNECT_TIMEOUT_S     2
#define DB_STATEMENT_TIMEOUT_MS  5000
#define DB_LOCK_TIMEOUT_MS       2000
#define DB_IDLE_IN_TX_TIMEOUT_MS 10000
#define DB_TCP_USER_TIMEOUT_MS   10000
/* How much longer than the statement's own timeout a thread waits for an
 * answer of the database. The server ends a statement at statement_timeout
 * and says so at once, so an answer this much later is not coming: the
 * connection is given up and the request answers 503. This is what bounds a
 * silent network path (a stalled proxy or middlebox that keeps the TCP
 * connection up, acknowledging everything): keepalives and tcp_user_timeout
 * never fire there, and the statement never reached the server. */
#define DB_ANSWER_MARGIN_MS 1000
/* TCP keepalives on the database connection: a peer gone without a word (a
 * network cut, a failed-over host) is noticed within idle + interval *
 * count seconds instead of the kernel's default of two hours. */
#define DB_KEEPALIVES_IDLE_S     30
#define DB_KEEPALIVES_INTERVAL_S 10
#define DB_KEEPALIVES_COUNT      3
/* /readyz and /healthz: how long the probe waits for the database's answer
 * (a load balancer probes every few seconds with a timeout of its own, so
 * a slow answer is as bad as none); the connect itself is bounded by
 * DB_CONNECT_TIMEOUT_S. */
#define READY_DB_WAIT_MS 1500
/* The actor in a request's log line: the token's sub, at most this many
 * bytes of printable ASCII (anything else becomes '?'). */
#define LOG_ACTOR_MAX_BYTES 64
/* The method in a request's log line (nginx accepts longer ones). */
#define LOG_METHOD_MAX_BYTES 16
/* Retry-After (seconds) on 503 database-unavailable. */
#define RETRY_AFTER_DB_S 1
/* Worker processes: the listen backlog of the FastCGI socket (connections
 * nginx may queue while every thread is busy); each thread's stack (the
 * JSON parser is iterative, JSON_MAX_DEPTH bounds the rest, so a small stack
 * keeps the resident size low); how often a worker process returns free
 * heap to the kernel (malloc_trim walks every malloc arena: cheap at this
 * pace). */
#define LISTEN_BACKLOG         256
#define THREAD_STACK_BYTES     (512 * 1024)
#define MALLOC_TRIM_INTERVAL_S 5
/* Key files (JWT verification key, stored-secret keyring) are a few lines;
 * anything bigger is not a key file. The keyring keeps a few old keys for
 * rotation; a bounded table keeps it one allocation, wiped in one go. */
#define KEY_FILE_MAX_BYTES (64 * 1024)
#define KEYRING_MAX_KEYS   64
/* A key id in the keyring file is stored with every secret it encrypted:
 * short, and a plain number so messages can state it (LIMIT_STR). */
#define KEY_ID_MAX 16
/* Graceful shutdown: in-flight requests get this long after SIGTERM. */
#define SHUTDOWN_DEADLINE_S 10
/* A crashed worker process is restarted after this delay (ms), doubling up
 * to the max when it keeps crashing right after start. */
#define RESTART_DELAY_MIN_MS 50
#define RESTART_DELAY_MAX_MS 2000

/* Outbound HTTPS calls (token endpoints; docs/api.md, "Outbound
 * calls"). Connect about 10 s and total about 30 s at most, both below
 * nginx's fastcgi_read_timeout (35 s) so the service answers first. */
#define OUTBOUND_CONNECT_TIMEOUT_MS 10000
#define OUTBOUND_TOTAL_TIMEOUT_MS   30000
/* A token response holds two tokens of at most SECRET_MAX_BYTES and perhaps
 * an id_token: 64 KiB is generous. Enforced in the write callback (a chunked
 * body ignores CURLOPT_MAXFILESIZE: docs/design.md, "libcurl 7.88.1"). */
#define OUTBOUND_MAX_RESPONSE_BYTES (64 * 1024)
/* Entries of MAILSRV_OUTBOUND_ALLOW: a handful of test or relay addresses. */
#define OUTBOUND_ALLOW_MAX 32
/* OAuth 2.0. A state is valid ten minutes (docs/api.md, "OAuth 2.0");
 * a spent or expired one is kept a day longer so that the callback can tell
 * "expired or used" (303 invalid_state) from "unknown" (400). */
#define OAUTH2_STATE_TTL_S  600
#define OAUTH2_STATE_KEEP_S 86400
/* Random bytes of a state and of a PKCE verifier: 256 bits, 43 base64url
 * characters (RFC 7636 section 4.1 asks for 43-128). */
#define OAUTH2_STATE_BYTES    32
#define OAUTH2_VERIFIER_BYTES 32
/* An access token that expires within this margin is refreshed before use,
 * so it cannot expire during the SMTP session that uses it. */
#define OAUTH2_REFRESH_MARGIN_S 300
/* The random value of the cookie that binds a flow to the browser that
 * started it (256 bits, 43 base64url characters), and how many bytes of the
 * state's SHA-256 name that cookie (96 bits, 16 base64url characters: one
 * cookie per flow, so that two flows in one browser never collide). */
#define OAUTH2_BROWSER_BINDING_BYTES  32
#define OAUTH2_COOKIE_NAME_HASH_BYTES 12
/* The scope a token answer grants, as stored and sent back on refresh:
 * longer than any real provider's list of scopes; a longer or malformed
 * one is not kept (the refresh then sends no scope). */
#define OAUTH2_GRANTED_SCOPE_MAX_BYTES 4096
/* How long a request waits for another request's refresh of the same server
 * (the per-server lock): above one whole outbound call, below nginx's 35 s. */
#define OAUTH2_LOCK_WAIT_MS 32000
/* What is kept of a provider's answer (RFC 6749 section 5.2 error codes are
 * short ASCII words; descriptions are shown to administrators). */
#define OAUTH2_ERROR_CODE_MAX_BYTES        64
#define OAUTH2_ERROR_DESCRIPTION_MAX_CHARS 300
/* expires_in beyond a year is nonsense; it is capped, not refused. */
#define OAUTH2_EXPIRES_IN_MAX_S (366 * 86400)
/* The longest authorization code passed on to the token endpoint: Azure's
 * are about 1-2 KB; the whole query string is capped at
 * QUERY_STRING_MAX_BYTES anyway. */
#define OAUTH2_CODE_MAX_BYTES 4096
/* The administrator (JWT sub) recorded with a state. */
#define OAUTH2_ACTOR_MAX_BYTES 256

/* SMTP connection tests. MAILSRV_TEST_TIMEOUT and _CONNECT_TIMEOUT are at
 * most this: the whole test must end before nginx gives up on the worker
 * (fastcgi_read_timeout 35 s), so that the client gets our answer. */
#define SMTP_TEST_TIMEOUT_MAX_S 30
/* A test holds its worker thread for up to MAILSRV_TEST_TIMEOUT. At most
 * threads / SMTP_TEST_THREAD_SHARE of a process's threads (at least one)
 * run tests at once; more get 503 with Retry-After, so slow tests cannot
 * take every thread from the rest of the API. */
#define SMTP_TEST_THREAD_SHARE 2
#define SMTP_TEST_BUSY_RETRY_S 5
/* A retry after the server refused an OAuth token that was then refreshed
 * is made only when this much of the test's time is left. */
#define SMTP_TEST_RETRY_MIN_MS 2000

/* Metrics (src/metrics.c): a fixed table in shared memory. Routes: the
 * API's (router_routes) and the paths outside /api/v1 with room to spare;
 * metrics_init refuses to start when they do not fit. Processes: the most
 * MAILSRV_PROCESSES allows (src/config.c), one busy-thread gauge each. The
 * text of a scrape: every series of every route and status with room to
 * spare (about 120 bytes a line). */
#define METRICS_MAX_ROUTES     24
#define METRICS_MAX_PROCESSES  64
#define METRICS_TEXT_MAX_BYTES (256 * 1024)

#endif
