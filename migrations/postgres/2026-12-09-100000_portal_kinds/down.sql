ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check CHECK (actor_kind IN ('agent', 'system', 'integration'));
ALTER TABLE channel_instances DROP CONSTRAINT channel_instances_kind_check;
ALTER TABLE channel_instances ADD CONSTRAINT channel_instances_kind_check
    CHECK (kind IN ('email', 'mattermost', 'zalo', 'custom'));
