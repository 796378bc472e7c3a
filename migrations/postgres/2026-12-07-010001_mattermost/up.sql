-- Issue #15: Mattermost bots. A bot's connection state as the dashboard shows it (MM-11: connected, reconnecting,
-- needs_attention with the reason), and the newest post `create_at` it stored, from which a fresh `hello` (the server
-- could not replay) re-syncs over REST.
CREATE TABLE mattermost_state (
    channel_instance_id BIGINT PRIMARY KEY REFERENCES channel_instances(id) ON DELETE CASCADE,
    state               TEXT NOT NULL,
    reason              TEXT,
    last_create_at      BIGINT NOT NULL DEFAULT 0,
    updated_at          TIMESTAMP NOT NULL
);

-- Which conversation a Mattermost place maps to (MM-5, MM-7): `dm:{channel}` and `ch:{channel}` (group-chat mode),
-- `root:{post}` (thread mode). `mm_channel_id` and `root_id` say where agent replies are posted.
CREATE TABLE mattermost_links (
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    place               TEXT NOT NULL,
    conversation_id     BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    mm_channel_id       TEXT NOT NULL,
    root_id             TEXT NOT NULL,
    PRIMARY KEY (channel_instance_id, place)
);
CREATE INDEX mattermost_links_conversation ON mattermost_links (conversation_id);
