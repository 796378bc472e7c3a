-- The event log the real-time core replays from: one row per change an agent's dashboard must
-- see, written in the same transaction as the change. Its id is the position a socket's resume
-- cursor refers to.
CREATE TABLE events (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id     BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('conversation.created', 'message.created', 'conversation.updated', 'conversation.ended')),
    seq                 BIGINT,
    message_id          BIGINT REFERENCES messages(id) ON DELETE CASCADE,
    created_at          TIMESTAMP NOT NULL
);
CREATE INDEX events_channel ON events(channel_instance_id, id);
