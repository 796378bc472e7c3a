DROP TABLE mailbox_seen;
DROP TABLE mailbox_state;
DROP TABLE mail_log;
DROP TABLE mail_sources;
DROP INDEX messages_provider_lookup;
DROP TABLE conversation_subscribers;
