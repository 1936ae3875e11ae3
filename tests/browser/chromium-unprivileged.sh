#!/bin/sh
# chromium-unprivileged.sh - Debian's chromium, as the user nobody when
# started by root: render_docs.js starts the browser through this script, so
# that the page under test runs in Chromium's own sandbox as a user that owns
# nothing (Chromium refuses to run as root without --no-sandbox, and that is
# not used). Its arguments are Chromium's; CHROMIUM names another binary.
set -eu
bin=${CHROMIUM:-/usr/bin/chromium}
if [ "$(id -u)" = 0 ]; then
	exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$bin" "$@"
fi
exec "$bin" "$@"
