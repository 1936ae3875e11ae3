#!/usr/bin/env bash
# build-docs.sh - the API's documentation as static files for nginx
# (docs/api.md#api-documentation, docs/design.md "The API's documentation"):
#
#   scripts/build-docs.sh OUT_DIR        (make docs: OUT_DIR is build/api-docs)
#
# OUT_DIR/openapi.yaml   openapi/openapi.yaml as it is
# OUT_DIR/openapi.json   the same document in JSON (scripts/openapi-json.py)
# OUT_DIR/ui/            the page /api/docs/: our index.html and docs.js, and
#                        Swagger UI's bundle, style sheet, icon, licence and
#                        notice from the swagger-ui-dist package that
#                        openapi/ui/package-lock.json pins (npm ci)
#
# nginx serves OUT_DIR (DOCS_DIR of deploy/render-nginx.sh); scripts/stack.sh
# copies it into the stack's directory, a production host gets a copy in
# /usr/local/share/mailsrv/api-docs (deploy/README.md). Files are 0644,
# directories 0755, and each file keeps the modification time of what it was
# made from, so that nginx's ETag (time and size) is the same on every host
# given the same build with `cp -p`. OUT_DIR is replaced whole.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() {
	echo "build-docs: $*" >&2
	exit 1
}
(($# == 1)) || die "usage: scripts/build-docs.sh OUT_DIR"
out=$1
[[ $out == */* ]] || out=./$out
ui_src=$repo/openapi/ui
dist=$ui_src/node_modules/swagger-ui-dist

"$repo/scripts/npm-ci.sh" "$ui_src"
want=$(node -e 'const l = require(process.argv[1]); process.stdout.write(l.packages["node_modules/swagger-ui-dist"].version)' \
	"$ui_src/package-lock.json") || die "no swagger-ui-dist in openapi/ui/package-lock.json"
have=$(node -e 'process.stdout.write(require(process.argv[1]).version)' "$dist/package.json" 2>/dev/null) || have=
[[ $have == "$want" ]] || die "swagger-ui-dist $want is pinned but ${have:-none} is installed in $dist"

new=$out.new
rm -rf -- "$new"
install -d -m 0755 -- "$new" "$new/ui"
# put SRC DEST: a copy, 0644, with SRC's modification time.
put() {
	install -m 0644 -- "$1" "$2"
	touch -r "$1" -- "$2"
}
put "$repo/openapi/openapi.yaml" "$new/openapi.yaml"
"$repo/scripts/openapi-json.py" "$repo/openapi/openapi.yaml" "$new/openapi.json"
chmod 0644 -- "$new/openapi.json"
touch -r "$repo/openapi/openapi.yaml" -- "$new/openapi.json"
put "$ui_src/index.html" "$new/ui/index.html"
put "$ui_src/docs.js" "$new/ui/docs.js"
for f in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
	[[ -s $dist/$f ]] || die "$dist/$f is missing"
	put "$dist/$f" "$new/ui/$f"
done
# The style sheet names its source map, which is not shipped: only the
# browser's developer tools ask for it (a 404 from this origin).

rm -rf -- "$out.old"
[[ ! -e $out ]] || mv -- "$out" "$out.old"
mv -- "$new" "$out"
rm -rf -- "$out.old"
