-- Back to file-only sources: rows whose source is inline lose it (their key would be a file that does not exist).
CREATE TABLE mail_sources_old (
    message_id   BIGINT PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
    storage_key  TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    from_address TEXT NOT NULL DEFAULT '',
    recipients   TEXT NOT NULL DEFAULT '[]',
    created_at   TIMESTAMP NOT NULL
);
INSERT INTO mail_sources_old (message_id, storage_key, size_bytes, from_address, recipients, created_at)
    SELECT message_id, storage_key, size_bytes, from_address, recipients, created_at FROM mail_sources
    WHERE storage_key IS NOT NULL;
DROP TABLE mail_sources;
ALTER TABLE mail_sources_old RENAME TO mail_sources;

CREATE TABLE mail_log_old (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
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
INSERT INTO mail_log_old (id, channel_instance_id, message_id_header, from_address, subject, outcome, reason,
                          storage_key, size_bytes, created_at)
    SELECT id, channel_instance_id, message_id_header, from_address, subject, outcome, reason,
           COALESCE(storage_key, ''), size_bytes, created_at FROM mail_log;
DROP TABLE mail_log;
ALTER TABLE mail_log_old RENAME TO mail_log;
CREATE UNIQUE INDEX mail_log_once ON mail_log(channel_instance_id, message_id_header);
