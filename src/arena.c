/*
 * arena.c - per-request bump allocator (see arena.h). Chunks come from
 * malloc; the first chunk survives arena_reset so a steady worker does not
 * touch malloc at all for ordinary requests.
 *
 * A request's arena holds its body (which may carry a password or a client
 * secret), decrypted secrets and the tokens of an outbound call. Reset and
 * free wipe every byte that was handed out (crypto_wipe) before the memory is
 * reused or returned to malloc, so none of it outlives the request in the
 * heap, in a core file or in the next request's uninitialized memory. The
 * cost is one memset over the bytes used: about 2-4 KiB for an ordinary
 * request, at most MAX_ARENA_BYTES (docs/performance.md has the figures).
 */
#include "arena.h"

#include "crypto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailsrv_limits.h"

#define ARENA_ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	/* data follows, aligned */
};

struct arena {
	struct chunk *head; /* current chunk; older ones follow */
	size_t cap;         /* bytes that may be handed out between resets */
	size_t total;       /* bytes handed out since the last reset */
};

#define CHUNK_HDR ((sizeof(struct chunk) + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1))

static struct chunk *chunk_new(size_t size)
{
	struct chunk *c = malloc(CHUNK_HDR + size);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

struct arena *arena_new(size_t cap)
{
	struct arena *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->cap = cap;
	a->head = chunk_new(ARENA_CHUNK_BYTES);
	if (a->head == NULL) {
		free(a);
		return NULL;
	}
	return a;
}

/* The bytes of c that were handed out since its last wipe. */
static void chunk_wipe(struct chunk *c)
{
	crypto_wipe((char *)c + CHUNK_HDR, c->used);
	c->used = 0;
}

static void chunks_free(struct chunk *c)
{
	while (c != NULL) {
		struct chunk *next = c->next;
		chunk_wipe(c);
		free(c);
		c = next;
	}
}

void arena_free(struct arena *a)
{
	if (a == NULL)
		return;
	chunks_free(a->head);
	free(a);
}

void arena_reset(struct arena *a)
{
	struct chunk *first = a->head;
	/* The oldest chunk is the last in the list: keep it, free the rest. */
	struct chunk *prev = NULL;
	while (first->next != NULL) {
		prev = first;
		first = first->next;
	}
	if (prev != NULL) {
		prev->next = NULL;
		chunks_free(a->head);
	}
	chunk_wipe(first);
	a->head = first;
	a->total = 0;
}

void *arena_alloc(struct arena *a, size_t n)
{
	size_t need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (need < n || need > a->cap - a->total)
		return NULL;
	struct chunk *c = a->head;
	if (c->size - c->used < need) {
		size_t size = need > ARENA_CHUNK_BYTES ? need : ARENA_CHUNK_BYTES;
		c = chunk_new(size);
		if (c == NULL)
			return NULL;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c + CHUNK_HDR + c->used;
	c->used += need;
	a->total += need;
	return p;
}

void *arena_calloc(struct arena *a, size_t count, size_t size)
{
	if (size != 0 && count > SIZE_MAX / size)
		return NULL;
	void *p = arena_alloc(a, count * size);
	if (p != NULL)
		memset(p, 0, count * size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *p = arena_alloc(a, n + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return NULL;
	char *p = arena_alloc(a, (size_t)n + 1);
	if (p == NULL)
		return NULL;
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}
