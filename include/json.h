/*
 * json.h - JSON in and out, the only interface to yajl.
 *
 * Input: json_parse() runs yajl's streaming parser (never yajl_tree_parse,
 * see docs/design.md, "yajl 2.1.0") with comments off and UTF-8 validation on, counts
 * depth in the start callbacks, refuses duplicate keys and caps members and
 * items. The tree lives in the caller's arena. Strings keep their length and
 * may contain NUL (from \u0000): validators decide about those.
 *
 * Output: struct json_out writes compact JSON (what yajl_gen wrote, byte for
 * byte, without its cost) into a bounded buffer with a sticky error, so a
 * handler writes a whole document and checks once at the end.
 */
#ifndef MAILSRV_JSON_H
#define MAILSRV_JSON_H

#include <stddef.h>
#include <stdint.h>

struct arena;

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value;

struct json_member {
	const char *key; /* NUL-terminated copy; key_len excludes the NUL */
	size_t key_len;
	struct json_value *value;
};

struct json_value {
	enum json_type type;
	union {
		int boolean;
		struct {
			const char *text; /* the number as written */
			size_t len;
			int is_int; /* an integer literal that fits int64 */
			int64_t i;
		} number;
		struct {
			const char *ptr; /* NUL-terminated copy, may hold NULs */
			size_t len;
		} string;
		struct {
			struct json_value **items;
			size_t count;
		} array;
		struct {
			struct json_member *members;
			size_t count;
		} object;
	} u;
};

enum json_status {
	JSON_OK = 0,
	JSON_ERR_SYNTAX,    /* not JSON, bad UTF-8, trailing garbage, empty */
	JSON_ERR_DEPTH,     /* nested deeper than JSON_MAX_DEPTH */
	JSON_ERR_DUPLICATE, /* a key repeated in one object */
	JSON_ERR_TOO_MANY,  /* more than JSON_MAX_MEMBERS / JSON_MAX_ITEMS */
	JSON_ERR_NOMEM,     /* the arena is exhausted */
};

/*
 * Parse len bytes. On JSON_OK *out is the root (any type). On failure a
 * short, client-safe description is written to msg (never the input).
 */
enum json_status json_parse(struct arena *a, const char *buf, size_t len, struct json_value **out,
                            char *msg, size_t msglen);

/* Member lookup by NUL-terminated key; NULL when absent or not an object. */
const struct json_value *json_get(const struct json_value *obj, const char *key);

/* ---- output ---- */
struct json_out;

struct json_out *json_out_new(void);
void json_out_free(struct json_out *o);
/* Discard the document and start again (keeps a small buffer). */
void json_out_reset(struct json_out *o);
void json_out_object_open(struct json_out *o);
void json_out_object_close(struct json_out *o);
void json_out_array_open(struct json_out *o);
void json_out_array_close(struct json_out *o);
void json_out_key(struct json_out *o, const char *key);
void json_out_string(struct json_out *o, const char *s, size_t len);
void json_out_cstring(struct json_out *o, const char *s); /* NULL -> null */
void json_out_int(struct json_out *o, int64_t v);
void json_out_bool(struct json_out *o, int v);
void json_out_null(struct json_out *o);
/* 0 and the document when every call succeeded, -1 otherwise. The buffer
 * stays owned by o until the next reset/free. */
int json_out_result(struct json_out *o, const char **buf, size_t *len);

#endif
