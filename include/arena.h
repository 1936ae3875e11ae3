/*
 * arena.h - per-request bump allocator. One arena per worker thread, reset
 * after each response: everything a request allocates has this one owner and
 * is freed in one place. Allocation fails (NULL) past the arena's cap.
 */
#ifndef MAILSRV_ARENA_H
#define MAILSRV_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/* cap: maximum bytes handed out between resets. NULL on failure. */
struct arena *arena_new(size_t cap);
void arena_free(struct arena *a);
/* Release every allocation at once; keeps the first chunk for reuse. */
void arena_reset(struct arena *a);

/* 16-byte aligned; NULL when over the cap or out of memory. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_calloc(struct arena *a, size_t count, size_t size);
/* Copies n bytes and appends a NUL (the copy may contain NULs). */
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
