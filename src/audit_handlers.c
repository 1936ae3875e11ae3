/*
 * audit_handlers.c - GET /api/v1/audit-events (docs/api.md, "Audit
 * events"): who changed what, newest first, with filters and keyset paging,
 * and the request's administrator as the data layer records it.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_audit.h"
#include "handlers.h"
#include "http.h"
#include "http_db.h"
#include "json.h"
#include "mailsrv_limits.h"
#include "router.h"

struct audit_who audit_who_of(const struct ctx *c)
{
	struct audit_who w = {c->who.sub != NULL ? c->who.sub : "",
	                      c->req != NULL ? c->req->request_id : NULL,
	                      c->req != NULL ? c->req->client_address : NULL};
	return w;
}

/* The actions an event may have (sql/006_audit.sql), NULL-terminated for
 * the router's keyword check. */
static const char *const audit_actions[] = {
    "mail_server.created",
    "mail_server.updated",
    "mail_server.deleted",
    "mail_server.default_moved",
    "mail_server.tested",
    "oauth2.connected",
    "oauth2.refreshed",
    "oauth2.refresh_failed",
    "oauth2.reauthorization_required",
    NULL,
};

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

static int days_in(int year, int month)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : d[month - 1];
}

/*
 * RFC 3339 date-time (section 5.6): 2026-12-02T09:14:03(.123)?(Z|+01:00).
 * Every field is range-checked here, so that the database never sees a
 * time it would refuse; a leap second (:60) is not taken. v->s becomes the
 * value with 'T' and 'Z' in upper case.
 */
int audit_time_check(struct arena *a, const char *s, size_t len, struct input_value *v)
{
	int year, month, day, hour, min, sec, oh, om;
	if (len < 20 || len > AUDIT_TIME_MAX_BYTES || strlen(s) != len)
		return 0;
	if (!digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &month) || s[7] != '-' ||
	    !digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
	    !digits(s + 11, 2, &hour) || s[13] != ':' || !digits(s + 14, 2, &min) || s[16] != ':' ||
	    !digits(s + 17, 2, &sec))
		return 0;
	if (year < 1 || month < 1 || month > 12 || day < 1 || day > days_in(year, month) ||
	    hour > 23 || min > 59 || sec > 59)
		return 0;
	size_t i = 19;
	if (s[i] == '.') {
		size_t f = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f || i - f > 9)
			return 0;
	}
	if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
		/* UTC */
	} else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2, &oh) &&
	           s[i + 3] == ':' && digits(s + i + 4, 2, &om)) {
		if (oh > 23 || om > 59)
			return 0;
	} else {
		return 0;
	}
	char *copy = arena_strdup(a, s);
	if (copy == NULL)
		return 0;
	copy[10] = 'T';
	if (copy[len - 1] == 'z')
		copy[len - 1] = 'Z';
	v->s = copy;
	return 1;
}

/* The cursor: base64url of "e" and the last id of the page, opaque to
 * clients. */
static const char *cursor_of(struct arena *a, long long last_id)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "e%lld", last_id);
	return base64url_encode(a, buf, (size_t)n);
}

int audit_cursor_check(struct arena *a, const char *s, size_t len, struct input_value *v)
{
	unsigned char *raw;
	size_t n;
	if (len == 0 || len > AUDIT_CURSOR_MAX_BYTES || strlen(s) != len ||
	    base64url_decode(a, s, len, &raw, &n) != 0)
		return 0;
	if (n < 2 || n > 19 || raw[0] != 'e' || raw[1] == '0')
		return 0;
	long long id = 0;
	for (size_t i = 1; i < n; i++) {
		if (raw[i] < '0' || raw[i] > '9')
			return 0;
		id = id * 10 + (raw[i] - '0');
	}
	v->i = id;
	return 1;
}

/* A stored details object as it is (parsed from the database's jsonb text;
 * our details hold only strings, integers, booleans, arrays and objects). */
static void write_value(struct json_out *o, const struct json_value *v)
{
	switch (v->type) {
	case JSON_NULL:
		json_out_null(o);
		break;
	case JSON_BOOL:
		json_out_bool(o, v->u.boolean);
		break;
	case JSON_NUMBER:
		if (v->u.number.is_int)
			json_out_int(o, v->u.number.i);
		else
			json_out_null(o);
		break;
	case JSON_STRING:
		json_out_string(o, v->u.string.ptr, v->u.string.len);
		break;
	case JSON_ARRAY:
		json_out_array_open(o);
		for (size_t i = 0; i < v->u.array.count; i++)
			write_value(o, v->u.array.items[i]);
		json_out_array_close(o);
		break;
	case JSON_OBJECT:
		json_out_object_open(o);
		for (size_t i = 0; i < v->u.object.count; i++) {
			json_out_key(o, v->u.object.members[i].key);
			write_value(o, v->u.object.members[i].value);
		}
		json_out_object_close(o);
		break;
	}
}

static void write_details(struct json_out *o, struct arena *a, const char *text)
{
	struct json_value *v;
	char msg[64];
	if (text == NULL || json_parse(a, text, strlen(text), &v, msg, sizeof(msg)) != JSON_OK ||
	    v->type != JSON_OBJECT) {
		json_out_object_open(o);
		json_out_object_close(o);
		return;
	}
	write_value(o, v);
}

/* GET /audit-events: in enum audit_list_param order. */
static const struct input_field list_params[] = {
    [AU_LIST_SERVER] = {.name = "mail_server_id",
                        .kind = IN_INT,
                        .min = 1,
                        .max = 999999999999999999LL},
    [AU_LIST_ACTOR] = {.name = "actor", .kind = IN_TEXT, .max = AUDIT_ACTOR_MAX_CHARS},
    [AU_LIST_ACTION] = {.name = "action", .kind = IN_KEYWORD, .words = audit_actions},
    [AU_LIST_SINCE] = {.name = "since", .kind = IN_FUNC, .check = audit_time_check},
    [AU_LIST_UNTIL] = {.name = "until", .kind = IN_FUNC, .check = audit_time_check},
    [AU_LIST_LIMIT] = {.name = "limit",
                       .kind = IN_INT,
                       .min = 1,
                       .max = AUDIT_LIMIT_MAX,
                       .dflt = AUDIT_LIMIT_DEFAULT},
    [AU_LIST_CURSOR] = {.name = "cursor", .kind = IN_FUNC, .check = audit_cursor_check},
};
const struct input_decl audit_list_query = {list_params,
                                            sizeof(list_params) / sizeof(list_params[0]), 0, NULL};

err_t audit_handle_list(struct ctx *c)
{
	const struct input_value *q = c->query;
	struct audit_filter f = {0};
	f.mail_server_id = q[AU_LIST_SERVER].present ? q[AU_LIST_SERVER].i : 0;
	if (q[AU_LIST_ACTOR].present)
		f.actor = q[AU_LIST_ACTOR].s;
	if (q[AU_LIST_ACTION].present)
		f.action = audit_actions[q[AU_LIST_ACTION].i];
	if (q[AU_LIST_SINCE].present)
		f.since = q[AU_LIST_SINCE].s;
	if (q[AU_LIST_UNTIL].present)
		f.until = q[AU_LIST_UNTIL].s;
	if (q[AU_LIST_CURSOR].present)
		f.before_id = q[AU_LIST_CURSOR].i;
	int limit = (int)q[AU_LIST_LIMIT].i;

	/* One row more than the page: whether another page follows. */
	struct audit_row *rows;
	size_t n;
	err_t e = db_audit_list(c->w->db, c->arena, &f, limit + 1, &rows, &n);
	if (e != E_OK)
		return http_reject_db(c, e, DB_READ);
	int more = n > (size_t)limit;
	if (more)
		n = (size_t)limit;

	struct json_out *o = c->out;
	json_out_object_open(o);
	json_out_key(o, "items");
	json_out_array_open(o);
	for (size_t i = 0; i < n; i++) {
		const struct audit_row *r = &rows[i];
		json_out_object_open(o);
		json_out_key(o, "id");
		json_out_int(o, r->id);
		json_out_key(o, "at");
		json_out_cstring(o, r->at);
		json_out_key(o, "actor");
		json_out_cstring(o, r->actor);
		json_out_key(o, "action");
		json_out_cstring(o, r->action);
		json_out_key(o, "mail_server_id");
		if (r->mail_server_id > 0)
			json_out_int(o, r->mail_server_id);
		else
			json_out_null(o);
		json_out_key(o, "mail_server_name");
		json_out_cstring(o, r->mail_server_name);
		json_out_key(o, "request_id");
		json_out_cstring(o, r->request_id);
		json_out_key(o, "client_address");
		json_out_cstring(o, r->client_address);
		json_out_key(o, "details");
		write_details(o, c->arena, r->details);
		json_out_object_close(o);
	}
	json_out_array_close(o);
	json_out_key(o, "next_cursor");
	if (more && n > 0)
		json_out_cstring(o, cursor_of(c->arena, rows[n - 1].id));
	else
		json_out_null(o);
	json_out_object_close(o);
	return http_json(c, 200);
}
