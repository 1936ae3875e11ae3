#!/usr/bin/env bash
# run_brief.sh - build every tests/fuzz/fuzz_*.c as a libFuzzer target (with
# ASan and UBSan) against all of src/ but main.c, then run each one for a
# while on a temporary copy of its seed corpus tests/fuzz/corpus/<target>/
# (the repository is never written to; new inputs and crash files go under
# build/fuzz/).
#
#   tests/fuzz/run_brief.sh          each target FUZZ_SECONDS (default 20)
#   tests/fuzz/run_brief.sh long     each target 300 seconds (`make fuzz`)
#
# Prints "fuzz <target>: ok (<N> execs)" or "fuzz <target>: FAILED" per
# target and, last, "fuzz: P passed, F failed"; exits non-zero on a failure.
# A target's log is build/fuzz/<target>.log; a crashing input is saved as
# build/fuzz/artifacts/<target>-crash-*. Extra libFuzzer flags of a target
# (one or more a line, # comments) may sit in tests/fuzz/<target>.options.
set -u

cd "$(dirname "$0")/../.." || exit 2

case "${1:-brief}" in
brief) FUZZ_SECONDS=${FUZZ_SECONDS:-20} ;;
long) FUZZ_SECONDS=300 ;;
*)
	echo "usage: $0 [long]" >&2
	exit 2
	;;
esac
case "$FUZZ_SECONDS" in
'' | *[!0-9]*)
	echo "FUZZ_SECONDS must be a whole number of seconds" >&2
	exit 2
	;;
esac

CC=${FUZZ_CC:-clang}
CFLAGS=(-g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE
	-Iinclude -Ibuild/gen -I/usr/include/postgresql)
LIBS=(-lfcgi -lpq -lyajl -lcurl -lssl -lcrypto -pthread)
OUT=build/fuzz
mkdir -p "$OUT/obj" "$OUT/artifacts"
# src/router.c includes the schema version the Makefile generates.
make -s build/gen/schema_version.h

# UBSan findings stop the run (by default it reports and goes on); leaks
# count as failures (libFuzzer's default with ASan).
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

work=$(mktemp -d "${TMPDIR:-/tmp}/mailsrv-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# An object is rebuilt when it is older than its source or any header.
newest_header=$(ls -t include/*.h 2>/dev/null | head -n 1)
stale() { # object source
	[ ! -e "$1" ] || [ "$2" -nt "$1" ] ||
		{ [ -n "$newest_header" ] && [ "$newest_header" -nt "$1" ]; }
}

# ---- the library: every src/*.c but main.c, once for all targets ----
lib_ok=1
lib_objs=()
for src in src/*.c; do
	[ -e "$src" ] || continue
	[ "$src" = src/main.c ] && continue
	obj="$OUT/obj/$(basename "${src%.c}").o"
	lib_objs+=("$obj")
	if stale "$obj" "$src"; then
		if ! "$CC" "${CFLAGS[@]}" -c -o "$obj" "$src" >"$OUT/build.log" 2>&1; then
			echo "fuzz: could not build $src (see $OUT/build.log)" >&2
			rm -f "$obj"
			lib_ok=0
			break
		fi
	fi
done

passed=0
failed=0
for target_src in tests/fuzz/fuzz_*.c; do
	[ -e "$target_src" ] || continue
	t=$(basename "${target_src%.c}")
	bin="$OUT/$t"
	log="$OUT/$t.log"

	if [ "$lib_ok" != 1 ]; then
		echo "fuzz $t: FAILED"
		failed=$((failed + 1))
		continue
	fi
	if ! "$CC" "${CFLAGS[@]}" -o "$bin" "$target_src" "${lib_objs[@]}" \
		"${LIBS[@]}" >"$log" 2>&1; then
		echo "fuzz $t: FAILED"
		echo "  could not build $target_src (see $log)" >&2
		failed=$((failed + 1))
		continue
	fi

	corpus="$work/$t"
	mkdir -p "$corpus"
	if [ -d "tests/fuzz/corpus/$t" ]; then
		cp -R "tests/fuzz/corpus/$t/." "$corpus/"
	fi

	extra=()
	if [ -r "tests/fuzz/$t.options" ]; then
		read -r -a extra < <(sed 's/#.*//' "tests/fuzz/$t.options" | tr '\n' ' ')
	fi

	# timeout: a hung target (outside libFuzzer's own -timeout) still ends.
	timeout --kill-after=10 $((FUZZ_SECONDS + 120)) \
		"$bin" -max_total_time="$FUZZ_SECONDS" -max_len=70000 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
		-artifact_prefix="$OUT/artifacts/$t-" "$corpus" >>"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "fuzz $t: ok ($execs execs)"
		passed=$((passed + 1))
	else
		echo "fuzz $t: FAILED"
		echo "  exit status $rc; see $log and $OUT/artifacts/" >&2
		grep -m 3 -E '^(SUMMARY|==[0-9]+==ERROR)|runtime error' "$log" | sed 's/^/  /' >&2
		failed=$((failed + 1))
	fi
done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
