#!/usr/bin/env bash
# hardening_check.sh - check that a built binary carries the hardening the
# Makefile asks for (as Debian's dpkg-buildflags with hardening=+all):
#
#   pie            an ELF of type DYN with an interpreter (PIE, not a library)
#   bind-now       BIND_NOW, or NOW in FLAGS_1 (-Wl,-z,now)
#   relro          a GNU_RELRO segment (-Wl,-z,relro)
#   stack-protector  __stack_chk_fail imported (-fstack-protector-strong)
#   fortify        some __*_chk libc function imported (-D_FORTIFY_SOURCE=2)
#   stack-clash    every C compile unit was built with -fstack-clash-protection
#                  (read from the DWARF producer; the code itself does not show it)
#   cf-protection  every C compile unit was built with -fcf-protection and, on
#                  x86-64, main starts with endbr64 (the executable carries no
#                  CET property note: Debian 12's crt1.o has none)
#
#   tests/hardening_check.sh [BINARY]     (default build/mailsrv)
#
# Prints one line per check and, last, "hardening: P passed, F failed"; exits
# 1 when a check failed, 2 when the binary or binutils are missing.
set -uo pipefail

bin=${1:-build/mailsrv}
if [[ ! -f $bin ]]; then
	echo "hardening: $bin does not exist (build it first)" >&2
	exit 2
fi
for tool in readelf objdump; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "hardening: $tool (binutils) is not installed" >&2
		exit 2
	fi
done

pass=0 fail=0
check() { # name ok(0/1) detail
	if (($2)); then
		printf '   %-16s ok\n' "$1"
		pass=$((pass + 1))
	else
		printf '   %-16s FAILED: %s\n' "$1" "$3"
		fail=$((fail + 1))
	fi
}

header=$(readelf -hW "$bin" 2>/dev/null)
segments=$(readelf -lW "$bin" 2>/dev/null)
dynamic=$(readelf -dW "$bin" 2>/dev/null)
dynsyms=$(readelf --dyn-syms -W "$bin" 2>/dev/null)
if [[ -z $header ]]; then
	echo "hardening: $bin is not an ELF file" >&2
	exit 2
fi

ok=0
grep -Eq '^ *Type: +DYN' <<<"$header" && grep -q 'INTERP' <<<"$segments" && ok=1
check pie "$ok" "not a position-independent executable (type $(sed -n 's/^ *Type: *//p' <<<"$header"))"

ok=0
grep -Eq '\(BIND_NOW\)|\(FLAGS\) .*BIND_NOW|\(FLAGS_1\) .*Flags:.* NOW' <<<"$dynamic" && ok=1
check bind-now "$ok" "no BIND_NOW or FLAGS_1 NOW: symbols are bound lazily (link with -Wl,-z,now)"

ok=0
grep -q 'GNU_RELRO' <<<"$segments" && ok=1
check relro "$ok" "no GNU_RELRO segment (link with -Wl,-z,relro)"

ok=0
grep -Eq ' __stack_chk_fail(@|$)' <<<"$dynsyms" && ok=1
check stack-protector "$ok" "__stack_chk_fail is not imported (compile with -fstack-protector-strong)"

chk=$(grep -oE ' __[a-z0-9_]+_chk(@|$)' <<<"$dynsyms" | grep -v '__stack_chk' | tr -d ' @' | sort -u)
ok=0
[[ -n $chk ]] && ok=1
check fortify "$ok" "no fortified __*_chk function is imported (compile with -D_FORTIFY_SOURCE=2 and -O1 or more)"

# The options gcc records in each compile unit (-grecord-gcc-switches is its
# default): what the machine code cannot show.
producers=$(readelf --debug-dump=info "$bin" 2>/dev/null | grep 'DW_AT_producer' |
	sed 's/.*DW_AT_producer *: *\(([^)]*): *\)\{0,1\}//' | grep -E '^GNU C' | sort -u)
if [[ -z $producers ]]; then
	check stack-clash 0 "no DWARF producer to read the compile flags from (build with -g)"
	check cf-protection 0 "no DWARF producer to read the compile flags from (build with -g)"
else
	missing=$(grep -vc -- '-fstack-clash-protection' <<<"$producers")
	check stack-clash "$((missing == 0))" "$missing kind(s) of compile unit built without -fstack-clash-protection"
	missing=$(grep -vc -- '-fcf-protection' <<<"$producers")
	ok=$((missing == 0))
	detail="$missing kind(s) of compile unit built without -fcf-protection"
	if ((ok)) && [[ $(uname -m) == x86_64 ]]; then
		first=$(objdump -d --disassemble=main "$bin" 2>/dev/null |
			awk '/<main>:$/ {getline; print; exit}')
		if ! grep -q 'endbr64' <<<"$first"; then
			ok=0
			detail="main does not start with endbr64"
		fi
	fi
	check cf-protection "$ok" "$detail"
fi

echo "hardening: $pass passed, $fail failed ($bin)"
((fail == 0))
