#!/usr/bin/env bash
# openapi_lint.sh - validate openapi/openapi.yaml with Redocly CLI, a real
# OpenAPI 3.1 validator, under the rules of openapi/redocly.yaml (every finding
# is an error; deliberate exceptions are listed in openapi/.redocly.lint-ignore.yaml).
#
# Redocly is installed from the npm registry into tests/.tools/ (gitignored), at
# the pinned version below, only when it is missing. It needs Node.js 20.19+ or
# 22.12+ and npm.
#
# Prints "openapi lint: ok" or, after the linter's findings, "openapi lint: FAILED"
# and exits 0 or 1 accordingly.
set -u

REDOCLY_VERSION=2.77.0

top=$(cd "$(dirname "$0")/.." && pwd)
tools="$top/tests/.tools"
bin="$tools/node_modules/.bin/redocly"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

fail() {
	[ $# -gt 0 ] && echo "openapi lint: $*" >&2
	[ -s "$log" ] && cat "$log" >&2
	echo "openapi lint: FAILED"
	exit 1
}

# Keep the linter from calling home and from printing banners; it only reads
# local files.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_NOTIFICATIONS=true NO_UPDATE_NOTIFIER=1

installed_version() {
	[ -x "$bin" ] || return 1
	node -e 'process.stdout.write(require(process.argv[1]).version)' \
		"$tools/node_modules/@redocly/cli/package.json" 2>/dev/null
}

command -v node >/dev/null 2>&1 || fail "node is not installed"
if [ "$(installed_version)" != "$REDOCLY_VERSION" ]; then
	command -v npm >/dev/null 2>&1 || fail "npm is not installed"
	mkdir -p "$tools"
	npm install --prefix "$tools" --no-audit --no-fund --loglevel=error \
		"@redocly/cli@$REDOCLY_VERSION" >"$log" 2>&1 ||
		fail "could not install @redocly/cli@$REDOCLY_VERSION"
	[ "$(installed_version)" = "$REDOCLY_VERSION" ] ||
		fail "@redocly/cli@$REDOCLY_VERSION is not usable after installing it"
fi

cd "$top/openapi" || fail "no openapi/ directory"
if "$bin" lint --config redocly.yaml --format=stylish openapi.yaml >"$log" 2>&1; then
	echo "openapi lint: ok"
	exit 0
fi
fail
