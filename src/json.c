/*
 * json.c - JSON in and out (see json.h); the only file that includes yajl,
 * which parses; documents are written by our own small writer (below).
 *
 * Parsing uses yajl's streaming API, never yajl_tree_parse (docs/design.md, "yajl 2.1.0":
 * it accepts comments, keeps duplicate keys, cuts strings at \u0000 and
 * recurses without a depth limit). The callbacks below build the tree in the
 * caller's arena. Containers under construction keep their children on one
 * malloc'd scratch stack (the arena cannot grow an allocation); when a
 * container closes, its children are copied into one arena array and popped.
 * The scratch stack and the yajl handle belong to one json_parse() call and
 * are freed before it returns, whatever happened. yajl's own memory (its
 * lexer decodes a string with escapes, e.g. a password, into a buffer of its
 * own) comes from wiping_alloc: wiped before it is freed, like the arena.
 */
#include "json.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "arena.h"
#include "crypto.h"
#include "mailsrv_limits.h"
#include "validate.h"

/* One open container: its node and where its children start on the stack. */
struct frame {
	struct json_value *node;
	size_t base;
};

struct parser {
	struct arena *arena;
	enum json_status status; /* why a callback stopped the parse */
	struct json_value *root;
	struct frame frames[JSON_MAX_DEPTH];
	size_t depth;
	/* Children of the open containers. For objects, key/key_len are set by
	 * the key callback and value by the value that follows; for arrays only
	 * value is used. */
	struct json_member *stack;
	size_t count;
	size_t cap;
};

/* The scratch stack never holds more than every open container at its cap,
 * so it is bounded whatever the input. */
#define STACK_MAX                                                                                  \
	((size_t)JSON_MAX_DEPTH *                                                                  \
	 (JSON_MAX_ITEMS > JSON_MAX_MEMBERS ? JSON_MAX_ITEMS : JSON_MAX_MEMBERS))

static int fail(struct parser *p, enum json_status st)
{
	p->status = st;
	return 0; /* tells yajl to stop: yajl_status_client_canceled */
}

static int stack_push(struct parser *p, struct json_member m)
{
	if (p->count == p->cap) {
		size_t ncap = p->cap == 0 ? 64 : p->cap * 2;
		if (ncap > STACK_MAX)
			ncap = STACK_MAX;
		if (ncap <= p->count)
			return -1; /* cannot happen: the caps below stop first */
		struct json_member *n = realloc(p->stack, ncap * sizeof(*n));
		if (n == NULL)
			return -1;
		p->stack = n;
		p->cap = ncap;
	}
	p->stack[p->count++] = m;
	return 0;
}

/*
 * Hang a finished (or, for containers, just opened) value on its parent:
 * the root, the pending key of an object, or a new item of an array.
 */
static int attach(struct parser *p, struct json_value *v)
{
	if (p->depth == 0) {
		p->root = v;
		return 1;
	}
	struct frame *f = &p->frames[p->depth - 1];
	if (f->node->type == JSON_OBJECT) {
		/* yajl guarantees a key came first: the top entry waits for it. */
		p->stack[p->count - 1].value = v;
		return 1;
	}
	if (p->count - f->base >= JSON_MAX_ITEMS)
		return fail(p, JSON_ERR_TOO_MANY);
	struct json_member m = {NULL, 0, v};
	if (stack_push(p, m) != 0)
		return fail(p, JSON_ERR_NOMEM);
	return 1;
}

static struct json_value *node_new(struct parser *p, enum json_type t)
{
	struct json_value *v = arena_calloc(p->arena, 1, sizeof(*v));
	if (v != NULL)
		v->type = t;
	return v;
}

static int cb_null(void *ctx)
{
	struct parser *p = ctx;
	struct json_value *v = node_new(p, JSON_NULL);
	if (v == NULL)
		return fail(p, JSON_ERR_NOMEM);
	return attach(p, v);
}

static int cb_boolean(void *ctx, int b)
{
	struct parser *p = ctx;
	struct json_value *v = node_new(p, JSON_BOOL);
	if (v == NULL)
		return fail(p, JSON_ERR_NOMEM);
	v->u.boolean = b ? 1 : 0;
	return attach(p, v);
}

/*
 * Numbers keep their text; is_int only for a literal without fraction or
 * exponent that fits int64 (strtoll reports ERANGE for the others, which
 * then stay text only).
 */
static int cb_number(void *ctx, const char *s, size_t len)
{
	struct parser *p = ctx;
	struct json_value *v = node_new(p, JSON_NUMBER);
	char *text = arena_strndup(p->arena, s, len);
	if (v == NULL || text == NULL)
		return fail(p, JSON_ERR_NOMEM);
	v->u.number.text = text;
	v->u.number.len = len;
	if (memchr(text, '.', len) == NULL && memchr(text, 'e', len) == NULL &&
	    memchr(text, 'E', len) == NULL) {
		char *end = NULL;
		errno = 0;
		long long i = strtoll(text, &end, 10);
		if (errno == 0 && end == text + len && len > 0) {
			v->u.number.is_int = 1;
			v->u.number.i = (int64_t)i;
		}
	}
	return attach(p, v);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
	struct parser *p = ctx;
	struct json_value *v = node_new(p, JSON_STRING);
	char *copy = arena_strndup(p->arena, (const char *)s, len);
	if (v == NULL || copy == NULL)
		return fail(p, JSON_ERR_NOMEM);
	v->u.string.ptr = copy;
	v->u.string.len = len;
	return attach(p, v);
}

static int open_container(struct parser *p, enum json_type t)
{
	/* Checked before anything is allocated: a deep input costs nothing. */
	if (p->depth >= JSON_MAX_DEPTH)
		return fail(p, JSON_ERR_DEPTH);
	struct json_value *v = node_new(p, t);
	if (v == NULL)
		return fail(p, JSON_ERR_NOMEM);
	if (!attach(p, v))
		return 0;
	p->frames[p->depth].node = v;
	p->frames[p->depth].base = p->count;
	p->depth++;
	return 1;
}

static int cb_start_map(void *ctx)
{
	return open_container(ctx, JSON_OBJECT);
}

static int cb_start_array(void *ctx)
{
	return open_container(ctx, JSON_ARRAY);
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
	struct parser *p = ctx;
	struct frame *f = &p->frames[p->depth - 1];
	if (p->count - f->base >= JSON_MAX_MEMBERS)
		return fail(p, JSON_ERR_TOO_MANY);
	/* Quadratic, bounded by JSON_MAX_MEMBERS. Compared with the length:
	 * keys may hold NUL from \u0000. */
	for (size_t i = f->base; i < p->count; i++) {
		if (p->stack[i].key_len == len && memcmp(p->stack[i].key, key, len) == 0)
			return fail(p, JSON_ERR_DUPLICATE);
	}
	char *copy = arena_strndup(p->arena, (const char *)key, len);
	if (copy == NULL)
		return fail(p, JSON_ERR_NOMEM);
	struct json_member m = {copy, len, NULL};
	if (stack_push(p, m) != 0)
		return fail(p, JSON_ERR_NOMEM);
	return 1;
}

/* Move the closing container's children from the stack into the arena. */
static int close_container(struct parser *p)
{
	struct frame *f = &p->frames[p->depth - 1];
	size_t n = p->count - f->base;
	/* The stack is still NULL when nothing was ever pushed. */
	struct json_member *kids = n > 0 ? p->stack + f->base : NULL;
	if (f->node->type == JSON_OBJECT) {
		struct json_member *m = NULL;
		if (n > 0) {
			m = arena_calloc(p->arena, n, sizeof(*m));
			if (m == NULL)
				return fail(p, JSON_ERR_NOMEM);
			memcpy(m, kids, n * sizeof(*m));
		}
		f->node->u.object.members = m;
		f->node->u.object.count = n;
	} else {
		struct json_value **items = NULL;
		if (n > 0) {
			items = arena_calloc(p->arena, n, sizeof(*items));
			if (items == NULL)
				return fail(p, JSON_ERR_NOMEM);
			for (size_t i = 0; i < n; i++)
				items[i] = kids[i].value;
		}
		f->node->u.array.items = items;
		f->node->u.array.count = n;
	}
	p->count = f->base;
	p->depth--;
	return 1;
}

static int cb_end_map(void *ctx)
{
	return close_container(ctx);
}

static int cb_end_array(void *ctx)
{
	return close_container(ctx);
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_integer = NULL,
    .yajl_double = NULL,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* Fixed, client-safe messages: never a byte of the input. */
static const char *status_msg(enum json_status st)
{
	switch (st) {
	case JSON_OK:
		return "ok";
	case JSON_ERR_SYNTAX:
		return "body is not valid JSON";
	case JSON_ERR_DEPTH:
		return "JSON nested too deeply";
	case JSON_ERR_DUPLICATE:
		return "duplicate key in JSON object";
	case JSON_ERR_TOO_MANY:
		return "too many members or items in JSON";
	case JSON_ERR_NOMEM:
		return "JSON document too large";
	}
	return "body is not valid JSON";
}

/* The 16-bit value of 4 hex digits at s, or -1. */
static long hex4(const char *s)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int d = text_hex_digit((unsigned char)s[i]);
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* ---- yajl's allocator: every block wiped before it is freed ----
 * Each block carries its size in front (a max_align_t-sized header keeps the
 * alignment malloc gives), so free and realloc know how much to wipe. */

union block_head {
	size_t size;
	max_align_t align;
};

static void *wiping_malloc(void *ctx, size_t n)
{
	(void)ctx;
	if (n > SIZE_MAX - sizeof(union block_head))
		return NULL;
	union block_head *h = malloc(sizeof(*h) + n);
	if (h == NULL)
		return NULL;
	h->size = n;
	return h + 1;
}

static void wiping_free(void *ctx, void *p)
{
	(void)ctx;
	if (p == NULL)
		return;
	union block_head *h = (union block_head *)p - 1;
	crypto_wipe(p, h->size);
	free(h);
}

/* Never realloc in place: the old block is wiped and freed. */
static void *wiping_realloc(void *ctx, void *p, size_t n)
{
	if (p == NULL)
		return wiping_malloc(ctx, n);
	void *q = wiping_malloc(ctx, n);
	if (q == NULL)
		return NULL;
	size_t old = ((union block_head *)p - 1)->size;
	memcpy(q, p, old < n ? old : n);
	wiping_free(ctx, p);
	return q;
}

static yajl_alloc_funcs wiping_alloc = {wiping_malloc, wiping_realloc, wiping_free, NULL};

/*
 * 1 unless a string holds a \u escape of an unpaired surrogate. yajl turns
 * those into '?' silently; RFC 8259 section 8.2 leaves them undefined, and
 * we refuse them rather than store text the client did not send. Syntax
 * errors are left to yajl.
 */
static int surrogates_paired(const char *s, size_t len)
{
	int in_string = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"') {
			in_string = !in_string;
		} else if (in_string && s[i] == '\\' && i + 1 < len) {
			if (s[i + 1] != 'u' || len - i < 6) {
				i++; /* skip the escaped character */
				continue;
			}
			long v = hex4(s + i + 2);
			i += 5;
			if (v >= 0xDC00 && v <= 0xDFFF)
				return 0; /* a low surrogate first */
			if (v >= 0xD800 && v <= 0xDBFF) {
				long lo = (len - i > 6 && s[i + 1] == '\\' && s[i + 2] == 'u')
				              ? hex4(s + i + 3)
				              : -1;
				if (lo < 0xDC00 || lo > 0xDFFF)
					return 0;
				i += 6;
			}
		}
	}
	return 1;
}

enum json_status json_parse(struct arena *a, const char *buf, size_t len, struct json_value **out,
                            char *msg, size_t msglen)
{
	struct parser p;
	memset(&p, 0, sizeof(p));
	p.arena = a;
	p.status = JSON_OK;
	enum json_status st = JSON_ERR_SYNTAX;
	yajl_handle h = NULL;

	if (out != NULL)
		*out = NULL;
	if (a == NULL || out == NULL || (buf == NULL && len > 0))
		goto out;
	if (!utf8_valid(buf, len) || !surrogates_paired(buf, len))
		goto out; /* RFC 8259 section 8.1: JSON text is UTF-8 */

	/* yajl's own state lives only for this call, and is wiped when freed. */
	h = yajl_alloc(&callbacks, &wiping_alloc, &p);
	if (h == NULL) {
		st = JSON_ERR_NOMEM;
		goto out;
	}
	/* The defaults already are these; set them so the policy is visible. */
	yajl_config(h, yajl_allow_comments, 0);
	yajl_config(h, yajl_dont_validate_strings, 0);
	yajl_config(h, yajl_allow_trailing_garbage, 0);
	yajl_config(h, yajl_allow_multiple_values, 0);
	yajl_config(h, yajl_allow_partial_values, 0);

	yajl_status ys = yajl_status_ok;
	if (len > 0)
		ys = yajl_parse(h, (const unsigned char *)buf, len);
	if (ys == yajl_status_ok)
		ys = yajl_complete_parse(h);
	if (ys != yajl_status_ok) {
		st = p.status != JSON_OK ? p.status : JSON_ERR_SYNTAX;
		goto out;
	}
	if (p.root == NULL || p.depth != 0) {
		st = JSON_ERR_SYNTAX; /* empty or whitespace only */
		goto out;
	}
	*out = p.root;
	st = JSON_OK;
out:
	if (h != NULL)
		yajl_free(h);
	free(p.stack);
	if (msg != NULL && msglen > 0) {
		const char *m = status_msg(st);
		size_t n = strlen(m);
		if (n >= msglen)
			n = msglen - 1;
		memcpy(msg, m, n);
		msg[n] = '\0';
	}
	return st;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
	if (obj == NULL || key == NULL || obj->type != JSON_OBJECT)
		return NULL;
	size_t len = strlen(key);
	for (size_t i = 0; i < obj->u.object.count; i++) {
		const struct json_member *m = &obj->u.object.members[i];
		if (m->key_len == len && memcmp(m->key, key, len) == 0)
			return m->value;
	}
	return NULL;
}

/* ---- output ----
 *
 * Our own writer into one growing buffer, not yajl_gen, which cost most of a
 * listing's instructions (docs/performance.md). It writes what yajl_gen
 * wrote: no whitespace; '"' and '\' escaped, \b \f \n \r \t by name, other
 * control characters as \u00xx; strings strict UTF-8, so we never write
 * what we would refuse to read. */

/* Depth and buffer sizes: JSON_OUT_* in mailsrv_limits.h. */

/* What each open container expects next (keys and values alternate in an
 * object). */
enum out_level { LEVEL_ARRAY, LEVEL_OBJECT_KEY, LEVEL_OBJECT_VALUE };

struct json_out {
	char *buf; /* NUL-terminated text, len bytes */
	size_t len, cap;
	int error;    /* sticky: any failed call spoils the document */
	int started;  /* something was written */
	int complete; /* the root value is complete: nothing may follow */
	size_t depth; /* open containers */
	unsigned char levels[JSON_OUT_MAX_DEPTH];
	unsigned char nonempty[JSON_OUT_MAX_DEPTH]; /* a member or item was written */
};

struct json_out *json_out_new(void)
{
	return calloc(1, sizeof(struct json_out));
}

void json_out_free(struct json_out *o)
{
	if (o == NULL)
		return;
	free(o->buf);
	free(o);
}

void json_out_reset(struct json_out *o)
{
	if (o == NULL)
		return;
	if (o->cap > JSON_OUT_KEEP_BYTES) {
		free(o->buf);
		o->buf = NULL;
		o->cap = 0;
	}
	o->len = 0;
	o->error = 0;
	o->depth = 0;
	o->started = 0;
	o->complete = 0;
}

static int grow(struct json_out *o, size_t n);

/* Room for n more bytes and the NUL; 0, or -1 (and the sticky error) past
 * JSON_OUT_MAX_BYTES or without memory. */
static inline int reserve(struct json_out *o, size_t n)
{
	return o->cap - o->len > n ? 0 : grow(o, n);
}

static int grow(struct json_out *o, size_t n)
{
	if (n >= JSON_OUT_MAX_BYTES - o->len) {
		o->error = 1;
		return -1;
	}
	size_t cap = o->cap ? o->cap : JSON_OUT_FIRST_BYTES;
	while (cap - o->len <= n)
		cap *= 2;
	if (cap > JSON_OUT_MAX_BYTES)
		cap = JSON_OUT_MAX_BYTES;
	char *b = realloc(o->buf, cap);
	if (b == NULL) {
		o->error = 1;
		return -1;
	}
	o->buf = b;
	o->cap = cap;
	return 0;
}

/* Append n bytes (room reserved by the caller). */
static void put(struct json_out *o, const char *s, size_t n)
{
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void put_char(struct json_out *o, char c)
{
	o->buf[o->len++] = c;
	o->buf[o->len] = '\0';
}

/* A value may come: at the root (once), in an array (after a comma when it
 * is not the first), or after a key. Reserves room for n bytes and the
 * comma. */
static int value_begin(struct json_out *o, size_t n)
{
	o->started = 1;
	if (o->error)
		return 0;
	if (o->depth == 0) {
		if (o->complete) {
			o->error = 1;
			return 0;
		}
	} else if (o->levels[o->depth - 1] == LEVEL_OBJECT_KEY) {
		o->error = 1;
		return 0;
	}
	if (reserve(o, n + 1) != 0)
		return 0;
	if (o->depth > 0 && o->levels[o->depth - 1] == LEVEL_ARRAY) {
		if (o->nonempty[o->depth - 1])
			put_char(o, ',');
		o->nonempty[o->depth - 1] = 1;
	}
	return 1;
}

/* A value is complete: its object, if any, now wants a key; at the root,
 * the document is complete. */
static void value_done(struct json_out *o)
{
	if (o->depth == 0)
		o->complete = 1;
	else if (o->levels[o->depth - 1] == LEVEL_OBJECT_VALUE)
		o->levels[o->depth - 1] = LEVEL_OBJECT_KEY;
}

static void open_level(struct json_out *o, enum out_level l, char c)
{
	if (o->depth >= JSON_OUT_MAX_DEPTH) {
		o->error = 1;
		return;
	}
	put_char(o, c);
	o->levels[o->depth] = (unsigned char)l;
	o->nonempty[o->depth] = 0;
	o->depth++;
}

static int close_allowed(struct json_out *o, enum out_level want)
{
	o->started = 1;
	if (o->error)
		return 0;
	if (o->depth == 0 || o->levels[o->depth - 1] != want) {
		o->error = 1;
		return 0;
	}
	return reserve(o, 1) == 0;
}

/* The length of the prefix of s that is printable ASCII other than '"' and
 * '\': it is written as it is, and is valid UTF-8 by itself (so only the
 * rest needs utf8_valid, from a character boundary). Keys and most values
 * are all of it. */
static size_t plain_prefix(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
			break;
		i++;
	}
	return i;
}

/* The quoted, escaped string; s[0..plain) is plain_prefix's, the rest was
 * checked as strict UTF-8 by the caller. */
static void put_string(struct json_out *o, const char *s, size_t len, size_t plain)
{
	static const char hex[] = "0123456789abcdef";
	/* The common case in one reservation: nothing to escape. */
	if (reserve(o, len + 2) != 0)
		return;
	put_char(o, '"');
	put(o, s, plain);
	size_t i = plain;
	while (i < len) {
		size_t run = i;
		while (run < len && (unsigned char)s[run] >= 0x20 && s[run] != '"' &&
		       s[run] != '\\')
			run++;
		if (run > i) {
			if (reserve(o, run - i + 1) != 0)
				return;
			put(o, s + i, run - i);
			i = run;
			if (i == len)
				break;
		}
		unsigned char c = (unsigned char)s[i++];
		char esc[6] = {'\\', 0, 0, 0, 0, 0};
		size_t n = 2;
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		if (reserve(o, n + 1) != 0)
			return;
		put(o, esc, n);
	}
	if (reserve(o, 1) != 0)
		return;
	put_char(o, '"');
}

void json_out_object_open(struct json_out *o)
{
	if (o == NULL || !value_begin(o, 1))
		return;
	open_level(o, LEVEL_OBJECT_KEY, '{');
}

void json_out_object_close(struct json_out *o)
{
	if (o == NULL || !close_allowed(o, LEVEL_OBJECT_KEY))
		return;
	put_char(o, '}');
	o->depth--;
	value_done(o);
}

void json_out_array_open(struct json_out *o)
{
	if (o == NULL || !value_begin(o, 1))
		return;
	open_level(o, LEVEL_ARRAY, '[');
}

void json_out_array_close(struct json_out *o)
{
	if (o == NULL || !close_allowed(o, LEVEL_ARRAY))
		return;
	put_char(o, ']');
	o->depth--;
	value_done(o);
}

void json_out_key(struct json_out *o, const char *key)
{
	if (o == NULL)
		return;
	o->started = 1;
	if (o->error)
		return;
	if (key == NULL || o->depth == 0 || o->levels[o->depth - 1] != LEVEL_OBJECT_KEY) {
		o->error = 1;
		return;
	}
	size_t len = strlen(key);
	size_t plain = plain_prefix(key, len);
	if ((plain < len && !utf8_valid(key + plain, len - plain)) || reserve(o, len + 4) != 0) {
		o->error = 1;
		return;
	}
	if (o->nonempty[o->depth - 1])
		put_char(o, ',');
	o->nonempty[o->depth - 1] = 1;
	put_string(o, key, len, plain);
	if (o->error || reserve(o, 1) != 0)
		return;
	put_char(o, ':');
	o->levels[o->depth - 1] = LEVEL_OBJECT_VALUE;
}

void json_out_string(struct json_out *o, const char *s, size_t len)
{
	if (o == NULL)
		return;
	if (s == NULL && len > 0) {
		o->started = 1;
		o->error = 1;
		return;
	}
	if (s == NULL)
		s = "";
	/* Strictly: overlong forms and surrogates are refused here, as the
	 * parser refuses them. */
	size_t plain = plain_prefix(s, len);
	if (plain < len && !utf8_valid(s + plain, len - plain)) {
		o->started = 1;
		o->error = 1;
		return;
	}
	if (!value_begin(o, len + 2))
		return;
	put_string(o, s, len, plain);
	value_done(o);
}

void json_out_cstring(struct json_out *o, const char *s)
{
	if (o == NULL)
		return;
	if (s == NULL)
		json_out_null(o);
	else
		json_out_string(o, s, strlen(s));
}

void json_out_int(struct json_out *o, int64_t v)
{
	char digits[24];
	char *p = digits + sizeof(digits);
	/* Magnitude as unsigned, so INT64_MIN needs no special case. */
	uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		*--p = (char)('0' + m % 10);
		m /= 10;
	} while (m > 0);
	if (v < 0)
		*--p = '-';
	size_t n = (size_t)(digits + sizeof(digits) - p);
	if (o == NULL || !value_begin(o, n))
		return;
	put(o, p, n);
	value_done(o);
}

void json_out_bool(struct json_out *o, int v)
{
	if (o == NULL || !value_begin(o, 5))
		return;
	if (v)
		put(o, "true", 4);
	else
		put(o, "false", 5);
	value_done(o);
}

void json_out_null(struct json_out *o)
{
	if (o == NULL || !value_begin(o, 4))
		return;
	put(o, "null", 4);
	value_done(o);
}

int json_out_result(struct json_out *o, const char **buf, size_t *len)
{
	if (o == NULL || buf == NULL || len == NULL)
		return -1;
	*buf = NULL;
	*len = 0;
	if (o->error || o->depth != 0 || !o->started || o->buf == NULL)
		return -1;
	*buf = o->buf;
	*len = o->len;
	return 0;
}
