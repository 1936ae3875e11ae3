/*
 * fuzz_json.c - libFuzzer target for json_parse (and json_out through a
 * round trip). Besides "no crash, no leak, no UB" it checks properties:
 *   - a parse in a small arena ends the same way or with JSON_ERR_NOMEM;
 *   - a parsed document written back with json_out parses again to the same
 *     tree (numbers that are not int64 are written as their text in a
 *     string, and compared that way).
 * Build and run with tests/fuzz/run_brief.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "json.h"
#include "mailsrv_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct arena *big, *again;

/* Keys with NUL cannot go through json_out_key (a C string): such
 * documents are not round-tripped. */
static int has_nul_key(const struct json_value *v)
{
	if (v->type == JSON_OBJECT) {
		for (size_t i = 0; i < v->u.object.count; i++) {
			const struct json_member *m = &v->u.object.members[i];
			if (strlen(m->key) != m->key_len || has_nul_key(m->value))
				return 1;
		}
	} else if (v->type == JSON_ARRAY) {
		for (size_t i = 0; i < v->u.array.count; i++)
			if (has_nul_key(v->u.array.items[i]))
				return 1;
	}
	return 0;
}

static void write_value(struct json_out *o, const struct json_value *v)
{
	switch (v->type) {
	case JSON_NULL:
		json_out_null(o);
		break;
	case JSON_BOOL:
		json_out_bool(o, v->u.boolean);
		break;
	case JSON_NUMBER:
		if (v->u.number.is_int)
			json_out_int(o, v->u.number.i);
		else
			json_out_string(o, v->u.number.text, v->u.number.len);
		break;
	case JSON_STRING:
		json_out_string(o, v->u.string.ptr, v->u.string.len);
		break;
	case JSON_ARRAY:
		json_out_array_open(o);
		for (size_t i = 0; i < v->u.array.count; i++)
			write_value(o, v->u.array.items[i]);
		json_out_array_close(o);
		break;
	case JSON_OBJECT:
		json_out_object_open(o);
		for (size_t i = 0; i < v->u.object.count; i++) {
			json_out_key(o, v->u.object.members[i].key);
			write_value(o, v->u.object.members[i].value);
		}
		json_out_object_close(o);
		break;
	}
}

/* Tree equality. written: b is a's round trip, where numbers that are not
 * int64 became strings holding their text. */
static int same(const struct json_value *a, const struct json_value *b, int written)
{
	if (written && a->type == JSON_NUMBER && !a->u.number.is_int)
		return b->type == JSON_STRING && b->u.string.len == a->u.number.len &&
		       memcmp(b->u.string.ptr, a->u.number.text, a->u.number.len) == 0;
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case JSON_NULL:
		return 1;
	case JSON_BOOL:
		return a->u.boolean == b->u.boolean;
	case JSON_NUMBER:
		if (!written)
			return a->u.number.len == b->u.number.len &&
			       memcmp(a->u.number.text, b->u.number.text, a->u.number.len) == 0 &&
			       a->u.number.is_int == b->u.number.is_int &&
			       a->u.number.i == b->u.number.i;
		return b->u.number.is_int && a->u.number.i == b->u.number.i;
	case JSON_STRING:
		return a->u.string.len == b->u.string.len &&
		       memcmp(a->u.string.ptr, b->u.string.ptr, a->u.string.len) == 0 &&
		       a->u.string.ptr[a->u.string.len] == '\0';
	case JSON_ARRAY:
		if (a->u.array.count != b->u.array.count)
			return 0;
		for (size_t i = 0; i < a->u.array.count; i++)
			if (!same(a->u.array.items[i], b->u.array.items[i], written))
				return 0;
		return 1;
	case JSON_OBJECT:
		if (a->u.object.count != b->u.object.count)
			return 0;
		for (size_t i = 0; i < a->u.object.count; i++) {
			const struct json_member *x = &a->u.object.members[i];
			const struct json_member *y = &b->u.object.members[i];
			if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) != 0 ||
			    !same(x->value, y->value, written))
				return 0;
		}
		return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (big == NULL) {
		big = arena_new(MAX_ARENA_BYTES);
		again = arena_new(MAX_ARENA_BYTES);
		if (big == NULL || again == NULL)
			abort();
	}
	arena_reset(big);
	arena_reset(again);

	struct json_value *root = NULL;
	char msg[64];
	enum json_status st = json_parse(big, (const char *)data, size, &root, msg, sizeof(msg));
	if ((st == JSON_OK) != (root != NULL))
		abort();

	/* A small arena: the same answer, or out of memory. */
	struct arena *small = arena_new(size * 2 + 64);
	if (small == NULL)
		abort();
	struct json_value *r2 = NULL;
	enum json_status st2 = json_parse(small, (const char *)data, size, &r2, NULL, 0);
	if (st2 != st && st2 != JSON_ERR_NOMEM)
		abort();
	if (st2 == JSON_OK && !same(root, r2, 0))
		abort();
	arena_free(small);

	if (st != JSON_OK || has_nul_key(root))
		return 0;

	struct json_out *o = json_out_new();
	if (o == NULL)
		abort();
	write_value(o, root);
	const char *buf = NULL;
	size_t len = 0;
	/* Everything the parser accepts is valid UTF-8 within our limits:
	 * writing it back must succeed. */
	if (json_out_result(o, &buf, &len) != 0)
		abort();
	struct json_value *back = NULL;
	st2 = json_parse(again, buf, len, &back, NULL, 0);
	if (st2 != JSON_ERR_NOMEM && (st2 != JSON_OK || !same(root, back, 1)))
		abort();
	json_out_free(o);
	return 0;
}
