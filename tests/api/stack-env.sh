# stack-env.sh - settings of the test stack that the API suite relies on;
# tests/run_all.sh sources it (with STACK_VAR set) before the stack starts,
# and the tests read the same variables from their environment.
#
# Connection tests (test_smtp_*.py): a mail server that never answers is
# given up after MAILSRV_TEST_TIMEOUT seconds in all (30 in production); a
# few seconds keep that test short while leaving room for a TLS handshake,
# a login and an OAuth 2.0 refresh on a busy machine under the sanitizers.
# The rate limit stays at the product's default (6 tests a minute per saved
# server, and per administrator for unsaved settings): every test uses new
# servers and its own administrator names, so none throttles another.
export MAILSRV_TEST_CONNECT_TIMEOUT=3
export MAILSRV_TEST_TIMEOUT=6
export MAILSRV_TEST_RATE=6
