/*
 * statement_sql.c - print the SQL text of one of the service's prepared
 * statements (src/db_statements.c) by its name, so that the benchmark's
 * pgbench scripts run the very queries the service runs, never a copy that
 * could drift from them.
 *
 *   statement-sql NAME     e.g. ms_get, ms_list_name_asc
 *
 * Exit status: 0 printed, 1 no such statement, 2 usage.
 */
#include <stdio.h>
#include <string.h>

#include "db.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fputs("usage: statement-sql NAME\n", stderr);
		return 2;
	}
	for (size_t i = 0; i < db_statement_count; i++) {
		if (db_statements[i].name != NULL && strcmp(db_statements[i].name, argv[1]) == 0) {
			printf("%s\n", db_statements[i].sql);
			return 0;
		}
	}
	fprintf(stderr, "statement-sql: no statement named \"%s\"\n", argv[1]);
	return 1;
}
