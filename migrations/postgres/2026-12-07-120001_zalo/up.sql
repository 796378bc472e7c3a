-- Issue #16: the Zalo Official Account channel.

-- A Zalo channel's OA tokens (sealed like every channel secret, store::sealing) and its connection state. Kept
-- apart from the channel row: a token refresh is not a configuration change (no connector restarts, no cache
-- of every node dropped). `expires_at` NULL: not known (refreshed at the first chance); `refreshing_until`: a
-- node is refreshing (the refresh token is single use, so one refresh at a time, cluster-wide).
CREATE TABLE zalo_tokens (
    channel_instance_id BIGINT PRIMARY KEY REFERENCES channel_instances(id) ON DELETE CASCADE,
    access_token        TEXT NOT NULL,
    refresh_token       TEXT NOT NULL,
    expires_at          TIMESTAMP,
    refreshing_until    TIMESTAMP,
    generation          BIGINT NOT NULL DEFAULT 0,
    state               TEXT NOT NULL,
    reason              TEXT,
    state_since         TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);

-- Every webhook event as Zalo sent it, stored before the answer (ZL-3) and processed after it, in id order per
-- Zalo user. `dedupe_key` makes a retried delivery (same msg_id, header num_retry) a no-op.
CREATE TABLE zalo_events (
    id                  BIGSERIAL PRIMARY KEY,
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    dedupe_key          TEXT NOT NULL,
    zalo_user_id        TEXT NOT NULL,
    event_name          TEXT NOT NULL,
    body                TEXT NOT NULL,
    received_at         TIMESTAMP NOT NULL,
    processed_at        TIMESTAMP,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMP,
    last_error          TEXT,
    UNIQUE (channel_instance_id, dedupe_key)
);
CREATE INDEX zalo_events_pending ON zalo_events (channel_instance_id, id) WHERE processed_at IS NULL;

-- The Zalo ids of what our replies sent (a reply with text and files is several Zalo messages, `part` 0, 1, …):
-- their `oa_send_*` echoes are recognised and skipped, their receipts find the reply, and a retried delivery
-- sends only the parts not yet sent.
CREATE TABLE zalo_sent (
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    zalo_msg_id         TEXT NOT NULL,
    message_id          BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    part                BIGINT NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    PRIMARY KEY (channel_instance_id, zalo_msg_id)
);
CREATE INDEX zalo_sent_message ON zalo_sent (message_id, part);

-- Delivery and read receipts of outgoing messages (Zalo's user_received_message / user_seen_message): what
-- MessageView.delivery says beyond the outbox's pending / sent / failed.
CREATE TABLE message_receipts (
    message_id BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    state      TEXT NOT NULL CHECK (state IN ('delivered', 'read')),
    updated_at TIMESTAMP NOT NULL
);

-- When a delivery last changed (MessageView.delivery.updated_at).
ALTER TABLE outbox ADD COLUMN updated_at TIMESTAMP;

-- A change of a message's delivery state is a stored event too (`message.updated`).
ALTER TABLE events DROP CONSTRAINT events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('conversation.created', 'message.created', 'conversation.updated', 'conversation.ended', 'message.updated'));
