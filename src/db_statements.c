/*
 * db_statements.c - every SQL statement of the service, in one table,
 * prepared once per connection (db.c). Parameters only: no statement text
 * is ever built from request data. The listing has one statement per sort
 * key and direction, since ORDER BY cannot take a parameter.
 */
#include "db.h"
#include "db_statements.h"
#include "db_mail_server.h"
#include "mailsrv_limits.h"

/* The representation's columns, from their declaration (MS_READ_COLUMNS in
 * db_mail_server.h): id, then each column's SQL expression. */
#define MS_SELECT_(field, kind, sql) ", " sql
#define MS_COLUMNS                   "id" MS_READ_COLUMNS(MS_SELECT_)

/* $1: a LIKE pattern ('%' q '%', wildcards escaped), or NULL for every
 * server. search_text (sql/003_list_search.sql) is the four searched fields,
 * each lower()ed, joined by newlines: one LIKE on it is what the four
 * "ILIKE $1" would be (on UTF-8, ILIKE is lower(text) LIKE lower(pattern)),
 * since q holds no control character and so no match spans two fields. */
#define MS_FILTER " WHERE ($1::text IS NULL OR search_text LIKE lower($1))"

/* The total is a scalar subquery (run once, an index-only count without q)
 * rather than count(*) OVER (), which made every page fetch and buffer all
 * matching rows: 5 times the cost at 1,000 rows (docs/performance.md). */
#define MS_LIST(key, dir)                                                                          \
	"SELECT " MS_COLUMNS ", (SELECT count(*) FROM mail_server" MS_FILTER ")"                   \
	" FROM mail_server" MS_FILTER " ORDER BY " key " " dir ", id ASC LIMIT $2 OFFSET $3"

#define MS_LIST_PAIR(id, name, key)                                                                \
	[ST_MS_LIST_FIRST + 2 *                                                                    \
	    id] = {"ms_list_" name "_asc", MS_LIST(key, "ASC")},                                   \
	    [ST_MS_LIST_FIRST + 2 * id + 1] = {"ms_list_" name "_desc", MS_LIST(key, "DESC")}

/* Insert's and update's SQL, per declared column (db_mail_server.h). */
#define MS_STR_(x)                           #x
#define MS_STR(x)                            MS_STR_(x)
#define MS_COLUMN_(n, column)                ", " #column
#define MS_PARAM_(n, column)                 ", $" #n
#define MS_SECRET_COLUMN_(name, value, keep) ", " #name "_enc"
#define MS_SECRET_PARAM_(name, value, keep)  ", $" #value
#define MS_SET_(n, column)                   " " #column " = $" #n ","
#define MS_SET_SECRET_(name, value, keep)                                                          \
	" " #name "_enc = CASE WHEN $" #keep " THEN " #name "_enc ELSE $" #value " END,"
#define MS_SET_OAUTH2_STATE_(column)                                                               \
	" " #column " = CASE WHEN $" MS_STR(MS_KEEP_OAUTH2_STATE_PARAM) " THEN " #column " END,"

#define MS_INSERT_COLUMNS "id" MS_WRITE_COLUMNS(MS_COLUMN_) MS_SECRETS(MS_SECRET_COLUMN_)
#define MS_INSERT_VALUES  "$1" MS_WRITE_COLUMNS(MS_PARAM_) MS_SECRETS(MS_SECRET_PARAM_)
#define MS_UPDATE_SET                                                                              \
	MS_WRITE_COLUMNS(MS_SET_)                                                                  \
	MS_SECRETS(MS_SET_SECRET_) MS_OAUTH2_STATE_COLUMNS(MS_SET_OAUTH2_STATE_)

/* A constant key for the advisory lock that serializes moves of the default
 * (any fixed 64-bit number; this one spells "mailsrvd"). */
#define DEFAULT_LOCK_KEY "7089063207004434020"

/* The class of the per-server OAuth refresh locks (two-key advisory locks
 * never collide with the one-key default lock): "oaut" in ASCII. */
#define OA_LOCK_CLASS "1868657012"
#define OA_LOCK_KEY   "($1::bigint % 2147483648)::integer"

const struct db_statement db_statements[] = {
    [ST_HEALTH] = {"health", "SELECT 1"},
    [ST_MS_GET] = {"ms_get", "SELECT " MS_COLUMNS " FROM mail_server WHERE id = $1"},
    [ST_MS_GET_FOR_UPDATE] = {"ms_get_for_update",
                              "SELECT " MS_COLUMNS " FROM mail_server WHERE id = $1 FOR UPDATE"},
    [ST_MS_GET_DEFAULT] = {"ms_get_default",
                           "SELECT " MS_COLUMNS " FROM mail_server WHERE is_default"},
    [ST_MS_COUNT] = {"ms_count", "SELECT count(*) FROM mail_server" MS_FILTER},
    [ST_MS_NEXT_ID] = {"ms_next_id", "SELECT nextval(pg_get_serial_sequence('mail_server', 'id'))"},
    /* Parameters from the declaration (db_mail_server.h): $1 id, the plain
     * columns (MS_WRITE_COLUMNS), the secrets' encrypted values (NULL:
     * none), and for update the secrets' keep flags (true keeps the stored
     * value, else the value is stored and NULL clears) and whether to keep
     * the OAuth state (MS_OAUTH2_STATE_COLUMNS) or clear it. */
    [ST_MS_INSERT] = {"ms_insert", "INSERT INTO mail_server (" MS_INSERT_COLUMNS ")"
                                   " VALUES (" MS_INSERT_VALUES ") RETURNING " MS_COLUMNS},
    [ST_MS_UPDATE] = {"ms_update", "UPDATE mail_server SET" MS_UPDATE_SET
                                   " version = version + 1, updated_at = now()"
                                   " WHERE id = $1 RETURNING " MS_COLUMNS},
    [ST_MS_LOCK_DEFAULT] = {"ms_lock_default",
                            "SELECT pg_advisory_xact_lock(" DEFAULT_LOCK_KEY ")"},
    [ST_MS_UNSET_DEFAULT] = {"ms_unset_default",
                             "UPDATE mail_server SET is_default = false, version = version + 1,"
                             " updated_at = now() WHERE is_default AND id <> $1 RETURNING id"},
    [ST_MS_DELETE] = {"ms_delete", "DELETE FROM mail_server WHERE id = $1"},
    [ST_MS_BATCH_DELETE] = {"ms_batch_delete",
                            "DELETE FROM mail_server WHERE id = ANY ($1::bigint[])"
                            " RETURNING id, name"},
    MS_LIST_PAIR(SORT_NAME, "name", "lower(name)"),
    MS_LIST_PAIR(SORT_SERVER, "server", "lower(server)"),
    MS_LIST_PAIR(SORT_PORT, "port", "port"),
    MS_LIST_PAIR(SORT_SENDER_NAME, "sender_name", "lower(sender_name)"),
    MS_LIST_PAIR(SORT_SENDER_EMAIL, "sender_email", "lower(sender_email)"),
    MS_LIST_PAIR(SORT_IS_DEFAULT, "is_default", "is_default"),
    MS_LIST_PAIR(SORT_CREATED_AT, "created_at", "created_at"),
    MS_LIST_PAIR(SORT_UPDATED_AT, "updated_at", "updated_at"),

    /* ---- OAuth 2.0 (db_oauth2.c) ---- */
    /* A server's OAuth side. Secrets hex-encoded (decrypted by the caller);
     * the expiry as seconds left and the last attempt as milliseconds ago,
     * both on the database's clock, which every host shares. */
    [ST_OA_GET] =
        {"oa_get",
         "SELECT id, auth_type = 'oauth2', client_id, authorization_url, token_url, scope,"
         " encode(secret_key_enc, 'hex'), encode(access_token_enc, 'hex'),"
         " encode(refresh_token_enc, 'hex'),"
         " floor(extract(epoch FROM access_token_expires_at - now()))::bigint,"
         " oauth2_status, extract(epoch FROM oauth2_last_attempt_at)::text,"
         " floor(extract(epoch FROM oauth2_last_attempt_at) * 1000)::bigint,"
         " oauth2_last_error_code, oauth2_last_error_description, oauth2_granted_scope"
         " FROM mail_server WHERE id = $1"},
    /* Inside a short transaction before ST_OA_LOCK: the session's statement
     * and lock timeouts are too short to wait for a provider call. */
    [ST_OA_LOCK_TIMEOUTS] = {"oa_lock_timeouts", "SELECT set_config('statement_timeout', $1, true),"
                                                 " set_config('lock_timeout', $1, true)"},
    /* The per-server refresh lock: a session-level advisory lock in class
     * OA_LOCK_CLASS, keyed by the id (ids above 2^31 share keys, which only
     * serializes a little more). */
    [ST_OA_LOCK] = {"oa_lock", "SELECT pg_advisory_lock(" OA_LOCK_CLASS ", " OA_LOCK_KEY ")"},
    [ST_OA_UNLOCK] = {"oa_unlock", "SELECT pg_advisory_unlock(" OA_LOCK_CLASS ", " OA_LOCK_KEY ")"},
    [ST_OA_UNLOCK_ALL] = {"oa_unlock_all", "SELECT pg_advisory_unlock_all()"},
    /* $1 id, $2 token_url and $3 client_id the tokens were requested with
     * (a server whose destination changed meanwhile keeps nothing),
     * $4 access token (encrypted), $5 expires_in seconds or NULL,
     * $6 refresh token (encrypted) or NULL to keep the stored one,
     * $7 the granted scope or NULL (unknown). */
    [ST_OA_STORE_TOKENS] = {"oa_store_tokens",
                            "UPDATE mail_server SET access_token_enc = $4,"
                            " access_token_expires_at = now() + $5::bigint * interval '1 second',"
                            " refresh_token_enc = COALESCE($6, refresh_token_enc),"
                            " oauth2_granted_scope = $7,"
                            " oauth2_status = 'connected', oauth2_last_refreshed_at = now(),"
                            " oauth2_last_attempt_at = now(), oauth2_last_error_code = NULL,"
                            " oauth2_last_error_description = NULL, version = version + 1,"
                            " updated_at = now()"
                            " WHERE id = $1 AND auth_type = 'oauth2' AND token_url = $2"
                            " AND client_id = $3 RETURNING id"},
    /* $1-$3 as above, $4 status or NULL to keep it, $5 code, $6 description. */
    [ST_OA_STORE_FAILURE] = {"oa_store_failure",
                             "UPDATE mail_server SET oauth2_status = COALESCE($4, oauth2_status),"
                             " oauth2_last_error_code = $5, oauth2_last_error_description = $6,"
                             " oauth2_last_attempt_at = now(), version = version + 1,"
                             " updated_at = now()"
                             " WHERE id = $1 AND auth_type = 'oauth2' AND token_url = $2"
                             " AND client_id = $3 RETURNING id"},
    /* $1 SHA-256 of the state, $2 server, $3 actor, $4 verifier
     * (encrypted), $5 lifetime in seconds, $6 SHA-256 of the browser's
     * cookie, $7-$9 the server's token URL, client id and scope. */
    [ST_OA_STATE_INSERT] = {"oa_state_insert",
                            "INSERT INTO oauth2_state (state_hash, server_id, actor,"
                            " code_verifier_enc, expires_at, browser_hash, token_url, client_id,"
                            " scope)"
                            " VALUES ($1, $2, $3, $4, now() + $5::integer * interval '1 second',"
                            " $6, $7, $8, $9)"},
    /* Single use, atomically: of two concurrent consumers the second finds
     * used_at set when it re-checks the row it waited for. Only from the
     * browser that started the flow ($2: the SHA-256 of its cookie; NULL
     * never matches): any other request leaves the row as it is. The
     * verifier is returned from the row as it was, and cleared. */
    [ST_OA_STATE_CONSUME] =
        {"oa_state_consume",
         "UPDATE oauth2_state AS s SET used_at = now(), code_verifier_enc = NULL"
         " FROM oauth2_state AS old"
         " WHERE s.state_hash = $1 AND old.state_hash = s.state_hash"
         " AND s.used_at IS NULL AND s.expires_at > now() AND s.browser_hash = $2"
         " RETURNING s.server_id, s.actor, encode(old.code_verifier_enc, 'hex'),"
         " s.token_url, s.client_id, s.scope"},
    /* Not consumed: whether it is still live (then the browser was not the
     * one that started it). */
    [ST_OA_STATE_PEEK] = {"oa_state_peek",
                          "SELECT server_id, used_at IS NULL AND expires_at > now()"
                          " FROM oauth2_state WHERE state_hash = $1"},
    [ST_OA_STATE_PURGE] = {"oa_state_purge",
                           "DELETE FROM oauth2_state"
                           " WHERE expires_at < now() - $1::integer * interval '1 second'"},

    /* ---- the SMTP connection test (db_smtp_test.c, sql/004_smtp_test.sql) ---- */
    /* The stored password of server $1 as it is at version $2 (no row when
     * the server changed since it was read), hex-encoded. */
    [ST_ST_PASSWORD] = {"st_password", "SELECT encode(password_enc, 'hex') FROM mail_server"
                                       " WHERE id = $1 AND version = $2"},
    /* One more test in bucket $1: the hits of its current window (a minute
     * from its first test) and the seconds until that window ends. */
    [ST_ST_RATE_HIT] = {"st_rate_hit",
                        "INSERT INTO smtp_test_rate AS r (bucket, window_start, hits)"
                        " VALUES ($1, now(), 1) ON CONFLICT (bucket) DO UPDATE SET"
                        " window_start = CASE WHEN r.window_start > now() - interval '1 minute'"
                        " THEN r.window_start ELSE now() END,"
                        " hits = CASE WHEN r.window_start > now() - interval '1 minute'"
                        " THEN r.hits + 1 ELSE 1 END"
                        " RETURNING hits, greatest(1, ceil(extract(epoch FROM"
                        " r.window_start + interval '1 minute' - now())))::integer"},
    [ST_ST_RATE_PURGE] = {"st_rate_purge", "DELETE FROM smtp_test_rate"
                                           " WHERE window_start < now() - interval '1 hour'"},
    /* The last test of server $1, unless it changed since it was read at
     * version $2 (then the outcome belongs to settings it no longer has).
     * Neither version nor updated_at moves: a test is not an edit. */
    [ST_ST_STORE_LAST] = {"st_store_last",
                          "UPDATE mail_server SET last_test_at = now(), last_test_ok = $3,"
                          " last_test_stage = $4, last_test_error_code = $5"
                          " WHERE id = $1 AND version = $2"},

    /* ---- the audit trail (db_audit.c, sql/006_audit.sql) ---- */
    /* $1 actor, $2 action, $3 server id, $4 its name (NULL: as stored now,
     * in this transaction), $5 request id, $6 client address ("" or NULL:
     * none), $7 details (NULL: {}). */
    [ST_AU_RECORD] = {"au_record",
                      "INSERT INTO audit_event (actor, action, mail_server_id, mail_server_name,"
                      " request_id, client_address, details)"
                      " VALUES ($1, $2, $3::bigint,"
                      " COALESCE($4, (SELECT name FROM mail_server WHERE id = $3::bigint)),"
                      " NULLIF($5, ''), NULLIF($6, ''), COALESCE($7::jsonb, '{}'::jsonb))"},
    /* Newest first; each filter NULL when not given: $1 server, $2 actor,
     * $3 action, $4 since, $5 until (inclusive), $6 the cursor's last id
     * (keyset: rows added meanwhile have larger ids and never shift a
     * page), $7 the page size. */
    [ST_AU_LIST] = {"au_list",
                    "SELECT id, to_char(at AT TIME ZONE 'UTC',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), actor, action, mail_server_id,"
                    " mail_server_name, request_id, client_address, details::text"
                    " FROM audit_event"
                    " WHERE ($1::bigint IS NULL OR mail_server_id = $1::bigint)"
                    " AND ($2::text IS NULL OR actor = $2::text)"
                    " AND ($3::text IS NULL OR action = $3::text)"
                    " AND ($4::timestamptz IS NULL OR at >= $4::timestamptz)"
                    " AND ($5::timestamptz IS NULL OR at <= $5::timestamptz)"
                    " AND ($6::bigint IS NULL OR id < $6::bigint)"
                    " ORDER BY id DESC LIMIT $7"},
    /* Retention (mailsrv-tool audit-prune) only: the service's role may
     * neither become the owner nor delete events. The session becomes the
     * schema's owner (SET ROLE, as a function: a prepared statement cannot
     * be a SET), then deletes the oldest events, at most $2 per call, older
     * than $1 days. */
    [ST_AU_AS_OWNER] = {"au_as_owner", "SELECT set_config('role', 'mailsrv_owner', false)"},
    [ST_AU_PRUNE] = {"au_prune", "DELETE FROM audit_event WHERE id IN (SELECT id FROM audit_event"
                                 " WHERE at < now() - $1::integer * interval '1 day'"
                                 " ORDER BY at LIMIT $2::integer)"},
    /* Key rotation: the stored secrets a page at a time (keyset by the
     * key), and each row rewritten alone, only while it still holds the
     * ciphertexts that were read (IS NOT DISTINCT FROM: a NULL stays NULL);
     * a NULL new value keeps the column. No other column changes: the
     * secret's value, the row's version and its ETag stay what they were. */
    [ST_RW_MS_PAGE] = {"rw_ms_page",
                       "SELECT id, encode(password_enc, 'hex'), encode(secret_key_enc, 'hex'),"
                       " encode(access_token_enc, 'hex'), encode(refresh_token_enc, 'hex')"
                       " FROM mail_server WHERE id > $1::bigint ORDER BY id LIMIT $2::integer"},
    [ST_RW_MS_UPDATE] = {"rw_ms_update",
                         "UPDATE mail_server SET password_enc = coalesce($2, password_enc),"
                         " secret_key_enc = coalesce($3, secret_key_enc),"
                         " access_token_enc = coalesce($4, access_token_enc),"
                         " refresh_token_enc = coalesce($5, refresh_token_enc)"
                         " WHERE id = $1::bigint"
                         " AND password_enc IS NOT DISTINCT FROM decode($6, 'hex')"
                         " AND secret_key_enc IS NOT DISTINCT FROM decode($7, 'hex')"
                         " AND access_token_enc IS NOT DISTINCT FROM decode($8, 'hex')"
                         " AND refresh_token_enc IS NOT DISTINCT FROM decode($9, 'hex')"},
    [ST_RW_STATE_PAGE] = {"rw_state_page",
                          "SELECT encode(state_hash, 'hex'), encode(code_verifier_enc, 'hex')"
                          " FROM oauth2_state WHERE code_verifier_enc IS NOT NULL"
                          " AND state_hash > decode($1, 'hex') ORDER BY state_hash"
                          " LIMIT $2::integer"},
    [ST_RW_STATE_UPDATE] = {"rw_state_update", "UPDATE oauth2_state SET code_verifier_enc = $2"
                                               " WHERE state_hash = decode($1, 'hex')"
                                               " AND code_verifier_enc = decode($3, 'hex')"},
};

int db_statement_reads_only(int stmt)
{
	switch (stmt) {
	case ST_HEALTH:
	case ST_MS_GET:
	case ST_MS_GET_DEFAULT:
	case ST_MS_COUNT:
	case ST_ST_PASSWORD:
	case ST_AU_LIST:
	case ST_RW_MS_PAGE:
	case ST_RW_STATE_PAGE:
		return 1;
	default:
		/* not ST_OA_GET: the refresh flow reads it under its session lock */
		return stmt >= ST_MS_LIST_FIRST && stmt <= ST_MS_LIST_LAST;
	}
}

int db_statement_wait_ms(int stmt)
{
	/* The refresh lock waits up to OAUTH2_LOCK_WAIT_MS (ST_OA_LOCK_TIMEOUTS
	 * raises the statement timeout to that for it). */
	if (stmt == ST_OA_LOCK)
		return OAUTH2_LOCK_WAIT_MS + DB_ANSWER_MARGIN_MS;
	return DB_STATEMENT_TIMEOUT_MS + DB_ANSWER_MARGIN_MS;
}

const size_t db_statement_count = sizeof(db_statements) / sizeof(db_statements[0]);

_Static_assert(sizeof(db_statements) / sizeof(db_statements[0]) == ST__COUNT,
               "every statement id has its statement");
