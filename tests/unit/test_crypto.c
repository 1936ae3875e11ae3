/*
 * test_crypto.c - unit tests of src/crypto.c (include/crypto.h).
 *
 * Known-answer vectors come from the RFCs (RFC 4648 section 10 for base64,
 * FIPS 180-2 for SHA-256, RFC 7515 appendices A.1 and A.3 for HS256 and
 * ES256). RSA and EC keys are made at run time by the `openssl` command in a
 * mkdtemp directory, and the `openssl` command also signs, so our RS256 and
 * ES256 are checked against another implementation, not only against
 * themselves. This file includes no OpenSSL header: crypto.c is the one
 * module that does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arena.h"
#include "crypto.h"
#include "mailsrv_limits.h"

static char tmpdir[] = "/tmp/test_crypto.XXXXXX";
static struct arena *arena;

/* ---- helpers ---- */

static const char *path_in(const char *name)
{
	/* a few live at once: rotate through a small ring of buffers */
	static char bufs[8][256];
	static unsigned next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof(bufs[0]), "%s/%s", tmpdir, name);
	return b;
}

static void write_file(const char *name, const void *data, size_t len, mode_t mode)
{
	const char *p = path_in(name);
	unlink(p);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
}

static void write_text(const char *name, const char *text, mode_t mode)
{
	write_file(name, text, strlen(text), mode);
}

static size_t read_file(const char *name, unsigned char *buf, size_t cap)
{
	FILE *f = fopen(path_in(name), "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

/* Run a shell command in tmpdir; fail the test when it fails. */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[1024];
	int n = snprintf(cmd, sizeof(cmd), "cd '%s' && (", tmpdir);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof(cmd) - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof(cmd) - (size_t)n, ") >/dev/null 2>&1");
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

static int group_setup(void **state)
{
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	/* traversable, so that a test running as another user reaches its files */
	if (chmod(tmpdir, 0711) != 0)
		return -1;
	arena = arena_new(16 * 1024 * 1024);
	if (arena == NULL)
		return -1;
	/* keys for every test, made once: RSA key generation is slow */
	char cmd[2048];
	snprintf(cmd, sizeof(cmd),
	         "cd '%s' && ("
	         "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.pem &&"
	         "openssl pkey -in rsa.pem -pubout -out rsa.pub &&"
	         "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.pem &&"
	         "openssl pkey -in rsa1024.pem -pubout -out rsa1024.pub &&"
	         "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem &&"
	         "openssl pkey -in ec.pem -pubout -out ec.pub &&"
	         "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out ec384.pem &&"
	         "openssl pkey -in ec384.pem -pubout -out ec384.pub &&"
	         "openssl genpkey -algorithm ED25519 -out ed.pem &&"
	         "openssl pkey -in ed.pem -pubout -out ed.pub &&"
	         "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes256 -pass "
	         "pass:secret -out ec-enc.pem &&"
	         "chmod 0600 rsa.pem rsa1024.pem ec.pem ec384.pem ed.pem ec-enc.pem"
	         ") >/dev/null 2>&1",
	         tmpdir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[512];
	arena_free(arena);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int test_setup(void **state)
{
	arena_reset(arena);
	return 0;
}

/* ---- base64url ---- */

struct b64_vector {
	const char *plain;
	size_t plain_len;
	const char *encoded;
};

static void test_base64url_vectors(void **state)
{
	/* RFC 4648 section 10 without padding, plus the two characters that
	 * differ from base64 (section 5: '-' for '+', '_' for '/') */
	static const struct b64_vector v[] = {
	    {"", 0, ""},
	    {"f", 1, "Zg"},
	    {"fo", 2, "Zm8"},
	    {"foo", 3, "Zm9v"},
	    {"foob", 4, "Zm9vYg"},
	    {"fooba", 5, "Zm9vYmE"},
	    {"foobar", 6, "Zm9vYmFy"},
	    {"\xfb\xff", 2, "-_8"},
	    {"\xff\xff\xfe", 3, "___-"},
	    {"\x00\x00\x00", 3, "AAAA"},
	    {"\x00", 1, "AA"},
	    {"a\x00"
	     "b",
	     3, "YQBi"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *enc = base64url_encode(arena, v[i].plain, v[i].plain_len);
		assert_non_null(enc);
		assert_string_equal(enc, v[i].encoded);
		unsigned char *dec = NULL;
		size_t dlen = 99;
		assert_int_equal(
		    base64url_decode(arena, v[i].encoded, strlen(v[i].encoded), &dec, &dlen), 0);
		assert_int_equal(dlen, v[i].plain_len);
		assert_memory_equal(dec, v[i].plain, dlen);
		assert_int_equal(dec[dlen], 0); /* NUL-terminated for callers */
	}
}

static void test_base64url_round_trip_all_lengths(void **state)
{
	unsigned char data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(data); n++) {
		char *enc = base64url_encode(arena, data, n);
		assert_non_null(enc);
		assert_null(strpbrk(enc, "=+/"));
		unsigned char *dec = NULL;
		size_t dlen = 0;
		assert_int_equal(base64url_decode(arena, enc, strlen(enc), &dec, &dlen), 0);
		assert_int_equal(dlen, n);
		assert_memory_equal(dec, data, n);
	}
}

struct b64_bad {
	const char *s;
	size_t len;
	const char *why;
};

static void test_base64url_strict_refusals(void **state)
{
	static const struct b64_bad bad[] = {
	    {"Zg==", 4, "padding"},
	    {"Zm8=", 4, "padding"},
	    {"Zm9v=", 5, "padding after a full group"},
	    {"Zm9v YmFy", 9, "space"},
	    {"Zm9v\nYmFy", 9, "newline"},
	    {"Zm9vYmFy\n", 9, "trailing newline"},
	    {" Zm9v", 5, "leading space"},
	    {"Zm+v", 4, "'+' is base64, not base64url"},
	    {"Zm/v", 4, "'/' is base64, not base64url"},
	    {"Z", 1, "impossible length 4k+1"},
	    {"Zm9vY", 5, "impossible length 4k+1"},
	    {"Zh", 2, "non-zero trailing bits ('Zg' is canonical)"},
	    {"Zm9", 3, "non-zero trailing bits ('Zm8' is canonical)"},
	    {"-_9", 3, "non-zero trailing bits ('-_8' is canonical)"},
	    {"Zm\0v", 4, "embedded NUL"},
	    {"Zm9v\xc3\xa9", 6, "non-ASCII"},
	    {"Zm9v.", 5, "dot"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned char *dec = NULL;
		size_t dlen = 0;
		if (base64url_decode(arena, bad[i].s, bad[i].len, &dec, &dlen) != -1)
			fail_msg("accepted %zu: %s", i, bad[i].why);
	}
}

/* ---- digests, random, equal ---- */

static void hex_of(const unsigned char *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static void test_sha256_vectors(void **state)
{
	/* FIPS 180-2 appendix B.1 and B.2, and the empty string */
	static const struct {
		const char *in;
		const char *hex;
	} v[] = {
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned char md[32];
		char hex[65];
		assert_int_equal(crypto_sha256(v[i].in, strlen(v[i].in), md), 0);
		hex_of(md, sizeof(md), hex);
		assert_string_equal(hex, v[i].hex);
	}
}

static void test_random_and_equal(void **state)
{
	unsigned char a[32], b[32];
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	assert_false(crypto_equal(a, b, sizeof(a))); /* 2^-256 to be wrong */
	memcpy(b, a, sizeof(a));
	assert_true(crypto_equal(a, b, sizeof(a)));
	b[31] ^= 1;
	assert_false(crypto_equal(a, b, sizeof(a)));
	assert_true(crypto_equal(a, b, 0));
	assert_int_equal(crypto_random(a, 0), 0);
}

/* ---- signature keys ---- */

static void test_alg_names(void **state)
{
	static const struct {
		const char *name;
		int ok;
		enum sig_alg alg;
	} v[] = {
	    {"HS256", 1, SIG_HS256}, {"RS256", 1, SIG_RS256},
	    {"ES256", 1, SIG_ES256}, {"hs256", 0, 0},
	    {"Hs256", 0, 0},         {"none", 0, 0},
	    {"NONE", 0, 0},          {"", 0, 0},
	    {"HS256 ", 0, 0},        {"HS384", 0, 0},
	    {"PS256", 0, 0},         {"RS256\n", 0, 0},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		enum sig_alg alg;
		int r = sig_alg_from_name(v[i].name, &alg);
		if (v[i].ok) {
			assert_int_equal(r, 0);
			assert_int_equal(alg, v[i].alg);
			assert_string_equal(sig_alg_name(alg), v[i].name);
		} else if (r != -1) {
			fail_msg("accepted alg \"%s\"", v[i].name);
		}
	}
	assert_int_equal(sig_alg_from_name(NULL, &(enum sig_alg){0}), -1);
}

static struct sig_key *load_ok(enum sig_alg alg, const char *name, int priv)
{
	struct sig_key *k = NULL;
	char err[512] = "";
	if (sig_key_load(alg, path_in(name), priv, &k, err, sizeof(err)) != 0)
		fail_msg("could not load %s: %s", name, err);
	assert_int_equal(sig_key_alg(k), alg);
	return k;
}

static void load_fails(enum sig_alg alg, const char *name, int priv, const char *expect_in_err)
{
	struct sig_key *k = NULL;
	char err[512] = "";
	if (sig_key_load(alg, path_in(name), priv, &k, err, sizeof(err)) == 0)
		fail_msg("%s loaded %s (private %d)", sig_alg_name(alg), name, priv);
	assert_null(k);
	/* the message names the file */
	if (strstr(err, name) == NULL)
		fail_msg("message does not name the file: %s", err);
	if (expect_in_err != NULL && strstr(err, expect_in_err) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", err, expect_in_err);
}

/* RFC 7515 appendix A.1: the HS256 example key and signature. */
static const unsigned char rfc7515_hs256_key[64] = {
    0x03, 0x23, 0x35, 0x4b, 0x2b, 0x0f, 0xa5, 0xbc, 0x83, 0x7e, 0x06, 0x65, 0x77, 0x7b, 0xa6, 0x8f,
    0x5a, 0xb3, 0x28, 0xe6, 0xf0, 0x54, 0xc9, 0x28, 0xa9, 0x0f, 0x84, 0xb2, 0xd2, 0x50, 0x2e, 0xbf,
    0xd3, 0xfb, 0x5a, 0x92, 0xd2, 0x06, 0x47, 0xef, 0x96, 0x8a, 0xb4, 0xc3, 0x77, 0x62, 0x3d, 0x22,
    0x3d, 0x2e, 0x21, 0x72, 0x05, 0x2e, 0x4f, 0x08, 0xc0, 0xcd, 0x9a, 0xf5, 0x67, 0xd0, 0x80, 0xa3,
};
static const char rfc7515_hs256_input[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
    "bS9pc19yb290Ijp0cnVlfQ";
static const char rfc7515_hs256_sig[] = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

static void test_hs256_known_answer(void **state)
{
	write_file("rfc7515.key", rfc7515_hs256_key, sizeof(rfc7515_hs256_key), 0600);
	struct sig_key *k = load_ok(SIG_HS256, "rfc7515.key", 0);
	unsigned char *sig = NULL;
	size_t siglen = 0;
	assert_int_equal(
	    sig_sign(k, arena, rfc7515_hs256_input, strlen(rfc7515_hs256_input), &sig, &siglen), 0);
	assert_int_equal(siglen, 32);
	assert_string_equal(base64url_encode(arena, sig, siglen), rfc7515_hs256_sig);
	assert_int_equal(
	    sig_verify(k, rfc7515_hs256_input, strlen(rfc7515_hs256_input), sig, siglen), 0);
	sig_key_free(k);
}

static void test_hs256(void **state)
{
	const char *secret = "0123456789abcdef0123456789abcdef-hs256-test";
	char with_nl[128];
	snprintf(with_nl, sizeof(with_nl), "%s\r\n\n", secret);
	write_text("hs.key", secret, 0600);
	write_text("hs-nl.key", with_nl, 0600);
	write_text("hs-other.key", "another secret of more than 32 bytes....", 0600);
	struct sig_key *k = load_ok(SIG_HS256, "hs.key", 0);
	struct sig_key *knl = load_ok(SIG_HS256, "hs-nl.key", 0);
	struct sig_key *other = load_ok(SIG_HS256, "hs-other.key", 0);
	const char data[] = "header.payload";
	unsigned char *sig = NULL;
	size_t siglen = 0;
	assert_int_equal(sig_sign(k, arena, data, strlen(data), &sig, &siglen), 0);
	assert_int_equal(siglen, 32);
	assert_int_equal(sig_verify(k, data, strlen(data), sig, siglen), 0);
	/* trailing newlines are not part of the secret */
	assert_int_equal(sig_verify(knl, data, strlen(data), sig, siglen), 0);
	/* wrong key, modified data, modified signature */
	assert_int_equal(sig_verify(other, data, strlen(data), sig, siglen), -1);
	assert_int_equal(sig_verify(k, "header.paylOad", strlen(data), sig, siglen), -1);
	assert_int_equal(sig_verify(k, data, strlen(data) - 1, sig, siglen), -1);
	for (size_t i = 0; i < siglen; i++) {
		sig[i] ^= 0x01;
		assert_int_equal(sig_verify(k, data, strlen(data), sig, siglen), -1);
		sig[i] ^= 0x01;
	}
	/* wrong lengths: truncated, extended, empty */
	unsigned char longer[33];
	memcpy(longer, sig, 32);
	longer[32] = 0;
	assert_int_equal(sig_verify(k, data, strlen(data), sig, 31), -1);
	assert_int_equal(sig_verify(k, data, strlen(data), longer, 33), -1);
	assert_int_equal(sig_verify(k, data, strlen(data), sig, 0), -1);
	/* empty data is fine */
	assert_int_equal(sig_sign(k, arena, "", 0, &sig, &siglen), 0);
	assert_int_equal(sig_verify(k, "", 0, sig, siglen), 0);
	sig_key_free(k);
	sig_key_free(knl);
	sig_key_free(other);
}

static void test_hs256_key_errors(void **state)
{
	/* 31 bytes plus newlines: too short once the newlines are gone */
	write_text("hs-short.key", "0123456789012345678901234567890\n\n", 0600);
	load_fails(SIG_HS256, "hs-short.key", 0, "at least 32 bytes");
	write_text("hs-empty.key", "", 0600);
	load_fails(SIG_HS256, "hs-empty.key", 0, "at least 32 bytes");
	load_fails(SIG_HS256, "no-such-file.key", 0, "could not open");
	/* a directory is no key file */
	sh("mkdir -p adir");
	load_fails(SIG_HS256, "adir", 0, "not a regular file");
}

/* Write data, have `openssl dgst` sign it with key (PEM), read the
 * signature. Returns its length. */
static size_t openssl_sign(const char *key, const char *data, unsigned char *sig, size_t cap)
{
	write_text("data.bin", data, 0600);
	sh("openssl dgst -sha256 -sign %s -out sig.bin data.bin", key);
	return read_file("sig.bin", sig, cap);
}

static void test_rs256(void **state)
{
	struct sig_key *priv = load_ok(SIG_RS256, "rsa.pem", 1);
	struct sig_key *pub = load_ok(SIG_RS256, "rsa.pub", 0);
	const char data[] = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0";
	unsigned char *sig = NULL;
	size_t siglen = 0;
	assert_int_equal(sig_sign(priv, arena, data, strlen(data), &sig, &siglen), 0);
	assert_int_equal(siglen, 256);
	assert_int_equal(sig_verify(pub, data, strlen(data), sig, siglen), 0);
	assert_int_equal(sig_verify(priv, data, strlen(data), sig, siglen), 0);
	/* PKCS#1 v1.5 is deterministic: the openssl command agrees byte for
	 * byte */
	unsigned char ref[512];
	size_t reflen = openssl_sign("rsa.pem", data, ref, sizeof(ref));
	assert_int_equal(reflen, siglen);
	assert_memory_equal(ref, sig, siglen);
	/* modified data, modified signature, wrong lengths */
	assert_int_equal(
	    sig_verify(pub, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ5In0", strlen(data), sig, siglen), -1);
	sig[100] ^= 0x80;
	assert_int_equal(sig_verify(pub, data, strlen(data), sig, siglen), -1);
	sig[100] ^= 0x80;
	assert_int_equal(sig_verify(pub, data, strlen(data), sig, siglen - 1), -1);
	assert_int_equal(sig_verify(pub, data, strlen(data), sig, 0), -1);
	/* a public key cannot sign */
	unsigned char *s2 = NULL;
	size_t s2len = 0;
	assert_int_equal(sig_sign(pub, arena, data, strlen(data), &s2, &s2len), -1);
	sig_key_free(priv);
	sig_key_free(pub);
}

/* DER ECDSA-Sig-Value (SEQUENCE of two INTEGERs, short lengths: always so
 * for P-256) -> JWS r||s. */
static void der_to_jws(const unsigned char *der, size_t len, unsigned char out[64])
{
	assert_true(len >= 8 && der[0] == 0x30 && der[1] == len - 2);
	size_t p = 2;
	for (int part = 0; part < 2; part++) {
		assert_int_equal(der[p], 0x02);
		size_t n = der[p + 1];
		const unsigned char *v = der + p + 2;
		while (n > 32) { /* sign byte */
			assert_int_equal(*v, 0);
			v++;
			n--;
		}
		memset(out + 32 * part, 0, 32 - n);
		memcpy(out + 32 * part + 32 - n, v, n);
		p += 2 + der[p + 1];
	}
	assert_int_equal(p, len);
}

/* RFC 7515 appendix A.3: the ES256 example (public key as PEM). */
static const char rfc7515_es256_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEf83OJ3D2xF1Bg8vub9tLe1gHMzV7\n"
    "6e8Tus9uPHvRVEXH8UTNG72bfocs3+257rn0s2ldbqkLJK2KRiMohYjlrQ==\n"
    "-----END PUBLIC KEY-----\n";
static const char rfc7515_es256_input[] =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"
    "bS9pc19yb290Ijp0cnVlfQ";
static const char rfc7515_es256_sig[] =
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJ"
    "qPP3-Kg6NU1Q";

static void test_es256_known_answer(void **state)
{
	write_text("rfc7515-es256.pub", rfc7515_es256_pub, 0644);
	struct sig_key *k = load_ok(SIG_ES256, "rfc7515-es256.pub", 0);
	unsigned char *sig = NULL;
	size_t siglen = 0;
	assert_int_equal(
	    base64url_decode(arena, rfc7515_es256_sig, strlen(rfc7515_es256_sig), &sig, &siglen),
	    0);
	assert_int_equal(siglen, 64);
	assert_int_equal(
	    sig_verify(k, rfc7515_es256_input, strlen(rfc7515_es256_input), sig, siglen), 0);
	sig[63] ^= 1;
	assert_int_equal(
	    sig_verify(k, rfc7515_es256_input, strlen(rfc7515_es256_input), sig, siglen), -1);
	sig_key_free(k);
}

static void test_es256(void **state)
{
	struct sig_key *priv = load_ok(SIG_ES256, "ec.pem", 1);
	struct sig_key *pub = load_ok(SIG_ES256, "ec.pub", 0);
	const char data[] = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0";
	unsigned char *sig = NULL, *sig2 = NULL;
	size_t siglen = 0, sig2len = 0;
	assert_int_equal(sig_sign(priv, arena, data, strlen(data), &sig, &siglen), 0);
	assert_int_equal(siglen, 64); /* JWS r||s, not DER */
	assert_int_equal(sig_verify(pub, data, strlen(data), sig, siglen), 0);
	/* ECDSA is randomized: another signature, also valid */
	assert_int_equal(sig_sign(priv, arena, data, strlen(data), &sig2, &sig2len), 0);
	assert_memory_not_equal(sig, sig2, 64);
	assert_int_equal(sig_verify(pub, data, strlen(data), sig2, sig2len), 0);
	/* a signature by the openssl command, converted from DER */
	unsigned char der[128], jws[64];
	size_t derlen = openssl_sign("ec.pem", data, der, sizeof(der));
	der_to_jws(der, derlen, jws);
	assert_int_equal(sig_verify(pub, data, strlen(data), jws, 64), 0);
	/* the DER form itself is refused: JWS takes r||s only */
	assert_int_equal(sig_verify(pub, data, strlen(data), der, derlen), -1);
	/* any other length is refused */
	unsigned char longer[65];
	memcpy(longer, sig, 64);
	longer[64] = 0;
	assert_int_equal(sig_verify(pub, data, strlen(data), sig, 63), -1);
	assert_int_equal(sig_verify(pub, data, strlen(data), longer, 65), -1);
	assert_int_equal(sig_verify(pub, data, strlen(data), sig, 0), -1);
	/* every byte matters */
	for (size_t i = 0; i < 64; i++) {
		sig[i] ^= 0x10;
		assert_int_equal(sig_verify(pub, data, strlen(data), sig, 64), -1);
		sig[i] ^= 0x10;
	}
	/* r = 0 or s = 0 are never valid (FIPS 186-4 section 6.4.2) */
	unsigned char zero[64];
	memcpy(zero, sig, 64);
	memset(zero, 0, 32);
	assert_int_equal(sig_verify(pub, data, strlen(data), zero, 64), -1);
	memset(zero, 0, 64);
	assert_int_equal(sig_verify(pub, data, strlen(data), zero, 64), -1);
	assert_int_equal(sig_verify(pub, "x", 1, sig, 64), -1);
	/* a public key cannot sign */
	assert_int_equal(sig_sign(pub, arena, data, strlen(data), &sig2, &sig2len), -1);
	sig_key_free(priv);
	sig_key_free(pub);
}

struct key_mismatch {
	enum sig_alg alg;
	const char *file;
	int priv;
	const char *expect;
};

static void test_key_type_mismatch(void **state)
{
	static const struct key_mismatch v[] = {
	    {SIG_ES256, "rsa.pub", 0, "EC P-256"},
	    {SIG_ES256, "rsa.pem", 1, "EC P-256"},
	    {SIG_RS256, "ec.pub", 0, "RSA"},
	    {SIG_RS256, "ec.pem", 1, "RSA"},
	    {SIG_ES256, "ec384.pub", 0, "P-256"},
	    {SIG_ES256, "ec384.pem", 1, "P-256"},
	    {SIG_RS256, "rsa1024.pub", 0, "2048"},
	    {SIG_RS256, "rsa1024.pem", 1, "2048"},
	    {SIG_RS256, "ed.pub", 0, "RSA"},
	    {SIG_ES256, "ed.pub", 0, "EC"},
	    /* public where a private key is wanted and the reverse */
	    {SIG_RS256, "rsa-pub-0600.pem", 1, "private key"},
	    {SIG_ES256, "ec.pem", 0, "public key"},
	    /* an encrypted key is refused, never prompted for */
	    {SIG_ES256, "ec-enc.pem", 1, "private key"},
	    /* an HMAC secret is no PEM */
	    {SIG_RS256, "hs.key", 0, "public key"},
	    {SIG_RS256, "missing.pub", 0, "could not open"},
	};
	write_text("hs.key", "0123456789abcdef0123456789abcdef-hs256-test", 0600);
	/* a public key kept as a secret key file, so that the PEM is read */
	sh("cp rsa.pub rsa-pub-0600.pem && chmod 0600 rsa-pub-0600.pem");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		load_fails(v[i].alg, v[i].file, v[i].priv, v[i].expect);
}

/* ---- stored secrets ---- */

#define KEY_A "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY_B "2222222222222222222222222222222222222222222222222222222222222222"
#define KEY_C "abcdefABCDEF0123456789abcdefABCDEF0123456789abcdefABCDEF01234567"

static struct secret_keyring *ring_ok(const char *name)
{
	struct secret_keyring *kr = NULL;
	char err[512] = "";
	if (secret_keyring_load(path_in(name), &kr, err, sizeof(err)) != 0)
		fail_msg("could not load %s: %s", name, err);
	return kr;
}

struct ring_bad {
	const char *content;
	mode_t mode;
	const char *expect;
};

static void test_keyring_load_errors(void **state)
{
	static const struct ring_bad v[] = {
	    {"k1 " KEY_A "\n", 0644, "mode 0644"},
	    {"k1 " KEY_A "\n", 0640, "mode 0640"},
	    {"k1 " KEY_A "\n", 0604, "mode 0604"},
	    {"k1 " KEY_A "\n", 0620, "mode 0620"},
	    {"", 0600, "no key"},
	    {"# only a comment\n\n   \n", 0600, "no key"},
	    {"k1 " KEY_A "\nk1 " KEY_B "\n", 0600, "duplicate key id \"k1\""},
	    {"k1 zz11111111111111111111111111111111111111111111111111111111111111\n", 0600,
	     "hexadecimal"},
	    {"k1 " KEY_A "1\n", 0600, "64 hexadecimal digits"},
	    {"k1 111111111111111111111111111111111111111111111111111111111111111\n", 0600,
	     "64 hexadecimal digits"},
	    {"k1\n", 0600, "64 hexadecimal digits"},
	    {KEY_A "\n", 0600, "key id"},
	    {"k.1 " KEY_A "\n", 0600, "key id"},
	    {"k12345678901234567 " KEY_A "\n", 0600, "key id"},
	    {"k1 " KEY_A " extra\n", 0600, "hexadecimal digits only"},
	    {"# c\nk1 " KEY_A "\nk2 0x" KEY_B "\n", 0600, "line 3"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		write_text("bad.keys", v[i].content, v[i].mode);
		struct secret_keyring *kr = NULL;
		char err[512] = "";
		if (secret_keyring_load(path_in("bad.keys"), &kr, err, sizeof(err)) == 0)
			fail_msg("row %zu loaded", i);
		assert_null(kr);
		if (strstr(err, "bad.keys") == NULL || strstr(err, v[i].expect) == NULL)
			fail_msg("row %zu: message \"%s\" lacks \"%s\"", i, err, v[i].expect);
		/* never key bytes in a message */
		assert_null(strstr(err, "11111111"));
		assert_null(strstr(err, "22222222"));
	}
	struct secret_keyring *kr = NULL;
	char err[512] = "";
	assert_int_equal(secret_keyring_load(path_in("none.keys"), &kr, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "none.keys"));
}

static void test_keyring_load_accepts(void **state)
{
	/* comments, blank lines, CRLF, tabs, upper-case hex */
	write_text("ok.keys",
	           "# rotated 2025-01-01\r\n\r\n  k2\t" KEY_C "  \r\n"
	           "k1 " KEY_A "\n# trailing comment",
	           0600);
	struct secret_keyring *kr = ring_ok("ok.keys");
	unsigned char *blob = NULL;
	size_t blen = 0;
	assert_int_equal(secret_encrypt(kr, arena, "t:1:c", "x", 1, &blob, &blen), 0);
	assert_int_equal(blob[1], 2);
	assert_memory_equal(blob + 2, "k2", 2);
	secret_keyring_free(kr);
	/* 0400 is stricter than 0600: fine */
	write_text("ro.keys", "k1 " KEY_A "\n", 0400);
	secret_keyring_free(ring_ok("ro.keys"));
}

static void test_secret_round_trip(void **state)
{
	write_text("a.keys", "ka " KEY_A "\n", 0600);
	struct secret_keyring *kr = ring_ok("a.keys");
	static const struct {
		const char *plain;
		size_t len;
	} v[] = {
#define LIT(s) {s, sizeof(s) - 1}
	    LIT(""),
	    LIT("p"),
	    LIT("correct horse battery staple"),
	    LIT("with\0nul"),
	    LIT("\xf0\x9f\x94\x91 emoji \"quotes\" \\"),
#undef LIT
	};
	const char *aad = "mail_server:42:password";
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		unsigned char *blob = NULL, *blob2 = NULL;
		size_t blen = 0, blen2 = 0;
		assert_int_equal(secret_encrypt(kr, arena, aad, v[i].plain, v[i].len, &blob, &blen),
		                 0);
		/* 0x01 | idlen | id | nonce(12) | ciphertext | tag(16) */
		assert_int_equal(blen, 1 + 1 + 2 + 12 + v[i].len + 16);
		assert_int_equal(blob[0], 0x01);
		assert_int_equal(blob[1], 2);
		assert_memory_equal(blob + 2, "ka", 2);
		if (v[i].len > 4)
			assert_null(memmem(blob, blen, v[i].plain, v[i].len));
		char *plain = NULL;
		size_t plen = 99;
		assert_int_equal(secret_decrypt(kr, arena, aad, blob, blen, &plain, &plen), 0);
		assert_int_equal(plen, v[i].len);
		assert_memory_equal(plain, v[i].plain, plen);
		assert_int_equal(plain[plen], '\0');
		/* a fresh nonce every time */
		assert_int_equal(
		    secret_encrypt(kr, arena, aad, v[i].plain, v[i].len, &blob2, &blen2), 0);
		assert_int_equal(blen, blen2);
		assert_memory_not_equal(blob + 4, blob2 + 4, 12);
	}
	/* a long secret */
	static char big[8192];
	memset(big, 'z', sizeof(big));
	unsigned char *blob = NULL;
	size_t blen = 0;
	char *plain = NULL;
	size_t plen = 0;
	assert_int_equal(secret_encrypt(kr, arena, aad, big, sizeof(big), &blob, &blen), 0);
	assert_int_equal(secret_decrypt(kr, arena, aad, blob, blen, &plain, &plen), 0);
	assert_int_equal(plen, sizeof(big));
	assert_memory_equal(plain, big, plen);
	/* no aad is a caller bug: refused, never an unbound ciphertext */
	assert_int_equal(secret_encrypt(kr, arena, NULL, "x", 1, &blob, &blen), -1);
	secret_keyring_free(kr);
}

static void test_secret_binding_and_tamper(void **state)
{
	write_text("a.keys", "ka " KEY_A "\n", 0600);
	struct secret_keyring *kr = ring_ok("a.keys");
	const char *aad = "mail_server:42:password";
	unsigned char *blob = NULL;
	size_t blen = 0;
	char *plain = NULL;
	size_t plen = 0;
	assert_int_equal(secret_encrypt(kr, arena, aad, "hunter2", 7, &blob, &blen), 0);
	/* another row, another column, another table, prefixes and suffixes */
	static const char *const other[] = {
	    "mail_server:43:password",
	    "mail_server:42:secret_key",
	    "mail_server:4:password",
	    "mail_server:42:password ",
	    "mail_server:420:password",
	    "other:42:password",
	    "",
	    "mail_server:42:passwor",
	};
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		if (secret_decrypt(kr, arena, other[i], blob, blen, &plain, &plen) != -1)
			fail_msg("decrypted with aad \"%s\"", other[i]);
	/* every byte, every bit position class: header, id, nonce, ct, tag */
	for (size_t i = 0; i < blen; i++) {
		for (unsigned bit = 0; bit < 8; bit += 3) {
			blob[i] ^= (unsigned char)(1u << bit);
			if (secret_decrypt(kr, arena, aad, blob, blen, &plain, &plen) != -1)
				fail_msg("decrypted with byte %zu bit %u "
				         "flipped",
				         i, bit);
			blob[i] ^= (unsigned char)(1u << bit);
		}
	}
	/* every truncation, and an extension */
	for (size_t n = 0; n < blen; n++)
		assert_int_equal(secret_decrypt(kr, arena, aad, blob, n, &plain, &plen), -1);
	unsigned char *ext = arena_alloc(arena, blen + 1);
	memcpy(ext, blob, blen);
	ext[blen] = 0;
	assert_int_equal(secret_decrypt(kr, arena, aad, ext, blen + 1, &plain, &plen), -1);
	/* unchanged, it still decrypts */
	assert_int_equal(secret_decrypt(kr, arena, aad, blob, blen, &plain, &plen), 0);
	assert_string_equal(plain, "hunter2");
	secret_keyring_free(kr);
}

static void test_secret_unknown_key_and_rotation(void **state)
{
	write_text("old.keys", "ka " KEY_A "\n", 0600);
	write_text("other.keys", "kb " KEY_B "\n", 0600);
	/* same id, another key: the tag must fail, not garbage come out */
	write_text("sameid.keys", "ka " KEY_B "\n", 0600);
	/* rotation: the new key first, the old one kept for decryption */
	write_text("new.keys", "kb " KEY_B "\nka " KEY_A "\n", 0600);
	struct secret_keyring *old = ring_ok("old.keys");
	struct secret_keyring *otr = ring_ok("other.keys");
	struct secret_keyring *same = ring_ok("sameid.keys");
	struct secret_keyring *rot = ring_ok("new.keys");
	const char *aad = "mail_server:7:refresh_token";
	unsigned char *blob = NULL, *nblob = NULL;
	size_t blen = 0, nblen = 0;
	char *plain = NULL;
	size_t plen = 0;
	assert_int_equal(secret_encrypt(old, arena, aad, "rt-old", 6, &blob, &blen), 0);
	assert_int_equal(secret_decrypt(otr, arena, aad, blob, blen, &plain, &plen), -1);
	assert_int_equal(secret_decrypt(same, arena, aad, blob, blen, &plain, &plen), -1);
	/* the rotated keyring still decrypts the old ciphertext */
	assert_int_equal(secret_decrypt(rot, arena, aad, blob, blen, &plain, &plen), 0);
	assert_string_equal(plain, "rt-old");
	/* and encrypts with the new key */
	assert_int_equal(secret_encrypt(rot, arena, aad, "rt-new", 6, &nblob, &nblen), 0);
	assert_int_equal(nblob[1], 2);
	assert_memory_equal(nblob + 2, "kb", 2);
	assert_int_equal(secret_decrypt(otr, arena, aad, nblob, nblen, &plain, &plen), 0);
	assert_string_equal(plain, "rt-new");
	/* the old keyring does not know "kb" */
	assert_int_equal(secret_decrypt(old, arena, aad, nblob, nblen, &plain, &plen), -1);
	/* relabelling the id breaks the tag even when both ids name the same
	 * key bytes: the header is part of the associated data */
	write_text("twin.keys", "ka " KEY_A "\nkz " KEY_A "\n", 0600);
	struct secret_keyring *twin = ring_ok("twin.keys");
	assert_int_equal(secret_decrypt(twin, arena, aad, blob, blen, &plain, &plen), 0);
	memcpy(blob + 2, "kz", 2);
	assert_int_equal(secret_decrypt(twin, arena, aad, blob, blen, &plain, &plen), -1);
	secret_keyring_free(twin);
	secret_keyring_free(old);
	secret_keyring_free(otr);
	secret_keyring_free(same);
	secret_keyring_free(rot);
}

/* The key id of a ciphertext (rotation's count) and the keyring's ids. */
static void test_secret_key_id(void **state)
{
	(void)state;
	write_text("ab.keys", "kb " KEY_B "\n# old\nka " KEY_A "\n", 0600);
	struct secret_keyring *kr = ring_ok("ab.keys");
	assert_int_equal(secret_keyring_size(kr), 2);
	assert_string_equal(secret_keyring_key_id(kr, 0), "kb");
	assert_string_equal(secret_keyring_key_id(kr, 1), "ka");
	assert_null(secret_keyring_key_id(kr, 2));
	unsigned char *blob = NULL;
	size_t blen = 0;
	assert_int_equal(secret_encrypt(kr, arena, "x:1:y", "pw", 2, &blob, &blen), 0);
	char id[KEY_ID_MAX + 1];
	assert_int_equal(secret_key_id(blob, blen, id, sizeof(id)), 0);
	assert_string_equal(id, "kb");
	/* too small a buffer, a truncated blob, another format, a bad id */
	assert_int_equal(secret_key_id(blob, blen, id, 2), -1);
	assert_int_equal(secret_key_id(blob, 2 + 2 + 12 + 15, id, sizeof(id)), -1);
	assert_int_equal(secret_key_id(blob, 1, id, sizeof(id)), -1);
	blob[0] = 0x02;
	assert_int_equal(secret_key_id(blob, blen, id, sizeof(id)), -1);
	blob[0] = 0x01;
	blob[2] = ' ';
	assert_int_equal(secret_key_id(blob, blen, id, sizeof(id)), -1);
	blob[1] = 0;
	assert_int_equal(secret_key_id(blob, blen, id, sizeof(id)), -1);
	secret_keyring_free(kr);
}

static void test_keyring_generate(void **state)
{
	char err[512] = "";
	const char *p = path_in("gen.keys");
	unlink(p);
	assert_int_equal(secret_keyring_generate(p, err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	unsigned char buf[256];
	size_t n = read_file("gen.keys", buf, sizeof(buf) - 1);
	buf[n] = '\0';
	/* "k" + 8 hex, a space, 64 hex, a newline */
	assert_int_equal(n, 1 + 8 + 1 + 64 + 1);
	assert_int_equal(buf[0], 'k');
	assert_int_equal(buf[9], ' ');
	assert_int_equal(buf[74], '\n');
	assert_int_equal(strspn((char *)buf + 1, "0123456789abcdef"), 8);
	assert_int_equal(strspn((char *)buf + 10, "0123456789abcdef"), 64);
	struct secret_keyring *kr = ring_ok("gen.keys");
	unsigned char *blob = NULL;
	size_t blen = 0;
	assert_int_equal(secret_encrypt(kr, arena, "a", "b", 1, &blob, &blen), 0);
	assert_int_equal(blob[1], 9);
	assert_memory_equal(blob + 2, buf, 9);
	secret_keyring_free(kr);
	/* an existing file is never overwritten */
	assert_int_equal(secret_keyring_generate(p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "gen.keys"));
	unsigned char again[256];
	assert_int_equal(read_file("gen.keys", again, sizeof(again)), n);
	assert_memory_equal(again, buf, n);
	/* nor is a symlink followed */
	sh("ln -sf victim gen-link.keys");
	assert_int_equal(secret_keyring_generate(path_in("gen-link.keys"), err, sizeof(err)), -1);
	assert_int_equal(access(path_in("victim"), F_OK), -1);
	/* two generated files hold different keys and ids */
	const char *p2 = path_in("gen2.keys");
	assert_int_equal(secret_keyring_generate(p2, err, sizeof(err)), 0);
	unsigned char buf2[256];
	assert_int_equal(read_file("gen2.keys", buf2, sizeof(buf2)), n);
	assert_memory_not_equal(buf, buf2, 9);
	assert_memory_not_equal(buf + 10, buf2 + 10, 64);
}

/* ---- the rule for secret key files ----
 * Owner-only (no group or other permission bits) and owned by the user that
 * loads it: the secrets keyring, an HS256 secret and a private signing key.
 * A public key (RS256/ES256 verification) may be readable by anyone. */

enum key_kind { KIND_RING, KIND_HS256, KIND_RS256_PRIV, KIND_RS256_PUB };

/* 0 when name loads as kind; -1 with the message in err otherwise. */
static int load_kind(enum key_kind kind, const char *name, char *err, size_t errlen)
{
	int r;
	if (kind == KIND_RING) {
		struct secret_keyring *kr = NULL;
		r = secret_keyring_load(path_in(name), &kr, err, errlen);
		secret_keyring_free(kr);
		return r;
	}
	struct sig_key *k = NULL;
	enum sig_alg alg = kind == KIND_HS256 ? SIG_HS256 : SIG_RS256;
	r = sig_key_load(alg, path_in(name), kind == KIND_RS256_PRIV, &k, err, errlen);
	sig_key_free(k);
	return r;
}

static void test_secret_key_file_modes(void **state)
{
	static const struct {
		enum key_kind kind;
		const char *src; /* copied from this file, or NULL: HS256 text */
		mode_t mode;
		int ok;
	} v[] = {
	    {KIND_HS256, NULL, 0600, 1},
	    {KIND_HS256, NULL, 0400, 1},
	    {KIND_HS256, NULL, 0640, 0},
	    {KIND_HS256, NULL, 0644, 0},
	    {KIND_HS256, NULL, 0604, 0},
	    {KIND_HS256, NULL, 0660, 0},
	    {KIND_HS256, NULL, 0610, 0},
	    {KIND_HS256, NULL, 0602, 0},
	    {KIND_RING, NULL, 0600, 1},
	    {KIND_RING, NULL, 0400, 1},
	    {KIND_RING, NULL, 0640, 0},
	    {KIND_RING, NULL, 0440, 0},
	    {KIND_RS256_PRIV, "rsa.pem", 0600, 1},
	    {KIND_RS256_PRIV, "rsa.pem", 0640, 0},
	    {KIND_RS256_PRIV, "rsa.pem", 0644, 0},
	    {KIND_RS256_PUB, "rsa.pub", 0644, 1},
	    {KIND_RS256_PUB, "rsa.pub", 0664, 1},
	    {KIND_RS256_PUB, "rsa.pub", 0600, 1},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		const char *name = "mode.key";
		if (v[i].src != NULL) {
			sh("cp %s mode.key", v[i].src);
			assert_int_equal(chmod(path_in(name), v[i].mode), 0);
		} else if (v[i].kind == KIND_RING) {
			write_text(name, "k1 " KEY_A "\n", v[i].mode);
		} else {
			write_text(name, "0123456789abcdef0123456789abcdef-secret\n", v[i].mode);
		}
		char err[512] = "";
		int r = load_kind(v[i].kind, name, err, sizeof(err));
		if (v[i].ok && r != 0)
			fail_msg("row %zu (mode %04o) refused: %s", i, (unsigned)v[i].mode, err);
		if (!v[i].ok) {
			char want[32];
			snprintf(want, sizeof(want), "mode %04o", (unsigned)v[i].mode);
			if (r == 0)
				fail_msg("row %zu (mode %04o) loaded", i, (unsigned)v[i].mode);
			if (strstr(err, name) == NULL || strstr(err, want) == NULL ||
			    strstr(err, "0600 or 0400") == NULL)
				fail_msg(
				    "row %zu: message \"%s\" lacks the file, \"%s\" or the rule", i,
				    err, want);
			assert_null(strstr(err, "0123456789abcdef"));
		}
	}
}

/* Load name as kind in a child process running as `nobody`; the outcome
 * (0 or -1) and the message come back through a pipe. */
static int load_as_nobody(enum key_kind kind, const char *name, char *err, size_t errlen)
{
	struct passwd *pw = getpwnam("nobody");
	assert_non_null(pw);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char e[512] = "";
		close(fds[0]);
		if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
			_exit(3);
		char r = load_kind(kind, name, e, sizeof(e)) == 0 ? '0' : '1';
		if (write(fds[1], &r, 1) != 1 || write(fds[1], e, strlen(e)) < 0)
			_exit(4);
		_exit(0);
	}
	close(fds[1]);
	char buf[600];
	size_t n = 0;
	ssize_t got;
	while (n < sizeof(buf) - 1 && (got = read(fds[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)got;
	close(fds[0]);
	buf[n] = '\0';
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_true(n >= 1);
	size_t m = n - 1 < errlen - 1 ? n - 1 : errlen - 1;
	memcpy(err, buf + 1, m);
	err[m] = '\0';
	return buf[0] == '0' ? 0 : -1;
}

static void test_secret_key_file_owner(void **state)
{
	/* The loading user is `nobody`: the test must be able to become it. */
	assert_int_equal(geteuid(), 0);
	struct passwd *pw = getpwnam("nobody");
	assert_non_null(pw);
	static const enum key_kind kinds[] = {KIND_RING, KIND_HS256, KIND_RS256_PRIV};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *name = "owner.key";
		unlink(path_in(name)); /* made afresh, owned by root */
		if (kinds[i] == KIND_RING)
			write_text(name, "k1 " KEY_A "\n", 0600);
		else if (kinds[i] == KIND_HS256)
			write_text(name, "0123456789abcdef0123456789abcdef-secret\n", 0600);
		else
			sh("cp rsa.pem owner.key && chmod 0600 owner.key");
		char err[512] = "";
		/* owned by root, owner-only: not the loading user's file */
		if (load_as_nobody(kinds[i], name, err, sizeof(err)) == 0)
			fail_msg("kind %zu: nobody loaded a key owned by root", i);
		if (strstr(err, name) == NULL || strstr(err, "owned by") == NULL)
			fail_msg("kind %zu: message \"%s\" does not say whose file it must be", i,
			         err);
		/* the loading user's own file, owner-only: fine */
		assert_int_equal(chown(path_in(name), pw->pw_uid, pw->pw_gid), 0);
		if (load_as_nobody(kinds[i], name, err, sizeof(err)) != 0)
			fail_msg("kind %zu: nobody could not load its own key: %s", i, err);
		/* its own file, readable by its group: refused */
		assert_int_equal(chmod(path_in(name), 0640), 0);
		if (load_as_nobody(kinds[i], name, err, sizeof(err)) == 0)
			fail_msg("kind %zu: a group-readable key loaded", i);
		assert_non_null(strstr(err, "mode 0640"));
		/* root (the operator's tools) reads the service user's key */
		assert_int_equal(chmod(path_in(name), 0600), 0);
		if (load_kind(kinds[i], name, err, sizeof(err)) != 0)
			fail_msg("kind %zu: root could not load the service user's key: %s", i,
			         err);
	}
	/* a public key owned by another user and readable by all: fine */
	sh("cp rsa.pub owner.pub && chmod 0644 owner.pub");
	char err[512] = "";
	if (load_as_nobody(KIND_RS256_PUB, "owner.pub", err, sizeof(err)) != 0)
		fail_msg("a world-readable public key was refused: %s", err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_base64url_vectors, test_setup),
	    cmocka_unit_test_setup(test_base64url_round_trip_all_lengths, test_setup),
	    cmocka_unit_test_setup(test_base64url_strict_refusals, test_setup),
	    cmocka_unit_test(test_sha256_vectors),
	    cmocka_unit_test(test_random_and_equal),
	    cmocka_unit_test(test_alg_names),
	    cmocka_unit_test_setup(test_hs256_known_answer, test_setup),
	    cmocka_unit_test_setup(test_hs256, test_setup),
	    cmocka_unit_test(test_hs256_key_errors),
	    cmocka_unit_test_setup(test_rs256, test_setup),
	    cmocka_unit_test_setup(test_es256_known_answer, test_setup),
	    cmocka_unit_test_setup(test_es256, test_setup),
	    cmocka_unit_test(test_key_type_mismatch),
	    cmocka_unit_test(test_keyring_load_errors),
	    cmocka_unit_test_setup(test_keyring_load_accepts, test_setup),
	    cmocka_unit_test_setup(test_secret_round_trip, test_setup),
	    cmocka_unit_test_setup(test_secret_binding_and_tamper, test_setup),
	    cmocka_unit_test_setup(test_secret_unknown_key_and_rotation, test_setup),
	    cmocka_unit_test_setup(test_secret_key_id, test_setup),
	    cmocka_unit_test_setup(test_keyring_generate, test_setup),
	    cmocka_unit_test_setup(test_secret_key_file_modes, test_setup),
	    cmocka_unit_test_setup(test_secret_key_file_owner, test_setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
