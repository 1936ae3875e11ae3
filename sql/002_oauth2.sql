-- 002_oauth2.sql - the OAuth 2.0 authorization-code flow (docs/oauth2.md).
--
-- oauth2_state: one row per started authorization. The state travels
-- through the administrator's browser and the provider; the database keeps
-- only its SHA-256, so a copy of this table cannot finish anybody's flow.
-- A state is bound to its server (ON DELETE CASCADE: a deleted server's
-- flows die with it) and to the administrator who started it (actor, the
-- bearer token's sub). It is valid until expires_at (ten minutes) and used
-- at most once: the callback consumes it with one UPDATE ... WHERE used_at IS
-- NULL AND expires_at > now(). The PKCE verifier is stored encrypted, bound
-- to the row ("oauth2_state:<hex of state_hash>:code_verifier"), and cleared
-- when the state is used. Rows are kept a day past expiry so that the
-- callback can tell an expired or used state (303 with invalid_state) from
-- an unknown one (400); `authorize` deletes older ones.
CREATE TABLE oauth2_state (
    state_hash          bytea PRIMARY KEY CHECK (octet_length(state_hash) = 32),
    server_id           bigint NOT NULL REFERENCES mail_server (id) ON DELETE CASCADE,
    actor               text NOT NULL CHECK (octet_length(actor) <= 256),
    code_verifier_enc   bytea,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz,
    CHECK (expires_at > created_at),
    CHECK (used_at IS NULL OR code_verifier_enc IS NULL)
);

-- The purge (expires_at) and the foreign key's cascade (server_id).
CREATE INDEX oauth2_state_expires_at ON oauth2_state (expires_at);
CREATE INDEX oauth2_state_server_id ON oauth2_state (server_id);

-- When the last token request for the server (code exchange or refresh,
-- success or failure) finished. Internal, never shown: a refresh that waited
-- for another one compares it to tell that the other one has finished, and
-- takes its outcome instead of calling the provider again.
ALTER TABLE mail_server ADD COLUMN oauth2_last_attempt_at timestamptz;

GRANT SELECT, INSERT, UPDATE, DELETE ON oauth2_state TO mailsrv_app;
