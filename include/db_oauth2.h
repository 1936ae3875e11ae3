/*
 * db_oauth2.h - data access for the OAuth 2.0 flow (docs/oauth2.md): the states
 * of started authorizations (table oauth2_state, sql/002_oauth2.sql), the
 * OAuth columns of mail_server with their secrets decrypted, and the
 * per-server refresh lock. Names follow db_<thing>_<verb>.
 *
 * Secrets are encrypted here with the same binding as db_mail_server.c,
 * from the one builder of the associated data (db_row.h): a server's secret
 * to its row and column, a PKCE verifier to its state row. A state itself
 * is never stored, only its SHA-256.
 */
#ifndef MAILSRV_DB_OAUTH2_H
#define MAILSRV_DB_OAUTH2_H

#include <stddef.h>

#include "err.h"

struct arena;
struct db;
struct secret_keyring;

/* A server's OAuth side, secrets decrypted (strings in the arena; NULL when
 * not set). Times are the database's, so every host agrees on them. */
struct oauth2_server {
	long long id;
	int is_oauth2;
	const char *client_id;
	const char *authorization_url;
	const char *token_url;
	const char *scope;
	const char *client_secret;
	const char *access_token;
	size_t access_token_len;
	const char *refresh_token;
	int has_expiry;
	long long expires_in_s;   /* access token: seconds left (may be < 0) */
	const char *status;       /* oauth2_status */
	const char *last_attempt; /* opaque mark of the last token request, NULL: none */
	long long attempt_ms;     /* when it finished, ms since the epoch; -1: none */
	const char *last_error_code;
	const char *last_error_description;
	const char *granted_scope; /* what the stored tokens were granted, NULL: unknown */
	/* The first stored secret that does not decrypt ("secret_key",
	 * "access_token" or "refresh_token"; its value is then NULL), or NULL.
	 * Nothing is logged here: the caller that needs it says so, once. */
	const char *unreadable;
};

/* *found = 0 when there is no such server. A stored secret that does not
 * decrypt (changed or moved in the database, or its key left the keyring)
 * is named in out->unreadable; the call still succeeds. */
err_t db_oauth2_get(struct db *db, struct arena *a, const struct secret_keyring *kr, long long id,
                    struct oauth2_server *out, int *found);

/* The per-server refresh lock: a session-level advisory lock, waited for
 * at most OAUTH2_LOCK_WAIT_MS (the session's 5 s statement and 2 s lock
 * timeouts are raised for that one statement only). No transaction stays
 * open while it is held. E_DB_UNAVAILABLE when the wait times out. */
err_t db_oauth2_lock(struct db *db, long long id);
/* Always succeeds from the caller's view: a lock that cannot be released
 * normally is released with every other session lock, or with the
 * connection. */
void db_oauth2_unlock(struct db *db, long long id);

/* Store a token answer, when the server still has the token URL and client
 * id it was requested with (*stored = 0 otherwise): the access token and its
 * expiry (expires_in < 0: unknown), the refresh token when refresh_token is
 * not NULL (else the stored one is kept), the granted scope (NULL:
 * unknown), status connected, last refresh and attempt now, no last
 * error. */
err_t db_oauth2_store_tokens(struct db *db, struct arena *a, const struct secret_keyring *kr,
                             const struct oauth2_server *s, const char *access_token,
                             size_t access_len, long long expires_in, const char *refresh_token,
                             size_t refresh_len, const char *granted_scope, int *stored);
/* Store a failed attempt: status (NULL keeps it), the last error, and the
 * attempt's time, under the same condition. */
err_t db_oauth2_store_failure(struct db *db, const struct oauth2_server *s, const char *status,
                              const char *code, const char *description, int *stored);

/* ---- states ---- */

/* The server's settings when a flow started, kept with its state: the code
 * is exchanged at this token URL for this client, and scope (NULL: none)
 * is what the authorization asked for. */
struct oauth2_flow {
	const char *token_url;
	const char *client_id;
	const char *scope;
};

/* A new state (its SHA-256), bound to the server, the administrator, the
 * browser (browser_hash: the SHA-256 of its cookie's value) and the flow's
 * settings. */
err_t db_oauth2_state_insert(struct db *db, struct arena *a, const struct secret_keyring *kr,
                             const unsigned char hash[32], long long server_id, const char *actor,
                             const char *code_verifier, const unsigned char browser_hash[32],
                             const struct oauth2_flow *flow);

enum oauth2_state_result {
	OAUTH2_STATE_VALID,   /* consumed now: it was unused and unexpired */
	OAUTH2_STATE_SPENT,   /* issued, but used already or expired */
	OAUTH2_STATE_FOREIGN, /* issued and live, but to another browser: not consumed */
	OAUTH2_STATE_UNKNOWN, /* never issued (or purged) */
};

/* Consume the state with this hash in one atomic UPDATE, when the browser's
 * cookie hashes to browser_hash (NULL: the request has no cookie, so it
 * never does). A second consumer of the same state gets SPENT. server_id
 * is set for every result but UNKNOWN; actor, code_verifier and *flow for
 * VALID. */
err_t db_oauth2_state_consume(struct db *db, struct arena *a, const struct secret_keyring *kr,
                              const unsigned char hash[32], const unsigned char *browser_hash,
                              enum oauth2_state_result *res, long long *server_id,
                              const char **actor, const char **code_verifier,
                              struct oauth2_flow *flow);

/* Delete states expired more than OAUTH2_STATE_KEEP_S ago. */
err_t db_oauth2_state_purge(struct db *db);

#endif
