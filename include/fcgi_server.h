/*
 * fcgi_server.h - the FastCGI side: the listening socket and a worker
 * process's pool of threads. The only interface to libfcgi.
 */
#ifndef MAILSRV_FCGI_SERVER_H
#define MAILSRV_FCGI_SERVER_H

#include <stddef.h>

struct app;

/* Create the unix socket at path (a stale one is removed), mode 0660, group
 * `group` (NULL: unchanged) so that only nginx can connect (docs/design.md, "libfcgi 2.4.2":
 * libfcgi must never see a peer other than nginx). Returns the listening
 * descriptor or -1 with a message in err. */
int fcgi_listen_unix(const char *path, const char *group, char *err, size_t errlen);

/* The listening socket systemd passes (socket activation, sd_listen_fds(3)
 * semantics without libsystemd): when LISTEN_PID is this process's pid and
 * LISTEN_FDS is 1, descriptor 3, which must be a listening unix stream
 * socket (a TCP socket is refused). Returns it, 0 when no socket was passed
 * to this process, -1 with a message in err. Always removes LISTEN_FDS,
 * LISTEN_PID and LISTEN_FDNAMES from the environment. */
int fcgi_inherited_socket(char *err, size_t errlen);

/* Run a worker process: `threads` threads accept on listen_fd and serve
 * until SIGTERM/SIGINT, then drain in-flight requests within
 * SHUTDOWN_DEADLINE_S. Returns the process exit status. */
int fcgi_worker_process(const struct app *app, int listen_fd, int threads);

/* 1 once this process received SIGTERM/SIGINT and is draining: /readyz
 * answers 503 from then on. */
int fcgi_draining(void);

#endif
