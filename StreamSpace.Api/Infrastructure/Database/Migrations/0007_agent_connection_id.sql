-- Which of an agent's connections the row describes. A reconnect's hello records its own id, so the close of the
-- connection it replaced, which can finish after that hello, marks the agent offline only if it is still the current one.
ALTER TABLE agents ADD COLUMN connection_id uuid;
