-- dothi API keys. A key is shown once as dk_<id>_<secret>; only SHA-256(secret) is stored, so a
-- leaked table does not leak keys. The id is public (it appears in logs and the audit log).

CREATE TABLE api_keys (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9]{8,32}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    scopes      text[] NOT NULL
                CHECK (cardinality(scopes) > 0
                       AND scopes <@ ARRAY['read:public', 'read:all', 'alerts:write', 'admin']),
    -- NULL: the key's read:all covers every area. Otherwise only devices placed in these areas
    -- (or below them) besides the public ones: a district office's key sees its district.
    area_ids    text[] CHECK (area_ids IS NULL OR cardinality(area_ids) > 0),
    secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
    -- Per-key token bucket; NULL = the API's defaults.
    rate_per_s  double precision CHECK (rate_per_s > 0),
    burst       integer CHECK (burst > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
