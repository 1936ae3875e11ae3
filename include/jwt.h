/*
 * jwt.h - bearer token verification (docs/api.md, "Who may call"), on our own code:
 * Debian's libjwt 1.10.2 is unsafe as it stands (docs/design.md, "libjwt (not used)").
 *
 * The verifier holds one pinned algorithm and key. A token whose header
 * names any other alg (including "none" and other spellings of the same
 * name) is refused before any signature work. exp is required and must be a
 * JSON integer; nbf, iat are checked when present (an iat later than now
 * plus the leeway is refused); the lifetime, exp - iat (exp - now without
 * iat), must not pass the configured maximum; iss and aud must match when
 * configured (aud may be a string or an array of strings); sub, which names
 * the actor in logs and the audit trail, must be a string that is not empty
 * or all spaces.
 */
#ifndef MAILSRV_JWT_H
#define MAILSRV_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mailsrv_limits.h"

struct arena;
struct sig_key;

enum jwt_result {
	JWT_VALID = 0,
	JWT_MALFORMED, /* not three base64url parts / not JSON objects */
	JWT_BAD_ALG,   /* header alg differs from the pinned one */
	JWT_BAD_SIGNATURE,
	JWT_EXPIRED,       /* exp missing, not an integer, or in the past */
	JWT_NOT_YET_VALID, /* nbf in the future */
	JWT_BAD_ISSUER,
	JWT_BAD_AUDIENCE,
	JWT_BAD_SUBJECT,      /* sub missing, not a string, empty or all spaces */
	JWT_ISSUED_IN_FUTURE, /* iat later than now + leeway */
	JWT_TOO_LONG_LIVED,   /* exp - iat (or exp - now) over max_ttl_s */
};

struct jwt_policy {
	const struct sig_key *key; /* its alg is the pinned alg */
	const char *issuer;        /* NULL: iss not required */
	const char *audience;      /* NULL: aud not required */
	long leeway_s;             /* clock skew allowed for exp/nbf/iat, e.g. 30 */
	long max_ttl_s;            /* longest lifetime accepted; 0: no maximum */
};

struct jwt_identity {
	const char *sub;      /* in the arena; "" when absent */
	int is_administrator; /* roles array contains "administrator" */
};

/* Verify a compact JWS of len bytes at time now. The identity's strings
 * live in the arena. */
enum jwt_result jwt_verify(const struct jwt_policy *p, struct arena *a, const char *token,
                           size_t len, time_t now, struct jwt_identity *id);
/*
 * A worker thread's memory of the tokens it verified lately. A console sends
 * the same token on every request, and verifying it again (the signature and
 * two JSON parses) was a third of the service's own instructions for a GET
 * by id (docs/performance.md). A hit needs the very same bytes, compared in
 * constant time, under the same policy; what depends on the clock (exp, nbf)
 * is checked again on every hit, with the same leeway. Only valid tokens are
 * remembered, at most JWT_CACHE_ENTRIES, each up to JWT_CACHE_TOKEN_MAX_BYTES
 * (longer ones are verified every time).
 *
 * One cache belongs to one thread and is used with one policy, which must
 * not change while the cache holds entries (the service's is read-only once
 * the workers start); another policy pointer empties it. All zero bytes is
 * an empty cache; jwt_cache_clear wipes it.
 */
struct jwt_cache_entry {
	size_t len; /* of token; 0: empty */
	int64_t exp;
	int64_t nbf;
	int has_nbf;
	int is_administrator;
	char token[JWT_CACHE_TOKEN_MAX_BYTES];
	char sub[JWT_CACHE_SUB_MAX_BYTES + 1];
};

struct jwt_cache {
	const struct jwt_policy *policy;
	unsigned next; /* the entry replaced next */
	struct jwt_cache_entry entries[JWT_CACHE_ENTRIES];
};

/* jwt_verify, answered from the cache when it can be; remembers what it
 * verifies. The identity's strings live in the arena, as with jwt_verify. */
enum jwt_result jwt_verify_cached(const struct jwt_policy *p, struct jwt_cache *cache,
                                  struct arena *a, const char *token, size_t len, time_t now,
                                  struct jwt_identity *id);
/* Forget (and wipe) every entry. */
void jwt_cache_clear(struct jwt_cache *cache);

/* Short English reason for logs (never the token). */
const char *jwt_result_str(enum jwt_result r);

/* Make a token (for the token tool and tests): sub, roles (comma list),
 * lifetime ttl_s from now, optional iss/aud (NULL to omit). Signed with
 * key's alg; the NUL-terminated token goes into the arena. */
char *jwt_issue(const struct sig_key *key, struct arena *a, const char *sub, const char *roles_csv,
                long ttl_s, time_t now, const char *issuer, const char *audience);

#endif
