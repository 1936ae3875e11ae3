#!/usr/bin/env bash
# oauth_ca.sh - the test CA and the certificates of the test servers (the
# stand-in OAuth provider, tests/api/oauth_provider.py, and the SMTP test
# servers, tests/api/smtp_server.py), made with the openssl CLI.
#
#   tests/oauth_ca.sh [DIR]     DIR defaults to $STACK_VAR/test-ca
#
# Creates, when missing, in DIR:
#   ca.pem                  the test CA's certificate: the service trusts it
#                           through MAILSRV_CA_FILE
#   server.pem, .key        for 127.0.0.1, ::1 and localhost, signed by the CA
#   wronghost.pem, .key     signed by the CA for wrong.example only (no
#                           127.0.0.1): the "certificate for another host
#                           name" test
#   expired.pem, .key       signed by the CA for 127.0.0.1, ::1 and
#                           localhost, valid 2020-01-01 to 2021-01-01: the
#                           "certificate expired" test
#   other-ca.pem            a second CA that signed nothing the service
#                           trusts, and untrusted.pem, .key (for 127.0.0.1,
#                           signed by it): the "certificate not trusted" test
# Each CA's private key is kept only long enough to sign, then deleted; so
# when any certificate of the test CA is missing, the CA and all its
# certificates are made anew. Prints DIR/ca.pem.
# Test material only: nothing here is a secret of any deployment.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-${STACK_VAR:-$repo/var/test}/test-ca}
mkdir -p "$dir"
chmod 0755 "$dir"

tmp=
trap '[[ -z $tmp ]] || rm -rf "$tmp"' EXIT

LOCAL_SAN="IP:127.0.0.1,IP:::1,DNS:localhost"

# new_ca SUBJECT: a CA key and certificate in $tmp.
new_ca() {
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 -subj "/CN=$1" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	# `openssl ca` (for the dates of the expired certificate) keeps a
	# database and a serial number.
	mkdir "$tmp/db"
	: >"$tmp/db/index.txt"
	openssl rand -hex 16 >"$tmp/db/serial"
}

# leaf NAME CN SAN [START END]: a server certificate $tmp/NAME.pem and key
# signed by $tmp/ca.*; valid for ten years from now, or from START to END
# (openssl's YYYYMMDDHHMMSSZ, any dates, past ones included).
leaf() {
	local name=$1 cn=$2 san=$3 start=${4:-} end=${5:-}
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$tmp/$name.key" -out "$tmp/$name.csr" -subj "/CN=$cn" 2>/dev/null
	cat >"$tmp/ca.cnf" <<-CNF
		[ca]
		default_ca = test_ca
		[test_ca]
		database = $tmp/db/index.txt
		new_certs_dir = $tmp/db
		serial = $tmp/db/serial
		default_md = sha256
		default_days = 3650
		policy = any_name
		unique_subject = no
		copy_extensions = none
		x509_extensions = leaf_ext
		[any_name]
		commonName = supplied
		[leaf_ext]
		basicConstraints = CA:FALSE
		keyUsage = critical,digitalSignature
		extendedKeyUsage = serverAuth
		subjectAltName = $san
	CNF
	local dates=()
	[[ -z $start ]] || dates=(-startdate "$start" -enddate "$end")
	openssl ca -batch -notext -config "$tmp/ca.cnf" -cert "$tmp/ca.pem" \
		-keyfile "$tmp/ca.key" -in "$tmp/$name.csr" -out "$tmp/$name.pem" \
		"${dates[@]}" >/dev/null 2>&1
	chmod 0644 "$tmp/$name.pem"
	chmod 0600 "$tmp/$name.key"
}

# install NAME...: move $tmp/NAME.pem and .key into $dir.
install_leaves() {
	local n
	for n in "$@"; do
		mv "$tmp/$n.key" "$dir/$n.key"
		mv "$tmp/$n.pem" "$dir/$n.pem"
	done
}

have() {
	local f
	for f in "$@"; do [[ -s $dir/$f ]] || return 1; done
}

if ! have ca.pem server.pem server.key wronghost.pem wronghost.key expired.pem expired.key; then
	tmp=$(mktemp -d)
	new_ca "mailsrv test CA"
	leaf server 127.0.0.1 "$LOCAL_SAN"
	leaf wronghost wrong.example "DNS:wrong.example"
	leaf expired 127.0.0.1 "$LOCAL_SAN" 20200101000000Z 20210101000000Z
	rm -f "$tmp/ca.key"
	chmod 0644 "$tmp/ca.pem"
	install_leaves server wronghost expired
	mv "$tmp/ca.pem" "$dir/ca.pem"
	rm -rf "$tmp"
	tmp=
fi
if ! have other-ca.pem untrusted.pem untrusted.key; then
	tmp=$(mktemp -d)
	new_ca "mailsrv untrusted test CA"
	leaf untrusted 127.0.0.1 "$LOCAL_SAN"
	rm -f "$tmp/ca.key"
	chmod 0644 "$tmp/ca.pem"
	install_leaves untrusted
	mv "$tmp/ca.pem" "$dir/other-ca.pem"
	rm -rf "$tmp"
	tmp=
fi
echo "$dir/ca.pem"
