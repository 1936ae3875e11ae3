-- 005_oauth2_binding.sql - what an authorization flow is bound to, and what
-- a grant granted (docs/oauth2.md).
--
-- browser_hash: the SHA-256 of the value of the cookie that `authorize`
-- set in the browser that started the flow. The callback completes the flow
-- only for a request that carries that cookie, so an authorization URL seen
-- by somebody else cannot be finished in their browser. States issued before
-- this column existed have none and are refused (they live ten minutes).
--
-- token_url, client_id and scope: the server's settings when the flow
-- started. The code is exchanged at that token URL for that client only, and
-- only while the server still has them; scope is what the authorization
-- asked for (what a token answer without its own scope granted).
ALTER TABLE oauth2_state
    ADD COLUMN browser_hash bytea CHECK (octet_length(browser_hash) = 32),
    ADD COLUMN token_url text CHECK (octet_length(token_url) <= 2048),
    ADD COLUMN client_id text CHECK (char_length(client_id) <= 255),
    ADD COLUMN scope text CHECK (char_length(scope) <= 1024);

-- The scope the provider granted with the stored tokens: the last token
-- answer's scope, or the one asked for when the answer had none. A refresh
-- asks for exactly this (a strict provider refuses a refresh that asks for
-- any scope not granted, RFC 6749 section 6), or for no scope when it is
-- unknown (tokens entered by hand). Internal, never shown; cleared with the
-- tokens.
ALTER TABLE mail_server
    ADD COLUMN oauth2_granted_scope text CHECK (octet_length(oauth2_granted_scope) <= 4096);
