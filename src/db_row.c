/*
 * db_row.c - column readers and secret sealing shared by the per-table data
 * files (see db_row.h).
 */
#include "db_row.h"

#include <stdlib.h>

#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "validate.h"

const char *db_col_str(struct arena *a, const struct pg_result *r, int row, int col, int *nomem)
{
	if (db_isnull(r, row, col))
		return NULL;
	char *s = arena_strndup(a, db_value(r, row, col), (size_t)db_length(r, row, col));
	if (s == NULL)
		*nomem = 1;
	return s;
}

long long db_col_int(const struct pg_result *r, int row, int col)
{
	return db_isnull(r, row, col) ? 0 : strtoll(db_value(r, row, col), NULL, 10);
}

int db_col_bool(const struct pg_result *r, int row, int col)
{
	return !db_isnull(r, row, col) && db_value(r, row, col)[0] == 't';
}

/* The secrets' names in the associated data: the declared names
 * (MS_SECRETS), which are also their columns without "_enc". */
static const char *const ms_secret_names[MS_SECRET__COUNT] = {
#define MS_SECRET_NAME_(name, value, keep) [MS_SECRET_##name] = #name,
    MS_SECRETS(MS_SECRET_NAME_)
#undef MS_SECRET_NAME_
};

char *db_ms_secret_aad(struct arena *a, long long id, enum ms_secret s)
{
	if ((unsigned)s >= MS_SECRET__COUNT)
		return NULL;
	return arena_printf(a, "mail_server:%lld:%s", id, ms_secret_names[s]);
}

char *db_oauth2_state_aad(struct arena *a, const unsigned char state_hash[32])
{
	static const char digits[] = "0123456789abcdef";
	char hex[65];
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[state_hash[i] >> 4];
		hex[2 * i + 1] = digits[state_hash[i] & 15];
	}
	hex[64] = '\0';
	return arena_printf(a, "oauth2_state:%s:code_verifier", hex);
}

err_t db_seal(struct arena *a, const struct secret_keyring *kr, const char *aad, const char *plain,
              size_t len, const char **blob, int *blob_len)
{
	unsigned char *out;
	size_t outlen;
	if (aad == NULL || secret_encrypt(kr, a, aad, plain, len, &out, &outlen) != 0)
		return E_INTERNAL;
	*blob = (const char *)out;
	*blob_len = (int)outlen;
	return E_OK;
}

unsigned char *db_unhex(struct arena *a, const char *s, size_t len, size_t *outlen)
{
	if (len % 2 != 0)
		return NULL;
	unsigned char *out = arena_alloc(a, len / 2 + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i += 2) {
		int hi = text_hex_digit((unsigned char)s[i]),
		    lo = text_hex_digit((unsigned char)s[i + 1]);
		if (hi < 0 || lo < 0)
			return NULL;
		out[i / 2] = (unsigned char)(hi * 16 + lo);
	}
	*outlen = len / 2;
	return out;
}

int db_open_secret(struct arena *a, const struct secret_keyring *kr, const char *aad,
                   const struct pg_result *r, int row, int col, const char **plain,
                   size_t *plain_len)
{
	*plain = NULL;
	if (plain_len != NULL)
		*plain_len = 0;
	if (db_isnull(r, row, col))
		return 0;
	size_t blen;
	unsigned char *blob =
	    db_unhex(a, db_value(r, row, col), (size_t)db_length(r, row, col), &blen);
	char *p;
	size_t plen;
	if (aad == NULL || blob == NULL || secret_decrypt(kr, a, aad, blob, blen, &p, &plen) != 0)
		return -1;
	*plain = p;
	if (plain_len != NULL)
		*plain_len = plen;
	return 0;
}
