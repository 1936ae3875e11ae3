/*
 * db_smtp_test.h - data access for the SMTP connection test
 * (sql/004_smtp_test.sql): the stored password a test logs in with, the
 * rate limit counted in the database, and the last test of a saved server.
 */
#ifndef MAILSRV_DB_SMTP_TEST_H
#define MAILSRV_DB_SMTP_TEST_H

#include <stddef.h>

#include "err.h"

struct arena;
struct db;
struct secret_keyring;

/* The password of server id, decrypted (NULL when none is stored), as the
 * server is at version (*found = 0 when it changed since, or is gone). The
 * plaintext is in the arena and must never be logged. E_SECRET_UNREADABLE
 * (logged once, naming the server and the column) when it does not decrypt. */
err_t db_smtp_test_password_get(struct db *db, struct arena *a, const struct secret_keyring *kr,
                                long long id, long long version, const char **password, int *found);

/* Count one test in bucket ("server:<id>", "actor:<sub>"): *hits in the
 * bucket's current one-minute window, *retry_after the seconds until that
 * window ends. Old windows of other buckets are purged when a new window
 * starts. */
err_t db_smtp_test_rate_hit(struct db *db, const char *bucket, long *hits, int *retry_after);

/* Store the last test of server id unless it changed since version
 * (*stored = 0 then). error_code NULL for a success. version and
 * updated_at do not move. */
err_t db_smtp_test_last_update(struct db *db, long long id, long long version, int ok,
                               const char *stage, const char *error_code, int *stored);

#endif
