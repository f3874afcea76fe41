-- Audit trail of the API: every write and every authentication or authorisation failure.
-- Events use the OWASP logging vocabulary (authn_login_fail, authn_token_revoked, authz_fail …).
-- Only the public key id is recorded, never a key or its secret.

CREATE TABLE audit_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    event    text        NOT NULL,
    key_id   text,
    client   text,
    method   text,
    path     text,
    status   smallint,
    target   text,
    detail   jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_key_idx ON audit_log (key_id, at);
