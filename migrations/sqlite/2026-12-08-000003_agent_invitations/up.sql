-- Issue #17 item 9: an admin invites an agent by email; the agent sets their own password through a single-use,
-- expiring link. Only the SHA-256 of the link's token is stored.
CREATE TABLE agent_invitations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id    BIGINT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    invited_by  BIGINT REFERENCES agents (id) ON DELETE SET NULL,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX agent_invitations_agent ON agent_invitations (agent_id);
