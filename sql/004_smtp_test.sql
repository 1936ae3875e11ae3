-- 004_smtp_test.sql - the SMTP connection test.
--
-- The outcome of the last test of a saved server, shown read-only as its
-- last_test. A test is not an edit: writing these columns leaves version
-- and updated_at alone (the service's statement does not touch them, and
-- no trigger does).
ALTER TABLE mail_server
    ADD COLUMN last_test_at timestamptz,
    ADD COLUMN last_test_ok boolean,
    ADD COLUMN last_test_stage text CHECK (last_test_stage IN ('resolve', 'connect', 'tls',
        'ehlo', 'auth', 'mail_from', 'rcpt_to', 'data')),
    ADD COLUMN last_test_error_code text CHECK (octet_length(last_test_error_code) <= 64),
    ADD CONSTRAINT mail_server_last_test_complete CHECK (
        (last_test_at IS NULL) = (last_test_ok IS NULL)
        AND (last_test_at IS NULL) = (last_test_stage IS NULL));

-- The rate limit of tests (MAILSRV_TEST_RATE a minute): one row per bucket
-- ("server:<id>" for a saved server, "actor:<sub>" for an administrator's
-- unsaved settings), a window that starts with its first test and lasts a
-- minute. Counted here, in one atomic INSERT ... ON CONFLICT, so that the
-- limit holds across every worker process and host. Rows are small and few
-- (one per server and administrator); windows that ended an hour ago are
-- deleted when a bucket starts a new window.
CREATE TABLE smtp_test_rate (
    bucket       text PRIMARY KEY CHECK (octet_length(bucket) <= 300),
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL CHECK (hits > 0)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON smtp_test_rate TO mailsrv_app;
