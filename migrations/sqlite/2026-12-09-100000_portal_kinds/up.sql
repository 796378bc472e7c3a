-- Issue #18: the channel kind `web` (the customer portal's channel) and the audit actor `customer`. SQLite cannot
-- change a CHECK constraint, so both tables are rebuilt with the same rows (ids and AUTOINCREMENT sequences kept),
-- with foreign keys off so dropping the old channel table cascades nothing (SQLite's documented procedure).
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE channel_instances_new (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    kind                 TEXT NOT NULL CHECK (kind IN ('email', 'mattermost', 'zalo', 'custom', 'web')),
    name                 TEXT NOT NULL,
    mode                 TEXT NOT NULL CHECK (mode IN ('sync', 'async')),
    settings             TEXT NOT NULL DEFAULT '{}',
    secret               TEXT,
    enabled              BOOLEAN NOT NULL DEFAULT 1,
    disabled_reason      TEXT,
    inactivity_timeout_s BIGINT NOT NULL DEFAULT 600,
    default_team_id      BIGINT REFERENCES teams(id) ON DELETE SET NULL,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL
);
INSERT INTO channel_instances_new (id, kind, name, mode, settings, secret, enabled, disabled_reason,
                                   inactivity_timeout_s, default_team_id, created_at, updated_at)
    SELECT id, kind, name, mode, settings, secret, enabled, disabled_reason, inactivity_timeout_s, default_team_id,
           created_at, updated_at
    FROM channel_instances;
DELETE FROM sqlite_sequence WHERE name = 'channel_instances_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'channel_instances_new', seq FROM sqlite_sequence WHERE name = 'channel_instances';
DROP TABLE channel_instances;
ALTER TABLE channel_instances_new RENAME TO channel_instances;

CREATE TABLE audit_log_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    actor_kind  TEXT NOT NULL CHECK (actor_kind IN ('agent', 'system', 'integration', 'customer')),
    actor_id    BIGINT,
    action      TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   BIGINT,
    details     TEXT NOT NULL DEFAULT '{}',
    created_at  TIMESTAMP NOT NULL
);
INSERT INTO audit_log_new (id, actor_kind, actor_id, action, entity_type, entity_id, details, created_at)
    SELECT id, actor_kind, actor_id, action, entity_type, entity_id, details, created_at FROM audit_log;
DELETE FROM sqlite_sequence WHERE name = 'audit_log_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'audit_log_new', seq FROM sqlite_sequence WHERE name = 'audit_log';
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_entity ON audit_log(entity_type, entity_id);
COMMIT;
PRAGMA foreign_keys = ON;
