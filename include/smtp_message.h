/*
 * smtp_message.h - the test message a connection test sends (RFC 5322,
 * RFC 2045-2047). Pure: the time and the random part of the Message-ID are
 * passed in, so the unit tests see exactly what is sent.
 *
 * No header value ever holds CR or LF, whatever was stored: text is
 * cleaned (control characters become spaces), a display name that is not
 * plain ASCII or is long goes out as RFC 2047 encoded words, folded, and the
 * body is quoted-printable UTF-8. Lines end in CRLF and stay within 78
 * characters. Dot-stuffing (RFC 5321 section 4.5.2) is libcurl's job when it
 * sends the DATA.
 */
#ifndef MAILSRV_SMTP_MESSAGE_H
#define MAILSRV_SMTP_MESSAGE_H

#include <stddef.h>
#include <time.h>

struct arena;

struct smtp_message_in {
	const char *sender_name;  /* the display name, UTF-8 */
	const char *sender_email; /* validated address */
	const char *recipient;    /* validated address */
	const char *server_name;  /* the mail server's name, UTF-8, or NULL (unsaved) */
	const char *server_host;
	int server_port;
	time_t now;
	const char *unique; /* the Message-ID's left part: [A-Za-z0-9_-] */
};

/* The whole message, NUL-terminated, in the arena; NULL when out of memory
 * or when an address holds a character no header may carry. */
char *smtp_message_build(struct arena *a, const struct smtp_message_in *in, size_t *len);

/* A header field body for a display name: a quoted string when it is short
 * printable ASCII, otherwise "=?UTF-8?B?...?=" encoded words of at most 75
 * characters each, separated by CRLF SP (a folded header), never cutting a
 * UTF-8 sequence. first is the length of the header line before it
 * ("From: " is 6). Exposed for the unit tests. */
char *smtp_message_display_name(struct arena *a, const char *name, size_t first);

#endif
