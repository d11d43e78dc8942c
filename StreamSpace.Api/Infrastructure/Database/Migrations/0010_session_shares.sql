-- Sharing (issue 17). A share lets signed-in users other than the owner view a running session, view-only or
-- interactive, until it expires or is ended. Its id is the link's long random value; allowed_user_ids NULL means any
-- signed-in user who has the link.
CREATE TABLE session_shares (
    id                text PRIMARY KEY,
    session_id        text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_by        uuid NOT NULL,
    created_by_name   text NOT NULL,
    mode              text NOT NULL CHECK (mode IN ('view_only', 'interactive')),
    allowed_user_ids  uuid[],
    allowed_usernames text[],
    expires_at        timestamptz NOT NULL,
    ended_at          timestamptz,
    ended_by          text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX session_shares_session_idx ON session_shares (session_id);

-- Per template, whether its sessions may be shared.
ALTER TABLE templates ADD COLUMN sharing boolean NOT NULL DEFAULT true;

-- A ticket (and the viewer it opens) that came through a share: which one, and whether the agent must sign the
-- viewer in with the session's view-only VNC password.
ALTER TABLE vnc_tickets ADD COLUMN share_id text, ADD COLUMN view_only boolean NOT NULL DEFAULT false;
ALTER TABLE session_viewers ADD COLUMN share_id text, ADD COLUMN view_only boolean NOT NULL DEFAULT false;
CREATE INDEX session_viewers_share_idx ON session_viewers (share_id) WHERE share_id IS NOT NULL;
