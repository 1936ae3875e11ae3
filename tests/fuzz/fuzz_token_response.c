/*
 * fuzz_token_response.c - libFuzzer target for the token endpoint's answer
 * parser (oauth2_parse_token_response: json_parse, then the RFC 6749 5.1 /
 * 5.2 reading). Besides "no crash, no leak, no UB" it checks properties:
 *   - a token answer's tokens are 1..SECRET_MAX_BYTES bytes without control
 *     characters, and expires_in is -1 or 0..OAUTH2_EXPIRES_IN_MAX_S;
 *   - an error answer's code passes oauth2_error_code_ok, and its
 *     description is valid, control-free UTF-8 of at most
 *     OAUTH2_ERROR_DESCRIPTION_MAX_CHARS characters;
 *   - an invalid answer always says why.
 * Build and run with tests/fuzz/run_brief.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "mailsrv_limits.h"
#include "oauth2.h"
#include "validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct arena *arena;

static void check_description(const char *d)
{
	if (d == NULL)
		return;
	size_t len = strlen(d);
	if (text_has_control_chars(d, len) ||
	    utf8_count(d, len) > OAUTH2_ERROR_DESCRIPTION_MAX_CHARS)
		abort();
	/* valid UTF-8: cleaning it again changes nothing */
	const char *again = oauth2_clean_text(arena, d, len, OAUTH2_ERROR_DESCRIPTION_MAX_CHARS);
	if (again == NULL || strcmp(again, d) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (arena == NULL && (arena = arena_new(MAX_ARENA_BYTES)) == NULL)
		abort();
	arena_reset(arena);
	struct oauth2_token_response r;
	const char *why = NULL;
	switch (oauth2_parse_token_response(arena, (const char *)data, size, &r, &why)) {
	case OAUTH2_ANSWER_TOKENS:
		if (r.access_token == NULL || r.access_token_len == 0 ||
		    r.access_token_len > SECRET_MAX_BYTES ||
		    text_has_control_chars(r.access_token, r.access_token_len))
			abort();
		if (r.refresh_token != NULL &&
		    (r.refresh_token_len == 0 || r.refresh_token_len > SECRET_MAX_BYTES ||
		     text_has_control_chars(r.refresh_token, r.refresh_token_len)))
			abort();
		if (r.expires_in < -1 || r.expires_in > OAUTH2_EXPIRES_IN_MAX_S)
			abort();
		if (r.error != NULL)
			abort();
		break;
	case OAUTH2_ANSWER_ERROR:
		if (r.error == NULL || !oauth2_error_code_ok(r.error, strlen(r.error)))
			abort();
		check_description(r.error_description);
		break;
	case OAUTH2_ANSWER_INVALID:
		if (why == NULL)
			abort();
		break;
	default:
		abort();
	}
	return 0;
}
