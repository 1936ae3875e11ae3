/*
 * db_row.h - what the per-table data files (db_*.c) share and nothing else
 * includes: reading a result's columns into the request arena, and sealing
 * a secret bound to its place (its row and column) through the associated
 * data of AES-256-GCM (crypto.h).
 */
#ifndef MAILSRV_DB_ROW_H
#define MAILSRV_DB_ROW_H

#include <stddef.h>

#include "db_mail_server.h"
#include "err.h"

struct arena;
struct pg_result;
struct secret_keyring;

/* Column col of row `row`: a copy in the arena, NULL for SQL NULL; *nomem
 * is set (never cleared) when the arena is exhausted. */
const char *db_col_str(struct arena *a, const struct pg_result *r, int row, int col, int *nomem);
/* A decimal integer column; SQL NULL reads as 0. */
long long db_col_int(const struct pg_result *r, int row, int col);
/* A boolean column ('t'/'f' in text results); SQL NULL reads as false. */
int db_col_bool(const struct pg_result *r, int row, int col);

/*
 * The associated data of stored secrets, in the arena (NULL: out of
 * memory). Every stored ciphertext was made with exactly these bytes, so a
 * change makes the stored secrets undecryptable (tests/unit/test_db_row.c
 * pins them):
 *   a mail server's secret:       "mail_server:<id>:<name>" (name: MS_SECRETS)
 *   a started authorization's PKCE verifier:
 *                                 "oauth2_state:<hex of the state's SHA-256>:code_verifier"
 */
char *db_ms_secret_aad(struct arena *a, long long id, enum ms_secret s);
char *db_oauth2_state_aad(struct arena *a, const unsigned char state_hash[32]);

/* Encrypt plain under aad into the arena, ready as a binary (bytea)
 * parameter. E_INTERNAL when aad is NULL (an earlier allocation failed) or
 * encryption fails. */
err_t db_seal(struct arena *a, const struct secret_keyring *kr, const char *aad, const char *plain,
              size_t len, const char **blob, int *blob_len);

/* Hex text (a bytea column read as encode(col, 'hex')) to bytes in the
 * arena; NULL when it is not hex or the arena is exhausted. */
unsigned char *db_unhex(struct arena *a, const char *s, size_t len, size_t *outlen);

/* Decrypt the hex-encoded ciphertext (encode(col, 'hex')) in column col of
 * row `row`, sealed under aad, into the arena; *plain NULL for SQL NULL.
 * -1 when it does not decrypt (or aad is NULL); plain_len may be NULL. */
int db_open_secret(struct arena *a, const struct secret_keyring *kr, const char *aad,
                   const struct pg_result *r, int row, int col, const char **plain,
                   size_t *plain_len);

#endif
