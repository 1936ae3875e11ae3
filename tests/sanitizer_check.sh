#!/usr/bin/env bash
# sanitizer_check.sh - count the reports of the sanitizer build
# (build/asan/mailsrv, mk/sanitize.mk) after a test stack ran it.
#
#   tests/sanitizer_check.sh LOG_DIR [OFFSET]
#
# The stack's service writes every ASan, LeakSanitizer and UBSan report to
# LOG_DIR/service/sanitizer.<pid> (log_path, set by tests/run_all.sh; the
# directory its own user may write), LOG_DIR/sanitizer.<pid> counts too. A process the
# fault drills crashed on purpose is listed in LOG_DIR/expected-crashes
# ("<pid> <why>" lines, tests/drills/drill.py): its file holds the expected
# output (ASan's SEGV report for `kill -SEGV`, its warning about libfcgi's
# failed 4 GiB allocation) and is not counted, but it must hold nothing else
# than what such a crash writes. Any other non-empty file is a report. As a
# backstop, report lines that reached the service's stderr (mailsrv.log,
# from byte OFFSET on: this run's part of it) count too.
#
# Prints what it found and, last, "sanitizers: N reports"; exits 1 when N > 0
# or LOG_DIR holds no service log (the check would prove nothing).
set -u

dir=${1:?usage: $0 LOG_DIR [OFFSET]}
offset=${2:-0}
[[ $offset =~ ^[0-9]+$ ]] || offset=0
[[ -s $dir/mailsrv.log ]] || {
	echo "sanitizer_check: no $dir/mailsrv.log: the service did not run" >&2
	echo "sanitizers: 1 reports"
	exit 1
}

declare -A expected=()
if [[ -r $dir/expected-crashes ]]; then
	while read -r pid why; do
		[[ $pid =~ ^[0-9]+$ ]] && expected[$pid]=$why
	done <"$dir/expected-crashes"
fi

reports=0
skipped=0
shopt -s nullglob
for f in "$dir"/sanitizer.* "$dir"/service/sanitizer.*; do
	[[ -s $f ]] || continue
	pid=${f##*.}
	if [[ -n ${expected[$pid]:-} ]]; then
		# Only what a deliberate crash writes: a SEGV report, or the
		# warning about the huge allocation libfcgi attempted.
		if grep -E '^==[0-9]+==ERROR: |runtime error: ' "$f" |
			grep -vqE '^==[0-9]+==ERROR: AddressSanitizer: SEGV on unknown address'; then
			echo "sanitizer: $f (pid $pid, crashed on purpose: ${expected[$pid]}) holds another report:"
			sed 's/^/  | /' "$f" | head -n 40
			reports=$((reports + 1))
		else
			skipped=$((skipped + 1))
		fi
		continue
	fi
	echo "sanitizer: report in $f:"
	sed 's/^/  | /' "$f" | head -n 60
	reports=$((reports + 1))
done

pattern='^==[0-9]+==ERROR: |runtime error: |^SUMMARY: [A-Za-z]+Sanitizer'
stray=$(tail -c +$((offset + 1)) "$dir/mailsrv.log" | grep -cE "$pattern")
if ((stray > 0)); then
	echo "sanitizer: $stray report lines on the service's stderr ($dir/mailsrv.log):"
	tail -c +$((offset + 1)) "$dir/mailsrv.log" | grep -E "$pattern" | head -n 20 | sed 's/^/  | /'
	reports=$((reports + stray))
fi

echo "sanitizer: $skipped expected crash outputs of deliberately crashed processes not counted"
echo "sanitizers: $reports reports"
((reports == 0))
