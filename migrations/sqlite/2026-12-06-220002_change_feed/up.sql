-- The durable change feed (issue #14): one row per (consumer, event) it subscribes to, written in
-- the change's own transaction; a consumer deletes the row in the transaction of its effect, so
-- each change is acted on exactly once, cluster-wide, across restarts.
CREATE TABLE change_feed (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    consumer TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX change_feed_by_consumer ON change_feed(consumer, id);
