-- Audio and recording (issue 18). Per template, whether its sessions have sound and whether they are recorded.
ALTER TABLE templates
    ADD COLUMN audio boolean NOT NULL DEFAULT true,
    ADD COLUMN record boolean NOT NULL DEFAULT false;

-- Whether the viewer's sound is muted, remembered per user.
ALTER TABLE viewer_preferences ADD COLUMN audio_muted boolean NOT NULL DEFAULT false;

-- An admin asked for this running session to be recorded (its template may not require it); the control plane asks
-- the agent again whenever the agent reconnects, so a restarted agent resumes the recording.
ALTER TABLE sessions ADD COLUMN record boolean NOT NULL DEFAULT false;

-- The catalog of recordings; the files live on the agents (their data folder, or a PersistentVolume on Kubernetes).
-- A row outlives its session. deleted_at marks one deleted (by an admin or by retention) whose agent has not yet
-- confirmed the file is gone; the row goes once it has.
CREATE TABLE recordings (
    id          uuid PRIMARY KEY,
    session_id  text NOT NULL,
    user_id     uuid REFERENCES users (id) ON DELETE SET NULL,
    username    text NOT NULL,
    template    text NOT NULL,
    agent_id    text NOT NULL,
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz,
    duration_ms bigint NOT NULL DEFAULT 0,
    bytes       bigint NOT NULL DEFAULT 0,
    deleted_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recordings_session ON recordings (session_id);
CREATE INDEX recordings_started ON recordings (started_at);
