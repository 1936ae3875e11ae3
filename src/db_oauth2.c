/*
 * db_oauth2.c - the OAuth 2.0 states, the OAuth columns of mail_server and
 * the per-server refresh lock (see db_oauth2.h). Every PGresult is cleared
 * in the function that received it; values are copied into the arena first.
 * Secrets come back from PostgreSQL hex-encoded (the connection reads text
 * results) and are decrypted here; plaintexts live only in the arena.
 */
#include "db_oauth2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_row.h"
#include "db_statements.h"
#include "log.h"
#include "mailsrv_limits.h"
#include "validate.h"

/* Column positions of ST_OA_GET (db_statements.c). */
enum {
	G_ID,
	G_IS_OAUTH2,
	G_CLIENT_ID,
	G_AUTHORIZATION_URL,
	G_TOKEN_URL,
	G_SCOPE,
	G_SECRET_KEY,
	G_ACCESS_TOKEN,
	G_REFRESH_TOKEN,
	G_EXPIRES_IN,
	G_STATUS,
	G_LAST_ATTEMPT,
	G_ATTEMPT_MS,
	G_LAST_ERROR_CODE,
	G_LAST_ERROR_DESCRIPTION,
	G_GRANTED_SCOPE
};

err_t db_oauth2_get(struct db *db, struct arena *a, const struct secret_keyring *kr, long long id,
                    struct oauth2_server *out, int *found)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	const char *p[] = {idbuf};
	struct pg_result *r;
	memset(out, 0, sizeof(*out));
	*found = 0;
	err_t e = db_exec(db, ST_OA_GET, 1, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	if (db_ntuples(r) == 0) {
		db_clear(r);
		return E_OK;
	}
	*found = 1;
	int nomem = 0;
	out->id = id;
	out->is_oauth2 = db_value(r, 0, G_IS_OAUTH2)[0] == 't';
	out->client_id = db_col_str(a, r, 0, G_CLIENT_ID, &nomem);
	out->authorization_url = db_col_str(a, r, 0, G_AUTHORIZATION_URL, &nomem);
	out->token_url = db_col_str(a, r, 0, G_TOKEN_URL, &nomem);
	out->scope = db_col_str(a, r, 0, G_SCOPE, &nomem);
	out->has_expiry = !db_isnull(r, 0, G_EXPIRES_IN);
	out->expires_in_s = out->has_expiry ? db_col_int(r, 0, G_EXPIRES_IN) : 0;
	out->status = db_col_str(a, r, 0, G_STATUS, &nomem);
	out->last_attempt = db_col_str(a, r, 0, G_LAST_ATTEMPT, &nomem);
	out->attempt_ms = db_isnull(r, 0, G_ATTEMPT_MS) ? -1 : db_col_int(r, 0, G_ATTEMPT_MS);
	out->last_error_code = db_col_str(a, r, 0, G_LAST_ERROR_CODE, &nomem);
	out->last_error_description = db_col_str(a, r, 0, G_LAST_ERROR_DESCRIPTION, &nomem);
	out->granted_scope = db_col_str(a, r, 0, G_GRANTED_SCOPE, &nomem);

	static const struct {
		enum ms_secret secret;
		int col;
		const char *what;
	} secrets[] = {
	    {MS_SECRET_secret_key, G_SECRET_KEY, "secret_key"},
	    {MS_SECRET_access_token, G_ACCESS_TOKEN, "access_token"},
	    {MS_SECRET_refresh_token, G_REFRESH_TOKEN, "refresh_token"},
	};
	const char **plain[] = {&out->client_secret, &out->access_token, &out->refresh_token};
	size_t *lens[] = {NULL, &out->access_token_len, NULL};
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]) && !nomem && e == E_OK; i++) {
		char *aad = db_ms_secret_aad(a, id, secrets[i].secret);
		if (aad == NULL) {
			nomem = 1;
		} else if (db_open_secret(a, kr, aad, r, 0, secrets[i].col, plain[i], lens[i]) !=
		               0 &&
		           out->unreadable == NULL) {
			out->unreadable = secrets[i].what;
		}
	}
	db_clear(r);
	if (nomem)
		return E_INTERNAL;
	return e;
}

/* ---- the refresh lock ---- */

err_t db_oauth2_lock(struct db *db, long long id)
{
	char idbuf[24], wait[16];
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	snprintf(wait, sizeof(wait), "%d", OAUTH2_LOCK_WAIT_MS);
	const char *pt[] = {wait};
	const char *pl[] = {idbuf};
	/* The timeouts are raised with SET LOCAL semantics (set_config(...,
	 * true)) for this short transaction only, so that waiting for another
	 * request's provider call is not cut at 2 s; the session lock outlives
	 * the transaction, and no transaction is open while it is held. */
	int locked = 0;
	err_t e = db_begin(db);
	if (e == E_OK)
		e = db_exec(db, ST_OA_LOCK_TIMEOUTS, 1, pt, NULL, NULL, NULL);
	if (e == E_OK && (e = db_exec(db, ST_OA_LOCK, 1, pl, NULL, NULL, NULL)) == E_OK) {
		locked = 1;
		db_pin(db);
	}
	if (e == E_OK)
		e = db_commit(db);
	if (e != E_OK) {
		char state[6];
		snprintf(state, sizeof(state), "%s", db_sqlstate(db));
		db_rollback(db);
		/* A session lock survives the rollback of the transaction that
		 * took it (PostgreSQL 15, section 13.3.5): give it back. */
		if (locked)
			db_oauth2_unlock(db, id);
		log_warning("could not take the refresh lock of mail server %lld (SQLSTATE %s)", id,
		            state);
		return E_DB_UNAVAILABLE;
	}
	return E_OK;
}

void db_oauth2_unlock(struct db *db, long long id)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	const char *p[] = {idbuf};
	struct pg_result *r;
	/* Given back below, or gone with a lost connection: unpinned either way
	 * once this returns. */
	err_t e = db_exec(db, ST_OA_UNLOCK, 1, p, NULL, NULL, &r);
	db_unpin(db);
	if (e == E_OK) {
		int released = db_ntuples(r) == 1 && db_value(r, 0, 0)[0] == 't';
		db_clear(r);
		if (released)
			return;
		log_error("the refresh lock of mail server %lld was not held at release", id);
		return;
	}
	/* A broken connection took the lock with it; on a live one, never
	 * leave a session lock behind. */
	if (db_exec(db, ST_OA_UNLOCK_ALL, 0, NULL, NULL, NULL, NULL) != E_OK)
		log_warning("could not release the refresh lock of mail server %lld; it goes with"
		            " the connection",
		            id);
}

/* ---- stored outcomes ---- */

static err_t affected_one(struct db *db, int stmt, int n, const char *const *p, const int *lengths,
                          const int *fmt, int *stored)
{
	struct pg_result *r;
	err_t e = db_exec(db, stmt, n, p, lengths, fmt, &r);
	if (e != E_OK)
		return e;
	*stored = db_ntuples(r) > 0;
	db_clear(r);
	return E_OK;
}

err_t db_oauth2_store_tokens(struct db *db, struct arena *a, const struct secret_keyring *kr,
                             const struct oauth2_server *s, const char *access_token,
                             size_t access_len, long long expires_in, const char *refresh_token,
                             size_t refresh_len, const char *granted_scope, int *stored)
{
	char idbuf[24], expbuf[24];
	const char *p[7] = {0};
	int lengths[7] = {0}, fmt[7] = {0};
	*stored = 0;
	snprintf(idbuf, sizeof(idbuf), "%lld", s->id);
	snprintf(expbuf, sizeof(expbuf), "%lld", expires_in);
	p[0] = idbuf;
	p[1] = s->token_url;
	p[2] = s->client_id;
	if (db_seal(a, kr, db_ms_secret_aad(a, s->id, MS_SECRET_access_token), access_token,
	            access_len, &p[3], &lengths[3]) != E_OK)
		return E_INTERNAL;
	fmt[3] = 1;
	p[4] = expires_in >= 0 ? expbuf : NULL;
	if (refresh_token != NULL &&
	    db_seal(a, kr, db_ms_secret_aad(a, s->id, MS_SECRET_refresh_token), refresh_token,
	            refresh_len, &p[5], &lengths[5]) != E_OK)
		return E_INTERNAL;
	fmt[5] = 1;
	p[6] = granted_scope;
	return affected_one(db, ST_OA_STORE_TOKENS, 7, p, lengths, fmt, stored);
}

err_t db_oauth2_store_failure(struct db *db, const struct oauth2_server *s, const char *status,
                              const char *code, const char *description, int *stored)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", s->id);
	const char *p[] = {idbuf, s->token_url, s->client_id, status, code, description};
	*stored = 0;
	return affected_one(db, ST_OA_STORE_FAILURE, 6, p, NULL, NULL, stored);
}

/* ---- states ---- */

err_t db_oauth2_state_insert(struct db *db, struct arena *a, const struct secret_keyring *kr,
                             const unsigned char hash[32], long long server_id, const char *actor,
                             const char *code_verifier, const unsigned char browser_hash[32],
                             const struct oauth2_flow *flow)
{
	char idbuf[24], ttl[16];
	snprintf(idbuf, sizeof(idbuf), "%lld", server_id);
	snprintf(ttl, sizeof(ttl), "%d", OAUTH2_STATE_TTL_S);
	const char *blob;
	int blen;
	if (db_seal(a, kr, db_oauth2_state_aad(a, hash), code_verifier, strlen(code_verifier),
	            &blob, &blen) != E_OK)
		return E_INTERNAL;
	const char *scope = flow->scope != NULL && flow->scope[0] != '\0' ? flow->scope : NULL;
	const char *p[] = {(const char *)hash,         idbuf,           actor,           blob, ttl,
	                   (const char *)browser_hash, flow->token_url, flow->client_id, scope};
	int lengths[] = {32, 0, 0, blen, 0, 32, 0, 0, 0};
	int fmt[] = {1, 0, 0, 1, 0, 1, 0, 0, 0};
	err_t e = db_exec(db, ST_OA_STATE_INSERT, 9, p, lengths, fmt, NULL);
	/* The server was deleted in between. */
	if (e == E_INTERNAL && db_cause(db) == DB_CAUSE_FOREIGN_KEY)
		return E_NOT_FOUND;
	return e;
}

err_t db_oauth2_state_consume(struct db *db, struct arena *a, const struct secret_keyring *kr,
                              const unsigned char hash[32], const unsigned char *browser_hash,
                              enum oauth2_state_result *res, long long *server_id,
                              const char **actor, const char **code_verifier,
                              struct oauth2_flow *flow)
{
	const char *p[] = {(const char *)hash, (const char *)browser_hash};
	int lengths[] = {32, 32};
	int fmt[] = {1, 1};
	struct pg_result *r;
	*res = OAUTH2_STATE_UNKNOWN;
	*server_id = 0;
	*actor = NULL;
	*code_verifier = NULL;
	memset(flow, 0, sizeof(*flow));
	err_t e = db_exec(db, ST_OA_STATE_CONSUME, 2, p, lengths, fmt, &r);
	if (e != E_OK)
		return e;
	if (db_ntuples(r) == 1) {
		int nomem = 0;
		*server_id = db_col_int(r, 0, 0);
		*actor = db_col_str(a, r, 0, 1, &nomem);
		flow->token_url = db_col_str(a, r, 0, 3, &nomem);
		flow->client_id = db_col_str(a, r, 0, 4, &nomem);
		flow->scope = db_col_str(a, r, 0, 5, &nomem);
		char *aad = db_oauth2_state_aad(a, hash);
		if (nomem || aad == NULL) {
			e = E_INTERNAL;
		} else if (db_open_secret(a, kr, aad, r, 0, 2, code_verifier, NULL) != 0 ||
		           *code_verifier == NULL) {
			log_error(
			    "could not decrypt the PKCE verifier of an OAuth 2.0 state of mail"
			    " server %lld",
			    *server_id);
			e = E_INTERNAL;
		} else {
			*res = OAUTH2_STATE_VALID;
		}
		db_clear(r);
		return e;
	}
	db_clear(r);
	/* Not consumed: issued but spent, issued to another browser, or never
	 * issued. */
	e = db_exec(db, ST_OA_STATE_PEEK, 1, p, lengths, fmt, &r);
	if (e != E_OK)
		return e;
	if (db_ntuples(r) == 1) {
		*res = db_value(r, 0, 1)[0] == 't' ? OAUTH2_STATE_FOREIGN : OAUTH2_STATE_SPENT;
		*server_id = db_col_int(r, 0, 0);
	}
	db_clear(r);
	return E_OK;
}

err_t db_oauth2_state_purge(struct db *db)
{
	char keep[16];
	snprintf(keep, sizeof(keep), "%d", OAUTH2_STATE_KEEP_S);
	const char *p[] = {keep};
	return db_exec(db, ST_OA_STATE_PURGE, 1, p, NULL, NULL, NULL);
}
