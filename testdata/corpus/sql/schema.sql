CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    password_salt   BYTEA,
    api_token_hash  CHAR(64),
    token_type      TEXT NOT NULL DEFAULT 'bearer',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    key_prefix  TEXT NOT NULL,
    key_sha256  CHAR(64) NOT NULL,
    revoked_at  TIMESTAMPTZ
);

CREATE INDEX api_keys_prefix_idx ON api_keys (key_prefix);

-- fixture user; the hash is bcrypt of a throwaway value
INSERT INTO users (email, password_hash, api_token_hash) VALUES
  ('fixture@example.com', '$2b$12$9gyEQMJNIKJTQTYZW7DWFvB7gH7dCVkgedQk3y6PMVsoRxfP.Kx9e', '667c89e06cf63c93c7b33fc5be6036dc728369722ed0a5a2dc2f6f89c3cccc32');

INSERT INTO api_keys (key_prefix, key_sha256) VALUES ('tk_live_a1b2', '4b9751434c3b0f408d0435d15709add0aba07ff6d6a94422e1bca4cd670cc671');
