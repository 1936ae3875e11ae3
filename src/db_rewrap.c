/*
 * db_rewrap.c - key rotation over the stored secrets (see db_rewrap.h).
 */
#include "db_rewrap.h"

#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_mail_server.h"
#include "db_row.h"
#include "db_statements.h"
#include "validate.h"

/* ST_RW_MS_PAGE and ST_RW_MS_UPDATE name the columns in MS_SECRETS' order. */
_Static_assert(MS_SECRET_password == 0 && MS_SECRET_secret_key == 1 &&
                   MS_SECRET_access_token == 2 && MS_SECRET_refresh_token == 3 &&
                   MS_SECRET__COUNT == 4,
               "the rewrap statements list the secrets in MS_SECRETS' order");

static void count_key(struct rewrap_stats *st, const char *id)
{
	for (size_t i = 0; i < st->nkeys; i++) {
		if (strcmp(st->keys[i].id, id) == 0) {
			st->keys[i].count++;
			return;
		}
	}
	if (st->nkeys < REWRAP_MAX_KEY_IDS) {
		snprintf(st->keys[st->nkeys].id, sizeof(st->keys[0].id), "%s", id);
		st->keys[st->nkeys++].count = 1;
		return;
	}
	/* the slot past the table: every further id, counted together */
	st->keys[REWRAP_MAX_KEY_IDS].id[0] = '\0';
	st->keys[REWRAP_MAX_KEY_IDS].count++;
}

/*
 * One stored secret: count it by its key id and decrypt it with aad; when
 * rewrite and it is not under the first key, encrypt it again for the same
 * place. *blob / *blen: the new ciphertext, or NULL when it stays.
 */
static err_t one_secret(struct arena *a, const struct secret_keyring *kr, const char *aad,
                        const char *hex, size_t hexlen, int rewrite, struct rewrap_stats *st,
                        const char **blob, int *blen)
{
	*blob = NULL;
	*blen = 0;
	size_t len = 0;
	unsigned char *ct = db_unhex(a, hex, hexlen, &len);
	char id[KEY_ID_MAX + 1];
	if (ct == NULL || secret_key_id(ct, len, id, sizeof(id)) != 0) {
		st->unreadable++;
		count_key(st, "");
		return E_OK;
	}
	count_key(st, id);
	if (aad == NULL)
		return E_INTERNAL;
	/* decrypted even when it stays: the count also proves that every
	 * stored secret opens with this keyring */
	char *plain;
	size_t plen;
	if (secret_decrypt(kr, a, aad, ct, len, &plain, &plen) != 0) {
		st->unreadable++;
		return E_OK;
	}
	if (!rewrite || strcmp(id, secret_keyring_key_id(kr, 0)) == 0) {
		crypto_wipe(plain, plen);
		return E_OK;
	}
	err_t e = db_seal(a, kr, aad, plain, plen, blob, blen);
	crypto_wipe(plain, plen);
	return e;
}

static err_t mail_servers(struct db *db, struct arena *a, const struct secret_keyring *kr,
                          int batch, int rewrite, struct rewrap_stats *st)
{
	char after[24] = "0", bbuf[16];
	snprintf(bbuf, sizeof(bbuf), "%d", batch);
	for (;;) {
		struct pg_result *r;
		const char *p[] = {after, bbuf};
		err_t e = db_exec(db, ST_RW_MS_PAGE, 2, p, NULL, NULL, &r);
		if (e != E_OK)
			return e;
		int n = db_ntuples(r);
		for (int row = 0; row < n && e == E_OK; row++) {
			arena_reset(a);
			long long id = db_col_int(r, row, 0);
			const char *val[9] = {db_value(r, row, 0)};
			int lens[9] = {0};
			int fmt[9] = {0};
			int changed = 0;
			for (int s = 0; s < MS_SECRET__COUNT && e == E_OK; s++) {
				int col = 1 + s;
				if (db_isnull(r, row, col)) {
					val[5 + s] = NULL;
					continue;
				}
				val[5 + s] = db_value(r, row, col);
				e = one_secret(a, kr, db_ms_secret_aad(a, id, (enum ms_secret)s),
				               db_value(r, row, col),
				               (size_t)db_length(r, row, col), rewrite, st,
				               &val[1 + s], &lens[1 + s]);
				fmt[1 + s] = 1;
				if (val[1 + s] != NULL)
					changed++;
			}
			if (e != E_OK || changed == 0)
				continue;
			struct pg_result *u;
			e = db_exec(db, ST_RW_MS_UPDATE, 9, val, lens, fmt, &u);
			if (e == E_DB_UNAVAILABLE && db_cause(db) != DB_CAUSE_UNAVAILABLE) {
				/* a lock or statement timeout: the row is busy;
				 * the next pass takes it again */
				st->again++;
				e = E_OK;
				continue;
			}
			if (e != E_OK)
				break;
			if (db_affected(u) == 1)
				st->rewrote += changed;
			else
				st->again++; /* changed (or deleted) meanwhile */
			db_clear(u);
		}
		if (n > 0)
			snprintf(after, sizeof(after), "%lld", db_col_int(r, n - 1, 0));
		db_clear(r);
		if (e != E_OK)
			return e;
		if (n < batch)
			return E_OK;
	}
}

static err_t oauth2_states(struct db *db, struct arena *a, const struct secret_keyring *kr,
                           int batch, int rewrite, struct rewrap_stats *st)
{
	char after[65] = "", bbuf[16];
	snprintf(bbuf, sizeof(bbuf), "%d", batch);
	for (;;) {
		struct pg_result *r;
		const char *p[] = {after, bbuf};
		err_t e = db_exec(db, ST_RW_STATE_PAGE, 2, p, NULL, NULL, &r);
		if (e != E_OK)
			return e;
		int n = db_ntuples(r);
		for (int row = 0; row < n && e == E_OK; row++) {
			arena_reset(a);
			const char *hash_hex = db_value(r, row, 0);
			size_t hlen = 0;
			unsigned char *hash =
			    db_unhex(a, hash_hex, (size_t)db_length(r, row, 0), &hlen);
			const char *aad =
			    hash != NULL && hlen == 32 ? db_oauth2_state_aad(a, hash) : NULL;
			const char *blob;
			int blen;
			e = one_secret(a, kr, aad, db_value(r, row, 1),
			               (size_t)db_length(r, row, 1), rewrite, st, &blob, &blen);
			if (e != E_OK || blob == NULL)
				continue;
			const char *val[] = {hash_hex, blob, db_value(r, row, 1)};
			int lens[] = {0, blen, 0};
			int fmt[] = {0, 1, 0};
			struct pg_result *u;
			e = db_exec(db, ST_RW_STATE_UPDATE, 3, val, lens, fmt, &u);
			if (e == E_DB_UNAVAILABLE && db_cause(db) != DB_CAUSE_UNAVAILABLE) {
				st->again++;
				e = E_OK;
				continue;
			}
			if (e != E_OK)
				break;
			if (db_affected(u) == 1)
				st->rewrote++;
			else
				st->again++; /* used, cleared or purged meanwhile */
			db_clear(u);
		}
		if (n > 0)
			snprintf(after, sizeof(after), "%s", db_value(r, n - 1, 0));
		db_clear(r);
		if (e != E_OK)
			return e;
		if (n < batch)
			return E_OK;
	}
}

err_t db_rewrap_pass(struct db *db, const struct secret_keyring *kr, int batch, int rewrite,
                     struct rewrap_stats *st)
{
	if (db == NULL || kr == NULL || st == NULL || batch < 1)
		return E_INTERNAL;
	struct arena *a = arena_new(MAX_ARENA_BYTES);
	if (a == NULL)
		return E_INTERNAL;
	err_t e = mail_servers(db, a, kr, batch, rewrite, st);
	if (e == E_OK)
		e = oauth2_states(db, a, kr, batch, rewrite, st);
	arena_free(a);
	return e;
}
