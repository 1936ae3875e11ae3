/*
 * db_smtp_test.c - the SMTP connection test's data (see db_smtp_test.h).
 * Every PGresult is cleared in the function that received it.
 */
#include "db_smtp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "crypto.h"
#include "db.h"
#include "db_row.h"
#include "db_statements.h"
#include "log.h"
#include "validate.h"

err_t db_smtp_test_password_get(struct db *db, struct arena *a, const struct secret_keyring *kr,
                                long long id, long long version, const char **password, int *found)
{
	char idbuf[24], vbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	snprintf(vbuf, sizeof(vbuf), "%lld", version);
	const char *p[] = {idbuf, vbuf};
	struct pg_result *r;
	*password = NULL;
	*found = 0;
	err_t e = db_exec(db, ST_ST_PASSWORD, 2, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	if (db_ntuples(r) > 0) {
		*found = 1;
		char *aad = db_ms_secret_aad(a, id, MS_SECRET_password);
		if (aad == NULL) {
			e = E_INTERNAL;
		} else if (db_open_secret(a, kr, aad, r, 0, 0, password, NULL) != 0) {
			log_error(
			    "integrity: the stored password of mail server %lld does not decrypt"
			    " (changed in the database, or its key left the keyring)",
			    id);
			e = E_SECRET_UNREADABLE;
		}
	}
	db_clear(r);
	return e;
}

err_t db_smtp_test_rate_hit(struct db *db, const char *bucket, long *hits, int *retry_after)
{
	const char *p[] = {bucket};
	struct pg_result *r;
	err_t e = db_exec(db, ST_ST_RATE_HIT, 1, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	if (db_ntuples(r) != 1) {
		db_clear(r);
		return E_INTERNAL;
	}
	*hits = strtol(db_value(r, 0, 0), NULL, 10);
	*retry_after = (int)strtol(db_value(r, 0, 1), NULL, 10);
	db_clear(r);
	/* A new window: a good moment to forget buckets idle for an hour. */
	if (*hits == 1 && db_exec(db, ST_ST_RATE_PURGE, 0, NULL, NULL, NULL, NULL) != E_OK)
		return E_OK; /* the count stands; the purge waits for the next one */
	return E_OK;
}

err_t db_smtp_test_last_update(struct db *db, long long id, long long version, int ok,
                               const char *stage, const char *error_code, int *stored)
{
	char idbuf[24], vbuf[24];
	snprintf(idbuf, sizeof(idbuf), "%lld", id);
	snprintf(vbuf, sizeof(vbuf), "%lld", version);
	const char *p[] = {idbuf, vbuf, ok ? "t" : "f", stage, error_code};
	struct pg_result *r;
	*stored = 0;
	err_t e = db_exec(db, ST_ST_STORE_LAST, 5, p, NULL, NULL, &r);
	if (e != E_OK)
		return e;
	*stored = db_affected(r) > 0;
	db_clear(r);
	return E_OK;
}
