/*
 * db_mail_server.h - data access for the mail_server table (openradtool's
 * grammar: db_ms_<verb>). Rows come back in the caller's arena. Secrets are
 * encrypted here, bound to their row and column, on their way in; nothing
 * here ever reads one back.
 */
#ifndef MAILSRV_DB_MAIL_SERVER_H
#define MAILSRV_DB_MAIL_SERVER_H

#include <stddef.h>

#include "db_statements.h"
#include "err.h"
#include "mail_server.h"

struct arena;
struct db;
struct secret_keyring;

/* *found = 0 when there is no such row (E_OK). for_update locks the row
 * until the transaction ends. */
err_t db_ms_get(struct db *db, struct arena *a, long long id, int for_update, struct ms_row *out,
                int *found);
err_t db_ms_get_default(struct db *db, struct arena *a, struct ms_row *out, int *found);

/* pattern: an ILIKE pattern or NULL. */
err_t db_ms_list(struct db *db, struct arena *a, const char *pattern, enum ms_sort sort,
                 int descending, int limit, long offset, struct ms_row **rows, size_t *n,
                 long long *total);

err_t db_ms_next_id(struct db *db, long long *id);
err_t db_ms_insert(struct db *db, struct arena *a, const struct secret_keyring *kr, long long id,
                   const struct ms_change *ch, struct ms_row *out);
err_t db_ms_update(struct db *db, struct arena *a, const struct secret_keyring *kr, long long id,
                   const struct ms_change *ch, struct ms_row *out);

/* Serialize moves of the default (transaction-scoped advisory lock), then
 * unmark every default but keep_id. */
err_t db_ms_lock_default(struct db *db);
err_t db_ms_unset_default(struct db *db, long long keep_id);

err_t db_ms_delete(struct db *db, long long id, int *deleted);
/* Delete every listed id in one statement; the deleted ids come back. */
err_t db_ms_batch_delete(struct db *db, struct arena *a, const long long *ids, size_t n,
                         long long **deleted, size_t *ndeleted);

#endif
