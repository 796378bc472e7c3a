DROP INDEX outbox_pending;
ALTER TABLE outbox DROP COLUMN locked_until;
