#!/usr/bin/env bash
# npm-ci.sh - install the npm packages that DIR/package-lock.json pins into
# DIR/node_modules, exactly (npm ci), and only when they are missing or the
# lock file changed since the last install.
#
#   scripts/npm-ci.sh DIR
#
# Install scripts are not run (--ignore-scripts): the packages we use are
# files to copy (swagger-ui-dist) or plain JavaScript (puppeteer-core, which
# would otherwise want to download a browser; the tests use Debian's
# chromium). One of swagger-ui-dist's dependencies has an install script that
# reports the installation over the network; it never runs. Needs node and
# npm (scripts/install-deps.sh) and the npm registry.
set -euo pipefail

die() {
	echo "npm-ci: $*" >&2
	exit 1
}
(($# == 1)) || die "usage: scripts/npm-ci.sh DIR"
dir=$(cd "$1" && pwd) || die "no directory $1"
[[ -r $dir/package.json && -r $dir/package-lock.json ]] ||
	die "$dir has no package.json and package-lock.json"
stamp=$dir/node_modules/.mailsrv-installed-lock
if [[ -r $stamp ]] && cmp -s "$stamp" "$dir/package-lock.json"; then
	exit 0
fi
command -v npm >/dev/null 2>&1 || die "npm is not installed (scripts/install-deps.sh)"
export NO_UPDATE_NOTIFIER=1 SCARF_ANALYTICS=false
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
	cat "$log" >&2
	die "npm ci failed in $dir"
fi
cp -- "$dir/package-lock.json" "$stamp"
