/*
 * log.c - one formatted line per call, written with a single write(2) so
 * lines from concurrent threads and processes never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char current_request_id[72];

void log_set_request_id(const char *id)
{
	snprintf(current_request_id, sizeof(current_request_id), "%s", id ? id : "");
}

static void log_line(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	const char *rid = current_request_id;
	int n = snprintf(line, sizeof(line),
	                 "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%ld] %s%s%s%s: ", tm.tm_year + 1900,
	                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	                 (long)(tv.tv_usec / 1000), (long)getpid(), rid[0] ? "request " : "", rid,
	                 rid[0] ? " " : "", level);
	if (n < 0)
		return;
	size_t used = (size_t)n;
	int k = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
	if (k > 0)
		used += (size_t)k;
	if (used > sizeof(line) - 2)
		used = sizeof(line) - 2; /* truncated; room for the newline */
	/* Keep one record per line whatever the message holds. */
	for (size_t i = 0; i < used; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[used++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, used);
	(void)w;
}

#define LOG_FN(name, level)                                                                        \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_line(level, fmt, ap);                                                          \
		va_end(ap);                                                                        \
	}

LOG_FN(log_info, "LOG")
LOG_FN(log_warning, "WARNING")
LOG_FN(log_error, "ERROR")
