/*
 * err.h - the one error type. 0 is success; every other value is a problem
 * a client can see, mapped to an HTTP status and a problem-details type in
 * exactly one place (http.c, problem_for()).
 */
#ifndef MAILSRV_ERR_H
#define MAILSRV_ERR_H

typedef enum {
	E_OK = 0,
	E_BAD_REQUEST,
	E_VALIDATION,
	E_UNAUTHORIZED,
	E_FORBIDDEN,
	E_NOT_FOUND,
	E_METHOD_NOT_ALLOWED,
	E_CONFLICT,
	E_PRECONDITION_FAILED,
	E_PAYLOAD_TOO_LARGE,
	E_UNSUPPORTED_MEDIA_TYPE,
	E_RATE_LIMITED,
	E_DB_UNAVAILABLE,
	E_OAUTH2_PROVIDER,
	E_DESTINATION_REFUSED,
	E_UPSTREAM_UNREACHABLE,
	E_UPSTREAM_TIMEOUT,
	E_SERVICE_BUSY, /* too many slow operations at once: 503, Retry-After */
	/* A stored secret the request needs does not decrypt (its ciphertext was
	 * changed or moved in the database, or its key left the keyring): 409
	 * with error_code secret_unreadable; the secret must be entered again. */
	E_SECRET_UNREADABLE,
	E_INTERNAL, /* a bug or resource exhaustion: 500, logged */
	E__COUNT
} err_t;

#endif
