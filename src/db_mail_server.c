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
#include "db.h"
#include "db_row.h"

/* Statement parameters of insert and update, in $n order (MS_P_id is $1). */
#define MS_P_WRITE_(n, column)          MS_P_##column,
#define MS_P_SECRET_(name, value, keep) MS_P_##name##_enc,
#define MS_P_KEEP_(name, value, keep)   MS_P_keep_##name,
/* clang-format off */
enum ms_param {
	MS_P_id,
	MS_WRITE_COLUMNS(MS_P_WRITE_)
	MS_SECRETS(MS_P_SECRET_)
	MS_SECRETS(MS_P_KEEP_)
	MS_P_keep_oauth2_state,
	MS_P__UPDATE_COUNT,
	/* insert takes those before the keep flags (update only) */
	MS_P__INSERT_COUNT = MS_P_keep_oauth2_state - MS_SECRET__COUNT
};
/* clang-format on */

/* The $n written in the declaration (db_mail_server.h) is the position in
 * this enum, plus one: a column added out of order does not compile. */
#define MS_CHECK_WRITE_(n, column)                                                                 \
	_Static_assert(MS_P_##column + 1 == n, "$" #n " is not the parameter of " #column);
#define MS_CHECK_SECRET_(name, value, keep)                                                        \
	_Static_assert(MS_P_##name##_enc + 1 == value, "$" #value " is not " #name "_enc");        \
	_Static_assert(MS_P_keep_##name + 1 == keep, "$" #keep " is not the keep flag of " #name);
MS_WRITE_COLUMNS(MS_CHECK_WRITE_)
MS_SECRETS(MS_CHECK_SECRET_)
_Static_assert(MS_P_keep_oauth2_state + 1 == MS_KEEP_OAUTH2_STATE_PARAM,
               "the keep flag of the OAuth state is not the last parameter");

/* Readers by the kind of MS_READ_COLUMNS. */
static const char *read_TEXT(struct arena *a, const struct pg_result *r, int row, int col,
                             int *nomem)
{
	return db_col_str(a, r, row, col, nomem);
}

static long long read_INT(struct arena *a, const struct pg_result *r, int row, int col, int *nomem)
{
	return db_col_int(r, row, col);
}

static int read_BOOL(struct arena *a, const struct pg_result *r, int row, int col, int *nomem)
{
	return db_col_bool(r, row, col);
}

static enum auth_type read_AUTH(struct arena *a, const struct pg_result *r, int row, int col,
                                int *nomem)
{
	return strcmp(db_value(r, row, col), "oauth2") == 0 ? AUTH_OAUTH2 : AUTH_BASIC;
}

static err_t read_row(struct arena *a, const struct pg_result *r, int row, struct ms_row *m)
{
	int nomem = 0;
	memset(m, 0, sizeof(*m));
	m->id = db_col_int(r, row, MS_COL_id);
#define MS_READ_(field, kind, sql) m->field = read_##kind(a, r, row, MS_COL_##field, &nomem);
	MS_READ_COLUMNS(MS_READ_)
#undef MS_READ_
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
		*total = db_col_int(r, 0, MS_COL__LIST_TOTAL);
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
	*total = db_col_int(r, 0, 0);
	db_clear(r);
	return E_OK;
}

err_t db_ms_next_id(struct db *db, long long *id)
{
	struct pg_result *r;
	err_t e = db_exec(db, ST_MS_NEXT_ID, 0, NULL, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	*id = db_col_int(r, 0, 0);
	db_clear(r);
	return E_OK;
}

/*
 * Bind the parameters insert and update share: the id, the plain columns
 * and each secret's value, encrypted and bound to row id's column (NULL
 * when the secret is not set by this change: insert stores NULL, update
 * keeps or clears by the keep flag). p, lengths and fmt have room for
 * MS_P__UPDATE_COUNT parameters; the text buffers must outlive the call.
 */
static err_t bind_change(struct arena *a, const struct secret_keyring *kr, long long id,
                         const struct ms_change *ch, char idbuf[24], char portbuf[8],
                         const char **p, int *lengths, int *fmt)
{
	const struct ms_input *in = ch->in;
	snprintf(idbuf, 24, "%lld", id);
	snprintf(portbuf, 8, "%d", in->port);
	p[MS_P_id] = idbuf;
	p[MS_P_name] = in->name;
	p[MS_P_server] = in->server;
	p[MS_P_port] = portbuf;
	p[MS_P_sender_name] = in->sender_name;
	p[MS_P_sender_email] = in->sender_email;
	p[MS_P_is_default] = in->is_default ? "t" : "f";
	p[MS_P_enable_ssl] = in->enable_ssl ? "t" : "f";
	p[MS_P_auth_type] = in->auth == AUTH_OAUTH2 ? "oauth2" : "basic";
	p[MS_P_username] = in->username;
	p[MS_P_client_id] = in->client_id;
	p[MS_P_authorization_url] = in->authorization_url;
	p[MS_P_token_url] = in->token_url;
	p[MS_P_scope] = in->scope;
	p[MS_P_oauth2_status] = ch->oauth2_status;
#define MS_BIND_SECRET_(name, value_param, keep_param)                                             \
	fmt[MS_P_##name##_enc] = 1; /* bytea, binary */                                            \
	if (ch->name.op == SECRET_SET &&                                                           \
	    db_seal(a, kr, db_ms_secret_aad(a, id, MS_SECRET_##name), ch->name.value,              \
	            ch->name.len, &p[MS_P_##name##_enc], &lengths[MS_P_##name##_enc]) != E_OK)     \
		return E_INTERNAL;
	MS_SECRETS(MS_BIND_SECRET_)
#undef MS_BIND_SECRET_
	return E_OK;
}

err_t db_ms_insert(struct db *db, struct arena *a, const struct secret_keyring *kr, long long id,
                   const struct ms_change *ch, struct ms_row *out)
{
	char idbuf[24], portbuf[8];
	const char *p[MS_P__UPDATE_COUNT] = {0};
	int lengths[MS_P__UPDATE_COUNT] = {0}, fmt[MS_P__UPDATE_COUNT] = {0};
	if (bind_change(a, kr, id, ch, idbuf, portbuf, p, lengths, fmt) != E_OK)
		return E_INTERNAL;
	int found;
	err_t e = one_row(db, a, ST_MS_INSERT, MS_P__INSERT_COUNT, p, lengths, fmt, out, &found);
	return e == E_OK && !found ? E_INTERNAL : e;
}

err_t db_ms_update(struct db *db, struct arena *a, const struct secret_keyring *kr, long long id,
                   const struct ms_change *ch, struct ms_row *out)
{
	char idbuf[24], portbuf[8];
	const char *p[MS_P__UPDATE_COUNT] = {0};
	int lengths[MS_P__UPDATE_COUNT] = {0}, fmt[MS_P__UPDATE_COUNT] = {0};
	if (bind_change(a, kr, id, ch, idbuf, portbuf, p, lengths, fmt) != E_OK)
		return E_INTERNAL;
#define MS_BIND_KEEP_(name, value, keep)                                                           \
	p[MS_P_keep_##name] = ch->name.op == SECRET_KEEP ? "t" : "f";
	MS_SECRETS(MS_BIND_KEEP_)
#undef MS_BIND_KEEP_
	p[MS_P_keep_oauth2_state] = ch->keep_oauth2_state ? "t" : "f";
	int found;
	err_t e = one_row(db, a, ST_MS_UPDATE, MS_P__UPDATE_COUNT, p, lengths, fmt, out, &found);
	return e == E_OK && !found ? E_INTERNAL : e;
}

err_t db_ms_lock_default(struct db *db)
{
	return db_exec(db, ST_MS_LOCK_DEFAULT, 0, NULL, NULL, NULL, NULL);
}

err_t db_ms_unset_default(struct db *db, long long keep_id, long long *from)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", keep_id);
	const char *p[] = {idbuf};
	struct pg_result *r;
	*from = 0;
	err_t e = db_exec(db, ST_MS_UNSET_DEFAULT, 1, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	if (db_ntuples(r) > 0)
		*from = db_col_int(r, 0, 0);
	db_clear(r);
	return E_OK;
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
                         long long **deleted, const char ***names, size_t *ndeleted)
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
	*names = arena_calloc(a, count > 0 ? (size_t)count : 1, sizeof(**names));
	if (*deleted == NULL || *names == NULL) {
		db_clear(r);
		return E_INTERNAL;
	}
	int nomem = 0;
	for (int i = 0; i < count; i++) {
		(*deleted)[i] = db_col_int(r, i, 0);
		(*names)[i] = db_col_str(a, r, i, 1, &nomem);
	}
	db_clear(r);
	return nomem ? E_INTERNAL : E_OK;
}
