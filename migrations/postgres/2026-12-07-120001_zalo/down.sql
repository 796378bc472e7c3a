DELETE FROM events WHERE kind = 'message.updated';
ALTER TABLE events DROP CONSTRAINT events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('conversation.created', 'message.created', 'conversation.updated', 'conversation.ended'));
ALTER TABLE outbox DROP COLUMN updated_at;
DROP TABLE message_receipts;
DROP TABLE zalo_sent;
DROP TABLE zalo_events;
DROP TABLE zalo_tokens;
