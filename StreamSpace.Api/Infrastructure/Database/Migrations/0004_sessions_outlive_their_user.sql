-- Deleting a user used to delete their sessions, and with them (cascading) the stop commands that end the sessions'
-- processes on the agents. Sessions now outlive their owner: the user is removed after their sessions were asked to
-- stop, the stop commands still reach the agents, the agents' "stopped" reports still land, and the history stays.
-- user_id keeps the deleted user's id (ids are never reused), as audit_log.actor_id does.
ALTER TABLE sessions DROP CONSTRAINT sessions_user_id_fkey;
