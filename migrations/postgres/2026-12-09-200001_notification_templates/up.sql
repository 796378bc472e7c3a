-- Issue #18 item 4 (TP-1): the notification templates an admin edited. A kind without a row uses the default
-- that ships (domain::templates::defaults); an empty body means that notification is not sent.
-- kind: ticket_confirmation, ticket_closed, ticket_updated, new_ticket_admin, new_ticket_category,
-- customer_update, ticket_taken, kb_article_changed, welcome, password_reset (domain::templates::TemplateKind).
CREATE TABLE notification_templates (
    kind       TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_by BIGINT REFERENCES agents(id) ON DELETE SET NULL,
    updated_at TIMESTAMP NOT NULL
);
