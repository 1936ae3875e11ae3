/*
 * mail_server.h - the mail server resource: its stored row as the service
 * shows it, the validated input of a create/replace/patch, and the rules
 * that turn a request into the change to store (contract section 1).
 */
#ifndef MAILSRV_MAIL_SERVER_H
#define MAILSRV_MAIL_SERVER_H

#include <stddef.h>

#include "err.h"

struct ctx;
struct json_out;
struct json_value;

enum auth_type { AUTH_BASIC, AUTH_OAUTH2 };

/* A stored server as read back (strings in the request arena; NULL is SQL
 * NULL). Secrets are never read: only whether they are set. */
struct ms_row {
	long long id;
	const char *name;
	const char *server;
	int port;
	const char *sender_name;
	const char *sender_email;
	int is_default;
	int enable_ssl;
	enum auth_type auth;
	const char *username;
	int password_set;
	const char *client_id;
	const char *authorization_url;
	const char *token_url;
	const char *scope;
	int secret_key_set;
	int access_token_set;
	int refresh_token_set;
	const char *access_token_expires_at;
	const char *oauth2_status;
	const char *oauth2_last_refreshed_at;
	const char *oauth2_last_error_code;
	const char *oauth2_last_error_description;
	const char *created_at;
	const char *updated_at;
	long long version;
	/* the last connection test, read-only; last_test_at NULL: none */
	const char *last_test_at;
	int last_test_ok;
	const char *last_test_stage;
	const char *last_test_error_code;
};

/* What a request says about one secret. */
enum secret_op { SECRET_KEEP, SECRET_CLEAR, SECRET_SET };
struct secret_in {
	enum secret_op op; /* KEEP when the request omits it */
	const char *value; /* SET only */
	size_t len;
};

/* A validated create/replace body (PATCH is merged into one first). */
struct ms_input {
	const char *name;
	const char *server;
	int port;
	const char *sender_name;
	const char *sender_email;
	int is_default;
	int enable_ssl;
	enum auth_type auth;
	const char *username; /* NULL: none (empty means no login) */
	const char *client_id;
	const char *authorization_url;
	const char *token_url;
	const char *scope; /* NULL: none */
	struct secret_in password, secret_key, access_token, refresh_token;
};

/* The change to store: the input's plain fields plus, per secret, what
 * happens to the stored value, and the OAuth state. */
struct ms_change {
	const struct ms_input *in;
	struct secret_in password, secret_key, access_token, refresh_token;
	const char *oauth2_status; /* NULL for basic */
	int keep_oauth2_state;     /* keep expiry/last refresh/last error */
	int move_default;          /* unmark the other default first */
};

/* Which body a parse is for: a create needs the secret_key of an oauth2
 * server; a replace needs it only when the server switches to oauth2. */
enum ms_mode { MS_CREATE, MS_REPLACE };

/*
 * Validate a JSON body into in. cur is the stored row for MS_REPLACE (NULL
 * for MS_CREATE). Every failing field is recorded on c (field_error);
 * returns E_VALIDATION when any failed.
 */
err_t ms_input_parse(struct ctx *c, const struct json_value *body, enum ms_mode mode,
                     const struct ms_row *cur, struct ms_input *in);

/*
 * JSON merge patch (RFC 7396) of body onto cur's writable fields, giving a
 * full body for ms_input_parse. Secrets are taken from the patch alone, with
 * null kept (it clears, contract section 1). E_VALIDATION / E_INTERNAL.
 */
err_t ms_merge_patch(struct ctx *c, const struct ms_row *cur, const struct json_value *patch,
                     const struct json_value **merged);

/* Decide the stored change from cur (NULL on create) and in: the secret
 * rules (keep, clear on a changed destination, clear on a switch of auth
 * type) and the OAuth status. Pure. */
void ms_plan_change(const struct ms_row *cur, const struct ms_input *in, struct ms_change *out);

/* The representation (contract section 1, write-only secrets omitted). */
void ms_row_to_json(struct json_out *o, const struct ms_row *r);

#endif
