/*
 * test_arena.c - unit tests of src/arena.c: 16-byte alignment, the cap
 * (never crossed, overflowing sizes refused), growth past a chunk with
 * earlier allocations intact, reset (everything released, the first chunk
 * kept), the wipe on reset (nothing a request held stays readable in the
 * kept chunk) and the string helpers.
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
#include "mailsrv_limits.h"

static void test_alignment(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 20);
	assert_non_null(a);
	for (size_t n = 0; n < 100; n++) {
		void *p = arena_alloc(a, n);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 0xab, n);
	}
	/* Also in later chunks. */
	for (int i = 0; i < 10; i++) {
		void *p = arena_alloc(a, ARENA_CHUNK_BYTES / 3 + 1);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
	}
	arena_free(a);
}

static void test_cap(void **state)
{
	(void)state;
	struct arena *a = arena_new(1024);
	assert_non_null(a);
	/* The cap counts aligned sizes: 1024 bytes exactly, not one more. */
	assert_null(arena_alloc(a, 1025));
	assert_non_null(arena_alloc(a, 1000)); /* 1008 */
	assert_null(arena_alloc(a, 17));
	assert_non_null(arena_alloc(a, 16));
	assert_null(arena_alloc(a, 1));
	/* A failed allocation takes nothing. */
	arena_reset(a);
	assert_null(arena_alloc(a, 4096));
	assert_non_null(arena_alloc(a, 1024));
	arena_free(a);

	/* Sizes that overflow when aligned or multiplied. */
	a = arena_new(MAX_ARENA_BYTES);
	assert_null(arena_alloc(a, SIZE_MAX));
	assert_null(arena_alloc(a, SIZE_MAX - 7));
	assert_null(arena_calloc(a, SIZE_MAX / 2, 3));
	assert_null(arena_calloc(a, 2, SIZE_MAX / 2 + 1));
	assert_null(arena_strndup(a, "x", SIZE_MAX));
	assert_null(arena_alloc(a, MAX_ARENA_BYTES + 1));
	assert_non_null(arena_alloc(a, MAX_ARENA_BYTES));
	assert_null(arena_alloc(a, 1));
	arena_free(a);
}

static void test_growth(void **state)
{
	(void)state;
	struct arena *a = arena_new(MAX_ARENA_BYTES);
	/* Many small allocations over several chunks, each with its own
	 * pattern: none overlaps another. */
	enum { N = 4 * ARENA_CHUNK_BYTES / 100 };
	unsigned char **ps = calloc(N, sizeof(*ps));
	for (size_t i = 0; i < N; i++) {
		ps[i] = arena_alloc(a, 100);
		assert_non_null(ps[i]);
		memset(ps[i], (int)(i & 0xff), 100);
	}
	/* One larger than a chunk. */
	unsigned char *big = arena_alloc(a, 3 * ARENA_CHUNK_BYTES);
	assert_non_null(big);
	memset(big, 0x5a, 3 * ARENA_CHUNK_BYTES);
	for (size_t i = 0; i < N; i++)
		for (size_t j = 0; j < 100; j++)
			if (ps[i][j] != (unsigned char)(i & 0xff))
				fail_msg("allocation %zu was overwritten", i);
	free(ps);
	arena_free(a);
}

static void test_reset(void **state)
{
	(void)state;
	struct arena *a = arena_new(8 * ARENA_CHUNK_BYTES);
	void *first = arena_alloc(a, 10);
	for (int i = 0; i < 6; i++)
		assert_non_null(arena_alloc(a, ARENA_CHUNK_BYTES));
	/* The cap is nearly used up... */
	assert_null(arena_alloc(a, 2 * ARENA_CHUNK_BYTES));
	arena_reset(a);
	/* ...and free again after the reset, which keeps the first chunk: the
	 * next allocation is where the first one was. */
	assert_ptr_equal(arena_alloc(a, 10), first);
	assert_non_null(arena_alloc(a, 7 * ARENA_CHUNK_BYTES));
	arena_reset(a);
	arena_reset(a); /* twice in a row is fine */
	assert_ptr_equal(arena_alloc(a, 1), first);
	arena_free(a);
	arena_free(NULL);
}

/* True when n bytes at p are all zero. */
static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* What a request held (a decrypted password, a body with a client secret)
 * is gone from the chunk that the next request reuses, up to the last byte
 * that was handed out, also when the request grew into further chunks. */
static void test_reset_wipes(void **state)
{
	(void)state;
	static const char secret[] = "client_secret=s3cr3t-Pa55w0rd";
	struct arena *a = arena_new(8 * ARENA_CHUNK_BYTES);
	char *s1 = arena_strdup(a, secret);
	size_t fill = ARENA_CHUNK_BYTES - 64; /* nearly all of the first chunk */
	unsigned char *body = arena_alloc(a, fill);
	assert_non_null(body);
	memset(body, 0xA5, fill);
	/* a second chunk, and a third (one allocation larger than a chunk) */
	char *s2 = arena_strdup(a, secret);
	assert_non_null(arena_alloc(a, 2 * ARENA_CHUNK_BYTES));
	assert_non_null(s2);
	arena_reset(a);
	/* s1 and body lie in the kept chunk: readable, and wiped */
	assert_true(all_zero((unsigned char *)s1, sizeof(secret)));
	assert_true(all_zero(body, fill));
	/* The wipe is bounded by what was handed out; the arena stays usable. */
	char *again = arena_strdup(a, "next request");
	assert_ptr_equal(again, s1);
	assert_string_equal(again, "next request");
	arena_reset(a);
	assert_true(all_zero((unsigned char *)again, sizeof("next request")));
	arena_free(a);
}

static void test_strings(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 20);
	char *s = arena_strndup(a, "a\0b", 3);
	assert_memory_equal(s, "a\0b", 4);
	assert_string_equal(arena_strdup(a, "hello"), "hello");
	assert_string_equal(arena_strdup(a, ""), "");
	assert_string_equal(arena_printf(a, "%s=%d", "n", 42), "n=42");
	/* A long formatted string (more than one chunk). */
	char *wide = arena_printf(a, "%*s", ARENA_CHUNK_BYTES + 10, "x");
	assert_non_null(wide);
	assert_int_equal(strlen(wide), ARENA_CHUNK_BYTES + 10);
	int *z = arena_calloc(a, 1000, sizeof(int));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(z[i], 0);
	arena_free(a);
	/* Over the cap, the helpers fail cleanly. */
	a = arena_new(64);
	assert_null(arena_printf(a, "%100s", "x"));
	assert_null(arena_strdup(a, "0123456789012345678901234567890123456789012345678901234567890"
	                            "1234"));
	assert_non_null(arena_strdup(a, "fits"));
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alignment), cmocka_unit_test(test_cap),
	    cmocka_unit_test(test_growth),    cmocka_unit_test(test_reset),
	    cmocka_unit_test(test_strings),   cmocka_unit_test(test_reset_wipes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
