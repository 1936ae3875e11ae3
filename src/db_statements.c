/*
 * db_statements.c - every SQL statement of the service, in one table,
 * prepared once per connection (db.c). Parameters only: no statement text
 * is ever built from request data. The listing has one statement per sort
 * key and direction, since ORDER BY cannot take a parameter.
 */
#include "db.h"
#include "db_statements.h"

/* The representation's columns (struct ms_row, db_mail_server.c reads them
 * by these positions). Timestamps as RFC 3339 in UTC. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define MS_COLUMNS                                                                        \
	"id, name, server, port, sender_name, sender_email, is_default, enable_ssl, "         \
	"auth_type, username, password_enc IS NOT NULL, client_id, authorization_url, "       \
	"token_url, scope, secret_key_enc IS NOT NULL, access_token_enc IS NOT NULL, "        \
	"refresh_token_enc IS NOT NULL, " TS("access_token_expires_at") ", oauth2_status, "   \
	TS("oauth2_last_refreshed_at") ", oauth2_last_error_code, "                            \
	"oauth2_last_error_description, " TS("created_at") ", " TS("updated_at") ", version"

/* $1: an ILIKE pattern, or NULL for every server. */
#define MS_FILTER                                                                         \
	" WHERE ($1::text IS NULL OR name ILIKE $1 OR server ILIKE $1"                       \
	" OR sender_name ILIKE $1 OR sender_email ILIKE $1)"

#define MS_LIST(key, dir)                                                                 \
	"SELECT " MS_COLUMNS ", count(*) OVER () FROM mail_server" MS_FILTER                 \
	" ORDER BY " key " " dir ", id ASC LIMIT $2 OFFSET $3"

#define MS_LIST_PAIR(id, name, key)                                                       \
	[ST_MS_LIST_FIRST + 2 * id] = {"ms_list_" name "_asc", MS_LIST(key, "ASC")},          \
	[ST_MS_LIST_FIRST + 2 * id + 1] = {"ms_list_" name "_desc", MS_LIST(key, "DESC")}

/* A constant key for the advisory lock that serializes moves of the default
 * (any fixed 64-bit number; this one spells "mailsrvd"). */
#define DEFAULT_LOCK_KEY "7089063207004434020"

const struct db_statement db_statements[] = {
	[ST_HEALTH] = {"health", "SELECT 1"},
	[ST_MS_GET] = {"ms_get", "SELECT " MS_COLUMNS " FROM mail_server WHERE id = $1"},
	[ST_MS_GET_FOR_UPDATE] = {"ms_get_for_update",
	                          "SELECT " MS_COLUMNS " FROM mail_server WHERE id = $1 FOR UPDATE"},
	[ST_MS_GET_DEFAULT] = {"ms_get_default",
	                       "SELECT " MS_COLUMNS " FROM mail_server WHERE is_default"},
	[ST_MS_COUNT] = {"ms_count", "SELECT count(*) FROM mail_server" MS_FILTER},
	[ST_MS_NEXT_ID] = {"ms_next_id", "SELECT nextval(pg_get_serial_sequence('mail_server', 'id'))"},
	/* Parameters of insert and update, in this order: $1 id, $2 name,
	 * $3 server, $4 port, $5 sender_name, $6 sender_email, $7 is_default,
	 * $8 enable_ssl, $9 auth_type, $10 username, $11 client_id,
	 * $12 authorization_url, $13 token_url, $14 scope, $15 oauth2_status;
	 * insert: $16-$19 the encrypted password, secret_key, access_token,
	 * refresh_token; update: $16 keep the OAuth state (expiry, last
	 * refresh, last error), then per secret a "keep" flag and the value to
	 * store otherwise (NULL clears): $17/$18 password, $19/$20 secret_key,
	 * $21/$22 access_token, $23/$24 refresh_token. */
	[ST_MS_INSERT] = {"ms_insert",
	                  "INSERT INTO mail_server (id, name, server, port, sender_name, sender_email,"
	                  " is_default, enable_ssl, auth_type, username, client_id, authorization_url,"
	                  " token_url, scope, oauth2_status, password_enc, secret_key_enc,"
	                  " access_token_enc, refresh_token_enc) VALUES ($1, $2, $3, $4, $5, $6, $7,"
	                  " $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
	                  " RETURNING " MS_COLUMNS},
	[ST_MS_UPDATE] = {"ms_update",
	                  "UPDATE mail_server SET name = $2, server = $3, port = $4, sender_name = $5,"
	                  " sender_email = $6, is_default = $7, enable_ssl = $8, auth_type = $9,"
	                  " username = $10, client_id = $11, authorization_url = $12, token_url = $13,"
	                  " scope = $14, oauth2_status = $15,"
	                  " access_token_expires_at = CASE WHEN $16 THEN access_token_expires_at END,"
	                  " oauth2_last_refreshed_at = CASE WHEN $16 THEN oauth2_last_refreshed_at END,"
	                  " oauth2_last_error_code = CASE WHEN $16 THEN oauth2_last_error_code END,"
	                  " oauth2_last_error_description ="
	                  " CASE WHEN $16 THEN oauth2_last_error_description END,"
	                  " password_enc = CASE WHEN $17 THEN password_enc ELSE $18 END,"
	                  " secret_key_enc = CASE WHEN $19 THEN secret_key_enc ELSE $20 END,"
	                  " access_token_enc = CASE WHEN $21 THEN access_token_enc ELSE $22 END,"
	                  " refresh_token_enc = CASE WHEN $23 THEN refresh_token_enc ELSE $24 END,"
	                  " version = version + 1, updated_at = now()"
	                  " WHERE id = $1 RETURNING " MS_COLUMNS},
	[ST_MS_LOCK_DEFAULT] = {"ms_lock_default", "SELECT pg_advisory_xact_lock(" DEFAULT_LOCK_KEY ")"},
	[ST_MS_UNSET_DEFAULT] = {"ms_unset_default",
	                         "UPDATE mail_server SET is_default = false, version = version + 1,"
	                         " updated_at = now() WHERE is_default AND id <> $1"},
	[ST_MS_DELETE] = {"ms_delete", "DELETE FROM mail_server WHERE id = $1"},
	[ST_MS_BATCH_DELETE] = {"ms_batch_delete",
	                        "DELETE FROM mail_server WHERE id = ANY ($1::bigint[]) RETURNING id"},
	MS_LIST_PAIR(SORT_NAME, "name", "lower(name)"),
	MS_LIST_PAIR(SORT_SERVER, "server", "lower(server)"),
	MS_LIST_PAIR(SORT_PORT, "port", "port"),
	MS_LIST_PAIR(SORT_SENDER_NAME, "sender_name", "lower(sender_name)"),
	MS_LIST_PAIR(SORT_SENDER_EMAIL, "sender_email", "lower(sender_email)"),
	MS_LIST_PAIR(SORT_IS_DEFAULT, "is_default", "is_default"),
	MS_LIST_PAIR(SORT_CREATED_AT, "created_at", "created_at"),
	MS_LIST_PAIR(SORT_UPDATED_AT, "updated_at", "updated_at"),
};

const size_t db_statement_count = sizeof(db_statements) / sizeof(db_statements[0]);

_Static_assert(sizeof(db_statements) / sizeof(db_statements[0]) == ST__COUNT,
               "every statement id has its statement");
