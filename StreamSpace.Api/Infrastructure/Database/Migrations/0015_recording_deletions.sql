-- When the control plane handed a deleted recording's DeleteRecordingMessage to its agent. Until then the agent (offline,
-- or on an older connection) is asked again at its next connect. The row stays a while after that as a tombstone, so
-- a late progress report of the recording (sent before the agent read the delete) cannot bring it back.
ALTER TABLE recordings ADD COLUMN delete_sent_at timestamptz;
CREATE INDEX recordings_undelivered_deletes ON recordings (agent_id) WHERE deleted_at IS NOT NULL AND delete_sent_at IS NULL;
