-- Issue #17 items 2 and 3: the agents' notification inbox and @mentions in internal notes.

-- One agent's notifications, newest last by id. Written only by the change feed's notification consumer
-- (store::notifications), in the transaction that takes the feed rows: each change is notified once.
-- kind: assigned, mentioned, customer_replied, chat_waiting (sla_warning to come).
-- actor_kind: agent, customer or system (routing); actor_id the agent's or customer's id.
CREATE TABLE agent_notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id        BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    message_id      BIGINT,
    actor_kind      TEXT NOT NULL,
    actor_id        BIGINT,
    actor_name      TEXT NOT NULL,
    excerpt         TEXT NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    read_at         TIMESTAMP
);
CREATE INDEX agent_notifications_by_agent ON agent_notifications(agent_id, id);
CREATE INDEX agent_notifications_unread ON agent_notifications(agent_id, conversation_id) WHERE read_at IS NULL;

-- The agents an internal note mentions (validated when the note is written: only agents who may see the
-- conversation's channel).
CREATE TABLE message_mentions (
    message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    agent_id   BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    PRIMARY KEY (message_id, agent_id)
);

-- What a feed consumer needs to know about a change that its event row does not say (JSON, store::feed::Detail):
-- who made it, and whom it assigned the conversation to.
ALTER TABLE change_feed ADD COLUMN detail TEXT;
