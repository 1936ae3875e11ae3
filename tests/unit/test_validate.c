/*
 * test_validate.c - unit tests of src/validate.c (include/validate.h): the
 * field rules of docs/api.md as tables of accepted and refused
 * values. Inputs are given with their length, so embedded NULs count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "arena.h"
#include "mailsrv_limits.h"
#include "validate.h"

/* A string literal with its exact length (NULs included). */
#define S(lit) lit, sizeof(lit) - 1

struct row {
	const char *s;
	size_t len;
	int ok;
	const char *msg; /* NULL: any message (when refused) */
};

typedef const char *(*validator)(const char *, size_t);

static void run_table(const char *what, validator f, const struct row *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *m = f(t[i].s, t[i].len);
		if (t[i].ok && m != NULL)
			fail_msg("%s row %zu (\"%.*s\"): refused: %s", what, i, (int)t[i].len,
			         t[i].s, m);
		if (!t[i].ok && m == NULL)
			fail_msg("%s row %zu (\"%.*s\"): accepted", what, i, (int)t[i].len, t[i].s);
		if (!t[i].ok && t[i].msg != NULL && strcmp(m, t[i].msg) != 0)
			fail_msg("%s row %zu (\"%.*s\"): message \"%s\", want "
			         "\"%s\"",
			         what, i, (int)t[i].len, t[i].s, m, t[i].msg);
	}
}

/* n copies of c, then suffix, in buf */
static size_t fill(char *buf, size_t cap, char c, size_t n, const char *suffix)
{
	size_t sl = strlen(suffix);
	assert_true(n + sl < cap);
	memset(buf, c, n);
	memcpy(buf + n, suffix, sl + 1);
	return n + sl;
}

/* ---- utf8, control characters, trimming ---- */

static void test_utf8_count(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		size_t n;
	} v[] = {
	    {S(""), 0},
	    {S("abc"), 3},
	    {S("\xc3\xa9"), 1},                             /* é */
	    {S("caf\xc3\xa9"), 4},                          /* café */
	    {S("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"), 3}, /* 日本語 */
	    {S("\xf0\x9f\x98\x80"), 1},                     /* 😀, 4 bytes */
	    {S("a\xf0\x9f\x98\x80"
	       "b"),
	     3},
	    {S("e\xcc\x81"), 2},                        /* e + combining acute */
	    {S("\xf0\x9f\x87\xab\xf0\x9f\x87\xb7"), 2}, /* 🇫🇷: two points */
	    {S("a\0b"), 3},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_int_equal(utf8_count(v[i].s, v[i].len), v[i].n);
}

/* The decoder behind utf8_valid and oauth2_clean_text, at RFC 3629's
 * boundaries. */
static void test_utf8_decode(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		size_t n; /* bytes of the first sequence, 0 when invalid */
		unsigned int cp;
	} v[] = {
	    {S("a"), 1, 'a'},
	    {S("\x7f"), 1, 0x7F},
	    {S("\xc2\x80"), 2, 0x80},
	    {S("\xdf\xbf"), 2, 0x7FF},
	    {S("\xe0\xa0\x80"), 3, 0x800},
	    {S("\xed\x9f\xbf"), 3, 0xD7FF},
	    {S("\xee\x80\x80"), 3, 0xE000},
	    {S("\xef\xbf\xbf"), 3, 0xFFFF},
	    {S("\xf0\x90\x80\x80"), 4, 0x10000},
	    {S("\xf4\x8f\xbf\xbf"), 4, 0x10FFFF},
	    {S("\xc3\xa9zz"), 2, 0xE9}, /* only the first sequence */
	    {S("\xc0\xaf"), 0, 0},      /* overlong '/' */
	    {S("\xc1\xbf"), 0, 0},
	    {S("\xe0\x9f\xbf"), 0, 0},         /* overlong U+07FF */
	    {S("\xf0\x8f\xbf\xbf"), 0, 0},     /* overlong U+FFFF */
	    {S("\xed\xa0\x80"), 0, 0},         /* surrogate U+D800 */
	    {S("\xed\xbf\xbf"), 0, 0},         /* surrogate U+DFFF */
	    {S("\xf4\x90\x80\x80"), 0, 0},     /* U+110000 */
	    {S("\x80"), 0, 0},                 /* lone continuation */
	    {S("\xf8\x88\x80\x80\x80"), 0, 0}, /* five-byte form */
	    {S("\xff"), 0, 0},
	    {S("\xc3"), 0, 0}, /* truncated */
	    {S("\xe2\x82"), 0, 0},
	    {S("\xe2\x28\xa1"), 0, 0}, /* bad continuation */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned int cp = 0xFFFFFFFF;
		size_t n = utf8_decode(v[i].s, v[i].len, &cp);
		assert_int_equal(n, v[i].n);
		if (n > 0)
			assert_int_equal(cp, v[i].cp);
		/* utf8_valid agrees on the sequence taken alone */
		size_t whole = v[i].n > 0 ? v[i].n : v[i].len;
		assert_int_equal(utf8_valid(v[i].s, whole), v[i].n > 0);
	}
	/* a sequence cut by the length given, not by the string */
	unsigned int cp;
	assert_int_equal(utf8_decode("\xc3\xa9", 1, &cp), 0);
	assert_true(utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 10));
	assert_false(utf8_valid("caf\xc3\xa9 \xf0\x9f\x98\x80", 9));
	assert_true(utf8_valid("", 0));
}

static void test_has_control_chars(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		int yes;
	} v[] = {
	    {S(""), 0},
	    {S("plain text"), 0},
	    {S("caf\xc3\xa9 \xf0\x9f\x98\x80"), 0},
	    {S("\xc2\xa0"), 0},     /* U+00A0 NBSP: not C1 */
	    {S("\xc2\xbf"), 0},     /* U+00BF */
	    {S("\xe2\x80\xa8"), 0}, /* U+2028: not C0/C1 (header) */
	    {S("\0"), 1},
	    {S("a\0b"), 1},
	    {S("a\tb"), 1},
	    {S("line\n"), 1},
	    {S("\r"), 1},
	    {S("\x1b[31m"), 1},
	    {S("\x1f"), 1},
	    {S("\x7f"), 1},      /* DEL */
	    {S("a\xc2\x80"), 1}, /* U+0080 */
	    {S("\xc2\x85"), 1},  /* U+0085 NEL */
	    {S("x\xc2\x9f"
	       "y"),
	     1}, /* U+009F */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (text_has_control_chars(v[i].s, v[i].len) != v[i].yes)
			fail_msg("row %zu: want %d", i, v[i].yes);
}

static void test_trim_spaces(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} v[] = {
	    {"", ""},
	    {"a", "a"},
	    {"  a b \t", "a b"},
	    {"\t\t", ""},
	    {" ", ""},
	    {"a ", "a"},
	    {" a", "a"},
	    {"\xc2\xa0x\xc2\xa0", "\xc2\xa0x\xc2\xa0"}, /* NBSP stays */
	    {"\nx\n", "\nx\n"},                         /* ASCII space/tab only */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *s = v[i].in;
		size_t len = strlen(s);
		text_trim_spaces(&s, &len);
		assert_int_equal(len, strlen(v[i].out));
		assert_memory_equal(s, v[i].out, len);
		assert_true(s >= v[i].in && s + len <= v[i].in + strlen(v[i].in));
	}
}

static void test_trim_blanks(void **state)
{
	static const struct {
		const char *in;
		const char *out;
	} v[] = {
	    {"", ""},
	    {"a", "a"},
	    {"  a b  ", "a b"},
	    {"\xc2\xa0x\xc2\xa0", "x"},                     /* U+00A0 */
	    {"\xe3\x80\x80x\xe3\x80\x80", "x"},             /* U+3000 */
	    {"\xe2\x80\x80\xe2\x80\x8ax\xe2\x80\xaf", "x"}, /* U+2000, U+200A, U+202F */
	    {"\xe2\x80\xa8x\xe2\x80\xa9\xe2\x81\x9f", "x"}, /* U+2028, U+2029, U+205F */
	    {"\xe1\x9a\x80x", "x"},                         /* U+1680 */
	    {" \xc2\xa0 ", ""},                             /* only spaces */
	    {"a\xc2\xa0"
	     "b",
	     "a\xc2\xa0"
	     "b"},                                                      /* inside: kept */
	    {"\xe2\x80\x8bx\xe2\x80\x8b", "\xe2\x80\x8bx\xe2\x80\x8b"}, /* U+200B: no space */
	    {"\xef\xbb\xbfx", "\xef\xbb\xbfx"},                         /* U+FEFF: no space */
	    {"\tx\n", "\tx\n"},         /* controls are refused, not trimmed */
	    {"x\xc3\xa0", "x\xc3\xa0"}, /* a-grave ends in 0xa0 */
	    {"\xc3\xa0 ", "\xc3\xa0"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *s = v[i].in;
		size_t len = strlen(s);
		text_trim_blanks(&s, &len);
		if (len != strlen(v[i].out) || memcmp(s, v[i].out, len) != 0)
			fail_msg("row %zu: trimmed to %zu bytes", i, len);
		assert_true(s >= v[i].in && s + len <= v[i].in + strlen(v[i].in));
	}
	assert_true(text_has_blank(S("a\xe3\x80\x80")));
	assert_true(text_has_blank(S("a b")));
	assert_false(text_has_blank(S("a\xc3\xa0"
	                              "b")));
	assert_false(text_has_blank(S("a\tb")));
}

/* ---- text ---- */

static const char *name_rule(const char *s, size_t len)
{
	return validate_text(s, len, 1, NAME_MAX_CHARS);
}

static void test_validate_text(void **state)
{
	static char a100[128], a101[128], padded[128], emoji100[512], emoji101[512];
	size_t n100 = fill(a100, sizeof(a100), 'a', 100, "");
	size_t n101 = fill(a101, sizeof(a101), 'a', 101, "");
	padded[0] = ' ';
	size_t npad = 1 + fill(padded + 1, sizeof(padded) - 1, 'b', 100, "  ");
	static char wide[512];
	size_t nwide = 0;
	for (int i = 0; i < 40; i++, nwide += 3)
		memcpy(wide + nwide, "\xe3\x80\x80", 3);
	nwide += fill(wide + nwide, sizeof(wide) - nwide, 'c', 100, "");
	for (int i = 0; i < 40; i++, nwide += 2)
		memcpy(wide + nwide, "\xc2\xa0", 2);
	size_t ne100 = 0, ne101 = 0;
	for (int i = 0; i < 101; i++) {
		memcpy(emoji101 + ne101, "\xf0\x9f\x93\xa7", 4); /* 📧 */
		ne101 += 4;
	}
	memcpy(emoji100, emoji101, 400);
	ne100 = 400;
	const char *len_msg = "must be 1-100 characters";
	const char *ctl_msg = "must not contain control characters";
	const struct row t[] = {
	    {S("a"), 1, NULL},
	    {S("Office 365 relay"), 1, NULL},
	    {S("  trimmed  "), 1, NULL},
	    {S("Robert'); DROP TABLE mail_servers;--"), 1, NULL},
	    {S("quote \" backslash \\"), 1, NULL},
	    {a100, n100, 1, NULL},
	    {padded, npad, 1, NULL},    /* 100 after trimming */
	    {wide, nwide, 1, NULL},     /* 100 after trimming U+3000 and U+00A0 */
	    {emoji100, ne100, 1, NULL}, /* 100 characters, 400 bytes */
	    {S(""), 0, len_msg},
	    {S("   "), 0, len_msg},
	    {S(" \t "), 0, ctl_msg}, /* the tab is a control char */
	    {a101, n101, 0, len_msg},
	    {emoji101, ne101, 0, len_msg},
	    {S("a\0b"), 0, ctl_msg},
	    {S("a\nb"), 0, ctl_msg},
	    {S("a\rb"), 0, ctl_msg},
	    {S("a\x7f"), 0, ctl_msg},
	    {S("a\xc2\x85"
	       "b"),
	     0, ctl_msg},
	    {S("\x1b[2J"), 0, ctl_msg},
	};
	run_table("name", name_rule, t, sizeof(t) / sizeof(t[0]));
	/* an optional field: empty is fine */
	assert_null(validate_text("", 0, 0, USERNAME_MAX_CHARS));
	assert_string_equal(validate_text(a101, n101, 0, 100), "is too long");
}

static void test_validate_secret(void **state)
{
	static char big[SECRET_MAX_BYTES + 2];
	memset(big, 'x', sizeof(big));
	assert_null(validate_secret("", 0, SECRET_MAX_BYTES));
	assert_null(validate_secret(S("p@ss w\xc3\xb6rd \"'\\"), SECRET_MAX_BYTES));
	assert_null(validate_secret(big, SECRET_MAX_BYTES, SECRET_MAX_BYTES));
	assert_non_null(validate_secret(big, SECRET_MAX_BYTES + 1, SECRET_MAX_BYTES));
	assert_string_equal(validate_secret(S("a\nb"), SECRET_MAX_BYTES),
	                    "must not contain control characters");
	assert_non_null(validate_secret(S("a\0b"), SECRET_MAX_BYTES));
}

/* ---- hosts ---- */

static void test_validate_host(void **state)
{
	static char l63[80], l64[80], n253[300], n254[300];
	size_t nl63 = fill(l63, sizeof(l63), 'a', 63, ".example");
	size_t nl64 = fill(l64, sizeof(l64), 'a', 64, ".example");
	/* 3 labels of 63, dots, then 61: exactly 253 */
	char lab[64];
	fill(lab, sizeof(lab), 'b', 63, "");
	snprintf(n253, sizeof(n253), "%s.%s.%s.", lab, lab, lab);
	size_t nn253 =
	    strlen(n253) + fill(n253 + strlen(n253), sizeof(n253) - strlen(n253), 'c', 61, "");
	snprintf(n254, sizeof(n254), "%s.%s.%s.", lab, lab, lab);
	size_t nn254 =
	    strlen(n254) + fill(n254 + strlen(n254), sizeof(n254) - strlen(n254), 'c', 62, "");
	assert_int_equal(nn253, 253);
	assert_int_equal(nn254, 254);
	const char *hyphen = "labels must not start or end with a hyphen";
	const char *ctl = "must not contain control characters";
	const struct row t[] = {
	    {S("localhost"), 1, NULL},
	    {S("a-b.example"), 1, NULL},
	    {S("smtp.office365.com"), 1, NULL},
	    {S("SMTP.Example.COM"), 1, NULL},
	    {S("a"), 1, NULL},
	    {S("1a.example"), 1, NULL},
	    {S("mail.1example.com"), 1, NULL},
	    {S("xn--bcher-kva.example"), 1, NULL},
	    {S("a--b.example"), 1, NULL},
	    {l63, nl63, 1, NULL},
	    {n253, nn253, 1, NULL},
	    {S("1.2.3.4"), 1, NULL},
	    {S("0.0.0.0"), 1, NULL},
	    {S("255.255.255.255"), 1, NULL},
	    {S("::1"), 1, NULL},
	    {S("2001:db8::25"), 1, NULL},
	    {S("::ffff:127.0.0.1"), 1, NULL},
	    {S("fe80::1"), 1, NULL},
	    {S(""), 0, "must not be empty"},
	    {S("-a.example"), 0, hyphen},
	    {S("a-.example"), 0, hyphen},
	    {S("a.-b"), 0, hyphen},
	    {S("a..b"), 0, "must not contain empty labels"},
	    {S(".a"), 0, "must not contain empty labels"},
	    {S("a."), 0, "must not end with a dot"},
	    {S("."), 0, NULL},
	    {l64, nl64, 0, "labels must be at most 63 characters"},
	    {n254, nn254, 0, "must be at most 253 characters"},
	    {S("[::1]"), 0, "must be an IPv6 address without brackets"},
	    {S("256.1.1.1"), 0, NULL},
	    {S("999.1.1.1"), 0, NULL},
	    {S("1.2.3"), 0, NULL},
	    {S("1.2.3.4.5"), 0, NULL},
	    {S("01.2.3.4"), 0, NULL},
	    {S("1.2.3.4."), 0, NULL},
	    {S("12345"), 0, NULL},
	    {S("a.123"), 0, NULL}, /* RFC 1123 2.1: alphabetic TLD */
	    {S("127.1"), 0, NULL}, /* inet_aton spellings of IPv4 */
	    {S("0x7f.1"), 0, NULL},
	    {S("0x7f000001"), 0, NULL},
	    {S("0x000000000000000000000000000000000000000000000000000000000000000007f000001"), 0,
	     NULL},
	    {S("2130706433"), 0, NULL},
	    {S("exa mple.com"), 0, NULL},
	    {S("ex\0ample.com"), 0, ctl},
	    {S("example.com\n"), 0, ctl},
	    {S("exa\tmple.com"), 0, ctl},
	    {S("\x7f"), 0, ctl},
	    {S("a_b.example"), 0, NULL},
	    {S("ex@mple.com"), 0, NULL},
	    {S("example.com/"), 0, NULL},
	    {S("ex\xc3\xa4mple.com"), 0, NULL},
	    {S("1.2.3.4:25"), 0, "must be a valid IPv6 address"},
	    {S("host:25"), 0, "must be a valid IPv6 address"},
	    {S("fe80::1%eth0"), 0, "must be a valid IPv6 address"},
	    {S("::1::"), 0, NULL},
	    {S("1:2:3:4:5:6:7:8:9"), 0, NULL},
	};
	run_table("host", validate_host, t, sizeof(t) / sizeof(t[0]));
}

/* ---- e-mail ---- */

static void test_validate_email(void **state)
{
	static char l64[300], l65[300], t254[300], t255[300];
	size_t nl64 = fill(l64, sizeof(l64), 'u', 64, "@example.com");
	size_t nl65 = fill(l65, sizeof(l65), 'u', 65, "@example.com");
	/* 64 + '@' + 189 = 254: "d{61}.d{61}.d{61}.com" is 61*3+2+4 = 189 */
	char lab[64];
	fill(lab, sizeof(lab), 'd', 61, "");
	snprintf(t254, sizeof(t254), "%.*s@%s.%s.%s.com", 64, l64, lab, lab, lab);
	snprintf(t255, sizeof(t255), "%.*s@%s.%s.%s.coma", 64, l64, lab, lab, lab);
	size_t nt254 = strlen(t254), nt255 = strlen(t255);
	assert_int_equal(nt254, 254);
	assert_int_equal(nt255, 255);
	const struct row t[] = {
	    {S("user@example.com"), 1, NULL},
	    {S("first.last@example.co.uk"), 1, NULL},
	    {S("user+tag@example.com"), 1, NULL},
	    {S("o'brien@example.ie"), 1, NULL},
	    {S("no-reply_bot=1@mail.example"), 1, NULL},
	    {S("a@b.co"), 1, NULL},
	    {S("\xe7\x94\xa8\xe6\x88\xb7@example.com"), 1, NULL}, /* RFC 6531 */
	    {S("x@[192.0.2.1]"), 1, NULL},
	    {S("x@[IPv6:2001:db8::1]"), 1, NULL},
	    {S("x@[ipv6:::1]"), 1, NULL},
	    {S("x@[::1]"), 1, NULL},
	    {l64, nl64, 1, NULL},
	    {t254, nt254, 1, NULL},
	    {S(""), 0, "must not be empty"},
	    {S("user"), 0, NULL},
	    {S("@example.com"), 0, NULL},
	    {S("user@"), 0, NULL},
	    {S("user@localhost"), 0, "the domain must contain a dot"},
	    {S("a@b@example.com"), 0, NULL},
	    {S("user name@example.com"), 0, "must not contain spaces"},
	    {S("user@exa mple.com"), 0, "must not contain spaces"},
	    {S(" user@example.com"), 0, "must not contain spaces"},
	    {S("\"quoted\"@example.com"), 0, NULL},
	    {S("\"a b\"@example.com"), 0, NULL},
	    {S("<user@example.com>"), 0, NULL},
	    {S("Name <user@example.com>"), 0, NULL},
	    {S("user,x@example.com"), 0, NULL},
	    {S("user;x@example.com"), 0, NULL},
	    {S("us(comment)er@example.com"), 0, NULL},
	    {S("us\\er@example.com"), 0, NULL},
	    {S(".user@example.com"), 0, NULL},
	    {S("user.@example.com"), 0, NULL},
	    {S("us..er@example.com"), 0, NULL},
	    {l65, nl65, 0, NULL},
	    {t255, nt255, 0, "must be at most 254 characters"},
	    {S("user@example.com\n"), 0, "must not contain control characters"},
	    {S("user@example.com\r\nRCPT TO:<x@y.z>"), 0, "must not contain control characters"},
	    {S("user\0@example.com"), 0, "must not contain control characters"},
	    {S("user\x7f@example.com"), 0, NULL},
	    {S("user\xc2\x85@example.com"), 0, NULL},
	    {S("user@-example.com"), 0, NULL},
	    {S("user@example..com"), 0, NULL},
	    {S("user@example.com."), 0, NULL},
	    {S("user@exa_mple.com"), 0, NULL},
	    {S("user@1.2.3.4"), 0, NULL},
	    {S("user@[1.2.3]"), 0, NULL},
	    {S("user@[example.com]"), 0, NULL},
	    {S("user@[IPv6:1.2.3.4]"), 0, NULL},
	    {S("user@[]"), 0, NULL},
	    {S("user@ex\xc3\xa4mple.com"), 0, NULL},
	    {S("us\xc2\xa0"
	       "er@example.com"),
	     0, NULL},                                    /* U+00A0 is a space */
	    {S("\xe3\x80\x80user@example.com"), 0, NULL}, /* U+3000 too */
	};
	run_table("email", validate_email, t, sizeof(t) / sizeof(t[0]));
}

/* ---- https URLs ---- */

static struct arena *url_arena;

/* validate_https_url as a validator of the tables (the normalized form is
 * checked by test_https_url_normalized). */
static const char *https_url(const char *s, size_t len)
{
	const char *norm;
	arena_reset(url_arena);
	const char *m = validate_https_url(url_arena, s, len, &norm);
	assert_true((m == NULL) == (norm != NULL));
	return m;
}

static void test_validate_https_url(void **state)
{
	static char u2048[URL_MAX_BYTES + 8], u2049[URL_MAX_BYTES + 8];
	const char *pre = "https://example.com/";
	size_t pl = strlen(pre);
	memcpy(u2048, pre, pl);
	memset(u2048 + pl, 'p', URL_MAX_BYTES - pl);
	memcpy(u2049, u2048, URL_MAX_BYTES);
	u2049[URL_MAX_BYTES] = 'p';
	const char *port = "port must be 1-65535";
	const char *ipv4 = "must name a host name or a valid IPv4 address (four numbers 0-255)";
	const struct row t[] = {
	    {S("https://example.com"), 1, NULL},
	    {S("https://example.com/"), 1, NULL},
	    {S("HTTPS://Example.COM/oauth2/token"), 1, NULL},
	    {S("https://login.microsoftonline.com/common/oauth2/v2.0/authorize"), 1, NULL},
	    {S("https://accounts.google.com/o/oauth2/auth?access_type=offline&prompt=consent"), 1,
	     NULL},
	    {S("https://[::1]:8443/token"), 1, NULL},
	    {S("https://[2001:db8::1]/"), 1, NULL},
	    {S("https://127.0.0.1:8443/token"), 1, NULL},
	    {S("https://localhost:1/"), 1, NULL},
	    {S("https://host:65535/x"), 1, NULL},
	    {S("https://example.com/a%20b/%C3%A9"), 1, NULL},
	    {S("https://example.com?x=1"), 1, NULL},
	    {S("https://example.com/p;a=1/~u/(x)*!$'+,@:"), 1, NULL},
	    {u2048, URL_MAX_BYTES, 1, NULL},
	    {S(""), 0, "must not be empty"},
	    {u2049, URL_MAX_BYTES + 1, 0, "must be at most 2048 characters"},
	    {S("http://x"), 0, "must be an https:// URL"},
	    {S("http://example.com/token"), 0, "must be an https:// URL"},
	    {S("ftp://example.com"), 0, "must be an https:// URL"},
	    {S("https:/example.com"), 0, "must be an https:// URL"},
	    {S("//example.com"), 0, "must be an https:// URL"},
	    {S("example.com"), 0, "must be an https:// URL"},
	    {S("https"), 0, "must be an https:// URL"},
	    {S("https://"), 0, "must name a host"},
	    {S("https:///path"), 0, "must name a host"},
	    {S("https://:443/"), 0, "must name a host"},
	    {S("https://user@host/x"), 0, "must not contain a user name or password"},
	    {S("https://user:pw@host/x"), 0, "must not contain a user name or password"},
	    {S("https://evil.example@good.example/"), 0,
	     "must not contain a user name or password"},
	    {S("https://host:0/"), 0, port},
	    {S("https://host:65536/"), 0, port},
	    {S("https://host:99999/"), 0, port},
	    {S("https://host:123456/"), 0, port},
	    {S("https://host:abc/"), 0, port},
	    {S("https://host:-1/"), 0, port},
	    {S("https://[::1]:0/"), 0, port},
	    {S("https://exa mple.com/"), 0, "must not contain spaces"},
	    {S("https://example.com/a b"), 0, "must not contain spaces"},
	    {S("https://example.com/\x01"), 0, "must not contain control characters"},
	    {S("https://example.com/\r\nHost: x"), 0, "must not contain control characters"},
	    {S("https://example.com\0.evil/"), 0, "must not contain control characters"},
	    {S("https://example.com/\xc3\xa4"), 0, NULL},
	    {S("https://ex\xc3\xa4mple.com/"), 0, NULL},
	    {S("https://example.com/#frag"), 0, "must not contain a fragment (#)"},
	    {S("https://example.com#"), 0, "must not contain a fragment (#)"},
	    {S("https://example.com/%zz"), 0, NULL},
	    {S("https://example.com/%2"), 0, NULL},
	    {S("https://example.com/%"), 0, NULL},
	    {S("https://example.com/<script>"), 0, NULL},
	    {S("https://example.com/a\\b"), 0, NULL},
	    {S("https://example.com/{x}"), 0, NULL},
	    {S("https://example.com/a\"b"), 0, NULL},
	    {S("https://example.com/[x]"), 0, NULL},
	    {S("https://[::1/"), 0, NULL},
	    {S("https://[example.com]/"), 0, NULL},
	    {S("https://[fe80::1%25eth0]/"), 0, NULL},
	    {S("https://[::1]x/"), 0, NULL},
	    {S("https://::1/"), 0, NULL},
	    {S("https://-bad.example/"), 0, NULL},
	    {S("https://bad-.example/"), 0, NULL},
	    {S("https://a..b/"), 0, NULL},
	    {S("https://999.1.1.1/"), 0, NULL},
	    {S("https://exa_mple.com/"), 0, NULL},
	    /* What a second parser would read differently: libcurl's reading
	     * is the one checked. */
	    {S("https://example.com\\@evil.example/"), 0,
	     "must not contain a user name or password"},
	    {S("https://example.com\\evil.example/"), 0, NULL},
	    {S("https:\\\\example.com/"), 0, NULL},
	    {S("https:/\\example.com/"), 0, NULL},
	    {S("https://\\example.com/"), 0, "must name a host"},
	    {S("https://a@b"), 0, "must not contain a user name or password"},
	    {S("https://:@example.com/"), 0, "must not contain a user name or password"},
	    {S("https://%75ser@example.com/"), 0, "must not contain a user name or password"},
	    {S("https://example.com%40evil.example/"), 0, NULL},
	    {S("https://example.com%2fevil/"), 0, NULL},
	    {S("https://ex%00ample.com/"), 0, NULL},
	    {S("https://b%C3%BCcher.example/"), 0, NULL},
	    {S("https://?x=1"), 0, "must name a host"},
	    {S("https://example.com/?q=%"), 0, "must use % only in escapes like %20"},
	    {S("https://example.com/\t"), 0, "must not contain control characters"},
	    {S(" https://example.com/"), 0, "must not contain spaces"},
	    {S("https://example.com/ "), 0, "must not contain spaces"},
	    {S("https://example.com:4\0"
	       "43/"),
	     0, "must not contain control characters"},
	    {S("https://[::1]:65536/"), 0, port},
	    {S("https://[v1.x]/"), 0, NULL},
	    {S("https://[::ffff:127.0.0.1%25lo]/"), 0, NULL},
	    /* IPv4 only as the dotted quad, as written: parsers disagree on
	     * the rest (libcurl and inet_aton read 010 as octal 8). */
	    {S("https://127.1/"), 0, ipv4},
	    {S("https://2130706433/"), 0, ipv4},
	    {S("https://0x7f.1/"), 0, ipv4},
	    {S("https://017700000001:8443/"), 0, ipv4},
	    {S("https://192.0.2.010/"), 0, ipv4},
	    {S("https://%31%32%37.0.0.1/"), 0, ipv4},
	    {S("https://127.0.0.%31?x"), 0, ipv4},
	    {S("https://127.0.0.1?x"), 1, NULL},
	    {S("https://127.0.0.1:8443"), 1, NULL},
	};
	run_table("url", https_url, t, sizeof(t) / sizeof(t[0]));
}

/* The stored form: libcurl's normalization, lower-case host, no default
 * port, no dot segments. */
static void test_https_url_normalized(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} t[] = {
	    {"https://example.com", "https://example.com/"},
	    {"HTTPS://Example.COM/OAuth2/Token", "https://example.com/OAuth2/Token"},
	    {"hTtPs://EXAMPLE.com:443/x", "https://example.com/x"},
	    {"https://example.com:0443/x", "https://example.com/x"},
	    {"https://example.com:/x", "https://example.com/x"},
	    {"https://example.com:08443/x", "https://example.com:8443/x"},
	    {"https://example.com:8443/x?a=1&b=%2F", "https://example.com:8443/x?a=1&b=%2F"},
	    {"https://example.com/a/./b/../c", "https://example.com/a/c"},
	    {"https://example.com/a/%2e%2e/c", "https://example.com/a/%2e%2e/c"},
	    {"https://example.com?x=1", "https://example.com/?x=1"},
	    {"https://ex%61mple.com/", "https://example.com/"},
	    {"https://EX%41MPLE.com/", "https://example.com/"},
	    {"https://xn--bcher-kva.example/", "https://xn--bcher-kva.example/"},
	    {"https://XN--BCHER-KVA.example/", "https://xn--bcher-kva.example/"},
	    {"https://[::FFFF:127.0.0.1]/", "https://[::ffff:127.0.0.1]/"},
	    {"https://[::ffff:7f00:1]:8443/t", "https://[::ffff:7f00:1]:8443/t"},
	    {"https://[2001:DB8::1]:443/", "https://[2001:db8::1]/"},
	    {"https://192.0.2.10:443/", "https://192.0.2.10/"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *norm = NULL;
		arena_reset(url_arena);
		const char *m = validate_https_url(url_arena, t[i].in, strlen(t[i].in), &norm);
		if (m != NULL)
			fail_msg("%s: refused: %s", t[i].in, m);
		if (strcmp(norm, t[i].want) != 0)
			fail_msg("%s: normalized to %s, want %s", t[i].in, norm, t[i].want);
		/* The normalized form is a fixed point. */
		const char *again = NULL;
		m = validate_https_url(url_arena, norm, strlen(norm), &again);
		if (m != NULL || strcmp(again, norm) != 0)
			fail_msg("%s: normalized again to %s", norm, m ? m : again);
	}
	/* Growing past the cap by normalization ("/" added) is refused. */
	static char big[URL_MAX_BYTES + 1];
	const char *pre = "https://example.com?";
	memcpy(big, pre, strlen(pre));
	memset(big + strlen(pre), 'q', URL_MAX_BYTES - strlen(pre));
	const char *norm = "x";
	arena_reset(url_arena);
	assert_string_equal(validate_https_url(url_arena, big, URL_MAX_BYTES, &norm),
	                    "must be at most 2048 characters");
	assert_null(norm);
}

/* ---- scopes ---- */

static void test_validate_scope(void **state)
{
	static char s1024[SCOPE_MAX_CHARS + 8], s1025[SCOPE_MAX_CHARS + 8];
	size_t n1024 = fill(s1024, sizeof(s1024), 's', SCOPE_MAX_CHARS, "");
	size_t n1025 = fill(s1025, sizeof(s1025), 's', SCOPE_MAX_CHARS + 1, "");
	const char *sep = "must be scopes separated by single spaces";
	const struct row t[] = {
	    {S(""), 1, NULL},
	    {S("openid"), 1, NULL},
	    {S("openid email offline_access"), 1, NULL},
	    {S("https://outlook.office.com/SMTP.Send offline_access"), 1, NULL},
	    {S("https://mail.google.com/"), 1, NULL},
	    {S("a!#[]{}~"), 1, NULL},
	    {s1024, n1024, 1, NULL},
	    {s1025, n1025, 0, "must be at most 1024 characters"},
	    {S(" openid"), 0, sep},
	    {S("openid "), 0, sep},
	    {S("a  b"), 0, sep},
	    {S(" "), 0, sep},
	    {S("a\tb"), 0, "must not contain control characters"},
	    {S("a\nb"), 0, "must not contain control characters"},
	    {S("a\"b"), 0, NULL},
	    {S("a\\b"), 0, NULL},
	    {S("\xc3\xa9"), 0, NULL},
	};
	run_table("scope", validate_scope, t, sizeof(t) / sizeof(t[0]));
}

/* ---- ids ---- */

static void test_parse_positive_id(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		int ok;
		long long v;
	} v[] = {
	    {S("1"), 1, 1},
	    {S("42"), 1, 42},
	    {S("1000000"), 1, 1000000},
	    {S("9223372036854775807"), 1, 9223372036854775807LL},
	    {S("0"), 0, 0},
	    {S("-1"), 0, 0},
	    {S("+1"), 0, 0},
	    {S("01"), 0, 0},
	    {S("00"), 0, 0},
	    {S("9223372036854775808"), 0, 0},
	    {S("18446744073709551616"), 0, 0},
	    {S("99999999999999999999"), 0, 0},
	    {S("12a"), 0, 0},
	    {S("1e3"), 0, 0},
	    {S("0x1"), 0, 0},
	    {S(" 1"), 0, 0},
	    {S("1 "), 0, 0},
	    {S("1\0"), 0, 0},
	    {S("\xd9\xa1"), 0, 0}, /* ARABIC-INDIC DIGIT ONE */
	    {S(""), 0, 0},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		long long out = -7;
		int r = text_parse_positive_id(v[i].s, v[i].len, &out);
		if (v[i].ok) {
			if (r != 0)
				fail_msg("row %zu refused", i);
			assert_int_equal(out, v[i].v);
		} else {
			if (r == 0)
				fail_msg("row %zu (\"%.*s\") accepted", i, (int)v[i].len, v[i].s);
			assert_int_equal(out, -7); /* untouched on failure */
		}
	}
	/* the length bounds the parse, not a NUL */
	long long out = 0;
	assert_int_equal(text_parse_positive_id("123456", 3, &out), 0);
	assert_int_equal(out, 123);
}

static void test_media_type(void **state)
{
	(void)state;
	static const struct {
		const char *ct;
		const char *type;
		int ok;
	} t[] = {
	    {"application/json", "application/json", 1},
	    {"Application/JSON", "application/json", 1},
	    {"application/json; charset=utf-8", "application/json", 1},
	    {"application/json;charset=UTF-8", "application/json", 1},
	    {"application/json; charset=\"utf-8\"", "application/json", 1},
	    {"application/json; charset=latin1", "application/json", 0},
	    {"application/json; foo=bar", "application/json", 0},
	    {"application/jsonx", "application/json", 0},
	    {"text/plain", "application/json", 0},
	    {"", "application/json", 0},
	    {NULL, "application/json", 0},
	    {"application/merge-patch+json", "application/merge-patch+json", 1},
	    {"application/merge-patch+json", "application/json", 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (text_media_type_is(t[i].ct, t[i].type) != t[i].ok)
			fail_msg("row %zu: \"%s\" vs %s", i, t[i].ct ? t[i].ct : "(null)",
			         t[i].type);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_utf8_count),        cmocka_unit_test(test_utf8_decode),
	    cmocka_unit_test(test_has_control_chars), cmocka_unit_test(test_trim_spaces),
	    cmocka_unit_test(test_trim_blanks),       cmocka_unit_test(test_validate_text),
	    cmocka_unit_test(test_validate_secret),   cmocka_unit_test(test_validate_host),
	    cmocka_unit_test(test_validate_email),    cmocka_unit_test(test_validate_https_url),
	    cmocka_unit_test(test_validate_scope),    cmocka_unit_test(test_parse_positive_id),
	    cmocka_unit_test(test_media_type),        cmocka_unit_test(test_https_url_normalized),
	};
	url_arena = arena_new(1 << 20);
	if (url_arena == NULL)
		return 1;
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	arena_free(url_arena);
	return failed;
}
