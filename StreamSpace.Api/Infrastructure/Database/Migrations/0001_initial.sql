-- The whole schema of StreamSpace 1.0. Later changes are new numbered files; applied files never change.

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'user')),
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- Usernames are unique whatever their case, so "Admin" cannot shadow "admin".
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE templates (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    display_name    text NOT NULL,
    description     text NOT NULL DEFAULT '',
    category        text NOT NULL DEFAULT '',
    icon            text NOT NULL DEFAULT '',
    image           text,
    command         text,
    vnc_port        integer NOT NULL DEFAULT 5900 CHECK (vnc_port BETWEEN 1 AND 65535),
    cpu             text,
    memory          text,
    env             jsonb NOT NULL DEFAULT '{}',
    persistent_home boolean NOT NULL DEFAULT true,
    idle_timeout    interval NOT NULL DEFAULT interval '30 minutes',
    max_duration    interval,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE agents (
    id               text PRIMARY KEY CHECK (id ~ '^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$'),
    key_hash         text NOT NULL,
    platform         text,
    region           text,
    version          text,
    protocol_version integer,
    capacity         jsonb NOT NULL DEFAULT '{}',
    metadata         jsonb NOT NULL DEFAULT '{}',
    status           text NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'offline')),
    draining         boolean NOT NULL DEFAULT false,
    revoked_at       timestamptz,
    last_heartbeat   timestamptz,
    heartbeat_interval_seconds integer NOT NULL DEFAULT 30,
    -- The agent's clock minus ours at its last heartbeat, for the "token expires at once" diagnosis.
    clock_skew_ms    integer,
    connected_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    id                text PRIMARY KEY,
    user_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    template          text NOT NULL,
    state             text NOT NULL CHECK (state IN ('pending', 'starting', 'running', 'hibernating', 'hibernated',
                                                     'waking', 'stopping', 'stopped', 'failed')),
    failure_reason    text,
    agent_id          text REFERENCES agents (id) ON DELETE SET NULL,
    platform          text,
    platform_metadata jsonb NOT NULL DEFAULT '{}',
    resources         jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    stopped_at        timestamptz,
    last_activity_at  timestamptz
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id, created_at DESC);
CREATE INDEX sessions_agent_active_idx ON sessions (agent_id) WHERE state NOT IN ('stopped', 'failed');

CREATE TABLE agent_commands (
    id           uuid PRIMARY KEY,
    agent_id     text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    session_id   text REFERENCES sessions (id) ON DELETE CASCADE,
    command_type text NOT NULL CHECK (command_type IN ('start_session', 'stop_session', 'hibernate_session', 'wake_session')),
    payload      jsonb NOT NULL DEFAULT '{}',
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'acked', 'completed', 'failed')),
    attempts     integer NOT NULL DEFAULT 0,
    error        text,
    result       jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    acked_at     timestamptz,
    completed_at timestamptz
);
CREATE INDEX agent_commands_open_idx ON agent_commands (agent_id, created_at) WHERE status IN ('pending', 'sent', 'acked');

CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid,
    actor       text NOT NULL,
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);
