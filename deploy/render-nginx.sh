#!/usr/bin/env bash
# render-nginx.sh - render mailsrv's nginx configuration from the templates
# in deploy/ and deploy/nginx/: the one way they are filled in, for
# production and for the local stack alike.
#
#   deploy/render-nginx.sh MODE OUT_DIR [--env FILE] [NAME=value ...]
#
# MODE
#   host   a worker host's HTTPS site: OUT_DIR/mailsrv-site.conf (for
#          /etc/nginx/sites-enabled/, http{} context) and the files it
#          includes (mailsrv-http.conf, mailsrv-server.conf,
#          mailsrv-headers.conf)
#   lb     the front load balancer's site: OUT_DIR/mailsrv-lb.conf
#   local  the local stack's complete nginx.conf and the same included files
#          (scripts/stack.sh runs this; `make run`, `make test`)
# Settings come from FILE (lines NAME=value, optionally double-quoted; #
# comments; never run as shell code; deploy/nginx.env.example) and then from
# NAME=value arguments, which win. The environment is not read.
#
# host and local:
#   SOCKET        the service's FastCGI socket (MAILSRV_SOCKET, the
#                 ListenStream= of mailsrv.socket) [/run/mailsrv/mailsrv.sock]
#   API_RATE, API_BURST  requests per client address on /api/ [20r/s, 100]
#   SENSITIVE_RATE, SENSITIVE_BURST  the tighter limit, on top, of the OAuth
#                 callback and the SMTP test endpoints [1r/s, 10]
#   CONN_LIMIT    requests in progress per client address [50]
#   METRICS_ALLOW addresses or ranges, space-separated, that may read
#                 /metrics; every other client gets a 403 [127.0.0.1 ::1]
#   CONF_DIR      where the included files are installed [OUT_DIR]
#   DOCS_DIR      the API's documentation, static files (scripts/build-docs.sh):
#                 DOCS_DIR/openapi.yaml, openapi.json and ui/, served at
#                 /api/v1/openapi.yaml, /api/v1/openapi.json and /api/docs/
#                 [/usr/local/share/mailsrv/api-docs]
# host:
#   SERVER_NAME   the API's host name, as in MAILSRV_PUBLIC_URL (required)
#   TLS_CERT, TLS_KEY  certificate chain and private key, PEM (required)
#   HTTPS_LISTEN, HTTP_LISTEN  [443, 80]; HTTP only redirects to HTTPS
#   HSTS_MAX_AGE  Strict-Transport-Security max-age, seconds [63072000]
#   CONSOLE_ORIGIN  the console's origin when it is served from another
#                 origin than the API (https://console.example.com): nginx
#                 answers its CORS preflights and allows it, with
#                 credentials, and no other origin; empty: no CORS at all []
#   REAL_IP_FROM  the load balancers' addresses, space-separated: the client
#                 address (for the per-address limits and the logs) is then
#                 taken from their X-Forwarded-For []
#   ACCESS_LOG    [/var/log/nginx/mailsrv-access.log]
# lb:
#   SERVER_NAME, TLS_CERT, TLS_KEY, HTTPS_LISTEN, HTTP_LISTEN  as for host
#   HOSTS         the worker hosts' HTTPS addresses, space-separated
#                 (10.0.0.11:443 10.0.0.12:443) (required)
#   UPSTREAM_CA   the CA bundle that signed the hosts' certificates (required)
#   UPSTREAM_TLS_NAME  the name the hosts' certificates carry [SERVER_NAME]
#   MAX_FAILS, FAIL_TIMEOUT  passive health: failures within FAIL_TIMEOUT
#                 that take a host out for FAIL_TIMEOUT [2, 5s]
#   ACCESS_LOG    [/var/log/nginx/mailsrv-lb-access.log]
# local (no defaults; scripts/stack.sh passes them all):
#   HTTP_PORT (on 127.0.0.1), USER (nginx's workers), PID_FILE, LOG_DIR,
#   TEMP_DIR, and the host and local settings above.
#
# Every value is checked against what it may be (a path, a port, a rate, a
# name, an address), so none can end a directive or add one. Files are
# written whole (a temporary file, then renamed). Check the result with
# `nginx -t` before reloading.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() {
	echo "render-nginx: $*" >&2
	exit 1
}
usage() {
	sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

(($# >= 2)) || usage
mode=$1
out=$2
shift 2
case $mode in host | lb | local) ;; *) usage ;; esac
[[ $out == /* ]] || die "OUT_DIR must be an absolute path (got '$out')"

declare -A v=()
set_var() { # NAME=value
	local name=${1%%=*} value=${1#*=}
	[[ $1 == *=* && $name =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "'$1' is not NAME=value"
	v[$name]=$value
}
read_env() { # FILE
	local line n=0
	[[ -r $1 ]] || die "cannot read $1"
	while IFS= read -r line || [[ -n $line ]]; do
		n=$((n + 1))
		line=${line#"${line%%[![:space:]]*}"}
		[[ -z $line || $line == '#'* ]] && continue
		[[ $line =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]] || die "$1:$n: not NAME=value"
		local name=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
		if [[ $value =~ ^\"(.*)\"$ ]]; then value=${BASH_REMATCH[1]}; fi
		v[$name]=$value
	done <"$1"
}
while (($#)); do
	case $1 in
	--env) read_env "${2:?--env needs a file}"; shift 2 ;;
	*) set_var "$1"; shift ;;
	esac
done

# default NAME VALUE: VALUE unless NAME was given.
default() { [[ -n ${v[$1]+set} ]] || v[$1]=$2; }
# need NAME REGEX WHAT: NAME is set and matches.
need() {
	[[ -n ${v[$1]:-} ]] || die "$1 is required for '$mode' ($3)"
	[[ ${v[$1]} =~ $2 ]] || die "$1='${v[$1]}' is not $3"
}
# list_of NAME REGEX WHAT: a space-separated list (may be empty) of such words.
list_of() {
	local w
	for w in ${v[$1]:-}; do
		[[ $w =~ $2 ]] || die "$1: '$w' is not $3"
	done
}
re_path='^/[A-Za-z0-9._/+-]+$'
re_rate='^[1-9][0-9]*r/[sm]$'
re_num='^[0-9]+$'
re_listen='^(([0-9.]+|\[[0-9A-Fa-f:]+\]):)?[0-9]+$'
re_name='^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$'
re_addr='^[0-9A-Fa-f.:]+(/[0-9]{1,3})?$'

default CONF_DIR "$out"
need CONF_DIR "$re_path" "an absolute path"

if [[ $mode == host || $mode == local ]]; then
	if [[ $mode == host ]]; then
		default SOCKET /run/mailsrv/mailsrv.sock
		default API_RATE 20r/s
		default API_BURST 100
		default SENSITIVE_RATE 1r/s
		default SENSITIVE_BURST 10
		default CONN_LIMIT 50
		default METRICS_ALLOW "127.0.0.1 ::1"
		default ACCESS_LOG /var/log/nginx/mailsrv-access.log
		default DOCS_DIR /usr/local/share/mailsrv/api-docs
	else
		need LOG_DIR "$re_path" "an absolute path"
		v[ACCESS_LOG]=${v[LOG_DIR]}/nginx-access.log
	fi
	need SOCKET "$re_path" "an absolute path"
	need API_RATE "$re_rate" "a rate like 20r/s"
	need SENSITIVE_RATE "$re_rate" "a rate like 1r/s"
	need API_BURST "$re_num" "a number"
	need SENSITIVE_BURST "$re_num" "a number"
	need CONN_LIMIT "$re_num" "a number"
	((v[CONN_LIMIT] >= 1 && v[CONN_LIMIT] <= 65535)) || die "CONN_LIMIT must be 1-65535"
	need ACCESS_LOG "$re_path" "an absolute path"
	need DOCS_DIR "$re_path" "an absolute path"
	list_of METRICS_ALLOW "$re_addr" "an address or range"
	allow=
	for a in ${v[METRICS_ALLOW]:-}; do allow+="allow $a; "; done
	[[ -n $allow ]] || die "METRICS_ALLOW is empty: name at least one address"
	v[METRICS_ALLOW]=$allow
fi
if [[ $mode == host || $mode == lb ]]; then
	default HTTPS_LISTEN 443
	default HTTP_LISTEN 80
	need SERVER_NAME "$re_name" "a host name"
	need TLS_CERT "$re_path" "an absolute path"
	need TLS_KEY "$re_path" "an absolute path"
	need HTTPS_LISTEN "$re_listen" "a port or address:port"
	need HTTP_LISTEN "$re_listen" "a port or address:port"
fi

site_headers=
if [[ $mode == host ]]; then
	default HSTS_MAX_AGE 63072000
	need HSTS_MAX_AGE "$re_num" "a number of seconds"
	site_headers+="# HTTPS only, for HSTS_MAX_AGE seconds after the last answer."$'\n'
	site_headers+="add_header Strict-Transport-Security \"max-age=${v[HSTS_MAX_AGE]}\" always;"$'\n'
	# CORS for a console served from another origin: that origin alone, with
	# credentials (the OAuth flow's cookie); the variables are empty (no
	# header) for any other origin and outside a preflight.
	cors_maps= cors_preflight=
	if [[ -n ${v[CONSOLE_ORIGIN]:-} ]]; then
		need CONSOLE_ORIGIN '^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]+)?$' \
			"an origin like https://console.example.com"
		cors_maps=$(
			cat <<EOF

# CORS: the console at CONSOLE_ORIGIN calls the API from the browser with
# credentials. Only that origin is named back; any other gets no CORS
# header, so its browser keeps the answer from it.
map \$http_origin \$mailsrv_cors_origin {
    default "";
    "${v[CONSOLE_ORIGIN]}" \$http_origin;
}
map \$mailsrv_cors_origin \$mailsrv_cors_credentials {
    "" "";
    default "true";
}
map \$mailsrv_cors_origin \$mailsrv_cors_expose {
    "" "";
    default "ETag, Location, Retry-After, X-Request-Id";
}
# A preflight (OPTIONS with Access-Control-Request-Method) from that origin:
# answered by nginx itself, never passed to the service.
map "\$request_method:\$http_access_control_request_method:\$mailsrv_cors_origin" \$mailsrv_cors_preflight {
    default 0;
    "~^OPTIONS:.+:.+\$" 1;
}
map \$mailsrv_cors_preflight \$mailsrv_cors_methods {
    1 "GET, HEAD, POST, PUT, PATCH, DELETE";
    default "";
}
map \$mailsrv_cors_preflight \$mailsrv_cors_allow_headers {
    1 "Authorization, Content-Type, If-Match, If-None-Match";
    default "";
}
map \$mailsrv_cors_preflight \$mailsrv_cors_max_age {
    1 "600";
    default "";
}
EOF
		)$'\n'
		cors_preflight=$'\n'"    # CORS preflights from the console's origin (mailsrv_cors_* maps above)."$'\n'
		cors_preflight+=$'    if ($mailsrv_cors_preflight) {\n        return 204;\n    }\n'
		site_headers+=$(
			cat <<'EOF'
# CORS (see the maps in mailsrv-site.conf): empty values add no header.
add_header Access-Control-Allow-Origin $mailsrv_cors_origin always;
add_header Access-Control-Allow-Credentials $mailsrv_cors_credentials always;
add_header Access-Control-Expose-Headers $mailsrv_cors_expose always;
add_header Access-Control-Allow-Methods $mailsrv_cors_methods always;
add_header Access-Control-Allow-Headers $mailsrv_cors_allow_headers always;
add_header Access-Control-Max-Age $mailsrv_cors_max_age always;
add_header Vary Origin always;
EOF
		)$'\n'
	fi
	v[CORS_MAPS]=$cors_maps
	v[CORS_PREFLIGHT]=$cors_preflight
	list_of REAL_IP_FROM "$re_addr" "an address or range"
	real_ip=
	if [[ -n ${v[REAL_IP_FROM]:-} ]]; then
		real_ip=$'\n'"    # Behind the load balancers: the client's address from their header."$'\n'
		for a in ${v[REAL_IP_FROM]}; do real_ip+="    set_real_ip_from $a;"$'\n'; done
		real_ip+="    real_ip_header X-Forwarded-For;"$'\n'
	fi
	v[REAL_IP]=$real_ip
fi
v[SITE_HEADERS]=$site_headers

if [[ $mode == lb ]]; then
	default UPSTREAM_TLS_NAME "${v[SERVER_NAME]}"
	default MAX_FAILS 2
	default FAIL_TIMEOUT 5s
	default ACCESS_LOG /var/log/nginx/mailsrv-lb-access.log
	need UPSTREAM_CA "$re_path" "an absolute path"
	need UPSTREAM_TLS_NAME "$re_name" "a host name"
	need MAX_FAILS "$re_num" "a number"
	need FAIL_TIMEOUT '^[0-9]+(ms|s|m)?$' "a time like 5s"
	need ACCESS_LOG "$re_path" "an absolute path"
	[[ -n ${v[HOSTS]:-} ]] || die "HOSTS is required for 'lb' (the worker hosts' address:port)"
	list_of HOSTS '^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\]):[0-9]+$' "a host:port"
	servers=
	for h in ${v[HOSTS]}; do
		servers+="    server $h max_fails=${v[MAX_FAILS]} fail_timeout=${v[FAIL_TIMEOUT]};"$'\n'
	done
	v[UPSTREAM_SERVERS]=$servers
fi

if [[ $mode == local ]]; then
	need HTTP_PORT "$re_num" "a port"
	need USER '^[a-z_][a-z0-9_-]*$' "a user name"
	need PID_FILE "$re_path" "an absolute path"
	need TEMP_DIR "$re_path" "an absolute path"
fi

# render TEMPLATE OUTPUT: every @NAME@ replaced; one left over is an error.
render() {
	local t name
	t=$(<"$1")
	for name in "${!v[@]}"; do
		t=${t//"@$name@"/"${v[$name]}"}
	done
	if [[ $t =~ @[A-Z_]+@ ]]; then
		die "$1: ${BASH_REMATCH[0]} is not set (see deploy/render-nginx.sh's header)"
	fi
	printf '%s\n' "$t" >"$out/.$2.new"
	mv -f -- "$out/.$2.new" "$out/$2"
}

install -d -m 0755 -- "$out"
case $mode in
local)
	render "$here/nginx.conf.template" nginx.conf
	;;
host)
	render "$here/nginx/mailsrv-site.conf.in" mailsrv-site.conf
	;;
lb)
	render "$here/nginx/mailsrv-lb.conf.in" mailsrv-lb.conf
	;;
esac
if [[ $mode != lb ]]; then
	render "$here/nginx/mailsrv-http.conf.in" mailsrv-http.conf
	render "$here/nginx/mailsrv-server.conf.in" mailsrv-server.conf
	render "$here/nginx/mailsrv-headers.conf.in" mailsrv-headers.conf
fi
