#!/usr/bin/env bash
# oauth_ca.sh - the test CA and the stand-in OAuth provider's certificate
# (tests/api/oauth_provider.py), made with the openssl CLI.
#
#   tests/oauth_ca.sh [DIR]     DIR defaults to $STACK_VAR/test-ca
#
# Creates, when missing, DIR/ca.pem (the CA certificate: the service trusts
# it through MAILSRV_CA_FILE), DIR/server.pem and DIR/server.key (for
# 127.0.0.1, ::1 and localhost, signed by the CA), and DIR/other-ca.pem, a
# second CA that signed nothing the service trusts (DIR/untrusted.pem and
# .key: for the "certificate not trusted" test). The CA's private key is
# kept only long enough to sign, then deleted. Prints DIR/ca.pem.
# Test material only: nothing here is a secret of any deployment.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-${STACK_VAR:-$repo/var/test}/test-ca}
mkdir -p "$dir"
chmod 0755 "$dir"

# make_pair NAME CA-SUBJECT: a CA certificate and a server certificate
# signed by it; the CA key is removed afterwards.
make_pair() {
	local ca=$1 server=$2 subject=$3 tmp
	tmp=$(mktemp -d)
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 -subj "/CN=$subject" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
	printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" \
		"subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" >"$tmp/ext"
	openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
		-CAcreateserial -out "$tmp/server.pem" -days 3650 -extfile "$tmp/ext" 2>/dev/null
	chmod 0644 "$tmp/ca.pem" "$tmp/server.pem"
	chmod 0600 "$tmp/server.key"
	mv "$tmp/server.key" "$dir/$server.key"
	mv "$tmp/server.pem" "$dir/$server.pem"
	mv "$tmp/ca.pem" "$dir/$ca"
	rm -rf "$tmp"
}

if [[ ! -s $dir/ca.pem || ! -s $dir/server.pem || ! -s $dir/server.key ]]; then
	make_pair ca.pem server "mailsrv test CA"
fi
if [[ ! -s $dir/other-ca.pem || ! -s $dir/untrusted.pem || ! -s $dir/untrusted.key ]]; then
	make_pair other-ca.pem untrusted "mailsrv untrusted test CA"
fi
echo "$dir/ca.pem"
