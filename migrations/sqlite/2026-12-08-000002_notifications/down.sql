ALTER TABLE change_feed DROP COLUMN detail;
DROP TABLE message_mentions;
DROP TABLE agent_notifications;
