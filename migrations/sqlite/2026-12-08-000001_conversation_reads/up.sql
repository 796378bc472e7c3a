-- Issue #17 item 1: unread state on the server. Per agent and conversation, the seq of the newest message the
-- agent has read (a read cursor). It only rises (`store::reads::mark`). No row: nothing read yet, every
-- customer message of the conversation is unread for that agent.
CREATE TABLE conversation_reads (
    agent_id        BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    last_read_seq   BIGINT NOT NULL,
    updated_at      TIMESTAMP NOT NULL,
    PRIMARY KEY (agent_id, conversation_id)
);
CREATE INDEX conversation_reads_conversation ON conversation_reads(conversation_id);
