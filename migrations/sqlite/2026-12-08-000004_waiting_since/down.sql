DROP INDEX conversations_waiting_since;
ALTER TABLE conversations DROP COLUMN waiting_since;
