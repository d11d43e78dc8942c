-- The viewer (issue 17). Per template, whether the clipboard may pass from the session to the browser and from the
-- browser to the session; the session's Xvnc enforces both (SendCutText, AcceptCutText).
ALTER TABLE templates
    ADD COLUMN clipboard_to_browser boolean NOT NULL DEFAULT true,
    ADD COLUMN clipboard_to_session boolean NOT NULL DEFAULT true;

-- Each user's viewer preferences; a user without a row has the defaults.
CREATE TABLE viewer_preferences (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    scale_viewport boolean NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
