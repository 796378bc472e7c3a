ALTER TABLE agents DROP COLUMN identity_version;
