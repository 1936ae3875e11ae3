/*
 * main.c - the master process. It reads and checks every setting and key,
 * opens the FastCGI socket, forks MAILSRV_PROCESSES worker processes and
 * restarts any that dies (a libfcgi assertion or a crash costs one
 * process's in-flight requests, never the service: docs/design.md, "libfcgi 2.4.2"). SIGTERM
 * or SIGINT: forward to the workers, wait for them to drain, exit.
 *
 * Never as root: started by root (the local stack), the master opens its
 * socket and then becomes MAILSRV_USER for good, before it reads a key,
 * connects to the database or starts a worker; root without MAILSRV_USER is
 * refused. Started as the service's user (systemd's User=), it stays so.
 *
 * Under systemd the socket unit (deploy/mailsrv.socket) owns the socket and
 * passes it (LISTEN_FDS, fcgi_inherited_socket): the master never removes
 * or shuts it down, so connections made while it restarts wait in the
 * backlog for the next start.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "fcgi_server.h"
#include "log.h"
#include "mailsrv_limits.h"
#include "metrics.h"
#include "outbound.h"

/* The sanitizer build (mk/sanitize.mk): gcc says __SANITIZE_ADDRESS__,
 * clang __has_feature(address_sanitizer). */
#if defined(__SANITIZE_ADDRESS__)
#define MAILSRV_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MAILSRV_ASAN 1
#endif
#endif
#ifdef MAILSRV_ASAN
#include <sanitizer/lsan_interface.h>
#endif

struct child {
	pid_t pid; /* 0: not running */
	struct timespec started;
	long delay_ms; /* before the next restart */
	struct timespec restart_at;
};

static double since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static pid_t spawn(const struct app *app, int fd, struct child *c, int slot)
{
	pid_t pid = fork();
	if (pid == 0) {
		metrics_set_slot(slot);
		int rc = fcgi_worker_process(app, fd, app->cfg.threads);
		/* _exit: never the master's atexit handlers or stdio buffers. It
		 * skips LeakSanitizer's exit-time check too, so in the sanitizer
		 * build a worker that drained cleanly checks for leaks itself. */
#ifdef MAILSRV_ASAN
		if (rc == 0)
			__lsan_do_leak_check();
#endif
		_exit(rc);
	}
	if (pid < 0) {
		log_error("could not fork a worker process: %s", strerror(errno));
		return -1;
	}
	c->pid = pid;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	return pid;
}

/* The user the master becomes once its socket is open (see the header). */
struct service_user {
	int change; /* 0: we are not root, nothing to become */
	uid_t uid;
	gid_t gid;
};

/*
 * Decide before anything is created: root needs MAILSRV_USER naming an
 * unprivileged user; another user may set it only to itself.
 */
static int service_user(struct service_user *su, char *err, size_t errlen)
{
	memset(su, 0, sizeof(*su));
	const char *name = getenv("MAILSRV_USER");
	if (name != NULL && name[0] == '\0')
		name = NULL;
	struct passwd *pw = name != NULL ? getpwnam(name) : NULL;
	if (name != NULL && pw == NULL) {
		snprintf(err, errlen, "MAILSRV_USER: no user \"%s\"", name);
		return -1;
	}
	if (getuid() != 0 && geteuid() != 0) {
		if (pw != NULL && pw->pw_uid != geteuid()) {
			snprintf(err, errlen,
			         "MAILSRV_USER is \"%s\", but the service runs as uid %u and "
			         "cannot change users",
			         name, (unsigned)geteuid());
			return -1;
		}
		return 0;
	}
	if (pw == NULL) {
		snprintf(err, errlen,
		         "refusing to run as root: start the service as its own user, or set "
		         "MAILSRV_USER to the unprivileged user to become once the socket is open");
		return -1;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(err, errlen, "MAILSRV_USER \"%s\" is root or in root's group", name);
		return -1;
	}
	su->change = 1;
	su->uid = pw->pw_uid;
	su->gid = pw->pw_gid;
	return 0;
}

/*
 * Leave root for good: its own group only (the socket has its group
 * already), real, effective and saved ids all changed; getting root back
 * must fail.
 */
static int become(const struct service_user *su, char *err, size_t errlen)
{
	if (!su->change)
		return 0;
	if (setgroups(1, &su->gid) != 0 || setresgid(su->gid, su->gid, su->gid) != 0 ||
	    setresuid(su->uid, su->uid, su->uid) != 0) {
		snprintf(err, errlen, "could not become uid %u: %s", (unsigned)su->uid,
		         strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0 || getegid() == 0) {
		snprintf(err, errlen, "could not leave root for good");
		return -1;
	}
	return 0;
}

static void describe_exit(pid_t pid, int status)
{
	if (WIFSIGNALED(status))
		log_warning("worker process %ld was terminated by signal %d", (long)pid,
		            WTERMSIG(status));
	else
		log_info("worker process %ld exited with status %d", (long)pid,
		         WEXITSTATUS(status));
}

/* Settings, libcurl, the socket (inherited from systemd or made here),
 * then the service's user, its keys and the shared metrics. 0 with *fd the
 * listening socket; -1 (logged, cleaned up) when the service cannot start. */
static int start(struct app *app, int *fd, int *inherited)
{
	char err[512];
	if (app_load_settings(app, err, sizeof(err)) != 0) {
		log_error("could not start: %s", err);
		return -1;
	}
	log_set_json(app->cfg.log_json);
	/* libcurl's global state, once, before any fork or thread. */
	if (outbound_global_init() != 0) {
		log_error("could not start: libcurl could not be initialized");
		app_free(app);
		return -1;
	}
	struct service_user su;
	if (service_user(&su, err, sizeof(err)) != 0) {
		log_error("could not start: %s", err);
		app_free(app);
		return -1;
	}
	/* Socket activation: systemd's socket unit owns the socket, which
	 * outlives this process (a restart loses no connection: they wait in
	 * its backlog); else the service creates it. */
	*fd = fcgi_inherited_socket(err, sizeof(err));
	*inherited = *fd > 0;
	if (*fd == 0)
		*fd =
		    fcgi_listen_unix(app->cfg.socket_path, app->cfg.socket_group, err, sizeof(err));
	if (*fd < 0) {
		log_error("could not start: %s", err);
		app_free(app);
		return -1;
	}
	/* Keys, database connections and workers: all as the service's user. */
	const char *failed = NULL;
	if (become(&su, err, sizeof(err)) != 0 || app_load_keys(app, err, sizeof(err)) != 0)
		failed = err;
	/* Before the first fork: every worker shares these counters. */
	else if (metrics_init() != 0)
		failed = "the shared memory of the metrics could not be mapped";
	if (failed != NULL) {
		log_error("could not start: %s", failed);
		close(*fd);
		if (!*inherited)
			unlink(app->cfg.socket_path);
		app_free(app);
		return -1;
	}
	log_info("running as uid %u, gid %u", (unsigned)geteuid(), (unsigned)getegid());
	return 0;
}

/* A worker process ended unasked: when it crashed right after its start,
 * back off (doubling up to RESTART_DELAY_MAX_MS); else restart at once. */
static void schedule_restart(struct child *k, pid_t pid, int status)
{
	k->pid = 0;
	describe_exit(pid, status);
	if (since(&k->started) < 1.0)
		k->delay_ms =
		    k->delay_ms * 2 > RESTART_DELAY_MAX_MS ? RESTART_DELAY_MAX_MS : k->delay_ms * 2;
	else
		k->delay_ms = RESTART_DELAY_MIN_MS;
	clock_gettime(CLOCK_MONOTONIC, &k->restart_at);
	k->restart_at.tv_nsec += k->delay_ms * 1000000L;
	k->restart_at.tv_sec += k->restart_at.tv_nsec / 1000000000L;
	k->restart_at.tv_nsec %= 1000000000L;
}

/* The master's loop: signals, reaping, restarts, and the drain after
 * SIGTERM (SIGKILL for what outlives the deadline). Returns when every
 * worker process has ended after a SIGTERM or SIGINT. */
static void supervise(const struct app *app, int fd, int inherited, const sigset_t *set,
                      struct child *kids, int n)
{
	int stopping = 0;
	struct timespec stop_started = {0, 0};
	for (;;) {
		struct timespec tick = {0, 100 * 1000 * 1000};
		int sig = sigtimedwait(set, NULL, &tick);
		if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
			stopping = 1;
			clock_gettime(CLOCK_MONOTONIC, &stop_started);
			log_info("received signal %d: draining worker processes", sig);
			for (int i = 0; i < n; i++)
				if (kids[i].pid > 0)
					kill(kids[i].pid, SIGTERM);
			/* Refuse new connections at once (nginx answers 503) instead
			 * of letting them wait in the backlog of a socket nobody
			 * accepts from any more; accepted requests still finish.
			 * Not systemd's socket: it stays open for the next start,
			 * and connections wait in its backlog meanwhile. */
			if (!inherited)
				shutdown(fd, SHUT_RDWR);
		} else if (sig == SIGHUP) {
			for (int i = 0; i < n; i++)
				if (kids[i].pid > 0)
					kill(kids[i].pid, SIGHUP);
		}
		/* Reap every child that ended. */
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			for (int i = 0; i < n; i++) {
				if (kids[i].pid != pid)
					continue;
				if (stopping)
					kids[i].pid = 0;
				else
					schedule_restart(&kids[i], pid, status);
			}
		}
		int alive = 0;
		for (int i = 0; i < n; i++) {
			if (kids[i].pid > 0) {
				alive++;
			} else if (!stopping && since(&kids[i].restart_at) >= 0 &&
			           spawn(app, fd, &kids[i], i) > 0) {
				metrics_worker_restarted();
				log_info("restarted worker process as %ld", (long)kids[i].pid);
				alive++;
			}
		}
		if (stopping) {
			if (alive == 0)
				return;
			if (since(&stop_started) > SHUTDOWN_DEADLINE_S + 2)
				for (int i = 0; i < n; i++)
					if (kids[i].pid > 0)
						kill(kids[i].pid, SIGKILL);
		}
	}
}

int main(void)
{
	struct app app;
	int fd, inherited;
	if (start(&app, &fd, &inherited) != 0)
		return 1;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);

	int n = app.cfg.processes;
	struct child *kids = calloc((size_t)n, sizeof(*kids));
	if (kids == NULL) {
		log_error("could not start: out of memory");
		return 1;
	}
	for (int i = 0; i < n; i++) {
		kids[i].delay_ms = RESTART_DELAY_MIN_MS;
		spawn(&app, fd, &kids[i], i);
	}
	if (inherited)
		log_info(
		    "listening on the socket passed by systemd with %d processes of %d threads", n,
		    app.cfg.threads);
	else
		log_info("listening on \"%s\" with %d processes of %d threads", app.cfg.socket_path,
		         n, app.cfg.threads);

	supervise(&app, fd, inherited, &set, kids, n);

	close(fd);
	if (!inherited)
		unlink(app.cfg.socket_path);
	free(kids);
	app_free(&app);
	log_info("stopped");
	return 0;
}
