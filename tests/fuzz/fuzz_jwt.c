/*
 * fuzz_jwt.c - libFuzzer target for jwt_verify and jwt_issue. The first
 * input byte picks a mode:
 *   0: the rest is a token, verified against an HS256 and an ES256 policy;
 *   1: the rest is "header JSON\npayload JSON", signed here with the HS256
 *      key so the claim checks are reached; a VALID answer must agree with
 *      the rules (alg exactly HS256, integer exp not past, iss and aud) and
 *      the same token with its signature changed must fail;
 *   2: the rest is "sub\0roles": an issued token must verify, with its sub.
 * Keys are written to a mkdtemp directory at start, loaded, and removed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"
#include "crypto.h"
#include "json.h"
#include "jwt.h"
#include "mailsrv_limits.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW     ((time_t)1700000000)
#define LEEWAY  30
#define MAX_TTL 86400

static const char hs_secret[] = "fuzz-hs256-secret-0123456789abcdef0123456789\n";
/* A P-256 public key for which nobody keeps the private half: ES256 inputs
 * only exercise the refusal paths. */
static const char es_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE0DFxWbStWsxgxw1/QfgnPU3a2Tr7\n"
                             "3QTLRZIZXSWYgyYpITWWYW56W1c2JwS+osTPgYRB6LJEokM7RkaTateNCg==\n"
                             "-----END PUBLIC KEY-----\n";

static struct sig_key *hs, *es;
static struct arena *arena;

static struct sig_key *load_from(const char *dir, const char *name, const char *content,
                                 enum sig_alg alg)
{
	char path[256], err[256];
	struct sig_key *k = NULL;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	/* owner-only, as src/crypto.c requires of a secret key file */
	if (f == NULL || fchmod(fileno(f), 0600) != 0 || fputs(content, f) < 0 || fclose(f) != 0)
		abort();
	if (sig_key_load(alg, path, 0, &k, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_jwt: %s\n", err);
		abort();
	}
	unlink(path);
	return k;
}

static void init(void)
{
	char dir[] = "/tmp/fuzz_jwt.XXXXXX";
	if (mkdtemp(dir) == NULL)
		abort();
	hs = load_from(dir, "hs.key", hs_secret, SIG_HS256);
	es = load_from(dir, "es.pub", es_pub, SIG_ES256);
	rmdir(dir);
	arena = arena_new(MAX_ARENA_BYTES);
	if (arena == NULL)
		abort();
}

static int str_is(const struct json_value *v, const char *s)
{
	return v != NULL && v->type == JSON_STRING && v->u.string.len == strlen(s) &&
	       memcmp(v->u.string.ptr, s, v->u.string.len) == 0;
}

static void verify_raw(const char *tok, size_t len, unsigned flags)
{
	struct jwt_identity id;
	struct jwt_policy p = {hs, (flags & 2) ? "iss" : NULL, (flags & 4) ? "aud" : NULL, LEEWAY,
	                       (flags & 8) ? MAX_TTL : 0};
	enum jwt_result r = jwt_verify(&p, arena, tok, len, NOW, &id);
	if (jwt_result_str(r) == NULL || id.sub == NULL)
		abort();
	p.key = es;
	r = jwt_verify(&p, arena, tok, len, NOW, &id);
	if (r == JWT_VALID) /* nobody can sign for this key */
		abort();
}

/* Check a VALID answer against the rules, independently of jwt.c. */
static void check_valid(const char *hdr, size_t hlen, const char *pl, size_t plen,
                        const struct jwt_policy *p)
{
	struct json_value *h = NULL, *v = NULL;
	if (json_parse(arena, hdr, hlen, &h, NULL, 0) != JSON_OK ||
	    json_parse(arena, pl, plen, &v, NULL, 0) != JSON_OK)
		abort();
	if (h->type != JSON_OBJECT || v->type != JSON_OBJECT)
		abort();
	if (!str_is(json_get(h, "alg"), "HS256") || json_get(h, "crit") != NULL)
		abort();
	const struct json_value *exp = json_get(v, "exp");
	if (exp == NULL || exp->type != JSON_NUMBER || !exp->u.number.is_int)
		abort();
	if (exp->u.number.i < INT64_MAX - LEEWAY && (int64_t)NOW >= exp->u.number.i + LEEWAY)
		abort();
	const struct json_value *nbf = json_get(v, "nbf");
	if (nbf != NULL && (nbf->type != JSON_NUMBER || !nbf->u.number.is_int ||
	                    (int64_t)NOW + LEEWAY < nbf->u.number.i))
		abort();
	const struct json_value *sub = json_get(v, "sub");
	if (sub == NULL || sub->type != JSON_STRING || sub->u.string.len == 0)
		abort();
	const struct json_value *iat = json_get(v, "iat");
	if (iat != NULL && (iat->type != JSON_NUMBER || !iat->u.number.is_int ||
	                    iat->u.number.i > (int64_t)NOW + LEEWAY))
		abort();
	if (p->max_ttl_s > 0) {
		/* exp - from <= max (+ leeway without iat), without overflow */
		int64_t from = iat != NULL ? iat->u.number.i : (int64_t)NOW;
		int64_t allowed = p->max_ttl_s + (iat != NULL ? 0 : LEEWAY);
		if (from < 0 && exp->u.number.i > INT64_MAX + from)
			abort();
		if (exp->u.number.i - from > allowed)
			abort();
	}
	if (p->issuer != NULL && !str_is(json_get(v, "iss"), p->issuer))
		abort();
	if (p->audience != NULL) {
		const struct json_value *aud = json_get(v, "aud");
		int ok = str_is(aud, p->audience);
		if (aud != NULL && aud->type == JSON_ARRAY)
			for (size_t i = 0; i < aud->u.array.count; i++)
				ok |= str_is(aud->u.array.items[i], p->audience);
		if (!ok)
			abort();
	}
}

/* Independent reading of the roles list: is "administrator" one of the
 * comma-separated names, blanks around it ignored? */
static int csv_has_admin(const char *csv)
{
	const char *s = csv;
	while (s != NULL && *s != '\0') {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);
		while (n > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			n--;
		}
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 13 && memcmp(s, "administrator", 13) == 0)
			return 1;
		s = e ? e + 1 : NULL;
	}
	return 0;
}

static void sign_and_verify(const char *in, size_t len, unsigned flags)
{
	const char *nl = memchr(in, '\n', len);
	if (nl == NULL)
		return;
	size_t hlen = (size_t)(nl - in), plen = len - hlen - 1;
	char *h64 = base64url_encode(arena, in, hlen);
	char *p64 = base64url_encode(arena, nl + 1, plen);
	if (h64 == NULL || p64 == NULL)
		return;
	char *input = arena_printf(arena, "%s.%s", h64, p64);
	unsigned char *sig = NULL;
	size_t siglen = 0;
	if (input == NULL || sig_sign(hs, arena, input, strlen(input), &sig, &siglen) != 0)
		abort();
	char *s64 = base64url_encode(arena, sig, siglen);
	char *tok = s64 ? arena_printf(arena, "%s.%s", input, s64) : NULL;
	if (tok == NULL)
		return;

	struct jwt_identity id;
	struct jwt_policy p = {hs, (flags & 2) ? "iss" : NULL, (flags & 4) ? "aud" : NULL, LEEWAY,
	                       (flags & 8) ? MAX_TTL : 0};
	enum jwt_result r = jwt_verify(&p, arena, tok, strlen(tok), NOW, &id);
	if (r != JWT_VALID) {
		if (id.is_administrator || strcmp(id.sub, "") != 0)
			abort(); /* no identity from a refused token */
		return;
	}
	check_valid(in, hlen, nl + 1, plen, &p);
	/* The same token with one signature bit changed is refused. */
	char *first_sig = strrchr(tok, '.') + 1;
	*first_sig = *first_sig == 'A' ? 'B' : 'A';
	if (jwt_verify(&p, arena, tok, strlen(tok), NOW, &id) == JWT_VALID)
		abort();
}

static void issue_and_verify(const char *in, size_t len)
{
	/* sub up to the first NUL, roles after it */
	const char *nul = memchr(in, '\0', len);
	char *sub = arena_strndup(arena, in, nul ? (size_t)(nul - in) : len);
	char *roles = nul ? arena_strndup(arena, nul + 1, len - (size_t)(nul - in) - 1) : NULL;
	if (sub == NULL)
		return;
	char *tok = jwt_issue(hs, arena, sub, roles, 60, NOW, "iss", NULL);
	if (tok == NULL)
		return; /* not UTF-8, or too long */
	struct jwt_identity id;
	struct jwt_policy p = {hs, "iss", NULL, LEEWAY, MAX_TTL};
	enum jwt_result r = jwt_verify(&p, arena, tok, strlen(tok), NOW, &id);
	/* a sub of nothing but spaces names nobody */
	const char *t = sub;
	size_t tlen = strlen(sub);
	text_trim_blanks(&t, &tlen);
	if (tlen == 0) {
		if (r != JWT_BAD_SUBJECT)
			abort();
		return;
	}
	if (r != JWT_VALID)
		abort();
	/* A sub holding a NUL cannot come out of jwt_issue (a C string). */
	if (strcmp(id.sub, sub) != 0)
		abort();
	if (id.is_administrator != csv_has_admin(roles))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (hs == NULL)
		init();
	if (size < 1)
		return 0;
	arena_reset(arena);
	unsigned mode = data[0];
	const char *in = (const char *)data + 1;
	size_t len = size - 1;
	switch (mode % 3) {
	case 0:
		verify_raw(in, len, mode);
		break;
	case 1:
		sign_and_verify(in, len, mode);
		break;
	case 2:
		issue_and_verify(in, len);
		break;
	}
	return 0;
}
