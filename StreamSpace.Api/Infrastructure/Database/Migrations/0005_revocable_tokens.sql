-- Every token carries its user's token_version; bumping it (password change, disable, sign-out everywhere) ends every
-- token issued before. Tokens issued before this migration carry none and count as version 0.
ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0;

-- Single tokens ended by POST /auth/logout, kept until they would have expired anyway (then they are deleted).
CREATE TABLE revoked_tokens (
    jti        uuid PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL
);
CREATE INDEX revoked_tokens_user_id ON revoked_tokens (user_id);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);

-- The web UI's ASP.NET Core Data Protection key ring, so its cookies survive a restart and work on every replica.
-- Created here rather than by the web: the schema has one owner, versioned and applied under the migration lock;
-- the web only reads and adds rows.
CREATE TABLE data_protection_keys (
    id           serial PRIMARY KEY,
    friendly_name text,
    xml          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
