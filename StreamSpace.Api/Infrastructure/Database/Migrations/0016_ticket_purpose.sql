-- What a ticket opens (vnc or audio): the viewer is handed one of each, and neither may open the other's socket.
-- Tickets live 30 seconds, so those issued before this migration are simply taken as VNC tickets.
ALTER TABLE vnc_tickets ADD COLUMN purpose text NOT NULL DEFAULT 'vnc' CHECK (purpose IN ('vnc', 'audio'));
