/*
 * test_jwt.c - unit tests for jwt.c: every jwt_result, each header and claim
 * rule of docs/api.md ("Who may call"), the libjwt traps (alg none and its other
 * spellings, algorithm confusion with the RSA public key as HMAC secret,
 * string/float exp) and RS256/ES256 round trips. RSA and EC keys are made
 * at run time with the openssl command in a mkdtemp directory that the
 * group teardown removes; no key is committed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "arena.h"
#include "crypto.h"
#include "jwt.h"
#include "mailsrv_limits.h"

#define NOW    ((time_t)1700000000)
#define LEEWAY 30

struct fixture {
	char dir[64];
	struct arena *a;
	struct sig_key *hs;       /* the pinned HS256 key */
	struct sig_key *hs_other; /* another HS256 key */
	struct sig_key *rs_pub, *rs_priv;
	struct sig_key *es_pub, *es_priv;
	struct sig_key *hs_rsa_pem; /* HS256 whose secret is the RSA public PEM */
};

static struct fixture fx;

static void path_in(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", fx.dir, name);
}

static int write_file(const char *name, const char *content)
{
	char p[128];
	path_in(p, sizeof(p), name);
	FILE *f = fopen(p, "w");
	if (f == NULL)
		return -1;
	/* a secret key file is owner-only (src/crypto.c refuses any other) */
	int ok = fchmod(fileno(f), 0600) == 0 && fputs(content, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* The directory name comes from mkdtemp (no shell metacharacters). */
static int run_openssl(const char *args)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "cd '%s' && umask 077 && openssl %s >/dev/null 2>&1", fx.dir,
	         args);
	return system(cmd) == 0 ? 0 : -1;
}

static int load(enum sig_alg alg, const char *name, int priv, struct sig_key **k)
{
	char p[128], err[256];
	path_in(p, sizeof(p), name);
	if (sig_key_load(alg, p, priv, k, err, sizeof(err)) != 0) {
		fprintf(stderr, "load %s: %s\n", name, err);
		return -1;
	}
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	strcpy(fx.dir, "/tmp/test_jwt.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	fx.a = arena_new(MAX_ARENA_BYTES);
	if (fx.a == NULL)
		return -1;
	if (write_file("hs.key", "0123456789abcdef0123456789abcdef0123456789abcdef\n") != 0 ||
	    write_file("hs_other.key", "fedcba9876543210fedcba9876543210fedcba9876543210\n") != 0)
		return -1;
	if (run_openssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
	                "-out rsa.pem") != 0 ||
	    run_openssl("pkey -in rsa.pem -pubout -out rsa.pub") != 0 ||
	    run_openssl("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
	                "-out ec.pem") != 0 ||
	    run_openssl("pkey -in ec.pem -pubout -out ec.pub") != 0) {
		fprintf(stderr, "could not make test keys with openssl\n");
		return -1;
	}
	if (load(SIG_HS256, "hs.key", 0, &fx.hs) != 0 ||
	    load(SIG_HS256, "hs_other.key", 0, &fx.hs_other) != 0 ||
	    load(SIG_RS256, "rsa.pub", 0, &fx.rs_pub) != 0 ||
	    load(SIG_RS256, "rsa.pem", 1, &fx.rs_priv) != 0 ||
	    load(SIG_ES256, "ec.pub", 0, &fx.es_pub) != 0 ||
	    load(SIG_ES256, "ec.pem", 1, &fx.es_priv) != 0 ||
	    load(SIG_HS256, "rsa.pub", 0, &fx.hs_rsa_pem) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	sig_key_free(fx.hs);
	sig_key_free(fx.hs_other);
	sig_key_free(fx.rs_pub);
	sig_key_free(fx.rs_priv);
	sig_key_free(fx.es_pub);
	sig_key_free(fx.es_priv);
	sig_key_free(fx.hs_rsa_pem);
	arena_free(fx.a);
	static const char *files[] = {"hs.key",  "hs_other.key", "rsa.pem",
	                              "rsa.pub", "ec.pem",       "ec.pub"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char p[128];
		path_in(p, sizeof(p), files[i]);
		unlink(p);
	}
	rmdir(fx.dir);
	return 0;
}

static int reset_arena(void **state)
{
	(void)state;
	arena_reset(fx.a);
	return 0;
}

/* A compact JWS from raw header and payload JSON text, signed with k (or
 * with no signature part contents when k is NULL). */
static char *make_token(const struct sig_key *k, const char *hdr, const char *payload)
{
	char *h = base64url_encode(fx.a, hdr, strlen(hdr));
	char *p = base64url_encode(fx.a, payload, strlen(payload));
	assert_non_null(h);
	assert_non_null(p);
	char *input = arena_printf(fx.a, "%s.%s", h, p);
	assert_non_null(input);
	if (k == NULL)
		return arena_printf(fx.a, "%s.", input);
	unsigned char *sig;
	size_t siglen;
	assert_int_equal(sig_sign(k, fx.a, input, strlen(input), &sig, &siglen), 0);
	char *s = base64url_encode(fx.a, sig, siglen);
	assert_non_null(s);
	return arena_printf(fx.a, "%s.%s", input, s);
}

static enum jwt_result verify_with(const struct sig_key *k, const char *iss, const char *aud,
                                   const char *tok, size_t len, struct jwt_identity *id)
{
	struct jwt_policy p = {k, iss, aud, LEEWAY, 0};
	return jwt_verify(&p, fx.a, tok, len, NOW, id);
}

static enum jwt_result verify(const struct sig_key *k, const char *tok)
{
	struct jwt_identity id;
	return verify_with(k, NULL, NULL, tok, strlen(tok), &id);
}

/* ---- header and claims, HS256, one table ---- */

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
/* A valid exp with a subject; EXP_ONLY where the case sets its own sub. */
#define EXP_ONLY "\"exp\":1700000060"
#define EXP_OK   "\"sub\":\"t\"," EXP_ONLY

struct claim_case {
	const char *name;
	const char *hdr;
	const char *payload;
	const char *iss; /* policy */
	const char *aud; /* policy */
	enum jwt_result want;
	int admin;
	const char *sub; /* NULL: do not check */
};

static const struct claim_case claim_cases[] = {
    {"valid admin", HS, "{\"sub\":\"alice\",\"roles\":[\"administrator\"]," EXP_ONLY "}", NULL,
     NULL, JWT_VALID, 1, "alice"},
    {"no typ", "{\"alg\":\"HS256\"}", "{\"sub\":\"a\"," EXP_ONLY "}", NULL, NULL, JWT_VALID, 0,
     "a"},
    {"typ lower case", "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", "{" EXP_OK "}", NULL, NULL, JWT_VALID,
     0, "t"},
    {"typ JOSE", "{\"alg\":\"HS256\",\"typ\":\"JOSE\"}", "{" EXP_OK "}", NULL, NULL, JWT_MALFORMED,
     0, NULL},
    {"typ not a string", "{\"alg\":\"HS256\",\"typ\":1}", "{" EXP_OK "}", NULL, NULL, JWT_MALFORMED,
     0, NULL},
    {"crit header", "{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", "{" EXP_OK "}", NULL, NULL,
     JWT_MALFORMED, 0, NULL},
    {"kid is ignored", "{\"alg\":\"HS256\",\"kid\":\"../../etc/passwd\"}", "{" EXP_OK "}", NULL,
     NULL, JWT_VALID, 0, NULL},
    /* the pinned alg, byte for byte */
    {"alg none", "{\"alg\":\"none\"}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG, 0, NULL},
    {"alg NONE", "{\"alg\":\"NONE\"}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG, 0, NULL},
    {"alg hs256", "{\"alg\":\"hs256\"}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG, 0, NULL},
    {"alg RS256 for an HS256 key", "{\"alg\":\"RS256\"}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG,
     0, NULL},
    {"alg HS512", "{\"alg\":\"HS512\"}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG, 0, NULL},
    {"alg with NUL suffix", "{\"alg\":\"HS256\\u0000\"}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG,
     0, NULL},
    {"alg with space", "{\"alg\":\"HS256 \"}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG, 0, NULL},
    {"alg missing", "{\"typ\":\"JWT\"}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG, 0, NULL},
    {"alg not a string", "{\"alg\":[\"HS256\"]}", "{" EXP_OK "}", NULL, NULL, JWT_BAD_ALG, 0, NULL},
    {"alg twice", "{\"alg\":\"HS256\",\"alg\":\"none\"}", "{" EXP_OK "}", NULL, NULL, JWT_MALFORMED,
     0, NULL},
    {"header an array", "[\"HS256\"]", "{" EXP_OK "}", NULL, NULL, JWT_MALFORMED, 0, NULL},
    {"header a string", "\"HS256\"", "{" EXP_OK "}", NULL, NULL, JWT_MALFORMED, 0, NULL},
    {"header not JSON", "{alg:HS256}", "{" EXP_OK "}", NULL, NULL, JWT_MALFORMED, 0, NULL},
    {"header with comment", "{\"alg\":\"HS256\"/**/}", "{" EXP_OK "}", NULL, NULL, JWT_MALFORMED, 0,
     NULL},
    /* payload shape */
    {"payload an array", HS, "[1]", NULL, NULL, JWT_MALFORMED, 0, NULL},
    {"payload a number", HS, "1700000060", NULL, NULL, JWT_MALFORMED, 0, NULL},
    {"payload not JSON", HS, "{\"exp\":1700000060", NULL, NULL, JWT_MALFORMED, 0, NULL},
    {"payload duplicate exp", HS, "{\"exp\":1,\"exp\":1700000060}", NULL, NULL, JWT_MALFORMED, 0,
     NULL},
    {"payload trailing garbage", HS, "{" EXP_OK "} x", NULL, NULL, JWT_MALFORMED, 0, NULL},
    /* exp: required, integer, now < exp + leeway */
    {"exp missing", HS, "{\"sub\":\"a\"}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp string", HS, "{\"exp\":\"1700000060\"}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp float", HS, "{\"exp\":1700000060.0}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp exponent", HS, "{\"exp\":1.8e9}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp null", HS, "{\"exp\":null}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp true", HS, "{\"exp\":true}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp past int64", HS, "{\"exp\":99999999999999999999}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp int64 max", HS, "{\"sub\":\"t\",\"exp\":9223372036854775807}", NULL, NULL, JWT_VALID, 0,
     NULL},
    {"exp int64 min", HS, "{\"exp\":-9223372036854775808}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp long ago", HS, "{\"exp\":1600000000}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp now - leeway", HS, "{\"exp\":1699999970}", NULL, NULL, JWT_EXPIRED, 0, NULL},
    {"exp now - leeway + 1", HS, "{\"sub\":\"t\",\"exp\":1699999971}", NULL, NULL, JWT_VALID, 0,
     NULL},
    /* nbf: integer, now + leeway >= nbf */
    {"nbf future", HS, "{\"nbf\":1700000031," EXP_OK "}", NULL, NULL, JWT_NOT_YET_VALID, 0, NULL},
    {"nbf within leeway", HS, "{\"nbf\":1700000030," EXP_OK "}", NULL, NULL, JWT_VALID, 0, NULL},
    {"nbf past", HS, "{\"nbf\":1600000000," EXP_OK "}", NULL, NULL, JWT_VALID, 0, NULL},
    {"nbf string", HS, "{\"nbf\":\"1600000000\"," EXP_OK "}", NULL, NULL, JWT_NOT_YET_VALID, 0,
     NULL},
    {"nbf float", HS, "{\"nbf\":1.0," EXP_OK "}", NULL, NULL, JWT_NOT_YET_VALID, 0, NULL},
    {"nbf int64 max", HS, "{\"nbf\":9223372036854775807," EXP_OK "}", NULL, NULL, JWT_NOT_YET_VALID,
     0, NULL},
    /* iat: integer when present */
    {"iat integer", HS, "{\"iat\":1700000000," EXP_OK "}", NULL, NULL, JWT_VALID, 0, NULL},
    {"iat string", HS, "{\"iat\":\"1700000000\"," EXP_OK "}", NULL, NULL, JWT_MALFORMED, 0, NULL},
    {"iat float", HS, "{\"iat\":1.5," EXP_OK "}", NULL, NULL, JWT_MALFORMED, 0, NULL},
    /* iat: not later than now + leeway */
    {"iat now + leeway", HS, "{\"iat\":1700000030," EXP_OK "}", NULL, NULL, JWT_VALID, 0, NULL},
    {"iat now + leeway + 1", HS, "{\"iat\":1700000031," EXP_OK "}", NULL, NULL,
     JWT_ISSUED_IN_FUTURE, 0, NULL},
    {"iat far future", HS, "{\"iat\":9223372036854775807," EXP_OK "}", NULL, NULL,
     JWT_ISSUED_IN_FUTURE, 0, NULL},
    {"iat long ago", HS, "{\"iat\":1000000000," EXP_OK "}", NULL, NULL, JWT_VALID, 0, NULL},
    /* iss */
    {"iss not required", HS, "{\"iss\":\"anyone\"," EXP_OK "}", NULL, NULL, JWT_VALID, 0, NULL},
    {"iss match", HS, "{\"iss\":\"https://idp\"," EXP_OK "}", "https://idp", NULL, JWT_VALID, 0,
     NULL},
    {"iss mismatch", HS, "{\"iss\":\"https://evil\"," EXP_OK "}", "https://idp", NULL,
     JWT_BAD_ISSUER, 0, NULL},
    {"iss missing", HS, "{" EXP_OK "}", "https://idp", NULL, JWT_BAD_ISSUER, 0, NULL},
    {"iss case differs", HS, "{\"iss\":\"HTTPS://IDP\"," EXP_OK "}", "https://idp", NULL,
     JWT_BAD_ISSUER, 0, NULL},
    {"iss prefix", HS, "{\"iss\":\"https://id\"," EXP_OK "}", "https://idp", NULL, JWT_BAD_ISSUER,
     0, NULL},
    {"iss NUL suffix", HS, "{\"iss\":\"https://idp\\u0000x\"," EXP_OK "}", "https://idp", NULL,
     JWT_BAD_ISSUER, 0, NULL},
    {"iss array", HS, "{\"iss\":[\"https://idp\"]," EXP_OK "}", "https://idp", NULL, JWT_BAD_ISSUER,
     0, NULL},
    /* aud */
    {"aud not required", HS, "{\"aud\":5," EXP_OK "}", NULL, NULL, JWT_VALID, 0, NULL},
    {"aud string match", HS, "{\"aud\":\"mailsrv\"," EXP_OK "}", NULL, "mailsrv", JWT_VALID, 0,
     NULL},
    {"aud array match", HS, "{\"aud\":[\"other\",\"mailsrv\"]," EXP_OK "}", NULL, "mailsrv",
     JWT_VALID, 0, NULL},
    {"aud array with non-strings", HS, "{\"aud\":[1,null,\"mailsrv\"]," EXP_OK "}", NULL, "mailsrv",
     JWT_VALID, 0, NULL},
    {"aud string mismatch", HS, "{\"aud\":\"other\"," EXP_OK "}", NULL, "mailsrv", JWT_BAD_AUDIENCE,
     0, NULL},
    {"aud array mismatch", HS, "{\"aud\":[\"a\",\"b\"]," EXP_OK "}", NULL, "mailsrv",
     JWT_BAD_AUDIENCE, 0, NULL},
    {"aud empty array", HS, "{\"aud\":[]," EXP_OK "}", NULL, "mailsrv", JWT_BAD_AUDIENCE, 0, NULL},
    {"aud missing", HS, "{" EXP_OK "}", NULL, "mailsrv", JWT_BAD_AUDIENCE, 0, NULL},
    {"aud number", HS, "{\"aud\":1," EXP_OK "}", NULL, "mailsrv", JWT_BAD_AUDIENCE, 0, NULL},
    {"aud nested array", HS, "{\"aud\":[[\"mailsrv\"]]," EXP_OK "}", NULL, "mailsrv",
     JWT_BAD_AUDIENCE, 0, NULL},
    {"iss and aud match", HS,
     "{\"iss\":\"https://idp\",\"aud\":\"mailsrv\",\"sub\":\"b\",\"roles\":"
     "[\"administrator\"]," EXP_ONLY "}",
     "https://idp", "mailsrv", JWT_VALID, 1, "b"},
    /* roles */
    {"roles missing", HS, "{\"sub\":\"u\"," EXP_ONLY "}", NULL, NULL, JWT_VALID, 0, "u"},
    {"roles other", HS, "{\"roles\":[\"user\",\"auditor\"]," EXP_OK "}", NULL, NULL, JWT_VALID, 0,
     NULL},
    {"roles among others", HS, "{\"roles\":[\"user\",\"administrator\"]," EXP_OK "}", NULL, NULL,
     JWT_VALID, 1, NULL},
    {"roles a string", HS, "{\"roles\":\"administrator\"," EXP_OK "}", NULL, NULL, JWT_VALID, 0,
     NULL},
    {"roles case differs", HS, "{\"roles\":[\"Administrator\"]," EXP_OK "}", NULL, NULL, JWT_VALID,
     0, NULL},
    {"roles NUL suffix", HS, "{\"roles\":[\"administrator\\u0000\"]," EXP_OK "}", NULL, NULL,
     JWT_VALID, 0, NULL},
    {"roles with a non-string", HS, "{\"roles\":[1,\"administrator\"]," EXP_OK "}", NULL, NULL,
     JWT_VALID, 0, NULL},
    {"roles nested", HS, "{\"roles\":[[\"administrator\"]]," EXP_OK "}", NULL, NULL, JWT_VALID, 0,
     NULL},
    {"role claim singular", HS, "{\"role\":[\"administrator\"]," EXP_OK "}", NULL, NULL, JWT_VALID,
     0, NULL},
    /* sub: a string, not empty, not all spaces */
    {"sub absent", HS, "{" EXP_ONLY "}", NULL, NULL, JWT_BAD_SUBJECT, 0, ""},
    {"sub a number", HS, "{\"sub\":42," EXP_ONLY "}", NULL, NULL, JWT_BAD_SUBJECT, 0, ""},
    {"sub null", HS, "{\"sub\":null," EXP_ONLY "}", NULL, NULL, JWT_BAD_SUBJECT, 0, ""},
    {"sub an array", HS, "{\"sub\":[\"alice\"]," EXP_ONLY "}", NULL, NULL, JWT_BAD_SUBJECT, 0, ""},
    {"sub empty", HS, "{\"sub\":\"\"," EXP_ONLY "}", NULL, NULL, JWT_BAD_SUBJECT, 0, ""},
    {"sub spaces", HS, "{\"sub\":\"  \\u00a0\\u3000\"," EXP_ONLY "}", NULL, NULL, JWT_BAD_SUBJECT,
     0, ""},
    {"sub admin without a name", HS, "{\"sub\":\"\",\"roles\":[\"administrator\"]," EXP_ONLY "}",
     NULL, NULL, JWT_BAD_SUBJECT, 0, ""},
    {"sub one character", HS, "{\"sub\":\"a\"," EXP_ONLY "}", NULL, NULL, JWT_VALID, 0, "a"},
    {"sub padded", HS, "{\"sub\":\" a \"," EXP_ONLY "}", NULL, NULL, JWT_VALID, 0, " a "},
    {"sub unicode and quotes", HS, "{\"sub\":\"O'Brien \\\"\xc3\xa9\\\"\"," EXP_ONLY "}", NULL,
     NULL, JWT_VALID, 0, "O'Brien \"\xc3\xa9\""},
    {"sub with NUL", HS, "{\"sub\":\"alice\\u0000bob\"," EXP_ONLY "}", NULL, NULL, JWT_MALFORMED, 0,
     NULL},
};

static void test_claims_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(claim_cases) / sizeof(claim_cases[0]); i++) {
		const struct claim_case *c = &claim_cases[i];
		arena_reset(fx.a);
		char *tok = make_token(fx.hs, c->hdr, c->payload);
		struct jwt_identity id = {(const char *)1, 7};
		enum jwt_result r = verify_with(fx.hs, c->iss, c->aud, tok, strlen(tok), &id);
		if (r != c->want)
			fail_msg("case \"%s\": %s, want %s", c->name, jwt_result_str(r),
			         jwt_result_str(c->want));
		if (id.is_administrator != c->admin)
			fail_msg("case \"%s\": is_administrator %d", c->name, id.is_administrator);
		assert_non_null(id.sub);
		if (r != JWT_VALID)
			assert_string_equal(id.sub, "");
		if (c->sub != NULL)
			assert_string_equal(id.sub, c->sub);
	}
}

/* alg none with an empty signature, as attackers send it. */
static void test_alg_none_unsigned(void **state)
{
	(void)state;
	static const char *hdrs[] = {"{\"alg\":\"none\"}", "{\"alg\":\"NONE\"}",
	                             "{\"alg\":\"None\",\"typ\":\"JWT\"}"};
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		char *tok = make_token(NULL, hdrs[i], "{\"roles\":[\"administrator\"]," EXP_OK "}");
		assert_int_equal(verify(fx.hs, tok), JWT_BAD_ALG);
		assert_int_equal(verify(fx.rs_pub, tok), JWT_BAD_ALG);
		assert_int_equal(verify(fx.es_pub, tok), JWT_BAD_ALG);
	}
	/* An HS256 header with an empty signature part. */
	char *tok = make_token(NULL, HS, "{" EXP_OK "}");
	assert_int_equal(verify(fx.hs, tok), JWT_MALFORMED);
}

/* ---- token shape ---- */

/* Assemble a token from a template: H, P and S stand for the header,
 * payload and signature parts; every other character is copied. */
static char *with(const char *tmpl, const char *h, const char *p, const char *s)
{
	size_t n = strlen(tmpl) + 1;
	for (const char *t = tmpl; *t; t++)
		n += *t == 'H' ? strlen(h) : *t == 'P' ? strlen(p) : *t == 'S' ? strlen(s) : 0;
	char *r = arena_alloc(fx.a, n);
	assert_non_null(r);
	char *o = r;
	for (const char *t = tmpl; *t; t++) {
		const char *part = *t == 'H' ? h : *t == 'P' ? p : *t == 'S' ? s : NULL;
		if (part != NULL) {
			memcpy(o, part, strlen(part));
			o += strlen(part);
		} else {
			*o++ = *t;
		}
	}
	*o = '\0';
	return r;
}

static void test_shape(void **state)
{
	(void)state;
	char *tok = make_token(fx.hs, HS, "{\"roles\":[\"administrator\"]," EXP_OK "}");
	assert_int_equal(verify(fx.hs, tok), JWT_VALID);
	char *d1 = strchr(tok, '.');
	char *d2 = strchr(d1 + 1, '.');
	char *h = arena_strndup(fx.a, tok, (size_t)(d1 - tok));
	char *p = arena_strndup(fx.a, d1 + 1, (size_t)(d2 - d1 - 1));
	char *s = arena_strdup(fx.a, d2 + 1);

	struct {
		const char *name;
		const char *tok;
		enum jwt_result want;
	} cases[] = {
	    {"two parts", with("H.P", h, p, s), JWT_MALFORMED},
	    {"four parts", with("H.P.S.S", h, p, s), JWT_MALFORMED},
	    {"trailing dot", with("H.P.S.", h, p, s), JWT_MALFORMED},
	    {"one part", h, JWT_MALFORMED},
	    {"dots only", "..", JWT_MALFORMED},
	    {"empty header", with(".P.S", h, p, s), JWT_MALFORMED},
	    {"empty payload", with("H..S", h, p, s), JWT_MALFORMED},
	    {"padding on signature", with("H.P.S=", h, p, s), JWT_MALFORMED},
	    {"padding on header", with("H=.P.S", h, p, s), JWT_MALFORMED},
	    {"padding on payload", with("H.P==.S", h, p, s), JWT_MALFORMED},
	    {"leading space", with(" H.P.S", h, p, s), JWT_MALFORMED},
	    {"trailing newline", with("H.P.S\n", h, p, s), JWT_MALFORMED},
	    {"space inside", with("H. P.S", h, p, s), JWT_MALFORMED},
	    {"standard base64 +", with("H.P.+S", h, p, s), JWT_MALFORMED},
	    {"standard base64 /", with("H.P/.S", h, p, s), JWT_MALFORMED},
	    {"bad base64 char", with("H.P.S!", h, p, s), JWT_MALFORMED},
	    {"header not base64", with("@@.P.S", h, p, s), JWT_MALFORMED},
	    {"header and payload swapped", with("P.H.S", h, p, s), JWT_BAD_ALG},
	    {"truncated signature", with("H.P.AAAA", h, p, s), JWT_BAD_SIGNATURE},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum jwt_result r = verify(fx.hs, cases[i].tok);
		if (r != cases[i].want)
			fail_msg("case \"%s\": %s", cases[i].name, jwt_result_str(r));
	}

	/* A payload part of impossible base64 length (4k+1). */
	size_t k = (5 - strlen(p) % 4) % 4;
	k = k == 0 ? 4 : k;
	char *bad = arena_printf(fx.a, "%s.%s%.*s.%s", h, p, (int)k, "AAAA", s);
	assert_int_equal(strlen(strchr(bad, '.') + 1) - strlen(s) - 1, strlen(p) + k);
	assert_int_equal((strlen(p) + k) % 4, 1);
	assert_int_equal(verify(fx.hs, bad), JWT_MALFORMED);

	/* Empty and NUL-holding input, lengths taken from the caller. */
	struct jwt_identity id;
	assert_int_equal(verify_with(fx.hs, NULL, NULL, "", 0, &id), JWT_MALFORMED);
	assert_int_equal(verify_with(fx.hs, NULL, NULL, NULL, 10, &id), JWT_MALFORMED);
	char *nul = arena_strdup(fx.a, tok);
	size_t len = strlen(nul);
	nul[len / 2] = '\0';
	assert_int_equal(verify_with(fx.hs, NULL, NULL, nul, len, &id), JWT_MALFORMED);
	/* Only len bytes count: a valid token followed by junk in memory. */
	char *more = arena_printf(fx.a, "%s.junk", tok);
	assert_int_equal(verify_with(fx.hs, NULL, NULL, more, strlen(tok), &id), JWT_VALID);
	/* No policy key: nothing is valid. */
	struct jwt_policy none = {NULL, NULL, NULL, 0, 0};
	assert_int_not_equal(jwt_verify(&none, fx.a, tok, strlen(tok), NOW, &id), JWT_VALID);
	assert_int_not_equal(jwt_verify(NULL, fx.a, tok, strlen(tok), NOW, &id), JWT_VALID);
}

static void test_signature(void **state)
{
	(void)state;
	const char *payload = "{\"sub\":\"alice\",\"roles\":[\"user\"]," EXP_ONLY "}";
	char *tok = make_token(fx.hs, HS, payload);
	assert_int_equal(verify(fx.hs, tok), JWT_VALID);

	/* wrong key */
	char *other = make_token(fx.hs_other, HS, payload);
	assert_int_equal(verify(fx.hs, other), JWT_BAD_SIGNATURE);

	/* tampered payload: the administrator role swapped in, old signature */
	char *d1 = strchr(tok, '.');
	char *d2 = strchr(d1 + 1, '.');
	const char *evil = "{\"sub\":\"alice\",\"roles\":[\"administrator\"]," EXP_ONLY "}";
	char *evil64 = base64url_encode(fx.a, evil, strlen(evil));
	char *tampered = arena_printf(fx.a, "%.*s.%s%s", (int)(d1 - tok), tok, evil64, d2);
	struct jwt_identity id;
	assert_int_equal(verify_with(fx.hs, NULL, NULL, tampered, strlen(tampered), &id),
	                 JWT_BAD_SIGNATURE);
	assert_int_equal(id.is_administrator, 0);

	/* tampered header (typ added), same signature */
	char *h2 = base64url_encode(fx.a, "{\"alg\":\"HS256\"}", 15);
	char *tampered_h = arena_printf(fx.a, "%s%s", h2, d1);
	assert_int_equal(verify(fx.hs, tampered_h), JWT_BAD_SIGNATURE);

	/* one signature character changed */
	char *flip = arena_strdup(fx.a, tok);
	char *sig = strrchr(flip, '.') + 1;
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(fx.hs, flip), JWT_BAD_SIGNATURE);

	/* signature of the right length but all zero */
	char *zero64 = base64url_encode(fx.a,
	                                "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
	                                "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
	                                32);
	char *zero = arena_printf(fx.a, "%.*s.%s", (int)(d2 - tok), tok, zero64);
	assert_int_equal(verify(fx.hs, zero), JWT_BAD_SIGNATURE);
}

/* The libjwt algorithm confusion (docs/design.md, "libjwt (not used)"): an HS256 token keyed with
 * the deployment's RSA public key PEM. */
static void test_algorithm_confusion(void **state)
{
	(void)state;
	const char *payload = "{\"sub\":\"mallory\",\"roles\":[\"administrator\"]," EXP_ONLY "}";
	char *hs_tok = make_token(fx.hs_rsa_pem, HS, payload);
	/* It is a well-formed HS256 token for that secret ... */
	assert_int_equal(verify(fx.hs_rsa_pem, hs_tok), JWT_VALID);
	/* ... and worthless against the RS256 verifier. */
	struct jwt_identity id;
	assert_int_equal(verify_with(fx.rs_pub, NULL, NULL, hs_tok, strlen(hs_tok), &id),
	                 JWT_BAD_ALG);
	assert_int_equal(id.is_administrator, 0);
	/* The same HMAC under a header claiming RS256. */
	char *rs_hdr_tok =
	    make_token(fx.hs_rsa_pem, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", payload);
	assert_int_equal(verify(fx.rs_pub, rs_hdr_tok), JWT_BAD_SIGNATURE);

	/* Each verifier refuses the other algorithms' tokens before checking. */
	char *rs_tok = make_token(fx.rs_priv, "{\"alg\":\"RS256\"}", payload);
	char *es_tok = make_token(fx.es_priv, "{\"alg\":\"ES256\"}", payload);
	assert_int_equal(verify(fx.rs_pub, rs_tok), JWT_VALID);
	assert_int_equal(verify(fx.es_pub, es_tok), JWT_VALID);
	assert_int_equal(verify(fx.hs, rs_tok), JWT_BAD_ALG);
	assert_int_equal(verify(fx.es_pub, rs_tok), JWT_BAD_ALG);
	assert_int_equal(verify(fx.rs_pub, es_tok), JWT_BAD_ALG);
	assert_int_equal(verify(fx.hs, es_tok), JWT_BAD_ALG);
	/* An ES256 header carrying an RS256 signature. */
	char *mixed = make_token(fx.rs_priv, "{\"alg\":\"ES256\"}", payload);
	assert_int_equal(verify(fx.es_pub, mixed), JWT_BAD_SIGNATURE);
}

/* ---- issuing and round trips ---- */

static void round_trip(const struct sig_key *signer, const struct sig_key *verifier)
{
	struct jwt_identity id;
	char *tok = jwt_issue(signer, fx.a, "alice@example.com", "reader, administrator", 3600, NOW,
	                      NULL, NULL);
	assert_non_null(tok);
	assert_true(strlen(tok) <= BEARER_TOKEN_MAX_BYTES);
	assert_int_equal(verify_with(verifier, NULL, NULL, tok, strlen(tok), &id), JWT_VALID);
	assert_string_equal(id.sub, "alice@example.com");
	assert_int_equal(id.is_administrator, 1);

	/* Valid for ttl, with the leeway after it. */
	struct jwt_policy p = {verifier, NULL, NULL, LEEWAY, 0};
	assert_int_equal(jwt_verify(&p, fx.a, tok, strlen(tok), NOW + 3600 + LEEWAY - 1, &id),
	                 JWT_VALID);
	assert_int_equal(jwt_verify(&p, fx.a, tok, strlen(tok), NOW + 3600 + LEEWAY, &id),
	                 JWT_EXPIRED);

	/* A tampered signature fails. */
	char *flip = arena_strdup(fx.a, tok);
	char *sig = strrchr(flip, '.') + 1;
	sig[1] = sig[1] == 'A' ? 'B' : 'A';
	assert_int_equal(verify(verifier, flip), JWT_BAD_SIGNATURE);
}

static void test_round_trip_hs256(void **state)
{
	(void)state;
	round_trip(fx.hs, fx.hs);
}

static void test_round_trip_rs256(void **state)
{
	(void)state;
	round_trip(fx.rs_priv, fx.rs_pub);
	/* A public key cannot sign. */
	assert_null(jwt_issue(fx.rs_pub, fx.a, "a", "administrator", 60, NOW, NULL, NULL));
}

static void test_round_trip_es256(void **state)
{
	(void)state;
	round_trip(fx.es_priv, fx.es_pub);
	assert_null(jwt_issue(fx.es_pub, fx.a, "a", "administrator", 60, NOW, NULL, NULL));
	/* ES256 signatures are the 64-byte JWS form: a DER-length one fails. */
	char *tok = jwt_issue(fx.es_priv, fx.a, "a", "", 60, NOW, NULL, NULL);
	assert_non_null(tok);
	char *longer = arena_printf(fx.a, "%sAAAA", tok);
	assert_int_equal(verify(fx.es_pub, longer), JWT_BAD_SIGNATURE);
}

static void test_issue(void **state)
{
	(void)state;
	struct jwt_identity id;

	/* iss and aud are written when given and checked when configured. */
	char *tok =
	    jwt_issue(fx.hs, fx.a, "bob", "administrator", 60, NOW, "https://idp", "mailsrv");
	assert_non_null(tok);
	assert_int_equal(verify_with(fx.hs, "https://idp", "mailsrv", tok, strlen(tok), &id),
	                 JWT_VALID);
	assert_int_equal(verify_with(fx.hs, "https://other", NULL, tok, strlen(tok), &id),
	                 JWT_BAD_ISSUER);
	assert_int_equal(verify_with(fx.hs, NULL, "other", tok, strlen(tok), &id),
	                 JWT_BAD_AUDIENCE);

	/* Without them, a policy that requires them refuses the token. */
	tok = jwt_issue(fx.hs, fx.a, "bob", "administrator", 60, NOW, NULL, NULL);
	assert_int_equal(verify_with(fx.hs, "https://idp", NULL, tok, strlen(tok), &id),
	                 JWT_BAD_ISSUER);

	/* Roles: blanks and empty names dropped, no admin without the role. */
	static const struct {
		const char *csv;
		int admin;
	} roles[] = {
	    {"administrator", 1},
	    {" reader ,, administrator ,", 1},
	    {"reader", 0},
	    {"", 0},
	    {NULL, 0},
	    {"administrators", 0},
	    {"Administrator", 0},
	    {"admin,istrator", 0},
	};
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
		tok = jwt_issue(fx.hs, fx.a, "carol", roles[i].csv, 60, NOW, NULL, NULL);
		assert_non_null(tok);
		assert_int_equal(verify_with(fx.hs, NULL, NULL, tok, strlen(tok), &id), JWT_VALID);
		if (id.is_administrator != roles[i].admin)
			fail_msg("roles \"%s\"", roles[i].csv ? roles[i].csv : "(null)");
	}

	/* Awkward subjects survive the trip. */
	const char *sub = "O'Brien \"\\ \xc3\xa9 \xf0\x9f\x98\x80";
	tok = jwt_issue(fx.hs, fx.a, sub, "", 60, NOW, NULL, NULL);
	assert_non_null(tok);
	assert_int_equal(verify_with(fx.hs, NULL, NULL, tok, strlen(tok), &id), JWT_VALID);
	assert_string_equal(id.sub, sub);

	/* A negative ttl makes an expired token. */
	tok = jwt_issue(fx.hs, fx.a, "d", "administrator", -60, NOW, NULL, NULL);
	assert_non_null(tok);
	assert_int_equal(verify(fx.hs, tok), JWT_EXPIRED);

	/* Refused: no key, no sub, a sub that is not UTF-8, a token our own
	 * verifier would refuse for its size. */
	assert_null(jwt_issue(NULL, fx.a, "a", "", 60, NOW, NULL, NULL));
	assert_null(jwt_issue(fx.hs, fx.a, NULL, "", 60, NOW, NULL, NULL));
	assert_null(jwt_issue(fx.hs, fx.a, "\xff", "", 60, NOW, NULL, NULL));
	char big[BEARER_TOKEN_MAX_BYTES];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_null(jwt_issue(fx.hs, fx.a, big, "", 60, NOW, NULL, NULL));
}

/* The length cap, crossed from both sides with validly signed tokens. */
static void test_length_limit(void **state)
{
	(void)state;
	int at_limit = 0, over = 0;
	struct buf_s {
		char p[BEARER_TOKEN_MAX_BYTES];
	} *filler = malloc(sizeof(struct buf_s));
	assert_non_null(filler);
	for (size_t n = 5900; n < 6300 && !(at_limit && over); n++) {
		arena_reset(fx.a);
		memset(filler->p, 'x', n);
		filler->p[n] = '\0';
		char *payload = arena_printf(fx.a, "{\"pad\":\"%s\"," EXP_OK "}", filler->p);
		char *tok = make_token(fx.hs, HS, payload);
		size_t len = strlen(tok);
		if (len == BEARER_TOKEN_MAX_BYTES) {
			assert_int_equal(verify(fx.hs, tok), JWT_VALID);
			at_limit = 1;
		} else if (len > BEARER_TOKEN_MAX_BYTES) {
			assert_int_equal(verify(fx.hs, tok), JWT_MALFORMED);
			over = 1;
		} else {
			assert_int_equal(verify(fx.hs, tok), JWT_VALID);
		}
	}
	free(filler);
	assert_true(at_limit);
	assert_true(over);
}

/* ---- the per-thread cache of verified tokens ---- */

static int cached_entries(const struct jwt_cache *c)
{
	int n = 0;
	for (size_t i = 0; i < JWT_CACHE_ENTRIES; i++)
		n += c->entries[i].len != 0;
	return n;
}

static void test_cache(void **state)
{
	(void)state;
	static struct jwt_cache cache; /* zero: empty */
	struct jwt_policy p = {fx.hs, NULL, NULL, LEEWAY, 0};
	struct jwt_policy p_iss = {fx.hs, "https://issuer.example", NULL, LEEWAY, 0};
	struct jwt_identity id;
	const char *tok = make_token(
	    fx.hs, HS,
	    "{\"sub\":\"alice\",\"roles\":[\"administrator\"],\"nbf\":1699999000," EXP_ONLY "}");
	size_t len = strlen(tok);

	/* Verified, remembered, then answered from memory with the same identity. */
	assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, tok, len, NOW, &id), JWT_VALID);
	assert_int_equal(cached_entries(&cache), 1);
	for (int i = 0; i < 3; i++) {
		id.sub = NULL;
		id.is_administrator = 0;
		assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, tok, len, NOW + i, &id),
		                 JWT_VALID);
		assert_string_equal(id.sub, "alice");
		assert_int_equal(id.is_administrator, 1);
	}
	assert_int_equal(cached_entries(&cache), 1);

	/* The same length with one signature byte changed is not a hit. */
	char *flip = arena_strdup(fx.a, tok);
	char *sig = strrchr(flip, '.') + 1;
	sig[2] = sig[2] == 'A' ? 'B' : 'A';
	assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, flip, len, NOW, &id),
	                 JWT_BAD_SIGNATURE);
	assert_string_equal(id.sub, "");
	assert_int_equal(id.is_administrator, 0);
	/* A prefix of it neither. */
	assert_int_not_equal(jwt_verify_cached(&p, &cache, fx.a, tok, len - 1, NOW, &id),
	                     JWT_VALID);

	/* The clock is checked on every hit, with the leeway: nbf ... */
	assert_int_equal(
	    jwt_verify_cached(&p, &cache, fx.a, tok, len, 1699999000 - LEEWAY - 1, &id),
	    JWT_NOT_YET_VALID);
	assert_int_equal(cached_entries(&cache), 0);
	assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, tok, len, NOW, &id), JWT_VALID);
	/* ... and exp: exactly at exp + leeway it has expired, and is forgotten. */
	assert_int_equal(
	    jwt_verify_cached(&p, &cache, fx.a, tok, len, 1700000060 + LEEWAY - 1, &id), JWT_VALID);
	assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, tok, len, 1700000060 + LEEWAY, &id),
	                 JWT_EXPIRED);
	assert_string_equal(id.sub, "");
	assert_int_equal(cached_entries(&cache), 0);
	assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, tok, len, 1700000060 + LEEWAY, &id),
	                 JWT_EXPIRED);
	assert_int_equal(cached_entries(&cache), 0);

	/* Another policy empties the cache: its rules apply at once. */
	assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, tok, len, NOW, &id), JWT_VALID);
	assert_int_equal(jwt_verify_cached(&p_iss, &cache, fx.a, tok, len, NOW, &id),
	                 JWT_BAD_ISSUER);
	assert_int_equal(cached_entries(&cache), 0);
	assert_ptr_equal(cache.policy, &p_iss);

	/* More tokens than entries: each still verifies as itself. */
	const char *toks[JWT_CACHE_ENTRIES + 2];
	for (size_t i = 0; i < JWT_CACHE_ENTRIES + 2; i++)
		toks[i] =
		    make_token(fx.hs, HS,
		               arena_printf(fx.a, "{\"sub\":\"u%zu\",\"roles\":[%s]," EXP_ONLY "}",
		                            i, i % 2 ? "\"administrator\"" : ""));
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < JWT_CACHE_ENTRIES + 2; i++) {
			assert_int_equal(
			    jwt_verify_cached(&p, &cache, fx.a, toks[i], strlen(toks[i]), NOW, &id),
			    JWT_VALID);
			assert_string_equal(id.sub, arena_printf(fx.a, "u%zu", i));
			assert_int_equal(id.is_administrator, (int)(i % 2));
		}
	assert_int_equal(cached_entries(&cache), JWT_CACHE_ENTRIES);

	/* A token too long to remember is verified every time. */
	jwt_cache_clear(&cache);
	char pad[JWT_CACHE_TOKEN_MAX_BYTES];
	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	const char *big =
	    make_token(fx.hs, HS, arena_printf(fx.a, "{\"pad\":\"%s\"," EXP_OK "}", pad));
	assert_true(strlen(big) > JWT_CACHE_TOKEN_MAX_BYTES);
	assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, big, strlen(big), NOW, &id),
	                 JWT_VALID);
	assert_int_equal(cached_entries(&cache), 0);

	/* A refused token is never remembered. */
	const char *late = make_token(fx.hs, HS, "{\"sub\":\"bob\",\"exp\":1600000000}");
	assert_int_equal(jwt_verify_cached(&p, &cache, fx.a, late, strlen(late), NOW, &id),
	                 JWT_EXPIRED);
	assert_int_equal(cached_entries(&cache), 0);
	jwt_cache_clear(&cache);
}

/* The lifetime, exp - iat (exp - now without iat), against the configured
 * maximum (MAILSRV_JWT_MAX_TTL). */
static void test_lifetime(void **state)
{
	(void)state;
	struct jwt_policy p = {fx.hs, NULL, NULL, LEEWAY, 86400};
	static const struct {
		const char *payload;
		enum jwt_result want;
	} t[] = {
	    /* with iat: exactly exp - iat */
	    {"{\"sub\":\"a\",\"iat\":1700000000,\"exp\":1700086400}", JWT_VALID},
	    {"{\"sub\":\"a\",\"iat\":1700000000,\"exp\":1700086401}", JWT_TOO_LONG_LIVED},
	    {"{\"sub\":\"a\",\"iat\":1699990000,\"exp\":1700076400}", JWT_VALID},
	    {"{\"sub\":\"a\",\"iat\":1699990000,\"exp\":1700076401}", JWT_TOO_LONG_LIVED},
	    /* an old iat is not hidden by a near exp: what counts is what the
	     * issuer granted */
	    {"{\"sub\":\"a\",\"iat\":1600000000,\"exp\":1700000060}", JWT_TOO_LONG_LIVED},
	    {"{\"sub\":\"a\",\"iat\":1700000000,\"exp\":9223372036854775807}", JWT_TOO_LONG_LIVED},
	    {"{\"sub\":\"a\",\"iat\":-9223372036854775807,\"exp\":1700000060}", JWT_TOO_LONG_LIVED},
	    /* without iat: exp - now, with the leeway for the issuer's clock */
	    {"{\"sub\":\"a\",\"exp\":1700086430}", JWT_VALID},
	    {"{\"sub\":\"a\",\"exp\":1700086431}", JWT_TOO_LONG_LIVED},
	    {"{\"sub\":\"a\",\"exp\":9223372036854775807}", JWT_TOO_LONG_LIVED},
	    /* an iat in the future is refused as such */
	    {"{\"sub\":\"a\",\"iat\":1700000031,\"exp\":1700000090}", JWT_ISSUED_IN_FUTURE},
	    /* expired first */
	    {"{\"sub\":\"a\",\"iat\":1000000000,\"exp\":1600000000}", JWT_EXPIRED},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct jwt_identity id;
		const char *tok = make_token(fx.hs, HS, t[i].payload);
		enum jwt_result r = jwt_verify(&p, fx.a, tok, strlen(tok), NOW, &id);
		if (r != t[i].want)
			fail_msg("row %zu: %s, want %s", i, jwt_result_str(r),
			         jwt_result_str(t[i].want));
	}
	/* 0: no maximum */
	struct jwt_policy open = {fx.hs, NULL, NULL, LEEWAY, 0};
	struct jwt_identity id;
	const char *tok = make_token(fx.hs, HS, "{\"sub\":\"a\",\"iat\":1,\"exp\":1800000000}");
	assert_int_equal(jwt_verify(&open, fx.a, tok, strlen(tok), NOW, &id), JWT_VALID);
	/* what the token tool issues by default (an hour) passes the default;
	 * a second more than the maximum does not */
	char *issued = jwt_issue(fx.hs, fx.a, "admin", "administrator", 3600, NOW, NULL, NULL);
	assert_non_null(issued);
	assert_int_equal(jwt_verify(&p, fx.a, issued, strlen(issued), NOW, &id), JWT_VALID);
	issued = jwt_issue(fx.hs, fx.a, "admin", "administrator", 86401, NOW, NULL, NULL);
	assert_non_null(issued);
	assert_int_equal(jwt_verify(&p, fx.a, issued, strlen(issued), NOW, &id),
	                 JWT_TOO_LONG_LIVED);
	/* a remembered token keeps passing: neither rule changes with time */
	static struct jwt_cache cache;
	issued = jwt_issue(fx.hs, fx.a, "admin", "administrator", 86400, NOW, NULL, NULL);
	assert_non_null(issued);
	for (time_t now = NOW; now < NOW + 86400; now += 3600)
		assert_int_equal(
		    jwt_verify_cached(&p, &cache, fx.a, issued, strlen(issued), now, &id),
		    JWT_VALID);
	jwt_cache_clear(&cache);
}

static void test_result_strings(void **state)
{
	(void)state;
	for (int r = JWT_VALID; r <= JWT_TOO_LONG_LIVED; r++) {
		const char *s = jwt_result_str((enum jwt_result)r);
		assert_non_null(s);
		assert_true(strlen(s) > 0);
		for (int q = JWT_VALID; q < r; q++)
			assert_string_not_equal(s, jwt_result_str((enum jwt_result)q));
	}
	assert_non_null(jwt_result_str((enum jwt_result)99));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, reset_arena)
	const struct CMUnitTest tests[] = {
	    T(test_claims_table),     T(test_alg_none_unsigned),   T(test_shape),
	    T(test_signature),        T(test_algorithm_confusion), T(test_round_trip_hs256),
	    T(test_round_trip_rs256), T(test_round_trip_es256),    T(test_issue),
	    T(test_length_limit),     T(test_result_strings),      T(test_cache),
	    T(test_lifetime),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
