/*
 * handlers.h - request handlers, one file per resource. A handler sees a
 * context whose path id, query and JSON body the router has already bounded
 * and parsed; it returns E_OK with the response set, or an err_t with
 * detail/errors for the one problem mapping.
 */
#ifndef MAILSRV_HANDLERS_H
#define MAILSRV_HANDLERS_H

#include "err.h"

struct ctx;

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

/* oauth2_handlers.c */
err_t oauth2_handle_authorize(struct ctx *c);
err_t oauth2_handle_callback(struct ctx *c);
err_t oauth2_handle_refresh(struct ctx *c);

/* smtp_test_handlers.c */
err_t smtp_handle_test(struct ctx *c);
err_t smtp_handle_test_settings(struct ctx *c);

/* router.c */
err_t health_handle(struct ctx *c);

#endif
