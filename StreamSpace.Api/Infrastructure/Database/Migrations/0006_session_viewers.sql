-- The open VNC viewers, one row each, on whichever API instance holds the viewer's WebSocket: any instance can list
-- them and revoke one (NOTIFY session_viewer_revocations with the viewer id; the holder closes it). The holder
-- refreshes seen_at and bytes every few seconds and deletes the row when the viewer closes. An instance that dies
-- cannot, so lists skip rows not seen for 30 s and every instance deletes rows not seen for a minute.
CREATE TABLE session_viewers (
    id           uuid PRIMARY KEY,
    session_id   text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL,
    username     text NOT NULL,
    address      text,
    connected_at timestamptz NOT NULL DEFAULT now(),
    seen_at      timestamptz NOT NULL DEFAULT now(),
    bytes        bigint NOT NULL DEFAULT 0
);
CREATE INDEX session_viewers_session_idx ON session_viewers (session_id);
CREATE INDEX session_viewers_seen_idx ON session_viewers (seen_at);

-- An admin who views another user's session is shown to the owner on their sessions page.
ALTER TABLE sessions ADD COLUMN last_viewed_by_admin text, ADD COLUMN last_viewed_by_admin_at timestamptz;
