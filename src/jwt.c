/*
 * jwt.c - bearer token verification and issuing (see jwt.h and
 * docs/api.md, "Who may call"), on crypto.h and json.h rather than Debian's libjwt, whose
 * algorithm confusion, "none" handling and unchecked exp are listed in
 * docs/design.md, "libjwt (not used)".
 *
 * Order of checks in jwt_verify, cheapest and least trusting first: shape
 * (three base64url parts, bounded length), header JSON, the pinned alg
 * (before any signature work), the signature over the exact bytes
 * "header.payload", and only then the payload's claims. Everything decoded
 * lives in the caller's arena; nothing here logs or keeps the token.
 */
#include "jwt.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "crypto.h"
#include "json.h"
#include "mailsrv_limits.h"
#include "validate.h"

#define ROLE_ADMINISTRATOR "administrator"

/* 1 when v is a JSON string equal, byte for byte, to the C string s. The
 * length comparison keeps "abc\u0000x" from matching "abc". */
static int str_equals(const struct json_value *v, const char *s)
{
	size_t n = strlen(s);
	return v != NULL && v->type == JSON_STRING && v->u.string.len == n &&
	       memcmp(v->u.string.ptr, s, n) == 0;
}

static int is_int(const struct json_value *v)
{
	return v != NULL && v->type == JSON_NUMBER && v->u.number.is_int;
}

/* a + b clamped to the int64 range: exp near INT64_MAX must not wrap into
 * the past (or the future). */
static int64_t add_sat(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

/* Decode one base64url part and parse it as a JSON object. */
static enum jwt_result decode_object(struct arena *a, const char *s, size_t len,
                                     struct json_value **out)
{
	unsigned char *raw = NULL;
	size_t raw_len = 0;
	char msg[64];
	if (len == 0 || base64url_decode(a, s, len, &raw, &raw_len) != 0)
		return JWT_MALFORMED;
	if (json_parse(a, (const char *)raw, raw_len, out, msg, sizeof(msg)) != JSON_OK)
		return JWT_MALFORMED;
	if ((*out)->type != JSON_OBJECT)
		return JWT_MALFORMED;
	return JWT_VALID;
}

/* Header rules: alg pinned by the key (exact bytes, so "hs256", "NONE"
 * and "none" all fail), typ "JWT" when present, no crit extensions (we
 * understand none, so RFC 7515 section 4.1.11 says refuse). */
static enum jwt_result check_header(const struct json_value *hdr, const struct sig_key *key)
{
	const char *pinned = sig_alg_name(sig_key_alg(key));
	if (pinned == NULL || !str_equals(json_get(hdr, "alg"), pinned))
		return JWT_BAD_ALG;
	const struct json_value *typ = json_get(hdr, "typ");
	if (typ != NULL && (typ->type != JSON_STRING || typ->u.string.len != 3 ||
	                    strncasecmp(typ->u.string.ptr, "JWT", 3) != 0))
		return JWT_MALFORMED;
	if (json_get(hdr, "crit") != NULL)
		return JWT_MALFORMED;
	return JWT_VALID;
}

/* The claims that depend on the clock, kept by the cache to check again. */
struct jwt_times {
	int64_t exp;
	int64_t nbf;
	int has_nbf;
};

/* The exp and nbf rules, for a fresh token and for a remembered one alike. */
static enum jwt_result check_times(const struct jwt_policy *p, const struct jwt_times *tm,
                                   time_t now)
{
	int64_t leeway = p->leeway_s > 0 ? (int64_t)p->leeway_s : 0;
	int64_t t = (int64_t)now;
	if (t >= add_sat(tm->exp, leeway))
		return JWT_EXPIRED;
	if (tm->has_nbf && add_sat(t, leeway) < tm->nbf)
		return JWT_NOT_YET_VALID;
	return JWT_VALID;
}

static enum jwt_result check_claims(const struct jwt_policy *p, const struct json_value *pl,
                                    time_t now, struct jwt_identity *id, struct jwt_times *tm)
{
	/* exp is required and must be an integer: libjwt reads a string or a
	 * float as 0 and never checks it (libjwt's trap, docs/design.md). */
	const struct json_value *exp = json_get(pl, "exp");
	if (!is_int(exp))
		return JWT_EXPIRED;
	tm->exp = exp->u.number.i;

	/* exp before nbf, as ever: an expired token with a bad nbf is expired. */
	const struct json_value *nbf = json_get(pl, "nbf");
	tm->has_nbf = nbf != NULL && is_int(nbf);
	tm->nbf = tm->has_nbf ? nbf->u.number.i : 0;
	enum jwt_result tr = check_times(p, tm, now);
	if (tr != JWT_VALID)
		return tr;
	if (nbf != NULL && !is_int(nbf))
		return JWT_NOT_YET_VALID;

	const struct json_value *iat = json_get(pl, "iat");
	if (iat != NULL && !is_int(iat))
		return JWT_MALFORMED;
	/* A token from the future says the issuer's clock is wrong, or that
	 * it was made to outlast the lifetime check below. Neither changes
	 * with time, so a remembered token needs neither check again. */
	int64_t leeway = p->leeway_s > 0 ? (int64_t)p->leeway_s : 0;
	if (iat != NULL && iat->u.number.i > add_sat((int64_t)now, leeway))
		return JWT_ISSUED_IN_FUTURE;
	if (p->max_ttl_s > 0) {
		/* without iat, what is left of it: the issuer's clock may be
		 * ahead of ours by the leeway */
		int64_t from = iat != NULL ? iat->u.number.i : (int64_t)now;
		int64_t allowed = add_sat((int64_t)p->max_ttl_s, iat != NULL ? 0 : leeway);
		if (tm->exp > add_sat(from, allowed))
			return JWT_TOO_LONG_LIVED;
	}

	if (p->issuer != NULL && !str_equals(json_get(pl, "iss"), p->issuer))
		return JWT_BAD_ISSUER;

	if (p->audience != NULL) {
		const struct json_value *aud = json_get(pl, "aud");
		int ok = 0;
		if (aud != NULL && aud->type == JSON_ARRAY) {
			for (size_t i = 0; i < aud->u.array.count && !ok; i++)
				ok = str_equals(aud->u.array.items[i], p->audience);
		} else {
			ok = str_equals(aud, p->audience);
		}
		if (!ok)
			return JWT_BAD_AUDIENCE;
	}

	/* sub names the actor in logs and the audit trail: a token without
	 * one, or with one of nothing but spaces, names nobody. A NUL inside
	 * it would make the C string name someone else. */
	const struct json_value *sub = json_get(pl, "sub");
	if (sub == NULL || sub->type != JSON_STRING)
		return JWT_BAD_SUBJECT;
	if (memchr(sub->u.string.ptr, '\0', sub->u.string.len) != NULL)
		return JWT_MALFORMED;
	const char *s = sub->u.string.ptr;
	size_t slen = sub->u.string.len;
	text_trim_blanks(&s, &slen);
	if (slen == 0)
		return JWT_BAD_SUBJECT;
	id->sub = sub->u.string.ptr; /* already in the arena */

	/* roles must be an array of strings; anything else grants nothing
	 * (the token stays valid: the caller answers 403, not 401). */
	const struct json_value *roles = json_get(pl, "roles");
	if (roles != NULL && roles->type == JSON_ARRAY) {
		int admin = 0, all_strings = 1;
		for (size_t i = 0; i < roles->u.array.count; i++) {
			const struct json_value *r = roles->u.array.items[i];
			if (r->type != JSON_STRING)
				all_strings = 0;
			else if (str_equals(r, ROLE_ADMINISTRATOR))
				admin = 1;
		}
		id->is_administrator = admin && all_strings;
	}
	return JWT_VALID;
}

static enum jwt_result verify(const struct jwt_policy *p, struct arena *a, const char *token,
                              size_t len, time_t now, struct jwt_identity *id, struct jwt_times *tm)
{
	if (id != NULL) {
		id->sub = "";
		id->is_administrator = 0;
	}
	if (p == NULL || p->key == NULL || a == NULL || id == NULL)
		return JWT_BAD_ALG; /* no pinned key: nothing can be valid */
	if (token == NULL || len == 0 || len > BEARER_TOKEN_MAX_BYTES)
		return JWT_MALFORMED;

	/* Exactly two dots. Every other character is checked by the
	 * base64url decoder, which refuses padding and whitespace. */
	const char *dot1 = memchr(token, '.', len);
	if (dot1 == NULL)
		return JWT_MALFORMED;
	const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token));
	if (dot2 == NULL)
		return JWT_MALFORMED;
	const char *end = token + len;
	if (memchr(dot2 + 1, '.', (size_t)(end - (dot2 + 1))) != NULL)
		return JWT_MALFORMED;
	size_t hlen = (size_t)(dot1 - token);
	size_t plen = (size_t)(dot2 - (dot1 + 1));
	size_t slen = (size_t)(end - (dot2 + 1));

	/* The header first, so "alg":"none" with its empty signature part
	 * reads as the wrong alg, not merely as a bad shape. */
	struct json_value *hdr = NULL;
	enum jwt_result r = decode_object(a, token, hlen, &hdr);
	if (r != JWT_VALID)
		return r;
	r = check_header(hdr, p->key);
	if (r != JWT_VALID)
		return r;
	if (plen == 0 || slen == 0)
		return JWT_MALFORMED;

	/* The payload and signature must at least be base64url before any
	 * signature work. */
	unsigned char *praw = NULL, *sig = NULL;
	size_t praw_len = 0, sig_len = 0;
	if (base64url_decode(a, dot1 + 1, plen, &praw, &praw_len) != 0 ||
	    base64url_decode(a, dot2 + 1, slen, &sig, &sig_len) != 0)
		return JWT_MALFORMED;

	/* The signing input is the token's own bytes, not a re-encoding. */
	if (sig_verify(p->key, token, hlen + 1 + plen, sig, sig_len) != 0)
		return JWT_BAD_SIGNATURE;

	struct json_value *pl = NULL;
	char msg[64];
	if (json_parse(a, (const char *)praw, praw_len, &pl, msg, sizeof(msg)) != JSON_OK ||
	    pl->type != JSON_OBJECT)
		return JWT_MALFORMED;

	struct jwt_identity tmp = {"", 0};
	r = check_claims(p, pl, now, &tmp, tm);
	if (r == JWT_VALID)
		*id = tmp; /* an identity only for a valid token */
	return r;
}

enum jwt_result jwt_verify(const struct jwt_policy *p, struct arena *a, const char *token,
                           size_t len, time_t now, struct jwt_identity *id)
{
	struct jwt_times tm;
	return verify(p, a, token, len, now, id, &tm);
}

void jwt_cache_clear(struct jwt_cache *cache)
{
	explicit_bzero(cache, sizeof(*cache));
}

enum jwt_result jwt_verify_cached(const struct jwt_policy *p, struct jwt_cache *cache,
                                  struct arena *a, const char *token, size_t len, time_t now,
                                  struct jwt_identity *id)
{
	if (cache == NULL || p == NULL || a == NULL || id == NULL || token == NULL)
		return jwt_verify(p, a, token, len, now, id);
	if (cache->policy != p) {
		jwt_cache_clear(cache);
		cache->policy = p;
	}
	for (size_t i = 0; i < JWT_CACHE_ENTRIES; i++) {
		struct jwt_cache_entry *e = &cache->entries[i];
		if (e->len == 0 || e->len != len || !crypto_equal(e->token, token, len))
			continue;
		struct jwt_times tm = {e->exp, e->nbf, e->has_nbf};
		enum jwt_result r = check_times(p, &tm, now);
		if (r != JWT_VALID) {
			explicit_bzero(e, sizeof(*e)); /* it will not become valid again */
			id->sub = "";
			id->is_administrator = 0;
			return r;
		}
		const char *sub = arena_strdup(a, e->sub);
		if (sub == NULL)
			break; /* out of memory: verify the long way, which will say so */
		id->sub = sub;
		id->is_administrator = e->is_administrator;
		return JWT_VALID;
	}

	struct jwt_times tm;
	enum jwt_result r = verify(p, a, token, len, now, id, &tm);
	size_t sublen = strlen(id->sub);
	if (r != JWT_VALID || len > JWT_CACHE_TOKEN_MAX_BYTES || sublen > JWT_CACHE_SUB_MAX_BYTES)
		return r;
	struct jwt_cache_entry *e = &cache->entries[cache->next % JWT_CACHE_ENTRIES];
	cache->next = (cache->next + 1) % JWT_CACHE_ENTRIES;
	explicit_bzero(e, sizeof(*e));
	memcpy(e->token, token, len);
	memcpy(e->sub, id->sub, sublen + 1);
	e->exp = tm.exp;
	e->nbf = tm.nbf;
	e->has_nbf = tm.has_nbf;
	e->is_administrator = id->is_administrator;
	e->len = len;
	return r;
}

const char *jwt_result_str(enum jwt_result r)
{
	switch (r) {
	case JWT_VALID:
		return "valid";
	case JWT_MALFORMED:
		return "malformed token";
	case JWT_BAD_ALG:
		return "token algorithm not accepted";
	case JWT_BAD_SIGNATURE:
		return "bad token signature";
	case JWT_EXPIRED:
		return "token expired or without a valid exp";
	case JWT_NOT_YET_VALID:
		return "token not yet valid";
	case JWT_BAD_ISSUER:
		return "token issuer not accepted";
	case JWT_BAD_AUDIENCE:
		return "token audience not accepted";
	case JWT_BAD_SUBJECT:
		return "token without a subject (sub)";
	case JWT_ISSUED_IN_FUTURE:
		return "token issued in the future (iat)";
	case JWT_TOO_LONG_LIVED:
		return "token lifetime longer than MAILSRV_JWT_MAX_TTL";
	}
	return "invalid token";
}

/* roles_csv "a, b,,c" -> ["a","b","c"]: blanks around names and empty
 * names are dropped. */
static void write_roles(struct json_out *o, const char *csv)
{
	json_out_array_open(o);
	const char *s = csv != NULL ? csv : "";
	while (*s != '\0') {
		const char *comma = strchr(s, ',');
		const char *e = comma != NULL ? comma : s + strlen(s);
		const char *b = s;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		const char *t = e;
		while (t > b && (t[-1] == ' ' || t[-1] == '\t'))
			t--;
		if (t > b)
			json_out_string(o, b, (size_t)(t - b));
		s = comma != NULL ? comma + 1 : e;
	}
	json_out_array_close(o);
}

/* Encode the document in o as base64url into the arena. */
static char *encode_doc(struct json_out *o, struct arena *a)
{
	const char *buf = NULL;
	size_t len = 0;
	if (json_out_result(o, &buf, &len) != 0)
		return NULL;
	return base64url_encode(a, buf, len);
}

char *jwt_issue(const struct sig_key *key, struct arena *a, const char *sub, const char *roles_csv,
                long ttl_s, time_t now, const char *issuer, const char *audience)
{
	char *token = NULL;
	struct json_out *o = NULL;

	if (key == NULL || a == NULL || sub == NULL)
		goto out;
	const char *alg = sig_alg_name(sig_key_alg(key));
	if (alg == NULL)
		goto out;
	o = json_out_new();
	if (o == NULL)
		goto out;

	json_out_object_open(o);
	json_out_key(o, "alg");
	json_out_cstring(o, alg);
	json_out_key(o, "typ");
	json_out_cstring(o, "JWT");
	json_out_object_close(o);
	char *h64 = encode_doc(o, a);
	if (h64 == NULL)
		goto out;

	json_out_reset(o);
	int64_t iat = (int64_t)now;
	json_out_object_open(o);
	json_out_key(o, "sub");
	json_out_cstring(o, sub);
	json_out_key(o, "roles");
	write_roles(o, roles_csv);
	json_out_key(o, "iat");
	json_out_int(o, iat);
	json_out_key(o, "exp");
	json_out_int(o, add_sat(iat, (int64_t)ttl_s));
	if (issuer != NULL) {
		json_out_key(o, "iss");
		json_out_cstring(o, issuer);
	}
	if (audience != NULL) {
		json_out_key(o, "aud");
		json_out_cstring(o, audience);
	}
	json_out_object_close(o);
	char *p64 = encode_doc(o, a);
	if (p64 == NULL)
		goto out;

	char *input = arena_printf(a, "%s.%s", h64, p64);
	if (input == NULL)
		goto out;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	if (sig_sign(key, a, input, strlen(input), &sig, &sig_len) != 0)
		goto out;
	char *s64 = base64url_encode(a, sig, sig_len);
	if (s64 == NULL)
		goto out;
	char *t = arena_printf(a, "%s.%s", input, s64);
	/* A token our own verifier would refuse is no token. */
	if (t == NULL || strlen(t) > BEARER_TOKEN_MAX_BYTES)
		goto out;
	token = t;
out:
	json_out_free(o);
	return token;
}
