#!/usr/bin/env bash
# stack.sh - the local stack: a PostgreSQL 15 cluster, the worker pool
# (build/mailsrv) and nginx in front of it, everything under one directory.
#
#   scripts/stack.sh keys|init|start|run|stop|status|env
#   scripts/stack.sh pg-start | pg-stop [smart|fast|immediate] | pg-kill9
#
# Configuration (environment):
#   STACK_VAR        absolute directory for all state, logs, keys and pids
#                    (default <repo>/var, see default_var); a test stack
#                    uses its own
#   STACK_HTTP_PORT  nginx on 127.0.0.1 (default 8080)
#   STACK_PG_PORT    PostgreSQL on 127.0.0.1 and its socket (default 55432)
#   STACK_PROCESSES, STACK_THREADS  become MAILSRV_PROCESSES/MAILSRV_THREADS
#   STACK_WAIT_SECONDS  how long `start` waits for /healthz (default 30)
#   STACK_NGINX_API_RATE, STACK_NGINX_API_BURST, STACK_NGINX_SENSITIVE_RATE,
#   STACK_NGINX_SENSITIVE_BURST, STACK_NGINX_CONN_LIMIT  nginx's limits per
#                    client address (deploy/render-nginx.sh); the defaults
#                    (1000r/s burst 2000, 200r/s burst 400, 1000 requests in
#                    progress) are far above what the test suites and the
#                    drills send from 127.0.0.1, so only the test of the
#                    limits, with its own nginx, meets them; `make bench`
#                    sets higher ones still
#   STACK_METRICS_ALLOW  the addresses (or CIDR ranges), space-separated,
#                    that nginx lets read /metrics (default "127.0.0.1 ::1":
#                    loopback only); every other client gets a 403
#   STACK_SERVICE_USER  the unprivileged user the service runs as (default
#                    mailsrv; becomes MAILSRV_USER)
#   STACK_SOCKET_GROUP  the FastCGI socket's group, shared by that user and
#                    nginx's (default mailsrv-sock)
#   MAILSRV_*        passed to the service; a variable set here wins over the
#                    stack's default for it (see service_env)
# Test hooks: STACK_MAILSRV_BIN and STACK_MAILSRV_TOOL replace build/mailsrv
# and build/mailsrv-tool (for trying the stack with a stand-in).
#
# Every process is started here in the background and stopped by the pid
# recorded when it started, never by name. Nothing prints key material.
#
# Users. Nothing runs as root but nginx's master: PostgreSQL runs as
# postgres, nginx's workers as www-data, and the service as its own user
# (STACK_SERVICE_USER), which deploy/install-keys.sh creates with its keys:
# started by root, the service opens its socket and becomes that user
# (MAILSRV_USER, src/main.c). The socket's group (STACK_SOCKET_GROUP) holds
# only the service's user and nginx's. STACK_VAR is used only when it is
# owned by the caller and writable by nobody else (see check_stack_var).
#
# Database access. The cluster uses peer authentication on its unix socket
# with an ident map (pg_ident.conf, map "stack"): the OS user postgres may be
# the database user postgres, the OS user who runs this script (root) may be
# postgres or mailsrv_app, and the service's user may be mailsrv_app. No
# password exists for the socket, and no other OS user can log in at all:
# peer checks the kernel's word for who is connecting, which is stronger than
# `trust` and needs no secret in MAILSRV_DATABASE_URL. The socket directory
# is also closed (0750, postgres:<the service user's group>). TCP on
# 127.0.0.1 is open for tools and fault drills that need a network path:
# there only mailsrv_app can log in,
# with scram-sha-256 and a generated password kept in $STACK_VAR/keys/pgpass
# (a libpq passfile: `passfile=$STACK_VAR/keys/pgpass` in a conninfo).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The default state directory is <repo>/var. PostgreSQL (as postgres) and
# nginx's workers (as www-data) must reach into it, and the unix sockets in it
# need short paths (108 bytes at most); when the tree lies where they cannot
# reach (a checkout under /root, a 0700 home directory) or too deep, the
# default moves to /var/tmp, one directory per checkout.
default_var() {
	local alt
	alt=/var/tmp/mailsrv-stack-$(printf '%s' "$repo" | sha256sum | cut -c1-12)
	if [[ -e $alt ]] || ((${#repo} > 60)) || { ((EUID == 0)) && id postgres >/dev/null 2>&1 &&
		! { runuser -u postgres -- test -x "$repo" && runuser -u www-data -- test -x "$repo"; } 2>/dev/null; }; then
		echo "$alt"
	else
		echo "$repo/var"
	fi
}
STACK_VAR=${STACK_VAR:-$(default_var)}
HTTP_PORT=${STACK_HTTP_PORT:-8080}
PG_PORT=${STACK_PG_PORT:-55432}
WAIT_SECONDS=${STACK_WAIT_SECONDS:-30}
NGINX_API_RATE=${STACK_NGINX_API_RATE:-1000r/s}
NGINX_API_BURST=${STACK_NGINX_API_BURST:-2000}
NGINX_SENSITIVE_RATE=${STACK_NGINX_SENSITIVE_RATE:-200r/s}
NGINX_SENSITIVE_BURST=${STACK_NGINX_SENSITIVE_BURST:-400}
NGINX_CONN_LIMIT=${STACK_NGINX_CONN_LIMIT:-1000}
METRICS_ALLOW=${STACK_METRICS_ALLOW:-127.0.0.1 ::1}
mailsrv_bin=${STACK_MAILSRV_BIN:-$repo/build/mailsrv}
tool_bin=${STACK_MAILSRV_TOOL:-$repo/build/mailsrv-tool}
NGINX_USER=${STACK_NGINX_USER:-www-data}
SERVICE_USER=${STACK_SERVICE_USER:-mailsrv}
SOCKET_GROUP=${STACK_SOCKET_GROUP:-mailsrv-sock}
PG_BIN=/usr/lib/postgresql/15/bin

keys_dir=$STACK_VAR/keys
pg_dir=$STACK_VAR/pg
pgdata=$pg_dir/data
pg_sock=$pg_dir/run
log_dir=$STACK_VAR/log
# The one directory the service's user may write: sanitizer reports of the
# test build (tests/run_all.sh points ASAN_OPTIONS' log_path here).
service_log_dir=$log_dir/service
run_dir=$STACK_VAR/run
nginx_dir=$STACK_VAR/nginx
pg_log=$log_dir/postgresql.log
mailsrv_log=$log_dir/mailsrv.log
mailsrv_pidfile=$run_dir/mailsrv.pid
nginx_pidfile=$nginx_dir/nginx.pid
nginx_conf=$nginx_dir/nginx.conf
# The API's documentation as nginx serves it: a copy of build/api-docs
# (make docs), where nginx's workers can read it.
docs_src=$repo/build/api-docs
docs_dir=$STACK_VAR/api-docs
pg_pass_file=$keys_dir/pg-mailsrv_app.password
pgpass=$keys_dir/pgpass

die() {
	echo "stack: $*" >&2
	exit 1
}
say() { echo "stack: $*"; }

[[ $STACK_VAR == /* ]] || die "STACK_VAR must be an absolute path (got '$STACK_VAR')"

# STACK_VAR holds keys, pid files and sockets that root trusts. Under
# /var/tmp anyone may create a directory first and fill it with planted keys
# or symbolic links, so an existing STACK_VAR is used only when it is a real
# directory (no symlink) owned by the caller and writable by nobody else.
check_stack_var() {
	[[ -e $STACK_VAR || -L $STACK_VAR ]] || return 0
	[[ ! -L $STACK_VAR && -d $STACK_VAR ]] || die "STACK_VAR $STACK_VAR is not a directory (or is a symbolic link): not used"
	local owner mode
	read -r owner mode < <(stat -c '%u %a' -- "$STACK_VAR")
	((owner == EUID)) || die "STACK_VAR $STACK_VAR belongs to uid $owner, not to you (uid $EUID): not used; remove it or choose another STACK_VAR"
	(((8#$mode & 8#022) == 0)) || die "STACK_VAR $STACK_VAR is writable by its group or others (mode $mode): not used; remove it or choose another STACK_VAR"
}
# Make STACK_VAR (mkdir fails when someone made it in between) and check it.
make_stack_var() {
	[[ -d ${STACK_VAR%/*}/ ]] || install -d -m 0755 -- "${STACK_VAR%/*}"
	mkdir -m 0755 -- "$STACK_VAR" 2>/dev/null || true
	check_stack_var
	[[ -d $STACK_VAR ]] || die "could not create $STACK_VAR"
}
check_stack_var
for p in "$HTTP_PORT" "$PG_PORT"; do
	if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1 || p > 65535)); then die "bad port '$p'"; fi
done
for r in "$NGINX_API_RATE" "$NGINX_SENSITIVE_RATE"; do
	[[ $r =~ ^[1-9][0-9]*r/[sm]$ ]] || die "bad nginx rate '$r' (like 20r/s or 30r/m)"
done
for n in "$NGINX_API_BURST" "$NGINX_SENSITIVE_BURST" "$NGINX_CONN_LIMIT"; do
	[[ $n =~ ^[0-9]+$ ]] || die "bad nginx burst or connection limit '$n'"
done
((NGINX_CONN_LIMIT >= 1 && NGINX_CONN_LIMIT <= 65535)) || die "STACK_NGINX_CONN_LIMIT must be 1-65535 (nginx's range)"
# nginx's allow lines for /metrics: addresses or ranges only, nothing that
# could end the directive.
metrics_allow_lines=
for a in $METRICS_ALLOW; do
	[[ $a =~ ^[0-9A-Fa-f.:]+(/[0-9]{1,3})?$ ]] || die "STACK_METRICS_ALLOW: '$a' is not an address or range"
	metrics_allow_lines+="allow $a; "
done
[[ -n $metrics_allow_lines ]] || die "STACK_METRICS_ALLOW is empty: name at least one address"

# Unix socket paths: sun_path holds 107 bytes and a NUL.
check_socket_paths() {
	local p
	for p in "$pg_sock/.s.PGSQL.$PG_PORT" "${MAILSRV_SOCKET:-$run_dir/mailsrv.sock}"; do
		((${#p} <= 107)) || die "the unix socket path $p is longer than 107 bytes: choose a shorter STACK_VAR"
	done
}

need_root() {
	((EUID == 0)) || die "this needs root (it runs PostgreSQL as the postgres user and nginx workers as $NGINX_USER)"
}

# From /, so that no command run as postgres depends on reaching our cwd.
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

# A value for a libpq conninfo string: as it is when it is plain, else
# single-quoted with \ and ' escaped.
conninfo_quote() {
	local v=$1
	if [[ $v =~ ^[A-Za-z0-9_./:@-]+$ ]]; then
		printf '%s' "$v"
		return
	fi
	v=${v//\\/\\\\}
	v=${v//\'/\\\'}
	printf "'%s'" "$v"
}

# A value for postgresql.conf: single-quoted, ' doubled.
pgconf_quote() { printf "'%s'" "${1//\'/\'\'}"; }

# The service's environment: the stack's defaults for whatever MAILSRV_*
# variable the caller has not set.
service_env() {
	export MAILSRV_DATABASE_URL=${MAILSRV_DATABASE_URL:-"host=$(conninfo_quote "$pg_sock") port=$PG_PORT dbname=mailsrv user=mailsrv_app application_name=mailsrv"}
	export MAILSRV_SOCKET=${MAILSRV_SOCKET:-$run_dir/mailsrv.sock}
	export MAILSRV_SOCKET_GROUP=${MAILSRV_SOCKET_GROUP:-$SOCKET_GROUP}
	export MAILSRV_USER=${MAILSRV_USER:-$SERVICE_USER}
	export MAILSRV_PROCESSES=${MAILSRV_PROCESSES:-${STACK_PROCESSES:-2}}
	export MAILSRV_THREADS=${MAILSRV_THREADS:-${STACK_THREADS:-4}}
	export MAILSRV_JWT_ALG=${MAILSRV_JWT_ALG:-HS256}
	export MAILSRV_JWT_KEY_FILE=${MAILSRV_JWT_KEY_FILE:-$keys_dir/jwt-hs256.key}
	export MAILSRV_SECRET_KEY_FILE=${MAILSRV_SECRET_KEY_FILE:-$keys_dir/secrets.key}
	export MAILSRV_PUBLIC_URL=${MAILSRV_PUBLIC_URL:-http://127.0.0.1:$HTTP_PORT}
	export MAILSRV_CONSOLE_URL=${MAILSRV_CONSOLE_URL:-http://127.0.0.1:$HTTP_PORT/}
}

# ---- pids --------------------------------------------------------------

# pid_of FILE MARK: the pid recorded in FILE when that process is alive and
# its executable is MARK or its command line contains MARK (so a reused pid
# is never taken for ours).
pid_of() {
	local file=$1 mark=$2 pid cmd exe
	[[ -r $file ]] || return 1
	read -r pid <"$file" || true
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ -r /proc/$pid/cmdline ]] || return 1
	exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || exe=
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || cmd=
	[[ $exe == "$mark" || $cmd == *"$mark"* ]] || return 1
	echo "$pid"
}

# The pid file's second line is the binary that was started, so that `stop`
# finds it whatever STACK_MAILSRV_BIN says now.
mailsrv_started_bin() {
	local b=
	[[ -r $mailsrv_pidfile ]] && b=$(sed -n 2p "$mailsrv_pidfile")
	echo "${b:-$mailsrv_bin}"
}
mailsrv_pid() { pid_of "$mailsrv_pidfile" "$(mailsrv_started_bin)"; }
nginx_pid() { pid_of "$nginx_pidfile" "$nginx_conf"; }
pg_pid() { pid_of "$pgdata/postmaster.pid" "$pgdata"; }

# wait_gone PID SECONDS: 0 once PID has exited, 1 if it is still there.
wait_gone() {
	local pid=$1 n=$(($2 * 10))
	while ((n-- > 0)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	! kill -0 "$pid" 2>/dev/null
}

# port_free PORT WHAT: fail with a clear message when something listens on
# 127.0.0.1:PORT (or on all addresses) already.
port_free() {
	if [[ -n $(ss -Hltn "( sport = :$1 )" 2>/dev/null) ]]; then
		die "port $1 (for $2) is in use already; choose another with STACK_${3}_PORT"
	fi
}

# ---- keys and cluster ----------------------------------------------------

# The service's user, the socket's group and the keys, exactly as the
# documented install makes them (deploy/install-keys.sh, deploy/README.md).
cmd_keys() {
	need_root
	make_stack_var
	if [[ ! -e $keys_dir/secrets.key || ! -e $keys_dir/jwt-hs256.key ]]; then
		[[ -x $tool_bin ]] || die "$tool_bin is missing: run 'make all' first"
	fi
	"$repo/deploy/install-keys.sh" --user "$SERVICE_USER" --socket-group "$SOCKET_GROUP" \
		--nginx-user "$NGINX_USER" --tool "$tool_bin" "$keys_dir" | sed 's/^install-keys: /stack: /'
	# The TCP password of mailsrv_app (see the header), root's, and its
	# passfile, the service's (a key file like the others).
	if [[ ! -s $pg_pass_file ]]; then
		(umask 077 && openssl rand -hex 32 >"$pg_pass_file")
	fi
	if [[ ! -s $pgpass ]]; then
		(umask 077 && printf '*:*:mailsrv:mailsrv_app:%s\n' "$(cat "$pg_pass_file")" >"$pgpass")
	fi
	chown -- "$SERVICE_USER:$(id -gn "$SERVICE_USER")" "$pgpass"
	chmod 0600 -- "$pgpass" "$pg_pass_file"
}

# postgres must reach $pg_dir and nginx's workers the socket in $run_dir.
check_reachable() {
	local user=$1 dir=$2
	runuser -u "$user" -- test -x "$dir" ||
		die "the $user user cannot reach $dir: make every parent directory traversable (chmod o+x) or choose another STACK_VAR"
}

cmd_init() {
	need_root
	check_socket_paths
	cmd_keys
	local sgroup
	sgroup=$(id -gn "$SERVICE_USER")
	install -d -m 0755 "$log_dir" "$run_dir" "$nginx_dir"
	install -d -m 0755 -o "$SERVICE_USER" -g "$sgroup" "$service_log_dir"
	# Only postgres and the service user's group reach the socket directory
	# (and pg/, which holds it and the data; root reaches everything).
	install -d -m 0750 -o postgres -g "$sgroup" "$pg_dir"
	install -d -m 0750 -o postgres -g "$sgroup" "$pg_sock"
	check_reachable postgres "$pg_dir"
	check_reachable "$SERVICE_USER" "$pg_sock"
	check_reachable "$SERVICE_USER" "$keys_dir"
	if [[ ! -e $pg_log ]]; then
		install -m 0640 -o postgres -g postgres /dev/null "$pg_log"
	fi
	if [[ ! -s $pgdata/PG_VERSION ]]; then
		say "creating the PostgreSQL cluster in $pgdata"
		as_postgres "$PG_BIN/initdb" -D "$pgdata" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
			--auth-local=peer --auth-host=scram-sha-256 --data-checksums >"$log_dir/initdb.log" 2>&1 ||
			{ tail -n 20 "$log_dir/initdb.log" >&2; die "initdb failed (full output in $log_dir/initdb.log)"; }
		printf "\n# Written by scripts/stack.sh on every start.\ninclude_if_exists = 'stack.conf'\n" |
			as_postgres tee -a "$pgdata/postgresql.conf" >/dev/null
	fi
}

write_pg_auth() {
	local me
	me=$(id -un)
	as_postgres tee "$pgdata/pg_hba.conf" >/dev/null <<EOF
# Written by scripts/stack.sh; see its header for why.
# TYPE  DATABASE  USER         ADDRESS        METHOD
local   all       postgres                    peer map=stack
local   mailsrv   mailsrv_app                 peer map=stack
# mailsrv_scratch: a database the tests make and drop themselves (an
# upgrade from the previous release's schema, a key rotation of their own).
local   mailsrv_scratch  mailsrv_app          peer map=stack
host    mailsrv   mailsrv_app  127.0.0.1/32   scram-sha-256
EOF
	as_postgres tee "$pgdata/pg_ident.conf" >/dev/null <<EOF
# Written by scripts/stack.sh.
# MAPNAME  SYSTEM-USERNAME  PG-USERNAME
stack      postgres         postgres
stack      $me              postgres
stack      $me              mailsrv_app
stack      $SERVICE_USER    mailsrv_app
EOF
}

pg_is_running() {
	[[ -s $pgdata/PG_VERSION ]] && as_postgres "$PG_BIN/pg_ctl" status -D "$pgdata" >/dev/null 2>&1
}

cmd_pg_start() {
	need_root
	[[ -s $pgdata/PG_VERSION ]] || cmd_init
	if pg_is_running; then
		return 0
	fi
	port_free "$PG_PORT" PostgreSQL PG
	write_pg_auth
	as_postgres tee "$pgdata/stack.conf" >/dev/null <<EOF
# Written by scripts/stack.sh pg-start; edits are lost.
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = $(pgconf_quote "$pg_sock")
# The directory (0750) is the gate; the socket itself stays 0777.
unix_socket_permissions = 0777
max_connections = 200
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	if ! as_postgres "$PG_BIN/pg_ctl" start -D "$pgdata" -l "$pg_log" -w -t 60 >/dev/null; then
		tail -n 20 "$pg_log" >&2
		die "PostgreSQL did not start (log: $pg_log)"
	fi
}

cmd_pg_stop() {
	local mode=${1:-fast}
	[[ $mode == smart || $mode == fast || $mode == immediate ]] || die "pg-stop: mode is smart, fast or immediate"
	need_root
	pg_is_running || return 0
	as_postgres "$PG_BIN/pg_ctl" stop -D "$pgdata" -m "$mode" -w -t 60 >/dev/null
}

# Fault drill: the postmaster dies without any shutdown.
cmd_pg_kill9() {
	need_root
	local pid
	pid=$(pg_pid) || { say "PostgreSQL is not running"; return 0; }
	kill -KILL "$pid"
	wait_gone "$pid" 10 || die "postmaster $pid survived SIGKILL"
}

psql_super() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$pg_sock" -p "$PG_PORT" "$@"; }

# Roles and database, idempotently. mailsrv_owner owns the schema and never
# logs in (migrate.sh uses SET ROLE); mailsrv_app may connect and use the
# schema, and gets table rights only from the GRANTs in sql/.
pg_bootstrap() {
	psql_super -d postgres <<'SQL'
SELECT 'CREATE ROLE mailsrv_owner NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mailsrv_owner') \gexec
SELECT 'CREATE ROLE mailsrv_app LOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mailsrv_app') \gexec
ALTER ROLE mailsrv_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
ALTER ROLE mailsrv_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT -1;
SELECT 'CREATE DATABASE mailsrv OWNER mailsrv_owner'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mailsrv') \gexec
REVOKE ALL ON DATABASE mailsrv FROM PUBLIC;
GRANT CONNECT ON DATABASE mailsrv TO mailsrv_app;
SQL
	psql_super -d mailsrv <<'SQL'
ALTER SCHEMA public OWNER TO mailsrv_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO mailsrv_app;
SQL
	# The password travels on stdin, never on a command line.
	psql_super -d postgres <<SQL
ALTER ROLE mailsrv_app PASSWORD '$(cat "$pg_pass_file")';
SQL
}

# ---- the service and nginx -----------------------------------------------

start_mailsrv() {
	local pid
	if pid=$(mailsrv_pid); then
		say "mailsrv already running (pid $pid)"
		return 0
	fi
	[[ -x $mailsrv_bin ]] || die "$mailsrv_bin is missing: run 'make all' first"
	service_env
	check_reachable "$NGINX_USER" "$(dirname "$MAILSRV_SOCKET")"
	# setsid: its own session and process group, so a Ctrl-C meant for
	# `make run` reaches it only through `stop`, and `stop` can end the
	# whole group (master and workers) if it must.
	echo "--- $(date -u +%FT%TZ) stack: starting $mailsrv_bin" >>"$mailsrv_log"
	setsid "$mailsrv_bin" >>"$mailsrv_log" 2>&1 </dev/null &
	printf '%s\n%s\n' "$!" "$mailsrv_bin" >"$mailsrv_pidfile"
}

# The documentation's static files (scripts/build-docs.sh) into $docs_dir,
# replaced whole, files 0644 with their times (so their ETags are the
# build's), as deploy/README.md installs them on a host.
install_docs() {
	[[ -s $docs_src/openapi.json && -s $docs_src/ui/index.html ]] ||
		die "$docs_src is missing: run 'make docs' first"
	rm -rf -- "$docs_dir.new"
	cp -rp -- "$docs_src" "$docs_dir.new"
	chmod -R u=rwX,go=rX -- "$docs_dir.new"
	rm -rf -- "$docs_dir.old"
	[[ ! -e $docs_dir ]] || mv -- "$docs_dir" "$docs_dir.old"
	mv -- "$docs_dir.new" "$docs_dir"
	rm -rf -- "$docs_dir.old"
}

# nginx.conf and the files it includes, by the same script and from the same
# templates as production's site (deploy/render-nginx.sh).
render_nginx_conf() {
	service_env
	install_docs
	install -d -m 0755 "$nginx_dir/tmp"
	"$repo/deploy/render-nginx.sh" local "$nginx_dir" \
		PID_FILE="$nginx_pidfile" LOG_DIR="$log_dir" TEMP_DIR="$nginx_dir/tmp" \
		HTTP_PORT="$HTTP_PORT" SOCKET="$MAILSRV_SOCKET" USER="$NGINX_USER" \
		API_RATE="$NGINX_API_RATE" API_BURST="$NGINX_API_BURST" \
		SENSITIVE_RATE="$NGINX_SENSITIVE_RATE" SENSITIVE_BURST="$NGINX_SENSITIVE_BURST" \
		CONN_LIMIT="$NGINX_CONN_LIMIT" METRICS_ALLOW="$METRICS_ALLOW" DOCS_DIR="$docs_dir" ||
		die "could not render nginx's configuration"
}

start_nginx() {
	local pid
	render_nginx_conf
	if pid=$(nginx_pid); then
		# Running already: take the freshly rendered configuration.
		nginx -q -t -c "$nginx_conf" -p "$nginx_dir/" -e "$log_dir/nginx-error.log" ||
			die "the new nginx configuration is invalid; nginx $pid keeps the old one"
		kill -HUP "$pid"
		say "nginx already running (pid $pid), configuration reloaded"
		return 0
	fi
	# -e: the error log before the configuration is read (else the
	# compiled-in /var/log/nginx/error.log).
	nginx -q -c "$nginx_conf" -p "$nginx_dir/" -e "$log_dir/nginx-error.log" ||
		die "nginx did not start (log: $log_dir/nginx-error.log)"
}

wait_healthy() {
	local url="http://127.0.0.1:$HTTP_PORT/healthz" code='' deadline=$((SECONDS + WAIT_SECONDS))
	while ((SECONDS < deadline)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
		[[ $code == 200 ]] && return 0
		if ! mailsrv_pid >/dev/null; then
			echo "stack: mailsrv exited during start" >&2
			break
		fi
		sleep 0.2
	done
	echo "stack: $url did not answer 200 (last answer: ${code:-none}; waited at most ${WAIT_SECONDS}s)" >&2
	# The service's log since this start, then the others' last lines.
	echo "--- $mailsrv_log since this start" >&2
	awk '/^--- .* stack: starting /{n=NR} {l[NR]=$0} END{for(i=n;i<=NR;i++) if(i>0) print l[i]}' "$mailsrv_log" | tail -n 40 >&2
	local f
	for f in "$log_dir/nginx-error.log" "$pg_log"; do
		[[ -e $f ]] || continue
		echo "--- tail of $f" >&2
		tail -n 10 "$f" >&2
	done
	return 1
}

cmd_start() {
	need_root
	nginx_pid >/dev/null || port_free "$HTTP_PORT" nginx HTTP
	pg_is_running || port_free "$PG_PORT" PostgreSQL PG
	cmd_init
	cmd_pg_start
	pg_bootstrap
	STACK_VAR=$STACK_VAR STACK_PG_PORT=$PG_PORT PGHOST=$pg_sock PGPORT=$PG_PORT PGDATABASE=mailsrv \
		"$repo/scripts/migrate.sh" | sed 's/^/stack: /'
	start_mailsrv
	start_nginx
	wait_healthy || die "the stack did not become healthy; 'scripts/stack.sh stop' stops what runs"
	say "up: http://127.0.0.1:$HTTP_PORT  (PostgreSQL 127.0.0.1:$PG_PORT and $pg_sock, logs in $log_dir)"
}

stop_nginx() {
	local pid
	pid=$(nginx_pid) || return 0
	kill -QUIT "$pid" 2>/dev/null || true # graceful: finish in-flight requests
	if ! wait_gone "$pid" 10; then
		say "nginx $pid still running after 10s: SIGKILL"
		pkill -KILL -P "$pid" || true
		kill -KILL "$pid" 2>/dev/null || true
		wait_gone "$pid" 5 || true
	fi
	rm -f "$nginx_pidfile"
}

stop_mailsrv() {
	local pid pgid='' bin
	bin=$(mailsrv_started_bin)
	if pid=$(mailsrv_pid); then
		kill -TERM "$pid" 2>/dev/null || true # drains, then exits
		if ! wait_gone "$pid" 15; then
			say "mailsrv $pid still running after 15s: SIGKILL to its process group"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" 5 || true
		fi
	fi
	# Workers of a master that died are left in its process group (setsid
	# made the recorded pid the group's id).
	[[ -r $mailsrv_pidfile ]] && read -r pgid <"$mailsrv_pidfile"
	if [[ $pgid =~ ^[0-9]+$ ]] && pgrep -g "$pgid" -f -- "$bin" >/dev/null; then
		sleep 1
		pkill -KILL -g "$pgid" -f -- "$bin" || true
	fi
	rm -f "$mailsrv_pidfile"
}

cmd_stop() {
	need_root
	stop_nginx
	stop_mailsrv
	cmd_pg_stop fast
}

cmd_status() {
	local pid rc=0
	if pid=$(pg_pid); then say "postgresql running (pid $pid, port $PG_PORT)"; else say "postgresql stopped"; rc=1; fi
	if pid=$(mailsrv_pid); then say "mailsrv    running (pid $pid)"; else say "mailsrv    stopped"; rc=1; fi
	if pid=$(nginx_pid); then say "nginx      running (pid $pid, http://127.0.0.1:$HTTP_PORT)"; else say "nginx      stopped"; rc=1; fi
	return "$rc"
}

# For tests: `eval "$(scripts/stack.sh env)"`.
cmd_env() {
	local v
	service_env
	for v in $(compgen -v MAILSRV_); do
		printf 'export %s=%q\n' "$v" "${!v}"
	done
	printf 'export STACK_PG_SOCKET_DIR=%q\n' "$pg_sock"
	printf 'export STACK_PG_PASSFILE=%q\n' "$pgpass"
}

cmd_run() {
	local token
	# However this ends (Ctrl-C, a failed start, a component that dies),
	# everything stops.
	trap 'cmd_stop' EXIT
	trap 'trap "" INT TERM; echo; say "stopping"; exit 0' INT TERM
	cmd_start
	service_env
	token=$("$tool_bin" token --sub admin --roles administrator | tail -n 1) ||
		die "could not make a token with $tool_bin"
	cat <<EOF

The stack is running. Try:

  curl -H "Authorization: Bearer $token" http://127.0.0.1:$HTTP_PORT/api/v1/mail-servers

(the token is valid for one hour; 'make -s token' prints a new one)
The API's documentation: http://127.0.0.1:$HTTP_PORT/api/docs/
Press Ctrl-C to stop everything.
EOF
	while :; do
		sleep 1 &
		wait "$!" || true
		if ! mailsrv_pid >/dev/null || ! nginx_pid >/dev/null || ! pg_is_running; then
			echo "stack: a component stopped unexpectedly:" >&2
			cmd_status >&2 || true
			tail -n 25 "$mailsrv_log" >&2 || true
			exit 1
		fi
	done
}

usage() {
	sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

cmd=${1:-}
shift || true
case $cmd in
keys) cmd_keys ;;
init) cmd_init ;;
start) cmd_start ;;
run) cmd_run ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
pg-start) cmd_pg_start ;;
pg-stop) cmd_pg_stop "$@" ;;
pg-kill9) cmd_pg_kill9 ;;
*) usage ;;
esac
