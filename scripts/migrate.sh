#!/usr/bin/env bash
# migrate.sh - apply the schema files sql/NNN_*.sql in order, each once.
#
# Each file runs in its own transaction (psql --single-transaction with
# ON_ERROR_STOP) together with the row that records it in schema_migrations
# (file name and sha256), so a file is either applied and recorded or neither.
# Running it again skips recorded files; a recorded file whose checksum has
# changed stops everything with an error: applied migrations are never edited,
# a change goes into a new file.
#
# The files run as the superuser over the unix socket, under
# `SET ROLE mailsrv_owner`, so every object belongs to mailsrv_owner; the
# service's role mailsrv_app gets only what the files GRANT it. Files must not
# contain BEGIN/COMMIT of their own.
#
# Settings (environment):
#   PGHOST     socket directory      (default $STACK_VAR/pg/run)
#   PGPORT     port                  (default $STACK_PG_PORT, else 55432)
#   PGDATABASE database              (default mailsrv)
#   MIGRATE_RUN_AS  OS user that runs psql (default postgres; empty: the caller,
#                   who then needs PGUSER=postgres or another superuser)
#   MIGRATE_SQL_DIR directory of NNN_*.sql (default <repo>/sql; a test hook)
# A production deployment runs it as, e.g.:
#   PGHOST=/var/run/postgresql PGPORT=5432 scripts/migrate.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack_var=${STACK_VAR:-$repo/var}
host=${PGHOST:-$stack_var/pg/run}
port=${PGPORT:-${STACK_PG_PORT:-55432}}
db=${PGDATABASE:-mailsrv}
run_as=${MIGRATE_RUN_AS-postgres}
sql_dir=${MIGRATE_SQL_DIR:-$repo/sql}

die() {
	echo "migrate: $*" >&2
	exit 1
}

# psql runs as postgres, who may not be able to reach the caller's cwd.
sql_dir=$(cd "$sql_dir" && pwd) || die "no directory $sql_dir"
cd /

psql_cmd=(psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -d "$db")
if [[ -n $run_as ]]; then
	psql_cmd=(runuser -u "$run_as" -- "${psql_cmd[@]}")
fi

# The files, in name order (NNN_ prefix). nullglob: no files is not an error
# for the loop, but it is one for us.
shopt -s nullglob
files=("$sql_dir"/[0-9][0-9][0-9]_*.sql)
shopt -u nullglob
((${#files[@]} > 0)) || die "no migration files in $sql_dir"

# The bookkeeping table, owned by mailsrv_owner like the rest of the schema.
"${psql_cmd[@]}" <<'SQL'
SET client_min_messages = warning;
SET ROLE mailsrv_owner;
CREATE TABLE IF NOT EXISTS schema_migrations (
    filename   text PRIMARY KEY,
    sha256     text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    applied_at timestamptz NOT NULL DEFAULT now()
);
-- /readyz compares the newest recorded file with the one the build expects.
GRANT SELECT ON schema_migrations TO mailsrv_app;
SQL

declare -A applied=()
while IFS='|' read -r name sum; do
	[[ -n $name ]] && applied[$name]=$sum
done < <("${psql_cmd[@]}" -A -t -c 'SELECT filename, sha256 FROM schema_migrations')

# Check every recorded file first, so a changed one stops the run before any
# new file is applied after it.
for f in "${files[@]}"; do
	name=$(basename "$f")
	[[ -n ${applied[$name]+x} ]] || continue
	sum=$(sha256sum "$f" | cut -d' ' -f1)
	if [[ ${applied[$name]} != "$sum" ]]; then
		die "$name was applied with sha256 ${applied[$name]} but the file now has $sum; applied migrations must not change (put the change in a new file)"
	fi
done

count=0
for f in "${files[@]}"; do
	name=$(basename "$f")
	[[ -z ${applied[$name]+x} ]] || continue
	[[ $name =~ ^[0-9]{3}_[A-Za-z0-9_.-]+\.sql$ ]] || die "$name: file names must look like NNN_words.sql"
	if grep -Eiq '^[[:space:]]*(BEGIN|COMMIT|ROLLBACK|START[[:space:]]+TRANSACTION)[[:space:]]*;' "$f"; then
		die "$name: a migration must not BEGIN/COMMIT itself (each file already runs in one transaction)"
	fi
	sum=$(sha256sum "$f" | cut -d' ' -f1)
	echo "migrate: applying $name"
	# The file goes to psql on stdin (the caller may read it where the
	# postgres user cannot), so psql's "<stdin>:N" is line N of the file.
	# $name and $sum are safe as literals (checked above; hex).
	if ! "${psql_cmd[@]}" --single-transaction -c 'SET ROLE mailsrv_owner' -f - \
		-c "INSERT INTO schema_migrations (filename, sha256) VALUES ('$name', '$sum')" <"$f"; then
		die "$name failed; nothing of it was applied"
	fi
	count=$((count + 1))
done

# The service's role: server-side limits so that no request can hold a
# connection, a lock or an open transaction for long (docs/design.md, "Library
# traps": PostgreSQL).
"${psql_cmd[@]}" <<'SQL'
ALTER ROLE mailsrv_app SET statement_timeout = '5s';
ALTER ROLE mailsrv_app SET lock_timeout = '2s';
ALTER ROLE mailsrv_app SET idle_in_transaction_session_timeout = '10s';
SQL

for name in "${!applied[@]}"; do
	[[ -e $sql_dir/$name ]] || echo "migrate: warning: $name is recorded as applied but not in $sql_dir" >&2
done
echo "migrate: $count applied, $((${#files[@]} - count)) already up to date"
