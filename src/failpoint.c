/*
 * failpoint.c - see failpoint.h. Empty but for a declaration outside the
 * sanitizer build.
 */
#include "failpoint.h"

#ifdef MAILSRV_FAILPOINTS

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"

void failpoint(const char *name)
{
	const char *dir = getenv("MAILSRV_FAILPOINT_DIR");
	char path[PATH_MAX];
	if (dir == NULL || dir[0] == '\0')
		return;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return;
	/* unlink succeeds for exactly one thread: the point fires once. */
	if (unlink(path) != 0)
		return;
	log_warning("failpoint %s: the worker process ends now (SIGKILL)", name);
	kill(getpid(), SIGKILL);
	_exit(137); /* not reached */
}

#else

/* ISO C wants a translation unit to declare something. */
typedef int failpoint_not_built;

#endif
