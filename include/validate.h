/*
 * validate.h - the API's field rules (docs/api.md) as pure functions.
 * Each validate_* returns NULL when the value is acceptable, otherwise a
 * short, static, client-safe English message ("must be 1-100 characters").
 * Inputs are (pointer, length) and may contain NUL bytes; they are already
 * valid UTF-8 (the JSON parser checks that). The utf8_* and text_* helpers
 * the validators are built from are exported for the parsers that need the
 * same rules (JSON, query strings, media types, provider answers).
 */
#ifndef MAILSRV_VALIDATE_H
#define MAILSRV_VALIDATE_H

#include <stddef.h>

struct arena;

/* 1 when s is well-formed UTF-8 (RFC 3629 section 4: no overlong forms,
 * no surrogates, nothing above U+10FFFF). yajl's own check lets overlong
 * forms and encoded surrogates through, so the JSON parser calls this. */
int utf8_valid(const char *s, size_t len);
/* Decodes the UTF-8 sequence at s (at most left >= 1 bytes) by the same
 * rules: its length in bytes with the code point in *cp, or 0 when it is
 * not a valid sequence. */
size_t utf8_decode(const char *s, size_t left, unsigned int *cp);
/* Number of Unicode code points in valid UTF-8. */
size_t utf8_count(const char *s, size_t len);
/* 1 when s holds a control character: C0 (U+0000-U+001F, NUL included),
 * DEL (U+007F) or C1 (U+0080-U+009F). */
int text_has_control_chars(const char *s, size_t len);
/* Trim ASCII spaces and tabs at both ends; returns the new bounds. */
void text_trim_spaces(const char **s, size_t *len);

/* Trim, at both ends, U+0020 and the Unicode spaces (U+00A0, U+3000 and
 * the rest of categories Zs, Zl, Zp); returns the new bounds. What a text
 * field stores (docs/api.md, "A mail server"). */
void text_trim_blanks(const char **s, size_t *len);
/* 1 when s holds U+0020 or one of the Unicode spaces text_trim_blanks trims. */
int text_has_blank(const char *s, size_t len);

/* Text of min..max characters counted after text_trim_blanks (what is
 * stored), no control chars anywhere. */
const char *validate_text(const char *s, size_t len, size_t min_chars, size_t max_chars);
/* RFC 1123 host name (labels 1-63 of letters, digits, hyphen, not starting
 * or ending with a hyphen, total at most 253, optional trailing dot is
 * refused) or an IPv4 dotted quad or an IPv6 literal (without brackets). */
const char *validate_host(const char *s, size_t len);
/* local@domain, at most 254 bytes, no spaces or control chars, local part
 * 1-64 bytes, domain a host name as above (or [IP literal]). */
const char *validate_email(const char *s, size_t len);
/* Absolute https URL with a valid host (name or literal), optional port
 * 1-65535, no userinfo, no fragment, no whitespace/control chars, at most
 * URL_MAX_BYTES, as libcurl's URL parser reads it. When valid, *normalized
 * is its normalized form (outbound_url_normalize, in the arena), the value
 * to store and to call; NULL otherwise. */
const char *validate_https_url(struct arena *a, const char *s, size_t len, const char **normalized);
/* Space-separated OAuth scopes (RFC 6749 section 3.3: %x21 / %x23-5B /
 * %x5D-7E per token), may be empty, at most SCOPE_MAX_CHARS. */
const char *validate_scope(const char *s, size_t len);
/* A secret or credential string: at most max bytes, no control chars. */
const char *validate_secret(const char *s, size_t len, size_t max_bytes);

/* Media type check: type/subtype compared without regard to case, the only
 * parameter allowed is charset=utf-8. 1 when it matches. */
int text_media_type_is(const char *content_type, const char *type);

/* The value of one hexadecimal digit (either case), or -1. */
int text_hex_digit(int c);

/* Parse a decimal positive int64 from exactly len bytes (no sign, no
 * leading zeros beyond "0", no spaces). 0 on success. */
int text_parse_positive_id(const char *s, size_t len, long long *out);

#endif
