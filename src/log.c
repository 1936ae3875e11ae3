/*
 * log.c - one formatted line per call, written with a single write(2) so
 * lines from concurrent threads and processes never interleave. Text (the
 * default) or one JSON object per line (MAILSRV_LOG_FORMAT=json).
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_BYTES 1024

static _Thread_local char current_request_id[72];
static atomic_int json_format;

void log_set_request_id(const char *id)
{
	snprintf(current_request_id, sizeof(current_request_id), "%s", id ? id : "");
}

void log_set_json(int on)
{
	atomic_store(&json_format, on ? 1 : 0);
}

/* A line under construction; what does not fit is cut (room is kept for
 * the closing of a JSON object and the newline). */
struct line {
	char buf[LOG_LINE_BYTES];
	size_t len;
};

#define LINE_RESERVE 4 /* "\"}" and "\n" after a cut JSON string */

static size_t room(const struct line *l)
{
	size_t end = sizeof(l->buf) - LINE_RESERVE;
	return l->len < end ? end - l->len : 0;
}

static void put(struct line *l, const char *s, size_t n)
{
	size_t room_left = room(l);
	if (n > room_left)
		n = room_left;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
	char tmp[LOG_LINE_BYTES];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned min;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, min = 0x80;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, min = 0x800;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	unsigned cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* s[0..n) as the inside of a JSON string: quotes, backslashes and control
 * characters escaped, bytes that are not UTF-8 as '?'. A sequence is never
 * cut in half at the end of the line. */
static void put_json_text(struct line *l, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		char esc[8];
		size_t k = utf8_seq(p + i, n - i);
		if (k == 0) {
			put(l, "?", 1);
			i++;
			continue;
		}
		if (k == 1 && (p[i] < 0x20 || p[i] == '"' || p[i] == '\\')) {
			if (p[i] == '"' || p[i] == '\\')
				snprintf(esc, sizeof(esc), "\\%c", p[i]);
			else
				snprintf(esc, sizeof(esc), "\\u%04x", p[i]);
			if (room(l) < strlen(esc))
				return;
			puts_(l, esc);
		} else {
			if (room(l) < k)
				return;
			put(l, s + i, k);
		}
		i += k;
	}
}

static void put_json_string(struct line *l, const char *key, const char *value)
{
	if (room(l) < strlen(key) + 8)
		return; /* a cut line leaves the member out rather than half of it */
	putf(l, ",\"%s\":\"", key);
	put_json_text(l, value, strlen(value));
	/* The closing quote always fits: LINE_RESERVE keeps room for it. */
	l->buf[l->len++] = '"';
}

/* The start of every line: time, process, request, level. */
static void begin_line(struct line *l, const char *level, int json)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	char when[96];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (long)(tv.tv_usec / 1000));
	const char *rid = current_request_id;
	l->len = 0;
	if (json) {
		putf(l, "{\"time\":\"%s\",\"pid\":%ld,\"level\":\"%s\"", when, (long)getpid(),
		     level);
		if (rid[0] != '\0')
			put_json_string(l, "request_id", rid);
	} else {
		putf(l, "%s [%ld] %s%s%s%s: ", when, (long)getpid(), rid[0] ? "request " : "", rid,
		     rid[0] ? " " : "", level);
	}
}

static void end_line(struct line *l, int json)
{
	if (json) {
		l->buf[l->len++] = '}';
	} else {
		/* Keep one record per line whatever the message holds. */
		for (size_t i = 0; i < l->len; i++)
			if (l->buf[i] == '\n' || l->buf[i] == '\r')
				l->buf[i] = ' ';
	}
	l->buf[l->len++] = '\n';
	ssize_t w = write(STDERR_FILENO, l->buf, l->len);
	(void)w;
}

static void log_line(const char *level, const char *json_level, const char *fmt, va_list ap)
{
	struct line l;
	int json = atomic_load(&json_format);
	char msg[LOG_LINE_BYTES];
	int k = vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = k < 0 ? 0 : ((size_t)k < sizeof(msg) ? (size_t)k : sizeof(msg) - 1);
	begin_line(&l, json ? json_level : level, json);
	if (json) {
		puts_(&l, ",\"message\":\"");
		put_json_text(&l, msg, n);
		l.buf[l.len++] = '"';
	} else {
		put(&l, msg, n);
	}
	end_line(&l, json);
}

#define LOG_FN(name, level, json_level)                                                            \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_line(level, json_level, fmt, ap);                                              \
		va_end(ap);                                                                        \
	}

LOG_FN(log_info, "LOG", "info")
LOG_FN(log_warning, "WARNING", "warning")
LOG_FN(log_error, "ERROR", "error")

/* Only characters that need no quoting in either format: printable ASCII
 * but space, quotes, backslash and '='; anything else becomes '?'. At most
 * max bytes; "-" for an empty or absent value. */
static const char *clean(char *out, size_t max, const char *s)
{
	size_t n = 0;
	for (; s != NULL && s[n] != '\0' && n < max; n++) {
		unsigned char ch = (unsigned char)s[n];
		out[n] =
		    (ch > 0x20 && ch < 0x7f && ch != '"' && ch != '\'' && ch != '\\' && ch != '=')
		        ? (char)ch
		        : '?';
	}
	out[n] = '\0';
	return n == 0 ? "-" : out;
}

void log_request(const struct log_request *r)
{
	char method[LOG_METHOD_MAX_BYTES + 1], actor[LOG_ACTOR_MAX_BYTES + 1];
	const char *m = clean(method, LOG_METHOD_MAX_BYTES, r->method);
	const char *a = clean(actor, LOG_ACTOR_MAX_BYTES, r->actor);
	const char *route = r->route != NULL ? r->route : "-";
	double ms = (double)r->duration_us / 1000.0, db_ms = (double)r->db_us / 1000.0;
	int json = atomic_load(&json_format);
	struct line l;
	begin_line(&l, json ? "info" : "LOG", json);
	if (json) {
		puts_(&l, ",\"message\":\"request\"");
		put_json_string(&l, "method", m);
		put_json_string(&l, "route", route);
		putf(&l, ",\"status\":%d,\"duration_ms\":%.3f,\"db_ms\":%.3f", r->status, ms,
		     db_ms);
		put_json_string(&l, "actor", a);
	} else {
		putf(&l,
		     "request method=%s route=%s status=%d duration_ms=%.3f db_ms=%.3f actor=%s", m,
		     route, r->status, ms, db_ms, a);
	}
	end_line(&l, json);
}
