/*
 * db_rewrap.h - key rotation's data side (mailsrv-tool rewrap, deploy/README.md
 * "Rotating the secrets key"): every stored secret re-encrypted under the
 * keyring's first key while the service runs, and a count of the stored
 * secrets by the key that encrypted them.
 *
 * The stored secrets: mail_server's password, secret_key, access_token and
 * refresh_token (MS_SECRETS) and oauth2_state's code_verifier. Pages are
 * read by key, each row then rewritten in its own statement (its own short
 * transaction) only while it still holds the ciphertexts that were read: a
 * row the service changed meanwhile is left alone and counted in `again`,
 * for the next pass. A ciphertext is bound to its row and column (its
 * associated data), so it is decrypted and encrypted for the very place it
 * stays in.
 */
#ifndef MAILSRV_DB_REWRAP_H
#define MAILSRV_DB_REWRAP_H

#include <stddef.h>

#include "err.h"
#include "mailsrv_limits.h"

struct db;
struct secret_keyring;

struct rewrap_key_count {
	char id[KEY_ID_MAX + 1]; /* "" for the ids beyond REWRAP_MAX_KEY_IDS */
	long count;
};

struct rewrap_stats {
	long rewrote;    /* secrets re-encrypted under the first key */
	long again;      /* rows changed under the pass: done again by the next */
	long unreadable; /* secrets the keyring cannot decrypt (unknown key, bad tag or format) */
	/* the secrets as they were when read, by the key id in their header */
	size_t nkeys;
	struct rewrap_key_count keys[REWRAP_MAX_KEY_IDS + 1];
};

/* One pass over every stored secret. rewrite 0: count only (nothing
 * written). stats are added to (zero them first). */
err_t db_rewrap_pass(struct db *db, const struct secret_keyring *kr, int batch, int rewrite,
                     struct rewrap_stats *st);

#endif
