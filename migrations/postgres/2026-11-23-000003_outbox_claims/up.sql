-- A dispatcher claims a delivery before sending it, so two nodes never send the same one at once.
ALTER TABLE outbox ADD COLUMN locked_until TIMESTAMP;
CREATE INDEX outbox_pending ON outbox(state, channel_instance_id, id);
