/*
 * db_mail_server.c - the mail_server table (see db_mail_server.h). Every
 * PGresult is cleared in the function that received it; values are copied
 * into the request arena first.
 */
#include "db_mail_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "crypto.h"
#include "db.h"

/* Column positions of MS_COLUMNS (db_statements.c). */
enum {
	C_ID,
	C_NAME,
	C_SERVER,
	C_PORT,
	C_SENDER_NAME,
	C_SENDER_EMAIL,
	C_IS_DEFAULT,
	C_ENABLE_SSL,
	C_AUTH_TYPE,
	C_USERNAME,
	C_PASSWORD_SET,
	C_CLIENT_ID,
	C_AUTHORIZATION_URL,
	C_TOKEN_URL,
	C_SCOPE,
	C_SECRET_KEY_SET,
	C_ACCESS_TOKEN_SET,
	C_REFRESH_TOKEN_SET,
	C_ACCESS_TOKEN_EXPIRES_AT,
	C_OAUTH2_STATUS,
	C_OAUTH2_LAST_REFRESHED_AT,
	C_OAUTH2_LAST_ERROR_CODE,
	C_OAUTH2_LAST_ERROR_DESCRIPTION,
	C_CREATED_AT,
	C_UPDATED_AT,
	C_VERSION,
	C_LAST_TEST_AT,
	C_LAST_TEST_OK,
	C_LAST_TEST_STAGE,
	C_LAST_TEST_ERROR_CODE,
	C__COUNT
};

static const char *col_str(struct arena *a, const struct pg_result *r, int row, int col, int *nomem)
{
	if (db_isnull(r, row, col))
		return NULL;
	char *s = arena_strndup(a, db_value(r, row, col), (size_t)db_length(r, row, col));
	if (s == NULL)
		*nomem = 1;
	return s;
}

static int col_bool(const struct pg_result *r, int row, int col)
{
	return !db_isnull(r, row, col) && db_value(r, row, col)[0] == 't';
}

static long long col_int(const struct pg_result *r, int row, int col)
{
	return db_isnull(r, row, col) ? 0 : strtoll(db_value(r, row, col), NULL, 10);
}

static err_t read_row(struct arena *a, const struct pg_result *r, int row, struct ms_row *m)
{
	int nomem = 0;
	memset(m, 0, sizeof(*m));
	m->id = col_int(r, row, C_ID);
	m->name = col_str(a, r, row, C_NAME, &nomem);
	m->server = col_str(a, r, row, C_SERVER, &nomem);
	m->port = (int)col_int(r, row, C_PORT);
	m->sender_name = col_str(a, r, row, C_SENDER_NAME, &nomem);
	m->sender_email = col_str(a, r, row, C_SENDER_EMAIL, &nomem);
	m->is_default = col_bool(r, row, C_IS_DEFAULT);
	m->enable_ssl = col_bool(r, row, C_ENABLE_SSL);
	m->auth = strcmp(db_value(r, row, C_AUTH_TYPE), "oauth2") == 0 ? AUTH_OAUTH2 : AUTH_BASIC;
	m->username = col_str(a, r, row, C_USERNAME, &nomem);
	m->password_set = col_bool(r, row, C_PASSWORD_SET);
	m->client_id = col_str(a, r, row, C_CLIENT_ID, &nomem);
	m->authorization_url = col_str(a, r, row, C_AUTHORIZATION_URL, &nomem);
	m->token_url = col_str(a, r, row, C_TOKEN_URL, &nomem);
	m->scope = col_str(a, r, row, C_SCOPE, &nomem);
	m->secret_key_set = col_bool(r, row, C_SECRET_KEY_SET);
	m->access_token_set = col_bool(r, row, C_ACCESS_TOKEN_SET);
	m->refresh_token_set = col_bool(r, row, C_REFRESH_TOKEN_SET);
	m->access_token_expires_at = col_str(a, r, row, C_ACCESS_TOKEN_EXPIRES_AT, &nomem);
	m->oauth2_status = col_str(a, r, row, C_OAUTH2_STATUS, &nomem);
	m->oauth2_last_refreshed_at = col_str(a, r, row, C_OAUTH2_LAST_REFRESHED_AT, &nomem);
	m->oauth2_last_error_code = col_str(a, r, row, C_OAUTH2_LAST_ERROR_CODE, &nomem);
	m->oauth2_last_error_description =
	    col_str(a, r, row, C_OAUTH2_LAST_ERROR_DESCRIPTION, &nomem);
	m->created_at = col_str(a, r, row, C_CREATED_AT, &nomem);
	m->updated_at = col_str(a, r, row, C_UPDATED_AT, &nomem);
	m->version = col_int(r, row, C_VERSION);
	m->last_test_at = col_str(a, r, row, C_LAST_TEST_AT, &nomem);
	m->last_test_ok = col_bool(r, row, C_LAST_TEST_OK);
	m->last_test_stage = col_str(a, r, row, C_LAST_TEST_STAGE, &nomem);
	m->last_test_error_code = col_str(a, r, row, C_LAST_TEST_ERROR_CODE, &nomem);
	return nomem ? E_INTERNAL : E_OK;
}

/* Run a statement that returns at most one row of MS_COLUMNS. */
static err_t one_row(struct db *db, struct arena *a, int stmt, int nparams,
                     const char *const *values, const int *lengths, const int *fmt,
                     struct ms_row *out, int *found)
{
	struct pg_result *r;
	err_t e = db_exec(db, stmt, nparams, values, lengths, fmt, &r);
	if (e != E_OK)
		return e;
	*found = db_ntuples(r) > 0;
	if (*found)
		e = read_row(a, r, 0, out);
	db_clear(r);
	return e;
}

err_t db_ms_get(struct db *db, struct arena *a, long long id, int for_update, struct ms_row *out,
                int *found)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	const char *p[] = {idbuf};
	return one_row(db, a, for_update ? ST_MS_GET_FOR_UPDATE : ST_MS_GET, 1, p, NULL, NULL, out,
	               found);
}

err_t db_ms_get_default(struct db *db, struct arena *a, struct ms_row *out, int *found)
{
	return one_row(db, a, ST_MS_GET_DEFAULT, 0, NULL, NULL, NULL, out, found);
}

err_t db_ms_list(struct db *db, struct arena *a, const char *pattern, enum ms_sort sort,
                 int descending, int limit, long offset, struct ms_row **rows, size_t *n,
                 long long *total)
{
	char lim[16], off[24];
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(off, sizeof(off), "%ld", offset);
	const char *p[] = {pattern, lim, off};
	struct pg_result *r;
	*rows = NULL;
	*n = 0;
	*total = 0;
	err_t e = db_exec(db, ST_MS_LIST_FIRST + 2 * (int)sort + (descending ? 1 : 0), 3, p, NULL,
	                  NULL, &r);
	if (e != E_OK)
		return e;
	int count = db_ntuples(r);
	if (count > 0) {
		*rows = arena_calloc(a, (size_t)count, sizeof(**rows));
		if (*rows == NULL) {
			db_clear(r);
			return E_INTERNAL;
		}
		*total = col_int(r, 0, C__COUNT);
		for (int i = 0; i < count && e == E_OK; i++)
			e = read_row(a, r, i, &(*rows)[i]);
		*n = (size_t)count;
	}
	db_clear(r);
	if (e != E_OK || count > 0 || offset == 0)
		return e;
	/* A page past the end has no row to carry the total: count apart. */
	e = db_exec(db, ST_MS_COUNT, 1, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	*total = col_int(r, 0, 0);
	db_clear(r);
	return E_OK;
}

err_t db_ms_next_id(struct db *db, long long *id)
{
	struct pg_result *r;
	err_t e = db_exec(db, ST_MS_NEXT_ID, 0, NULL, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	*id = col_int(r, 0, 0);
	db_clear(r);
	return E_OK;
}

/* Encrypt one secret for row id's column (the associated data binds the
 * ciphertext to both). *blob NULL for "store NULL". */
static err_t seal(struct arena *a, const struct secret_keyring *kr, long long id,
                  const char *column, const struct secret_in *s, const char **blob, int *len)
{
	*blob = NULL;
	*len = 0;
	if (s->op != SECRET_SET)
		return E_OK;
	char *aad = arena_printf(a, "mail_server:%lld:%s", id, column);
	unsigned char *out;
	size_t outlen;
	if (aad == NULL || secret_encrypt(kr, a, aad, s->value, s->len, &out, &outlen) != 0)
		return E_INTERNAL;
	*blob = (const char *)out;
	*len = (int)outlen;
	return E_OK;
}

#define NSECRETS 4

/* Fill the parameters shared by insert and update ($1-$15). */
static void common_params(const struct ms_change *ch, char idbuf[24], char portbuf[8],
                          const char **p)
{
	const struct ms_input *in = ch->in;
	snprintf(portbuf, 8, "%d", in->port);
	p[0] = idbuf;
	p[1] = in->name;
	p[2] = in->server;
	p[3] = portbuf;
	p[4] = in->sender_name;
	p[5] = in->sender_email;
	p[6] = in->is_default ? "t" : "f";
	p[7] = in->enable_ssl ? "t" : "f";
	p[8] = in->auth == AUTH_OAUTH2 ? "oauth2" : "basic";
	p[9] = in->username;
	p[10] = in->client_id;
	p[11] = in->authorization_url;
	p[12] = in->token_url;
	p[13] = in->scope;
	p[14] = ch->oauth2_status;
}

static err_t seal_all(struct arena *a, const struct secret_keyring *kr, long long id,
                      const struct ms_change *ch, const char *blob[NSECRETS], int len[NSECRETS])
{
	static const char *const columns[NSECRETS] = {"password", "secret_key", "access_token",
	                                              "refresh_token"};
	const struct secret_in *s[NSECRETS] = {&ch->password, &ch->secret_key, &ch->access_token,
	                                       &ch->refresh_token};
	for (int i = 0; i < NSECRETS; i++)
		if (seal(a, kr, id, columns[i], s[i], &blob[i], &len[i]) != E_OK)
			return E_INTERNAL;
	return E_OK;
}

err_t db_ms_insert(struct db *db, struct arena *a, const struct secret_keyring *kr, long long id,
                   const struct ms_change *ch, struct ms_row *out)
{
	char idbuf[24], portbuf[8];
	const char *p[19] = {0};
	int lengths[19] = {0}, fmt[19] = {0};
	const char *blob[NSECRETS];
	int len[NSECRETS];
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	common_params(ch, idbuf, portbuf, p);
	if (seal_all(a, kr, id, ch, blob, len) != E_OK)
		return E_INTERNAL;
	for (int i = 0; i < NSECRETS; i++) {
		p[15 + i] = blob[i];
		lengths[15 + i] = len[i];
		fmt[15 + i] = 1; /* bytea, binary */
	}
	int found;
	err_t e = one_row(db, a, ST_MS_INSERT, 19, p, lengths, fmt, out, &found);
	return e == E_OK && !found ? E_INTERNAL : e;
}

err_t db_ms_update(struct db *db, struct arena *a, const struct secret_keyring *kr, long long id,
                   const struct ms_change *ch, struct ms_row *out)
{
	char idbuf[24], portbuf[8];
	const char *p[24] = {0};
	int lengths[24] = {0}, fmt[24] = {0};
	const char *blob[NSECRETS];
	int len[NSECRETS];
	const struct secret_in *s[NSECRETS] = {&ch->password, &ch->secret_key, &ch->access_token,
	                                       &ch->refresh_token};
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	common_params(ch, idbuf, portbuf, p);
	p[15] = ch->keep_oauth2_state ? "t" : "f";
	if (seal_all(a, kr, id, ch, blob, len) != E_OK)
		return E_INTERNAL;
	for (int i = 0; i < NSECRETS; i++) {
		p[16 + 2 * i] = s[i]->op == SECRET_KEEP ? "t" : "f";
		p[17 + 2 * i] = blob[i];
		lengths[17 + 2 * i] = len[i];
		fmt[17 + 2 * i] = 1;
	}
	int found;
	err_t e = one_row(db, a, ST_MS_UPDATE, 24, p, lengths, fmt, out, &found);
	return e == E_OK && !found ? E_INTERNAL : e;
}

err_t db_ms_lock_default(struct db *db)
{
	return db_exec(db, ST_MS_LOCK_DEFAULT, 0, NULL, NULL, NULL, NULL);
}

err_t db_ms_unset_default(struct db *db, long long keep_id)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", keep_id);
	const char *p[] = {idbuf};
	return db_exec(db, ST_MS_UNSET_DEFAULT, 1, p, NULL, NULL, NULL);
}

err_t db_ms_delete(struct db *db, long long id, int *deleted)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	const char *p[] = {idbuf};
	struct pg_result *r;
	err_t e = db_exec(db, ST_MS_DELETE, 1, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	*deleted = db_affected(r) > 0;
	db_clear(r);
	return E_OK;
}

err_t db_ms_batch_delete(struct db *db, struct arena *a, const long long *ids, size_t n,
                         long long **deleted, size_t *ndeleted)
{
	/* A PostgreSQL array literal of integers: {1,2,3}. */
	char *arr = arena_alloc(a, n * 21 + 3);
	if (arr == NULL)
		return E_INTERNAL;
	size_t o = 0;
	arr[o++] = '{';
	for (size_t i = 0; i < n; i++)
		o += (size_t)sprintf(arr + o, i ? ",%lld" : "%lld", ids[i]);
	arr[o++] = '}';
	arr[o] = '\0';
	const char *p[] = {arr};
	struct pg_result *r;
	err_t e = db_exec(db, ST_MS_BATCH_DELETE, 1, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	int count = db_ntuples(r);
	*ndeleted = (size_t)count;
	*deleted = arena_calloc(a, count > 0 ? (size_t)count : 1, sizeof(**deleted));
	if (*deleted == NULL) {
		db_clear(r);
		return E_INTERNAL;
	}
	for (int i = 0; i < count; i++)
		(*deleted)[i] = col_int(r, i, 0);
	db_clear(r);
	return E_OK;
}
