-- Every agent key ever revoked, by hash. A revoked key never authenticates again: the API's start with the same
-- PROVISIONED_AGENT_KEY must not revive it, even after the id was registered again with another key in between.
CREATE TABLE revoked_agent_keys (
    agent_id   text NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    key_hash   text NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, key_hash)
);

INSERT INTO revoked_agent_keys (agent_id, key_hash, revoked_at)
SELECT id, key_hash, revoked_at FROM agents WHERE revoked_at IS NOT NULL;
