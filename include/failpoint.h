/*
 * failpoint.h - named points where a fault drill ends the worker process on
 * purpose (tests/drills, docs/reliability.md).
 *
 * Compiled in only when MAILSRV_FAILPOINTS is defined, which only the
 * sanitizer build that `make test` runs defines (mk/sanitize.mk); in every
 * other build FAILPOINT() is nothing and the binary holds no trace of it.
 *
 * A point is armed by creating the file $MAILSRV_FAILPOINT_DIR/<name>. The
 * first thread to reach the point removes the file (so it fires once) and the
 * process dies at once by SIGKILL, like a process killed from outside: no
 * cleanup, no transaction committed, no lock released but by the database
 * noticing the lost connection.
 */
#ifndef MAILSRV_FAILPOINT_H
#define MAILSRV_FAILPOINT_H

#ifdef MAILSRV_FAILPOINTS
void failpoint(const char *name);
#define FAILPOINT(name) failpoint(name)
#else
#define FAILPOINT(name) ((void)0)
#endif

#endif
