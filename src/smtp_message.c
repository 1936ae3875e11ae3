/*
 * smtp_message.c - the connection test's message (see smtp_message.h).
 */
#include "smtp_message.h"

#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "validate.h"

/* Header lines stay within RFC 5322's recommended 78 characters where the
 * content allows (an address longer than that is never split). */
#define LINE_MAX_CHARS 78
/* RFC 2047 section 2: an encoded word is at most 75 characters;
 * "=?UTF-8?B?" + 60 base64 characters (45 bytes) + "?=" is 72. */
#define EW_MAX_BYTES 45
/* RFC 2045 section 6.7: encoded lines of at most 76 characters. */
#define QP_LINE_MAX 76

/* A bounded string builder in the arena: past its capacity it fails once
 * and for all instead of growing. */
struct buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void put_n(struct buf *b, const char *s, size_t n)
{
	if (b->failed || n > b->cap - b->len) {
		b->failed = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void put(struct buf *b, const char *s)
{
	put_n(b, s, strlen(s));
}

static void put_c(struct buf *b, char c)
{
	put_n(b, &c, 1);
}

/* Text fit for a header or the body: control characters (CR and LF
 * included) become spaces, invalid UTF-8 becomes '?', spaces at both ends
 * are dropped. */
static char *clean(struct arena *a, const char *s)
{
	if (s == NULL)
		s = "";
	size_t n = strlen(s);
	char *out = arena_alloc(a, n + 1);
	if (out == NULL)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned int cp;
		size_t l = utf8_decode(s + i, n - i, &cp);
		if (l == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) {
			out[o++] = ' ';
		} else {
			memcpy(out + o, s + i, l);
			o += l;
		}
		i += l;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
	size_t lead = strspn(out, " ");
	return out + lead;
}

static int printable_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

static void base64(struct buf *b, const unsigned char *s, size_t n)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		char q[4] = {t[(v >> 18) & 63], t[(v >> 12) & 63],
		             i + 1 < n ? t[(v >> 6) & 63] : '=', i + 2 < n ? t[v & 63] : '='};
		put_n(b, q, 4);
	}
}

/* The length of the longest run of whole UTF-8 sequences of s[0..n) within
 * max bytes (at least one sequence, so that progress is made). */
static size_t whole_chars(const char *s, size_t n, size_t max)
{
	size_t i = 0;
	while (i < n) {
		unsigned int cp;
		size_t l = utf8_decode(s + i, n - i, &cp);
		if (l == 0)
			l = 1;
		if (i + l > max && i > 0)
			break;
		i += l;
	}
	return i;
}

char *smtp_message_display_name(struct arena *a, const char *name, size_t first)
{
	const char *c = clean(a, name);
	if (c == NULL)
		return NULL;
	size_t n = strlen(c);
	struct buf b = {arena_alloc(a, 4 * n + 64), 0, 4 * n + 64, 0};
	if (b.p == NULL)
		return NULL;
	size_t specials = 0;
	for (size_t i = 0; i < n; i++)
		specials += c[i] == '"' || c[i] == '\\';
	if (printable_ascii(c) && first + n + specials + 2 <= LINE_MAX_CHARS - 20) {
		/* RFC 5322 section 3.2.4: a quoted string, '"' and '\' escaped */
		put_c(&b, '"');
		for (size_t i = 0; i < n; i++) {
			if (c[i] == '"' || c[i] == '\\')
				put_c(&b, '\\');
			put_c(&b, c[i]);
		}
		put_c(&b, '"');
	} else {
		for (size_t i = 0; i < n;) {
			size_t take = whole_chars(c + i, n - i, EW_MAX_BYTES);
			if (i > 0)
				put(&b, "\r\n ");
			put(&b, "=?UTF-8?B?");
			base64(&b, (const unsigned char *)c + i, take);
			put(&b, "?=");
			i += take;
		}
	}
	if (b.failed)
		return NULL;
	b.p[b.len] = '\0';
	return b.p;
}

/* An address as a header may carry it: printable ASCII without spaces and
 * angle brackets (validation allows no other; this makes sure). */
static int address_ok(const char *s)
{
	if (s == NULL || s[0] == '\0' || !printable_ascii(s))
		return 0;
	return strpbrk(s, " <>") == NULL;
}

/* The length of the last line in b. */
static size_t last_line(const struct buf *b)
{
	size_t i = b->len;
	while (i > 0 && b->p[i - 1] != '\n')
		i--;
	return b->len - i;
}

/* Quoted-printable (RFC 2045 section 6.7) of UTF-8 text whose lines end in
 * '\n': lines end in CRLF, soft line breaks keep them within 76
 * characters, a space or tab before a line end is encoded. */
static void quoted_printable(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '\n') {
			put(b, "\r\n");
			col = 0;
			continue;
		}
		int at_end = p[1] == '\n' || p[1] == '\0';
		int literal =
		    (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !at_end);
		size_t w = literal ? 1 : 3;
		if (col + w > QP_LINE_MAX - 1) {
			put(b, "=\r\n");
			col = 0;
		}
		if (literal) {
			put_c(b, (char)c);
		} else {
			char e[3] = {'=', hex[c >> 4], hex[c & 15]};
			put_n(b, e, 3);
		}
		col += w;
	}
	if (col > 0)
		put(b, "\r\n");
}

static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

char *smtp_message_build(struct arena *a, const struct smtp_message_in *in, size_t *len)
{
	if (!address_ok(in->sender_email) || !address_ok(in->recipient) || in->unique == NULL)
		return NULL;
	for (const char *u = in->unique; *u != '\0'; u++)
		if (!((*u >= 'A' && *u <= 'Z') || (*u >= 'a' && *u <= 'z') ||
		      (*u >= '0' && *u <= '9') || *u == '-' || *u == '_'))
			return NULL;
	const char *domain = strrchr(in->sender_email, '@');
	domain = domain != NULL && domain[1] != '\0' ? domain + 1 : "localhost";

	struct tm tm;
	if (gmtime_r(&in->now, &tm) == NULL)
		return NULL;
	char date[40];
	snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000", wday[tm.tm_wday % 7],
	         tm.tm_mday, month[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	         tm.tm_sec);

	const char *display = smtp_message_display_name(a, in->sender_name, 6);
	const char *server_name = in->server_name ? clean(a, in->server_name) : NULL;
	const char *host = clean(a, in->server_host);
	if (display == NULL || host == NULL || (in->server_name != NULL && server_name == NULL))
		return NULL;

	size_t inputs = strlen(display) + strlen(in->sender_email) + strlen(in->recipient) +
	                strlen(host) + (server_name ? strlen(server_name) : 0) + strlen(in->unique);
	size_t cap = 4096 + 4 * inputs;
	struct buf b = {arena_alloc(a, cap + 1), 0, cap, 0};
	if (b.p == NULL)
		return NULL;

	put(&b, "Date: ");
	put(&b, date);
	put(&b, "\r\nMessage-ID: <");
	put(&b, in->unique);
	put(&b, "@");
	put(&b, domain);
	put(&b, ">\r\nFrom: ");
	if (display[0] != '\0') {
		put(&b, display);
		/* the address on the same line when it fits, else folded */
		put(&b,
		    last_line(&b) + strlen(in->sender_email) + 3 <= LINE_MAX_CHARS ? " " : "\r\n ");
	}
	put(&b, "<");
	put(&b, in->sender_email);
	put(&b, ">\r\nTo: <");
	put(&b, in->recipient);
	put(&b, ">\r\nSubject: Test message from the mail server settings\r\n"
	        "MIME-Version: 1.0\r\n"
	        "Content-Type: text/plain; charset=utf-8\r\n"
	        "Content-Transfer-Encoding: quoted-printable\r\n"
	        "Auto-Submitted: auto-generated\r\n"
	        "\r\n");

	size_t tlen = 1024 + inputs;
	char *text = arena_alloc(a, tlen);
	if (text == NULL)
		return NULL;
	int tn = snprintf(text, tlen,
	                  "This is a test message, sent to check the settings of the mail"
	                  " server\n"
	                  "%s%s%s%s:%d.\n"
	                  "\n"
	                  "Server: %s, port %d\n"
	                  "Sent:   %s\n"
	                  "\n"
	                  "It arrived, so these settings can send mail. No reply is needed.\n",
	                  server_name ? "\"" : "", server_name ? server_name : "",
	                  server_name ? "\" at " : "", host, in->server_port, host, in->server_port,
	                  date);
	if (tn < 0 || (size_t)tn >= tlen)
		return NULL;
	quoted_printable(&b, text);
	if (b.failed)
		return NULL;
	b.p[b.len] = '\0';
	if (len != NULL)
		*len = b.len;
	return b.p;
}
