#!/usr/bin/env bash
# run.sh - the benchmark behind `make bench` (docs/performance.md).
#
# Starts the stack on its own directory and ports, seeds 1,000 mail servers,
# then measures in interleaved rounds (so the machine's drift hits every
# figure alike), each measurement a warm-up followed by a bounded run:
#
#   ref_http      a second nginx answering `return 200` (the HTTP ceiling)
#   ref_pg_get    pgbench: the service's ms_get statement, -M prepared
#   ref_pg_list   pgbench: ms_list_name_asc (limit 50, no q)
#   ref_pg_listq  pgbench: ms_list_name_asc with a q pattern
#   ref_pg_list_pool  pgbench list as ref_pg_list, but with as many clients
#                 as the service has database connections (processes x
#                 threads) whatever the concurrency: the list's reference
#                 without the cost of 64 backends (docs/performance.md)
#   get           GET /mail-servers/{id}, random ids, bearer token each time
#   list          GET /mail-servers?limit=50&sort=name
#   listq         GET /mail-servers?limit=50&sort=name&q=<BENCH_Q>
#   post          POST /mail-servers, a new name each time
#   patch         PATCH /mail-servers/{id}, random ids
#   mix           90 % GET by id, 5 % PATCH, 5 % POST
#   peer_get      GET by id, the same requests, answered by the peer
#   peer_list     GET list (limit=50&sort=name), answered by the peer
#
# The peer (bench/peer/, docs/performance.md) is the same two reads written
# on Node, Fastify and pg, run behind the same nginx (a second server on
# BENCH_PEER_PORT, proxying to the peer on BENCH_PEER_NODE_PORT) with as many
# database connections as the service; the summary gives service/peer per
# round. npm ci installs it into bench/peer/node_modules when missing. Before
# measuring, one server and one page are fetched from both and must be the
# same JSON, or the run stops.
#
# at each concurrency of BENCH_CONNECTIONS. Then the worker processes'
# resident memory, and a summary: bench/results/latest.txt (also printed)
# and latest.json, plus a copy of both named by the run's time, and the raw
# measurements (latest.raw.jsonl). Every figure is also given as a ratio to
# the combined ceiling 1 / (1/nginx + 1/pgbench) at the same concurrency.
#
# Settings (environment):
#   BENCH_QUICK=1        a ~3 minute smoke run: one round, 3 s runs, 1 s warm-up
#   BENCH_ROUNDS         rounds (default 3)
#   BENCH_DURATION       seconds per measurement (default 10)
#   BENCH_WARMUP         seconds of warm-up before each (default 2)
#   BENCH_CONNECTIONS    concurrencies (default "16 64")
#   BENCH_ONLY           measure only these kinds (space-separated; default all)
#   BENCH_Q              the search term of listq (default "bravo": 1 row in 10)
#   BENCH_STACK_VAR      default <repo>/var/bench
#   BENCH_HTTP_PORT, BENCH_PG_PORT, BENCH_REF_PORT  28080, 55470, 28081
#   BENCH_PEER_PORT, BENCH_PEER_NODE_PORT  the peer's nginx server and the
#                        peer itself: 28082, 28083
#   BENCH_RESULTS        output directory (default <repo>/bench/results)
#   BENCH_NGINX_WORKERS  worker_processes for both nginx (default: the deploy
#                        template's), to compare settings
#   BENCH_STATEMENT_SQL  the statement printer (make bench builds it); with
#                        STACK_MAILSRV_BIN, an older build can be measured
#   STACK_PROCESSES, STACK_THREADS and MAILSRV_* reach the service as with
#   scripts/stack.sh.
# Everything it starts (the stack, the reference nginx) is stopped on exit,
# by pid; load goes to 127.0.0.1 only and every run is bounded in time.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

export STACK_VAR=${BENCH_STACK_VAR:-$repo/var/bench}
export STACK_HTTP_PORT=${BENCH_HTTP_PORT:-28080}
export STACK_PG_PORT=${BENCH_PG_PORT:-55470}
# nginx's limits per client address (deploy/nginx.conf.template) would
# throttle a load generator on 127.0.0.1: set far above any measured rate,
# so the figures are the service's, as before the limits existed.
export STACK_NGINX_API_RATE=${STACK_NGINX_API_RATE:-1000000r/s}
export STACK_NGINX_API_BURST=${STACK_NGINX_API_BURST:-1000000}
export STACK_NGINX_SENSITIVE_RATE=${STACK_NGINX_SENSITIVE_RATE:-1000000r/s}
export STACK_NGINX_SENSITIVE_BURST=${STACK_NGINX_SENSITIVE_BURST:-1000000}
export STACK_NGINX_CONN_LIMIT=${STACK_NGINX_CONN_LIMIT:-65535}
ref_port=${BENCH_REF_PORT:-28081}
peer_port=${BENCH_PEER_PORT:-28082}
peer_node_port=${BENCH_PEER_NODE_PORT:-28083}
results=${BENCH_RESULTS:-$repo/bench/results}
if [[ ${BENCH_QUICK:-0} == 1 ]]; then
	rounds=${BENCH_ROUNDS:-1} duration=${BENCH_DURATION:-3} warmup=${BENCH_WARMUP:-1}
else
	rounds=${BENCH_ROUNDS:-3} duration=${BENCH_DURATION:-10} warmup=${BENCH_WARMUP:-2}
fi
conns=${BENCH_CONNECTIONS:-16 64}
only=${BENCH_ONLY:-}
nginx_workers=${BENCH_NGINX_WORKERS:-}
q=${BENCH_Q:-bravo}
seed_rows=1000
wrk_threads=2
statement_sql=${BENCH_STATEMENT_SQL:-$repo/build/bench/statement-sql}
kinds=(ref_http ref_pg_get ref_pg_list ref_pg_listq ref_pg_list_pool get peer_get list peer_list listq patch post mix)

die() {
	echo "bench: $*" >&2
	exit 1
}
say() { echo "bench: $*" >&2; }

for n in "$rounds" "$duration" "$warmup"; do
	[[ $n =~ ^[0-9]+$ ]] && ((n > 0)) || die "BENCH_ROUNDS, BENCH_DURATION and BENCH_WARMUP must be positive integers"
done
[[ -z $nginx_workers || $nginx_workers =~ ^(auto|[1-9][0-9]?)$ ]] || die "BENCH_NGINX_WORKERS must be auto or a number"
[[ $q =~ ^[A-Za-z0-9]+$ ]] || die "BENCH_Q must be letters and digits (it goes into a URL and a LIKE pattern)"
for t in wrk pgbench nginx psql python3 curl node npm; do
	command -v "$t" >/dev/null || die "$t is missing (scripts/install-deps.sh installs it)"
done
[[ -x $statement_sql ]] || die "$statement_sql is missing: run 'make bench'"
[[ -x build/mailsrv && -x build/mailsrv-tool ]] || die "build/mailsrv is missing: run 'make bench'"
((EUID == 0)) || die "this needs root, like scripts/stack.sh"

work=$STACK_VAR/bench
ref_dir=$STACK_VAR/nginx-ref
raw=$work/raw.jsonl
ref_pidfile=$ref_dir/nginx.pid
ref_conf=$ref_dir/nginx.conf
peer_dir=$repo/bench/peer
peer_pidfile=$STACK_VAR/run/bench-peer.pid
peer_log=$STACK_VAR/log/bench-peer.log

# ---- start and stop -------------------------------------------------------

stack_started=
ref_started=
cur_round=0
cleanup() {
	local rc=$?
	trap '' INT TERM
	stop_peer
	stop_ref
	if [[ -n $stack_started ]]; then
		say "stopping the bench stack"
		scripts/stack.sh stop >&2 || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The reference nginx's pid, only when the recorded process is still ours.
ref_pid() {
	local pid cmd
	[[ -r $ref_pidfile ]] || return 1
	read -r pid <"$ref_pidfile" || return 1
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
	[[ $cmd == *"$ref_conf"* ]] || return 1
	echo "$pid"
}

stop_ref() {
	local pid n=50
	pid=$(ref_pid) || return 0
	kill -QUIT "$pid" 2>/dev/null || true
	while ((n-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	rm -f "$ref_pidfile"
	ref_started=
}

start_ref() {
	local t workers user=${STACK_NGINX_USER:-www-data}
	install -d -m 0755 "$ref_dir" "$ref_dir/tmp" "$STACK_VAR/log"
	t=$(<bench/nginx-ref.conf.template)
	t=${t//@PORT@/$ref_port}
	t=${t//@PID_FILE@/$ref_pidfile}
	t=${t//@LOG_DIR@/$STACK_VAR/log}
	t=${t//@TEMP_DIR@/$ref_dir/tmp}
	t=${t//@USER@/$user}
	workers=${nginx_workers:-$(sed -n 's/^worker_processes \([a-z0-9]*\);.*/\1/p' deploy/nginx.conf.template | head -n 1)}
	t=${t//@WORKERS@/${workers:-auto}}
	printf '%s\n' "$t" >"$ref_conf"
	stop_ref
	if [[ -n $(ss -Hltn "( sport = :$ref_port )" 2>/dev/null) ]]; then
		die "port $ref_port (reference nginx) is in use; choose another with BENCH_REF_PORT"
	fi
	nginx -q -c "$ref_conf" -p "$ref_dir/" -e "$STACK_VAR/log/nginx-ref-error.log" ||
		die "the reference nginx did not start (log: $STACK_VAR/log/nginx-ref-error.log)"
	ref_started=1
}

# ---- the peer -------------------------------------------------------------

# The peer's pid, only when the recorded process is still ours.
peer_pid() {
	local pid cmd
	[[ -r $peer_pidfile ]] || return 1
	read -r pid <"$peer_pidfile" || return 1
	[[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
	[[ $cmd == *"$peer_dir/server.js"* ]] || return 1
	echo "$pid"
}

stop_peer() {
	local pid n=50
	pid=$(peer_pid) || return 0
	kill -TERM "$pid" 2>/dev/null || true
	while ((n-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	rm -f "$peer_pidfile"
}

# Install (once), start the peer as the service's user with the service's
# key and database, and add its server to the stack's nginx.
start_peer() {
	local user=${STACK_SERVICE_USER:-mailsrv} t conf=$STACK_VAR/nginx/nginx.conf n=100
	if [[ ! -d $peer_dir/node_modules ]]; then
		say "installing the peer (npm ci in bench/peer)"
		(cd "$peer_dir" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
			die "npm ci failed in $peer_dir"
	fi
	stop_peer
	for p in "$peer_port" "$peer_node_port"; do
		[[ -z $(ss -Hltn "( sport = :$p )" 2>/dev/null) ]] ||
			die "port $p (the peer) is in use; choose others with BENCH_PEER_PORT, BENCH_PEER_NODE_PORT"
	done
	install -m 0640 -o "$user" /dev/null "$peer_log"
	# A background job of this script (cleanup stops it by pid).
	(cd "$peer_dir" && exec setpriv --reuid="$user" --regid="$(id -gn "$user")" --init-groups \
		env -i PATH="$PATH" NODE_ENV=production \
		PEER_HOST=127.0.0.1 PEER_PORT="$peer_node_port" PEER_PROCESSES="$MAILSRV_PROCESSES" PEER_POOL="$pool" \
		PEER_JWT_KEY_FILE="$MAILSRV_JWT_KEY_FILE" MAILSRV_JWT_ISSUER="${MAILSRV_JWT_ISSUER:-}" \
		MAILSRV_JWT_AUDIENCE="${MAILSRV_JWT_AUDIENCE:-}" MAILSRV_JWT_MAX_TTL="${MAILSRV_JWT_MAX_TTL:-86400}" \
		PGHOST="$STACK_PG_SOCKET_DIR" PGPORT="$STACK_PG_PORT" PGDATABASE=mailsrv PGUSER=mailsrv_app \
		node "$peer_dir/server.js" >>"$peer_log" 2>&1 </dev/null &
		echo $! >"$peer_pidfile")
	# setpriv and env each exec the next: the recorded pid is node's
	while ((n-- > 0)) && [[ -z $(ss -Hltn "( sport = :$peer_node_port )" 2>/dev/null) ]]; do
		kill -0 "$(<"$peer_pidfile")" 2>/dev/null || { cat "$peer_log" >&2; die "the peer did not start (log: $peer_log)"; }
		sleep 0.1
	done
	peer_pid >/dev/null || die "the peer's pid file does not name the peer"

	[[ -n $(ss -Hltn "( sport = :$peer_node_port )" 2>/dev/null) ]] ||
		die "the peer does not listen on $peer_node_port (log: $peer_log)"
	t=$(<"$peer_dir/nginx-peer.conf.template")
	t=${t//@PORT@/$peer_port}
	t=${t//@PEER_PORT@/$peer_node_port}
	t=${t//@CONF_DIR@/$STACK_VAR/nginx}
	t=${t//@ACCESS_LOG@/$STACK_VAR/log/nginx-access.log}
	t=${t//@API_BURST@/$STACK_NGINX_API_BURST}
	t=${t//@CONN_LIMIT@/$STACK_NGINX_CONN_LIMIT}
	# into the http{} block: before the file's last closing brace
	python3 - "$conf" "$t" <<'PY'
import sys
path, block = sys.argv[1], sys.argv[2]
text = open(path).read()
end = text.rstrip().rfind("}")
if end < 0 or "mailsrv_bench_peer" in text:
    sys.exit("bench: cannot add the peer's server to " + path)
open(path, "w").write(text[:end] + block + "\n" + text[end:])
PY
	nginx -q -t -c "$conf" -p "$STACK_VAR/nginx/" -e "$STACK_VAR/log/nginx-error.log" ||
		die "nginx refused the peer's server"
	kill -HUP "$(head -n 1 "$STACK_VAR/nginx/nginx.pid")"
	n=50
	while ((n-- > 0)) && [[ -z $(ss -Hltn "( sport = :$peer_port )" 2>/dev/null) ]]; do sleep 0.1; done
	[[ -n $(ss -Hltn "( sport = :$peer_port )" 2>/dev/null) ]] || die "nginx does not listen on $peer_port"
}

# The peer must answer what the service answers: one server and one page,
# compared as JSON. A difference stops the run.
check_peer() {
	local path a b
	for path in /api/v1/mail-servers/7 "/api/v1/mail-servers?limit=50&sort=name"; do
		a=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$STACK_HTTP_PORT$path") ||
			die "the service did not answer $path"
		b=$(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$peer_port$path") ||
			die "the peer did not answer $path (log: $peer_log)"
		python3 - "$a" "$b" "$path" <<'PY' || die "the peer's answer differs from the service's"
import json, sys
a, b, path = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
if a != b:
    print("bench: %s: service and peer differ" % path, file=sys.stderr)
    print("service: " + json.dumps(a, sort_keys=True)[:2000], file=sys.stderr)
    print("peer:    " + json.dumps(b, sort_keys=True)[:2000], file=sys.stderr)
    sys.exit(1)
if list(a.keys()) != list(b.keys()):
    sys.exit("bench: %s: the fields come in another order" % path)
PY
	done
	code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$peer_port/api/v1/mail-servers/1")
	[[ $code == 401 ]] || die "the peer answered $code without a token, not 401"
	say "the peer answers the same JSON as the service"
}

# ---- database -------------------------------------------------------------

psql_super() {
	(cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h "$STACK_PG_SOCKET_DIR" \
		-p "$STACK_PG_PORT" -d mailsrv "$@")
}

# 1,000 servers, ids 1..1000 (a fresh identity), one domain word of ten per
# row: a search for one of them (BENCH_Q) matches 100 rows in each of name,
# server, sender_name and sender_email. No stored secrets: GET never
# decrypts anything, so the seed needs none.
seed() {
	psql_super >/dev/null <<SQL
SET client_min_messages = warning;
TRUNCATE mail_server RESTART IDENTITY CASCADE;
INSERT INTO mail_server (name, server, port, sender_name, sender_email, is_default,
                         enable_ssl, auth_type, username)
SELECT format('%s relay %s', initcap(d), lpad(i::text, 4, '0')),
       format('smtp%s.%s.example.com', i, d),
       CASE WHEN i % 3 = 0 THEN 465 ELSE 587 END,
       format('Console %s', d),
       format('alerts%s@%s.example.com', i, d),
       i = 1, true, 'basic', format('user%s', i)
  FROM generate_series(1, $seed_rows) AS i,
       LATERAL (SELECT (ARRAY['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot',
                              'golf', 'hotel', 'india', 'juliett'])[1 + i % 10] AS d) AS w;
SQL
	restore
}

# After writes: drop what POST created, vacuum, so that every measurement
# sees the same 1,000 rows and a clean visibility map.
restore() {
	psql_super >/dev/null <<SQL
DELETE FROM mail_server WHERE id > $seed_rows;
SQL
	psql_super -c 'VACUUM ANALYZE mail_server' >/dev/null
}

# pgbench scripts from the service's own statements, with their parameters
# as pgbench variables (-M prepared sends them as parameters, as the service
# does: the listing is planned for its values on every execution, and that
# is part of its cost). One exception: the listing's pattern is NULL without
# q, and a pgbench variable cannot be NULL, so that NULL is written into the
# text (the service's plan for a NULL pattern folds the same constant).
write_pgbench_scripts() {
	local get list
	# pgbench takes every ":word" for a variable, even inside a string
	# literal: a to_char() format "HH24:MI:SS" is written HH24":"MI":"SS,
	# which to_char reads as the same literal colons.
	get=$("$statement_sql" ms_get | sed 's/:MI:SS/":"MI":"SS/g') || die "no ms_get statement"
	list=$("$statement_sql" ms_list_name_asc | sed 's/:MI:SS/":"MI":"SS/g') ||
		die "no ms_list_name_asc statement"
	{
		echo "\\set id random(1, $seed_rows)"
		printf '%s;\n' "$(sed -E 's/\$1([^0-9]|$)/:id\1/g' <<<"$get")"
	} >"$work/pg_get.sql"
	printf '%s;\n' "$(sed -E 's/\$1([^0-9]|$)/NULL\1/g; s/\$2([^0-9]|$)/:lim\1/g; s/\$3([^0-9]|$)/:off\1/g' <<<"$list")" \
		>"$work/pg_list.sql"
	printf '%s;\n' "$(sed -E 's/\$1([^0-9]|$)/:pattern\1/g; s/\$2([^0-9]|$)/:lim\1/g; s/\$3([^0-9]|$)/:off\1/g' <<<"$list")" \
		>"$work/pg_listq.sql"
}

# ---- measurements ---------------------------------------------------------

# record ROUND KIND C JSON: one line of raw.jsonl.
record() {
	printf '{"round":%d,"kind":"%s","c":%d,"result":%s}\n' "$1" "$2" "$3" "$4" >>"$raw"
}

# run_wrk KIND C SECONDS URL SCRIPT [env...]: one wrk run; prints its result line.
run_wrk() {
	local kind=$1 c=$2 secs=$3 url=$4 script=$5 out
	shift 5
	out=$work/wrk-$kind-$c.json
	rm -f "$out"
	# BENCH_RUN makes the names that POST creates unique to this one run
	# of wrk (a warm-up and its measurement must not collide: 409).
	env BENCH_LUA_DIR="$repo/bench/lua" BENCH_TOKEN="$token" BENCH_IDS="$seed_rows" \
		BENCH_RUN="$run_tag-$kind-$c-$cur_round" BENCH_RESULT="$out" "$@" \
		timeout $((secs + 30)) wrk -t "$wrk_threads" -c "$c" -d "${secs}s" --timeout 5s \
		-s "$repo/bench/lua/$script" "$url" >"$work/wrk-$kind-$c.log" 2>&1 ||
		{ cat "$work/wrk-$kind-$c.log" >&2; die "wrk failed ($kind, c=$c)"; }
	[[ -s $out ]] || die "wrk wrote no result ($kind, c=$c; log: $work/wrk-$kind-$c.log)"
	tail -n 1 "$out"
}

# run_pgbench KIND C SECONDS SCRIPT: one pgbench run; prints a result line
# shaped like wrk's (requests, duration, errors, mean latency).
run_pgbench() {
	local kind=$1 c=$2 secs=$3 script=$4 log
	log=$work/pgbench-$kind-$c.log
	# The list's parameters as the service sends them for
	# ?limit=50&sort=name[&q=...]: the pattern is '%' q '%'.
	(cd / && timeout $((secs + 60)) pgbench -n -M prepared -c "$c" -j "$wrk_threads" -T "$secs" \
		-D lim=50 -D off=0 -D pattern="%$q%" \
		-h "$STACK_PG_SOCKET_DIR" -p "$STACK_PG_PORT" -U mailsrv_app -f "$script" mailsrv) \
		>"$log" 2>&1 || { cat "$log" >&2; die "pgbench failed ($kind, c=$c)"; }
	python3 - "$log" "$secs" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
def num(pattern, default=None):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else default
tx = num(r"number of transactions actually processed: (\d+)")
tps = num(r"tps = ([0-9.]+) \(without initial connection time\)")
lat = num(r"latency average = ([0-9.]+) ms")
failed = num(r"number of failed transactions: (\d+)", 0)
if tx == 0 and tps is None:
    tps = 0.0  # none in the time given (a short warm-up on a crowded machine)
if tx is None or tps is None:
    sys.exit("pgbench output not understood: " + sys.argv[1])
print(json.dumps({"requests": int(tx), "duration_us": int(tx / tps * 1e6) if tps else 0,
                  "tps": tps, "errors": {"failed": int(failed)},
                  "latency_us": {"mean": (lat or 0) * 1000}}))
PY
}

# measure ROUND KIND C: warm up, measure, record; restore after writes.
measure() {
	local r=$1 kind=$2 c=$3 api=http://127.0.0.1:$STACK_HTTP_PORT res
	local -a how
	cur_round=$r
	case $kind in
	# The very requests of `get` (path, random id, bearer token), answered
	# by the reference nginx's `return 200`.
	ref_http) how=(wrk "http://127.0.0.1:$ref_port" get.lua) ;;
	ref_pg_get) how=(pgbench "$work/pg_get.sql") ;;
	ref_pg_list) how=(pgbench "$work/pg_list.sql") ;;
	ref_pg_listq) how=(pgbench "$work/pg_listq.sql") ;;
	ref_pg_list_pool) how=(pgbench "$work/pg_list.sql" "$pool") ;;
	get) how=(wrk "$api" get.lua) ;;
	peer_get) how=(wrk "http://127.0.0.1:$peer_port" get.lua) ;;
	list) how=(wrk "$api" list.lua BENCH_LIST_QUERY="limit=50&sort=name") ;;
	peer_list) how=(wrk "http://127.0.0.1:$peer_port" list.lua BENCH_LIST_QUERY="limit=50&sort=name") ;;
	listq) how=(wrk "$api" list.lua BENCH_LIST_QUERY="limit=50&sort=name&q=$q") ;;
	post) how=(wrk "$api" post.lua) ;;
	patch) how=(wrk "$api" patch.lua) ;;
	mix) how=(wrk "$api" mix.lua) ;;
	*) die "unknown kind $kind" ;;
	esac
	if [[ ${how[0]} == wrk ]]; then
		run_wrk "$kind-warmup" "$c" "$warmup" "${how[@]:1}" >/dev/null
		res=$(run_wrk "$kind" "$c" "$duration" "${how[@]:1}")
	else
		# recorded under the run's concurrency c, run with the pool's when given
		run_pgbench "$kind-warmup" "${how[2]:-$c}" "$warmup" "${how[1]}" >/dev/null
		res=$(run_pgbench "$kind" "${how[2]:-$c}" "$duration" "${how[1]}")
	fi
	record "$r" "$kind" "$c" "$res"
	python3 -c 'import json,sys; d=json.loads(sys.argv[1]); r=d["requests"]/(d["duration_us"]/1e6) if d["duration_us"] else 0; print("bench: round %s %-12s c=%-3s %9.0f/s" % (sys.argv[2], sys.argv[3], sys.argv[4], r))' \
		"$res" "$r" "$kind" "$c" >&2
	case $kind in
	post | mix) restore ;;
	patch) psql_super -c 'VACUUM ANALYZE mail_server' >/dev/null ;;
	esac
}

# The worker processes (children of the master) and their memory, as JSON.
worker_memory() {
	local master pids=() p
	master=$(sed -n 1p "$STACK_VAR/run/mailsrv.pid")
	for p in /proc/[0-9]*; do
		[[ -r $p/stat ]] || continue
		# Field 4 of /proc/PID/stat is the parent (after the parenthesized name).
		if [[ $(sed -E 's/^[0-9]+ \(.*\) [A-Za-z] ([0-9]+) .*/\1/' "$p/stat" 2>/dev/null) == "$master" ]]; then
			pids+=("${p#/proc/}")
		fi
	done
	python3 - "$master" "$(peer_pid || echo 0)" "${pids[@]}" <<'PY'
import json, sys
def status(pid):
    d = {}
    try:
        for line in open("/proc/%s/status" % pid):
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                d[k] = int(v.split()[0])
    except OSError:
        pass
    return d
out = {"master": dict(pid=int(sys.argv[1]), **status(sys.argv[1])),
       "workers": [dict(pid=int(p), **status(p)) for p in sys.argv[3:]]}
if sys.argv[2] != "0":
    # the peer: its primary and the processes it forked
    import os
    peer = [sys.argv[2]]
    for p in os.listdir("/proc"):
        try:
            if p.isdigit() and open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[1] == sys.argv[2]:
                peer.append(p)
        except OSError:
            pass
    out["peer"] = [dict(pid=int(p), **status(p)) for p in peer]
print(json.dumps(out))
PY
}

# ---- the run --------------------------------------------------------------

install -d -m 0755 "$results"
say "stack in $STACK_VAR (http 127.0.0.1:$STACK_HTTP_PORT, postgresql $STACK_PG_PORT, reference nginx $ref_port)"
# A stack left behind by an interrupted run is ours (same directory): stop it.
scripts/stack.sh stop >/dev/null 2>&1 || true
stack_started=1
scripts/stack.sh start >&2
eval "$(scripts/stack.sh env)"
pool=$((MAILSRV_PROCESSES * MAILSRV_THREADS))
if [[ -n $nginx_workers ]]; then
	sed -i "s/^worker_processes [a-z0-9]*;/worker_processes $nginx_workers;/" "$STACK_VAR/nginx/nginx.conf"
	nginx -q -t -c "$STACK_VAR/nginx/nginx.conf" -p "$STACK_VAR/nginx/" -e "$STACK_VAR/log/nginx-error.log" ||
		die "nginx refused worker_processes $nginx_workers"
	kill -HUP "$(head -n 1 "$STACK_VAR/nginx/nginx.pid")"
	sleep 1
fi
install -d -m 0755 "$work"
rm -f "$raw"
start_ref

token=$(build/mailsrv-tool token --sub bench --roles administrator --ttl 7200 | tail -n 1)
run_tag=$(date +%s)
write_pgbench_scripts
say "seeding $seed_rows mail servers"
seed
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
	"http://127.0.0.1:$STACK_HTTP_PORT/api/v1/mail-servers/1")
[[ $code == 200 ]] || die "GET /api/v1/mail-servers/1 answered $code, not 200"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ref_port/")
[[ $code == 200 ]] || die "the reference nginx answered $code, not 200"
start_peer
check_peer

# The peer's JIT compiles its hot paths during its first seconds of load:
# one untimed run of each of its reads first, so that the first round does
# not measure V8 warming up (the service, compiled ahead of time, needs none).
run_wrk peer-jit-get 16 3 "http://127.0.0.1:$peer_port" get.lua >/dev/null
run_wrk peer-jit-list 16 3 "http://127.0.0.1:$peer_port" list.lua BENCH_LIST_QUERY="limit=50&sort=name" >/dev/null

started=$(date -u +%FT%TZ)
t0=$SECONDS
for ((r = 1; r <= rounds; r++)); do
	for c in $conns; do
		for k in "${kinds[@]}"; do
			if [[ -n $only && " $only " != *" $k "* ]]; then continue; fi
			measure "$r" "$k" "$c"
		done
	done
done
memory=$(worker_memory)
elapsed=$((SECONDS - t0))

meta=$(python3 - <<PY
import json, os, platform, subprocess
def out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip() or \
               subprocess.run(cmd, capture_output=True, text=True, timeout=10).stderr.strip()
    except Exception:
        return ""
print(json.dumps({
    "started": "$started", "elapsed_s": $elapsed, "rounds": $rounds,
    "duration_s": $duration, "warmup_s": $warmup, "connections": "$conns".split(),
    "quick": "${BENCH_QUICK:-0}" == "1", "q": "$q", "seed_rows": $seed_rows,
    "wrk_threads": $wrk_threads, "pool": $pool,
    "processes": os.environ.get("MAILSRV_PROCESSES"), "threads": os.environ.get("MAILSRV_THREADS"),
    "nginx_workers": "$(sed -n 's/^worker_processes \([a-z0-9]*\);.*/\1/p' "$STACK_VAR/nginx/nginx.conf" | head -n 1)",
    "mailsrv_bin": "${STACK_MAILSRV_BIN:-build/mailsrv}",
    "cpus": os.cpu_count(), "kernel": platform.release(),
    "loadavg_end": open("/proc/loadavg").read().split()[:3],
    "commit": out(["git", "-C", "$repo", "describe", "--always", "--dirty"]),
    "nginx": out(["nginx", "-v"]), "postgres": out(["/usr/lib/postgresql/15/bin/postgres", "--version"]),
    "wrk": out(["wrk", "-v"]).splitlines()[0] if out(["wrk", "-v"]) else "",
}))
PY
)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
python3 bench/summarize.py "$raw" "$meta" "$memory" "$results/latest.json" "$results/latest.txt"
cp "$raw" "$results/latest.raw.jsonl"
cp "$results/latest.json" "$results/$stamp.json"
cp "$results/latest.txt" "$results/$stamp.txt"
cat "$results/latest.txt"
say "written: $results/latest.txt, $results/latest.json (and $stamp.*)"
