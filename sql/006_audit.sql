-- 006_audit.sql - the audit trail: who changed which mail server, when, from
-- where (docs/api.md, "Audit events").
--
-- Every change of the service writes its event in the same transaction as
-- the change. Events name the server by id and by its name at the time, with
-- no foreign key: they outlive the servers they name. The service's role
-- may add and read events, never change or remove one; only retention
-- (`mailsrv-tool audit-prune`, as mailsrv_owner) deletes old ones.

CREATE TABLE audit_event (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor            text NOT NULL CHECK (octet_length(actor) <= 1024),
    action           text NOT NULL CHECK (action IN (
        'mail_server.created', 'mail_server.updated', 'mail_server.deleted',
        'mail_server.default_moved', 'mail_server.tested',
        'oauth2.connected', 'oauth2.refreshed', 'oauth2.refresh_failed',
        'oauth2.reauthorization_required')),
    mail_server_id   bigint,
    mail_server_name text CHECK (char_length(mail_server_name) <= 256),
    request_id       text CHECK (octet_length(request_id) <= 128),
    client_address   text CHECK (octet_length(client_address) <= 64),
    details          jsonb NOT NULL DEFAULT '{}'::jsonb
        CHECK (jsonb_typeof(details) = 'object')
);

-- Listing is newest first by id (keyset paging); the filters by server,
-- actor and time, and retention's deletes by age, have their own indexes.
CREATE INDEX audit_event_server ON audit_event (mail_server_id, id);
CREATE INDEX audit_event_actor ON audit_event (actor, id);
CREATE INDEX audit_event_at ON audit_event (at);

GRANT SELECT, INSERT ON audit_event TO mailsrv_app;
