#!/usr/bin/env bash
# install-keys.sh - the service's user, its socket group and its key files:
# the "User and keys" step of deploy/README.md. scripts/stack.sh runs this very
# script for the local stack, so `make run` and `make test` start the service
# with what the documentation makes.
#
#   deploy/install-keys.sh [options] [KEY_DIR]      (as root)
#
#   KEY_DIR             where the keys live (default /etc/mailsrv/keys)
#   --user U            the service's user, made a system user without login
#                       and with a group of its own when missing (default mailsrv)
#   --socket-group G    the group of the FastCGI socket (MAILSRV_SOCKET_GROUP):
#                       only the service's user and nginx's user are members
#                       (default mailsrv-sock)
#   --nginx-user N      nginx's worker user, added to G when it exists
#                       (default www-data)
#   --tool PATH         mailsrv-tool (default: mailsrv-tool on PATH, else
#                       /usr/local/bin/mailsrv-tool)
#   --no-hmac           no HS256 secret (RS256/ES256: MAILSRV_JWT_KEY_FILE is the
#                       identity provider's public key, which you put there)
#
# The rule the service enforces (src/crypto.c) for every file holding a
# secret key: owned by the service's user, mode 0600 or 0400. KEY_DIR itself
# is root's, group U, mode 0750: the service reads its keys but cannot
# replace them. Existing keys are kept (a new keyring would make every stored
# secret unreadable); their owner and mode are set to the rule. Idempotent.
# Never prints key material.
set -euo pipefail

user=mailsrv
sock_group=mailsrv-sock
nginx_user=www-data
tool=
hmac=1
key_dir=/etc/mailsrv/keys

die() {
	echo "install-keys: $*" >&2
	exit 1
}
say() { echo "install-keys: $*"; }

while (($#)); do
	case $1 in
	--user) user=${2:?--user needs a value}; shift 2 ;;
	--socket-group) sock_group=${2:?--socket-group needs a value}; shift 2 ;;
	--nginx-user) nginx_user=${2:?--nginx-user needs a value}; shift 2 ;;
	--tool) tool=${2:?--tool needs a value}; shift 2 ;;
	--no-hmac) hmac=0; shift ;;
	-h | --help) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) key_dir=$1; shift ;;
	esac
done
((EUID == 0)) || die "run this as root (it adds a user and sets owners)"
[[ $key_dir == /* ]] || die "the key directory must be an absolute path (got '$key_dir')"
for n in "$user" "$sock_group" "$nginx_user"; do
	[[ $n =~ ^[a-z_][a-z0-9_-]*$ ]] || die "'$n' is not a user or group name"
done
[[ $user != root ]] || die "the service's user must not be root"
if [[ -z $tool ]]; then
	tool=$(command -v mailsrv-tool || echo /usr/local/bin/mailsrv-tool)
fi
umask 077

# The service's user: a system user without login, home or shell, with a
# group of its own.
if ! getent passwd "$user" >/dev/null; then
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin "$user"
	say "created the system user $user"
fi
# The socket's group: the service's user (to give the socket to it) and
# nginx's user (to connect), nobody else. Not www-data itself: other sockets
# of that group would be open to the service, and the service's socket to
# everything running as www-data's group.
if ! getent group "$sock_group" >/dev/null; then
	groupadd --system "$sock_group"
	say "created the group $sock_group"
fi
in_group() { id -nG "$1" 2>/dev/null | tr ' ' '\n' | grep -qx -- "$2"; }
for u in "$user" "$nginx_user"; do
	if getent passwd "$u" >/dev/null && ! in_group "$u" "$sock_group"; then
		usermod -a -G "$sock_group" "$u"
		say "added $u to the group $sock_group"
	fi
done
if ! getent passwd "$nginx_user" >/dev/null; then
	say "no user $nginx_user yet: add nginx's user to $sock_group once nginx is installed"
fi
group=$(id -gn "$user")

# The key directory: root's, readable by the service's group only.
[[ ! -L $key_dir ]] || die "$key_dir is a symbolic link"
install -d -m 0750 -o root -g "$group" "$key_dir"

# key_file NAME GENERATE-COMMAND: make NAME when it is missing, then give it
# to the service's user, owner-only.
key_file() {
	local f=$key_dir/$1
	shift
	if [[ -L $f ]]; then
		die "$f is a symbolic link"
	fi
	if [[ ! -e $f ]]; then
		[[ -x $tool ]] || die "$tool is missing: install mailsrv-tool or pass --tool"
		"$tool" "$@" "$f" >/dev/null
		say "created $f"
	fi
	[[ -f $f ]] || die "$f is not a regular file"
	chown -- "$user:$group" "$f"
	chmod 0600 -- "$f"
}
key_file secrets.key gen-secret-key
if ((hmac)); then
	key_file jwt-hs256.key gen-hmac-key
fi
say "keys in $key_dir: owner $user, mode 0600 (directory root:$group 0750); socket group $sock_group"
