/*
 * test_smtp_message.c - unit tests of src/smtp_message.c: the connection
 * test's message. Hostile display names (CR, LF, header injection, quotes),
 * non-ASCII and long names (RFC 2047 encoded words, folded, never cutting
 * a UTF-8 sequence), line lengths, CRLF line ends and the quoted-printable
 * body, decoded back and compared.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "smtp_message.h"
#include "validate.h"

static struct arena *A;

static int setup(void **state)
{
	(void)state;
	A = arena_new(1 << 20);
	return A == NULL;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(A);
	return 0;
}

static char *build(const char *sender_name, const char *server_name)
{
	struct smtp_message_in in = {sender_name, "alerts@example.com", "bob@example.org",
	                             server_name, "smtp.example.com",   587,
	                             86400 * 365, "0123abcd_ef-9"};
	size_t len;
	char *m = smtp_message_build(A, &in, &len);
	assert_non_null(m);
	assert_int_equal(strlen(m), len);
	return m;
}

/* The header block (up to the empty line) and the body. */
static void split(const char *m, char **head, const char **body)
{
	const char *sep = strstr(m, "\r\n\r\n");
	assert_non_null(sep);
	size_t n = (size_t)(sep - m) + 2;
	*head = arena_strndup(A, m, n);
	*body = sep + 4;
}

/* Every line ends in CRLF: no bare CR, no bare LF. */
static void assert_crlf_only(const char *m)
{
	for (const char *p = m; *p != '\0'; p++) {
		if (*p == '\r')
			assert_int_equal(p[1], '\n');
		if (*p == '\n')
			assert_true(p > m && p[-1] == '\r');
	}
}

/* Each header line starts a known field or continues one (folding: a
 * space first), and stays within max characters. */
static void assert_header_lines(const char *head, size_t max)
{
	static const char *const names[] = {
	    "Date: ",          "Message-ID: ",   "From: ",         "To: ",
	    "Subject: ",       "MIME-Version: ", "Content-Type: ", "Content-Transfer-Encoding: ",
	    "Auto-Submitted: "};
	const char *p = head;
	while (*p != '\0') {
		const char *eol = strstr(p, "\r\n");
		assert_non_null(eol);
		size_t n = (size_t)(eol - p);
		int known = p[0] == ' ';
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			known = known || strncmp(p, names[i], strlen(names[i])) == 0;
		if (!known)
			fail_msg("unexpected header line: %.*s", (int)n, p);
		if (n > max)
			fail_msg("header line of %zu characters: %.*s", n, (int)n, p);
		p = eol + 2;
	}
}

/* The From field's body with its folding removed (RFC 5322 unfolding). */
static char *from_field(const char *head)
{
	const char *p = strstr(head, "\r\nFrom: ");
	assert_non_null(p);
	p += 8;
	char *out = arena_alloc(A, strlen(p) + 1);
	size_t o = 0;
	while (*p != '\0') {
		if (p[0] == '\r' && p[1] == '\n') {
			if (p[2] != ' ')
				break;
			p += 2;
			continue;
		}
		out[o++] = *p++;
	}
	out[o] = '\0';
	return out;
}

static int b64val(char c)
{
	const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *f = strchr(t, c);
	return c != '\0' && f != NULL ? (int)(f - t) : -1;
}

/* Decode the encoded words of a display name ("=?UTF-8?B?...?= =?...?=");
 * each word must be at most 75 characters and decode to whole UTF-8. */
static char *decode_words(const char *s)
{
	char *out = arena_alloc(A, strlen(s) + 1);
	size_t o = 0;
	while ((s = strstr(s, "=?UTF-8?B?")) != NULL) {
		const char *start = s;
		s += 10;
		const char *end = strstr(s, "?=");
		assert_non_null(end);
		assert_true((size_t)(end + 2 - start) <= 75);
		size_t word_start = o;
		unsigned v = 0;
		int bits = 0;
		for (; s < end; s++) {
			if (*s == '=')
				continue;
			int d = b64val(*s);
			assert_true(d >= 0);
			v = (v << 6) | (unsigned)d;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				out[o++] = (char)((v >> bits) & 0xff);
			}
		}
		assert_true(utf8_valid(out + word_start, o - word_start));
		s = end + 2;
	}
	out[o] = '\0';
	return out;
}

static char *decode_qp(const char *s)
{
	char *out = arena_alloc(A, strlen(s) + 1);
	size_t o = 0;
	while (*s != '\0') {
		if (s[0] == '=' && s[1] == '\r' && s[2] == '\n') {
			s += 3;
		} else if (s[0] == '=') {
			assert_true(hex_digit(s[1]) >= 0 && hex_digit(s[2]) >= 0);
			out[o++] = (char)(hex_digit(s[1]) * 16 + hex_digit(s[2]));
			s += 3;
		} else {
			out[o++] = *s++;
		}
	}
	out[o] = '\0';
	return out;
}

static void test_plain_ascii(void **state)
{
	(void)state;
	char *m = build("Security Console", "Office relay");
	char *head;
	const char *body;
	split(m, &head, &body);
	assert_crlf_only(m);
	assert_header_lines(head, 78);
	assert_non_null(strstr(head, "\r\nFrom: \"Security Console\" <alerts@example.com>\r\n"));
	assert_non_null(strstr(head, "\r\nTo: <bob@example.org>\r\n"));
	assert_non_null(strstr(head, "Message-ID: <0123abcd_ef-9@example.com>\r\n"));
	assert_non_null(strstr(head, "Date: Fri, 01 Jan 1971 00:00:00 +0000\r\n"));
	assert_non_null(strstr(head, "MIME-Version: 1.0\r\n"));
	assert_non_null(strstr(head, "Content-Type: text/plain; charset=utf-8\r\n"));
	assert_non_null(strstr(head, "Content-Transfer-Encoding: quoted-printable\r\n"));
	char *text = decode_qp(body);
	assert_non_null(strstr(text, "\"Office relay\" at smtp.example.com:587"));
}

static void test_header_injection(void **state)
{
	(void)state;
	const char *hostile[] = {
	    "Evil\r\nBcc: victim@example.net",    "Evil\nBcc: victim@example.net",
	    "Evil\rBcc: victim@example.net",      "\r\n\r\nbody injected",
	    "Tab\tand \x7f DEL and \xc2\x85 NEL",
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		char *m = build(hostile[i], hostile[i]);
		char *head;
		const char *body;
		split(m, &head, &body);
		assert_crlf_only(m);
		assert_header_lines(head, 78);
		assert_null(strstr(head, "\r\nBcc:"));
		assert_null(strstr(body, "\r\nBcc:"));
		assert_null(strstr(m, "\r\n\r\nbody injected"));
		/* the name survives, its line breaks as spaces */
		char *from = from_field(head);
		if (i < 3) {
			assert_int_equal(strncmp(from, "\"Evil ", 6), 0);
			assert_non_null(strstr(from, " Bcc: victim@example.net\" <alerts@"));
		}
	}
}

static void test_quotes_escaped(void **state)
{
	(void)state;
	char *m = build("Say \"hi\" \\ bye", NULL);
	char *head;
	const char *body;
	split(m, &head, &body);
	assert_non_null(strstr(head, "From: \"Say \\\"hi\\\" \\\\ bye\" <alerts@example.com>\r\n"));
	/* unsaved settings: no name in the body */
	char *text = decode_qp(body);
	assert_non_null(strstr(text, "mail server\r\nsmtp.example.com:587."));
}

static void test_non_ascii_encoded(void **state)
{
	(void)state;
	const char *name = "J\xc3\xbcrgen M\xc3\xbcller \xf0\x9f\x93\xa7";
	char *m = build(name, name);
	char *head;
	const char *body;
	split(m, &head, &body);
	assert_header_lines(head, 78);
	char *from = from_field(head);
	assert_non_null(strstr(from, "=?UTF-8?B?"));
	assert_string_equal(decode_words(from), name);
	assert_non_null(strstr(from, " <alerts@example.com>"));
	/* nothing but ASCII in the headers and the encoded body */
	for (const char *p = m; *p != '\0'; p++)
		assert_true((unsigned char)*p < 0x80);
	char *text = decode_qp(body);
	assert_non_null(strstr(text, name));
}

static void test_long_names_folded(void **state)
{
	(void)state;
	/* 100 characters of 1, 2, 3 and 4 bytes each, and a long ASCII name */
	const char *units[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	for (size_t u = 0; u < 4; u++) {
		char name[512] = "";
		for (int i = 0; i < 100; i++)
			strcat(name, units[u]);
		char *m = build(name, name);
		char *head;
		const char *body;
		split(m, &head, &body);
		assert_crlf_only(m);
		assert_header_lines(head, 78);
		char *from = from_field(head);
		assert_string_equal(decode_words(from), name);
		/* quoted-printable lines of at most 76 characters */
		for (const char *p = body; *p != '\0';) {
			const char *eol = strstr(p, "\r\n");
			assert_non_null(eol);
			assert_true(eol - p <= 76);
			p = eol + 2;
		}
		assert_non_null(strstr(decode_qp(body), name));
	}
}

static void test_display_name_alone(void **state)
{
	(void)state;
	assert_string_equal(smtp_message_display_name(A, "Ops", 6), "\"Ops\"");
	assert_string_equal(smtp_message_display_name(A, "  Ops \r\n", 6), "\"Ops\"");
	assert_string_equal(smtp_message_display_name(A, "\xc3\xa9", 6), "=?UTF-8?B?w6k=?=");
	/* invalid UTF-8 (not storable, but never passed on) becomes '?' */
	assert_string_equal(smtp_message_display_name(A, "a\xff", 6), "\"a?\"");
}

static void test_bad_addresses_refused(void **state)
{
	(void)state;
	const char *bad[] = {"a@b.com\r\nRCPT TO:<x@y.z>", "a b@c.com", "<a@b.com>", "", NULL};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct smtp_message_in in = {"n", bad[i], "bob@example.org", NULL, "h", 25, 0, "x"};
		assert_null(smtp_message_build(A, &in, NULL));
		struct smtp_message_in in2 = {"n", "a@b.com", bad[i], NULL, "h", 25, 0, "x"};
		assert_null(smtp_message_build(A, &in2, NULL));
	}
	struct smtp_message_in in = {"n", "a@b.com", "c@d.com", NULL, "h", 25, 0, "x>\r\nBcc: y"};
	assert_null(smtp_message_build(A, &in, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_ascii),           cmocka_unit_test(test_header_injection),
	    cmocka_unit_test(test_quotes_escaped),        cmocka_unit_test(test_non_ascii_encoded),
	    cmocka_unit_test(test_long_names_folded),     cmocka_unit_test(test_display_name_alone),
	    cmocka_unit_test(test_bad_addresses_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
