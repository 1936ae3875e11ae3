/*
 * test_db_row.c - unit tests of src/db_row.c (include/db_row.h): the
 * associated data that binds each stored secret to its row and column.
 *
 * Stored ciphertexts were made with these exact bytes, so they are pinned
 * twice: as strings, and by known answers - ciphertexts made before the
 * associated data had its one builder, which must still decrypt with what
 * the builder makes now (and with nothing else).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arena.h"
#include "crypto.h"
#include "db_row.h"

/* The key that made the known answers (key id "k1"). */
#define KAT_KEY "1111111111111111111111111111111111111111111111111111111111111111"

static const unsigned char state_hash[32] = {
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
};

static void test_aad_bytes(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 16);
	static const struct {
		long long id;
		enum ms_secret s;
		const char *want;
	} v[] = {
	    {42, MS_SECRET_password, "mail_server:42:password"},
	    {42, MS_SECRET_secret_key, "mail_server:42:secret_key"},
	    {1, MS_SECRET_access_token, "mail_server:1:access_token"},
	    {LLONG_MAX, MS_SECRET_refresh_token, "mail_server:9223372036854775807:refresh_token"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		assert_string_equal(db_ms_secret_aad(a, v[i].id, v[i].s), v[i].want);
	assert_null(db_ms_secret_aad(a, 1, MS_SECRET__COUNT));
	assert_string_equal(
	    db_oauth2_state_aad(a, state_hash),
	    "oauth2_state:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	    ":code_verifier");
	arena_free(a);
}

static unsigned char *unhex(struct arena *a, const char *s, size_t *n)
{
	*n = strlen(s) / 2;
	unsigned char *b = arena_alloc(a, *n);
	for (size_t i = 0; i < *n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		b[i] = (unsigned char)v;
	}
	return b;
}

static struct secret_keyring *kat_ring(void)
{
	char dir[] = "/tmp/test_db_row.XXXXXX", path[64], err[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k.keys", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("k1 " KAT_KEY "\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
	struct secret_keyring *kr = NULL;
	if (secret_keyring_load(path, &kr, err, sizeof(err)) != 0)
		fail_msg("could not load the key file: %s", err);
	unlink(path);
	rmdir(dir);
	return kr;
}

/* "hunter2" encrypted before the builders existed. */
static void test_known_ciphertexts_decrypt(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 16);
	struct secret_keyring *kr = kat_ring();
	struct {
		const char *aad;
		const char *blob;
	} v[] = {
	    {db_ms_secret_aad(a, 42, MS_SECRET_password),
	     "01026b3198f31929d4eea14dd3d4a79e7c8b74515436bcd77572ec0831c8b4f987175b669800f1"},
	    {db_ms_secret_aad(a, LLONG_MAX, MS_SECRET_refresh_token),
	     "01026b31d3ace4a67e7e485a8c82453447dedbe243c936b01776c8b0dfde3d60f047194cea42ca"},
	    {db_oauth2_state_aad(a, state_hash),
	     "01026b314e1e8b0b5fd7d990df4af2bdba3f5b4ca348e008982366fff3a8016bc90d8864a69d4a"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n;
		unsigned char *blob = unhex(a, v[i].blob, &n);
		char *plain;
		size_t plen;
		assert_int_equal(secret_decrypt(kr, a, v[i].aad, blob, n, &plain, &plen), 0);
		assert_int_equal(plen, 7);
		assert_memory_equal(plain, "hunter2", 7);
		/* and only there: another row or column does not decrypt it */
		const char *elsewhere[] = {db_ms_secret_aad(a, 43, MS_SECRET_password),
		                           db_ms_secret_aad(a, 42, MS_SECRET_secret_key)};
		for (size_t j = 0; j < 2; j++)
			assert_int_equal(
			    secret_decrypt(kr, a, elsewhere[j], blob, n, &plain, &plen), -1);
	}
	secret_keyring_free(kr);
	arena_free(a);
}

static void test_seal_round_trip(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 16);
	struct secret_keyring *kr = kat_ring();
	const char *blob;
	int blen;
	const char *aad = db_ms_secret_aad(a, 7, MS_SECRET_access_token);
	assert_int_equal(db_seal(a, kr, aad, "tok", 3, &blob, &blen), E_OK);
	char *plain;
	size_t plen;
	assert_int_equal(secret_decrypt(kr, a, "mail_server:7:access_token",
	                                (const unsigned char *)blob, (size_t)blen, &plain, &plen),
	                 0);
	assert_string_equal(plain, "tok");
	/* a failed aad allocation never yields an unbound ciphertext */
	assert_int_equal(db_seal(a, kr, NULL, "tok", 3, &blob, &blen), E_INTERNAL);
	secret_keyring_free(kr);
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_aad_bytes),
	    cmocka_unit_test(test_known_ciphertexts_decrypt),
	    cmocka_unit_test(test_seal_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
