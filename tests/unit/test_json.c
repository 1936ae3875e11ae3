/*
 * test_json.c - unit tests for json.c: every json_status, each limit in
 * mailsrv_limits.h exactly at and one past its value, the traps (docs/design.md) of
 * yajl_tree_parse (comments, duplicate keys, \u0000) and the output side's
 * escaping and sticky error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "arena.h"
#include "json.h"
#include "mailsrv_limits.h"

static int setup_arena(void **state)
{
	struct arena *a = arena_new(MAX_ARENA_BYTES);
	if (a == NULL)
		return -1;
	*state = a;
	return 0;
}

static int teardown_arena(void **state)
{
	arena_free(*state);
	return 0;
}

/* Growable test buffer for generated inputs. */
struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 256;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		b->p = realloc(b->p, ncap);
		assert_non_null(b->p);
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static enum json_status parse(struct arena *a, const char *s, size_t len, struct json_value **v)
{
	char msg[128];
	return json_parse(a, s, len, v, msg, sizeof(msg));
}

/* ---- table of whole documents ---- */

struct parse_case {
	const char *name;
	const char *in;
	size_t len; /* 0: strlen(in) */
	enum json_status want;
};

static const struct parse_case parse_cases[] = {
    {"empty object", "{}", 0, JSON_OK},
    {"empty array", "[]", 0, JSON_OK},
    {"scalar root null", "null", 0, JSON_OK},
    {"scalar root true", "true", 0, JSON_OK},
    {"scalar root number", "42", 0, JSON_OK},
    {"scalar root string", "\"x\"", 0, JSON_OK},
    {"surrounding whitespace", " \n\t{\"a\":1}\r\n ", 0, JSON_OK},
    {"utf8 text", "{\"n\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", 0, JSON_OK},
    {"escapes", "[\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"]", 0, JSON_OK},
    {"empty input", "", 0, JSON_ERR_SYNTAX},
    {"whitespace only", " \n\t ", 0, JSON_ERR_SYNTAX},
    {"block comment before", "/* c */ {}", 0, JSON_ERR_SYNTAX},
    {"line comment after", "{} // c", 0, JSON_ERR_SYNTAX},
    {"comment inside", "[1 /* c */]", 0, JSON_ERR_SYNTAX},
    {"trailing garbage", "{} x", 0, JSON_ERR_SYNTAX},
    {"two values", "{}{}", 0, JSON_ERR_SYNTAX},
    {"two scalars", "1 2", 0, JSON_ERR_SYNTAX},
    {"trailing comma", "[1,]", 0, JSON_ERR_SYNTAX},
    {"trailing comma after root", "[1],", 0, JSON_ERR_SYNTAX},
    {"unclosed object", "{", 0, JSON_ERR_SYNTAX},
    {"unclosed array", "[1,", 0, JSON_ERR_SYNTAX},
    {"unclosed string", "\"abc", 0, JSON_ERR_SYNTAX},
    {"partial literal", "tru", 0, JSON_ERR_SYNTAX},
    {"single quotes", "{'a':1}", 0, JSON_ERR_SYNTAX},
    {"bare key", "{a:1}", 0, JSON_ERR_SYNTAX},
    {"NaN", "[NaN]", 0, JSON_ERR_SYNTAX},
    {"leading zero", "[01]", 0, JSON_ERR_SYNTAX},
    {"plus sign", "[+1]", 0, JSON_ERR_SYNTAX},
    {"bad escape", "[\"\\x41\"]", 0, JSON_ERR_SYNTAX},
    {"short unicode escape", "[\"\\u12\"]", 0, JSON_ERR_SYNTAX},
    {"raw control char",
     "[\"a\x01"
     "b\"]",
     0, JSON_ERR_SYNTAX},
    {"raw newline in string", "[\"a\nb\"]", 0, JSON_ERR_SYNTAX},
    {"raw NUL in string", "[\"a\0b\"]", 7, JSON_ERR_SYNTAX},
    {"NUL after document", "{}\0", 3, JSON_ERR_SYNTAX},
    {"invalid utf8 byte", "[\"\xff\"]", 0, JSON_ERR_SYNTAX},
    {"truncated utf8", "[\"\xc3\"]", 0, JSON_ERR_SYNTAX},
    {"lone continuation", "[\"\x80\"]", 0, JSON_ERR_SYNTAX},
    {"truncated 4-byte utf8", "[\"\xf0\x9f\x98\"]", 0, JSON_ERR_SYNTAX},
    {"invalid utf8 in key", "{\"\xfe\":1}", 0, JSON_ERR_SYNTAX},
    {"duplicate key", "{\"a\":1,\"a\":2}", 0, JSON_ERR_DUPLICATE},
    {"duplicate key other types", "{\"a\":null,\"b\":1,\"a\":[]}", 0, JSON_ERR_DUPLICATE},
    {"duplicate via escape", "{\"a\":1,\"\\u0061\":2}", 0, JSON_ERR_DUPLICATE},
    {"duplicate in nested", "[{\"x\":{\"k\":1,\"k\":1}}]", 0, JSON_ERR_DUPLICATE},
    {"duplicate NUL keys", "{\"a\\u0000b\":1,\"a\\u0000b\":2}", 0, JSON_ERR_DUPLICATE},
    {"keys differ after NUL", "{\"a\\u0000b\":1,\"a\\u0000c\":2}", 0, JSON_OK},
    {"key and key+NUL differ", "{\"a\":1,\"a\\u0000\":2}", 0, JSON_OK},
    {"same key, sibling objects", "[{\"a\":1},{\"a\":2}]", 0, JSON_OK},
    {"same key, parent and child", "{\"a\":{\"a\":1}}", 0, JSON_OK},
    {"key case differs", "{\"a\":1,\"A\":2}", 0, JSON_OK},
};

static void test_parse_table(void **state)
{
	struct arena *a = *state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		struct json_value *v = (struct json_value *)1;
		char msg[128];
		arena_reset(a);
		enum json_status st = json_parse(a, c->in, len, &v, msg, sizeof(msg));
		if (st != c->want)
			fail_msg("case \"%s\": status %d, want %d", c->name, (int)st, (int)c->want);
		if (st == JSON_OK)
			assert_non_null(v);
		else
			assert_null(v);
		assert_true(strlen(msg) > 0);
	}
}

/* ---- depth ---- */

static char *nest(const char *open, const char *close, int depth)
{
	struct buf b = {0};
	for (int i = 0; i < depth; i++)
		buf_str(&b, open);
	buf_str(&b, "1");
	for (int i = 0; i < depth; i++)
		buf_str(&b, close);
	return b.p;
}

static void test_depth_limit(void **state)
{
	struct arena *a = *state;
	struct json_value *v;
	static const struct {
		const char *open, *close;
	} kinds[] = {{"[", "]"}, {"{\"k\":", "}"}, {"[{\"k\":", "}]"}};

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		int per = k == 2 ? 2 : 1; /* containers per repetition */
		/* exactly at the limit */
		char *s = nest(kinds[k].open, kinds[k].close, JSON_MAX_DEPTH / per);
		arena_reset(a);
		assert_int_equal(parse(a, s, strlen(s), &v), JSON_OK);
		free(s);
		/* one past it */
		if (per == 1)
			s = nest(kinds[k].open, kinds[k].close, JSON_MAX_DEPTH + 1);
		else
			s = nest(kinds[k].open, kinds[k].close, JSON_MAX_DEPTH / 2 + 1);
		arena_reset(a);
		assert_int_equal(parse(a, s, strlen(s), &v), JSON_ERR_DEPTH);
		free(s);
	}

	/* Deep enough to overflow a thread stack with a recursive parser:
	 * refused at once, unbalanced or not. */
	struct buf b = {0};
	for (int i = 0; i < 700000; i++)
		buf_add(&b, "[", 1);
	arena_reset(a);
	char msg[128];
	assert_int_equal(json_parse(a, b.p, b.len, &v, msg, sizeof(msg)), JSON_ERR_DEPTH);
	assert_string_equal(msg, "JSON nested too deeply");
	free(b.p);

	/* Depth counts nesting, not the total of containers. */
	b = (struct buf){0};
	buf_str(&b, "[");
	for (int i = 0; i < 500; i++)
		buf_str(&b, i ? ",[[]]" : "[[]]");
	buf_str(&b, "]");
	arena_reset(a);
	assert_int_equal(parse(a, b.p, b.len, &v), JSON_OK);
	assert_int_equal(v->u.array.count, 500);
	free(b.p);
}

/* ---- member and item caps ---- */

static char *object_with(int n)
{
	struct buf b = {0};
	char item[32];
	buf_str(&b, "{");
	for (int i = 0; i < n; i++) {
		snprintf(item, sizeof(item), "%s\"k%d\":%d", i ? "," : "", i, i);
		buf_str(&b, item);
	}
	buf_str(&b, "}");
	return b.p;
}

static char *array_with(int n)
{
	struct buf b = {0};
	buf_str(&b, "[");
	for (int i = 0; i < n; i++)
		buf_str(&b, i ? ",0" : "0");
	buf_str(&b, "]");
	return b.p;
}

static void test_caps(void **state)
{
	struct arena *a = *state;
	struct json_value *v;
	char msg[128];

	char *s = object_with(JSON_MAX_MEMBERS);
	arena_reset(a);
	assert_int_equal(parse(a, s, strlen(s), &v), JSON_OK);
	assert_int_equal(v->u.object.count, JSON_MAX_MEMBERS);
	assert_string_equal(v->u.object.members[JSON_MAX_MEMBERS - 1].key, "k255");
	free(s);

	s = object_with(JSON_MAX_MEMBERS + 1);
	arena_reset(a);
	assert_int_equal(json_parse(a, s, strlen(s), &v, msg, sizeof(msg)), JSON_ERR_TOO_MANY);
	assert_null(v);
	free(s);

	s = array_with(JSON_MAX_ITEMS);
	arena_reset(a);
	assert_int_equal(parse(a, s, strlen(s), &v), JSON_OK);
	assert_int_equal(v->u.array.count, JSON_MAX_ITEMS);
	free(s);

	s = array_with(JSON_MAX_ITEMS + 1);
	arena_reset(a);
	assert_int_equal(parse(a, s, strlen(s), &v), JSON_ERR_TOO_MANY);
	free(s);

	/* The cap is per container: two full arrays side by side are fine. */
	char *one = array_with(JSON_MAX_ITEMS);
	struct buf b = {0};
	buf_str(&b, "{\"x\":");
	buf_str(&b, one);
	buf_str(&b, ",\"y\":");
	buf_str(&b, one);
	buf_str(&b, "}");
	arena_reset(a);
	assert_int_equal(parse(a, b.p, b.len, &v), JSON_OK);
	free(one);
	free(b.p);
}

/* ---- strings and keys keep their bytes ---- */

static void test_nul_in_string(void **state)
{
	struct arena *a = *state;
	struct json_value *v;
	const char *in = "{\"k\\u0000x\":\"ab\\u0000cd\",\"e\":\"\"}";
	assert_int_equal(parse(a, in, strlen(in), &v), JSON_OK);
	assert_int_equal(v->type, JSON_OBJECT);
	assert_int_equal(v->u.object.count, 2);
	const struct json_member *m = &v->u.object.members[0];
	assert_int_equal(m->key_len, 3);
	assert_memory_equal(m->key, "k\0x", 4);
	assert_int_equal(m->value->type, JSON_STRING);
	assert_int_equal(m->value->u.string.len, 5);
	assert_memory_equal(m->value->u.string.ptr, "ab\0cd", 6);
	/* json_get compares whole keys: "k" is not "k\0x". */
	assert_null(json_get(v, "k"));
	const struct json_value *e = json_get(v, "e");
	assert_non_null(e);
	assert_int_equal(e->u.string.len, 0);
	assert_string_equal(e->u.string.ptr, "");
}

static void test_tree_shape(void **state)
{
	struct arena *a = *state;
	struct json_value *v;
	const char *in = "{\"a\":[1,\"x\",null,true,false,{},[]],\"b\":{\"c\":\"\\u00e9\\n\"}}";
	assert_int_equal(parse(a, in, strlen(in), &v), JSON_OK);
	const struct json_value *arr = json_get(v, "a");
	assert_non_null(arr);
	assert_int_equal(arr->type, JSON_ARRAY);
	assert_int_equal(arr->u.array.count, 7);
	static const enum json_type want[] = {JSON_NUMBER, JSON_STRING, JSON_NULL, JSON_BOOL,
	                                      JSON_BOOL,   JSON_OBJECT, JSON_ARRAY};
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(arr->u.array.items[i]->type, want[i]);
	assert_int_equal(arr->u.array.items[3]->u.boolean, 1);
	assert_int_equal(arr->u.array.items[4]->u.boolean, 0);
	assert_int_equal(arr->u.array.items[5]->u.object.count, 0);
	assert_int_equal(arr->u.array.items[6]->u.array.count, 0);
	const struct json_value *c = json_get(json_get(v, "b"), "c");
	assert_non_null(c);
	assert_int_equal(c->u.string.len, 3);
	assert_memory_equal(c->u.string.ptr, "\xc3\xa9\n", 3);
	/* json_get on a non-object, a missing key, NULLs. */
	assert_null(json_get(arr, "a"));
	assert_null(json_get(v, "zz"));
	assert_null(json_get(NULL, "a"));
	assert_null(json_get(v, NULL));
}

/* ---- numbers ---- */

struct number_case {
	const char *text;
	int is_int;
	int64_t i;
};

static const struct number_case number_cases[] = {
    {"0", 1, 0},
    {"-0", 1, 0},
    {"123", 1, 123},
    {"-42", 1, -42},
    {"9223372036854775807", 1, INT64_MAX},
    {"-9223372036854775808", 1, INT64_MIN},
    {"9223372036854775808", 0, 0},
    {"-9223372036854775809", 0, 0},
    {"99999999999999999999999999999999", 0, 0},
    {"1.0", 0, 0},
    {"1.5", 0, 0},
    {"-0.25", 0, 0},
    {"1e5", 0, 0},
    {"1E5", 0, 0},
    {"-2e-3", 0, 0},
    {"1e999999", 0, 0},
    {"1.7976931348623157e309", 0, 0},
};

static void test_numbers(void **state)
{
	struct arena *a = *state;
	for (size_t k = 0; k < sizeof(number_cases) / sizeof(number_cases[0]); k++) {
		const struct number_case *c = &number_cases[k];
		char in[128];
		snprintf(in, sizeof(in), "[%s]", c->text);
		struct json_value *v;
		arena_reset(a);
		assert_int_equal(parse(a, in, strlen(in), &v), JSON_OK);
		const struct json_value *n = v->u.array.items[0];
		assert_int_equal(n->type, JSON_NUMBER);
		assert_int_equal(n->u.number.len, strlen(c->text));
		assert_string_equal(n->u.number.text, c->text);
		if (n->u.number.is_int != c->is_int)
			fail_msg("number %s: is_int %d", c->text, n->u.number.is_int);
		if (c->is_int)
			assert_true(n->u.number.i == c->i);
	}

	/* A number as long as a request body: kept as text, no crash. */
	struct buf b = {0};
	buf_str(&b, "[-");
	for (int i = 0; i < 60000; i++)
		buf_add(&b, "9", 1);
	buf_str(&b, ".5e+99999]");
	struct json_value *v;
	arena_reset(a);
	assert_int_equal(parse(a, b.p, b.len, &v), JSON_OK);
	assert_int_equal(v->u.array.items[0]->u.number.is_int, 0);
	assert_int_equal(v->u.array.items[0]->u.number.len, b.len - 2);
	free(b.p);
}

/* ---- arena exhaustion ---- */

static void test_arena_exhausted(void **state)
{
	(void)state;
	static const char *inputs[] = {
	    "{\"name\":\"a string long enough to pass a tiny arena's cap\"}",
	    "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]",
	    "{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}",
	};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct arena *tiny = arena_new(128);
		assert_non_null(tiny);
		struct json_value *v = (struct json_value *)1;
		char msg[128];
		assert_int_equal(
		    json_parse(tiny, inputs[i], strlen(inputs[i]), &v, msg, sizeof(msg)),
		    JSON_ERR_NOMEM);
		assert_null(v);
		assert_string_equal(msg, "JSON document too large");
		arena_free(tiny);
	}
	/* Every cap from 0 up: either OK or NOMEM, never anything else. */
	const char *in = "{\"a\":[1,\"xy\",{\"b\":null}],\"c\":true}";
	int ok_seen = 0;
	for (size_t cap = 0; cap < 2048; cap += 16) {
		struct arena *ar = arena_new(cap);
		assert_non_null(ar);
		struct json_value *v;
		enum json_status st = parse(ar, in, strlen(in), &v);
		assert_true(st == JSON_OK || st == JSON_ERR_NOMEM);
		if (st == JSON_OK)
			ok_seen = 1;
		else
			assert_false(ok_seen); /* more room never makes it fail */
		arena_free(ar);
	}
	assert_true(ok_seen);
}

/* ---- messages: fixed per status, never the input ---- */

static void test_messages(void **state)
{
	struct arena *a = *state;
	static const struct {
		const char *in;
		enum json_status st;
		const char *msg;
	} cases[] = {
	    {"{\"SECRETMARK\": SECRETMARK}", JSON_ERR_SYNTAX, "body is not valid JSON"},
	    {"[[[[[[[[[\"SECRETMARK\"]]]]]]]]]", JSON_ERR_DEPTH, "JSON nested too deeply"},
	    {"{\"SECRETMARK\":1,\"SECRETMARK\":1}", JSON_ERR_DUPLICATE,
	     "duplicate key in JSON object"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[128];
		struct json_value *v;
		arena_reset(a);
		assert_int_equal(
		    json_parse(a, cases[i].in, strlen(cases[i].in), &v, msg, sizeof(msg)),
		    cases[i].st);
		assert_string_equal(msg, cases[i].msg);
		assert_null(strstr(msg, "SECRETMARK"));
	}
	/* A short buffer is truncated, NUL-terminated; NULL msg is fine. */
	char small[5];
	struct json_value *v;
	arena_reset(a);
	assert_int_equal(json_parse(a, "x", 1, &v, small, sizeof(small)), JSON_ERR_SYNTAX);
	assert_string_equal(small, "body");
	assert_int_equal(json_parse(a, "x", 1, &v, NULL, 0), JSON_ERR_SYNTAX);
	assert_int_equal(json_parse(a, NULL, 0, &v, NULL, 0), JSON_ERR_SYNTAX);
}

/* ---- output ---- */

static void expect_doc(struct json_out *o, const char *want)
{
	const char *buf = NULL;
	size_t len = 0;
	assert_int_equal(json_out_result(o, &buf, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
}

static void test_out_escaping(void **state)
{
	struct arena *a = *state;
	struct json_out *o = json_out_new();
	assert_non_null(o);
	json_out_object_open(o);
	json_out_key(o, "s");
	json_out_string(o, "q\"b\\s/n\nt\tc\x01z\0e", 15);
	json_out_key(o, "u");
	json_out_cstring(o, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	json_out_key(o, "null");
	json_out_cstring(o, NULL);
	json_out_key(o, "min");
	json_out_int(o, INT64_MIN);
	json_out_key(o, "max");
	json_out_int(o, INT64_MAX);
	json_out_key(o, "b");
	json_out_array_open(o);
	json_out_bool(o, 1);
	json_out_bool(o, 0);
	json_out_null(o);
	json_out_array_close(o);
	json_out_key(o, "sql");
	json_out_cstring(o, "'; DROP TABLE x; --");
	json_out_object_close(o);
	const char *want = "{\"s\":\"q\\\"b\\\\s/n\\nt\\tc\\u0001z\\u0000e\","
	                   "\"u\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\",\"null\":null,"
	                   "\"min\":-9223372036854775808,\"max\":9223372036854775807,"
	                   "\"b\":[true,false,null],\"sql\":\"'; DROP TABLE x; --\"}";
	expect_doc(o, want);

	/* What we write, we read back, byte for byte. */
	const char *buf;
	size_t len;
	assert_int_equal(json_out_result(o, &buf, &len), 0);
	struct json_value *v;
	arena_reset(a);
	assert_int_equal(parse(a, buf, len, &v), JSON_OK);
	const struct json_value *s = json_get(v, "s");
	assert_int_equal(s->u.string.len, 15);
	assert_memory_equal(s->u.string.ptr, "q\"b\\s/n\nt\tc\x01z\0e", 15);
	assert_true(json_get(v, "min")->u.number.is_int);
	assert_true(json_get(v, "min")->u.number.i == INT64_MIN);
	json_out_free(o);
}

static void test_out_sticky_error(void **state)
{
	(void)state;
	struct json_out *o = json_out_new();
	const char *buf = (const char *)1;
	size_t len = 1;
	assert_non_null(o);

	/* Invalid UTF-8 spoils the whole document, even if the rest is fine. */
	json_out_object_open(o);
	json_out_key(o, "a");
	json_out_string(o, "\xff\xfe", 2);
	json_out_key(o, "b");
	json_out_int(o, 1);
	json_out_object_close(o);
	assert_int_equal(json_out_result(o, &buf, &len), -1);
	assert_null(buf);
	assert_int_equal(len, 0);

	/* reset clears the error and the text. */
	json_out_reset(o);
	json_out_array_open(o);
	json_out_int(o, 7);
	json_out_array_close(o);
	expect_doc(o, "[7]");

	static const int scenarios = 10;
	for (int sc = 0; sc < scenarios; sc++) {
		json_out_reset(o);
		switch (sc) {
		case 0: /* nothing written */
			break;
		case 1: /* unclosed */
			json_out_object_open(o);
			break;
		case 2: /* close without open */
			json_out_array_close(o);
			break;
		case 3: /* a non-string key */
			json_out_object_open(o);
			json_out_int(o, 1);
			json_out_int(o, 2);
			json_out_object_close(o);
			break;
		case 4: /* a second root value */
			json_out_int(o, 1);
			json_out_int(o, 2);
			break;
		case 5: /* NULL key */
			json_out_object_open(o);
			json_out_key(o, NULL);
			json_out_int(o, 2);
			json_out_object_close(o);
			break;
		case 6: /* mismatched close */
			json_out_object_open(o);
			json_out_array_close(o);
			break;
		case 7: /* a key without its value */
			json_out_object_open(o);
			json_out_key(o, "a");
			json_out_object_close(o);
			break;
		case 8: /* a key in an array */
			json_out_array_open(o);
			json_out_key(o, "a");
			json_out_int(o, 1);
			json_out_array_close(o);
			break;
		case 9: /* two keys in a row */
			json_out_object_open(o);
			json_out_key(o, "a");
			json_out_key(o, "b");
			json_out_int(o, 1);
			json_out_object_close(o);
			break;
		}
		if (json_out_result(o, &buf, &len) != -1)
			fail_msg("scenario %d accepted", sc);
	}

	/* Over yajl_gen's own nesting limit: an error, not a crash. */
	json_out_reset(o);
	for (int i = 0; i < 300; i++)
		json_out_array_open(o);
	for (int i = 0; i < 300; i++)
		json_out_array_close(o);
	assert_int_equal(json_out_result(o, &buf, &len), -1);

	json_out_reset(o);
	json_out_cstring(o, NULL);
	expect_doc(o, "null");
	json_out_free(o);
	json_out_free(NULL);
}

/* Growth past the first buffer, every escape yajl_gen made, and a reset
 * after a large document. */
static void test_out_growth(void **state)
{
	struct arena *a = *state;
	struct json_out *o = json_out_new();
	assert_non_null(o);
	json_out_object_open(o);
	json_out_key(o, "esc");
	json_out_string(o, "\b\f\r\x1f\x7f/\xe2\x82\xac", 9);
	json_out_key(o, "items");
	json_out_array_open(o);
	for (int i = 0; i < 900; i++)
		json_out_cstring(o, "0123456789abcdefghij");
	json_out_array_close(o);
	json_out_object_close(o);
	const char *buf;
	size_t len;
	assert_int_equal(json_out_result(o, &buf, &len), 0);
	const char *head = "{\"esc\":\"\\b\\f\\r\\u001f\x7f/\xe2\x82\xac\",\"items\":[\"0123";
	assert_memory_equal(buf, head, strlen(head));
	assert_int_equal(len, strlen(head) - 5 + 900 * 23 - 1 + 2);
	assert_int_equal(buf[len], '\0');
	struct json_value *v;
	arena_reset(a);
	assert_int_equal(parse(a, buf, len, &v), JSON_OK);
	assert_int_equal(json_get(v, "items")->u.array.count, 900);

	json_out_reset(o);
	json_out_array_open(o);
	json_out_int(o, -1);
	json_out_int(o, 0);
	json_out_array_close(o);
	expect_doc(o, "[-1,0]");
	json_out_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_parse_table, setup_arena, teardown_arena),
	    cmocka_unit_test_setup_teardown(test_depth_limit, setup_arena, teardown_arena),
	    cmocka_unit_test_setup_teardown(test_caps, setup_arena, teardown_arena),
	    cmocka_unit_test_setup_teardown(test_nul_in_string, setup_arena, teardown_arena),
	    cmocka_unit_test_setup_teardown(test_tree_shape, setup_arena, teardown_arena),
	    cmocka_unit_test_setup_teardown(test_numbers, setup_arena, teardown_arena),
	    cmocka_unit_test(test_arena_exhausted),
	    cmocka_unit_test_setup_teardown(test_messages, setup_arena, teardown_arena),
	    cmocka_unit_test_setup_teardown(test_out_escaping, setup_arena, teardown_arena),
	    cmocka_unit_test(test_out_sticky_error),
	    cmocka_unit_test_setup_teardown(test_out_growth, setup_arena, teardown_arena),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
