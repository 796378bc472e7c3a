DELETE FROM events WHERE kind = 'message.updated';
ALTER TABLE outbox DROP COLUMN updated_at;
DROP TABLE message_receipts;
DROP TABLE zalo_sent;
DROP TABLE zalo_events;
DROP TABLE zalo_tokens;
