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

/*
 * The mail_server table as the service reads and writes it, declared once
 * (as openradtool generates its DB_SCHEMA_ macros). From these lists come
 * the SQL text of the statements (db_statements.c), the column indexes and
 * parameter positions (MS_COL_<field>, MS_P_<column>, db_mail_server.c)
 * and the reading and binding of rows. A new column is one line here plus
 * its use (its field in struct ms_row, its place in the representation).
 */

/* An RFC 3339 timestamp in UTC, as every time of the representation. */
#define MS_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*
 * The representation's columns (struct ms_row), in select-list order after
 * id, which is always column 0: X(field, kind, SQL expression). kind is how
 * db_mail_server.c reads the text value into the field: TEXT (SQL NULL
 * stays NULL), INT, BOOL (NULL is false), AUTH (auth_type).
 */
#define MS_READ_COLUMNS(X)                                                                         \
	X(name, TEXT, "name")                                                                      \
	X(server, TEXT, "server")                                                                  \
	X(port, INT, "port")                                                                       \
	X(sender_name, TEXT, "sender_name")                                                        \
	X(sender_email, TEXT, "sender_email")                                                      \
	X(is_default, BOOL, "is_default")                                                          \
	X(enable_ssl, BOOL, "enable_ssl")                                                          \
	X(auth, AUTH, "auth_type")                                                                 \
	X(username, TEXT, "username")                                                              \
	X(password_set, BOOL, "password_enc IS NOT NULL")                                          \
	X(client_id, TEXT, "client_id")                                                            \
	X(authorization_url, TEXT, "authorization_url")                                            \
	X(token_url, TEXT, "token_url")                                                            \
	X(scope, TEXT, "scope")                                                                    \
	X(secret_key_set, BOOL, "secret_key_enc IS NOT NULL")                                      \
	X(access_token_set, BOOL, "access_token_enc IS NOT NULL")                                  \
	X(refresh_token_set, BOOL, "refresh_token_enc IS NOT NULL")                                \
	X(access_token_expires_at, TEXT, MS_TS("access_token_expires_at"))                         \
	X(oauth2_status, TEXT, "oauth2_status")                                                    \
	X(oauth2_last_refreshed_at, TEXT, MS_TS("oauth2_last_refreshed_at"))                       \
	X(oauth2_last_error_code, TEXT, "oauth2_last_error_code")                                  \
	X(oauth2_last_error_description, TEXT, "oauth2_last_error_description")                    \
	X(created_at, TEXT, MS_TS("created_at"))                                                   \
	X(updated_at, TEXT, MS_TS("updated_at"))                                                   \
	X(version, INT, "version")                                                                 \
	X(last_test_at, TEXT, MS_TS("last_test_at"))                                               \
	X(last_test_ok, BOOL, "last_test_ok")                                                      \
	X(last_test_stage, TEXT, "last_test_stage")                                                \
	X(last_test_error_code, TEXT, "last_test_error_code")

/* Column indexes of a row of the select list (ST_MS_GET and every other
 * statement returning servers). A listing adds the total after them. */
#define MS_COL_(field, kind, sql) MS_COL_##field,
/* clang-format off */
enum ms_column {
	MS_COL_id,
	MS_READ_COLUMNS(MS_COL_)
	MS_COL__COUNT,
	MS_COL__LIST_TOTAL = MS_COL__COUNT /* ST_MS_LIST_*: the total after the columns */
};
/* clang-format on */
#undef MS_COL_

/*
 * The plain columns a create or a replace writes: X(parameter, column).
 * Insert and update share the parameters: $1 is the id, then these, then
 * the secrets' values (MS_SECRETS). The numbers are written out because
 * SQL needs them as text; db_mail_server.c checks at compile time that
 * they follow the list's order.
 */
#define MS_WRITE_COLUMNS(X)                                                                        \
	X(2, name)                                                                                 \
	X(3, server)                                                                               \
	X(4, port)                                                                                 \
	X(5, sender_name)                                                                          \
	X(6, sender_email)                                                                         \
	X(7, is_default)                                                                           \
	X(8, enable_ssl)                                                                           \
	X(9, auth_type)                                                                            \
	X(10, username)                                                                            \
	X(11, client_id)                                                                           \
	X(12, authorization_url)                                                                   \
	X(13, token_url)                                                                           \
	X(14, scope)                                                                               \
	X(15, oauth2_status)

/*
 * The secrets, stored encrypted in <name>_enc, each bound to its row and
 * column (db_ms_secret_aad): X(name, value parameter, keep parameter).
 * Insert stores the value; update keeps the stored one when the keep flag
 * is true, else stores the value (NULL clears). The name is also the
 * field of struct ms_change and of struct ms_input.
 */
#define MS_SECRETS(X)                                                                              \
	X(password, 16, 20)                                                                        \
	X(secret_key, 17, 21)                                                                      \
	X(access_token, 18, 22)                                                                    \
	X(refresh_token, 19, 23)

/* Update only, after the keep flags: whether to keep the OAuth state
 * (MS_OAUTH2_STATE_COLUMNS: the token's expiry, the last refresh and
 * error, the scope the tokens were granted) or clear it. */
#define MS_KEEP_OAUTH2_STATE_PARAM 24
#define MS_OAUTH2_STATE_COLUMNS(X)                                                                 \
	X(access_token_expires_at)                                                                 \
	X(oauth2_last_refreshed_at)                                                                \
	X(oauth2_last_error_code)                                                                  \
	X(oauth2_last_error_description)                                                           \
	X(oauth2_granted_scope)

/* The secrets by name: MS_SECRET_password, ... (db_ms_secret_aad). */
#define MS_SECRET_(name, value, keep) MS_SECRET_##name,
/* clang-format off */
enum ms_secret {
	MS_SECRETS(MS_SECRET_)
	MS_SECRET__COUNT
};
/* clang-format on */
#undef MS_SECRET_

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
 * unmark every default but keep_id; *from gets the server that was the
 * default (0: none). */
err_t db_ms_lock_default(struct db *db);
err_t db_ms_unset_default(struct db *db, long long keep_id, long long *from);

err_t db_ms_delete(struct db *db, long long id, int *deleted);
/* Delete every listed id in one statement; the deleted ids come back, each
 * with the name it had (*names[i], in the arena). */
err_t db_ms_batch_delete(struct db *db, struct arena *a, const long long *ids, size_t n,
                         long long **deleted, const char ***names, size_t *ndeleted);

#endif
