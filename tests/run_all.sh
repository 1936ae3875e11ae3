#!/usr/bin/env bash
# run_all.sh - every suite, what `make test` runs (after building). In order:
#   format   make format-check: clang-format finds nothing to change
#   unit     every build/tests/test_* cmocka binary
#   valgrind the same binaries under valgrind (memory errors and definite
#            leaks fail; one test per binary)
#   hardening  tests/hardening_check.sh on build/mailsrv: PIE, RELRO, BIND_NOW,
#            stack protector, fortified calls, stack clash and control-flow
#            protection (one test per check)
#   deploy   tests/deploy_check.sh: the systemd units (systemd-analyze verify),
#            the settings file, and the nginx sites rendered by
#            deploy/render-nginx.sh under nginx -t (one test per check)
#   openapi  tests/openapi_lint.sh, when present (one test)
#   api      the API suite (pytest tests/api) against a real stack started
#            here on its own ports and directory
#   drills   the fault drills (pytest tests/drills) against the same stack,
#            after the API suite
#   two-hosts  the layout of several hosts (deploy/README.md, "Several
#            hosts"; pytest tests/twohosts): two worker hosts (each its nginx,
#            rendered by deploy/render-nginx.sh host, and its own service) and
#            a front balancer (render-nginx.sh lb) on 127.0.0.1 ports
#            TEST_TWOHOSTS_PORT (18443) to TEST_TWOHOSTS_PORT+5, on the same
#            stack's PostgreSQL, after the drills
#   sanitizers  the stack runs the ASan+UBSan build (build/asan/mailsrv,
#            mk/sanitize.mk) unless TEST_SANITIZE=0; once it has stopped,
#            tests/sanitizer_check.sh counts the reports in its log
#            directory (one test: zero reports)
#   fuzz     tests/fuzz/run_brief.sh, when present
# It prints a line per suite and, as the very last line, "N passed, M failed"
# over all suites; it exits 1 when anything failed or a suite could not run.
# A suite proves something only when it ran tests: a suite that is missing,
# collected nothing (pytest's exit 5) or ran no fuzz target counts as failed.
# Every skipped test is listed; a skip counts as failed unless its reason
# starts with "not applicable:", kept for reasons true on every supported
# machine.
#
# The test stack: STACK_VAR=<repo>/var/test (or /var/tmp/mailsrv-test-* when
# the postgres or www-data user cannot reach the checkout, or its path is
# long), HTTP 18080,
# PostgreSQL 55433,
# overridable with TEST_STACK_VAR, TEST_HTTP_PORT and TEST_PG_PORT (separate
# names, so a shell set up for `make run` never points the tests at it). It is
# created afresh on every run and stopped on exit, Ctrl-C or SIGTERM.
# MAILSRV_* variables of the caller are dropped so the test stack's settings
# are the suite's own: MAILSRV_OUTBOUND_ALLOW=127.0.0.1/32 and MAILSRV_CA_FILE
# of the test CA that tests/oauth_ca.sh makes under $STACK_VAR/test-ca. Any
# other setting the API suite needs goes into tests/api/stack-env.sh, sourced
# (when present) before the stack starts, with STACK_VAR set.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo" || exit 1

# PostgreSQL and nginx's workers must reach the stack's directory, and its
# unix socket paths must stay short: when the checkout lies where they cannot
# reach, or too deep, the test stack lives under /var/tmp.
if [[ -n ${TEST_STACK_VAR:-} ]]; then
	export STACK_VAR=$TEST_STACK_VAR
elif ((${#repo} <= 60)) && runuser -u postgres -- test -x "$repo" 2>/dev/null &&
	runuser -u www-data -- test -x "$repo" 2>/dev/null; then
	export STACK_VAR=$repo/var/test
else
	STACK_VAR=/var/tmp/mailsrv-test-$(printf '%s' "$repo" | sha256sum | cut -c1-12)
	export STACK_VAR
fi
export STACK_HTTP_PORT=${TEST_HTTP_PORT:-18080}
export STACK_PG_PORT=${TEST_PG_PORT:-55433}
unset STACK_PROCESSES STACK_THREADS STACK_MAILSRV_BIN STACK_MAILSRV_TOOL
for v in $(compgen -e MAILSRV_); do unset "$v"; done
export PYTHONDONTWRITEBYTECODE=1

# Per-suite timeouts (seconds): a hung suite fails instead of hanging CI.
UNIT_TIMEOUT=${TEST_UNIT_TIMEOUT:-300}
VALGRIND_TIMEOUT=${TEST_VALGRIND_TIMEOUT:-600}
API_TIMEOUT=${TEST_API_TIMEOUT:-2400}
DRILLS_TIMEOUT=${TEST_DRILLS_TIMEOUT:-900}
TWOHOSTS_TIMEOUT=${TEST_TWOHOSTS_TIMEOUT:-300}
FUZZ_TIMEOUT=${TEST_FUZZ_TIMEOUT:-900}

total_pass=0
total_fail=0
incomplete=0
summary=()
child=
stack_started=

note() { printf '== %s\n' "$*"; }

record() { # suite passed failed [remark]
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	summary+=("$(printf '%-10s %4d passed, %4d failed%s' "$1" "$2" "$3" "${4:+  ($4)}")")
}

# record_junit SUITE JUNIT_XML PYTEST_EXIT: record a pytest run from its
# junit report.
record_junit() {
	local suite=$1 junit=$2 rc=$3 n_tests n_fail n_err n_skip n_skip_ok n_pass n_bad
	read -r n_tests n_fail n_err n_skip n_skip_ok < <(/usr/bin/python3 - "$junit" "$logdir/skips-$suite.txt" <<'PY' 2>/dev/null
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) for s in suites)
e = sum(int(s.get("errors", 0)) for s in suites)
k = sum(int(s.get("skipped", 0)) for s in suites)
# A skip is a failure unless its reason starts with "not applicable:", the
# mark of a reason that holds on every supported machine. Every skip is
# listed, whichever it is.
ok = 0
with open(sys.argv[2], "w") as out:
    for case in root.iter("testcase"):
        for sk in case.findall("skipped"):
            msg = (sk.get("message") or "").strip()
            # pytest prefixes the reason with the skip's kind ("Skipped: ").
            reason = msg.split(": ", 1)[1] if msg.startswith("Skipped: ") else msg
            fine = reason.startswith("not applicable:")
            ok += fine
            out.write("%s %s::%s: %s\n" % ("skip" if fine else "SKIP (counted as failed)",
                                          case.get("classname", ""), case.get("name", ""), reason))
print(t, f, e, k, ok)
PY
	) || true
	if [[ -z ${n_tests:-} ]]; then
		record "$suite" 0 1 "pytest exit $rc, no junit report"
		return
	fi
	if [[ -s $logdir/skips-$suite.txt ]]; then
		sed 's/^/   /' "$logdir/skips-$suite.txt"
	fi
	n_pass=$((n_tests - n_fail - n_err - n_skip))
	n_bad=$((n_fail + n_err + n_skip - n_skip_ok))
	# Nothing collected (pytest exit 5) is a failure: a suite that runs no
	# test proves nothing. So is any other non-zero exit without a counted
	# failure (internal error, timeout).
	if ((n_tests == 0 && n_bad == 0)); then n_bad=1; fi
	if ((rc != 0 && n_bad == 0)); then n_bad=1; fi
	record "$suite" "$n_pass" "$n_bad" "$n_fail failed, $n_err errors, $n_skip skipped"
}

stop_stack() {
	if [[ -n $stack_started ]]; then
		stack_started=
		note "stopping the test stack"
		scripts/stack.sh stop || true
	fi
}

cleanup() {
	trap '' INT TERM
	if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
		kill -TERM "$child" 2>/dev/null
		sleep 1
		kill -KILL "$child" 2>/dev/null
	fi
	stop_stack
}
trap cleanup EXIT
trap 'echo "run_all: interrupted" >&2; exit 130' INT TERM

# run_logged LOG TIMEOUT CMD...: run CMD under a timeout in the background
# (so a signal to us is handled at once, and `cleanup` can end it by its pid),
# output into LOG and, with SHOW=1, also onto our output as it comes.
# Returns CMD's exit status (124 on timeout).
run_logged() {
	local log=$1 limit=$2 rc tailpid=
	shift 2
	: >"$log"
	timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1 </dev/null &
	child=$!
	if [[ ${SHOW:-} == 1 ]]; then
		tail -n +1 -s 0.2 -f --pid="$child" "$log" &
		tailpid=$!
	fi
	wait "$child"
	rc=$?
	child=
	[[ -z $tailpid ]] || wait "$tailpid"
	return "$rc"
}

logdir=$(mktemp -d /tmp/mailsrv-test.XXXXXX)

# counted_suite SUITE TITLE TIMEOUT SCRIPT [ARGS...]: run a script that ends
# with the line "SUITE: P passed, F failed" and record those counts. No such
# line, a failing exit without a counted failure, or nothing run at all is
# a failure.
counted_suite() {
	local suite=$1 title=$2 limit=$3 script=$4 rc line p f
	shift 4
	if [[ ! -x $script ]]; then
		record "$suite" 0 1 "$script is missing or not executable"
		return
	fi
	note "$title"
	SHOW=1 run_logged "$logdir/$suite.log" "$limit" "$script" "$@"
	rc=$?
	line=$(grep -E "^$suite: [0-9]+ passed, [0-9]+ failed" "$logdir/$suite.log" | tail -n 1)
	if [[ ! $line =~ ^[a-z]+:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		record "$suite" 0 1 "no '$suite: P passed, F failed' line from $script (exit $rc)"
		return
	fi
	p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}
	if ((rc != 0 && f == 0)); then f=1; fi
	if ((p + f == 0)); then f=1; fi # nothing ran
	record "$suite" "$p" "$f" "$( ((rc != 0)) && echo "exit $rc")"
}

# ---- formatting -------------------------------------------------------------
# clang-format with the repository's .clang-format reports no difference.
note "format check (make format-check)"
if run_logged "$logdir/format.log" 300 make -s format-check; then
	record format 1 0
else
	n=$(grep -c 'warning:' "$logdir/format.log")
	head -n 20 "$logdir/format.log" | sed 's/^/     | /'
	record format 0 1 "${n} differences: run make format"
fi

# ---- unit ----------------------------------------------------------------
note "unit tests"
u_pass=0 u_fail=0 u_bins=0
shopt -s nullglob
for t in build/tests/test_*; do
	[[ -f $t && -x $t ]] || continue
	u_bins=$((u_bins + 1))
	log=$logdir/$(basename "$t").log
	run_logged "$log" "$UNIT_TIMEOUT" "$t"
	rc=$?
	# cmocka: "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), listed
	# below:" per group; the per-test "[  FAILED  ] name" lines carry no count.
	p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
	if ((rc != 0 && f == 0)); then
		f=1 # crashed, timed out, or failed outside any test
	fi
	if ((rc == 0 && p == 0 && f == 0)); then
		f=1 # no cmocka summary at all
		rc=1
	fi
	u_pass=$((u_pass + p))
	u_fail=$((u_fail + f))
	if ((rc == 0 && f == 0)); then
		printf '   %-40s %d passed\n' "$(basename "$t")" "$p"
	else
		printf '   %-40s %d passed, %d failed (exit %d); output:\n' "$(basename "$t")" "$p" "$f" "$rc"
		tail -n 40 "$log" | sed 's/^/     | /'
	fi
done
shopt -u nullglob
if ((u_bins == 0)); then
	record unit 0 1 "no unit test binaries in build/tests"
else
	record unit "$u_pass" "$u_fail" "$u_bins binaries"
fi

# ---- unit tests under valgrind ---------------------------------------------
# Memory errors and definite leaks fail a binary (one test each); children
# that exec (the openssl command of test_crypto) run natively.
if command -v valgrind >/dev/null 2>&1; then
	note "unit tests under valgrind"
	v_pass=0 v_fail=0
	shopt -s nullglob
	for t in build/tests/test_*; do
		[[ -f $t && -x $t ]] || continue
		log=$logdir/valgrind-$(basename "$t").log
		if run_logged "$log" "$VALGRIND_TIMEOUT" valgrind -q --error-exitcode=99 \
			--leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
			--track-origins=yes --trace-children=no --child-silent-after-fork=yes "$t"; then
			v_pass=$((v_pass + 1))
			printf '   %-40s clean\n' "$(basename "$t")"
		else
			v_fail=$((v_fail + 1))
			printf '   %-40s FAILED; output:\n' "$(basename "$t")"
			grep -E '^==[0-9]+==|FAILED' "$log" | head -n 40 | sed 's/^/     | /'
		fi
	done
	shopt -u nullglob
	record valgrind "$v_pass" "$v_fail"
else
	record valgrind 0 1 "valgrind is not installed"
fi

# ---- build hardening of the service binary -----------------------------------
counted_suite hardening "build hardening (build/mailsrv)" 60 tests/hardening_check.sh build/mailsrv

# ---- production files in deploy/ ------------------------------------------------
counted_suite deploy "deploy files (systemd units, settings file, rendered nginx sites)" 120 \
	tests/deploy_check.sh

# ---- OpenAPI lint ----------------------------------------------------------
if [[ -x tests/openapi_lint.sh ]]; then
	note "OpenAPI lint"
	if SHOW=1 run_logged "$logdir/openapi.log" 600 tests/openapi_lint.sh; then
		record openapi 1 0
	else
		record openapi 0 1
	fi
else
	record openapi 0 1 "tests/openapi_lint.sh is missing or not executable"
fi

# ---- API suite against the test stack ---------------------------------------
note "test stack in $STACK_VAR (http $STACK_HTTP_PORT, postgresql $STACK_PG_PORT)"
# Start from nothing: leftovers of an interrupted run are stopped, and the
# directory is removed when it is one this script made (marked).
scripts/stack.sh stop >/dev/null 2>&1 || true
# A directory someone else made (or can write) is never used, nor removed
# (scripts/stack.sh refuses it too, with the reason): under /var/tmp another
# user could have made it first.
ours_alone() { # DIR: a real directory, ours, writable by nobody else
	local owner mode
	[[ ! -L $1 && -d $1 ]] || return 1
	read -r owner mode < <(stat -c '%u %a' -- "$1")
	((owner == EUID && (8#$mode & 8#022) == 0))
}
if [[ -e $STACK_VAR || -L $STACK_VAR ]] && ! ours_alone "$STACK_VAR"; then
	echo "run_all: $STACK_VAR is not ours alone (owner, mode or a symbolic link): not used" >&2
	exit 1
fi
if [[ -e $STACK_VAR/.run_all-test-stack ]]; then
	rm -rf -- "$STACK_VAR"
fi
if [[ ! -e $STACK_VAR ]]; then
	mkdir -p -- "$STACK_VAR" && touch "$STACK_VAR/.run_all-test-stack"
fi
stack_ok=1
# The service under test is the ASan+UBSan build (mk/sanitize.mk): every
# report goes to $STACK_VAR/log/service/sanitizer.<pid>, counted after the stack has
# stopped. allocator_may_return_null: a huge allocation returns NULL as with
# glibc (libfcgi's own assert then ends the process, as in production),
# instead of ASan aborting with a report. Workers leave with _exit, which
# skips LeakSanitizer's exit check; src/main.c runs it in a worker that
# drained cleanly, and at the master's exit it runs by itself.
sanitize=
if [[ ${TEST_SANITIZE:-1} != 0 ]]; then
	note "sanitizer build (make asan)"
	if make -s asan >"$logdir/asan-build.log" 2>&1; then
		sanitize=1
		# Only this run's reports: earlier ones of a reused STACK_VAR go.
		rm -f "$STACK_VAR"/log/sanitizer.* "$STACK_VAR"/log/service/sanitizer.* \
			"$STACK_VAR/log/expected-crashes"
		san_log_from=$(stat -c %s "$STACK_VAR/log/mailsrv.log" 2>/dev/null || echo 0)
		export STACK_MAILSRV_BIN=$repo/build/asan/mailsrv
		# log/service: the directory the service's own user may write
		# (scripts/stack.sh); the service never runs as root.
		export ASAN_OPTIONS="log_path=$STACK_VAR/log/service/sanitizer:detect_leaks=1:allocator_may_return_null=1:print_summary=1"
		export UBSAN_OPTIONS="log_path=$STACK_VAR/log/service/sanitizer:halt_on_error=1:print_stacktrace=1"
		# The failpoints of this build (include/failpoint.h), armed by the
		# drills with a file in this directory.
		export MAILSRV_FAILPOINT_DIR=$STACK_VAR/failpoints
		record asan-build 1 0
	else
		tail -n 20 "$logdir/asan-build.log" >&2
		record asan-build 0 1 "make asan failed; the stack runs build/mailsrv"
	fi
fi
# The OAuth tests' stand-in provider listens on 127.0.0.1 with a certificate
# of a test CA: the service trusts that CA and admits exactly 127.0.0.1/32
# (every other loopback address stays refused, which the refused-destination
# tests rely on). See tests/api/oauth2_support.py.
export MAILSRV_OUTBOUND_ALLOW=127.0.0.1/32
if [[ -x tests/oauth_ca.sh ]]; then
	if tests/oauth_ca.sh "$STACK_VAR/test-ca" >/dev/null; then
		export MAILSRV_CA_FILE=$STACK_VAR/test-ca/ca.pem
	else
		echo "run_all: tests/oauth_ca.sh failed" >&2
		stack_ok=
	fi
fi
if [[ -f tests/api/stack-env.sh ]]; then
	# shellcheck source=/dev/null
	if ! source tests/api/stack-env.sh; then
		echo "run_all: tests/api/stack-env.sh failed" >&2
		stack_ok=
	fi
fi
if [[ -n $stack_ok ]]; then
	stack_started=1
	if ! SHOW=1 run_logged "$logdir/stack-start.log" 300 scripts/stack.sh start; then
		stack_ok=
	fi
fi
if [[ -z $stack_ok ]]; then
	echo "run_all: the test stack did not start; the API suite is skipped" >&2
	record stack 0 1 "could not start; API suite not run"
	incomplete=1
else
	record stack 1 0
	if ! compgen -G 'tests/api/test_*.py' >/dev/null && ! compgen -G 'tests/api/*_test.py' >/dev/null; then
		echo "run_all: no tests in tests/api" >&2
		record api 0 1 "no test files in tests/api"
	else
		note "API tests (pytest tests/api)"
		junit=$STACK_VAR/junit-api.xml
		rm -f "$junit"
		# The service's effective settings (key files, database URL), from
		# the environment the stack was started with, for the tests.
		api_env=$(scripts/stack.sh env) && eval "$api_env"
		export MAILSRV_TEST_URL=http://127.0.0.1:$STACK_HTTP_PORT
		SHOW=1 run_logged "$logdir/api.log" "$API_TIMEOUT" \
			/usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$junit" tests/api
		rc=$?
		record_junit api "$junit" "$rc"
	fi

	# The fault drills, against the same stack (each one leaves it healthy).
	if ! compgen -G 'tests/drills/test_*.py' >/dev/null; then
		record drills 0 1 "no test files in tests/drills"
	else
		note "fault drills (pytest tests/drills)"
		junit=$STACK_VAR/junit-drills.xml
		rm -f "$junit" "$STACK_VAR/drill-figures.log"
		SHOW=1 run_logged "$logdir/drills.log" "$DRILLS_TIMEOUT" \
			/usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$junit" tests/drills
		rc=$?
		record_junit drills "$junit" "$rc"
		if [[ -s $STACK_VAR/drill-figures.log ]]; then
			sed 's/^/   drill /' "$STACK_VAR/drill-figures.log"
		fi
	fi

	# Two hosts and a front balancer beside the stack, on its database.
	if ! compgen -G 'tests/twohosts/test_*.py' >/dev/null; then
		record two-hosts 0 1 "no test files in tests/twohosts"
	else
		note "two hosts behind a front balancer (pytest tests/twohosts)"
		junit=$STACK_VAR/junit-twohosts.xml
		rm -f "$junit" "$STACK_VAR/twohosts-figures.log"
		SHOW=1 run_logged "$logdir/two-hosts.log" "$TWOHOSTS_TIMEOUT" \
			/usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$junit" tests/twohosts
		rc=$?
		# Whatever a run cut short left running (stopped by its pid files).
		/usr/bin/python3 tests/twohosts/layout.py stop || true
		record_junit two-hosts "$junit" "$rc"
		if [[ -s $STACK_VAR/twohosts-figures.log ]]; then
			sed 's/^/   two-hosts /' "$STACK_VAR/twohosts-figures.log"
		fi
	fi
fi
stop_stack

# ---- sanitizer reports of the service ---------------------------------------
if [[ -n $sanitize && -n $stack_ok ]]; then
	note "sanitizer reports (tests/sanitizer_check.sh)"
	if SHOW=1 run_logged "$logdir/sanitizers.log" 120 tests/sanitizer_check.sh "$STACK_VAR/log" "$san_log_from"; then
		record sanitizers 1 0 "ASan+UBSan build, no report"
	else
		n=$(sed -n 's/^sanitizers: \([0-9][0-9]*\) reports$/\1/p' "$logdir/sanitizers.log" | tail -n 1)
		record sanitizers 0 "${n:-1}" "reports in $STACK_VAR/log/sanitizer.*"
	fi
fi
unset ASAN_OPTIONS UBSAN_OPTIONS STACK_MAILSRV_BIN MAILSRV_FAILPOINT_DIR

# ---- brief fuzzing -------------------------------------------------------
counted_suite fuzz "brief fuzzing" "$FUZZ_TIMEOUT" tests/fuzz/run_brief.sh

echo
if ((total_fail == 0 && incomplete == 0)); then
	rm -rf -- "$logdir"
	note "summary"
else
	note "summary (each suite's output is kept in $logdir)"
fi
for s in "${summary[@]}"; do echo "   $s"; done
echo "$total_pass passed, $total_fail failed"
((total_fail == 0 && incomplete == 0))
