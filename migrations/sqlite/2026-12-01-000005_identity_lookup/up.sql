-- Identity lookups bind `kind` as a parameter, and a partial index (`WHERE kind = 'external'`, `WHERE kind <> 'external'`)
-- cannot serve a prepared statement whose kind is a parameter: PostgreSQL's generic plans and SQLite's planner fall
-- back to scanning the table. Plain indexes serve every lookup; the partial unique indexes stay for uniqueness.
CREATE INDEX customer_identities_by_value ON customer_identities(kind, value);
CREATE INDEX customer_identities_by_channel ON customer_identities(channel_instance_id, value);
