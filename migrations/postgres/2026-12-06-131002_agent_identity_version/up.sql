-- Issue #13: bumped in the transaction of every change to who an agent is (role, active flag, password, channel
-- access, a session ended, an API token revoked). Each node polls it for the agents with open sockets there, so
-- sockets follow such a change within about a second even when the bus dropped its announcement.
ALTER TABLE agents ADD COLUMN identity_version BIGINT NOT NULL DEFAULT 0;
