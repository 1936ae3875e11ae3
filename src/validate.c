/*
 * validate.c - the field rules (docs/api.md, "A mail server") as pure
 * functions (see validate.h): no allocation, no global state, safe from any
 * thread. Inputs are (pointer, length), may hold NUL bytes, and are valid
 * UTF-8 (the JSON parser checks that before we are called).
 *
 * Each validator answers NULL or a short, static message that the API shows
 * next to the field name, so messages never quote the input (it may be a
 * secret) and say what a valid value looks like.
 *
 * Choices where the RFCs leave room, made strict on purpose because these
 * values end up in SMTP commands, mail headers and outbound HTTPS requests:
 * - host names are RFC 1123 ASCII labels (IDNs go in as punycode "xn--");
 *   no trailing dot; a name whose last label is all digits is refused
 *   (RFC 1123 section 2.1: "the highest-level component label will be
 *   alphabetic"), so "999.1.1.1" or "1.2.3" is never taken for a name, and
 *   numeric spellings that inet_aton(3) and getaddrinfo(3) would read as
 *   IPv4 ("127.1", "0x7f.1", "2130706433") are refused: only the dotted quad
 *   is an IPv4 address here.
 * - e-mail: the local part is an RFC 5322 dot-atom (section 3.2.3) whose
 *   atoms may also hold UTF-8 (RFC 6531 section 3.3); quoted local parts
 *   ("a b"@x) and comments are refused, which also keeps '"', '<', '>', ',',
 *   ';', '\\' and brackets out of headers and SMTP commands. The domain is a
 *   host name with at least one dot, or an address literal in brackets:
 *   "[192.0.2.1]", "[IPv6:2001:db8::1]" (RFC 5321 section 4.1.3) or, leniently,
 *   "[2001:db8::1]".
 * - https URL: ASCII only; after the authority, only the RFC 3986 characters
 *   allowed in path and query (section 3.3, 3.4: unreserved, sub-delims, ':',
 *   '@', '/', '?') and well-formed '%' escapes. No fragment: an OAuth
 *   endpoint URI must not include one (RFC 6749 sections 3.1 and 3.2).
 *   No userinfo, port 1-65535. The URL is parsed by libcurl's URL API
 *   (outbound_url_normalize), the parser of the outbound call, and these
 *   rules are checked on its parts; the caller stores the normalized form
 *   ("HTTPS://Login.Example.com:0443/a/../t" is kept as
 *   "https://login.example.com/t"). An IPv4 address must be written as the
 *   dotted quad libcurl reads. This validator alone allocates (in the arena
 *   it is given).
 */
#include "validate.h"

#include "outbound.h"

#include "mailsrv_limits.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

/* RFC 1123 section 2.1 (label rule of RFC 1035 section 2.3.4). */
#define LABEL_MAX 63
/* RFC 5321 section 4.5.3.1.1. */
#define EMAIL_LOCAL_MAX 64
/* Enough for any IPv6 text form (INET6_ADDRSTRLEN is 46). */
#define IP_TEXT_MAX 64

static const char MSG_CONTROL[] = "must not contain control characters";

size_t utf8_decode(const char *str, size_t left, unsigned int *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char b = s[0];
	size_t n;
	unsigned int c;
	if (b < 0x80) {
		*cp = b;
		return 1;
	} else if ((b & 0xE0) == 0xC0) {
		n = 2;
		c = b & 0x1F;
	} else if ((b & 0xF0) == 0xE0) {
		n = 3;
		c = b & 0x0F;
	} else if ((b & 0xF8) == 0xF0) {
		n = 4;
		c = b & 0x07;
	} else {
		return 0;
	}
	if (n > left)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[k] & 0x3F);
	}
	if ((n == 2 && c < 0x80) || (n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

int utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		unsigned int cp;
		size_t n = utf8_decode(s + i, len - i, &cp);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

size_t utf8_count(const char *s, size_t len)
{
	size_t n = 0;
	/* every code point has exactly one byte that is not 10xxxxxx */
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

int text_has_control_chars(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7F)
			return 1;
		/* U+0080-U+009F are encoded as C2 80 .. C2 9F */
		if (c == 0xC2 && i + 1 < len) {
			unsigned char d = (unsigned char)s[i + 1];
			if (d >= 0x80 && d <= 0x9F)
				return 1;
		}
	}
	return 0;
}

void text_trim_spaces(const char **s, size_t *len)
{
	const char *p = *s;
	size_t n = *len;
	while (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	*s = p;
	*len = n;
}

/* A space character that text fields lose at their ends: U+0020 and the
 * Unicode space separators (general category Zs: U+00A0, U+1680,
 * U+2000-U+200A, U+202F, U+205F, U+3000) with the line and paragraph
 * separators U+2028/U+2029 (Zl, Zp). The bytes of the one at s (left >= 1
 * bytes), or 0 when it is none. */
static size_t blank_at(const char *s, size_t left)
{
	if (s[0] == ' ')
		return 1;
	unsigned int cp;
	size_t n = utf8_decode(s, left, &cp);
	if (n < 2)
		return 0;
	if (cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
	    cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000)
		return n;
	return 0;
}

int text_has_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (blank_at(s + i, len - i) != 0)
			return 1;
	return 0;
}

void text_trim_blanks(const char **s, size_t *len)
{
	const char *p = *s;
	size_t n = *len;
	for (size_t k; n > 0 && (k = blank_at(p, n)) != 0;) {
		p += k;
		n -= k;
	}
	/* backwards: a code point starts at the last byte that is not a
	 * continuation byte (10xxxxxx) */
	while (n > 0) {
		size_t start = n - 1;
		while (start > 0 && ((unsigned char)p[start] & 0xC0) == 0x80)
			start--;
		size_t k = blank_at(p + start, n - start);
		if (k == 0 || start + k != n)
			break;
		n = start;
	}
	*s = p;
	*len = n;
}

/* Static messages for the length limits the service uses; another pair
 * gets a generic message. */
struct len_msg {
	size_t min, max;
	const char *msg;
};

static const struct len_msg len_msgs[] = {
    {1, NAME_MAX_CHARS, "must be 1-" STR(NAME_MAX_CHARS) " characters"},
    {1, SENDER_NAME_MAX_CHARS, "must be 1-" STR(SENDER_NAME_MAX_CHARS) " characters"},
    {0, USERNAME_MAX_CHARS, "must be at most " STR(USERNAME_MAX_CHARS) " characters"},
    {1, USERNAME_MAX_CHARS, "must be 1-" STR(USERNAME_MAX_CHARS) " characters"},
    {0, CLIENT_ID_MAX_CHARS, "must be at most " STR(CLIENT_ID_MAX_CHARS) " characters"},
    {1, CLIENT_ID_MAX_CHARS, "must be 1-" STR(CLIENT_ID_MAX_CHARS) " characters"},
    {0, LIST_Q_MAX_CHARS, "must be at most " STR(LIST_Q_MAX_CHARS) " characters"},
    {0, SCOPE_MAX_CHARS, "must be at most " STR(SCOPE_MAX_CHARS) " characters"},
};

static const char *length_message(size_t n, size_t min, size_t max)
{
	for (size_t i = 0; i < sizeof(len_msgs) / sizeof(len_msgs[0]); i++)
		if (len_msgs[i].min == min && len_msgs[i].max == max)
			return len_msgs[i].msg;
	if (n < min)
		return min == 1 ? "must not be empty" : "is too short";
	return "is too long";
}

const char *validate_text(const char *s, size_t len, size_t min_chars, size_t max_chars)
{
	if (text_has_control_chars(s, len))
		return MSG_CONTROL;
	text_trim_blanks(&s, &len);
	size_t n = utf8_count(s, len);
	if (n < min_chars || n > max_chars)
		return length_message(n, min_chars, max_chars);
	return NULL;
}

const char *validate_secret(const char *s, size_t len, size_t max_bytes)
{
	if (text_has_control_chars(s, len))
		return MSG_CONTROL;
	if (len > max_bytes) {
		if (max_bytes == SECRET_MAX_BYTES)
			return "must be at most " STR(SECRET_MAX_BYTES) " bytes";
		return "is too long";
	}
	return NULL;
}

/* ---- hosts ---- */

static int is_alpha(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int is_hex(unsigned char c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

/* Copy into a NUL-terminated buffer for inet_pton; 0 when it does not fit
 * or holds a NUL (which would cut the string short). */
static int to_cstr(const char *s, size_t len, char *buf, size_t bufsize)
{
	if (len >= bufsize || memchr(s, '\0', len) != NULL)
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return 1;
}

static int is_ipv4(const char *s, size_t len)
{
	char buf[IP_TEXT_MAX];
	struct in_addr a4;
	/* glibc's inet_pton takes exactly four decimal parts, no leading
	 * zeros: the dotted quad of RFC 1123 section 2.1 */
	return to_cstr(s, len, buf, sizeof(buf)) && inet_pton(AF_INET, buf, &a4) == 1;
}

static int is_ipv6(const char *s, size_t len)
{
	char buf[IP_TEXT_MAX];
	struct in6_addr a6;
	/* refuses a zone id ("fe80::1%eth0"): it names a local interface */
	return to_cstr(s, len, buf, sizeof(buf)) && inet_pton(AF_INET6, buf, &a6) == 1;
}

/* A spelling that the C library's resolver would take for an IPv4 address
 * although it is no dotted quad ("127.1", "0x7f.1", "017700000001"). */
static int is_odd_ipv4(const char *s, size_t len)
{
	/* as long as any host name: strtoul takes any number of leading
	 * zeros ("0x00000000007f000001") */
	char buf[HOSTNAME_MAX_BYTES + 1];
	struct in_addr a4;
	return to_cstr(s, len, buf, sizeof(buf)) && inet_aton(buf, &a4) != 0;
}

/* RFC 1123 host name; NULL or the problem. */
static const char *check_hostname(const char *s, size_t len)
{
	if (len == 0)
		return "must not be empty";
	if (len > HOSTNAME_MAX_BYTES)
		return "must be at most " STR(HOSTNAME_MAX_BYTES) " characters";
	size_t start = 0;
	int last_numeric = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			unsigned char c = (unsigned char)s[i];
			if (!is_alpha(c) && !is_digit(c) && c != '-')
				return "must be a host name (letters, digits, "
				       "hyphens and dots) or an IP address";
			continue;
		}
		/* end of a label: s[start..i) */
		size_t n = i - start;
		if (n == 0)
			return i == len && len > 0 && s[len - 1] == '.'
			           ? "must not end with a dot"
			           : "must not contain empty labels";
		if (n > LABEL_MAX)
			return "labels must be at most " STR(LABEL_MAX) " characters";
		if (s[start] == '-' || s[i - 1] == '-')
			return "labels must not start or end with a hyphen";
		last_numeric = 1;
		for (size_t j = start; j < i; j++)
			if (!is_digit((unsigned char)s[j]))
				last_numeric = 0;
		start = i + 1;
	}
	if (last_numeric || is_odd_ipv4(s, len))
		return "must be a host name or a valid IPv4 address "
		       "(four numbers 0-255)";
	return NULL;
}

const char *validate_host(const char *s, size_t len)
{
	if (len == 0)
		return "must not be empty";
	if (text_has_control_chars(s, len))
		return MSG_CONTROL;
	if (s[0] == '[')
		return "must be an IPv6 address without brackets";
	if (memchr(s, ':', len) != NULL)
		return is_ipv6(s, len) ? NULL : "must be a valid IPv6 address";
	if (is_ipv4(s, len))
		return NULL;
	return check_hostname(s, len);
}

/* ---- e-mail ---- */

/* RFC 5322 section 3.2.3 atext, plus UTF-8 (RFC 6531 section 3.3). */
static int is_atext(unsigned char c)
{
	if (is_alpha(c) || is_digit(c) || c >= 0x80)
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static const char MSG_EMAIL[] = "must be an e-mail address (name@example.com)";

static const char *check_address_literal(const char *s, size_t len)
{
	/* s is "[...]" */
	const char *in = s + 1;
	size_t n = len - 2;
	if (n > 5 && strncasecmp(in, "IPv6:", 5) == 0)
		return is_ipv6(in + 5, n - 5) ? NULL : MSG_EMAIL;
	if (is_ipv4(in, n) || (memchr(in, ':', n) != NULL && is_ipv6(in, n)))
		return NULL;
	return MSG_EMAIL;
}

const char *validate_email(const char *s, size_t len)
{
	if (len == 0)
		return "must not be empty";
	if (len > EMAIL_MAX_BYTES)
		return "must be at most " STR(EMAIL_MAX_BYTES) " characters";
	if (text_has_control_chars(s, len))
		return MSG_CONTROL;
	if (text_has_blank(s, len))
		return "must not contain spaces";
	const char *at = NULL;
	for (size_t i = len; i > 0; i--) {
		if (s[i - 1] == '@') {
			at = s + i - 1;
			break;
		}
	}
	if (at == NULL)
		return MSG_EMAIL;
	size_t llen = (size_t)(at - s);
	const char *dom = at + 1;
	size_t dlen = len - llen - 1;
	if (llen == 0)
		return MSG_EMAIL;
	if (llen > EMAIL_LOCAL_MAX)
		return "the part before @ must be at most " STR(EMAIL_LOCAL_MAX) " characters";
	/* dot-atom: atoms of atext joined by single dots */
	if (s[0] == '.' || s[llen - 1] == '.')
		return "the part before @ must not start or end with a dot";
	for (size_t i = 0; i < llen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return "the part before @ must not contain "
				       "two dots in a row";
			continue;
		}
		if (!is_atext(c))
			return "the part before @ contains a character that is "
			       "not allowed";
	}
	if (dlen == 0)
		return MSG_EMAIL;
	if (dlen >= 2 && dom[0] == '[' && dom[dlen - 1] == ']')
		return check_address_literal(dom, dlen);
	if (memchr(dom, '.', dlen) == NULL)
		return "the domain must contain a dot";
	if (check_hostname(dom, dlen) != NULL)
		return "the domain must be a valid host name";
	return NULL;
}

/* ---- https URL ---- */

/* RFC 3986 section 3.3 pchar without '%' (checked apart), plus '/' and '?'
 * (sections 3.3 and 3.4). */
static int is_path_query_char(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return 1;
	return c != '\0' && strchr("-._~!$&'()*+,;=:@/?", c) != NULL;
}

/* The path or query from libcurl's parser: pchar, '/' and '?' and
 * well-formed escapes only. NULL or the problem. */
static const char *check_path_query(const char *s)
{
	for (size_t i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (!is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
				return "must use % only in escapes like %20";
			i += 2;
			continue;
		}
		if (!is_path_query_char(c))
			return "contains a character that must be "
			       "percent-encoded";
	}
	return NULL;
}

const char *validate_https_url(struct arena *a, const char *s, size_t len, const char **normalized)
{
	static const char scheme[] = "https://";
	const size_t slen = sizeof(scheme) - 1;
	*normalized = NULL;
	if (len == 0)
		return "must not be empty";
	if (len > URL_MAX_BYTES)
		return "must be at most " STR(URL_MAX_BYTES) " characters";
	if (text_has_control_chars(s, len))
		return MSG_CONTROL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ')
			return "must not contain spaces";
		if (c >= 0x80)
			return "must contain only ASCII characters "
			       "(percent-encode others)";
		if (c == '#')
			return "must not contain a fragment (#)";
	}
	/* The text itself starts with the scheme and "//" and a host, which
	 * libcurl alone would not insist on ("https:/h", "https:///h"); the
	 * scheme is case-insensitive (RFC 3986 section 3.1). */
	if (len < slen || strncasecmp(s, scheme, slen) != 0)
		return "must be an https:// URL";
	if (len == slen || s[slen] == '/' || s[slen] == '\\' || s[slen] == '?')
		return "must name a host";
	/* Everything else from libcurl's URL parser, the one that the call
	 * uses: what is checked here is what is called. */
	struct outbound_url u;
	const char *why = outbound_url_normalize(a, s, len, &u);
	if (why != NULL)
		return why;
	if (strcmp(u.scheme, "https") != 0)
		return "must be an https:// URL";
	if (u.userinfo)
		return "must not contain a user name or password";
	if (u.fragment)
		return "must not contain a fragment (#)";
	if (u.port == 0)
		return "port must be 1-65535";
	size_t hl = strlen(u.host);
	if (u.host[0] == '[') {
		if (u.zone || hl < 2 || !is_ipv6(u.host + 1, hl - 2))
			return "must name a valid IPv6 address in brackets";
	} else if (is_ipv4(u.host, hl)) {
		/* An IPv4 address as its dotted quad, as written: parsers
		 * disagree on the other spellings ("0x7f.1", "2130706433",
		 * "192.0.2.010", which inet_aton reads as octal, escapes), so
		 * they are refused rather than normalized. The text after
		 * "https://" is the host here: no user info (checked above). */
		if (strncmp(s + slen, u.host, hl) != 0 ||
		    (slen + hl < len && strchr(":/?", s[slen + hl]) == NULL))
			return "must name a host name or a valid IPv4 address "
			       "(four numbers 0-255)";
	} else if (check_hostname(u.host, hl) != NULL) {
		return "must name a valid host";
	}
	if ((why = check_path_query(u.path)) != NULL ||
	    (u.query != NULL && (why = check_path_query(u.query)) != NULL))
		return why;
	if (strlen(u.url) > URL_MAX_BYTES)
		return "must be at most " STR(URL_MAX_BYTES) " characters";
	*normalized = u.url;
	return NULL;
}

/* ---- scopes, ids ---- */

const char *validate_scope(const char *s, size_t len)
{
	if (text_has_control_chars(s, len))
		return MSG_CONTROL;
	if (utf8_count(s, len) > SCOPE_MAX_CHARS)
		return "must be at most " STR(SCOPE_MAX_CHARS) " characters";
	/* RFC 6749 section 3.3: scope = scope-token *( SP scope-token ),
	 * scope-token = 1*( %x21 / %x23-5B / %x5D-7E ) */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ') {
			if (i == 0 || i + 1 == len || s[i + 1] == ' ')
				return "must be scopes separated by single "
				       "spaces";
			continue;
		}
		if (c < 0x21 || c > 0x7E || c == '"' || c == '\\')
			return "scopes must be printable ASCII without "
			       "'\"' or '\\'";
	}
	return NULL;
}

int text_parse_positive_id(const char *s, size_t len, long long *out)
{
	/* canonical decimal only: one spelling per id, so "01" and "+1" are
	 * unknown ids rather than aliases */
	if (s == NULL || len == 0 || len > 19 || s[0] == '0')
		return -1;
	long long v = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!is_digit(c))
			return -1;
		int d = c - '0';
		if (v > (LLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (out != NULL)
		*out = v;
	return 0;
}

int text_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int text_media_type_is(const char *content_type, const char *type)
{
	if (content_type == NULL)
		return 0;
	const char *p = content_type;
	while (*p == ' ' || *p == '\t')
		p++;
	size_t tl = strlen(type);
	if (strncasecmp(p, type, tl) != 0)
		return 0;
	p += tl;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return 1;
	if (*p != ';')
		return 0;
	p++;
	while (*p == ' ' || *p == '\t')
		p++;
	/* RFC 8259 section 8.1: JSON is UTF-8; accept only that charset. */
	if (strncasecmp(p, "charset=", 8) != 0)
		return 0;
	p += 8;
	if (strncasecmp(p, "utf-8", 5) == 0)
		p += 5;
	else if (strncasecmp(p, "\"utf-8\"", 7) == 0)
		p += 7;
	else
		return 0;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '\0';
}
