-- +goose Up
-- The coordinator's schema (DESIGN §8). Every row of api_keys, orgs and
-- policy carries the store version at which it last changed, so a delta
-- since version v is "rows with version > v" and needs no change log.
-- Hashes are SHA-256 of the raw secret; raw join keys, API keys and
-- gateway credentials are never stored. Times are Unix microseconds (UTC).
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO meta (name, value) VALUES ('version', 0);

CREATE TABLE join_keys (
    id          TEXT PRIMARY KEY,
    hash        BYTEA NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    environment TEXT NOT NULL,
    org         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE gateways (
    id               TEXT PRIMARY KEY,
    credential_hash  BYTEA NOT NULL UNIQUE,
    join_key_id      TEXT NOT NULL REFERENCES join_keys (id),
    org              TEXT NOT NULL,
    name             TEXT NOT NULL,
    version          TEXT NOT NULL,
    mode             TEXT NOT NULL,
    registered_at    BIGINT NOT NULL,
    last_seen        BIGINT NOT NULL DEFAULT 0,
    snapshot_version BIGINT NOT NULL DEFAULT 0,
    active_sessions  BIGINT NOT NULL DEFAULT 0,
    memory_bytes     BIGINT NOT NULL DEFAULT 0,
    skew_us          BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX gateways_join_key ON gateways (join_key_id);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    hash       BYTEA NOT NULL UNIQUE,
    org        TEXT NOT NULL,
    name       TEXT NOT NULL,
    mode       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    version    BIGINT NOT NULL
);
CREATE INDEX api_keys_version ON api_keys (version);
CREATE INDEX api_keys_org ON api_keys (org);

CREATE TABLE orgs (
    id      TEXT PRIMARY KEY,
    plan    TEXT NOT NULL,
    seats   INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    version BIGINT NOT NULL
);
CREATE INDEX orgs_version ON orgs (version);

CREATE TABLE policy (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  TEXT NOT NULL,
    data_json BYTEA NOT NULL,
    bundle    BYTEA NOT NULL,
    version   BIGINT NOT NULL
);

-- Append-only. (gateway_id, seq) identifies an event, so a resend after a
-- lost acknowledgement stores nothing twice.
CREATE TABLE audit_events (
    id          BIGSERIAL PRIMARY KEY,
    gateway_id  TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    request_id  TEXT NOT NULL,
    at          BIGINT NOT NULL,
    org         TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    provider    TEXT NOT NULL,
    model       TEXT NOT NULL,
    mode        TEXT NOT NULL,
    status      INTEGER NOT NULL,
    code        TEXT NOT NULL,
    duration_us BIGINT NOT NULL,
    detections  TEXT NOT NULL,
    UNIQUE (gateway_id, seq)
);
CREATE INDEX audit_events_org_at ON audit_events (org, at);

CREATE TABLE usage (
    org      TEXT NOT NULL,
    key_id   TEXT NOT NULL,
    month    TEXT NOT NULL,
    mode     TEXT NOT NULL,
    requests BIGINT NOT NULL,
    credits  BIGINT NOT NULL,
    PRIMARY KEY (org, key_id, month, mode)
);

-- +goose Down
DROP TABLE usage;
DROP TABLE audit_events;
DROP TABLE policy;
DROP TABLE orgs;
DROP TABLE api_keys;
DROP TABLE gateways;
DROP TABLE join_keys;
DROP TABLE meta;
