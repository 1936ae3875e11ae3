#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages that building, running and
# testing the service need, and only those that are missing. Idempotent and
# quiet when everything is there; `make run`, `make start` and `make test` call
# it first, so a fresh Debian 12 machine needs nothing but this repository.
#
# Installing postgresql-15 or nginx on a fresh machine would normally start
# the system cluster (port 5432) and the system nginx (port 80). The stack
# uses neither (scripts/stack.sh runs its own under var/), so while we
# install, a temporary policy-rc.d tells invoke-rc.d not to start services.
set -euo pipefail

packages=(
	build-essential pkg-config binutils
	libfcgi-dev libyajl-dev libcurl4-openssl-dev libssl-dev libpq-dev
	postgresql-15 postgresql-client-15 nginx-light
	libcmocka-dev
	python3-pytest python3-requests python3-jsonschema python3-yaml python3-aiosmtpd
	python3-prometheus-client
	wrk clang clang-format libclang-rt-14-dev valgrind
	openssl curl ca-certificates procps iproute2
	systemd # systemd-analyze verify of the units in deploy/
	chromium # the API documentation page's test (tests/api/test_api_docs.py)
)
# Node (for the OpenAPI tooling) may come from elsewhere than Debian.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	[[ $status == ii* ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if ((EUID != 0)); then
	if command -v sudo >/dev/null 2>&1; then
		exec sudo --preserve-env=DEBIAN_FRONTEND "$0" "$@"
	fi
	echo "install-deps: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\n# temporary, from mailsrv scripts/install-deps.sh\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
