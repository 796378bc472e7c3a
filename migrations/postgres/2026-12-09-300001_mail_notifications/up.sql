-- Issue #18 items 2 and 3: the instance-wide email notification settings (NT-1…NT-13) and the welcome
-- mails already sent (NT-13, once per customer).

-- One row (id = 1), read as one struct (domain::mail_notifications::NotificationSettings). Defaults as the
-- seed's product ships: NT-1…NT-10 and NT-13 on, NT-11 and NT-12 off.
CREATE TABLE notification_settings (
    id                                  BIGINT PRIMARY KEY,
    enabled                             BOOLEAN NOT NULL DEFAULT TRUE,
    ticket_closed                       BOOLEAN NOT NULL DEFAULT TRUE,
    ticket_confirmation                 BOOLEAN NOT NULL DEFAULT TRUE,
    new_ticket_admins                   BOOLEAN NOT NULL DEFAULT TRUE,
    new_ticket_category                 BOOLEAN NOT NULL DEFAULT TRUE,
    customer_update_category            BOOLEAN NOT NULL DEFAULT TRUE,
    kb_article_category                 BOOLEAN NOT NULL DEFAULT TRUE,
    ticket_taken_category               BOOLEAN NOT NULL DEFAULT TRUE,
    include_attachments                 BOOLEAN NOT NULL DEFAULT TRUE,
    auto_login_links                    BOOLEAN NOT NULL DEFAULT TRUE,
    cc_subscribers                      BOOLEAN NOT NULL DEFAULT FALSE,
    customer_updates_technicians_only   BOOLEAN NOT NULL DEFAULT FALSE,
    welcome_email                       BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at                          TIMESTAMP
);
INSERT INTO notification_settings (id) VALUES (1);

-- NT-13: a customer is welcomed once (the row is written in the transaction that queues the mail).
CREATE TABLE customer_welcomes (
    customer_id BIGINT PRIMARY KEY REFERENCES customers(id) ON DELETE CASCADE,
    created_at  TIMESTAMP NOT NULL
);
