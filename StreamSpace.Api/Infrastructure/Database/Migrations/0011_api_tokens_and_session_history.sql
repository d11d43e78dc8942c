-- Personal API tokens (Features/Tokens). Only the SHA-256 of the secret is kept: the secret is 256 random bits, so a
-- fast hash is as safe as a slow one (nothing to guess), and a lookup by hash costs one index probe per request.
-- token_version is the user's at creation: a bump (password change, sign-out everywhere, disable) ends API tokens as it
-- ends JWTs. A deleted user's tokens go with the user.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    scopes        text[] NOT NULL CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['read', 'sessions', 'admin']),
    token_hash    bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    prefix        text NOT NULL,
    token_version integer NOT NULL,
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL CHECK (expires_at > created_at AND expires_at <= created_at + interval '366 days'),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id, created_at DESC);

-- Every state a session entered and when (Features/Sessions, SessionStateWriter), so usage counts only the time spent
-- running: hibernated time is not session time.
CREATE TABLE session_state_history (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    state      text NOT NULL,
    at         timestamptz NOT NULL
);
CREATE INDEX session_state_history_session ON session_state_history (session_id, at, id);
CREATE INDEX session_state_history_at ON session_state_history (at);

-- Sessions from before the history: what their columns tell (running from started_at; the current state since its last
-- change). A hibernation that already ended is not known, so such a session counts as running through it.
INSERT INTO session_state_history (session_id, state, at)
SELECT id, 'running', started_at FROM sessions WHERE started_at IS NOT NULL;
INSERT INTO session_state_history (session_id, state, at)
SELECT id, state, CASE WHEN state IN ('stopped', 'failed') THEN coalesce(stopped_at, updated_at) ELSE updated_at END
FROM sessions WHERE started_at IS NOT NULL AND state <> 'running';
