-- The email channel (EM-*, EO-*). Keep in step with the other backend's migration.

-- People on a ticket besides its customer, by address (EM-10, EM-13 #unsubscribe#); they are
-- copied on replies and may thread mail into the ticket by its number (EM-6).
CREATE TABLE conversation_subscribers (
    conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    email           TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (conversation_id, email)
);

-- Threading looks a Message-ID up across every mailbox (EM-6).
CREATE INDEX messages_provider_lookup ON messages(provider_message_id) WHERE provider_message_id IS NOT NULL;

-- The raw source of every imported or sent mail, for audit (the bytes are a blob on disk).
CREATE TABLE mail_sources (
    message_id   BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    storage_key  TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    from_address TEXT NOT NULL DEFAULT '',
    recipients   TEXT NOT NULL DEFAULT '[]',
    created_at   TIMESTAMP NOT NULL
);

-- Mail that made no ticket (EM-12 junk, EM-8 rejected, unparseable), kept for admins: never lost.
CREATE TABLE mail_log (
    id                  BIGSERIAL PRIMARY KEY,
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    message_id_header   TEXT NOT NULL,
    from_address        TEXT NOT NULL,
    subject             TEXT NOT NULL,
    outcome             TEXT NOT NULL CHECK (outcome IN ('junk', 'rejected', 'unparseable')),
    reason              TEXT NOT NULL,
    storage_key         TEXT NOT NULL,
    size_bytes          BIGINT NOT NULL,
    created_at          TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX mail_log_once ON mail_log(channel_instance_id, message_id_header);

-- A mailbox's connection health (EM-5) and the remote keys it already imported (POP3 "leave on server").
CREATE TABLE mailbox_state (
    channel_instance_id  BIGINT PRIMARY KEY REFERENCES channel_instances(id) ON DELETE CASCADE,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    last_error           TEXT,
    last_checked_at      TIMESTAMP,
    last_success_at      TIMESTAMP,
    imported_total       BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE mailbox_seen (
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    mail_key            TEXT NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (channel_instance_id, mail_key)
);
