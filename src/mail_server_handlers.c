/*
 * mail_server_handlers.c - the /api/v1/mail-servers resource (docs/api.md,
 * "Endpoints"): list, create, get, replace, patch, delete, batch delete and
 * the default server. Each change runs in one transaction; a move of the
 * default takes the default lock first, so concurrent moves serialize and
 * the partial unique index never fires.
 */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "arena.h"
#include "db.h"
#include "db_audit.h"
#include "db_mail_server.h"
#include "handlers.h"
#include "http.h"
#include "http_db.h"
#include "json.h"
#include "mail_server.h"
#include "mailsrv_limits.h"
#include "router.h"

/* The listing's sort keys in enum ms_sort order (NULL-terminated for the
 * router's keyword check). */
static const char *const sort_names[SORT__COUNT + 1] = {
    [SORT_NAME] = "name",
    [SORT_SERVER] = "server",
    [SORT_PORT] = "port",
    [SORT_SENDER_NAME] = "sender_name",
    [SORT_SENDER_EMAIL] = "sender_email",
    [SORT_IS_DEFAULT] = "is_default",
    [SORT_CREATED_AT] = "created_at",
    [SORT_UPDATED_AT] = "updated_at",
    [SORT__COUNT] = NULL,
};

/* GET /mail-servers: a substring filter, a sort key (a leading '-' sorts
 * descending) and a page; in enum ms_list_param order. */
static const struct input_field list_params[] = {
    [MS_LIST_Q] = {.name = "q", .kind = IN_TEXT, .max = LIST_Q_MAX_CHARS},
    [MS_LIST_SORT] = {.name = "sort",
                      .kind = IN_KEYWORD,
                      .flags = IN_SIGNED,
                      .words = sort_names,
                      .dflt = SORT_NAME},
    [MS_LIST_LIMIT] = {.name = "limit",
                       .kind = IN_INT,
                       .min = 1,
                       .max = LIST_LIMIT_MAX,
                       .dflt = LIST_LIMIT_DEFAULT},
    [MS_LIST_OFFSET] = {.name = "offset", .kind = IN_INT, .min = 0, .max = LIST_OFFSET_MAX},
};
const struct input_decl ms_list_query = {list_params, sizeof(list_params) / sizeof(list_params[0]),
                                         0, NULL};

/* POST /mail-servers/batch-delete: one transaction over 1..BATCH_DELETE_MAX_IDS
 * ids. */
static const struct input_field batch_fields[] = {
    [MS_BATCH_IDS] = {.name = "ids",
                      .kind = IN_IDS,
                      .flags = IN_REQUIRED,
                      .min = 1,
                      .max = BATCH_DELETE_MAX_IDS},
};
const struct input_decl ms_batch_delete_body = {
    batch_fields, sizeof(batch_fields) / sizeof(batch_fields[0]), 0, "batch delete"};

/* Answer one server with its ETag. */
static err_t respond_row(struct ctx *c, int status, const struct ms_row *r)
{
	ms_row_to_json(c->out, r);
	http_header(c, "ETag", arena_printf(c->arena, "\"%lld\"", r->version));
	return http_json(c, status);
}

/* ---- the audit trail ---- */

/* The event of a server that became the default (from: the one that was, 0
 * for none). */
static err_t audit_default_moved(struct ctx *c, long long from, long long to, const char *name)
{
	struct audit_who who = audit_who_of(c);
	const char *details =
	    from > 0 ? arena_printf(c->arena, "{\"from\": %lld, \"to\": %lld}", from, to)
	             : arena_printf(c->arena, "{\"from\": null, \"to\": %lld}", to);
	if (details == NULL)
		return E_INTERNAL;
	return db_audit_record(c->w->db, &who, "mail_server.default_moved", to, name, details);
}

static int same_text(const char *x, const char *y)
{
	if (x == NULL || y == NULL)
		return x == y;
	return strcmp(x, y) == 0;
}

/* What a secret's change did to it: "set" (a value was given), "cleared"
 * (it was stored and is not any more), NULL (nothing). */
static const char *secret_change(const struct secret_in *in, int was_set, int is_set)
{
	if (in->op == SECRET_SET)
		return "set";
	if (was_set && !is_set)
		return "cleared";
	return NULL;
}

/* The details of an update: the names of the fields that changed, and for
 * secrets only whether they were set or cleared; never a value. */
static const char *update_details(struct arena *a, const struct ms_row *cur,
                                  const struct ms_row *row, const struct ms_change *ch)
{
	const char *fields = "", *secrets = "";
#define FIELD_(name, changed)                                                                      \
	if ((changed) && fields != NULL)                                                           \
		fields = arena_printf(a, "%s%s\"%s\"", fields, fields[0] ? ", " : "", name);
	FIELD_("name", !same_text(cur->name, row->name))
	FIELD_("server", !same_text(cur->server, row->server))
	FIELD_("port", cur->port != row->port)
	FIELD_("sender_name", !same_text(cur->sender_name, row->sender_name))
	FIELD_("sender_email", !same_text(cur->sender_email, row->sender_email))
	FIELD_("is_default", cur->is_default != row->is_default)
	FIELD_("enable_ssl", cur->enable_ssl != row->enable_ssl)
	FIELD_("auth_type", cur->auth != row->auth)
	FIELD_("username", !same_text(cur->username, row->username))
	FIELD_("client_id", !same_text(cur->client_id, row->client_id))
	FIELD_("authorization_url", !same_text(cur->authorization_url, row->authorization_url))
	FIELD_("token_url", !same_text(cur->token_url, row->token_url))
	FIELD_("scope", !same_text(cur->scope, row->scope))
#define SECRET_(name)                                                                              \
	{                                                                                          \
		const char *what = secret_change(&ch->name, cur->name##_set, row->name##_set);     \
		FIELD_(#name, what != NULL)                                                        \
		if (what != NULL && secrets != NULL)                                               \
			secrets = arena_printf(a, "%s%s\"%s\": \"%s\"", secrets,                   \
			                       secrets[0] ? ", " : "", #name, what);               \
	}
	SECRET_(password)
	SECRET_(secret_key)
	SECRET_(access_token)
	SECRET_(refresh_token)
#undef SECRET_
#undef FIELD_
	if (fields == NULL || secrets == NULL)
		return NULL;
	return arena_printf(a, "{\"fields\": [%s], \"secrets\": {%s}}", fields, secrets);
}

/* ---- list ---- */

/* '%' + q with LIKE's wildcards and escape character escaped + '%'. */
static char *like_pattern(struct arena *a, const char *q, size_t len)
{
	char *p = arena_alloc(a, 2 * len + 3);
	if (p == NULL)
		return NULL;
	size_t o = 0;
	p[o++] = '%';
	for (size_t i = 0; i < len; i++) {
		if (q[i] == '%' || q[i] == '_' || q[i] == '\\')
			p[o++] = '\\';
		p[o++] = q[i];
	}
	p[o++] = '%';
	p[o] = '\0';
	return p;
}

err_t ms_handle_list(struct ctx *c)
{
	const struct input_value *q = &c->query[MS_LIST_Q], *sort = &c->query[MS_LIST_SORT];
	long long limit = c->query[MS_LIST_LIMIT].i, offset = c->query[MS_LIST_OFFSET].i;
	const char *pattern = NULL;
	if (q->len > 0 && (pattern = like_pattern(c->arena, q->s, q->len)) == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");

	struct ms_row *rows;
	size_t n;
	long long total;
	err_t e = db_ms_list(c->w->db, c->arena, pattern, (enum ms_sort)sort->i, sort->negated,
	                     (int)limit, (long)offset, &rows, &n, &total);
	if (e != E_OK)
		return http_reject_db(c, e, DB_READ);
	struct json_out *o = c->out;
	json_out_object_open(o);
	json_out_key(o, "items");
	json_out_array_open(o);
	for (size_t i = 0; i < n; i++)
		ms_row_to_json(o, &rows[i]);
	json_out_array_close(o);
	json_out_key(o, "total");
	json_out_int(o, total);
	json_out_key(o, "limit");
	json_out_int(o, limit);
	json_out_key(o, "offset");
	json_out_int(o, offset);
	json_out_object_close(o);
	return http_json(c, 200);
}

/* ---- create ---- */

err_t ms_read_create(struct ctx *c)
{
	struct ms_input *in = arena_alloc(c->arena, sizeof(*in));
	if (in == NULL)
		return http_reject(c, E_INTERNAL, "out of memory");
	err_t e = ms_input_parse(c, c->body, MS_CREATE, NULL, in);
	if (e != E_OK)
		return http_reject(c, e, "the mail server has invalid fields");
	c->input = in;
	return E_OK;
}

err_t ms_handle_create(struct ctx *c)
{
	struct ms_change ch;
	struct ms_row row;
	struct db *db = c->w->db;
	ms_plan_change(NULL, c->input, &ch);

	/* Every step is a write of the data layer: its failure is mapped once,
	 * at out. */
	long long id, from = 0;
	struct audit_who who = audit_who_of(c);
	err_t e;
	if ((e = db_begin(db)) != E_OK)
		goto out;
	if (ch.move_default && ((e = db_ms_lock_default(db)) != E_OK ||
	                        (e = db_ms_unset_default(db, 0, &from)) != E_OK))
		goto out;
	if ((e = db_ms_next_id(db, &id)) != E_OK)
		goto out;
	if ((e = db_ms_insert(db, c->arena, c->w->app->keyring, id, &ch, &row)) != E_OK)
		goto out;
	/* The events in the change's transaction: both or neither. */
	if ((e = db_audit_record(db, &who, "mail_server.created", row.id, row.name, NULL)) != E_OK)
		goto out;
	if (ch.move_default && (e = audit_default_moved(c, from, row.id, row.name)) != E_OK)
		goto out;
	e = db_commit(db);
out:
	if (e != E_OK) {
		e = http_reject_db(c, e, DB_WRITE);
		db_rollback(db);
		return e;
	}
	http_header(c, "Location", arena_printf(c->arena, "/api/v1/mail-servers/%lld", row.id));
	return respond_row(c, 201, &row);
}

/* ---- get ---- */

err_t ms_handle_get(struct ctx *c)
{
	struct ms_row row;
	int found;
	err_t e = db_ms_get(c->w->db, c->arena, c->id, 0, &row, &found);
	if (e != E_OK)
		return http_reject_db(c, e, DB_READ);
	if (!found)
		return http_reject(c, E_NOT_FOUND, "no mail server has this id");
	return respond_row(c, 200, &row);
}

err_t ms_handle_get_default(struct ctx *c)
{
	struct ms_row row;
	int found;
	err_t e = db_ms_get_default(c->w->db, c->arena, &row, &found);
	if (e != E_OK)
		return http_reject_db(c, e, DB_READ);
	if (!found)
		return http_reject(c, E_NOT_FOUND, "no mail server is marked as the default");
	return respond_row(c, 200, &row);
}

/* ---- replace, patch, delete ---- */

/* Lock the server's row until the transaction ends and check If-Match
 * against its version (RFC 9110 section 13.1.1). */
static err_t lock_current(struct ctx *c, struct ms_row *cur)
{
	int found;
	err_t e = db_ms_get(c->w->db, c->arena, c->id, 1, cur, &found);
	if (e != E_OK)
		return http_reject_db(c, e, DB_READ);
	if (!found)
		return http_reject(c, E_NOT_FOUND, "no mail server has this id");
	if (c->req->if_match != NULL && !if_match_ok(c->req->if_match, cur->version))
		return http_reject(
		    c, E_PRECONDITION_FAILED,
		    "the mail server has changed since it was read (If-Match does not match)");
	return E_OK;
}

/*
 * One update transaction: lock the row, check If-Match, build the input
 * (PUT: the body; PATCH: the body merged onto the row), apply the rules,
 * move the default if asked, write. The default lock is taken before the
 * row lock whenever the request may mark this server as default, so two
 * requests never wait on each other in opposite orders.
 */
static err_t update(struct ctx *c, int patch)
{
	struct db *db = c->w->db;
	struct ms_row cur, row;
	struct ms_input in;
	struct ms_change ch;
	const struct json_value *isdef = json_get(c->body, "is_default");
	int may_mark = isdef != NULL && isdef->type == JSON_BOOL && isdef->u.boolean;

	/* Each step sets the problem of its own failure (http_reject_db for the
	 * data layer's); out only rolls back. */
	err_t e = http_reject_db(c, db_begin(db), DB_WRITE);
	if (e != E_OK)
		goto out;
	if (may_mark && (e = http_reject_db(c, db_ms_lock_default(db), DB_WRITE)) != E_OK)
		goto out;
	if ((e = lock_current(c, &cur)) != E_OK)
		goto out;
	const struct json_value *body = c->body;
	if (patch && (e = ms_merge_patch(c, &cur, c->body, &body)) != E_OK)
		goto out;
	if ((e = ms_input_parse(c, body, MS_REPLACE, &cur, &in)) != E_OK) {
		e = http_reject(c, e, "the mail server has invalid fields");
		goto out;
	}
	ms_plan_change(&cur, &in, &ch);
	long long from = 0;
	if (ch.move_default &&
	    (e = http_reject_db(c, db_ms_unset_default(db, c->id, &from), DB_WRITE)) != E_OK)
		goto out;
	e = db_ms_update(db, c->arena, c->w->app->keyring, c->id, &ch, &row);
	if ((e = http_reject_db(c, e, DB_WRITE)) != E_OK)
		goto out;
	const char *details = update_details(c->arena, &cur, &row, &ch);
	struct audit_who who = audit_who_of(c);
	if (details == NULL) {
		e = http_reject(c, E_INTERNAL, "out of memory");
		goto out;
	}
	e = db_audit_record(db, &who, "mail_server.updated", row.id, row.name, details);
	if ((e = http_reject_db(c, e, DB_WRITE)) != E_OK)
		goto out;
	if (ch.move_default &&
	    (e = http_reject_db(c, audit_default_moved(c, from, row.id, row.name), DB_WRITE)) !=
	        E_OK)
		goto out;
	e = http_reject_db(c, db_commit(db), DB_WRITE);
out:
	if (e != E_OK) {
		db_rollback(db);
		return e;
	}
	return respond_row(c, 200, &row);
}

err_t ms_handle_replace(struct ctx *c)
{
	return update(c, 0);
}

err_t ms_handle_patch(struct ctx *c)
{
	return update(c, 1);
}

err_t ms_handle_delete(struct ctx *c)
{
	struct db *db = c->w->db;
	struct ms_row cur;
	int deleted = 0;
	/* As in update: each step sets its own problem; out only rolls back. */
	err_t e = http_reject_db(c, db_begin(db), DB_WRITE);
	if (e != E_OK)
		goto out;
	if ((e = lock_current(c, &cur)) != E_OK)
		goto out;
	if ((e = http_reject_db(c, db_ms_delete(db, c->id, &deleted), DB_WRITE)) != E_OK)
		goto out;
	struct audit_who who = audit_who_of(c);
	e = db_audit_record(db, &who, "mail_server.deleted", cur.id, cur.name, NULL);
	if ((e = http_reject_db(c, e, DB_WRITE)) != E_OK)
		goto out;
	e = http_reject_db(c, db_commit(db), DB_WRITE);
out:
	if (e != E_OK) {
		db_rollback(db);
		return e;
	}
	http_empty(c, 204);
	return E_OK;
}

/* ---- batch delete ---- */

static int cmp_id(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

err_t ms_handle_batch_delete(struct ctx *c)
{
	/* Sorted and without repeats: the answer lists each id once. */
	const long long *want = c->fields[MS_BATCH_IDS].ids;
	size_t u = c->fields[MS_BATCH_IDS].nids;
	long long *gone;
	const char **names;
	size_t ngone;
	struct db *db = c->w->db;
	struct audit_who who = audit_who_of(c);
	/* One transaction: the delete and one event per deleted server. */
	err_t e = db_begin(db);
	if (e == E_OK)
		e = db_ms_batch_delete(db, c->arena, want, u, &gone, &names, &ngone);
	for (size_t i = 0; e == E_OK && i < ngone; i++)
		e = db_audit_record(db, &who, "mail_server.deleted", gone[i], names[i], NULL);
	if (e == E_OK)
		e = db_commit(db);
	if (e != E_OK) {
		e = http_reject_db(c, e, DB_WRITE);
		db_rollback(db);
		return e;
	}
	qsort(gone, ngone, sizeof(*gone), cmp_id);

	struct json_out *o = c->out;
	json_out_object_open(o);
	json_out_key(o, "deleted");
	json_out_array_open(o);
	for (size_t i = 0; i < ngone; i++)
		json_out_int(o, gone[i]);
	json_out_array_close(o);
	json_out_key(o, "not_found");
	json_out_array_open(o);
	for (size_t i = 0, g = 0; i < u; i++) {
		while (g < ngone && gone[g] < want[i])
			g++;
		if (g == ngone || gone[g] != want[i])
			json_out_int(o, want[i]);
	}
	json_out_array_close(o);
	json_out_object_close(o);
	return http_json(c, 200);
}
