#!/usr/bin/env bash
# deploy_check.sh - the production files in deploy/ are valid as written:
#   - the systemd units pass `systemd-analyze verify` (no running systemd
#     needed), checked on copies whose ExecStart= points at the built
#     binaries (build/), since /usr/local/bin has none here; a copy with a
#     mistake must fail it, so the check can fail;
#   - the socket unit gives the socket to the service's user and nginx's
#     group alone, the service takes it, restarts on failure, keeps its
#     hardening and reads /etc/mailsrv/mailsrv.env;
#   - deploy/mailsrv.env.example names every setting the service reads;
#   - deploy/render-nginx.sh renders the host's TLS site (with and without
#     CORS), the load balancer's site and the local stack's nginx.conf, with
#     a self-signed certificate made here, and `nginx -t` accepts each; a
#     value that could add a directive is refused; the API's documentation
#     is served from DOCS_DIR under its own Content-Security-Policy.
# One line per check, then "deploy: N passed, M failed"; exit 1 on a failure.
#
#   tests/deploy_check.sh        (after make all; from anywhere)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pass=0 fail=0
work=$(mktemp -d /tmp/mailsrv-deploy-check.XXXXXX)
trap 'rm -rf -- "$work"' EXIT

ok() {
	pass=$((pass + 1))
	printf '   ok    %s\n' "$1"
}
bad() {
	fail=$((fail + 1))
	printf '   FAIL  %s\n' "$1"
	[[ -z ${2:-} ]] || printf '%s\n' "$2" | head -n 20 | sed 's/^/         | /'
}
check() { # NAME CMD...: CMD succeeds
	local name=$1 outp
	shift
	if outp=$("$@" 2>&1); then ok "$name"; else bad "$name" "$outp"; fi
}

# ---- systemd units ------------------------------------------------------------
units=(mailsrv.socket mailsrv.service mailsrv-audit-prune.service mailsrv-audit-prune.timer)
mkdir -p "$work/units"
for u in "${units[@]}"; do
	sed "s|/usr/local/bin/|$repo/build/|g" "$repo/deploy/$u" >"$work/units/$u"
done
# verify_units DIR: systemd-analyze verify of every unit there; success only
# with exit 0 and nothing said (an unknown key is only a warning).
verify_units() {
	local outp rc
	outp=$(cd "$1" && systemd-analyze verify "${units[@]/#/$1/}" 2>&1)
	rc=$?
	if ((rc != 0)) || [[ -n $outp ]]; then
		printf '%s\n' "$outp"
		return 1
	fi
}
if command -v systemd-analyze >/dev/null; then
	for b in mailsrv mailsrv-tool; do
		[[ -x $repo/build/$b ]] || bad "build/$b exists (make all first)"
	done
	check "systemd-analyze verify: ${units[*]}" verify_units "$work/units"
	cp -r "$work/units" "$work/broken"
	sed -i 's/^SocketMode=/SocketMod=/' "$work/broken/mailsrv.socket"
	if verify_units "$work/broken" >/dev/null 2>&1; then
		bad "systemd-analyze verify rejects a unit with a misspelt key"
	else
		ok "systemd-analyze verify rejects a unit with a misspelt key"
	fi
else
	bad "systemd-analyze is installed (Debian's systemd package, scripts/install-deps.sh)"
fi

has() { # FILE LINE...: every LINE is a line of FILE
	local f=$1 l missing=
	shift
	for l in "$@"; do grep -qxF -- "$l" "$f" || missing+="$l"$'\n'; done
	[[ -z $missing ]] || { printf 'missing from %s:\n%s' "${f#"$repo"/}" "$missing"; return 1; }
}
lacks() { # FILE REGEX
	! grep -nE -- "$2" "$1"
}
check "mailsrv.socket: unix socket for the service's user and nginx's group only" \
	has "$repo/deploy/mailsrv.socket" ListenStream=/run/mailsrv/mailsrv.sock \
	SocketUser=mailsrv SocketGroup=mailsrv-sock SocketMode=0660 Service=mailsrv.service Accept=no
check "mailsrv.socket: no network listener" lacks "$repo/deploy/mailsrv.socket" '^Listen[A-Za-z]*=[^/]'
check "mailsrv.service: takes the socket, restarts on failure, reads mailsrv.env" \
	has "$repo/deploy/mailsrv.service" Requires=mailsrv.socket User=mailsrv Restart=on-failure \
	EnvironmentFile=/etc/mailsrv/mailsrv.env ExecStart=/usr/local/bin/mailsrv
check "mailsrv.service: hardening" \
	has "$repo/deploy/mailsrv.service" NoNewPrivileges=yes CapabilityBoundingSet= \
	ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes LimitCORE=0 \
	"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" MemoryDenyWriteExecute=yes UMask=0077
check "mailsrv.service: no RuntimeDirectory= (its removal would take the socket)" \
	lacks "$repo/deploy/mailsrv.service" '^RuntimeDirectory'

# ---- the settings file ----------------------------------------------------------
env_example=$repo/deploy/mailsrv.env.example
settings_listed() {
	local read_ listed missing
	# What the service reads: the names in src/ (failpoints: the test build's).
	read_=$(grep -ho '\(env_or\|env_int\|getenv\)("MAILSRV_[A-Z0-9_]*"' "$repo"/src/*.c |
		grep -o 'MAILSRV_[A-Z0-9_]*' | grep -vx MAILSRV_FAILPOINT_DIR | sort -u)
	[[ -n $read_ ]] || { echo "found no setting in src/"; return 1; }
	listed=$(sed -n 's/^#\{0,1\}\(MAILSRV_[A-Z0-9_]*\)=.*/\1/p' "$env_example" | sort -u)
	missing=$(comm -23 <(printf '%s\n' "$read_") <(printf '%s\n' "$listed"))
	[[ -z $missing ]] || { printf 'not in mailsrv.env.example: %s\n' $missing; return 1; }
}
check "mailsrv.env.example lists every setting the service reads" settings_listed
check "mailsrv.env.example: MAILSRV_SOCKET is mailsrv.socket's ListenStream=" \
	has "$env_example" MAILSRV_SOCKET=/run/mailsrv/mailsrv.sock

# ---- nginx -----------------------------------------------------------------------
render=$repo/deploy/render-nginx.sh
cert=$work/tls/cert.pem key=$work/tls/key.pem
mkdir -p "$work/tls" "$work/tmp"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=api.test -addext subjectAltName=DNS:api.test \
	-keyout "$key" -out "$cert" >"$work/openssl.log" 2>&1; then
	bad "a self-signed test certificate" "$(cat "$work/openssl.log")"
fi
# nginx_t NAME SITE: nginx -t on a minimal nginx.conf whose http{} includes SITE
# (as Debian's nginx.conf includes sites-enabled/*).
nginx_t() {
	local d=$work/$1
	cat >"$d/nginx.conf" <<EOF
worker_processes 1;
pid "$d/nginx.pid";
events {}
http {
    client_body_temp_path "$work/tmp/client_body";
    fastcgi_temp_path "$work/tmp/fastcgi";
    proxy_temp_path "$work/tmp/proxy";
    scgi_temp_path "$work/tmp/scgi";
    uwsgi_temp_path "$work/tmp/uwsgi";
    include "$2";
}
EOF
	nginx -t -q -c "$d/nginx.conf" -p "$d/" -e "$d/error.log"
}
host_vars=(SERVER_NAME=api.test TLS_CERT="$cert" TLS_KEY="$key" ACCESS_LOG="$work/access.log")
check "render host site (CORS for the console, behind balancers)" \
	"$render" host "$work/host" "${host_vars[@]}" CONSOLE_ORIGIN=https://console.test \
	REAL_IP_FROM="10.0.0.5 10.0.0.6"
check "nginx -t: host site (CORS, real IP)" nginx_t host "$work/host/mailsrv-site.conf"
check "host site: TLS 1.2+ and HSTS" \
	has "$work/host/mailsrv-site.conf" "    ssl_protocols TLSv1.2 TLSv1.3;"
check "host site: HSTS in the shared headers" \
	has "$work/host/mailsrv-headers.conf" 'add_header Strict-Transport-Security "max-age=63072000" always;'
check "render host site (console on the API's origin: no CORS)" \
	"$render" host "$work/host-plain" "${host_vars[@]}"
check "nginx -t: host site without CORS" nginx_t host-plain "$work/host-plain/mailsrv-site.conf"
check "host site without CORS has no CORS header" lacks "$work/host-plain/mailsrv-headers.conf" 'Access-Control'
check "host site: the documentation from the default DOCS_DIR" \
	has "$work/host-plain/mailsrv-server.conf" \
	'    alias "/usr/local/share/mailsrv/api-docs/openapi.yaml";' \
	'    alias "/usr/local/share/mailsrv/api-docs/openapi.json";' \
	'    alias "/usr/local/share/mailsrv/api-docs/ui/";'
check "documentation page: its own policy, this origin only; the API's answers: none at all" \
	has "$work/host-plain/mailsrv-http.conf" \
	"    default \"default-src 'none'; frame-ancestors 'none'\";" \
	"    ~^/api/docs/ \"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\";"
check "render load balancer site" \
	"$render" lb "$work/lb" SERVER_NAME=api.test TLS_CERT="$cert" TLS_KEY="$key" \
	UPSTREAM_CA="$cert" HOSTS="10.0.0.11:443 10.0.0.12:443" ACCESS_LOG="$work/lb.log"
check "nginx -t: load balancer site" nginx_t lb "$work/lb/mailsrv-lb.conf"
check "load balancer: retries only errors, timeouts and 503s, never non-idempotent requests" \
	has "$work/lb/mailsrv-lb.conf" "        proxy_next_upstream error timeout http_503;"
check "load balancer: non_idempotent never set" lacks "$work/lb/mailsrv-lb.conf" 'non_idempotent;'
mkdir -p "$work/local/tmp"
check "render the local stack's nginx.conf" \
	"$render" local "$work/local" PID_FILE="$work/local/nginx.pid" LOG_DIR="$work/local" \
	TEMP_DIR="$work/local/tmp" HTTP_PORT=18999 SOCKET=/run/mailsrv/mailsrv.sock USER=www-data \
	API_RATE=20r/s API_BURST=100 SENSITIVE_RATE=1r/s SENSITIVE_BURST=10 CONN_LIMIT=50 \
	METRICS_ALLOW="127.0.0.1 ::1" DOCS_DIR="$work/local/api-docs"
check "nginx -t: local stack" nginx -t -q -c "$work/local/nginx.conf" -p "$work/local/" \
	-e "$work/local/error.log"
check "the limits are written once (client_max_body_size in one template)" \
	test "$(grep -l 'client_max_body_size 64k' "$repo"/deploy/nginx.conf.template \
		"$repo"/deploy/nginx/mailsrv-site.conf.in "$repo"/deploy/nginx/mailsrv-server.conf.in | wc -l)" = 1
refuses() { ! "$@" >/dev/null 2>&1; }
check "render refuses a value that would add a directive" \
	refuses "$render" host "$work/evil" "${host_vars[@]}" 'SERVER_NAME=api.test; include /etc/passwd'
check "render refuses a DOCS_DIR that is not an absolute path" \
	refuses "$render" host "$work/evil3" "${host_vars[@]}" 'DOCS_DIR=docs;'
check "render refuses a missing certificate setting" \
	refuses "$render" host "$work/evil2" SERVER_NAME=api.test TLS_KEY="$key"

echo "deploy: $pass passed, $fail failed"
((fail == 0))
