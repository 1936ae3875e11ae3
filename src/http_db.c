/*
 * http_db.c - data-layer failures to problem details (see http_db.h).
 */
#include "http_db.h"

#include <string.h>

#include "app.h"
#include "http.h"
#include "log.h"

#define BUG_DETAIL "a database constraint refused a validated value"

/* The unique constraints the product promises (sql/001_schema.sql), and
 * what a violation tells the client. Any other is a bug. */
static const struct {
	const char *constraint;
	struct db_problem problem;
} uniques[] = {
    {"mail_server_name_key",
     {E_CONFLICT, "a mail server with this name already exists", "name",
      "is already taken by another mail server", 0}},
    /* Moves of the default serialize on an advisory lock first; the index
     * only fires on a race that lock does not cover: retrying resolves it. */
    {"mail_server_single_default",
     {E_DB_UNAVAILABLE, "the default server changed concurrently; retry", NULL, NULL, 0}},
};

struct db_problem http_db_problem(err_t e, enum db_cause cause, const char *constraint,
                                  enum db_op op)
{
	struct db_problem p = {e, NULL, NULL, NULL, 0};
	switch (e) {
	case E_OK:
		return p;
	case E_NOT_FOUND:
		p.detail = "no mail server has this id";
		return p;
	case E_DB_UNAVAILABLE:
		if (cause == DB_CAUSE_TIMEOUT)
			p.detail = "the database did not answer in time; retry later";
		else if (cause == DB_CAUSE_SERIALIZATION)
			p.detail = "the request conflicted with a concurrent change; retry";
		else
			p.detail = "the database is unavailable; retry later";
		return p;
	case E_CONFLICT:
		for (size_t i = 0;
		     cause == DB_CAUSE_UNIQUE && i < sizeof(uniques) / sizeof(uniques[0]); i++)
			if (constraint != NULL && strcmp(constraint, uniques[i].constraint) == 0)
				return uniques[i].problem;
		return (struct db_problem){E_INTERNAL, BUG_DETAIL, NULL, NULL, 1};
	case E_SECRET_UNREADABLE:
		p.detail = "a stored secret of the mail server cannot be decrypted: enter it again";
		return p;
	case E_INTERNAL:
		if (cause == DB_CAUSE_CHECK || cause == DB_CAUSE_FOREIGN_KEY)
			return (struct db_problem){E_INTERNAL, BUG_DETAIL, NULL, NULL, 1};
		break;
	default:
		break;
	}
	p.e = E_INTERNAL;
	p.detail = op == DB_READ ? "could not read the mail server" : "could not store the change";
	return p;
}

err_t http_reject_db(struct ctx *c, err_t e, enum db_op op)
{
	if (e == E_OK)
		return E_OK;
	struct db *db = c->w->db;
	struct db_problem p = http_db_problem(e, db_cause(db), db_constraint(db), op);
	if (p.bug)
		log_error(
		    "a database constraint (\"%s\", SQLSTATE %s) refused a value the validation"
		    " let through",
		    db_constraint(db), db_sqlstate(db));
	if (p.field != NULL)
		http_field_error(c, p.field, p.message);
	return http_reject(c, p.e, p.detail);
}
