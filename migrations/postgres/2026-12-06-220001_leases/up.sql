-- Issue #14: who does a job that must run on exactly one node of a deployment (`mailbox:{id}`: polling that
-- mailbox). A node takes a lease that is free, expired or already its own with one conditional statement, renews
-- it well before `expires_at`, and deletes it on a clean stop; another node takes it over once it has expired
-- (`cluster::lease`).
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
