/*
 * db_audit.h - the audit trail (sql/006_audit.sql, docs/api.md "Audit
 * events"): one event per change, written by the data layer's caller inside
 * the change's own transaction, and the newest-first listing.
 */
#ifndef MAILSRV_DB_AUDIT_H
#define MAILSRV_DB_AUDIT_H

#include <stddef.h>

#include "err.h"

struct arena;
struct ctx;
struct db;

/* Who made a change and from where: the token's sub, nginx's request id
 * and the client address nginx saw. Strings are borrowed. */
struct audit_who {
	const char *actor;
	const char *request_id;     /* "" or NULL: none */
	const char *client_address; /* "" or NULL: none */
};

/* The request's administrator (src/audit_handlers.c). */
struct audit_who audit_who_of(const struct ctx *c);

/*
 * Record one event. name NULL: the server's name as it is now in this
 * transaction (looked up by id). details: a JSON object's text, NULL for
 * {}; never a secret. Run it inside the change's transaction so that both
 * commit or neither does.
 */
err_t db_audit_record(struct db *db, const struct audit_who *who, const char *action,
                      long long server_id, const char *name, const char *details);

/* One event as listed; strings in the arena. */
struct audit_row {
	long long id;
	const char *at; /* RFC 3339, UTC, milliseconds */
	const char *actor;
	const char *action;
	long long mail_server_id; /* 0: none */
	const char *mail_server_name;
	const char *request_id;     /* NULL: none */
	const char *client_address; /* NULL: none */
	const char *details;        /* a JSON object's text */
};

/* The listing's filters; NULL / 0 means not filtered. since and until are
 * RFC 3339 times already checked; before_id is the cursor's last id. */
struct audit_filter {
	long long mail_server_id;
	const char *actor;
	const char *action;
	const char *since;
	const char *until;
	long long before_id;
};

/* Newest first, at most limit rows (the caller asks one more to learn
 * whether another page follows). */
err_t db_audit_list(struct db *db, struct arena *a, const struct audit_filter *f, int limit,
                    struct audit_row **rows, size_t *n);

/* Retention, on a connection of a role that may SET ROLE mailsrv_owner:
 * become the owner, then delete at most batch events older than days (one
 * statement, its own transaction); *deleted says how many. */
err_t db_audit_as_owner(struct db *db);
err_t db_audit_prune(struct db *db, int days, int batch, long *deleted);

/* A JSON string literal of s (quotes and escapes), in the arena. */
char *audit_json_string(struct arena *a, const char *s);

#endif
