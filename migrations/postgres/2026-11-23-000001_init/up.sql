-- Switchboard initial schema (PostgreSQL). Keep column names and types in step with
-- migrations/sqlite: the same diesel schema (src/store/schema.rs) serves both.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('conversation_number', 1000);

CREATE TABLE agents (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT,
    role          TEXT NOT NULL CHECK (role IN ('super_admin', 'admin', 'agent')),
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);

CREATE TABLE sessions (
    id           BIGSERIAL PRIMARY KEY,
    token_hash   TEXT NOT NULL UNIQUE,
    csrf_token   TEXT NOT NULL,
    agent_id     BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    created_at   TIMESTAMP NOT NULL,
    expires_at   TIMESTAMP NOT NULL
);
CREATE INDEX sessions_agent ON sessions(agent_id);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    agent_id     BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE INDEX api_tokens_agent ON api_tokens(agent_id);

CREATE TABLE teams (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE team_members (
    team_id  BIGINT NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
    agent_id BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, agent_id)
);

CREATE TABLE channel_instances (
    id                   BIGSERIAL PRIMARY KEY,
    kind                 TEXT NOT NULL CHECK (kind IN ('email', 'mattermost', 'zalo', 'custom')),
    name                 TEXT NOT NULL,
    mode                 TEXT NOT NULL CHECK (mode IN ('sync', 'async')),
    settings             TEXT NOT NULL DEFAULT '{}',
    secret               TEXT,
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason      TEXT,
    inactivity_timeout_s BIGINT NOT NULL DEFAULT 600,
    default_team_id      BIGINT REFERENCES teams(id) ON DELETE SET NULL,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL
);

CREATE TABLE channel_access (
    agent_id            BIGINT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    PRIMARY KEY (agent_id, channel_instance_id)
);
CREATE INDEX channel_access_channel ON channel_access(channel_instance_id);

CREATE TABLE statuses (
    id              BIGSERIAL PRIMARY KEY,
    key             TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    base            TEXT NOT NULL CHECK (base IN ('open', 'pending', 'closed')),
    required_fields TEXT NOT NULL DEFAULT '[]',
    builtin         BOOLEAN NOT NULL DEFAULT FALSE,
    position        BIGINT NOT NULL DEFAULT 0,
    created_at      TIMESTAMP NOT NULL
);
INSERT INTO statuses (key, name, base, builtin, position, created_at) VALUES
    ('open', 'Open', 'open', TRUE, 0, CURRENT_TIMESTAMP),
    ('pending', 'Pending', 'pending', TRUE, 1, CURRENT_TIMESTAMP),
    ('closed', 'Closed', 'closed', TRUE, 2, CURRENT_TIMESTAMP);

CREATE TABLE companies (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE customers (
    id             BIGSERIAL PRIMARY KEY,
    name           TEXT NOT NULL DEFAULT '',
    company_id     BIGINT REFERENCES companies(id) ON DELETE SET NULL,
    owner_agent_id BIGINT REFERENCES agents(id) ON DELETE SET NULL,
    notes          TEXT NOT NULL DEFAULT '',
    custom_fields  TEXT NOT NULL DEFAULT '{}',
    merged_into_id BIGINT REFERENCES customers(id),
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);
CREATE INDEX customers_company ON customers(company_id);

-- kind 'external' is an id on one channel instance; 'email' and 'phone' are global.
CREATE TABLE customer_identities (
    id                  BIGSERIAL PRIMARY KEY,
    customer_id         BIGINT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
    kind                TEXT NOT NULL CHECK (kind IN ('external', 'email', 'phone')),
    channel_instance_id BIGINT REFERENCES channel_instances(id) ON DELETE CASCADE,
    value               TEXT NOT NULL,
    created_at          TIMESTAMP NOT NULL,
    CHECK ((kind = 'external') = (channel_instance_id IS NOT NULL))
);
CREATE UNIQUE INDEX customer_identities_external ON customer_identities(channel_instance_id, value) WHERE kind = 'external';
CREATE UNIQUE INDEX customer_identities_global ON customer_identities(kind, value) WHERE kind <> 'external';
CREATE INDEX customer_identities_customer ON customer_identities(customer_id);

CREATE TABLE conversations (
    id                        BIGSERIAL PRIMARY KEY,
    number                    BIGINT NOT NULL UNIQUE,
    channel_instance_id       BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    customer_id               BIGINT NOT NULL REFERENCES customers(id),
    mode                      TEXT NOT NULL CHECK (mode IN ('sync', 'async')),
    status                    TEXT NOT NULL,
    assignee_id               BIGINT REFERENCES agents(id) ON DELETE SET NULL,
    team_id                   BIGINT REFERENCES teams(id) ON DELETE SET NULL,
    priority                  TEXT NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    subject                   TEXT NOT NULL DEFAULT '',
    custom_fields             TEXT NOT NULL DEFAULT '{}',
    last_seq                  BIGINT NOT NULL DEFAULT 0,
    merged_into_id            BIGINT REFERENCES conversations(id),
    inactivity_deadline       TIMESTAMP,
    created_at                TIMESTAMP NOT NULL,
    updated_at                TIMESTAMP NOT NULL,
    first_response_at         TIMESTAMP,
    last_customer_activity_at TIMESTAMP,
    last_agent_activity_at    TIMESTAMP,
    ended_at                  TIMESTAMP,
    closed_at                 TIMESTAMP
);
CREATE INDEX conversations_channel ON conversations(channel_instance_id, updated_at);
CREATE INDEX conversations_customer ON conversations(customer_id, created_at);
CREATE INDEX conversations_status ON conversations(status, updated_at);
CREATE INDEX conversations_assignee ON conversations(assignee_id);
CREATE INDEX conversations_deadline ON conversations(inactivity_deadline) WHERE inactivity_deadline IS NOT NULL;

CREATE TABLE conversation_tags (
    conversation_id BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    tag             TEXT NOT NULL,
    PRIMARY KEY (conversation_id, tag)
);
CREATE INDEX conversation_tags_tag ON conversation_tags(tag);

CREATE TABLE messages (
    id                  BIGSERIAL PRIMARY KEY,
    conversation_id     BIGINT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq                 BIGINT NOT NULL,
    direction           TEXT NOT NULL CHECK (direction IN ('in', 'out', 'note')),
    source              TEXT NOT NULL CHECK (source IN ('channel', 'agent', 'api', 'rule', 'system')),
    author_agent_id     BIGINT REFERENCES agents(id) ON DELETE SET NULL,
    author_customer_id  BIGINT REFERENCES customers(id) ON DELETE SET NULL,
    body_text           TEXT NOT NULL,
    body_html           TEXT,
    quoted_message_id   BIGINT REFERENCES messages(id) ON DELETE SET NULL,
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    provider_message_id TEXT,
    created_at          TIMESTAMP NOT NULL,
    UNIQUE (conversation_id, seq)
);
CREATE UNIQUE INDEX messages_provider_id ON messages(channel_instance_id, provider_message_id) WHERE provider_message_id IS NOT NULL;

CREATE TABLE attachments (
    id           BIGSERIAL PRIMARY KEY,
    message_id   BIGINT REFERENCES messages(id) ON DELETE CASCADE,
    uploaded_by  BIGINT REFERENCES agents(id) ON DELETE SET NULL,
    file_name    TEXT NOT NULL,
    mime_type    TEXT NOT NULL,
    size_bytes   BIGINT NOT NULL,
    sha256       TEXT NOT NULL,
    storage_key  TEXT NOT NULL,
    content_id   TEXT,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX attachments_message ON attachments(message_id);

CREATE TABLE outbox (
    id                  BIGSERIAL PRIMARY KEY,
    delivery_id         TEXT NOT NULL UNIQUE,
    channel_instance_id BIGINT NOT NULL REFERENCES channel_instances(id) ON DELETE CASCADE,
    conversation_id     BIGINT REFERENCES conversations(id) ON DELETE CASCADE,
    message_id          BIGINT REFERENCES messages(id) ON DELETE CASCADE,
    kind                TEXT NOT NULL,
    payload             TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at     TIMESTAMP NOT NULL,
    last_error          TEXT,
    created_at          TIMESTAMP NOT NULL,
    delivered_at        TIMESTAMP
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_conversation ON outbox(conversation_id, id);

CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    actor_kind  TEXT NOT NULL CHECK (actor_kind IN ('agent', 'system', 'integration')),
    actor_id    BIGINT,
    action      TEXT NOT NULL,
    entity_type TEXT NOT NULL,
    entity_id   BIGINT,
    details     TEXT NOT NULL DEFAULT '{}',
    created_at  TIMESTAMP NOT NULL
);
CREATE INDEX audit_log_entity ON audit_log(entity_type, entity_id);
