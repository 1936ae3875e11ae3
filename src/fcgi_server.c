/*
 * fcgi_server.c - libfcgi behind our own types. Each thread owns its
 * FCGX_Request, its worker (arena, JSON writer, database connection) and
 * copies what it needs out of the request environment before finishing it
 * (docs/design.md, "libfcgi 2.4.2": no pointer into the environment survives FCGX_Finish_r).
 *
 * nginx keeps its connections (fastcgi_keep_conn on), and FCGX_Accept_r
 * would wait on an idle kept connection for its next request: so the threads
 * of a process wait in epoll_wait on one set that holds the listening socket
 * and every idle kept connection, each armed once, and hand libfcgi only a
 * connection that has a request (next_connection, docs/design.md,
 * "libfcgi 2.4.2"). Shutdown: SIGTERM is taken by sigwait in the process's
 * main thread, which sets `stopping`, ends the idle kept connections and
 * wakes the threads waiting in epoll_wait with SIGUSR2 (no SA_RESTART);
 * threads busy with a request are not signalled, they finish it first.
 *
 * Two things go around libfcgi for speed, each explained where it is done
 * (docs/performance.md): the lingering close is skipped once the input has
 * been read to its end (finish), and a response larger than libfcgi's 8 KiB
 * stream buffer is written as whole records in one writev (write_records).
 */
#include "fcgi_server.h"

#include <dirent.h>
#include <errno.h>
#include <fastcgi.h>
#include <fcntl.h>
#include <fcgiapp.h>
#include <grp.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "arena.h"
#include "crypto.h"
#include "http.h"
#include "log.h"
#include "mailsrv_limits.h"
#include "metrics.h"

/* The first descriptor systemd passes (SD_LISTEN_FDS_START in sd-daemon.h). */
#define LISTEN_FDS_START 3

int fcgi_inherited_socket(char *err, size_t errlen)
{
	const char *fds = getenv("LISTEN_FDS");
	const char *pid = getenv("LISTEN_PID");
	int mine = 0;
	long n = 0;
	if (fds != NULL && pid != NULL) {
		char *end;
		errno = 0;
		long p = strtol(pid, &end, 10);
		mine = errno == 0 && end != pid && *end == '\0' && p == (long)getpid();
		errno = 0;
		n = strtol(fds, &end, 10);
		if (errno != 0 || end == fds || *end != '\0')
			n = -1;
	}
	/* Never passed on: the workers and anything they run are not the
	 * process these variables were meant for. */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDNAMES");
	if (!mine)
		return 0; /* none, or meant for another process */
	if (n != 1) {
		snprintf(err, errlen, "LISTEN_FDS is \"%s\": exactly one socket is expected", fds);
		return -1;
	}
	int fd = LISTEN_FDS_START;
	int domain = 0, type = 0, listening = 0;
	socklen_t len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &(socklen_t){sizeof(int)}) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &(socklen_t){sizeof(int)}) != 0) {
		snprintf(err, errlen, "the inherited descriptor %d is not a socket: %s", fd,
		         strerror(errno));
		return -1;
	}
	/* Only nginx on this host may speak FastCGI to the service: a TCP
	 * socket would let anyone who reaches the port send records libfcgi
	 * trusts. */
	if (domain != AF_UNIX || type != SOCK_STREAM || !listening) {
		snprintf(err, errlen,
		         "the inherited socket must be a listening unix stream socket "
		         "(ListenStream= a path in the .socket unit)");
		return -1;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		snprintf(err, errlen, "could not set close-on-exec on the inherited socket: %s",
		         strerror(errno));
		return -1;
	}
	return fd;
}

int fcgi_listen_unix(const char *path, const char *group, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "socket path \"%s\" is too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	gid_t gid = (gid_t)-1;
	if (group != NULL) {
		struct group *gr = getgrnam(group);
		if (gr == NULL) {
			snprintf(err, errlen, "group \"%s\" does not exist", group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "could not create socket: %s", strerror(errno));
		return -1;
	}
	unlink(path);
	/* Created without any permission for others, then opened to the group:
	 * no moment exists in which another user could connect. */
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0) {
		snprintf(err, errlen, "could not bind socket \"%s\": %s", path, strerror(errno));
		goto fail;
	}
	if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) {
		snprintf(err, errlen, "could not set the group of \"%s\": %s", path,
		         strerror(errno));
		goto fail;
	}
	if (chmod(path, 0660) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, "could not listen on \"%s\": %s", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	unlink(path);
	return -1;
}

/* ---- one request ---- */

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 303:
		return "See Other";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	default:
		return "Unknown";
	}
}

/* The parameters the service reads. They are found in one pass over the
 * environment: FCGX_GetParam scans all of it (some 30 strings) per name. */
enum {
	P_REQUEST_METHOD,
	P_DOCUMENT_URI,
	P_QUERY_STRING,
	P_CONTENT_TYPE,
	P_CONTENT_LENGTH,
	P_HTTP_AUTHORIZATION,
	P_HTTP_IF_MATCH,
	P_REQUEST_ID,
	P_HTTP_COOKIE,
	P_REQUEST_ARRIVAL,
	P_REMOTE_ADDR,
	P__COUNT
};

#define PARAM_NAME(s)                                                                              \
	{                                                                                          \
		s, sizeof(s) - 1                                                                   \
	}
static const struct {
	const char *name;
	size_t len;
} param_names[P__COUNT] = {
    [P_REQUEST_METHOD] = PARAM_NAME("REQUEST_METHOD"),
    [P_DOCUMENT_URI] = PARAM_NAME("DOCUMENT_URI"),
    [P_QUERY_STRING] = PARAM_NAME("QUERY_STRING"),
    [P_CONTENT_TYPE] = PARAM_NAME("CONTENT_TYPE"),
    [P_CONTENT_LENGTH] = PARAM_NAME("CONTENT_LENGTH"),
    [P_HTTP_AUTHORIZATION] = PARAM_NAME("HTTP_AUTHORIZATION"),
    [P_HTTP_IF_MATCH] = PARAM_NAME("HTTP_IF_MATCH"),
    [P_REQUEST_ID] = PARAM_NAME("REQUEST_ID"),
    [P_HTTP_COOKIE] = PARAM_NAME("HTTP_COOKIE"),
    /* nginx's $msec (deploy/nginx.conf.template) */
    [P_REQUEST_ARRIVAL] = PARAM_NAME("REQUEST_ARRIVAL"),
    /* the client address nginx saw (fastcgi_params), for the audit trail */
    [P_REMOTE_ADDR] = PARAM_NAME("REMOTE_ADDR"),
};

/* vals[i]: the value of param_names[i] ("NAME=value" in envp), the first
 * one when repeated as with FCGX_GetParam, NULL when absent. */
static void scan_params(FCGX_ParamArray envp, const char *vals[P__COUNT])
{
	for (size_t i = 0; i < P__COUNT; i++)
		vals[i] = NULL;
	for (char **e = envp; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		if (eq == NULL)
			continue;
		size_t n = (size_t)(eq - *e);
		for (size_t i = 0; i < P__COUNT; i++) {
			if (n == param_names[i].len && memcmp(*e, param_names[i].name, n) == 0) {
				if (vals[i] == NULL)
					vals[i] = eq + 1;
				break;
			}
		}
	}
}

/* Copy a parameter into the arena (NULL when absent). */
static const char *param(struct arena *a, const char *v)
{
	return v ? arena_strdup(a, v) : NULL;
}

/* nginx's $request_id is 32 hex digits; accept any short token of safe
 * characters, nothing that could break a header or a log line. */
static const char *checked_request_id(struct arena *a, const char *v)
{
	if (v == NULL)
		return "";
	size_t n = strlen(v);
	if (n == 0 || n > REQUEST_ID_MAX_BYTES)
		return "";
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_' || ch == '.'))
			return "";
	}
	return arena_strdup(a, v);
}

/* An IPv4 or IPv6 address as text (hex digits, dots, colons; at most
 * CLIENT_ADDRESS_MAX_BYTES): anything else reads as "". */
static const char *checked_address(struct arena *a, const char *v)
{
	if (v == NULL)
		return "";
	size_t n = strlen(v);
	if (n == 0 || n > CLIENT_ADDRESS_MAX_BYTES)
		return "";
	for (size_t i = 0; i < n; i++) {
		char ch = v[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F') || ch == '.' || ch == ':'))
			return "";
	}
	return arena_strdup(a, v);
}

/* Fill req from the FastCGI request. -1 only when the arena is exhausted. */
static int read_request(struct arena *a, FCGX_Request *fr, struct http_request *req)
{
	const char *v[P__COUNT];
	scan_params(fr->envp, v);
	memset(req, 0, sizeof(*req));
	req->method = param(a, v[P_REQUEST_METHOD]);
	req->path = param(a, v[P_DOCUMENT_URI]);
	req->query = param(a, v[P_QUERY_STRING]);
	req->content_type = param(a, v[P_CONTENT_TYPE]);
	req->authorization = param(a, v[P_HTTP_AUTHORIZATION]);
	req->if_match = param(a, v[P_HTTP_IF_MATCH]);
	req->request_id = checked_request_id(a, v[P_REQUEST_ID]);
	req->cookie = param(a, v[P_HTTP_COOKIE]);
	req->arrival_ms = http_parse_msec(v[P_REQUEST_ARRIVAL]);
	req->client_address = checked_address(a, v[P_REMOTE_ADDR]);
	if (req->method == NULL)
		req->method = "GET";
	if (req->path == NULL)
		req->path = "/";
	if (req->query == NULL)
		req->query = "";
	if (req->content_type != NULL && req->content_type[0] == '\0')
		req->content_type = NULL;
	if (req->request_id == NULL || req->client_address == NULL)
		return -1;

	const char *cl = v[P_CONTENT_LENGTH];
	unsigned long long length = 0;
	if (cl != NULL && cl[0] != '\0') {
		char *end;
		errno = 0;
		length = strtoull(cl, &end, 10);
		if (errno != 0 || *end != '\0' || cl[0] == '-')
			length = (unsigned long long)MAX_BODY_BYTES + 1;
	}
	if (length > MAX_BODY_BYTES) {
		req->body_too_large = 1;
		return 0;
	}
	if (length > 0) {
		char *body = arena_alloc(a, (size_t)length + 1);
		if (body == NULL)
			return -1;
		size_t got = 0;
		while (got < length) {
			int n = FCGX_GetStr(body + got, (int)(length - got), fr->in);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		body[got] = '\0';
		req->body = body;
		req->body_len = got;
	}
	return 0;
}

/* The response head goes into a buffer, or (when it does not fit, which
 * our headers never make happen) straight into libfcgi's stream. */
struct text {
	char *buf;
	size_t len, cap;
	int overflow;
	FCGX_Stream *stream; /* non-NULL: write here instead */
};

static void text_put(struct text *t, const char *s)
{
	size_t n = strlen(s);
	if (t->stream != NULL) {
		FCGX_PutStr(s, (int)n, t->stream);
		return;
	}
	if (n > t->cap - t->len) {
		t->overflow = 1;
		return;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
}

/* n in decimal into buf (at least 21 bytes); returns buf. */
static const char *decimal(char *buf, size_t n)
{
	char *p = buf + 20;
	*p = '\0';
	do {
		*--p = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	return p;
}

/* The CGI response head, piece by piece (not FCGX_FPrintF: its vsnprintf
 * was a tenth of a GET's cost, docs/performance.md). */
static void build_head(struct text *t, const struct http_response *r)
{
	char num[21];
	text_put(t, "Status: ");
	text_put(t, decimal(num, (size_t)(r->status >= 100 && r->status <= 999 ? r->status : 500)));
	text_put(t, " ");
	text_put(t, reason(r->status));
	text_put(t, "\r\n");
	if (r->content_type != NULL) {
		text_put(t, "Content-Type: ");
		text_put(t, r->content_type);
		text_put(t, "\r\nContent-Length: ");
		text_put(t, decimal(num, r->body_len));
		text_put(t, "\r\n");
	}
	for (size_t i = 0; i < r->nheaders; i++) {
		text_put(t, r->headers[i].name);
		text_put(t, ": ");
		text_put(t, r->headers[i].value);
		text_put(t, "\r\n");
	}
	text_put(t, "\r\n");
}

/* writev all of iov[0..n), whatever the kernel takes at a time. */
static int writev_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/*
 * A response larger than libfcgi's 8 KiB stream buffer goes out as whole
 * FCGI_STDOUT records, up to DIRECT_RECORDS_PER_WRITE per writev, instead of
 * one record (and one nginx wake-up) per 8 KiB. libfcgi's stream stays empty,
 * so its closing records still come last. -1: the connection failed.
 */
#define FCGX_OUT_BUFFER_BYTES    8192
#define DIRECT_RECORDS_PER_WRITE 16

static int write_records(FCGX_Request *fr, const char *head, size_t head_len, const char *body,
                         size_t body_len)
{
	FCGI_Header hdrs[DIRECT_RECORDS_PER_WRITE];
	struct iovec iov[3 * DIRECT_RECORDS_PER_WRITE];
	const char *part[2] = {head, body};
	size_t left[2] = {head_len, body_len};
	int p = 0;
	while (left[0] + left[1] > 0) {
		int niov = 0, nrec = 0;
		while (nrec < DIRECT_RECORDS_PER_WRITE && left[0] + left[1] > 0) {
			size_t content = left[0] + left[1] > FCGI_MAX_LENGTH ? FCGI_MAX_LENGTH
			                                                     : left[0] + left[1];
			FCGI_Header *h = &hdrs[nrec++];
			h->version = FCGI_VERSION_1;
			h->type = FCGI_STDOUT;
			h->requestIdB1 = (unsigned char)((fr->requestId >> 8) & 0xff);
			h->requestIdB0 = (unsigned char)(fr->requestId & 0xff);
			h->contentLengthB1 = (unsigned char)((content >> 8) & 0xff);
			h->contentLengthB0 = (unsigned char)(content & 0xff);
			h->paddingLength = 0;
			h->reserved = 0;
			iov[niov].iov_base = h;
			iov[niov++].iov_len = sizeof(*h);
			while (content > 0) {
				while (left[p] == 0)
					p++;
				size_t n = left[p] < content ? left[p] : content;
				iov[niov].iov_base = (void *)part[p];
				iov[niov++].iov_len = n;
				part[p] += n;
				left[p] -= n;
				content -= n;
			}
		}
		if (writev_all(fr->ipcFd, iov, niov) != 0)
			return -1;
	}
	return 0;
}

/* The head, then the body unless head_only (HEAD: the GET answer's head,
 * Content-Length included, without its body, RFC 9110 section 9.3.2). */
static void write_response(FCGX_Request *fr, const struct http_response *r, int head_only)
{
	size_t body_len = head_only ? 0 : r->body_len;
	char buf[4096];
	struct text head = {buf, 0, sizeof(buf), 0, NULL};
	build_head(&head, r);
	if (head.overflow) {
		struct text direct = {NULL, 0, 0, 0, fr->out};
		build_head(&direct, r);
	} else if (head.len + body_len > FCGX_OUT_BUFFER_BYTES) {
		write_records(fr, head.buf, head.len, r->body, body_len);
		return;
	} else {
		FCGX_PutStr(head.buf, (int)head.len, fr->out);
	}
	if (body_len > 0)
		FCGX_PutStr(r->body, (int)body_len, fr->out);
}

static int is_head(const struct http_request *req)
{
	return req->method != NULL && strcmp(req->method, "HEAD") == 0;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Counted in the metrics once its answer is written (src/metrics.c). */
static void serve_one(struct worker *w, FCGX_Request *fr)
{
	struct http_request req;
	struct http_response resp;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (read_request(w->arena, fr, &req) != 0) {
		/* The arena could not hold the request's parameters and body. */
		app_reject(w, &req, &resp, E_PAYLOAD_TOO_LARGE,
		           "the request is too large to process");
		write_response(fr, &resp, is_head(&req));
		metrics_request(NULL, resp.status, seconds_since(&t0));
		return;
	}
	log_set_request_id(req.request_id);
	app_handle(w, &req, &resp);
	write_response(fr, &resp, is_head(&req));
	metrics_request(resp.route, resp.status, seconds_since(&t0));
	log_set_request_id(NULL);
}

/*
 * End the request without libfcgi's lingering close, which guards TCP peers
 * against a reset: over our unix socket a close loses nothing written. Only
 * unread input would show (as ECONNRESET in nginx), so the input is read to
 * its end first, and the linger is skipped (FCGX_Detach) only after a clean end.
 */
static void finish(FCGX_Request *fr)
{
	char sink[1024];
	size_t drained = 0;
	int n = -1;
	while (drained <= MAX_BODY_BYTES && (n = FCGX_GetStr(sink, (int)sizeof(sink), fr->in)) > 0)
		drained += (size_t)n;
	crypto_wipe(sink, sizeof(sink)); /* unread body bytes may be secrets */
	if (n == 0 && FCGX_GetError(fr->in) == 0)
		FCGX_Detach(fr);
	FCGX_Finish_r(fr);
}

/* ---- the worker process ---- */

static atomic_int stopping;

int fcgi_draining(void)
{
	return atomic_load(&stopping);
}

struct thread_slot {
	pthread_t thread;
	const struct app *app;
	int listen_fd;
	int epoll_fd;         /* the process's: the listening socket and idle kept connections */
	int threads;          /* of the process */
	atomic_int in_accept; /* blocked (or about to block) waiting for work */
	atomic_int serving;   /* the connection it serves, -1 for none */
	atomic_int done;
	int started;
};

/* New connections this process left in a row to a process holding fewer
 * (next_connection). */
#define ACCEPT_DEFERRALS_MAX 4
static atomic_int deferrals;

/* Watch fd for its next readiness, once: EPOLLONESHOT gives each event to
 * one thread, and nothing more comes from fd until it is armed again. */
static int arm(int epoll_fd, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.fd = fd};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return 0;
	if (errno != ENOENT)
		return -1;
	return epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * The next connection with a request waiting, or -1 (interrupted, or
 * nothing to do). A thread never waits on one connection: it waits until
 * the listening socket or any idle kept connection of this process is
 * readable, so an idle kept connection holds no thread (docs/design.md,
 * "libfcgi 2.4.2"). A new connection is accepted here and served at once:
 * nginx writes its request as soon as it connects.
 */
static int next_connection(struct thread_slot *ts)
{
	struct epoll_event ev;
	int n = epoll_wait(ts->epoll_fd, &ev, 1, -1);
	if (n <= 0) {
		if (n < 0 && errno != EINTR) {
			log_warning("could not wait for FastCGI connections: %s", strerror(errno));
			struct timespec ts_wait = {0, 10 * 1000 * 1000};
			nanosleep(&ts_wait, NULL);
		}
		return -1;
	}
	if (ev.data.fd != ts->listen_fd)
		return ev.data.fd;
	/* Every process is woken for a new connection and the first to run
	 * takes it, so one process could end up holding every kept
	 * connection while another idles. A process holding more connections
	 * than another one with a free thread leaves the connection to it, a
	 * few times at most in a row (the other one may be slow to run). */
	if (atomic_load(&deferrals) < ACCEPT_DEFERRALS_MAX &&
	    metrics_other_process_lighter(ts->threads, 1)) {
		atomic_fetch_add(&deferrals, 1);
		if (arm(ts->epoll_fd, ts->listen_fd) != 0)
			log_error("could not watch the FastCGI socket: %s", strerror(errno));
		sched_yield();
		return -1;
	}
	atomic_store(&deferrals, 0);
	int fd = accept4(ts->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	int err = errno;
	if (fd >= 0)
		metrics_connections(1);
	/* EINVAL: the master shut the listening socket down to stop (SIGTERM
	 * is on its way): it stays unarmed, or every thread would spin on it. */
	if (fd >= 0 || err != EINVAL) {
		if (arm(ts->epoll_fd, ts->listen_fd) != 0)
			log_error("could not watch the FastCGI socket: %s", strerror(errno));
	}
	if (fd < 0 && err != EAGAIN && err != EINTR && err != ECONNABORTED && err != EINVAL) {
		log_warning("could not accept a FastCGI connection: %s", strerror(err));
		struct timespec ts_wait = {0, 10 * 1000 * 1000};
		nanosleep(&ts_wait, NULL);
	}
	return fd;
}

static void *serve_thread(void *arg)
{
	struct thread_slot *ts = arg;
	struct worker w;
	FCGX_Request fr;
	if (worker_init(&w, ts->app) != 0) {
		log_error("could not start a worker thread: out of memory");
		atomic_store(&ts->done, 1);
		return NULL;
	}
	/* No listening socket of libfcgi's own: the connection is handed to
	 * FCGX_Accept_r ready (ipcFd), and where it would go back to accept()
	 * (the connection ended before a whole request) it fails instead. */
	FCGX_InitRequest(&fr, -1, FCGI_FAIL_ACCEPT_ON_INTR);
	while (!atomic_load(&stopping)) {
		/* Set before checking `stopping`: the main thread signals every
		 * thread whose flag is set until it leaves, so no wake-up is lost. */
		atomic_store(&ts->in_accept, 1);
		if (atomic_load(&stopping))
			break;
		int fd = next_connection(ts);
		atomic_store(&ts->serving, fd);
		atomic_store(&ts->in_accept, 0);
		if (fd < 0)
			continue;
		/* keepConnection set: FCGX_Accept_r first finishes the previous
		 * request, which must not close this connection; the request's
		 * own FCGI_KEEP_CONN flag then decides. */
		fr.ipcFd = fd;
		fr.keepConnection = 1;
		if (FCGX_Accept_r(&fr) < 0) {
			/* nginx closed a kept connection; libfcgi closed ours */
			metrics_connections(-1);
			atomic_store(&ts->serving, -1);
			continue;
		}
		metrics_thread_busy(1);
		serve_one(&w, &fr);
		finish(&fr);
		metrics_thread_busy(-1);
		arena_reset(w.arena);
		/* Kept (nginx asked, and nothing failed): watched again for the
		 * connection's next request; closed when stopping, or when
		 * another process holds two fewer and has a thread free (nginx
		 * reuses its most recent idle connections, so without this one
		 * process could serve every request at low load; the new
		 * connection nginx opens goes to the other, next_connection). */
		if (fr.ipcFd >= 0) {
			int kept = fr.ipcFd;
			fr.ipcFd = -1;
			if (atomic_load(&stopping) ||
			    metrics_other_process_lighter(ts->threads, 2) ||
			    arm(ts->epoll_fd, kept) != 0) {
				close(kept);
				metrics_connections(-1);
			}
		} else {
			metrics_connections(-1);
		}
		atomic_store(&ts->serving, -1);
	}
	atomic_store(&ts->in_accept, 0);
	FCGX_Free(&fr, 1);
	worker_free(&w);
	atomic_store(&ts->done, 1);
	return NULL;
}

/*
 * When the process stops: end every idle kept connection at once, so that
 * nginx sends nothing more on them (it sees the connection close and answers
 * from the other process, or 503 once no process accepts). The connections
 * a thread is serving are left alone: their answers are still written, and
 * the thread closes them after. The open descriptors are those of
 * /proc/self/fd; the idle connections are the ones the epoll set holds.
 */
static void end_idle_connections(int epoll_fd, int listen_fd, struct thread_slot *slots,
                                 int threads)
{
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	int dir_fd = dirfd(d), ended = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (*end != '\0' || end == e->d_name || fd < 0 || fd == listen_fd ||
		    fd == epoll_fd || fd == dir_fd)
			continue;
		int busy = 0;
		for (int i = 0; i < threads && !busy; i++)
			busy = slots[i].started && atomic_load(&slots[i].serving) == (int)fd;
		/* Only a descriptor the epoll set holds is a kept connection. */
		if (!busy && epoll_ctl(epoll_fd, EPOLL_CTL_DEL, (int)fd, NULL) == 0) {
			shutdown((int)fd, SHUT_RDWR);
			ended++;
		}
	}
	closedir(d);
	if (ended > 0)
		log_info("ended %d idle FastCGI connections", ended);
}

static void wake(int sig)
{
	(void)sig; /* only interrupts accept() */
}

int fcgi_worker_process(const struct app *app, int listen_fd, int threads)
{
	sigset_t stop_set;
	sigemptyset(&stop_set);
	sigaddset(&stop_set, SIGTERM);
	sigaddset(&stop_set, SIGINT);
	sigaddset(&stop_set, SIGHUP);
	pthread_sigmask(SIG_SETMASK, &stop_set, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wake; /* no SA_RESTART: epoll_wait() returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	/* Die with the master: an orphaned worker would hold the socket. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	/* No core file and no ptrace by other processes of the same user: a
	 * worker's memory holds the keys, decrypted passwords and tokens. (The
	 * systemd unit sets LimitCORE=0 as well.) root may still read
	 * /proc/<pid>, as the fault drills do. */
	if (prctl(PR_SET_DUMPABLE, 0) != 0) {
		log_error("could not make the worker process non-dumpable: %s", strerror(errno));
		return 1;
	}
	if (getppid() == 1)
		return 1;
	if (FCGX_Init() != 0) {
		log_error("could not initialize libfcgi");
		return 1;
	}

	/* One malloc arena for all threads, so what libcurl and OpenSSL keep
	 * after an outbound call is shared, not kept per thread (the figures:
	 * docs/performance.md). */
	mallopt(M_ARENA_MAX, 1);

	/* The listening socket is watched by every thread of the process, and
	 * accepted from without blocking (another process may take the
	 * connection first). */
	int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (epoll_fd < 0 ||
	    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK) != 0 ||
	    arm(epoll_fd, listen_fd) != 0) {
		log_error("could not watch the FastCGI socket: %s", strerror(errno));
		return 1;
	}
	struct thread_slot *slots = calloc((size_t)threads, sizeof(*slots));
	if (slots == NULL)
		return 1;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
	int started = 0;
	for (int i = 0; i < threads; i++) {
		slots[i].app = app;
		slots[i].listen_fd = listen_fd;
		slots[i].epoll_fd = epoll_fd;
		slots[i].threads = threads;
		atomic_init(&slots[i].serving, -1);
		if (pthread_create(&slots[i].thread, &attr, serve_thread, &slots[i]) == 0) {
			slots[i].started = 1;
			started++;
		}
	}
	pthread_attr_destroy(&attr);
	if (started == 0) {
		log_error("could not start any worker thread");
		free(slots);
		return 1;
	}
	log_info("worker process ready with %d threads", started);

	/* Until SIGTERM (SIGHUP has nothing to reload yet); every
	 * MALLOC_TRIM_INTERVAL_S free heap goes back to the kernel, since glibc
	 * keeps what an outbound call once used (docs/performance.md). */
	for (;;) {
		struct timespec trim_every = {MALLOC_TRIM_INTERVAL_S, 0};
		int sig = sigtimedwait(&stop_set, NULL, &trim_every);
		if (sig < 0 && errno == EAGAIN) {
			malloc_trim(0);
			continue;
		}
		if (sig == SIGHUP || (sig < 0 && errno == EINTR))
			continue;
		break;
	}
	atomic_store(&stopping, 1);
	FCGX_ShutdownPending();
	end_idle_connections(epoll_fd, listen_fd, slots, threads);

	/* Drain: wake idle threads until every thread has left. */
	struct timespec start, now, tick = {0, 20 * 1000 * 1000};
	clock_gettime(CLOCK_MONOTONIC, &start);
	int remaining;
	do {
		remaining = 0;
		for (int i = 0; i < threads; i++) {
			if (!slots[i].started || atomic_load(&slots[i].done))
				continue;
			remaining++;
			if (atomic_load(&slots[i].in_accept))
				pthread_kill(slots[i].thread, SIGUSR2);
		}
		if (remaining == 0)
			break;
		nanosleep(&tick, NULL);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec < SHUTDOWN_DEADLINE_S);

	if (remaining > 0) {
		log_warning("%d requests still running after %d s; exiting anyway", remaining,
		            SHUTDOWN_DEADLINE_S);
		return 1; /* the threads die with the process */
	}
	for (int i = 0; i < threads; i++)
		if (slots[i].started)
			pthread_join(slots[i].thread, NULL);
	free(slots);
	return 0;
}
