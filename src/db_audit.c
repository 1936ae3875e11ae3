/*
 * db_audit.c - the audit_event table (see db_audit.h). Every PGresult is
 * cleared in the function that received it; values are copied into the
 * request arena first.
 */
#include "db_audit.h"

#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "db.h"
#include "db_row.h"
#include "db_statements.h"

err_t db_audit_record(struct db *db, const struct audit_who *who, const char *action,
                      long long server_id, const char *name, const char *details)
{
	char idbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", server_id);
	const char *p[] = {who != NULL && who->actor != NULL ? who->actor : "",
	                   action,
	                   server_id > 0 ? idbuf : NULL,
	                   name,
	                   who != NULL ? who->request_id : NULL,
	                   who != NULL ? who->client_address : NULL,
	                   details};
	return db_exec(db, ST_AU_RECORD, 7, p, NULL, NULL, NULL);
}

err_t db_audit_list(struct db *db, struct arena *a, const struct audit_filter *f, int limit,
                    struct audit_row **rows, size_t *n)
{
	char sid[24], before[24], lim[16];
	snprintf(sid, sizeof(sid), "%lld", f->mail_server_id);
	snprintf(before, sizeof(before), "%lld", f->before_id);
	snprintf(lim, sizeof(lim), "%d", limit);
	const char *p[] = {
	    f->mail_server_id > 0 ? sid : NULL, f->actor, f->action, f->since, f->until,
	    f->before_id > 0 ? before : NULL,   lim};
	struct pg_result *r;
	*rows = NULL;
	*n = 0;
	err_t e = db_exec(db, ST_AU_LIST, 7, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	int count = db_ntuples(r);
	*rows = arena_calloc(a, count > 0 ? (size_t)count : 1, sizeof(**rows));
	if (*rows == NULL) {
		db_clear(r);
		return E_INTERNAL;
	}
	int nomem = 0;
	for (int i = 0; i < count; i++) {
		struct audit_row *w = &(*rows)[i];
		w->id = db_col_int(r, i, 0);
		w->at = db_col_str(a, r, i, 1, &nomem);
		w->actor = db_col_str(a, r, i, 2, &nomem);
		w->action = db_col_str(a, r, i, 3, &nomem);
		w->mail_server_id = db_isnull(r, i, 4) ? 0 : db_col_int(r, i, 4);
		w->mail_server_name = db_col_str(a, r, i, 5, &nomem);
		w->request_id = db_col_str(a, r, i, 6, &nomem);
		w->client_address = db_col_str(a, r, i, 7, &nomem);
		w->details = db_col_str(a, r, i, 8, &nomem);
	}
	db_clear(r);
	if (nomem)
		return E_INTERNAL;
	*n = (size_t)count;
	return E_OK;
}

err_t db_audit_as_owner(struct db *db)
{
	return db_exec(db, ST_AU_AS_OWNER, 0, NULL, NULL, NULL, NULL);
}

err_t db_audit_prune(struct db *db, int days, int batch, long *deleted)
{
	char dbuf[16], bbuf[16];
	snprintf(dbuf, sizeof(dbuf), "%d", days);
	snprintf(bbuf, sizeof(bbuf), "%d", batch);
	const char *p[] = {dbuf, bbuf};
	struct pg_result *r;
	*deleted = 0;
	err_t e = db_exec(db, ST_AU_PRUNE, 2, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	*deleted = db_affected(r);
	db_clear(r);
	return E_OK;
}

char *audit_json_string(struct arena *a, const char *s)
{
	size_t len = s != NULL ? strlen(s) : 0;
	char *out = arena_alloc(a, 6 * len + 3);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	out[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			out[o++] = '\\';
			out[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(out + o, 7, "\\u%04x", ch);
		} else {
			out[o++] = (char)ch;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
