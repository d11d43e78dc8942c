-- What each agent reports about itself beyond heartbeats, for the admin diagnostics:
-- the control-plane URL it dials, the URL the API saw it arrive at, and the checks it runs on its own platform.
ALTER TABLE agents
    ADD COLUMN control_plane_url text,
    ADD COLUMN reached_url text,
    ADD COLUMN checks jsonb NOT NULL DEFAULT '[]'::jsonb;
