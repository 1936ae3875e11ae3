/*
 * handlers.h - request handlers, one file per resource, and the input their
 * routes declare (router.h). A handler runs only after the router has
 * matched its route, authenticated the administrator, parsed the path id,
 * bounded and parsed the body, and checked and converted every declared
 * query parameter and body field: it reads c->id, c->query[...],
 * c->fields[...] and c->input, never the raw query string or body bytes.
 * (PUT and PATCH are the one exception by design: their field rules need
 * the stored row, so ms_input_parse reads c->body inside the update's
 * transaction.) It returns E_OK with the response set, or an err_t with
 * detail/errors for the one problem mapping.
 */
#ifndef MAILSRV_HANDLERS_H
#define MAILSRV_HANDLERS_H

#include "err.h"

struct ctx;
struct input_decl;

typedef err_t (*handler_fn)(struct ctx *c);

/* mail_server_handlers.c */
err_t ms_handle_list(struct ctx *c);
err_t ms_handle_create(struct ctx *c);
err_t ms_handle_get(struct ctx *c);
err_t ms_handle_replace(struct ctx *c);
err_t ms_handle_patch(struct ctx *c);
err_t ms_handle_delete(struct ctx *c);
err_t ms_handle_batch_delete(struct ctx *c);
err_t ms_handle_get_default(struct ctx *c);

/* GET /mail-servers: q, sort, limit, offset (c->query in this order). */
enum ms_list_param { MS_LIST_Q, MS_LIST_SORT, MS_LIST_LIMIT, MS_LIST_OFFSET };
extern const struct input_decl ms_list_query;
/* POST /mail-servers/batch-delete: {"ids": [...]} (c->fields). */
enum ms_batch_delete_field { MS_BATCH_IDS };
extern const struct input_decl ms_batch_delete_body;
/* POST /mail-servers: the body through the mail server field table
 * (ms_input_parse), leaving a struct ms_input in c->input. */
err_t ms_read_create(struct ctx *c);

/* oauth2_handlers.c */
err_t oauth2_handle_authorize(struct ctx *c);
err_t oauth2_handle_callback(struct ctx *c);
err_t oauth2_handle_refresh(struct ctx *c);

/* GET /oauth2/callback: state, code, error, error_description (c->query;
 * a provider's other parameters are ignored). */
enum oauth2_callback_param { CB_STATE, CB_CODE, CB_ERROR, CB_ERROR_DESCRIPTION };
extern const struct input_decl oauth2_callback_query;

/* smtp_test_handlers.c: the connection test. The routes' body readers
 * leave a struct smtp_test_input in c->input. */
err_t smtp_read_test(struct ctx *c);
err_t smtp_read_settings(struct ctx *c);
err_t smtp_handle_test(struct ctx *c);
err_t smtp_handle_test_settings(struct ctx *c);

/* audit_handlers.c: GET /audit-events, its query parameters in this
 * order, and their checks (exposed for the unit tests). */
err_t audit_handle_list(struct ctx *c);
enum audit_list_param {
	AU_LIST_SERVER,
	AU_LIST_ACTOR,
	AU_LIST_ACTION,
	AU_LIST_SINCE,
	AU_LIST_UNTIL,
	AU_LIST_LIMIT,
	AU_LIST_CURSOR
};
extern const struct input_decl audit_list_query;
struct arena;
struct input_value;
int audit_time_check(struct arena *a, const char *s, size_t len, struct input_value *v);
int audit_cursor_check(struct arena *a, const char *s, size_t len, struct input_value *v);

/* router.c: the probes outside /api/v1 (no token). livez_handle answers
 * without the database; readyz_handle (also /healthz) checks the database,
 * the schema version and that the process is not draining. */
err_t health_handle(struct ctx *c);
err_t livez_handle(struct ctx *c);
err_t readyz_handle(struct ctx *c);

/* 1 when the path is one of the probes (/livez, /readyz, /healthz): their
 * requests are not logged at info level. */
int router_is_probe(const char *path);

#endif
