-- Several API replicas on one database (issue 16). Each replica registers at start and refreshes seen_at every 5 s;
-- it is alive while seen within 15 s. Rows a replica left behind (kill -9) are deleted after an hour.
CREATE TABLE api_replicas (
    id         uuid PRIMARY KEY,
    data_url   text,
    version    text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at    timestamptz NOT NULL DEFAULT now(),
    draining   boolean NOT NULL DEFAULT false
);

-- Which replica holds the agent's current connection (connection_id), written with it at hello.
ALTER TABLE agents ADD COLUMN replica_id uuid;

-- VNC tickets, redeemable on any replica and single-use across all of them: redeeming is one DELETE … RETURNING.
-- The key is the SHA-256 of the ticket, so a reader of the database cannot use a live ticket.
CREATE TABLE vnc_tickets (
    ticket_hash bytea PRIMARY KEY,
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL,
    claims      jsonb NOT NULL,
    issued_by   uuid NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE INDEX vnc_tickets_expires_idx ON vnc_tickets (expires_at);

-- Sign-in failure limits shared by every replica: one fixed window per limit and subject.
CREATE TABLE failure_windows (
    limit_name  text NOT NULL,
    subject     text NOT NULL,
    window_ends timestamptz NOT NULL,
    failures    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (limit_name, subject)
);
CREATE INDEX failure_windows_ends_idx ON failure_windows (window_ends);

-- Refused agent connections of the last hour, for the diagnostics, whichever replica refused them. Only ids that
-- exist in agents are recorded, so attacker-chosen ids cannot grow it.
CREATE TABLE agent_refusals (
    agent_id text PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    count    integer NOT NULL,
    last_at  timestamptz NOT NULL,
    reason   text NOT NULL
);
