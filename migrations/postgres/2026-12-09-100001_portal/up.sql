-- Issue #18 (CU-1…CU-3, HD-12, NT-10): customer accounts and the customer portal.
-- CU-1 profile fields.
ALTER TABLE customers ADD COLUMN department TEXT NOT NULL DEFAULT '';
ALTER TABLE customers ADD COLUMN location TEXT NOT NULL DEFAULT '';
-- A customer's login (keyed by the customer; signed in with an email identity of theirs).
CREATE TABLE customer_accounts (
    customer_id   BIGINT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
-- "Forgot password": single-use, expiring; only the SHA-256 of the mailed token is stored.
CREATE TABLE customer_password_resets (
    id          BIGSERIAL PRIMARY KEY,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL,
    used_at     TIMESTAMP
);
CREATE INDEX customer_password_resets_customer ON customer_password_resets (customer_id);
-- Customer sessions: their own table, never an agent's (CU-3).
CREATE TABLE customer_sessions (
    id          BIGSERIAL PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    csrf_token  TEXT NOT NULL,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    created_at  TIMESTAMP NOT NULL,
    expires_at  TIMESTAMP NOT NULL
);
CREATE INDEX customer_sessions_customer ON customer_sessions (customer_id);
-- A file a customer uploaded through the portal (not yet, or already, attached to their message).
ALTER TABLE attachments ADD COLUMN uploaded_by_customer BIGINT REFERENCES customers (id) ON DELETE SET NULL;
-- HD-12: one rating per conversation; changing it replaces it.
CREATE TABLE conversation_ratings (
    conversation_id BIGINT PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    customer_id     BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    rating          TEXT NOT NULL,
    rated_at        TIMESTAMP NOT NULL,
    changed_at      TIMESTAMP NOT NULL
);
-- The ticket's current rating, kept with the conversation so lists filter by it and every view shows it
-- (written in the rating's transaction).
ALTER TABLE conversations ADD COLUMN csat TEXT;
CREATE INDEX conversations_csat ON conversations (csat);
-- One "Web portal" channel per install (created on first use).
CREATE UNIQUE INDEX channel_instances_one_web ON channel_instances (kind) WHERE kind = 'web';
