/*
 * router.h - from a request context to its handler: the route table, the
 * bearer token, the method, the path id and the body (src/router.c).
 */
#ifndef MAILSRV_ROUTER_H
#define MAILSRV_ROUTER_H

#include "err.h"

struct ctx;

/* Route c->req and run its handler. E_OK with c->resp set, or the err_t
 * (with c->detail and c->errors) that app_handle turns into a problem. */
err_t router_dispatch(struct ctx *c);

#endif
